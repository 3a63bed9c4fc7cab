/* The session handle: configuration copy, protocol core, transport, and the
 * non-blocking driver that connects them. */
#ifndef SMTPC_SESSION_H
#define SMTPC_SESSION_H

#include "core.h"
#include "transport.h"

#define READ_BUF_SIZE (16 * 1024)
#define SESSION_MAX_CHAIN 8

typedef enum { OP_NONE = 0, OP_CONNECT, OP_OPEN, OP_SEND, OP_RSET, OP_QUIT } session_op;

struct smtpc_session {
    smtpc_config cfg;
    core core;
    transport tr;
    smtpc_tlsrpt rpt_rcpt, rpt_host;
    char *host;                /* as given to connect/attach */
    session_op op;
    bool tls_started;
    int64_t deadline_ms;       /* of the current stage */
    uint64_t seen_progress;
    smtpc_timeout_stage seen_stage;
    char tls_version[32], tls_cipher[96];
    char *dane_record;
    bool pkix_verified;
    char (*chain)[TLS_CHAIN_LINE]; /* peer certificates, leaf first */
    size_t nchain;
    char rbuf[READ_BUF_SIZE];
    size_t rlen;
};

int64_t session_now_ms(void);

#endif
