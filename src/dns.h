/* DNS lookups with DNSSEC status (spec 22), behind one interface with three
 * backends: a forwarding client (ldns) that trusts the AD bit of the configured
 * recursive resolver, in-process validation (libunbound with a trust anchor),
 * and a fixture for tests. */
#ifndef SMTPC_DNS_H
#define SMTPC_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tls.h" /* tlsa_rec */

typedef enum {
    DNS_T_A = 1,
    DNS_T_CNAME = 5,
    DNS_T_MX = 15,
    DNS_T_TXT = 16,
    DNS_T_AAAA = 28,
    DNS_T_TLSA = 52,
} dns_type;

typedef enum {
    DNS_OK = 0,      /* records of the asked type present (n > 0) */
    DNS_NXDOMAIN,    /* name does not exist */
    DNS_NODATA,      /* name exists, no record of this type ("not found" too, 22.5) */
    DNS_SERVFAIL,    /* SERVFAIL (this is also what a validating resolver says for bogus) */
    DNS_TEMPFAIL,    /* timeout, network error, no resolver reachable */
    DNS_ERROR,       /* REFUSED, malformed answer, other rcode */
} dns_status;

typedef enum {
    DNS_INSECURE = 0, /* not authentic (includes every failed lookup, 22.6) */
    DNS_SECURE,       /* DNSSEC-authentic (validated, or AD from a trusted resolver) */
    DNS_BOGUS,        /* validation failed (validate mode; trust-ad mode sees SERVFAIL) */
} dns_sec;

#define DNS_MAX_RECORDS 64

typedef struct dns_answer {
    dns_status status;
    dns_sec sec;
    int ede;               /* RFC 8914 info code, -1 when none */
    char ede_text[128];
    char why[160];         /* readable reason for status != OK */
    size_t n;              /* records of the asked type, at most DNS_MAX_RECORDS */
    /* Per type, in answer order:
     *   A/AAAA: text[i] = address ("192.0.2.1", "2001:db8::1")
     *   CNAME:  text[0] = target, lowercased, without the trailing dot
     *   MX:     text[i] = host, lowercased, without trailing dot ("" for "."); pref[i]
     *   TXT:    text[i] = the record's character-strings concatenated (22.9)
     *   TLSA:   tlsa[i] */
    char **text;
    uint16_t *pref;
    tlsa_rec *tlsa;
} dns_answer;

typedef enum { DNSSEC_TRUST_AD = 0, DNSSEC_VALIDATE, DNSSEC_OFF } dnssec_mode;

typedef struct dns_config {
    char *const *servers;  /* "ADDR", "ADDR:PORT" or "[IPV6]:PORT"; none: resolv.conf */
    size_t nservers;
    const char *resolv_conf;   /* NULL: /etc/resolv.conf */
    dnssec_mode mode;
    const char *trust_anchor;  /* validate mode; NULL: /usr/share/dns/root.key */
    int timeout_ms;            /* per lookup; 0: 30000 */
} dns_config;

typedef struct dns_resolver dns_resolver;

typedef struct dns_ops {
    int (*lookup)(dns_resolver *r, const char *name, dns_type t, dns_answer *out);
    void (*free)(dns_resolver *r);
} dns_ops;

struct dns_resolver {
    const dns_ops *ops;
    dnssec_mode mode;
    void *impl;
};

/* Creates the backend for cfg->mode (trust-ad: ldns forwarding client asking
 * for DNSSEC with the DO and AD bits; off: the same without them; validate:
 * libunbound). No lookup ever goes to a resolver the user
 * did not configure. Returns NULL with err filled on bad configuration. */
dns_resolver *dns_resolver_new(const dns_config *cfg, char *err, size_t errlen);
void dns_resolver_free(dns_resolver *r);

/* name must be absolute (trailing dot, 22.1), else status DNS_ERROR. Always
 * fills *out (free with dns_answer_free). Returns 0, -1 only when out of memory. */
int dns_lookup(dns_resolver *r, const char *name, dns_type t, dns_answer *out);
void dns_answer_free(dns_answer *a);

/* "not found" in the spec's sense (NXDOMAIN or NODATA). */
static inline bool dns_not_found(const dns_answer *a)
{
    return a->status == DNS_NXDOMAIN || a->status == DNS_NODATA;
}

/* RFC 8914 codes 1, 2, 5-12 concern DNSSEC authentication (spec 22.6). */
bool dns_ede_is_auth(int ede);
/* Short name with dashes: 6 -> "dnssec-bogus", 7 -> "signature-expired". */
const char *dns_ede_name(int ede);

/* Parses "ADDR", "ADDR:PORT", "[IPV6]:PORT" (port default 53). Returns 0 or -1. */
int dns_parse_server(const char *text, char *addr, size_t addrlen, uint16_t *port);

/* Fixture backend for tests: answers only what was added; everything else
 * NXDOMAIN (insecure). data for add: A/AAAA/CNAME/TXT text, MX "PREF host",
 * TLSA "U S M hex". Several adds of one name/type make several records. */
dns_resolver *dns_fixture_new(void);
int dns_fixture_add(dns_resolver *r, const char *name, dns_type t, dns_sec sec, const char *data);
/* Makes name/type answer with a failure status (and optional EDE code). */
int dns_fixture_fail(dns_resolver *r, const char *name, dns_type t, dns_status st, dns_sec sec,
                     int ede);
/* Number of lookups made so far (to assert that something was NOT looked up). */
size_t dns_fixture_lookups(const dns_resolver *r, const char *name, dns_type t);

#endif
