/* Building the direct-delivery configuration from the command line. */
#include "dcfg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "statedir.h"

/* An explicit --state must be usable; the default one is best effort: without
 * it, policies are fetched every time (the library's NULL state directory). */
static int set_state(smtpc_deliver_config *dc, const struct cli_opts *o, struct cli_err *err)
{
    char def[CLI_STATE_PATH_MAX];
    const char *dir = o->state_dir;
    if (dir == NULL && cli_default_state_dir(def, sizeof def) == 0)
        dir = def;
    if (dir == NULL)
        return 0;
    if (cli_mkdir_p(dir) != 0) {
        if (o->state_dir != NULL)
            return cli_err_set(err, CLI_EX_CONFIG, "--state %s: %s", dir, strerror(errno));
        if (!o->json)
            fprintf(stderr, "smtpc: warning: no MTA-STS cache: %s: %s\n", dir, strerror(errno));
        return 0;
    }
    if (smtpc_deliver_config_set_state_dir(dc, dir) != 0)
        return cli_err_set(err, CLI_EX_CONFIG, "--state: cannot use %s", dir);
    return 0;
}

/* A file option: readable, then handed to the library's setter. */
static int set_file(int (*set)(smtpc_deliver_config *, const char *), smtpc_deliver_config *dc,
                    const char *opt, const char *path, struct cli_err *err)
{
    if (path == NULL)
        return 0;
    if (cli_check_readable(opt, path, err) != 0)
        return -1;
    if (set(dc, path) != 0)
        return cli_err_set(err, CLI_EX_CONFIG, "%s: cannot use %s", opt, path);
    return 0;
}

static int set_dns(smtpc_deliver_config *dc, const struct cli_opts *o, struct cli_err *err)
{
    for (size_t i = 0; i < o->dns.n; i++)
        if (smtpc_deliver_config_add_dns_server(dc, o->dns.v[i]) != 0)
            return cli_err_set(err, CLI_EX_CONFIG, "--dns: cannot use \"%s\"", o->dns.v[i]);
    smtpc_deliver_config_set_dnssec(dc, o->dnssec);
    if (set_file(smtpc_deliver_config_set_resolv_conf, dc, "--resolv-conf", o->resolv_conf,
                 err) != 0)
        return -1;
    return set_file(smtpc_deliver_config_set_trust_anchor, dc, "--trust-anchor",
                    o->trust_anchor, err);
}

static int set_dial(smtpc_deliver_config *dc, const struct cli_opts *o, struct cli_err *err)
{
    char host[256];
    const char *ehlo = o->ehlo != NULL ? o->ehlo : cli_hostname(host, sizeof host);
    smtpc_deliver_config_set_port(dc, o->port);
    if (smtpc_deliver_config_set_ehlo_name(dc, ehlo) != 0)
        return cli_err_set(err, CLI_EX_CONFIG, "--ehlo: bad name \"%s\"", ehlo);
    for (size_t i = 0; i < o->local_ips.n; i++)
        if (smtpc_deliver_config_add_local_ip(dc, o->local_ips.v[i]) != 0)
            return cli_err_set(err, CLI_EX_CONFIG, "--local-ip: cannot use \"%s\"",
                               o->local_ips.v[i]);
    return set_file(smtpc_deliver_config_set_ca_file, dc, "--ca-file", o->ca_file, err);
}

smtpc_deliver_config *cli_build_deliver_config(const struct cli_opts *o, bool with_state,
                                               struct cli_err *err)
{
    smtpc_deliver_config *dc = smtpc_deliver_config_new();
    if (dc == NULL) {
        cli_err_set(err, CLI_EX_CONFIG, "out of memory");
        return NULL;
    }
    if (o->trace)
        smtpc_deliver_config_set_log(dc, cli_trace_log, NULL, SMTPC_LOG_TRACE);
    if (o->timeout_ms > 0)
        smtpc_deliver_config_set_timeout(dc, o->timeout_ms);
    if (set_dns(dc, o, err) != 0 || set_dial(dc, o, err) != 0 ||
        (with_state && set_state(dc, o, err) != 0)) {
        smtpc_deliver_config_free(dc);
        return NULL;
    }
    return dc;
}
