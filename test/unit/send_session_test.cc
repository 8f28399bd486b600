// SPDX-License-Identifier: MIT
// Unit tests for client/send_session: resume-send against a scripted
// XRESUME server (the real one is tested in test/integration). The fake
// server keeps the received message across connections, commits it at
// line boundaries as the design says, and can cut a connection after a
// number of message octets, lose the final reply, lie about the digest,
// refuse recipients, or not offer XRESUME at all.
#include "client/send_session.h"
#include "common/util/text.h"
#include "test/unit/catch.h"

#include <arpa/inet.h>
#include <atomic>
#include <filesystem>
#include <map>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace rs;
using namespace rs::send;

namespace {

struct FakeServer {
    // What it does.
    bool xresume = true;
    bool pipelining = true;
    bool chunking = false;
    /// Per connection (0-based): close after this many message octets.
    std::map<int, uint64_t> cut_after;
    /// Connections that complete the message but close before the 250.
    std::map<int, bool> lose_final_reply;
    /// Connections greeted with 421 instead of 220.
    std::map<int, bool> busy;
    bool bad_digest = false;
    std::string rcpt_reply = "250 2.1.5 Ok";
    std::string xresume_reply_override;

    // What it saw.
    std::vector<std::string> commands;
    std::vector<std::string> delivered;
    int connections = 0;
    std::vector<uint64_t> data_in;

    Fd listener;
    uint16_t port = 0;
    std::thread thread;
    std::atomic<bool> stop{false};

    // The transfer: token and the committed octets.
    std::string token;
    std::string stored;
    bool done = false;
    int token_serial = 0;

