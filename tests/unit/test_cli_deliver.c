/* Unit tests for the pure parts of `smtpc deliver` and `smtpc probe`:
 * recipient grouping (cli/group.c), the message scanner's "TLS-Required: No"
 * detection (cli/msgfile.c), option parsing of deliver and probe including
 * --dns values (cli/opts.c), probe verdicts (cli/verdict.c) and the state
 * directory (cli/statedir.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../cli/group.h"
#include "../../cli/msgfile.h"
#include "../../cli/opts.h"
#include "../../cli/statedir.h"
#include "../../cli/verdict.h"

/* ------------------------------------------------------------------ */
/* Recipient grouping                                                  */
/* ------------------------------------------------------------------ */

/* Each case: the --to list, then the expected groups as "domain:i,j,..."
 * (indices into the list), in order. NULL-terminated. */
static const struct {
    const char *to[8];
    const char *groups[8];
} groupings[] = {
    {{"a@example.net", NULL}, {"example.net:0", NULL}},
    /* first-seen order, recipients in the order given */
    {{"a@x.test", "b@y.test", "c@x.test", "d@z.test", "e@y.test", NULL},
     {"x.test:0,2", "y.test:1,4", "z.test:3", NULL}},
    /* case-insensitive domains, lower-cased; local parts untouched */
    {{"A@Example.NET", "b@example.net", "C@EXAMPLE.net", NULL}, {"example.net:0,1,2", NULL}},
    /* address literals are their own groups, never merged with a name */
    {{"a@[192.0.2.1]", "b@example.net", "c@[192.0.2.1]", "d@[192.0.2.2]", NULL},
     {"[192.0.2.1]:0,2", "example.net:1", "[192.0.2.2]:3", NULL}},
    /* a literal keeps its spelling, compared without case */
    {{"a@[IPv6:2001:DB8::1]", "b@[ipv6:2001:db8::1]", NULL}, {"[IPv6:2001:DB8::1]:0,1", NULL}},
    /* the domain is after the last '@' (quoted local part) */
    {{"\"x@y\"@example.net", "z@example.net", NULL}, {"example.net:0,1", NULL}},
    /* duplicates are kept */
    {{"a@x.test", "a@x.test", NULL}, {"x.test:0,1", NULL}},
    /* UTF-8 domains: bytes >= 0x80 untouched, ASCII lower-cased */
    {{"a@B\xc3\xbc" "cher.TEST", "b@b\xc3\xbc" "cher.test", NULL},
     {"b\xc3\xbc" "cher.test:0,1", NULL}},
};

static void check_group(const struct cli_rcpt_group *g, const char *want, const char *const *to)
{
    const char *colon = strrchr(want, ':');
    assert_non_null(colon);
    assert_int_equal(strlen(g->domain), (size_t)(colon - want));
    assert_memory_equal(g->domain, want, (size_t)(colon - want));
    size_t k = 0;
    for (const char *p = colon + 1; *p; k++) {
        char *end;
        long idx = strtol(p, &end, 10);
        assert_true(k < g->n);
        assert_ptr_equal(g->rcpt[k], to[idx]); /* borrowed, not copied */
        p = *end == ',' ? end + 1 : end;
    }
    assert_int_equal(k, g->n);
}

static void test_grouping(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof groupings / sizeof groupings[0]; i++) {
        const char *const *to = groupings[i].to;
        size_t n = 0, ng = 0;
        while (to[n] != NULL)
            n++;
        while (groupings[i].groups[ng] != NULL)
            ng++;
        struct cli_groups gs;
        struct cli_err err = {0};
        print_message("grouping case %zu\n", i);
        assert_int_equal(cli_group_by_domain(to, n, &gs, &err), 0);
        assert_int_equal(gs.n, ng);
        for (size_t k = 0; k < ng; k++)
            check_group(&gs.g[k], groupings[i].groups[k], to);
        cli_groups_free(&gs);
        assert_null(gs.g);
    }
}

