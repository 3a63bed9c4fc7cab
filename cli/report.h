/* The outcome of a `smtpc send`, `deliver` or `probe` run: human lines as it
 * goes, or one JSON object at the end (whose shape depends on the command);
 * and the exit status. */
#ifndef SMTPC_CLI_REPORT_H
#define SMTPC_CLI_REPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "clierr.h"
#include "opts.h"
#include "smtpc.h"

enum cli_report_shape {
    CLI_REPORT_SEND = 0, /* {"ok", "error", "server", "tls", "tlsrpt", "messages"} */
    CLI_REPORT_DELIVER,  /* {"ok", "error", "domains"} */
    CLI_REPORT_PROBE,    /* the probe object; "error" only when there is one */
};

struct cli_report {
    bool json;
    bool multi; /* several messages: name each in human output */
    enum cli_report_shape shape;
    struct cli_outcome out;
    json_t *error; /* the first top-level error */
    json_t *server, *tls, *tlsrpt, *messages; /* send */
    json_t *domains; /* deliver */
    json_t *probe;   /* probe */
    const char *domain; /* probe: named in the object even when the run failed early */
};

void report_init(struct cli_report *r, bool json);
void report_init_shape(struct cli_report *r, bool json, enum cli_report_shape shape);
/* A usage, configuration or invalid-message error for the top-level "error"
 * (the first one is kept). For send the run stops. */
void report_cli_error(struct cli_report *r, const struct cli_err *e);
/* Connect, greeting, EHLO, TLS or AUTH failed: no transaction was tried. */
void report_session_error(struct cli_report *r, const smtpc_error *e);
/* A transaction ran; rc is smtpc_send's return value. */
void report_message(struct cli_report *r, const char *name, const smtpc_message *m, int rc);
/* A message that was not sent (invalid, unreadable). */
void report_unsent(struct cli_report *r, const char *name, const struct cli_err *e,
                   const struct cli_strv *to);
/* Server, TLS and TLSRPT facts; call before QUIT. */
void report_snapshot(struct cli_report *r, const smtpc_session *s);
/* Prints the JSON object (in JSON mode), frees, returns the exit status. */
int report_finish(struct cli_report *r);

/* Human output shared by the commands (nothing in JSON mode). */
/* "smtpc: error: [message NAME: ][CMD: ]MSG" on standard error. */
void report_human_error(const struct cli_report *r, const char *name, const char *cmd,
                        const char *msg);
/* "ok   ADDR: LINE" / "FAIL ADDR: LINE" on standard output. */
void report_human_rcpt(const struct cli_report *r, const char *name, const char *addr,
                       bool accepted, const char *line);

/* deliver (report_deliver.c): one attempt of message number msg (name is its
 * file) to domain; d NULL when the library ran out of memory. */
void report_delivery(struct cli_report *r, size_t msg, const char *name, const char *domain,
                     const smtpc_message *m, const smtpc_delivery *d);

#endif
