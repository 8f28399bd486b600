// SPDX-License-Identifier: MIT
// NAME
//   dict.cc - the table factory, the list, and the in-memory types
// DESCRIPTION
//   open_dict() dispatches on the type prefix; texthash:, inline:,
//   static: and unix:passwd.byname live here, the Berkeley DB types in
//   dict_db.cc.
// SEE ALSO
//   dict.h
#include "common/mail/dict.h"

#include "common/util/text.h"
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <pwd.h>
#include <unistd.h>

namespace rs::mail {

// dict_db.cc
Result<std::unique_ptr<Dict>>
open_db_dict(std::string name, std::string_view type, std::string_view path);

namespace {

// The key as the table stores it: lower case unless told otherwise.
std::string fold_key(std::string_view key, unsigned flags)
{
    return (flags & DICT_OPEN_NO_FOLD) ? std::string(key) : text::lower(key);
}

// texthash: and inline: both become a map held in memory.
class MemoryDict : public Dict {
public:
    MemoryDict(std::string name, unsigned flags,
               std::map<std::string, std::string, std::less<>> table)
        : Dict(std::move(name)), flags_(flags), table_(std::move(table))
    {
    }

    Result<std::optional<std::string>> lookup(std::string_view key) override
    {
        if (key.size() > dict_max_key_length) {
            return fail(name() + ": lookup key too long");
        }
        auto it = table_.find(fold_key(key, flags_));
        if (it == table_.end()) {
            return std::optional<std::string>();
        }
        return std::optional<std::string>(it->second);
    }

private:
    unsigned flags_;
    std::map<std::string, std::string, std::less<>> table_;
};

// static: one value for every key.
class StaticDict : public Dict {
public:
    StaticDict(std::string name, std::string value)
        : Dict(std::move(name)), value_(std::move(value))
    {
    }

    Result<std::optional<std::string>> lookup(std::string_view) override
    {
        return std::optional<std::string>(value_);
    }

private:
    std::string value_;
};

// unix:passwd.byname, through getpwnam_r so that a lookup cannot clobber
// another caller's static buffer.
class PasswdDict : public Dict {
public:
    PasswdDict(std::string name, unsigned flags)
        : Dict(std::move(name)), flags_(flags)
    {
    }

    Result<std::optional<std::string>> lookup(std::string_view key) override
    {
        // A user name never holds a NUL; one would cut the C string short
        // and match another user.
        if (key.size() > dict_max_key_length
            || key.find('\0') != std::string_view::npos) {
            return std::optional<std::string>();
        }
        std::string user = fold_key(key, flags_);

        // Grow the buffer while the C library asks for more (a long gecos
        // field), with a ceiling against a runaway passwd source.
        std::vector<char> buf(1024);
        passwd pw{};
        passwd* found = nullptr;
        for (;;) {
            int err =
                getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found);
            if (err == ERANGE && buf.size() < 1024 * 1024) {
                buf.resize(buf.size() * 2);
                continue;
            }
            // "Not found" is reported as 0, ENOENT, ESRCH, EBADF or EPERM
            // depending on the NSS module; only a real failure is an
            // error worth a 451.
            if (err != 0 && err != ENOENT && err != ESRCH && err != EBADF
                && err != EPERM) {
                return fail(name() + ": getpwnam_r: " + std::strerror(err),
                            err);
            }
            break;
        }
        if (found == nullptr) {
            return std::optional<std::string>();
        }

