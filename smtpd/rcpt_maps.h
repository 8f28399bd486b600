// SPDX-License-Identifier: MIT
// NAME
//   rcpt_maps.h - the unknown-recipient check (reject_unlisted_recipient)
// DESCRIPTION
//   After the restrictions accepted a recipient, Postfix's smtpd refuses
//   it when its address class has a recipient table that does not list
//   it, so that mail for nobody is refused at RCPT instead of bounced
//   later (backscatter). VRFY asks the same question. The check is made
//   when smtpd_reject_unlisted_recipient = yes (the default) and
//   receive_override_options lacks no_unknown_recipient_checks, on the
//   recipient as trivial-rewrite resolved it, in this order (observed
//   against Postfix 3.7.11):
//
//     1. a match in canonical_maps, recipient_canonical_maps or
//        virtual_alias_maps: known (the address is rewritten later);
//     2. alias class (virtual_alias_domains): not found in step 1, so
//        "User unknown in virtual alias table" (trivial-rewrite gives
//        these the error transport, but the code is the class's own);
//     3. transport "error": refused with the nexthop text, "550 5.7.1
//        <r>: Recipient address rejected: TEXT" (the DSN and the code
//        class from the text, else 5.1.1);
//     4. local class, local_recipient_maps not empty: known when the
//        local part is postmaster, mailer-daemon or $double_bounce_sender
//        (any case, not with an extension), or the table lists the
//        address; else "User unknown in local recipient table";
//     5. virtual class, virtual_mailbox_maps not empty: "User unknown in
//        virtual mailbox table";
//     6. relay class, relay_recipient_maps not empty: "User unknown in
//        relay recipient table".
//
//   "Lists the address" means, as Postfix's address lookups do: the
//   full address, then without the recipient_delimiter extension, then
//   (local class only) the local part with and without the extension,
//   then "@domain"; each key with a local part that needs quotes is tried
//   quoted ("q..1"@x) and then as it is. Keys are compared in lower case.
//
//   Replies: "CODE D.S.N <r>: Recipient address rejected: User unknown in
//   ... table" with CODE from unknown_local_recipient_reject_code,
//   unknown_virtual_alias_reject_code, unknown_virtual_mailbox_reject_code
//   or unknown_relay_recipient_reject_code (550) and D.S.N 5.1.1, or
//   4.1.1 for a 4xx code. A table that cannot be read (or failed to open:
//   "warning: TABLE is unavailable. ..." at start-up) gives "451 4.3.0
//   <r>: Temporary lookup failure" and the warning 'TABLE lookup error
//   for "key"', as Postfix logs. <r> is the recipient as the session
//   passes it (internal form, as RelayChecker's replies).
// BUGS
//   soft_bounce is left to the session, which applies it to every reject.
// SEE ALSO
//   common/mail/dict.h, smtpd/relay.h, postconf(5)
#pragma once

#include "common/mail/config.h"
#include "common/mail/dict.h"
#include "smtpd/rewrite.h"
#include <optional>
#include <string>
#include <string_view>

namespace rs::smtpd {

class RecipientMaps {
public:
    /// Opens every table at start-up (before chroot). A table that fails
    /// to open is logged as a warning and answers 451 at lookup time. A
    /// proxy: table that main.cf's proxy_read_maps does not list is
    /// fatal, 'proxymap service is not configured for table "T:N"', as
    /// Postfix's smtpd dies when proxymap refuses it.
    explicit RecipientMaps(mail::Config& config);

    /// nullopt when the recipient is known (or not checked); otherwise
    /// the whole reply line for the session to send, without CRLF.
    std::optional<std::string> check(const Resolved& r,
                                     std::string_view recipient_internal);

    /// The name of a hash:/btree: table whose file was rewritten since
    /// start-up: the session owner finishes the session and exits, logging
    /// "table NAME has changed -- restarting" as Postfix does before it
    /// accepts the next connection. NAME is spelled as Postfix's handle
    /// names it (observed): "hash:/etc/aliases(0,lock|fold_fix|utf8_request)"
    /// (utf8_request only with smtputf8_enable = yes).
    std::optional<std::string> changed() const;

    /// False when no check is made at all (smtpd_reject_unlisted_recipient
    /// = no, or no_unknown_recipient_checks).
    bool enabled() const { return enabled_; }

private:
    bool enabled_ = true;
    std::string double_bounce_;
    std::string delimiters_;
    std::string flags_text_; // "(0,lock|fold_fix...)" for changed()
    int local_code_ = 550, alias_code_ = 550, mailbox_code_ = 550,
        relay_code_ = 550;
    mail::DictList canonical_, rcpt_canonical_, virtual_alias_;
    mail::DictList local_, virtual_mailbox_, relay_;

    // The keys Postfix's address lookup tries, in order.
    std::vector<std::string> lookup_keys(std::string_view address,
                                         bool local) const;
    // Search `maps` with those keys: true/false, or an Error with the
    // table warning already logged.
    Result<bool> listed(mail::DictList& maps, std::string_view address,
                        bool local);
};

} // namespace rs::smtpd
