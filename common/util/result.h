// SPDX-License-Identifier: MIT
// NAME
//   result.h - the error type of the data path
// DESCRIPTION
//   Peer, network, disk and downstream failures are values, not exceptions:
//   a function that can fail that way returns Result<T>. The Error carries
//   the errno (0 when there is none) and a text fit for a log line.
#pragma once

#include <string>
#include <tl/expected.hpp>
#include <utility>

namespace rs {

/// A failure: `code` is the errno value, or 0; `text` says what failed.
struct Error {
    int code = 0;
    std::string text;
};

template <class T> using Result = tl::expected<T, Error>;

/// Build the error side of a Result: `return fail("what", errno);`.
inline tl::unexpected<Error> fail(std::string text, int code = 0)
{
    return tl::unexpected<Error>(Error{code, std::move(text)});
}

} // namespace rs
