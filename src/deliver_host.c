/* One MX host of a delivery attempt (spec 24.6-24.19): addresses, DANE
 * discovery, the TLS policy, dialing, the SMTP session and the transactions. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deliver.h"
#include "dial.h"
#include "session.h"

#define MAX_NAMES 8

typedef struct host_plan {
    smtpc_tls_mode mode;
    bool dane;                  /* DANE records to verify */
    gather_ips ips;
    gather_tlsa tlsa;
    char names[MAX_NAMES][DOMAIN_MAX]; /* allowed certificate names, first is SNI */
    size_t nnames;
    smtpc_tlsrpt *rpt_host;
} host_plan;

static void fail(attempt *a, smtpc_error_kind kind, bool permanent, const char *fmt,
                 const char *arg1, const char *arg2)
{
    err_set(&a->err, kind, permanent, SMTPC_CMD_NONE, 0, fmt, arg1, arg2);
}

static void policy_error(attempt *a, const char *fmt, const char *arg)
{
    fail(a, SMTPC_ERR_POLICY, false, fmt, arg, "");
    a->err.code = 554;
    snprintf(a->err.ecode, sizeof a->err.ecode, "5.7.30");
}

/* Spec 24.6: a host the MTA-STS policy does not list. */
static bool policy_mismatch(deliver_ctx *x, const gather_host *h, attempt *a)
{
    if (!x->policy || h->is_ip)
        return false;
    a->mtasts_match = mtasts_mx_match(x->policy, h->name) ? 1 : 0;
    if (a->mtasts_match)
        return false;
    tlsrpt_peer peer = {.mx_hostname = h->name};
    tlsrpt_add(x->d->rpt_rcpt, 0, 0, &peer, "validation-failure", "mtasts-policy-mx-mismatch");
    if (!x->enforce || x->tls_required_no)
        return false;
    tlsrpt_add(x->d->rpt_rcpt, 0, 1, NULL, NULL, NULL);
    a->tls_mode = "starttls";
    policy_error(a, "MX host %s does not match the enforced MTA-STS policy (RFC 8461 5.1)",
                 h->name);
    return !x->probe; /* a probe still looks at the host */
}

static void keep_addresses(attempt *a, const gather_ips *ips)
{
    a->addrs = calloc(ips->nips ? ips->nips : 1, sizeof *a->addrs);
    if (!a->addrs)
        return;
    memcpy(a->addrs, ips->ips, ips->nips * sizeof *a->addrs);
    a->naddrs = ips->nips;
    a->dnssec = ips->authentic ? DNS_SECURE
                : (ips->st.err != GATHER_OK && dns_ede_is_auth(ips->st.ede)) ? DNS_BOGUS
                                                                           : DNS_INSECURE;
}

static void ede_reason(char *buf, size_t len, const char *prefix, int ede)
{
    if (ede >= 0)
        snprintf(buf, len, "%s-%d-%s", prefix, ede, dns_ede_name(ede));
    else
        buf[0] = '\0';
}

/* Spec 24.10: the host's DNS is not authentic; no DANE. */
static int not_authentic(deliver_ctx *x, const gather_host *h, attempt *a, host_plan *p)
{
    const gather_ips *ips = &p->ips;
    if (ips->st.err != GATHER_OK && dns_ede_is_auth(ips->st.ede)) {
        char reason[96];
        ede_reason(reason, sizeof reason, "dns-extended-error", ips->st.ede);
        tlsrpt_set_policy(p->rpt_host, "tlsa", h->name);
        tlsrpt_add(p->rpt_host, 0, 1, NULL, "validation-failure", reason);
        tlsrpt_add(x->d->rpt_rcpt, 0, 1, NULL, NULL, NULL);
    } else if (ips->st.err == GATHER_OK) {
        tlsrpt_set_policy(p->rpt_host, "no-policy-found", h->name);
    }
    if (ips->st.err == GATHER_OK)
        return 0;
    if (!p->rpt_host->policy_type[0]) {
        delivery_drop_host_result(x->d, p->rpt_host); /* spec 24.10: not reported */
        p->rpt_host = NULL;
    }
    /* A domain without MX and without address takes no mail (permanent);
     * one MX host without address is just a host to skip. */
    fail(a, SMTPC_ERR_DNS, ips->st.permanent && !x->dest.have_mx, "looking up %s: %s", h->name,
         ips->st.msg);
    return -1;
}