static void test_grouping_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "postmaster", "a@", "@example.net", "a@[192.0.2.1", "a@[]", "a@exa[mple.net",
        "a@[1.2.3.4]x", "a@[[1.2.3.4]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *to[] = {"ok@example.net", bad[i]};
        struct cli_groups gs;
        struct cli_err err = {0};
        print_message("bad recipient %s\n", bad[i]);
        assert_int_equal(cli_group_by_domain(to, 2, &gs, &err), -1);
        assert_int_equal(err.status, CLI_EX_USAGE);
        assert_null(gs.g); /* freed on failure */
        assert_non_null(strstr(err.msg, bad[i]));
    }
}

/* Many recipients over few domains: groups grow past their first allocation. */
static void test_grouping_many(void **state)
{
    (void)state;
    enum { N = 1000 };
    static char buf[N][32];
    const char *to[N];
    for (size_t i = 0; i < N; i++) {
        snprintf(buf[i], sizeof buf[i], "u%zu@D%zu.test", i, i % 3);
        to[i] = buf[i];
    }
    struct cli_groups gs;
    struct cli_err err = {0};
    assert_int_equal(cli_group_by_domain(to, N, &gs, &err), 0);
    assert_int_equal(gs.n, 3);
    assert_string_equal(gs.g[1].domain, "d1.test");
    assert_int_equal(gs.g[0].n + gs.g[1].n + gs.g[2].n, N);
    assert_ptr_equal(gs.g[2].rcpt[gs.g[2].n - 1], to[N - 2]);
    cli_groups_free(&gs);
}

/* ------------------------------------------------------------------ */
/* "TLS-Required: No" (RFC 8689 5)                                     */
/* ------------------------------------------------------------------ */

static const struct {
    const char *msg;
    bool want;
} tlsreq[] = {
    {"TLS-Required: No\r\nSubject: x\r\n\r\nbody\r\n", true},
    {"Subject: x\r\nTLS-Required: No\r\n\r\nbody\r\n", true},
    {"Subject: x\nTLS-Required: No\n\nbody\n", true},              /* bare LF */
    {"tls-required: no\r\n\r\n", true},                            /* case */
    {"TLS-REQUIRED: NO\r\n\r\n", true},
    {"Tls-Required:no\r\n\r\n", true},                             /* no space */
    {"TLS-Required:   No   \r\n\r\n", true},                       /* whitespace */
    {"TLS-Required:\tNo\t\r\n\r\n", true},
    {"TLS-Required:\r\n No\r\n\r\n", true},                        /* folded */
    {"TLS-Required:\r\n\tno\r\n\r\nbody\r\n", true},
    {"TLS-Required: \r\n  \r\n  No\r\n\r\n", true},                /* folded twice */
    {"TLS-Required: No\r\n continued\r\n\r\n", false},             /* a second word */
    {"TLS-Required : No\r\n\r\n", true},                           /* RFC 5322 4.5 obs WSP */
    {"Subject: x\r\nTLS-Required: No", true},                      /* ends in the header */
    {"TLS-Required: No\r\n", true},                                /* no body at all */
    {"TLS-Required: Yes\r\n\r\n", false},
    {"TLS-Required: Nope\r\n\r\n", false},
    {"TLS-Required: N\r\n\r\n", false},
    {"TLS-Required: No thanks\r\n\r\n", false},
    {"TLS-Required: \"No\"\r\n\r\n", false},
    {"TLS-Required:\r\n\r\nNo\r\n", false},                        /* the value is empty */
    {"X-TLS-Required: No\r\n\r\n", false},
    {"TLS-Required-X: No\r\n\r\n", false},
    {"TLS-Require: No\r\n\r\n", false},
    {"TLS -Required: No\r\n\r\n", false},
    {"Subject: TLS-Required: No\r\n\r\n", false},                  /* inside another field */
    {"Subject: x\r\n TLS-Required: No\r\n\r\n", false},            /* a continuation line */
    {"Subject: x\r\n\r\nTLS-Required: No\r\n", false},             /* in the body */
    {"\r\nTLS-Required: No\r\n", false},                           /* empty header section */
    {"Subject: x\n\nTLS-Required: No\n", false},
    {"", false},
    {"Subject: very long value that is no field of ours at all and goes on\r\n"
     "TLS-Required: No\r\n\r\n",
     true},
    {"TLS-Required: NoNoNoNoNoNoNoNoNoNoNoNoNoNoNoNoNoNoNoNoNoNoNoNoNoNoNoNoNoNo\r\n\r\n",
     false},
};

