// SPDX-License-Identifier: MIT
// NAME
//   resumedb - look at and maintain the resume spool
// SYNOPSIS
//   resumedb [-c config_dir] [-d spool_dir] -l | -s | -e | -p ID|ALL | -C [-r]
// DESCRIPTION
//   The administrator's view of what resume-smtpd keeps between broken
//   transfers, in the manner of postqueue(1) and postsuper(1) for the
//   mail queue: list the entries, show the totals, expire or purge
//   entries, check the files and repair what is damaged. Entries that a
//   live session owns are never touched.
//
//   The spool is $queue_directory/$smtpd_resume_spool_directory from
//   main.cf ($MAIL_CONFIG, -c, else /etc/postfix), or -d.
//
//   Errors go to standard error as "resumedb: fatal: ..." (and to the
//   mail log, as Postfix's commands do); the exit status is then 1.
// SEE ALSO
//   resumedb(1), resumedb/spool.h.
#include "common/mail/config.h"
#include "common/mail/log.h"
#include "common/util/text.h"
#include "resumedb/limits.h"
#include "resumedb/spool.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

using namespace rs;

namespace {

const char* usage_text =
    "usage: resumedb [-c config_dir] [-d spool_dir] action\n"
    "actions:\n"
    "  -l        list the entries\n"
    "  -s        show the totals\n"
    "  -e        remove what is past its time now\n"
    "  -p ID     remove one entry (ALL: every entry)\n"
    "  -C [-r]   check the spool files (-r: remove what is damaged)\n";

// fatal() from anywhere (Config's getters too) ends up here: the text
// on stderr in the form Postfix's commands use, then exit 1.
[[noreturn]] void fatal_to_stderr(const std::string& text)
{
    std::fprintf(stderr, "resumedb: fatal: %s\n", text.c_str());
    std::exit(1);
}

void warn(const std::string& text)
{
    std::fprintf(stderr, "resumedb: warning: %s\n", text.c_str());
}

// A duration the way a person reads it: 42s, 5m07s, 3h12m, 2d04h.
std::string duration(std::time_t secs)
{
    if (secs < 0) {
        secs = 0;
    }
    if (secs < 60) {
        return fmt::format("{}s", secs);
    }
    if (secs < 3600) {
        return fmt::format("{}m{:02}s", secs / 60, secs % 60);
    }
    if (secs < 86400) {
        return fmt::format("{}h{:02}m", secs / 3600, secs % 3600 / 60);
    }
    return fmt::format("{}d{:02}h", secs / 86400, secs % 86400 / 3600);
}

const char* state_name(resumedb::State s)
{
    switch (s) {
    case resumedb::State::partial:
        return "partial";
    case resumedb::State::done:
        return "done";
    case resumedb::State::refused:
        return "refused";
    }
    return "?";
}

// The listing: one row per entry, columns padded to their widest cell.
void list(resumedb::Spool& spool)
{
    std::vector<std::vector<std::string>> rows = {
        {"ID", "STATE", "OCTETS", "DECLARED", "AGE", "IDLE", "RESUMES",
         "CLIENT", "QUEUE-ID/VERDICT", ""},
    };
    std::time_t now = std::time(nullptr);
    for (const resumedb::EntryInfo& e : spool.list()) {
        std::string result = e.state == resumedb::State::done ? e.queue_id
                             : e.state == resumedb::State::refused
                                 ? text::printable(e.verdict, 60)
                                 : "-";
        rows.push_back({e.id, state_name(e.state), std::to_string(e.offset),
                        std::to_string(e.declared), duration(now - e.created),
                        duration(now - e.updated), std::to_string(e.resumes),
                        e.client.empty() ? "-" : text::printable(e.client, 40),
                        result, e.locked ? "LOCKED" : ""});
    }
    if (rows.size() == 1) {
        std::puts("Resume spool is empty");
        return;
    }
    std::vector<size_t> width(rows[0].size(), 0);
    for (const auto& r : rows) {
        for (size_t i = 0; i < r.size(); ++i) {
            width[i] = std::max(width[i], r[i].size());
        }
    }

    // Numbers right-aligned, text left-aligned; no trailing blanks.
    for (const auto& r : rows) {
        std::string line;
        for (size_t i = 0; i < r.size(); ++i) {
            bool number = i == 2 || i == 3 || i == 6;
            std::string pad(width[i] - r[i].size(), ' ');
            line += number ? pad + r[i] : r[i] + pad;
            line += "  ";
        }
        while (!line.empty() && line.back() == ' ') {
            line.pop_back();
        }
        std::puts(line.c_str());
    }
}

void totals(resumedb::Spool& spool)
{
    resumedb::Totals t = spool.totals();
    int64_t limit = spool.limits().spool_size_limit;
    std::printf("partial entries: %d\n", t.entries);
    std::printf("tombstones:      %d\n", t.tombstones);
    std::printf("stored octets:   %lld\n", static_cast<long long>(t.octets));
    if (limit > 0) {
        std::printf("charged octets:  %lld of %lld (%lld%%)\n",
                    static_cast<long long>(t.charged),
                    static_cast<long long>(limit),
                    static_cast<long long>(t.charged * 100 / limit));
    } else {
        std::printf("charged octets:  %lld (no limit)\n",
                    static_cast<long long>(t.charged));
    }
}

} // namespace

