/* Unit tests for EHLO keyword interpretation and RFC 9422 LIMITS. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ehlo.h"
#include "smtpc.h"

/* Reads a whole reply from text (fed byte by byte) and interprets it. */
static void parse_ehlo(const char *text, ehlo_info *e)
{
    reply_parser p;
    reply r;
    size_t used, off = 0;
    rp_status st = RP_NEED_MORE;
    reply_parser_init(&p);
    while (st == RP_NEED_MORE && off < strlen(text)) {
        st = reply_parser_feed(&p, text + off, 1, &used);
        off += used;
    }
    assert_int_equal(st, RP_DONE);
    assert_int_equal(off, strlen(text));
    reply_parser_take(&p, &r);
    assert_int_equal(ehlo_parse(&r, e), 0);
    reply_free(&r);
    reply_parser_free(&p);
}

static void assert_list(char **got, size_t n, const char *const *want)
{
    size_t w = 0;
    while (want[w] != NULL)
        w++;
    assert_int_equal(n, w);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(got[i], want[i]);
}

static void test_ehlo_full(void **state)
{
    (void)state;
    ehlo_info e;
    parse_ehlo("250-mail.example Hello there\r\n"
               "250-PIPELINING\r\n"
               "250-8bitmime\r\n"
               "250-SIZE 10240000\r\n"
               "250-StartTLS\r\n"
               "250-ENHANCEDSTATUSCODES\r\n"
               "250-auth PLAIN login\r\n"
               "250-SMTPUTF8\r\n"
               "250-x-custom Some Params\r\n"
               "250 REQUIRETLS\r\n",
               &e);
    assert_int_equal(e.ext, SMTPC_EXT_PIPELINING | SMTPC_EXT_8BITMIME | SMTPC_EXT_SIZE |
                                SMTPC_EXT_STARTTLS | SMTPC_EXT_ENHANCEDSTATUSCODES |
                                SMTPC_EXT_AUTH | SMTPC_EXT_SMTPUTF8 | SMTPC_EXT_REQUIRETLS);
    assert_int_equal(e.max_size, 10240000);
    static const char *const kws[] = {"PIPELINING", "8BITMIME", "SIZE 10240000", "STARTTLS",
                                      "ENHANCEDSTATUSCODES", "AUTH PLAIN login", "SMTPUTF8",
                                      "X-CUSTOM Some Params", "REQUIRETLS", NULL};
    assert_list(e.keywords, e.nkeywords, kws);
    static const char *const mechs[] = {"PLAIN", "LOGIN", NULL};
    assert_list(e.auth, e.nauth, mechs);
    assert_int_equal(e.nlimits, 0);
    ehlo_info_free(&e);
    assert_null(e.keywords);
    ehlo_info_free(NULL);
}

/* Each case: an EHLO reply, the extension bits, max_size and keywords. */
typedef struct {
    const char *in;
    unsigned ext;
    int64_t max_size;
    const char *kws[4];
} ehlo_case;

