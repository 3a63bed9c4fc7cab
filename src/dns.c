/* The resolver interface: backend choice, answers, RFC 8914 names. */
#include "dns.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns_backend.h"

dns_resolver *dns_resolver_new(const dns_config *cfg, char *err, size_t errlen)
{
    if (cfg->mode == DNSSEC_VALIDATE)
        return dns_unbound_new(cfg, err, errlen);
    return dns_ldns_new(cfg, err, errlen);
}

void dns_resolver_free(dns_resolver *r)
{
    if (r)
        r->ops->free(r);
}

static void answer_init(dns_answer *a)
{
    memset(a, 0, sizeof *a);
    a->ede = -1;
}

int dns_lookup(dns_resolver *r, const char *name, dns_type t, dns_answer *out)
{
    answer_init(out);
    size_t n = strlen(name);
    if (n == 0 || name[n - 1] != '.') {
        /* Spec 22.1: relative names would be subject to search lists. */
        out->status = DNS_ERROR;
        snprintf(out->why, sizeof out->why, "name to look up must be absolute: %s", name);
        return 0;
    }
    return r->ops->lookup(r, name, t, out);
}

int dns_answer_alloc(dns_answer *a, dns_type t, size_t n)
{
    if (n > DNS_MAX_RECORDS)
        n = DNS_MAX_RECORDS;
    if (t == DNS_T_TLSA)
        a->tlsa = calloc(n ? n : 1, sizeof *a->tlsa);
    else
        a->text = calloc(n ? n : 1, sizeof *a->text);
    if (t == DNS_T_MX)
        a->pref = calloc(n ? n : 1, sizeof *a->pref);
    if ((t == DNS_T_TLSA && !a->tlsa) || (t != DNS_T_TLSA && !a->text) ||
        (t == DNS_T_MX && !a->pref))
        return -1;
    return 0;
}

void dns_answer_free(dns_answer *a)
{
    for (size_t i = 0; i < a->n; i++) {
        if (a->text)
            free(a->text[i]);
        if (a->tlsa)
            free(a->tlsa[i].data);
    }
    free(a->text);
    free(a->pref);
    free(a->tlsa);
    a->text = NULL;
    a->pref = NULL;
    a->tlsa = NULL;
    a->n = 0;
}

/* RFC 8914 4: the codes about DNSSEC authentication (spec 22.6). */
bool dns_ede_is_auth(int ede)
{
    return ede == 1 || ede == 2 || (ede >= 5 && ede <= 12);
}

const char *dns_ede_name(int ede)
{
    static const char *const names[] = {
        "other-error", "unsupported-dnskey-algorithm", "unsupported-ds-digest-type",
        "stale-answer", "forged-answer", "dnssec-indeterminate", "dnssec-bogus",
        "signature-expired", "signature-not-yet-valid", "dnskey-missing", "rrsigs-missing",
        "no-zone-key-bit-set", "nsec-missing", "cached-error", "not-ready", "blocked",
        "censored", "filtered", "prohibited", "stale-nxdomain-answer", "not-authoritative",
        "not-supported", "no-reachable-authority", "network-error", "invalid-data",
    };
    if (ede < 0 || (size_t)ede >= sizeof names / sizeof names[0])
        return "unknown";
    return names[ede];
}

int dns_parse_server(const char *text, char *addr, size_t addrlen, uint16_t *port)
{
    const char *host = text, *portstr = NULL;
    size_t hostlen = strlen(text);
    unsigned char buf[16];
    if (text[0] == '[') {
        const char *end = strchr(text, ']');
        if (!end || (end[1] != '\0' && end[1] != ':'))
            return -1;
        host = text + 1;
        hostlen = (size_t)(end - host);
        portstr = end[1] == ':' ? end + 2 : NULL;
    } else if (strchr(text, ':') && strchr(text, ':') == strrchr(text, ':')) {
        hostlen = (size_t)(strchr(text, ':') - text); /* IPv4:PORT */
        portstr = text + hostlen + 1;
    }
    if (hostlen == 0 || hostlen >= addrlen)
        return -1;
    memcpy(addr, host, hostlen);
    addr[hostlen] = '\0';
    if (inet_pton(AF_INET, addr, buf) != 1 && inet_pton(AF_INET6, addr, buf) != 1)
        return -1;
    *port = 53;
    if (portstr) {
        char *end;
        long p = strtol(portstr, &end, 10);
        if (*portstr == '\0' || *end != '\0' || p < 1 || p > 65535)
            return -1;
        *port = (uint16_t)p;
    }
    return 0;
}
