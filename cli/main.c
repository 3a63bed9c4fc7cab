/* smtpc: the command-line tool. Dispatches to a subcommand: `send` (one
 * server, one session), `deliver` (direct delivery: MX lookup, DANE,
 * MTA-STS) and `probe` (what delivery to a domain would find). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "clierr.h"
#include "deliver.h"
#include "opts.h"
#include "probe.h"
#include "report.h"
#include "send.h"
#include "smtpc.h"

struct subcommand {
    const char *name;
    int (*main)(int argc, char **argv);
    enum cli_cmd cmd;
    const char *summary;
};

static const struct subcommand subcommands[] = {
    {"send", cli_send_main, CLI_CMD_SEND,
     "submit or relay messages to one server over one session"},
    {"deliver", cli_deliver_main, CLI_CMD_DELIVER,
     "deliver directly to the recipients' domains (MX, DANE, MTA-STS)"},
    {"probe", cli_probe_main, CLI_CMD_PROBE,
     "show what delivery to a domain would find, without sending mail"},
};
#define NSUB (sizeof subcommands / sizeof subcommands[0])

static void usage(FILE *f)
{
    fputs("usage: smtpc COMMAND [options]\n       smtpc --version\n       smtpc help [COMMAND]\n"
          "commands:\n",
          f);
    for (size_t i = 0; i < NSUB; i++)
        fprintf(f, "  %-8s %s\n", subcommands[i].name, subcommands[i].summary);
}

static int help(int argc, char **argv)
{
    for (size_t i = 0; argc > 2 && i < NSUB; i++) {
        if (strcmp(argv[2], subcommands[i].name) == 0) {
            cli_opts_usage_cmd(stdout, subcommands[i].cmd);
            return CLI_EX_OK;
        }
    }
    usage(stdout);
    return CLI_EX_OK;
}

/* An unknown command is a usage error; with --json still one JSON object. */
static int bad_command(int argc, char **argv, const char *what)
{
    struct cli_report r;
    struct cli_err err;
    report_init(&r, cli_argv_has_json(argc, argv));
    cli_err_set(&err, CLI_EX_USAGE, "%s", what);
    report_cli_error(&r, &err);
    if (!r.json)
        usage(stderr);
    return report_finish(&r);
}

int main(int argc, char **argv)
{
    /* A server closing the connection must surface as an io error from the
     * library, not kill the process while it writes. */
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2)
        return bad_command(argc, argv, "missing command");
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("smtpc %s\n", SMTPC_VERSION);
        return CLI_EX_OK;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0)
        return help(argc, argv);
    for (size_t i = 0; i < NSUB; i++)
        if (strcmp(cmd, subcommands[i].name) == 0)
            return subcommands[i].main(argc - 1, argv + 1);
    char what[128];
    snprintf(what, sizeof what, "unknown command \"%.80s\"", cmd);
    return bad_command(argc, argv, what);
}
