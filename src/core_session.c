/* Session setup: greeting, EHLO/HELO, STARTTLS and AUTH (RFC 5321 3.1,
 * 4.1.1.1; RFC 3207; RFC 4954). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core.h"

static const char *ehlo_name(const core *c)
{
    return c->cfg->ehlo_name ? c->cfg->ehlo_name : "localhost";
}

int core_begin_open(core *c)
{
    c->op_err = &c->err;
    if (c->botched || c->closed || c->opened) {
        if (c->err.kind == SMTPC_ERR_NONE)
            err_set(&c->err, SMTPC_ERR_USAGE, true, SMTPC_CMD_NONE, 0,
                    c->opened ? "session is already open" : "session is closed");
        c->event = CORE_EV_FAILED;
        return -1;
    }
    c->opening = true;
    if (c->cfg->tls_mode == SMTPC_TLS_IMMEDIATE && !c->tls) {
        c->tls_immediate_pending = true;
        core_set_state(c, CS_TLS_WAIT);
        c->event = CORE_EV_TLS;
        return 0;
    }
    core_set_state(c, CS_GREETING);
    if (core_expect(c, SMTPC_CMD_GREETING) != 0)
        return -1;
    return 0;
}

/* The first word after the code: "220 mx.example ESMTP" -> "mx.example" (Q6),
 * skipping an enhanced code ("554 5.7.1 go away"). */
static int store_greeting(core *c, const reply *r)
{
    const char *text = reply_text(r, 0);
    char ecode[16];
    text += ecode_parse(r->code, text, ecode, sizeof ecode);
    size_t n = strcspn(text, " \t");
    free(c->greeting);
    free(c->server_name);
    c->greeting = strdup(r->lines[0]);
    c->server_name = strndup(text, n);
    c->peer.mx_helo = c->server_name;
    return c->greeting && c->server_name ? 0 : -1;
}

static void send_ehlo(core *c)
{
    core_set_state(c, CS_EHLO);
    core_cmd(c, SMTPC_CMD_EHLO, 0, "EHLO %s", ehlo_name(c));
}

static void on_greeting(core *c, const reply *r)
{
    if (store_greeting(c, r) != 0) {
        core_nomem(c);
        return;
    }
    if (r->code != 220) {
        char what[64];
        snprintf(what, sizeof what, "greeting: got %d, expected 220", r->code);
        err_set_reply(c->op_err, SMTPC_ERR_STATUS, SMTPC_CMD_GREETING, r, false, what);
        core_fail(c, r->code == 421);
        return;
    }
    send_ehlo(c);
}

static bool starttls_wanted(const core *c)
{
    if (c->tls)
        return false;
    if (c->cfg->tls_mode == SMTPC_TLS_STARTTLS)
        return true; /* required: sent even when not advertised (spec 4.10) */
    return c->cfg->tls_mode == SMTPC_TLS_OPPORTUNISTIC && (c->ehlo.ext & SMTPC_EXT_STARTTLS);
}

static void maybe_auth(core *c);

static void after_hello(core *c)
{
    if (!c->tls && (c->ehlo.ext & SMTPC_EXT_STARTTLS))
        c->starttls_offered = true;
    if (starttls_wanted(c)) {
        core_set_state(c, CS_STARTTLS);
        core_cmd(c, SMTPC_CMD_STARTTLS, 0, "STARTTLS");
        return;
    }
    if (!c->tls && c->cfg->tls_mode == SMTPC_TLS_OPPORTUNISTIC) {
        /* RFC 8460 4.3.2.1; counts unchanged (spec 4.15). A lost detail
         * would leave the result incomplete: out of memory fails the open. */
        if (tlsrpt_add(c->rpt_rcpt, 0, 0, &c->peer, "starttls-not-supported", "") != 0 ||
            tlsrpt_add(c->rpt_host, 0, 0, &c->peer, "starttls-not-supported", "") != 0) {
            core_nomem(c);
            return;
        }
    }
    maybe_auth(c);
}

