// SPDX-License-Identifier: MIT
// NAME
//   send_conn.cc - the connection: connect, lines, replies, STARTTLS
// SEE ALSO
//   send_conn.h
#include "client/send_conn.h"

#include "common/util/text.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <poll.h>
#include <sys/socket.h>

namespace rs::send {

std::string Server::display() const
{
    if (host.find(':') != std::string::npos) {
        return "[" + host + "]:" + std::to_string(port);
    }
    return host + ":" + std::to_string(port);
}

static std::string errtext(int e)
{
    return std::strerror(e);
}

// The last OpenSSL error as text, and the queue cleared for the next call.
static std::string ssl_errtext()
{
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    errno = 0;
    if (e == 0) {
        return "TLS error";
    }
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

Result<void> Conn::wait(short events)
{
    // Bounded by both the per-operation timeout and the overall deadline.
    auto now = Clock::now();
    auto until = std::min(now + timeout_, deadline_);
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            until - Clock::now());
        if (left.count() <= 0) {
            return fail("timeout", ETIMEDOUT);
        }
        pollfd p{fd_.get(), events, 0};
        int n = ::poll(
            &p, 1,
            static_cast<int>(std::min<int64_t>(left.count(), INT32_MAX)));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return fail("poll: " + errtext(errno), errno);
        }
        if (n > 0) {
            return {};
        }
    }
}

Result<Conn> Conn::open(const Server& server, Clock::duration timeout,
                        Clock::time_point deadline)
{
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
    addrinfo* res = nullptr;
    std::string port = std::to_string(server.port);
    int rc = ::getaddrinfo(server.host.c_str(), port.c_str(), &hints, &res);
    if (rc != 0) {
        // EAI_NONAME: the name does not exist (a configuration error,
        // code ENOENT); anything else may pass (EAGAIN).
        int code = rc == EAI_NONAME ? ENOENT : EAGAIN;
        return fail("resolve " + server.host + ": " + ::gai_strerror(rc), code);
    }
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list(res,
                                                              ::freeaddrinfo);

    std::string last = "no address";
    int last_code = EHOSTUNREACH;
    for (auto* ai = res; ai != nullptr; ai = ai->ai_next) {
        Conn c;
        c.timeout_ = timeout;
        c.deadline_ = deadline;
        c.fd_.reset(::socket(ai->ai_family,
                             ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                             ai->ai_protocol));
        if (!c.fd_) {
            last = "socket: " + errtext(errno);
            last_code = errno;
            continue;
        }
        if (::connect(c.fd_.get(), ai->ai_addr, ai->ai_addrlen) < 0
            && errno != EINPROGRESS) {
            last = "connect: " + errtext(errno);
            last_code = errno;
            continue;
        }
        if (auto w = c.wait(POLLOUT); !w) {
            last = "connect: " + w.error().text;
            last_code = w.error().code;
            continue;
        }
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(c.fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
            err = errno;
        }
        if (err != 0) {
            last = "connect: " + errtext(err);
            last_code = err;
            continue;
        }
        int one = 1;
        (void)::setsockopt(c.fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one,
                           sizeof one);
        return c;
    }
    return fail("connect to " + server.display() + ": " + last, last_code);
}

Result<void> Conn::write(std::string_view data)
{
    while (!data.empty()) {
        ssize_t n;
        if (ssl_) {
            ERR_clear_error();
            errno = 0;
            int chunk =
                static_cast<int>(std::min<size_t>(data.size(), 1 << 20));
            int r = SSL_write(ssl_.get(), data.data(), chunk);
            if (r <= 0) {
                int e = SSL_get_error(ssl_.get(), r);
                if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                    auto w = wait(e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN);
                    if (!w) {
                        return w;
                    }
                    continue;
                }
                if (e == SSL_ERROR_SYSCALL && errno != 0) {
                    return fail("write: " + errtext(errno), errno);
                }
                return fail("TLS write: " + ssl_errtext(), EPROTO);
            }
            n = r;
        } else {
            n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    if (auto w = wait(POLLOUT); !w) {
                        return w;
                    }
                    continue;
                }
                return fail("write: " + errtext(errno), errno);
            }
        }
        out_ += static_cast<uint64_t>(n);
        data.remove_prefix(static_cast<size_t>(n));
    }
    return {};
}

