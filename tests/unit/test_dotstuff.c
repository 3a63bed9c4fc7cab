/* Unit tests for the streaming DATA encoder (dot-stuffing, CRLF checks). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dotstuff.h"

#define OUTMAX 1024

/* Encodes in[0..len) as two chunks split at `split`, each fed through an
 * output buffer of outcap bytes, then finishes. Returns the first error, or
 * DS_OK with the whole output in out/outlen. */
static ds_status encode_split(const char *in, size_t len, bool norm, size_t split,
                              size_t outcap, char *out, size_t *outlen)
{
    dotstuff d;
    size_t pos = 0, off = 0, used, made;
    dotstuff_init(&d, norm);
    while (off < len) {
        size_t end = off < split ? split : len;
        char buf[OUTMAX];
        ds_status st = dotstuff_encode(&d, in + off, end - off, &used, buf, outcap, &made);
        assert_true(used <= end - off);
        assert_true(made <= outcap);
        assert_true(pos + made <= OUTMAX);
        memcpy(out + pos, buf, made);
        pos += made;
        off += used;
        if (st != DS_OK)
            return st;
        assert_true(used > 0 || off == end); /* progress with outcap >= 2 */
    }
    ds_status st = dotstuff_finish(&d, out + pos, 5, &made);
    pos += made;
    *outlen = pos;
    assert_int_equal(d.out_bytes, pos);
    return st;
}

/* The only "\r\n.\r\n" (or a leading ".\r\n") is the terminator at the end,
 * and the output has no bare CR or LF: nothing can end DATA early. */
static void assert_no_early_end(const char *out, size_t len)
{
    assert_true(len >= 3);
    assert_memory_equal(out + len - 3, ".\r\n", 3);
    if (len > 3)
        assert_memory_equal(out + len - 5, "\r\n", 2);
    for (size_t i = 0; i < len; i++) {
        if (out[i] == '\r')
            assert_true(i + 1 < len && out[i + 1] == '\n');
        if (out[i] == '\n')
            assert_true(i > 0 && out[i - 1] == '\r');
        bool line_start = i == 0 || out[i - 1] == '\n';
        if (line_start && i + 3 <= len && memcmp(out + i, ".\r\n", 3) == 0)
            assert_int_equal(i + 3, len);
    }
}

typedef struct {
    const char *in;
    bool norm;
    ds_status st;
    const char *out; /* for DS_OK */
} ds_case;

