// SPDX-License-Identifier: MIT
// NAME
//   tls.cc - STARTTLS server contexts and Postfix's TLS log and header text
// DESCRIPTION
//   Builds the two SSL_CTX from the smtpd_tls_* parameters and describes
//   an established connection in the words Postfix 3.7.11 uses (observed
//   in a lab with swaks and openssl s_client, see tls.h).
// SEE ALSO
//   smtpd/tls.h, postconf(5) smtpd_tls_*, SSL_CTX_new(3)
#include "smtpd/tls.h"

#include "common/mail/log.h"
#include "common/util/text.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <array>

namespace rs::smtpd {

namespace {

// The protocols Postfix knows, lowest first, with OpenSSL's version and
// the option that switches each off.
struct ProtocolName {
    const char* name;
    int version;
    long no_option;
};
constexpr std::array<ProtocolName, 6> protocol_names{{
    {"SSLv2", 0, 0}, // gone from OpenSSL 3: naming it is fine, it is off
    {"SSLv3", SSL3_VERSION, SSL_OP_NO_SSLv3},
    {"TLSv1", TLS1_VERSION, SSL_OP_NO_TLSv1},
    {"TLSv1.1", TLS1_1_VERSION, SSL_OP_NO_TLSv1_1},
    {"TLSv1.2", TLS1_2_VERSION, SSL_OP_NO_TLSv1_2},
    {"TLSv1.3", TLS1_3_VERSION, SSL_OP_NO_TLSv1_3},
}};

int protocol_index(std::string_view name)
{
    for (size_t i = 0; i < protocol_names.size(); ++i) {
        if (text::iequals(name, protocol_names[i].name)) {
            return static_cast<int>(i);
        }
    }
    return -1;
}

// The first OpenSSL error, for a warning; the queue is emptied.
std::string ssl_error_text()
{
    unsigned long e = ERR_get_error();
    std::string out;
    if (e != 0) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof(buf));
        out = buf;
    }
    ERR_clear_error();
    return out.empty() ? std::string("unknown OpenSSL error") : out;
}

bool is_none(const std::string& v)
{
    return v.empty() || text::iequals(v, "none");
}

// A client certificate is checked after the handshake (the session
// decides what an unverified one means), so the handshake accepts it.
int accept_any_client_cert(int, X509_STORE_CTX*) noexcept
{
    return 1;
}

// Load the server keys and certificates into ctx.
Result<void> load_keys(SSL_CTX* ctx, const TlsSettings& s)
{
    // smtpd_tls_chain_files wins: each file holds a key and its chain.
    bool any = false;
    if (!s.chain_files.empty()) {
        for (const auto& f : s.chain_files) {
            if (SSL_CTX_use_certificate_chain_file(ctx, f.c_str()) != 1
                || SSL_CTX_use_PrivateKey_file(ctx, f.c_str(), SSL_FILETYPE_PEM)
                       != 1) {
                return fail("cannot load key and certificates from " + f + ": "
                            + ssl_error_text());
            }
            any = true;
        }
    } else {
        // The legacy pairs: a cert file (with its chain) and its key.
        std::array<std::pair<const std::string*, const std::string*>, 2> pairs{
            {{&s.cert_file, &s.key_file}, {&s.eccert_file, &s.eckey_file}}};
        for (auto [cert, key] : pairs) {
            if (is_none(*cert)) {
                continue;
            }
            const std::string& k = is_none(*key) ? *cert : *key;
            if (SSL_CTX_use_certificate_chain_file(ctx, cert->c_str()) != 1) {
                return fail("cannot load certificate file " + *cert + ": "
                            + ssl_error_text());
            }
            if (SSL_CTX_use_PrivateKey_file(ctx, k.c_str(), SSL_FILETYPE_PEM)
                != 1) {
                return fail("cannot load private key file " + k + ": "
                            + ssl_error_text());
            }
            any = true;
        }
    }
    if (!any) {
        return fail("No server certs available. TLS won't be enabled");
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        return fail("private key does not match the certificate: "
                    + ssl_error_text());
    }
    return {};
}

