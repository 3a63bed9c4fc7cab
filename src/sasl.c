/* SASL client mechanisms for SMTP AUTH (RFC 4954), spec sections 7 and 8.
 *
 * PLAIN and LOGIN run on GNU SASL (one Gsasl context per client). CRAM-MD5
 * and SCRAM are computed here with OpenSSL because libgsasl 2.2 cannot do
 * what spec 8.3-8.5 require: its SCRAM client refuses to start when channel
 * binding data is set for a non-PLUS mechanism (so no "y,," gs2 header),
 * does not enforce the nonce/salt/iteration minimums, does not report the
 * server's "e=" error, and keeps a password-equivalent (the salted password)
 * in a property we cannot wipe; its CRAM-MD5 client accepts any challenge
 * and SASLpreps the user name and fails on a password SASLprep rejects,
 * where the spec sends the user name as is and falls back to the raw
 * password. libgsasl still provides SASLprep (gsasl_saslprep). */
#include "sasl.h"
#include "sasl_int.h"

#include <errno.h>
#include <gsasl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum mech_kind { M_PLAIN, M_LOGIN, M_CRAM_MD5, M_SCRAM, M_XOAUTH2, M_OAUTHBEARER };

struct mech_info {
    const char *name;
    enum mech_kind kind;
    bool sha256; /* SCRAM hash */
    bool plus;   /* SCRAM with channel binding */
    bool token;  /* needs a bearer token rather than a password */
};

/* In order of preference for sasl_choose: strongest first. */
static const struct mech_info mechs[] = {
    {"SCRAM-SHA-256-PLUS", M_SCRAM, true, true, false},
    {"SCRAM-SHA-1-PLUS", M_SCRAM, false, true, false},
    {"SCRAM-SHA-256", M_SCRAM, true, false, false},
    {"SCRAM-SHA-1", M_SCRAM, false, false, false},
    {"CRAM-MD5", M_CRAM_MD5, false, false, false},
    {"PLAIN", M_PLAIN, false, false, false},
    {"LOGIN", M_LOGIN, false, false, false},
    {"OAUTHBEARER", M_OAUTHBEARER, false, false, true},
    {"XOAUTH2", M_XOAUTH2, false, false, true},
};
#define NMECHS (sizeof mechs / sizeof mechs[0])

/* Spec 8.4 minimums, and an upper bound of our own on the PBKDF2 work a
 * server can make us do (a few seconds at most). */
#define SCRAM_MIN_NONCE_EXT 8
#define SCRAM_MIN_SALT 8
#define SCRAM_MIN_ITER 2048
#define SCRAM_MAX_ITER 10000000UL
#define SCRAM_NONCE_BYTES 12
#define SCRAM_MAX_NONCE 128
#define SCRAM_MAX_MSG 4096 /* server-first/final; real ones are ~100 bytes */

struct scram_state {
    const EVP_MD *md;
    char gs2[32];                         /* gs2-header, RFC 5802 7 */
    unsigned char *cbdata;                /* channel binding data ("p" only) */
    size_t cblen;
    char nonce[SCRAM_MAX_NONCE + 1];      /* client nonce, "" = random */
    char *first_bare;                     /* client-first-message-bare */
    unsigned char server_sig[EVP_MAX_MD_SIZE];
};

struct sasl_client {
    const struct mech_info *mech;
    int step;     /* number of steps taken */
    bool failed;  /* a step failed: the exchange is over */
    char *user;   /* never NULL */
    char *pass;   /* wiped on free */
    char *token;  /* wiped on free */
    Gsasl *gctx;  /* PLAIN, LOGIN */
    Gsasl_session *gsess;
    struct scram_state scram;
};

/* ---- small helpers ---- */

void sasl_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int sasl_out_copy(const void *data, size_t len, unsigned char **out, size_t *outlen)
{
    unsigned char *buf = malloc(len + 1);
    if (buf == NULL)
        return -1;
    if (len > 0)
        memcpy(buf, data, len);
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    return 0;
}

