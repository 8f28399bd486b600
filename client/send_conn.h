// SPDX-License-Identifier: MIT
// NAME
//   send_conn.h - one SMTP connection of resume-send
// DESCRIPTION
//   Conn owns a TCP connection (non-blocking, waited on with poll()) and,
//   after STARTTLS, its TLS session. Every read and write is bounded by
//   the per-operation timeout and by an absolute deadline, whichever
//   comes first; a timeout, EOF, reset or TLS error is an Error, which
//   the caller treats as a broken link. It counts the SMTP octets it
//   writes and reads (before TLS).
//
//   Writes to a peer that has gone away must not kill the process: the
//   plain path uses MSG_NOSIGNAL, and the program ignores SIGPIPE for
//   OpenSSL's writes.
// SEE ALSO
//   send_reply.h, RFC 3207
#pragma once

#include "client/send_reply.h"
#include "common/util/event.h"
#include "common/util/fd.h"
#include "common/util/result.h"

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace rs::send {

using Clock = std::chrono::steady_clock;

struct Server {
    std::string host;
    uint16_t port = 25;
    /// "host:port", "[v6]:port": how logs and the state key name it.
    std::string display() const;
};

class Conn {
public:
    /// Connect to the first address of `server` that answers.
    [[nodiscard]] static Result<Conn> open(const Server& server,
                                           Clock::duration timeout,
                                           Clock::time_point deadline);

    Conn(Conn&&) = default;
    Conn& operator=(Conn&&) = default;

    /// Write all of data.
    [[nodiscard]] Result<void> write(std::string_view data);
    /// One reply, all its lines.
    [[nodiscard]] Result<Reply> read_reply();
    /// The TLS handshake after a 220 to STARTTLS. Plaintext the server
    /// sent after its 220 is an injection attempt and fails the call.
    /// Certificates are not verified (opportunistic TLS).
    [[nodiscard]] Result<void> starttls(SSL_CTX* ctx, const std::string& sni);
    bool tls() const { return ssl_ != nullptr; }
    /// Protocol and cipher, after starttls().
    std::string tls_info() const;
    /// Change the deadline (e.g. a short one for QUIT).
    void set_deadline(Clock::time_point d) { deadline_ = d; }

    uint64_t octets_out() const { return out_; }
    uint64_t octets_in() const { return in_; }

private:
    Conn() = default;
    [[nodiscard]] Result<void> wait(short events);
    [[nodiscard]] Result<std::string> read_line();
    [[nodiscard]] Result<size_t> fill();

    Fd fd_;
    SslPtr ssl_;
    std::string buf_;
    Clock::duration timeout_{};
    Clock::time_point deadline_{};
    uint64_t out_ = 0;
    uint64_t in_ = 0;
    ReplyReader reader_;
};

/// A client SSL_CTX for opportunistic TLS: TLS 1.2 or later, no
/// certificate verification.
[[nodiscard]] Result<SslCtxPtr> client_tls_context();

} // namespace rs::send
