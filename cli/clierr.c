/* CLI-detected errors and the exit status precedence. */
#include "clierr.h"

#include <stdarg.h>
#include <stdio.h>

int cli_err_set(struct cli_err *e, int status, const char *fmt, ...)
{
    va_list ap;
    e->status = status;
    if (status == CLI_EX_USAGE)
        e->kind = SMTPC_ERR_USAGE;
    else if (status == CLI_EX_DATAERR)
        e->kind = SMTPC_ERR_MESSAGE;
    else
        e->kind = SMTPC_ERR_CONFIG;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return -1;
}

/* Kept here (not smtpc_error_kind_name) so the option parser and its unit
 * test do not need the library. Same names as the library's. */
const char *cli_err_kind_name(const struct cli_err *e)
{
    switch (e->kind) {
    case SMTPC_ERR_USAGE:
        return "usage";
    case SMTPC_ERR_MESSAGE:
        return "message";
    default:
        return "config";
    }
}

void cli_outcome_note(struct cli_outcome *o, smtpc_error_kind kind, bool permanent)
{
    o->failed = true;
    if (kind == SMTPC_ERR_USAGE)
        o->usage = true;
    else if (kind == SMTPC_ERR_CONFIG)
        o->config = true;
    else if (kind == SMTPC_ERR_AUTH)
        o->auth = true;
    else if (kind == SMTPC_ERR_MESSAGE)
        o->invalid = true;
    if (permanent)
        o->permanent = true;
}

int cli_outcome_status(const struct cli_outcome *o)
{
    if (o->usage)
        return CLI_EX_USAGE;
    if (o->config)
        return CLI_EX_CONFIG;
    if (o->auth)
        return CLI_EX_NOPERM;
    if (o->invalid)
        return CLI_EX_DATAERR;
    if (o->permanent)
        return CLI_EX_UNAVAILABLE;
    return o->failed ? CLI_EX_TEMPFAIL : CLI_EX_OK;
}
