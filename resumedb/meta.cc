// SPDX-License-Identifier: MIT
// NAME
//   meta.cc - write and parse the text of a resume spool meta file
// DESCRIPTION
//   The writer and the parser are kept strict and symmetrical: whatever
//   format_meta() produces parse_meta() accepts unchanged, and the
//   parser refuses anything the writer could not have produced, so that
//   a damaged or forged file is noticed instead of half understood.
// SEE ALSO
//   meta.h, spool.cc.
#include "resumedb/meta.h"

#include "common/util/text.h"

#include <cerrno>
#include <climits>
#include <set>

namespace rs::resumedb {

namespace {

// Numbers in a meta file: octet counts and epoch seconds stay far below
// this, so sums of a few of them cannot overflow int64_t.
constexpr int64_t NUMBER_MAX = INT64_C(1) << 52;

const char* state_name(State s)
{
    switch (s) {
    case State::partial:
        return "partial";
    case State::done:
        return "done";
    case State::refused:
        return "refused";
    }
    return "partial";
}

} // namespace

std::string hex(const unsigned char* p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * n);
    for (size_t i = 0; i < n; ++i) {
        out.push_back(digits[p[i] >> 4]);
        out.push_back(digits[p[i] & 15]);
    }
    return out;
}

bool is_hex(std::string_view s, size_t n)
{
    if (s.size() != n) {
        return false;
    }
    for (char c : s) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

bool is_digest_base64(std::string_view s)
{
    // 32 octets: 42 full characters, one carrying 2 bits, then one '='.
    if (s.size() != 44 || s[43] != '=') {
        return false;
    }
    for (size_t i = 0; i < 43; ++i) {
        char c = s[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
                  || (c >= '0' && c <= '9') || c == '+' || c == '/';
        if (!ok) {
            return false;
        }
    }

    // The last character's low bits are padding and must be zero.
    static const std::string_view alphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    return (alphabet.find(s[42]) & 3) == 0;
}

bool queue_id_ok(std::string_view s)
{
    if (s.empty() || s.size() > max_queue_id_size) {
        return false;
    }
    for (char c : s) {
        bool ok = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z')
                  || (c >= 'a' && c <= 'z');
        if (!ok) {
            return false;
        }
    }
    return true;
}

std::string escape(std::string_view s)
{
    static const char digits[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u >= 0x7f || c == '%') {
            out.push_back('%');
            out.push_back(digits[u >> 4]);
            out.push_back(digits[u & 15]);
        } else {
            out.push_back(c);
        }
    }
    return out;
}

Result<std::string> unescape(std::string_view s)
{
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        auto u = static_cast<unsigned char>(s[i]);
        if (u < 0x20 || u >= 0x7f) {
            return fail("unescaped control or non-ASCII octet", EINVAL);
        }
        if (s[i] != '%') {
            out.push_back(s[i]);
            continue;
        }
        int hi = i + 2 < s.size() ? text::hex_value(s[i + 1]) : -1;
        int lo = i + 2 < s.size() ? text::hex_value(s[i + 2]) : -1;
        if (hi < 0 || lo < 0) {
            return fail("malformed %XX escape", EINVAL);
        }
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
    }
    return out;
}

Result<std::string> format_meta(const Meta& m)
{
    // Refuse to write what the parser would call damaged.
    if (!is_hex(m.hash, 64) || !is_hex(m.binding, 64)
        || !is_digest_base64(m.sha256)) {
        return fail("meta: malformed hash, binding or digest", EINVAL);
    }
    if (m.client.size() > max_client_size
        || m.verdict.size() > max_verdict_size) {
        return fail("meta: client or verdict too long", EINVAL);
    }
    if (m.declared < 0 || m.declared > NUMBER_MAX || m.offset < 0
        || m.offset > NUMBER_MAX || m.created < 0 || m.created > NUMBER_MAX
        || m.updated < 0 || m.updated > NUMBER_MAX || m.resumes < 0) {
        return fail("meta: number out of range", EINVAL);
    }
    if ((m.state == State::done) != !m.queue_id.empty()
        || (m.state == State::refused) != !m.verdict.empty()
        || (!m.queue_id.empty() && !queue_id_ok(m.queue_id))) {
        return fail("meta: queue id or verdict does not fit the state", EINVAL);
    }

    std::string out = "version=1\n";
    out += std::string("state=") + state_name(m.state) + "\n";
    out += "hash=" + m.hash + "\n";
    out += "binding=" + m.binding + "\n";
    out += "client=" + escape(m.client) + "\n";
    out += "declared=" + std::to_string(m.declared) + "\n";
    out += "offset=" + std::to_string(m.offset) + "\n";
    out += "sha256=" + m.sha256 + "\n";
    out += "created=" + std::to_string(m.created) + "\n";
    out += "updated=" + std::to_string(m.updated) + "\n";
    out += "resumes=" + std::to_string(m.resumes) + "\n";
    if (m.state == State::done) {
        out += "queue_id=" + m.queue_id + "\n";
    }
    if (m.state == State::refused) {
        out += "verdict=" + escape(m.verdict) + "\n";
    }
    if (out.size() > max_meta_size) {
        return fail("meta: too long", EINVAL);
    }
    return out;
}

