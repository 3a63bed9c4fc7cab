/* Builders for the JSON objects `smtpc send --json` (shape: issue 2),
 * `smtpc deliver --json` and `smtpc probe --json` (issue 3) print.
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
/* RES (RFC 8460 summary); with policy, also "policy_type" and "policy_domain". */
json_t *jo_tlsrpt_res(const smtpc_tlsrpt *r, bool policy);
/* Recipient results of a transaction; unanswered ones take msg_permanent. */
json_t *jo_recipients(const smtpc_message *m, bool msg_permanent);
/* The same; unanswered ones take fallback's code, enhanced code, permanence
 * and line when fallback is not NULL (a domain that failed as a whole). */
json_t *jo_recipients_with(const smtpc_message *m, const smtpc_error *fallback,
                           bool msg_permanent);
/* Recipients of a message that was never sent. */
json_t *jo_recipients_unsent(const struct cli_strv *to, bool permanent);
json_t *jo_message(bool ok, json_t *error, json_t *recipients);
/* deliver (json_deliver.c): one "domains" entry; msg >= 0 adds "message". */
json_t *jo_delivery(const char *domain, const smtpc_delivery *d, const smtpc_message *m,
                    bool ok, long msg);
/* probe (json_deliver.c): the whole object; verdicts[i] is attempt i's. */
json_t *jo_probe(const char *domain, const smtpc_delivery *d, const char *const *verdicts,
                 const char *verdict);
/* The probe object of a run that never probed (usage or configuration error). */
json_t *jo_probe_empty(const char *domain);
/* Prints one object and a newline on standard output. */
int jo_print(json_t *root);

#endif
