// SPDX-License-Identifier: MIT
// NAME
//   spool.cc - the resume spool: entries on disk, claims, expiry, checks
// DESCRIPTION
//   Every file is opened relative to one descriptor of the spool
//   directory, never through a symbolic link (O_NOFOLLOW), never
//   blocking on a FIFO planted in its place (O_NONBLOCK, then a regular
//   file is required). Names that are not ours are ignored.
//
//   Who may write what: only the holder of ID.lock writes ID.meta,
//   ID.meta.tmp and ID.data, and removes an entry. The lock file is
//   created first and removed last, so that any other file of an entry
//   whose lock nobody holds is either committed state (ID.meta and the
//   prefix of ID.data it covers) or the residue of a process that died
//   (a torn tail, ID.meta.tmp, the data of a tombstone, files without a
//   meta), which expire() sweeps away.
//
//   After flock() succeeds we check that the path still names the inode
//   we locked: a process removing the entry may have unlinked it in the
//   meantime, and a lock on an unlinked file protects nothing.
//
//   The running SHA-256 of an Entry covers every octet appended; a copy
//   of it is taken at each line end that the caller reports, which is
//   the only place a checkpoint may cut, so the digest of the committed
//   prefix never needs the data to be read back.
// BUGS
//   create() reads the meta file of every partial entry to count the
//   totals and the client's entries (tombstones are skipped by their
//   missing data file: create() lists PARTIAL_DIR, not the spool), and
//   a sweep runs when none has begun in the last minute in any process:
//   a stat() per tombstone, the meta of every partial entry. Its cost
//   grows with the number of entries.
//
//   list() and check() find out whether an entry is owned by taking its
//   lock for a moment; a claim at that very moment sees "busy" and must
//   retry (smtpd's clients do).
// SEE ALSO
//   spool.h, meta.h, resumedb(1).
#include "resumedb/spool.h"

#include "common/mail/log.h"
#include "resumedb/meta.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <map>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace rs::resumedb {

// ---------------------------------------------------------------------
// Test hooks

namespace {

struct Hooks {
    int countdown = -1;
    bool crashed = false;
    std::time_t now = 0;
};

Hooks& hooks()
{
    static Hooks h;
    return h;
}

// Whether the disk operation about to be done must fail as if the
// process had died just before it (see testing::crash_after).
bool dies()
{
    Hooks& h = hooks();
    if (h.crashed) {
        return true;
    }
    if (h.countdown < 0) {
        return false;
    }
    if (h.countdown-- == 0) {
        h.crashed = true;
        return true;
    }
    return false;
}

std::time_t now()
{
    return hooks().now != 0 ? hooks().now : std::time(nullptr);
}

} // namespace

namespace testing {

void crash_after(int n)
{
    hooks().countdown = n;
    hooks().crashed = false;
}

bool crashed()
{
    return hooks().crashed;
}

void set_now(std::time_t t)
{
    hooks().now = t;
}

} // namespace testing

namespace {

// ---------------------------------------------------------------------
// Names

// The kinds of file an entry may have, as bits.
enum Kind : unsigned {
    META = 1,
    TMP = 2,
    DATA = 4,
    LOCK = 8,
    WANT = 16,
};

struct Suffix {
    std::string_view text;
    Kind kind;
};

// ".meta.tmp" before ".meta" would not matter: names are matched whole.
constexpr Suffix suffixes[] = {
    {".meta", META}, {".meta.tmp", TMP}, {".data", DATA},
    {".lock", LOCK}, {".want", WANT},
};

// Entry ids are the first 32 hex digits of SHA-256(token).
constexpr size_t ID_LEN = 32;

// Stamped by maybe_expire(); not an entry name, so every scan skips it.
constexpr const char* SWEEP_STAMP = "sweep.stamp";

// An empty file named by the id of every partial entry: made before its
// meta, removed after it (so a partial entry always has one; a stale
// one is harmless and swept). create() counts the quotas over these,
// not over a directory that also holds every tombstone of the last TTL.
constexpr const char* PARTIAL_DIR = "partial";

std::string file(const std::string& id, Kind kind)
{
    for (const Suffix& s : suffixes) {
        if (s.kind == kind) {
            return id + std::string(s.text);
        }
    }
    return id;
}

// ---------------------------------------------------------------------
// Hashing

struct MdCtxFree {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

MdCtx new_sha256()
{
    MdCtx c(EVP_MD_CTX_new());
    if (!c || EVP_DigestInit_ex(c.get(), EVP_sha256(), nullptr) != 1) {
        log::panic("resumedb: cannot set up a SHA-256 context");
    }
    return c;
}

MdCtx copy_ctx(const EVP_MD_CTX* from)
{
    MdCtx c(EVP_MD_CTX_new());
    if (!c || EVP_MD_CTX_copy_ex(c.get(), from) != 1) {
        log::panic("resumedb: cannot copy a SHA-256 context");
    }
    return c;
}

void update(EVP_MD_CTX* c, const void* p, size_t n)
{
    if (n > 0 && EVP_DigestUpdate(c, p, n) != 1) {
        log::panic("resumedb: SHA-256 update failed");
    }
}

// base64 of the digest of what `c` has seen so far; `c` is left as is.
std::string digest_so_far(const EVP_MD_CTX* c)
{
    MdCtx copy = copy_ctx(c);
    unsigned char md[32];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(copy.get(), md, &len) != 1 || len != 32) {
        log::panic("resumedb: SHA-256 final failed");
    }
    return digest_base64(md);
}

std::string sha256_hex(std::string_view s)
{
    unsigned char md[32];
    unsigned int len = 0;
    if (EVP_Digest(s.data(), s.size(), md, &len, EVP_sha256(), nullptr) != 1
        || len != 32) {
        log::panic("resumedb: SHA-256 failed");
    }
    return hex(md, 32);
}

// ---------------------------------------------------------------------
// Disk operations. Each one that changes the disk goes through dies()
// first, so that the tests can stop the world before any of them.

Error crash_error(const std::string& what)
{
    return Error{EIO, what + ": simulated crash"};
}

Error sys_error(const std::string& what, int e)
{
    return Error{e, what + ": " + std::strerror(e)};
}

// Open `name` in the spool: never through a symlink, never blocking,
// and only a regular file will do.
Result<Fd> open_at(int dir, const std::string& name, int flags)
{
    bool writes =
        (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND)) != 0;
    if (writes && dies()) {
        return tl::unexpected(crash_error("open " + name));
    }
    int fd = ::openat(dir, name.c_str(),
                      flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);
    if (fd < 0) {
        // A symlink where our file should be is damage, not an I/O error.
        if (errno == ELOOP) {
            return fail(name + ": a symbolic link", EINVAL);
        }
        return tl::unexpected(sys_error("open " + name, errno));
    }
    Fd f(fd);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        return tl::unexpected(sys_error("fstat " + name, errno));
    }
    if (!S_ISREG(st.st_mode)) {
        return fail(name + ": not a regular file", EINVAL);
    }
    return f;
}

