// SPDX-License-Identifier: MIT
// NAME
//   relay.cc - the minimal restriction language: relay control
// DESCRIPTION
//   One RCPT is judged by walking smtpd_relay_restrictions, then
//   smtpd_recipient_restrictions, left to right. In each list a permit
//   ends that list, a reject or defer ends the whole check, and the end
//   of a list decides nothing; when both lists let the recipient through
//   a pending defer_if_permit turns the permit into a deferral. The walk
//   is asynchronous: a destination restriction asks trivial-rewrite
//   (rewrite, then resolve) once per check and remembers the answer.
//   Reply texts and codes were taken from Postfix 3.7.11's smtpd with
//   each restriction configured in turn (see relay.h).
// BUGS
//   check_relay_domains does not look at the client's host name.
// SEE ALSO
//   postconf(5): smtpd_relay_restrictions, smtpd_recipient_restrictions
#include "smtpd/relay.h"

#include "common/mail/log.h"
#include "common/util/text.h"
#include <algorithm>
#include <arpa/inet.h>
#include <cstring>
#include <fmt/format.h>
#include <ifaddrs.h>
#include <memory>
#include <netinet/in.h>

namespace rs::smtpd {

namespace {

/// The restrictions that stop open relaying, as Postfix counts them.
constexpr std::string_view kRelaySafe[] = {
    "reject_unauth_destination", "defer_unauth_destination", "reject", "defer",
    "defer_if_permit",           "check_relay_domains"};

/// Postfix restrictions we know by name but do not implement yet: they
/// are refused as a configuration error rather than skipped, so that a
/// policy the administrator wrote never silently weakens.
constexpr std::string_view kNotYet[] = {
    "permit_mx_backup",
    "permit_tls_clientcerts",
    "permit_tls_all_clientcerts",
    "reject_non_fqdn_recipient",
    "reject_unknown_recipient_domain",
    "reject_unlisted_recipient",
    "reject_unverified_recipient",
    "check_recipient_access",
    "check_client_access",
    "check_sender_access",
    "check_policy_service",
    "reject_rbl_client",
    "reject_rhsbl_recipient",
    "permit_inet_interfaces",
    "reject_unknown_client_hostname",
    "reject_unknown_reverse_client_hostname",
    "reject_non_fqdn_sender",
    "reject_unknown_sender_domain",
    "reject_unlisted_sender",
    "reject_sender_login_mismatch",
    "reject_multi_recipient_bounce",
    "warn_if_reject",
    "defer_if_reject",
    "permit_dnswl_client",
    "check_recipient_mx_access",
    "check_recipient_ns_access",
    "check_recipient_a_access",
    "sleep",
    "reject_plaintext_session",
    "reject_unauth_sender_login_mismatch",
    "check_ccert_access",
    "check_sasl_access",
    "reject_known_sender_login_mismatch"};

bool in(std::string_view name, const auto& table)
{
    for (std::string_view t : table) {
        if (text::iequals(name, t)) {
            return true;
        }
    }
    return false;
}

// A 4xx code from a 5xx one (554 -> 454), for defer_unauth_destination.
int soft(int code)
{
    return 400 + code % 100;
}

// The enhanced status class follows the reply code's first digit.
std::string dsn(int code, std::string_view rest)
{
    return fmt::format("{}.{}", code / 100, rest);
}

} // namespace

std::optional<std::string>
relay_safety_error(const std::vector<std::string>& relay_restrictions,
                   const std::vector<std::string>& recipient_restrictions)
{
    for (const auto* list : {&relay_restrictions, &recipient_restrictions}) {
        for (const std::string& name : *list) {
            if (in(name, kRelaySafe)) {
                return std::nullopt;
            }
        }
    }
    return std::string("in parameter smtpd_relay_restrictions or "
                       "smtpd_recipient_restrictions, specify at least one "
                       "working instance of: reject_unauth_destination, "
                       "defer_unauth_destination, reject, defer, "
                       "defer_if_permit or check_relay_domains");
}

void require_relay_safe(mail::Config& config)
{
    auto err = relay_safety_error(config.list("smtpd_relay_restrictions"),
                                  config.list("smtpd_recipient_restrictions"));
    if (err) {
        log::fatal("{}", *err);
    }
}

namespace {

// The checker's configuration, shared by the checks in progress.
struct RelayState {
    RewriteClient& rewrite;
    std::vector<std::string> lists[2];
    std::optional<NetworkList> mynetworks;
    std::string mynetworks_error; ///< why mynetworks did not parse
    int relay_code = 554;
    int reject_code = 554;
    int defer_code = 450;
    bool allow_untrusted_routing = false;

