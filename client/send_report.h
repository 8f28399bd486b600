// SPDX-License-Identifier: MIT
// NAME
//   send_report.h - what resume-send tells its user at the end
// DESCRIPTION
//   The one-line progress display (stderr on a terminal), the summary
//   line, and the --report file: the same figures as key=value lines,
//   one per line, for scripts and tests:
//     status=delivered|tempfail|refused|nouser|...  exit=<code>
//     message_octets=  wire_octets=  data_octets=  acked_octets=
//     connections=  resumes=  resume_offsets=<n,n,...>
//     xresume=yes|no  tls=yes|no  queue_id=  seconds=  reason=
// SEE ALSO
//   send_session.h
#pragma once

#include "client/send_session.h"
#include "common/util/result.h"

#include <string>

namespace rs::send {

/// 1234 -> "1234 B", 2.5 MiB -> "2.5 MiB".
std::string human_size(uint64_t n);
std::string progress_line(const Stats& s, double seconds);
std::string summary_line(const Stats& s);
std::string report_text(const Stats& s);
[[nodiscard]] Result<void> write_report(const std::string& path,
                                        const Stats& s);

} // namespace rs::send
