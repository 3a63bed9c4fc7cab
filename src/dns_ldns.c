/* Stub resolver backend: asks the configured recursive resolvers and, in
 * trust-ad mode, believes their AD bit (what Postfix does with
 * smtp_dns_support_level = dnssec). ldns builds queries and parses answers;
 * the transport is ours so that servers can have their own ports and the
 * whole lookup, retries included, stays within one deadline.
 *
 * Also holds the response-to-dns_answer conversion shared with the libunbound
 * backend, and the server list from the configuration or resolv.conf. */
#include "dns_backend.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ldns/ldns.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define EDNS_UDP_SIZE 1232   /* the DNS flag day 2020 value: no IP fragmentation */
#define MAX_CNAME_HOPS 16
#define MAX_MSG 65535
#define EDNS_OPT_EDE 15      /* RFC 8914 2 */

/* ---------------------------------------------------------------------- */
/* Response parsing                                                        */

static const char *rcode_name(int rc)
{
    static const char *const names[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
                                        "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
                                        "NXRRSET", "NOTAUTH", "NOTZONE"};
    if (rc >= 0 && (size_t)rc < sizeof names / sizeof names[0])
        return names[rc];
    return "rcode";
}

static const char *type_name(dns_type t)
{
    switch (t) {
    case DNS_T_A: return "A";
    case DNS_T_CNAME: return "CNAME";
    case DNS_T_MX: return "MX";
    case DNS_T_TXT: return "TXT";
    case DNS_T_AAAA: return "AAAA";
    case DNS_T_TLSA: return "TLSA";
    }
    return "?";
}

static void answer_reset(dns_answer *a)
{
    memset(a, 0, sizeof *a);
    a->ede = -1;
}

/* Copies untrusted UTF-8 text: control characters become '?', and a
 * multi-byte sequence cut by the truncation is dropped. */
static void copy_text(char *dst, size_t cap, const uint8_t *src, size_t n)
{
    size_t k = n < cap - 1 ? n : cap - 1;
    for (size_t i = 0; i < k; i++)
        dst[i] = (src[i] < 0x20 || src[i] == 0x7f) ? '?' : (char)src[i];
    if (k < n && k > 0) {
        size_t j = k;
        while (j > 0 && k - j < 4 && ((uint8_t)dst[j - 1] & 0xC0) == 0x80)
            j--;
        if (j > 0 && ((uint8_t)dst[j - 1] & 0xC0) == 0xC0) {
            uint8_t lead = (uint8_t)dst[j - 1];
            size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
            if (j - 1 + need > k)
                k = j - 1;
        }
    }
    dst[k] = '\0';
}

/* RFC 8914 2: OPT option 15 holds a 2-byte info code and UTF-8 text. The
 * first EDE option is kept. */
static void ede_parse(const ldns_pkt *p, dns_answer *out)
{
    const ldns_rdf *d = ldns_pkt_edns_data(p);
    if (!d)
        return;
    const uint8_t *b = ldns_rdf_data(d);
    size_t n = ldns_rdf_size(d), i = 0;
    while (i + 4 <= n) {
        size_t code = (size_t)b[i] << 8 | b[i + 1];
        size_t olen = (size_t)b[i + 2] << 8 | b[i + 3];
        i += 4;
        if (olen > n - i)
            return;
        if (code == EDNS_OPT_EDE && olen >= 2 && out->ede < 0) {
            out->ede = b[i] << 8 | b[i + 1];
            copy_text(out->ede_text, sizeof out->ede_text, b + i + 2, olen - 2);
        }
        i += olen;
    }
}

static void set_failure(dns_answer *out, dns_status st, int rcode)
{
    out->status = st;
    out->sec = DNS_INSECURE; /* spec 22.6: failed lookups are not authentic */
    if (out->ede >= 0)
        snprintf(out->why, sizeof out->why, "%s (extended error %d %s%s%s)", rcode_name(rcode),
                 out->ede, dns_ede_name(out->ede), out->ede_text[0] ? ": " : "", out->ede_text);
    else
        snprintf(out->why, sizeof out->why, "%s", rcode_name(rcode));
}

