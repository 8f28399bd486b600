// SPDX-License-Identifier: MIT
// NAME
//   session.h - one SMTP session: the smtpd(8) state machine
// DESCRIPTION
//   A Session owns one client connection on the process's event loop. It
//   greets, reads commands a line at a time (line_length_limit), answers
//   them as Postfix 3.7's smtpd does, hands mail to cleanup(8) through a
//   CleanupStream opened at the first accepted RCPT, and logs Postfix's
//   session lines (connect, QID: client=, NOQUEUE: reject:, lost
//   connection / timeout after, disconnect ... commands=).
//
//   Settings are read from the Config once per process (settings_from);
//   sessions share them read-only.
// OWNERSHIP
//   Session::start() creates a session that keeps itself alive until the
//   connection ends; then it calls `env.done` exactly once and frees
//   itself from the loop. Callbacks from other parts hold a weak_ptr.
// THREADS
//   All on the one event loop of the process.
// BUGS
//   The client name lookup blocks the loop (peer.h). No SASL (AUTH gets
//   503), no XCLIENT/XFORWARD (550), no smtpd_etrn_restrictions, only plain
//   domain entries in fast_flush_domains (a type:table entry never matches),
//   no Milters, no free-space check at MAIL, no policy or access maps
//   beyond relay control and the unknown-recipient check. A change of a
//   recipient table does not restart the process (RecipientMaps::changed()
//   is not consulted yet). ETRN's reply when flush(8) fails or refuses
//   (458, 459) is not yet checked against Postfix.
//   smtpd_discard_ehlo_keywords hides keywords but does not strip the
//   enhanced status codes when ENHANCEDSTATUSCODES is hidden.
// COMPATIBILITY
//   Deliberate differences from Postfix 3.7, for safety: a refused SIZE
//   is not remembered for later MAIL commands, and a BDAT chunk refused
//   for want of TLS is still read, never taken for commands.
// SEE ALSO
//   chat.h, peer.h, cleanup-bridge/cleanup.h, smtpd/relay.h, smtpd/data.h.
#pragma once

#include "cleanup-bridge/cleanup.h"
#include "common/mail/config.h"
#include "common/mail/master.h"
#include "common/util/event.h"
#include "common/util/fd.h"
#include "resumedb/limits.h"
#include "resumedb/spool.h"
#include "smtpd/address.h"
#include "smtpd/chat.h"
#include "smtpd/data.h"
#include "smtpd/rcpt_maps.h"
#include "smtpd/relay.h"
#include "smtpd/rewrite.h"
#include "smtpd/tls.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

namespace rs::smtpd {

/// Everything a session needs from main.cf, evaluated once.
struct SessionSettings {
    std::string myhostname = "localhost";
    std::string banner = "localhost ESMTP";
    std::string mail_name = "Postfix";
    size_t line_length_limit = 2048;
    int timeout = 300;          ///< smtpd_timeout, seconds
    int starttls_timeout = 300; ///< smtpd_starttls_timeout
    bool per_request_deadline = false;
    int64_t min_data_rate = 500;
    int soft_error_limit = 10;
    int hard_error_limit = 20;
    int junk_command_limit = 100;
    int error_sleep_ms = 1000;
    int64_t message_size_limit = 10240000;
    int recipient_limit = 1000;
    int recipient_overshoot_limit = 1000;
    bool disable_vrfy = false;
    bool soft_bounce = false;
    bool smtputf8_enable = true;
    bool delay_open = true; ///< smtpd_delay_open_until_valid_rcpt
    bool port_logging = false;
    bool strict_rfc821 = false;
    std::vector<std::string> discard_ehlo; ///< lower case
    std::string tls_level;                 ///< "", none, may, encrypt
    bool tls_received_header = false;
    std::string cleanup_socket = "public/cleanup";
    unsigned cleanup_flags = 178;
    std::string content_filter;
    std::vector<std::string> fast_flush_domains; ///< for ETRN
    BareNewline bare_newline = BareNewline::allow;
    /// smtpd_forbid_bare_newline_exclusions: these clients get allow.
    std::shared_ptr<NetworkList> bare_newline_exclusions;
    int bare_lf_code = 550;
    /// smtpd_forbidden_commands: plain verbs, and regexp:{{/re/ ...}}.
    std::vector<std::string> forbidden_verbs = {"connect", "get", "post"};
    std::vector<std::regex> forbidden_patterns;
    /// local_header_rewrite_clients.
    bool rewrite_all = false;
    bool rewrite_mynetworks = false;
    bool rewrite_inet_interfaces = false;
    std::vector<std::string> inet_addresses; ///< numeric
    bool inet_all = false;                   ///< inet_interfaces = all
    // XRESUME (smtpd_resume_*); offered only when SessionEnv has a spool.
    bool resume_enable = true;
    std::shared_ptr<NetworkList> resume_clients; ///< nullptr: everyone
    int64_t resume_ttl = 300;
    int64_t resume_max_size = 0; ///< MAXSIZE; 0: none beyond SIZE
    /// smtpd_resume_bind_client: address, network (/24, /64) or none.
    resumedb::BindClient resume_bind = resumedb::BindClient::network;
};

/// Read the settings from `config`; warns about what is not supported
/// (smtpd_milters, unknown local_header_rewrite_clients entries).
SessionSettings settings_from(mail::Config& config);

/// The process-wide things sessions use.
struct SessionEnv {
    event_base* base = nullptr;
    const SessionSettings* settings = nullptr;
    TlsServer* tls = nullptr;      ///< nullptr: no STARTTLS
    RelayChecker* relay = nullptr; ///< nullptr: every RCPT is refused
    /// trivial-rewrite, for the address syntax check of MAIL, RCPT and
    /// VRFY; nullptr: addresses are not resolved.
    RewriteClient* rewrite = nullptr;
    /// The unknown-recipient check; nullptr: not made.
    RecipientMaps* rcpt_maps = nullptr;
    /// The resume spool; nullptr: XRESUME is not offered.
    resumedb::Spool* spool = nullptr;
    std::function<void()> done; ///< called once when a session ends
};

class Session : public std::enable_shared_from_this<Session> {
public:
    /// Start serving `fd` (for -S, stdin; output then goes to stdout).
    static void start(SessionEnv env, Fd fd, mail::ConnInfo info);

    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    /// For unit tests: give the client name instead of looking it up.
    static void set_lookup_override(std::function<std::string()> f);

