// SPDX-License-Identifier: MIT
// Unit tests for common/util/text.
#include "common/util/text.h"
#include "test/unit/catch.h"

using namespace rs;

TEST_CASE("text: parse_int accepts only whole, in-range numbers")
{
    CHECK(text::parse_int("42") == 42);
    CHECK(text::parse_int("-1", 0) == std::nullopt);
    CHECK(text::parse_int("12x") == std::nullopt);
    CHECK(text::parse_int("") == std::nullopt);
    CHECK(text::parse_int("99999999999999999999") == std::nullopt);
    CHECK(text::parse_int("10", 0, 9) == std::nullopt);
}

TEST_CASE("text: split drops empty fields at commas and whitespace")
{
    auto v = text::split(" a, b,,c\td ");
    REQUIRE(v.size() == 4);
    CHECK(v[0] == "a");
    CHECK(v[3] == "d");
}

TEST_CASE("text: printable replaces control bytes and truncates")
{
    CHECK(text::printable("a\r\nb", 100) == "a??b");
    CHECK(text::printable("abcdef", 3) == "abc");
    CHECK(text::iequals("MaIl", "mail"));
    CHECK(text::istarts_with("EHLO x", "ehlo"));
}

TEST_CASE("text: hex_value reads one digit of either case")
{
    CHECK(text::hex_value('0') == 0);
    CHECK(text::hex_value('9') == 9);
    CHECK(text::hex_value('a') == 10);
    CHECK(text::hex_value('F') == 15);
    CHECK(text::hex_value('g') == -1);
    CHECK(text::hex_value('\0') == -1);
}
