// SPDX-License-Identifier: MIT
// NAME
//   dict_db.cc - hash: and btree: tables (Berkeley DB 5.3, read-only)
// DESCRIPTION
//   The file is NAME.db, opened read-only at start-up. A lookup holds a
//   shared flock(2) on the file for its duration, because postmap(1)
//   takes an exclusive one while it rewrites the file; Postfix's daemons
//   lock the same way on Linux. Keys are tried with a trailing NUL and
//   without (see dict.h); a value's trailing NUL is dropped.
// BUGS
//   A file replaced by rename(2) instead of rewritten in place is not
//   noticed by changed(): the descriptor still names the old file, which
//   is also what Postfix sees.
// SEE ALSO
//   dict.h, postmap(1)
#include "common/mail/dict.h"

#include "common/util/text.h"
#include <cerrno>
#include <cstring>
#include <db.h>
#include <sys/file.h>
#include <sys/stat.h>

namespace rs::mail {

Result<std::unique_ptr<Dict>>
open_db_dict(std::string name, std::string_view type, std::string_view path);

namespace {

struct DbClose {
    void operator()(DB* db) const noexcept { db->close(db, 0); }
};
using DbPtr = std::unique_ptr<DB, DbClose>;

class DbDict : public Dict {
public:
    DbDict(std::string name, DbPtr db, int fd, timespec mtime)
        : Dict(std::move(name)), db_(std::move(db)), fd_(fd), mtime_(mtime)
    {
    }

    Result<std::optional<std::string>> lookup(std::string_view key) override
    {
        if (key.size() > dict_max_key_length) {
            return fail(name() + ": lookup key too long");
        }
        std::string k = text::lower(key);

        // Keep postmap from rewriting the file under the lookup.
        if (flock(fd_, LOCK_SH) != 0) {
            int err = errno;
            return fail(name() + ": lock: " + std::strerror(err), err);
        }
        auto r = get(k);
        flock(fd_, LOCK_UN);
        return r;
    }

    bool changed() const override
    {
        // Through the descriptor, so that this works after chroot.
        struct stat st {};
        if (fstat(fd_, &st) != 0) {
            return false;
        }
        return st.st_mtim.tv_sec != mtime_.tv_sec
               || st.st_mtim.tv_nsec != mtime_.tv_nsec;
    }

private:
    DbPtr db_;
    int fd_; // owned by db_
    timespec mtime_;

    // Once a variant matched, the table is known to use it; until then
    // both are tried, with the NUL first as postmap writes it.
    bool try_with_nul_ = true;
    bool try_without_nul_ = true;

    Result<std::optional<std::string>> get(const std::string& k)
    {
        if (try_with_nul_) {
            auto r = get_raw(k.c_str(), k.size() + 1);
            if (!r || r->has_value()) {
                if (r) {
                    try_without_nul_ = false;
                }
                return r;
            }
        }
        if (try_without_nul_) {
            auto r = get_raw(k.data(), k.size());
            if (r && r->has_value()) {
                try_with_nul_ = false;
            }
            return r;
        }
        return std::optional<std::string>();
    }

    Result<std::optional<std::string>> get_raw(const char* data, size_t size)
    {
        DBT key{};
        DBT val{};
        key.data = const_cast<char*>(data);
        key.size = static_cast<u_int32_t>(size);
        int rc = db_->get(db_.get(), nullptr, &key, &val, 0);
        if (rc == DB_NOTFOUND) {
            return std::optional<std::string>();
        }
        if (rc != 0) {
            return fail(name() + ": lookup: " + db_strerror(rc), rc);
        }
        std::string v(static_cast<const char*>(val.data), val.size);
        if (!v.empty() && v.back() == '\0') {
            v.pop_back();
        }
        return std::optional<std::string>(std::move(v));
    }
};

} // namespace

Result<std::unique_ptr<Dict>>
open_db_dict(std::string name, std::string_view type, std::string_view path)
{
    std::string file = std::string(path) + ".db";

    // db_create() only allocates; the open is what can name the file.
    DB* raw = nullptr;
    int rc = db_create(&raw, nullptr, 0);
    if (rc != 0) {
        return fail("db_create: " + std::string(db_strerror(rc)), rc);
    }
    DbPtr db(raw);
    rc = db->open(db.get(), nullptr, file.c_str(), nullptr,
                  type == "btree" ? DB_BTREE : DB_HASH, DB_RDONLY, 0);
    if (rc != 0) {
        // Berkeley DB returns errno values for system failures; its own
        // codes are negative.
        return fail("open database " + file + ": "
                        + (rc > 0 ? std::strerror(rc) : db_strerror(rc)),
                    rc > 0 ? rc : 0);
    }

    // The descriptor for locking and for noticing a rewrite.
    int fd = -1;
    rc = db->fd(db.get(), &fd);
    if (rc != 0) {
        return fail("open database " + file + ": " + db_strerror(rc));
    }
    struct stat st {};
    if (fstat(fd, &st) != 0) {
        int err = errno;
        return fail("fstat " + file + ": " + std::strerror(err), err);
    }
    return std::unique_ptr<Dict>(std::make_unique<DbDict>(
        std::move(name), std::move(db), fd, st.st_mtim));
}

} // namespace rs::mail
