// SPDX-License-Identifier: MIT
// NAME
//   send_session.cc - the transaction loop of resume-send
// SEE ALSO
//   send_session.h
#include "client/send_session.h"

#include "client/send_dotstuff.h"
#include "client/send_xresume.h"
#include "common/util/text.h"

#include <algorithm>
#include <cctype>
#include <thread>
#include <unistd.h>

namespace rs::send {

namespace {

// Message data is read from the spool and written in pieces of this size.
constexpr size_t kIoPiece = 64 * 1024;
// QUIT after a final reply gets this long; nothing depends on its answer.
constexpr auto kQuitTime = std::chrono::seconds(5);
// The progress callback is called at most this often.
constexpr auto kProgressEvery = std::chrono::milliseconds(200);

bool needs_smtputf8(const Options& o)
{
    auto high = [](const std::string& s) {
        return std::any_of(s.begin(), s.end(), [](char c) {
            return static_cast<unsigned char>(c) >= 0x80;
        });
    };
    return high(o.sender) || std::any_of(o.rcpts.begin(), o.rcpts.end(), high);
}

// The EHLO name when none is given: the host name, or "localhost" when
// it cannot be found.
std::string default_helo()
{
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) < 0 || buf[0] == '\0') {
        return "localhost";
    }
    return buf;
}

// SNI only for a name: an address literal is not a valid server name.
std::string sni_name(const std::string& host)
{
    bool literal =
        host.find(':') != std::string::npos
        || host.find_first_not_of("0123456789.") == std::string::npos;
    return literal ? std::string() : host;
}

} // namespace

std::string dsn_text(const Reply& r, const std::string& server,
                     const char* stage)
{
    std::string enh = r.enhanced;
    if (enh.empty()) {
        enh = std::to_string(r.klass()) + ".0.0";
    }
    return enh + " " + server + " said: " + redact_tokens(r.joined())
           + " (in reply to " + stage + ")";
}

std::string queue_id_of(const Reply& r)
{
    for (const auto& l : r.lines) {
        auto at = l.find("queued as ");
        if (at == std::string::npos) {
            continue;
        }
        size_t b = at + 10;
        size_t e = b;
        while (e < l.size() && std::isalnum(static_cast<unsigned char>(l[e]))) {
            ++e;
        }
        return l.substr(b, e - b);
    }
    return "";
}

std::string redact_tokens(const std::string& line)
{
    // Replace the value of TOKEN= and the argument of "XRESUME x" and
    // "XRESUME ABORT x"; the rest of the line is kept as it is.
    std::string out;
    size_t i = 0;
    size_t index = 0;
    std::string prev;
    bool command = text::istarts_with(line, "XRESUME ");
    while (i < line.size()) {
        size_t sp = line.find(' ', i);
        size_t end = sp == std::string::npos ? line.size() : sp;
        std::string word = line.substr(i, end - i);
        std::string up = text::upper(word);
        std::string shown = word;
        if (text::istarts_with(word, "TOKEN=") && word.size() > 6) {
            shown = "TOKEN=<" + token_tag(word.substr(6)) + ">";
        } else if (command && word.find('=') == std::string::npos
                   && ((index == 1 && up != "NEW" && up != "ABORT")
                       || (index == 2 && prev == "ABORT"))) {
            shown = "<" + token_tag(word) + ">";
        }
        out += shown;
        if (sp != std::string::npos) {
            out += ' ';
        }
        prev = up;
        ++index;
        i = end + 1;
    }
    return out;
}

Sender::Sender(Options opts, const Spool& spool)
    : opts_(std::move(opts)), spool_(spool)
{
    stats_.message_octets = spool.size();
}

Sender::Step Sender::final_outcome(Outcome o, std::string reason)
{
    stats_.outcome = o;
    stats_.reason = std::move(reason);
    return {Next::Final};
}

Sender::Step Sender::retry(std::string reason, bool progressed)
{
    stats_.outcome = Outcome::TempFail;
    stats_.reason = std::move(reason);
    if (log_) {
        log_("retry: " + stats_.reason);
    }
    return {Next::Retry, progressed};
}

