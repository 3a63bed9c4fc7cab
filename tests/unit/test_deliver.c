/* Unit tests of the delivery decisions (spec 24) over the fixture resolver
 * and small in-process SMTP servers: one thread per server, each listening on
 * its own 127.0.0.x with one port shared by all of them, scripted (greeting,
 * EHLO extensions, STARTTLS with a certificate made at test time, replies to
 * MAIL/RCPT/DATA) and recording what it received. The MTA-STS fetch is
 * replaced through dc->mtasts_fetch; there is no state directory.
 *
 * Nothing here waits for time to pass: a server's thread is stopped only
 * after the delivery returned, and it accepts every connection still queued
 * before it looks at the stop signal. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "deliver.h"

#define S DNS_SECURE
#define I DNS_INSECURE
#define B DNS_BOGUS

#define DOMAIN "example.test"
#define IP_MX1 "127.0.0.21"
#define IP_MX2 "127.0.0.22"
#define IP_MX3 "127.0.0.23"
#define IP_DEAD "127.0.0.29" /* nothing listens there: connection refused */

#define MAX_SRV 3
#define LOG_MAX 16384

/* ------------------------------------------------------------------ */
/* Test PKI: a CA and one server certificate for the MX names          */
/* ------------------------------------------------------------------ */

typedef struct pki {
    EVP_PKEY *ca_key, *srv_key;
    X509 *ca, *srv;
    SSL_CTX *ctx;          /* server side, shared by every fake server */
    char dir[64];
    char ca_file[96];
    char spki_sha256[65];  /* hex, for DANE-EE 3 1 1 */
} pki;

static pki tpki; /* made once by the group setup, read-only afterwards */

static bool add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    bool ok = e && X509_add_ext(x, e, -1) == 1;
    X509_EXTENSION_free(e);
    return ok;
}

static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *ikey, long serial,
                       const char *san)
{
    X509 *x = X509_new();
    if (!x)
        return NULL;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 7 * 86400L);
    X509_set_pubkey(x, key);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
    X509 *iss = issuer ? issuer : x;
    bool ok = add_ext(x, iss, NID_subject_key_identifier, "hash") &&
              add_ext(x, iss, NID_authority_key_identifier, "keyid:always");
    if (san)
        ok = ok && add_ext(x, iss, NID_basic_constraints, "critical,CA:FALSE") &&
             add_ext(x, iss, NID_key_usage, "critical,digitalSignature") &&
             add_ext(x, iss, NID_ext_key_usage, "serverAuth") &&
             add_ext(x, iss, NID_subject_alt_name, san);
    else
        ok = ok && add_ext(x, iss, NID_basic_constraints, "critical,CA:TRUE") &&
             add_ext(x, iss, NID_key_usage, "critical,keyCertSign,cRLSign");
    if (!ok || X509_sign(x, ikey ? ikey : key, EVP_sha256()) <= 0) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static int spki_hash(EVP_PKEY *key, char hex[65])
{
    unsigned char *der = NULL, md[32];
    unsigned int mdlen = 0;
    int len = i2d_PUBKEY(key, &der);
    if (len <= 0 || !EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32) {
        OPENSSL_free(der);
        return -1;
    }
    OPENSSL_free(der);
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return 0;
}

static int write_ca(void)
{
    snprintf(tpki.dir, sizeof tpki.dir, "/tmp/smtpc-test-deliver-XXXXXX");
    if (!mkdtemp(tpki.dir))
        return -1;
    snprintf(tpki.ca_file, sizeof tpki.ca_file, "%s/ca.pem", tpki.dir);
    FILE *f = fopen(tpki.ca_file, "w");
    if (!f)
        return -1;
    int ok = PEM_write_X509(f, tpki.ca);
    return fclose(f) == 0 && ok ? 0 : -1;
}

static int pki_make(void)
{
    tpki.ca_key = EVP_EC_gen("P-256");
    tpki.srv_key = EVP_EC_gen("P-256");
    if (!tpki.ca_key || !tpki.srv_key)
        return -1;
    tpki.ca = make_cert(tpki.ca_key, "smtpc test CA", NULL, NULL, 1, NULL);
    if (!tpki.ca)
        return -1;
    tpki.srv = make_cert(tpki.srv_key, "mx1." DOMAIN, tpki.ca, tpki.ca_key, 2,
                         "DNS:mx1." DOMAIN ",DNS:mx2." DOMAIN ",DNS:" DOMAIN);
    tpki.ctx = SSL_CTX_new(TLS_server_method());
    if (!tpki.srv || !tpki.ctx || SSL_CTX_use_certificate(tpki.ctx, tpki.srv) != 1 ||
        SSL_CTX_use_PrivateKey(tpki.ctx, tpki.srv_key) != 1)
        return -1;
    return spki_hash(tpki.srv_key, tpki.spki_sha256) == 0 ? write_ca() : -1;
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN); /* a peer closing early must not kill the test */
    if (pki_make() != 0) {
        fprintf(stderr, "# cannot make the test certificates\n");
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (tpki.ca_file[0])
        unlink(tpki.ca_file);
    if (tpki.dir[0])
        rmdir(tpki.dir);
    SSL_CTX_free(tpki.ctx);
    X509_free(tpki.ca);
    X509_free(tpki.srv);
    EVP_PKEY_free(tpki.ca_key);
    EVP_PKEY_free(tpki.srv_key);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Fake SMTP server                                                    */
/* ------------------------------------------------------------------ */

typedef struct srv_script {
    bool starttls;              /* advertise STARTTLS (before TLS) */
    const char *starttls_reply; /* NULL: "220" and the handshake */
    bool requiretls;            /* advertise REQUIRETLS */
    int rcptmax;                /* LIMITS RCPTMAX=N, 0: none */
    int tx_limit;               /* 452 for RCPTs beyond this many in one transaction */
    const char *mail_reply;     /* NULL: 250 */
    const char *reject_rcpt;    /* RCPT line containing this ... */
    const char *reject_reply;   /* ... gets this reply */
    const char *data_reply;     /* reply to the final dot, NULL: 250 */
    bool drop_at_tls;           /* close right after "220" to STARTTLS */
    int drop_at_mail;           /* close the connection at the Nth MAIL (1-based), 0: never */
    bool pipelining;            /* advertise PIPELINING */
} srv_script;

typedef struct fake_srv {
    srv_script sc;
    char ip[32];
    int lfd, stop[2];
    pthread_t th;
    bool running;
    /* What it saw: read only after the thread ended. */
    int conns, mails, datas, tls_ok;
    char log[LOG_MAX]; /* every line received, plus CONNECT, TLS, TLS-FAILED, DROPPED, "." */
    size_t loglen;
} fake_srv;

typedef struct conn {
    int fd;
    SSL *ssl;
    char buf[4096];
    size_t len;
} conn;

static void slog(fake_srv *s, const char *line)
{
    int n = snprintf(s->log + s->loglen, sizeof s->log - s->loglen, "%s\n", line);
    if (n > 0 && (size_t)n < sizeof s->log - s->loglen)
        s->loglen += (size_t)n;
}

static int conn_fill(conn *c)
{
    size_t room = sizeof c->buf - c->len;
    if (c->ssl) {
        int n = SSL_read(c->ssl, c->buf + c->len, (int)room);
        if (n <= 0)
            return -1;
        c->len += (size_t)n;
        return 0;
    }
    ssize_t n = recv(c->fd, c->buf + c->len, room, 0);
    if (n <= 0)
        return -1;
    c->len += (size_t)n;
    return 0;
}

/* One line without its CRLF. Returns 0, or -1 at EOF or on error. */
static int conn_line(conn *c, char *out, size_t max)
{
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        if (nl) {
            size_t used = (size_t)(nl - c->buf) + 1, k = used - 1;
            if (k > 0 && c->buf[k - 1] == '\r')
                k--;
            if (k >= max)
                k = max - 1;
            memcpy(out, c->buf, k);
            out[k] = '\0';
            memmove(c->buf, c->buf + used, c->len - used);
            c->len -= used;
            return 0;
        }
        if (c->len == sizeof c->buf || conn_fill(c) != 0)
            return -1;
    }
}

static void conn_write(conn *c, const char *text)
{
    size_t len = strlen(text);
    if (c->ssl)
        (void)SSL_write(c->ssl, text, (int)len);
    else
        (void)send(c->fd, text, len, MSG_NOSIGNAL);
}

static void sreply(conn *c, const char *line)
{
    char buf[600];
    snprintf(buf, sizeof buf, "%s\r\n", line);
    conn_write(c, buf);
}

static void ehlo_reply(const fake_srv *s, conn *c)
{
    char buf[600];
    size_t n = (size_t)snprintf(buf, sizeof buf, "250-fake.%s\r\n", DOMAIN);
    if (s->sc.starttls && !c->ssl)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "250-STARTTLS\r\n");
    if (s->sc.requiretls)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "250-REQUIRETLS\r\n");
    if (s->sc.pipelining)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "250-PIPELINING\r\n");
    if (s->sc.rcptmax > 0)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "250-LIMITS RCPTMAX=%d\r\n", s->sc.rcptmax);
    snprintf(buf + n, sizeof buf - n, "250 ENHANCEDSTATUSCODES\r\n");
    conn_write(c, buf);
}

/* STARTTLS: the scripted refusal, or 220 and the server side of the handshake. */
static bool do_starttls(fake_srv *s, conn *c)
{
    if (c->ssl || (!s->sc.starttls && !s->sc.starttls_reply)) {
        sreply(c, "502 5.5.1 STARTTLS not offered");
        return true;
    }
    if (s->sc.starttls_reply) {
        sreply(c, s->sc.starttls_reply);
        return true;
    }
    sreply(c, "220 2.0.0 ready to start TLS");
    if (s->sc.drop_at_tls) {
        slog(s, "DROPPED");
        return false;
    }
    c->len = 0; /* nothing may come before the handshake */
    c->ssl = SSL_new(tpki.ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1 || SSL_accept(c->ssl) != 1) {
        slog(s, "TLS-FAILED");
        return false;
    }
    slog(s, "TLS");
    s->tls_ok++;
    return true;
}

static bool do_data(fake_srv *s, conn *c, int *txr)
{
    char line[1024];
    if (*txr <= 0) {
        sreply(c, "503 5.5.1 no valid recipients");
        return true;
    }
    *txr = -1;
    sreply(c, "354 go ahead");
    for (;;) {
        if (conn_line(c, line, sizeof line) != 0)
            return false;
        if (strcmp(line, ".") == 0)
            break;
    }
    slog(s, ".");
    s->datas++;
    sreply(c, s->sc.data_reply ? s->sc.data_reply : "250 2.0.0 queued");
    return true;
}

static bool do_rcpt(fake_srv *s, conn *c, const char *line, int *txr)
{
    if (*txr < 0)
        sreply(c, "503 5.5.1 need MAIL first");
    else if (s->sc.reject_rcpt && strstr(line, s->sc.reject_rcpt))
        sreply(c, s->sc.reject_reply);
    else if (s->sc.tx_limit > 0 && *txr >= s->sc.tx_limit)
        sreply(c, "452 4.5.3 too many recipients in this transaction");
    else {
        (*txr)++;
        sreply(c, "250 2.1.5 ok");
    }
    return true;
}