static void on_ehlo(core *c, const reply *r)
{
    if (r->code == 250) {
        if (ehlo_parse(r, &c->ehlo) != 0) {
            core_nomem(c);
            return;
        }
        after_hello(c);
        return;
    }
    if (r->code >= 500 && r->code <= 504) {
        if (!c->tls) {
            core_set_state(c, CS_HELO); /* RFC 5321 4.1.4: fall back to HELO */
            core_cmd(c, SMTPC_CMD_HELO, 0, "HELO %s", ehlo_name(c));
            return;
        }
        /* No HELO over TLS: we would lose every extension silently. */
        err_set_reply(c->op_err, SMTPC_ERR_PROTOCOL, SMTPC_CMD_EHLO, r, false,
                      "server claims EHLO is not supported after STARTTLS");
        c->op_err->permanent = true;
        core_fail(c, false);
        return;
    }
    char what[64];
    snprintf(what, sizeof what, "EHLO: got %d, expected 250", r->code);
    err_set_reply(c->op_err, SMTPC_ERR_STATUS, SMTPC_CMD_EHLO, r, false, what);
    core_fail(c, r->code == 421);
}

static void on_helo(core *c, const reply *r)
{
    if (r->code == 250) {
        ehlo_info_free(&c->ehlo);
        after_hello(c);
        return;
    }
    char what[64];
    snprintf(what, sizeof what, "HELO: got %d, expected 250", r->code);
    err_set_reply(c->op_err, SMTPC_ERR_STATUS, SMTPC_CMD_HELO, r, false, what);
    core_fail(c, r->code == 421);
}

static void on_starttls(core *c, const reply *r)
{
    if (r->code == 220) {
        core_set_state(c, CS_TLS_WAIT);
        c->event = CORE_EV_TLS;
        return;
    }
    char reason[64];
    snprintf(reason, sizeof reason, "smtp-starttls-reply-code-%d", r->code);
    tlsrpt_add(c->rpt_rcpt, 0, 1, &c->peer, "starttls-not-supported", reason);
    tlsrpt_add(c->rpt_host, 0, 1, &c->peer, "starttls-not-supported", reason);
    char what[64];
    snprintf(what, sizeof what, "STARTTLS: got %d, expected 220", r->code);
    err_set_reply(c->op_err, SMTPC_ERR_TLS, SMTPC_CMD_STARTTLS, r, core_ecodes(c), what);
    core_fail(c, r->code == 421);
}

void core_after_tls_open(core *c)
{
    if (c->tls_immediate_pending) {
        c->tls_immediate_pending = false;
        core_set_state(c, CS_GREETING);
        core_expect(c, SMTPC_CMD_GREETING);
        return;
    }
    /* RFC 3207 4.2: forget everything learned before TLS (Q3). */
    ehlo_info_free(&c->ehlo);
    c->ehlo_after_tls = true;
    send_ehlo(c);
}

void core_tls_up(core *c, bool verified, const char *cb_type, const unsigned char *cb,
                 size_t cblen)
{
    c->tls = true;
    c->tls_verified = verified;
    c->event = CORE_EV_NONE;
    if (cb_type && cblen <= sizeof c->cbdata) {
        memcpy(c->cbdata, cb, cblen);
        c->cb = (sasl_cb){cb_type, c->cbdata, cblen};
    }
    core_after_tls_open(c);
}

void core_tls_failed(core *c, smtpc_error_kind kind, const char *what)
{
    smtpc_command cmd = c->tls_immediate_pending ? SMTPC_CMD_TLS : SMTPC_CMD_STARTTLS;
    c->event = CORE_EV_NONE;
    err_set(c->op_err, kind, false, cmd, 0, "%s TLS handshake: %s",
            cmd == SMTPC_CMD_TLS ? "implicit" : "STARTTLS", what);
    core_fail(c, true);
}

/* ---- AUTH ---- */

static void auth_fail(core *c, bool permanent, const char *fmt, const char *arg)
{
    err_set(c->op_err, SMTPC_ERR_AUTH, permanent, SMTPC_CMD_AUTH, 0, fmt, arg);
    core_fail(c, false);
}

static void join_mechs(const core *c, char *buf, size_t len)
{
    buf[0] = '\0';
    for (size_t i = 0; i < c->ehlo.nauth; i++) {
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s%s", i ? " " : "", c->ehlo.auth[i]);
    }
}

