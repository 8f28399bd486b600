// SPDX-License-Identifier: MIT
// NAME
//   cleanup_test - the cleanup(8) client, replies and Received: header
// DESCRIPTION
//   reply_for_status() against the table and order of protocols doc
//   2.11; received_header() and mail_date() against the observed forms
//   of 2.12; and CleanupStream against a scripted peer on a UNIX socket
//   in a temporary directory: the exact bytes of a whole conversation,
//   strict handshake and reply parsing, and lost connections.
#include "cleanup-bridge/cleanup.h"

#include "common/util/event.h"
#include "test/unit/catch.h"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <optional>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

using namespace std::string_literals;
using namespace rs::cleanup;

// ---------------------------------------------------------------------
// reply_for_status

TEST_CASE("cleanup: status replies follow Postfix's table and order")
{
    struct Case {
        unsigned status;
        std::string reason;
        bool bdat;
        std::string want;
    };
    Case cases[] = {
        {0, "", false, "250 2.0.0 Ok: queued as 1B041A786D1"},
        {0, "", true, "250 2.0.0 Ok: 1234 bytes queued as 1B041A786D1"},
        {STAT_BARE_LF | STAT_SIZE, "", false,
         "521 5.5.2 mx.example.test Error: bare <LF> received"},
        {STAT_CONT, "550 5.7.1 milter says no", false,
         "550 5.7.1 milter says no"},
        {STAT_DEFER, "4.7.1 try later", false, "451 4.7.1 try later"},
        {STAT_DEFER, "", false, "451 4.7.1 Error: service unavailable"},
        {STAT_DEFER | STAT_BAD, "", false,
         "451 4.7.1 Error: service unavailable"},
        {STAT_BAD, "", false, "451 4.3.0 Error: internal error 1"},
        {STAT_BAD | STAT_SIZE, "", false, "451 4.3.0 Error: internal error 5"},
        {STAT_SIZE, "", false, "552 5.3.4 Error: message file too big"},
        {STAT_SIZE | STAT_HOPS, "", false,
         "552 5.3.4 Error: message file too big"},
        {STAT_HOPS, "", false, "554 5.4.0 Error: too many hops"},
        {STAT_HOPS | STAT_CONT, "", false, "554 5.4.0 Error: too many hops"},
        {STAT_CONT, "5.7.1 body says no", false, "550 5.7.1 body says no"},
        {STAT_CONT, "", false, "550 5.7.1 Error: message content rejected"},
        {STAT_WRITE, "", false, "451 4.3.0 Error: queue file write error"},
        {STAT_RCPT, "", false, "451 4.3.0 Error: internal error 64"},
        {STAT_NOPERM, "5.7.1 denied", false,
         "451 4.3.0 Error: internal error 512"},
        {STAT_PROXY, "", false, "451 4.3.0 Error: internal error 128"},
    };
    for (const auto& c : cases) {
        INFO("status " << c.status << " reason '" << c.reason << "'");
        CHECK(reply_for_status(Status{c.status, c.reason}, "1B041A786D1",
                               c.bdat, 1234, "mx.example.test", 521)
              == c.want);
    }
}

TEST_CASE("cleanup: the bare LF reply uses the configured code")
{
    CHECK(reply_for_status(Status{STAT_BARE_LF, ""}, "X", false, 0, "mx", 550)
          == "550 5.5.2 mx Error: bare <LF> received");
}

TEST_CASE("cleanup: a reason's control bytes are made safe")
{
    // Plain text loses every control byte, CR and LF included.
    CHECK(reply_for_status(Status{STAT_CONT, "5.7.1 a\tb\r\nc\x01"}, "X", false,
                           0, "mx", 521)
          == "550 5.7.1 a b  c ");

    // An SMTP reply keeps CR and LF (it may be multi-line), no others.
    CHECK(reply_for_status(Status{STAT_CONT, "550-5.7.1 a\x7f\r\n550 5.7.1 b"},
                           "X", false, 0, "mx", 521)
          == "550-5.7.1 a \r\n550 5.7.1 b");

    // Valid UTF-8 stays; a stray high byte does not.
    CHECK(reply_for_status(Status{STAT_CONT, "5.7.1 caf\xc3\xa9 \xff"}, "X",
                           false, 0, "mx", 521)
          == "550 5.7.1 caf\xc3\xa9  ");
}

