// SPDX-License-Identifier: MIT
// NAME
//   send_session.h - one message to one server, across broken links
// DESCRIPTION
//   Sender delivers a spooled message to one server and goes on until
//   the server has taken it, refused it for good, or --give-up passes.
//   Each attempt is a new connection: greeting, EHLO, STARTTLS when
//   offered (and wanted), EHLO again, MAIL, every RCPT, then, when the
//   server offers XRESUME, "XRESUME NEW" (pipelined with MAIL and RCPT)
//   or "XRESUME <token>" (alone, last), and the data from the offset the
//   server reports, with DATA or BDAT.
//
//   A break (EOF, reset, timeout, TLS error) before the final reply
//   makes it reconnect: at once when the connection moved the transfer
//   on, otherwise after a back-off that doubles up to a cap. With a
//   token, the next attempt resumes; without XRESUME it starts over from
//   octet 0, as any SMTP client. A 4xx reply is retried the same way; a
//   5xx ends the run. Any recipient refused for good ends the run before
//   data is sent.
//
//   Everything the caller reports is in Stats; the log callback receives
//   the dialogue (tokens replaced by a short hash) when verbose.
// SEE ALSO
//   send_options.h, send_xresume.h, send_state.h, resume-protocol.md
#pragma once

#include "client/send_conn.h"
#include "client/send_ehlo.h"
#include "client/send_exit.h"
#include "client/send_message.h"
#include "client/send_options.h"
#include "client/send_state.h"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace rs::send {

struct Stats {
    Outcome outcome = Outcome::TempFail;
    uint64_t message_octets = 0;
    /// SMTP octets written, all connections, protocol included (before
    /// TLS).
    uint64_t wire_octets = 0;
    /// Message octets written (repeats after breaks counted again).
    uint64_t data_octets = 0;
    /// Message octets the server acknowledged: an XRESUME offset, a BDAT
    /// chunk's 250, or all of them at the end.
    uint64_t acked = 0;
    /// Message octets sent so far in the current attempt, from octet 0.
    uint64_t position = 0;
    int connections = 0;
    /// Attempts that continued from an offset > 0, or learned DONE.
    int resumes = 0;
    std::vector<uint64_t> resume_offsets;
    bool xresume_offered = false;
    bool tls = false;
    std::string queue_id;
    /// The reply or local reason that decided the outcome, starting with
    /// an RFC 3463 code (what pipe(8) puts in a bounce).
    std::string reason;
    double seconds = 0;
};

class Sender {
public:
    using LogFn = std::function<void(const std::string&)>;
    using ProgressFn = std::function<void(const Stats&)>;

    /// The options are copied; the spool must outlive the Sender.
    Sender(Options opts, const Spool& spool);

    /// Verbose dialogue lines (without a newline).
    void set_log(LogFn f) { log_ = std::move(f); }
    /// Called now and then while data goes out.
    void set_progress(ProgressFn f) { progress_ = std::move(f); }

    /// Deliver; the outcome is also in stats().outcome.
    Outcome run();
    const Stats& stats() const { return stats_; }

private:
    enum class Next { Final, Retry };
    struct Step {
        Next next;
        bool progressed = false;
    };

    Step attempt(SSL_CTX* tls_ctx);
    Step converse(Conn& c, SSL_CTX* tls_ctx);
    Step final_outcome(Outcome o, std::string reason);
    Step retry(std::string reason, bool progressed = false);
    Step broke(const Error& e, const char* stage, bool progressed = false);
    Step refused(const Reply& r, const char* stage, bool to_rcpt = false);

    [[nodiscard]] Result<void> send(Conn& c, const std::string& cmd);
    [[nodiscard]] Result<Reply> reply(Conn& c);
    void quit(Conn& c);
    /// After the envelope: XRESUME, and offset_ set. A Step when the
    /// attempt ends there (DONE, a verdict, a break).
    std::optional<Step> negotiate_resume(Conn& c, std::optional<Reply> r);
    Step send_data(Conn& c);
    Step send_bdat(Conn& c);
    Step finish(Conn& c, const Reply& r, const char* stage);
    void save_token();
    void forget_token();
    void note_progress(bool force = false);

    const Options opts_;
    const Spool& spool_;
    LogFn log_;
    ProgressFn progress_;
    Stats stats_;
    Clock::time_point start_;
    Clock::time_point deadline_;
    Clock::time_point last_progress_{};

    /// The server's token for this message, or empty.
    std::string token_;
    /// Where data starts in the current attempt.
    uint64_t offset_ = 0;
    /// Set when the server told us not to use XRESUME (502 and the like).
    bool resume_off_ = false;
    /// Set when a STARTTLS handshake failed at level may: go plain.
    bool tls_failed_ = false;
    bool token_tls_ = false; ///< token_ was given in a TLS session
    std::optional<StateFile> state_;
    /// Octets written by finished connections, and the current one.
    uint64_t wire_done_ = 0;
    const Conn* cur_ = nullptr;
};

/// A reply or reason line for stderr: it starts with the enhanced code
/// (or one made from the reply's class) so pipe(8) takes it as the DSN
/// status.
std::string dsn_text(const Reply& r, const std::string& server,
                     const char* stage);

/// The queue id from "250 2.0.0 Ok: queued as 4XyzAbc", or empty.
std::string queue_id_of(const Reply& r);

/// A line of a dialogue with any XRESUME token replaced by its tag.
std::string redact_tokens(const std::string& line);

} // namespace rs::send
