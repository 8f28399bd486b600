// SPDX-License-Identifier: MIT
// NAME
//   tls.h - the server side of STARTTLS, configured from Postfix parameters
// DESCRIPTION
//   TlsServer::create() runs before chroot: it loads smtpd_tls_cert_file /
//   smtpd_tls_key_file (and smtpd_tls_chain_files), and applies
//   smtpd_tls_protocols, smtpd_tls_mandatory_protocols,
//   smtpd_tls_ciphers / mandatory_ciphers, exclusions, dh/eecdh at
//   Postfix 3.7's defaults. It returns nullptr (and logs a warning) when
//   TLS is not configured or the keys cannot be loaded, as Postfix then
//   offers no STARTTLS.
//
//   Two SSL_CTX: one for opportunistic TLS (smtpd_tls_protocols,
//   smtpd_tls_ciphers, smtpd_tls_exclude_ciphers), one for mandatory TLS
//   (the smtpd_tls_mandatory_* parameters, exclusions added to the
//   others), as Postfix chooses them by security level.
//
//   The established line and the Received: lines are Postfix 3.7.11's, as
//   observed: for TLS 1.3 they add "key-exchange X25519" (or "ECDHE
//   (prime256v1)", "DHE (2048 bits)"), "server-signature RSA-PSS (2048
//   bits)" (or "ECDSA (prime256v1)", "ED25519"), "server-digest SHA256",
//   and client-signature / client-digest when the client sent a
//   certificate; for TLS 1.2 and older nothing (the cipher name says it).
// BUGS
//   No tlsmgr(8) client yet: no session cache and no session tickets
//   (SSL_OP_NO_TICKET, no TLS 1.3 tickets), so every connection does a
//   full handshake and the line never says "reused". No SNI
//   (tls_server_sni_maps), no DANE, no smtpd_tls_dh512_param_file.
//   smtpd_tls_eecdh_grade = none leaves OpenSSL's default groups.
#pragma once

#include "common/mail/config.h"
#include "common/util/event.h"
#include "common/util/result.h"
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace rs::smtpd {

/// The parameters TlsServer uses, as Config gives them (expanded).
struct TlsSettings {
    std::vector<std::string> chain_files; ///< smtpd_tls_chain_files
    std::string cert_file, key_file;      ///< RSA (or any) key and cert
    std::string eccert_file, eckey_file;  ///< an ECDSA key and cert
    std::string dh1024_param_file;        ///< PEM DH parameters, or auto
    std::string protocols = ">=TLSv1";
    std::string mandatory_protocols = ">=TLSv1";
    std::string ciphers = "medium";           ///< grade
    std::string mandatory_ciphers = "medium"; ///< grade
    std::string exclude_ciphers, mandatory_exclude_ciphers;
    /// tls_<grade>_cipherlist for high, medium, low, export, null.
    std::string high_cipherlist = "aNULL:-aNULL:HIGH:@STRENGTH";
    std::string medium_cipherlist = "aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH";
    std::string low_cipherlist = "aNULL:-aNULL:HIGH:MEDIUM:LOW:+RC4:@STRENGTH";
    std::string export_cipherlist =
        "aNULL:-aNULL:HIGH:MEDIUM:LOW:EXPORT:+RC4:@STRENGTH";
    std::string null_cipherlist = "eNULL:!aNULL";
    bool preempt_cipherlist = false;
    std::string eecdh_grade = "auto"; ///< auto, strong, ultra, none
    std::string eecdh_auto_curves = "X25519 X448 prime256v1 secp521r1 "
                                    "secp384r1";
    std::string eecdh_strong_curve = "prime256v1";
    std::string eecdh_ultra_curve = "secp384r1";
    bool ask_ccert = false;     ///< request a client certificate
    std::string CAfile, CApath; ///< to verify client certificates
    int ccert_verifydepth = 9;
};

/// The protocols a Postfix protocol list allows, as TLS1_VERSION etc.
struct TlsProtocolRange {
    int min_version = 0;
    int max_version = 0;
    long no_options = 0; ///< SSL_OP_NO_* for holes inside the range
};

/// Parse smtpd_tls_protocols syntax: names SSLv2 SSLv3 TLSv1 TLSv1.1
/// TLSv1.2 TLSv1.3, separated by comma, colon or white space, each either
/// plain (only the listed ones), "!name" (not this one), ">=name" or
/// "<=name" (bounds); case-insensitive. An unknown name or an empty
/// result is an error (Postfix then disables TLS).
Result<TlsProtocolRange> parse_tls_protocols(std::string_view list);

class TlsServer {
public:
    /// From main.cf: nullptr without a warning when
    /// smtpd_tls_security_level (or the legacy smtpd_use_tls /
    /// smtpd_enforce_tls) says no TLS; nullptr with a warning when it is
    /// wanted but the keys or settings do not work.
    static std::unique_ptr<TlsServer> create(mail::Config& config);

    /// The settings create() would use.
    static TlsSettings settings(mail::Config& config);

    /// Build both contexts; the error says what failed, for a warning.
    static Result<std::unique_ptr<TlsServer>>
    create(const TlsSettings& settings);

    /// A new SSL in accept state, or nullptr (logged).
    SslPtr new_session(bool mandatory);

    /// "Anonymous TLS connection established from NAMADDR: TLSv1.3 with
    /// cipher TLS_AES_256_GCM_SHA384 (256/256 bits)" and the rest, as
    /// Postfix logs it.
    static std::string established_line(SSL* ssl, const std::string& namaddr);

    /// The Received: header TLS lines (each starting with TAB).
    static std::vector<std::string> received_lines(SSL* ssl);

    /// Protocol name and cipher for policy/log use.
    static std::string protocol(SSL* ssl);
    static std::string cipher(SSL* ssl);
    static int cipher_bits(SSL* ssl);

private:
    SslCtxPtr ctx_;
    SslCtxPtr mandatory_ctx_;
};

} // namespace rs::smtpd
