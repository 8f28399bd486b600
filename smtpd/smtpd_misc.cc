// SPDX-License-Identifier: MIT
// NAME
//   smtpd_misc.cc - RSET, NOOP, VRFY, QUIT and unknown commands
// DESCRIPTION
//   The small commands, with Postfix 3.7's replies as observed (ETRN is
//   in smtpd_etrn.cc). VRFY, when enabled,
//   answers 252 without a recipient check. HELP is not a command in
//   Postfix either: it gets the unknown-command reply.
// SEE ALSO
//   session.h.
#include "common/mail/log.h"
#include "common/util/text.h"
#include "smtpd/session.h"

namespace rs::smtpd {

void Session::rset_cmd(const std::vector<std::string>& argv)
{
    if (argv.size() != 1) {
        reply("501 5.5.4 Syntax: RSET");
        finish_cmd(false);
        return;
    }

    // RSET also ends a failed BDAT series.
    mail_reset();
    bdat_error_ = false;
    reply("250 2.0.0 Ok");
    finish_cmd(true);
}

void Session::noop_cmd()
{
    reply("250 2.0.0 Ok");
    finish_cmd(true);
}

void Session::vrfy_cmd(const std::vector<std::string>& argv)
{
    // disable_vrfy_command keeps address harvesters guessing.
    if (cfg_.disable_vrfy) {
        reply("502 5.5.1 VRFY command is disabled");
        finish_cmd(false);
        return;
    }
    if (argv.size() < 2) {
        reply("501 5.5.4 Syntax: VRFY address [SMTPUTF8]");
        finish_cmd(false);
        return;
    }

    // "Cannot verify, but will accept": the address as given.
    std::string addr = argv[1];
    if (addr.size() >= 2 && addr.front() == '<' && addr.back() == '>') {
        addr = addr.substr(1, addr.size() - 2);
    }
    reply("252 2.0.0 " + text::printable(addr, cfg_.line_length_limit));
    finish_cmd(true);
}

void Session::quit_cmd()
{
    reply("221 2.0.0 Bye");
    finish_cmd(true);
    mail_reset();
    close_after_reply();
}

void Session::unknown_cmd(bool empty)
{
    reply(empty ? "500 5.5.2 Error: bad syntax"
                : "500 5.5.2 Error: command not recognized");
    finish_cmd(false);
}

} // namespace rs::smtpd
