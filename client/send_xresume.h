// SPDX-License-Identifier: MIT
// NAME
//   send_xresume.h - XRESUME replies and the check of a resume offset
// DESCRIPTION
//   parse_xresume() sorts the reply to "XRESUME NEW" or "XRESUME <token>"
//   into what the sender does next:
//     Offset       250 TOKEN=t OFFSET=n [SHA256=d] TTL=s: send from n
//                  (after check_offset() accepted n and d)
//     Done         250 DONE QUEUEID=id: delivered earlier, send nothing
//     Unavailable  452 (4.3.1): no resume now, send plainly from 0
//     NotOffered   501, 502, 503: not for us or out of sequence; plain
//     TempFail     any other 4xx (e.g. 421): try again later
//     Refused      any other 5xx: the stored permanent verdict
//     Malformed    a 2xx we cannot read: plain, without a token
//   check_offset() accepts OFFSET=n only when n lies within the local
//   message, sits at a line boundary, and SHA256= equals the digest of
//   the local first n octets; otherwise the sender starts over with
//   XRESUME NEW.
// SEE ALSO
//   resume-protocol.md, send_message.h
#pragma once

#include "client/send_message.h"
#include "client/send_reply.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace rs::send {

inline constexpr size_t kMinToken = 16;
inline constexpr size_t kMaxToken = 64;

/// base64url (RFC 4648 section 5, no padding), 16 to 64 characters.
bool valid_token(std::string_view token);

struct XresumeReply {
    enum class Kind {
        Offset,
        Done,
        Unavailable,
        NotOffered,
        TempFail,
        Refused,
        Malformed,
    };
    Kind kind = Kind::Malformed;
    std::string token;
    uint64_t offset = 0;
    /// SHA256= as sent (base64), empty at OFFSET=0.
    std::string sha256;
    int64_t ttl = 0;
    std::string queue_id;
};

XresumeReply parse_xresume(const Reply& reply);

/// Why an offset is refused, or empty when it is good.
[[nodiscard]] Result<std::string> check_offset(const Spool& spool,
                                               const XresumeReply& r);

/// A short, stable name for a token in logs: never the token itself.
std::string token_tag(std::string_view token);

} // namespace rs::send
