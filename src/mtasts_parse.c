/* MTA-STS record and policy parsers (RFC 8461 3.1, 3.2; spec 20.3, 20.6),
 * MX pattern matching (RFC 8461 4.1; spec 20.8) and the TLSRPT reason of an
 * error (spec 20.10). Pure: no I/O, no global state; every input is read
 * within its length and every output is bounded. */
#include "mtasts.h"
#include "txtrec.h"

#include <arpa/inet.h>
#include <idn2.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* RFC 1035 2.3.4: 253 characters of name text (without the root dot). */
#define MX_NAME_MAX 253


static bool key_is(const cursor *c, size_t start, size_t len, const char *name)
{
    return strlen(name) == len && memcmp(c->s + start, name, len) == 0;
}

/* ------------------------------------------------------------------ */
/* The TXT record (RFC 8461 3.1). */

/* sts-id: 1-32 letters and digits. A longer id leaves characters behind,
 * which the caller reports as leftover (spec 20.3). */
static size_t record_id(cursor *c)
{
    size_t i = 0;
    while (i < 32 && c->o + i < c->n && txt_is_alnum((unsigned char)c->s[c->o + i]))
        i++;
    c->o += i;
    return i;
}

/* sts-ext-value: 1+ of %x21-3A / %x3C / %x3E-7E (no "=", no ";"). */
static size_t record_value(cursor *c)
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

/* One "key=value" of the record. The id is stored on its first occurrence;
 * a repeated id is not consumed and so fails as leftover characters. */
static int record_field(cursor *c, mtasts_record *out, bool *have_id, char *err, size_t errlen)
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
    if (key_is(c, ks, kl, "id")) {
        if (*have_id)
            return 0;
        size_t vs = c->o, vl = record_id(c);
        if (vl == 0) {
            txt_set_err(err, errlen, "missing id");
            return -1;
        }
        memcpy(out->id, c->s + vs, vl);
        out->id[vl] = '\0';
        *have_id = true;
        return 0;
    }
    if (record_value(c) == 0) {
        txt_set_err(err, errlen, "empty value for key %.*s", (int)kl, c->s + ks);
        return -1;
    }
    return 0;
}

int mtasts_record_parse(const char *txt, mtasts_record *out, char *err, size_t errlen)
{
    cursor c = {txt, strlen(txt), 0};
    memset(out, 0, sizeof *out);
    txt_set_err(err, errlen, "%s", "");
    /* RFC 8461 3.1: a string not starting with the version and a delimiter
     * is some other TXT record and is ignored. */
    if (!cur_take(&c, "v=STSv1") || !cur_delim(&c))
        return 1;
    bool have_id = false;
    for (;;) {
        if (record_field(&c, out, &have_id, err, errlen) != 0)
            return -1;
        if (!cur_delim(&c) || cur_at_end(&c))
            break;
    }
    if (!cur_at_end(&c)) {
        txt_set_err(err, errlen, "leftover characters");
        return -1;
    }
    if (!have_id) {
        txt_set_err(err, errlen, "missing id");
        return -1;
    }
    /* raw is informational (probe output): longer strings are cut. */
    snprintf(out->raw, sizeof out->raw, "%s", txt);
    return 0;
}

/* ------------------------------------------------------------------ */
/* The policy (RFC 8461 3.2). */

typedef struct policy_seen {
    bool version, mode, max_age, mx;
} policy_seen;

/* RFC 8461 3.2: max_age is 1-10 digits; we take values that fit a signed
 * 32-bit integer (spec 20.6) and cap them at one year, the maximum the RFC
 * allows (Q18), so a huge value cannot pin a policy forever. */
static int policy_max_age(cursor *c, int64_t *v, char *err, size_t errlen)
{
    size_t i = 0;
    int64_t n = 0;
    while (i < 10 && c->o + i < c->n && c->s[c->o + i] >= '0' && c->s[c->o + i] <= '9')
        n = n * 10 + (c->s[c->o + i++] - '0');
    c->o += i;
    if (i == 0) {
        txt_set_err(err, errlen, "expected max_age digits");
        return -1;
    }
    if (n > INT32_MAX) {
        txt_set_err(err, errlen, "max_age out of range");
        return -1;
    }
    *v = n > 31557600 ? 31557600 : n;
    return 0;
}

static int policy_mode(cursor *c, mtasts_mode *m, char *err, size_t errlen)
{
    /* Exact words; what follows a word is checked as end of line. */
    if (cur_take(c, "testing"))
        *m = MTASTS_MODE_TESTING;
    else if (cur_take(c, "enforce"))
        *m = MTASTS_MODE_ENFORCE;
    else if (cur_take(c, "none"))
        *m = MTASTS_MODE_NONE;
    else {
        txt_set_err(err, errlen, "expected one of testing, enforce, none");
        return -1;
    }
    return 0;
}

/* One label of an mx pattern: letters, digits, "-" not first. Bytes >= 0x80
 * are consumed only to give the RFC 8461 3.2 error about U-labels. */
