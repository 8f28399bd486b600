// SPDX-License-Identifier: MIT
// NAME
//   rewrite.cc - trivial-rewrite(8) client and mynetworks-style lists
// DESCRIPTION
//   RewriteClient speaks attr0 over one persistent UNIX-domain stream to
//   trivial-rewrite: the server greets with protocol=trivial_rewrite_
//   protocol, then each request is one attribute list and each reply one
//   list, read strictly (every attribute, in order, nothing more). The
//   resolve reply carries "flags" twice: first the server's (non-zero
//   asks us to reconnect), then the resolve flags. As Postfix's client
//   does, the last answer of each request type is kept for 30 seconds.
//
//   NetworkList holds address/prefix pairs and matches a client address
//   against them in order, as Postfix's mynetworks does.
// BUGS
//   No ipc_idle / ipc_ttl: the connection stays until the server closes
//   it. Host names and type:table entries in a NetworkList are refused
//   by parse().
// SEE ALSO
//   trivial-rewrite(8), postconf(5) mynetworks
#include "smtpd/rewrite.h"

#include "common/mail/attr.h"
#include "common/mail/log.h"
#include "common/util/event.h"
#include "common/util/text.h"
#include "smtpd/address.h"
#include <arpa/inet.h>
#include <chrono>
#include <cstring>
#include <deque>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <sys/socket.h>
#include <sys/un.h>

namespace rs::smtpd {

namespace {

/// The largest reply list accepted from trivial-rewrite: an address and
/// a transport/nexthop pair fit many times over.
constexpr size_t kMaxReplyBytes = 64 * 1024;

/// How long one answer per request type is reused, as in Postfix.
constexpr auto kCacheTtl = std::chrono::seconds(30);

/// Pause before a retry on a new connection.
constexpr timeval kRetryDelay = {1, 0};

using Clock = std::chrono::steady_clock;

} // namespace

struct RewriteClient::Impl {
    struct Request {
        bool resolve = false;
        std::string sender;  ///< resolve only
        std::string address; ///< internal form
        std::function<void(Result<std::string>)> rewrite_done;
        std::function<void(Result<Resolved>)> resolve_done;
        int tries = 0;
    };

    event_base* base;
    std::string path;
    int timeout = 3600;
    int max_tries = 2;

    BuffereventPtr bev;
    bool greeted = false;
    bool in_flight = false; ///< the head of queue was sent
    std::deque<Request> queue;
    EventPtr kick;  ///< runs pump() from the loop
    EventPtr retry; ///< runs pump() after kRetryDelay

    // The one-entry caches.
    struct {
        bool valid = false;
        std::string address, result;
        Clock::time_point expires;
    } rewrite_cache;
    struct {
        bool valid = false;
        std::string sender, address;
        Resolved result;
        Clock::time_point expires;
    } resolve_cache;

    Impl(event_base* b, std::string p) : base(b), path(std::move(p))
    {
        kick.reset(event_new(base, -1, 0, on_kick, this));
        retry.reset(evtimer_new(base, on_kick, this));
        if (!kick || !retry) {
            log::fatal("event_new: out of memory");
        }
    }

    static void on_kick(evutil_socket_t, short, void* arg) noexcept
    {
        static_cast<Impl*>(arg)->pump();
    }
    static void on_read(bufferevent*, void* arg) noexcept
    {
        static_cast<Impl*>(arg)->read();
    }
    static void on_event(bufferevent*, short what, void* arg) noexcept
    {
        static_cast<Impl*>(arg)->event(what);
    }

    void submit(Request r)
    {
        // Queue it and let the loop pick it up, so the callback never
        // runs inside the caller's own call.
        queue.push_back(std::move(r));
        event_active(kick.get(), 0, 0);
    }

    // Answer cached requests, connect when needed, send the next one.
    void pump()
    {
        if (in_flight) {
            return;
        }
        while (!queue.empty() && answer_from_cache()) {
        }
        if (queue.empty()) {
            return;
        }
        if (!bev) {
            connect();
            return;
        }
        if (!greeted) {
            return;
        }

        // One request on the wire at a time, with the I/O timeout armed.
        const Request& r = queue.front();
        std::string out;
        if (r.resolve) {
            mail::attr::print0(out, {{"request", "resolve"},
                                     {"sender", r.sender},
                                     {"address", r.address}});
        } else {
            mail::attr::print0(out, {{"request", "rewrite"},
                                     {"rule", "local"},
                                     {"address", external_form(r.address)}});
        }
        in_flight = true;
        arm_timeout(true);
        if (write_now(bev.get(), out.data(), out.size()) != 0) {
            fail("write error");
        }
    }

