/* MTA-STS record lookup (RFC 8461 3.1; spec 20.1-20.2) and the HTTPS policy
 * fetch (RFC 8461 3.3; spec 20.5) with libcurl.
 *
 * The policy host is resolved with our own resolver and handed to curl with
 * CURLOPT_RESOLVE, and proxies are disabled, so curl never asks the system
 * resolver: every lookup goes to the resolver the user configured.
 *
 * We never call curl_global_init(): the library keeps no global state and
 * needs no global init, and curl_global_init() is not thread-safe on every
 * libcurl build. curl_easy_init() initialises libcurl lazily; an application
 * that starts threads should call curl_global_init() itself first. */
#include "mtasts.h"

#include <curl/curl.h>
#include <openssl/x509_vfy.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls.h"

/* RFC 8461 3.3: "a minimum of one minute" is allowed; we take exactly that. */
#define FETCH_TIMEOUT_MS 60000
/* Addresses of the policy host handed to curl, per family. */
#define FETCH_MAX_ADDRS 8

static void set_msg(mtasts_result *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->msg, sizeof out->msg, fmt, ap);
    va_end(ap);
}

void mtasts_result_free(mtasts_result *r)
{
    if (!r)
        return;
    mtasts_policy_free(&r->policy);
    free(r->policy_text);
    r->policy_text = NULL;
}

/* prefix + domain (ASCII, one trailing dot allowed) + suffix. The callers
 * pass the A-label form (spec 20.5, Q24): anything else is refused. */
static int host_name(const char *prefix, const char *domain, const char *suffix, char *buf,
                     size_t len)
{
    size_t n = strlen(domain);
    if (n > 0 && domain[n - 1] == '.')
        n--;
    if (n == 0 || n > 253)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)domain[i];
        if (ch <= ' ' || ch >= 0x7f || ch == '/' || ch == ':' || ch == '@' || ch == '?' ||
            ch == '#')
            return -1;
    }
    int w = snprintf(buf, len, "%s%.*s%s", prefix, (int)n, domain, suffix);
    return w < 0 || (size_t)w >= len ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* The TXT record (spec 20.1-20.2). */

static void record_pick(const dns_answer *a, mtasts_result *out)
{
    for (size_t i = 0; i < a->n; i++) {
        mtasts_record rec;
        char err[200];
        int rc = mtasts_record_parse(a->text[i], &rec, err, sizeof err);
        if (rc == 1)
            continue; /* RFC 8461 3.1: not an MTA-STS string */
        if (rc < 0) {
            out->err = MTASTS_ERR_RECORD_SYNTAX;
            out->have_record = false;
            set_msg(out, "mtasts: record syntax error: %s", err);
            return;
        }
        if (out->have_record) {
            out->err = MTASTS_ERR_MULTIPLE;
            out->have_record = false;
            set_msg(out, "mtasts: multiple mta-sts records");
            return;
        }
        out->record = rec;
        out->have_record = true;
    }
    if (!out->have_record) {
        out->err = MTASTS_ERR_NO_RECORD;
        set_msg(out, "mtasts: no mta-sts dns txt record");
    }
}

void mtasts_lookup_record(dns_resolver *r, const char *domain, mtasts_result *out)
{
    char name[300];
    dns_answer a;
    memset(out, 0, sizeof *out);
    out->ede = -1;
    if (host_name("_mta-sts.", domain, ".", name, sizeof name) != 0) {
        out->err = MTASTS_ERR_DNS;
        set_msg(out, "mtasts: dns lookup: invalid domain");
        return;
    }
    if (dns_lookup(r, name, DNS_T_TXT, &a) != 0) {
        out->err = MTASTS_ERR_DNS;
        set_msg(out, "mtasts: dns lookup: out of memory");
        return;
    }
    if (a.sec == DNS_BOGUS) {
        /* A bogus answer, even a bogus denial, is a lookup failure (22.6). */
        out->err = MTASTS_ERR_DNS;
        out->ede = a.ede >= 0 ? a.ede : 6;
        set_msg(out, "mtasts: dns lookup: %s", a.why[0] ? a.why : "dnssec bogus");
    } else if (dns_not_found(&a)) {
        out->err = MTASTS_ERR_NO_RECORD;
        set_msg(out, "mtasts: no mta-sts dns txt record");
    } else if (a.status != DNS_OK) {
        out->err = MTASTS_ERR_DNS;
        out->ede = a.ede; /* kept for the TLSRPT reason (20.10) */
        set_msg(out, "mtasts: dns lookup: %s", a.why);
    } else {
        record_pick(&a, out);
    }
    dns_answer_free(&a);
}

/* ------------------------------------------------------------------ */
/* Resolving the policy host with our resolver. */

typedef enum { RESOLVE_OK, RESOLVE_NOT_FOUND, RESOLVE_FAIL } resolve_status;

