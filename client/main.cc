// SPDX-License-Identifier: MIT
// NAME
//   main.cc - resume-send, the sending side of XRESUME
// DESCRIPTION
//   Reads the command line, copies the message into a private temporary
//   file (canonical CRLF), delivers it with Sender, prints the outcome
//   and exits with a sysexits.h status (send_exit.h), so that it can be
//   a pipe(8) transport.
// SEE ALSO
//   man/man1/resume-send.1, client/send_session.h
#include "client/send_exit.h"
#include "client/send_message.h"
#include "client/send_options.h"
#include "client/send_report.h"
#include "client/send_session.h"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

using namespace rs;
using namespace rs::send;

namespace {

void say(const std::string& line)
{
    std::fprintf(stderr, "resume-send: %s\n", line.c_str());
}

// The outcome line pipe(8) puts into a bounce or deferral: it starts with
// the RFC 3463 code, without our name in front.
void say_reason(const std::string& reason)
{
    std::fprintf(stderr, "%s\n", reason.c_str());
}

int finish(const Options& o, Stats& st)
{
    if (!o.report.empty()) {
        if (auto w = write_report(o.report, st); !w) {
            say("warning: " + w.error().text);
        }
    }
    return exit_code(st.outcome);
}

} // namespace

int main(int argc, char** argv)
{
    // A server that goes away while OpenSSL writes must be an error
    // return, not a signal.
    std::signal(SIGPIPE, SIG_IGN);

    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
        std::fputs(usage_text(), stdout);
        return 0;
    }
    auto parsed = parse_args(args);
    if (!parsed) {
        say(parsed.error().text);
        std::fputs(usage_text(), stderr);
        return exit_code(Outcome::Usage);
    }
    Options o = std::move(*parsed);
    if (const char* t = std::getenv("TMPDIR"); t != nullptr && *t == '/') {
        o.tmpdir = t;
    }
    Stats st;

    // The state directory must be ours to write in: a missing one is a
    // configuration error, not a reason to run without resume.
    if (!o.state_dir.empty()
        && ::access(o.state_dir.c_str(), W_OK | X_OK) != 0) {
        st.outcome = Outcome::Config;
        st.reason = "4.3.5 state directory " + o.state_dir + ": "
                    + std::strerror(errno);
        say_reason(st.reason);
        return finish(o, st);
    }

    // The message, from -m FILE or standard input, into the spool.
    int in = 0;
    rs::Fd file;
    if (!o.message_file.empty()) {
        file.reset(::open(o.message_file.c_str(), O_RDONLY | O_CLOEXEC));
        if (!file) {
            st.outcome = Outcome::NoInput;
            st.reason =
                "5.3.0 open " + o.message_file + ": " + std::strerror(errno);
            say_reason(st.reason);
            return finish(o, st);
        }
        in = file.get();
    }
    auto spool = Spool::create(in, o.tmpdir);
    if (!spool) {
        // Unreadable input is the caller's; a full temporary file system
        // passes.
        bool input = spool.error().text.rfind("read the message", 0) == 0;
        st.outcome = input ? Outcome::NoInput : Outcome::TempFail;
        st.reason = (input ? "5.3.0 " : "4.3.0 ") + spool.error().text;
        say_reason(st.reason);
        return finish(o, st);
    }
    file.reset();

    // Progress in place on a terminal; the dialogue with -v.
    bool tty = ::isatty(2) == 1 && !o.quiet;
    Sender sender(o, *spool);
    bool progress_shown = false;
    if (o.verbose) {
        sender.set_log([&progress_shown](const std::string& l) {
            if (progress_shown) {
                std::fputs("\r\033[K", stderr);
                progress_shown = false;
            }
            say(l);
        });
    }
    auto t0 = Clock::now();
    if (tty) {
        sender.set_progress([&progress_shown, t0](const Stats& s) {
            double secs =
                std::chrono::duration<double>(Clock::now() - t0).count();
            std::fprintf(stderr, "\r\033[K%s", progress_line(s, secs).c_str());
            progress_shown = true;
        });
    }
    sender.run();
    st = sender.stats();
    if (progress_shown) {
        std::fputs("\r\033[K", stderr);
    }

    if (st.outcome != Outcome::Delivered) {
        say_reason(st.reason);
    }
    if (!o.quiet && (o.verbose || tty)) {
        say(summary_line(st));
    }
    return finish(o, st);
}
