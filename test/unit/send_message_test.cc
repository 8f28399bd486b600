// SPDX-License-Identifier: MIT
// Unit tests for client/send_message.
#include "client/send_message.h"
#include "test/unit/catch.h"

#include <cstdio>
#include <unistd.h>

using namespace rs::send;

namespace {

std::string canon(std::string_view in, size_t piece = 0)
{
    Canonicalizer c;
    std::string out;
    if (piece == 0) {
        c.feed(in, out);
    } else {
        for (size_t i = 0; i < in.size(); i += piece) {
            c.feed(in.substr(i, piece), out);
        }
    }
    c.finish(out);
    return out;
}

// A pipe holding `data`, read end returned (the write end is closed).
int pipe_with(const std::string& data)
{
    int p[2];
    REQUIRE(::pipe(p) == 0);
    REQUIRE(data.size() < 65536);
    REQUIRE(::write(p[1], data.data(), data.size())
            == static_cast<ssize_t>(data.size()));
    ::close(p[1]);
    return p[0];
}

} // namespace

TEST_CASE("send_message: LF, CRLF, bare CR and a missing last line end")
{
    struct Case {
        std::string_view in;
        std::string_view want;
    };
    Case cases[] = {
        {"a\nb\n", "a\r\nb\r\n"},
        {"a\r\nb\r\n", "a\r\nb\r\n"},
        {"a\nb\r\nc\n", "a\r\nb\r\nc\r\n"},
        {"a\rb\n", "a\rb\r\n"},
        {"a\r\r\n", "a\r\r\n"},
        {"last", "last\r\n"},
        {"a\nlast", "a\r\nlast\r\n"},
        {"a\r", "a\r\n"},
        {"", ""},
        {"\n", "\r\n"},
        {"\n\n", "\r\n\r\n"},
        {"\r\n\r", "\r\n\r\n"},
    };
    for (const auto& c : cases) {
        INFO("input " << std::string(c.in));
        CHECK(canon(c.in) == c.want);
        // The same when the input arrives one octet at a time.
        CHECK(canon(c.in, 1) == c.want);
    }
}

TEST_CASE("send_message: digests and base64 are the standard ones")
{
    CHECK(
        sha256_hex("")
        == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(
        sha256_hex("abc")
        == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(base64("") == "");
    CHECK(base64("f") == "Zg==");
    CHECK(base64("fo") == "Zm8=");
    CHECK(base64("foo") == "Zm9v");
    CHECK(base64("\xfb\xff") == "+/8=");
}

TEST_CASE("send_message: the spool holds the canonical message")
{
    std::string in = "Subject: x\n\nbody \xe9t\xe9\n.dot\nend";
    auto s = Spool::create(pipe_with(in), "/tmp");
    REQUIRE(s);
    std::string want = "Subject: x\r\n\r\nbody \xe9t\xe9\r\n.dot\r\nend\r\n";
    CHECK(s->size() == want.size());
    CHECK(s->eight_bit());
    CHECK(s->digest() == sha256_hex(want));

    std::string got(want.size() + 10, '\0');
    auto n = s->read_at(0, got.data(), got.size());
    REQUIRE(n);
    got.resize(*n);
    CHECK(got == want);

    // A read past the end gets what there is.
    char tail[8];
    auto t = s->read_at(want.size() - 3, tail, sizeof tail);
    REQUIRE(t);
    CHECK(std::string(tail, *t) == "d\r\n");
}

TEST_CASE("send_message: prefix digests and line boundaries")
{
    std::string in = "a\r\nbb\r\nccc\r\n";
    auto s = Spool::create(pipe_with(in), "/tmp");
    REQUIRE(s);
    CHECK_FALSE(s->eight_bit());
    for (uint64_t n : {0, 3, 7, 12}) {
        INFO("prefix " << n);
        auto b = s->at_line_boundary(n);
        REQUIRE(b);
        CHECK(*b);
        Sha256 h;
        h.update(in.substr(0, n));
        auto d = s->prefix_sha256(n);
        REQUIRE(d);
        CHECK(*d == base64(h.final()));
    }
    for (uint64_t n : {1, 2, 4, 6, 13}) {
        INFO("offset " << n);
        auto b = s->at_line_boundary(n);
        REQUIRE(b);
        CHECK_FALSE(*b);
    }
    CHECK_FALSE(s->prefix_sha256(13));
}

TEST_CASE("send_message: an unusable spool directory is an error")
{
    auto s = Spool::create(pipe_with("x\n"), "/nonexistent/dir");
    CHECK_FALSE(s);
}