#define E(x) SMTPC_EXT_##x
static const ehlo_case ehlo_cases[] = {
    /* spec 4.6: line 0 is never a keyword */
    {"250 STARTTLS\r\n", 0, 0, {NULL}},
    {"250-PIPELINING\r\n250 SIZE 5\r\n", E(SIZE), 5, {"SIZE 5"}},
    {"250\r\n", 0, 0, {NULL}},
    /* trimming; empty lines are skipped; keyword uppercased, params as sent */
    {"250-x\r\n250-  starttls  \r\n250 size\t 100 \r\n", E(STARTTLS) | E(SIZE), 100,
     {"STARTTLS", "SIZE 100"}},
    {"250-x\r\n250-\r\n250-   \r\n250 8BITMIME\r\n", E(8BITMIME), 0, {"8BITMIME"}},
    {"250-x\r\n250 xclient  NAME ADDR\r\n", 0, 0, {"XCLIENT NAME ADDR"}},
    /* spec 4.7: these flags only without parameters */
    {"250-x\r\n250-STARTTLS now\r\n250 REQUIRETLS x\r\n", 0, 0,
     {"STARTTLS now", "REQUIRETLS x"}},
    {"250-x\r\n250-PIPELINING x\r\n250-8BITMIME y\r\n250 ENHANCEDSTATUSCODES z\r\n", 0, 0,
     {"PIPELINING x", "8BITMIME y", "ENHANCEDSTATUSCODES z"}},
    {"250-x\r\n250 STARTTLSX\r\n", 0, 0, {"STARTTLSX"}},
    /* RFC 6531: SMTPUTF8 with or without parameters */
    {"250-x\r\n250 smtputf8 foo\r\n", E(SMTPUTF8), 0, {"SMTPUTF8 foo"}},
    /* SIZE variants (Q14 fixed: bare SIZE = supported, no limit) */
    {"250-x\r\n250 SIZE\r\n", E(SIZE), 0, {"SIZE"}},
    {"250-x\r\n250 SIZE 0\r\n", E(SIZE), 0, {"SIZE 0"}},
    {"250-x\r\n250 SIZE abc\r\n", E(SIZE), 0, {"SIZE abc"}},
    {"250-x\r\n250-SIZE 100\r\n250 SIZE abc\r\n", E(SIZE), 100, {"SIZE 100", "SIZE abc"}},
    {"250-x\r\n250-SIZE 100\r\n250 SIZE\r\n", E(SIZE), 0, {"SIZE 100", "SIZE"}},
    {"250-x\r\n250 SIZE -5\r\n", E(SIZE), 0, {"SIZE -5"}},
    {"250-x\r\n250 SIZE +5\r\n", E(SIZE), 0, {"SIZE +5"}},
    {"250-x\r\n250 SIZE 1 2\r\n", E(SIZE), 0, {"SIZE 1 2"}},
    {"250-x\r\n250 SIZE 9223372036854775807\r\n", E(SIZE), INT64_MAX,
     {"SIZE 9223372036854775807"}},
    {"250-x\r\n250 SIZE 9223372036854775808\r\n", E(SIZE), 0, {"SIZE 9223372036854775808"}},
    {"250-x\r\n250 SIZE=100\r\n", 0, 0, {"SIZE=100"}},
    /* AUTH: old "AUTH=" form and bare AUTH are not recognised */
    {"250-x\r\n250 AUTH=LOGIN PLAIN\r\n", 0, 0, {"AUTH=LOGIN PLAIN"}},
    {"250-x\r\n250 AUTH\r\n", 0, 0, {"AUTH"}},
    /* LIMITS through EHLO */
    {"250-x\r\n250 LIMITS\r\n", E(LIMITS), 0, {"LIMITS"}},
    {"250-x\r\n250 LIMITS MAILMAX=5\r\n", E(LIMITS), 0, {"LIMITS MAILMAX=5"}},
    {"250-x\r\n250 LIMITS  MAILMAX=5\r\n", 0, 0, {"LIMITS MAILMAX=5"}},
    {"250-x\r\n250 LIMITS\tMAILMAX=5\r\n", 0, 0, {"LIMITS MAILMAX=5"}},
    {"250-x\r\n250 LIMITS MAILMAX\r\n", 0, 0, {"LIMITS MAILMAX"}},
};
#undef E

static void test_ehlo_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof ehlo_cases / sizeof ehlo_cases[0]; i++) {
        const ehlo_case *c = &ehlo_cases[i];
        ehlo_info e;
        parse_ehlo(c->in, &e);
        assert_int_equal(e.ext, c->ext);
        assert_int_equal(e.max_size, c->max_size);
        assert_list(e.keywords, e.nkeywords, c->kws);
        ehlo_info_free(&e);
    }
}

static void test_ehlo_auth(void **state)
{
    (void)state;
    ehlo_info e;
    parse_ehlo("250-x\r\n250 AUTH PLAIN  LOGIN\tcram-md5 \r\n", &e);
    static const char *const m1[] = {"PLAIN", "LOGIN", "CRAM-MD5", NULL};
    assert_list(e.auth, e.nauth, m1);
    assert_true(e.ext & SMTPC_EXT_AUTH);
    ehlo_info_free(&e);

    /* a later AUTH line replaces the earlier list */
    parse_ehlo("250-x\r\n250-AUTH PLAIN LOGIN\r\n250-AUTH=LOGIN\r\n250 AUTH scram-sha-256\r\n",
               &e);
    static const char *const m2[] = {"SCRAM-SHA-256", NULL};
    assert_list(e.auth, e.nauth, m2);
    ehlo_info_free(&e);
}

