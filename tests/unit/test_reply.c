/* Unit tests for the SMTP reply reader and enhanced status codes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reply.h"

/* Feeds in[0..len) in chunks of at most step bytes until the parser reports
 * something other than RP_NEED_MORE. *used is the total consumed. */
static rp_status feed_steps(reply_parser *p, const char *in, size_t len, size_t step,
                            size_t *used)
{
    size_t off = 0;
    rp_status st = RP_NEED_MORE;
    while (off < len) {
        size_t n = len - off < step ? len - off : step;
        size_t c = 0;
        st = reply_parser_feed(p, in + off, n, &c);
        assert_true(c <= n);
        off += c;
        if (st != RP_NEED_MORE)
            break;
        assert_int_equal(c, n); /* need-more consumes everything */
    }
    *used = off;
    return st;
}

typedef struct {
    const char *in;
    rp_status st;
    int code;           /* checked for RP_DONE */
    size_t consumed;    /* checked for RP_DONE and RP_NEED_MORE */
    const char *lines[4];
    const char *err;    /* prefix of errmsg, for errors */
} reply_case;

static const reply_case reply_cases[] = {
    {"250 ok\r\n", RP_DONE, 250, 8, {"250 ok"}, NULL},
    {"250 ok\n", RP_DONE, 250, 7, {"250 ok"}, NULL},
    {"250\r\n", RP_DONE, 250, 5, {"250"}, NULL},
    {"250\n", RP_DONE, 250, 4, {"250"}, NULL},
    {"250 \r\n", RP_DONE, 250, 6, {"250 "}, NULL},
    {"000 zero\r\n", RP_DONE, 0, 10, {"000 zero"}, NULL},
    {"999 x\r\n", RP_DONE, 999, 7, {"999 x"}, NULL},
    {"250-a\r\n250-b\r\n250 c\r\n", RP_DONE, 250, 21, {"250-a", "250-b", "250 c"}, NULL},
    {"250-a\n250\n", RP_DONE, 250, 10, {"250-a", "250"}, NULL},
    {"250-\r\n250 \r\n", RP_DONE, 250, 12, {"250-", "250 "}, NULL},
    /* never past the reply's LF (pipelining, STARTTLS injection) */
    {"250 ok\r\n220 next\r\n", RP_DONE, 250, 8, {"250 ok"}, NULL},
    {"250-a\r\n250 b\r\nEXTRA", RP_DONE, 250, 14, {"250-a", "250 b"}, NULL},
    {"250 ok\r\n\r\n", RP_DONE, 250, 8, {"250 ok"}, NULL},
    /* spec 2.2: only one CR directly before LF is dropped */
    {"250 a\rb\r\n", RP_DONE, 250, 9, {"250 a\rb"}, NULL},
    {"250 ok\r\r\n", RP_DONE, 250, 9, {"250 ok\r"}, NULL},
    {"250 ok", RP_NEED_MORE, 0, 6, {NULL}, NULL},
    {"250-a\r\n", RP_NEED_MORE, 0, 7, {NULL}, NULL},
    {"250-a\r\n250 b\r", RP_NEED_MORE, 0, 13, {NULL}, NULL},
    {"", RP_NEED_MORE, 0, 0, {NULL}, NULL},
    /* spec 3.1: exactly three digits */
    {"25 ok\r\n", RP_ERR_SYNTAX, 0, 0, {"25 ok"}, "expected response code: 25 ok"},
    {"2500 ok\r\n", RP_ERR_SYNTAX, 0, 0, {"2500 ok"}, "expected response code: 2500 ok"},
    {"abc\r\n", RP_ERR_SYNTAX, 0, 0, {"abc"}, "expected response code: abc"},
    {" 250 ok\r\n", RP_ERR_SYNTAX, 0, 0, {" 250 ok"}, "expected response code"},
    {"\r\n", RP_ERR_SYNTAX, 0, 0, {""}, "expected response code: "},
    {"25\r\n", RP_ERR_SYNTAX, 0, 0, {"25"}, "expected response code: 25"},
    /* spec 3.2: separator */
    {"250x\r\n", RP_ERR_SYNTAX, 0, 0, {"250x"}, "expected space or dash after response code"},
    {"250\tok\r\n", RP_ERR_SYNTAX, 0, 0, {"250\tok"}, "expected space or dash"},
    {"250-a\r\n25x b\r\n", RP_ERR_SYNTAX, 0, 0, {"250-a", "25x b"}, "expected response code"},
    {"250-a\r\n250_b\r\n", RP_ERR_SYNTAX, 0, 0, {"250-a", "250_b"}, "expected space or dash"},
    /* spec 3.5 */
    {"250-a\r\n251 b\r\n", RP_ERR_CODE_MISMATCH, 0, 0, {"250-a", "251 b"},
     "multiline response with different codes, previous 250, last 251"},
    {"250-a\r\n250-b\r\n550 c\r\n", RP_ERR_CODE_MISMATCH, 0, 0, {"250-a", "250-b", "550 c"},
     "multiline response with different codes, previous 250, last 550"},
    {"000-a\r\n250 b\r\n", RP_ERR_CODE_MISMATCH, 0, 0, {"000-a", "250 b"},
     "multiline response with different codes, previous 000, last 250"},
};

