// SPDX-License-Identifier: MIT
// NAME
//   config.cc - main.cf and -o overrides, evaluated as Postfix 3.7 does
// DESCRIPTION
//   Parsing follows Postfix's logical-line rules: blank and comment lines
//   are dropped even inside a continued value, a line that starts with
//   whitespace continues the previous one, and "name = value" is split at
//   the first '='. Values are kept unexpanded and evaluated on fetch; an
//   absent parameter takes its default (defaults.cc, or computed here for
//   the machine-dependent ones) and the default is remembered, so later
//   $name references see the same text.
//
//   Messages for bad values use the phrasing of Postfix's daemons
//   (`bad numerical configuration: name = value` and so on), because
//   admins and monitoring grep for them.
// BUGS
//   The write-back keeps the default unexpanded, where Postfix stores the
//   expanded text; the two differ only if a parameter the default refers
//   to changes after the first fetch, which set() callers avoid by
//   setting process_name and friends before anything is read.
//
//   Times are limited to INT32_MAX seconds, as Postfix's int-based times.
// SEE ALSO
//   postconf(5), postconf(1) -x, common/mail/defaults.cc
#include "common/mail/config.h"

#include "common/mail/log.h"
#include "common/util/text.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sstream>
#include <sys/socket.h>
#include <unistd.h>

namespace rs::mail {

namespace {

// Parameters whose value is used as is, never $-expanded: the set that
// `postconf -x` of Postfix 3.7.11 leaves literal (found by setting every
// parameter to "$a" and printing them expanded). smtpd's own are
// default_rbl_reply, smtpd_expansion_filter and smtpd_reject_footer.
constexpr std::string_view raw_params[] = {
    "command_execution_directory",
    "default_rbl_reply",
    "forward_path",
    "luser_relay",
    "mailbox_command",
    "postscreen_expansion_filter",
    "postscreen_reject_footer",
    "smtpd_expansion_filter",
    "smtpd_reject_footer",
};

constexpr std::string_view default_config_directory = "/etc/postfix";
constexpr std::string_view default_domain = "localdomain";

bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '_';
}

bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v'
           || c == '\f';
}

bool all_digits(std::string_view s)
{
    if (s.empty()) {
        return false;
    }
    for (char c : s) {
        if (c < '0' || c > '9') {
            return false;
        }
    }
    return true;
}

// Compare two all-digit strings as numbers of any length: no overflow.
int compare_digits(std::string_view a, std::string_view b)
{
    auto strip = [](std::string_view s) {
        auto p = s.find_first_not_of('0');
        return p == std::string_view::npos ? std::string_view() : s.substr(p);
    };
    a = strip(a);
    b = strip(b);
    if (a.size() != b.size()) {
        return a.size() < b.size() ? -1 : 1;
    }
    return a.compare(b) < 0 ? -1 : (a.compare(b) > 0 ? 1 : 0);
}

// A failure while expanding: Postfix warns with the detail, then the
// daemon gives up. We do the same, naming the parameter when there is one.
[[noreturn]] void macro_error(std::string_view context, std::string_view what,
                              std::string_view text)
{
    log::warning("{}: \"{}\"", what, text);
    if (context.empty()) {
        log::fatal("macro processing error in \"{}\"", text);
    }
    log::fatal("parameter {}: macro processing error", context);
}

// The position just after the bracket that closes the one at `open`
// (which holds '{' or '('), or npos when it is never closed.
size_t match_close(std::string_view s, size_t open)
{
    char o = s[open];
    char c = o == '{' ? '}' : ')';
    int level = 0;
    for (size_t i = open; i < s.size(); ++i) {
        if (s[i] == o) {
            ++level;
        } else if (s[i] == c && --level == 0) {
            return i + 1;
        }
    }
    return std::string_view::npos;
}

size_t skip_space(std::string_view s, size_t i)
{
    while (i < s.size() && is_space(s[i])) {
        ++i;
    }
    return i;
}

// The interface addresses mynetworks is computed from.
struct LocalAddr {
    int family;
    unsigned char addr[16];
    unsigned char mask[16];
};