void sasl_free_buf(unsigned char *buf, size_t len)
{
    if (buf == NULL)
        return;
    OPENSSL_cleanse(buf, len);
    free(buf);
}

static void wipe_free(char *s)
{
    if (s == NULL)
        return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}

static char *dup_or_null(const char *s, bool *nomem)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        *nomem = true;
    return d;
}

/* malloc'ed printf; the caller wipes it when it may hold secrets. */
static char *fmt_alloc(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *fmt_alloc(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (s == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* Spec 8.7: CRAM-MD5 and SCRAM prepare the password with PRECIS
 * OpaqueString (RFC 8265 4.2); we use SASLprep (RFC 4013, from libgsasl),
 * which agrees on everything but compatibility characters. If preparation
 * fails the raw string is used (but not when libgsasl ran out of memory:
 * the raw string may differ). Returns a malloc'ed copy or NULL. */
static char *prep_string(const char *s)
{
    char *prep = NULL;
    int rc = gsasl_saslprep(s, GSASL_ALLOW_UNASSIGNED, &prep, NULL);
    if (rc == GSASL_MALLOC_ERROR) {
        errno = ENOMEM;
        return NULL;
    }
    if (rc != GSASL_OK || prep == NULL)
        return strdup(s);
    char *copy = strdup(prep);
    OPENSSL_cleanse(prep, strlen(prep));
    gsasl_free(prep);
    return copy;
}

static const struct mech_info *mech_find(const char *name)
{
    for (size_t i = 0; name != NULL && i < NMECHS; i++)
        if (strcasecmp(mechs[i].name, name) == 0)
            return &mechs[i];
    return NULL;
}

static bool cb_type_known(const char *type)
{
    return type != NULL && (strcmp(type, "tls-unique") == 0 || strcmp(type, "tls-exporter") == 0);
}

static bool cb_usable(const sasl_cb *cb)
{
    return cb != NULL && cb_type_known(cb->type) && cb->data != NULL && cb->len > 0;
}

/* ---- choice ---- */

bool sasl_mech_cleartext(const char *mech)
{
    const struct mech_info *m = mech_find(mech);
    return m != NULL && m->kind != M_CRAM_MD5 && m->kind != M_SCRAM;
}

static bool server_offers(char *const *server_mechs, size_t n, const char *name)
{
    for (size_t i = 0; server_mechs != NULL && i < n; i++)
        if (server_mechs[i] != NULL && strcasecmp(server_mechs[i], name) == 0)
            return true;
    return false;
}

static bool have_creds(const struct mech_info *m, const sasl_creds *creds)
{
    if (creds == NULL)
        return false;
    if (m->token)
        return creds->token != NULL && *creds->token != '\0';
    return creds->password != NULL;
}

const char *sasl_choose(const char *wanted, char *const *server_mechs, size_t n,
                        const sasl_creds *creds, const sasl_cb *cb)
{
    if (wanted != NULL && *wanted != '\0' && strcasecmp(wanted, "auto") != 0) {
        /* Explicit choice: credentials are checked by sasl_client_new,
         * which can say what is missing. */
        const struct mech_info *m = mech_find(wanted);
        if (m == NULL || !server_offers(server_mechs, n, m->name))
            return NULL;
        return m->name;
    }
    for (size_t i = 0; i < NMECHS; i++) {
        const struct mech_info *m = &mechs[i];
        if (!server_offers(server_mechs, n, m->name) || !have_creds(m, creds))
            continue;
        if (m->plus && !cb_usable(cb))
            continue;
        return m->name;
    }
    return NULL;
}

/* ---- PLAIN and LOGIN on libgsasl ---- */

static int gs_start(sasl_client *c, char *err, size_t errlen)
{
    int rc = gsasl_init(&c->gctx);
    if (rc == GSASL_OK)
        rc = gsasl_client_start(c->gctx, c->mech->name, &c->gsess);
    /* RFC 4616 2 / spec 8.1: no authorization identity, so none is set;
     * there is no callback, so libgsasl leaves it empty. */
    if (rc == GSASL_OK)
        rc = gsasl_property_set(c->gsess, GSASL_AUTHID, c->user);
    if (rc == GSASL_OK)
        rc = gsasl_property_set(c->gsess, GSASL_PASSWORD, c->pass);
    if (rc != GSASL_OK) {
        sasl_seterr(err, errlen, "%s: gsasl: %s", c->mech->name, gsasl_strerror(rc));
        if (rc == GSASL_MALLOC_ERROR)
            errno = ENOMEM;
        return -1;
    }
    return 0;
}

static void gs_free(sasl_client *c)
{
    if (c->gsess != NULL) {
        /* libgsasl frees its copy of the password without wiping it. */
        char *p = (char *)gsasl_property_fast(c->gsess, GSASL_PASSWORD);
        if (p != NULL)
            OPENSSL_cleanse(p, strlen(p));
        gsasl_finish(c->gsess);
    }
    if (c->gctx != NULL)
        gsasl_done(c->gctx);
}

/* PLAIN: one message "\0user\0pass", final (spec 8.1). LOGIN: the user name
 * as initial response, then the password whatever the challenge, final
 * (spec 8.2). libgsasl produces exactly these. */
static int gs_step(sasl_client *c, int step, const unsigned char *in, size_t inlen,
                   unsigned char **out, size_t *outlen, bool *final, char *err,
                   size_t errlen)
{
    int last = c->mech->kind == M_PLAIN ? 0 : 1;
    if (step > last) {
        sasl_seterr(err, errlen, "%s: unexpected challenge after the final message",
                    c->mech->name);
        return -1;
    }
    char *gout = NULL;
    size_t goutlen = 0;
    int rc = gsasl_step(c->gsess, step == 0 ? NULL : (const char *)in, step == 0 ? 0 : inlen,
                        &gout, &goutlen);
    int want = step == last ? GSASL_OK : GSASL_NEEDS_MORE;
    int res = 0;
    if (rc != want) {
        sasl_seterr(err, errlen, "%s: gsasl: %s", c->mech->name, gsasl_strerror(rc));
        if (rc == GSASL_MALLOC_ERROR)
            errno = ENOMEM;
        res = -1;
    } else if (sasl_out_copy(gout, goutlen, out, outlen) != 0) {
        sasl_seterr(err, errlen, "%s: out of memory", c->mech->name);
        res = -1;
    }
    if (gout != NULL) {
        OPENSSL_cleanse(gout, goutlen);
        gsasl_free(gout);
    }
    *final = res == 0 && step == last;
    return res;
}

/* ---- CRAM-MD5 (RFC 2195) ---- */

/* Spec 8.3: "<" ... ">" with a non-empty part before the first ".", and
 * after it an "@" with non-empty text on both sides (RFC 2195 2: the
 * challenge has the form of a msg-id, "<digits.timestamp@hostname>"). */
static const char *cram_challenge_error(const unsigned char *in, size_t inlen)
{
    if (memchr(in, '\0', inlen) != NULL)
        return "invalid challenge, contains NUL";
    if (inlen < 2 || in[0] != '<' || in[inlen - 1] != '>')
        return "invalid challenge, missing angle brackets";
    const char *s = (const char *)in + 1;
    size_t len = inlen - 2;
    const char *dot = memchr(s, '.', len);
    if (dot == NULL || dot == s)
        return "invalid challenge, missing dot or random digits";
    const char *rest = dot + 1;
    size_t restlen = len - (size_t)(rest - s);
    const char *at = memchr(rest, '@', restlen);
    if (at == NULL || at == rest || at == rest + restlen - 1)
        return "invalid challenge, empty timestamp or empty hostname";
    return NULL;
}

static int cram_step(sasl_client *c, int step, const unsigned char *in, size_t inlen,
                     unsigned char **out, size_t *outlen, bool *final, char *err,
                     size_t errlen)
{
    if (step == 0)
        return 0; /* no initial response: *out stays NULL */
    if (step > 1) {
        sasl_seterr(err, errlen, "CRAM-MD5: unexpected challenge after the final message");
        return -1;
    }
    const char *why = cram_challenge_error(in, inlen);
    if (why != NULL) {
        sasl_seterr(err, errlen, "CRAM-MD5: %s", why);
        return -1;
    }
    char *key = prep_string(c->pass);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    /* HMAC hashes keys longer than 64 bytes first, as RFC 2104 2 says. */
    bool ok = key != NULL && strlen(key) <= INT32_MAX &&
              HMAC(EVP_md5(), key, (int)strlen(key), in, inlen, mac, &maclen) != NULL;
    wipe_free(key);
    size_t ulen = strlen(c->user);
    char *buf = ok ? malloc(ulen + 1 + 2 * maclen + 1) : NULL;
    if (buf != NULL) {
        memcpy(buf, c->user, ulen);
        buf[ulen] = ' ';
        for (unsigned int i = 0; i < maclen; i++)
            snprintf(buf + ulen + 1 + 2 * i, 3, "%02x", mac[i]);
        *out = (unsigned char *)buf;
        *outlen = ulen + 1 + 2 * maclen;
        *final = true;
    }
    OPENSSL_cleanse(mac, sizeof mac);
    if (buf == NULL) {
        sasl_seterr(err, errlen, "CRAM-MD5: HMAC failed or out of memory");
        return -1;
    }
    return 0;
}

/* ---- SCRAM (RFC 5802, RFC 7677, spec 8.4-8.5) ---- */

static int scram_init(sasl_client *c, const sasl_cb *cb, bool server_plus, char *err,
                      size_t errlen)
{
    struct scram_state *s = &c->scram;
    s->md = c->mech->sha256 ? EVP_sha256() : EVP_sha1();
    if (c->mech->plus) {
        if (!cb_usable(cb)) {
            sasl_seterr(err, errlen, "%s: no usable channel binding (%s)", c->mech->name,
                        cb == NULL || cb->type == NULL ? "no TLS" : cb->type);
            return -1;
        }
        /* RFC 5802 6: "p=" names the binding type; its data goes into c=. */
        snprintf(s->gs2, sizeof s->gs2, "p=%s,,", cb->type);
        s->cbdata = malloc(cb->len);
        if (s->cbdata == NULL) {
            sasl_seterr(err, errlen, "%s: out of memory", c->mech->name);
            errno = ENOMEM;
            return -1;
        }
        memcpy(s->cbdata, cb->data, cb->len);
        s->cblen = cb->len;
    } else if (cb_usable(cb) && !server_plus) {
        /* RFC 5802 6: we could bind but the server did not offer -PLUS;
         * "y" lets a server that does support it detect a downgrade. */
        snprintf(s->gs2, sizeof s->gs2, "y,,");
    } else {
        snprintf(s->gs2, sizeof s->gs2, "n,,");
    }
    return 0;
}

static void scram_free(struct scram_state *s)
{
    if (s->cbdata != NULL) {
        OPENSSL_cleanse(s->cbdata, s->cblen);
        free(s->cbdata);
    }
    free(s->first_bare);
    OPENSSL_cleanse(s->server_sig, sizeof s->server_sig);
}

static bool nonce_char_ok(unsigned char ch)
{
    /* RFC 5802 7: printable = %x21-2B / %x2D-7E */
    return ch >= 0x21 && ch <= 0x7e && ch != ',';
}

int sasl_scram_set_nonce(sasl_client *c, const char *nonce)
{
    size_t len = strlen(nonce);
    if (c == NULL || c->mech->kind != M_SCRAM || c->step != 0 || len == 0 ||
        len > SCRAM_MAX_NONCE)
        return -1;
    for (size_t i = 0; i < len; i++)
        if (!nonce_char_ok((unsigned char)nonce[i]))
            return -1;
    memcpy(c->scram.nonce, nonce, len + 1);
    return 0;
}

static int scram_make_nonce(struct scram_state *s)
{
    if (s->nonce[0] != '\0')
        return 0;
    unsigned char raw[SCRAM_NONCE_BYTES];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return -1;
    char *b = b64_encode(raw, sizeof raw);
    if (b == NULL)
        return -1;
    snprintf(s->nonce, sizeof s->nonce, "%s", b);
    free(b);
    return 0;
}

/* RFC 5802 5.1: saslname escapes "," as "=2C" and "=" as "=3D". */
static char *scram_username(const char *user)
{
    char *prep = prep_string(user);
    if (prep == NULL)
        return NULL;
    size_t n = 0;
    for (const char *p = prep; *p; p++)
        n += (*p == ',' || *p == '=') ? 3 : 1;
    char *esc = malloc(n + 1);
    if (esc != NULL) {
        char *o = esc;
        for (const char *p = prep; *p; p++) {
            const char *rep = *p == ',' ? "=2C" : *p == '=' ? "=3D" : NULL;
            if (rep != NULL) {
                memcpy(o, rep, 3);
                o += 3;
            } else {
                *o++ = *p;
            }
        }
        *o = '\0';
    }
    free(prep);
    return esc;
}

/* client-first-message = gs2-header client-first-message-bare */
static int scram_first(sasl_client *c, unsigned char **out, size_t *outlen, char *err,
                       size_t errlen)
{
    struct scram_state *s = &c->scram;
    char *user = scram_username(c->user);
    if (user == NULL || scram_make_nonce(s) != 0) {
        free(user);
        sasl_seterr(err, errlen, "%s: out of memory or no randomness", c->mech->name);
        return -1;
    }
    s->first_bare = fmt_alloc("n=%s,r=%s", user, s->nonce);
    free(user);
    char *msg = s->first_bare != NULL ? fmt_alloc("%s%s", s->gs2, s->first_bare) : NULL;
    if (msg == NULL) {
        sasl_seterr(err, errlen, "%s: out of memory", c->mech->name);
        return -1;
    }
    *out = (unsigned char *)msg;
    *outlen = strlen(msg);
    return 0;
}

struct scram_server_first {
    const char *nonce;
    size_t noncelen;
    unsigned char *salt;
    size_t saltlen;
    unsigned long iter;
};

/* Takes attribute "name=value" at *p (up to "," or end); advances *p past
 * the ",". RFC 5802 7: attributes come in a fixed order. */
static bool scram_attr(const char **p, const char *end, char name, const char **val,
                       size_t *vlen)
{
    const char *q = *p;
    if (end - q < 2 || q[0] != name || q[1] != '=')
        return false;
    q += 2;
    const char *comma = memchr(q, ',', (size_t)(end - q));
    const char *stop = comma != NULL ? comma : end;
    *val = q;
    *vlen = (size_t)(stop - q);
    *p = comma != NULL ? comma + 1 : end;
    return true;
}

static bool parse_iter(const char *v, size_t len, unsigned long *iter)
{
    unsigned long n = 0;
    if (len == 0 || len > 10)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        n = n * 10 + (unsigned long)(v[i] - '0');
    }
    *iter = n;
    return true;
}

/* Parses server-first-message and applies the spec 8.4 minimums. */
static const char *scram_parse_first(const struct scram_state *s, const char *msg,
                                     size_t len, struct scram_server_first *f)
{
    const char *p = msg, *end = msg + len, *v;
    size_t vlen;
    if (memchr(msg, '\0', len) != NULL)
        return "malformed server-first-message (NUL)";
    if (len >= 2 && msg[0] == 'm' && msg[1] == '=')
        return "server requires an unsupported mandatory extension (m=)";
    if (!scram_attr(&p, end, 'r', &f->nonce, &f->noncelen))
        return "malformed server-first-message, missing nonce";
    size_t ours = strlen(s->nonce);
    if (f->noncelen < ours || memcmp(f->nonce, s->nonce, ours) != 0)
        return "server nonce does not start with our nonce";
    if (f->noncelen < ours + SCRAM_MIN_NONCE_EXT)
        return "server nonce extends ours by fewer than 8 characters";
    for (size_t i = 0; i < f->noncelen; i++)
        if (!nonce_char_ok((unsigned char)f->nonce[i]))
            return "server nonce contains invalid characters";
    if (!scram_attr(&p, end, 's', &v, &vlen))
        return "malformed server-first-message, missing salt";
    if (b64_decode(v, vlen, &f->salt, &f->saltlen) != 0)
        return "malformed salt (base64)";
    if (f->saltlen < SCRAM_MIN_SALT)
        return "salt shorter than 8 bytes";
    if (!scram_attr(&p, end, 'i', &v, &vlen) || !parse_iter(v, vlen, &f->iter))
        return "malformed server-first-message, missing or bad iteration count";
    if (f->iter < SCRAM_MIN_ITER)
        return "iteration count below 2048";
    if (f->iter > SCRAM_MAX_ITER)
        return "iteration count above 10000000";
    return NULL; /* further attributes are extensions, ignored (RFC 5802 5.1) */
}

static bool hmac(const EVP_MD *md, const void *key, size_t keylen, const void *data,
                 size_t datalen, unsigned char *out)
{
    unsigned int len = 0;
    return HMAC(md, key, (int)keylen, data, datalen, out, &len) != NULL;
}

/* RFC 5802 3: SaltedPassword, then ClientProof over auth_msg and the
 * ServerSignature we expect in server-final. */
static bool scram_proof(sasl_client *c, const struct scram_server_first *f,
                        const char *auth_msg, unsigned char *proof)
{
    struct scram_state *s = &c->scram;
    size_t h = (size_t)EVP_MD_get_size(s->md);
    unsigned char salted[EVP_MAX_MD_SIZE], ckey[EVP_MAX_MD_SIZE], stored[EVP_MAX_MD_SIZE];
    unsigned char csig[EVP_MAX_MD_SIZE], skey[EVP_MAX_MD_SIZE];
    unsigned int slen = 0;
    char *pw = prep_string(c->pass);
    size_t alen = strlen(auth_msg);
    bool ok = pw != NULL && strlen(pw) <= INT32_MAX &&
              PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), f->salt, (int)f->saltlen, (int)f->iter,
                                s->md, (int)h, salted) == 1 &&
              hmac(s->md, salted, h, "Client Key", 10, ckey) &&
              EVP_Digest(ckey, h, stored, &slen, s->md, NULL) == 1 &&
              hmac(s->md, stored, h, auth_msg, alen, csig) &&
              hmac(s->md, salted, h, "Server Key", 10, skey) &&
              hmac(s->md, skey, h, auth_msg, alen, s->server_sig);
    for (size_t i = 0; ok && i < h; i++)
        proof[i] = ckey[i] ^ csig[i];
    wipe_free(pw);
    OPENSSL_cleanse(salted, sizeof salted);
    OPENSSL_cleanse(ckey, sizeof ckey);
    OPENSSL_cleanse(stored, sizeof stored);
    OPENSSL_cleanse(csig, sizeof csig);
    OPENSSL_cleanse(skey, sizeof skey);
    return ok;
}

