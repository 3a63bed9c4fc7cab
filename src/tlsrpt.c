/* TLS reporting results (RFC 8460 4.3): success/failure counters and the
 * failure details of one policy, merged as spec 6.3 says. */
#include "tlsrpt.h"

#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

/* A detail field longer than this is cut: the values come from our own
 * tables and from peer names, and a report never needs more. */
#define TLSRPT_FIELD_MAX 1024

/* Adds b to *a, saturating at INT64_MAX and clamping at 0 (spec 6.3). */
static void count_add(int64_t *a, int64_t b)
{
    if (b > 0 && *a > INT64_MAX - b)
        *a = INT64_MAX;
    else
        *a += b;
    if (*a < 0)
        *a = 0;
}

static bool field_eq(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* The key of a detail: every field except the session count (spec 6.3). */
static bool detail_same(const tlsrpt_detail *d, const tlsrpt_detail *k)
{
    return field_eq(d->result_type, k->result_type) &&
           field_eq(d->sending_mta_ip, k->sending_mta_ip) &&
           field_eq(d->receiving_mx_hostname, k->receiving_mx_hostname) &&
           field_eq(d->receiving_mx_helo, k->receiving_mx_helo) &&
           field_eq(d->receiving_ip, k->receiving_ip) &&
           field_eq(d->failure_reason_code, k->failure_reason_code);
}

static char *field_dup(const char *s)
{
    return strndup(s ? s : "", TLSRPT_FIELD_MAX);
}

static void detail_free(tlsrpt_detail *d)
{
    free(d->result_type);
    free(d->sending_mta_ip);
    free(d->receiving_mx_hostname);
    free(d->receiving_mx_helo);
    free(d->receiving_ip);
    free(d->failure_reason_code);
    memset(d, 0, sizeof(*d));
}

/* Copies the fields of k into d. Returns -1 on nomem (d then freed). */
static int detail_copy(tlsrpt_detail *d, const tlsrpt_detail *k)
{
    d->result_type = field_dup(k->result_type);
    d->sending_mta_ip = field_dup(k->sending_mta_ip);
    d->receiving_mx_hostname = field_dup(k->receiving_mx_hostname);
    d->receiving_mx_helo = field_dup(k->receiving_mx_helo);
    d->receiving_ip = field_dup(k->receiving_ip);
    d->failure_reason_code = field_dup(k->failure_reason_code);
    d->failed_sessions = k->failed_sessions;
    if (!d->result_type || !d->sending_mta_ip || !d->receiving_mx_hostname ||
        !d->receiving_mx_helo || !d->receiving_ip || !d->failure_reason_code) {
        detail_free(d);
        return -1;
    }
    return 0;
}

/* Merges k (with its session count) into r's details, or appends a copy. */
static int detail_merge(smtpc_tlsrpt *r, const tlsrpt_detail *k)
{
    for (size_t i = 0; i < r->ndetails; i++) {
        if (detail_same(&r->details[i], k)) {
            count_add(&r->details[i].failed_sessions, k->failed_sessions);
            return 0;
        }
    }
    if (r->ndetails >= TLSRPT_MAX_DETAILS)
        return 0; /* bounded: further distinct details are dropped */
    if (r->ndetails == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 4;
        if (ncap > TLSRPT_MAX_DETAILS)
            ncap = TLSRPT_MAX_DETAILS;
        tlsrpt_detail *nd = realloc(r->details, ncap * sizeof(*nd));
        if (!nd)
            return -1;
        r->details = nd;
        r->cap = ncap;
    }
    if (detail_copy(&r->details[r->ndetails], k) != 0)
        return -1;
    r->ndetails++;
    return 0;
}

int tlsrpt_add(smtpc_tlsrpt *r, int64_t success, int64_t failure, const tlsrpt_peer *peer,
               const char *type, const char *reason)
{
    if (!r)
        return 0;
    count_add(&r->success, success);
    count_add(&r->failure, failure);
    if (!type)
        return 0;
    /* The casts only let the key borrow const strings; detail_merge copies. */
    tlsrpt_detail k = {
        .result_type = (char *)type,
        .sending_mta_ip = (char *)(peer ? peer->sending_ip : NULL),
        .receiving_mx_hostname = (char *)(peer ? peer->mx_hostname : NULL),
        .receiving_mx_helo = (char *)(peer ? peer->mx_helo : NULL),
        .receiving_ip = (char *)(peer ? peer->receiving_ip : NULL),
        .failure_reason_code = (char *)reason,
        .failed_sessions = 1,
    };
    return detail_merge(r, &k);
}

void tlsrpt_clear(smtpc_tlsrpt *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->ndetails; i++)
        detail_free(&r->details[i]);
    free(r->details);
    memset(r, 0, sizeof(*r));
}

