// SPDX-License-Identifier: MIT
// NAME
//   address_test.cc - unit tests for smtpd/address
// DESCRIPTION
//   The tables hold what Postfix 3.7.11's smtpd answered to each form
//   (observed against a loopback lab, strict_rfc821_envelopes = no
//   unless said). Forms Postfix refuses only through trivial-rewrite's
//   RESOLVE_FLAG_ERROR ("a@", "-a@b", "a@-b", "a@[1.2.3]") pass the parser
//   and are listed as such: the session resolves and refuses them.
#include "smtpd/address.h"
#include "test/unit/catch.h"

using namespace rs::smtpd;

namespace {

struct Row {
    const char* verb;
    const char* text;
    const char* reply;    ///< "" when Postfix said 250 (or 5xx via resolve)
    const char* internal; ///< when accepted
};

const Row rows[] = {
    {"MAIL", " FROM:<a@lab.example>", "", "a@lab.example"},
    {"MAIL", " FROM: <a@lab.example>", "", "a@lab.example"},
    {"MAIL", " FROM:a@lab.example", "", "a@lab.example"},
    {"MAIL", " from:<a@lab.example>", "", "a@lab.example"},
    {"MAIL", " FROM:<>", "", ""},
    {"MAIL", " FROM:<\"\">", "", ""},
    {"MAIL", " FROM:", "501 5.5.4 Syntax: MAIL FROM:<address>", ""},
    {"MAIL", "", "501 5.5.4 Syntax: MAIL FROM:<address>", ""},
    {"MAIL", " FRM:<a@x>", "501 5.5.4 Syntax: MAIL FROM:<address>", ""},
    {"MAIL", " FROM:<a@lab.example", "501 5.1.7 Bad sender address syntax", ""},
    {"MAIL", " FROM:a@lab.example>", "", "a@lab.example"},
    {"MAIL", " FROM:<a@c>>", "", "a@c"},
    {"MAIL", " FROM:<<a@lab.example>>", "", "a@lab.example"},
    {"MAIL", " FROM:<a b@lab.example>", "501 5.1.7 Bad sender address syntax",
     ""},
    {"MAIL", " FROM:<\"a b\"@lab.example>", "", "a b@lab.example"},
    {"MAIL", " FROM:\"a b\"@lab.example", "", "a b@lab.example"},
    {"MAIL", " FROM:<@r1,@r2:a@lab.example>", "", "a@lab.example"},
    {"MAIL", " FROM:<@r1,r2:a@lab.example>", "", "a@lab.example"},
    {"MAIL", " FROM:<@:a@lab.example>", "", "a@lab.example"},
    {"MAIL", " FROM:<@lab.example>", "", "@lab.example"},
    {"MAIL", " FROM:<a@lab.example>x", "501 5.1.7 Bad sender address syntax",
     ""},
    {"MAIL", " FROM:<a@lab.example>SIZE=1",
     "501 5.1.7 Bad sender address syntax", ""},
    {"MAIL", " FROM:<a,b@lab.example>", "501 5.1.7 Bad sender address syntax",
     ""},
    {"MAIL", " FROM:<a;b@lab.example>", "501 5.1.7 Bad sender address syntax",
     ""},
    {"MAIL", " FROM:<a@lab.example,b@lab.example>",
     "501 5.1.7 Bad sender address syntax", ""},
    {"MAIL", " FROM:<a<b@lab.example>", "501 5.1.7 Bad sender address syntax",
     ""},
    {"MAIL", " FROM:<\"ab@lab.example>", "501 5.1.7 Bad sender address syntax",
     ""},
    {"MAIL", " FROM:<a\"b\"@c>", "501 5.1.7 Bad sender address syntax", ""},
    {"MAIL", " FROM:<\"a\"b@c>", "501 5.1.7 Bad sender address syntax", ""},
    {"MAIL", " FROM:<\"a\".b@c>", "", "a.b@c"},
    {"MAIL", " FROM:<a@lab.exa mple>", "501 5.1.7 Bad sender address syntax",
     ""},
    {"MAIL", " FROM:<a@b c>", "501 5.1.7 Bad sender address syntax", ""},
    {"MAIL", " FROM:<a\tb@lab.example>", "501 5.1.7 Bad sender address syntax",
     ""},
    {"MAIL", " FROM:<a(comment)@lab.example>", "", "a@lab.example"},
    {"MAIL", " FROM:<a\\b@x>", "", "ab@x"},
    {"MAIL", " FROM:<a@\"b\">", "", "a@b"},
    {"MAIL", " FROM:<a@[1.2.3.4>", "", "a@[1.2.3.4]"},
    {"MAIL", " FROM:<a:b@c>", "", "a:b@c"},
    {"MAIL", " FROM:<a..b@lab.example>", "", "a..b@lab.example"},
    {"MAIL", " FROM:<a@b@>", "", "a@b@"},
    {"MAIL", " FROM:< a@lab.example>", "", "a@lab.example"},
    {"MAIL", " FROM:<a@lab.example >", "", "a@lab.example"},
    {"MAIL", " FROM:<postmaster>", "", "postmaster"},
    // Refused by Postfix through trivial-rewrite, not by its parser.
    {"MAIL", " FROM:<a@>", "", "a@"},
    {"MAIL", " FROM:<-@b>", "", "-@b"},
    {"MAIL", " FROM:<a@-lab.example>", "", "a@-lab.example"},
    {"MAIL", " FROM:<a@[999.0.0.1]>", "", "a@[999.0.0.1]"},
    {"RCPT", " TO:<b@lab.example>", "", "b@lab.example"},
    {"RCPT", " TO: <b@lab.example>", "", "b@lab.example"},
    {"RCPT", " TO:b@lab.example", "", "b@lab.example"},
    {"RCPT", " TO:<>", "501 5.1.3 Bad recipient address syntax", ""},
    {"RCPT", " TO:<\"\">", "501 5.1.3 Bad recipient address syntax", ""},
    {"RCPT", " TO:", "501 5.5.4 Syntax: RCPT TO:<address>", ""},
    {"RCPT", "", "501 5.5.4 Syntax: RCPT TO:<address>", ""},
    {"RCPT", " T:<b@lab.example>", "501 5.5.4 Syntax: RCPT TO:<address>", ""},
    {"RCPT", " TO:<b@lab.example", "501 5.1.3 Bad recipient address syntax",
     ""},
    {"RCPT", " TO:<a b@lab.example>", "501 5.1.3 Bad recipient address syntax",
     ""},
    {"RCPT", " TO:<b@lab.example>,<c@lab.example>",
     "501 5.1.3 Bad recipient address syntax", ""},
    {"RCPT", " TO:<@r1,@r2:b@lab.example>", "", "b@lab.example"},
    {"RCPT", " TO:<\"z@x\"@relay.example>", "", "z@x@relay.example"},
};

} // namespace

