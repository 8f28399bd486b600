// SPDX-License-Identifier: MIT
// NAME
//   smtpd_resume.cc - XRESUME: resumable message transfers
// DESCRIPTION
//   The server side of docs/draft-xresume.txt. After MAIL and at least
//   one accepted RCPT (so that every envelope check has run again on
//   this connection), "XRESUME NEW" opens a spool entry and "XRESUME
//   token" claims one: the client is told the committed offset and the
//   digest of the stored prefix, then sends only the rest with DATA or
//   BDAT. The stored prefix is replayed into the new cleanup stream
//   before the client's tail, through the same DataReceiver, so the
//   queued message is the one a single session would have queued.
//
//   While a session owns an entry, every message octet goes to the
//   spool as well (an OctetTap on the receiver); a checkpoint commits it
//   by size or time, at the end of the message, and when the session is
//   cut off, times out or is taken over. The verdict ends the entry: a
//   queued message leaves a "done" tombstone (a later resume gets DONE
//   and the queue id, never a second copy), a permanent refusal a
//   "refused" one (the reply again), and a temporary failure leaves the
//   whole message stored and resumable.
//
//   Takeover: a claim of an entry that another session (in any process
//   of the instance) still owns returns busy and leaves a request in
//   the spool; the owner polls for it every RESUME_POLL_MS, saves what
//   it has, answers 421 and hangs up; the claim is retried every
//   CLAIM_RETRY_MS for CLAIM_TRIES tries.
// LOGGING
//   New lines, never extra fields on Postfix's: "QID: resume: new
//   token=H", "QID: resume: token=H offset=N resumes=R", "... saved
//   offset=N", "... done queue_id=ID", "... refused", "... taken over",
//   "QID: resume: unavailable: ..."; H is a short hash of the token.
// SEE ALSO
//   resumedb/spool.h, smtpd/data.h, docs/draft-xresume.txt.
#include "common/mail/log.h"
#include "common/util/text.h"
#include "smtpd/session.h"

#include <arpa/inet.h>
#include <cerrno>
#include <ctime>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fmt/format.h>

