/* DNS responses in wire format (dns_answer_from_wire in src/dns_ldns.c),
 * parsed for each record type we ask for: A, AAAA, CNAME, MX, TXT, TLSA.
 * Invariants: a status and matching why, at most DNS_MAX_RECORDS records,
 * records only with DNS_OK, addresses that parse back, lowercase names,
 * data no larger than the packet, secure only on NOERROR/NXDOMAIN. */
#include "fuzz.h"

#include <arpa/inet.h>

#include "dns.h"
#include "dns_backend.h"

static void check(const dns_answer *a, dns_type t, size_t wirelen)
{
    FZ_ASSERT(a->status >= DNS_OK && a->status <= DNS_ERROR);
    FZ_ASSERT(a->sec == DNS_INSECURE || a->sec == DNS_SECURE);
    FZ_ASSERT(a->ede >= -1 && a->ede <= 65535);
    FZ_ASSERT(fz_bounded_str(a->why, sizeof a->why - 1));
    FZ_ASSERT(fz_bounded_str(a->ede_text, sizeof a->ede_text - 1));
    FZ_ASSERT(a->n <= DNS_MAX_RECORDS);
    if (a->status != DNS_OK) {
        FZ_ASSERT(a->n == 0 && a->why[0] != '\0');
        if (a->status != DNS_NXDOMAIN && a->status != DNS_NODATA)
            FZ_ASSERT(a->sec == DNS_INSECURE);
        return;
    }
    FZ_ASSERT(a->n > 0);
    for (size_t i = 0; i < a->n; i++) {
        if (t == DNS_T_TLSA) {
            FZ_ASSERT(a->tlsa[i].data != NULL && a->tlsa[i].len < wirelen);
            continue;
        }
        const char *s = a->text[i];
        FZ_ASSERT(s != NULL && strlen(s) < 4 * wirelen + 1);
        unsigned char buf[16];
        if (t == DNS_T_A)
            FZ_ASSERT(inet_pton(AF_INET, s, buf) == 1);
        if (t == DNS_T_AAAA)
            FZ_ASSERT(inet_pton(AF_INET6, s, buf) == 1);
        if (t == DNS_T_MX || t == DNS_T_CNAME)
            for (const char *q = s; *q; q++)
                FZ_ASSERT(!(*q >= 'A' && *q <= 'Z'));
        if (t == DNS_T_TXT)
            FZ_ASSERT(strlen(s) < wirelen);
    }
    if (t == DNS_T_CNAME)
        FZ_ASSERT(a->n >= 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const dns_type types[] = {DNS_T_A, DNS_T_AAAA, DNS_T_CNAME,
                                     DNS_T_MX, DNS_T_TXT, DNS_T_TLSA};
    /* an exact-size copy so reads past the length are caught */
    unsigned char *wire = malloc(size ? size : 1);
    FZ_ASSERT(wire != NULL);
    memcpy(wire, data, size);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        dns_answer a;
        memset(&a, 0x5a, sizeof a); /* fully initialised by the parser */
        FZ_ASSERT(dns_answer_from_wire(wire, size, types[i], &a) == 0);
        check(&a, types[i], size);
        dns_answer_free(&a);
    }
    free(wire);
    return 0;
}
