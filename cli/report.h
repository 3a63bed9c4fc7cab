/* The outcome of a `smtpc send` run: human lines as it goes, or one JSON
 * object at the end; and the exit status. */
#ifndef SMTPC_CLI_REPORT_H
#define SMTPC_CLI_REPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "clierr.h"
#include "opts.h"
#include "smtpc.h"

struct cli_report {
    bool json;
    bool multi; /* several messages: name each in human output */
    struct cli_outcome out;
    json_t *error, *server, *tls, *tlsrpt, *messages;
};

void report_init(struct cli_report *r, bool json);
/* A usage or configuration error: the run stops. */
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

#endif
