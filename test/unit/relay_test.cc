// SPDX-License-Identifier: MIT
// NAME
//   relay_test.cc - unit tests for smtpd/relay
// DESCRIPTION
//   RelayChecker against a scripted trivial-rewrite that answers the way
//   the lab's real one did (lab.example local, relay.example in
//   relay_domains, anything else default class, ROUTED on % @ ! in a
//   non-local address). The expected replies are those Postfix 3.7.11's
//   smtpd gave for the same restriction lists; the comparison with the
//   real programs is test/integration/test_relay_probe.py.
#include "smtpd/relay.h"

#include "common/mail/attr.h"
#include "common/mail/config.h"
#include "common/mail/log.h"
#include "common/util/event.h"
#include "test/unit/catch.h"
#include <cstring>
#include <event2/listener.h>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

using namespace rs;
using namespace rs::smtpd;

namespace {

struct Fatal : std::runtime_error {
    using std::runtime_error::runtime_error;
};

void throw_fatal(const std::string& text)
{
    throw Fatal(text);
}

// A trivial-rewrite stand-in: greeting, then one answer per request.
struct FakeRewrite {
    event_base* base;
    std::string dir, path;
    evconnlistener* lst = nullptr;
    std::vector<bufferevent*> conns;
    int requests = 0;

    explicit FakeRewrite(event_base* b) : base(b)
    {
        char tmpl[] = "/tmp/rs-relay-test-XXXXXX";
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
    ~FakeRewrite()
    {
        for (auto* c : conns) {
            bufferevent_free(c);
        }
        evconnlistener_free(lst);
        unlink(path.c_str());
        rmdir(dir.c_str());
    }
    static void on_accept(evconnlistener*, evutil_socket_t fd, sockaddr*, int,
                          void* arg)
    {
        auto* s = static_cast<FakeRewrite*>(arg);
        bufferevent* b =
            bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
        s->conns.push_back(b);
        bufferevent_setcb(b, on_read, nullptr, nullptr, s);
        bufferevent_enable(b, EV_READ | EV_WRITE);
        std::string out;
        mail::attr::print0(out, {{"protocol", "trivial_rewrite_protocol"}});
        bufferevent_write(b, out.data(), out.size());
    }
    static mail::attr::List answer(const mail::attr::List& req)
    {
        auto type = mail::attr::find(req, "request");
        std::string a(mail::attr::find(req, "address").value_or(""));
        if (type == "rewrite") {
            if (a.find('@') == std::string::npos) {
                a += "@lab.example";
            }
            return {{"flags", "0"}, {"address", a}};
        }
        std::string local = a.substr(0, a.rfind('@'));
        std::string domain = a.substr(a.rfind('@') + 1);
        bool routed = local.find_first_of("@%!") != std::string::npos;
        unsigned flags = 4096;
        if (domain == "lab.example" || domain == "[127.0.0.1]") {
            flags = routed ? 4096 : 256; // Postfix strips and re-resolves
        } else if (domain == "relay.example") {
            flags = 2048 | (routed ? 2 : 0);
        } else if (domain == "fail.example") {
            flags = 4096 | 8;
        }
        return {{"flags", "0"},
                {"transport", "smtp"},
                {"nexthop", domain},
                {"recipient", a},
                {"flags", std::to_string(flags)}};
    }
    static void on_read(bufferevent* b, void* arg)
    {
        auto* s = static_cast<FakeRewrite*>(arg);
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
            s->requests++;
            std::string out;
            mail::attr::print0(out, answer(list));
            bufferevent_write(b, out.data(), out.size());
        }
    }
};

struct Lab {
    Lab() { log::set_stderr(true); }
    EventBasePtr base{event_base_new()};
    FakeRewrite srv{base.get()};
    RewriteClient rw{base.get(), srv.path};
};

// One RCPT through a checker built from main.cf text `cf`.
CheckResult check(Lab& lab, const std::string& cf, const std::string& rcpt,
                  const std::string& client = "127.0.0.1",
                  const std::string& sasl = "")
{
    mail::Config config;
    std::string base = "relay_domains = relay.example\n";
    if (cf.find("mynetworks =") == std::string::npos) {
        base += "mynetworks = 127.0.0.0/8\n";
    }
    config.read_text(base + cf, "test");
    RelayChecker rc(config, lab.rw);
    RcptQuery q;
    q.client_addr = client;
    q.sender = "a@lab.example";
    q.recipient = rcpt;
    q.recipient_typed = rcpt;
    q.sasl_username = sasl;
    std::optional<CheckResult> got;
    rc.check_rcpt(q, [&](CheckResult r) { got = std::move(r); });
    CHECK_FALSE(got); // never from inside the call
    for (int i = 0; i < 300 && !got; ++i) {
        timeval tv{0, 10000};
        event_base_loopexit(lab.base.get(), &tv);
        event_base_dispatch(lab.base.get());
    }
    REQUIRE(got);
    return *got;
}

std::string reply(Lab& lab, const std::string& cf, const std::string& rcpt,
                  const std::string& client = "127.0.0.1")
{
    CheckResult r = check(lab, cf, rcpt, client);
    return r.accepted ? "OK" : r.reply;
}

const std::string kDefault =
    "smtpd_relay_restrictions = reject_unauth_destination\n";

} // namespace

