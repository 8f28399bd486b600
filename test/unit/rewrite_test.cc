// SPDX-License-Identifier: MIT
// NAME
//   rewrite_test.cc - unit tests for smtpd/rewrite
// DESCRIPTION
//   NetworkList tables, and RewriteClient against a scripted stand-in for
//   trivial-rewrite on a UNIX socket in a temporary directory, on the
//   same event loop: greeting check, strict replies with "flags" twice,
//   order, the 30 s cache, reconnect on hang-up and on server flags,
//   retries and the I/O timeout. The real trivial-rewrite is exercised
//   by test/integration/test_relay_probe.py.
#include "smtpd/rewrite.h"

#include "common/mail/attr.h"
#include "common/util/event.h"
#include "test/unit/catch.h"
#include <cstdlib>
#include <cstring>
#include <event2/listener.h>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <vector>

using namespace rs;
using namespace rs::smtpd;

TEST_CASE("rewrite: NetworkList matches IPv4 and IPv6 networks")
{
    auto l = NetworkList::parse(
        "127.0.0.0/8, 192.0.2.1 [::1]/128 [2001:db8::]/32 fe80::/10 [::2]");
    REQUIRE(l);
    CHECK(l->match("127.0.0.1"));
    CHECK(l->match("127.255.255.254"));
    CHECK(l->match("192.0.2.1"));
    CHECK_FALSE(l->match("192.0.2.2"));
    CHECK_FALSE(l->match("128.0.0.1"));
    CHECK(l->match("::1"));
    CHECK(l->match("::2"));
    CHECK_FALSE(l->match("::3"));
    CHECK(l->match("2001:db8:1::5"));
    CHECK_FALSE(l->match("2001:db9::5"));
    CHECK(l->match("fe80::1"));
    CHECK_FALSE(l->match("localhost"));
    CHECK_FALSE(l->match(""));
}

TEST_CASE("rewrite: NetworkList first match wins, ! excludes")
{
    auto l = NetworkList::parse("!10.1.0.0/16 10.0.0.0/8");
    REQUIRE(l);
    CHECK_FALSE(l->match("10.1.2.3"));
    CHECK(l->match("10.2.2.3"));
    auto empty = NetworkList::parse("");
    REQUIRE(empty);
    CHECK_FALSE(empty->match("127.0.0.1"));
    auto all = NetworkList::parse("0.0.0.0/0");
    REQUIRE(all);
    CHECK(all->match("203.0.113.9"));
    CHECK_FALSE(all->match("::1"));
}

TEST_CASE("rewrite: NetworkList refuses bad entries, naming them")
{
    // The host-bits and mask texts are those Postfix 3.7 logs.
    auto bits = NetworkList::parse("127.0.0.1/8");
    REQUIRE_FALSE(bits);
    CHECK(bits.error().text
          == "non-null host address bits in \"127.0.0.1/8\", perhaps you "
             "should use \"127.0.0.0/8\" instead");
    auto bits6 = NetworkList::parse("[2001:db8::1]/32");
    REQUIRE_FALSE(bits6);
    CHECK(bits6.error().text
          == "non-null host address bits in \"[2001:db8::1]/32\", perhaps "
             "you should use \"[2001:db8::]/32\" instead");
    auto mask = NetworkList::parse("127.0.0.0/33");
    REQUIRE_FALSE(mask);
    CHECK(mask.error().text == "bad mask length in \"127.0.0.0/33\"");
    for (const char* bad :
         {"foo.example", "hash:/etc/postfix/network_table",
          "/etc/postfix/networks", "1.2.3", "[::1", "1.2.3.4/x", "[::1]x"}) {
        auto r = NetworkList::parse(std::string("127.0.0.0/8 ") + bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().text.find(std::string("\"") + bad + "\"")
              != std::string::npos);
    }
}

namespace {

// A scripted trivial-rewrite: answers each request with `answer`.
struct FakeServer {
    event_base* base;
    std::string dir, path;
    evconnlistener* lst = nullptr;
    std::string greeting = "trivial_rewrite_protocol";
    std::function<mail::attr::List(const mail::attr::List&)> answer;
    std::vector<mail::attr::List> requests;
    int accepts = 0;
    bool silent = false;
    std::vector<bufferevent*> conns;

