/* Where mail for a domain goes and how to reach it (spec 15-18): MX hosts,
 * their addresses and their TLSA records, with the DNSSEC status that
 * decides whether DANE applies. All network access is the resolver's. */
#include "gather.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NEXT_HOP_NAMES_MAX 16 /* spec 15.3: a chain of 16 CNAMEs fails, 15 is fine */
#define HOST_CNAME_HOPS 11    /* spec 16.2: a 12th CNAME fails */
#define TLSA_CNAME_HOPS 10    /* spec 17.3 */
#define FQDN_MAX (DOMAIN_MAX + 16) /* "_65535._tcp." + name + "." */

/* ------------------------------------------------------------------ */
/* Answers and status */

/* Spec 22.6: authentic only when secure and an answer (records or a proven
 * absence), never for a failed lookup. */
static bool ans_authentic(const dns_answer *a)
{
    return a->sec == DNS_SECURE && (a->status == DNS_OK || dns_not_found(a));
}

/* A lookup error: anything but records or "not found", and any bogus answer
 * (validation failure is an error, never "insecure", spec 17.3). */
static bool ans_failed(const dns_answer *a)
{
    return a->sec == DNS_BOGUS || (a->status != DNS_OK && !dns_not_found(a));
}

static const char *status_name(const dns_answer *a)
{
    switch (a->status) {
    case DNS_OK:
        return a->sec == DNS_BOGUS ? "DNSSEC bogus" : "ok";
    case DNS_NXDOMAIN:
        return "NXDOMAIN";
    case DNS_NODATA:
        return "no records";
    case DNS_SERVFAIL:
        return "SERVFAIL";
    case DNS_TEMPFAIL:
        return "temporary failure";
    case DNS_ERROR:
        return "error";
    }
    return "error";
}

/* "SERVFAIL: why (extended dns error 6 dnssec-bogus: text)" */
static void describe(const dns_answer *a, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s%s%s", status_name(a), a->why[0] ? ": " : "", a->why);
    if (a->ede >= 0 && n >= 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, " (extended dns error %d %s%s%s)", a->ede,
                 dns_ede_name(a->ede), a->ede_text[0] ? ": " : "", a->ede_text);
}

static void st_init(gather_status *st)
{
    memset(st, 0, sizeof *st);
    st->ede = -1;
}

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static void st_set(gather_status *st, gather_err err, bool permanent, const char *fmt, ...)
{
    st->err = err;
    st->permanent = permanent;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->msg, sizeof st->msg, fmt, ap);
    va_end(ap);
}

/* A failed lookup: errDNS, transient, with the lookup's EDE. */
static void st_lookup_failed(gather_status *st, const char *what, const char *name,
                             const dns_answer *a)
{
    char why[300];
    describe(a, why, sizeof why);
    st_set(st, GATHER_DNS, false, "%s %s: %s", what, name, why);
    st->ede = a->ede;
}

static int fqdn(char *buf, const char *name)
{
    int n = snprintf(buf, FQDN_MAX, "%s.", name);
    return n > 0 && n < FQDN_MAX ? 0 : -1;
}

/* Looks up name (without the trailing dot). -1: out of memory or name too long. */
static int lookup(dns_resolver *r, const char *name, dns_type t, dns_answer *a, gather_status *st)
{
    char fq[FQDN_MAX];
    if (fqdn(fq, name) != 0) {
        memset(a, 0, sizeof *a);
        st_set(st, GATHER_DNS, true, "name too long: %s", name);
        return -1;
    }
    if (dns_lookup(r, fq, t, a) != 0) {
        dns_answer_free(a);
        st_set(st, GATHER_NOMEM, false, "out of memory looking up %s", fq);
        return -1;
    }
    return 0;
}

static void copy_name(char dst[DOMAIN_MAX], const char *src)
{
    snprintf(dst, DOMAIN_MAX, "%s", src);
}

