/* Turning parsed options of `smtpc deliver` and `smtpc probe` into an
 * smtpc_deliver_config: checks that named files are readable, hands the
 * resolvers, DNSSEC mode, port, roots, EHLO name, local addresses and
 * timeout to the library, and picks the MTA-STS state directory. */
#ifndef SMTPC_CLI_DCFG_H
#define SMTPC_CLI_DCFG_H

#include <stddef.h>

#include "clierr.h"
#include "opts.h"
#include "smtpc.h"

/* Returns a new config, or NULL with err set (kind config). with_state: use
 * the MTA-STS cache (deliver; probe never touches it). */
smtpc_deliver_config *cli_build_deliver_config(const struct cli_opts *o, bool with_state,
                                               struct cli_err *err);

#endif
