// SPDX-License-Identifier: MIT
// NAME
//   smtpd_mail.cc - MAIL FROM and RCPT TO, and opening the cleanup stream
// DESCRIPTION
//   MAIL checks the sequence and its ESMTP parameters (SIZE, BODY, RET,
//   ENVID, SMTPUTF8, AUTH= ignored) with Postfix 3.7's replies. RCPT
//   checks the sequence, NOTIFY and ORCPT, smtpd_recipient_limit, then
//   relay control through the RelayChecker. The cleanup stream opens at
//   the first RCPT that passes (smtpd_delay_open_until_valid_rcpt=yes)
//   or at MAIL (=no); each accepted recipient goes to cleanup at once.
// BUGS
//   The free-space check (452 4.3.1) is not done yet.
// SEE ALSO
//   session.h, address.h, relay.h, cleanup-bridge/cleanup.h.
#include "common/mail/log.h"
#include "common/util/text.h"
#include "smtpd/address.h"
#include "smtpd/session.h"

#include <fmt/format.h>
#include <sys/time.h>

namespace rs::smtpd {

namespace {

// The parameter as the client wrote it, for "Unsupported option:".
std::string param_text(const std::pair<std::string, std::string>& p)
{
    return p.second.empty() ? p.first : p.first + "=" + p.second;
}

} // namespace

void Session::mail_cmd(const std::string& args)
{
    // Sequence first (TLS is required in dispatch): one transaction at a time,
    // and no new one while a failed BDAT series still runs.
    if (txn_.active) {
        reply("503 5.5.1 Error: nested MAIL command");
        finish_cmd(false);
        return;
    }
    if (bdat_error_) {
        reply("503 5.5.1 Error: MAIL after BDAT");
        finish_cmd(false);
        return;
    }

    // The address and its parameters.
    ParseResult parsed =
        parse_path_arg("MAIL", args, cfg_.strict_rfc821, cfg_.smtputf8_enable);
    if (!parsed.arg) {
        reply(parsed.reply);
        finish_cmd(false);
        return;
    }
    Txn t;
    for (const auto& p : parsed.arg->params) {
        const std::string& key = p.first;
        if (key == "SIZE") {
            auto n = text::parse_int(p.second, 0);
            if (!n) {
                reply("501 5.5.4 Bad message size syntax");
                finish_cmd(false);
                return;
            }
            t.declared_size = *n;
        } else if (key == "BODY" && text::iequals(p.second, "8BITMIME")) {
            t.encoding = "8bit";
        } else if (key == "BODY" && text::iequals(p.second, "7BIT")) {
            t.encoding = "7bit";
        } else if (key == "RET" && text::iequals(p.second, "FULL")) {
            t.ret_flags = 1;
        } else if (key == "RET" && text::iequals(p.second, "HDRS")) {
            t.ret_flags = 2;
        } else if (key == "RET") {
            reply("501 5.5.4 Bad RET parameter syntax");
            finish_cmd(false);
            return;
        } else if (key == "ENVID") {
            auto v = xtext_decode(p.second);
            if (!v || v->empty()) {
                reply("501 5.5.4 Bad ENVID parameter syntax");
                finish_cmd(false);
                return;
            }
            t.envid = *v;
        } else if (key == "AUTH") {
            // Without SASL there is nobody to vouch for; ignored.
        } else if (key == "SMTPUTF8" && p.second.empty()
                   && cfg_.smtputf8_enable) {
            t.smtputf8 = true;
        } else {
            reply("555 5.5.4 Unsupported option: " + param_text(p));
            finish_cmd(false);
            return;
        }
    }
    t.active = true;
    t.sender = parsed.arg->internal;
    t.sender_ext = external_form(t.sender);

    // A declared size over message_size_limit is refused now, and
    // logged like any restriction.
    if (cfg_.message_size_limit > 0
        && t.declared_size > cfg_.message_size_limit) {
        std::string r = "552 5.3.4 Message size exceeds fixed limit";
        txn_.sender_ext = t.sender_ext;
        txn_.active = true;
        log_reject("MAIL", r, false, {});
        txn_ = Txn{};
        reply(r);
        finish_cmd(false);
        return;
    }

    // The arrival time is taken here, as Postfix takes it.
    timeval tv{};
    gettimeofday(&tv, nullptr);
    t.arrival_sec = tv.tv_sec;
    t.arrival_usec = tv.tv_usec;
    txn_ = std::move(t);

    if (!cfg_.delay_open) {
        busy_ = true;
        open_stream([this] {
            if (txn_.stream_failed) {
                txn_ = Txn{};
                reply("451 4.3.0 Error: queue file write error");
                finish_cmd(false);
            } else {
                reply("250 2.1.0 Ok");
                finish_cmd(true);
            }
            resume();
        });
        return;
    }
    reply("250 2.1.0 Ok");
    finish_cmd(true);
}

void Session::open_stream(std::function<void()> then)
{
    // One cleanup connection per message; the queue id is cleanup's.
    std::weak_ptr<Session> weak = weak_from_this();
    txn_.stream = cleanup::CleanupStream::open(
        env_.base, cfg_.cleanup_socket, [weak, then](Result<std::string> qid) {
            auto s = weak.lock();
            if (!s || s->mode_ == Mode::closed) {
                return;
            }
            if (!qid) {
                log::warning("connect to cleanup service {}: {}",
                             s->cfg_.cleanup_socket, qid.error().text);
                s->txn_.stream_failed = true;
                s->txn_.stream.reset();
                then();
                return;
            }

            // The queue id exists from now on: exactly one client= line.
            s->txn_.queue_id = *qid;
            log::info("{}: client={}", s->txn_.queue_id, s->namaddr_);
            s->txn_.stream->envelope(s->make_envelope());
            then();
        });
    if (!txn_.stream) {
        txn_.stream_failed = true;
        then();
    }
}

void Session::rcpt_cmd(const std::string& args)
{
    // Sequence: a sender first, and no recipients once content began.
    if (!txn_.active) {
        reply("503 5.5.1 Error: need MAIL command");
        finish_cmd(false);
        return;
    }
    if (txn_.bdat) {
        reply("503 5.5.1 Error: RCPT after BDAT");
        finish_cmd(false);
        return;
    }

    // smtpd_recipient_limit bounds the envelope we build.
    // Up to smtpd_recipient_overshoot_limit of these are not held
    // against the client (a mailing list sender that overshoots is no
    // attacker), as Postfix counts them.
    if (cfg_.recipient_limit > 0 && txn_.rcpt_count >= cfg_.recipient_limit) {
        reply("452 4.5.3 Error: too many recipients");
        finish_cmd(txn_.rcpt_overshoot++ < cfg_.recipient_overshoot_limit);
        return;
    }

    // The address and its DSN parameters.
    ParseResult parsed =
        parse_path_arg("RCPT", args, cfg_.strict_rfc821, cfg_.smtputf8_enable);
    if (!parsed.arg) {
        reply(parsed.reply);
        finish_cmd(false);
        return;
    }
    cleanup::Recipient r;
    r.address = parsed.arg->internal;
    r.orcpt = "rfc822;" + parsed.arg->typed;
    for (const auto& p : parsed.arg->params) {
        if (p.first == "NOTIFY") {
            auto m = notify_mask(p.second);
            if (!m) {
                // Postfix names the first word it does not know.
                for (const auto& w : text::split(p.second, ",")) {
                    if (!notify_mask(w)) {
                        log::warning("unknown DSN NOTIFY command value "
                                     "\"{}\" in \"{}\"",
                                     text::printable(w),
                                     text::printable(p.second));
                        break;
                    }
                }
                reply("501 5.5.4 Error: Bad NOTIFY parameter syntax");
                finish_cmd(false);
                return;
            }
            r.notify_flags = *m;
        } else if (p.first == "ORCPT") {
            // type;xtext-address, the type an atom.
            size_t semi = p.second.find(';');
            std::optional<std::string> addr;
            if (semi != std::string::npos && semi > 0) {
                addr = xtext_decode(p.second.substr(semi + 1));
            }
            if (!addr || addr->empty()) {
                reply("501 5.5.4 Error: Bad ORCPT parameter syntax");
                finish_cmd(false);
                return;
            }
            r.orcpt = p.second.substr(0, semi) + ";" + *addr;
        } else {
            reply("555 5.5.4 Unsupported option: " + param_text(p));
            finish_cmd(false);
            return;
        }
    }
    std::string ext = external_form(r.address);

    // Relay control, asked of the RelayChecker; without one we refuse,
    // as Postfix does with a broken configuration.
    if (env_.relay == nullptr) {
        rcpt_rejected("451 4.3.5 Server configuration error", ext);
        return;
    }
    RcptQuery q;
    q.client_addr = addr_;
    q.client_name = name_;
    q.helo = helo_;
    q.sender = txn_.sender;
    q.recipient = r.address;
    q.recipient_typed = parsed.arg->typed;
    busy_ = true;
    std::weak_ptr<Session> weak = weak_from_this();
    env_.relay->check_rcpt(q, [weak, r, ext](CheckResult res) {
        auto s = weak.lock();
        if (!s || s->mode_ == Mode::closed) {
            return;
        }
        if (!res.warning.empty()) {
            log::warning("{}", res.warning);
        }
        if (res.accepted) {
            s->rcpt_accepted(r, ext);
        } else {
            s->rcpt_rejected(res.reply, ext);
            s->resume();
        }
    });
}

void Session::rcpt_rejected(const std::string& reply_text,
                            const std::string& ext)
{
    log_reject("RCPT", reply_text, true, ext);
    reply(reply_text);
    finish_cmd(false);
}

void Session::rcpt_accepted(const cleanup::Recipient& r, const std::string& ext)
{
    // Hand the recipient to cleanup at once, opening the stream first
    // when this is the first one.
    auto add = [this, r, ext] {
        if (txn_.stream_failed || !txn_.stream) {
            txn_.stream_failed = false;
            reply("451 4.3.0 Error: queue file write error");
            finish_cmd(false);
            resume();
            return;
        }
        txn_.stream->recipient(r);
        if (txn_.rcpt_count++ == 0) {
            txn_.first_rcpt_ext = ext;
        }
        reply("250 2.1.5 Ok");
        finish_cmd(true);
        resume();
    };
    busy_ = true;
    if (!txn_.stream) {
        open_stream(add);
        return;
    }
    add();
}

} // namespace rs::smtpd
