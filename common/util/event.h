// SPDX-License-Identifier: MIT
// NAME
//   event.h - owning handles for libevent and OpenSSL objects
// DESCRIPTION
//   unique_ptr types with the matching free function, so that every
//   event_base, event, bufferevent, evbuffer, SSL and SSL_CTX has exactly
//   one owner. Note: bufferevent_openssl_*_new with BEV_OPT_CLOSE_ON_FREE
//   takes the SSL even when it fails; release() the SSL before the call.
#pragma once

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

} // namespace rs
