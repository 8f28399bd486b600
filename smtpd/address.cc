// SPDX-License-Identifier: MIT
// NAME
//   address.cc - MAIL FROM / RCPT TO arguments and their ESMTP parameters
// DESCRIPTION
//   The argument is cut into the address token (quotes, comments and
//   angle brackets keep it together) and space-separated parameters. The
//   address token is then read as RFC 822 tokens: atoms, quoted strings,
//   comments (dropped), [literals] and specials. What Postfix's smtpd
//   refuses on its own - two words side by side, "," or ";", unbalanced
//   quotes or brackets, text after the closing ">" - is refused here; the
//   domain's validity is trivial-rewrite's judgement (see address.h).
//   The behaviour was taken from Postfix 3.7.11's smtpd by sending it
//   each form (test/unit/address_test.cc holds what it answered).
// SEE ALSO
//   RFC 5321 section 4.1.2, RFC 3461 (DSN), RFC 6531 (SMTPUTF8)
#include "smtpd/address.h"

#include "common/util/text.h"
#include <charconv>
#include <limits>

namespace rs::smtpd {

namespace {

enum class Tok { atom, qstring, literal, special };

struct Token {
    Tok type;
    std::string text; ///< the atom, the unquoted string, the [literal]
    char ch = 0;      ///< the special character
};

bool is_word(const Token& t)
{
    return t.type != Tok::special;
}

bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

// RFC 822 specials that end an atom; '\\' is handled on its own.
bool is_special(char c)
{
    switch (c) {
    case '<':
    case '>':
    case '@':
    case ',':
    case ';':
    case ':':
    case '.':
    case ']':
        return true;
    default:
        return false;
    }
}

// Cut the address token off the front of `s`: it ends at white space
// outside quotes, comments and angle brackets, so that "<a b@x>" and
// "\"a b\"@x" stay one token (and fail or pass as one) while "a b@x"
// is an address and a parameter, as Postfix reads them.
size_t address_token_end(std::string_view s)
{
    bool quoted = false;
    int angle = 0;
    int paren = 0;
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '\\' && (quoted || paren > 0) && i + 1 < s.size()) {
            ++i;
        } else if (quoted) {
            quoted = c != '"';
        } else if (c == '"') {
            quoted = true;
        } else if (c == '(') {
            ++paren;
        } else if (c == ')' && paren > 0) {
            --paren;
        } else if (c == '<') {
            ++angle;
        } else if (c == '>') {
            --angle;
        } else if (is_space(c) && angle <= 0 && paren == 0) {
            return i;
        }
    }
    return s.size();
}

// Read `s` as RFC 822 tokens. False on an unterminated quoted string or
// comment, and on a comment when strict RFC 821 envelopes are wanted.
bool lex(std::string_view s, bool strict, std::vector<Token>& out)
{
    size_t i = 0;
    while (i < s.size()) {
        char c = s[i];

        // White space only separates tokens.
        if (is_space(c)) {
            ++i;
            continue;
        }

        // A quoted string: its content, with backslash escapes undone.
        if (c == '"') {
            std::string text;
            ++i;
            for (;;) {
                if (i >= s.size()) {
                    return false;
                }
                if (s[i] == '\\' && i + 1 < s.size()) {
                    text += s[i + 1];
                    i += 2;
                } else if (s[i] == '"') {
                    ++i;
                    break;
                } else {
                    text += s[i++];
                }
            }
            out.push_back({Tok::qstring, std::move(text)});
            continue;
        }

        // A comment is dropped (Postfix does the same), but RFC 821 has
        // none, so strict mode refuses it.
        if (c == '(') {
            if (strict) {
                return false;
            }
            int depth = 0;
            for (;;) {
                if (i >= s.size()) {
                    return false;
                }
                if (s[i] == '\\' && i + 1 < s.size()) {
                    i += 2;
                    continue;
                }
                if (s[i] == '(') {
                    ++depth;
                } else if (s[i] == ')' && --depth == 0) {
                    ++i;
                    break;
                }
                ++i;
            }
            continue;
        }

        // A domain literal runs to "]"; Postfix closes an unterminated
        // one itself ("a@[1.2.3.4" becomes "a@[1.2.3.4]").
        // It also stops before a ">", which then closes the address.
        if (c == '[') {
            size_t end = s.find_first_of("]>", i);
            if (end == std::string_view::npos) {
                end = s.size();
            }
            std::string text(s.substr(i, end - i));
            text += ']';
            out.push_back({Tok::literal, std::move(text)});
            i = end < s.size() && s[end] == ']' ? end + 1 : end;
            continue;
        }

        // A special character.
        if (is_special(c)) {
            out.push_back({Tok::special, "", c});
            ++i;
            continue;
        }

        // An atom; a backslash quotes the next byte and is dropped.
        std::string text;
        while (i < s.size() && !is_space(s[i]) && !is_special(s[i])
               && s[i] != '"' && s[i] != '(' && s[i] != '[') {
            if (s[i] == '\\' && i + 1 < s.size()) {
                text += s[i + 1];
                i += 2;
            } else {
                text += s[i++];
            }
        }
        out.push_back({Tok::atom, std::move(text)});
    }
    return true;
}

