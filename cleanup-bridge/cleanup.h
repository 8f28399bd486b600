// SPDX-License-Identifier: MIT
// NAME
//   cleanup.h - hand a message to Postfix's cleanup(8), as smtpd(8) does
// DESCRIPTION
//   One CleanupStream carries one message over one connection to
//   public/$cleanup_service_name (relative to the working directory, the
//   queue directory). The conversation, all non-blocking on the session's
//   event loop:
//     1. open(): connect; cleanup speaks first with its protocol name and
//        the queue id; the ready callback gets the queue id.
//     2. envelope(): the flags word then T, A log_ident, A rewrite_context,
//        SASL, DSN envelope, S, A encoding, log_* and client_* attributes,
//        in Postfix 3.7's order.
//     3. recipient(): A notify_flags, A dsn_orig_rcpt, R, flushed.
//     4. begin_content(): f (hold/discard) if any, M, then the Received:
//        header lines as N records.
//     5. content(): one record per call (N for a whole line, L for a
//        fragment); the caller splits lines at line_length_limit.
//     6. finish(): X, f again if set, E; the done callback gets cleanup's
//        status and reason.
//   Destroying the stream (or abort()) before finish() closes the socket
//   without E: cleanup then drops the queue file. libevent closes the
//   socket of a freed bufferevent from the loop, so the close happens at
//   the loop's next turn; destroy the stream before its event_base.
//
//   Backpressure: pending() is what has not reached the socket yet; a
//   receiver stops reading its client above a high-water mark and resumes
//   from the drain callback.
//
//   The flags word goes out as given: without Milter support the caller
//   must clear FLAG_MILTER, as Postfix's smtpd does when it has none.
//   Writes go through libevent to a socket whose peer may vanish: the
//   process must ignore SIGPIPE (smtpd does at start-up).
// ERRORS
//   Every failure (connect, handshake, write, lost connection, bad reply)
//   reaches the callback as an Error; a write error after open surfaces at
//   the latest in finish().
#pragma once

#include "common/util/result.h"
#include <event2/event.h>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rs::cleanup {

/// Bits of the flags word smtpd sends (cleanup_user.h values).
inline constexpr unsigned FLAG_FILTER = 2;
inline constexpr unsigned FLAG_HOLD = 4;
inline constexpr unsigned FLAG_DISCARD = 8;
inline constexpr unsigned FLAG_BCC_OK = 16;
inline constexpr unsigned FLAG_MAP_OK = 32;
inline constexpr unsigned FLAG_MILTER = 64;
inline constexpr unsigned FLAG_SMTP_REPLY = 128;
inline constexpr unsigned FLAG_SMTPUTF8 = 256;
inline constexpr unsigned FLAG_AUTOUTF8 = 512;

/// Status bits of cleanup's final reply.
inline constexpr unsigned STAT_BAD = 1;
inline constexpr unsigned STAT_WRITE = 2;
inline constexpr unsigned STAT_SIZE = 4;
inline constexpr unsigned STAT_CONT = 8;
inline constexpr unsigned STAT_HOPS = 16;
inline constexpr unsigned STAT_RCPT = 64;
inline constexpr unsigned STAT_PROXY = 128;
inline constexpr unsigned STAT_DEFER = 256;
inline constexpr unsigned STAT_NOPERM = 512;
inline constexpr unsigned STAT_BARE_LF = 1u << 16; // smtpd-internal

/// What smtpd knows when the stream is opened. Empty strings are left
/// out where Postfix leaves them out; "unknown" is for the caller to set.
struct Envelope {
    unsigned flags = 0;   ///< the flags word
    long arrival_sec = 0; ///< gettimeofday() at MAIL FROM
    long arrival_usec = 0;
    std::string content_filter;  ///< L record when non-empty
    std::string log_ident;       ///< XFORWARD IDENT; empty = the queue id
    std::string rewrite_context; ///< "local" or "remote"
    std::string sasl_method, sasl_username, sasl_sender;
    std::string envelope_id; ///< ENVID, xtext-decoded
    int ret_flags = 0;       ///< 1 FULL, 2 HDRS, 0 none
    std::string sender;      ///< internal form, "" for <>
    std::string encoding;    ///< "", "7bit" or "8bit"
    std::string log_client_name, log_client_address, log_client_port;
    std::string log_message_origin, log_helo_name, log_protocol_name;
    std::string client_name, reverse_client_name, client_address;
    std::string client_port, server_address, server_port, helo_name;
    std::string protocol_name;
    int client_address_type = 0; ///< AF_INET, AF_INET6, 0
};

