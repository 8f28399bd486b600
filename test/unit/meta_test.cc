// SPDX-License-Identifier: MIT
// NAME
//   meta_test - the text format of resume spool meta files
// DESCRIPTION
//   Round trips through format_meta() and parse_meta(), a table of
//   damaged files that parse_meta() must refuse, the %XX escaping of
//   free text, and the small syntax checks.
#include "resumedb/meta.h"

#include "test/unit/catch.h"

#include <string>

using namespace rs;
using namespace rs::resumedb;

namespace {

Meta sample()
{
    Meta m;
    m.state = State::partial;
    m.hash = std::string(64, 'a');
    m.binding = std::string(64, '0');
    m.client = "192.0.2.1";
    m.declared = 1000;
    m.offset = 42;
    m.sha256 = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
    m.created = 1700000000;
    m.updated = 1700000100;
    m.resumes = 3;
    return m;
}

std::string text_of(const Meta& m)
{
    auto t = format_meta(m);
    REQUIRE(t);
    return *t;
}

// `text` with the line for `key` replaced by `line` ("" drops it).
std::string with(std::string text, const std::string& key,
                 const std::string& line)
{
    size_t at = text.find(key + "=");
    REQUIRE(at != std::string::npos);
    size_t end = text.find('\n', at) + 1;
    text.replace(at, end - at, line.empty() ? "" : line + "\n");
    return text;
}

} // namespace

TEST_CASE("meta: what is written parses back the same")
{
    Meta m = sample();
    SECTION("partial")
    {
    }
    SECTION("done")
    {
        m.state = State::done;
        m.queue_id = "4Ws1Lq0zq7z3";
    }
    SECTION("refused, with a multi-line verdict")
    {
        m.state = State::refused;
        m.verdict = "554-5.7.1 one\r\n554 5.7.1 100% no";
    }
    SECTION("a client key with odd octets")
    {
        m.client = "sasl:J\xc3\xb6rg%20=x\n";
    }
    std::string text = text_of(m);
    CHECK(text.rfind("version=1\n", 0) == 0);
    CHECK(text.find('\r') == std::string::npos);
    auto back = parse_meta(text);
    INFO((back ? "" : back.error().text));
    REQUIRE(back);
    CHECK(back->state == m.state);
    CHECK(back->hash == m.hash);
    CHECK(back->binding == m.binding);
    CHECK(back->client == m.client);
    CHECK(back->declared == m.declared);
    CHECK(back->offset == m.offset);
    CHECK(back->sha256 == m.sha256);
    CHECK(back->created == m.created);
    CHECK(back->updated == m.updated);
    CHECK(back->resumes == m.resumes);
    CHECK(back->queue_id == m.queue_id);
    CHECK(back->verdict == m.verdict);
}

TEST_CASE("meta: damaged files are refused")
{
    std::string good = text_of(sample());
    std::string done = [] {
        Meta m = sample();
        m.state = State::done;
        m.queue_id = "ABC";
        return text_of(m);
    }();
    struct Case {
        const char* what;
        std::string text;
    };
    Case cases[] = {
        {"empty", ""},
        {"no final LF", good.substr(0, good.size() - 1)},
        {"no version", good.substr(good.find('\n') + 1)},
        {"version 2", "version=2" + good.substr(good.find('\n'))},
        {"an empty line", good + "\n"},
        {"a line without =", good + "junk\n"},
        {"an unknown key", good + "color=blue\n"},
        {"a duplicate key", good + "offset=42\n"},
        {"no offset", with(good, "offset", "")},
        {"no sha256", with(good, "sha256", "")},
        {"a negative offset", with(good, "offset", "offset=-1")},
        {"a plus sign", with(good, "offset", "offset=+1")},
        {"a blank in a number", with(good, "offset", "offset= 1")},
        {"a number with a tail", with(good, "offset", "offset=1k")},
        {"a huge number", with(good, "offset", "offset=99999999999999999999")},
        {"too many resumes", with(good, "resumes", "resumes=2147483648")},
        {"an upper-case hash",
         with(good, "hash", "hash=" + std::string(64, 'A'))},
        {"a short hash", with(good, "hash", "hash=" + std::string(63, 'a'))},
        {"a bad binding", with(good, "binding", "binding=xyz")},
        {"a bad digest", with(good, "sha256", "sha256=AAAA")},
        {"a digest with set padding bits",
         with(good, "sha256",
              "sha256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV=")},
        {"an unknown state", with(good, "state", "state=gone")},
        {"a queue id in a partial entry", good + "queue_id=ABC\n"},
        {"a done entry without a queue id", with(done, "queue_id", "")},
        {"a bad queue id", with(done, "queue_id", "queue_id=A/B")},
        {"a refused entry without a verdict",
         with(good, "state", "state=refused")},
        {"a raw control octet", with(good, "client", "client=a\tb")},
        {"a bad escape", with(good, "client", "client=a%G0")},
        {"a cut escape", with(good, "client", "client=a%4")},
        {"too long", good + std::string(9000, 'x') + "\n"},
    };
    for (const Case& c : cases) {
        INFO(c.what);
        CHECK(!parse_meta(c.text));
    }
    CHECK(parse_meta(good));
    CHECK(parse_meta(done));
}