std::vector<LocalAddr> local_addresses(bool want4, bool want6)
{
    std::vector<LocalAddr> out;
    ifaddrs* list = nullptr;

    // Postfix asks the kernel for every configured interface address;
    // interfaces that are down do not count.
    if (getifaddrs(&list) != 0) {
        int saved = errno;
        log::fatal("getifaddrs: {}", std::strerror(saved));
    }
    for (ifaddrs* ifa = list; ifa != nullptr; ifa = ifa->ifa_next) {
        if (ifa->ifa_addr == nullptr || ifa->ifa_netmask == nullptr
            || (ifa->ifa_flags & IFF_UP) == 0) {
            continue;
        }
        LocalAddr a{};
        a.family = ifa->ifa_addr->sa_family;
        if (a.family == AF_INET && want4) {
            auto* sin = reinterpret_cast<sockaddr_in*>(ifa->ifa_addr);
            auto* msk = reinterpret_cast<sockaddr_in*>(ifa->ifa_netmask);
            std::memcpy(a.addr, &sin->sin_addr, 4);
            std::memcpy(a.mask, &msk->sin_addr, 4);
        } else if (a.family == AF_INET6 && want6) {
            auto* sin = reinterpret_cast<sockaddr_in6*>(ifa->ifa_addr);
            auto* msk = reinterpret_cast<sockaddr_in6*>(ifa->ifa_netmask);
            std::memcpy(a.addr, &sin->sin6_addr, 16);
            std::memcpy(a.mask, &msk->sin6_addr, 16);
        } else {
            continue;
        }
        out.push_back(a);
    }
    freeifaddrs(list);
    return out;
}

int mask_length(const unsigned char* mask, int bytes)
{
    int n = 0;
    for (int i = 0; i < bytes; ++i) {
        for (int b = 7; b >= 0 && (mask[i] >> b & 1); --b) {
            ++n;
        }
        if (mask[i] != 0xff) {
            break;
        }
    }
    return n;
}

// "a.b.c.d/len" or "[v6]/len" of addr masked to len bits.
std::string network_text(const LocalAddr& a, int len)
{
    int bytes = a.family == AF_INET ? 4 : 16;
    unsigned char net[16] = {};
    for (int i = 0; i < bytes; ++i) {
        int bits = std::clamp(len - 8 * i, 0, 8);
        unsigned char m =
            bits == 0 ? 0 : static_cast<unsigned char>(0xff << (8 - bits));
        net[i] = a.addr[i] & m;
    }
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(a.family, net, buf, sizeof(buf));
    if (a.family == AF_INET) {
        return fmt::format("{}/{}", buf, len);
    }
    return fmt::format("[{}]/{}", buf, len);
}

} // namespace

Config::Config() = default;

bool Config::is_raw(std::string_view name)
{
    for (auto r : raw_params) {
        if (r == name) {
            return true;
        }
    }
    return false;
}

void Config::read_main_cf(const std::string& dir)
{
    std::string path = dir + "/main.cf";

    // Postfix reads the whole file at start-up; there is nothing to do
    // without it.
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        int saved = errno;
        log::fatal("open {}: {}", path, std::strerror(saved));
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) {
        int saved = errno;
        log::fatal("read {}: {}", path, std::strerror(saved));
    }

    // The directory we were told is the one in use, whatever main.cf says.
    read_text(text.str(), path);
    set("config_directory", dir);
}