/* IP text or an address literal ("[192.0.2.1]", "[IPv6:...]"). */
static bool ip_host(const char *s, char ip[64])
{
    if (domain_is_ip(s) && strlen(s) < 64) {
        memcpy(ip, s, strlen(s) + 1);
        return true;
    }
    return domain_address_literal(s, ip) == 0;
}

/* ------------------------------------------------------------------ */
/* Spec 15: destinations */

/* Q25: order MX records by preference ourselves (stable), then shuffle each
 * group of equal preference with rnd (RFC 5321 5.1). */
static void mx_order(const dns_answer *a, size_t *idx, gather_rand_fn rnd, void *ud)
{
    for (size_t i = 0; i < a->n; i++) {
        size_t j = i;
        for (; j > 0 && a->pref[idx[j - 1]] > a->pref[i]; j--)
            idx[j] = idx[j - 1];
        idx[j] = i;
    }
    if (!rnd)
        return;
    for (size_t s = 0, e; s < a->n; s = e) {
        for (e = s + 1; e < a->n && a->pref[idx[e]] == a->pref[idx[s]]; e++)
            ;
        for (size_t k = e - 1; k > s; k--) { /* Fisher-Yates within [s, e) */
            size_t j = s + rnd(ud) % (k - s + 1);
            size_t t = idx[k];
            idx[k] = idx[j];
            idx[j] = t;
        }
    }
}

/* RFC 7505 3: null MX is "." as the only record. We also treat a set made
 * of nothing but "." records as null MX; a "." among real hosts is ignored. */
static bool is_null_mx(const dns_answer *a)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->text[i][0] != '\0')
            return false;
    return a->n > 0;
}

static void mx_hosts(const dns_answer *a, gather_rand_fn rnd, void *ud, gather_dest *out)
{
    size_t idx[DNS_MAX_RECORDS];
    mx_order(a, idx, rnd, ud);
    out->have_mx = true;
    for (size_t k = 0; k < a->n; k++) {
        const char *host = a->text[idx[k]];
        char name[DOMAIN_MAX];
        if (host[0] == '\0')
            continue; /* "." beside real hosts */
        if (domain_parse_lenient(host, name) != 0) {
            /* A broken MX set will not fix itself: permanent (spec 15.3.8). */
            out->nhosts = 0;
            st_set(&out->st, GATHER_DNS, true, "invalid host name in mx record \"%s\" for %s",
                   host, out->expanded_next_hop);
            return;
        }
        if (out->nhosts < GATHER_MAX_HOSTS) {
            gather_host *h = &out->hosts[out->nhosts++];
            copy_name(h->name, name);
            h->pref = a->pref[idx[k]];
        }
    }
}

/* Step 3 of 15.3. Returns 1 when name was replaced by its CNAME target, 0
 * when it has none, -1 on error (out->st set). */
static int dest_cname(dns_resolver *r, char name[DOMAIN_MAX], size_t i, gather_dest *out)
{
    dns_answer a;
    if (lookup(r, name, DNS_T_CNAME, &a, &out->st) != 0)
        return -1;
    bool auth = ans_authentic(&a);
    out->orig_authentic = out->orig_authentic && (i > 0 || auth);
    out->expanded_authentic = out->expanded_authentic && auth;
    int rc = 0;
    if (ans_failed(&a)) {
        st_lookup_failed(&out->st, "cname lookup for", name, &a);
        rc = -1;
    } else if (a.status == DNS_OK && a.n > 0 && strcasecmp(a.text[0], name) != 0) {
        char target[DOMAIN_MAX];
        if (domain_parse(a.text[0], target) != 0) {
            st_set(&out->st, GATHER_DNS, false, "cname lookup for %s: invalid target \"%s\"",
                   name, a.text[0]);
            rc = -1;
        } else {
            copy_name(name, target);
            rc = 1;
        }
    }
    dns_answer_free(&a);
    return rc;
}