    FakeServer()
    {
        listener.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        REQUIRE(listener);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(
            ::bind(listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof a)
            == 0);
        REQUIRE(::listen(listener.get(), 8) == 0);
        socklen_t len = sizeof a;
        REQUIRE(
            ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&a), &len)
            == 0);
        port = ntohs(a.sin_port);
    }

    void start()
    {
        thread = std::thread([this] { serve(); });
    }

    /// Stop serving; what it saw may be read after this.
    void finish()
    {
        stop = true;
        ::shutdown(listener.get(), SHUT_RDWR);
        if (thread.joinable()) {
            thread.join();
        }
    }

    ~FakeServer() { finish(); }

    void serve()
    {
        while (!stop) {
            int c = ::accept(listener.get(), nullptr, nullptr);
            if (c < 0) {
                return;
            }
            Fd conn(c);
            timeval tv{10, 0};
            ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            session(c, connections++);
        }
    }

    std::string buf;

    bool read_line(int c, std::string& line)
    {
        for (;;) {
            auto lf = buf.find('\n');
            if (lf != std::string::npos) {
                line = buf.substr(0, lf + 1);
                buf.erase(0, lf + 1);
                return true;
            }
            char tmp[4096];
            ssize_t n = ::read(c, tmp, sizeof tmp);
            if (n <= 0) {
                return false;
            }
            buf.append(tmp, static_cast<size_t>(n));
        }
    }

    bool read_n(int c, size_t n, std::string& out)
    {
        while (buf.size() < n) {
            char tmp[4096];
            ssize_t got = ::read(c, tmp, sizeof tmp);
            if (got <= 0) {
                return false;
            }
            buf.append(tmp, static_cast<size_t>(got));
        }
        out = buf.substr(0, n);
        buf.erase(0, n);
        return true;
    }

    static void put(int c, const std::string& s)
    {
        (void)::send(c, s.data(), s.size(), MSG_NOSIGNAL);
    }

    static std::string digest(const std::string& s)
    {
        Sha256 h;
        h.update(s);
        return base64(h.final());
    }

    std::string fresh_token()
    {
        ++token_serial;
        token = "tok_" + std::to_string(token_serial)
                + std::string(20, 'A' + token_serial % 26);
        stored.clear();
        done = false;
        return token;
    }

    // Commit what arrived up to its last line end (the cut drops the
    // rest, as a server that checkpoints at line boundaries does).
    void commit(std::string& msg)
    {
        auto lf = msg.rfind('\n');
        msg.resize(lf == std::string::npos ? 0 : lf + 1);
    }

    void session(int c, int index)
    {
        buf.clear();
        data_in.push_back(0);
        if (busy.count(index)) {
            put(c, "421 4.3.2 busy\r\n");
            return;
        }
        put(c, "220 fake ESMTP\r\n");
        bool resuming = false;
        uint64_t cut = cut_after.count(index) ? cut_after[index] : UINT64_MAX;
        std::string line;
        while (read_line(c, line)) {
            std::string cmd = line.substr(0, line.size() - 2);
            commands.push_back(cmd);
            std::string up = text::upper(cmd);
            if (up.rfind("EHLO", 0) == 0) {
                std::string r = "250-fake\r\n250-SIZE 10000000\r\n";
                r += pipelining ? "250-PIPELINING\r\n" : "";
                r += chunking ? "250-CHUNKING\r\n" : "";
                r += xresume ? "250-XRESUME TTL=300\r\n" : "";
                put(c, r + "250 8BITMIME\r\n");
            } else if (up.rfind("MAIL", 0) == 0) {
                put(c, "250 2.1.0 Ok\r\n");
            } else if (up.rfind("RCPT", 0) == 0) {
                put(c, rcpt_reply + "\r\n");
            } else if (up.rfind("XRESUME ", 0) == 0) {
                std::string arg = cmd.substr(8);
                if (!xresume_reply_override.empty()) {
                    put(c, xresume_reply_override + "\r\n");
                } else if (arg == "NEW" || arg != token) {
                    put(c, "250 2.0.0 TOKEN=" + fresh_token()
                               + " OFFSET=0 TTL=300\r\n");
                } else if (done) {
                    put(c, "250 2.0.0 DONE QUEUEID=QID"
                               + std::to_string(delivered.size()) + "\r\n");
                } else {
                    resuming = true;
                    std::string d = digest(stored);
                    if (bad_digest) {
                        d = digest(stored + "x");
                    }
                    put(c, "250 2.0.0 TOKEN=" + token
                               + " OFFSET=" + std::to_string(stored.size())
                               + (stored.empty() ? "" : " SHA256=" + d)
                               + " TTL=300\r\n");
                }
            } else if (up == "DATA") {
                put(c, "354 go\r\n");
                if (!resuming) {
                    stored.clear();
                }
                std::string l;
                bool ended = false;
                while (read_line(c, l)) {
                    if (l == ".\r\n") {
                        ended = true;
                        break;
                    }
                    if (l[0] == '.') {
                        l.erase(0, 1);
                    }
                    stored += l;
                    data_in.back() += l.size();
                    if (data_in.back() >= cut) {
                        return;
                    }
                }
                if (!ended) {
                    return;
                }
                if (!complete(c, index)) {
                    return;
                }
            } else if (up.rfind("BDAT ", 0) == 0) {
                auto words = text::split(cmd, " ");
                size_t n = std::stoul(words[1]);
                bool last = words.size() > 2;
                if (!resuming) {
                    stored.clear();
                    resuming = true;
                }
                std::string chunk;
                size_t left = n;
                while (left > 0) {
                    size_t piece = std::min<size_t>(left, 512);
                    if (!read_n(c, piece, chunk)) {
                        commit(stored);
                        return;
                    }
                    stored += chunk;
                    left -= piece;
                    data_in.back() += piece;
                    if (data_in.back() >= cut) {
                        commit(stored);
                        return;
                    }
                }
                if (!last) {
                    put(c, "250 2.0.0 " + std::to_string(n) + " octets\r\n");
                } else if (!complete(c, index)) {
                    return;
                }
            } else if (up == "QUIT") {
                put(c, "221 2.0.0 Bye\r\n");
                return;
            } else {
                put(c, "502 5.5.2 what\r\n");
            }
        }
        commit(stored);
    }

    // The whole message is in: queue it, then reply (or not).
    bool complete(int c, int index)
    {
        delivered.push_back(stored);
        done = true;
        if (lose_final_reply.count(index)) {
            return false;
        }
        put(c, "250 2.0.0 Ok: queued as QID" + std::to_string(delivered.size())
                   + "\r\n");
        return true;
    }
};

// A message of about `lines` lines, some starting with a dot, LF ends.
std::string make_message(int lines)
{
    std::string m = "From: a@x\nTo: b@y\nSubject: resume test\n\n";
    for (int i = 0; i < lines; ++i) {
        m += (i % 7 == 0 ? "." : "") + std::string("line ") + std::to_string(i)
             + " " + std::string(i % 50, 'x') + "\n";
    }
    return m;
}

