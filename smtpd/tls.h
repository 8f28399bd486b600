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
#pragma once

#include "common/mail/config.h"
#include "common/util/event.h"
#include <memory>
#include <string>
#include <vector>

namespace rs::smtpd {

class TlsServer {
public:
    static std::unique_ptr<TlsServer> create(mail::Config& config);

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
