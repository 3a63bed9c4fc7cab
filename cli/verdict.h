/* The one-line verdicts of `smtpc probe`: per MX host and for the domain.
 * Pure (no library calls): the facts come from the smtpc_delivery getters.
 *
 * Host verdicts start with "ok: " or "fail: " and are stable strings:
 *   ok: dane verified               ok: pkix verified (mta-sts enforce)
 *   ok: tls, tlsa records unusable  ok: opportunistic tls
 *   ok: no tls (opportunistic)
 *   fail: unreachable               fail: dns lookup failed
 *   fail: mx not in mta-sts policy  fail: dane verification failed
 *   fail: no starttls but policy requires tls
 *   fail: pkix verification failed (mta-sts enforce)
 *   fail: policy not met            fail: tls handshake failed
 *   fail: smtp error                fail: timeout    fail: connection lost
 *   fail: protocol error
 * Domain verdicts: "ok", "degraded", "fail", "no-mail". */
#ifndef SMTPC_CLI_VERDICT_H
#define SMTPC_CLI_VERDICT_H

#include <stdbool.h>
#include <stddef.h>

#include "smtpc.h"

struct cli_host_facts {
    bool dialed;          /* an address was connected to (attempt ip not NULL) */
    bool tls;             /* TLS was established (a TLS version is known) */
    bool pkix_verified;
    const char *dane;     /* "verified", "failed", "none", "required-unusable" */
    int mtasts_match;     /* 1 matches the policy, 0 does not, -1 no policy */
    bool sts_enforce;     /* the domain's MTA-STS policy is in mode enforce */
    smtpc_error_kind err; /* SMTPC_ERR_NONE when the attempt had no error */
    smtpc_command err_cmd;
    bool err_permanent;
};

struct cli_host_verdict {
    const char *text;
    bool ok;
    bool permanent; /* a failure that retrying cannot fix */
};

struct cli_host_verdict cli_host_verdict(const struct cli_host_facts *f);
/* no_mail: the domain has a null MX (RFC 7505); domain_error: the probe of
 * the domain as a whole failed; nok of nhosts hosts got an ok verdict. */
const char *cli_domain_verdict(bool no_mail, bool domain_error, size_t nhosts, size_t nok);

#endif
