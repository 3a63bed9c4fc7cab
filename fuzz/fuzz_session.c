/* A whole protocol core (src/core*.c) driven by a script, the way
 * src/session.c drives it, with no sockets: the server's bytes arrive in
 * fuzzer-chosen pieces, the client's bytes leave in fuzzer-chosen amounts,
 * and the caller opens, sends, resets and quits at fuzzer-chosen times.
 *
 * Input:
 *   byte 0  bits 0-1 TLS mode, bit 2 pipelining, bit 3 insecure auth,
 *           bit 4 body from a reader callback, bit 5 the reader rewinds,
 *           bit 6 the reader fails half way, bit 7 no trace logging
 *   byte 1  bits 0-3 AUTH mechanism (none, auto, PLAIN ... OAUTHBEARER,
 *           bogus), bit 4 no password, bit 5 no token
 *   byte 2  bits 0-4 message flags (SMTPC_MSG_*), bits 5-7 body template
 *   byte 3  bits 0-2 recipients (0-7), bits 3-7 reader chunk size (bit 7
 *           also: the reader's size is unknown)
 *   byte 4  number N of action bytes, then N action bytes:
 *           00oooooo  caller: open, send, rset, quit (o % 4)
 *           01nnnnnn  n+1 more server bytes arrive (63: up to the next LF),
 *                     and are fed while the core reads
 *           10wwkkkk  write 2^k pending bytes (ww == 1: the write fails)
 *           11111xxx  run the current operation to its end (as below)
 *           11xxxeee  otherwise e: 0 EOF, 1 read error, 2 timeout, 3-5 TLS up
 *                     (verified with tls-exporter / unverified / verified
 *                     with tls-unique), 6-7 TLS handshake fails
 *   rest    the server's byte stream.
 * Once the actions are used up, the script runs to the end: everything is
 * written, the rest of the stream is fed line by line, TLS comes up
 * (verified) when asked, then EOF; and a final QUIT the same way.
 *
 * Invariants (abort on violation):
 * - every call returns; the core never stalls (waits for nothing with no
 *   event); output is bounded and never holds a bare CR or LF;
 * - when TLS is required, nothing but EHLO, HELO, STARTTLS and QUIT goes out
 *   before it; AUTH only over verified TLS or with insecure auth; MAIL only
 *   on an open session (authenticated when asked); an open that succeeds
 *   had TLS when required and authenticated when asked;
 * - after a send every recipient is accepted (250) or has an error, never
 *   both, and never neither once its RCPT reply was dispatched (unless a
 *   refused MAIL is the error of all, spec 9.16); a send succeeds exactly
 *   when a 250 to the final dot was dispatched;
 * - results turn into valid JSON; secrets never reach the trace. */
#include "fuzz.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "core.h"
#include "json_out.h"
#include "sasl.h"
#include "tlsrpt.h"

#define MAX_RCPTS 7
#define PEND_MAX 65536
#define OUT_BOUND (64u * 1024 * 1024)
#define AUTO_STEPS 100000

static const char PASSWORD[] = "S3cr3t-Pa55w0rd";
static const char TOKEN[] = "ya29.T0ken-S3cr3t-xyz";
static const char USER[] = "u@x.test";

typedef enum { OP_NONE = 0, OP_OPEN, OP_SEND, OP_RSET, OP_QUIT } op_kind;

typedef struct body_reader {
    const char *p;
    size_t len, off, chunk;
    bool fail;
} body_reader;