    explicit RelayState(RewriteClient& rw) : rewrite(rw) {}
};

// One check in progress. It owns itself through the callbacks it hands
// to the RewriteClient, and keeps the checker's state alive.
struct Eval : std::enable_shared_from_this<Eval> {
    std::shared_ptr<RelayState> impl;
    RcptQuery q;
    std::function<void(CheckResult)> done;
    int list = 0;
    size_t item = 0;
    std::string defer_if_permit; ///< the pending deferral, if any
    std::optional<bool> authorized;
    std::optional<std::string> lookup_error;
    std::string warning;

    std::string rcpt() const { return "<" + q.recipient + ">"; }

    bool in_call = true; ///< still inside check_rcpt()
    CheckResult result;

    void finish(bool accepted, std::string reply)
    {
        result.accepted = accepted;
        result.reply = std::move(reply);
        result.warning = std::move(warning);

        // Inside check_rcpt() the answer waits for the loop, so that the
        // session never re-enters itself.
        if (in_call) {
            auto* hold = new std::shared_ptr<Eval>(shared_from_this());
            timeval now{0, 0};
            if (event_base_once(impl->rewrite.base(), -1, EV_TIMEOUT, deliver,
                                hold, &now)
                == 0) {
                return;
            }
            delete hold;
        }
        auto d = std::move(done);
        d(std::move(result));
    }

    static void deliver(evutil_socket_t, short, void* arg) noexcept
    {
        std::unique_ptr<std::shared_ptr<Eval>> hold(
            static_cast<std::shared_ptr<Eval>*>(arg));
        auto d = std::move((*hold)->done);
        d(std::move((*hold)->result));
    }

    void refuse(std::string reply) { finish(false, std::move(reply)); }

    void warn(std::string text)
    {
        // The session logs one warning; the first is the cause.
        if (warning.empty()) {
            warning = std::move(text);
        }
    }

    // Ask trivial-rewrite about the destination once, then go on.
    void lookup()
    {
        auto self = shared_from_this();
        impl->rewrite.rewrite(q.recipient, [self](Result<std::string> canon) {
            if (!canon) {
                self->lookup_error = canon.error().text;
                self->step();
                return;
            }
            self->impl->rewrite.resolve(
                self->q.sender, *canon, [self](Result<Resolved> res) {
                    if (!res) {
                        self->lookup_error = res.error().text;
                    } else if (res->flags & RESOLVE_FLAG_FAIL) {
                        self->lookup_error = "resolve failed";
                    } else {
                        self->authorized = self->judge(*res);
                    }
                    self->step();
                });
        });
    }

    // permit_auth_destination's rule, on trivial-rewrite's answer.
    bool judge(const Resolved& r) const
    {
        // A recipient without a domain is ours (Postfix says this cannot
        // happen after canonicalization, and permits it).
        if (r.recipient.find('@') == std::string::npos) {
            return true;
        }

        // Sender-specified routing (user@elsewhere@ours, %, !) left in a
        // non-local address: not ours to pass on, unless trusted.
        if (!impl->allow_untrusted_routing && (r.flags & RESOLVE_FLAG_ROUTED)) {
            return false;
        }
        return (r.flags
                & (RESOLVE_CLASS_LOCAL | RESOLVE_CLASS_ALIAS
                   | RESOLVE_CLASS_VIRTUAL | RESOLVE_CLASS_RELAY))
               != 0;
    }