/* One command; false ends the connection. *txr: recipients accepted in the
 * transaction, -1 outside one. */
static bool command(fake_srv *s, conn *c, const char *line, int *txr)
{
    if (strncasecmp(line, "EHLO ", 5) == 0)
        ehlo_reply(s, c);
    else if (strncasecmp(line, "HELO ", 5) == 0)
        sreply(c, "250 fake");
    else if (strcasecmp(line, "STARTTLS") == 0)
        return do_starttls(s, c);
    else if (strncasecmp(line, "MAIL FROM:", 10) == 0) {
        s->mails++;
        if (s->sc.drop_at_mail == s->mails) {
            slog(s, "DROPPED");
            return false;
        }
        const char *r = s->sc.mail_reply ? s->sc.mail_reply : "250 2.1.0 ok";
        *txr = strncmp(r, "250", 3) == 0 ? 0 : -1;
        sreply(c, r);
    } else if (strncasecmp(line, "RCPT TO:", 8) == 0)
        return do_rcpt(s, c, line, txr);
    else if (strcasecmp(line, "DATA") == 0)
        return do_data(s, c, txr);
    else if (strcasecmp(line, "RSET") == 0) {
        *txr = -1;
        sreply(c, "250 2.0.0 ok");
    } else if (strcasecmp(line, "NOOP") == 0) {
        sreply(c, "250 2.0.0 ok");
    } else if (strcasecmp(line, "QUIT") == 0) {
        sreply(c, "221 2.0.0 bye");
        return false;
    } else
        sreply(c, "500 5.5.2 unrecognized command");
    return true;
}

static void serve(fake_srv *s, int fd)
{
    struct timeval tv = {10, 0}; /* only a safety net against a hung client */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    conn c = {.fd = fd};
    char line[1024];
    int txr = -1;
    s->conns++;
    slog(s, "CONNECT");
    sreply(&c, "220 fake." DOMAIN " ESMTP");
    while (conn_line(&c, line, sizeof line) == 0) {
        slog(s, line);
        if (!command(s, &c, line, &txr))
            break;
    }
    SSL_free(c.ssl);
    close(fd);
}

/* Accepts until told to stop; connections already queued are served first. */
static void *srv_main(void *arg)
{
    fake_srv *s = arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = s->lfd, .events = POLLIN},
                              {.fd = s->stop[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[0].revents & POLLIN) {
            int fd = accept(s->lfd, NULL, NULL);
            if (fd >= 0)
                serve(s, fd);
            continue;
        }
        if (p[1].revents)
            break;
    }
    return NULL;
}

/* The addresses the tests use. Setup binds each of them on one port and
 * keeps the sockets, so no other process can take that port meanwhile; a
 * server listens where a test starts one. A bound socket that does not
 * listen refuses connections, like a dead host. */
static const char *const test_ips[] = {IP_MX1, IP_MX2, IP_MX3, IP_DEAD};
#define NIPS (sizeof test_ips / sizeof test_ips[0])

static int bind_ip(const char *ip, uint16_t port, uint16_t *got)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || inet_pton(AF_INET, ip, &sa.sin_addr) != 1 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *got = ntohs(sa.sin_port);
    return fd;
}

/* A port free on every test address (the first one picks it), bound on all. */
static int reserve_port(int fds[NIPS], uint16_t *port)
{
    for (int tries = 0; tries < 50; tries++) {
        size_t n = 0;
        if ((fds[n] = bind_ip(test_ips[0], 0, port)) < 0)
            return -1;
        for (n = 1; n < NIPS; n++) {
            uint16_t same;
            if ((fds[n] = bind_ip(test_ips[n], *port, &same)) < 0)
                break;
        }
        if (n == NIPS)
            return 0;
        while (n > 0)
            close(fds[--n]);
    }
    return -1;
}

/* ------------------------------------------------------------------ */
/* A test case: resolver, config, message, servers, the delivery        */
/* ------------------------------------------------------------------ */

typedef struct tcase {
    dns_resolver *r;
    smtpc_deliver_config *dc;
    smtpc_message *m;
    uint16_t port;
    int fds[NIPS];      /* bound on port, -1 once a server took it */
    fake_srv srv[MAX_SRV];
    size_t nsrv;
    const char *policy; /* MTA-STS policy text the fake fetch serves, NULL: none */
    char tlsa_name[128]; /* _PORT._tcp.mx1.example.test. */
    smtpc_delivery *d;
} tcase;

static void fake_fetch(void *ud, const char *domain, mtasts_result *out)
{
    const tcase *tc = ud;
    char err[160];
    (void)domain;
    if (!tc->policy) {
        out->err = MTASTS_ERR_NO_POLICY;
        snprintf(out->msg, sizeof out->msg, "no policy served");
        return;
    }
    if (mtasts_policy_parse(tc->policy, strlen(tc->policy), &out->policy, err, sizeof err) != 0) {
        out->err = MTASTS_ERR_POLICY_SYNTAX;
        snprintf(out->msg, sizeof out->msg, "%s", err);
        return;
    }
    out->policy_text = strdup(tc->policy);
    out->err = MTASTS_OK;
}

static int setup(void **state)
{
    tcase *tc = calloc(1, sizeof *tc);
    if (!tc)
        return -1;
    tc->r = dns_fixture_new();
    tc->dc = smtpc_deliver_config_new();
    tc->m = smtpc_message_new();
    if (!tc->r || !tc->dc || !tc->m || reserve_port(tc->fds, &tc->port) != 0) {
        fprintf(stderr, "# setup failed (no free port on %s?)\n", IP_MX1);
        return -1;
    }
    smtpc_deliver_config_set_port(tc->dc, tc->port);
    smtpc_deliver_config_set_timeout(tc->dc, 10000); /* a safety net only */
    smtpc_deliver_config_set_ca_file(tc->dc, tpki.ca_file);
    smtpc_deliver_config_set_ehlo_name(tc->dc, "client.test");
    tc->dc->mtasts_fetch = fake_fetch;
    tc->dc->mtasts_fetch_ud = tc;
    smtpc_message_set_from(tc->m, "sender@origin.test");
    static const char body[] = "Subject: test\r\n\r\nhello\r\n";
    smtpc_message_set_body(tc->m, body, sizeof body - 1);
    snprintf(tc->tlsa_name, sizeof tc->tlsa_name, "_%u._tcp.mx1." DOMAIN ".", tc->port);
    *state = tc;
    return 0;
}

static void srv_stop(fake_srv *s)
{
    if (!s->running)
        return;
    (void)write(s->stop[1], "x", 1);
    pthread_join(s->th, NULL);
    close(s->stop[0]);
    close(s->stop[1]);
    close(s->lfd);
    s->running = false;
}

static int teardown(void **state)
{
    tcase *tc = *state;
    for (size_t i = 0; i < tc->nsrv; i++)
        srv_stop(&tc->srv[i]);
    for (size_t i = 0; i < NIPS; i++)
        if (tc->fds[i] >= 0)
            close(tc->fds[i]);
    smtpc_delivery_free(tc->d);
    smtpc_message_free(tc->m);
    smtpc_deliver_config_free(tc->dc);
    dns_resolver_free(tc->r);
    free(tc);
    return 0;
}

static fake_srv *srv_start(tcase *tc, const char *ip, srv_script sc)
{
    assert_true(tc->nsrv < MAX_SRV);
    fake_srv *s = &tc->srv[tc->nsrv++];
    s->sc = sc;
    snprintf(s->ip, sizeof s->ip, "%s", ip);
    size_t k = 0;
    while (k < NIPS && strcmp(test_ips[k], ip) != 0)
        k++;
    assert_true(k < NIPS && tc->fds[k] >= 0);
    s->lfd = tc->fds[k];
    tc->fds[k] = -1;
    if (listen(s->lfd, 16) != 0)
        fail_msg("cannot listen on %s:%u: %s", ip, tc->port, strerror(errno));
    assert_int_equal(pipe(s->stop), 0);
    assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
    s->running = true;
    return s;
}

static void add(tcase *tc, const char *name, dns_type t, dns_sec sec, const char *data)
{
    assert_int_equal(dns_fixture_add(tc->r, name, t, sec, data), 0);
}

static void fx_fail(tcase *tc, const char *name, dns_type t, dns_status st, dns_sec sec, int ede)
{
    assert_int_equal(dns_fixture_fail(tc->r, name, t, st, sec, ede), 0);
}

static void rcpt(tcase *tc, const char *addr)
{
    assert_int_equal(smtpc_message_add_rcpt(tc->m, addr), 0);
}

/* The usual domain: MX records and their addresses, all with status sec. */
static void mx(tcase *tc, const char *rec, const char *host, const char *ip, dns_sec sec)
{
    add(tc, DOMAIN, DNS_T_MX, sec, rec);
    if (ip)
        add(tc, host, DNS_T_A, sec, ip);
}

static void policy_record(tcase *tc, const char *policy)
{
    add(tc, "_mta-sts." DOMAIN, DNS_T_TXT, I, "v=STSv1; id=20240101T000000;");
    tc->policy = policy;
}

static void tlsa(tcase *tc, const char *rec)
{
    add(tc, tc->tlsa_name, DNS_T_TLSA, S, rec);
}

/* Delivers, then stops every server so their records can be read. */
static smtpc_delivery *deliver_to(tcase *tc, const char *domain, unsigned flags)
{
    if (smtpc_message_rcpt_count(tc->m) == 0)
        rcpt(tc, "rcpt1@" DOMAIN);
    tc->d = deliver_with_resolver(tc->dc, tc->r, domain, tc->m, flags);
    assert_non_null(tc->d);
    for (size_t i = 0; i < tc->nsrv; i++)
        srv_stop(&tc->srv[i]);
    return tc->d;
}

static smtpc_delivery *deliver(tcase *tc, unsigned flags)
{
    return deliver_to(tc, DOMAIN, flags);
}

/* ------------------------------------------------------------------ */
/* Assertions                                                          */
/* ------------------------------------------------------------------ */

static void assert_err(const smtpc_error *e, smtpc_error_kind kind, bool permanent, int code,
                       const char *ecode)
{
    assert_non_null(e);
    if (smtpc_error_get_kind(e) != kind)
        fail_msg("kind %s, want %s (%s)", smtpc_error_kind_name(smtpc_error_get_kind(e)),
                 smtpc_error_kind_name(kind), smtpc_error_message(e));
    assert_int_equal(smtpc_error_permanent(e), permanent);
    assert_int_equal(smtpc_error_code(e), code);
    assert_string_equal(smtpc_error_enhanced_code(e), ecode);
}

