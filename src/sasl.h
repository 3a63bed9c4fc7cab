/* SASL client mechanisms for SMTP AUTH (RFC 4954), on GNU SASL plus our own
 * XOAUTH2 and OAUTHBEARER (RFC 7628). Pure computation, no I/O. */
#ifndef SMTPC_SASL_H
#define SMTPC_SASL_H

#include <stdbool.h>
#include <stddef.h>

typedef struct sasl_client sasl_client;

typedef struct sasl_creds {
    const char *user;      /* authentication identity */
    const char *password;  /* NULL when only a token is given */
    const char *token;     /* OAuth 2.0 bearer token, or NULL */
} sasl_creds;

/* Channel binding data of the TLS connection (RFC 5929 tls-unique for TLS
 * <= 1.2, RFC 9266 tls-exporter for TLS 1.3). type NULL: no TLS. */
typedef struct sasl_cb {
    const char *type;           /* "tls-unique" or "tls-exporter" or NULL */
    const unsigned char *data;
    size_t len;
} sasl_cb;

/* Chooses the mechanism: wanted is a name (returned as given if the server
 * offers it, matched case-insensitively, and we implement it) or NULL/"auto"
 * for the strongest shared one we have credentials and channel binding for:
 * SCRAM-SHA-256-PLUS, SCRAM-SHA-1-PLUS, SCRAM-SHA-256, SCRAM-SHA-1, CRAM-MD5,
 * PLAIN, LOGIN (password) or OAUTHBEARER, XOAUTH2 (token). Returns a static
 * string, or NULL when there is no match. */
const char *sasl_choose(const char *wanted, char *const *server_mechs, size_t n,
                        const sasl_creds *creds, const sasl_cb *cb);

/* True for mechanisms whose messages carry the secret in clear (PLAIN,
 * LOGIN, XOAUTH2, OAUTHBEARER): traces redact them. */
bool sasl_mech_cleartext(const char *mech);

/* Starts a client. server_plus: the server offered the -PLUS variant of
 * mech (for the SCRAM gs2 "y" flag, RFC 5802 6). Returns NULL with err
 * filled on failure, and errno ENOMEM when an allocation failed (EINVAL
 * otherwise): the caller reports that as out of memory, not as AUTH. */
sasl_client *sasl_client_new(const char *mech, const sasl_creds *creds, const sasl_cb *cb,
                             bool server_plus, char *err, size_t errlen);

/* One step (spec 7.2-7.4). First call: in == NULL (no server data yet); the
 * result is the initial response: *out NULL = none ("AUTH MECH"), *outlen 0 =
 * empty ("AUTH MECH ="). Later calls: in = decoded 334 challenge. *out is
 * malloc'ed (free with sasl_free_buf, which wipes it). *final: this is the
 * client's last message. Returns 0, or -1 with err filled (bad challenge,
 * server signature mismatch, SCRAM parameters below the minimums, ...) and
 * errno EINVAL, or ENOMEM when the step failed because an allocation did
 * (whatever err says then). */
int sasl_client_step(sasl_client *c, const unsigned char *in, size_t inlen,
                     unsigned char **out, size_t *outlen, bool *final, char *err,
                     size_t errlen);

void sasl_client_free(sasl_client *c);
void sasl_free_buf(unsigned char *buf, size_t len);

/* Standard base64 with padding. b64_encode returns a malloc'ed NUL-terminated
 * string (NULL on nomem). b64_decode is strict (RFC 4648 4, padding
 * required, no whitespace); returns 0 or -1 (errno EINVAL: malformed,
 * ENOMEM: out of memory); *out malloc'ed. "" decodes to an empty buffer. */
char *b64_encode(const unsigned char *in, size_t len);
int b64_decode(const char *in, size_t inlen, unsigned char **out, size_t *outlen);

#endif
