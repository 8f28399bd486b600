// SPDX-License-Identifier: MIT
// NAME
//   master.cc - master(8) command line, status messages, connection facts
// DESCRIPTION
//   The parts of the master(8) child skeleton that need neither the
//   configuration nor the log: the option parser (Postfix's skeleton
//   options plus our -L), the 12-byte status record, and the address
//   facts a session starts from (getpeername/getsockname, or the
//   attributes of a postscreen hand-off). The Server itself is in
//   master_server.cc.
// BUGS
//   -D (run under debugger_command) and -r (retire time) are accepted so
//   that master.cf lines written for Postfix keep working, but do nothing.
// SEE ALSO
//   master.h, master_server.cc, master(5), master(8)
#include "common/mail/master.h"

#include <arpa/inet.h>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

namespace rs::mail {

namespace {

// A decimal number, fully consumed and inside [min, max].
std::optional<long> parse_number(std::string_view text, long min, long max)
{
    long value = 0;
    auto [end, ec] =
        std::from_chars(text.data(), text.data() + text.size(), value, 10);
    if (ec != std::errc() || end != text.data() + text.size() || value < min
        || value > max) {
        return std::nullopt;
    }
    return value;
}

// A time as Postfix writes it: a number with an optional unit letter
// (s m h d w), in seconds. A bare number is seconds, as for max_idle.
std::optional<long> parse_time(std::string_view text)
{
    // One year is far beyond any sensible idle or retire time, and keeps
    // the multiplication below from overflowing.
    constexpr long max_seconds = 366L * 86400;
    long unit = 1;
    if (!text.empty() && (text.back() < '0' || text.back() > '9')) {
        switch (text.back()) {
        case 's':
            unit = 1;
            break;
        case 'm':
            unit = 60;
            break;
        case 'h':
            unit = 3600;
            break;
        case 'd':
            unit = 86400;
            break;
        case 'w':
            unit = 7 * 86400;
            break;
        default:
            return std::nullopt;
        }
        text.remove_suffix(1);
    }
    auto n = parse_number(text, 0, max_seconds);
    if (!n || *n > max_seconds / unit) {
        return std::nullopt;
    }
    return *n * unit;
}

std::string base_name(std::string_view path)
{
    auto slash = path.rfind('/');
    return std::string(
        slash == std::string_view::npos ? path : path.substr(slash + 1));
}

// The options that take an argument, and those that do not, as in
// Postfix's skeleton getopt string, plus our L.
constexpr std::string_view kWithArg = "imnorstL";
constexpr std::string_view kFlags = "cdDlSuvVz";

// "what: -x", the way the option errors read.
std::string fmt_option_error(std::string_view what, char option)
{
    std::string text(what);
    text += ": -";
    text += option;
    return text;
}

} // namespace

Result<MasterOptions> parse_master_args(int argc, char** argv)
{
    MasterOptions opt;
    opt.service_name = argc > 0 && argv[0] ? base_name(argv[0]) : "smtpd";
    std::vector<std::string> leftover;

    // Walk argv as getopt(3) would, but without its global state: options
    // may be clustered (-uv) and an argument may be attached (-n127...) or
    // be the next element; "--" ends the options. A non-option argument
    // anywhere is remembered, because the daemon refuses any.
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--") {
            for (++i; i < argc; ++i) {
                leftover.emplace_back(argv[i]);
            }
            break;
        }
        if (arg.size() < 2 || arg[0] != '-') {
            leftover.emplace_back(arg);
            continue;
        }
        for (size_t k = 1; k < arg.size(); ++k) {
            char c = arg[k];

            // An option with an argument takes the rest of this element,
            // or else the whole next one (which may contain spaces: the
            // braced master.cf form arrives as one element).
            if (kWithArg.find(c) != std::string_view::npos) {
                std::string value;
                if (k + 1 < arg.size()) {
                    value = std::string(arg.substr(k + 1));
                } else if (i + 1 < argc) {
                    value = argv[++i];
                } else {
                    return fail(
                        fmt_option_error("option requires an argument", c));
                }
                switch (c) {
                case 'i': {
                    auto t = parse_time(value);
                    if (!t) {
                        return fail("invalid -i option value: " + value);
                    }
                    opt.max_idle = *t;
                    break;
                }
                case 'm': {
                    auto n = parse_number(value, 0, 1L << 30);
                    if (!n) {
                        return fail("invalid -m option value: " + value);
                    }
                    opt.max_use = *n;
                    break;
                }
                case 'n':
                    opt.service_name = value;
                    break;
                case 'o':
                    // The value is handed to Config::set_override() as is;
                    // only its shape is checked here, so that a bad one
                    // is reported before anything else happens.
                    if (value.find('=') == std::string::npos) {
                        return fail("missing '=' in -o option value: " + value);
                    }
                    opt.overrides.push_back(std::move(value));
                    break;
                case 'r': {
                    auto t = parse_time(value);
                    if (!t) {
                        return fail("invalid -r option value: " + value);
                    }
                    opt.retire_time = *t;
                    break;
                }
                case 's': {
                    auto n = parse_number(value, 1, kMaxListenFds);
                    if (!n) {
                        return fail("invalid -s option value: " + value);
                    }
                    opt.listen_count = static_cast<int>(*n);
                    break;
                }
                case 't':
                    opt.transport = value;
                    break;
                case 'L': {
                    auto hp = split_host_port(value);
                    if (!hp) {
                        return fail(hp.error().text);
                    }
                    opt.listen_address = value;
                    break;
                }
                }
                break; // the rest of this element was the argument
            }
            if (kFlags.find(c) == std::string_view::npos) {
                return fail(fmt_option_error("invalid option", c));
            }
            switch (c) {
            case 'c':
                opt.chroot = true;
                break;
            case 'd':
                opt.debug = true;
                break;
            case 'D':
                opt.debugger = true;
                break;
            case 'l':
                opt.single = true;
                break;
            case 'S':
                opt.standalone = true;
                break;
            case 'u':
                opt.unprivileged = true;
                break;
            case 'v':
                ++opt.verbose;
                break;
            case 'V':
                opt.log_stderr = true;
                break;
            case 'z':
                opt.zero = true;
                break;
            }
        }
    }

    // smtpd takes no arguments after its options; neither do we.
    if (!leftover.empty()) {
        return fail("unexpected command-line argument: " + leftover.front());
    }

    // Only stand-alone modes may do without a transport; and they exclude
    // each other, since -S has no listener at all.
    if (opt.standalone && !opt.listen_address.empty()) {
        return fail("options -S and -L cannot be used together");
    }
    if (opt.transport.empty() && !opt.standalone
        && opt.listen_address.empty()) {
        return fail("no transport type specified");
    }
    if (!opt.transport.empty() && opt.transport != "inet"
        && opt.transport != "unix" && opt.transport != "pass") {
        return fail("unsupported transport type: " + opt.transport);
    }
    if (!opt.listen_address.empty() && !opt.transport.empty()
        && opt.transport != "inet") {
        return fail("option -L needs transport type inet, not "
                    + opt.transport);
    }
    return opt;
}