Result<size_t> Conn::fill()
{
    char tmp[16384];
    for (;;) {
        ssize_t n;
        if (ssl_) {
            ERR_clear_error();
            errno = 0;
            int r = SSL_read(ssl_.get(), tmp, sizeof tmp);
            if (r <= 0) {
                int e = SSL_get_error(ssl_.get(), r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                    auto w = wait(e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN);
                    if (!w) {
                        return tl::unexpected(w.error());
                    }
                    continue;
                }
                if (e == SSL_ERROR_ZERO_RETURN
                    || (e == SSL_ERROR_SYSCALL && errno == 0)) {
                    return fail("connection closed by server", 0);
                }
                if (e == SSL_ERROR_SYSCALL) {
                    return fail("read: " + errtext(errno), errno);
                }
                return fail("TLS read: " + ssl_errtext(), EPROTO);
            }
            n = r;
        } else {
            n = ::recv(fd_.get(), tmp, sizeof tmp, 0);
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    if (auto w = wait(POLLIN); !w) {
                        return tl::unexpected(w.error());
                    }
                    continue;
                }
                return fail("read: " + errtext(errno), errno);
            }
            if (n == 0) {
                return fail("connection closed by server", 0);
            }
        }
        buf_.append(tmp, static_cast<size_t>(n));
        in_ += static_cast<uint64_t>(n);
        return static_cast<size_t>(n);
    }
}

Result<std::string> Conn::read_line()
{
    for (;;) {
        auto lf = buf_.find('\n');
        if (lf != std::string::npos) {
            std::string line = buf_.substr(0, lf);
            buf_.erase(0, lf + 1);
            if (!line.empty() && line.back() == '\r') {
                line.pop_back();
            }
            return line;
        }
        if (buf_.size() > kMaxReplyLine) {
            return fail("reply line too long", EPROTO);
        }
        if (auto f = fill(); !f) {
            return tl::unexpected(f.error());
        }
    }
}

Result<Reply> Conn::read_reply()
{
    for (;;) {
        auto line = read_line();
        if (!line) {
            return tl::unexpected(line.error());
        }
        auto r = reader_.feed(*line);
        if (!r) {
            return fail(r.error().text, EPROTO);
        }
        if (*r) {
            return std::move(**r);
        }
    }
}

Result<void> Conn::starttls(SSL_CTX* ctx, const std::string& sni)
{
    if (!buf_.empty()) {
        return fail("server sent data after its reply to STARTTLS", EPROTO);
    }
    ssl_.reset(SSL_new(ctx));
    if (!ssl_) {
        return fail("SSL_new: " + ssl_errtext(), EPROTO);
    }
    if (SSL_set_fd(ssl_.get(), fd_.get()) != 1) {
        return fail("SSL_set_fd: " + ssl_errtext(), EPROTO);
    }
    if (!sni.empty()) {
        SSL_set_tlsext_host_name(ssl_.get(), sni.c_str());
    }
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int r = SSL_connect(ssl_.get());
        if (r == 1) {
            return {};
        }
        int e = SSL_get_error(ssl_.get(), r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            if (auto w = wait(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT);
                !w) {
                return w;
            }
            continue;
        }
        std::string why = e == SSL_ERROR_SYSCALL && errno != 0 ? errtext(errno)
                                                               : ssl_errtext();
        return fail("TLS handshake: " + why, EPROTO);
    }
}

std::string Conn::tls_info() const
{
    if (!ssl_) {
        return "";
    }
    return std::string(SSL_get_version(ssl_.get())) + " "
           + SSL_get_cipher_name(ssl_.get());
}

Result<SslCtxPtr> client_tls_context()
{
    SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx) {
        return fail("SSL_CTX_new: " + ssl_errtext(), EPROTO);
    }
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
    return ctx;
}

} // namespace rs::send
