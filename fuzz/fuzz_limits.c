/* RFC 9422 LIMITS parameters (limits_parse in src/ehlo.c). The input is the
 * text after the keyword. Invariants: an accepted list spells the input
 * back exactly (" NAME=value" pairs, names case-insensitive), names are
 * unique, the known limits are 0 or the 1-6 digit value. */
#include "fuzz.h"

#include <strings.h>

#include "ehlo.h"
#include "smtpc.h"

static int known(const ehlo_info *e, const char *name)
{
    if (strcmp(name, "MAILMAX") == 0)
        return e->mailmax;
    if (strcmp(name, "RCPTMAX") == 0)
        return e->rcptmax;
    if (strcmp(name, "RCPTDOMAINMAX") == 0)
        return e->rcptdomainmax;
    return -1;
}

static int expected_value(const char *v)
{
    size_t n = strlen(v);
    if (n < 1 || n > 6 || strspn(v, "0123456789") != n)
        return 0;
    return atoi(v);
}

static void check(const char *in, const ehlo_info *e)
{
    FZ_ASSERT(e->nlimits <= LIMITS_MAX_PAIRS);
    if (!(e->ext & SMTPC_EXT_LIMITS)) {
        FZ_ASSERT(e->nlimits == 0 && e->mailmax == 0 && e->rcptmax == 0 &&
                  e->rcptdomainmax == 0);
        return;
    }
    const char *p = in;
    for (size_t i = 0; i < e->nlimits; i++) {
        const char *name = e->limit_names[i], *val = e->limit_values[i];
        size_t nl = strlen(name), vl = strlen(val);
        FZ_ASSERT(nl > 0 && vl > 0);
        FZ_ASSERT(strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == nl);
        for (const char *q = val; *q; q++)
            FZ_ASSERT(*q >= 0x21 && *q <= 0x7e && *q != ';');
        for (size_t j = 0; j < i; j++)
            FZ_ASSERT(strcmp(name, e->limit_names[j]) != 0);
        FZ_ASSERT(p[0] == ' ' && strncasecmp(p + 1, name, nl) == 0 && p[1 + nl] == '=');
        FZ_ASSERT(strncmp(p + 2 + nl, val, vl) == 0);
        p += 2 + nl + vl;
        int k = known(e, name);
        if (k >= 0)
            FZ_ASSERT(k == expected_value(val));
    }
    FZ_ASSERT(*p == '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fz_strndup(data, size);
    ehlo_info e;
    memset(&e, 0, sizeof e);
    FZ_ASSERT(limits_parse(s, &e) == 0);
    check(s, &e);
    /* a second parse replaces the first (no leak, same result) */
    size_t n = e.nlimits;
    FZ_ASSERT(limits_parse(s, &e) == 0);
    check(s, &e);
    FZ_ASSERT(e.nlimits == n);
    ehlo_info_free(&e);
    free(s);
    return 0;
}
