/* Building the library configuration from the command line. */
#include "cfg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SECRET_MAX 8192

/* --trace: the protocol trace goes to standard error, one line per event.
 * Debug events (state transitions) would drown the dialogue, so they are left out. */
void cli_trace_log(void *userdata, smtpc_log_level level, const char *msg)
{
    (void)userdata;
    if (level != SMTPC_LOG_DEBUG)
        fprintf(stderr, "%s\n", msg);
}

int cli_check_readable(const char *opt, const char *path, struct cli_err *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return cli_err_set(err, CLI_EX_CONFIG, "%s %s: %s", opt, path, strerror(errno));
    fclose(f);
    return 0;
}

/* Reads a secret; one trailing "\n" or "\r\n" is not part of it. */
static int read_secret(const char *opt, const char *path, char *buf, struct cli_err *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return cli_err_set(err, CLI_EX_CONFIG, "%s %s: %s", opt, path, strerror(errno));
    size_t n = fread(buf, 1, SECRET_MAX, f);
    int bad = ferror(f) ? errno : 0;
    fclose(f);
    if (bad != 0)
        return cli_err_set(err, CLI_EX_CONFIG, "%s %s: %s", opt, path, strerror(bad));
    if (n == SECRET_MAX)
        return cli_err_set(err, CLI_EX_CONFIG, "%s %s: too long", opt, path);
    if (n > 0 && buf[n - 1] == '\n') {
        n--;
        if (n > 0 && buf[n - 1] == '\r')
            n--;
    }
    buf[n] = '\0';
    return 0;
}

const char *cli_hostname(char *buf, size_t len)
{
    memset(buf, 0, len);
    if (len < 2 || gethostname(buf, len - 1) != 0 || buf[0] == '\0')
        return "localhost";
    return buf;
}

static int set_ehlo(smtpc_config *cfg, const struct cli_opts *o, struct cli_err *err)
{
    char host[256];
    if (o->ehlo != NULL) {
        if (smtpc_config_set_ehlo_name(cfg, o->ehlo) != 0)
            return cli_err_set(err, CLI_EX_CONFIG, "--ehlo: bad name \"%s\"", o->ehlo);
        return 0;
    }
    /* The default is the machine's name; fall back when it is unusable. */
    if (smtpc_config_set_ehlo_name(cfg, cli_hostname(host, sizeof host)) != 0)
        return smtpc_config_set_ehlo_name(cfg, "localhost") == 0
                   ? 0
                   : cli_err_set(err, CLI_EX_CONFIG, "cannot set the EHLO name");
    return 0;
}

/* With --dane, PKIX is enforced only when --tls-verify pkix was explicit. */
static int set_tls(smtpc_config *cfg, const struct cli_opts *o, struct cli_err *err)
{
    bool dane = o->dane.n > 0;
    smtpc_config_set_tls_mode(cfg, o->tls);
    smtpc_config_set_tls_verify_pkix(cfg, dane ? o->tls_verify_explicit && o->tls_verify_pkix
                                               : o->tls_verify_pkix);
    smtpc_config_set_ignore_tls_errors(cfg, o->ignore_tls_errors);
    if (o->ca_file != NULL) {
        if (cli_check_readable("--ca-file", o->ca_file, err) != 0)
            return -1;
        if (smtpc_config_set_ca_file(cfg, o->ca_file) != 0)
            return cli_err_set(err, CLI_EX_CONFIG, "--ca-file: cannot use %s", o->ca_file);
    }
    if (o->tls_name != NULL && smtpc_config_set_tls_name(cfg, o->tls_name) != 0)
        return cli_err_set(err, CLI_EX_CONFIG, "--tls-name: bad name \"%s\"", o->tls_name);
    return 0;
}

