// SPDX-License-Identifier: MIT
// NAME
//   master_test - unit tests for common/mail/master.{h,cc,_server.cc}
// DESCRIPTION
//   The option parser against argv as master(8) builds it, the status
//   record byte for byte, the connection facts, and the Server under a
//   fake master: a forked child gets a socketpair on fd 5 and a listener
//   on fd 6, exactly as master(8) arranges them, and the test reads the
//   TAKEN/AVAIL records the child writes.
#include "common/mail/config.h"
#include "common/mail/log.h"
#include "common/mail/master.h"
#include "common/util/event.h"
#include "test/unit/catch.h"

#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

using namespace rs;
using namespace rs::mail;

namespace {

// parse_master_args() over a vector of strings.
Result<MasterOptions> parse(std::vector<std::string> args)
{
    std::vector<char*> argv;
    for (auto& a : args) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    return parse_master_args(static_cast<int>(args.size()), argv.data());
}

std::string error_of(std::vector<std::string> args)
{
    auto r = parse(std::move(args));
    return r ? std::string("(no error)") : r.error().text;
}

} // namespace

TEST_CASE("master args: the argv master(8) was observed to build")
{
    auto r = parse({"smtpd", "-n", "127.0.0.1:2725", "-t", "inet", "-d", "-u",
                    "-o", "smtpd_mycustom_flag=yes", "-o",
                    "smtpd_helo_restrictions = permit_mynetworks, "
                    "reject_unknown_helo_hostname"});
    REQUIRE(r);
    CHECK(r->service_name == "127.0.0.1:2725");
    CHECK(r->transport == "inet");
    CHECK(r->debug);
    CHECK(r->unprivileged);
    CHECK_FALSE(r->chroot);
    CHECK_FALSE(r->standalone);
    CHECK(r->listen_count == 1);
    REQUIRE(r->overrides.size() == 2);
    CHECK(r->overrides[0] == "smtpd_mycustom_flag=yes");
    CHECK(r->overrides[1]
          == "smtpd_helo_restrictions = permit_mynetworks, "
             "reject_unknown_helo_hostname");
}

TEST_CASE("master args: the service name defaults to basename(argv[0])")
{
    auto r = parse({"../../../../work/bin/echo-daemon", "-t", "unix"});
    REQUIRE(r);
    CHECK(r->service_name == "echo-daemon");
    CHECK(r->transport == "unix");
}

TEST_CASE("master args: -c is chroot, flags cluster and arguments attach")
{
    auto r = parse({"smtpd", "-lzc", "-vv", "-V", "-s2", "-tpass", "-m", "7",
                    "-i", "2m", "-r", "30", "-D"});
    REQUIRE(r);
    CHECK(r->single);
    CHECK(r->zero);
    CHECK(r->chroot);
    CHECK(r->verbose == 2);
    CHECK(r->log_stderr);
    CHECK(r->listen_count == 2);
    CHECK(r->transport == "pass");
    CHECK(r->max_use == 7);
    CHECK(r->max_idle == 120);
    CHECK(r->retire_time == 30);
    CHECK(r->debugger);
}

TEST_CASE("master args: -o stress= and -o stress=yes are accepted")
{
    auto r =
        parse({"smtpd", "-t", "inet", "-o", "stress=", "-o", "stress=yes"});
    REQUIRE(r);
    REQUIRE(r->overrides.size() == 2);
    CHECK(r->overrides[1] == "stress=yes");
}

