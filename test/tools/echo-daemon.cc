// SPDX-License-Identifier: MIT
// NAME
//   echo-daemon - a trivial line service on the master(8) child skeleton
// SYNOPSIS
//   echo-daemon [master(8) options]       (from master.cf)
//   echo-daemon -S                        (one session on stdin/stdout)
//   echo-daemon -L 127.0.0.1:2600         (stand-alone listener)
// DESCRIPTION
//   Lets the skeleton (common/mail/master.h) be tested under a real
//   master(8) before smtpd exists. Each session gets the banner
//   "220 echo pid=<pid> sessions=<n>" and then, per CRLF- or LF-ended
//   line (case-insensitive commands):
//     QUIT   "221 bye", and the session closes
//     SLEEP  "250 sleeping": nothing else happens, the session simply
//            stays open until the client speaks again or goes away
//     INFO   "250 client=A:P server=S:Q family=F pid=N draining=D"
//     other  "250 " and the line, echoed
//   A line longer than kMaxLine bytes gets "500 line too long" and the
//   session closes.
// SEE ALSO
//   test/integration/test_master.py, common/mail/master.h
#include "common/mail/config.h"
#include "common/mail/log.h"
#include "common/mail/master.h"
#include "common/util/event.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <fmt/format.h>
#include <string>
#include <unistd.h>

namespace {

using rs::mail::ConnInfo;
using rs::mail::Server;

// The longest request line we buffer, as smtpd's line_length_limit bounds
// what a client may make it hold.
constexpr size_t kMaxLine = 2048;

struct Session {
    Server* server = nullptr;
    bufferevent* in = nullptr; // the client; with -S, only its input
    ConnInfo info;
    bool closing = false;
};

void close_session(Session* s)
{
    bufferevent_free(s->in);
    Server* server = s->server;
    delete s;
    server->session_done();
}

void reply(Session* s, const std::string& text)
{
    std::string line = text + "\r\n";

    // stdout under -S may be a file or a terminal, which libevent cannot
    // watch: write it directly; this is a test tool.
    if (s->info.standalone_stdio) {
        if (write(STDOUT_FILENO, line.data(), line.size()) < 0) {
            rs::log::warning("write stdout: {}", std::strerror(errno));
        }
        return;
    }
    bufferevent_write(s->in, line.data(), line.size());
}

// Close once the last reply has left (QUIT, overlong line).
void write_cb(bufferevent*, void* arg) noexcept
{
    auto* s = static_cast<Session*>(arg);
    if (s->closing) {
        close_session(s);
    }
}

void close_after_reply(Session* s, const std::string& text)
{
    reply(s, text);
    s->closing = true;
    bufferevent_disable(s->in, EV_READ);
    if (s->info.standalone_stdio
        || evbuffer_get_length(bufferevent_get_output(s->in)) == 0) {
        close_session(s);
    }
}

void read_cb(bufferevent*, void* arg) noexcept
{
    auto* s = static_cast<Session*>(arg);
    evbuffer* input = bufferevent_get_input(s->in);
    for (;;) {
        size_t len = 0;
        char* raw = evbuffer_readln(input, &len, EVBUFFER_EOL_CRLF);
        if (!raw) {
            // No whole line yet; refuse to buffer more than the limit.
            if (evbuffer_get_length(input) > kMaxLine) {
                close_after_reply(s, "500 line too long");
            }
            return; // s may be gone
        }
        std::string line(raw, len);
        free(raw);
        if (line.size() > kMaxLine) {
            close_after_reply(s, "500 line too long");
            return;
        }
        std::string cmd;
        for (char c : line) {
            cmd += static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
        }
        if (cmd == "QUIT") {
            close_after_reply(s, "221 bye");
            return; // s may be gone
        } else if (cmd == "SLEEP") {
            reply(s, "250 sleeping");
        } else if (cmd == "INFO") {
            reply(s, fmt::format("250 client={}:{} server={}:{} family={} "
                                 "pid={} draining={}",
                                 s->info.client_addr, s->info.client_port,
                                 s->info.server_addr, s->info.server_port,
                                 s->info.family, getpid(),
                                 s->server->draining() ? 1 : 0));
        } else {
            reply(s, "250 " + line);
        }
    }
}

// EOF or an error from the client: the session is over.
void event_cb(bufferevent*, short what, void* arg) noexcept
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        close_session(static_cast<Session*>(arg));
    }
}

void start_session(event_base* base, Server* server, rs::Fd fd, ConnInfo info)
{
    auto* s = new Session;
    s->server = server;
    s->info = std::move(info);

    // The bufferevent owns the client descriptor from here on.
    s->in = bufferevent_socket_new(base, fd.release(), BEV_OPT_CLOSE_ON_FREE);
    if (!s->in) {
        rs::log::fatal("bufferevent_socket_new failed");
    }
    bufferevent_setcb(s->in, read_cb, write_cb, event_cb, s);
    bufferevent_enable(s->in, EV_READ | EV_WRITE);
    // One log line per session, so that the tests see logging work
    // from a process that has dropped its privileges.
    rs::log::info("connect from {}:{}", s->info.client_addr,
                  s->info.client_port);
    reply(s, fmt::format("220 echo pid={} sessions={}", getpid(),
                         server->sessions()));
}

} // namespace

int main(int argc, char** argv)
{
    // Log as ourselves until main.cf names the syslog_name.
    rs::log::init("echo-daemon");

    auto opt = rs::mail::parse_master_args(argc, argv);
    if (!opt) {
        rs::log::fatal("{}", opt.error().text);
    }
    rs::log::set_stderr(opt->log_stderr);
    rs::log::set_verbose(opt->verbose + (std::getenv("MAIL_VERBOSE") ? 1 : 0));

    // main.cf and -o, then logging as configured there.
    rs::mail::Config config;
    rs::mail::read_master_config(config, *opt);
    rs::log::configure(config);

    rs::EventBasePtr base(event_base_new());
    if (!base) {
        rs::log::fatal("event_base_new failed");
    }
    Server* server = nullptr;
    Server::Hooks hooks;
    hooks.on_session = [&](rs::Fd fd, ConnInfo info) {
        start_session(base.get(), server, std::move(fd), std::move(info));
    };
    Server s(base.get(), *opt, config, std::move(hooks));
    server = &s;
    return s.run();
}