Result<Meta> parse_meta(std::string_view text)
{
    // Bounded, and complete: a last line without its LF is torn.
    if (text.size() > max_meta_size) {
        return fail("meta file too long");
    }
    if (text.empty() || text.back() != '\n') {
        return fail("meta file does not end with a line end");
    }
    text.remove_suffix(1);

    Meta m;
    std::set<std::string, std::less<>> seen;
    bool first = true;
    // Walk the lines by hand: split() would drop empty lines, and an
    // empty line is damage, not something to skip over.
    size_t pos = 0;
    while (pos <= text.size()) {
        size_t nl = text.find('\n', pos);
        std::string_view line = text.substr(
            pos, nl == std::string_view::npos ? text.size() - pos : nl - pos);
        pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;

        size_t eq = line.find('=');
        if (eq == std::string_view::npos || eq == 0) {
            return fail("meta line without key=value");
        }
        std::string_view key = line.substr(0, eq);
        std::string_view value = line.substr(eq + 1);

        // The version comes first and only version 1 is known.
        if (first) {
            if (key != "version" || value != "1") {
                return fail("meta file has no version=1 line first");
            }
            first = false;
            continue;
        }
        if (!seen.insert(std::string(key)).second) {
            return fail("duplicate meta key " + text::printable(key, 20));
        }

        auto number = [&](int64_t hi) -> std::optional<int64_t> {
            return text::parse_int(value, 0, hi);
        };
        if (key == "state") {
            if (value == "partial") {
                m.state = State::partial;
            } else if (value == "done") {
                m.state = State::done;
            } else if (value == "refused") {
                m.state = State::refused;
            } else {
                return fail("bad state in meta file");
            }
        } else if (key == "hash" || key == "binding") {
            if (!is_hex(value, 64)) {
                return fail("bad " + std::string(key) + " in meta file");
            }
            (key == "hash" ? m.hash : m.binding) = value;
        } else if (key == "client" || key == "verdict") {
            auto v = unescape(value);
            size_t max = key == "client" ? max_client_size : max_verdict_size;
            if (!v || v->size() > max) {
                return fail("bad " + std::string(key) + " in meta file");
            }
            (key == "client" ? m.client : m.verdict) = *v;
        } else if (key == "declared" || key == "offset" || key == "created"
                   || key == "updated") {
            auto n = number(NUMBER_MAX);
            if (!n) {
                return fail("bad number for " + std::string(key)
                            + " in meta file");
            }
            (key == "declared"  ? m.declared
             : key == "offset"  ? m.offset
             : key == "created" ? m.created
                                : m.updated) = *n;
        } else if (key == "resumes") {
            auto n = number(INT_MAX);
            if (!n) {
                return fail("bad number for resumes in meta file");
            }
            m.resumes = static_cast<int>(*n);
        } else if (key == "sha256") {
            if (!is_digest_base64(value)) {
                return fail("bad sha256 in meta file");
            }
            m.sha256 = value;
        } else if (key == "queue_id") {
            if (!queue_id_ok(value)) {
                return fail("bad queue_id in meta file");
            }
            m.queue_id = value;
        } else {
            return fail("unknown meta key " + text::printable(key, 20));
        }
    }

    // Every field once; the state-specific ones only in their state.
    for (const char* key :
         {"state", "hash", "binding", "client", "declared", "offset", "sha256",
          "created", "updated", "resumes"}) {
        if (!seen.contains(std::string_view(key))) {
            return fail(std::string("meta file lacks ") + key);
        }
    }
    if ((m.state == State::done) != seen.contains(std::string_view("queue_id"))
        || (m.state == State::refused)
               != seen.contains(std::string_view("verdict"))
        || (m.state == State::refused && m.verdict.empty())) {
        return fail("meta file's queue_id or verdict does not fit its state");
    }
    return m;
}

} // namespace rs::resumedb
