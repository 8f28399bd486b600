// SPDX-License-Identifier: MIT
// NAME
//   attr_test - attr0 and plain attribute lists: print, scan, limits
// DESCRIPTION
//   Byte-exact examples from the protocol notes (cleanup's handshake,
//   anvil's greeting, a policy reply), round trips with hashes, every
//   truncation of a list, and lists over the limit.
#include "common/mail/attr.h"

#include "test/unit/catch.h"

using namespace std::string_literals;
using rs::mail::attr::List;

TEST_CASE("attr: print0 writes cleanup's handshake byte for byte")
{
    std::string out;
    rs::mail::attr::print0(
        out, {{"protocol", "cleanup_protocol"}, {"queue_id", "1B041A786D1"}});
    CHECK(out == "protocol\0cleanup_protocol\0queue_id\0001B041A786D1\0\0"s);
}

TEST_CASE("attr: print0 of the flags word is flags NUL value NUL NUL")
{
    std::string out;
    rs::mail::attr::print0(out, {{"flags", "178"}});
    CHECK(out == "flags\000178\0\0"s);
}

TEST_CASE("attr: print0 of an empty list is the terminator alone")
{
    std::string out;
    rs::mail::attr::print0(out, {});
    CHECK(out == "\0"s);
}

TEST_CASE("attr: print0 appends, so lists can share one write")
{
    std::string out = "x";
    rs::mail::attr::print0(out, {{"a", "1"}});
    rs::mail::attr::print0(out, {{"b", ""}});
    CHECK(out == "xa\0001\0\0b\0\0\0"s);
}

TEST_CASE("attr: print_plain writes anvil's and policy's forms")
{
    std::string out;
    rs::mail::attr::print_plain(out, {{"protocol", "anvil_protocol"}});
    rs::mail::attr::print_plain(out, {{"action", "DUNNO"}});
    CHECK(out == "protocol=anvil_protocol\n\naction=DUNNO\n\n");
}

TEST_CASE("attr: a hash is flattened between { and } without values")
{
    List l{{"a", "1"}, {"{", ""}, {"k", "v"}, {"}", ""}, {"b", "2"}};
    std::string out0, outp;
    rs::mail::attr::print0(out0, l);
    rs::mail::attr::print_plain(outp, l);
    CHECK(out0 == "a\0001\0{\0k\0v\0}\0b\0002\0\0"s);
    CHECK(outp == "a=1\n{\nk=v\n}\nb=2\n\n");

    auto s0 = rs::mail::attr::scan0(out0, 1000);
    REQUIRE(s0);
    REQUIRE(*s0);
    CHECK((*s0)->list == l);
    CHECK((*s0)->consumed == out0.size());
    auto sp = rs::mail::attr::scan_plain(outp, 1000);
    REQUIRE(sp);
    REQUIRE(*sp);
    CHECK((*sp)->list == l);
}

TEST_CASE("attr: scan0 reads cleanup's handshake and says what it used")
{
    std::string in = "protocol\0cleanup_protocol\0queue_id\0001B041A786D1"
                     "\0\0status"s;
    auto got = rs::mail::attr::scan0(in, 1000);
    REQUIRE(got);
    REQUIRE(*got);
    List want{{"protocol", "cleanup_protocol"}, {"queue_id", "1B041A786D1"}};
    CHECK((*got)->list == want);
    CHECK((*got)->consumed == in.size() - 6);
    CHECK(rs::mail::attr::find((*got)->list, "queue_id") == "1B041A786D1");
    CHECK_FALSE(rs::mail::attr::find((*got)->list, "status"));
}

TEST_CASE("attr: scan0 keeps an empty value, like cleanup's empty reason")
{
    auto got = rs::mail::attr::scan0("status\0000\0reason\0\0\0"s, 100);
    REQUIRE(got);
    REQUIRE(*got);
    List want{{"status", "0"}, {"reason", ""}};
    CHECK((*got)->list == want);
}