static void keep_tlsa(attempt *a, const gather_tlsa *t)
{
    a->tlsa = calloc(t->nall ? t->nall : 1, sizeof *a->tlsa);
    for (size_t i = 0; a->tlsa && t->all_text && i < t->nall; i++)
        if (t->all_text[i] && (a->tlsa[a->ntlsa] = strdup(t->all_text[i])))
            a->ntlsa++;
    a->tlsa_usable = t->nrecs;
    a->tlsa_sec = t->st.err != GATHER_OK ? DNS_BOGUS
                  : t->dane_required    ? DNS_SECURE
                                        : DNS_INSECURE;
}

/* Spec 24.12 with records: STARTTLS required; DANE verifies when any record is usable. */
static void dane_required(deliver_ctx *x, const gather_host *h, attempt *a, host_plan *p)
{
    p->mode = SMTPC_TLS_STARTTLS;
    a->tls_mode = "starttls";
    tlsrpt_set_policy(p->rpt_host, "tlsa", p->tlsa.base);
    if (p->tlsa.nrecs == 0) {
        tlsrpt_peer peer = {.mx_hostname = h->name};
        tlsrpt_add(p->rpt_host, 0, 0, &peer, "tlsa-invalid", "all-unusable-records+ignored");
        p->rpt_host->details[p->rpt_host->ndetails - 1].failed_sessions = 0;
        a->dane = "required-unusable";
        return;
    }
    p->dane = true;
    const gather_dest *g = &x->dest;
    p->nnames = gather_tlsa_names(g->have_mx, g->expanded_authentic, p->ips.expanded_authentic,
                                  x->d->domain, g->expanded_next_hop, h->name, p->tlsa.base,
                                  p->names, MAX_NAMES);
}

/* Spec 24.12 with a lookup error: DANE is required but cannot be checked. */
static int tlsa_error(deliver_ctx *x, const gather_host *h, attempt *a, host_plan *p)
{
    int ede = p->tlsa.st.ede;
    bool auth = ede >= 0 && dns_ede_is_auth(ede);
    char reason[96];
    ede_reason(reason, sizeof reason, "extended-dns-error", ede);
    tlsrpt_set_policy(p->rpt_host, "tlsa", p->tlsa.base);
    tlsrpt_peer peer = {.mx_hostname = h->name};
    tlsrpt_add(p->rpt_host, 0, auth ? 1 : 0, &peer, auth ? "dnssec-invalid" : "tlsa-invalid",
               reason);
    if (auth)
        tlsrpt_add(x->d->rpt_rcpt, 0, 1, NULL, NULL, NULL);
    if (x->tls_required_no)
        return 0; /* RFC 8689 5: deliver anyway, without DANE */
    a->tls_mode = "starttls";
    a->dane = "failed";
    fail(a, SMTPC_ERR_DNS, false, "looking up TLSA records for %s: %s", h->name,
         p->tlsa.st.msg);
    return -1;
}

static bool dest_authentic(const deliver_ctx *x, const gather_host *h, const gather_ips *ips)
{
    return x->dc->dnssec != SMTPC_DNSSEC_OFF && !h->is_ip && ips->st.err == GATHER_OK &&
           ips->authentic && x->dest.orig_authentic &&
           (!x->dest.have_mx || x->dest.expanded_authentic);
}

/* Spec 24.8-24.13: addresses, DANE and the REQUIRETLS gate, before dialing. */
static int prepare(deliver_ctx *x, const gather_host *h, attempt *a, host_plan *p)
{
    gather_ips_lookup(x->res, h->name, 0, NULL, 0, &p->ips);
    keep_addresses(a, &p->ips);
    if (!(p->rpt_host = delivery_new_host_result(x->d))) {
        fail(a, SMTPC_ERR_NOMEM, false, "%s%s", "out of memory", "");
        return -1;
    }
    if (!dest_authentic(x, h, &p->ips)) {
        if (not_authentic(x, h, a, p) != 0)
            return -1;
    } else {
        gather_tlsa_lookup(x->res, h->name, x->dest.expanded_authentic &&
                           p->ips.expanded_authentic, p->ips.expanded_host, x->dc->port, &p->tlsa);
        keep_tlsa(a, &p->tlsa);
        if (p->tlsa.st.err != GATHER_OK && p->tlsa.dane_required) {
            if (tlsa_error(x, h, a, p) != 0)
                return -1;
        } else if (p->tlsa.dane_required) {
            dane_required(x, h, a, p);
        } else {
            tlsrpt_set_policy(p->rpt_host, "no-policy-found", p->tlsa.base);
        }
    }
    if (x->requiretls && !p->dane && !x->enforce) {
        /* RFC 8689 4.2.1: REQUIRETLS needs DANE or MTA-STS verification. */
        policy_error(a, "missing required TLS verification mechanism (DANE or MTA-STS) "
                        "for REQUIRETLS to %s", h->name);
        a->requiretls_missing = true;
        return -1;
    }
    return 0;
}

