/* The TLSRPT policy record (RFC 8460 3; spec 23.10) and its lookup at
 * "_smtp._tls.DOMAIN." (spec 23.11). The parser is pure and bounded. */
#include "mtasts.h"
#include "txtrec.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* tlsrpt-ext-value: %x21-3A / %x3C / %x3E-7E. */
static size_t ext_value(cursor *c)
{
    size_t i = 0;
    while (c->o + i < c->n) {
        int ch = (unsigned char)c->s[c->o + i];
        if (ch <= ' ' || ch >= 0x7f || ch == '=' || ch == ';')
            break;
        i++;
    }
    c->o += i;
    return i;
}

/* A URI of rua must have a scheme (RFC 3986 3.1), no control characters and
 * only complete percent escapes. */
static bool uri_valid(const char *u, size_t len)
{
    size_t i = 0;
    if (len == 0 || !isalpha((unsigned char)u[0]))
        return false;
    while (i < len && (isalnum((unsigned char)u[i]) || u[i] == '+' || u[i] == '-' || u[i] == '.'))
        i++;
    if (i >= len || u[i] != ':')
        return false;
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)u[i];
        if (ch < 0x21 || ch == 0x7f)
            return false;
        if (ch == '%' && (i + 2 >= len || !isxdigit((unsigned char)u[i + 1]) ||
                          !isxdigit((unsigned char)u[i + 2])))
            return false;
    }
    return true;
}

/* RFC 8460 3: tlsrpt-uri, up to ",", "!", WSP or ";". Stored while there is
 * room (TLSRPT_MAX_RUA); further URIs are checked but dropped. */
static int rua_uri(cursor *c, tlsrpt_record *out, char *err, size_t errlen)
{
    size_t i = 0;
    while (c->o + i < c->n) {
        char ch = c->s[c->o + i];
        if (ch == ',' || ch == '!' || ch == ' ' || ch == '\t' || ch == ';')
            break;
        i++;
    }
    if (i == 0) {
        txt_set_err(err, errlen, "empty rua uri");
        return -1;
    }
    if (!uri_valid(c->s + c->o, i)) {
        txt_set_err(err, errlen, "invalid rua uri %.*s", (int)(i > 200 ? 200 : i), c->s + c->o);
        return -1;
    }
    if (out->nrua < TLSRPT_MAX_RUA) {
        out->rua[out->nrua] = strndup(c->s + c->o, i);
        if (!out->rua[out->nrua]) {
            txt_set_err(err, errlen, "out of memory");
            return -1;
        }
        out->nrua++;
    }
    c->o += i;
    return 0;
}

/* tlsrpt-rua = "rua=" uri *(*WSP "," *WSP uri). */
static int rua_list(cursor *c, tlsrpt_record *out, bool *have_rua, char *err, size_t errlen)
{
    if (rua_uri(c, out, err, errlen) != 0)
        return -1;
    *have_rua = true;
    for (;;) {
        cur_wsp(c); /* whitespace after a URI is part of the list */
        if (!cur_take(c, ","))
            return 0;
        cur_wsp(c);
        if (rua_uri(c, out, err, errlen) != 0)
            return -1;
    }
}

static int record_field(cursor *c, tlsrpt_record *out, bool *have_rua, char *err,
                        size_t errlen)
{
    size_t ks = c->o, kl = cur_key(c);
    if (kl == 0) {
        txt_set_err(err, errlen, "expected key");
        return -1;
    }
    if (!cur_take(c, "=")) {
        txt_set_err(err, errlen, "expected \"=\"");
        return -1;
    }
    if (kl == 3 && memcmp(c->s + ks, "rua", 3) == 0)
        return rua_list(c, out, have_rua, err, errlen); /* rua may repeat */
    if (ext_value(c) == 0) {
        txt_set_err(err, errlen, "empty value for key %.*s", (int)kl, c->s + ks);
        return -1;
    }
    return 0;
}

