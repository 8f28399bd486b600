// SPDX-License-Identifier: MIT
// NAME
//   cleanup.cc - the cleanup(8) client: handshake, records, final status
// DESCRIPTION
//   CleanupStream is a small state machine on one bufferevent:
//   connecting -> handshake -> open -> finishing -> done, with "failed"
//   reachable from every state. cleanup speaks first (protocol and queue
//   id), then listens without a word until our E record; it answers
//   with status and reason and closes. Anything else it says is a
//   protocol error, and losing it before its answer is an error too:
//   the caller turns that into 451 4.3.0, as Postfix's smtpd does.
//
//   User callbacks are always the last thing a handler does, because a
//   callback may destroy the stream. Failures found while the caller is
//   inside one of our methods are delivered from the loop (a zero
//   timer), never re-entrantly.
//
//   reply_for_status(), received_header() and mail_date() build the
//   texts smtpd derives from the conversation (protocols doc 2.11, 2.12).
// BUGS
//   Connection retries follow mail_connect_wait() (11 attempts, 10 s
//   apart) by default; the session waits meanwhile, without blocking
//   other sessions.
// SEE ALSO
//   cleanup.h; Postfix cleanup(8), smtpd(8) (behaviour only).
#include "cleanup-bridge/cleanup.h"

#include "common/mail/attr.h"
#include "common/mail/record.h"
#include "common/util/event.h"
#include "common/util/text.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <fcntl.h>
#include <optional>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace rs::cleanup {

namespace {

// A queue id is short; a longer one is not from cleanup.
constexpr size_t QUEUE_ID_MAX = 64;

bool valid_queue_id(std::string_view id)
{
    if (id.empty() || id.size() > QUEUE_ID_MAX) {
        return false;
    }
    for (char c : id) {
        bool ok = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z')
                  || (c >= 'a' && c <= 'z');
        if (!ok) {
            return false;
        }
    }
    return true;
}

// Append "A name=value", but never with an empty value: cleanup would
// ignore it and warn "spurious null attribute value".
void put_attr(std::string& out, std::string_view name, std::string_view value)
{
    if (value.empty()) {
        return;
    }
    std::string data;
    data.reserve(name.size() + 1 + value.size());
    data += name;
    data += '=';
    data += value;
    mail::rec::put(out, mail::rec::ATTR, data);
}

// How long an abandoned stream may take to get its queued records out
// before the socket is closed regardless (seconds).
constexpr int ABANDON_FLUSH_SECONDS = 10;

// An abandoned stream's connection, kept until its queued output (whole
// records only) has reached cleanup, so that the close comes at a record
// boundary: closing in the middle of a record makes cleanup log "unexpected
// EOF in data". It frees itself.
struct Abandoned {
    BuffereventPtr bev;
    EventPtr timer;

    static void start(event_base* base, BuffereventPtr bev)
    {
        auto* a = new Abandoned;
        a->bev = std::move(bev);
        a->timer.reset(evtimer_new(
            base,
            [](evutil_socket_t, short, void* arg) noexcept {
                delete static_cast<Abandoned*>(arg);
            },
            a));
        if (!a->timer) {
            delete a;
            return;
        }
        bufferevent_setwatermark(a->bev.get(), EV_WRITE, 0, 0);
        bufferevent_setcb(
            a->bev.get(),
            [](bufferevent* b, void*) noexcept {
                // Cleanup says nothing before E; whatever comes is dropped.
                evbuffer* in = bufferevent_get_input(b);
                evbuffer_drain(in, evbuffer_get_length(in));
            },
            [](bufferevent* b, void* arg) noexcept {
                if (evbuffer_get_length(bufferevent_get_output(b)) == 0) {
                    delete static_cast<Abandoned*>(arg);
                }
            },
            [](bufferevent*, short, void* arg) noexcept {
                delete static_cast<Abandoned*>(arg);
            },
            a);
        timeval tv{ABANDON_FLUSH_SECONDS, 0};
        evtimer_add(a->timer.get(), &tv);
        bufferevent_enable(a->bev.get(), EV_READ | EV_WRITE);
    }
};

class Stream final : public CleanupStream {
public:
    Stream(event_base* base, std::string path, ReadyCb ready,
           const Options& opts)
        : base_(base), path_(std::move(path)), ready_(std::move(ready)),
          opts_(opts)
    {
    }

    // Start the first connect attempt; failures come back from the loop.
    void start()
    {
        timer_.reset(evtimer_new(base_, timer_cb, this));
        if (!timer_) {
            error_ = Error{ENOMEM, "cleanup: cannot create a timer"};
            return;
        }
        connect_once();
    }

