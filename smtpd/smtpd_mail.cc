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

// The address as the client wrote it after "FROM:" / "TO:", brackets
// and all, for the illegal-syntax warning.
std::string typed_token(std::string_view args)
{
    // VRFY has no "TO:", the address is all of it.
    size_t colon = args.find(':');
    std::string_view rest = text::trim(
        colon == std::string_view::npos ? args : args.substr(colon + 1));
    if (rest.empty()) {
        return "";
    }
    size_t end = std::string_view::npos;
    if (rest.front() == '<') {
        end = rest.find('>');
        end = end == std::string_view::npos ? end : end + 1;
    } else {
        end = rest.find_first_of(" \t");
    }
    return std::string(rest.substr(0, end));
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

    // The address: its form here, then trivial-rewrite's verdict, then
    // the parameters.
    ParseResult parsed =
        parse_path_arg("MAIL", args, cfg_.strict_rfc821, cfg_.smtputf8_enable);
    if (!parsed.arg) {
        reply(parsed.reply);
        finish_cmd(false);
        return;
    }
    PathArg arg = *parsed.arg;
    parsed_args_ = args;
    check_address("MAIL", parsed, "",
                  [this, arg](const Resolved&) { mail_params(arg); });
}

void Session::check_address(std::string_view verb, const ParseResult& parsed,
                            const std::string& sender,
                            std::function<void(const Resolved&)> then)
{
    // The null sender and a session without trivial-rewrite (unit tests)
    // have nothing to resolve.
    const std::string& addr = parsed.arg->internal;
    if (addr.empty() || env_.rewrite == nullptr) {
        then(Resolved{});
        return;
    }

    // Postfix leaves the host part's syntax to trivial-rewrite: an
    // address it flags as an error is refused, and logged with the
    // token as the client typed it.
    busy_ = true;
    std::weak_ptr<Session> weak = weak_from_this();
    std::string v(verb), token = parsed.token, ext = external_form(addr);
    if (token.empty()) {
        token = typed_token(parsed_args_);
    }
    env_.rewrite->resolve(
        sender, addr, [weak, v, token, ext, then](Result<Resolved> r) {
            auto s = weak.lock();
            if (!s || s->mode_ == Mode::closed) {
                return;
            }
            s->busy_ = false;
            if (!r) {
                log::warning("{}: address resolve failed: {}", ext,
                             r.error().text);
                s->reply("451 4.3.0 <" + ext + ">: Temporary lookup failure");
                s->finish_cmd(false);
            } else if (r->flags & RESOLVE_FLAG_ERROR) {
                log::warning("Illegal address syntax from {} in {} command: "
                             "{}",
                             s->namaddr_, v,
                             text::printable(token, s->cfg_.line_length_limit));
                s->reply(address_syntax_reply(v));
                s->finish_cmd(false);
            } else {
                then(*r);
            }
            // A step that did not go on waiting is done: read on.
            if (!s->busy_) {
                s->resume();
            }
        });
}

void Session::mail_params(const PathArg& arg)
{
    // The parameters, judged as Postfix judges them.
    MailParams mp;
    MailParamLimits lim;
    lim.message_size_limit = cfg_.message_size_limit;
    lim.smtputf8_enable = cfg_.smtputf8_enable;
    std::string bad = check_mail_params(arg, lim, mp);
    Txn t;
    t.sender = arg.internal;
    t.sender_ext = external_form(t.sender);
    if (!bad.empty()) {
        // A declared size over message_size_limit is logged like any
        // restriction.
        if (bad.rfind("552 5.3.4 Message size exceeds fixed limit", 0) == 0) {
            txn_.sender_ext = t.sender_ext;
            txn_.active = true;
            log_reject("MAIL", bad, false, {});
            txn_ = Txn{};
        }
        reply(bad);
        finish_cmd(false);
        return;
    }
    t.active = true;
    t.declared_size = mp.size.value_or(0);
    if (mp.body == "8BITMIME") {
        t.encoding = "8bit";
    } else if (mp.body == "7BIT") {
        t.encoding = "7bit";
    }
    t.ret_flags = mp.ret;
    t.envid = mp.envid;
    t.smtputf8 = mp.smtputf8;

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

    // The address, trivial-rewrite's verdict on it, then its DSN
    // parameters.
    ParseResult parsed =
        parse_path_arg("RCPT", args, cfg_.strict_rfc821, cfg_.smtputf8_enable);
    if (!parsed.arg) {
        reply(parsed.reply);
        finish_cmd(false);
        return;
    }
    PathArg arg = *parsed.arg;
    parsed_args_ = args;
    check_address("RCPT", parsed, txn_.sender,
                  [this, arg](const Resolved& res) { rcpt_params(arg, res); });
}

