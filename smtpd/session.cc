// SPDX-License-Identifier: MIT
// NAME
//   session.cc - the session core: settings, I/O, dispatch, the end
// DESCRIPTION
//   Input is read through a bufferevent and handled a line at a time in
//   command mode, or as raw bytes in DATA and BDAT mode. Replies go to
//   the output buffer, which libevent writes when the loop runs again,
//   i.e. after every command already received has been answered: that
//   is Postfix's "flush when no more input is pending".
//
//   While a command waits for another part (relay check, cleanup), or
//   while the error sleep holds replies, reading stops, so the input
//   buffer stays bounded and the read timeout measures the client only.
// BUGS
//   With smtpd_per_request_deadline, time spent waiting for cleanup or
//   relay control restarts the client's deadline instead of pausing it.
// SEE ALSO
//   session.h, smtpd_*.cc (the commands).
#include "smtpd/session.h"
#include "resumedb/limits.h"

#include "common/mail/log.h"
#include "common/util/text.h"
#include "smtpd/peer.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <openssl/err.h>
#include <sys/socket.h>
#include <sys/time.h>

namespace rs::smtpd {

namespace {

// Output a client does not read is bounded: above this we stop reading
// its commands until the replies have gone out.
constexpr size_t OUTPUT_HIGH_WATER = 256 * 1024;

// How long a closing session waits for the client to close after our
// end of file (see linger()).
constexpr int LINGER_MS = 2000;

std::function<std::string()>& lookup_override()
{
    static std::function<std::string()> f;
    return f;
}

// The numeric addresses of inet_interfaces, for permit_inet_interfaces.
void interface_addresses(mail::Config& config, SessionSettings& s)
{
    std::string value = text::lower(config.str("inet_interfaces"));
    if (value == "all") {
        // Every address of every interface is one of ours.
        ifaddrs* ifa = nullptr;
        if (getifaddrs(&ifa) != 0) {
            log::warning("getifaddrs: {}", std::strerror(errno));
            return;
        }
        for (ifaddrs* p = ifa; p != nullptr; p = p->ifa_next) {
            if (p->ifa_addr == nullptr) {
                continue;
            }
            int fam = p->ifa_addr->sa_family;
            if (fam != AF_INET && fam != AF_INET6) {
                continue;
            }
            char buf[NI_MAXHOST];
            socklen_t len =
                fam == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
            if (getnameinfo(p->ifa_addr, len, buf, sizeof(buf), nullptr, 0,
                            NI_NUMERICHOST)
                == 0) {
                s.inet_addresses.push_back(buf);
            }
        }
        freeifaddrs(ifa);
        return;
    }
    if (value == "loopback-only") {
        s.inet_addresses = {"127.0.0.1", "::1"};
        return;
    }

    // An explicit list: addresses as they are, names through the
    // resolver, once at start-up.
    for (const auto& item : text::split(value)) {
        std::string host = item;
        if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
            host = host.substr(1, host.size() - 2);
        }
        addrinfo hints{};
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* res = nullptr;
        if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0) {
            log::warning("inet_interfaces: cannot resolve {}", host);
            continue;
        }
        for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
            char buf[NI_MAXHOST];
            if (getnameinfo(ai->ai_addr, ai->ai_addrlen, buf, sizeof(buf),
                            nullptr, 0, NI_NUMERICHOST)
                == 0) {
                s.inet_addresses.push_back(buf);
            }
        }
        freeaddrinfo(res);
    }
}

// smtpd_forbidden_commands: plain verbs, and inline regexp/pcre tables
// "regexp:{{/pattern/ action}}" whose patterns match the whole line.
void forbidden_commands(mail::Config& config, SessionSettings& s)
{
    std::string value = config.str("smtpd_forbidden_commands");
    s.forbidden_verbs.clear();
    s.forbidden_patterns.clear();
    size_t i = 0;
    while (i < value.size()) {
        // Skip separators between items.
        while (i < value.size()
               && (value[i] == ' ' || value[i] == ',' || value[i] == '\t')) {
            ++i;
        }
        if (i >= value.size()) {
            break;
        }

        // An inline table: take each /pattern/ up to its closing braces.
        size_t colon = value.find(':', i);
        size_t space = value.find_first_of(" ,\t", i);
        if (colon != std::string::npos && colon < space
            && colon + 1 < value.size() && value[colon + 1] == '{') {
            std::string type = value.substr(i, colon - i);
            size_t end = value.find("}}", colon);
            end = end == std::string::npos ? value.size() : end + 2;
            std::string body = value.substr(colon + 1, end - colon - 1);
            i = end;
            if (type != "regexp" && type != "pcre") {
                log::warning("smtpd_forbidden_commands: table type {} is "
                             "not supported; ignoring it",
                             type);
                continue;
            }
            size_t a = body.find('/');
            size_t b = a == std::string::npos ? a : body.find('/', a + 1);
            if (b == std::string::npos) {
                log::warning("smtpd_forbidden_commands: bad pattern {}", body);
                continue;
            }
            // Postfix tables ignore case unless told otherwise.
            auto flags =
                std::regex::ECMAScript | std::regex::icase | std::regex::nosubs;
            s.forbidden_patterns.emplace_back(body.substr(a + 1, b - a - 1),
                                              flags);
            continue;
        }
        if (colon != std::string::npos && colon < space) {
            log::warning("smtpd_forbidden_commands: table {} is not "
                         "supported; ignoring it",
                         value.substr(i, space - i));
            i = space;
            continue;
        }
        s.forbidden_verbs.push_back(text::lower(value.substr(i, space - i)));
        i = space;
    }
}

} // namespace

