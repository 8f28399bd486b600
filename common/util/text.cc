// SPDX-License-Identifier: MIT
// NAME
//   text.cc - small text helpers
#include "common/util/text.h"

#include <algorithm>
#include <charconv>

namespace rs::text {

std::string lower(std::string_view s)
{
    std::string out(s);
    for (auto& c : out) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return out;
}

std::string upper(std::string_view s)
{
    std::string out(s);
    for (auto& c : out) {
        if (c >= 'a' && c <= 'z') {
            c = static_cast<char>(c - 'a' + 'A');
        }
    }
    return out;
}

static char fold(char c)
{
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b)
{
    return a.size() == b.size()
           && std::equal(a.begin(), a.end(), b.begin(),
                         [](char x, char y) { return fold(x) == fold(y); });
}

bool istarts_with(std::string_view s, std::string_view prefix)
{
    return s.size() >= prefix.size()
           && iequals(s.substr(0, prefix.size()), prefix);
}

std::string_view trim(std::string_view s)
{
    const char* ws = " \t\r\n";
    auto b = s.find_first_not_of(ws);
    if (b == std::string_view::npos) {
        return {};
    }
    auto e = s.find_last_not_of(ws);
    return s.substr(b, e - b + 1);
}

std::vector<std::string> split(std::string_view s, std::string_view seps)
{
    std::vector<std::string> out;
    size_t i = 0;
    while (i < s.size()) {
        auto b = s.find_first_not_of(seps, i);
        if (b == std::string_view::npos) {
            break;
        }
        auto e = s.find_first_of(seps, b);
        if (e == std::string_view::npos) {
            e = s.size();
        }
        out.emplace_back(s.substr(b, e - b));
        i = e;
    }
    return out;
}

std::optional<int64_t> parse_int(std::string_view s, int64_t lo, int64_t hi)
{
    int64_t v = 0;
    if (s.empty()) {
        return std::nullopt;
    }
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || v < lo || v > hi) {
        return std::nullopt;
    }
    return v;
}

std::string printable(std::string_view s, size_t max, char repl)
{
    std::string out;
    out.reserve(std::min(s.size(), max));
    for (char c : s.substr(0, std::min(s.size(), max))) {
        auto u = static_cast<unsigned char>(c);
        out.push_back(u >= 0x20 && u < 0x7f ? c : repl);
    }
    return out;
}

int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

} // namespace rs::text