TEST_CASE("address: MAIL and RCPT forms get Postfix's replies")
{
    for (const Row& r : rows) {
        INFO(r.verb << r.text);
        ParseResult got = parse_path_arg(r.verb, r.text, false, true);
        CHECK(got.reply == r.reply);
        if (*r.reply == 0) {
            REQUIRE(got.arg);
            CHECK(got.arg->internal == r.internal);
        } else {
            CHECK(!got.arg);
        }
    }
}

TEST_CASE("address: a refused address keeps the token for the warning")
{
    ParseResult got =
        parse_path_arg("MAIL", " FROM:<a@lab.example>x SIZE=1", false, true);
    CHECK(got.reply == "501 5.1.7 Bad sender address syntax");
    CHECK(got.token == "<a@lab.example>x");
}

TEST_CASE("address: strict RFC 821 wants brackets and no comments")
{
    CHECK(parse_path_arg("MAIL", " FROM:a@lab.example", true, true).reply
          == "501 5.1.7 Bad sender address syntax");
    CHECK(parse_path_arg("MAIL", " FROM:<a(c)@lab.example>", true, true).reply
          == "501 5.1.7 Bad sender address syntax");
    CHECK(parse_path_arg("MAIL", " FROM:<@lab.example>", true, true).reply
          == "501 5.1.7 Bad sender address syntax");
    CHECK(parse_path_arg("MAIL", " FROM:<\"\"@lab.example>", true, true).reply
          == "501 5.1.7 Bad sender address syntax");
    CHECK(parse_path_arg("MAIL", " FROM:<@r1:a@lab.example>", true, true).arg);
    CHECK(parse_path_arg("MAIL", " FROM:<>", true, true).arg);
    CHECK(parse_path_arg("MAIL", " FROM: <a@lab.example>", true, true).arg);
    CHECK(
        parse_path_arg("MAIL", " FROM:<\"a b\"@lab.example>", true, true).arg);
}