std::string canonical(const std::string& m)
{
    Canonicalizer c;
    std::string out;
    c.feed(m, out);
    c.finish(out);
    return out;
}

Spool spool_of(const std::string& data)
{
    char path[] = "/tmp/send_session_test.XXXXXX";
    int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    ::unlink(path);
    REQUIRE(::write(fd, data.data(), data.size())
            == static_cast<ssize_t>(data.size()));
    REQUIRE(::lseek(fd, 0, SEEK_SET) == 0);
    auto s = Spool::create(fd, "/tmp");
    ::close(fd);
    REQUIRE(s);
    return std::move(*s);
}

Options options(uint16_t port)
{
    Options o;
    o.server = Server{"127.0.0.1", port};
    o.helo = "client.example";
    o.tls = TlsLevel::None;
    o.sender = "a@x";
    o.rcpts = {"b@y"};
    o.timeout = 5;
    o.give_up = 20;
    o.backoff_first_ms = 10;
    o.backoff_max_ms = 50;
    return o;
}

size_t count_prefix(const std::vector<std::string>& cmds, const char* p)
{
    size_t n = 0;
    for (const auto& c : cmds) {
        n += c.rfind(p, 0) == 0;
    }
    return n;
}

} // namespace

TEST_CASE("send_session: one connection, XRESUME NEW pipelined, DATA")
{
    FakeServer srv;
    srv.start();
    auto msg = make_message(300);
    auto spool = spool_of(msg);
    Sender s(options(srv.port), spool);
    CHECK(s.run() == Outcome::Delivered);
    srv.finish();
    REQUIRE(srv.delivered.size() == 1);
    CHECK(srv.delivered[0] == canonical(msg));
    CHECK(s.stats().connections == 1);
    CHECK(s.stats().resumes == 0);
    CHECK(s.stats().queue_id == "QID1");
    CHECK(s.stats().xresume_offered);
    CHECK(s.stats().data_octets == spool.size());
    // MAIL, RCPT and XRESUME NEW went out as one group.
    REQUIRE(srv.commands.size() >= 5);
    CHECK(srv.commands[1]
          == "MAIL FROM:<a@x> SIZE=" + std::to_string(spool.size()));
    CHECK(srv.commands[2] == "RCPT TO:<b@y>");
    CHECK(srv.commands[3] == "XRESUME NEW");
    CHECK(srv.commands[4] == "DATA");
}

TEST_CASE("send_session: two cuts during DATA, resumed twice from offsets")
{
    FakeServer srv;
    srv.cut_after = {{0, 3000}, {1, 4000}};
    srv.start();
    auto msg = make_message(600);
    auto spool = spool_of(msg);
    REQUIRE(spool.size() > 12000);
    Sender s(options(srv.port), spool);
    CHECK(s.run() == Outcome::Delivered);
    srv.finish();
    REQUIRE(srv.delivered.size() == 1);
    CHECK(srv.delivered[0] == canonical(msg));
    const auto& st = s.stats();
    CHECK(st.connections == 3);
    CHECK(st.resumes == 2);
    REQUIRE(st.resume_offsets.size() == 2);
    CHECK(st.resume_offsets[0] >= 3000);
    CHECK(st.resume_offsets[1] >= st.resume_offsets[0] + 4000);
    // Little was sent twice: at most what was in flight at each cut.
    CHECK(st.data_octets < spool.size() + 2 * 64 * 1024);
    CHECK(srv.data_in[0] + srv.data_in[1] + srv.data_in[2]
          < spool.size() + 2 * 100);
    CHECK(count_prefix(srv.commands, "XRESUME tok_") == 2);
    CHECK(count_prefix(srv.commands, "XRESUME NEW") == 1);
}

TEST_CASE("send_session: cuts during BDAT resume with BDAT")
{
    FakeServer srv;
    srv.chunking = true;
    srv.cut_after = {{0, 5000}, {1, 100}};
    srv.start();
    auto msg = make_message(500);
    auto spool = spool_of(msg);
    auto o = options(srv.port);
    o.chunk = 4096;
    Sender s(o, spool);
    CHECK(s.run() == Outcome::Delivered);
    srv.finish();
    REQUIRE(srv.delivered.size() == 1);
    CHECK(srv.delivered[0] == canonical(msg));
    CHECK(s.stats().connections == 3);
    CHECK(s.stats().resumes == 2);
    CHECK(count_prefix(srv.commands, "DATA") == 0);
    CHECK(count_prefix(srv.commands, "BDAT") > 3);
}

