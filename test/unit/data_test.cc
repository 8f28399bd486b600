// SPDX-License-Identifier: MIT
// NAME
//   data_test.cc - unit tests for smtpd/data: DATA and BDAT to records
// DESCRIPTION
//   Table tests. Every case is run with the input whole, cut at every
//   point into two feed() calls, cut into three for short inputs, and one
//   byte at a time: the records, the bytes consumed and the counters must
//   be the same each time, because a client decides where TCP cuts.
#include "smtpd/data.h"
#include "test/unit/catch.h"

#include <string>
#include <vector>

using namespace rs::smtpd;

namespace {

struct Collect : ContentSink {
    std::string out;
    void record(char type, std::string_view data) override
    {
        // One readable line per record, so a failure shows got and want.
        out += type;
        out += ':';
        for (char c : data) {
            if (c == '\r') {
                out += "<CR>";
            } else if (c == '\n') {
                out += "<LF>";
            } else if (c == '\0') {
                out += "<NUL>";
            } else {
                out += c;
            }
        }
        out += '\n';
    }
};

struct Case {
    const char* name;
    std::string input;
    std::string want; // records, as Collect renders them
    bool dot = true;  // DATA (true) or BDAT
    BareNewline mode = BareNewline::allow;
    size_t line_limit = 2048;
    int64_t size_limit = 10240000;
    size_t want_consumed = std::string::npos; // npos: all of the input
    bool want_done = true;
    int64_t want_octets = -1; // -1: not checked
    int64_t want_size = -1;
    bool want_exceeded = false;
    bool want_bare = false;
};

struct Outcome {
    std::string records;
    size_t consumed = 0;
    bool done = false;
    int64_t size = 0;
    int64_t octets = 0;
    bool exceeded = false;
    bool bare = false;
};

// Feed the pieces in order, as the session does: stop at the end of DATA.
Outcome run(const Case& c, const std::vector<std::string_view>& pieces)
{
    DataLimits limits;
    limits.line_length_limit = c.line_limit;
    limits.message_size_limit = c.size_limit;
    limits.bare_newline = c.mode;
    DataReceiver rx(limits, c.dot);
    Collect sink;
    Outcome o;
    for (auto piece : pieces) {
        size_t n = rx.feed(piece, sink);
        o.consumed += n;
        if (n < piece.size()) {
            break;
        }
    }
    if (!c.dot) {
        rx.finish(sink);
    }
    o.records = sink.out;
    o.done = rx.done();
    o.size = rx.size();
    o.octets = rx.octets();
    o.exceeded = rx.size_exceeded();
    o.bare = rx.bare_newline_seen();
    return o;
}

void check_one(const Case& c, const std::vector<std::string_view>& pieces,
               const std::string& how)
{
    Outcome o = run(c, pieces);
    INFO("case: " << c.name << "; split: " << how);
    CHECK(o.records == c.want);
    size_t want_consumed =
        c.want_consumed == std::string::npos ? c.input.size() : c.want_consumed;
    CHECK(o.consumed == want_consumed);
    CHECK(o.done == c.want_done);
    if (c.want_octets >= 0) {
        CHECK(o.octets == c.want_octets);
    }
    if (c.want_size >= 0) {
        CHECK(o.size == c.want_size);
    }
    CHECK(o.exceeded == c.want_exceeded);
    CHECK(o.bare == c.want_bare);
}

// Every way of cutting the input that a test can afford.
void check_all_splits(const Case& c)
{
    std::string_view in = c.input;
    check_one(c, {in}, "whole");
    for (size_t i = 0; i <= in.size(); ++i) {
        check_one(c, {in.substr(0, i), in.substr(i)},
                  "at " + std::to_string(i));
    }
    if (in.size() <= 64) {
        for (size_t i = 1; i < in.size(); ++i) {
            for (size_t j = i + 1; j < in.size(); ++j) {
                check_one(c,
                          {in.substr(0, i), in.substr(i, j - i), in.substr(j)},
                          "at " + std::to_string(i) + "," + std::to_string(j));
            }
        }
    }
    std::vector<std::string_view> bytes;
    for (size_t i = 0; i < in.size(); ++i) {
        bytes.push_back(in.substr(i, 1));
    }
    check_one(c, bytes, "byte at a time");
}

void check_table(const std::vector<Case>& table)
{
    for (const auto& c : table) {
        check_all_splits(c);
    }
}

} // namespace