Sender::Step Sender::broke(const Error& e, const char* stage, bool progressed)
{
    return retry("4.4.2 " + opts_.server.display() + ": lost connection "
                     + stage + ": " + e.text,
                 progressed);
}

Sender::Step Sender::refused(const Reply& r, const char* stage, bool to_rcpt)
{
    auto o = classify_reply(r.code, to_rcpt);
    auto text = dsn_text(r, opts_.server.display(), stage);
    if (o == Outcome::TempFail) {
        return retry(std::move(text));
    }
    return final_outcome(o, std::move(text));
}

Result<void> Sender::send(Conn& c, const std::string& cmd)
{
    if (log_) {
        log_("> " + redact_tokens(cmd));
    }
    return c.write(cmd + "\r\n");
}

Result<Reply> Sender::reply(Conn& c)
{
    auto r = c.read_reply();
    if (r && log_) {
        for (size_t i = 0; i < r->lines.size(); ++i) {
            char sep = i + 1 < r->lines.size() ? '-' : ' ';
            log_("< " + std::to_string(r->code) + sep
                 + redact_tokens(text::printable(r->lines[i], 200)));
        }
    }
    return r;
}

void Sender::quit(Conn& c)
{
    // Polite, bounded, and of no consequence when it fails.
    c.set_deadline(std::min(deadline_, Clock::now() + kQuitTime));
    if (send(c, "QUIT")) {
        (void)reply(c);
    }
}

void Sender::save_token()
{
    if (!state_ || token_.empty()) {
        return;
    }
    auto s = state_->save(ResumeState{token_, spool_.size(), spool_.digest(),
                                      opts_.server.display()});
    if (!s && log_) {
        log_("warning: cannot save the resume state: " + s.error().text);
    }
}

void Sender::forget_token()
{
    token_.clear();
    token_tls_ = false;
    if (state_) {
        auto r = state_->remove();
        if (!r && log_) {
            log_("warning: " + r.error().text);
        }
    }
}

void Sender::note_progress(bool force)
{
    if (!progress_) {
        return;
    }
    auto now = Clock::now();
    if (!force && now - last_progress_ < kProgressEvery) {
        return;
    }
    last_progress_ = now;
    progress_(stats_);
}

Outcome Sender::run()
{
    start_ = Clock::now();
    deadline_ = start_ + std::chrono::seconds(opts_.give_up);

    // A token kept by an earlier run for this very message and envelope.
    if (opts_.resume && !opts_.state_dir.empty()) {
        state_.emplace(opts_.state_dir,
                       state_key(opts_.server.display(), opts_.sender,
                                 opts_.rcpts, spool_.digest()));
        auto l = state_->load();
        if (!l) {
            if (log_) {
                log_("warning: ignoring a damaged state file: "
                     + l.error().text);
            }
            (void)state_->remove();
        } else if (*l && (*l)->size == spool_.size()
                   && (*l)->digest == spool_.digest()) {
            token_ = (*l)->token;
            if (log_) {
                log_("resume token <" + token_tag(token_)
                     + "> from the state file");
            }
        }
    }

    SslCtxPtr ctx;
    if (opts_.tls != TlsLevel::None) {
        auto c = client_tls_context();
        if (!c) {
            stats_.outcome = Outcome::Software;
            stats_.reason = "4.7.5 " + c.error().text;
            return stats_.outcome;
        }
        ctx = std::move(*c);
    }

    int backoff_ms = 0;
    for (;;) {
        Step s = attempt(ctx.get());
        stats_.wire_octets = wire_done_;
        if (s.next == Next::Final) {
            break;
        }

        // Reconnect at once after a connection that moved the transfer
        // on; otherwise wait, longer each time, but not past --give-up.
        if (s.progressed) {
            backoff_ms = 0;
        } else {
            backoff_ms = backoff_ms == 0
                             ? opts_.backoff_first_ms
                             : std::min(backoff_ms * 2, opts_.backoff_max_ms);
        }
        auto wake = std::min(
            deadline_, Clock::now() + std::chrono::milliseconds(backoff_ms));
        std::this_thread::sleep_until(wake);
        if (Clock::now() >= deadline_) {
            stats_.outcome = Outcome::TempFail;
            stats_.reason +=
                " (giving up after " + std::to_string(opts_.give_up) + "s)";
            break;
        }
    }
    stats_.seconds =
        std::chrono::duration<double>(Clock::now() - start_).count();
    note_progress(true);
    return stats_.outcome;
}

