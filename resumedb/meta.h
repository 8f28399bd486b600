// SPDX-License-Identifier: MIT
// NAME
//   meta.h - the text format of a resume spool entry's ID.meta file
// DESCRIPTION
//   A meta file is a version line and key=value lines, each ending in
//   LF, at most max_meta_size octets:
//     version=1
//     state=partial|done|refused
//     hash=<hex SHA-256 of the token>      (first 32 digits = file stem)
//     binding=<hex SHA-256 of the binding text>
//     client=<client key, %XX-escaped>
//     declared=<SIZE= octets, or 0>
//     offset=<committed octets>
//     sha256=<base64 SHA-256 of the committed prefix>
//     created=<epoch seconds>  updated=<epoch seconds>  resumes=<count>
//     queue_id=<done only>  verdict=<refused only, %XX-escaped>
//   Every key must be there once (queue_id and verdict only in their
//   state); anything else - an unknown key, a duplicate, a number that
//   is not plain decimal in range, a malformed hash - makes the file
//   damaged. The file is untrusted input: parse() never trusts a length
//   or a number it has not checked.
// SEE ALSO
//   spool.h, resumedb(1).
#pragma once

#include "common/util/result.h"
#include "resumedb/spool.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace rs::resumedb {

/// The largest meta file we read or write.
inline constexpr size_t max_meta_size = 8192;
/// Bounds on the free-text fields, so that a meta file always fits.
inline constexpr size_t max_client_size = 512;
inline constexpr size_t max_verdict_size = 1024;
inline constexpr size_t max_queue_id_size = 64;

/// The content of a meta file.
struct Meta {
    State state = State::partial;
    std::string hash;    ///< 64 lower-case hex digits
    std::string binding; ///< 64 lower-case hex digits
    std::string client;
    int64_t declared = 0;
    int64_t offset = 0;
    std::string sha256; ///< base64, 44 characters
    int64_t created = 0;
    int64_t updated = 0;
    int resumes = 0;
    std::string queue_id;
    std::string verdict;
};

/// The file text for `m`. Fails (EINVAL) when a field is out of its
/// bounds, so that we never write what parse() would refuse.
[[nodiscard]] Result<std::string> format_meta(const Meta& m);

/// Parse a meta file's text; the error says what is wrong with it.
[[nodiscard]] Result<Meta> parse_meta(std::string_view text);

/// %XX escaping of '%', controls, DEL and non-ASCII octets (and back;
/// unescape fails on a malformed escape).
std::string escape(std::string_view s);
[[nodiscard]] Result<std::string> unescape(std::string_view s);

/// Lower-case hex of `n` octets.
std::string hex(const unsigned char* p, size_t n);
/// Whether `s` is `n` lower-case hex digits.
bool is_hex(std::string_view s, size_t n);
/// Whether `s` is the standard padded base64 of 32 octets.
bool is_digest_base64(std::string_view s);
/// Whether `s` could be a Postfix queue id (letters and digits only).
bool queue_id_ok(std::string_view s);

} // namespace rs::resumedb