TEST_CASE("data: lines become N records without CR LF, and CRLF.CRLF ends")
{
    check_table({
        {.name = "simple",
         .input = "Subject: a\r\n\r\nbody\r\n.\r\n",
         .want = "N:Subject: a\nN:\nN:body\n",
         .want_octets = 20,
         .want_size = 20},
        {.name = "next command after the dot is not consumed",
         .input = "a\r\n.\r\nQUIT\r\n",
         .want = "N:a\n",
         .want_consumed = 6,
         .want_octets = 3},
        {.name = "empty message",
         .input = ".\r\n",
         .want = "",
         .want_octets = 0,
         .want_size = 0},
        {.name = "unfinished data is not done",
         .input = "a\r\nb",
         .want = "N:a\n",
         .want_done = false},
        {.name = "bare CR is content",
         .input = "a\rb\r\n.\r\n",
         .want = "N:a<CR>b\n",
         .want_octets = 5},
        {.name = "a dot inside or at the end of a line is content",
         .input = "a.b.\r\n.\r\n",
         .want = "N:a.b.\n"},
        {.name = "a NUL is content",
         .input = std::string("a\0b\r\n.\r\n", 8),
         .want = "N:a<NUL>b\n"},
    });
}

TEST_CASE("data: dot-unstuffing only at the start of a line")
{
    check_table({
        {.name = "double dot",
         .input = "..x\r\n.\r\n",
         .want = "N:.x\n",
         .want_octets = 4,
         .want_size = 4},
        {.name = "a line of two dots",
         .input = "..\r\n...\r\n.\r\n",
         .want = "N:.\nN:..\n"},
        {.name = "not after an L fragment",
         .input = "abcd.x\r\n.\r\n",
         .want = "L:abcd\nN:.x\n",
         .line_limit = 4},
        {.name = "a lone dot after an L fragment is content",
         .input = "abcd.\r\n.\r\n",
         .want = "L:abcd\nN:.\n",
         .line_limit = 4},
        {.name = "BDAT does not unstuff nor end at a dot",
         .input = "..x\r\n.\r\nb\r\n",
         .want = "N:..x\nN:.\nN:b\n",
         .dot = false},
    });
}

TEST_CASE("data: long lines split at line_length_limit as Postfix's smtp_get")
{
    std::string five_k(5000, 'x');
    check_table({
        {.name = "5000 bytes at 2048",
         .input = five_k + "\r\n.\r\n",
         .want = "L:" + std::string(2048, 'x') + "\nL:" + std::string(2048, 'x')
                 + "\nN:" + std::string(904, 'x') + "\n",
         .want_octets = 5002,
         .want_size = 2050 + 2050 + 906},
        {.name = "several fragments",
         .input = "0123456789abcdefXYZ\r\n.\r\n",
         .want = "L:01234567\nL:89abcdef\nN:XYZ\n",
         .line_limit = 8},
        {.name = "exactly the limit, then CR LF is an empty N",
         .input = "abcd\r\n.\r\n",
         .want = "L:abcd\nN:\n",
         .line_limit = 4,
         .want_size = 8},
        {.name = "a read ending in CR takes the LF after it",
         .input = "abc\r\n.\r\n",
         .want = "N:abc\n",
         .line_limit = 4},
        {.name = "a read ending in CR without LF after it stays L",
         .input = "abc\rX\r\n.\r\n",
         .want = "L:abc<CR>\nN:X\n",
         .line_limit = 4},
        {.name = "limit below 2 works as 2",
         .input = "abc\r\n.\r\n",
         .want = "L:ab\nN:c\n",
         .line_limit = 0},
    });
}

TEST_CASE("data: first-line rules: X-Mailbox-Line and leading white space")
{
    check_table({
        {.name = "From line",
         .input = "From a@b x\r\nSubject: y\r\n.\r\n",
         .want = "N:X-Mailbox-Line: From a@b x\nN:Subject: y\n",
         .want_octets = 24,
         .want_size = 12},
        {.name = "after a run of >",
         .input = ">>From x\r\n.\r\n",
         .want = "N:X-Mailbox-Line: >>From x\n"},
        {.name = "every leading From line",
         .input = "From a\r\nFrom b\r\nc\r\n.\r\n",
         .want = "N:X-Mailbox-Line: From a\nN:X-Mailbox-Line: From b\nN:c\n"},
        {.name = "not on a later line",
         .input = "a\r\nFrom b\r\n.\r\n",
         .want = "N:a\nN:From b\n"},
        {.name = "From needs its space",
         .input = "Fromage\r\n.\r\n",
         .want = "N:Fromage\n"},
        {.name = "checked before unstuffing",
         .input = ".From x\r\n.\r\n",
         .want = "N:From x\n"},
        {.name = "a NUL ends the From line text",
         .input = std::string("From a\0b\r\n.\r\n", 13),
         .want = "N:X-Mailbox-Line: From a\n"},
        {.name = "leading space",
         .input = " x\r\ny\r\n.\r\n",
         .want = "N:\nN: x\nN:y\n",
         .want_size = 7},
        {.name = "leading TAB", .input = "\tx\r\n.\r\n", .want = "N:\nN:\tx\n"},
        {.name = "space after a From line",
         .input = "From a\r\n x\r\n.\r\n",
         .want = "N:X-Mailbox-Line: From a\nN:\nN: x\n"},
        {.name = "space on a later line only",
         .input = "a\r\n b\r\n.\r\n",
         .want = "N:a\nN: b\n"},
        {.name = "BDAT has the same first-line rules",
         .input = "From a\r\n x",
         .want = "N:X-Mailbox-Line: From a\nN:\nN: x\n",
         .dot = false},
    });
}

