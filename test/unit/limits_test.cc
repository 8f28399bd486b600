// SPDX-License-Identifier: MIT
// NAME
//   limits_test - the smtpd_resume_* parameters of the resume spool
// DESCRIPTION
//   The defaults as documented, values from main.cf, fatal messages that
//   name the parameter, the spool directory's path, and the default of
//   smtpd_resume_clients being a network list that smtpd accepts.
#include "resumedb/limits.h"

#include "common/mail/log.h"
#include "smtpd/rewrite.h"
#include "test/unit/catch.h"

#include <string>

using namespace rs;
using namespace rs::resumedb;
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

template <class F> std::string fatal_text(F&& f)
{
    log::set_fatal_hook(throw_fatal);
    std::string out;
    try {
        f();
    } catch (const Fatal& e) {
        out = e.text;
    }
    log::set_fatal_hook(nullptr);
    return out;
}

Config parsed(std::string_view text)
{
    Config c;
    c.read_text(text, "main.cf");
    return c;
}

} // namespace

TEST_CASE("limits: the defaults")
{
    Config c;
    Limits l = limits_from(c);
    CHECK(l.spool_size_limit == 1073741824);
    CHECK(l.client_limit == 10);
    CHECK(l.entry_size_limit == 10240000); // $message_size_limit
    CHECK(l.ttl == 300);
    CHECK(l.max_lifetime == 4 * 3600);
    CHECK(l.max_resumes == 100);
    CHECK(l.checkpoint_size == 1048576);
    CHECK(l.checkpoint_time == 10);
    CHECK(bind_client_from(c) == BindClient::network);
    CHECK(c.boolean("smtpd_resume_enable"));
    CHECK(spool_directory(c) == "/var/spool/postfix/resume");

    for (const char* name :
         {"smtpd_resume_enable", "smtpd_resume_clients",
          "smtpd_resume_spool_directory", "smtpd_resume_ttl",
          "smtpd_resume_max_lifetime", "smtpd_resume_max_resumes",
          "smtpd_resume_spool_size_limit", "smtpd_resume_client_limit",
          "smtpd_resume_checkpoint_size", "smtpd_resume_checkpoint_time",
          "smtpd_resume_bind_client", "smtpd_resume_entry_size_limit"}) {
        INFO(name);
        const mail::DefaultRow* row = mail::find_default_row(name);
        REQUIRE(row != nullptr);
        CHECK(row->kind == mail::DefaultRow::Kind::ours);
    }
}

TEST_CASE("limits: the default client list lets everyone in")
{
    Config c;
    auto nets = smtpd::NetworkList::parse(c.str("smtpd_resume_clients"));
    INFO((nets ? "" : nets.error().text));
    REQUIRE(nets);
    CHECK(nets->match("192.0.2.1"));
    CHECK(nets->match("127.0.0.1"));
    CHECK(nets->match("2001:db8::1"));
    CHECK(nets->match("::1"));
}

TEST_CASE("limits: values from main.cf")
{
    Config c = parsed("queue_directory = /q\n"
                      "message_size_limit = 5000\n"
                      "smtpd_resume_ttl = 2m\n"
                      "smtpd_resume_max_lifetime = 1d\n"
                      "smtpd_resume_client_limit = 0\n"
                      "smtpd_resume_spool_directory = /srv/resume\n"
                      "smtpd_resume_bind_client = ADDRESS\n");
    Limits l = limits_from(c);
    CHECK(l.ttl == 120);
    CHECK(l.max_lifetime == 86400);
    CHECK(l.client_limit == 0);
    CHECK(l.entry_size_limit == 5000);
    CHECK(spool_directory(c) == "/srv/resume");
    CHECK(bind_client_from(c) == BindClient::address);

    Config r = parsed("queue_directory = /q\n"
                      "smtpd_resume_spool_directory = sub/dir\n"
                      "smtpd_resume_bind_client = none\n");
    CHECK(spool_directory(r) == "/q/sub/dir");
    CHECK(bind_client_from(r) == BindClient::none);
}

TEST_CASE("limits: bad values are fatal and name the parameter")
{
    struct Case {
        std::string line;
        std::string name;
    };
    Case cases[] = {
        {"smtpd_resume_ttl = soon", "smtpd_resume_ttl"},
        {"smtpd_resume_max_lifetime = 4x", "smtpd_resume_max_lifetime"},
        {"smtpd_resume_checkpoint_time = -1", "smtpd_resume_checkpoint_time"},
        {"smtpd_resume_spool_size_limit = 1G", "smtpd_resume_spool_size_limit"},
        {"smtpd_resume_spool_size_limit = 99999999999999999999",
         "smtpd_resume_spool_size_limit"},
        {"smtpd_resume_client_limit = -1", "smtpd_resume_client_limit"},
        {"smtpd_resume_client_limit = 3000000000", "smtpd_resume_client_limit"},
        {"smtpd_resume_max_resumes = many", "smtpd_resume_max_resumes"},
        {"smtpd_resume_checkpoint_size = 1.5", "smtpd_resume_checkpoint_size"},
        {"smtpd_resume_entry_size_limit = big",
         "smtpd_resume_entry_size_limit"},
    };
    for (const Case& k : cases) {
        INFO(k.line);
        Config c = parsed(k.line + "\n");
        std::string text = fatal_text([&] { limits_from(c); });
        CHECK(text.find(k.name) != std::string::npos);
    }

    Config b = parsed("smtpd_resume_bind_client = subnet\n");
    CHECK(fatal_text([&] {
              bind_client_from(b);
          }).find("smtpd_resume_bind_client")
          != std::string::npos);
    Config e = parsed("smtpd_resume_spool_directory =\n");
    CHECK(fatal_text([&] {
              spool_directory(e);
          }).find("smtpd_resume_spool_directory")
          != std::string::npos);
}