// XRESUME: who is offered it and what the EHLO keyword says; the spool's
// own limits are read where the spool is opened (resumedb/config.h).
static void resume_settings(mail::Config& config, SessionSettings& s)
{
    s.resume_enable = config.boolean("smtpd_resume_enable");
    std::string clients = config.str("smtpd_resume_clients");
    auto nets = NetworkList::parse(clients);
    if (!nets) {
        log::fatal("smtpd_resume_clients: {}", nets.error().text);
    }
    s.resume_clients = std::make_shared<NetworkList>(std::move(*nets));
    s.resume_ttl = config.time("smtpd_resume_ttl", 's', 1);
    s.resume_max_size = config.integer("smtpd_resume_entry_size_limit");
    if (s.message_size_limit > 0
        && (s.resume_max_size == 0
            || s.resume_max_size > s.message_size_limit)) {
        s.resume_max_size = s.message_size_limit;
    }
    s.resume_bind = resumedb::bind_client_from(config);
}

SessionSettings settings_from(mail::Config& config)
{
    SessionSettings s;

    // Names and texts the client sees.
    s.myhostname = config.str("myhostname");
    s.banner = config.str("smtpd_banner");
    s.mail_name = config.str("mail_name");

    // Limits on what the client controls.
    s.line_length_limit =
        static_cast<size_t>(config.integer("line_length_limit", 1, 1 << 24));
    s.timeout = static_cast<int>(config.time("smtpd_timeout", 's', 1));
    s.starttls_timeout =
        static_cast<int>(config.time("smtpd_starttls_timeout", 's', 1));
    s.per_request_deadline = config.boolean("smtpd_per_request_deadline");
    s.min_data_rate = config.integer("smtpd_min_data_rate", 1);
    s.soft_error_limit =
        static_cast<int>(config.integer("smtpd_soft_error_limit", 0));
    s.hard_error_limit =
        static_cast<int>(config.integer("smtpd_hard_error_limit", 1));
    s.junk_command_limit =
        static_cast<int>(config.integer("smtpd_junk_command_limit", 1));
    s.error_sleep_ms = static_cast<int>(
        1000 * config.time("smtpd_error_sleep_time", 's', 0, 3600));
    s.message_size_limit = config.integer("message_size_limit", 0);
    s.recipient_limit =
        static_cast<int>(config.integer("smtpd_recipient_limit", 1));
    s.recipient_overshoot_limit =
        static_cast<int>(config.integer("smtpd_recipient_overshoot_limit", 0));

    // Behaviour switches.
    s.disable_vrfy = config.boolean("disable_vrfy_command");
    s.soft_bounce = config.boolean("soft_bounce");
    s.smtputf8_enable = config.boolean("smtputf8_enable");
    s.delay_open = config.boolean("smtpd_delay_open_until_valid_rcpt");
    s.port_logging = config.boolean("smtpd_client_port_logging");
    s.strict_rfc821 = config.boolean("strict_rfc821_envelopes");
    for (const auto& k : config.list("smtpd_discard_ehlo_keywords")) {
        s.discard_ehlo.push_back(text::lower(k));
    }

    // TLS: the 3.7 level, with the obsolete booleans as Postfix maps them.
    s.tls_level = text::lower(config.str("smtpd_tls_security_level"));
    if (s.tls_level.empty()) {
        if (config.boolean("smtpd_enforce_tls")) {
            s.tls_level = "encrypt";
        } else if (config.boolean("smtpd_use_tls")) {
            s.tls_level = "may";
        }
    }
    s.tls_received_header = config.boolean("smtpd_tls_received_header");

    // The cleanup service and the flags word: external bits, minus what
    // receive_override_options turns off, Milters always off (we run
    // none: with the bit on, cleanup would apply non_smtpd_milters).
    s.cleanup_socket = "public/" + config.str("cleanup_service_name");
    unsigned flags =
        cleanup::FLAG_FILTER | cleanup::FLAG_BCC_OK | cleanup::FLAG_MAP_OK;
    for (const auto& o : config.list("receive_override_options")) {
        std::string opt = text::lower(o);
        if (opt == "no_address_mappings") {
            flags &= ~(cleanup::FLAG_BCC_OK | cleanup::FLAG_MAP_OK);
        } else if (opt == "no_header_body_checks") {
            flags &= ~cleanup::FLAG_FILTER;
        }
    }
    s.cleanup_flags = flags | cleanup::FLAG_SMTP_REPLY;
    if (!config.str("smtpd_milters").empty()) {
        log::warning("smtpd_milters is not supported by this smtpd; "
                     "ignoring it");
    }
    s.content_filter = config.str("content_filter");

    // Bare newlines (Postfix 3.7.10 and later).
    // In 3.7.11 "yes" means normalize; an unknown value is a
    // configuration error, as in Postfix.
    std::string bare = config.str("smtpd_forbid_bare_newline");
    auto mode = parse_bare_newline(bare);
    if (!mode) {
        log::fatal("invalid smtpd_forbid_bare_newline value: \"{}\"", bare);
    }
    s.bare_newline = *mode;

    // Clients in smtpd_forbid_bare_newline_exclusions (by default
    // $mynetworks, computed as relay control computes it) keep "no".
    if (s.bare_newline != BareNewline::allow) {
        std::string excl =
            config.is_set("smtpd_forbid_bare_newline_exclusions")
                ? config.str("smtpd_forbid_bare_newline_exclusions")
            : config.is_set("mynetworks") ? config.str("mynetworks")
                                          : computed_mynetworks(config);
        auto nets = NetworkList::parse(excl);
        if (nets) {
            s.bare_newline_exclusions =
                std::make_shared<NetworkList>(std::move(*nets));
        } else {
            log::warning("smtpd_forbid_bare_newline_exclusions: {}",
                         nets.error().text);
        }
    }
    if (config.is_set("smtpd_forbid_bare_newline_reject_code")
        || mail::default_value("smtpd_forbid_bare_newline_reject_code")) {
        s.bare_lf_code = static_cast<int>(
            config.integer("smtpd_forbid_bare_newline_reject_code", 400, 599));
    }

    forbidden_commands(config, s);
    s.fast_flush_domains = config.list("fast_flush_domains");

    // local_header_rewrite_clients: the forms we can judge.
    for (const auto& item : config.list("local_header_rewrite_clients")) {
        std::string it = text::lower(item);
        if (it == "permit_inet_interfaces") {
            s.rewrite_inet_interfaces = true;
        } else if (it == "permit_mynetworks") {
            s.rewrite_mynetworks = true;
        } else if (it == "static:all") {
            s.rewrite_all = true;
        } else if (it == "permit_sasl_authenticated"
                   || it == "permit_tls_clientcerts"
                   || it == "permit_tls_all_clientcerts") {
            // No SASL and no client certificates here: never a match.
        } else {
            log::warning("local_header_rewrite_clients: {} is not "
                         "supported; ignoring it",
                         item);
        }
    }
    if (s.rewrite_inet_interfaces) {
        interface_addresses(config, s);
    }
    resume_settings(config, s);
    return s;
}

