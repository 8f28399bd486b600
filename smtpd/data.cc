// SPDX-License-Identifier: MIT
// NAME
//   data.cc - DATA and BDAT content to cleanup records
// DESCRIPTION
//   The line reader mimics Postfix's bounded smtp_get(); line() then
//   applies receive_data_message's rules to each read: terminator
//   stripping, the first-line rules, dot-unstuffing, the strict end of
//   data, and size accounting. See data.h for the contract and for where
//   we differ from Postfix on purpose.
// SEE ALSO
//   smtpd/data.h, postconf(5) smtpd_forbid_bare_newline, RFC 5321 4.1.1.4
#include "smtpd/data.h"

#include "common/util/text.h"

#include <algorithm>
#include <cstring>

namespace rs::smtpd {

namespace {

// The bound of one read; below 2 a final ".CR LF" could never be seen.
size_t read_bound(const DataLimits& limits)
{
    return std::max<size_t>(limits.line_length_limit, 2);
}

} // namespace

std::optional<BareNewline> parse_bare_newline(std::string_view value)
{
    // Postfix 3.7.11 accepts these four words, in any case.
    if (text::iequals(value, "no")) {
        return BareNewline::allow;
    }
    if (text::iequals(value, "normalize") || text::iequals(value, "yes")) {
        return BareNewline::normalize;
    }
    if (text::iequals(value, "reject")) {
        return BareNewline::reject;
    }
    return std::nullopt;
}

DataReceiver::DataReceiver(const DataLimits& limits, bool dot_stuffed)
    : limits_(limits), dot_stuffed_(dot_stuffed)
{
    // The one line buffer never grows past the bound; reserve a usual
    // line's worth now, not a huge configured limit.
    line_.reserve(std::min<size_t>(read_bound(limits_), 8192));
}

bool DataReceiver::set_dot_stuffed(bool on)
{
    // The splice of a resumed message lies at a line start; anywhere else
    // the two halves of a line would be read under different rules.
    if (!at_line_start() || done_) {
        return false;
    }
    dot_stuffed_ = on;
    return true;
}

size_t DataReceiver::feed(std::string_view bytes, ContentSink& sink)
{
    size_t pos = 0;
    const size_t bound = read_bound(limits_);

    // A full read that ended in CR waited for this byte: an LF makes it a
    // CR LF line (Postfix's repair), anything else leaves it a fragment.
    if (pending_cr_ && !bytes.empty() && !done_) {
        pending_cr_ = false;
        if (bytes[0] == '\n') {
            line_.push_back('\n');
            pos = 1;
            line(line_, End::lf, sink);
        } else {
            line(line_, End::bound, sink);
        }
        line_.clear();
    }

    while (pos < bytes.size() && !done_) {
        // Look for the LF only as far as this read may go.
        const size_t room = bound - line_.size();
        const std::string_view window =
            bytes.substr(pos, std::min(room, bytes.size() - pos));
        const void* lf = std::memchr(window.data(), '\n', window.size());

        // A whole line: straight from the caller's bytes when nothing is
        // pending, so a 64 KiB chunk costs no copy.
        if (lf != nullptr) {
            size_t n = static_cast<const char*>(lf) - window.data() + 1;
            pos += n;
            if (line_.empty()) {
                line(window.substr(0, n), End::lf, sink);
            } else {
                line_.append(window.data(), n);
                line(line_, End::lf, sink);
                line_.clear();
            }
            continue;
        }

        // The bound is reached without LF: a fragment, unless it ends in
        // CR and the next byte turns out to be LF.
        if (window.size() == room) {
            pos += room;
            std::string_view raw = window;
            if (!line_.empty()) {
                line_.append(window);
                raw = line_;
            }
            if (raw.back() == '\r' && pos == bytes.size()) {
                if (line_.empty()) {
                    line_.assign(raw);
                }
                pending_cr_ = true;
                break;
            }
            if (raw.back() == '\r' && bytes[pos] == '\n') {
                if (line_.empty()) {
                    line_.assign(raw);
                }
                line_.push_back('\n');
                pos += 1;
                line(line_, End::lf, sink);
            } else {
                line(raw, End::bound, sink);
            }
            line_.clear();
            continue;
        }

        // The chunk ends inside a line: keep it for the next feed().
        line_.append(window);
        pos += window.size();
    }
    return pos;
}

void DataReceiver::finish(ContentSink& sink)
{
    // DATA ends only at its dot; BDAT LAST ends whatever line is open.
    if (dot_stuffed_ || done_) {
        return;
    }
    pending_cr_ = false;
    if (!line_.empty()) {
        line(line_, End::last, sink);
        line_.clear();
    }
    done_ = true;
}

// One read of at most the bound, as receive_data_message handles it.
void DataReceiver::line(std::string_view raw, End end, ContentSink& sink)
{
    const char type = end == End::bound ? 'L' : 'N';
    std::string_view text = raw;
    bool crlf = false;
    bool bare_lf = false;

    // Strip the terminator as smtp_get() does: without bare-LF detection
    // every CR before the LF goes; with it, one CR, and a bare LF is noted.
    if (end == End::lf) {
        text.remove_suffix(1);
        crlf = !text.empty() && text.back() == '\r';
        if (limits_.bare_newline == BareNewline::allow) {
            while (!text.empty() && text.back() == '\r') {
                text.remove_suffix(1);
            }
        } else if (crlf) {
            text.remove_suffix(1);
        } else {
            bare_lf = true;
        }
    }
    if (bare_lf && limits_.bare_newline == BareNewline::reject) {
        bare_nl_seen_ = true;
    }

    // Postfix looks at the line as a C string here, so a NUL ends it.
    std::string_view ctext = text.substr(0, text.find('\0'));

    // The first line(s): a mailbox "From " line (after any run of '>')
    // becomes X-Mailbox-Line, and the next line is still a first line; a
    // line starting with white space gets an empty N first, so that it
    // cannot continue our Received: header.
    if (first_line_) {
        size_t skip = ctext.find_first_not_of('>');
        if (skip != std::string_view::npos
            && ctext.substr(skip).starts_with("From ")) {
            mailbox_line_.assign("X-Mailbox-Line: ");
            mailbox_line_.append(ctext);
            sink.record(type, mailbox_line_);
            octets_ += static_cast<int64_t>(raw.size());
            if (tap_ != nullptr) {
                tap_->octets(raw, end == End::lf);
            }
            prev_was_fragment_ = type == 'L';
            prev_crlf_ = crlf;
            return;
        }
        first_line_ = false;
        if (!text.empty() && (text[0] == ' ' || text[0] == '\t')) {
            sink.record('N', "");
        }
    }

    // Dot-unstuffing at the start of a line only (not after a fragment).
    // A lone dot ends the data only as CR LF "." CR LF; any other lone dot
    // line is dropped and reading goes on, so a smuggled <LF>.<LF> can
    // never end the message early (see data.h, COMPATIBILITY).
    bool unstuffed = false;
    if (dot_stuffed_ && !prev_was_fragment_ && !text.empty()
        && text[0] == '.') {
        if (text.size() == 1) {
            bool strict = end == End::lf && raw.size() == 3 && crlf;
            if (strict && prev_crlf_) {
                done_ = true;
                return;
            }
            prev_was_fragment_ = false;
            prev_crlf_ = crlf;
            return;
        }
        text.remove_prefix(1);
        unstuffed = true;
    }

    // Count as Postfix does (len + 2 per record, L included); past the
    // limit, or after a rejected bare LF, records stop but reading goes on.
    if (!size_exceeded_ && !bare_nl_seen_) {
        const int64_t need = static_cast<int64_t>(text.size()) + 2;
        if (limits_.message_size_limit > 0
            && limits_.message_size_limit - size_ < need) {
            size_exceeded_ = true;
        } else {
            size_ += need;
            sink.record(type, text);
        }
    }
    octets_ += static_cast<int64_t>(raw.size()) - (unstuffed ? 1 : 0);
    if (tap_ != nullptr) {
        tap_->octets(raw.substr(unstuffed ? 1 : 0), end == End::lf);
    }
    prev_was_fragment_ = type == 'L';
    prev_crlf_ = crlf;
}

} // namespace rs::smtpd
