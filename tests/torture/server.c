/* In-process scripted SMTP server for the torture test (see server.h).
 * Blocking sockets with receive/send timeouts, so a client that stops
 * talking can never hang the server; one connection at a time. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define SCRAM_ITER 4096
#define LINE_MAX_LEN 4096
#define RECORDS 8
#define IO_TIMEOUT_S 10

struct server {
    int lfd[SRV__COUNT];
    int port[SRV__COUNT];
    int stop_pipe[2];
    pthread_t thread;
    SSL_CTX *tls;
    char tlsa[80];              /* "3 1 1 " and the SHA-256 of the key, in hex */
    char ca_path[64];
    char empty_dir[64];         /* a CA directory that trusts nothing */
    unsigned char salt[16];
    unsigned char salted[32];   /* SCRAM SaltedPassword, computed once */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    srv_record rec[RECORDS];    /* ring of finished connections */
    unsigned long nrec;
    srv_record cur;             /* the connection being served (server thread only) */
};

/* ---- certificates ---- */

static int add_ext(X509 *issuer, X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    int ok = ext && X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* A certificate for key, signed by (issuer, ikey), or self-signed when issuer is NULL. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *ikey, long serial)
{
    X509 *x = X509_new();
    if (!x)
        return NULL;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 7 * 86400);
    X509_set_pubkey(x, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509 *is = issuer ? issuer : x;
    X509_set_issuer_name(x, X509_get_subject_name(is));
    int rc = issuer ? add_ext(is, x, NID_basic_constraints, "critical,CA:FALSE") |
                          add_ext(is, x, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1") |
                          add_ext(is, x, NID_ext_key_usage, "serverAuth")
                    : add_ext(is, x, NID_basic_constraints, "critical,CA:TRUE") |
                          add_ext(is, x, NID_key_usage, "critical,keyCertSign,cRLSign") |
                          add_ext(is, x, NID_subject_key_identifier, "hash");
    if (rc != 0 || !X509_sign(x, issuer ? ikey : key, EVP_sha256())) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static void temp_name(char *buf, size_t len, const char *what)
{
    const char *dir = getenv("TMPDIR");
    int n = snprintf(buf, len, "%s/torture-%s-XXXXXX", dir && *dir ? dir : "/tmp", what);
    if (n < 0 || (size_t)n >= len)
        snprintf(buf, len, "/tmp/torture-%s-XXXXXX", what);
}

static int write_ca(server *s, X509 *ca)
{
    temp_name(s->empty_dir, sizeof s->empty_dir, "empty");
    if (!mkdtemp(s->empty_dir)) {
        s->empty_dir[0] = '\0';
        return -1;
    }
    temp_name(s->ca_path, sizeof s->ca_path, "ca");
    int fd = mkstemp(s->ca_path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        s->ca_path[0] = '\0';
        return -1;
    }
    int ok = PEM_write_X509(f, ca);
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* DANE-EE SPKI SHA-256 (RFC 6698 2.1: usage 3, selector 1, matching type 1). */
static int make_tlsa(server *s, EVP_PKEY *key)
{
    unsigned char *der = NULL, md[32];
    unsigned int mdlen = 0;
    int len = i2d_PUBKEY(key, &der);
    int ok = len > 0 && EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL) == 1;
    OPENSSL_free(der);
    if (!ok || mdlen != 32)
        return -1;
    int off = snprintf(s->tlsa, sizeof s->tlsa, "3 1 1 ");
    for (unsigned i = 0; i < mdlen; i++)
        off += snprintf(s->tlsa + off, sizeof s->tlsa - (size_t)off, "%02x", md[i]);
    return 0;
}

static int make_tls(server *s)
{
    EVP_PKEY *cakey = EVP_EC_gen("P-256"), *key = EVP_EC_gen("P-256");
    X509 *ca = cakey ? make_cert(cakey, "smtpc torture CA", NULL, NULL, 1) : NULL;
    X509 *leaf = ca && key ? make_cert(key, "localhost", ca, cakey, 2) : NULL;
    int rc = -1;
    s->tls = SSL_CTX_new(TLS_server_method());
    if (leaf && s->tls && write_ca(s, ca) == 0 && SSL_CTX_use_certificate(s->tls, leaf) == 1 &&
        SSL_CTX_use_PrivateKey(s->tls, key) == 1 && make_tlsa(s, key) == 0) {
        SSL_CTX_set_num_tickets(s->tls, 0);
        rc = 0;
    }
    X509_free(leaf);
    X509_free(ca);
    EVP_PKEY_free(key);
    EVP_PKEY_free(cakey);
    return rc;
}

/* ---- connection I/O ---- */

typedef struct conn {
    int fd;
    SSL *ssl;
    char buf[LINE_MAX_LEN];
    size_t len;
    bool dead;
} conn;

static int conn_fill(conn *c)
{
    if (c->dead || c->len == sizeof c->buf)
        return -1;
    int n;
    if (c->ssl)
        n = SSL_read(c->ssl, c->buf + c->len, (int)(sizeof c->buf - c->len));
    else
        n = (int)recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    if (n <= 0) {
        c->dead = true;
        return -1;
    }
    c->len += (size_t)n;
    return 0;
}

/* Next line without its CRLF into out; -1 at EOF, on error or on a bare LF. */
static int conn_line(conn *c, char *out, size_t cap)
{
    for (;;) {
        char *lf = memchr(c->buf, '\n', c->len);
        if (lf) {
            size_t n = (size_t)(lf - c->buf);
            if (n == 0 || c->buf[n - 1] != '\r' || n > cap) {
                c->dead = true;
                return -1;
            }
            memcpy(out, c->buf, n - 1);
            out[n - 1] = '\0';
            c->len -= n + 1;
            memmove(c->buf, lf + 1, c->len);
            return (int)(n - 1);
        }
        if (conn_fill(c) != 0)
            return -1;
    }
}

static void conn_send(conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conn_send(conn *c, const char *fmt, ...)
{
    char line[LINE_MAX_LEN];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 2, fmt, ap);
    va_end(ap);
    if (n < 0 || c->dead)
        return;
    if ((size_t)n > sizeof line - 3)
        n = (int)sizeof line - 3;
    memcpy(line + n, "\r\n", 2);
    size_t len = (size_t)n + 2, off = 0;
    while (off < len) {
        int w = c->ssl ? SSL_write(c->ssl, line + off, (int)(len - off))
                       : (int)send(c->fd, line + off, len - off, MSG_NOSIGNAL);
        if (w <= 0) {
            c->dead = true;
            return;
        }
        off += (size_t)w;
    }
}

static void anomaly(server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void anomaly(server *s, const char *fmt, ...)
{
    if (s->cur.anomaly[0])
        return; /* the first one tells */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->cur.anomaly, sizeof s->cur.anomaly, fmt, ap);
    va_end(ap);
}

/* ---- base64 (OpenSSL's block coder; padding handled here) ---- */

static int b64dec(const char *in, unsigned char *out, size_t cap)
{
    size_t n = strlen(in);
    if (n % 4 != 0 || n / 4 * 3 > cap)
        return -1;
    int len = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    if (len < 0)
        return -1;
    if (n > 0 && in[n - 1] == '=')
        len--;
    if (n > 1 && in[n - 2] == '=')
        len--;
    return len;
}

static void b64enc(const unsigned char *in, size_t len, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

/* ---- AUTH ---- */

static void hmac256(const void *key, size_t klen, const void *d, size_t dlen, unsigned char *out)
{
    unsigned int olen = 0;
    HMAC(EVP_sha256(), key, (int)klen, d, dlen, out, &olen);
}

/* Reads the next client response of an exchange; "*" cancels (RFC 4954 4). */
static int auth_response(conn *c, char *out, size_t cap)
{
    if (conn_line(c, out, cap) < 0)
        return -1;
    if (strcmp(out, "*") == 0) {
        conn_send(c, "501 5.7.0 authentication cancelled");
        return -1;
    }
    return 0;
}

/* RFC 5802 / RFC 7677 server side: verifies the client proof. */
static bool scram_verify(server *s, const char *auth_msg, const unsigned char *proof,
                         unsigned char *server_sig)
{
    unsigned char ckey[32], stored[32], csig[32], skey[32], got[32];
    unsigned int len = 0;
    hmac256(s->salted, 32, "Client Key", 10, ckey);
    EVP_Digest(ckey, 32, stored, &len, EVP_sha256(), NULL);
    hmac256(stored, 32, auth_msg, strlen(auth_msg), csig);
    for (int i = 0; i < 32; i++)
        ckey[i] = proof[i] ^ csig[i];
    EVP_Digest(ckey, 32, got, &len, EVP_sha256(), NULL);
    hmac256(s->salted, 32, "Server Key", 10, skey);
    hmac256(skey, 32, auth_msg, strlen(auth_msg), server_sig);
    return memcmp(got, stored, 32) == 0;
}

/* client-first "gs2-header n=user,r=nonce": splits header and bare part. */
static bool scram_client_first(const char *msg, char *gs2, char *bare, char *cnonce)
{
    const char *c1 = strchr(msg, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
    if (!c2 || (size_t)(c2 + 1 - msg) >= 64)
        return false;
    snprintf(gs2, 64, "%.*s", (int)(c2 + 1 - msg), msg);
    snprintf(bare, 512, "%s", c2 + 1);
    const char *r = strstr(bare, ",r=");
    if (strncmp(bare, "n=" SRV_USER ",", strlen("n=" SRV_USER ",")) != 0 || !r)
        return false;
    snprintf(cnonce, 200, "%s", r + 3);
    return true;
}

/* The c= attribute the client must send: base64(gs2 header [tls-exporter
 * data]), RFC 5802 7 and RFC 9266 for "p=tls-exporter". */
static bool scram_cbind(conn *c, const char *mech, const char *gs2, char *out)
{
    unsigned char buf[128];
    size_t glen = strlen(gs2), len = glen;
    bool plus = strstr(mech, "-PLUS") != NULL;
    if (plus != (strncmp(gs2, "p=", 2) == 0) || glen > 64)
        return false;
    memcpy(buf, gs2, glen);
    if (plus) {
        static const char label[] = "EXPORTER-Channel-Binding";
        if (strcmp(gs2, "p=tls-exporter,,") != 0 || !c->ssl ||
            SSL_export_keying_material(c->ssl, buf + glen, 32, label, sizeof label - 1, NULL, 0,
                                       1) != 1)
            return false;
        len += 32;
    }
    b64enc(buf, len, out);
    return true;
}

static bool scram(server *s, conn *c, const char *mech, const char *initial)
{
    char line[LINE_MAX_LEN], msg[2048], gs2[64], bare[512], cnonce[200], sfirst[512];
    char b64[2048], without[1024], auth[4096];
    unsigned char raw[2048], sig[32], nonce_raw[12];
    int n = b64dec(initial, raw, sizeof raw - 1);
    if (n < 0)
        return anomaly(s, "SCRAM: bad client-first base64"), false;
    raw[n] = '\0';
    if (!scram_client_first((char *)raw, gs2, bare, cnonce))
        return anomaly(s, "SCRAM: bad client-first %s", (char *)raw), false;
    char snonce[32], salt64[32];
    RAND_bytes(nonce_raw, sizeof nonce_raw);
    b64enc(nonce_raw, sizeof nonce_raw, snonce);
    b64enc(s->salt, sizeof s->salt, salt64);
    snprintf(sfirst, sizeof sfirst, "r=%s%s,s=%s,i=%d", cnonce, snonce, salt64, SCRAM_ITER);
    b64enc((const unsigned char *)sfirst, strlen(sfirst), b64);
    conn_send(c, "334 %s", b64);
    if (auth_response(c, line, sizeof line) != 0)
        return false;
    n = b64dec(line, raw, sizeof raw - 1);
    if (n < 0)
        return anomaly(s, "SCRAM: bad client-final base64"), false;
    raw[n] = '\0';
    snprintf(msg, sizeof msg, "%s", (char *)raw);
    char *p = strstr(msg, ",p=");
    unsigned char proof[64];
    if (!p || b64dec(p + 3, proof, sizeof proof) != 32)
        return anomaly(s, "SCRAM: bad client-final %s", msg), false;
    snprintf(without, sizeof without, "%.*s", (int)(p - msg), msg);
    if (!scram_cbind(c, mech, gs2, b64) || strncmp(without, "c=", 2) != 0 ||
        strncmp(without + 2, b64, strlen(b64)) != 0 || without[2 + strlen(b64)] != ',')
        return anomaly(s, "SCRAM: channel binding: %s with %s", mech, without), false;
    snprintf(auth, sizeof auth, "%s,%s,%s", bare, sfirst, without);
    if (!scram_verify(s, auth, proof, sig))
        return anomaly(s, "SCRAM: client proof does not verify"), false;
    char v[80];
    b64enc(sig, 32, b64);
    snprintf(v, sizeof v, "v=%s", b64);
    b64enc((const unsigned char *)v, strlen(v), b64);
    conn_send(c, "334 %s", b64);
    if (auth_response(c, line, sizeof line) != 0)
        return false;
    if (line[0] != '\0')
        return anomaly(s, "SCRAM: final client response not empty"), false;
    return true;
}

static bool plain(server *s, const char *initial)
{
    unsigned char raw[512];
    static const char want[] = "\0" SRV_USER "\0" SRV_PASS;
    int n = b64dec(initial, raw, sizeof raw);
    if (n != (int)sizeof want - 1 || memcmp(raw, want, sizeof want - 1) != 0)
        return anomaly(s, "PLAIN: wrong credentials"), false;
    return true;
}

/* RFC 2195: "user hex(HMAC-MD5(password, challenge))". */
static bool cram(server *s, conn *c)
{
    char line[LINE_MAX_LEN], b64[128], want[128];
    unsigned char raw[512], md[16];
    unsigned int mdlen = 0;
    b64enc((const unsigned char *)SRV_CRAM_CHALLENGE, strlen(SRV_CRAM_CHALLENGE), b64);
    conn_send(c, "334 %s", b64);
    if (auth_response(c, line, sizeof line) != 0)
        return false;
    int n = b64dec(line, raw, sizeof raw - 1);
    if (n < 0)
        return anomaly(s, "CRAM-MD5: bad base64"), false;
    raw[n] = '\0';
    HMAC(EVP_md5(), SRV_PASS, (int)strlen(SRV_PASS), (const unsigned char *)SRV_CRAM_CHALLENGE,
         strlen(SRV_CRAM_CHALLENGE), md, &mdlen);
    int off = snprintf(want, sizeof want, "%s ", SRV_USER);
    for (unsigned i = 0; i < mdlen; i++)
        off += snprintf(want + off, sizeof want - (size_t)off, "%02x", md[i]);
    if (strcmp((char *)raw, want) != 0)
        return anomaly(s, "CRAM-MD5: wrong response %s", (char *)raw), false;
    return true;
}

static void on_auth(server *s, conn *c, srv_kind kind, const char *args)
{
    char mech[32] = "", initial[LINE_MAX_LEN] = "";
    bool offered = kind == SRV_PIPELINING || kind == SRV_PLAIN || kind == SRV_IMPLICIT;
    if (sscanf(args, "%31s %4095s", mech, initial) < 1 || !s->cur.tls || s->cur.mech[0] ||
        !offered) {
        conn_send(c, "503 5.5.1 bad sequence");
        anomaly(s, "AUTH %s out of sequence", args);
        return;
    }
    bool ok;
    if (strcmp(mech, "SCRAM-SHA-256") == 0 || strcmp(mech, "SCRAM-SHA-256-PLUS") == 0)
        ok = scram(s, c, mech, initial);
    else if (strcmp(mech, "PLAIN") == 0)
        ok = plain(s, initial);
    else if (strcmp(mech, "CRAM-MD5") == 0 && !initial[0])
        ok = cram(s, c);
    else
        return (void)conn_send(c, "504 5.5.4 unrecognized mechanism");
    if (!ok) {
        if (!c->dead && !s->cur.anomaly[0])
            return; /* cancelled with "*": answered */
        conn_send(c, "535 5.7.8 authentication failed");
        return;
    }
    snprintf(s->cur.mech, sizeof s->cur.mech, "%s", mech);
    conn_send(c, "235 2.7.0 authenticated");
}

/* ---- session ---- */

static void on_ehlo(server *s, conn *c, srv_kind kind)
{
    if (kind == SRV_NOTLS) {
        conn_send(c, "250-mx.test plaintext only\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
                     "250 ENHANCEDSTATUSCODES");
        return;
    }
    if (!s->cur.tls) {
        conn_send(c, "250-mx.test greets you\r\n250-%sSTARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n"
                     "250 SIZE 10000000",
                  kind == SRV_PIPELINING ? "PIPELINING\r\n250-" : "");
        return;
    }
    if (kind == SRV_NOAUTH)
        conn_send(c, "250-mx.test\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES");
    else if (kind == SRV_IMPLICIT)
        conn_send(c, "250-mx.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
                     "250-AUTH SCRAM-SHA-256-PLUS SCRAM-SHA-256\r\n250 ENHANCEDSTATUSCODES");
    else if (kind == SRV_PIPELINING)
        conn_send(c, "250-mx.test greets you again\r\n250-PIPELINING\r\n"
                     "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-SIZE 10000000\r\n"
                     "250-AUTH SCRAM-SHA-256 PLAIN\r\n250-LIMITS RCPTMAX=100 MAILMAX=10\r\n"
                     "250 SMTPUTF8");
    else
        conn_send(c, "250-mx.test\r\n250-ENHANCEDSTATUSCODES\r\n250-AUTH PLAIN LOGIN CRAM-MD5\r\n"
                     "250-AUTH=PLAIN LOGIN\r\n250 HELP");
}

static void tls_accept(server *s, conn *c)
{
    c->ssl = SSL_new(s->tls);
    if (!c->ssl || !SSL_set_fd(c->ssl, c->fd) || SSL_accept(c->ssl) != 1) {
        c->dead = true;
        ERR_clear_error();
        return;
    }
    s->cur.tls = true;
}

static void on_starttls(server *s, conn *c, srv_kind kind)
{
    if (kind == SRV_NOTLS || kind == SRV_IMPLICIT) {
        anomaly(s, "STARTTLS sent although not offered");
        return (void)conn_send(c, "502 5.5.1 not implemented");
    }
    if (s->cur.tls)
        return (void)conn_send(c, "503 5.5.1 already in TLS");
    conn_send(c, "220 2.0.0 ready to start TLS");
    if (c->len > 0) {
        anomaly(s, "client sent data before the TLS handshake");
        c->dead = true;
        return;
    }
    tls_accept(s, c);
}

typedef struct tx {
    bool mail;
    char rcpts[SRV_MAX_RCPT][64];
    int nrcpts;
} tx;

/* Reads message data up to the final dot, unstuffed; false if the connection died. */
static bool read_data(server *s, conn *c, char *body, size_t *len)
{
    char line[LINE_MAX_LEN];
    *len = 0;
    for (;;) {
        int n = conn_line(c, line, sizeof line);
        if (n < 0)
            return false;
        if (strcmp(line, ".") == 0)
            return true;
        const char *l = line[0] == '.' ? line + 1 : line; /* RFC 5321 4.5.2 */
        size_t ll = strlen(l);
        if (*len + ll + 2 > SRV_BODY_MAX) {
            anomaly(s, "message too large");
            continue;
        }
        memcpy(body + *len, l, ll);
        memcpy(body + *len + ll, "\r\n", 2);
        *len += ll + 2;
    }
}

static void on_data(server *s, conn *c, tx *t)
{
    static char body[SRV_BODY_MAX];
    if (!t->mail || t->nrcpts == 0)
        return (void)conn_send(c, "554 5.5.1 no valid recipients");
    conn_send(c, "354 go ahead");
    size_t len;
    if (!read_data(s, c, body, &len))
        return; /* lost mid-message: nothing delivered */
    s->cur.delivered++;
    memcpy(s->cur.rcpts, t->rcpts, sizeof t->rcpts);
    s->cur.nrcpts = t->nrcpts;
    memcpy(s->cur.body, body, len);
    s->cur.body_len = len;
    memset(t, 0, sizeof *t);
    conn_send(c, "250 2.0.0 queued as T%d", s->cur.delivered);
}

static void on_rcpt(conn *c, tx *t, const char *arg)
{
    char addr[64];
    if (!t->mail)
        return (void)conn_send(c, "503 5.5.1 need MAIL first");
    if (sscanf(arg, "TO:<%63[^>]>", addr) != 1)
        return (void)conn_send(c, "501 5.5.4 syntax");
    if (strcmp(addr, SRV_REJECT) == 0)
        return (void)conn_send(c, "550 5.1.1 <%s> no such user", addr);
    if (t->nrcpts == SRV_MAX_RCPT)
        return (void)conn_send(c, "452 4.5.3 too many recipients");
    snprintf(t->rcpts[t->nrcpts++], 64, "%s", addr);
    conn_send(c, "250 2.1.5 recipient ok");
}

static void on_mail(server *s, conn *c, srv_kind kind, tx *t, const char *arg)
{
    bool need_tls = kind != SRV_NOTLS, need_auth = kind != SRV_NOTLS && kind != SRV_NOAUTH;
    if ((need_tls && !s->cur.tls) || (need_auth && !s->cur.mech[0])) {
        anomaly(s, "MAIL before TLS and AUTH");
        return (void)conn_send(c, "530 5.7.0 authentication required");
    }
    if (t->mail || strncmp(arg, "FROM:<", 6) != 0)
        return (void)conn_send(c, "503 5.5.1 bad sequence");
    memset(t, 0, sizeof *t);
    t->mail = true;
    conn_send(c, "250 2.1.0 sender ok");
}

/* One command; false once the session is over. */
static bool command(server *s, conn *c, srv_kind kind, tx *t, const char *line)
{
    char verb[16] = "";
    sscanf(line, "%15s", verb);
    const char *arg = line + strlen(verb) + (line[strlen(verb)] == ' ');
    if (strcasecmp(verb, "EHLO") == 0) {
        memset(t, 0, sizeof *t);
        on_ehlo(s, c, kind);
    } else if (strcasecmp(verb, "STARTTLS") == 0) {
        on_starttls(s, c, kind);
    } else if (strcasecmp(verb, "AUTH") == 0) {
        on_auth(s, c, kind, arg);
    } else if (strcasecmp(verb, "MAIL") == 0) {
        on_mail(s, c, kind, t, arg);
    } else if (strcasecmp(verb, "RCPT") == 0) {
        on_rcpt(c, t, arg);
    } else if (strcasecmp(verb, "DATA") == 0) {
        on_data(s, c, t);
    } else if (strcasecmp(verb, "RSET") == 0) {
        memset(t, 0, sizeof *t);
        conn_send(c, "250 2.0.0 reset");
    } else if (strcasecmp(verb, "QUIT") == 0) {
        conn_send(c, "221 2.0.0 bye");
        return false;
    } else {
        anomaly(s, "unexpected command %.100s", line);
        conn_send(c, "500 5.5.2 unrecognized command");
    }
    return !c->dead;
}

static void serve(server *s, int fd, srv_kind kind)
{
    struct timeval tv = {IO_TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1; /* one reply per write: no Nagle + delayed ACK stalls */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->fd = fd;
    tx t = {0};
    char line[LINE_MAX_LEN];
    if (kind == SRV_IMPLICIT)
        tls_accept(s, c);
    conn_send(c, "220 mx.test ESMTP torture server");
    while (conn_line(c, line, sizeof line) >= 0 && command(s, c, kind, &t, line))
        ;
    SSL_free(c->ssl);
    free(c);
}

static void finish_record(server *s)
{
    pthread_mutex_lock(&s->mu);
    s->rec[s->nrec++ % RECORDS] = s->cur;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void accept_one(server *s, srv_kind kind)
{
    struct sockaddr_in peer;
    socklen_t pl = sizeof peer;
    int fd = accept(s->lfd[kind], (struct sockaddr *)&peer, &pl);
    if (fd < 0)
        return;
    memset(&s->cur, 0, sizeof s->cur);
    s->cur.client_port = ntohs(peer.sin_port);
    serve(s, fd, kind);
    close(fd);
    ERR_clear_error();
    finish_record(s);
}

static void *server_main(void *arg)
{
    server *s = arg;
    for (;;) {
        struct pollfd p[SRV__COUNT + 1];
        for (int k = 0; k < SRV__COUNT; k++)
            p[k] = (struct pollfd){.fd = s->lfd[k], .events = POLLIN};
        p[SRV__COUNT] = (struct pollfd){.fd = s->stop_pipe[0], .events = POLLIN};
        if (poll(p, SRV__COUNT + 1, -1) < 0 && errno != EINTR)
            break;
        if (p[SRV__COUNT].revents)
            break;
        for (int k = 0; k < SRV__COUNT; k++)
            if (p[k].revents & POLLIN)
                accept_one(s, (srv_kind)k);
    }
    OPENSSL_thread_stop();
    return NULL;
}

/* ---- setup ---- */

static int listen_on(server *s, int k)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    s->lfd[k] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->lfd[k] < 0 || bind(s->lfd[k], (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(s->lfd[k], 16) != 0 || getsockname(s->lfd[k], (struct sockaddr *)&a, &al) != 0)
        return -1;
    s->port[k] = ntohs(a.sin_port);
    return 0;
}

server *server_start(void)
{
    server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    for (int k = 0; k < SRV__COUNT; k++)
        s->lfd[k] = -1;
    s->stop_pipe[0] = s->stop_pipe[1] = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    RAND_bytes(s->salt, sizeof s->salt);
    if (make_tls(s) != 0 ||
        PKCS5_PBKDF2_HMAC(SRV_PASS, (int)strlen(SRV_PASS), s->salt, sizeof s->salt, SCRAM_ITER,
                          EVP_sha256(), 32, s->salted) != 1 ||
        listen_on(s, SRV_PIPELINING) != 0 || listen_on(s, SRV_PLAIN) != 0 ||
        listen_on(s, SRV_NOAUTH) != 0 || listen_on(s, SRV_NOTLS) != 0 ||
        listen_on(s, SRV_IMPLICIT) != 0 ||
        pipe(s->stop_pipe) != 0 || pthread_create(&s->thread, NULL, server_main, s) != 0) {
        fprintf(stderr, "torture: cannot start the server: %s\n", strerror(errno));
        ERR_print_errors_fp(stderr);
        s->thread = 0;
        server_stop(s);
        return NULL;
    }
    return s;
}

void server_stop(server *s)
{
    if (!s)
        return;
    if (s->thread) {
        (void)!write(s->stop_pipe[1], "x", 1);
        pthread_join(s->thread, NULL);
    }
    for (int k = 0; k < SRV__COUNT; k++)
        if (s->lfd[k] >= 0)
            close(s->lfd[k]);
    for (int k = 0; k < 2; k++)
        if (s->stop_pipe[k] >= 0)
            close(s->stop_pipe[k]);
    if (s->ca_path[0])
        unlink(s->ca_path);
    if (s->empty_dir[0])
        rmdir(s->empty_dir);
    SSL_CTX_free(s->tls);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

int server_port(const server *s, srv_kind kind) { return s->port[kind]; }
const char *server_ca_file(const server *s) { return s->ca_path; }
const char *server_tlsa(const server *s) { return s->tlsa; }
const char *server_empty_dir(const server *s) { return s->empty_dir; }

unsigned long server_seq(server *s)
{
    pthread_mutex_lock(&s->mu);
    unsigned long n = s->nrec;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static bool find_record(server *s, unsigned long since, int port, srv_record *out)
{
    unsigned long first = s->nrec > RECORDS ? s->nrec - RECORDS : 0;
    if (first < since)
        first = since;
    for (unsigned long i = s->nrec; i-- > first;) {
        if (s->rec[i % RECORDS].client_port == port) {
            *out = s->rec[i % RECORDS];
            return true;
        }
    }
    return false;
}

int server_wait(server *s, unsigned long since, int client_port, int timeout_ms,
                srv_record *out)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    while (!find_record(s, since, client_port, out))
        if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT) {
            rc = find_record(s, since, client_port, out) ? 0 : -1;
            break;
        }
    pthread_mutex_unlock(&s->mu);
    return rc;
}
