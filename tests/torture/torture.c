/* Allocation-failure ("torture") test.
 *
 * One iteration runs six whole sessions against the in-process server
 * (server.c), each connect, greeting, EHLO, a 3-recipient message and QUIT:
 *   1. STARTTLS verified against a CA made at start-up, AUTH SCRAM-SHA-256,
 *      pipelining;
 *   2. the same with AUTH PLAIN, no pipelining, a rejected recipient, the
 *      body from a read callback, RSET;
 *   3. a socket of ours handed over with smtpc_attach_fd, STARTTLS verified
 *      by DANE-EE while PKIX fails (no trusted CA, not enforced: a TLSRPT
 *      detail), no AUTH;
 *   4. opportunistic TLS against a server without STARTTLS (a TLSRPT detail);
 *   5. implicit TLS, AUTH "auto" choosing SCRAM-SHA-256-PLUS (tls-exporter
 *      channel binding), the message sent twice;
 *   6. STARTTLS, AUTH CRAM-MD5.
 * Iteration N makes the N-th allocation of the library fail
 * (alloc.c), for N = 1, 2, ... until an iteration makes fewer than N
 * allocations and so runs clean; then the same again with every allocation
 * from the N-th on failing ("persistent"). Each iteration must end either in
 * success that the server confirms, or in a clean failure: the failing call
 * returns -1 or NULL, its error has kind nomem, a message, and is not
 * permanent; no recipient result says both or neither; nothing the library
 * allocated is left (leak check per iteration, LeakSanitizer at exit under
 * ASan), no file descriptor either; no hang (client timeouts, and a watchdog).
 *
 *     torture [-v] [-n N] [-p|-o] [-l]
 *       -n N  run only iteration N (with -p: persistent), verbose
 *       -p    persistent mode only; -o one-shot mode only
 *       -l    lenient: accept any clean error kind, not only nomem
 *       -v    print every iteration
 */
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <smtpc.h>

#include "alloc.h"
#include "server.h"

#define TIMEOUT_MS 5000
#define WATCHDOG_S 60
#define MAX_REPORTS 25
/* An iteration this slow waited for a client timeout somewhere: a hang
 * that a timeout ended. Far above a loaded ASan run (~50 ms). */
#define SLOW_MS (TIMEOUT_MS - 1000)

typedef enum { RES_OK = 0, RES_FAILED, RES_BAD } result;

typedef struct scenario {
    const char *name;
    srv_kind kind;
    smtpc_tls_mode tls;
    const char *mech;   /* NULL: no AUTH */
    const char *want_mech; /* what the server must see ("auto" chooses) */
    bool dane;          /* DANE-EE record; PKIX (no trusted CA) fails, not enforced */
    bool reader;        /* body from a read callback, else from memory */
    const char *tls_name; /* NULL: the certificate is checked for the IP */
    bool local_address; /* bind to 127.0.0.1 before connecting */
    bool attach;        /* connect a socket ourselves, smtpc_attach_fd */
    bool reset;         /* RSET after the message */
    int messages;       /* how many times the message is sent */
    const char *rcpts[3];
} scenario;

static const scenario scenarios[] = {
    {.name = "scram+pipelining", .kind = SRV_PIPELINING, .tls = SMTPC_TLS_STARTTLS,
     .mech = "SCRAM-SHA-256", .want_mech = "SCRAM-SHA-256", .tls_name = "localhost",
     .messages = 1, .rcpts = {"a@example.net", "b@example.net", "c@example.net"}},
    {.name = "plain", .kind = SRV_PLAIN, .tls = SMTPC_TLS_STARTTLS, .mech = "PLAIN",
     .want_mech = "PLAIN", .reader = true, .local_address = true, .reset = true,
     .messages = 1, .rcpts = {"d@example.net", SRV_REJECT, "e@example.net"}},
    {.name = "dane", .kind = SRV_NOAUTH, .tls = SMTPC_TLS_STARTTLS, .dane = true,
     .tls_name = "mx.test", .attach = true, .messages = 1,
     .rcpts = {"f@example.net", "g@example.net", "h@example.net"}},
    {.name = "opportunistic", .kind = SRV_NOTLS, .tls = SMTPC_TLS_OPPORTUNISTIC,
     .reader = true, .messages = 1, .rcpts = {"i@example.net", "j@example.net", "k@example.net"}},
    {.name = "implicit+scram-plus", .kind = SRV_IMPLICIT, .tls = SMTPC_TLS_IMMEDIATE,
     .mech = "auto", .want_mech = "SCRAM-SHA-256-PLUS", .tls_name = "localhost",
     .messages = 2, .rcpts = {"l@example.net", "m@example.net", "n@example.net"}},
    {.name = "cram-md5", .kind = SRV_PLAIN, .tls = SMTPC_TLS_STARTTLS, .mech = "CRAM-MD5",
     .want_mech = "CRAM-MD5", .tls_name = "localhost", .messages = 1,
     .rcpts = {"o@example.net", "p@example.net", SRV_REJECT}},
};
#define NSCENARIOS (sizeof scenarios / sizeof scenarios[0])

