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
#include <pwd.h>
#include <set>
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

// ---- Server under a fake master ----------------------------------------
//
// A forked child runs the Server with fd 5 and fd 6 arranged as master(8)
// arranges them; the test plays master: it reads the 12-byte records and
// connects clients. Each session sends "220 <pid> <sessions>
// <client>:<port>", echoes what it reads, and ends at EOF.

namespace {

constexpr int kWaitMs = 3000;

struct Record {
    int pid = 0;
    unsigned gen = 0;
    int avail = -1;
};

// A session of the test service: banner, echo, end at EOF.
struct EchoSession {
    Server* server;
    Fd fd;
    EventPtr ev;
};

void echo_read(evutil_socket_t fd, short, void* arg) noexcept
{
    auto* s = static_cast<EchoSession*>(arg);
    char buf[512];
    ssize_t n = read(static_cast<int>(fd), buf, sizeof(buf));
    if (n < 0 && errno == EAGAIN) {
        return;
    }
    if (n <= 0) {
        Server* server = s->server;
        delete s;
        server->session_done();
        return;
    }
    (void)!write(static_cast<int>(fd), buf, static_cast<size_t>(n));
}

struct ChildSetup {
    int limit = 1;
    int max_use = 0;
    std::string max_idle = "100s";
    std::string transport = "inet";
    std::vector<std::string> extra_args;
    std::string mail_owner = "postfix";
    bool no_status_fd = false;
    bool report_ids = false;
    int processes = 1; ///< children sharing the listener and fd 5
};

// Move fd to number `to` without clobbering anything below 100 first.
void place_fd(int fd, int to)
{
    int high = fcntl(fd, F_DUPFD, 100);
    REQUIRE(high >= 0);
    close(fd);
    REQUIRE(dup2(high, to) == to);
    close(high);
}

[[noreturn]] void run_child(const ChildSetup& cs, const std::string& queue,
                            int status_fd, int listen_fd)
{
    // fds 5 and 6 as master leaves them; nothing else of the parent's.
    int s = fcntl(status_fd, F_DUPFD, 100);
    int l = fcntl(listen_fd, F_DUPFD, 100);
    for (int fd = 3; fd < 100; ++fd) {
        close(fd);
    }
    if (cs.no_status_fd) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 5);
        close(null);
    } else {
        dup2(s, 5);
    }
    dup2(l, 6);
    close(s);
    close(l);
    setenv("GENERATION", "17", 1);

    std::vector<std::string> args = {"master_test", "-d", "-n",
                                     "svc",         "-t", cs.transport};
    args.insert(args.end(), cs.extra_args.begin(), cs.extra_args.end());
    auto opt = parse(args);
    if (!opt) {
        _exit(3);
    }
    log::init("master_test");
    log::set_stderr(std::getenv("MASTER_TEST_STDERR") != nullptr);
    Config config;
    config.read_text(fmt::format("queue_directory = {}\n"
                                 "smtpd_sessions_per_process = {}\n"
                                 "max_use = {}\n"
                                 "max_idle = {}\n"
                                 "mail_owner = {}\n",
                                 queue, cs.limit, cs.max_use, cs.max_idle,
                                 cs.mail_owner),
                     "test");
    EventBasePtr base(event_base_new());
    Server* srv = nullptr;
    Server::Hooks hooks;
    std::string init_seen;
    hooks.pre_init = [&] {
        char cwd[4096];
        init_seen = std::string(" pre_init_cwd=")
                    + (getcwd(cwd, sizeof(cwd)) ? cwd : "?");
    };
    hooks.post_init = [&] {
        char cwd[4096];
        init_seen += " post_init";
        if (cs.report_ids) {
            init_seen += fmt::format(" cwd={} uid={} euid={} gid={}",
                                     getcwd(cwd, sizeof(cwd)) ? cwd : "?",
                                     getuid(), geteuid(), getgid());
        }
    };
    hooks.on_session = [&](Fd fd, ConnInfo info) {
        auto* es = new EchoSession{srv, std::move(fd), nullptr};
        std::string banner =
            fmt::format("220 {} {} {}:{}{}\r\n", getpid(), srv->sessions(),
                        info.client_addr, info.client_port, init_seen);
        (void)!write(es->fd.get(), banner.data(), banner.size());
        es->ev.reset(event_new(base.get(), es->fd.get(), EV_READ | EV_PERSIST,
                               echo_read, es));
        event_add(es->ev.get(), nullptr);
    };
    Server server(base.get(), *opt, config, std::move(hooks));
    srv = &server;
    _exit(server.run());
}

