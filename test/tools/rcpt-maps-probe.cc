// SPDX-License-Identifier: MIT
// NAME
//   rcpt-maps-probe - RecipientMaps on addresses resolved by a real
//   trivial-rewrite
// SYNOPSIS
//   rcpt-maps-probe -c CONFIG_DIR [-o name=value ...] < lines
// DESCRIPTION
//   Reads main.cf from CONFIG_DIR, applies the -o overrides as master.cf
//   would, opens the recipient tables as smtpd does at start-up, then
//   changes to queue_directory (trivial-rewrite's socket is
//   private/$rewrite_service_name relative to it). For each input line
//   "SENDER RECIPIENT" (internal forms, "<>" for the empty sender) it
//   canonicalizes the recipient (rewrite, rule local) and resolves it, as
//   smtpd does before its checks, and prints one line:
//     SENDER RECIPIENT => OK
//     SENDER RECIPIENT => 550 5.1.1 <...>: Recipient address rejected: ...
//   Table warnings go to stderr as "warning: ...".
// SEE ALSO
//   smtpd/rcpt_maps.h, test/integration/test_rcpt_maps.py
#include "common/mail/config.h"
#include "common/mail/log.h"
#include "common/util/event.h"
#include "common/util/text.h"
#include "smtpd/rcpt_maps.h"
#include "smtpd/rewrite.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <unistd.h>

namespace {

// Run the loop until a callback has stored its answer.
template <class T> T wait_for(event_base* base, std::optional<T>& slot)
{
    while (!slot) {
        event_base_loop(base, EVLOOP_ONCE);
    }
    return std::move(*slot);
}

} // namespace

int main(int argc, char** argv)
{
    using namespace rs;

    // Options: -c CONFIG_DIR, then -o overrides in order.
    rs::log::init("rcpt-maps-probe");
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
            dir.clear();
            break;
        }
    }
    if (dir.empty()) {
        std::fprintf(stderr, "usage: rcpt-maps-probe -c DIR [-o n=v] ...\n");
        return 2;
    }
    config.read_main_cf(dir);
    for (const std::string& o : overrides) {
        config.set_override(o);
    }

    // Tables first, as smtpd opens them before chroot; then the queue
    // directory, where the rewrite socket path is relative to.
    smtpd::RecipientMaps maps(config);
    std::string queue = config.str("queue_directory");
    if (chdir(queue.c_str()) != 0) {
        rs::log::fatal("chdir {}: {}", queue, std::strerror(errno));
    }
    EventBasePtr base(event_base_new());
    smtpd::RewriteClient rewrite(
        base.get(), "private/" + config.str("rewrite_service_name"));

    // One verdict per line.
    std::string line;
    while (std::getline(std::cin, line)) {
        auto f = text::split(line, " \t");
        if (f.size() != 2) {
            continue;
        }
        std::string sender = f[0] == "<>" ? "" : f[0];

        // Canonical form, then the class, as smtpd asks before checking.
        std::optional<Result<std::string>> canon;
        rewrite.rewrite(f[1], [&](Result<std::string> r) { canon = r; });
        auto c = wait_for(base.get(), canon);
        if (!c) {
            std::cout << line << " => rewrite error: " << c.error().text
                      << std::endl;
            continue;
        }
        std::optional<Result<smtpd::Resolved>> res;
        rewrite.resolve(sender, *c,
                        [&](Result<smtpd::Resolved> r) { res = r; });
        auto r = wait_for(base.get(), res);
        if (!r) {
            std::cout << line << " => resolve error: " << r.error().text
                      << std::endl;
            continue;
        }
        auto reply = maps.check(*r, f[1]);
        std::cout << line << " => " << (reply ? *reply : "OK") << std::endl;
    }
    return 0;
}
