// SPDX-License-Identifier: MIT
// NAME
//   send_exit.cc - outcomes and exit statuses
// SEE ALSO
//   send_exit.h
#include "client/send_exit.h"

#include <sysexits.h>

namespace rs::send {

int exit_code(Outcome o)
{
    switch (o) {
    case Outcome::Delivered:
        return EX_OK;
    case Outcome::Usage:
        return EX_USAGE;
    case Outcome::NoInput:
        return EX_NOINPUT;
    case Outcome::RecipientUnknown:
        return EX_NOUSER;
    case Outcome::Refused:
        return EX_UNAVAILABLE;
    case Outcome::Software:
        return EX_SOFTWARE;
    case Outcome::TempFail:
        return EX_TEMPFAIL;
    case Outcome::Config:
        return EX_CONFIG;
    }
    return EX_SOFTWARE;
}

const char* outcome_name(Outcome o)
{
    switch (o) {
    case Outcome::Delivered:
        return "delivered";
    case Outcome::Usage:
        return "usage";
    case Outcome::NoInput:
        return "noinput";
    case Outcome::RecipientUnknown:
        return "nouser";
    case Outcome::Refused:
        return "refused";
    case Outcome::Software:
        return "software";
    case Outcome::TempFail:
        return "tempfail";
    case Outcome::Config:
        return "config";
    }
    return "software";
}

Outcome classify_reply(int code, bool to_rcpt)
{
    // 2xx and 3xx are not refusals; a caller asking about them has a bug.
    if (code >= 200 && code < 400) {
        return Outcome::Software;
    }
    if (code >= 400 && code < 500) {
        return Outcome::TempFail;
    }
    // 550 mailbox unavailable, 551 user not local, 553 mailbox name not
    // allowed: about the recipient, so EX_NOUSER (pipe(8): 5.1.1).
    if (to_rcpt && (code == 550 || code == 551 || code == 553)) {
        return Outcome::RecipientUnknown;
    }
    if (code >= 500 && code < 600) {
        return Outcome::Refused;
    }
    // Not an SMTP code at all: a broken server, worth another try.
    return Outcome::TempFail;
}

} // namespace rs::send