void Config::read_text(std::string_view text, std::string_view name)
{
    std::string logical;
    int logical_line = 0;
    int line_no = 0;

    // Store one completed logical line.
    auto finish = [&]() {
        if (logical_line == 0) {
            return;
        }
        std::string_view s = text::trim(logical);
        size_t i = 0;
        while (i < s.size() && !is_space(s[i]) && s[i] != '=') {
            ++i;
        }
        std::string_view key = s.substr(0, i);
        size_t eq = skip_space(s, i);
        if (key.empty() || eq >= s.size() || s[eq] != '=') {
            log::fatal("{}, line {}: missing '=' after attribute name: \"{}\"",
                       name, logical_line, s);
        }
        std::string value(text::trim(s.substr(eq + 1)));

        // A later entry wins; say so when it changes something, as
        // postconf does, so a forgotten duplicate is visible.
        auto it = values_.find(key);
        if (it != values_.end() && it->second != value) {
            log::warning("{}, line {}: overriding earlier entry: {}={}", name,
                         logical_line, key, it->second);
        }
        values_.insert_or_assign(std::string(key), value);
        defaulted_.erase(std::string(key));
        logical.clear();
        logical_line = 0;
    };

    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        std::string_view line = text.substr(pos, nl == std::string_view::npos
                                                     ? std::string_view::npos
                                                     : nl - pos);
        pos = nl == std::string_view::npos ? text.size() : nl + 1;
        ++line_no;

        // Blank and comment lines vanish, even between the pieces of a
        // continued value.
        size_t first = skip_space(line, 0);
        if (first == line.size() || line[first] == '#') {
            continue;
        }

        // Leading whitespace continues the previous logical line; the
        // newline is dropped and the whitespace is the only separator.
        if (first > 0) {
            if (logical_line == 0) {
                log::warning("{}, line {}: logical line must not start with "
                             "whitespace",
                             name, line_no);
                continue;
            }
            logical.append(line);
            continue;
        }
        finish();
        logical.assign(line);
        logical_line = line_no;
    }
    finish();
}

void Config::set_override(std::string_view arg)
{
    // -o name=value, stored unexpanded: $name in it is expanded on fetch.
    // The long form "{ name = value }" (master.cf, Postfix 3.0) is taken
    // too, in case the braces reach us.
    std::string_view s = text::trim(arg);
    if (s.size() >= 2 && s.front() == '{' && s.back() == '}') {
        s = text::trim(s.substr(1, s.size() - 2));
    }
    size_t eq = s.find('=');
    if (eq == std::string_view::npos) {
        log::fatal("-o option: missing '=' in \"{}\"", s);
    }
    std::string_view key = text::trim(s.substr(0, eq));
    if (key.empty()) {
        log::fatal("-o option: missing parameter name in \"{}\"", s);
    }
    overrides_.insert_or_assign(std::string(key),
                                std::string(text::trim(s.substr(eq + 1))));
    defaulted_.erase(std::string(key));
}

void Config::set(std::string_view name, std::string_view value)
{
    overrides_.insert_or_assign(std::string(name), std::string(value));
    defaulted_.erase(std::string(name));
}

bool Config::is_set(std::string_view name) const
{
    return overrides_.find(name) != overrides_.end()
           || values_.find(name) != values_.end();
}

std::optional<std::string> Config::lookup(std::string_view name)
{
    // -o (and set()) beat main.cf, which beats a remembered default.
    if (auto it = overrides_.find(name); it != overrides_.end()) {
        return it->second;
    }
    if (auto it = values_.find(name); it != values_.end()) {
        return it->second;
    }
    if (auto it = defaulted_.find(name); it != defaulted_.end()) {
        return it->second;
    }

    // First use of an unset parameter: take the default and remember it,
    // so every later reference sees the same value.
    const DefaultRow* row = find_default_row(name);
    if (row == nullptr) {
        return std::nullopt;
    }
    std::string value = row->kind == DefaultRow::Kind::computed
                            ? computed_default(name)
                            : std::string(row->value);
    defaulted_.insert_or_assign(std::string(name), value);
    return value;
}

