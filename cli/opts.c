/* Option parsing for `smtpc send`, `deliver` and `probe` (table driven, getopt_long). */
#include "opts.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum optkind {
    OK_STR,  /* non-empty string */
    OK_NAME, /* non-empty, no whitespace or control characters */
    OK_FLAG, /* no argument, sets a bool */
    OK_LIST, /* repeatable non-empty string */
    OK_FN,   /* custom parser */
};

typedef int (*opt_fn)(struct cli_opts *o, const char *arg, struct cli_err *err);

struct optspec {
    const char *name;
    enum optkind kind;
    size_t off;
    opt_fn fn;
    unsigned cmds; /* CMD_* bits: the commands that take it */
};

static int opt_server(struct cli_opts *o, const char *arg, struct cli_err *err);
static int opt_tls(struct cli_opts *o, const char *arg, struct cli_err *err);
static int opt_tls_verify(struct cli_opts *o, const char *arg, struct cli_err *err);
static int opt_dane(struct cli_opts *o, const char *arg, struct cli_err *err);
static int opt_dane_name(struct cli_opts *o, const char *arg, struct cli_err *err);
static int opt_auth(struct cli_opts *o, const char *arg, struct cli_err *err);
static int opt_from(struct cli_opts *o, const char *arg, struct cli_err *err);
static int opt_to(struct cli_opts *o, const char *arg, struct cli_err *err);
static int opt_timeout(struct cli_opts *o, const char *arg, struct cli_err *err);
static int opt_dns(struct cli_opts *o, const char *arg, struct cli_err *err);
static int opt_dnssec(struct cli_opts *o, const char *arg, struct cli_err *err);
static int opt_port(struct cli_opts *o, const char *arg, struct cli_err *err);
static int opt_local_ip(struct cli_opts *o, const char *arg, struct cli_err *err);

#define F(field) offsetof(struct cli_opts, field)
#define S (1u << CLI_CMD_SEND)
#define D (1u << CLI_CMD_DELIVER)
#define P (1u << CLI_CMD_PROBE)
static const struct optspec specs[] = {
    {"server", OK_FN, 0, opt_server, S},
    {"tls", OK_FN, 0, opt_tls, S},
    {"tls-verify", OK_FN, 0, opt_tls_verify, S},
    {"ca-file", OK_STR, F(ca_file), NULL, S | D | P},
    {"tls-name", OK_NAME, F(tls_name), NULL, S},
    {"client-cert", OK_STR, F(client_cert), NULL, S},
    {"client-key", OK_STR, F(client_key), NULL, S},
    {"ignore-tls-errors", OK_FLAG, F(ignore_tls_errors), NULL, S},
    {"dane", OK_FN, 0, opt_dane, S},
    {"dane-name", OK_FN, 0, opt_dane_name, S},
    {"ehlo", OK_NAME, F(ehlo), NULL, S | D | P},
    {"auth", OK_FN, 0, opt_auth, S},
    {"user", OK_STR, F(user), NULL, S},
    {"password-file", OK_STR, F(password_file), NULL, S},
    {"oauth-token-file", OK_STR, F(oauth_token_file), NULL, S},
    {"insecure-auth", OK_FLAG, F(insecure_auth), NULL, S},
    {"from", OK_FN, 0, opt_from, S | D},
    {"to", OK_FN, 0, opt_to, S | D},
    {"message", OK_LIST, F(messages), NULL, S | D},
    {"require-8bitmime", OK_FLAG, F(require_8bitmime), NULL, S},
    {"require-smtputf8", OK_FLAG, F(require_smtputf8), NULL, S},
    {"requiretls", OK_FLAG, F(requiretls), NULL, S | D},
    {"no-pipelining", OK_FLAG, F(no_pipelining), NULL, S},
    {"dns", OK_FN, 0, opt_dns, D | P},
    {"resolv-conf", OK_STR, F(resolv_conf), NULL, D | P},
    {"dnssec", OK_FN, 0, opt_dnssec, D | P},
    {"trust-anchor", OK_STR, F(trust_anchor), NULL, D | P},
    {"port", OK_FN, 0, opt_port, D | P},
    {"local-ip", OK_FN, 0, opt_local_ip, D | P},
    {"tls-required-no", OK_FLAG, F(tls_required_no), NULL, D},
    {"state", OK_STR, F(state_dir), NULL, D},
    {"timeout", OK_FN, 0, opt_timeout, S | D | P},
    {"trace", OK_FLAG, F(trace), NULL, S | D | P},
    {"json", OK_FLAG, F(json), NULL, S | D | P},
    {"help", OK_FLAG, F(help), NULL, S | D | P},
};
#undef S
#undef D
#undef P
#undef F
#define NSPECS (sizeof specs / sizeof specs[0])
#define LONG_BASE 256