static struct cli_msgfile scan_chunks(const char *msg, size_t len, size_t chunk)
{
    struct cli_msgscan sc;
    struct cli_msgfile mf;
    memset(&mf, 0, sizeof mf);
    cli_msgscan_init(&sc);
    for (size_t off = 0; off < len; off += chunk)
        cli_msgscan_feed(&sc, (const unsigned char *)msg + off,
                         len - off < chunk ? len - off : chunk);
    cli_msgscan_end(&sc, &mf);
    return mf;
}

static void test_tls_required_no(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof tlsreq / sizeof tlsreq[0]; i++) {
        size_t len = strlen(tlsreq[i].msg);
        print_message("tls-required case %zu\n", i);
        /* Whole, byte by byte, and in threes (folds and CRLFs split across chunks). */
        static const size_t chunks[] = {(size_t)-1, 1, 3};
        for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
            struct cli_msgfile mf = scan_chunks(tlsreq[i].msg, len, chunks[c]);
            assert_int_equal(mf.tls_required_no, tlsreq[i].want);
            assert_false(mf.invalid);
        }
    }
}

/* The scanner's other findings stay what they were. */
static void test_scan_other_findings(void **state)
{
    (void)state;
    const char *m = "TLS-Required: No\nSubject: \xc3\xa9\n\nbody\n";
    struct cli_msgfile mf = scan_chunks(m, strlen(m), 1);
    assert_true(mf.tls_required_no);
    assert_int_equal(mf.size, (int64_t)strlen(m) + 4); /* four bare LFs become CRLF */
    assert_true(mf.flags & SMTPC_MSG_SMTPUTF8);
    assert_false(mf.flags & SMTPC_MSG_REQUIRE_8BITMIME);

    const char *bad = "TLS-Required: No\r\n\r\nbare\rcr\r\n";
    mf = scan_chunks(bad, strlen(bad), 2);
    assert_true(mf.invalid);
    assert_true(mf.tls_required_no);
    assert_non_null(strstr(mf.why, "offset 24"));

    const char *body8 = "Subject: x\r\n\r\n\xff\r\n";
    mf = scan_chunks(body8, strlen(body8), 5);
    assert_true(mf.flags & SMTPC_MSG_REQUIRE_8BITMIME);
    assert_false(mf.flags & SMTPC_MSG_SMTPUTF8);
    assert_false(mf.tls_required_no);
}

/* Through a real file: what `smtpc deliver -m FILE` sees. */
static void test_scan_file(void **state)
{
    (void)state;
    char path[] = "/tmp/smtpc-test-msg-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *m = "From: a@example.org\r\nTLS-Required:\r\n  NO\r\n\r\nhi\r\n";
    assert_int_equal(write(fd, m, strlen(m)), (ssize_t)strlen(m));
    close(fd);
    struct cli_msgfile mf;
    struct cli_err err = {0};
    assert_int_equal(cli_msgfile_scan(&mf, path, &err), 0);
    assert_true(mf.tls_required_no);
    assert_int_equal(mf.size, (int64_t)strlen(m));
    FILE *f = cli_msgfile_open(&mf);
    assert_non_null(f);
    char buf[128];
    assert_int_equal(cli_msgfile_read(f, buf, sizeof buf), (ssize_t)strlen(m));
    assert_int_equal(cli_msgfile_read(f, buf, sizeof buf), 0);
    assert_int_equal(cli_msgfile_rewind(f), 0); /* a resend starts over */
    assert_int_equal(cli_msgfile_read(f, buf, 4), 4);
    assert_memory_equal(buf, "From", 4);
    cli_msgfile_close(&mf, f);
    cli_msgfile_free(&mf);
    unlink(path);

    struct cli_msgfile *mfs = NULL;
    size_t n = 0;
    const char *paths[] = {"/nonexistent/smtpc-test"};
    assert_int_equal(cli_msgfiles_scan(paths, 1, &mfs, &n, &err), -1);
    assert_int_equal(err.status, CLI_EX_CONFIG);
    cli_msgfiles_free(mfs, n);
}

/* ------------------------------------------------------------------ */
/* Options of deliver and probe                                        */
/* ------------------------------------------------------------------ */

#define MAXARGS 40

