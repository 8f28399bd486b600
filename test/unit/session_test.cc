// SPDX-License-Identifier: MIT
// Unit tests for smtpd/session: dialogues over a socketpair, without
// cleanup or relay control (those are covered against a real Postfix in
// test/integration/test_session.py).
#include "smtpd/session.h"
#include "test/unit/catch.h"

#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace rs;
using namespace rs::smtpd;

namespace {

// One session on one end of a socketpair; the test is the client.
struct Harness {
    EventBasePtr base{event_base_new()};
    SessionSettings settings;
    int client = -1;
    int done_calls = 0;
    std::string buf;
    bool closed = false;

    explicit Harness(SessionSettings s = test_settings()) : settings(s) {}
    ~Harness()
    {
        if (client >= 0) {
            ::close(client);
        }
        // Let the session see the close and free itself.
        for (int i = 0; i < 20; ++i) {
            event_base_loop(base.get(), EVLOOP_NONBLOCK);
        }
    }

    static SessionSettings test_settings()
    {
        SessionSettings s;
        s.myhostname = "mx.test";
        s.banner = "mx.test ESMTP Postfix";
        s.error_sleep_ms = 0;
        s.message_size_limit = 10240000;
        return s;
    }

    void start()
    {
        int sv[2];
        REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        client = sv[1];
        fcntl(client, F_SETFL, O_NONBLOCK);
        Session::set_lookup_override([] { return std::string("localhost"); });
        SessionEnv env;
        env.base = base.get();
        env.settings = &settings;
        env.done = [this] { done_calls++; };
        mail::ConnInfo info;
        info.client_addr = "127.0.0.1";
        info.client_port = "40000";
        info.server_addr = "127.0.0.1";
        info.server_port = "25";
        info.family = AF_INET;
        Session::start(std::move(env), Fd(sv[0]), info);
    }

    void send(std::string_view s)
    {
        REQUIRE(::write(client, s.data(), s.size())
                == static_cast<ssize_t>(s.size()));
    }

    // Run the loop until a complete reply is buffered; its lines.
    std::vector<std::string> reply(int ms = 2000)
    {
        auto end =
            std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        for (;;) {
            // A complete reply: lines up to one with "ddd ".
            std::vector<std::string> lines;
            size_t pos = 0;
            for (;;) {
                size_t nl = buf.find("\r\n", pos);
                if (nl == std::string::npos) {
                    break;
                }
                std::string line = buf.substr(pos, nl - pos);
                lines.push_back(line);
                pos = nl + 2;
                if (line.size() < 4 || line[3] != '-') {
                    buf.erase(0, pos);
                    return lines;
                }
            }
            if (std::chrono::steady_clock::now() > end || closed) {
                return {};
            }
            event_base_loop(base.get(), EVLOOP_NONBLOCK);
            char tmp[4096];
            ssize_t n = ::read(client, tmp, sizeof(tmp));
            if (n > 0) {
                buf.append(tmp, static_cast<size_t>(n));
            } else if (n == 0) {
                closed = true;
            } else {
                pollfd p{client, POLLIN, 0};
                poll(&p, 1, 5);
            }
        }
    }

    std::string line(int ms = 2000)
    {
        auto r = reply(ms);
        return r.empty() ? "<none>" : r.back();
    }

    // Wait for the server to close its end.
    bool wait_closed(int ms = 2000)
    {
        auto end =
            std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        while (!closed && std::chrono::steady_clock::now() < end) {
            reply(10);
        }
        return closed;
    }
};

} // namespace

TEST_CASE("smtpd: the greeting is 220 and smtpd_banner")
{
    Harness h;
    h.start();
    CHECK(h.line() == "220 mx.test ESMTP Postfix");
}

TEST_CASE("smtpd: EHLO lists Postfix's keywords in order, ETRN after VRFY")
{
    Harness h;
    h.start();
    h.line();
    h.send("EHLO client.test\r\n");
    auto r = h.reply();
    std::vector<std::string> want = {
        "250-mx.test",  "250-PIPELINING", "250-SIZE 10240000",
        "250-VRFY",     "250-ETRN",       "250-ENHANCEDSTATUSCODES",
        "250-8BITMIME", "250-DSN",        "250-SMTPUTF8",
        "250 CHUNKING"};
    CHECK(r == want);
}