/* Steps 4-9 of 15.3 for the final name. */
static void dest_mx(dns_resolver *r, const char *name, size_t i, gather_rand_fn rnd, void *ud,
                    gather_dest *out)
{
    dns_answer a;
    if (lookup(r, name, DNS_T_MX, &a, &out->st) != 0)
        return;
    bool auth = ans_authentic(&a);
    out->orig_authentic = out->orig_authentic && (i > 0 || auth);
    out->expanded_authentic = out->expanded_authentic && auth;
    if (ans_failed(&a) && (a.n == 0 || a.sec == DNS_BOGUS)) {
        st_lookup_failed(&out->st, "mx lookup for", name, &a);
    } else if (a.n == 0) {
        /* RFC 5321 5.1: no MX, the domain itself is the implicit MX. */
        copy_name(out->hosts[0].name, name);
        out->hosts[0].pref = -1;
        out->nhosts = 1;
    } else if (is_null_mx(&a)) {
        out->have_mx = true;
        st_set(&out->st, GATHER_NO_MAIL, true, "%s does not accept mail (null MX, RFC 7505)",
               name);
    } else {
        /* With an error beside records, the valid records are used (15.3.6). */
        mx_hosts(&a, rnd, ud, out);
    }
    dns_answer_free(&a);
}

static bool seen_before(char seen[][DOMAIN_MAX], size_t n, const char *name)
{
    for (size_t k = 0; k < n; k++)
        if (strcasecmp(seen[k], name) == 0)
            return true;
    return false;
}

static void dest_domain(dns_resolver *r, char name[DOMAIN_MAX], gather_rand_fn rnd, void *ud,
                        gather_dest *out)
{
    char seen[NEXT_HOP_NAMES_MAX][DOMAIN_MAX];
    out->orig_authentic = out->expanded_authentic = true;
    for (size_t i = 0;; i++) {
        copy_name(out->expanded_next_hop, name);
        if (seen_before(seen, i, name)) {
            st_set(&out->st, GATHER_CNAME_LOOP, false, "cname loop for %s", name);
            return;
        }
        if (i == NEXT_HOP_NAMES_MAX) {
            st_set(&out->st, GATHER_CNAME_LIMIT, false, "too many cname records for %s", name);
            return;
        }
        copy_name(seen[i], name);
        int rc = dest_cname(r, name, i, out);
        if (rc < 0)
            return;
        if (rc == 0) {
            dest_mx(r, name, i, rnd, ud, out);
            return;
        }
    }
}

void gather_destinations(dns_resolver *r, const char *next_hop, gather_rand_fn rnd, void *rnd_ud,
                         gather_dest *out)
{
    memset(out, 0, sizeof *out);
    st_init(&out->st);
    char ip[64], name[DOMAIN_MAX];
    if (ip_host(next_hop, ip)) {
        /* Spec 15.2: dialed directly, no DNS and so no DANE. */
        copy_name(out->hosts[0].name, ip);
        out->hosts[0].is_ip = true;
        out->hosts[0].pref = -1;
        out->nhosts = 1;
        return;
    }
    if (domain_parse(next_hop, name) != 0) {
        st_set(&out->st, GATHER_DNS, true, "invalid domain \"%s\"", next_hop);
        return;
    }
    dest_domain(r, name, rnd, rnd_ud, out);
}

/* ------------------------------------------------------------------ */
/* Spec 16: addresses */

