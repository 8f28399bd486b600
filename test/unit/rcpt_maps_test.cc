// SPDX-License-Identifier: MIT
// NAME
//   rcpt_maps_test.cc - unit tests for smtpd/rcpt_maps
// DESCRIPTION
//   RecipientMaps with inline:, texthash: and broken tables, fed the
//   Resolved answers the lab's trivial-rewrite gave (local class for
//   lab.example, virtual, alias and relay classes for their domains).
//   The expected replies are those Postfix 3.7.11's smtpd gave; the
//   comparison with the real program is test/integration/test_rcpt_maps.py.
#include "smtpd/rcpt_maps.h"

#include "common/mail/log.h"
#include "test/unit/catch.h"
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <unistd.h>

using namespace rs;
using namespace rs::smtpd;

namespace {

Resolved local(std::string rcpt)
{
    return Resolved{"local", "mx.lab.example", std::move(rcpt),
                    RESOLVE_FLAG_FINAL | RESOLVE_CLASS_LOCAL};
}

Resolved of_class(unsigned cls, std::string rcpt,
                  std::string transport = "virtual")
{
    return Resolved{std::move(transport), "x", std::move(rcpt),
                    RESOLVE_FLAG_FINAL | cls};
}

std::string unknown_local(std::string_view r)
{
    return "550 5.1.1 <" + std::string(r)
           + ">: Recipient address rejected: User unknown in local "
             "recipient table";
}

RecipientMaps make(const std::string& main_cf)
{
    mail::Config c;
    c.read_text(main_cf, "test");
    return RecipientMaps(c);
}

} // namespace

TEST_CASE("rcpt_maps: unknown local user refused, known user accepted")
{
    auto m = make("local_recipient_maps = inline:{a=x, b=y}\n"
                  "recipient_delimiter = +\n");
    CHECK(m.check(local("a@lab.example"), "a@lab.example") == std::nullopt);
    CHECK(m.check(local("A@LAB.EXAMPLE"), "A@LAB.EXAMPLE") == std::nullopt);
    CHECK(m.check(local("nosuch@lab.example"), "nosuch@lab.example")
          == unknown_local("nosuch@lab.example"));
}

TEST_CASE("rcpt_maps: user+ext matches the user when + is the delimiter")
{
    auto plus = make("local_recipient_maps = inline:{a=x}\n"
                     "recipient_delimiter = +\n");
    CHECK(plus.check(local("a+ext@lab.example"), "a+ext@lab.example")
          == std::nullopt);
    CHECK(plus.check(local("z+ext@lab.example"), "z+ext@lab.example")
          == unknown_local("z+ext@lab.example"));

    // Without a delimiter "a+ext" is a user name of its own.
    auto none = make("local_recipient_maps = inline:{a=x}\n"
                     "recipient_delimiter =\n");
    CHECK(none.check(local("a+ext@lab.example"), "a+ext@lab.example")
          == unknown_local("a+ext@lab.example"));
}

TEST_CASE("rcpt_maps: postmaster, MAILER-DAEMON, double-bounce always known")
{
    auto m = make("local_recipient_maps = inline:{a=x}\n"
                  "recipient_delimiter = +\n");
    CHECK(m.check(local("postmaster@lab.example"), "postmaster")
          == std::nullopt);
    CHECK(m.check(local("POSTMASTER@lab.example"), "POSTMASTER@lab.example")
          == std::nullopt);
    CHECK(m.check(local("MAILER-DAEMON@lab.example"), "MAILER-DAEMON")
          == std::nullopt);
    CHECK(
        m.check(local("Double-Bounce@lab.example"), "Double-Bounce@lab.example")
        == std::nullopt);

    // Not with an extension, and not other role names.
    CHECK(m.check(local("postmaster+x@lab.example"), "postmaster+x@lab.example")
          == unknown_local("postmaster+x@lab.example"));
    CHECK(m.check(local("abuse@lab.example"), "abuse@lab.example")
          == unknown_local("abuse@lab.example"));
}

TEST_CASE("rcpt_maps: empty local_recipient_maps checks nothing")
{
    auto m = make("local_recipient_maps =\n");
    CHECK(m.check(local("nosuch@lab.example"), "nosuch@lab.example")
          == std::nullopt);
}