static const char body[] = "From: <sender@example.org>\r\n"
                           "To: <a@example.net>\r\n"
                           "Subject: torture\r\n"
                           "\r\n"
                           ".a line starting with a dot\r\n"
                           "..two dots\r\n"
                           ".\r\n"
                           "last line\r\n";

typedef struct iter {
    server *srv;
    unsigned long n;    /* the failing allocation, 0 none */
    bool persistent;
    bool lenient;
    bool verbose;
    bool warm;          /* libraries have opened what they keep open */
    long ms;            /* how long the iteration took */
    const char *scenario; /* the session that ended the iteration */
    const char *failed_at; /* the call that failed cleanly */
    char why[768];      /* what was wrong (RES_BAD) */
} iter;

/* One session's handles and what the client concluded. */
typedef struct run {
    smtpc_session *s;
    smtpc_message *m;
    int port;            /* client port once connected, 0 before */
    unsigned long since; /* server's connection count before connecting */
    bool opened;         /* smtpc_open returned 0 */
    int attempts;        /* smtpc_send calls */
    int sent;            /* smtpc_send calls that returned 0 */
    bool accepted[3];    /* of the last send that succeeded */
    size_t body_off;     /* body reader position */
} run;

/* Read by the signal handlers. */
static volatile sig_atomic_t cur_n, cur_persistent;

