/* Where mail for a domain goes and how to reach it (spec 15-18), over the
 * dns.h interface. Pure logic: all network access is the resolver's. */
#ifndef SMTPC_GATHER_H
#define SMTPC_GATHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns.h"
#include "domain.h"

#define GATHER_MAX_HOSTS 32
#define GATHER_MAX_IPS 32

typedef enum {
    GATHER_OK = 0,
    GATHER_DNS,         /* lookup failed (errDNS); permanent when said so */
    GATHER_NO_MAIL,     /* null MX (RFC 7505): permanent */
    GATHER_CNAME_LOOP,  /* transient */
    GATHER_CNAME_LIMIT, /* transient */
    GATHER_NOMEM,
} gather_err;

typedef struct gather_status {
    gather_err err;
    bool permanent;
    int ede;            /* RFC 8914 code of the failing lookup, -1 none */
    char msg[256];
} gather_status;

typedef struct gather_host {
    char name[DOMAIN_MAX]; /* ASCII domain, or IP text for an IP next hop */
    bool is_ip;
    int pref;              /* -1 when not from an MX record */
} gather_host;

/* Random source for shuffling equal MX preferences (Q25); tests pass a fixed one. */
typedef uint32_t (*gather_rand_fn)(void *ud);

typedef struct gather_dest {
    bool have_mx, orig_authentic, expanded_authentic;
    char expanded_next_hop[DOMAIN_MAX];
    gather_host hosts[GATHER_MAX_HOSTS];
    size_t nhosts;
    gather_status st;
} gather_dest;

/* Spec 15. next_hop: ASCII domain or IP text. MX hosts sorted by preference,
 * equal preferences shuffled with rnd (NULL: a fixed order). */
void gather_destinations(dns_resolver *r, const char *next_hop, gather_rand_fn rnd, void *rnd_ud,
                         gather_dest *out);

typedef struct gather_ips {
    char ips[GATHER_MAX_IPS][64];
    size_t nips;
    bool authentic, expanded_authentic, dualstack;
    char expanded_host[DOMAIN_MAX];
    gather_status st;
} gather_ips;

/* Spec 16. family: 0 any, 4 or 6. prev: IPs dialed for this host in earlier
 * attempts, oldest first (16.6 ordering). */
void gather_ips_lookup(dns_resolver *r, const char *host, int family, char *const *prev,
                       size_t nprev, gather_ips *out);

typedef struct gather_tlsa {
    bool dane_required;
    tlsa_rec *recs;        /* usable records (17.5), malloc'ed data */
    size_t nrecs;
    size_t nall;           /* records found before filtering */
    char **all_text;       /* each record found, "U S M hex" (nall entries) */
    char base[DOMAIN_MAX]; /* TLSA base domain */
    gather_status st;
} gather_tlsa;

/* Spec 17 (port moves the name to _PORT._tcp). */
void gather_tlsa_lookup(dns_resolver *r, const char *host, bool expanded_authentic,
                        const char *expanded_host, uint16_t port, gather_tlsa *out);
void gather_tlsa_free(gather_tlsa *t);

/* Spec 18: allowed certificate names, first one is SNI. Returns the count. */
size_t gather_tlsa_names(bool have_mx, bool exp_next_hop_authentic, bool exp_authentic,
                         const char *orig_next_hop, const char *exp_next_hop,
                         const char *orig_base, const char *exp_base,
                         char names[][DOMAIN_MAX], size_t max);

/* Usable records (17.5) are those tlsa_usable() of tls.h accepts. */

#endif
