// SPDX-License-Identifier: MIT
// Unit tests for client/send_reply.
#include "client/send_reply.h"
#include "test/unit/catch.h"

using namespace rs::send;

namespace {

// Feed lines; the reply when the last one completes it.
std::optional<Reply> feed_all(std::initializer_list<std::string_view> lines)
{
    ReplyReader rd;
    std::optional<Reply> out;
    for (auto l : lines) {
        auto r = rd.feed(l);
        REQUIRE(r);
        out = *r;
    }
    return out;
}

} // namespace

TEST_CASE("send_reply: a multi-line reply ends at the line with a space")
{
    ReplyReader rd;
    auto a = rd.feed("250-mx.example");
    REQUIRE(a);
    CHECK_FALSE(*a);
    auto b = rd.feed("250-PIPELINING");
    REQUIRE(b);
    CHECK_FALSE(*b);
    auto c = rd.feed("250 CHUNKING");
    REQUIRE(c);
    REQUIRE(*c);
    CHECK((*c)->code == 250);
    REQUIRE((*c)->lines.size() == 3);
    CHECK((*c)->lines[0] == "mx.example");
    CHECK((*c)->lines[2] == "CHUNKING");
    CHECK((*c)->ok());
}

TEST_CASE("send_reply: the enhanced code of the first line is kept apart")
{
    auto r = feed_all({"550 5.1.1 <x@y>: Recipient address rejected"});
    REQUIRE(r);
    CHECK(r->enhanced == "5.1.1");
    CHECK(r->permanent());
    CHECK(r->last_text() == "<x@y>: Recipient address rejected");
    CHECK(r->joined() == "550 5.1.1 <x@y>: Recipient address rejected");
}

TEST_CASE("send_reply: an enhanced code must match the reply class")
{
    struct Case {
        std::string_view text;
        int klass;
        std::string_view want;
    };
    Case cases[] = {
        {"2.0.0 Ok", 2, "2.0.0"},
        {"4.3.1 later", 4, "4.3.1"},
        {"5.7.1", 5, "5.7.1"},
        {"5.1.1 x", 2, ""},
        {"2.0 Ok", 2, ""},
        {"2.0.0x Ok", 2, ""},
        {"2.1234.0 x", 2, ""},
        {"Ok 2.0.0", 2, ""},
        {"", 2, ""},
        {"2.10.100 x", 2, "2.10.100"},
    };
    for (const auto& c : cases) {
        INFO("text " << c.text << " class " << c.klass);
        CHECK(enhanced_code(c.text, c.klass) == c.want);
    }
}

TEST_CASE("send_reply: bare codes and codes without text are replies")
{
    auto r = feed_all({"354"});
    REQUIRE(r);
    CHECK(r->code == 354);
    CHECK(r->lines.size() == 1);
    CHECK(r->last_text().empty());
}

TEST_CASE("send_reply: malformed lines are errors and reset the reader")
{
    std::string_view bad[] = {"25",     "abc def", "2500 x", "250x",
                              "650 no", "150 no",  ""};
    for (auto b : bad) {
        INFO("line " << b);
        ReplyReader rd;
        CHECK_FALSE(rd.feed(b));
    }

    // A code that changes inside a reply; afterwards a good one parses.
    ReplyReader rd;
    REQUIRE(rd.feed("250-a"));
    CHECK_FALSE(rd.feed("251 b"));
    auto ok = rd.feed("221 Bye");
    REQUIRE(ok);
    REQUIRE(*ok);
    CHECK((*ok)->code == 221);
    CHECK((*ok)->lines.size() == 1);
}

TEST_CASE("send_reply: replies are bounded in line length and line count")
{
    ReplyReader rd;
    std::string long_line = "250 " + std::string(kMaxReplyLine, 'x');
    CHECK_FALSE(rd.feed(long_line));

    ReplyReader many;
    bool failed = false;
    for (size_t i = 0; i < kMaxReplyLines + 5 && !failed; ++i) {
        failed = !many.feed("250-x");
    }
    CHECK(failed);
}

TEST_CASE("send_reply: KEY=value words after the enhanced code")
{
    auto r = feed_all({"250 2.0.0 TOKEN=abc OFFSET=12 SHA256=q+/= TTL=300"});
    REQUIRE(r);
    auto w = reply_words(r->last_text());
    CHECK(w.at("TOKEN") == "abc");
    CHECK(w.at("OFFSET") == "12");
    CHECK(w.at("SHA256") == "q+/=");
    CHECK(w.at("TTL") == "300");
    CHECK(w.count("2.0.0") == 0);

    auto d = reply_words("DONE QUEUEID=4XyZ OFFSET=1 OFFSET=2");
    CHECK(d.count("DONE") == 1);
    CHECK(d.at("DONE").empty());
    CHECK(d.at("QUEUEID") == "4XyZ");
    CHECK(d.at("OFFSET") == "1");
}