/* Parses a NULL-terminated list after cmd. Returns 0 or the status. */
static int parse(const char *cmd, const char *const *args, struct cli_opts *o,
                 struct cli_err *err)
{
    char *argv[MAXARGS + 1];
    int argc = 0;
    argv[argc++] = (char *)cmd;
    for (; args[argc - 1] != NULL && argc < MAXARGS; argc++)
        argv[argc] = (char *)args[argc - 1];
    assert_null(args[argc - 1]);
    argv[argc] = NULL;
    memset(err, 0, sizeof *err);
    return cli_opts_parse(o, argc, argv, err) == 0 ? 0 : err->status;
}

#define ENV "--from", "a@example.org", "--to", "b@example.net"

static const struct {
    const char *value;
    bool ok;
} dns_values[] = {
    {"127.0.0.1", true},
    {"127.0.0.1:53", true},
    {"192.0.2.53:5353", true},
    {"::1", true},                 /* a bare IPv6 address: no port */
    {"2001:db8::53", true},
    {"[::1]:5353", true},
    {"[2001:db8::53]:53", true},
    {"[::1]", true},
    {"[127.0.0.1]:53", true},
    {"127.0.0.1:65535", true},
    {"", false},
    {"localhost", false},          /* names would need a resolver */
    {"ns.example.net:53", false},
    {"127.0.0.1:", false},
    {"127.0.0.1:0", false},
    {"127.0.0.1:65536", false},
    {"127.0.0.1:5x", false},
    {"127.0.0.1:-5", false},
    {"127.0.0.256", false},
    {"[::1", false},
    {"[::1]5353", false},
    {"[::1]:", false},
    {"[]:53", false},
    {"[::g]:53", false},
    {":53", false},
    {"::1:53x", false},
    {"1.2.3.4 ", false},
    {"fe80::1%eth0", false},
};

static void test_dns_values(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof dns_values / sizeof dns_values[0]; i++) {
        struct cli_err err = {0};
        print_message("--dns %s\n", dns_values[i].value);
        int rc = cli_check_dns_server(dns_values[i].value, &err);
        assert_int_equal(rc, dns_values[i].ok ? 0 : -1);
        if (!dns_values[i].ok)
            assert_int_equal(err.status, CLI_EX_CONFIG);
        /* Through the parser too, repeatable. */
        struct cli_opts o;
        const char *a[] = {ENV, "--dns", "192.0.2.1", "--dns", dns_values[i].value, NULL};
        assert_int_equal(parse("deliver", a, &o, &err), dns_values[i].ok ? 0 : CLI_EX_CONFIG);
        if (dns_values[i].ok) {
            assert_int_equal(o.dns.n, 2);
            assert_string_equal(o.dns.v[1], dns_values[i].value);
        }
        cli_opts_free(&o);
    }
}

static void test_deliver_defaults(void **state)
{
    (void)state;
    struct cli_opts o;
    struct cli_err err;
    const char *a[] = {ENV, NULL};
    assert_int_equal(parse("deliver", a, &o, &err), 0);
    assert_int_equal(o.cmd, CLI_CMD_DELIVER);
    assert_int_equal(o.port, 25);
    assert_int_equal(o.dnssec, SMTPC_DNSSEC_TRUST_AD);
    assert_int_equal(o.dns.n, 0);
    assert_int_equal(o.local_ips.n, 0);
    assert_null(o.resolv_conf);
    assert_null(o.trust_anchor);
    assert_null(o.state_dir);
    assert_null(o.ca_file);
    assert_null(o.ehlo);
    assert_false(o.requiretls || o.tls_required_no || o.json || o.trace);
    assert_int_equal(o.timeout_ms, 0);
    assert_int_equal(o.messages.n, 0);
    assert_int_equal(o.to.n, 1);
    cli_opts_free(&o);
}