/* c= attribute: base64(gs2-header [channel binding data]), RFC 5802 7. */
static char *scram_cbind(const struct scram_state *s)
{
    size_t glen = strlen(s->gs2);
    unsigned char *buf = malloc(glen + s->cblen + 1);
    if (buf == NULL)
        return NULL;
    memcpy(buf, s->gs2, glen);
    if (s->cblen > 0)
        memcpy(buf + glen, s->cbdata, s->cblen);
    char *b = b64_encode(buf, glen + s->cblen);
    free(buf);
    return b;
}

/* client-final-message = "c=" cbind ",r=" nonce ",p=" proof; the
 * AuthMessage is client-first-bare "," server-first "," final-without-proof. */
static int scram_final(sasl_client *c, const char *sfirst, size_t sfirstlen,
                       const struct scram_server_first *f, unsigned char **out,
                       size_t *outlen)
{
    struct scram_state *s = &c->scram;
    size_t h = (size_t)EVP_MD_get_size(s->md);
    char *cbind = scram_cbind(s);
    char *without = cbind != NULL ? fmt_alloc("c=%s,r=%.*s", cbind, (int)f->noncelen, f->nonce)
                                  : NULL;
    char *auth = without != NULL ? fmt_alloc("%s,%.*s,%s", s->first_bare, (int)sfirstlen,
                                             sfirst, without)
                                 : NULL;
    unsigned char proof[EVP_MAX_MD_SIZE];
    char *p64 = NULL, *msg = NULL;
    if (auth != NULL && scram_proof(c, f, auth, proof))
        p64 = b64_encode(proof, h);
    if (p64 != NULL)
        msg = fmt_alloc("%s,p=%s", without, p64);
    OPENSSL_cleanse(proof, sizeof proof);
    wipe_free(p64);
    free(cbind);
    free(without);
    free(auth);
    if (msg == NULL)
        return -1;
    *out = (unsigned char *)msg;
    *outlen = strlen(msg);
    return 0;
}

