/* The non-blocking driver: moves bytes between the transport and the core,
 * runs TLS handshakes when the core asks, and enforces stage deadlines. */
#include "session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define STEP_BUDGET 64 /* I/O rounds per smtpc_step before yielding */

int64_t session_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

smtpc_session *smtpc_session_new(const smtpc_config *cfg)
{
    smtpc_session *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (config_copy(&s->cfg, cfg) != 0) {
        config_clear(&s->cfg);
        free(s);
        return NULL;
    }
    transport_init(&s->tr);
    core_init(&s->core, &s->cfg, &s->rpt_rcpt, &s->rpt_host);
    s->deadline_ms = -1;
    return s;
}

void smtpc_session_free(smtpc_session *s)
{
    if (!s)
        return;
    transport_close(&s->tr);
    core_free(&s->core);
    tlsrpt_clear(&s->rpt_rcpt);
    tlsrpt_clear(&s->rpt_host);
    config_clear(&s->cfg);
    free(s->host);
    free(s->dane_record);
    free(s->chain);
    free(s);
}

/* API misuse is reported without replacing the session's error. */
static int misuse(smtpc_session *s, const char *what)
{
    if (s->core.err.kind == SMTPC_ERR_NONE)
        err_set(&s->core.err, SMTPC_ERR_USAGE, true, SMTPC_CMD_NONE, 0, "%s", what);
    errno = EINVAL;
    return -1;
}

static int begin(smtpc_session *s, session_op op)
{
    if (s->op != OP_NONE)
        return misuse(s, "another operation is in progress");
    s->op = op;
    s->seen_progress = s->core.progress - 1; /* forces a fresh deadline */
    return 0;
}

static void set_peer(smtpc_session *s)
{
    const char *name = s->cfg.tls_name ? s->cfg.tls_name : s->host;
    core_set_peer(&s->core, &(tlsrpt_peer){s->tr.local_ip, s->tr.peer_ip, name,
                                           s->core.server_name});
}

static int set_host(smtpc_session *s, const char *host)
{
    free(s->host);
    s->host = host ? strdup(host) : NULL;
    return host && !s->host ? -1 : 0;
}

int smtpc_begin_connect(smtpc_session *s, const char *host, uint16_t port)
{
    if (begin(s, OP_CONNECT) != 0)
        return -1;
    if (set_host(s, host) != 0) {
        err_set(&s->core.err, SMTPC_ERR_NOMEM, false, SMTPC_CMD_CONNECT, ENOMEM, "out of memory");
        s->op = OP_NONE;
        return -1;
    }
    if (transport_connect_start(&s->tr, host, port, s->cfg.local_address) != 0) {
        err_set(&s->core.err, s->tr.err_no == ENOMEM ? SMTPC_ERR_NOMEM : SMTPC_ERR_CONNECT, false,
                SMTPC_CMD_CONNECT, s->tr.err_no, "%s", s->tr.errmsg);
        s->op = OP_NONE;
        return -1;
    }
    s->deadline_ms = session_now_ms() + config_timeout(&s->cfg, SMTPC_TIMEOUT_CONNECT);
    if (transport_connect_next(&s->tr) == TR_ERR) {
        err_set(&s->core.err, SMTPC_ERR_CONNECT, false, SMTPC_CMD_CONNECT, s->tr.err_no,
                "%s:%u: %s", host, port, s->tr.errmsg);
        s->op = OP_NONE;
        return -1;
    }
    return 0;
}

int smtpc_attach_fd(smtpc_session *s, int fd, const char *host)
{
    if (set_host(s, host) != 0) {
        err_set(&s->core.err, SMTPC_ERR_NOMEM, false, SMTPC_CMD_CONNECT, ENOMEM, "out of memory");
        return -1;
    }
    if (transport_attach(&s->tr, fd) != 0) {
        err_set(&s->core.err, SMTPC_ERR_CONNECT, false, SMTPC_CMD_CONNECT, s->tr.err_no, "%s",
                s->tr.errmsg);
        return -1;
    }
    set_peer(s);
    return 0;
}

int smtpc_begin_open(smtpc_session *s)
{
    if (s->tr.fd < 0 || s->tr.connecting)
        return misuse(s, "not connected");
    if (begin(s, OP_OPEN) != 0)
        return -1;
    set_peer(s);
    core_begin_open(&s->core);
    return 0;
}

int smtpc_begin_send(smtpc_session *s, smtpc_message *m)
{
    if (begin(s, OP_SEND) != 0)
        return -1;
    core_begin_send(&s->core, m);
    return 0;
}