static bool server_offers(const core *c, const char *mech)
{
    for (size_t i = 0; i < c->ehlo.nauth; i++)
        if (strcasecmp(c->ehlo.auth[i], mech) == 0)
            return true;
    return false;
}

static sasl_creds creds_of(const core *c)
{
    return (sasl_creds){c->cfg->auth_user ? c->cfg->auth_user : "", c->cfg->auth_password,
                        c->cfg->oauth_token};
}

/* Encodes msg and sends it as the AUTH command's initial response or as a
 * continuation line (RFC 4954 4: "=" is an empty initial response, an empty
 * line an empty continuation). The trace shows payloads only when asked. */
static int send_sasl_msg(core *c, const unsigned char *msg, size_t len, bool initial)
{
    char *b64 = msg && len ? b64_encode(msg, len) : strdup("");
    if (!b64)
        return -1;
    size_t n = strlen(c->mech) + strlen(b64) + 16;
    char *line = malloc(n);
    if (!line) {
        free(b64);
        return -1;
    }
    char trace[96] = "<redacted>";
    if (initial && !msg)
        snprintf(line, n, "AUTH %s", c->mech);
    else if (initial)
        snprintf(line, n, "AUTH %s %s", c->mech, len ? b64 : "=");
    else
        snprintf(line, n, "%s", b64);
    if (initial)
        snprintf(trace, sizeof trace, "AUTH %s%s", c->mech, msg ? " <redacted>" : "");
    core_send_raw(c, SMTPC_CMD_AUTH, 0, line, c->cfg->trace_secrets ? NULL : trace);
    OPENSSL_cleanse(line, strlen(line));
    OPENSSL_cleanse(b64, strlen(b64));
    free(line);
    free(b64);
    return 0;
}

static bool auth_allowed(const core *c)
{
    return (c->tls && c->tls_verified) || c->cfg->insecure_auth;
}

static int start_sasl(core *c)
{
    char err[256] = "";
    sasl_creds creds = creds_of(c);
    char plus[64];
    snprintf(plus, sizeof plus, "%s-PLUS", c->mech);
    c->sasl = sasl_client_new(c->mech, &creds, &c->cb, server_offers(c, plus), err, sizeof err);
    if (!c->sasl) {
        /* Out of memory is transient, not a permanent AUTH failure. */
        if (errno == ENOMEM)
            core_nomem(c);
        else
            auth_fail(c, true, "cannot start SASL client: %s", err);
        return -1;
    }
    unsigned char *msg = NULL;
    size_t len = 0;
    if (sasl_client_step(c->sasl, NULL, 0, &msg, &len, &c->sasl_final, err, sizeof err) != 0) {
        if (errno == ENOMEM)
            core_nomem(c);
        else
            auth_fail(c, true, "initial step of SASL mechanism failed: %s", err);
        return -1;
    }
    int rc = send_sasl_msg(c, msg, len, true);
    sasl_free_buf(msg, len);
    if (rc != 0)
        core_nomem(c);
    return rc;
}

static void maybe_auth(core *c)
{
    if (!c->cfg->auth_mech) {
        core_done(c);
        return;
    }
    if (!auth_allowed(c)) {
        auth_fail(c, true, "%s", "credentials withheld: the connection is not protected by "
                                 "verified TLS (allow with insecure auth)");
        return;
    }
    char mechs[512];
    join_mechs(c, mechs, sizeof mechs);
    if (!(c->ehlo.ext & SMTPC_EXT_AUTH) || c->ehlo.nauth == 0) {
        auth_fail(c, true, "%s", "server does not offer authentication (no AUTH in EHLO)");
        return;
    }
    sasl_creds creds = creds_of(c);
    c->mech = sasl_choose(c->cfg->auth_mech, c->ehlo.auth, c->ehlo.nauth, &creds,
                          c->cb.type ? &c->cb : NULL);
    if (!c->mech) {
        auth_fail(c, true, "no shared authentication mechanism, server supports: %s", mechs);
        return;
    }
    log_msg(c->log, SMTPC_LOG_INFO, "authenticating with %s", c->mech);
    core_set_state(c, CS_AUTH);
    start_sasl(c);
}

/* Cancels the exchange with "*" (RFC 4954 4); the error is reported once
 * the server answered. */
