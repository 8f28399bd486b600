// SPDX-License-Identifier: MIT
// NAME
//   text.h - small text helpers that know nothing of mail
// DESCRIPTION
//   Case folding, trimming, splitting and strict number parsing. Numbers
//   are parsed with std::from_chars, must be fully consumed, and are range
//   checked by the caller-supplied bounds.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rs::text {

std::string lower(std::string_view s);
std::string upper(std::string_view s);
bool iequals(std::string_view a, std::string_view b);
bool istarts_with(std::string_view s, std::string_view prefix);
std::string_view trim(std::string_view s);

/// Split at any of `seps`, dropping empty fields (Postfix list syntax is
/// "comma and/or whitespace separated").
std::vector<std::string> split(std::string_view s,
                               std::string_view seps = ", \t\r\n");

/// Parse a decimal integer that must use all of `s` and lie in [lo, hi].
std::optional<int64_t> parse_int(std::string_view s, int64_t lo = INT64_MIN,
                                 int64_t hi = INT64_MAX);

/// Replace every byte that is not printable ASCII with `repl`, and cut to
/// at most `max` bytes: what client text may look like in a log line.
std::string printable(std::string_view s, size_t max = 100, char repl = '?');

/// The value of one hexadecimal digit (either case), or -1.
int hex_value(char c);

} // namespace rs::text