static int scram_server_first(sasl_client *c, const unsigned char *in, size_t inlen,
                              unsigned char **out, size_t *outlen, char *err, size_t errlen)
{
    struct scram_server_first f = {0};
    const char *msg = (const char *)in;
    const char *why = scram_parse_first(&c->scram, msg, inlen, &f);
    int rc = -1;
    if (why != NULL)
        sasl_seterr(err, errlen, "%s: %s", c->mech->name, why);
    else if ((rc = scram_final(c, msg, inlen, &f, out, outlen)) != 0)
        sasl_seterr(err, errlen, "%s: computing the proof failed", c->mech->name);
    free(f.salt);
    return rc;
}

/* server-final-message = (server-error / verifier) ["," extensions] */
static int scram_server_final(sasl_client *c, const unsigned char *in, size_t inlen,
                              char *err, size_t errlen)
{
    const char *p = (const char *)in, *end = p + inlen, *v;
    size_t vlen;
    const char *name = c->mech->name;
    if (memchr(in, '\0', inlen) != NULL) {
        sasl_seterr(err, errlen, "%s: malformed server-final-message (NUL)", name);
        return -1;
    }
    if (scram_attr(&p, end, 'e', &v, &vlen)) {
        sasl_seterr(err, errlen, "%s: server error: %.*s", name, (int)(vlen > 200 ? 200 : vlen),
                    v);
        return -1;
    }
    if (!scram_attr(&p, end, 'v', &v, &vlen)) {
        sasl_seterr(err, errlen, "%s: malformed server-final-message", name);
        return -1;
    }
    unsigned char *sig = NULL;
    size_t siglen = 0;
    size_t h = (size_t)EVP_MD_get_size(c->scram.md);
    bool ok = b64_decode(v, vlen, &sig, &siglen) == 0 && siglen == h &&
              CRYPTO_memcmp(sig, c->scram.server_sig, h) == 0;
    free(sig);
    if (!ok) {
        sasl_seterr(err, errlen, "%s: server signature mismatch", name);
        return -1;
    }
    return 0;
}