/* A domain name as text: lowercased, without the trailing dot ("" for the
 * root, the null MX of RFC 7505). */
static char *dname_text(const ldns_rdf *d)
{
    if (ldns_rdf_get_type(d) != LDNS_RDF_TYPE_DNAME)
        return NULL;
    char *s = ldns_rdf2str(d);
    if (!s)
        return NULL;
    size_t n = strlen(s);
    if (n > 0 && s[n - 1] == '.')
        s[--n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 'A' && s[i] <= 'Z')
            s[i] = (char)(s[i] - 'A' + 'a');
    return s;
}

/* The records of type t at the end of the CNAME chain starting at the
 * question name (RFC 1034 3.6.2; a resolver puts the chain in the answer
 * section). A CNAME query stops at the first name. */
static size_t select_records(const ldns_pkt *p, dns_type t, const ldns_rr **sel, size_t max)
{
    const ldns_rr_list *ans = ldns_pkt_answer(p);
    const ldns_rdf *cur = ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_question(p), 0));
    for (int hop = 0; hop <= MAX_CNAME_HOPS; hop++) {
        const ldns_rdf *next = NULL;
        size_t n = 0;
        for (size_t i = 0; i < ldns_rr_list_rr_count(ans); i++) {
            const ldns_rr *rr = ldns_rr_list_rr(ans, i);
            if (ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN ||
                ldns_dname_compare(ldns_rr_owner(rr), cur) != 0)
                continue;
            if (ldns_rr_get_type(rr) == (ldns_rr_type)t) {
                if (n < max)
                    sel[n++] = rr;
            } else if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_CNAME && ldns_rr_rd_count(rr) == 1) {
                next = ldns_rr_rdf(rr, 0);
            }
        }
        if (n > 0 || !next)
            return n;
        cur = next;
    }
    return 0; /* a loop or an overlong chain */
}

/* Record converters: 1 converted, 0 malformed (skipped), -1 out of memory. */
static int conv_addr(const ldns_rr *rr, int af, dns_answer *out)
{
    const ldns_rdf *d = ldns_rr_rdf(rr, 0);
    char buf[INET6_ADDRSTRLEN];
    size_t want = af == AF_INET ? 4 : 16;
    if (ldns_rr_rd_count(rr) != 1 || ldns_rdf_size(d) != want ||
        !inet_ntop(af, ldns_rdf_data(d), buf, sizeof buf))
        return 0;
    out->text[out->n] = strdup(buf);
    return out->text[out->n] ? 1 : -1;
}

static int conv_cname(const ldns_rr *rr, dns_answer *out)
{
    if (ldns_rr_rd_count(rr) != 1)
        return 0;
    out->text[out->n] = dname_text(ldns_rr_rdf(rr, 0));
    return out->text[out->n] ? 1 : -1;
}

static int conv_mx(const ldns_rr *rr, dns_answer *out)
{
    if (ldns_rr_rd_count(rr) != 2 || ldns_rdf_size(ldns_rr_rdf(rr, 0)) != 2)
        return 0;
    out->pref[out->n] = ldns_rdf2native_int16(ldns_rr_rdf(rr, 0));
    out->text[out->n] = dname_text(ldns_rr_rdf(rr, 1));
    return out->text[out->n] ? 1 : -1;
}

/* Spec 22.9: one string per record, its character-strings concatenated. */
static int conv_txt(const ldns_rr *rr, dns_answer *out)
{
    size_t total = 0;
    for (size_t i = 0; i < ldns_rr_rd_count(rr); i++) {
        const ldns_rdf *d = ldns_rr_rdf(rr, i);
        if (ldns_rdf_size(d) < 1 || ldns_rdf_data(d)[0] != ldns_rdf_size(d) - 1)
            return 0;
        total += ldns_rdf_size(d) - 1;
    }
    char *s = malloc(total + 1);
    if (!s)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < ldns_rr_rd_count(rr); i++) {
        const ldns_rdf *d = ldns_rr_rdf(rr, i);
        memcpy(s + k, ldns_rdf_data(d) + 1, ldns_rdf_size(d) - 1);
        k += ldns_rdf_size(d) - 1;
    }
    s[k] = '\0';
    out->text[out->n] = s;
    return 1;
}

