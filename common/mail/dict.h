// SPDX-License-Identifier: MIT
// NAME
//   dict.h - read-only Postfix lookup tables ("type:name")
// DESCRIPTION
//   The few table types the SMTP server needs to answer "is this a known
//   recipient", opened once at start-up (before chroot: the handles stay
//   open afterwards) and then only read:
//
//     hash:/path, btree:/path   Berkeley DB 5.3, the file /path.db as
//                               postmap(1) writes it. Postfix stores keys
//                               and values with a trailing NUL; files from
//                               other tools may not, so a key is tried with
//                               the NUL and then without, and the variant
//                               that first matches is used from then on.
//     texthash:/path            a postmap(1) source file read into memory:
//                               "key value", # comments, blank lines, and
//                               lines that start with white space continue
//                               the previous one. The first of duplicate
//                               keys wins (postmap's default, which warns).
//     inline:{k=v, {k = v w}}   the table in the parameter value.
//     static:value, static:{v}  every key has this value.
//     unix:passwd.byname        getpwnam(3); the value is the passwd(5)
//                               line. This needs /etc/passwd, which a
//                               chrooted process lacks: Postfix uses
//                               proxy:unix:passwd.byname for that reason.
//     proxy:TYPE:NAME           TYPE:NAME opened directly. Postfix asks
//                               proxymap(8); we run with the same
//                               privileges before chroot, so opening the
//                               table ourselves sees the same data.
//                               (Whether proxymap would serve the table,
//                               proxy_read_maps, is checked by the user:
//                               smtpd/rcpt_maps.h.)
//
//   Keys are folded to lower case before the lookup, as Postfix does for
//   these types (postmap folds the keys it stores). Any other type is
//   refused with "unsupported dictionary type: TYPE", Postfix's words.
// CHANGES
//   A hash:/btree: file rewritten by postmap(1) after start-up is noticed
//   by changed() (its modification time, read through the open
//   descriptor, so it works after chroot). Postfix's smtpd then finishes
//   the session and exits ("table ... has changed -- restarting"); the
//   session owner does the same, so the next process opens the new file.
// THREADS
//   Not thread-safe; a Dict belongs to one process.
#pragma once

#include "common/util/result.h"
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rs::mail {

/// The longest key looked up; a longer one fails the lookup (Postfix's
/// own bound is the SMTP line length; this one protects the table code).
inline constexpr size_t dict_max_key_length = 4096;

/// open_dict() flags.
inline constexpr unsigned DICT_OPEN_NO_FOLD = 1; ///< keep the key's case

class Dict {
public:
    virtual ~Dict() = default;

    /// The value for `key`, nullopt when there is none, or an Error when
    /// the table could not be read (the caller answers "Temporary lookup
    /// failure").
    [[nodiscard]] virtual Result<std::optional<std::string>>
    lookup(std::string_view key) = 0;

    /// True when the file behind the table changed since it was opened.
    virtual bool changed() const { return false; }

    /// "type:name" as it was configured (with any proxy: prefix).
    const std::string& name() const { return name_; }

protected:
    explicit Dict(std::string name) : name_(std::move(name)) {}

private:
    std::string name_;
};

/// Open one table, "type:name". Errors: an unsupported type, a missing
/// or unreadable file ("open database /x.db: No such file or directory",
/// as Postfix says), bad inline: syntax.
[[nodiscard]] Result<std::unique_ptr<Dict>> open_dict(std::string_view spec,
                                                      unsigned flags = 0);

/// Split a map list ("hash:/a, inline:{a=b, c=d} static:x") at commas
/// and white space outside braces, as Postfix splits $alias_maps.
std::vector<std::string> split_map_list(std::string_view value);

/// A list of tables searched in order: the first match wins. A table
/// that failed to open stays in the list as a table whose every lookup
/// fails with the open error, as Postfix keeps a "surrogate" table: the
/// server then answers 451 instead of refusing to start.
class DictList {
public:
    DictList() = default;

    /// Open every table of a `$alias_maps`-style value. `open_errors` (if
    /// given) receives one text per table that failed to open, in
    /// Postfix's words: "hash:/x is unavailable. open database /x.db:
    /// No such file or directory".
    static DictList open(std::string_view value, unsigned flags = 0,
                         std::vector<std::string>* open_errors = nullptr);

    /// Add a table that is already open.
    void add(std::unique_ptr<Dict> dict);

    bool empty() const { return dicts_.empty(); }

    /// The first table's value for `key`. An error of an earlier table
    /// stops the search (Postfix does not skip a table it cannot read);
    /// its text is that table's name, for 'NAME lookup error for "key"'.
    [[nodiscard]] Result<std::optional<std::string>>
    lookup(std::string_view key);

    /// The name of the first table whose file changed, if any.
    std::optional<std::string> changed() const;

private:
    std::vector<std::unique_ptr<Dict>> dicts_;
};

} // namespace rs::mail