    const std::string& queue_id() const override { return queue_id_; }

    void envelope(const Envelope& env) override;
    void recipient(const Recipient& rcpt) override;
    void begin_content(unsigned extra_flags,
                       const std::vector<std::string>& received) override;
    void content(char type, std::string_view data) override;
    void finish(unsigned extra_flags, DoneCb done) override;
    void abort() override;

    size_t pending() const override
    {
        if (!bev_) {
            return 0;
        }
        return evbuffer_get_length(bufferevent_get_output(bev_.get()));
    }

    void on_drain(std::function<void()> cb, size_t low_water) override
    {
        drain_ = std::move(cb);
        low_water_ = low_water;
        if (bev_) {
            bufferevent_setwatermark(bev_.get(), EV_WRITE, low_water, 0);
        }
    }

private:
    enum class State { connecting, handshake, open, finishing, done, failed };

    void connect_once();
    void arm_timer(int seconds);
    void send(const std::string& bytes);
    void fail_now(Error e);
    void on_read();
    void on_event(short what);
    void on_timer();
    void read_handshake(std::string_view in);
    void read_status(std::string_view in);
    void drop_connection() { bev_.reset(); }

    // Give up the connection without E, but only after the records
    // already queued have gone out whole (see Abandoned).
    void abandon_connection()
    {
        if (bev_ && (state_ == State::open || state_ == State::finishing)
            && evbuffer_get_length(bufferevent_get_output(bev_.get())) != 0) {
            Abandoned::start(base_, std::move(bev_));
            return;
        }
        bev_.reset();
    }

public:
    ~Stream() override { abandon_connection(); }

private:
    static void read_cb(bufferevent*, void* arg) noexcept
    {
        static_cast<Stream*>(arg)->on_read();
    }
    static void write_cb(bufferevent*, void* arg) noexcept
    {
        auto* self = static_cast<Stream*>(arg);
        if (self->drain_ && self->pending() <= self->low_water_) {
            // The callback may destroy us: nothing after it.
            auto cb = self->drain_;
            cb();
        }
    }
    static void event_cb(bufferevent*, short what, void* arg) noexcept
    {
        static_cast<Stream*>(arg)->on_event(what);
    }
    static void timer_cb(evutil_socket_t, short, void* arg) noexcept
    {
        static_cast<Stream*>(arg)->on_timer();
    }

    event_base* base_;
    std::string path_;
    ReadyCb ready_;
    DoneCb done_;
    Options opts_;
    State state_ = State::connecting;
    int attempts_ = 0;
    std::string queue_id_;
    std::optional<Error> error_;
    std::function<void()> drain_;
    size_t low_water_ = 0;
    BuffereventPtr bev_;
    EventPtr timer_;
};

// One connect attempt. A UNIX-domain connect completes or fails at
// once, so there is no in-progress state to wait on.
void Stream::connect_once()
{
    ++attempts_;

    // The path is relative to the queue directory, our working directory.
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    if (path_.size() >= sizeof(sun.sun_path)) {
        error_ = Error{ENAMETOOLONG, "connect to " + path_ + ": path too long"};
        state_ = State::failed;
        arm_timer(0);
        return;
    }
    std::memcpy(sun.sun_path, path_.data(), path_.size());

    // Non-blocking from the start: the loop must never wait on cleanup.
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int err = errno;
        error_ = Error{err, std::string("socket: ") + std::strerror(err)};
        state_ = State::failed;
        arm_timer(0);
        return;
    }
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof(sun)) < 0) {
        int err = errno;
        ::close(fd);

        // Postfix's smtpd keeps trying for a while (a busy or restarting
        // cleanup); so do we, from a timer.
        if (attempts_ < opts_.connect_attempts) {
            arm_timer(opts_.connect_delay);
            return;
        }
        error_ = Error{err, "connect to " + path_ + ": " + std::strerror(err)};
        state_ = State::failed;
        arm_timer(0);
        return;
    }

    // The bufferevent owns the socket from here on.
    bev_.reset(bufferevent_socket_new(base_, fd, BEV_OPT_CLOSE_ON_FREE));
    if (!bev_) {
        ::close(fd);
        error_ = Error{ENOMEM, "cleanup: cannot create a bufferevent"};
        state_ = State::failed;
        arm_timer(0);
        return;
    }
    bufferevent_setcb(bev_.get(), read_cb, write_cb, event_cb, this);
    bufferevent_setwatermark(bev_.get(), EV_WRITE, low_water_, 0);

    // cleanup speaks first, within ipc_timeout.
    timeval tv{opts_.ipc_timeout, 0};
    bufferevent_set_timeouts(bev_.get(), &tv, &tv);
    bufferevent_enable(bev_.get(), EV_READ | EV_WRITE);
    state_ = State::handshake;
}