struct FakeMaster {
    pid_t pid = -1;
    std::vector<pid_t> others; ///< processes 2.. (ChildSetup::processes)
    Fd status;
    int port = 0;
    std::string queue;
    std::string unix_path;

    explicit FakeMaster(const ChildSetup& cs)
    {
        char tmpl[] = "/tmp/master_test.XXXXXX";
        REQUIRE(mkdtemp(tmpl));
        queue = tmpl;
        REQUIRE(mkdir((queue + "/pid").c_str(), 0755) == 0);

        int sv[2];
        REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        Fd listener;
        if (cs.transport == "pass" || cs.transport == "unix") {
            unix_path = queue + "/sock";
            listener.reset(socket(AF_UNIX, SOCK_STREAM, 0));
            sockaddr_un sun{};
            sun.sun_family = AF_UNIX;
            std::snprintf(sun.sun_path, sizeof(sun.sun_path), "%s",
                          unix_path.c_str());
            REQUIRE(bind(listener.get(), reinterpret_cast<sockaddr*>(&sun),
                         sizeof(sun))
                    == 0);
            REQUIRE(listen(listener.get(), 16) == 0);
        } else {
            listener = tcp_listener(port);
        }
        pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            run_child(cs, queue, sv[1], listener.get());
        }
        for (int i = 1; i < cs.processes; ++i) {
            pid_t p = fork();
            REQUIRE(p >= 0);
            if (p == 0) {
                run_child(cs, queue, sv[1], listener.get());
            }
            others.push_back(p);
        }
        close(sv[1]);
        status.reset(sv[0]);
    }

    ~FakeMaster()
    {
        // Only our own child, by pid, if a test left it running.
        others.push_back(pid);
        for (pid_t p : others) {
            if (p > 0 && waitpid(p, nullptr, WNOHANG) == 0) {
                kill(p, SIGKILL);
                waitpid(p, nullptr, 0);
            }
        }
        if (!unix_path.empty()) {
            unlink(unix_path.c_str());
        }
        std::string lock = queue + "/pid/" + "inet.svc";
        unlink(lock.c_str());
        unlink((queue + "/pid/pass.svc").c_str());
        unlink((queue + "/pid/unix.svc").c_str());
        rmdir((queue + "/pid").c_str());
        rmdir(queue.c_str());
    }

    // The records master would read within `ms` milliseconds.
    std::vector<Record> records(int ms = 300)
    {
        std::vector<Record> out;
        for (;;) {
            pollfd p{status.get(), POLLIN, 0};
            if (poll(&p, 1, ms) <= 0) {
                return out;
            }
            Record r;
            char buf[12];
            ssize_t n = recv(status.get(), buf, sizeof(buf), MSG_WAITALL);
            if (n != 12) {
                return out;
            }
            std::memcpy(&r.pid, buf, 4);
            std::memcpy(&r.gen, buf + 4, 4);
            std::memcpy(&r.avail, buf + 8, 4);
            out.push_back(r);
            ms = 100;
        }
    }

    // The child's exit status, or -1 if it is still running after `ms`.
    int wait_exit(int ms = kWaitMs)
    {
        for (int waited = 0; waited <= ms; waited += 20) {
            int st = 0;
            pid_t r = waitpid(pid, &st, WNOHANG);
            if (r == pid) {
                pid = -1;
                return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            }
            usleep(20 * 1000);
        }
        return -1;
    }
};

// A line from a session: the banner or an echo.
std::string read_line(int fd)
{
    std::string line;
    char c;
    pollfd p{fd, POLLIN, 0};
    while (poll(&p, 1, kWaitMs) > 0 && read(fd, &c, 1) == 1) {
        line += c;
        if (c == '\n') {
            break;
        }
    }
    return line;
}

std::string kinds(const std::vector<Record>& rs)
{
    std::string out;
    for (const auto& r : rs) {
        out += r.avail == 1 ? "A" : r.avail == 0 ? "T" : "?";
    }
    return out;
}

} // namespace