Result<void> pwrite_all(int fd, std::string_view data, int64_t pos,
                        const std::string& name)
{
    if (dies()) {
        return tl::unexpected(crash_error("write " + name));
    }
    while (!data.empty()) {
        ssize_t n = ::pwrite(fd, data.data(), data.size(), pos);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return tl::unexpected(
                sys_error("write " + name, n < 0 ? errno : EIO));
        }
        data.remove_prefix(static_cast<size_t>(n));
        pos += n;
    }
    return {};
}

Result<void> fsync_fd(int fd, const std::string& name)
{
    if (dies()) {
        return tl::unexpected(crash_error("fsync " + name));
    }
    if (::fsync(fd) != 0) {
        return tl::unexpected(sys_error("fsync " + name, errno));
    }
    return {};
}

Result<void> truncate_fd(int fd, int64_t len, const std::string& name)
{
    if (dies()) {
        return tl::unexpected(crash_error("truncate " + name));
    }
    if (::ftruncate(fd, len) != 0) {
        return tl::unexpected(sys_error("truncate " + name, errno));
    }
    return {};
}

Result<void> rename_at(int dir, const std::string& from, const std::string& to)
{
    if (dies()) {
        return tl::unexpected(crash_error("rename " + from));
    }
    if (::renameat(dir, from.c_str(), dir, to.c_str()) != 0) {
        return tl::unexpected(sys_error("rename " + from, errno));
    }
    return {};
}

// Unlink `name`; true when it was there.
Result<bool> unlink_at(int dir, const std::string& name)
{
    if (dies()) {
        return tl::unexpected(crash_error("unlink " + name));
    }
    if (::unlinkat(dir, name.c_str(), 0) != 0) {
        if (errno == ENOENT) {
            return false;
        }
        return tl::unexpected(sys_error("unlink " + name, errno));
    }
    return true;
}

bool exists_at(int dir, const std::string& name, struct stat* st = nullptr)
{
    struct stat tmp;
    return ::fstatat(dir, name.c_str(), st != nullptr ? st : &tmp,
                     AT_SYMLINK_NOFOLLOW)
           == 0;
}

// ---------------------------------------------------------------------
// Meta files

// Read and parse ID.meta. The error's code is ENOENT when there is no
// meta file, EINVAL when it is damaged, and the errno of a failed read
// otherwise.
Result<Meta> read_meta(int dir, const std::string& id)
{
    std::string name = file(id, META);
    auto fd = open_at(dir, name, O_RDONLY);
    if (!fd) {
        // ENOENT: no entry; EINVAL: a symlink or a FIFO in its place.
        return tl::unexpected(fd.error());
    }

    // One more octet than allowed tells a file that is too long.
    std::string text(max_meta_size + 1, '\0');
    size_t got = 0;
    while (got < text.size()) {
        ssize_t n = ::read(fd->get(), text.data() + got, text.size() - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return tl::unexpected(sys_error("read " + name, errno));
        }
        if (n == 0) {
            break;
        }
        got += static_cast<size_t>(n);
    }
    text.resize(got);

    auto m = parse_meta(text);
    if (!m) {
        return fail(name + ": " + m.error().text, EINVAL);
    }
    if (m->hash.compare(0, ID_LEN, id) != 0) {
        return fail(name + ": hash does not match the file name", EINVAL);
    }
    return m;
}

// Replace ID.meta atomically: a complete new file, on disk, then
// renamed over the old one, then the directory on disk too. Without
// `durable` the two syncs are left out: for a state whose loss in a
// crash costs nothing (a new entry at offset 0 is answered like an
// unknown token; a resume count only bounds abuse), still never torn.
Result<void> write_meta(int dir, const std::string& id, const Meta& m,
                        bool durable = true)
{
    auto text = format_meta(m);
    if (!text) {
        return tl::unexpected(text.error());
    }
    std::string tmp = file(id, TMP);
    auto fd = open_at(dir, tmp, O_WRONLY | O_CREAT | O_TRUNC);
    if (!fd) {
        return tl::unexpected(fd.error());
    }
    auto ok = pwrite_all(fd->get(), *text, 0, tmp);
    if (ok && durable) {
        ok = fsync_fd(fd->get(), tmp);
    }
    fd->reset();
    if (ok) {
        ok = rename_at(dir, tmp, file(id, META));
    }
    if (!ok) {
        // Nothing committed; the temporary file would only be residue.
        (void)unlink_at(dir, tmp);
        return ok;
    }
    if (!durable) {
        return {};
    }
    return fsync_fd(dir, "spool directory");
}

// Remove every file of an entry; the meta file first (the entry is gone
// from that instant), the lock file last (see the top of this file).
// Every file of an entry, its mark in PARTIAL_DIR (`pdir`, when there
// is one) after its meta, and its lock last.
Result<void> remove_files(int dir, int pdir, const std::string& id)
{
    Result<void> first_error;
    for (Kind k : {META, DATA, WANT, TMP, LOCK}) {
        if (k == DATA && pdir >= 0) {
            auto r = unlink_at(pdir, id);
            if (!r && first_error) {
                first_error = tl::unexpected(r.error());
            }
        }
        auto r = unlink_at(dir, file(id, k));
        if (!r && first_error) {
            first_error = tl::unexpected(r.error());
        }
    }
    return first_error;
}