int smtpc_begin_reset(smtpc_session *s)
{
    if (begin(s, OP_RSET) != 0)
        return -1;
    core_begin_rset(&s->core);
    return 0;
}

int smtpc_begin_quit(smtpc_session *s)
{
    if (s->core.botched || s->tr.fd < 0) {
        /* No QUIT on a botched connection: just close (spec 11.2). */
        transport_close(&s->tr);
        s->core.closed = true;
        return 0;
    }
    if (begin(s, OP_QUIT) != 0)
        return -1;
    core_begin_quit(&s->core);
    return 0;
}

/* ---- connect ---- */

static smtpc_status step_connect(smtpc_session *s)
{
    tr_status st = transport_connect_step(&s->tr);
    int64_t now = session_now_ms();
    if (st == TR_WANT_WRITE && now >= s->deadline_ms) {
        s->tr.err_no = ETIMEDOUT;
        st = transport_connect_next(&s->tr);
        s->deadline_ms = now + config_timeout(&s->cfg, SMTPC_TIMEOUT_CONNECT);
    }
    if (st == TR_WANT_WRITE)
        return SMTPC_WANT_WRITE;
    s->op = OP_NONE;
    s->deadline_ms = -1;
    if (st == TR_OK) {
        set_peer(s);
        return SMTPC_DONE;
    }
    bool timeout = s->tr.err_no == ETIMEDOUT;
    err_set(&s->core.err, timeout ? SMTPC_ERR_TIMEOUT : SMTPC_ERR_CONNECT, false,
            SMTPC_CMD_CONNECT, s->tr.err_no, "connecting to %s: %s", s->host,
            timeout ? "timed out" : strerror(s->tr.err_no));
    return SMTPC_FAILED;
}

/* ---- TLS ---- */

static void tls_params_of(smtpc_session *s, tls_params *p)
{
    const smtpc_config *c = &s->cfg;
    memset(p, 0, sizeof *p);
    p->ca_file = c->ca_file;
    p->ca_dir = c->ca_dir;
    p->cert_file = c->cert_file;
    p->key_file = c->key_file;
    p->name = c->tls_name ? c->tls_name : s->host;
    p->pkix_enforce = c->pkix_enforce;
    p->ignore_errors = c->ignore_tls_errors;
    p->dane = c->dane;
    p->tlsa = c->tlsa;
    p->ntlsa = c->ntlsa;
    p->dane_names = c->dane_names;
    p->ndane_names = c->ndane_names;
    p->rpt_rcpt = &s->rpt_rcpt;
    p->rpt_host = &s->rpt_host;
    p->peer = s->core.peer;
}

/* RFC 3207 5 / Q16: after its 220 the server speaks only once our
 * ClientHello is there; plaintext already waiting now was injected before the
 * handshake and must never be read as TLS data or as a reply. */