std::string master_status_message(int pid, unsigned generation, bool avail)
{
    // The record is master's C struct, copied field by field in host
    // order; the layout has no padding (three 4-byte members).
    struct {
        int pid;
        unsigned gen;
        int avail;
    } status{pid, generation, avail ? 1 : 0};
    static_assert(sizeof(status) == 12);
    std::string out(sizeof(status), '\0');
    std::memcpy(out.data(), &status, sizeof(status));
    return out;
}

Result<std::pair<std::string, std::string>>
split_host_port(std::string_view text)
{
    std::string_view host;
    std::string_view port;

    // "[v6]:port" keeps the colons of the address inside the brackets;
    // otherwise the port follows the last colon.
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size()
            || text[close + 1] != ':') {
            return fail("bad -L address (want [host]:port): "
                        + std::string(text));
        }
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            return fail("bad -L address (want host:port): "
                        + std::string(text));
        }
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
    }
    if (port.empty() || !parse_number(port, 0, 65535)) {
        return fail("bad -L port: " + std::string(text));
    }
    return std::pair{std::string(host), std::string(port)};
}

std::string printable_address(std::string_view addr)
{
    // An IPv4 client on a dual-stack listener arrives as ::ffff:a.b.c.d;
    // Postfix logs and compares it as a.b.c.d.
    constexpr std::string_view mapped = "::ffff:";
    if (addr.size() > mapped.size()) {
        std::string lower;
        for (char c : addr.substr(0, mapped.size())) {
            lower += static_cast<char>(c >= 'A' && c <= 'F' ? c + 32 : c);
        }
        std::string rest(addr.substr(mapped.size()));
        in_addr v4{};
        if (lower == mapped && inet_pton(AF_INET, rest.c_str(), &v4) == 1) {
            return rest;
        }
    }
    return std::string(addr);
}