static void check_lines(const reply *r, const reply_case *c)
{
    size_t n = 0;
    while (n < 4 && c->lines[n] != NULL)
        n++;
    assert_int_equal(r->nlines, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(r->lines[i], c->lines[i]);
}

static void run_reply_case(const reply_case *c, size_t step)
{
    reply_parser p;
    size_t used;
    reply_parser_init(&p);
    rp_status st = feed_steps(&p, c->in, strlen(c->in), step, &used);
    assert_int_equal(st, c->st);
    if (st == RP_DONE || st == RP_NEED_MORE)
        assert_int_equal(used, c->consumed);
    if (st == RP_DONE) {
        reply r;
        reply_parser_take(&p, &r);
        assert_int_equal(r.code, c->code);
        check_lines(&r, c);
        reply_free(&r);
        assert_null(r.lines);
    } else if (st != RP_NEED_MORE) {
        check_lines(&p.cur, c);
        assert_true(strncmp(p.errmsg, c->err, strlen(c->err)) == 0);
    }
    reply_parser_free(&p);
}

static void test_reply_table(void **state)
{
    (void)state;
    static const size_t steps[] = {1, 2, 3, 7, 100000};
    for (size_t i = 0; i < sizeof reply_cases / sizeof reply_cases[0]; i++) {
        for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
            run_reply_case(&reply_cases[i], steps[s]);
        }
    }
}

static void test_reply_text(void **state)
{
    (void)state;
    reply_parser p;
    reply r;
    size_t used;
    const char *in = "250-mx.example hi\r\n250-\r\n250 SIZE 10\r\n";
    reply_parser_init(&p);
    assert_int_equal(reply_parser_feed(&p, in, strlen(in), &used), RP_DONE);
    reply_parser_take(&p, &r);
    assert_string_equal(reply_text(&r, 0), "mx.example hi");
    assert_string_equal(reply_text(&r, 1), "");
    assert_string_equal(reply_text(&r, 2), "SIZE 10");
    assert_string_equal(reply_text(&r, 3), "");
    assert_string_equal(reply_text(NULL, 0), "");
    reply_free(&r);

    in = "221\r\n";
    assert_int_equal(reply_parser_feed(&p, in, strlen(in), &used), RP_DONE);
    reply_parser_take(&p, &r);
    assert_string_equal(reply_text(&r, 0), "");
    reply_free(&r);
    reply_free(NULL);
    reply_parser_free(&p);
}

/* Several replies in one buffer: each feed stops at its reply's LF. */
static void test_reply_sequence(void **state)
{
    (void)state;
    const char *in = "250-a\r\n250 b\r\n354 go\r\n550 5.1.1 no\r\n";
    static const int codes[] = {250, 354, 550};
    static const size_t nlines[] = {2, 1, 1};
    reply_parser p;
    size_t off = 0, used;
    reply_parser_init(&p);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(reply_parser_feed(&p, in + off, strlen(in + off), &used), RP_DONE);
        off += used;
        reply r;
        reply_parser_take(&p, &r);
        assert_int_equal(r.code, codes[i]);
        assert_int_equal(r.nlines, nlines[i]);
        reply_free(&r);
    }
    assert_int_equal(off, strlen(in));
    reply_parser_free(&p);
}

/* A line of n bytes of 'x' after "250 " plus the given ending. */
static char *long_line(size_t total_before_lf, const char *ending)
{
    size_t elen = strlen(ending);
    char *s = malloc(total_before_lf + elen + 1);
    assert_non_null(s);
    memcpy(s, "250 ", 4);
    memset(s + 4, 'x', total_before_lf - 4);
    memcpy(s + total_before_lf, ending, elen + 1);
    return s;
}

static rp_status feed_whole(const char *in, size_t step)
{
    reply_parser p;
    size_t used;
    reply_parser_init(&p);
    rp_status st = feed_steps(&p, in, strlen(in), step, &used);
    if (st == RP_ERR_TOO_LONG) {
        assert_string_equal(p.errmsg, "line from server too long: no newline after 2047 bytes");
        assert_int_equal(p.cur.nlines, 1); /* the offending line, truncated */
        assert_int_equal(strlen(p.cur.lines[0]), REPLY_MAX_LINE - 1);
    }
    reply_parser_free(&p);
    return st;
}

/* Spec 2.3: at most 2047 bytes, a trailing CR included, before the LF. */
static void test_reply_line_length(void **state)
{
    (void)state;
    static const struct {
        size_t before; /* bytes before the ending */
        const char *ending;
        rp_status st;
    } cases[] = {
        {2046, "\r\n", RP_DONE},
        {2047, "\n", RP_DONE},
        {2047, "\r\n", RP_ERR_TOO_LONG},
        {2048, "\n", RP_ERR_TOO_LONG},
        {2047, "", RP_NEED_MORE},
        {2048, "", RP_ERR_TOO_LONG}, /* detected without waiting for LF */
        {5000, "", RP_ERR_TOO_LONG},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *s = long_line(cases[i].before, cases[i].ending);
        assert_int_equal(feed_whole(s, 100000), cases[i].st);
        assert_int_equal(feed_whole(s, 1), cases[i].st);
        assert_int_equal(feed_whole(s, 1000), cases[i].st);
        free(s);
    }
}