// The groups for ECDHE (and TLS 1.3 key shares), from the grade.
Result<void> set_groups(SSL_CTX* ctx, const TlsSettings& s)
{
    std::string wanted;
    if (text::iequals(s.eecdh_grade, "auto")) {
        wanted = s.eecdh_auto_curves;
    } else if (text::iequals(s.eecdh_grade, "strong")) {
        wanted = s.eecdh_strong_curve;
    } else if (text::iequals(s.eecdh_grade, "ultra")) {
        wanted = s.eecdh_ultra_curve;
    } else if (text::iequals(s.eecdh_grade, "none")) {
        return {};
    } else {
        return fail("invalid smtpd_tls_eecdh_grade: " + s.eecdh_grade);
    }

    // Keep the names this OpenSSL knows, in order, as Postfix skips the
    // unknown ones with a warning rather than giving up on TLS.
    std::string list;
    for (const auto& name : text::split(wanted)) {
        if (SSL_CTX_set1_groups_list(ctx, name.c_str()) == 1) {
            list += (list.empty() ? "" : ":") + name;
        } else {
            ERR_clear_error();
            log::warning("ignoring unknown ECDHE curve \"{}\"", name);
        }
    }
    if (list.empty()) {
        return fail("no supported ECDHE curve in \"" + wanted + "\"");
    }
    if (SSL_CTX_set1_groups_list(ctx, list.c_str()) != 1) {
        return fail("cannot set ECDHE curves " + list + ": "
                    + ssl_error_text());
    }
    return {};
}

// The TLS 1.2-and-older cipher list of a grade, minus the exclusions.
Result<std::string> cipher_list(const TlsSettings& s, const std::string& grade,
                                const std::string& exclude)
{
    std::string list;
    if (text::iequals(grade, "high")) {
        list = s.high_cipherlist;
    } else if (text::iequals(grade, "medium")) {
        list = s.medium_cipherlist;
    } else if (text::iequals(grade, "low")) {
        list = s.low_cipherlist;
    } else if (text::iequals(grade, "export")) {
        list = s.export_cipherlist;
    } else if (text::iequals(grade, "null")) {
        list = s.null_cipherlist;
    } else {
        return fail("invalid cipher grade: " + grade);
    }
    for (const auto& word : text::split(exclude)) {
        list += ":!" + word;
    }
    return list;
}