TEST_CASE("smtpd: smtpd_discard_ehlo_keywords and disable_vrfy_command "
          "remove keywords")
{
    auto s = Harness::test_settings();
    s.discard_ehlo = {"pipelining", "chunking"};
    s.disable_vrfy = true;
    Harness h(s);
    h.start();
    h.line();
    h.send("EHLO client.test\r\n");
    auto r = h.reply();
    std::vector<std::string> want = {"250-mx.test",  "250-SIZE 10240000",
                                     "250-ETRN",     "250-ENHANCEDSTATUSCODES",
                                     "250-8BITMIME", "250-DSN",
                                     "250 SMTPUTF8"};
    CHECK(r == want);
    h.send("VRFY a\r\n");
    CHECK(h.line() == "502 5.5.1 VRFY command is disabled");
}

TEST_CASE("smtpd: HELO replies with myhostname, or 501 without a name")
{
    Harness h;
    h.start();
    h.line();
    h.send("HELO\r\n");
    CHECK(h.line() == "501 Syntax: HELO hostname");
    h.send("HELO client.test\r\n");
    CHECK(h.line() == "250 mx.test");
}

TEST_CASE("smtpd: sequence errors get Postfix's 503 replies")
{
    Harness h;
    h.start();
    h.line();
    h.send("RCPT TO:<a@b>\r\n");
    CHECK(h.line() == "503 5.5.1 Error: need MAIL command");
    h.send("DATA\r\n");
    CHECK(h.line() == "503 5.5.1 Error: need RCPT command");
    h.send("FOO\r\n");
    CHECK(h.line() == "500 5.5.2 Error: command not recognized");
    h.send("\r\n");
    CHECK(h.line() == "500 5.5.2 Error: bad syntax");
    h.send("RSET x\r\n");
    CHECK(h.line() == "501 5.5.4 Syntax: RSET");
    h.send("NOOP\r\n");
    CHECK(h.line() == "250 2.0.0 Ok");
    // VRFY checks the address as RCPT would; without relay control
    // (none in this harness) it is refused as RCPT is.
    h.send("VRFY <someone>\r\n");
    CHECK(h.line() == "451 4.3.5 Server configuration error");
    h.send("ETRN example.com\r\n");
    CHECK(h.line() == "459 <example.com>: service unavailable");
}

TEST_CASE("smtpd: pipelined commands are all answered, in order")
{
    Harness h;
    h.start();
    h.line();
    h.send("NOOP\r\nFOO\r\nNOOP\r\n");
    CHECK(h.line() == "250 2.0.0 Ok");
    CHECK(h.line() == "500 5.5.2 Error: command not recognized");
    CHECK(h.line() == "250 2.0.0 Ok");
}

TEST_CASE("smtpd: QUIT says 221 Bye, closes, and ends the session once")
{
    Harness h;
    h.start();
    h.line();
    h.send("QUIT\r\n");
    CHECK(h.line() == "221 2.0.0 Bye");
    CHECK(h.wait_closed());
    // The session lingers (at most 2 s) for the client to close too, so
    // that unread input cannot reset the connection under our last reply.
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (h.done_calls == 0 && std::chrono::steady_clock::now() < end) {
        event_base_loop(h.base.get(), EVLOOP_NONBLOCK);
        poll(nullptr, 0, 10);
    }
    for (int i = 0; i < 10; ++i) {
        event_base_loop(h.base.get(), EVLOOP_NONBLOCK);
    }
    CHECK(h.done_calls == 1);
}

TEST_CASE("smtpd: an HTTP request line is refused with 221 2.7.0")
{
    Harness h;
    h.start();
    h.line();
    h.send("GET / HTTP/1.0\r\n");
    CHECK(h.line() == "221 2.7.0 Error: I can break rules, too. Goodbye.");
    CHECK(h.wait_closed());
}