TEST_CASE("cleanup: only 4xx/5xx then end, space or dash is a reply")
{
    // "550" alone counts; "5501" and "250 ok" do not.
    CHECK(reply_for_status(Status{STAT_CONT, "550"}, "X", false, 0, "mx", 521)
          == "550");
    CHECK(
        reply_for_status(Status{STAT_CONT, "5501 x"}, "X", false, 0, "mx", 521)
        == "550 5501 x");
    CHECK(
        reply_for_status(Status{STAT_CONT, "250 ok"}, "X", false, 0, "mx", 521)
        == "550 250 ok");
}

// ---------------------------------------------------------------------
// received_header, mail_date

namespace {

ReceivedInfo sample_info()
{
    ReceivedInfo r;
    r.helo = "client.example.test";
    r.client_name = "localhost";
    r.client_rfc_addr = "127.0.0.1";
    r.myhostname = "mx.example.test";
    r.mail_name = "Postfix";
    r.protocol = "ESMTP";
    r.queue_id = "1DB2BA786D3";
    r.date = "Thu,  3 Dec 2026 20:32:14 +0000 (UTC)";
    return r;
}

} // namespace

TEST_CASE("cleanup: Received: for one recipient names it, as observed")
{
    auto r = sample_info();
    r.single_recipient = "hold@localhost";
    std::vector<std::string> want{
        "Received: from client.example.test (localhost [127.0.0.1])",
        "\tby mx.example.test (Postfix) with ESMTP id 1DB2BA786D3",
        "\tfor <hold@localhost>; Thu,  3 Dec 2026 20:32:14 +0000 (UTC)",
    };
    CHECK(received_header(r) == want);
}

TEST_CASE("cleanup: Received: for several recipients puts the date alone")
{
    auto r = sample_info();
    r.queue_id = "1B041A786D1";
    std::vector<std::string> want{
        "Received: from client.example.test (localhost [127.0.0.1])",
        "\tby mx.example.test (Postfix) with ESMTP id 1B041A786D1;",
        "\tThu,  3 Dec 2026 20:32:14 +0000 (UTC)",
    };
    CHECK(received_header(r) == want);
}

TEST_CASE("cleanup: Received: without a queue id has no id part")
{
    auto r = sample_info();
    r.queue_id.clear();
    auto got = received_header(r);
    REQUIRE(got.size() == 3);
    CHECK(got[1] == "\tby mx.example.test (Postfix) with ESMTP;");
    r.single_recipient = "a@b";
    got = received_header(r);
    REQUIRE(got.size() == 3);
    CHECK(got[1] == "\tby mx.example.test (Postfix) with ESMTP");
}

TEST_CASE("cleanup: Received: carries TLS and SASL lines after from")
{
    auto r = sample_info();
    r.helo.clear();
    r.client_name = "unknown";
    r.client_rfc_addr = "IPv6:::1";
    r.protocol = "ESMTPSA";
    r.tls_lines = {"\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 "
                   "(256/256 bits)",
                   "\t key-exchange X25519)",
                   "\t(No client certificate requested)"};
    r.authenticated_sender = "alice";
    r.single_recipient = "\"a b\"@example.test";
    std::vector<std::string> want{
        "Received: from unknown (unknown [IPv6:::1])",
        "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)",
        "\t key-exchange X25519)",
        "\t(No client certificate requested)",
        "\t(Authenticated sender: alice)",
        "\tby mx.example.test (Postfix) with ESMTPSA id 1DB2BA786D3",
        "\tfor <\"a b\"@example.test>; Thu,  3 Dec 2026 20:32:14 +0000 (UTC)",
    };
    CHECK(received_header(r) == want);
}

namespace {

// Run `f` with TZ set to `tz`, then restore the old TZ.
template <class F> void with_tz(const char* tz, F f)
{
    const char* old = std::getenv("TZ");
    std::optional<std::string> saved;
    if (old) {
        saved = old;
    }
    setenv("TZ", tz, 1);
    tzset();
    f();
    if (saved) {
        setenv("TZ", saved->c_str(), 1);
    } else {
        unsetenv("TZ");
    }
    tzset();
}

} // namespace

