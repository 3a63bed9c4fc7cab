/*
 * smtpc direct delivery and domain probing (included by <smtpc.h>).
 *
 * smtpc_deliver() does what an MTA's queue does for one delivery attempt to
 * one recipient domain: MTA-STS policy (cached in a state directory), MX
 * resolution, address lookup, DNSSEC-authentic TLSA lookup for DANE, dialing
 * (Happy Eyeballs), a TLS policy per host, delivery, and fallback to the next
 * MX. Recipients' results land on the message as with smtpc_send().
 *
 *     smtpc_deliver_config *dc = smtpc_deliver_config_new();
 *     smtpc_deliver_config_set_state_dir(dc, "/var/lib/myapp/smtpc");
 *     smtpc_delivery *d = smtpc_deliver(dc, "example.net", msg, 0);
 *     if (!smtpc_delivery_ok(d)) ... smtpc_delivery_error(d) ...
 *     smtpc_delivery_free(d);
 */
#ifndef SMTPC_DELIVER_H
#define SMTPC_DELIVER_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct smtpc_deliver_config smtpc_deliver_config;
typedef struct smtpc_delivery smtpc_delivery;

typedef enum {
    SMTPC_DNSSEC_TRUST_AD = 0, /* trust the AD bit of the configured resolver (default) */
    SMTPC_DNSSEC_VALIDATE,     /* validate in process (libunbound, trust anchor file) */
    SMTPC_DNSSEC_OFF,          /* no DNSSEC: TLSA never looked up, no DANE */
} smtpc_dnssec_mode;

SMTPC_API smtpc_deliver_config *smtpc_deliver_config_new(void);
SMTPC_API void smtpc_deliver_config_free(smtpc_deliver_config *dc);
/* Resolvers: "ADDR", "ADDR:PORT" or "[IPV6]:PORT", repeatable; default
 * /etc/resolv.conf (or the file given). No lookup goes anywhere else. */
SMTPC_API int smtpc_deliver_config_add_dns_server(smtpc_deliver_config *dc, const char *addr);
SMTPC_API int smtpc_deliver_config_set_resolv_conf(smtpc_deliver_config *dc, const char *path);
SMTPC_API void smtpc_deliver_config_set_dnssec(smtpc_deliver_config *dc, smtpc_dnssec_mode m);
/* Validate mode's trust anchor (default /usr/share/dns/root.key). */
SMTPC_API int smtpc_deliver_config_set_trust_anchor(smtpc_deliver_config *dc, const char *path);
/* MTA-STS policy cache directory (NULL: no cache, policies fetched every time). */
SMTPC_API int smtpc_deliver_config_set_state_dir(smtpc_deliver_config *dc, const char *dir);
/* SMTP port (default 25; TLSA names move to _PORT._tcp). */
SMTPC_API void smtpc_deliver_config_set_port(smtpc_deliver_config *dc, uint16_t port);
/* Roots for MX PKIX and MTA-STS HTTPS verification (default: system store). */
SMTPC_API int smtpc_deliver_config_set_ca_file(smtpc_deliver_config *dc, const char *path);
SMTPC_API int smtpc_deliver_config_set_ehlo_name(smtpc_deliver_config *dc, const char *name);
/* Local addresses to bind (the first of the destination's family is used). */
SMTPC_API int smtpc_deliver_config_add_local_ip(smtpc_deliver_config *dc, const char *ip);
/* Bounds every stage, each connection attempt included (0: defaults). */
SMTPC_API void smtpc_deliver_config_set_timeout(smtpc_deliver_config *dc, int ms);
SMTPC_API void smtpc_deliver_config_set_log(smtpc_deliver_config *dc, smtpc_log_fn fn,
                                            void *userdata, smtpc_log_level max_level);

enum {
    /* RFC 8689 "TLS-Required: No": TLS is attempted, verification failures
     * are recorded but not fatal, plaintext fallback allowed. */
    SMTPC_DELIVER_TLS_REQUIRED_NO = 1 << 0,
    /* smtpc_probe only: do everything but MAIL, for every MX. */
    SMTPC_DELIVER_PROBE = 1 << 1,
};

/* One attempt for the recipients of m, all in domain (ASCII or Unicode, or an
 * address literal "[192.0.2.1]"). Returns NULL only when out of memory.
 * SMTPC_MSG_REQUIRETLS on m asks for RFC 8689 REQUIRETLS. */
SMTPC_API smtpc_delivery *smtpc_deliver(const smtpc_deliver_config *dc, const char *domain,
                                        smtpc_message *m, unsigned flags);
/* What a sender would do for domain, without sending mail: connects to every
 * MX (EHLO, STARTTLS, verification) and never touches the MTA-STS cache. */
SMTPC_API smtpc_delivery *smtpc_probe(const smtpc_deliver_config *dc, const char *domain);
SMTPC_API void smtpc_delivery_free(smtpc_delivery *d);

SMTPC_API const char *smtpc_delivery_domain(const smtpc_delivery *d);
SMTPC_API bool smtpc_delivery_ok(const smtpc_delivery *d);
/* Failure of the whole domain (kinds dns, no-mail, policy, or the last host's
 * error), NULL when the message went out. */
SMTPC_API const smtpc_error *smtpc_delivery_error(const smtpc_delivery *d);

