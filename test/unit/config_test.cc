// SPDX-License-Identifier: MIT
// NAME
//   config_test.cc - unit tests for common/mail/config and defaults
// DESCRIPTION
//   Table tests for the main.cf reader and the $-expander, compatibility
//   levels, typed getters and their fatal messages, defaults and the
//   machine-dependent ones. Where Postfix's postconf(1) is installed, a
//   few expansions are also compared with `postconf -x -h`; without it
//   that test only warns.
#include "common/mail/config.h"
#include "common/mail/log.h"
#include "test/unit/catch.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <unistd.h>

using namespace rs;
using mail::Config;

namespace {

// fatal() in a test: throw the text instead of exiting.
struct Fatal {
    std::string text;
};

void throw_fatal(const std::string& text)
{
    throw Fatal{text};
}

struct HookGuard {
    HookGuard() { log::set_fatal_hook(throw_fatal); }
    ~HookGuard() { log::set_fatal_hook(nullptr); }
};

// The fatal text `f` produces, or "" when it does not fail.
template <class F> std::string fatal_text(F&& f)
{
    HookGuard guard;
    try {
        f();
    } catch (const Fatal& e) {
        return e.text;
    }
    return "";
}

Config parsed(std::string_view text)
{
    Config c;
    c.read_text(text, "main.cf");
    return c;
}

// A scratch directory removed at the end of the test.
struct TempDir {
    std::string path;
    TempDir()
    {
        char tmpl[] = "/tmp/rs-config-test.XXXXXX";
        REQUIRE(mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~TempDir()
    {
        std::string cmd = "rm -rf '" + path + "'";
        int rc = std::system(cmd.c_str());
        (void)rc;
    }
    void write(const std::string& name, const std::string& text)
    {
        std::ofstream(path + "/" + name) << text;
    }
};

// stdout of a shell command, or nullopt when it could not run.
std::optional<std::string> run(const std::string& cmd)
{
    FILE* p = popen(cmd.c_str(), "r");
    if (p == nullptr) {
        return std::nullopt;
    }
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0) {
        out.append(buf, n);
    }
    if (pclose(p) != 0) {
        return std::nullopt;
    }
    while (!out.empty() && out.back() == '\n') {
        out.pop_back();
    }
    return out;
}

const char* expansion_cf = "a = 1\n"
                           "empty =\n"
                           "e = first\n"
                           "# a comment inside the continued value\n"
                           "  second\n"
                           "b = $a$a\n"
                           "chain1 = ${chain2}\n"
                           "chain2 = $(a)x\n"
                           "level = 3.6\n";

} // namespace

TEST_CASE("config: each expansion form gives what Postfix gives")
{
    struct Row {
        const char* in;
        const char* want;
    };
    // Expected values as `postconf -x` prints them for the same main.cf.
    const Row rows[] = {
        {"$a", "1"},
        {"${a}", "1"},
        {"$(a)", "1"},
        {"$a$a ${a}x $(a)y", "11 1x 1y"},
        {"$$a", "$a"},
        {"price $$5", "price $5"},
        {"$undefined_thing|", "|"},
        {"$b", "11"},
        {"$chain1", "1x"},
        {"${a?yes}", "yes"},
        {"${empty?yes}|", "|"},
        {"${nosuch?yes}|", "|"},
        {"${a:no}|", "|"},
        {"${empty:no}", "no"},
        {"${nosuch:no}", "no"},
        {"${a?{T}:{F}}", "T"},
        {"${empty?{T}:{F}}", "F"},
        {"${a? {x} : {y} }", "x"},
        {"${a?{T}:F}", "T"},
        {"${empty?{T}:F}", "F"},
        {"${a:{T}}|", "|"},
        {"${empty:{T}}", "T"},
        {"${a?$e}", "first  second"},
        {"${a?{$b}}", "11"},
        {"${{$a} == {1} ? {eq} : {ne}}", "eq"},
        {"${{$a} != {1} ? {ne} : {eq}}", "eq"},
        {"${{10} < {9} ? {lt} : {ge}}", "ge"},
        {"${{9} < {10} ? {lt} : {ge}}", "lt"},
        {"${{a9} < {a10} ? {lt} : {ge}}", "ge"},
        {"${{abc} <= {abd} ? {le} : {gt}}", "le"},
        {"${{b} > {a} ? {gt} : {le}}", "gt"},
        {"${{5} >= {5} ? {ge} : {lt}}", "ge"},
        {"${{01} == {1} ? {num} : {lex}}", "num"},
        {"${{} == {} ? {empty} : {ne}}", "empty"},
        {"${{ a b } == {a b} ? {same} : {diff}}", "diff"},
        {"${{1} == {1}}", "true"},
        {"${{1} == {2}}|", "|"},
        {"${{1}=={1}?T:F}", "T:F"},
        {"${{1}=={1}?{T}}", "T"},
        {"${{3.6} <level {3.10} ? {older} : {newer}}", "older"},
        {"${{3.6} <level {3.6.0} ? {lt} : {ge}}", "ge"},
        {"${{3.6} <=level {3.6.0} ? {le} : {gt}}", "le"},
        {"${{3} <level {3.6} ? {lt} : {ge}}", "lt"},
        {"${{$level} >=level {3.6} ? {new} : {old}}", "new"},
        {"${{2}<=level{2}?{y}:{n}}", "y"},
        {"${{3.6.1} ==level {3.6.1}?{y}:{n}}", "y"},
        {"${{1} !=level {1.0}?{y}:{n}}", "n"},
        {"${{3.7} >level {3.6.9}?{y}:{n}}", "y"},
    };
    Config c = parsed(expansion_cf);
    for (const auto& r : rows) {
        INFO("expand(" << r.in << ")");
        CHECK(c.expand(r.in) == r.want);
    }
}

TEST_CASE("config: malformed macros are fatal, naming the parameter")
{
    const char* bad[] = {
        "${a",
        "$(a}",
        "$a.$",
        "$ {a}",
        "${a:{T}:{F}}",
        "${a?{x}:{y}:{z}}",
        "${{1} === {1} ? {a}:{b}}",
        "${{ 3.6 } <level {3.10} ? {o} : {n}}",
        "${{1} == {1} ? {x}",
    };
    for (const char* in : bad) {
        Config c = parsed("a = 1\n");
        c.set("smtpd_banner", in);
        INFO("value " << in);
        CHECK(fatal_text([&] { c.str("smtpd_banner"); })
              == "parameter smtpd_banner: macro processing error");
    }
    Config c;
    CHECK(fatal_text([&] { c.expand("${a"); })
          == "macro processing error in \"${a\"");
}

TEST_CASE("config: recursion stops at Postfix's nesting limit")
{
    // smtpd_banner -> p1 -> ... -> pN -> "end": N = 99 nested values is
    // the deepest postconf still expands, N = 100 fails.
    auto chain = [](int n) {
        Config c;
        c.set("smtpd_banner", "$p1");
        for (int i = 1; i <= n; ++i) {
            c.set("p" + std::to_string(i), "$p" + std::to_string(i + 1));
        }
        c.set("p" + std::to_string(n + 1), "end");
        return c;
    };
    Config ok = chain(99);
    CHECK(ok.str("smtpd_banner") == "end");
    Config deep = chain(100);
    CHECK(fatal_text([&] { deep.str("smtpd_banner"); }) != "");

    Config loop =
        parsed("smtpd_banner = $myorigin\nmyorigin = $smtpd_banner\n");
    CHECK(fatal_text([&] { loop.str("smtpd_banner"); })
          == "parameter myorigin: macro processing error");
}

TEST_CASE("config: logical lines, comments and continuations")
{
    Config c = parsed("# top comment\n"
                      "\n"
                      "one = a\n"
                      "# comment between pieces\n"
                      "\tb\n"
                      "   \n"
                      "  c # not a comment\n"
                      "two=x=y = z\n"
                      "three   =   spaced value   \n"
                      "four = first\n"
                      "four = second\n"
                      "crlf = v\r\n"
                      "empty =\n");
    CHECK(c.raw("one") == "a\tb  c # not a comment");
    CHECK(c.raw("two") == "x=y = z");
    CHECK(c.raw("three") == "spaced value");
    CHECK(c.raw("four") == "second");
    CHECK(c.raw("crlf") == "v");
    CHECK(c.is_set("empty"));
    CHECK(c.raw("empty") == "");

    // A continuation with nothing to continue is skipped, not fatal.
    Config d = parsed("  orphan = 1\nx = 2\n");
    CHECK_FALSE(d.is_set("orphan"));
    CHECK(d.raw("x") == "2");
}

TEST_CASE("config: a line without '=' is fatal with file and line number")
{
    Config c;
    CHECK(fatal_text([&] { c.read_text("a = 1\nfoo_bar\n", "/x/main.cf"); })
          == "/x/main.cf, line 2: missing '=' after attribute name: "
             "\"foo_bar\"");
    CHECK(fatal_text([&] { c.read_text("a = 1\n  # c\n= 2\n", "m"); })
          == "m, line 3: missing '=' after attribute name: \"= 2\"");
}

TEST_CASE("config: overrides replace main.cf and stay unexpanded")
{
    Config c = parsed("syslog_name = postfix\nsmtpd_timeout = 300s\n");
    c.set_override("syslog_name=postfix/$service_name");
    c.set_override("  smtpd_timeout = 10s  ");
    c.set("service_name", "submission");
    CHECK(c.raw("syslog_name") == "postfix/$service_name");
    CHECK(c.str("syslog_name") == "postfix/submission");
    CHECK(c.time("smtpd_timeout") == 10);

    // An override also wins over a main.cf line read after it.
    c.read_text("smtpd_timeout = 99s\n", "late");
    CHECK(c.time("smtpd_timeout") == 10);

    // The long form, with whitespace and '=' inside the value.
    c.set_override("{ smtpd_banner = $myhostname  ESMTP a=b }");
    CHECK(c.raw("smtpd_banner") == "$myhostname  ESMTP a=b");

    CHECK(fatal_text([&] { c.set_override("no_equals_sign"); })
          == "-o option: missing '=' in \"no_equals_sign\"");
    CHECK(fatal_text([&] { c.set_override("=x"); }) != "");
}

TEST_CASE("config: an unset parameter gets its default, remembered")
{
    Config c = parsed("compatibility_level = 0\n");
    CHECK_FALSE(c.is_set("smtputf8_enable"));
    CHECK(c.raw("smtputf8_enable")
          == "${{$compatibility_level} <level {1} ? {no} : {yes}}");
    CHECK(c.str("myorigin") == c.str("myhostname"));

    // mynetworks is fixed when first used: a later change of the style
    // does not recompute it, as Postfix's write-back behaves.
    std::string first = c.str("mynetworks");
    c.set("mynetworks_style", "host");
    CHECK(c.str("mynetworks") == first);
    CHECK_FALSE(c.is_set("mynetworks"));

    // Unknown names are empty, not an error.
    CHECK(c.str("no_such_parameter_anywhere") == "");
    CHECK(c.raw("no_such_parameter_anywhere") == "");
}

TEST_CASE("config: raw parameters are never expanded")
{
    Config c = parsed("smtpd_reject_footer = \\c$client_address\n"
                      "smtpd_banner = $smtpd_reject_footer\n"
                      "client_address = 192.0.2.1\n"
                      "smtpd_command_filter = $client_address\n");
    CHECK(Config::is_raw("smtpd_reject_footer"));
    CHECK(Config::is_raw("smtpd_expansion_filter"));
    CHECK(Config::is_raw("default_rbl_reply"));
    CHECK_FALSE(Config::is_raw("smtpd_banner"));
    CHECK(c.str("smtpd_reject_footer") == "\\c$client_address");
    CHECK(c.str("default_rbl_reply").find("$rbl_code") == 0);

    // A reference from a non-raw parameter is expanded, as in postconf.
    CHECK(c.str("smtpd_banner") == "\\c192.0.2.1");
    CHECK(c.str("smtpd_command_filter") == "192.0.2.1");
}

TEST_CASE("config: compatibility-level defaults at levels 0, 1, 2 and 3.6")
{
    struct Row {
        const char* level;
        const char* utf8;
        const char* style;
        const char* relay;
    };
    const Row rows[] = {
        {"0", "no", "subnet", ""},
        {"1", "yes", "subnet",
         "permit_mynetworks, permit_sasl_authenticated, "
         "defer_unauth_destination"},
        {"2", "yes", "host",
         "permit_mynetworks, permit_sasl_authenticated, "
         "defer_unauth_destination"},
        {"3.6", "yes", "host",
         "permit_mynetworks, permit_sasl_authenticated, "
         "defer_unauth_destination"},
    };
    for (const auto& r : rows) {
        INFO("compatibility_level = " << r.level);
        Config c;
        c.set_override(std::string("compatibility_level=") + r.level);
        CHECK(c.str("smtputf8_enable") == r.utf8);
        CHECK(c.boolean("smtputf8_enable") == (std::string(r.utf8) == "yes"));
        CHECK(c.str("mynetworks_style") == r.style);
        CHECK(c.str("smtpd_relay_restrictions") == r.relay);
    }
}

TEST_CASE("config: compatibility levels compare as major.minor.patch")
{
    CHECK(Config::compat_level_value("0") == 0);
    CHECK(Config::compat_level_value("3.6") == 3006000);
    CHECK(Config::compat_level_value("3.6.0") == 3006000);
    CHECK(Config::compat_level_value("3.10")
          > Config::compat_level_value("3.9"));
    CHECK(Config::compat_level_value("3.6.1") == 3006001);
    CHECK(Config::compat_level_value("") == -1);
    CHECK(Config::compat_level_value(" 3.6") == -1);
    CHECK(Config::compat_level_value("3.") == -1);
    CHECK(Config::compat_level_value("3.6.1.2") == -1);
    CHECK(Config::compat_level_value("3.x") == -1);
    CHECK(Config::compat_level_value("3.1000") == -1);
}

TEST_CASE("config: times take a unit, or the parameter's default unit")
{
    struct Row {
        const char* value;
        char unit;
        int64_t want;
    };
    const Row rows[] = {
        {"10", 's', 10},   {"10s", 's', 10},   {"10m", 's', 600},
        {"2h", 's', 7200}, {"1d", 's', 86400}, {"1w", 's', 604800},
        {"5", 'm', 300},   {"5", 'd', 432000}, {"10sabc", 's', 10},
        {"+5", 's', 5},    {"0", 's', 0},
    };
    for (const auto& r : rows) {
        INFO("smtpd_timeout = " << r.value << " unit " << r.unit);
        Config c;
        c.set("smtpd_timeout", r.value);
        CHECK(c.time("smtpd_timeout", r.unit) == r.want);
    }

    // The default of smtpd_starttls_timeout is itself an expression.
    Config d;
    CHECK(d.time("smtpd_starttls_timeout") == 300);
}

TEST_CASE("config: bad times reach the fatal hook with Postfix's words")
{
    const char* bad[] = {
        "30q",        "abc", "-5", "", "5W", "5 s", "99999999999999",
        "2147483648", "10x5"};
    for (const char* v : bad) {
        INFO("smtpd_timeout = " << v);
        Config c;
        c.set("smtpd_timeout", v);
        CHECK(fatal_text([&] { c.time("smtpd_timeout"); })
              == std::string("parameter smtpd_timeout: bad time value or "
                             "unit: ")
                     + v);
    }
    Config c;
    c.set("smtpd_timeout", "0");
    CHECK(fatal_text([&] { c.time("smtpd_timeout", 's', 1); })
          == "invalid smtpd_timeout: 0 (min 1)");
    c.set("smtpd_timeout", "2h");
    CHECK(fatal_text([&] { c.time("smtpd_timeout", 's', 1, 3600); })
          == "invalid smtpd_timeout: 7200 (max 3600)");
}

TEST_CASE("config: integers are whole decimal numbers within range")
{
    Config c;
    c.set("smtpd_recipient_limit", "1000");
    CHECK(c.integer("smtpd_recipient_limit", 1) == 1000);
    c.set("smtpd_recipient_limit", "+5");
    CHECK(c.integer("smtpd_recipient_limit", 1) == 5);
    CHECK(c.integer("smtpd_sessions_per_process", 1) == 1);

    for (const char* v : {"abc", "10k", "", "99999999999999999999", "1 0"}) {
        INFO("smtpd_recipient_limit = " << v);
        c.set("smtpd_recipient_limit", v);
        CHECK(fatal_text([&] { c.integer("smtpd_recipient_limit", 1); })
              == std::string("bad numerical configuration: "
                             "smtpd_recipient_limit = ")
                     + v);
    }
    c.set("smtpd_recipient_limit", "-1");
    CHECK(fatal_text([&] { c.integer("smtpd_recipient_limit", 1); })
          == "invalid smtpd_recipient_limit parameter value -1 < 1");
    c.set("smtpd_recipient_limit", "11");
    CHECK(fatal_text([&] { c.integer("smtpd_recipient_limit", 1, 10); })
          == "invalid smtpd_recipient_limit parameter value 11 > 10");
}

TEST_CASE("config: booleans are yes or no in any case")
{
    Config c;
    for (const char* v : {"yes", "YES", "Yes"}) {
        c.set("smtpd_helo_required", v);
        CHECK(c.boolean("smtpd_helo_required"));
    }
    c.set("smtpd_helo_required", "nO");
    CHECK_FALSE(c.boolean("smtpd_helo_required"));
    for (const char* v : {"maybe", "", "1", "yes "}) {
        c.set("smtpd_helo_required", v);
        CHECK(fatal_text([&] { c.boolean("smtpd_helo_required"); })
              == std::string("bad boolean configuration: "
                             "smtpd_helo_required = ")
                     + v);
    }
    // A value that expands into garbage is reported expanded.
    c.set("smtpd_helo_required", "${{1} == {1} ? {yes}:{no}}x");
    CHECK(fatal_text([&] { c.boolean("smtpd_helo_required"); })
          == "bad boolean configuration: smtpd_helo_required = yesx");
}

TEST_CASE("config: lists split at commas and whitespace")
{
    Config c = parsed("smtpd_client_restrictions = permit_mynetworks,\n"
                      "    reject_unknown_client_hostname ,, check_x\n");
    auto v = c.list("smtpd_client_restrictions");
    REQUIRE(v.size() == 3);
    CHECK(v[0] == "permit_mynetworks");
    CHECK(v[1] == "reject_unknown_client_hostname");
    CHECK(v[2] == "check_x");
}

TEST_CASE("config: the default table is Postfix 3.7.11's plus ours")
{
    CHECK(mail::default_value("mail_version") == "3.7.11");
    CHECK(mail::default_value("smtpd_timeout") == "${stress?{10}:{300}}s");
    CHECK(mail::default_value("smtpd_sessions_per_process") == "1");
    CHECK(mail::default_value("no_such_parameter") == std::nullopt);
    CHECK(mail::find_default_row("smtpd_sessions_per_process")->kind
          == mail::DefaultRow::Kind::ours);
    CHECK(mail::find_default_row("myhostname")->kind
          == mail::DefaultRow::Kind::computed);
    auto rows = mail::default_rows();
    CHECK(rows.size() > 1000);
    for (size_t i = 1; i < rows.size(); ++i) {
        REQUIRE(rows[i - 1].name < rows[i].name);
    }

    // The generating machine's host name or pid must not leak in.
    for (const auto& r : rows) {
        if (r.kind == mail::DefaultRow::Kind::computed) {
            INFO("computed row " << r.name);
            CHECK(r.value.empty());
        }
    }
}

TEST_CASE("config: host and domain defaults follow Postfix's rules")
{
    // The real host name, with a domain when it has none.
    Config c;
    std::string host = c.str("myhostname");
    CHECK(host.find('.') != std::string::npos);
    CHECK(c.str("mydomain") == host.substr(host.find('.') + 1));

    Config d;
    d.set("myhostname", "foo");
    CHECK(d.str("mydomain") == "localdomain");
    Config e;
    e.set("myhostname", "mx.a.example");
    CHECK(e.str("mydomain") == "a.example");

    // A bare kernel host name takes $mydomain when main.cf sets it.
    char buf[256] = {};
    gethostname(buf, sizeof(buf) - 1);
    if (std::string(buf).find('.') == std::string::npos) {
        Config f = parsed("mydomain = example.org\n");
        CHECK(f.str("myhostname") == std::string(buf) + ".example.org");
    }

    Config g;
    CHECK(g.str("process_id") == std::to_string(getpid()));
    CHECK(g.str("process_name") == "config_test");
}

TEST_CASE("config: config_directory comes from MAIL_CONFIG or the default")
{
    unsetenv("MAIL_CONFIG");
    Config a;
    CHECK(a.str("config_directory") == "/etc/postfix");
    setenv("MAIL_CONFIG", "/tmp/elsewhere", 1);
    Config b;
    CHECK(b.str("config_directory") == "/tmp/elsewhere");
    unsetenv("MAIL_CONFIG");

    TempDir dir;
    dir.write("main.cf", "config_directory = /ignored\nmyorigin = o.test\n");
    Config c;
    c.read_main_cf(dir.path);
    CHECK(c.str("config_directory") == dir.path);
    CHECK(c.str("myorigin") == "o.test");

    Config missing;
    CHECK(fatal_text([&] { missing.read_main_cf(dir.path + "/nope"); })
          == "open " + dir.path + "/nope/main.cf: No such file or directory");
}

TEST_CASE("config: mynetworks styles look like Postfix's")
{
    for (const char* style : {"host", "subnet", "class"}) {
        INFO("mynetworks_style = " << style);
        Config c;
        c.set("mynetworks_style", style);
        std::string nets = c.str("mynetworks");
        CHECK_FALSE(nets.empty());
        if (std::string(style) == "host") {
            CHECK(nets.find("/8") == std::string::npos);
        }
        // IPv4 networks come before IPv6 ones.
        auto v6 = nets.find('[');
        if (v6 != std::string::npos) {
            CHECK(nets.find('.', v6) == std::string::npos);
        }
    }
    Config c;
    c.set("mynetworks_style", "HOST");
    CHECK(fatal_text([&] { c.str("mynetworks"); })
          == "unknown mynetworks_style value \"HOST\"");
    Config d;
    d.set("inet_protocols", "ipv4");
    CHECK(d.str("mynetworks").find('[') == std::string::npos);
}

TEST_CASE("config: expansions and defaults agree with postconf -x")
{
    auto probe = run("command -v postconf");
    if (!probe) {
        WARN("postconf not installed: comparison skipped");
        return;
    }

    // postconf only prints built-in names, and folds whitespace runs, so
    // each expression is put into smtpd_banner and kept single-spaced.
    TempDir dir;
    std::string cf = expansion_cf;
    cf += "compatibility_level = 3.6\n";
    dir.write("main.cf", cf);
    dir.write("master.cf", "");
    const char* exprs[] = {
        "$a$a ${a}x $(a)y $$a",
        "${a?yes}|${empty?yes}|${a:no}|${empty:no}|${a?{T}:{F}}",
        "${{$a} == {1} ? {eq} : {ne}} ${{10} < {9} ? {lt} : {ge}}",
        "${{$compatibility_level} >=level {3.6} ? {new} : {old}}",
        "${{1} !=level {1.0}?{y}:{n}} ${{1}=={1}?T:F} ${{x} < {y}}",
        "$chain1 $b ${a?{$b}}",
        "$myorigin $mydomain",
        "$smtputf8_enable $mynetworks_style",
        "$smtpd_relay_restrictions",
        "$mynetworks",
    };
    Config c;
    c.read_main_cf(dir.path);
    for (const char* e : exprs) {
        std::string cmd = "postconf -c '" + dir.path + "' -x -h -o '"
                          + "smtpd_banner=" + e + "' smtpd_banner 2>/dev/null";
        auto want = run(cmd);
        INFO("expression " << e);
        REQUIRE(want);
        c.set("smtpd_banner", e);
        CHECK(c.str("smtpd_banner") == *want);
    }
    for (const char* style : {"host", "subnet", "class"}) {
        auto want = run("postconf -c '" + dir.path + "' -h -o mynetworks_style="
                        + style + " mynetworks 2>/dev/null");
        REQUIRE(want);
        Config d;
        d.set("mynetworks_style", style);
        INFO("mynetworks_style = " << style);
        CHECK(d.str("mynetworks") == *want);
    }
}