// One SSL_CTX for the given protocol list, cipher grade and exclusions.
Result<SslCtxPtr> make_ctx(const TlsSettings& s, const std::string& protocols,
                           const std::string& grade, const std::string& exclude)
{
    SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
    if (!ctx) {
        return fail("cannot create SSL_CTX: " + ssl_error_text());
    }

    // Protocols: the range, then switch off any hole inside it.
    auto range = parse_tls_protocols(protocols);
    if (!range) {
        return fail(range.error().text);
    }
    if (SSL_CTX_set_min_proto_version(ctx.get(), range->min_version) != 1
        || SSL_CTX_set_max_proto_version(ctx.get(), range->max_version) != 1) {
        return fail("cannot set protocols " + protocols + ": "
                    + ssl_error_text());
    }

    // No compression (CRIME), no renegotiation (a client could make us
    // redo the costly handshake at will), the usual bug workarounds, no
    // tickets and no cache: without tlsmgr(8) there is no key shared by
    // all smtpd processes to protect tickets with.
    long opts = SSL_OP_ALL | SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION
                | SSL_OP_NO_TICKET | range->no_options;
    if (s.preempt_cipherlist) {
        opts |= SSL_OP_CIPHER_SERVER_PREFERENCE;
    }
    SSL_CTX_set_options(ctx.get(), opts);
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx.get(), 0);
    static const unsigned char sid_ctx[] = "smtpd";
    SSL_CTX_set_session_id_context(ctx.get(), sid_ctx, sizeof(sid_ctx) - 1);

    // Ciphers for TLS 1.2 and older; TLS 1.3 keeps OpenSSL's suites, as
    // Postfix 3.7 does.
    auto list = cipher_list(s, grade, exclude);
    if (!list) {
        return fail(list.error().text);
    }
    if (SSL_CTX_set_cipher_list(ctx.get(), list->c_str()) != 1) {
        return fail("invalid cipher list \"" + *list
                    + "\": " + ssl_error_text());
    }

    // Key exchange: ECDHE groups, and DH parameters for DHE suites.
    if (auto r = set_groups(ctx.get(), s); !r) {
        return fail(r.error().text);
    }
    if (!is_none(s.dh1024_param_file)) {
        BIO* bio = BIO_new_file(s.dh1024_param_file.c_str(), "r");
        EVP_PKEY* dh = nullptr;
        if (bio != nullptr) {
            dh = PEM_read_bio_Parameters(bio, nullptr);
            BIO_free(bio);
        }
        if (dh == nullptr || SSL_CTX_set0_tmp_dh_pkey(ctx.get(), dh) != 1) {
            EVP_PKEY_free(dh);
            return fail("cannot load DH parameters from " + s.dh1024_param_file
                        + ": " + ssl_error_text());
        }
    } else {
        SSL_CTX_set_dh_auto(ctx.get(), 1);
    }

    // Our own keys.
    if (auto r = load_keys(ctx.get(), s); !r) {
        return fail(r.error().text);
    }

    // Client certificates: only asked for, never required here.
    if (s.ask_ccert) {
        if (!s.CAfile.empty() || !s.CApath.empty()) {
            const char* file = s.CAfile.empty() ? nullptr : s.CAfile.c_str();
            const char* path = s.CApath.empty() ? nullptr : s.CApath.c_str();
            if (SSL_CTX_load_verify_locations(ctx.get(), file, path) != 1) {
                return fail("cannot load CA locations: " + ssl_error_text());
            }
            if (file != nullptr) {
                SSL_CTX_set_client_CA_list(ctx.get(),
                                           SSL_load_client_CA_file(file));
            }
        }
        SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, accept_any_client_cert);
        SSL_CTX_set_verify_depth(ctx.get(), s.ccert_verifydepth);
    }
    return ctx;
}

// The short name of a key's EC group ("prime256v1"), or "".
std::string group_name(EVP_PKEY* pkey)
{
    char name[80];
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, name,
                                       sizeof(name), &len)
        != 1) {
        return {};
    }
    return std::string(name, len);
}

// "RSA-PSS (2048 bits)", "ECDSA (prime256v1)", "ED25519": a signing key
// as Postfix names it (RSA signs with PSS in TLS 1.3).
std::string signature_key(EVP_PKEY* pkey)
{
    switch (EVP_PKEY_get_base_id(pkey)) {
    case EVP_PKEY_RSA:
    case EVP_PKEY_RSA_PSS:
        return "RSA-PSS (" + std::to_string(EVP_PKEY_get_bits(pkey)) + " bits)";
    case EVP_PKEY_EC: {
        std::string g = group_name(pkey);
        return g.empty() ? std::string("ECDSA") : "ECDSA (" + g + ")";
    }
    default:
        return OBJ_nid2sn(EVP_PKEY_get_base_id(pkey));
    }
}

// The key-exchange, signature and digest words of a TLS 1.3 connection,
// each with a leading space; `client_first` marks where a Received:
// line breaks.
struct TlsDetails {
    std::string kex;    ///< " key-exchange ..."
    std::string server; ///< " server-signature ... server-digest ..."
    std::string client; ///< " client-signature ... client-digest ..."
};

