// SPDX-License-Identifier: MIT
// NAME
//   send_ehlo.cc - EHLO keyword parsing
// SEE ALSO
//   send_ehlo.h
#include "client/send_ehlo.h"

#include "common/util/text.h"

namespace rs::send {

// XRESUME TTL=<seconds> [MAXSIZE=<octets>]: both numbers are checked, and
// a line that does not parse leaves XRESUME off (plain SMTP still works).
static void parse_xresume(const std::vector<std::string>& words, Ehlo& e)
{
    bool have_ttl = false;
    std::optional<uint64_t> maxsize;
    for (size_t i = 1; i < words.size(); ++i) {
        const auto& w = words[i];
        auto eq = w.find('=');
        if (eq == std::string::npos) {
            continue;
        }
        auto key = text::upper(w.substr(0, eq));
        auto value = std::string_view(w).substr(eq + 1);
        if (key == "TTL") {
            auto n = text::parse_int(value, 0, INT32_MAX);
            if (!n) {
                return;
            }
            e.xresume_ttl = *n;
            have_ttl = true;
        } else if (key == "MAXSIZE") {
            auto n = text::parse_int(value, 0);
            if (!n) {
                return;
            }
            maxsize = static_cast<uint64_t>(*n);
        }
    }
    if (!have_ttl) {
        return;
    }
    e.xresume = true;
    e.xresume_maxsize = maxsize;
}

Ehlo parse_ehlo(const Reply& reply)
{
    Ehlo e;
    if (!reply.ok()) {
        return e;
    }

    // The first line is the server's name and greeting, not a keyword.
    for (size_t i = 1; i < reply.lines.size(); ++i) {
        auto words = text::split(reply.lines[i], " \t");
        if (words.empty()) {
            continue;
        }
        auto kw = text::upper(words[0]);
        if (kw == "PIPELINING") {
            e.pipelining = true;
        } else if (kw == "STARTTLS") {
            e.starttls = true;
        } else if (kw == "CHUNKING") {
            e.chunking = true;
        } else if (kw == "8BITMIME") {
            e.eightbitmime = true;
        } else if (kw == "SMTPUTF8") {
            e.smtputf8 = true;
        } else if (kw == "SIZE") {
            e.size = true;
            if (words.size() > 1) {
                auto n = text::parse_int(words[1], 0);
                e.size_limit = n ? static_cast<uint64_t>(*n) : 0;
            }
        } else if (kw == "XRESUME") {
            parse_xresume(words, e);
        }
    }
    return e;
}

} // namespace rs::send
