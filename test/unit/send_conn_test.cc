// SPDX-License-Identifier: MIT
// Unit tests for client/send_conn.
#include "client/send_conn.h"
#include "test/unit/catch.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace rs;
using namespace rs::send;
using namespace std::chrono_literals;

namespace {

// A listener on 127.0.0.1, port 0; serve() runs one connection.
struct Listener {
    Fd fd;
    uint16_t port = 0;
    Listener()
    {
        fd.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        REQUIRE(fd);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a)
                == 0);
        REQUIRE(::listen(fd.get(), 4) == 0);
        socklen_t len = sizeof a;
        REQUIRE(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len)
                == 0);
        port = ntohs(a.sin_port);
    }
    Fd accept_one() { return Fd(::accept(fd.get(), nullptr, nullptr)); }
};

void put(int fd, std::string_view s)
{
    REQUIRE(::write(fd, s.data(), s.size()) == static_cast<ssize_t>(s.size()));
}

} // namespace

TEST_CASE("send_conn: server names for logs and keys")
{
    CHECK(Server{"127.0.0.1", 25}.display() == "127.0.0.1:25");
    CHECK(Server{"::1", 2525}.display() == "[::1]:2525");
}

TEST_CASE("send_conn: replies split across writes, and octet counts")
{
    Listener l;
    std::string got;
    std::thread t([&] {
        Fd c = l.accept_one();
        put(c.get(), "220-mx ESMTP\r\n220 ");
        std::this_thread::sleep_for(50ms);
        put(c.get(), "ready\r\n250 2.0.0 Ok\n");
        char buf[64];
        ssize_t n = ::read(c.get(), buf, sizeof buf);
        got.assign(buf, n > 0 ? static_cast<size_t>(n) : 0);
    });
    auto c = Conn::open(Server{"127.0.0.1", l.port}, 5s, Clock::now() + 10s);
    REQUIRE(c);
    auto r = c->read_reply();
    REQUIRE(r);
    CHECK(r->code == 220);
    CHECK(r->lines.size() == 2);
    CHECK(r->lines[1] == "ready");
    // A bare LF ends a reply line too.
    auto r2 = c->read_reply();
    REQUIRE(r2);
    CHECK(r2->enhanced == "2.0.0");
    REQUIRE(c->write("QUIT\r\n"));
    t.join();
    CHECK(got == "QUIT\r\n");
    CHECK(c->octets_out() == 6);
    CHECK(c->octets_in() == 38);
}

TEST_CASE("send_conn: a silent server times out")
{
    Listener l;
    std::thread t([&] {
        Fd c = l.accept_one();
        std::this_thread::sleep_for(1500ms);
    });
    auto c = Conn::open(Server{"127.0.0.1", l.port}, 300ms, Clock::now() + 10s);
    REQUIRE(c);
    auto t0 = Clock::now();
    auto r = c->read_reply();
    CHECK_FALSE(r);
    CHECK(r.error().code == ETIMEDOUT);
    CHECK(Clock::now() - t0 < 1200ms);
    t.join();
}

TEST_CASE("send_conn: the overall deadline bounds a read as well")
{
    Listener l;
    std::thread t([&] {
        Fd c = l.accept_one();
        std::this_thread::sleep_for(1500ms);
    });
    auto c = Conn::open(Server{"127.0.0.1", l.port}, 10s, Clock::now() + 300ms);
    REQUIRE(c);
    auto t0 = Clock::now();
    CHECK_FALSE(c->read_reply());
    CHECK(Clock::now() - t0 < 1200ms);
    t.join();
}

TEST_CASE("send_conn: EOF and a malformed reply are errors")
{
    Listener l;
    std::thread t([&] {
        Fd c = l.accept_one();
        put(c.get(), "hello\r\n");
        Fd c2 = l.accept_one();
        put(c2.get(), "220-partial\r\n");
    });
    auto c = Conn::open(Server{"127.0.0.1", l.port}, 5s, Clock::now() + 10s);
    REQUIRE(c);
    auto r = c->read_reply();
    CHECK_FALSE(r);
    CHECK(r.error().code == EPROTO);
    auto c2 = Conn::open(Server{"127.0.0.1", l.port}, 5s, Clock::now() + 10s);
    REQUIRE(c2);
    t.join();
    auto r2 = c2->read_reply();
    CHECK_FALSE(r2);
    CHECK(r2.error().text.find("closed") != std::string::npos);
}

TEST_CASE("send_conn: a refused connection and an unknown name")
{
    uint16_t port;
    {
        Listener l;
        port = l.port;
    }
    auto c = Conn::open(Server{"127.0.0.1", port}, 2s, Clock::now() + 5s);
    CHECK_FALSE(c);
    auto n =
        Conn::open(Server{"no-such-host.invalid", 25}, 2s, Clock::now() + 5s);
    CHECK_FALSE(n);
}

TEST_CASE("send_conn: plaintext after the 220 to STARTTLS is refused")
{
    Listener l;
    std::thread t([&] {
        Fd c = l.accept_one();
        put(c.get(), "220 go ahead\r\n250 injected\r\n");
        std::this_thread::sleep_for(300ms);
    });
    auto c = Conn::open(Server{"127.0.0.1", l.port}, 5s, Clock::now() + 10s);
    REQUIRE(c);
    auto r = c->read_reply();
    REQUIRE(r);
    // Wait until the injected line has surely arrived in our buffer.
    std::this_thread::sleep_for(100ms);
    auto ctx = client_tls_context();
    REQUIRE(ctx);
    // read_reply consumed only the first reply; what follows is queued.
    auto s = c->starttls(ctx->get(), "");
    CHECK_FALSE(s);
    t.join();
}