std::string Config::computed_default(std::string_view name)
{
    // MAIL_CONFIG is how postfix(1) and master(8) name the instance.
    if (name == "config_directory") {
        const char* env = std::getenv("MAIL_CONFIG");
        return env != nullptr && *env != 0
                   ? env
                   : std::string(default_config_directory);
    }

    // What a daemon knows of itself before master.cf options are applied:
    // the program name, which -n and set() may replace.
    if (name == "process_id") {
        return std::to_string(getpid());
    }
    if (name == "process_name" || name == "service_name") {
        return program_invocation_short_name;
    }

    // The kernel's host name; a bare name gets $mydomain when main.cf
    // sets it, else "localdomain", as Postfix does.
    if (name == "myhostname") {
        char buf[256] = {};
        if (gethostname(buf, sizeof(buf) - 1) != 0) {
            int saved = errno;
            log::fatal("gethostname: {}", std::strerror(saved));
        }
        std::string host = buf;
        if (host.find('.') == std::string::npos) {
            host += ".";
            host += is_set("mydomain") ? str("mydomain")
                                       : std::string(default_domain);
        }
        return host;
    }

    // The host name minus its first label.
    if (name == "mydomain") {
        std::string host = str("myhostname");
        auto dot = host.find('.');
        if (dot == std::string::npos) {
            return std::string(default_domain);
        }
        return host.substr(dot + 1);
    }

    // The networks of the machine's interfaces, shaped by mynetworks_style
    // and limited to inet_protocols.
    if (name == "mynetworks") {
        bool want4 = false;
        bool want6 = false;
        for (auto& p : list("inet_protocols")) {
            if (p == "all") {
                want4 = want6 = true;
            } else if (p == "ipv4") {
                want4 = true;
            } else if (p == "ipv6") {
                want6 = true;
            } else {
                log::fatal("unknown inet_protocols value \"{}\"", p);
            }
        }
        std::string style = str("mynetworks_style");
        if (style != "host" && style != "subnet" && style != "class") {
            log::fatal("unknown mynetworks_style value \"{}\"", style);
        }
        auto addrs = local_addresses(want4, want6);
        if (addrs.empty()) {
            log::fatal("could not find any active network interfaces");
        }

        // IPv4 first, then IPv6, each in interface order, no duplicates.
        std::vector<std::string> nets;
        for (int family : {AF_INET, AF_INET6}) {
            for (auto& a : addrs) {
                if (a.family != family) {
                    continue;
                }
                int full = family == AF_INET ? 32 : 128;
                int len = full;
                if (style == "subnet") {
                    len = mask_length(a.mask, full / 8);
                } else if (style == "class") {
                    // Classful IPv4 networks; IPv6 has no classes, so it
                    // gets its subnet, as Postfix prints it.
                    if (family == AF_INET6) {
                        len = mask_length(a.mask, 16);
                    } else if (a.addr[0] < 128) {
                        len = 8;
                    } else if (a.addr[0] < 192) {
                        len = 16;
                    } else if (a.addr[0] < 224) {
                        len = 24;
                    }
                }
                std::string net = network_text(a, len);
                if (std::find(nets.begin(), nets.end(), net) == nets.end()) {
                    nets.push_back(net);
                }
            }
        }
        std::string out;
        for (auto& n : nets) {
            if (!out.empty()) {
                out += ' ';
            }
            out += n;
        }
        return out;
    }
    return {};
}

std::string Config::raw(std::string_view name)
{
    return lookup(name).value_or(std::string());
}

std::string Config::str(std::string_view name)
{
    auto value = lookup(name);
    if (!value) {
        return {};
    }
    if (is_raw(name)) {
        return *value;
    }
    std::string out;
    expand_into(out, *value, 0, name);
    return out;
}

std::string Config::expand(std::string_view text)
{
    std::string out;
    expand_into(out, text, 0, {});
    return out;
}

