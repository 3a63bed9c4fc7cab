/* Fixture DNS backend for tests: a table of (name, type) -> answer with an
 * explicit DNSSEC status, so every row of spec 15-18 can be exercised without
 * a network. Names are matched case-insensitively, with their trailing dot
 * (one is appended when a test leaves it out).
 *
 * Answers:
 * - (name, type) listed: its records, with the weakest DNSSEC status of the
 *   adds (an RRset is signed as a whole); a dns_fixture_fail() status wins,
 *   and records added as well are returned beside it (spec 15.3 step 6).
 * - name listed with other types only: NODATA, secure when every entry of
 *   the name is secure (a signed zone proves the absence), else insecure
 *   (never bogus: a bogus answer is only ever an explicit one).
 *   A CNAME of the name is followed for other types, as a recursive
 *   resolver does (22.9); the chain's status is the weakest of its parts.
 * - name not listed at all: NXDOMAIN, insecure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns.h"
#include "dns_backend.h"

#define FIX_NAME_MAX 300
#define FIX_MAX_CHASE 16 /* CNAME hops followed for non-CNAME questions */

typedef struct fix_entry {
    char name[FIX_NAME_MAX];
    dns_type type;
    dns_sec sec;
    bool failed;       /* dns_fixture_fail() was called */
    dns_status status; /* when failed */
    int ede;
    char **data;       /* record texts as added */
    size_t ndata;
    size_t lookups;
} fix_entry;

typedef struct fixture {
    fix_entry *e;
    size_t n, cap;
} fixture;

/* Weakest of two statuses: bogus < insecure < secure. */
static dns_sec sec_min(dns_sec a, dns_sec b)
{
    if (a == DNS_BOGUS || b == DNS_BOGUS)
        return DNS_BOGUS;
    if (a == DNS_INSECURE || b == DNS_INSECURE)
        return DNS_INSECURE;
    return DNS_SECURE;
}

static int norm_name(const char *in, char out[FIX_NAME_MAX])
{
    size_t n = strlen(in);
    if (n == 0 || n + 2 > FIX_NAME_MAX)
        return -1;
    for (size_t i = 0; i < n; i++)
        out[i] = (in[i] >= 'A' && in[i] <= 'Z') ? (char)(in[i] - 'A' + 'a') : in[i];
    out[n] = '\0';
    if (out[n - 1] != '.') {
        out[n] = '.';
        out[n + 1] = '\0';
    }
    return 0;
}

static fix_entry *find(const fixture *f, const char *name, dns_type t)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->e[i].type == t && strcasecmp(f->e[i].name, name) == 0)
            return &f->e[i];
    return NULL;
}

/* Entry for (name, t), created when missing. */
static fix_entry *entry(fixture *f, const char *name, dns_type t)
{
    char norm[FIX_NAME_MAX];
    if (norm_name(name, norm) != 0)
        return NULL;
    fix_entry *e = find(f, norm, t);
    if (e)
        return e;
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        fix_entry *ne = realloc(f->e, cap * sizeof *ne);
        if (!ne)
            return NULL;
        f->e = ne;
        f->cap = cap;
    }
    e = &f->e[f->n++];
    memset(e, 0, sizeof *e);
    memcpy(e->name, norm, strlen(norm) + 1);
    e->type = t;
    e->sec = DNS_SECURE;
    e->ede = -1;
    return e;
}

/* Whether (name, t) carries an answer, as opposed to being only a lookup counter. */
static bool has_answer(const fix_entry *e)
{
    return e->failed || e->ndata > 0;
}

/* The name exists when any type of it has an answer; *sec gets the weakest status. */
static bool name_exists(const fixture *f, const char *name, dns_sec *sec)
{
    bool found = false;
    *sec = DNS_SECURE;
    for (size_t i = 0; i < f->n; i++) {
        if (!has_answer(&f->e[i]) || strcasecmp(f->e[i].name, name) != 0)
            continue;
        found = true;
        *sec = sec_min(*sec, f->e[i].sec);
    }
    if (!found || *sec == DNS_BOGUS)
        *sec = DNS_INSECURE; /* bogus only when said so, with its status and EDE */
    return found;
}

static int parse_mx(const char *text, uint16_t *pref, char **host)
{
    char *end;
    long p = strtol(text, &end, 10);
    if (end == text || *end != ' ' || p < 0 || p > 65535)
        return -1;
    while (*end == ' ')
        end++;
    char norm[FIX_NAME_MAX];
    if (norm_name(end, norm) != 0)
        return -1;
    norm[strlen(norm) - 1] = '\0'; /* without the trailing dot; "." becomes "" */
    *pref = (uint16_t)p;
    *host = strdup(norm);
    return *host ? 0 : -1;
}

static char *record_text(dns_type t, const char *data)
{
    if (t != DNS_T_CNAME)
        return strdup(data);
    char norm[FIX_NAME_MAX];
    if (norm_name(data, norm) != 0)
        return NULL;
    norm[strlen(norm) - 1] = '\0';
    return strdup(norm);
}

