/* MTA-STS (RFC 8461, spec 20-21): record and policy parsers (pure), MX
 * matching, the HTTPS policy fetch (libcurl) and the SQLite policy cache. */
#ifndef SMTPC_MTASTS_H
#define SMTPC_MTASTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns.h"
#include "tlsrpt.h"

#define MTASTS_MAX_POLICY 65536
#define MTASTS_MAX_MX 64

/* ---- pure parsers ---- */

typedef struct mtasts_record {
    char id[33];
    char raw[512];
} mtasts_record;

/* Parses one TXT string (20.3). Returns 0 for a valid MTA-STS record, 1 when
 * the string is not an MTA-STS record (no "v=STSv1" start), -1 on a syntax
 * error (err filled). */
int mtasts_record_parse(const char *txt, mtasts_record *out, char *err, size_t errlen);

typedef enum { MTASTS_MODE_NONE = 0, MTASTS_MODE_TESTING, MTASTS_MODE_ENFORCE } mtasts_mode;

typedef struct mtasts_policy {
    mtasts_mode mode;
    int64_t max_age;
    char *mx[MTASTS_MAX_MX];  /* patterns as written ("*.example.com"), ASCII */
    size_t nmx;
} mtasts_policy;

/* Parses a policy body (20.6). Returns 0, or -1 with err filled. */
int mtasts_policy_parse(const char *text, size_t len, mtasts_policy *out, char *err, size_t errlen);
void mtasts_policy_free(mtasts_policy *p);
int mtasts_policy_copy(mtasts_policy *dst, const mtasts_policy *src);
/* 20.8: host (ASCII, lowercase) matches one of the policy's MX patterns. */
bool mtasts_mx_match(const mtasts_policy *p, const char *host);
const char *mtasts_mode_name(mtasts_mode m); /* "none" "testing" "enforce" */

/* ---- lookup, fetch, cache ---- */

typedef enum {
    MTASTS_OK = 0,
    MTASTS_ERR_NO_RECORD,       /* "no-mta-sts-dns-txt-record" */
    MTASTS_ERR_MULTIPLE,        /* "multiple-mta-sts-records" */
    MTASTS_ERR_DNS,             /* "dns-lookup" */
    MTASTS_ERR_RECORD_SYNTAX,   /* "record-syntax-error" */
    MTASTS_ERR_NO_POLICY,       /* "no-policy-served" */
    MTASTS_ERR_FETCH,           /* "cannot-fetch-policy" */
    MTASTS_ERR_POLICY_SYNTAX,   /* "policy-syntax-error" */
} mtasts_err;

/* TLSRPT reason string of an error (20.10), "" for OK. */
const char *mtasts_err_reason(mtasts_err e);

typedef struct mtasts_result mtasts_result;

typedef struct mtasts_fetch_opts {
    const char *ca_file;   /* roots for the HTTPS server; NULL: system store */
    int timeout_ms;        /* whole fetch */
    uint16_t https_port;   /* 0: 443 (tests move it) */
    /* Tests replace the HTTPS fetch (mtasts_fetch_policy, so also mtasts_get and the
     * cache) with this (NULL: the real one). */
    void (*fetch)(void *ud, const char *domain, mtasts_result *out);
    void *fetch_ud;
} mtasts_fetch_opts;

struct mtasts_result {
    mtasts_err err;
    int ede;                /* EDNS error of a failing DNS lookup, -1 none */
    bool webpki_error;      /* the fetch failed certificate verification */
    const char *tls_type, *tls_reason; /* when webpki_error: 23.6 mapping */
    char msg[256];
    mtasts_record record;   /* valid when a record was found */
    bool have_record;
    mtasts_policy policy;   /* valid when err == OK */
    char *policy_text;      /* raw body (malloc'ed), also on POLICY_SYNTAX */
};

void mtasts_result_free(mtasts_result *r);

/* 20.1-20.2: the TXT record at _mta-sts.DOMAIN. */
void mtasts_lookup_record(dns_resolver *r, const char *domain, mtasts_result *out);
/* 20.5: GET https://mta-sts.DOMAIN/.well-known/mta-sts.txt, with the host
 * name resolved through r (never the system resolver), PKIX-verified, no
 * redirects, at most MTASTS_MAX_POLICY bytes. */
void mtasts_fetch_policy(dns_resolver *r, const char *domain, const mtasts_fetch_opts *o,
                         mtasts_result *out);
/* 20.9: record then policy. */
void mtasts_get(dns_resolver *r, const char *domain, const mtasts_fetch_opts *o,
                mtasts_result *out);

/* ---- cache (spec 21) ---- */

typedef struct mtasts_cache mtasts_cache;

/* Opens (creating) DIR/mtasts.sqlite; safe for concurrent processes (WAL,
 * busy timeout, transactions). Returns NULL with err filled. */
mtasts_cache *mtasts_cache_open(const char *dir, char *err, size_t errlen);
void mtasts_cache_close(mtasts_cache *c);

typedef struct mtasts_outcome {
    bool have_policy;       /* policy applies (mode may be none) */
    mtasts_policy policy;
    char policy_id[33];
    bool fresh;
    bool failed;            /* a transient error: the caller must defer (24.4) */
    char error_reason[160]; /* TLSRPT reason of what went wrong, "" when nothing */
    smtpc_tlsrpt *result;   /* recipient-domain result, per 21.4 (policy type/domain set) */
    char internal_error[160]; /* cache database or bad domain, "" when none: a failed
                               * read sets failed too; a failed store changes nothing else */
} mtasts_outcome;

/* 21.4, at time now (seconds). cache may be NULL (probe: always fetch fresh,
 * never store). The result object is allocated; free with mtasts_outcome_free.
 * Returns 0 (see out->failed), -1 only when out of memory. */
int mtasts_cache_get(mtasts_cache *c, dns_resolver *r, const char *domain,
                     const mtasts_fetch_opts *o, int64_t now, mtasts_outcome *out);
void mtasts_outcome_free(mtasts_outcome *o);

/* ---- TLSRPT record (23.10-23.11) ---- */

#define TLSRPT_MAX_RUA 16

typedef struct tlsrpt_record {
    char *rua[TLSRPT_MAX_RUA];
    size_t nrua;
    char raw[512];
} tlsrpt_record;

/* Returns 0 valid, 1 not a TLSRPT record, -1 syntax error. */
int tlsrpt_record_parse(const char *txt, tlsrpt_record *out, char *err, size_t errlen);
void tlsrpt_record_free(tlsrpt_record *r);
/* Looks up _smtp._tls.DOMAIN. Returns 0 found, 1 none, -1 error (err filled). */
int tlsrpt_record_lookup(dns_resolver *r, const char *domain, tlsrpt_record *out, char *err,
                         size_t errlen);

#endif
