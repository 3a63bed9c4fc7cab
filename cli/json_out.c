/* JSON output of `smtpc send` (jansson). */
#include "json_out.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at p (RFC 3629 3), 0 when invalid. */
static size_t utf8_seq(const unsigned char *p)
{
    unsigned cp, min;
    size_t n;
    if (p[0] < 0x80)
        return 1;
    if ((p[0] & 0xe0) == 0xc0)
        n = 2, cp = p[0] & 0x1fu, min = 0x80;
    else if ((p[0] & 0xf0) == 0xe0)
        n = 3, cp = p[0] & 0x0fu, min = 0x800;
    else if ((p[0] & 0xf8) == 0xf0)
        n = 4, cp = p[0] & 0x07u, min = 0x10000;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) /* also stops at the NUL */
            return 0;
        cp = cp << 6 | (p[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* Server text may be any bytes; JSON strings must be UTF-8. */
static json_t *sanitized(const char *s)
{
    size_t len = strlen(s);
    char *out = malloc(len * 3 + 1);
    size_t o = 0;
    if (out == NULL)
        return json_string("");
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t n = utf8_seq(p);
        if (n == 0) {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            p++;
            continue;
        }
        memcpy(out + o, p, n);
        o += n;
        p += n;
    }
    out[o] = '\0';
    json_t *j = json_string(out);
    free(out);
    return j;
}

json_t *jo_str(const char *s)
{
    if (s == NULL)
        s = "";
    json_t *j = json_string(s);
    return j != NULL ? j : sanitized(s);
}

static json_t *err_obj(const char *kind, bool permanent, int code, const char *ecode,
                       const char *command, const char *line, json_t *more, const char *msg)
{
    return json_pack("{s:o, s:b, s:i, s:o, s:o, s:o, s:o, s:o}", "kind", jo_str(kind),
                     "permanent", permanent, "code", code, "enhanced_code", jo_str(ecode),
                     "command", jo_str(command), "line", jo_str(line), "more_lines", more,
                     "message", jo_str(msg));
}

json_t *jo_error(const smtpc_error *e)
{
    if (e == NULL || smtpc_error_get_kind(e) == SMTPC_ERR_NONE)
        return json_null();
    json_t *more = json_array();
    for (size_t i = 0; i < smtpc_error_more_line_count(e); i++)
        json_array_append_new(more, jo_str(smtpc_error_more_line(e, i)));
    return err_obj(smtpc_error_kind_name(smtpc_error_get_kind(e)), smtpc_error_permanent(e),
                   smtpc_error_code(e), smtpc_error_enhanced_code(e),
                   smtpc_command_name(smtpc_error_command(e)), smtpc_error_line(e), more,
                   smtpc_error_message(e));
}

json_t *jo_cli_error(const struct cli_err *e)
{
    /* Retrying an unusable command line or an invalid message cannot help. */
    const char *command = e->kind == SMTPC_ERR_MESSAGE ? "data" : "";
    return err_obj(cli_err_kind_name(e), true, 0, "", command, "", json_array(), e->msg);
}

json_t *jo_server(const smtpc_session *s)
{
    json_t *ext = json_array(), *auth = json_array(), *lim = json_object();
    for (size_t i = 0; s != NULL && i < smtpc_server_ext_count(s); i++)
        json_array_append_new(ext, jo_str(smtpc_server_ext(s, i)));
    for (size_t i = 0; s != NULL && i < smtpc_server_auth_count(s); i++)
        json_array_append_new(auth, jo_str(smtpc_server_auth(s, i)));
    for (size_t i = 0; s != NULL && i < smtpc_server_limit_count(s); i++) {
        const char *name = smtpc_server_limit_name(s, i);
        if (name != NULL)
            json_object_set_new(lim, name, jo_str(smtpc_server_limit_value(s, i)));
    }
    return json_pack("{s:o, s:o, s:o, s:I, s:o, s:o}", "greeting",
                     jo_str(s ? smtpc_server_greeting(s) : ""), "name",
                     jo_str(s ? smtpc_server_name(s) : ""), "extensions", ext, "size",
                     (json_int_t)(s ? smtpc_server_max_size(s) : 0), "auth", auth, "limits",
                     lim);
}

json_t *jo_tls(const smtpc_session *s)
{
    if (s == NULL || !smtpc_tls_active(s))
        return json_null();
    const char *dane = smtpc_tls_dane_record(s);
    return json_pack("{s:o, s:o, s:b, s:o}", "version", jo_str(smtpc_tls_version(s)), "cipher",
                     jo_str(smtpc_tls_cipher(s)), "pkix_verified", smtpc_tls_pkix_verified(s),
                     "dane_record", dane ? jo_str(dane) : json_null());
}

static json_t *tlsrpt_detail(const smtpc_tlsrpt *r, size_t i)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:I}", "result_type",
                     jo_str(smtpc_tlsrpt_detail_field(r, i, "result-type")),
                     "failure_reason_code",
                     jo_str(smtpc_tlsrpt_detail_field(r, i, "failure-reason-code")),
                     "receiving_mx_hostname",
                     jo_str(smtpc_tlsrpt_detail_field(r, i, "receiving-mx-hostname")),
                     "receiving_ip", jo_str(smtpc_tlsrpt_detail_field(r, i, "receiving-ip")),
                     "failed_session_count",
                     (json_int_t)smtpc_tlsrpt_detail_failed_sessions(r, i));
}