static void test_deliver_all_options(void **state)
{
    (void)state;
    struct cli_opts o;
    struct cli_err err;
    const char *a[] = {"--from", "", "--to", "x@a.test", "--to", "y@b.test", "-m", "m1",
                       "--message", "m2", "--dns", "127.0.0.1:5353", "--dns", "[::1]:53",
                       "--resolv-conf", "/r", "--dnssec", "VALIDATE", "--trust-anchor", "/k",
                       "--port", "2525", "--ca-file", "/ca", "--ehlo", "me.example",
                       "--local-ip", "127.0.0.2", "--local-ip", "::1", "--tls-required-no",
                       "--state", "/s", "--timeout", "2.5", "--trace", "--json", NULL};
    assert_int_equal(parse("deliver", a, &o, &err), 0);
    assert_string_equal(o.from, "");
    assert_int_equal(o.to.n, 2);
    assert_int_equal(o.messages.n, 2);
    assert_int_equal(o.dns.n, 2);
    assert_string_equal(o.dns.v[1], "[::1]:53");
    assert_string_equal(o.resolv_conf, "/r");
    assert_int_equal(o.dnssec, SMTPC_DNSSEC_VALIDATE);
    assert_string_equal(o.trust_anchor, "/k");
    assert_int_equal(o.port, 2525);
    assert_string_equal(o.ca_file, "/ca");
    assert_string_equal(o.ehlo, "me.example");
    assert_int_equal(o.local_ips.n, 2);
    assert_string_equal(o.local_ips.v[1], "::1");
    assert_true(o.tls_required_no && o.trace && o.json);
    assert_false(o.requiretls);
    assert_string_equal(o.state_dir, "/s");
    assert_int_equal(o.timeout_ms, 2500);
    cli_opts_free(&o);

    const char *b[] = {ENV, "--requiretls", "--dnssec", "off", NULL};
    assert_int_equal(parse("deliver", b, &o, &err), 0);
    assert_true(o.requiretls);
    assert_int_equal(o.dnssec, SMTPC_DNSSEC_OFF);
    cli_opts_free(&o);
    /* The anchor is accepted in any mode (one command line for every mode). */
    const char *c[] = {ENV, "--dnssec", "trust-ad", "--trust-anchor", "/k", NULL};
    assert_int_equal(parse("deliver", c, &o, &err), 0);
    assert_int_equal(o.dnssec, SMTPC_DNSSEC_TRUST_AD);
    cli_opts_free(&o);
}

static void test_probe_options(void **state)
{
    (void)state;
    struct cli_opts o;
    struct cli_err err;
    const char *a[] = {"example.net", NULL};
    assert_int_equal(parse("probe", a, &o, &err), 0);
    assert_int_equal(o.cmd, CLI_CMD_PROBE);
    assert_string_equal(o.domain, "example.net");
    assert_int_equal(o.port, 25);
    assert_null(o.from);
    cli_opts_free(&o);
    /* Options before and after the domain. */
    const char *b[] = {"--json", "--dns", "127.0.0.1", "[192.0.2.1]", "--port", "10025",
                       "--dnssec", "off", "--ca-file", "/ca", "--ehlo", "me", "--timeout",
                       "3", "--trace", "--resolv-conf", "/r", NULL};
    assert_int_equal(parse("probe", b, &o, &err), 0);
    assert_string_equal(o.domain, "[192.0.2.1]");
    assert_int_equal(o.port, 10025);
    assert_int_equal(o.dnssec, SMTPC_DNSSEC_OFF);
    assert_true(o.json && o.trace);
    assert_int_equal(o.timeout_ms, 3000);
    assert_int_equal(o.dns.n, 1);
    cli_opts_free(&o);
}