static int mx_label(cursor *c, char *buf, size_t *len, char *err, size_t errlen)
{
    size_t i = 0;
    bool unicode = false;
    for (; c->o + i < c->n; i++) {
        int ch = (unsigned char)c->s[c->o + i];
        if (ch >= 0x80)
            unicode = true;
        else if (!(txt_is_alnum(ch) || (i > 0 && ch == '-')))
            break;
    }
    if (unicode) {
        txt_set_err(err, errlen, "domain must be specified in A labels, not U labels");
        return -1;
    }
    if (i == 0) {
        txt_set_err(err, errlen, "expected mx domain label");
        return -1;
    }
    if (*len + i + 1 > MX_NAME_MAX) {
        txt_set_err(err, errlen, "mx domain too long");
        return -1;
    }
    memcpy(buf + *len, c->s + c->o, i);
    *len += i;
    buf[*len] = '\0';
    c->o += i;
    return 0;
}

/* Full domain validation with the IDNA2008 lookup rules (spec 20.6, 22.3):
 * A-labels must decode, and the decoded name must encode back to the same
 * A-labels; that also rejects "--" in positions 3-4 and a leading or trailing
 * hyphen. An IP address is not a domain name. */
static int mx_domain_check(char *name, char *err, size_t errlen)
{
    unsigned char ip[16];
    if (inet_pton(AF_INET, name, ip) == 1) {
        txt_set_err(err, errlen, "mx is an IP address, not a domain: %s", name);
        return -1;
    }
    char *u = NULL;
    uint8_t *a = NULL;
    int rc = idn2_to_unicode_8z8z(name, &u, 0);
    if (rc == IDN2_OK)
        rc = idn2_lookup_u8((const uint8_t *)u, &a, IDN2_NONTRANSITIONAL);
    bool same = rc == IDN2_OK && strcasecmp((const char *)a, name) == 0;
    free(u);
    idn2_free(a);
    if (!same) {
        txt_set_err(err, errlen, "invalid mx domain %s: %s", name,
                rc == IDN2_OK ? "not in canonical form" : idn2_strerror(rc));
        return -1;
    }
    for (char *p = name; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return 0;
}

/* RFC 8461 3.2: sts-policy-mx-value = ["*."] Domain, stored lowercase with
 * the "*." kept. */
static int policy_mx(cursor *c, mtasts_policy *out, char *err, size_t errlen)
{
    char buf[MX_NAME_MAX + 3] = "";
    size_t len = 0;
    if (cur_take(c, "*.")) {
        memcpy(buf, "*.", 3);
        len = 2;
    }
    size_t start = len;
    if (mx_label(c, buf, &len, err, errlen) != 0)
        return -1;
    while (cur_take(c, ".")) {
        buf[len++] = '.';
        if (mx_label(c, buf, &len, err, errlen) != 0)
            return -1;
    }
    if (mx_domain_check(buf + start, err, errlen) != 0)
        return -1;
    if (out->nmx >= MTASTS_MAX_MX) {
        txt_set_err(err, errlen, "too many mx lines (at most %d)", MTASTS_MAX_MX);
        return -1;
    }
    out->mx[out->nmx] = strdup(buf);
    if (!out->mx[out->nmx]) {
        txt_set_err(err, errlen, "out of memory");
        return -1;
    }
    out->nmx++;
    return 0;
}

/* sts-policy-ext-value: visible ASCII or UTF-8, spaces inside; trailing
 * spaces are not part of it. The value is checked but not stored. */
static int policy_ext_value(cursor *c, char *err, size_t errlen)
{
    size_t i = 0;
    for (; c->o + i < c->n; i++) {
        int ch = (unsigned char)c->s[c->o + i];
        if (!((ch > ' ' && ch < 0x7f) || ch >= 0x80 || (ch == ' ' && i > 0)))
            break;
    }
    while (i > 0 && c->s[c->o + i - 1] == ' ')
        i--;
    if (i == 0) {
        txt_set_err(err, errlen, "empty extension value");
        return -1;
    }
    c->o += i;
    return 0;
}

/* One "key: value" line (without its terminator). For every key but mx only
 * the first occurrence counts (RFC 8461 3.2), though each must be valid. */
static int policy_field(cursor *c, mtasts_policy *out, policy_seen *seen, char *err,
                        size_t errlen)
{
    size_t ks = c->o, kl = cur_key(c);
    if (kl == 0) {
        txt_set_err(err, errlen, "expected key");
        return -1;
    }
    if (!cur_take(c, ":")) {
        txt_set_err(err, errlen, "expected \":\"");
        return -1;
    }
    cur_wsp(c);
    if (key_is(c, ks, kl, "version")) {
        seen->version = true;
        if (cur_take(c, "STSv1"))
            return 0;
        txt_set_err(err, errlen, "expected \"STSv1\"");
        return -1;
    }
    if (key_is(c, ks, kl, "mode")) {
        mtasts_mode m;
        if (policy_mode(c, &m, err, errlen) != 0)
            return -1;
        if (!seen->mode)
            out->mode = m;
        seen->mode = true;
        return 0;
    }
    if (key_is(c, ks, kl, "max_age")) {
        int64_t v;
        if (policy_max_age(c, &v, err, errlen) != 0)
            return -1;
        if (!seen->max_age)
            out->max_age = v;
        seen->max_age = true;
        return 0;
    }
    if (key_is(c, ks, kl, "mx")) {
        seen->mx = true;
        return policy_mx(c, out, err, errlen);
    }
    return policy_ext_value(c, err, errlen);
}

/* RFC 8461 3.2: lines end in LF or CRLF. */
static bool eol(cursor *c)
{
    return cur_take(c, "\n") || cur_take(c, "\r\n");
}

static int policy_required(const mtasts_policy *out, const policy_seen *seen, char *err,
                           size_t errlen)
{
    const char *missing = !seen->version ? "version"
                          : !seen->mode  ? "mode"
                          : !seen->max_age ? "max_age"
                                           : NULL;
    if (missing) {
        txt_set_err(err, errlen, "missing field \"%s\"", missing);
        return -1;
    }
    if (!seen->mx && out->mode != MTASTS_MODE_NONE) {
        txt_set_err(err, errlen, "missing mx given mode");
        return -1;
    }
    return 0;
}

int mtasts_policy_parse(const char *text, size_t len, mtasts_policy *out, char *err,
                        size_t errlen)
{
    cursor c = {text, len, 0};
    policy_seen seen = {0};
    memset(out, 0, sizeof *out);
    txt_set_err(err, errlen, "%s", "");
    if (len > MTASTS_MAX_POLICY) {
        txt_set_err(err, errlen, "input exceeds maximum size");
        return -1;
    }
    for (;;) {
        if (policy_field(&c, out, &seen, err, errlen) != 0)
            goto fail;
        cur_wsp(&c);
        /* The last line's terminator is optional; an empty line is not a field. */
        if (!eol(&c) || cur_at_end(&c))
            break;
    }
    if (!cur_at_end(&c)) {
        txt_set_err(err, errlen, "leftover characters");
        goto fail;
    }
    if (policy_required(out, &seen, err, errlen) != 0)
        goto fail;
    return 0;
fail:
    mtasts_policy_free(out);
    return -1;
}

void mtasts_policy_free(mtasts_policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nmx && i < MTASTS_MAX_MX; i++)
        free(p->mx[i]);
    memset(p, 0, sizeof *p);
}

