/* The protocol core driven directly: server bytes in, client bytes out, no
 * sockets. Each test is a transcript of one spec row (mox-spec 4, 7, 9, 11). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core.h"

typedef struct fixture {
    smtpc_config *cfg;
    smtpc_tlsrpt rcpt, host;
    core c;
    smtpc_message *m;
} fixture;

static fixture *fx_new(smtpc_tls_mode mode, bool pipelining)
{
    fixture *f = calloc(1, sizeof *f);
    f->cfg = smtpc_config_new();
    smtpc_config_set_tls_mode(f->cfg, mode);
    smtpc_config_set_pipelining(f->cfg, pipelining);
    smtpc_config_set_ehlo_name(f->cfg, "client.test");
    core_init(&f->c, f->cfg, &f->rcpt, &f->host);
    f->m = smtpc_message_new();
    smtpc_message_set_from(f->m, "a@x.test");
    return f;
}

static void fx_free(fixture *f)
{
    core_free(&f->c);
    tlsrpt_clear(&f->rcpt);
    tlsrpt_clear(&f->host);
    smtpc_config_free(f->cfg);
    smtpc_message_free(f->m);
    free(f);
}

/* Takes exactly the expected client bytes from the core. */
static void expect_out(fixture *f, const char *want)
{
    size_t n = strlen(want), got = 0;
    char buf[8192];
    while (got < n) {
        const char *p;
        size_t len = core_out(&f->c, &p);
        if (len == 0)
            break;
        if (len > n - got)
            len = n - got;
        memcpy(buf + got, p, len);
        core_out_done(&f->c, len);
        got += len;
    }
    buf[got] = '\0';
    assert_string_equal(buf, want);
}

static void expect_no_out(fixture *f)
{
    const char *p;
    assert_int_equal(core_out(&f->c, &p), 0);
}

static void feed(fixture *f, const char *s)
{
    size_t n = core_feed(&f->c, s, strlen(s));
    assert_int_equal(n, strlen(s));
}

static void expect_event(fixture *f, core_event ev)
{
    assert_int_equal(core_take_event(&f->c), ev);
}

/* Greeting + EHLO with the given keyword lines, ends in DONE. */
static void open_plain(fixture *f, const char *ehlo_reply)
{
    core_begin_open(&f->c);
    feed(f, "220 mx.test ESMTP ready\r\n");
    expect_out(f, "EHLO client.test\r\n");
    feed(f, ehlo_reply);
    expect_event(f, CORE_EV_DONE);
}

static void test_open_opportunistic_without_starttls(void **st)
{
    (void)st;
    fixture *f = fx_new(SMTPC_TLS_OPPORTUNISTIC, true);
    open_plain(f, "250-mx.test\r\n250 PIPELINING\r\n");
    assert_string_equal(f->c.server_name, "mx.test");
    assert_true(f->c.ehlo.ext & SMTPC_EXT_PIPELINING);
    /* spec 4.15: a detail, counts unchanged */
    assert_int_equal(f->rcpt.ndetails, 1);
    assert_string_equal(f->rcpt.details[0].result_type, "starttls-not-supported");
    assert_int_equal(f->rcpt.failure, 0);
    assert_int_equal(f->host.ndetails, 1);
    fx_free(f);
}

static void test_helo_fallback(void **st)
{
    (void)st;
    fixture *f = fx_new(SMTPC_TLS_NONE, true);
    core_begin_open(&f->c);
    feed(f, "220 old.test\r\n");
    expect_out(f, "EHLO client.test\r\n");
    feed(f, "502 what\r\n");
    expect_out(f, "HELO client.test\r\n");
    feed(f, "250 old.test\r\n");
    expect_event(f, CORE_EV_DONE);
    assert_int_equal(f->c.ehlo.ext, 0);
    fx_free(f);
}

