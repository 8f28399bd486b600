// SPDX-License-Identifier: MIT
// NAME
//   send_dotstuff.cc - DATA transparency
// SEE ALSO
//   send_dotstuff.h
#include "client/send_dotstuff.h"

namespace rs::send {

void DotStuffer::feed(std::string_view in, std::string& out)
{
    out.reserve(out.size() + in.size() + 16);
    while (!in.empty()) {
        // Copy up to and including the next LF; a line start that holds
        // a '.' gets a second one in front of it.
        if (at_line_start_ && in.front() == '.') {
            out += '.';
        }
        auto lf = in.find('\n');
        if (lf == std::string_view::npos) {
            out.append(in);
            at_line_start_ = false;
            return;
        }
        out.append(in.substr(0, lf + 1));
        in.remove_prefix(lf + 1);
        at_line_start_ = true;
    }
}

void DotStuffer::finish(std::string& out)
{
    if (!at_line_start_) {
        out += "\r\n";
    }
    out += ".\r\n";
    at_line_start_ = true;
}

std::string dot_stuff(std::string_view tail)
{
    DotStuffer d;
    std::string out;
    d.feed(tail, out);
    d.finish(out);
    return out;
}

} // namespace rs::send
