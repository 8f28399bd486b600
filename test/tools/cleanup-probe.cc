// SPDX-License-Identifier: MIT
// NAME
//   cleanup-probe - send one message to a real cleanup(8) through
//   CleanupStream and print what happened
// SYNOPSIS
//   cleanup-probe [options] (run from the queue directory)
// DESCRIPTION
//   Connects to public/cleanup (relative to the working directory, as
//   smtpd does), sends an envelope, the recipients, a Received: header
//   and a short message, and prints one line per event on stdout:
//     ready ID            the handshake gave queue id ID
//     paused ID           with --pause: waiting for a line on stdin
//     aborted ID          with --abort: closed without E
//     reply TEXT          cleanup's status as smtpd's SMTP reply
//     status N reason R   the raw status
//     error TEXT          the stream failed (smtpd would say 451 4.3.0)
//   Exit status: 0 for a 250 reply or a done abort, 2 for another
//   reply, 1 for an error.
//
//   Options:
//     --service PATH   socket path (public/cleanup)
//     --sender ADDR    envelope sender (a@lab.example)
//     --rcpt ADDR      a recipient; repeatable (b@lab.example)
//     --subject TEXT   Subject: header (cleanup-probe)
//     --hostname NAME  myhostname for the Received: header (mx.lab.example)
//     --hold           HOLD in the f records
//     --abort          stop after the first body line, without E
//     --pause          after the first body line, print "paused" and
//                      wait for a line on stdin before going on
//     --timeout SEC    ipc_timeout (30)
// SEE ALSO
//   cleanup-bridge/cleanup.h, test/integration/test_cleanup_bridge.py
#include "cleanup-bridge/cleanup.h"

#include "common/util/event.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <optional>
#include <string>
#include <sys/time.h>
#include <vector>

using namespace rs::cleanup;

namespace {

struct Args {
    std::string service = "public/cleanup";
    std::string sender = "a@lab.example";
    std::vector<std::string> rcpts;
    std::string subject = "cleanup-probe";
    std::string hostname = "mx.lab.example";
    bool hold = false;
    bool abort = false;
    bool pause = false;
    int timeout = 30;
};

[[noreturn]] void usage(const char* why)
{
    std::fprintf(stderr, "cleanup-probe: %s\n", why);
    std::exit(1);
}

Args parse(int argc, char** argv)
{
    Args a;
    for (int i = 1; i < argc; ++i) {
        std::string opt = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                usage(("missing value for " + opt).c_str());
            }
            return argv[++i];
        };
        if (opt == "--service") {
            a.service = value();
        } else if (opt == "--sender") {
            a.sender = value();
        } else if (opt == "--rcpt") {
            a.rcpts.push_back(value());
        } else if (opt == "--subject") {
            a.subject = value();
        } else if (opt == "--hostname") {
            a.hostname = value();
        } else if (opt == "--hold") {
            a.hold = true;
        } else if (opt == "--abort") {
            a.abort = true;
        } else if (opt == "--pause") {
            a.pause = true;
        } else if (opt == "--timeout") {
            a.timeout = std::atoi(value().c_str());
        } else {
            usage(("unknown option " + opt).c_str());
        }
    }
    if (a.rcpts.empty()) {
        a.rcpts.push_back("b@lab.example");
    }
    return a;
}

void say(const std::string& line)
{
    std::cout << line << std::endl;
}

// Run the loop until `flag` is set.
void run_until(event_base* base, const bool& flag)
{
    while (!flag) {
        if (event_base_loop(base, EVLOOP_ONCE) != 0) {
            break;
        }
    }
}

} // namespace

