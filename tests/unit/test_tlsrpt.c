/* Unit tests for TLS reporting results (spec 6.3) and the TLS layer: TLSA
 * parsing, alert names, verify-error mapping, and real handshakes against an
 * in-process OpenSSL server over a socketpair, with a CA and certificates
 * generated at test time (spec 5, 6.2, 2.8, 23.6). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls.h"
#include "tlsrpt.h"

/* ------------------------------------------------------------------ */
/* TLSRPT results */

static const tlsrpt_peer peer_a = {"192.0.2.1", "192.0.2.25", "mx.test", "mx.test"};
static const tlsrpt_peer peer_b = {"192.0.2.1", "192.0.2.26", "mx.test", "mx.test"};

static const char *field(const smtpc_tlsrpt *r, size_t i, const char *f)
{
    const char *v = smtpc_tlsrpt_detail_field(r, i, f);
    return v ? v : "(null)";
}

static void test_counts_clamped(void **state)
{
    (void)state;
    static const struct {
        int64_t s, f, want_s, want_f;
    } steps[] = {
        {1, 0, 1, 0}, {0, 1, 1, 1}, {-1, 1, 0, 2}, {-1, 0, 0, 2}, {-5, -5, 0, 0}, {3, 2, 3, 2},
    };
    smtpc_tlsrpt r = {0};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        assert_int_equal(tlsrpt_add(&r, steps[i].s, steps[i].f, NULL, NULL, NULL), 0);
        assert_int_equal(smtpc_tlsrpt_success(&r), steps[i].want_s);
        assert_int_equal(smtpc_tlsrpt_failure(&r), steps[i].want_f);
    }
    assert_int_equal(smtpc_tlsrpt_detail_count(&r), 0);
    tlsrpt_add(&r, INT64_MAX, 0, NULL, NULL, NULL);
    assert_int_equal(smtpc_tlsrpt_success(&r), INT64_MAX); /* saturates */
    tlsrpt_clear(&r);
    assert_int_equal(smtpc_tlsrpt_success(&r), 0);
}

static void test_detail_merge(void **state)
{
    (void)state;
    smtpc_tlsrpt r = {0};
    assert_int_equal(tlsrpt_add(&r, 0, 1, &peer_a, "certificate-expired", ""), 0);
    assert_int_equal(tlsrpt_add(&r, 0, 1, &peer_a, "certificate-expired", ""), 0);
    assert_int_equal(smtpc_tlsrpt_detail_count(&r), 1);
    assert_int_equal(smtpc_tlsrpt_detail_failed_sessions(&r, 0), 2);
    /* Any field differing makes a new detail (spec 6.3). */
    tlsrpt_add(&r, 0, 0, &peer_b, "certificate-expired", "");
    tlsrpt_add(&r, 0, 0, &peer_a, "certificate-expired", "x");
    tlsrpt_add(&r, 0, 0, &peer_a, "validation-failure", "");
    assert_int_equal(smtpc_tlsrpt_detail_count(&r), 4);
    assert_int_equal(smtpc_tlsrpt_failure(&r), 2);
    /* NULL peer and reason are the empty string. */
    tlsrpt_add(&r, 0, 0, NULL, "starttls-not-supported", NULL);
    tlsrpt_add(&r, 0, 0, &(tlsrpt_peer){"", "", "", ""}, "starttls-not-supported", "");
    assert_int_equal(smtpc_tlsrpt_detail_count(&r), 5);
    assert_int_equal(smtpc_tlsrpt_detail_failed_sessions(&r, 4), 2);
    assert_string_equal(field(&r, 0, "result-type"), "certificate-expired");
    assert_string_equal(field(&r, 0, "sending-mta-ip"), "192.0.2.1");
    assert_string_equal(field(&r, 0, "receiving-ip"), "192.0.2.25");
    assert_string_equal(field(&r, 0, "receiving-mx-hostname"), "mx.test");
    assert_string_equal(field(&r, 0, "receiving-mx-helo"), "mx.test");
    assert_string_equal(field(&r, 0, "failure-reason-code"), "");
    assert_string_equal(field(&r, 3, "result-type"), "validation-failure");
    assert_string_equal(field(&r, 4, "sending-mta-ip"), "");
    assert_null(smtpc_tlsrpt_detail_field(&r, 0, "bogus"));
    assert_null(smtpc_tlsrpt_detail_field(&r, 5, "result-type"));
    assert_int_equal(smtpc_tlsrpt_detail_failed_sessions(&r, 5), 0);
    tlsrpt_clear(&r);
    assert_int_equal(smtpc_tlsrpt_detail_count(&r), 0);
}

static void test_details_bounded(void **state)
{
    (void)state;
    smtpc_tlsrpt r = {0};
    char reason[32];
    for (int i = 0; i < TLSRPT_MAX_DETAILS + 10; i++) {
        snprintf(reason, sizeof(reason), "r%d", i);
        assert_int_equal(tlsrpt_add(&r, 0, 1, &peer_a, "validation-failure", reason), 0);
    }
    assert_int_equal(smtpc_tlsrpt_detail_count(&r), TLSRPT_MAX_DETAILS);
    assert_int_equal(smtpc_tlsrpt_failure(&r), TLSRPT_MAX_DETAILS + 10);
    /* An existing detail still merges when full. */
    tlsrpt_add(&r, 0, 1, &peer_a, "validation-failure", "r0");
    assert_int_equal(smtpc_tlsrpt_detail_failed_sessions(&r, 0), 2);
    tlsrpt_clear(&r);
}

