/* Mail transactions (RFC 5321 3.3, 4.1.1.2-4.1.1.4; RFC 2920 pipelining),
 * RSET and QUIT. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define BODY_IN_CHUNK (32 * 1024)
#define BODY_OUT_MAX (2 * BODY_IN_CHUNK + 8)

static void tx_fail(core *c, bool botch) { core_fail(c, botch); }

static void status_error(core *c, smtpc_command cmd, const reply *r, const char *expected)
{
    char what[96];
    snprintf(what, sizeof what, "got %d, expected %s", r->code, expected);
    err_set_reply(c->op_err, SMTPC_ERR_STATUS, cmd, r, core_ecodes(c), what);
}

/* ---- pre-checks (spec 9.1) ---- */

static int precheck(core *c, smtpc_message *m)
{
    unsigned ext = c->ehlo.ext, fl = m->flags;
    smtpc_error *e = c->op_err;
    if ((fl & SMTPC_MSG_REQUIRE_8BITMIME) && !(ext & SMTPC_EXT_8BITMIME)) {
        err_set(e, SMTPC_ERR_8BITMIME, true, SMTPC_CMD_MAILFROM, 0,
                "server does not implement 8BITMIME, required by the message");
        return -1;
    }
    if ((fl & SMTPC_MSG_SMTPUTF8) && !(ext & SMTPC_EXT_SMTPUTF8)) {
        err_set(e, SMTPC_ERR_SMTPUTF8, false, SMTPC_CMD_MAILFROM, 0,
                "server does not implement SMTPUTF8, required by the message");
        return -1;
    }
    if ((fl & SMTPC_MSG_REQUIRETLS) && !(ext & SMTPC_EXT_REQUIRETLS)) {
        err_set(e, SMTPC_ERR_REQUIRETLS, false, SMTPC_CMD_MAILFROM, 0,
                "server does not implement REQUIRETLS, required for delivery");
        return -1;
    }
    if ((ext & SMTPC_EXT_SIZE) && c->ehlo.max_size > 0 && m->size > c->ehlo.max_size) {
        err_set(e, SMTPC_ERR_SIZE, true, SMTPC_CMD_MAILFROM, 0,
                "message is %lld bytes, server accepts at most %lld bytes",
                (long long)m->size, (long long)c->ehlo.max_size);
        return -1;
    }
    return 0;
}

/* Refuses work on a session that cannot do it. The session's own error is
 * never overwritten: it keeps the original cause. */
static bool unusable(core *c)
{
    const char *why = c->closed ? "session is closed"
                      : c->botched ? "session is botched by an earlier error"
                      : !c->opened ? "session is not open"
                                   : NULL;
    if (!why)
        return false;
    smtpc_error_kind kind = c->closed    ? SMTPC_ERR_CLOSED
                            : c->botched ? SMTPC_ERR_BOTCHED
                                         : SMTPC_ERR_USAGE;
    if (c->op_err != &c->err && c->err.kind != SMTPC_ERR_NONE) {
        /* Named after the step that broke the session. */
        err_set(c->op_err, kind, kind == SMTPC_ERR_USAGE, c->err.command, 0, "%s: %s", why,
                smtpc_error_message(&c->err));
    }
    else if (c->op_err != &c->err || c->err.kind == SMTPC_ERR_NONE)
        err_set(c->op_err, kind, kind == SMTPC_ERR_USAGE, SMTPC_CMD_NONE, 0, "%s", why);
    return true;
}

int core_begin_send(core *c, smtpc_message *m)
{
    c->msg = m;
    if (message_reset_results(m) != 0) {
        c->op_err = &c->err;
        core_nomem(c);
        return -1;
    }
    c->op_err = &m->error;
    if (m->nrcpts == 0)
        err_set(c->op_err, SMTPC_ERR_USAGE, true, SMTPC_CMD_NONE, 0,
                "need at least one recipient");
    if (m->nrcpts == 0 || unusable(c)) {
        core_fail(c, false);
        return -1;
    }
    c->tx_queued = true;
    if (c->need_rset) {
        core_set_state(c, CS_RSET);
        return core_cmd(c, SMTPC_CMD_RSET, 0, "RSET");
    }
    core_tx_start(c);
    return c->event == CORE_EV_FAILED ? -1 : 0;
}

/* ---- MAIL, RCPT, DATA ---- */