TEST_CASE("data: past message_size_limit records stop, reading goes on")
{
    check_table({
        {.name = "limit reached exactly is fine",
         .input = "12345678\r\n.\r\n",
         .want = "N:12345678\n",
         .size_limit = 10,
         .want_size = 10},
        {.name = "next record exceeds",
         .input = "12345678\r\nabc\r\n\r\nx\r\n.\r\nQUIT\r\n",
         .want = "N:12345678\n",
         .size_limit = 10,
         .want_consumed = 23,
         .want_octets = 20,
         .want_size = 10,
         .want_exceeded = true},
        {.name = "L records count too",
         .input = "abcdefgh\r\n.\r\n",
         .want = "L:abcd\n",
         .line_limit = 4,
         .size_limit = 8,
         .want_size = 6,
         .want_exceeded = true},
        {.name = "0 is unlimited",
         .input = "12345678\r\n.\r\n",
         .want = "N:12345678\n",
         .size_limit = 0},
    });
}

TEST_CASE("data: bare LF and CR per smtpd_forbid_bare_newline")
{
    check_table({
        {.name = "allow: bare LF ends a record line",
         .input = "a\nb\r\n.\r\n",
         .want = "N:a\nN:b\n",
         .want_octets = 5},
        {.name = "allow: every CR before LF goes",
         .input = "a\r\r\nb\r\n.\r\n",
         .want = "N:a\nN:b\n"},
        {.name = "normalize: bare LF ends a record line",
         .input = "a\nb\r\n.\r\n",
         .want = "N:a\nN:b\n",
         .mode = BareNewline::normalize},
        {.name = "normalize: one CR before LF goes",
         .input = "a\r\r\nb\r\n.\r\n",
         .want = "N:a<CR>\nN:b\n",
         .mode = BareNewline::normalize},
        {.name = "reject: noted, records stop",
         .input = "a\r\nb\nc\r\n.\r\n",
         .want = "N:a\n",
         .mode = BareNewline::reject,
         .want_bare = true},
        {.name = "reject: CR LF only is fine",
         .input = "a\r\nb\r\n.\r\n",
         .want = "N:a\nN:b\n",
         .mode = BareNewline::reject},
        {.name = "reject: a bare CR is not a bare LF",
         .input = "a\rb\r\n.\r\n",
         .want = "N:a<CR>b\n",
         .mode = BareNewline::reject},
    });
}

