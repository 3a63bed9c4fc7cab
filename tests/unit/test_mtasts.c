/* MTA-STS (spec 20-21) and the TLSRPT record (spec 23.10-23.11): parser
 * tables, MX matching, lookups over the fixture resolver, the HTTPS fetch
 * against tests/unit/fakehttps.py with certificates made at test time, and the
 * SQLite cache (every branch of 21.4, and two processes sharing it). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mtasts.h"
#include "tls.h"

#ifndef FAKEHTTPS_PY
#define FAKEHTTPS_PY "tests/unit/fakehttps.py"
#endif

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ================================================================== */
/* Record grammar (20.2-20.3). */

typedef struct rec_case {
    const char *txt;
    int rc;          /* 0 valid, 1 not MTA-STS, -1 syntax error */
    const char *id;  /* when valid */
    const char *err; /* substring of the error when -1 */
} rec_case;

static const rec_case rec_cases[] = {
    {"v=STSv1; id=20160831085700Z;", 0, "20160831085700Z", NULL},
    {"v=STSv1; \t id=20160831085700Z  \t;", 0, "20160831085700Z", NULL},
    {"v=STSv1;id=a", 0, "a", NULL},
    {"v=STSv1 \t;id=a", 0, "a", NULL},
    {"v=STSv1; id=a; ", 0, "a", NULL},
    {"v=STSv1; id=a; more=a; ext=2", 0, "a", NULL},
    {"v=STSv1; ext=1; id=abc", 0, "abc", NULL},
    {"v=STSv1; -k.=v; k_1=x!~; id=Z9", 0, "Z9", NULL},
    {"v=STSv1; id=0123456789abcdefghijABCDEFGHIJ01", 0, "0123456789abcdefghijABCDEFGHIJ01", NULL},
    {"v=STSv1; a1234567890123456789012345678901=1; id=a", 0, "a", NULL}, /* 32-char key */
    /* syntax errors */
    {"v=STSv1; id=a; id=b", -1, NULL, "leftover characters"}, /* repeated id */
    {"v=STSv1; id=0123456789abcdefghijABCDEFGHIJ012", -1, NULL, "leftover characters"},
    {"v=STSv1; id=test-123", -1, NULL, "leftover characters"},
    {"v=STSv1; id=a b", -1, NULL, "leftover characters"},
    {"v=STSv1; id=", -1, NULL, "missing id"},
    {"v=STSv1; ext=1", -1, NULL, "missing id"},
    {"v=STSv1; ID=a", -1, NULL, "missing id"}, /* case-sensitive: an extension */
    {"v=STSv1;", -1, NULL, "expected key"},
    {"v=STSv1; id=a;;", -1, NULL, "expected key"},
    {"v=STSv1; ;id=a", -1, NULL, "expected key"},
    {"v=STSv1; _k=v; id=a", -1, NULL, "expected key"},
    {"v=STSv1; id=a; more=", -1, NULL, "empty value"},
    {"v=STSv1; id=a; a12345678901234567890123456789012=1", -1, NULL, "expected \"=\""},
    {"v=STSv1; id=a; 1%=a", -1, NULL, "expected \"=\""},
    {"v=STSv1; id=a; test==", -1, NULL, "empty value"},
    {"v=STSv1; id=a; k=v\x7f", -1, NULL, "leftover characters"},
    {"v=STSv1; id=a; k=\xc3\xa9", -1, NULL, "empty value"},
    /* not MTA-STS: ignored by the lookup */
    {"v=STSv1", 1, NULL, NULL},
    {"v=STSv1 id=a", 1, NULL, NULL},
    {"v=STSv1,id=a", 1, NULL, NULL},
    {"v=STSv0; id=a", 1, NULL, NULL},
    {"v=STSv10; id=a", 1, NULL, NULL},
    {"v=STSv2", 1, NULL, NULL},
    {"V=STSv1; id=a", 1, NULL, NULL},
    {" v=STSv1; id=a", 1, NULL, NULL},
    {"v=spf1 -all", 1, NULL, NULL},
    {"", 1, NULL, NULL},
};

static void test_record_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(rec_cases); i++) {
        const rec_case *c = &rec_cases[i];
        mtasts_record rec;
        char err[200];
        int rc = mtasts_record_parse(c->txt, &rec, err, sizeof err);
        if (rc != c->rc)
            fail_msg("case %zu %s: rc %d, want %d (%s)", i, c->txt, rc, c->rc, err);
        if (c->rc == 0) {
            assert_string_equal(rec.id, c->id);
            assert_string_equal(rec.raw, c->txt);
        }
        if (c->rc < 0 && !strstr(err, c->err))
            fail_msg("case %zu %s: error \"%s\", want \"%s\"", i, c->txt, err, c->err);
    }
}

/* Every prefix of every case, each in a buffer of its exact size: the parser
 * must stay inside its input (run under ASan) and never call a cut valid
 * record with a cut id valid with the full id. */
static void test_record_prefixes(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(rec_cases); i++) {
        size_t n = strlen(rec_cases[i].txt);
        for (size_t k = 0; k <= n; k++) {
            char *s = malloc(k + 1);
            assert_non_null(s);
            memcpy(s, rec_cases[i].txt, k);
            s[k] = '\0';
            mtasts_record rec;
            int rc = mtasts_record_parse(s, &rec, NULL, 0);
            assert_true(rc >= -1 && rc <= 1);
            if (rc == 0)
                assert_true(strlen(rec.id) >= 1 && strlen(rec.id) <= 32);
            free(s);
        }
    }
}

/* ================================================================== */
/* Policy grammar (20.6, Q18). */

typedef struct pol_case {
    const char *text;
    int rc;
    mtasts_mode mode;
    int64_t max_age;
    const char *mx; /* patterns joined by " " */
    const char *err;
} pol_case;