void tlsrpt_set_policy(smtpc_tlsrpt *r, const char *type, const char *domain)
{
    snprintf(r->policy_type, sizeof r->policy_type, "%s", type ? type : "");
    snprintf(r->policy_domain, sizeof r->policy_domain, "%s", domain ? domain : "");
}

SMTPC_API const char *smtpc_tlsrpt_policy_type(const smtpc_tlsrpt *r)
{
    return r ? r->policy_type : "";
}

SMTPC_API const char *smtpc_tlsrpt_policy_domain(const smtpc_tlsrpt *r)
{
    return r ? r->policy_domain : "";
}

SMTPC_API smtpc_tlsrpt *smtpc_tlsrpt_new(void)
{
    return calloc(1, sizeof(smtpc_tlsrpt));
}

SMTPC_API void smtpc_tlsrpt_free(smtpc_tlsrpt *r)
{
    tlsrpt_clear(r);
    free(r);
}

SMTPC_API int smtpc_tlsrpt_merge(smtpc_tlsrpt *dst, const smtpc_tlsrpt *src)
{
    if (!dst)
        return -1;
    if (!src)
        return 0;
    /* src == dst works too: every detail finds itself and doubles. */
    count_add(&dst->success, src->success);
    count_add(&dst->failure, src->failure);
    for (size_t i = 0; i < src->ndetails; i++)
        if (detail_merge(dst, &src->details[i]) != 0)
            return -1;
    return 0;
}

SMTPC_API int64_t smtpc_tlsrpt_success(const smtpc_tlsrpt *r)
{
    return r ? r->success : 0;
}

SMTPC_API int64_t smtpc_tlsrpt_failure(const smtpc_tlsrpt *r)
{
    return r ? r->failure : 0;
}

SMTPC_API size_t smtpc_tlsrpt_detail_count(const smtpc_tlsrpt *r)
{
    return r ? r->ndetails : 0;
}

SMTPC_API const char *smtpc_tlsrpt_detail_field(const smtpc_tlsrpt *r, size_t i,
                                                const char *field)
{
    if (!r || i >= r->ndetails || !field)
        return NULL;
    const tlsrpt_detail *d = &r->details[i];
    static const struct {
        const char *name;
        size_t off;
    } fields[] = {
        {"result-type", offsetof(tlsrpt_detail, result_type)},
        {"sending-mta-ip", offsetof(tlsrpt_detail, sending_mta_ip)},
        {"receiving-mx-hostname", offsetof(tlsrpt_detail, receiving_mx_hostname)},
        {"receiving-mx-helo", offsetof(tlsrpt_detail, receiving_mx_helo)},
        {"receiving-ip", offsetof(tlsrpt_detail, receiving_ip)},
        {"failure-reason-code", offsetof(tlsrpt_detail, failure_reason_code)},
    };
    for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++)
        if (strcmp(field, fields[f].name) == 0)
            return *(char *const *)((const char *)d + fields[f].off);
    return NULL;
}

SMTPC_API int64_t smtpc_tlsrpt_detail_failed_sessions(const smtpc_tlsrpt *r, size_t i)
{
    return r && i < r->ndetails ? r->details[i].failed_sessions : 0;
}