static int scram_step(sasl_client *c, int step, const unsigned char *in, size_t inlen,
                      unsigned char **out, size_t *outlen, bool *final, char *err,
                      size_t errlen)
{
    if (inlen > SCRAM_MAX_MSG) {
        sasl_seterr(err, errlen, "%s: server message too long", c->mech->name);
        return -1;
    }
    switch (step) {
    case 0:
        return scram_first(c, out, outlen, err, errlen);
    case 1:
        return scram_server_first(c, in, inlen, out, outlen, err, errlen);
    case 2:
        if (scram_server_final(c, in, inlen, err, errlen) != 0)
            return -1;
        /* Spec 8.4: the server is verified; an empty response ends it. */
        if (sasl_out_copy("", 0, out, outlen) != 0) {
            sasl_seterr(err, errlen, "%s: out of memory", c->mech->name);
            return -1;
        }
        *final = true;
        return 0;
    default:
        sasl_seterr(err, errlen, "%s: unexpected challenge after the final message",
                    c->mech->name);
        return -1;
    }
}

/* ---- client ---- */

static int check_creds(const struct mech_info *m, const sasl_creds *creds, char *err,
                       size_t errlen)
{
    if (creds == NULL) {
        sasl_seterr(err, errlen, "%s: no credentials", m->name);
        return -1;
    }
    if (m->token && (creds->token == NULL || *creds->token == '\0')) {
        sasl_seterr(err, errlen, "%s needs an OAuth 2.0 bearer token", m->name);
        return -1;
    }
    if (!m->token && creds->password == NULL) {
        sasl_seterr(err, errlen, "%s needs a password", m->name);
        return -1;
    }
    return 0;
}

