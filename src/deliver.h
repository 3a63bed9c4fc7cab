/* Direct delivery (spec 24): internal structures shared by deliver.c (the
 * domain attempt), deliver_host.c (one MX host) and deliver_api.c (handles
 * and getters). */
#ifndef SMTPC_DELIVER_INT_H
#define SMTPC_DELIVER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns.h"
#include "gather.h"
#include "internal.h"
#include "mtasts.h"

#define DELIVER_MAX_SERVERS 8
#define DELIVER_MAX_LOCAL_IPS 8
#define DELIVER_MAX_ATTEMPTS (2 * GATHER_MAX_HOSTS)

struct smtpc_deliver_config {
    logger log;
    char *servers[DELIVER_MAX_SERVERS];
    size_t nservers;
    char *resolv_conf, *trust_anchor, *state_dir, *ca_file, *ehlo_name;
    smtpc_dnssec_mode dnssec;
    uint16_t port;
    char *local_ips[DELIVER_MAX_LOCAL_IPS];
    size_t nlocal;
    int timeout_ms;
    /* Tests: replace the MTA-STS HTTPS fetch (mtasts_fetch_opts.fetch). */
    void (*mtasts_fetch)(void *ud, const char *domain, mtasts_result *out);
    void *mtasts_fetch_ud;
};

/* One host considered (spec 24.8): what was decided and what happened. */
typedef struct attempt {
    char host[DOMAIN_MAX];
    char ip[64];               /* "" when never dialed */
    const char *tls_mode;      /* "starttls", "opportunistic", "none" */
    const char *dane;          /* "verified", "failed", "none", "required-unusable" */
    bool pkix_verified;
    bool requiretls_missing;   /* failed for lack of REQUIRETLS or of a verification mechanism */
    smtpc_error err;           /* kind NONE on success */
    /* Probe details. */
    int pref;
    dns_sec dnssec;
    char (*addrs)[64];
    size_t naddrs;
    char **tlsa;               /* "U S M hex" */
    size_t ntlsa, tlsa_usable;
    dns_sec tlsa_sec;
    int mtasts_match;          /* -1 no policy */
    bool starttls;
    char tls_version[32], tls_cipher[96];
    char **exts;
    size_t nexts;
    char (*certs)[TLS_CHAIN_LINE];
    size_t ncerts;
} attempt;

struct smtpc_delivery {
    char domain[DOMAIN_MAX];
    bool ok;
    smtpc_error err;
    const char *mtasts_mode;   /* NULL: no usable policy */
    char mtasts_id[33];
    char *mtasts_error;
    char *mtasts_record;
    char **mtasts_mx;
    size_t nmtasts_mx;
    char *tlsrpt_record;
    char **rua;
    size_t nrua;
    attempt attempts[DELIVER_MAX_ATTEMPTS];
    size_t nattempts;
    smtpc_tlsrpt *rpt_rcpt;
    smtpc_tlsrpt *rpt_hosts[DELIVER_MAX_ATTEMPTS];
    size_t nrpt_hosts;
};

/* Everything one domain attempt works with. */
typedef struct deliver_ctx {
    const smtpc_deliver_config *dc;
    smtpc_delivery *d;
    smtpc_message *m;          /* NULL when probing */
    bool probe, tls_required_no, requiretls;
    dns_resolver *res;
    dns_resolver *own_res;     /* created here (freed here) */
    gather_dest dest;
    const mtasts_policy *policy; /* NULL: none or mode none */
    bool enforce;
    /* Per recipient: settled in this attempt (delivered or failed with its
     * own reply), and delivered (250 to the final dot). */
    bool *done, *delivered;
} deliver_ctx;

typedef enum { HOST_OK = 0, HOST_FAILED } host_outcome;

/* Spec 24.8-24.18 for one host; fills a new attempt (or two, with a
 * plaintext retry, 24.19). */
host_outcome deliver_host(deliver_ctx *x, const gather_host *h);

/* smtpc_deliver / smtpc_probe with a given resolver (tests pass the
 * fixture); res stays the caller's. */
smtpc_delivery *deliver_with_resolver(const smtpc_deliver_config *dc, dns_resolver *res,
                                      const char *domain, smtpc_message *m, unsigned flags);

attempt *delivery_new_attempt(smtpc_delivery *d, const char *host);
smtpc_tlsrpt *delivery_new_host_result(smtpc_delivery *d);
/* Removes r when it is the newest host result (one that turned out unreported). */
void delivery_drop_host_result(smtpc_delivery *d, smtpc_tlsrpt *r);
void delivery_init(smtpc_delivery *d, const char *domain);
const char *dns_sec_name(dns_sec s);

#endif