int main(int argc, char** argv)
{
    // The stream writes to a socket whose peer we may kill on purpose.
    signal(SIGPIPE, SIG_IGN);
    Args args = parse(argc, argv);
    rs::EventBasePtr base(event_base_new());
    if (!base) {
        usage("cannot create an event base");
    }

    // Connect and wait for the handshake.
    Options opts;
    opts.ipc_timeout = args.timeout;
    opts.connect_attempts = 1;
    bool ready_seen = false;
    std::string error;
    auto stream = CleanupStream::open(
        base.get(), args.service,
        [&](rs::Result<std::string> r) {
            ready_seen = true;
            if (!r) {
                error = r.error().text;
            }
        },
        opts);
    run_until(base.get(), ready_seen);
    if (!error.empty()) {
        say("error " + error);
        return 1;
    }
    std::string qid = stream->queue_id();
    say("ready " + qid);

    // The envelope smtpd would send for a local ESMTP client.
    timeval now{};
    gettimeofday(&now, nullptr);
    Envelope env;
    env.flags = FLAG_FILTER | FLAG_BCC_OK | FLAG_MAP_OK | FLAG_SMTP_REPLY;
    env.arrival_sec = now.tv_sec;
    env.arrival_usec = now.tv_usec;
    env.rewrite_context = "local";
    env.sender = args.sender;
    env.log_client_name = "localhost";
    env.log_client_address = "127.0.0.1";
    env.log_client_port = "unknown";
    env.log_message_origin = "localhost[127.0.0.1]";
    env.log_helo_name = "probe.lab.example";
    env.log_protocol_name = "ESMTP";
    env.client_name = "localhost";
    env.reverse_client_name = "localhost";
    env.client_address = "127.0.0.1";
    env.client_port = "unknown";
    env.server_address = "127.0.0.1";
    env.server_port = "unknown";
    env.helo_name = "probe.lab.example";
    env.protocol_name = "ESMTP";
    env.client_address_type = 2;
    stream->envelope(env);
    for (const auto& r : args.rcpts) {
        stream->recipient({r, 0, "rfc822;" + r});
    }

    // smtpd's Received: header, then a small message.
    ReceivedInfo ri;
    ri.helo = "probe.lab.example";
    ri.client_name = "localhost";
    ri.client_rfc_addr = "127.0.0.1";
    ri.myhostname = args.hostname;
    ri.mail_name = "Postfix";
    ri.protocol = "ESMTP";
    ri.queue_id = qid;
    if (args.rcpts.size() == 1) {
        ri.single_recipient = args.rcpts[0];
    }
    ri.date = mail_date(now.tv_sec);
    unsigned extra = args.hold ? FLAG_HOLD : 0;
    stream->begin_content(extra, received_header(ri));
    for (const std::string& line :
         {"From: <" + args.sender + ">", "To: <" + args.rcpts[0] + ">",
          "Subject: " + args.subject, "Date: " + mail_date(now.tv_sec),
          "Message-ID: <" + qid + "@probe.lab.example>", std::string(),
          std::string("first body line")}) {
        stream->content('N', line);
    }

    // Let the bytes reach cleanup before stopping or pausing.
    bool drained = stream->pending() == 0;
    stream->on_drain([&] { drained = true; }, 0);
    run_until(base.get(), drained);

    // Abort: close without E, and let the loop really close the socket.
    if (args.abort) {
        stream->abort();
        stream.reset();
        event_base_loop(base.get(), EVLOOP_NONBLOCK);
        say("aborted " + qid);
        return 0;
    }

    // Pause: the test may kill cleanup now.
    if (args.pause) {
        say("paused " + qid);
        std::string line;
        std::getline(std::cin, line);
    }

    // The rest of the message, a line that is sent as two records.
    stream->content('L', "second body line, ");
    stream->content('N', "in two records");
    bool done_seen = false;
    std::optional<Status> status;
    stream->finish(extra, [&](rs::Result<Status> r) {
        done_seen = true;
        if (r) {
            status = *r;
        } else {
            error = r.error().text;
        }
    });
    run_until(base.get(), done_seen);
    if (!status) {
        say("error " + (error.empty() ? std::string("no reply") : error));
        return 1;
    }
    say("status " + std::to_string(status->status) + " reason "
        + status->reason);
    std::string reply =
        reply_for_status(*status, qid, false, 0, args.hostname, 521);
    say("reply " + reply);
    return reply.rfind("250 ", 0) == 0 ? 0 : 2;
}