typedef struct fx {
    smtpc_config *cfg;
    smtpc_tlsrpt rcpt, host;
    core c;
    smtpc_message *m;
    char *body;
    size_t body_len;
    body_reader rd;
    bool insecure_auth, auth_wanted;
    smtpc_tls_mode mode;

    op_kind op;
    bool conn_closed;       /* the driver closed the connection (botched or QUIT) */
    char *pend;             /* server bytes received, not yet consumed */
    size_t plen;
    fz_in stream;           /* server bytes still to arrive */
    char line3[3];          /* start of the current server line */
    size_t linepos;
    int last_code;          /* code of the last complete server line */
    bool cr_pending;        /* the last client byte was CR */
    char cmd[16];           /* start of the client line being written */
    size_t cmdlen;
    bool cmd_is_data;       /* that line is message data, not a command */

    bool replied[MAX_RCPTS];
    bool dot250;
    uint64_t out_total;
    char *secrets[8];       /* strings the trace must never show */
    size_t nsecrets;
    bool verbose;           /* FUZZ_TRACE set: print the trace and the driver's steps */
} fx;

#define VERBOSE(f, ...)                                                                   \
    do {                                                                                  \
        if ((f)->verbose)                                                                 \
            fprintf(stderr, __VA_ARGS__);                                                 \
    } while (0)

/* ---- the trace: client lines must never show a secret ---- */

static void on_log(void *ud, smtpc_log_level level, const char *msg)
{
    fx *f = ud;
    (void)level;
    FZ_ASSERT(msg != NULL && strlen(msg) < 4096);
    VERBOSE(f, "  log: %s\n", msg);
    if (strncmp(msg, "C: ", 3) != 0)
        return; /* server lines may echo anything */
    for (size_t i = 0; i < f->nsecrets; i++)
        FZ_ASSERT(strstr(msg, f->secrets[i]) == NULL);
}

static void add_secret_b64(fx *f, const char *blob, size_t len)
{
    char *b = b64_encode((const unsigned char *)blob, len);
    FZ_ASSERT(b != NULL);
    f->secrets[f->nsecrets++] = b;
}

static void secrets_init(fx *f)
{
    f->secrets[f->nsecrets++] = strdup(PASSWORD);
    f->secrets[f->nsecrets++] = strdup(TOKEN);
    add_secret_b64(f, PASSWORD, strlen(PASSWORD));
    add_secret_b64(f, TOKEN, strlen(TOKEN));
    char blob[128];
    int n = snprintf(blob, sizeof blob, "%c%s%c%s", 0, USER, 0, PASSWORD);
    add_secret_b64(f, blob, (size_t)n); /* AUTH PLAIN */
    n = snprintf(blob, sizeof blob, "user=%s\001auth=Bearer %s\001\001", USER, TOKEN);
    add_secret_b64(f, blob, (size_t)n); /* XOAUTH2 */
}

/* ---- configuration ---- */

static const char *const mechs[] = {
    NULL, "auto", "PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256",
    "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS", "XOAUTH2", "OAUTHBEARER", "BOGUS-MECH",
};

static ssize_t read_body(void *ud, char *buf, size_t len)
{
    body_reader *r = ud;
    if (r->fail && r->off >= r->len / 2)
        return -1;
    size_t n = r->len - r->off;
    if (n > len)
        n = len;
    if (n > r->chunk)
        n = r->chunk;
    memcpy(buf, r->p + r->off, n);
    r->off += n;
    return (ssize_t)n;
}

static int rewind_body(void *ud)
{
    body_reader *r = ud;
    r->off = 0;
    return 0;
}

static void make_body(fx *f, unsigned which)
{
    static const char *const t[] = {
        "",
        "Subject: hi\r\n\r\nhello\r\n",
        ".leading dot\r\n..two\r\n.\r\nend\r\n",
        "bare\nlf\r\n",
        "bare\rcr\r\n",
        "no final crlf",
        NULL, /* large */
        "Subject: caf\xc3\xa9\r\n\r\n\xe2\x82\xac\r\n",
    };
    if (t[which] != NULL) {
        f->body = strdup(t[which]);
        f->body_len = strlen(t[which]);
    } else {
        f->body_len = 40000; /* more than one 32 KiB read */
        f->body = malloc(f->body_len);
        FZ_ASSERT(f->body != NULL);
        for (size_t i = 0; i < f->body_len; i++)
            f->body[i] = i % 80 == 78 ? '\r' : i % 80 == 79 ? '\n' : i % 80 == 0 ? '.' : 'a';
    }
    FZ_ASSERT(f->body != NULL);
}