static const char *const mechs[] = {
    "auto", "PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256",
    "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS", "XOAUTH2", "OAUTHBEARER",
};

static void usage_send(FILE *f)
{
    fputs("usage: smtpc send --server HOST[:PORT] --from ADDR --to ADDR... [options]\n"
          "  --tls immediate|starttls|opportunistic|none   (default starttls)\n"
          "  --tls-verify pkix|none  --ca-file FILE  --tls-name NAME\n"
          "  --client-cert FILE --client-key FILE  --ignore-tls-errors\n"
          "  --dane \"USAGE SELECTOR MTYPE HEX\"...  --dane-name NAME...\n"
          "  --ehlo NAME  --auth MECH|auto  --user USER  --password-file FILE\n"
          "  --oauth-token-file FILE  --insecure-auth\n"
          "  -m, --message FILE...  (default: one message from standard input)\n"
          "  --require-8bitmime  --require-smtputf8  --requiretls\n"
          "  --no-pipelining  --timeout SECONDS  --trace  --json\n"
          "Password: --password-file or the SMTPC_PASSWORD environment variable.\n",
          f);
}

#define DNS_USAGE                                                                            \
    "  --dns ADDR[:PORT]...  (or [IPV6]:PORT; default: /etc/resolv.conf)\n"                  \
    "  --resolv-conf FILE  --dnssec trust-ad|validate|off  --trust-anchor FILE\n"

static void usage_deliver(FILE *f)
{
    fputs("usage: smtpc deliver --from ADDR --to ADDR... [options]\n"
          "  -m, --message FILE...  (default: one message from standard input)\n" DNS_USAGE
          "  --port N  (default 25)  --ca-file FILE  --ehlo NAME  --local-ip IP...\n"
          "  --requiretls  --tls-required-no\n"
          "  --state DIR  (MTA-STS cache; default $XDG_STATE_HOME/smtpc)\n"
          "  --timeout SECONDS  --trace  --json\n",
          f);
}

static void usage_probe(FILE *f)
{
    fputs("usage: smtpc probe DOMAIN [options]\n" DNS_USAGE
          "  --port N  (default 25)  --ca-file FILE  --ehlo NAME  --local-ip IP...\n"
          "  --timeout SECONDS  --trace  --json\n",
          f);
}

void cli_opts_usage_cmd(FILE *f, enum cli_cmd cmd)
{
    if (cmd == CLI_CMD_DELIVER)
        usage_deliver(f);
    else if (cmd == CLI_CMD_PROBE)
        usage_probe(f);
    else
        usage_send(f);
}

void cli_opts_usage(FILE *f)
{
    usage_send(f);
}

bool cli_argv_has_json(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--json") == 0)
            return true;
    }
    return false;
}

static int strv_push(struct cli_strv *sv, const char *s, struct cli_err *err)
{
    if (sv->n == sv->cap) {
        size_t cap = sv->cap ? sv->cap * 2 : 8;
        const char **v = realloc(sv->v, cap * sizeof *v);
        if (v == NULL)
            return cli_err_set(err, CLI_EX_CONFIG, "out of memory");
        sv->v = v;
        sv->cap = cap;
    }
    sv->v[sv->n++] = s;
    return 0;
}

void cli_opts_free(struct cli_opts *o)
{
    free(o->dane.v);
    free(o->dane_names.v);
    free(o->to.v);
    free(o->messages.v);
    free(o->dns.v);
    free(o->local_ips.v);
    memset(o, 0, sizeof *o);
}

/* No space and no control character: a host name, IP or EHLO argument. */
static bool is_token(const char *s)
{
    if (*s == '\0')
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return false;
    return true;
}

int cli_check_address(const char *addr, bool allow_empty, struct cli_err *err)
{
    if (*addr == '\0' && !allow_empty)
        return cli_err_set(err, CLI_EX_USAGE, "empty recipient address");
    /* Spec Q19: CR, LF or any control character would break the command line. */
    for (const unsigned char *p = (const unsigned char *)addr; *p; p++)
        if (*p < ' ' || *p == 0x7f)
            return cli_err_set(err, CLI_EX_USAGE,
                               "control character (0x%02x) in address", *p);
    return 0;
}