static result bad(iter *it, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static result bad(iter *it, const char *fmt, ...)
{
    if (it->why[0])
        return RES_BAD;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(it->why, sizeof it->why, fmt, ap);
    va_end(ap);
    return RES_BAD;
}

/* A call failed: it must be because of the injected failure, and its error
 * (e, when the call has one) must be clean. */
static result failed(iter *it, const char *call, const smtpc_error *e)
{
    it->failed_at = call;
    if (!alloc_injected())
        return bad(it, "%s failed with no allocation failure injected: %s: %s", call,
                   smtpc_error_kind_name(smtpc_error_get_kind(e)), smtpc_error_message(e));
    if (!e)
        return RES_FAILED;
    smtpc_error_kind k = smtpc_error_get_kind(e);
    const char *msg = smtpc_error_message(e);
    if (k == SMTPC_ERR_NONE)
        return bad(it, "%s failed but its error has kind none", call);
    if (!msg[0])
        return bad(it, "%s failed with kind %s and an empty message", call,
                   smtpc_error_kind_name(k));
    if (!it->lenient && k != SMTPC_ERR_NOMEM)
        return bad(it, "%s failed with kind %s, not nomem: %s", call, smtpc_error_kind_name(k),
                   msg);
    if (smtpc_error_permanent(e))
        return bad(it, "%s failed with a permanent error: %s", call, msg);
    return RES_FAILED;
}

static void log_fn(void *ud, smtpc_log_level level, const char *msg)
{
    (void)level;
    (void)msg;
    ++*(unsigned long *)ud;
}
static unsigned long log_lines;

static result configure(iter *it, const scenario *sc, smtpc_config *cfg)
{
    smtpc_config_set_log(cfg, log_fn, &log_lines, SMTPC_LOG_TRACE_DATA);
    smtpc_config_set_tls_mode(cfg, sc->tls);
    smtpc_config_set_all_timeouts(cfg, TIMEOUT_MS);
    if (smtpc_config_set_ehlo_name(cfg, "client.example") != 0)
        return failed(it, "smtpc_config_set_ehlo_name", NULL);
    if (sc->dane) {
        smtpc_config_set_tls_verify_pkix(cfg, false);
        if (smtpc_config_add_tlsa_text(cfg, server_tlsa(it->srv)) != 0)
            return failed(it, "smtpc_config_add_tlsa_text", NULL);
        if (smtpc_config_add_dane_name(cfg, "mx.test") != 0)
            return failed(it, "smtpc_config_add_dane_name", NULL);
        if (smtpc_config_set_ca_dir(cfg, server_empty_dir(it->srv)) != 0)
            return failed(it, "smtpc_config_set_ca_dir", NULL);
    } else if (smtpc_config_set_ca_file(cfg, server_ca_file(it->srv)) != 0) {
        return failed(it, "smtpc_config_set_ca_file", NULL);
    }
    if (sc->tls_name && smtpc_config_set_tls_name(cfg, sc->tls_name) != 0)
        return failed(it, "smtpc_config_set_tls_name", NULL);
    if (sc->local_address && smtpc_config_set_local_address(cfg, "127.0.0.1") != 0)
        return failed(it, "smtpc_config_set_local_address", NULL);
    if (sc->mech && smtpc_config_set_auth(cfg, sc->mech, SRV_USER, SRV_PASS) != 0)
        return failed(it, "smtpc_config_set_auth", NULL);
    return RES_OK;
}

static ssize_t read_body(void *ud, char *buf, size_t len)
{
    run *r = ud;
    size_t n = sizeof body - 1 - r->body_off;
    if (n > len)
        n = len;
    if (n > 13)
        n = 13; /* small pieces: dot-stuffing state across reads */
    memcpy(buf, body + r->body_off, n);
    r->body_off += n;
    return (ssize_t)n;
}

static int rewind_body(void *ud)
{
    ((run *)ud)->body_off = 0;
    return 0;
}

static result make_message(iter *it, const scenario *sc, run *r)
{
    r->m = smtpc_message_new();
    if (!r->m)
        return failed(it, "smtpc_message_new", NULL);
    if (smtpc_message_set_from(r->m, "sender@example.org") != 0)
        return failed(it, "smtpc_message_set_from", NULL);
    for (size_t i = 0; i < 3; i++)
        if (smtpc_message_add_rcpt(r->m, sc->rcpts[i]) != 0)
            return failed(it, "smtpc_message_add_rcpt", NULL);
    if (sc->reader) {
        smtpc_message_set_body_reader(r->m, read_body, r, (int64_t)sizeof body - 1);
        smtpc_message_set_body_rewind(r->m, rewind_body);
    } else {
        smtpc_message_set_body(r->m, body, sizeof body - 1);
    }
    return RES_OK;
}

/* Each recipient is accepted (kind none, 2xx) or not (an error kind, or code
 * 0: no reply); never both, never neither. */
static result check_rcpts(iter *it, const scenario *sc, run *r, int rc, bool accepted[3])
{
    if (smtpc_message_rcpt_count(r->m) != 3)
        return bad(it, "message has %zu recipients", smtpc_message_rcpt_count(r->m));
    for (size_t i = 0; i < 3; i++) {
        const smtpc_error *e = smtpc_message_rcpt_result(r->m, i);
        bool acc = smtpc_message_rcpt_accepted(r->m, i);
        smtpc_error_kind k = smtpc_error_get_kind(e);
        int code = smtpc_error_code(e);
        accepted[i] = acc;
        if (!e && (rc == 0 || acc))
            return bad(it, "recipient %zu has no result after the send", i);
        if (acc && (k != SMTPC_ERR_NONE || code / 100 != 2))
            return bad(it, "recipient %zu accepted with kind %s code %d", i,
                       smtpc_error_kind_name(k), code);
        if (e && !acc && k == SMTPC_ERR_NONE && code != 0)
            return bad(it, "recipient %zu neither accepted nor failed (code %d)", i, code);
        bool want = strcmp(sc->rcpts[i], SRV_REJECT) != 0;
        if (rc == 0 && acc != want)
            return bad(it, "recipient %zu: accepted %d, the server said %d", i, acc, want);
    }
    return RES_OK;
}

static result send_message(iter *it, const scenario *sc, run *r)
{
    bool accepted[3];
    r->attempts++;
    int rc = smtpc_send(r->s, r->m);
    result res = check_rcpts(it, sc, r, rc, accepted);
    if (res != RES_OK)
        return res;
    const smtpc_error *me = smtpc_message_error(r->m);
    if (rc == 0 && me)
        return bad(it, "smtpc_send succeeded with a message error: %s", smtpc_error_message(me));
    if (rc != 0)
        return failed(it, "smtpc_send", me ? me : smtpc_session_error(r->s));
    r->sent++;
    memcpy(r->accepted, accepted, sizeof accepted);
    return RES_OK;
}

/* The TLS outcome and its report: nothing lost to a tolerated failure. */
static result check_open(iter *it, const scenario *sc, const smtpc_session *s)
{
    const smtpc_tlsrpt *rr = smtpc_session_tlsrpt(s, SMTPC_TLSRPT_RECIPIENT_DOMAIN);
    const smtpc_tlsrpt *rh = smtpc_session_tlsrpt(s, SMTPC_TLSRPT_HOST);
    const char *type = smtpc_tlsrpt_detail_field(rr, 0, "result-type");
    if (sc->tls == SMTPC_TLS_OPPORTUNISTIC) {
        if (smtpc_tls_active(s))
            return bad(it, "TLS with a server that does not offer STARTTLS");
        if (smtpc_tlsrpt_detail_count(rr) != 1 || smtpc_tlsrpt_detail_count(rh) != 1 ||
            strcmp(type ? type : "", "starttls-not-supported") != 0)
            return bad(it, "the TLS reports lack starttls-not-supported");
        return RES_OK;
    }
    if (!smtpc_tls_active(s))
        return bad(it, "smtpc_open succeeded without TLS");
    if (sc->dane) {
        if (!smtpc_tls_dane_record(s) || smtpc_tls_pkix_verified(s))
            return bad(it, "DANE did not verify, or PKIX did");
        if (smtpc_tlsrpt_detail_count(rr) != 1 || smtpc_tlsrpt_success(rr) != 1)
            return bad(it, "the recipient-domain TLS report lacks the PKIX failure");
        return RES_OK;
    }
    if (!smtpc_tls_pkix_verified(s) || smtpc_tlsrpt_success(rr) != 1)
        return bad(it, "smtpc_open succeeded without verified TLS");
    return RES_OK;
}

static int local_port(int fd)
{
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    if (fd < 0 || getsockname(fd, (struct sockaddr *)&a, &al) != 0)
        return 0;
    return ntohs(a.sin_port);
}

/* Our own connection, handed over: the session owns it once attached. */
static result attach(iter *it, const scenario *sc, run *r)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((uint16_t)server_port(it->srv, sc->kind))};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return bad(it, "cannot connect to the server: %s", strerror(errno));
    }
    r->port = local_port(fd);
    if (smtpc_attach_fd(r->s, fd, "127.0.0.1") != 0) {
        close(fd); /* still ours: the call failed */
        return failed(it, "smtpc_attach_fd", smtpc_session_error(r->s));
    }
    return RES_OK;
}