TEST_CASE("cleanup: mail_date pads the day with a space, UTC")
{
    with_tz("UTC", [] {
        // 2026-12-03 20:32:14 UTC
        CHECK(mail_date(1796329934) == "Thu,  3 Dec 2026 20:32:14 +0000 (UTC)");
        // 2026-12-13: two digits, no padding
        CHECK(mail_date(1796329934 + 10 * 86400)
              == "Sun, 13 Dec 2026 20:32:14 +0000 (UTC)");
    });
}

TEST_CASE("cleanup: mail_date prints the local offset as %+03d%02d")
{
    with_tz("XST+3:30", [] {
        CHECK(mail_date(1796329934) == "Thu,  3 Dec 2026 17:02:14 -0330 (XST)");
    });
    with_tz("YST-5:45", [] {
        CHECK(mail_date(1796329934) == "Fri,  4 Dec 2026 02:17:14 +0545 (YST)");
    });
}

// ---------------------------------------------------------------------
// CleanupStream against a scripted peer

namespace {

// A listening socket in a fresh temporary directory, standing in for
// public/cleanup; the accepted end is driven by the test by hand.
struct Peer {
    std::string dir;
    std::string path;
    int lfd = -1;
    int cfd = -1;

    Peer()
    {
        signal(SIGPIPE, SIG_IGN);
        char tmpl[] = "/tmp/rs-cleanup-test.XXXXXX";
        REQUIRE(mkdtemp(tmpl) != nullptr);
        dir = tmpl;
        path = dir + "/cleanup";
        lfd = socket(AF_UNIX, SOCK_STREAM, 0);
        REQUIRE(lfd >= 0);
        sockaddr_un sun{};
        sun.sun_family = AF_UNIX;
        std::strcpy(sun.sun_path, path.c_str());
        REQUIRE(bind(lfd, reinterpret_cast<sockaddr*>(&sun), sizeof(sun)) == 0);
        REQUIRE(listen(lfd, 5) == 0);
    }
    ~Peer()
    {
        if (cfd >= 0) {
            close(cfd);
        }
        close(lfd);
        unlink(path.c_str());
        rmdir(dir.c_str());
    }
    void accept_one()
    {
        cfd = accept(lfd, nullptr, nullptr);
        REQUIRE(cfd >= 0);
        fcntl(cfd, F_SETFL, O_NONBLOCK);
    }
    void say(const std::string& s)
    {
        REQUIRE(write(cfd, s.data(), s.size()) == ssize_t(s.size()));
    }
    // Everything the client sent so far.
    std::string heard()
    {
        std::string out;
        char buf[4096];
        for (;;) {
            ssize_t n = read(cfd, buf, sizeof(buf));
            if (n <= 0) {
                break;
            }
            out.append(buf, size_t(n));
        }
        return out;
    }
    void hang_up()
    {
        close(cfd);
        cfd = -1;
    }
};

// Run the loop until `cond` holds or a few seconds pass.
template <class C> bool spin(event_base* base, C cond)
{
    for (int i = 0; i < 2000 && !cond(); ++i) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        usleep(1000);
    }
    return cond();
}

Options test_options()
{
    Options o;
    o.connect_attempts = 1;
    o.ipc_timeout = 5;
    return o;
}

const std::string HELLO =
    "protocol\0cleanup_protocol\0queue_id\0001B041A786D1\0\0"s;

} // namespace