TEST_CASE("relay: reject_unauth_destination as the lab's Postfix answered")
{
    Lab lab;
    CHECK(reply(lab, kDefault, "b@lab.example") == "OK");
    CHECK(reply(lab, kDefault, "postmaster") == "OK");
    CHECK(reply(lab, kDefault, "b@[127.0.0.1]") == "OK");
    CHECK(reply(lab, kDefault, "z@relay.example") == "OK");
    CHECK(reply(lab, kDefault, "z@foreign.example")
          == "554 5.7.1 <z@foreign.example>: Relay access denied");
    CHECK(reply(lab, kDefault, "b@foreign@lab.example")
          == "554 5.7.1 <b@foreign@lab.example>: Relay access denied");
    CHECK(reply(lab, kDefault, "z%x@relay.example")
          == "554 5.7.1 <z%x@relay.example>: Relay access denied");
}

TEST_CASE("relay: allow_untrusted_routing lets routed relay addresses by")
{
    Lab lab;
    std::string cf = kDefault + "allow_untrusted_routing = yes\n";
    CHECK(reply(lab, cf, "z%x@relay.example") == "OK");
    CHECK(reply(lab, cf, "z@x@relay.example") == "OK");
    CHECK(reply(lab, cf, "b@foreign@lab.example")
          == "554 5.7.1 <b@foreign@lab.example>: Relay access denied");
}

TEST_CASE("relay: permit_mynetworks first or last")
{
    Lab lab;
    std::string first = "smtpd_relay_restrictions = permit_mynetworks, "
                        "reject_unauth_destination\n";
    CHECK(reply(lab, first, "z@foreign.example") == "OK");
    CHECK(reply(lab, first, "z@foreign.example", "192.0.2.1")
          == "554 5.7.1 <z@foreign.example>: Relay access denied");
    std::string last = "smtpd_relay_restrictions = reject_unauth_destination, "
                       "permit_mynetworks\n";
    CHECK(reply(lab, last, "z@foreign.example")
          == "554 5.7.1 <z@foreign.example>: Relay access denied");
    std::string out = first + "mynetworks = 10.0.0.0/8\n";
    CHECK(reply(lab, out, "z@foreign.example")
          == "554 5.7.1 <z@foreign.example>: Relay access denied");
}

TEST_CASE("relay: both lists must pass")
{
    Lab lab;
    std::string cf = "smtpd_relay_restrictions = permit_mynetworks\n"
                     "smtpd_recipient_restrictions = "
                     "reject_unauth_destination\n";
    CHECK(reply(lab, cf, "z@foreign.example")
          == "554 5.7.1 <z@foreign.example>: Relay access denied");
    CHECK(reply(lab, cf, "z@relay.example") == "OK");
    std::string permit = "smtpd_relay_restrictions = permit\n"
                         "smtpd_recipient_restrictions = reject\n";
    CHECK(reply(lab, permit, "b@lab.example")
          == "554 5.7.1 <b@lab.example>: Recipient address rejected: Access "
             "denied");
}

