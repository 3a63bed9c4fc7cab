/* Verdicts of `smtpc probe`. */
#include "verdict.h"

#include <string.h>

static struct cli_host_verdict fail(const struct cli_host_facts *f, const char *text)
{
    /* A failure the CLI judged without an error from the library is a policy
     * miss on a host that might be fixed: transient. */
    bool permanent = f->err != SMTPC_ERR_NONE && f->err_permanent;
    return (struct cli_host_verdict){text, false, permanent};
}

static struct cli_host_verdict ok(const char *text)
{
    return (struct cli_host_verdict){text, true, false};
}

static bool dane_is(const struct cli_host_facts *f, const char *v)
{
    return f->dane != NULL && strcmp(f->dane, v) == 0;
}

/* Never connected: why not. */
static struct cli_host_verdict not_dialed(const struct cli_host_facts *f)
{
    if (f->err == SMTPC_ERR_DNS)
        return fail(f, "fail: dns lookup failed");
    if (f->err == SMTPC_ERR_POLICY || (f->sts_enforce && f->mtasts_match == 0))
        return fail(f, f->mtasts_match == 0 ? "fail: mx not in mta-sts policy"
                                            : "fail: policy not met");
    return fail(f, "fail: unreachable");
}

/* An error the policy checks did not explain. */
static struct cli_host_verdict by_error(const struct cli_host_facts *f)
{
    switch (f->err) {
    case SMTPC_ERR_TLS:
        return fail(f, "fail: tls handshake failed");
    case SMTPC_ERR_STATUS:
        return fail(f, "fail: smtp error");
    case SMTPC_ERR_TIMEOUT:
        return fail(f, "fail: timeout");
    case SMTPC_ERR_IO:
    case SMTPC_ERR_CLOSED:
        return fail(f, "fail: connection lost");
    case SMTPC_ERR_POLICY:
        return fail(f, "fail: policy not met");
    default:
        return fail(f, "fail: protocol error");
    }
}

/* DANE (RFC 7672) and MTA-STS enforce (RFC 8461 5) both require verified TLS;
 * DANE takes precedence when the host has usable TLSA records. */
static struct cli_host_verdict by_policy(const struct cli_host_facts *f, bool *decided)
{
    bool dane_required = dane_is(f, "verified") || dane_is(f, "failed") ||
                         dane_is(f, "required-unusable");
    *decided = true;
    if (f->sts_enforce && f->mtasts_match == 0)
        return fail(f, "fail: mx not in mta-sts policy");
    if (dane_is(f, "failed"))
        return fail(f, "fail: dane verification failed");
    if ((dane_required || f->sts_enforce) && !f->tls)
        return fail(f, "fail: no starttls but policy requires tls");
    if (f->sts_enforce && !f->pkix_verified && !dane_is(f, "verified"))
        return fail(f, "fail: pkix verification failed (mta-sts enforce)");
    *decided = false;
    return ok("");
}

struct cli_host_verdict cli_host_verdict(const struct cli_host_facts *f)
{
    bool decided;
    if (!f->dialed)
        return not_dialed(f);
    if (f->err != SMTPC_ERR_NONE && f->err_cmd == SMTPC_CMD_CONNECT)
        return fail(f, "fail: unreachable");
    struct cli_host_verdict v = by_policy(f, &decided);
    if (decided)
        return v;
    if (f->err != SMTPC_ERR_NONE)
        return by_error(f);
    if (dane_is(f, "verified"))
        return ok("ok: dane verified");
    if (f->sts_enforce)
        return ok("ok: pkix verified (mta-sts enforce)");
    if (dane_is(f, "required-unusable"))
        return ok("ok: tls, tlsa records unusable");
    return ok(f->tls ? "ok: opportunistic tls" : "ok: no tls (opportunistic)");
}

const char *cli_domain_verdict(bool no_mail, bool domain_error, size_t nhosts, size_t nok)
{
    if (no_mail)
        return "no-mail";
    if (nhosts == 0 || nok == 0)
        return "fail";
    if (nok < nhosts || domain_error)
        return "degraded";
    return "ok";
}