namespace {

// Numeric host and port of a socket address; false when it is not IP.
bool numeric_name(const sockaddr_storage& ss, socklen_t len, std::string& host,
                  std::string& port)
{
    if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6) {
        return false;
    }
    char h[NI_MAXHOST];
    char p[NI_MAXSERV];
    if (getnameinfo(reinterpret_cast<const sockaddr*>(&ss), len, h, sizeof(h),
                    p, sizeof(p), NI_NUMERICHOST | NI_NUMERICSERV)
        != 0) {
        return false;
    }
    host = printable_address(h);
    port = p;
    return true;
}

int family_of(std::string_view addr)
{
    return addr.find(':') == std::string_view::npos ? AF_INET : AF_INET6;
}

} // namespace

ConnInfo conn_info_of_socket(int fd)
{
    ConnInfo info;
    sockaddr_storage peer{};
    socklen_t peer_len = sizeof(peer);

    // A peer that has already hung up has no name any more: the session
    // will see EOF at once, so "unknown" is all it needs.
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) {
        if (errno == ENOTCONN || errno == ECONNRESET || errno == EINVAL) {
            info.client_addr = info.client_port = "unknown";
            info.server_addr = info.server_port = "unknown";
            return info;
        }
        peer.ss_family = AF_UNSPEC; // not a socket: stdin of -S
    }

    // UNIX-domain clients, and stdin that is no socket, are the local
    // host, as Postfix's smtpd presents them.
    if (!numeric_name(peer, peer_len, info.client_addr, info.client_port)) {
        info.client_addr = "127.0.0.1";
        info.client_port = "0";
        info.server_addr = "127.0.0.1";
        info.server_port = "0";
        return info;
    }
    info.family = family_of(info.client_addr);

    // Our side of the connection, for the session's server_address.
    sockaddr_storage self{};
    socklen_t self_len = sizeof(self);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&self), &self_len) != 0
        || !numeric_name(self, self_len, info.server_addr, info.server_port)) {
        info.server_addr = info.server_port = "unknown";
    }
    return info;
}

Result<ConnInfo> conn_info_of_pass_attrs(
    const std::vector<std::pair<std::string, std::string>>& attrs)
{
    ConnInfo info;

    // Take the first value of each name; the hash markers "{" and "}" and
    // anything else postscreen may add are ignored.
    auto get = [&](std::string_view name) -> const std::string* {
        for (const auto& [n, v] : attrs) {
            if (n == name) {
                return &v;
            }
        }
        return nullptr;
    };
    const std::string* ca = get("client_address");
    const std::string* cp = get("client_port");
    if (!ca || !cp || ca->empty() || cp->empty()) {
        return fail("pass attributes lack client_address or client_port");
    }
    const std::string* sa = get("server_address");
    const std::string* sp = get("server_port");
    info.client_addr = printable_address(*ca);
    info.client_port = *cp;
    info.server_addr = sa ? printable_address(*sa) : "unknown";
    info.server_port = sp ? *sp : "unknown";
    info.family = family_of(info.client_addr);
    return info;
}

} // namespace rs::mail