/* Appends the addresses of one family to list ("a,b,[v6]"). */
static void resolve_family(dns_resolver *r, const char *name, dns_type t, char *list,
                           size_t len, int *nfound, int *nfail, char *why, size_t whylen)
{
    dns_answer a;
    if (dns_lookup(r, name, t, &a) != 0) {
        (*nfail)++;
        snprintf(why, whylen, "out of memory");
        return;
    }
    if (a.status == DNS_OK && a.sec != DNS_BOGUS) {
        for (size_t i = 0; i < a.n && i < FETCH_MAX_ADDRS; i++) {
            size_t used = strlen(list);
            snprintf(list + used, len - used, t == DNS_T_AAAA ? "%s[%s]" : "%s%s",
                     used ? "," : "", a.text[i]);
            (*nfound)++;
        }
    } else if (a.sec == DNS_BOGUS || !dns_not_found(&a)) {
        (*nfail)++;
        snprintf(why, whylen, "%s", a.why[0] ? a.why : "dnssec bogus");
    }
    dns_answer_free(&a);
}

static resolve_status resolve_host(dns_resolver *r, const char *host, char *list, size_t len,
                                   char *why, size_t whylen)
{
    char name[304];
    int nfound = 0, nfail = 0;
    snprintf(name, sizeof name, "%s.", host);
    list[0] = '\0';
    resolve_family(r, name, DNS_T_A, list, len, &nfound, &nfail, why, whylen);
    resolve_family(r, name, DNS_T_AAAA, list, len, &nfound, &nfail, why, whylen);
    if (nfound > 0)
        return RESOLVE_OK;
    return nfail > 0 ? RESOLVE_FAIL : RESOLVE_NOT_FOUND;
}

/* ------------------------------------------------------------------ */
/* The HTTPS fetch (spec 20.5). */

typedef struct body {
    CURL *curl;
    char *buf;
    size_t len;
    bool oversize;
} body;

/* Keeps at most MTASTS_MAX_POLICY bytes of a 200 response (RFC 8461 3.3:
 * senders may limit the policy size); other bodies are read and dropped. */
static size_t body_write(char *data, size_t size, size_t nmemb, void *ud)
{
    body *b = ud;
    size_t n = size * nmemb;
    long code = 0;
    curl_easy_getinfo(b->curl, CURLINFO_RESPONSE_CODE, &code);
    if (code != 200)
        return n;
    if (n > MTASTS_MAX_POLICY - b->len) {
        b->oversize = true;
        return 0; /* aborts the transfer */
    }
    if (!b->buf) {
        b->buf = malloc(MTASTS_MAX_POLICY + 1);
        if (!b->buf)
            return 0;
    }
    memcpy(b->buf + b->len, data, n);
    b->len += n;
    return n;
}

static int fetch_setup(CURL *h, const char *url, struct curl_slist *resolve,
                       const mtasts_fetch_opts *o, body *b, char *errbuf)
{
    long timeout = o && o->timeout_ms > 0 ? o->timeout_ms : FETCH_TIMEOUT_MS;
    CURLcode rc = CURLE_OK;
#define SETOPT(opt, val)                                                                     \
    do {                                                                                     \
        if (rc == CURLE_OK)                                                                  \
            rc = curl_easy_setopt(h, opt, val);                                              \
    } while (0)
    SETOPT(CURLOPT_URL, url);
    SETOPT(CURLOPT_PROTOCOLS_STR, "https");
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);  /* RFC 8461 3.3: no redirects */
    SETOPT(CURLOPT_RESOLVE, resolve);    /* our resolver's addresses only */
    SETOPT(CURLOPT_PROXY, "");           /* no proxy from the environment */
    SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);  /* RFC 8461 3.3: PKIX, name check */
    SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
    SETOPT(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    SETOPT(CURLOPT_TIMEOUT_MS, timeout);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_FORBID_REUSE, 1L);
    SETOPT(CURLOPT_USERAGENT, "smtpc");
    SETOPT(CURLOPT_ERRORBUFFER, errbuf);
    SETOPT(CURLOPT_WRITEFUNCTION, body_write);
    SETOPT(CURLOPT_WRITEDATA, b);
    if (o && o->ca_file) {
        /* --ca-file replaces the system roots, it does not add to them. */
        SETOPT(CURLOPT_CAINFO, o->ca_file);
        SETOPT(CURLOPT_CAPATH, (char *)NULL);
    }
#undef SETOPT
    return rc == CURLE_OK ? 0 : -1;
}

/* A failed certificate check: the 23.6 result type and reason. A chain
 * failure leaves OpenSSL's X509_V_ERR_* in CURLINFO_SSL_VERIFYRESULT. curl
 * checks the host name itself, after a good chain and before it records the
 * result, which then keeps its initial value (1, "not verified"; X509_V_OK
 * on other builds): such a failure is a name mismatch. */
static void fetch_webpki(CURL *h, mtasts_result *out)
{
    long verr = X509_V_OK;
    curl_easy_getinfo(h, CURLINFO_SSL_VERIFYRESULT, &verr);
    if (verr == X509_V_OK || verr == X509_V_ERR_UNSPECIFIED)
        verr = X509_V_ERR_HOSTNAME_MISMATCH;
    out->webpki_error = true;
    tls_verify_error_to_tlsrpt(verr, &out->tls_type, &out->tls_reason);
}

