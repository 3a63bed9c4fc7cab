/* DNS backends (spec 22): the server syntax, the shared response parser fed
 * with packets built by ldns, the resolv.conf reader, and both real backends
 * live: the stub (trust-ad, off) and libunbound (validate) against
 * fakedns.py, and libunbound validating a zone that knotd signs, when knotd
 * is installed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <ldns/ldns.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dns.h"
#include "dns_backend.h"

#ifndef FAKEDNS_PY
#define FAKEDNS_PY "tests/unit/fakedns.py"
#endif

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------------- */
/* dns_parse_server                                                        */

static void test_parse_server(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int rc;
        const char *addr;
        uint16_t port;
    } cases[] = {
        {"127.0.0.1", 0, "127.0.0.1", 53},
        {"127.0.0.1:5353", 0, "127.0.0.1", 5353},
        {"::1", 0, "::1", 53},
        {"2001:db8::53", 0, "2001:db8::53", 53},
        {"[::1]:5353", 0, "::1", 5353},
        {"[2001:db8::1]", 0, "2001:db8::1", 53},
        {"192.0.2.1:65535", 0, "192.0.2.1", 65535},
        {"192.0.2.1:0", -1, NULL, 0},
        {"192.0.2.1:65536", -1, NULL, 0},
        {"192.0.2.1:", -1, NULL, 0},
        {"192.0.2.1:53x", -1, NULL, 0},
        {"[::1]x", -1, NULL, 0},
        {"[::1", -1, NULL, 0},
        {"[]:53", -1, NULL, 0},
        {"dns.example", -1, NULL, 0},
        {"", -1, NULL, 0},
        {"300.0.0.1", -1, NULL, 0},
        {"[192.0.2.1]:53", 0, "192.0.2.1", 53},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char addr[64] = "";
        uint16_t port = 0;
        int rc = dns_parse_server(cases[i].in, addr, sizeof addr, &port);
        if (rc != cases[i].rc)
            fail_msg("%s: rc %d, want %d", cases[i].in, rc, cases[i].rc);
        if (rc == 0) {
            assert_string_equal(addr, cases[i].addr);
            assert_int_equal(port, cases[i].port);
        }
    }
    char small[4];
    uint16_t port;
    assert_int_equal(dns_parse_server("127.0.0.1", small, sizeof small, &port), -1);
}

/* ---------------------------------------------------------------------- */
/* dns_answer_from_wire, with packets built by ldns                        */

typedef struct pkt_spec {
    const char *question;         /* "a.test. IN A" */
    int rcode;
    bool ad, tc;
    const char *answers[8];       /* zone-file lines */
    const unsigned char *opt;     /* raw OPT rdata (EDNS options), or NULL */
    size_t optlen;
} pkt_spec;

static unsigned char *build(const pkt_spec *s, size_t *len)
{
    ldns_pkt *p = ldns_pkt_new();
    assert_non_null(p);
    ldns_pkt_set_id(p, 4242);
    ldns_pkt_set_qr(p, true);
    ldns_pkt_set_rd(p, true);
    ldns_pkt_set_ra(p, true);
    ldns_pkt_set_ad(p, s->ad);
    ldns_pkt_set_tc(p, s->tc);
    ldns_pkt_set_rcode(p, (uint8_t)s->rcode);
    ldns_rr *rr = NULL;
    if (s->question) {
        assert_int_equal(ldns_rr_new_question_frm_str(&rr, s->question, NULL, NULL),
                         LDNS_STATUS_OK);
        ldns_pkt_push_rr(p, LDNS_SECTION_QUESTION, rr);
    }
    for (size_t i = 0; i < 8 && s->answers[i]; i++) {
        ldns_status st = ldns_rr_new_frm_str(&rr, s->answers[i], 300, NULL, NULL);
        if (st != LDNS_STATUS_OK)
            fail_msg("bad test record %s: %s", s->answers[i], ldns_get_errorstr_by_id(st));
        ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr);
    }
    if (s->opt) {
        ldns_pkt_set_edns_udp_size(p, 1232);
        ldns_pkt_set_edns_data(p, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_UNKNOWN, s->optlen, s->opt));
    }
    uint8_t *wire = NULL;
    assert_int_equal(ldns_pkt2wire(&wire, p, len), LDNS_STATUS_OK);
    ldns_pkt_free(p);
    return wire;
}

static void parse(const pkt_spec *s, dns_type t, dns_answer *a)
{
    size_t len;
    unsigned char *w = build(s, &len);
    assert_int_equal(dns_answer_from_wire(w, len, t, a), 0);
    free(w);
}

static void test_wire_a_secure(void **state)
{
    (void)state;
    pkt_spec s = {"a.test. IN A", LDNS_RCODE_NOERROR, true, false,
                  {"a.test. IN A 192.0.2.1", "a.test. IN A 192.0.2.2",
                   "other.test. IN A 192.0.2.9"}, NULL, 0};
    dns_answer a;
    parse(&s, DNS_T_A, &a);
    assert_int_equal(a.status, DNS_OK);
    assert_int_equal(a.sec, DNS_SECURE);
    assert_int_equal(a.n, 2);
    assert_string_equal(a.text[0], "192.0.2.1");
    assert_string_equal(a.text[1], "192.0.2.2");
    assert_int_equal(a.ede, -1);
    dns_answer_free(&a);

    s.ad = false;
    parse(&s, DNS_T_A, &a);
    assert_int_equal(a.status, DNS_OK);
    assert_int_equal(a.sec, DNS_INSECURE);
    dns_answer_free(&a);
}

static void test_wire_aaaa(void **state)
{
    (void)state;
    pkt_spec s = {"a.test. IN AAAA", 0, false, false, {"A.TEST. IN AAAA 2001:db8::1"}, NULL, 0};
    dns_answer a;
    parse(&s, DNS_T_AAAA, &a);
    assert_int_equal(a.status, DNS_OK);
    assert_int_equal(a.n, 1);
    assert_string_equal(a.text[0], "2001:db8::1");
    dns_answer_free(&a);
}

