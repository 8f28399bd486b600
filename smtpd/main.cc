// SPDX-License-Identifier: MIT
// NAME
//   resume-smtpd - a drop-in smtpd(8) for Postfix 3.7
// SYNOPSIS
//   resume-smtpd [master(8) options]     (from master.cf)
//   resume-smtpd -S [-o name=value ...]  (one session on stdin/stdout)
//   resume-smtpd -L host:port [-o ...]   (listen by itself)
// DESCRIPTION
//   Started by master(8) like smtpd(8): it reads main.cf from
//   $MAIL_CONFIG (else /etc/postfix), applies the -o overrides in
//   order, and serves SMTP sessions on one event loop, handing mail to
//   Postfix's cleanup(8) over public/$cleanup_service_name.
//
//   The stand-alone forms -S and -L are for development: run them from
//   the queue directory (cd `postconf -h queue_directory`), because the
//   cleanup and trivial-rewrite sockets are named relative to it.
// SEE ALSO
//   smtpd/session.h, common/mail/master.h.
#include "common/mail/config.h"
#include "common/mail/log.h"
#include "common/mail/master.h"
#include "common/util/event.h"
#include "resumedb/limits.h"
#include "resumedb/spool.h"
#include "smtpd/rcpt_maps.h"
#include "smtpd/relay.h"
#include "smtpd/rewrite.h"
#include "smtpd/session.h"
#include "smtpd/tls.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <pwd.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace {

const char* usage_text =
    "usage: resume-smtpd [master(8) options]\n"
    "       resume-smtpd -S [-o name=value ...]   one session on stdin/stdout\n"
    "       resume-smtpd -L host:port [-o ...]    listen on host:port\n"
    "main.cf is read from $MAIL_CONFIG, else /etc/postfix.\n"
    "Run -S and -L from the queue directory: public/cleanup and\n"
    "private/rewrite are opened relative to the working directory.\n";

// How often a process sweeps the resume spool for expired entries.
constexpr int SPOOL_SWEEP_SECONDS = 60;

// The resume spool directory must belong to mail_owner, but only root
// can make it inside the root-owned queue directory: make it now, before
// privileges go. Failure only costs XRESUME (logged), never mail.
void prepare_spool_dir(rs::mail::Config& config, const std::string& dir)
{
    if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
        rs::log::warning("resume spool: mkdir {}: {}", dir,
                         std::strerror(errno));
        return;
    }
    if (getuid() != 0) {
        return;
    }
    struct stat st;
    if (lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        rs::log::warning("resume spool: {} is not a directory", dir);
        return;
    }
    std::string owner = config.str("mail_owner");
    const passwd* pw = getpwnam(owner.c_str());
    if (pw != nullptr && st.st_uid != pw->pw_uid
        && chown(dir.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
        rs::log::warning("resume spool: chown {} {}: {}", owner, dir,
                         std::strerror(errno));
    }
}

} // namespace