// Expand `text` into `out`. `depth` counts nested parameter values (the
// fetched value itself is 0); `context` names the parameter for messages.
void Config::expand_into(std::string& out, std::string_view text, int depth,
                         std::string_view context)
{
    // A parameter that refers to itself, directly or not, would recurse
    // for ever; Postfix stops at the same depth.
    if (depth > max_nesting) {
        macro_error(context, "unreasonable macro call nesting", context);
    }

    // One braced operand: "{...}" at i (after whitespace), its inside
    // returned raw and i moved past it.
    auto braced = [&](std::string_view s, size_t& i) -> std::string_view {
        i = skip_space(s, i);
        if (i >= s.size() || s[i] != '{') {
            macro_error(context, "'{' expected at", s.substr(i));
        }
        size_t end = match_close(s, i);
        if (end == std::string_view::npos) {
            macro_error(context, "truncated macro reference", s);
        }
        std::string_view inner = s.substr(i + 1, end - i - 2);
        i = skip_space(s, end);
        return inner;
    };

    // The "?{t}:{f}" tail shared by ${name?...} and the relational form.
    // `body` starts just after '?'; unbraced text is taken to the end.
    auto choose = [&](std::string_view body, bool cond) {
        size_t i = skip_space(body, 0);
        if (i >= body.size() || body[i] != '{') {
            if (cond) {
                expand_into(out, body, depth, context);
            }
            return;
        }
        std::string_view t = braced(body, i);
        std::string_view f;
        if (i < body.size() && body[i] == ':') {
            size_t j = skip_space(body, i + 1);
            if (j < body.size() && body[j] == '{') {
                f = braced(body, j);
                if (j != body.size()) {
                    macro_error(context, "unexpected input at", body.substr(j));
                }
            } else {
                f = body.substr(j);
            }
        } else if (i != body.size()) {
            macro_error(context, "unexpected input at", body.substr(i));
        }
        expand_into(out, cond ? t : f, depth, context);
    };

    size_t i = 0;
    while (i < text.size()) {
        size_t dollar = text.find('$', i);
        if (dollar == std::string_view::npos) {
            out.append(text.substr(i));
            return;
        }
        out.append(text.substr(i, dollar - i));
        i = dollar + 1;

        // "$$" is a literal dollar.
        if (i < text.size() && text[i] == '$') {
            out += '$';
            ++i;
            continue;
        }

        // $name: the longest run of name characters.
        if (i < text.size() && is_name_char(text[i])) {
            size_t b = i;
            while (i < text.size() && is_name_char(text[i])) {
                ++i;
            }
            std::string_view ref = text.substr(b, i - b);
            if (auto v = lookup(ref)) {
                expand_into(out, *v, depth + 1, ref);
            }
            continue;
        }
        if (i >= text.size() || (text[i] != '{' && text[i] != '(')) {
            macro_error(context, "empty macro name", text);
        }

        // ${...} or $(...): find the matching close first.
        size_t end = match_close(text, i);
        if (end == std::string_view::npos) {
            macro_error(context, "truncated macro reference", text);
        }
        std::string_view body = text.substr(i + 1, end - i - 2);
        i = end;

        // ${{a} op {b} ? {t} : {f}}: the relational form (Postfix 3.0).
        size_t k = skip_space(body, 0);
        if (k < body.size() && body[k] == '{') {
            size_t j = k;
            std::string_view a = braced(body, j);
            size_t op_start = j;
            while (j < body.size() && !is_space(body[j]) && body[j] != '{') {
                ++j;
            }
            std::string_view op = body.substr(op_start, j - op_start);
            std::string_view b = braced(body, j);
            std::string left;
            std::string right;
            expand_into(left, a, depth, context);
            expand_into(right, b, depth, context);

            // The operator: plain, or with the "level" suffix that compares
            // compatibility levels.
            int cmp = 0;
            std::string_view base = op;
            if (base.size() > 5 && base.substr(base.size() - 5) == "level") {
                base.remove_suffix(5);
                int64_t lv = compat_level_value(left);
                int64_t rv = compat_level_value(right);
                if (lv < 0 || rv < 0) {
                    macro_error(context, "malformed compatibility level syntax",
                                lv < 0 ? left : right);
                }
                cmp = lv < rv ? -1 : (lv > rv ? 1 : 0);
            } else if (all_digits(left) && all_digits(right)) {
                cmp = compare_digits(left, right);
            } else {
                int c = left.compare(right);
                cmp = c < 0 ? -1 : (c > 0 ? 1 : 0);
            }
            bool cond = false;
            if (base == "==") {
                cond = cmp == 0;
            } else if (base == "!=") {
                cond = cmp != 0;
            } else if (base == "<") {
                cond = cmp < 0;
            } else if (base == "<=") {
                cond = cmp <= 0;
            } else if (base == ">") {
                cond = cmp > 0;
            } else if (base == ">=") {
                cond = cmp >= 0;
            } else {
                macro_error(context, "unknown relational operator", op);
            }

            // Without "?..." the result is "true" or nothing.
            if (j >= body.size()) {
                out += cond ? "true" : "";
                continue;
            }
            if (body[j] != '?') {
                macro_error(context, "unexpected input at", body.substr(j));
            }
            choose(body.substr(j + 1), cond);
            continue;
        }

        // ${name}, ${name?text}, ${name:text}, ${name?{t}:{f}}.
        size_t n = 0;
        while (n < body.size() && is_name_char(body[n])) {
            ++n;
        }
        std::string_view ref = body.substr(0, n);
        if (ref.empty()) {
            macro_error(context, "empty macro name", text);
        }
        auto v = lookup(ref);
        bool nonempty = v && !v->empty();
        if (n == body.size()) {
            if (v) {
                expand_into(out, *v, depth + 1, ref);
            }
        } else if (body[n] == '?') {
            choose(body.substr(n + 1), nonempty);
        } else if (body[n] == ':') {
            // ${name:{t}} takes one braced text; nothing may follow it.
            std::string_view rest = body.substr(n + 1);
            size_t j = skip_space(rest, 0);
            if (j < rest.size() && rest[j] == '{') {
                std::string_view t = braced(rest, j);
                if (j != rest.size()) {
                    macro_error(context, "unexpected input at", rest.substr(j));
                }
                rest = t;
            }
            if (!nonempty) {
                expand_into(out, rest, depth, context);
            }
        } else {
            macro_error(context, "unexpected input at", body.substr(n));
        }
    }
}

