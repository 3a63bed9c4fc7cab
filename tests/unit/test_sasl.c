/* Unit tests for the SASL client module (src/sasl.c, src/oauth.c, src/b64.c):
 * RFC test vectors, the spec 8.3/8.4 checks, channel binding headers, and
 * SCRAM interoperation with libgsasl's SCRAM server. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <gsasl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sasl.h"
#include "sasl_int.h"

#define ERRLEN 256

/* ---- helpers ---- */

static sasl_client *mk(const char *mech, const char *user, const char *pass, const char *token,
                       const sasl_cb *cb, bool server_plus)
{
    sasl_creds creds = {.user = user, .password = pass, .token = token};
    char err[ERRLEN] = "";
    sasl_client *c = sasl_client_new(mech, &creds, cb, server_plus, err, sizeof err);
    if (c == NULL)
        fail_msg("sasl_client_new(%s): %s", mech, err);
    return c;
}

/* One step that must succeed with exactly want/wantlen (want NULL: no
 * message) and the given final flag. */
static void step_ok(sasl_client *c, const void *in, size_t inlen, const void *want,
                    size_t wantlen, bool want_final)
{
    unsigned char *out = NULL;
    size_t outlen = 0;
    bool final = !want_final;
    char err[ERRLEN] = "";
    int rc = sasl_client_step(c, in, inlen, &out, &outlen, &final, err, sizeof err);
    if (rc != 0)
        fail_msg("step failed: %s", err);
    if (want == NULL) {
        assert_null(out);
    } else {
        assert_non_null(out);
        if (outlen != wantlen || memcmp(out, want, wantlen) != 0)
            fail_msg("got '%.*s' want '%.*s'", (int)outlen, (const char *)out, (int)wantlen,
                     (const char *)want);
    }
    assert_int_equal(final, want_final);
    sasl_free_buf(out, outlen);
}

static void step_str(sasl_client *c, const char *in, const char *want, bool want_final)
{
    step_ok(c, in, in ? strlen(in) : 0, want, want ? strlen(want) : 0, want_final);
}

/* A step that must fail with an error containing frag. */
static void step_fail(sasl_client *c, const void *in, size_t inlen, const char *frag)
{
    unsigned char *out = (unsigned char *)"x";
    size_t outlen = 1;
    bool final = true;
    char err[ERRLEN] = "";
    int rc = sasl_client_step(c, in, inlen, &out, &outlen, &final, err, sizeof err);
    if (rc != -1)
        fail_msg("step unexpectedly succeeded: '%.*s'", (int)outlen, (const char *)out);
    assert_null(out);
    assert_false(final);
    if (frag != NULL && strstr(err, frag) == NULL)
        fail_msg("error '%s' lacks '%s'", err, frag);
}

/* Runs a step and returns its output as a NUL-terminated string. */
static char *step_get(sasl_client *c, const char *in, bool want_final)
{
    unsigned char *out = NULL;
    size_t outlen = 0;
    bool final = false;
    char err[ERRLEN] = "";
    if (sasl_client_step(c, (const unsigned char *)in, in ? strlen(in) : 0, &out, &outlen,
                         &final, err, sizeof err) != 0)
        fail_msg("step failed: %s", err);
    assert_int_equal(final, want_final);
    char *s = malloc(outlen + 1);
    assert_non_null(s);
    memcpy(s, out, outlen);
    s[outlen] = '\0';
    sasl_free_buf(out, outlen);
    return s;
}

/* ---- base64 ---- */

static const struct {
    const char *raw, *b64;
} b64_vectors[] = {
    /* RFC 4648 10 */
    {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
    {"\xfb\xff", "+/8="},
};

static void test_b64_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof b64_vectors / sizeof b64_vectors[0]; i++) {
        const char *raw = b64_vectors[i].raw, *b = b64_vectors[i].b64;
        char *enc = b64_encode((const unsigned char *)raw, strlen(raw));
        assert_non_null(enc);
        assert_string_equal(enc, b);
        free(enc);
        unsigned char *dec = NULL;
        size_t declen = 99;
        assert_int_equal(b64_decode(b, strlen(b), &dec, &declen), 0);
        assert_non_null(dec);
        assert_int_equal(declen, strlen(raw));
        assert_memory_equal(dec, raw, declen);
        free(dec);
    }
}