static void setup(fx *f, fz_in *in)
{
    uint8_t c0 = fz_u8(in), c1 = fz_u8(in), c2 = fz_u8(in), c3 = fz_u8(in);
    f->verbose = getenv("FUZZ_TRACE") != NULL;
    f->cfg = smtpc_config_new();
    FZ_ASSERT(f->cfg != NULL);
    f->mode = (smtpc_tls_mode)(c0 & 3);
    smtpc_config_set_tls_mode(f->cfg, f->mode);
    smtpc_config_set_pipelining(f->cfg, (c0 & 4) != 0);
    f->insecure_auth = (c0 & 8) != 0;
    smtpc_config_set_insecure_auth(f->cfg, f->insecure_auth);
    smtpc_config_set_ehlo_name(f->cfg, "client.test");
    if (!(c0 & 0x80))
        smtpc_config_set_log(f->cfg, on_log, f, SMTPC_LOG_TRACE_DATA);
    const char *mech = mechs[(c1 & 15) % (sizeof mechs / sizeof mechs[0])];
    if (mech != NULL) {
        f->auth_wanted = true;
        smtpc_config_set_auth(f->cfg, mech, USER, (c1 & 16) ? NULL : PASSWORD);
        if (!(c1 & 32))
            smtpc_config_set_oauth_token(f->cfg, TOKEN);
    }
    core_init(&f->c, f->cfg, &f->rcpt, &f->host);
    core_set_peer(&f->c, &(tlsrpt_peer){"192.0.2.1", "192.0.2.25", "mx.test", NULL});

    f->m = smtpc_message_new();
    FZ_ASSERT(f->m != NULL);
    smtpc_message_set_from(f->m, "a@x.test");
    static const char *const rcpts[MAX_RCPTS] = {"r0@y.test", "r1@y.test", "r2@z.test",
                                                 "r3@y.test", "r4@y.test", "r5@z.test",
                                                 "r6@y.test"};
    for (unsigned i = 0; i < (c3 & 7u); i++)
        FZ_ASSERT(smtpc_message_add_rcpt(f->m, rcpts[i]) == 0);
    smtpc_message_set_flags(f->m, c2 & 31u);
    make_body(f, c2 >> 5);
    if (c0 & 16) {
        f->rd = (body_reader){f->body, f->body_len, 0, (size_t)(c3 >> 3) * 997 + 1,
                              (c0 & 64) != 0};
        smtpc_message_set_body_reader(f->m, read_body, &f->rd,
                                      (c3 & 128) ? -1 : (int64_t)f->body_len);
        if (c0 & 32)
            smtpc_message_set_body_rewind(f->m, rewind_body);
    } else {
        smtpc_message_set_body(f->m, f->body, f->body_len);
    }
    f->pend = malloc(PEND_MAX);
    FZ_ASSERT(f->pend != NULL);
    secrets_init(f);
}

static void teardown(fx *f)
{
    core_free(&f->c);
    tlsrpt_clear(&f->rcpt);
    tlsrpt_clear(&f->host);
    smtpc_config_free(f->cfg);
    smtpc_message_free(f->m);
    free(f->body);
    free(f->pend);
    for (size_t i = 0; i < f->nsecrets; i++)
        free(f->secrets[i]);
}

/* ---- invariants at the end of an operation ---- */

static void check_json(json_t *j)
{
    FZ_ASSERT(j != NULL);
    char *s = json_dumps(j, JSON_COMPACT);
    FZ_ASSERT(s != NULL);
    json_error_t e;
    json_t *back = json_loads(s, 0, &e);
    FZ_ASSERT(back != NULL);
    json_decref(back);
    free(s);
    json_decref(j);
}