static void test_public_merge(void **state)
{
    (void)state;
    smtpc_tlsrpt *a = smtpc_tlsrpt_new(), *b = smtpc_tlsrpt_new();
    assert_non_null(a);
    assert_non_null(b);
    tlsrpt_add(a, 2, 1, &peer_a, "certificate-expired", "");
    tlsrpt_add(b, 1, 1, &peer_a, "certificate-expired", "");
    tlsrpt_add(b, 0, 1, &peer_a, "certificate-expired", "");
    tlsrpt_add(b, 0, 1, &peer_b, "certificate-not-trusted", "");
    assert_int_equal(smtpc_tlsrpt_merge(a, b), 0);
    assert_int_equal(smtpc_tlsrpt_success(a), 3);
    assert_int_equal(smtpc_tlsrpt_failure(a), 4);
    assert_int_equal(smtpc_tlsrpt_detail_count(a), 2);
    assert_int_equal(smtpc_tlsrpt_detail_failed_sessions(a, 0), 3);
    assert_int_equal(smtpc_tlsrpt_detail_failed_sessions(a, 1), 1);
    assert_string_equal(field(a, 1, "receiving-ip"), "192.0.2.26");
    /* Merging into itself doubles everything. */
    assert_int_equal(smtpc_tlsrpt_merge(a, a), 0);
    assert_int_equal(smtpc_tlsrpt_success(a), 6);
    assert_int_equal(smtpc_tlsrpt_detail_count(a), 2);
    assert_int_equal(smtpc_tlsrpt_detail_failed_sessions(a, 0), 6);
    assert_int_equal(smtpc_tlsrpt_merge(a, NULL), 0);
    assert_int_equal(smtpc_tlsrpt_merge(NULL, b), -1);
    assert_int_equal(smtpc_tlsrpt_success(NULL), 0);
    assert_int_equal(smtpc_tlsrpt_detail_count(NULL), 0);
    smtpc_tlsrpt_free(a);
    smtpc_tlsrpt_free(b);
    smtpc_tlsrpt_free(NULL);
}

/* ------------------------------------------------------------------ */
/* TLSA, alerts, verify errors */

static void test_tlsa_parse(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int ok;
        uint8_t u, s, m;
        const char *hex; /* expected data, as bytes in hex */
    } cases[] = {
        {"3 1 1 abcd", 1, 3, 1, 1, "abcd"},
        {"2 0 1 AB cd\tEF", 1, 2, 0, 1, "abcdef"},
        {"  0 0 0 00", 1, 0, 0, 0, "00"},
        {"255 255 255 ff", 1, 255, 255, 255, "ff"},
        {"", 0, 0, 0, 0, NULL},
        {"3 1", 0, 0, 0, 0, NULL},
        {"3 1 1", 0, 0, 0, 0, NULL},
        {"3 1 1 ", 0, 0, 0, 0, NULL},
        {"256 1 1 ab", 0, 0, 0, 0, NULL},
        {"3 1 1 abc", 0, 0, 0, 0, NULL},
        {"3 1 1 zz", 0, 0, 0, 0, NULL},
        {"3x 1 1 ab", 0, 0, 0, 0, NULL},
        {"-1 1 1 ab", 0, 0, 0, 0, NULL},
        {"3 1 1 ab;", 0, 0, 0, 0, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tlsa_rec r = {0};
        int rc = tlsa_parse_text(cases[i].text, &r);
        if (!cases[i].ok) {
            if (rc != -1)
                fail_msg("accepted: \"%s\"", cases[i].text);
            continue;
        }
        if (rc != 0)
            fail_msg("rejected: \"%s\"", cases[i].text);
        assert_int_equal(r.usage, cases[i].u);
        assert_int_equal(r.selector, cases[i].s);
        assert_int_equal(r.mtype, cases[i].m);
        char hex[64] = "";
        assert_true(r.len * 2 < sizeof(hex));
        for (size_t j = 0; j < r.len; j++)
            snprintf(hex + 2 * j, 3, "%02x", r.data[j]);
        assert_string_equal(hex, cases[i].hex);
        free(r.data);
    }
}

static void test_alert_names(void **state)
{
    (void)state;
    static const struct {
        int n;
        const char *want;
    } cases[] = {
        {0, "alert-0-close-notify"},
        {20, "alert-20-bad-record-MAC"},
        {40, "alert-40-handshake-failure"},
        {42, "alert-42-bad-certificate"},
        {48, "alert-48-unknown-certificate-authority"},
        {70, "alert-70-protocol-version-not-supported"},
        {112, "alert-112-unrecognized-name"},
        {115, "alert-115-unknown-PSK-identity"},
        {116, "alert-116-certificate-required"},
        {121, "alert-121-encrypted-client-hello-required"},
        {41, "alert-41"},
        {255, "alert-255"},
    };
    char buf[80];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tls_alert_name(cases[i].n, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].want);
    }
    tls_alert_name(70, buf, 9); /* bounded */
    assert_string_equal(buf, "alert-70");
}

