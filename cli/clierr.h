/* Errors the CLI detects itself, and the exit status of a run.
 *
 * Exit statuses follow sysexits(3) and the precedence of the issue:
 * usage (64) and config (78) first, then auth (77), then an invalid
 * message (65), then any permanent failure (69), then transient (75). */
#ifndef SMTPC_CLI_CLIERR_H
#define SMTPC_CLI_CLIERR_H

#include <stdbool.h>

#include "smtpc.h"

#define CLI_EX_OK 0
#define CLI_EX_USAGE 64
#define CLI_EX_DATAERR 65
#define CLI_EX_UNAVAILABLE 69
#define CLI_EX_TEMPFAIL 75
#define CLI_EX_NOPERM 77
#define CLI_EX_CONFIG 78

/* An error found by the CLI (usage, configuration, invalid message). */
struct cli_err {
    int status;           /* CLI_EX_* */
    smtpc_error_kind kind; /* SMTPC_ERR_USAGE, _CONFIG or _MESSAGE */
    char msg[512];
};

/* Sets status, the matching kind and a printf-style message. Returns -1. */
int cli_err_set(struct cli_err *e, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Stable kind name for the JSON ("usage", "config", "message"). */
const char *cli_err_kind_name(const struct cli_err *e);

/* What went wrong over a whole run, reduced to the exit status. */
struct cli_outcome {
    bool usage, config, auth, invalid, permanent, failed;
};

void cli_outcome_note(struct cli_outcome *o, smtpc_error_kind kind, bool permanent);
int cli_outcome_status(const struct cli_outcome *o);

#endif
