/* One delivery attempt to a recipient domain (spec 24): destinations,
 * MTA-STS, then the hosts in order until one takes the message or fails
 * permanently. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "deliver.h"

static uint32_t random_u32(void *ud)
{
    (void)ud;
    uint32_t v = 0;
    if (getrandom(&v, sizeof v, 0) != sizeof v)
        v = (uint32_t)time(NULL);
    return v;
}

static dns_resolver *make_resolver(const smtpc_deliver_config *dc, char *err, size_t errlen)
{
    dns_config cfg = {
        .servers = dc->servers,
        .nservers = dc->nservers,
        .resolv_conf = dc->resolv_conf,
        .mode = dc->dnssec == SMTPC_DNSSEC_VALIDATE ? DNSSEC_VALIDATE
                : dc->dnssec == SMTPC_DNSSEC_OFF    ? DNSSEC_OFF
                                                    : DNSSEC_TRUST_AD,
        .trust_anchor = dc->trust_anchor,
        .timeout_ms = dc->timeout_ms,
    };
    return dns_resolver_new(&cfg, err, errlen);
}

/* The whole domain failed: the error goes to the delivery and the message. */
static void domain_fail(deliver_ctx *x, smtpc_error_kind kind, bool permanent, int code,
                        const char *ecode, const char *msg)
{
    smtpc_error *e = &x->d->err;
    err_set(e, kind, permanent, SMTPC_CMD_NONE, 0, "%s", msg);
    e->code = code;
    snprintf(e->ecode, sizeof e->ecode, "%s", ecode);
}

static void record_dns_failure(deliver_ctx *x, int ede)
{
    /* Spec 24.2: an authentication failure is reported for the domain. */
    tlsrpt_set_policy(x->d->rpt_rcpt, "no-policy-found", x->d->domain);
    if (ede >= 0 && dns_ede_is_auth(ede)) {
        char reason[96];
        snprintf(reason, sizeof reason, "dns-extended-error-%d-%s", ede, dns_ede_name(ede));
        tlsrpt_add(x->d->rpt_rcpt, 0, 1, NULL, "validation-failure", reason);
    }
}

static int gather(deliver_ctx *x, const char *next_hop)
{
    gather_destinations(x->res, next_hop, random_u32, NULL, &x->dest);
    const gather_status *st = &x->dest.st;
    if (st->err == GATHER_OK)
        return 0;
    record_dns_failure(x, st->ede);
    if (st->err == GATHER_NO_MAIL)
        domain_fail(x, SMTPC_ERR_NO_MAIL, true, 556, "5.1.10", st->msg);
    else
        domain_fail(x, SMTPC_ERR_DNS, st->permanent, 0, "", st->msg);
    return -1;
}

static int copy_str(char **dst, const char *src)
{
    *dst = src ? strdup(src) : NULL;
    return src && !*dst ? -1 : 0;
}

/* Keeps what the probe shows: raw record, policy MX patterns. */
static void keep_mtasts_details(deliver_ctx *x, const mtasts_outcome *o)
{
    mtasts_result rec;
    memset(&rec, 0, sizeof rec);
    mtasts_lookup_record(x->res, x->d->domain, &rec);
    if (rec.have_record)
        copy_str(&x->d->mtasts_record, rec.record.raw);
    mtasts_result_free(&rec);
    if (!o->have_policy || o->policy.nmx == 0)
        return;
    x->d->mtasts_mx = calloc(o->policy.nmx, sizeof *x->d->mtasts_mx);
    for (size_t i = 0; x->d->mtasts_mx && i < o->policy.nmx; i++)
        if (copy_str(&x->d->mtasts_mx[x->d->nmtasts_mx], o->policy.mx[i]) == 0)
            x->d->nmtasts_mx++;
}

