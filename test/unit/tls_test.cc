// SPDX-License-Identifier: MIT
// NAME
//   tls_test.cc - unit tests for smtpd/tls: contexts, protocols, log text
// DESCRIPTION
//   Makes self-signed keys with OpenSSL into a temporary directory, builds
//   a TlsServer, and handshakes with an OpenSSL client over a socketpair.
//   The expected lines are the ones Postfix 3.7.11 logged and wrote for
//   the same handshakes in a lab (swaks, openssl s_client).
#include "common/mail/config.h"
#include "common/mail/log.h"
#include "smtpd/tls.h"
#include "test/unit/catch.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

using namespace rs;
using namespace rs::smtpd;

namespace {

namespace fs = std::filesystem;

// A temporary directory with an RSA and an ECDSA key and certificate,
// each also as a chain file (key first, then the certificate).
struct Keys {
    fs::path dir;
    std::string rsa_cert, rsa_key, rsa_chain, ec_cert, ec_key, client_chain;

    Keys()
    {
        char tmpl[] = "/tmp/rs-tls-test.XXXXXX";
        REQUIRE(mkdtemp(tmpl) != nullptr);
        dir = tmpl;
        make("rsa", EVP_RSA_gen(2048), "mx.test");
        make("ec", EVP_EC_gen("P-256"), "mx.test");
        make("client", EVP_RSA_gen(2048), "client.test");
        rsa_cert = (dir / "rsa.cert").string();
        rsa_key = (dir / "rsa.key").string();
        rsa_chain = (dir / "rsa.chain").string();
        ec_cert = (dir / "ec.cert").string();
        ec_key = (dir / "ec.key").string();
        client_chain = (dir / "client.chain").string();
    }
    ~Keys() { fs::remove_all(dir); }

    void make(const std::string& name, EVP_PKEY* pkey, const char* cn)
    {
        REQUIRE(pkey != nullptr);
        X509* x = X509_new();
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
        X509_gmtime_adj(X509_getm_notBefore(x), -60);
        X509_gmtime_adj(X509_getm_notAfter(x), 86400);
        X509_set_pubkey(x, pkey);
        X509_NAME* n = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>(cn),
                                   -1, -1, 0);
        X509_set_issuer_name(x, n);
        REQUIRE(X509_sign(x, pkey, EVP_sha256()) > 0);
        write(name + ".cert", nullptr, x);
        write(name + ".key", pkey, nullptr);
        write(name + ".chain", pkey, x);
        X509_free(x);
        EVP_PKEY_free(pkey);
    }

    void write(const std::string& file, EVP_PKEY* pkey, X509* x)
    {
        FILE* f = std::fopen((dir / file).c_str(), "w");
        REQUIRE(f != nullptr);
        if (pkey != nullptr) {
            PEM_write_PrivateKey(f, pkey, nullptr, nullptr, 0, nullptr,
                                 nullptr);
        }
        if (x != nullptr) {
            PEM_write_X509(f, x);
        }
        std::fclose(f);
    }
};

Keys& keys()
{
    static Keys k;
    return k;
}

TlsSettings rsa_settings()
{
    TlsSettings s;
    s.cert_file = keys().rsa_cert;
    s.key_file = keys().rsa_key;
    return s;
}

// The outcome of one handshake: both ends, for the server's text.
struct Handshake {
    SslPtr server;
    SslPtr client;
    bool ok = false;
};