static int client_init(sasl_client *c, const sasl_cb *cb, bool server_plus, char *err,
                       size_t errlen)
{
    switch (c->mech->kind) {
    case M_PLAIN:
    case M_LOGIN:
        return gs_start(c, err, errlen);
    case M_SCRAM:
        return scram_init(c, cb, server_plus, err, errlen);
    case M_XOAUTH2:
    case M_OAUTHBEARER:
        return oauth_check(c->mech->kind == M_OAUTHBEARER, c->user, c->token, err, errlen);
    case M_CRAM_MD5:
        break;
    }
    return 0;
}

sasl_client *sasl_client_new(const char *mech, const sasl_creds *creds, const sasl_cb *cb,
                             bool server_plus, char *err, size_t errlen)
{
    const struct mech_info *m = mech_find(mech);
    errno = EINVAL;
    if (m == NULL) {
        sasl_seterr(err, errlen, "unsupported SASL mechanism %s", mech ? mech : "(null)");
        return NULL;
    }
    if (check_creds(m, creds, err, errlen) != 0)
        return NULL;
    sasl_client *c = calloc(1, sizeof *c);
    if (c == NULL) {
        sasl_seterr(err, errlen, "out of memory");
        errno = ENOMEM;
        return NULL;
    }
    bool nomem = false;
    c->mech = m;
    c->user = dup_or_null(creds->user != NULL ? creds->user : "", &nomem);
    c->pass = dup_or_null(creds->password, &nomem);
    c->token = dup_or_null(creds->token, &nomem);
    errno = 0;
    if (nomem || client_init(c, cb, server_plus, err, errlen) != 0) {
        int e = nomem || errno == ENOMEM ? ENOMEM : EINVAL;
        if (nomem)
            sasl_seterr(err, errlen, "out of memory");
        sasl_client_free(c);
        errno = e;
        return NULL;
    }
    return c;
}

