// SPDX-License-Identifier: MIT
// NAME
//   spool_test - the resume spool: entries, claims, limits, crash safety
// DESCRIPTION
//   Each test works in its own temporary directory. The crash test
//   stops the world before every disk operation of a whole transfer in
//   turn (testing::crash_after) and checks what a fresh Spool finds
//   afterwards; the takeover tests use two Spool objects in one process
//   and a fork()ed child that holds the lock. Damage is made by hand in
//   the files and must be reported by check() and answered "none".
#include "resumedb/spool.h"

#include "test/unit/catch.h"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <openssl/evp.h>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace rs;
using namespace rs::resumedb;

namespace {

// A scratch directory removed at the end of the test; the spool is its
// "spool" subdirectory, made by Spool::open.
struct TempDir {
    std::string path;
    TempDir()
    {
        char tmpl[] = "/tmp/rs-spool-test.XXXXXX";
        REQUIRE(mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~TempDir()
    {
        std::string cmd = "rm -rf '" + path + "'";
        int rc = std::system(cmd.c_str());
        (void)rc;
    }
    std::string spool() const { return path + "/spool"; }
};

// Hooks back to normal at the end of a test, whatever happened.
struct HookGuard {
    ~HookGuard()
    {
        testing::crash_after(-1);
        testing::set_now(0);
    }
};

Limits test_limits()
{
    Limits l;
    l.ttl = 300;
    l.max_lifetime = 3600;
    l.max_resumes = 100;
    return l;
}

std::unique_ptr<Spool> open_spool(const std::string& dir,
                                  const Limits& l = test_limits())
{
    auto s = Spool::open(dir, l);
    INFO((s ? "" : s.error().text));
    REQUIRE(s);
    return std::move(*s);
}

unsigned char* sha256_raw(std::string_view s, unsigned char (&md)[32])
{
    unsigned int len = 0;
    REQUIRE(EVP_Digest(s.data(), s.size(), md, &len, EVP_sha256(), nullptr)
            == 1);
    return md;
}

std::string sha256_b64(std::string_view s)
{
    unsigned char md[32];
    sha256_raw(s, md);
    return digest_base64(md);
}

std::string sha256_hex(std::string_view s)
{
    unsigned char md[32];
    sha256_raw(s, md);
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : md) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

std::string id_of(std::string_view token)
{
    return sha256_hex(token).substr(0, 32);
}

std::string slurp(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void spit(const std::string& path, const std::string& text)
{
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

bool exists(const std::string& path)
{
    struct stat st;
    return lstat(path.c_str(), &st) == 0;
}

int64_t file_size(const std::string& path)
{
    struct stat st;
    return lstat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

// The names in a directory, "." and ".." left out.
std::set<std::string> names(const std::string& dir)
{
    std::set<std::string> out;
    std::string cmd = "ls -A '" + dir + "'";
    FILE* p = popen(cmd.c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[512];
    while (fgets(buf, sizeof buf, p) != nullptr) {
        std::string n = buf;
        if (!n.empty() && n.back() == '\n') {
            n.pop_back();
        }
        if (n == "sweep.stamp" || n == "partial") {
            continue; // the spool's own, not entries (spool.cc)
        }
        out.insert(n);
    }
    pclose(p);
    return out;
}

const std::string BINDING = "MAIL FROM:<a@example.org> SIZE=100\n"
                            "RCPT TO:<b@example.net>\n"
                            "CLIENT 192.0.2.0/24\n";
const std::string CLIENT = "192.0.2.7";

// A fresh partial entry: its token, the Entry dropped unless kept.
struct Made {
    std::string token;
    std::unique_ptr<Entry> entry;
};

Made make(Spool& s, std::string_view client = CLIENT, int64_t declared = 0,
          std::string_view binding = BINDING)
{
    auto c = s.create(binding, client, declared);
    INFO((c ? "" : c.error().text));
    REQUIRE(c);
    REQUIRE(c->kind == Created::Kind::ok);
    REQUIRE(c->entry);
    return Made{c->token, std::move(c->entry)};
}

Claim claim(Spool& s, std::string_view token,
            std::string_view binding = BINDING)
{
    auto c = s.claim(token, binding);
    INFO((c ? "" : c.error().text));
    REQUIRE(c);
    return std::move(*c);
}

std::string read_all(Entry& e)
{
    std::string out;
    char buf[7]; // small on purpose: reads must continue where they stop
    for (;;) {
        auto n = e.read(static_cast<int64_t>(out.size()), buf, sizeof buf);
        REQUIRE(n);
        if (*n == 0) {
            return out;
        }
        out.append(buf, *n);
    }
}

const char* EMPTY_SHA256 = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";

} // namespace

// ---------------------------------------------------------------------
// Tokens and files

TEST_CASE("spool: token syntax")
{
    struct Case {
        std::string token;
        bool ok;
    };
    Case cases[] = {
        {"", false},
        {std::string(15, 'a'), false},
        {std::string(16, 'a'), true},
        {std::string(64, 'Z'), true},
        {std::string(65, 'Z'), false},
        {"abcdefghij-_0123456789", true},
        {"abcdefghij+/0123456789", false}, // base64, not base64url
        {"abcdefghij0123456789==", false},
        {"abcdefghij 0123456789", false},
        {std::string("abcdefghij\0"
                     "0123456789",
                     21),
         false},
    };
    for (const Case& c : cases) {
        INFO("token \"" << c.token << "\"");
        CHECK(token_syntax_ok(c.token) == c.ok);
    }
}

TEST_CASE("spool: tokens are 24 base64url characters, unique, not stored")
{
    TempDir tmp;
    auto s = open_spool(tmp.spool());
    std::set<std::string> seen;
    for (int i = 0; i < 100; ++i) {
        Made m = make(*s);
        INFO("token " << m.token);
        CHECK(m.token.size() == 24);
        CHECK(token_syntax_ok(m.token));
        CHECK(seen.insert(m.token).second);
        CHECK(m.entry->id() == id_of(m.token));

        // The meta file holds the token's hash, never the token.
        std::string meta = slurp(tmp.spool() + "/" + m.entry->id() + ".meta");
        CHECK(meta.find(m.token) == std::string::npos);
        CHECK(meta.find("hash=" + sha256_hex(m.token) + "\n")
              != std::string::npos);
        CHECK(meta.find(BINDING) == std::string::npos);
        CHECK(meta.find("binding=" + sha256_hex(BINDING) + "\n")
              != std::string::npos);
    }

    // short_hash: 12 hex digits, stable, not the token.
    std::string t = *seen.begin();
    CHECK(short_hash(t) == sha256_hex(t).substr(0, 12));
    CHECK(short_hash(t) == short_hash(t));
    CHECK(short_hash(t) != short_hash(*seen.rbegin()));
}

TEST_CASE("spool: directory 0700, files 0600, refused when not a directory")
{
    TempDir tmp;
    mode_t old = umask(0);
    auto s = open_spool(tmp.spool());
    Made m = make(*s);
    umask(old);
    struct stat st;
    REQUIRE(stat(tmp.spool().c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0700);
    for (const char* suffix : {".meta", ".data", ".lock"}) {
        INFO(suffix);
        REQUIRE(stat((tmp.spool() + "/" + m.entry->id() + suffix).c_str(), &st)
                == 0);
        CHECK((st.st_mode & 07777) == 0600);
    }

    spit(tmp.path + "/file", "x");
    CHECK(!Spool::open(tmp.path + "/file", test_limits()));
    REQUIRE(symlink(tmp.spool().c_str(), (tmp.path + "/link").c_str()) == 0);
    CHECK(!Spool::open(tmp.path + "/link", test_limits()));
}

// ---------------------------------------------------------------------
// Appending and checkpoints

TEST_CASE("spool: only line ends that were checkpointed count")
{
    TempDir tmp;
    auto s = open_spool(tmp.spool());
    Made m = make(*s);
    Entry& e = *m.entry;
    CHECK(e.offset() == 0);
    CHECK(e.sha256() == EMPTY_SHA256);
    CHECK(e.sha256() == sha256_b64(""));

    REQUIRE(e.append("abc\r\n", true));
    REQUIRE(e.append("de", false));
    CHECK(e.written() == 7);
    CHECK(e.offset() == 0);
    REQUIRE(e.checkpoint());
    CHECK(e.offset() == 5);
    CHECK(e.sha256() == sha256_b64("abc\r\n"));

    // Only committed octets can be read back.
    CHECK(read_all(e) == "abc\r\n");

    // A line end must really be one.
    auto bad = e.append("f", true);
    REQUIRE(!bad);
    CHECK(bad.error().code == EINVAL);
    CHECK(e.written() == 7);

    // The rest of the line; a checkpoint then moves to its end.
    REQUIRE(e.append("f\r\n", true));
    REQUIRE(e.append("gh", false));
    REQUIRE(e.checkpoint());
    CHECK(e.offset() == 10);
    CHECK(e.sha256() == sha256_b64("abc\r\ndef\r\n"));

    // Dropping the Entry writes nothing: the tail stays until a claim.
    std::string meta_path = tmp.spool() + "/" + e.id() + ".meta";
    std::string data_path = tmp.spool() + "/" + e.id() + ".data";
    std::string meta = slurp(meta_path);
    m.entry.reset();
    CHECK(slurp(meta_path) == meta);
    CHECK(file_size(data_path) == 12);

    // A claim cuts the tail and resumes at the offset.
    Claim c = claim(*s, m.token);
    REQUIRE(c.kind == Claim::Kind::partial);
    REQUIRE(c.entry);
    CHECK(c.entry->offset() == 10);
    CHECK(c.entry->written() == 10);
    CHECK(c.entry->sha256() == sha256_b64("abc\r\ndef\r\n"));
    CHECK(file_size(data_path) == 10);
    CHECK(read_all(*c.entry) == "abc\r\ndef\r\n");

    // And the running digest goes on from the claimed prefix.
    REQUIRE(c.entry->append("ij\r\n", true));
    REQUIRE(c.entry->checkpoint());
    CHECK(c.entry->sha256() == sha256_b64("abc\r\ndef\r\nij\r\n"));
    CHECK(c.entry->offset() == 14);
}

TEST_CASE("spool: an empty append may mark a line end only at one")
{
    TempDir tmp;
    auto s = open_spool(tmp.spool());
    Made m = make(*s);
    REQUIRE(m.entry->append("", true));
    REQUIRE(m.entry->append("x\n", false));
    REQUIRE(m.entry->append("", true));
    REQUIRE(m.entry->checkpoint());
    CHECK(m.entry->offset() == 2);
    REQUIRE(m.entry->append("y", false));
    CHECK(!m.entry->append("", true));
}

TEST_CASE("spool: appends past the entry size limit fail with EFBIG")
{
    TempDir tmp;
    Limits l = test_limits();
    l.entry_size_limit = 10;
    auto s = open_spool(tmp.spool(), l);
    Made m = make(*s);
    REQUIRE(m.entry->append("12345678", false));
    auto r = m.entry->append("9\r\n", true);
    REQUIRE(!r);
    CHECK(r.error().code == EFBIG);
    CHECK(m.entry->written() == 8);
    REQUIRE(m.entry->append("9\n", true));
    REQUIRE(m.entry->checkpoint());
    CHECK(m.entry->offset() == 10);
}

TEST_CASE("spool: checkpoints fall due by size and by time")
{
    TempDir tmp;
    HookGuard guard;
    testing::set_now(100000);
    Limits l = test_limits();
    l.checkpoint_size = 10;
    l.checkpoint_time = 5;
    auto s = open_spool(tmp.spool(), l);
    Made m = make(*s);
    Entry& e = *m.entry;
    CHECK(!e.checkpoint_due());
    REQUIRE(e.append("1234\n", true));
    CHECK(!e.checkpoint_due());
    REQUIRE(e.append("12345678", false));
    CHECK(!e.checkpoint_due()); // 13 written, but only 5 committable
    REQUIRE(e.append("9\n", true));
    CHECK(e.checkpoint_due());
    REQUIRE(e.checkpoint());
    CHECK(!e.checkpoint_due());

    REQUIRE(e.append("x\n", true));
    testing::set_now(100004);
    CHECK(!e.checkpoint_due());
    testing::set_now(100005);
    CHECK(e.checkpoint_due());
}

// ---------------------------------------------------------------------
// Claims

TEST_CASE("spool: a claim with another binding is a mismatch and harmless")
{
    TempDir tmp;
    auto s = open_spool(tmp.spool());
    Made m = make(*s);
    REQUIRE(m.entry->append("hello\r\n", true));
    REQUIRE(m.entry->checkpoint());
    m.entry.reset();

    Claim c = claim(*s, m.token, BINDING + "RCPT TO:<c@example.net>\n");
    CHECK(c.kind == Claim::Kind::mismatch);
    CHECK(!c.entry);

    Claim ok = claim(*s, m.token);
    REQUIRE(ok.kind == Claim::Kind::partial);
    CHECK(ok.entry->offset() == 7);
}

TEST_CASE("spool: unknown and malformed tokens are none")
{
    TempDir tmp;
    auto s = open_spool(tmp.spool());
    Made m = make(*s);
    m.entry.reset();
    CHECK(claim(*s, "AAAAAAAAAAAAAAAAAAAAAAAA").kind == Claim::Kind::none);
    CHECK(claim(*s, "not a token").kind == Claim::Kind::none);
    CHECK(claim(*s, m.token + "x").kind == Claim::Kind::none);
    CHECK(claim(*s, m.token).kind == Claim::Kind::partial);
}

TEST_CASE("spool: a busy entry asks its owner to let go, then is claimed")
{
    TempDir tmp;
    auto owner_spool = open_spool(tmp.spool());
    auto other_spool = open_spool(tmp.spool());
    Made m = make(*owner_spool);
    REQUIRE(m.entry->append("line 1\r\n", true));
    REQUIRE(m.entry->checkpoint());
    REQUIRE(m.entry->append("line 2\r\npart", false));
    CHECK(!m.entry->want_takeover());

    Claim busy = claim(*other_spool, m.token);
    CHECK(busy.kind == Claim::Kind::busy);
    CHECK(!busy.entry);
    CHECK(m.entry->want_takeover());

    // A mismatch is told before busy: it says nothing of the owner.
    CHECK(claim(*other_spool, m.token, "other").kind == Claim::Kind::mismatch);

    // The owner commits what it has up to its last line end and goes.
    REQUIRE(m.entry->append("\r\n", true));
    REQUIRE(m.entry->checkpoint());
    m.entry.reset();

    Claim c = claim(*other_spool, m.token);
    REQUIRE(c.kind == Claim::Kind::partial);
    CHECK(c.entry->offset() == 22);
    CHECK(read_all(*c.entry) == "line 1\r\nline 2\r\npart\r\n");
    CHECK(!c.entry->want_takeover());
    CHECK(!exists(tmp.spool() + "/" + c.entry->id() + ".want"));
}

TEST_CASE("spool: a lock held by another process makes the entry busy")
{
    TempDir tmp;
    auto s = open_spool(tmp.spool());
    Made m = make(*s);
    REQUIRE(m.entry->append("first\r\n", true));
    REQUIRE(m.entry->checkpoint());
    m.entry.reset();

    int ready[2];
    REQUIRE(pipe(ready) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        // The child: claim, say so, wait to be asked, commit, leave.
        // No Catch2 here: the exit status tells the parent.
        close(ready[0]);
        auto cs = Spool::open(tmp.spool(), test_limits());
        if (!cs) {
            _exit(10);
        }
        auto c = (*cs)->claim(m.token, BINDING);
        if (!c || c->kind != Claim::Kind::partial) {
            _exit(11);
        }
        if (write(ready[1], "c", 1) != 1) {
            _exit(12);
        }
        for (int i = 0; i < 400 && !c->entry->want_takeover(); ++i) {
            usleep(25000);
        }
        if (!c->entry->want_takeover()) {
            _exit(13);
        }
        if (!c->entry->append("second\r\n", true) || !c->entry->checkpoint()) {
            _exit(14);
        }
        _exit(0);
    }
    close(ready[1]);
    char byte = 0;
    REQUIRE(read(ready[0], &byte, 1) == 1);
    close(ready[0]);

    Claim busy = claim(*s, m.token);
    CHECK(busy.kind == Claim::Kind::busy);

    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);

    Claim c = claim(*s, m.token);
    REQUIRE(c.kind == Claim::Kind::partial);
    CHECK(read_all(*c.entry) == "first\r\nsecond\r\n");
    CHECK(c.entry->sha256() == sha256_b64("first\r\nsecond\r\n"));
}

TEST_CASE("spool: completed and refused entries become tombstones")
{
    TempDir tmp;
    auto s = open_spool(tmp.spool());
    Made done = make(*s);
    REQUIRE(done.entry->append("x\r\n", true));
    REQUIRE(done.entry->checkpoint());
    CHECK(!done.entry->complete("bad id!"));
    REQUIRE(done.entry->complete("4Ws1Lq0zq7z3"));
    CHECK(!exists(tmp.spool() + "/" + done.entry->id() + ".data"));
    CHECK(!done.entry->append("y\r\n", true));
    done.entry.reset();

    Made refused = make(*s);
    std::string verdict = "554-5.7.1 no\r\n554 5.7.1 not ever";
    REQUIRE(refused.entry->refuse(verdict));
    refused.entry.reset();

    Claim c = claim(*s, done.token);
    CHECK(c.kind == Claim::Kind::done);
    CHECK(c.queue_id == "4Ws1Lq0zq7z3");
    CHECK(!c.entry);
    Claim r = claim(*s, refused.token);
    CHECK(r.kind == Claim::Kind::refused);
    CHECK(r.verdict == verdict);

    // The binding still counts for a tombstone.
    CHECK(claim(*s, done.token, "other").kind == Claim::Kind::mismatch);
    CHECK(s->check(false).empty());
}

TEST_CASE("spool: remove() and abort() take an entry away")
{
    TempDir tmp;
    auto s = open_spool(tmp.spool());
    Made m = make(*s);
    std::string id = m.entry->id();
    REQUIRE(m.entry->remove());
    CHECK(names(tmp.spool()).empty());
    m.entry.reset();
    CHECK(claim(*s, m.token).kind == Claim::Kind::none);

    // abort: refused while owned (and the owner is asked to go).
    Made a = make(*s);
    auto busy = s->abort(a.token);
    REQUIRE(!busy);
    CHECK(busy.error().code == EBUSY);
    CHECK(a.entry->want_takeover());
    a.entry.reset();
    auto gone = s->abort(a.token);
    REQUIRE(gone);
    CHECK(*gone);
    auto again = s->abort(a.token);
    REQUIRE(again);
    CHECK(!*again);
    CHECK(names(tmp.spool()).empty());
    CHECK(s->abort("bad token") == false);

    // A tombstone stays.
    Made d = make(*s);
    REQUIRE(d.entry->complete("ABC123"));
    d.entry.reset();
    auto kept = s->abort(d.token);
    REQUIRE(kept);
    CHECK(!*kept);
    CHECK(claim(*s, d.token).kind == Claim::Kind::done);
}

TEST_CASE("spool: a transfer may be resumed max_resumes times")
{
    TempDir tmp;
    Limits l = test_limits();
    l.max_resumes = 2;
    auto s = open_spool(tmp.spool(), l);
    Made m = make(*s);
    m.entry.reset();
    CHECK(claim(*s, m.token).kind == Claim::Kind::partial);
    CHECK(claim(*s, m.token).kind == Claim::Kind::partial);
    CHECK(claim(*s, m.token).kind == Claim::Kind::none);
    CHECK(s->list().empty());
    CHECK(names(tmp.spool()).empty());
}

// ---------------------------------------------------------------------
// Limits and expiry

TEST_CASE("spool: the spool size limit counts stored and declared octets")
{
    TempDir tmp;
    Limits l = test_limits();
    l.spool_size_limit = 100;
    auto s = open_spool(tmp.spool(), l);
    Made a = make(*s, "a", 60);
    auto full = s->create(BINDING, "b", 50);
    REQUIRE(full);
    CHECK(full->kind == Created::Kind::spool_full);
    CHECK(full->token.empty());
    CHECK(!full->entry);
    Made b = make(*s, "b", 40);

    // At the limit even an entry without SIZE is refused.
    auto zero = s->create(BINDING, "c", 0);
    REQUIRE(zero);
    CHECK(zero->kind == Created::Kind::spool_full);

    // Stored octets count when they exceed the declared size.
    REQUIRE(b.entry->remove());
    REQUIRE(a.entry->append(std::string(79, 'x') + "\n", true));
    CHECK(s->totals().charged == 80);
    auto over = s->create(BINDING, "c", 21);
    REQUIRE(over);
    CHECK(over->kind == Created::Kind::spool_full);
    Made c = make(*s, "c", 20);

    // Tombstones cost nothing.
    REQUIRE(a.entry->complete("Q1"));
    Made d = make(*s, "d", 80);
}

TEST_CASE("spool: a client may have client_limit partial entries")
{
    TempDir tmp;
    Limits l = test_limits();
    l.client_limit = 2;
    auto s = open_spool(tmp.spool(), l);
    Made a1 = make(*s, "a");
    Made a2 = make(*s, "a");
    a2.entry.reset(); // owned or not, it counts
    auto third = s->create(BINDING, "a", 0);
    REQUIRE(third);
    CHECK(third->kind == Created::Kind::client_full);
    Made b1 = make(*s, "b");
    REQUIRE(a1.entry->complete("Q1"));
    Made a3 = make(*s, "a");
}

TEST_CASE("spool: quotas are counted over the partial marks, which come "
          "and go with the partial entries; stale marks are swept")
{
    TempDir tmp;
    Limits l = test_limits();
    l.client_limit = 2;
    auto s = open_spool(tmp.spool(), l);
    std::string marks = tmp.spool() + "/partial";

    // One mark per partial entry, named by its id; none for tombstones.
    Made a1 = make(*s, "a");
    CHECK(names(marks) == std::set<std::string>{a1.entry->id()});
    REQUIRE(a1.entry->complete("Q1"));
    CHECK(names(marks).empty());

    // Many tombstones do not count, two partial entries do.
    for (int i = 0; i < 20; ++i) {
        Made t = make(*s, "a");
        REQUIRE(t.entry->complete("Q2"));
    }
    Made a2 = make(*s, "a");
    Made a3 = make(*s, "a");
    std::string a3_id = a3.entry->id();
    a3.entry.reset(); // not owned, still partial
    auto full = s->create(BINDING, "a", 0);
    REQUIRE(full);
    CHECK(full->kind == Created::Kind::client_full);
    CHECK(names(marks).size() == 2);

    // Without its mark an entry would not be counted: the mark is what
    // the quota sees, so a lost one shows here.
    REQUIRE(::unlink((marks + "/" + a2.entry->id()).c_str()) == 0);
    Made a4 = make(*s, "a");
    REQUIRE(a4.entry->remove());

    // A mark whose entry is gone, and one whose entry became a
    // tombstone, go with the next sweep; a partial entry's stays.
    std::string gone(32, 'e');
    {
        std::ofstream(marks + "/" + gone);
    }
    Made t = make(*s, "b");
    std::string tomb_id = t.entry->id();
    REQUIRE(t.entry->complete("Q3"));
    t.entry.reset();
    {
        std::ofstream(marks + "/" + tomb_id);
    }
    (void)s->expire(std::time(nullptr));
    auto left = names(marks);
    CHECK(left.count(gone) == 0);
    CHECK(left.count(tomb_id) == 0);
    CHECK(left.count(a3_id) == 1);
}

TEST_CASE("spool: the client limit holds when processes create at once")
{
    TempDir tmp;
    Limits l = test_limits();
    l.client_limit = 3;
    REQUIRE(Spool::open(tmp.spool(), l));

    // Twenty processes, each with its own Spool, released together.
    int go[2];
    REQUIRE(pipe(go) == 0);
    std::vector<pid_t> kids;
    for (int i = 0; i < 20; ++i) {
        pid_t p = fork();
        REQUIRE(p >= 0);
        if (p == 0) {
            close(go[1]);
            auto s = Spool::open(tmp.spool(), l);
            char c;
            if (!s || read(go[0], &c, 1) != 0) {
                _exit(3);
            }
            auto c2 = (*s)->create(BINDING, "a", 0);
            // Keep a made entry owned until the parent has counted.
            int rc = !c2 ? 3 : c2->kind == Created::Kind::ok ? 0 : 1;
            if (rc == 0) {
                usleep(300 * 1000);
            }
            _exit(rc);
        }
        kids.push_back(p);
    }
    close(go[0]);
    usleep(200 * 1000);
    close(go[1]); // EOF: everyone goes
    int made = 0, refused = 0;
    for (pid_t p : kids) {
        int st = 0;
        REQUIRE(waitpid(p, &st, 0) == p);
        REQUIRE(WIFEXITED(st));
        made += WEXITSTATUS(st) == 0;
        refused += WEXITSTATUS(st) == 1;
    }
    CHECK(made == 3);
    CHECK(refused == 17);
}

TEST_CASE("spool: a partial entry without its mark gets one from the sweep "
          "or a claim, and counts again")
{
    TempDir tmp;
    Limits l = test_limits();
    l.client_limit = 1;
    auto s = open_spool(tmp.spool(), l);
    std::string marks = tmp.spool() + "/partial";

    // As made before partial/ existed.
    Made a = make(*s, "a");
    std::string id = a.entry->id();
    std::string token = a.token;
    a.entry.reset();
    REQUIRE(::unlink((marks + "/" + id).c_str()) == 0);
    Made b = make(*s, "a"); // not counted: a second one fits
    REQUIRE(b.entry->remove());

    (void)s->expire(std::time(nullptr));
    CHECK(names(marks).count(id) == 1);
    auto full = s->create(BINDING, "a", 0);
    REQUIRE(full);
    CHECK(full->kind == Created::Kind::client_full);

    REQUIRE(::unlink((marks + "/" + id).c_str()) == 0);
    Claim c = claim(*s, token);
    REQUIRE(c.kind == Claim::Kind::partial);
    CHECK(names(marks).count(id) == 1);
}

TEST_CASE("spool: expiry by TTL, lifetime and for tombstones")
{
    TempDir tmp;
    HookGuard guard;
    Limits l = test_limits();
    l.ttl = 50;
    l.max_lifetime = 100;
    auto s = open_spool(tmp.spool(), l);

    // Idle past the TTL.
    testing::set_now(1000);
    Made idle = make(*s);
    idle.entry.reset();
    CHECK(s->expire(1050) == 0);
    CHECK(s->expire(1051) == 1);
    CHECK(claim(*s, idle.token).kind == Claim::Kind::none);

    // Busy, but past its lifetime.
    Made old = make(*s);
    testing::set_now(1060);
    REQUIRE(old.entry->append("x\n", true));
    REQUIRE(old.entry->checkpoint());
    old.entry.reset();
    CHECK(s->expire(1100) == 0);
    CHECK(s->expire(1101) == 1);

    // A tombstone lives for the TTL after completion.
    testing::set_now(2000);
    Made done = make(*s);
    REQUIRE(done.entry->complete("Q1"));
    done.entry.reset();
    CHECK(s->expire(2050) == 0);
    CHECK(claim(*s, done.token).kind == Claim::Kind::done);
    CHECK(s->expire(2051) == 1);

    // An owned entry is never expired.
    testing::set_now(3000);
    Made owned = make(*s);
    CHECK(s->expire(9999) == 0);
    owned.entry.reset();
    CHECK(s->expire(9999) == 1);
    CHECK(names(tmp.spool()).empty());

    // create() and claim() expire by themselves, at most once a minute.
    testing::set_now(4000);
    Made late = make(*s);
    late.entry.reset();
    testing::set_now(4060); // due, but the last sweep was 60 s ago
    Made next = make(*s);
    CHECK(s->list().size() == 1);
}

TEST_CASE("spool: list and totals")
{
    TempDir tmp;
    auto s = open_spool(tmp.spool());
    CHECK(s->list().empty());
    Made a = make(*s, "192.0.2.1", 100);
    REQUIRE(a.entry->append("0123456789\n", true));
    REQUIRE(a.entry->checkpoint());
    Made b = make(*s, "sasl:alice", 0);
    REQUIRE(b.entry->append("abcd\n", true));
    REQUIRE(b.entry->checkpoint());
    b.entry.reset();
    Made d = make(*s, "192.0.2.2");
    REQUIRE(d.entry->complete("3Xy9Z"));
    Made r = make(*s, "192.0.2.3");
    REQUIRE(r.entry->refuse("550 5.7.1 no"));

    Totals t = s->totals();
    CHECK(t.entries == 2);
    CHECK(t.tombstones == 2);
    CHECK(t.octets == 16);
    CHECK(t.charged == 105);

    auto l = s->list();
    REQUIRE(l.size() == 4);
    int seen = 0;
    for (const EntryInfo& e : l) {
        if (e.id == a.entry->id()) {
            ++seen;
            CHECK(e.state == State::partial);
            CHECK(e.offset == 11);
            CHECK(e.declared == 100);
            CHECK(e.client == "192.0.2.1");
            CHECK(e.locked);
            CHECK(e.sha256 == sha256_b64("0123456789\n"));
        } else if (e.id == id_of(b.token)) {
            ++seen;
            CHECK(e.client == "sasl:alice");
            CHECK(!e.locked);
        } else if (e.id == d.entry->id()) {
            ++seen;
            CHECK(e.state == State::done);
            CHECK(e.queue_id == "3Xy9Z");
        } else if (e.id == r.entry->id()) {
            ++seen;
            CHECK(e.state == State::refused);
            CHECK(e.verdict == "550 5.7.1 no");
        }
    }
    CHECK(seen == 4);
}

TEST_CASE("spool: purge removes entries nobody owns")
{
    TempDir tmp;
    auto s = open_spool(tmp.spool());
    Made kept = make(*s);
    Made one = make(*s);
    one.entry.reset();
    Made two = make(*s);
    REQUIRE(two.entry->complete("Q2"));
    two.entry.reset();
    Made three = make(*s);
    std::string three_id = three.entry->id();
    three.entry.reset();

    auto bad = s->purge("../etc");
    REQUIRE(!bad);
    CHECK(bad.error().code == EINVAL);
    CHECK(s->purge(three_id) == 1);
    CHECK(s->purge(three_id) == 0);
    CHECK(s->purge(kept.entry->id()) == 0);
    CHECK(s->purge("ALL") == 2);
    REQUIRE(s->list().size() == 1);
    CHECK(s->list()[0].id == kept.entry->id());
}

// ---------------------------------------------------------------------
// Damage

TEST_CASE("spool: damaged data is found by check() and claimed as none")
{
    TempDir tmp;
    auto s = open_spool(tmp.spool());
    auto made = [&](const std::string& text) {
        Made m = make(*s);
        REQUIRE(m.entry->append(text, true));
        REQUIRE(m.entry->checkpoint());
        m.entry.reset();
        return m;
    };
    std::string dir = tmp.spool() + "/";

    SECTION("a flipped octet")
    {
        Made m = made("hello world\r\n");
        std::string data = slurp(dir + id_of(m.token) + ".data");
        data[3] ^= 1;
        spit(dir + id_of(m.token) + ".data", data);
        auto problems = s->check(false);
        REQUIRE(problems.size() == 1);
        CHECK(problems[0].find("sha256") != std::string::npos);
        CHECK(claim(*s, m.token).kind == Claim::Kind::none);
    }
    SECTION("a data file shorter than the offset")
    {
        Made m = made("hello world\r\n");
        REQUIRE(truncate((dir + id_of(m.token) + ".data").c_str(), 4) == 0);
        auto problems = s->check(false);
        REQUIRE(problems.size() == 1);
        CHECK(problems[0].find("shorter") != std::string::npos);
        CHECK(claim(*s, m.token).kind == Claim::Kind::none);
    }
    SECTION("no data file")
    {
        Made m = made("hello world\r\n");
        REQUIRE(unlink((dir + id_of(m.token) + ".data").c_str()) == 0);
        CHECK(s->check(false).size() == 1);
        CHECK(claim(*s, m.token).kind == Claim::Kind::none);
    }
    SECTION("a symlink in place of the data file")
    {
        Made m = made("hello world\r\n");
        std::string data = dir + id_of(m.token) + ".data";
        REQUIRE(rename(data.c_str(), (tmp.path + "/outside").c_str()) == 0);
        REQUIRE(symlink((tmp.path + "/outside").c_str(), data.c_str()) == 0);
        CHECK(s->check(false).size() == 1);
        CHECK(claim(*s, m.token).kind == Claim::Kind::none);
        CHECK(slurp(tmp.path + "/outside") == "hello world\r\n");
    }
    SECTION("check -r removes it")
    {
        Made m = made("hello world\r\n");
        spit(dir + id_of(m.token) + ".data", "HELLO world\r\n");
        auto fixed = s->check(true);
        REQUIRE(fixed.size() == 1);
        CHECK(fixed[0].find("(removed)") != std::string::npos);
        CHECK(s->check(false).empty());
    }
    CHECK(s->check(false).empty());
    CHECK(names(tmp.spool()).empty());
}

TEST_CASE("spool: damaged and hostile meta files are none, never followed")
{
    TempDir tmp;
    auto s = open_spool(tmp.spool());
    Made m = make(*s);
    REQUIRE(m.entry->append("abc\n", true));
    REQUIRE(m.entry->checkpoint());
    std::string id = m.entry->id();
    m.entry.reset();
    std::string meta = tmp.spool() + "/" + id + ".meta";
    std::string good = slurp(meta);

    SECTION("truncated")
    {
        spit(meta, good.substr(0, good.size() / 2));
    }
    SECTION("a field missing")
    {
        std::string bad = good;
        bad.erase(bad.find("offset="), bad.find('\n', bad.find("offset="))
                                           - bad.find("offset=") + 1);
        spit(meta, bad);
    }
    SECTION("an offset that is not a number")
    {
        std::string bad = good;
        bad.replace(bad.find("offset=4"), 8, "offset=4x");
        spit(meta, bad);
    }
    SECTION("an offset past the data, with a forged digest")
    {
        std::string bad = good;
        bad.replace(bad.find("offset=4"), 8, "offset=400");
        spit(meta, bad);
    }
    SECTION("too long")
    {
        spit(meta, good + "client=" + std::string(9000, 'a') + "\n");
    }
    SECTION("another entry's meta")
    {
        Made other = make(*s);
        std::string other_meta =
            slurp(tmp.spool() + "/" + other.entry->id() + ".meta");
        REQUIRE(other.entry->remove());
        spit(meta, other_meta);
    }
    SECTION("a symlink")
    {
        spit(tmp.path + "/elsewhere", good);
        REQUIRE(unlink(meta.c_str()) == 0);
        REQUIRE(symlink((tmp.path + "/elsewhere").c_str(), meta.c_str()) == 0);
    }
    SECTION("a FIFO")
    {
        REQUIRE(unlink(meta.c_str()) == 0);
        REQUIRE(mkfifo(meta.c_str(), 0600) == 0);
    }
    SECTION("binary junk")
    {
        spit(meta, std::string("version=1\n\0\xff\n", 13));
    }
    auto problems = s->check(false);
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].rfind(id + ": ", 0) == 0);
    CHECK(claim(*s, m.token).kind == Claim::Kind::none);
    CHECK(s->list().empty());
    CHECK(s->totals().entries == 0);
    CHECK(s->check(true).size() <= 1); // the claim may have removed it
    CHECK(s->check(false).empty());
    CHECK(names(tmp.spool()).empty());

    // What a symlink pointed to is untouched.
    if (exists(tmp.path + "/elsewhere")) {
        CHECK(slurp(tmp.path + "/elsewhere") == good);
    }
}

TEST_CASE("spool: files that are not ours are ignored")
{
    TempDir tmp;
    auto s = open_spool(tmp.spool());
    Made m = make(*s);
    m.entry.reset();
    spit(tmp.spool() + "/README", "hello");
    spit(tmp.spool() + "/0123.meta", "x");
    spit(tmp.spool() + "/" + std::string(32, 'A') + ".meta", "x");
    spit(tmp.spool() + "/" + id_of(m.token) + ".other", "x");
    REQUIRE(
        mkdir((tmp.spool() + "/" + std::string(32, 'b') + ".x").c_str(), 0700)
        == 0);
    CHECK(s->check(false).empty());
    CHECK(s->list().size() == 1);
    CHECK(s->expire(std::time(nullptr) + 100000) == 1);
    CHECK(s->purge("ALL") == 0);
    CHECK(names(tmp.spool()).size() == 5);
}

TEST_CASE("spool: stray files of a dead writer are swept, live ones kept")
{
    TempDir tmp;
    auto s = open_spool(tmp.spool());
    std::string dir = tmp.spool() + "/";
    Made m = make(*s);
    std::string stray(32, 'c');
    spit(dir + stray + ".data", "x");
    spit(dir + stray + ".lock", "");
    spit(dir + m.entry->id() + ".meta.tmp", "half");

    // The held entry's temporary file may be a write in progress.
    auto problems = s->check(false);
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].rfind(stray + ": ", 0) == 0);
    s->expire(std::time(nullptr));
    CHECK(!exists(dir + stray + ".data"));
    CHECK(!exists(dir + stray + ".lock"));
    CHECK(exists(dir + m.entry->id() + ".meta.tmp"));
    m.entry.reset();
    CHECK(s->check(false).size() == 1);
    s->expire(std::time(nullptr));
    CHECK(s->check(false).empty());
    CHECK(!exists(dir + id_of(m.token) + ".meta.tmp"));
}

// ---------------------------------------------------------------------
// Crash safety

namespace {

// One whole transfer; every step stops at the first failure, as a
// process that died there would. `allowed` gathers the offsets that a
// later claim may report: 0, and each checkpoint's from the moment it
// starts (its rename may be what the crash came after).
struct Run {
    bool created = false;
    std::string token;
    std::vector<int64_t> allowed;
    bool completing = false;
};

const std::string PART_A = "Subject: x\r\n";
const std::string PART_B = "\r\n";
const std::string PART_C = "line one";
const std::string PART_D = "\r\nline two\r\n";
const std::string CONTENT = PART_A + PART_B + PART_C + PART_D;
const std::string QUEUE_ID = "4XyZ12AB";

Run transfer(const std::string& dir)
{
    Run run;
    auto s = Spool::open(dir, test_limits());
    if (!s) {
        return run;
    }
    auto c = (*s)->create(BINDING, CLIENT, 0);
    if (!c || c->kind != Created::Kind::ok) {
        return run;
    }
    run.created = true;
    run.token = c->token;
    run.allowed.push_back(0);
    Entry& e = *c->entry;
    if (!e.append(PART_A, true) || !e.append(PART_B, true)
        || !e.append(PART_C, false)) {
        return run;
    }
    run.allowed.push_back(14);
    if (!e.checkpoint() || !e.append(PART_D, true)) {
        return run;
    }
    run.allowed.push_back(34);
    if (!e.checkpoint()) {
        return run;
    }
    run.completing = true;
    (void)e.complete(QUEUE_ID);
    return run;
}

} // namespace

TEST_CASE("spool: a crash before any disk operation leaves a valid spool")
{
    HookGuard guard;
    REQUIRE(CONTENT.size() == 34);
    int n = 0;
    for (;; ++n) {
        INFO("crash before disk operation " << n);
        REQUIRE(n < 200);
        TempDir tmp;
        REQUIRE(Spool::open(tmp.spool(), test_limits()));
        testing::crash_after(n);
        Run run = transfer(tmp.spool());
        bool crashed = testing::crashed();
        testing::crash_after(-1);

        // A fresh process looks at what is on disk, after the spool's
        // sweep interval (the crashed one may have swept a moment ago,
        // which holds back the next sweep in any process).
        ::unlink((tmp.spool() + "/sweep.stamp").c_str());
        auto s = open_spool(tmp.spool());
        if (!run.created) {
            // No token was handed out: at most an entry at offset 0.
            CHECK(crashed);
            (void)claim(*s, "AAAAAAAAAAAAAAAAAAAAAAAA");
            auto l = s->list();
            CHECK(l.size() <= 1);
            for (const EntryInfo& e : l) {
                CHECK(e.state == State::partial);
                CHECK(e.offset == 0);
            }
        } else {
            Claim c = claim(*s, run.token);
            if (c.kind == Claim::Kind::partial) {
                int64_t off = c.entry->offset();
                INFO("claimed offset " << off);
                CHECK(std::find(run.allowed.begin(), run.allowed.end(), off)
                      != run.allowed.end());
                CHECK(c.entry->sha256() == sha256_b64(CONTENT.substr(0, off)));
                CHECK(read_all(*c.entry) == CONTENT.substr(0, off));
                CHECK(file_size(tmp.spool() + "/" + c.entry->id() + ".data")
                      == off);
            } else {
                CHECK(c.kind == Claim::Kind::done);
                CHECK(c.queue_id == QUEUE_ID);
                CHECK(run.completing);
            }
        }

        // Nothing left over that check() would complain about.
        auto problems = s->check(false);
        for (const std::string& p : problems) {
            INFO(p);
            CHECK(false);
        }
        for (const std::string& name : names(tmp.spool())) {
            CHECK(name.find(".tmp") == std::string::npos);
        }
        if (!crashed) {
            break;
        }
    }

    // The transfer has that many disk operations; a hook that never
    // fired would end the loop at once.
    CHECK(n > 15);
}
