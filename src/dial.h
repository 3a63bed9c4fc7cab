/* Connecting to one of several addresses of a host: RFC 8305 Happy
 * Eyeballs, so a dead address costs a short delay, not a whole timeout. */
#ifndef SMTPC_DIAL_H
#define SMTPC_DIAL_H

#include <stddef.h>
#include <stdint.h>

#define DIAL_MAX_PARALLEL 8
#define DIAL_STAGGER_MS 250 /* RFC 8305 5: Connection Attempt Delay */

typedef struct dial_result {
    int fd;               /* connected, non-blocking; -1 on failure */
    char ip[64];          /* the address that answered (or the last one tried) */
    int err_no;
    char msg[256];
} dial_result;

/* Tries ips in order, starting the next attempt DIAL_STAGGER_MS after the
 * previous one (or at once when it failed), each bounded by timeout_ms. The
 * local address of the destination's family among local_ips is bound first.
 * Returns 0 with out->fd connected, -1 with out->msg (Q15: no address is an
 * error too). */
int dial_happy(char (*ips)[64], size_t nips, uint16_t port, char *const *local_ips,
               size_t nlocal, int timeout_ms, dial_result *out);

#endif
