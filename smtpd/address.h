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
//
//   What the parser does not judge: whether the domain is a valid host
//   name or [address] literal, and whether the address starts with "-".
//   Postfix leaves that to trivial-rewrite's resolve (RESOLVE_FLAG_ERROR),
//   so the session resolves each MAIL and RCPT address and answers
//   address_syntax_reply() when that flag is set. ESMTP parameters are
//   judged by check_mail_params() / check_rcpt_params(), left to right,
//   the first bad one giving the reply, as Postfix 3.7 does.
// BUGS
//   The input is bounded only by the session's line_length_limit.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rs::smtpd {

struct PathArg {
    std::string typed;    ///< between the brackets, as the client wrote it
    std::string internal; ///< unquoted local part @ domain; "" for <>
    std::vector<std::pair<std::string, std::string>>
        params; ///< KEY upper-cased
    /// The parameters as the client typed them ("size=10", "SIZE",
    /// "BODY="), in order: what "555 5.5.4 Unsupported option:" quotes.
    std::vector<std::string> raw_params;
};

struct ParseResult {
    std::optional<PathArg> arg;
    std::string reply; ///< set on failure: full reply, e.g. "501 5.1.7 Bad
                       ///< sender address syntax"
    /// On an address syntax failure: the address as typed, brackets and
    /// all, for "warning: Illegal address syntax from %s in %s command: %s".
    std::string token;
};

/// `verb` is "MAIL" or "RCPT"; `text` is everything after the verb.
ParseResult parse_path_arg(std::string_view verb, std::string_view text,
                           bool strict_rfc821, bool smtputf8_enable);

/// Quote the local part where RFC 5321 needs it ("a b"@x). "" stays "".
std::string external_form(std::string_view internal);

/// xtext (RFC 3461) decoding; nullopt if malformed.
std::optional<std::string> xtext_decode(std::string_view s);

/// The RFC 5321 quoted form undone: "\"a b\"@x" -> "a b@x".
std::string internal_form(std::string_view external);

/// The reply for an address trivial-rewrite flags RESOLVE_FLAG_ERROR:
/// "501 5.1.7 Bad sender address syntax" for MAIL, "501 5.1.3 Bad
/// recipient address syntax" for RCPT.
std::string address_syntax_reply(std::string_view verb);

/// What MAIL's parameters mean, once check_mail_params() accepted them.
struct MailParams {
    std::optional<int64_t> size; ///< SIZE=, the last one given
    std::string body;            ///< "", "7BIT" or "8BITMIME" (upper case)
    int ret = 0;                 ///< 0, DSN_RET_FULL 1 or DSN_RET_HDRS 2
    std::string envid;           ///< xtext-decoded ENVID, "" if none
    bool smtputf8 = false;
    std::optional<std::string> auth; ///< AUTH= as typed (xtext)
};

struct MailParamLimits {
    int64_t message_size_limit = 0; ///< 0: no limit
    bool smtputf8_enable = true;
};

/// Judge MAIL's parameters as Postfix 3.7's mail_cmd does: "" when they
/// pass (and `out` filled), else the full reply, e.g. "555 5.5.4
/// Unsupported option: FOO", "501 5.5.4 Bad message size syntax", "552
/// 5.3.4 Message size exceeds fixed limit" (SIZE over the limit, checked
/// after every parameter) or "... file system imposed limit" (SIZE does
/// not fit in 63 bits, checked at once).
std::string check_mail_params(const PathArg& arg, const MailParamLimits& lim,
                              MailParams& out);

/// What RCPT's parameters mean, once check_rcpt_params() accepted them.
struct RcptParams {
    int notify = 0;         ///< notify_mask(); 0 when NOTIFY was absent
    std::string orcpt_type; ///< "" when ORCPT was absent
    std::string orcpt_addr; ///< xtext (or utf-8 uxtext) decoded
    /// A warning to log, as Postfix does for an unknown NOTIFY keyword:
    /// 'unknown DSN NOTIFY command value "FOO" in "SUCCESS,FOO"'.
    std::string warning;
};

/// Judge RCPT's parameters (NOTIFY, ORCPT) as Postfix 3.7's rcpt_cmd
/// does: "" when they pass, else the full reply.
std::string check_rcpt_params(const PathArg& arg, RcptParams& out);

/// DSN NOTIFY=... to the cleanup mask (NEVER 1 SUCCESS 2 FAILURE 4
/// DELAY 8); nullopt if malformed (NEVER combined with others, unknown).
std::optional<int> notify_mask(std::string_view value);

} // namespace rs::smtpd
