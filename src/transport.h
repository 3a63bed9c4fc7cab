/* Non-blocking TCP connection, optionally with TLS on top. */
#ifndef SMTPC_TRANSPORT_H
#define SMTPC_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <netdb.h>

#include "tls.h"

typedef enum { TR_OK = 0, TR_WANT_READ, TR_WANT_WRITE, TR_EOF, TR_ERR } tr_status;

typedef struct transport {
    int fd;
    tls_conn *tls;
    char local_ip[64], peer_ip[64];
    int err_no;
    char errmsg[256];
    /* Connecting. */
    struct addrinfo *ai, *ai_next;
    bool connecting;
    char local_bind[64];
} transport;

void transport_init(transport *t);
void transport_close(transport *t);
/* Takes over a connected socket. */
int transport_attach(transport *t, int fd);
/* Resolves host and starts connecting to its first address. Returns -1 with
 * errmsg when the name does not resolve or no address can be tried (err_no
 * ENOMEM when the resolver ran out of memory). */
int transport_connect_start(transport *t, const char *host, uint16_t port, const char *local_ip);
/* Continues a connect: TR_OK connected, TR_WANT_WRITE in progress, TR_ERR
 * every address failed. next_address moves on after a per-address timeout. */
tr_status transport_connect_step(transport *t);
tr_status transport_connect_next(transport *t);

tr_status transport_read(transport *t, char *buf, size_t len, size_t *n);
tr_status transport_write(transport *t, const char *buf, size_t len, size_t *n);

#endif
