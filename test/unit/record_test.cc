// SPDX-License-Identifier: MIT
// NAME
//   record_test - queue-file records: varint length, put, scan, limits
// DESCRIPTION
//   The observed length encodings (16, 2048, 904), round trips at the
//   group boundaries, every truncation, too many length bytes and
//   declared lengths over the limit.
#include "common/mail/record.h"

#include "test/unit/catch.h"

using namespace std::string_literals;
namespace rec = rs::mail::rec;

namespace {

std::string header_of(size_t len)
{
    std::string out;
    rec::put(out, 'N', std::string(len, 'x'));
    return out.substr(0, out.size() - len);
}

} // namespace

TEST_CASE("record: lengths are encoded low group first, as observed")
{
    struct Case {
        size_t len;
        std::string want;
    };
    Case cases[] = {
        {0, "N\x00"s},         {16, "N\x10"s},
        {127, "N\x7f"s},       {128, "N\x80\x01"s},
        {904, "N\x88\x07"s},   {2048, "N\x80\x10"s},
        {16383, "N\xff\x7f"s}, {16384, "N\x80\x80\x01"s},
    };
    for (const auto& c : cases) {
        INFO("length " << c.len);
        CHECK(header_of(c.len) == c.want);
    }
}

TEST_CASE("record: put writes type, length and data with NULs intact")
{
    std::string out;
    rec::put(out, rec::TIME, "1796329934 97160");
    rec::put(out, rec::MESG, "");
    rec::put(out, rec::NORM, "a\0b"s);
    CHECK(out
          == "T\x10"
             "1796329934 97160"
             "M\x00"
             "N\x03"
             "a\0b"s);
}

TEST_CASE("record: scan reads back what put wrote, one record at a time")
{
    std::string out;
    for (size_t len : {0, 1, 127, 128, 904, 2048, 16384, 70000}) {
        rec::put(out, 'L', std::string(len, 'y'));
    }
    std::string_view rest = out;
    for (size_t len : {0, 1, 127, 128, 904, 2048, 16384, 70000}) {
        auto got = rec::scan(rest, 100000);
        REQUIRE(got);
        REQUIRE(*got);
        CHECK((*got)->type == 'L');
        CHECK((*got)->data.size() == len);
        rest.remove_prefix((*got)->consumed);
    }
    CHECK(rest.empty());
}

TEST_CASE("record: scan of every truncated record waits for more")
{
    std::string out;
    rec::put(out, 'N', std::string(904, 'z'));
    for (size_t n = 0; n < out.size(); ++n) {
        auto got = rec::scan(std::string_view(out).substr(0, n), 2048);
        INFO("prefix length " << n);
        REQUIRE(got);
        CHECK_FALSE(*got);
    }
    auto whole = rec::scan(out, 2048);
    REQUIRE(whole);
    REQUIRE(*whole);
    CHECK((*whole)->consumed == out.size());
}

TEST_CASE("record: a sixth length byte is too many length bits")
{
    CHECK_FALSE(rec::scan("N\x80\x80\x80\x80\x80\x01"s, SIZE_MAX));
    CHECK_FALSE(rec::scan("N\x80\x80\x80\x80\x80"s, SIZE_MAX));

    // Five bytes are still allowed; the data is simply not there yet.
    auto five = rec::scan("N\x80\x80\x80\x80\x01"s, SIZE_MAX);
    REQUIRE(five);
    CHECK_FALSE(*five);
}

TEST_CASE("record: a declared length over the limit fails before the data")
{
    // 2049 declared, only the header present: no waiting for 2 KB.
    auto got = rec::scan("N\x81\x10"s, 2048);
    CHECK_FALSE(got);

    // At the limit it is accepted.
    std::string out;
    rec::put(out, 'N', std::string(2048, 'a'));
    auto ok = rec::scan(out, 2048);
    REQUIRE(ok);
    CHECK(*ok);
}