static const pol_case pol_cases[] = {
    {"version: STSv1\nmode: testing\nmx: mx1.example.com\nmx: mx2.example.com\n"
     "mx: mx.backup-example.com\nmax_age: 1296000\n",
     0, MTASTS_MODE_TESTING, 1296000, "mx1.example.com mx2.example.com mx.backup-example.com",
     NULL},
    {"version: STSv1\r\nmode: enforce\r\nmx: *.example.com\r\nmax_age: 604800\r\n", 0,
     MTASTS_MODE_ENFORCE, 604800, "*.example.com", NULL},
    {"version: STSv1\nmode: enforce\t\nmx: *.example.com \nmax_age: 0 \n", 0,
     MTASTS_MODE_ENFORCE, 0, "*.example.com", NULL},
    {"version:STSv1\r\nmode:\tenforce\r\nmx:  \t\t *.example.com\nmax_age: 1\nmore:ext e  ns ion",
     0, MTASTS_MODE_ENFORCE, 1, "*.example.com", NULL},
    {"version: STSv1\nmode: none\nmax_age: 86400", 0, MTASTS_MODE_NONE, 86400, "", NULL},
    {"max_age: 5\nmode: none\nversion: STSv1\n", 0, MTASTS_MODE_NONE, 5, "", NULL},
    {"version: STSv1\nmode: none\nmode: enforce\nmax_age: 5\n", 0, MTASTS_MODE_NONE, 5, "", NULL},
    {"version: STSv1\nmode: none\nmax_age: 5\nmax_age: 7\n", 0, MTASTS_MODE_NONE, 5, "", NULL},
    {"version: STSv1\nversion: STSv1\nmode: none\nmax_age: 5", 0, MTASTS_MODE_NONE, 5, "", NULL},
    {"version: STSv1\nmode: testing\nmx: MX1.Example.COM\nmax_age: 1\n", 0, MTASTS_MODE_TESTING, 1,
     "mx1.example.com", NULL},
    {"version: STSv1\nmode: testing\nmx: xn--mx-lka.example\nmax_age: 1\n", 0,
     MTASTS_MODE_TESTING, 1, "xn--mx-lka.example", NULL},
    {"version: STSv1\nmode: testing\nmx: a-b.c1\nmax_age: 1\n", 0, MTASTS_MODE_TESTING, 1,
     "a-b.c1", NULL},
    {"version: STSv1\nmode: testing\nmx: localhost\nmax_age: 1\n", 0, MTASTS_MODE_TESTING, 1,
     "localhost", NULL},
    {"version: STSv1\nmode: none\nmax_age: 1\nx-ext: caf\xc3\xa9 au lait\n", 0, MTASTS_MODE_NONE,
     1, "", NULL},
    {"version: STSv1\nmode: none\nmax_age: 1\n-k.: v\nk_: v\n", 0, MTASTS_MODE_NONE, 1, "", NULL},
    /* max_age: bounds and the one-year cap (Q18) */
    {"version: STSv1\nmode: none\nmax_age: 31557600\n", 0, MTASTS_MODE_NONE, 31557600, "", NULL},
    {"version: STSv1\nmode: none\nmax_age: 31557601\n", 0, MTASTS_MODE_NONE, 31557600, "", NULL},
    {"version: STSv1\nmode: none\nmax_age: 2147483647\n", 0, MTASTS_MODE_NONE, 31557600, "", NULL},
    {"version: STSv1\nmode: none\nmax_age: 0000000001\n", 0, MTASTS_MODE_NONE, 1, "", NULL},
    {"version: STSv1\nmode: none\nmax_age: 2147483648\n", -1, 0, 0, NULL, "out of range"},
    {"version: STSv1\nmode: none\nmax_age: 9999999999\n", -1, 0, 0, NULL, "out of range"},
    {"version: STSv1\nmode: none\nmax_age: 01234567890\n", -1, 0, 0, NULL, "leftover"},
    {"version: STSv1\nmode: none\nmax_age: a\n", -1, 0, 0, NULL, "max_age"},
    {"version: STSv1\nmode: none\nmax_age: -1\n", -1, 0, 0, NULL, "max_age"},
    {"version: STSv1\nmode: none\nmax_age: +1\n", -1, 0, 0, NULL, "max_age"},
    /* required fields */
    {"", -1, 0, 0, NULL, "expected key"},
    {"mode: none\nmax_age: 0", -1, 0, 0, NULL, "missing field \"version\""},
    {"version: STSv1\nmax_age: 0\nmx: example.com", -1, 0, 0, NULL, "missing field \"mode\""},
    {"version: STSv1\nmode: none", -1, 0, 0, NULL, "missing field \"max_age\""},
    {"version: STSv1\nmax_age: 0\nmode: enforce", -1, 0, 0, NULL, "missing mx given mode"},
    {"version: STSv1\nmax_age: 0\nmode: testing\n", -1, 0, 0, NULL, "missing mx given mode"},
    /* version and mode values */
    {"version: STSv0\nmode: none\nmax_age: 0", -1, 0, 0, NULL, "STSv1"},
    {"version: STSv10\nmode: none\nmax_age: 0", -1, 0, 0, NULL, "leftover"},
    {"version: STSv2\nmode: none\nmax_age: 0", -1, 0, 0, NULL, "STSv1"},
    {"version: stsv1\nmode: none\nmax_age: 0", -1, 0, 0, NULL, "STSv1"},
    {"version: STSv1 x\nmode: none\nmax_age: 0", -1, 0, 0, NULL, "leftover"},
    {"version: STSv1\nmode: bad\nmax_age: 1", -1, 0, 0, NULL, "expected one of"},
    {"version: STSv1\nmode: enforced\nmax_age: 1\nmx: a.b", -1, 0, 0, NULL, "leftover"},
    {"version: STSv1\nmode: Enforce\nmax_age: 1\nmx: a.b", -1, 0, 0, NULL, "expected one of"},
    {"version: STSv1\nmode: none\nmode: bad\nmax_age: 1", -1, 0, 0, NULL, "expected one of"},
    /* mx values */
    {"version: STSv1\nmode: enforce\nmax_age: 0\nmx:", -1, 0, 0, NULL, "label"},
    {"version: STSv1\nmode: enforce\nmax_age: 0\nmx: *.*.example", -1, 0, 0, NULL, "label"},
    {"version: STSv1\nmode: enforce\nmax_age: 0\nmx: **.example", -1, 0, 0, NULL, "label"},
    {"version: STSv1\nmode: enforce\nmax_age: 0\nmx: *", -1, 0, 0, NULL, "label"},
    {"version: STSv1\nmode: enforce\nmax_age: 0\nmx: test.example-", -1, 0, 0, NULL, "invalid mx"},
    {"version: STSv1\nmode: enforce\nmax_age: 0\nmx: -test.example", -1, 0, 0, NULL, "label"},
    {"version: STSv1\nmode: enforce\nmax_age: 0\nmx: ab--cd.example", -1, 0, 0, NULL,
     "invalid mx"},
    {"version: STSv1\nmode: enforce\nmax_age: 0\nmx: xn--zz.example", -1, 0, 0, NULL, "invalid mx"},
    {"version: STSv1\nmode: enforce\nmax_age: 0\nmx: a..example", -1, 0, 0, NULL, "label"},
    {"version: STSv1\nmode: enforce\nmax_age: 0\nmx: mx.example.", -1, 0, 0, NULL, "label"},
    {"version: STSv1\nmode: enforce\nmax_age: 0\nmx: mx_1.example", -1, 0, 0, NULL, "leftover"},
    {"version: STSv1\nmode: enforce\nmax_age: 0\nmx: 192.0.2.1", -1, 0, 0, NULL, "IP address"},
    {"version: STSv1\nmode: none\nmax_age: 0\nmx: m\xc3\xb8x.example", -1, 0, 0, NULL,
     "not U labels"},
    {"version: STSv1\nmode: enforce\nmax_age: 0\nmx: "
     "a123456789012345678901234567890123456789012345678901234567890123.example",
     -1, 0, 0, NULL, "invalid mx"}, /* 64-char label */
    /* extensions and keys */
    {"version: STSv1\nmode: none\nmax_age: 0\next:", -1, 0, 0, NULL, "empty extension value"},
    {"version: STSv1\nmode: none\nmax_age: 0\next:   \n", -1, 0, 0, NULL, "empty extension"},
    {"version: STSv1\nmode: none\nmax_age: 0\next: a\tb", -1, 0, 0, NULL, "leftover"},
    {"version: STSv1\nmode: none\nmax_age: 0\next: a\x01", -1, 0, 0, NULL, "leftover"},
    {"version: STSv1\nmode: none\nmax_age: 0\na12345678901234567890123456789012:1", -1, 0, 0,
     NULL, "expected \":\""},
    {"version: STSv1\nmode: none\nmax_age: 0\n_bad: test", -1, 0, 0, NULL, "expected key"},
    {"version: STSv1\nmode: none\nmax_age: 0\nmode none", -1, 0, 0, NULL, "expected \":\""},
    /* line structure */
    {"version: STSv1\n\nmode: none\nmax_age: 0", -1, 0, 0, NULL, "expected key"},
    {"version: STSv1\nmode: none\nmax_age: 0\n\n", -1, 0, 0, NULL, "expected key"},
    {"version: STSv1\nmode: none\nmax_age: 0\r\n\r\n", -1, 0, 0, NULL, "expected key"},
    {"version: STSv1\rmode: none\rmax_age: 0", -1, 0, 0, NULL, "leftover"},
    {"version: STSv1\nmode: none\nmax_age: 0\n\r", -1, 0, 0, NULL, "expected key"},
    {" version: STSv1\nmode: none\nmax_age: 0", -1, 0, 0, NULL, "expected key"},
    {"version : STSv1\nmode: none\nmax_age: 0", -1, 0, 0, NULL, "expected \":\""},
};

static void join_mx(const mtasts_policy *p, char *buf, size_t len)
{
    buf[0] = '\0';
    for (size_t i = 0; i < p->nmx; i++) {
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s%s", i ? " " : "", p->mx[i]);
    }
}

static void check_policy_case(size_t i, const pol_case *c, const char *buf, size_t len)
{
    mtasts_policy p;
    char err[200], mx[1024];
    int rc = mtasts_policy_parse(buf, len, &p, err, sizeof err);
    if (rc != c->rc)
        fail_msg("case %zu: rc %d, want %d (%s)", i, rc, c->rc, err);
    if (rc == 0) {
        join_mx(&p, mx, sizeof mx);
        if (p.mode != c->mode || p.max_age != c->max_age || strcmp(mx, c->mx) != 0)
            fail_msg("case %zu: got mode %s max_age %lld mx \"%s\"", i, mtasts_mode_name(p.mode),
                     (long long)p.max_age, mx);
    } else {
        assert_int_equal(p.nmx, 0); /* freed on error */
        if (!strstr(err, c->err))
            fail_msg("case %zu: error \"%s\", want \"%s\"", i, err, c->err);
    }
    mtasts_policy_free(&p);
}

static void test_policy_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(pol_cases); i++) {
        /* An exact-size copy without a terminating NUL: len is the bound. */
        size_t n = strlen(pol_cases[i].text);
        char *buf = malloc(n ? n : 1);
        assert_non_null(buf);
        memcpy(buf, pol_cases[i].text, n);
        check_policy_case(i, &pol_cases[i], buf, n);
        free(buf);
    }
}

/* Every prefix, in exact-size buffers: stays in bounds, and a prefix that
 * parses is a policy with the required fields. */
static void test_policy_prefixes(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(pol_cases); i++) {
        size_t n = strlen(pol_cases[i].text);
        for (size_t k = 0; k <= n; k++) {
            char *buf = malloc(k ? k : 1);
            assert_non_null(buf);
            memcpy(buf, pol_cases[i].text, k);
            mtasts_policy p;
            if (mtasts_policy_parse(buf, k, &p, NULL, 0) == 0)
                assert_true(p.mode == MTASTS_MODE_NONE || p.nmx > 0);
            mtasts_policy_free(&p);
            free(buf);
        }
    }
}

static void test_policy_limits(void **state)
{
    (void)state;
    char err[200];
    mtasts_policy p;
    /* 64 mx lines fit, 65 do not. */
    size_t cap = 65 * 40 + 100, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    len += (size_t)snprintf(buf, cap, "version: STSv1\nmode: enforce\nmax_age: 10\n");
    for (int i = 0; i < MTASTS_MAX_MX; i++)
        len += (size_t)snprintf(buf + len, cap - len, "mx: mx%d.example.com\n", i);
    assert_int_equal(mtasts_policy_parse(buf, len, &p, err, sizeof err), 0);
    assert_int_equal(p.nmx, MTASTS_MAX_MX);
    assert_string_equal(p.mx[63], "mx63.example.com");
    mtasts_policy_free(&p);
    len += (size_t)snprintf(buf + len, cap - len, "mx: one-more.example.com\n");
    assert_int_equal(mtasts_policy_parse(buf, len, &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "too many mx"));
    free(buf);
    /* Over the size limit before parsing anything. */
    assert_int_equal(mtasts_policy_parse("x", MTASTS_MAX_POLICY + 1, &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "exceeds maximum size"));
}

static void test_policy_copy_free(void **state)
{
    (void)state;
    const char *t = "version: STSv1\nmode: enforce\nmx: a.example\nmx: *.b.example\nmax_age: 9\n";
    mtasts_policy p, q;
    assert_int_equal(mtasts_policy_parse(t, strlen(t), &p, NULL, 0), 0);
    assert_int_equal(mtasts_policy_copy(&q, &p), 0);
    mtasts_policy_free(&p);
    assert_int_equal(p.nmx, 0);
    assert_int_equal(q.mode, MTASTS_MODE_ENFORCE);
    assert_int_equal(q.max_age, 9);
    assert_int_equal(q.nmx, 2);
    assert_string_equal(q.mx[0], "a.example");
    assert_string_equal(q.mx[1], "*.b.example");
    mtasts_policy_free(&q);
    mtasts_policy_free(&q); /* twice is harmless */
    mtasts_policy_free(NULL);
}

/* ================================================================== */
/* MX matching (20.8). */

typedef struct mx_case {
    const char *pattern, *host;
    bool match;
} mx_case;

