/* Constructors of the dns.h backends (dns.c picks one by mode), and the
 * pieces the two real backends share. */
#ifndef SMTPC_DNS_BACKEND_H
#define SMTPC_DNS_BACKEND_H

#include "dns.h"

/* Stub resolver trusting the AD bit (trust-ad; off mode never asks for DNSSEC). */
dns_resolver *dns_ldns_new(const dns_config *cfg, char *err, size_t errlen);
/* In-process validation with libunbound and a trust anchor file. */
dns_resolver *dns_unbound_new(const dns_config *cfg, char *err, size_t errlen);

/* Helpers for backends: allocate the answer's arrays for n records. */
int dns_answer_alloc(dns_answer *a, dns_type t, size_t n);

/* Resolvers one resolver object talks to, at most. */
#define DNS_MAX_SERVERS 8
#define DNS_DEFAULT_TIMEOUT_MS 30000
#define DNS_DEFAULT_RESOLV_CONF "/etc/resolv.conf"

typedef struct dns_server {
    char addr[48]; /* numeric IPv4 or IPv6 address */
    uint16_t port;
} dns_server;

/* The resolvers to ask (in dns_ldns.c): cfg->servers, else the nameserver
 * lines of cfg->resolv_conf (only those: no search list, no options).
 * Returns the count (> 0), or -1 with err filled. */
int dns_config_servers(const dns_config *cfg, dns_server *out, size_t max, char *err,
                       size_t errlen);

/* Converts a DNS response (wire format) to a dns_answer for type t (in
 * dns_ldns.c): rcode to status, the records of type t at the end of the CNAME
 * chain that starts at the question name, RFC 8914 EDE from the OPT record.
 * sec is DNS_SECURE when AD is set on a NOERROR/NXDOMAIN response, else
 * DNS_INSECURE; callers that decide authenticity otherwise overwrite it.
 * Initialises *out entirely (free with dns_answer_free). Returns 0, -1 only
 * when out of memory. */
int dns_answer_from_wire(const unsigned char *wire, size_t len, dns_type t, dns_answer *out);

/* RFC 8914 code for libunbound's why_bogus text (in dns_unbound.c):
 * "signature expired" -> 7, ...; 6 (dnssec-bogus) when nothing more precise. */
int dns_ede_from_why(const char *why);

#endif