static void test_wire_cname_chain(void **state)
{
    (void)state;
    pkt_spec s = {"alias.test. IN A", 0, true, false,
                  {"alias.test. IN CNAME Alias2.Test.", "alias2.test. IN CNAME a.test.",
                   "a.test. IN A 192.0.2.1", "alias.test. IN A 192.0.2.99"}, NULL, 0};
    dns_answer a;
    /* The A record at the alias itself is bogus data beside a CNAME: the
     * chain is followed only when there is no record of the type. */
    parse(&s, DNS_T_A, &a);
    assert_int_equal(a.status, DNS_OK);
    assert_int_equal(a.n, 1);
    assert_string_equal(a.text[0], "192.0.2.99");
    dns_answer_free(&a);

    s.answers[3] = NULL;
    parse(&s, DNS_T_A, &a);
    assert_int_equal(a.status, DNS_OK);
    assert_int_equal(a.sec, DNS_SECURE);
    assert_int_equal(a.n, 1);
    assert_string_equal(a.text[0], "192.0.2.1");
    dns_answer_free(&a);

    /* A CNAME query is answered with the CNAME record itself. */
    pkt_spec c = {"alias.test. IN CNAME", 0, true, false, {"alias.test. IN CNAME Alias2.Test."},
                  NULL, 0};
    parse(&c, DNS_T_CNAME, &a);
    assert_int_equal(a.status, DNS_OK);
    assert_int_equal(a.n, 1);
    assert_string_equal(a.text[0], "alias2.test");
    dns_answer_free(&a);

    /* A chain that ends nowhere is NODATA; a loop too (bounded). */
    pkt_spec d = {"alias.test. IN A", 0, false, false, {"alias.test. IN CNAME alias2.test."},
                  NULL, 0};
    parse(&d, DNS_T_A, &a);
    assert_int_equal(a.status, DNS_NODATA);
    dns_answer_free(&a);
    pkt_spec l = {"l1.test. IN A", 0, false, false,
                  {"l1.test. IN CNAME l2.test.", "l2.test. IN CNAME l1.test."}, NULL, 0};
    parse(&l, DNS_T_A, &a);
    assert_int_equal(a.status, DNS_NODATA);
    dns_answer_free(&a);
}

static void test_wire_mx(void **state)
{
    (void)state;
    pkt_spec s = {"mx.test. IN MX", 0, true, false,
                  {"mx.test. IN MX 10 Mail.Example.", "mx.test. IN MX 20 mx2.example.",
                   "mx.test. IN MX 0 ."}, NULL, 0};
    dns_answer a;
    parse(&s, DNS_T_MX, &a);
    assert_int_equal(a.status, DNS_OK);
    assert_int_equal(a.n, 3);
    assert_string_equal(a.text[0], "mail.example");
    assert_int_equal(a.pref[0], 10);
    assert_string_equal(a.text[1], "mx2.example");
    assert_int_equal(a.pref[1], 20);
    assert_string_equal(a.text[2], ""); /* RFC 7505 null MX */
    assert_int_equal(a.pref[2], 0);
    dns_answer_free(&a);
}

static void test_wire_txt(void **state)
{
    (void)state;
    pkt_spec s = {"_mta-sts.test. IN TXT", 0, false, false,
                  {"_mta-sts.test. IN TXT \"v=STSv1; \" \"id=2024\"",
                   "_mta-sts.test. IN TXT \"second\"", "_mta-sts.test. IN TXT \"\""}, NULL, 0};
    dns_answer a;
    parse(&s, DNS_T_TXT, &a);
    assert_int_equal(a.status, DNS_OK);
    assert_int_equal(a.n, 3);
    assert_string_equal(a.text[0], "v=STSv1; id=2024");
    assert_string_equal(a.text[1], "second");
    assert_string_equal(a.text[2], "");
    dns_answer_free(&a);
}

