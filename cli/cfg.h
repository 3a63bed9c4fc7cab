/* Turning parsed options of `smtpc send` into an smtpc_config: reads the
 * secret files, checks that the certificate files are readable, applies the
 * TLS policy. */
#ifndef SMTPC_CLI_CFG_H
#define SMTPC_CLI_CFG_H

#include <stddef.h>

#include "clierr.h"
#include "opts.h"
#include "smtpc.h"

/* Returns a new config, or NULL with err set (kind config). */
smtpc_config *cli_build_config(const struct cli_opts *o, struct cli_err *err);

/* Shared with the deliver configuration (dcfg.c). */
/* smtpc_log_fn for --trace: the protocol trace on standard error. */
void cli_trace_log(void *userdata, smtpc_log_level level, const char *msg);
/* A config error naming opt unless path can be opened for reading. */
int cli_check_readable(const char *opt, const char *path, struct cli_err *err);
/* The machine's host name in buf (the default EHLO name), or "localhost". */
const char *cli_hostname(char *buf, size_t len);

#endif