static void test_helo_rejected_reports_helo_lines(void **st)
{
    (void)st;
    fixture *f = fx_new(SMTPC_TLS_NONE, true);
    core_begin_open(&f->c);
    feed(f, "220 old.test\r\n");
    expect_out(f, "EHLO client.test\r\n");
    feed(f, "500-no\r\n500 really\r\n");
    expect_out(f, "HELO client.test\r\n");
    feed(f, "554 go away\r\n");
    expect_event(f, CORE_EV_FAILED);
    assert_int_equal(f->c.err.kind, SMTPC_ERR_STATUS);
    assert_int_equal(f->c.err.command, SMTPC_CMD_HELO);
    assert_true(f->c.err.permanent);
    assert_string_equal(f->c.err.line, "554 go away"); /* Q8: the HELO reply */
    assert_int_equal(f->c.err.nmore, 0);
    fx_free(f);
}

static void test_greeting_554_permanent(void **st)
{
    (void)st;
    fixture *f = fx_new(SMTPC_TLS_NONE, true);
    core_begin_open(&f->c);
    feed(f, "554 5.7.1 no service\r\n");
    expect_event(f, CORE_EV_FAILED);
    assert_int_equal(f->c.err.kind, SMTPC_ERR_STATUS);
    assert_int_equal(f->c.err.command, SMTPC_CMD_GREETING);
    assert_true(f->c.err.permanent);
    assert_int_equal(f->c.err.code, 554);
    assert_string_equal(f->c.err.ecode, ""); /* never parsed on the greeting */
    fx_free(f);
}

static void test_starttls_then_ehlo_forgets(void **st)
{
    (void)st;
    fixture *f = fx_new(SMTPC_TLS_STARTTLS, true);
    core_begin_open(&f->c);
    feed(f, "220 mx.test\r\n");
    expect_out(f, "EHLO client.test\r\n");
    feed(f, "250-mx.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n");
    expect_out(f, "STARTTLS\r\n");
    feed(f, "220 go ahead\r\n");
    expect_event(f, CORE_EV_TLS);
    core_tls_up(&f->c, true, NULL, NULL, 0);
    expect_out(f, "EHLO client.test\r\n");
    feed(f, "250-mx.test\r\n250 8BITMIME\r\n");
    expect_event(f, CORE_EV_DONE);
    /* Q3: nothing learned before TLS survives */
    assert_false(f->c.ehlo.ext & SMTPC_EXT_PIPELINING);
    assert_true(f->c.ehlo.ext & SMTPC_EXT_8BITMIME);
    fx_free(f);
}

static void test_starttls_required_even_unadvertised(void **st)
{
    (void)st;
    fixture *f = fx_new(SMTPC_TLS_STARTTLS, true);
    core_begin_open(&f->c);
    feed(f, "220 mx.test\r\n");
    expect_out(f, "EHLO client.test\r\n");
    feed(f, "250-mx.test\r\n250 ENHANCEDSTATUSCODES\r\n");
    expect_out(f, "STARTTLS\r\n");
    feed(f, "454 4.7.0 TLS not available\r\n");
    expect_event(f, CORE_EV_FAILED);
    assert_int_equal(f->c.err.kind, SMTPC_ERR_TLS);
    assert_false(f->c.err.permanent);
    assert_string_equal(f->c.err.ecode, "4.7.0");
    assert_int_equal(f->rcpt.failure, 1);
    assert_string_equal(f->rcpt.details[0].failure_reason_code, "smtp-starttls-reply-code-454");
    fx_free(f);
}

static void test_ehlo_unsupported_after_tls_is_permanent(void **st)
{
    (void)st;
    fixture *f = fx_new(SMTPC_TLS_STARTTLS, true);
    core_begin_open(&f->c);
    feed(f, "220 mx.test\r\n");
    expect_out(f, "EHLO client.test\r\n");
    feed(f, "250 mx.test\r\n");
    expect_out(f, "STARTTLS\r\n");
    feed(f, "220 go\r\n");
    expect_event(f, CORE_EV_TLS);
    core_tls_up(&f->c, true, NULL, NULL, 0);
    expect_out(f, "EHLO client.test\r\n");
    feed(f, "502 no\r\n");
    expect_event(f, CORE_EV_FAILED);
    expect_no_out(f); /* no HELO over TLS */
    assert_int_equal(f->c.err.kind, SMTPC_ERR_PROTOCOL);
    assert_true(f->c.err.permanent);
    fx_free(f);
}

