// SPDX-License-Identifier: MIT
// NAME
//   limits.h - the smtpd_resume_* parameters that size the resume spool
// DESCRIPTION
//   limits_from() reads the spool's caps from main.cf (and -o), checking
//   each value as Postfix's typed getters do: a bad value is fatal and
//   the message names the parameter. spool_directory() says where the
//   spool is: smtpd_resume_spool_directory, relative to queue_directory
//   unless it is absolute. bind_client_from() reads what an entry is
//   bound to for clients that did not authenticate.
//
//   These are start-up functions (they may call log::fatal()).
// SEE ALSO
//   spool.h, resumedb(1), resume-smtpd(8).
#pragma once

#include "common/mail/config.h"
#include "resumedb/spool.h"

#include <string>

namespace rs::resumedb {

/// The spool's caps from smtpd_resume_spool_size_limit,
/// smtpd_resume_client_limit, smtpd_resume_entry_size_limit,
/// smtpd_resume_ttl, smtpd_resume_max_lifetime, smtpd_resume_max_resumes,
/// smtpd_resume_checkpoint_size and smtpd_resume_checkpoint_time.
Limits limits_from(mail::Config& config);

/// The spool directory's path; fatal when the parameter is empty.
std::string spool_directory(mail::Config& config);

/// smtpd_resume_bind_client: what of an unauthenticated client an entry
/// is bound to.
enum class BindClient {
    address, ///< the client's IP address
    network, ///< the client's network, as smtpd defines it
    none,    ///< nothing: the token and the envelope only
};
BindClient bind_client_from(mail::Config& config);

} // namespace rs::resumedb
