/* Reporting a run: the parts every command shares, and `smtpc send`. */
#include "report.h"

#include <stdio.h>

#include "json_out.h"

void report_init_shape(struct cli_report *r, bool json, enum cli_report_shape shape)
{
    *r = (struct cli_report){.json = json, .shape = shape};
    if (json && shape == CLI_REPORT_SEND)
        r->messages = json_array();
    if (json && shape == CLI_REPORT_DELIVER)
        r->domains = json_array();
}

void report_init(struct cli_report *r, bool json)
{
    report_init_shape(r, json, CLI_REPORT_SEND);
}

void report_human_error(const struct cli_report *r, const char *name, const char *cmd,
                        const char *msg)
{
    if (r->json)
        return;
    fflush(stdout); /* keep recipient lines and the error in order when both are captured */
    fprintf(stderr, "smtpc: error: ");
    if (name != NULL && r->multi)
        fprintf(stderr, "message %s: ", name);
    if (cmd != NULL && *cmd != '\0')
        fprintf(stderr, "%s: ", cmd);
    fprintf(stderr, "%s\n", msg);
}

void report_cli_error(struct cli_report *r, const struct cli_err *e)
{
    cli_outcome_note(&r->out, e->kind, true);
    if (r->json) {
        if (r->error == NULL)
            r->error = jo_cli_error(e);
        return;
    }
    report_human_error(r, NULL, NULL, e->msg);
    if (e->kind == SMTPC_ERR_USAGE)
        fprintf(stderr, "smtpc: see \"smtpc help\"\n");
}

void report_session_error(struct cli_report *r, const smtpc_error *e)
{
    smtpc_error_kind kind = smtpc_error_get_kind(e);
    /* A failure without a recorded error still fails the run. */
    cli_outcome_note(&r->out, kind == SMTPC_ERR_NONE ? SMTPC_ERR_IO : kind,
                     smtpc_error_permanent(e));
    if (r->json) {
        json_decref(r->error);
        r->error = jo_error(e);
        return;
    }
    report_human_error(r, NULL, smtpc_command_name(smtpc_error_command(e)),
                       smtpc_error_message(e));
}

void report_human_rcpt(const struct cli_report *r, const char *name, const char *addr,
                       bool accepted, const char *line)
{
    if (r->json)
        return;
    if (r->multi)
        printf("%-4s [%s] %s: %s\n", accepted ? "ok" : "FAIL", name, addr, line);
    else
        printf("%-4s %s: %s\n", accepted ? "ok" : "FAIL", addr, line);
}

/* Notes every recipient's result; returns true when all were accepted. */
static bool note_rcpts(struct cli_report *r, const char *name, const smtpc_message *m)
{
    bool all = true;
    for (size_t i = 0; i < smtpc_message_rcpt_count(m); i++) {
        const smtpc_error *res = smtpc_message_rcpt_result(m, i);
        bool acc = smtpc_message_rcpt_accepted(m, i);
        bool replied = res != NULL && smtpc_error_code(res) != 0;
        all = all && acc;
        /* A rejected recipient counts for the exit status with its own permanence;
         * one without a reply is covered by the message's error. */
        if (!acc && replied)
            cli_outcome_note(&r->out, SMTPC_ERR_STATUS, smtpc_error_permanent(res));
        report_human_rcpt(r, name, smtpc_message_rcpt(m, i), acc,
                          replied ? smtpc_error_line(res) : "no reply");
    }
    return all;
}

void report_message(struct cli_report *r, const char *name, const smtpc_message *m, int rc)
{
    const smtpc_error *e = smtpc_message_error(m);
    bool has_err = e != NULL && smtpc_error_get_kind(e) != SMTPC_ERR_NONE;
    bool ok = note_rcpts(r, name, m) && rc == 0 && !has_err;
    if (has_err) {
        cli_outcome_note(&r->out, smtpc_error_get_kind(e), smtpc_error_permanent(e));
        report_human_error(r, name, smtpc_command_name(smtpc_error_command(e)),
                           smtpc_error_message(e));
    } else if (!ok) {
        /* Not delivered to everyone, yet nothing above said why: still a failure. */
        cli_outcome_note(&r->out, SMTPC_ERR_STATUS, false);
        if (rc != 0)
            report_human_error(r, name, NULL, "message not delivered");
    }
    if (r->json)
        json_array_append_new(r->messages,
                              jo_message(ok, jo_error(e),
                                         jo_recipients(m, has_err && smtpc_error_permanent(e))));
}

void report_unsent(struct cli_report *r, const char *name, const struct cli_err *e,
                   const struct cli_strv *to)
{
    cli_outcome_note(&r->out, e->kind, true);
    if (r->json) {
        json_array_append_new(r->messages,
                              jo_message(false, jo_cli_error(e), jo_recipients_unsent(to, true)));
        return;
    }
    for (size_t i = 0; i < to->n; i++)
        report_human_rcpt(r, name, to->v[i], false, "message not sent");
    report_human_error(r, name, NULL, e->msg);
}

void report_snapshot(struct cli_report *r, const smtpc_session *s)
{
    if (!r->json)
        return;
    json_decref(r->server);
    json_decref(r->tls);
    json_decref(r->tlsrpt);
    r->server = jo_server(s);
    r->tls = jo_tls(s);
    r->tlsrpt = jo_tlsrpt(s);
}

static json_t *orempty(json_t *j, json_t *(*fallback)(const smtpc_session *))
{
    return j != NULL ? j : fallback(NULL);
}

static json_t *send_root(struct cli_report *r)
{
    return json_pack("{s:b, s:o, s:o, s:o, s:o, s:o}", "ok", !r->out.failed, "error",
                     r->error != NULL ? r->error : json_null(), "server",
                     orempty(r->server, jo_server), "tls", orempty(r->tls, jo_tls), "tlsrpt",
                     orempty(r->tlsrpt, jo_tlsrpt), "messages",
                     r->messages != NULL ? r->messages : json_array());
}

static json_t *deliver_root(struct cli_report *r)
{
    return json_pack("{s:b, s:o, s:o}", "ok", !r->out.failed, "error",
                     r->error != NULL ? r->error : json_null(), "domains",
                     r->domains != NULL ? r->domains : json_array());
}

/* The probe object, or its empty form when the probe never ran; "error"
 * only when there is one, so a normal result has exactly the contract's fields. */
static json_t *probe_root(struct cli_report *r)
{
    json_t *root = r->probe != NULL ? r->probe : jo_probe_empty(r->domain);
    if (r->error != NULL)
        json_object_set_new(root, "error", r->error);
    return root;
}

int report_finish(struct cli_report *r)
{
    int status = cli_outcome_status(&r->out);
    if (!r->json)
        return status;
    json_t *root = r->shape == CLI_REPORT_DELIVER ? deliver_root(r)
                   : r->shape == CLI_REPORT_PROBE ? probe_root(r)
                                                  : send_root(r);
    jo_print(root);
    json_decref(root);
    *r = (struct cli_report){0};
    return status;
}
