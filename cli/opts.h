/* Options of `smtpc send`, `smtpc deliver` and `smtpc probe`: parsed with
 * getopt_long into struct cli_opts, from one table that says which command
 * takes which option.
 *
 * Parsing checks syntax and values only; it opens no file and needs no
 * library function (the unit tests link only opts.c and clierr.c).
 * Unknown or missing options are usage errors (64); bad values are
 * configuration errors (78); CR, LF or control characters in an address are
 * usage errors (RFC 5321 4.1.2 paths carry none; spec Q19). */
#ifndef SMTPC_CLI_OPTS_H
#define SMTPC_CLI_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "clierr.h"
#include "smtpc.h"

/* A growable list of strings borrowed from argv. */
struct cli_strv {
    const char **v;
    size_t n, cap;
};

enum cli_cmd {
    CLI_CMD_SEND = 0,
    CLI_CMD_DELIVER,
    CLI_CMD_PROBE,
};

struct cli_opts {
    enum cli_cmd cmd;
    char host[256];          /* send: without brackets for [IPv6] */
    uint16_t port;           /* resolved: explicit, else 465 / 587 (send), 25 (deliver, probe) */
    bool port_set;
    smtpc_tls_mode tls;      /* default SMTPC_TLS_STARTTLS (required) */
    bool tls_verify_pkix;    /* default true */
    bool tls_verify_explicit; /* --tls-verify given */
    const char *ca_file, *tls_name, *client_cert, *client_key;
    bool ignore_tls_errors;
    struct cli_strv dane, dane_names;
    const char *ehlo;        /* NULL: the machine's host name */
    const char *auth;        /* canonical mechanism name or "auto"; NULL: no AUTH */
    const char *user, *password_file, *oauth_token_file;
    bool insecure_auth;
    const char *from;        /* "" is the null reverse-path */
    struct cli_strv to, messages; /* messages empty: one from stdin */
    bool require_8bitmime, require_smtputf8, requiretls;
    bool no_pipelining, trace, json, help;
    int timeout_ms;          /* 0: library defaults */
    /* deliver and probe */
    struct cli_strv dns;     /* "ADDR", "ADDR:PORT", "[IPV6]:PORT" */
    struct cli_strv local_ips;
    const char *resolv_conf, *trust_anchor, *state_dir;
    smtpc_dnssec_mode dnssec; /* default SMTPC_DNSSEC_TRUST_AD */
    bool tls_required_no;
    const char *domain;      /* probe's argument */
    /* internal */
    bool server_set;
};

/* argv[0] is the subcommand name ("send", "deliver" or "probe"; anything
 * else parses as send). Returns 0, or -1 with err set. On success with
 * o->help set, nothing else was checked. */
int cli_opts_parse(struct cli_opts *o, int argc, char **argv, struct cli_err *err);
void cli_opts_free(struct cli_opts *o);
/* Usage text of send. */
void cli_opts_usage(FILE *f);
void cli_opts_usage_cmd(FILE *f, enum cli_cmd cmd);

/* True when "--json" is among the arguments (before a "--"). */
bool cli_argv_has_json(int argc, char **argv);

/* Exposed for tests. */
int cli_parse_server(struct cli_opts *o, const char *arg, struct cli_err *err);
int cli_check_address(const char *addr, bool allow_empty, struct cli_err *err);
int cli_parse_timeout(const char *arg, int *ms, struct cli_err *err);
/* A resolver address for --dns: IP, IPv4:PORT, [IP] or [IP]:PORT. */
int cli_check_dns_server(const char *arg, struct cli_err *err);

#endif
