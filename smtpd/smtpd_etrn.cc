// SPDX-License-Identifier: MIT
// NAME
//   smtpd_etrn.cc - ETRN, and the one-shot request to flush(8)
// DESCRIPTION
//   ETRN asks for the deferred mail of a site to be sent now. As Postfix
//   3.7.11 answers (observed): inside a transaction "503 Error: MAIL
//   transaction in progress"; not exactly one argument "500 Syntax: ETRN
//   domain"; one leading "@" or "#" is dropped, and what is left must be a
//   host name or an [address] literal, else "501 Error: invalid parameter
//   syntax"; a site outside $fast_flush_domains gets "459 <site>: service
//   unavailable" and the warning "reject: ETRN site... from client". For
//   an eligible site the flush(8) service (public/flush, attr0, one
//   request per connection) is asked to send it: "250 Queuing started" on
//   success, "458 Unable to queue messages" when the service fails.
//
//   The flush request runs on the session's loop: the session waits
//   (busy) until flush answers, hangs up, or flush_timeout passes.
// SEE ALSO
//   session.h, common/mail/attr.h, flush(8), postconf(5) fast_flush_domains.
#include "common/mail/attr.h"
#include "common/mail/log.h"
#include "common/util/text.h"
#include "smtpd/session.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <sys/socket.h>
#include <sys/un.h>

namespace rs::smtpd {

namespace {

// flush(8) status values.
constexpr int FLUSH_OK = 0;
constexpr int FLUSH_DENY = 4;

// A flush reply is a handful of short attributes; anything bigger is not
// a flush server.
constexpr size_t FLUSH_REPLY_LIMIT = 4096;

// How long we wait for flush(8), seconds.
constexpr int FLUSH_TIMEOUT = 100;

// A host name as Postfix accepts one: dot-separated labels of letters,
// digits and hyphens, none empty, none starting or ending with a hyphen,
// and not all digits (that would be a numeric address without brackets).
bool valid_hostname(std::string_view name)
{
    if (name.empty() || name.size() > 255) {
        return false;
    }
    bool all_numeric = true;
    size_t start = 0;
    while (start <= name.size()) {
        size_t dot = name.find('.', start);
        size_t end = dot == std::string_view::npos ? name.size() : dot;
        std::string_view label = name.substr(start, end - start);
        if (label.empty() || label.size() > 63 || label.front() == '-'
            || label.back() == '-') {
            return false;
        }
        for (char c : label) {
            bool digit = c >= '0' && c <= '9';
            bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
            if (!digit && !alpha && c != '-') {
                return false;
            }
            if (!digit) {
                all_numeric = false;
            }
        }
        if (dot == std::string_view::npos) {
            break;
        }
        start = dot + 1;
    }
    return !all_numeric;
}

// [a.b.c.d] or [IPv6:...].
bool valid_literal(std::string_view site)
{
    if (site.size() < 3 || site.front() != '[' || site.back() != ']') {
        return false;
    }
    std::string inner(site.substr(1, site.size() - 2));
    unsigned char buf[16];
    if (text::istarts_with(inner, "ipv6:")) {
        return inet_pton(AF_INET6, inner.c_str() + 5, buf) == 1;
    }
    return inet_pton(AF_INET, inner.c_str(), buf) == 1;
}

// One flush(8) request: connect, send, read the greeting and the reply.
struct FlushRequest {
    BuffereventPtr bev;
    EventPtr timer;
    bool greeted = false;
    std::function<void(int)> done; // status, or -1 on failure
    std::shared_ptr<FlushRequest> self;

    void finish(int status)
    {
        // Once only; the request frees itself after this call.
        if (!done) {
            return;
        }
        auto cb = std::move(done);
        done = nullptr;
        bev.reset();
        timer.reset();
        auto keep = std::move(self);
        cb(status);
    }

