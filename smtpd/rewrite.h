// SPDX-License-Identifier: MIT
// NAME
//   rewrite.h - trivial-rewrite(8) client and the relay-control checks
// DESCRIPTION
//   Address classification is asked of Postfix's own trivial-rewrite over
//   private/$rewrite_service_name (attr0, persistent, non-blocking), so
//   that mydestination, $myhostname, localhost, [address] literals,
//   relay_domains, virtual domains and transport settings are judged
//   exactly as Postfix judges them. Requests: rewrite (rule "local") and
//   resolve; a one-entry cache per request type, 30 s, as Postfix keeps.
//
//   NetworkList matches client addresses against mynetworks-style lists
//   (a.b.c.d, a.b.c.d/n, [ipv6], [ipv6]/n, ipv6/n); a `type:table` or
//   hostname entry is not supported yet and is reported by parse().
#pragma once

#include "common/util/result.h"
#include <event2/event.h>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace rs::smtpd {

/// Resolve flags (resolve_clnt.h values).
inline constexpr unsigned RESOLVE_FLAG_FINAL = 1;
inline constexpr unsigned RESOLVE_FLAG_ROUTED = 2;
inline constexpr unsigned RESOLVE_FLAG_ERROR = 4;
inline constexpr unsigned RESOLVE_FLAG_FAIL = 8;
inline constexpr unsigned RESOLVE_CLASS_LOCAL = 256;
inline constexpr unsigned RESOLVE_CLASS_ALIAS = 512;
inline constexpr unsigned RESOLVE_CLASS_VIRTUAL = 1024;
inline constexpr unsigned RESOLVE_CLASS_RELAY = 2048;
inline constexpr unsigned RESOLVE_CLASS_DEFAULT = 4096;

struct Resolved {
    std::string transport, nexthop, recipient;
    unsigned flags = 0;
};

class RewriteClient {
public:
    /// `socket_path` relative to the working directory (queue directory).
    RewriteClient(event_base* base, std::string socket_path);
    ~RewriteClient();
    RewriteClient(const RewriteClient&) = delete;
    RewriteClient& operator=(const RewriteClient&) = delete;

    /// Canonicalize an address (request=rewrite rule=local).
    void rewrite(std::string address,
                 std::function<void(Result<std::string>)> done);
    /// Resolve an address (request=resolve).
    void resolve(std::string sender, std::string address,
                 std::function<void(Result<Resolved>)> done);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

class NetworkList {
public:
    /// Parse a mynetworks-style value; the error names the bad entry.
    [[nodiscard]] static Result<NetworkList> parse(std::string_view value);
    /// `addr` is numeric, without "IPv6:" prefix.
    bool match(std::string_view addr) const;

private:
    struct Net {
        int family = 0;
        unsigned char bytes[16] = {};
        int prefix = 0;
    };
    std::vector<Net> nets_;
};

} // namespace rs::smtpd