    explicit FakeServer(event_base* b) : base(b)
    {
        char tmpl[] = "/tmp/rs-rewrite-test-XXXXXX";
        dir = mkdtemp(tmpl);
        path = dir + "/rewrite";
        sockaddr_un sun{};
        sun.sun_family = AF_UNIX;
        std::strcpy(sun.sun_path, path.c_str());
        lst = evconnlistener_new_bind(
            base, on_accept, this, LEV_OPT_CLOSE_ON_FREE, 16,
            reinterpret_cast<sockaddr*>(&sun), sizeof sun);
        REQUIRE(lst);
    }
    ~FakeServer()
    {
        for (auto* c : conns) {
            bufferevent_free(c);
        }
        evconnlistener_free(lst);
        unlink(path.c_str());
        rmdir(dir.c_str());
    }
    void hang_up_all()
    {
        for (auto* c : conns) {
            bufferevent_free(c);
        }
        conns.clear();
    }
    static void on_accept(evconnlistener*, evutil_socket_t fd, sockaddr*, int,
                          void* arg)
    {
        auto* s = static_cast<FakeServer*>(arg);
        s->accepts++;
        bufferevent* b =
            bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
        s->conns.push_back(b);
        bufferevent_setcb(b, on_read, nullptr, nullptr, s);
        bufferevent_enable(b, EV_READ | EV_WRITE);
        std::string out;
        mail::attr::print0(out, {{"protocol", s->greeting}});
        bufferevent_write(b, out.data(), out.size());
    }
    static void on_read(bufferevent* b, void* arg)
    {
        auto* s = static_cast<FakeServer*>(arg);
        evbuffer* in = bufferevent_get_input(b);
        for (;;) {
            size_t len = evbuffer_get_length(in);
            auto* d = reinterpret_cast<const char*>(evbuffer_pullup(in, -1));
            auto got = mail::attr::scan0({d ? d : "", len}, 65536);
            if (!got || !*got) {
                return;
            }
            auto list = (*got)->list;
            evbuffer_drain(in, (*got)->consumed);
            s->requests.push_back(list);
            if (s->silent) {
                continue;
            }
            std::string out;
            mail::attr::print0(out, s->answer(list));
            bufferevent_write(b, out.data(), out.size());
        }
    }
};

mail::attr::List standard_answer(const mail::attr::List& req)
{
    auto type = mail::attr::find(req, "request");
    std::string addr(mail::attr::find(req, "address").value_or(""));
    if (type == "rewrite") {
        return {{"flags", "0"}, {"address", addr + ".canon"}};
    }
    return {{"flags", "0"},
            {"transport", "local"},
            {"nexthop", "mx.example"},
            {"recipient", addr},
            {"flags", "256"}};
}

// Run the loop until `done` or a few seconds passed.
void run_until(event_base* base, const std::function<bool()>& done,
               int seconds = 5)
{
    for (int i = 0; i < seconds * 100 && !done(); ++i) {
        timeval tv{0, 10000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
}

} // namespace

TEST_CASE("rewrite: requests are answered in order, flags read twice")
{
    EventBasePtr base(event_base_new());
    FakeServer srv(base.get());
    srv.answer = standard_answer;
    RewriteClient c(base.get(), srv.path);
    std::vector<std::string> got;
    c.rewrite("a b@x", [&](Result<std::string> r) {
        REQUIRE(r);
        got.push_back("rw:" + *r);
    });
    c.resolve("s@x", "b@y", [&](Result<Resolved> r) {
        REQUIRE(r);
        got.push_back("rs:" + r->transport + "/" + r->recipient + "/"
                      + std::to_string(r->flags));
    });
    CHECK(got.empty()); // never from inside the call
    run_until(base.get(), [&] { return got.size() == 2; });
    REQUIRE(got.size() == 2);
    CHECK(got[0] == "rw:a b@x.canon");
    CHECK(got[1] == "rs:local/b@y/256");
    REQUIRE(srv.requests.size() == 2);

    // The rewrite went out quoted, rule local; the resolve unquoted.
    mail::attr::List want_rw = {
        {"request", "rewrite"}, {"rule", "local"}, {"address", "\"a b\"@x"}};
    CHECK(srv.requests[0] == want_rw);
    mail::attr::List want_rs = {
        {"request", "resolve"}, {"sender", "s@x"}, {"address", "b@y"}};
    CHECK(srv.requests[1] == want_rs);
    CHECK(srv.accepts == 1);
}

TEST_CASE("rewrite: the last answer per type is reused")
{
    EventBasePtr base(event_base_new());
    FakeServer srv(base.get());
    srv.answer = standard_answer;
    RewriteClient c(base.get(), srv.path);
    int n = 0;
    auto count = [&](Result<std::string> r) {
        REQUIRE(r);
        n++;
    };
    c.rewrite("a@x", count);
    c.rewrite("a@x", count);
    c.rewrite("b@x", count);
    c.rewrite("a@x", count);
    run_until(base.get(), [&] { return n == 4; });
    CHECK(n == 4);
    CHECK(srv.requests.size() == 3); // a, b, a: one entry only
}

TEST_CASE("rewrite: a wrong greeting fails the request")
{
    EventBasePtr base(event_base_new());
    FakeServer srv(base.get());
    srv.greeting = "cleanup_protocol";
    srv.answer = standard_answer;
    RewriteClient c(base.get(), srv.path);
    std::optional<Result<std::string>> got;
    c.rewrite("a@x", [&](Result<std::string> r) { got = r; });
    run_until(base.get(), [&] { return got.has_value(); });
    REQUIRE(got);
    CHECK_FALSE(*got);
    CHECK(srv.requests.empty());
    CHECK(srv.accepts == 2); // tried twice
}

TEST_CASE("rewrite: server flags != 0 means a new connection next time")
{
    EventBasePtr base(event_base_new());
    FakeServer srv(base.get());
    srv.answer = [](const mail::attr::List& req) {
        auto a = standard_answer(req);
        a[0].second = "1";
        return a;
    };
    RewriteClient c(base.get(), srv.path);
    int n = 0;
    c.rewrite("a@x", [&](Result<std::string> r) { n += r ? 1 : 100; });
    c.rewrite("b@x", [&](Result<std::string> r) { n += r ? 1 : 100; });
    run_until(base.get(), [&] { return n >= 2; });
    CHECK(n == 2);
    CHECK(srv.accepts == 2);
}

TEST_CASE("rewrite: a hang-up while idle is survived")
{
    EventBasePtr base(event_base_new());
    FakeServer srv(base.get());
    srv.answer = standard_answer;
    RewriteClient c(base.get(), srv.path);
    int n = 0;
    c.rewrite("a@x", [&](Result<std::string> r) { n += r ? 1 : 100; });
    run_until(base.get(), [&] { return n == 1; });
    srv.hang_up_all();
    run_until(
        base.get(), [] { return false; }, 1);
    c.rewrite("b@x", [&](Result<std::string> r) { n += r ? 1 : 100; });
    run_until(base.get(), [&] { return n >= 2; });
    CHECK(n == 2);
    CHECK(srv.accepts == 2);
}

TEST_CASE("rewrite: a malformed reply is retried, then an error")
{
    EventBasePtr base(event_base_new());
    FakeServer srv(base.get());
    srv.answer = [](const mail::attr::List&) {
        return mail::attr::List{{"flags", "0"}, {"address", "x"}};
    };
    RewriteClient c(base.get(), srv.path);
    std::optional<Result<Resolved>> got;
    c.resolve("", "a@x", [&](Result<Resolved> r) { got = r; });
    run_until(base.get(), [&] { return got.has_value(); });
    REQUIRE(got);
    CHECK_FALSE(*got);
    CHECK(srv.requests.size() == 2);
}

TEST_CASE("rewrite: an empty transport is not an answer")
{
    EventBasePtr base(event_base_new());
    FakeServer srv(base.get());
    srv.answer = [](const mail::attr::List& req) {
        auto a = standard_answer(req);
        a[1].second = "";
        return a;
    };
    RewriteClient c(base.get(), srv.path);
    std::optional<Result<Resolved>> got;
    c.resolve("", "a@x", [&](Result<Resolved> r) { got = r; });
    run_until(base.get(), [&] { return got.has_value(); });
    REQUIRE(got);
    CHECK_FALSE(*got);
}

TEST_CASE("rewrite: a silent server times out")
{
    EventBasePtr base(event_base_new());
    FakeServer srv(base.get());
    srv.silent = true;
    RewriteClient c(base.get(), srv.path);
    c.set_timeout(1);
    c.set_max_tries(1);
    std::optional<Result<std::string>> got;
    c.rewrite("a@x", [&](Result<std::string> r) { got = r; });
    run_until(
        base.get(), [&] { return got.has_value(); }, 4);
    REQUIRE(got);
    CHECK_FALSE(*got);
    CHECK(got->error().text.find("timeout") != std::string::npos);
}

TEST_CASE("rewrite: no server at all gives an error")
{
    EventBasePtr base(event_base_new());
    RewriteClient c(base.get(), "/nonexistent/private/rewrite");
    c.set_max_tries(1);
    std::optional<Result<std::string>> got;
    c.rewrite("a@x", [&](Result<std::string> r) { got = r; });
    run_until(base.get(), [&] { return got.has_value(); });
    REQUIRE(got);
    CHECK_FALSE(*got);
}
