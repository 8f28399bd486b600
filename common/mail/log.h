// SPDX-License-Identifier: MIT
// NAME
//   log.h - Postfix-style logging: syslog, or postlog when maillog_file is set
// DESCRIPTION
//   Lines carry the tag `$syslog_name/<process>[pid]` (process is "smtpd"
//   whatever the binary is called) and the labels Postfix uses: none for
//   info, "warning: ", "error: ", "fatal: ", "panic: ". With maillog_file
//   set, each line is one datagram to the postlog socket
//   ($POSTLOG_SERVICE, else $queue_directory/public/postlog), formatted
//   "%b %d %H:%M:%S <first label of myhostname> <tag>[pid]: <text>";
//   the socket is connected in configure(), i.e. before chroot.
//   fatal() exits 1 (so master(8) throttles); panic() aborts.
#pragma once

#include <fmt/format.h>
#include <string>
#include <string_view>

namespace rs::mail {
class Config;
}

namespace rs::log {

/// Before main.cf is read: tag = $MAIL_LOGTAG (default "postfix") + "/" +
/// process, to syslog.
/// Also: when $POSTLOG_SERVICE is set (master(8) sets it only with
/// maillog_file), lines go there from the start, labelled with the first
/// label of $POSTLOG_HOSTNAME (else the kernel host name), so a fatal
/// error in main.cf reaches the maillog file as it does with Postfix.
void init(std::string_view process);

/// After main.cf and -o: syslog_name, syslog_facility, maillog_file.
void configure(mail::Config& config);

/// Also copy every line to stderr (-V, and stand-alone development).
void set_stderr(bool on);

/// Verbose level (-v, may repeat).
void set_verbose(int level);
int verbose();

enum class Level { info, warning, error, fatal, panic };
void write(Level level, std::string_view text);
[[noreturn]] void exit_fatal();

/// For tests only: called with the text instead of exiting on fatal() and
/// panic(); the hook must not return (it throws).
void set_fatal_hook(void (*hook)(const std::string& text));
[[noreturn]] void exit_panic();

/// The current tag without the pid, e.g. "postfix/smtpd".
const std::string& tag();

/// True while lines go to a postlog socket (maillog_file is set and the
/// socket could be connected).
bool using_postlog();

/// Longest message text logged; longer text is cut (Postfix's syslog
/// limit, kept for postlog too so both carry the same line).
inline constexpr size_t max_line = 2000;

template <class... A> void info(fmt::format_string<A...> f, A&&... a)
{
    write(Level::info, fmt::format(f, std::forward<A>(a)...));
}
template <class... A> void warning(fmt::format_string<A...> f, A&&... a)
{
    write(Level::warning, fmt::format(f, std::forward<A>(a)...));
}
template <class... A> void error(fmt::format_string<A...> f, A&&... a)
{
    write(Level::error, fmt::format(f, std::forward<A>(a)...));
}
template <class... A>
[[noreturn]] void fatal(fmt::format_string<A...> f, A&&... a)
{
    write(Level::fatal, fmt::format(f, std::forward<A>(a)...));
    exit_fatal();
}
template <class... A>
[[noreturn]] void panic(fmt::format_string<A...> f, A&&... a)
{
    write(Level::panic, fmt::format(f, std::forward<A>(a)...));
    exit_panic();
}

} // namespace rs::log