int mtasts_policy_copy(mtasts_policy *dst, const mtasts_policy *src)
{
    memset(dst, 0, sizeof *dst);
    dst->mode = src->mode;
    dst->max_age = src->max_age;
    for (size_t i = 0; i < src->nmx && i < MTASTS_MAX_MX; i++) {
        dst->mx[i] = strdup(src->mx[i]);
        if (!dst->mx[i]) {
            mtasts_policy_free(dst);
            return -1;
        }
        dst->nmx = i + 1;
    }
    return 0;
}

/* RFC 8461 4.1: "*.example.com" stands for exactly one label. */
static bool mx_pattern_match(const char *pat, const char *host, size_t hostlen)
{
    if (pat[0] == '*' && pat[1] == '.') {
        const char *dot = memchr(host, '.', hostlen);
        if (!dot || dot == host)
            return false;
        size_t rest = hostlen - (size_t)(dot + 1 - host);
        return strlen(pat + 2) == rest && strncasecmp(pat + 2, dot + 1, rest) == 0;
    }
    return strlen(pat) == hostlen && strncasecmp(pat, host, hostlen) == 0;
}

bool mtasts_mx_match(const mtasts_policy *p, const char *host)
{
    size_t hostlen = strlen(host);
    if (hostlen > 0 && host[hostlen - 1] == '.')
        hostlen--; /* an absolute name is the same host */
    for (size_t i = 0; i < p->nmx && i < MTASTS_MAX_MX; i++)
        if (p->mx[i] && mx_pattern_match(p->mx[i], host, hostlen))
            return true;
    return false;
}

const char *mtasts_mode_name(mtasts_mode m)
{
    switch (m) {
    case MTASTS_MODE_TESTING:
        return "testing";
    case MTASTS_MODE_ENFORCE:
        return "enforce";
    case MTASTS_MODE_NONE:
        return "none";
    }
    return "none";
}

/* Spec 20.10/20.11: the sentinel texts without "mtasts: ", spaces as dashes. */
const char *mtasts_err_reason(mtasts_err e)
{
    switch (e) {
    case MTASTS_OK:
        return "";
    case MTASTS_ERR_NO_RECORD:
        return "no-mta-sts-dns-txt-record";
    case MTASTS_ERR_MULTIPLE:
        return "multiple-mta-sts-records";
    case MTASTS_ERR_DNS:
        return "dns-lookup";
    case MTASTS_ERR_RECORD_SYNTAX:
        return "record-syntax-error";
    case MTASTS_ERR_NO_POLICY:
        return "no-policy-served";
    case MTASTS_ERR_FETCH:
        return "cannot-fetch-policy";
    case MTASTS_ERR_POLICY_SYNTAX:
        return "policy-syntax-error";
    }
    return "";
}