    // Walk the lists from where we are; returns when waiting for
    // trivial-rewrite or when done.
    void step()
    {
        while (list < 2) {
            const auto& names = impl->lists[list];
            if (item >= names.size()) {
                list++;
                item = 0;
                continue;
            }
            std::string name = text::lower(names[item]);

            // Destination restrictions need the lookup first.
            bool needs_dest = name == "reject_unauth_destination"
                              || name == "defer_unauth_destination"
                              || name == "permit_auth_destination"
                              || name == "check_relay_domains";
            if (needs_dest && !authorized && !lookup_error) {
                lookup();
                return;
            }
            if (needs_dest && lookup_error) {
                warn(*lookup_error);
                refuse(fmt::format("451 4.3.0 {}: Temporary lookup failure",
                                   rcpt()));
                return;
            }
            item++;

            if (name == "permit") {
                next_list();
            } else if (name == "reject") {
                refuse(fmt::format(
                    "{} {} {}: Recipient address rejected: Access denied",
                    impl->reject_code, dsn(impl->reject_code, "7.1"), rcpt()));
                return;
            } else if (name == "defer") {
                refuse(fmt::format(
                    "{} {} {}: Recipient address rejected: Try again later",
                    impl->defer_code, dsn(impl->defer_code, "3.2"), rcpt()));
                return;
            } else if (name == "defer_if_permit") {
                if (defer_if_permit.empty()) {
                    defer_if_permit = fmt::format(
                        "{} {} {}: Recipient address rejected: "
                        "defer_if_permit requested",
                        impl->defer_code, dsn(impl->defer_code, "7.0"), rcpt());
                }
            } else if (name == "permit_mynetworks") {
                if (!impl->mynetworks) {
                    warn("mynetworks: " + impl->mynetworks_error);
                    refuse(fmt::format("451 4.3.0 {}: Temporary lookup failure",
                                       rcpt()));
                    return;
                }
                if (impl->mynetworks->match(q.client_addr)) {
                    next_list();
                }
            } else if (name == "permit_sasl_authenticated") {
                if (!q.sasl_username.empty()) {
                    next_list();
                }
            } else if (name == "reject_unauth_destination") {
                if (!*authorized) {
                    refuse(fmt::format("{} {} {}: Relay access denied",
                                       impl->relay_code,
                                       dsn(impl->relay_code, "7.1"), rcpt()));
                    return;
                }
            } else if (name == "defer_unauth_destination") {
                if (!*authorized) {
                    int code = soft(impl->relay_code);
                    refuse(fmt::format("{} {} {}: Relay access denied", code,
                                       dsn(code, "7.1"), rcpt()));
                    return;
                }
            } else if (name == "permit_auth_destination") {
                if (*authorized) {
                    next_list();
                }
            } else if (name == "check_relay_domains") {
                warn("support for restriction \"check_relay_domains\" will "
                     "be removed from Postfix; use \"reject_unauth_"
                     "destination\" instead");
                if (*authorized) {
                    next_list();
                } else {
                    refuse(fmt::format(
                        "{} {} {}: Recipient address rejected: Relay access "
                        "denied",
                        impl->relay_code, dsn(impl->relay_code, "7.1"),
                        rcpt()));
                    return;
                }
            } else if (name == "reject_unauth_pipelining") {
                // Decided by the session, which sees the pipelining.
            } else if (in(name, kNotYet)) {
                warn(fmt::format("unsupported smtpd restriction: \"{}\"",
                                 names[item - 1]));
                refuse("451 4.3.5 Server configuration error");
                return;
            } else {
                warn(fmt::format("unknown smtpd restriction: \"{}\"",
                                 names[item - 1]));
                refuse("451 4.3.5 Server configuration error");
                return;
            }
        }

        // Both lists passed: a pending defer_if_permit applies now.
        if (!defer_if_permit.empty()) {
            refuse(std::move(defer_if_permit));
            return;
        }
        finish(true, "");
    }