namespace rs::smtpd {

namespace {

constexpr int RESUME_POLL_MS = 250;
constexpr int CLAIM_RETRY_MS = 100;
constexpr int CLAIM_TRIES = 50; // 5 s, draft 10.2
constexpr size_t REPLAY_CHUNK = 64 * 1024;
constexpr size_t STORE_BATCH = 64 * 1024;
constexpr size_t REPLAY_HIGH_WATER = 1024 * 1024;
constexpr size_t REPLAY_LOW_WATER = 256 * 1024;

const char* const UNAVAILABLE =
    "452 4.3.1 Resume not available now, send without resume";
const char* const BUSY =
    "451 4.3.0 Error: transfer in use by another session, try again later";

// Message octets go to the session's spool entry as they are read.
class SpoolTap : public OctetTap {
public:
    explicit SpoolTap(Session* s) : s_(s) {}
    void octets(std::string_view bytes, bool line_end) override
    {
        s_->resume_store(bytes, line_end);
    }

private:
    Session* s_;
};

// Records of a replayed prefix go to cleanup like the client's own.
class ReplaySink : public ContentSink {
public:
    explicit ReplaySink(cleanup::CleanupStream* stream) : stream_(stream) {}
    void record(char type, std::string_view data) override
    {
        if (stream_ != nullptr) {
            stream_->content(type, data);
        }
    }

private:
    cleanup::CleanupStream* stream_;
};

// The client's network for the binding: /24 for IPv4, /64 for IPv6.
std::string network_of(const std::string& addr)
{
    unsigned char b[16];
    if (inet_pton(AF_INET, addr.c_str(), b) == 1) {
        return fmt::format("{}.{}.{}.0/24", b[0], b[1], b[2]);
    }
    if (inet_pton(AF_INET6, addr.c_str(), b) == 1) {
        for (int i = 8; i < 16; ++i) {
            b[i] = 0;
        }
        char out[INET6_ADDRSTRLEN];
        if (inet_ntop(AF_INET6, b, out, sizeof(out)) != nullptr) {
            return std::string(out) + "/64";
        }
    }
    return addr;
}

timeval ms_to_tv(int ms)
{
    return timeval{ms / 1000, (ms % 1000) * 1000};
}

} // namespace

bool Session::resume_offered() const
{
    // A spool, the switch, an EHLO session (draft 4.5), and a client in
    // smtpd_resume_clients.
    return env_.spool != nullptr && cfg_.resume_enable && esmtp_
           && (!cfg_.resume_clients || cfg_.resume_clients->match(addr_));
}

std::string Session::resume_binding() const
{
    // One field per line; a value cannot hold a newline (commands are
    // lines), so no two envelopes give the same text.
    std::string b = "xresume-binding 1\n";
    b += "sender=" + txn_.sender + "\n";
    b += fmt::format("size={}\nbody={}\nsmtputf8={}\nret={}\n",
                     txn_.declared_size, txn_.encoding, txn_.smtputf8 ? 1 : 0,
                     txn_.ret_flags);
    b += "envid=" + txn_.envid + "\n";
    for (const auto& r : txn_.rcpt_binding) {
        b += "rcpt=" + r + "\n";
    }
    // An entry made under TLS resumes only under TLS, and one made in
    // the clear only in the clear (draft 9.3).
    b += tls_active_ ? "tls=yes\n" : "tls=no\n";

    // No SASL yet: the client's address or network, as configured.
    switch (cfg_.resume_bind) {
    case resumedb::BindClient::address:
        b += "client=" + addr_ + "\n";
        break;
    case resumedb::BindClient::network:
        b += "client=" + network_of(addr_) + "\n";
        break;
    case resumedb::BindClient::none:
        break;
    }
    return b;
}

std::string Session::resume_client_key() const
{
    // Quotas are per client network (per SASL identity once AUTH
    // exists), whatever the binding: a mobile client that hops between
    // addresses of its network has one share (draft 11.5).
    return network_of(addr_);
}

void Session::xresume_cmd(const std::vector<std::string>& argv,
                          const std::string& line)
{
    // One space between the words, none around them (draft 5.1): the
    // words joined by single spaces must give back the line.
    size_t joined = argv.empty() ? 0 : argv.size() - 1;
    for (const auto& a : argv) {
        joined += a.size();
    }
    bool tidy = joined == line.size() && line.find('\t') == std::string::npos;

    // Offered to this client at all?
    if (!resume_offered()) {
        reply("502 5.5.1 Error: command not implemented");
        finish_cmd(false);
        return;
    }

    // Inside a BDAT series nothing may change the transfer (draft 5.2;
    // inside DATA there are no commands).
    if (txn_.bdat) {
        reply("503 5.5.1 Error: XRESUME after BDAT");
        finish_cmd(false);
        return;
    }

    // Syntax: NEW, a token, or ABORT token.
    bool is_new = argv.size() == 2 && text::iequals(argv[1], "NEW");
    bool is_abort = argv.size() == 3 && text::iequals(argv[1], "ABORT")
                    && resumedb::token_syntax_ok(argv[2]);
    bool is_token =
        argv.size() == 2 && !is_new && resumedb::token_syntax_ok(argv[1]);
    if (!tidy || (!is_new && !is_abort && !is_token)) {
        reply("501 5.5.4 Syntax: XRESUME NEW|<token>|ABORT <token>");
        finish_cmd(false);
        return;
    }

    // ABORT needs no transaction: the token is the authority. The reply
    // is the same whether or not there was anything to remove.
    if (is_abort) {
        // Our own transfer: we hold it, so we remove it.
        if (txn_.resume && argv[2] == txn_.resume_token) {
            log::info("{}: resume: token={} aborted", qid_or_noqueue(),
                      txn_.resume_hash);
            (void)txn_.resume->remove();
            txn_.resume.reset();
            reply("250 2.0.0 Ok");
            finish_cmd(true);
            return;
        }
        resume_abort(argv[2], 0);
        return;
    }

    // After MAIL and an accepted RCPT, before the content.
    if (!txn_.active) {
        reply("503 5.5.1 Error: need MAIL command");
        finish_cmd(false);
        return;
    }
    if (txn_.rcpt_count == 0) {
        reply("503 5.5.1 Error: need RCPT command");
        finish_cmd(false);
        return;
    }

    // A second XRESUME in one transaction replaces the first claim.
    txn_.resume.reset();
    txn_.resume_prefix = 0;

    // A message larger than we checkpoint goes without resume.
    if (cfg_.resume_max_size > 0 && txn_.declared_size > cfg_.resume_max_size) {
        log::info("{}: resume: unavailable: SIZE {} exceeds {}",
                  qid_or_noqueue(), txn_.declared_size, cfg_.resume_max_size);
        reply(UNAVAILABLE);
        finish_cmd(false);
        return;
    }
    // A client that pipelined its data behind "XRESUME token" cannot
    // know the offset it is sending from: it gets a fresh start, so
    // what it sends is a whole message (draft 5.4, 12).
    if (is_new) {
        resume_new("new");
    } else if (!pending_input(1).empty()) {
        log::info("{}: resume: token={} pipelined: starting over",
                  qid_or_noqueue(), resumedb::short_hash(argv[1]));
        resume_new("new");
    } else {
        resume_claim(argv[1], 0);
    }
}

void Session::resume_abort(const std::string& token, int tries)
{
    // Another live session may own it: it was asked to let go (as for a
    // takeover), so try again shortly; the reply is 250 in every case,
    // so that it tells nothing about the token (draft 5.5).
    auto r = env_.spool->abort(token);
    if (!r && r.error().code == EBUSY && tries < CLAIM_TRIES
        && retry_later(
            [token, tries](Session& s) { s.resume_abort(token, tries + 1); })) {
        return;
    }
    if (!r) {
        log::warning("{}: resume: token={}: abort: {}", qid_or_noqueue(),
                     resumedb::short_hash(token), r.error().text);
    } else if (*r) {
        log::info("{}: resume: token={} aborted", qid_or_noqueue(),
                  resumedb::short_hash(token));
    }
    reply("250 2.0.0 Ok");
    finish_cmd(true);
    if (tries > 0) {
        resume();
    }
}

bool Session::retry_later(std::function<void(Session&)> step)
{
    // Come back in CLAIM_RETRY_MS, reading nothing from the client
    // meanwhile; false when the timer cannot be set.
    busy_ = true;
    std::weak_ptr<Session> weak = weak_from_this();
    auto* holder = new std::function<void()>([weak, step] {
        if (auto s = weak.lock(); s && s->mode_ == Mode::command) {
            step(*s);
        }
    });
    timeval tv = ms_to_tv(CLAIM_RETRY_MS);
    if (event_base_once(
            env_.base, -1, EV_TIMEOUT,
            [](evutil_socket_t, short, void* arg) noexcept {
                auto* f = static_cast<std::function<void()>*>(arg);
                (*f)();
                delete f;
            },
            holder, &tv)
        != 0) {
        delete holder;
        busy_ = false;
        return false;
    }
    return true;
}

void Session::resume_new(const std::string& why)
{
    // A fresh entry, unless the spool or this client's share is full.
    auto r = env_.spool->create(resume_binding(), resume_client_key(),
                                txn_.declared_size);
    if (!r || r->kind != resumedb::Created::Kind::ok) {
        std::string cause = !r ? r.error().text
                            : r->kind == resumedb::Created::Kind::spool_full
                                ? "spool full"
                                : "client limit reached";
        log::info("{}: resume: unavailable: {}", qid_or_noqueue(), cause);
        reply(UNAVAILABLE);
        finish_cmd(false);
        return;
    }
    std::string token = r->token;
    resume_own(std::move(r->entry), token);
    log::info("{}: resume: {} token={}", qid_or_noqueue(), why,
              txn_.resume_hash);
    reply(fmt::format("250 2.0.0 TOKEN={} OFFSET=0 TTL={}", token,
                      cfg_.resume_ttl));
    finish_cmd(true);
}

void Session::resume_claim(const std::string& token, int tries)
{
    auto r = env_.spool->claim(token, resume_binding());
    if (!r) {
        // A damaged or unreadable entry: a fresh start, in the same
        // words as for any token we cannot resume (draft 5.4).
        log::warning("{}: resume: token={}: {}", qid_or_noqueue(),
                     resumedb::short_hash(token), r.error().text);
        resume_new("new");
        if (tries > 0) {
            resume();
        }
        return;
    }
    using Kind = resumedb::Claim::Kind;
    std::string hash = resumedb::short_hash(token);
    switch (r->kind) {
    case Kind::busy: {
        // The old session still holds it: it was asked to let go; try
        // again shortly, reading nothing from the client meanwhile.
        // The owner may be finishing the message (cleanup is slow):
        // then the outcome is not known yet, and "send without resume"
        // could queue a second copy. The client is told to come back.
        if (tries >= CLAIM_TRIES) {
            log::info("{}: resume: token={} still owned by another session",
                      qid_or_noqueue(), hash);
            reply(BUSY);
            finish_cmd(false);
            resume();
            return;
        }
        if (!retry_later([token, tries](Session& s) {
                s.resume_claim(token, tries + 1);
            })) {
            reply(BUSY);
            finish_cmd(false);
        }
        return;
    }
    case Kind::partial: {
        // Data pipelined behind the command while we waited for the
        // old owner cannot know the offset: start over, so that what
        // the client sends is a whole message (draft 5.4, 12). The
        // entry stays for a well-behaved retry.
        if (!pending_input(1).empty()) {
            log::info("{}: resume: token={} pipelined: starting over",
                      qid_or_noqueue(), hash);
            r->entry.reset();
            resume_new("new");
            break;
        }
        int64_t offset = r->entry->offset();
        std::string digest = r->entry->sha256();
        resume_own(std::move(r->entry), token);
        txn_.resume_prefix = offset;
        // BDAT counts (and limits) the whole message, prefix included.
        txn_.bdat_octets = offset;
        log::info("{}: resume: token={} offset={}", qid_or_noqueue(), hash,
                  offset);
        reply(fmt::format("250 2.0.0 TOKEN={} OFFSET={} SHA256={} TTL={}",
                          token, offset, digest, cfg_.resume_ttl));
        finish_cmd(true);
        break;
    }
    case Kind::done:
        // Already queued: say so, and queue nothing a second time.
        log::info("{}: resume: token={} done queue_id={}", qid_or_noqueue(),
                  hash, r->queue_id);
        mail_reset();
        reply("250 2.0.0 DONE QUEUEID=" + r->queue_id);
        finish_cmd(true);
        break;
    case Kind::refused:
        // Refused for good: the same verdict, and no upload again.
        log::info("{}: resume: token={} refused", qid_or_noqueue(), hash);
        mail_reset();
        reply(r->verdict);
        finish_cmd(false);
        break;
    case Kind::none:
    case Kind::mismatch:
        // Nothing we can resume: a fresh start, in the same words as NEW
        // so that a guesser learns nothing.
        if (r->kind == Kind::mismatch) {
            log::info("{}: resume: token={} binding mismatch (envelope, "
                      "client network or TLS)",
                      qid_or_noqueue(), hash);
        }
        resume_new("new");
        break;
    }
    if (tries > 0) {
        resume();
    }
}

void Session::resume_own(std::unique_ptr<resumedb::Entry> entry,
                         const std::string& token)
{
    // The entry is ours until the message ends, the client goes, or
    // another session asks for it.
    txn_.resume = std::move(entry);
    txn_.resume_token = token;
    txn_.resume_hash = resumedb::short_hash(token);
    txn_.resume_tap = std::make_unique<SpoolTap>(this);
    if (!resume_timer_) {
        resume_timer_.reset(event_new(
            env_.base, -1, EV_PERSIST,
            [](evutil_socket_t, short, void* arg) noexcept {
                static_cast<Session*>(arg)->resume_watch();
            },
            this));
    }
    if (resume_timer_) {
        timeval tv = ms_to_tv(RESUME_POLL_MS);
        event_add(resume_timer_.get(), &tv);
    }
}

void Session::resume_watch()
{
    // Nothing owned any more: stop polling.
    if (!txn_.resume || mode_ == Mode::closing || mode_ == Mode::closed) {
        if (resume_timer_) {
            event_del(resume_timer_.get());
        }
        return;
    }

    // A time-based checkpoint also happens on a slow trickle.
    resume_checkpoint(false);
    if (!txn_.resume || !txn_.resume->want_takeover()) {
        return;
    }

    // A message waiting for cleanup's verdict is finished first; the
    // new session waits for its outcome (draft 10.3).
    if (busy_ && where_ == "END-OF-MESSAGE") {
        return;
    }

    // Another session wants the transfer: save it and hang up.
    resume_save();
    log::info("{}: resume: token={} taken over", qid_or_noqueue(),
              txn_.resume_hash);
    txn_.resume.reset();
    event_del(resume_timer_.get());
    reply("421 4.4.2 " + cfg_.myhostname
          + " Error: transfer taken over by another session");
    txn_.stream.reset();
    close_after_reply();
}

void Session::resume_store(std::string_view bytes, bool line_end)
{
    // During the replay the tap is off; otherwise every octet is kept.
    // Lines are gathered into STORE_BATCH-sized writes: one system call
    // and one digest copy per batch, not per line.
    if (!txn_.resume) {
        return;
    }
    txn_.resume_buf.append(bytes);
    if (line_end) {
        txn_.resume_buf_lines = txn_.resume_buf.size();
        if (txn_.resume_buf.size() >= STORE_BATCH) {
            resume_flush();
        }
    }
}

void Session::resume_flush()
{
    // Whole lines first (their end may become an offset), then any
    // partial line after them.
    if (!txn_.resume || txn_.resume_buf.empty()) {
        txn_.resume_buf.clear();
        txn_.resume_buf_lines = 0;
        return;
    }
    std::string_view buf(txn_.resume_buf);
    Result<void> r;
    if (txn_.resume_buf_lines > 0) {
        r = txn_.resume->append(buf.substr(0, txn_.resume_buf_lines), true);
    }
    if (r && txn_.resume_buf_lines < buf.size()) {
        r = txn_.resume->append(buf.substr(txn_.resume_buf_lines), false);
    }
    txn_.resume_buf.clear();
    txn_.resume_buf_lines = 0;
    if (!r) {
        resume_drop(r.error().text.c_str());
    }
}

void Session::resume_drop(const char* why)
{
    // Whatever went wrong, a stale entry must not outlive the message: a
    // later resume would send a tail onto an old prefix.
    log::warning("{}: resume: token={}: {}; going on without resume",
                 qid_or_noqueue(), txn_.resume_hash, why);
    if (txn_.resume) {
        (void)txn_.resume->remove();
        txn_.resume.reset();
    }
}

void Session::resume_checkpoint(bool force)
{
    // A message already known to be refused (too big, a bare LF in
    // reject mode) gets its verdict now, so a resume after a break
    // hears it instead of uploading the rest.
    if (txn_.resume && txn_.receiver) {
        cleanup::Status st;
        if (txn_.receiver->size_exceeded()) {
            st.status = cleanup::STAT_SIZE;
        } else if (bare_newline_mode() == BareNewline::reject
                   && txn_.receiver->bare_newline_seen()) {
            st.status = cleanup::STAT_BARE_LF;
        }
        if (st.status != 0) {
            resume_verdict(cleanup::reply_for_status(
                st, txn_.queue_id, mode_ == Mode::bdat_chunk,
                txn_.receiver->size(), cfg_.myhostname, cfg_.bare_lf_code));
        }
    }

    resume_commit(force);
}

void Session::resume_commit(bool force)
{
    // Commit what is stored: by size or time, or now.
    if (!txn_.resume || (!force && !txn_.resume->checkpoint_due())) {
        return;
    }
    resume_flush();
    if (!txn_.resume) {
        return;
    }
    auto r = txn_.resume->checkpoint();
    if (!r) {
        resume_drop(r.error().text.c_str());
    }
}

void Session::resume_take_buffered()
{
    // The link is gone, but what it delivered before is still in our
    // input buffer (reading may have been paused for cleanup): store it
    // too. Its records go nowhere; the cleanup stream is abandoned.
    if (!txn_.resume || !txn_.receiver || replaying_ || !bev_
        || (mode_ != Mode::data && mode_ != Mode::bdat_chunk)
        || (mode_ == Mode::bdat_chunk && bdat_discard_)) {
        return;
    }
    ReplaySink nowhere(nullptr);
    evbuffer* in = bufferevent_get_input(bev_.get());
    while (evbuffer_get_length(in) > 0 && !txn_.receiver->done()) {
        evbuffer_iovec v;
        if (evbuffer_peek(in, -1, nullptr, &v, 1) < 1) {
            break;
        }
        size_t n = v.iov_len;
        if (mode_ == Mode::bdat_chunk) {
            n = static_cast<size_t>(std::min<int64_t>(bdat_remaining_, n));
        }
        if (n == 0) {
            break;
        }
        size_t used = txn_.receiver->feed(
            std::string_view(static_cast<const char*>(v.iov_base), n), nowhere);
        if (mode_ == Mode::bdat_chunk) {
            used = n;
            bdat_remaining_ -= static_cast<int64_t>(n);
        }
        evbuffer_drain(in, used);
        if (used == 0) {
            break;
        }
    }
}

void Session::resume_save()
{
    // The session ends inside a transfer: commit up to the last line.
    if (!txn_.resume || !txn_.content_started || replaying_) {
        return;
    }
    resume_take_buffered();
    resume_checkpoint(true);
    if (txn_.resume) {
        log::info("{}: resume: token={} saved offset={}", qid_or_noqueue(),
                  txn_.resume_hash, txn_.resume->offset());
    }
}

void Session::resume_verdict(const std::string& reply_text)
{
    // The message has its answer: queued, refused for good, or not now.
    if (!txn_.resume) {
        return;
    }
    Result<void> r;
    if (reply_text.starts_with("250")) {
        r = txn_.resume->complete(txn_.queue_id);
        log::info("{}: resume: token={} completed", qid_or_noqueue(),
                  txn_.resume_hash);
    } else if (reply_text.starts_with("5") && !cfg_.soft_bounce) {
        r = txn_.resume->refuse(reply_text);
        log::info("{}: resume: token={} refused", qid_or_noqueue(),
                  txn_.resume_hash);
    } else {
        // A temporary failure keeps the whole message for a resume: it
        // is committed now, not before cleanup's answer, since a queued
        // message (the usual case) needs no more than its tombstone.
        resume_commit(true);
        if (txn_.resume) {
            log::info("{}: resume: token={} saved offset={}", qid_or_noqueue(),
                      txn_.resume_hash, txn_.resume->offset());
        }
    }
    if (!r) {
        log::warning("{}: resume: token={}: {}", qid_or_noqueue(),
                     txn_.resume_hash, r.error().text);
    }
    txn_.resume.reset();
}

void Session::start_replay()
{
    // Content begins: the stored prefix first, with the client's bytes
    // held back until it is through.
    if (txn_.resume_tap) {
        txn_.receiver->set_tap(txn_.resume_tap.get());
    }
    if (!txn_.resume || txn_.resume_prefix == 0) {
        return;
    }
    // The stored octets are unstuffed, whichever command carries the
    // tail; the receiver goes back to DATA's rules after them.
    txn_.receiver->set_tap(nullptr);
    (void)txn_.receiver->set_dot_stuffed(false);
    txn_.replay_pos = 0;
    replaying_ = true;
    replay_step();
}

void Session::replay_step()
{
    if (!replaying_ || mode_ == Mode::closing || mode_ == Mode::closed) {
        return;
    }
    ReplaySink sink(txn_.stream.get());
    std::string buf(REPLAY_CHUNK, '\0');
    while (txn_.replay_pos < txn_.resume_prefix) {
        // cleanup is behind: go on when it has drained.
        if (txn_.stream && txn_.stream->pending() > REPLAY_HIGH_WATER) {
            std::weak_ptr<Session> weak = weak_from_this();
            txn_.stream->on_drain(
                [weak] {
                    if (auto s = weak.lock()) {
                        s->replay_step();
                    }
                },
                REPLAY_LOW_WATER);
            return;
        }
        size_t want = static_cast<size_t>(std::min<int64_t>(
            REPLAY_CHUNK, txn_.resume_prefix - txn_.replay_pos));
        auto n = txn_.resume
                     ? txn_.resume->read(txn_.replay_pos, buf.data(), want)
                     : Result<size_t>(fail("entry gone"));
        if (!n || *n == 0) {
            // The prefix is lost: this message cannot be completed.
            log::warning("{}: resume: token={}: cannot read the stored "
                         "message: {}",
                         qid_or_noqueue(), txn_.resume_hash,
                         n ? "short file" : n.error().text);
            txn_.replay_failed = true;
            if (txn_.resume) {
                (void)txn_.resume->remove();
                txn_.resume.reset();
            }
            break;
        }
        txn_.receiver->feed(std::string_view(buf.data(), *n), sink);
        txn_.replay_pos += static_cast<int64_t>(*n);
    }

    // The client's tail follows: DATA is dot-stuffed again, and the new
    // octets go to the spool.
    replaying_ = false;
    if (!txn_.replay_failed
        && !txn_.receiver->set_dot_stuffed(mode_ == Mode::data)) {
        // Stored offsets are line ends; anything else is damage.
        log::warning("{}: resume: token={}: stored message does not "
                     "end a line",
                     qid_or_noqueue(), txn_.resume_hash);
        txn_.replay_failed = true;
        if (txn_.resume) {
            (void)txn_.resume->remove();
            txn_.resume.reset();
        }
    }
    if (txn_.replay_failed) {
        // The message is lost (451 at its end), but the client's tail
        // must still be read to its real end, from a clean line start,
        // so that none of it is taken for commands.
        DataLimits limits;
        limits.line_length_limit = cfg_.line_length_limit;
        limits.message_size_limit = cfg_.message_size_limit;
        limits.bare_newline = bare_newline_mode();
        txn_.receiver =
            std::make_unique<DataReceiver>(limits, mode_ == Mode::data);
    } else {
        txn_.receiver->set_tap(txn_.resume_tap.get());
    }
    process_input();
}

} // namespace rs::smtpd