static result session_steps(iter *it, const scenario *sc, run *r)
{
    smtpc_config *cfg = smtpc_config_new();
    if (!cfg)
        return failed(it, "smtpc_config_new", NULL);
    result res = configure(it, sc, cfg);
    if (res == RES_OK && !(r->s = smtpc_session_new(cfg)))
        res = failed(it, "smtpc_session_new", NULL);
    smtpc_config_free(cfg);
    if (res != RES_OK)
        return res;
    r->since = server_seq(it->srv);
    if (sc->attach) {
        if ((res = attach(it, sc, r)) != RES_OK)
            return res;
    } else {
        if (smtpc_connect(r->s, "127.0.0.1", (uint16_t)server_port(it->srv, sc->kind)) != 0)
            return failed(it, "smtpc_connect", smtpc_session_error(r->s));
        r->port = local_port(smtpc_session_fd(r->s));
    }
    if (smtpc_open(r->s) != 0)
        return failed(it, "smtpc_open", smtpc_session_error(r->s));
    r->opened = true;
    if ((res = check_open(it, sc, r->s)) != RES_OK || (res = make_message(it, sc, r)) != RES_OK)
        return res;
    for (int i = 0; i < sc->messages; i++)
        if ((res = send_message(it, sc, r)) != RES_OK)
            return res;
    if (sc->reset && smtpc_reset(r->s) != 0)
        return failed(it, "smtpc_reset", smtpc_session_error(r->s));
    if (smtpc_quit(r->s) != 0)
        return failed(it, "smtpc_quit", smtpc_session_error(r->s));
    return RES_OK;
}