static void test_auth_plain(void **st)
{
    (void)st;
    fixture *f = fx_new(SMTPC_TLS_IMMEDIATE, true);
    smtpc_config_set_auth(f->cfg, "PLAIN", "u", "p");
    core_begin_open(&f->c);
    expect_event(f, CORE_EV_TLS);
    core_tls_up(&f->c, true, NULL, NULL, 0);
    feed(f, "220 mx.test\r\n");
    expect_out(f, "EHLO client.test\r\n");
    feed(f, "250-mx.test\r\n250 AUTH LOGIN PLAIN\r\n");
    expect_out(f, "AUTH PLAIN AHUAcA==\r\n");
    feed(f, "235 2.7.0 ok\r\n");
    expect_event(f, CORE_EV_DONE);
    assert_true(f->c.authenticated);
    fx_free(f);
}

static void test_auth_withheld_without_tls(void **st)
{
    (void)st;
    fixture *f = fx_new(SMTPC_TLS_NONE, true);
    smtpc_config_set_auth(f->cfg, "auto", "u", "p");
    core_begin_open(&f->c);
    feed(f, "220 mx.test\r\n");
    expect_out(f, "EHLO client.test\r\n");
    feed(f, "250-mx.test\r\n250 AUTH PLAIN\r\n");
    expect_event(f, CORE_EV_FAILED);
    expect_no_out(f); /* the credentials never leave */
    assert_int_equal(f->c.err.kind, SMTPC_ERR_AUTH);
    assert_int_equal(f->c.err.command, SMTPC_CMD_AUTH);
    fx_free(f);
}

static void test_auth_rejected(void **st)
{
    (void)st;
    fixture *f = fx_new(SMTPC_TLS_NONE, true);
    smtpc_config_set_auth(f->cfg, "LOGIN", "u", "p");
    smtpc_config_set_insecure_auth(f->cfg, true);
    core_begin_open(&f->c);
    feed(f, "220 mx.test\r\n");
    expect_out(f, "EHLO client.test\r\n");
    feed(f, "250-mx.test\r\n250-ENHANCEDSTATUSCODES\r\n250 AUTH LOGIN\r\n");
    expect_out(f, "AUTH LOGIN dQ==\r\n");
    feed(f, "334 UGFzc3dvcmQ6\r\n");
    expect_out(f, "cA==\r\n");
    feed(f, "535 5.7.8 bad credentials\r\n");
    expect_event(f, CORE_EV_FAILED);
    assert_int_equal(f->c.err.kind, SMTPC_ERR_AUTH);
    assert_true(f->c.err.permanent);
    assert_string_equal(f->c.err.ecode, "5.7.8");
    fx_free(f);
}

static void test_auth_bad_base64_aborts(void **st)
{
    (void)st;
    fixture *f = fx_new(SMTPC_TLS_NONE, true);
    smtpc_config_set_auth(f->cfg, "CRAM-MD5", "u", "p");
    smtpc_config_set_insecure_auth(f->cfg, true);
    core_begin_open(&f->c);
    feed(f, "220 mx.test\r\n");
    expect_out(f, "EHLO client.test\r\n");
    feed(f, "250-mx.test\r\n250 AUTH CRAM-MD5\r\n");
    expect_out(f, "AUTH CRAM-MD5\r\n");
    feed(f, "334 !!notbase64\r\n");
    expect_out(f, "*\r\n");
    feed(f, "501 5.0.0 cancelled\r\n");
    expect_event(f, CORE_EV_FAILED);
    assert_int_equal(f->c.err.kind, SMTPC_ERR_PROTOCOL);
    assert_true(f->c.botched); /* a failed setup is never used for mail */
    fx_free(f);
}