static void check_recipients(fx *f, core_event ev)
{
    smtpc_message *m = f->m;
    size_t naccepted = 0;
    const smtpc_error *me = smtpc_message_error(m);
    /* A refused MAIL is every recipient's error (spec 9.16, 24.18): their
     * own replies are dropped then. */
    bool covers_all = me != NULL && smtpc_error_command(me) == SMTPC_CMD_MAILFROM;
    for (size_t i = 0; i < smtpc_message_rcpt_count(m); i++) {
        const smtpc_error *r = smtpc_message_rcpt_result(m, i);
        if (r == NULL) {
            FZ_ASSERT(!smtpc_message_rcpt_accepted(m, i));
            continue;
        }
        bool acc = smtpc_message_rcpt_accepted(m, i);
        VERBOSE(f, "  rcpt %zu: accepted %d, replied %d, kind %d, code %d: %s\n", i, acc,
                f->replied[i], (int)smtpc_error_get_kind(r), smtpc_error_code(r),
                smtpc_error_message(r));
        if (acc) {
            /* accepted: a 250 and no error */
            FZ_ASSERT(smtpc_error_get_kind(r) == SMTPC_ERR_NONE && smtpc_error_code(r) == 250);
            naccepted++;
        } else if (smtpc_error_get_kind(r) == SMTPC_ERR_NONE) {
            /* neither: only while no reply came for it, or when the
             * transaction's error stands for every recipient */
            FZ_ASSERT(smtpc_error_code(r) == 0);
            FZ_ASSERT(!f->replied[i] || covers_all);
        }
    }
    /* delivered exactly when the final dot got its 250 */
    FZ_ASSERT((ev == CORE_EV_DONE) == f->dot250);
    if (ev == CORE_EV_DONE) {
        FZ_ASSERT(me == NULL && naccepted > 0);
    } else {
        FZ_ASSERT(me != NULL && smtpc_error_get_kind(me) != SMTPC_ERR_NONE);
        FZ_ASSERT(strlen(smtpc_error_message(me)) > 0);
    }
    check_json(jo_recipients(m, me != NULL && smtpc_error_permanent(me)));
    if (me != NULL)
        check_json(jo_error(me));
}

static void check_tlsrpt(const smtpc_tlsrpt *r)
{
    FZ_ASSERT(r->success >= 0 && r->failure >= 0 && r->ndetails <= TLSRPT_MAX_DETAILS);
    check_json(jo_tlsrpt_res(r, false));
}

static void finish_op(fx *f, core_event ev)
{
    core *c = &f->c;
    FZ_ASSERT(c->state == CS_IDLE && c->fifo_len == 0);
    if (ev == CORE_EV_FAILED)
        FZ_ASSERT(core_op_error(c) != NULL && core_op_error(c)->kind != SMTPC_ERR_NONE);
    if (f->op == OP_OPEN && ev == CORE_EV_DONE) {
        FZ_ASSERT(c->opened && !c->botched);
        if (f->mode == SMTPC_TLS_STARTTLS || f->mode == SMTPC_TLS_IMMEDIATE)
            FZ_ASSERT(c->tls);
        if (f->auth_wanted)
            FZ_ASSERT(c->authenticated);
    }
    if (f->op == OP_SEND)
        check_recipients(f, ev);
    if (c->err.kind != SMTPC_ERR_NONE)
        check_json(jo_error(&c->err));
    check_tlsrpt(&f->rcpt);
    check_tlsrpt(&f->host);
    /* session.c finish_op: a botched connection or a QUIT closes it */
    if (f->op == OP_QUIT || c->botched) {
        f->conn_closed = true;
        if (f->op == OP_QUIT)
            c->closed = true;
    }
    f->op = OP_NONE;
}

/* Takes a finished operation's event; true when one was taken. */
static bool poll_event(fx *f)
{
    core_event ev = f->c.event;
    FZ_ASSERT(ev >= CORE_EV_NONE && ev <= CORE_EV_FAILED);
    if (ev != CORE_EV_DONE && ev != CORE_EV_FAILED)
        return false;
    FZ_ASSERT(core_take_event(&f->c) == ev && f->c.event == CORE_EV_NONE);
    FZ_ASSERT(f->op != OP_NONE); /* no event without an operation */
    VERBOSE(f, "op %d %s: %s\n", (int)f->op, ev == CORE_EV_DONE ? "done" : "failed",
            ev == CORE_EV_FAILED ? smtpc_error_message(core_op_error(&f->c)) : "");
    finish_op(f, ev);
    return true;
}

