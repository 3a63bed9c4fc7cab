/* smtpc_message: envelope, body source and per-recipient results. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

smtpc_message *smtpc_message_new(void)
{
    smtpc_message *m = calloc(1, sizeof *m);
    if (m)
        m->size = -1;
    return m;
}

static void free_results(smtpc_message *m)
{
    if (m->results)
        for (size_t i = 0; i < m->nrcpts; i++)
            err_clear(&m->results[i]);
    free(m->results);
    free(m->accepted);
    m->results = NULL;
    m->accepted = NULL;
    m->results_valid = false;
}

void smtpc_message_free(smtpc_message *m)
{
    if (!m)
        return;
    free_results(m);
    err_clear(&m->error);
    for (size_t i = 0; i < m->nrcpts; i++)
        free(m->rcpts[i]);
    free(m->rcpts);
    free(m->from);
    free(m);
}

/* Q19: a path must not be able to inject a command (CR, LF) or escape the
 * angle brackets; control characters have no place in an address. */
bool address_acceptable(const char *addr)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)addr; *p; p++, n++)
        if (*p < 0x20 || *p == 0x7f || *p == '<' || *p == '>')
            return false;
    return n <= ADDR_MAX;
}

int smtpc_message_set_from(smtpc_message *m, const char *addr)
{
    if (!addr || !address_acceptable(addr))
        return -1;
    char *d = strdup(addr);
    if (!d)
        return -1;
    free(m->from);
    m->from = d;
    return 0;
}

int smtpc_message_add_rcpt(smtpc_message *m, const char *addr)
{
    if (!addr || !*addr || !address_acceptable(addr) || m->nrcpts >= MESSAGE_MAX_RCPTS)
        return -1;
    char **r = realloc(m->rcpts, (m->nrcpts + 1) * sizeof *r);
    if (!r)
        return -1;
    m->rcpts = r;
    free_results(m);
    if (!(r[m->nrcpts] = strdup(addr)))
        return -1;
    m->nrcpts++;
    return 0;
}

void smtpc_message_set_flags(smtpc_message *m, unsigned flags) { m->flags = flags; }

void smtpc_message_set_body(smtpc_message *m, const char *data, size_t len)
{
    m->body = data;
    m->body_len = len;
    m->reader = NULL;
    m->size = (int64_t)len;
}

void smtpc_message_set_body_reader(smtpc_message *m, smtpc_read_fn fn, void *ud, int64_t size)
{
    m->reader = fn;
    m->reader_ud = ud;
    m->body_used = false;
    m->body = NULL;
    m->size = size;
}

int message_reset_results(smtpc_message *m)
{
    free_results(m);
    err_clear(&m->error);
    m->results = calloc(m->nrcpts ? m->nrcpts : 1, sizeof *m->results);
    m->accepted = calloc(m->nrcpts ? m->nrcpts : 1, sizeof *m->accepted);
    if (!m->results || !m->accepted) {
        free_results(m);
        return -1;
    }
    m->results_valid = true;
    return 0;
}

void smtpc_message_set_body_rewind(smtpc_message *m, smtpc_rewind_fn fn) { m->rewind = fn; }

int message_body_restart(smtpc_message *m)
{
    if (!m->reader || !m->body_used)
        return 0;
    if (!m->rewind || m->rewind(m->reader_ud) != 0)
        return -1;
    m->body_used = false;
    return 0;
}

ssize_t message_read_body(smtpc_message *m, size_t *offset, char *buf, size_t len)
{
    if (m->reader) {
        m->body_used = true;
        return m->reader(m->reader_ud, buf, len);
    }
    if (!m->body)
        return 0;
    size_t n = m->body_len - *offset;
    if (n > len)
        n = len;
    memcpy(buf, m->body + *offset, n);
    *offset += n;
    return (ssize_t)n;
}

size_t smtpc_message_rcpt_count(const smtpc_message *m) { return m ? m->nrcpts : 0; }

const char *smtpc_message_rcpt(const smtpc_message *m, size_t i)
{
    return m && i < m->nrcpts ? m->rcpts[i] : NULL;
}

const smtpc_error *smtpc_message_rcpt_result(const smtpc_message *m, size_t i)
{
    if (!m || !m->results_valid || i >= m->nrcpts)
        return NULL;
    return &m->results[i];
}

bool smtpc_message_rcpt_accepted(const smtpc_message *m, size_t i)
{
    return m && m->results_valid && i < m->nrcpts && m->accepted[i];
}

const smtpc_error *smtpc_message_error(const smtpc_message *m)
{
    if (!m || m->error.kind == SMTPC_ERR_NONE)
        return NULL;
    return &m->error;
}
