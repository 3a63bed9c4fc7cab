/* `smtpc send` through the blocking library API.
 *
 * Everything that can be found wrong locally (options, files, addresses,
 * DANE records) is found before connecting. Then: connect, open (greeting,
 * EHLO, TLS, AUTH), one transaction per message, QUIT. `send` never retries
 * on a new connection. */
#include "send.h"

#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "envelope.h"
#include "msgfile.h"
#include "opts.h"
#include "report.h"
#include "smtpc.h"

struct run {
    const struct cli_opts *o;
    struct cli_report *r;
    struct cli_msgfile *mf;
    size_t nmf;
    unsigned flags; /* for every message */
};

/* The envelope with every --to recipient. */
static smtpc_message *envelope(const struct cli_opts *o, struct cli_err *err)
{
    return cli_envelope(o->from, o->to.v, o->to.n, err);
}

static int scan_messages(struct run *run, struct cli_err *err)
{
    const struct cli_strv *paths = &run->o->messages;
    return cli_msgfiles_scan(paths->v, paths->n, &run->mf, &run->nmf, err);
}

static void send_one(struct run *run, smtpc_session *s, struct cli_msgfile *mf)
{
    struct cli_err err = {0};
    if (mf->invalid) {
        cli_err_set(&err, CLI_EX_DATAERR, "invalid message: %s", mf->why);
        report_unsent(run->r, mf->path, &err, &run->o->to);
        return;
    }
    FILE *f = cli_msgfile_open(mf);
    smtpc_message *m = f != NULL ? envelope(run->o, &err) : NULL;
    if (m == NULL) {
        if (f == NULL)
            cli_err_set(&err, CLI_EX_CONFIG, "cannot reopen message %s", mf->path);
        report_unsent(run->r, mf->path, &err, &run->o->to);
        cli_msgfile_close(mf, f);
        return;
    }
    smtpc_message_set_flags(m, run->flags | mf->flags);
    smtpc_message_set_body_reader(m, cli_msgfile_read, f, mf->size);
    smtpc_message_set_body_rewind(m, cli_msgfile_rewind);
    int rc = smtpc_send(s, m);
    report_message(run->r, mf->path, m, rc);
    smtpc_message_free(m);
    cli_msgfile_close(mf, f);
}

static void session(struct run *run, smtpc_session *s)
{
    const struct cli_opts *o = run->o;
    if (smtpc_connect(s, o->host, o->port) != 0 || smtpc_open(s) != 0) {
        report_session_error(run->r, smtpc_session_error(s));
    } else {
        for (size_t i = 0; i < run->nmf; i++)
            send_one(run, s, &run->mf[i]);
    }
    report_snapshot(run->r, s);
    /* A failed QUIT after the transactions does not change the outcome. */
    smtpc_quit(s);
}

/* Local checks, then the session. */
static void run_send(struct run *run)
{
    struct cli_err err = {0};
    smtpc_message *probe = NULL;
    smtpc_config *cfg = NULL;
    if (scan_messages(run, &err) != 0 || (probe = envelope(run->o, &err)) == NULL ||
        (cfg = cli_build_config(run->o, &err)) == NULL) {
        report_cli_error(run->r, &err);
        smtpc_message_free(probe);
        return;
    }
    smtpc_message_free(probe);
    smtpc_session *s = smtpc_session_new(cfg);
    smtpc_config_free(cfg);
    if (s == NULL) {
        cli_err_set(&err, CLI_EX_CONFIG, "out of memory");
        report_cli_error(run->r, &err);
        return;
    }
    run->flags = cli_envelope_flags(run->o, run->o->to.v, run->o->to.n);
    run->r->multi = run->nmf > 1;
    session(run, s);
    smtpc_session_free(s);
}

int cli_send_main(int argc, char **argv)
{
    struct cli_report r;
    struct cli_opts o;
    struct cli_err err = {0};
    report_init(&r, cli_argv_has_json(argc, argv));
    if (cli_opts_parse(&o, argc, argv, &err) != 0) {
        report_cli_error(&r, &err);
    } else if (o.help) {
        cli_opts_usage(r.json ? stderr : stdout);
    } else {
        struct run run = {.o = &o, .r = &r};
        run_send(&run);
        cli_msgfiles_free(run.mf, run.nmf);
    }
    cli_opts_free(&o);
    return report_finish(&r);
}
