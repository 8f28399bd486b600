// SPDX-License-Identifier: MIT
// NAME
//   master.h - the master(8) child skeleton, for a many-sessions-per-process
//   server on one libevent loop
// DESCRIPTION
//   parse_master_args() takes master's command line (-n -t -u -c -o -v -d
//   -l -z -s -S -i -m -V -D -r, plus our stand-alone -L address). The
//   caller then reads main.cf and applies -o (read_master_config()) and
//   configures logging; Server::run() does the rest of what Postfix's
//   single-threaded skeleton does, in its order: open the accept lock
//   (pid/<transport>.<service>), chdir(queue_directory), call pre_init,
//   drop privileges (setgid, initgroups, chroot, setuid), call post_init,
//   and serve.
//
//   Serving: listen fds start at 6 (-s N of them); fd 5 is the status
//   channel. The process accepts while it has fewer than
//   smtpd_sessions_per_process sessions, sends TAKEN to master only when
//   it becomes full (or stops accepting for good, at max_use) and AVAIL
//   when it is no longer full, counts every finished session toward
//   max_use, and exits after max_idle seconds with no session. When
//   master closes fd 5 (reload, stop) an idle process exits at once; a
//   busy one forks: the parent exits, so that master starts fresh
//   processes, and the child finishes the sessions, then exits. SIGTERM
//   exits at once with status 0.
//   `pass` services receive the client descriptor over the UNIX socket
//   with SCM_RIGHTS, then an attr0 hash of client/server address and port.
//
//   Stand-alone (no master): -S serves one session on stdin/stdout; -L
//   host:port listens on that address itself, with no status channel, no
//   max_idle or max_use, until SIGTERM or SIGINT.
// THREADS
//   One Server per process, on the caller's event loop; not thread-safe.
//   The event_base must outlive the Server.
#pragma once

#include "common/mail/config.h"
#include "common/util/fd.h"
#include "common/util/result.h"
#include <event2/event.h>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rs::mail {

struct MasterOptions {
    std::string service_name;  ///< -n, else basename(argv[0])
    std::string transport;     ///< -t: inet, unix, pass (required unless -S/-L)
    bool chroot = false;       ///< -c
    bool debug = false;        ///< -d
    bool unprivileged = false; ///< -u: drop to mail_owner
    int verbose = 0;           ///< -v, repeatable
    bool log_stderr = false;   ///< -V
    bool single = false;       ///< -l: process limit 1, no accept lock
    bool zero = false;         ///< -z
    bool standalone = false;   ///< -S: one session on stdin/stdout
    int listen_count = 1;      ///< -s
    std::optional<long> max_idle;       ///< -i
    std::optional<long> max_use;        ///< -m
    std::string listen_address;         ///< -L host:port (ours: development)
    std::vector<std::string> overrides; ///< -o name=value, in order
    bool debugger = false;              ///< -D (accepted, not supported)
    std::optional<long> retire_time;    ///< -r (accepted, not used yet)
};

/// The most listen descriptors -s may announce: fds 6 .. 6+N-1.
inline constexpr int kMaxListenFds = 256;

/// Parse master's argv. Unknown options and left-over arguments are errors
/// whose text is the fatal message Postfix would give.
[[nodiscard]] Result<MasterOptions> parse_master_args(int argc, char** argv);

/// The 12-byte status message: { int pid; unsigned gen; int avail; }.
std::string master_status_message(int pid, unsigned generation, bool avail);

/// Read $MAIL_CONFIG/main.cf (default /etc/postfix), then apply the -o
/// overrides in order, as the skeleton does before anything else. Fatal
/// (log::fatal) when main.cf is missing or an override has no '='.
void read_master_config(Config& config, const MasterOptions& options);

/// Split -L's "host:port", "[v6]:port" or ":port" (all addresses).
[[nodiscard]] Result<std::pair<std::string, std::string>>
split_host_port(std::string_view text);

/// What a session knows of its connection before any lookup.
struct ConnInfo {
    std::string client_addr; ///< numeric, no "IPv6:" prefix
    std::string client_port;
    std::string server_addr;
    std::string server_port;
    int family = 0;                ///< AF_INET, AF_INET6, or 0 when unknown
    bool standalone_stdio = false; ///< -S: fd is stdin, write to stdout
};

/// The numeric address text Postfix shows: IPv4-mapped IPv6
/// ("::ffff:1.2.3.4") becomes plain IPv4; anything else is unchanged.
std::string printable_address(std::string_view addr);

/// The ConnInfo of an accepted socket: getpeername/getsockname for
/// AF_INET/AF_INET6. A UNIX-domain (or not-a-socket) peer is reported as
/// client 127.0.0.1 port 0, family 0, which the session shows as
/// "localhost[127.0.0.1]", as Postfix's smtpd does for such clients. A
/// peer that is already gone gives "unknown" addresses and family 0.
ConnInfo conn_info_of_socket(int fd);

/// The ConnInfo from a `pass` hand-off's attributes (client_address,
/// client_port, server_address, server_port, possibly inside a "{" "}"
/// hash). Missing client_address or client_port is an error.
[[nodiscard]] Result<ConnInfo> conn_info_of_pass_attrs(
    const std::vector<std::pair<std::string, std::string>>& attrs);

class Server {
public:
    struct Hooks {
        std::function<void()> pre_init;  ///< before chroot/setuid
        std::function<void()> post_init; ///< after, before serving
        /// A new session; call Server::session_done() when it ends. The
        /// descriptor is non-blocking and close-on-exec; under -S it is
        /// stdin, and replies go to stdout. May be called from inside
        /// run() before the loop starts (-S).
        std::function<void(Fd client, ConnInfo info)> on_session;
    };

    /// `config` must already hold main.cf and the -o overrides.
    Server(event_base* base, MasterOptions options, Config& config,
           Hooks hooks);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    /// Privileges, listeners, status channel, timers; then the loop.
    /// Returns the process exit status (0). Start-up failures are
    /// log::fatal() (exit 1), as master(8) expects.
    int run();

    /// A session ended (exactly once per on_session call).
    void session_done();

    /// Sessions open now.
    int sessions() const { return sessions_; }

    /// True once master asked us to go (fd 5 closed) or max_use reached:
    /// sessions may use this to say 421 to idle clients, if they wish.
    bool draining() const { return draining_; }

private:
    struct Impl;
    Impl* impl_ = nullptr;
    int sessions_ = 0;
    bool draining_ = false;
};

} // namespace rs::mail