/* The defensive check of smtpc_step: the core must always wait for something. */
static void check_not_stalled(fx *f)
{
    const core *c = &f->c;
    if (f->op == OP_NONE || c->event != CORE_EV_NONE)
        return;
    FZ_ASSERT(core_wants_read(c) || c->out_off != c->out_len || c->state == CS_BODY);
}

/* ---- the caller ---- */

static void begin(fx *f, unsigned which)
{
    if (f->op != OP_NONE)
        return; /* session.c: "another operation is in progress" */
    core *c = &f->c;
    switch (which) {
    case 0:
        if (f->conn_closed)
            return; /* "not connected" */
        f->op = OP_OPEN;
        core_begin_open(c);
        break;
    case 1:
        f->op = OP_SEND;
        memset(f->replied, 0, sizeof f->replied);
        f->dot250 = false;
        core_begin_send(c, f->m);
        break;
    case 2:
        f->op = OP_RSET;
        core_begin_rset(c);
        break;
    default:
        if (c->botched || f->conn_closed) {
            c->closed = true; /* no QUIT on a botched connection */
            f->conn_closed = true;
            return;
        }
        f->op = OP_QUIT;
        core_begin_quit(c);
        break;
    }
}

/* ---- server bytes in ---- */

static void track_consumed(fx *f, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            f->last_code = f->linepos >= 3 ? (f->line3[0] - '0') * 100 +
                                                 (f->line3[1] - '0') * 10 + (f->line3[2] - '0')
                                           : -1;
            f->linepos = 0;
        } else if (f->linepos < 3) {
            f->line3[f->linepos++] = p[i];
        } else {
            f->linepos = 4;
        }
    }
}

/* session.c starttls_injection: plaintext after the 220 to STARTTLS. */
static void injection(fx *f)
{
    core *c = &f->c;
    f->plen = 0;
    c->event = CORE_EV_NONE;
    err_set(c->op_err, SMTPC_ERR_PROTOCOL, false, SMTPC_CMD_STARTTLS, 0,
            "server sent data after its STARTTLS reply (possible command injection)");
    core_fail(c, true);
}

/* One core_feed call on at most one line, noting which command a reply
 * was dispatched to. Returns the bytes consumed. */
static size_t feed_line(fx *f, size_t len)
{
    core *c = &f->c;
    inflight head = {SMTPC_CMD_NONE, 0, 0};
    if (c->fifo_len > 0)
        head = c->fifo[c->fifo_head];
    else if (c->state == CS_BODY && c->out_written > 0)
        head = (inflight){SMTPC_CMD_DATA, 2, c->out_written};
    core_state before = c->state;
    uint64_t progress = c->progress;
    size_t n = core_feed(c, f->pend, len);
    FZ_ASSERT(n <= len);
    track_consumed(f, f->pend, n);
    uint64_t dispatched = c->progress - progress;
    FZ_ASSERT(dispatched <= 1); /* one LF completes at most one reply */
    if (dispatched == 1 && f->op == OP_SEND) {
        if (head.cmd == SMTPC_CMD_RCPTTO && head.idx < MAX_RCPTS)
            f->replied[head.idx] = true;
        if (head.cmd == SMTPC_CMD_DATA && head.idx == 0 && before == CS_DATA_END &&
            head.out_end <= c->out_written && f->last_code == 250)
            f->dot250 = true;
    }
    memmove(f->pend, f->pend + n, f->plen - n);
    f->plen -= n;
    return n;
}

/* session.c feed_buffered: everything buffered goes to the core while it
 * consumes, split here at each LF so every reply can be attributed. */