/* Whole command lines that must fail, and how. */
static const struct {
    const char *cmd;
    const char *args[12];
    int status;
} failures[] = {
    /* deliver: usage */
    {"deliver", {"--to", "b@x", NULL}, CLI_EX_USAGE},
    {"deliver", {"--from", "a@x", NULL}, CLI_EX_USAGE},
    {"deliver", {ENV, "--server", "h", NULL}, CLI_EX_USAGE},   /* send's options */
    {"deliver", {ENV, "--tls", "none", NULL}, CLI_EX_USAGE},
    {"deliver", {ENV, "--user", "u", NULL}, CLI_EX_USAGE},
    {"deliver", {ENV, "--dane", "3 1 1 ab", NULL}, CLI_EX_USAGE},
    {"deliver", {ENV, "stray", NULL}, CLI_EX_USAGE},
    {"deliver", {ENV, "--dns", NULL}, CLI_EX_USAGE},
    {"deliver", {ENV, "--tls-required-no=yes", NULL}, CLI_EX_USAGE},
    {"deliver", {ENV, "--requiretls", "--tls-required-no", NULL}, CLI_EX_USAGE},
    {"deliver", {ENV, "-m", "-", "-m", "-", NULL}, CLI_EX_USAGE},
    {"deliver", {"--from", "a@x", "--to", "b\r\n@x", NULL}, CLI_EX_USAGE},
    /* deliver: config */
    {"deliver", {ENV, "--dns", "resolver.example", NULL}, CLI_EX_CONFIG},
    {"deliver", {ENV, "--dnssec", "on", NULL}, CLI_EX_CONFIG},
    {"deliver", {ENV, "--port", "0", NULL}, CLI_EX_CONFIG},
    {"deliver", {ENV, "--port", "65536", NULL}, CLI_EX_CONFIG},
    {"deliver", {ENV, "--port", "25x", NULL}, CLI_EX_CONFIG},
    {"deliver", {ENV, "--local-ip", "host.example", NULL}, CLI_EX_CONFIG},
    {"deliver", {ENV, "--local-ip", "", NULL}, CLI_EX_CONFIG},
    {"deliver", {ENV, "--state", "", NULL}, CLI_EX_CONFIG},
    {"deliver", {ENV, "--ehlo", "a b", NULL}, CLI_EX_CONFIG},
    {"deliver", {ENV, "--timeout", "0", NULL}, CLI_EX_CONFIG},
    /* probe: usage */
    {"probe", {NULL}, CLI_EX_USAGE},
    {"probe", {"a.example", "b.example", NULL}, CLI_EX_USAGE},
    {"probe", {"a.example", "--from", "x@y", NULL}, CLI_EX_USAGE},
    {"probe", {"a.example", "--to", "x@y", NULL}, CLI_EX_USAGE},
    {"probe", {"a.example", "-m", "f", NULL}, CLI_EX_USAGE},
    {"probe", {"a.example", "--state", "/s", NULL}, CLI_EX_USAGE},
    {"probe", {"a.example", "--requiretls", NULL}, CLI_EX_USAGE},
    {"probe", {"a.example", "--tls-required-no", NULL}, CLI_EX_USAGE},
    {"probe", {"user@a.example", NULL}, CLI_EX_USAGE},
    {"probe", {"a example", NULL}, CLI_EX_USAGE},
    {"probe", {"", NULL}, CLI_EX_USAGE},
    /* probe: config */
    {"probe", {"a.example", "--dns", "[::1]:0", NULL}, CLI_EX_CONFIG},
    {"probe", {"a.example", "--dnssec", "", NULL}, CLI_EX_CONFIG},
    {"probe", {"a.example", "--port", "-1", NULL}, CLI_EX_CONFIG},
    /* send does not take deliver's options */
    {"send", {"--server", "h", ENV, "--dns", "127.0.0.1", NULL}, CLI_EX_USAGE},
    {"send", {"--server", "h", ENV, "--port", "25", NULL}, CLI_EX_USAGE},
    {"send", {"--server", "h", ENV, "--tls-required-no", NULL}, CLI_EX_USAGE},
};

static void test_failures(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof failures / sizeof failures[0]; i++) {
        struct cli_opts o;
        struct cli_err err;
        print_message("failure case %zu (%s)\n", i, failures[i].cmd);
        int st = parse(failures[i].cmd, failures[i].args, &o, &err);
        assert_int_equal(st, failures[i].status);
        assert_int_equal(err.kind, st == CLI_EX_USAGE ? SMTPC_ERR_USAGE : SMTPC_ERR_CONFIG);
        assert_true(err.msg[0] != '\0');
        cli_opts_free(&o);
    }
}

static void test_help(void **state)
{
    (void)state;
    struct cli_opts o;
    struct cli_err err;
    const char *a[] = {"--help", NULL};
    assert_int_equal(parse("deliver", a, &o, &err), 0);
    assert_true(o.help);
    cli_opts_free(&o);
    assert_int_equal(parse("probe", a, &o, &err), 0);
    assert_true(o.help);
    cli_opts_free(&o);
    const char *b[] = {"-h", NULL};
    assert_int_equal(parse("probe", b, &o, &err), 0);
    assert_true(o.help);
    cli_opts_free(&o);
}

/* ------------------------------------------------------------------ */
/* Probe verdicts                                                      */
/* ------------------------------------------------------------------ */

