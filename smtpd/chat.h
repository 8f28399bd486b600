// SPDX-License-Identifier: MIT
// NAME
//   chat.h - reply texts, log escapes and the command counters of a session
// DESCRIPTION
//   Small pure helpers the session uses to speak and to log as Postfix
//   3.7's smtpd does: the per-command ok/total counters of the
//   "disconnect from" line, the soft_bounce rewrite of 5xx replies, the
//   C-style escape used in "improper command pipelining" lines, and the
//   shortened request text of "request longer than" warnings.
// SEE ALSO
//   session.h; Postfix smtpd(8) (behaviour only).
#pragma once

#include <array>
#include <string>
#include <string_view>

namespace rs::smtpd {

/// The counters of the "disconnect from" line, in Postfix's table order.
class CommandCounters {
public:
    /// Command names in the order they appear in the disconnect line;
    /// "unknown" takes every command not in the table. "xresume" is
    /// ours (Postfix has no such command); it stands where it is used,
    /// between RCPT and the data.
    static constexpr std::array<std::string_view, 17> names = {
        "helo", "ehlo", "xclient", "xforward", "starttls", "auth",
        "mail", "rcpt", "xresume", "data",     "bdat",     "rset",
        "noop", "vrfy", "etrn",    "quit",     "unknown"};

    /// Count one more use of `name` (case-insensitive; anything not in
    /// the table counts as "unknown"). Returns the slot for succeeded().
    int started(std::string_view name);
    /// The command in slot `slot` succeeded.
    void succeeded(int slot);

    /// " ehlo=1 mail=1 rcpt=0/1 ... commands=N[/M]": items for used
    /// commands only, "/total" only where it differs from ok, and
    /// " commands=0/0" when nothing was received.
    std::string summary() const;

private:
    std::array<int, names.size()> ok_{};
    std::array<int, names.size()> total_{};
};

/// soft_bounce=yes: a 5xx reply becomes 4xx, and a 5.x.y enhanced code
/// right after it becomes 4.x.y. Other replies are returned unchanged.
std::string soft_bounce_reply(std::string_view reply);

/// True for a 4xx or 5xx reply: these count toward the error sleep.
bool is_error_reply(std::string_view reply);

/// Escape bytes for a log line: CR, LF, TAB and friends as \r \n \t,
/// backslash doubled, other non-printable bytes as \ooo; at most `max`
/// input bytes are used.
std::string escape_for_log(std::string_view bytes, size_t max = 100);

/// The head of an over-long request for the "request longer than"
/// warning: the first 30 bytes, made printable, then "...".
std::string request_head(std::string_view line);

} // namespace rs::smtpd
