// SPDX-License-Identifier: MIT
// NAME
//   attr.h - Postfix attribute lists: the NUL-terminated and plain encodings
// DESCRIPTION
//   attr0 ("name\0value\0" ... "\0") is what cleanup, trivial-rewrite,
//   proxymap, tlsmgr and the postscreen hand-off speak; plain
//   ("name=value\n" ... "\n") is anvil's and the policy protocol's.
//   A hash ("{" ... "}") is flattened: its members appear in the list in
//   order, between entries named "{" and "}" with empty values.
//   Scanners work on a byte buffer that may hold a partial list: they
//   return nullopt until a whole list is there, and an error for a
//   malformed one or one larger than `limit` bytes.
#pragma once

#include "common/util/result.h"
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rs::mail::attr {

using List = std::vector<std::pair<std::string, std::string>>;

/// Append `list` and its terminator in attr0 encoding.
void print0(std::string& out, const List& list);
/// Append `list` and its terminator in plain encoding.
void print_plain(std::string& out, const List& list);

struct Scanned {
    List list;
    size_t consumed = 0; ///< bytes of the buffer the list used
};

[[nodiscard]] Result<std::optional<Scanned>> scan0(std::string_view buf,
                                                   size_t limit);
[[nodiscard]] Result<std::optional<Scanned>> scan_plain(std::string_view buf,
                                                        size_t limit);

/// The value of the first attribute named `name`, if any.
std::optional<std::string_view> find(const List& list, std::string_view name);

} // namespace rs::mail::attr