static int parse_port(const char *opt, const char *s, uint16_t *port, struct cli_err *err)
{
    unsigned long v = 0;
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > 5 || s[n] != '\0')
        return cli_err_set(err, CLI_EX_CONFIG, "%s: bad port \"%s\"", opt, s);
    v = strtoul(s, NULL, 10);
    if (v == 0 || v > 65535)
        return cli_err_set(err, CLI_EX_CONFIG, "%s: port out of range: %s", opt, s);
    *port = (uint16_t)v;
    return 0;
}

static int set_host(struct cli_opts *o, const char *h, size_t len, struct cli_err *err)
{
    if (len == 0 || len >= sizeof o->host)
        return cli_err_set(err, CLI_EX_CONFIG, "--server: bad host length");
    memcpy(o->host, h, len);
    o->host[len] = '\0';
    if (!is_token(o->host) || strpbrk(o->host, "[]/") != NULL)
        return cli_err_set(err, CLI_EX_CONFIG, "--server: bad host \"%s\"", o->host);
    return 0;
}

/* "[IPv6]" or "[IPv6]:PORT". */
static int parse_bracketed(struct cli_opts *o, const char *arg, struct cli_err *err)
{
    const char *end = strchr(arg, ']');
    if (end == NULL)
        return cli_err_set(err, CLI_EX_CONFIG, "--server: missing ']' in \"%s\"", arg);
    if (set_host(o, arg + 1, (size_t)(end - arg - 1), err) != 0)
        return -1;
    if (strspn(o->host, "0123456789abcdefABCDEF:.") != strlen(o->host) ||
        strchr(o->host, ':') == NULL)
        return cli_err_set(err, CLI_EX_CONFIG, "--server: bad IPv6 address \"%s\"", o->host);
    if (end[1] == '\0')
        return 0;
    if (end[1] != ':')
        return cli_err_set(err, CLI_EX_CONFIG, "--server: junk after ']' in \"%s\"", arg);
    o->port_set = true;
    return parse_port("--server", end + 2, &o->port, err);
}

int cli_parse_server(struct cli_opts *o, const char *arg, struct cli_err *err)
{
    o->server_set = true;
    o->port_set = false;
    if (arg[0] == '[')
        return parse_bracketed(o, arg, err);
    const char *colon = strchr(arg, ':');
    /* More than one colon without brackets: a bare IPv6 address, no port. */
    if (colon == NULL || strchr(colon + 1, ':') != NULL)
        return set_host(o, arg, strlen(arg), err);
    if (set_host(o, arg, (size_t)(colon - arg), err) != 0)
        return -1;
    o->port_set = true;
    return parse_port("--server", colon + 1, &o->port, err);
}

static int opt_server(struct cli_opts *o, const char *arg, struct cli_err *err)
{
    return cli_parse_server(o, arg, err);
}

static int opt_tls(struct cli_opts *o, const char *arg, struct cli_err *err)
{
    static const char *const names[] = {"immediate", "starttls", "opportunistic", "none"};
    static const smtpc_tls_mode modes[] = {SMTPC_TLS_IMMEDIATE, SMTPC_TLS_STARTTLS,
                                           SMTPC_TLS_OPPORTUNISTIC, SMTPC_TLS_NONE};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(arg, names[i]) == 0) {
            o->tls = modes[i];
            return 0;
        }
    }
    return cli_err_set(err, CLI_EX_CONFIG,
                       "--tls: expected immediate, starttls, opportunistic or none, got \"%s\"",
                       arg);
}

static int opt_tls_verify(struct cli_opts *o, const char *arg, struct cli_err *err)
{
    if (strcasecmp(arg, "pkix") == 0)
        o->tls_verify_pkix = true;
    else if (strcasecmp(arg, "none") == 0)
        o->tls_verify_pkix = false;
    else
        return cli_err_set(err, CLI_EX_CONFIG, "--tls-verify: expected pkix or none, got \"%s\"",
                           arg);
    o->tls_verify_explicit = true;
    return 0;
}

/* Reads a decimal 0-255 field followed by whitespace; advances *p. */
static bool dane_field(const char **p)
{
    const char *s = *p + strspn(*p, " \t");
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > 3 || atoi(s) > 255 || (s[n] != ' ' && s[n] != '\t'))
        return false;
    *p = s + n;
    return true;
}