void Stream::arm_timer(int seconds)
{
    timeval tv{seconds, 0};
    evtimer_add(timer_.get(), &tv);
}

// The timer is both the connect retry and the deferred delivery of a
// failure found outside the loop.
void Stream::on_timer()
{
    if (state_ == State::connecting) {
        connect_once();
        return;
    }
    if (state_ != State::failed || !error_) {
        return;
    }

    // Hand the failure to whoever is waiting: ready, done or a drain.
    Error e = *error_;
    if (ready_) {
        auto cb = std::move(ready_);
        ready_ = nullptr;
        cb(tl::unexpected<Error>(std::move(e)));
    } else if (done_) {
        auto cb = std::move(done_);
        done_ = nullptr;
        cb(tl::unexpected<Error>(std::move(e)));
    } else if (drain_) {
        auto cb = drain_;
        cb();
    }
}

// Record a failure, close the socket (cleanup then drops the queue
// file) and tell the waiting party from the loop.
void Stream::fail_now(Error e)
{
    if (state_ == State::failed || state_ == State::done) {
        return;
    }
    if (!error_) {
        error_ = std::move(e);
    }
    state_ = State::failed;
    drop_connection();
    if (timer_) {
        arm_timer(0);
    }
}

void Stream::send(const std::string& bytes)
{
    // After a failure there is nowhere to send; finish() reports it.
    if (state_ != State::open || !bev_) {
        return;
    }
    if (bufferevent_write(bev_.get(), bytes.data(), bytes.size()) < 0) {
        fail_now(Error{ENOMEM, "cleanup: cannot queue output"});
    }
}

void Stream::on_read()
{
    // Look at no more than a reply may take; scan0 says when that is
    // not enough.
    evbuffer* in = bufferevent_get_input(bev_.get());
    size_t len = evbuffer_get_length(in);
    size_t look = std::min(len, opts_.reply_limit);
    auto* p = evbuffer_pullup(in, static_cast<ev_ssize_t>(look));
    std::string_view view(reinterpret_cast<const char*>(p), look);

    switch (state_) {
    case State::handshake:
        read_handshake(view);
        return;
    case State::finishing:
        read_status(view);
        return;
    default:
        // cleanup has nothing to say between handshake and reply.
        fail_now(Error{0, "unexpected data from cleanup before end of "
                          "message"});
        return;
    }
}

// protocol=cleanup_protocol, queue_id=ID, and nothing else.
void Stream::read_handshake(std::string_view in)
{
    auto got = mail::attr::scan0(in, opts_.reply_limit);
    if (!got) {
        fail_now(Error{0, "cleanup handshake: " + got.error().text});
        return;
    }
    if (!*got) {
        return;
    }
    const auto& list = (*got)->list;
    bool strict = list.size() == 2 && list[0].first == "protocol"
                  && list[0].second == "cleanup_protocol"
                  && list[1].first == "queue_id"
                  && valid_queue_id(list[1].second);
    if (!strict) {
        fail_now(Error{0, "cleanup handshake: unexpected attributes"});
        return;
    }
    evbuffer* buf = bufferevent_get_input(bev_.get());
    evbuffer_drain(buf, (*got)->consumed);
    if (evbuffer_get_length(buf) != 0) {
        fail_now(Error{0, "cleanup handshake: unexpected data after it"});
        return;
    }
    queue_id_ = list[1].second;

    // While the client talks, cleanup is silent: no read timeout, but
    // keep reading so that a hang-up is seen.
    timeval tv{opts_.ipc_timeout, 0};
    bufferevent_set_timeouts(bev_.get(), nullptr, &tv);
    state_ = State::open;

    // The callback may destroy us: nothing after it.
    auto cb = std::move(ready_);
    ready_ = nullptr;
    cb(queue_id_);
}

