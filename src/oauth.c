/* XOAUTH2 (Google/Microsoft) and OAUTHBEARER (RFC 7628) clients. libgsasl
 * 2.2 implements neither (gsasl_client_support_p returns 0 for both), so
 * they are built here; both are a single message plus an optional error
 * round trip. */
#include "sasl_int.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

/* A token goes after "Bearer " and before the \x01 separator: no controls,
 * spaces or DEL (RFC 6750 2.1 b64token is a subset of what we accept). */
static bool token_ok(const char *t)
{
    if (*t == '\0')
        return false;
    for (; *t; t++) {
        unsigned char ch = (unsigned char)*t;
        if (ch <= 0x20 || ch == 0x7f)
            return false;
    }
    return true;
}

int oauth_check(bool bearer, const char *user, const char *token, char *err, size_t errlen)
{
    const char *name = bearer ? "OAUTHBEARER" : "XOAUTH2";
    if (token == NULL || !token_ok(token)) {
        sasl_seterr(err, errlen, "%s: missing or malformed bearer token", name);
        return -1;
    }
    if (strchr(user, '\x01') != NULL) {
        sasl_seterr(err, errlen, "%s: user name contains a control character", name);
        return -1;
    }
    if (!bearer && *user == '\0') {
        sasl_seterr(err, errlen, "XOAUTH2: user name required");
        return -1;
    }
    return 0;
}

/* Length of the RFC 5801 4 saslname form of s ("," -> "=2C", "=" -> "=3D"),
 * written to dst when dst is not NULL. */
static size_t saslname(const char *s, char *dst)
{
    size_t n = 0;
    for (; *s; s++) {
        const char *rep = *s == ',' ? "=2C" : *s == '=' ? "=3D" : NULL;
        if (rep != NULL) {
            if (dst != NULL)
                memcpy(dst + n, rep, 3);
            n += 3;
        } else {
            if (dst != NULL)
                dst[n] = *s;
            n++;
        }
    }
    return n;
}

static char *append(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

/* XOAUTH2: "user=" user ^A "auth=Bearer " token ^A ^A. */
static int xoauth2_initial(const char *user, const char *token, unsigned char **out,
                           size_t *outlen)
{
    size_t len = 5 + strlen(user) + 13 + strlen(token) + 2;
    char *buf = malloc(len + 1);
    if (buf == NULL)
        return -1;
    char *p = append(buf, "user=");
    p = append(p, user);
    p = append(p, "\x01" "auth=Bearer ");
    p = append(p, token);
    p = append(p, "\x01\x01");
    *out = (unsigned char *)buf;
    *outlen = (size_t)(p - buf);
    return 0;
}

/* RFC 7628 3.1: gs2-header "n,a=" saslname "," (authzid left out when the
 * user is empty), then kvpairs "auth=Bearer token", each ended by ^A, and a
 * final ^A. Host and port are optional and not sent. */
static int oauthbearer_initial(const char *user, const char *token, unsigned char **out,
                               size_t *outlen)
{
    size_t ulen = saslname(user, NULL);
    size_t len = 4 + ulen + 1 + 13 + strlen(token) + 2;
    char *buf = malloc(len + 1);
    if (buf == NULL)
        return -1;
    char *p = buf;
    if (ulen > 0) {
        p = append(p, "n,a=");
        saslname(user, p);
        p += ulen;
        p = append(p, ",");
    } else {
        p = append(p, "n,,");
    }
    p = append(p, "\x01" "auth=Bearer ");
    p = append(p, token);
    p = append(p, "\x01\x01");
    *out = (unsigned char *)buf;
    *outlen = (size_t)(p - buf);
    return 0;
}

int oauth_step(bool bearer, int step, const char *user, const char *token,
               unsigned char **out, size_t *outlen, bool *final, char *err,
               size_t errlen)
{
    const char *name = bearer ? "OAUTHBEARER" : "XOAUTH2";
    int rc;
    *final = true;
    switch (step) {
    case 0:
        rc = bearer ? oauthbearer_initial(user, token, out, outlen)
                    : xoauth2_initial(user, token, out, outlen);
        break;
    case 1:
        /* The server refused the token and sent a JSON error as a 334
         * challenge. RFC 7628 3.2.3: answer with a single ^A; XOAUTH2
         * expects an empty response. The server then fails the AUTH. */
        rc = bearer ? sasl_out_copy("\x01", 1, out, outlen) : sasl_out_copy("", 0, out, outlen);
        break;
    default:
        sasl_seterr(err, errlen, "%s: unexpected challenge after the error response", name);
        return -1;
    }
    if (rc != 0)
        sasl_seterr(err, errlen, "%s: out of memory", name);
    return rc;
}