// Turn the address token into the internal form, or nullopt when
// Postfix's smtpd would call its syntax bad.
std::optional<std::string> internalize(std::string_view token, bool strict)
{
    std::vector<Token> toks;
    if (!lex(token, strict, toks)) {
        return std::nullopt;
    }

    // Angle brackets may only surround the address: all "<" before the
    // first word, all ">" after the last, never more "<" than ">".
    size_t first = toks.size();
    size_t last = 0;
    for (size_t i = 0; i < toks.size(); ++i) {
        bool bracket = toks[i].type == Tok::special
                       && (toks[i].ch == '<' || toks[i].ch == '>');
        if (!bracket) {
            first = std::min(first, i);
            last = i;
        }
    }
    int opens = 0;
    int closes = 0;
    for (size_t i = 0; i < toks.size(); ++i) {
        if (toks[i].type != Tok::special) {
            continue;
        }
        if (toks[i].ch == '<') {
            if (first < toks.size() && i > first) {
                return std::nullopt;
            }
            ++opens;
        } else if (toks[i].ch == '>') {
            if (first < toks.size() && i < last) {
                return std::nullopt;
            }
            ++closes;
        }
    }
    if (opens > closes || (strict && opens == 0)) {
        return std::nullopt;
    }
    std::vector<Token> addr;
    if (first < toks.size()) {
        addr.assign(toks.begin() + first, toks.begin() + last + 1);
    }

    // A source route (@a,@b:user@c) is dropped, as RFC 5321 allows.
    if (!addr.empty() && addr[0].type == Tok::special && addr[0].ch == '@') {
        for (size_t i = 0; i < addr.size(); ++i) {
            if (addr[i].type == Tok::special && addr[i].ch == ':') {
                addr.erase(addr.begin(), addr.begin() + i + 1);
                break;
            }
        }
    }

    // No two words side by side ("a b@x", "a\"b\"@x"), and no list
    // separators: one address, nothing else.
    std::string internal;
    for (size_t i = 0; i < addr.size(); ++i) {
        const Token& t = addr[i];
        if (t.type == Tok::special && (t.ch == ',' || t.ch == ';')) {
            return std::nullopt;
        }
        if (i > 0 && is_word(t) && is_word(addr[i - 1])) {
            return std::nullopt;
        }
        if (t.type == Tok::special) {
            internal += t.ch;
        } else {
            internal += t.text;
        }
    }

    // RFC 821 has no empty local part: strict mode refuses "@x" and
    // "\"\"@x" (observed; the lax mode lets trivial-rewrite judge them).
    if (strict && !internal.empty() && internal.front() == '@') {
        return std::nullopt;
    }
    return internal;
}

// RFC 5321 atext, plus bytes >= 0x80 (SMTPUTF8 local parts).
bool is_atext(unsigned char c)
{
    if (c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        || (c >= '0' && c <= '9')) {
        return true;
    }
    return std::string_view("!#$%&'*+-/=?^_`{|}~").find(static_cast<char>(c))
           != std::string_view::npos;
}

