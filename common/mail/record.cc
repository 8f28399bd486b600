// SPDX-License-Identifier: MIT
// NAME
//   record.cc - Postfix queue-file records: put and scan
// DESCRIPTION
//   The length goes out in 7-bit groups, least significant first, with
//   0x80 on every byte but the last; zero is one 0x00 byte. A reader
//   takes at most 5 length bytes (shift 28), as Postfix's does, so a
//   declared length can never run past 35 bits; it is then checked
//   against the caller's limit before any data is looked at.
// SEE ALSO
//   record.h; Postfix record(3) (behaviour only).
#include "common/mail/record.h"

#include <cstdint>

namespace rs::mail::rec {

namespace {

constexpr size_t MAX_LEN_BYTES = 5;

} // namespace

void put(std::string& out, char type, std::string_view data)
{
    out += type;

    // The length, low group first; the high bit says another follows.
    size_t len = data.size();
    do {
        unsigned char byte = len & 0x7f;
        len >>= 7;
        if (len != 0) {
            byte |= 0x80;
        }
        out += static_cast<char>(byte);
    } while (len != 0);

    out += data;
}

Result<std::optional<Scanned>> scan(std::string_view buf, size_t limit)
{
    // The type byte comes first.
    if (buf.empty()) {
        return std::optional<Scanned>();
    }
    Scanned got;
    got.type = buf[0];

    // Decode the length; give up after 5 groups as Postfix does.
    uint64_t len = 0;
    size_t pos = 1;
    for (size_t i = 0;; ++i) {
        if (i == MAX_LEN_BYTES) {
            return fail("record length: too many length bits");
        }
        if (pos >= buf.size()) {
            return std::optional<Scanned>();
        }
        auto byte = static_cast<unsigned char>(buf[pos++]);
        len |= static_cast<uint64_t>(byte & 0x7f) << (7 * i);
        if ((byte & 0x80) == 0) {
            break;
        }
    }

    // A declared length is checked before we wait for that much data.
    if (len > limit) {
        return fail("record type "
                    + std::to_string(
                        static_cast<int>(static_cast<unsigned char>(got.type)))
                    + " length " + std::to_string(len) + " exceeds limit "
                    + std::to_string(limit));
    }
    if (buf.size() - pos < len) {
        return std::optional<Scanned>();
    }
    got.data = buf.substr(pos, len);
    got.consumed = pos + len;
    return std::optional<Scanned>(got);
}

} // namespace rs::mail::rec