int sasl_client_step(sasl_client *c, const unsigned char *in, size_t inlen,
                     unsigned char **out, size_t *outlen, bool *final, char *err,
                     size_t errlen)
{
    static const unsigned char empty[1];
    *out = NULL;
    *outlen = 0;
    *final = false;
    if (c == NULL || c->failed) {
        sasl_seterr(err, errlen, "authentication already failed");
        errno = EINVAL;
        return -1;
    }
    if (in == NULL) {
        in = empty;
        inlen = 0;
    }
    errno = 0; /* an allocation that fails in the step leaves ENOMEM */
    int step = c->step++;
    int rc = -1;
    switch (c->mech->kind) {
    case M_PLAIN:
    case M_LOGIN:
        rc = gs_step(c, step, in, inlen, out, outlen, final, err, errlen);
        break;
    case M_CRAM_MD5:
        rc = cram_step(c, step, in, inlen, out, outlen, final, err, errlen);
        break;
    case M_SCRAM:
        rc = scram_step(c, step, in, inlen, out, outlen, final, err, errlen);
        break;
    case M_XOAUTH2:
    case M_OAUTHBEARER:
        rc = oauth_step(c->mech->kind == M_OAUTHBEARER, step, c->user, c->token, out, outlen,
                        final, err, errlen);
        break;
    }
    if (rc != 0) {
        int e = errno == ENOMEM ? ENOMEM : EINVAL;
        sasl_free_buf(*out, *outlen);
        *out = NULL;
        *outlen = 0;
        *final = false;
        c->failed = true;
        errno = e;
    }
    return rc;
}

void sasl_client_free(sasl_client *c)
{
    if (c == NULL)
        return;
    gs_free(c);
    scram_free(&c->scram);
    free(c->user);
    wipe_free(c->pass);
    wipe_free(c->token);
    OPENSSL_cleanse(c, sizeof *c);
    free(c);
}