static const ds_case ds_cases[] = {
    /* spec 10.6 */
    {"", false, DS_OK, ".\r\n"},
    {".\r\n", false, DS_OK, "..\r\n.\r\n"},
    {"a\r\n\r\nb\r\n", false, DS_OK, "a\r\n\r\nb\r\n.\r\n"},
    /* stuffing on every line, the first one too (spec 10.1-10.2) */
    {"\r\n", false, DS_OK, "\r\n.\r\n"},
    {"a\r\n.b\r\n", false, DS_OK, "a\r\n..b\r\n.\r\n"},
    {"..\r\n", false, DS_OK, "...\r\n.\r\n"},
    {"a.b\r\n.\r\n.\r\n", false, DS_OK, "a.b\r\n..\r\n..\r\n.\r\n"},
    {"\r\n.\r\n", false, DS_OK, "\r\n..\r\n.\r\n"},
    {"x\r\n.\r\nMAIL FROM:<a@b>\r\n", false, DS_OK, "x\r\n..\r\nMAIL FROM:<a@b>\r\n.\r\n"},
    /* strict mode errors */
    {"a\nb\r\n", false, DS_ERR_BARE_LF, NULL},
    {"a\n", false, DS_ERR_BARE_LF, NULL},
    {"\n", false, DS_ERR_BARE_LF, NULL},
    {"a\rb\r\n", false, DS_ERR_BARE_CR, NULL},
    {"a\r", false, DS_ERR_BARE_CR, NULL},
    {"\r", false, DS_ERR_BARE_CR, NULL},
    {"\r\r\n", false, DS_ERR_BARE_CR, NULL},
    {"a\r\nb\r", false, DS_ERR_BARE_CR, NULL},
    {"a", false, DS_ERR_NO_FINAL_CRLF, NULL},
    {"a\r\nb", false, DS_ERR_NO_FINAL_CRLF, NULL},
    {".", false, DS_ERR_NO_FINAL_CRLF, NULL},
    /* normalize_lf: bare LF -> CRLF, final CRLF added; bare CR still fatal */
    {"a\nb\n", true, DS_OK, "a\r\nb\r\n.\r\n"},
    {"a", true, DS_OK, "a\r\n.\r\n"},
    {".", true, DS_OK, "..\r\n.\r\n"},
    {".\n", true, DS_OK, "..\r\n.\r\n"},
    {"\n\n", true, DS_OK, "\r\n\r\n.\r\n"},
    {"a\r\nb", true, DS_OK, "a\r\nb\r\n.\r\n"},
    {"a\r\nb\nc", true, DS_OK, "a\r\nb\r\nc\r\n.\r\n"},
    {"", true, DS_OK, ".\r\n"},
    {"a\rb", true, DS_ERR_BARE_CR, NULL},
    {"a\r", true, DS_ERR_BARE_CR, NULL},
    {"\r\r\n", true, DS_ERR_BARE_CR, NULL},
    /* SMTP smuggling attempts */
    {"a\n.\r\nMAIL FROM:<x>\r\n", false, DS_ERR_BARE_LF, NULL},
    {"a\n.\r\nMAIL FROM:<x>\r\n", true, DS_OK, "a\r\n..\r\nMAIL FROM:<x>\r\n.\r\n"},
    {"a\r\n.\nX\r\n", false, DS_ERR_BARE_LF, NULL},
    {"a\r\n.\nX\r\n", true, DS_OK, "a\r\n..\r\nX\r\n.\r\n"},
    {"a\n.\nRCPT TO:<x>\n", true, DS_OK, "a\r\n..\r\nRCPT TO:<x>\r\n.\r\n"},
    {"\r.\r", false, DS_ERR_BARE_CR, NULL},
    {"\r.\r", true, DS_ERR_BARE_CR, NULL},
    {"a\r.\r\nX\r\n", true, DS_ERR_BARE_CR, NULL},
    {"a\r\n.\rX\r\n", true, DS_ERR_BARE_CR, NULL},
    {"a\r\n\r.\r\n", false, DS_ERR_BARE_CR, NULL},
};

static void run_ds_case(const ds_case *c, size_t split, size_t outcap)
{
    char out[OUTMAX];
    size_t outlen = 0, len = strlen(c->in);
    ds_status st = encode_split(c->in, len, c->norm, split, outcap, out, &outlen);
    assert_int_equal(st, c->st);
    if (st != DS_OK)
        return;
    assert_int_equal(outlen, strlen(c->out));
    assert_memory_equal(out, c->out, outlen);
    assert_no_early_end(out, outlen);
}

/* Every split point, with a roomy and with a 2-byte output buffer. */
static void test_encode_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof ds_cases / sizeof ds_cases[0]; i++) {
        const ds_case *c = &ds_cases[i];
        for (size_t split = 0; split <= strlen(c->in); split++) {
            run_ds_case(c, split, OUTMAX);
            run_ds_case(c, split, 2);
        }
    }
}

/* Byte-by-byte feeding: a CR ending one chunk is checked against the next
 * chunk's first byte (Q7). */
static void test_encode_bytewise(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof ds_cases / sizeof ds_cases[0]; i++) {
        const ds_case *c = &ds_cases[i];
        dotstuff d;
        char out[OUTMAX];
        size_t pos = 0, used, made;
        ds_status st = DS_OK;
        dotstuff_init(&d, c->norm);
        for (size_t k = 0; k < strlen(c->in) && st == DS_OK; k++) {
            st = dotstuff_encode(&d, c->in + k, 1, &used, out + pos, 2, &made);
            assert_int_equal(used, st == DS_OK ? 1 : 0);
            pos += made;
        }
        if (st == DS_OK) {
            st = dotstuff_finish(&d, out + pos, 5, &made);
            pos += made;
        }
        assert_int_equal(st, c->st);
        if (st == DS_OK)
            assert_memory_equal(out, c->out, pos);
    }
}

