// SPDX-License-Identifier: MIT
// NAME
//   send_reply.h - SMTP replies as resume-send reads them
// DESCRIPTION
//   A ReplyReader takes the lines of a server reply one at a time (CRLF
//   already removed) and returns the whole reply after its last line:
//   the three-digit code, the RFC 3463 enhanced status code of the first
//   line when there is one, and the text of every line. Words of the
//   form KEY=value after the enhanced code (XRESUME's TOKEN=, OFFSET=...)
//   are available through reply_words().
// SEE ALSO
//   RFC 5321 section 4.2, RFC 3463, RFC 2034
#pragma once

#include "common/util/result.h"

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rs::send {

/// The longest reply line we accept and the most lines in one reply: a
/// server that exceeds either is broken or hostile.
inline constexpr size_t kMaxReplyLine = 4096;
inline constexpr size_t kMaxReplyLines = 200;

struct Reply {
    int code = 0;
    /// "2.1.5" when the first line carries one, else empty.
    std::string enhanced;
    /// The text of every line after "NNN-" or "NNN ", enhanced code kept.
    std::vector<std::string> lines;

    int klass() const { return code / 100; }
    bool ok() const { return klass() == 2; }
    bool temporary() const { return klass() == 4; }
    bool permanent() const { return klass() == 5; }
    /// The last line's text without its enhanced code.
    std::string_view last_text() const;
    /// All lines as one string, "NNN text" joined by "; " (for logs and
    /// for the message pipe(8) puts in a bounce).
    std::string joined() const;
};

/// Assembles replies from lines; one reader per connection.
class ReplyReader {
public:
    /// Feed one line. A complete reply when this line ended it, nullopt
    /// when more lines follow, an error for a malformed or oversized one
    /// (the reader is then reset).
    [[nodiscard]] Result<std::optional<Reply>> feed(std::string_view line);

private:
    Reply partial_;
    bool started_ = false;
};

/// The enhanced status code at the start of text ("5.1.1"), or empty.
/// Its class digit must equal `klass` (RFC 3463 ties them together).
std::string_view enhanced_code(std::string_view text, int klass);

/// KEY=value words of text (case of KEY kept, upper-cased by callers as
/// needed); words without '=' are returned with an empty value under
/// their own name. A word repeated keeps its first value.
std::map<std::string, std::string> reply_words(std::string_view text);

} // namespace rs::send