static void test_ehlo_auth_bound(void **state)
{
    (void)state;
    char buf[2048] = "250-x\r\n250 AUTH";
    for (int i = 0; i < EHLO_MAX_AUTH_MECHS + 6; i++) {
        size_t l = strlen(buf);
        snprintf(buf + l, sizeof buf - l, " m%d", i);
    }
    strcat(buf, "\r\n");
    ehlo_info e;
    parse_ehlo(buf, &e);
    assert_int_equal(e.nauth, EHLO_MAX_AUTH_MECHS);
    assert_string_equal(e.auth[0], "M0");
    assert_string_equal(e.auth[EHLO_MAX_AUTH_MECHS - 1], "M63");
    ehlo_info_free(&e);
}

static void test_ehlo_limits_lines(void **state)
{
    (void)state;
    ehlo_info e;
    parse_ehlo("250-x\r\n250 limits mailmax=10 RcptMax=100 rcptdomainmax=5 foo=Bar\r\n", &e);
    assert_int_equal(e.ext, SMTPC_EXT_LIMITS);
    static const char *const names[] = {"MAILMAX", "RCPTMAX", "RCPTDOMAINMAX", "FOO", NULL};
    static const char *const values[] = {"10", "100", "5", "Bar", NULL};
    assert_list(e.limit_names, e.nlimits, names);
    assert_list(e.limit_values, e.nlimits, values);
    assert_int_equal(e.mailmax, 10);
    assert_int_equal(e.rcptmax, 100);
    assert_int_equal(e.rcptdomainmax, 5);
    ehlo_info_free(&e);

    /* a later invalid LIMITS line ignores the extension altogether */
    parse_ehlo("250-x\r\n250-LIMITS MAILMAX=10\r\n250 LIMITS MAILMAX=10 MAILMAX=11\r\n", &e);
    assert_int_equal(e.ext, 0);
    assert_int_equal(e.nlimits, 0);
    assert_int_equal(e.mailmax, 0);
    ehlo_info_free(&e);
}

/* limits_parse cases: params, parsed?, pairs as "NAME=value", known limits. */
typedef struct {
    const char *params;
    bool ok;
    const char *pairs[5];
    int mailmax, rcptmax, rcptdomainmax;
} limits_case;

static const limits_case limits_cases[] = {
    {"", true, {NULL}, 0, 0, 0},
    {" MAILMAX=10", true, {"MAILMAX=10"}, 10, 0, 0},
    {" RCPTMAX=100 MAILMAX=5 RCPTDOMAINMAX=1", true,
     {"RCPTMAX=100", "MAILMAX=5", "RCPTDOMAINMAX=1"}, 5, 100, 1},
    {" mailmax=7", true, {"MAILMAX=7"}, 7, 0, 0},
    {" FOO=bar BAR_1-x=~!:", true, {"FOO=bar", "BAR_1-X=~!:"}, 0, 0, 0},
    {" MAILMAX==5", true, {"MAILMAX==5"}, 0, 0, 0},
    {" MAILMAX=999999", true, {"MAILMAX=999999"}, 999999, 0, 0},
    {" MAILMAX=000005", true, {"MAILMAX=000005"}, 5, 0, 0},
    /* known limit with a bad value: pair kept, limit 0 (spec 4.8, Q17 fixed) */
    {" MAILMAX=1000000", true, {"MAILMAX=1000000"}, 0, 0, 0},
    {" MAILMAX=0", true, {"MAILMAX=0"}, 0, 0, 0},
    {" MAILMAX=+5", true, {"MAILMAX=+5"}, 0, 0, 0},
    {" RCPTMAX=-5", true, {"RCPTMAX=-5"}, 0, 0, 0},
    {" RCPTDOMAINMAX=5x", true, {"RCPTDOMAINMAX=5x"}, 0, 0, 0},
    {" MAILMAX=abc RCPTMAX=3", true, {"MAILMAX=abc", "RCPTMAX=3"}, 0, 3, 0},
    /* syntax errors and duplicates: the whole extension is ignored */
    {" ", false, {NULL}, 0, 0, 0},
    {"MAILMAX=5", false, {NULL}, 0, 0, 0},
    {"  MAILMAX=5", false, {NULL}, 0, 0, 0},
    {" MAILMAX=5 ", false, {NULL}, 0, 0, 0},
    {" MAILMAX=5  RCPTMAX=1", false, {NULL}, 0, 0, 0},
    {" MAILMAX", false, {NULL}, 0, 0, 0},
    {" MAILMAX=", false, {NULL}, 0, 0, 0},
    {" =5", false, {NULL}, 0, 0, 0},
    {" MAIL.MAX=5", false, {NULL}, 0, 0, 0},
    {" MAILMAX=5;6", false, {NULL}, 0, 0, 0},
    {" MAILMAX=5\t", false, {NULL}, 0, 0, 0},
    {" MAILMAX=\x01", false, {NULL}, 0, 0, 0},
    {" MAILMAX=\xc3\xa9", false, {NULL}, 0, 0, 0},
    {"\tMAILMAX=5", false, {NULL}, 0, 0, 0},
    {" MAILMAX=5 MAILMAX=6", false, {NULL}, 0, 0, 0},
    {" mailmax=5 RCPTMAX=1 MailMax=6", false, {NULL}, 0, 0, 0},
    {" FOO=1 foo=1", false, {NULL}, 0, 0, 0},
};

