/* Where `smtpc deliver` keeps its MTA-STS policy cache (issue 3: --state DIR,
 * default $XDG_STATE_HOME/smtpc). Pure: no library calls, unit tested. */
#ifndef SMTPC_CLI_STATEDIR_H
#define SMTPC_CLI_STATEDIR_H

#include <stddef.h>

/* Room for any state directory path. */
#define CLI_STATE_PATH_MAX 4096

/* The default state directory in buf: $XDG_STATE_HOME/smtpc when that is an
 * absolute path, else $HOME/.local/state/smtpc (XDG Base Directory spec).
 * Returns -1 when neither is usable. */
int cli_default_state_dir(char *buf, size_t len);
/* mkdir -p; what it creates gets mode 0700 (the cache is private). */
int cli_mkdir_p(const char *path);

#endif