static void feed_buffered(fx *f)
{
    core *c = &f->c;
    if (f->plen == 0 || !core_wants_read(c))
        return;
    while (f->plen > 0 && c->event == CORE_EV_NONE) {
        const char *lf = memchr(f->pend, '\n', f->plen);
        size_t len = lf ? (size_t)(lf - f->pend) + 1 : f->plen;
        if (feed_line(f, len) < len)
            break;
    }
    if (c->event == CORE_EV_TLS && f->plen > 0 && !c->tls_immediate_pending)
        injection(f); /* bytes after the 220 in the same read */
}

/* n more bytes arrive from the server (0: up to the next LF). */
static void receive(fx *f, size_t n)
{
    if (n == 0) {
        const uint8_t *lf = memchr(f->stream.p, '\n', f->stream.n);
        n = lf ? (size_t)(lf - f->stream.p) + 1 : f->stream.n;
    }
    if (n > PEND_MAX - f->plen)
        n = PEND_MAX - f->plen;
    const uint8_t *p;
    n = fz_take(&f->stream, n, &p);
    memcpy(f->pend + f->plen, p, n);
    f->plen += n;
}

/* ---- client bytes out ---- */

static bool tls_required(const fx *f)
{
    return f->mode == SMTPC_TLS_STARTTLS || f->mode == SMTPC_TLS_IMMEDIATE;
}

/* A command line the client finished writing: nothing but the greeting
 * exchange and STARTTLS before required TLS; MAIL only on an opened,
 * authenticated (when asked) session; AUTH only where allowed. */
static void check_command(fx *f, const char *cmd, size_t len)
{
    const core *c = &f->c;
#define IS(s) (len >= sizeof(s) - 1 && memcmp(cmd, s, sizeof(s) - 1) == 0)
    if (tls_required(f) && !c->tls)
        FZ_ASSERT(IS("EHLO ") || IS("HELO ") || IS("STARTTLS\r") || IS("QUIT\r"));
    if (IS("MAIL FROM:")) {
        FZ_ASSERT(c->opened && !c->botched);
        FZ_ASSERT(!f->auth_wanted || c->authenticated);
    }
    if (IS("AUTH "))
        FZ_ASSERT((c->tls && c->tls_verified) || f->insecure_auth);
#undef IS
}

/* Client bytes written: never a bare CR or LF; each command line checked. */
static void check_out_bytes(fx *f, const char *p, size_t n)
{
    const core *c = &f->c;
    for (size_t i = 0; i < n; i++) {
        if (f->cr_pending)
            FZ_ASSERT(p[i] == '\n'); /* no bare CR */
        else
            FZ_ASSERT(p[i] != '\n'); /* no bare LF */
        f->cr_pending = p[i] == '\r';
        if (f->cmdlen == 0)
            f->cmd_is_data = c->state == CS_BODY || c->state == CS_DATA_END ||
                             c->state == CS_DOT_EMPTY;
        if (f->cmdlen < sizeof f->cmd)
            f->cmd[f->cmdlen] = p[i];
        f->cmdlen++;
        if (p[i] == '\n') {
            if (!f->cmd_is_data)
                check_command(f, f->cmd, f->cmdlen < sizeof f->cmd ? f->cmdlen : sizeof f->cmd);
            f->cmdlen = 0;
        }
    }
}

static void do_write(fx *f, size_t amount, bool fail)
{
    core *c = &f->c;
    const char *p;
    size_t len = core_out(c, &p);
    FZ_ASSERT(len <= 16u * 1024 * 1024 + 65536 + 8);
    if (len == 0)
        return;
    if (fail) {
        core_write_failed(c, EPIPE, "Broken pipe");
        return;
    }
    size_t n = amount < len ? amount : len;
    /* AUTH only over verified TLS, or when insecure auth was allowed */
    if (c->out_secret)
        FZ_ASSERT((c->tls && c->tls_verified) || f->insecure_auth);
    check_out_bytes(f, p, n);
    core_out_done(c, n);
    f->out_total += n;
    FZ_ASSERT(f->out_total <= OUT_BOUND);
}

/* ---- driver events ---- */

