// SPDX-License-Identifier: MIT
// NAME
//   data.h - message content from DATA or BDAT, turned into cleanup records
// DESCRIPTION
//   A DataReceiver takes the client's raw bytes and hands records to a
//   sink, as Postfix 3.7's receive_data_message does: a line ending in LF
//   becomes an N record (its CR LF or, per smtpd_forbid_bare_newline, its
//   bare LF stripped); a piece of line_length_limit bytes without an end
//   becomes an L record; DATA lines are dot-unstuffed; the first line's
//   "From " gets the X-Mailbox-Line treatment, a first line starting with
//   white space gets an empty N before it; size is counted as Postfix
//   counts it (len + 2 per record) and past message_size_limit records
//   stop but reading goes on to the end.
//
//   End of DATA is only CR LF "." CR LF (the lone dot line must follow a
//   CRLF-terminated line and be terminated by CRLF itself): no other
//   sequence ends a message, so SMTP smuggling cannot split one.
//
//   The receiver also counts message octets as SIZE and BDAT count them
//   (after unstuffing, every line end as CRLF, without the final .CRLF).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace rs::smtpd {

/// smtpd_forbid_bare_newline: no, normalize, yes (reject).
enum class BareNewline { allow, normalize, reject };

struct DataLimits {
    size_t line_length_limit = 2048;
    int64_t message_size_limit = 10240000; ///< 0 = unlimited
    BareNewline bare_newline = BareNewline::allow;
};

class ContentSink {
public:
    virtual ~ContentSink() = default;
    /// 'N' or 'L', with the data of the record.
    virtual void record(char type, std::string_view data) = 0;
};

class DataReceiver {
public:
    /// `dot_stuffed`: true for DATA, false for BDAT.
    DataReceiver(const DataLimits& limits, bool dot_stuffed);

    /// Consume client bytes. DATA: returns how many bytes belong to the
    /// message (up to and including the final ".CRLF"); bytes after that
    /// are the client's next commands. BDAT: always consumes all of it.
    size_t feed(std::string_view bytes, ContentSink& sink);

    /// DATA: the final dot has been seen.
    bool done() const { return done_; }

    /// BDAT LAST: a pending unterminated line becomes a last N record.
    void finish(ContentSink& sink);

    int64_t size() const { return size_; }           ///< Postfix's act_size
    int64_t octets() const { return octets_; }       ///< SIZE-style octets
    bool size_exceeded() const { return size_exceeded_; }
    bool bare_newline_seen() const { return bare_nl_seen_; }

private:
    DataLimits limits_;
    bool dot_stuffed_;
    bool done_ = false;
    bool size_exceeded_ = false;
    bool bare_nl_seen_ = false;
    int64_t size_ = 0;
    int64_t octets_ = 0;
    // Line assembly state; the implementation owns the details.
    std::string line_;
    bool prev_was_fragment_ = false;
    bool first_line_ = true;
    bool pending_cr_ = false;
    int eod_state_ = 0;
};

} // namespace rs::smtpd