static void test_xoauth2_error_round_trip(void **st)
{
    (void)st;
    fixture *f = fx_new(SMTPC_TLS_IMMEDIATE, true);
    smtpc_config_set_auth(f->cfg, "XOAUTH2", "u", NULL);
    smtpc_config_set_oauth_token(f->cfg, "tok");
    core_begin_open(&f->c);
    expect_event(f, CORE_EV_TLS);
    core_tls_up(&f->c, true, NULL, NULL, 0);
    feed(f, "220 mx.test\r\n");
    expect_out(f, "EHLO client.test\r\n");
    feed(f, "250-mx.test\r\n250 AUTH XOAUTH2\r\n");
    /* base64("user=u\x01auth=Bearer tok\x01\x01") */
    expect_out(f, "AUTH XOAUTH2 dXNlcj11AWF1dGg9QmVhcmVyIHRvawEB\r\n");
    feed(f, "334 eyJzdGF0dXMiOiI0MDEifQ==\r\n");
    expect_out(f, "\r\n"); /* acknowledge the JSON error with an empty line */
    feed(f, "535 5.7.8 token rejected\r\n");
    expect_event(f, CORE_EV_FAILED);
    assert_int_equal(f->c.err.kind, SMTPC_ERR_AUTH);
    assert_int_equal(f->c.err.code, 535);
    fx_free(f);
}

/* ---- transactions ---- */

static const char ehlo_pipe[] = "250-mx.test\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n"
                                "250-8BITMIME\r\n250 SIZE 100\r\n";
static const char ehlo_plain[] = "250-mx.test\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n";

static void add_rcpts(fixture *f, int n)
{
    static const char *const names[] = {"r0@y.test", "r1@y.test", "r2@y.test", "r3@y.test"};
    for (int i = 0; i < n; i++)
        smtpc_message_add_rcpt(f->m, names[i]);
}

static void test_pipelined_success_and_dot_stuffing(void **st)
{
    (void)st;
    fixture *f = fx_new(SMTPC_TLS_NONE, true);
    open_plain(f, ehlo_pipe);
    add_rcpts(f, 2);
    smtpc_message_set_body(f->m, ".a\r\nb\r\n", 7);
    assert_int_equal(core_begin_send(&f->c, f->m), 0);
    expect_out(f, "MAIL FROM:<a@x.test> SIZE=7 BODY=7BIT\r\nRCPT TO:<r0@y.test>\r\n"
                  "RCPT TO:<r1@y.test>\r\nDATA\r\n");
    feed(f, "250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 unknown\r\n354 go\r\n");
    expect_out(f, "..a\r\nb\r\n.\r\n");
    feed(f, "250 2.0.0 queued\r\n");
    expect_event(f, CORE_EV_DONE);
    assert_true(smtpc_message_rcpt_accepted(f->m, 0));
    assert_false(smtpc_message_rcpt_accepted(f->m, 1));
    const smtpc_error *r1 = smtpc_message_rcpt_result(f->m, 1);
    assert_int_equal(r1->code, 550);
    assert_string_equal(r1->ecode, "5.1.1");
    assert_true(r1->permanent);
    assert_false(f->c.need_rset);
    fx_free(f);
}

