/* DATA encoding (RFC 5321 4.5.2, 4.1.1.4) with strict line endings.
 *
 * Only CRLF ends a line on the wire. A bare CR or LF is rejected (or a bare
 * LF is turned into CRLF when normalising), so the body can never form a
 * terminator that some server would accept ("\n.\n", "\r.\r", "\n.\r\n" ...)
 * before our own: the SMTP smuggling defence. The state lives in struct
 * dotstuff so a CR at the end of one chunk is checked against the first byte
 * of the next (spec Q7). */
#include "dotstuff.h"

#include <string.h>

void dotstuff_init(dotstuff *d, bool normalize_lf)
{
    memset(d, 0, sizeof *d);
    d->normalize_lf = normalize_lf;
    d->line_start = true; /* spec 10.1: a leading "." of the first line is stuffed */
    d->empty = true;
}

/* Output for one input byte (0-2 bytes in o); DS_OK or the error it causes.
 * Does not change d: the caller commits with step_commit() once o fits. */
static ds_status step(const dotstuff *d, char c, char o[2], size_t *n)
{
    *n = 0;
    if (d->pending_cr) {
        if (c != '\n')
            return DS_ERR_BARE_CR;
        o[0] = '\r', o[1] = '\n', *n = 2;
        return DS_OK;
    }
    if (c == '\r')
        return DS_OK; /* held until we know an LF follows */
    if (c == '\n') {
        if (!d->normalize_lf)
            return DS_ERR_BARE_LF;
        o[0] = '\r', o[1] = '\n', *n = 2;
        return DS_OK;
    }
    if (c == '.' && d->line_start)
        o[(*n)++] = '.'; /* RFC 5321 4.5.2 transparency */
    o[(*n)++] = c;
    return DS_OK;
}

static void step_commit(dotstuff *d, char c)
{
    d->pending_cr = c == '\r'; /* step() refused a CR after a CR */
    d->line_start = c == '\n';
    d->empty = false;
}

ds_status dotstuff_encode(dotstuff *d, const char *in, size_t inlen, size_t *consumed,
                          char *out, size_t outcap, size_t *produced)
{
    size_t i = 0, pos = 0;
    ds_status st = DS_OK;
    for (; i < inlen; i++) {
        char o[2];
        size_t n;
        st = step(d, in[i], o, &n);
        if (st != DS_OK || n > outcap - pos)
            break;
        memcpy(out + pos, o, n);
        pos += n;
        step_commit(d, in[i]);
    }
    *consumed = i;
    *produced = pos;
    d->out_bytes += pos;
    return st;
}

ds_status dotstuff_finish(dotstuff *d, char *out, size_t outcap, size_t *produced)
{
    static const char term[] = "\r\n.\r\n";
    *produced = 0;
    if (d->pending_cr)
        return DS_ERR_BARE_CR; /* a CR at the very end (spec Q7) */
    /* Spec 10.5: an empty message is valid; otherwise it must end in CRLF. */
    const char *t = d->line_start ? term + 2 : term;
    if (!d->line_start && !d->normalize_lf)
        return DS_ERR_NO_FINAL_CRLF;
    size_t n = strlen(t);
    if (outcap < n)
        return DS_ERR_NO_FINAL_CRLF; /* caller broke the 5-byte contract */
    memcpy(out, t, n);
    *produced = n;
    d->out_bytes += n;
    d->line_start = true;
    return DS_OK;
}

/* Length of the CRLF-terminated line at s (CRLF included), 0 when the line
 * has a bare CR or LF or no CRLF before end. */
static size_t line_len(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\n')
            return 0;
        if (s[i] == '\r')
            return (i + 1 < len && s[i + 1] == '\n') ? i + 2 : 0;
    }
    return 0;
}

int dotstuff_decode(const char *in, size_t inlen, char *out, size_t *outlen)
{
    size_t off = 0, pos = 0;
    *outlen = 0;
    while (off < inlen) {
        size_t n = line_len(in + off, inlen - off);
        if (n == 0)
            return -1;
        if (n == 3 && in[off] == '.') /* ".\r\n" ends DATA; nothing may follow */
            break;
        /* RFC 5321 4.5.2: drop the first of a line's leading periods. */
        size_t skip = in[off] == '.' ? 1 : 0;
        memcpy(out + pos, in + off + skip, n - skip);
        pos += n - skip;
        off += n;
    }
    if (off + 3 != inlen)
        return -1;
    *outlen = pos;
    return 0;
}
