/* Grouping recipients by domain. */
#include "group.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The domain part of addr (after the last '@': a quoted local part may hold
 * '@', a domain never does), or NULL when there is none. */
static const char *domain_of(const char *addr)
{
    const char *at = strrchr(addr, '@');
    if (at == NULL || at == addr || at[1] == '\0')
        return NULL;
    const char *d = at + 1;
    size_t len = strlen(d);
    /* RFC 5321 4.1.3: an address literal is bracketed as a whole. */
    if (d[0] == '[' && (len < 3 || d[len - 1] != ']' || strchr(d + 1, '[') != NULL))
        return NULL;
    if (d[0] != '[' && strpbrk(d, "[]") != NULL)
        return NULL;
    return d;
}

/* Domain names are compared and passed on in lower case (RFC 4343); the
 * literal keeps its spelling, its tag ("IPv6:") is the library's to parse. */
static char *group_key(const char *d)
{
    char *k = strdup(d);
    if (k == NULL || d[0] == '[')
        return k;
    for (char *p = k; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return k;
}

static struct cli_rcpt_group *find_group(struct cli_groups *gs, const char *d)
{
    for (size_t i = 0; i < gs->n; i++)
        if (strcasecmp(gs->g[i].domain, d) == 0)
            return &gs->g[i];
    return NULL;
}

/* A new, empty group at the end (gs->g has room for every address). */
static struct cli_rcpt_group *new_group(struct cli_groups *gs, const char *d)
{
    struct cli_rcpt_group *g = &gs->g[gs->n];
    *g = (struct cli_rcpt_group){.domain = group_key(d)};
    if (g->domain == NULL)
        return NULL;
    gs->n++;
    return g;
}

static int push(struct cli_rcpt_group *g, const char *addr)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 4;
        const char **v = realloc(g->rcpt, cap * sizeof *v);
        if (v == NULL)
            return -1;
        g->rcpt = v;
        g->cap = cap;
    }
    g->rcpt[g->n++] = addr;
    return 0;
}

static int add(struct cli_groups *gs, const char *addr, struct cli_err *err)
{
    const char *d = domain_of(addr);
    if (d == NULL)
        return cli_err_set(err, CLI_EX_USAGE, "recipient \"%s\" has no usable domain", addr);
    struct cli_rcpt_group *g = find_group(gs, d);
    if (g == NULL)
        g = new_group(gs, d);
    if (g == NULL || push(g, addr) != 0)
        return cli_err_set(err, CLI_EX_CONFIG, "out of memory");
    return 0;
}

int cli_group_by_domain(const char *const *addrs, size_t n, struct cli_groups *out,
                        struct cli_err *err)
{
    out->n = 0;
    out->g = calloc(n > 0 ? n : 1, sizeof *out->g);
    if (out->g == NULL)
        return cli_err_set(err, CLI_EX_CONFIG, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (add(out, addrs[i], err) != 0) {
            cli_groups_free(out);
            return -1;
        }
    }
    return 0;
}

void cli_groups_free(struct cli_groups *gs)
{
    for (size_t i = 0; gs->g != NULL && i < gs->n; i++) {
        free(gs->g[i].domain);
        free(gs->g[i].rcpt);
    }
    free(gs->g);
    gs->g = NULL;
    gs->n = 0;
}
