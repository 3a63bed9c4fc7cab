/* Placeholder until the unbound backend lands (being written). */
#include <stdio.h>

#include "dns_backend.h"

dns_resolver *dns_unbound_new(const dns_config *cfg, char *err, size_t errlen)
{
    (void)cfg;
    snprintf(err, errlen, "the unbound DNS backend is not built yet");
    return NULL;
}
