/* The error/result record shared by sessions, transactions and recipients. */
#ifndef SMTPC_ERROR_H
#define SMTPC_ERROR_H

#include <stdbool.h>
#include <stddef.h>

#include "reply.h"
#include "smtpc.h"

struct smtpc_error {
    smtpc_error_kind kind;
    bool permanent;
    int code;
    char ecode[16];        /* "5.7.1" or "" */
    smtpc_command command;
    char *line;            /* first reply line, or NULL */
    char **more;           /* further reply lines */
    size_t nmore;
    int err_no;
    char *message;         /* human description */
};

void err_clear(smtpc_error *e);
/* Sets a non-reply error: code 0, no lines. Returns 0 (or -1 when even
 * that failed for lack of memory; e then holds kind NOMEM). */
int err_set(smtpc_error *e, smtpc_error_kind kind, bool permanent, smtpc_command cmd,
            int err_no, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Sets an error from a server reply: code, enhanced code (when ecodes is
 * true; taken from the last line, spec 3.6-3.8), lines. permanent = 5xx.
 * prefix describes what went wrong ("got 550, expected 250"). */
int err_set_reply(smtpc_error *e, smtpc_error_kind kind, smtpc_command cmd, const reply *r,
                  bool ecodes, const char *prefix);
/* Deep copy (dst cleared first). */
int err_copy(smtpc_error *dst, const smtpc_error *src);
/* Enhanced code of a reply's last line, per spec 3.8 ("" when absent). */
void reply_ecode(const reply *r, char out[16]);

#endif