#define NOERR SMTPC_ERR_NONE, SMTPC_CMD_NONE, false

static const struct {
    struct cli_host_facts f;
    const char *text;
    bool ok, permanent;
} verdicts[] = {
    /* dialed, tls, pkix, dane, match, enforce, err, cmd, permanent */
    {{true, true, false, "verified", -1, false, NOERR}, "ok: dane verified", true, false},
    {{true, true, true, "verified", 1, true, NOERR}, "ok: dane verified", true, false},
    {{true, true, false, "verified", 1, true, NOERR}, "ok: dane verified", true, false},
    {{true, true, true, "none", 1, true, NOERR}, "ok: pkix verified (mta-sts enforce)", true,
     false},
    {{true, true, true, "none", -1, false, NOERR}, "ok: opportunistic tls", true, false},
    {{true, true, false, "none", 0, false, NOERR}, "ok: opportunistic tls", true, false},
    {{true, false, false, "none", -1, false, NOERR}, "ok: no tls (opportunistic)", true, false},
    {{true, true, false, "required-unusable", -1, false, NOERR}, "ok: tls, tlsa records unusable",
     true, false},
    {{true, false, false, "required-unusable", -1, false, NOERR},
     "fail: no starttls but policy requires tls", false, false},
    {{true, false, false, "none", 1, true, NOERR}, "fail: no starttls but policy requires tls",
     false, false},
    {{true, true, false, "failed", -1, false, SMTPC_ERR_TLS, SMTPC_CMD_STARTTLS, false},
     "fail: dane verification failed", false, false},
    {{true, true, false, "none", 1, true, SMTPC_ERR_TLS, SMTPC_CMD_STARTTLS, false},
     "fail: pkix verification failed (mta-sts enforce)", false, false},
    {{true, true, true, "none", 0, true, NOERR}, "fail: mx not in mta-sts policy", false, false},
    {{false, false, false, "none", 0, true, SMTPC_ERR_POLICY, SMTPC_CMD_NONE, false},
     "fail: mx not in mta-sts policy", false, false},
    {{false, false, false, "none", -1, false, SMTPC_ERR_POLICY, SMTPC_CMD_NONE, true},
     "fail: policy not met", false, true},
    {{false, false, false, "none", -1, false, SMTPC_ERR_DNS, SMTPC_CMD_NONE, false},
     "fail: dns lookup failed", false, false},
    {{false, false, false, "none", -1, false, SMTPC_ERR_CONNECT, SMTPC_CMD_CONNECT, false},
     "fail: unreachable", false, false},
    {{true, false, false, "none", -1, false, SMTPC_ERR_CONNECT, SMTPC_CMD_CONNECT, false},
     "fail: unreachable", false, false},
    {{true, false, false, "none", -1, false, SMTPC_ERR_TIMEOUT, SMTPC_CMD_CONNECT, false},
     "fail: unreachable", false, false},
    /* connect failures trump the policy: the host was never reached */
    {{true, false, false, "none", 1, true, SMTPC_ERR_CONNECT, SMTPC_CMD_CONNECT, false},
     "fail: unreachable", false, false},
    {{true, false, false, "none", -1, false, SMTPC_ERR_STATUS, SMTPC_CMD_GREETING, true},
     "fail: smtp error", false, true},
    {{true, false, false, "none", -1, false, SMTPC_ERR_STATUS, SMTPC_CMD_EHLO, false},
     "fail: smtp error", false, false},
    {{true, false, false, "none", -1, false, SMTPC_ERR_TIMEOUT, SMTPC_CMD_GREETING, false},
     "fail: timeout", false, false},
    {{true, false, false, "none", -1, false, SMTPC_ERR_IO, SMTPC_CMD_EHLO, false},
     "fail: connection lost", false, false},
    {{true, false, false, "none", -1, false, SMTPC_ERR_TLS, SMTPC_CMD_STARTTLS, false},
     "fail: tls handshake failed", false, false},
    {{true, false, false, "none", -1, false, SMTPC_ERR_PROTOCOL, SMTPC_CMD_EHLO, false},
     "fail: protocol error", false, false},
};