// status=N, reason=TEXT, strictly, after our E.
void Stream::read_status(std::string_view in)
{
    auto got = mail::attr::scan0(in, opts_.reply_limit);
    if (!got) {
        fail_now(Error{0, "cleanup reply: " + got.error().text});
        return;
    }
    if (!*got) {
        return;
    }
    const auto& list = (*got)->list;
    if (list.size() != 2 || list[0].first != "status"
        || list[1].first != "reason") {
        fail_now(Error{0, "cleanup reply: unexpected attributes"});
        return;
    }
    auto num = text::parse_int(list[0].second, 0, UINT32_MAX);
    if (!num) {
        fail_now(Error{0, "cleanup reply: bad status "
                              + text::printable(list[0].second, 20)});
        return;
    }
    Status st{static_cast<unsigned>(*num), list[1].second};

    // One message per connection: this one is over.
    state_ = State::done;
    drop_connection();

    // The callback may destroy us: nothing after it.
    auto cb = std::move(done_);
    done_ = nullptr;
    cb(std::move(st));
}

void Stream::on_event(short what)
{
    // A hang-up or error before the reply: the message is not queued.
    std::string why;
    int code = EVUTIL_SOCKET_ERROR();
    if (what & BEV_EVENT_TIMEOUT) {
        why = "timeout talking to cleanup";
        code = ETIMEDOUT;
    } else if (what & BEV_EVENT_EOF) {
        why = "lost connection with cleanup";
        code = 0;
    } else {
        why = std::string("error talking to cleanup: ") + std::strerror(code);
    }
    fail_now(Error{code, why});
}

void Stream::envelope(const Envelope& env)
{
    std::string out;

    // The flags word is an attribute list of its own; records follow in
    // the same write.
    mail::attr::print0(out, {{"flags", std::to_string(env.flags)}});

    // Arrival time, then the optional content filter.
    mail::rec::put(out, mail::rec::TIME,
                   std::to_string(env.arrival_sec) + " "
                       + std::to_string(env.arrival_usec));
    if (!env.content_filter.empty()) {
        mail::rec::put(out, mail::rec::FILT, env.content_filter);
    }

    // The log ident defaults to the queue id, so it is always there.
    put_attr(out, "log_ident",
             env.log_ident.empty() ? queue_id_ : env.log_ident);
    put_attr(out, "rewrite_context", env.rewrite_context);

    // SASL and DSN envelope attributes only when there is something.
    put_attr(out, "sasl_method", env.sasl_method);
    put_attr(out, "sasl_username", env.sasl_username);
    put_attr(out, "sasl_sender", env.sasl_sender);
    put_attr(out, "envelope_id", env.envelope_id);
    if (env.ret_flags != 0) {
        put_attr(out, "ret_flags", std::to_string(env.ret_flags));
    }

    // The sender, empty for the null sender, then the BODY= encoding.
    mail::rec::put(out, mail::rec::FROM, env.sender);
    put_attr(out, "encoding", env.encoding);

    // What cleanup logs (forwarded values when XFORWARD gave them).
    put_attr(out, "log_client_name", env.log_client_name);
    put_attr(out, "log_client_address", env.log_client_address);
    put_attr(out, "log_client_port", env.log_client_port);
    put_attr(out, "log_message_origin", env.log_message_origin);
    put_attr(out, "log_helo_name", env.log_helo_name);
    put_attr(out, "log_protocol_name", env.log_protocol_name);

    // The real client, for Milters in cleanup.
    put_attr(out, "client_name", env.client_name);
    put_attr(out, "reverse_client_name", env.reverse_client_name);
    put_attr(out, "client_address", env.client_address);
    put_attr(out, "client_port", env.client_port);
    put_attr(out, "server_address", env.server_address);
    put_attr(out, "server_port", env.server_port);
    put_attr(out, "helo_name", env.helo_name);
    put_attr(out, "protocol_name", env.protocol_name);
    put_attr(out, "client_address_type",
             std::to_string(env.client_address_type));

    send(out);
}

void Stream::recipient(const Recipient& rcpt)
{
    std::string out;

    // DSN attributes bind to the R record that follows them.
    if (rcpt.notify_flags != 0) {
        put_attr(out, "notify_flags", std::to_string(rcpt.notify_flags));
    }
    put_attr(out, "dsn_orig_rcpt", rcpt.orcpt);
    mail::rec::put(out, mail::rec::RCPT, rcpt.address);
    send(out);
}

void Stream::begin_content(unsigned extra_flags,
                           const std::vector<std::string>& received)
{
    std::string out;

    // HOLD/DISCARD decided during the envelope, then the content segment
    // with smtpd's own header lines first.
    unsigned f = extra_flags & (FLAG_HOLD | FLAG_DISCARD);
    if (f != 0) {
        mail::rec::put(out, mail::rec::FLGS, std::to_string(f));
    }
    mail::rec::put(out, mail::rec::MESG, "");
    for (const auto& line : received) {
        mail::rec::put(out, mail::rec::NORM, line);
    }
    send(out);
}

