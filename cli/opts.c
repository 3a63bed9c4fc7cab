/* Option parsing for `smtpc send` (table driven, getopt_long). */
#include "opts.h"

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

#define F(field) offsetof(struct cli_opts, field)
static const struct optspec specs[] = {
    {"server", OK_FN, 0, opt_server},
    {"tls", OK_FN, 0, opt_tls},
    {"tls-verify", OK_FN, 0, opt_tls_verify},
    {"ca-file", OK_STR, F(ca_file), NULL},
    {"tls-name", OK_NAME, F(tls_name), NULL},
    {"client-cert", OK_STR, F(client_cert), NULL},
    {"client-key", OK_STR, F(client_key), NULL},
    {"ignore-tls-errors", OK_FLAG, F(ignore_tls_errors), NULL},
    {"dane", OK_FN, 0, opt_dane},
    {"dane-name", OK_FN, 0, opt_dane_name},
    {"ehlo", OK_NAME, F(ehlo), NULL},
    {"auth", OK_FN, 0, opt_auth},
    {"user", OK_STR, F(user), NULL},
    {"password-file", OK_STR, F(password_file), NULL},
    {"oauth-token-file", OK_STR, F(oauth_token_file), NULL},
    {"insecure-auth", OK_FLAG, F(insecure_auth), NULL},
    {"from", OK_FN, 0, opt_from},
    {"to", OK_FN, 0, opt_to},
    {"message", OK_LIST, F(messages), NULL},
    {"require-8bitmime", OK_FLAG, F(require_8bitmime), NULL},
    {"require-smtputf8", OK_FLAG, F(require_smtputf8), NULL},
    {"requiretls", OK_FLAG, F(requiretls), NULL},
    {"no-pipelining", OK_FLAG, F(no_pipelining), NULL},
    {"timeout", OK_FN, 0, opt_timeout},
    {"trace", OK_FLAG, F(trace), NULL},
    {"json", OK_FLAG, F(json), NULL},
    {"help", OK_FLAG, F(help), NULL},
};
#undef F
#define NSPECS (sizeof specs / sizeof specs[0])
#define LONG_BASE 256

static const char *const mechs[] = {
    "auto", "PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256",
    "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS", "XOAUTH2", "OAUTHBEARER",
};

void cli_opts_usage(FILE *f)
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

static int parse_port(const char *s, uint16_t *port, struct cli_err *err)
{
    unsigned long v = 0;
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > 5 || s[n] != '\0')
        return cli_err_set(err, CLI_EX_CONFIG, "--server: bad port \"%s\"", s);
    v = strtoul(s, NULL, 10);
    if (v == 0 || v > 65535)
        return cli_err_set(err, CLI_EX_CONFIG, "--server: port out of range: %s", s);
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
    return parse_port(end + 2, &o->port, err);
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
    return parse_port(colon + 1, &o->port, err);
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

static void defaults(struct cli_opts *o)
{
    memset(o, 0, sizeof *o);
    o->tls = SMTPC_TLS_STARTTLS;
    o->tls_verify_pkix = true;
}

static int count_stdin(const struct cli_strv *m)
{
    int n = 0;
    for (size_t i = 0; i < m->n; i++)
        n += strcmp(m->v[i], "-") == 0;
    return n;
}

/* Cross-option checks once everything was read. */
static int finish(struct cli_opts *o, struct cli_err *err)
{
    if (!o->server_set)
        return cli_err_set(err, CLI_EX_USAGE, "missing --server");
    if (o->from == NULL)
        return cli_err_set(err, CLI_EX_USAGE, "missing --from (use --from '' for <>)");
    if (o->to.n == 0)
        return cli_err_set(err, CLI_EX_USAGE, "missing --to");
    if ((o->client_cert == NULL) != (o->client_key == NULL))
        return cli_err_set(err, CLI_EX_USAGE, "--client-cert and --client-key go together");
    if (count_stdin(&o->messages) > 1)
        return cli_err_set(err, CLI_EX_USAGE, "standard input (-m -) can be read only once");
    bool wants_auth = o->auth || o->user || o->password_file || o->oauth_token_file;
    if (wants_auth && o->auth == NULL)
        o->auth = mechs[0]; /* "auto" */
    if (wants_auth && o->user == NULL && strcmp(o->auth, "OAUTHBEARER") != 0)
        return cli_err_set(err, CLI_EX_USAGE, "authentication needs --user");
    if (!o->port_set)
        o->port = o->tls == SMTPC_TLS_IMMEDIATE ? 465 : 587;
    return 0;
}

static void build_longopts(struct option *lo)
{
    for (size_t i = 0; i < NSPECS; i++) {
        lo[i].name = specs[i].name;
        lo[i].has_arg = specs[i].kind == OK_FLAG ? no_argument : required_argument;
        lo[i].flag = NULL;
        lo[i].val = LONG_BASE + (int)i;
    }
    memset(&lo[NSPECS], 0, sizeof lo[NSPECS]);
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

int cli_opts_parse(struct cli_opts *o, int argc, char **argv, struct cli_err *err)
{
    struct option lo[NSPECS + 1];
    int c;
    defaults(o);
    build_longopts(lo);
    optind = 0; /* glibc: full re-initialisation, so the parser can run again */
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hm:", lo, NULL)) != -1) {
        const struct optspec *sp = spec_for(c);
        if (sp == NULL)
            return getopt_failure(c, argv, err);
        if (apply(o, sp, optarg, err) != 0)
            return -1;
    }
    if (o->help)
        return 0;
    if (optind < argc)
        return cli_err_set(err, CLI_EX_USAGE, "unexpected argument \"%s\"", argv[optind]);
    return finish(o, err);
}