TEST_CASE("master args: errors say what the daemon logs as fatal")
{
    struct Case {
        std::vector<std::string> args;
        std::string want;
    };
    std::vector<Case> cases = {
        {{"smtpd", "-u"}, "no transport type specified"},
        {{"smtpd", "-t", "inet", "-x"}, "invalid option: -x"},
        {{"smtpd", "-t", "inet", "-ux"}, "invalid option: -x"},
        {{"smtpd", "-t", "inet", "extra"},
         "unexpected command-line argument: extra"},
        {{"smtpd", "extra", "-t", "inet"},
         "unexpected command-line argument: extra"},
        {{"smtpd", "-t", "inet", "--", "-u"},
         "unexpected command-line argument: -u"},
        {{"smtpd", "-t"}, "option requires an argument: -t"},
        {{"smtpd", "-t", "fifo"}, "unsupported transport type: fifo"},
        {{"smtpd", "-t", "inet", "-s", "0"}, "invalid -s option value: 0"},
        {{"smtpd", "-t", "inet", "-s", "257"}, "invalid -s option value: 257"},
        {{"smtpd", "-t", "inet", "-m", "-1"}, "invalid -m option value: -1"},
        {{"smtpd", "-t", "inet", "-i", "5x"}, "invalid -i option value: 5x"},
        {{"smtpd", "-t", "inet", "-o", "novalue"},
         "missing '=' in -o option value: novalue"},
        {{"smtpd", "-S", "-L", "127.0.0.1:2525"},
         "options -S and -L cannot be used together"},
        {{"smtpd", "-L", "127.0.0.1"},
         "bad -L address (want host:port): 127.0.0.1"},
    };
    for (const auto& c : cases) {
        INFO("args[1..]: " << c.args.size());
        CHECK(error_of(c.args) == c.want);
    }
}

TEST_CASE("master args: -S and -L need no transport")
{
    auto s = parse({"smtpd", "-S"});
    REQUIRE(s);
    CHECK(s->standalone);
    auto l = parse({"smtpd", "-L", "[::1]:2600"});
    REQUIRE(l);
    CHECK(l->listen_address == "[::1]:2600");
}

TEST_CASE("master status: TAKEN and AVAIL records match the observed bytes")
{
    // pid 16655 (0x410f), generation 14, as traced on x86-64.
    std::string taken = master_status_message(16655, 14, false);
    std::string avail = master_status_message(16655, 14, true);
    const unsigned char want_taken[12] = {0x0f, 0x41, 0, 0, 0x0e, 0,
                                          0,    0,    0, 0, 0,    0};
    const unsigned char want_avail[12] = {0x0f, 0x41, 0, 0, 0x0e, 0,
                                          0,    0,    1, 0, 0,    0};
    REQUIRE(taken.size() == 12);
    CHECK(std::memcmp(taken.data(), want_taken, 12) == 0);
    CHECK(std::memcmp(avail.data(), want_avail, 12) == 0);
}

TEST_CASE("master: split_host_port takes v4, [v6] and :port")
{
    auto a = split_host_port("127.0.0.1:2525");
    REQUIRE(a);
    CHECK(a->first == "127.0.0.1");
    CHECK(a->second == "2525");
    auto b = split_host_port("[::1]:25");
    REQUIRE(b);
    CHECK(b->first == "::1");
    CHECK(b->second == "25");
    auto c = split_host_port(":25");
    REQUIRE(c);
    CHECK(c->first.empty());
    CHECK_FALSE(split_host_port("127.0.0.1:"));
    CHECK_FALSE(split_host_port("127.0.0.1:65536"));
    CHECK_FALSE(split_host_port("[::1]25"));
}

TEST_CASE("master: an IPv4-mapped IPv6 address is shown as IPv4")
{
    CHECK(printable_address("::ffff:192.0.2.1") == "192.0.2.1");
    CHECK(printable_address("::FFFF:192.0.2.1") == "192.0.2.1");
    CHECK(printable_address("::ffff:c000:201") == "::ffff:c000:201");
    CHECK(printable_address("2001:db8::1") == "2001:db8::1");
    CHECK(printable_address("192.0.2.1") == "192.0.2.1");
}