/* What the server saw must agree with what the client reported. */
static result check_server(iter *it, const scenario *sc, const run *r)
{
    static srv_record rec; /* large; only the client thread uses it */
    if (server_wait(it->srv, r->since, r->port, 2 * TIMEOUT_MS, &rec) != 0)
        return bad(it, "the server never finished the connection from port %d", r->port);
    if (rec.anomaly[0])
        return bad(it, "the server saw a protocol violation: %s", rec.anomaly);
    if (r->opened && strcmp(rec.mech, sc->want_mech ? sc->want_mech : "") != 0)
        return bad(it, "authenticated with \"%s\", expected \"%s\"", rec.mech,
                   sc->want_mech ? sc->want_mech : "");
    /* A failure after the final dot may still have delivered. */
    if (rec.delivered > r->attempts || rec.delivered < r->sent)
        return bad(it, "%d messages delivered, %d sends succeeded of %d", rec.delivered, r->sent,
                   r->attempts);
    if (!r->sent)
        return RES_OK;
    if (rec.body_len != sizeof body - 1 || memcmp(rec.body, body, rec.body_len) != 0)
        return bad(it, "the server received a different body");
    int n = 0;
    for (size_t i = 0; i < 3; i++) {
        if (!r->accepted[i])
            continue;
        if (n >= rec.nrcpts || strcmp(rec.rcpts[n], sc->rcpts[i]) != 0)
            return bad(it, "recipient %s reported accepted, not accepted by the server",
                       sc->rcpts[i]);
        n++;
    }
    if (n != rec.nrcpts)
        return bad(it, "the server accepted %d recipients, the client reports %d", rec.nrcpts, n);
    return RES_OK;
}

static result session(iter *it, const scenario *sc)
{
    run r = {0};
    it->scenario = sc->name;
    result res = session_steps(it, sc, &r);
    if (res != RES_OK && r.s && smtpc_quit(r.s) != 0 &&
        smtpc_error_get_kind(smtpc_session_error(r.s)) == SMTPC_ERR_NONE)
        res = bad(it, "smtpc_quit after a failure failed with no error");
    smtpc_message_free(r.m);
    smtpc_session_free(r.s);
    if (r.port) {
        result sr = check_server(it, sc, &r);
        if (sr == RES_BAD)
            res = RES_BAD;
    }
    return res;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* One iteration: every scenario in turn until one fails. */
static result iteration(iter *it, unsigned long *count)
{
    int fds = count_fds();
    cur_n = (sig_atomic_t)it->n;
    cur_persistent = it->persistent;
    it->why[0] = '\0';
    it->failed_at = NULL;
    alarm(WATCHDOG_S);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    alloc_arm(it->n, it->persistent);
    result res = RES_OK;
    for (size_t i = 0; i < NSCENARIOS && res == RES_OK; i++)
        res = session(it, &scenarios[i]);
    *count = alloc_disarm();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    alarm(0);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    if (ms >= SLOW_MS && res != RES_BAD)
        res = bad(it, "took %ld ms (waited for a timeout)", ms);
    it->ms = ms;
    int fds_after = count_fds();
    if (fds_after != fds && it->warm && res != RES_BAD)
        res = bad(it, "%d file descriptor(s) leaked", fds_after - fds);
    if (alloc_live() > 0) {
        res = bad(it, "%zu allocation(s) leaked (listed above)", alloc_live());
        fprintf(stderr, "torture: leaks in %s iteration %lu:\n",
                it->persistent ? "persistent" : "one-shot", it->n);
        alloc_report_live(stderr, 10);
    }
    return res;
}

static void report(iter *it, result res)
{
    const char *mode = it->persistent ? "persistent" : "one-shot";
    if (res == RES_BAD && it->why[0]) {
        fprintf(stderr, "torture: FAIL %s iteration %lu, session %s: %s\n    injected at ", mode,
                it->n, it->scenario, it->why);
        alloc_report_injected(stderr);
        fputc('\n', stderr);
    } else if (it->verbose) {
        fprintf(stderr, "torture: %s iteration %lu (%ld ms, %s): %s%s%s", mode, it->n, it->ms,
                it->scenario,
                res == RES_OK ? "success" : res == RES_FAILED ? "clean failure in " : "FAIL",
                res == RES_FAILED ? it->failed_at : "", alloc_injected() ? ", injected at " : "");
        if (alloc_injected())
            alloc_report_injected(stderr);
        fputc('\n', stderr);
    }
}

typedef struct totals {
    unsigned long points, clean, tolerated, bad;
} totals;

/* Iterations 1, 2, ... until one runs with nothing injected. */
static void mode_loop(iter *it, unsigned long baseline, totals *t)
{
    for (it->n = 1;; it->n++) {
        unsigned long count;
        result res = iteration(it, &count);
        bool inj = alloc_injected();
        if (res == RES_BAD && t->bad++ < MAX_REPORTS)
            report(it, res);
        else if (it->verbose)
            report(it, res);
        if (!inj)
            break; /* count < n: the whole run fits below the failure point */
        t->points++;
        if (res == RES_OK)
            t->tolerated++;
        else if (res == RES_FAILED)
            t->clean++;
        if (it->n > 4 * baseline + 100) {
            fprintf(stderr, "torture: no end after %lu iterations\n", it->n);
            t->bad++;
            break;
        }
    }
}

/* The harness itself: the wrappers are linked in, count, fail and track.
 * Without --wrap every iteration would "pass" having injected nothing. */
static void *volatile keep;
static int selfcheck(void)
{
    alloc_arm(1, false);
    keep = malloc(16);
    bool failed_first = keep == NULL && alloc_injected();
    keep = malloc(16);
    bool tracked = keep != NULL && alloc_live() == 1;
    unsigned long n = alloc_disarm();
    if (tracked)
        alloc_report_live(stdout, 0); /* forget it: it is freed below */
    free(keep);
    if (!failed_first || !tracked || n != 2) {
        fprintf(stderr, "torture: the allocation wrappers do not work (linked without "
                        "-Wl,--wrap?)\n");
        return -1;
    }
    return 0;
}

static void on_alarm(int sig)
{
    (void)sig;
    char msg[128];
    int n = snprintf(msg, sizeof msg, "torture: %s iteration %ld hangs (watchdog)\n",
                     cur_persistent ? "persistent" : "one-shot", (long)cur_n);
    (void)!write(2, msg, (size_t)n);
    _exit(2);
}

/* Under a sanitizer: name the iteration when it reports an error. */
extern void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));
static void on_death(void)
{
    fprintf(stderr, "torture: died in %s iteration %ld\n",
            cur_persistent ? "persistent" : "one-shot", (long)cur_n);
}