    // Everything below is the implementation, split over the smtpd_*.cc
    // command files; it is public only so those files can share it.

    /// One open mail transaction (MAIL ... end of message or RSET).
    struct Txn {
        bool active = false; ///< MAIL accepted
        std::string sender;  ///< internal form
        std::string sender_ext;
        int64_t declared_size = 0;
        std::string encoding;
        std::string envid;
        int ret_flags = 0;
        bool smtputf8 = false;
        long arrival_sec = 0, arrival_usec = 0;
        int rcpt_count = 0;
        int rcpt_overshoot = 0;
        std::string first_rcpt_ext;
        std::unique_ptr<cleanup::CleanupStream> stream;
        std::string queue_id;
        bool stream_failed = false;
        // DATA/BDAT content.
        std::unique_ptr<DataReceiver> receiver;
        bool content_started = false;
        bool size_warned = false;
        bool bdat = false;       ///< at least one BDAT chunk accepted
        int64_t bdat_octets = 0; ///< raw chunk bytes so far
        // XRESUME (smtpd_resume.cc).
        std::vector<std::string> rcpt_binding;   ///< accepted, in order
        std::unique_ptr<resumedb::Entry> resume; ///< owned spool entry
        std::unique_ptr<OctetTap> resume_tap;
        std::string resume_buf;      ///< octets not yet appended
        size_t resume_buf_lines = 0; ///< resume_buf's last line end
        std::string resume_token;    ///< the token of `resume`
        std::string resume_hash;     ///< short_hash(token), for logs
        int64_t resume_prefix = 0;   ///< stored octets to replay
        int64_t replay_pos = 0;      ///< replayed so far
        bool replay_failed = false;  ///< the prefix could not be read
    };

    enum class Mode { command, data, bdat_chunk, closing, closed };

    Session(SessionEnv env, Fd fd, mail::ConnInfo info);
    void begin();

    // Input and output.
    void on_read();
    void on_write();
    void on_event(short what);
    void process_input();
    bool read_line(std::string& line);
    void dispatch(std::string line);
    void reply(std::string text);
    void flush_delayed();
    void finish_cmd(bool ok);
    void close_after_reply();
    void end_session();
    void linger();
    void pause_reading(bool pause);
    void arm_timeouts();
    void restart_deadline();
    void arm_deadline();
    void lost(const char* reason);
    std::string pending_input(size_t max);
    bufferevent* out() const;
    void send_out(const std::string& text);
    void flush_batch();

