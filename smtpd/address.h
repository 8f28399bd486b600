// SPDX-License-Identifier: MIT
// NAME
//   address.h - MAIL FROM / RCPT TO arguments and their ESMTP parameters
// DESCRIPTION
//   Parses the text after "MAIL" or "RCPT" the way Postfix 3.7's smtpd
//   does with strict_rfc821_envelopes = no (its default): optional space
//   after the colon, angle brackets optional, quoted local parts, source
//   routes (<@a,@b:user@c>) dropped, then space-separated KEY[=VALUE]
//   parameters. Addresses are kept in three forms: as typed (for
//   dsn_orig_rcpt), internal (unquoted, for cleanup records and policy),
//   and external (RFC 5321 quoted, for log lines and headers).
//   Failures carry the exact SMTP reply Postfix gives.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rs::smtpd {

struct PathArg {
    std::string typed;    ///< between the brackets, as the client wrote it
    std::string internal; ///< unquoted local part @ domain; "" for <>
    std::vector<std::pair<std::string, std::string>> params; ///< KEY upper-cased
};

struct ParseResult {
    std::optional<PathArg> arg;
    std::string reply; ///< set on failure: full reply, e.g. "501 5.1.7 Bad sender address syntax"
};

/// `verb` is "MAIL" or "RCPT"; `text` is everything after the verb.
ParseResult parse_path_arg(std::string_view verb, std::string_view text,
                           bool strict_rfc821, bool smtputf8_enable);

/// Quote the local part where RFC 5321 needs it ("a b"@x). "" stays "".
std::string external_form(std::string_view internal);

/// xtext (RFC 3461) decoding; nullopt if malformed.
std::optional<std::string> xtext_decode(std::string_view s);

/// DSN NOTIFY=... to the cleanup mask (NEVER 1 SUCCESS 2 FAILURE 4
/// DELAY 8); nullopt if malformed (NEVER combined with others, unknown).
std::optional<int> notify_mask(std::string_view value);

} // namespace rs::smtpd