static void assert_attempt(const smtpc_delivery *d, size_t i, const char *host, const char *ip,
                           const char *tls_mode, const char *dane, smtpc_error_kind kind)
{
    assert_true(i < smtpc_delivery_attempt_count(d));
    assert_string_equal(smtpc_delivery_attempt_host(d, i), host);
    if (ip)
        assert_string_equal(smtpc_delivery_attempt_ip(d, i), ip);
    else
        assert_null(smtpc_delivery_attempt_ip(d, i));
    assert_string_equal(smtpc_delivery_attempt_tls_mode(d, i), tls_mode);
    assert_string_equal(smtpc_delivery_attempt_dane(d, i), dane);
    const smtpc_error *e = smtpc_delivery_attempt_error(d, i);
    if (kind == SMTPC_ERR_NONE) {
        if (e)
            fail_msg("attempt %zu failed: %s", i, smtpc_error_message(e));
    } else {
        assert_non_null(e);
        if (smtpc_error_get_kind(e) != kind)
            fail_msg("attempt %zu: kind %s, want %s (%s)", i,
                     smtpc_error_kind_name(smtpc_error_get_kind(e)), smtpc_error_kind_name(kind),
                     smtpc_error_message(e));
    }
}

/* Every recipient delivered: 250 from the server, accepted. */
static void assert_delivered(const tcase *tc)
{
    if (!smtpc_delivery_ok(tc->d)) {
        const smtpc_error *e = smtpc_delivery_error(tc->d);
        fail_msg("not delivered: %s", e ? smtpc_error_message(e) : "(no domain error)");
    }
    assert_null(smtpc_delivery_error(tc->d));
    for (size_t i = 0; i < smtpc_message_rcpt_count(tc->m); i++) {
        assert_true(smtpc_message_rcpt_accepted(tc->m, i));
        assert_int_equal(smtpc_error_code(smtpc_message_rcpt_result(tc->m, i)), 250);
    }
}

/* The domain failed: its error, also on every recipient, none accepted. */
static void assert_domain_failed(const tcase *tc, smtpc_error_kind kind, bool permanent, int code,
                                 const char *ecode)
{
    assert_false(smtpc_delivery_ok(tc->d));
    assert_err(smtpc_delivery_error(tc->d), kind, permanent, code, ecode);
    for (size_t i = 0; i < smtpc_message_rcpt_count(tc->m); i++) {
        assert_false(smtpc_message_rcpt_accepted(tc->m, i));
        assert_err(smtpc_message_rcpt_result(tc->m, i), kind, permanent, code, ecode);
    }
}

static void assert_policy(const smtpc_tlsrpt *r, const char *type, const char *domain,
                          int64_t success, int64_t failure)
{
    assert_non_null(r);
    assert_string_equal(smtpc_tlsrpt_policy_type(r), type);
    assert_string_equal(smtpc_tlsrpt_policy_domain(r), domain);
    assert_int_equal(smtpc_tlsrpt_success(r), success);
    assert_int_equal(smtpc_tlsrpt_failure(r), failure);
}

static void assert_detail(const smtpc_tlsrpt *r, size_t i, const char *type, const char *reason,
                          const char *mx, int64_t failed_sessions)
{
    assert_true(i < smtpc_tlsrpt_detail_count(r));
    assert_string_equal(smtpc_tlsrpt_detail_field(r, i, "result-type"), type);
    assert_string_equal(smtpc_tlsrpt_detail_field(r, i, "failure-reason-code"), reason);
    if (mx)
        assert_string_equal(smtpc_tlsrpt_detail_field(r, i, "receiving-mx-hostname"), mx);
    assert_int_equal(smtpc_tlsrpt_detail_failed_sessions(r, i), failed_sessions);
}

static size_t count_lines(const fake_srv *s, const char *prefix)
{
    size_t n = 0, plen = strlen(prefix);
    for (const char *p = s->log; *p;) {
        if (strncmp(p, prefix, plen) == 0)
            n++;
        const char *nl = strchr(p, '\n');
        p = nl ? nl + 1 : p + strlen(p);
    }
    return n;
}

static const srv_script plain = {0};
static const srv_script tls = {.starttls = true};

static const char enforce_mx1[] = "version: STSv1\r\nmode: enforce\r\nmx: mx1." DOMAIN
                                  "\r\nmax_age: 86400\r\n";
static const char testing_mx1[] = "version: STSv1\r\nmode: testing\r\nmx: mx1." DOMAIN
                                  "\r\nmax_age: 86400\r\n";

/* ------------------------------------------------------------------ */
/* Destinations (24.2)                                                 */
/* ------------------------------------------------------------------ */

/* Null MX: no-mail, 556 5.1.10, permanent, nothing dialed. */
static void test_null_mx(void **state)
{
    tcase *tc = *state;
    add(tc, DOMAIN, DNS_T_MX, I, "0 .");
    add(tc, DOMAIN, DNS_T_A, I, IP_MX1); /* would be the implicit MX */
    fake_srv *s = srv_start(tc, IP_MX1, plain);
    deliver(tc, 0);
    assert_domain_failed(tc, SMTPC_ERR_NO_MAIL, true, 556, "5.1.10");
    assert_int_equal(smtpc_error_command(smtpc_delivery_error(tc->d)), SMTPC_CMD_NONE);
    assert_int_equal(smtpc_delivery_attempt_count(tc->d), 0);
    assert_int_equal(s->conns, 0);
}

/* SERVFAIL on the MX lookup: dns, transient; no report detail without an EDE. */
static void test_mx_servfail(void **state)
{
    tcase *tc = *state;
    fx_fail(tc, DOMAIN, DNS_T_MX, DNS_SERVFAIL, I, -1);
    deliver(tc, 0);
    assert_domain_failed(tc, SMTPC_ERR_DNS, false, 0, "");
    assert_int_equal(smtpc_delivery_attempt_count(tc->d), 0);
    const smtpc_tlsrpt *r = smtpc_delivery_tlsrpt_recipient_domain(tc->d);
    assert_policy(r, "no-policy-found", DOMAIN, 0, 0);
    assert_int_equal(smtpc_tlsrpt_detail_count(r), 0);
}

/* SERVFAIL with EDE 6 (DNSSEC bogus): the recipient-domain result says so. */
static void test_mx_servfail_ede(void **state)
{
    tcase *tc = *state;
    fx_fail(tc, DOMAIN, DNS_T_MX, DNS_SERVFAIL, B, 6);
    deliver(tc, 0);
    assert_domain_failed(tc, SMTPC_ERR_DNS, false, 0, "");
    const smtpc_tlsrpt *r = smtpc_delivery_tlsrpt_recipient_domain(tc->d);
    assert_policy(r, "no-policy-found", DOMAIN, 0, 1);
    assert_int_equal(smtpc_tlsrpt_detail_count(r), 1);
    assert_detail(r, 0, "validation-failure", "dns-extended-error-6-dnssec-bogus", NULL, 1);
}

/* A domain that does not exist, so no address either: dns, permanent. */
static void test_nxdomain(void **state)
{
    tcase *tc = *state;
    fx_fail(tc, DOMAIN, DNS_T_CNAME, DNS_NXDOMAIN, I, -1);
    fx_fail(tc, DOMAIN, DNS_T_MX, DNS_NXDOMAIN, I, -1);
    fx_fail(tc, DOMAIN, DNS_T_A, DNS_NXDOMAIN, I, -1);
    fx_fail(tc, DOMAIN, DNS_T_AAAA, DNS_NXDOMAIN, I, -1);
    deliver(tc, 0);
    assert_domain_failed(tc, SMTPC_ERR_DNS, true, 0, "");
    assert_int_equal(smtpc_delivery_attempt_count(tc->d), 1);
    assert_attempt(tc->d, 0, DOMAIN, NULL, "opportunistic", "none", SMTPC_ERR_DNS);
}

/* No MX: the domain itself is the host. */
static void test_implicit_mx(void **state)
{
    tcase *tc = *state;
    add(tc, DOMAIN, DNS_T_A, I, IP_MX1);
    fake_srv *s = srv_start(tc, IP_MX1, plain);
    deliver(tc, 0);
    assert_delivered(tc);
    assert_int_equal(smtpc_delivery_attempt_count(tc->d), 1);
    assert_attempt(tc->d, 0, DOMAIN, IP_MX1, "opportunistic", "none", SMTPC_ERR_NONE);
    assert_int_equal(smtpc_delivery_attempt_preference(tc->d, 0), -1);
    assert_int_equal(s->conns, 1);
    assert_string_equal(s->log, "CONNECT\nEHLO client.test\nMAIL FROM:<sender@origin.test>\n"
                                "RCPT TO:<rcpt1@" DOMAIN ">\nDATA\n.\nQUIT\n");
}

/* MX preference order: the lower one is used, the other never dialed. */
static void test_mx_order(void **state)
{
    tcase *tc = *state;
    mx(tc, "20 mx2." DOMAIN, "mx2." DOMAIN, IP_MX2, I);
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, I);
    fake_srv *s1 = srv_start(tc, IP_MX1, plain);
    fake_srv *s2 = srv_start(tc, IP_MX2, plain);
    deliver(tc, 0);
    assert_delivered(tc);
    assert_int_equal(smtpc_delivery_attempt_count(tc->d), 1);
    assert_attempt(tc->d, 0, "mx1." DOMAIN, IP_MX1, "opportunistic", "none", SMTPC_ERR_NONE);
    assert_int_equal(smtpc_delivery_attempt_preference(tc->d, 0), 10);
    assert_int_equal(s1->mails, 1);
    assert_int_equal(s2->conns, 0);
}

/* The first MX refuses connections: the second takes the message. */
static void test_mx_fallback(void **state)
{
    tcase *tc = *state;
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_DEAD, I);
    mx(tc, "20 mx2." DOMAIN, "mx2." DOMAIN, IP_MX2, I);
    fake_srv *s2 = srv_start(tc, IP_MX2, plain);
    deliver(tc, 0);
    assert_delivered(tc);
    assert_int_equal(smtpc_delivery_attempt_count(tc->d), 2);
    assert_attempt(tc->d, 0, "mx1." DOMAIN, IP_DEAD, "opportunistic", "none", SMTPC_ERR_CONNECT);
    assert_false(smtpc_error_permanent(smtpc_delivery_attempt_error(tc->d, 0)));
    assert_attempt(tc->d, 1, "mx2." DOMAIN, IP_MX2, "opportunistic", "none", SMTPC_ERR_NONE);
    assert_int_equal(s2->conns, 1);
    assert_int_equal(s2->datas, 1);
}

/* ------------------------------------------------------------------ */
/* MTA-STS (24.4, 24.6, 24.7)                                          */
/* ------------------------------------------------------------------ */