int tlsrpt_record_parse(const char *txt, tlsrpt_record *out, char *err, size_t errlen)
{
    cursor c = {txt, strlen(txt), 0};
    bool have_rua = false;
    memset(out, 0, sizeof *out);
    txt_set_err(err, errlen, "%s", "");
    if (!cur_take(&c, "v=TLSRPTv1") || !cur_delim(&c))
        return 1; /* some other TXT record */
    for (;;) {
        if (record_field(&c, out, &have_rua, err, errlen) != 0)
            goto fail;
        if (!cur_delim(&c) || c.o >= c.n)
            break;
    }
    if (c.o < c.n) {
        txt_set_err(err, errlen, "leftover characters");
        goto fail;
    }
    if (!have_rua) {
        txt_set_err(err, errlen, "missing rua");
        goto fail;
    }
    snprintf(out->raw, sizeof out->raw, "%s", txt);
    return 0;
fail:
    tlsrpt_record_free(out);
    return -1;
}

void tlsrpt_record_free(tlsrpt_record *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nrua && i < TLSRPT_MAX_RUA; i++)
        free(r->rua[i]);
    memset(r, 0, sizeof *r);
}

/* "_smtp._tls." + domain + "." for an ASCII domain (a trailing dot allowed). */
static int lookup_name(const char *domain, char *buf, size_t len)
{
    size_t n = strlen(domain);
    if (n > 0 && domain[n - 1] == '.')
        n--;
    if (n == 0 || n > 253)
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)domain[i] <= ' ' || (unsigned char)domain[i] >= 0x7f)
            return -1; /* callers pass the A-label form */
    int w = snprintf(buf, len, "_smtp._tls.%.*s.", (int)n, domain);
    return w < 0 || (size_t)w >= len ? -1 : 0;
}

/* Picks the one TLSRPT record among the TXT strings (spec 23.11). */
static int pick_record(const dns_answer *a, tlsrpt_record *out, char *err, size_t errlen)
{
    bool found = false;
    for (size_t i = 0; i < a->n; i++) {
        tlsrpt_record rec;
        char perr[200];
        int rc = tlsrpt_record_parse(a->text[i], &rec, perr, sizeof perr);
        if (rc == 1)
            continue;
        if (rc < 0) {
            txt_set_err(err, errlen, "tlsrpt: record syntax error: %s", perr);
            goto fail;
        }
        if (found) {
            tlsrpt_record_free(&rec);
            txt_set_err(err, errlen, "tlsrpt: multiple tlsrpt records");
            goto fail;
        }
        *out = rec;
        found = true;
    }
    if (found)
        return 0;
    txt_set_err(err, errlen, "tlsrpt: no tlsrpt dns txt record");
    return 1;
fail:
    tlsrpt_record_free(out);
    return -1;
}

int tlsrpt_record_lookup(dns_resolver *r, const char *domain, tlsrpt_record *out, char *err,
                         size_t errlen)
{
    char name[300];
    dns_answer a;
    memset(out, 0, sizeof *out);
    if (lookup_name(domain, name, sizeof name) != 0) {
        txt_set_err(err, errlen, "tlsrpt: dns lookup: invalid domain");
        return -1;
    }
    if (dns_lookup(r, name, DNS_T_TXT, &a) != 0) {
        txt_set_err(err, errlen, "tlsrpt: dns lookup: out of memory");
        return -1;
    }
    int rc;
    if (a.sec != DNS_BOGUS && dns_not_found(&a)) {
        txt_set_err(err, errlen, "tlsrpt: no tlsrpt dns txt record");
        rc = 1;
    } else if (a.status != DNS_OK || a.sec == DNS_BOGUS) {
        txt_set_err(err, errlen, "tlsrpt: dns lookup: %s", a.why[0] ? a.why : "dnssec bogus");
        rc = -1;
    } else {
        rc = pick_record(&a, out, err, errlen);
    }
    dns_answer_free(&a);
    return rc;
}
