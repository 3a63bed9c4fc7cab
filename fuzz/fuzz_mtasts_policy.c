/* MTA-STS policy body (mtasts_policy_parse, RFC 8461 3.2), the whole input
 * with its length (NULs included). Invariants: a valid policy has a known
 * mode, max_age within 0..one year, at most MTASTS_MAX_MX non-empty MX
 * patterns (and at least one unless mode none), a copy equal to it, and
 * each pattern matches a host of its own form; an invalid one is left
 * empty with an error message. */
#include "fuzz.h"

#include "mtasts.h"

static void check_policy(const mtasts_policy *p)
{
    FZ_ASSERT(p->mode == MTASTS_MODE_NONE || p->mode == MTASTS_MODE_TESTING ||
              p->mode == MTASTS_MODE_ENFORCE);
    FZ_ASSERT(p->max_age >= 0 && p->max_age <= 31557600);
    FZ_ASSERT(p->nmx <= MTASTS_MAX_MX);
    FZ_ASSERT(p->mode == MTASTS_MODE_NONE || p->nmx > 0);
    for (size_t i = 0; i < p->nmx; i++) {
        const char *mx = p->mx[i];
        FZ_ASSERT(mx != NULL && mx[0] != '\0' && strlen(mx) <= 255);
        for (const char *q = mx; *q; q++)
            FZ_ASSERT((unsigned char)*q > 0x20 && (unsigned char)*q < 0x7f);
        char host[300];
        if (mx[0] == '*' && mx[1] == '.')
            snprintf(host, sizeof host, "a%s", mx + 1);
        else
            snprintf(host, sizeof host, "%s", mx);
        FZ_ASSERT(mtasts_mx_match(p, host));
        strcat(host, ".");
        FZ_ASSERT(mtasts_mx_match(p, host));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size copy so reads past the length are caught */
    char *text = malloc(size ? size : 1);
    FZ_ASSERT(text != NULL);
    memcpy(text, data, size);
    mtasts_policy p, q;
    char err[128];
    int rc = mtasts_policy_parse(text, size, &p, err, sizeof err);
    FZ_ASSERT(rc == 0 || rc == -1);
    FZ_ASSERT(fz_bounded_str(err, sizeof err - 1));
    if (rc == 0) {
        FZ_ASSERT(err[0] == '\0');
        check_policy(&p);
        FZ_ASSERT(mtasts_policy_copy(&q, &p) == 0);
        FZ_ASSERT(q.mode == p.mode && q.max_age == p.max_age && q.nmx == p.nmx);
        for (size_t i = 0; i < p.nmx; i++)
            FZ_ASSERT(strcmp(q.mx[i], p.mx[i]) == 0);
        mtasts_policy_free(&q);
        (void)mtasts_mx_match(&p, "");
        (void)mtasts_mx_match(&p, ".");
        (void)mtasts_mx_match(&p, "*.");
        FZ_ASSERT(strlen(mtasts_mode_name(p.mode)) > 0);
    } else {
        FZ_ASSERT(err[0] != '\0');
        FZ_ASSERT(p.nmx == 0);
    }
    mtasts_policy_free(&p);
    free(text);
    return 0;
}