static void test_encode_cr_at_chunk_end(void **state)
{
    (void)state;
    dotstuff d;
    char out[16];
    size_t used, made;
    dotstuff_init(&d, false);
    assert_int_equal(dotstuff_encode(&d, "ab\r", 3, &used, out, sizeof out, &made), DS_OK);
    assert_int_equal(used, 3);
    assert_int_equal(made, 2); /* the CR is held until its LF is seen */
    assert_true(d.pending_cr);
    assert_int_equal(dotstuff_encode(&d, "x\r\n", 3, &used, out, sizeof out, &made),
                     DS_ERR_BARE_CR);
    assert_int_equal(used, 0);
    assert_int_equal(made, 0);

    dotstuff_init(&d, true);
    assert_int_equal(dotstuff_encode(&d, "ab\r", 3, &used, out, sizeof out, &made), DS_OK);
    assert_int_equal(dotstuff_encode(&d, "\n.", 2, &used, out, sizeof out, &made), DS_OK);
    assert_int_equal(made, 4);
    assert_memory_equal(out, "\r\n..", 4);
}

static void test_encode_output_full(void **state)
{
    (void)state;
    dotstuff d;
    char out[8];
    size_t used, made;
    dotstuff_init(&d, false);
    /* a stuffed "." needs 2 bytes: nothing fits in 1 */
    assert_int_equal(dotstuff_encode(&d, ".a\r\n", 4, &used, out, 1, &made), DS_OK);
    assert_int_equal(used, 0);
    assert_int_equal(made, 0);
    assert_int_equal(dotstuff_encode(&d, ".a\r\n", 4, &used, out, 3, &made), DS_OK);
    assert_int_equal(used, 3); /* the CR needs no room yet */
    assert_int_equal(made, 3);
    assert_memory_equal(out, "..a", 3);
    assert_int_equal(dotstuff_encode(&d, "\n", 1, &used, out, 0, &made), DS_OK);
    assert_int_equal(used, 0);
    assert_int_equal(made, 0);
    assert_int_equal(dotstuff_encode(&d, "\n", 1, &used, out, 1, &made), DS_OK);
    assert_int_equal(used, 0);
    assert_int_equal(dotstuff_encode(&d, "\n", 1, &used, out, 2, &made), DS_OK);
    assert_int_equal(used, 1);
    assert_memory_equal(out, "\r\n", 2);
    assert_int_equal(dotstuff_finish(&d, out, 5, &made), DS_OK);
    assert_int_equal(made, 3);
    assert_int_equal(d.out_bytes, 8);
}

typedef struct {
    const char *in;
    int ret;
    const char *out;
} dec_case;

static const dec_case dec_cases[] = {
    {".\r\n", 0, ""},
    {"a\r\n.\r\n", 0, "a\r\n"},
    {"..\r\n.\r\n", 0, ".\r\n"},
    {".x\r\n.\r\n", 0, "x\r\n"},
    {"\r\n.\r\n", 0, "\r\n"},
    {"", -1, NULL},
    {"a\r\n", -1, NULL},
    {"a\n.\r\n", -1, NULL},
    {"a\r\n.\n", -1, NULL},
    {"a\rb\r\n.\r\n", -1, NULL},
    {"a\r\n.\r\nb", -1, NULL},
    {"a\r\n.\r\n.\r\n", -1, NULL},
    {".\r", -1, NULL},
};

static void test_decode_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof dec_cases / sizeof dec_cases[0]; i++) {
        char out[64];
        size_t outlen = 99;
        const dec_case *c = &dec_cases[i];
        assert_int_equal(dotstuff_decode(c->in, strlen(c->in), out, &outlen), c->ret);
        if (c->ret == 0) {
            assert_int_equal(outlen, strlen(c->out));
            assert_memory_equal(out, c->out, outlen);
        }
    }
}

