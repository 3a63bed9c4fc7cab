/* Message files (or standard input) for `smtpc send` and `smtpc deliver`.
 *
 * Each message is scanned once before connecting: its size after line-ending
 * normalisation (for SIZE=, RFC 1870), 8-bit bytes in the body, non-ASCII in
 * the header section, a "TLS-Required: No" header field (RFC 8689 5), and
 * bare CR (an invalid message; spec 10). Files are then re-opened and
 * streamed at send time, so no message is ever held in memory; standard
 * input is spooled to a temporary file while scanning. */
#ifndef SMTPC_CLI_MSGFILE_H
#define SMTPC_CLI_MSGFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "clierr.h"

struct cli_msgfile {
    const char *path; /* "-": standard input */
    FILE *spool;      /* standard input's copy; NULL for files */
    int64_t size;     /* bytes after bare LF -> CRLF and a final CRLF */
    unsigned flags;   /* detected SMTPC_MSG_8BIT, _REQUIRE_8BITMIME, _SMTPUTF8 */
    bool tls_required_no; /* a "TLS-Required: No" field in the header section */
    bool invalid;     /* bare CR: not to be sent */
    char why[160];    /* why it is invalid */
};

/* The scanner, fed chunk by chunk (a CR may end one chunk, its LF start the
 * next; a header field may be folded across chunks). Exposed for tests. */
struct cli_hdrfield {
    enum { HF_NONE, HF_NAME, HF_VALUE } st; /* HF_NONE: not a field we look at */
    bool bol;            /* at the start of a line */
    size_t nlen, vlen;
    bool name_ws;        /* whitespace after the name: only the colon may follow */
    bool vtrail;         /* whitespace after the value's word: nothing may follow */
    bool overflow;       /* the value is not one short word */
    char name[16], value[32];
};

struct cli_msgscan {
    uint64_t off;
    int64_t size;
    bool prev_cr, line_empty, in_header, hdr8, body8, bare_cr, tls_required_no;
    uint64_t bare_off;
    unsigned char last;
    struct cli_hdrfield hf;
};

void cli_msgscan_init(struct cli_msgscan *sc);
void cli_msgscan_feed(struct cli_msgscan *sc, const unsigned char *p, size_t n);
/* Ends the scan and stores what was found in mf (size, flags, validity). */
void cli_msgscan_end(struct cli_msgscan *sc, struct cli_msgfile *mf);

/* Scans path ("-" for standard input). An unreadable file is a config error. */
int cli_msgfile_scan(struct cli_msgfile *mf, const char *path, struct cli_err *err);
/* Scans n paths (none: one message from standard input) into a new array *out
 * of *nout entries; free it with cli_msgfiles_free even on failure. */
int cli_msgfiles_scan(const char *const *paths, size_t n, struct cli_msgfile **out,
                      size_t *nout, struct cli_err *err);
void cli_msgfiles_free(struct cli_msgfile *mf, size_t n);
/* A stream at the start of the message, or NULL (errno set). */
FILE *cli_msgfile_open(struct cli_msgfile *mf);
void cli_msgfile_close(struct cli_msgfile *mf, FILE *f);
void cli_msgfile_free(struct cli_msgfile *mf);
/* smtpc_read_fn over a FILE * (userdata). */
ssize_t cli_msgfile_read(void *userdata, char *buf, size_t len);
/* smtpc_rewind_fn over a FILE *: the library resends a body (next MX host,
 * recipient batches). */
int cli_msgfile_rewind(void *userdata);

#endif