static void test_verify_error_map(void **state)
{
    (void)state;
    static const struct {
        long err;
        const char *type, *reason;
    } cases[] = {
        {X509_V_ERR_CERT_HAS_EXPIRED, "certificate-expired", ""},
        {X509_V_ERR_CERT_NOT_YET_VALID, "certificate-expired", ""},
        {X509_V_ERR_HOSTNAME_MISMATCH, "certificate-host-mismatch", ""},
        {X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, "certificate-not-trusted", ""},
        {X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, "certificate-not-trusted", ""},
        {X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, "certificate-not-trusted", ""},
        {X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, "certificate-not-trusted", ""},
        {X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE, "certificate-not-trusted", ""},
        {X509_V_ERR_CERT_UNTRUSTED, "certificate-not-trusted", ""},
        {X509_V_ERR_INVALID_CA, "certificate-not-trusted", "not-authorized-to-sign"},
        {X509_V_ERR_PATH_LENGTH_EXCEEDED, "certificate-not-trusted", "too-many-intermediates"},
        {X509_V_ERR_INVALID_PURPOSE, "certificate-not-trusted", "incompatible-key-usage"},
        {X509_V_ERR_PERMITTED_VIOLATION, "certificate-not-trusted",
         "ca-not-authorized-for-this-name"},
        {X509_V_ERR_EXCLUDED_VIOLATION, "certificate-not-trusted",
         "ca-not-authorized-for-this-name"},
        {X509_V_ERR_SUBJECT_ISSUER_MISMATCH, "certificate-not-trusted",
         "parent-subject-child-issuer-mismatch"},
        {X509_V_ERR_CERT_SIGNATURE_FAILURE, "certificate-not-trusted",
         "openssl-x509-verify-error"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *type = NULL, *reason = NULL;
        tls_verify_error_to_tlsrpt(cases[i].err, &type, &reason);
        assert_string_equal(type, cases[i].type);
        assert_string_equal(reason, cases[i].reason);
    }
}

/* ------------------------------------------------------------------ */
/* Certificates generated at test time */

typedef struct cert {
    X509 *x;
    EVP_PKEY *k;
} cert;

typedef struct fixture {
    char dir[64];
    char ca_path[128], client_cert_path[128], client_key_path[128], bad_key_path[128];
    cert ca, inter, leaf, leaf2, expired, wrongname, selfsigned, client;
} fixture;

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

/* A certificate for cn; issuer NULL: self-signed. Validity in days from now. */
static cert make_cert(const char *cn, const char *san, const cert *issuer, bool ca, long from,
                      long to, long serial)
{
    cert c = {X509_new(), EVP_EC_gen("P-256")};
    assert_non_null(c.x);
    assert_non_null(c.k);
    X509_set_version(c.x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c.x), serial);
    X509_gmtime_adj(X509_getm_notBefore(c.x), from * 86400);
    X509_gmtime_adj(X509_getm_notAfter(c.x), to * 86400);
    X509_set_pubkey(c.x, c.k);
    X509_NAME *name = X509_get_subject_name(c.x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509 *ix = issuer ? issuer->x : c.x;
    X509_set_issuer_name(c.x, X509_get_subject_name(ix));
    add_ext(c.x, ix, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    add_ext(c.x, ix, NID_subject_key_identifier, "hash");
    if (ca) {
        add_ext(c.x, ix, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(c.x, ix, NID_authority_key_identifier, "keyid:always");
        add_ext(c.x, ix, NID_key_usage, "critical,digitalSignature");
        add_ext(c.x, ix, NID_ext_key_usage, "serverAuth,clientAuth");
    }
    if (san)
        add_ext(c.x, ix, NID_subject_alt_name, san);
    assert_true(X509_sign(c.x, issuer ? issuer->k : c.k, EVP_sha256()) > 0);
    return c;
}

static void write_pem(const char *path, X509 *x, EVP_PKEY *k)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    if (x)
        assert_int_equal(PEM_write_X509(f, x), 1);
    if (k)
        assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
}

static int fixture_setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/smtpc-tls-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->ca = make_cert("smtpc test CA", NULL, NULL, true, -1, 365, 1);
    f->leaf = make_cert("mx.test", "DNS:mx.test,IP:127.0.0.1", &f->ca, false, -1, 365, 2);
    f->expired = make_cert("mx.test", "DNS:mx.test", &f->ca, false, -30, -1, 3);
    f->wrongname = make_cert("other.test", "DNS:other.test", &f->ca, false, -1, 365, 4);
    f->selfsigned = make_cert("mx.test", "DNS:mx.test", NULL, false, -1, 365, 5);
    f->client = make_cert("client.test", "DNS:client.test", &f->ca, false, -1, 365, 6);
    f->inter = make_cert("smtpc test intermediate", NULL, &f->ca, true, -1, 365, 7);
    f->leaf2 = make_cert("mx.test", "DNS:mx.test", &f->inter, false, -1, 365, 8);
    snprintf(f->ca_path, sizeof(f->ca_path), "%s/ca.pem", f->dir);
    snprintf(f->client_cert_path, sizeof(f->client_cert_path), "%s/client.pem", f->dir);
    snprintf(f->client_key_path, sizeof(f->client_key_path), "%s/client.key", f->dir);
    snprintf(f->bad_key_path, sizeof(f->bad_key_path), "%s/bad.key", f->dir);
    write_pem(f->ca_path, f->ca.x, NULL);
    write_pem(f->client_cert_path, f->client.x, NULL);
    write_pem(f->client_key_path, NULL, f->client.k);
    write_pem(f->bad_key_path, NULL, f->leaf.k); /* does not match the client cert */
    *state = f;
    return 0;
}

static void cert_free(cert *c)
{
    X509_free(c->x);
    EVP_PKEY_free(c->k);
}

static int fixture_teardown(void **state)
{
    fixture *f = *state;
    unlink(f->ca_path);
    unlink(f->client_cert_path);
    unlink(f->client_key_path);
    unlink(f->bad_key_path);
    rmdir(f->dir);
    cert *all[] = {&f->ca,        &f->inter,      &f->leaf2,      &f->leaf,
                   &f->expired,   &f->wrongname,  &f->selfsigned, &f->client};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        cert_free(all[i]);
    free(f);
    return 0;
}

/* TLSA data: selector 1 = SHA-256 of the SPKI, selector 0 = of the whole cert. */
static tlsa_rec tlsa_of(X509 *x, uint8_t usage, uint8_t selector)
{
    unsigned char *der = NULL;
    int n = selector ? i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der) : i2d_X509(x, &der);
    assert_true(n > 0);
    tlsa_rec r = {usage, selector, 1, malloc(32), 32};
    assert_non_null(r.data);
    SHA256(der, (size_t)n, r.data);
    OPENSSL_free(der);
    return r;
}

static char *tlsa_text(const tlsa_rec *r)
{
    char *s = malloc(16 + 2 * r->len);
    assert_non_null(s);
    int off = sprintf(s, "%u %u %u ", r->usage, r->selector, r->mtype);
    for (size_t i = 0; i < r->len; i++)
        sprintf(s + off + 2 * i, "%02x", r->data[i]);
    return s;
}