void Session::set_lookup_override(std::function<std::string()> f)
{
    lookup_override() = std::move(f);
}

void Session::start(SessionEnv env, Fd fd, mail::ConnInfo info)
{
    // The session owns itself until end_session() lets go.
    auto s = std::shared_ptr<Session>(
        new Session(std::move(env), std::move(fd), std::move(info)));
    s->self_ = s;
    s->begin();
}

Session::Session(SessionEnv env, Fd fd, mail::ConnInfo info)
    : env_(std::move(env)), cfg_(*env_.settings), info_(std::move(info)),
      fd_(std::move(fd))
{
}

Session::~Session()
{
    // The stream goes first: without E, cleanup drops the queue file.
    txn_.stream.reset();
}

// libevent's C callbacks, back into the session.
static void read_cb(bufferevent*, void* arg) noexcept
{
    static_cast<Session*>(arg)->on_read();
}
static void write_cb(bufferevent*, void* arg) noexcept
{
    static_cast<Session*>(arg)->on_write();
}
static void event_cb(bufferevent*, short what, void* arg) noexcept
{
    static_cast<Session*>(arg)->on_event(what);
}

void Session::begin()
{
    // The client's identity, as every later log line names it. -S on a
    // pipe has no peer: Postfix then calls the client localhost.
    addr_ = info_.client_addr;
    if (info_.standalone_stdio && (addr_.empty() || info_.family == 0)) {
        addr_ = "127.0.0.1";
        info_.family = AF_INET;
        name_ = reverse_name_ = "localhost";
    } else if (addr_.empty()) {
        addr_ = "unknown";
    } else if (lookup_override()) {
        name_ = reverse_name_ = lookup_override()();
    } else {
        PeerName peer = lookup_peer(addr_, info_.family);
        name_ = peer.name;
        reverse_name_ = peer.reverse_name;
        if (!peer.warning.empty()) {
            log::warning("{}", peer.warning);
        }
    }
    rfc_addr_ = rfc_address(addr_, info_.family);
    namaddr_ = namaddr(
        name_, addr_, info_.client_port.empty() ? "unknown" : info_.client_port,
        cfg_.port_logging);
    log::info("connect from {}", namaddr_);

    // The connection, owned by the bufferevent from here on.
    evutil_make_socket_nonblocking(fd_.get());
    int fd = fd_.release();
    bev_.reset(bufferevent_socket_new(env_.base, fd, BEV_OPT_CLOSE_ON_FREE));
    if (!bev_) {
        ::close(fd);
        log::warning("bufferevent_socket_new: out of memory");
        end_session();
        return;
    }
    if (info_.standalone_stdio) {
        evutil_make_socket_nonblocking(1);
        out_bev_.reset(bufferevent_socket_new(env_.base, 1, 0));
        if (!out_bev_) {
            log::warning("bufferevent_socket_new: out of memory");
            end_session();
            return;
        }
        bufferevent_setcb(out_bev_.get(), nullptr, write_cb, event_cb, this);
        bufferevent_enable(out_bev_.get(), EV_WRITE);
    }
    bufferevent_setcb(bev_.get(), read_cb, out_bev_ ? nullptr : write_cb,
                      event_cb, this);

    // A client that talks before the greeting is not waiting for us:
    // Postfix logs that once, with what it sent.
    if (!info_.standalone_stdio) {
        char peek[100];
        ssize_t n = ::recv(bufferevent_getfd(bev_.get()), peek, sizeof(peek),
                           MSG_PEEK | MSG_DONTWAIT);
        if (n > 0) {
            pipelining_logged_ = true;
            log::info("improper command pipelining after CONNECT from {}: "
                      "{}",
                      namaddr_, escape_for_log(std::string_view(peek, n), 100));
        }
    }

    reply("220 " + cfg_.banner);
    arm_timeouts();
    restart_deadline();
    pause_reading(false);
}

bufferevent* Session::out() const
{
    return out_bev_ ? out_bev_.get() : bev_.get();
}

void Session::arm_timeouts()
{
    // smtpd_timeout bounds each read and each write. With
    // smtpd_per_request_deadline the budget is the same number, but it is
    // not renewed by every byte: see on_read().
    timeval tv{cfg_.timeout, 0};
    if ((mode_ == Mode::closing || cfg_.per_request_deadline) && bev_) {
        bufferevent_set_timeouts(bev_.get(), nullptr, &tv);
    } else if (bev_) {
        bufferevent_set_timeouts(bev_.get(), &tv, &tv);
    }
    if (out_bev_) {
        bufferevent_set_timeouts(out_bev_.get(), nullptr, &tv);
    }
}