TEST_CASE("smtpd: BDAT without recipients still consumes its chunk")
{
    Harness h;
    h.start();
    h.line();
    // The chunk holds text that would be a command if it were read as one.
    h.send("BDAT 6\r\nQUIT\r\nNOOP\r\n");
    CHECK(h.line() == "503 5.5.1 Error: need RCPT command");
    CHECK(h.line() == "250 2.0.0 Ok");
    h.send("BDAT 2 LAST\r\nxx");
    CHECK(h.line() == "551 5.0.0 Discarded 2 bytes after earlier error");
    h.send("BDAT x\r\n");
    CHECK(h.line() == "521 5.5.4 Syntax: BDAT count [LAST]");
    CHECK(h.wait_closed());
}

TEST_CASE("smtpd: the hard error limit ends the session with 421")
{
    auto s = Harness::test_settings();
    s.hard_error_limit = 3;
    Harness h(s);
    h.start();
    h.line();
    h.send("A\r\nB\r\nC\r\nD\r\n");
    CHECK(h.line() == "500 5.5.2 Error: command not recognized");
    CHECK(h.line() == "500 5.5.2 Error: command not recognized");
    CHECK(h.line() == "500 5.5.2 Error: command not recognized");
    CHECK(h.line() == "421 4.7.0 mx.test Error: too many errors");
    CHECK(h.wait_closed());
}

TEST_CASE("smtpd: past the soft limit replies wait smtpd_error_sleep_time")
{
    auto s = Harness::test_settings();
    s.soft_error_limit = 1;
    s.error_sleep_ms = 300;
    Harness h(s);
    h.start();
    h.line();
    h.send("A\r\n");
    CHECK(h.line() == "500 5.5.2 Error: command not recognized");
    auto t0 = std::chrono::steady_clock::now();
    h.send("NOOP\r\n");
    CHECK(h.line() == "250 2.0.0 Ok");
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - t0)
                  .count();
    CHECK(ms >= 250);
}

TEST_CASE("smtpd: soft_bounce makes permanent replies temporary")
{
    auto s = Harness::test_settings();
    s.soft_bounce = true;
    Harness h(s);
    h.start();
    h.line();
    h.send("FOO\r\n");
    CHECK(h.line() == "400 4.5.2 Error: command not recognized");
}

TEST_CASE("smtpd: a command longer than line_length_limit is cut there")
{
    auto s = Harness::test_settings();
    s.line_length_limit = 64;
    Harness h(s);
    h.start();
    h.line();
    // One NOOP, however long: the rest of the line is not a command.
    h.send("NOOP " + std::string(500, 'a') + "\r\nNOOP\r\n");
    CHECK(h.line() == "250 2.0.0 Ok");
    CHECK(h.line() == "250 2.0.0 Ok");
    CHECK(h.line(300) == "<none>");
}

TEST_CASE("smtpd: MAIL parameters are checked with Postfix's replies")
{
    Harness h;
    h.start();
    h.line();
    h.send("EHLO c\r\n");
    h.reply();
    h.send("MAIL FROM:<a@b> SIZE=abc\r\n");
    CHECK(h.line() == "501 5.5.4 Bad message size syntax");
    h.send("MAIL FROM:<a@b> SIZE=99999999999\r\n");
    CHECK(h.line() == "552 5.3.4 Message size exceeds fixed limit");
    h.send("MAIL FROM:<a@b> FOO=bar\r\n");
    CHECK(h.line() == "555 5.5.4 Unsupported option: FOO=bar");
    h.send("MAIL FROM:<a@b> BODY=8BITMIME\r\n");
    CHECK(h.line() == "250 2.1.0 Ok");
    h.send("MAIL FROM:<a@b>\r\n");
    CHECK(h.line() == "503 5.5.1 Error: nested MAIL command");
}

TEST_CASE("smtpd: without relay control every RCPT is refused")
{
    Harness h;
    h.start();
    h.line();
    h.send("MAIL FROM:<a@b>\r\n");
    CHECK(h.line() == "250 2.1.0 Ok");
    h.send("RCPT TO:<c@d>\r\n");
    CHECK(h.line() == "451 4.3.5 Server configuration error");
}

TEST_CASE("smtpd: STARTTLS is not implemented when TLS is not offered")
{
    Harness h;
    h.start();
    h.line();
    h.send("STARTTLS\r\n");
    CHECK(h.line() == "502 5.5.1 Error: command not implemented");
}