static void test_b64_strict(void **state)
{
    (void)state;
    static const char *bad[] = {
        "Zg=",       /* length not a multiple of 4 */
        "Zg",        "Z",          "Zm9vY",
        "Zg==Zg==",  /* padding in the middle */
        "Z===",      /* three padding characters */
        "====",      "=Zg=",       "Zm=v",
        "Zm9v\r\n",  /* whitespace */
        " Zm9v",     "Zm9 ",       "Zm9\tv",
        "Zm9-",      /* base64url alphabet */
        "Zm9_",      "Zm9v====",   "Zm9v\x80\x80\x80\x80",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned char *dec = (unsigned char *)"x";
        size_t declen = 7;
        if (b64_decode(bad[i], strlen(bad[i]), &dec, &declen) != -1)
            fail_msg("'%s' decoded", bad[i]);
        assert_null(dec);
        assert_int_equal(declen, 0);
    }
    /* An embedded NUL is not part of the alphabet. */
    unsigned char *dec = NULL;
    size_t declen = 0;
    assert_int_equal(b64_decode("Zm\0v", 4, &dec, &declen), -1);
    /* Binary round trip over all byte values. */
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    for (size_t n = 0; n <= sizeof all; n += 37) {
        char *enc = b64_encode(all, n);
        assert_non_null(enc);
        assert_int_equal(strlen(enc), (n + 2) / 3 * 4);
        assert_int_equal(b64_decode(enc, strlen(enc), &dec, &declen), 0);
        assert_int_equal(declen, n);
        if (n > 0)
            assert_memory_equal(dec, all, n);
        free(dec);
        free(enc);
    }
}

/* ---- mechanism choice ---- */

