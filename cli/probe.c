/* `smtpc probe` through smtpc_probe(): the readable report or the JSON
 * object, verdicts (verdict.c) and the exit status: 0 when every MX is
 * reachable and meets the domain's policy, 75 when something failed
 * transiently, 69 for a null MX or a permanent failure. */
#include "probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcfg.h"
#include "json_out.h"
#include "opts.h"
#include "report.h"
#include "smtpc.h"
#include "verdict.h"

struct evaluation {
    struct cli_host_verdict *host; /* per attempt */
    const char **text;             /* the same texts, for the JSON builder */
    size_t n, nok;
    const char *domain;            /* the domain verdict */
};

static struct cli_host_facts facts(const smtpc_delivery *d, size_t i)
{
    const smtpc_error *e = smtpc_delivery_attempt_error(d, i);
    const char *mode = smtpc_delivery_mtasts_mode(d);
    return (struct cli_host_facts){
        .dialed = smtpc_delivery_attempt_ip(d, i) != NULL,
        .tls = smtpc_delivery_attempt_tls_version(d, i) != NULL,
        .pkix_verified = smtpc_delivery_attempt_pkix_verified(d, i),
        .dane = smtpc_delivery_attempt_dane(d, i),
        .mtasts_match = smtpc_delivery_attempt_mtasts_match(d, i),
        .sts_enforce = mode != NULL && strcmp(mode, "enforce") == 0,
        .err = e != NULL ? smtpc_error_get_kind(e) : SMTPC_ERR_NONE,
        .err_cmd = smtpc_error_command(e),
        .err_permanent = smtpc_error_permanent(e),
    };
}

static int evaluate(const smtpc_delivery *d, struct evaluation *ev)
{
    const smtpc_error *derr = smtpc_delivery_error(d);
    ev->n = smtpc_delivery_attempt_count(d);
    ev->host = calloc(ev->n + 1, sizeof *ev->host);
    ev->text = calloc(ev->n + 1, sizeof *ev->text);
    if (ev->host == NULL || ev->text == NULL)
        return -1;
    for (size_t i = 0; i < ev->n; i++) {
        struct cli_host_facts f = facts(d, i);
        ev->host[i] = cli_host_verdict(&f);
        ev->text[i] = ev->host[i].text;
        ev->nok += ev->host[i].ok;
    }
    bool no_mail = derr != NULL && smtpc_error_get_kind(derr) == SMTPC_ERR_NO_MAIL;
    ev->domain = cli_domain_verdict(no_mail, derr != NULL, ev->n, ev->nok);
    return 0;
}

/* Every failed host and the domain's error count for the exit status. */
static void note_outcome(struct cli_report *r, const smtpc_delivery *d,
                         const struct evaluation *ev)
{
    const smtpc_error *derr = smtpc_delivery_error(d);
    for (size_t i = 0; i < ev->n; i++) {
        if (ev->host[i].ok)
            continue;
        const smtpc_error *e = smtpc_delivery_attempt_error(d, i);
        cli_outcome_note(&r->out, e != NULL ? smtpc_error_get_kind(e) : SMTPC_ERR_POLICY,
                         ev->host[i].permanent);
    }
    if (derr != NULL)
        cli_outcome_note(&r->out, smtpc_error_get_kind(derr), smtpc_error_permanent(derr));
    else if (ev->n == 0)
        cli_outcome_note(&r->out, SMTPC_ERR_DNS, false); /* no host, and no reason given */
}

/* ---- the readable report ---- */

typedef const char *(*item_fn)(const smtpc_delivery *, size_t, size_t);

static void print_list(const char *label, const smtpc_delivery *d, size_t i, size_t n,
                       item_fn get, const char *sep)
{
    printf("%s", label);
    for (size_t k = 0; k < n; k++)
        printf("%s%s", k ? sep : "", get(d, i, k));
    printf("%s\n", n ? "" : "(none)");
}

static void print_policies(const smtpc_delivery *d)
{
    const char *rec = smtpc_delivery_mtasts_record(d), *mode = smtpc_delivery_mtasts_mode(d);
    const char *err = smtpc_delivery_mtasts_error(d), *rpt = smtpc_delivery_tlsrpt_record(d);
    printf("MTA-STS record: %s\n", rec ? rec : "(none)");
    if (mode != NULL) {
        const char *id = smtpc_delivery_mtasts_policy_id(d);
        printf("MTA-STS policy: mode %s%s%s, mx:", mode, id ? ", id " : "", id ? id : "");
        for (size_t k = 0; k < smtpc_delivery_mtasts_mx_count(d); k++)
            printf(" %s", smtpc_delivery_mtasts_mx(d, k));
        printf("\n");
    }
    if (err != NULL)
        printf("MTA-STS error: %s\n", err);
    printf("TLSRPT record: %s\n", rpt ? rpt : "(none)");
    for (size_t k = 0; k < smtpc_delivery_tlsrpt_rua_count(d); k++)
        printf("  rua: %s\n", smtpc_delivery_tlsrpt_rua(d, k));
}

