/* send_nonblocking: the same delivery with smtpc's non-blocking API, the
 * body streamed from a read callback instead of held in memory.
 *
 *   send_nonblocking [-v] [--tls MODE] [--ca-file FILE] [--lines N]
 *                    HOST PORT FROM TO [TO...]
 *
 * MODE is starttls (default), immediate, opportunistic or none. The body is
 * generated line by line (N lines, default 1000) as the library asks for it.
 *
 * Each operation is started with a smtpc_begin_* call and driven by
 * smtpc_step(); between steps the program waits in poll() on
 * smtpc_session_fd() until smtpc_session_deadline_ms(). A real program
 * would put many sessions (and its other file descriptors) in one poll set;
 * the shape of the loop is the same.
 *
 * Uses nothing but <smtpc.h> and POSIX. */
#define _POSIX_C_SOURCE 200809L

#include <smtpc.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct opts {
    bool verbose;
    smtpc_tls_mode tls;
    const char *ca_file, *host, *from;
    unsigned port;
    long lines;
    char **to;
    int nto;
};

static int usage(void)
{
    fprintf(stderr, "usage: send_nonblocking [-v] [--tls starttls|immediate|opportunistic|none]\n"
                    "       [--ca-file FILE] [--lines N] HOST PORT FROM TO...\n");
    return 2;
}

static int parse_tls(const char *s, smtpc_tls_mode *m)
{
    const char *names[] = {[SMTPC_TLS_IMMEDIATE] = "immediate",
                           [SMTPC_TLS_STARTTLS] = "starttls",
                           [SMTPC_TLS_OPPORTUNISTIC] = "opportunistic",
                           [SMTPC_TLS_NONE] = "none"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i]) == 0) {
            *m = (smtpc_tls_mode)i;
            return 0;
        }
    return -1;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-v") == 0)
            o->verbose = true;
        else if (strcmp(a, "--tls") == 0 && v && parse_tls(v, &o->tls) == 0)
            i++;
        else if (strcmp(a, "--ca-file") == 0 && v)
            o->ca_file = argv[++i];
        else if (strcmp(a, "--lines") == 0 && v && (o->lines = atol(v)) >= 0)
            i++;
        else
            return -1;
    }
    if (argc - i < 4)
        return -1;
    char *end;
    unsigned long port = strtoul(argv[i + 1], &end, 10);
    if (*end || port == 0 || port > 65535)
        return -1;
    o->host = argv[i];
    o->port = (unsigned)port;
    o->from = argv[i + 2];
    o->to = argv + i + 3;
    o->nto = argc - i - 3;
    return 0;
}

/* ---- the event loop ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* the clock smtpc's deadlines use */
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs the operation started by a smtpc_begin_* call to its end: 0 done,
 * -1 failed (the error is on the session or, for a send, on the message).
 * The library checks its own deadlines inside smtpc_step(), so a poll()
 * that times out needs no handling: the next step reports the timeout. */
static int drive(smtpc_session *s)
{
    for (;;) {
        smtpc_status st = smtpc_step(s);
        if (st == SMTPC_DONE)
            return 0;
        if (st == SMTPC_FAILED)
            return -1;
        /* Ask again every time: connecting to the next address of a host
         * opens a new socket. */
        struct pollfd p = {.fd = smtpc_session_fd(s)};
        p.events = st == SMTPC_WANT_READ    ? POLLIN
                   : st == SMTPC_WANT_WRITE ? POLLOUT
                                            : POLLIN | POLLOUT;
        int timeout = -1;
        int64_t deadline = smtpc_session_deadline_ms(s);
        if (deadline >= 0) {
            int64_t left = deadline - now_ms();
            timeout = left < 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
        }
        if (poll(&p, 1, timeout) < 0 && errno != EINTR) {
            perror("poll");
            return -1;
        }
    }
}

/* ---- the streamed body ---- */

struct body {
    const struct opts *o;
    long line;          /* next line to generate; -1 = the header */
    char buf[512];      /* the current piece, not yet handed out */
    size_t off, len;
};

/* Produces the next piece of the message into b->buf; false at the end. */
static bool next_piece(struct body *b)
{
    int n;
    if (b->line < 0)
        n = snprintf(b->buf, sizeof b->buf, "From: <%s>\r\nTo: <%s>\r\n"
                     "Subject: smtpc streamed example\r\n\r\n", b->o->from, b->o->to[0]);
    else if (b->line < b->o->lines)
        /* Every tenth line starts with a dot: the library dot-stuffs it. */
        n = snprintf(b->buf, sizeof b->buf, "%sline %ld of a body smtpc never holds whole\r\n",
                     b->line % 10 == 9 ? "." : "", b->line + 1);
    else
        return false;
    b->line++;
    b->off = 0;
    b->len = n > 0 ? (size_t)n : 0;
    return true;
}

