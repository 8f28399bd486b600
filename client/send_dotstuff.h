// SPDX-License-Identifier: MIT
// NAME
//   send_dotstuff.h - DATA transparency from a line start
// DESCRIPTION
//   DotStuffer turns canonical message octets (CRLF line ends) into what
//   goes after DATA's 354: a '.' doubled at the start of every line, and
//   at the end the terminating ".CRLF" (with a CRLF before it when the
//   last line is unterminated, which a canonical message never is). It
//   starts at a line start: the whole message, or the tail after an
//   XRESUME offset, which the server only reports at line boundaries.
// SEE ALSO
//   RFC 5321 section 4.5.2, send_message.h
#pragma once

#include <string>
#include <string_view>

namespace rs::send {

class DotStuffer {
public:
    /// Append the stuffed form of `in` to `out`.
    void feed(std::string_view in, std::string& out);
    /// Append the end of data to `out`.
    void finish(std::string& out);

private:
    bool at_line_start_ = true;
};

/// The whole of `tail` stuffed and terminated (for tests and small data).
std::string dot_stuff(std::string_view tail);

} // namespace rs::send