static void auth_abort(core *c, smtpc_error_kind kind, const char *fmt, const char *arg)
{
    err_set(&c->abort_err, kind, false, SMTPC_CMD_AUTH, 0, fmt, arg);
    core_set_state(c, CS_AUTH_ABORT);
    core_send_raw(c, SMTPC_CMD_AUTH, 1, "*", NULL);
}

static void on_auth_abort(core *c, const reply *r)
{
    err_copy(c->op_err, &c->abort_err);
    c->op_err->code = r->code;
    core_fail(c, r->code != 501); /* anything but 501 leaves the state unknown */
}

/* RFC 7628 3.2.3 (and Google's XOAUTH2): a rejected token is answered with a
 * 334 carrying a JSON error, which the client must acknowledge before the
 * server sends its final failure reply. */
static bool oauth_error_round(const core *c)
{
    return strcmp(c->mech, "XOAUTH2") == 0 || strcmp(c->mech, "OAUTHBEARER") == 0;
}

static void on_auth_continue(core *c, const reply *r)
{
    if (c->sasl_final && !oauth_error_round(c)) {
        auth_fail(c, false, "%s", "server requested unexpected continuation of authentication");
        return;
    }
    if (r->nlines != 1) {
        auth_abort(c, SMTPC_ERR_PROTOCOL, "%s", "server sent a multi-line 334 continuation");
        return;
    }
    const char *text = reply_text(r, 0);
    unsigned char *in = NULL, *out = NULL;
    size_t inlen = 0, outlen = 0;
    if (b64_decode(text, strlen(text), &in, &inlen) != 0) {
        if (errno == ENOMEM)
            core_nomem(c); /* the connection is dropped: "*" needs memory too */
        else
            auth_abort(c, SMTPC_ERR_PROTOCOL, "%s", "malformed base64 in authentication challenge");
        return;
    }
    char err[256] = "";
    int rc = sasl_client_step(c->sasl, in, inlen, &out, &outlen, &c->sasl_final, err, sizeof err);
    bool nomem = rc != 0 && errno == ENOMEM;
    sasl_free_buf(in, inlen);
    if (nomem) {
        core_nomem(c);
        return;
    }
    if (rc != 0) {
        auth_abort(c, SMTPC_ERR_AUTH, "client aborted authentication: %s", err);
        return;
    }
    if (send_sasl_msg(c, out ? out : (const unsigned char *)"", outlen, false) != 0)
        core_nomem(c);
    sasl_free_buf(out, outlen);
}

static void on_auth(core *c, const inflight *f, const reply *r)
{
    if (f->idx == 1) {
        on_auth_abort(c, r);
        return;
    }
    if (r->code == 235) {
        if (!c->sasl_final) {
            auth_fail(c, false, "%s", "server completed authentication earlier than expected");
            return;
        }
        c->authenticated = true;
        sasl_client_free(c->sasl);
        c->sasl = NULL;
        log_msg(c->log, SMTPC_LOG_INFO, "authenticated with %s", c->mech);
        core_done(c);
        return;
    }
    if (r->code == 334) {
        on_auth_continue(c, r);
        return;
    }
    char what[96];
    snprintf(what, sizeof what, "authentication failed: got %d, expected 235", r->code);
    /* Spec 3.7 parses the enhanced code only once the client sent its last
     * message; a final failure reply is no continuation, so we also take it
     * whenever ENHANCEDSTATUSCODES was offered (a SCRAM 535 after the proof). */
    err_set_reply(c->op_err, SMTPC_ERR_AUTH, SMTPC_CMD_AUTH, r, c->sasl_final || core_ecodes(c),
                  what);
    core_fail(c, r->code == 421);
}

void core_dispatch_open(core *c, const inflight *f, const reply *r)
{
    switch (f->cmd) {
    case SMTPC_CMD_GREETING:
        on_greeting(c, r);
        break;
    case SMTPC_CMD_EHLO:
        on_ehlo(c, r);
        break;
    case SMTPC_CMD_HELO:
        on_helo(c, r);
        break;
    case SMTPC_CMD_STARTTLS:
        on_starttls(c, r);
        break;
    default:
        on_auth(c, f, r);
        break;
    }
}
