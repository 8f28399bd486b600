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
//   Precisely: octets() is the number of bytes the client sent for the
//   message, after dot-unstuffing, with each line end counted as it was
//   received (CR LF as 2, a bare LF as 1, every CR that was stripped
//   included), without the final ".CRLF" and without a lone-dot line that
//   was dropped (below). For a client that sends CR LF, as RFC 5321
//   requires, this is exactly the SIZE / BDAT count, and it is what a
//   resume offset and its digest cover.
//
//   Lines, as Postfix's smtp_get() reads them: a read takes at most
//   line_length_limit bytes and stops after an LF; when a full read ends
//   in CR and the next byte is LF, the LF joins it (so "2047 bytes CR LF"
//   is one N record). Unlike Postfix, records do not depend on how the
//   bytes were split across feed() calls or BDAT chunks: a line continued
//   in the next chunk is one line (cleanup joins L and N anyway).
// COMPATIBILITY
//   smtpd_forbid_bare_newline (Postfix 3.7.11 default "no"):
//     allow (no): a bare LF ends a record line and every CR before it is
//       stripped, as in Postfix.
//     normalize (normalize, yes): exactly one CR before the LF is
//       stripped, a bare LF ends a line, as in Postfix.
//     reject: as normalize, and a bare LF sets bare_newline_seen(); from
//       then on no records are sent (the session replies with
//       $smtpd_forbid_bare_newline_reject_code after the final dot).
//   In every mode a lone "." line that is not the strict CR LF "." CR LF
//   (e.g. <LF>.<LF>, <LF>.<CR><LF>, <CR><LF>.<LF>, ".<CR><CR><LF>") is
//   dropped and the data goes on, which is what Postfix 3.7.11 does in
//   normalize and reject mode. Postfix 3.7.11 with "no" instead ends the
//   data at such a line, and the bytes after it are read as commands: that
//   is SMTP smuggling, and we deliberately never do it. A client that ends
//   its data with <LF>.<LF> therefore times out here, as it does with
//   Postfix's normalize. <CR>.<CR> is content in every mode (a bare CR is
//   never a line end), as in Postfix.
//
//   Observed with Postfix 3.7.11 (test/integration/test_smuggling.py,
//   client on loopback, smtpd_forbid_bare_newline_exclusions empty):
//     sequence after "text"   no             normalize      reject
//     <LF>.<LF>               ends (2 msgs)  content, 250   550 bare <LF>
//     <LF>.<CR><LF>           ends (2 msgs)  content, 250   550 bare <LF>
//     <CR><LF>.<LF>           ends (2 msgs)  content, 250   550 bare <LF>
//     <CR>.<CR>               content, 250   content, 250   content, 250
//   ("content": one message, the lone dot line dropped, the smuggled
//   commands in its body). We give the normalize column also for "no".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace rs::smtpd {

/// smtpd_forbid_bare_newline: no, normalize (or its alias yes), reject.
enum class BareNewline { allow, normalize, reject };

/// The smtpd_forbid_bare_newline value, case-insensitive: "no" -> allow,
/// "normalize" or "yes" -> normalize, "reject" -> reject; nullopt for
/// anything else (the caller makes that fatal, naming the parameter).
std::optional<BareNewline> parse_bare_newline(std::string_view value);

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

/// Sees the message octets as octets() counts them (after unstuffing,
/// line ends as received, no final ".CRLF", no dropped lone-dot line),
/// in order, one read at a time: what the resume spool stores.
class OctetTap {
public:
    virtual ~OctetTap() = default;
    /// `line_end`: the bytes end just after an LF.
    virtual void octets(std::string_view bytes, bool line_end) = 0;
};

/// One message's content. Not thread-safe; one per transaction. Costs one
/// virtual call per record, none per byte; the only buffer is one line of
/// at most line_length_limit bytes (values below 2 are taken as 2, the
/// least that holds ".CR" of the final dot line).
class DataReceiver {
public:
    /// `dot_stuffed`: true for DATA, false for BDAT.
    DataReceiver(const DataLimits& limits, bool dot_stuffed);

    /// Consume client bytes. DATA: returns how many bytes belong to the
    /// message (up to and including the final ".CRLF"); bytes after that
    /// are the client's next commands. BDAT: always consumes all of it.
    /// Returns 0 only when done() or `bytes` is empty; a partial line is
    /// kept inside (at most line_length_limit bytes), never handed back.
    size_t feed(std::string_view bytes, ContentSink& sink);

    /// DATA: the final dot has been seen.
    bool done() const { return done_; }

    /// Message octets go to `tap` too (nullptr: no more).
    void set_tap(OctetTap* tap) { tap_ = tap; }

    /// Switch between DATA (dot-stuffed) and BDAT input, for a resumed
    /// message whose stored prefix is replayed unstuffed before the
    /// client's DATA tail. Only at a line boundary: returns false (and
    /// changes nothing) when a partial line is pending.
    bool set_dot_stuffed(bool on);

    /// True when no partial line is pending (every octet fed so far
    /// ended a line).
    bool at_line_start() const { return line_.empty() && !pending_cr_; }

    /// BDAT LAST: a pending unterminated line becomes a last N record.
    /// Does nothing for DATA (an unfinished DATA is lost, not flushed).
    void finish(ContentSink& sink);

    int64_t size() const { return size_; }     ///< Postfix's act_size
    int64_t octets() const { return octets_; } ///< SIZE-style octets
    bool size_exceeded() const { return size_exceeded_; }
    /// Only in reject mode: a line ended in a bare LF.
    bool bare_newline_seen() const { return bare_nl_seen_; }

private:
    // How a read ended: at an LF, at the line_length_limit bound, or at
    // BDAT's end (a last line without LF).
    enum class End { lf, bound, last };
    void line(std::string_view raw, End end, ContentSink& sink);

    DataLimits limits_;
    bool dot_stuffed_;
    OctetTap* tap_ = nullptr;
    bool done_ = false;
    bool size_exceeded_ = false;
    bool bare_nl_seen_ = false;
    int64_t size_ = 0;
    int64_t octets_ = 0;
    // A line that continues in the next feed(); at most line_length_limit.
    std::string line_;
    // For the X-Mailbox-Line record of a first "From " line.
    std::string mailbox_line_;
    // Postfix's prev_rec_type == REC_TYPE_CONT: no unstuffing after an L.
    bool prev_was_fragment_ = false;
    // The previous line ended in CR LF (true at the start): a lone dot
    // ends the data only then.
    bool prev_crlf_ = true;
    bool first_line_ = true;
    // line_ filled the bound and ends in CR; an LF next completes it.
    bool pending_cr_ = false;
};

} // namespace rs::smtpd