static void test_choose(void **state)
{
    (void)state;
    static const unsigned char cbdata[32] = {1, 2, 3};
    sasl_cb exporter = {.type = "tls-exporter", .data = cbdata, .len = sizeof cbdata};
    sasl_cb notls = {.type = NULL};
    sasl_cb nodata = {.type = "tls-unique", .data = NULL, .len = 0};
    sasl_creds pw = {.user = "u", .password = "p"};
    sasl_creds tok = {.user = "u", .token = "t"};
    sasl_creds both = {.user = "u", .password = "p", .token = "t"};
    sasl_creds none = {.user = "u"};
    static char *all[] = {"LOGIN", "PLAIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256",
                          "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS", "XOAUTH2",
                          "OAUTHBEARER"};
    static char *lower[] = {"plain", "scram-sha-1", "xoauth2"};
    static char *sha1plus[] = {"SCRAM-SHA-1", "SCRAM-SHA-1-PLUS", "PLAIN"};
    static char *weak[] = {"LOGIN", "PLAIN"};
    static char *login[] = {"LOGIN"};
    static char *cram[] = {"PLAIN", "CRAM-MD5", "LOGIN"};
    static char *oauth[] = {"XOAUTH2", "OAUTHBEARER", "PLAIN"};
    static char *unknown[] = {"GSSAPI", "NTLM", "EXTERNAL"};
    const struct {
        const char *wanted;
        char **mechs;
        size_t n;
        const sasl_creds *creds;
        const sasl_cb *cb;
        const char *want;
    } t[] = {
        {NULL, all, 9, &pw, &exporter, "SCRAM-SHA-256-PLUS"},
        {"auto", all, 9, &pw, &exporter, "SCRAM-SHA-256-PLUS"},
        {"AUTO", all, 9, &pw, &exporter, "SCRAM-SHA-256-PLUS"},
        {"", all, 9, &pw, &exporter, "SCRAM-SHA-256-PLUS"},
        {NULL, all, 9, &pw, &notls, "SCRAM-SHA-256"},
        {NULL, all, 9, &pw, NULL, "SCRAM-SHA-256"},
        {NULL, all, 9, &pw, &nodata, "SCRAM-SHA-256"},
        {NULL, sha1plus, 3, &pw, &exporter, "SCRAM-SHA-1-PLUS"},
        {NULL, sha1plus, 3, &pw, NULL, "SCRAM-SHA-1"},
        {NULL, all, 5, &pw, &exporter, "SCRAM-SHA-256"}, /* first 5: no -PLUS */
        {NULL, cram, 3, &pw, NULL, "CRAM-MD5"},
        {NULL, weak, 2, &pw, NULL, "PLAIN"},
        {NULL, login, 1, &pw, NULL, "LOGIN"},
        {NULL, lower, 3, &pw, NULL, "SCRAM-SHA-1"},
        {NULL, all, 9, &tok, &exporter, "OAUTHBEARER"},
        {NULL, oauth, 1, &tok, NULL, "XOAUTH2"},
        {NULL, oauth, 3, &both, NULL, "PLAIN"},
        {NULL, weak, 2, &tok, NULL, NULL},   /* token only, no OAuth offered */
        {NULL, oauth, 2, &pw, NULL, NULL},   /* password only, only OAuth offered */
        {NULL, all, 9, &none, NULL, NULL},   /* no credentials */
        {NULL, all, 9, NULL, NULL, NULL},
        {NULL, unknown, 3, &pw, NULL, NULL}, /* nothing we implement */
        {NULL, all, 0, &pw, NULL, NULL},
        {NULL, NULL, 0, &pw, NULL, NULL},
        /* explicit choice */
        {"PLAIN", all, 9, &pw, &exporter, "PLAIN"},
        {"plain", all, 9, &pw, NULL, "PLAIN"},
        {"Login", login, 1, &pw, NULL, "LOGIN"},
        {"CRAM-MD5", weak, 2, &pw, NULL, NULL},  /* not offered */
        {"SCRAM-SHA-1", lower, 3, &pw, NULL, "SCRAM-SHA-1"},
        {"GSSAPI", unknown, 3, &pw, NULL, NULL}, /* offered, not implemented */
        {"XOAUTH2", oauth, 3, &tok, NULL, "XOAUTH2"},
        {"XOAUTH2", weak, 2, &tok, NULL, NULL},
        {"SCRAM-SHA-256-PLUS", all, 9, &pw, &exporter, "SCRAM-SHA-256-PLUS"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        const char *got = sasl_choose(t[i].wanted, t[i].mechs, t[i].n, t[i].creds, t[i].cb);
        if (t[i].want == NULL ? got != NULL : got == NULL || strcmp(got, t[i].want) != 0)
            fail_msg("case %zu: got %s want %s", i, got ? got : "NULL",
                     t[i].want ? t[i].want : "NULL");
    }
}

static void test_cleartext(void **state)
{
    (void)state;
    assert_true(sasl_mech_cleartext("PLAIN"));
    assert_true(sasl_mech_cleartext("login"));
    assert_true(sasl_mech_cleartext("XOAUTH2"));
    assert_true(sasl_mech_cleartext("OAUTHBEARER"));
    assert_false(sasl_mech_cleartext("CRAM-MD5"));
    assert_false(sasl_mech_cleartext("SCRAM-SHA-1"));
    assert_false(sasl_mech_cleartext("SCRAM-SHA-256-PLUS"));
    assert_false(sasl_mech_cleartext("GSSAPI"));
    assert_false(sasl_mech_cleartext(NULL));
}

static void test_new_errors(void **state)
{
    (void)state;
    static const unsigned char d[4] = {1};
    sasl_cb unknown_cb = {.type = "tls-server-end-point", .data = d, .len = 4};
    sasl_cb nodata = {.type = "tls-unique", .data = NULL, .len = 0};
    const struct {
        const char *mech, *user, *pass, *token;
        const sasl_cb *cb;
        const char *frag;
    } t[] = {
        {"GSSAPI", "u", "p", NULL, NULL, "unsupported"},
        {NULL, "u", "p", NULL, NULL, "unsupported"},
        {"PLAIN", "u", NULL, "tok", NULL, "password"},
        {"SCRAM-SHA-1", "u", NULL, NULL, NULL, "password"},
        {"XOAUTH2", "u", "p", NULL, NULL, "token"},
        {"OAUTHBEARER", "u", "p", "", NULL, "token"},
        {"XOAUTH2", "u", NULL, "has space", NULL, "token"},
        {"XOAUTH2", "u", NULL, "a\x01" "b", NULL, "token"},
        {"XOAUTH2", "", NULL, "tok", NULL, "user"},
        {"OAUTHBEARER", "a\x01" "b", NULL, "tok", NULL, "user"},
        {"SCRAM-SHA-256-PLUS", "u", "p", NULL, NULL, "channel binding"},
        {"SCRAM-SHA-1-PLUS", "u", "p", NULL, &unknown_cb, "channel binding"},
        {"SCRAM-SHA-1-PLUS", "u", "p", NULL, &nodata, "channel binding"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        sasl_creds creds = {.user = t[i].user, .password = t[i].pass, .token = t[i].token};
        char err[ERRLEN] = "";
        sasl_client *c = sasl_client_new(t[i].mech, &creds, t[i].cb, false, err, sizeof err);
        if (c != NULL)
            fail_msg("case %zu: client created", i);
        if (strstr(err, t[i].frag) == NULL)
            fail_msg("case %zu: error '%s' lacks '%s'", i, err, t[i].frag);
    }
    char err[ERRLEN] = "";
    assert_null(sasl_client_new("PLAIN", NULL, NULL, false, err, sizeof err));
    /* err may be NULL */
    assert_null(sasl_client_new("NOPE", NULL, NULL, false, NULL, 0));
    sasl_client_free(NULL);
    sasl_free_buf(NULL, 0);
}

/* ---- PLAIN, LOGIN, CRAM-MD5 ---- */

static void test_plain(void **state)
{
    (void)state;
    /* RFC 4616 4, first example (no authzid). */
    sasl_client *c = mk("PLAIN", "tim", "tanstaaftanstaaf", NULL, NULL, false);
    unsigned char *out = NULL;
    size_t outlen = 0;
    bool final = false;
    char err[ERRLEN];
    assert_int_equal(sasl_client_step(c, NULL, 0, &out, &outlen, &final, err, sizeof err), 0);
    assert_true(final);
    assert_int_equal(outlen, 21);
    assert_memory_equal(out, "\0tim\0tanstaaftanstaaf", 21);
    char *b = b64_encode(out, outlen);
    assert_string_equal(b, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
    free(b);
    sasl_free_buf(out, outlen);
    step_fail(c, "", 0, "unexpected");
    sasl_client_free(c);

    /* No PRECIS/SASLprep for PLAIN (spec 8.1/8.7): bytes go out unmodified. */
    c = mk("plain", "I\xc2\xadX", "p\xc2\xa0" "w", NULL, NULL, false);
    step_ok(c, NULL, 0, "\0I\xc2\xadX\0p\xc2\xa0w", 10, true);
    sasl_client_free(c);

    c = mk("PLAIN", NULL, "", NULL, NULL, false);
    step_ok(c, NULL, 0, "\0\0", 2, true);
    sasl_client_free(c);
}

static void test_login(void **state)
{
    (void)state;
    sasl_client *c = mk("LOGIN", "tim", "tanstaaftanstaaf", NULL, NULL, false);
    step_str(c, NULL, "tim", false);
    step_str(c, "Password:", "tanstaaftanstaaf", true);
    step_fail(c, "", 0, NULL);
    sasl_client_free(c);

    /* Empty user name: empty initial response ("AUTH LOGIN ="); the
     * password follows whatever the challenge, even an empty one. */
    c = mk("LOGIN", "", "pw", NULL, NULL, false);
    step_ok(c, NULL, 0, "", 0, false);
    step_ok(c, "", 0, "pw", 2, true);
    sasl_client_free(c);

    c = mk("LOGIN", "I\xc2\xadX", "pw", NULL, NULL, false);
    step_str(c, NULL, "I\xc2\xadX", false);
    step_str(c, "VXNlcm5hbWU6", "pw", true);
    sasl_client_free(c);
}

static void test_cram_md5(void **state)
{
    (void)state;
    /* RFC 2195 2 */
    sasl_client *c = mk("CRAM-MD5", "tim", "tanstaaftanstaaf", NULL, NULL, false);
    step_str(c, NULL, NULL, false); /* no initial response */
    step_str(c, "<1896.697170952@postoffice.reston.mci.net>",
             "tim b913a602c7eda7a495b4e6e7334d3890", true);
    step_fail(c, "<1.2@x>", 7, "unexpected");
    step_fail(c, "<1.2@x>", 7, "already failed");
    sasl_client_free(c);

    /* Passwords over 64 bytes are hashed first (RFC 2104 2); the user name
     * is sent unmodified. Expected values from Python's hmac module. */
    c = mk("CRAM-MD5", "t,i m",
           "0123456789012345678901234567890123456789012345678901234567890123456789", NULL, NULL,
           false);
    step_str(c, NULL, NULL, false);
    step_str(c, "<1.2@x>", "t,i m 251b445959a46a3ac30f218a7ed49755", true);
    sasl_client_free(c);

    /* A password SASLprep rejects is used raw (spec 8.7). */
    c = mk("CRAM-MD5", "tim", "p\x01w", NULL, NULL, false);
    step_str(c, NULL, NULL, false);
    step_str(c, "<1.2@x>", "tim 18ee2c83c479276687869debf468f1c9", true);
    sasl_client_free(c);

    /* Empty password (HMAC with an empty key). */
    c = mk("CRAM-MD5", "tim", "", NULL, NULL, false);
    step_str(c, NULL, NULL, false);
    step_str(c, "<1.2@x>", "tim 5d5f7ac2e54575c8145c2151a8ea8671", true);
    sasl_client_free(c);

    /* SASLprep maps non-ASCII spaces to a space. */
    c = mk("CRAM-MD5", "tim", "p\xc2\xa0w", NULL, NULL, false);
    step_str(c, NULL, NULL, false);
    step_str(c, "<1.2@x>", "tim 2bbe9f4c07def9245578343c8ea52b1f", true);
    sasl_client_free(c);
}

static void test_cram_md5_bad_challenge(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",
        "<",
        "<>",
        "1896.697170952@postoffice.reston.mci.net",   /* no brackets */
        "<1896.697170952@postoffice.reston.mci.net",  /* no closing bracket */
        "1896.697170952@postoffice.reston.mci.net>",  /* no opening bracket */
        "<1896697170952@postoffice.reston.mci.net>",  /* dot only after @ ... */
        "<1896697170952@postofficerestonmcinet>",     /* no dot */
        "<.697170952@postoffice.reston.mci.net>",     /* nothing before the dot */
        "<1896.697170952postoffice>",                 /* no @ */
        "<1896.@postoffice.reston.mci.net>",          /* empty timestamp */
        "<1896.697170952@>",                          /* empty host */
        " <1896.697170952@postoffice.reston.mci.net>",
        "<1896.697170952@postoffice.reston.mci.net> ",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sasl_client *c = mk("CRAM-MD5", "tim", "tanstaaftanstaaf", NULL, NULL, false);
        step_str(c, NULL, NULL, false);
        step_fail(c, bad[i], strlen(bad[i]), "invalid challenge");
        sasl_client_free(c);
    }
    sasl_client *c = mk("CRAM-MD5", "tim", "tanstaaftanstaaf", NULL, NULL, false);
    step_str(c, NULL, NULL, false);
    step_fail(c, "<1.2@x\0>", 8, "invalid challenge");
    sasl_client_free(c);
}

/* ---- SCRAM ---- */

#define RFC5802_NONCE "fyko+d2lbbFgONRv9qkxdawL"
#define RFC5802_SFIRST "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
#define RFC5802_CFINAL \
    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
#define RFC5802_SFINAL "v=rmF9pqV8S7suAoZWja4dJRkFsKQ="

static sasl_client *scram_rfc5802(void)
{
    sasl_client *c = mk("SCRAM-SHA-1", "user", "pencil", NULL, NULL, false);
    assert_int_equal(sasl_scram_set_nonce(c, RFC5802_NONCE), 0);
    step_str(c, NULL, "n,,n=user,r=" RFC5802_NONCE, false);
    return c;
}

static void test_scram_sha1_rfc5802(void **state)
{
    (void)state;
    sasl_client *c = scram_rfc5802();
    step_str(c, RFC5802_SFIRST, RFC5802_CFINAL, false);
    step_str(c, RFC5802_SFINAL, "", true);
    step_fail(c, "", 0, "unexpected");
    sasl_client_free(c);
}

static void test_scram_sha256_rfc7677(void **state)
{
    (void)state;
    sasl_client *c = mk("SCRAM-SHA-256", "user", "pencil", NULL, NULL, false);
    assert_int_equal(sasl_scram_set_nonce(c, "rOprNGfwEbeRWgbNEkqO"), 0);
    step_str(c, NULL, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO", false);
    step_str(c,
             "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
             "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
             "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
             "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
             false);
    step_str(c, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", "", true);
    sasl_client_free(c);
}

static void test_scram_random_nonce(void **state)
{
    (void)state;
    sasl_client *c = mk("SCRAM-SHA-256", "a,b=c", "pencil", NULL, NULL, false);
    char *first = step_get(c, NULL, false);
    /* RFC 5802 5.1 saslname escaping; a 12-byte nonce is 16 characters. */
    static const char head[] = "n,,n=a=2Cb=3Dc,r=";
    size_t hl = sizeof head - 1;
    assert_int_equal(strncmp(first, head, hl), 0);
    assert_int_equal(strlen(first), hl + 16);
    assert_null(strchr(first + hl, ','));
    /* Two clients do not share a nonce. */
    sasl_client *c2 = mk("SCRAM-SHA-256", "a,b=c", "pencil", NULL, NULL, false);
    char *first2 = step_get(c2, NULL, false);
    assert_string_not_equal(first, first2);
    free(first2);
    sasl_client_free(c2);
    free(first);
    sasl_client_free(c);
    /* The nonce hook rejects bad nonces and late calls. */
    c = mk("SCRAM-SHA-1", "u", "p", NULL, NULL, false);
    assert_int_equal(sasl_scram_set_nonce(c, "a,b"), -1);
    assert_int_equal(sasl_scram_set_nonce(c, ""), -1);
    free(step_get(c, NULL, false));
    assert_int_equal(sasl_scram_set_nonce(c, "abc"), -1);
    sasl_client_free(c);
}

/* Server-first variants on the RFC 5802 exchange: NULL frag = must pass. */
static void test_scram_server_first_checks(void **state)
{
    (void)state;
    const struct {
        const char *sfirst;
        const char *frag;
    } t[] = {
        {"r=" RFC5802_NONCE "1234567,s=QSXCR+Q6sek8bf92,i=4096", "fewer than 8"},
        {"r=" RFC5802_NONCE ",s=QSXCR+Q6sek8bf92,i=4096", "fewer than 8"},
        {"r=" RFC5802_NONCE "12345678,s=QSXCR+Q6sek8bf92,i=4096", NULL},
        {"r=fyko+d2lbbFgONRv9qkxdaw,s=QSXCR+Q6sek8bf92,i=4096", "does not start"},
        {"r=Xyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
         "does not start"},
        {"r=" RFC5802_NONCE "123 45678,s=QSXCR+Q6sek8bf92,i=4096", "invalid characters"},
        {"r=" RFC5802_NONCE "3rfcNHYJY1ZVvWVs7j,s=QUFBQUFBQQ==,i=4096", "salt shorter"},
        {"r=" RFC5802_NONCE "3rfcNHYJY1ZVvWVs7j,s=QUFBQUFBQUE=,i=4096", NULL},
        {"r=" RFC5802_NONCE "3rfcNHYJY1ZVvWVs7j,s=,i=4096", "salt shorter"},
        {"r=" RFC5802_NONCE "3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf9,i=4096", "base64"},
        {"r=" RFC5802_NONCE "3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=2047", "below 2048"},
        {"r=" RFC5802_NONCE "3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=2048", NULL},
        {"r=" RFC5802_NONCE "3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=0", "below 2048"},
        {"r=" RFC5802_NONCE "3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=", "iteration"},
        {"r=" RFC5802_NONCE "3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=-4096", "iteration"},
        {"r=" RFC5802_NONCE "3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096x", "iteration"},
        {"r=" RFC5802_NONCE "3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=10000001", "above"},
        {"r=" RFC5802_NONCE "3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=99999999999", "iteration"},
        {"r=" RFC5802_NONCE "3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92", "iteration"},
        {"r=" RFC5802_NONCE "3rfcNHYJY1ZVvWVs7j,i=4096", "missing salt"},
        {"s=QSXCR+Q6sek8bf92,r=" RFC5802_NONCE "3rfcNHYJY1ZVvWVs7j,i=4096", "missing nonce"},
        {"m=ext,r=" RFC5802_NONCE "3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096", "m="},
        {"", "missing nonce"},
        {"e=other-error", "missing nonce"},
        /* extensions after the iteration count are ignored */
        {"r=" RFC5802_NONCE "3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096,x=y", NULL},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        sasl_client *c = scram_rfc5802();
        if (t[i].frag == NULL) {
            char *out = step_get(c, t[i].sfirst, false);
            assert_int_equal(strncmp(out, "c=biws,r=" RFC5802_NONCE, 33), 0);
            free(out);
        } else {
            step_fail(c, t[i].sfirst, strlen(t[i].sfirst), t[i].frag);
        }
        sasl_client_free(c);
    }
    sasl_client *c = scram_rfc5802();
    char *big = malloc(5000);
    assert_non_null(big);
    memset(big, 'x', 5000);
    memcpy(big, RFC5802_SFIRST ",x=", sizeof RFC5802_SFIRST + 2);
    step_fail(c, big, 5000, "too long");
    free(big);
    sasl_client_free(c);
    c = scram_rfc5802();
    static const char nul[] = "r=" RFC5802_NONCE "3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096\0";
    step_fail(c, nul, sizeof nul - 1, NULL); /* includes the explicit NUL */
    sasl_client_free(c);
}

static void test_scram_server_final_checks(void **state)
{
    (void)state;
    const struct {
        const char *sfinal;
        const char *frag;
    } t[] = {
        {"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=", NULL},
        {"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=,x=ext", NULL},
        {"v=rmF9pqV8S7suAoZWja4dJRkFsKX=", "signature mismatch"},
        {"v=AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "signature mismatch"},
        {"v=rmF9pqV8S7suAoZWja4dJRkFsKQ", "signature mismatch"},
        {"v=rmF9pqV8S7suAoZWja4dJRkFsKQAAA==", "signature mismatch"},
        {"v=", "signature mismatch"},
        {"e=invalid-proof", "server error: invalid-proof"},
        {"e=other-error,x=y", "server error: other-error"},
        {"", "malformed"},
        {"x=rmF9pqV8S7suAoZWja4dJRkFsKQ=", "malformed"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        sasl_client *c = scram_rfc5802();
        step_str(c, RFC5802_SFIRST, RFC5802_CFINAL, false);
        if (t[i].frag == NULL)
            step_str(c, t[i].sfinal, "", true);
        else
            step_fail(c, t[i].sfinal, strlen(t[i].sfinal), t[i].frag);
        sasl_client_free(c);
    }
}

/* Value of attribute "c=" in a client-final-message. */
static char *cbind_attr(const char *cfinal)
{
    assert_int_equal(strncmp(cfinal, "c=", 2), 0);
    const char *end = strchr(cfinal, ',');
    assert_non_null(end);
    size_t n = (size_t)(end - cfinal - 2);
    char *s = malloc(n + 1);
    assert_non_null(s);
    memcpy(s, cfinal + 2, n);
    s[n] = '\0';
    return s;
}

static void check_gs2(const char *mech, const sasl_cb *cb, bool server_plus, const char *gs2,
                      bool with_data)
{
    sasl_client *c = mk(mech, "user", "pencil", NULL, cb, server_plus);
    assert_int_equal(sasl_scram_set_nonce(c, RFC5802_NONCE), 0);
    char *first = step_get(c, NULL, false);
    char want[128];
    snprintf(want, sizeof want, "%sn=user,r=%s", gs2, RFC5802_NONCE);
    assert_string_equal(first, want);
    char *final = step_get(c, RFC5802_SFIRST, false);
    char *got = cbind_attr(final);
    size_t glen = strlen(gs2);
    unsigned char buf[128];
    memcpy(buf, gs2, glen);
    size_t n = glen;
    if (with_data) {
        memcpy(buf + glen, cb->data, cb->len);
        n += cb->len;
    }
    char *exp = b64_encode(buf, n);
    assert_string_equal(got, exp);
    free(exp);
    free(got);
    free(final);
    free(first);
    sasl_client_free(c);
}

static void test_scram_channel_binding(void **state)
{
    (void)state;
    unsigned char exp_data[32], uniq_data[12];
    for (size_t i = 0; i < sizeof exp_data; i++)
        exp_data[i] = (unsigned char)(0xa0 + i);
    for (size_t i = 0; i < sizeof uniq_data; i++)
        uniq_data[i] = (unsigned char)(0x10 + i);
    sasl_cb exporter = {.type = "tls-exporter", .data = exp_data, .len = sizeof exp_data};
    sasl_cb unique = {.type = "tls-unique", .data = uniq_data, .len = sizeof uniq_data};
    sasl_cb nodata = {.type = "tls-unique", .data = NULL, .len = 0};

    check_gs2("SCRAM-SHA-256-PLUS", &exporter, true, "p=tls-exporter,,", true);
    check_gs2("SCRAM-SHA-1-PLUS", &exporter, true, "p=tls-exporter,,", true);
    check_gs2("SCRAM-SHA-256-PLUS", &unique, true, "p=tls-unique,,", true);
    check_gs2("SCRAM-SHA-1-PLUS", &unique, false, "p=tls-unique,,", true);
    /* RFC 5802 6: we could bind, the server did not offer -PLUS: "y". */
    check_gs2("SCRAM-SHA-256", &exporter, false, "y,,", false);
    check_gs2("SCRAM-SHA-1", &unique, false, "y,,", false);
    /* The server offered -PLUS but a plain variant was chosen: "n". */
    check_gs2("SCRAM-SHA-256", &exporter, true, "n,,", false);
    /* No TLS, or no binding data: "n". */
    check_gs2("SCRAM-SHA-256", NULL, false, "n,,", false);
    check_gs2("SCRAM-SHA-1", &nodata, false, "n,,", false);
}

/* Full exchange of our client with libgsasl's SCRAM server, which checks
 * the proof, the c= attribute against its own channel binding data, and a
 * "y" flag against its support for binding. */
static void gsasl_exchange(const char *mech, const char *client_pw, const char *server_pw,
                           const sasl_cb *cb, bool server_plus, int server_cb_prop,
                           bool expect_ok)
{
    Gsasl *ctx = NULL;
    Gsasl_session *srv = NULL;
    assert_int_equal(gsasl_init(&ctx), GSASL_OK);
    assert_int_equal(gsasl_server_start(ctx, mech, &srv), GSASL_OK);
    assert_int_equal(gsasl_property_set(srv, GSASL_PASSWORD, server_pw), GSASL_OK);
    if (server_cb_prop != 0) {
        char *b = b64_encode(cb->data, cb->len);
        assert_int_equal(gsasl_property_set(srv, (Gsasl_property)server_cb_prop, b), GSASL_OK);
        free(b);
    }
    sasl_client *c = mk(mech, "user", client_pw, NULL, cb, server_plus);
    char *cmsg = step_get(c, NULL, false);
    bool ok = true;
    for (int round = 0; round < 2 && ok; round++) {
        char *smsg = NULL;
        size_t slen = 0;
        int rc = gsasl_step(srv, cmsg, strlen(cmsg), &smsg, &slen);
        free(cmsg);
        cmsg = NULL;
        if (rc != (round == 0 ? GSASL_NEEDS_MORE : GSASL_OK)) {
            ok = false;
        } else {
            char *s = malloc(slen + 1);
            assert_non_null(s);
            memcpy(s, smsg, slen);
            s[slen] = '\0';
            cmsg = step_get(c, s, round == 1);
            free(s);
            if (round == 1)
                assert_string_equal(cmsg, "");
        }
        gsasl_free(smsg);
    }
    free(cmsg);
    assert_int_equal(ok, expect_ok);
    sasl_client_free(c);
    gsasl_finish(srv);
    gsasl_done(ctx);
}

static void test_scram_vs_gsasl(void **state)
{
    (void)state;
    unsigned char data[32];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 7 + 1);
    sasl_cb exporter = {.type = "tls-exporter", .data = data, .len = 32};
    sasl_cb unique = {.type = "tls-unique", .data = data, .len = 12};

    gsasl_exchange("SCRAM-SHA-1", "pencil", "pencil", NULL, false, 0, true);
    gsasl_exchange("SCRAM-SHA-256", "pencil", "pencil", NULL, false, 0, true);
    gsasl_exchange("SCRAM-SHA-256", "wrong", "pencil", NULL, false, 0, false);
    gsasl_exchange("SCRAM-SHA-1", "", "", NULL, false, 0, true);
    /* SASLprep of the password on both sides (U+00A0 -> space). */
    gsasl_exchange("SCRAM-SHA-256", "pen\xc2\xa0" "cil", "pen cil", NULL, false, 0, true);
    gsasl_exchange("SCRAM-SHA-256", "pen cil", "pen\xc2\xa0" "cil", NULL, false, 0, true);
    gsasl_exchange("SCRAM-SHA-256-PLUS", "pencil", "pencil", &exporter, true,
                   GSASL_CB_TLS_EXPORTER, true);
    gsasl_exchange("SCRAM-SHA-1-PLUS", "pencil", "pencil", &exporter, true,
                   GSASL_CB_TLS_EXPORTER, true);
    gsasl_exchange("SCRAM-SHA-256-PLUS", "pencil", "pencil", &unique, true, GSASL_CB_TLS_UNIQUE,
                   true);
    gsasl_exchange("SCRAM-SHA-1-PLUS", "pencil", "pencil", &unique, true, GSASL_CB_TLS_UNIQUE,
                   true);
    /* "y" is accepted by a server without channel binding, and refused by
     * one that supports it (downgrade detection, RFC 5802 6). */
    gsasl_exchange("SCRAM-SHA-256", "pencil", "pencil", &exporter, false, 0, true);
    gsasl_exchange("SCRAM-SHA-256", "pencil", "pencil", &exporter, false,
                   GSASL_CB_TLS_EXPORTER, false);
}

/* ---- OAuth ---- */

static void test_oauthbearer(void **state)
{
    (void)state;
    /* RFC 7628 4.1, without the optional host and port. */
    sasl_client *c = mk("OAUTHBEARER", "user@example.com", NULL,
                        "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==", NULL, false);
    step_str(c, NULL,
             "n,a=user@example.com,\x01" "auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="
             "\x01\x01",
             true);
    /* RFC 7628 3.2.3: error challenge, answered with a single ^A. */
    step_str(c, "{\"status\":\"invalid_token\"}", "\x01", true);
    step_fail(c, "", 0, "unexpected");
    sasl_client_free(c);

    c = mk("OAUTHBEARER", "a,b=c", NULL, "tok", NULL, false);
    step_str(c, NULL, "n,a=a=2Cb=3Dc,\x01" "auth=Bearer tok\x01\x01", true);
    sasl_client_free(c);

    c = mk("OAUTHBEARER", "", NULL, "tok", NULL, false);
    step_str(c, NULL, "n,,\x01" "auth=Bearer tok\x01\x01", true);
    sasl_client_free(c);
}

static void test_xoauth2(void **state)
{
    (void)state;
    /* Google's XOAUTH2 protocol documentation example. */
    sasl_client *c = mk("XOAUTH2", "someuser@example.com", NULL,
                        "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==", NULL, false);
    unsigned char *out = NULL;
    size_t outlen = 0;
    bool final = false;
    char err[ERRLEN];
    assert_int_equal(sasl_client_step(c, NULL, 0, &out, &outlen, &final, err, sizeof err), 0);
    assert_true(final);
    char *b = b64_encode(out, outlen);
    assert_string_equal(b, "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB2RjlkZnQ0cW1UYzJOdm"
                           "IzUmxja0JoYkhSaGRtbHpkR0V1WTI5dENnPT0BAQ==");
    free(b);
    sasl_free_buf(out, outlen);
    /* A 334 with a JSON error: empty response, final. */
    step_str(c, "{\"status\":\"401\"}", "", true);
    step_fail(c, "", 0, "unexpected");
    sasl_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64_vectors),
        cmocka_unit_test(test_b64_strict),
        cmocka_unit_test(test_choose),
        cmocka_unit_test(test_cleartext),
        cmocka_unit_test(test_new_errors),
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_login),
        cmocka_unit_test(test_cram_md5),
        cmocka_unit_test(test_cram_md5_bad_challenge),
        cmocka_unit_test(test_scram_sha1_rfc5802),
        cmocka_unit_test(test_scram_sha256_rfc7677),
        cmocka_unit_test(test_scram_random_nonce),
        cmocka_unit_test(test_scram_server_first_checks),
        cmocka_unit_test(test_scram_server_final_checks),
        cmocka_unit_test(test_scram_channel_binding),
        cmocka_unit_test(test_scram_vs_gsasl),
        cmocka_unit_test(test_oauthbearer),
        cmocka_unit_test(test_xoauth2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
