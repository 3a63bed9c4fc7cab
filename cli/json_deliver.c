/* JSON output of `smtpc deliver` and `smtpc probe` (shapes: issue 3). */
#include "json_out.h"

/* A string, or null for NULL. */
static json_t *str_or_null(const char *s)
{
    return s != NULL ? jo_str(s) : json_null();
}

/* ---- deliver ---- */

static json_t *mtasts(const smtpc_delivery *d)
{
    return json_pack("{s:o, s:o, s:o}", "mode", str_or_null(smtpc_delivery_mtasts_mode(d)),
                     "policy_id", str_or_null(smtpc_delivery_mtasts_policy_id(d)), "error",
                     str_or_null(smtpc_delivery_mtasts_error(d)));
}

static json_t *attempt(const smtpc_delivery *d, size_t i)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:b, s:o}", "host",
                     jo_str(smtpc_delivery_attempt_host(d, i)), "ip",
                     str_or_null(smtpc_delivery_attempt_ip(d, i)), "tls_mode",
                     jo_str(smtpc_delivery_attempt_tls_mode(d, i)), "dane",
                     jo_str(smtpc_delivery_attempt_dane(d, i)), "pkix_verified",
                     smtpc_delivery_attempt_pkix_verified(d, i), "error",
                     jo_error(smtpc_delivery_attempt_error(d, i)));
}

static json_t *attempts(const smtpc_delivery *d)
{
    json_t *a = json_array();
    for (size_t i = 0; i < smtpc_delivery_attempt_count(d); i++)
        json_array_append_new(a, attempt(d, i));
    return a;
}

static json_t *tlsrpt(const smtpc_delivery *d)
{
    json_t *hosts = json_array();
    for (size_t i = 0; i < smtpc_delivery_tlsrpt_host_count(d); i++)
        json_array_append_new(hosts, jo_tlsrpt_res(smtpc_delivery_tlsrpt_host(d, i), true));
    return json_pack("{s:o, s:o}", "recipient_domain",
                     jo_tlsrpt_res(smtpc_delivery_tlsrpt_recipient_domain(d), true), "hosts",
                     hosts);
}

json_t *jo_delivery(const char *domain, const smtpc_delivery *d, const smtpc_message *m,
                    bool ok, long msg)
{
    const smtpc_error *derr = smtpc_delivery_error(d);
    const smtpc_error *merr = smtpc_message_error(m);
    bool msg_permanent = merr != NULL && smtpc_error_permanent(merr);
    json_t *o = json_object();
    /* "message" only with several messages: otherwise the contract's fields exactly. */
    if (msg >= 0)
        json_object_set_new(o, "message", json_integer(msg));
    json_object_set_new(o, "domain", jo_str(domain));
    json_object_set_new(o, "ok", json_boolean(ok));
    json_object_set_new(o, "error", jo_error(derr));
    json_object_set_new(o, "mtasts", mtasts(d));
    json_object_set_new(o, "attempts", attempts(d));
    json_object_set_new(o, "recipients", jo_recipients_with(m, derr, msg_permanent));
    json_object_set_new(o, "tlsrpt", tlsrpt(d));
    return o;
}

/* ---- probe ---- */

static json_t *str_list(size_t n, const char *(*get)(const smtpc_delivery *, size_t),
                        const smtpc_delivery *d)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, jo_str(get(d, i)));
    return a;
}

/* The k-th item of attempt i, for the attempt's lists. */
typedef const char *(*item_fn)(const smtpc_delivery *, size_t, size_t);

static json_t *attempt_list(const smtpc_delivery *d, size_t i, size_t n, item_fn get)
{
    json_t *a = json_array();
    for (size_t k = 0; k < n; k++)
        json_array_append_new(a, jo_str(get(d, i, k)));
    return a;
}

static json_t *probe_tls(const smtpc_delivery *d, size_t i)
{
    const char *version = smtpc_delivery_attempt_tls_version(d, i);
    if (version == NULL)
        return json_null();
    return json_pack("{s:o, s:o, s:o}", "version", jo_str(version), "cipher",
                     jo_str(smtpc_delivery_attempt_tls_cipher(d, i)), "certificates",
                     attempt_list(d, i, smtpc_delivery_attempt_cert_count(d, i),
                                  smtpc_delivery_attempt_cert));
}

