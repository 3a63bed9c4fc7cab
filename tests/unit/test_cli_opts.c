/* Unit tests for the `smtpc send` option parser (cli/opts.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "../../cli/opts.h"

#define MAXARGS 40

/* Parses a NULL-terminated list; argv[0] is "send". Returns 0 or the status. */
static int parse(const char *const *args, struct cli_opts *o, struct cli_err *err)
{
    char *argv[MAXARGS + 1];
    int argc = 0;
    argv[argc++] = (char *)"send";
    for (; args[argc - 1] != NULL && argc < MAXARGS; argc++)
        argv[argc] = (char *)args[argc - 1];
    assert_null(args[argc - 1]); /* the table fits */
    argv[argc] = NULL;
    memset(err, 0, sizeof *err);
    return cli_opts_parse(o, argc, argv, err) == 0 ? 0 : err->status;
}

#define BASE "--from", "a@example.org", "--to", "b@example.net"

/* --server forms: host, port after defaults, status. */
static const struct {
    const char *server;
    const char *tls;
    const char *host;
    int port;
    int status;
} servers[] = {
    {"mail.example", NULL, "mail.example", 587, 0},
    {"mail.example", "immediate", "mail.example", 465, 0},
    {"mail.example", "opportunistic", "mail.example", 587, 0},
    {"mail.example", "none", "mail.example", 587, 0},
    {"mail.example:25", NULL, "mail.example", 25, 0},
    {"mail.example:25", "immediate", "mail.example", 25, 0},
    {"192.0.2.1:2525", NULL, "192.0.2.1", 2525, 0},
    {"192.0.2.1", "immediate", "192.0.2.1", 465, 0},
    {"[::1]", NULL, "::1", 587, 0},
    {"[::1]:465", NULL, "::1", 465, 0},
    {"[2001:db8::25]:10025", "immediate", "2001:db8::25", 10025, 0},
    {"[::ffff:192.0.2.1]:25", NULL, "::ffff:192.0.2.1", 25, 0},
    {"2001:db8::1", NULL, "2001:db8::1", 587, 0}, /* bare IPv6: no port possible */
    {"localhost:65535", NULL, "localhost", 65535, 0},
    {"localhost:0", NULL, NULL, 0, CLI_EX_CONFIG},
    {"localhost:65536", NULL, NULL, 0, CLI_EX_CONFIG},
    {"localhost:", NULL, NULL, 0, CLI_EX_CONFIG},
    {"localhost:2x", NULL, NULL, 0, CLI_EX_CONFIG},
    {"localhost:+25", NULL, NULL, 0, CLI_EX_CONFIG},
    {":25", NULL, NULL, 0, CLI_EX_CONFIG},
    {"", NULL, NULL, 0, CLI_EX_CONFIG},
    {"[::1", NULL, NULL, 0, CLI_EX_CONFIG},
    {"[::1]25", NULL, NULL, 0, CLI_EX_CONFIG},
    {"[::1]:", NULL, NULL, 0, CLI_EX_CONFIG},
    {"[]:25", NULL, NULL, 0, CLI_EX_CONFIG},
    {"[mail.example]:25", NULL, NULL, 0, CLI_EX_CONFIG},
    {"mail example", NULL, NULL, 0, CLI_EX_CONFIG},
    {"mail.example", "bogus", NULL, 0, CLI_EX_CONFIG},
};

static void test_server_forms(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof servers / sizeof servers[0]; i++) {
        struct cli_opts o;
        struct cli_err err;
        const char *tls = servers[i].tls;
        const char *args[] = {BASE, "--server", servers[i].server,
                              tls ? "--tls" : NULL, tls, NULL};
        int st = parse(args, &o, &err);
        print_message("server %s tls %s\n", servers[i].server, tls ? tls : "-");
        assert_int_equal(st, servers[i].status);
        if (st == 0) {
            assert_string_equal(o.host, servers[i].host);
            assert_int_equal(o.port, servers[i].port);
        } else {
            assert_int_equal(err.kind, SMTPC_ERR_CONFIG);
            assert_string_equal(cli_err_kind_name(&err), "config");
        }
        cli_opts_free(&o);
    }
}