/* RFC 6698 2.1: usage, selector, matching type, association data. */
static int conv_tlsa(const ldns_rr *rr, dns_answer *out)
{
    if (ldns_rr_rd_count(rr) != 4)
        return 0;
    for (size_t i = 0; i < 3; i++)
        if (ldns_rdf_size(ldns_rr_rdf(rr, i)) != 1)
            return 0;
    const ldns_rdf *d = ldns_rr_rdf(rr, 3);
    tlsa_rec *t = &out->tlsa[out->n];
    t->usage = ldns_rdf2native_int8(ldns_rr_rdf(rr, 0));
    t->selector = ldns_rdf2native_int8(ldns_rr_rdf(rr, 1));
    t->mtype = ldns_rdf2native_int8(ldns_rr_rdf(rr, 2));
    t->len = ldns_rdf_size(d);
    t->data = malloc(t->len ? t->len : 1);
    if (!t->data)
        return -1;
    memcpy(t->data, ldns_rdf_data(d), t->len);
    return 1;
}

static int conv_record(const ldns_rr *rr, dns_type t, dns_answer *out)
{
    switch (t) {
    case DNS_T_A: return conv_addr(rr, AF_INET, out);
    case DNS_T_AAAA: return conv_addr(rr, AF_INET6, out);
    case DNS_T_CNAME: return conv_cname(rr, out);
    case DNS_T_MX: return conv_mx(rr, out);
    case DNS_T_TXT: return conv_txt(rr, out);
    case DNS_T_TLSA: return conv_tlsa(rr, out);
    }
    return 0;
}

/* NOERROR or NXDOMAIN: records, NODATA or NXDOMAIN. */
static int fill_records(const ldns_pkt *p, dns_type t, int rcode, dns_answer *out)
{
    const ldns_rr *sel[DNS_MAX_RECORDS];
    size_t n = select_records(p, t, sel, DNS_MAX_RECORDS);
    if (rcode == LDNS_RCODE_NXDOMAIN) {
        out->status = DNS_NXDOMAIN;
        snprintf(out->why, sizeof out->why, "no such domain (NXDOMAIN)");
        return 0;
    }
    if (n == 0) {
        out->status = DNS_NODATA;
        snprintf(out->why, sizeof out->why, "no %s record", type_name(t));
        return 0;
    }
    if (dns_answer_alloc(out, t, n) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int rc = conv_record(sel[i], t, out);
        if (rc < 0)
            return -1;
        out->n += (size_t)rc;
    }
    out->status = out->n > 0 ? DNS_OK : DNS_ERROR;
    if (out->n == 0) {
        out->sec = DNS_INSECURE;
        snprintf(out->why, sizeof out->why, "malformed %s records", type_name(t));
    }
    return 0;
}

