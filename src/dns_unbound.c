/* Validate mode: DNSSEC validation in process with libunbound, for hosts
 * without a validating resolver of their own. libunbound forwards to the
 * configured resolvers (never recursing from the root by itself: no lookup
 * goes to a resolver the user did not configure), asks them for the DNSSEC
 * records (DO bit) and validates from the trust anchor file.
 *
 * A resolver object serves one thread at a time: the wait loop of a lookup
 * processes the context's results itself. */
#include "dns_backend.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unbound.h>

#define DEFAULT_TRUST_ANCHOR "/usr/share/dns/root.key"

typedef struct ubr {
    struct ub_ctx *ctx;
    int timeout_ms;
} ubr;

typedef struct pending_q {
    bool done;
    int err;
    struct ub_result *res;
} pending_q;

/* RFC 8914 code for libunbound's why_bogus text; the phrases are those of
 * unbound's validator. Most specific first. */
int dns_ede_from_why(const char *why)
{
    static const struct {
        const char *phrase;
        int ede;
    } map[] = {
        {"signature expired", 7},
        {"expired", 7},
        {"before inception", 8},
        {"not yet valid", 8},
        {"no signatures", 10},
        {"no rrsig", 10},
        {"missing rrsig", 10},
        {"dnskey missing", 9},
        {"no dnskey", 9},
        {"missing dnskey", 9},
        {"no valid dnskey", 9},
        {"unsupported algorithm", 1},
        {"unsupported ds digest", 2},
        {"no zone key bit", 11},
        {"nsec missing", 12},
        {"no nsec", 12},
    };
    for (size_t i = 0; why && i < sizeof map / sizeof map[0]; i++)
        if (strcasestr(why, map[i].phrase))
            return map[i].ede;
    return 6; /* dnssec-bogus */
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_result(void *arg, int err, struct ub_result *res)
{
    pending_q *w = arg;
    w->done = true;
    w->err = err;
    w->res = res;
}

static void ub_error(dns_answer *out, int err)
{
    /* Configuration problems (a bad trust anchor file) show at the first
     * lookup: libunbound reads its configuration then. */
    out->status = (err == UB_INITFAIL || err == UB_SYNTAX || err == UB_READFILE) ? DNS_ERROR
                  : err == UB_SERVFAIL                                          ? DNS_SERVFAIL
                                                                                 : DNS_TEMPFAIL;
    out->sec = DNS_INSECURE;
    snprintf(out->why, sizeof out->why, "libunbound: %s", ub_strerror(err));
}

static void bogus(dns_answer *out, const char *why)
{
    out->status = DNS_SERVFAIL; /* what a validating resolver would answer */
    out->sec = DNS_BOGUS;
    out->ede = dns_ede_from_why(why);
    snprintf(out->why, sizeof out->why, "DNSSEC validation failed: %s", why ? why : "bogus");
    snprintf(out->ede_text, sizeof out->ede_text, "%s", why ? why : "");
}

static int from_result(const struct ub_result *res, dns_type t, dns_answer *out)
{
    if (res->bogus) {
        bogus(out, res->why_bogus);
        return 0;
    }
    if (!res->answer_packet || res->answer_len <= 0) {
        out->status = DNS_ERROR;
        snprintf(out->why, sizeof out->why, "libunbound gave no answer packet");
        return 0;
    }
    if (dns_answer_from_wire(res->answer_packet, (size_t)res->answer_len, t, out) < 0)
        return -1;
    /* The AD bit of the packet is not what counts here: libunbound's own
     * verdict is. Authenticated denial (NXDOMAIN, NODATA) is secure too. */
    bool answered = out->status == DNS_OK || dns_not_found(out);
    out->sec = answered && res->secure ? DNS_SECURE : DNS_INSECURE;
    return 0;
}

static int wait_result(ubr *u, pending_q *w)
{
    int64_t deadline = now_ms() + u->timeout_ms;
    while (!w->done) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return 0; /* the caller cancels */
        struct pollfd p = {.fd = ub_fd(u->ctx), .events = POLLIN};
        int rc = poll(&p, 1, (int)left);
        if (rc < 0 && errno != EINTR)
            return -1;
        if (rc > 0 && ub_process(u->ctx) != 0)
            return -1;
    }
    return 0;
}