/* --tls after --server must still change the default port. */
static void test_port_default_order(void **state)
{
    (void)state;
    struct cli_opts o;
    struct cli_err err;
    const char *a[] = {"--tls", "immediate", BASE, "--server", "h", NULL};
    assert_int_equal(parse(a, &o, &err), 0);
    assert_int_equal(o.port, 465);
    assert_int_equal(o.tls, SMTPC_TLS_IMMEDIATE);
    cli_opts_free(&o);
    const char *b[] = {"--server", "h", BASE, "--tls", "IMMEDIATE", NULL};
    assert_int_equal(parse(b, &o, &err), 0);
    assert_int_equal(o.port, 465);
    cli_opts_free(&o);
}

static void test_defaults(void **state)
{
    (void)state;
    struct cli_opts o;
    struct cli_err err;
    const char *a[] = {"--server", "h", BASE, NULL};
    assert_int_equal(parse(a, &o, &err), 0);
    assert_int_equal(o.tls, SMTPC_TLS_STARTTLS);
    assert_true(o.tls_verify_pkix);
    assert_false(o.tls_verify_explicit);
    assert_false(o.ignore_tls_errors || o.insecure_auth || o.json || o.trace);
    assert_false(o.require_8bitmime || o.require_smtputf8 || o.requiretls || o.no_pipelining);
    assert_null(o.ehlo);
    assert_null(o.auth);
    assert_null(o.ca_file);
    assert_int_equal(o.timeout_ms, 0);
    assert_int_equal(o.messages.n, 0);
    assert_int_equal(o.dane.n, 0);
    assert_string_equal(o.from, "a@example.org");
    assert_int_equal(o.to.n, 1);
    assert_string_equal(o.to.v[0], "b@example.net");
    cli_opts_free(&o);
}

static void test_repeatables_and_flags(void **state)
{
    (void)state;
    struct cli_opts o;
    struct cli_err err;
    const char *a[] = {"--server", "h", "--from", "", "--to", "x@a", "--to", "y@b",
                       "-m", "m1", "--message", "m2", "-m", "-", "--to", "z@c",
                       "--dane", "3 1 1 AbCd", "--dane", "2 0 1 00ff",
                       "--dane-name", "n1.example", "--dane-name", "n2.example", NULL};
    assert_int_equal(parse(a, &o, &err), 0);
    assert_string_equal(o.from, "");
    assert_int_equal(o.to.n, 3);
    assert_string_equal(o.to.v[2], "z@c");
    assert_int_equal(o.messages.n, 3);
    assert_string_equal(o.messages.v[0], "m1");
    assert_string_equal(o.messages.v[1], "m2");
    assert_string_equal(o.messages.v[2], "-");
    assert_int_equal(o.dane.n, 2);
    assert_string_equal(o.dane.v[1], "2 0 1 00ff");
    assert_int_equal(o.dane_names.n, 2);
    cli_opts_free(&o);

    const char *b[] = {"--server", "h", BASE, "--ignore-tls-errors", "--insecure-auth",
                       "--require-8bitmime", "--require-smtputf8", "--requiretls",
                       "--no-pipelining", "--trace", "--json", "--tls-verify", "none",
                       "--ehlo", "client.example", "--tls-name", "mx.example", NULL};
    assert_int_equal(parse(b, &o, &err), 0);
    assert_true(o.ignore_tls_errors && o.insecure_auth && o.require_8bitmime);
    assert_true(o.require_smtputf8 && o.requiretls && o.no_pipelining && o.trace && o.json);
    assert_false(o.tls_verify_pkix);
    assert_true(o.tls_verify_explicit);
    assert_string_equal(o.ehlo, "client.example");
    assert_string_equal(o.tls_name, "mx.example");
    cli_opts_free(&o);
}