static int set_client_cert(smtpc_config *cfg, const struct cli_opts *o, struct cli_err *err)
{
    if (o->client_cert == NULL)
        return 0;
    if (cli_check_readable("--client-cert", o->client_cert, err) != 0 ||
        cli_check_readable("--client-key", o->client_key, err) != 0)
        return -1;
    if (smtpc_config_set_client_cert(cfg, o->client_cert, o->client_key) != 0)
        return cli_err_set(err, CLI_EX_CONFIG, "--client-cert: cannot use %s", o->client_cert);
    return 0;
}

static int set_dane(smtpc_config *cfg, const struct cli_opts *o, struct cli_err *err)
{
    for (size_t i = 0; i < o->dane.n; i++)
        if (smtpc_config_add_tlsa_text(cfg, o->dane.v[i]) != 0)
            return cli_err_set(err, CLI_EX_CONFIG, "--dane: bad record \"%s\"", o->dane.v[i]);
    for (size_t i = 0; i < o->dane_names.n; i++)
        if (smtpc_config_add_dane_name(cfg, o->dane_names.v[i]) != 0)
            return cli_err_set(err, CLI_EX_CONFIG, "--dane-name: cannot add \"%s\"",
                               o->dane_names.v[i]);
    return 0;
}

/* Password from --password-file, else $SMTPC_PASSWORD; NULL when neither. */
static const char *password(const struct cli_opts *o, char *buf, struct cli_err *err, int *rc)
{
    *rc = 0;
    if (o->password_file == NULL)
        return getenv("SMTPC_PASSWORD");
    *rc = read_secret("--password-file", o->password_file, buf, err);
    return *rc == 0 ? buf : NULL;
}

static int apply_auth(smtpc_config *cfg, const struct cli_opts *o, char *pw, char *tok,
                      struct cli_err *err)
{
    int rc;
    const char *p = password(o, pw, err, &rc);
    if (rc != 0)
        return -1;
    if (o->oauth_token_file != NULL &&
        read_secret("--oauth-token-file", o->oauth_token_file, tok, err) != 0)
        return -1;
    if (p == NULL && o->oauth_token_file == NULL)
        return cli_err_set(err, CLI_EX_CONFIG,
                           "no password: use --password-file or SMTPC_PASSWORD");
    if (smtpc_config_set_auth(cfg, o->auth, o->user, p) != 0 ||
        (o->oauth_token_file != NULL && smtpc_config_set_oauth_token(cfg, tok) != 0))
        return cli_err_set(err, CLI_EX_CONFIG, "cannot configure authentication");
    return 0;
}

static int set_auth(smtpc_config *cfg, const struct cli_opts *o, struct cli_err *err)
{
    smtpc_config_set_insecure_auth(cfg, o->insecure_auth);
    if (o->auth == NULL)
        return 0;
    char *pw = calloc(2, SECRET_MAX);
    if (pw == NULL)
        return cli_err_set(err, CLI_EX_CONFIG, "out of memory");
    int rc = apply_auth(cfg, o, pw, pw + SECRET_MAX, err);
    explicit_bzero(pw, 2 * SECRET_MAX); /* the library keeps its own copy */
    free(pw);
    return rc;
}

smtpc_config *cli_build_config(const struct cli_opts *o, struct cli_err *err)
{
    smtpc_config *cfg = smtpc_config_new();
    if (cfg == NULL) {
        cli_err_set(err, CLI_EX_CONFIG, "out of memory");
        return NULL;
    }
    if (o->trace)
        smtpc_config_set_log(cfg, cli_trace_log, NULL, SMTPC_LOG_TRACE);
    if (o->timeout_ms > 0)
        smtpc_config_set_all_timeouts(cfg, o->timeout_ms);
    smtpc_config_set_pipelining(cfg, !o->no_pipelining);
    if (set_ehlo(cfg, o, err) != 0 || set_tls(cfg, o, err) != 0 ||
        set_client_cert(cfg, o, err) != 0 || set_dane(cfg, o, err) != 0 ||
        set_auth(cfg, o, err) != 0) {
        smtpc_config_free(cfg);
        return NULL;
    }
    return cfg;
}
