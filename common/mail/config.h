// SPDX-License-Identifier: MIT
// NAME
//   config.h - main.cf and -o overrides, evaluated as Postfix 3.7 does
// DESCRIPTION
//   A Config holds the raw name=value pairs of main.cf, then the master.cf
//   -o overrides on top, and evaluates a parameter when it is fetched:
//   recursive $name / ${name} / $(name) expansion, ${name?x}, ${name:x},
//   ${name?{x}:{y}}, and ${{a} op {b} ? {t} : {f}} (== != < <= > >=, and
//   the compatibility-level forms <level etc.). A parameter that is absent
//   gets Postfix 3.7's compiled-in default (the `postconf -d` table), which
//   is then written back so later $name references see it. "Raw"
//   parameters are never expanded.
//
//   Typed getters call log::fatal() with the parameter's name on a bad
//   value, as Postfix's daemons do at start-up; they are meant for
//   start-up, not for the data path.
// THREADS
//   Not thread-safe; one Config per process.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace rs::mail {

class Config {
public:
    Config();

    /// Read `$dir/main.cf` and set config_directory = dir. A missing file
    /// is fatal; syntax errors are fatal with "<file>, line N: ...".
    void read_main_cf(const std::string& dir);

    /// Parse main.cf-format text (for tests); `name` labels messages.
    void read_text(std::string_view text, std::string_view name);

    /// A master.cf `-o name=value` override, stored unexpanded; it replaces
    /// any main.cf value. `arg` is the whole "name=value" (whitespace
    /// around '=' and at both ends is trimmed). Fatal when there is no '='.
    void set_override(std::string_view arg);

    /// Set a value directly (read-only parameters the program sets itself,
    /// such as process_name, service_name, process_id).
    void set(std::string_view name, std::string_view value);

    /// True if main.cf or an override gave the parameter a value.
    bool is_set(std::string_view name) const;

    /// The unexpanded value (main.cf, override or default).
    std::string raw(std::string_view name);

    /// The recursively expanded value; "" for an unknown parameter.
    std::string str(std::string_view name);

    /// Expand arbitrary text against this configuration.
    std::string expand(std::string_view text);

    /// yes/no, case-insensitive. Anything else is fatal.
    bool boolean(std::string_view name);

    /// A decimal integer in [min, max]. Anything else is fatal.
    int64_t integer(std::string_view name, int64_t min = 0,
                    int64_t max = INT64_MAX);

    /// A time with an optional unit (s m h d w); `unit` is the default unit
    /// for a bare number. Returns seconds. Out of [min, max] is fatal.
    int64_t time(std::string_view name, char unit = 's', int64_t min = 0,
                 int64_t max = INT64_MAX);

    /// The value split into a list at commas and whitespace.
    std::vector<std::string> list(std::string_view name);

    /// Compatibility level as a comparable number (e.g. "3.6" -> 3006000).
    static int64_t compat_level_value(std::string_view v);

    /// True for the parameters that are never $-expanded (Postfix's raw
    /// parameters as `postconf -x` shows them: smtpd_reject_footer,
    /// smtpd_expansion_filter, default_rbl_reply, and a few of other
    /// daemons').
    static bool is_raw(std::string_view name);

    /// The deepest nesting of values recursive expansion allows; one more
    /// is fatal ("unreasonable macro call nesting"), as in Postfix.
    static constexpr int max_nesting = 100;

private:
    std::map<std::string, std::string, std::less<>> values_;
    std::map<std::string, std::string, std::less<>> overrides_;

    // Defaults written back on first use, kept apart so is_set() stays
    // true only for what main.cf or -o said.
    std::map<std::string, std::string, std::less<>> defaulted_;

    // The unexpanded value, or nullopt for an unknown parameter.
    std::optional<std::string> lookup(std::string_view name);
    std::string computed_default(std::string_view name);
    void expand_into(std::string& out, std::string_view text, int depth,
                     std::string_view context);
};

/// One row of the generated default table (defaults.cc).
struct DefaultRow {
    /// postfix: from `postconf -d`; computed: machine-dependent, the value
    /// is "" and Config computes it at run time; ours: resume-smtpd's own.
    enum class Kind { postfix, computed, ours };
    std::string_view name;
    std::string_view value;
    Kind kind;
};

/// The row for `name`, or nullptr.
const DefaultRow* find_default_row(std::string_view name);

/// Every row, sorted by name.
std::span<const DefaultRow> default_rows();

/// Postfix 3.7.11's compiled-in default for `name`, unexpanded, or
/// nullopt when Postfix has no such parameter and neither have we. For the
/// machine-dependent rows (myhostname, mydomain, mynetworks, process_id,
/// process_name, service_name, config_directory) this is "": ask a Config.
std::optional<std::string_view> default_value(std::string_view name);

} // namespace rs::mail