// ---------------------------------------------------------------------
// Locks

struct Lock {
    Fd fd;             ///< holds the lock when valid
    bool held = false; ///< another process (or Entry) has it
};

// Try to take ID.lock without waiting. With `create` a missing lock file
// is made; without it a missing one means that nobody holds the entry
// (the Lock comes back with neither fd nor held).
Result<Lock> try_lock(int dir, const std::string& id, bool create)
{
    std::string name = file(id, LOCK);
    auto fd = open_at(dir, name, O_RDONLY);
    if (!fd && fd.error().code == ENOENT && create) {
        fd = open_at(dir, name, O_RDWR | O_CREAT);
    }
    if (!fd) {
        if (fd.error().code == ENOENT) {
            return Lock{};
        }
        return tl::unexpected(fd.error());
    }
    if (::flock(fd->get(), LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            return Lock{Fd(), true};
        }
        return tl::unexpected(sys_error("flock " + name, errno));
    }

    // The file we locked must still be the one the name points to: if
    // the entry was removed meanwhile, our lock guards nothing. That
    // counts as held: someone was busy with the entry a moment ago.
    struct stat mine, now_there;
    if (fstat(fd->get(), &mine) != 0 || !exists_at(dir, name, &now_there)
        || mine.st_ino != now_there.st_ino || mine.st_dev != now_there.st_dev) {
        return Lock{Fd(), true};
    }
    return Lock{std::move(*fd), false};
}

// ---------------------------------------------------------------------
// Data

// SHA-256 over the first `len` octets of `fd`; fails with EINVAL when
// the file is shorter.
Result<MdCtx> hash_prefix(int fd, int64_t len)
{
    MdCtx c = new_sha256();
    std::vector<char> buf(65536);
    int64_t pos = 0;
    while (pos < len) {
        size_t want =
            static_cast<size_t>(std::min<int64_t>(len - pos, buf.size()));
        ssize_t n = ::pread(fd, buf.data(), want, pos);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return tl::unexpected(sys_error("read data", errno));
        }
        if (n == 0) {
            return fail("data file shorter than its offset", EINVAL);
        }
        update(c.get(), buf.data(), static_cast<size_t>(n));
        pos += n;
    }
    return c;
}

// The octets stored in ID.data, or -1 when there is no such file.
int64_t data_size(int dir, const std::string& id)
{
    struct stat st;
    if (!exists_at(dir, file(id, DATA), &st) || !S_ISREG(st.st_mode)) {
        return -1;
    }
    return st.st_size;
}

// What every Entry and the Spool share; entries may outlive the Spool.
struct Shared {
    Fd dir;
    Fd pdir; ///< PARTIAL_DIR, or none (then create() scans the spool)
    std::string path;
    Limits limits;
};

// ---------------------------------------------------------------------
// Entry

class EntryImpl final : public Entry {
public:
    EntryImpl(std::shared_ptr<Shared> sh, std::string id, Fd lock, Fd data,
              Meta meta, MdCtx ctx)
        : sh_(std::move(sh)), id_(std::move(id)), lock_(std::move(lock)),
          data_(std::move(data)), meta_(std::move(meta)),
          written_(meta_.offset), ctx_(std::move(ctx)),
          line_ctx_(copy_ctx(ctx_.get())), line_pos_(meta_.offset),
          last_checkpoint_(now())
    {
    }

    const std::string& id() const override { return id_; }
    int64_t offset() const override { return meta_.offset; }
    std::string sha256() const override { return meta_.sha256; }
    int64_t written() const override { return written_; }

    Result<void> append(std::string_view bytes, bool line_end) override;
    bool checkpoint_due() const override;
    Result<void> checkpoint() override;
    Result<size_t> read(int64_t pos, char* buf, size_t n) override;
    bool want_takeover() const override;
    Result<void> complete(const std::string& queue_id) override;
    Result<void> refuse(const std::string& verdict) override;
    Result<void> remove() override;

private:
    std::shared_ptr<Shared> sh_;
    std::string id_;
    Fd lock_;
    Fd data_;
    Meta meta_;        // as last committed
    int64_t written_;  // octets in the data file that count for us
    MdCtx ctx_;        // over [0, written_)
    MdCtx line_ctx_;   // over [0, line_pos_)
    int64_t line_pos_; // the last line end appended
    bool at_line_start_ = true;
    std::time_t last_checkpoint_;
    bool closed_ = false; // completed, refused or removed
    bool broken_ = false; // a disk failure left the file in doubt

    Result<void> usable() const;
    Result<void> tombstone(State state, const std::string& queue_id,
                           const std::string& verdict);
};

Result<void> EntryImpl::usable() const
{
    if (closed_) {
        return fail("resume entry " + id_ + " is closed", EINVAL);
    }
    if (broken_) {
        return fail("resume entry " + id_ + " had a disk error", EIO);
    }
    return {};
}

Result<void> EntryImpl::append(std::string_view bytes, bool line_end)
{
    if (auto ok = usable(); !ok) {
        return ok;
    }

    // Only a real line end may become an offset: a caller that says
    // otherwise would make us tell a client a mid-line offset.
    if (line_end && (bytes.empty() ? !at_line_start_ : bytes.back() != '\n')) {
        return fail("resume entry " + id_ + ": line end without LF", EINVAL);
    }

    // The size limit is checked before anything is written.
    int64_t limit = sh_->limits.entry_size_limit;
    if (limit > 0 && written_ + static_cast<int64_t>(bytes.size()) > limit) {
        return fail("resume entry " + id_ + ": over the size limit", EFBIG);
    }

    if (!bytes.empty()) {
        auto ok = pwrite_all(data_.get(), bytes, written_, file(id_, DATA));
        if (!ok) {
            broken_ = true;
            return ok;
        }
        update(ctx_.get(), bytes.data(), bytes.size());
        written_ += static_cast<int64_t>(bytes.size());
        at_line_start_ = bytes.back() == '\n';
    }

    // Remember the digest state here: a checkpoint may cut here later.
    if (line_end) {
        if (EVP_MD_CTX_copy_ex(line_ctx_.get(), ctx_.get()) != 1) {
            log::panic("resumedb: cannot copy a SHA-256 context");
        }
        line_pos_ = written_;
    }
    return {};
}

