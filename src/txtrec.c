#include "txtrec.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

bool cur_take(cursor *c, const char *lit)
{
    size_t l = strlen(lit);
    if (c->n - c->o < l || memcmp(c->s + c->o, lit, l) != 0)
        return false;
    c->o += l;
    return true;
}

void cur_wsp(cursor *c)
{
    while (cur_peek(c) == ' ' || cur_peek(c) == '\t')
        c->o++;
}

bool cur_delim(cursor *c)
{
    size_t save = c->o;
    cur_wsp(c);
    if (cur_peek(c) != ';') {
        c->o = save;
        return false;
    }
    c->o++;
    cur_wsp(c);
    return true;
}

size_t cur_key(cursor *c)
{
    size_t i = 0;
    for (; i < 32 && c->o + i < c->n; i++) {
        int ch = (unsigned char)c->s[c->o + i];
        if (!(txt_is_alnum(ch) || ch == '-' || ch == '.' || (i > 0 && ch == '_')))
            break;
    }
    c->o += i;
    return i;
}

void txt_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}