static int send_mail(core *c)
{
    const smtpc_message *m = c->msg;
    unsigned ext = c->ehlo.ext;
    bool eight = (m->flags & (SMTPC_MSG_8BIT | SMTPC_MSG_REQUIRE_8BITMIME)) != 0;
    char params[128] = "";
    size_t n = 0;
    /* RFC 1870, RFC 6152 (BODY=8BITMIME only when the body has 8-bit data: Q11
     * fixed), RFC 6531, RFC 8689, in that order. */
    if ((ext & SMTPC_EXT_SIZE) && m->size >= 0)
        n += (size_t)snprintf(params + n, sizeof params - n, " SIZE=%lld", (long long)m->size);
    if (ext & SMTPC_EXT_8BITMIME)
        n += (size_t)snprintf(params + n, sizeof params - n, " BODY=%s",
                              eight ? "8BITMIME" : "7BIT");
    if (m->flags & SMTPC_MSG_SMTPUTF8)
        n += (size_t)snprintf(params + n, sizeof params - n, " SMTPUTF8");
    if (m->flags & SMTPC_MSG_REQUIRETLS)
        snprintf(params + n, sizeof params - n, " REQUIRETLS");
    return core_cmd(c, SMTPC_CMD_MAILFROM, 0, "MAIL FROM:<%s>%s", m->from ? m->from : "",
                    params);
}

static int send_rcpt(core *c, size_t i)
{
    return core_cmd(c, SMTPC_CMD_RCPTTO, i, "RCPT TO:<%s>", c->msg->rcpts[i]);
}

void core_tx_start(core *c)
{
    c->tx_queued = false;
    if (message_body_restart(c->msg) != 0) {
        err_set(c->op_err, SMTPC_ERR_MESSAGE, false, SMTPC_CMD_MAILFROM, 0,
                "the message body was already read and cannot be rewound");
        tx_fail(c, false);
        return;
    }
    if (precheck(c, c->msg) != 0) {
        tx_fail(c, false);
        return;
    }
    c->naccepted = 0;
    c->next_rcpt = 0;
    c->write_failed = c->stream_failed = c->stream_eof = false;
    reply_free(&c->mail_reply);
    reply_free(&c->data_reply);
    c->pipelined = c->cfg->pipelining && (c->ehlo.ext & SMTPC_EXT_PIPELINING);
    c->need_rset = true; /* from here on the server may hold transaction state */
    if (send_mail(c) != 0)
        return;
    if (!c->pipelined) {
        core_set_state(c, CS_MAIL);
        return;
    }
    /* RFC 2920 3.1: MAIL, every RCPT and DATA in one group. */
    core_set_state(c, CS_PIPELINE);
    for (size_t i = 0; i < c->msg->nrcpts; i++)
        if (send_rcpt(c, i) != 0)
            return;
    core_cmd(c, SMTPC_CMD_DATA, 0, "DATA");
}

/* Records recipient i's reply; what describes a rejection (NULL: the
 * usual text). A reply that cannot be kept fails the transaction (kind
 * nomem) rather than leave an accepted recipient with an error result.
 * Returns -1 then. */
static int set_rcpt_result(core *c, size_t i, const reply *r, bool permanent, const char *what)
{
    smtpc_message *m = c->msg;
    smtpc_error *e = &m->results[i];
    if (r->code == 250) {
        if (err_set_reply(e, SMTPC_ERR_NONE, SMTPC_CMD_RCPTTO, r, core_ecodes(c),
                          "recipient accepted") != 0) {
            core_nomem(c);
            return -1;
        }
        m->accepted[i] = true;
        c->naccepted++;
        return 0;
    }
    char buf[64];
    snprintf(buf, sizeof buf, "recipient rejected: got %d, expected 250", r->code);
    if (err_set_reply(e, SMTPC_ERR_STATUS, SMTPC_CMD_RCPTTO, r, core_ecodes(c),
                      what ? what : buf) != 0) {
        core_nomem(c);
        return -1;
    }
    e->permanent = permanent;
    return 0;
}

static void no_recipients(core *c, bool pipelined)
{
    smtpc_message *m = c->msg;
    if (m->nrcpts == 1) {
        /* A single recipient's rejection is the transaction's error. */
        err_copy(c->op_err, &m->results[0]);
        tx_fail(c, false);
        return;
    }
    err_set(c->op_err, SMTPC_ERR_NO_RECIPIENTS, false, SMTPC_CMD_RCPTTO, 0,
            "no recipients accepted in %stransaction", pipelined ? "pipelined " : "");
    tx_fail(c, false);
}