static void test_wire_tlsa(void **state)
{
    (void)state;
    pkt_spec s = {"_25._tcp.mx.test. IN TLSA", 0, true, false,
                  {"_25._tcp.mx.test. IN TLSA 3 1 1 "
                   "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                   "_25._tcp.mx.test. IN TLSA 2 0 2 abcdef"}, NULL, 0};
    dns_answer a;
    parse(&s, DNS_T_TLSA, &a);
    assert_int_equal(a.status, DNS_OK);
    assert_int_equal(a.sec, DNS_SECURE);
    assert_int_equal(a.n, 2);
    assert_int_equal(a.tlsa[0].usage, 3);
    assert_int_equal(a.tlsa[0].selector, 1);
    assert_int_equal(a.tlsa[0].mtype, 1);
    assert_int_equal(a.tlsa[0].len, 32);
    for (size_t i = 0; i < 32; i++)
        assert_int_equal(a.tlsa[0].data[i], i);
    assert_int_equal(a.tlsa[1].usage, 2);
    assert_int_equal(a.tlsa[1].selector, 0);
    assert_int_equal(a.tlsa[1].mtype, 2);
    assert_int_equal(a.tlsa[1].len, 3);
    assert_memory_equal(a.tlsa[1].data, "\xab\xcd\xef", 3);
    assert_null(a.text);
    dns_answer_free(&a);
}

static void test_wire_nxdomain_nodata(void **state)
{
    (void)state;
    dns_answer a;
    pkt_spec nx = {"nx.test. IN A", LDNS_RCODE_NXDOMAIN, true, false, {NULL}, NULL, 0};
    parse(&nx, DNS_T_A, &a);
    assert_int_equal(a.status, DNS_NXDOMAIN);
    assert_true(dns_not_found(&a));
    assert_int_equal(a.sec, DNS_SECURE); /* authenticated denial */
    assert_int_equal(a.n, 0);
    assert_true(a.why[0] != '\0');
    dns_answer_free(&a);

    pkt_spec nd = {"a.test. IN TLSA", 0, false, false, {"a.test. IN A 192.0.2.1"}, NULL, 0};
    parse(&nd, DNS_T_TLSA, &a);
    assert_int_equal(a.status, DNS_NODATA);
    assert_true(dns_not_found(&a));
    assert_int_equal(a.sec, DNS_INSECURE);
    assert_non_null(strstr(a.why, "TLSA"));
    dns_answer_free(&a);

    /* Spec 22.4: a name with other records but no CNAME is "not found". */
    pkt_spec nc = {"a.test. IN CNAME", 0, true, false, {NULL}, NULL, 0};
    parse(&nc, DNS_T_CNAME, &a);
    assert_int_equal(a.status, DNS_NODATA);
    assert_int_equal(a.sec, DNS_SECURE);
    dns_answer_free(&a);
}

static void test_wire_failures(void **state)
{
    (void)state;
    static const struct {
        int rcode;
        dns_status st;
        const char *why;
    } cases[] = {
        {LDNS_RCODE_SERVFAIL, DNS_SERVFAIL, "SERVFAIL"},
        {LDNS_RCODE_REFUSED, DNS_ERROR, "REFUSED"},
        {LDNS_RCODE_FORMERR, DNS_ERROR, "FORMERR"},
        {LDNS_RCODE_NOTIMPL, DNS_ERROR, "NOTIMP"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* AD on a failure means nothing (spec 22.6). */
        pkt_spec s = {"a.test. IN A", cases[i].rcode, true, false, {NULL}, NULL, 0};
        dns_answer a;
        parse(&s, DNS_T_A, &a);
        assert_int_equal(a.status, cases[i].st);
        assert_int_equal(a.sec, DNS_INSECURE);
        assert_non_null(strstr(a.why, cases[i].why));
        dns_answer_free(&a);
        /* Servers may leave the question out of an error. */
        s.question = NULL;
        parse(&s, DNS_T_A, &a);
        assert_int_equal(a.status, cases[i].st);
        dns_answer_free(&a);
    }
    pkt_spec noq = {NULL, 0, false, false, {NULL}, NULL, 0};
    dns_answer a;
    parse(&noq, DNS_T_A, &a);
    assert_int_equal(a.status, DNS_ERROR);
    dns_answer_free(&a);
}

static void test_wire_ede(void **state)
{
    (void)state;
    /* A cookie option first, then EDE 6 with text (RFC 8914 2). */
    static const unsigned char opt[] = {
        0x00, 0x0a, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8,
        0x00, 0x0f, 0x00, 0x0a, 0x00, 0x06, 'b', 'a', 'd', ' ', 's', 'i', 'g', '\n',
        0x00, 0x0f, 0x00, 0x02, 0x00, 0x07,
    };
    pkt_spec s = {"bogus.test. IN A", LDNS_RCODE_SERVFAIL, false, false, {NULL}, opt, sizeof opt};
    dns_answer a;
    parse(&s, DNS_T_A, &a);
    assert_int_equal(a.status, DNS_SERVFAIL);
    assert_int_equal(a.sec, DNS_INSECURE);
    assert_int_equal(a.ede, 6);
    assert_string_equal(a.ede_text, "bad sig?"); /* control characters replaced */
    assert_non_null(strstr(a.why, "dnssec-bogus"));
    assert_true(dns_ede_is_auth(a.ede));
    dns_answer_free(&a);

    /* EDE without text, with an answer (e.g. 3 stale answer). */
    static const unsigned char stale[] = {0x00, 0x0f, 0x00, 0x02, 0x00, 0x03};
    pkt_spec t = {"a.test. IN A", 0, false, false, {"a.test. IN A 192.0.2.1"}, stale,
                  sizeof stale};
    parse(&t, DNS_T_A, &a);
    assert_int_equal(a.status, DNS_OK);
    assert_int_equal(a.ede, 3);
    assert_string_equal(a.ede_text, "");
    dns_answer_free(&a);

    /* An option overrunning the OPT data is ignored. */
    static const unsigned char bad[] = {0x00, 0x0f, 0x00, 0x09, 0x00, 0x06};
    pkt_spec u = {"a.test. IN A", LDNS_RCODE_SERVFAIL, false, false, {NULL}, bad, sizeof bad};
    parse(&u, DNS_T_A, &a);
    assert_int_equal(a.status, DNS_SERVFAIL);
    assert_int_equal(a.ede, -1);
    dns_answer_free(&a);

    /* Long UTF-8 text is cut at a character boundary. */
    unsigned char lng[4 + 2 + 200];
    lng[0] = 0, lng[1] = 15, lng[2] = 0, lng[3] = 202, lng[4] = 0, lng[5] = 9;
    for (size_t i = 0; i < 200; i += 2)
        lng[6 + i] = 0xc3, lng[7 + i] = 0xa9; /* é */
    pkt_spec v = {"a.test. IN A", LDNS_RCODE_SERVFAIL, false, false, {NULL}, lng, sizeof lng};
    parse(&v, DNS_T_A, &a);
    assert_int_equal(a.ede, 9);
    assert_int_equal(strlen(a.ede_text), 126);
    dns_answer_free(&a);
}

/* Every strict prefix of a response is malformed: never a crash, never data. */
static void test_wire_truncated_input(void **state)
{
    (void)state;
    static const unsigned char opt[] = {0x00, 0x0f, 0x00, 0x03, 0x00, 0x06, 'x'};
    pkt_spec s = {"mx.test. IN MX", 0, true, false,
                  {"mx.test. IN CNAME mx2.test.", "mx2.test. IN MX 10 mail.example."}, opt,
                  sizeof opt};
    size_t len;
    unsigned char *w = build(&s, &len);
    for (size_t k = 0; k < len; k++) {
        unsigned char *cut = malloc(k ? k : 1);
        memcpy(cut, w, k);
        dns_answer a;
        assert_int_equal(dns_answer_from_wire(cut, k, DNS_T_MX, &a), 0);
        if (a.status != DNS_ERROR)
            fail_msg("prefix of %zu bytes: status %d", k, a.status);
        assert_int_equal(a.n, 0);
        dns_answer_free(&a);
        free(cut);
    }
    dns_answer a;
    assert_int_equal(dns_answer_from_wire(w, len, DNS_T_MX, &a), 0);
    assert_int_equal(a.status, DNS_OK);
    assert_string_equal(a.text[0], "mail.example");
    dns_answer_free(&a);
    free(w);
}

static void test_wire_many_records(void **state)
{
    (void)state;
    ldns_pkt *p = ldns_pkt_new();
    ldns_rr *rr;
    ldns_pkt_set_qr(p, true);
    ldns_rr_new_question_frm_str(&rr, "a.test. IN A", NULL, NULL);
    ldns_pkt_push_rr(p, LDNS_SECTION_QUESTION, rr);
    for (int i = 0; i < DNS_MAX_RECORDS + 10; i++) {
        char line[64];
        snprintf(line, sizeof line, "a.test. IN A 10.0.%d.%d", i / 256, i % 256);
        ldns_rr_new_frm_str(&rr, line, 300, NULL, NULL);
        ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr);
    }
    uint8_t *w;
    size_t len;
    ldns_pkt2wire(&w, p, &len);
    ldns_pkt_free(p);
    dns_answer a;
    assert_int_equal(dns_answer_from_wire(w, len, DNS_T_A, &a), 0);
    assert_int_equal(a.status, DNS_OK);
    assert_int_equal(a.n, DNS_MAX_RECORDS); /* bounded */
    dns_answer_free(&a);
    free(w);
}

/* ---------------------------------------------------------------------- */
/* Configuration: servers, resolv.conf, EDE from why_bogus                 */

static char *write_temp(const char *text)
{
    char *path = strdup("/tmp/smtpc-dns-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_resolv_conf(void **state)
{
    (void)state;
    char *path = write_temp("# comment\n"
                            "search example.com example.net\n"
                            "domain example.org\n"
                            "options ndots:5 edns0\n"
                            "nameserver 192.0.2.53\n"
                            ";nameserver 192.0.2.99\n"
                            "nameserver\t2001:db8::53  # trailing\n"
                            "nameserver fe80::1%eth0\n"
                            "nameserver bogus\n"
                            "nameserver 198.51.100.53\r\n");
    dns_config cfg = {.resolv_conf = path};
    dns_server s[DNS_MAX_SERVERS];
    char err[200] = "";
    assert_int_equal(dns_config_servers(&cfg, s, DNS_MAX_SERVERS, err, sizeof err), 3);
    assert_string_equal(s[0].addr, "192.0.2.53");
    assert_int_equal(s[0].port, 53);
    assert_string_equal(s[1].addr, "2001:db8::53");
    assert_string_equal(s[2].addr, "198.51.100.53");
    assert_int_equal(dns_config_servers(&cfg, s, 2, err, sizeof err), 2);
    unlink(path);
    free(path);

    path = write_temp("search example.com\noptions rotate\n");
    cfg.resolv_conf = path;
    assert_int_equal(dns_config_servers(&cfg, s, DNS_MAX_SERVERS, err, sizeof err), -1);
    assert_non_null(strstr(err, "nameserver"));
    /* Neither backend starts without a server: no lookup goes elsewhere. */
    assert_null(dns_resolver_new(&cfg, err, sizeof err));
    cfg.mode = DNSSEC_VALIDATE;
    assert_null(dns_resolver_new(&cfg, err, sizeof err));
    unlink(path);
    free(path);

    cfg.resolv_conf = "/nonexistent/resolv.conf";
    assert_int_equal(dns_config_servers(&cfg, s, DNS_MAX_SERVERS, err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/resolv.conf"));
}

static void test_config_servers(void **state)
{
    (void)state;
    char *const good[] = {"127.0.0.1:5300", "[::1]:5301", "192.0.2.1"};
    dns_config cfg = {.servers = good, .nservers = 3, .resolv_conf = "/nonexistent"};
    dns_server s[DNS_MAX_SERVERS];
    char err[200];
    assert_int_equal(dns_config_servers(&cfg, s, DNS_MAX_SERVERS, err, sizeof err), 3);
    assert_string_equal(s[1].addr, "::1");
    assert_int_equal(s[1].port, 5301);
    assert_int_equal(s[2].port, 53);

    char *const bad[] = {"127.0.0.1", "resolver.example"};
    cfg.servers = bad;
    cfg.nservers = 2;
    assert_int_equal(dns_config_servers(&cfg, s, DNS_MAX_SERVERS, err, sizeof err), -1);
    assert_non_null(strstr(err, "resolver.example"));
    assert_null(dns_resolver_new(&cfg, err, sizeof err));

    char *const many[DNS_MAX_SERVERS + 1] = {"127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1",
                                             "127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1",
                                             "127.0.0.1"};
    cfg.servers = many;
    cfg.nservers = DNS_MAX_SERVERS + 1;
    assert_int_equal(dns_config_servers(&cfg, s, DNS_MAX_SERVERS, err, sizeof err), -1);
}

static void test_ede_from_why(void **state)
{
    (void)state;
    static const struct {
        const char *why;
        int ede;
    } cases[] = {
        {"validation failure <a.test. A IN>: signature expired from 127.0.0.1", 7},
        {"validation failure <a.test. A IN>: signature before inception date", 8},
        {"validation failure <a.test. A IN>: no signatures from 127.0.0.1", 10},
        {"validation failure <bad.test. DNSKEY IN>: No DNSKEY record from 127.0.0.1", 9},
        {"validation failure <a.test. A IN>: signature crypto failed", 6},
        {"", 6},
        {NULL, 6},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (dns_ede_from_why(cases[i].why) != cases[i].ede)
            fail_msg("%s: %d, want %d", cases[i].why ? cases[i].why : "(null)",
                     dns_ede_from_why(cases[i].why), cases[i].ede);
}

/* ---------------------------------------------------------------------- */
/* Child processes                                                         */

typedef struct child {
    pid_t pid;
    int in, out; /* its stdin (we write), its stdout (we read) */
} child;

static int spawn(char *const argv[], child *c)
{
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
        return -1;
    c->pid = fork();
    if (c->pid < 0)
        return -1;
    if (c->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    c->in = in[1];
    c->out = out[0];
    return 0;
}

static void reap(child *c)
{
    if (c->pid <= 0)
        return;
    kill(c->pid, SIGTERM);
    waitpid(c->pid, NULL, 0);
    close(c->in);
    close(c->out);
    c->pid = 0;
}

static int read_line(int fd, char *buf, size_t cap, int timeout_ms)
{
    size_t k = 0;
    int64_t deadline = now_ms() + timeout_ms;
    while (k + 1 < cap) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int64_t left = deadline - now_ms();
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return -1;
        if (read(fd, buf + k, 1) != 1)
            return -1;
        if (buf[k] == '\n')
            break;
        k++;
    }
    buf[k] = '\0';
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Live: stub and libunbound against fakedns.py                            */

typedef struct fake {
    child c;
    int port, silent, v6;
    char server[32], silent_server[32], anchor[64];
} fake;

static int fake_setup(void **state)
{
    fake *f = calloc(1, sizeof *f);
    char *const argv[] = {"python3", FAKEDNS_PY, NULL};
    char line[64];
    if (!f || spawn(argv, &f->c) < 0 || read_line(f->c.out, line, sizeof line, 10000) < 0 ||
        sscanf(line, "%d %d %d", &f->port, &f->silent, &f->v6) != 3) {
        fprintf(stderr, "cannot start %s\n", FAKEDNS_PY);
        return -1;
    }
    snprintf(f->server, sizeof f->server, "127.0.0.1:%d", f->port);
    snprintf(f->silent_server, sizeof f->silent_server, "127.0.0.1:%d", f->silent);
    /* A trust anchor for sec.test. only: the fake has no signatures, so
     * names below it are bogus in validate mode and the rest insecure. */
    char *path = write_temp("sec.test. IN DNSKEY 257 3 13 "
                            "JnB0LpzEqrLBCNhUM1an2Me/NVgmyICeFFFnS9tXcBGiggn9cMI7n5rbQcNkK2Nou+"
                            "JvCaHoFbZTWm7Vk0lCaQ==\n");
    snprintf(f->anchor, sizeof f->anchor, "%s", path);
    free(path);
    *state = f;
    return 0;
}

static int fake_teardown(void **state)
{
    fake *f = *state;
    reap(&f->c);
    unlink(f->anchor);
    free(f);
    return 0;
}

static dns_resolver *mkres(const fake *f, dnssec_mode mode, int timeout_ms)
{
    char *const servers[] = {(char *)f->server};
    dns_config cfg = {.servers = servers, .nservers = 1, .mode = mode, .timeout_ms = timeout_ms,
                      .trust_anchor = f->anchor};
    char err[256] = "";
    dns_resolver *r = dns_resolver_new(&cfg, err, sizeof err);
    if (!r)
        fail_msg("dns_resolver_new: %s", err);
    return r;
}

typedef struct live_case {
    const char *name;
    dns_type t;
    dns_status st;
    dns_sec sec;
    size_t n;
    const char *first; /* text[0], or NULL */
    int ede;
} live_case;

static void run_cases(dns_resolver *r, const live_case *cases, size_t ncases)
{
    for (size_t i = 0; i < ncases; i++) {
        const live_case *c = &cases[i];
        dns_answer a;
        assert_int_equal(dns_lookup(r, c->name, c->t, &a), 0);
        if (a.status != c->st || a.sec != c->sec || a.n != c->n || a.ede != c->ede)
            fail_msg("%s type %d: status %d sec %d n %zu ede %d (%s), want %d %d %zu %d", c->name,
                     c->t, a.status, a.sec, a.n, a.ede, a.why, c->st, c->sec, c->n, c->ede);
        if (c->first && strcmp(a.text[0], c->first) != 0)
            fail_msg("%s: first record \"%s\", want \"%s\"", c->name, a.text[0], c->first);
        dns_answer_free(&a);
    }
}

static const live_case trust_ad_cases[] = {
    {"a.test.", DNS_T_A, DNS_OK, DNS_SECURE, 2, "192.0.2.1", -1},
    {"A.TeSt.", DNS_T_A, DNS_OK, DNS_SECURE, 2, "192.0.2.1", -1},
    {"a.test.", DNS_T_AAAA, DNS_OK, DNS_SECURE, 1, "2001:db8::1", -1},
    {"insecure.test.", DNS_T_A, DNS_OK, DNS_INSECURE, 1, "192.0.2.3", -1},
    {"mx.test.", DNS_T_MX, DNS_OK, DNS_SECURE, 2, "mail.test", -1},
    {"nullmx.test.", DNS_T_MX, DNS_OK, DNS_SECURE, 1, "", -1},
    {"txt.test.", DNS_T_TXT, DNS_OK, DNS_SECURE, 2, "v=STSv1; id=1", -1},
    {"_25._tcp.mail.test.", DNS_T_TLSA, DNS_OK, DNS_SECURE, 1, NULL, -1},
    {"alias.test.", DNS_T_A, DNS_OK, DNS_SECURE, 2, "192.0.2.1", -1},
    {"alias.test.", DNS_T_CNAME, DNS_OK, DNS_SECURE, 1, "alias2.test", -1},
    {"a.test.", DNS_T_CNAME, DNS_NODATA, DNS_SECURE, 0, NULL, -1},
    {"a.test.", DNS_T_TXT, DNS_NODATA, DNS_SECURE, 0, NULL, -1},
    {"a.test.", DNS_T_TLSA, DNS_NODATA, DNS_SECURE, 0, NULL, -1},
    {"nx.test.", DNS_T_A, DNS_NXDOMAIN, DNS_SECURE, 0, NULL, -1},
    {"insecure-nx.test.", DNS_T_A, DNS_NXDOMAIN, DNS_INSECURE, 0, NULL, -1},
    {"dangling.test.", DNS_T_A, DNS_NXDOMAIN, DNS_SECURE, 0, NULL, -1},
    {"loop1.test.", DNS_T_A, DNS_NODATA, DNS_SECURE, 0, NULL, -1},
    {"servfail.test.", DNS_T_A, DNS_SERVFAIL, DNS_INSECURE, 0, NULL, -1},
    {"bogus.test.", DNS_T_A, DNS_SERVFAIL, DNS_INSECURE, 0, NULL, 6},
    {"expired.test.", DNS_T_TLSA, DNS_SERVFAIL, DNS_INSECURE, 0, NULL, 7},
    {"refused.test.", DNS_T_A, DNS_ERROR, DNS_INSECURE, 0, NULL, -1},
    {"big.test.", DNS_T_TXT, DNS_OK, DNS_SECURE, 40, NULL, -1}, /* TC, then TCP */
    /* Forged answers first (wrong ID, other question): ignored. */
    {"badid.test.", DNS_T_A, DNS_NXDOMAIN, DNS_SECURE, 0, NULL, -1},
    {"badq.test.", DNS_T_A, DNS_NXDOMAIN, DNS_SECURE, 0, NULL, -1},
    {"flags.test.", DNS_T_TXT, DNS_OK, DNS_SECURE, 1, "rd=1 ad=1 cd=0 edns=1 do=1", -1},
    {"a.test", DNS_T_A, DNS_ERROR, DNS_INSECURE, 0, NULL, -1}, /* relative (22.1) */
    {"a..test.", DNS_T_A, DNS_ERROR, DNS_INSECURE, 0, NULL, -1},
};

static void test_live_trust_ad(void **state)
{
    fake *f = *state;
    dns_resolver *r = mkres(f, DNSSEC_TRUST_AD, 5000);
    run_cases(r, trust_ad_cases, sizeof trust_ad_cases / sizeof trust_ad_cases[0]);

    dns_answer a;
    dns_lookup(r, "expired.test.", DNS_T_A, &a);
    assert_string_equal(a.ede_text, "signature expired");
    assert_non_null(strstr(a.why, "signature-expired"));
    dns_answer_free(&a);
    dns_lookup(r, "_25._tcp.mail.test.", DNS_T_TLSA, &a);
    assert_int_equal(a.tlsa[0].usage, 3);
    assert_int_equal(a.tlsa[0].len, 32);
    assert_int_equal(a.tlsa[0].data[31], 31);
    dns_answer_free(&a);
    dns_lookup(r, "mx.test.", DNS_T_MX, &a);
    assert_int_equal(a.pref[0], 10);
    assert_string_equal(a.text[1], "mx2.test");
    dns_answer_free(&a);
    dns_resolver_free(r);
}

static void test_live_off(void **state)
{
    fake *f = *state;
    dns_resolver *r = mkres(f, DNSSEC_OFF, 5000);
    static const live_case cases[] = {
        {"a.test.", DNS_T_A, DNS_OK, DNS_INSECURE, 2, "192.0.2.1", -1},
        {"nx.test.", DNS_T_A, DNS_NXDOMAIN, DNS_INSECURE, 0, NULL, -1},
        {"a.test.", DNS_T_TXT, DNS_NODATA, DNS_INSECURE, 0, NULL, -1},
        {"_25._tcp.mail.test.", DNS_T_TLSA, DNS_OK, DNS_INSECURE, 1, NULL, -1},
        {"big.test.", DNS_T_TXT, DNS_OK, DNS_INSECURE, 40, NULL, -1},
        {"bogus.test.", DNS_T_A, DNS_SERVFAIL, DNS_INSECURE, 0, NULL, 6},
        /* Off mode asks for no DNSSEC at all: neither AD nor DO. */
        {"flags.test.", DNS_T_TXT, DNS_OK, DNS_INSECURE, 1, "rd=1 ad=0 cd=0 edns=1 do=0", -1},
    };
    run_cases(r, cases, sizeof cases / sizeof cases[0]);
    dns_resolver_free(r);
}

static void test_live_timeout(void **state)
{
    fake *f = *state;
    dns_resolver *r = mkres(f, DNSSEC_TRUST_AD, 700);
    dns_answer a;
    int64_t t0 = now_ms();
    dns_lookup(r, "drop.test.", DNS_T_A, &a);
    int64_t took = now_ms() - t0;
    assert_int_equal(a.status, DNS_TEMPFAIL);
    assert_int_equal(a.sec, DNS_INSECURE);
    assert_non_null(strstr(a.why, "timed out"));
    if (took < 650 || took > 1500)
        fail_msg("timeout of 700 ms took %lld ms", (long long)took);
    dns_answer_free(&a);
    /* The resolver still works after a timeout. */
    dns_lookup(r, "a.test.", DNS_T_A, &a);
    assert_int_equal(a.status, DNS_OK);
    dns_answer_free(&a);
    dns_resolver_free(r);
}

static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t len = sizeof sa;
    bind(fd, (struct sockaddr *)&sa, sizeof sa);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    close(fd);
    return ntohs(sa.sin_port);
}

static void test_live_servers(void **state)
{
    fake *f = *state;
    char dead[32], v6[32];
    snprintf(dead, sizeof dead, "127.0.0.1:%d", closed_port());
    dns_answer a;
    char err[200];

    /* Refused everywhere (ICMP port unreachable): fails fast. */
    char *const only_dead[] = {dead};
    dns_config cfg = {.servers = only_dead, .nservers = 1, .timeout_ms = 5000};
    dns_resolver *r = dns_resolver_new(&cfg, err, sizeof err);
    assert_non_null(r);
    int64_t t0 = now_ms();
    dns_lookup(r, "a.test.", DNS_T_A, &a);
    assert_int_equal(a.status, DNS_TEMPFAIL);
    assert_non_null(strstr(a.why, "reachable"));
    assert_true(now_ms() - t0 < 1000);
    dns_answer_free(&a);
    dns_resolver_free(r);

    /* A silent first server costs one try slice, not the whole timeout. */
    char *const silent_first[] = {f->silent_server, dead, f->server};
    cfg.servers = silent_first;
    cfg.nservers = 3;
    cfg.timeout_ms = 8000;
    r = dns_resolver_new(&cfg, err, sizeof err);
    t0 = now_ms();
    dns_lookup(r, "a.test.", DNS_T_A, &a);
    int64_t took = now_ms() - t0;
    assert_int_equal(a.status, DNS_OK);
    assert_int_equal(a.sec, DNS_SECURE);
    if (took > 2500)
        fail_msg("fallback to the second server took %lld ms", (long long)took);
    dns_answer_free(&a);
    dns_resolver_free(r);

    if (!f->v6)
        return;
    snprintf(v6, sizeof v6, "[::1]:%d", f->port);
    char *const six[] = {v6};
    cfg.servers = six;
    cfg.nservers = 1;
    r = dns_resolver_new(&cfg, err, sizeof err);
    assert_non_null(r);
    dns_lookup(r, "big.test.", DNS_T_TXT, &a);
    assert_int_equal(a.status, DNS_OK);
    assert_int_equal(a.n, 40);
    dns_answer_free(&a);
    dns_resolver_free(r);
}

/* Validate mode against the fake: outside the trust anchor everything is
 * insecure; below it, unsigned data is bogus. */
static void test_live_validate_fake(void **state)
{
    fake *f = *state;
    dns_resolver *r = mkres(f, DNSSEC_VALIDATE, 5000);
    static const live_case cases[] = {
        /* unbound rotates RRsets (rrset-roundrobin): no order to check. */
        {"a.test.", DNS_T_A, DNS_OK, DNS_INSECURE, 2, NULL, -1},
        {"alias.test.", DNS_T_A, DNS_OK, DNS_INSECURE, 2, NULL, -1},
        {"alias.test.", DNS_T_CNAME, DNS_OK, DNS_INSECURE, 1, "alias2.test", -1},
        {"mx.test.", DNS_T_MX, DNS_OK, DNS_INSECURE, 2, NULL, -1},
        {"nullmx.test.", DNS_T_MX, DNS_OK, DNS_INSECURE, 1, "", -1},
        {"_25._tcp.mail.test.", DNS_T_TLSA, DNS_OK, DNS_INSECURE, 1, NULL, -1},
        {"nx.test.", DNS_T_A, DNS_NXDOMAIN, DNS_INSECURE, 0, NULL, -1},
        {"a.test.", DNS_T_TXT, DNS_NODATA, DNS_INSECURE, 0, NULL, -1},
        {"big.test.", DNS_T_TXT, DNS_OK, DNS_INSECURE, 40, NULL, -1},
    };
    run_cases(r, cases, sizeof cases / sizeof cases[0]);

    dns_answer a;
    dns_lookup(r, "mx.test.", DNS_T_MX, &a);
    assert_int_equal(a.n, 2);
    size_t m = strcmp(a.text[0], "mail.test") == 0 ? 0 : 1;
    assert_string_equal(a.text[m], "mail.test");
    assert_int_equal(a.pref[m], 10);
    assert_string_equal(a.text[1 - m], "mx2.test");
    assert_int_equal(a.pref[1 - m], 20);
    dns_answer_free(&a);
    dns_lookup(r, "x.sec.test.", DNS_T_A, &a);
    assert_int_equal(a.status, DNS_SERVFAIL);
    assert_int_equal(a.sec, DNS_BOGUS);
    assert_true(dns_ede_is_auth(a.ede));
    assert_true(a.why[0] != '\0');
    dns_answer_free(&a);

    dns_resolver_free(r);
    r = mkres(f, DNSSEC_VALIDATE, 800);
    int64_t t0 = now_ms();
    dns_lookup(r, "drop.test.", DNS_T_A, &a);
    int64_t took = now_ms() - t0;
    assert_int_equal(a.status, DNS_TEMPFAIL);
    assert_int_equal(a.sec, DNS_INSECURE);
    if (took < 750 || took > 2000)
        fail_msg("timeout of 800 ms took %lld ms", (long long)took);
    dns_answer_free(&a);
    dns_lookup(r, "a.test.", DNS_T_A, &a);
    assert_int_equal(a.status, DNS_OK);
    dns_answer_free(&a);
    dns_resolver_free(r);
}

static void test_validate_bad_anchor(void **state)
{
    fake *f = *state;
    char *const servers[] = {f->server};
    dns_config cfg = {.servers = servers, .nservers = 1, .mode = DNSSEC_VALIDATE,
                      .trust_anchor = "/nonexistent/root.key"};
    char err[256] = "";
    assert_null(dns_resolver_new(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/root.key"));
}

/* ---------------------------------------------------------------------- */
/* Live: libunbound validating zones signed by knotd                       */

typedef struct knot {
    child c;
    char dir[64], server[32], anchor[128];
} knot;

static const char *find_knotd(void)
{
    static const char *const paths[] = {"/usr/sbin/knotd", "/usr/local/sbin/knotd"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        if (access(paths[i], X_OK) == 0)
            return paths[i];
    return NULL;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static const char zone_sec[] =
    "$TTL 300\n"
    "@ SOA ns h 1 3600 600 86400 300\n"
    "@ NS ns\n"
    "ns A 127.0.0.1\n"
    "a A 192.0.2.10\n"
    "alias CNAME a\n"
    "mx MX 10 Mail.sec.test.\n"
    "mail A 192.0.2.25\n"
    "_25._tcp.mail TLSA 3 1 1 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"
    "txt TXT \"v=STSv1; \" \"id=7\"\n";

static int knot_config(knot *k, int port)
{
    char conf[2048];
    snprintf(conf, sizeof conf,
             "server:\n  listen: 127.0.0.1@%d\n  rundir: %s\n"
             "database:\n  storage: %s\n"
             "log:\n  - target: stderr\n    any: error\n"
             "policy:\n  - id: lab\n    algorithm: ecdsap256sha256\n    single-type-signing: on\n"
             "template:\n  - id: default\n    storage: %s\n    file: %%s.zone\n"
             "zone:\n"
             "  - domain: sec.test.\n    dnssec-signing: on\n    dnssec-policy: lab\n"
             "  - domain: bad.test.\n    dnssec-signing: on\n    dnssec-policy: lab\n"
             "  - domain: plain.test.\n",
             port, k->dir, k->dir, k->dir);
    write_file(k->dir, "knot.conf", conf);
    write_file(k->dir, "sec.test.zone", zone_sec);
    write_file(k->dir, "bad.test.zone", zone_sec);
    write_file(k->dir, "plain.test.zone", zone_sec);
    return 0;
}

/* The zone's DNSKEY RRset from knot, once it has signed the zone. A fresh
 * ldns resolver per try: ldns stops asking a server that failed once. */
static ldns_rr_list *fetch_dnskeys(int port, const char *zone)
{
    ldns_rdf *dn = ldns_dname_new_frm_str(zone);
    ldns_rr_list *keys = NULL;
    for (int i = 0; i < 50 && !keys; i++) {
        ldns_resolver *res = ldns_resolver_new();
        ldns_rdf *ns = ldns_rdf_new_frm_str(LDNS_RDF_TYPE_A, "127.0.0.1");
        ldns_resolver_push_nameserver(res, ns);
        ldns_rdf_deep_free(ns);
        ldns_resolver_set_port(res, (uint16_t)port);
        ldns_resolver_set_retry(res, 1);
        ldns_resolver_set_timeout(res, (struct timeval){.tv_sec = 1});
        ldns_pkt *p = ldns_resolver_query(res, dn, LDNS_RR_TYPE_DNSKEY, LDNS_RR_CLASS_IN, 0);
        if (p)
            keys = ldns_pkt_rr_list_by_type(p, LDNS_RR_TYPE_DNSKEY, LDNS_SECTION_ANSWER);
        ldns_pkt_free(p);
        ldns_resolver_deep_free(res);
        if (!keys)
            usleep(100 * 1000);
    }
    ldns_rdf_deep_free(dn);
    return keys;
}

/* Anchors: sec.test. with its real key; bad.test. with sec.test.'s key, so
 * bad.test. (correctly signed with its own key) fails validation. plain.test.
 * has no anchor: insecure. */
static int write_anchor(knot *k, int port)
{
    ldns_rr_list *sec = fetch_dnskeys(port, "sec.test.");
    ldns_rr_list *bad = fetch_dnskeys(port, "bad.test.");
    if (!sec || !bad)
        return -1;
    snprintf(k->anchor, sizeof k->anchor, "%s/anchor.key", k->dir);
    FILE *fp = fopen(k->anchor, "w");
    for (size_t i = 0; i < ldns_rr_list_rr_count(sec); i++) {
        ldns_rr *rr = ldns_rr_clone(ldns_rr_list_rr(sec, i));
        ldns_rr_print(fp, rr);
        ldns_rdf_deep_free(ldns_rr_owner(rr));
        ldns_rr_set_owner(rr, ldns_dname_new_frm_str("bad.test."));
        ldns_rr_print(fp, rr);
        ldns_rr_free(rr);
    }
    fclose(fp);
    ldns_rr_list_deep_free(sec);
    ldns_rr_list_deep_free(bad);
    return 0;
}

static int knot_setup(void **state)
{
    knot *k = calloc(1, sizeof *k);
    *state = k;
    const char *knotd = find_knotd();
    if (!knotd)
        return 0; /* tests skip */
    snprintf(k->dir, sizeof k->dir, "/tmp/smtpc-knot-XXXXXX");
    if (!mkdtemp(k->dir))
        return -1;
    int port = closed_port();
    knot_config(k, port);
    char conf[128];
    snprintf(conf, sizeof conf, "%s/knot.conf", k->dir);
    char *const argv[] = {(char *)knotd, "-c", conf, NULL};
    if (spawn(argv, &k->c) < 0)
        return -1;
    snprintf(k->server, sizeof k->server, "127.0.0.1:%d", port);
    if (write_anchor(k, port) < 0) {
        fprintf(stderr, "knotd did not serve signed zones\n");
        return -1;
    }
    return 0;
}

static int knot_teardown(void **state)
{
    knot *k = *state;
    reap(&k->c);
    if (k->dir[0]) {
        static const char *const files[] = {"knot.conf", "sec.test.zone", "bad.test.zone",
                                            "plain.test.zone", "anchor.key"};
        char path[256];
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
            snprintf(path, sizeof path, "%s/%s", k->dir, files[i]);
            unlink(path);
        }
        /* knot's key and journal databases */
        snprintf(path, sizeof path, "rm -rf '%s'", k->dir);
        if (system(path) != 0)
            fprintf(stderr, "could not remove %s\n", k->dir);
    }
    free(k);
    return 0;
}

static void test_live_validate_knot(void **state)
{
    knot *k = *state;
    if (!k->c.pid)
        skip();
    char *const servers[] = {k->server};
    dns_config cfg = {.servers = servers, .nservers = 1, .mode = DNSSEC_VALIDATE,
                      .trust_anchor = k->anchor, .timeout_ms = 5000};
    char err[256];
    dns_resolver *r = dns_resolver_new(&cfg, err, sizeof err);
    assert_non_null(r);
    static const live_case cases[] = {
        {"a.sec.test.", DNS_T_A, DNS_OK, DNS_SECURE, 1, "192.0.2.10", -1},
        {"alias.sec.test.", DNS_T_A, DNS_OK, DNS_SECURE, 1, "192.0.2.10", -1},
        {"alias.sec.test.", DNS_T_CNAME, DNS_OK, DNS_SECURE, 1, "a.sec.test", -1},
        {"mx.sec.test.", DNS_T_MX, DNS_OK, DNS_SECURE, 1, "mail.sec.test", -1},
        {"txt.sec.test.", DNS_T_TXT, DNS_OK, DNS_SECURE, 1, "v=STSv1; id=7", -1},
        {"_25._tcp.mail.sec.test.", DNS_T_TLSA, DNS_OK, DNS_SECURE, 1, NULL, -1},
        {"nx.sec.test.", DNS_T_A, DNS_NXDOMAIN, DNS_SECURE, 0, NULL, -1},
        {"a.sec.test.", DNS_T_TLSA, DNS_NODATA, DNS_SECURE, 0, NULL, -1},
        {"a.plain.test.", DNS_T_A, DNS_OK, DNS_INSECURE, 1, "192.0.2.10", -1},
        {"nx.plain.test.", DNS_T_A, DNS_NXDOMAIN, DNS_INSECURE, 0, NULL, -1},
    };
    run_cases(r, cases, sizeof cases / sizeof cases[0]);

    dns_answer a;
    dns_lookup(r, "a.bad.test.", DNS_T_A, &a);
    assert_int_equal(a.status, DNS_SERVFAIL);
    assert_int_equal(a.sec, DNS_BOGUS);
    assert_true(dns_ede_is_auth(a.ede));
    assert_int_equal(a.n, 0);
    assert_true(a.why[0] != '\0');
    dns_answer_free(&a);
    dns_lookup(r, "_25._tcp.mail.sec.test.", DNS_T_TLSA, &a);
    assert_int_equal(a.tlsa[0].len, 32);
    assert_int_equal(a.tlsa[0].data[1], 1);
    dns_answer_free(&a);
    dns_resolver_free(r);

    /* Trust-ad mode against an authoritative server: no AD, never secure. */
    cfg.mode = DNSSEC_TRUST_AD;
    r = dns_resolver_new(&cfg, err, sizeof err);
    dns_lookup(r, "a.sec.test.", DNS_T_A, &a);
    assert_int_equal(a.status, DNS_OK);
    assert_int_equal(a.sec, DNS_INSECURE);
    dns_answer_free(&a);
    dns_resolver_free(r);
}

int main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_parse_server),
        cmocka_unit_test(test_wire_a_secure),
        cmocka_unit_test(test_wire_aaaa),
        cmocka_unit_test(test_wire_cname_chain),
        cmocka_unit_test(test_wire_mx),
        cmocka_unit_test(test_wire_txt),
        cmocka_unit_test(test_wire_tlsa),
        cmocka_unit_test(test_wire_nxdomain_nodata),
        cmocka_unit_test(test_wire_failures),
        cmocka_unit_test(test_wire_ede),
        cmocka_unit_test(test_wire_truncated_input),
        cmocka_unit_test(test_wire_many_records),
        cmocka_unit_test(test_resolv_conf),
        cmocka_unit_test(test_config_servers),
        cmocka_unit_test(test_ede_from_why),
    };
    const struct CMUnitTest live[] = {
        cmocka_unit_test(test_live_trust_ad),
        cmocka_unit_test(test_live_off),
        cmocka_unit_test(test_live_timeout),
        cmocka_unit_test(test_live_servers),
        cmocka_unit_test(test_live_validate_fake),
        cmocka_unit_test(test_validate_bad_anchor),
    };
    const struct CMUnitTest knot_tests[] = {
        cmocka_unit_test(test_live_validate_knot),
    };
    signal(SIGPIPE, SIG_IGN);
    int rc = cmocka_run_group_tests_name("dns", pure, NULL, NULL);
    rc += cmocka_run_group_tests_name("dns-live", live, fake_setup, fake_teardown);
    rc += cmocka_run_group_tests_name("dns-knot", knot_tests, knot_setup, knot_teardown);
    return rc;
}