// A dot-string needs no quotes: atext runs separated by single dots.
bool is_dot_string(std::string_view s)
{
    if (s.empty() || s.front() == '.' || s.back() == '.') {
        return false;
    }
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '.') {
            if (s[i + 1] == '.') {
                return false;
            }
        } else if (!is_atext(static_cast<unsigned char>(s[i]))) {
            return false;
        }
    }
    return true;
}

// Append code point `cp` in UTF-8; false if it is no scalar value.
bool append_utf8(std::string& out, unsigned long cp)
{
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0) {
        return false;
    }
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
    return true;
}

// RFC 6533 unitext: xtext plus \x{HEX} escapes, for ORCPT=utf-8;...
std::optional<std::string> uxtext_decode(std::string_view s)
{
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && s.substr(i).starts_with("\\x{")) {
            size_t end = s.find('}', i);
            if (end == std::string_view::npos || end - i - 3 < 1
                || end - i - 3 > 6) {
                return std::nullopt;
            }
            unsigned long cp = 0;
            std::string_view hex = s.substr(i + 3, end - i - 3);
            auto [p, ec] =
                std::from_chars(hex.data(), hex.data() + hex.size(), cp, 16);
            if (ec != std::errc() || p != hex.data() + hex.size()
                || !append_utf8(out, cp)) {
                return std::nullopt;
            }
            i = end;
            continue;
        }
        size_t n = s[i] == '+' ? 3 : 1;
        auto one = xtext_decode(s.substr(i, n));
        if (!one || i + n > s.size()) {
            return std::nullopt;
        }
        out += *one;
        i += n - 1;
    }
    return out;
}

} // namespace

ParseResult parse_path_arg(std::string_view verb, std::string_view text,
                           bool strict_rfc821, bool smtputf8_enable)
{
    // smtputf8_enable needs nothing here: with it on, the session refuses
    // non-UTF-8 lines before they reach us, and with it off Postfix
    // takes 8-bit addresses as they come.
    (void)smtputf8_enable;
    ParseResult res;
    bool mail = text::iequals(verb, "MAIL");
    std::string_view keyword = mail ? "FROM:" : "TO:";
    std::string syntax = mail ? "501 5.5.4 Syntax: MAIL FROM:<address>"
                              : "501 5.5.4 Syntax: RCPT TO:<address>";
    std::string bad = address_syntax_reply(verb);

    // "FROM:" or "TO:" must come first; white space may follow it.
    std::string_view rest = text;
    while (!rest.empty() && is_space(rest.front())) {
        rest.remove_prefix(1);
    }
    if (!text::istarts_with(rest, keyword)) {
        res.reply = syntax;
        return res;
    }
    rest.remove_prefix(keyword.size());
    while (!rest.empty() && is_space(rest.front())) {
        rest.remove_prefix(1);
    }
    if (rest.empty()) {
        res.reply = syntax;
        return res;
    }

    // The address token, then its internal form.
    size_t end = address_token_end(rest);
    std::string_view token = rest.substr(0, end);
    rest.remove_prefix(end);

    // A NUL byte can never be part of an address: it would end the
    // string in every Postfix protocol the address travels in (attr0 to
    // trivial-rewrite and cleanup) and let a client inject attributes.
    // Postfix refuses such an address as bad syntax, without a warning.
    if (token.find('\0') != std::string_view::npos) {
        res.reply = bad;
        return res;
    }
    auto internal = internalize(token, strict_rfc821);
    if (!internal || (!mail && internal->empty())) {
        res.reply = bad;
        res.token = std::string(token);
        return res;
    }
    PathArg arg;
    arg.internal = std::move(*internal);

    // As typed, without the brackets: what dsn_orig_rcpt records.
    std::string_view typed = token;
    if (typed.size() >= 2 && typed.front() == '<' && typed.back() == '>') {
        typed = typed.substr(1, typed.size() - 2);
    }
    arg.typed = std::string(typed);

    // The parameters, split at white space; KEY in upper case.
    for (const std::string& p : text::split(rest, " \t")) {
        size_t eq = p.find('=');
        std::string key = text::upper(p.substr(0, eq));
        std::string value = eq == std::string::npos ? "" : p.substr(eq + 1);
        arg.params.emplace_back(std::move(key), std::move(value));
        arg.raw_params.push_back(p);
    }
    res.arg = std::move(arg);
    return res;
}