TEST_CASE("master: pass attributes give the ConnInfo, hash markers ignored")
{
    auto r = conn_info_of_pass_attrs({{"{", ""},
                                      {"client_address", "::ffff:192.0.2.7"},
                                      {"client_port", "40001"},
                                      {"server_address", "192.0.2.1"},
                                      {"server_port", "25"},
                                      {"}", ""}});
    REQUIRE(r);
    CHECK(r->client_addr == "192.0.2.7");
    CHECK(r->client_port == "40001");
    CHECK(r->server_addr == "192.0.2.1");
    CHECK(r->server_port == "25");
    CHECK(r->family == AF_INET);
    auto v6 = conn_info_of_pass_attrs(
        {{"client_address", "2001:db8::5"}, {"client_port", "1"}});
    REQUIRE(v6);
    CHECK(v6->family == AF_INET6);
    CHECK_FALSE(conn_info_of_pass_attrs({{"client_port", "40001"}}));
}

TEST_CASE("master: a UNIX-domain client is 127.0.0.1 port 0, family 0")
{
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    Fd a(sv[0]), b(sv[1]);
    ConnInfo info = conn_info_of_socket(a.get());
    CHECK(info.client_addr == "127.0.0.1");
    CHECK(info.client_port == "0");
    CHECK(info.family == 0);
}

namespace {

// A loopback TCP listener on an ephemeral port.
Fd tcp_listener(int& port)
{
    Fd l(socket(AF_INET, SOCK_STREAM, 0));
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(l.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) == 0);
    REQUIRE(listen(l.get(), 16) == 0);
    socklen_t len = sizeof(sin);
    REQUIRE(getsockname(l.get(), reinterpret_cast<sockaddr*>(&sin), &len) == 0);
    port = ntohs(sin.sin_port);
    return l;
}

Fd tcp_connect(int port)
{
    Fd c(socket(AF_INET, SOCK_STREAM, 0));
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons(static_cast<uint16_t>(port));
    REQUIRE(connect(c.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin))
            == 0);
    return c;
}

} // namespace

TEST_CASE("master: an inet client gets numeric addresses and ports")
{
    int port = 0;
    Fd l = tcp_listener(port);
    Fd c = tcp_connect(port);
    Fd s(accept(l.get(), nullptr, nullptr));
    REQUIRE(s);
    ConnInfo info = conn_info_of_socket(s.get());
    CHECK(info.client_addr == "127.0.0.1");
    CHECK(info.server_addr == "127.0.0.1");
    CHECK(info.server_port == std::to_string(port));
    CHECK(info.client_port != "0");
    CHECK(info.family == AF_INET);
}

TEST_CASE("master: an IPv4-mapped client of an IPv6 socket shows as IPv4")
{
    Fd l(socket(AF_INET6, SOCK_STREAM, 0));
    if (!l) {
        WARN("no IPv6 here: skipped");
        return;
    }
    int off = 0;
    setsockopt(l.get(), IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    // ::ffff:127.0.0.1 on an AF_INET6 socket: loopback only, and every
    // peer address the kernel reports is IPv4-mapped.
    REQUIRE(inet_pton(AF_INET6, "::ffff:127.0.0.1", &sin6.sin6_addr) == 1);
    if (bind(l.get(), reinterpret_cast<sockaddr*>(&sin6), sizeof(sin6)) != 0
        || listen(l.get(), 4) != 0) {
        WARN("cannot bind ::ffff:127.0.0.1 here: skipped");
        return;
    }
    socklen_t len = sizeof(sin6);
    REQUIRE(getsockname(l.get(), reinterpret_cast<sockaddr*>(&sin6), &len)
            == 0);
    Fd c = tcp_connect(ntohs(sin6.sin6_port));
    Fd s(accept(l.get(), nullptr, nullptr));
    REQUIRE(s);
    ConnInfo info = conn_info_of_socket(s.get());
    CHECK(info.client_addr == "127.0.0.1");
    CHECK(info.server_addr == "127.0.0.1");
    CHECK(info.family == AF_INET);
}