/* Spec 24.4: MTA-STS for the original recipient domain, through the cache. */
static int mtasts(deliver_ctx *x, mtasts_outcome *o)
{
    char err[256] = "";
    mtasts_cache *cache = NULL;
    if (!x->probe && x->dc->state_dir &&
        !(cache = mtasts_cache_open(x->dc->state_dir, err, sizeof err))) {
        domain_fail(x, SMTPC_ERR_CONFIG, true, 0, "", err);
        return -1;
    }
    mtasts_fetch_opts opts = {.ca_file = x->dc->ca_file,
                              .timeout_ms = x->dc->timeout_ms ? x->dc->timeout_ms : 60000,
                              .fetch = x->dc->mtasts_fetch,
                              .fetch_ud = x->dc->mtasts_fetch_ud};
    int rc = mtasts_cache_get(cache, x->res, x->d->domain, &opts, (int64_t)time(NULL), o);
    mtasts_cache_close(cache);
    if (rc != 0) {
        domain_fail(x, SMTPC_ERR_NOMEM, false, 0, "", "out of memory");
        return -1;
    }
    smtpc_tlsrpt_free(x->d->rpt_rcpt);
    x->d->rpt_rcpt = o->result;
    o->result = NULL;
    if (o->error_reason[0])
        copy_str(&x->d->mtasts_error, o->error_reason);
    if (o->have_policy) {
        x->d->mtasts_mode = mtasts_mode_name(o->policy.mode);
        snprintf(x->d->mtasts_id, sizeof x->d->mtasts_id, "%s", o->policy_id);
        if (o->policy.mode != MTASTS_MODE_NONE)
            x->policy = &o->policy;
        x->enforce = o->policy.mode == MTASTS_MODE_ENFORCE;
    }
    if (x->probe)
        keep_mtasts_details(x, o);
    if (o->failed && !x->tls_required_no) {
        tlsrpt_add(x->d->rpt_rcpt, 0, 1, NULL, NULL, NULL);
        domain_fail(x, SMTPC_ERR_DNS, false, 0, "", "MTA-STS policy lookup failed, deferring");
        return -1;
    }
    return 0;
}

static void probe_tlsrpt_record(deliver_ctx *x)
{
    tlsrpt_record rec;
    char err[160];
    memset(&rec, 0, sizeof rec);
    if (tlsrpt_record_lookup(x->res, x->d->domain, &rec, err, sizeof err) == 0) {
        copy_str(&x->d->tlsrpt_record, rec.raw);
        x->d->rua = calloc(rec.nrua ? rec.nrua : 1, sizeof *x->d->rua);
        for (size_t i = 0; x->d->rua && i < rec.nrua; i++)
            if (copy_str(&x->d->rua[x->d->nrua], rec.rua[i]) == 0)
                x->d->nrua++;
    }
    tlsrpt_record_free(&rec);
}

/* Spec 24.5, 24.20-24.21: hosts in order until success or a permanent error. */
static void try_hosts(deliver_ctx *x)
{
    bool all_requiretls = x->dest.nhosts > 0;
    const smtpc_error *last = NULL;
    for (size_t i = 0; i < x->dest.nhosts; i++) {
        size_t first = x->d->nattempts;
        host_outcome out = deliver_host(x, &x->dest.hosts[i]);
        if (out == HOST_OK && !x->probe) {
            x->d->ok = true;
            return;
        }
        bool lacked = false;
        for (size_t k = first; k < x->d->nattempts; k++) {
            last = &x->d->attempts[k].err;
            lacked = lacked || x->d->attempts[k].requiretls_missing;
        }
        all_requiretls = all_requiretls && lacked;
        if (last && last->kind != SMTPC_ERR_NONE && last->permanent && !x->probe)
            break;
    }
    if (x->probe)
        return;
    if (all_requiretls && x->requiretls) {
        domain_fail(x, SMTPC_ERR_POLICY, true, 554, "5.7.30",
                    "destination servers do not support REQUIRETLS with verified TLS");
        return;
    }
    if (last && last->kind != SMTPC_ERR_NONE)
        err_copy(&x->d->err, last);
}

static int parse_next_hop(const char *domain, char *out, bool *is_ip)
{
    char ip[64];
    *is_ip = false;
    if (domain_address_literal(domain, ip) == 0) {
        snprintf(out, DOMAIN_MAX, "%s", ip);
        *is_ip = true;
        return 0;
    }
    return domain_parse(domain, out);
}

