// SPDX-License-Identifier: MIT
// NAME
//   smtpd_data.cc - DATA and BDAT: message content into cleanup
// DESCRIPTION
//   DATA answers 354 and then feeds the client's bytes to a
//   DataReceiver (dot-unstuffing, line records, size accounting) whose
//   records go to the cleanup stream; the final dot ends it. BDAT (RFC
//   3030) reads exactly the announced count, whatever happened before:
//   a chunk after an error is read and thrown away, so that its bytes
//   are never taken for commands. The reply to the end of the message
//   is cleanup's verdict (reply_for_status): 250 only for status 0.
//
//   Backpressure: above CLEANUP_HIGH_WATER bytes not yet written to
//   cleanup we stop reading the client, and go on when cleanup drained.
// SEE ALSO
//   session.h, data.h, cleanup-bridge/cleanup.h.
#include "common/mail/log.h"
#include "common/util/text.h"
#include "smtpd/session.h"

#include <ctime>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <fmt/format.h>

namespace rs::smtpd {

namespace {

constexpr size_t CLEANUP_HIGH_WATER = 1024 * 1024;
constexpr size_t CLEANUP_LOW_WATER = 256 * 1024;

// Records go to cleanup while there is a stream to take them.
class StreamSink : public ContentSink {
public:
    explicit StreamSink(cleanup::CleanupStream* stream) : stream_(stream) {}
    void record(char type, std::string_view data) override
    {
        if (stream_ != nullptr) {
            stream_->content(type, data);
        }
    }

private:
    cleanup::CleanupStream* stream_;
};

} // namespace

void Session::begin_content()
{
    // The receiver, and the Received: header before the first line.
    DataLimits limits;
    limits.line_length_limit = cfg_.line_length_limit;
    limits.message_size_limit = cfg_.message_size_limit;
    limits.bare_newline = bare_newline_mode();
    bool bdat = mode_ == Mode::bdat_chunk;
    txn_.receiver = std::make_unique<DataReceiver>(limits, !bdat);
    txn_.content_started = true;

    cleanup::ReceivedInfo ri;
    ri.helo = helo_.empty() ? name_ : helo_;
    ri.client_name = name_;
    ri.client_rfc_addr = rfc_addr_;
    ri.myhostname = cfg_.myhostname;
    ri.mail_name = cfg_.mail_name;
    std::string proto =
        esmtp_ ? (txn_.smtputf8 ? "UTF8SMTP" : "ESMTP") : "SMTP";
    if (esmtp_ && tls_active_) {
        proto += "S";
    }
    ri.protocol = proto;
    ri.queue_id = txn_.queue_id;
    if (tls_active_ && cfg_.tls_received_header && ssl_ != nullptr) {
        ri.tls_lines = TlsServer::received_lines(ssl_);
    }
    if (txn_.rcpt_count == 1) {
        ri.single_recipient = txn_.first_rcpt_ext;
    }
    ri.date = cleanup::mail_date(std::time(nullptr));
    if (txn_.stream) {
        txn_.stream->begin_content(0, cleanup::received_header(ri));
    }

    // A resumed transfer: the stored prefix goes first.
    start_replay();
}

void Session::data_cmd(const std::string& args)
{
    // Sequence: recipients first, and DATA does not mix with BDAT.
    // Postfix says "need RCPT" outside a transaction, and "no valid
    // recipients" inside one that has none (tried or not).
    if (!txn_.active) {
        reply("503 5.5.1 Error: need RCPT command");
        finish_cmd(false);
        return;
    }
    if (txn_.rcpt_count == 0) {
        reply("554 5.5.1 Error: no valid recipients");
        finish_cmd(false);
        return;
    }
    if (txn_.bdat) {
        reply("503 5.5.1 Error: DATA after BDAT");
        finish_cmd(false);
        return;
    }
    if (!text::trim(args).empty()) {
        reply("501 5.5.4 Syntax: DATA");
        finish_cmd(false);
        return;
    }

    mode_ = Mode::data;
    begin_content();
    reply("354 End data with <CR><LF>.<CR><LF>");
}

bool Session::feed_data()
{
    // Give the receiver what we have, a buffer segment at a time; what
    // follows the final dot stays for the command reader.
    evbuffer* in = bufferevent_get_input(bev_.get());
    StreamSink sink(txn_.stream.get());
    bool progress = false;
    while (evbuffer_get_length(in) > 0 && !txn_.receiver->done()) {
        evbuffer_iovec v;
        if (evbuffer_peek(in, -1, nullptr, &v, 1) < 1) {
            break;
        }
        std::string_view bytes(static_cast<const char*>(v.iov_base), v.iov_len);
        size_t used = txn_.receiver->feed(bytes, sink);
        evbuffer_drain(in, used);
        if (used == 0) {
            break;
        }
        progress = true;
        if (txn_.receiver->size_exceeded() && !txn_.size_warned) {
            txn_.size_warned = true;
            log::warning("{}: queue file size limit exceeded",
                         qid_or_noqueue());
        }
        resume_checkpoint(false);

        // cleanup is slower than the client: wait for it to catch up.
        if (txn_.stream && txn_.stream->pending() > CLEANUP_HIGH_WATER) {
            paused_ = true;
            std::weak_ptr<Session> weak = weak_from_this();
            txn_.stream->on_drain(
                [weak] {
                    auto s = weak.lock();
                    if (s && s->paused_ && s->mode_ != Mode::closed) {
                        s->paused_ = false;
                        s->process_input();
                    }
                },
                CLEANUP_LOW_WATER);
            return false;
        }
    }
    if (txn_.receiver->done()) {
        end_of_message(false);
        return true;
    }
    return progress;
}

void Session::end_of_message(bool bdat)
{
    // The content is complete; cleanup's verdict becomes our reply.
    mode_ = Mode::command;
    where_ = "END-OF-MESSAGE";
    cleanup::Status st;
    if (txn_.receiver && txn_.receiver->size_exceeded()) {
        st.status = cleanup::STAT_SIZE;
    } else if (txn_.receiver && bare_newline_mode() == BareNewline::reject
               && txn_.receiver->bare_newline_seen()) {
        st.status = cleanup::STAT_BARE_LF;
        log_reject("END-OF-MESSAGE", "bare <LF> received", true,
                   txn_.first_rcpt_ext);
    } else if (!txn_.stream || txn_.replay_failed) {
        st.status = cleanup::STAT_WRITE;
    } else {
        busy_ = true;
        std::weak_ptr<Session> weak = weak_from_this();
        txn_.stream->finish(0, [weak, bdat](Result<cleanup::Status> r) {
            auto s = weak.lock();
            if (!s || s->mode_ == Mode::closed) {
                return;
            }
            cleanup::Status got;
            if (r) {
                got = *r;
            } else {
                // A lost cleanup reads as a write error, as in Postfix.
                log::warning("{}: cleanup: {}", s->qid_or_noqueue(),
                             r.error().text);
                got.status = cleanup::STAT_WRITE;
            }
            s->message_done(got, bdat);
            s->resume();
        });
        return;
    }
    message_done(st, bdat);
}

void Session::message_done(const cleanup::Status& st, bool bdat)
{
    int64_t size = txn_.receiver ? txn_.receiver->size() : 0;
    std::string text = cleanup::reply_for_status(
        st, txn_.queue_id, bdat, size, cfg_.myhostname, cfg_.bare_lf_code);

    // A message in the queue forgives earlier mistakes.
    bool ok = st.status == 0;
    if (ok) {
        error_count_ = 0;
        junk_count_ = 0;
    }
    resume_verdict(text);
    txn_.stream.reset();
    mail_reset();
    reply(text);
    finish_cmd(ok);
}

void Session::bdat_cmd(const std::vector<std::string>& argv)
{
    // "BDAT count [LAST]". Without a trustworthy count we cannot tell
    // content from commands, so Postfix hangs up, and so do we.
    std::optional<int64_t> count;
    bool last = false;
    if (argv.size() == 2 || argv.size() == 3) {
        count = text::parse_int(argv[1], 0);
        if (argv.size() == 3) {
            last = text::iequals(argv[2], "LAST");
            if (!last) {
                count.reset();
            }
        }
    }
    if (!count) {
        std::string line;
        for (size_t i = 0; i < argv.size(); ++i) {
            line += (i ? " " : "") + argv[i];
        }
        log::warning("{}: malformed BDAT command syntax from {}: {}",
                     qid_or_noqueue(), namaddr_, text::printable(line));
        reply("521 5.5.4 Syntax: BDAT count [LAST]");
        finish_cmd(false);
        close_after_reply();
        return;
    }
    bdat_remaining_ = *count;
    bdat_last_ = last;
    mode_ = Mode::bdat_chunk;

    // Without the required TLS the chunk is refused but still read
    // (Postfix 3.7 leaves it to be taken for commands; we do not).
    if (need_tls()) {
        bdat_discard_ = true;
        reply("530 5.7.0 Must issue a STARTTLS command first");
        finish_cmd(false);
        return;
    }

    // An empty chunk that is not the last one makes no progress: Postfix
    // refuses it as a way to keep a session busy for nothing, and drops
    // the message; the rest of the series is discarded. It is checked
    // before the discarding of a failed series, as Postfix does.
    if (*count == 0 && !last) {
        log::warning("{}: null BDAT request from {}", qid_or_noqueue(),
                     namaddr_);
        mail_reset();
        bdat_discard_ = true;
        bdat_error_ = true;
        reply("551 5.7.1 Null BDAT request");
        finish_cmd(false);
        return;
    }

    // After an earlier failure the series is refused to its end; the
    // chunk is still read, or its bytes would be taken for commands.
    if (bdat_error_) {
        bdat_discard_ = true;
        reply(fmt::format("551 5.0.0 Discarded {} bytes after earlier error",
                          *count));
        finish_cmd(false);
        if (last) {
            bdat_error_ = false;
        }
        return;
    }
    if (txn_.rcpt_count == 0) {
        // A failed BDAT ends the transaction, as in Postfix (observed).
        bool active = txn_.active;
        mail_reset();
        bdat_discard_ = true;
        bdat_error_ = !last;
        reply(active ? "554 5.5.1 Error: no valid recipients"
                     : "503 5.5.1 Error: need RCPT command");
        finish_cmd(false);
        return;
    }

    // A chunk that cannot fit is refused before it is read: the client
    // declared its size, so we need not receive it to know.
    if (cfg_.message_size_limit > 0
        && *count > cfg_.message_size_limit - txn_.bdat_octets) {
        log::warning("{}: BDAT request from {} exceeds message size limit",
                     qid_or_noqueue(), namaddr_);
        mail_reset();
        bdat_discard_ = true;
        bdat_error_ = !last;
        reply("552 5.3.4 Chunk exceeds message size limit");
        finish_cmd(false);
        return;
    }

    // The first chunk starts the content, with our Received: header.
    bdat_discard_ = false;
    if (!txn_.bdat) {
        txn_.bdat = true;
        begin_content();
    }
}

bool Session::feed_bdat()
{
    // Exactly the announced bytes, no more: the rest is commands.
    evbuffer* in = bufferevent_get_input(bev_.get());
    StreamSink sink(txn_.stream.get());
    bool progress = false;
    while (bdat_remaining_ > 0 && evbuffer_get_length(in) > 0) {
        evbuffer_iovec v;
        if (evbuffer_peek(in, -1, nullptr, &v, 1) < 1) {
            break;
        }
        size_t take =
            static_cast<size_t>(std::min<int64_t>(bdat_remaining_, v.iov_len));
        if (!bdat_discard_) {
            std::string_view bytes(static_cast<const char*>(v.iov_base), take);
            txn_.receiver->feed(bytes, sink);
            txn_.bdat_octets += static_cast<int64_t>(take);
            if (txn_.receiver->size_exceeded() && !txn_.size_warned) {
                txn_.size_warned = true;
                log::warning("{}: queue file size limit exceeded",
                             qid_or_noqueue());
            }
            resume_checkpoint(false);
        }
        evbuffer_drain(in, take);
        bdat_remaining_ -= static_cast<int64_t>(take);
        progress = true;

        if (!bdat_discard_ && txn_.stream
            && txn_.stream->pending() > CLEANUP_HIGH_WATER) {
            paused_ = true;
            std::weak_ptr<Session> weak = weak_from_this();
            txn_.stream->on_drain(
                [weak] {
                    auto s = weak.lock();
                    if (s && s->paused_ && s->mode_ != Mode::closed) {
                        s->paused_ = false;
                        s->process_input();
                    }
                },
                CLEANUP_LOW_WATER);
            return false;
        }
    }
    if (bdat_remaining_ > 0) {
        return progress;
    }

    // The chunk is complete.
    mode_ = Mode::command;
    if (bdat_discard_) {
        bdat_discard_ = false;
        return true;
    }
    if (bdat_last_) {
        StreamSink end_sink(txn_.stream.get());
        txn_.receiver->finish(end_sink);
        end_of_message(true);
        return true;
    }
    reply(fmt::format("250 2.0.0 Ok: {} bytes", txn_.bdat_octets));
    finish_cmd(true);
    return true;
}

} // namespace rs::smtpd