/* Follows CNAMEs from host (16.2); cur gets the final name. Returns 0 or -1. */
static int ips_cname_chain(dns_resolver *r, const char *host, char cur[DOMAIN_MAX], gather_ips *out)
{
    copy_name(cur, host);
    for (size_t i = 0;; i++) {
        dns_answer a;
        if (lookup(r, cur, DNS_T_CNAME, &a, &out->st) != 0)
            return -1;
        bool auth = ans_authentic(&a);
        out->authentic = i == 0 ? auth : out->authentic;
        out->expanded_authentic = out->expanded_authentic && auth;
        int rc = 1; /* 1: follow, 0: done, -1: error */
        if (ans_failed(&a)) {
            st_lookup_failed(&out->st, "cname lookup for", cur, &a);
            rc = -1;
        } else if (a.status != DNS_OK || a.n == 0 || strcasecmp(a.text[0], cur) == 0) {
            rc = 0;
        } else if (i >= HOST_CNAME_HOPS) {
            st_set(&out->st, GATHER_CNAME_LIMIT, false,
                   "cname lookup for %s: too many cname records (more than %d)", host,
                   HOST_CNAME_HOPS);
            rc = -1;
        } else if (strlen(a.text[0]) >= DOMAIN_MAX) {
            st_set(&out->st, GATHER_DNS, false, "cname target too long for %s", cur);
            rc = -1;
        } else {
            copy_name(cur, a.text[0]);
        }
        dns_answer_free(&a);
        if (rc <= 0)
            return rc;
    }
}

static bool ip_is4(const char *ip)
{
    unsigned char b[16];
    if (inet_pton(AF_INET, ip, b) == 1)
        return true;
    /* IPv4-mapped IPv6 is IPv4 for the family alternation. */
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return inet_pton(AF_INET6, ip, b) == 1 && memcmp(b, mapped, 12) == 0;
}

/* Normalised 16-byte form for comparing address texts. */
static bool ip_bytes(const char *ip, unsigned char b[16])
{
    unsigned char v4[4];
    if (inet_pton(AF_INET, ip, v4) == 1) {
        memset(b, 0, 10);
        b[10] = b[11] = 0xff;
        memcpy(b + 12, v4, 4);
        return true;
    }
    return inet_pton(AF_INET6, ip, b) == 1;
}

static bool ip_equal(const char *x, const char *y)
{
    unsigned char a[16], b[16];
    return ip_bytes(x, a) && ip_bytes(y, b) && memcmp(a, b, 16) == 0;
}

static void add_ip(gather_ips *out, const char *ip, bool want4)
{
    unsigned char b[16];
    if (out->nips >= GATHER_MAX_IPS || strlen(ip) >= sizeof out->ips[0] ||
        inet_pton(want4 ? AF_INET : AF_INET6, ip, b) != 1)
        return;
    memcpy(out->ips[out->nips++], ip, strlen(ip) + 1);
}

/* RFC 8305 4: interleave the families, IPv6 first; the resolver's order is
 * kept within a family. */
static void collect_ips(const dns_answer *a4, const dns_answer *a6, gather_ips *out)
{
    size_t n4 = a4 && !ans_failed(a4) && a4->status == DNS_OK ? a4->n : 0;
    size_t n6 = a6 && !ans_failed(a6) && a6->status == DNS_OK ? a6->n : 0;
    for (size_t k = 0; k < n4 || k < n6; k++) {
        if (k < n6)
            add_ip(out, a6->text[k], false);
        if (k < n4)
            add_ip(out, a4->text[k], true);
    }
    bool have4 = false, have6 = false;
    for (size_t k = 0; k < out->nips; k++) {
        if (ip_is4(out->ips[k]))
            have4 = true;
        else
            have6 = true;
    }
    out->dualstack = have4 && have6;
}

/* Q15: no address is an error. A real failure is reported before a "not
 * found"; not found for every family asked is permanent. */
static void ips_none(const char *name, const dns_answer *a4, const dns_answer *a6, gather_ips *out)
{
    const dns_answer *bad = a4 && ans_failed(a4) ? a4 : a6 && ans_failed(a6) ? a6 : NULL;
    if (bad) {
        char why[300];
        describe(bad, why, sizeof why);
        st_set(&out->st, GATHER_DNS, false, "looking up \"%s.\": %s", name, why);
        out->st.ede = bad->ede;
        return;
    }
    st_set(&out->st, GATHER_DNS, true, "looking up \"%s.\": no address records", name);
}