TEST_CASE("meta: format_meta refuses what parse_meta would")
{
    Meta m = sample();
    SECTION("bad hash")
    {
        m.hash = "x";
    }
    SECTION("bad digest")
    {
        m.sha256 = "";
    }
    SECTION("negative offset")
    {
        m.offset = -1;
    }
    SECTION("client too long")
    {
        m.client = std::string(max_client_size + 1, 'c');
    }
    SECTION("done without a queue id")
    {
        m.state = State::done;
    }
    SECTION("a queue id on a partial entry")
    {
        m.queue_id = "ABC";
    }
    SECTION("refused without a verdict")
    {
        m.state = State::refused;
    }
    CHECK(!format_meta(m));
}

TEST_CASE("meta: the longest fields still fit")
{
    Meta m = sample();
    m.state = State::refused;
    m.client = std::string(max_client_size, '\x01');
    m.verdict = std::string(max_verdict_size, '\xff');
    auto t = format_meta(m);
    REQUIRE(t);
    CHECK(t->size() <= max_meta_size);
    CHECK(parse_meta(*t));
}

TEST_CASE("meta: escaping")
{
    struct Case {
        std::string raw;
        std::string escaped;
    };
    Case cases[] = {
        {"", ""},
        {"plain text = ok", "plain text = ok"},
        {"100%", "100%25"},
        {"a\r\nb", "a%0D%0Ab"},
        {std::string("\0\x7f\xff", 3), "%00%7F%FF"},
    };
    for (const Case& c : cases) {
        INFO(c.escaped);
        CHECK(escape(c.raw) == c.escaped);
        auto back = unescape(c.escaped);
        REQUIRE(back);
        CHECK(*back == c.raw);
    }
    CHECK(unescape("%7f") == std::string("\x7f"));
    CHECK(!unescape("%"));
    CHECK(!unescape("%%"));
    CHECK(!unescape("a\nb"));
}

TEST_CASE("meta: hex, digests and queue ids")
{
    const unsigned char bytes[] = {0x00, 0x9f, 0xff};
    CHECK(hex(bytes, 3) == "009fff");
    CHECK(is_hex("009fff", 6));
    CHECK(!is_hex("009fff", 5));
    CHECK(!is_hex("009FFF", 6));
    CHECK(is_digest_base64("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="));
    CHECK(!is_digest_base64("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"));
    CHECK(!is_digest_base64("47DEQpj8HBSa-_TImW+5JCeuQeRkm5NMpJWZG3hSuFU="));
    CHECK(queue_id_ok("4Ws1Lq0zq7z3"));
    CHECK(queue_id_ok("1B041A786D1"));
    CHECK(!queue_id_ok(""));
    CHECK(!queue_id_ok("A B"));
    CHECK(!queue_id_ok(std::string(max_queue_id_size + 1, 'A')));
}
