/* Builders for the JSON object `smtpc send --json` prints (shape: issue 2).
 * Every builder returns a new reference; NULL handles give empty values. */
#ifndef SMTPC_CLI_JSON_OUT_H
#define SMTPC_CLI_JSON_OUT_H

#include <jansson.h>
#include <stdbool.h>

#include "clierr.h"
#include "opts.h"
#include "smtpc.h"

/* A JSON string; invalid UTF-8 bytes become U+FFFD, NULL becomes "". */
json_t *jo_str(const char *s);
/* ERR from a library error; null when e is NULL or of kind none. */
json_t *jo_error(const smtpc_error *e);
/* ERR for an error the CLI found (command "" or "data" for a message). */
json_t *jo_cli_error(const struct cli_err *e);
json_t *jo_server(const smtpc_session *s);
json_t *jo_tls(const smtpc_session *s);
json_t *jo_tlsrpt(const smtpc_session *s);
/* Recipient results of a transaction; unanswered ones take msg_permanent. */
json_t *jo_recipients(const smtpc_message *m, bool msg_permanent);
/* Recipients of a message that was never sent. */
json_t *jo_recipients_unsent(const struct cli_strv *to, bool permanent);
json_t *jo_message(bool ok, json_t *error, json_t *recipients);
/* Prints one object and a newline on standard output. */
int jo_print(json_t *root);

#endif