static void ips_addresses(dns_resolver *r, const char *name, int family, gather_ips *out)
{
    dns_answer a4, a6;
    bool do4 = family != 6, do6 = family != 4;
    if (do4 && lookup(r, name, DNS_T_A, &a4, &out->st) != 0)
        return;
    if (do6 && lookup(r, name, DNS_T_AAAA, &a6, &out->st) != 0) {
        if (do4)
            dns_answer_free(&a4);
        return;
    }
    /* Spec 16.4: the address lookups' authenticity counts for both flags. */
    bool auth = (!do4 || ans_authentic(&a4)) && (!do6 || ans_authentic(&a6));
    out->authentic = out->authentic && auth;
    out->expanded_authentic = out->expanded_authentic && auth;
    collect_ips(do4 ? &a4 : NULL, do6 ? &a6 : NULL, out);
    if (out->nips == 0)
        ips_none(name, do4 ? &a4 : NULL, do6 ? &a6 : NULL, out);
    if (do4)
        dns_answer_free(&a4);
    if (do6)
        dns_answer_free(&a6);
}

/* Spec 16.6 sort key: the other family than the last dialed IP first, then
 * that IP itself when it was the only one of its family, then the rest. */
static int prev_rank(const char *ip, const char *last, bool last4, bool prefer_last)
{
    if (ip_is4(ip) != last4)
        return 0;
    return prefer_last && ip_equal(ip, last) ? 1 : 2;
}

static void ips_order(gather_ips *out, char *const *prev, size_t nprev)
{
    if (nprev == 0 || !prev[nprev - 1])
        return;
    const char *last = prev[nprev - 1];
    bool last4 = ip_is4(last);
    size_t same = 0;
    for (size_t k = 0; k < nprev; k++)
        same += prev[k] && ip_is4(prev[k]) == last4;
    bool prefer_last = same == 1; /* retry the same IP once (greylisting) */
    for (size_t i = 1; i < out->nips; i++) { /* stable insertion sort */
        char tmp[64];
        memcpy(tmp, out->ips[i], sizeof tmp);
        int rank = prev_rank(tmp, last, last4, prefer_last);
        size_t j = i;
        for (; j > 0 && prev_rank(out->ips[j - 1], last, last4, prefer_last) > rank; j--)
            memcpy(out->ips[j], out->ips[j - 1], sizeof tmp);
        memcpy(out->ips[j], tmp, sizeof tmp);
    }
}

void gather_ips_lookup(dns_resolver *r, const char *host, int family, char *const *prev,
                       size_t nprev, gather_ips *out)
{
    memset(out, 0, sizeof *out);
    st_init(&out->st);
    char ip[64], name[DOMAIN_MAX], cur[DOMAIN_MAX];
    if (ip_host(host, ip)) {
        memcpy(out->ips[0], ip, strlen(ip) + 1); /* spec 16.1 */
        out->nips = 1;
        return;
    }
    /* MX targets may carry underscores (22.2). */
    if (domain_parse_lenient(host, name) != 0) {
        st_set(&out->st, GATHER_DNS, true, "invalid host name \"%s\"", host);
        return;
    }
    out->authentic = out->expanded_authentic = true;
    if (ips_cname_chain(r, name, cur, out) != 0)
        return;
    if (strcasecmp(cur, name) == 0) {
        copy_name(out->expanded_host, name);
    } else if (domain_parse(cur, out->expanded_host) != 0) {
        st_set(&out->st, GATHER_DNS, false, "parsing cname-resolved domain \"%s\" for %s", cur,
               name);
        return;
    }
    ips_addresses(r, cur, family, out);
    if (out->st.err == GATHER_OK)
        ips_order(out, prev, nprev);
}

/* ------------------------------------------------------------------ */
/* Spec 17: TLSA records */

