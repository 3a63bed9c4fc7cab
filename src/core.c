/* Protocol core plumbing: output buffer, the in-flight FIFO, reply dispatch,
 * events and failures. The SMTP steps live in core_session.c (greeting,
 * EHLO, STARTTLS, AUTH) and core_tx.c (transactions, RSET, QUIT). */
#include "core.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUT_MAX (16u * 1024 * 1024) /* bounds a pipelined group: 10000 RCPTs of 1 KiB */

static const char *const state_names[CS__COUNT] = {
    [CS_IDLE] = "idle",           [CS_TLS_WAIT] = "tls-handshake",
    [CS_GREETING] = "greeting",   [CS_EHLO] = "ehlo",
    [CS_HELO] = "helo",           [CS_STARTTLS] = "starttls",
    [CS_AUTH] = "auth",           [CS_AUTH_ABORT] = "auth-abort",
    [CS_RSET] = "rset",           [CS_MAIL] = "mail",
    [CS_RCPT] = "rcpt",           [CS_DATA] = "data",
    [CS_PIPELINE] = "pipeline",   [CS_DOT_EMPTY] = "dot-empty",
    [CS_BODY] = "body",           [CS_DATA_END] = "data-end",
    [CS_QUIT] = "quit",
};

void core_init(core *c, const smtpc_config *cfg, smtpc_tlsrpt *rcpt, smtpc_tlsrpt *host)
{
    memset(c, 0, sizeof *c);
    c->cfg = cfg;
    c->log = &cfg->log;
    c->rpt_rcpt = rcpt;
    c->rpt_host = host;
    c->op_err = &c->err;
    reply_parser_init(&c->rp);
}

void core_free(core *c)
{
    reply_parser_free(&c->rp);
    free(c->fifo);
    free(c->out);
    free(c->inbuf);
    ehlo_info_free(&c->ehlo);
    free(c->greeting);
    free(c->server_name);
    err_clear(&c->err);
    err_clear(&c->abort_err);
    err_clear(&c->stream_err);
    sasl_client_free(c->sasl);
    reply_free(&c->mail_reply);
    reply_free(&c->data_reply);
    memset(c, 0, sizeof *c);
}

void core_set_peer(core *c, const tlsrpt_peer *peer) { c->peer = *peer; }

void core_set_state(core *c, core_state st)
{
    if (c->state != st)
        log_msg(c->log, SMTPC_LOG_DEBUG, "state %s -> %s", state_names[c->state],
                state_names[st]);
    c->state = st;
}

void core_done(core *c)
{
    if (c->opening) {
        c->opening = false;
        c->opened = true;
    }
    core_set_state(c, CS_IDLE);
    c->event = CORE_EV_DONE;
}

/* Ends the operation with the error already in *c->op_err. A botched
 * session keeps that error as its own, for good. */
void core_fail(core *c, bool botch)
{
    /* A session whose setup failed is never used for mail (mox's New
     * returns no client): anything else could send without the TLS or
     * authentication the caller asked for. */
    botch = botch || c->opening;
    c->opening = false;
    if (botch && !c->botched) {
        c->botched = true;
        if (c->op_err != &c->err)
            err_copy(&c->err, c->op_err);
    }
    c->fifo_len = 0;
    core_out_discard(c);
    core_set_state(c, CS_IDLE);
    c->event = CORE_EV_FAILED;
}

/* Drops unsent output (keeping the byte accounting of early_reply right). */
void core_out_discard(core *c)
{
    if (c->out_secret && c->out)
        OPENSSL_cleanse(c->out, c->out_cap);
    c->out_queued -= c->out_len - c->out_off;
    c->out_len = c->out_off = 0;
    c->out_secret = false;
}

void core_nomem(core *c)
{
    err_set(c->op_err, SMTPC_ERR_NOMEM, false, core_awaited_command(c), ENOMEM, "out of memory");
    core_fail(c, true);
}

/* Grows the output buffer without realloc, so no copy of an AUTH payload
 * is left behind in freed memory. */
static int out_reserve(core *c, size_t n)
{
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (c->out_len + n <= c->out_cap)
        return 0;
    size_t cap = c->out_cap ? c->out_cap : 4096;
    while (cap < c->out_len + n)
        cap *= 2;
    if (cap > OUT_MAX)
        return -1;
    char *p = malloc(cap);
    if (!p)
        return -1;
    if (c->out) {
        memcpy(p, c->out, c->out_len);
        OPENSSL_cleanse(c->out, c->out_cap);
        free(c->out);
    }
    c->out = p;
    c->out_cap = cap;
    return 0;
}

