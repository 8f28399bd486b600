// SPDX-License-Identifier: MIT
// Unit tests for client/send_dotstuff.
#include "client/send_dotstuff.h"
#include "test/unit/catch.h"

using namespace rs::send;

TEST_CASE("send_dotstuff: leading dots are doubled, others are not")
{
    CHECK(dot_stuff("a\r\n.b\r\nc.d\r\n..\r\n")
          == "a\r\n..b\r\nc.d\r\n...\r\n.\r\n");
    CHECK(dot_stuff(".\r\n") == "..\r\n.\r\n");
}

TEST_CASE("send_dotstuff: an empty tail is just the end of data")
{
    CHECK(dot_stuff("") == ".\r\n");
}

TEST_CASE("send_dotstuff: an unterminated last line gets CRLF before the dot")
{
    CHECK(dot_stuff("abc") == "abc\r\n.\r\n");
    CHECK(dot_stuff(".abc") == "..abc\r\n.\r\n");
}

TEST_CASE("send_dotstuff: a tail from an offset starts at a line start")
{
    // The message split at a line boundary: the tail's first line is a
    // line start and its dot is doubled as in the whole message.
    std::string msg = "Subject: x\r\n\r\n.one\r\ntwo\r\n.three\r\n";
    std::string whole = dot_stuff(msg);
    size_t off = msg.find(".one");
    std::string tail = dot_stuff(msg.substr(off));
    CHECK(tail == "..one\r\ntwo\r\n..three\r\n.\r\n");
    CHECK(whole.substr(whole.size() - tail.size()) == tail);
}

TEST_CASE("send_dotstuff: pieces split anywhere give the same output")
{
    std::string msg = ".a\r\n..b\r\nc\r\n.\r\nd.\r\n.e";
    std::string want = dot_stuff(msg);
    for (size_t step = 1; step <= msg.size(); ++step) {
        DotStuffer d;
        std::string out;
        for (size_t i = 0; i < msg.size(); i += step) {
            d.feed(std::string_view(msg).substr(i, step), out);
        }
        d.finish(out);
        INFO("piece size " << step);
        CHECK(out == want);
    }
}

TEST_CASE("send_dotstuff: a bare CR does not start a line")
{
    CHECK(dot_stuff("a\r.b\r\n") == "a\r.b\r\n.\r\n");
}