static smtpc_config *session_config(const deliver_ctx *x, const gather_host *h,
                                    const host_plan *p, bool plaintext)
{
    smtpc_config *cfg = smtpc_config_new();
    if (!cfg)
        return NULL;
    cfg->log = x->dc->log;
    smtpc_config_set_ehlo_name(cfg, x->dc->ehlo_name ? x->dc->ehlo_name : "localhost");
    if (x->dc->timeout_ms > 0)
        smtpc_config_set_all_timeouts(cfg, x->dc->timeout_ms);
    smtpc_config_set_tls_mode(cfg, plaintext ? SMTPC_TLS_NONE : p->mode);
    smtpc_config_set_tls_verify_pkix(cfg, !plaintext && x->enforce);
    smtpc_config_set_ignore_tls_errors(cfg, x->tls_required_no);
    smtpc_config_set_ca_file(cfg, x->dc->ca_file);
    smtpc_config_set_tls_name(cfg, p->nnames ? p->names[0] : h->is_ip ? NULL : h->name);
    if (p->dane && !plaintext) {
        smtpc_config_enable_dane(cfg);
        for (size_t i = 0; i < p->tlsa.nrecs; i++) {
            const tlsa_rec *r = &p->tlsa.recs[i];
            smtpc_config_add_tlsa(cfg, r->usage, r->selector, r->mtype, r->data, r->len);
        }
        for (size_t i = 1; i < p->nnames; i++)
            smtpc_config_add_dane_name(cfg, p->names[i]);
    }
    return cfg;
}

static char **copy_exts(const smtpc_session *s, size_t *n)
{
    size_t k = smtpc_server_ext_count(s);
    char **l = calloc(k ? k : 1, sizeof *l);
    *n = 0;
    for (size_t i = 0; l && i < k; i++)
        if ((l[*n] = strdup(smtpc_server_ext(s, i))))
            (*n)++;
    return l;
}

static void record_session(attempt *a, const smtpc_session *s, const host_plan *p)
{
    a->starttls = s->core.starttls_offered;
    a->exts = copy_exts(s, &a->nexts);
    if (p->dane)
        a->dane = s->dane_record ? "verified" : "failed";
    if (!smtpc_tls_active(s))
        return;
    a->pkix_verified = smtpc_tls_pkix_verified(s);
    snprintf(a->tls_version, sizeof a->tls_version, "%s", smtpc_tls_version(s));
    snprintf(a->tls_cipher, sizeof a->tls_cipher, "%s", smtpc_tls_cipher(s));
    if (s->nchain && (a->certs = calloc(s->nchain, sizeof *a->certs))) {
        memcpy(a->certs, s->chain, s->nchain * sizeof *a->certs);
        a->ncerts = s->nchain;
    }
}

/* ---- transactions (spec 24.18) ---- */

static smtpc_message *batch_message(const smtpc_message *m, const size_t *idx, size_t k)
{
    smtpc_message *bm = smtpc_message_new();
    if (!bm || smtpc_message_set_from(bm, m->from ? m->from : "") != 0) {
        smtpc_message_free(bm);
        return NULL;
    }
    for (size_t j = 0; j < k; j++)
        if (smtpc_message_add_rcpt(bm, m->rcpts[idx[j]]) != 0) {
            smtpc_message_free(bm);
            return NULL;
        }
    bm->flags = m->flags;
    bm->body = m->body;
    bm->body_len = m->body_len;
    bm->reader = m->reader;
    bm->reader_ud = m->reader_ud;
    bm->rewind = m->rewind;
    bm->body_used = m->body_used;
    bm->size = m->size;
    return bm;
}