/* Enforce, and the MX is not in the policy: policy error, transient, never dialed. */
static void test_mtasts_enforce_mismatch(void **state)
{
    tcase *tc = *state;
    policy_record(tc, enforce_mx1);
    mx(tc, "10 mx9." DOMAIN, "mx9." DOMAIN, IP_MX1, I);
    fake_srv *s = srv_start(tc, IP_MX1, tls);
    deliver(tc, 0);
    assert_domain_failed(tc, SMTPC_ERR_POLICY, false, 554, "5.7.30");
    assert_string_equal(smtpc_delivery_mtasts_mode(tc->d), "enforce");
    assert_null(smtpc_delivery_mtasts_error(tc->d));
    assert_int_equal(smtpc_delivery_attempt_count(tc->d), 1);
    assert_attempt(tc->d, 0, "mx9." DOMAIN, NULL, "starttls", "none", SMTPC_ERR_POLICY);
    assert_err(smtpc_delivery_attempt_error(tc->d, 0), SMTPC_ERR_POLICY, false, 554, "5.7.30");
    assert_int_equal(smtpc_delivery_attempt_mtasts_match(tc->d, 0), 0);
    assert_int_equal(s->conns, 0);
    const smtpc_tlsrpt *r = smtpc_delivery_tlsrpt_recipient_domain(tc->d);
    assert_policy(r, "sts", DOMAIN, 0, 1);
    assert_int_equal(smtpc_tlsrpt_detail_count(r), 1);
    assert_detail(r, 0, "validation-failure", "mtasts-policy-mx-mismatch", "mx9." DOMAIN, 1);
}

/* Enforce, matching MX that offers no STARTTLS: transient, never plaintext. */
static void test_mtasts_enforce_no_starttls(void **state)
{
    tcase *tc = *state;
    policy_record(tc, enforce_mx1);
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, I);
    fake_srv *s = srv_start(tc, IP_MX1, plain);
    deliver(tc, 0);
    assert_false(smtpc_delivery_ok(tc->d));
    const smtpc_error *e = smtpc_delivery_error(tc->d);
    assert_non_null(e);
    assert_int_equal(smtpc_error_get_kind(e), SMTPC_ERR_TLS);
    assert_false(smtpc_error_permanent(e));
    assert_int_equal(smtpc_delivery_attempt_count(tc->d), 1);
    assert_attempt(tc->d, 0, "mx1." DOMAIN, IP_MX1, "starttls", "none", SMTPC_ERR_TLS);
    assert_int_equal(smtpc_delivery_attempt_mtasts_match(tc->d, 0), 1);
    assert_int_equal(s->conns, 1);
    assert_int_equal(s->mails, 0);
    assert_false(smtpc_message_rcpt_accepted(tc->m, 0));
    assert_false(smtpc_error_permanent(smtpc_message_rcpt_result(tc->m, 0)));
}

/* Enforce, matching MX with a valid certificate: delivered over verified TLS. */
static void test_mtasts_enforce_ok(void **state)
{
    tcase *tc = *state;
    policy_record(tc, enforce_mx1);
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, I);
    fake_srv *s = srv_start(tc, IP_MX1, tls);
    deliver(tc, 0);
    assert_delivered(tc);
    assert_int_equal(smtpc_delivery_attempt_count(tc->d), 1);
    assert_attempt(tc->d, 0, "mx1." DOMAIN, IP_MX1, "starttls", "none", SMTPC_ERR_NONE);
    assert_true(smtpc_delivery_attempt_pkix_verified(tc->d, 0));
    assert_int_equal(s->tls_ok, 1);
    assert_int_equal(s->datas, 1);
    assert_policy(smtpc_delivery_tlsrpt_recipient_domain(tc->d), "sts", DOMAIN, 1, 0);
}

/* Testing mode and a non-matching MX: reported, delivered anyway. */
static void test_mtasts_testing_mismatch(void **state)
{
    tcase *tc = *state;
    policy_record(tc, testing_mx1);
    mx(tc, "10 mx9." DOMAIN, "mx9." DOMAIN, IP_MX1, I);
    fake_srv *s = srv_start(tc, IP_MX1, plain);
    deliver(tc, 0);
    assert_delivered(tc);
    assert_string_equal(smtpc_delivery_mtasts_mode(tc->d), "testing");
    assert_attempt(tc->d, 0, "mx9." DOMAIN, IP_MX1, "opportunistic", "none", SMTPC_ERR_NONE);
    assert_int_equal(s->datas, 1);
    const smtpc_tlsrpt *r = smtpc_delivery_tlsrpt_recipient_domain(tc->d);
    assert_string_equal(smtpc_tlsrpt_policy_type(r), "sts");
    assert_detail(r, 0, "validation-failure", "mtasts-policy-mx-mismatch", "mx9." DOMAIN, 1);
}

/* "TLS-Required: No" with an enforce policy the MX does not match: delivered. */
static void test_tls_required_no_enforce_mismatch(void **state)
{
    tcase *tc = *state;
    policy_record(tc, enforce_mx1);
    mx(tc, "10 mx9." DOMAIN, "mx9." DOMAIN, IP_MX1, I);
    fake_srv *s = srv_start(tc, IP_MX1, plain);
    deliver(tc, SMTPC_DELIVER_TLS_REQUIRED_NO);
    assert_delivered(tc);
    /* STARTTLS is still tried (required by the policy), then plaintext. */
    size_t n = smtpc_delivery_attempt_count(tc->d);
    assert_int_equal(n, 2);
    assert_attempt(tc->d, 0, "mx9." DOMAIN, IP_MX1, "starttls", "none", SMTPC_ERR_TLS);
    assert_attempt(tc->d, 1, "mx9." DOMAIN, IP_MX1, "none", "none", SMTPC_ERR_NONE);
    assert_int_equal(s->conns, 2);
    assert_int_equal(s->datas, 1);
}

/* ------------------------------------------------------------------ */
/* Plaintext fallback (24.19)                                          */
/* ------------------------------------------------------------------ */

/* Opportunistic, STARTTLS refused with 454: a plaintext retry of its own. */
static void test_starttls_refused_plaintext(void **state)
{
    tcase *tc = *state;
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, I);
    fake_srv *s = srv_start(tc, IP_MX1,
                            (srv_script){.starttls = true,
                                         .starttls_reply = "454 4.7.0 TLS not available"});
    deliver(tc, 0);
    assert_delivered(tc);
    assert_int_equal(smtpc_delivery_attempt_count(tc->d), 2);
    assert_attempt(tc->d, 0, "mx1." DOMAIN, IP_MX1, "opportunistic", "none", SMTPC_ERR_TLS);
    assert_err(smtpc_delivery_attempt_error(tc->d, 0), SMTPC_ERR_TLS, false, 454, "4.7.0");
    assert_int_equal(smtpc_error_command(smtpc_delivery_attempt_error(tc->d, 0)),
                     SMTPC_CMD_STARTTLS);
    assert_attempt(tc->d, 1, "mx1." DOMAIN, IP_MX1, "none", "none", SMTPC_ERR_NONE);
    assert_int_equal(s->conns, 2);
    assert_int_equal(count_lines(s, "STARTTLS"), 1);
    assert_int_equal(s->mails, 1);
    /* The first connection's failure is reported, the retry's result is not. */
    const smtpc_tlsrpt *r = smtpc_delivery_tlsrpt_recipient_domain(tc->d);
    assert_policy(r, "no-policy-found", DOMAIN, 0, 1);
    assert_detail(r, 0, "starttls-not-supported", "smtp-starttls-reply-code-454", NULL, 1);
}

/* ------------------------------------------------------------------ */
/* REQUIRETLS (24.13, 24.16, 24.21)                                    */
/* ------------------------------------------------------------------ */

/* REQUIRETLS without DANE or MTA-STS enforce: no host dialed, permanent for the domain. */
static void test_requiretls_no_mechanism(void **state)
{
    tcase *tc = *state;
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, I);
    mx(tc, "20 mx2." DOMAIN, "mx2." DOMAIN, IP_MX2, I);
    fake_srv *s1 = srv_start(tc, IP_MX1, (srv_script){.starttls = true, .requiretls = true});
    fake_srv *s2 = srv_start(tc, IP_MX2, (srv_script){.starttls = true, .requiretls = true});
    smtpc_message_set_flags(tc->m, SMTPC_MSG_REQUIRETLS);
    deliver(tc, 0);
    assert_domain_failed(tc, SMTPC_ERR_POLICY, true, 554, "5.7.30");
    assert_int_equal(smtpc_delivery_attempt_count(tc->d), 2);
    for (size_t i = 0; i < 2; i++) {
        assert_attempt(tc->d, i, i ? "mx2." DOMAIN : "mx1." DOMAIN, NULL, "opportunistic", "none",
                       SMTPC_ERR_POLICY);
        assert_err(smtpc_delivery_attempt_error(tc->d, i), SMTPC_ERR_POLICY, false, 554, "5.7.30");
    }
    assert_int_equal(s1->conns, 0);
    assert_int_equal(s2->conns, 0);
}

/* REQUIRETLS with MTA-STS enforce, hosts verify but offer no REQUIRETLS. */
static void test_requiretls_not_offered(void **state)
{
    tcase *tc = *state;
    policy_record(tc, "version: STSv1\nmode: enforce\nmx: *." DOMAIN "\nmax_age: 86400\n");
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, I);
    mx(tc, "20 mx2." DOMAIN, "mx2." DOMAIN, IP_MX2, I);
    fake_srv *s1 = srv_start(tc, IP_MX1, tls);
    fake_srv *s2 = srv_start(tc, IP_MX2, tls);
    smtpc_message_set_flags(tc->m, SMTPC_MSG_REQUIRETLS);
    deliver(tc, 0);
    assert_domain_failed(tc, SMTPC_ERR_POLICY, true, 554, "5.7.30");
    assert_int_equal(smtpc_delivery_attempt_count(tc->d), 2);
    for (size_t i = 0; i < 2; i++) {
        assert_attempt(tc->d, i, i ? "mx2." DOMAIN : "mx1." DOMAIN, i ? IP_MX2 : IP_MX1,
                       "starttls", "none", SMTPC_ERR_REQUIRETLS);
        const smtpc_error *e = smtpc_delivery_attempt_error(tc->d, i);
        assert_int_equal(smtpc_error_code(e), 554);
        assert_string_equal(smtpc_error_enhanced_code(e), "5.7.30");
        assert_true(smtpc_delivery_attempt_pkix_verified(tc->d, i));
    }
    assert_int_equal(s1->tls_ok, 1);
    assert_int_equal(s1->mails, 0);
    assert_int_equal(s2->tls_ok, 1);
    assert_int_equal(s2->mails, 0);
}

/* REQUIRETLS with MTA-STS enforce and a host offering it: MAIL carries REQUIRETLS. */
static void test_requiretls_ok(void **state)
{
    tcase *tc = *state;
    policy_record(tc, enforce_mx1);
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, I);
    fake_srv *s = srv_start(tc, IP_MX1, (srv_script){.starttls = true, .requiretls = true});
    smtpc_message_set_flags(tc->m, SMTPC_MSG_REQUIRETLS);
    deliver(tc, 0);
    assert_delivered(tc);
    assert_int_equal(count_lines(s, "MAIL FROM:<sender@origin.test> REQUIRETLS"), 1);
    assert_int_equal(s->tls_ok, 1);
}

/* ------------------------------------------------------------------ */
/* DANE (24.9-24.12)                                                   */
/* ------------------------------------------------------------------ */