    // Complete the head request from the cache; false on a miss.
    bool answer_from_cache()
    {
        Request& r = queue.front();
        Clock::time_point now = Clock::now();
        if (r.resolve) {
            auto& c = resolve_cache;
            if (!c.valid || now >= c.expires || c.sender != r.sender
                || c.address != r.address) {
                return false;
            }
            auto done = std::move(r.resolve_done);
            Resolved v = c.result;
            queue.pop_front();
            done(std::move(v));
            return true;
        }
        auto& c = rewrite_cache;
        if (!c.valid || now >= c.expires || c.address != r.address) {
            return false;
        }
        auto done = std::move(r.rewrite_done);
        std::string v = c.result;
        queue.pop_front();
        done(std::move(v));
        return true;
    }

    void arm_timeout(bool on)
    {
        if (!bev) {
            return;
        }
        timeval tv{timeout, 0};
        bufferevent_set_timeouts(bev.get(), on ? &tv : nullptr,
                                 on ? &tv : nullptr);
    }

    void connect()
    {
        // The path is relative to the queue directory, our cwd.
        sockaddr_un sun{};
        sun.sun_family = AF_UNIX;
        if (path.size() >= sizeof(sun.sun_path)) {
            fail_all("socket path too long: " + path);
            return;
        }
        std::memcpy(sun.sun_path, path.data(), path.size());
        bev.reset(bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE));
        if (!bev) {
            fail_all("bufferevent_socket_new failed");
            return;
        }
        greeted = false;
        bufferevent_setcb(bev.get(), on_read, nullptr, on_event, this);
        bufferevent_enable(bev.get(), EV_READ | EV_WRITE);
        arm_timeout(true);
        if (bufferevent_socket_connect(
                bev.get(), reinterpret_cast<sockaddr*>(&sun), sizeof(sun))
            != 0) {
            fail(std::string("connect to ") + path + ": "
                 + std::strerror(errno));
        }
    }

    void read()
    {
        // Whole lists only; a partial one waits for more bytes.
        evbuffer* in = bufferevent_get_input(bev.get());
        for (;;) {
            size_t len = evbuffer_get_length(in);
            if (len == 0) {
                return;
            }
            const char* data = reinterpret_cast<const char*>(
                evbuffer_pullup(in, static_cast<ev_ssize_t>(len)));
            auto got = mail::attr::scan0({data, len}, kMaxReplyBytes);
            if (!got) {
                fail("malformed reply: " + got.error().text);
                return;
            }
            if (!*got) {
                if (len >= kMaxReplyBytes) {
                    fail("reply too long");
                }
                return;
            }
            mail::attr::List list = std::move((*got)->list);
            evbuffer_drain(in, (*got)->consumed);
            if (!handle(list)) {
                return;
            }
            if (!bev) {
                return;
            }
        }
    }

    // One list from the server. False when the connection went away.
    bool handle(const mail::attr::List& list)
    {
        // First the greeting, checked exactly.
        if (!greeted) {
            if (list.size() != 1 || list[0].first != "protocol"
                || list[0].second != "trivial_rewrite_protocol") {
                fail("unexpected greeting");
                return false;
            }
            greeted = true;
            arm_timeout(false);
            pump();
            return bev != nullptr;
        }
        if (!in_flight) {
            fail("unexpected reply");
            return false;
        }

        // Then the reply to the head request.
        Request& r = queue.front();
        unsigned server_flags = 0;
        Resolved res;
        std::string rewritten;
        if (!parse_reply(r, list, server_flags, res, rewritten)) {
            fail(r.resolve ? "malformed resolve reply"
                           : "malformed rewrite reply");
            return false;
        }

        // An unusable resolve answer is retried, as Postfix retries it.
        if (r.resolve
            && (res.transport.empty()
                || (res.recipient.empty() && !r.address.empty()))) {
            fail("empty transport or recipient in resolve reply");
            return false;
        }

        // Use it, remember it, and obey a request to reconnect.
        in_flight = false;
        arm_timeout(false);
        Request done = std::move(r);
        queue.pop_front();
        Clock::time_point expires = Clock::now() + kCacheTtl;
        if (done.resolve) {
            resolve_cache = {true, done.sender, done.address, res, expires};
        } else {
            rewrite_cache = {true, done.address, rewritten, expires};
        }
        bool keep = server_flags == 0;
        if (!keep) {
            drop();
        }
        if (done.resolve) {
            done.resolve_done(std::move(res));
        } else {
            done.rewrite_done(std::move(rewritten));
        }
        if (!queue.empty()) {
            event_active(kick.get(), 0, 0);
        }
        return keep;
    }

