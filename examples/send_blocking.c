/* send_blocking: submit one small message with smtpc's blocking API.
 *
 *   send_blocking [-v] [--tls MODE] [--ca-file FILE] [--auth MECH --user USER]
 *                 HOST PORT FROM TO [TO...]
 *
 * MODE is starttls (the default: STARTTLS required), immediate (implicit
 * TLS, port 465), opportunistic or none. With --auth the password comes from
 * the environment variable SMTPC_PASSWORD; credentials are only sent over
 * TLS with a verified certificate. -v prints the protocol trace on stderr.
 *
 * Exit status: 0 when every recipient got the message, 1 when the session or
 * a recipient failed, 2 on a usage error.
 *
 * Uses nothing but <smtpc.h> and the C library. */
#include <smtpc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct opts {
    bool verbose;
    smtpc_tls_mode tls;
    const char *ca_file, *mech, *user;
    const char *host, *from;
    unsigned port;
    char **to;
    int nto;
};

static int usage(void)
{
    fprintf(stderr, "usage: send_blocking [-v] [--tls starttls|immediate|opportunistic|none]\n"
                    "       [--ca-file FILE] [--auth MECH --user USER] HOST PORT FROM TO...\n");
    return 2;
}

static int parse_tls(const char *s, smtpc_tls_mode *m)
{
    static const struct {
        const char *name;
        smtpc_tls_mode mode;
    } modes[] = {{"starttls", SMTPC_TLS_STARTTLS},
                 {"immediate", SMTPC_TLS_IMMEDIATE},
                 {"opportunistic", SMTPC_TLS_OPPORTUNISTIC},
                 {"none", SMTPC_TLS_NONE}};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        if (strcmp(s, modes[i].name) == 0) {
            *m = modes[i].mode;
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
        else if (strcmp(a, "--auth") == 0 && v)
            o->mech = argv[++i];
        else if (strcmp(a, "--user") == 0 && v)
            o->user = argv[++i];
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

/* The library never prints: it hands log lines to this callback. */
static void log_line(void *userdata, smtpc_log_level level, const char *msg)
{
    (void)userdata;
    (void)level;
    fprintf(stderr, "%s\n", msg);
}

static smtpc_config *make_config(const struct opts *o)
{
    smtpc_config *cfg = smtpc_config_new();
    if (!cfg)
        return NULL;
    smtpc_config_set_tls_mode(cfg, o->tls);
    if (o->verbose)
        smtpc_config_set_log(cfg, log_line, NULL, SMTPC_LOG_TRACE);
    if (o->ca_file && smtpc_config_set_ca_file(cfg, o->ca_file) != 0)
        goto fail;
    if (o->mech && smtpc_config_set_auth(cfg, o->mech, o->user ? o->user : "",
                                         getenv("SMTPC_PASSWORD")) != 0)
        goto fail;
    return cfg;
fail:
    smtpc_config_free(cfg);
    return NULL;
}

/* A small RFC 5322 message. Every line ends in CRLF: the library rejects
 * bare CR and LF unless SMTPC_MSG_NORMALIZE_LF is set. */
static int make_body(const struct opts *o, char *buf, size_t len)
{
    char date[64];
    time_t now = time(NULL);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", gmtime(&now));
    int n = snprintf(buf, len,
                     "From: <%s>\r\nTo: <%s>\r\nDate: %s\r\nSubject: smtpc example\r\n\r\n"
                     "Hello from send_blocking.\r\n.A line starting with a dot.\r\n",
                     o->from, o->to[0], date);
    return n > 0 && (size_t)n < len ? n : -1;
}

static void print_error(const char *what, const smtpc_error *e)
{
    fprintf(stderr, "%s failed: %s\n", what, smtpc_error_message(e));
    fprintf(stderr, "  kind=%s command=%s code=%d enhanced=%s permanent=%s\n",
            smtpc_error_kind_name(smtpc_error_get_kind(e)),
            smtpc_command_name(smtpc_error_command(e)), smtpc_error_code(e),
            smtpc_error_enhanced_code(e), smtpc_error_permanent(e) ? "yes" : "no");
}

/* One line per recipient: the RCPT reply as the server sent it. */
static bool print_recipients(const smtpc_message *m)
{
    bool all = true;
    for (size_t i = 0; i < smtpc_message_rcpt_count(m); i++) {
        const smtpc_error *r = smtpc_message_rcpt_result(m, i);
        bool ok = smtpc_message_rcpt_accepted(m, i);
        all = all && ok;
        printf("%s %s: %s\n", ok ? "accepted" : "rejected", smtpc_message_rcpt(m, i),
               smtpc_error_code(r) ? smtpc_error_line(r) : smtpc_error_message(r));
    }
    return all;
}

static int send_message(smtpc_session *s, const struct opts *o)
{
    char body[1024];
    smtpc_message *m = smtpc_message_new();
    int rc = m ? 0 : -1;
    /* Addresses with CR, LF or control characters are refused here (Q19). */
    if (rc == 0 && smtpc_message_set_from(m, o->from) != 0)
        rc = -1;
    for (int i = 0; rc == 0 && i < o->nto; i++)
        if (smtpc_message_add_rcpt(m, o->to[i]) != 0)
            rc = -1;
    int n = rc == 0 ? make_body(o, body, sizeof body) : -1;
    if (n < 0) {
        fprintf(stderr, "invalid address or out of memory\n");
        smtpc_message_free(m);
        return 2;
    }
    smtpc_message_set_body(m, body, (size_t)n); /* borrowed until the send returns */
    rc = smtpc_send(s, m);
    bool all = print_recipients(m);
    if (rc != 0)
        print_error("send", smtpc_message_error(m));
    smtpc_message_free(m);
    return rc == 0 && all ? 0 : 1;
}

int main(int argc, char **argv)
{
    struct opts o = {.tls = SMTPC_TLS_STARTTLS};
    if (parse_args(argc, argv, &o) != 0)
        return usage();
    smtpc_config *cfg = make_config(&o);
    if (!cfg) {
        fprintf(stderr, "bad configuration\n");
        return 2;
    }
    smtpc_session *s = smtpc_session_new(cfg); /* copies cfg */
    smtpc_config_free(cfg);
    if (!s)
        return 1;
    int status = 1;
    if (smtpc_connect(s, o.host, (uint16_t)o.port) != 0 || smtpc_open(s) != 0) {
        /* Never send after a failed open: the session is not what was asked for. */
        print_error("session", smtpc_session_error(s));
    } else {
        if (smtpc_tls_active(s))
            printf("TLS %s %s, certificate %s\n", smtpc_tls_version(s), smtpc_tls_cipher(s),
                   smtpc_tls_pkix_verified(s) ? "verified" : "NOT verified");
        status = send_message(s, &o);
    }
    smtpc_quit(s); /* always closes; its outcome does not change ours */
    smtpc_session_free(s);
    return status;
}