/* RFC 6698 2.2 presentation form: "USAGE SELECTOR MTYPE HEX". The library
 * checks it again; checking here gives the error before anything else. */
static int opt_dane(struct cli_opts *o, const char *arg, struct cli_err *err)
{
    const char *p = arg;
    bool ok = dane_field(&p) && dane_field(&p) && dane_field(&p);
    if (ok) {
        p += strspn(p, " \t");
        size_t hex = strspn(p, "0123456789abcdefABCDEF");
        ok = hex > 0 && hex % 2 == 0 && p[hex + strspn(p + hex, " \t")] == '\0';
    }
    if (!ok)
        return cli_err_set(err, CLI_EX_CONFIG,
                           "--dane: expected \"USAGE SELECTOR MTYPE HEX\", got \"%s\"", arg);
    return strv_push(&o->dane, arg, err);
}

static int opt_dane_name(struct cli_opts *o, const char *arg, struct cli_err *err)
{
    if (!is_token(arg))
        return cli_err_set(err, CLI_EX_CONFIG, "--dane-name: bad name \"%s\"", arg);
    return strv_push(&o->dane_names, arg, err);
}

static int opt_auth(struct cli_opts *o, const char *arg, struct cli_err *err)
{
    for (size_t i = 0; i < sizeof mechs / sizeof mechs[0]; i++) {
        if (strcasecmp(arg, mechs[i]) == 0) {
            o->auth = mechs[i];
            return 0;
        }
    }
    return cli_err_set(err, CLI_EX_CONFIG, "--auth: unknown mechanism \"%s\"", arg);
}

static int opt_from(struct cli_opts *o, const char *arg, struct cli_err *err)
{
    if (cli_check_address(arg, true, err) != 0)
        return -1;
    o->from = arg;
    return 0;
}

static int opt_to(struct cli_opts *o, const char *arg, struct cli_err *err)
{
    if (cli_check_address(arg, false, err) != 0)
        return -1;
    return strv_push(&o->to, arg, err);
}

int cli_parse_timeout(const char *arg, int *ms, struct cli_err *err)
{
    char *end = NULL;
    double sec = strtod(arg, &end);
    /* At most INT_MAX milliseconds, rounded up so 0.0001 is not "default". */
    if (end == arg || *end != '\0' || !isfinite(sec) || sec <= 0 || sec > 2147483.0)
        return cli_err_set(err, CLI_EX_CONFIG, "--timeout: expected seconds > 0, got \"%s\"",
                           arg);
    *ms = (int)(sec * 1000.0);
    if (*ms < sec * 1000.0)
        (*ms)++;
    return 0;
}

static int opt_timeout(struct cli_opts *o, const char *arg, struct cli_err *err)
{
    return cli_parse_timeout(arg, &o->timeout_ms, err);
}

static bool is_ip(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* Only addresses: a resolver given by name would need a lookup through a
 * resolver the user did not configure. */
int cli_check_dns_server(const char *arg, struct cli_err *err)
{
    char ip[64];
    const char *port = NULL;
    size_t len = strlen(arg);
    const char *colon = strchr(arg, ':');
    if (arg[0] == '[') {
        const char *end = strchr(arg, ']');
        if (end == NULL || (end[1] != '\0' && end[1] != ':'))
            return cli_err_set(err, CLI_EX_CONFIG, "--dns: bad address \"%s\"", arg);
        len = (size_t)(end - arg - 1);
        arg++;
        port = end[1] == ':' ? end + 2 : NULL;
    } else if (colon != NULL && strchr(colon + 1, ':') == NULL) {
        len = (size_t)(colon - arg); /* IPv4:PORT; more colons: a bare IPv6 address */
        port = colon + 1;
    }
    if (len == 0 || len >= sizeof ip)
        return cli_err_set(err, CLI_EX_CONFIG, "--dns: bad address \"%s\"", arg);
    memcpy(ip, arg, len);
    ip[len] = '\0';
    if (!is_ip(ip))
        return cli_err_set(err, CLI_EX_CONFIG, "--dns: not an IP address: \"%s\"", ip);
    uint16_t p;
    return port != NULL ? parse_port("--dns", port, &p, err) : 0;
}

static int opt_dns(struct cli_opts *o, const char *arg, struct cli_err *err)
{
    if (cli_check_dns_server(arg, err) != 0)
        return -1;
    return strv_push(&o->dns, arg, err);
}

static int opt_dnssec(struct cli_opts *o, const char *arg, struct cli_err *err)
{
    static const char *const names[] = {"trust-ad", "validate", "off"};
    static const smtpc_dnssec_mode modes[] = {SMTPC_DNSSEC_TRUST_AD, SMTPC_DNSSEC_VALIDATE,
                                              SMTPC_DNSSEC_OFF};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(arg, names[i]) == 0) {
            o->dnssec = modes[i];
            return 0;
        }
    }
    return cli_err_set(err, CLI_EX_CONFIG,
                       "--dnssec: expected trust-ad, validate or off, got \"%s\"", arg);
}