TEST_CASE("address: typed form drops only the brackets")
{
    auto got = parse_path_arg("RCPT", " TO:<@r1:B@Lab.example> NOTIFY=NEVER",
                              false, true);
    REQUIRE(got.arg);
    CHECK(got.arg->typed == "@r1:B@Lab.example");
    CHECK(got.arg->internal == "B@Lab.example");
    REQUIRE(got.arg->params.size() == 1);
    CHECK(got.arg->params[0].first == "NOTIFY");
    CHECK(got.arg->params[0].second == "NEVER");
}

TEST_CASE("address: parameters keep their typed text")
{
    auto got =
        parse_path_arg("MAIL", " FROM:<a@x>  size=10 BODY= SIZE", false, true);
    REQUIRE(got.arg);
    REQUIRE(got.arg->raw_params.size() == 3);
    CHECK(got.arg->raw_params[0] == "size=10");
    CHECK(got.arg->params[0].first == "SIZE");
    CHECK(got.arg->raw_params[1] == "BODY=");
    CHECK(got.arg->raw_params[2] == "SIZE");
}

namespace {

struct ParamRow {
    const char* params; ///< after "MAIL FROM:<a@lab.example>"
    const char* reply;  ///< Postfix's reply; "" for 250
};

// Observed with message_size_limit = 52428800.
const ParamRow mail_rows[] = {
    {" SIZE=100", ""},
    {" SIZE=abc", "501 5.5.4 Bad message size syntax"},
    {" SIZE=", "501 5.5.4 Bad message size syntax"},
    {" SIZE=-1", "501 5.5.4 Bad message size syntax"},
    {" SIZE=+1", "501 5.5.4 Bad message size syntax"},
    {" SIZE", "555 5.5.4 Unsupported option: SIZE"},
    {" SIZE=0", ""},
    {" SIZE=00000000000000000000000001", ""},
    {" SIZE=1 SIZE=2", ""},
    {" SIZE=52428801", "552 5.3.4 Message size exceeds fixed limit"},
    {" SIZE=99999999999 FOO", "555 5.5.4 Unsupported option: FOO"},
    {" SIZE=9223372036854775807", "552 5.3.4 Message size exceeds fixed limit"},
    {" SIZE=9223372036854775808",
     "552 5.3.4 Message size exceeds file system imposed limit"},
    {" SIZE=999999999999999999999999 FOO",
     "552 5.3.4 Message size exceeds file system imposed limit"},
    {" SIZE=x FOO", "501 5.5.4 Bad message size syntax"},
    {" FOO SIZE=x", "555 5.5.4 Unsupported option: FOO"},
    {" BODY=8BITMIME", ""},
    {" body=8bitmime", ""},
    {" BODY=7BIT", ""},
    {" BODY=8BITMIME BODY=7BIT", ""},
    {" BODY=BINARYMIME", "555 5.5.4 Unsupported option: BODY=BINARYMIME"},
    {" BODY=foo", "555 5.5.4 Unsupported option: BODY=foo"},
    {" BODY=", "555 5.5.4 Unsupported option: BODY="},
    {" FOO=bar", "555 5.5.4 Unsupported option: FOO=bar"},
    {" foo=Bar", "555 5.5.4 Unsupported option: foo=Bar"},
    {" =x", "555 5.5.4 Unsupported option: =x"},
    {" <b@lab.example>", "555 5.5.4 Unsupported option: <b@lab.example>"},
    {" RET=FULL", ""},
    {" ret=full", ""},
    {" RET=HDRS", ""},
    {" RET=xx", "501 5.5.4 Bad RET parameter syntax"},
    {" RET=", "501 5.5.4 Bad RET parameter syntax"},
    {" RET=FULL RET=HDRS", "501 5.5.4 Bad RET parameter syntax"},
    {" ENVID=abc+2Bdef", ""},
    {" ENVID=a+2b", ""},
    {" ENVID=a=b", ""},
    {" ENVID=abc+2", "501 5.5.4 Bad ENVID parameter syntax"},
    {" ENVID=a+ZZ", "501 5.5.4 Bad ENVID parameter syntax"},
    {" ENVID=", "501 5.5.4 Bad ENVID parameter syntax"},
    {" ENVID=abc+2Bdef ENVID=x", "501 5.5.4 Bad ENVID parameter syntax"},
    {" ENVID=a+ZZ SIZE=999999999999", "501 5.5.4 Bad ENVID parameter syntax"},
    {" ENVID=a b", "555 5.5.4 Unsupported option: b"},
    {" SMTPUTF8", ""},
    {" SMTPUTF8=yes", "555 5.5.4 Unsupported option: SMTPUTF8=yes"},
    {" AUTH=<>", ""},
    {" AUTH=x", ""},
    {" AUTH=", ""},
    {" NOTIFY=NEVER", "555 5.5.4 Unsupported option: NOTIFY=NEVER"},
    {" ORCPT=rfc822;a", "555 5.5.4 Unsupported option: ORCPT=rfc822;a"},
    {" XVERP", "555 5.5.4 Unsupported option: XVERP"},
};

const ParamRow rcpt_rows[] = {
    {" NOTIFY=SUCCESS,FAILURE", ""},
    {" NOTIFY=NEVER", ""},
    {" NOTIFY=success", ""},
    {" NOTIFY=DELAY,DELAY", ""},
    {" NOTIFY=SUCCESS,", ""},
    {" NOTIFY=,SUCCESS", ""},
    {" NOTIFY=NEVER,SUCCESS", "501 5.5.4 Error: Bad NOTIFY parameter syntax"},
    {" NOTIFY=", "501 5.5.4 Error: Bad NOTIFY parameter syntax"},
    {" NOTIFY=FOO", "501 5.5.4 Error: Bad NOTIFY parameter syntax"},
    {" NOTIFY=SUCCESS NOTIFY=FAILURE",
     "501 5.5.4 Error: Bad NOTIFY parameter syntax"},
    {" ORCPT=rfc822;b@lab.example", ""},
    {" ORCPT=rfc822;b+2B@lab.example", ""},
    {" ORCPT=rfc822;", ""},
    {" ORCPT=foo;bar", ""},
    {" ORCPT=utf-8;b@x", ""},
    {" ORCPT=utf-8;b\\x{41}@x", ""},
    {" ORCPT=rfc822;b+ZZ@lab.example",
     "501 5.5.4 Error: Bad ORCPT parameter syntax"},
    {" ORCPT=rfc822", "501 5.5.4 Error: Bad ORCPT parameter syntax"},
    {" ORCPT=;b@x", "501 5.5.4 Error: Bad ORCPT parameter syntax"},
    {" ORCPT=rfc822;a ORCPT=rfc822;b",
     "501 5.5.4 Error: Bad ORCPT parameter syntax"},
    {" SIZE=10", "555 5.5.4 Unsupported option: SIZE=10"},
    {" BODY=8BITMIME", "555 5.5.4 Unsupported option: BODY=8BITMIME"},
    {" FOO", "555 5.5.4 Unsupported option: FOO"},
    {" NOTIFY=SUCCESS FOO", "555 5.5.4 Unsupported option: FOO"},
    {" FOO NOTIFY=x", "555 5.5.4 Unsupported option: FOO"},
};

} // namespace

