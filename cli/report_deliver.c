/* Reporting `smtpc deliver`: one entry per (message, domain) attempt. */
#include <stdio.h>

#include "json_out.h"
#include "report.h"

/* "  HOST [IP] tls=MODE dane=X pkix=Y: ok|error" for every host considered. */
static void human_attempts(const struct cli_report *r, const smtpc_delivery *d)
{
    if (r->json)
        return;
    for (size_t i = 0; i < smtpc_delivery_attempt_count(d); i++) {
        const char *ip = smtpc_delivery_attempt_ip(d, i);
        const smtpc_error *e = smtpc_delivery_attempt_error(d, i);
        printf("  %s [%s] tls=%s dane=%s pkix=%s: %s\n", smtpc_delivery_attempt_host(d, i),
               ip != NULL ? ip : "not dialed", smtpc_delivery_attempt_tls_mode(d, i),
               smtpc_delivery_attempt_dane(d, i),
               smtpc_delivery_attempt_pkix_verified(d, i) ? "verified" : "no",
               e != NULL ? smtpc_error_message(e) : "ok");
    }
}

static void human_domain(const struct cli_report *r, const char *name, const char *domain,
                         const smtpc_delivery *d)
{
    if (r->json)
        return;
    const char *mode = smtpc_delivery_mtasts_mode(d);
    if (r->multi)
        printf("[%s] ", name);
    if (mode != NULL)
        printf("domain %s (MTA-STS %s)\n", domain, mode);
    else
        printf("domain %s (no MTA-STS policy)\n", domain);
    human_attempts(r, d);
}

/* Notes each recipient for the exit status and prints its line; returns true
 * when all were accepted. Recipients without a reply are covered by the
 * domain's or the transaction's error. */
static bool note_rcpts(struct cli_report *r, const char *name, const smtpc_message *m,
                       const smtpc_error *fallback, bool *noted)
{
    bool all = true;
    for (size_t i = 0; i < smtpc_message_rcpt_count(m); i++) {
        const smtpc_error *res = smtpc_message_rcpt_result(m, i);
        bool acc = smtpc_message_rcpt_accepted(m, i);
        bool replied = res != NULL && smtpc_error_code(res) != 0;
        all = all && acc;
        if (!acc && replied) {
            cli_outcome_note(&r->out, SMTPC_ERR_STATUS, smtpc_error_permanent(res));
            *noted = true;
        }
        const char *line = replied ? smtpc_error_line(res)
                           : fallback != NULL ? smtpc_error_message(fallback)
                                              : "no reply";
        report_human_rcpt(r, name, smtpc_message_rcpt(m, i), acc, line);
    }
    return all;
}

void report_delivery(struct cli_report *r, size_t msg, const char *name, const char *domain,
                     const smtpc_message *m, const smtpc_delivery *d)
{
    const smtpc_error *derr = smtpc_delivery_error(d);
    const smtpc_error *merr = smtpc_message_error(m);
    /* The domain's error if it failed as a whole, else the last transaction's. */
    const smtpc_error *e = derr != NULL ? derr : merr;
    bool noted = false;
    human_domain(r, name, domain, d);
    bool ok = note_rcpts(r, name, m, derr, &noted) && smtpc_delivery_ok(d) && derr == NULL;
    if (e != NULL && smtpc_error_get_kind(e) != SMTPC_ERR_NONE) {
        cli_outcome_note(&r->out, smtpc_error_get_kind(e), smtpc_error_permanent(e));
        noted = true;
        const char *cmd = smtpc_command_name(smtpc_error_command(e));
        char what[768];
        snprintf(what, sizeof what, "%s: %s%s%s", domain, cmd, *cmd ? ": " : "",
                 smtpc_error_message(e));
        report_human_error(r, name, NULL, what);
    }
    if (!ok && !noted) {
        /* Not delivered, yet nothing above said why: still a failure. */
        cli_outcome_note(&r->out, SMTPC_ERR_STATUS, false);
        char what[300];
        snprintf(what, sizeof what, "%s: message not delivered", domain);
        report_human_error(r, name, NULL, what);
    }
    if (r->json)
        json_array_append_new(r->domains,
                              jo_delivery(domain, d, m, ok, r->multi ? (long)msg : -1));
}
