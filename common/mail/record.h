// SPDX-License-Identifier: MIT
// NAME
//   record.h - Postfix queue-file records: type, varint length, data
// DESCRIPTION
//   A record is one type byte, the length in 7-bit groups with the least
//   significant group first (0x80 = more follows, at most 5 bytes), and
//   the data. The type letters used by smtpd are named below.
#pragma once

#include "common/util/result.h"
#include <optional>
#include <string>
#include <string_view>

namespace rs::mail::rec {

inline constexpr char TIME = 'T';
inline constexpr char FROM = 'S';
inline constexpr char RCPT = 'R';
inline constexpr char ATTR = 'A';
inline constexpr char FILT = 'L'; // content_filter, in the envelope
inline constexpr char RDR = '>';
inline constexpr char FLGS = 'f';
inline constexpr char MESG = 'M';
inline constexpr char CONT = 'L'; // a line fragment, in the content
inline constexpr char NORM = 'N';
inline constexpr char XTRA = 'X';
inline constexpr char VERP = 'V';
inline constexpr char MILT_COUNT = 'm';
inline constexpr char END = 'E';

/// Append one record to `out`.
void put(std::string& out, char type, std::string_view data);

struct Scanned {
    char type = 0;
    std::string_view data; ///< points into the scanned buffer
    size_t consumed = 0;
};

/// Read one record from the front of `buf`: nullopt when incomplete, an
/// error for a bad length or data longer than `limit`.
[[nodiscard]] Result<std::optional<Scanned>> scan(std::string_view buf,
                                                  size_t limit);

} // namespace rs::mail::rec
