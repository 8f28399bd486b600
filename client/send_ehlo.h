// SPDX-License-Identifier: MIT
// NAME
//   send_ehlo.h - the EHLO keywords resume-send uses
// DESCRIPTION
//   parse_ehlo() reads the service extensions of a 250 reply to EHLO:
//   PIPELINING, STARTTLS, CHUNKING, 8BITMIME, SMTPUTF8, SIZE with its
//   limit, and XRESUME with TTL= and MAXSIZE=. Keywords are matched
//   without regard to case; unknown ones are ignored. A malformed
//   XRESUME line (a TTL that is not a number) means XRESUME is not used.
// SEE ALSO
//   RFC 5321 section 4.1.1.1, RFC 1870, RFC 2920, RFC 3030, RFC 3207,
//   RFC 6531, resume-protocol.md
#pragma once

#include "client/send_reply.h"

#include <cstdint>
#include <optional>

namespace rs::send {

struct Ehlo {
    bool pipelining = false;
    bool starttls = false;
    bool chunking = false;
    bool eightbitmime = false;
    bool smtputf8 = false;
    bool size = false;
    /// SIZE's limit; 0 when SIZE comes without one (no fixed limit).
    uint64_t size_limit = 0;
    bool xresume = false;
    int64_t xresume_ttl = 0;
    /// MAXSIZE=, absent: no limit beyond SIZE.
    std::optional<uint64_t> xresume_maxsize;
};

Ehlo parse_ehlo(const Reply& reply);

} // namespace rs::send