TEST_CASE("cleanup: a whole conversation has the exact bytes of Postfix")
{
    rs::EventBasePtr base(event_base_new());
    Peer peer;
    std::optional<rs::Result<std::string>> ready;
    auto s = CleanupStream::open(
        base.get(), peer.path, [&](auto r) { ready = std::move(r); },
        test_options());
    peer.accept_one();
    peer.say(HELLO);
    REQUIRE(spin(base.get(), [&] { return ready.has_value(); }));
    REQUIRE(*ready);
    CHECK(**ready == "1B041A786D1");
    CHECK(s->queue_id() == "1B041A786D1");

    // The envelope of protocols doc 2.13, with SASL and an empty
    // optional value that must not be sent.
    Envelope env;
    env.flags = 178;
    env.arrival_sec = 1796329934;
    env.arrival_usec = 97160;
    env.rewrite_context = "local";
    env.sasl_method = "PLAIN";
    env.sasl_username = "alice";
    env.envelope_id = "env-id";
    env.ret_flags = 2;
    env.sender = "sender@example.test";
    env.encoding = "8bit";
    env.log_client_name = "localhost";
    env.log_client_address = "127.0.0.1";
    env.log_client_port = "40632";
    env.log_message_origin = "localhost[127.0.0.1]";
    env.log_helo_name = "client.example.test";
    env.log_protocol_name = "ESMTP";
    env.client_name = "localhost";
    env.reverse_client_name = "localhost";
    env.client_address = "127.0.0.1";
    env.client_port = "40632";
    env.server_address = "127.0.0.1";
    env.server_port = "2725";
    env.helo_name = "client.example.test";
    env.protocol_name = "ESMTP";
    env.client_address_type = 2;
    s->envelope(env);
    s->recipient({"user@localhost", 6, "rfc822;user@localhost"});
    REQUIRE(spin(base.get(), [&] { return s->pending() == 0; }));
    std::string want_env = "flags\000178\0\0"
                           "T\x10"
                           "1796329934 97160"
                           "A\x15"
                           "log_ident=1B041A786D1"
                           "A\x15"
                           "rewrite_context=local"
                           "A\x11"
                           "sasl_method=PLAIN"
                           "A\x13"
                           "sasl_username=alice"
                           "A\x12"
                           "envelope_id=env-id"
                           "A\x0b"
                           "ret_flags=2"
                           "S\x13"
                           "sender@example.test"
                           "A\x0d"
                           "encoding=8bit"
                           "A\x19"
                           "log_client_name=localhost"
                           "A\x1c"
                           "log_client_address=127.0.0.1"
                           "A\x15"
                           "log_client_port=40632"
                           "A\x27"
                           "log_message_origin=localhost[127.0.0.1]"
                           "A\x21"
                           "log_helo_name=client.example.test"
                           "A\x17"
                           "log_protocol_name=ESMTP"
                           "A\x15"
                           "client_name=localhost"
                           "A\x1d"
                           "reverse_client_name=localhost"
                           "A\x18"
                           "client_address=127.0.0.1"
                           "A\x11"
                           "client_port=40632"
                           "A\x18"
                           "server_address=127.0.0.1"
                           "A\x10"
                           "server_port=2725"
                           "A\x1d"
                           "helo_name=client.example.test"
                           "A\x13"
                           "protocol_name=ESMTP"
                           "A\x15"
                           "client_address_type=2"
                           "A\x0e"
                           "notify_flags=6"
                           "A\x23"
                           "dsn_orig_rcpt=rfc822;user@localhost"
                           "R\x0e"
                           "user@localhost"s;
    CHECK(peer.heard() == want_env);

    // A second recipient without NOTIFY goes out on its own.
    s->recipient({"other@localhost", 0, "rfc822;other@localhost"});
    REQUIRE(spin(base.get(), [&] { return s->pending() == 0; }));
    CHECK(peer.heard()
          == "A\x24"
             "dsn_orig_rcpt=rfc822;other@localhost"
             "R\x0f"
             "other@localhost"s);

    // The DATA phase of the observed HOLD dump (protocols doc 2.12).
    s->begin_content(
        FLAG_HOLD,
        {"Received: from client.example.test (localhost [127.0.0.1])",
         "\tby mx.example.test (Postfix) with ESMTP id 1DB2BA786D3",
         "\tfor <hold@localhost>; Thu,  3 Dec 2026 20:32:14 +0000 (UTC)"});
    s->content('N', "Subject: held");
    s->content('N', "");
    s->content('N', "body");
    std::optional<rs::Result<Status>> done;
    s->finish(FLAG_HOLD, [&](auto r) { done = std::move(r); });
    REQUIRE(spin(base.get(), [&] { return s->pending() == 0; }));
    CHECK(peer.heard()
          == "f\x01"
             "4"
             "M\x00"
             "N:Received: from client.example.test (localhost [127.0.0.1])"
             "N7\tby mx.example.test (Postfix) with ESMTP id 1DB2BA786D3"
             "N<\tfor <hold@localhost>; Thu,  3 Dec 2026 20:32:14 +0000 "
             "(UTC)"
             "N\x0d"
             "Subject: held"
             "N\x00"
             "N\x04"
             "body"
             "X\x00"
             "f\x01"
             "4"
             "E\x00"s);

    // cleanup's answer reaches the callback.
    CHECK_FALSE(done);
    peer.say("status\0000\0reason\0\0\0"s);
    REQUIRE(spin(base.get(), [&] { return done.has_value(); }));
    REQUIRE(*done);
    CHECK((*done)->status == 0);
    CHECK((*done)->reason.empty());
}