TEST_CASE("data: smuggling sequences never end the data, in any mode")
{
    const std::string smuggled = "MAIL FROM:<x@y>\r\nRCPT TO:<z@w>\r\nDATA\r\n";
    const std::string tail = smuggled + "evil\r\n.\r\nQUIT\r\n";
    const std::string tail_records =
        "N:MAIL FROM:<x@y>\nN:RCPT TO:<z@w>\nN:DATA\nN:evil\n";
    const size_t tail_consumed = tail.size() - 6;
    // (reject mode refuses the message at its first bare LF, which the
    // session records as the transfer's verdict at once: no splice.)
    for (auto mode : {BareNewline::allow, BareNewline::normalize}) {
        bool rej = mode == BareNewline::reject;
        check_table({
            {.name = "<LF>.<LF>",
             .input = "a\n.\n" + tail,
             .want = rej ? "" : "N:a\n" + tail_records,
             .mode = mode,
             .want_consumed = 4 + tail_consumed,
             .want_bare = rej},
            {.name = "<LF>.<CR><LF>",
             .input = "a\n.\r\n" + tail,
             .want = rej ? "" : "N:a\n" + tail_records,
             .mode = mode,
             .want_consumed = 5 + tail_consumed,
             .want_bare = rej},
            {.name = "<CR><LF>.<LF>",
             .input = "a\r\n.\n" + tail,
             .want = rej ? "N:a\n" : "N:a\n" + tail_records,
             .mode = mode,
             .want_consumed = 5 + tail_consumed,
             .want_bare = rej},
            {.name = "<CR>.<CR>",
             .input = "a\r.\r" + tail,
             .want = "N:a<CR>.<CR>MAIL FROM:<x@y>\nN:RCPT TO:<z@w>\nN:DATA\n"
                     "N:evil\n",
             .mode = mode,
             .want_consumed = 4 + tail_consumed},
            {.name = "<CR><LF>.<CR>",
             .input = "a\r\n.\r" + tail,
             .want = "N:a\nN:<CR>MAIL FROM:<x@y>\nN:RCPT TO:<z@w>\nN:DATA\n"
                     "N:evil\n",
             .mode = mode,
             .want_consumed = 5 + tail_consumed},
            {.name = "lone <LF>.<LF> at the start",
             .input = ".\n" + tail,
             .want = rej ? "" : tail_records,
             .mode = mode,
             .want_consumed = 2 + tail_consumed,
             .want_bare = rej},
        });
    }
    check_table({
        {.name = "allow: .<CR><CR><LF> is dropped, not an end",
         .input = "a\r\n.\r\r\nb\r\n.\r\n",
         .want = "N:a\nN:b\n"},
        {.name = "normalize: .<CR><CR><LF> is a <CR> line",
         .input = "a\r\n.\r\r\nb\r\n.\r\n",
         .want = "N:a\nN:<CR>\nN:b\n",
         .mode = BareNewline::normalize},
    });
}

TEST_CASE("data: BDAT finish flushes the last line as N")
{
    check_table({
        {.name = "unterminated last line",
         .input = "a\r\nbc",
         .want = "N:a\nN:bc\n",
         .dot = false,
         .want_octets = 5},
        {.name = "nothing pending",
         .input = "a\r\n",
         .want = "N:a\n",
         .dot = false},
        {.name = "a pending CR at the bound stays content",
         .input = "abc\r",
         .want = "N:abc<CR>\n",
         .dot = false,
         .line_limit = 4},
        {.name = "empty", .input = "", .want = "", .dot = false},
    });
}

TEST_CASE("data: parse_bare_newline takes Postfix 3.7.11's words")
{
    CHECK(parse_bare_newline("no") == BareNewline::allow);
    CHECK(parse_bare_newline("NO") == BareNewline::allow);
    CHECK(parse_bare_newline("normalize") == BareNewline::normalize);
    CHECK(parse_bare_newline("yes") == BareNewline::normalize);
    CHECK(parse_bare_newline("Reject") == BareNewline::reject);
    CHECK(parse_bare_newline("note") == std::nullopt);
    CHECK(parse_bare_newline("") == std::nullopt);
}

TEST_CASE("data: after the end of DATA nothing more is consumed")
{
    DataReceiver rx(DataLimits{}, true);
    Collect sink;
    CHECK(rx.feed(".\r\n", sink) == 3);
    CHECK(rx.done());
    CHECK(rx.feed("more\r\n", sink) == 0);
    CHECK(sink.out.empty());
}

TEST_CASE("data: random bytes give the same records however they are cut")
{
    // A small alphabet makes dots, CR, LF and bound hits frequent; a short
    // line limit makes fragments and pending CRs frequent.
    const char alphabet[] = {'a', '.', '\r', '\n', ' ', 'F'};
    uint32_t seed = 12345;
    auto next = [&seed] {
        seed = seed * 1103515245u + 12345u;
        return seed >> 16;
    };
    for (int round = 0; round < 300; ++round) {
        std::string in;
        size_t len = 1 + next() % 120;
        for (size_t i = 0; i < len; ++i) {
            in += alphabet[next() % sizeof(alphabet)];
        }
        for (auto mode : {BareNewline::allow, BareNewline::normalize,
                          BareNewline::reject}) {
            for (bool dot : {true, false}) {
                Case c{.name = "random",
                       .input = in,
                       .dot = dot,
                       .mode = mode,
                       .line_limit = 1 + next() % 6};
                Outcome whole = run(c, {std::string_view(c.input)});
                std::vector<std::string_view> bytes;
                for (size_t i = 0; i < in.size(); ++i) {
                    bytes.push_back(std::string_view(c.input).substr(i, 1));
                }
                Outcome one = run(c, bytes);
                size_t cut = next() % (in.size() + 1);
                Outcome two = run(c, {std::string_view(c.input).substr(0, cut),
                                      std::string_view(c.input).substr(cut)});
                INFO("round " << round << " limit " << c.line_limit);
                CHECK(one.records == whole.records);
                CHECK(two.records == whole.records);
                CHECK(one.consumed == whole.consumed);
                CHECK(two.consumed == whole.consumed);
                CHECK(one.octets == whole.octets);
                CHECK(two.octets == whole.octets);
                CHECK(one.size == whole.size);
                CHECK(one.done == whole.done);
                CHECK(one.bare == whole.bare);
                // BDAT neither unstuffs nor drops: every byte is an octet.
                if (!dot) {
                    CHECK(whole.octets == static_cast<int64_t>(in.size()));
                }
            }
        }
    }
}