static const mx_case mx_cases[] = {
    {"mx.example.com", "mx.example.com", true},
    {"mx.example.com", "mx.example.com.", true},
    {"mx.example.com", "MX.Example.com", true},
    {"mx.example.com", "x.mx.example.com", false},
    {"mx.example.com", "example.com", false},
    {"mx.example.com", "mx.example.co", false},
    {"mx.example.com", "mx.example.com.x", false},
    {"*.b.example", "sub.b.example", true},
    {"*.b.example", "b.example", false},
    {"*.b.example", "x.sub.b.example", false},
    {"*.b.example", ".b.example", false},
    {"*.b.example", "subb.example", false},
    {"*.b.example", "sub.b.example.", true},
    {"*.example.com", "mail.example.com", true},
    {"*.example.com", "example.com", false},
    {"*.example.com", "foo.bar.example.com", false},
    {"*.mx.example.test", "mx1.example.test", false},
};

static void test_mx_match_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(mx_cases); i++) {
        mtasts_policy p = {.mode = MTASTS_MODE_ENFORCE, .nmx = 1};
        p.mx[0] = (char *)mx_cases[i].pattern;
        if (mtasts_mx_match(&p, mx_cases[i].host) != mx_cases[i].match)
            fail_msg("case %zu: %s vs %s", i, mx_cases[i].pattern, mx_cases[i].host);
    }
    /* Any of several patterns; none when the list is empty. */
    mtasts_policy p = {.mode = MTASTS_MODE_ENFORCE, .nmx = 2};
    p.mx[0] = (char *)"mx1.example.test";
    p.mx[1] = (char *)"*.mx.example.test";
    assert_true(mtasts_mx_match(&p, "mx1.example.test"));
    assert_true(mtasts_mx_match(&p, "a.mx.example.test"));
    assert_false(mtasts_mx_match(&p, "mx2.example.test"));
    mtasts_policy none = {0};
    assert_false(mtasts_mx_match(&none, "mx1.example.test"));
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(mtasts_mode_name(MTASTS_MODE_NONE), "none");
    assert_string_equal(mtasts_mode_name(MTASTS_MODE_TESTING), "testing");
    assert_string_equal(mtasts_mode_name(MTASTS_MODE_ENFORCE), "enforce");
    static const struct {
        mtasts_err e;
        const char *reason;
    } r[] = {
        {MTASTS_OK, ""},
        {MTASTS_ERR_NO_RECORD, "no-mta-sts-dns-txt-record"},
        {MTASTS_ERR_MULTIPLE, "multiple-mta-sts-records"},
        {MTASTS_ERR_DNS, "dns-lookup"},
        {MTASTS_ERR_RECORD_SYNTAX, "record-syntax-error"},
        {MTASTS_ERR_NO_POLICY, "no-policy-served"},
        {MTASTS_ERR_FETCH, "cannot-fetch-policy"},
        {MTASTS_ERR_POLICY_SYNTAX, "policy-syntax-error"},
    };
    for (size_t i = 0; i < ARRAY_LEN(r); i++)
        assert_string_equal(mtasts_err_reason(r[i].e), r[i].reason);
}

/* ================================================================== */
/* TLSRPT record (23.10). */

typedef struct rpt_case {
    const char *txt;
    int rc;
    const char *rua; /* joined by " " */
    const char *err;
} rpt_case;

static const rpt_case rpt_cases[] = {
    {"v=TLSRPTv1; rua=mailto:tlsrpt@mox.example;", 0, "mailto:tlsrpt@mox.example", NULL},
    {"v=TLSRPTv1; rua=mailto:tlsrpt@mox.example , \t\t https://mox.example/tlsrpt  ", 0,
     "mailto:tlsrpt@mox.example https://mox.example/tlsrpt", NULL},
    {"v=TLSRPTv1; rua=mailto:tlsrpt@mox.example; ext=yes", 0, "mailto:tlsrpt@mox.example", NULL},
    {"v=TLSRPTv1 ; rua=mailto:x@x.example; rua=mailto:y@x.example", 0,
     "mailto:x@x.example mailto:y@x.example", NULL},
    {"v=TLSRPTv1;rua=https://r.example/a%2Cb?x=1", 0, "https://r.example/a%2Cb?x=1", NULL},
    {"v=TLSRPTv1; rua=mailto:a@b.example,mailto:c@d.example", 0,
     "mailto:a@b.example mailto:c@d.example", NULL},
    {"v=TLSRPTv1", 1, NULL, NULL},
    {"v=TLSRPTv0", 1, NULL, NULL},
    {"v=TLSRPTv10", 1, NULL, NULL},
    {"v=TLSRPTv2", 1, NULL, NULL},
    {"v=STSv1; id=a", 1, NULL, NULL},
    {"v=TLSRPTv1;", -1, NULL, "expected key"},
    {"v=TLSRPTv1; ext=1", -1, NULL, "missing rua"},
    {"v=TLSRPTv1; rua=", -1, NULL, "empty rua"},
    {"v=TLSRPTv1; rua=noscheme", -1, NULL, "invalid rua"},
    {"v=TLSRPTv1; rua=1http://x", -1, NULL, "invalid rua"},
    {"v=TLSRPTv1; rua=,, ,", -1, NULL, "empty rua"},
    {"v=TLSRPTv1; rua=mailto:a@b.example,", -1, NULL, "empty rua"},
    {"v=TLSRPTv1; rua=mailto:x@x.example; more=", -1, NULL, "empty value"},
    {"v=TLSRPTv1; rua=mailto:x@x.example; a12345678901234567890123456789012=1", -1, NULL,
     "expected \"=\""},
    {"v=TLSRPTv1; rua=mailto:x@x.example; 1%=a", -1, NULL, "expected \"=\""},
    {"v=TLSRPTv1; rua=mailto:x@x.example; test==", -1, NULL, "empty value"},
    {"v=TLSRPTv1; rua=mailto:x@x.example;;", -1, NULL, "expected key"},
    {"v=TLSRPTv1; rua=mailto:x@x.example other", -1, NULL, "leftover"},
    {"v=TLSRPTv1; rua=mailto:x@x.example!10m", -1, NULL, "leftover"},
    {"v=TLSRPTv1; rua=http://bad/%", -1, NULL, "invalid rua"},
    {"v=TLSRPTv1; rua=http://bad/%zz", -1, NULL, "invalid rua"},
};

static void test_tlsrpt_record_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(rpt_cases); i++) {
        const rpt_case *c = &rpt_cases[i];
        tlsrpt_record rec;
        char err[200], rua[512] = "";
        int rc = tlsrpt_record_parse(c->txt, &rec, err, sizeof err);
        if (rc != c->rc)
            fail_msg("case %zu %s: rc %d, want %d (%s)", i, c->txt, rc, c->rc, err);
        for (size_t j = 0; rc == 0 && j < rec.nrua; j++) {
            size_t used = strlen(rua);
            snprintf(rua + used, sizeof rua - used, "%s%s", j ? " " : "", rec.rua[j]);
        }
        if (rc == 0 && strcmp(rua, c->rua) != 0)
            fail_msg("case %zu: rua \"%s\", want \"%s\"", i, rua, c->rua);
        if (rc < 0 && !strstr(err, c->err))
            fail_msg("case %zu %s: error \"%s\", want \"%s\"", i, c->txt, err, c->err);
        tlsrpt_record_free(&rec);
    }
}

static void test_tlsrpt_record_many(void **state)
{
    (void)state;
    char txt[1024] = "v=TLSRPTv1; rua=";
    for (int i = 0; i < TLSRPT_MAX_RUA + 4; i++) {
        size_t used = strlen(txt);
        snprintf(txt + used, sizeof txt - used, "%smailto:r%d@x.example", i ? "," : "", i);
    }
    tlsrpt_record rec;
    assert_int_equal(tlsrpt_record_parse(txt, &rec, NULL, 0), 0);
    assert_int_equal(rec.nrua, TLSRPT_MAX_RUA); /* bounded: the rest is checked, not kept */
    assert_string_equal(rec.rua[0], "mailto:r0@x.example");
    tlsrpt_record_free(&rec);
}

/* ================================================================== */
/* Lookups over the fixture resolver (20.1-20.2, 23.11). */

static void test_lookup_record(void **state)
{
    (void)state;
    dns_resolver *r = dns_fixture_new();
    assert_non_null(r);
    mtasts_result res;

    mtasts_lookup_record(r, "none.test", &res);
    assert_int_equal(res.err, MTASTS_ERR_NO_RECORD);
    assert_string_equal(res.msg, "mtasts: no mta-sts dns txt record");
    assert_int_equal(dns_fixture_lookups(r, "_mta-sts.none.test.", DNS_T_TXT), 1);

    dns_fixture_add(r, "_mta-sts.ok.test.", DNS_T_TXT, DNS_INSECURE, "v=spf1 -all");
    dns_fixture_add(r, "_mta-sts.ok.test.", DNS_T_TXT, DNS_INSECURE, "v=STSv1; id=abc123");
    dns_fixture_add(r, "_mta-sts.ok.test.", DNS_T_TXT, DNS_INSECURE, "v=STSv10; id=x");
    mtasts_lookup_record(r, "ok.test", &res);
    assert_int_equal(res.err, MTASTS_OK);
    assert_true(res.have_record);
    assert_string_equal(res.record.id, "abc123");
    assert_string_equal(res.record.raw, "v=STSv1; id=abc123");
    mtasts_lookup_record(r, "OK.test.", &res); /* absolute and mixed case too */
    assert_int_equal(res.err, MTASTS_OK);

    dns_fixture_add(r, "_mta-sts.only-other.test.", DNS_T_TXT, DNS_INSECURE, "hello");
    mtasts_lookup_record(r, "only-other.test", &res);
    assert_int_equal(res.err, MTASTS_ERR_NO_RECORD);

    dns_fixture_add(r, "_mta-sts.multi.test.", DNS_T_TXT, DNS_INSECURE, "v=STSv1; id=a");
    dns_fixture_add(r, "_mta-sts.multi.test.", DNS_T_TXT, DNS_INSECURE, "v=STSv1; id=b");
    mtasts_lookup_record(r, "multi.test", &res);
    assert_int_equal(res.err, MTASTS_ERR_MULTIPLE);
    assert_false(res.have_record);
    assert_string_equal(res.msg, "mtasts: multiple mta-sts records");

    dns_fixture_add(r, "_mta-sts.syntax.test.", DNS_T_TXT, DNS_INSECURE, "v=STSv1; id=a-b");
    mtasts_lookup_record(r, "syntax.test", &res);
    assert_int_equal(res.err, MTASTS_ERR_RECORD_SYNTAX);
    assert_non_null(strstr(res.msg, "mtasts: record syntax error: leftover characters"));

    /* A CNAME is followed by the resolver (20.1). */
    dns_fixture_add(r, "_mta-sts.alias.test.", DNS_T_CNAME, DNS_INSECURE, "_mta-sts.ok.test.");
    mtasts_lookup_record(r, "alias.test", &res);
    assert_int_equal(res.err, MTASTS_OK);
    assert_string_equal(res.record.id, "abc123");

    dns_fixture_fail(r, "_mta-sts.servfail.test.", DNS_T_TXT, DNS_SERVFAIL, DNS_INSECURE, 6);
    mtasts_lookup_record(r, "servfail.test", &res);
    assert_int_equal(res.err, MTASTS_ERR_DNS);
    assert_int_equal(res.ede, 6); /* kept for the TLSRPT reason */
    assert_non_null(strstr(res.msg, "mtasts: dns lookup: "));

    dns_fixture_fail(r, "_mta-sts.timeout.test.", DNS_T_TXT, DNS_TEMPFAIL, DNS_INSECURE, -1);
    mtasts_lookup_record(r, "timeout.test", &res);
    assert_int_equal(res.err, MTASTS_ERR_DNS);
    assert_int_equal(res.ede, -1);

    mtasts_lookup_record(r, "bad domain", &res);
    assert_int_equal(res.err, MTASTS_ERR_DNS);
    dns_resolver_free(r);
}