TEST_CASE("master server: limit 1 says TAKEN per accept, AVAIL per session, "
          "and max_use=2 exits 0")
{
    FakeMaster m(ChildSetup{.limit = 1, .max_use = 2});
    Fd c1 = tcp_connect(m.port);
    CHECK(read_line(c1.get()).rfind("220 ", 0) == 0);
    auto r = m.records();
    REQUIRE(kinds(r) == "T");
    CHECK(r[0].pid == m.pid);
    CHECK(r[0].gen == 15); // GENERATION=17 is octal
    c1.reset();
    CHECK(kinds(m.records()) == "A");

    Fd c2 = tcp_connect(m.port);
    CHECK(read_line(c2.get()).rfind("220 ", 0) == 0);
    CHECK(kinds(m.records()) == "T");
    c2.reset();
    CHECK(kinds(m.records()) == "A");
    CHECK(m.wait_exit() == 0);
}

TEST_CASE("master server: limit 2 says TAKEN only when full, AVAIL when not")
{
    FakeMaster m(ChildSetup{.limit = 2});
    Fd c1 = tcp_connect(m.port);
    std::string b1 = read_line(c1.get());
    CHECK(b1.find(" 1 127.0.0.1:") != std::string::npos);
    CHECK(kinds(m.records()) == "");
    Fd c2 = tcp_connect(m.port);
    std::string b2 = read_line(c2.get());
    CHECK(b2.find(" 2 127.0.0.1:") != std::string::npos);
    CHECK(kinds(m.records()) == "T");
    c1.reset();
    CHECK(kinds(m.records()) == "A");
    c2.reset();
    CHECK(kinds(m.records()) == "");
    CHECK(m.wait_exit(200) == -1); // still serving
}

TEST_CASE("master server: pre_init runs in the queue directory, then "
          "post_init")
{
    FakeMaster m(ChildSetup{});
    Fd c = tcp_connect(m.port);
    std::string banner = read_line(c.get());
    CHECK(banner.find(" pre_init_cwd=" + m.queue + " post_init\r\n")
          != std::string::npos);
}

TEST_CASE("master server: max_use reached with room left says TAKEN, then "
          "exits 0")
{
    FakeMaster m(ChildSetup{.limit = 3, .max_use = 1});
    Fd c = tcp_connect(m.port);
    REQUIRE(read_line(c.get()).rfind("220 ", 0) == 0);
    CHECK(kinds(m.records()) == "");
    c.reset();
    CHECK(kinds(m.records()) == "TA");
    CHECK(m.wait_exit() == 0);
}

TEST_CASE("master server: idle processes of one service hand clients on "
          "to each other, and none is left unserved")
{
    // Three processes of one session each share the listener. Each idle
    // one sleeps on it with EPOLLIN|EPOLLEXCLUSIVE (one wake-up per
    // client); a process that is full must leave the set, or a client
    // would wake it and wait there. Three clients held at once: three
    // banners, from three processes; a fourth waits until one leaves.
    FakeMaster m(ChildSetup{.processes = 3});
    std::vector<Fd> held;
    for (int i = 0; i < 3; ++i) {
        held.push_back(tcp_connect(m.port));
        CHECK(read_line(held.back().get()).rfind("220 ", 0) == 0);
    }
    auto rs = m.records();
    CHECK(kinds(rs) == "TTT");
    std::set<int> pids;
    for (const auto& r : rs) {
        pids.insert(r.pid);
    }
    CHECK(pids.size() == 3);
    Fd fourth = tcp_connect(m.port);
    pollfd p{fourth.get(), POLLIN, 0};
    CHECK(poll(&p, 1, 300) == 0);
    held[1].reset();
    CHECK(read_line(fourth.get()).rfind("220 ", 0) == 0);

    // Nor is an accept lock file left in pid/ any more.
    struct stat st {};
    CHECK(stat((m.queue + "/pid/inet.svc").c_str(), &st) != 0);
}

TEST_CASE("master server: max_idle ends an idle process with status 0")
{
    FakeMaster m(ChildSetup{.max_idle = "1s"});
    CHECK(m.wait_exit(300) == -1);
    CHECK(m.wait_exit(3000) == 0);
    CHECK(kinds(m.records(50)) == "");
}

TEST_CASE("master server: fd 5 EOF ends an idle process at once")
{
    FakeMaster m(ChildSetup{});
    CHECK(m.wait_exit(200) == -1);
    m.status.reset();
    CHECK(m.wait_exit() == 0);
}