/* Spec 24.18: a transaction error covering every recipient is the host's
 * error, so a transient one moves on to the next MX (24.20): nothing known
 * per recipient (MAIL refused, connection lost), or a transient failure no
 * recipient answered permanently (451 to the only RCPT, 451 to the data).
 * Recipients with a permanent reply of their own are settled with it. */
static bool host_error(const smtpc_message *bm, const smtpc_error *txerr)
{
    bool replies = false;
    for (size_t j = 0; j < bm->nrcpts; j++) {
        if (bm->results[j].code == 0)
            continue;
        replies = true;
        if (bm->results[j].permanent)
            return false;
    }
    return !replies || !txerr->permanent;
}

/* Settles the batch's recipients; 452/552 to a later recipient is retried
 * in the next transaction on the same connection. */
static void settle_batch(deliver_ctx *x, const smtpc_message *bm, const size_t *idx)
{
    const smtpc_error *txerr = smtpc_message_error(bm);
    for (size_t j = 0; j < bm->nrcpts; j++) {
        size_t i = idx[j];
        const smtpc_error *r = &bm->results[j];
        bool own_rejection = r->code != 0 && r->code != 250;
        err_copy(&x->m->results[i], txerr && !own_rejection ? txerr : r);
        x->m->accepted[i] = bm->accepted[j];
        if (!txerr && j > 0 && (r->code == 452 || r->code == 552))
            continue;
        x->done[i] = true;
        x->delivered[i] = !txerr && bm->accepted[j];
    }
}

static size_t pending(const deliver_ctx *x, size_t *idx, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < x->m->nrcpts; i++)
        if (!x->done[i] && n < max)
            idx[n++] = i;
    return n;
}

/* Recipients still waiting when the session broke down mid-way (a later
 * RCPTMAX batch or a 452 retry) fail transiently with the session's error,
 * as the next transaction would have (spec 9.1: botched). */
static void fail_pending(deliver_ctx *x, const smtpc_session *s)
{
    const smtpc_error *e = smtpc_session_error(s);
    for (size_t i = 0; i < x->m->nrcpts; i++) {
        if (x->done[i])
            continue;
        smtpc_error *r = &x->m->results[i];
        if (e->kind != SMTPC_ERR_NONE)
            err_copy(r, e);
        else
            err_set(r, SMTPC_ERR_BOTCHED, false, SMTPC_CMD_NONE, 0,
                    "session unusable after an earlier error");
        r->permanent = false;
        x->m->accepted[i] = false;
        x->done[i] = true;
    }
}

static host_outcome transactions(deliver_ctx *x, smtpc_session *s, attempt *a)
{
    size_t *idx = calloc(x->m->nrcpts, sizeof *idx);
    bool first = true;
    host_outcome out = idx ? HOST_OK : HOST_FAILED;
    size_t n;
    while (idx && (n = pending(x, idx, x->m->nrcpts)) > 0 && !smtpc_session_botched(s)) {
        int rcptmax = smtpc_server_rcptmax(s);
        size_t k = rcptmax > 0 && (size_t)rcptmax < n ? (size_t)rcptmax : n;
        smtpc_message *bm = batch_message(x->m, idx, k);
        if (!bm) {
            out = HOST_FAILED;
            break;
        }
        smtpc_send(s, bm);
        x->m->body_used = bm->body_used;
        const smtpc_error *txerr = smtpc_message_error(bm);
        /* A missing REQUIRETLS is the host's, whatever the batch size. */
        bool host_lacks = txerr && txerr->kind == SMTPC_ERR_REQUIRETLS;
        if (first && txerr && (host_lacks || (k == n && host_error(bm, txerr)))) {
            err_copy(&a->err, txerr);
            if (txerr->kind == SMTPC_ERR_REQUIRETLS) {
                a->err.code = 554; /* spec 24.16 */
                snprintf(a->err.ecode, sizeof a->err.ecode, "5.7.30");
                a->requiretls_missing = true;
            }
            out = HOST_FAILED;
        } else {
            settle_batch(x, bm, idx);
        }
        first = false;
        smtpc_message_free(bm);
        if (out == HOST_FAILED)
            break;
    }
    if (out == HOST_OK)
        fail_pending(x, s);
    else if (a->err.kind == SMTPC_ERR_NONE)
        err_set(&a->err, SMTPC_ERR_NOMEM, false, SMTPC_CMD_NONE, ENOMEM, "out of memory");
    free(idx);
    return out;
}

/* ---- the session ---- */

