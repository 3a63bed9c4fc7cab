/* EHLO reply interpretation (ehlo_parse in src/ehlo.c). The input's lines
 * (split at LF) become the texts of a 250 reply, line 0 being the server's
 * name. Invariants: keywords uppercased and bounded, AUTH list bounded and
 * clean, LIMITS values in range; parsing again gives the same result;
 * sasl_choose only picks a mechanism the server listed. */
#include "fuzz.h"

#include <strings.h>

#include "ehlo.h"
#include "sasl.h"
#include "smtpc.h"

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static void build(const uint8_t *p, size_t n, reply *r)
{
    memset(r, 0, sizeof *r);
    r->code = 250;
    r->lines = calloc(REPLY_MAX_LINES, sizeof *r->lines);
    FZ_ASSERT(r->lines != NULL);
    size_t off = 0;
    while (r->nlines < REPLY_MAX_LINES && (off < n || r->nlines == 0)) {
        const uint8_t *lf = memchr(p + off, '\n', n - off);
        size_t len = lf ? (size_t)(lf - (p + off)) : n - off;
        if (len > REPLY_MAX_LINE - 5)
            len = REPLY_MAX_LINE - 5;
        char *l = malloc(len + 5);
        FZ_ASSERT(l != NULL);
        memcpy(l, "250-", 4);
        memcpy(l + 4, p + off, len);
        l[len + 4] = '\0';
        r->lines[r->nlines++] = l;
        off += len + (lf && (size_t)(lf - (p + off)) == len ? 1 : 0);
    }
    r->lines[r->nlines - 1][3] = ' ';
}

static void check(const reply *r, const ehlo_info *e)
{
    FZ_ASSERT(e->nkeywords < r->nlines);
    for (size_t i = 0; i < e->nkeywords; i++) {
        const char *k = e->keywords[i];
        FZ_ASSERT(k != NULL && k[0] != '\0' && !is_space(k[0]));
        for (const char *q = k; *q && *q != ' '; q++)
            FZ_ASSERT(!(*q >= 'a' && *q <= 'z'));
        size_t len = strlen(k);
        FZ_ASSERT(len < REPLY_MAX_LINE && !is_space(k[len - 1]));
    }
    FZ_ASSERT(e->nauth <= EHLO_MAX_AUTH_MECHS);
    FZ_ASSERT(e->nauth == 0 || (e->ext & SMTPC_EXT_AUTH));
    for (size_t i = 0; i < e->nauth; i++) {
        const char *a = e->auth[i];
        FZ_ASSERT(a != NULL && a[0] != '\0');
        for (const char *q = a; *q; q++)
            FZ_ASSERT(!is_space(*q) && !(*q >= 'a' && *q <= 'z'));
    }
    FZ_ASSERT(e->nlimits <= LIMITS_MAX_PAIRS);
    FZ_ASSERT(e->nlimits == 0 || (e->ext & SMTPC_EXT_LIMITS));
    for (size_t i = 0; i < e->nlimits; i++) {
        FZ_ASSERT(e->limit_names[i][0] != '\0' && e->limit_values[i][0] != '\0');
        for (size_t j = 0; j < i; j++)
            FZ_ASSERT(strcmp(e->limit_names[i], e->limit_names[j]) != 0);
    }
    FZ_ASSERT(e->mailmax >= 0 && e->mailmax <= 999999);
    FZ_ASSERT(e->rcptmax >= 0 && e->rcptmax <= 999999);
    FZ_ASSERT(e->rcptdomainmax >= 0 && e->rcptdomainmax <= 999999);
    FZ_ASSERT(e->max_size >= 0);
    FZ_ASSERT((e->ext & ~0x1ffu) == 0);
}

static int same(const ehlo_info *a, const ehlo_info *b)
{
    if (a->ext != b->ext || a->max_size != b->max_size || a->nkeywords != b->nkeywords ||
        a->nauth != b->nauth || a->nlimits != b->nlimits || a->mailmax != b->mailmax ||
        a->rcptmax != b->rcptmax || a->rcptdomainmax != b->rcptdomainmax)
        return 0;
    for (size_t i = 0; i < a->nkeywords; i++)
        if (strcmp(a->keywords[i], b->keywords[i]) != 0)
            return 0;
    for (size_t i = 0; i < a->nauth; i++)
        if (strcmp(a->auth[i], b->auth[i]) != 0)
            return 0;
    return 1;
}

static void check_choose(const ehlo_info *e)
{
    static const unsigned char cbdata[32] = {1, 2, 3};
    const sasl_cb cb = {"tls-exporter", cbdata, sizeof cbdata};
    const sasl_creds pw = {"user", "secret", NULL}, tok = {"user", NULL, "token"};
    const sasl_creds *creds[] = {&pw, &tok};
    for (size_t k = 0; k < 2; k++) {
        for (int withcb = 0; withcb < 2; withcb++) {
            const char *m = sasl_choose("auto", e->auth, e->nauth, creds[k], withcb ? &cb : NULL);
            if (m == NULL)
                continue;
            int offered = 0;
            for (size_t i = 0; i < e->nauth; i++)
                offered |= strcasecmp(e->auth[i], m) == 0;
            FZ_ASSERT(offered);
            if (!withcb)
                FZ_ASSERT(strstr(m, "-PLUS") == NULL);
        }
    }
    /* asking for a listed mechanism by name ("auto" is no name) */
    for (size_t i = 0; i < e->nauth && i < 4; i++) {
        if (strcasecmp(e->auth[i], "auto") == 0)
            continue;
        const char *m = sasl_choose(e->auth[i], e->auth, e->nauth, &pw, &cb);
        FZ_ASSERT(m == NULL || strcasecmp(m, e->auth[i]) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reply r;
    build(data, size, &r);
    ehlo_info a, b;
    if (ehlo_parse(&r, &a) != 0)
        abort(); /* only out of memory fails */
    check(&r, &a);
    FZ_ASSERT(ehlo_parse(&r, &b) == 0);
    FZ_ASSERT(same(&a, &b));
    check_choose(&a);
    ehlo_info_free(&a);
    ehlo_info_free(&b);
    FZ_ASSERT(a.nkeywords == 0 && a.keywords == NULL);
    reply_free(&r);
    return 0;
}