bool EntryImpl::checkpoint_due() const
{
    if (closed_ || broken_) {
        return false;
    }
    int64_t pending = line_pos_ - meta_.offset;
    if (pending <= 0) {
        return false;
    }
    const Limits& l = sh_->limits;
    return (l.checkpoint_size > 0 && pending >= l.checkpoint_size)
           || (l.checkpoint_time > 0
               && now() - last_checkpoint_ >= l.checkpoint_time);
}

Result<void> EntryImpl::checkpoint()
{
    if (auto ok = usable(); !ok) {
        return ok;
    }
    last_checkpoint_ = now();
    if (line_pos_ == meta_.offset) {
        return {};
    }

    // Data first: the meta must never point past what is on disk.
    auto ok = fsync_fd(data_.get(), file(id_, DATA));
    if (!ok) {
        broken_ = true;
        return ok;
    }
    Meta m = meta_;
    m.offset = line_pos_;
    m.sha256 = digest_so_far(line_ctx_.get());
    m.updated = now();
    ok = write_meta(sh_->dir.get(), id_, m);
    if (!ok) {
        // The old or the new meta may be in place: either is valid, but
        // we no longer know which, so this Entry stops here.
        broken_ = true;
        return ok;
    }
    meta_ = std::move(m);
    return {};
}

Result<size_t> EntryImpl::read(int64_t pos, char* buf, size_t n)
{
    if (pos < 0) {
        return fail("resume entry " + id_ + ": negative read offset", EINVAL);
    }
    if (pos >= meta_.offset || n == 0) {
        return 0;
    }
    n = static_cast<size_t>(std::min<int64_t>(n, meta_.offset - pos));
    for (;;) {
        ssize_t got = ::pread(data_.get(), buf, n, pos);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            return tl::unexpected(sys_error("read " + file(id_, DATA), errno));
        }
        if (got == 0) {
            return fail(file(id_, DATA) + ": shorter than its offset", EIO);
        }
        return static_cast<size_t>(got);
    }
}

bool EntryImpl::want_takeover() const
{
    // A stat() per poll: cheap enough for every 250 ms.
    return exists_at(sh_->dir.get(), file(id_, WANT));
}

Result<void> EntryImpl::tombstone(State state, const std::string& queue_id,
                                  const std::string& verdict)
{
    if (auto ok = usable(); !ok) {
        return ok;
    }
    Meta m = meta_;
    m.state = state;
    m.queue_id = queue_id;
    m.verdict = verdict;
    m.updated = now();
    auto ok = write_meta(sh_->dir.get(), id_, m);
    if (!ok) {
        broken_ = true;
        return ok;
    }
    meta_ = std::move(m);
    closed_ = true;

    // The tombstone is committed; the data and a takeover request are
    // residue now. If unlinking fails, expire() sweeps them later, so
    // the caller is not told of it.
    (void)unlink_at(sh_->dir.get(), file(id_, DATA));
    (void)unlink_at(sh_->dir.get(), file(id_, WANT));
    if (sh_->pdir) {
        (void)unlink_at(sh_->pdir.get(), id_);
    }
    return {};
}

Result<void> EntryImpl::complete(const std::string& queue_id)
{
    if (!queue_id_ok(queue_id)) {
        return fail("resume entry " + id_ + ": bad queue id", EINVAL);
    }
    return tombstone(State::done, queue_id, "");
}

Result<void> EntryImpl::refuse(const std::string& verdict)
{
    if (verdict.empty() || verdict.size() > max_verdict_size) {
        return fail("resume entry " + id_ + ": empty or too long verdict",
                    EINVAL);
    }
    return tombstone(State::refused, "", verdict);
}

Result<void> EntryImpl::remove()
{
    if (closed_) {
        return fail("resume entry " + id_ + " is closed", EINVAL);
    }
    closed_ = true;
    return remove_files(sh_->dir.get(), sh_->pdir.get(), id_);
}

// ---------------------------------------------------------------------
// Spool

// A valid entry found by a scan.
struct Found {
    std::string id;
    Meta meta;
    int64_t stored = 0; // octets in ID.data (0 when there is none)
};

class SpoolImpl final : public Spool {
public:
    explicit SpoolImpl(std::shared_ptr<Shared> sh) : sh_(std::move(sh)) {}

    const Limits& limits() const override { return sh_->limits; }
    Result<Created> create(std::string_view binding, std::string_view client,
                           int64_t declared) override;
    Result<Claim> claim(std::string_view token,
                        std::string_view binding) override;
    Result<bool> abort(std::string_view token) override;
    int expire(std::time_t now) override;
    void sweep(std::time_t now) override { maybe_expire(now); }
    std::vector<EntryInfo> list() override;
    Totals totals() override;
    Result<int> purge(std::string_view id) override;
    std::vector<std::string> check(bool repair) override;

private:
    std::shared_ptr<Shared> sh_;

    int dir() const { return sh_->dir.get(); }
    int pdir() const { return sh_->pdir.get(); }
    std::map<std::string, unsigned> scan();
    std::vector<std::string> marks();
    void ensure_mark(const std::string& id);
    std::vector<Found> collect(bool partial_only = false);
    bool due(const Meta& m, std::time_t t) const;
    void maybe_expire(std::time_t t);
    std::time_t last_expire_ = 0;
    bool stamp_warned_ = false;
    Result<void> ask_takeover(const std::string& id);
};

// Call f(name) for every name in the directory `dirfd` (a fresh
// descriptor of it is read, so `dirfd` itself keeps its position).
template <class F> void each_name(int dirfd, F f)
{
    int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return;
    }
    DIR* d = ::fdopendir(fd);
    if (d == nullptr) {
        ::close(fd);
        return;
    }
    while (dirent* e = ::readdir(d)) {
        f(std::string_view(e->d_name));
    }
    ::closedir(d);
}