Sender::Step Sender::attempt(SSL_CTX* tls_ctx)
{
    ++stats_.connections;
    offset_ = 0;
    stats_.position = 0;
    auto conn = Conn::open(opts_.server, std::chrono::seconds(opts_.timeout),
                           deadline_);
    if (!conn) {
        if (conn.error().code == ENOENT) {
            return final_outcome(Outcome::Config, "5.4.4 " + conn.error().text);
        }
        return retry("4.4.1 " + conn.error().text);
    }
    Conn& c = *conn;
    cur_ = &c;
    Step s = converse(c, tls_ctx);
    wire_done_ += c.octets_out();
    cur_ = nullptr;
    return s;
}

Sender::Step Sender::converse(Conn& c, SSL_CTX* tls_ctx)
{
    const std::string srv = opts_.server.display();
    if (log_) {
        log_("connected to " + srv + " (connection "
             + std::to_string(stats_.connections) + ")");
    }

    // The greeting: anything but 220 is a server that does not want mail
    // now; a 5xx greeting is taken as temporary, as MTAs do.
    auto g = reply(c);
    if (!g) {
        return broke(g.error(), "before the greeting");
    }
    if (g->code != 220) {
        quit(c);
        return retry(dsn_text(*g, srv, "the greeting"));
    }

    // EHLO, or HELO when EHLO is refused (then no extensions at all).
    std::string helo = opts_.helo.empty() ? default_helo() : opts_.helo;
    Ehlo ehlo;
    auto ehlo_cmd = [&](std::optional<Step>& out) {
        if (auto w = send(c, "EHLO " + helo); !w) {
            out = broke(w.error(), "sending EHLO");
            return;
        }
        auto r = reply(c);
        if (!r) {
            out = broke(r.error(), "after EHLO");
            return;
        }
        if (r->permanent()) {
            if (auto w = send(c, "HELO " + helo); !w) {
                out = broke(w.error(), "sending HELO");
                return;
            }
            r = reply(c);
            if (!r) {
                out = broke(r.error(), "after HELO");
                return;
            }
        }
        if (!r->ok()) {
            quit(c);
            out = refused(*r, "EHLO");
            return;
        }
        ehlo = parse_ehlo(*r);
    };
    std::optional<Step> stop;
    ehlo_cmd(stop);
    if (stop) {
        return *stop;
    }

    // STARTTLS when offered and wanted. At level may a failed handshake
    // makes the next connection go without TLS; a refused STARTTLS goes
    // on in plaintext. At encrypt neither is accepted.
    bool want_tls = tls_ctx != nullptr && opts_.tls != TlsLevel::None
                    && !(opts_.tls == TlsLevel::May && tls_failed_);
    if (want_tls && ehlo.starttls) {
        if (auto w = send(c, "STARTTLS"); !w) {
            return broke(w.error(), "sending STARTTLS");
        }
        auto r = reply(c);
        if (!r) {
            return broke(r.error(), "after STARTTLS");
        }
        if (r->code == 220) {
            if (auto t = c.starttls(tls_ctx, sni_name(opts_.server.host)); !t) {
                // A transfer begun under TLS stays under TLS: its token
                // is never sent in the clear (draft 13.6, 17.8), so the
                // failed handshake is only a break, tried again.
                if (opts_.tls == TlsLevel::May && !token_tls_) {
                    tls_failed_ = true;
                }
                return broke(t.error(), "in the TLS handshake");
            }
            if (log_) {
                log_("TLS: " + c.tls_info());
            }
            ehlo = Ehlo{};
            ehlo_cmd(stop);
            if (stop) {
                return *stop;
            }
        } else if (opts_.tls == TlsLevel::Encrypt) {
            quit(c);
            return retry(dsn_text(*r, srv, "STARTTLS"));
        }
    } else if (opts_.tls == TlsLevel::Encrypt) {
        quit(c);
        return final_outcome(Outcome::TempFail,
                             "4.7.4 " + srv
                                 + " does not offer STARTTLS, which --tls "
                                   "encrypt requires");
    }
    stats_.tls = c.tls();
    stats_.xresume_offered = ehlo.xresume;

    // What the server said it cannot take is not sent at all.
    bool utf8 = needs_smtputf8(opts_);
    if (ehlo.size && ehlo.size_limit > 0 && spool_.size() > ehlo.size_limit) {
        quit(c);
        return final_outcome(
            Outcome::Refused,
            "5.3.4 the message (" + std::to_string(spool_.size())
                + " octets) is larger than the limit of " + srv + " ("
                + std::to_string(ehlo.size_limit) + ")");
    }
    if (utf8 && !ehlo.smtputf8) {
        quit(c);
        return final_outcome(Outcome::Refused,
                             "5.6.7 the envelope needs SMTPUTF8, which " + srv
                                 + " does not offer");
    }
    bool use_resume =
        opts_.resume && !resume_off_ && ehlo.xresume
        && (!ehlo.xresume_maxsize || spool_.size() <= *ehlo.xresume_maxsize);

    // MAIL, RCPT and XRESUME NEW go out as one group with PIPELINING.
    std::string mail = "MAIL FROM:<" + opts_.sender + ">";
    if (ehlo.size) {
        mail += " SIZE=" + std::to_string(spool_.size());
    }
    if (spool_.eight_bit() && ehlo.eightbitmime) {
        mail += " BODY=8BITMIME";
    }
    if (utf8) {
        mail += " SMTPUTF8";
    }
    std::vector<std::string> cmds{mail};
    for (const auto& r : opts_.rcpts) {
        cmds.push_back("RCPT TO:<" + r + ">");
    }
    bool pipelined_new = use_resume && token_.empty() && ehlo.pipelining;
    if (pipelined_new) {
        cmds.push_back("XRESUME NEW");
    }
    std::vector<Reply> replies;
    if (ehlo.pipelining) {
        std::string group;
        for (const auto& cmd : cmds) {
            if (log_) {
                log_("> " + redact_tokens(cmd));
            }
            group += cmd + "\r\n";
        }
        if (auto w = c.write(group); !w) {
            return broke(w.error(), "sending MAIL FROM");
        }
    }
    for (size_t i = 0; i < cmds.size(); ++i) {
        if (!ehlo.pipelining) {
            if (auto w = send(c, cmds[i]); !w) {
                return broke(w.error(), "sending the envelope");
            }
        }
        auto r = reply(c);
        if (!r) {
            return broke(r.error(),
                         i == 0 ? "after MAIL FROM" : "after RCPT TO");
        }
        replies.push_back(std::move(*r));
        if (i == 0 && !replies[0].ok()) {
            quit(c);
            return refused(replies[0], "MAIL FROM");
        }
    }

    // Every recipient must be accepted: one permanent refusal fails the
    // whole message (nothing is sent), a temporary one defers it.
    const Reply* temp = nullptr;
    for (size_t i = 1; i <= opts_.rcpts.size(); ++i) {
        if (replies[i].permanent()) {
            quit(c);
            return refused(replies[i], "RCPT TO", true);
        }
        if (!replies[i].ok() && temp == nullptr) {
            temp = &replies[i];
        }
    }
    if (temp != nullptr) {
        quit(c);
        return refused(*temp, "RCPT TO", true);
    }

    // Where to start: XRESUME's offset, or 0.
    offset_ = 0;
    if (use_resume) {
        std::optional<Reply> first;
        if (pipelined_new) {
            first = replies.back();
        }
        if (auto s = negotiate_resume(c, std::move(first)); s) {
            return *s;
        }
    }
    stats_.position = offset_;
    stats_.acked = std::max(stats_.acked, offset_);
    note_progress(true);

    if (ehlo.chunking && opts_.chunking) {
        return send_bdat(c);
    }
    return send_data(c);
}