/* RES: an RFC 8460 summary with the details this session recorded. */
json_t *jo_tlsrpt_res(const smtpc_tlsrpt *r, bool policy)
{
    json_t *details = json_array();
    for (size_t i = 0; r != NULL && i < smtpc_tlsrpt_detail_count(r); i++)
        json_array_append_new(details, tlsrpt_detail(r, i));
    json_t *res = json_pack("{s:I, s:I, s:o}", "success",
                            (json_int_t)(r ? smtpc_tlsrpt_success(r) : 0), "failure",
                            (json_int_t)(r ? smtpc_tlsrpt_failure(r) : 0), "details", details);
    if (policy && res != NULL) {
        json_object_set_new(res, "policy_type", jo_str(r ? smtpc_tlsrpt_policy_type(r) : ""));
        json_object_set_new(res, "policy_domain",
                            jo_str(r ? smtpc_tlsrpt_policy_domain(r) : ""));
    }
    return res;
}

json_t *jo_tlsrpt(const smtpc_session *s)
{
    const smtpc_tlsrpt *rd = s ? smtpc_session_tlsrpt(s, SMTPC_TLSRPT_RECIPIENT_DOMAIN) : NULL;
    const smtpc_tlsrpt *host = s ? smtpc_session_tlsrpt(s, SMTPC_TLSRPT_HOST) : NULL;
    return json_pack("{s:o, s:o}", "recipient_domain", jo_tlsrpt_res(rd, false), "host",
                     jo_tlsrpt_res(host, false));
}

static json_t *rcpt_obj(const char *addr, bool accepted, bool permanent, int code,
                        const char *ecode, const char *line)
{
    return json_pack("{s:o, s:b, s:b, s:i, s:o, s:o}", "address", jo_str(addr), "accepted",
                     accepted, "permanent", permanent, "code", code, "enhanced_code",
                     jo_str(ecode), "line", jo_str(line));
}

json_t *jo_recipients_with(const smtpc_message *m, const smtpc_error *fallback,
                           bool msg_permanent)
{
    json_t *a = json_array();
    for (size_t i = 0; i < smtpc_message_rcpt_count(m); i++) {
        const smtpc_error *r = smtpc_message_rcpt_result(m, i);
        const char *addr = smtpc_message_rcpt(m, i);
        bool acc = smtpc_message_rcpt_accepted(m, i);
        /* No reply (the transaction stopped before this RCPT, or never
         * started): the fallback error's reply, else the message's permanence. */
        if ((r == NULL || smtpc_error_code(r) == 0) && fallback != NULL)
            json_array_append_new(a, rcpt_obj(addr, false, smtpc_error_permanent(fallback),
                                              smtpc_error_code(fallback),
                                              smtpc_error_enhanced_code(fallback),
                                              smtpc_error_line(fallback)));
        else if (r == NULL || smtpc_error_code(r) == 0)
            json_array_append_new(a, rcpt_obj(addr, false, msg_permanent, 0, "", ""));
        else
            json_array_append_new(
                a, rcpt_obj(addr, acc, !acc && smtpc_error_permanent(r), smtpc_error_code(r),
                            smtpc_error_enhanced_code(r), smtpc_error_line(r)));
    }
    return a;
}

json_t *jo_recipients(const smtpc_message *m, bool msg_permanent)
{
    return jo_recipients_with(m, NULL, msg_permanent);
}

json_t *jo_recipients_unsent(const struct cli_strv *to, bool permanent)
{
    json_t *a = json_array();
    for (size_t i = 0; i < to->n; i++)
        json_array_append_new(a, rcpt_obj(to->v[i], false, permanent, 0, "", ""));
    return a;
}

json_t *jo_message(bool ok, json_t *error, json_t *recipients)
{
    return json_pack("{s:b, s:o, s:o}", "ok", ok, "error", error, "recipients", recipients);
}

int jo_print(json_t *root)
{
    char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text == NULL) {
        /* Still one object, as promised, even if building the real one failed. */
        fputs("{\"ok\":false,\"error\":{\"kind\":\"io\",\"permanent\":false,\"code\":0,"
              "\"enhanced_code\":\"\",\"command\":\"\",\"line\":\"\",\"more_lines\":[],"
              "\"message\":\"cannot format JSON output\"},\"messages\":[]}\n",
              stdout);
        return -1;
    }
    puts(text);
    free(text);
    return fflush(stdout);
}