static json_t *probe_connect(const smtpc_delivery *d, size_t i)
{
    const char *ip = smtpc_delivery_attempt_ip(d, i);
    const smtpc_error *e = smtpc_delivery_attempt_error(d, i);
    return json_pack("{s:o, s:b, s:b, s:o, s:b, s:o, s:o, s:o}", "ip", jo_str(ip), "ok",
                     ip != NULL && e == NULL, "starttls", smtpc_delivery_attempt_starttls(d, i),
                     "tls", probe_tls(d, i), "pkix_verified",
                     smtpc_delivery_attempt_pkix_verified(d, i), "dane",
                     jo_str(smtpc_delivery_attempt_dane(d, i)), "extensions",
                     attempt_list(d, i, smtpc_delivery_attempt_ext_count(d, i),
                                  smtpc_delivery_attempt_ext),
                     "error", jo_error(e));
}

static json_t *probe_tlsa(const smtpc_delivery *d, size_t i)
{
    return json_pack("{s:o, s:I, s:o}", "records",
                     attempt_list(d, i, smtpc_delivery_attempt_tlsa_count(d, i),
                                  smtpc_delivery_attempt_tlsa),
                     "usable", (json_int_t)smtpc_delivery_attempt_tlsa_usable(d, i), "dnssec",
                     jo_str(smtpc_delivery_attempt_tlsa_dnssec(d, i)));
}

static json_t *probe_mx(const smtpc_delivery *d, size_t i, const char *verdict)
{
    int match = smtpc_delivery_attempt_mtasts_match(d, i);
    int pref = smtpc_delivery_attempt_preference(d, i);
    const char *dnssec = smtpc_delivery_attempt_dnssec(d, i);
    /* An implicit MX (the domain itself) has preference 0 (RFC 5321 5.1). */
    return json_pack("{s:o, s:i, s:o, s:o, s:o, s:o, s:o, s:o}", "host",
                     jo_str(smtpc_delivery_attempt_host(d, i)), "preference", pref < 0 ? 0 : pref,
                     "dnssec", jo_str(dnssec != NULL ? dnssec : "insecure"), "addresses",
                     attempt_list(d, i, smtpc_delivery_attempt_address_count(d, i),
                                  smtpc_delivery_attempt_address),
                     "tlsa", probe_tlsa(d, i), "mtasts_match",
                     match < 0 ? json_null() : json_boolean(match > 0), "connect",
                     probe_connect(d, i), "verdict", jo_str(verdict));
}

json_t *jo_probe(const char *domain, const smtpc_delivery *d, const char *const *verdicts,
                 const char *verdict)
{
    json_t *mx = json_array();
    for (size_t i = 0; i < smtpc_delivery_attempt_count(d); i++)
        json_array_append_new(mx, probe_mx(d, i, verdicts[i]));
    json_t *sts = json_pack(
        "{s:o, s:o, s:o, s:o}", "record", str_or_null(smtpc_delivery_mtasts_record(d)), "mode",
        str_or_null(smtpc_delivery_mtasts_mode(d)), "mx",
        str_list(smtpc_delivery_mtasts_mx_count(d), smtpc_delivery_mtasts_mx, d), "error",
        str_or_null(smtpc_delivery_mtasts_error(d)));
    json_t *rua = str_list(smtpc_delivery_tlsrpt_rua_count(d), smtpc_delivery_tlsrpt_rua, d);
    json_t *rpt = json_pack("{s:o, s:o}", "record",
                            str_or_null(smtpc_delivery_tlsrpt_record(d)), "rua", rua);
    return json_pack("{s:o, s:o, s:o, s:o, s:o}", "domain", jo_str(domain), "verdict",
                     jo_str(verdict), "mtasts", sts, "tlsrpt", rpt, "mx", mx);
}

json_t *jo_probe_empty(const char *domain)
{
    return json_pack("{s:o, s:s, s:{s:n, s:n, s:[], s:n}, s:{s:n, s:[]}, s:[]}", "domain",
                     jo_str(domain), "verdict", "error", "mtasts", "record", "mode", "mx",
                     "error", "tlsrpt", "record", "rua", "mx");
}