static void test_host_verdicts(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof verdicts / sizeof verdicts[0]; i++) {
        print_message("verdict case %zu\n", i);
        struct cli_host_verdict v = cli_host_verdict(&verdicts[i].f);
        assert_string_equal(v.text, verdicts[i].text);
        assert_int_equal(v.ok, verdicts[i].ok);
        assert_int_equal(v.permanent, verdicts[i].permanent);
        assert_true(strncmp(v.text, v.ok ? "ok: " : "fail: ", v.ok ? 4 : 6) == 0);
    }
}

static void test_domain_verdicts(void **state)
{
    (void)state;
    assert_string_equal(cli_domain_verdict(true, true, 0, 0), "no-mail");
    assert_string_equal(cli_domain_verdict(false, true, 0, 0), "fail");
    assert_string_equal(cli_domain_verdict(false, false, 0, 0), "fail");
    assert_string_equal(cli_domain_verdict(false, false, 2, 0), "fail");
    assert_string_equal(cli_domain_verdict(false, false, 2, 1), "degraded");
    assert_string_equal(cli_domain_verdict(false, true, 2, 2), "degraded");
    assert_string_equal(cli_domain_verdict(false, false, 2, 2), "ok");
    assert_string_equal(cli_domain_verdict(false, false, 1, 1), "ok");
}

/* ------------------------------------------------------------------ */
/* State directory                                                     */
/* ------------------------------------------------------------------ */

static void test_state_dir(void **state)
{
    (void)state;
    char buf[CLI_STATE_PATH_MAX];
    char *xdg = getenv("XDG_STATE_HOME") ? strdup(getenv("XDG_STATE_HOME")) : NULL;
    char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    setenv("XDG_STATE_HOME", "/x/state", 1);
    setenv("HOME", "/home/u", 1);
    assert_int_equal(cli_default_state_dir(buf, sizeof buf), 0);
    assert_string_equal(buf, "/x/state/smtpc");
    setenv("XDG_STATE_HOME", "relative", 1); /* invalid per the XDG spec: ignored */
    assert_int_equal(cli_default_state_dir(buf, sizeof buf), 0);
    assert_string_equal(buf, "/home/u/.local/state/smtpc");
    unsetenv("XDG_STATE_HOME");
    assert_int_equal(cli_default_state_dir(buf, sizeof buf), 0);
    assert_string_equal(buf, "/home/u/.local/state/smtpc");
    assert_int_equal(cli_default_state_dir(buf, 10), -1); /* does not fit */
    unsetenv("HOME");
    assert_int_equal(cli_default_state_dir(buf, sizeof buf), -1);
    if (xdg != NULL)
        setenv("XDG_STATE_HOME", xdg, 1);
    if (home != NULL)
        setenv("HOME", home, 1);
    free(xdg);
    free(home);
}

static void test_mkdir_p(void **state)
{
    (void)state;
    char base[] = "/tmp/smtpc-test-state-XXXXXX";
    assert_non_null(mkdtemp(base));
    char path[256], file[256];
    snprintf(path, sizeof path, "%s/a/b/smtpc", base);
    assert_int_equal(cli_mkdir_p(path), 0);
    assert_int_equal(cli_mkdir_p(path), 0); /* exists: fine */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    snprintf(file, sizeof file, "%s/f", base);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    char under[300];
    snprintf(under, sizeof under, "%s/sub", file);
    assert_int_equal(cli_mkdir_p(file), -1);  /* a file is not a directory */
    assert_int_equal(cli_mkdir_p(under), -1);
    unlink(file);
    rmdir(path);
    snprintf(path, sizeof path, "%s/a/b", base);
    rmdir(path);
    snprintf(path, sizeof path, "%s/a", base);
    rmdir(path);
    rmdir(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grouping),
        cmocka_unit_test(test_grouping_errors),
        cmocka_unit_test(test_grouping_many),
        cmocka_unit_test(test_tls_required_no),
        cmocka_unit_test(test_scan_other_findings),
        cmocka_unit_test(test_scan_file),
        cmocka_unit_test(test_dns_values),
        cmocka_unit_test(test_deliver_defaults),
        cmocka_unit_test(test_deliver_all_options),
        cmocka_unit_test(test_probe_options),
        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_host_verdicts),
        cmocka_unit_test(test_domain_verdicts),
        cmocka_unit_test(test_state_dir),
        cmocka_unit_test(test_mkdir_p),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