std::optional<Sender::Step> Sender::negotiate_resume(Conn& c,
                                                     std::optional<Reply> r)
{
    using Kind = XresumeReply::Kind;
    const std::string srv = opts_.server.display();
    bool sent_token = false;

    // "XRESUME <token>" ends its group: we need the offset before data.
    auto ask = [&](bool fresh) -> std::optional<Step> {
        // A token got under TLS goes only over TLS: someone who made
        // STARTTLS fail must not learn it. Try again later instead.
        if (!fresh && !token_.empty() && token_tls_ && !c.tls()) {
            quit(c);
            return retry("4.7.0 " + srv
                         + " did not give TLS; the transfer's token is "
                           "sent only over TLS");
        }
        sent_token = !fresh && !token_.empty();
        auto cmd =
            sent_token ? "XRESUME " + token_ : std::string("XRESUME NEW");
        if (auto w = send(c, cmd); !w) {
            return broke(w.error(), "sending XRESUME");
        }
        auto got = reply(c);
        if (!got) {
            return broke(got.error(), "after XRESUME");
        }
        r = std::move(*got);
        return std::nullopt;
    };
    if (!r) {
        if (auto s = ask(false)) {
            return s;
        }
    }

    for (int round = 0;; ++round) {
        auto x = parse_xresume(*r);
        switch (x.kind) {
        case Kind::Done:
            if (!sent_token) {
                break;
            }
            // Delivered by an earlier connection whose 250 we never saw.
            stats_.queue_id = x.queue_id;
            stats_.acked = spool_.size();
            ++stats_.resumes;
            forget_token();
            quit(c);
            return final_outcome(Outcome::Delivered,
                                 "2.0.0 " + srv + " had it already, queued as "
                                     + x.queue_id);
        case Kind::Offset: {
            // A fresh token with OFFSET=0 replaces ours; an offset is
            // taken only for our own token and when the prefix is ours.
            if (x.offset > 0 && (!sent_token || x.token != token_)) {
                break;
            }
            auto why = check_offset(spool_, x);
            if (!why) {
                return retry("4.3.0 local: " + why.error().text);
            }
            if (!why->empty()) {
                if (log_) {
                    log_("not resuming: " + *why);
                }
                if (round > 0) {
                    break;
                }
                if (auto s = ask(true)) {
                    return s;
                }
                continue;
            }
            token_ = x.token;
            token_tls_ = c.tls();
            save_token();
            offset_ = x.offset;
            if (offset_ > 0) {
                ++stats_.resumes;
                stats_.resume_offsets.push_back(offset_);
            }
            if (log_) {
                log_("XRESUME: token <" + token_tag(token_) + "> offset "
                     + std::to_string(offset_));
            }
            return std::nullopt;
        }
        case Kind::Unavailable:
            // Not now; the transaction goes on without resume.
            return std::nullopt;
        case Kind::NotOffered:
        case Kind::Malformed:
            break;
        case Kind::TempFail:
            quit(c);
            return retry(dsn_text(*r, srv, "XRESUME"));
        case Kind::Refused:
            // The server's stored verdict on this message.
            forget_token();
            quit(c);
            return refused(*r, "XRESUME");
        }

        // Not usable: plain SMTP from octet 0, now and on later
        // connections.
        if (log_) {
            log_("XRESUME not usable here, sending without it");
        }
        resume_off_ = true;
        forget_token();
        offset_ = 0;
        return std::nullopt;
    }
}

