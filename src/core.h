/* The SMTP protocol core: a state machine that takes the server's bytes and
 * produces the client's bytes and events. It never touches a socket, TLS,
 * DNS or the clock; the driver (session.c) does, and tells the core what
 * happened (EOF, write failure, TLS up). */
#ifndef SMTPC_CORE_H
#define SMTPC_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dotstuff.h"
#include "ehlo.h"
#include "internal.h"
#include "reply.h"
#include "sasl.h"
#include "tlsrpt.h"

typedef enum {
    CS_IDLE = 0,
    CS_TLS_WAIT,      /* the driver must run a TLS handshake (implicit or STARTTLS) */
    CS_GREETING,
    CS_EHLO,
    CS_HELO,
    CS_STARTTLS,
    CS_AUTH,
    CS_AUTH_ABORT,
    CS_RSET,          /* RSET, then the transaction when one is queued */
    CS_MAIL,          /* non-pipelined transaction steps */
    CS_RCPT,
    CS_DATA,
    CS_PIPELINE,      /* MAIL, RCPTs and DATA in flight */
    CS_DOT_EMPTY,     /* pipelined, no recipient accepted, "." sent after 354 */
    CS_BODY,          /* sending the message */
    CS_DATA_END,      /* waiting for the reply to the final dot */
    CS_QUIT,
    CS__COUNT
} core_state;

typedef enum {
    CORE_EV_NONE = 0,  /* keep doing I/O */
    CORE_EV_TLS,       /* run the TLS handshake, then core_tls_up / core_tls_failed */
    CORE_EV_DONE,      /* the operation succeeded */
    CORE_EV_FAILED,    /* the operation failed; see core_op_error */
} core_event;

/* One command whose reply is awaited: the pipelining FIFO is data. */
typedef struct inflight {
    smtpc_command cmd;
    size_t idx;        /* recipient index for RCPT */
    uint64_t out_end;  /* the command is sent once this many bytes were written */
} inflight;

typedef struct core {
    const smtpc_config *cfg;   /* borrowed from the session */
    const logger *log;
    core_state state;
    core_event event;
    uint64_t progress;         /* bumps on every reply and write progress (deadlines) */

    reply_parser rp;
    inflight *fifo;
    size_t fifo_head, fifo_len, fifo_cap;

    char *out;                 /* bytes to send */
    size_t out_off, out_len, out_cap;
    uint64_t out_queued, out_written; /* totals over the session */
    bool out_secret;           /* out holds AUTH payloads: wipe once written */

    /* Session knowledge. */
    bool tls, tls_verified, botched, closed, need_rset, ehlo_after_tls, authenticated;
    bool opening, opened;
    bool starttls_offered;     /* the plaintext EHLO listed STARTTLS */      /* opened: greeting, EHLO, TLS and AUTH all succeeded */
    bool tls_immediate_pending;
    ehlo_info ehlo;
    char *greeting, *server_name;
    smtpc_error err;           /* session error (sticky once botched) */
    smtpc_error *op_err;       /* where the current operation's error goes */

    /* TLS reporting. */
    smtpc_tlsrpt *rpt_rcpt, *rpt_host;
    tlsrpt_peer peer;

    /* AUTH. */
    sasl_client *sasl;
    const char *mech;
    bool sasl_final;
    sasl_cb cb;
    unsigned char cbdata[64];
    smtpc_error abort_err;     /* the error to report after "*" was answered */

    /* Transaction. */
    smtpc_message *msg;
    bool tx_queued;            /* a transaction waits behind RSET */
    bool pipelined;
    size_t next_rcpt;
    size_t naccepted;
    reply mail_reply, data_reply;
    bool write_failed, stream_failed, stream_eof;
    smtpc_error stream_err;
    dotstuff ds;
    size_t body_off;
    char *inbuf;               /* body read buffer */
    size_t in_off, in_len;
    bool body_eof;
} core;

void core_init(core *c, const smtpc_config *cfg, smtpc_tlsrpt *rcpt, smtpc_tlsrpt *host);
void core_free(core *c);
/* Peer fields for TLS reporting (strings borrowed; must outlive the core's use). */
void core_set_peer(core *c, const tlsrpt_peer *peer);

/* Operations. Each returns -1 (with the error set and CORE_EV_FAILED
 * pending) when it cannot start. */
int core_begin_open(core *c);
int core_begin_send(core *c, smtpc_message *m);
int core_begin_rset(core *c);
int core_begin_quit(core *c);

/* Server bytes in: returns how many were consumed. Consumption stops once an
 * event is pending; the driver keeps the rest. */
size_t core_feed(core *c, const char *buf, size_t len);
/* Client bytes out: pending bytes (generating message data when needed). */
size_t core_out(core *c, const char **p);
void core_out_done(core *c, size_t n);
bool core_wants_read(const core *c);

/* Takes the pending event (resetting it to NONE). */
core_event core_take_event(core *c);
const smtpc_error *core_op_error(const core *c);
smtpc_timeout_stage core_stage(const core *c);
smtpc_command core_awaited_command(const core *c);

/* What the driver observed. */
void core_eof(core *c);
void core_io_failed(core *c, smtpc_error_kind kind, int err_no, const char *what);
void core_write_failed(core *c, int err_no, const char *what);
void core_tls_up(core *c, bool verified, const char *cb_type, const unsigned char *cb,
                 size_t cblen);
void core_tls_failed(core *c, smtpc_error_kind kind, const char *what);

/* Internal to core*.c */
void core_set_state(core *c, core_state st);
int core_cmd(core *c, smtpc_command cmd, size_t idx, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int core_expect(core *c, smtpc_command cmd);
int core_send_raw(core *c, smtpc_command cmd, size_t idx, const char *line, const char *trace);
void core_fail(core *c, bool botch);
void core_done(core *c);
void core_nomem(core *c);
void core_out_discard(core *c);
void core_dispatch_open(core *c, const inflight *f, const reply *r);
void core_dispatch_tx(core *c, const inflight *f, const reply *r);
void core_after_tls_open(core *c);
void core_tx_start(core *c);
void core_tx_stream_failed(core *c);
int core_fill_body(core *c);
bool core_ecodes(const core *c);

#endif