/* decode(encode(x)) == x for the valid strict inputs of the table. */
static void test_round_trip_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof ds_cases / sizeof ds_cases[0]; i++) {
        const ds_case *c = &ds_cases[i];
        char enc[OUTMAX], dec[OUTMAX];
        size_t elen, dlen;
        if (c->norm || c->st != DS_OK)
            continue;
        assert_int_equal(encode_split(c->in, strlen(c->in), false, 0, OUTMAX, enc, &elen),
                         DS_OK);
        assert_int_equal(dotstuff_decode(enc, elen, dec, &dlen), 0);
        assert_int_equal(dlen, strlen(c->in));
        assert_memory_equal(dec, c->in, dlen);
    }
}

/* What normalize mode should send: bare LF -> CRLF, final CRLF added. */
static size_t normalized(const char *in, size_t len, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
            out[n++] = '\r';
        out[n++] = in[i];
    }
    if (n > 0 && !(n >= 2 && out[n - 2] == '\r' && out[n - 1] == '\n')) {
        out[n++] = '\r';
        out[n++] = '\n';
    }
    return n;
}

/* Independent model of the strict rules: does x contain a bare CR or LF or
 * lack a final CRLF? */
static ds_status strict_verdict(const char *in, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '\r' && (i + 1 == len || in[i + 1] != '\n'))
            return DS_ERR_BARE_CR;
        if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
            return DS_ERR_BARE_LF;
    }
    if (len > 0 && (len < 2 || in[len - 2] != '\r' || in[len - 1] != '\n'))
        return DS_ERR_NO_FINAL_CRLF;
    return DS_OK;
}

static bool has_bare_cr(const char *in, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (in[i] == '\r' && (i + 1 == len || in[i + 1] != '\n'))
            return true;
    return false;
}

/* Random strings over {a . CR LF}, every split point, both modes. */
static void check_random(const char *in, size_t len, bool norm)
{
    char enc[OUTMAX], dec[OUTMAX], want[OUTMAX];
    size_t elen, dlen;
    ds_status expect = norm ? (has_bare_cr(in, len) ? DS_ERR_BARE_CR : DS_OK)
                            : strict_verdict(in, len);
    for (size_t split = 0; split <= len; split++) {
        ds_status st = encode_split(in, len, norm, split, split % 2 ? 2 : OUTMAX, enc, &elen);
        assert_int_equal(st, expect);
        if (st != DS_OK)
            continue;
        assert_no_early_end(enc, elen);
        assert_int_equal(dotstuff_decode(enc, elen, dec, &dlen), 0);
        size_t wlen = norm ? normalized(in, len, want) : len;
        assert_int_equal(dlen, wlen);
        assert_memory_equal(dec, norm ? want : in, dlen);
    }
}

static void test_round_trip_random(void **state)
{
    (void)state;
    /* CRLF is its own token so that valid messages are common. */
    static const char *const tokens[] = {"a", ".", "\r", "\n", "\r\n", "\r\n", "\r\n"};
    uint32_t seed = 12345;
    char in[32];
    for (int iter = 0; iter < 20000; iter++) {
        size_t ntok = (size_t)(iter % 12), len = 0;
        for (size_t i = 0; i < ntok; i++) {
            seed = seed * 1103515245u + 12345u;
            const char *t = tokens[(seed >> 16) % (sizeof tokens / sizeof tokens[0])];
            memcpy(in + len, t, strlen(t));
            len += strlen(t);
        }
        check_random(in, len, iter % 2 == 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_table),
        cmocka_unit_test(test_encode_bytewise),
        cmocka_unit_test(test_encode_cr_at_chunk_end),
        cmocka_unit_test(test_encode_output_full),
        cmocka_unit_test(test_decode_table),
        cmocka_unit_test(test_round_trip_table),
        cmocka_unit_test(test_round_trip_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