Sender::Step Sender::send_data(Conn& c)
{
    const std::string srv = opts_.server.display();
    if (auto w = send(c, "DATA"); !w) {
        return broke(w.error(), "sending DATA");
    }
    auto r = reply(c);
    if (!r) {
        return broke(r.error(), "after DATA");
    }
    if (r->code != 354) {
        quit(c);
        if (r->ok()) {
            return retry(dsn_text(*r, srv, "DATA"));
        }
        return refused(*r, "DATA");
    }

    // The tail from the offset, dot-stuffed, then the end of data.
    DotStuffer stuff;
    std::string in(kIoPiece, '\0');
    std::string out;
    uint64_t pos = offset_;
    if (log_) {
        log_("> [message octets " + std::to_string(pos) + " to "
             + std::to_string(spool_.size()) + ", dot-stuffed]");
    }
    while (pos < spool_.size()) {
        auto n = spool_.read_at(pos, in.data(), in.size());
        if (!n) {
            return final_outcome(Outcome::TempFail,
                                 "4.3.0 local: " + n.error().text);
        }
        out.clear();
        stuff.feed(std::string_view(in.data(), *n), out);
        if (auto w = c.write(out); !w) {
            return broke(w.error(), "while sending the message", pos > offset_);
        }
        pos += *n;
        stats_.position = pos;
        stats_.data_octets += *n;
        stats_.wire_octets = wire_done_ + c.octets_out();
        note_progress();
    }
    out.clear();
    stuff.finish(out);
    if (auto w = c.write(out); !w) {
        return broke(w.error(), "at the end of the message", true);
    }
    if (log_) {
        log_("> .");
    }
    r = reply(c);
    if (!r) {
        return broke(r.error(), "waiting for the reply to the end of data",
                     true);
    }
    return finish(c, *r, "end of DATA");
}