static void test_pipelined_mail_rejected_then_close(void **st)
{
    (void)st;
    fixture *f = fx_new(SMTPC_TLS_NONE, true);
    open_plain(f, ehlo_pipe);
    add_rcpts(f, 2);
    smtpc_message_set_body(f->m, "x\r\n", 3);
    core_begin_send(&f->c, f->m);
    expect_out(f, "MAIL FROM:<a@x.test> SIZE=3 BODY=7BIT\r\nRCPT TO:<r0@y.test>\r\n"
                  "RCPT TO:<r1@y.test>\r\nDATA\r\n");
    feed(f, "550 5.7.1 sender rejected\r\n");
    core_eof(&f->c);
    expect_event(f, CORE_EV_FAILED);
    /* spec 9.13.1: judged by the MAIL reply, not as an I/O error */
    const smtpc_error *e = smtpc_message_error(f->m);
    assert_int_equal(e->kind, SMTPC_ERR_STATUS);
    assert_int_equal(e->command, SMTPC_CMD_MAILFROM);
    assert_true(e->permanent);
    assert_string_equal(e->ecode, "5.7.1");
    assert_true(f->c.botched);
    fx_free(f);
}

static void test_pipelined_single_rcpt_rejected(void **st)
{
    (void)st;
    fixture *f = fx_new(SMTPC_TLS_NONE, true);
    open_plain(f, ehlo_pipe);
    add_rcpts(f, 1);
    smtpc_message_set_body(f->m, "x\r\n", 3);
    core_begin_send(&f->c, f->m);
    expect_out(f, "MAIL FROM:<a@x.test> SIZE=3 BODY=7BIT\r\nRCPT TO:<r0@y.test>\r\nDATA\r\n");
    feed(f, "250 ok\r\n552 5.2.2 mailbox full\r\n554 5.5.1 no valid recipients\r\n");
    expect_event(f, CORE_EV_FAILED);
    const smtpc_error *e = smtpc_message_error(f->m);
    assert_int_equal(e->code, 552);
    assert_int_equal(e->command, SMTPC_CMD_RCPTTO);
    assert_false(e->permanent); /* Q4: 552 is not permanent when pipelined */
    assert_true(f->c.need_rset);
    assert_false(f->c.botched);
    fx_free(f);
}

static void test_pipelined_no_rcpt_but_354_sends_dot(void **st)
{
    (void)st;
    fixture *f = fx_new(SMTPC_TLS_NONE, true);
    open_plain(f, ehlo_pipe);
    add_rcpts(f, 2);
    smtpc_message_set_body(f->m, "x\r\n", 3);
    core_begin_send(&f->c, f->m);
    expect_out(f, "MAIL FROM:<a@x.test> SIZE=3 BODY=7BIT\r\nRCPT TO:<r0@y.test>\r\n"
                  "RCPT TO:<r1@y.test>\r\nDATA\r\n");
    feed(f, "250 ok\r\n550 no\r\n550 no\r\n354 go\r\n");
    expect_out(f, ".\r\n");
    feed(f, "554 5.5.1 no recipients\r\n");
    expect_event(f, CORE_EV_FAILED);
    const smtpc_error *e = smtpc_message_error(f->m);
    assert_int_equal(e->kind, SMTPC_ERR_NO_RECIPIENTS);
    assert_false(e->permanent);
    assert_int_equal(e->code, 0);
    fx_free(f);
}

static void test_pipelined_close_before_data_reply(void **st)
{
    (void)st;
    fixture *f = fx_new(SMTPC_TLS_NONE, true);
    open_plain(f, ehlo_pipe);
    add_rcpts(f, 2);
    smtpc_message_set_body(f->m, "x\r\n", 3);
    core_begin_send(&f->c, f->m);
    expect_out(f, "MAIL FROM:<a@x.test> SIZE=3 BODY=7BIT\r\nRCPT TO:<r0@y.test>\r\n"
                  "RCPT TO:<r1@y.test>\r\nDATA\r\n");
    feed(f, "250 ok\r\n450 4.2.0 later\r\n550 5.1.1 unknown\r\n");
    core_eof(&f->c);
    expect_event(f, CORE_EV_FAILED);
    const smtpc_error *e = smtpc_message_error(f->m);
    assert_int_equal(e->kind, SMTPC_ERR_STATUS); /* spec 9.13.3 */
    assert_int_equal(e->code, 550);
    assert_true(e->permanent);
    assert_true(f->c.botched);
    fx_free(f);
}