static void check_pairs(const ehlo_info *e, const char *const *pairs)
{
    size_t n = 0;
    while (n < 5 && pairs[n] != NULL)
        n++;
    assert_int_equal(e->nlimits, n);
    for (size_t i = 0; i < n; i++) {
        char buf[128];
        snprintf(buf, sizeof buf, "%s=%s", e->limit_names[i], e->limit_values[i]);
        assert_string_equal(buf, pairs[i]);
    }
}

static void test_limits_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof limits_cases / sizeof limits_cases[0]; i++) {
        const limits_case *c = &limits_cases[i];
        ehlo_info e;
        memset(&e, 0, sizeof e);
        /* earlier state is always replaced */
        assert_int_equal(limits_parse(" OLD=1 MAILMAX=9 RCPTMAX=9 RCPTDOMAINMAX=9", &e), 0);
        assert_int_equal(e.nlimits, 4);
        assert_int_equal(limits_parse(c->params, &e), 0);
        assert_int_equal(e.ext, c->ok ? (unsigned)SMTPC_EXT_LIMITS : 0u);
        check_pairs(&e, c->pairs);
        assert_int_equal(e.mailmax, c->mailmax);
        assert_int_equal(e.rcptmax, c->rcptmax);
        assert_int_equal(e.rcptdomainmax, c->rcptdomainmax);
        ehlo_info_free(&e);
    }
}

static void limits_n(size_t n, ehlo_info *e)
{
    char buf[1024] = "";
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(buf);
        snprintf(buf + l, sizeof buf - l, " N%zu=%zu", i, i);
    }
    memset(e, 0, sizeof *e);
    assert_int_equal(limits_parse(buf, e), 0);
}

static void test_limits_bound(void **state)
{
    (void)state;
    ehlo_info e;
    limits_n(LIMITS_MAX_PAIRS, &e);
    assert_int_equal(e.nlimits, LIMITS_MAX_PAIRS);
    assert_int_equal(e.ext, SMTPC_EXT_LIMITS);
    assert_string_equal(e.limit_names[LIMITS_MAX_PAIRS - 1], "N31");
    ehlo_info_free(&e);
    limits_n(LIMITS_MAX_PAIRS + 1, &e);
    assert_int_equal(e.nlimits, 0);
    assert_int_equal(e.ext, 0);
    ehlo_info_free(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ehlo_full),
        cmocka_unit_test(test_ehlo_table),
        cmocka_unit_test(test_ehlo_auth),
        cmocka_unit_test(test_ehlo_auth_bound),
        cmocka_unit_test(test_ehlo_limits_lines),
        cmocka_unit_test(test_limits_table),
        cmocka_unit_test(test_limits_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
