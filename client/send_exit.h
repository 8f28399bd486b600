// SPDX-License-Identifier: MIT
// NAME
//   send_exit.h - how resume-send's outcome becomes an exit status
// DESCRIPTION
//   The exit status follows sysexits.h, so that resume-send works as a
//   pipe(8) transport: 75 makes Postfix defer and retry, the other
//   non-zero codes bounce.
//
//     0   EX_OK           delivered (or DONE: delivered earlier)
//     64  EX_USAGE        bad command line
//     66  EX_NOINPUT      the message file cannot be opened or read
//     67  EX_NOUSER       a recipient refused with 550, 551 or 553
//     69  EX_UNAVAILABLE  any other permanent (5xx) refusal
//     70  EX_SOFTWARE     an internal error
//     75  EX_TEMPFAIL     anything temporary: 4xx, breaks, timeouts,
//                         --give-up reached, TLS required but missing
//     78  EX_CONFIG       a configuration problem (state directory,
//                         unknown server name)
// SEE ALSO
//   sysexits.h, pipe(8), man/man1/resume-send.1
#pragma once

namespace rs::send {

enum class Outcome {
    Delivered,
    Usage,
    NoInput,
    RecipientUnknown,
    Refused,
    Software,
    TempFail,
    Config,
};

int exit_code(Outcome o);
const char* outcome_name(Outcome o);

/// The outcome of a non-2xx reply; `to_rcpt` when it answered RCPT.
Outcome classify_reply(int code, bool to_rcpt);

} // namespace rs::send