TEST_CASE("cleanup: no optional attribute goes out empty")
{
    rs::EventBasePtr base(event_base_new());
    Peer peer;
    std::optional<rs::Result<std::string>> ready;
    auto s = CleanupStream::open(
        base.get(), peer.path, [&](auto r) { ready = std::move(r); },
        test_options());
    peer.accept_one();
    peer.say(HELLO);
    REQUIRE(spin(base.get(), [&] { return ready.has_value(); }));
    REQUIRE(*ready);

    // Everything empty but the time: only T, log_ident, S (empty for
    // <>) and the address type remain.
    Envelope env;
    env.flags = 178;
    env.arrival_sec = 1;
    env.arrival_usec = 2;
    s->envelope(env);
    REQUIRE(spin(base.get(), [&] { return s->pending() == 0; }));
    CHECK(peer.heard()
          == "flags\000178\0\0T\x03"
             "1 2"
             "A\x15"
             "log_ident=1B041A786D1"
             "S\x00"
             "A\x15"
             "client_address_type=0"s);
}

TEST_CASE("cleanup: Extracted records go after X, BCC's A after its R")
{
    rs::EventBasePtr base(event_base_new());
    Peer peer;
    std::optional<rs::Result<std::string>> ready;
    auto s = CleanupStream::open(
        base.get(), peer.path, [&](auto r) { ready = std::move(r); },
        test_options());
    peer.accept_one();
    peer.say(HELLO);
    REQUIRE(spin(base.get(), [&] { return ready.has_value(); }));
    s->set_extracted({"smtp:[10.0.0.1]", "r@x", {"b@x"}});
    std::optional<rs::Result<Status>> done;
    s->finish(0, [&](auto r) { done = std::move(r); });
    REQUIRE(spin(base.get(), [&] { return s->pending() == 0; }));
    CHECK(peer.heard()
          == "X\x00"
             "L\x0f"
             "smtp:[10.0.0.1]"
             ">\x03"
             "r@x"
             "R\x03"
             "b@x"
             "A\x0e"
             "notify_flags=1"
             "E\x00"s);
}

TEST_CASE("cleanup: a handshake other than protocol and queue_id fails")
{
    std::string bad[] = {
        "protocol\0trivial_rewrite_protocol\0queue_id\0ABC\0\0"s,
        "protocol\0cleanup_protocol\0\0"s,
        "protocol\0cleanup_protocol\0queue_id\0ABC\0x\0y\0\0"s,
        "queue_id\0ABC\0protocol\0cleanup_protocol\0\0"s,
        "protocol\0cleanup_protocol\0queue_id\0AB/C\0\0"s,
        "protocol\0cleanup_protocol\0queue_id\0\0\0"s,
        "protocol\0cleanup_protocol\0queue_id\0ABC\0\0junk"s,
    };
    for (const auto& hello : bad) {
        INFO("handshake " << hello.size() << " bytes");
        rs::EventBasePtr base(event_base_new());
        Peer peer;
        std::optional<rs::Result<std::string>> ready;
        auto s = CleanupStream::open(
            base.get(), peer.path, [&](auto r) { ready = std::move(r); },
            test_options());
        peer.accept_one();
        peer.say(hello);
        REQUIRE(spin(base.get(), [&] { return ready.has_value(); }));
        CHECK_FALSE(*ready);
    }
}

TEST_CASE("cleanup: an oversized handshake fails at the limit")
{
    rs::EventBasePtr base(event_base_new());
    Peer peer;
    std::optional<rs::Result<std::string>> ready;
    auto opts = test_options();
    opts.reply_limit = 64;
    auto s = CleanupStream::open(
        base.get(), peer.path, [&](auto r) { ready = std::move(r); }, opts);
    peer.accept_one();
    peer.say("protocol\0"s + std::string(100, 'x'));
    REQUIRE(spin(base.get(), [&] { return ready.has_value(); }));
    CHECK_FALSE(*ready);
}

