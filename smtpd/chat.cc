// SPDX-License-Identifier: MIT
// NAME
//   chat.cc - reply texts, log escapes and the command counters
// DESCRIPTION
//   See chat.h. The counters and texts mirror what Postfix 3.7 logs, as
//   observed in the lab, so that pflogsumm and exporters read us alike.
#include "smtpd/chat.h"

#include "common/util/text.h"

#include <fmt/format.h>

namespace rs::smtpd {

int CommandCounters::started(std::string_view name)
{
    // Look the verb up in the table; the last slot collects the rest.
    int slot = static_cast<int>(names.size()) - 1;
    for (size_t i = 0; i + 1 < names.size(); ++i) {
        if (text::iequals(name, names[i])) {
            slot = static_cast<int>(i);
            break;
        }
    }
    total_[slot]++;
    return slot;
}

void CommandCounters::succeeded(int slot)
{
    if (slot >= 0 && slot < static_cast<int>(names.size())) {
        ok_[slot]++;
    }
}

std::string CommandCounters::summary() const
{
    // One item per command that was used, in table order.
    std::string out;
    int ok = 0;
    int total = 0;
    for (size_t i = 0; i < names.size(); ++i) {
        ok += ok_[i];
        total += total_[i];
        if (total_[i] == 0) {
            continue;
        }
        if (ok_[i] == total_[i]) {
            out += fmt::format(" {}={}", names[i], ok_[i]);
        } else {
            out += fmt::format(" {}={}/{}", names[i], ok_[i], total_[i]);
        }
    }

    // The total always appears; "0/0" says nothing was received at all.
    if (ok == total && total != 0) {
        out += fmt::format(" commands={}", ok);
    } else {
        out += fmt::format(" commands={}/{}", ok, total);
    }
    return out;
}

std::string soft_bounce_reply(std::string_view reply)
{
    // Only a permanent error is softened; its enhanced code, when one
    // follows, must change class with it or clients see a contradiction.
    std::string out(reply);
    if (out.size() < 4 || out[0] != '5') {
        return out;
    }
    out[0] = '4';
    if (out.size() > 5 && out[4] == '5' && out[5] == '.') {
        out[4] = '4';
    }

    // A multi-line reply carries the code on every line.
    for (size_t pos = out.find("\r\n5"); pos != std::string::npos;
         pos = out.find("\r\n5", pos + 2)) {
        out[pos + 2] = '4';
        if (pos + 7 < out.size() && out[pos + 6] == '5'
            && out[pos + 7] == '.') {
            out[pos + 6] = '4';
        }
    }
    return out;
}

bool is_error_reply(std::string_view reply)
{
    return !reply.empty() && (reply[0] == '4' || reply[0] == '5');
}

std::string escape_for_log(std::string_view bytes, size_t max)
{
    // Each byte is turned into something a log reader can copy back.
    std::string out;
    size_t n = std::min(bytes.size(), max);
    for (size_t i = 0; i < n; ++i) {
        unsigned char c = static_cast<unsigned char>(bytes[i]);
        switch (c) {
        case '\a':
            out += "\\a";
            break;
        case '\b':
            out += "\\b";
            break;
        case '\f':
            out += "\\f";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\r':
            out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        case '\v':
            out += "\\v";
            break;
        case '\\':
            out += "\\\\";
            break;
        default:
            if (c < 0x20 || c >= 0x7f) {
                out += fmt::format("\\{:03o}", c);
            } else {
                out += static_cast<char>(c);
            }
        }
    }
    return out;
}

std::string request_head(std::string_view line)
{
    // Postfix shows a fixed short head of the request, then an ellipsis.
    constexpr size_t head = 30;
    return text::printable(line.substr(0, head), head) + "...";
}

} // namespace rs::smtpd