// Every entry id in the directory with the kinds of file it has.
std::map<std::string, unsigned> SpoolImpl::scan()
{
    std::map<std::string, unsigned> out;
    each_name(dir(), [&](std::string_view name) {
        if (name.size() <= ID_LEN || !is_hex(name.substr(0, ID_LEN), ID_LEN)) {
            return;
        }
        for (const Suffix& s : suffixes) {
            if (name.substr(ID_LEN) == s.text) {
                out[std::string(name.substr(0, ID_LEN))] |= s.kind;
            }
        }
    });
    return out;
}

// The ids marked in PARTIAL_DIR.
std::vector<std::string> SpoolImpl::marks()
{
    std::vector<std::string> out;
    each_name(pdir(), [&](std::string_view name) {
        if (is_hex(name, ID_LEN)) {
            out.emplace_back(name);
        }
    });
    return out;
}

// A partial entry made before PARTIAL_DIR existed (or while it could
// not be written) has no mark, and would escape the quotas: claim() and
// the sweep give it one.
void SpoolImpl::ensure_mark(const std::string& id)
{
    if (pdir() >= 0 && !exists_at(pdir(), id)) {
        (void)open_at(pdir(), id, O_WRONLY | O_CREAT);
    }
}

// Every entry whose meta file is valid.
std::vector<Found> SpoolImpl::collect(bool partial_only)
{
    // A partial entry always has its data file and a tombstone never
    // keeps one for long, so `partial_only` skips most tombstones
    // without reading their meta files.
    std::vector<Found> out;
    if (partial_only && pdir() >= 0) {
        for (const std::string& id : marks()) {
            auto m = read_meta(dir(), id);
            if (!m) {
                continue;
            }
            int64_t stored = data_size(dir(), id);
            out.push_back(
                Found{id, std::move(*m), std::max<int64_t>(stored, 0)});
        }
        return out;
    }
    // Without PARTIAL_DIR, partial entries are those with a data file.
    for (const auto& [id, kinds] : scan()) {
        if ((kinds & META) == 0 || (partial_only && (kinds & DATA) == 0)) {
            continue;
        }
        auto m = read_meta(dir(), id);
        if (!m) {
            continue;
        }
        int64_t stored = data_size(dir(), id);
        out.push_back(Found{id, std::move(*m), std::max<int64_t>(stored, 0)});
    }
    return out;
}

bool SpoolImpl::due(const Meta& m, std::time_t t) const
{
    const Limits& l = sh_->limits;
    bool idle = l.ttl > 0 && t - m.updated > l.ttl;
    if (m.state != State::partial) {
        return idle;
    }
    return idle || (l.max_lifetime > 0 && t - m.created > l.max_lifetime)
           || (l.max_resumes > 0 && m.resumes > l.max_resumes);
}

// Leave a takeover request for the owner of `id`.
Result<void> SpoolImpl::ask_takeover(const std::string& id)
{
    auto fd = open_at(dir(), file(id, WANT), O_WRONLY | O_CREAT);
    if (!fd) {
        return tl::unexpected(fd.error());
    }
    return {};
}

Result<Created> SpoolImpl::create(std::string_view binding,
                                  std::string_view client, int64_t declared)
{
    if (declared < 0 || client.size() > max_client_size) {
        return fail("resume: bad declared size or client key", EINVAL);
    }

    // What is due does not count against anyone; the sweep that
    // removes it runs every few seconds, not at every create.
    std::time_t t = now();
    maybe_expire(t);

    // The quotas: octets over all partial entries, each charged the
    // larger of what it holds and what it announced; entries per client.
    // Counting and adding the new entry's mark are one step for all
    // processes (an flock on PARTIAL_DIR, or on the spool without it),
    // or clients arriving at once would all fit under the same count.
    int quota_fd = pdir() >= 0 ? pdir() : dir();
    while (::flock(quota_fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            return tl::unexpected(sys_error("lock the resume spool", errno));
        }
    }
    struct Unlock {
        int fd;
        ~Unlock() { ::flock(fd, LOCK_UN); }
    } unlock{quota_fd};
    const Limits& l = sh_->limits;
    int64_t charged = 0;
    int of_client = 0;
    for (const Found& f : collect(true)) {
        if (f.meta.state != State::partial || due(f.meta, t)) {
            continue;
        }
        charged += std::max(f.stored, f.meta.declared);
        if (f.meta.client == client) {
            ++of_client;
        }
    }
    if (l.spool_size_limit > 0
        && (charged >= l.spool_size_limit
            || charged + declared > l.spool_size_limit)) {
        return Created{Created::Kind::spool_full, "", nullptr};
    }
    if (l.client_limit > 0 && of_client >= l.client_limit) {
        return Created{Created::Kind::client_full, "", nullptr};
    }

    // A fresh token. A collision of 128 bits of id is not going to
    // happen, but losing a lock race to a sweeper in another process
    // can (try_lock above), so a few attempts are made.
    for (int attempt = 0; attempt < 3; ++attempt) {
        unsigned char raw[18];
        if (RAND_bytes(raw, sizeof raw) != 1) {
            return fail("resume: RAND_bytes failed", EIO);
        }
        unsigned char b64[32] = {};
        EVP_EncodeBlock(b64, raw, sizeof raw);
        std::string token(reinterpret_cast<char*>(b64), 24);
        for (char& c : token) {
            c = c == '+' ? '-' : c == '/' ? '_' : c;
        }
        std::string hash = sha256_hex(token);
        std::string id = hash.substr(0, ID_LEN);

        // The lock file first, so that no other file of ours is ever
        // without a lock file that somebody holds.
        auto lock = open_at(dir(), file(id, LOCK), O_RDWR | O_CREAT | O_EXCL);
        if (!lock) {
            if (lock.error().code == EEXIST) {
                continue;
            }
            return tl::unexpected(lock.error());
        }
        struct stat mine, there;
        if (::flock(lock->get(), LOCK_EX | LOCK_NB) != 0
            || fstat(lock->get(), &mine) != 0
            || !exists_at(dir(), file(id, LOCK), &there)
            || mine.st_ino != there.st_ino) {
            continue;
        }

        // Its mark, an empty data file, then the meta that makes the
        // entry real.
        if (pdir() >= 0) {
            auto mark = open_at(pdir(), id, O_WRONLY | O_CREAT);
            if (!mark) {
                (void)remove_files(dir(), pdir(), id);
                return tl::unexpected(mark.error());
            }
        }
        auto data = open_at(dir(), file(id, DATA), O_RDWR | O_CREAT | O_EXCL);
        if (!data) {
            (void)remove_files(dir(), pdir(), id);
            return tl::unexpected(data.error());
        }
        MdCtx ctx = new_sha256();
        Meta m;
        m.state = State::partial;
        m.hash = hash;
        m.binding = sha256_hex(binding);
        m.client = client;
        m.declared = declared;
        m.offset = 0;
        m.sha256 = digest_so_far(ctx.get());
        m.created = t;
        m.updated = t;
        if (auto ok = write_meta(dir(), id, m, false); !ok) {
            (void)remove_files(dir(), pdir(), id);
            return tl::unexpected(ok.error());
        }
        Created out;
        out.kind = Created::Kind::ok;
        out.token = std::move(token);
        out.entry = std::make_unique<EntryImpl>(sh_, id, std::move(*lock),
                                                std::move(*data), std::move(m),
                                                std::move(ctx));
        return out;
    }
    return fail("resume: could not create a spool entry", EAGAIN);
}