TlsDetails details(SSL* ssl)
{
    TlsDetails d;

    // Postfix reports these for TLS 1.3 only: before it, the cipher
    // suite's name says how keys were exchanged and signed.
    if (SSL_version(ssl) < TLS1_3_VERSION) {
        return d;
    }

    // The client's key share tells the group.
    EVP_PKEY* tmp = nullptr;
    if (SSL_get_peer_tmp_key(ssl, &tmp) == 1 && tmp != nullptr) {
        switch (EVP_PKEY_get_base_id(tmp)) {
        case EVP_PKEY_EC:
            d.kex = " key-exchange ECDHE (" + group_name(tmp) + ")";
            break;
        case EVP_PKEY_DH:
            d.kex = " key-exchange DHE ("
                    + std::to_string(EVP_PKEY_get_bits(tmp)) + " bits)";
            break;
        default:
            d.kex = std::string(" key-exchange ")
                    + OBJ_nid2sn(EVP_PKEY_get_base_id(tmp));
            break;
        }
        EVP_PKEY_free(tmp);
    }

    // Our signature: the key of the certificate in use, and its digest.
    int nid = NID_undef;
    if (X509* cert = SSL_get_certificate(ssl); cert != nullptr) {
        if (EVP_PKEY* pkey = X509_get0_pubkey(cert); pkey != nullptr) {
            d.server = " server-signature " + signature_key(pkey);
            if (SSL_get_signature_nid(ssl, &nid) == 1 && nid != NID_undef) {
                d.server += std::string(" server-digest ") + OBJ_nid2sn(nid);
            }
        }
    }

    // The client's, when it sent a certificate.
    if (X509* peer = SSL_get0_peer_certificate(ssl); peer != nullptr) {
        if (EVP_PKEY* pkey = X509_get0_pubkey(peer); pkey != nullptr) {
            d.client = " client-signature " + signature_key(pkey);
            nid = NID_undef;
            if (SSL_get_peer_signature_nid(ssl, &nid) == 1
                && nid != NID_undef) {
                d.client += std::string(" client-digest ") + OBJ_nid2sn(nid);
            }
        }
    }
    return d;
}

// The CN of a name, made safe for a header comment and a log line.
std::string common_name(X509_NAME* name)
{
    if (name == nullptr) {
        return "";
    }
    char buf[256];
    int n = X509_NAME_get_text_by_NID(name, NID_commonName, buf, sizeof(buf));
    if (n < 0) {
        return "";
    }
    std::string out(buf, static_cast<size_t>(n));
    for (char& c : out) {
        unsigned char u = static_cast<unsigned char>(c);
        if (u < 0x20 || u > 0x7e || c == '(' || c == ')' || c == '"'
            || c == '\\') {
            c = '?';
        }
    }
    return out;
}

} // namespace

Result<TlsProtocolRange> parse_tls_protocols(std::string_view list)
{
    // Start with everything OpenSSL still has, and narrow it down.
    std::array<bool, protocol_names.size()> on{};
    on.fill(true);
    on[0] = false;
    bool plain_seen = false;
    std::array<bool, protocol_names.size()> plain{};

    for (auto& word : text::split(std::string(list), ", :\t\r\n")) {
        std::string_view w = word;
        int op = 0; // 0 plain, 1 not, 2 >=, 3 <=
        if (w.starts_with("!")) {
            op = 1;
            w.remove_prefix(1);
        } else if (w.starts_with(">=")) {
            op = 2;
            w.remove_prefix(2);
        } else if (w.starts_with("<=")) {
            op = 3;
            w.remove_prefix(2);
        }
        int i = protocol_index(w);
        if (i < 0) {
            return fail("Invalid TLS protocol list \"" + std::string(list)
                        + "\": unknown protocol " + std::string(w));
        }
        for (size_t j = 0; j < on.size(); ++j) {
            int k = static_cast<int>(j);
            if ((op == 1 && k == i) || (op == 2 && k < i)
                || (op == 3 && k > i)) {
                on[j] = false;
            }
        }
        if (op == 0) {
            plain_seen = true;
            plain[static_cast<size_t>(i)] = true;
        }
    }

    // Plain names, when given, are the only ones allowed.
    if (plain_seen) {
        for (size_t j = 0; j < on.size(); ++j) {
            on[j] = on[j] && plain[j];
        }
    }

    // The lowest and highest left are the range; a gap becomes SSL_OP_NO_*.
    TlsProtocolRange r;
    int lo = -1;
    int hi = -1;
    for (size_t j = 1; j < on.size(); ++j) {
        if (on[j]) {
            lo = lo < 0 ? static_cast<int>(j) : lo;
            hi = static_cast<int>(j);
        }
    }
    if (lo < 0) {
        return fail("Invalid TLS protocol list \"" + std::string(list)
                    + "\": no protocol left");
    }
    r.min_version = protocol_names[static_cast<size_t>(lo)].version;
    r.max_version = protocol_names[static_cast<size_t>(hi)].version;
    for (int j = lo; j <= hi; ++j) {
        if (!on[static_cast<size_t>(j)]) {
            r.no_options |= protocol_names[static_cast<size_t>(j)].no_option;
        }
    }
    return r;
}

