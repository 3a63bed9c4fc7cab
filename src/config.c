/* smtpc_config: typed setters; copied into each session. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "internal.h"

/* RFC 5321 4.5.3.2 timeouts; connect and TLS our own choice. */
static const int default_timeouts_ms[SMTPC_TIMEOUT__COUNT] = {
    [SMTPC_TIMEOUT_CONNECT] = 30000,
    [SMTPC_TIMEOUT_TLS] = 60000,
    [SMTPC_TIMEOUT_GREETING] = 300000,
    [SMTPC_TIMEOUT_COMMAND] = 300000,
    [SMTPC_TIMEOUT_MAIL] = 300000,
    [SMTPC_TIMEOUT_RCPT] = 300000,
    [SMTPC_TIMEOUT_DATA] = 120000,
    [SMTPC_TIMEOUT_DATA_BLOCK] = 180000,
    [SMTPC_TIMEOUT_DATA_END] = 600000,
    [SMTPC_TIMEOUT_QUIT] = 5000,
    [SMTPC_TIMEOUT_WRITE] = 300000,
};

smtpc_config *smtpc_config_new(void)
{
    smtpc_config *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->pipelining = true;
    c->tls_mode = SMTPC_TLS_STARTTLS;
    c->pkix_enforce = true;
    return c;
}

static void free_secret(char **p)
{
    if (*p) {
        OPENSSL_cleanse(*p, strlen(*p));
        free(*p);
        *p = NULL;
    }
}

/* A session needs its copy of the credentials only until AUTH is over (the SASL
 * client keeps its own copy meanwhile, wiped when freed): then it drops them, so
 * that no password or token stays in memory for the rest of the session. */
void config_forget_secrets(smtpc_config *c)
{
    free_secret(&c->auth_password);
    free_secret(&c->oauth_token);
}

void config_clear(smtpc_config *c)
{
    free(c->ehlo_name);
    free(c->local_address);
    free(c->ca_file);
    free(c->ca_dir);
    free(c->tls_name);
    free(c->cert_file);
    free(c->key_file);
    for (size_t i = 0; i < c->ntlsa; i++)
        free(c->tlsa[i].data);
    for (size_t i = 0; i < c->ndane_names; i++)
        free(c->dane_names[i]);
    free(c->auth_mech);
    free(c->auth_user);
    free_secret(&c->auth_password);
    free_secret(&c->oauth_token);
    memset(c, 0, sizeof *c);
}

void smtpc_config_free(smtpc_config *c)
{
    if (!c)
        return;
    config_clear(c);
    free(c);
}

/* *dst = copy of src (NULL stays NULL); on failure *dst is NULL, never src. */
static int dup_opt(char **dst, const char *src)
{
    char *d = src ? strdup(src) : NULL;
    *dst = d;
    return src && !d ? -1 : 0;
}

/* Replaces *dst with a copy of src (NULL clears). */
static int set_str(char **dst, const char *src)
{
    char *d = NULL;
    if (dup_opt(&d, src) != 0)
        return -1;
    free(*dst);
    *dst = d;
    return 0;
}

int config_copy(smtpc_config *dst, const smtpc_config *src)
{
    *dst = *src;
    char **strs[] = {&dst->ehlo_name, &dst->local_address, &dst->ca_file, &dst->ca_dir,
                     &dst->tls_name, &dst->cert_file, &dst->key_file, &dst->auth_mech,
                     &dst->auth_user, &dst->auth_password, &dst->oauth_token};
    int rc = 0;
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if (dup_opt(strs[i], *strs[i]) != 0)
            rc = -1;
    for (size_t i = 0; i < src->ntlsa; i++) {
        dst->tlsa[i].data = malloc(src->tlsa[i].len ? src->tlsa[i].len : 1);
        if (!dst->tlsa[i].data)
            rc = -1;
        else
            memcpy(dst->tlsa[i].data, src->tlsa[i].data, src->tlsa[i].len);
    }
    for (size_t i = 0; i < src->ndane_names; i++)
        if (dup_opt(&dst->dane_names[i], src->dane_names[i]) != 0)
            rc = -1;
    return rc;
}

int config_timeout(const smtpc_config *c, smtpc_timeout_stage st)
{
    int ms = c->timeouts_ms[st];
    return ms > 0 ? ms : default_timeouts_ms[st];
}