TEST_CASE("address: MAIL parameters get Postfix's replies, first bad wins")
{
    MailParamLimits lim;
    lim.message_size_limit = 52428800;
    for (const ParamRow& r : mail_rows) {
        std::string text = std::string(" FROM:<a@lab.example>") + r.params;
        INFO(text);
        auto parsed = parse_path_arg("MAIL", text, false, true);
        REQUIRE(parsed.arg);
        MailParams out;
        CHECK(check_mail_params(*parsed.arg, lim, out) == r.reply);
    }
}

TEST_CASE("address: SMTPUTF8 is unsupported when smtputf8_enable = no")
{
    auto parsed = parse_path_arg("MAIL", " FROM:<a@x> SMTPUTF8", false, false);
    REQUIRE(parsed.arg);
    MailParams out;
    MailParamLimits lim;
    lim.smtputf8_enable = false;
    CHECK(check_mail_params(*parsed.arg, lim, out)
          == "555 5.5.4 Unsupported option: SMTPUTF8");
}

TEST_CASE("address: accepted MAIL parameters are returned decoded")
{
    auto parsed = parse_path_arg(
        "MAIL", " FROM:<a@x> SIZE=1 size=20 BODY=8bitmime RET=hdrs ENVID=a+2Bb",
        false, true);
    REQUIRE(parsed.arg);
    MailParams out;
    CHECK(check_mail_params(*parsed.arg, {}, out).empty());
    CHECK(out.size == 20);
    CHECK(out.body == "8BITMIME");
    CHECK(out.ret == 2);
    CHECK(out.envid == "a+b");
}