TEST_CASE("send_session: a lost final reply ends with DONE, not a copy")
{
    FakeServer srv;
    srv.lose_final_reply = {{0, true}};
    srv.start();
    auto msg = make_message(100);
    auto spool = spool_of(msg);
    Sender s(options(srv.port), spool);
    CHECK(s.run() == Outcome::Delivered);
    srv.finish();
    CHECK(srv.delivered.size() == 1);
    CHECK(s.stats().connections == 2);
    CHECK(s.stats().resumes == 1);
    CHECK(s.stats().queue_id == "QID1");
    // The second connection sent no data at all.
    CHECK(count_prefix(srv.commands, "DATA") == 1);
}

TEST_CASE("send_session: a digest mismatch starts over with XRESUME NEW")
{
    FakeServer srv;
    srv.cut_after = {{0, 2000}};
    srv.bad_digest = true;
    srv.start();
    auto msg = make_message(300);
    auto spool = spool_of(msg);
    Sender s(options(srv.port), spool);
    CHECK(s.run() == Outcome::Delivered);
    srv.finish();
    REQUIRE(srv.delivered.size() == 1);
    CHECK(srv.delivered[0] == canonical(msg));
    CHECK(s.stats().resumes == 0);
    CHECK(count_prefix(srv.commands, "XRESUME NEW") == 2);
    CHECK(s.stats().data_octets >= spool.size() + 2000);
}

TEST_CASE("send_session: without XRESUME a break means a retry from 0")
{
    FakeServer srv;
    srv.xresume = false;
    srv.cut_after = {{0, 2500}};
    srv.start();
    auto msg = make_message(300);
    auto spool = spool_of(msg);
    Sender s(options(srv.port), spool);
    CHECK(s.run() == Outcome::Delivered);
    srv.finish();
    REQUIRE(srv.delivered.size() == 1);
    CHECK(srv.delivered[0] == canonical(msg));
    CHECK(s.stats().connections == 2);
    CHECK(s.stats().resumes == 0);
    CHECK_FALSE(s.stats().xresume_offered);
    CHECK(count_prefix(srv.commands, "XRESUME") == 0);
    CHECK(srv.data_in[1] == spool.size());
}

TEST_CASE("send_session: 452 to XRESUME sends plainly in the same session")
{
    FakeServer srv;
    srv.xresume_reply_override = "452 4.3.1 Resume not available now";
    srv.start();
    auto msg = make_message(50);
    auto spool = spool_of(msg);
    Sender s(options(srv.port), spool);
    CHECK(s.run() == Outcome::Delivered);
    srv.finish();
    REQUIRE(srv.delivered.size() == 1);
    CHECK(srv.delivered[0] == canonical(msg));
    CHECK(s.stats().connections == 1);
}

TEST_CASE("send_session: a stored verdict to XRESUME is permanent")
{
    FakeServer srv;
    srv.xresume_reply_override = "554 5.7.1 rejected earlier";
    srv.start();
    auto spool = spool_of(make_message(10));
    Sender s(options(srv.port), spool);
    CHECK(s.run() == Outcome::Refused);
    srv.finish();
    CHECK(srv.delivered.empty());
    CHECK(s.stats().reason.rfind("5.7.1 ", 0) == 0);
    CHECK(s.stats().reason.find("554 5.7.1 rejected earlier")
          != std::string::npos);
}

TEST_CASE("send_session: a permanent recipient refusal sends nothing")
{
    FakeServer srv;
    srv.rcpt_reply = "550 5.1.1 <b@y>: Recipient address rejected";
    srv.start();
    auto spool = spool_of(make_message(10));
    auto o = options(srv.port);
    o.rcpts = {"b@y", "c@y"};
    Sender s(o, spool);
    CHECK(s.run() == Outcome::RecipientUnknown);
    srv.finish();
    CHECK(count_prefix(srv.commands, "DATA") == 0);
    CHECK(s.stats().connections == 1);
    CHECK(s.stats().reason.rfind("5.1.1 ", 0) == 0);
}