void Session::pause_reading(bool pause)
{
    // Reading is on only when its bytes can be handled now.
    if (pause) {
        paused_ = true;
    }
    if (!bev_) {
        return;
    }
    if (lingering_) {
        // After our end of file we read (and drop) until the client's.
        bufferevent_enable(bev_.get(), EV_READ);
        return;
    }
    bool want = !busy_ && !sleeping_ && !paused_ && !out_paused_ && !replaying_
                && (mode_ == Mode::command || mode_ == Mode::data
                    || mode_ == Mode::bdat_chunk);
    if (want) {
        bufferevent_enable(bev_.get(), EV_READ);
    } else {
        bufferevent_disable(bev_.get(), EV_READ);
    }
}

void Session::restart_deadline()
{
    // smtpd_per_request_deadline: a whole request must arrive within
    // smtpd_timeout, however slowly its bytes trickle in.
    if (!cfg_.per_request_deadline || mode_ == Mode::closing
        || mode_ == Mode::closed) {
        return;
    }
    deadline_ =
        std::chrono::steady_clock::now() + std::chrono::seconds(cfg_.timeout);
    arm_deadline();
}

void Session::arm_deadline()
{
    if (!deadline_timer_) {
        deadline_timer_.reset(evtimer_new(
            env_.base,
            [](evutil_socket_t, short, void* arg) noexcept {
                auto* s = static_cast<Session*>(arg);
                // Time spent waiting for other parts is not the client's.
                if (s->busy_ || s->sleeping_ || s->paused_ || s->replaying_) {
                    s->restart_deadline();
                    return;
                }
                if (std::chrono::steady_clock::now() < s->deadline_) {
                    s->arm_deadline();
                    return;
                }
                s->lost("timeout");
            },
            this));
    }
    auto left = std::chrono::duration_cast<std::chrono::microseconds>(
                    deadline_ - std::chrono::steady_clock::now())
                    .count();
    if (left < 0) {
        left = 0;
    }
    timeval tv{static_cast<time_t>(left / 1000000),
               static_cast<suseconds_t>(left % 1000000)};
    evtimer_add(deadline_timer_.get(), &tv);
}

void Session::on_read()
{
    // After our last word the client's bytes are only thrown away.
    if (lingering_ && bev_) {
        evbuffer* in = bufferevent_get_input(bev_.get());
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }

    // After STARTTLS, nothing is read as a command before the handshake
    // is done. A TLS 1.3 client may send its EHLO right behind its
    // Finished message, and libevent can report that data before the
    // CONNECTED event: the session must first start over (tls_ready),
    // or the reset would wipe out the EHLO that follows it.
    if (ssl_ != nullptr && !tls_active_) {
        if (SSL_is_init_finished(ssl_)) {
            tls_ready();
        }
        return;
    }

    // Content earns time: N bytes extend the deadline by
    // N/smtpd_min_data_rate seconds, never past smtpd_timeout from now.
    if (cfg_.per_request_deadline && bev_
        && (mode_ == Mode::data || mode_ == Mode::bdat_chunk)) {
        size_t now_len = evbuffer_get_length(bufferevent_get_input(bev_.get()));
        size_t fresh = now_len > input_left_ ? now_len - input_left_ : 0;
        auto now = std::chrono::steady_clock::now();
        deadline_ += std::chrono::microseconds(static_cast<int64_t>(fresh)
                                               * 1000000 / cfg_.min_data_rate);
        deadline_ =
            std::min(deadline_, now + std::chrono::seconds(cfg_.timeout));
    }
    process_input();
    if (bev_) {
        input_left_ = evbuffer_get_length(bufferevent_get_input(bev_.get()));
    }
}

void Session::on_write()
{
    // Our replies have left: finish a closing session, or take the
    // client's commands again after output backpressure.
    flush_batch();
    bufferevent* o = out();
    if (o == nullptr) {
        return;
    }
    if (mode_ == Mode::closing) {
        // The last reply may still be held by the error sleep: then the
        // output is empty but not finished (flush_delayed() comes back).
        if (sleeping_ || evbuffer_get_length(bufferevent_get_output(o)) != 0) {
            return;
        }

        // With TLS our output has only reached the filter: the plain
        // connection below may still hold the last reply. Look again
        // shortly, within the write timeout.
        bufferevent* under = bufferevent_get_underlying(o);
        if (under != nullptr
            && evbuffer_get_length(bufferevent_get_output(under)) != 0
            && flush_checks_++ < 100 * cfg_.timeout) {
            if (!flush_timer_) {
                flush_timer_.reset(evtimer_new(
                    env_.base,
                    [](evutil_socket_t, short, void* arg) noexcept {
                        static_cast<Session*>(arg)->on_write();
                    },
                    this));
            }
            timeval tv{0, 10000};
            evtimer_add(flush_timer_.get(), &tv);
            return;
        }
        linger();
        return;
    }
    if (out_paused_) {
        out_paused_ = false;
        pause_reading(false);
        process_input();
    }
}

void Session::linger()
{
    // Closing a socket with unread input makes the kernel send a reset,
    // and a reset can destroy our last reply (the 421 after too many
    // errors, say) before the client has read it. So we send our end of
    // file first and read and drop what the client still sends, until it
    // closes too or LINGER_MS passes.
    if (lingering_) {
        return;
    }
    if (info_.standalone_stdio || !bev_ || bufferevent_getfd(bev_.get()) < 0) {
        end_session();
        return;
    }
    lingering_ = true;
    int fd = bufferevent_getfd(bev_.get());
    if (!tls_active_ && ssl_ == nullptr) {
        ::shutdown(fd, SHUT_WR);
    }
    evbuffer* in = bufferevent_get_input(bev_.get());
    evbuffer_drain(in, evbuffer_get_length(in));
    linger_timer_.reset(evtimer_new(
        env_.base,
        [](evutil_socket_t, short, void* arg) noexcept {
            static_cast<Session*>(arg)->end_session();
        },
        this));
    if (!linger_timer_) {
        end_session();
        return;
    }
    timeval tv{LINGER_MS / 1000, (LINGER_MS % 1000) * 1000};
    evtimer_add(linger_timer_.get(), &tv);
    bufferevent_enable(bev_.get(), EV_READ);
}

