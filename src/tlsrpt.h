/* TLS reporting results (RFC 8460 4.3): counts and merged failure details. */
#ifndef SMTPC_TLSRPT_H
#define SMTPC_TLSRPT_H

#include <stddef.h>
#include <stdint.h>

#include "smtpc.h"

#define TLSRPT_MAX_DETAILS 64

typedef struct tlsrpt_detail {
    char *result_type;           /* "starttls-not-supported", "certificate-expired", ... */
    char *sending_mta_ip;
    char *receiving_mx_hostname;
    char *receiving_mx_helo;
    char *receiving_ip;
    char *failure_reason_code;
    int64_t failed_sessions;
} tlsrpt_detail;

struct smtpc_tlsrpt {
    char policy_type[16];        /* "sts", "tlsa", "no-policy-found", "" unset (23.1) */
    char policy_domain[256];
    int64_t success, failure;
    tlsrpt_detail *details;
    size_t ndetails, cap;
};

/* The peer fields every detail of one connection shares (spec 6.1). Any may be NULL. */
typedef struct tlsrpt_peer {
    const char *sending_ip, *receiving_ip, *mx_hostname, *mx_helo;
} tlsrpt_peer;

/* Adds to the counters (each clamped at >= 0) and, when type is non-NULL,
 * merges a detail {type, reason, peer fields, failed_sessions = 1} into an
 * identical existing one (summing counts) or appends it (spec 6.3). Details
 * beyond TLSRPT_MAX_DETAILS are merged into nothing (dropped). Returns -1 on nomem. */
int tlsrpt_add(smtpc_tlsrpt *r, int64_t success, int64_t failure, const tlsrpt_peer *peer,
               const char *type, const char *reason);
void tlsrpt_clear(smtpc_tlsrpt *r);  /* frees details, zeroes; struct reusable */
/* Sets the policy the result is about (RFC 8460 4.3: policy-type, policy-domain). */
void tlsrpt_set_policy(smtpc_tlsrpt *r, const char *type, const char *domain);

#endif
