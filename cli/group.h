/* Recipients of `smtpc deliver` grouped by domain: one delivery attempt per
 * domain (issue 3). Pure: no library calls, unit tested. */
#ifndef SMTPC_CLI_GROUP_H
#define SMTPC_CLI_GROUP_H

#include <stddef.h>

#include "clierr.h"

struct cli_rcpt_group {
    /* The domain as given to smtpc_deliver: a domain name with ASCII letters
     * lower-cased, or an address literal ("[192.0.2.1]") as first seen. */
    char *domain;
    const char **rcpt; /* borrowed from the caller's list, in the order given */
    size_t n, cap;
};

struct cli_groups {
    struct cli_rcpt_group *g; /* in order of each domain's first recipient */
    size_t n;
};

/* Groups addrs by their domain part (after the last '@'), compared without
 * regard to ASCII case. An address without a domain is a usage error. */
int cli_group_by_domain(const char *const *addrs, size_t n, struct cli_groups *out,
                        struct cli_err *err);
void cli_groups_free(struct cli_groups *gs);

#endif
