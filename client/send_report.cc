// SPDX-License-Identifier: MIT
// NAME
//   send_report.cc - progress, summary and report
// SEE ALSO
//   send_report.h
#include "client/send_report.h"

#include "common/util/text.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace rs::send {

std::string human_size(uint64_t n)
{
    static const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
    if (n < 1024) {
        return std::to_string(n) + " B";
    }
    double v = static_cast<double>(n) / 1024;
    size_t u = 0;
    while (v >= 1024 && u + 1 < std::size(units)) {
        v /= 1024;
        ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
    return buf;
}

std::string progress_line(const Stats& s, double seconds)
{
    double rate =
        seconds > 0 ? static_cast<double>(s.data_octets) / seconds : 0;
    int pct = s.message_octets
                  ? static_cast<int>(100.0 * static_cast<double>(s.position)
                                     / static_cast<double>(s.message_octets))
                  : 100;
    return "sent " + human_size(s.position) + "/" + human_size(s.message_octets)
           + " (" + std::to_string(pct) + "%) acked " + human_size(s.acked)
           + " " + human_size(static_cast<uint64_t>(rate)) + "/s conn "
           + std::to_string(s.connections) + " resumes "
           + std::to_string(s.resumes);
}

std::string summary_line(const Stats& s)
{
    std::string out = std::string(outcome_name(s.outcome)) + ": "
                      + std::to_string(s.message_octets) + " message octets, "
                      + std::to_string(s.wire_octets) + " on the wire, "
                      + std::to_string(s.connections) + " connection"
                      + (s.connections == 1 ? "" : "s") + ", "
                      + std::to_string(s.resumes) + " resume"
                      + (s.resumes == 1 ? "" : "s");
    if (!s.queue_id.empty()) {
        out += ", queued as " + s.queue_id;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, ", %.1fs", s.seconds);
    return out + buf;
}

std::string report_text(const Stats& s)
{
    std::string offsets;
    for (auto o : s.resume_offsets) {
        offsets += (offsets.empty() ? "" : ",") + std::to_string(o);
    }
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.3f", s.seconds);
    std::string out;
    auto kv = [&out](const char* k, const std::string& v) {
        out += k;
        out += '=';
        out += v;
        out += '\n';
    };
    kv("status", outcome_name(s.outcome));
    kv("exit", std::to_string(exit_code(s.outcome)));
    kv("message_octets", std::to_string(s.message_octets));
    kv("wire_octets", std::to_string(s.wire_octets));
    kv("data_octets", std::to_string(s.data_octets));
    kv("acked_octets", std::to_string(s.acked));
    kv("connections", std::to_string(s.connections));
    kv("resumes", std::to_string(s.resumes));
    kv("resume_offsets", offsets);
    kv("xresume", s.xresume_offered ? "yes" : "no");
    kv("tls", s.tls ? "yes" : "no");
    kv("queue_id", s.queue_id);
    kv("seconds", secs);
    kv("reason", text::printable(s.reason, 1000));
    return out;
}

Result<void> write_report(const std::string& path, const Stats& s)
{
    std::string tmp = path + ".tmp";
    FILE* f = std::fopen(tmp.c_str(), "w");
    if (f == nullptr) {
        return fail("create " + tmp + ": " + std::strerror(errno), errno);
    }
    std::string t = report_text(s);
    bool ok = std::fwrite(t.data(), 1, t.size(), f) == t.size();
    ok = (std::fclose(f) == 0) && ok;
    if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
        int e = errno;
        std::remove(tmp.c_str());
        return fail("write " + path + ": " + std::strerror(e), e);
    }
    return {};
}

} // namespace rs::send
