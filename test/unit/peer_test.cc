// SPDX-License-Identifier: MIT
// Unit tests for smtpd/peer: only loopback lookups (no DNS traffic).
#include "smtpd/peer.h"
#include "test/unit/catch.h"

#include <sys/socket.h>

using namespace rs::smtpd;

TEST_CASE("peer: 127.0.0.1 is localhost through /etc/hosts, confirmed")
{
    PeerName p = lookup_peer("127.0.0.1", AF_INET);
    CHECK(p.name == "localhost");
    CHECK(p.reverse_name == "localhost");
    CHECK(p.warning.empty());
}

TEST_CASE("peer: an address that does not parse is unknown")
{
    PeerName p = lookup_peer("not-an-address", AF_INET);
    CHECK(p.name == "unknown");
    CHECK(p.reverse_name == "unknown");
    CHECK(lookup_peer("127.0.0.1", 0).name == "unknown");
}

TEST_CASE("peer: IPv6 addresses get the IPv6: prefix in rfc form only")
{
    CHECK(rfc_address("::1", AF_INET6) == "IPv6:::1");
    CHECK(rfc_address("127.0.0.1", AF_INET) == "127.0.0.1");
    CHECK(namaddr("localhost", "::1", "25", false) == "localhost[::1]");
    CHECK(namaddr("h", "1.2.3.4", "4567", true) == "h[1.2.3.4]:4567");
}