TlsSettings TlsServer::settings(mail::Config& config)
{
    TlsSettings s;
    s.chain_files = config.list("smtpd_tls_chain_files");
    s.cert_file = config.str("smtpd_tls_cert_file");
    s.key_file = config.str("smtpd_tls_key_file");
    s.eccert_file = config.str("smtpd_tls_eccert_file");
    s.eckey_file = config.str("smtpd_tls_eckey_file");
    s.dh1024_param_file = config.str("smtpd_tls_dh1024_param_file");
    s.protocols = config.str("smtpd_tls_protocols");
    s.mandatory_protocols = config.str("smtpd_tls_mandatory_protocols");
    s.ciphers = config.str("smtpd_tls_ciphers");
    s.mandatory_ciphers = config.str("smtpd_tls_mandatory_ciphers");
    s.exclude_ciphers = config.str("smtpd_tls_exclude_ciphers");
    s.mandatory_exclude_ciphers =
        config.str("smtpd_tls_mandatory_exclude_ciphers");
    s.high_cipherlist = config.str("tls_high_cipherlist");
    s.medium_cipherlist = config.str("tls_medium_cipherlist");
    s.low_cipherlist = config.str("tls_low_cipherlist");
    s.export_cipherlist = config.str("tls_export_cipherlist");
    s.null_cipherlist = config.str("tls_null_cipherlist");
    s.preempt_cipherlist = config.boolean("tls_preempt_cipherlist");
    s.eecdh_grade = config.str("smtpd_tls_eecdh_grade");
    s.eecdh_auto_curves = config.str("tls_eecdh_auto_curves");
    s.eecdh_strong_curve = config.str("tls_eecdh_strong_curve");
    s.eecdh_ultra_curve = config.str("tls_eecdh_ultra_curve");
    s.ask_ccert = config.boolean("smtpd_tls_ask_ccert")
                  || config.boolean("smtpd_tls_req_ccert");
    s.CAfile = config.str("smtpd_tls_CAfile");
    s.CApath = config.str("smtpd_tls_CApath");
    s.ccert_verifydepth =
        static_cast<int>(config.integer("smtpd_tls_ccert_verifydepth", 1, 100));
    return s;
}

std::unique_ptr<TlsServer> TlsServer::create(mail::Config& config)
{
    // The security level decides whether TLS is offered at all; an empty
    // level falls back to smtpd_use_tls / smtpd_enforce_tls.
    std::string level = text::lower(config.str("smtpd_tls_security_level"));
    if (level.empty()) {
        level = config.boolean("smtpd_enforce_tls") ? "encrypt"
                : config.boolean("smtpd_use_tls")   ? "may"
                                                    : "none";
    }
    if (level == "none") {
        return nullptr;
    }
    if (level != "may" && level != "encrypt") {
        log::warning("invalid smtpd_tls_security_level value: \"{}\"", level);
        return nullptr;
    }

    auto server = create(settings(config));
    if (!server) {
        log::warning("{}", server.error().text);
        return nullptr;
    }
    return std::move(*server);
}