/* The MX record is insecure: no TLSA lookup at all, even with secure TLSA records. */
static void test_insecure_mx_no_tlsa(void **state)
{
    tcase *tc = *state;
    add(tc, DOMAIN, DNS_T_MX, I, "10 mx1." DOMAIN);
    add(tc, "mx1." DOMAIN, DNS_T_A, S, IP_MX1);
    char rec[100];
    snprintf(rec, sizeof rec, "3 1 1 %s", tpki.spki_sha256);
    tlsa(tc, rec);
    fake_srv *s = srv_start(tc, IP_MX1, tls);
    deliver(tc, 0);
    assert_delivered(tc);
    assert_int_equal(dns_fixture_lookups(tc->r, tc->tlsa_name, DNS_T_TLSA), 0);
    assert_int_equal(dns_fixture_lookups(tc->r, tc->tlsa_name, DNS_T_CNAME), 0);
    assert_attempt(tc->d, 0, "mx1." DOMAIN, IP_MX1, "opportunistic", "none", SMTPC_ERR_NONE);
    assert_int_equal(s->tls_ok, 1);
    assert_int_equal(smtpc_delivery_tlsrpt_host_count(tc->d), 1);
    assert_policy(smtpc_delivery_tlsrpt_host(tc->d, 0), "no-policy-found", "mx1." DOMAIN, 1, 0);
}

/* --dnssec off: no TLSA lookup even when everything is secure. */
static void test_dnssec_off(void **state)
{
    tcase *tc = *state;
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, S);
    char rec[100];
    snprintf(rec, sizeof rec, "3 1 1 %s", tpki.spki_sha256);
    tlsa(tc, rec);
    smtpc_deliver_config_set_dnssec(tc->dc, SMTPC_DNSSEC_OFF);
    fake_srv *s = srv_start(tc, IP_MX1, tls);
    deliver(tc, 0);
    assert_delivered(tc);
    assert_int_equal(dns_fixture_lookups(tc->r, tc->tlsa_name, DNS_T_TLSA), 0);
    assert_attempt(tc->d, 0, "mx1." DOMAIN, IP_MX1, "opportunistic", "none", SMTPC_ERR_NONE);
    assert_int_equal(s->tls_ok, 1);
}

/* Secure MX with a matching DANE-EE record: STARTTLS required, verified. */
static void test_dane_verified(void **state)
{
    tcase *tc = *state;
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, S);
    char rec[100];
    snprintf(rec, sizeof rec, "3 1 1 %s", tpki.spki_sha256);
    tlsa(tc, rec);
    fake_srv *s = srv_start(tc, IP_MX1, tls);
    deliver(tc, 0);
    assert_delivered(tc);
    assert_int_equal(dns_fixture_lookups(tc->r, tc->tlsa_name, DNS_T_TLSA), 1);
    assert_attempt(tc->d, 0, "mx1." DOMAIN, IP_MX1, "starttls", "verified", SMTPC_ERR_NONE);
    assert_int_equal(s->tls_ok, 1);
    assert_int_equal(smtpc_delivery_tlsrpt_host_count(tc->d), 1);
    assert_policy(smtpc_delivery_tlsrpt_host(tc->d, 0), "tlsa", "mx1." DOMAIN, 1, 0);
}

/* A DANE-EE record that does not match: transient, never plaintext. */
static void test_dane_mismatch(void **state)
{
    tcase *tc = *state;
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, S);
    tlsa(tc, "3 1 1 0000000000000000000000000000000000000000000000000000000000000000");
    fake_srv *s = srv_start(tc, IP_MX1, tls);
    deliver(tc, 0);
    assert_false(smtpc_delivery_ok(tc->d));
    assert_int_equal(smtpc_delivery_attempt_count(tc->d), 1);
    assert_attempt(tc->d, 0, "mx1." DOMAIN, IP_MX1, "starttls", "failed", SMTPC_ERR_TLS);
    assert_false(smtpc_error_permanent(smtpc_delivery_error(tc->d)));
    assert_int_equal(s->conns, 1);
    assert_int_equal(s->mails, 0);
    const smtpc_tlsrpt *h = smtpc_delivery_tlsrpt_host(tc->d, 0);
    assert_policy(h, "tlsa", "mx1." DOMAIN, 0, 1);
    assert_int_equal(smtpc_tlsrpt_detail_count(h), 1);
    assert_detail(h, 0, "validation-failure", "dane-no-match", "mx1." DOMAIN, 1);
}

/* Secure MX, TLSA lookup SERVFAIL: DANE required but unknown, host not dialed. */
static void test_tlsa_servfail(void **state)
{
    tcase *tc = *state;
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, S);
    fx_fail(tc, tc->tlsa_name, DNS_T_CNAME, DNS_NODATA, S, -1);
    fx_fail(tc, tc->tlsa_name, DNS_T_TLSA, DNS_SERVFAIL, I, -1);
    fake_srv *s = srv_start(tc, IP_MX1, tls);
    deliver(tc, 0);
    assert_domain_failed(tc, SMTPC_ERR_DNS, false, 0, "");
    assert_int_equal(smtpc_delivery_attempt_count(tc->d), 1);
    assert_attempt(tc->d, 0, "mx1." DOMAIN, NULL, "starttls", "failed", SMTPC_ERR_DNS);
    assert_int_equal(s->conns, 0);
    const smtpc_tlsrpt *h = smtpc_delivery_tlsrpt_host(tc->d, 0);
    assert_policy(h, "tlsa", "mx1." DOMAIN, 0, 0);
    assert_detail(h, 0, "tlsa-invalid", "", "mx1." DOMAIN, 1);
}

/* The same with EDE 6: dnssec-invalid, a failure on both results. */
static void test_tlsa_servfail_ede(void **state)
{
    tcase *tc = *state;
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, S);
    fx_fail(tc, tc->tlsa_name, DNS_T_CNAME, DNS_NODATA, S, -1);
    fx_fail(tc, tc->tlsa_name, DNS_T_TLSA, DNS_SERVFAIL, B, 6);
    fake_srv *s = srv_start(tc, IP_MX1, tls);
    deliver(tc, 0);
    assert_domain_failed(tc, SMTPC_ERR_DNS, false, 0, "");
    assert_attempt(tc->d, 0, "mx1." DOMAIN, NULL, "starttls", "failed", SMTPC_ERR_DNS);
    assert_int_equal(s->conns, 0);
    const smtpc_tlsrpt *h = smtpc_delivery_tlsrpt_host(tc->d, 0);
    assert_policy(h, "tlsa", "mx1." DOMAIN, 0, 1);
    assert_detail(h, 0, "dnssec-invalid", "extended-dns-error-6-dnssec-bogus", "mx1." DOMAIN, 1);
    assert_int_equal(smtpc_tlsrpt_failure(smtpc_delivery_tlsrpt_recipient_domain(tc->d)), 1);
}

/* TLSA SERVFAIL with "TLS-Required: No": delivered without DANE. */
static void test_tlsa_servfail_tls_required_no(void **state)
{
    tcase *tc = *state;
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, S);
    fx_fail(tc, tc->tlsa_name, DNS_T_CNAME, DNS_NODATA, S, -1);
    fx_fail(tc, tc->tlsa_name, DNS_T_TLSA, DNS_SERVFAIL, I, -1);
    fake_srv *s = srv_start(tc, IP_MX1, tls);
    deliver(tc, SMTPC_DELIVER_TLS_REQUIRED_NO);
    assert_delivered(tc);
    assert_int_equal(smtpc_delivery_attempt_count(tc->d), 1);
    assert_attempt(tc->d, 0, "mx1." DOMAIN, IP_MX1, "opportunistic", "none", SMTPC_ERR_NONE);
    assert_int_equal(s->tls_ok, 1);
    assert_int_equal(s->datas, 1);
}

/* Only unusable TLSA records: STARTTLS still required, no DANE verification. */
static void test_tlsa_all_unusable(void **state)
{
    tcase *tc = *state;
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, S);
    char rec[100];
    snprintf(rec, sizeof rec, "1 1 1 %s", tpki.spki_sha256); /* PKIX-EE: not for SMTP */
    tlsa(tc, rec);
    tlsa(tc, "3 1 1 abcd");                                  /* SHA-256 of 2 bytes */
    fake_srv *s = srv_start(tc, IP_MX1, tls);
    deliver(tc, 0);
    assert_delivered(tc);
    assert_attempt(tc->d, 0, "mx1." DOMAIN, IP_MX1, "starttls", "required-unusable",
                   SMTPC_ERR_NONE);
    assert_int_equal(smtpc_delivery_attempt_tlsa_count(tc->d, 0), 2);
    assert_int_equal(smtpc_delivery_attempt_tlsa_usable(tc->d, 0), 0);
    assert_int_equal(s->tls_ok, 1);
    const smtpc_tlsrpt *h = smtpc_delivery_tlsrpt_host(tc->d, 0);
    assert_string_equal(smtpc_tlsrpt_policy_type(h), "tlsa");
    assert_string_equal(smtpc_tlsrpt_policy_domain(h), "mx1." DOMAIN);
    assert_detail(h, 0, "tlsa-invalid", "all-unusable-records+ignored", "mx1." DOMAIN, 0);
}

/* Only unusable TLSA records and no STARTTLS: transient, never plaintext. */
static void test_tlsa_all_unusable_no_starttls(void **state)
{
    tcase *tc = *state;
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, S);
    tlsa(tc, "3 1 1 abcd");
    fake_srv *s = srv_start(tc, IP_MX1, plain);
    deliver(tc, 0);
    assert_false(smtpc_delivery_ok(tc->d));
    assert_false(smtpc_error_permanent(smtpc_delivery_error(tc->d)));
    assert_int_equal(smtpc_delivery_attempt_count(tc->d), 1);
    assert_attempt(tc->d, 0, "mx1." DOMAIN, IP_MX1, "starttls", "required-unusable",
                   SMTPC_ERR_TLS);
    assert_int_equal(s->conns, 1);
    assert_int_equal(s->mails, 0);
}

/* ------------------------------------------------------------------ */
/* Transactions (24.18, 24.20)                                         */
/* ------------------------------------------------------------------ */

/* LIMITS RCPTMAX=2 and 5 recipients: three transactions on one connection. */
static void test_rcptmax_batches(void **state)
{
    tcase *tc = *state;
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, I);
    fake_srv *s = srv_start(tc, IP_MX1, (srv_script){.rcptmax = 2});
    const char *to[] = {"r1@" DOMAIN, "r2@" DOMAIN, "r3@" DOMAIN, "r4@" DOMAIN, "r5@" DOMAIN};
    for (size_t i = 0; i < 5; i++)
        rcpt(tc, to[i]);
    deliver(tc, 0);
    assert_delivered(tc);
    assert_int_equal(s->conns, 1);
    assert_int_equal(s->mails, 3);
    assert_int_equal(s->datas, 3);
    assert_string_equal(s->log,
                        "CONNECT\nEHLO client.test\n"
                        "MAIL FROM:<sender@origin.test>\nRCPT TO:<r1@" DOMAIN ">\n"
                        "RCPT TO:<r2@" DOMAIN ">\nDATA\n.\n"
                        "MAIL FROM:<sender@origin.test>\nRCPT TO:<r3@" DOMAIN ">\n"
                        "RCPT TO:<r4@" DOMAIN ">\nDATA\n.\n"
                        "MAIL FROM:<sender@origin.test>\nRCPT TO:<r5@" DOMAIN ">\nDATA\n.\n"
                        "QUIT\n");
}

