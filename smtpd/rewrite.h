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
// THREADS AND OWNERSHIP
//   One RewriteClient per event_base. Requests are answered in the order
//   they were made, one at a time, and the callbacks always run from the
//   event loop, never from inside rewrite()/resolve(). Do not destroy the
//   client from inside one of its callbacks.
// FAILURES
//   The connection is made on first use and kept. A server hang-up while
//   idle is noticed and the next request reconnects; a reply with server
//   flags != 0 (trivial-rewrite is draining) is used and the connection
//   then closed. A request that meets a hang-up, an I/O timeout
//   (ipc_timeout), a malformed reply or an unusable answer (empty
//   transport, empty recipient) is retried on a new connection one second
//   later, up to max_tries times in all; then its callback gets an Error.
//   Postfix's own client retries forever instead, blocking the session.
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

    /// The event loop the client runs on (for callers that must defer
    /// their own callbacks onto it).
    event_base* base() const;

    /// The I/O timeout (Postfix: ipc_timeout, default 3600 s).
    void set_timeout(int seconds);
    /// Attempts per request before its callback gets an Error (default 2).
    void set_max_tries(int tries);

    /// Canonicalize an address (request=rewrite rule=local). The address
    /// is given and returned in internal (unquoted) form; the client
    /// quotes it on the wire as Postfix's does.
    void rewrite(std::string address,
                 std::function<void(Result<std::string>)> done);
    /// Resolve an address (request=resolve), both in internal form.
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
        bool negate = false; ///< "!pattern": a match means no match
    };
    std::vector<Net> nets_;
};

} // namespace rs::smtpd