/* Follows CNAMEs from "_PORT._tcp.BASE." (17.3). Returns 1 with cur set to
 * the name to query for TLSA, 0 for "no DANE", -1 on error. */
static int tlsa_cname_chain(dns_resolver *r, const char *base, uint16_t port,
                            char cur[FQDN_MAX], gather_status *st)
{
    snprintf(cur, FQDN_MAX, "_%u._tcp.%s", (unsigned)port, base);
    for (size_t i = 0;; i++) {
        dns_answer a;
        if (lookup(r, cur, DNS_T_CNAME, &a, st) != 0)
            return -1;
        int rc = 2; /* 2: follow */
        /* The error check comes first: a bogus answer is not "insecure". */
        if (ans_failed(&a)) {
            st_lookup_failed(st, "looking up cname for tlsa candidate base domain", base, &a);
            rc = -1;
        } else if (a.status != DNS_OK || a.n == 0) {
            rc = ans_authentic(&a) ? 1 : 0;
        } else if (!ans_authentic(&a)) {
            rc = 0; /* insecure CNAME: no DANE for this host */
        } else if (i == TLSA_CNAME_HOPS) {
            st_set(st, GATHER_CNAME_LIMIT, false,
                   "looking up cname for tlsa candidate base domain %s: too many cname records",
                   base);
            rc = -1;
        } else if (strlen(a.text[0]) >= DOMAIN_MAX) {
            st_set(st, GATHER_DNS, false, "cname target too long for %s", cur);
            rc = -1;
        } else {
            snprintf(cur, FQDN_MAX, "%s", a.text[0]);
        }
        dns_answer_free(&a);
        if (rc != 2)
            return rc;
    }
}

/* TLSA records for one base domain; *a holds the records only when they
 * are DANE material (authentic). Returns 0 (records or none) or -1. */
static int tlsa_at(dns_resolver *r, const char *base, uint16_t port, dns_answer *a,
                   gather_status *st)
{
    char cur[FQDN_MAX];
    memset(a, 0, sizeof *a);
    int rc = tlsa_cname_chain(r, base, port, cur, st);
    if (rc <= 0)
        return rc;
    if (lookup(r, cur, DNS_T_TLSA, a, st) != 0)
        return -1;
    if (ans_failed(a)) {
        st_lookup_failed(st, "looking up tlsa records for tlsa candidate base domain", base, a);
        dns_answer_free(a);
        return -1;
    }
    if (a->status != DNS_OK || !ans_authentic(a))
        dns_answer_free(a); /* none, or insecure: no DANE */
    return 0;
}

static char *tlsa_text(const tlsa_rec *t)
{
    char *s = malloc(16 + 2 * t->len);
    if (!s)
        return NULL;
    int n = sprintf(s, "%u %u %u ", t->usage, t->selector, t->mtype);
    for (size_t k = 0; k < t->len; k++)
        n += sprintf(s + n, "%02x", t->data[k]);
    return s;
}

/* Every record found, usable or not, for reports and probes. */
static void tlsa_keep_text(const dns_answer *a, gather_tlsa *out)
{
    out->all_text = calloc(a->n ? a->n : 1, sizeof *out->all_text);
    for (size_t i = 0; out->all_text && i < a->n; i++)
        out->all_text[i] = tlsa_text(&a->tlsa[i]);
}

/* Spec 17.4-17.5: keep the usable records. */
static void tlsa_keep_usable(const dns_answer *a, gather_tlsa *out)
{
    out->dane_required = true;
    out->nall = a->n;
    tlsa_keep_text(a, out);
    out->recs = calloc(a->n, sizeof *out->recs);
    if (!out->recs) {
        st_set(&out->st, GATHER_NOMEM, false, "out of memory");
        return;
    }
    for (size_t i = 0; i < a->n; i++) {
        const tlsa_rec *t = &a->tlsa[i];
        if (!tlsa_usable(t))
            continue;
        tlsa_rec *d = &out->recs[out->nrecs];
        *d = *t;
        d->data = malloc(t->len ? t->len : 1);
        if (!d->data) {
            st_set(&out->st, GATHER_NOMEM, false, "out of memory");
            return;
        }
        memcpy(d->data, t->data, t->len);
        out->nrecs++;
    }
    if (out->nrecs == 0) {
        free(out->recs);
        out->recs = NULL;
    }
}

