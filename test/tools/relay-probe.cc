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
//   A line that starts with "MAIL " or "RCPT " is a command instead: its
//   argument is parsed (parse_path_arg with strict_rfc821_envelopes),
//   the address resolved for RESOLVE_FLAG_ERROR, and the parameters
//   judged (check_mail_params with message_size_limit, or
//   check_rcpt_params), in Postfix's order; the first refusal is printed
//   after "=>", or OK.
//   A configuration warning is printed on stderr as "warning: ...".
//   Exit status 0, or 1 on a fatal configuration error (the text on
//   stderr, as smtpd would log it).
// SEE ALSO
//   smtpd/relay.h, test/integration/test_relay_probe.py
#include "common/mail/config.h"
#include "common/mail/log.h"
#include "common/util/event.h"
#include "common/util/text.h"
#include "smtpd/address.h"
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

    bool strict = config.boolean("strict_rfc821_envelopes");
    bool utf8 = config.boolean("smtputf8_enable");
    smtpd::MailParamLimits lim;
    lim.message_size_limit = config.integer("message_size_limit");
    lim.smtputf8_enable = utf8;

    // A MAIL or RCPT command: syntax, resolve, parameters.
    auto command = [&](const std::string& line) {
        std::string verb = text::upper(line.substr(0, 4));
        auto parsed = smtpd::parse_path_arg(verb, line.substr(4), strict, utf8);
        if (!parsed.arg) {
            return parsed.reply;
        }
        if (!parsed.arg->internal.empty()) {
            std::optional<Result<smtpd::Resolved>> res;
            rewrite.resolve("", parsed.arg->internal,
                            [&](Result<smtpd::Resolved> r) { res = r; });
            while (!res) {
                event_base_loop(base.get(), EVLOOP_ONCE);
            }
            if (!*res) {
                return std::string("451 4.3.0 ") + res->error().text;
            }
            if ((*res)->flags & smtpd::RESOLVE_FLAG_ERROR) {
                return smtpd::address_syntax_reply(verb);
            }
        }
        std::string reply;
        if (verb == "MAIL") {
            smtpd::MailParams out;
            reply = smtpd::check_mail_params(*parsed.arg, lim, out);
        } else {
            smtpd::RcptParams out;
            reply = smtpd::check_rcpt_params(*parsed.arg, out);
        }
        return reply.empty() ? std::string("OK") : reply;
    };

    // One check per line, the loop run until its answer.
    std::string line;
    while (std::getline(std::cin, line)) {
        if (text::istarts_with(line, "MAIL ")
            || text::istarts_with(line, "RCPT ")) {
            std::cout << line << " => " << command(line) << std::endl;
            continue;
        }
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
