// SPDX-License-Identifier: MIT
// Unit tests for client/send_exit.
#include "client/send_exit.h"
#include "test/unit/catch.h"

#include <sysexits.h>

using namespace rs::send;

TEST_CASE("send_exit: outcomes map to sysexits.h codes")
{
    CHECK(exit_code(Outcome::Delivered) == 0);
    CHECK(exit_code(Outcome::Usage) == 64);
    CHECK(exit_code(Outcome::NoInput) == 66);
    CHECK(exit_code(Outcome::RecipientUnknown) == 67);
    CHECK(exit_code(Outcome::Refused) == 69);
    CHECK(exit_code(Outcome::Software) == 70);
    CHECK(exit_code(Outcome::TempFail) == 75);
    CHECK(exit_code(Outcome::Config) == 78);
    CHECK(EX_TEMPFAIL == 75);
    CHECK(EX_NOUSER == 67);
}

TEST_CASE("send_exit: replies are classified by class and command")
{
    struct Case {
        int code;
        bool rcpt;
        Outcome want;
    };
    Case cases[] = {
        {450, true, Outcome::TempFail},
        {421, false, Outcome::TempFail},
        {452, true, Outcome::TempFail},
        {550, true, Outcome::RecipientUnknown},
        {551, true, Outcome::RecipientUnknown},
        {553, true, Outcome::RecipientUnknown},
        {554, true, Outcome::Refused},
        {552, true, Outcome::Refused},
        {550, false, Outcome::Refused},
        {554, false, Outcome::Refused},
        {250, false, Outcome::Software},
        {354, false, Outcome::Software},
        {999, false, Outcome::TempFail},
    };
    for (const auto& c : cases) {
        INFO(c.code << (c.rcpt ? " to RCPT" : ""));
        CHECK(classify_reply(c.code, c.rcpt) == c.want);
    }
}

TEST_CASE("send_exit: every outcome has a name")
{
    for (auto o : {Outcome::Delivered, Outcome::Usage, Outcome::NoInput,
                   Outcome::RecipientUnknown, Outcome::Refused,
                   Outcome::Software, Outcome::TempFail, Outcome::Config}) {
        CHECK(std::string(outcome_name(o)).size() > 0);
    }
    CHECK(std::string(outcome_name(Outcome::TempFail)) == "tempfail");
}
