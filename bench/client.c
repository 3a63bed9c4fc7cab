/*
 * bench/client: delivers N small messages over one SMTP session with
 * libsmtpc, using only the public API (include/smtpc.h), and prints the
 * rate. Plaintext (SMTPC_TLS_NONE): this measures the client's SMTP work,
 * not OpenSSL.
 *
 * Usage: client [-n COUNT] [-l BYTES] [--no-pipelining] [HOST:]PORT
 *
 * The message is the same shape smtp-source(1) sends: four header lines,
 * a blank line, then BYTES of payload in lines of 78 'X' plus CRLF.
 * bench/smtplib_client.py builds the same bytes.
 *
 * Output (one line):
 *   smtpc messages=N seconds=S rate=R session_seconds=T
 * seconds/rate cover the smtpc_send loop only (CLOCK_MONOTONIC);
 * session_seconds covers connect to QUIT.
 */
#include <smtpc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_BODY (1024 * 1024)

static const char headers[] = "From: <bench@localhost>\r\n"
                              "To: <sink@localhost>\r\n"
                              "Date: Mon, 30 Nov 2026 00:00:00 +0000\r\n"
                              "Message-Id: <bench@localhost>\r\n"
                              "\r\n";

struct opts {
    const char *host;
    char host_buf[256];
    unsigned port;
    long count;
    long payload;
    bool pipelining;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Headers, then payload bytes of "XXX...\r\n" lines (at most 78 X each). */
static char *build_message(long payload, size_t *len)
{
    size_t cap = sizeof headers + (size_t)payload;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    size_t n = sizeof headers - 1;
    memcpy(buf, headers, n);
    long left = payload;
    while (left >= 3) {
        long k = left - 2 < 78 ? left - 2 : 78;
        memset(buf + n, 'X', (size_t)k);
        n += (size_t)k;
        buf[n++] = '\r';
        buf[n++] = '\n';
        left -= k + 2;
    }
    *len = n;
    return buf;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){.host = "127.0.0.1", .count = 2000, .payload = 1024, .pipelining = true};
    const char *target = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            o->count = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "-l") == 0 && i + 1 < argc)
            o->payload = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--no-pipelining") == 0)
            o->pipelining = false;
        else if (argv[i][0] != '-' && !target)
            target = argv[i];
        else
            return -1;
    }
    if (!target || o->count <= 0 || o->payload < 0 || o->payload > MAX_BODY)
        return -1;
    const char *colon = strrchr(target, ':');
    if (colon) {
        size_t hl = (size_t)(colon - target);
        if (hl == 0 || hl >= sizeof o->host_buf)
            return -1;
        memcpy(o->host_buf, target, hl);
        o->host_buf[hl] = '\0';
        o->host = o->host_buf;
        target = colon + 1;
    }
    char *end;
    long port = strtol(target, &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535)
        return -1;
    o->port = (unsigned)port;
    return 0;
}

static smtpc_session *open_session(const struct opts *o)
{
    smtpc_config *cfg = smtpc_config_new();
    if (!cfg)
        return NULL;
    smtpc_config_set_tls_mode(cfg, SMTPC_TLS_NONE);
    smtpc_config_set_ehlo_name(cfg, "bench.localhost");
    smtpc_config_set_pipelining(cfg, o->pipelining);
    smtpc_session *s = smtpc_session_new(cfg);
    smtpc_config_free(cfg);
    if (!s)
        return NULL;
    if (smtpc_connect(s, o->host, (uint16_t)o->port) != 0 || smtpc_open(s) != 0) {
        fprintf(stderr, "client: %s\n", smtpc_error_message(smtpc_session_error(s)));
        smtpc_session_free(s);
        return NULL;
    }
    return s;
}

/* Sends the message count times; returns how many were accepted. */
static long send_loop(smtpc_session *s, smtpc_message *m, long count)
{
    for (long i = 0; i < count; i++) {
        if (smtpc_send(s, m) != 0 || !smtpc_message_rcpt_accepted(m, 0)) {
            const smtpc_error *e = smtpc_message_error(m);
            if (!e)
                e = smtpc_session_error(s);
            fprintf(stderr, "client: message %ld: %s\n", i + 1, smtpc_error_message(e));
            return i;
        }
    }
    return count;
}

int main(int argc, char **argv)
{
    struct opts o;
    if (parse_args(argc, argv, &o) != 0) {
        fprintf(stderr, "usage: %s [-n COUNT] [-l BYTES] [--no-pipelining] [HOST:]PORT\n",
                argv[0]);
        return 64;
    }
    size_t len;
    char *body = build_message(o.payload, &len);
    smtpc_message *m = smtpc_message_new();
    if (!body || !m || smtpc_message_set_from(m, "bench@localhost") != 0 ||
        smtpc_message_add_rcpt(m, "sink@localhost") != 0) {
        fprintf(stderr, "client: cannot build the message\n");
        return 1;
    }
    smtpc_message_set_body(m, body, len);

    double t0 = now();
    smtpc_session *s = open_session(&o);
    if (!s)
        return 1;
    double t1 = now();
    long sent = send_loop(s, m, o.count);
    double t2 = now();
    smtpc_quit(s);
    double t3 = now();

    smtpc_session_free(s);
    smtpc_message_free(m);
    free(body);
    if (sent != o.count)
        return 1;
    printf("smtpc messages=%ld seconds=%.6f rate=%.1f session_seconds=%.6f\n", sent, t2 - t1,
           (double)sent / (t2 - t1), t3 - t0);
    return 0;
}