int main(int argc, char **argv)
{
    iter it = {0};
    bool one_shot = true, persistent = true;
    long only = -1;
    int opt;
    while ((opt = getopt(argc, argv, "vn:pol")) != -1) {
        switch (opt) {
        case 'v': it.verbose = true; break;
        case 'n': only = strtol(optarg, NULL, 10); it.verbose = true; break;
        case 'p': one_shot = false; break;
        case 'o': persistent = false; break;
        case 'l': it.lenient = true; break;
        default:
            fprintf(stderr, "usage: torture [-v] [-n N] [-p|-o] [-l]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    if (__sanitizer_set_death_callback)
        __sanitizer_set_death_callback(on_death);
    if (selfcheck() != 0)
        return 1;
    it.srv = server_start();
    if (!it.srv)
        return 1;

    /* A first run lets OpenSSL & co open whatever files they keep open. */
    unsigned long baseline = 0;
    result res = iteration(&it, &baseline);
    it.warm = true;
    if (res == RES_OK)
        res = iteration(&it, &baseline);
    if (res != RES_OK) {
        fprintf(stderr, "torture: the session fails with no allocation failure: %s\n", it.why);
        server_stop(it.srv);
        return 1;
    }
    printf("torture: a full run (%zu sessions) makes %lu allocations in smtpc\n", NSCENARIOS,
           baseline);

    int status = 0;
    if (only >= 0) {
        it.n = (unsigned long)only;
        it.persistent = !one_shot;
        unsigned long count;
        res = iteration(&it, &count);
        report(&it, res);
        status = res == RES_BAD;
    } else {
        for (int p = 0; p < 2; p++) {
            if (!(p ? persistent : one_shot))
                continue;
            totals t = {0};
            it.persistent = p;
            mode_loop(&it, baseline, &t);
            printf("torture: %s: %lu failure points, %lu clean failures, %lu tolerated "
                   "(success), %lu bad\n",
                   p ? "persistent" : "one-shot", t.points, t.clean, t.tolerated, t.bad);
            if (t.bad)
                status = 1;
        }
    }
    server_stop(it.srv);
    printf("torture: %s (%lu log lines)\n", status ? "FAILED" : "ok", log_lines);
    return status;
}
