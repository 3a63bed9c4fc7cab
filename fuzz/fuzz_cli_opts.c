/* The command line of `smtpc send|deliver|probe` (cli/opts.c) and its
 * --json usage-error path (cli/report.c, cli/json_out.c).
 *
 * Input: byte 0 picks the subcommand (send, deliver, probe, or the first
 * argument itself), the rest is the argument list, NUL-separated.
 * Invariants: never crashes; an error is a usage (64) or configuration
 * (78) error with a message; a success has a checked envelope (addresses
 * without control characters, spec Q19); with --json the error is one valid JSON
 * object; the exposed checkers agree with the address rule. */
#include "fuzz.h"

#include <jansson.h>
#include <stdbool.h>

#include "clierr.h"
#include "json_out.h"
#include "opts.h"
#include "report.h"

#define MAX_ARGS 64

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* report_finish prints the JSON object; keep the fuzzer's output clean */
    if (freopen("/dev/null", "w", stdout) == NULL)
        abort();
    return 0;
}

static bool address_clean(const char *a)
{
    for (const unsigned char *p = (const unsigned char *)a; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

static void check_json_error(const struct cli_err *err)
{
    json_t *j = jo_cli_error(err);
    FZ_ASSERT(j != NULL);
    char *s = json_dumps(j, JSON_COMPACT);
    FZ_ASSERT(s != NULL);
    json_error_t e;
    json_t *back = json_loads(s, 0, &e);
    FZ_ASSERT(back != NULL && json_is_object(back));
    json_decref(back);
    free(s);
    json_decref(j);
}

static void check_success(const struct cli_opts *o)
{
    FZ_ASSERT(fz_bounded_str(o->host, sizeof o->host - 1));
    if (o->help)
        return;
    FZ_ASSERT(o->port > 0);
    if (o->cmd == CLI_CMD_PROBE) {
        FZ_ASSERT(o->domain != NULL && o->domain[0] != '\0');
        return;
    }
    FZ_ASSERT(o->from != NULL && address_clean(o->from));
    FZ_ASSERT(o->to.n > 0);
    for (size_t i = 0; i < o->to.n; i++)
        FZ_ASSERT(o->to.v[i][0] != '\0' && address_clean(o->to.v[i]));
    if (o->cmd == CLI_CMD_SEND)
        FZ_ASSERT(o->server_set && o->host[0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const cmds[] = {"send", "deliver", "probe"};
    fz_in in = {data, size};
    uint8_t which = fz_u8(&in);
    char *buf = fz_strndup(in.p, in.n);
    char *argv[MAX_ARGS + 2];
    int argc = 0;
    if (which % 4 < 3)
        argv[argc++] = (char *)cmds[which % 4];
    for (size_t off = 0; off < in.n && argc < MAX_ARGS;) {
        argv[argc++] = buf + off;
        off += strlen(buf + off) + 1;
    }
    if (argc == 0)
        argv[argc++] = (char *)"send";
    argv[argc] = NULL;
    /* getopt permutes argv: keep a copy of the pointers for the checks */
    char *orig[MAX_ARGS + 2];
    memcpy(orig, argv, sizeof orig);

    struct cli_opts o;
    struct cli_err err;
    memset(&err, 0, sizeof err);
    bool json = cli_argv_has_json(argc, argv);
    int rc = cli_opts_parse(&o, argc, argv, &err);
    if (rc != 0) {
        FZ_ASSERT(rc == -1);
        FZ_ASSERT(err.status == CLI_EX_USAGE || err.status == CLI_EX_CONFIG);
        FZ_ASSERT(err.kind == SMTPC_ERR_USAGE || err.kind == SMTPC_ERR_CONFIG);
        FZ_ASSERT(err.msg[0] != '\0' && fz_bounded_str(err.msg, sizeof err.msg - 1));
        check_json_error(&err);
        struct cli_report r;
        report_init(&r, json);
        report_cli_error(&r, &err);
        if (json) /* prints one JSON object (to /dev/null here) */
            FZ_ASSERT(report_finish(&r) == err.status);
    } else {
        check_success(&o);
    }
    cli_opts_free(&o);

    /* the exposed checkers, on every argument */
    for (int i = 0; i < argc; i++) {
        struct cli_err e2;
        int ms = 0;
        if (cli_check_address(orig[i], true, &e2) == 0)
            FZ_ASSERT(address_clean(orig[i]));
        (void)cli_parse_timeout(orig[i], &ms, &e2);
        FZ_ASSERT(ms >= 0);
        (void)cli_check_dns_server(orig[i], &e2);
        struct cli_opts o2;
        memset(&o2, 0, sizeof o2);
        if (cli_parse_server(&o2, orig[i], &e2) == 0)
            FZ_ASSERT(o2.host[0] != '\0' && fz_bounded_str(o2.host, sizeof o2.host - 1));
    }
    free(buf);
    return 0;
}