static void start_body(core *c)
{
    dotstuff_init(&c->ds, (c->msg->flags & SMTPC_MSG_NORMALIZE_LF) != 0);
    c->body_off = 0;
    c->in_off = c->in_len = 0;
    c->body_eof = false;
    if (!c->inbuf && !(c->inbuf = malloc(BODY_IN_CHUNK))) {
        core_nomem(c);
        return;
    }
    core_set_state(c, CS_BODY);
}

static void on_mail(core *c, const reply *r)
{
    if (r->code != 250) {
        status_error(c, SMTPC_CMD_MAILFROM, r, "250");
        tx_fail(c, r->code == 421);
        return;
    }
    core_set_state(c, CS_RCPT);
    send_rcpt(c, 0);
}

/* RFC 5321 4.5.3.1.10: 452 (and, historically, 552) to a later recipient
 * means "too many recipients": the rest go into another transaction. */
static int rcpt_limit_reached(core *c, size_t from, const reply *r)
{
    for (size_t i = from; i < c->msg->nrcpts; i++)
        if (set_rcpt_result(c, i, r, false, "no more recipients accepted in this transaction") !=
            0)
            return -1;
    return 0;
}

static void after_rcpts(core *c)
{
    if (c->naccepted == 0) {
        no_recipients(c, false);
        return;
    }
    core_set_state(c, CS_DATA);
    core_cmd(c, SMTPC_CMD_DATA, 0, "DATA");
}

static void on_rcpt(core *c, const inflight *f, const reply *r)
{
    if (f->idx > 0 && (r->code == 452 || r->code == 552)) {
        if (rcpt_limit_reached(c, f->idx, r) == 0)
            after_rcpts(c);
        return;
    }
    if (set_rcpt_result(c, f->idx, r, r->code / 100 == 5, NULL) != 0)
        return;
    if (r->code == 421) {
        status_error(c, SMTPC_CMD_RCPTTO, r, "250");
        tx_fail(c, true);
        return;
    }
    if (f->idx + 1 < c->msg->nrcpts)
        send_rcpt(c, f->idx + 1);
    else
        after_rcpts(c);
}

static void on_data(core *c, const reply *r)
{
    if (r->code != 354) {
        status_error(c, SMTPC_CMD_DATA, r, "354");
        tx_fail(c, r->code == 421);
        return;
    }
    start_body(c);
}

/* ---- pipelined replies (spec 9.10-9.13) ---- */

static int keep_reply(reply *dst, const reply *src)
{
    /* Deep copy: the dispatcher frees its reply. */
    dst->code = src->code;
    dst->nlines = 0;
    dst->lines = calloc(src->nlines ? src->nlines : 1, sizeof *dst->lines);
    if (!dst->lines)
        return -1;
    for (size_t i = 0; i < src->nlines; i++) {
        if (!(dst->lines[i] = strdup(src->lines[i])))
            return -1;
        dst->nlines++;
    }
    return 0;
}

static void pipeline_evaluate(core *c);

static void on_pipelined(core *c, const inflight *f, const reply *r)
{
    if (f->cmd == SMTPC_CMD_RCPTTO) {
        if (set_rcpt_result(c, f->idx, r, r->code / 100 == 5 && r->code != 552, NULL) != 0)
            return; /* failed for lack of memory */
    } else if (keep_reply(f->cmd == SMTPC_CMD_MAILFROM ? &c->mail_reply : &c->data_reply, r) !=
               0) {
        core_nomem(c);
        return;
    }
    if (c->fifo_len == 0)
        pipeline_evaluate(c);
}

/* The stream broke while pipelined replies were awaited: every unanswered
 * recipient gets the error, then the replies we have decide. */
static void pipeline_stream_failed(core *c)
{
    c->stream_failed = true;
    for (size_t k = 0; k < c->fifo_len; k++) {
        inflight *f = &c->fifo[c->fifo_head + k];
        if (f->cmd == SMTPC_CMD_RCPTTO) {
            err_copy(&c->msg->results[f->idx], &c->stream_err);
            c->msg->results[f->idx].command = SMTPC_CMD_RCPTTO;
        }
    }
    c->fifo_len = 0;
    if (c->mail_reply.nlines == 0) {
        err_copy(c->op_err, &c->stream_err);
        c->op_err->command = SMTPC_CMD_MAILFROM;
        tx_fail(c, true);
        return;
    }
    pipeline_evaluate(c);
}