namespace {

struct Tap : OctetTap {
    std::string bytes;
    std::vector<size_t> line_ends; // offsets just after an LF
    void octets(std::string_view b, bool line_end) override
    {
        bytes.append(b);
        if (line_end) {
            line_ends.push_back(bytes.size());
        }
    }
};

} // namespace

TEST_CASE("data: the tap sees exactly the octets that octets() counts")
{
    // Stuffed dots, a dropped lone dot, a long line cut into fragments,
    // a bare LF and a From line: the tap holds the unstuffed message.
    const std::string wire = "From me\r\nSubject: x\r\n\r\n..dot\r\n"
                             "<LF>\n.\nafter\r\n"
                             + std::string(30, 'a') + "\r\n.\r\n";
    DataLimits limits;
    limits.line_length_limit = 10;
    DataReceiver rx(limits, true);
    Collect sink;
    Tap tap;
    rx.set_tap(&tap);
    CHECK(rx.feed(wire, sink) == wire.size());
    REQUIRE(rx.done());
    CHECK(static_cast<int64_t>(tap.bytes.size()) == rx.octets());
    CHECK(tap.bytes
          == "From me\r\nSubject: x\r\n\r\n.dot\r\n<LF>\nafter\r\n"
                 + std::string(30, 'a') + "\r\n");
    // Fragments of the long line are not line ends.
    CHECK(tap.line_ends.back() == tap.bytes.size());
    CHECK(tap.line_ends.size() == 7);
}

TEST_CASE("data: a replayed prefix plus a DATA tail gives the same records")
{
    // The resume splice: the stored (unstuffed) prefix goes through in
    // BDAT mode, then the client's dot-stuffed tail in DATA mode. Every
    // line end of the whole message is tried as the splice point.
    const std::string wire = "Subject: s\r\n\r\n..one\r\n.\n"
                             "two\r\n...three\r\n"
                             + std::string(25, 'b') + "\r\nend\r\n.\r\n";
    // (reject mode refuses the message at its first bare LF, which the
    // session records as the transfer's verdict at once: no splice.)
    for (auto mode : {BareNewline::allow, BareNewline::normalize}) {
        DataLimits limits;
        limits.line_length_limit = 12;
        limits.bare_newline = mode;
        DataReceiver whole(limits, true);
        Collect want;
        Tap tap;
        whole.set_tap(&tap);
        REQUIRE(whole.feed(wire, want) == wire.size());
        REQUIRE(whole.done());

        for (size_t cut : tap.line_ends) {
            // The tail on the wire: the rest of the message, dot-stuffed.
            std::string tail;
            std::string_view rest(tap.bytes);
            rest.remove_prefix(cut);
            bool bol = true;
            for (char c : rest) {
                if (bol && c == '.') {
                    tail += '.';
                }
                tail += c;
                bol = c == '\n';
            }
            tail += ".\r\n";

            DataReceiver rx(limits, false);
            Collect got;
            rx.feed(std::string_view(tap.bytes).substr(0, cut), got);
            REQUIRE(rx.at_line_start());
            REQUIRE(rx.set_dot_stuffed(true));
            CHECK(rx.feed(tail, got) == tail.size());
            INFO("splice at " << cut);
            CHECK(rx.done());
            CHECK(got.out == want.out);
            CHECK(rx.octets() == whole.octets());
            CHECK(rx.size() == whole.size());
            CHECK(rx.bare_newline_seen() == whole.bare_newline_seen());
        }
    }
}

TEST_CASE("data: the mode cannot change inside a line")
{
    DataLimits limits;
    DataReceiver rx(limits, false);
    Collect sink;
    rx.feed("half a li", sink);
    CHECK_FALSE(rx.at_line_start());
    CHECK_FALSE(rx.set_dot_stuffed(true));
    rx.feed("ne\r\n", sink);
    CHECK(rx.set_dot_stuffed(true));
}