void gather_tlsa_lookup(dns_resolver *r, const char *host, bool expanded_authentic,
                        const char *expanded_host, uint16_t port, gather_tlsa *out)
{
    memset(out, 0, sizeof *out);
    st_init(&out->st);
    port = port ? port : 25;
    copy_name(out->base, host);
    char ip[64];
    if (ip_host(host, ip))
        return; /* IP hosts have no TLSA records */
    dns_answer a;
    bool expanded = expanded_host && expanded_host[0] && strcasecmp(host, expanded_host) != 0;
    int rc;
    /* Spec 17.2: the expanded name only when its CNAME chain was authentic
     * (RFC 7672 2.2.2), falling back to the host name. */
    if (!expanded || !expanded_authentic) {
        rc = tlsa_at(r, host, port, &a, &out->st);
    } else {
        copy_name(out->base, expanded_host);
        rc = tlsa_at(r, expanded_host, port, &a, &out->st);
        if (rc == 0 && a.n == 0) {
            copy_name(out->base, host);
            rc = tlsa_at(r, host, port, &a, &out->st);
        }
    }
    if (rc != 0) {
        /* RFC 7672 2.1.1: a failed lookup must not downgrade to no DANE. */
        out->dane_required = out->st.err != GATHER_NOMEM;
        return;
    }
    if (a.n > 0)
        tlsa_keep_usable(&a, out);
    dns_answer_free(&a);
}

void gather_tlsa_free(gather_tlsa *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nrecs; i++)
        free(t->recs[i].data);
    free(t->recs);
    t->recs = NULL;
    t->nrecs = 0;
    for (size_t i = 0; t->all_text && i < t->nall; i++)
        free(t->all_text[i]);
    free(t->all_text);
    t->all_text = NULL;
}

/* ------------------------------------------------------------------ */
/* Spec 18: names allowed in the certificate */

static void add_name(char names[][DOMAIN_MAX], size_t *n, size_t max, const char *name)
{
    if (!name || !name[0] || *n >= max)
        return;
    for (size_t i = 0; i < *n; i++)
        if (strcasecmp(names[i], name) == 0)
            return; /* e.g. an MX host equal to the domain */
    copy_name(names[(*n)++], name);
}

static bool same_name(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

size_t gather_tlsa_names(bool have_mx, bool exp_next_hop_authentic, bool exp_authentic,
                         const char *orig_next_hop, const char *exp_next_hop,
                         const char *orig_base, const char *exp_base, char names[][DOMAIN_MAX],
                         size_t max)
{
    size_t n = 0;
    exp_base = exp_base && exp_base[0] ? exp_base : orig_base;
    exp_next_hop = exp_next_hop && exp_next_hop[0] ? exp_next_hop : orig_next_hop;
    if (!have_mx) {
        /* RFC 7672 3.2.2, no MX: the TLSA base names. */
        if (exp_authentic && !same_name(exp_base, orig_base))
            add_name(names, &n, max, exp_base);
        add_name(names, &n, max, orig_base);
    } else if (exp_next_hop_authentic) {
        /* RFC 7672 3.2.2: MX host names and the next-hop domain names. */
        if (exp_authentic)
            add_name(names, &n, max, exp_base);
        if (!same_name(exp_base, orig_base))
            add_name(names, &n, max, orig_base);
        add_name(names, &n, max, orig_next_hop);
        if (!same_name(orig_next_hop, exp_next_hop))
            add_name(names, &n, max, exp_next_hop);
    } else {
        add_name(names, &n, max, orig_next_hop);
    }
    return n;
}