static void test_tlsa_usable(void **state)
{
    fixture *f = *state;
    unsigned char d32[32] = {1}, d64[64] = {2};
    unsigned char *cder = NULL, *kder = NULL;
    int clen = i2d_X509(f->leaf.x, &cder);
    int klen = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(f->leaf.x), &kder);
    assert_true(clen > 0 && klen > 0);
    const struct {
        tlsa_rec r;
        bool usable;
    } cases[] = {
        {{3, 1, 1, d32, 32}, true},
        {{2, 0, 1, d32, 32}, true},
        {{3, 0, 2, d64, 64}, true},
        {{2, 1, 2, d64, 64}, true},
        {{3, 1, 1, d32, 31}, false},
        {{3, 1, 2, d64, 32}, false},
        {{1, 1, 1, d32, 32}, false}, /* PKIX-EE: not for SMTP */
        {{0, 0, 1, d32, 32}, false}, /* PKIX-TA */
        {{4, 1, 1, d32, 32}, false},
        {{3, 2, 1, d32, 32}, false},
        {{3, 1, 3, d32, 32}, false},
        {{3, 0, 0, cder, (size_t)clen}, true},
        {{3, 1, 0, kder, (size_t)klen}, true},
        {{3, 0, 0, kder, (size_t)klen}, false}, /* an SPKI is not a certificate */
        {{3, 1, 0, cder, (size_t)clen}, false},
        {{3, 0, 0, cder, (size_t)clen - 1}, false},
        {{3, 0, 0, d32, 32}, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (tlsa_usable(&cases[i].r) != cases[i].usable)
            fail_msg("case %zu: usable should be %d", i, cases[i].usable);
    OPENSSL_free(cder);
    OPENSSL_free(kder);
}

/* ------------------------------------------------------------------ */
/* Handshakes over a socketpair against an in-process server */

enum srv_mode { SRV_TLS, SRV_PLAIN, SRV_CLOSE };

typedef struct hs {
    const fixture *f;
    smtpc_tlsrpt rcpt, host;
    tls_params p;
    tls_conn *c;
    SSL_CTX *sctx;
    SSL *s;
    int fds[2];
    tls_io res;
    bool verify_failed;
    char err[256];
    int server_state; /* 0 running, 1 done, -1 failed */
    bool no_chain;    /* server sends its leaf only */
} hs;

static void hs_init(hs *h, const fixture *f)
{
    memset(h, 0, sizeof(*h));
    h->f = f;
    h->fds[0] = h->fds[1] = -1;
    h->p.ca_file = f->ca_path;
    h->p.name = "mx.test";
    h->p.pkix_enforce = true;
    h->p.rpt_rcpt = &h->rcpt;
    h->p.rpt_host = &h->host;
    h->p.peer = peer_a;
}

/* The server: cert (with the CA as chain), TLS versions up to maxver,
 * optionally requiring a client certificate. */
static void hs_server(hs *h, const cert *c, int maxver, bool want_client_cert)
{
    h->sctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(h->sctx);
    assert_int_equal(SSL_CTX_use_certificate(h->sctx, c->x), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(h->sctx, c->k), 1);
    if (h->no_chain)
        ; /* leaf only */
    else if (X509_check_issued(h->f->inter.x, c->x) == X509_V_OK)
        assert_int_equal(SSL_CTX_add1_chain_cert(h->sctx, h->f->inter.x), 1);
    else if (X509_check_issued(h->f->ca.x, c->x) == X509_V_OK)
        assert_int_equal(SSL_CTX_add1_chain_cert(h->sctx, h->f->ca.x), 1);
    if (maxver)
        SSL_CTX_set_max_proto_version(h->sctx, maxver);
    if (want_client_cert) {
        X509_STORE_add_cert(SSL_CTX_get_cert_store(h->sctx), h->f->ca.x);
        SSL_CTX_set_verify(h->sctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
}

static void hs_connect(hs *h)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, h->fds), 0);
    for (int i = 0; i < 2; i++)
        fcntl(h->fds[i], F_SETFL, fcntl(h->fds[i], F_GETFL) | O_NONBLOCK);
    h->c = tls_conn_new(&h->p, h->fds[0], h->err, sizeof(h->err));
    if (!h->c)
        fail_msg("tls_conn_new: %s", h->err);
    if (h->sctx) {
        h->s = SSL_new(h->sctx);
        SSL_set_fd(h->s, h->fds[1]);
        SSL_set_accept_state(h->s);
    }
}

static void server_step(hs *h)
{
    if (h->server_state != 0 || !h->s)
        return;
    int r = SSL_do_handshake(h->s);
    if (r == 1) {
        h->server_state = 1;
        return;
    }
    int e = SSL_get_error(h->s, r);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        h->server_state = -1;
        /* Let the client see the end of the connection. */
        shutdown(h->fds[1], SHUT_WR);
    }
    ERR_clear_error();
}

/* Runs both sides until the client's handshake is over. */
static void hs_run(hs *h, enum srv_mode mode)
{
    hs_connect(h);
    if (mode == SRV_PLAIN)
        assert_int_equal(write(h->fds[1], "220 mx.test ESMTP\r\n", 19), 19);
    if (mode == SRV_CLOSE)
        shutdown(h->fds[1], SHUT_RDWR);
    for (int i = 0; i < 1000; i++) {
        h->res = tls_conn_handshake(h->c, h->err, sizeof(h->err), &h->verify_failed);
        if (h->res != TLS_IO_WANT_READ && h->res != TLS_IO_WANT_WRITE)
            break;
        server_step(h);
    }
    assert_true(h->res != TLS_IO_WANT_READ && h->res != TLS_IO_WANT_WRITE);
    /* Finish the server side (TLS 1.3: it still reads our Finished). */
    for (int i = 0; i < 100 && h->server_state == 0; i++)
        server_step(h);
}

static void hs_free(hs *h)
{
    tls_conn_free(h->c);
    SSL_free(h->s);
    SSL_CTX_free(h->sctx);
    for (int i = 0; i < 2; i++)
        if (h->fds[i] >= 0)
            close(h->fds[i]);
    tlsrpt_clear(&h->rcpt);
    tlsrpt_clear(&h->host);
}

static void assert_client_ok(const hs *h)
{
    if (h->res != TLS_IO_OK)
        fail_msg("handshake failed: %s", h->err);
    assert_false(h->verify_failed);
    assert_int_equal(h->rcpt.success, 1);
    assert_int_equal(h->rcpt.failure, 0);
    assert_int_equal(h->host.success, 1);
    assert_int_equal(h->host.failure, 0);
}

static void assert_ok(const hs *h)
{
    assert_client_ok(h);
    assert_int_equal(h->server_state, 1);
}

static void assert_failed(const hs *h)
{
    assert_int_not_equal(h->res, TLS_IO_OK);
    assert_int_equal(h->rcpt.success, 0);
    assert_int_equal(h->rcpt.failure, 1);
    assert_int_equal(h->host.success, 0);
    assert_int_equal(h->host.failure, 1);
}

