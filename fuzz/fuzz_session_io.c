/* The public non-blocking API over a real socket (src/session.c,
 * src/transport.c, src/tls.c): the fuzzer is the server at the other end
 * of a socketpair. Where fuzz_session drives the core alone, this one runs
 * the driver that owns the socket: buffering, the STARTTLS injection check,
 * TLS handshakes against hostile bytes, EOF and write errors.
 *
 * Input:
 *   byte 0  bits 0-1 TLS mode, bit 2 pipelining, bit 3 authenticate
 *           (PLAIN, without insecure auth), bits 4-6 recipients (0-7),
 *           bit 7 greedy server (sends ahead instead of reply by reply)
 *   byte 1  number k (0-15) of chunk-size bytes that follow
 *   rest    the server's byte stream
 * Open, send and QUIT run one after the other, each until smtpc_step says
 * it is done. Whenever the client waits, the server sends the next chunk:
 * of the next size (+1) when sizes were given, else the next reply (up to
 * a line without "-" after the code), or everything left when greedy; then
 * EOF once the stream is used up.
 * FUZZ_TRACE=1 prints the session's trace.
 *
 * Invariants: every operation ends once the server has closed (no spin, no
 * hang); a send that succeeds has no message error and an accepted
 * recipient, one that fails has an error; no recipient is accepted and
 * failed at once; without verified TLS the client never sends AUTH, and
 * when TLS is required (it can never come up against fuzz bytes) never
 * MAIL, RCPT or AUTH; the socket is closed when the session is freed. */
#include "fuzz.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

#include "smtpc.h"

#define MAX_STEPS 20000
#define OUT_CAP (1024 * 1024)

typedef struct server {
    int fd;
    fz_in stream;
    const uint8_t *sizes;
    size_t nsizes, k;
    bool eof_sent, greedy;
    char *seen;             /* everything the client wrote (bounded) */
    size_t nseen;
    bool tls_required;
} server;

/* An empty directory as the trust store: TLS setup stays cheap, and no
 * certificate can ever verify. */
static char trust_dir[256];

int LLVMFuzzerInitialize(int *argc, char ***argv);

static void remove_trust_dir(void)
{
    rmdir(trust_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *tmp = getenv("TMPDIR");
    snprintf(trust_dir, sizeof trust_dir, "%s/smtpc-fuzz-ca.XXXXXX", tmp ? tmp : "/tmp");
    if (mkdtemp(trust_dir) == NULL)
        abort();
    atexit(remove_trust_dir);
    return 0;
}

/* FUZZ_TRACE=1: the session's trace on standard error. */
static void trace(void *ud, smtpc_log_level level, const char *msg)
{
    (void)ud;
    (void)level;
    fprintf(stderr, "  %s\n", msg);
}

static void drain(server *sv)
{
    char buf[16384];
    for (;;) {
        ssize_t n = recv(sv->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0)
            return;
        size_t room = OUT_CAP - sv->nseen;
        size_t take = (size_t)n < room ? (size_t)n : room;
        memcpy(sv->seen + sv->nseen, buf, take);
        sv->nseen += take;
    }
}

/* Bytes up to the end of the next reply: its line without "-" after the code. */
static size_t next_reply(const uint8_t *p, size_t n)
{
    size_t off = 0;
    while (off < n) {
        const uint8_t *lf = memchr(p + off, '\n', n - off);
        size_t end = lf ? (size_t)(lf - p) + 1 : n;
        bool more = end - off >= 4 && p[off + 3] == '-';
        off = end;
        if (!more)
            break;
    }
    return off;
}

/* The server's turn: the next chunk, or EOF once the stream is used up. */
static void serve(server *sv)
{
    drain(sv);
    if (sv->stream.n == 0) {
        if (!sv->eof_sent)
            shutdown(sv->fd, SHUT_WR);
        sv->eof_sent = true;
        return;
    }
    size_t want = sv->greedy ? sv->stream.n : next_reply(sv->stream.p, sv->stream.n);
    if (sv->nsizes > 0)
        want = (size_t)sv->sizes[sv->k++ % sv->nsizes] + 1;
    if (want > sv->stream.n)
        want = sv->stream.n;
    ssize_t n = send(sv->fd, sv->stream.p, want, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
        sv->stream.p += n;
        sv->stream.n -= (size_t)n;
    } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        sv->stream.n = 0; /* the client closed: nothing more can arrive */
    }
}

