// SPDX-License-Identifier: MIT
// NAME
//   rcpt_maps.cc - the unknown-recipient check
// DESCRIPTION
//   See rcpt_maps.h for the order of the steps and the replies; this file
//   opens the tables and builds the lookup keys.
// SEE ALSO
//   rcpt_maps.h
#include "smtpd/rcpt_maps.h"

#include "common/mail/log.h"
#include "common/util/text.h"
#include "smtpd/address.h"
#include <fmt/format.h>
#include <unistd.h>

namespace rs::smtpd {

namespace {

// Open a map list parameter, logging each table that failed the way
// Postfix's daemons do; it stays in the list and answers 451.
mail::DictList open_maps(mail::Config& config, std::string_view param)
{
    std::vector<std::string> errors;
    mail::DictList list = mail::DictList::open(config.str(param), 0, &errors);
    for (const std::string& e : errors) {
        log::warning("{}", e);
    }
    return list;
}

// The proxy: tables proxymap(8) will serve: those named with proxy: in
// proxy_read_maps as proxymap evaluates it, from main.cf alone (master.cf
// -o overrides of smtpd do not reach proxymap).
std::vector<std::string> proxy_approved(mail::Config& config)
{
    std::string value = config.str("proxy_read_maps");
    std::string dir = config.str("config_directory");
    if (config.is_set("config_directory")
        && access((dir + "/main.cf").c_str(), R_OK) == 0) {
        mail::Config main_cf;
        main_cf.read_main_cf(dir);
        value = main_cf.str("proxy_read_maps");
    }
    std::vector<std::string> out;
    for (const std::string& spec : mail::split_map_list(value)) {
        if (text::istarts_with(spec, "proxy:")) {
            out.push_back(spec);
        }
    }
    return out;
}

// Postfix's smtpd opens its proxy: tables at start-up and proxymap
// refuses one it was not told to serve; smtpd then exits (observed):
// fatal: proxymap service is not configured for table "unix:passwd.byname"
// We open such tables ourselves, so we refuse them here to stay alike.
void require_proxy_approved(mail::Config& config,
                            const std::vector<std::string>& approved,
                            std::string_view param)
{
    for (const std::string& spec : mail::split_map_list(config.str(param))) {
        if (!text::istarts_with(spec, "proxy:")) {
            continue;
        }
        bool ok = false;
        for (const std::string& a : approved) {
            ok = ok || a == spec;
        }
        if (!ok) {
            log::fatal("proxymap service is not configured for table \"{}\"",
                       spec.substr(6));
        }
    }
}

// "User unknown in ..." with the DSN that matches the code's class.
std::string unknown_reply(int code, std::string_view rcpt,
                          std::string_view table)
{
    return fmt::format("{} {}.1.1 <{}>: Recipient address rejected: User "
                       "unknown in {} table",
                       code, code / 100, rcpt, table);
}

// The reply for the error(8) transport: its nexthop is "[D.S.N ]text".
std::string error_transport_reply(std::string_view rcpt,
                                  std::string_view nexthop)
{
    // A leading 4.x.y or 5.x.y is the status; the reply code follows its
    // class. Anything else is a permanent "5.1.1".
    std::string dsn = "5.1.1";
    std::string_view t = text::trim(nexthop);
    size_t sp = t.find(' ');
    std::string_view first = t.substr(0, sp);
    bool is_dsn =
        first.size() >= 5 && (first[0] == '4' || first[0] == '5')
        && first[1] == '.'
        && first.find_first_not_of("0123456789.") == std::string_view::npos;
    if (is_dsn) {
        dsn = std::string(first);
        t = sp == std::string_view::npos ? std::string_view()
                                         : text::trim(t.substr(sp));
    }
    return fmt::format("{}50 {} <{}>: Recipient address rejected: {}", dsn[0],
                       dsn, rcpt, t);
}

// The local part before the last '@', and the domain after it.
std::pair<std::string_view, std::string_view>
split_address(std::string_view address)
{
    size_t at = address.rfind('@');
    if (at == std::string_view::npos) {
        return {address, {}};
    }
    return {address.substr(0, at), address.substr(at + 1)};
}

} // namespace

RecipientMaps::RecipientMaps(mail::Config& config)
{
    // Nothing to open when the check is off.
    enabled_ = config.boolean("smtpd_reject_unlisted_recipient");
    for (const std::string& opt : config.list("receive_override_options")) {
        if (text::iequals(opt, "no_unknown_recipient_checks")) {
            enabled_ = false;
        }
    }
    if (!enabled_) {
        return;
    }

    // Codes and the names the check compares with.
    local_code_ =
        config.integer("unknown_local_recipient_reject_code", 400, 599);
    alias_code_ = config.integer("unknown_virtual_alias_reject_code", 400, 599);
    mailbox_code_ =
        config.integer("unknown_virtual_mailbox_reject_code", 400, 599);
    relay_code_ =
        config.integer("unknown_relay_recipient_reject_code", 400, 599);
    double_bounce_ = text::lower(config.str("double_bounce_sender"));
    delimiters_ = config.str("recipient_delimiter");
    flags_text_ = config.boolean("smtputf8_enable")
                      ? "(0,lock|fold_fix|utf8_request)"
                      : "(0,lock|fold_fix)";

    // proxy: tables that Postfix's proxymap would refuse are fatal.
    std::vector<std::string> approved = proxy_approved(config);
    for (std::string_view param :
         {"canonical_maps", "recipient_canonical_maps", "virtual_alias_maps",
          "local_recipient_maps", "virtual_mailbox_maps",
          "relay_recipient_maps"}) {
        require_proxy_approved(config, approved, param);
    }

    // The tables, opened now: after chroot the files are out of reach.
    canonical_ = open_maps(config, "canonical_maps");
    rcpt_canonical_ = open_maps(config, "recipient_canonical_maps");
    virtual_alias_ = open_maps(config, "virtual_alias_maps");
    local_ = open_maps(config, "local_recipient_maps");
    virtual_mailbox_ = open_maps(config, "virtual_mailbox_maps");
    relay_ = open_maps(config, "relay_recipient_maps");
}

std::vector<std::string> RecipientMaps::lookup_keys(std::string_view address,
                                                    bool local) const
{
    auto [localpart, domain] = split_address(address);

    // The extension starts at the first delimiter character, but never at
    // the start of the local part; with "-" as delimiter, owner-list and
    // list-request are names of their own (aliases(5) conventions).
    std::string_view base = localpart;
    if (!delimiters_.empty()) {
        size_t d = localpart.find_first_of(delimiters_, 1);
        bool dash_name =
            d != std::string_view::npos && localpart[d] == '-'
            && (text::istarts_with(localpart, "owner-")
                || (localpart.size() >= 8
                    && text::iequals(localpart.substr(localpart.size() - 8),
                                     "-request")));
        if (d != std::string_view::npos && !dash_name) {
            base = localpart.substr(0, d);
        }
    }
    bool has_ext = base.size() != localpart.size();

    // Full address, without the extension, the bare local parts when the
    // domain is ours, and finally the domain catch-all.
    std::vector<std::string> keys;
    std::string at_domain = domain.empty() ? "" : "@" + std::string(domain);
    keys.push_back(std::string(localpart) + at_domain);
    if (has_ext) {
        keys.push_back(std::string(base) + at_domain);
    }
    if (local) {
        keys.emplace_back(localpart);
        if (has_ext) {
            keys.emplace_back(base);
        }
    }
    if (!at_domain.empty()) {
        keys.push_back(at_domain);
    }

    // A local part that needs quotes is looked up quoted first, then as
    // it is: Postfix 3.7 finds "q..1"@x under either spelling (observed).
    std::vector<std::string> both;
    for (std::string& k : keys) {
        if (k.empty()) {
            continue; // an empty local part is no key
        }
        std::string ext = k.front() == '@' ? k : external_form(k);
        if (ext != k) {
            both.push_back(std::move(ext));
        }
        both.push_back(std::move(k));
    }
    return both;
}

Result<bool> RecipientMaps::listed(mail::DictList& maps,
                                   std::string_view address, bool local)
{
    for (const std::string& key : lookup_keys(address, local)) {
        auto r = maps.lookup(key);
        if (!r) {
            log::warning("{} lookup error for \"{}\"", r.error().text,
                         text::printable(key));
            return tl::unexpected<Error>(r.error());
        }
        if (r->has_value()) {
            return true;
        }
    }
    return false;
}

std::optional<std::string>
RecipientMaps::check(const Resolved& r, std::string_view recipient_internal)
{
    if (!enabled_) {
        return std::nullopt;
    }
    std::string rcpt(recipient_internal);
    std::string temp_fail =
        fmt::format("451 4.3.0 <{}>: Temporary lookup failure", rcpt);

    // trivial-rewrite could not decide: so we cannot either.
    if (r.flags & RESOLVE_FLAG_FAIL) {
        return temp_fail;
    }
    bool local = (r.flags & RESOLVE_CLASS_LOCAL) != 0;

    // 1. An address that a rewrite table maps is known: the rewritten
    // address is what gets delivered.
    for (mail::DictList* maps :
         {&canonical_, &rcpt_canonical_, &virtual_alias_}) {
        if (maps->empty()) {
            continue;
        }
        auto hit = listed(*maps, r.recipient, local);
        if (!hit) {
            return temp_fail;
        }
        if (*hit) {
            return std::nullopt;
        }
    }

    // 2. A virtual alias domain has no mailboxes of its own. This comes
    // before the error transport: trivial-rewrite resolves such an
    // address to error:, but the reply code is the alias class's own.
    if (r.flags & RESOLVE_CLASS_ALIAS) {
        return unknown_reply(alias_code_, rcpt, "virtual alias");
    }

    // 3. The error(8) transport bounces everything: say so now.
    if (r.transport == "error") {
        return error_transport_reply(rcpt, r.nexthop);
    }

    // 4. Local users; the role accounts that bounces and RFC 5321 need
    // are always accepted.
    if (local && !local_.empty()) {
        std::string lp = text::lower(split_address(r.recipient).first);
        if (lp == "postmaster" || lp == "mailer-daemon"
            || lp == double_bounce_) {
            return std::nullopt;
        }
        auto hit = listed(local_, r.recipient, true);
        if (!hit) {
            return temp_fail;
        }
        if (!*hit) {
            return unknown_reply(local_code_, rcpt, "local recipient");
        }
        return std::nullopt;
    }

    // 5. and 6. Virtual mailboxes and relay recipients, when listed.
    struct ClassTable {
        unsigned flag;
        mail::DictList* maps;
        int code;
        const char* table;
    };
    for (const ClassTable& c :
         {ClassTable{RESOLVE_CLASS_VIRTUAL, &virtual_mailbox_, mailbox_code_,
                     "virtual mailbox"},
          ClassTable{RESOLVE_CLASS_RELAY, &relay_, relay_code_,
                     "relay recipient"}}) {
        if (!(r.flags & c.flag) || c.maps->empty()) {
            continue;
        }
        auto hit = listed(*c.maps, r.recipient, false);
        if (!hit) {
            return temp_fail;
        }
        if (!*hit) {
            return unknown_reply(c.code, rcpt, c.table);
        }
    }
    return std::nullopt;
}

std::optional<std::string> RecipientMaps::changed() const
{
    for (const mail::DictList* maps :
         {&canonical_, &rcpt_canonical_, &virtual_alias_, &local_,
          &virtual_mailbox_, &relay_}) {
        if (auto name = maps->changed()) {
            return *name + flags_text_;
        }
    }
    return std::nullopt;
}

} // namespace rs::smtpd