static int fifo_push(core *c, smtpc_command cmd, size_t idx, uint64_t out_end)
{
    if (c->fifo_head + c->fifo_len == c->fifo_cap) {
        if (c->fifo_head > 0) {
            memmove(c->fifo, c->fifo + c->fifo_head, c->fifo_len * sizeof *c->fifo);
            c->fifo_head = 0;
        } else {
            size_t cap = c->fifo_cap ? c->fifo_cap * 2 : 16;
            inflight *f = realloc(c->fifo, cap * sizeof *f);
            if (!f)
                return -1;
            c->fifo = f;
            c->fifo_cap = cap;
        }
    }
    c->fifo[c->fifo_head + c->fifo_len++] = (inflight){cmd, idx, out_end};
    return 0;
}

/* Queues one command line (CRLF added) whose reply will be awaited. trace
 * replaces the line in the protocol trace (AUTH redaction) when non-NULL. */
int core_send_raw(core *c, smtpc_command cmd, size_t idx, const char *line, const char *trace)
{
    size_t n = strlen(line);
    if (out_reserve(c, n + 2) != 0 || fifo_push(c, cmd, idx, c->out_queued + n + 2) != 0) {
        core_nomem(c);
        return -1;
    }
    memcpy(c->out + c->out_len, line, n);
    memcpy(c->out + c->out_len + n, "\r\n", 2);
    c->out_len += n + 2;
    c->out_queued += n + 2;
    if (cmd == SMTPC_CMD_AUTH)
        c->out_secret = true;
    const char *t = trace ? trace : line;
    log_line(c->log, SMTPC_LOG_TRACE, 'C', t, strlen(t));
    return 0;
}

/* Awaits a reply that no command of ours asks for (the greeting). */
int core_expect(core *c, smtpc_command cmd)
{
    if (fifo_push(c, cmd, 0, c->out_queued) != 0) {
        core_nomem(c);
        return -1;
    }
    return 0;
}