std::string external_form(std::string_view internal)
{
    // Only the local part (up to the last "@") is ever quoted.
    if (internal.empty()) {
        return "";
    }
    size_t at = internal.rfind('@');
    std::string_view local =
        at == std::string_view::npos ? internal : internal.substr(0, at);
    std::string_view domain =
        at == std::string_view::npos ? "" : internal.substr(at);
    if (is_dot_string(local)) {
        return std::string(internal);
    }

    // Quote it, escaping what a quoted string cannot hold bare.
    std::string out = "\"";
    for (char c : local) {
        if (c == '"' || c == '\\') {
            out += '\\';
        }
        out += c;
    }
    out += '"';
    out += domain;
    return out;
}

std::string internal_form(std::string_view external)
{
    // Quotes are dropped and backslash escapes inside them undone.
    std::string out;
    bool quoted = false;
    for (size_t i = 0; i < external.size(); ++i) {
        char c = external[i];
        if (c == '"') {
            quoted = !quoted;
        } else if (quoted && c == '\\' && i + 1 < external.size()) {
            out += external[++i];
        } else {
            out += c;
        }
    }
    return out;
}

std::string address_syntax_reply(std::string_view verb)
{
    return text::iequals(verb, "MAIL")
               ? "501 5.1.7 Bad sender address syntax"
               : "501 5.1.3 Bad recipient address syntax";
}

