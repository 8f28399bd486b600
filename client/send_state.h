// SPDX-License-Identifier: MIT
// NAME
//   send_state.h - the resume token of a message, kept across restarts
// DESCRIPTION
//   With --state-dir, resume-send keeps the token the server gave for a
//   message in a small file, so that a resume-send started again for the
//   same message (pipe(8) retries a deferred delivery with a new process)
//   resumes instead of starting over. The file name is the SHA-256 of
//   the server, the envelope and the message digest, so a different
//   message, envelope or server never picks the token up.
//
//   The file is "resume-send-state 1" followed by key=value lines
//   (token, size, digest, server). It is written to a temporary name,
//   fsynced and renamed, so a reader sees the old or the new content,
//   never a mix. A file that does not parse, or whose size or digest do
//   not match, is reported as damaged; the caller then ignores it.
//   Files are mode 0600: a token lets its holder resume the transfer.
// SEE ALSO
//   send_xresume.h
#pragma once

#include "common/util/result.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace rs::send {

struct ResumeState {
    std::string token;
    uint64_t size = 0;
    std::string digest;
    std::string server;
};

/// The state key (hex SHA-256) of one server, envelope and message.
std::string state_key(const std::string& server, const std::string& sender,
                      const std::vector<std::string>& rcpts,
                      const std::string& digest);

class StateFile {
public:
    StateFile(std::string dir, std::string key);

    const std::string& path() const { return path_; }
    /// The stored state, nullopt when there is none, an error when the
    /// file exists but is damaged or cannot be read.
    [[nodiscard]] Result<std::optional<ResumeState>> load() const;
    /// Replace the stored state atomically.
    [[nodiscard]] Result<void> save(const ResumeState& s) const;
    /// Remove the file; no file is not an error.
    [[nodiscard]] Result<void> remove() const;

private:
    std::string dir_;
    std::string path_;
};

/// The text of a state file, and its parser (exposed for tests).
std::string format_state(const ResumeState& s);
[[nodiscard]] Result<ResumeState> parse_state(std::string_view text);

} // namespace rs::send