static void test_tlsrpt_lookup(void **state)
{
    (void)state;
    dns_resolver *r = dns_fixture_new();
    tlsrpt_record rec;
    char err[200];
    assert_int_equal(tlsrpt_record_lookup(r, "none.test", &rec, err, sizeof err), 1);
    assert_int_equal(dns_fixture_lookups(r, "_smtp._tls.none.test.", DNS_T_TXT), 1);

    dns_fixture_add(r, "_smtp._tls.ok.test.", DNS_T_TXT, DNS_INSECURE, "v=STSv1; id=a");
    dns_fixture_add(r, "_smtp._tls.ok.test.", DNS_T_TXT, DNS_INSECURE,
                    "v=TLSRPTv1; rua=mailto:tls@ok.test");
    assert_int_equal(tlsrpt_record_lookup(r, "ok.test", &rec, err, sizeof err), 0);
    assert_int_equal(rec.nrua, 1);
    assert_string_equal(rec.rua[0], "mailto:tls@ok.test");
    assert_string_equal(rec.raw, "v=TLSRPTv1; rua=mailto:tls@ok.test");
    tlsrpt_record_free(&rec);

    dns_fixture_add(r, "_smtp._tls.other.test.", DNS_T_TXT, DNS_INSECURE, "v=spf1");
    assert_int_equal(tlsrpt_record_lookup(r, "other.test", &rec, err, sizeof err), 1);

    dns_fixture_add(r, "_smtp._tls.two.test.", DNS_T_TXT, DNS_INSECURE, "v=TLSRPTv1;rua=mailto:a@b");
    dns_fixture_add(r, "_smtp._tls.two.test.", DNS_T_TXT, DNS_INSECURE, "v=TLSRPTv1;rua=mailto:c@d");
    assert_int_equal(tlsrpt_record_lookup(r, "two.test", &rec, err, sizeof err), -1);
    assert_non_null(strstr(err, "multiple"));

    dns_fixture_add(r, "_smtp._tls.bad.test.", DNS_T_TXT, DNS_INSECURE, "v=TLSRPTv1; rua=x");
    assert_int_equal(tlsrpt_record_lookup(r, "bad.test", &rec, err, sizeof err), -1);
    assert_non_null(strstr(err, "record syntax error"));

    dns_fixture_fail(r, "_smtp._tls.fail.test.", DNS_T_TXT, DNS_SERVFAIL, DNS_INSECURE, -1);
    assert_int_equal(tlsrpt_record_lookup(r, "fail.test", &rec, err, sizeof err), -1);
    assert_non_null(strstr(err, "dns lookup"));
    dns_resolver_free(r);
}

/* ================================================================== */
/* The HTTPS fetch (20.5) against fakehttps.py. */

typedef struct server {
    bool ok;
    char dir[64];
    char mode_file[128], ca[128], other_ca[128];
    pid_t pid;
    uint16_t port;
} server;

static server srv;

