/* Placeholder until the ldns backend lands (being written). */
#include <stdio.h>

#include "dns_backend.h"

dns_resolver *dns_ldns_new(const dns_config *cfg, char *err, size_t errlen)
{
    (void)cfg;
    snprintf(err, errlen, "the ldns DNS backend is not built yet");
    return NULL;
}