static void test_nonpipelined_452_defers_rest(void **st)
{
    (void)st;
    fixture *f = fx_new(SMTPC_TLS_NONE, true);
    open_plain(f, ehlo_plain);
    add_rcpts(f, 3);
    smtpc_message_set_body(f->m, "", 0);
    core_begin_send(&f->c, f->m);
    expect_out(f, "MAIL FROM:<a@x.test> BODY=7BIT\r\n");
    feed(f, "250 ok\r\n");
    expect_out(f, "RCPT TO:<r0@y.test>\r\n");
    feed(f, "250 ok\r\n");
    expect_out(f, "RCPT TO:<r1@y.test>\r\n");
    feed(f, "452 4.5.3 too many recipients\r\n");
    expect_out(f, "DATA\r\n"); /* r2 is never sent (spec 9.7) */
    feed(f, "354 go\r\n");
    expect_out(f, ".\r\n"); /* an empty message is valid */
    feed(f, "250 ok\r\n");
    expect_event(f, CORE_EV_DONE);
    for (int i = 1; i < 3; i++) {
        const smtpc_error *r = smtpc_message_rcpt_result(f->m, (size_t)i);
        assert_int_equal(r->code, 452);
        assert_false(r->permanent);
    }
    fx_free(f);
}

static void test_nonpipelined_first_552_permanent(void **st)
{
    (void)st;
    fixture *f = fx_new(SMTPC_TLS_NONE, false);
    open_plain(f, ehlo_pipe); /* pipelining offered but disabled by config */
    add_rcpts(f, 1);
    smtpc_message_set_body(f->m, "x\r\n", 3);
    core_begin_send(&f->c, f->m);
    expect_out(f, "MAIL FROM:<a@x.test> SIZE=3 BODY=7BIT\r\n");
    feed(f, "250 ok\r\n");
    expect_out(f, "RCPT TO:<r0@y.test>\r\n");
    feed(f, "552 5.2.2 full\r\n");
    expect_event(f, CORE_EV_FAILED);
    expect_no_out(f);
    const smtpc_error *e = smtpc_message_error(f->m);
    assert_true(e->permanent);
    assert_int_equal(e->command, SMTPC_CMD_RCPTTO);
    fx_free(f);
}

static void test_bare_cr_botches(void **st)
{
    (void)st;
    fixture *f = fx_new(SMTPC_TLS_NONE, true);
    open_plain(f, ehlo_plain);
    add_rcpts(f, 1);
    smtpc_message_set_body(f->m, "a\rb\r\n", 5);
    core_begin_send(&f->c, f->m);
    expect_out(f, "MAIL FROM:<a@x.test> BODY=7BIT\r\n");
    feed(f, "250 ok\r\n");
    expect_out(f, "RCPT TO:<r0@y.test>\r\n");
    feed(f, "250 ok\r\n");
    expect_out(f, "DATA\r\n");
    feed(f, "354 go\r\n");
    const char *p;
    size_t n = core_out(&f->c, &p);
    assert_null(memmem(p, n, "\r\n.\r\n", 5)); /* never ends DATA */
    expect_event(f, CORE_EV_FAILED);
    const smtpc_error *e = smtpc_message_error(f->m);
    assert_int_equal(e->kind, SMTPC_ERR_MESSAGE);
    assert_int_equal(e->command, SMTPC_CMD_DATA);
    assert_true(e->permanent);
    assert_true(f->c.botched);
    fx_free(f);
}

static void test_rset_before_second_transaction(void **st)
{
    (void)st;
    fixture *f = fx_new(SMTPC_TLS_NONE, true);
    open_plain(f, ehlo_plain);
    add_rcpts(f, 1);
    smtpc_message_set_body(f->m, "x\r\n", 3);
    core_begin_send(&f->c, f->m);
    expect_out(f, "MAIL FROM:<a@x.test> BODY=7BIT\r\n");
    feed(f, "451 4.3.0 try later\r\n");
    expect_event(f, CORE_EV_FAILED);
    assert_true(f->c.need_rset);
    core_begin_send(&f->c, f->m);
    expect_out(f, "RSET\r\n");
    feed(f, "250 ok\r\n");
    expect_out(f, "MAIL FROM:<a@x.test> BODY=7BIT\r\n");
    fx_free(f);
}