/* 452 to the third recipient: it goes in a new transaction on the same connection. */
static void test_rcpt_452_retried(void **state)
{
    tcase *tc = *state;
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, I);
    fake_srv *s = srv_start(tc, IP_MX1, (srv_script){.tx_limit = 2});
    rcpt(tc, "r1@" DOMAIN);
    rcpt(tc, "r2@" DOMAIN);
    rcpt(tc, "r3@" DOMAIN);
    deliver(tc, 0);
    assert_delivered(tc);
    assert_int_equal(s->conns, 1);
    assert_int_equal(s->mails, 2);
    assert_int_equal(s->datas, 2);
    assert_int_equal(count_lines(s, "RCPT TO:<r3@"), 2);
    assert_int_equal(smtpc_delivery_attempt_count(tc->d), 1);
}

/* A permanent RCPT rejection fails that recipient only. */
static void test_rcpt_550(void **state)
{
    tcase *tc = *state;
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, I);
    mx(tc, "20 mx2." DOMAIN, "mx2." DOMAIN, IP_MX2, I);
    fake_srv *s = srv_start(tc, IP_MX1,
                            (srv_script){.reject_rcpt = "<bad@",
                                         .reject_reply = "550 5.1.1 no such user"});
    fake_srv *s2 = srv_start(tc, IP_MX2, plain);
    rcpt(tc, "r1@" DOMAIN);
    rcpt(tc, "bad@" DOMAIN);
    rcpt(tc, "r3@" DOMAIN);
    deliver(tc, 0);
    assert_false(smtpc_delivery_ok(tc->d));
    assert_true(smtpc_message_rcpt_accepted(tc->m, 0));
    assert_int_equal(smtpc_error_code(smtpc_message_rcpt_result(tc->m, 0)), 250);
    assert_false(smtpc_message_rcpt_accepted(tc->m, 1));
    assert_err(smtpc_message_rcpt_result(tc->m, 1), SMTPC_ERR_STATUS, true, 550, "5.1.1");
    assert_true(smtpc_message_rcpt_accepted(tc->m, 2));
    assert_int_equal(smtpc_error_code(smtpc_message_rcpt_result(tc->m, 2)), 250);
    assert_int_equal(s->conns, 1);
    assert_int_equal(s->mails, 1);
    assert_int_equal(s->datas, 1);
    assert_int_equal(s2->conns, 0);
    assert_int_equal(smtpc_delivery_attempt_count(tc->d), 1);
}

/* A permanent MAIL rejection on the first MX: the second is never dialed. */
static void test_mail_550_stops(void **state)
{
    tcase *tc = *state;
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, I);
    mx(tc, "20 mx2." DOMAIN, "mx2." DOMAIN, IP_MX2, I);
    fake_srv *s1 = srv_start(tc, IP_MX1, (srv_script){.mail_reply = "550 5.7.1 sender refused"});
    fake_srv *s2 = srv_start(tc, IP_MX2, plain);
    deliver(tc, 0);
    assert_domain_failed(tc, SMTPC_ERR_STATUS, true, 550, "5.7.1");
    assert_int_equal(smtpc_error_command(smtpc_delivery_error(tc->d)), SMTPC_CMD_MAILFROM);
    assert_int_equal(smtpc_delivery_attempt_count(tc->d), 1);
    assert_attempt(tc->d, 0, "mx1." DOMAIN, IP_MX1, "opportunistic", "none", SMTPC_ERR_STATUS);
    assert_int_equal(s1->mails, 1);
    assert_int_equal(s2->conns, 0);
}

/* A transient MAIL rejection on the first MX: the next MX takes the message. */
static void test_mail_451_next_mx(void **state)
{
    tcase *tc = *state;
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, I);
    mx(tc, "20 mx2." DOMAIN, "mx2." DOMAIN, IP_MX2, I);
    fake_srv *s1 = srv_start(tc, IP_MX1, (srv_script){.mail_reply = "451 4.3.0 try later"});
    fake_srv *s2 = srv_start(tc, IP_MX2, plain);
    deliver(tc, 0);
    assert_delivered(tc);
    assert_int_equal(smtpc_delivery_attempt_count(tc->d), 2);
    assert_attempt(tc->d, 0, "mx1." DOMAIN, IP_MX1, "opportunistic", "none", SMTPC_ERR_STATUS);
    assert_err(smtpc_delivery_attempt_error(tc->d, 0), SMTPC_ERR_STATUS, false, 451, "4.3.0");
    assert_attempt(tc->d, 1, "mx2." DOMAIN, IP_MX2, "opportunistic", "none", SMTPC_ERR_NONE);
    assert_int_equal(s1->mails, 1);
    assert_int_equal(s1->datas, 0);
    assert_int_equal(s2->datas, 1);
}

/* A transient RCPT rejection of the only recipient: the next MX is tried (24.18, 24.20). */
static void test_rcpt_451_next_mx(void **state)
{
    tcase *tc = *state;
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, I);
    mx(tc, "20 mx2." DOMAIN, "mx2." DOMAIN, IP_MX2, I);
    fake_srv *s1 = srv_start(tc, IP_MX1,
                             (srv_script){.reject_rcpt = "<rcpt1@",
                                          .reject_reply = "451 4.7.1 greylisted"});
    fake_srv *s2 = srv_start(tc, IP_MX2, plain);
    deliver(tc, 0);
    assert_delivered(tc);
    assert_int_equal(smtpc_delivery_attempt_count(tc->d), 2);
    assert_attempt(tc->d, 0, "mx1." DOMAIN, IP_MX1, "opportunistic", "none", SMTPC_ERR_STATUS);
    const smtpc_error *e = smtpc_delivery_attempt_error(tc->d, 0);
    assert_err(e, SMTPC_ERR_STATUS, false, 451, "4.7.1");
    assert_int_equal(smtpc_error_command(e), SMTPC_CMD_RCPTTO);
    assert_attempt(tc->d, 1, "mx2." DOMAIN, IP_MX2, "opportunistic", "none", SMTPC_ERR_NONE);
    assert_int_equal(s1->datas, 0);
    assert_int_equal(s2->datas, 1);
}

/* The same with a single MX: the recipient carries the 451, transient. */
static void test_rcpt_451_only_mx(void **state)
{
    tcase *tc = *state;
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, I);
    srv_start(tc, IP_MX1,
              (srv_script){.reject_rcpt = "<rcpt1@", .reject_reply = "451 4.7.1 greylisted"});
    deliver(tc, 0);
    assert_false(smtpc_delivery_ok(tc->d));
    assert_false(smtpc_message_rcpt_accepted(tc->m, 0));
    assert_err(smtpc_message_rcpt_result(tc->m, 0), SMTPC_ERR_STATUS, false, 451, "4.7.1");
}

/* A transient reply to the end of data for every recipient: next MX. */
static void test_data_451_next_mx(void **state)
{
    tcase *tc = *state;
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, I);
    mx(tc, "20 mx2." DOMAIN, "mx2." DOMAIN, IP_MX2, I);
    srv_start(tc, IP_MX1, (srv_script){.data_reply = "451 4.3.0 queue full"});
    fake_srv *s2 = srv_start(tc, IP_MX2, plain);
    rcpt(tc, "r1@" DOMAIN);
    rcpt(tc, "r2@" DOMAIN);
    deliver(tc, 0);
    assert_delivered(tc);
    assert_int_equal(smtpc_delivery_attempt_count(tc->d), 2);
    assert_err(smtpc_delivery_attempt_error(tc->d, 0), SMTPC_ERR_STATUS, false, 451, "4.3.0");
    assert_int_equal(s2->datas, 1);
}

/* A permanent reply to the end of data: every recipient failed, no next MX. */
static void test_data_554_permanent(void **state)
{
    tcase *tc = *state;
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, I);
    mx(tc, "20 mx2." DOMAIN, "mx2." DOMAIN, IP_MX2, I);
    srv_start(tc, IP_MX1, (srv_script){.data_reply = "554 5.6.0 content rejected"});
    fake_srv *s2 = srv_start(tc, IP_MX2, plain);
    rcpt(tc, "r1@" DOMAIN);
    rcpt(tc, "r2@" DOMAIN);
    deliver(tc, 0);
    assert_false(smtpc_delivery_ok(tc->d));
    for (size_t i = 0; i < 2; i++) {
        assert_false(smtpc_message_rcpt_accepted(tc->m, i) &&
                     smtpc_error_code(smtpc_message_rcpt_result(tc->m, i)) == 250);
        assert_err(smtpc_message_rcpt_result(tc->m, i), SMTPC_ERR_STATUS, true, 554, "5.6.0");
    }
    assert_int_equal(s2->conns, 0);
}

/* The connection is lost right after "220" to STARTTLS: plaintext retry. */
static void test_starttls_dropped_plaintext(void **state)
{
    tcase *tc = *state;
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, I);
    fake_srv *s = srv_start(tc, IP_MX1, (srv_script){.starttls = true, .drop_at_tls = true});
    deliver(tc, 0);
    assert_delivered(tc);
    assert_int_equal(smtpc_delivery_attempt_count(tc->d), 2);
    assert_non_null(smtpc_delivery_attempt_error(tc->d, 0));
    assert_int_equal(smtpc_error_command(smtpc_delivery_attempt_error(tc->d, 0)),
                     SMTPC_CMD_STARTTLS);
    assert_attempt(tc->d, 1, "mx1." DOMAIN, IP_MX1, "none", "none", SMTPC_ERR_NONE);
    assert_int_equal(s->conns, 2);
    assert_int_equal(s->datas, 1);
}

/* Opportunistic TLS does not enforce PKIX: a certificate for other names is fine. */
static void test_opportunistic_unverified(void **state)
{
    tcase *tc = *state;
    mx(tc, "10 mx3." DOMAIN, "mx3." DOMAIN, IP_MX1, I);
    fake_srv *s = srv_start(tc, IP_MX1, tls);
    deliver(tc, 0);
    assert_delivered(tc);
    assert_int_equal(smtpc_delivery_attempt_count(tc->d), 1);
    assert_attempt(tc->d, 0, "mx3." DOMAIN, IP_MX1, "opportunistic", "none", SMTPC_ERR_NONE);
    assert_false(smtpc_delivery_attempt_pkix_verified(tc->d, 0));
    assert_int_equal(s->tls_ok, 1);
    /* Spec 5.5, 5.7: PKIX is evaluated and reported, not enforced. */
    const smtpc_tlsrpt *r = smtpc_delivery_tlsrpt_recipient_domain(tc->d);
    assert_policy(r, "no-policy-found", DOMAIN, 1, 0);
    assert_detail(r, 0, "certificate-host-mismatch", "", "mx3." DOMAIN, 1);
}