// Run a server session against an OpenSSL client over a socketpair,
// alternating non-blocking steps until both are done or one fails.
Handshake handshake(TlsServer& srv, bool mandatory,
                    void (*setup)(SSL_CTX*) = nullptr)
{
    Handshake h;
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);

    SslCtxPtr cctx(SSL_CTX_new(TLS_client_method()));
    SSL_CTX_set_verify(cctx.get(), SSL_VERIFY_NONE, nullptr);
    if (setup != nullptr) {
        setup(cctx.get());
    }
    h.client.reset(SSL_new(cctx.get()));
    SSL_set_fd(h.client.get(), sv[1]);
    SSL_set_connect_state(h.client.get());
    h.server = srv.new_session(mandatory);
    REQUIRE(h.server);
    SSL_set_fd(h.server.get(), sv[0]);

    bool sdone = false;
    bool cdone = false;
    for (int i = 0; i < 200 && !(sdone && cdone); ++i) {
        if (!cdone) {
            int r = SSL_do_handshake(h.client.get());
            int e = SSL_get_error(h.client.get(), r);
            cdone = r == 1;
            if (r != 1 && e != SSL_ERROR_WANT_READ
                && e != SSL_ERROR_WANT_WRITE) {
                break;
            }
        }
        if (!sdone) {
            int r = SSL_do_handshake(h.server.get());
            int e = SSL_get_error(h.server.get(), r);
            sdone = r == 1;
            if (r != 1 && e != SSL_ERROR_WANT_READ
                && e != SSL_ERROR_WANT_WRITE) {
                break;
            }
        }
    }
    h.ok = sdone && cdone;
    close(sv[0]);
    close(sv[1]);
    return h;
}

std::unique_ptr<TlsServer> make(const TlsSettings& s)
{
    auto r = TlsServer::create(s);
    INFO((r ? std::string() : r.error().text));
    REQUIRE(r);
    return std::move(*r);
}

const std::string localhost = "localhost[127.0.0.1]";

} // namespace

TEST_CASE("tls: TLS 1.3 log line and Received lines as Postfix 3.7.11's")
{
    auto srv = make(rsa_settings());
    auto h = handshake(*srv, false);
    REQUIRE(h.ok);
    CHECK(TlsServer::established_line(h.server.get(), localhost)
          == "Anonymous TLS connection established from "
             "localhost[127.0.0.1]: TLSv1.3 with cipher "
             "TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 "
             "server-signature RSA-PSS (2048 bits) server-digest SHA256");
    auto lines = TlsServer::received_lines(h.server.get());
    REQUIRE(lines.size() == 3);
    CHECK(lines[0]
          == "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 "
             "(256/256 bits)");
    CHECK(lines[1]
          == "\t key-exchange X25519 server-signature RSA-PSS (2048 bits) "
             "server-digest SHA256)");
    CHECK(lines[2] == "\t(No client certificate requested)");
    CHECK(TlsServer::protocol(h.server.get()) == "TLSv1.3");
    CHECK(TlsServer::cipher(h.server.get()) == "TLS_AES_256_GCM_SHA384");
    CHECK(TlsServer::cipher_bits(h.server.get()) == 256);
}

TEST_CASE("tls: a P-256 key share is logged as ECDHE (prime256v1)")
{
    auto srv = make(rsa_settings());
    auto h = handshake(
        *srv, false, [](SSL_CTX* c) { SSL_CTX_set1_groups_list(c, "P-256"); });
    REQUIRE(h.ok);
    CHECK(TlsServer::established_line(h.server.get(), localhost)
          == "Anonymous TLS connection established from "
             "localhost[127.0.0.1]: TLSv1.3 with cipher "
             "TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange ECDHE "
             "(prime256v1) server-signature RSA-PSS (2048 bits) "
             "server-digest SHA256");
}

TEST_CASE("tls: TLS 1.2 names only the cipher, as Postfix does")
{
    auto srv = make(rsa_settings());
    auto h = handshake(*srv, false, [](SSL_CTX* c) {
        SSL_CTX_set_max_proto_version(c, TLS1_2_VERSION);
    });
    REQUIRE(h.ok);
    CHECK(TlsServer::established_line(h.server.get(), localhost)
          == "Anonymous TLS connection established from "
             "localhost[127.0.0.1]: TLSv1.2 with cipher "
             "ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)");
    auto lines = TlsServer::received_lines(h.server.get());
    REQUIRE(lines.size() == 2);
    CHECK(lines[0]
          == "\t(using TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 "
             "(256/256 bits))");
}

TEST_CASE("tls: smtpd_tls_protocols = >=TLSv1.3 refuses a TLS 1.2 client")
{
    auto s = rsa_settings();
    s.protocols = ">=TLSv1.3";
    auto srv = make(s);
    auto tls12 = [](SSL_CTX* c) {
        SSL_CTX_set_max_proto_version(c, TLS1_2_VERSION);
    };
    CHECK_FALSE(handshake(*srv, false, tls12).ok);
    // The mandatory context keeps its own (default) protocols.
    CHECK(handshake(*srv, true, tls12).ok);
}