/* smtpc_read_fn: called from inside smtpc_step() whenever the library has
 * room for more data. Returns the byte count, 0 at the end, -1 on error. It
 * must not block for long: a slow source stalls the whole loop. */
static ssize_t read_body(void *userdata, char *out, size_t len)
{
    struct body *b = userdata;
    size_t n = 0;
    while (n < len && (b->off < b->len || next_piece(b))) {
        size_t k = b->len - b->off < len - n ? b->len - b->off : len - n;
        memcpy(out + n, b->buf + b->off, k);
        b->off += k;
        n += k;
    }
    return (ssize_t)n;
}

/* ---- the session ---- */

static void log_line(void *userdata, smtpc_log_level level, const char *msg)
{
    (void)userdata;
    (void)level;
    fprintf(stderr, "%s\n", msg);
}

static void print_error(const char *what, const smtpc_error *e)
{
    fprintf(stderr, "%s failed (%s, command %s): %s\n", what,
            smtpc_error_kind_name(smtpc_error_get_kind(e)),
            smtpc_command_name(smtpc_error_command(e)), smtpc_error_message(e));
}

static smtpc_message *make_message(const struct opts *o, struct body *b)
{
    smtpc_message *m = smtpc_message_new();
    if (!m || smtpc_message_set_from(m, o->from) != 0) {
        smtpc_message_free(m);
        return NULL;
    }
    for (int i = 0; i < o->nto; i++)
        if (smtpc_message_add_rcpt(m, o->to[i]) != 0) {
            smtpc_message_free(m);
            return NULL;
        }
    /* Size unknown (-1): no SIZE= parameter is sent. b is borrowed until
     * the send has finished. */
    smtpc_message_set_body_reader(m, read_body, b, -1);
    return m;
}

/* Sends the message; returns 0 when every recipient accepted it. */
static int send_message(smtpc_session *s, const struct opts *o)
{
    struct body b = {.o = o, .line = -1};
    smtpc_message *m = make_message(o, &b);
    if (!m) {
        fprintf(stderr, "invalid address or out of memory\n");
        return 2;
    }
    int rc = smtpc_begin_send(s, m) == 0 ? drive(s) : -1;
    bool all = rc == 0;
    for (size_t i = 0; i < smtpc_message_rcpt_count(m); i++) {
        bool ok = smtpc_message_rcpt_accepted(m, i);
        all = all && ok;
        printf("%s %s: %s\n", ok ? "accepted" : "rejected", smtpc_message_rcpt(m, i),
               smtpc_error_line(smtpc_message_rcpt_result(m, i)));
    }
    if (rc != 0)
        print_error("send", smtpc_message_error(m) ? smtpc_message_error(m)
                                                   : smtpc_session_error(s));
    smtpc_message_free(m);
    return all ? 0 : 1;
}

static smtpc_session *make_session(const struct opts *o)
{
    smtpc_config *cfg = smtpc_config_new();
    if (!cfg)
        return NULL;
    smtpc_config_set_tls_mode(cfg, o->tls);
    if (o->verbose)
        smtpc_config_set_log(cfg, log_line, NULL, SMTPC_LOG_TRACE);
    smtpc_session *s = NULL;
    if (!o->ca_file || smtpc_config_set_ca_file(cfg, o->ca_file) == 0)
        s = smtpc_session_new(cfg);
    smtpc_config_free(cfg);
    return s;
}

int main(int argc, char **argv)
{
    struct opts o = {.tls = SMTPC_TLS_STARTTLS, .lines = 1000};
    if (parse_args(argc, argv, &o) != 0)
        return usage();
    smtpc_session *s = make_session(&o);
    if (!s)
        return 2;
    int status = 1;
    /* Name resolution inside smtpc_begin_connect is a blocking getaddrinfo(). */
    if (smtpc_begin_connect(s, o.host, (uint16_t)o.port) != 0 || drive(s) != 0 ||
        smtpc_begin_open(s) != 0 || drive(s) != 0)
        print_error("session", smtpc_session_error(s));
    else
        status = send_message(s, &o);
    if (smtpc_begin_quit(s) == 0)
        (void)drive(s); /* QUIT, then the connection is closed either way */
    smtpc_session_free(s);
    return status;
}