TEST_CASE("rcpt_maps: the check is off with no_unknown_recipient_checks")
{
    auto m = make("local_recipient_maps = inline:{a=x}\n"
                  "receive_override_options = no_header_body_checks,"
                  " no_unknown_recipient_checks\n");
    CHECK_FALSE(m.enabled());
    CHECK(m.check(local("nosuch@lab.example"), "nosuch@lab.example")
          == std::nullopt);
    auto off = make("local_recipient_maps = inline:{a=x}\n"
                    "smtpd_reject_unlisted_recipient = no\n");
    CHECK(off.check(local("nosuch@lab.example"), "nosuch@lab.example")
          == std::nullopt);
}

TEST_CASE("rcpt_maps: a virtual alias makes a local address known")
{
    auto m = make("local_recipient_maps = inline:{a=x}\n"
                  "virtual_alias_maps = inline:{v@lab.example=a}\n");
    CHECK(m.check(local("v@lab.example"), "v@lab.example") == std::nullopt);
}

TEST_CASE("rcpt_maps: full address and @domain keys are tried")
{
    auto m = make("local_recipient_maps = inline:{full@lab.example=1}\n"
                  "virtual_mailbox_maps = inline:{@vmb.example=1}\n");
    CHECK(m.check(local("full@lab.example"), "full@lab.example")
          == std::nullopt);
    CHECK(m.check(local("full@other.example"), "full@other.example")
          == unknown_local("full@other.example"));
    CHECK(m.check(of_class(RESOLVE_CLASS_VIRTUAL, "any@vmb.example"),
                  "any@vmb.example")
          == std::nullopt);
}

TEST_CASE("rcpt_maps: virtual mailbox, alias and relay classes")
{
    auto m = make("virtual_mailbox_maps = inline:{ok@vmb.example=1}\n"
                  "relay_recipient_maps = inline:{ok@relay.example=1}\n"
                  "unknown_relay_recipient_reject_code = 450\n");
    auto soft = make("unknown_virtual_alias_reject_code = 450\n");
    CHECK(soft.check(of_class(RESOLVE_CLASS_ALIAS, "x@valias.example", "error"),
                     "x@valias.example")
          == "450 4.1.1 <x@valias.example>: Recipient address rejected: "
             "User unknown in virtual alias table");
    CHECK(m.check(of_class(RESOLVE_CLASS_VIRTUAL, "ok@vmb.example"),
                  "ok@vmb.example")
          == std::nullopt);
    CHECK(m.check(of_class(RESOLVE_CLASS_VIRTUAL, "no@vmb.example"),
                  "no@vmb.example")
          == "550 5.1.1 <no@vmb.example>: Recipient address rejected: User "
             "unknown in virtual mailbox table");
    CHECK(m.check(of_class(RESOLVE_CLASS_ALIAS, "x@valias.example"),
                  "x@valias.example")
          == "550 5.1.1 <x@valias.example>: Recipient address rejected: "
             "User unknown in virtual alias table");
    CHECK(m.check(of_class(RESOLVE_CLASS_RELAY, "ok@relay.example", "relay"),
                  "ok@relay.example")
          == std::nullopt);
    CHECK(m.check(of_class(RESOLVE_CLASS_RELAY, "no@relay.example", "relay"),
                  "no@relay.example")
          == "450 4.1.1 <no@relay.example>: Recipient address rejected: "
             "User unknown in relay recipient table");
}

TEST_CASE("rcpt_maps: the error transport is refused with its text")
{
    auto m = make("relay_recipient_maps = inline:{ok@relay.example=1}\n");
    Resolved r{"error", "5.7.1 lab instance: outbound delivery disabled",
               "ok@relay.example", RESOLVE_FLAG_FINAL | RESOLVE_CLASS_RELAY};
    CHECK(m.check(r, "ok@relay.example")
          == "550 5.7.1 <ok@relay.example>: Recipient address rejected: lab "
             "instance: outbound delivery disabled");
    r.nexthop = "4.3.2 try later";
    CHECK(m.check(r, "ok@relay.example")
          == "450 4.3.2 <ok@relay.example>: Recipient address rejected: try "
             "later");
}

TEST_CASE("rcpt_maps: a table that cannot be read is a temporary failure")
{
    auto m = make("local_recipient_maps = hash:/nonexistent/x\n");
    CHECK(m.check(local("a@lab.example"), "a@lab.example")
          == "451 4.3.0 <a@lab.example>: Temporary lookup failure");
    CHECK(m.check(local("postmaster@lab.example"), "postmaster")
          == std::nullopt);
    Resolved fail = local("a@lab.example");
    fail.flags |= RESOLVE_FLAG_FAIL;
    auto none = make("local_recipient_maps =\n");
    CHECK(none.check(fail, "a@lab.example")
          == "451 4.3.0 <a@lab.example>: Temporary lookup failure");
}