int core_cmd(core *c, smtpc_command cmd, size_t idx, const char *fmt, ...)
{
    char line[2 * ADDR_MAX + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    return core_send_raw(c, cmd, idx, line, NULL);
}

bool core_ecodes(const core *c) { return (c->ehlo.ext & SMTPC_EXT_ENHANCEDSTATUSCODES) != 0; }

static void trace_reply(core *c, const reply *r)
{
    for (size_t i = 0; i < r->nlines; i++)
        log_line(c->log, SMTPC_LOG_TRACE, 'S', r->lines[i], strlen(r->lines[i]));
}

static void dispatch(core *c, const inflight *f, const reply *r)
{
    c->progress++;
    trace_reply(c, r);
    switch (f->cmd) {
    case SMTPC_CMD_GREETING:
    case SMTPC_CMD_EHLO:
    case SMTPC_CMD_HELO:
    case SMTPC_CMD_STARTTLS:
    case SMTPC_CMD_AUTH:
        core_dispatch_open(c, f, r);
        break;
    default:
        core_dispatch_tx(c, f, r);
        break;
    }
}

static void reply_parse_failed(core *c, rp_status st)
{
    smtpc_command cmd = core_awaited_command(c);
    err_set(&c->stream_err, st == RP_ERR_NOMEM ? SMTPC_ERR_NOMEM : SMTPC_ERR_PROTOCOL, false,
            cmd, 0, "%s", c->rp.errmsg[0] ? c->rp.errmsg : "malformed reply");
    if (c->rp.cur.nlines > 0) {
        /* Keep the offending lines (spec 3.5). */
        err_set_reply(&c->stream_err, c->stream_err.kind, cmd, &c->rp.cur, false,
                      c->rp.errmsg[0] ? c->rp.errmsg : "malformed reply");
        c->stream_err.permanent = false;
        c->stream_err.code = 0;
    }
    core_tx_stream_failed(c);
}

/* A reply arrived although no command is in flight. */
static void unexpected_input(core *c)
{
    err_set(&c->stream_err, SMTPC_ERR_PROTOCOL, false, SMTPC_CMD_NONE, 0,
            "server sent data while no reply was expected");
    core_tx_stream_failed(c);
}

/* A reply to a command we have not finished sending cannot be genuine: it
 * was sent ahead (injected), and would shift every later reply by one. */
static void early_reply(core *c)
{
    err_set(&c->stream_err, SMTPC_ERR_PROTOCOL, false, core_awaited_command(c), 0,
            "server replied before the command was sent");
    core_tx_stream_failed(c);
}

size_t core_feed(core *c, const char *buf, size_t len)
{
    size_t used = 0;
    while (used < len && c->event == CORE_EV_NONE) {
        if (c->fifo_len == 0 && c->state == CS_BODY && c->out_written > 0) {
            /* A reply while the message is still going out: the server gave
             * up on the transaction (e.g. 550 after 354); judge by it. */
            if (fifo_push(c, SMTPC_CMD_DATA, 2, c->out_written) != 0) {
                core_nomem(c);
                break;
            }
        }
        if (c->fifo_len == 0) {
            unexpected_input(c);
            break;
        }
        size_t n = 0;
        rp_status st = reply_parser_feed(&c->rp, buf + used, len - used, &n);
        used += n;
        if (st == RP_NEED_MORE)
            continue;
        if (st != RP_DONE) {
            reply_parse_failed(c, st);
            break;
        }
        reply r;
        reply_parser_take(&c->rp, &r);
        inflight f = c->fifo[c->fifo_head];
        if (f.out_end > c->out_written && f.cmd == SMTPC_CMD_DATA && c->state == CS_DATA_END) {
            f.idx = 2; /* refused before our final dot was out: mid-data */
        } else if (f.out_end > c->out_written) {
            reply_free(&r);
            early_reply(c);
            break;
        }
        c->fifo_head++;
        c->fifo_len--;
        if (c->fifo_len == 0)
            c->fifo_head = 0;
        dispatch(c, &f, &r);
        reply_free(&r);
    }
    return used;
}

size_t core_out(core *c, const char **p)
{
    if (c->out_off == c->out_len && c->state == CS_BODY && c->event == CORE_EV_NONE) {
        c->out_off = c->out_len = 0;
        if (core_fill_body(c) != 0)
            return 0;
    }
    if (!c->out) {
        *p = "";
        return 0;
    }
    *p = c->out + c->out_off;
    return c->out_len - c->out_off;
}

void core_out_done(core *c, size_t n)
{
    if (c->out_secret)
        OPENSSL_cleanse(c->out + c->out_off, n);
    c->out_off += n;
    c->out_written += n;
    if (c->out_off == c->out_len)
        c->out_secret = false;
    if (n > 0)
        c->progress++;
}

bool core_wants_read(const core *c) { return c->fifo_len > 0 && c->state != CS_TLS_WAIT; }

core_event core_take_event(core *c)
{
    core_event ev = c->event;
    if (ev != CORE_EV_TLS)
        c->event = CORE_EV_NONE;
    return ev;
}

const smtpc_error *core_op_error(const core *c) { return c->op_err; }

smtpc_command core_awaited_command(const core *c)
{
    if (c->fifo_len > 0)
        return c->fifo[c->fifo_head].cmd;
    switch (c->state) {
    case CS_TLS_WAIT:
        return c->tls_immediate_pending ? SMTPC_CMD_TLS : SMTPC_CMD_STARTTLS;
    case CS_BODY:
    case CS_DATA_END:
        return SMTPC_CMD_DATA;
    default:
        return SMTPC_CMD_NONE;
    }
}

static smtpc_timeout_stage stage_of(const inflight *f, const core *c)
{
    switch (f->cmd) {
    case SMTPC_CMD_GREETING:
        return SMTPC_TIMEOUT_GREETING;
    case SMTPC_CMD_MAILFROM:
        return SMTPC_TIMEOUT_MAIL;
    case SMTPC_CMD_RCPTTO:
        return SMTPC_TIMEOUT_RCPT;
    case SMTPC_CMD_DATA:
        return c->state == CS_DATA_END ? SMTPC_TIMEOUT_DATA_END : SMTPC_TIMEOUT_DATA;
    case SMTPC_CMD_QUIT:
        return SMTPC_TIMEOUT_QUIT;
    default:
        return SMTPC_TIMEOUT_COMMAND;
    }
}

smtpc_timeout_stage core_stage(const core *c)
{
    if (c->state == CS_TLS_WAIT)
        return SMTPC_TIMEOUT_TLS;
    if (c->state == CS_BODY)
        return SMTPC_TIMEOUT_DATA_BLOCK;
    if (c->out_off < c->out_len)
        return SMTPC_TIMEOUT_WRITE;
    if (c->fifo_len > 0)
        return stage_of(&c->fifo[c->fifo_head], c);
    return SMTPC_TIMEOUT_WRITE;
}

void core_eof(core *c)
{
    c->stream_eof = true;
    err_set(&c->stream_err, SMTPC_ERR_IO, false, core_awaited_command(c), 0,
            "connection closed by server");
    core_tx_stream_failed(c);
}

void core_io_failed(core *c, smtpc_error_kind kind, int err_no, const char *what)
{
    err_set(&c->stream_err, kind, false, core_awaited_command(c), err_no, "%s", what);
    core_tx_stream_failed(c);
}

void core_write_failed(core *c, int err_no, const char *what)
{
    core_out_discard(c);
    if (c->state == CS_PIPELINE && c->fifo_len > 0) {
        /* Keep reading: the server's replies decide (spec 9.13 step 1). */
        c->write_failed = true;
        err_set(&c->stream_err, SMTPC_ERR_IO, false, SMTPC_CMD_MAILFROM, err_no,
                "writing pipelined commands: %s", what);
        return;
    }
    err_set(c->op_err, SMTPC_ERR_IO, false, core_awaited_command(c), err_no, "write: %s", what);
    core_fail(c, true);
}
