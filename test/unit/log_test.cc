// SPDX-License-Identifier: MIT
// NAME
//   log_test.cc - unit tests for common/mail/log
// DESCRIPTION
//   The postlog path is tested for real: the test binds its own UNIX
//   datagram socket in a temporary directory, points POSTLOG_SERVICE at
//   it and checks the bytes of each datagram. The syslog path can only be
//   checked for not failing (there may be no syslog daemon).
#include "common/mail/config.h"
#include "common/mail/log.h"
#include "test/unit/catch.h"

#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <regex>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

using namespace rs;

namespace {

struct Fatal {
    std::string text;
};

void throw_fatal(const std::string& text)
{
    throw Fatal{text};
}

template <class F> std::string fatal_text(F&& f)
{
    log::set_fatal_hook(throw_fatal);
    std::string out;
    try {
        f();
    } catch (const Fatal& e) {
        out = e.text;
    }
    log::set_fatal_hook(nullptr);
    return out;
}

// A datagram socket standing in for postlogd.
struct FakePostlog {
    std::string dir;
    std::string path;
    int fd = -1;

    FakePostlog()
    {
        char tmpl[] = "/tmp/rs-log-test.XXXXXX";
        REQUIRE(mkdtemp(tmpl) != nullptr);
        dir = tmpl;
        path = dir + "/postlog";
        fd = socket(AF_UNIX, SOCK_DGRAM, 0);
        REQUIRE(fd >= 0);
        sockaddr_un sun{};
        sun.sun_family = AF_UNIX;
        std::snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path.c_str());
        REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&sun), sizeof(sun)) == 0);
    }
    ~FakePostlog()
    {
        close_socket();
        rmdir(dir.c_str());
    }
    void close_socket()
    {
        if (fd >= 0) {
            close(fd);
            fd = -1;
            unlink(path.c_str());
        }
    }

    // The next datagram, or "" when none arrives within a second.
    std::string next()
    {
        timeval tv{1, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        char buf[70000];
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
    }
};

// A Config that selects postlog, as a lab's main.cf does.
mail::Config postlog_config()
{
    mail::Config c;
    c.set("maillog_file", "/var/log/rs-test-maillog");
    c.set("myhostname", "mx.lab.example");
    return c;
}

std::string pid_text()
{
    return std::to_string(getpid());
}

// Back to plain syslog and a clean environment after a test.
void reset()
{
    unsetenv("POSTLOG_SERVICE");
    unsetenv("POSTLOG_HOSTNAME");
    unsetenv("MAIL_LOGTAG");
    log::set_stderr(false);
    log::init("smtpd");
}

} // namespace

TEST_CASE("log: postlog datagrams carry Postfix's exact prefix")
{
    FakePostlog fake;
    setenv("POSTLOG_SERVICE", fake.path.c_str(), 1);
    unsetenv("POSTLOG_HOSTNAME");
    log::init("smtpd");
    mail::Config c = postlog_config();
    log::configure(c);
    REQUIRE(log::using_postlog());

    log::info("connect from localhost[127.0.0.1]");
    std::string got = fake.next();

    // "Dec 03 20:32:14 mx postfix/smtpd[16655]: connect from ..." with a
    // zero-padded day and no newline.
    std::regex want("[A-Z][a-z]{2} [0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-6][0-9] "
                    "mx postfix/smtpd\\["
                    + pid_text()
                    + "\\]: connect from localhost\\[127\\.0\\.0\\.1\\]");
    INFO("datagram: " << got);
    CHECK(std::regex_match(got, want));

    // Labels, one datagram per message.
    log::warning("w {}", 1);
    log::error("e");
    std::string w = fake.next();
    std::string e = fake.next();
    CHECK(w.substr(w.find("]: ")) == "]: warning: w 1");
    CHECK(e.substr(e.find("]: ")) == "]: error: e");
    reset();
}

TEST_CASE("log: POSTLOG_HOSTNAME and syslog_name shape the prefix")
{
    FakePostlog fake;
    setenv("POSTLOG_SERVICE", fake.path.c_str(), 1);
    setenv("POSTLOG_HOSTNAME", "relay.example.test", 1);
    log::init("smtpd");
    mail::Config c = postlog_config();
    c.set_override("syslog_name=postfix/$service_name");
    c.set("service_name", "submission");
    log::configure(c);
    CHECK(log::tag() == "postfix/submission/smtpd");

    log::info("hello");
    std::string got = fake.next();
    auto host = got.find(' ', 15);
    CHECK(got.substr(16)
          == "relay postfix/submission/smtpd[" + pid_text() + "]: hello");
    CHECK(host == 15);
    reset();
}

TEST_CASE("log: long messages are cut to 2000 characters")
{
    FakePostlog fake;
    setenv("POSTLOG_SERVICE", fake.path.c_str(), 1);
    log::init("smtpd");
    mail::Config c = postlog_config();
    log::configure(c);

    log::info("{}", std::string(3000, 'x'));
    std::string got = fake.next();
    std::string text = got.substr(got.find("]: ") + 3);
    CHECK(text == std::string(log::max_line, 'x'));
    reset();
}

