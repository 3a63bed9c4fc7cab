/* `smtpc deliver` through smtpc_deliver().
 *
 * Everything that can be found wrong locally (options, recipients' domains,
 * addresses, message files, DNS settings) is found before any lookup. Then
 * each message goes to each recipient domain in turn, one smtpc_deliver()
 * attempt per (message, domain), in the order given. An invalid message
 * (bare CR) is reported in the top-level error and not sent; the others
 * still are. */
#include "deliver.h"

#include "dcfg.h"
#include "envelope.h"
#include "group.h"
#include "msgfile.h"
#include "opts.h"
#include "report.h"
#include "smtpc.h"

struct drun {
    const struct cli_opts *o;
    struct cli_report *r;
    struct cli_msgfile *mf;
    size_t nmf;
    struct cli_groups groups;
    smtpc_deliver_config *dc;
};

/* RFC 8689 5: "TLS-Required: No" in the message, or --tls-required-no. With
 * REQUIRETLS the header field is ignored (RFC 8689 5 again). */
static unsigned deliver_flags(const struct cli_opts *o, const struct cli_msgfile *mf)
{
    if (o->requiretls)
        return 0;
    return o->tls_required_no || mf->tls_required_no ? SMTPC_DELIVER_TLS_REQUIRED_NO : 0;
}

static void deliver_one(struct drun *run, size_t msg, const struct cli_rcpt_group *g)
{
    struct cli_msgfile *mf = &run->mf[msg];
    struct cli_err err = {0};
    FILE *f = cli_msgfile_open(mf);
    smtpc_message *m = f != NULL ? cli_envelope(run->o->from, g->rcpt, g->n, &err) : NULL;
    if (m == NULL) {
        if (f == NULL)
            cli_err_set(&err, CLI_EX_CONFIG, "cannot reopen message %s", mf->path);
        report_cli_error(run->r, &err);
        cli_msgfile_close(mf, f);
        return;
    }
    smtpc_message_set_flags(m, cli_envelope_flags(run->o, g->rcpt, g->n) | mf->flags);
    smtpc_message_set_body_reader(m, cli_msgfile_read, f, mf->size);
    smtpc_message_set_body_rewind(m, cli_msgfile_rewind);
    smtpc_delivery *d = smtpc_deliver(run->dc, g->domain, m, deliver_flags(run->o, mf));
    if (d == NULL) {
        cli_err_set(&err, CLI_EX_CONFIG, "out of memory");
        report_cli_error(run->r, &err);
    } else {
        report_delivery(run->r, msg, mf->path, g->domain, m, d);
    }
    smtpc_delivery_free(d);
    smtpc_message_free(m);
    cli_msgfile_close(mf, f);
}

static void deliver_message(struct drun *run, size_t msg)
{
    struct cli_msgfile *mf = &run->mf[msg];
    if (mf->invalid) {
        struct cli_err err;
        cli_err_set(&err, CLI_EX_DATAERR, "invalid message %s: %s",
                    mf->path[0] == '-' && mf->path[1] == '\0' ? "(standard input)" : mf->path,
                    mf->why);
        report_cli_error(run->r, &err);
        return;
    }
    for (size_t i = 0; i < run->groups.n; i++)
        deliver_one(run, msg, &run->groups.g[i]);
}

/* The library's own check of every address, before anything goes out. */
static int check_envelope(const struct cli_opts *o, struct cli_err *err)
{
    smtpc_message *m = cli_envelope(o->from, o->to.v, o->to.n, err);
    smtpc_message_free(m);
    return m != NULL ? 0 : -1;
}

static void run_deliver(struct drun *run)
{
    struct cli_err err = {0};
    const struct cli_opts *o = run->o;
    if (cli_group_by_domain(o->to.v, o->to.n, &run->groups, &err) != 0 ||
        check_envelope(o, &err) != 0 ||
        cli_msgfiles_scan(o->messages.v, o->messages.n, &run->mf, &run->nmf, &err) != 0 ||
        (run->dc = cli_build_deliver_config(o, true, &err)) == NULL) {
        report_cli_error(run->r, &err);
        return;
    }
    run->r->multi = run->nmf > 1;
    for (size_t i = 0; i < run->nmf; i++)
        deliver_message(run, i);
}

int cli_deliver_main(int argc, char **argv)
{
    struct cli_report r;
    struct cli_opts o;
    struct cli_err err = {0};
    report_init_shape(&r, cli_argv_has_json(argc, argv), CLI_REPORT_DELIVER);
    if (cli_opts_parse(&o, argc, argv, &err) != 0) {
        report_cli_error(&r, &err);
    } else if (o.help) {
        cli_opts_usage_cmd(r.json ? stderr : stdout, CLI_CMD_DELIVER);
    } else {
        struct drun run = {.o = &o, .r = &r};
        run_deliver(&run);
        smtpc_deliver_config_free(run.dc);
        cli_groups_free(&run.groups);
        cli_msgfiles_free(run.mf, run.nmf);
    }
    cli_opts_free(&o);
    return report_finish(&r);
}