TEST_CASE("rcpt_maps: texthash table and local part keys")
{
    char tmpl[] = "/tmp/rs-rcpt-maps-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    std::string dir = tmpl;
    std::ofstream(dir + "/users") << "alice x\nbob y\n";
    auto m = make("local_recipient_maps = texthash:" + dir
                  + "/users unix:passwd.byname\n");
    CHECK(m.check(local("alice@lab.example"), "alice@lab.example")
          == std::nullopt);
    CHECK(m.check(local("root@lab.example"), "root@lab.example")
          == std::nullopt);
    CHECK(m.check(local("carol@lab.example"), "carol@lab.example")
          == unknown_local("carol@lab.example"));
    CHECK_FALSE(m.changed());
    std::remove((dir + "/users").c_str());
    rmdir(dir.c_str());
}

TEST_CASE("rcpt_maps: a rewritten hash table is reported as Postfix names it")
{
    if (access("/usr/sbin/postmap", X_OK) != 0) {
        WARN("postmap not installed; skipped");
        return;
    }
    char tmpl[] = "/tmp/rs-rcpt-maps-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    std::string dir = tmpl;
    std::ofstream(dir + "/main.cf") << "compatibility_level = 3.6\n";
    std::ofstream(dir + "/users") << "a x\n";
    std::string postmap =
        "/usr/sbin/postmap -c " + dir + " hash:" + dir + "/users";
    REQUIRE(std::system(postmap.c_str()) == 0);

    // smtputf8_enable follows compatibility_level, and utf8_request it.
    auto m = make("compatibility_level = 3.6\n"
                  "local_recipient_maps = hash:"
                  + dir + "/users\n");
    CHECK(m.check(local("a@lab.example"), "a@lab.example") == std::nullopt);
    CHECK(m.check(local("zz@lab.example"), "zz@lab.example")
          == unknown_local("zz@lab.example"));
    CHECK_FALSE(m.changed());

    // postmap rewrites the file in place; the open table notices.
    usleep(20000);
    REQUIRE(std::system(postmap.c_str()) == 0);
    CHECK(m.changed()
          == "hash:" + dir + "/users(0,lock|fold_fix|utf8_request)");
    std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("rcpt_maps: a quoted local part is found quoted or unquoted")
{
    auto m = make("local_recipient_maps = inline:{{\"q..1\"=x}, q..2=y}\n");
    CHECK(m.check(local("q..1@lab.example"), "q..1@lab.example")
          == std::nullopt);
    CHECK(m.check(local("q..2@lab.example"), "q..2@lab.example")
          == std::nullopt);
    CHECK(m.check(local("q..3@lab.example"), "q..3@lab.example")
          == unknown_local("q..3@lab.example"));
}

TEST_CASE("rcpt_maps: double_bounce_sender names the bounce address")
{
    auto m = make("local_recipient_maps = inline:{a=x}\n"
                  "double_bounce_sender = bouncer\n");
    CHECK(m.check(local("bouncer@lab.example"), "bouncer@lab.example")
          == std::nullopt);
    CHECK(
        m.check(local("double-bounce@lab.example"), "double-bounce@lab.example")
        == unknown_local("double-bounce@lab.example"));
}

namespace {

struct Fatal : std::runtime_error {
    using std::runtime_error::runtime_error;
};

void throw_fatal(const std::string& text)
{
    throw Fatal(text);
}

} // namespace

TEST_CASE("rcpt_maps: a proxy: table proxymap would not serve is fatal")
{
    log::set_fatal_hook(throw_fatal);

    // The default proxy_read_maps names proxy:unix:passwd.byname through
    // the default local_recipient_maps.
    CHECK_NOTHROW(make("compatibility_level = 3.6\n"));
    CHECK_NOTHROW(make("local_recipient_maps = proxy:inline:{a=b}\n"
                       "proxy_read_maps = proxy:inline:{a=b}\n"));
    try {
        make("local_recipient_maps = proxy:unix:passwd.byname\n"
             "proxy_read_maps = proxy:hash:/etc/aliases\n");
        FAIL("no fatal");
    } catch (const Fatal& f) {
        CHECK(std::string(f.what())
              == "proxymap service is not configured for table "
                 "\"unix:passwd.byname\"");
    }
    log::set_fatal_hook(nullptr);
}