void Session::on_event(short what)
{
    // The client went away after our last word: nothing to report.
    if (mode_ == Mode::closing || mode_ == Mode::closed) {
        end_session();
        return;
    }

    // TLS handshake done (unless on_read() saw it first).
    if (what & BEV_EVENT_CONNECTED) {
        if (!tls_active_) {
            tls_ready();
        }
        return;
    }

    // A failed TLS handshake: Postfix's two lines before the usual one.
    if (ssl_ != nullptr && !tls_active_ && bev_ && (what & BEV_EVENT_ERROR)) {
        log::info("SSL_accept error from {}: -1", namaddr_);
        while (unsigned long e = bufferevent_get_openssl_error(bev_.get())) {
            // libevent also queues plain errno values: not OpenSSL's.
            if (ERR_GET_LIB(e) == 0) {
                continue;
            }
            char buf[256];
            ERR_error_string_n(e, buf, sizeof(buf));
            log::warning("TLS library problem: {}", buf);
        }
    }

    // Timeouts get a 421 and a log line; other failures only the line.
    if (what & BEV_EVENT_TIMEOUT) {
        lost("timeout");
        return;
    }
    lost("lost connection");
}

void Session::lost(const char* reason)
{
    // Postfix names the stage: the command, or the content with its size
    // so far. A client that leaves right after its message was answered
    // did nothing wrong, and is not reported (a timeout there still is).
    bool timeout = std::strcmp(reason, "timeout") == 0;
    if (mode_ == Mode::data || mode_ == Mode::bdat_chunk) {
        int64_t n = txn_.receiver ? txn_.receiver->size() : 0;
        log::info("{} after {} ({} bytes) from {}", reason,
                  mode_ == Mode::data ? "DATA" : "BDAT", n, namaddr_);
    } else if (timeout || where_ != "END-OF-MESSAGE") {
        log::info("{} after {} from {}", reason, where_, namaddr_);
    }

    // The command in progress did not succeed.
    if (cmd_slot_ >= 0) {
        cmd_slot_ = -1;
    }
    resume_save();
    txn_.stream.reset();
    if (timeout && bev_) {
        reply("421 4.4.2 " + cfg_.myhostname + " Error: timeout exceeded");
        close_after_reply();
        return;
    }
    end_session();
}

std::string Session::pending_input(size_t max)
{
    // What the client sent beyond the current command: our buffer first,
    // then what the kernel holds (plain connections only).
    std::string out;
    if (!bev_) {
        return out;
    }
    evbuffer* in = bufferevent_get_input(bev_.get());
    size_t n = std::min(evbuffer_get_length(in), max);
    if (n > 0) {
        out.resize(n);
        evbuffer_copyout(in, out.data(), n);
        return out;
    }
    if (!tls_active_ && !info_.standalone_stdio) {
        char peek[128];
        ssize_t got =
            ::recv(bufferevent_getfd(bev_.get()), peek,
                   std::min(max, sizeof(peek)), MSG_PEEK | MSG_DONTWAIT);
        if (got > 0) {
            out.assign(peek, static_cast<size_t>(got));
        }
    }
    return out;
}

void Session::resume()
{
    // An asynchronous step is done: carry on with what the client sent.
    busy_ = false;
    if (mode_ == Mode::closing || mode_ == Mode::closed) {
        return;
    }
    process_input();
}

void Session::process_input()
{
    // Not re-entrant: a callback that completes while we are already
    // here only clears busy_, and the outer loop continues.
    if (in_process_ || !bev_) {
        return;
    }
    in_process_ = true;
    auto keep = shared_from_this();

    while (!busy_ && !sleeping_ && !paused_ && !out_paused_ && !replaying_) {
        if (mode_ == Mode::command) {
            // Too many errors: Postfix says so before the next command.
            if (error_count_ >= cfg_.hard_error_limit) {
                log::info("too many errors after {} from {}", where_, namaddr_);
                reply("421 4.7.0 " + cfg_.myhostname
                      + " Error: too many errors");
                close_after_reply();
                break;
            }
            std::string line;
            if (!read_line(line)) {
                break;
            }
            dispatch(std::move(line));
        } else if (mode_ == Mode::data) {
            if (!feed_data()) {
                break;
            }
        } else if (mode_ == Mode::bdat_chunk) {
            if (!feed_bdat()) {
                break;
            }
        } else {
            break;
        }
    }

    // Output the client does not read stops its input.
    in_process_ = false;
    flush_batch();
    bufferevent* o = out();
    if (o != nullptr && mode_ != Mode::closing && mode_ != Mode::closed
        && evbuffer_get_length(bufferevent_get_output(o)) > OUTPUT_HIGH_WATER) {
        out_paused_ = true;
    }
    pause_reading(false);
}