TEST_CASE("smtpd: smtpd_tls_security_level=encrypt wants STARTTLS first")
{
    auto s = Harness::test_settings();
    s.tls_level = "encrypt";
    Harness h(s);
    h.start();
    h.line();
    h.send("MAIL FROM:<a@b>\r\n");
    CHECK(h.line() == "530 5.7.0 Must issue a STARTTLS command first");
}

TEST_CASE("smtpd: an idle client gets 421 4.4.2 after smtpd_timeout")
{
    auto s = Harness::test_settings();
    s.timeout = 1;
    Harness h(s);
    h.start();
    h.line();
    CHECK(h.line(3000) == "421 4.4.2 mx.test Error: timeout exceeded");
    CHECK(h.wait_closed());
}

TEST_CASE("smtpd: with smtpd_per_request_deadline a trickled command "
          "times out")
{
    auto s = Harness::test_settings();
    s.timeout = 1;
    s.per_request_deadline = true;
    Harness h(s);
    h.start();
    h.line();
    // Each byte comes well within the timeout; the whole line does not.
    h.send("N");
    CHECK(h.line(400) == "<none>");
    h.send("O");
    CHECK(h.line(400) == "<none>");
    h.send("O");
    CHECK(h.line(400) == "421 4.4.2 mx.test Error: timeout exceeded");
}

TEST_CASE("smtpd: without a deadline a trickled command is answered")
{
    auto s = Harness::test_settings();
    s.timeout = 1;
    Harness h(s);
    h.start();
    h.line();
    h.send("NO");
    CHECK(h.line(600) == "<none>");
    h.send("OP");
    CHECK(h.line(600) == "<none>");
    h.send("\r\n");
    CHECK(h.line() == "250 2.0.0 Ok");
}

TEST_CASE("smtpd: a client that reads no replies is throttled, not lost")
{
    signal(SIGPIPE, SIG_IGN);
    Harness h;
    h.start();
    h.line();
    // Far more replies than any socket buffer holds: the session must
    // stop reading while they pile up, and answer every one in the end.
    const int n = 60000;
    std::string all;
    for (int i = 0; i < n; ++i) {
        all += "HELO x\r\n"; // not a junk command: no error limit
    }
    size_t sent = 0;
    int replies = 0;
    bool stalled = false;
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (replies < n && std::chrono::steady_clock::now() < end) {
        if (sent < all.size()) {
            ssize_t w = ::write(h.client, all.data() + sent,
                                std::min<size_t>(65536, all.size() - sent));
            stalled = w <= 0;
            if (w > 0) {
                sent += static_cast<size_t>(w);
            }
        }
        // Read only when the server stops taking our bytes, so that
        // replies pile up first.
        bool blocked = sent < all.size() && stalled;
        if (sent == all.size() || blocked) {
            for (int k = 0; k < 1000; ++k) {
                if (h.reply(20).empty()) {
                    break;
                }
                replies++;
            }
        } else {
            event_base_loop(h.base.get(), EVLOOP_NONBLOCK);
        }
    }
    CHECK(replies == n);
}

TEST_CASE("smtpd: a line that is not UTF-8 gets 500 and the session goes on")
{
    // Observed on Postfix 3.7.11 with smtputf8_enable = yes: each such
    // line is refused, none counts as a command, none ends the session
    // (not even one shaped like a header, which would otherwise be taken
    // for a non-SMTP client).
    Harness h;
    h.start();
    h.line();
    h.send("\xff\xfe garbage\r\n");
    CHECK(h.line() == "500 5.5.2 Error: bad UTF-8 syntax");
    h.send("\x80"
           "abc: x\r\n");
    CHECK(h.line() == "500 5.5.2 Error: bad UTF-8 syntax");
    h.send("NOOP caf\xc3\xa9\r\n");
    CHECK(h.line() == "250 2.0.0 Ok");
    h.send("NOOP \xed\xa0\x80\r\n"); // a UTF-16 surrogate
    CHECK(h.line() == "500 5.5.2 Error: bad UTF-8 syntax");
}
