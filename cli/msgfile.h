/* Message files (or standard input) for `smtpc send`.
 *
 * Each message is scanned once before connecting: its size after line-ending
 * normalisation (for SIZE=, RFC 1870), 8-bit bytes in the body, non-ASCII in
 * the header section, and bare CR (an invalid message; spec 10). Files are
 * then re-opened and streamed at send time, so no message is ever held in
 * memory; standard input is spooled to a temporary file while scanning. */
#ifndef SMTPC_CLI_MSGFILE_H
#define SMTPC_CLI_MSGFILE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "clierr.h"

struct cli_msgfile {
    const char *path; /* "-": standard input */
    FILE *spool;      /* standard input's copy; NULL for files */
    int64_t size;     /* bytes after bare LF -> CRLF and a final CRLF */
    unsigned flags;   /* detected SMTPC_MSG_8BIT, _REQUIRE_8BITMIME, _SMTPUTF8 */
    bool invalid;     /* bare CR: not to be sent */
    char why[160];    /* why it is invalid */
};

/* Scans path ("-" for standard input). An unreadable file is a config error. */
int cli_msgfile_scan(struct cli_msgfile *mf, const char *path, struct cli_err *err);
/* A stream at the start of the message, or NULL (errno set). */
FILE *cli_msgfile_open(struct cli_msgfile *mf);
void cli_msgfile_close(struct cli_msgfile *mf, FILE *f);
void cli_msgfile_free(struct cli_msgfile *mf);
/* smtpc_read_fn over a FILE * (userdata). */
ssize_t cli_msgfile_read(void *userdata, char *buf, size_t len);

#endif