static void test_auth(void **state)
{
    (void)state;
    struct cli_opts o;
    struct cli_err err;
    const char *a[] = {"--server", "h", BASE, "--auth", "scram-sha-256-plus", "--user", "u",
                       "--password-file", "/p", NULL};
    assert_int_equal(parse(a, &o, &err), 0);
    assert_string_equal(o.auth, "SCRAM-SHA-256-PLUS");
    assert_string_equal(o.password_file, "/p");
    cli_opts_free(&o);
    const char *b[] = {"--server", "h", BASE, "--user", "u", NULL};
    assert_int_equal(parse(b, &o, &err), 0);
    assert_string_equal(o.auth, "auto"); /* --user alone means --auth auto */
    cli_opts_free(&o);
    const char *c[] = {"--server", "h", BASE, "--auth", "oauthbearer", "--oauth-token-file",
                       "/t", NULL};
    assert_int_equal(parse(c, &o, &err), 0);
    assert_string_equal(o.auth, "OAUTHBEARER");
    cli_opts_free(&o);
}

static const struct {
    const char *value;
    int ms;
} timeouts[] = {
    {"30", 30000}, {"1.5", 1500}, {"0.0001", 1}, {"2147483", 2147483000},
    {"0", -1},     {"-1", -1},    {"abc", -1},   {"", -1},
    {"5s", -1},    {"nan", -1},   {"inf", -1},   {"2147484", -1},
};

static void test_timeout(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof timeouts / sizeof timeouts[0]; i++) {
        struct cli_opts o;
        struct cli_err err;
        const char *a[] = {"--server", "h", BASE, "--timeout", timeouts[i].value, NULL};
        int st = parse(a, &o, &err);
        print_message("timeout %s\n", timeouts[i].value);
        if (timeouts[i].ms < 0) {
            assert_int_equal(st, CLI_EX_CONFIG);
        } else {
            assert_int_equal(st, 0);
            assert_int_equal(o.timeout_ms, timeouts[i].ms);
        }
        cli_opts_free(&o);
    }
}

/* Whole command lines that must fail, and how. */
static const struct {
    const char *args[12];
    int status;
} failures[] = {
    /* usage: unknown, missing, malformed */
    {{"--server", "h", BASE, "--bogus", NULL}, CLI_EX_USAGE},
    {{"--server", "h", BASE, "-x", NULL}, CLI_EX_USAGE},
    {{"--server", "h", BASE, "--json=yes", NULL}, CLI_EX_USAGE},
    {{"--server", "h", BASE, "--to", NULL}, CLI_EX_USAGE},
    {{"--server", "h", BASE, "-m", NULL}, CLI_EX_USAGE},
    {{"--server", "h", BASE, "stray", NULL}, CLI_EX_USAGE},
    {{"--server", "h", "--to", "b@x", NULL}, CLI_EX_USAGE},
    {{"--server", "h", "--from", "a@x", NULL}, CLI_EX_USAGE},
    {{BASE, NULL}, CLI_EX_USAGE},
    {{"--server", "h", BASE, "--to", "c\r\n@x", NULL}, CLI_EX_USAGE},
    {{"--server", "h", "--from", "a\n@x", "--to", "b@x", NULL}, CLI_EX_USAGE},
    {{"--server", "h", "--from", "a\r@x", "--to", "b@x", NULL}, CLI_EX_USAGE},
    {{"--server", "h", "--from", "a@x", "--to", "b\t@x", NULL}, CLI_EX_USAGE},
    {{"--server", "h", "--from", "a@x", "--to", "b\x7f@x", NULL}, CLI_EX_USAGE},
    {{"--server", "h", "--from", "a@x", "--to", "", NULL}, CLI_EX_USAGE},
    {{"--server", "h", BASE, "--client-cert", "c.pem", NULL}, CLI_EX_USAGE},
    {{"--server", "h", BASE, "--client-key", "k.pem", NULL}, CLI_EX_USAGE},
    {{"--server", "h", BASE, "--auth", "PLAIN", NULL}, CLI_EX_USAGE},
    {{"--server", "h", BASE, "--password-file", "/p", NULL}, CLI_EX_USAGE},
    {{"--server", "h", BASE, "-m", "-", "-m", "-", NULL}, CLI_EX_USAGE},
    /* config: bad values */
    {{"--server", "h", BASE, "--tls", "yes", NULL}, CLI_EX_CONFIG},
    {{"--server", "h", BASE, "--tls-verify", "dane", NULL}, CLI_EX_CONFIG},
    {{"--server", "h", BASE, "--auth", "NTLM", "--user", "u", NULL}, CLI_EX_CONFIG},
    {{"--server", "h", BASE, "--dane", "3 1 1", NULL}, CLI_EX_CONFIG},
    {{"--server", "h", BASE, "--dane", "3 1 1 abc", NULL}, CLI_EX_CONFIG},
    {{"--server", "h", BASE, "--dane", "3 1 1 zz", NULL}, CLI_EX_CONFIG},
    {{"--server", "h", BASE, "--dane", "256 1 1 ab", NULL}, CLI_EX_CONFIG},
    {{"--server", "h", BASE, "--dane", "3 1 1 ab cd x", NULL}, CLI_EX_CONFIG},
    {{"--server", "h", BASE, "--dane-name", "a b", NULL}, CLI_EX_CONFIG},
    {{"--server", "h", BASE, "--ehlo", "my host", NULL}, CLI_EX_CONFIG},
    {{"--server", "h", BASE, "--ehlo", "", NULL}, CLI_EX_CONFIG},
    {{"--server", "h", BASE, "--ca-file", "", NULL}, CLI_EX_CONFIG},
    {{"--server", "h", BASE, "-m", "", NULL}, CLI_EX_CONFIG},
    {{"--server", "h:99999", BASE, NULL}, CLI_EX_CONFIG},
};