    static bool parse_flags(const std::string& s, unsigned& out)
    {
        auto n = text::parse_int(s, 0, UINT32_MAX);
        if (!n) {
            return false;
        }
        out = static_cast<unsigned>(*n);
        return true;
    }

    // Read a reply strictly: these names, in this order, nothing else.
    static bool parse_reply(const Request& r, const mail::attr::List& l,
                            unsigned& server_flags, Resolved& res,
                            std::string& rewritten)
    {
        if (!r.resolve) {
            if (l.size() != 2 || l[0].first != "flags"
                || l[1].first != "address"
                || !parse_flags(l[0].second, server_flags)) {
                return false;
            }
            rewritten = internal_form(l[1].second);
            return true;
        }
        if (l.size() != 5 || l[0].first != "flags" || l[1].first != "transport"
            || l[2].first != "nexthop" || l[3].first != "recipient"
            || l[4].first != "flags" || !parse_flags(l[0].second, server_flags)
            || !parse_flags(l[4].second, res.flags)) {
            return false;
        }
        res.transport = l[1].second;
        res.nexthop = l[2].second;
        res.recipient = l[3].second;
        return true;
    }

    void event(short what)
    {
        if (what & BEV_EVENT_CONNECTED) {
            return;
        }
        if (what & BEV_EVENT_TIMEOUT) {
            fail("timeout");
        } else if (what & BEV_EVENT_EOF) {
            fail("lost connection");
        } else {
            fail(std::string("I/O error: ")
                 + evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        }
    }

    void drop()
    {
        bev.reset();
        greeted = false;
        in_flight = false;
    }

    // The connection failed. An idle hang-up only closes it; a request
    // waiting for it is retried later or, out of tries, fails.
    void fail(const std::string& why)
    {
        bool waiting = !queue.empty();
        drop();
        if (!waiting) {
            return;
        }
        log::warning("problem talking to service {}: {}", service(), why);
        Request& r = queue.front();
        if (++r.tries >= max_tries) {
            Request done = std::move(r);
            queue.pop_front();
            finish_error(done, why);
        }
        if (!queue.empty()) {
            evtimer_add(retry.get(), &kRetryDelay);
        }
    }

    // The service name as Postfix names it in warnings ("rewrite").
    std::string service() const
    {
        size_t slash = path.rfind('/');
        return slash == std::string::npos ? path : path.substr(slash + 1);
    }

    void fail_all(const std::string& why)
    {
        log::warning("problem talking to service {}: {}", service(), why);
        drop();
        std::deque<Request> q = std::move(queue);
        queue.clear();
        for (Request& r : q) {
            finish_error(r, why);
        }
    }

    void finish_error(Request& r, const std::string& why)
    {
        Error e{0, "problem talking to service " + service() + ": " + why};
        if (r.resolve) {
            r.resolve_done(tl::unexpected<Error>(std::move(e)));
        } else {
            r.rewrite_done(tl::unexpected<Error>(std::move(e)));
        }
    }
};

RewriteClient::RewriteClient(event_base* base, std::string socket_path)
    : impl_(std::make_unique<Impl>(base, std::move(socket_path)))
{
}

RewriteClient::~RewriteClient() = default;

event_base* RewriteClient::base() const
{
    return impl_->base;
}

void RewriteClient::set_timeout(int seconds)
{
    impl_->timeout = seconds > 0 ? seconds : 1;
}

void RewriteClient::set_max_tries(int tries)
{
    impl_->max_tries = tries > 0 ? tries : 1;
}

void RewriteClient::rewrite(std::string address,
                            std::function<void(Result<std::string>)> done)
{
    Impl::Request r;
    r.address = std::move(address);
    r.rewrite_done = std::move(done);
    impl_->submit(std::move(r));
}

void RewriteClient::resolve(std::string sender, std::string address,
                            std::function<void(Result<Resolved>)> done)
{
    Impl::Request r;
    r.resolve = true;
    r.sender = std::move(sender);
    r.address = std::move(address);
    r.resolve_done = std::move(done);
    impl_->submit(std::move(r));
}

namespace {

// The address with only the first `prefix` bits kept.
void mask_bits(unsigned char* bytes, int len, int prefix)
{
    for (int i = 0; i < len; ++i) {
        int keep = std::min(8, std::max(0, prefix - 8 * i));
        bytes[i] &= static_cast<unsigned char>(0xff00 >> keep);
    }
}

} // namespace

Result<NetworkList> NetworkList::parse(std::string_view value)
{
    NetworkList list;
    for (const std::string& entry : text::split(value)) {
        std::string_view e = entry;
        Net net;

        // "!pattern" excludes what it matches.
        if (!e.empty() && e.front() == '!') {
            net.negate = true;
            e.remove_prefix(1);
        }

        // [address] or address, then an optional /prefix.
        std::string addr;
        std::string_view mask;
        bool bracket = !e.empty() && e.front() == '[';
        if (bracket) {
            size_t close = e.find(']');
            if (close == std::string_view::npos
                || (close + 1 < e.size() && e[close + 1] != '/')) {
                return fail("unsupported entry \"" + entry + "\"");
            }
            addr = std::string(e.substr(1, close - 1));
            if (close + 1 < e.size()) {
                mask = e.substr(close + 2);
            }
        } else {
            size_t slash = e.find('/');
            addr = std::string(e.substr(0, slash));
            if (slash != std::string_view::npos) {
                mask = e.substr(slash + 1);
            }
        }
        if (inet_pton(AF_INET, addr.c_str(), net.bytes) == 1) {
            net.family = AF_INET;
        } else if (inet_pton(AF_INET6, addr.c_str(), net.bytes) == 1) {
            net.family = AF_INET6;
        } else {
            // Host names, /file names and type:table lookups need DNS or
            // tables we do not have yet.
            return fail("unsupported entry \"" + entry
                        + "\": host names, files and type:table lookups "
                          "are not supported yet");
        }

        // The prefix must fit the family; no prefix means one host.
        int bits = net.family == AF_INET ? 32 : 128;
        net.prefix = bits;
        if (e.find('/') != std::string_view::npos) {
            auto n = text::parse_int(mask, 0, bits);
            if (!n) {
                return fail("bad mask length in \"" + entry + "\"");
            }
            net.prefix = static_cast<int>(*n);
        }

        // Host bits set mean a typo somewhere: refuse and suggest the
        // network, as Postfix does.
        unsigned char masked[16];
        std::memcpy(masked, net.bytes, sizeof masked);
        mask_bits(masked, bits / 8, net.prefix);
        if (std::memcmp(masked, net.bytes, bits / 8) != 0) {
            char buf[INET6_ADDRSTRLEN];
            inet_ntop(net.family, masked, buf, sizeof buf);
            std::string fixed = bracket ? "[" + std::string(buf) + "]" : buf;
            return fail("non-null host address bits in \"" + entry
                        + "\", perhaps you should use \""
                        + (net.negate ? "!" : "") + fixed + "/"
                        + std::to_string(net.prefix) + "\" instead");
        }
        list.nets_.push_back(net);
    }
    return list;
}

bool NetworkList::match(std::string_view addr) const
{
    // A client address that is not numeric matches nothing.
    std::string a(addr);
    unsigned char bytes[16] = {};
    int family = 0;
    if (inet_pton(AF_INET, a.c_str(), bytes) == 1) {
        family = AF_INET;
    } else if (inet_pton(AF_INET6, a.c_str(), bytes) == 1) {
        family = AF_INET6;
    } else {
        return false;
    }

    // The first entry that matches decides.
    for (const Net& net : nets_) {
        if (net.family != family) {
            continue;
        }
        unsigned char masked[16];
        std::memcpy(masked, bytes, sizeof masked);
        int len = family == AF_INET ? 4 : 16;
        mask_bits(masked, len, net.prefix);
        if (std::memcmp(masked, net.bytes, len) == 0) {
            return !net.negate;
        }
    }
    return false;
}

} // namespace rs::smtpd
