/* SMTP reply reader: pure, incremental, bounded (RFC 5321 4.2). */
#ifndef SMTPC_REPLY_H
#define SMTPC_REPLY_H

#include <stdbool.h>
#include <stddef.h>

/* At most 2047 bytes (a trailing CR included) may precede the LF. */
#define REPLY_MAX_LINE 2048
/* Bounds on one (multi-line) reply. */
#define REPLY_MAX_LINES 512
#define REPLY_MAX_BYTES (256 * 1024)

typedef struct reply {
    int code;      /* code of the last line (spec 3.6); all lines share it */
    char **lines;  /* full lines as received, without CR/LF, NUL-terminated */
    size_t nlines;
} reply;

typedef enum {
    RP_NEED_MORE = 0,      /* all input consumed, reply incomplete */
    RP_DONE,               /* a whole reply is ready: reply_parser_take() */
    RP_ERR_TOO_LONG,       /* line over REPLY_MAX_LINE */
    RP_ERR_SYNTAX,         /* not 3 digits, or bad separator after the code */
    RP_ERR_CODE_MISMATCH,  /* continuation line with a different code */
    RP_ERR_TOO_MANY,       /* more than REPLY_MAX_LINES lines / REPLY_MAX_BYTES */
    RP_ERR_NOMEM,
} rp_status;

typedef struct reply_parser {
    char line[REPLY_MAX_LINE];
    size_t linelen;
    reply cur;
    size_t curbytes;
    char errmsg[160];
} reply_parser;

void reply_parser_init(reply_parser *p);
/* Frees a partly read reply; the parser can be reused after init. */
void reply_parser_free(reply_parser *p);

/* Consumes bytes up to and including the LF that ends a reply; never past it,
 * so *consumed < len on RP_DONE means bytes follow the reply (STARTTLS
 * injection check). A line ends at LF; one CR before it is dropped (spec 2.2).
 * After an RP_ERR_* the lines read so far (the offending one included) are in
 * p->cur and p->errmsg describes the error; the parser must be freed. */
rp_status reply_parser_feed(reply_parser *p, const char *buf, size_t len, size_t *consumed);

/* Moves the completed reply out (caller frees with reply_free) and readies p
 * for the next reply. */
void reply_parser_take(reply_parser *p, reply *out);

void reply_free(reply *r);
/* Text of line i after "NNN" and its separator ("" for a bare "250"). */
const char *reply_text(const reply *r, size_t i);

/* RFC 3463 enhanced status code at the start of text (spec 3.8):
 * class "." subject "." detail, 1-3 digits each, optionally followed by one
 * space. Accepted only when class == code / 100. On success writes the full
 * code ("5.7.1") to out and returns the number of bytes of text it spans
 * (the optional space included); returns 0 otherwise (out = ""). */
size_t ecode_parse(int code, const char *text, char *out, size_t outlen);

#endif