/* r has exactly one detail, of this type and reason. */
static void assert_detail(const smtpc_tlsrpt *r, const char *type, const char *reason)
{
    assert_int_equal(smtpc_tlsrpt_detail_count(r), 1);
    assert_string_equal(field(r, 0, "result-type"), type);
    assert_string_equal(field(r, 0, "failure-reason-code"), reason);
    assert_int_equal(smtpc_tlsrpt_detail_failed_sessions(r, 0), 1);
}

static void assert_err_contains(const hs *h, const char *s)
{
    if (!strstr(h->err, s))
        fail_msg("error \"%s\" lacks \"%s\"", h->err, s);
}

static void test_pkix_ok(void **state)
{
    hs h;
    hs_init(&h, *state);
    hs_server(&h, &h.f->leaf, 0, false);
    hs_run(&h, SRV_TLS);
    assert_ok(&h);
    assert_true(tls_conn_pkix_verified(h.c));
    assert_null(tls_conn_dane_record(h.c));
    assert_string_equal(tls_conn_version(h.c), "TLSv1.3");
    assert_non_null(tls_conn_cipher(h.c));
    assert_int_equal(smtpc_tlsrpt_detail_count(&h.rcpt), 0);
    assert_int_equal(smtpc_tlsrpt_detail_count(&h.host), 0);
    /* Application data both ways, then close_notify = EOF. */
    size_t n = 0;
    char buf[64];
    assert_int_equal(tls_conn_write(h.c, "EHLO x\r\n", 8, &n, h.err, sizeof(h.err)), TLS_IO_OK);
    assert_int_equal(n, 8);
    int r = SSL_read(h.s, buf, sizeof(buf));
    assert_int_equal(r, 8);
    assert_memory_equal(buf, "EHLO x\r\n", 8);
    assert_int_equal(tls_conn_read(h.c, buf, sizeof(buf), &n, h.err, sizeof(h.err)),
                     TLS_IO_WANT_READ);
    assert_int_equal(SSL_write(h.s, "250 ok\r\n", 8), 8);
    assert_int_equal(tls_conn_read(h.c, buf, 3, &n, h.err, sizeof(h.err)), TLS_IO_OK);
    assert_int_equal(n, 3);
    assert_int_equal(tls_conn_pending(h.c), 5);
    assert_int_equal(tls_conn_read(h.c, buf, sizeof(buf), &n, h.err, sizeof(h.err)), TLS_IO_OK);
    assert_int_equal(n, 5);
    SSL_shutdown(h.s);
    assert_int_equal(tls_conn_read(h.c, buf, sizeof(buf), &n, h.err, sizeof(h.err)), TLS_IO_EOF);
    /* Nothing was compensated. */
    assert_int_equal(h.rcpt.success, 1);
    hs_free(&h);
}

static void test_pkix_intermediate(void **state)
{
    /* The server's intermediate is used for the path to our root. */
    hs h;
    hs_init(&h, *state);
    hs_server(&h, &h.f->leaf2, 0, false);
    hs_run(&h, SRV_TLS);
    assert_ok(&h);
    assert_true(tls_conn_pkix_verified(h.c));
    hs_free(&h);
    /* DANE-TA on the intermediate (2 1 1) also verifies. */
    tlsa_rec rec = tlsa_of(h.f->inter.x, 2, 1);
    hs_init(&h, *state);
    h.p.dane = true;
    h.p.tlsa = &rec;
    h.p.ntlsa = 1;
    hs_server(&h, &h.f->leaf2, 0, false);
    hs_run(&h, SRV_TLS);
    assert_ok(&h);
    assert_non_null(tls_conn_dane_record(h.c));
    hs_free(&h);
    free(rec.data);
}

static void test_pkix_expired(void **state)
{
    hs h;
    hs_init(&h, *state);
    hs_server(&h, &h.f->expired, 0, false);
    hs_run(&h, SRV_TLS);
    assert_failed(&h);
    assert_true(h.verify_failed);
    assert_int_equal(h.res, TLS_IO_ERR);
    assert_err_contains(&h, "certificate verify failed: certificate has expired");
    assert_detail(&h.rcpt, "certificate-expired", "");
    assert_int_equal(smtpc_tlsrpt_detail_count(&h.host), 0); /* reported once (5.6) */
    assert_string_equal(field(&h.rcpt, 0, "receiving-mx-hostname"), "mx.test");
    assert_string_equal(field(&h.rcpt, 0, "receiving-ip"), "192.0.2.25");
    assert_int_equal(h.server_state, -1); /* we sent an alert */
    hs_free(&h);
}

static void test_pkix_wrong_name(void **state)
{
    hs h;
    hs_init(&h, *state);
    hs_server(&h, &h.f->wrongname, 0, false);
    hs_run(&h, SRV_TLS);
    assert_failed(&h);
    assert_true(h.verify_failed);
    assert_detail(&h.rcpt, "certificate-host-mismatch", "");
    assert_int_equal(smtpc_tlsrpt_detail_count(&h.host), 0);
    hs_free(&h);
}

static void test_pkix_untrusted(void **state)
{
    hs h;
    hs_init(&h, *state);
    hs_server(&h, &h.f->selfsigned, 0, false);
    hs_run(&h, SRV_TLS);
    assert_failed(&h);
    assert_detail(&h.rcpt, "certificate-not-trusted", "");
    hs_free(&h);
}

static void test_pkix_no_name(void **state)
{
    /* No name: no SNI and no name check; a wrong-name cert verifies. */
    hs h;
    hs_init(&h, *state);
    h.p.name = NULL;
    hs_server(&h, &h.f->wrongname, 0, false);
    hs_run(&h, SRV_TLS);
    assert_ok(&h);
    assert_true(tls_conn_pkix_verified(h.c));
    assert_null(SSL_get_servername(h.s, TLSEXT_NAMETYPE_host_name));
    hs_free(&h);
}