/* The TLS layer failed: STARTTLS refused, handshake or verification failed,
 * or the connection was lost during the handshake. */
static bool tls_failure(const smtpc_error *e)
{
    return e->kind == SMTPC_ERR_TLS ||
           (e->command == SMTPC_CMD_STARTTLS &&
            (e->kind == SMTPC_ERR_IO || e->kind == SMTPC_ERR_TIMEOUT));
}

static host_outcome run_session(deliver_ctx *x, const gather_host *h, attempt *a,
                                const host_plan *p, bool plaintext)
{
    dial_result dr;
    int timeout = x->dc->timeout_ms > 0 ? x->dc->timeout_ms : 30000;
    if (dial_happy((char(*)[64])p->ips.ips, p->ips.nips, x->dc->port, x->dc->local_ips,
                   x->dc->nlocal, timeout, &dr) != 0) {
        snprintf(a->ip, sizeof a->ip, "%s", dr.ip);
        err_set(&a->err, SMTPC_ERR_CONNECT, false, SMTPC_CMD_CONNECT, dr.err_no, "%s", dr.msg);
        return HOST_FAILED;
    }
    snprintf(a->ip, sizeof a->ip, "%s", dr.ip);
    smtpc_config *cfg = session_config(x, h, p, plaintext);
    smtpc_session *s = cfg ? smtpc_session_new(cfg) : NULL;
    smtpc_config_free(cfg);
    if (!s || smtpc_attach_fd(s, dr.fd, h->is_ip ? NULL : h->name) != 0) {
        /* A failed attach leaves the socket ours. */
        if (!s || smtpc_session_fd(s) != dr.fd)
            close(dr.fd);
        if (s)
            err_copy(&a->err, smtpc_session_error(s));
        else
            err_set(&a->err, SMTPC_ERR_NOMEM, false, SMTPC_CMD_CONNECT, ENOMEM,
                    "cannot start session: out of memory");
        smtpc_session_free(s);
        return HOST_FAILED;
    }
    int rc = smtpc_open(s);
    record_session(a, s, p);
    if (!plaintext) {
        /* A plaintext retry's results are not reported (spec 24.19). */
        smtpc_tlsrpt_merge(x->d->rpt_rcpt, &s->rpt_rcpt);
        smtpc_tlsrpt_merge(p->rpt_host, &s->rpt_host);
    }
    host_outcome out = HOST_FAILED;
    if (rc != 0) {
        err_copy(&a->err, smtpc_session_error(s));
        if (tls_failure(&a->err) && (p->tlsa.dane_required || x->enforce))
            a->err.permanent = false; /* RFC 7672 2.2, RFC 8461 5.1: defer */
    } else
        out = x->probe ? HOST_OK : transactions(x, s, a);
    smtpc_quit(s);
    smtpc_session_free(s);
    return out;
}

/* Spec 24.19: after a TLS failure, an opportunistic delivery may go in
 * plaintext; never with DANE or MTA-STS enforce, unless TLS-Required: No. */
static bool plaintext_allowed(const deliver_ctx *x, const attempt *a, const host_plan *p)
{
    if (x->probe || !tls_failure(&a->err))
        return false;
    if (x->tls_required_no)
        return true;
    return !x->enforce && p->mode == SMTPC_TLS_OPPORTUNISTIC && !p->tlsa.dane_required &&
           !x->requiretls;
}

host_outcome deliver_host(deliver_ctx *x, const gather_host *h)
{
    attempt *a = delivery_new_attempt(x->d, h->name);
    if (!a)
        return HOST_FAILED;
    a->pref = h->pref;
    host_plan p;
    memset(&p, 0, sizeof p);
    p.mode = x->enforce ? SMTPC_TLS_STARTTLS : SMTPC_TLS_OPPORTUNISTIC;
    a->tls_mode = x->enforce ? "starttls" : "opportunistic";
    host_outcome out = HOST_FAILED;
    if (!policy_mismatch(x, h, a) && prepare(x, h, a, &p) == 0) {
        out = run_session(x, h, a, &p, false);
        if (out == HOST_FAILED && plaintext_allowed(x, a, &p)) {
            attempt *retry = delivery_new_attempt(x->d, h->name);
            if (retry) {
                retry->pref = h->pref;
                retry->tls_mode = "none";
                out = run_session(x, h, retry, &p, true);
            }
        }
    }
    gather_tlsa_free(&p.tlsa);
    return out;
}