        // The value is the passwd(5) line, as Postfix's table gives it.
        return std::optional<std::string>(
            std::string(pw.pw_name) + ":" + pw.pw_passwd + ":"
            + std::to_string(pw.pw_uid) + ":" + std::to_string(pw.pw_gid) + ":"
            + pw.pw_gecos + ":" + pw.pw_dir + ":" + pw.pw_shell);
    }

private:
    unsigned flags_;
};

// Strip one pair of enclosing braces and the white space inside them:
// "{ a b }" -> "a b". Anything else is returned as it is.
std::string_view unbrace(std::string_view s)
{
    s = text::trim(s);
    if (s.size() >= 2 && s.front() == '{' && s.back() == '}') {
        return text::trim(s.substr(1, s.size() - 2));
    }
    return s;
}

// Split at `seps` outside braces. An unbalanced brace is an error.
Result<std::vector<std::string>> split_outside_braces(std::string_view s,
                                                      std::string_view seps)
{
    std::vector<std::string> out;
    std::string cur;
    int depth = 0;
    for (char c : s) {
        if (c == '{') {
            ++depth;
        } else if (c == '}') {
            if (--depth < 0) {
                return fail("unbalanced '}'");
            }
        }
        if (depth == 0 && seps.find(c) != std::string_view::npos) {
            if (!cur.empty()) {
                out.push_back(std::move(cur));
                cur.clear();
            }
            continue;
        }
        cur += c;
    }
    if (depth != 0) {
        return fail("missing '}'");
    }
    if (!cur.empty()) {
        out.push_back(std::move(cur));
    }
    return out;
}

// inline:{k=v, {k = v w}, ...}: the whole table sits in the parameter.
Result<std::unique_ptr<Dict>> open_inline(std::string spec,
                                          std::string_view body, unsigned flags)
{
    // The body must be one brace group, as Postfix insists.
    std::string_view t = text::trim(body);
    if (t.size() < 2 || t.front() != '{' || t.back() != '}') {
        return fail(spec + ": syntax error: expected \"{name=value, ...}\"");
    }
    auto items = split_outside_braces(t.substr(1, t.size() - 2), ", \t\r\n");
    if (!items) {
        return fail(spec + ": syntax error: " + items.error().text);
    }

    // Each item is name=value, optionally in braces so that the value may
    // hold commas and white space; the first of a repeated name wins.
    std::map<std::string, std::string, std::less<>> table;
    for (const std::string& item : *items) {
        std::string_view kv = unbrace(item);
        size_t eq = kv.find('=');
        if (eq == std::string_view::npos) {
            return fail(spec + ": syntax error: missing '=' in \""
                        + std::string(kv) + "\"");
        }
        std::string key(text::trim(kv.substr(0, eq)));
        if (key.empty()) {
            return fail(spec + ": syntax error: empty name in \""
                        + std::string(kv) + "\"");
        }
        table.emplace(fold_key(key, flags),
                      std::string(text::trim(kv.substr(eq + 1))));
    }
    return std::unique_ptr<Dict>(
        std::make_unique<MemoryDict>(std::move(spec), flags, std::move(table)));
}

// texthash:/path: postmap's input format, read once.
Result<std::unique_ptr<Dict>>
open_texthash(std::string spec, std::string_view path, unsigned flags)
{
    std::ifstream in{std::string(path)};
    if (!in) {
        int err = errno;
        return fail("open database " + std::string(path) + ": "
                        + std::strerror(err),
                    err);
    }

    // Join continuation lines (leading white space) to the line before,
    // as postmap does, and drop comments and blank lines.
    std::vector<std::string> logical;
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') {
            line.pop_back();
        }
        std::string_view t = text::trim(line);
        if (t.empty() || t.front() == '#') {
            continue;
        }
        if ((line.front() == ' ' || line.front() == '\t') && !logical.empty()) {
            logical.back() += line;
            continue;
        }
        logical.push_back(line);
    }
    if (in.bad()) {
        int err = errno;
        return fail("read " + std::string(path) + ": " + std::strerror(err),
                    err);
    }

    // Key is the first word, the value the rest; postmap keeps the first
    // of duplicate keys.
    std::map<std::string, std::string, std::less<>> table;
    for (const std::string& l : logical) {
        std::string_view t = text::trim(l);
        size_t ws = t.find_first_of(" \t");
        std::string key(t.substr(0, ws));
        std::string value(
            ws == std::string_view::npos ? "" : text::trim(t.substr(ws)));
        table.emplace(fold_key(key, flags), std::move(value));
    }
    return std::unique_ptr<Dict>(
        std::make_unique<MemoryDict>(std::move(spec), flags, std::move(table)));
}

} // namespace

Result<std::unique_ptr<Dict>> open_dict(std::string_view spec, unsigned flags)
{
    std::string name(text::trim(spec));
    std::string_view rest = name;

    // proxy: is a transport, not a table: open what it names ourselves
    // (see dict.h), but keep the configured name for log lines.
    while (text::istarts_with(rest, "proxy:")) {
        rest.remove_prefix(6);
    }

    // "type:name"; a bare word is not a table.
    size_t colon = rest.find(':');
    if (colon == std::string_view::npos || colon == 0) {
        return fail("need dictionary type:name, got \"" + name + "\"");
    }
    std::string type = text::lower(rest.substr(0, colon));
    std::string_view arg = rest.substr(colon + 1);

    if (type == "hash" || type == "btree") {
        return open_db_dict(name, type, arg);
    }
    if (type == "texthash") {
        return open_texthash(name, arg, flags);
    }
    if (type == "inline") {
        return open_inline(name, arg, flags);
    }
    if (type == "static") {
        return std::unique_ptr<Dict>(
            std::make_unique<StaticDict>(name, std::string(unbrace(arg))));
    }
    if (type == "unix") {
        if (arg != "passwd.byname") {
            return fail("unknown table: " + name);
        }
        return std::unique_ptr<Dict>(std::make_unique<PasswdDict>(name, flags));
    }
    return fail("unsupported dictionary type: " + type);
}

std::vector<std::string> split_map_list(std::string_view value)
{
    // An unbalanced brace leaves the text as one item: open_dict() then
    // names the bad table.
    auto items = split_outside_braces(value, ", \t\r\n");
    if (!items) {
        std::string t(text::trim(value));
        return t.empty() ? std::vector<std::string>{}
                         : std::vector<std::string>{t};
    }
    return *items;
}

namespace {

// What a table that failed to open turns into.
class FailedDict : public Dict {
public:
    FailedDict(std::string name, Error err)
        : Dict(std::move(name)), err_(std::move(err))
    {
    }

    Result<std::optional<std::string>> lookup(std::string_view) override
    {
        return tl::unexpected<Error>(err_);
    }

private:
    Error err_;
};

} // namespace

DictList DictList::open(std::string_view value, unsigned flags,
                        std::vector<std::string>* open_errors)
{
    DictList list;
    for (const std::string& spec : split_map_list(value)) {
        auto d = open_dict(spec, flags);
        if (!d) {
            if (open_errors != nullptr) {
                open_errors->push_back(spec + " is unavailable. "
                                       + d.error().text);
            }
            list.add(std::make_unique<FailedDict>(spec, d.error()));
            continue;
        }
        list.add(std::move(*d));
    }
    return list;
}

void DictList::add(std::unique_ptr<Dict> dict)
{
    dicts_.push_back(std::move(dict));
}

Result<std::optional<std::string>> DictList::lookup(std::string_view key)
{
    for (auto& d : dicts_) {
        auto r = d->lookup(key);
        if (!r) {
            return fail(d->name(), r.error().code);
        }
        if (r->has_value()) {
            return r;
        }
    }
    return std::optional<std::string>();
}

std::optional<std::string> DictList::changed() const
{
    for (const auto& d : dicts_) {
        if (d->changed()) {
            return d->name();
        }
    }
    return std::nullopt;
}

} // namespace rs::mail