TEST_CASE("attr: scan0 of every truncated list waits for more")
{
    std::string in = "protocol\0cleanup_protocol\0queue_id\0001B041A786D1"
                     "\0{\0a\0b\0}\0\0"s;
    for (size_t n = 0; n < in.size(); ++n) {
        auto got = rs::mail::attr::scan0(in.substr(0, n), 1000);
        INFO("prefix length " << n);
        REQUIRE(got);
        CHECK_FALSE(*got);
    }
    auto whole = rs::mail::attr::scan0(in, 1000);
    REQUIRE(whole);
    CHECK(*whole);
}

TEST_CASE("attr: scan_plain of every truncated list waits for more")
{
    std::string in = "action=DUNNO\nx=\n{\nk=v\n}\n\n";
    for (size_t n = 0; n < in.size(); ++n) {
        auto got = rs::mail::attr::scan_plain(in.substr(0, n), 1000);
        INFO("prefix length " << n);
        REQUIRE(got);
        CHECK_FALSE(*got);
    }
    auto whole = rs::mail::attr::scan_plain(in, 1000);
    REQUIRE(whole);
    REQUIRE(*whole);
    CHECK((*whole)->consumed == in.size());
}

TEST_CASE("attr: a list longer than the limit is an error, not a wait")
{
    std::string in0 = "name\0"s + std::string(100, 'v') + "\0\0"s;
    std::string inp = "name=" + std::string(100, 'v') + "\n\n";

    // Exactly at the limit is fine.
    auto ok0 = rs::mail::attr::scan0(in0, in0.size());
    REQUIRE(ok0);
    CHECK(*ok0);
    auto okp = rs::mail::attr::scan_plain(inp, inp.size());
    REQUIRE(okp);
    CHECK(*okp);

    // One byte less: the whole list and any prefix of limit bytes fail.
    CHECK_FALSE(rs::mail::attr::scan0(in0, in0.size() - 1));
    CHECK_FALSE(rs::mail::attr::scan_plain(inp, inp.size() - 1));
    CHECK_FALSE(rs::mail::attr::scan0(in0.substr(0, 50), 50));
    CHECK_FALSE(rs::mail::attr::scan_plain(inp.substr(0, 50), 50));

    // A shorter partial buffer still waits.
    auto wait = rs::mail::attr::scan0(in0.substr(0, 49), 50);
    REQUIRE(wait);
    CHECK_FALSE(*wait);
}

TEST_CASE("attr: malformed lists are errors")
{
    struct Case {
        const char* what;
        std::string in;
        bool plain;
    };
    Case cases[] = {
        {"attr0 close without open", "}\0\0"s, false},
        {"attr0 end inside a hash", "{\0a\0b\0\0"s, false},
        {"plain close without open", "}\n\n", true},
        {"plain end inside a hash", "{\na=b\n\n", true},
        {"plain line without =", "action\n\n", true},
        {"plain empty name", "=x\n\n", true},
    };
    for (const auto& c : cases) {
        INFO(c.what);
        auto got = c.plain ? rs::mail::attr::scan_plain(c.in, 1000)
                           : rs::mail::attr::scan0(c.in, 1000);
        CHECK_FALSE(got);
    }
}

TEST_CASE("attr: scan_plain keeps a CR as part of the value")
{
    auto got = rs::mail::attr::scan_plain("action=OK\r\n\n", 100);
    REQUIRE(got);
    REQUIRE(*got);
    CHECK((*got)->list[0].second == "OK\r");
}

TEST_CASE("attr: find returns the first of repeated names")
{
    List l{{"a", "1"}, {"a", "2"}};
    CHECK(rs::mail::attr::find(l, "a") == "1");
}

TEST_CASE("attr: a terminator inside a value cannot inject attributes")
{
    std::string out;
    rs::mail::attr::print0(out, {{"address", std::string("a@b\0X\0y", 7)}});
    CHECK(out == std::string("address\0a@b\0\0", 13));

    std::string plain;
    rs::mail::attr::print_plain(plain, {{"helo_name", "x\nrequest=evil"}});
    CHECK(plain == "helo_name=x\n\n");
}