static int opt_port(struct cli_opts *o, const char *arg, struct cli_err *err)
{
    o->port_set = true;
    return parse_port("--port", arg, &o->port, err);
}

static int opt_local_ip(struct cli_opts *o, const char *arg, struct cli_err *err)
{
    if (!is_ip(arg))
        return cli_err_set(err, CLI_EX_CONFIG, "--local-ip: not an IP address: \"%s\"", arg);
    return strv_push(&o->local_ips, arg, err);
}

/* Applies one recognised option. */
static int apply(struct cli_opts *o, const struct optspec *sp, const char *arg,
                 struct cli_err *err)
{
    char *field = (char *)o + sp->off;
    switch (sp->kind) {
    case OK_FLAG:
        *(bool *)(void *)field = true;
        return 0;
    case OK_FN:
        return sp->fn(o, arg, err);
    case OK_NAME:
        if (!is_token(arg))
            return cli_err_set(err, CLI_EX_CONFIG, "--%s: bad name \"%s\"", sp->name, arg);
        break;
    default:
        if (*arg == '\0')
            return cli_err_set(err, CLI_EX_CONFIG, "--%s: empty value", sp->name);
    }
    if (sp->kind == OK_LIST)
        return strv_push((struct cli_strv *)(void *)field, arg, err);
    *(const char **)(void *)field = arg;
    return 0;
}

static const struct optspec *find_spec(const char *name)
{
    for (size_t i = 0; i < NSPECS; i++)
        if (strcmp(specs[i].name, name) == 0)
            return &specs[i];
    return NULL;
}

/* getopt's '?' and ':' returns, turned into usage errors. */
static int getopt_failure(int c, char **argv, struct cli_err *err)
{
    const char *what = optind > 0 ? argv[optind - 1] : "?";
    if (c == ':')
        return cli_err_set(err, CLI_EX_USAGE, "option %s needs an argument", what);
    if (optopt >= LONG_BASE)
        return cli_err_set(err, CLI_EX_USAGE, "option %s takes no argument", what);
    if (optopt != 0)
        return cli_err_set(err, CLI_EX_USAGE, "unknown option -%c", optopt);
    return cli_err_set(err, CLI_EX_USAGE, "unknown option %s", what);
}

static void defaults(struct cli_opts *o, enum cli_cmd cmd)
{
    memset(o, 0, sizeof *o);
    o->cmd = cmd;
    o->tls = SMTPC_TLS_STARTTLS;
    o->tls_verify_pkix = true;
    o->dnssec = SMTPC_DNSSEC_TRUST_AD;
}

static int count_stdin(const struct cli_strv *m)
{
    int n = 0;
    for (size_t i = 0; i < m->n; i++)
        n += strcmp(m->v[i], "-") == 0;
    return n;
}

/* Checks shared by send and deliver: the envelope and the message sources. */
static int finish_envelope(const struct cli_opts *o, struct cli_err *err)
{
    if (o->from == NULL)
        return cli_err_set(err, CLI_EX_USAGE, "missing --from (use --from '' for <>)");
    if (o->to.n == 0)
        return cli_err_set(err, CLI_EX_USAGE, "missing --to");
    if (count_stdin(&o->messages) > 1)
        return cli_err_set(err, CLI_EX_USAGE, "standard input (-m -) can be read only once");
    return 0;
}

/* Cross-option checks of send once everything was read. */
static int finish_send(struct cli_opts *o, struct cli_err *err)
{
    if (!o->server_set)
        return cli_err_set(err, CLI_EX_USAGE, "missing --server");
    if (finish_envelope(o, err) != 0)
        return -1;
    if ((o->client_cert == NULL) != (o->client_key == NULL))
        return cli_err_set(err, CLI_EX_USAGE, "--client-cert and --client-key go together");
    bool wants_auth = o->auth || o->user || o->password_file || o->oauth_token_file;
    if (wants_auth && o->auth == NULL)
        o->auth = mechs[0]; /* "auto" */
    if (wants_auth && o->user == NULL && strcmp(o->auth, "OAUTHBEARER") != 0)
        return cli_err_set(err, CLI_EX_USAGE, "authentication needs --user");
    if (!o->port_set)
        o->port = o->tls == SMTPC_TLS_IMMEDIATE ? 465 : 587;
    return 0;
}