static bool check_inputs(deliver_ctx *x, const char *domain, char *next_hop, bool *is_ip)
{
    if (!domain || parse_next_hop(domain, next_hop, is_ip) != 0) {
        domain_fail(x, SMTPC_ERR_USAGE, true, 0, "", "invalid recipient domain");
        return false;
    }
    if (!*is_ip)
        snprintf(x->d->domain, sizeof x->d->domain, "%s", next_hop);
    if (x->m && (x->m->nrcpts == 0 || message_reset_results(x->m) != 0)) {
        domain_fail(x, SMTPC_ERR_USAGE, true, 0, "", "need at least one recipient");
        return false;
    }
    return true;
}

/* Recipients without an outcome of their own carry the domain's error. */
static void settle_message(deliver_ctx *x)
{
    if (!x->m || !x->delivered)
        return;
    if (x->d->err.kind != SMTPC_ERR_NONE)
        err_copy(&x->m->error, &x->d->err);
    for (size_t i = 0; i < x->m->nrcpts; i++) {
        if (!x->delivered[i])
            x->d->ok = false;
        if (x->m->results[i].code == 0 && x->d->err.kind != SMTPC_ERR_NONE)
            err_copy(&x->m->results[i], &x->d->err);
    }
}

static void run(deliver_ctx *x, const char *domain)
{
    char next_hop[DOMAIN_MAX], err[256] = "";
    bool is_ip;
    mtasts_outcome mo;
    memset(&mo, 0, sizeof mo);
    x->d->rpt_rcpt = smtpc_tlsrpt_new();
    if (!x->d->rpt_rcpt || !check_inputs(x, domain, next_hop, &is_ip))
        return;
    if (x->m && (!(x->done = calloc(x->m->nrcpts, sizeof *x->done)) ||
                 !(x->delivered = calloc(x->m->nrcpts, sizeof *x->delivered)))) {
        domain_fail(x, SMTPC_ERR_NOMEM, false, 0, "", "out of memory");
        return;
    }
    if (!x->res && !(x->res = x->own_res = make_resolver(x->dc, err, sizeof err))) {
        domain_fail(x, SMTPC_ERR_CONFIG, true, 0, "", err);
        return;
    }
    tlsrpt_set_policy(x->d->rpt_rcpt, "no-policy-found", next_hop);
    if (gather(x, next_hop) == 0 && (is_ip || mtasts(x, &mo) == 0)) {
        if (x->probe && !is_ip)
            probe_tlsrpt_record(x);
        try_hosts(x);
    }
    mtasts_outcome_free(&mo);
    x->policy = NULL;
}

smtpc_delivery *deliver_with_resolver(const smtpc_deliver_config *dc, dns_resolver *res,
                                      const char *domain, smtpc_message *m, unsigned flags)
{
    smtpc_delivery *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    delivery_init(d, domain ? domain : "");
    deliver_ctx x = {
        .dc = dc,
        .d = d,
        .m = m,
        .probe = (flags & SMTPC_DELIVER_PROBE) != 0,
        /* RFC 8689 5: TLS-Required: No is ignored on a REQUIRETLS message. */
        .tls_required_no = (flags & SMTPC_DELIVER_TLS_REQUIRED_NO) != 0 &&
                           !(m && (m->flags & SMTPC_MSG_REQUIRETLS)),
        .requiretls = m && (m->flags & SMTPC_MSG_REQUIRETLS),
        .res = res,
    };
    run(&x, domain);
    settle_message(&x);
    if (x.probe && d->err.kind == SMTPC_ERR_NONE)
        d->ok = d->nattempts > 0;
    free(x.done);
    free(x.delivered);
    dns_resolver_free(x.own_res);
    return d;
}

smtpc_delivery *smtpc_deliver(const smtpc_deliver_config *dc, const char *domain,
                              smtpc_message *m, unsigned flags)
{
    if (!m)
        return NULL;
    return deliver_with_resolver(dc, NULL, domain, m, flags & ~(unsigned)SMTPC_DELIVER_PROBE);
}

smtpc_delivery *smtpc_probe(const smtpc_deliver_config *dc, const char *domain)
{
    return deliver_with_resolver(dc, NULL, domain, NULL, SMTPC_DELIVER_PROBE);
}
