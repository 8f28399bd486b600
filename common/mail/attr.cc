// SPDX-License-Identifier: MIT
// NAME
//   attr.cc - Postfix attribute lists: attr0 and plain print and scan
// DESCRIPTION
//   The encoders write what the declared list holds, with no flushing: a
//   caller may put several lists into one write. The scanners accept a
//   buffer that may end anywhere; they report "not yet" (nullopt) until
//   the terminator of a whole list is inside the first `limit` bytes, so
//   a peer cannot make us buffer more than `limit` for one list.
//
//   A hash is flattened. On the wire it is "{" ... "}" in the name
//   position with no value (attr0: "{\0"; plain: "{\n"); in a List it
//   is an entry named "{" or "}" with an empty value. Hashes may nest;
//   a "}" without its "{", or a list that ends inside a hash, is
//   malformed.
// BUGS
//   Postfix's plain encoder writes "{\0\n" for a hash; no plain-protocol
//   peer sends or expects hashes, so print_plain() writes "{\n".
//   The encoders trust the caller: a name or value with a NUL (attr0) or
//   LF (plain), or a name with "=" (plain), gives a list the peer parses
//   differently. Callers build lists from values they checked.
// SEE ALSO
//   attr.h; Postfix attr_scan0(3), attr_scan_plain(3) (behaviour only).
#include "common/mail/attr.h"

namespace rs::mail::attr {

namespace {

constexpr std::string_view OPEN = "{";
constexpr std::string_view CLOSE = "}";

bool is_marker(std::string_view name)
{
    return name == OPEN || name == CLOSE;
}

// Append `list` with the given field separator (between name and
// value), entry terminator and list terminator.
void print_with(std::string& out, const List& list, char sep, char term)
{
    for (const auto& [name, value] : list) {

        // Hash markers stand in the name position and carry no value.
        if (is_marker(name)) {
            out += name;
            out += term;
            continue;
        }
        // A terminator inside a name or value would end it early and
        // turn the rest into attributes of the peer's choosing: cut it
        // there, as a C string would be cut.
        out += std::string_view(name).substr(0, name.find(term));
        out += sep;
        out += std::string_view(value).substr(0, value.find(term));
        out += term;
    }

    // The list ends with an empty name.
    out += term;
}

// Track hash nesting for one scanned name; false when it is unbalanced.
bool nest(std::string_view name, size_t& depth)
{
    if (name == OPEN) {
        ++depth;
    } else if (name == CLOSE) {
        if (depth == 0) {
            return false;
        }
        --depth;
    }
    return true;
}

} // namespace

void print0(std::string& out, const List& list)
{
    print_with(out, list, '\0', '\0');
}

void print_plain(std::string& out, const List& list)
{
    print_with(out, list, '=', '\n');
}

Result<std::optional<Scanned>> scan0(std::string_view buf, size_t limit)
{
    // Look no further than the limit: a list must end inside it.
    std::string_view win = buf.substr(0, limit);
    Scanned got;
    size_t pos = 0;
    size_t depth = 0;

    for (;;) {

        // The next name runs to a NUL; without one the list is partial.
        size_t end = win.find('\0', pos);
        if (end == std::string_view::npos) {
            break;
        }
        std::string_view name = win.substr(pos, end - pos);
        pos = end + 1;

        // An empty name is the terminator; it may not close a hash.
        if (name.empty()) {
            if (depth != 0) {
                return fail("attribute list ends inside a hash");
            }
            got.consumed = pos;
            return std::optional<Scanned>(std::move(got));
        }

        // Hash markers have no value.
        if (is_marker(name)) {
            if (!nest(name, depth)) {
                return fail("attribute hash closed but never opened");
            }
            got.list.emplace_back(std::string(name), std::string());
            continue;
        }

        // A value runs to the next NUL.
        end = win.find('\0', pos);
        if (end == std::string_view::npos) {
            break;
        }
        got.list.emplace_back(std::string(name),
                              std::string(win.substr(pos, end - pos)));
        pos = end + 1;
    }

    // Partial: wait for more unless the limit is already used up.
    if (buf.size() >= limit) {
        return fail("attribute list longer than " + std::to_string(limit)
                    + " bytes");
    }
    return std::optional<Scanned>();
}

Result<std::optional<Scanned>> scan_plain(std::string_view buf, size_t limit)
{
    // Look no further than the limit: a list must end inside it.
    std::string_view win = buf.substr(0, limit);
    Scanned got;
    size_t pos = 0;
    size_t depth = 0;

    for (;;) {

        // One entry per line; without an LF the list is partial.
        size_t end = win.find('\n', pos);
        if (end == std::string_view::npos) {
            break;
        }
        std::string_view line = win.substr(pos, end - pos);
        pos = end + 1;

        // An empty line is the terminator; it may not close a hash.
        if (line.empty()) {
            if (depth != 0) {
                return fail("attribute list ends inside a hash");
            }
            got.consumed = pos;
            return std::optional<Scanned>(std::move(got));
        }

        // Hash markers are lines of their own.
        if (is_marker(line)) {
            if (!nest(line, depth)) {
                return fail("attribute hash closed but never opened");
            }
            got.list.emplace_back(std::string(line), std::string());
            continue;
        }

        // The name runs to the first "="; a line without one has no
        // value, which the protocol does not allow.
        size_t eq = line.find('=');
        if (eq == std::string_view::npos) {
            return fail("attribute without a value: "
                        + std::string(line.substr(0, 100)));
        }
        if (eq == 0) {
            return fail("attribute with an empty name");
        }
        got.list.emplace_back(std::string(line.substr(0, eq)),
                              std::string(line.substr(eq + 1)));
    }

    // Partial: wait for more unless the limit is already used up.
    if (buf.size() >= limit) {
        return fail("attribute list longer than " + std::to_string(limit)
                    + " bytes");
    }
    return std::optional<Scanned>();
}

std::optional<std::string_view> find(const List& list, std::string_view name)
{
    for (const auto& [n, v] : list) {
        if (n == name) {
            return std::string_view(v);
        }
    }
    return std::nullopt;
}

} // namespace rs::mail::attr
