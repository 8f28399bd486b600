// SPDX-License-Identifier: MIT
// NAME
//   send_state.cc - the state file
// SEE ALSO
//   send_state.h
#include "client/send_state.h"

#include "client/send_message.h"
#include "client/send_xresume.h"
#include "common/util/fd.h"
#include "common/util/text.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace rs::send {

static constexpr std::string_view kMagic = "resume-send-state 1";
// A state file is a few hundred octets; anything much larger is not ours.
static constexpr size_t kMaxStateFile = 4096;

std::string state_key(const std::string& server, const std::string& sender,
                      const std::vector<std::string>& rcpts,
                      const std::string& digest)
{
    // NUL separates the fields: no address or server name holds one, so
    // two different envelopes cannot give the same input.
    Sha256 h;
    auto field = [&h](std::string_view f) {
        h.update(f);
        h.update(std::string_view("\0", 1));
    };
    field(server);
    field(sender);
    field(std::to_string(rcpts.size()));
    for (const auto& r : rcpts) {
        field(r);
    }
    field(digest);
    return hex(h.final());
}

StateFile::StateFile(std::string dir, std::string key)
    : dir_(std::move(dir)), path_(dir_ + "/" + key + ".state")
{
}

std::string format_state(const ResumeState& s)
{
    std::string out(kMagic);
    out += "\ntoken=" + s.token;
    out += "\nsize=" + std::to_string(s.size);
    out += "\ndigest=" + s.digest;
    out += "\nserver=" + s.server;
    out += "\n";
    return out;
}

Result<ResumeState> parse_state(std::string_view t)
{
    if (t.size() > kMaxStateFile) {
        return fail("state file too large");
    }
    auto nl = t.find('\n');
    if (nl == std::string_view::npos || t.substr(0, nl) != kMagic) {
        return fail("state file has no valid header");
    }
    t.remove_prefix(nl + 1);
    if (!t.empty() && t.back() != '\n') {
        return fail("state file is truncated");
    }

    ResumeState s;
    bool have_size = false;
    while (!t.empty()) {
        nl = t.find('\n');
        auto line = t.substr(0, nl);
        t.remove_prefix(nl + 1);
        auto eq = line.find('=');
        if (eq == std::string_view::npos) {
            return fail("state file line without '='");
        }
        auto key = line.substr(0, eq);
        auto value = line.substr(eq + 1);
        if (key == "token") {
            s.token = value;
        } else if (key == "size") {
            auto n = text::parse_int(value, 0);
            if (!n) {
                return fail("state file has a bad size");
            }
            s.size = static_cast<uint64_t>(*n);
            have_size = true;
        } else if (key == "digest") {
            s.digest = value;
        } else if (key == "server") {
            s.server = value;
        } else {
            return fail("state file has an unknown key");
        }
    }
    if (!valid_token(s.token)) {
        return fail("state file has no valid token");
    }
    if (!have_size || s.digest.size() != 64) {
        return fail("state file lacks size or digest");
    }
    return s;
}

Result<std::optional<ResumeState>> StateFile::load() const
{
    Fd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) {
        if (errno == ENOENT) {
            return std::optional<ResumeState>{};
        }
        return fail("open " + path_ + ": " + std::strerror(errno), errno);
    }
    std::string data(kMaxStateFile + 1, '\0');
    size_t got = 0;
    while (got < data.size()) {
        ssize_t n = ::read(fd.get(), data.data() + got, data.size() - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return fail("read " + path_ + ": " + std::strerror(errno), errno);
        }
        if (n == 0) {
            break;
        }
        got += static_cast<size_t>(n);
    }
    data.resize(got);
    auto s = parse_state(data);
    if (!s) {
        return tl::unexpected(s.error());
    }
    return std::optional<ResumeState>{std::move(*s)};
}

Result<void> StateFile::save(const ResumeState& s) const
{
    // Write a temporary file next to the real one, make it durable, then
    // rename it over: a crash leaves the old state or the new one.
    std::string tmp = path_ + ".tmp." + std::to_string(::getpid());
    Fd fd(::open(tmp.c_str(),
                 O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) {
        return fail("create " + tmp + ": " + std::strerror(errno), errno);
    }
    std::string text = format_state(s);
    std::string_view rest = text;
    while (!rest.empty()) {
        ssize_t n = ::write(fd.get(), rest.data(), rest.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            int e = errno;
            ::unlink(tmp.c_str());
            return fail("write " + tmp + ": " + std::strerror(e), e);
        }
        rest.remove_prefix(static_cast<size_t>(n));
    }
    if (::fsync(fd.get()) < 0 || ::close(fd.release()) < 0) {
        int e = errno;
        ::unlink(tmp.c_str());
        return fail("sync " + tmp + ": " + std::strerror(e), e);
    }
    if (::rename(tmp.c_str(), path_.c_str()) < 0) {
        int e = errno;
        ::unlink(tmp.c_str());
        return fail("rename " + tmp + ": " + std::strerror(e), e);
    }

    // The rename itself is durable only once the directory is synced.
    Fd dir(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir) {
        (void)::fsync(dir.get());
    }
    return {};
}

Result<void> StateFile::remove() const
{
    if (::unlink(path_.c_str()) < 0 && errno != ENOENT) {
        return fail("remove " + path_ + ": " + std::strerror(errno), errno);
    }
    return {};
}

} // namespace rs::send
