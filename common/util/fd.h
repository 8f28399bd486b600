// SPDX-License-Identifier: MIT
// NAME
//   fd.h - a move-only owner of a file descriptor
// DESCRIPTION
//   Fd closes what it holds when it goes out of scope. Handing the
//   descriptor to C code that will close it is an explicit release().
#pragma once

#include <unistd.h>
#include <utility>

namespace rs {

class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    Fd(Fd&& other) noexcept : fd_(other.release()) {}
    Fd& operator=(Fd&& other) noexcept
    {
        if (this != &other) {
            reset(other.release());
        }
        return *this;
    }
    ~Fd() { reset(); }

    int get() const { return fd_; }
    bool valid() const { return fd_ >= 0; }
    explicit operator bool() const { return valid(); }

    /// Give up ownership; the caller must close the descriptor.
    int release() { return std::exchange(fd_, -1); }

    void reset(int fd = -1)
    {
        if (fd_ >= 0) {
            ::close(fd_);
        }
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

} // namespace rs