std::optional<std::string> xtext_decode(std::string_view s)
{
    // "+XX" is a byte in hex (Postfix takes lower-case digits too); any
    // other byte must be printable ASCII.
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c == '+') {
            if (i + 2 >= s.size()) {
                return std::nullopt;
            }
            int hi = text::hex_value(s[i + 1]);
            int lo = text::hex_value(s[i + 2]);
            if (hi < 0 || lo < 0) {
                return std::nullopt;
            }
            out += static_cast<char>(hi * 16 + lo);
            i += 2;
        } else if (c < 33 || c > 126) {
            return std::nullopt;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

std::optional<int> notify_mask(std::string_view value)
{
    // A comma-separated list; empty members are skipped, as Postfix
    // skips them, but NEVER stands alone and nothing else is known.
    int mask = 0;
    for (const std::string& word : text::split(value, ",")) {
        if (text::iequals(word, "NEVER")) {
            mask |= 1;
        } else if (text::iequals(word, "SUCCESS")) {
            mask |= 2;
        } else if (text::iequals(word, "FAILURE")) {
            mask |= 4;
        } else if (text::iequals(word, "DELAY")) {
            mask |= 8;
        } else {
            return std::nullopt;
        }
    }
    if (mask == 0 || ((mask & 1) && mask != 1)) {
        return std::nullopt;
    }
    return mask;
}

std::string check_mail_params(const PathArg& arg, const MailParamLimits& lim,
                              MailParams& out)
{
    out = MailParams{};
    bool seen_ret = false;
    bool seen_envid = false;
    for (size_t i = 0; i < arg.params.size(); ++i) {
        const auto& [key, value] = arg.params[i];
        const std::string& raw =
            i < arg.raw_params.size() ? arg.raw_params[i] : key;
        bool has_value = raw.find('=') != std::string::npos;
        std::string unsupported = "555 5.5.4 Unsupported option: " + raw;

        // BODY=7BIT or 8BITMIME; BINARYMIME is not offered. Repeats are
        // taken, the last one counting.
        if (key == "BODY" && has_value) {
            if (text::iequals(value, "8BITMIME")
                || text::iequals(value, "7BIT")) {
                out.body = text::upper(value);
                continue;
            }
            return unsupported;
        }

        // SIZE=digits only. One that does not fit in an off_t is refused
        // at once; the limit is compared after the loop, as Postfix does.
        if (key == "SIZE" && has_value) {
            int64_t n = 0;
            bool digits = !value.empty();
            for (char c : value) {
                digits = digits && c >= '0' && c <= '9';
            }
            if (!digits) {
                return "501 5.5.4 Bad message size syntax";
            }
            auto [p, ec] =
                std::from_chars(value.data(), value.data() + value.size(), n);
            if (ec != std::errc() || p != value.data() + value.size()) {
                return "552 5.3.4 Message size exceeds file system imposed "
                       "limit";
            }
            out.size = n;
            continue;
        }

        // RET=FULL or HDRS, once.
        if (key == "RET" && has_value) {
            if (seen_ret) {
                return "501 5.5.4 Bad RET parameter syntax";
            }
            seen_ret = true;
            if (text::iequals(value, "FULL")) {
                out.ret = 1;
            } else if (text::iequals(value, "HDRS")) {
                out.ret = 2;
            } else {
                return "501 5.5.4 Bad RET parameter syntax";
            }
            continue;
        }

        // ENVID=xtext, once, not empty.
        if (key == "ENVID" && has_value) {
            auto v = xtext_decode(value);
            if (seen_envid || !v || v->empty()) {
                return "501 5.5.4 Bad ENVID parameter syntax";
            }
            seen_envid = true;
            out.envid = std::move(*v);
            continue;
        }

        // SMTPUTF8 takes no value, and only when it is offered.
        if (key == "SMTPUTF8" && !has_value && lim.smtputf8_enable) {
            out.smtputf8 = true;
            continue;
        }

        // AUTH= is taken and, without SASL, not acted on: Postfix 3.7
        // answers 250 whatever it holds.
        if (key == "AUTH" && has_value) {
            out.auth = value;
            continue;
        }
        return unsupported;
    }

    // The declared size against message_size_limit.
    if (lim.message_size_limit > 0 && out.size
        && *out.size > lim.message_size_limit) {
        return "552 5.3.4 Message size exceeds fixed limit";
    }
    return "";
}

std::string check_rcpt_params(const PathArg& arg, RcptParams& out)
{
    out = RcptParams{};
    bool seen_notify = false;
    bool seen_orcpt = false;
    for (size_t i = 0; i < arg.params.size(); ++i) {
        const auto& [key, value] = arg.params[i];
        const std::string& raw =
            i < arg.raw_params.size() ? arg.raw_params[i] : key;
        bool has_value = raw.find('=') != std::string::npos;

        // NOTIFY=list, once.
        if (key == "NOTIFY" && has_value) {
            auto m = notify_mask(value);
            for (const std::string& word : text::split(value, ",")) {
                if (!notify_mask(word) && out.warning.empty()) {
                    out.warning = "unknown DSN NOTIFY command value \"" + word
                                  + "\" in \"" + value + "\"";
                }
            }
            if (seen_notify || !m) {
                return "501 5.5.4 Error: Bad NOTIFY parameter syntax";
            }
            seen_notify = true;
            out.notify = *m;
            continue;
        }

        // ORCPT=type;xtext, once; the type not empty, the address may be.
        if (key == "ORCPT" && has_value) {
            size_t semi = value.find(';');
            std::optional<std::string> addr;
            if (semi != std::string::npos && semi > 0) {
                std::string_view coded =
                    std::string_view(value).substr(semi + 1);
                addr = text::iequals(value.substr(0, semi), "utf-8")
                           ? uxtext_decode(coded)
                           : xtext_decode(coded);
            }
            if (seen_orcpt || !addr) {
                return "501 5.5.4 Error: Bad ORCPT parameter syntax";
            }
            seen_orcpt = true;
            out.orcpt_type = value.substr(0, semi);
            out.orcpt_addr = std::move(*addr);
            continue;
        }
        return "555 5.5.4 Unsupported option: " + raw;
    }
    return "";
}

} // namespace rs::smtpd
