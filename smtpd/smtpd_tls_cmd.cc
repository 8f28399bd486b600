// SPDX-License-Identifier: MIT
// NAME
//   smtpd_tls_cmd.cc - STARTTLS (RFC 3207)
// DESCRIPTION
//   After "220 2.0.0 Ready to start TLS" the plaintext connection is
//   wrapped in an OpenSSL filter bufferevent. Anything the client sent
//   behind STARTTLS in plaintext is thrown away: commands injected there
//   by a man in the middle must not run inside the TLS session. When
//   the handshake is done the session forgets what it knew (HELO name,
//   transaction), as RFC 3207 says, and logs Postfix's TLS line.
// SEE ALSO
//   session.h, tls.h.
#include "common/mail/log.h"
#include "smtpd/session.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>

namespace rs::smtpd {

void Session::starttls_cmd(const std::vector<std::string>& argv)
{
    // Only when offered, once, outside a transaction.
    bool offered = env_.tls != nullptr && !info_.standalone_stdio
                   && (cfg_.tls_level == "may" || cfg_.tls_level == "encrypt");
    if (argv.size() != 1) {
        reply("501 5.5.4 Syntax: STARTTLS");
        finish_cmd(false);
        return;
    }
    if (tls_active_) {
        reply("554 5.5.1 Error: TLS already active");
        finish_cmd(false);
        return;
    }
    if (!offered) {
        reply("502 5.5.1 Error: command not implemented");
        finish_cmd(false);
        return;
    }
    if (txn_.active) {
        reply("503 5.5.1 Error: MAIL transaction in progress");
        finish_cmd(false);
        return;
    }
    SslPtr ssl = env_.tls->new_session(cfg_.tls_level == "encrypt");
    if (!ssl) {
        reply("454 4.7.0 TLS not available due to local problem");
        finish_cmd(false);
        return;
    }
    reply("220 2.0.0 Ready to start TLS");
    flush_batch(); // in plaintext, before the filter goes on

    // The STARTTLS injection defence: plaintext after the command is
    // discarded, never executed.
    evbuffer* in = bufferevent_get_input(bev_.get());
    evbuffer_drain(in, evbuffer_get_length(in));

    // The filter writes our 220 (still in the plain buffer) before the
    // handshake. It takes the SSL even when it fails: release first.
    SSL* raw = ssl.release();
    bufferevent* tls = bufferevent_openssl_filter_new(
        env_.base, bev_.get(), raw, BUFFEREVENT_SSL_ACCEPTING,
        BEV_OPT_CLOSE_ON_FREE);
    if (tls == nullptr) {
        log::warning("cannot start TLS for {}", namaddr_);
        finish_cmd(false);
        close_after_reply();
        return;
    }
    (void)bev_.release(); // now owned by the filter (CLOSE_ON_FREE)
    bev_.reset(tls);
    ssl_ = raw;
    bufferevent_setcb(
        bev_.get(),
        [](bufferevent*, void* arg) noexcept {
            static_cast<Session*>(arg)->on_read();
        },
        [](bufferevent*, void* arg) noexcept {
            static_cast<Session*>(arg)->on_write();
        },
        [](bufferevent*, short what, void* arg) noexcept {
            static_cast<Session*>(arg)->on_event(what);
        },
        this);
    timeval tv{cfg_.starttls_timeout, 0};
    bufferevent_set_timeouts(bev_.get(), &tv, &tv);
    bufferevent_enable(bev_.get(), EV_READ | EV_WRITE);
}

void Session::tls_ready()
{
    // RFC 3207: start over, as if the client had just connected.
    auto keep = shared_from_this();
    tls_active_ = true;
    log::info("{}", TlsServer::established_line(ssl_, namaddr_));
    mail_reset();
    helo_.clear();
    esmtp_ = false;
    finish_cmd(true);
    arm_timeouts();
    pause_reading(false);
    process_input();
}

} // namespace rs::smtpd
