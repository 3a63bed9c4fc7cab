/* smtpc: the command-line tool. Dispatches to a subcommand.
 * `send` exists now; `deliver` (MX lookup, DANE, MTA-STS) and `probe` come later. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "clierr.h"
#include "opts.h"
#include "report.h"
#include "send.h"
#include "smtpc.h"

struct subcommand {
    const char *name;
    int (*main)(int argc, char **argv);
    const char *summary;
};

static const struct subcommand subcommands[] = {
    {"send", cli_send_main, "submit or relay messages to one server over one session"},
};

static void usage(FILE *f)
{
    fputs("usage: smtpc COMMAND [options]\n       smtpc --version\n       smtpc help [COMMAND]\n"
          "commands:\n",
          f);
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        fprintf(f, "  %-8s %s\n", subcommands[i].name, subcommands[i].summary);
}

static int help(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[2], "send") == 0) {
        cli_opts_usage(stdout);
        return CLI_EX_OK;
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
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        if (strcmp(cmd, subcommands[i].name) == 0)
            return subcommands[i].main(argc - 1, argv + 1);
    char what[128];
    snprintf(what, sizeof what, "unknown command \"%.80s\"", cmd);
    return bad_command(argc, argv, what);
}