Result<Claim> SpoolImpl::claim(std::string_view token, std::string_view binding)
{
    Claim none;
    if (!token_syntax_ok(token)) {
        return none;
    }
    std::time_t t = now();
    maybe_expire(t);
    std::string hash = sha256_hex(token);
    std::string id = hash.substr(0, ID_LEN);
    std::string want_binding = sha256_hex(binding);

    // Whether the meta file, read now, is this token's and this
    // binding's; and what it says when it is a tombstone.
    auto look = [&](const Meta& m) -> std::optional<Claim> {
        if (CRYPTO_memcmp(m.hash.data(), hash.data(), 64) != 0) {
            return Claim{};
        }
        // A tombstone past its TTL is forgotten, swept or not.
        if (m.state != State::partial && due(m, t)) {
            return Claim{};
        }
        if (CRYPTO_memcmp(m.binding.data(), want_binding.data(), 64) != 0) {
            return Claim{Claim::Kind::mismatch, nullptr, "", ""};
        }
        if (m.state == State::done) {
            return Claim{Claim::Kind::done, nullptr, m.queue_id, ""};
        }
        if (m.state == State::refused) {
            return Claim{Claim::Kind::refused, nullptr, "", m.verdict};
        }
        return std::nullopt;
    };

    auto m = read_meta(dir(), id);
    if (!m) {
        int e = m.error().code;
        if (e == ENOENT || e == EINVAL) {
            return none;
        }
        return tl::unexpected(m.error());
    }
    if (auto answer = look(*m)) {
        return std::move(*answer);
    }

    // A partial entry: ours only if nobody else has it.
    auto lock = try_lock(dir(), id, true);
    if (!lock) {
        return tl::unexpected(lock.error());
    }
    if (lock->held) {
        if (auto ok = ask_takeover(id); !ok) {
            return tl::unexpected(ok.error());
        }
        return Claim{Claim::Kind::busy, nullptr, "", ""};
    }

    // The owner may have changed it before letting go: read it again.
    m = read_meta(dir(), id);
    if (!m) {
        int e = m.error().code;
        if (e == ENOENT || e == EINVAL) {
            return none;
        }
        return tl::unexpected(m.error());
    }
    if (auto answer = look(*m)) {
        return std::move(*answer);
    }

    // Past its TTL or lifetime, and nobody holds it: gone, as the next
    // sweep would have it.
    if (due(*m, t)) {
        if (auto ok = remove_files(dir(), pdir(), id); !ok) {
            return tl::unexpected(ok.error());
        }
        return none;
    }
    if (auto ok = unlink_at(dir(), file(id, WANT)); !ok) {
        return tl::unexpected(ok.error());
    }
    ensure_mark(id);

    // The data must hold the committed prefix, and that prefix must be
    // what the digest says; otherwise the entry is damaged and goes.
    auto data = open_at(dir(), file(id, DATA), O_RDWR);
    if (!data && data.error().code != ENOENT && data.error().code != EINVAL) {
        return tl::unexpected(data.error());
    }
    Result<MdCtx> ctx = data ? hash_prefix(data->get(), m->offset)
                             : Result<MdCtx>(fail("no data file", EINVAL));
    if (!ctx && ctx.error().code != EINVAL) {
        return tl::unexpected(ctx.error());
    }
    if (!ctx || digest_so_far(ctx->get()) != m->sha256) {
        if (auto ok = remove_files(dir(), pdir(), id); !ok) {
            return tl::unexpected(ok.error());
        }
        return none;
    }

    // Too many resumes: the entry goes, the client starts over.
    if (sh_->limits.max_resumes > 0 && m->resumes >= sh_->limits.max_resumes) {
        if (auto ok = remove_files(dir(), pdir(), id); !ok) {
            return tl::unexpected(ok.error());
        }
        return none;
    }

    // Cut off whatever tail the last owner left uncommitted.
    struct stat st;
    if (fstat(data->get(), &st) != 0) {
        return tl::unexpected(sys_error("fstat " + file(id, DATA), errno));
    }
    if (st.st_size > m->offset) {
        if (auto ok = truncate_fd(data->get(), m->offset, file(id, DATA));
            !ok) {
            return tl::unexpected(ok.error());
        }
    }

    m->resumes += 1;
    m->updated = now();
    if (auto ok = write_meta(dir(), id, *m, false); !ok) {
        return tl::unexpected(ok.error());
    }
    Claim out;
    out.kind = Claim::Kind::partial;
    out.entry = std::make_unique<EntryImpl>(sh_, id, std::move(lock->fd),
                                            std::move(*data), std::move(*m),
                                            std::move(*ctx));
    return out;
}

