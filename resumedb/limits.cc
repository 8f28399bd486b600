// SPDX-License-Identifier: MIT
// NAME
//   limits.cc - the smtpd_resume_* parameters that size the resume spool
// DESCRIPTION
//   Thin over Config's typed getters, which already refuse bad values
//   with Postfix's wording; what is ours is the range of each value.
// SEE ALSO
//   limits.h.
#include "resumedb/limits.h"

#include "common/mail/log.h"
#include "common/util/text.h"

#include <climits>

namespace rs::resumedb {

namespace {

// Octet counts: beyond 2^52 a value is a typo, not a disk.
constexpr int64_t OCTETS_MAX = INT64_C(1) << 52;

} // namespace

Limits limits_from(mail::Config& config)
{
    Limits l;
    l.spool_size_limit =
        config.integer("smtpd_resume_spool_size_limit", 0, OCTETS_MAX);
    l.client_limit = static_cast<int>(
        config.integer("smtpd_resume_client_limit", 0, INT_MAX));
    l.entry_size_limit =
        config.integer("smtpd_resume_entry_size_limit", 0, OCTETS_MAX);
    l.ttl = config.time("smtpd_resume_ttl", 's');
    l.max_lifetime = config.time("smtpd_resume_max_lifetime", 's');
    l.max_resumes = static_cast<int>(
        config.integer("smtpd_resume_max_resumes", 0, INT_MAX));
    l.checkpoint_size =
        config.integer("smtpd_resume_checkpoint_size", 0, OCTETS_MAX);
    l.checkpoint_time = config.time("smtpd_resume_checkpoint_time", 's');
    return l;
}

std::string spool_directory(mail::Config& config)
{
    std::string dir = config.str("smtpd_resume_spool_directory");
    if (dir.empty()) {
        log::fatal("parameter smtpd_resume_spool_directory: empty value");
    }
    if (dir.front() == '/') {
        return dir;
    }
    return config.str("queue_directory") + "/" + dir;
}

BindClient bind_client_from(mail::Config& config)
{
    std::string v = text::lower(config.str("smtpd_resume_bind_client"));
    if (v == "address") {
        return BindClient::address;
    }
    if (v == "network") {
        return BindClient::network;
    }
    if (v == "none") {
        return BindClient::none;
    }
    log::fatal("parameter smtpd_resume_bind_client: unknown value \"{}\": "
               "specify address, network or none",
               text::printable(v));
}

} // namespace rs::resumedb
