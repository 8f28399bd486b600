// SPDX-License-Identifier: MIT
// NAME
//   send_reply.cc - SMTP reply assembly and KEY=value words
// SEE ALSO
//   send_reply.h
#include "client/send_reply.h"

#include "common/util/text.h"

namespace rs::send {

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

std::string_view enhanced_code(std::string_view text, int klass)
{
    // class "." 1*3digit "." 1*3digit, then a space or the end.
    if (text.size() < 5 || text[0] != static_cast<char>('0' + klass)
        || text[1] != '.') {
        return {};
    }
    size_t i = 2;
    for (int part = 0; part < 2; ++part) {
        size_t start = i;
        while (i < text.size() && is_digit(text[i]) && i - start < 4) {
            ++i;
        }
        if (i == start || i - start > 3) {
            return {};
        }
        if (part == 0) {
            if (i >= text.size() || text[i] != '.') {
                return {};
            }
            ++i;
        }
    }
    if (i < text.size() && text[i] != ' ') {
        return {};
    }
    return text.substr(0, i);
}

std::string_view Reply::last_text() const
{
    if (lines.empty()) {
        return {};
    }
    std::string_view t = lines.back();
    auto enh = enhanced_code(t, klass());
    if (!enh.empty()) {
        t.remove_prefix(enh.size());
    }
    return text::trim(t);
}

std::string Reply::joined() const
{
    std::string out;
    for (const auto& l : lines) {
        if (!out.empty()) {
            out += "; ";
        }
        out += std::to_string(code);
        out += ' ';
        out += l;
    }
    if (lines.empty()) {
        out = std::to_string(code);
    }
    return out;
}

Result<std::optional<Reply>> ReplyReader::feed(std::string_view line)
{
    // Every line is "NNN" optionally followed by '-' (more follow) or ' '
    // and text. A code that changes inside one reply is a broken server.
    auto bad = [this, line](std::string what) {
        partial_ = Reply{};
        started_ = false;
        return fail("malformed reply: " + what + ": "
                    + text::printable(line, 60));
    };
    if (line.size() > kMaxReplyLine) {
        return bad("line too long");
    }
    if (line.size() < 3 || !is_digit(line[0]) || !is_digit(line[1])
        || !is_digit(line[2]) || line[0] < '2' || line[0] > '5') {
        return bad("no reply code");
    }
    if (line.size() > 3 && line[3] != ' ' && line[3] != '-') {
        return bad("no separator after the code");
    }
    int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (started_ && code != partial_.code) {
        return bad("code changed inside a reply");
    }
    if (!started_) {
        partial_.code = code;
        started_ = true;
    }
    if (partial_.lines.size() >= kMaxReplyLines) {
        return bad("too many lines");
    }
    std::string_view rest = line.size() > 4 ? line.substr(4) : "";
    partial_.lines.emplace_back(rest);
    if (partial_.lines.size() == 1) {
        partial_.enhanced = std::string(enhanced_code(rest, code / 100));
    }
    if (line.size() > 3 && line[3] == '-') {
        return std::optional<Reply>{};
    }
    Reply done = std::move(partial_);
    partial_ = Reply{};
    started_ = false;
    return std::optional<Reply>{std::move(done)};
}

std::map<std::string, std::string> reply_words(std::string_view t)
{
    std::map<std::string, std::string> out;
    for (const auto& w : text::split(t, " \t")) {
        auto eq = w.find('=');
        std::string key = eq == std::string::npos ? w : w.substr(0, eq);
        std::string value = eq == std::string::npos ? "" : w.substr(eq + 1);
        out.emplace(std::move(key), std::move(value));
    }
    return out;
}

} // namespace rs::send
