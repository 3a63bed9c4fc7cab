/* TLS client connections over OpenSSL 3 on a caller-owned non-blocking fd.
 *
 * Certificate verification (spec 5.3-5.8) runs in an application verify
 * callback inside the handshake: DANE with OpenSSL's SSL_dane_* on the
 * handshake's own X509_STORE_CTX, and PKIX always, in a separate store
 * context, so both outcomes are known and recorded for TLS reporting
 * (spec 6.2) whatever is enforced. Only enforced failures fail the handshake.
 *
 * Timeouts are the caller's: it polls the fd and, when a handshake stage
 * deadline passes, records failure +1 with "validation-failure",
 * "io-timeout-during-handshake" in both results itself (spec 23.6 item 9).
 *
 * Writes: SSL_MODE_ENABLE_PARTIAL_WRITE is on, so *n may be less than len;
 * after TLS_IO_WANT_* the caller retries with the same unsent bytes. */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define TLS_VERR_MAX 320

struct tls_conn {
    SSL_CTX *ctx;
    SSL *ssl;
    BIO_METHOD *biometh;
    int fd;
    char *name;                 /* without trailing dot; NULL = none */
    bool name_is_ip;
    bool pkix_enforce, ignore_errors, dane;
    size_t ndane;               /* records OpenSSL accepted */
    smtpc_tlsrpt *rpt_rcpt, *rpt_host;
    tlsrpt_peer peer;
    /* Transport state seen by our BIO. */
    bool io_eof;
    int io_errno;
    /* Last alerts through the info callback, -1 none. */
    int alert_recv, alert_sent;
    /* Verification outcome (callback). */
    bool verify_failed;         /* enforced failure: handshake fails, already reported */
    bool pkix_verified;
    char *dane_record;
    bool nomem;                 /* the DANE record or a TLSRPT detail could not be kept */
    char verr[TLS_VERR_MAX];
    /* Handshake state. */
    bool hs_done, hs_failed;
    bool first_read;            /* spec 2.8 compensation still possible */
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Text of the last OpenSSL error, or "unknown error". */
static const char *ssl_errtext(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *s = e ? ERR_reason_error_string(e) : NULL;
    return s ? s : "unknown error";
}

static bool is_ip_literal(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* Host name without one trailing dot (SNI must not carry it, RFC 6066 3);
 * an IPv6 literal without its brackets. */
static char *name_dup(const char *s)
{
    size_t n = strlen(s);
    if (n > 2 && s[0] == '[' && s[n - 1] == ']')
        return strndup(s + 1, n - 2);
    if (n > 1 && s[n - 1] == '.')
        n--;
    return strndup(s, n);
}

/* ------------------------------------------------------------------ */
/* A socket BIO of our own: send() with MSG_NOSIGNAL so a peer that went
 * away never raises SIGPIPE in the application, and the errno and EOF are
 * kept for classifying handshake failures (spec 23.6 item 10). */

static int bio_write(BIO *b, const char *buf, int len)
{
    tls_conn *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n = send(t->fd, buf, (size_t)len, MSG_NOSIGNAL);
    if (n >= 0)
        return (int)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        BIO_set_retry_write(b);
    else
        t->io_errno = errno;
    return -1;
}

static int bio_read(BIO *b, char *buf, int len)
{
    tls_conn *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n = recv(t->fd, buf, (size_t)len, 0);
    if (n > 0)
        return (int)n;
    if (n == 0) {
        t->io_eof = true;
        return 0;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        BIO_set_retry_read(b);
    else
        t->io_errno = errno;
    return -1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    tls_conn *t = BIO_get_data(b);
    (void)num;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_EOF:
        return t && t->io_eof;
    case BIO_C_GET_FD:
        if (ptr)
            *(int *)ptr = t ? t->fd : -1;
        return t ? t->fd : -1;
    default:
        return 0;
    }
}

static int bio_setup(tls_conn *t)
{
    t->biometh = BIO_meth_new((BIO_TYPE_START + 25) | BIO_TYPE_SOURCE_SINK |
                                  BIO_TYPE_DESCRIPTOR, "smtpc socket");
    if (!t->biometh || !BIO_meth_set_write(t->biometh, bio_write) ||
        !BIO_meth_set_read(t->biometh, bio_read) || !BIO_meth_set_ctrl(t->biometh, bio_ctrl))
        return -1;
    BIO *b = BIO_new(t->biometh);
    if (!b)
        return -1;
    BIO_set_data(b, t);
    BIO_set_init(b, 1);
    SSL_set_bio(t->ssl, b, b); /* one reference for both directions */
    return 0;
}

/* ------------------------------------------------------------------ */
/* Reporting helpers. */

/* Out of memory loses a detail (the counters are always updated) and marks
 * the connection: a handshake that succeeds is then not used (spec: the
 * results must be complete), one that fails keeps its own error. */
static void report(tls_conn *t, smtpc_tlsrpt *r, int64_t success, int64_t failure,
                   const char *type, const char *reason)
{
    if (tlsrpt_add(r, success, failure, &t->peer, type, reason) != 0)
        t->nomem = true;
}

static void report_both(tls_conn *t, int64_t success, int64_t failure, const char *type,
                        const char *reason)
{
    report(t, t->rpt_rcpt, success, failure, type, reason);
    report(t, t->rpt_host, success, failure, type, reason);
}

static void verr_append(tls_conn *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void verr_append(tls_conn *t, const char *fmt, ...)
{
    size_t used = strlen(t->verr);
    if (used + 3 >= sizeof(t->verr))
        return;
    if (used) {
        memcpy(t->verr + used, "; ", 3);
        used += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->verr + used, sizeof(t->verr) - used, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------ */
/* Verification (spec 5.3-5.8). */

/* "USAGE SELECTOR MTYPE hex" of the record OpenSSL matched (spec 23.5 form). */
static void dane_note_record(tls_conn *t)
{
    uint8_t u, s, m;
    const unsigned char *data = NULL;
    size_t dlen = 0;
    if (SSL_get0_dane_tlsa(t->ssl, &u, &s, &m, &data, &dlen) < 0 || !data)
        return;
    size_t cap = 16 + 2 * dlen;
    char *rec = malloc(cap);
    if (!rec) {
        t->nomem = true; /* verified, but the caller must not run without the record */
        return;
    }
    int off = snprintf(rec, cap, "%u %u %u ", u, s, m);
    for (size_t i = 0; i < dlen; i++)
        snprintf(rec + off + 2 * i, 3, "%02x", data[i]);
    free(t->dane_record);
    t->dane_record = rec;
}

/* DANE on the handshake's store context, which OpenSSL set up with the
 * SSL's DANE state and names. Returns true when verified. Spec 5.4, 5.8. */
static bool dane_check(tls_conn *t, X509_STORE_CTX *sctx, long *x509_err)
{
    const char *reason = "dane-no-match";
    const char *msg = "dane: no match between certificate and tlsa records";
    if (t->ndane == 0) {
        /* With no usable record OpenSSL would fall back to PKIX; DANE must fail. */
        reason = "dane-no-match+errors";
        *x509_err = X509_V_ERR_DANE_NO_MATCH;
        verr_append(t, "%s: verify requires at least one tlsa record", msg);
    } else if (X509_verify_cert(sctx) > 0) {
        dane_note_record(t);
        return true;
    } else {
        *x509_err = X509_STORE_CTX_get_error(sctx);
        if (*x509_err == X509_V_ERR_DANE_NO_MATCH) {
            verr_append(t, "%s", msg);
        } else {
            /* A record matched a chain element but the chain or name did not verify. */
            reason = "dane-no-match+errors";
            verr_append(t, "%s: %s", msg, X509_verify_cert_error_string(*x509_err));
        }
    }
    report(t, t->rpt_host, 0, 0, "validation-failure", reason);
    return false;
}

static int pkix_set_name(tls_conn *t, X509_STORE_CTX *p)
{
    X509_VERIFY_PARAM *vp = X509_STORE_CTX_get0_param(p);
    if (!t->name)
        return 1; /* no name, no name check (spec 5.5) */
    if (t->name_is_ip)
        return X509_VERIFY_PARAM_set1_ip_asc(vp, t->name);
    X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    return X509_VERIFY_PARAM_set1_host(vp, t->name, 0);
}

/* PKIX in its own store context: roots of our SSL_CTX, the peer's chain
 * as untrusted intermediates, the name as reference identity. Spec 5.5. */
static bool pkix_check(tls_conn *t, X509_STORE_CTX *sctx, long *x509_err)
{
    X509_STORE_CTX *p = X509_STORE_CTX_new();
    long e = X509_V_ERR_UNSPECIFIED;
    if (p && X509_STORE_CTX_init(p, SSL_CTX_get_cert_store(t->ctx), X509_STORE_CTX_get0_cert(sctx),
                                 X509_STORE_CTX_get0_untrusted(sctx)) &&
        X509_STORE_CTX_set_default(p, "ssl_server") && pkix_set_name(t, p))
        e = X509_verify_cert(p) > 0 ? X509_V_OK : X509_STORE_CTX_get_error(p);
    X509_STORE_CTX_free(p);
    *x509_err = e;
    t->pkix_verified = e == X509_V_OK;
    if (t->pkix_verified)
        return true;
    const char *type, *reason;
    tls_verify_error_to_tlsrpt(e, &type, &reason);
    report(t, t->rpt_rcpt, 0, 0, type, reason);
    return false;
}

static int verify_cb(X509_STORE_CTX *sctx, void *arg)
{
    tls_conn *t = arg;
    long dane_err = X509_V_OK, pkix_err = X509_V_OK;
    t->verr[0] = '\0';
    bool dane_fail = t->dane && !dane_check(t, sctx, &dane_err);
    bool pkix_fail = !pkix_check(t, sctx, &pkix_err) && t->pkix_enforce;
    if (t->ignore_errors || (!dane_fail && !pkix_fail)) {
        t->verr[0] = '\0';
        X509_STORE_CTX_set_error(sctx, X509_V_OK);
        return 1;
    }
    if (pkix_fail)
        verr_append(t, "%s", X509_verify_cert_error_string(pkix_err));
    /* Already reported: the handshake failure adds no second detail (5.6).
     * The error set here picks the alert OpenSSL sends. */
    t->verify_failed = true;
    X509_STORE_CTX_set_error(sctx, pkix_fail ? pkix_err : dane_err);
    return 0;
}

static void info_cb(const SSL *ssl, int where, int ret)
{
    tls_conn *t = SSL_get_app_data(ssl);
    if (!t || !(where & SSL_CB_ALERT))
        return;
    if (where & SSL_CB_READ)
        t->alert_recv = ret & 0xff;
    else
        t->alert_sent = ret & 0xff;
}

/* ------------------------------------------------------------------ */
/* Setup. */

static int ctx_roots(tls_conn *t, const tls_params *p, char *err, size_t errlen)
{
    if (p->ca_file || p->ca_dir) {
        if (SSL_CTX_load_verify_locations(t->ctx, p->ca_file, p->ca_dir) != 1) {
            set_err(err, errlen, "cannot load CA %s: %s", p->ca_file ? p->ca_file : p->ca_dir,
                    ssl_errtext());
            return -1;
        }
    } else if (SSL_CTX_set_default_verify_paths(t->ctx) != 1) {
        set_err(err, errlen, "cannot load the default trust store: %s", ssl_errtext());
        return -1;
    }
    return 0;
}

static int ctx_client_cert(tls_conn *t, const tls_params *p, char *err, size_t errlen)
{
    if (!p->cert_file && !p->key_file)
        return 0;
    if (!p->cert_file) {
        set_err(err, errlen, "client key given without a client certificate");
        return -1;
    }
    const char *key = p->key_file ? p->key_file : p->cert_file;
    if (SSL_CTX_use_certificate_chain_file(t->ctx, p->cert_file) != 1) {
        set_err(err, errlen, "cannot load client certificate %s: %s", p->cert_file,
                ssl_errtext());
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(t->ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(t->ctx) != 1) {
        set_err(err, errlen, "cannot load client key %s: %s", key, ssl_errtext());
        return -1;
    }
    return 0;
}

static int ctx_setup(tls_conn *t, const tls_params *p, char *err, size_t errlen)
{
    t->ctx = SSL_CTX_new(TLS_client_method());
    if (!t->ctx || SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION) != 1) {
        set_err(err, errlen, "cannot create TLS context: %s", ssl_errtext());
        return -1;
    }
    SSL_CTX_set_options(t->ctx, SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (ctx_roots(t, p, err, errlen) != 0 || ctx_client_cert(t, p, err, errlen) != 0)
        return -1;
    /* VERIFY_PEER so that a 0 from our callback fails the handshake (5.3). */
    SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_cert_verify_callback(t->ctx, verify_cb, t);
    SSL_CTX_set_info_callback(t->ctx, info_cb);
    if (t->dane && SSL_CTX_dane_enable(t->ctx) <= 0) {
        set_err(err, errlen, "cannot enable DANE: %s", ssl_errtext());
        return -1;
    }
    return 0;
}

/* DANE base name, extra names and usable records (spec 17.5, 28). */
static int ssl_dane_setup(tls_conn *t, const tls_params *p, char *err, size_t errlen)
{
    /* A NULL base name means no name check; an IP literal is checked as an IP. */
    const char *base = t->name && !t->name_is_ip ? t->name : NULL;
    if (SSL_dane_enable(t->ssl, base) <= 0 ||
        (t->name_is_ip &&
         X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), t->name) != 1)) {
        set_err(err, errlen, "cannot enable DANE: %s", ssl_errtext());
        return -1;
    }
    /* mox checks no name for DANE-EE (RFC 7672 3.1.1). */
    SSL_dane_set_flags(t->ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
    for (size_t i = 0; i < p->ndane_names; i++) {
        char *n = p->dane_names[i] ? name_dup(p->dane_names[i]) : NULL;
        if (p->dane_names[i] && !n) {
            set_err(err, errlen, "out of memory");
            errno = ENOMEM;
            return -1;
        }
        int ok = !n || !*n || SSL_add1_host(t->ssl, n) == 1;
        free(n);
        if (!ok) {
            set_err(err, errlen, "bad DANE name %s", p->dane_names[i]);
            return -1;
        }
    }
    for (size_t i = 0; i < p->ntlsa; i++) {
        const tlsa_rec *r = &p->tlsa[i];
        if (!tlsa_usable(r))
            continue;
        if (SSL_dane_tlsa_add(t->ssl, r->usage, r->selector, r->mtype, r->data, r->len) > 0)
            t->ndane++;
    }
    ERR_clear_error(); /* a record OpenSSL refused is just not used */
    return 0;
}

static int ssl_setup(tls_conn *t, const tls_params *p, char *err, size_t errlen)
{
    t->ssl = SSL_new(t->ctx);
    if (!t->ssl || bio_setup(t) != 0) {
        set_err(err, errlen, "cannot create TLS connection: %s", ssl_errtext());
        return -1;
    }
    SSL_set_app_data(t->ssl, t);
    /* SNI: a host name only, never an IP literal (RFC 6066 3). */
    if (t->name && !t->name_is_ip && SSL_set_tlsext_host_name(t->ssl, t->name) != 1) {
        set_err(err, errlen, "bad TLS server name %s", t->name);
        return -1;
    }
    if (t->dane && ssl_dane_setup(t, p, err, errlen) != 0)
        return -1;
    SSL_set_connect_state(t->ssl);
    return 0;
}

tls_conn *tls_conn_new(const tls_params *params, int fd, char *err, size_t errlen)
{
    set_err(err, errlen, "%s", "");
    errno = 0; /* ENOMEM on return: an allocation (ours or OpenSSL's) failed */
    tls_conn *t = calloc(1, sizeof(*t));
    if (!t) {
        set_err(err, errlen, "out of memory");
        errno = ENOMEM;
        return NULL;
    }
    t->fd = fd;
    t->alert_recv = t->alert_sent = -1;
    t->pkix_enforce = params->pkix_enforce;
    t->ignore_errors = params->ignore_errors;
    t->dane = params->dane;
    t->rpt_rcpt = params->rpt_rcpt;
    t->rpt_host = params->rpt_host;
    t->peer = params->peer;
    if (params->name && *params->name) {
        t->name = name_dup(params->name);
        if (!t->name) {
            set_err(err, errlen, "out of memory");
            free(t);
            errno = ENOMEM;
            return NULL;
        }
        t->name_is_ip = is_ip_literal(t->name);
    }
    ERR_clear_error();
    if (ctx_setup(t, params, err, errlen) != 0 || ssl_setup(t, params, err, errlen) != 0) {
        int e = errno == ENOMEM ? ENOMEM : EINVAL;
        ERR_clear_error();
        tls_conn_free(t);
        errno = e;
        return NULL;
    }
    return t;
}

void tls_conn_free(tls_conn *t)
{
    if (!t)
        return;
    SSL_free(t->ssl); /* frees our BIO; sends nothing: the fd may already be closed */
    SSL_CTX_free(t->ctx);
    BIO_meth_free(t->biometh);
    free(t->dane_record);
    free(t->name);
    free(t);
}

/* ------------------------------------------------------------------ */
/* Handshake and I/O. */

/* A first record that is not TLS, e.g. a plaintext "220 ..." (23.6 item 8). */
static bool is_record_header_error(unsigned long e)
{
    if (ERR_GET_LIB(e) != ERR_LIB_SSL)
        return false;
    int r = ERR_GET_REASON(e);
    return r == SSL_R_WRONG_VERSION_NUMBER || r == SSL_R_PACKET_LENGTH_TOO_LONG;
}

static bool is_closed(const tls_conn *t, int sslerr)
{
    unsigned long e = ERR_peek_last_error();
    return t->io_eof || sslerr == SSL_ERROR_ZERO_RETURN || t->io_errno == ECONNRESET ||
           t->io_errno == EPIPE || t->io_errno == ECONNABORTED ||
           (ERR_GET_LIB(e) == ERR_LIB_SSL &&
            ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING);
}

/* Classifies a failed handshake or read per spec 23.6 items 7-12 and fills
 * err. Returns the reason code in buf. *closed tells item 10. */
static const char *classify(tls_conn *t, int sslerr, char *buf, size_t buflen, char *err,
                            size_t errlen, bool *closed)
{
    char alert[80];
    unsigned long e = ERR_peek_last_error();
    *closed = false;
    if (t->alert_recv > 0) {
        tls_alert_name(t->alert_recv, alert, sizeof(alert));
        snprintf(buf, buflen, "tls-remote-%s", alert);
        set_err(err, errlen, "tls alert received from server: %s",
                SSL_alert_desc_string_long(t->alert_recv));
    } else if (is_record_header_error(e)) {
        snprintf(buf, buflen, "tls-record-header-error");
        set_err(err, errlen, "tls handshake failed: server does not speak TLS (%s)",
                ssl_errtext());
    } else if (is_closed(t, sslerr)) {
        *closed = true;
        snprintf(buf, buflen, "connection-closed-during-handshake");
        set_err(err, errlen, "connection closed during tls handshake%s%s",
                t->io_errno ? ": " : "", t->io_errno ? strerror(t->io_errno) : "");
    } else if (t->alert_sent > 0) {
        tls_alert_name(t->alert_sent, alert, sizeof(alert));
        snprintf(buf, buflen, "tls-local-%s", alert);
        set_err(err, errlen, "tls handshake failed: %s (alert sent: %s)", ssl_errtext(),
                SSL_alert_desc_string_long(t->alert_sent));
    } else {
        buf[0] = '\0';
        if (sslerr == SSL_ERROR_SYSCALL && t->io_errno)
            set_err(err, errlen, "tls handshake failed: %s", strerror(t->io_errno));
        else
            set_err(err, errlen, "tls handshake failed: %s", ssl_errtext());
    }
    return buf;
}

static tls_io handshake_failed(tls_conn *t, int sslerr, char *err, size_t errlen,
                               bool *verify_failed)
{
    t->hs_failed = true;
    if (t->verify_failed) {
        /* Details came from the verification step (5.6): counts only. */
        if (verify_failed)
            *verify_failed = true;
        set_err(err, errlen, "certificate verify failed: %s", t->verr);
        report_both(t, 0, 1, NULL, NULL);
        return TLS_IO_ERR;
    }
    char reason[96];
    bool closed;
    classify(t, sslerr, reason, sizeof(reason), err, errlen, &closed);
    report_both(t, 0, 1, "validation-failure", reason);
    return closed ? TLS_IO_EOF : TLS_IO_ERR;
}

tls_io tls_conn_handshake(tls_conn *t, char *err, size_t errlen, bool *verify_failed)
{
    if (verify_failed)
        *verify_failed = false;
    if (t->hs_done)
        return TLS_IO_OK;
    if (t->hs_failed) {
        set_err(err, errlen, "tls handshake already failed");
        return TLS_IO_ERR;
    }
    ERR_clear_error();
    int r = SSL_connect(t->ssl);
    if (r == 1) {
        t->hs_done = true;
        t->first_read = true;
        t->alert_recv = t->alert_sent = -1;
        report_both(t, 1, 0, NULL, NULL);
        return TLS_IO_OK;
    }
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ)
        return TLS_IO_WANT_READ;
    if (e == SSL_ERROR_WANT_WRITE)
        return TLS_IO_WANT_WRITE;
    tls_io res = handshake_failed(t, e, err, errlen, verify_failed);
    ERR_clear_error();
    return res;
}

/* Spec 2.8: a peer alert on the first read after the handshake (TLS 1.3
 * client certificate rejection) turns the counted success into a failure. */
static void first_read_alert(tls_conn *t)
{
    char alert[80], reason[96];
    if (!t->first_read || t->alert_recv <= 0)
        return;
    tls_alert_name(t->alert_recv, alert, sizeof(alert));
    snprintf(reason, sizeof(reason), "tls-remote-%s", alert);
    report_both(t, -1, 1, "validation-failure", reason);
}

static tls_io io_failed(tls_conn *t, int e, const char *what, char *err, size_t errlen)
{
    if (e == SSL_ERROR_ZERO_RETURN)
        return TLS_IO_EOF; /* close_notify */
    if (t->alert_recv > 0) {
        set_err(err, errlen, "tls alert received from server: %s",
                SSL_alert_desc_string_long(t->alert_recv));
        return TLS_IO_ERR;
    }
    if (t->io_eof) {
        set_err(err, errlen, "connection closed");
        return TLS_IO_EOF;
    }
    if (t->io_errno)
        set_err(err, errlen, "tls %s: %s", what, strerror(t->io_errno));
    else
        set_err(err, errlen, "tls %s: %s", what, ssl_errtext());
    return TLS_IO_ERR;
}

tls_io tls_conn_read(tls_conn *t, char *buf, size_t len, size_t *n, char *err, size_t errlen)
{
    *n = 0;
    ERR_clear_error();
    if (SSL_read_ex(t->ssl, buf, len, n) == 1) {
        t->first_read = false;
        return TLS_IO_OK;
    }
    int e = SSL_get_error(t->ssl, 0);
    if (e == SSL_ERROR_WANT_READ)
        return TLS_IO_WANT_READ;
    if (e == SSL_ERROR_WANT_WRITE)
        return TLS_IO_WANT_WRITE;
    first_read_alert(t);
    t->first_read = false;
    tls_io res = io_failed(t, e, "read", err, errlen);
    ERR_clear_error();
    return res;
}

tls_io tls_conn_write(tls_conn *t, const char *buf, size_t len, size_t *n, char *err,
                      size_t errlen)
{
    *n = 0;
    if (len == 0)
        return TLS_IO_OK;
    ERR_clear_error();
    if (SSL_write_ex(t->ssl, buf, len, n) == 1)
        return TLS_IO_OK;
    int e = SSL_get_error(t->ssl, 0);
    if (e == SSL_ERROR_WANT_READ)
        return TLS_IO_WANT_READ;
    if (e == SSL_ERROR_WANT_WRITE)
        return TLS_IO_WANT_WRITE;
    tls_io res = io_failed(t, e, "write", err, errlen);
    ERR_clear_error();
    return res;
}

size_t tls_conn_pending(const tls_conn *t)
{
    int n = SSL_pending(t->ssl);
    return n > 0 ? (size_t)n : 0;
}

const char *tls_conn_version(const tls_conn *t)
{
    return t->hs_done ? SSL_get_version(t->ssl) : NULL;
}

const char *tls_conn_cipher(const tls_conn *t)
{
    return t->hs_done ? SSL_get_cipher_name(t->ssl) : NULL;
}

static void cert_line(X509 *x, char *buf, size_t len)
{
    char subj[256] = "", iss[256] = "", until[64] = "";
    X509_NAME_oneline(X509_get_subject_name(x), subj, sizeof subj);
    X509_NAME_oneline(X509_get_issuer_name(x), iss, sizeof iss);
    BIO *b = BIO_new(BIO_s_mem());
    if (b && ASN1_TIME_print(b, X509_get0_notAfter(x)) == 1) {
        int n = BIO_read(b, until, (int)sizeof until - 1);
        until[n > 0 ? n : 0] = '\0';
    }
    BIO_free(b);
    snprintf(buf, len, "%s | %s | %s", subj, iss, until);
}

size_t tls_conn_chain(const tls_conn *t, char out[][TLS_CHAIN_LINE], size_t max)
{
    STACK_OF(X509) *chain = t->ssl ? SSL_get_peer_cert_chain(t->ssl) : NULL;
    size_t n = 0;
    for (int i = 0; chain && i < sk_X509_num(chain) && n < max; i++)
        cert_line(sk_X509_value(chain, i), out[n++], TLS_CHAIN_LINE);
    return n;
}

bool tls_conn_pkix_verified(const tls_conn *t)
{
    return t->hs_done && t->pkix_verified;
}

const char *tls_conn_dane_record(const tls_conn *t)
{
    return t->hs_done ? t->dane_record : NULL;
}

bool tls_conn_nomem(const tls_conn *t) { return t->nomem; }

int tls_conn_channel_binding(const tls_conn *t, const char **type, unsigned char *buf,
                             size_t cap, size_t *len)
{
    static const char label[] = "EXPORTER-Channel-Binding";
    *len = 0;
    if (!t->hs_done)
        return -1;
    if (SSL_version(t->ssl) >= TLS1_3_VERSION) {
        /* RFC 9266 2: 32 bytes, empty context (TLS 1.3 hashes an empty one). */
        if (cap < 32 || SSL_export_keying_material(t->ssl, buf, 32, label, sizeof(label) - 1,
                                                   NULL, 0, 1) != 1)
            return -1;
        *type = "tls-exporter";
        *len = 32;
        return 0;
    }
    /* RFC 5929 3.1: the first Finished message of the latest handshake: ours
     * on a full handshake, the server's on a resumed one. */
    size_t n = SSL_session_reused(t->ssl) ? SSL_get_peer_finished(t->ssl, buf, cap)
                                          : SSL_get_finished(t->ssl, buf, cap);
    if (n == 0 || n > cap)
        return -1;
    *type = "tls-unique";
    *len = n;
    return 0;
}

/* ------------------------------------------------------------------ */
/* TLSA records (spec 17.5, RFC 7672 3.1.3). */

static bool der_parses(uint8_t selector, const unsigned char *data, size_t len)
{
    const unsigned char *p = data;
    if (len > 65535)
        return false;
    if (selector == 0) {
        X509 *x = d2i_X509(NULL, &p, (long)len);
        X509_free(x);
        return x && p == data + len;
    }
    EVP_PKEY *k = d2i_PUBKEY(NULL, &p, (long)len);
    EVP_PKEY_free(k);
    return k && p == data + len;
}

bool tlsa_usable(const tlsa_rec *r)
{
    if (!r || (r->usage != 2 && r->usage != 3) || r->selector > 1 || !r->data)
        return false;
    bool ok;
    switch (r->mtype) {
    case 0:
        ok = der_parses(r->selector, r->data, r->len);
        break;
    case 1:
        ok = r->len == 32;
        break;
    case 2:
        ok = r->len == 64;
        break;
    default:
        ok = false;
    }
    ERR_clear_error();
    return ok;
}

static int parse_u8(const char **s, uint8_t *out)
{
    const char *p = *s;
    unsigned v = 0;
    size_t n = 0;
    while (*p == ' ' || *p == '\t')
        p++;
    for (; *p >= '0' && *p <= '9'; p++, n++) {
        v = v * 10 + (unsigned)(*p - '0');
        if (v > 255)
            return -1;
    }
    if (n == 0 || (*p != ' ' && *p != '\t'))
        return -1;
    *out = (uint8_t)v;
    *s = p;
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Hex data; whitespace between digits is allowed as in zone files (RFC 6698 2.2). */
static int parse_hex(const char *s, tlsa_rec *out)
{
    size_t cap = strlen(s) / 2 + 1, len = 0;
    int hi = -1;
    unsigned char *d = malloc(cap);
    if (!d)
        return -1;
    for (; *s; s++) {
        if (*s == ' ' || *s == '\t')
            continue;
        int v = hexval(*s);
        if (v < 0)
            break;
        if (hi < 0) {
            hi = v;
        } else {
            d[len++] = (unsigned char)(hi << 4 | v);
            hi = -1;
        }
    }
    if (*s || hi >= 0 || len == 0 || len > 65535) {
        free(d);
        return -1;
    }
    out->data = d;
    out->len = len;
    return 0;
}

int tlsa_parse_text(const char *text, tlsa_rec *out)
{
    tlsa_rec r = {0};
    const char *p = text;
    if (!text || !out || parse_u8(&p, &r.usage) != 0 || parse_u8(&p, &r.selector) != 0 ||
        parse_u8(&p, &r.mtype) != 0 || parse_hex(p, &r) != 0)
        return -1;
    *out = r;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Reason codes (spec 23.6, 23.7). */

/* Go's alert descriptions with spaces as dashes, so reason codes match mox. */
static const struct {
    int n;
    const char *text;
} alert_texts[] = {
    {0, "close-notify"},
    {10, "unexpected-message"},
    {20, "bad-record-MAC"},
    {21, "decryption-failed"},
    {22, "record-overflow"},
    {30, "decompression-failure"},
    {40, "handshake-failure"},
    {42, "bad-certificate"},
    {43, "unsupported-certificate"},
    {44, "revoked-certificate"},
    {45, "expired-certificate"},
    {46, "unknown-certificate"},
    {47, "illegal-parameter"},
    {48, "unknown-certificate-authority"},
    {49, "access-denied"},
    {50, "error-decoding-message"},
    {51, "error-decrypting-message"},
    {60, "export-restriction"},
    {70, "protocol-version-not-supported"},
    {71, "insufficient-security-level"},
    {80, "internal-error"},
    {86, "inappropriate-fallback"},
    {90, "user-canceled"},
    {100, "no-renegotiation"},
    {109, "missing-extension"},
    {110, "unsupported-extension"},
    {111, "certificate-unobtainable"},
    {112, "unrecognized-name"},
    {113, "bad-certificate-status-response"},
    {114, "bad-certificate-hash-value"},
    {115, "unknown-PSK-identity"},
    {116, "certificate-required"},
    {120, "no-application-protocol"},
    {121, "encrypted-client-hello-required"},
};

void tls_alert_name(int alert, char *buf, size_t len)
{
    if (!buf || len == 0)
        return;
    for (size_t i = 0; i < sizeof(alert_texts) / sizeof(alert_texts[0]); i++) {
        if (alert_texts[i].n == alert) {
            snprintf(buf, len, "alert-%d-%s", alert, alert_texts[i].text);
            return;
        }
    }
    snprintf(buf, len, "alert-%d", alert);
}

/* Spec 28: X509_V_ERR_* to the reason of Go's x509 error kinds. */
static const struct {
    long err;
    const char *type, *reason;
} verify_map[] = {
    {X509_V_ERR_CERT_HAS_EXPIRED, "certificate-expired", ""},
    {X509_V_ERR_CERT_NOT_YET_VALID, "certificate-expired", ""},
    {X509_V_ERR_HOSTNAME_MISMATCH, "certificate-host-mismatch", ""},
    {X509_V_ERR_IP_ADDRESS_MISMATCH, "certificate-host-mismatch", ""},
    {X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, "certificate-not-trusted", ""},
    {X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, "certificate-not-trusted", ""},
    {X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, "certificate-not-trusted", ""},
    {X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, "certificate-not-trusted", ""},
    {X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE, "certificate-not-trusted", ""},
    {X509_V_ERR_CERT_UNTRUSTED, "certificate-not-trusted", ""},
    {X509_V_ERR_INVALID_CA, "certificate-not-trusted", "not-authorized-to-sign"},
    {X509_V_ERR_KEYUSAGE_NO_CERTSIGN, "certificate-not-trusted", "not-authorized-to-sign"},
    {X509_V_ERR_PATH_LENGTH_EXCEEDED, "certificate-not-trusted", "too-many-intermediates"},
    {X509_V_ERR_INVALID_PURPOSE, "certificate-not-trusted", "incompatible-key-usage"},
    {X509_V_ERR_PERMITTED_VIOLATION, "certificate-not-trusted", "ca-not-authorized-for-this-name"},
    {X509_V_ERR_EXCLUDED_VIOLATION, "certificate-not-trusted", "ca-not-authorized-for-this-name"},
    {X509_V_ERR_SUBJECT_ISSUER_MISMATCH, "certificate-not-trusted",
     "parent-subject-child-issuer-mismatch"},
};

void tls_verify_error_to_tlsrpt(long x509_err, const char **type, const char **reason)
{
    for (size_t i = 0; i < sizeof(verify_map) / sizeof(verify_map[0]); i++) {
        if (verify_map[i].err == x509_err) {
            *type = verify_map[i].type;
            *reason = verify_map[i].reason;
            return;
        }
    }
    /* Any other OpenSSL verification error: a stable reason of our own (spec 28). */
    *type = "certificate-not-trusted";
    *reason = "openssl-x509-verify-error";
}
