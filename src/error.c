/* Error records: construction, copying, names. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {
    [SMTPC_ERR_NONE] = "none",
    [SMTPC_ERR_STATUS] = "status",
    [SMTPC_ERR_PROTOCOL] = "protocol",
    [SMTPC_ERR_TLS] = "tls",
    [SMTPC_ERR_SIZE] = "size",
    [SMTPC_ERR_8BITMIME] = "8bitmime",
    [SMTPC_ERR_SMTPUTF8] = "smtputf8",
    [SMTPC_ERR_REQUIRETLS] = "requiretls",
    [SMTPC_ERR_BOTCHED] = "botched",
    [SMTPC_ERR_CLOSED] = "closed",
    [SMTPC_ERR_IO] = "io",
    [SMTPC_ERR_TIMEOUT] = "timeout",
    [SMTPC_ERR_AUTH] = "auth",
    [SMTPC_ERR_CONNECT] = "connect",
    [SMTPC_ERR_NO_RECIPIENTS] = "no-recipients",
    [SMTPC_ERR_USAGE] = "usage",
    [SMTPC_ERR_CONFIG] = "config",
    [SMTPC_ERR_MESSAGE] = "message",
    [SMTPC_ERR_NOMEM] = "nomem",
    [SMTPC_ERR_DNS] = "dns",
    [SMTPC_ERR_NO_MAIL] = "no-mail",
    [SMTPC_ERR_POLICY] = "policy",
};

static const char *const command_names[] = {
    [SMTPC_CMD_NONE] = "",
    [SMTPC_CMD_GREETING] = "greeting",
    [SMTPC_CMD_EHLO] = "ehlo",
    [SMTPC_CMD_HELO] = "helo",
    [SMTPC_CMD_STARTTLS] = "starttls",
    [SMTPC_CMD_AUTH] = "auth",
    [SMTPC_CMD_MAILFROM] = "mailfrom",
    [SMTPC_CMD_RCPTTO] = "rcptto",
    [SMTPC_CMD_DATA] = "data",
    [SMTPC_CMD_RSET] = "rset",
    [SMTPC_CMD_QUIT] = "quit",
    [SMTPC_CMD_CONNECT] = "connect",
    [SMTPC_CMD_TLS] = "tls",
};

const char *smtpc_error_kind_name(smtpc_error_kind k)
{
    if ((size_t)k >= sizeof kind_names / sizeof kind_names[0])
        return "unknown";
    return kind_names[k];
}

const char *smtpc_command_name(smtpc_command c)
{
    if ((size_t)c >= sizeof command_names / sizeof command_names[0])
        return "";
    return command_names[c];
}

void err_clear(smtpc_error *e)
{
    free(e->line);
    for (size_t i = 0; i < e->nmore; i++)
        free(e->more[i]);
    free(e->more);
    free(e->message);
    memset(e, 0, sizeof *e);
}

static void set_nomem(smtpc_error *e)
{
    err_clear(e);
    e->kind = SMTPC_ERR_NOMEM;
}

static char *vformat(const char *fmt, va_list ap)
{
    char buf[1024];
    vsnprintf(buf, sizeof buf, fmt, ap);
    return strdup(buf);
}

int err_set(smtpc_error *e, smtpc_error_kind kind, bool permanent, smtpc_command cmd,
            int err_no, const char *fmt, ...)
{
    /* Format first: the arguments may point into *e (its old message). */
    va_list ap;
    va_start(ap, fmt);
    char *msg = vformat(fmt, ap);
    va_end(ap);
    err_clear(e);
    e->message = msg;
    if (!e->message) {
        set_nomem(e);
        return -1;
    }
    e->kind = kind;
    e->permanent = permanent;
    e->command = cmd;
    e->err_no = err_no;
    return 0;
}

void reply_ecode(const reply *r, char out[16])
{
    out[0] = '\0';
    if (r->nlines > 0)
        ecode_parse(r->code, reply_text(r, r->nlines - 1), out, 16);
}

static int copy_lines(smtpc_error *e, char *const *lines, size_t n)
{
    if (n == 0)
        return 0;
    e->line = strdup(lines[0]);
    if (!e->line)
        return -1;
    if (n == 1)
        return 0;
    e->more = calloc(n - 1, sizeof *e->more);
    if (!e->more)
        return -1;
    for (size_t i = 1; i < n; i++) {
        e->more[i - 1] = strdup(lines[i]);
        if (!e->more[i - 1])
            return -1;
        e->nmore = i;
    }
    return 0;
}

int err_set_reply(smtpc_error *e, smtpc_error_kind kind, smtpc_command cmd, const reply *r,
                  bool ecodes, const char *prefix)
{
    bool permanent = r->code / 100 == 5;
    const char *first = r->nlines ? r->lines[0] : "";
    const char *how = r->code >= 400 ? (permanent ? " (permanent)" : " (transient)") : "";
    if (err_set(e, kind, permanent, cmd, 0, "%s%s: %s", prefix, how, first) != 0)
        return -1;
    e->code = r->code;
    if (ecodes)
        reply_ecode(r, e->ecode);
    if (copy_lines(e, r->lines, r->nlines) != 0) {
        set_nomem(e);
        return -1;
    }
    return 0;
}

int err_copy(smtpc_error *dst, const smtpc_error *src)
{
    if (dst == src)
        return 0;
    err_clear(dst);
    *dst = *src;
    dst->line = NULL;
    dst->more = NULL;
    dst->nmore = 0;
    dst->message = src->message ? strdup(src->message) : NULL;
    if (src->message && !dst->message)
        goto nomem;
    if (src->line) {
        char **lines = malloc((src->nmore + 1) * sizeof *lines);
        if (!lines)
            goto nomem;
        lines[0] = src->line;
        if (src->nmore)
            memcpy(lines + 1, src->more, src->nmore * sizeof *lines);
        int rc = copy_lines(dst, lines, src->nmore + 1);
        free(lines);
        if (rc != 0)
            goto nomem;
    }
    return 0;
nomem:
    set_nomem(dst);
    return -1;
}

/* Public getters; every one accepts NULL. */
smtpc_error_kind smtpc_error_get_kind(const smtpc_error *e) { return e ? e->kind : SMTPC_ERR_NONE; }
bool smtpc_error_permanent(const smtpc_error *e) { return e && e->permanent; }
int smtpc_error_code(const smtpc_error *e) { return e ? e->code : 0; }
const char *smtpc_error_enhanced_code(const smtpc_error *e) { return e ? e->ecode : ""; }
smtpc_command smtpc_error_command(const smtpc_error *e) { return e ? e->command : SMTPC_CMD_NONE; }
const char *smtpc_error_line(const smtpc_error *e) { return e && e->line ? e->line : ""; }
size_t smtpc_error_more_line_count(const smtpc_error *e) { return e ? e->nmore : 0; }
int smtpc_error_errno(const smtpc_error *e) { return e ? e->err_no : 0; }

const char *smtpc_error_more_line(const smtpc_error *e, size_t i)
{
    return e && i < e->nmore ? e->more[i] : "";
}

const char *smtpc_error_message(const smtpc_error *e)
{
    if (!e)
        return "";
    if (e->message)
        return e->message;
    return e->kind == SMTPC_ERR_NOMEM ? "out of memory" : "";
}