TEST_CASE("log: the socket defaults to $queue_directory/public/postlog")
{
    char tmpl[] = "/tmp/rs-log-queue.XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    std::string queue = tmpl;
    std::string pub = queue + "/public";
    REQUIRE(mkdir(pub.c_str(), 0700) == 0);

    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::string path = pub + "/postlog";
    std::snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path.c_str());
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&sun), sizeof(sun)) == 0);

    unsetenv("POSTLOG_SERVICE");
    log::init("smtpd");
    mail::Config c = postlog_config();
    c.set("queue_directory", queue);
    log::configure(c);
    CHECK(log::using_postlog());
    log::info("via the queue directory");
    char buf[4096];
    timeval tv{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    REQUIRE(n > 0);
    std::string got(buf, static_cast<size_t>(n));
    CHECK(got.find("]: via the queue directory") != std::string::npos);

    close(fd);
    unlink(path.c_str());
    rmdir(pub.c_str());
    rmdir(queue.c_str());
    reset();
}

TEST_CASE("log: a lost postlogd falls back to syslog without failing")
{
    FakePostlog fake;
    setenv("POSTLOG_SERVICE", fake.path.c_str(), 1);
    log::init("smtpd");
    mail::Config c = postlog_config();
    log::configure(c);
    REQUIRE(log::using_postlog());
    fake.close_socket();

    // The send fails; the line goes to syslog and errno is untouched.
    errno = ENOSPC;
    log::info("nobody listens");
    CHECK(errno == ENOSPC);
    reset();
}

TEST_CASE("log: maillog_file outside maillog_file_prefixes is fatal")
{
    log::init("smtpd");
    mail::Config c;
    c.set("maillog_file", "/tmp/maillog");
    CHECK(fatal_text([&] { log::configure(c); })
          == "maillog_file (/tmp/maillog) does not match "
             "maillog_file_prefixes (/var, /dev/stdout)");

    mail::Config d;
    d.set("syslog_facility", "nosuch");
    CHECK(fatal_text([&] { log::configure(d); })
          == "unknown syslog_facility value: \"nosuch\"");
    reset();
}

TEST_CASE("log: the tag follows MAIL_LOGTAG, then syslog_name")
{
    setenv("MAIL_LOGTAG", "postfix-out", 1);
    log::init("smtpd");
    CHECK(log::tag() == "postfix-out/smtpd");
    mail::Config c;
    log::configure(c);
    CHECK(log::tag() == "postfix/smtpd");
    CHECK_FALSE(log::using_postlog());
    reset();
}

TEST_CASE("log: set_stderr copies each line with its tag")
{
    int pipefd[2];
    REQUIRE(pipe(pipefd) == 0);
    int saved = dup(STDERR_FILENO);
    dup2(pipefd[1], STDERR_FILENO);
    log::init("smtpd");
    log::set_stderr(true);
    log::warning("to stderr {}", 42);
    log::set_stderr(false);
    log::info("not copied");
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(pipefd[1]);
    char buf[512];
    ssize_t n = read(pipefd[0], buf, sizeof(buf));
    close(pipefd[0]);
    REQUIRE(n > 0);
    CHECK(std::string(buf, static_cast<size_t>(n))
          == "postfix/smtpd[" + pid_text() + "]: warning: to stderr 42\n");
    reset();
}

TEST_CASE("log: fatal and panic give their text to the test hook")
{
    log::init("smtpd");
    CHECK(fatal_text([] { log::fatal("bad {} = {}", "x", 1); }) == "bad x = 1");
    CHECK(fatal_text([] { log::panic("broken {}", "invariant"); })
          == "broken invariant");
    log::set_verbose(2);
    CHECK(log::verbose() == 2);
    log::set_verbose(0);
}

TEST_CASE("log: with POSTLOG_SERVICE set, lines before main.cf use postlog")
{
    FakePostlog fake;
    setenv("POSTLOG_SERVICE", fake.path.c_str(), 1);
    setenv("POSTLOG_HOSTNAME", "early.example.test", 1);
    log::init("smtpd");
    CHECK(log::using_postlog());
    log::warning("before main.cf");
    std::string got = fake.next();
    CHECK(got.substr(16)
          == "early postfix/smtpd[" + pid_text()
                 + "]: warning: before main.cf");

    // A bad maillog_file is reported there too, not lost in syslog.
    mail::Config c;
    c.set("maillog_file", "/tmp/not-allowed");
    CHECK(fatal_text([&] { log::configure(c); }) != "");
    got = fake.next();
    CHECK(got.find("]: fatal: maillog_file (/tmp/not-allowed)")
          != std::string::npos);

    // Without maillog_file, configure() goes back to syslog.
    mail::Config plain;
    log::configure(plain);
    CHECK_FALSE(log::using_postlog());
    reset();
}
