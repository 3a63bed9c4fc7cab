/* The envelope of a message (reverse-path, recipients, MAIL FROM flags),
 * shared by `smtpc send` and `smtpc deliver`. */
#ifndef SMTPC_CLI_ENVELOPE_H
#define SMTPC_CLI_ENVELOPE_H

#include <stddef.h>

#include "clierr.h"
#include "opts.h"
#include "smtpc.h"

/* Message flags from the options and the addresses that go into one
 * transaction: o->from and rcpts (RFC 6531: a UTF-8 address needs SMTPUTF8).
 * Bare LF is always normalised to CRLF (files with Unix line endings). */
unsigned cli_envelope_flags(const struct cli_opts *o, const char *const *rcpts, size_t n);
/* A message with the envelope; NULL with err set when the library refuses an
 * address (usage error) or memory runs out. */
smtpc_message *cli_envelope(const char *from, const char *const *rcpts, size_t n,
                            struct cli_err *err);

#endif