void smtpc_config_set_log(smtpc_config *c, smtpc_log_fn fn, void *ud, smtpc_log_level max)
{
    c->log.fn = fn;
    c->log.ud = ud;
    c->log.max = max;
}

void smtpc_config_set_trace_secrets(smtpc_config *c, bool on) { c->trace_secrets = on; }

int smtpc_config_set_ehlo_name(smtpc_config *c, const char *name)
{
    if (!name || !*name || !address_acceptable(name) || strchr(name, ' '))
        return -1;
    return set_str(&c->ehlo_name, name);
}

int smtpc_config_set_local_address(smtpc_config *c, const char *ip)
{
    return set_str(&c->local_address, ip);
}

void smtpc_config_set_timeout(smtpc_config *c, smtpc_timeout_stage st, int ms)
{
    if ((unsigned)st < SMTPC_TIMEOUT__COUNT)
        c->timeouts_ms[st] = ms > 0 ? ms : 0;
}

void smtpc_config_set_all_timeouts(smtpc_config *c, int ms)
{
    for (int i = 0; i < SMTPC_TIMEOUT__COUNT; i++)
        smtpc_config_set_timeout(c, (smtpc_timeout_stage)i, ms);
}

void smtpc_config_set_pipelining(smtpc_config *c, bool allowed) { c->pipelining = allowed; }
void smtpc_config_set_tls_mode(smtpc_config *c, smtpc_tls_mode m) { c->tls_mode = m; }
void smtpc_config_set_tls_verify_pkix(smtpc_config *c, bool on) { c->pkix_enforce = on; }
void smtpc_config_set_ignore_tls_errors(smtpc_config *c, bool on) { c->ignore_tls_errors = on; }
int smtpc_config_set_ca_file(smtpc_config *c, const char *p) { return set_str(&c->ca_file, p); }
int smtpc_config_set_ca_dir(smtpc_config *c, const char *p) { return set_str(&c->ca_dir, p); }
int smtpc_config_set_tls_name(smtpc_config *c, const char *n) { return set_str(&c->tls_name, n); }

int smtpc_config_set_client_cert(smtpc_config *c, const char *cert, const char *key)
{
    if (set_str(&c->cert_file, cert) != 0 || set_str(&c->key_file, key ? key : cert) != 0)
        return -1;
    return 0;
}

void smtpc_config_enable_dane(smtpc_config *c) { c->dane = true; }

int smtpc_config_add_tlsa(smtpc_config *c, uint8_t usage, uint8_t selector, uint8_t mtype,
                          const unsigned char *data, size_t len)
{
    if (c->ntlsa >= CONFIG_MAX_TLSA || (len && !data) || len > 65535)
        return -1;
    tlsa_rec *r = &c->tlsa[c->ntlsa];
    r->data = malloc(len ? len : 1);
    if (!r->data)
        return -1;
    memcpy(r->data, data, len);
    r->len = len;
    r->usage = usage;
    r->selector = selector;
    r->mtype = mtype;
    c->ntlsa++;
    c->dane = true;
    return 0;
}

int smtpc_config_add_tlsa_text(smtpc_config *c, const char *text)
{
    tlsa_rec r;
    if (!text || tlsa_parse_text(text, &r) != 0)
        return -1;
    int rc = smtpc_config_add_tlsa(c, r.usage, r.selector, r.mtype, r.data, r.len);
    free(r.data);
    return rc;
}

int smtpc_config_add_dane_name(smtpc_config *c, const char *name)
{
    if (!name || c->ndane_names >= CONFIG_MAX_DANE_NAMES)
        return -1;
    char *d = strdup(name);
    if (!d)
        return -1;
    c->dane_names[c->ndane_names++] = d;
    return 0;
}

int smtpc_config_set_auth(smtpc_config *c, const char *mech, const char *user,
                          const char *password)
{
    if (set_str(&c->auth_mech, mech ? mech : "auto") != 0 || set_str(&c->auth_user, user) != 0)
        return -1;
    free_secret(&c->auth_password);
    return dup_opt(&c->auth_password, password);
}

int smtpc_config_set_oauth_token(smtpc_config *c, const char *token)
{
    free_secret(&c->oauth_token);
    if (!c->auth_mech && set_str(&c->auth_mech, "auto") != 0)
        return -1;
    return dup_opt(&c->oauth_token, token);
}

void smtpc_config_set_insecure_auth(smtpc_config *c, bool allow) { c->insecure_auth = allow; }