static void test_failures(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof failures / sizeof failures[0]; i++) {
        struct cli_opts o;
        struct cli_err err;
        print_message("failure case %zu\n", i);
        int st = parse(failures[i].args, &o, &err);
        assert_int_equal(st, failures[i].status);
        assert_int_equal(err.kind, st == CLI_EX_USAGE ? SMTPC_ERR_USAGE : SMTPC_ERR_CONFIG);
        assert_true(err.msg[0] != '\0');
        cli_opts_free(&o);
    }
}

static void test_help_skips_checks(void **state)
{
    (void)state;
    struct cli_opts o;
    struct cli_err err;
    const char *a[] = {"--help", NULL};
    assert_int_equal(parse(a, &o, &err), 0);
    assert_true(o.help);
    cli_opts_free(&o);
    const char *b[] = {"-h", "--bogus", NULL};
    assert_int_equal(parse(b, &o, &err), CLI_EX_USAGE);
    cli_opts_free(&o);
}

static void test_has_json(void **state)
{
    (void)state;
    char *a[] = {"send", "--server", "h", "--json", NULL};
    char *b[] = {"send", "--server", "h", "--jsonx", NULL};
    char *c[] = {"send", "--", "--json", NULL};
    assert_true(cli_argv_has_json(4, a));
    assert_false(cli_argv_has_json(4, b));
    assert_false(cli_argv_has_json(3, c));
}

static void test_check_address(void **state)
{
    (void)state;
    struct cli_err err;
    assert_int_equal(cli_check_address("", true, &err), 0);
    assert_int_equal(cli_check_address("", false, &err), -1);
    assert_int_equal(cli_check_address("j\xc3\xb6rg@b\xc3\xbc.example", false, &err), 0);
    assert_int_equal(cli_check_address("a\x01@b", false, &err), -1);
    assert_int_equal(err.status, CLI_EX_USAGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_forms),
        cmocka_unit_test(test_port_default_order),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_repeatables_and_flags),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_help_skips_checks),
        cmocka_unit_test(test_has_json),
        cmocka_unit_test(test_check_address),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