Result<bool> SpoolImpl::abort(std::string_view token)
{
    if (!token_syntax_ok(token)) {
        return false;
    }
    std::string hash = sha256_hex(token);
    std::string id = hash.substr(0, ID_LEN);
    auto is_ours = [&](const Result<Meta>& m) {
        return m && m->state == State::partial
               && CRYPTO_memcmp(m->hash.data(), hash.data(), 64) == 0;
    };
    if (!is_ours(read_meta(dir(), id))) {
        return false;
    }
    auto lock = try_lock(dir(), id, false);
    if (!lock) {
        return tl::unexpected(lock.error());
    }
    if (lock->held) {
        if (auto ok = ask_takeover(id); !ok) {
            return tl::unexpected(ok.error());
        }
        return fail("resume entry " + id + " is owned by a live session",
                    EBUSY);
    }
    if (!is_ours(read_meta(dir(), id))) {
        return false;
    }
    if (auto ok = remove_files(dir(), pdir(), id); !ok) {
        return tl::unexpected(ok.error());
    }
    return true;
}

// The full sweep, at most every EXPIRE_EVERY seconds from create(),
// claim() and the server's timer, in all processes together: it looks
// at every entry, and most entries are tombstones waiting out their
// TTL, each looked at once per sweep. Nothing waits for a sweep: what is
// due is already ignored by the quotas and by claim(); the sweep only
// gives the disk space back.
void SpoolImpl::maybe_expire(std::time_t t)
{
    constexpr std::time_t EXPIRE_EVERY = 60;
    if (last_expire_ != 0 && t >= last_expire_
        && t - last_expire_ < EXPIRE_EVERY) {
        return;
    }
    last_expire_ = t;

    // SWEEP_STAMP's time says when the last sweep began, in any
    // process, and its lock lets one process at a time in. Without the
    // stamp (a read-only spool, say) we sweep anyway.
    // (Not open_at(): the stamp is no state of any entry, and the crash
    // tests count the writes to entries.)
    constexpr int flags = O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;
    Fd stamp(::openat(dir(), SWEEP_STAMP, flags));
    bool fresh = false; // made now: its time says nothing
    if (!stamp && errno == ENOENT) {
        stamp =
            Fd(::openat(dir(), SWEEP_STAMP, flags | O_CREAT | O_EXCL, 0600));
        fresh = static_cast<bool>(stamp);
        // Made by root (resumedb, -S, -L): the spool's owner must be able
        // to stamp it too, or every process would sweep on its own.
        struct stat top;
        if (fresh && ::geteuid() == 0 && ::fstat(dir(), &top) == 0) {
            (void)::fchown(stamp.get(), top.st_uid, top.st_gid);
        }
    }
    if (!stamp && !stamp_warned_) {
        stamp_warned_ = true;
        log::warning("resume spool {}: {}: {}; every process sweeps on "
                     "its own",
                     sh_->path, SWEEP_STAMP, std::strerror(errno));
    }
    if (stamp) {
        struct stat st;
        if (::flock(stamp.get(), LOCK_EX | LOCK_NB) != 0
            || (!fresh && ::fstat(stamp.get(), &st) == 0 && S_ISREG(st.st_mode)
                && t >= st.st_mtime && t - st.st_mtime < EXPIRE_EVERY)) {
            return;
        }
        (void)::futimens(stamp.get(), nullptr);
    }
    expire(t);
}

int SpoolImpl::expire(std::time_t t)
{
    int removed = 0;
    const std::time_t ttl = sh_->limits.ttl;
    for (const auto& [id, kinds] : scan()) {
        // Most entries are tombstones (a meta and its lock, nothing else)
        // waiting for their TTL: a meta written less than a TTL ago
        // cannot be due, and then there is nothing to do. Its time is
        // the meta file's; "updated" inside is never later, so at worst
        // a tombstone goes one sweep late. (A meta from the future, as
        // the clock sees it, is read in full.)
        if ((kinds & (DATA | TMP | WANT)) == 0 && (kinds & META) != 0) {
            struct stat st;
            if (exists_at(dir(), file(id, META), &st) && t >= st.st_mtime
                && (ttl <= 0 || t - st.st_mtime < ttl)) {
                continue;
            }
        }

        // Whatever a live session owns is left alone.
        auto lock = try_lock(dir(), id, false);
        if (!lock || lock->held) {
            continue;
        }

        // Files without a meta, nobody holding them: a process died
        // before it made the entry real, or while removing it.
        if ((kinds & META) == 0) {
            (void)remove_files(dir(), pdir(), id);
            continue;
        }

        // A damaged meta is kept for a TTL so that check() can report
        // it; then it goes like an idle entry.
        auto m = read_meta(dir(), id);
        if (!m) {
            struct stat st;
            if (m.error().code == EINVAL && sh_->limits.ttl > 0
                && exists_at(dir(), file(id, META), &st)
                && t - st.st_mtime > sh_->limits.ttl) {
                if (remove_files(dir(), pdir(), id)) {
                    ++removed;
                }
            }
            continue;
        }
        if (due(*m, t)) {
            if (remove_files(dir(), pdir(), id)) {
                ++removed;
            }
            continue;
        }

        if (m->state == State::partial) {
            ensure_mark(id);
        }

        // Residue of a writer that died: a temporary meta, and the data
        // or takeover request of an entry that became a tombstone.
        if ((kinds & TMP) != 0) {
            (void)unlink_at(dir(), file(id, TMP));
        }
        if (m->state != State::partial) {
            if ((kinds & DATA) != 0) {
                (void)unlink_at(dir(), file(id, DATA));
            }
            if ((kinds & WANT) != 0) {
                (void)unlink_at(dir(), file(id, WANT));
            }
        }
    }

    // Marks of entries that are no longer partial (a process died
    // between a tombstone and the mark's removal) or gone; an entry
    // being made has its lock held, and is left alone.
    if (pdir() >= 0) {
        for (const std::string& id : marks()) {
            auto m = read_meta(dir(), id);
            if (m && m->state == State::partial) {
                continue;
            }
            auto lock = try_lock(dir(), id, false);
            if (!lock || lock->held) {
                continue;
            }
            m = read_meta(dir(), id);
            if (!m || m->state != State::partial) {
                (void)unlink_at(pdir(), id);
            }
        }
    }
    return removed;
}