/* Port default of deliver and probe. (--trust-anchor is accepted with any
 * --dnssec mode, so one command line can try every mode; only validate reads it.) */
static void finish_dns(struct cli_opts *o)
{
    if (!o->port_set)
        o->port = 25;
}

static int finish_deliver(struct cli_opts *o, struct cli_err *err)
{
    if (finish_envelope(o, err) != 0)
        return -1;
    finish_dns(o);
    /* RFC 8689: REQUIRETLS and "TLS-Required: No" ask for opposite things. */
    if (o->requiretls && o->tls_required_no)
        return cli_err_set(err, CLI_EX_USAGE,
                           "--requiretls and --tls-required-no exclude each other");
    return 0;
}

/* probe's one argument: a domain name or an address literal. */
static int finish_probe(struct cli_opts *o, int nargs, char **args, struct cli_err *err)
{
    if (nargs == 0)
        return cli_err_set(err, CLI_EX_USAGE, "missing DOMAIN");
    if (nargs > 1)
        return cli_err_set(err, CLI_EX_USAGE, "unexpected argument \"%s\"", args[1]);
    if (!is_token(args[0]) || strpbrk(args[0], "@/\\") != NULL || strlen(args[0]) > 255)
        return cli_err_set(err, CLI_EX_USAGE, "bad domain \"%s\"", args[0]);
    o->domain = args[0];
    finish_dns(o);
    return 0;
}

static int finish(struct cli_opts *o, int nargs, char **args, struct cli_err *err)
{
    if (o->cmd == CLI_CMD_PROBE)
        return finish_probe(o, nargs, args, err);
    if (nargs > 0)
        return cli_err_set(err, CLI_EX_USAGE, "unexpected argument \"%s\"", args[0]);
    return o->cmd == CLI_CMD_DELIVER ? finish_deliver(o, err) : finish_send(o, err);
}

/* The long options of one command; getopt_long then rejects the others. */
static void build_longopts(struct option *lo, enum cli_cmd cmd)
{
    size_t n = 0;
    for (size_t i = 0; i < NSPECS; i++) {
        if (!(specs[i].cmds & (1u << cmd)))
            continue;
        lo[n].name = specs[i].name;
        lo[n].has_arg = specs[i].kind == OK_FLAG ? no_argument : required_argument;
        lo[n].flag = NULL;
        lo[n].val = LONG_BASE + (int)i;
        n++;
    }
    memset(&lo[n], 0, sizeof lo[n]);
}

static const struct optspec *spec_for(int c)
{
    if (c == 'm')
        return find_spec("message");
    if (c == 'h')
        return find_spec("help");
    if (c >= LONG_BASE && c < LONG_BASE + (int)NSPECS)
        return &specs[c - LONG_BASE];
    return NULL;
}

static enum cli_cmd cmd_of(const char *name)
{
    if (name != NULL && strcmp(name, "deliver") == 0)
        return CLI_CMD_DELIVER;
    if (name != NULL && strcmp(name, "probe") == 0)
        return CLI_CMD_PROBE;
    return CLI_CMD_SEND;
}

int cli_opts_parse(struct cli_opts *o, int argc, char **argv, struct cli_err *err)
{
    struct option lo[NSPECS + 1];
    int c;
    defaults(o, cmd_of(argc > 0 ? argv[0] : NULL));
    build_longopts(lo, o->cmd);
    /* -m FILE only where there are messages. */
    const char *shortopts = o->cmd == CLI_CMD_PROBE ? ":h" : ":hm:";
    optind = 0; /* glibc: full re-initialisation, so the parser can run again */
    opterr = 0;
    while ((c = getopt_long(argc, argv, shortopts, lo, NULL)) != -1) {
        const struct optspec *sp = spec_for(c);
        if (sp == NULL)
            return getopt_failure(c, argv, err);
        if (apply(o, sp, optarg, err) != 0)
            return -1;
    }
    if (o->help)
        return 0;
    return finish(o, argc - optind, argv + optind, err);
}