void Session::rcpt_params(const PathArg& arg, const Resolved& resolved)
{
    RcptParams rp;
    std::string bad = check_rcpt_params(arg, rp);
    if (!rp.warning.empty()) {
        log::warning("{}", text::printable(rp.warning, cfg_.line_length_limit));
    }
    if (!bad.empty()) {
        reply(bad);
        finish_cmd(false);
        return;
    }
    cleanup::Recipient r;
    r.address = arg.internal;
    r.orcpt = rp.orcpt_type.empty() ? "rfc822;" + arg.typed
                                    : rp.orcpt_type + ";" + rp.orcpt_addr;
    r.notify_flags = rp.notify;
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
    q.recipient_typed = arg.typed;
    busy_ = true;
    std::weak_ptr<Session> weak = weak_from_this();
    env_.relay->check_rcpt(q, [weak, r, ext, resolved](CheckResult res) {
        auto s = weak.lock();
        if (!s || s->mode_ == Mode::closed) {
            return;
        }
        if (!res.warning.empty()) {
            log::warning("{}", res.warning);
        }
        if (!res.accepted) {
            s->rcpt_rejected(res.reply, ext);
            s->resume();
            return;
        }

        s->unknown_rcpt_check(r.address, resolved, [weak, r, ext](auto no) {
            auto s = weak.lock();
            if (!s || s->mode_ == Mode::closed) {
                return;
            }
            if (no) {
                s->rcpt_rejected(*no, ext);
                s->resume();
                return;
            }
            s->rcpt_accepted(r, ext);
        });
    });
}

void Session::unknown_rcpt_check(
    const std::string& rcpt, const Resolved& resolved,
    std::function<void(std::optional<std::string>)> done)
{
    // Not configured, or switched off: every recipient is known.
    if (env_.rcpt_maps == nullptr || !env_.rcpt_maps->enabled()) {
        done(std::nullopt);
        return;
    }

    // Postfix looks up the canonical address (a bare local part gets
    // @$myorigin first), as trivial-rewrite resolves that; without
    // trivial-rewrite, the answer we have.
    if (env_.rewrite == nullptr) {
        done(env_.rcpt_maps->check(resolved, rcpt));
        return;
    }
    busy_ = true;
    std::weak_ptr<Session> weak = weak_from_this();
    env_.rewrite->rewrite(rcpt, [weak, rcpt, done](Result<std::string> canon) {
        auto s = weak.lock();
        if (!s || s->mode_ == Mode::closed) {
            return;
        }
        std::string c = canon ? *canon : rcpt;
        s->env_.rewrite->resolve(
            s->txn_.sender, c, [weak, rcpt, done](Result<Resolved> res) {
                auto s = weak.lock();
                if (!s || s->mode_ == Mode::closed) {
                    return;
                }
                if (!res) {
                    done("451 4.3.0 <" + rcpt + ">: Temporary lookup failure");
                    return;
                }
                done(s->env_.rcpt_maps->check(*res, rcpt));
            });
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
        txn_.rcpt_binding.push_back(fmt::format(
            "{} notify={} orcpt={}", r.address, r.notify_flags, r.orcpt));
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