TEST_CASE("relay: each action's reply")
{
    Lab lab;
    auto r = [&](const std::string& list, const std::string& rcpt) {
        return reply(lab, "smtpd_relay_restrictions = " + list + "\n", rcpt);
    };
    CHECK(r("defer_unauth_destination", "z@foreign.example")
          == "454 4.7.1 <z@foreign.example>: Relay access denied");
    CHECK(r("defer_unauth_destination", "z@relay.example") == "OK");
    CHECK(r("reject", "b@lab.example")
          == "554 5.7.1 <b@lab.example>: Recipient address rejected: Access "
             "denied");
    CHECK(r("defer", "b@lab.example")
          == "450 4.3.2 <b@lab.example>: Recipient address rejected: Try "
             "again later");
    CHECK(r("defer_if_permit, permit", "b@lab.example")
          == "450 4.7.0 <b@lab.example>: Recipient address rejected: "
             "defer_if_permit requested");
    CHECK(r("defer_if_permit, reject_unauth_destination", "z@foreign.example")
          == "554 5.7.1 <z@foreign.example>: Relay access denied");
    CHECK(r("defer_if_permit, reject_unauth_destination", "z@relay.example")
          == "450 4.7.0 <z@relay.example>: Recipient address rejected: "
             "defer_if_permit requested");
    CHECK(r("permit_auth_destination, reject", "z@relay.example") == "OK");
    CHECK(r("permit_auth_destination, reject", "z@foreign.example")
          == "554 5.7.1 <z@foreign.example>: Recipient address rejected: "
             "Access denied");
    CHECK(r("permit_sasl_authenticated, reject", "b@lab.example")
          == "554 5.7.1 <b@lab.example>: Recipient address rejected: Access "
             "denied");
    CHECK(r("reject_unauth_pipelining, reject_unauth_destination",
            "b@lab.example")
          == "OK");
}

TEST_CASE("relay: a bare postmaster passes every restriction")
{
    Lab lab;
    auto r = [&](const std::string& list, const std::string& rcpt) {
        return reply(lab, "smtpd_relay_restrictions = " + list + "\n", rcpt);
    };
    CHECK(r("reject", "postmaster") == "OK");
    CHECK(r("defer", "Postmaster") == "OK");
    CHECK(r("bogus, reject", "POSTMASTER") == "OK");
    CHECK(r("reject", "postmaster@lab.example")
          == "554 5.7.1 <postmaster@lab.example>: Recipient address rejected: "
             "Access denied");
}

TEST_CASE("relay: permit_sasl_authenticated matches a logged-in client")
{
    Lab lab;
    auto res = check(lab,
                     "smtpd_relay_restrictions = permit_sasl_authenticated,"
                     " reject\n",
                     "z@foreign.example", "192.0.2.1", "user");
    CHECK(res.accepted);
}

TEST_CASE("relay: the reply codes follow their parameters")
{
    Lab lab;
    CHECK(reply(lab, kDefault + "relay_domains_reject_code = 550\n",
                "z@foreign.example")
          == "550 5.7.1 <z@foreign.example>: Relay access denied");
    CHECK(reply(lab,
                "smtpd_relay_restrictions = defer_unauth_destination\n"
                "relay_domains_reject_code = 550\n",
                "z@foreign.example")
          == "450 4.7.1 <z@foreign.example>: Relay access denied");
    CHECK(reply(lab, "smtpd_relay_restrictions = reject\nreject_code = 450\n",
                "b@lab.example")
          == "450 4.7.1 <b@lab.example>: Recipient address rejected: Access "
             "denied");
}

TEST_CASE("relay: unknown restriction is a configuration error")
{
    Lab lab;
    auto res = check(lab,
                     "smtpd_relay_restrictions = bogus_restriction, "
                     "reject_unauth_destination\n",
                     "b@lab.example");
    CHECK_FALSE(res.accepted);
    CHECK(res.reply == "451 4.3.5 Server configuration error");
    CHECK(res.warning == "unknown smtpd restriction: \"bogus_restriction\"");
    auto later = check(lab,
                       "smtpd_relay_restrictions = permit_mynetworks, "
                       "not_reached, reject_unauth_destination\n",
                       "b@lab.example");
    CHECK(later.accepted); // the permit ended the list first
}

TEST_CASE("relay: check_relay_domains warns and refuses like Postfix")
{
    Lab lab;
    std::string cf = "smtpd_relay_restrictions = check_relay_domains\n";
    auto res = check(lab, cf, "z@foreign.example");
    CHECK(res.reply
          == "554 5.7.1 <z@foreign.example>: Recipient address rejected: "
             "Relay access denied");
    CHECK(res.warning
          == "support for restriction \"check_relay_domains\" will be "
             "removed from Postfix; use \"reject_unauth_destination\" "
             "instead");
    CHECK(check(lab, cf, "z@relay.example").accepted);
}