TEST_CASE("master server: after fd 5 EOF a detached child finishes the "
          "session and the process master knows exits")
{
    FakeMaster m(ChildSetup{.limit = 5});
    Fd c = tcp_connect(m.port);
    REQUIRE(read_line(c.get()).rfind("220 ", 0) == 0);
    m.status.reset();
    CHECK(m.wait_exit() == 0);
    REQUIRE(write(c.get(), "still there\n", 12) == 12);
    CHECK(read_line(c.get()) == "still there\n");
}

TEST_CASE("master server: SIGTERM ends the process with status 0")
{
    FakeMaster m(ChildSetup{});
    Fd c = tcp_connect(m.port);
    REQUIRE(read_line(c.get()).rfind("220 ", 0) == 0);
    kill(m.pid, SIGTERM);
    CHECK(m.wait_exit() == 0);
}

TEST_CASE("master server: a unix client is 127.0.0.1 port 0")
{
    FakeMaster m(ChildSetup{.transport = "unix"});
    Fd c(socket(AF_UNIX, SOCK_STREAM, 0));
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::snprintf(sun.sun_path, sizeof(sun.sun_path), "%s",
                  m.unix_path.c_str());
    REQUIRE(connect(c.get(), reinterpret_cast<sockaddr*>(&sun), sizeof(sun))
            == 0);
    CHECK(read_line(c.get()).find(" 1 127.0.0.1:0 ") != std::string::npos);
}

namespace {

// Hand `fd` over the way postscreen does: one dummy byte with the
// descriptor, then the attribute bytes.
void send_pass(int conn, int fd, std::string_view attrs)
{
    char byte = 0;
    iovec iov{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    REQUIRE(sendmsg(conn, &msg, 0) == 1);
    REQUIRE(write(conn, attrs.data(), attrs.size())
            == static_cast<ssize_t>(attrs.size()));
}

Fd unix_connect(const std::string& path)
{
    Fd c(socket(AF_UNIX, SOCK_STREAM, 0));
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path.c_str());
    REQUIRE(connect(c.get(), reinterpret_cast<sockaddr*>(&sun), sizeof(sun))
            == 0);
    return c;
}

} // namespace

TEST_CASE("master server: pass takes the descriptor and the attr0 hash")
{
    FakeMaster m(ChildSetup{.transport = "pass"});
    using namespace std::string_view_literals;
    // Split literals: "\0" followed by a digit would be an octal escape.
    constexpr auto attrs = "{\0client_address\0"
                           "192.0.2.7\0client_port\0"
                           "4711\0server_address\0"
                           "192.0.2.1\0server_port\0"
                           "25\0}\0\0"sv;

    // A broken hand-off first: it is dropped, the process serves on.
    {
        Fd bad = unix_connect(m.unix_path);
        int sv[2];
        REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        send_pass(bad.get(), sv[1], "client_port\0"sv);
        close(sv[1]);
        close(sv[0]);
    }
    CHECK(kinds(m.records()) == "TA");
    Fd conn = unix_connect(m.unix_path);
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    Fd client(sv[0]);
    send_pass(conn.get(), sv[1], attrs);
    close(sv[1]);
    CHECK(read_line(client.get()).find(" 1 192.0.2.7:4711 ")
          != std::string::npos);
    CHECK(kinds(m.records()) == "T");
}

TEST_CASE("master server: -c -u chroots to the queue directory and runs as "
          "mail_owner")
{
    passwd* pw = getpwnam("postfix");
    if (getuid() != 0 || !pw) {
        WARN("needs root and a postfix user: skipped");
        return;
    }
    std::string want = fmt::format(" post_init cwd=/ uid={0} euid={0} gid={1}",
                                   pw->pw_uid, pw->pw_gid);
    FakeMaster m(ChildSetup{.extra_args = {"-c", "-u"}, .report_ids = true});
    Fd c = tcp_connect(m.port);
    std::string banner = read_line(c.get());
    CHECK(banner.find(" pre_init_cwd=" + m.queue + want + "\r\n")
          != std::string::npos);
}

TEST_CASE("master server: a mail_owner with uid 0 is fatal (exit 1)")
{
    FakeMaster m(ChildSetup{.extra_args = {"-u"}, .mail_owner = "root"});
    CHECK(m.wait_exit() == 1);
}

TEST_CASE("master server: no status channel on fd 5 is fatal (exit 1)")
{
    FakeMaster m(ChildSetup{.no_status_fd = true});
    CHECK(m.wait_exit() == 1);
}
