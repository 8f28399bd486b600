// SPDX-License-Identifier: MIT
// Unit tests for smtpd/chat: counters, soft_bounce, log escapes.
#include "smtpd/chat.h"
#include "test/unit/catch.h"

using namespace rs::smtpd;

TEST_CASE("chat: disconnect counters follow Postfix's table and ok/total form")
{
    CommandCounters c;
    c.succeeded(c.started("QUIT"));
    c.started("rcpt");
    c.succeeded(c.started("RCPT"));
    c.succeeded(c.started("ehlo"));
    c.succeeded(c.started("mail"));
    c.started("HELP");
    // Observed: "... ehlo=1 mail=1 rcpt=1/2 quit=1 unknown=0/1 commands=4/6".
    CHECK(c.summary()
          == " ehlo=1 mail=1 rcpt=1/2 quit=1 unknown=0/1"
             " commands=4/6");
}

TEST_CASE("chat: a session without commands says commands=0/0")
{
    CommandCounters c;
    CHECK(c.summary() == " commands=0/0");
}

TEST_CASE("chat: all commands ok gives commands=N without a total")
{
    CommandCounters c;
    c.succeeded(c.started("ehlo"));
    c.succeeded(c.started("quit"));
    CHECK(c.summary() == " ehlo=1 quit=1 commands=2");
}

TEST_CASE("chat: soft_bounce turns 5xx and its 5.x.y into 4xx and 4.x.y")
{
    CHECK(soft_bounce_reply("554 5.7.1 <a@b>: Relay access denied")
          == "454 4.7.1 <a@b>: Relay access denied");
    CHECK(soft_bounce_reply("500 Syntax: x") == "400 Syntax: x");
    CHECK(soft_bounce_reply("250 2.0.0 Ok") == "250 2.0.0 Ok");
    CHECK(soft_bounce_reply("452 4.5.3 Error") == "452 4.5.3 Error");
    CHECK(soft_bounce_reply("550-5.1.1 a\r\n550 5.1.1 b")
          == "450-4.1.1 a\r\n450 4.1.1 b");
}

TEST_CASE("chat: pipelining log text escapes CR LF and binary, bounded")
{
    CHECK(escape_for_log("EHLO x\r\n") == "EHLO x\\r\\n");
    CHECK(escape_for_log(std::string("a\0b", 3)) == "a\\000b");
    CHECK(escape_for_log("back\\slash") == "back\\\\slash");
    CHECK(escape_for_log(std::string(300, 'x')).size() == 100);
}

TEST_CASE("chat: request_head shows 30 bytes and an ellipsis")
{
    std::string line = "NOOP " + std::string(3000, 'a');
    CHECK(request_head(line) == "NOOP " + std::string(25, 'a') + "...");
}