/* MTA-STS enforce and a certificate that does not verify: transient, never plaintext. */
static void test_mtasts_enforce_bad_cert(void **state)
{
    tcase *tc = *state;
    policy_record(tc, "version: STSv1\nmode: enforce\nmx: *." DOMAIN "\nmax_age: 86400\n");
    mx(tc, "10 mx3." DOMAIN, "mx3." DOMAIN, IP_MX1, I);
    fake_srv *s = srv_start(tc, IP_MX1, tls);
    deliver(tc, 0);
    assert_false(smtpc_delivery_ok(tc->d));
    assert_int_equal(smtpc_delivery_attempt_count(tc->d), 1);
    assert_attempt(tc->d, 0, "mx3." DOMAIN, IP_MX1, "starttls", "none", SMTPC_ERR_TLS);
    assert_false(smtpc_error_permanent(smtpc_delivery_error(tc->d)));
    assert_false(smtpc_delivery_attempt_pkix_verified(tc->d, 0));
    assert_int_equal(s->conns, 1);
    assert_int_equal(s->mails, 0);
    const smtpc_tlsrpt *r = smtpc_delivery_tlsrpt_recipient_domain(tc->d);
    assert_policy(r, "sts", DOMAIN, 0, 1);
    assert_int_equal(smtpc_tlsrpt_detail_count(r), 1);
    assert_detail(r, 0, "certificate-host-mismatch", "", "mx3." DOMAIN, 1);
}

/* The MTA-STS record lookup fails: deferred, nothing dialed (24.4). */
static void test_mtasts_lookup_fails(void **state)
{
    tcase *tc = *state;
    fx_fail(tc, "_mta-sts." DOMAIN, DNS_T_TXT, DNS_SERVFAIL, I, -1);
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, I);
    fake_srv *s = srv_start(tc, IP_MX1, plain);
    deliver(tc, 0);
    assert_domain_failed(tc, SMTPC_ERR_DNS, false, 0, "");
    assert_int_equal(smtpc_delivery_attempt_count(tc->d), 0);
    assert_int_equal(s->conns, 0);
    assert_non_null(smtpc_delivery_mtasts_error(tc->d));
    assert_null(smtpc_delivery_mtasts_mode(tc->d));
    assert_int_equal(smtpc_tlsrpt_failure(smtpc_delivery_tlsrpt_recipient_domain(tc->d)), 1);
}

/* ... and with "TLS-Required: No" the message goes without a policy. */
static void test_mtasts_lookup_fails_tls_required_no(void **state)
{
    tcase *tc = *state;
    fx_fail(tc, "_mta-sts." DOMAIN, DNS_T_TXT, DNS_SERVFAIL, I, -1);
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, I);
    fake_srv *s = srv_start(tc, IP_MX1, plain);
    deliver(tc, SMTPC_DELIVER_TLS_REQUIRED_NO);
    assert_delivered(tc);
    assert_int_equal(s->datas, 1);
}

/* A record but no policy served: no MTA-STS, the error is reported. */
static void test_mtasts_no_policy_served(void **state)
{
    tcase *tc = *state;
    policy_record(tc, NULL);
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, I);
    fake_srv *s = srv_start(tc, IP_MX1, plain);
    deliver(tc, 0);
    assert_delivered(tc);
    assert_null(smtpc_delivery_mtasts_mode(tc->d));
    assert_string_equal(smtpc_delivery_mtasts_error(tc->d), "no-policy-served");
    assert_attempt(tc->d, 0, "mx1." DOMAIN, IP_MX1, "opportunistic", "none", SMTPC_ERR_NONE);
    assert_int_equal(s->datas, 1);
}

/* An address literal is dialed directly: no MX, no MTA-STS. */
static void test_ip_literal(void **state)
{
    tcase *tc = *state;
    fake_srv *s = srv_start(tc, IP_MX1, tls);
    rcpt(tc, "rcpt1@[" IP_MX1 "]");
    deliver_to(tc, "[" IP_MX1 "]", 0);
    assert_delivered(tc);
    assert_int_equal(smtpc_delivery_attempt_count(tc->d), 1);
    assert_attempt(tc->d, 0, IP_MX1, IP_MX1, "opportunistic", "none", SMTPC_ERR_NONE);
    assert_int_equal(s->tls_ok, 1);
    assert_int_equal(dns_fixture_lookups(tc->r, "_mta-sts." IP_MX1 ".", DNS_T_TXT), 0);
}

/* A host whose first address refuses: the second address of the same host. */
static void test_second_address(void **state)
{
    tcase *tc = *state;
    add(tc, DOMAIN, DNS_T_MX, I, "10 mx1." DOMAIN);
    add(tc, "mx1." DOMAIN, DNS_T_A, I, IP_DEAD);
    add(tc, "mx1." DOMAIN, DNS_T_A, I, IP_MX1);
    fake_srv *s = srv_start(tc, IP_MX1, plain);
    deliver(tc, 0);
    assert_delivered(tc);
    assert_int_equal(smtpc_delivery_attempt_count(tc->d), 1);
    assert_attempt(tc->d, 0, "mx1." DOMAIN, IP_MX1, "opportunistic", "none", SMTPC_ERR_NONE);
    assert_int_equal(smtpc_delivery_attempt_address_count(tc->d, 0), 2);
    assert_int_equal(s->conns, 1);
}

/* REQUIRETLS with DANE (a usable record) and a host offering REQUIRETLS. */
static void test_requiretls_dane(void **state)
{
    tcase *tc = *state;
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, S);
    char rec[100];
    snprintf(rec, sizeof rec, "3 1 1 %s", tpki.spki_sha256);
    tlsa(tc, rec);
    fake_srv *s = srv_start(tc, IP_MX1, (srv_script){.starttls = true, .requiretls = true});
    smtpc_message_set_flags(tc->m, SMTPC_MSG_REQUIRETLS);
    deliver(tc, 0);
    assert_delivered(tc);
    assert_attempt(tc->d, 0, "mx1." DOMAIN, IP_MX1, "starttls", "verified", SMTPC_ERR_NONE);
    assert_int_equal(count_lines(s, "MAIL FROM:<sender@origin.test> REQUIRETLS"), 1);
}

/* REQUIRETLS when the TLSA records are all unusable: no mechanism, not dialed. */
static void test_requiretls_dane_unusable(void **state)
{
    tcase *tc = *state;
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, S);
    tlsa(tc, "3 1 1 abcd");
    fake_srv *s = srv_start(tc, IP_MX1, (srv_script){.starttls = true, .requiretls = true});
    smtpc_message_set_flags(tc->m, SMTPC_MSG_REQUIRETLS);
    deliver(tc, 0);
    assert_domain_failed(tc, SMTPC_ERR_POLICY, true, 554, "5.7.30");
    assert_attempt(tc->d, 0, "mx1." DOMAIN, NULL, "starttls", "required-unusable",
                   SMTPC_ERR_POLICY);
    assert_int_equal(s->conns, 0);
}

/* The connection is lost in the second of three RCPTMAX batches: the first
 * batch is delivered, the others fail transiently, each with an error. */
static void test_rcptmax_connection_lost(void **state)
{
    tcase *tc = *state;
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, I);
    fake_srv *s = srv_start(tc, IP_MX1, (srv_script){.rcptmax = 1, .drop_at_mail = 2});
    rcpt(tc, "r1@" DOMAIN);
    rcpt(tc, "r2@" DOMAIN);
    rcpt(tc, "r3@" DOMAIN);
    deliver(tc, 0);
    assert_false(smtpc_delivery_ok(tc->d));
    assert_true(smtpc_message_rcpt_accepted(tc->m, 0));
    assert_int_equal(smtpc_error_code(smtpc_message_rcpt_result(tc->m, 0)), 250);
    for (size_t i = 1; i < 3; i++) {
        const smtpc_error *e = smtpc_message_rcpt_result(tc->m, i);
        assert_false(smtpc_message_rcpt_accepted(tc->m, i));
        if (smtpc_error_get_kind(e) == SMTPC_ERR_NONE)
            fail_msg("recipient %zu failed without an error", i);
        assert_false(smtpc_error_permanent(e));
    }
    assert_int_equal(s->conns, 1);
    assert_int_equal(s->datas, 1);
}

/* Enforce: the first MX is not in the policy (skipped, never dialed), the second is. */
static void test_mtasts_enforce_skip_first(void **state)
{
    tcase *tc = *state;
    policy_record(tc, "version: STSv1\nmode: enforce\nmx: mx2." DOMAIN "\nmax_age: 86400\n");
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, I);
    mx(tc, "20 mx2." DOMAIN, "mx2." DOMAIN, IP_MX2, I);
    fake_srv *s1 = srv_start(tc, IP_MX1, tls);
    fake_srv *s2 = srv_start(tc, IP_MX2, tls);
    deliver(tc, 0);
    assert_delivered(tc);
    assert_int_equal(smtpc_delivery_attempt_count(tc->d), 2);
    assert_attempt(tc->d, 0, "mx1." DOMAIN, NULL, "starttls", "none", SMTPC_ERR_POLICY);
    assert_attempt(tc->d, 1, "mx2." DOMAIN, IP_MX2, "starttls", "none", SMTPC_ERR_NONE);
    assert_true(smtpc_delivery_attempt_pkix_verified(tc->d, 1));
    assert_int_equal(s1->conns, 0);
    assert_int_equal(s2->datas, 1);
    const smtpc_tlsrpt *r = smtpc_delivery_tlsrpt_recipient_domain(tc->d);
    assert_policy(r, "sts", DOMAIN, 1, 1);
    assert_detail(r, 0, "validation-failure", "mtasts-policy-mx-mismatch", "mx1." DOMAIN, 1);
}

/* A policy in mode none: reported as the mode, no constraint, nothing to report on. */
static void test_mtasts_mode_none(void **state)
{
    tcase *tc = *state;
    policy_record(tc, "version: STSv1\nmode: none\nmax_age: 86400\n");
    mx(tc, "10 mx9." DOMAIN, "mx9." DOMAIN, IP_MX1, I);
    fake_srv *s = srv_start(tc, IP_MX1, plain);
    deliver(tc, 0);
    assert_delivered(tc);
    assert_string_equal(smtpc_delivery_mtasts_mode(tc->d), "none");
    assert_attempt(tc->d, 0, "mx9." DOMAIN, IP_MX1, "opportunistic", "none", SMTPC_ERR_NONE);
    assert_int_equal(smtpc_delivery_attempt_mtasts_match(tc->d, 0), -1);
    assert_string_equal(smtpc_tlsrpt_policy_type(smtpc_delivery_tlsrpt_recipient_domain(tc->d)),
                        "no-policy-found");
    assert_int_equal(s->datas, 1);
}