std::vector<EntryInfo> SpoolImpl::list()
{
    std::vector<EntryInfo> out;
    for (Found& f : collect()) {
        EntryInfo e;
        e.id = f.id;
        e.state = f.meta.state;
        e.offset = f.meta.offset;
        e.declared = f.meta.declared;
        e.sha256 = f.meta.sha256;
        e.client = f.meta.client;
        e.created = f.meta.created;
        e.updated = f.meta.updated;
        e.resumes = f.meta.resumes;
        e.queue_id = f.meta.queue_id;
        e.verdict = f.meta.verdict;
        auto lock = try_lock(dir(), f.id, false);
        e.locked = lock && lock->held;
        out.push_back(std::move(e));
    }
    std::sort(
        out.begin(), out.end(), [](const EntryInfo& a, const EntryInfo& b) {
            return a.created != b.created ? a.created < b.created : a.id < b.id;
        });
    return out;
}

Totals SpoolImpl::totals()
{
    Totals t;
    for (const Found& f : collect()) {
        if (f.meta.state != State::partial) {
            ++t.tombstones;
            continue;
        }
        ++t.entries;
        t.octets += f.stored;
        t.charged += std::max(f.stored, f.meta.declared);
    }
    return t;
}

Result<int> SpoolImpl::purge(std::string_view which)
{
    bool all = which == "ALL";
    if (!all && !is_hex(which, ID_LEN)) {
        return fail("bad spool entry id: " + std::string(which.substr(0, 64)),
                    EINVAL);
    }
    int removed = 0;
    for (const auto& [id, kinds] : scan()) {
        if (!all && id != which) {
            continue;
        }
        auto lock = try_lock(dir(), id, false);
        if (!lock) {
            return tl::unexpected(lock.error());
        }
        if (lock->held) {
            continue;
        }
        if (auto ok = remove_files(dir(), pdir(), id); !ok) {
            return tl::unexpected(ok.error());
        }
        if ((kinds & META) != 0) {
            ++removed;
        }
    }
    return removed;
}

std::vector<std::string> SpoolImpl::check(bool repair)
{
    std::vector<std::string> problems;
    for (const auto& [id, kinds] : scan()) {
        auto lock = try_lock(dir(), id, false);
        bool owned = !lock || lock->held;
        auto report = [&](const std::string& what, bool fixable) {
            std::string line = id + ": " + what;
            if (repair && fixable) {
                line += owned ? " (owned by a live session: left alone)"
                              : " (removed)";
            }
            problems.push_back(line);
            return repair && fixable && !owned;
        };

        // Files without a meta file; not a problem while someone holds
        // the lock (an entry being made or removed).
        if ((kinds & META) == 0) {
            if (!owned && report("files without a meta file", true)) {
                (void)remove_files(dir(), pdir(), id);
            }
            continue;
        }

        auto m = read_meta(dir(), id);
        if (!m) {
            if (report(m.error().text, true)) {
                (void)remove_files(dir(), pdir(), id);
            }
            continue;
        }
        if ((kinds & TMP) != 0 && !owned) {
            if (report("leftover " + file(id, TMP), true)) {
                (void)unlink_at(dir(), file(id, TMP));
            }
        }
        if (m->state != State::partial) {
            if ((kinds & DATA) != 0 && !owned
                && report("tombstone with a data file", true)) {
                (void)unlink_at(dir(), file(id, DATA));
            }
            continue;
        }

        // A partial entry: the committed prefix must be there and match.
        auto data = open_at(dir(), file(id, DATA), O_RDONLY);
        std::string bad;
        if (!data) {
            bad = data.error().text;
        } else if (auto ctx = hash_prefix(data->get(), m->offset); !ctx) {
            bad = ctx.error().text;
        } else if (digest_so_far(ctx->get()) != m->sha256) {
            bad = "data does not match its sha256";
        }
        if (!bad.empty() && report(bad, true)) {
            (void)remove_files(dir(), pdir(), id);
        }
    }
    return problems;
}

} // namespace

// ---------------------------------------------------------------------
// Public functions

Result<std::unique_ptr<Spool>> Spool::open(const std::string& path,
                                           const Limits& limits)
{
    // Made if missing; private to the mail system either way.
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
        return tl::unexpected(sys_error("mkdir " + path, errno));
    }
    int fd =
        ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        return tl::unexpected(sys_error("open " + path, errno));
    }
    auto sh = std::make_shared<Shared>();
    sh->dir.reset(fd);
    sh->path = path;
    sh->limits = limits;
    if (::faccessat(fd, ".", W_OK | X_OK, AT_EACCESS) != 0) {
        return tl::unexpected(sys_error(path, errno));
    }

    // PARTIAL_DIR, made by whoever opens the spool first, with the
    // spool's owner (resumedb(1) runs as root). Where we cannot write
    // it, create() falls back to reading the whole spool.
    struct stat top;
    if (::mkdirat(fd, PARTIAL_DIR, 0700) == 0 && ::fstat(fd, &top) == 0
        && ::geteuid() == 0) {
        (void)::fchownat(fd, PARTIAL_DIR, top.st_uid, top.st_gid,
                         AT_SYMLINK_NOFOLLOW);
    }
    int pfd = ::openat(fd, PARTIAL_DIR,
                       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (pfd >= 0) {
        sh->pdir.reset(pfd);
        if (::faccessat(pfd, ".", W_OK | X_OK, AT_EACCESS) != 0) {
            sh->pdir.reset();
        }
    }
    if (!sh->pdir) {
        log::warning("resume spool {}: cannot use {}/{}; every new "
                     "transfer reads the whole spool to count the quotas",
                     path, path, PARTIAL_DIR);
    }
    return std::unique_ptr<Spool>(std::make_unique<SpoolImpl>(std::move(sh)));
}

std::string short_hash(std::string_view token)
{
    return sha256_hex(token).substr(0, 12);
}

std::string digest_base64(const unsigned char (&digest)[32])
{
    unsigned char out[48] = {};
    int n = EVP_EncodeBlock(out, digest, 32);
    return std::string(reinterpret_cast<char*>(out), n > 0 ? n : 0);
}

bool token_syntax_ok(std::string_view token)
{
    if (token.size() < 16 || token.size() > 64) {
        return false;
    }
    for (char c : token) {
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
                  || (c >= '0' && c <= '9') || c == '-' || c == '_';
        if (!ok) {
            return false;
        }
    }
    return true;
}

} // namespace rs::resumedb