bool Session::read_line(std::string& line)
{
    evbuffer* in = bufferevent_get_input(bev_.get());
    for (;;) {
        size_t len = evbuffer_get_length(in);
        if (len == 0) {
            return false;
        }
        size_t eol_len = 0;
        evbuffer_ptr p =
            evbuffer_search_eol(in, nullptr, &eol_len, EVBUFFER_EOL_LF);

        // The tail of an over-long line is thrown away up to its end.
        if (skip_to_lf_) {
            if (p.pos < 0) {
                evbuffer_drain(in, len);
                return false;
            }
            evbuffer_drain(in, static_cast<size_t>(p.pos) + 1);
            skip_to_lf_ = false;
            continue;
        }

        // A line longer than line_length_limit is cut there, as Postfix
        // cuts it, and the command runs with what fits.
        size_t limit = cfg_.line_length_limit;
        if ((p.pos < 0 && len >= limit)
            || (p.pos >= 0 && static_cast<size_t>(p.pos) > limit)) {
            line.resize(limit);
            evbuffer_remove(in, line.data(), limit);
            if (p.pos >= 0) {
                evbuffer_drain(in, static_cast<size_t>(p.pos) + 1 - limit);
            } else {
                skip_to_lf_ = true;
            }
            log::warning("{}: request longer than {}: {}", namaddr_, limit,
                         request_head(line));
        } else if (p.pos < 0) {
            return false;
        } else {
            line.resize(static_cast<size_t>(p.pos));
            evbuffer_remove(in, line.data(), line.size());
            evbuffer_drain(in, 1);
        }

        // The CR of CR LF is not part of the command.
        while (!line.empty() && line.back() == '\r') {
            line.pop_back();
        }
        restart_deadline();
        return true;
    }
}

namespace {

// How a command takes part in pipelining and junk counting.
constexpr unsigned CMD_LAST = 1; // must end a pipelined group
constexpr unsigned CMD_JUNK = 2; // counts toward smtpd_junk_command_limit

struct CmdInfo {
    std::string_view name;
    unsigned flags;
};

constexpr CmdInfo commands[] = {
    {"HELO", CMD_LAST},
    {"EHLO", CMD_LAST},
    {"STARTTLS", 0}, // observed: Postfix does not log pipelining here
    {"MAIL", 0},
    {"RCPT", 0},
    {"DATA", CMD_LAST},
    {"BDAT", 0},
    {"RSET", CMD_JUNK},
    {"NOOP", CMD_LAST | CMD_JUNK},
    {"VRFY", CMD_LAST | CMD_JUNK},
    {"ETRN", CMD_JUNK},
    {"QUIT", 0},
    {"AUTH", 0},
    {"XCLIENT", 0},
    {"XFORWARD", 0},
    {"XRESUME", 0},
};

std::vector<std::string> split_words(std::string_view s)
{
    return text::split(s, " \t");
}

} // namespace