int dns_answer_from_wire(const unsigned char *wire, size_t len, dns_type t, dns_answer *out)
{
    answer_reset(out);
    ldns_pkt *p = NULL;
    if (ldns_wire2pkt(&p, wire, len) != LDNS_STATUS_OK) {
        out->status = DNS_ERROR;
        snprintf(out->why, sizeof out->why, "malformed DNS response");
        return 0;
    }
    ede_parse(p, out);
    int rcode = ldns_pkt_get_rcode(p), rc = 0;
    if (rcode == LDNS_RCODE_SERVFAIL) {
        set_failure(out, DNS_SERVFAIL, rcode);
    } else if (rcode != LDNS_RCODE_NOERROR && rcode != LDNS_RCODE_NXDOMAIN) {
        set_failure(out, DNS_ERROR, rcode);
    } else if (ldns_rr_list_rr_count(ldns_pkt_question(p)) != 1) {
        out->status = DNS_ERROR;
        snprintf(out->why, sizeof out->why, "DNS response without a question");
    } else {
        /* Authenticated data, including authenticated denial (RFC 4035 3.2.3). */
        out->sec = ldns_pkt_ad(p) ? DNS_SECURE : DNS_INSECURE;
        rc = fill_records(p, t, rcode, out);
    }
    ldns_pkt_free(p);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* Configuration                                                           */

static int server_from_addr(const char *text, dns_server *s)
{
    unsigned char buf[16];
    if (strlen(text) >= sizeof s->addr ||
        (inet_pton(AF_INET, text, buf) != 1 && inet_pton(AF_INET6, text, buf) != 1))
        return -1;
    strcpy(s->addr, text);
    s->port = 53;
    return 0;
}

/* resolv.conf(5): only "nameserver ADDR" lines matter here. Scoped IPv6
 * addresses (fe80::1%eth0) are not supported and skipped. */
static int servers_from_resolv(const char *path, dns_server *out, size_t max, char *err,
                               size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    char line[512];
    size_t n = 0;
    while (fgets(line, sizeof line, f)) {
        if (!strchr(line, '\n') && !feof(f)) { /* overlong line: skip it */
            int c;
            while ((c = fgetc(f)) != EOF && c != '\n')
                ;
            continue;
        }
        char *save = NULL, *kw = strtok_r(line, " \t\r\n", &save);
        if (!kw || strcmp(kw, "nameserver") != 0 || n >= max)
            continue;
        char *addr = strtok_r(NULL, " \t\r\n", &save);
        if (addr && server_from_addr(addr, &out[n]) == 0)
            n++;
    }
    fclose(f);
    if (n == 0) {
        snprintf(err, errlen, "no usable nameserver line in %s", path);
        return -1;
    }
    return (int)n;
}

int dns_config_servers(const dns_config *cfg, dns_server *out, size_t max, char *err,
                       size_t errlen)
{
    if (cfg->nservers == 0)
        return servers_from_resolv(cfg->resolv_conf ? cfg->resolv_conf : DNS_DEFAULT_RESOLV_CONF,
                                   out, max, err, errlen);
    if (cfg->nservers > max) {
        snprintf(err, errlen, "too many DNS servers (at most %zu)", max);
        return -1;
    }
    for (size_t i = 0; i < cfg->nservers; i++) {
        if (dns_parse_server(cfg->servers[i], out[i].addr, sizeof out[i].addr, &out[i].port) < 0) {
            snprintf(err, errlen, "bad DNS server \"%.64s\": want ADDR, ADDR:PORT or [IPV6]:PORT",
                     cfg->servers[i]);
            return -1;
        }
    }
    return (int)cfg->nservers;
}

/* ---------------------------------------------------------------------- */
/* Transport                                                               */

typedef struct upstream {
    struct sockaddr_storage ss;
    socklen_t len;
} upstream;

typedef struct forwarder {
    upstream srv[DNS_MAX_SERVERS];
    size_t nsrv;
    dnssec_mode mode;
    int timeout_ms;
} forwarder;

typedef struct query {
    uint8_t *wire;
    size_t len;
    size_t qend; /* end of the question section */
} query;

/* One lookup's exchange with the servers. */
typedef struct exch {
    const forwarder *st;
    const query *q;
    int fd[DNS_MAX_SERVERS];
    bool done[DNS_MAX_SERVERS]; /* answered with a failure, or unreachable */
    int64_t deadline;
    unsigned char *buf;         /* MAX_MSG bytes */
    unsigned char *final;       /* the answer to use, malloc'ed */
    size_t final_len;
    bool final_good;            /* NOERROR/NXDOMAIN: stop asking */
    int last_errno;
} exch;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint16_t random_id(void)
{
    uint16_t id;
    if (getrandom(&id, sizeof id, GRND_NONBLOCK) != (ssize_t)sizeof id)
        id = (uint16_t)(now_ms() ^ (int64_t)getpid());
    return id;
}

/* RFC 6840 5.7: setting AD in a query asks for the AD bit in the answer;
 * with DO (RFC 3225) the resolver also returns the DNSSEC records. Off mode
 * asks for neither. */
static int query_build(const char *name, dns_type t, bool dnssec, query *q)
{
    ldns_rdf *dn = ldns_dname_new_frm_str(name);
    if (!dn)
        return -1;
    uint16_t flags = LDNS_RD | (dnssec ? LDNS_AD : 0);
    ldns_pkt *p = ldns_pkt_query_new(dn, (ldns_rr_type)t, LDNS_RR_CLASS_IN, flags);
    if (!p) {
        ldns_rdf_deep_free(dn);
        return -1;
    }
    ldns_pkt_set_id(p, random_id());
    ldns_pkt_set_edns_udp_size(p, EDNS_UDP_SIZE);
    ldns_pkt_set_edns_do(p, dnssec);
    ldns_status s = ldns_pkt2wire(&q->wire, p, &q->len);
    ldns_pkt_free(p);
    if (s != LDNS_STATUS_OK)
        return -1;
    /* The question starts at 12 with the uncompressed name. */
    size_t i = 12;
    while (i < q->len && q->wire[i] != 0)
        i += 1 + q->wire[i];
    q->qend = i + 1 + 4;
    return q->qend <= q->len ? 0 : -1;
}

static uint8_t lower(uint8_t c)
{
    return c >= 'A' && c <= 'Z' ? (uint8_t)(c - 'A' + 'a') : c;
}

/* Accepts only the response to our query: same ID, QR set, same question
 * (name case-insensitively: label lengths are below 'A'). Some servers omit
 * the question on errors, which is accepted for error rcodes only. */
static bool response_matches(const query *q, const unsigned char *r, size_t len)
{
    if (len < 12 || r[0] != q->wire[0] || r[1] != q->wire[1] || !(r[2] & 0x80) ||
        (r[2] & 0x78) != 0)
        return false;
    int rcode = r[3] & 0x0f;
    size_t qd = (size_t)r[4] << 8 | r[5];
    if (qd == 0)
        return rcode != LDNS_RCODE_NOERROR && rcode != LDNS_RCODE_NXDOMAIN;
    if (qd != 1 || len < q->qend)
        return false;
    size_t nend = q->qend - 4;
    for (size_t i = 12; i < nend; i++)
        if (lower(r[i]) != lower(q->wire[i]))
            return false;
    return memcmp(r + nend, q->wire + nend, 4) == 0;
}

static bool is_final(const unsigned char *r)
{
    int rcode = r[3] & 0x0f;
    return rcode == LDNS_RCODE_NOERROR || rcode == LDNS_RCODE_NXDOMAIN;
}

static bool truncated(const unsigned char *r)
{
    return (r[2] & 0x02) != 0;
}

/* Keeps a response: a final one ends the lookup; a failure (SERVFAIL,
 * REFUSED, ...) is kept in case no server does better. */
static int keep(exch *x, const unsigned char *r, size_t len)
{
    if (x->final && !is_final(r))
        return 0; /* keep the first failure: it is as good as any */
    unsigned char *c = malloc(len);
    if (!c)
        return -1;
    memcpy(c, r, len);
    free(x->final);
    x->final = c;
    x->final_len = len;
    x->final_good = is_final(r);
    return 0;
}

static int wait_fd(int fd, short ev, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = ev};
        int rc = poll(&p, 1, (int)(left > 60000 ? 60000 : left));
        if (rc > 0)
            return 1;
        if (rc < 0 && errno != EINTR)
            return -1;
    }
}