/* MTA-STS: mode "none"/"testing"/"enforce", NULL without a usable policy. */
SMTPC_API const char *smtpc_delivery_mtasts_mode(const smtpc_delivery *d);
SMTPC_API const char *smtpc_delivery_mtasts_policy_id(const smtpc_delivery *d);
/* TLSRPT failure reason ("no-policy-served", ...), NULL when none. */
SMTPC_API const char *smtpc_delivery_mtasts_error(const smtpc_delivery *d);
/* Raw TXT record and the policy's MX patterns (probe output). */
SMTPC_API const char *smtpc_delivery_mtasts_record(const smtpc_delivery *d);
SMTPC_API size_t smtpc_delivery_mtasts_mx_count(const smtpc_delivery *d);
SMTPC_API const char *smtpc_delivery_mtasts_mx(const smtpc_delivery *d, size_t i);
/* TLSRPT TXT record of the domain (probe), NULL when none. */
SMTPC_API const char *smtpc_delivery_tlsrpt_record(const smtpc_delivery *d);
SMTPC_API size_t smtpc_delivery_tlsrpt_rua_count(const smtpc_delivery *d);
SMTPC_API const char *smtpc_delivery_tlsrpt_rua(const smtpc_delivery *d, size_t i);

/* Every host considered, in order, including hosts never dialed and a
 * plaintext retry as its own attempt. */
SMTPC_API size_t smtpc_delivery_attempt_count(const smtpc_delivery *d);
SMTPC_API const char *smtpc_delivery_attempt_host(const smtpc_delivery *d, size_t i);
SMTPC_API const char *smtpc_delivery_attempt_ip(const smtpc_delivery *d, size_t i); /* NULL: not dialed */
/* "starttls" (required), "opportunistic" or "none". */
SMTPC_API const char *smtpc_delivery_attempt_tls_mode(const smtpc_delivery *d, size_t i);
/* "verified", "failed", "none" or "required-unusable". */
SMTPC_API const char *smtpc_delivery_attempt_dane(const smtpc_delivery *d, size_t i);
SMTPC_API bool smtpc_delivery_attempt_pkix_verified(const smtpc_delivery *d, size_t i);
SMTPC_API const smtpc_error *smtpc_delivery_attempt_error(const smtpc_delivery *d, size_t i);
/* Probe details of an attempt. */
SMTPC_API int smtpc_delivery_attempt_preference(const smtpc_delivery *d, size_t i); /* -1: implicit */
/* "secure", "insecure" or "bogus": DNSSEC status of the host's address lookup. */
SMTPC_API const char *smtpc_delivery_attempt_dnssec(const smtpc_delivery *d, size_t i);
SMTPC_API size_t smtpc_delivery_attempt_address_count(const smtpc_delivery *d, size_t i);
SMTPC_API const char *smtpc_delivery_attempt_address(const smtpc_delivery *d, size_t i, size_t k);
/* TLSA records found ("U S M hex"), how many are usable, DNSSEC status of the lookup. */
SMTPC_API size_t smtpc_delivery_attempt_tlsa_count(const smtpc_delivery *d, size_t i);
SMTPC_API const char *smtpc_delivery_attempt_tlsa(const smtpc_delivery *d, size_t i, size_t k);
SMTPC_API size_t smtpc_delivery_attempt_tlsa_usable(const smtpc_delivery *d, size_t i);
SMTPC_API const char *smtpc_delivery_attempt_tlsa_dnssec(const smtpc_delivery *d, size_t i);
/* 1 matches the MTA-STS policy, 0 does not, -1 no policy. */
SMTPC_API int smtpc_delivery_attempt_mtasts_match(const smtpc_delivery *d, size_t i);
SMTPC_API bool smtpc_delivery_attempt_starttls(const smtpc_delivery *d, size_t i);
SMTPC_API const char *smtpc_delivery_attempt_tls_version(const smtpc_delivery *d, size_t i);
SMTPC_API const char *smtpc_delivery_attempt_tls_cipher(const smtpc_delivery *d, size_t i);
SMTPC_API size_t smtpc_delivery_attempt_ext_count(const smtpc_delivery *d, size_t i);
SMTPC_API const char *smtpc_delivery_attempt_ext(const smtpc_delivery *d, size_t i, size_t k);
/* The certificate chain the server sent: "subject | issuer | notAfter" per certificate. */
SMTPC_API size_t smtpc_delivery_attempt_cert_count(const smtpc_delivery *d, size_t i);
SMTPC_API const char *smtpc_delivery_attempt_cert(const smtpc_delivery *d, size_t i, size_t k);

/* TLS reporting: the recipient-domain result and one result per host attempt
 * with a policy (smtpc_tlsrpt_policy_type / _domain tell which). */
SMTPC_API const smtpc_tlsrpt *smtpc_delivery_tlsrpt_recipient_domain(const smtpc_delivery *d);
SMTPC_API size_t smtpc_delivery_tlsrpt_host_count(const smtpc_delivery *d);
SMTPC_API const smtpc_tlsrpt *smtpc_delivery_tlsrpt_host(const smtpc_delivery *d, size_t i);

#ifdef __cplusplus
}
#endif
#endif /* SMTPC_DELIVER_H */