Result<std::unique_ptr<TlsServer>> TlsServer::create(const TlsSettings& s)
{
    auto server = std::unique_ptr<TlsServer>(new TlsServer());

    // Opportunistic TLS.
    auto ctx = make_ctx(s, s.protocols, s.ciphers, s.exclude_ciphers);
    if (!ctx) {
        return fail(ctx.error().text);
    }
    server->ctx_ = std::move(*ctx);

    // Mandatory TLS: its own protocols and grade, both exclusion lists.
    auto mctx = make_ctx(s, s.mandatory_protocols, s.mandatory_ciphers,
                         s.exclude_ciphers + " " + s.mandatory_exclude_ciphers);
    if (!mctx) {
        return fail(mctx.error().text);
    }
    server->mandatory_ctx_ = std::move(*mctx);
    return server;
}

SslPtr TlsServer::new_session(bool mandatory)
{
    SslPtr ssl(SSL_new(mandatory ? mandatory_ctx_.get() : ctx_.get()));
    if (!ssl) {
        log::warning("cannot create TLS session: {}", ssl_error_text());
        return nullptr;
    }
    SSL_set_accept_state(ssl.get());
    return ssl;
}

std::string TlsServer::protocol(SSL* ssl)
{
    return SSL_get_version(ssl);
}

std::string TlsServer::cipher(SSL* ssl)
{
    const char* name = SSL_get_cipher_name(ssl);
    return name != nullptr ? name : "";
}

int TlsServer::cipher_bits(SSL* ssl)
{
    return SSL_get_cipher_bits(ssl, nullptr);
}

std::string TlsServer::established_line(SSL* ssl, const std::string& namaddr)
{
    // Anonymous without a client certificate; Trusted when its chain
    // verified against our CAs, Untrusted when not ("Verified" needs a
    // name to match, which a server never has).
    const char* trust = "Anonymous";
    if (SSL_get0_peer_certificate(ssl) != nullptr) {
        trust =
            SSL_get_verify_result(ssl) == X509_V_OK ? "Trusted" : "Untrusted";
    }
    int alg_bits = 0;
    int bits = SSL_get_cipher_bits(ssl, &alg_bits);
    TlsDetails d = details(ssl);
    return fmt::format(
        "{} TLS connection {} from {}: {} with cipher {} "
        "({}/{} bits){}{}{}",
        trust, SSL_session_reused(ssl) ? "reused" : "established", namaddr,
        protocol(ssl), cipher(ssl), bits, alg_bits, d.kex, d.server, d.client);
}

std::vector<std::string> TlsServer::received_lines(SSL* ssl)
{
    std::vector<std::string> out;
    int alg_bits = 0;
    int bits = SSL_get_cipher_bits(ssl, &alg_bits);
    TlsDetails d = details(ssl);

    // The using-line; key exchange and our signature share the next line,
    // the client's signature gets its own; the last one closes the "(".
    out.push_back(fmt::format("\t(using {} with cipher {} ({}/{} bits)",
                              protocol(ssl), cipher(ssl), bits, alg_bits));
    if (!d.kex.empty() || !d.server.empty()) {
        out.push_back("\t" + d.kex + d.server);
    }
    if (!d.client.empty()) {
        out.push_back("\t" + d.client);
    }
    out.back() += ")";

    // What we know of the client certificate.
    X509* peer = SSL_get0_peer_certificate(ssl);
    if (peer != nullptr) {
        out.push_back(fmt::format("\t(Client CN \"{}\", Issuer \"{}\" ({}))",
                                  common_name(X509_get_subject_name(peer)),
                                  common_name(X509_get_issuer_name(peer)),
                                  SSL_get_verify_result(ssl) == X509_V_OK
                                      ? "verified OK"
                                      : "not verified"));
    } else if (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) {
        out.push_back("\t(Client did not present a certificate)");
    } else {
        out.push_back("\t(No client certificate requested)");
    }
    return out;
}

} // namespace rs::smtpd
