// SPDX-License-Identifier: MIT
// NAME
//   send_xresume.cc - XRESUME reply parsing and offset checks
// SEE ALSO
//   send_xresume.h
#include "client/send_xresume.h"

#include "common/util/text.h"

namespace rs::send {

bool valid_token(std::string_view t)
{
    if (t.size() < kMinToken || t.size() > kMaxToken) {
        return false;
    }
    for (char c : t) {
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
                  || (c >= '0' && c <= '9') || c == '-' || c == '_';
        if (!ok) {
            return false;
        }
    }
    return true;
}

// SHA256= carries 32 octets: 44 characters of standard base64 ending in
// one '='.
static bool valid_digest(std::string_view d)
{
    if (d.size() != 44 || d[43] != '=') {
        return false;
    }
    for (size_t i = 0; i < 43; ++i) {
        char c = d[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
                  || (c >= '0' && c <= '9') || c == '+' || c == '/';
        if (!ok) {
            return false;
        }
    }
    return true;
}

XresumeReply parse_xresume(const Reply& reply)
{
    using Kind = XresumeReply::Kind;
    XresumeReply r;

    // The failure classes first: 452 is the documented "go on without
    // resume"; the 5.5.x syntax and sequence codes say we should not use
    // XRESUME here; any other 5xx is a verdict about this transfer.
    if (reply.temporary()) {
        r.kind = reply.code == 452 ? Kind::Unavailable : Kind::TempFail;
        return r;
    }
    if (reply.permanent()) {
        bool protocol =
            reply.code == 501 || reply.code == 502 || reply.code == 503;
        r.kind = protocol ? Kind::NotOffered : Kind::Refused;
        return r;
    }
    if (!reply.ok() || reply.lines.empty()) {
        return r;
    }

    auto words = reply_words(reply.last_text());
    auto get = [&words](const char* key) -> const std::string* {
        auto it = words.find(key);
        return it == words.end() ? nullptr : &it->second;
    };
    if (words.count("DONE")) {
        auto qid = get("QUEUEID");
        if (qid == nullptr || qid->empty() || qid->size() > 64) {
            return r;
        }
        r.kind = Kind::Done;
        r.queue_id = *qid;
        return r;
    }
    auto token = get("TOKEN");
    auto offset = get("OFFSET");
    if (token == nullptr || offset == nullptr || !valid_token(*token)) {
        return r;
    }
    auto n = text::parse_int(*offset, 0);
    if (!n) {
        return r;
    }
    r.token = *token;
    r.offset = static_cast<uint64_t>(*n);
    if (auto ttl = get("TTL")) {
        r.ttl = text::parse_int(*ttl, 0, INT32_MAX).value_or(0);
    }
    if (r.offset > 0) {
        auto d = get("SHA256");
        if (d == nullptr || !valid_digest(*d)) {
            r.token.clear();
            r.offset = 0;
            return r;
        }
        r.sha256 = *d;
    }
    r.kind = Kind::Offset;
    return r;
}

Result<std::string> check_offset(const Spool& spool, const XresumeReply& r)
{
    if (r.offset == 0) {
        return std::string();
    }
    if (r.offset > spool.size()) {
        return "offset " + std::to_string(r.offset)
               + " beyond the message size " + std::to_string(spool.size());
    }
    auto boundary = spool.at_line_boundary(r.offset);
    if (!boundary) {
        return tl::unexpected(boundary.error());
    }
    if (!*boundary) {
        return "offset " + std::to_string(r.offset)
               + " is not at a line boundary";
    }
    auto digest = spool.prefix_sha256(r.offset);
    if (!digest) {
        return tl::unexpected(digest.error());
    }
    if (*digest != r.sha256) {
        return "SHA256 of the first " + std::to_string(r.offset)
               + " octets differs: the message is not the same";
    }
    return std::string();
}

std::string token_tag(std::string_view token)
{
    return sha256_hex(token).substr(0, 8);
}

} // namespace rs::send
