/* DATA encoding: dot-stuffing and line-ending checks (RFC 5321 4.5.2), pure
 * and stateful across chunk boundaries so bare CR/LF are always caught (Q7). */
#ifndef SMTPC_DOTSTUFF_H
#define SMTPC_DOTSTUFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    DS_OK = 0,
    DS_ERR_BARE_CR,      /* CR not followed by LF */
    DS_ERR_BARE_LF,      /* LF not preceded by CR (only without normalize_lf) */
    DS_ERR_NO_FINAL_CRLF,/* non-empty message not ending in CRLF (only without normalize_lf) */
} ds_status;

typedef struct dotstuff {
    bool normalize_lf;   /* bare LF -> CRLF instead of DS_ERR_BARE_LF */
    bool line_start;     /* next byte begins a line (true at message start, 10.1) */
    bool pending_cr;     /* previous chunk ended in CR */
    bool empty;          /* nothing consumed yet */
    uint64_t out_bytes;  /* bytes produced so far */
} dotstuff;

void dotstuff_init(dotstuff *d, bool normalize_lf);

/* Encodes as much of in[0..inlen) as fits into out[0..outcap). Sets
 * *consumed and *produced. Never needs more than 2 output bytes per input
 * byte; stops early when out is full. */
ds_status dotstuff_encode(dotstuff *d, const char *in, size_t inlen, size_t *consumed,
                          char *out, size_t outcap, size_t *produced);

/* Ends the message with ".\r\n" (10.6). A non-empty message not ending in
 * CRLF is DS_ERR_NO_FINAL_CRLF, unless normalize_lf is set: then CRLF is
 * appended first. out must hold 5 bytes. A CR pending at the end is
 * DS_ERR_BARE_CR. */
ds_status dotstuff_finish(dotstuff *d, char *out, size_t outcap, size_t *produced);

/* Server side (for tests and fuzzing): removes the stuffing of a complete
 * DATA stream that ends with "\r\n.\r\n" (or is just ".\r\n"). Returns the
 * decoded length in *outlen (out must hold inlen bytes), -1 on malformed. */
int dotstuff_decode(const char *in, size_t inlen, char *out, size_t *outlen);

#endif
