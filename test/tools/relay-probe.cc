// SPDX-License-Identifier: MIT
// NAME
//   relay-probe - run RelayChecker against a real trivial-rewrite
// SYNOPSIS
//   relay-probe -c CONFIG_DIR [-o name=value ...] < lines
// DESCRIPTION
//   Reads main.cf from CONFIG_DIR, applies the -o overrides as master.cf
//   would, changes to queue_directory (trivial-rewrite's socket is
//   private/$rewrite_service_name relative to it, as for smtpd) and
//   builds the RelayChecker smtpd would build. Then, for each input line
//   "CLIENT SENDER RECIPIENT" (internal forms; "<>" for an empty sender),
//   runs check_rcpt and prints one line:
//     CLIENT SENDER RECIPIENT => OK
//     CLIENT SENDER RECIPIENT => 554 5.7.1 <...>: Relay access denied
//   A configuration warning is printed on stderr as "warning: ...".
//   Exit status 0, or 1 on a fatal configuration error (the text on
//   stderr, as smtpd would log it).
// SEE ALSO
//   smtpd/relay.h, test/integration/test_relay_probe.py
#include "common/mail/config.h"
#include "common/mail/log.h"
#include "common/util/event.h"
#include "common/util/text.h"
#include "smtpd/relay.h"
#include "smtpd/rewrite.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <unistd.h>

int main(int argc, char** argv)
{
    using namespace rs;

    // Options: -c CONFIG_DIR, then -o overrides in order.
    rs::log::init("relay-probe");
    rs::log::set_stderr(true);
    mail::Config config;
    std::string dir;
    std::vector<std::string> overrides;
    int ch;
    while ((ch = getopt(argc, argv, "c:o:")) != -1) {
        if (ch == 'c') {
            dir = optarg;
        } else if (ch == 'o') {
            overrides.emplace_back(optarg);
        } else {
            std::fprintf(stderr, "usage: relay-probe -c DIR [-o n=v] ...\n");
            return 2;
        }
    }
    if (dir.empty()) {
        std::fprintf(stderr, "usage: relay-probe -c DIR [-o n=v] ...\n");
        return 2;
    }
    config.read_main_cf(dir);
    for (const std::string& o : overrides) {
        config.set_override(o);
    }

    // The queue directory is where smtpd runs, and the socket is relative.
    std::string queue = config.str("queue_directory");
    if (chdir(queue.c_str()) != 0) {
        rs::log::fatal("chdir {}: {}", queue, std::strerror(errno));
    }
    EventBasePtr base(event_base_new());
    smtpd::RewriteClient rewrite(
        base.get(), "private/" + config.str("rewrite_service_name"));
    smtpd::RelayChecker relay(config, rewrite);

    // One check per line, the loop run until its answer.
    std::string line;
    while (std::getline(std::cin, line)) {
        auto f = text::split(line, " \t");
        if (f.size() != 3) {
            continue;
        }
        smtpd::RcptQuery q;
        q.client_addr = f[0];
        q.sender = f[1] == "<>" ? "" : f[1];
        q.recipient = f[2];
        q.recipient_typed = f[2];
        std::optional<smtpd::CheckResult> got;
        relay.check_rcpt(q, [&](smtpd::CheckResult r) { got = std::move(r); });
        while (!got) {
            event_base_loop(base.get(), EVLOOP_ONCE);
        }
        if (!got->warning.empty()) {
            rs::log::warning("{}", got->warning);
        }
        std::cout << line << " => " << (got->accepted ? "OK" : got->reply)
                  << std::endl;
    }
    return 0;
}