static int ubr_lookup(dns_resolver *r, const char *name, dns_type t, dns_answer *out)
{
    ubr *u = r->impl;
    pending_q w = {0};
    int id = 0;
    int err = ub_resolve_async(u->ctx, name, (int)t, 1 /* IN */, &w, on_result, &id);
    if (err != 0) {
        ub_error(out, err);
        return 0;
    }
    if (wait_result(u, &w) < 0 || !w.done) {
        /* libunbound has no per-query timeout: the deadline is ours. */
        if (!w.done)
            ub_cancel(u->ctx, id);
        if (w.res)
            ub_resolve_free(w.res);
        out->status = DNS_TEMPFAIL;
        snprintf(out->why, sizeof out->why, "DNS lookup timed out");
        return 0;
    }
    int rc = 0;
    if (w.err != 0)
        ub_error(out, w.err);
    else
        rc = from_result(w.res, t, out);
    if (w.res)
        ub_resolve_free(w.res);
    return rc;
}

static void ubr_free(dns_resolver *r)
{
    ubr *u = r->impl;
    if (u)
        ub_ctx_delete(u->ctx);
    free(u);
    free(r);
}

static const dns_ops ubr_ops = {.lookup = ubr_lookup, .free = ubr_free};

static int set_option(struct ub_ctx *ctx, const char *opt, const char *val, char *err,
                      size_t errlen)
{
    int rc = ub_ctx_set_option(ctx, opt, val);
    if (rc != 0)
        snprintf(err, errlen, "libunbound option %s %s: %s", opt, val, ub_strerror(rc));
    return rc == 0 ? 0 : -1;
}

/* BIND's trusted-keys / trust-anchors clauses need ub_ctx_trustedkeys; DS and
 * DNSKEY records in zone-file format (root.key, root.ds, an RFC 5011 state
 * file) go to ub_ctx_add_ta_file. ub_ctx_add_ta_autr is not used: it would
 * write to the file, which is often read-only (/usr/share/dns/root.key). */
static int add_trust_anchor(struct ub_ctx *ctx, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(err, errlen, "cannot read trust anchor %s: %s", path, strerror(errno));
        return -1;
    }
    char line[1024];
    bool bind = false;
    for (int i = 0; i < 10000 && !bind && fgets(line, sizeof line, f); i++)
        bind = strstr(line, "trusted-keys") || strstr(line, "trust-anchors");
    fclose(f);
    int rc = bind ? ub_ctx_trustedkeys(ctx, path) : ub_ctx_add_ta_file(ctx, path);
    if (rc != 0) {
        snprintf(err, errlen, "trust anchor %s: %s", path, ub_strerror(rc));
        return -1;
    }
    return 0;
}

static int set_forwarders(struct ub_ctx *ctx, const dns_config *cfg, char *err, size_t errlen)
{
    dns_server s[DNS_MAX_SERVERS];
    int n = dns_config_servers(cfg, s, DNS_MAX_SERVERS, err, errlen);
    for (int i = 0; i < n; i++) {
        char fwd[sizeof s[i].addr + 8];
        snprintf(fwd, sizeof fwd, "%.47s@%u", s[i].addr, (unsigned)s[i].port);
        int rc = ub_ctx_set_fwd(ctx, fwd);
        if (rc != 0) {
            snprintf(err, errlen, "libunbound forwarder %s: %s", fwd, ub_strerror(rc));
            return -1;
        }
    }
    return n < 0 ? -1 : 0;
}

static int configure(struct ub_ctx *ctx, const dns_config *cfg, char *err, size_t errlen)
{
    /* The library never prints: libunbound logs to stderr by default. */
    if (ub_ctx_debugout(ctx, NULL) != 0 || ub_ctx_async(ctx, 1) != 0) {
        snprintf(err, errlen, "libunbound: cannot configure the context");
        return -1;
    }
    /* A resolver on loopback (the usual case, and the test lab) must be
     * usable, and unbound's built-in local zone for test. (RFC 6761) must not
     * hide the names served upstream. */
    if (set_option(ctx, "do-not-query-localhost:", "no", err, errlen) < 0 ||
        set_option(ctx, "local-zone:", "test. transparent", err, errlen) < 0)
        return -1;
    if (set_forwarders(ctx, cfg, err, errlen) < 0)
        return -1;
    return add_trust_anchor(ctx, cfg->trust_anchor ? cfg->trust_anchor : DEFAULT_TRUST_ANCHOR,
                            err, errlen);
}

dns_resolver *dns_unbound_new(const dns_config *cfg, char *err, size_t errlen)
{
    dns_resolver *r = calloc(1, sizeof *r);
    ubr *u = calloc(1, sizeof *u);
    if (!r || !u || !(u->ctx = ub_ctx_create())) {
        snprintf(err, errlen, "out of memory creating the libunbound context");
        free(u);
        free(r);
        return NULL;
    }
    r->ops = &ubr_ops;
    r->mode = cfg->mode;
    r->impl = u;
    u->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : DNS_DEFAULT_TIMEOUT_MS;
    if (configure(u->ctx, cfg, err, errlen) < 0) {
        ubr_free(r);
        return NULL;
    }
    return r;
}