int main(int argc, char** argv)
{
    log::init("resumedb");
    log::set_fatal_hook(fatal_to_stderr);

    // The command line: options, then exactly one action.
    std::string config_dir;
    std::string spool_dir;
    std::string purge_id;
    char action = 0;
    bool repair = false;
    int c;
    while ((c = getopt(argc, argv, "c:d:lsep:Crh")) != -1) {
        switch (c) {
        case 'c':
            config_dir = optarg;
            break;
        case 'd':
            spool_dir = optarg;
            break;
        case 'l':
        case 's':
        case 'e':
        case 'p':
        case 'C':
            if (action != 0 && action != c) {
                log::fatal("specify only one of -l, -s, -e, -p, -C");
            }
            action = static_cast<char>(c);
            if (c == 'p') {
                purge_id = optarg;
            }
            break;
        case 'r':
            repair = true;
            break;
        case 'h':
            std::fputs(usage_text, stdout);
            return 0;
        default:
            std::fputs(usage_text, stderr);
            return 1;
        }
    }
    if (optind < argc || action == 0) {
        std::fputs(usage_text, stderr);
        return 1;
    }
    if (repair && action != 'C') {
        log::fatal("-r goes with -C only");
    }

    // main.cf: from -c, else $MAIL_CONFIG, else /etc/postfix. With -d
    // and no main.cf there, the compiled-in defaults size the spool.
    mail::Config config;
    if (config_dir.empty()) {
        const char* env = std::getenv("MAIL_CONFIG");
        config_dir = env != nullptr && *env ? env : "/etc/postfix";
    }
    std::string main_cf = config_dir + "/main.cf";
    if (spool_dir.empty() || access(main_cf.c_str(), R_OK) == 0) {
        config.read_main_cf(config_dir);
    }
    resumedb::Limits limits = resumedb::limits_from(config);
    if (spool_dir.empty()) {
        spool_dir = resumedb::spool_directory(config);
    }

    // Nothing to show before smtpd has made the spool; and we do not
    // make it here, or it would belong to whoever ran us.
    struct stat st;
    if (lstat(spool_dir.c_str(), &st) != 0) {
        if (errno != ENOENT) {
            log::fatal("{}: {}", spool_dir, std::strerror(errno));
        }
        if (action == 'l') {
            std::puts("Resume spool is empty");
        } else if (action == 's') {
            std::puts("partial entries: 0\ntombstones:      0");
        }
        if (action == 'p') {
            log::fatal("{}: no such directory", spool_dir);
        }
        return 0;
    }
    if (!S_ISDIR(st.st_mode)) {
        log::fatal("{}: not a directory", spool_dir);
    }

    // Root, or the owner of the spool (mail_owner); nobody else.
    uid_t me = geteuid();
    if (me != 0 && me != st.st_uid) {
        log::fatal("{} belongs to uid {}: run resumedb as root or as that "
                   "user",
                   spool_dir, static_cast<unsigned>(st.st_uid));
    }

    auto spool = resumedb::Spool::open(spool_dir, limits);
    if (!spool) {
        log::fatal("{}", spool.error().text);
    }
    resumedb::Spool& s = **spool;

    switch (action) {
    case 'l':
        list(s);
        return 0;
    case 's':
        totals(s);
        return 0;
    case 'e':
        std::printf("%d entries expired\n", s.expire(std::time(nullptr)));
        return 0;
    case 'p': {
        auto n = s.purge(purge_id);
        if (!n) {
            log::fatal("{}", n.error().text);
        }
        std::printf("%d entries purged\n", *n);
        if (*n == 0 && purge_id != "ALL") {
            warn(purge_id + ": no such entry, or a live session owns it");
            return 1;
        }
        return 0;
    }
    case 'C': {
        std::vector<std::string> problems = s.check(repair);
        for (const std::string& p : problems) {
            std::printf("%s\n", p.c_str());
        }
        if (repair && !problems.empty()) {
            // What is left after the repair decides the exit status.
            problems = s.check(false);
            for (const std::string& p : problems) {
                std::printf("%s (still there)\n", p.c_str());
            }
        }
        return problems.empty() ? 0 : 1;
    }
    }
    return 1;
}
