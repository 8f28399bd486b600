// SPDX-License-Identifier: MIT
// NAME
//   peer.h - the client's name, as Postfix's smtpd establishes it
// DESCRIPTION
//   The client name is the reverse (PTR) name of its address, kept only
//   when a forward lookup of that name gives the same address back
//   (forward-confirmed reverse DNS); otherwise the name is "unknown".
//   The unconfirmed PTR name is still reported as reverse_name.
// BUGS
//   The lookups use getnameinfo()/getaddrinfo() and block the event
//   loop while they run (XXX(#5): move to an asynchronous resolver).
// SEE ALSO
//   session.h; Postfix smtpd(8) (behaviour only).
#pragma once

#include <string>

namespace rs::smtpd {

struct PeerName {
    std::string name = "unknown";         ///< verified name, or "unknown"
    std::string reverse_name = "unknown"; ///< PTR name, verified or not
    std::string warning; ///< text for a warning: line, or empty
};

/// Look up the name of numeric address `addr` of family `family`
/// (AF_INET, AF_INET6; anything else gives "unknown").
PeerName lookup_peer(const std::string& addr, int family);

/// `addr` with an "IPv6:" prefix for IPv6, as Received: headers and
/// log_client_address carry it.
std::string rfc_address(const std::string& addr, int family);

/// "name[addr]" or, with port logging, "name[addr]:port".
std::string namaddr(const std::string& name, const std::string& addr,
                    const std::string& port, bool port_logging);

} // namespace rs::smtpd