int main(int argc, char** argv)
{
    // Log as smtpd whatever our file is called: tools key on the tag.
    rs::log::init("smtpd");
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "-h") == 0
            || std::strcmp(argv[i], "--help") == 0) {
            std::fputs(usage_text, stdout);
            return 0;
        }
    }

    // master(8)'s command line.
    auto opts = rs::mail::parse_master_args(argc, argv);
    if (!opts) {
        rs::log::fatal("{}", opts.error().text);
    }
    rs::log::set_verbose(opts->verbose);
    rs::log::set_stderr(opts->log_stderr);

    // main.cf, then -o in order, then logging as configured.
    rs::mail::Config config;
    const char* dir = std::getenv("MAIL_CONFIG");
    config.read_main_cf(dir != nullptr && *dir ? dir : "/etc/postfix");
    for (const auto& o : opts->overrides) {
        config.set_override(o);
    }
    config.set("process_name", "smtpd");
    config.set("service_name", opts->service_name);
    config.set("process_id", std::to_string(getpid()));
    rs::log::configure(config);

    rs::smtpd::SessionSettings settings = rs::smtpd::settings_from(config);

    // One event loop for every session of this process.
    // epoll's change list folds the add-then-remove of one turn (a read
    // paused and resumed, a write armed and done) into nothing. It
    // misbehaves only with two descriptors for one socket, which is what
    // -S may be given (stdin and stdout from inetd): not there.
    rs::EventBasePtr base;
    if (event_config* ec = event_config_new()) {
        if (!opts->standalone) {
            event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
        }
        base.reset(event_base_new_with_config(ec));
        event_config_free(ec);
    }
    if (!base) {
        base.reset(event_base_new());
    }
    if (!base) {
        rs::log::fatal("event_base_new: cannot create the event loop");
    }

    std::unique_ptr<rs::smtpd::TlsServer> tls;
    std::unique_ptr<rs::smtpd::RewriteClient> rewrite;
    std::unique_ptr<rs::smtpd::RelayChecker> relay;
    std::unique_ptr<rs::smtpd::RecipientMaps> rcpt_maps;
    std::unique_ptr<rs::resumedb::Spool> spool;
    rs::EventPtr sweep;
    rs::mail::Server* server_ptr = nullptr;
    bool resume = config.boolean("smtpd_resume_enable");
    // The spool as the process reaches it: relative to the queue
    // directory, which is the working directory before and after a
    // chroot into it (an absolute path would not exist in the jail).
    std::string spool_dir = rs::resumedb::spool_directory(config);
    std::string queue_prefix = config.str("queue_directory") + "/";
    if (spool_dir.starts_with(queue_prefix)) {
        spool_dir.erase(0, queue_prefix.size());
    }

    rs::mail::Server::Hooks hooks;
    hooks.pre_init = [&] {
        // Keys and tables are opened before chroot and setuid.
        if (settings.tls_level == "may" || settings.tls_level == "encrypt") {
            tls = rs::smtpd::TlsServer::create(config);
        }
        rewrite = std::make_unique<rs::smtpd::RewriteClient>(
            base.get(), "private/" + config.str("rewrite_service_name"));
        relay = std::make_unique<rs::smtpd::RelayChecker>(config, *rewrite);
        rcpt_maps = std::make_unique<rs::smtpd::RecipientMaps>(config);
        if (resume) {
            prepare_spool_dir(config, spool_dir);
        }
    };
    hooks.post_init = [&] {
        // The resume spool, as mail_owner; without it, no XRESUME.
        if (!resume) {
            return;
        }
        auto opened = rs::resumedb::Spool::open(
            spool_dir, rs::resumedb::limits_from(config));
        if (!opened) {
            rs::log::warning("resume spool {}: {}; XRESUME is off", spool_dir,
                             opened.error().text);
            return;
        }
        spool = std::move(*opened);
        sweep.reset(event_new(
            base.get(), -1, EV_PERSIST,
            [](evutil_socket_t, short, void* arg) noexcept {
                static_cast<rs::resumedb::Spool*>(arg)->sweep(
                    std::time(nullptr));
            },
            spool.get()));
        timeval tv{SPOOL_SWEEP_SECONDS, 0};
        if (sweep) {
            event_add(sweep.get(), &tv);
        }
    };
    hooks.on_session = [&](rs::Fd fd, rs::mail::ConnInfo info) {
        rs::smtpd::SessionEnv env;
        env.base = base.get();
        env.settings = &settings;
        env.tls = tls.get();
        env.relay = relay.get();
        env.rewrite = rewrite.get();
        env.rcpt_maps = rcpt_maps.get();
        env.spool = spool.get();
        env.done = [&server_ptr] {
            if (server_ptr != nullptr) {
                server_ptr->session_done();
            }
        };
        rs::smtpd::Session::start(std::move(env), std::move(fd),
                                  std::move(info));
    };

    rs::mail::Server server(base.get(), *opts, config, std::move(hooks));
    server_ptr = &server;
    return server.run();
}