TEST_CASE("address: RCPT parameters get Postfix's replies, first bad wins")
{
    for (const ParamRow& r : rcpt_rows) {
        std::string text = std::string(" TO:<b@lab.example>") + r.params;
        INFO(text);
        auto parsed = parse_path_arg("RCPT", text, false, true);
        REQUIRE(parsed.arg);
        RcptParams out;
        CHECK(check_rcpt_params(*parsed.arg, out) == r.reply);
    }
}

TEST_CASE("address: ORCPT is decoded, utf-8 type with unitext")
{
    auto parsed = parse_path_arg(
        "RCPT", " TO:<b@x> ORCPT=utf-8;b\\x{E9}+2B@x NOTIFY=FAILURE,DELAY",
        false, true);
    REQUIRE(parsed.arg);
    RcptParams out;
    CHECK(check_rcpt_params(*parsed.arg, out).empty());
    CHECK(out.orcpt_type == "utf-8");
    CHECK(out.orcpt_addr == "b\xC3\xA9+@x");
    CHECK(out.notify == 12);
}

TEST_CASE("address: xtext decoding")
{
    CHECK(xtext_decode("abc") == "abc");
    CHECK(xtext_decode("a+2Bb") == "a+b");
    CHECK(xtext_decode("a+2bb") == "a+b");
    CHECK(xtext_decode("+3D") == "=");
    CHECK(xtext_decode("") == "");
    CHECK(xtext_decode("a+2") == std::nullopt);
    CHECK(xtext_decode("a+") == std::nullopt);
    CHECK(xtext_decode("a+ZZ") == std::nullopt);
    CHECK(xtext_decode("a b") == std::nullopt);
    CHECK(xtext_decode("a\x80") == std::nullopt);
}

