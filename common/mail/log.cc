// SPDX-License-Identifier: MIT
// NAME
//   log.cc - Postfix-style logging to syslog or to postlogd
// DESCRIPTION
//   Two transports, as in Postfix 3.7. By default openlog()/syslog() with
//   LOG_PID under the tag $syslog_name/<process>. With maillog_file set,
//   every line is one datagram to postlogd's socket, already formatted the
//   way postlogd writes it to the file; the socket is connected in
//   configure(), while the process can still see the queue directory
//   (before chroot). When a datagram cannot be sent the line goes to
//   syslog instead: logging must never stall or kill a session.
//
//   errno is preserved across every call, so a caller may log and then
//   still report the errno it saw.
// BUGS
//   Not thread-safe; one logger per process, like Postfix's msg(3).
// SEE ALSO
//   postconf(5) maillog_file, syslog_name, syslog_facility; postlogd(8)
#include "common/mail/log.h"

#include "common/mail/config.h"
#include "common/util/text.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

namespace rs::log {

namespace {

struct State {
    std::string process;
    std::string tag;
    std::string ident; // what openlog() holds a pointer to
    int facility = LOG_MAIL;
    bool syslog_open = false;
    int postlog_fd = -1;
    std::string host_label;
    bool to_stderr = false;
    int verbose = 0;
    void (*hook)(const std::string&) = nullptr;
    std::string last_fatal;
};

State& state()
{
    static State s;
    return s;
}

// syslog_facility names, as syslog.conf spells them.
struct Facility {
    std::string_view name;
    int value;
};
constexpr Facility facilities[] = {
    {"auth", LOG_AUTH},     {"authpriv", LOG_AUTHPRIV}, {"cron", LOG_CRON},
    {"daemon", LOG_DAEMON}, {"ftp", LOG_FTP},           {"kern", LOG_KERN},
    {"lpr", LOG_LPR},       {"mail", LOG_MAIL},         {"news", LOG_NEWS},
    {"syslog", LOG_SYSLOG}, {"user", LOG_USER},         {"uucp", LOG_UUCP},
    {"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1},     {"local2", LOG_LOCAL2},
    {"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4},     {"local5", LOG_LOCAL5},
    {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7},
};

// (Re)open syslog under the current tag. openlog() keeps the pointer, so
// the string it points to is only changed while syslog is closed.
void open_syslog()
{
    State& s = state();
    if (s.syslog_open) {
        closelog();
    }
    s.ident = s.tag;
    openlog(s.ident.c_str(), LOG_NDELAY | LOG_PID, s.facility);
    s.syslog_open = true;
}

void close_postlog()
{
    State& s = state();
    if (s.postlog_fd >= 0) {
        close(s.postlog_fd);
        s.postlog_fd = -1;
    }
}

std::string_view label(Level level)
{
    switch (level) {
    case Level::info:
        return "";
    case Level::warning:
        return "warning: ";
    case Level::error:
        return "error: ";
    case Level::fatal:
        return "fatal: ";
    case Level::panic:
        return "panic: ";
    }
    return "";
}

int priority(Level level)
{
    switch (level) {
    case Level::info:
        return LOG_INFO;
    case Level::warning:
        return LOG_WARNING;
    case Level::error:
        return LOG_ERR;
    case Level::fatal:
    case Level::panic:
        return LOG_CRIT;
    }
    return LOG_INFO;
}

// Send one line to postlogd; false when it did not go.
bool send_postlog(std::string_view line)
{
    State& s = state();

    // postlogd writes the datagram as it is, so it carries the whole
    // prefix: a zero-padded day (not syslog's %e), the first label of the
    // host name, and tag[pid]. The C locale is in force for %b: the
    // program never calls setlocale().
    char stamp[64];
    time_t now = ::time(nullptr);
    struct tm tm;
    localtime_r(&now, &tm);
    size_t n = strftime(stamp, sizeof(stamp), "%b %d %H:%M:%S ", &tm);
    std::string dgram =
        fmt::format("{}{} {}[{}]: {}", std::string_view(stamp, n), s.host_label,
                    s.tag, getpid(), line);

    // Never block the event loop on a busy postlogd: a full socket
    // buffer sends this line to syslog instead.
    ssize_t sent = send(s.postlog_fd, dgram.data(), dgram.size(),
                        MSG_DONTWAIT | MSG_NOSIGNAL);
    return sent == static_cast<ssize_t>(dgram.size());
}

// Connect the postlog socket at `path`; 0, or the errno of the failure.
int connect_postlog(const std::string& path)
{
    State& s = state();
    close_postlog();
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    if (path.size() >= sizeof(sun.sun_path)) {
        return ENAMETOOLONG;
    }
    std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return errno;
    }
    if (connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof(sun)) != 0) {
        int e = errno;
        close(fd);
        return e;
    }
    s.postlog_fd = fd;
    return 0;
}

} // namespace

void init(std::string_view process)
{
    int saved_errno = errno;
    State& s = state();

    // Before main.cf is read the tag comes from the environment that
    // postfix(1) and master(8) pass down.
    const char* env = std::getenv("MAIL_LOGTAG");
    s.process = process;
    s.tag =
        fmt::format("{}/{}", env != nullptr && *env ? env : "postfix", process);
    close_postlog();
    open_syslog();

    // master(8) exports POSTLOG_SERVICE only when maillog_file is set;
    // using it from the start puts errors found while reading main.cf
    // where the admin looks (there may be no syslog daemon at all).
    const char* svc = std::getenv("POSTLOG_SERVICE");
    if (svc != nullptr && *svc) {
        const char* host = std::getenv("POSTLOG_HOSTNAME");
        char buf[256] = {};
        if (host == nullptr || *host == 0) {
            gethostname(buf, sizeof(buf) - 1);
            host = buf;
        }
        std::string_view h = host;
        s.host_label = h.substr(0, h.find('.'));
        (void)connect_postlog(svc);
    }
    errno = saved_errno;
}

void configure(mail::Config& config)
{
    int saved_errno = errno;
    State& s = state();
    if (s.process.empty()) {
        s.process = program_invocation_short_name;
    }

    // syslog_name (often "postfix/submission" through -o) and the
    // facility, with syslog re-opened under the new tag.
    s.tag = fmt::format("{}/{}", config.str("syslog_name"), s.process);
    std::string facility = config.str("syslog_facility");
    int value = -1;
    for (auto& f : facilities) {
        if (text::iequals(f.name, facility)) {
            value = f.value;
        }
    }
    if (value < 0) {
        fatal("unknown syslog_facility value: \"{}\"", facility);
    }
    s.facility = value;
    open_syslog();

    // maillog_file chooses postlog. Postfix insists that the file lies
    // under one of maillog_file_prefixes, so that a typo cannot make
    // postlogd (running as root) write somewhere else.
    std::string maillog = config.str("maillog_file");
    if (maillog.empty()) {
        close_postlog();
        errno = saved_errno;
        return;
    }
    bool allowed = false;
    for (auto& p : config.list("maillog_file_prefixes")) {
        if (maillog.compare(0, p.size(), p) == 0) {
            allowed = true;
        }
    }
    if (!allowed) {
        fatal("maillog_file ({}) does not match maillog_file_prefixes ({})",
              maillog, config.str("maillog_file_prefixes"));
    }

    // The host label: POSTLOG_HOSTNAME (master passes it down), else our
    // own myhostname; only its first label is logged.
    const char* host_env = std::getenv("POSTLOG_HOSTNAME");
    std::string host = host_env != nullptr && *host_env
                           ? std::string(host_env)
                           : config.str("myhostname");
    s.host_label = host.substr(0, host.find('.'));

    // Connect now: after chroot the socket path may be out of sight.
    const char* svc_env = std::getenv("POSTLOG_SERVICE");
    std::string path = svc_env != nullptr && *svc_env
                           ? std::string(svc_env)
                           : config.str("queue_directory") + "/public/postlog";
    int e = connect_postlog(path);
    if (e != 0) {
        // Keep going on syslog: the line saying why goes there.
        warning("connect to postlog service {}: {}", path, std::strerror(e));
    }
    errno = saved_errno;
}

void set_stderr(bool on)
{
    state().to_stderr = on;
}

void set_verbose(int level)
{
    state().verbose = level;
}

int verbose()
{
    return state().verbose;
}

const std::string& tag()
{
    State& s = state();
    if (s.tag.empty()) {
        init(program_invocation_short_name);
    }
    return s.tag;
}

bool using_postlog()
{
    return state().postlog_fd >= 0;
}

void write(Level level, std::string_view text)
{
    int saved_errno = errno;
    State& s = state();
    if (s.tag.empty()) {
        init(program_invocation_short_name);
    }

    // The label, then the text, cut to Postfix's syslog length.
    std::string line(label(level));
    line.append(text.substr(0, max_line));
    if (level == Level::fatal || level == Level::panic) {
        s.last_fatal.assign(text);
    }

    // A copy on stderr for -V and for running by hand.
    if (s.to_stderr) {
        std::string copy = fmt::format("{}[{}]: {}\n", s.tag, getpid(), line);
        ssize_t ignored = ::write(STDERR_FILENO, copy.data(), copy.size());
        (void)ignored;
    }

    // postlog when configured; syslog otherwise, or when postlog fails.
    if (s.postlog_fd < 0 || !send_postlog(line)) {
        syslog(priority(level), "%s", line.c_str());
    }
    errno = saved_errno;
}

void set_fatal_hook(void (*hook)(const std::string& text))
{
    state().hook = hook;
}

[[noreturn]] void exit_fatal()
{
    // Exit status 1: master(8) counts it as a failure and throttles.
    State& s = state();
    if (s.hook != nullptr) {
        s.hook(s.last_fatal);
    }
    std::exit(1);
}

[[noreturn]] void exit_panic()
{
    // A broken invariant: a core dump says more than an exit status.
    State& s = state();
    if (s.hook != nullptr) {
        s.hook(s.last_fatal);
    }
    std::abort();
}

} // namespace rs::log
