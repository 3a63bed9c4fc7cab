/* Logging through the caller's callback; the library never prints. */
#ifndef SMTPC_LOG_H
#define SMTPC_LOG_H

#include "smtpc.h"

typedef struct logger {
    smtpc_log_fn fn;
    void *ud;
    smtpc_log_level max;
} logger;

void log_msg(const logger *lg, smtpc_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Protocol trace of one line sent (dir 'C') or received ('S'). */
void log_line(const logger *lg, smtpc_log_level lvl, char dir, const char *line, size_t len);
static inline int log_enabled(const logger *lg, smtpc_log_level lvl)
{
    return lg->fn && lvl <= lg->max;
}

#endif
