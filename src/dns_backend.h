/* Constructors of the dns.h backends (dns.c picks one by mode). */
#ifndef SMTPC_DNS_BACKEND_H
#define SMTPC_DNS_BACKEND_H

#include "dns.h"

/* Stub resolver trusting the AD bit (trust-ad; off mode never asks for DNSSEC). */
dns_resolver *dns_ldns_new(const dns_config *cfg, char *err, size_t errlen);
/* In-process validation with libunbound and a trust anchor file. */
dns_resolver *dns_unbound_new(const dns_config *cfg, char *err, size_t errlen);

/* Helpers for backends: allocate the answer's arrays for n records. */
int dns_answer_alloc(dns_answer *a, dns_type t, size_t n);

#endif
