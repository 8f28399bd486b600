// SPDX-License-Identifier: MIT
// NAME
//   event.h - owning handles for libevent and OpenSSL objects
// DESCRIPTION
//   unique_ptr types with the matching free function, so that every
//   event_base, event, bufferevent, evbuffer, SSL and SSL_CTX has exactly
//   one owner. Note: bufferevent_openssl_*_new with BEV_OPT_CLOSE_ON_FREE
//   takes the SSL even when it fails; release() the SSL before the call.
//
//   write_now() puts bytes on a plain socket at once when its
//   bufferevent has nothing queued, and queues only what the socket did
//   not take: a short reply then costs one send() instead of a round of
//   epoll changes, a wake-up and a writev().
#pragma once

#include <cerrno>
#include <cstddef>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <memory>
#include <openssl/ssl.h>

namespace rs {

struct EventBaseFree {
    void operator()(event_base* p) const { event_base_free(p); }
};
struct EventFree {
    void operator()(event* p) const { event_free(p); }
};
struct BuffereventFree {
    void operator()(bufferevent* p) const { bufferevent_free(p); }
};
struct EvbufferFree {
    void operator()(evbuffer* p) const { evbuffer_free(p); }
};
struct SslFree {
    void operator()(SSL* p) const { SSL_free(p); }
};
struct SslCtxFree {
    void operator()(SSL_CTX* p) const { SSL_CTX_free(p); }
};

using EventBasePtr = std::unique_ptr<event_base, EventBaseFree>;
using EventPtr = std::unique_ptr<event, EventFree>;
using BuffereventPtr = std::unique_ptr<bufferevent, BuffereventFree>;
using EvbufferPtr = std::unique_ptr<evbuffer, EvbufferFree>;
using SslPtr = std::unique_ptr<SSL, SslFree>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;

// Write to the socket under a plain (not TLS, not filtered) socket
// bufferevent, keeping the order of what is already queued: when the
// output buffer is empty the bytes go straight to the kernel and only the
// rest is queued; otherwise everything is queued behind the earlier
// bytes. Errors are left to libevent, which meets them on its own write
// and reports them through the event callback as usual. Returns what
// bufferevent_write() would: 0, or -1 when queueing failed.
inline int write_now(bufferevent* bev, const char* data, size_t len)
{
    evbuffer* out = bufferevent_get_output(bev);
    int fd = bufferevent_getfd(bev);
    if (len != 0 && fd >= 0 && evbuffer_get_length(out) == 0
        && (bufferevent_get_enabled(bev) & EV_WRITE) != 0) {
        ssize_t n;
        do {
            n = ::send(fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        } while (n < 0 && errno == EINTR);
        if (n > 0) {
            data += n;
            len -= static_cast<size_t>(n);
        }
    }
    return len == 0 ? 0 : bufferevent_write(bev, data, len);
}

} // namespace rs