/* "TLS-Required: No" and a DANE mismatch: recorded, delivered over TLS anyway. */
static void test_dane_mismatch_tls_required_no(void **state)
{
    tcase *tc = *state;
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, S);
    tlsa(tc, "3 1 1 0000000000000000000000000000000000000000000000000000000000000000");
    fake_srv *s = srv_start(tc, IP_MX1, tls);
    deliver(tc, SMTPC_DELIVER_TLS_REQUIRED_NO);
    assert_delivered(tc);
    assert_int_equal(smtpc_delivery_attempt_count(tc->d), 1);
    assert_attempt(tc->d, 0, "mx1." DOMAIN, IP_MX1, "starttls", "failed", SMTPC_ERR_NONE);
    assert_int_equal(s->tls_ok, 1);
    assert_int_equal(s->datas, 1);
    /* Spec 5.4, 5.7: the failure is a detail; the handshake itself succeeded. */
    const smtpc_tlsrpt *h = smtpc_delivery_tlsrpt_host(tc->d, 0);
    assert_policy(h, "tlsa", "mx1." DOMAIN, 1, 0);
    assert_int_equal(smtpc_tlsrpt_detail_count(h), 1);
    assert_detail(h, 0, "validation-failure", "dane-no-match", "mx1." DOMAIN, 1);
}

/* Implicit MX whose (absent) MX answer is insecure: the original next hop is
 * not authentic, so no TLSA lookup although the addresses are secure (24.9). */
static void test_implicit_mx_insecure_no_tlsa(void **state)
{
    tcase *tc = *state;
    fx_fail(tc, DOMAIN, DNS_T_CNAME, DNS_NODATA, S, -1);
    fx_fail(tc, DOMAIN, DNS_T_MX, DNS_NODATA, I, -1);
    fx_fail(tc, DOMAIN, DNS_T_AAAA, DNS_NODATA, S, -1);
    add(tc, DOMAIN, DNS_T_A, S, IP_MX1);
    char name[128], rec[100];
    snprintf(name, sizeof name, "_%u._tcp." DOMAIN ".", tc->port);
    snprintf(rec, sizeof rec, "3 1 1 %s", tpki.spki_sha256);
    add(tc, name, DNS_T_TLSA, S, rec);
    fake_srv *s = srv_start(tc, IP_MX1, tls);
    deliver(tc, 0);
    assert_delivered(tc);
    assert_attempt(tc->d, 0, DOMAIN, IP_MX1, "opportunistic", "none", SMTPC_ERR_NONE);
    assert_int_equal(dns_fixture_lookups(tc->r, name, DNS_T_CNAME), 0);
    assert_int_equal(dns_fixture_lookups(tc->r, name, DNS_T_TLSA), 0);
    assert_int_equal(s->tls_ok, 1);
}

/* The same domain with a secure MX answer: DANE applies to the implicit MX. */
static void test_implicit_mx_secure_dane(void **state)
{
    tcase *tc = *state;
    fx_fail(tc, DOMAIN, DNS_T_CNAME, DNS_NODATA, S, -1);
    fx_fail(tc, DOMAIN, DNS_T_MX, DNS_NODATA, S, -1);
    fx_fail(tc, DOMAIN, DNS_T_AAAA, DNS_NODATA, S, -1);
    add(tc, DOMAIN, DNS_T_A, S, IP_MX1);
    char name[128], rec[100];
    snprintf(name, sizeof name, "_%u._tcp." DOMAIN ".", tc->port);
    snprintf(rec, sizeof rec, "3 1 1 %s", tpki.spki_sha256);
    add(tc, name, DNS_T_TLSA, S, rec);
    fake_srv *s = srv_start(tc, IP_MX1, tls);
    deliver(tc, 0);
    assert_delivered(tc);
    assert_attempt(tc->d, 0, DOMAIN, IP_MX1, "starttls", "verified", SMTPC_ERR_NONE);
    assert_int_equal(dns_fixture_lookups(tc->r, name, DNS_T_TLSA), 1);
    assert_int_equal(s->tls_ok, 1);
}

/* With PIPELINING, a transient MAIL refusal (the RCPTs then get 503): next MX. */
static void test_pipelined_mail_451_next_mx(void **state)
{
    tcase *tc = *state;
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, I);
    mx(tc, "20 mx2." DOMAIN, "mx2." DOMAIN, IP_MX2, I);
    fake_srv *s1 = srv_start(tc, IP_MX1,
                             (srv_script){.pipelining = true, .mail_reply = "451 4.3.0 try later"});
    fake_srv *s2 = srv_start(tc, IP_MX2, (srv_script){.pipelining = true});
    rcpt(tc, "r1@" DOMAIN);
    rcpt(tc, "r2@" DOMAIN);
    deliver(tc, 0);
    assert_delivered(tc);
    assert_int_equal(smtpc_delivery_attempt_count(tc->d), 2);
    assert_err(smtpc_delivery_attempt_error(tc->d, 0), SMTPC_ERR_STATUS, false, 451, "4.3.0");
    assert_int_equal(count_lines(s1, "RCPT TO:"), 2); /* pipelined */
    assert_int_equal(s1->datas, 0);
    assert_int_equal(s2->datas, 1);
}

/* With PIPELINING and RCPTMAX: the batches are still transactions on one connection. */
static void test_pipelined_rcptmax(void **state)
{
    tcase *tc = *state;
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, I);
    fake_srv *s = srv_start(tc, IP_MX1, (srv_script){.pipelining = true, .rcptmax = 2});
    for (int i = 1; i <= 5; i++) {
        char a[64];
        snprintf(a, sizeof a, "r%d@" DOMAIN, i);
        rcpt(tc, a);
    }
    deliver(tc, 0);
    assert_delivered(tc);
    assert_int_equal(s->conns, 1);
    assert_int_equal(s->mails, 3);
    assert_int_equal(s->datas, 3);
}

/* REQUIRETLS, enforce, RCPTMAX=1 at the first MX which lacks REQUIRETLS: the
 * host fails as a whole and the second MX (offering it) gets everything. */
static void test_requiretls_missing_with_rcptmax(void **state)
{
    tcase *tc = *state;
    policy_record(tc, "version: STSv1\nmode: enforce\nmx: *." DOMAIN "\nmax_age: 86400\n");
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, I);
    mx(tc, "20 mx2." DOMAIN, "mx2." DOMAIN, IP_MX2, I);
    fake_srv *s1 = srv_start(tc, IP_MX1, (srv_script){.starttls = true, .rcptmax = 1});
    fake_srv *s2 = srv_start(tc, IP_MX2, (srv_script){.starttls = true, .requiretls = true});
    rcpt(tc, "r1@" DOMAIN);
    rcpt(tc, "r2@" DOMAIN);
    smtpc_message_set_flags(tc->m, SMTPC_MSG_REQUIRETLS);
    deliver(tc, 0);
    assert_delivered(tc);
    assert_attempt(tc->d, 0, "mx1." DOMAIN, IP_MX1, "starttls", "none", SMTPC_ERR_REQUIRETLS);
    assert_int_equal(s1->mails, 0);
    assert_int_equal(s2->datas, 1);
}

/* RFC 8689 5: "TLS-Required: No" is ignored on a REQUIRETLS message, so a
 * DANE failure is not waived. */
static void test_tls_required_no_ignored_with_requiretls(void **state)
{
    tcase *tc = *state;
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, IP_MX1, S);
    tlsa(tc, "3 1 1 0000000000000000000000000000000000000000000000000000000000000000");
    fake_srv *s = srv_start(tc, IP_MX1, (srv_script){.starttls = true, .requiretls = true});
    smtpc_message_set_flags(tc->m, SMTPC_MSG_REQUIRETLS);
    deliver(tc, SMTPC_DELIVER_TLS_REQUIRED_NO);
    assert_false(smtpc_delivery_ok(tc->d));
    assert_attempt(tc->d, 0, "mx1." DOMAIN, IP_MX1, "starttls", "failed", SMTPC_ERR_TLS);
    assert_int_equal(s->mails, 0);
}

/* Spec 24.10: a host whose address lookup fails (no DNSSEC error) has no
 * TLSRPT host result; every listed result names its policy. */
static void test_host_without_address_unreported(void **state)
{
    tcase *tc = *state;
    mx(tc, "10 mx1." DOMAIN, "mx1." DOMAIN, NULL, I);
    mx(tc, "20 mx2." DOMAIN, "mx2." DOMAIN, IP_MX2, I);
    srv_start(tc, IP_MX2, plain);
    deliver(tc, 0);
    assert_delivered(tc);
    assert_attempt(tc->d, 0, "mx1." DOMAIN, NULL, "opportunistic", "none", SMTPC_ERR_DNS);
    assert_int_equal(smtpc_delivery_tlsrpt_host_count(tc->d), 1);
    assert_string_equal(smtpc_tlsrpt_policy_type(smtpc_delivery_tlsrpt_host(tc->d, 0)),
                        "no-policy-found");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_null_mx),
        T(test_requiretls_missing_with_rcptmax),
        T(test_tls_required_no_ignored_with_requiretls),
        T(test_host_without_address_unreported),
        T(test_mx_servfail),
        T(test_mx_servfail_ede),
        T(test_nxdomain),
        T(test_implicit_mx),
        T(test_mx_order),
        T(test_mx_fallback),
        T(test_mtasts_enforce_mismatch),
        T(test_mtasts_enforce_no_starttls),
        T(test_mtasts_enforce_ok),
        T(test_mtasts_testing_mismatch),
        T(test_mtasts_enforce_skip_first),
        T(test_mtasts_mode_none),
        T(test_tls_required_no_enforce_mismatch),
        T(test_starttls_refused_plaintext),
        T(test_requiretls_no_mechanism),
        T(test_requiretls_not_offered),
        T(test_requiretls_ok),
        T(test_insecure_mx_no_tlsa),
        T(test_dnssec_off),
        T(test_implicit_mx_insecure_no_tlsa),
        T(test_implicit_mx_secure_dane),
        T(test_dane_verified),
        T(test_dane_mismatch),
        T(test_dane_mismatch_tls_required_no),
        T(test_tlsa_servfail),
        T(test_tlsa_servfail_ede),
        T(test_tlsa_servfail_tls_required_no),
        T(test_tlsa_all_unusable),
        T(test_tlsa_all_unusable_no_starttls),
        T(test_rcptmax_batches),
        T(test_rcpt_452_retried),
        T(test_rcptmax_connection_lost),
        T(test_rcpt_550),
        T(test_mail_550_stops),
        T(test_mail_451_next_mx),
        T(test_pipelined_mail_451_next_mx),
        T(test_pipelined_rcptmax),
        T(test_rcpt_451_next_mx),
        T(test_rcpt_451_only_mx),
        T(test_data_451_next_mx),
        T(test_data_554_permanent),
        T(test_starttls_dropped_plaintext),
        T(test_opportunistic_unverified),
        T(test_mtasts_enforce_bad_cert),
        T(test_mtasts_lookup_fails),
        T(test_mtasts_lookup_fails_tls_required_no),
        T(test_mtasts_no_policy_served),
        T(test_ip_literal),
        T(test_second_address),
        T(test_requiretls_dane),
        T(test_requiretls_dane_unusable),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