TEST_CASE("relay: a failed resolve is a temporary lookup failure")
{
    Lab lab;
    CHECK(reply(lab, kDefault, "z@fail.example")
          == "451 4.3.0 <z@fail.example>: Temporary lookup failure");
}

TEST_CASE("relay: a bad mynetworks fails permit_mynetworks temporarily")
{
    Lab lab;
    std::string cf = "smtpd_relay_restrictions = permit_mynetworks, "
                     "reject_unauth_destination\nmynetworks = 127.0.0.1/8\n";
    auto res = check(lab, cf, "z@foreign.example");
    CHECK(res.reply
          == "451 4.3.0 <z@foreign.example>: Temporary lookup "
             "failure");
    CHECK(res.warning
          == "mynetworks: non-null host address bits in \"127.0.0.1/8\", "
             "perhaps you should use \"127.0.0.0/8\" instead");
}

TEST_CASE("relay: a lookup is made only when a restriction needs it")
{
    Lab lab;
    reply(lab, "smtpd_relay_restrictions = permit_mynetworks, reject\n",
          "z@foreign.example");
    CHECK(lab.srv.requests == 0);
    reply(lab, kDefault, "z@foreign.example");
    CHECK(lab.srv.requests == 2); // rewrite, then resolve
}

TEST_CASE("relay: no relay-safe restriction is fatal at start-up")
{
    CHECK(relay_safety_error({"permit_mynetworks"}, {}).has_value());
    CHECK(relay_safety_error({}, {}).has_value());
    CHECK_FALSE(relay_safety_error({"permit"}, {"defer_if_permit"}));
    for (const char* ok :
         {"reject_unauth_destination", "defer_unauth_destination", "reject",
          "defer", "defer_if_permit", "check_relay_domains"}) {
        CHECK_FALSE(relay_safety_error({ok}, {}));
    }

    Lab lab;
    mail::Config config;
    config.read_text("smtpd_relay_restrictions = permit\n"
                     "smtpd_recipient_restrictions = permit_mynetworks\n",
                     "test");
    log::set_fatal_hook(throw_fatal);
    std::string text;
    try {
        RelayChecker rc(config, lab.rw);
    } catch (const Fatal& e) {
        text = e.what();
    }
    log::set_fatal_hook(nullptr);
    CHECK(text
          == "in parameter smtpd_relay_restrictions or "
             "smtpd_recipient_restrictions, specify at least one working "
             "instance of: reject_unauth_destination, "
             "defer_unauth_destination, reject, defer, defer_if_permit or "
             "check_relay_domains");
}

TEST_CASE("relay: in_mynetworks")
{
    Lab lab;
    mail::Config config;
    config.read_text("mynetworks = 127.0.0.0/8 [::1]/128\n"
                     "smtpd_relay_restrictions = reject_unauth_destination\n",
                     "test");
    RelayChecker rc(config, lab.rw);
    CHECK(rc.in_mynetworks("127.0.0.1"));
    CHECK(rc.in_mynetworks("::1"));
    CHECK_FALSE(rc.in_mynetworks("192.0.2.1"));
}

TEST_CASE("relay: mynetworks is computed from mynetworks_style when unset")
{
    mail::Config config;
    config.read_text("inet_protocols = ipv4\nmynetworks_style = host\n",
                     "test");
    std::string host = computed_mynetworks(config);
    CHECK(host.find("127.0.0.1/32") != std::string::npos);
    CHECK(host.find('[') == std::string::npos); // no IPv6 asked for
    config.read_text("mynetworks_style = subnet\n", "test2");
    CHECK(computed_mynetworks(config).find("127.0.0.0/8") != std::string::npos);
    // The checker uses it: 127.0.0.1 is ours under style host.
    Lab lab;
    mail::Config c2;
    c2.read_text("inet_protocols = ipv4\nmynetworks_style = host\n"
                 "smtpd_relay_restrictions = reject_unauth_destination\n",
                 "test4");
    RelayChecker rc(c2, lab.rw);
    CHECK(rc.in_mynetworks("127.0.0.1"));
    CHECK_FALSE(rc.in_mynetworks("127.0.0.2"));
}