static void test_sni(void **state)
{
    hs h;
    hs_init(&h, *state);
    h.p.name = "mx.test."; /* trailing dot dropped for SNI and the name check */
    hs_server(&h, &h.f->leaf, 0, false);
    hs_run(&h, SRV_TLS);
    assert_ok(&h);
    assert_string_equal(SSL_get_servername(h.s, TLSEXT_NAMETYPE_host_name), "mx.test");
    hs_free(&h);
    static const char *ips[] = {"127.0.0.1", "::1", "[::1]"};
    for (size_t i = 0; i < 3; i++) {
        hs_init(&h, *state);
        h.p.name = ips[i]; /* an IP literal is never sent as SNI */
        h.p.pkix_enforce = false;
        hs_server(&h, &h.f->leaf, 0, false);
        hs_run(&h, SRV_TLS);
        assert_ok(&h);
        assert_null(SSL_get_servername(h.s, TLSEXT_NAMETYPE_host_name));
        if (i == 0) { /* the leaf has IP:127.0.0.1 */
            assert_true(tls_conn_pkix_verified(h.c));
            assert_int_equal(smtpc_tlsrpt_detail_count(&h.rcpt), 0);
        } else {
            assert_detail(&h.rcpt, "certificate-host-mismatch", "");
        }
        hs_free(&h);
    }
}

static void test_pkix_not_enforced(void **state)
{
    hs h;
    hs_init(&h, *state);
    h.p.pkix_enforce = false;
    hs_server(&h, &h.f->selfsigned, 0, false);
    hs_run(&h, SRV_TLS);
    assert_ok(&h); /* opportunistic + self-signed (5.7) */
    assert_false(tls_conn_pkix_verified(h.c));
    assert_detail(&h.rcpt, "certificate-not-trusted", "");
    assert_int_equal(smtpc_tlsrpt_detail_count(&h.host), 0);
    hs_free(&h);
}

static void test_ignore_errors(void **state)
{
    hs h;
    hs_init(&h, *state);
    h.p.ignore_errors = true;
    hs_server(&h, &h.f->expired, 0, false);
    hs_run(&h, SRV_TLS);
    assert_ok(&h);
    assert_false(tls_conn_pkix_verified(h.c));
    assert_detail(&h.rcpt, "certificate-expired", "");
    hs_free(&h);
}

static void test_dane_ee(void **state)
{
    const fixture *f = *state;
    /* Matching 3 1 1 after a non-matching one: verified, record reported. */
    tlsa_rec recs[2] = {tlsa_of(f->selfsigned.x, 3, 1), tlsa_of(f->leaf.x, 3, 1)};
    hs h;
    hs_init(&h, f);
    h.p.dane = true;
    h.p.tlsa = recs;
    h.p.ntlsa = 2;
    hs_server(&h, &f->leaf, 0, false);
    hs_run(&h, SRV_TLS);
    assert_ok(&h);
    assert_true(tls_conn_pkix_verified(h.c));
    char *want = tlsa_text(&recs[1]);
    assert_non_null(tls_conn_dane_record(h.c));
    assert_string_equal(tls_conn_dane_record(h.c), want);
    free(want);
    assert_int_equal(smtpc_tlsrpt_detail_count(&h.host), 0);
    hs_free(&h);

    /* Without a name (or with an IP literal) DANE-EE still works. */
    const char *names[] = {NULL, "192.0.2.25"};
    for (size_t i = 0; i < 2; i++) {
        hs_init(&h, f);
        h.p.name = names[i];
        h.p.dane = true;
        h.p.pkix_enforce = false;
        h.p.tlsa = recs;
        h.p.ntlsa = 2;
        hs_server(&h, &f->leaf, 0, false);
        hs_run(&h, SRV_TLS);
        assert_ok(&h);
        assert_non_null(tls_conn_dane_record(h.c));
        assert_null(SSL_get_servername(h.s, TLSEXT_NAMETYPE_host_name));
        hs_free(&h);
    }

    /* Not matching: host result detail, handshake fails. */
    hs_init(&h, f);
    h.p.dane = true;
    h.p.tlsa = recs;
    h.p.ntlsa = 1;
    hs_server(&h, &f->leaf, 0, false);
    hs_run(&h, SRV_TLS);
    assert_failed(&h);
    assert_true(h.verify_failed);
    assert_err_contains(&h, "dane");
    assert_detail(&h.host, "validation-failure", "dane-no-match");
    assert_int_equal(smtpc_tlsrpt_detail_count(&h.rcpt), 0); /* PKIX was fine */
    hs_free(&h);
    free(recs[0].data);
    free(recs[1].data);
}

static void test_dane_ee_no_name_checks(void **state)
{
    const fixture *f = *state;
    /* DANE-EE: no name, expiry or chain checks; PKIX not enforced (5.7). */
    const cert *certs[] = {&f->expired, &f->wrongname, &f->selfsigned};
    for (size_t i = 0; i < 3; i++) {
        tlsa_rec rec = tlsa_of(certs[i]->x, 3, 1);
        hs h;
        hs_init(&h, f);
        h.p.dane = true;
        h.p.pkix_enforce = false;
        h.p.tlsa = &rec;
        h.p.ntlsa = 1;
        hs_server(&h, certs[i], 0, false);
        hs_run(&h, SRV_TLS);
        assert_ok(&h);
        assert_false(tls_conn_pkix_verified(h.c));
        assert_non_null(tls_conn_dane_record(h.c));
        assert_int_equal(smtpc_tlsrpt_detail_count(&h.host), 0);
        assert_int_equal(smtpc_tlsrpt_detail_count(&h.rcpt), 1); /* PKIX still reported */
        hs_free(&h);
        free(rec.data);
    }
}

static void test_dane_ok_pkix_enforced(void **state)
{
    /* DANE verified + PKIX enforced and failing -> fails (5.7). */
    const fixture *f = *state;
    tlsa_rec rec = tlsa_of(f->selfsigned.x, 3, 1);
    hs h;
    hs_init(&h, f);
    h.p.dane = true;
    h.p.tlsa = &rec;
    h.p.ntlsa = 1;
    hs_server(&h, &f->selfsigned, 0, false);
    hs_run(&h, SRV_TLS);
    assert_failed(&h);
    assert_true(h.verify_failed);
    assert_detail(&h.rcpt, "certificate-not-trusted", "");
    assert_int_equal(smtpc_tlsrpt_detail_count(&h.host), 0);
    hs_free(&h);
    free(rec.data);
}

