// SPDX-License-Identifier: MIT
// Unit tests for client/send_report.
#include "client/send_report.h"
#include "test/unit/catch.h"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <unistd.h>

using namespace rs::send;

namespace {

Stats sample()
{
    Stats s;
    s.outcome = Outcome::Delivered;
    s.message_octets = 3 * 1024 * 1024;
    s.wire_octets = 4 * 1024 * 1024;
    s.data_octets = 3 * 1024 * 1024 + 5;
    s.acked = s.message_octets;
    s.position = s.message_octets;
    s.connections = 3;
    s.resumes = 2;
    s.resume_offsets = {1000, 2000};
    s.xresume_offered = true;
    s.queue_id = "4XyzAbc";
    s.seconds = 1.25;
    s.reason = "2.0.0 ok\r\n";
    return s;
}

} // namespace

TEST_CASE("send_report: sizes read as people write them")
{
    CHECK(human_size(0) == "0 B");
    CHECK(human_size(1023) == "1023 B");
    CHECK(human_size(1024) == "1.0 KiB");
    CHECK(human_size(1536 * 1024) == "1.5 MiB");
    CHECK(human_size(5ull << 30) == "5.0 GiB");
}

TEST_CASE("send_report: the key=value report carries every figure")
{
    auto t = report_text(sample());
    for (const char* want :
         {"status=delivered\n", "exit=0\n", "message_octets=3145728\n",
          "wire_octets=4194304\n", "connections=3\n", "resumes=2\n",
          "resume_offsets=1000,2000\n", "xresume=yes\n", "tls=no\n",
          "queue_id=4XyzAbc\n", "seconds=1.250\n", "reason=2.0.0 ok??\n"}) {
        INFO(want);
        CHECK(t.find(want) != std::string::npos);
    }
    auto temp = sample();
    temp.outcome = Outcome::TempFail;
    CHECK(report_text(temp).find("exit=75\n") != std::string::npos);
}

TEST_CASE("send_report: summary and progress lines")
{
    auto s = summary_line(sample());
    CHECK(s.find("delivered: 3145728 message octets") == 0);
    CHECK(s.find("3 connections, 2 resumes, queued as 4XyzAbc")
          != std::string::npos);
    auto p = progress_line(sample(), 2.0);
    CHECK(p.find("(100%)") != std::string::npos);
    CHECK(p.find("resumes 2") != std::string::npos);
}

TEST_CASE("send_report: the report file is written whole")
{
    char path[] = "/tmp/send_report_test.XXXXXX";
    int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    ::close(fd);
    REQUIRE(write_report(path, sample()));
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    CHECK(ss.str() == report_text(sample()));
    std::remove(path);
    CHECK_FALSE(write_report("/nonexistent/dir/r", sample()));
}