static void pipeline_closed_before_data(core *c)
{
    /* Spec 9.13.3: the server rejected everything and hung up; judge by the
     * last recipient's reply, not as an I/O error. */
    const smtpc_error *last = &c->msg->results[c->msg->nrcpts - 1];
    err_copy(c->op_err, last);
    char *msg = c->op_err->kind == SMTPC_ERR_STATUS
                    ? strdup("server closed the connection before replying to DATA, "
                             "no recipient was accepted")
                    : NULL;
    if (msg) { /* without memory the recipient's own description stays */
        free(c->op_err->message);
        c->op_err->message = msg;
    }
    tx_fail(c, true);
}

/* Spec 24.18: a refused MAIL is every recipient's error. The RCPT replies that
 * follow it (typically 503 "need MAIL first") say nothing about the recipients
 * and must not turn a transient refusal into a permanent one: they are dropped,
 * as in a transaction without PIPELINING, where no RCPT is sent. */
static void forget_rcpt_results(core *c)
{
    for (size_t i = 0; i < c->msg->nrcpts; i++) {
        err_clear(&c->msg->results[i]);
        c->msg->accepted[i] = false;
    }
    c->naccepted = 0;
}

static void pipeline_evaluate(core *c)
{
    if (c->mail_reply.code != 250) {
        forget_rcpt_results(c);
        status_error(c, SMTPC_CMD_MAILFROM, &c->mail_reply, "250");
        tx_fail(c, c->write_failed || c->stream_failed || c->mail_reply.code == 421);
        return;
    }
    if (c->write_failed || (c->stream_failed && (c->naccepted > 0 || !c->stream_eof))) {
        err_copy(c->op_err, &c->stream_err);
        tx_fail(c, true);
        return;
    }
    if (c->stream_failed) {
        pipeline_closed_before_data(c);
        return;
    }
    if (c->naccepted == 0) {
        if (c->data_reply.code == 354) {
            /* DATA was accepted though no recipient was: end it empty. */
            core_set_state(c, CS_DOT_EMPTY);
            core_send_raw(c, SMTPC_CMD_DATA, 1, ".", NULL);
            return;
        }
        no_recipients(c, true);
        return;
    }
    if (c->data_reply.code != 354) {
        status_error(c, SMTPC_CMD_DATA, &c->data_reply, "354");
        tx_fail(c, c->data_reply.code == 421);
        return;
    }
    start_body(c);
}

/* ---- message data (spec 10) ---- */

static void body_error(core *c, ds_status st)
{
    const char *why = st == DS_ERR_BARE_CR ? "bare carriage return (CR without LF)"
                      : st == DS_ERR_BARE_LF ? "bare newline (LF without CR)"
                                             : "missing CRLF at the end of the message";
    /* Part of the message is on the wire and ending DATA would deliver a
     * truncated message, so the connection is dropped (botched). */
    err_set(c->op_err, SMTPC_ERR_MESSAGE, true, SMTPC_CMD_DATA, 0, "invalid message: %s", why);
    core_fail(c, true);
}

static int body_read_more(core *c)
{
    ssize_t n = message_read_body(c->msg, &c->body_off, c->inbuf, BODY_IN_CHUNK);
    if (n < 0) {
        err_set(c->op_err, SMTPC_ERR_IO, false, SMTPC_CMD_DATA, errno,
                "reading the message body failed");
        core_fail(c, true);
        return -1;
    }
    c->in_off = 0;
    c->in_len = (size_t)n;
    c->body_eof = n == 0;
    return 0;
}

static void trace_data(core *c, const char *p, size_t n)
{
    if (!log_enabled(c->log, SMTPC_LOG_TRACE_DATA))
        return;
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t len = nl ? (size_t)(nl - p) + 1 : n;
        log_line(c->log, SMTPC_LOG_TRACE_DATA, 'C', p, len);
        p += len;
        n -= len;
    }
}

static int body_finish(core *c)
{
    size_t produced = 0;
    ds_status st = dotstuff_finish(&c->ds, c->out + c->out_len, c->out_cap - c->out_len,
                                   &produced);
    if (st != DS_OK) {
        body_error(c, st);
        return -1;
    }
    trace_data(c, c->out + c->out_len, produced);
    c->out_len += produced;
    c->out_queued += produced;
    core_set_state(c, CS_DATA_END);
    return core_expect(c, SMTPC_CMD_DATA);
}

