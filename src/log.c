#include "log.h"

#include <stdarg.h>
#include <stdio.h>

void log_msg(const logger *lg, smtpc_log_level lvl, const char *fmt, ...)
{
    if (!log_enabled(lg, lvl))
        return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    lg->fn(lg->ud, lvl, buf);
}

void log_line(const logger *lg, smtpc_log_level lvl, char dir, const char *line, size_t len)
{
    if (!log_enabled(lg, lvl))
        return;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    char buf[2100];
    if (len > sizeof buf - 4)
        len = sizeof buf - 4;
    snprintf(buf, sizeof buf, "%c: %.*s", dir, (int)len, line);
    lg->fn(lg->ud, lvl, buf);
}