Sender::Step Sender::send_bdat(Conn& c)
{
    std::string in(std::min<size_t>(kIoPiece, opts_.chunk), '\0');
    uint64_t pos = offset_;
    for (;;) {
        uint64_t n = std::min<uint64_t>(opts_.chunk, spool_.size() - pos);
        bool last = pos + n == spool_.size();
        std::string cmd = "BDAT " + std::to_string(n) + (last ? " LAST" : "");
        if (auto w = send(c, cmd); !w) {
            return broke(w.error(), "sending BDAT", pos > offset_);
        }

        // The chunk, in pieces, straight from the spool.
        for (uint64_t done = 0; done < n;) {
            size_t want =
                static_cast<size_t>(std::min<uint64_t>(in.size(), n - done));
            auto got = spool_.read_at(pos + done, in.data(), want);
            if (!got || *got != want) {
                return final_outcome(Outcome::TempFail,
                                     "4.3.0 local: cannot read the message");
            }
            if (auto w = c.write(std::string_view(in.data(), want)); !w) {
                return broke(w.error(), "while sending the message",
                             pos + done > offset_);
            }
            done += want;
            stats_.position = pos + done;
            stats_.data_octets += want;
            stats_.wire_octets = wire_done_ + c.octets_out();
            note_progress();
        }
        auto r = reply(c);
        if (!r) {
            return broke(r.error(), "waiting for the reply to BDAT", true);
        }
        pos += n;
        if (last) {
            return finish(c, *r, "BDAT LAST");
        }
        if (!r->ok()) {
            quit(c);
            if (r->permanent()) {
                forget_token();
            }
            return refused(*r, "BDAT");
        }
        stats_.acked = std::max(stats_.acked, pos);
    }
}

Sender::Step Sender::finish(Conn& c, const Reply& r, const char* stage)
{
    const std::string srv = opts_.server.display();
    if (r.ok()) {
        stats_.queue_id = queue_id_of(r);
        stats_.acked = spool_.size();
        forget_token();
        quit(c);
        return final_outcome(Outcome::Delivered, dsn_text(r, srv, stage));
    }
    quit(c);
    if (r.permanent()) {
        // A verdict on the content: the token is of no further use.
        forget_token();
    }
    return refused(r, stage);
}

} // namespace rs::send