/* Converts the stored texts of e into the answer's records. */
static int fill_records(const fix_entry *e, dns_answer *out)
{
    size_t n = e->ndata < DNS_MAX_RECORDS ? e->ndata : DNS_MAX_RECORDS;
    if (dns_answer_alloc(out, e->type, n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int rc;
        if (e->type == DNS_T_TLSA) {
            rc = tlsa_parse_text(e->data[i], &out->tlsa[i]);
        } else if (e->type == DNS_T_MX) {
            rc = parse_mx(e->data[i], &out->pref[i], &out->text[i]);
        } else {
            out->text[i] = record_text(e->type, e->data[i]);
            rc = out->text[i] ? 0 : -1;
        }
        if (rc != 0)
            return -1;
        out->n = i + 1;
    }
    return 0;
}

static const char *status_text(dns_status st)
{
    switch (st) {
    case DNS_OK:
        return "ok";
    case DNS_NXDOMAIN:
        return "NXDOMAIN";
    case DNS_NODATA:
        return "no records";
    case DNS_SERVFAIL:
        return "SERVFAIL";
    case DNS_TEMPFAIL:
        return "timeout";
    case DNS_ERROR:
        return "REFUSED";
    }
    return "error";
}

static void set_status(dns_answer *out, dns_status st, dns_sec sec)
{
    out->status = st;
    out->sec = sec;
    if (st != DNS_OK)
        snprintf(out->why, sizeof out->why, "fixture %s", status_text(st));
}

/* Answers (name, t) from the table; follows CNAMEs for other types. */
static int answer(fixture *f, const char *name, dns_type t, dns_answer *out)
{
    char cur[FIX_NAME_MAX];
    dns_sec chain = DNS_SECURE;
    if (norm_name(name, cur) != 0) {
        set_status(out, DNS_ERROR, DNS_INSECURE);
        return 0;
    }
    for (int hop = 0; hop <= FIX_MAX_CHASE; hop++) {
        const fix_entry *e = find(f, cur, t);
        if (e && has_answer(e)) {
            set_status(out, e->failed ? e->status : DNS_OK, sec_min(chain, e->sec));
            out->ede = e->failed ? e->ede : -1;
            if (out->ede >= 0)
                snprintf(out->ede_text, sizeof out->ede_text, "fixture %s", dns_ede_name(out->ede));
            return fill_records(e, out);
        }
        const fix_entry *c = t == DNS_T_CNAME ? NULL : find(f, cur, DNS_T_CNAME);
        if (c && c->ndata > 0 && !c->failed) {
            chain = sec_min(chain, c->sec);
            if (norm_name(c->data[0], cur) != 0)
                break;
            continue;
        }
        dns_sec sec;
        bool exists = name_exists(f, cur, &sec);
        set_status(out, exists ? DNS_NODATA : DNS_NXDOMAIN, sec_min(chain, sec));
        return 0;
    }
    set_status(out, DNS_SERVFAIL, DNS_INSECURE); /* CNAME chain too long */
    return 0;
}

static int fix_lookup(dns_resolver *r, const char *name, dns_type t, dns_answer *out)
{
    fixture *f = r->impl;
    fix_entry *e = entry(f, name, t);
    if (!e)
        return -1;
    e->lookups++;
    if (answer(f, name, t, out) != 0) {
        dns_answer_free(out);
        return -1;
    }
    return 0;
}

static void fix_free(dns_resolver *r)
{
    fixture *f = r->impl;
    for (size_t i = 0; i < f->n; i++) {
        for (size_t j = 0; j < f->e[i].ndata; j++)
            free(f->e[i].data[j]);
        free(f->e[i].data);
    }
    free(f->e);
    free(f);
    free(r);
}

static const dns_ops fixture_ops = {fix_lookup, fix_free};

dns_resolver *dns_fixture_new(void)
{
    dns_resolver *r = calloc(1, sizeof *r);
    fixture *f = calloc(1, sizeof *f);
    if (!r || !f) {
        free(r);
        free(f);
        return NULL;
    }
    r->ops = &fixture_ops;
    r->mode = DNSSEC_TRUST_AD;
    r->impl = f;
    return r;
}

int dns_fixture_add(dns_resolver *r, const char *name, dns_type t, dns_sec sec, const char *data)
{
    fix_entry *e = entry(r->impl, name, t);
    if (!e || !data || e->ndata >= DNS_MAX_RECORDS)
        return -1;
    char **nd = realloc(e->data, (e->ndata + 1) * sizeof *nd);
    if (!nd)
        return -1;
    e->data = nd;
    if (!(e->data[e->ndata] = strdup(data)))
        return -1;
    /* The first add sets the status, later ones can only weaken it. */
    e->sec = e->ndata == 0 && !e->failed ? sec : sec_min(e->sec, sec);
    e->ndata++;
    return 0;
}

int dns_fixture_fail(dns_resolver *r, const char *name, dns_type t, dns_status st, dns_sec sec,
                     int ede)
{
    fix_entry *e = entry(r->impl, name, t);
    if (!e)
        return -1;
    e->failed = true;
    e->status = st;
    e->sec = sec;
    e->ede = ede;
    return 0;
}

size_t dns_fixture_lookups(const dns_resolver *r, const char *name, dns_type t)
{
    char norm[FIX_NAME_MAX];
    if (norm_name(name, norm) != 0)
        return 0;
    const fix_entry *e = find(r->impl, norm, t);
    return e ? e->lookups : 0;
}