    void next_list()
    {
        list++;
        item = 0;
    }
};

} // namespace

std::string computed_mynetworks(mail::Config& config)
{
    // Which families: inet_protocols as Postfix reads it.
    std::string protocols = text::lower(config.str("inet_protocols"));
    bool all = protocols.find("all") != std::string::npos;
    bool v4 = all || protocols.find("ipv4") != std::string::npos;
    bool v6 = all || protocols.find("ipv6") != std::string::npos;
    std::string style = text::lower(config.str("mynetworks_style"));

    // Every interface address, with its netmask, IPv4 first.
    ifaddrs* ifa = nullptr;
    if (getifaddrs(&ifa) != 0) {
        log::fatal("getifaddrs: {}", std::strerror(errno));
    }
    std::vector<std::string> out[2];
    for (ifaddrs* i = ifa; i != nullptr; i = i->ifa_next) {
        if (i->ifa_addr == nullptr || i->ifa_netmask == nullptr) {
            continue;
        }
        int family = i->ifa_addr->sa_family;
        if ((family == AF_INET && !v4) || (family == AF_INET6 && !v6)
            || (family != AF_INET && family != AF_INET6)) {
            continue;
        }
        unsigned char addr[16] = {};
        unsigned char mask[16] = {};
        int len = family == AF_INET ? 4 : 16;
        if (family == AF_INET) {
            std::memcpy(addr,
                        &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr,
                        4);
            std::memcpy(
                mask, &reinterpret_cast<sockaddr_in*>(i->ifa_netmask)->sin_addr,
                4);
        } else {
            std::memcpy(
                addr, &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr,
                16);
            std::memcpy(
                mask,
                &reinterpret_cast<sockaddr_in6*>(i->ifa_netmask)->sin6_addr,
                16);
        }

        // The prefix for the style, then the address cut to it.
        int prefix = 0;
        for (int b = 0; b < len; ++b) {
            prefix += __builtin_popcount(mask[b]);
        }
        if (style == "host") {
            prefix = len * 8;
        } else if (style == "class" && family == AF_INET) {
            prefix = addr[0] < 128 ? 8 : addr[0] < 192 ? 16 : 24;
        }
        for (int b = 0; b < len; ++b) {
            int keep = std::min(8, std::max(0, prefix - 8 * b));
            addr[b] &= static_cast<unsigned char>(0xff00 >> keep);
        }
        char buf[INET6_ADDRSTRLEN];
        inet_ntop(family, addr, buf, sizeof buf);
        std::string entry = family == AF_INET
                                ? fmt::format("{}/{}", buf, prefix)
                                : fmt::format("[{}]/{}", buf, prefix);
        auto& list = out[family == AF_INET ? 0 : 1];
        if (std::find(list.begin(), list.end(), entry) == list.end()) {
            list.push_back(entry);
        }
    }
    freeifaddrs(ifa);
    std::string value;
    for (const auto& list : out) {
        for (const std::string& e : list) {
            value += value.empty() ? e : " " + e;
        }
    }
    return value;
}

struct RelayChecker::Impl : RelayState {
    using RelayState::RelayState;
};

RelayChecker::RelayChecker(mail::Config& config, RewriteClient& rewrite)
    : impl_(std::make_shared<Impl>(rewrite))
{
    // Postfix refuses to run as an open relay.
    require_relay_safe(config);
    impl_->lists[0] = config.list("smtpd_relay_restrictions");
    impl_->lists[1] = config.list("smtpd_recipient_restrictions");
    impl_->relay_code =
        static_cast<int>(config.integer("relay_domains_reject_code", 400, 599));
    impl_->reject_code =
        static_cast<int>(config.integer("reject_code", 400, 599));
    impl_->defer_code =
        static_cast<int>(config.integer("defer_code", 400, 599));
    impl_->allow_untrusted_routing = config.boolean("allow_untrusted_routing");

    // A bad mynetworks is logged now and again when it is needed, and
    // answered then with a temporary failure, as Postfix 3.7 does.
    std::string value = config.is_set("mynetworks")
                            ? config.str("mynetworks")
                            : computed_mynetworks(config);
    auto nets = NetworkList::parse(value);
    if (nets) {
        impl_->mynetworks = std::move(*nets);
    } else {
        impl_->mynetworks_error = nets.error().text;
        log::warning("mynetworks: {}", impl_->mynetworks_error);
    }
}

bool RelayChecker::in_mynetworks(std::string_view client_addr) const
{
    return impl_->mynetworks && impl_->mynetworks->match(client_addr);
}

void RelayChecker::check_rcpt(const RcptQuery& q,
                              std::function<void(CheckResult)> done)
{
    auto e = std::make_shared<Eval>();
    e->impl = impl_;
    e->q = q;
    e->done = std::move(done);

    // RFC 5321 4.5.1: a bare "postmaster" is always taken; Postfix
    // 3.7 skips every restriction for it (observed with reject, defer).
    if (text::iequals(q.recipient, "postmaster")) {
        e->finish(true, "");
    } else {
        e->step();
    }
    e->in_call = false;
}

} // namespace rs::smtpd