/* Fills the (empty) output buffer with the next piece of message data. */
int core_fill_body(core *c)
{
    if (!c->out || c->out_cap < BODY_OUT_MAX) {
        char *p = realloc(c->out, BODY_OUT_MAX);
        if (!p) {
            core_nomem(c);
            return -1;
        }
        c->out = p;
        c->out_cap = BODY_OUT_MAX;
    }
    while (c->out_cap - c->out_len > 8) {
        if (c->in_off == c->in_len && !c->body_eof && body_read_more(c) != 0)
            return -1;
        if (c->in_off == c->in_len && c->body_eof)
            return body_finish(c);
        size_t used = 0, produced = 0;
        ds_status st = dotstuff_encode(&c->ds, c->inbuf + c->in_off, c->in_len - c->in_off,
                                       &used, c->out + c->out_len, c->out_cap - c->out_len - 8,
                                       &produced);
        if (st != DS_OK) {
            body_error(c, st);
            return -1;
        }
        trace_data(c, c->out + c->out_len, produced);
        c->in_off += used;
        c->out_len += produced;
        c->out_queued += produced;
        if (used == 0 && produced == 0)
            break;
    }
    return 0;
}

static void on_data_end(core *c, const reply *r)
{
    if (r->code != 250) {
        status_error(c, SMTPC_CMD_DATA, r, "250");
        tx_fail(c, r->code == 421);
        return;
    }
    c->need_rset = false;
    core_done(c);
}

static void on_data_interrupted(core *c, const reply *r)
{
    status_error(c, SMTPC_CMD_DATA, r, "no reply before the end of the message");
    tx_fail(c, true); /* the rest of the message cannot go out */
}

static void on_dot_empty(core *c, const reply *r)
{
    (void)r; /* any reply: the transaction had no recipient anyway */
    no_recipients(c, true);
}

/* ---- RSET and QUIT (spec 11) ---- */

int core_begin_rset(core *c)
{
    c->op_err = &c->err;
    c->tx_queued = false;
    if (unusable(c)) {
        core_fail(c, false);
        return -1;
    }
    core_set_state(c, CS_RSET);
    return core_cmd(c, SMTPC_CMD_RSET, 0, "RSET");
}

static void on_rset(core *c, const reply *r)
{
    if (r->code != 250) {
        status_error(c, SMTPC_CMD_RSET, r, "250");
        tx_fail(c, r->code == 421);
        return;
    }
    c->need_rset = false;
    if (c->tx_queued)
        core_tx_start(c);
    else
        core_done(c);
}

int core_begin_quit(core *c)
{
    c->op_err = &c->err;
    if (c->closed) {
        err_set(c->op_err, SMTPC_ERR_CLOSED, false, SMTPC_CMD_QUIT, 0, "session is closed");
        core_fail(c, false);
        return -1;
    }
    core_set_state(c, CS_QUIT);
    return core_cmd(c, SMTPC_CMD_QUIT, 0, "QUIT");
}

void core_dispatch_tx(core *c, const inflight *f, const reply *r)
{
    if (c->state == CS_PIPELINE) {
        on_pipelined(c, f, r);
        return;
    }
    switch (f->cmd) {
    case SMTPC_CMD_MAILFROM:
        on_mail(c, r);
        break;
    case SMTPC_CMD_RCPTTO:
        on_rcpt(c, f, r);
        break;
    case SMTPC_CMD_DATA:
        if (f->idx == 2)
            on_data_interrupted(c, r);
        else if (f->idx == 1)
            on_dot_empty(c, r);
        else if (c->state == CS_DATA_END)
            on_data_end(c, r);
        else
            on_data(c, r);
        break;
    case SMTPC_CMD_RSET:
        on_rset(c, r);
        break;
    default: /* QUIT: the reply's content does not matter */
        c->closed = true;
        core_done(c);
        break;
    }
}

void core_tx_stream_failed(core *c)
{
    if (c->state == CS_PIPELINE) {
        pipeline_stream_failed(c);
        return;
    }
    if (c->state == CS_DOT_EMPTY) {
        /* The transaction's outcome is known; only the connection is lost. */
        no_recipients(c, true);
        c->botched = true;
        err_copy(&c->err, &c->stream_err);
        return;
    }
    err_copy(c->op_err, &c->stream_err);
    core_fail(c, true);
}