static int io_all(int fd, bool wr, unsigned char *buf, size_t n, int64_t deadline)
{
    size_t k = 0;
    while (k < n) {
        ssize_t rc = wr ? send(fd, buf + k, n - k, MSG_NOSIGNAL) : recv(fd, buf + k, n - k, 0);
        if (rc > 0) {
            k += (size_t)rc;
            continue;
        }
        if (rc == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            return -1;
        int w = wait_fd(fd, wr ? POLLOUT : POLLIN, deadline);
        if (w <= 0) {
            errno = w == 0 ? ETIMEDOUT : errno;
            return -1;
        }
    }
    return 0;
}

/* RFC 7766 8: a message over TCP is preceded by its two-byte length. */
static int tcp_exchange(exch *x, const upstream *s, size_t *len)
{
    int fd = socket(s->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int rc = -1, soerr = 0;
    socklen_t sl = sizeof soerr;
    unsigned char hdr[2] = {(unsigned char)(x->q->len >> 8), (unsigned char)x->q->len};
    if (connect(fd, (const struct sockaddr *)&s->ss, s->len) < 0 && errno != EINPROGRESS)
        goto out;
    if (wait_fd(fd, POLLOUT, x->deadline) <= 0 ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr != 0) {
        errno = soerr ? soerr : ETIMEDOUT;
        goto out;
    }
    if (io_all(fd, true, hdr, 2, x->deadline) < 0 ||
        io_all(fd, true, x->q->wire, x->q->len, x->deadline) < 0 ||
        io_all(fd, false, hdr, 2, x->deadline) < 0)
        goto out;
    *len = (size_t)hdr[0] << 8 | hdr[1];
    if (io_all(fd, false, x->buf, *len, x->deadline) < 0)
        goto out;
    rc = response_matches(x->q, x->buf, *len) ? 0 : -1;
    if (rc < 0)
        errno = EPROTO;
out:;
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

static void server_failed(exch *x, size_t i, int err)
{
    x->done[i] = true;
    x->last_errno = err;
}

/* A datagram arrived for server i: take it, or go to TCP if truncated. */
static int on_udp_response(exch *x, size_t i, size_t len)
{
    if (truncated(x->buf)) {
        /* RFC 7766 5: the truncated answer is retried over TCP. */
        if (tcp_exchange(x, &x->st->srv[i], &len) < 0) {
            server_failed(x, i, errno);
            return 0;
        }
    }
    if (!is_final(x->buf))
        x->done[i] = true;
    return keep(x, x->buf, len);
}

/* Reads every datagram waiting on server i's socket. */
static int drain(exch *x, size_t i)
{
    for (;;) {
        ssize_t n = recv(x->fd[i], x->buf, MAX_MSG, MSG_DONTWAIT);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                server_failed(x, i, errno); /* e.g. ECONNREFUSED from ICMP */
            return 0;
        }
        if (!response_matches(x->q, x->buf, (size_t)n))
            continue; /* stray or spoofed: keep waiting (RFC 5452 9.1) */
        if (on_udp_response(x, i, (size_t)n) < 0)
            return -1;
        if (x->final_good || x->done[i])
            return 0;
    }
}

static bool all_done(const exch *x)
{
    for (size_t i = 0; i < x->st->nsrv; i++)
        if (!x->done[i])
            return false;
    return true;
}

/* Waits for responses on every open socket until `until`, a final answer,
 * or server `cur` giving up. */
static int wait_responses(exch *x, size_t cur, int64_t until)
{
    while (!x->final_good && !x->done[cur] && !all_done(x)) {
        struct pollfd p[DNS_MAX_SERVERS];
        size_t idx[DNS_MAX_SERVERS], np = 0;
        for (size_t i = 0; i < x->st->nsrv; i++)
            if (x->fd[i] >= 0 && !x->done[i]) {
                p[np] = (struct pollfd){.fd = x->fd[i], .events = POLLIN};
                idx[np++] = i;
            }
        int64_t left = until - now_ms();
        if (left <= 0)
            return 0;
        int rc = poll(p, np, (int)left);
        if (rc < 0 && errno != EINTR)
            return -1;
        for (size_t k = 0; rc > 0 && k < np && !x->final_good; k++)
            if (p[k].revents && drain(x, idx[k]) < 0)
                return -1;
    }
    return 0;
}

static int udp_send(exch *x, size_t i)
{
    const upstream *s = &x->st->srv[i];
    if (x->fd[i] < 0) {
        x->fd[i] = socket(s->ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        /* A connected socket only receives from the server, and reports ICMP
         * unreachable as ECONNREFUSED. */
        if (x->fd[i] < 0 || connect(x->fd[i], (const struct sockaddr *)&s->ss, s->len) < 0)
            return -1;
    }
    return send(x->fd[i], x->q->wire, x->q->len, MSG_NOSIGNAL) == (ssize_t)x->q->len ? 0 : -1;
}

/* Time to wait for server i before also asking the next one: a few seconds,
 * doubling each round over the servers, within the lookup's deadline. */
static int64_t try_slice(const forwarder *st, unsigned round)
{
    int64_t base = st->timeout_ms / 8;
    base = base < 200 ? 200 : base > 2000 ? 2000 : base;
    return base << (round < 4 ? round : 4);
}

static int exchange(exch *x)
{
    for (unsigned k = 0; !x->final_good && !all_done(x); k++) {
        size_t i = k % x->st->nsrv;
        if (x->done[i])
            continue;
        int64_t now = now_ms();
        if (now >= x->deadline)
            break;
        if (udp_send(x, i) < 0) {
            server_failed(x, i, errno);
            continue;
        }
        int64_t until = now + try_slice(x->st, k / (unsigned)x->st->nsrv);
        if (wait_responses(x, i, until < x->deadline ? until : x->deadline) < 0)
            return -1;
    }
    return 0;
}

static void tempfail(dns_answer *out, const exch *x)
{
    out->status = DNS_TEMPFAIL;
    out->sec = DNS_INSECURE;
    if (x->last_errno && all_done(x))
        snprintf(out->why, sizeof out->why, "no DNS server reachable: %s",
                 strerror(x->last_errno));
    else
        snprintf(out->why, sizeof out->why, "DNS lookup timed out");
}

static int forwarder_lookup(dns_resolver *r, const char *name, dns_type t, dns_answer *out)
{
    const forwarder *st = r->impl;
    query q = {0};
    if (query_build(name, t, st->mode == DNSSEC_TRUST_AD, &q) < 0) {
        free(q.wire);
        out->status = DNS_ERROR;
        snprintf(out->why, sizeof out->why, "invalid domain name: %.100s", name);
        return 0;
    }
    exch x = {.st = st, .q = &q, .deadline = now_ms() + st->timeout_ms};
    for (size_t i = 0; i < DNS_MAX_SERVERS; i++)
        x.fd[i] = -1;
    int rc = -1;
    x.buf = malloc(MAX_MSG);
    if (x.buf && exchange(&x) == 0) {
        rc = 0;
        if (x.final)
            rc = dns_answer_from_wire(x.final, x.final_len, t, out);
        else
            tempfail(out, &x);
        if (st->mode == DNSSEC_OFF)
            out->sec = DNS_INSECURE; /* an AD bit we did not ask for means nothing */
    }
    for (size_t i = 0; i < DNS_MAX_SERVERS; i++)
        if (x.fd[i] >= 0)
            close(x.fd[i]);
    free(x.buf);
    free(x.final);
    free(q.wire);
    return rc;
}

static void forwarder_free(dns_resolver *r)
{
    free(r->impl);
    free(r);
}

static const dns_ops forwarder_ops = {.lookup = forwarder_lookup, .free = forwarder_free};

static void sockaddr_from(const dns_server *s, upstream *out)
{
    memset(out, 0, sizeof *out);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&out->ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->ss;
    if (inet_pton(AF_INET, s->addr, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(s->port);
        out->len = sizeof *v4;
    } else {
        inet_pton(AF_INET6, s->addr, &v6->sin6_addr);
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(s->port);
        out->len = sizeof *v6;
    }
}

dns_resolver *dns_ldns_new(const dns_config *cfg, char *err, size_t errlen)
{
    dns_server servers[DNS_MAX_SERVERS];
    int n = dns_config_servers(cfg, servers, DNS_MAX_SERVERS, err, errlen);
    if (n < 0)
        return NULL;
    dns_resolver *r = calloc(1, sizeof *r);
    forwarder *st = calloc(1, sizeof *st);
    if (!r || !st) {
        free(r);
        free(st);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (int i = 0; i < n; i++)
        sockaddr_from(&servers[i], &st->srv[i]);
    st->nsrv = (size_t)n;
    st->mode = cfg->mode;
    st->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : DNS_DEFAULT_TIMEOUT_MS;
    r->ops = &forwarder_ops;
    r->mode = cfg->mode;
    r->impl = st;
    return r;
}
