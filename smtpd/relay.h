// SPDX-License-Identifier: MIT
// NAME
//   relay.h - the minimal restriction language: relay control
// DESCRIPTION
//   Evaluates smtpd_relay_restrictions, then smtpd_recipient_restrictions,
//   for one RCPT, as Postfix 3.7 does, with the restrictions this issue
//   needs: permit, reject, defer, defer_if_permit, permit_mynetworks,
//   reject_unauth_destination, defer_unauth_destination,
//   permit_auth_destination, permit_sasl_authenticated,
//   reject_unknown_... (not yet). An unknown restriction is a
//   configuration error: Postfix answers "451 4.3.5 Server configuration
//   error" and logs a warning; so do we. Destination classes come from
//   trivial-rewrite (RewriteClient::resolve) so that they are Postfix's
//   own judgement.
#pragma once

#include "common/mail/config.h"
#include "smtpd/rewrite.h"
#include <functional>
#include <string>
#include <vector>

namespace rs::smtpd {

struct RcptQuery {
    std::string client_addr; ///< numeric
    std::string client_name;
    std::string helo;
    std::string sender;    ///< internal form
    std::string recipient; ///< internal form
    std::string recipient_typed; ///< as typed, for the reply text <...>
    std::string sasl_username; ///< empty when not authenticated
};

struct CheckResult {
    bool accepted = true;
    std::string reply;    ///< when refused: "554 5.7.1 <x>: Relay access denied"
    std::string warning;  ///< a configuration warning to log, if any
};

class RelayChecker {
public:
    /// Reads mynetworks, smtpd_relay_restrictions,
    /// smtpd_recipient_restrictions and the reply codes
    /// (relay_domains_reject_code, unknown ..., defer_code) at start-up;
    /// a bad mynetworks is fatal as in Postfix.
    RelayChecker(mail::Config& config, RewriteClient& rewrite);

    bool in_mynetworks(std::string_view client_addr) const;

    void check_rcpt(const RcptQuery& q, std::function<void(CheckResult)> done);

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

} // namespace rs::smtpd