static void test_prechecks(void **st)
{
    (void)st;
    fixture *f = fx_new(SMTPC_TLS_NONE, true);
    open_plain(f, "250-mx.test\r\n250 SIZE 10\r\n");
    add_rcpts(f, 1);
    smtpc_message_set_body(f->m, "0123456789ab\r\n", 14);
    assert_int_equal(core_begin_send(&f->c, f->m), -1);
    expect_event(f, CORE_EV_FAILED);
    assert_int_equal(smtpc_message_error(f->m)->kind, SMTPC_ERR_SIZE);
    assert_true(smtpc_message_error(f->m)->permanent);
    smtpc_message_set_body(f->m, "x\r\n", 3);
    smtpc_message_set_flags(f->m, SMTPC_MSG_SMTPUTF8);
    assert_int_equal(core_begin_send(&f->c, f->m), -1);
    expect_event(f, CORE_EV_FAILED);
    assert_int_equal(smtpc_message_error(f->m)->kind, SMTPC_ERR_SMTPUTF8);
    assert_false(smtpc_message_error(f->m)->permanent);
    smtpc_message_set_flags(f->m, SMTPC_MSG_REQUIRE_8BITMIME);
    assert_int_equal(core_begin_send(&f->c, f->m), -1);
    expect_event(f, CORE_EV_FAILED);
    assert_int_equal(smtpc_message_error(f->m)->kind, SMTPC_ERR_8BITMIME);
    assert_true(smtpc_message_error(f->m)->permanent);
    assert_false(f->c.need_rset); /* spec 9.1: no RSET owed */
    expect_no_out(f);
    fx_free(f);
}

static void test_mail_params_order(void **st)
{
    (void)st;
    fixture *f = fx_new(SMTPC_TLS_NONE, false);
    open_plain(f, "250-mx.test\r\n250-SIZE\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
                  "250 REQUIRETLS\r\n");
    add_rcpts(f, 1);
    smtpc_message_set_body(f->m, "\xc3\xa9\r\n", 4);
    smtpc_message_set_flags(f->m, SMTPC_MSG_8BIT | SMTPC_MSG_SMTPUTF8 | SMTPC_MSG_REQUIRETLS);
    core_begin_send(&f->c, f->m);
    expect_out(f, "MAIL FROM:<a@x.test> SIZE=4 BODY=8BITMIME SMTPUTF8 REQUIRETLS\r\n");
    fx_free(f);
}

static void test_malformed_reply_botches(void **st)
{
    (void)st;
    fixture *f = fx_new(SMTPC_TLS_NONE, true);
    core_begin_open(&f->c);
    feed(f, "22 short\r\n");
    expect_event(f, CORE_EV_FAILED);
    assert_int_equal(f->c.err.kind, SMTPC_ERR_PROTOCOL);
    assert_true(f->c.botched);
    assert_int_equal(core_begin_send(&f->c, f->m), -1);
    fx_free(f);
}

static void test_reply_before_command_is_protocol_error(void **st)
{
    (void)st;
    fixture *f = fx_new(SMTPC_TLS_NONE, true);
    core_begin_open(&f->c);
    /* an injected "250" rides along with the greeting, before EHLO is sent */
    size_t n = core_feed(&f->c, "220 mx.test\r\n250 injected\r\n", 29);
    assert_true(n < 29);
    expect_event(f, CORE_EV_FAILED);
    assert_int_equal(f->c.err.kind, SMTPC_ERR_PROTOCOL);
    assert_true(f->c.botched);
    fx_free(f);
}