static void fetch_body(body *b, mtasts_result *out)
{
    char err[200];
    if (!b->buf) {
        b->buf = malloc(1);
        if (!b->buf) {
            out->err = MTASTS_ERR_FETCH;
            set_msg(out, "mtasts: cannot fetch policy: out of memory");
            return;
        }
    }
    b->buf[b->len] = '\0';
    out->policy_text = b->buf; /* kept on a syntax error too (20.5) */
    b->buf = NULL;
    if (mtasts_policy_parse(out->policy_text, b->len, &out->policy, err, sizeof err) != 0) {
        out->err = MTASTS_ERR_POLICY_SYNTAX;
        set_msg(out, "mtasts: policy syntax error: %s", err);
    }
}

static void fetch_classify(CURL *h, CURLcode rc, body *b, const char *errbuf,
                           mtasts_result *out)
{
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    if (b->oversize) {
        out->err = MTASTS_ERR_POLICY_SYNTAX;
        set_msg(out, "mtasts: policy syntax error: reading policy: input exceeds maximum size");
    } else if (rc != CURLE_OK) {
        out->err = MTASTS_ERR_FETCH;
        if (rc == CURLE_PEER_FAILED_VERIFICATION)
            fetch_webpki(h, out);
        set_msg(out, "mtasts: cannot fetch policy: http get: %s",
                errbuf[0] ? errbuf : curl_easy_strerror(rc));
    } else if (code == 404) {
        out->err = MTASTS_ERR_NO_POLICY; /* RFC 8461 3.3 */
        set_msg(out, "mtasts: no policy served");
    } else if (code != 200) {
        /* 3xx included: redirects are not followed (RFC 8461 3.3). */
        out->err = MTASTS_ERR_FETCH;
        set_msg(out, "mtasts: cannot fetch policy: http status %ld while status 200 is required",
                code);
    } else {
        fetch_body(b, out);
    }
}

/* Overwrites out like mtasts_lookup_record does, except for the record a
 * lookup may have put there (20.9 keeps it beside fetch errors). So out must
 * be zeroed or hold a lookup's result, and a previous fetch's allocations are
 * the caller's to free first. */
static void fetch_reset(mtasts_result *out)
{
    mtasts_record rec = out->record;
    bool have = out->have_record;
    memset(out, 0, sizeof *out);
    out->ede = -1;
    out->record = rec;
    out->have_record = have;
}

static void fetch_run(const char *host, const char *addrs, const mtasts_fetch_opts *o,
                      mtasts_result *out)
{
    uint16_t port = o && o->https_port ? o->https_port : 443;
    char url[400], entry[1200], errbuf[CURL_ERROR_SIZE] = "";
    snprintf(url, sizeof url, "https://%s:%u/.well-known/mta-sts.txt", host, (unsigned)port);
    snprintf(entry, sizeof entry, "%s:%u:%s", host, (unsigned)port, addrs);
    body b = {0};
    struct curl_slist *resolve = curl_slist_append(NULL, entry);
    b.curl = curl_easy_init(); /* initialises libcurl lazily, see the top */
    if (!resolve || !b.curl || fetch_setup(b.curl, url, resolve, o, &b, errbuf) != 0) {
        out->err = MTASTS_ERR_FETCH;
        set_msg(out, "mtasts: cannot fetch policy: cannot set up the http client");
    } else {
        CURLcode rc = curl_easy_perform(b.curl);
        fetch_classify(b.curl, rc, &b, errbuf, out);
    }
    free(b.buf);
    if (b.curl)
        curl_easy_cleanup(b.curl);
    curl_slist_free_all(resolve);
}

void mtasts_fetch_policy(dns_resolver *r, const char *domain, const mtasts_fetch_opts *o,
                         mtasts_result *out)
{
    char host[300], addrs[FETCH_MAX_ADDRS * 2 * 48], why[160] = "";
    fetch_reset(out);
    if (o && o->fetch) {
        o->fetch(o->fetch_ud, domain, out); /* tests: no HTTPS */
        return;
    }
    /* Q24: the URL carries the A-label host. */
    if (host_name("mta-sts.", domain, "", host, sizeof host) != 0) {
        out->err = MTASTS_ERR_FETCH;
        set_msg(out, "mtasts: cannot fetch policy: invalid domain");
        return;
    }
    switch (resolve_host(r, host, addrs, sizeof addrs, why, sizeof why)) {
    case RESOLVE_NOT_FOUND:
        out->err = MTASTS_ERR_NO_POLICY; /* spec 20.5: the host does not exist */
        set_msg(out, "mtasts: no policy served");
        return;
    case RESOLVE_FAIL:
        out->err = MTASTS_ERR_FETCH;
        set_msg(out, "mtasts: cannot fetch policy: dns lookup of %s: %s", host, why);
        return;
    case RESOLVE_OK:
        break;
    }
    fetch_run(host, addrs, o, out);
}

void mtasts_get(dns_resolver *r, const char *domain, const mtasts_fetch_opts *o,
                mtasts_result *out)
{
    mtasts_lookup_record(r, domain, out);
    if (out->err != MTASTS_OK)
        return; /* 20.9: lookup errors come without a record */
    mtasts_fetch_policy(r, domain, o, out);
}