static void test_dane_ta(void **state)
{
    const fixture *f = *state;
    tlsa_rec rec = tlsa_of(f->ca.x, 2, 0);
    static const struct {
        const char *name, *extra;
        bool ok;
    } cases[] = {
        {"mx.test", NULL, true},
        {"wrong.test", NULL, false},
        {"wrong.test", "mx.test.", true}, /* a further allowed name */
        {"wrong.test", "other.test", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        hs h;
        hs_init(&h, f);
        char *names[1] = {(char *)cases[i].extra};
        h.p.name = cases[i].name;
        h.p.dane = true;
        h.p.pkix_enforce = false;
        h.p.tlsa = &rec;
        h.p.ntlsa = 1;
        h.p.dane_names = names;
        h.p.ndane_names = cases[i].extra ? 1 : 0;
        hs_server(&h, &f->leaf, 0, false);
        hs_run(&h, SRV_TLS);
        if (cases[i].ok) {
            assert_ok(&h);
            char *want = tlsa_text(&rec);
            assert_string_equal(tls_conn_dane_record(h.c), want);
            free(want);
            assert_int_equal(smtpc_tlsrpt_detail_count(&h.host), 0);
        } else {
            assert_failed(&h);
            assert_true(h.verify_failed);
            assert_detail(&h.host, "validation-failure", "dane-no-match+errors");
        }
        hs_free(&h);
    }
    /* A 2 0 0 record carries the anchor the server does not send. */
    unsigned char *der = NULL;
    int dlen = i2d_X509(f->ca.x, &der);
    assert_true(dlen > 0);
    tlsa_rec full = {2, 0, 0, der, (size_t)dlen};
    for (int withrec = 0; withrec < 2; withrec++) {
        hs h;
        hs_init(&h, f);
        h.p.dane = true;
        h.p.pkix_enforce = false;
        h.p.tlsa = withrec ? &full : &rec;
        h.p.ntlsa = 1;
        h.no_chain = true;
        hs_server(&h, &f->leaf, 0, false);
        hs_run(&h, SRV_TLS);
        if (withrec) {
            assert_ok(&h);
        } else {
            /* 2 0 1 cannot match a CA that is not in the chain */
            assert_failed(&h);
            assert_detail(&h.host, "validation-failure", "dane-no-match");
        }
        hs_free(&h);
    }
    OPENSSL_free(der);

    /* DANE-TA does check expiry. */
    hs h;
    hs_init(&h, f);
    h.p.dane = true;
    h.p.pkix_enforce = false;
    h.p.tlsa = &rec;
    h.p.ntlsa = 1;
    hs_server(&h, &f->expired, 0, false);
    hs_run(&h, SRV_TLS);
    assert_failed(&h);
    assert_detail(&h.host, "validation-failure", "dane-no-match+errors");
    hs_free(&h);
    free(rec.data);
}

static void test_dane_pkix_records_ignored(void **state)
{
    const fixture *f = *state;
    /* PKIX-EE/PKIX-TA records that match are not usable: with nothing else,
     * DANE never verifies (5.8), even though PKIX passes. */
    tlsa_rec recs[3] = {tlsa_of(f->leaf.x, 1, 1), tlsa_of(f->ca.x, 0, 0),
                        tlsa_of(f->selfsigned.x, 3, 1)};
    for (size_t n = 0; n <= 3; n++) {
        hs h;
        hs_init(&h, f);
        h.p.dane = true;
        h.p.tlsa = n ? recs : NULL;
        h.p.ntlsa = n;
        hs_server(&h, &f->leaf, 0, false);
        hs_run(&h, SRV_TLS);
        assert_failed(&h);
        assert_detail(&h.host, "validation-failure",
                      n == 3 ? "dane-no-match" : "dane-no-match+errors");
        assert_int_equal(smtpc_tlsrpt_detail_count(&h.rcpt), 0);
        hs_free(&h);
    }
    /* ignore_errors: records and continues. */
    hs h;
    hs_init(&h, f);
    h.p.dane = true;
    h.p.ignore_errors = true;
    hs_server(&h, &f->leaf, 0, false);
    hs_run(&h, SRV_TLS);
    assert_ok(&h);
    assert_null(tls_conn_dane_record(h.c));
    assert_detail(&h.host, "validation-failure", "dane-no-match+errors");
    hs_free(&h);
    for (size_t i = 0; i < 3; i++)
        free(recs[i].data);
}

static void test_channel_binding(void **state)
{
    const fixture *f = *state;
    hs h;
    const char *type = NULL;
    unsigned char cb[64], want[64];
    size_t len = 0;
    hs_init(&h, f);
    hs_server(&h, &f->leaf, 0, false);
    hs_run(&h, SRV_TLS);
    assert_ok(&h);
    assert_int_equal(tls_conn_channel_binding(h.c, &type, cb, sizeof(cb), &len), 0);
    assert_string_equal(type, "tls-exporter");
    assert_int_equal(len, 32);
    assert_int_equal(SSL_export_keying_material(h.s, want, 32, "EXPORTER-Channel-Binding", 24,
                                                NULL, 0, 1),
                     1);
    assert_memory_equal(cb, want, 32);
    assert_int_equal(tls_conn_channel_binding(h.c, &type, cb, 16, &len), -1);
    hs_free(&h);

    hs_init(&h, f);
    hs_server(&h, &f->leaf, TLS1_2_VERSION, false);
    hs_run(&h, SRV_TLS);
    assert_ok(&h);
    assert_string_equal(tls_conn_version(h.c), "TLSv1.2");
    assert_int_equal(tls_conn_channel_binding(h.c, &type, cb, sizeof(cb), &len), 0);
    assert_string_equal(type, "tls-unique");
    size_t wlen = SSL_get_peer_finished(h.s, want, sizeof(want)); /* the client's Finished */
    assert_int_equal(len, wlen);
    assert_int_equal(len, 12);
    assert_memory_equal(cb, want, len);
    hs_free(&h);
}

static void test_remote_alert(void **state)
{
    /* A server that only speaks TLS <= 1.1 answers with protocol_version. */
    hs h;
    hs_init(&h, *state);
    hs_server(&h, &h.f->leaf, TLS1_1_VERSION, false);
    hs_run(&h, SRV_TLS);
    assert_failed(&h);
    assert_false(h.verify_failed);
    assert_int_equal(h.res, TLS_IO_ERR);
    assert_err_contains(&h, "tls alert received from server: protocol version");
    static const char want[] = "tls-remote-alert-70-protocol-version-not-supported";
    assert_detail(&h.rcpt, "validation-failure", want);
    assert_detail(&h.host, "validation-failure", want);
    hs_free(&h);
}

static void test_not_tls(void **state)
{
    hs h;
    hs_init(&h, *state);
    hs_run(&h, SRV_PLAIN);
    assert_failed(&h);
    assert_int_equal(h.res, TLS_IO_ERR);
    assert_detail(&h.rcpt, "validation-failure", "tls-record-header-error");
    assert_detail(&h.host, "validation-failure", "tls-record-header-error");
    hs_free(&h);
}

static void test_closed(void **state)
{
    hs h;
    hs_init(&h, *state);
    hs_run(&h, SRV_CLOSE);
    assert_failed(&h);
    assert_int_equal(h.res, TLS_IO_EOF);
    assert_err_contains(&h, "closed");
    assert_detail(&h.rcpt, "validation-failure", "connection-closed-during-handshake");
    assert_detail(&h.host, "validation-failure", "connection-closed-during-handshake");
    hs_free(&h);
}

static void test_client_cert(void **state)
{
    const fixture *f = *state;
    hs h;
    hs_init(&h, f);
    h.p.cert_file = f->client_cert_path;
    h.p.key_file = f->client_key_path;
    hs_server(&h, &f->leaf, 0, true);
    hs_run(&h, SRV_TLS);
    assert_ok(&h);
    X509 *peer = SSL_get1_peer_certificate(h.s);
    assert_non_null(peer);
    assert_int_equal(X509_cmp(peer, f->client.x), 0);
    X509_free(peer);
    hs_free(&h);
}

static void test_client_cert_rejected_first_read(void **state)
{
    /* TLS 1.3: our handshake completes before the server checks our (missing)
     * certificate; its alert arrives on the first read (spec 2.8). */
    hs h;
    hs_init(&h, *state);
    hs_server(&h, &h.f->leaf, 0, true);
    hs_run(&h, SRV_TLS);
    assert_client_ok(&h);
    assert_int_equal(h.server_state, -1); /* it failed after our success */
    char buf[64];
    size_t n;
    tls_io r = tls_conn_read(h.c, buf, sizeof(buf), &n, h.err, sizeof(h.err));
    assert_int_equal(r, TLS_IO_ERR);
    assert_err_contains(&h, "tls alert received from server");
    assert_int_equal(h.rcpt.success, 0);
    assert_int_equal(h.rcpt.failure, 1);
    assert_int_equal(h.host.success, 0);
    assert_int_equal(h.host.failure, 1);
    assert_detail(&h.rcpt, "validation-failure", "tls-remote-alert-116-certificate-required");
    assert_detail(&h.host, "validation-failure", "tls-remote-alert-116-certificate-required");
    /* Only the first read compensates. */
    tls_conn_read(h.c, buf, sizeof(buf), &n, h.err, sizeof(h.err));
    assert_int_equal(h.rcpt.failure, 1);
    hs_free(&h);
}

static void test_config_errors(void **state)
{
    const fixture *f = *state;
    static const struct {
        const char *ca, *cert, *key;
    } cases[] = {
        {"/nonexistent/ca.pem", NULL, NULL},
        {NULL, "/nonexistent/client.pem", NULL},
        {NULL, NULL, "key-only"},
        {NULL, "client", "bad"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tls_params p = {0};
        char err[256] = "";
        p.ca_file = cases[i].ca ? cases[i].ca : f->ca_path;
        p.cert_file = cases[i].cert;
        p.key_file = cases[i].key;
        if (p.cert_file && strcmp(p.cert_file, "client") == 0)
            p.cert_file = f->client_cert_path;
        if (p.key_file && strcmp(p.key_file, "bad") == 0)
            p.key_file = f->bad_key_path;
        if (p.key_file && strcmp(p.key_file, "key-only") == 0)
            p.key_file = f->client_key_path;
        tls_conn *c = tls_conn_new(&p, -1, err, sizeof(err));
        if (c)
            fail_msg("case %zu accepted", i);
        assert_true(err[0] != '\0');
    }
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* the test server writes with plain write() */
    const struct CMUnitTest unit[] = {
        cmocka_unit_test(test_counts_clamped),
        cmocka_unit_test(test_detail_merge),
        cmocka_unit_test(test_details_bounded),
        cmocka_unit_test(test_public_merge),
        cmocka_unit_test(test_tlsa_parse),
        cmocka_unit_test(test_alert_names),
        cmocka_unit_test(test_verify_error_map),
    };
    const struct CMUnitTest tls[] = {
        cmocka_unit_test(test_tlsa_usable),
        cmocka_unit_test(test_pkix_ok),
        cmocka_unit_test(test_pkix_intermediate),
        cmocka_unit_test(test_pkix_expired),
        cmocka_unit_test(test_pkix_wrong_name),
        cmocka_unit_test(test_pkix_untrusted),
        cmocka_unit_test(test_pkix_no_name),
        cmocka_unit_test(test_sni),
        cmocka_unit_test(test_pkix_not_enforced),
        cmocka_unit_test(test_ignore_errors),
        cmocka_unit_test(test_dane_ee),
        cmocka_unit_test(test_dane_ee_no_name_checks),
        cmocka_unit_test(test_dane_ok_pkix_enforced),
        cmocka_unit_test(test_dane_ta),
        cmocka_unit_test(test_dane_pkix_records_ignored),
        cmocka_unit_test(test_channel_binding),
        cmocka_unit_test(test_remote_alert),
        cmocka_unit_test(test_not_tls),
        cmocka_unit_test(test_closed),
        cmocka_unit_test(test_client_cert),
        cmocka_unit_test(test_client_cert_rejected_first_read),
        cmocka_unit_test(test_config_errors),
    };
    int failed = cmocka_run_group_tests_name("tlsrpt", unit, NULL, NULL);
    failed += cmocka_run_group_tests_name("tls", tls, fixture_setup, fixture_teardown);
    return failed;
}