struct Recipient {
    std::string address; ///< internal form
    int notify_flags =
        0;             ///< 0 = not given; NEVER 1 SUCCESS 2 FAILURE 4 DELAY 8
    std::string orcpt; ///< "type;address", always set by the caller
};

struct Status {
    unsigned status = 0;
    std::string reason;
};

/// Knobs of one stream; the defaults are Postfix 3.7's.
struct Options {
    int ipc_timeout = 3600;     ///< seconds for any one read or write wait
    int connect_attempts = 11;  ///< mail_connect_wait(): 1 + 10 retries
    int connect_delay = 10;     ///< seconds between connect attempts
    size_t reply_limit = 16384; ///< bytes of cleanup's handshake or reply
};

/// Access-map results that go after X at the end of the message (2.9):
/// FILTER as L, REDIRECT as >, each BCC as R then A notify_flags=1.
struct Extracted {
    std::string filter;           ///< "transport:nexthop", or empty
    std::string redirect;         ///< address, or empty
    std::vector<std::string> bcc; ///< addresses, internal form
};

class CleanupStream {
public:
    using ReadyCb = std::function<void(Result<std::string> queue_id)>;
    using DoneCb = std::function<void(Result<Status>)>;

    /// Connect to `socket_path`; `ready` is called once, from the loop.
    static std::unique_ptr<CleanupStream>
    open(event_base* base, const std::string& socket_path, ReadyCb ready);
    /// The same with explicit timeouts and limits. Never returns null:
    /// every failure, even an immediate one, reaches `ready` from the loop.
    static std::unique_ptr<CleanupStream> open(event_base* base,
                                               const std::string& socket_path,
                                               ReadyCb ready,
                                               const Options& options);

    virtual ~CleanupStream() = default;

    virtual const std::string& queue_id() const = 0;
    virtual void envelope(const Envelope& env) = 0;
    virtual void recipient(const Recipient& rcpt) = 0;
    /// `extra_flags` is HOLD|DISCARD or 0; `received` one line per element,
    /// without line ends.
    virtual void begin_content(unsigned extra_flags,
                               const std::vector<std::string>& received) = 0;
    /// One content record: 'N' (complete line) or 'L' (fragment).
    virtual void content(char type, std::string_view data) = 0;
    virtual void finish(unsigned extra_flags, DoneCb done) = 0;
    /// Close without E; cleanup discards the message.
    virtual void abort() = 0;

    virtual size_t pending() const = 0;
    /// `cb` is called whenever the unsent bytes fall to `low_water` or
    /// below after a write, and once when the stream fails (so a paused
    /// receiver resumes and meets the error in finish()).
    virtual void on_drain(std::function<void()> cb, size_t low_water) = 0;

    /// Records for finish() to send after X; call before finish().
    virtual void set_extracted(Extracted x) { extracted_ = std::move(x); }

protected:
    Extracted extracted_;
};

/// The SMTP reply smtpd gives for cleanup's final status, as Postfix 3.7
/// does (common_post_message_handling): "250 2.0.0 Ok: queued as ID",
/// for BDAT "250 2.0.0 Ok: N bytes queued as ID", else 451/550/552/554.
/// `bare_lf_code` is smtpd_forbid_bare_newline_reject_code.
std::string reply_for_status(const Status& st, const std::string& queue_id,
                             bool bdat, long long size,
                             const std::string& myhostname, int bare_lf_code);

/// The Received: header smtpd prepends, one element per physical line
/// (continuations start with TAB). `date` is mail_date() text, made by
/// mail_date() below.
struct ReceivedInfo {
    std::string helo; ///< HELO/EHLO argument, or the client name
    std::string client_name;
    std::string client_rfc_addr; ///< with "IPv6:" for IPv6
    std::string myhostname, mail_name;
    std::string protocol; ///< SMTP, ESMTP, ESMTPS, ESMTPSA, UTF8SMTP...
    std::string queue_id; ///< empty: no "id" part
    std::vector<std::string> tls_lines; ///< already formatted, with TAB
    std::string single_recipient; ///< quoted external form when exactly one
    std::string date;
    /// SASL username for "(Authenticated sender: ...)", set only when
    /// smtpd_sasl_authenticated_header=yes and the client authenticated.
    std::string authenticated_sender;
};
std::vector<std::string> received_header(const ReceivedInfo& info);

/// RFC 2822 date as Postfix writes it: "Thu,  3 Dec 2026 20:32:14 +0000 (UTC)".
std::string mail_date(long when);

} // namespace rs::cleanup
