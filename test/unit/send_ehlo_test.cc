// SPDX-License-Identifier: MIT
// Unit tests for client/send_ehlo.
#include "client/send_ehlo.h"
#include "test/unit/catch.h"

using namespace rs::send;

namespace {

Reply ehlo_reply(std::vector<std::string> keywords, int code = 250)
{
    Reply r;
    r.code = code;
    r.lines.push_back("mx.example greets you");
    for (auto& k : keywords) {
        r.lines.push_back(k);
    }
    return r;
}

} // namespace

TEST_CASE("send_ehlo: Postfix's keywords, in any case")
{
    auto e = parse_ehlo(
        ehlo_reply({"PIPELINING", "size 10240000", "VRFY", "starttls",
                    "8BITMIME", "SMTPUTF8", "Chunking", "DSN"}));
    CHECK(e.pipelining);
    CHECK(e.size);
    CHECK(e.size_limit == 10240000);
    CHECK(e.starttls);
    CHECK(e.eightbitmime);
    CHECK(e.smtputf8);
    CHECK(e.chunking);
    CHECK_FALSE(e.xresume);
}

TEST_CASE("send_ehlo: the greeting line is not a keyword")
{
    Reply r;
    r.code = 250;
    r.lines = {"PIPELINING"};
    CHECK_FALSE(parse_ehlo(r).pipelining);
}

TEST_CASE("send_ehlo: SIZE without a number means no fixed limit")
{
    auto e = parse_ehlo(ehlo_reply({"SIZE"}));
    CHECK(e.size);
    CHECK(e.size_limit == 0);
    auto bad = parse_ehlo(ehlo_reply({"SIZE lots"}));
    CHECK(bad.size);
    CHECK(bad.size_limit == 0);
}

TEST_CASE("send_ehlo: XRESUME with TTL and MAXSIZE")
{
    auto e = parse_ehlo(ehlo_reply({"XRESUME TTL=300 MAXSIZE=52428800"}));
    CHECK(e.xresume);
    CHECK(e.xresume_ttl == 300);
    REQUIRE(e.xresume_maxsize);
    CHECK(*e.xresume_maxsize == 52428800);

    auto no_max = parse_ehlo(ehlo_reply({"xresume ttl=60"}));
    CHECK(no_max.xresume);
    CHECK(no_max.xresume_ttl == 60);
    CHECK_FALSE(no_max.xresume_maxsize);
}

TEST_CASE("send_ehlo: a malformed XRESUME line leaves XRESUME off")
{
    const char* bad[] = {"XRESUME",
                         "XRESUME TTL=",
                         "XRESUME TTL=abc",
                         "XRESUME TTL=300 MAXSIZE=-1",
                         "XRESUME TTL=99999999999",
                         "XRESUME MAXSIZE=10"};
    for (auto b : bad) {
        INFO(b);
        CHECK_FALSE(parse_ehlo(ehlo_reply({b})).xresume);
    }
    CHECK_FALSE(parse_ehlo(ehlo_reply({"XRESUMEX TTL=300"})).xresume);
}

TEST_CASE("send_ehlo: a refused EHLO offers nothing")
{
    auto e = parse_ehlo(ehlo_reply({"PIPELINING", "XRESUME TTL=5"}, 502));
    CHECK_FALSE(e.pipelining);
    CHECK_FALSE(e.xresume);
}
