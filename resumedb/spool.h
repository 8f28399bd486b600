// SPDX-License-Identifier: MIT
// NAME
//   spool.h - the resume spool: partial message bodies that survive a break
// DESCRIPTION
//   One directory (by default "resume" under the queue directory, mode
//   0700, owned by mail_owner) shared by every smtpd process of a Postfix
//   instance. An entry is named by a hash of its token and consists of:
//     ID.meta   the committed state (text, key=value lines), replaced
//               atomically: write ID.meta.tmp, fsync, rename, fsync dir;
//     ID.data   the message octets as SIZE counts them (after DATA's
//               dot-unstuffing, every line end as received, without the
//               final ".CRLF"); only its first `offset` octets count,
//               anything past them is a torn or uncommitted tail and is
//               cut off when the entry is next claimed;
//     ID.lock   flock()ed (LOCK_EX) by the one session that owns the
//               entry; the lock goes with the process, so a crashed
//               owner frees it;
//     ID.want   present while another session waits to take the entry
//               over; the owner polls want_takeover() and lets go.
//   A tombstone is an entry whose meta says done (with the queue id) or
//   refused (with the permanent reply), without data.
//
//   Crash safety: a checkpoint first fsyncs the data file, then commits
//   the new offset and the SHA-256 of the committed prefix in the meta
//   file. The offset a client is told is always from a committed meta
//   file, so it is on disk; a crash at any instant leaves either the old
//   or the new meta, never a torn one, and a data file at least that
//   long.
//
//   Tokens: 18 bytes from OpenSSL's RAND_bytes, base64url (24
//   characters). Only SHA-256(token) is stored (hex, in the meta; its
//   first 32 hex digits are the file name ID) and compared in constant
//   time. Log lines show short_hash(token), never the token.
//
//   Binding: the caller gives a text that canonically describes the
//   envelope and the client (sender and its MAIL parameters, the accepted
//   recipients in order with their DSN parameters, the SASL identity or
//   the client's network); only its SHA-256 is stored. A claim whose
//   binding differs is a mismatch and leaves the entry as it is.
//
//   Limits: total octets over all partial entries (each counts the
//   larger of its stored octets and its declared SIZE), partial entries
//   per client key, octets per entry, a sliding TTL from the last
//   checkpoint, a hard lifetime from creation and a number of resumes.
//   expire() removes what is past them; create() and claim() call it.
// THREADS
//   Not thread-safe: one Spool per process, used from its event loop.
//   Processes share the directory; they coordinate through the lock
//   files and atomic renames only.
// ERRORS
//   Disk failures come back as Error with errno; a damaged meta file is
//   treated as absent (and reported by check()).
// SEE ALSO
//   docs/draft-xresume.txt, resumedb(1), resume-smtpd(8).
#pragma once

#include "common/util/fd.h"
#include "common/util/result.h"

#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rs::resumedb {

/// The caps of a spool; 0 means "no limit" for each.
struct Limits {
    int64_t spool_size_limit = 0; ///< smtpd_resume_spool_size_limit
    int client_limit = 0;         ///< smtpd_resume_client_limit (entries)
    int64_t entry_size_limit = 0; ///< message_size_limit
    int64_t ttl = 300;            ///< smtpd_resume_ttl, seconds
    int64_t max_lifetime = 14400; ///< smtpd_resume_max_lifetime (4h)
    int max_resumes = 100;        ///< smtpd_resume_max_resumes
    int64_t checkpoint_size = 0;  ///< smtpd_resume_checkpoint_size
    int64_t checkpoint_time = 0;  ///< smtpd_resume_checkpoint_time, s
};

enum class State { partial, done, refused };

/// What list() and check() show of an entry; never the token.
struct EntryInfo {
    std::string id; ///< the file name stem (hash prefix)
    State state = State::partial;
    int64_t offset = 0;   ///< committed octets
    int64_t declared = 0; ///< SIZE= at creation, 0 if none
    std::string sha256;   ///< base64 of the committed prefix
    std::string client;   ///< client key (address or SASL identity)
    std::time_t created = 0;
    std::time_t updated = 0; ///< last checkpoint
    int resumes = 0;
    std::string queue_id; ///< done
    std::string verdict;  ///< refused: the full reply text
    bool locked = false;  ///< a live session owns it now
};

/// Totals for `resumedb -s` and for the quota checks.
struct Totals {
    int entries = 0;     ///< partial entries
    int tombstones = 0;  ///< done and refused
    int64_t octets = 0;  ///< stored octets of partial entries
    int64_t charged = 0; ///< what counts against spool_size_limit
};

class Spool;

/// A partial entry owned by this session (it holds the flock). Writing
/// appends octets; checkpoint() makes them count. Destroying an Entry
/// without complete()/refuse()/remove() releases it as it stands: the
/// last checkpoint is what a later claim sees (call checkpoint() first
/// to keep more).
class Entry {
public:
    virtual ~Entry() = default;

    /// The file name stem; safe to print.
    virtual const std::string& id() const = 0;
    /// The committed octets (what the client is told).
    virtual int64_t offset() const = 0;
    /// base64 SHA-256 of the committed prefix ("" for 0 octets is the
    /// digest of nothing, never empty).
    virtual std::string sha256() const = 0;
    /// Octets appended so far (committed or not).
    virtual int64_t written() const = 0;