TEST_CASE("send_session: a temporary refusal is retried until --give-up")
{
    FakeServer srv;
    srv.rcpt_reply = "450 4.2.0 <b@y>: greylisted";
    srv.start();
    auto spool = spool_of(make_message(10));
    auto o = options(srv.port);
    o.give_up = 1;
    o.backoff_first_ms = 100;
    o.backoff_max_ms = 200;
    Sender s(o, spool);
    auto t0 = Clock::now();
    CHECK(s.run() == Outcome::TempFail);
    CHECK(Clock::now() - t0 < std::chrono::seconds(5));
    srv.finish();
    CHECK(s.stats().connections >= 3);
    CHECK(count_prefix(srv.commands, "DATA") == 0);
    CHECK(s.stats().reason.rfind("4.2.0 ", 0) == 0);
}

TEST_CASE("send_session: the state file lets a new run resume")
{
    namespace fs = std::filesystem;
    char tmpl[] = "/tmp/send_session_state.XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    std::string dir = tmpl;

    FakeServer srv;
    srv.cut_after = {{0, 4000}};
    srv.busy = {{1, true}, {2, true}, {3, true}, {4, true}, {5, true},
                {6, true}, {7, true}, {8, true}, {9, true}, {10, true}};
    srv.start();
    auto msg = make_message(400);
    auto spool = spool_of(msg);
    auto o = options(srv.port);
    o.state_dir = dir;
    o.give_up = 1;
    o.backoff_first_ms = 200;
    o.backoff_max_ms = 400;

    // First run: cut, then the server is busy until we give up.
    Sender first(o, spool);
    CHECK(first.run() == Outcome::TempFail);
    size_t files = 0;
    for (auto& e : fs::directory_iterator(dir)) {
        (void)e;
        ++files;
    }
    CHECK(files == 1);

    // Second run, as pipe(8) would start it: resumes with the token.
    srv.busy.clear();
    o.give_up = 20;
    Sender second(o, spool);
    CHECK(second.run() == Outcome::Delivered);
    srv.finish();
    REQUIRE(srv.delivered.size() == 1);
    CHECK(srv.delivered[0] == canonical(msg));
    CHECK(second.stats().resumes == 1);
    CHECK(second.stats().connections == 1);
    CHECK(count_prefix(srv.commands, "XRESUME NEW") == 1);
    CHECK(fs::is_empty(dir));
    fs::remove_all(dir);
}

TEST_CASE("send_session: tokens never appear in the dialogue log")
{
    FakeServer srv;
    srv.cut_after = {{0, 1000}};
    srv.start();
    auto spool = spool_of(make_message(100));
    Sender s(options(srv.port), spool);
    std::vector<std::string> log;
    s.set_log([&log](const std::string& l) { log.push_back(l); });
    CHECK(s.run() == Outcome::Delivered);
    srv.finish();
    bool saw_tag = false;
    for (const auto& l : log) {
        INFO(l);
        CHECK(l.find("tok_") == std::string::npos);
        saw_tag = saw_tag || l.find("TOKEN=<") != std::string::npos;
    }
    CHECK(saw_tag);
}

TEST_CASE("send_session: token redaction, queue ids and DSN text")
{
    auto r = redact_tokens("XRESUME abcdefghijklmnopqrstuv");
    CHECK(r.find("abcdefghijklmnopqrstuv") == std::string::npos);
    CHECK(r.rfind("XRESUME <", 0) == 0);
    CHECK(redact_tokens("XRESUME NEW") == "XRESUME NEW");
    auto a = redact_tokens("XRESUME ABORT abcdefghijklmnopqrstuv");
    CHECK(a.find("abcdefghij") == std::string::npos);
    CHECK(a.rfind("XRESUME ABORT <", 0) == 0);
    CHECK(redact_tokens("XRESUME TTL=300 MAXSIZE=5")
          == "XRESUME TTL=300 MAXSIZE=5");
    auto t = redact_tokens("2.0.0 TOKEN=abcdefghijklmnopqrstuv OFFSET=0");
    CHECK(t.find("abcdefghij") == std::string::npos);
    CHECK(t.find("OFFSET=0") != std::string::npos);

    Reply q;
    q.code = 250;
    q.lines = {"2.0.0 Ok: 79 bytes queued as B3A2010E03F"};
    CHECK(queue_id_of(q) == "B3A2010E03F");
    q.lines = {"2.0.0 Ok"};
    CHECK(queue_id_of(q).empty());

    Reply bad;
    bad.code = 554;
    bad.lines = {"no thanks"};
    CHECK(dsn_text(bad, "h:25", "DATA")
          == "5.0.0 h:25 said: 554 no thanks (in reply to DATA)");
}
