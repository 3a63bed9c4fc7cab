/* SMTP reply reader (RFC 5321 4.2) and enhanced status codes (RFC 3463).
 *
 * The reader is fed raw bytes and assembles one reply at a time. It never
 * consumes bytes after the LF that ends a reply, so the caller can tell that
 * the server sent more than one reply (pipelining) or sent data it should not
 * have (STARTTLS command injection, spec Q16). */
#include "reply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void reply_parser_init(reply_parser *p)
{
    memset(p, 0, sizeof *p);
}

void reply_parser_free(reply_parser *p)
{
    if (p == NULL)
        return;
    reply_free(&p->cur);
    p->linelen = 0;
    p->curbytes = 0;
}

void reply_free(reply *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nlines; i++)
        free(r->lines[i]);
    free(r->lines);
    memset(r, 0, sizeof *r);
}

void reply_parser_take(reply_parser *p, reply *out)
{
    *out = p->cur;
    memset(&p->cur, 0, sizeof p->cur);
    p->linelen = 0;
    p->curbytes = 0;
    p->errmsg[0] = '\0';
}

const char *reply_text(const reply *r, size_t i)
{
    if (r == NULL || i >= r->nlines)
        return "";
    const char *l = r->lines[i];
    /* Lines in a reply were validated: 3 digits then a separator or the end. */
    if (strlen(l) <= 3)
        return "";
    return l + 4;
}

static rp_status fail(reply_parser *p, rp_status st, const char *msg)
{
    snprintf(p->errmsg, sizeof p->errmsg, "%s", msg);
    return st;
}

/* Appends the line in p->line (already NUL-terminated) to the reply. */
static rp_status store_line(reply_parser *p)
{
    char *copy = malloc(p->linelen + 1);
    if (copy == NULL)
        return fail(p, RP_ERR_NOMEM, "out of memory reading reply");
    memcpy(copy, p->line, p->linelen + 1);
    /* Lines are bounded by REPLY_MAX_LINES, so growing one by one is cheap. */
    char **lines = realloc(p->cur.lines, (p->cur.nlines + 1) * sizeof *lines);
    if (lines == NULL) {
        free(copy);
        return fail(p, RP_ERR_NOMEM, "out of memory reading reply");
    }
    lines[p->cur.nlines++] = copy;
    p->cur.lines = lines;
    return RP_NEED_MORE;
}

static size_t digit_run(const char *s, size_t len)
{
    size_t n = 0;
    while (n < len && s[n] >= '0' && s[n] <= '9')
        n++;
    return n;
}

/* Checks a complete stored line: code and separator (RFC 5321 4.2). */
static rp_status check_line(reply_parser *p)
{
    const char *l = p->line;
    if (digit_run(l, p->linelen) != 3) {
        snprintf(p->errmsg, sizeof p->errmsg, "expected response code: %.120s", l);
        return RP_ERR_SYNTAX;
    }
    int code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
    if (p->cur.nlines > 1 && code != p->cur.code) {
        snprintf(p->errmsg, sizeof p->errmsg,
                 "multiline response with different codes, previous %03d, last %03d",
                 p->cur.code, code);
        return RP_ERR_CODE_MISMATCH;
    }
    p->cur.code = code;
    /* A bare "250" ends the reply (RFC 5321 4.2 tolerance, spec 3.2). */
    if (p->linelen == 3 || l[3] == ' ')
        return RP_DONE;
    if (l[3] == '-')
        return RP_NEED_MORE;
    snprintf(p->errmsg, sizeof p->errmsg,
             "expected space or dash after response code: %.100s", l);
    return RP_ERR_SYNTAX;
}

/* Called at LF: rawlen counts the line's bytes including CR and LF. */
static rp_status end_line(reply_parser *p, size_t rawlen)
{
    /* Spec 2.2: one CR directly before the LF is dropped, others kept. */
    if (p->linelen > 0 && p->line[p->linelen - 1] == '\r')
        p->linelen--;
    p->line[p->linelen] = '\0';
    rp_status st = store_line(p);
    p->curbytes += rawlen;
    if (st == RP_NEED_MORE && p->cur.nlines > REPLY_MAX_LINES)
        st = fail(p, RP_ERR_TOO_MANY, "too many lines in reply from server");
    if (st == RP_NEED_MORE && p->curbytes > REPLY_MAX_BYTES)
        st = fail(p, RP_ERR_TOO_MANY, "reply from server too large");
    if (st == RP_NEED_MORE)
        st = check_line(p);
    p->linelen = 0;
    return st;
}

/* Spec 2.3: at most REPLY_MAX_LINE - 1 bytes (a trailing CR included) before LF. */
static rp_status append(reply_parser *p, const char *s, size_t n)
{
    size_t room = REPLY_MAX_LINE - 1 - p->linelen;
    if (n > room) {
        memcpy(p->line + p->linelen, s, room);
        p->linelen += room;
        p->line[p->linelen] = '\0';
        (void)store_line(p); /* best effort: the offending line, truncated */
        p->linelen = 0;
        return fail(p, RP_ERR_TOO_LONG, "line from server too long: no newline after 2047 bytes");
    }
    memcpy(p->line + p->linelen, s, n);
    p->linelen += n;
    return RP_NEED_MORE;
}

rp_status reply_parser_feed(reply_parser *p, const char *buf, size_t len, size_t *consumed)
{
    size_t off = 0;
    rp_status st = RP_NEED_MORE;
    while (off < len && st == RP_NEED_MORE) {
        const char *lf = memchr(buf + off, '\n', len - off);
        size_t n = lf != NULL ? (size_t)(lf - (buf + off)) : len - off;
        size_t before = p->linelen;
        st = append(p, buf + off, n);
        off += n;
        if (st != RP_NEED_MORE || lf == NULL)
            break;
        off++; /* the LF */
        st = end_line(p, before + n + 1);
    }
    *consumed = off;
    return st;
}

/* Length of a run of 1-3 digits at s, 0 when the run is empty or longer. */
static size_t short_digits(const char *s)
{
    size_t n = digit_run(s, 4);
    return n <= 3 ? n : 0;
}

size_t ecode_parse(int code, const char *text, char *out, size_t outlen)
{
    if (outlen > 0)
        out[0] = '\0';
    if (code < 0 || code > 999 || text == NULL)
        return 0;
    /* RFC 3463 2: class "." subject "." detail; class must match the reply. */
    if (text[0] != '0' + code / 100 || text[1] != '.')
        return 0;
    size_t subj = short_digits(text + 2);
    if (subj == 0 || text[2 + subj] != '.')
        return 0;
    size_t det = short_digits(text + 3 + subj);
    if (det == 0)
        return 0;
    size_t n = 3 + subj + det;
    if (n + 1 > outlen)
        return 0;
    memcpy(out, text, n);
    out[n] = '\0';
    return text[n] == ' ' ? n + 1 : n;
}
