// SPDX-License-Identifier: MIT
// NAME
//   send_message.cc - canonicalization and the spooled message
// SEE ALSO
//   send_message.h
#include "client/send_message.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

namespace rs::send {

struct Sha256::Impl {
    EVP_MD_CTX* ctx = nullptr;
};

Sha256::Sha256() : impl_(std::make_unique<Impl>())
{
    // Allocation failure of a digest context is not recoverable here.
    impl_->ctx = EVP_MD_CTX_new();
    if (impl_->ctx == nullptr
        || EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr) != 1) {
        std::abort();
    }
}

Sha256::~Sha256()
{
    EVP_MD_CTX_free(impl_->ctx);
}

void Sha256::update(std::string_view data)
{
    if (!data.empty()
        && EVP_DigestUpdate(impl_->ctx, data.data(), data.size()) != 1) {
        std::abort();
    }
}

std::string Sha256::final()
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(impl_->ctx, md, &len) != 1) {
        std::abort();
    }
    return std::string(reinterpret_cast<char*>(md), len);
}

std::string hex(std::string_view octets)
{
    static const char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(octets.size() * 2);
    for (unsigned char c : octets) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

std::string base64(std::string_view octets)
{
    std::string out(4 * ((octets.size() + 2) / 3) + 1, '\0');
    int n =
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                        reinterpret_cast<const unsigned char*>(octets.data()),
                        static_cast<int>(octets.size()));
    out.resize(n < 0 ? 0 : static_cast<size_t>(n));
    return out;
}

std::string sha256_hex(std::string_view data)
{
    Sha256 h;
    h.update(data);
    return hex(h.final());
}

void Canonicalizer::feed(std::string_view in, std::string& out)
{
    out.reserve(out.size() + in.size() + in.size() / 32 + 2);
    for (char c : in) {
        // A CR is held back until the next octet says whether it starts
        // a CRLF (kept) or stands alone (kept as data).
        if (cr_pending_) {
            cr_pending_ = false;
            out += '\r';
            if (c == '\n') {
                out += '\n';
                at_line_start_ = true;
                continue;
            }
            at_line_start_ = false;
        }
        if (c == '\r') {
            cr_pending_ = true;
        } else if (c == '\n') {
            out += "\r\n";
            at_line_start_ = true;
        } else {
            out += c;
            at_line_start_ = false;
        }
    }
}

void Canonicalizer::finish(std::string& out)
{
    // A CR at the very end is taken for a CRLF cut short; an unterminated
    // last line gets its line end, as DATA needs one before the dot.
    if (cr_pending_) {
        cr_pending_ = false;
        out += "\r\n";
        at_line_start_ = true;
    } else if (!at_line_start_) {
        out += "\r\n";
        at_line_start_ = true;
    }
}

static Result<void> write_all(int fd, std::string_view data)
{
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return fail(std::string("write to spool file: ")
                            + std::strerror(errno),
                        errno);
        }
        data.remove_prefix(static_cast<size_t>(n));
    }
    return {};
}

// An unlinked file: O_TMPFILE where the file system has it, otherwise
// mkstemp() and an immediate unlink(), so nothing is left after a crash.
static Result<Fd> open_tmpfile(const std::string& dir)
{
    int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0) {
        return Fd(fd);
    }
    std::string path = dir + "/resume-send.XXXXXX";
    fd = ::mkostemp(path.data(), O_CLOEXEC);
    if (fd < 0) {
        return fail("create a temporary file in " + dir + ": "
                        + std::strerror(errno),
                    errno);
    }
    ::unlink(path.c_str());
    return Fd(fd);
}

Result<Spool> Spool::create(int in, const std::string& tmpdir)
{
    auto fd = open_tmpfile(tmpdir);
    if (!fd) {
        return tl::unexpected(fd.error());
    }
    Spool s;
    s.fd_ = std::move(*fd);

    // Read, canonicalize, digest and write in one pass.
    Canonicalizer canon;
    Sha256 digest;
    std::string buf(64 * 1024, '\0');
    std::string out;
    for (;;) {
        ssize_t n = ::read(in, buf.data(), buf.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return fail(std::string("read the message: ")
                            + std::strerror(errno),
                        errno);
        }
        out.clear();
        if (n == 0) {
            canon.finish(out);
        } else {
            canon.feed(std::string_view(buf.data(), static_cast<size_t>(n)),
                       out);
        }
        for (unsigned char c : out) {
            if (c & 0x80) {
                s.eight_bit_ = true;
                break;
            }
        }
        digest.update(out);
        s.size_ += out.size();
        if (auto w = write_all(s.fd_.get(), out); !w) {
            return tl::unexpected(w.error());
        }
        if (n == 0) {
            break;
        }
    }
    s.digest_ = hex(digest.final());
    return s;
}

Result<size_t> Spool::read_at(uint64_t offset, char* buf, size_t len) const
{
    size_t got = 0;
    while (got < len && offset + got < size_) {
        ssize_t n = ::pread(fd_.get(), buf + got, len - got,
                            static_cast<off_t>(offset + got));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return fail(std::string("read the spool file: ")
                            + std::strerror(errno),
                        errno);
        }
        if (n == 0) {
            return fail("spool file shorter than the message");
        }
        got += static_cast<size_t>(n);
    }
    return got;
}

Result<std::string> Spool::prefix_sha256(uint64_t n) const
{
    if (n > size_) {
        return fail("prefix longer than the message");
    }
    Sha256 h;
    std::string buf(64 * 1024, '\0');
    for (uint64_t off = 0; off < n;) {
        size_t want =
            static_cast<size_t>(std::min<uint64_t>(buf.size(), n - off));
        auto got = read_at(off, buf.data(), want);
        if (!got) {
            return tl::unexpected(got.error());
        }
        h.update(std::string_view(buf.data(), *got));
        off += *got;
    }
    return base64(h.final());
}

Result<bool> Spool::at_line_boundary(uint64_t n) const
{
    if (n == 0) {
        return true;
    }
    if (n < 2 || n > size_) {
        return false;
    }
    char two[2];
    auto got = read_at(n - 2, two, 2);
    if (!got) {
        return tl::unexpected(got.error());
    }
    return *got == 2 && two[0] == '\r' && two[1] == '\n';
}

} // namespace rs::send
