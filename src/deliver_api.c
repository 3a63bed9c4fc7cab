/* smtpc_deliver_config and smtpc_delivery: handles, setters, getters. */
#include <stdlib.h>
#include <string.h>

#include "deliver.h"

smtpc_deliver_config *smtpc_deliver_config_new(void)
{
    smtpc_deliver_config *dc = calloc(1, sizeof *dc);
    if (dc)
        dc->port = 25;
    return dc;
}

void smtpc_deliver_config_free(smtpc_deliver_config *dc)
{
    if (!dc)
        return;
    for (size_t i = 0; i < dc->nservers; i++)
        free(dc->servers[i]);
    for (size_t i = 0; i < dc->nlocal; i++)
        free(dc->local_ips[i]);
    free(dc->resolv_conf);
    free(dc->trust_anchor);
    free(dc->state_dir);
    free(dc->ca_file);
    free(dc->ehlo_name);
    free(dc);
}

static int replace(char **dst, const char *src)
{
    char *d = src ? strdup(src) : NULL;
    if (src && !d)
        return -1;
    free(*dst);
    *dst = d;
    return 0;
}

static int append(char **list, size_t *n, size_t max, const char *s)
{
    if (!s || *n >= max || !(list[*n] = strdup(s)))
        return -1;
    (*n)++;
    return 0;
}

int smtpc_deliver_config_add_dns_server(smtpc_deliver_config *dc, const char *addr)
{
    char ip[64];
    uint16_t port;
    if (!addr || dns_parse_server(addr, ip, sizeof ip, &port) != 0)
        return -1;
    return append(dc->servers, &dc->nservers, DELIVER_MAX_SERVERS, addr);
}

int smtpc_deliver_config_set_resolv_conf(smtpc_deliver_config *dc, const char *p)
{
    return replace(&dc->resolv_conf, p);
}

void smtpc_deliver_config_set_dnssec(smtpc_deliver_config *dc, smtpc_dnssec_mode m)
{
    dc->dnssec = m;
}

int smtpc_deliver_config_set_trust_anchor(smtpc_deliver_config *dc, const char *p)
{
    return replace(&dc->trust_anchor, p);
}

int smtpc_deliver_config_set_state_dir(smtpc_deliver_config *dc, const char *p)
{
    return replace(&dc->state_dir, p);
}

void smtpc_deliver_config_set_port(smtpc_deliver_config *dc, uint16_t port)
{
    dc->port = port ? port : 25;
}

int smtpc_deliver_config_set_ca_file(smtpc_deliver_config *dc, const char *p)
{
    return replace(&dc->ca_file, p);
}

int smtpc_deliver_config_set_ehlo_name(smtpc_deliver_config *dc, const char *n)
{
    if (n && (!*n || !address_acceptable(n) || strchr(n, ' ')))
        return -1; /* the same rule as smtpc_config_set_ehlo_name */
    return replace(&dc->ehlo_name, n);
}

int smtpc_deliver_config_add_local_ip(smtpc_deliver_config *dc, const char *ip)
{
    if (!ip || !domain_is_ip(ip))
        return -1;
    return append(dc->local_ips, &dc->nlocal, DELIVER_MAX_LOCAL_IPS, ip);
}

void smtpc_deliver_config_set_timeout(smtpc_deliver_config *dc, int ms)
{
    dc->timeout_ms = ms > 0 ? ms : 0;
}

void smtpc_deliver_config_set_log(smtpc_deliver_config *dc, smtpc_log_fn fn, void *ud,
                                  smtpc_log_level max)
{
    dc->log = (logger){fn, ud, max};
}

/* ---- the delivery ---- */

void delivery_init(smtpc_delivery *d, const char *domain)
{
    memset(d, 0, sizeof *d);
    strncpy(d->domain, domain, sizeof d->domain - 1);
}

attempt *delivery_new_attempt(smtpc_delivery *d, const char *host)
{
    if (d->nattempts >= DELIVER_MAX_ATTEMPTS)
        return NULL;
    attempt *a = &d->attempts[d->nattempts++];
    memset(a, 0, sizeof *a);
    strncpy(a->host, host, sizeof a->host - 1);
    a->tls_mode = "opportunistic";
    a->dane = "none";
    a->pref = -1;
    a->mtasts_match = -1;
    return a;
}