TEST_CASE("cleanup: no listener is an Error from the loop, not at open")
{
    rs::EventBasePtr base(event_base_new());
    std::optional<rs::Result<std::string>> ready;
    auto s = CleanupStream::open(
        base.get(), "/nonexistent/public/cleanup",
        [&](auto r) { ready = std::move(r); }, test_options());
    REQUIRE(s);
    CHECK_FALSE(ready);
    REQUIRE(spin(base.get(), [&] { return ready.has_value(); }));
    REQUIRE_FALSE(*ready);
    CHECK(ready->error().code == ENOENT);
}

TEST_CASE("cleanup: a cleanup that hangs up mid-message gives an Error")
{
    rs::EventBasePtr base(event_base_new());
    Peer peer;
    std::optional<rs::Result<std::string>> ready;
    auto s = CleanupStream::open(
        base.get(), peer.path, [&](auto r) { ready = std::move(r); },
        test_options());
    peer.accept_one();
    peer.say(HELLO);
    REQUIRE(spin(base.get(), [&] { return ready.has_value(); }));
    int drained = 0;
    s->on_drain([&] { ++drained; }, 0);
    s->envelope(Envelope{});
    s->recipient({"a@b", 0, "rfc822;a@b"});
    REQUIRE(spin(base.get(), [&] { return s->pending() == 0; }));

    // The peer vanishes; the receiver is told through the drain
    // callback and the error itself comes with finish().
    peer.hang_up();
    int before = drained;
    s->content('N', std::string(100000, 'x'));
    REQUIRE(spin(base.get(), [&] { return drained > before; }));
    CHECK(s->pending() == 0);
    std::optional<rs::Result<Status>> done;
    s->finish(0, [&](auto r) { done = std::move(r); });
    REQUIRE(spin(base.get(), [&] { return done.has_value(); }));
    CHECK_FALSE(*done);
}

TEST_CASE("cleanup: losing cleanup while waiting for its reply is an Error")
{
    rs::EventBasePtr base(event_base_new());
    Peer peer;
    std::optional<rs::Result<std::string>> ready;
    auto s = CleanupStream::open(
        base.get(), peer.path, [&](auto r) { ready = std::move(r); },
        test_options());
    peer.accept_one();
    peer.say(HELLO);
    REQUIRE(spin(base.get(), [&] { return ready.has_value(); }));
    std::optional<rs::Result<Status>> done;
    s->finish(0, [&](auto r) { done = std::move(r); });
    REQUIRE(spin(base.get(), [&] { return s->pending() == 0; }));
    peer.heard();

    // Half a reply, then EOF.
    peer.say("status\0000\0"s);
    peer.hang_up();
    REQUIRE(spin(base.get(), [&] { return done.has_value(); }));
    CHECK_FALSE(*done);
}

TEST_CASE("cleanup: a reply with a bad status or extra names is an Error")
{
    std::string bad[] = {
        "status\0-1\0reason\0\0\0"s,
        "status\0 0\0reason\0\0\0"s,
        "status\0004294967296\0reason\0\0\0"s,
        "reason\0\0status\0000\0\0"s,
        "status\0000\0\0"s,
        "status\0000\0reason\0\0extra\0x\0\0"s,
    };
    for (const auto& reply : bad) {
        INFO("reply " << reply.size() << " bytes");
        rs::EventBasePtr base(event_base_new());
        Peer peer;
        std::optional<rs::Result<std::string>> ready;
        auto s = CleanupStream::open(
            base.get(), peer.path, [&](auto r) { ready = std::move(r); },
            test_options());
        peer.accept_one();
        peer.say(HELLO);
        REQUIRE(spin(base.get(), [&] { return ready.has_value(); }));
        std::optional<rs::Result<Status>> done;
        s->finish(0, [&](auto r) { done = std::move(r); });
        REQUIRE(spin(base.get(), [&] { return s->pending() == 0; }));
        peer.say(reply);
        REQUIRE(spin(base.get(), [&] { return done.has_value(); }));
        CHECK_FALSE(*done);
    }
}