    // Commands (smtpd_helo.cc, smtpd_mail.cc, smtpd_data.cc,
    // smtpd_misc.cc, smtpd_tls_cmd.cc).
    void helo_cmd(const std::vector<std::string>& argv, bool esmtp);
    void mail_cmd(const std::string& args);
    void rcpt_cmd(const std::string& args);
    void check_address(std::string_view verb, const ParseResult& parsed,
                       const std::string& sender,
                       std::function<void(const Resolved&)> then);
    void mail_params(const PathArg& arg);
    void rcpt_params(const PathArg& arg, const Resolved& resolved);
    void
    unknown_rcpt_check(const std::string& rcpt, const Resolved& resolved,
                       std::function<void(std::optional<std::string>)> done);
    void rcpt_accepted(const cleanup::Recipient& r, const std::string& ext);
    void rcpt_rejected(const std::string& reply, const std::string& ext);
    void data_cmd(const std::string& args);
    void bdat_cmd(const std::vector<std::string>& argv);
    bool feed_data();
    bool feed_bdat();
    void resume();
    void open_stream(std::function<void()> then);
    void begin_content();
    void end_of_message(bool bdat);
    void message_done(const cleanup::Status& st, bool bdat);
    void rset_cmd(const std::vector<std::string>& argv);
    void noop_cmd();
    void vrfy_cmd(const std::vector<std::string>& argv);
    void etrn_cmd(const std::vector<std::string>& argv);
    void quit_cmd();
    void xresume_cmd(const std::vector<std::string>& argv,
                     const std::string& line);
    void starttls_cmd(const std::vector<std::string>& argv);
    void unknown_cmd(bool empty);
    void tls_ready();
    bool forbidden(const std::string& verb) const;
    void mail_reset();
    bool need_tls() const;

    // XRESUME (smtpd_resume.cc).
    bool resume_offered() const;
    std::string resume_binding() const;
    std::string resume_client_key() const;
    void resume_new(const std::string& why);
    void resume_claim(const std::string& token, int tries);
    void resume_abort(const std::string& token, int tries);
    bool retry_later(std::function<void(Session&)> step);
    void resume_own(std::unique_ptr<resumedb::Entry> entry,
                    const std::string& token);
    void resume_watch();
    void resume_store(std::string_view bytes, bool line_end);
    void resume_flush();
    void resume_drop(const char* why);
    void resume_checkpoint(bool force);
    void resume_commit(bool force);
    void resume_take_buffered();
    void resume_save();
    void resume_verdict(const std::string& reply);
    void start_replay();
    void replay_step();

    // Helpers for log lines and the envelope.
    std::string proto_name() const;
    std::string log_reject(const std::string& where, const std::string& text,
                           bool with_rcpt, const std::string& rcpt_ext);
    cleanup::Envelope make_envelope() const;
    std::string rewrite_context() const;
    std::string qid_or_noqueue() const;
    BareNewline bare_newline_mode() const;

    SessionEnv env_;
    const SessionSettings& cfg_;
    mail::ConnInfo info_;
    Fd fd_;
    BuffereventPtr bev_;     ///< input (and output, unless stdio)
    BuffereventPtr out_bev_; ///< stdio mode: stdout
    EventPtr sleep_timer_;
    EventPtr deadline_timer_;
    EventPtr flush_timer_;
    EventPtr linger_timer_;
    EventPtr resume_timer_; ///< takeover poll, or a claim's retry
    std::chrono::steady_clock::time_point deadline_{};
    size_t input_left_ = 0; ///< input bytes left after the last pass
    int flush_checks_ = 0;
    std::shared_ptr<Session> self_;

    std::string name_ = "unknown", reverse_name_ = "unknown";
    std::string addr_, rfc_addr_, namaddr_;
    std::string helo_;
    bool esmtp_ = false;
    bool tls_active_ = false;
    SSL* ssl_ = nullptr; ///< owned by the TLS bufferevent
    Mode mode_ = Mode::command;
    std::string where_ = "CONNECT";
    CommandCounters counters_;
    int cmd_slot_ = -1;
    bool busy_ = false;       ///< a command is waiting for its answer
    bool sleeping_ = false;   ///< the error sleep holds replies
    bool in_process_ = false; ///< process_input() is on the stack
    bool paused_ = false;     ///< reading stopped: cleanup is behind
    bool replaying_ = false;  ///< reading stopped: a prefix is replayed
    bool out_paused_ = false; ///< reading stopped: client reads no replies
    bool skip_to_lf_ = false; ///< rest of an over-long line is dropped
    bool pipelining_logged_ = false;
    bool done_called_ = false;
    bool lingering_ = false; ///< our side is shut; input is dropped
    int error_count_ = 0;
    int junk_count_ = 0;
    std::string delayed_; ///< replies held by the error sleep
    std::string batch_;   ///< replies of one pass of process_input()
    int64_t bdat_remaining_ = 0;
    bool bdat_last_ = false;
    bool bdat_discard_ = false; ///< chunk is read and thrown away
    bool bdat_error_ = false;   ///< an earlier BDAT failed: until LAST
    Txn txn_;
    std::string parsed_args_; ///< MAIL/RCPT/VRFY text being checked
};

} // namespace rs::smtpd