    /// Append message octets. `line_end` says the bytes end just after
    /// an LF: only such positions can be committed. Fails (EFBIG) past
    /// the entry size limit.
    [[nodiscard]] virtual Result<void> append(std::string_view bytes,
                                              bool line_end) = 0;
    /// Due by checkpoint_size octets or checkpoint_time seconds since the
    /// last checkpoint (0 disables that trigger).
    virtual bool checkpoint_due() const = 0;
    /// Commit up to the last line end appended: fsync data, then meta.
    [[nodiscard]] virtual Result<void> checkpoint() = 0;

    /// Read committed octets [pos, pos+n) for replay; returns the count
    /// read (0 at the committed end).
    [[nodiscard]] virtual Result<size_t> read(int64_t pos, char* buf,
                                              size_t n) = 0;

    /// Another session asked for this entry (ID.want exists): checkpoint
    /// and destroy the Entry soon (within about a second).
    virtual bool want_takeover() const = 0;

    /// The message was queued: the entry becomes a done tombstone.
    [[nodiscard]] virtual Result<void>
    complete(const std::string& queue_id) = 0;
    /// The message was refused for good: a refused tombstone with the
    /// reply that the session gave.
    [[nodiscard]] virtual Result<void> refuse(const std::string& verdict) = 0;
    /// XRESUME ABORT, or a transfer abandoned: gone entirely.
    [[nodiscard]] virtual Result<void> remove() = 0;
};

/// The answer to a claim.
struct Claim {
    enum class Kind {
        none,     ///< unknown, expired, evicted, damaged, over max resumes
        mismatch, ///< known, but bound to another envelope or client
        busy,     ///< owned by a live session; ID.want is now set: retry
        partial,  ///< yours: `entry` is set, positioned at its offset
        done,     ///< completed: `queue_id`
        refused,  ///< refused: `verdict`
    };
    Kind kind = Kind::none;
    std::unique_ptr<Entry> entry;
    std::string queue_id;
    std::string verdict;
};

/// The answer to a create.
struct Created {
    enum class Kind { ok, spool_full, client_full };
    Kind kind = Kind::ok;
    std::string token;            ///< the fresh token (ok only)
    std::unique_ptr<Entry> entry; ///< ok only
};

class Spool {
public:
    /// Open (and create, mode 0700) the spool directory. Fails when it
    /// cannot be made or is not a directory we can write.
    [[nodiscard]] static Result<std::unique_ptr<Spool>>
    open(const std::string& dir, const Limits& limits);

    virtual ~Spool() = default;

    virtual const Limits& limits() const = 0;

    /// A new entry for `binding`, charged to `client` with `declared`
    /// octets reserved (SIZE=, or 0). Refused when the total or the
    /// client's count is at its limit (after expiring what is due).
    [[nodiscard]] virtual Result<Created> create(std::string_view binding,
                                                 std::string_view client,
                                                 int64_t declared) = 0;

    /// Look `token` up and, for a partial entry whose binding matches,
    /// take it: the lock, a truncated tail, the digest checked against
    /// the data (a mismatch there is damage: the entry is removed and
    /// the answer is none), and the resume count raised.
    [[nodiscard]] virtual Result<Claim> claim(std::string_view token,
                                              std::string_view binding) = 0;

    /// Remove the partial entry of `token` if no one owns it (XRESUME
    /// ABORT: knowing the token is the authority). Returns false when
    /// there was nothing to remove. Tombstones stay. An owned entry is
    /// an error with EBUSY, and ID.want is set so that the owner lets
    /// go: the caller may retry.
    [[nodiscard]] virtual Result<bool> abort(std::string_view token) = 0;

    /// Remove what is past its TTL, lifetime or resume count, and
    /// tombstones past their TTL; entries that a live session owns are
    /// left. Returns the number removed.
    virtual int expire(std::time_t now) = 0;

    /// expire(), unless a sweep began less than a few seconds ago in
    /// this or any other process, or one is running now: what a server
    /// calls from a timer.
    virtual void sweep(std::time_t now) = 0;

    // For the resumedb(1) command.
    virtual std::vector<EntryInfo> list() = 0;
    virtual Totals totals() = 0;
    /// Remove one entry by id (or every entry for "ALL"); owned entries
    /// are skipped. Returns how many went.
    [[nodiscard]] virtual Result<int> purge(std::string_view id) = 0;
    /// One line per problem found (bad meta, data shorter than the
    /// offset, digest mismatch, stray files); `repair` removes them.
    virtual std::vector<std::string> check(bool repair) = 0;
};

/// A short, stable, printable hash of a token for log lines (12 hex
/// digits of SHA-256); never reveals the token.
std::string short_hash(std::string_view token);

/// Base64 (standard alphabet, padded) of a SHA-256 digest, as the
/// SHA256= reply word carries it.
std::string digest_base64(const unsigned char (&digest)[32]);

/// Whether `token` has the syntax of one of ours (base64url, 16 to 64
/// characters); a command with anything else is a syntax error.
bool token_syntax_ok(std::string_view token);

/// Hooks for the unit tests only.
namespace testing {

/// Make the n-th disk operation from now on (0: the very next) fail as
/// if the process had died just before it: that operation and every
/// later one fail with EIO, doing nothing, until crash_after(-1) turns
/// the hook off. Counted operations: open for writing (or creating),
/// write, fsync, ftruncate, rename and unlink.
void crash_after(int n);

/// Whether the hook has fired since the last crash_after().
bool crashed();

/// Pin the clock the spool reads for created/updated times, for the
/// expiry that create() and claim() run, and for checkpoint_due();
/// 0 goes back to the real time.
void set_now(std::time_t now);

} // namespace testing

} // namespace rs::resumedb