/* Runs the operation just begun to its end. */
static smtpc_status run(smtpc_session *s, server *sv)
{
    for (int i = 0; i < MAX_STEPS; i++) {
        smtpc_status st = smtpc_step(s);
        FZ_ASSERT(st >= SMTPC_DONE && st <= SMTPC_FAILED);
        if (st == SMTPC_DONE || st == SMTPC_FAILED)
            return st;
        serve(sv);
    }
    FZ_ASSERT(0 && "operation did not end after the server closed");
    return SMTPC_FAILED;
}

static void check_message(const smtpc_message *m, smtpc_status st)
{
    size_t accepted = 0;
    for (size_t i = 0; i < smtpc_message_rcpt_count(m); i++) {
        const smtpc_error *r = smtpc_message_rcpt_result(m, i);
        if (smtpc_message_rcpt_accepted(m, i)) {
            FZ_ASSERT(smtpc_error_get_kind(r) == SMTPC_ERR_NONE && smtpc_error_code(r) == 250);
            accepted++;
        }
    }
    const smtpc_error *e = smtpc_message_error(m);
    if (st == SMTPC_DONE)
        FZ_ASSERT(e == NULL && accepted > 0);
    else
        FZ_ASSERT(e != NULL && smtpc_error_message(e)[0] != '\0');
}

static void check_wire(const server *sv, bool auth_allowed)
{
    const char *p = sv->seen;
    size_t n = sv->nseen;
    if (!auth_allowed)
        FZ_ASSERT(memmem(p, n, "AUTH ", 5) == NULL);
    if (sv->tls_required) {
        FZ_ASSERT(memmem(p, n, "MAIL FROM:", 10) == NULL);
        FZ_ASSERT(memmem(p, n, "RCPT TO:", 8) == NULL);
        FZ_ASSERT(memmem(p, n, "AUTH ", 5) == NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    uint8_t c0 = fz_u8(&in);
    server sv = {0};
    sv.nsizes = fz_take(&in, fz_u8(&in) % 16, &sv.sizes);
    sv.stream = in;
    sv.greedy = (c0 & 0x80) != 0;
    smtpc_tls_mode mode = (smtpc_tls_mode)(c0 & 3);
    sv.tls_required = mode == SMTPC_TLS_STARTTLS || mode == SMTPC_TLS_IMMEDIATE;

    smtpc_config *cfg = smtpc_config_new();
    FZ_ASSERT(cfg != NULL);
    smtpc_config_set_tls_mode(cfg, mode);
    smtpc_config_set_pipelining(cfg, (c0 & 4) != 0);
    smtpc_config_set_ehlo_name(cfg, "client.test");
    smtpc_config_set_ca_dir(cfg, trust_dir);
    if (getenv("FUZZ_TRACE") != NULL)
        smtpc_config_set_log(cfg, trace, NULL, SMTPC_LOG_TRACE);
    if (c0 & 8)
        smtpc_config_set_auth(cfg, "PLAIN", "user", "S3cr3t-Pa55w0rd");
    smtpc_session *s = smtpc_session_new(cfg);
    smtpc_config_free(cfg);
    FZ_ASSERT(s != NULL);

    int fds[2];
    FZ_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    sv.fd = fds[1];
    sv.seen = malloc(OUT_CAP);
    FZ_ASSERT(sv.seen != NULL);
    FZ_ASSERT(smtpc_attach_fd(s, fds[0], "mx.test") == 0);

    smtpc_message *m = smtpc_message_new();
    FZ_ASSERT(m != NULL);
    smtpc_message_set_from(m, "a@x.test");
    static const char *const rcpts[] = {"r0@y.test", "r1@y.test", "r2@z.test", "r3@y.test",
                                        "r4@y.test", "r5@z.test", "r6@y.test"};
    for (unsigned i = 0; i < ((c0 >> 4) & 7u); i++)
        smtpc_message_add_rcpt(m, rcpts[i]);
    static const char body[] = "Subject: x\r\n\r\n.dot\r\nbody\r\n";
    smtpc_message_set_body(m, body, sizeof body - 1);

    if (smtpc_begin_open(s) == 0)
        (void)run(s, &sv);
    if (smtpc_begin_send(s, m) == 0)
        check_message(m, run(s, &sv));
    if (smtpc_begin_quit(s) == 0)
        (void)run(s, &sv);
    if (getenv("FUZZ_TRACE") != NULL)
        fprintf(stderr, "session error: %s\n", smtpc_error_message(smtpc_session_error(s)));
    drain(&sv);
    check_wire(&sv, false);

    smtpc_session_free(s);
    /* the session owned the socket: it must be closed now */
    FZ_ASSERT(fcntl(fds[0], F_GETFD) == -1 && errno == EBADF);
    close(fds[1]);
    smtpc_message_free(m);
    free(sv.seen);
    return 0;
}
