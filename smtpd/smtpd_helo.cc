// SPDX-License-Identifier: MIT
// NAME
//   smtpd_helo.cc - HELO and EHLO
// DESCRIPTION
//   HELO/EHLO name the client and start over: an open transaction is
//   dropped. EHLO lists the extensions in Postfix 3.7's order, minus
//   smtpd_discard_ehlo_keywords. ETRN is not offered (we do not run the
//   flush service); AUTH neither (no SASL yet).
// SEE ALSO
//   session.h.
#include "common/mail/log.h"
#include "common/util/text.h"
#include "smtpd/session.h"

#include <algorithm>
#include <fmt/format.h>

namespace rs::smtpd {

void Session::helo_cmd(const std::vector<std::string>& argv, bool esmtp)
{
    // The name is required; extra words are kept, joined by a space,
    // as Postfix keeps them.
    if (argv.size() < 2) {
        reply(esmtp ? "501 Syntax: EHLO hostname"
                    : "501 Syntax: HELO hostname");
        finish_cmd(false);
        return;
    }
    std::string name;
    for (size_t i = 1; i < argv.size(); ++i) {
        name += (i > 1 ? " " : "") + argv[i];
    }

    // A new greeting ends any transaction in progress.
    mail_reset();
    helo_ = text::printable(name, cfg_.line_length_limit);
    esmtp_ = esmtp;

    if (!esmtp) {
        reply("250 " + cfg_.myhostname);
        finish_cmd(true);
        return;
    }

    // The keyword list, each line "250-" but the last "250 ".
    auto offered = [&](std::string_view kw) {
        return std::find(cfg_.discard_ehlo.begin(), cfg_.discard_ehlo.end(),
                         text::lower(kw))
               == cfg_.discard_ehlo.end();
    };
    // Postfix says what it hides, unless told to hide that too.
    bool silent = !offered("silent-discard");
    std::string hidden;
    for (std::string_view kw :
         {"8BITMIME", "AUTH", "ETRN", "PIPELINING", "SIZE", "VRFY", "XCLIENT",
          "XFORWARD", "STARTTLS", "ENHANCEDSTATUSCODES", "DSN", "SMTPUTF8",
          "CHUNKING"}) {
        if (!offered(kw)) {
            hidden += (hidden.empty() ? "" : " ") + std::string(kw);
        }
    }
    if (!hidden.empty() && !silent) {
        log::info("discarding EHLO keywords: {}", hidden);
    }

    std::vector<std::string> lines{cfg_.myhostname};
    if (offered("pipelining")) {
        lines.push_back("PIPELINING");
    }
    if (offered("size")) {
        lines.push_back(cfg_.message_size_limit > 0
                            ? fmt::format("SIZE {}", cfg_.message_size_limit)
                            : "SIZE");
    }
    if (offered("vrfy") && !cfg_.disable_vrfy) {
        lines.push_back("VRFY");
    }
    if (offered("etrn")) {
        lines.push_back("ETRN");
    }
    if (offered("starttls") && env_.tls != nullptr && !tls_active_
        && !info_.standalone_stdio
        && (cfg_.tls_level == "may" || cfg_.tls_level == "encrypt")) {
        lines.push_back("STARTTLS");
    }
    if (offered("enhancedstatuscodes")) {
        lines.push_back("ENHANCEDSTATUSCODES");
    }
    if (offered("8bitmime")) {
        lines.push_back("8BITMIME");
    }
    if (offered("dsn")) {
        lines.push_back("DSN");
    }
    if (offered("smtputf8") && cfg_.smtputf8_enable) {
        lines.push_back("SMTPUTF8");
    }
    // Ours before CHUNKING, so Postfix's last line stays the last.
    if (offered("xresume") && resume_offered()) {
        std::string kw = fmt::format("XRESUME TTL={}", cfg_.resume_ttl);
        if (cfg_.resume_max_size > 0) {
            kw += fmt::format(" MAXSIZE={}", cfg_.resume_max_size);
        }
        lines.push_back(kw);
    }
    if (offered("chunking")) {
        lines.push_back("CHUNKING");
    }
    std::string text;
    for (size_t i = 0; i < lines.size(); ++i) {
        text += (i + 1 < lines.size() ? "250-" : "250 ") + lines[i];
        if (i + 1 < lines.size()) {
            text += "\r\n";
        }
    }
    reply(text);
    finish_cmd(true);
}

} // namespace rs::smtpd