void Stream::content(char type, std::string_view data)
{
    std::string out;
    mail::rec::put(out, type, data);
    send(out);
}

void Stream::finish(unsigned extra_flags, DoneCb done)
{
    done_ = std::move(done);

    // A failure during the message is the answer.
    if (state_ != State::open || !bev_) {
        if (!error_) {
            error_ = Error{0, "cleanup stream not open"};
        }
        state_ = State::failed;
        arm_timer(0);
        return;
    }

    // The extracted segment: access-map results, then the flags again
    // (they may have been set at end of data), then the end.
    std::string out;
    mail::rec::put(out, mail::rec::XTRA, "");
    if (!extracted_.filter.empty()) {
        mail::rec::put(out, mail::rec::FILT, extracted_.filter);
    }
    if (!extracted_.redirect.empty()) {
        mail::rec::put(out, mail::rec::RDR, extracted_.redirect);
    }
    for (const auto& addr : extracted_.bcc) {
        // Postfix 3.7 sends the A after its R; we mirror the bytes.
        mail::rec::put(out, mail::rec::RCPT, addr);
        put_attr(out, "notify_flags", "1");
    }
    unsigned f = extra_flags & (FLAG_HOLD | FLAG_DISCARD);
    if (f != 0) {
        mail::rec::put(out, mail::rec::FLGS, std::to_string(f));
    }
    mail::rec::put(out, mail::rec::END, "");
    send(out);
    if (state_ != State::open) {
        return;
    }

    // Now cleanup must answer within ipc_timeout.
    timeval tv{opts_.ipc_timeout, 0};
    bufferevent_set_timeouts(bev_.get(), &tv, &tv);
    state_ = State::finishing;
}

void Stream::abort()
{
    // Closing without E makes cleanup discard the queue file.
    abandon_connection();
    if (timer_) {
        evtimer_del(timer_.get());
    }
    ready_ = nullptr;
    done_ = nullptr;
    drain_ = nullptr;
    if (!error_) {
        error_ = Error{0, "cleanup stream aborted"};
    }
    state_ = State::done;
}

// Make `reason` safe to send as reply text. An SMTP-style reply keeps
// CR and LF (it may be multi-line); otherwise every control byte goes.
// Valid UTF-8 is kept, as Postfix does with smtputf8_enable.
std::string sanitize_reason(std::string_view r, bool smtp_style)
{
    std::string out;
    out.reserve(r.size());
    size_t i = 0;
    while (i < r.size()) {
        auto c = static_cast<unsigned char>(r[i]);

        // Printable ASCII passes; CR/LF only in a reply.
        if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
            ++i;
            continue;
        }
        if (smtp_style && (c == '\r' || c == '\n')) {
            out += static_cast<char>(c);
            ++i;
            continue;
        }

        // A well-formed UTF-8 sequence passes whole.
        size_t n = c >= 0xf0 && c <= 0xf4   ? 4
                   : c >= 0xe0 && c <= 0xef ? 3
                   : c >= 0xc2 && c <= 0xdf ? 2
                                            : 0;
        bool ok = n != 0 && i + n <= r.size();
        for (size_t k = 1; ok && k < n; ++k) {
            ok = (static_cast<unsigned char>(r[i + k]) & 0xc0) == 0x80;
        }
        if (ok && n == 3) {
            auto c1 = static_cast<unsigned char>(r[i + 1]);
            ok = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 >= 0xa0);
        }
        if (ok && n == 4) {
            auto c1 = static_cast<unsigned char>(r[i + 1]);
            ok = !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 >= 0x90);
        }
        if (ok) {
            out.append(r.substr(i, n));
            i += n;
            continue;
        }
        out += ' ';
        ++i;
    }
    return out;
}

// "4xx" or "5xx" followed by the end, a space or a dash.
bool looks_like_reply(std::string_view r)
{
    auto digit = [](char c) { return c >= '0' && c <= '9'; };
    return r.size() >= 3 && (r[0] == '4' || r[0] == '5') && digit(r[1])
           && digit(r[2]) && (r.size() == 3 || r[3] == ' ' || r[3] == '-');
}

} // namespace

std::unique_ptr<CleanupStream>
CleanupStream::open(event_base* base, const std::string& path, ReadyCb ready)
{
    return open(base, path, std::move(ready), Options{});
}