TEST_CASE("tls: mandatory protocols apply to mandatory sessions only")
{
    auto s = rsa_settings();
    s.mandatory_protocols = "TLSv1.3";
    auto srv = make(s);
    auto tls12 = [](SSL_CTX* c) {
        SSL_CTX_set_max_proto_version(c, TLS1_2_VERSION);
    };
    CHECK_FALSE(handshake(*srv, true, tls12).ok);
    CHECK(handshake(*srv, false, tls12).ok);
}

TEST_CASE("tls: <=TLSv1.2 caps a TLS 1.3 client at TLS 1.2")
{
    auto s = rsa_settings();
    s.protocols = "!SSLv2, !SSLv3, <=TLSv1.2";
    auto srv = make(s);
    auto h = handshake(*srv, false);
    REQUIRE(h.ok);
    CHECK(TlsServer::protocol(h.server.get()) == "TLSv1.2");
}

TEST_CASE("tls: smtpd_tls_exclude_ciphers removes a TLS 1.2 cipher")
{
    auto s = rsa_settings();
    s.exclude_ciphers = "AESGCM, CHACHA20";
    auto srv = make(s);
    auto h = handshake(*srv, false, [](SSL_CTX* c) {
        SSL_CTX_set_max_proto_version(c, TLS1_2_VERSION);
    });
    REQUIRE(h.ok);
    std::string c = TlsServer::cipher(h.server.get());
    CHECK(c.find("GCM") == std::string::npos);
    CHECK(c.find("CHACHA") == std::string::npos);
}

TEST_CASE("tls: eecdh grade strong offers only prime256v1")
{
    auto s = rsa_settings();
    s.eecdh_grade = "strong";
    auto srv = make(s);
    auto h = handshake(*srv, false);
    REQUIRE(h.ok);
    CHECK(TlsServer::established_line(h.server.get(), localhost)
              .find(" key-exchange ECDHE (prime256v1) ")
          != std::string::npos);
}

TEST_CASE("tls: an ECDSA certificate is named ECDSA (prime256v1)")
{
    TlsSettings s;
    s.eccert_file = keys().ec_cert;
    s.eckey_file = keys().ec_key;
    auto srv = make(s);
    auto h = handshake(*srv, false);
    REQUIRE(h.ok);
    CHECK(TlsServer::established_line(h.server.get(), localhost)
              .ends_with(" key-exchange X25519 server-signature ECDSA "
                         "(prime256v1) server-digest SHA256"));
}

TEST_CASE("tls: smtpd_tls_chain_files wins over cert and key files")
{
    TlsSettings s;
    s.chain_files = {keys().rsa_chain};
    s.cert_file = "/nonexistent";
    auto srv = make(s);
    CHECK(handshake(*srv, false).ok);
}

TEST_CASE("tls: a client certificate is asked for and described")
{
    auto s = rsa_settings();
    s.ask_ccert = true;
    auto srv = make(s);

    // Without one.
    auto h = handshake(*srv, false);
    REQUIRE(h.ok);
    CHECK(TlsServer::received_lines(h.server.get()).back()
          == "\t(Client did not present a certificate)");

    // With a self-signed one that no CA vouches for.
    static std::string chain;
    chain = keys().client_chain;
    h = handshake(*srv, false, [](SSL_CTX* c) {
        SSL_CTX_use_certificate_chain_file(c, chain.c_str());
        SSL_CTX_use_PrivateKey_file(c, chain.c_str(), SSL_FILETYPE_PEM);
    });
    REQUIRE(h.ok);
    CHECK(TlsServer::established_line(h.server.get(), localhost)
          == "Untrusted TLS connection established from "
             "localhost[127.0.0.1]: TLSv1.3 with cipher "
             "TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 "
             "server-signature RSA-PSS (2048 bits) server-digest SHA256 "
             "client-signature RSA-PSS (2048 bits) client-digest SHA256");
    auto lines = TlsServer::received_lines(h.server.get());
    REQUIRE(lines.size() == 4);
    CHECK(lines[2]
          == "\t client-signature RSA-PSS (2048 bits) client-digest SHA256)");
    CHECK(lines[3]
          == "\t(Client CN \"client.test\", Issuer \"client.test\" (not "
             "verified))");
}