/* nlines lines of linelen bytes each (CRLF included), the last one final. */
static char *many_lines(size_t nlines, size_t linelen)
{
    char *s = malloc(nlines * linelen + 1), *q = s;
    assert_non_null(s);
    for (size_t i = 0; i < nlines; i++, q += linelen) {
        memcpy(q, i + 1 == nlines ? "250 " : "250-", 4);
        memset(q + 4, 'y', linelen - 6);
        memcpy(q + linelen - 2, "\r\n", 2);
    }
    *q = '\0';
    return s;
}

static void test_reply_bounds(void **state)
{
    (void)state;
    static const struct {
        size_t nlines, linelen;
        rp_status st;
        const char *err;
    } cases[] = {
        {REPLY_MAX_LINES, 10, RP_DONE, ""},
        {REPLY_MAX_LINES + 1, 10, RP_ERR_TOO_MANY, "too many lines in reply from server"},
        {REPLY_MAX_BYTES / 2048, 2048, RP_DONE, ""}, /* exactly REPLY_MAX_BYTES */
        {REPLY_MAX_BYTES / 2048 + 1, 2048, RP_ERR_TOO_MANY, "reply from server too large"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *s = many_lines(cases[i].nlines, cases[i].linelen);
        reply_parser p;
        size_t used;
        reply_parser_init(&p);
        assert_int_equal(feed_steps(&p, s, strlen(s), 4096, &used), cases[i].st);
        assert_string_equal(p.errmsg, cases[i].err);
        if (cases[i].st == RP_DONE)
            assert_int_equal(p.cur.nlines, cases[i].nlines);
        reply_parser_free(&p);
        free(s);
    }
}

typedef struct {
    int code;
    const char *text;
    size_t ret;
    const char *out;
} ecode_case;

static const ecode_case ecode_cases[] = {
    {250, "2.0.0 ok", 6, "2.0.0"},
    {550, "5.7.1 denied", 6, "5.7.1"},
    {550, "5.7.1", 5, "5.7.1"},
    {550, "5.7.1  two spaces", 6, "5.7.1"}, /* only one space belongs to the code */
    {550, "5.7.1abc", 5, "5.7.1"},          /* text continues at "abc" (spec 3.8) */
    {250, "2.0.0\tx", 5, "2.0.0"},
    {451, "4.123.456 x", 10, "4.123.456"},
    {550, "5.07.001 x", 9, "5.07.001"},
    {0, "0.0.0 x", 6, "0.0.0"},
    {999, "9.9.9", 5, "9.9.9"},
    /* class must equal code / 100 */
    {550, "4.7.1 x", 0, ""},
    {450, "5.7.1 x", 0, ""},
    {250, "5.0.0 x", 0, ""},
    /* RFC 3463: 1-3 digits per part */
    {550, "5.1234.1 x", 0, ""},
    {550, "5.1.1234 x", 0, ""},
    {550, "55.1.1 x", 0, ""},
    {550, "5..1 x", 0, ""},
    {550, "5.1. x", 0, ""},
    {550, "5.1 x", 0, ""},
    {550, "5.1", 0, ""},
    {550, "5.", 0, ""},
    {550, "5", 0, ""},
    {550, "", 0, ""},
    {550, " 5.1.1 x", 0, ""},
    {550, "5-1-1 x", 0, ""},
    {550, "a.b.c", 0, ""},
    {-1, "5.1.1", 0, ""},
    {1000, "1.0.0", 0, ""},
};

static void test_ecode_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof ecode_cases / sizeof ecode_cases[0]; i++) {
        const ecode_case *c = &ecode_cases[i];
        char out[16];
        memset(out, 'Z', sizeof out);
        assert_int_equal(ecode_parse(c->code, c->text, out, sizeof out), c->ret);
        assert_string_equal(out, c->out);
    }
}

static void test_ecode_small_out(void **state)
{
    (void)state;
    char out[10];
    assert_int_equal(ecode_parse(550, "5.7.1 x", out, 5), 0); /* needs 6 */
    assert_string_equal(out, "");
    assert_int_equal(ecode_parse(550, "5.7.1 x", out, 6), 6);
    assert_string_equal(out, "5.7.1");
    assert_int_equal(ecode_parse(550, "5.123.123", out, 10), 9);
    assert_string_equal(out, "5.123.123");
    assert_int_equal(ecode_parse(550, "5.7.1", NULL, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_table),
        cmocka_unit_test(test_reply_text),
        cmocka_unit_test(test_reply_sequence),
        cmocka_unit_test(test_reply_line_length),
        cmocka_unit_test(test_reply_bounds),
        cmocka_unit_test(test_ecode_table),
        cmocka_unit_test(test_ecode_small_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