TEST_CASE("cleanup: a full status word and reason come through")
{
    rs::EventBasePtr base(event_base_new());
    Peer peer;
    std::optional<rs::Result<std::string>> ready;
    auto s = CleanupStream::open(
        base.get(), peer.path, [&](auto r) { ready = std::move(r); },
        test_options());
    peer.accept_one();
    peer.say(HELLO);
    REQUIRE(spin(base.get(), [&] { return ready.has_value(); }));
    std::optional<rs::Result<Status>> done;
    s->finish(0, [&](auto r) { done = std::move(r); });
    REQUIRE(spin(base.get(), [&] { return s->pending() == 0; }));
    peer.say("status\0004294967295\0reason\0005.7.1 no\0\0"s);
    REQUIRE(spin(base.get(), [&] { return done.has_value(); }));
    REQUIRE(*done);
    CHECK((*done)->status == 4294967295u);
    CHECK((*done)->reason == "5.7.1 no");
}

TEST_CASE("cleanup: abort closes without E and calls nobody")
{
    rs::EventBasePtr base(event_base_new());
    Peer peer;
    std::optional<rs::Result<std::string>> ready;
    auto s = CleanupStream::open(
        base.get(), peer.path, [&](auto r) { ready = std::move(r); },
        test_options());
    peer.accept_one();
    peer.say(HELLO);
    REQUIRE(spin(base.get(), [&] { return ready.has_value(); }));
    s->envelope(Envelope{});
    REQUIRE(spin(base.get(), [&] { return s->pending() == 0; }));
    peer.heard();
    s->abort();

    // libevent closes a freed bufferevent's socket from the loop; then
    // the peer sees EOF and no E record.
    char c;
    ssize_t n = -1;
    REQUIRE(spin(base.get(), [&] {
        n = read(peer.cfd, &c, 1);
        return n >= 0;
    }));
    CHECK(n == 0);
}

TEST_CASE("cleanup: pending counts unsent bytes and drain fires below low")
{
    rs::EventBasePtr base(event_base_new());
    Peer peer;
    std::optional<rs::Result<std::string>> ready;
    auto s = CleanupStream::open(
        base.get(), peer.path, [&](auto r) { ready = std::move(r); },
        test_options());
    peer.accept_one();
    peer.say(HELLO);
    REQUIRE(spin(base.get(), [&] { return ready.has_value(); }));
    int drained = 0;
    s->on_drain([&] { ++drained; }, 1024);

    // Far more than the socket buffers hold: the rest stays pending.
    const std::string line(60000, 'x');
    for (int i = 0; i < 100; ++i) {
        s->content('N', line);
    }
    spin(base.get(), [] { return false; });
    CHECK(s->pending() > 1024);
    int before = drained;

    // Once the peer reads, the stream drains and says so.
    size_t got = 0;
    REQUIRE(spin(base.get(), [&] {
        got += peer.heard().size();
        return s->pending() <= 1024 && drained > before;
    }));
    CHECK(s->pending() <= 1024);
}

TEST_CASE("cleanup: a silent cleanup times out after ipc_timeout")
{
    rs::EventBasePtr base(event_base_new());
    Peer peer;
    auto opts = test_options();
    opts.ipc_timeout = 1;

    // No handshake at all.
    std::optional<rs::Result<std::string>> ready;
    auto s = CleanupStream::open(
        base.get(), peer.path, [&](auto r) { ready = std::move(r); }, opts);
    peer.accept_one();
    REQUIRE(spin(base.get(), [&] { return ready.has_value(); }));
    REQUIRE_FALSE(*ready);
    CHECK(ready->error().code == ETIMEDOUT);
}

TEST_CASE("cleanup: no reply after E times out after ipc_timeout")
{
    rs::EventBasePtr base(event_base_new());
    Peer peer;
    auto opts = test_options();
    opts.ipc_timeout = 1;
    std::optional<rs::Result<std::string>> ready;
    auto s = CleanupStream::open(
        base.get(), peer.path, [&](auto r) { ready = std::move(r); }, opts);
    peer.accept_one();
    peer.say(HELLO);
    REQUIRE(spin(base.get(), [&] { return ready.has_value(); }));
    REQUIRE(*ready);

    // Silence while the client talks is fine, however long.
    spin(base.get(), [] { return false; });
    std::optional<rs::Result<Status>> done;
    s->finish(0, [&](auto r) { done = std::move(r); });
    REQUIRE(spin(base.get(), [&] { return done.has_value(); }));
    REQUIRE_FALSE(*done);
    CHECK(done->error().code == ETIMEDOUT);
}
