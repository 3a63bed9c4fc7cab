/* Turning parsed options into an smtpc_config: reads the secret files,
 * checks that the certificate files are readable, applies the TLS policy. */
#ifndef SMTPC_CLI_CFG_H
#define SMTPC_CLI_CFG_H

#include "clierr.h"
#include "opts.h"
#include "smtpc.h"

/* Returns a new config, or NULL with err set (kind config). */
smtpc_config *cli_build_config(const struct cli_opts *o, struct cli_err *err);

#endif