static int run(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

/* A CA, a second CA that signed nothing we serve, and a server certificate
 * for mta-sts.example.test, made with the openssl CLI. */
static int make_certs(const char *dir)
{
    static const char ca[] =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
        " -keyout %s.key -out %s.pem -days 2 -subj /CN=%s"
        " -addext basicConstraints=critical,CA:TRUE"
        " -addext keyUsage=critical,keyCertSign,cRLSign >/dev/null 2>&1";
    char cmd[1024];
    snprintf(cmd, sizeof cmd, ca, "ca", "ca", "smtpc-test-ca");
    if (run("cd %s && %s", dir, cmd) != 0)
        return -1;
    snprintf(cmd, sizeof cmd, ca, "other", "other", "smtpc-other-ca");
    if (run("cd %s && %s", dir, cmd) != 0)
        return -1;
    return run("cd %s && printf '%%s\\n' 'subjectAltName=DNS:mta-sts.example.test'"
               " 'basicConstraints=critical,CA:FALSE' 'extendedKeyUsage=serverAuth' > ext.cnf"
               " && openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
               " -keyout srv.key -out srv.csr -subj /CN=mta-sts.example.test >/dev/null 2>&1"
               " && openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial"
               " -out srv.pem -days 2 -extfile ext.cnf >/dev/null 2>&1",
               dir);
}

static void set_mode(const char *mode)
{
    FILE *f = fopen(srv.mode_file, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", mode);
    fclose(f);
}

/* Starts the server and reads its port from its first line of output. */
static int start_server(void)
{
    int fd[2];
    char cert[128], key[128];
    snprintf(cert, sizeof cert, "%s/srv.pem", srv.dir);
    snprintf(key, sizeof key, "%s/srv.key", srv.dir);
    if (pipe(fd) != 0)
        return -1;
    srv.pid = fork();
    if (srv.pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        execlp("python3", "python3", FAKEHTTPS_PY, "--cert", cert, "--key", key, "--mode-file",
               srv.mode_file, (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    char line[32] = "";
    size_t n = 0;
    struct pollfd p = {.fd = fd[0], .events = POLLIN};
    while (n + 1 < sizeof line && poll(&p, 1, 10000) == 1) {
        ssize_t r = read(fd[0], line + n, 1);
        if (r != 1 || line[n] == '\n')
            break;
        n++;
    }
    close(fd[0]);
    line[n] = '\0';
    srv.port = (uint16_t)atoi(line);
    return srv.port ? 0 : -1;
}

static int fetch_group_setup(void **state)
{
    (void)state;
    memset(&srv, 0, sizeof srv);
    snprintf(srv.dir, sizeof srv.dir, "/tmp/smtpc-mtasts-XXXXXX");
    if (!mkdtemp(srv.dir))
        return -1;
    snprintf(srv.mode_file, sizeof srv.mode_file, "%s/mode", srv.dir);
    snprintf(srv.ca, sizeof srv.ca, "%s/ca.pem", srv.dir);
    snprintf(srv.other_ca, sizeof srv.other_ca, "%s/other.pem", srv.dir);
    if (run("command -v openssl >/dev/null && command -v python3 >/dev/null") != 0) {
        fprintf(stderr, "# openssl or python3 missing: fetch tests skipped\n");
        return 0;
    }
    if (make_certs(srv.dir) != 0)
        return -1;
    set_mode("ok");
    if (start_server() != 0)
        return -1;
    srv.ok = true;
    return 0;
}

static int fetch_group_teardown(void **state)
{
    (void)state;
    if (srv.pid > 0) {
        kill(srv.pid, SIGTERM);
        waitpid(srv.pid, NULL, 0);
    }
    if (srv.dir[0])
        run("rm -rf %s", srv.dir);
    return 0;
}

/* The fixture resolver for the fetch tests: the policy host on loopback. */
static dns_resolver *fetch_resolver(void)
{
    dns_resolver *r = dns_fixture_new();
    assert_non_null(r);
    dns_fixture_add(r, "mta-sts.example.test.", DNS_T_A, DNS_INSECURE, "127.0.0.1");
    dns_fixture_add(r, "_mta-sts.example.test.", DNS_T_TXT, DNS_INSECURE, "v=STSv1; id=web1");
    dns_fixture_add(r, "mta-sts.other.test.", DNS_T_A, DNS_INSECURE, "127.0.0.1");
    dns_fixture_fail(r, "mta-sts.broken.test.", DNS_T_A, DNS_SERVFAIL, DNS_INSECURE, -1);
    dns_fixture_fail(r, "mta-sts.broken.test.", DNS_T_AAAA, DNS_SERVFAIL, DNS_INSECURE, -1);
    return r;
}

static mtasts_fetch_opts fetch_opts(void)
{
    mtasts_fetch_opts o = {.ca_file = srv.ca, .timeout_ms = 10000, .https_port = srv.port};
    return o;
}

/* Fetches domain with the server in mode; res must be freed. */
static void fetch_mode(const char *mode, const char *domain, const mtasts_fetch_opts *o,
                       mtasts_result *res)
{
    dns_resolver *r = fetch_resolver();
    set_mode(mode);
    memset(res, 0, sizeof *res);
    mtasts_fetch_policy(r, domain, o, res);
    dns_resolver_free(r);
}

#define NEED_SERVER()                                                                        \
    do {                                                                                     \
        if (!srv.ok)                                                                         \
            skip();                                                                          \
    } while (0)

static void test_fetch_ok(void **state)
{
    (void)state;
    NEED_SERVER();
    mtasts_fetch_opts o = fetch_opts();
    mtasts_result res;
    dns_resolver *r = fetch_resolver();
    set_mode("ok");
    memset(&res, 0, sizeof res);
    mtasts_fetch_policy(r, "example.test", &o, &res);
    if (res.err != MTASTS_OK)
        fail_msg("fetch: %s", res.msg);
    assert_int_equal(res.policy.mode, MTASTS_MODE_ENFORCE);
    assert_int_equal(res.policy.max_age, 86400);
    assert_int_equal(res.policy.nmx, 2);
    assert_string_equal(res.policy.mx[1], "*.mx.example.test");
    assert_non_null(strstr(res.policy_text, "mode: enforce\r\n"));
    assert_false(res.webpki_error);
    /* The host was resolved through our resolver (the system one does not
     * know mta-sts.example.test). */
    assert_int_equal(dns_fixture_lookups(r, "mta-sts.example.test.", DNS_T_A), 1);
    mtasts_result_free(&res);
    dns_resolver_free(r);
}

static void test_fetch_exact_limit(void **state)
{
    (void)state;
    NEED_SERVER();
    mtasts_fetch_opts o = fetch_opts();
    mtasts_result res;
    fetch_mode("exact", "example.test", &o, &res);
    if (res.err != MTASTS_OK)
        fail_msg("fetch: %s", res.msg);
    assert_int_equal(strlen(res.policy_text), MTASTS_MAX_POLICY);
    assert_int_equal(res.policy.mode, MTASTS_MODE_TESTING);
    mtasts_result_free(&res);
}

static void test_fetch_oversize(void **state)
{
    (void)state;
    NEED_SERVER();
    mtasts_fetch_opts o = fetch_opts();
    mtasts_result res;
    fetch_mode("oversize", "example.test", &o, &res);
    assert_int_equal(res.err, MTASTS_ERR_POLICY_SYNTAX);
    assert_non_null(strstr(res.msg, "input exceeds maximum size"));
    assert_null(res.policy_text);
    mtasts_result_free(&res);
}

static void test_fetch_bad_policy(void **state)
{
    (void)state;
    NEED_SERVER();
    mtasts_fetch_opts o = fetch_opts();
    mtasts_result res;
    fetch_mode("bad", "example.test", &o, &res);
    assert_int_equal(res.err, MTASTS_ERR_POLICY_SYNTAX);
    assert_non_null(strstr(res.msg, "mtasts: policy syntax error: "));
    assert_non_null(res.policy_text); /* the raw text is still returned */
    assert_string_equal(res.policy_text, "this is not a policy\n");
    mtasts_result_free(&res);
}

static void test_fetch_status(void **state)
{
    (void)state;
    NEED_SERVER();
    mtasts_fetch_opts o = fetch_opts();
    mtasts_result res;
    fetch_mode("404", "example.test", &o, &res);
    assert_int_equal(res.err, MTASTS_ERR_NO_POLICY);
    assert_null(res.policy_text);
    fetch_mode("500", "example.test", &o, &res);
    assert_int_equal(res.err, MTASTS_ERR_FETCH);
    assert_non_null(strstr(res.msg, "http status 500 while status 200 is required"));
    assert_false(res.webpki_error);
    /* A redirect is not followed: an error (RFC 8461 3.3). */
    fetch_mode("redirect", "example.test", &o, &res);
    assert_int_equal(res.err, MTASTS_ERR_FETCH);
    assert_non_null(strstr(res.msg, "http status 301"));
    assert_null(res.policy_text);
}

static void test_fetch_untrusted(void **state)
{
    (void)state;
    NEED_SERVER();
    mtasts_fetch_opts o = fetch_opts();
    mtasts_result res;
    o.ca_file = srv.other_ca; /* the server's CA is not among the roots */
    fetch_mode("ok", "example.test", &o, &res);
    assert_int_equal(res.err, MTASTS_ERR_FETCH);
    assert_true(res.webpki_error);
    assert_string_equal(res.tls_type, "certificate-not-trusted");
    assert_string_equal(res.tls_reason, "");
    assert_null(res.policy_text);
    /* Nor is it in the system store. */
    o.ca_file = NULL;
    fetch_mode("ok", "example.test", &o, &res);
    assert_int_equal(res.err, MTASTS_ERR_FETCH);
    assert_true(res.webpki_error);
    assert_string_equal(res.tls_type, "certificate-not-trusted");
}

static void test_fetch_name_mismatch(void **state)
{
    (void)state;
    NEED_SERVER();
    mtasts_fetch_opts o = fetch_opts();
    mtasts_result res;
    /* mta-sts.other.test is served the certificate of mta-sts.example.test. */
    fetch_mode("ok", "other.test", &o, &res);
    assert_int_equal(res.err, MTASTS_ERR_FETCH);
    assert_true(res.webpki_error);
    assert_string_equal(res.tls_type, "certificate-host-mismatch");
    assert_string_equal(res.tls_reason, "");
}

static void test_fetch_timeout(void **state)
{
    (void)state;
    NEED_SERVER();
    mtasts_fetch_opts o = fetch_opts();
    mtasts_result res;
    struct timespec t0, t1;
    o.timeout_ms = 700;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    fetch_mode("slow", "example.test", &o, &res);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(res.err, MTASTS_ERR_FETCH);
    assert_false(res.webpki_error);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (secs > 3.0)
        fail_msg("the fetch took %.1f s despite a 0.7 s timeout", secs);
}

static void test_fetch_dns(void **state)
{
    (void)state;
    NEED_SERVER();
    mtasts_fetch_opts o = fetch_opts();
    mtasts_result res;
    /* The policy host does not exist: no policy served (spec 20.5). */
    fetch_mode("ok", "nohost.test", &o, &res);
    assert_int_equal(res.err, MTASTS_ERR_NO_POLICY);
    /* It cannot be resolved: a fetch error. */
    fetch_mode("ok", "broken.test", &o, &res);
    assert_int_equal(res.err, MTASTS_ERR_FETCH);
    assert_non_null(strstr(res.msg, "dns lookup of mta-sts.broken.test"));
    fetch_mode("ok", "bad/domain", &o, &res);
    assert_int_equal(res.err, MTASTS_ERR_FETCH);
}

static void test_get(void **state)
{
    (void)state;
    NEED_SERVER();
    mtasts_fetch_opts o = fetch_opts();
    mtasts_result res;
    dns_resolver *r = fetch_resolver();
    set_mode("ok");
    mtasts_get(r, "example.test", &o, &res);
    if (res.err != MTASTS_OK)
        fail_msg("get: %s", res.msg);
    assert_true(res.have_record);
    assert_string_equal(res.record.id, "web1");
    assert_int_equal(res.policy.mode, MTASTS_MODE_ENFORCE);
    mtasts_result_free(&res);
    /* A fetch error comes with the record (20.9). */
    set_mode("404");
    mtasts_get(r, "example.test", &o, &res);
    assert_int_equal(res.err, MTASTS_ERR_NO_POLICY);
    assert_true(res.have_record);
    assert_string_equal(res.record.id, "web1");
    mtasts_result_free(&res);
    /* No record: no fetch at all. */
    mtasts_get(r, "other.test", &o, &res);
    assert_int_equal(res.err, MTASTS_ERR_NO_RECORD);
    assert_int_equal(dns_fixture_lookups(r, "mta-sts.other.test.", DNS_T_A), 0);
    dns_resolver_free(r);
}

/* ================================================================== */
/* The cache (21.2-21.4) with the fetch replaced. */

#define DOMAIN "example.test"
#define NOW 1700000000

static const char enforce_text[] =
    "version: STSv1\nmode: enforce\nmx: mx1.example.test\nmx: *.mx.example.test\nmax_age: 86400\n";
static const char testing_text[] =
    "version: STSv1\r\nmode: testing\r\nmx: mx2.example.test\r\nmax_age: 3600\r\n";
static const char none_text[] = "version: STSv1\nmode: none\nmax_age: 600\n";

typedef struct hook {
    mtasts_err err;
    const char *text;
    long x509; /* a certificate failure when non-zero */
    int calls;
} hook;

static void hook_fetch(void *ud, const char *domain, mtasts_result *out)
{
    hook *h = ud;
    (void)domain;
    h->calls++;
    out->err = h->err;
    snprintf(out->msg, sizeof out->msg, "hook");
    if (h->x509) {
        out->webpki_error = true;
        tls_verify_error_to_tlsrpt(h->x509, &out->tls_type, &out->tls_reason);
    }
    if (h->text) {
        out->policy_text = strdup(h->text);
        if (h->err == MTASTS_OK)
            assert_int_equal(mtasts_policy_parse(h->text, strlen(h->text), &out->policy, NULL, 0),
                             0);
    }
}

typedef struct cache_fx {
    char dir[64];
    mtasts_cache *c;
    hook h;
    mtasts_fetch_opts o;
} cache_fx;

static int cache_setup(void **state)
{
    cache_fx *fx = calloc(1, sizeof *fx);
    char err[256];
    snprintf(fx->dir, sizeof fx->dir, "/tmp/smtpc-mtasts-cache-XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    fx->c = mtasts_cache_open(fx->dir, err, sizeof err);
    if (!fx->c) {
        fprintf(stderr, "cache open: %s\n", err);
        return -1;
    }
    fx->o.fetch = hook_fetch;
    fx->o.fetch_ud = &fx->h;
    *state = fx;
    return 0;
}

static int cache_teardown(void **state)
{
    cache_fx *fx = *state;
    mtasts_cache_close(fx->c);
    run("rm -rf %s", fx->dir);
    free(fx);
    return 0;
}

/* An empty directory, removed afterwards even when the test fails. */
static int dir_setup(void **state)
{
    char *dir = malloc(64);
    if (!dir)
        return -1;
    snprintf(dir, 64, "/tmp/smtpc-mtasts-dir-XXXXXX");
    if (!mkdtemp(dir)) {
        free(dir);
        return -1;
    }
    *state = dir;
    return 0;
}

static int dir_teardown(void **state)
{
    run("rm -rf %s", (char *)*state);
    free(*state);
    return 0;
}

static dns_resolver *txt_resolver(const char *id)
{
    dns_resolver *r = dns_fixture_new();
    char txt[64];
    assert_non_null(r);
    if (id) {
        snprintf(txt, sizeof txt, "v=STSv1; id=%s", id);
        dns_fixture_add(r, "_mta-sts." DOMAIN ".", DNS_T_TXT, DNS_INSECURE, txt);
    }
    return r;
}

/* The stored row of DOMAIN, read with sqlite directly. */
typedef struct row {
    bool present;
    int64_t inserted, valid_end, last_update, last_use, max_age;
    int backoff;
    char record_id[64], mode[16], mx[512], text[1024];
} row;

static row db_row(const char *dir)
{
    row rw = {0};
    char path[128];
    sqlite3 *db;
    sqlite3_stmt *st;
    snprintf(path, sizeof path, "%s/mtasts.sqlite", dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT inserted, valid_end, last_update, last_use, backoff,"
                                        " record_id, mode, max_age, mx, policy_text"
                                        " FROM mtasts_policy WHERE domain = '" DOMAIN "'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW) {
        rw.present = true;
        rw.inserted = sqlite3_column_int64(st, 0);
        rw.valid_end = sqlite3_column_int64(st, 1);
        rw.last_update = sqlite3_column_int64(st, 2);
        rw.last_use = sqlite3_column_int64(st, 3);
        rw.backoff = sqlite3_column_int(st, 4);
        snprintf(rw.record_id, sizeof rw.record_id, "%s", sqlite3_column_text(st, 5));
        snprintf(rw.mode, sizeof rw.mode, "%s", sqlite3_column_text(st, 6));
        rw.max_age = sqlite3_column_int64(st, 7);
        snprintf(rw.mx, sizeof rw.mx, "%s", sqlite3_column_text(st, 8));
        snprintf(rw.text, sizeof rw.text, "%s", sqlite3_column_text(st, 9));
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rw;
}

/* Checks the recipient-domain result: policy type and domain, and the one
 * detail (type, reason) or none when dtype is NULL. */
static void check_result(const mtasts_outcome *out, const char *ptype, const char *dtype,
                         const char *reason)
{
    assert_non_null(out->result);
    assert_string_equal(out->internal_error, "");
    assert_string_equal(smtpc_tlsrpt_policy_type(out->result), ptype);
    assert_string_equal(smtpc_tlsrpt_policy_domain(out->result), DOMAIN);
    if (!dtype) {
        assert_int_equal(smtpc_tlsrpt_detail_count(out->result), 0);
        assert_string_equal(out->error_reason, "");
        return;
    }
    assert_int_equal(smtpc_tlsrpt_detail_count(out->result), 1);
    assert_string_equal(smtpc_tlsrpt_detail_field(out->result, 0, "result-type"), dtype);
    assert_string_equal(smtpc_tlsrpt_detail_field(out->result, 0, "failure-reason-code"), reason);
    assert_int_equal(smtpc_tlsrpt_detail_failed_sessions(out->result, 0), 1);
    assert_string_equal(out->error_reason, reason);
}

/* One mtasts_cache_get over a resolver publishing record id (NULL: none). */
static mtasts_outcome get_at(cache_fx *fx, const char *id, int64_t now)
{
    dns_resolver *r = txt_resolver(id);
    mtasts_outcome out;
    assert_int_equal(mtasts_cache_get(fx->c, r, DOMAIN, &fx->o, now, &out), 0);
    dns_resolver_free(r);
    return out;
}

/* Stores an enforce policy with id "one" at NOW. */
static void prime_enforce(cache_fx *fx)
{
    fx->h = (hook){.err = MTASTS_OK, .text = enforce_text};
    mtasts_outcome out = get_at(fx, "one", NOW);
    assert_true(out.have_policy);
    mtasts_outcome_free(&out);
    fx->h.calls = 0;
}

static void test_cache_open_dir(void **state)
{
    const char *base = *state;
    char dir[128], err[256];
    struct stat st;
    snprintf(dir, sizeof dir, "%s/state/smtpc", base);
    mtasts_cache *c = mtasts_cache_open(dir, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    mtasts_cache_close(c);
    /* Reopening an existing cache works. */
    c = mtasts_cache_open(dir, err, sizeof err);
    assert_non_null(c);
    mtasts_cache_close(c);
    /* A file in the way fails with a message. */
    char file[160];
    snprintf(file, sizeof file, "%s/file", base);
    fclose(fopen(file, "w"));
    assert_null(mtasts_cache_open(file, err, sizeof err));
    assert_true(strlen(err) > 0);
}

static void test_cache_first_ok(void **state)
{
    cache_fx *fx = *state;
    fx->h = (hook){.err = MTASTS_OK, .text = enforce_text};
    mtasts_outcome out = get_at(fx, "one", NOW);
    check_result(&out, "sts", NULL, NULL);
    assert_true(out.have_policy);
    assert_true(out.fresh);
    assert_false(out.failed);
    assert_int_equal(out.policy.mode, MTASTS_MODE_ENFORCE);
    assert_string_equal(out.policy_id, "one");
    assert_int_equal(fx->h.calls, 1);
    mtasts_outcome_free(&out);
    row rw = db_row(fx->dir);
    assert_true(rw.present);
    assert_int_equal(rw.backoff, 0);
    assert_string_equal(rw.record_id, "one");
    assert_string_equal(rw.mode, "enforce");
    assert_int_equal(rw.max_age, 86400);
    assert_int_equal(rw.valid_end, NOW + 86400);
    assert_int_equal(rw.inserted, NOW);
    assert_string_equal(rw.mx, "mx1.example.test\n*.mx.example.test");
    assert_string_equal(rw.text, enforce_text);
}

static void test_cache_first_none_mode(void **state)
{
    cache_fx *fx = *state;
    fx->h = (hook){.err = MTASTS_OK, .text = none_text};
    mtasts_outcome out = get_at(fx, "n1", NOW);
    check_result(&out, "no-policy-found", NULL, NULL);
    assert_true(out.have_policy);
    assert_int_equal(out.policy.mode, MTASTS_MODE_NONE);
    assert_true(out.fresh);
    mtasts_outcome_free(&out);
    row rw = db_row(fx->dir);
    assert_true(rw.present);
    assert_string_equal(rw.mode, "none");
    assert_int_equal(rw.backoff, 0);
    assert_int_equal(rw.valid_end, NOW + 600);
}

static void test_cache_first_no_record(void **state)
{
    cache_fx *fx = *state;
    fx->h = (hook){.err = MTASTS_OK, .text = enforce_text};
    mtasts_outcome out = get_at(fx, NULL, NOW);
    check_result(&out, "no-policy-found", NULL, NULL);
    assert_false(out.have_policy);
    assert_true(out.fresh);
    assert_false(out.failed);
    assert_int_equal(fx->h.calls, 0);
    mtasts_outcome_free(&out);
    assert_false(db_row(fx->dir).present); /* not cached */
}

static void test_cache_first_record_errors(void **state)
{
    cache_fx *fx = *state;
    static const struct {
        const char *txt1, *txt2, *reason;
    } cases[] = {
        {"v=STSv1; id=a", "v=STSv1; id=b", "multiple-mta-sts-records"},
        {"v=STSv1; id=a-b", NULL, "record-syntax-error"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        dns_resolver *r = dns_fixture_new();
        dns_fixture_add(r, "_mta-sts." DOMAIN ".", DNS_T_TXT, DNS_INSECURE, cases[i].txt1);
        if (cases[i].txt2)
            dns_fixture_add(r, "_mta-sts." DOMAIN ".", DNS_T_TXT, DNS_INSECURE, cases[i].txt2);
        mtasts_outcome out;
        assert_int_equal(mtasts_cache_get(fx->c, r, DOMAIN, &fx->o, NOW, &out), 0);
        check_result(&out, "sts", "sts-policy-fetch-error", cases[i].reason);
        assert_false(out.have_policy);
        assert_true(out.fresh);
        assert_false(out.failed);
        mtasts_outcome_free(&out);
        dns_resolver_free(r);
        assert_false(db_row(fx->dir).present); /* not cached */
    }
    assert_int_equal(fx->h.calls, 0);
}

/* Fetch failures are cached as a back-off entry for 5 minutes. */
static void test_cache_first_fetch_errors(void **state)
{
    cache_fx *fx = *state;
    static const struct {
        mtasts_err err;
        long x509;
        const char *text, *dtype, *reason;
    } cases[] = {
        {MTASTS_ERR_NO_POLICY, 0, NULL, "sts-policy-fetch-error", "no-policy-served"},
        {MTASTS_ERR_FETCH, 0, NULL, "sts-policy-fetch-error", "cannot-fetch-policy"},
        {MTASTS_ERR_POLICY_SYNTAX, 0, "junk", "sts-policy-invalid", "policy-syntax-error"},
        {MTASTS_ERR_FETCH, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, NULL,
         "sts-webpki-invalid", "certificate-not-trusted"},
        {MTASTS_ERR_FETCH, X509_V_ERR_CERT_HAS_EXPIRED, NULL, "sts-webpki-invalid",
         "certificate-expired"},
        {MTASTS_ERR_FETCH, X509_V_ERR_PATH_LENGTH_EXCEEDED, NULL, "sts-webpki-invalid",
         "certificate-not-trusted+too-many-intermediates"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        int64_t t = NOW + (int64_t)i * 1000; /* each case after the last back-off */
        fx->h = (hook){.err = cases[i].err, .x509 = cases[i].x509, .text = cases[i].text};
        mtasts_outcome out = get_at(fx, "one", t);
        check_result(&out, "sts", cases[i].dtype, cases[i].reason);
        assert_false(out.have_policy);
        assert_true(out.fresh);
        assert_false(out.failed);
        mtasts_outcome_free(&out);
        row rw = db_row(fx->dir);
        assert_true(rw.present);
        assert_int_equal(rw.backoff, 1);
        assert_string_equal(rw.mode, "none");
        assert_int_equal(rw.max_age, 300);
        assert_int_equal(rw.valid_end, t + 300);
        assert_string_equal(rw.record_id, "one");
        assert_int_equal(rw.inserted, NOW); /* kept on update */
        assert_int_equal(fx->h.calls, 1);
    }
}

static void test_cache_first_dns_error(void **state)
{
    cache_fx *fx = *state;
    static const struct {
        dns_status st;
        int ede;
        const char *reason;
    } cases[] = {
        {DNS_SERVFAIL, -1, "dns-lookup"},
        {DNS_TEMPFAIL, -1, "dns-lookup"},
        {DNS_SERVFAIL, 6, "dns-extended-error-6-dnssec-bogus"},
        {DNS_SERVFAIL, 7, "dns-extended-error-7-signature-expired"},
        {DNS_SERVFAIL, 3, "dns-lookup"}, /* stale answer: not about authentication */
    };
    fx->h = (hook){.err = MTASTS_OK, .text = enforce_text};
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        dns_resolver *r = dns_fixture_new();
        dns_fixture_fail(r, "_mta-sts." DOMAIN ".", DNS_T_TXT, cases[i].st, DNS_INSECURE,
                         cases[i].ede);
        mtasts_outcome out;
        assert_int_equal(mtasts_cache_get(fx->c, r, DOMAIN, &fx->o, NOW, &out), 0);
        check_result(&out, "sts", "sts-policy-fetch-error", cases[i].reason);
        assert_true(out.failed); /* transient: the caller defers */
        assert_false(out.have_policy);
        assert_false(out.fresh);
        mtasts_outcome_free(&out);
        dns_resolver_free(r);
    }
    assert_int_equal(fx->h.calls, 0);
    assert_false(db_row(fx->dir).present); /* not cached */
}

static void test_cache_backoff(void **state)
{
    cache_fx *fx = *state;
    fx->h = (hook){.err = MTASTS_ERR_FETCH};
    mtasts_outcome out = get_at(fx, "one", NOW);
    mtasts_outcome_free(&out);
    /* Within 5 minutes: no lookup, no fetch. */
    fx->h = (hook){.err = MTASTS_OK, .text = enforce_text};
    out = get_at(fx, "one", NOW + 299);
    check_result(&out, "sts", "sts-policy-fetch-error", "back-off-after-recent-fetch-error");
    assert_false(out.have_policy);
    assert_false(out.fresh);
    assert_false(out.failed);
    assert_int_equal(fx->h.calls, 0);
    mtasts_outcome_free(&out);
    assert_int_equal(db_row(fx->dir).last_use, NOW + 299);
    /* After them: fetched again, and now a policy. */
    out = get_at(fx, "one", NOW + 300);
    check_result(&out, "sts", NULL, NULL);
    assert_true(out.have_policy);
    assert_true(out.fresh);
    assert_int_equal(fx->h.calls, 1);
    mtasts_outcome_free(&out);
    row rw = db_row(fx->dir);
    assert_int_equal(rw.backoff, 0);
    assert_int_equal(rw.inserted, NOW);
    assert_int_equal(rw.last_update, NOW + 300);
}

static void test_cache_same_id(void **state)
{
    cache_fx *fx = *state;
    prime_enforce(fx);
    mtasts_outcome out = get_at(fx, "one", NOW + 100);
    check_result(&out, "sts", NULL, NULL);
    assert_true(out.have_policy);
    assert_true(out.fresh);
    assert_int_equal(out.policy.mode, MTASTS_MODE_ENFORCE);
    assert_int_equal(out.policy.nmx, 2);
    assert_string_equal(out.policy.mx[1], "*.mx.example.test");
    assert_string_equal(out.policy_id, "one");
    assert_int_equal(fx->h.calls, 0); /* no fetch */
    mtasts_outcome_free(&out);
    row rw = db_row(fx->dir);
    assert_int_equal(rw.last_use, NOW + 100);
    assert_int_equal(rw.last_update, NOW);
}

static void test_cache_lookup_error_fallback(void **state)
{
    cache_fx *fx = *state;
    prime_enforce(fx);
    static const struct {
        dns_status st;
        int ede;
        const char *reason;
    } cases[] = {
        {DNS_SERVFAIL, -1, "dns-lookup+fallback-to-cached-policy"},
        {DNS_NXDOMAIN, -1, "no-mta-sts-dns-txt-record+fallback-to-cached-policy"},
        {DNS_SERVFAIL, 9, "dns-extended-error-9-dnskey-missing+fallback-to-cached-policy"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        dns_resolver *r = dns_fixture_new();
        dns_fixture_fail(r, "_mta-sts." DOMAIN ".", DNS_T_TXT, cases[i].st, DNS_INSECURE,
                         cases[i].ede);
        mtasts_outcome out;
        assert_int_equal(mtasts_cache_get(fx->c, r, DOMAIN, &fx->o, NOW + 10, &out), 0);
        check_result(&out, "sts", "sts-policy-fetch-error", cases[i].reason);
        assert_true(out.have_policy); /* the cached policy stays in force */
        assert_int_equal(out.policy.mode, MTASTS_MODE_ENFORCE);
        assert_false(out.fresh);
        assert_false(out.failed);
        mtasts_outcome_free(&out);
        dns_resolver_free(r);
    }
    /* Record gone entirely (no TXT at all). */
    mtasts_outcome out = get_at(fx, NULL, NOW + 20);
    check_result(&out, "sts", "sts-policy-fetch-error",
                 "no-mta-sts-dns-txt-record+fallback-to-cached-policy");
    assert_true(out.have_policy);
    mtasts_outcome_free(&out);
    assert_int_equal(fx->h.calls, 0);
}

/* A cached "none" policy gets no "+fallback" suffix (nothing to fall back to). */
static void test_cache_lookup_error_none(void **state)
{
    cache_fx *fx = *state;
    fx->h = (hook){.err = MTASTS_OK, .text = none_text};
    mtasts_outcome out = get_at(fx, "n1", NOW);
    mtasts_outcome_free(&out);
    out = get_at(fx, NULL, NOW + 10);
    check_result(&out, "sts", "sts-policy-fetch-error", "no-mta-sts-dns-txt-record");
    assert_true(out.have_policy);
    assert_int_equal(out.policy.mode, MTASTS_MODE_NONE);
    assert_false(out.fresh);
    mtasts_outcome_free(&out);
}

static void test_cache_changed_id_ok(void **state)
{
    cache_fx *fx = *state;
    prime_enforce(fx);
    fx->h = (hook){.err = MTASTS_OK, .text = testing_text};
    mtasts_outcome out = get_at(fx, "two", NOW + 50);
    check_result(&out, "sts", NULL, NULL);
    assert_true(out.have_policy);
    assert_true(out.fresh);
    assert_int_equal(out.policy.mode, MTASTS_MODE_TESTING);
    assert_string_equal(out.policy_id, "two");
    assert_int_equal(fx->h.calls, 1);
    mtasts_outcome_free(&out);
    row rw = db_row(fx->dir);
    assert_string_equal(rw.record_id, "two");
    assert_string_equal(rw.mode, "testing");
    assert_string_equal(rw.text, testing_text); /* Q12: the new text is stored */
    assert_string_equal(rw.mx, "mx2.example.test");
    assert_int_equal(rw.inserted, NOW);
    assert_int_equal(rw.last_update, NOW + 50);
    assert_int_equal(rw.valid_end, NOW + 50 + 3600);
    /* And it is what the next use sees. */
    out = get_at(fx, "two", NOW + 60);
    assert_true(out.fresh);
    assert_int_equal(out.policy.mode, MTASTS_MODE_TESTING);
    assert_int_equal(fx->h.calls, 1);
    mtasts_outcome_free(&out);
}

/* A new record whose policy is mode none: fresh, sts result, stored. */
static void test_cache_changed_id_to_none(void **state)
{
    cache_fx *fx = *state;
    prime_enforce(fx);
    fx->h = (hook){.err = MTASTS_OK, .text = none_text};
    mtasts_outcome out = get_at(fx, "three", NOW + 5);
    check_result(&out, "sts", NULL, NULL);
    assert_true(out.fresh);
    assert_int_equal(out.policy.mode, MTASTS_MODE_NONE);
    mtasts_outcome_free(&out);
    assert_string_equal(db_row(fx->dir).mode, "none");
}

static void test_cache_changed_id_fail(void **state)
{
    cache_fx *fx = *state;
    static const struct {
        mtasts_err err;
        long x509;
        const char *dtype, *reason;
    } cases[] = {
        {MTASTS_ERR_FETCH, 0, "sts-policy-fetch-error", "cannot-fetch-policy+fallback-to-cached-policy"},
        {MTASTS_ERR_NO_POLICY, 0, "sts-policy-fetch-error", "no-policy-served+fallback-to-cached-policy"},
        {MTASTS_ERR_POLICY_SYNTAX, 0, "sts-policy-invalid", "policy-syntax-error+fallback-to-cached-policy"},
        {MTASTS_ERR_FETCH, X509_V_ERR_HOSTNAME_MISMATCH, "sts-webpki-invalid",
         "certificate-host-mismatch+fallback-to-cached-policy"},
    };
    prime_enforce(fx);
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        fx->h = (hook){.err = cases[i].err, .x509 = cases[i].x509};
        mtasts_outcome out = get_at(fx, "two", NOW + 50);
        check_result(&out, "sts", cases[i].dtype, cases[i].reason);
        assert_true(out.have_policy);
        assert_int_equal(out.policy.mode, MTASTS_MODE_ENFORCE); /* the cached one */
        assert_string_equal(out.policy_id, "one");
        assert_false(out.fresh);
        assert_false(out.failed);
        assert_int_equal(fx->h.calls, 1);
        mtasts_outcome_free(&out);
        row rw = db_row(fx->dir);
        assert_string_equal(rw.record_id, "one"); /* unchanged */
        assert_int_equal(rw.backoff, 0);
        assert_string_equal(rw.text, enforce_text);
    }
}

static void test_cache_expired(void **state)
{
    cache_fx *fx = *state;
    prime_enforce(fx);
    /* Past max_age the entry no longer counts: a first fetch again, even with
     * the same record id. */
    fx->h = (hook){.err = MTASTS_ERR_NO_POLICY};
    mtasts_outcome out = get_at(fx, "one", NOW + 86400);
    check_result(&out, "sts", "sts-policy-fetch-error", "no-policy-served");
    assert_false(out.have_policy);
    assert_int_equal(fx->h.calls, 1);
    mtasts_outcome_free(&out);
    assert_int_equal(db_row(fx->dir).backoff, 1);
}

/* Probe mode: no cache, always fetched, nothing stored. */
static void test_cache_probe(void **state)
{
    cache_fx *fx = *state;
    dns_resolver *r = txt_resolver("one");
    mtasts_outcome out;
    fx->h = (hook){.err = MTASTS_OK, .text = enforce_text};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(mtasts_cache_get(NULL, r, DOMAIN, &fx->o, NOW, &out), 0);
        check_result(&out, "sts", NULL, NULL);
        assert_true(out.fresh);
        assert_true(out.have_policy);
        mtasts_outcome_free(&out);
    }
    assert_int_equal(fx->h.calls, 2);
    fx->h = (hook){.err = MTASTS_ERR_FETCH};
    assert_int_equal(mtasts_cache_get(NULL, r, DOMAIN, &fx->o, NOW, &out), 0);
    check_result(&out, "sts", "sts-policy-fetch-error", "cannot-fetch-policy");
    mtasts_outcome_free(&out);
    fx->h = (hook){.err = MTASTS_OK, .text = enforce_text};
    assert_int_equal(mtasts_cache_get(NULL, r, DOMAIN, &fx->o, NOW + 1, &out), 0);
    assert_true(out.have_policy); /* no back-off remembered */
    mtasts_outcome_free(&out);
    dns_resolver_free(r);
    assert_false(db_row(fx->dir).present);
}

static void db_exec(const char *dir, const char *sql)
{
    char path[128];
    sqlite3 *db;
    snprintf(path, sizeof path, "%s/mtasts.sqlite", dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* A store that fails leaves the outcome as it is, noted; a read that fails
 * defers (a cached enforce policy could be behind it). */
static void test_cache_db_errors(void **state)
{
    cache_fx *fx = *state;
    db_exec(fx->dir, "CREATE TRIGGER no_insert BEFORE INSERT ON mtasts_policy"
                     " BEGIN SELECT RAISE(ABORT, 'read-only for the test'); END");
    fx->h = (hook){.err = MTASTS_OK, .text = enforce_text};
    dns_resolver *r = txt_resolver("one");
    mtasts_outcome out;
    assert_int_equal(mtasts_cache_get(fx->c, r, DOMAIN, &fx->o, NOW, &out), 0);
    assert_true(out.have_policy);
    assert_true(out.fresh);
    assert_false(out.failed);
    assert_non_null(strstr(out.internal_error, "store failed"));
    assert_non_null(strstr(out.internal_error, "read-only for the test"));
    mtasts_outcome_free(&out);
    assert_false(db_row(fx->dir).present);

    db_exec(fx->dir, "DROP TABLE mtasts_policy");
    assert_int_equal(mtasts_cache_get(fx->c, r, DOMAIN, &fx->o, NOW, &out), 0);
    assert_true(out.failed);
    assert_false(out.have_policy);
    assert_non_null(strstr(out.internal_error, "read failed"));
    assert_string_equal(smtpc_tlsrpt_policy_type(out.result), "sts");
    assert_int_equal(fx->h.calls, 1); /* no fetch without the cache's answer */
    mtasts_outcome_free(&out);

    /* An unusable domain name. */
    assert_int_equal(mtasts_cache_get(fx->c, r, "", &fx->o, NOW, &out), 0);
    assert_true(out.failed);
    assert_string_equal(out.internal_error, "invalid domain");
    mtasts_outcome_free(&out);
    dns_resolver_free(r);
}

/* Two processes upsert the same domain 200 times each: every call must
 * succeed (no SQLITE_BUSY reaching us) and the database must stay sound.
 *
 * Protocol: both children open (create) the cache at the same moment, say
 * so on `ready`, and wait for `go` to close. The parent then holds the write
 * lock for 100 ms as they start, and keeps taking it (and writing) for 2 ms
 * out of every 3 ms while they run: their transactions must wait for it (busy
 * timeout, BEGIN IMMEDIATE) instead of failing. Left alone, their short transactions
 * would rarely collide and the test could not fail. */

typedef struct gates {
    int start[2], ready[2], go[2];
} gates;

static void wait_closed(int fd)
{
    char ch;
    while (read(fd, &ch, 1) > 0)
        ;
}

static int child_loop(const char *dir, const char *id, const gates *g)
{
    char err[256];
    int fails = 0;
    hook h = {.err = MTASTS_OK, .text = "version: STSv1\nmode: testing\nmx: mx.example.test\n"
                                        "max_age: 3600\n"};
    mtasts_fetch_opts o = {.fetch = hook_fetch, .fetch_ud = &h};
    wait_closed(g->start[0]);
    mtasts_cache *c = mtasts_cache_open(dir, err, sizeof err);
    if (write(g->ready[1], "r", 1) != 1 || !c)
        return 100;
    wait_closed(g->go[0]);
    for (int i = 0; i < 200; i++) {
        char rid[32];
        mtasts_outcome out;
        /* A new record id every time: the cached entry (ours or the other
         * process's) is found, its last_use updated, and the policy fetched
         * and stored again. */
        snprintf(rid, sizeof rid, "%s%d", id, i);
        dns_resolver *r = txt_resolver(rid);
        int rc = mtasts_cache_get(c, r, DOMAIN, &o, NOW, &out);
        if (rc != 0 || out.failed || !out.have_policy || strcmp(out.policy_id, rid) != 0 ||
            out.internal_error[0])
            fails++;
        mtasts_outcome_free(&out);
        dns_resolver_free(r);
    }
    if (h.calls != 200)
        fails++;
    mtasts_cache_close(c);
    return fails > 99 ? 99 : fails;
}

static bool exited(pid_t pid)
{
    siginfo_t info = {0};
    /* WNOWAIT: the child stays waitable for the status check afterwards. */
    return waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid != 0;
}

/* Runs the parent's side of the protocol above. */
static void hold_locks(const char *path, const pid_t pids[2], gates *g)
{
    sqlite3 *db = NULL;
    char ch;
    close(g->start[1]); /* both children open the cache now */
    for (int i = 0; i < 2; i++)
        assert_int_equal(read(g->ready[0], &ch, 1), 1);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 15000);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    close(g->go[1]);
    usleep(100 * 1000);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    for (int n = 0; n < 5000 && !(exited(pids[0]) && exited(pids[1])); n++) {
        /* A write, so a child that read before it and writes after it would
         * see its snapshot go stale: BEGIN IMMEDIATE prevents that. */
        if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK) {
            sqlite3_exec(db, "UPDATE mtasts_policy SET last_use = last_use + 1", NULL, NULL, NULL);
            usleep(2000);
            sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        }
        usleep(1000);
    }
    sqlite3_close(db);
}

static void check_db_sound(const char *path)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM mtasts_policy", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 1);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_cache_concurrent(void **state)
{
    const char *dir = *state;
    char path[128];
    gates g;
    pid_t pids[2];
    snprintf(path, sizeof path, "%s/mtasts.sqlite", dir);
    assert_int_equal(pipe(g.start), 0);
    assert_int_equal(pipe(g.ready), 0);
    assert_int_equal(pipe(g.go), 0);
    for (int i = 0; i < 2; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            close(g.start[1]);
            close(g.go[1]);
            close(g.ready[0]);
            _exit(child_loop(dir, i ? "procb" : "proca", &g));
        }
    }
    close(g.start[0]);
    close(g.go[0]);
    close(g.ready[1]);
    hold_locks(path, pids, &g);
    close(g.ready[0]);
    for (int i = 0; i < 2; i++) {
        int status;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status) != 0)
            fail_msg("process %d: %d failed calls", i, WEXITSTATUS(status));
    }
    check_db_sound(path);
}

#define CACHE_TEST(f) cmocka_unit_test_setup_teardown(f, cache_setup, cache_teardown)

int main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_record_table),
        cmocka_unit_test(test_record_prefixes),
        cmocka_unit_test(test_policy_table),
        cmocka_unit_test(test_policy_prefixes),
        cmocka_unit_test(test_policy_limits),
        cmocka_unit_test(test_policy_copy_free),
        cmocka_unit_test(test_mx_match_table),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_tlsrpt_record_table),
        cmocka_unit_test(test_tlsrpt_record_many),
        cmocka_unit_test(test_lookup_record),
        cmocka_unit_test(test_tlsrpt_lookup),
    };
    const struct CMUnitTest fetch[] = {
        cmocka_unit_test(test_fetch_ok),
        cmocka_unit_test(test_fetch_exact_limit),
        cmocka_unit_test(test_fetch_oversize),
        cmocka_unit_test(test_fetch_bad_policy),
        cmocka_unit_test(test_fetch_status),
        cmocka_unit_test(test_fetch_untrusted),
        cmocka_unit_test(test_fetch_name_mismatch),
        cmocka_unit_test(test_fetch_timeout),
        cmocka_unit_test(test_fetch_dns),
        cmocka_unit_test(test_get),
    };
    const struct CMUnitTest cache[] = {
        cmocka_unit_test_setup_teardown(test_cache_open_dir, dir_setup, dir_teardown),
        CACHE_TEST(test_cache_first_ok),
        CACHE_TEST(test_cache_first_none_mode),
        CACHE_TEST(test_cache_first_no_record),
        CACHE_TEST(test_cache_first_record_errors),
        CACHE_TEST(test_cache_first_fetch_errors),
        CACHE_TEST(test_cache_first_dns_error),
        CACHE_TEST(test_cache_backoff),
        CACHE_TEST(test_cache_same_id),
        CACHE_TEST(test_cache_lookup_error_fallback),
        CACHE_TEST(test_cache_lookup_error_none),
        CACHE_TEST(test_cache_changed_id_ok),
        CACHE_TEST(test_cache_changed_id_to_none),
        CACHE_TEST(test_cache_changed_id_fail),
        CACHE_TEST(test_cache_expired),
        CACHE_TEST(test_cache_probe),
        CACHE_TEST(test_cache_db_errors),
        cmocka_unit_test_setup_teardown(test_cache_concurrent, dir_setup, dir_teardown),
    };
    int failed = cmocka_run_group_tests_name("mtasts_pure", pure, NULL, NULL);
    failed += cmocka_run_group_tests_name("mtasts_fetch", fetch, fetch_group_setup,
                                          fetch_group_teardown);
    failed += cmocka_run_group_tests_name("mtasts_cache", cache, NULL, NULL);
    return failed;
}