bool Config::boolean(std::string_view name)
{
    std::string v = str(name);
    if (text::iequals(v, "yes")) {
        return true;
    }
    if (text::iequals(v, "no")) {
        return false;
    }
    log::fatal("bad boolean configuration: {} = {}", name, v);
}

int64_t Config::integer(std::string_view name, int64_t min, int64_t max)
{
    // Decimal, an optional sign, nothing else (Postfix rejects "10k").
    std::string v = str(name);
    std::string_view digits = v;
    if (!digits.empty() && digits[0] == '+') {
        digits.remove_prefix(1);
        if (!digits.empty() && digits[0] == '-') {
            digits = {};
        }
    }
    auto n = text::parse_int(digits);
    if (!n) {
        log::fatal("bad numerical configuration: {} = {}", name, v);
    }
    if (*n < min) {
        log::fatal("invalid {} parameter value {} < {}", name, *n, min);
    }
    if (*n > max) {
        log::fatal("invalid {} parameter value {} > {}", name, *n, max);
    }
    return *n;
}

int64_t Config::time(std::string_view name, char unit, int64_t min, int64_t max)
{
    std::string v = str(name);

    // Digits, then an optional unit; like Postfix, only the first
    // character after the number is looked at.
    std::string_view s = v;
    if (!s.empty() && s[0] == '+') {
        s.remove_prefix(1);
    }
    size_t n = 0;
    while (n < s.size() && s[n] >= '0' && s[n] <= '9') {
        ++n;
    }
    auto number = text::parse_int(s.substr(0, n), 0, INT32_MAX);
    char u = n < s.size() ? s[n] : unit;
    int64_t factor = 0;
    switch (u) {
    case 's':
        factor = 1;
        break;
    case 'm':
        factor = 60;
        break;
    case 'h':
        factor = 3600;
        break;
    case 'd':
        factor = 86400;
        break;
    case 'w':
        factor = 604800;
        break;
    default:
        factor = 0;
    }
    if (n == 0 || !number || factor == 0 || *number > INT32_MAX / factor) {
        log::fatal("parameter {}: bad time value or unit: {}", name, v);
    }
    int64_t seconds = *number * factor;
    if (seconds < min) {
        log::fatal("invalid {}: {} (min {})", name, seconds, min);
    }
    if (seconds > max) {
        log::fatal("invalid {}: {} (max {})", name, seconds, max);
    }
    return seconds;
}

std::vector<std::string> Config::list(std::string_view name)
{
    return text::split(str(name));
}

int64_t Config::compat_level_value(std::string_view v)
{
    // "major[.minor[.patch]]", each part decimal; minor and patch below
    // 1000 so that the packed number orders as the levels do. -1 when
    // malformed.
    int64_t parts[3] = {0, 0, 0};
    int count = 0;
    size_t i = 0;
    while (true) {
        size_t b = i;
        while (i < v.size() && v[i] >= '0' && v[i] <= '9') {
            ++i;
        }
        auto n =
            text::parse_int(v.substr(b, i - b), 0, count == 0 ? 1000000 : 999);
        if (i == b || !n || count == 3) {
            return -1;
        }
        parts[count++] = *n;
        if (i == v.size()) {
            break;
        }
        if (v[i] != '.') {
            return -1;
        }
        ++i;
    }
    return parts[0] * 1000000 + parts[1] * 1000 + parts[2];
}

} // namespace rs::mail
