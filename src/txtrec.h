/* The grammar shared by the MTA-STS (RFC 8461 3.1) and TLSRPT (RFC 8460 3)
 * DNS records and the MTA-STS policy keys: a bounded cursor over text. */
#ifndef SMTPC_TXTREC_H
#define SMTPC_TXTREC_H

#include <stdbool.h>
#include <stddef.h>

typedef struct cursor {
    const char *s;
    size_t n, o;
} cursor;

static inline bool cur_at_end(const cursor *c) { return c->o >= c->n; }

static inline int cur_peek(const cursor *c)
{
    return cur_at_end(c) ? -1 : (unsigned char)c->s[c->o];
}

static inline bool txt_is_alnum(int ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

/* Consumes lit when the text continues with it. */
bool cur_take(cursor *c, const char *lit);
/* Skips spaces and tabs (WSP). */
void cur_wsp(cursor *c);
/* field-delim = *WSP ";" *WSP; consumes nothing when absent. */
bool cur_delim(cursor *c);
/* Field name: 1-32 chars, letters, digits, "-" and "." anywhere, "_" not
 * first (spec 20.3). Returns its length, 0 when none. */
size_t cur_key(cursor *c);

/* vsnprintf into err when err is non-NULL. */
void txt_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