std::unique_ptr<CleanupStream> CleanupStream::open(event_base* base,
                                                   const std::string& path,
                                                   ReadyCb ready,
                                                   const Options& options)
{
    auto s = std::make_unique<Stream>(base, path, std::move(ready), options);
    s->start();
    return s;
}

std::string reply_for_status(const Status& st, const std::string& queue_id,
                             bool bdat, long long size,
                             const std::string& myhostname, int bare_lf_code)
{
    // Success, with the byte count for BDAT.
    if (st.status == 0) {
        if (bdat) {
            return "250 2.0.0 Ok: " + std::to_string(size) + " bytes queued as "
                   + queue_id;
        }
        return "250 2.0.0 Ok: queued as " + queue_id;
    }

    // smtpd's own bare-LF verdict comes before anything cleanup said.
    if (st.status & STAT_BARE_LF) {
        return std::to_string(bare_lf_code) + " 5.5.2 " + myhostname
               + " Error: bare <LF> received";
    }

    // A full SMTP reply from cleanup (a Milter's) goes out as it is.
    bool smtp_style = looks_like_reply(st.reason);
    std::string reason = sanitize_reason(st.reason, smtp_style);
    if (smtp_style) {
        return reason;
    }

    // Otherwise the most severe status bit decides, in Postfix's order.
    std::string num = std::to_string(st.status);
    if (st.status & STAT_DEFER) {
        return reason.empty() ? "451 4.7.1 Error: service unavailable"
                              : "451 " + reason;
    }
    if (st.status & STAT_BAD) {
        return "451 4.3.0 Error: internal error " + num;
    }
    if (st.status & STAT_SIZE) {
        return "552 5.3.4 Error: message file too big";
    }
    if (st.status & STAT_HOPS) {
        return "554 5.4.0 Error: too many hops";
    }
    if (st.status & STAT_CONT) {
        return reason.empty() ? "550 5.7.1 Error: message content rejected"
                              : "550 " + reason;
    }
    if (st.status & STAT_WRITE) {
        return "451 4.3.0 Error: queue file write error";
    }

    // PROXY without a reply text, RCPT, NOPERM and unknown bits.
    return "451 4.3.0 Error: internal error " + num;
}

std::vector<std::string> received_header(const ReceivedInfo& info)
{
    std::vector<std::string> lines;

    // Who connected: the HELO name, or the client name without one.
    const std::string& helo = info.helo.empty() ? info.client_name : info.helo;
    lines.push_back("Received: from " + helo + " (" + info.client_name + " ["
                    + info.client_rfc_addr + "])");

    // TLS details and the SASL sender, when configured.
    for (const auto& t : info.tls_lines) {
        lines.push_back(t);
    }
    if (!info.authenticated_sender.empty()) {
        lines.push_back("\t(Authenticated sender: " + info.authenticated_sender
                        + ")");
    }

    // Who received, with the queue id when there is a queue file.
    std::string by = "\tby " + info.myhostname + " (" + info.mail_name
                     + ") with " + info.protocol;
    if (!info.queue_id.empty()) {
        by += " id " + info.queue_id;
    }

    // One recipient is named; with more the date gets a line of its own.
    if (!info.single_recipient.empty()) {
        lines.push_back(by);
        lines.push_back("\tfor <" + info.single_recipient + ">; " + info.date);
    } else {
        lines.push_back(by + ";");
        lines.push_back("\t" + info.date);
    }
    return lines;
}

std::string mail_date(long when)
{
    // Local time in the process's TZ; names in English (the C locale).
    time_t t = static_cast<time_t>(when);
    tm lt{};
    if (localtime_r(&t, &lt) == nullptr) {
        return {};
    }
    char buf[128];
    size_t n = std::strftime(buf, sizeof(buf), "%a, %e %b %Y %H:%M:%S ", &lt);
    std::string out(buf, n);

    // The UTC offset as Postfix prints it: signed hours, then minutes.
    long off_min = lt.tm_gmtoff / 60;
    char zone[32];
    std::snprintf(zone, sizeof(zone), "%+03d%02d",
                  static_cast<int>(off_min / 60),
                  static_cast<int>((off_min < 0 ? -off_min : off_min) % 60));
    out += zone;

    // The zone name in parentheses.
    n = std::strftime(buf, sizeof(buf), " (%Z)", &lt);
    out.append(buf, n);
    return out;
}

} // namespace rs::cleanup
