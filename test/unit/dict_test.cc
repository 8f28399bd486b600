// SPDX-License-Identifier: MIT
// NAME
//   dict_test.cc - unit tests for common/mail/dict
// DESCRIPTION
//   Tables built in a temporary directory: texthash and inline need
//   nothing, hash and btree are made with Postfix's postmap(1) when it is
//   installed (with a private main.cf, so no system configuration is
//   read), and a Berkeley DB file without trailing NULs is written
//   directly to check the second key variant.
#include "common/mail/dict.h"

#include "test/unit/catch.h"
#include <cstdio>
#include <cstdlib>
#include <db.h>
#include <filesystem>
#include <fstream>
#include <pwd.h>
#include <thread>
#include <unistd.h>

using namespace rs;
using namespace rs::mail;

namespace {

namespace fs = std::filesystem;

// A temporary directory removed at the end of the test.
struct TempDir {
    std::string path;
    TempDir()
    {
        char tmpl[] = "/tmp/rs-dict-test-XXXXXX";
        REQUIRE(mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~TempDir() { fs::remove_all(path); }
    std::string write(const std::string& name, const std::string& text)
    {
        std::string p = path + "/" + name;
        std::ofstream(p) << text;
        return p;
    }
};

// postmap(1) with its own empty configuration directory, or false when
// Postfix is not installed.
bool postmap(TempDir& dir, const std::string& type, const std::string& file)
{
    if (access("/usr/sbin/postmap", X_OK) != 0) {
        return false;
    }
    fs::create_directories(dir.path + "/etc");
    dir.write("etc/main.cf", "compatibility_level = 3.6\n");
    std::string cmd = "/usr/sbin/postmap -c " + dir.path + "/etc " + type + ":"
                      + file + " 2>&1";
    REQUIRE(std::system(cmd.c_str()) == 0);
    return true;
}

std::optional<std::string> get(Dict& d, std::string_view key)
{
    auto r = d.lookup(key);
    REQUIRE(r);
    return *r;
}

std::unique_ptr<Dict> must_open(const std::string& spec)
{
    auto d = open_dict(spec);
    INFO(spec << ": " << (d ? std::string() : d.error().text));
    REQUIRE(d);
    return std::move(*d);
}

} // namespace

TEST_CASE("dict: inline table, braces hold commas, keys fold to lower case")
{
    auto d = must_open("inline:{ Alice=one, {bob = two, three}, carol= }");
    CHECK(get(*d, "alice") == "one");
    CHECK(get(*d, "ALICE") == "one");
    CHECK(get(*d, "bob") == "two, three");
    CHECK(get(*d, "carol") == "");
    CHECK(get(*d, "dave") == std::nullopt);
    CHECK(d->name() == "inline:{ Alice=one, {bob = two, three}, carol= }");
}

TEST_CASE("dict: inline syntax errors are refused at open")
{
    CHECK_FALSE(open_dict("inline:a=b"));
    CHECK_FALSE(open_dict("inline:{a=b"));
    auto d = open_dict("inline:{novalue}");
    REQUIRE_FALSE(d);
    CHECK(d.error().text.find("missing '='") != std::string::npos);
}

TEST_CASE("dict: static answers every key")
{
    auto d = must_open("static:OK");
    CHECK(get(*d, "anything") == "OK");
    auto b = must_open("static:{hello world}");
    CHECK(get(*b, "x") == "hello world");
}

TEST_CASE("dict: texthash comments, continuation lines, first duplicate")
{
    TempDir dir;
    std::string p = dir.write("t", "# comment\n"
                                   "Foo bar\n"
                                   "\n"
                                   "baz  qux quux\n"
                                   "  more\n"
                                   "foo second\n");
    auto d = must_open("texthash:" + p);
    CHECK(get(*d, "foo") == "bar");
    CHECK(get(*d, "FOO") == "bar");
    CHECK(get(*d, "baz") == "qux quux  more");
    CHECK(get(*d, "more") == std::nullopt);
}

TEST_CASE("dict: a missing file is an open error named as Postfix names it")
{
    auto d = open_dict("texthash:/nonexistent/x");
    REQUIRE_FALSE(d);
    CHECK(d.error().text
          == "open database /nonexistent/x: No such file or directory");
    auto h = open_dict("hash:/nonexistent/x");
    REQUIRE_FALSE(h);
    CHECK(h.error().text
          == "open database /nonexistent/x.db: No such file or directory");
}

TEST_CASE("dict: an unsupported type is named in the error")
{
    auto d = open_dict("pcre:/etc/x");
    REQUIRE_FALSE(d);
    CHECK(d.error().text == "unsupported dictionary type: pcre");
    CHECK_FALSE(open_dict("nocolon"));
    CHECK_FALSE(open_dict("unix:group.byname"));
}

TEST_CASE("dict: hash and btree files made by postmap")
{
    for (std::string type : {"hash", "btree"}) {
        TempDir dir;
        std::string p = dir.write("map", "User@Example.COM  value one\n"
                                         "bare  2\n");
        if (!postmap(dir, type, p)) {
            WARN("postmap not installed; skipped");
            return;
        }
        auto d = must_open(type + ":" + p);
        CHECK(get(*d, "user@example.com") == "value one");
        CHECK(get(*d, "USER@example.com") == "value one");
        CHECK(get(*d, "bare") == "2");
        CHECK(get(*d, "nosuch") == std::nullopt);
        CHECK_FALSE(d->changed());

        // postmap rewrites the file in place: the open table notices.
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        dir.write("map", "other 3\n");
        postmap(dir, type, p);
        CHECK(d->changed());
    }
}

TEST_CASE("dict: proxy: opens the named table directly")
{
    auto d = must_open("proxy:inline:{a=b}");
    CHECK(get(*d, "a") == "b");
    CHECK(d->name() == "proxy:inline:{a=b}");
}

TEST_CASE("dict: a hash file stored without trailing NULs is read too")
{
    TempDir dir;
    std::string file = dir.path + "/plain.db";
    DB* db = nullptr;
    REQUIRE(db_create(&db, nullptr, 0) == 0);
    REQUIRE(
        db->open(db, nullptr, file.c_str(), nullptr, DB_HASH, DB_CREATE, 0644)
        == 0);
    DBT k{}, v{};
    k.data = const_cast<char*>("key");
    k.size = 3;
    v.data = const_cast<char*>("val");
    v.size = 3;
    REQUIRE(db->put(db, nullptr, &k, &v, 0) == 0);
    db->close(db, 0);

    auto d = must_open("hash:" + dir.path + "/plain");
    CHECK(get(*d, "key") == "val");
    CHECK(get(*d, "other") == std::nullopt);
}

TEST_CASE("dict: unix:passwd.byname finds root, not a stranger")
{
    auto d = must_open("unix:passwd.byname");
    auto v = get(*d, "ROOT");
    REQUIRE(v);
    CHECK(v->rfind("root:", 0) == 0);
    CHECK(get(*d, "no-such-user-here") == std::nullopt);
    CHECK(get(*d, std::string_view("root\0x", 6)) == std::nullopt);
}

TEST_CASE("dict: a list searches in order and keeps failed tables")
{
    std::vector<std::string> errors;
    auto list = DictList::open(
        "inline:{a=first}, hash:/nonexistent/x inline:{b=second, a=late}", 0,
        &errors);
    REQUIRE(errors.size() == 1);
    CHECK(errors[0]
          == "hash:/nonexistent/x is unavailable. open database "
             "/nonexistent/x.db: No such file or directory");

    // a is found before the broken table, b only behind it.
    auto a = list.lookup("a");
    REQUIRE(a);
    CHECK(*a == "first");
    auto b = list.lookup("b");
    REQUIRE_FALSE(b);
    CHECK(b.error().text == "hash:/nonexistent/x");
    CHECK_FALSE(list.changed());
}

TEST_CASE("dict: map lists split outside braces")
{
    auto v = split_map_list("hash:/a, inline:{x=1, y=2}\tstatic:{a b}");
    REQUIRE(v.size() == 3);
    CHECK(v[0] == "hash:/a");
    CHECK(v[1] == "inline:{x=1, y=2}");
    CHECK(v[2] == "static:{a b}");
    CHECK(split_map_list("  ").empty());
}
