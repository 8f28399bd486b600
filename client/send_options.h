// SPDX-License-Identifier: MIT
// NAME
//   send_options.h - resume-send's command line
// DESCRIPTION
//   parse_args() reads
//     resume-send [options] -f sender [--] recipient...
//   into Options; an error carries the text for the usage message (the
//   program exits 64). Options come before the recipients; "--" ends
//   them, so a recipient may start with '-'. Numbers are checked for
//   range. parse_server() reads -s: host, host:port, [v6addr] or
//   [v6addr]:port.
// SEE ALSO
//   man/man1/resume-send.1
#pragma once

#include "client/send_conn.h"
#include "common/util/result.h"

#include <cstddef>
#include <string>
#include <vector>

namespace rs::send {

enum class TlsLevel { None, May, Encrypt };

inline constexpr size_t kDefaultChunk = 1 << 20;
inline constexpr size_t kMinChunk = 1024;
inline constexpr size_t kMaxChunk = 64u << 20;

struct Options {
    Server server{"127.0.0.1", 25};
    /// Empty: the host name, found at run time.
    std::string helo;
    TlsLevel tls = TlsLevel::May;
    bool resume = true;
    bool chunking = true;
    std::string state_dir;
    int timeout = 300;
    int give_up = 3600;
    size_t chunk = kDefaultChunk;
    bool verbose = false;
    bool quiet = false;
    std::string report;
    /// Empty: standard input.
    std::string message_file;
    std::string sender;
    std::vector<std::string> rcpts;
    /// Where the message copy goes ($TMPDIR, else /tmp).
    std::string tmpdir = "/tmp";
    /// Reconnection back-off: first wait after a failed attempt, and the
    /// cap; a connection that made progress reconnects at once. Not on
    /// the command line (tests shorten them).
    int backoff_first_ms = 1000;
    int backoff_max_ms = 30000;
};

[[nodiscard]] Result<Server> parse_server(std::string_view spec);
[[nodiscard]] Result<Options> parse_args(const std::vector<std::string>& args);

/// The synopsis and option list printed with a usage error.
const char* usage_text();

} // namespace rs::send