static const unsigned char CB[32] = {0xc0, 0xff, 0xee};

static void tls_event(fx *f, unsigned e)
{
    core *c = &f->c;
    if (c->event != CORE_EV_TLS)
        return;
    if (f->plen > 0 && !c->tls_immediate_pending) {
        injection(f); /* session.c plaintext_waiting */
        return;
    }
    switch (e) {
    case 3:
        core_tls_up(c, true, "tls-exporter", CB, 32);
        break;
    case 4:
        core_tls_up(c, false, NULL, NULL, 0);
        break;
    case 5:
        core_tls_up(c, true, "tls-unique", CB, 12);
        break;
    case 6:
        core_tls_failed(c, SMTPC_ERR_TLS, "certificate verify failed");
        break;
    default:
        core_tls_failed(c, SMTPC_ERR_TIMEOUT, "timed out");
        break;
    }
}

static void io_event(fx *f, unsigned e)
{
    core *c = &f->c;
    if (f->op == OP_NONE || c->event != CORE_EV_NONE || f->conn_closed)
        return;
    if (e <= 1) {
        if (!core_wants_read(c))
            return; /* session.c reads only when the core waits for a reply */
        if (e == 0)
            core_eof(c);
        else
            core_io_failed(c, SMTPC_ERR_IO, ECONNRESET, "Connection reset by peer");
    } else {
        core_io_failed(c, SMTPC_ERR_TIMEOUT, ETIMEDOUT, "timeout waiting for the reply");
    }
}

static void run_out(fx *f);

static void action(fx *f, uint8_t a)
{
    core *c = &f->c;
    VERBOSE(f, "action %02x (op %d, state %d, event %d)\n", a, (int)f->op, (int)c->state,
            (int)c->event);
    bool io = f->op != OP_NONE && !f->conn_closed;
    switch (a >> 6) {
    case 0:
        begin(f, a & 3u);
        break;
    case 1:
        if (!io)
            break;
        receive(f, (a & 63u) == 63 ? 0 : (size_t)(a & 63u) + 1);
        if (c->event == CORE_EV_NONE)
            feed_buffered(f);
        break;
    case 2:
        if (io && c->event == CORE_EV_NONE)
            do_write(f, (size_t)1 << (a & 15u), ((a >> 4) & 3u) == 1);
        break;
    default:
        if ((a & 0x38u) == 0x38u)
            run_out(f);
        else if ((a & 7u) >= 3)
            tls_event(f, a & 7u);
        else
            io_event(f, a & 7u);
        break;
    }
    poll_event(f);
    check_not_stalled(f);
}

/* Runs the current operation to its end: write everything, feed the rest of
 * the stream, bring TLS up when asked, EOF when the stream is used up. */
static void run_out(fx *f)
{
    core *c = &f->c;
    for (int i = 0; i < AUTO_STEPS && f->op != OP_NONE; i++) {
        if (poll_event(f))
            break;
        FZ_ASSERT(!f->conn_closed);
        if (c->event == CORE_EV_TLS) {
            tls_event(f, 3);
        } else if (c->out_off != c->out_len || c->state == CS_BODY) {
            do_write(f, SIZE_MAX, false);
        } else if (core_wants_read(c)) {
            if (f->plen == 0 && f->stream.n > 0)
                receive(f, 0);
            if (f->plen > 0)
                feed_buffered(f);
            else
                core_eof(c);
        }
        poll_event(f);
        check_not_stalled(f);
    }
    FZ_ASSERT(f->op == OP_NONE); /* every operation ends */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    fx *f = calloc(1, sizeof *f);
    FZ_ASSERT(f != NULL);
    setup(f, &in);
    const uint8_t *acts;
    size_t nacts = fz_take(&in, fz_u8(&in), &acts);
    f->stream = in;
    for (size_t i = 0; i < nacts; i++)
        action(f, acts[i]);
    run_out(f);
    begin(f, 3); /* QUIT */
    run_out(f);
    teardown(f);
    free(f);
    return 0;
}
