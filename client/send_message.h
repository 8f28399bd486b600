// SPDX-License-Identifier: MIT
// NAME
//   send_message.h - the message as resume-send sends it
// DESCRIPTION
//   The message comes from a file or a pipe (pipe(8) hands it over with
//   LF line ends) and must be read again after every break, so it is
//   copied once into a private temporary file, canonicalized on the way:
//   a LF without CR before it becomes CRLF, CRLF stays, a CR not
//   followed by LF stays as it is (it is data, as Postfix keeps it), a
//   CR at the very end becomes CRLF, and a last line without a line end
//   gets CRLF. The copy is then exactly the octets that SIZE counts and
//   XRESUME offsets point into.
//
//   Sha256 wraps OpenSSL's EVP digest; prefix_sha256() gives the
//   base64 digest of the first n octets that XRESUME's SHA256= is
//   checked against.
// SEE ALSO
//   RFC 5321 section 2.3.8, RFC 1870, send_dotstuff.h
#pragma once

#include "common/util/fd.h"
#include "common/util/result.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace rs::send {

/// SHA-256 over data given in pieces; final() may be called once.
class Sha256 {
public:
    Sha256();
    ~Sha256();
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;
    void update(std::string_view data);
    /// The 32-octet digest.
    std::string final();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

std::string hex(std::string_view octets);
/// Standard base64 alphabet with padding (RFC 4648 section 4).
std::string base64(std::string_view octets);
/// SHA-256 of data, as lower-case hex.
std::string sha256_hex(std::string_view data);

/// Streaming LF -> CRLF canonicalization (the rules in the DESCRIPTION).
class Canonicalizer {
public:
    /// Append the canonical form of `in` to `out`.
    void feed(std::string_view in, std::string& out);
    /// Close the message: a pending CR or an unterminated last line
    /// gets its CRLF.
    void finish(std::string& out);

private:
    bool cr_pending_ = false;
    bool at_line_start_ = true;
};

/// The canonical message in an unlinked temporary file.
class Spool {
public:
    /// Copy `in` (read to EOF) into a new unlinked file below `tmpdir`.
    [[nodiscard]] static Result<Spool> create(int in,
                                              const std::string& tmpdir);

    uint64_t size() const { return size_; }
    /// True when an octet has the high bit set (BODY=8BITMIME).
    bool eight_bit() const { return eight_bit_; }
    /// SHA-256 of the whole canonical message, hex.
    const std::string& digest() const { return digest_; }
    /// Read up to `len` octets at `offset`; fewer only at the end.
    [[nodiscard]] Result<size_t> read_at(uint64_t offset, char* buf,
                                         size_t len) const;
    /// The base64 SHA-256 of octets [0, n); n must be <= size().
    [[nodiscard]] Result<std::string> prefix_sha256(uint64_t n) const;
    /// True when n is 0, or octets n-2 and n-1 are CR LF.
    [[nodiscard]] Result<bool> at_line_boundary(uint64_t n) const;

private:
    Fd fd_;
    uint64_t size_ = 0;
    bool eight_bit_ = false;
    std::string digest_;
};

} // namespace rs::send