    void on_read()
    {
        // Greeting first, then the reply; each a complete attr0 list.
        evbuffer* in = bufferevent_get_input(bev.get());
        for (;;) {
            size_t len = evbuffer_get_length(in);
            auto* data = reinterpret_cast<const char*>(
                evbuffer_pullup(in, static_cast<ssize_t>(len)));
            auto got = mail::attr::scan0(std::string_view(data, len),
                                         FLUSH_REPLY_LIMIT);
            if (!got) {
                log::warning("flush service: {}", got.error().text);
                finish(-1);
                return;
            }
            if (!*got) {
                if (len > FLUSH_REPLY_LIMIT) {
                    finish(-1);
                }
                return;
            }
            evbuffer_drain(in, (*got)->consumed);
            const auto& list = (*got)->list;
            if (!greeted) {
                auto proto = mail::attr::find(list, "protocol");
                if (!proto || *proto != "queue_flush_protocol") {
                    log::warning("flush service: unexpected protocol");
                    finish(-1);
                    return;
                }
                greeted = true;
                continue;
            }
            auto st = mail::attr::find(list, "status");
            auto n = st ? text::parse_int(*st, -1000, 1000) : std::nullopt;
            finish(n ? static_cast<int>(*n) : -1);
            return;
        }
    }
};

// Ask public/flush to send `site`; `done` gets the status (-1: failed),
// always later from the loop.
void flush_send_site(event_base* base, const std::string& site,
                     std::function<void(int)> done)
{
    auto req = std::make_shared<FlushRequest>();
    req->self = req;
    req->done = std::move(done);

    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    const char path[] = "public/flush";
    std::memcpy(sun.sun_path, path, sizeof(path));

    // Every failure, even an immediate one, is reported from the loop.
    req->timer.reset(evtimer_new(
        base,
        [](evutil_socket_t, short, void* arg) noexcept {
            static_cast<FlushRequest*>(arg)->finish(-1);
        },
        req.get()));
    timeval tv{FLUSH_TIMEOUT, 0};
    req->bev.reset(bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE));
    if (!req->bev || !req->timer
        || bufferevent_socket_connect(
               req->bev.get(), reinterpret_cast<sockaddr*>(&sun), sizeof(sun))
               != 0) {
        log::warning("connect to flush service: {}", std::strerror(errno));
        req->bev.reset();
        tv = {0, 0};
        if (req->timer) {
            evtimer_add(req->timer.get(), &tv);
        } else {
            req->self.reset();
        }
        return;
    }
    evtimer_add(req->timer.get(), &tv);
    bufferevent_setcb(
        req->bev.get(),
        [](bufferevent*, void* arg) noexcept {
            static_cast<FlushRequest*>(arg)->on_read();
        },
        nullptr,
        [](bufferevent*, short what, void* arg) noexcept {
            if (what & BEV_EVENT_CONNECTED) {
                return;
            }
            log::warning("flush service: connection lost");
            static_cast<FlushRequest*>(arg)->finish(-1);
        },
        req.get());
    std::string out;
    mail::attr::print0(out, {{"request", "send_site"}, {"site", site}});
    bufferevent_write(req->bev.get(), out.data(), out.size());
    bufferevent_enable(req->bev.get(), EV_READ | EV_WRITE);
}

// fast_flush_domains: a name matches an entry and its subdomains
// ("domain" and ".domain" forms), "!entry" excludes, first match wins.
bool flush_domain_match(const std::vector<std::string>& list,
                        std::string_view site)
{
    std::string s = text::lower(site);
    for (const auto& item : list) {
        std::string e = text::lower(item);
        bool negate = !e.empty() && e.front() == '!';
        if (negate) {
            e.erase(0, 1);
        }
        if (!e.empty() && e.front() == '.') {
            e.erase(0, 1);
        }
        if (e.empty()) {
            continue;
        }
        bool hit = s == e
                   || (s.size() > e.size() && s.ends_with(e)
                       && s[s.size() - e.size() - 1] == '.');
        if (hit) {
            return !negate;
        }
    }
    return false;
}

} // namespace

void Session::etrn_cmd(const std::vector<std::string>& argv)
{
    // Postfix's ETRN replies carry no enhanced status code; the
    // transaction is checked before the syntax.
    if (txn_.active) {
        reply("503 Error: MAIL transaction in progress");
        finish_cmd(false);
        return;
    }
    if (argv.size() != 2) {
        reply("500 Syntax: ETRN domain");
        finish_cmd(false);
        return;
    }
    std::string site = argv[1];
    if (!site.empty() && (site.front() == '@' || site.front() == '#')) {
        site.erase(0, 1);
    }
    if (!valid_hostname(site) && !valid_literal(site)) {
        reply("501 Error: invalid parameter syntax");
        finish_cmd(false);
        return;
    }

    // Only sites in fast_flush_domains have a per-site log to flush.
    if (!flush_domain_match(cfg_.fast_flush_domains, site)) {
        log::warning("reject: ETRN {}... from {}", site, namaddr_);
        reply("459 <" + site + ">: service unavailable");
        finish_cmd(false);
        return;
    }
    busy_ = true;
    std::weak_ptr<Session> weak = weak_from_this();
    flush_send_site(env_.base, site, [weak, site](int status) {
        auto s = weak.lock();
        if (!s || s->mode_ == Mode::closed) {
            return;
        }
        if (status == FLUSH_OK) {
            s->reply("250 Queuing started");
            s->finish_cmd(true);
        } else if (status == FLUSH_DENY) {
            log::warning("reject: ETRN {}... from {}", site, s->namaddr_);
            s->reply("459 <" + site + ">: service unavailable");
            s->finish_cmd(false);
        } else {
            s->reply("458 Unable to queue messages");
            s->finish_cmd(false);
        }
        s->resume();
    });
}

} // namespace rs::smtpd