smtpc_tlsrpt *delivery_new_host_result(smtpc_delivery *d)
{
    if (d->nrpt_hosts >= DELIVER_MAX_ATTEMPTS)
        return NULL;
    smtpc_tlsrpt *r = smtpc_tlsrpt_new();
    if (r)
        d->rpt_hosts[d->nrpt_hosts++] = r;
    return r;
}

void delivery_drop_host_result(smtpc_delivery *d, smtpc_tlsrpt *r)
{
    if (d->nrpt_hosts > 0 && d->rpt_hosts[d->nrpt_hosts - 1] == r) {
        smtpc_tlsrpt_free(r);
        d->nrpt_hosts--;
    }
}

static void free_list(char **l, size_t n)
{
    for (size_t i = 0; l && i < n; i++)
        free(l[i]);
    free(l);
}

static void attempt_free(attempt *a)
{
    err_clear(&a->err);
    free(a->addrs);
    free_list(a->tlsa, a->ntlsa);
    free_list(a->exts, a->nexts);
    free(a->certs);
}

void smtpc_delivery_free(smtpc_delivery *d)
{
    if (!d)
        return;
    err_clear(&d->err);
    for (size_t i = 0; i < d->nattempts; i++)
        attempt_free(&d->attempts[i]);
    for (size_t i = 0; i < d->nrpt_hosts; i++)
        smtpc_tlsrpt_free(d->rpt_hosts[i]);
    smtpc_tlsrpt_free(d->rpt_rcpt);
    free(d->mtasts_error);
    free(d->mtasts_record);
    free_list(d->mtasts_mx, d->nmtasts_mx);
    free(d->tlsrpt_record);
    free_list(d->rua, d->nrua);
    free(d);
}

const char *dns_sec_name(dns_sec s)
{
    return s == DNS_SECURE ? "secure" : s == DNS_BOGUS ? "bogus" : "insecure";
}

const char *smtpc_delivery_domain(const smtpc_delivery *d) { return d->domain; }
bool smtpc_delivery_ok(const smtpc_delivery *d) { return d && d->ok; }

const smtpc_error *smtpc_delivery_error(const smtpc_delivery *d)
{
    return d && d->err.kind != SMTPC_ERR_NONE ? &d->err : NULL;
}

const char *smtpc_delivery_mtasts_mode(const smtpc_delivery *d) { return d->mtasts_mode; }

const char *smtpc_delivery_mtasts_policy_id(const smtpc_delivery *d)
{
    return d->mtasts_id[0] ? d->mtasts_id : NULL;
}

const char *smtpc_delivery_mtasts_error(const smtpc_delivery *d) { return d->mtasts_error; }
const char *smtpc_delivery_mtasts_record(const smtpc_delivery *d) { return d->mtasts_record; }
size_t smtpc_delivery_mtasts_mx_count(const smtpc_delivery *d) { return d->nmtasts_mx; }

const char *smtpc_delivery_mtasts_mx(const smtpc_delivery *d, size_t i)
{
    return i < d->nmtasts_mx ? d->mtasts_mx[i] : NULL;
}

const char *smtpc_delivery_tlsrpt_record(const smtpc_delivery *d) { return d->tlsrpt_record; }
size_t smtpc_delivery_tlsrpt_rua_count(const smtpc_delivery *d) { return d->nrua; }

const char *smtpc_delivery_tlsrpt_rua(const smtpc_delivery *d, size_t i)
{
    return i < d->nrua ? d->rua[i] : NULL;
}

size_t smtpc_delivery_attempt_count(const smtpc_delivery *d) { return d->nattempts; }

static const attempt *att(const smtpc_delivery *d, size_t i)
{
    static const attempt none = {.tls_mode = "none", .dane = "none", .pref = -1,
                                 .mtasts_match = -1};
    return i < d->nattempts ? &d->attempts[i] : &none;
}

