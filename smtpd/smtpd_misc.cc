// SPDX-License-Identifier: MIT
// NAME
//   smtpd_misc.cc - RSET, NOOP, VRFY, QUIT and unknown commands
// DESCRIPTION
//   The small commands, with Postfix 3.7's replies as observed (ETRN is
//   in smtpd_etrn.cc). VRFY, when enabled,
//   checks the address as a recipient and answers 252. HELP is not a command in
//   Postfix either: it gets the unknown-command reply.
// SEE ALSO
//   session.h.
#include "common/mail/log.h"
#include "common/util/text.h"
#include "smtpd/address.h"
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

    // The address as RCPT would take it (brackets optional), checked as
    // a recipient: trivial-rewrite's syntax verdict, relay control, the
    // unknown-recipient check. A refusal is logged like RCPT's.
    std::string typed = argv[1];
    std::string bare = typed;
    if (bare.size() >= 2 && bare.front() == '<' && bare.back() == '>') {
        bare = bare.substr(1, bare.size() - 2);
    }
    ParseResult parsed = parse_path_arg(
        "RCPT", "TO:<" + bare + ">", cfg_.strict_rfc821, cfg_.smtputf8_enable);
    if (!parsed.arg || parsed.arg->internal.empty()) {
        reply(parsed.arg ? address_syntax_reply("RCPT") : parsed.reply);
        finish_cmd(false);
        return;
    }
    parsed_args_ = typed;
    std::string addr = parsed.arg->internal;
    std::string typed_addr = parsed.arg->typed;
    check_address(
        "VRFY", parsed, txn_.sender,
        [this, typed, addr, typed_addr](const Resolved& resolved) {
            std::string ext = external_form(addr);
            auto refuse = [this, ext](const std::string& r) {
                log_reject("VRFY", r, true, ext);
                reply(r);
                finish_cmd(false);
            };
            if (env_.relay == nullptr) {
                refuse("451 4.3.5 Server configuration error");
                return;
            }
            RcptQuery q;
            q.client_addr = addr_;
            q.client_name = name_;
            q.helo = helo_;
            q.sender = txn_.sender;
            q.recipient = addr;
            q.recipient_typed = typed_addr;
            busy_ = true;
            std::weak_ptr<Session> weak = weak_from_this();
            env_.relay->check_rcpt(
                q, [weak, typed, addr, resolved, refuse](CheckResult res) {
                    auto s = weak.lock();
                    if (!s || s->mode_ == Mode::closed) {
                        return;
                    }
                    if (!res.warning.empty()) {
                        log::warning("{}", res.warning);
                    }
                    if (!res.accepted) {
                        refuse(res.reply);
                        s->resume();
                        return;
                    }
                    s->unknown_rcpt_check(
                        addr, resolved, [weak, typed, refuse](auto no) {
                            auto s = weak.lock();
                            if (!s || s->mode_ == Mode::closed) {
                                return;
                            }
                            if (no) {
                                refuse(*no);
                            } else {
                                // "Cannot verify, but will accept":
                                // the address as the client typed it.
                                s->reply("252 2.0.0 "
                                         + text::printable(
                                             typed, s->cfg_.line_length_limit));
                                s->finish_cmd(true);
                            }
                            s->resume();
                        });
                });
        });
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