static bool plaintext_waiting(const smtpc_session *s)
{
    char c;
    return !s->core.tls_immediate_pending &&
           recv(s->tr.fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

static void starttls_injection(smtpc_session *s)
{
    s->rlen = 0;
    s->core.event = CORE_EV_NONE;
    err_set(s->core.op_err, SMTPC_ERR_PROTOCOL, false, SMTPC_CMD_STARTTLS, 0,
            "server sent data after its STARTTLS reply (possible command injection)");
    core_fail(&s->core, true);
}

static int tls_start(smtpc_session *s)
{
    tls_params p;
    char err[256] = "";
    if (plaintext_waiting(s)) {
        starttls_injection(s);
        return -1;
    }
    tls_params_of(s, &p);
    s->tr.tls = tls_conn_new(&p, s->tr.fd, err, sizeof err);
    if (!s->tr.tls) {
        bool nomem = errno == ENOMEM; /* transient, not the configuration's fault */
        err_set(s->core.op_err, nomem ? SMTPC_ERR_NOMEM : SMTPC_ERR_CONFIG, !nomem,
                core_awaited_command(&s->core), nomem ? ENOMEM : 0, "TLS configuration: %s", err);
        core_fail(&s->core, true);
        return -1;
    }
    s->tls_started = true;
    s->deadline_ms = session_now_ms() + config_timeout(&s->cfg, SMTPC_TIMEOUT_TLS);
    return 0;
}

static void tls_established(smtpc_session *s)
{
    tls_conn *t = s->tr.tls;
    snprintf(s->tls_version, sizeof s->tls_version, "%s", tls_conn_version(t));
    snprintf(s->tls_cipher, sizeof s->tls_cipher, "%s", tls_conn_cipher(t));
    s->pkix_verified = tls_conn_pkix_verified(t);
    free(s->dane_record);
    const char *rec = tls_conn_dane_record(t);
    s->dane_record = rec ? strdup(rec) : NULL;
    if (!s->chain)
        s->chain = calloc(SESSION_MAX_CHAIN, sizeof *s->chain);
    if ((rec && !s->dane_record) || !s->chain || tls_conn_nomem(t)) {
        /* Without the record a DANE-verified peer would look unverified. */
        core_tls_failed(&s->core, SMTPC_ERR_NOMEM, "out of memory");
        return;
    }
    s->nchain = tls_conn_chain(t, s->chain, SESSION_MAX_CHAIN);
    const char *cbtype = NULL;
    unsigned char cb[64];
    size_t cblen = 0;
    if (tls_conn_channel_binding(t, &cbtype, cb, sizeof cb, &cblen) != 0)
        cbtype = NULL;
    bool verified = s->pkix_verified || s->dane_record != NULL;
    log_msg(&s->cfg.log, SMTPC_LOG_INFO, "TLS established: %s %s, %s", s->tls_version,
            s->tls_cipher, verified ? "verified" : "not verified");
    core_tls_up(&s->core, verified, cbtype, cb, cblen);
}

/* Runs the handshake; returns a want-status, or DONE when the core may go on. */
static smtpc_status step_tls(smtpc_session *s)
{
    if (!s->tls_started && tls_start(s) != 0)
        return SMTPC_DONE;
    if (session_now_ms() >= s->deadline_ms) {
        tlsrpt_add(&s->rpt_rcpt, 0, 1, &s->core.peer, "validation-failure",
                   "io-timeout-during-handshake");
        tlsrpt_add(&s->rpt_host, 0, 1, &s->core.peer, "validation-failure",
                   "io-timeout-during-handshake");
        core_tls_failed(&s->core, SMTPC_ERR_TIMEOUT, "timed out");
        return SMTPC_DONE;
    }
    char err[256] = "";
    bool verify_failed = false;
    tls_io st = tls_conn_handshake(s->tr.tls, err, sizeof err, &verify_failed);
    if (st == TLS_IO_WANT_READ)
        return SMTPC_WANT_READ;
    if (st == TLS_IO_WANT_WRITE)
        return SMTPC_WANT_WRITE;
    if (st == TLS_IO_OK)
        tls_established(s);
    else /* a lost connection is "io" wherever it happens */
        core_tls_failed(&s->core, st == TLS_IO_EOF ? SMTPC_ERR_IO : SMTPC_ERR_TLS,
                        err[0] ? err : "connection closed");
    return SMTPC_DONE;
}

/* ---- the I/O loop ---- */

static void update_deadline(smtpc_session *s, int64_t now)
{
    smtpc_timeout_stage st = core_stage(&s->core);
    if (s->core.progress != s->seen_progress || st != s->seen_stage) {
        s->seen_progress = s->core.progress;
        s->seen_stage = st;
        s->deadline_ms = now + config_timeout(&s->cfg, st);
    }
}

static void timed_out(smtpc_session *s)
{
    char what[96];
    smtpc_command cmd = core_awaited_command(&s->core);
    if (s->core.fifo_len > 0)
        snprintf(what, sizeof what, "timeout waiting for the reply to %s",
                 cmd == SMTPC_CMD_GREETING ? "connecting (greeting)" : smtpc_command_name(cmd));
    else
        snprintf(what, sizeof what, "timeout writing to the server");
    core_io_failed(&s->core, SMTPC_ERR_TIMEOUT, ETIMEDOUT, what);
}

static bool feed_buffered(smtpc_session *s)
{
    if (s->rlen == 0 || !core_wants_read(&s->core))
        return false;
    size_t n = core_feed(&s->core, s->rbuf, s->rlen);
    if (s->core.event == CORE_EV_TLS && n < s->rlen) {
        starttls_injection(s); /* bytes after the 220 in the same read */
        return true;
    }
    memmove(s->rbuf, s->rbuf + n, s->rlen - n);
    s->rlen -= n;
    return n > 0;
}

/* Writes what the core has; returns 1 on progress, 0 when blocked, -1 on error. */
static int do_write(smtpc_session *s, bool *want_write, bool *want_read)
{
    const char *p;
    size_t len = core_out(&s->core, &p);
    if (len == 0)
        return 0;
    size_t n = 0;
    tr_status st = transport_write(&s->tr, p, len, &n);
    if (st == TR_OK) {
        core_out_done(&s->core, n);
        return 1;
    }
    if (st == TR_WANT_WRITE || st == TR_WANT_READ) {
        *(st == TR_WANT_WRITE ? want_write : want_read) = true;
        return 0;
    }
    core_write_failed(&s->core, s->tr.err_no,
                      st == TR_EOF ? "connection closed" : s->tr.errmsg);
    return -1;
}

static int do_read(smtpc_session *s, bool *want_read, bool *want_write)
{
    if (!core_wants_read(&s->core) || s->rlen == sizeof s->rbuf)
        return 0;
    size_t n = 0;
    tr_status st = transport_read(&s->tr, s->rbuf + s->rlen, sizeof s->rbuf - s->rlen, &n);
    if (st == TR_OK) {
        s->rlen += n;
        return 1;
    }
    if (st == TR_WANT_READ || st == TR_WANT_WRITE) {
        *(st == TR_WANT_READ ? want_read : want_write) = true;
        return 0;
    }
    if (st == TR_EOF)
        core_eof(&s->core);
    else
        core_io_failed(&s->core, SMTPC_ERR_IO, s->tr.err_no, s->tr.errmsg);
    return -1;
}

static smtpc_status finish_op(smtpc_session *s, core_event ev)
{
    session_op op = s->op;
    s->op = OP_NONE;
    s->deadline_ms = -1;
    if (op == OP_OPEN) /* AUTH, if any, is over: the credentials are not needed again */
        config_forget_secrets(&s->cfg);
    if (op == OP_QUIT || s->core.botched) {
        transport_close(&s->tr);
        if (op == OP_QUIT)
            s->core.closed = true;
    }
    return ev == CORE_EV_DONE ? SMTPC_DONE : SMTPC_FAILED;
}

/* One round of I/O: feed buffered input, write, read. Returns SMTPC_DONE when
 * something happened (progress or a core event: go round again), else what
 * to wait for. */
static smtpc_status io_round(smtpc_session *s)
{
    bool want_r = false, want_w = false;
    int progress = feed_buffered(s);
    if (s->core.event != CORE_EV_NONE)
        return SMTPC_DONE;
    int w = do_write(s, &want_w, &want_r);
    if (w != 0 || s->core.event != CORE_EV_NONE)
        return SMTPC_DONE;
    int r = do_read(s, &want_r, &want_w);
    if (r != 0 || progress)
        return SMTPC_DONE;
    if (want_r && want_w)
        return SMTPC_WANT_READWRITE;
    if (want_w)
        return SMTPC_WANT_WRITE;
    if (want_r)
        return SMTPC_WANT_READ;
    return SMTPC_DONE; /* nothing to do: the core must have an event */
}

smtpc_status smtpc_step(smtpc_session *s)
{
    if (s->op == OP_NONE)
        return SMTPC_DONE;
    if (s->op == OP_CONNECT)
        return step_connect(s);
    for (int round = 0; round < STEP_BUDGET; round++) {
        core_event ev = s->core.event;
        if (ev == CORE_EV_DONE || ev == CORE_EV_FAILED)
            return finish_op(s, core_take_event(&s->core));
        if (ev == CORE_EV_TLS) {
            smtpc_status st = step_tls(s);
            if (st != SMTPC_DONE)
                return st;
            continue;
        }
        int64_t now = session_now_ms();
        update_deadline(s, now);
        if (now >= s->deadline_ms) {
            timed_out(s);
            continue;
        }
        smtpc_status st = io_round(s);
        if (st != SMTPC_DONE)
            return st;
        if (s->core.event == CORE_EV_NONE && !core_wants_read(&s->core) &&
            s->core.out_off == s->core.out_len && s->core.state != CS_BODY) {
            /* Defensive: the core waits for nothing; never spin. */
            err_set(s->core.op_err, SMTPC_ERR_PROTOCOL, false, SMTPC_CMD_NONE, 0,
                    "internal error: protocol state %d stalled", (int)s->core.state);
            core_fail(&s->core, true);
        }
    }
    return SMTPC_WANT_READWRITE; /* budget used up; let the caller poll */
}

int smtpc_session_fd(const smtpc_session *s) { return s->tr.fd; }
int64_t smtpc_session_deadline_ms(const smtpc_session *s) { return s->deadline_ms; }