// Well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing
// above U+10FFFF. ASCII, NUL included, is valid.
static bool valid_utf8(std::string_view s)
{
    size_t i = 0;
    while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + n >= s.size()) {
            return false;
        }
        for (size_t k = 1; k <= n; k++) {
            auto d = static_cast<unsigned char>(s[i + k]);
            if ((d & 0xc0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (d & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff
            || (cp >= 0xd800 && cp <= 0xdfff)) {
            return false;
        }
        i += n + 1;
    }
    return true;
}

bool Session::forbidden(const std::string& verb) const
{
    // A message header sent as a command ("Subject: ...") means the
    // client is not speaking SMTP at all: Postfix hangs up on it too.
    size_t colon = verb.find(':');
    if (colon != std::string::npos && colon > 0
        && std::all_of(verb.begin(), verb.begin() + colon,
                       [](char c) { return c > ' ' && c < 127; })) {
        return true;
    }

    // smtpd_forbidden_commands names and patterns, matched against the
    // command name (the first word), as Postfix matches them.
    for (const auto& v : cfg_.forbidden_verbs) {
        if (text::iequals(v, verb)) {
            return true;
        }
    }
    for (const auto& re : cfg_.forbidden_patterns) {
        if (std::regex_search(verb, re)) {
            return true;
        }
    }
    return false;
}

void Session::dispatch(std::string line)
{
    // The verb is the first word, after any white space; the rest is for
    // the command. Postfix reads a command as a C string, so a NUL ends
    // it: what follows is not looked at (checked against Postfix 3.7).
    std::string_view cline(line.data(), std::min(line.find('\0'), line.size()));
    size_t vb = cline.find_first_not_of(" \t");
    size_t sp =
        vb == std::string_view::npos ? vb : cline.find_first_of(" \t", vb);
    std::string verb(vb == std::string_view::npos ? std::string_view()
                                                  : cline.substr(vb, sp - vb));
    std::string args(sp == std::string_view::npos ? std::string_view()
                                                  : cline.substr(sp));

    // With SMTPUTF8 on, a line that is not UTF-8 is refused before it is
    // parsed, as Postfix does: an error, but not a command of the
    // disconnect line, and the session goes on.
    if (cfg_.smtputf8_enable && !valid_utf8(line)) {
        where_ = "UNKNOWN";
        cmd_slot_ = -1;
        reply("500 5.5.2 Error: bad UTF-8 syntax");
        finish_cmd(false);
        return;
    }

    // An empty line is an error of its own; Postfix counts it toward
    // the error limits but not among the commands of the disconnect line.
    if (text::trim(cline).empty()) {
        where_ = "UNKNOWN";
        cmd_slot_ = -1;
        unknown_cmd(true);
        return;
    }

    const CmdInfo* cmd = nullptr;
    for (const auto& c : commands) {
        if (text::iequals(c.name, verb)) {
            cmd = &c;
            break;
        }
    }

    // Known ways other protocols start (HTTP through a proxy, say):
    // Postfix hangs up on them. Only an unknown verb can be one.
    if (cmd == nullptr && forbidden(verb)) {
        where_ = "UNKNOWN";
        counters_.started("unknown");
        log::warning("non-SMTP command from {}: {}", namaddr_,
                     text::printable(line));
        reply("221 2.7.0 Error: I can break rules, too. Goodbye.");
        close_after_reply();
        return;
    }
    if (cmd == nullptr) {
        where_ = "UNKNOWN";
        cmd_slot_ = counters_.started("unknown");
        unknown_cmd(false);
        return;
    }

    // A command that must end a pipelined group, with more already sent
    // behind it: the client does not wait for our replies. Logged once.
    if ((cmd->flags & CMD_LAST) && !pipelining_logged_) {
        std::string more = pending_input(100);
        if (!more.empty()) {
            pipelining_logged_ = true;
            log::info("improper command pipelining after {} from {}: {}",
                      cmd->name, namaddr_, escape_for_log(more, 100));
        }
    }

    // Junk commands beyond the limit count as errors.
    if ((cmd->flags & CMD_JUNK) && junk_count_++ >= cfg_.junk_command_limit) {
        error_count_++;
    }

    where_ = std::string(cmd->name);
    cmd_slot_ = counters_.started(cmd->name);
    auto argv = split_words(cline);
    std::string_view name = cmd->name;

    // smtpd_tls_security_level=encrypt: before STARTTLS only greeting,
    // STARTTLS itself, NOOP and QUIT (BDAT decides itself, so that its
    // chunk is still consumed).
    if (need_tls() && name != "HELO" && name != "EHLO" && name != "STARTTLS"
        && name != "NOOP" && name != "QUIT" && name != "BDAT") {
        reply("530 5.7.0 Must issue a STARTTLS command first");
        finish_cmd(false);
        return;
    }
    if (name == "HELO" || name == "EHLO") {
        helo_cmd(argv, name == "EHLO");
    } else if (name == "STARTTLS") {
        starttls_cmd(argv);
    } else if (name == "MAIL") {
        mail_cmd(args);
    } else if (name == "RCPT") {
        rcpt_cmd(args);
    } else if (name == "DATA") {
        data_cmd(args);
    } else if (name == "BDAT") {
        bdat_cmd(argv);
    } else if (name == "RSET") {
        rset_cmd(argv);
    } else if (name == "NOOP") {
        noop_cmd();
    } else if (name == "VRFY") {
        vrfy_cmd(argv);
    } else if (name == "ETRN") {
        etrn_cmd(argv);
    } else if (name == "QUIT") {
        quit_cmd();
    } else if (name == "XRESUME") {
        xresume_cmd(argv, std::string(cline));
    } else if (name == "AUTH") {
        // No SASL yet: Postfix's answer when smtpd_sasl_auth_enable=no.
        reply("503 5.5.1 Error: authentication not enabled");
        finish_cmd(false);
    } else {
        // XCLIENT/XFORWARD: no client is authorized for them yet.
        reply("550 5.7.0 Error: insufficient authorization");
        finish_cmd(false);
    }
}

void Session::reply(std::string text)
{
    if (mode_ == Mode::closed || out() == nullptr) {
        return;
    }

    // soft_bounce: nothing we say is permanent.
    if (cfg_.soft_bounce) {
        text = soft_bounce_reply(text);
    }
    text += "\r\n";

    // Past smtpd_soft_error_limit, every reply (not only the errors, as
    // observed in Postfix 3.7) waits smtpd_error_sleep_time first; a
    // timer, so other sessions go on. Replies behind a held one wait
    // with it, to keep their order.
    bool hold =
        sleeping_
        || (cfg_.error_sleep_ms > 0 && error_count_ >= cfg_.soft_error_limit);
    if (hold) {
        delayed_ += text;
        if (!sleeping_) {
            sleeping_ = true;
            if (!sleep_timer_) {
                sleep_timer_.reset(evtimer_new(
                    env_.base,
                    [](evutil_socket_t, short, void* arg) noexcept {
                        static_cast<Session*>(arg)->flush_delayed();
                    },
                    this));
            }
            timeval tv{cfg_.error_sleep_ms / 1000,
                       (cfg_.error_sleep_ms % 1000) * 1000};
            evtimer_add(sleep_timer_.get(), &tv);
            pause_reading(false);
        }
        return;
    }
    send_out(text);
}

void Session::send_out(const std::string& text)
{
    // Replies to pipelined commands leave together at the end of the
    // pass (flush_batch), as one write; any other reply leaves now.
    batch_ += text;
    if (!in_process_) {
        flush_batch();
    }
}

void Session::flush_batch()
{
    // Whatever changes the connection (STARTTLS, closing, checking for
    // output backlog) comes here first, so that no reply is left behind
    // or sent through the wrong layer.
    if (batch_.empty()) {
        return;
    }
    std::string text = std::move(batch_);
    batch_.clear();
    bufferevent* o = out();
    if (o == nullptr || mode_ == Mode::closed) {
        return;
    }
    if (ssl_ == nullptr && !out_bev_) {
        write_now(o, text.data(), text.size());
    } else {
        bufferevent_write(o, text.data(), text.size());
    }
}

void Session::flush_delayed()
{
    // The error sleep is over: say what was held, then read on.
    auto keep = shared_from_this();
    sleeping_ = false;
    std::string text = std::move(delayed_);
    delayed_.clear();
    if (out() != nullptr && mode_ != Mode::closed) {
        send_out(text);
    }
    if (mode_ == Mode::closing) {
        on_write();
        return;
    }
    process_input();
}

void Session::finish_cmd(bool ok)
{
    // One result per command, for the disconnect line and error limits.
    if (ok) {
        counters_.succeeded(cmd_slot_);
    } else {
        error_count_++;
    }
    cmd_slot_ = -1;
}

void Session::close_after_reply()
{
    // Stop reading; leave when the last reply is out.
    flush_batch();
    mode_ = Mode::closing;
    pause_reading(false);
    arm_timeouts();
    if (sleeping_) {
        return;
    }
    bufferevent* o = out();
    if (o == nullptr) {
        end_session();
        return;
    }
    on_write();
}

void Session::end_session()
{
    if (mode_ == Mode::closed) {
        return;
    }
    mode_ = Mode::closed;

    // Postfix's last line of a session, with its command counters.
    log::info("disconnect from {}{}", namaddr_, counters_.summary());

    // Let go of everything: cleanup first (without E it drops the
    // file), then the connection.
    txn_.stream.reset();
    if (sleep_timer_) {
        evtimer_del(sleep_timer_.get());
    }
    if (flush_timer_) {
        evtimer_del(flush_timer_.get());
    }
    if (linger_timer_) {
        evtimer_del(linger_timer_.get());
    }
    if (deadline_timer_) {
        evtimer_del(deadline_timer_.get());
    }
    if (resume_timer_) {
        event_del(resume_timer_.get());
    }
    out_bev_.reset();
    bev_.reset();

    if (!done_called_) {
        done_called_ = true;
        if (env_.done) {
            env_.done();
        }
    }

    // Free ourselves from the loop, not from inside our own callback.
    auto* holder = new std::shared_ptr<Session>(std::move(self_));
    timeval zero{0, 0};
    if (event_base_once(
            env_.base, -1, EV_TIMEOUT,
            [](evutil_socket_t, short, void* arg) noexcept {
                delete static_cast<std::shared_ptr<Session>*>(arg);
            },
            holder, &zero)
        != 0) {
        // Without a loop to do it later, the caller's reference (if any)
        // is the last one; dropping ours now is the only option.
        delete holder;
    }
}

std::string Session::proto_name() const
{
    return esmtp_ ? "ESMTP" : "SMTP";
}

BareNewline Session::bare_newline_mode() const
{
    // An excluded client is treated as with "no".
    if (cfg_.bare_newline != BareNewline::allow && cfg_.bare_newline_exclusions
        && cfg_.bare_newline_exclusions->match(addr_)) {
        return BareNewline::allow;
    }
    return cfg_.bare_newline;
}

std::string Session::qid_or_noqueue() const
{
    return txn_.queue_id.empty() ? "NOQUEUE" : txn_.queue_id;
}

std::string Session::log_reject(const std::string& where,
                                const std::string& text, bool with_rcpt,
                                const std::string& rcpt_ext)
{
    // "<ID>: reject: <where> from <namaddr>: <reply>; from=<> to=<>
    // proto= helo=<>", each part only when known.
    // The log says what the client was told, soft_bounce included.
    std::string said = cfg_.soft_bounce ? soft_bounce_reply(text) : text;
    size_t max = cfg_.line_length_limit;
    std::string line =
        fmt::format("{}: reject: {} from {}: {};", qid_or_noqueue(), where,
                    namaddr_, text::printable(said, max));
    if (txn_.active) {
        line +=
            fmt::format(" from=<{}>", text::printable(txn_.sender_ext, max));
    }
    if (with_rcpt) {
        line += fmt::format(" to=<{}>", text::printable(rcpt_ext, max));
    }
    line += " proto=" + proto_name();
    if (!helo_.empty()) {
        line += fmt::format(" helo=<{}>", helo_);
    }
    log::info("{}", line);
    return line;
}

std::string Session::rewrite_context() const
{
    // local_header_rewrite_clients decides whether cleanup may treat the
    // headers as ours (add Date:, Message-ID:, rewrite addresses).
    if (cfg_.rewrite_all) {
        return "local";
    }
    if (cfg_.rewrite_mynetworks && env_.relay != nullptr
        && env_.relay->in_mynetworks(addr_)) {
        return "local";
    }
    if (cfg_.rewrite_inet_interfaces
        && std::find(cfg_.inet_addresses.begin(), cfg_.inet_addresses.end(),
                     addr_)
               != cfg_.inet_addresses.end()) {
        return "local";
    }
    return "remote";
}

cleanup::Envelope Session::make_envelope() const
{
    // Postfix sends "unknown" for what it does not know, never "".
    auto known = [](const std::string& s) {
        return s.empty() ? std::string("unknown") : s;
    };
    cleanup::Envelope e;
    e.flags =
        cfg_.cleanup_flags | (txn_.smtputf8 ? cleanup::FLAG_SMTPUTF8 : 0u);
    e.arrival_sec = txn_.arrival_sec;
    e.arrival_usec = txn_.arrival_usec;
    e.content_filter = cfg_.content_filter;
    e.rewrite_context = rewrite_context();
    e.envelope_id = txn_.envid;
    e.ret_flags = txn_.ret_flags;
    e.sender = txn_.sender;
    e.encoding = txn_.encoding;
    e.log_client_name = known(name_);
    e.log_client_address = known(rfc_addr_);
    e.log_client_port = known(info_.client_port);
    e.log_message_origin = namaddr_;
    e.log_helo_name = helo_;
    e.log_protocol_name = proto_name();
    e.client_name = known(name_);
    e.reverse_client_name = known(reverse_name_);
    e.client_address = known(addr_);
    e.client_port = known(info_.client_port);
    e.server_address = known(info_.server_addr);
    e.server_port = known(info_.server_port);
    e.helo_name = helo_;
    e.protocol_name = proto_name();
    e.client_address_type = info_.family;
    return e;
}

void Session::mail_reset()
{
    // A transaction ends: closing the stream without E makes cleanup
    // drop whatever it had.
    if (txn_.stream) {
        txn_.stream->abort();
    }
    txn_ = Txn{};
}

bool Session::need_tls() const
{
    return cfg_.tls_level == "encrypt" && !tls_active_;
}

} // namespace rs::smtpd