const char *smtpc_delivery_attempt_host(const smtpc_delivery *d, size_t i) { return att(d, i)->host; }

const char *smtpc_delivery_attempt_ip(const smtpc_delivery *d, size_t i)
{
    return att(d, i)->ip[0] ? att(d, i)->ip : NULL;
}

const char *smtpc_delivery_attempt_tls_mode(const smtpc_delivery *d, size_t i) { return att(d, i)->tls_mode; }
const char *smtpc_delivery_attempt_dane(const smtpc_delivery *d, size_t i) { return att(d, i)->dane; }
bool smtpc_delivery_attempt_pkix_verified(const smtpc_delivery *d, size_t i) { return att(d, i)->pkix_verified; }

const smtpc_error *smtpc_delivery_attempt_error(const smtpc_delivery *d, size_t i)
{
    return att(d, i)->err.kind != SMTPC_ERR_NONE ? &att(d, i)->err : NULL;
}

int smtpc_delivery_attempt_preference(const smtpc_delivery *d, size_t i) { return att(d, i)->pref; }
const char *smtpc_delivery_attempt_dnssec(const smtpc_delivery *d, size_t i) { return dns_sec_name(att(d, i)->dnssec); }
size_t smtpc_delivery_attempt_address_count(const smtpc_delivery *d, size_t i) { return att(d, i)->naddrs; }

const char *smtpc_delivery_attempt_address(const smtpc_delivery *d, size_t i, size_t k)
{
    return k < att(d, i)->naddrs ? att(d, i)->addrs[k] : NULL;
}

size_t smtpc_delivery_attempt_tlsa_count(const smtpc_delivery *d, size_t i) { return att(d, i)->ntlsa; }

const char *smtpc_delivery_attempt_tlsa(const smtpc_delivery *d, size_t i, size_t k)
{
    return k < att(d, i)->ntlsa ? att(d, i)->tlsa[k] : NULL;
}

size_t smtpc_delivery_attempt_tlsa_usable(const smtpc_delivery *d, size_t i) { return att(d, i)->tlsa_usable; }
const char *smtpc_delivery_attempt_tlsa_dnssec(const smtpc_delivery *d, size_t i) { return dns_sec_name(att(d, i)->tlsa_sec); }
int smtpc_delivery_attempt_mtasts_match(const smtpc_delivery *d, size_t i) { return att(d, i)->mtasts_match; }
bool smtpc_delivery_attempt_starttls(const smtpc_delivery *d, size_t i) { return att(d, i)->starttls; }

const char *smtpc_delivery_attempt_tls_version(const smtpc_delivery *d, size_t i)
{
    return att(d, i)->tls_version[0] ? att(d, i)->tls_version : NULL;
}

const char *smtpc_delivery_attempt_tls_cipher(const smtpc_delivery *d, size_t i)
{
    return att(d, i)->tls_cipher[0] ? att(d, i)->tls_cipher : NULL;
}

size_t smtpc_delivery_attempt_ext_count(const smtpc_delivery *d, size_t i) { return att(d, i)->nexts; }

const char *smtpc_delivery_attempt_ext(const smtpc_delivery *d, size_t i, size_t k)
{
    return k < att(d, i)->nexts ? att(d, i)->exts[k] : NULL;
}

size_t smtpc_delivery_attempt_cert_count(const smtpc_delivery *d, size_t i) { return att(d, i)->ncerts; }

const char *smtpc_delivery_attempt_cert(const smtpc_delivery *d, size_t i, size_t k)
{
    return k < att(d, i)->ncerts ? att(d, i)->certs[k] : NULL;
}

const smtpc_tlsrpt *smtpc_delivery_tlsrpt_recipient_domain(const smtpc_delivery *d)
{
    return d->rpt_rcpt;
}

size_t smtpc_delivery_tlsrpt_host_count(const smtpc_delivery *d) { return d->nrpt_hosts; }

const smtpc_tlsrpt *smtpc_delivery_tlsrpt_host(const smtpc_delivery *d, size_t i)
{
    return i < d->nrpt_hosts ? d->rpt_hosts[i] : NULL;
}
