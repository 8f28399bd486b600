// SPDX-License-Identifier: MIT
// Unit tests for client/send_state.
#include "client/send_message.h"
#include "client/send_state.h"
#include "test/unit/catch.h"

#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

using namespace rs::send;
namespace fs = std::filesystem;

namespace {

struct TempDir {
    std::string path;
    TempDir()
    {
        char tmpl[] = "/tmp/send_state_test.XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~TempDir() { fs::remove_all(path); }
};

ResumeState sample()
{
    return ResumeState{"Kq3xY_9-aaaaaaaaaaaaaa", 12345, sha256_hex("m"),
                       "127.0.0.1:25"};
}

void write_file(const std::string& path, const std::string& text)
{
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << text;
}

} // namespace

TEST_CASE("send_state: the key depends on server, envelope and message")
{
    std::string d = sha256_hex("message");
    auto k = state_key("127.0.0.1:25", "a@x", {"b@y", "c@y"}, d);
    CHECK(k.size() == 64);
    CHECK(k == state_key("127.0.0.1:25", "a@x", {"b@y", "c@y"}, d));
    CHECK(k != state_key("127.0.0.1:26", "a@x", {"b@y", "c@y"}, d));
    CHECK(k != state_key("127.0.0.1:25", "", {"b@y", "c@y"}, d));
    CHECK(k != state_key("127.0.0.1:25", "a@x", {"c@y", "b@y"}, d));
    CHECK(k != state_key("127.0.0.1:25", "a@x", {"b@yc@y"}, d));
    CHECK(k
          != state_key("127.0.0.1:25", "a@x", {"b@y", "c@y"},
                       sha256_hex("other")));
}

TEST_CASE("send_state: save, load and remove round trip")
{
    TempDir dir;
    StateFile f(dir.path, "k1");
    auto none = f.load();
    REQUIRE(none);
    CHECK_FALSE(*none);

    REQUIRE(f.save(sample()));
    struct stat st {};
    REQUIRE(::stat(f.path().c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);

    auto got = f.load();
    REQUIRE(got);
    REQUIRE(*got);
    CHECK((*got)->token == sample().token);
    CHECK((*got)->size == 12345);
    CHECK((*got)->digest == sample().digest);
    CHECK((*got)->server == "127.0.0.1:25");

    // A second save replaces, and leaves no temporary file behind.
    auto s2 = sample();
    s2.token = "bbbbbbbbbbbbbbbbbbbb";
    REQUIRE(f.save(s2));
    CHECK((*f.load())->token == s2.token);
    size_t files = 0;
    for (auto& e : fs::directory_iterator(dir.path)) {
        (void)e;
        ++files;
    }
    CHECK(files == 1);

    REQUIRE(f.remove());
    CHECK_FALSE(*f.load());
    CHECK(f.remove());
}

TEST_CASE("send_state: damaged files are reported, not trusted")
{
    std::string good = format_state(sample());
    REQUIRE(parse_state(good));

    struct Case {
        const char* what;
        std::string text;
    };
    std::string no_token = good;
    no_token.replace(no_token.find("token="), 6, "tokin=");
    Case cases[] = {
        {"empty", ""},
        {"wrong header", "resume-send-state 2\n" + good.substr(20)},
        {"truncated", good.substr(0, good.size() - 5)},
        {"bad token", "resume-send-state 1\ntoken=short\nsize=1\ndigest="
                          + sample().digest + "\n"},
        {"bad size", "resume-send-state 1\ntoken=" + sample().token
                         + "\nsize=x\ndigest=" + sample().digest + "\n"},
        {"no digest",
         "resume-send-state 1\ntoken=" + sample().token + "\nsize=1\n"},
        {"unknown key", no_token},
        {"line without =", good + "junk\n"},
        {"too large", good + std::string(5000, '#') + "\n"},
    };
    TempDir dir;
    StateFile f(dir.path, "k2");
    for (const auto& c : cases) {
        INFO(c.what);
        CHECK_FALSE(parse_state(c.text));
        write_file(f.path(), c.text);
        CHECK_FALSE(f.load());
    }
}

TEST_CASE("send_state: a directory that cannot be written fails the save")
{
    StateFile f("/nonexistent/dir", "k3");
    CHECK_FALSE(f.save(sample()));
    auto l = f.load();
    REQUIRE(l);
    CHECK_FALSE(*l);
}
