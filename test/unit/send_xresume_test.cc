// SPDX-License-Identifier: MIT
// Unit tests for client/send_xresume.
#include "client/send_xresume.h"
#include "test/unit/catch.h"

#include <unistd.h>

using namespace rs::send;
using Kind = XresumeReply::Kind;

namespace {

const std::string kToken = "Kq3xY_9-aaaaaaaaaaaaaa";

Reply reply(int code, std::string text)
{
    Reply r;
    r.code = code;
    r.lines.push_back(text);
    return r;
}

Spool spool_of(const std::string& data)
{
    int p[2];
    REQUIRE(::pipe(p) == 0);
    REQUIRE(::write(p[1], data.data(), data.size())
            == static_cast<ssize_t>(data.size()));
    ::close(p[1]);
    auto s = Spool::create(p[0], "/tmp");
    ::close(p[0]);
    REQUIRE(s);
    return std::move(*s);
}

std::string digest_b64(std::string_view prefix)
{
    Sha256 h;
    h.update(prefix);
    return base64(h.final());
}

} // namespace

TEST_CASE("send_xresume: tokens are base64url of 16 to 64 characters")
{
    CHECK(valid_token(kToken));
    CHECK(valid_token(std::string(16, 'a')));
    CHECK(valid_token(std::string(64, '_')));
    CHECK_FALSE(valid_token(std::string(15, 'a')));
    CHECK_FALSE(valid_token(std::string(65, 'a')));
    CHECK_FALSE(valid_token("aaaaaaaaaaaaaaa+"));
    CHECK_FALSE(valid_token("aaaaaaaaaaaaaaa="));
    CHECK_FALSE(valid_token("aaaaaaaa aaaaaaa"));
}

TEST_CASE("send_xresume: a fresh token at offset 0")
{
    auto x = parse_xresume(
        reply(250, "2.0.0 TOKEN=" + kToken + " OFFSET=0 TTL=300"));
    CHECK(x.kind == Kind::Offset);
    CHECK(x.token == kToken);
    CHECK(x.offset == 0);
    CHECK(x.ttl == 300);
    CHECK(x.sha256.empty());
}

TEST_CASE("send_xresume: a known token with offset and digest")
{
    std::string d = digest_b64("abc");
    auto x = parse_xresume(reply(250, "2.0.0 TOKEN=" + kToken
                                          + " OFFSET=19988480 SHA256=" + d
                                          + " TTL=300"));
    CHECK(x.kind == Kind::Offset);
    CHECK(x.offset == 19988480);
    CHECK(x.sha256 == d);
}

TEST_CASE("send_xresume: DONE, 452, sequence errors and verdicts")
{
    auto done = parse_xresume(reply(250, "2.0.0 DONE QUEUEID=4XyzAbc"));
    CHECK(done.kind == Kind::Done);
    CHECK(done.queue_id == "4XyzAbc");
    CHECK(parse_xresume(reply(250, "2.0.0 DONE")).kind == Kind::Malformed);

    CHECK(parse_xresume(reply(452, "4.3.1 Resume not available now")).kind
          == Kind::Unavailable);
    CHECK(parse_xresume(reply(421, "4.4.2 closing")).kind == Kind::TempFail);
    CHECK(parse_xresume(reply(451, "4.3.0 error")).kind == Kind::TempFail);
    for (int code : {501, 502, 503}) {
        CHECK(parse_xresume(reply(code, "5.5.1 no")).kind == Kind::NotOffered);
    }
    CHECK(parse_xresume(reply(554, "5.7.1 virus found")).kind == Kind::Refused);
    CHECK(parse_xresume(reply(552, "5.3.4 too big")).kind == Kind::Refused);
}

TEST_CASE("send_xresume: 250 replies that cannot be used")
{
    std::string d = digest_b64("x");
    const std::string bad[] = {
        "2.0.0 OFFSET=0 TTL=300",
        "2.0.0 TOKEN=short OFFSET=0",
        "2.0.0 TOKEN=" + kToken,
        "2.0.0 TOKEN=" + kToken + " OFFSET=-1",
        "2.0.0 TOKEN=" + kToken + " OFFSET=12x",
        "2.0.0 TOKEN=" + kToken + " OFFSET=12",
        "2.0.0 TOKEN=" + kToken + " OFFSET=12 SHA256=abc",
        "2.0.0 TOKEN=" + kToken + " OFFSET=12 SHA256=" + d.substr(1) + "A",
        "2.0.0 Ok",
    };
    for (const auto& b : bad) {
        INFO(b);
        CHECK(parse_xresume(reply(250, b)).kind == Kind::Malformed);
    }
}

TEST_CASE("send_xresume: an offset is checked against the local message")
{
    std::string msg = "Subject: a\r\n\r\nline 1\r\nline 2\r\n";
    auto s = spool_of(msg);
    XresumeReply x;
    x.kind = Kind::Offset;
    x.token = kToken;

    // Good: a line boundary whose prefix digest matches.
    x.offset = 14;
    x.sha256 = digest_b64(msg.substr(0, 14));
    auto ok = check_offset(s, x);
    REQUIRE(ok);
    CHECK(ok->empty());

    // The whole message (an empty tail to send) is good too.
    x.offset = msg.size();
    x.sha256 = digest_b64(msg);
    CHECK(check_offset(s, x)->empty());

    // Offset 0 needs no digest.
    x.offset = 0;
    x.sha256.clear();
    CHECK(check_offset(s, x)->empty());

    // Not the same message: the digest differs.
    x.offset = 14;
    x.sha256 = digest_b64("Subject: b\r\n\r\n");
    CHECK(check_offset(s, x)->find("differs") != std::string::npos);

    // Inside a line, or beyond the end.
    x.offset = 16;
    x.sha256 = digest_b64(msg.substr(0, 16));
    CHECK(check_offset(s, x)->find("line boundary") != std::string::npos);
    x.offset = msg.size() + 2;
    CHECK(check_offset(s, x)->find("beyond") != std::string::npos);
}

TEST_CASE("send_xresume: a token's tag is short, stable and not the token")
{
    auto t = token_tag(kToken);
    CHECK(t.size() == 8);
    CHECK(t == token_tag(kToken));
    CHECK(t != token_tag(kToken + "x"));
    CHECK(kToken.find(t) == std::string::npos);
}