TEST_CASE("address: NOTIFY masks, NEVER alone")
{
    CHECK(notify_mask("NEVER") == 1);
    CHECK(notify_mask("SUCCESS,FAILURE") == 6);
    CHECK(notify_mask("delay") == 8);
    CHECK(notify_mask("SUCCESS,FAILURE,DELAY") == 14);
    CHECK(notify_mask(",SUCCESS,") == 2);
    CHECK(notify_mask("NEVER,SUCCESS") == std::nullopt);
    CHECK(notify_mask("") == std::nullopt);
    CHECK(notify_mask(",") == std::nullopt);
    CHECK(notify_mask("FOO") == std::nullopt);
}

TEST_CASE("address: external form quotes the local part where needed")
{
    // The quoted forms are those Postfix 3.7 logs in from=<> / to=<>.
    CHECK(external_form("") == "");
    CHECK(external_form("a@lab.example") == "a@lab.example");
    CHECK(external_form("a b@lab.example") == "\"a b\"@lab.example");
    CHECK(external_form("z@x@relay.example") == "\"z@x\"@relay.example");
    CHECK(external_form("a:b@c") == "\"a:b\"@c");
    CHECK(external_form("a@b@") == "\"a@b\"@");
    CHECK(external_form("a%b!c@x") == "a%b!c@x");
    CHECK(external_form("a.b@x") == "a.b@x");
    CHECK(external_form(".a@x") == "\".a\"@x");
    CHECK(external_form("a..b@x") == "\"a..b\"@x");
    CHECK(external_form("a\"b@x") == "\"a\\\"b\"@x");
    CHECK(external_form("postmaster") == "postmaster");
}

TEST_CASE("address: internal form undoes the quoting")
{
    CHECK(internal_form("\"a b\"@lab.example") == "a b@lab.example");
    CHECK(internal_form("\"a\\\"b\"@x") == "a\"b@x");
    CHECK(internal_form("a@x") == "a@x");
    for (const char* s : {"a b@x", "z@x@y", "a\\b\"c@x", ".a@x"}) {
        CHECK(internal_form(external_form(s)) == s);
    }
}

TEST_CASE("address: syntax replies for resolve errors")
{
    CHECK(address_syntax_reply("MAIL")
          == "501 5.1.7 Bad sender address syntax");
    CHECK(address_syntax_reply("RCPT")
          == "501 5.1.3 Bad recipient address syntax");
}

TEST_CASE("address: an unknown NOTIFY keyword gives Postfix's warning")
{
    auto parsed =
        parse_path_arg("RCPT", " TO:<b@x> NOTIFY=SUCCESS,FOO", false, true);
    REQUIRE(parsed.arg);
    RcptParams out;
    CHECK(check_rcpt_params(*parsed.arg, out)
          == "501 5.5.4 Error: Bad NOTIFY parameter syntax");
    CHECK(out.warning
          == "unknown DSN NOTIFY command value \"FOO\" in \"SUCCESS,FOO\"");
    auto ok = parse_path_arg("RCPT", " TO:<b@x> NOTIFY=NEVER", false, true);
    REQUIRE(ok.arg);
    CHECK(check_rcpt_params(*ok.arg, out).empty());
    CHECK(out.warning.empty());
}

TEST_CASE("address: a NUL byte anywhere in the address is bad syntax")
{
    // Observed on Postfix 3.7.11: 501 for both, and no warning logged.
    using namespace std::string_literals;
    ParseResult m = parse_path_arg(
        "MAIL", " FROM:<a@lab.example\0X-Injected: yes>"s, false, true);
    CHECK(m.reply == "501 5.1.7 Bad sender address syntax");
    CHECK(m.token.empty());
    ParseResult r =
        parse_path_arg("RCPT", " TO:<b\0x@lab.example>"s, false, true);
    CHECK(r.reply == "501 5.1.3 Bad recipient address syntax");
    ParseResult t =
        parse_path_arg("RCPT", " TO:<b@lab.example\0>"s, false, true);
    CHECK(t.reply == "501 5.1.3 Bad recipient address syntax");
}
