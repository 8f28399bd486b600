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
//   own judgement: the recipient is canonicalized (rewrite, rule local)
//   and resolved with the sender, and it is an authorized destination
//   when trivial-rewrite says local, alias or virtual class, or relay
//   class (relay_domains matched), and it carries no sender-specified
//   routing (RESOLVE_FLAG_ROUTED) unless allow_untrusted_routing = yes.
//
//   Replies, as Postfix 3.7.11 gives them (observed):
//     reject_unauth_destination  554 5.7.1 <r>: Relay access denied
//     defer_unauth_destination   454 4.7.1 <r>: Relay access denied
//     reject                     554 5.7.1 <r>: Recipient address rejected:
//     Access denied defer                      450 4.3.2 <r>: Recipient address
//     rejected: Try again later defer_if_permit            450 4.7.0 <r>:
//     Recipient address rejected: defer_if_permit requested check_relay_domains
//     554 5.7.1 <r>: Recipient address rejected: Relay access denied
//   with <r> the recipient in internal (unquoted) form, and the codes
//   from relay_domains_reject_code, reject_code and defer_code.
//   A bare "postmaster" recipient is accepted without any restriction,
//   as Postfix does. reject_unauth_pipelining decides nothing at RCPT here (the
//   session knows about pipelining). permit_sasl_authenticated matches when
//   sasl_username is set. A bad mynetworks is not fatal in Postfix 3.7:
//   it logs "warning: mynetworks: ..." and permit_mynetworks answers
//   "451 4.3.0 <r>: Temporary lookup failure"; so do we (the constructor
//   comment below predates this observation). Postfix restrictions this
//   checker does not implement yet are refused like unknown ones, 451
//   4.3.5, with the warning 'unsupported smtpd restriction: "x"'.
#pragma once

#include "common/mail/config.h"
#include "smtpd/rewrite.h"
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace rs::smtpd {

struct RcptQuery {
    std::string client_addr; ///< numeric
    std::string client_name;
    std::string helo;
    std::string sender;          ///< internal form
    std::string recipient;       ///< internal form
    std::string recipient_typed; ///< as typed, for the reply text <...>
    std::string sasl_username;   ///< empty when not authenticated
};

struct CheckResult {
    bool accepted = true;
    std::string reply;   ///< when refused: "554 5.7.1 <x>: Relay access denied"
    std::string warning; ///< a configuration warning to log, if any
};

/// Postfix's start-up check: at least one of reject_unauth_destination,
/// defer_unauth_destination, reject, defer, defer_if_permit or
/// check_relay_domains must appear in one of the two lists. Returns the
/// fatal message text when none does.
std::optional<std::string>
relay_safety_error(const std::vector<std::string>& relay_restrictions,
                   const std::vector<std::string>& recipient_restrictions);

/// relay_safety_error() on the configuration; log::fatal() on failure
/// (the RelayChecker constructor calls it too).
void require_relay_safe(mail::Config& config);

/// mynetworks when main.cf and -o leave it unset: Postfix computes it
/// from mynetworks_style (host: each interface address alone; subnet:
/// each interface's network; class: the IPv4 class A/B/C network) over
/// the inet_protocols families, e.g. "127.0.0.1/32 192.0.2.2/32
/// [::1]/128" for host.
std::string computed_mynetworks(mail::Config& config);

class RelayChecker {
public:
    /// Reads mynetworks, smtpd_relay_restrictions,
    /// smtpd_recipient_restrictions and the reply codes
    /// (relay_domains_reject_code, unknown ..., defer_code) at start-up;
    /// a bad mynetworks is fatal as in Postfix.
    RelayChecker(mail::Config& config, RewriteClient& rewrite);

    bool in_mynetworks(std::string_view client_addr) const;

    /// `done` always runs later from the event loop, never inside this
    /// call, even when no lookup was needed.
    void check_rcpt(const RcptQuery& q, std::function<void(CheckResult)> done);

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

} // namespace rs::smtpd