static void print_dns(const smtpc_delivery *d, size_t i)
{
    int pref = smtpc_delivery_attempt_preference(d, i);
    int match = smtpc_delivery_attempt_mtasts_match(d, i);
    printf("\nMX %s", smtpc_delivery_attempt_host(d, i));
    if (pref < 0)
        printf(" (implicit MX)");
    else
        printf(" (preference %d)", pref);
    printf(", dnssec %s\n", smtpc_delivery_attempt_dnssec(d, i));
    print_list("  addresses: ", d, i, smtpc_delivery_attempt_address_count(d, i),
               smtpc_delivery_attempt_address, ", ");
    printf("  TLSA (%s, %zu usable):%s\n", smtpc_delivery_attempt_tlsa_dnssec(d, i),
           smtpc_delivery_attempt_tlsa_usable(d, i),
           smtpc_delivery_attempt_tlsa_count(d, i) ? "" : " (none)");
    for (size_t k = 0; k < smtpc_delivery_attempt_tlsa_count(d, i); k++)
        printf("    %s\n", smtpc_delivery_attempt_tlsa(d, i, k));
    printf("  MTA-STS: %s\n", match < 0 ? "no policy" : match ? "matches policy" : "NOT in policy");
}

static void print_connect(const smtpc_delivery *d, size_t i)
{
    const char *ip = smtpc_delivery_attempt_ip(d, i);
    const char *version = smtpc_delivery_attempt_tls_version(d, i);
    const smtpc_error *e = smtpc_delivery_attempt_error(d, i);
    printf("  connect: %s\n", ip ? ip : "not dialed");
    if (ip == NULL)
        return;
    printf("  STARTTLS: %s", smtpc_delivery_attempt_starttls(d, i) ? "yes" : "no");
    if (version != NULL)
        printf(", %s %s", version, smtpc_delivery_attempt_tls_cipher(d, i));
    printf("\n");
    for (size_t k = 0; k < smtpc_delivery_attempt_cert_count(d, i); k++)
        printf("  certificate %zu: %s\n", k, smtpc_delivery_attempt_cert(d, i, k));
    printf("  PKIX: %s, DANE: %s\n",
           smtpc_delivery_attempt_pkix_verified(d, i) ? "verified" : "not verified",
           smtpc_delivery_attempt_dane(d, i));
    print_list("  extensions: ", d, i, smtpc_delivery_attempt_ext_count(d, i),
               smtpc_delivery_attempt_ext, ", ");
    if (e != NULL)
        printf("  error: %s\n", smtpc_error_message(e));
}

static void print_report(const char *domain, const smtpc_delivery *d,
                         const struct evaluation *ev)
{
    const smtpc_error *derr = smtpc_delivery_error(d);
    printf("probe %s\n", domain);
    print_policies(d);
    for (size_t i = 0; i < ev->n; i++) {
        print_dns(d, i);
        print_connect(d, i);
        printf("  verdict: %s\n", ev->text[i]);
    }
    if (derr != NULL)
        printf("\nerror: %s\n", smtpc_error_message(derr));
    printf("\ndomain verdict: %s\n", ev->domain);
}

/* ---- the run ---- */

static void run_probe(struct cli_report *r, const struct cli_opts *o)
{
    struct cli_err err = {0};
    struct evaluation ev = {0};
    smtpc_deliver_config *dc = cli_build_deliver_config(o, false, &err);
    smtpc_delivery *d = dc != NULL ? smtpc_probe(dc, o->domain) : NULL;
    if (dc != NULL && (d == NULL || evaluate(d, &ev) != 0))
        cli_err_set(&err, CLI_EX_CONFIG, "out of memory");
    if (d == NULL || ev.host == NULL || ev.text == NULL) {
        report_cli_error(r, &err);
    } else {
        note_outcome(r, d, &ev);
        /* Beyond the contract's fields, but only when the domain failed as a
         * whole (null MX, DNS): the why is not in any host entry then. */
        if (r->json && smtpc_delivery_error(d) != NULL)
            r->error = jo_error(smtpc_delivery_error(d));
        if (r->json)
            r->probe = jo_probe(o->domain, d, ev.text, ev.domain);
        else
            print_report(o->domain, d, &ev);
    }
    free(ev.host);
    free(ev.text);
    smtpc_delivery_free(d);
    smtpc_deliver_config_free(dc);
}

int cli_probe_main(int argc, char **argv)
{
    struct cli_report r;
    struct cli_opts o;
    struct cli_err err = {0};
    report_init_shape(&r, cli_argv_has_json(argc, argv), CLI_REPORT_PROBE);
    if (cli_opts_parse(&o, argc, argv, &err) != 0) {
        report_cli_error(&r, &err);
    } else if (o.help) {
        cli_opts_usage_cmd(r.json ? stderr : stdout, CLI_CMD_PROBE);
    } else {
        r.domain = o.domain;
        run_probe(&r, &o);
    }
    cli_opts_free(&o);
    return report_finish(&r);
}