TEST_CASE("tls: missing or broken keys make create() fail with a reason")
{
    TlsSettings none;
    auto r = TlsServer::create(none);
    REQUIRE_FALSE(r);
    CHECK(r.error().text == "No server certs available. TLS won't be enabled");

    auto bad = rsa_settings();
    bad.key_file = keys().ec_key;
    CHECK_FALSE(TlsServer::create(bad));

    auto proto = rsa_settings();
    proto.protocols = ">=TLSv9";
    r = TlsServer::create(proto);
    REQUIRE_FALSE(r);
    CHECK(r.error().text.starts_with("Invalid TLS protocol list"));

    auto grade = rsa_settings();
    grade.ciphers = "ultra";
    CHECK_FALSE(TlsServer::create(grade));
}

TEST_CASE("tls: parse_tls_protocols understands Postfix's list syntax")
{
    auto r = parse_tls_protocols(">=TLSv1");
    REQUIRE(r);
    CHECK(r->min_version == TLS1_VERSION);
    CHECK(r->max_version == TLS1_3_VERSION);
    CHECK(r->no_options == 0);

    r = parse_tls_protocols("!SSLv2, !SSLv3");
    REQUIRE(r);
    CHECK(r->min_version == TLS1_VERSION);

    r = parse_tls_protocols("!SSLv2:!SSLv3:!TLSv1.1");
    REQUIRE(r);
    CHECK(r->min_version == TLS1_VERSION);
    CHECK(r->no_options == SSL_OP_NO_TLSv1_1);

    r = parse_tls_protocols("TLSv1.2 tlsv1.3");
    REQUIRE(r);
    CHECK(r->min_version == TLS1_2_VERSION);
    CHECK(r->max_version == TLS1_3_VERSION);

    r = parse_tls_protocols(">=TLSv1.1 <=TLSv1.2");
    REQUIRE(r);
    CHECK(r->min_version == TLS1_1_VERSION);
    CHECK(r->max_version == TLS1_2_VERSION);

    CHECK_FALSE(parse_tls_protocols("TLSv2"));
    CHECK_FALSE(
        parse_tls_protocols("!SSLv3 !TLSv1 !TLSv1.1 !TLSv1.2 !TLSv1.3"));
    CHECK_FALSE(parse_tls_protocols("SSLv2"));
}

TEST_CASE("tls: create(Config) follows smtpd_tls_security_level")
{
    rs::log::set_stderr(true);

    // No level and no legacy switch: no TLS, and nothing to warn about.
    mail::Config off;
    off.read_text("smtpd_tls_cert_file = " + keys().rsa_cert + "\n", "main.cf");
    CHECK(TlsServer::create(off) == nullptr);

    // may with keys: a working server, Postfix's defaults for the rest.
    mail::Config may;
    may.read_text("smtpd_tls_security_level = may\n"
                  "smtpd_tls_cert_file = "
                      + keys().rsa_cert
                      + "\n"
                        "smtpd_tls_key_file = "
                      + keys().rsa_key + "\n",
                  "main.cf");
    auto srv = TlsServer::create(may);
    REQUIRE(srv != nullptr);
    CHECK(handshake(*srv, false).ok);

    // The legacy smtpd_use_tls = yes means may.
    mail::Config legacy;
    legacy.read_text("smtpd_use_tls = yes\nsmtpd_tls_cert_file = "
                         + keys().rsa_cert + "\n"
                         + "smtpd_tls_key_file = " + keys().rsa_key + "\n",
                     "main.cf");
    CHECK(TlsServer::create(legacy) != nullptr);

    // may without keys: no TLS (and a warning).
    mail::Config nokeys;
    nokeys.read_text("smtpd_tls_security_level = may\n", "main.cf");
    CHECK(TlsServer::create(nokeys) == nullptr);
}