static void test_send_refused_after_failed_open(void **st)
{
    (void)st;
    fixture *f = fx_new(SMTPC_TLS_STARTTLS, true);
    core_begin_open(&f->c);
    feed(f, "220 mx.test\r\n");
    expect_out(f, "EHLO client.test\r\n");
    feed(f, "250 mx.test\r\n");
    expect_out(f, "STARTTLS\r\n");
    feed(f, "454 4.7.0 no TLS today\r\n");
    expect_event(f, CORE_EV_FAILED);
    add_rcpts(f, 1);
    smtpc_message_set_body(f->m, "x\r\n", 3);
    /* never falls through to plaintext mail */
    assert_int_equal(core_begin_send(&f->c, f->m), -1);
    expect_event(f, CORE_EV_FAILED);
    expect_no_out(f);
    assert_int_equal(smtpc_message_error(f->m)->kind, SMTPC_ERR_BOTCHED);
    assert_int_equal(f->c.err.kind, SMTPC_ERR_TLS); /* the cause is kept */
    fx_free(f);
}

static void test_reply_during_body_is_the_transaction_error(void **st)
{
    (void)st;
    fixture *f = fx_new(SMTPC_TLS_NONE, true);
    open_plain(f, ehlo_plain);
    add_rcpts(f, 1);
    smtpc_message_set_body(f->m, "x\r\n", 3);
    core_begin_send(&f->c, f->m);
    expect_out(f, "MAIL FROM:<a@x.test> BODY=7BIT\r\n");
    feed(f, "250 ok\r\n");
    expect_out(f, "RCPT TO:<r0@y.test>\r\n");
    feed(f, "250 ok\r\n");
    expect_out(f, "DATA\r\n");
    feed(f, "354 go\r\n");
    expect_out(f, "x"); /* part of the body is out */
    feed(f, "550 5.7.1 content rejected\r\n");
    expect_event(f, CORE_EV_FAILED);
    const smtpc_error *e = smtpc_message_error(f->m);
    assert_int_equal(e->kind, SMTPC_ERR_STATUS);
    assert_int_equal(e->command, SMTPC_CMD_DATA);
    assert_int_equal(e->code, 550);
    assert_true(e->permanent);
    assert_true(f->c.botched);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_opportunistic_without_starttls),
        cmocka_unit_test(test_helo_fallback),
        cmocka_unit_test(test_helo_rejected_reports_helo_lines),
        cmocka_unit_test(test_greeting_554_permanent),
        cmocka_unit_test(test_starttls_then_ehlo_forgets),
        cmocka_unit_test(test_starttls_required_even_unadvertised),
        cmocka_unit_test(test_ehlo_unsupported_after_tls_is_permanent),
        cmocka_unit_test(test_auth_plain),
        cmocka_unit_test(test_auth_withheld_without_tls),
        cmocka_unit_test(test_auth_rejected),
        cmocka_unit_test(test_auth_bad_base64_aborts),
        cmocka_unit_test(test_xoauth2_error_round_trip),
        cmocka_unit_test(test_pipelined_success_and_dot_stuffing),
        cmocka_unit_test(test_pipelined_mail_rejected_then_close),
        cmocka_unit_test(test_pipelined_single_rcpt_rejected),
        cmocka_unit_test(test_pipelined_no_rcpt_but_354_sends_dot),
        cmocka_unit_test(test_pipelined_close_before_data_reply),
        cmocka_unit_test(test_nonpipelined_452_defers_rest),
        cmocka_unit_test(test_nonpipelined_first_552_permanent),
        cmocka_unit_test(test_bare_cr_botches),
        cmocka_unit_test(test_rset_before_second_transaction),
        cmocka_unit_test(test_prechecks),
        cmocka_unit_test(test_mail_params_order),
        cmocka_unit_test(test_malformed_reply_botches),
        cmocka_unit_test(test_reply_before_command_is_protocol_error),
        cmocka_unit_test(test_send_refused_after_failed_open),
        cmocka_unit_test(test_reply_during_body_is_the_transaction_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
