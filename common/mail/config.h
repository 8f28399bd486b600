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

private:
    std::map<std::string, std::string, std::less<>> values_;
    std::map<std::string, std::string, std::less<>> overrides_;
};

/// Postfix 3.7.11's compiled-in default for `name`, unexpanded, or
/// nullopt when Postfix has no such parameter and neither have we.
std::optional<std::string_view> default_value(std::string_view name);

} // namespace rs::mail
