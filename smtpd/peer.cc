// SPDX-License-Identifier: MIT
// NAME
//   peer.cc - reverse lookup with forward confirmation
// DESCRIPTION
//   See peer.h.
#include "smtpd/peer.h"

#include "common/util/text.h"

#include <arpa/inet.h>
#include <cstring>
#include <fmt/format.h>
#include <netdb.h>
#include <sys/socket.h>

namespace rs::smtpd {

namespace {

// A host name longer than DNS allows is not a name we will log.
constexpr size_t HOSTNAME_MAX = 255;

// Fill a sockaddr from a numeric address; false when it does not parse.
bool to_sockaddr(const std::string& addr, int family, sockaddr_storage& ss,
                 socklen_t& len)
{
    std::memset(&ss, 0, sizeof(ss));
    if (family == AF_INET) {
        auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
        sin->sin_family = AF_INET;
        len = sizeof(*sin);
        return inet_pton(AF_INET, addr.c_str(), &sin->sin_addr) == 1;
    }
    if (family == AF_INET6) {
        auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
        sin6->sin6_family = AF_INET6;
        len = sizeof(*sin6);
        return inet_pton(AF_INET6, addr.c_str(), &sin6->sin6_addr) == 1;
    }
    return false;
}

// The numeric form of a sockaddr, for comparing with the client address.
std::string numeric(const sockaddr* sa, socklen_t len)
{
    char buf[NI_MAXHOST];
    if (getnameinfo(sa, len, buf, sizeof(buf), nullptr, 0, NI_NUMERICHOST)
        != 0) {
        return {};
    }
    return buf;
}

// Letters, digits, '-', '.' and '_' only: anything else in a PTR answer
// is not a host name and must not reach logs or headers.
bool plausible_hostname(std::string_view name)
{
    if (name.empty() || name.size() > HOSTNAME_MAX) {
        return false;
    }
    bool all_numeric = true;
    for (char c : name) {
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                     || (c >= '0' && c <= '9');
        if (!alnum && c != '-' && c != '.' && c != '_') {
            return false;
        }
        if (!(c >= '0' && c <= '9') && c != '.') {
            all_numeric = false;
        }
    }

    // A numeric "name" would pretend to be an address.
    return !all_numeric;
}

} // namespace

PeerName lookup_peer(const std::string& addr, int family)
{
    PeerName peer;

    // Without a real address there is nothing to look up.
    sockaddr_storage ss;
    socklen_t len = 0;
    if (!to_sockaddr(addr, family, ss, len)) {
        return peer;
    }

    // The PTR name, required: a numeric answer would be no name.
    char host[NI_MAXHOST];
    if (getnameinfo(reinterpret_cast<sockaddr*>(&ss), len, host, sizeof(host),
                    nullptr, 0, NI_NAMEREQD)
        != 0) {
        return peer;
    }
    if (!plausible_hostname(host)) {
        peer.warning = fmt::format("numeric or malformed hostname: {}",
                                   text::printable(host));
        return peer;
    }
    peer.reverse_name = host;

    // Forward confirmation: one of the name's addresses must be ours,
    // or anyone who controls a PTR record could claim any name.
    addrinfo hints{};
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int rc = getaddrinfo(host, nullptr, &hints, &res);
    if (rc != 0) {
        peer.warning =
            fmt::format("hostname {} does not resolve to address {}: {}", host,
                        addr, gai_strerror(rc));
        return peer;
    }
    bool match = false;
    for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
        if (numeric(ai->ai_addr, ai->ai_addrlen) == addr) {
            match = true;
            break;
        }
    }
    freeaddrinfo(res);
    if (!match) {
        peer.warning = fmt::format("hostname {} does not resolve to address {}",
                                   host, addr);
        return peer;
    }
    peer.name = host;
    return peer;
}

std::string rfc_address(const std::string& addr, int family)
{
    return family == AF_INET6 ? "IPv6:" + addr : addr;
}

std::string namaddr(const std::string& name, const std::string& addr,
                    const std::string& port, bool port_logging)
{
    if (port_logging) {
        return fmt::format("{}[{}]:{}", name, addr, port);
    }
    return fmt::format("{}[{}]", name, addr);
}

} // namespace rs::smtpd
