/* TLS connections over OpenSSL: PKIX and DANE (SSL_dane_*) verification,
 * evaluated separately and recorded for TLS reporting (spec 5-6, 23.6). */
#ifndef SMTPC_TLS_H
#define SMTPC_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tlsrpt.h"

typedef struct tlsa_rec {
    uint8_t usage, selector, mtype;
    unsigned char *data;
    size_t len;
} tlsa_rec;

typedef struct tls_params {
    const char *ca_file, *ca_dir;        /* NULL both: system default store */
    const char *cert_file, *key_file;    /* client certificate, optional */
    const char *name;                    /* SNI, PKIX name, DANE base name; NULL = none */
    bool pkix_enforce;                   /* PKIX failure fails the handshake */
    bool ignore_errors;                  /* verify and record, never fail (RFC 8689 TLS-Required: No) */
    bool dane;                           /* DANE in use (even with no records: never verifies) */
    const tlsa_rec *tlsa;                /* usable records only are added to OpenSSL */
    size_t ntlsa;
    char *const *dane_names;             /* further names allowed for DANE-TA */
    size_t ndane_names;
    /* TLSRPT sinks: PKIX outcome -> rcpt, DANE outcome -> host (spec 6.2). */
    smtpc_tlsrpt *rpt_rcpt, *rpt_host;
    tlsrpt_peer peer;                    /* borrowed for the life of the tls_conn */
} tls_params;

typedef struct tls_conn tls_conn;

typedef enum { TLS_IO_OK = 0, TLS_IO_WANT_READ, TLS_IO_WANT_WRITE, TLS_IO_EOF, TLS_IO_ERR } tls_io;

/* Creates the SSL_CTX and SSL on fd (non-blocking). Config errors (unreadable
 * CA file, bad key) return NULL with err filled and errno EINVAL; errno is
 * ENOMEM when an allocation failed instead. params is copied except peer strings. */
tls_conn *tls_conn_new(const tls_params *params, int fd, char *err, size_t errlen);
void tls_conn_free(tls_conn *t);  /* never blocks: no close_notify wait */

/* Drives the handshake. On TLS_IO_OK the handshake is done and success +1 is
 * recorded in both results; on TLS_IO_ERR / TLS_IO_EOF failure +1 is recorded
 * in both, with a detail from spec 23.6 unless the verification step already
 * reported one (5.6). err describes the failure; *verify_failed tells whether
 * it was certificate verification (PKIX or DANE). */
tls_io tls_conn_handshake(tls_conn *t, char *err, size_t errlen, bool *verify_failed);

/* Application data. TLS_IO_EOF: clean close_notify or TCP EOF. On TLS_IO_ERR
 * err describes it. The first read after the handshake that fails with a
 * peer alert (not close_notify) compensates the success: success -1, failure
 * +1 plus detail (spec 2.8). */
tls_io tls_conn_read(tls_conn *t, char *buf, size_t len, size_t *n, char *err, size_t errlen);
tls_io tls_conn_write(tls_conn *t, const char *buf, size_t len, size_t *n, char *err,
                      size_t errlen);
/* Bytes OpenSSL already decrypted and buffered. */
size_t tls_conn_pending(const tls_conn *t);

/* After the handshake. */
const char *tls_conn_version(const tls_conn *t);       /* "TLSv1.3" */
const char *tls_conn_cipher(const tls_conn *t);
bool tls_conn_pkix_verified(const tls_conn *t);
/* "USAGE SELECTOR MTYPE hex" of the matched TLSA record, NULL when none. */
const char *tls_conn_dane_record(const tls_conn *t);
/* An allocation failed during the handshake: the matched DANE record or a
 * TLSRPT detail was lost. The connection must not be used (a DANE-verified
 * peer would look unverified, the TLS report would be incomplete). */
bool tls_conn_nomem(const tls_conn *t);
/* The certificates the server sent, leaf first: "subject | issuer | notAfter". */
#define TLS_CHAIN_LINE 600
size_t tls_conn_chain(const tls_conn *t, char out[][TLS_CHAIN_LINE], size_t max);
/* tls-exporter (TLS 1.3, 32 bytes, RFC 9266) or tls-unique (TLS <= 1.2).
 * *type set to the binding name. Returns 0 or -1. */
int tls_conn_channel_binding(const tls_conn *t, const char **type, unsigned char *buf,
                             size_t cap, size_t *len);

/* Usable for SMTP DANE (spec 17.5, RFC 7672 3.1.3). */
bool tlsa_usable(const tlsa_rec *r);
/* Parses "USAGE SELECTOR MTYPE HEX". data malloc'ed. Returns 0 or -1. */
int tlsa_parse_text(const char *text, tlsa_rec *out);
/* Alert text per spec 23.7: "alert-70-protocol-version-not-supported". */
void tls_alert_name(int alert, char *buf, size_t len);
/* Maps an X509_V_ERR_* to (result type, reason) per spec 23.6 / 28. */
void tls_verify_error_to_tlsrpt(long x509_err, const char **type, const char **reason);

#endif
