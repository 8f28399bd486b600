// SPDX-License-Identifier: MIT
// NAME
//   send_options.cc - command line parsing
// SEE ALSO
//   send_options.h
#include "client/send_options.h"

#include "common/util/text.h"

namespace rs::send {

const char* usage_text()
{
    return "usage: resume-send [options] -f sender [--] recipient...\n"
           "  -m FILE             the message (default: standard input)\n"
           "  -s host[:port]      server (127.0.0.1:25; [v6addr]:port)\n"
           "  --helo NAME         EHLO name (the host name)\n"
           "  --tls none|may|encrypt   STARTTLS use (may)\n"
           "  --no-resume         plain SMTP, no XRESUME\n"
           "  --no-chunking       DATA even when CHUNKING is offered\n"
           "  --state-dir DIR     keep resume tokens there across runs\n"
           "  --timeout S         per read or write (300)\n"
           "  --give-up S         total time before exit 75 (3600)\n"
           "  --chunk N           BDAT chunk size in octets (1048576)\n"
           "  --report FILE       write the summary as key=value lines\n"
           "  -v                  log the dialogue on stderr\n"
           "  -q                  no progress and no summary\n";
}

Result<Server> parse_server(std::string_view spec)
{
    Server s;
    std::string_view host = spec;
    std::string_view port;

    // [v6addr] or [v6addr]:port; otherwise one ':' at most.
    if (!spec.empty() && spec.front() == '[') {
        auto close = spec.find(']');
        if (close == std::string_view::npos) {
            return fail("missing ']' in " + std::string(spec));
        }
        host = spec.substr(1, close - 1);
        auto rest = spec.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') {
                return fail("junk after ']' in " + std::string(spec));
            }
            port = rest.substr(1);
            if (port.empty()) {
                return fail("empty port in " + std::string(spec));
            }
        }
    } else {
        auto colon = spec.find(':');
        if (colon != std::string_view::npos) {
            if (spec.find(':', colon + 1) != std::string_view::npos) {
                return fail("an IPv6 address needs brackets: "
                            + std::string(spec));
            }
            host = spec.substr(0, colon);
            port = spec.substr(colon + 1);
            if (port.empty()) {
                return fail("empty port in " + std::string(spec));
            }
        }
    }
    if (host.empty()) {
        return fail("empty host in " + std::string(spec));
    }
    s.host = host;
    if (!port.empty()) {
        auto n = text::parse_int(port, 1, 65535);
        if (!n) {
            return fail("bad port in " + std::string(spec));
        }
        s.port = static_cast<uint16_t>(*n);
    }
    return s;
}

Result<Options> parse_args(const std::vector<std::string>& args)
{
    Options o;
    bool have_sender = false;
    size_t i = 0;

    // A value is the rest of "-fX", the part after '=' in "--opt=X", or
    // the next argument.
    auto value = [&](const std::string& arg, size_t skip,
                     std::string& out) -> Result<void> {
        if (arg.size() > skip) {
            out = arg.substr(skip);
            return {};
        }
        if (i + 1 >= args.size()) {
            return fail("option " + arg + " needs a value");
        }
        out = args[++i];
        return {};
    };
    auto number = [](const std::string& name, const std::string& v, int64_t lo,
                     int64_t hi) -> Result<int64_t> {
        auto n = text::parse_int(v, lo, hi);
        if (!n) {
            return fail(name + " wants a number from " + std::to_string(lo)
                        + " to " + std::to_string(hi) + ", not " + v);
        }
        return *n;
    };

    for (; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "--") {
            ++i;
            break;
        }
        if (a.empty() || a[0] != '-' || a == "-") {
            break;
        }
        std::string v;
        std::string name = a;
        size_t skip = a.size();
        if (a.rfind("--", 0) == 0) {
            auto eq = a.find('=');
            if (eq != std::string::npos) {
                name = a.substr(0, eq);
                skip = eq + 1;
            }
        } else if (a.size() > 2) {
            name = a.substr(0, 2);
            skip = 2;
        }
        Result<void> r;
        if (name == "-f") {
            r = value(a, skip, o.sender);
            have_sender = true;
        } else if (name == "-m") {
            r = value(a, skip, o.message_file);
        } else if (name == "-s") {
            if (r = value(a, skip, v); r) {
                auto s = parse_server(v);
                if (!s) {
                    return tl::unexpected(s.error());
                }
                o.server = *s;
            }
        } else if (name == "--helo") {
            r = value(a, skip, o.helo);
        } else if (name == "--tls") {
            if (r = value(a, skip, v); r) {
                if (v == "none") {
                    o.tls = TlsLevel::None;
                } else if (v == "may") {
                    o.tls = TlsLevel::May;
                } else if (v == "encrypt") {
                    o.tls = TlsLevel::Encrypt;
                } else {
                    return fail("--tls wants none, may or encrypt");
                }
            }
        } else if (name == "--no-resume" && skip == a.size()) {
            o.resume = false;
        } else if (name == "--no-chunking" && skip == a.size()) {
            o.chunking = false;
        } else if (name == "--state-dir") {
            r = value(a, skip, o.state_dir);
        } else if (name == "--report") {
            r = value(a, skip, o.report);
        } else if (name == "--timeout" || name == "--give-up"
                   || name == "--chunk") {
            if (r = value(a, skip, v); r) {
                auto n = name == "--chunk"
                             ? number(name, v, kMinChunk, kMaxChunk)
                             : number(name, v, 1, 86400 * 7);
                if (!n) {
                    return tl::unexpected(n.error());
                }
                if (name == "--timeout") {
                    o.timeout = static_cast<int>(*n);
                } else if (name == "--give-up") {
                    o.give_up = static_cast<int>(*n);
                } else {
                    o.chunk = static_cast<size_t>(*n);
                }
            }
        } else if (a == "-v") {
            o.verbose = true;
        } else if (a == "-q") {
            o.quiet = true;
        } else {
            return fail("unknown option " + a);
        }
        if (!r) {
            return tl::unexpected(r.error());
        }
    }
    for (; i < args.size(); ++i) {
        o.rcpts.push_back(args[i]);
    }

    if (!have_sender) {
        return fail("-f sender is required (-f '' for the null sender)");
    }
    if (o.rcpts.empty()) {
        return fail("no recipients");
    }

    // Addresses go into MAIL FROM:<...> and RCPT TO:<...> as they are: a
    // CR, LF or NUL would end the command early, '<' or '>' the path.
    auto check = [](const std::string& addr) -> Result<void> {
        for (char c : addr) {
            if (c == '\r' || c == '\n' || c == '\0' || c == '<' || c == '>') {
                return fail("bad character in address "
                            + text::printable(addr, 100));
            }
        }
        if (addr.size() > 512) {
            return fail("address too long");
        }
        return {};
    };
    if (auto c = check(o.sender); !c) {
        return tl::unexpected(c.error());
    }
    for (const auto& r : o.rcpts) {
        if (r.empty()) {
            return fail("empty recipient");
        }
        if (auto c = check(r); !c) {
            return tl::unexpected(c.error());
        }
    }
    if (o.helo.find_first_of(" \t\r\n") != std::string::npos) {
        return fail("bad --helo name");
    }
    return o;
}

} // namespace rs::send
