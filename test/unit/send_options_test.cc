// SPDX-License-Identifier: MIT
// Unit tests for client/send_options.
#include "client/send_options.h"
#include "test/unit/catch.h"

using namespace rs::send;

TEST_CASE("send_options: the pipe(8) command line")
{
    auto o = parse_args({"-f", "a@x", "--", "b@y", "-c@y"});
    REQUIRE(o);
    CHECK(o->sender == "a@x");
    REQUIRE(o->rcpts.size() == 2);
    CHECK(o->rcpts[1] == "-c@y");
    CHECK(o->server.host == "127.0.0.1");
    CHECK(o->server.port == 25);
    CHECK(o->tls == TlsLevel::May);
    CHECK(o->resume);
    CHECK(o->timeout == 300);
    CHECK(o->give_up == 3600);
    CHECK(o->chunk == kDefaultChunk);
}

TEST_CASE("send_options: every option, in both spellings")
{
    auto o = parse_args({"-s",
                         "[::1]:2525",
                         "--helo=me.example",
                         "--tls",
                         "encrypt",
                         "--no-resume",
                         "--no-chunking",
                         "--state-dir",
                         "/var/tmp/s",
                         "--timeout=5",
                         "--give-up",
                         "60",
                         "--chunk=4096",
                         "-v",
                         "-q",
                         "--report",
                         "/tmp/r",
                         "-m",
                         "/tmp/msg",
                         "-f",
                         "",
                         "b@y"});
    REQUIRE(o);
    CHECK(o->server.host == "::1");
    CHECK(o->server.port == 2525);
    CHECK(o->server.display() == "[::1]:2525");
    CHECK(o->helo == "me.example");
    CHECK(o->tls == TlsLevel::Encrypt);
    CHECK_FALSE(o->resume);
    CHECK_FALSE(o->chunking);
    CHECK(o->state_dir == "/var/tmp/s");
    CHECK(o->timeout == 5);
    CHECK(o->give_up == 60);
    CHECK(o->chunk == 4096);
    CHECK(o->verbose);
    CHECK(o->quiet);
    CHECK(o->report == "/tmp/r");
    CHECK(o->message_file == "/tmp/msg");
    CHECK(o->sender.empty());
    CHECK(o->rcpts == std::vector<std::string>{"b@y"});

    auto glued = parse_args({"-fa@x", "-s127.0.0.2", "b@y"});
    REQUIRE(glued);
    CHECK(glued->sender == "a@x");
    CHECK(glued->server.host == "127.0.0.2");
}

TEST_CASE("send_options: server specifications")
{
    struct Case {
        const char* spec;
        const char* host;
        int port;
    };
    Case good[] = {{"mx", "mx", 25},
                   {"mx:587", "mx", 587},
                   {"127.0.0.1:2601", "127.0.0.1", 2601},
                   {"[::1]", "::1", 25},
                   {"[::1]:26", "::1", 26}};
    for (const auto& c : good) {
        INFO(c.spec);
        auto s = parse_server(c.spec);
        REQUIRE(s);
        CHECK(s->host == c.host);
        CHECK(s->port == c.port);
    }
    for (auto bad : {"", ":25", "mx:", "mx:0", "mx:65536", "mx:x", "::1",
                     "[::1", "[::1]x", "[::1]:", "[]:25"}) {
        INFO(bad);
        CHECK_FALSE(parse_server(bad));
    }
}

TEST_CASE("send_options: usage errors")
{
    using Args = std::vector<std::string>;
    Args bad[] = {
        {"b@y"},
        {"-f", "a@x"},
        {"-f", "a@x", "--tls", "always", "b@y"},
        {"-f", "a@x", "--timeout", "0", "b@y"},
        {"-f", "a@x", "--give-up", "x", "b@y"},
        {"-f", "a@x", "--chunk", "10", "b@y"},
        {"-f", "a@x", "--bogus", "b@y"},
        {"-f", "a@x", "-s"},
        {"-f", "a@x>", "b@y"},
        {"-f", "a@x", "b@y\r\nDATA"},
        {"-f", "a@x", "--", ""},
        {"-f", "a@x", "--helo", "a b", "b@y"},
        {"-f", "a@x", "--no-resume=yes", "b@y"},
    };
    for (const auto& a : bad) {
        std::string line;
        for (const auto& s : a) {
            line += s + " ";
        }
        INFO(line);
        CHECK_FALSE(parse_args(a));
    }
}

TEST_CASE("send_options: options stop at the first recipient")
{
    auto o = parse_args({"-f", "a@x", "b@y", "-v"});
    REQUIRE(o);
    CHECK_FALSE(o->verbose);
    CHECK(o->rcpts == std::vector<std::string>{"b@y", "-v"});
}
