/* Unit tests for gathering (spec 15-18) over the fixture resolver: next hop
 * to hosts (MX order, null MX, implicit MX, CNAMEs, authenticity), host to
 * addresses (CNAMEs, families, 16.6 ordering), TLSA discovery (where, CNAMEs,
 * errors vs insecure, usable records) and the allowed certificate names. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "dns.h"
#include "gather.h"

#define S DNS_SECURE
#define I DNS_INSECURE
#define B DNS_BOGUS

static int setup(void **state)
{
    *state = dns_fixture_new();
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    dns_resolver_free(*state);
    return 0;
}

static void add(dns_resolver *r, const char *name, dns_type t, dns_sec sec, const char *data)
{
    assert_int_equal(dns_fixture_add(r, name, t, sec, data), 0);
}

static void fx_fail(dns_resolver *r, const char *name, dns_type t, dns_status st, dns_sec sec,
                 int ede)
{
    assert_int_equal(dns_fixture_fail(r, name, t, st, sec, ede), 0);
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (!strstr(haystack, needle))
        fail_msg("\"%s\" does not contain \"%s\"", haystack, needle);
}

/* Fake random source: returns the values in turn. */
typedef struct {
    const uint32_t *v;
    size_t n, i;
} seq_rand;

static uint32_t next_rand(void *ud)
{
    seq_rand *s = ud;
    return s->v[s->i++ % s->n];
}

/* ------------------------------------------------------------------ */
/* The fixture resolver itself */

static void test_fixture_answers(void **state)
{
    dns_resolver *r = *state;
    dns_answer a;
    assert_int_equal(dns_lookup(r, "nowhere.example.", DNS_T_A, &a), 0);
    assert_int_equal(a.status, DNS_NXDOMAIN);
    assert_int_equal(a.sec, DNS_INSECURE);
    assert_int_equal(a.ede, -1);
    assert_int_equal(a.n, 0);
    dns_answer_free(&a);

    add(r, "Host.Example.", DNS_T_A, S, "192.0.2.1");
    add(r, "host.example", DNS_T_A, S, "192.0.2.2"); /* dot appended */
    assert_int_equal(dns_lookup(r, "HOST.example.", DNS_T_A, &a), 0);
    assert_int_equal(a.status, DNS_OK);
    assert_int_equal(a.sec, DNS_SECURE);
    assert_int_equal(a.n, 2);
    assert_string_equal(a.text[0], "192.0.2.1");
    assert_string_equal(a.text[1], "192.0.2.2");
    dns_answer_free(&a);

    /* The name exists: other types are NODATA, secure since the name is. */
    assert_int_equal(dns_lookup(r, "host.example.", DNS_T_AAAA, &a), 0);
    assert_int_equal(a.status, DNS_NODATA);
    assert_int_equal(a.sec, DNS_SECURE);
    dns_answer_free(&a);
    add(r, "host.example.", DNS_T_TXT, I, "v=x");
    assert_int_equal(dns_lookup(r, "host.example.", DNS_T_MX, &a), 0);
    assert_int_equal(a.status, DNS_NODATA);
    assert_int_equal(a.sec, DNS_INSECURE);
    dns_answer_free(&a);

    /* Relative names are refused (22.1) without reaching the backend. */
    assert_int_equal(dns_lookup(r, "host.example", DNS_T_A, &a), 0);
    assert_int_equal(a.status, DNS_ERROR);
    dns_answer_free(&a);

    assert_int_equal(dns_fixture_lookups(r, "host.example.", DNS_T_A), 1);
    assert_int_equal(dns_fixture_lookups(r, "HOST.EXAMPLE.", DNS_T_AAAA), 1);
    assert_int_equal(dns_fixture_lookups(r, "host.example.", DNS_T_TXT), 0);
    assert_int_equal(dns_fixture_lookups(r, "nowhere.example.", DNS_T_A), 1);
    assert_int_equal(dns_fixture_lookups(r, "nowhere.example.", DNS_T_MX), 0);
}

static void test_fixture_records(void **state)
{
    dns_resolver *r = *state;
    dns_answer a;
    add(r, "example.", DNS_T_MX, S, "10 MX1.Example.");
    add(r, "example.", DNS_T_MX, I, "0 .");
    assert_int_equal(dns_lookup(r, "example.", DNS_T_MX, &a), 0);
    assert_int_equal(a.n, 2);
    assert_string_equal(a.text[0], "mx1.example");
    assert_int_equal(a.pref[0], 10);
    assert_string_equal(a.text[1], "");
    assert_int_equal(a.pref[1], 0);
    assert_int_equal(a.sec, DNS_INSECURE); /* the weakest of the adds */
    dns_answer_free(&a);

    add(r, "www.example.", DNS_T_CNAME, S, "Target.Example.");
    assert_int_equal(dns_lookup(r, "www.example.", DNS_T_CNAME, &a), 0);
    assert_int_equal(a.n, 1);
    assert_string_equal(a.text[0], "target.example");
    dns_answer_free(&a);

    add(r, "_25._tcp.example.", DNS_T_TLSA, S, "3 1 1 00112233");
    assert_int_equal(dns_lookup(r, "_25._tcp.example.", DNS_T_TLSA, &a), 0);
    assert_int_equal(a.n, 1);
    assert_int_equal(a.tlsa[0].usage, 3);
    assert_int_equal(a.tlsa[0].selector, 1);
    assert_int_equal(a.tlsa[0].mtype, 1);
    assert_int_equal(a.tlsa[0].len, 4);
    assert_int_equal(a.tlsa[0].data[3], 0x33);
    dns_answer_free(&a);

    /* A CNAME is followed for other types; the chain's weakest status wins. */
    add(r, "target.example.", DNS_T_A, S, "192.0.2.9");
    assert_int_equal(dns_lookup(r, "www.example.", DNS_T_A, &a), 0);
    assert_int_equal(a.status, DNS_OK);
    assert_int_equal(a.sec, DNS_SECURE);
    assert_string_equal(a.text[0], "192.0.2.9");
    dns_answer_free(&a);
    assert_int_equal(dns_fixture_lookups(r, "target.example.", DNS_T_A), 0);

    assert_int_equal(dns_fixture_add(r, "bad.example.", DNS_T_MX, S, "ten bad."), 0);
    assert_int_equal(dns_lookup(r, "bad.example.", DNS_T_MX, &a), -1); /* malformed fixture */
}

static void test_fixture_failures(void **state)
{
    dns_resolver *r = *state;
    dns_answer a;
    fx_fail(r, "bogus.example.", DNS_T_MX, DNS_SERVFAIL, B, 6);
    assert_int_equal(dns_lookup(r, "bogus.example.", DNS_T_MX, &a), 0);
    assert_int_equal(a.status, DNS_SERVFAIL);
    assert_int_equal(a.sec, DNS_BOGUS);
    assert_int_equal(a.ede, 6);
    assert_int_equal(a.n, 0);
    assert_true(a.why[0] != '\0');
    dns_answer_free(&a);

    /* A failure with records: both come back (15.3 step 6). */
    fx_fail(r, "part.example.", DNS_T_MX, DNS_ERROR, I, -1);
    add(r, "part.example.", DNS_T_MX, I, "10 mx.part.example.");
    assert_int_equal(dns_lookup(r, "part.example.", DNS_T_MX, &a), 0);
    assert_int_equal(a.status, DNS_ERROR);
    assert_int_equal(a.n, 1);
    dns_answer_free(&a);

    /* A proven absence. */
    fx_fail(r, "gone.example.", DNS_T_CNAME, DNS_NXDOMAIN, S, -1);
    assert_int_equal(dns_lookup(r, "gone.example.", DNS_T_CNAME, &a), 0);
    assert_true(dns_not_found(&a));
    assert_int_equal(a.sec, DNS_SECURE);
    dns_answer_free(&a);
}

/* ------------------------------------------------------------------ */
/* Spec 15: destinations */

static void assert_hosts(const gather_dest *d, const char *const *names, const int *prefs,
                         size_t n)
{
    assert_int_equal(d->nhosts, n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(d->hosts[i].name, names[i]);
        assert_int_equal(d->hosts[i].pref, prefs[i]);
        assert_false(d->hosts[i].is_ip);
    }
}

static void test_dest_ip_next_hop(void **state)
{
    dns_resolver *r = *state;
    static const struct {
        const char *in, *ip;
    } cases[] = {
        {"192.0.2.1", "192.0.2.1"},
        {"2001:db8::1", "2001:db8::1"},
        {"[192.0.2.7]", "192.0.2.7"},
        {"[IPv6:2001:db8::7]", "2001:db8::7"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gather_dest d;
        gather_destinations(r, cases[i].in, NULL, NULL, &d);
        assert_int_equal(d.st.err, GATHER_OK);
        assert_int_equal(d.nhosts, 1);
        assert_true(d.hosts[0].is_ip);
        assert_string_equal(d.hosts[0].name, cases[i].ip);
        assert_int_equal(d.hosts[0].pref, -1);
        assert_false(d.have_mx);
        assert_false(d.orig_authentic);
        assert_false(d.expanded_authentic);
        assert_string_equal(d.expanded_next_hop, "");
    }
    /* No DNS at all for IP next hops. */
    assert_int_equal(dns_fixture_lookups(r, "192.0.2.1.", DNS_T_MX), 0);
    assert_int_equal(dns_fixture_lookups(r, "192.0.2.1.", DNS_T_CNAME), 0);
}

static void test_dest_mx_sorted(void **state)
{
    dns_resolver *r = *state;
    add(r, "example.net.", DNS_T_MX, S, "30 mx3.example.net.");
    add(r, "example.net.", DNS_T_MX, S, "10 MX1.example.net.");
    add(r, "example.net.", DNS_T_MX, S, "20 mx2.example.net.");
    gather_dest d;
    gather_destinations(r, "Example.NET", NULL, NULL, &d);
    assert_int_equal(d.st.err, GATHER_OK);
    assert_false(d.st.permanent);
    assert_true(d.have_mx);
    assert_true(d.orig_authentic);
    assert_true(d.expanded_authentic);
    assert_string_equal(d.expanded_next_hop, "example.net");
    static const char *const names[] = {"mx1.example.net", "mx2.example.net", "mx3.example.net"};
    static const int prefs[] = {10, 20, 30};
    assert_hosts(&d, names, prefs, 3);

    /* The random source does not disturb distinct preferences. */
    static const uint32_t v[] = {7, 3, 1, 0};
    seq_rand s = {v, 4, 0};
    gather_destinations(r, "example.net", next_rand, &s, &d);
    assert_hosts(&d, names, prefs, 3);
}

static void test_dest_mx_equal_shuffled(void **state)
{
    dns_resolver *r = *state;
    add(r, "example.net.", DNS_T_MX, S, "20 d.example.net.");
    add(r, "example.net.", DNS_T_MX, S, "10 a.example.net.");
    add(r, "example.net.", DNS_T_MX, S, "10 b.example.net.");
    add(r, "example.net.", DNS_T_MX, S, "10 c.example.net.");
    add(r, "example.net.", DNS_T_MX, S, "5 e.example.net.");
    gather_dest d;

    /* Without a random source: resolver order within a preference. */
    gather_destinations(r, "example.net", NULL, NULL, &d);
    static const char *const fixed[] = {"e.example.net", "a.example.net", "b.example.net",
                                        "c.example.net", "d.example.net"};
    static const int prefs[] = {5, 10, 10, 10, 20};
    assert_hosts(&d, fixed, prefs, 5);

    /* Fisher-Yates over [a b c] with draws 0, 0: swap(c, a) -> c b a, swap(b, c) -> b c a. */
    static const uint32_t v0[] = {0};
    seq_rand s = {v0, 1, 0};
    gather_destinations(r, "example.net", next_rand, &s, &d);
    static const char *const shuffled[] = {"e.example.net", "b.example.net", "c.example.net",
                                           "a.example.net", "d.example.net"};
    assert_hosts(&d, shuffled, prefs, 5);

    /* Every order of the equal group is reachable; the others never move. */
    char seen[6][3];
    size_t nseen = 0;
    for (uint32_t x = 0; x < 3; x++) {
        for (uint32_t y = 0; y < 2; y++) {
            uint32_t v[] = {x, y};
            seq_rand s2 = {v, 2, 0};
            gather_destinations(r, "example.net", next_rand, &s2, &d);
            assert_int_equal(d.nhosts, 5);
            assert_string_equal(d.hosts[0].name, "e.example.net");
            assert_string_equal(d.hosts[4].name, "d.example.net");
            char perm[3] = {d.hosts[1].name[0], d.hosts[2].name[0], d.hosts[3].name[0]};
            for (size_t k = 0; k < nseen; k++)
                assert_memory_not_equal(seen[k], perm, 3);
            memcpy(seen[nseen++], perm, 3);
        }
    }
    assert_int_equal(nseen, 6);
}

static void test_dest_null_mx(void **state)
{
    dns_resolver *r = *state;
    add(r, "nomail.example.", DNS_T_MX, S, "0 .");
    gather_dest d;
    gather_destinations(r, "nomail.example", NULL, NULL, &d);
    assert_int_equal(d.st.err, GATHER_NO_MAIL);
    assert_true(d.st.permanent);
    assert_true(d.have_mx);
    assert_int_equal(d.nhosts, 0);
    assert_contains(d.st.msg, "nomail.example");

    /* Null MX among other records is not a null MX (RFC 7505 3: only alone). */
    add(r, "mixed.example.", DNS_T_MX, S, "0 .");
    add(r, "mixed.example.", DNS_T_MX, S, "10 mx.mixed.example.");
    gather_destinations(r, "mixed.example", NULL, NULL, &d);
    assert_int_equal(d.st.err, GATHER_OK);
    static const char *const names[] = {"mx.mixed.example"};
    static const int prefs[] = {10};
    assert_hosts(&d, names, prefs, 1);
}

static void test_dest_implicit_mx(void **state)
{
    dns_resolver *r = *state;
    gather_dest d;
    /* NODATA: the name has an address but no MX. */
    add(r, "host.example.", DNS_T_A, S, "192.0.2.1");
    gather_destinations(r, "host.example", NULL, NULL, &d);
    assert_int_equal(d.st.err, GATHER_OK);
    assert_false(d.have_mx);
    static const char *const names[] = {"host.example"};
    static const int prefs[] = {-1};
    assert_hosts(&d, names, prefs, 1);
    assert_true(d.orig_authentic);

    /* NXDOMAIN on the MX lookup: implicit MX as well (the address lookup decides). */
    gather_destinations(r, "nxdomain.example", NULL, NULL, &d);
    assert_int_equal(d.st.err, GATHER_OK);
    assert_false(d.have_mx);
    static const char *const names2[] = {"nxdomain.example"};
    assert_hosts(&d, names2, prefs, 1);
    assert_false(d.orig_authentic); /* unlisted: insecure */
}

/* name c<i>.example CNAME c<i+1>.example for i < n, MX at c<n>. */
static void cname_chain(dns_resolver *r, const char *prefix, int n, dns_type final,
                        const char *data)
{
    char name[64], target[64];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%s%d.example.", prefix, i);
        snprintf(target, sizeof target, "%s%d.example.", prefix, i + 1);
        add(r, name, DNS_T_CNAME, S, target);
    }
    snprintf(name, sizeof name, "%s%d.example.", prefix, n);
    add(r, name, final, S, data);
}

static void test_dest_cname_limit(void **state)
{
    dns_resolver *r = *state;
    gather_dest d;
    cname_chain(r, "c", 15, DNS_T_MX, "10 mx.example.");
    gather_destinations(r, "c0.example", NULL, NULL, &d);
    assert_int_equal(d.st.err, GATHER_OK);
    assert_string_equal(d.expanded_next_hop, "c15.example");
    assert_true(d.have_mx);
    assert_int_equal(d.nhosts, 1);
    assert_true(d.orig_authentic);
    assert_true(d.expanded_authentic);

    cname_chain(r, "e", 16, DNS_T_MX, "10 mx.example.");
    gather_destinations(r, "e0.example", NULL, NULL, &d);
    assert_int_equal(d.st.err, GATHER_CNAME_LIMIT);
    assert_false(d.st.permanent); /* 15.4 */
    assert_int_equal(d.nhosts, 0);
    assert_int_equal(dns_fixture_lookups(r, "e16.example.", DNS_T_CNAME), 0);
    assert_int_equal(dns_fixture_lookups(r, "e16.example.", DNS_T_MX), 0);
    assert_int_equal(dns_fixture_lookups(r, "e15.example.", DNS_T_CNAME), 1);
}

static void test_dest_cname_loop(void **state)
{
    dns_resolver *r = *state;
    gather_dest d;
    add(r, "a.example.", DNS_T_CNAME, S, "b.example.");
    add(r, "b.example.", DNS_T_CNAME, S, "c.example.");
    add(r, "c.example.", DNS_T_CNAME, S, "A.example.");
    gather_destinations(r, "a.example", NULL, NULL, &d);
    assert_int_equal(d.st.err, GATHER_CNAME_LOOP);
    assert_false(d.st.permanent);
    assert_int_equal(d.nhosts, 0);
    assert_int_equal(dns_fixture_lookups(r, "a.example.", DNS_T_CNAME), 1);

    /* A CNAME to the name itself counts as no CNAME (15.3 step 3). */
    add(r, "self.example.", DNS_T_CNAME, S, "self.example.");
    add(r, "self.example.", DNS_T_MX, S, "10 mx.self.example.");
    gather_destinations(r, "self.example", NULL, NULL, &d);
    assert_int_equal(d.st.err, GATHER_OK);
    assert_true(d.have_mx);
    assert_string_equal(d.hosts[0].name, "mx.self.example");
}

static void test_dest_lookup_failures(void **state)
{
    dns_resolver *r = *state;
    gather_dest d;
    /* CNAME lookup SERVFAIL: transient, with the EDE. */
    fx_fail(r, "cfail.example.", DNS_T_CNAME, DNS_SERVFAIL, I, 6);
    add(r, "cfail.example.", DNS_T_MX, S, "10 mx.example.");
    gather_destinations(r, "cfail.example", NULL, NULL, &d);
    assert_int_equal(d.st.err, GATHER_DNS);
    assert_false(d.st.permanent);
    assert_int_equal(d.st.ede, 6);
    assert_contains(d.st.msg, "cname lookup for cfail.example: SERVFAIL");
    assert_int_equal(dns_fixture_lookups(r, "cfail.example.", DNS_T_MX), 0);
    assert_false(d.orig_authentic);

    /* MX SERVFAIL: transient, no implicit MX. */
    fx_fail(r, "mfail.example.", DNS_T_MX, DNS_SERVFAIL, I, 22);
    gather_destinations(r, "mfail.example", NULL, NULL, &d);
    assert_int_equal(d.st.err, GATHER_DNS);
    assert_false(d.st.permanent);
    assert_int_equal(d.st.ede, 22);
    assert_int_equal(d.nhosts, 0);
    assert_contains(d.st.msg, "mx lookup for mfail.example: SERVFAIL");
    assert_contains(d.st.msg, "no-reachable-authority");

    /* Bogus answer (validate mode): an error, never used. */
    add(r, "bogus.example.", DNS_T_MX, B, "10 mx.evil.example.");
    gather_destinations(r, "bogus.example", NULL, NULL, &d);
    assert_int_equal(d.st.err, GATHER_DNS);
    assert_false(d.st.permanent);
    assert_int_equal(d.nhosts, 0);

    /* Timeout. */
    fx_fail(r, "slow.example.", DNS_T_MX, DNS_TEMPFAIL, I, -1);
    gather_destinations(r, "slow.example", NULL, NULL, &d);
    assert_int_equal(d.st.err, GATHER_DNS);
    assert_int_equal(d.st.ede, -1);

    /* MX NXDOMAIN (secure): implicit MX. */
    fx_fail(r, "nx.example.", DNS_T_CNAME, DNS_NXDOMAIN, S, -1);
    fx_fail(r, "nx.example.", DNS_T_MX, DNS_NXDOMAIN, S, -1);
    gather_destinations(r, "nx.example", NULL, NULL, &d);
    assert_int_equal(d.st.err, GATHER_OK);
    assert_false(d.have_mx);
    assert_int_equal(d.nhosts, 1);
    assert_string_equal(d.hosts[0].name, "nx.example");
    assert_true(d.orig_authentic);
    assert_true(d.expanded_authentic);

    /* An error beside some records: the records are used (15.3 step 6). */
    fx_fail(r, "part.example.", DNS_T_MX, DNS_ERROR, I, -1);
    add(r, "part.example.", DNS_T_MX, I, "10 mx.part.example.");
    gather_destinations(r, "part.example", NULL, NULL, &d);
    assert_int_equal(d.st.err, GATHER_OK);
    assert_true(d.have_mx);
    assert_int_equal(d.nhosts, 1);
    assert_false(d.expanded_authentic);
}

static void test_dest_invalid_names(void **state)
{
    dns_resolver *r = *state;
    gather_dest d;
    add(r, "bad.example.", DNS_T_MX, S, "10 good.example.");
    add(r, "bad.example.", DNS_T_MX, S, "20 -bad-.example.");
    gather_destinations(r, "bad.example", NULL, NULL, &d);
    assert_int_equal(d.st.err, GATHER_DNS);
    assert_true(d.st.permanent);
    assert_true(d.have_mx);
    assert_int_equal(d.nhosts, 0);
    assert_contains(d.st.msg, "invalid host name in mx record");

    /* Underscores are accepted in MX targets (22.2). */
    add(r, "under.example.", DNS_T_MX, S, "10 mx_1.under.example.");
    gather_destinations(r, "under.example", NULL, NULL, &d);
    assert_int_equal(d.st.err, GATHER_OK);
    assert_string_equal(d.hosts[0].name, "mx_1.under.example");

    /* An IP address as MX target is no host name (RFC 5321 5.1). */
    add(r, "ipmx.example.", DNS_T_MX, S, "10 192.0.2.1.");
    gather_destinations(r, "ipmx.example", NULL, NULL, &d);
    assert_int_equal(d.st.err, GATHER_DNS);
    assert_true(d.st.permanent);

    /* CNAME to an invalid name: transient errDNS. */
    add(r, "cbad.example.", DNS_T_CNAME, S, "bad_name.example.");
    gather_destinations(r, "cbad.example", NULL, NULL, &d);
    assert_int_equal(d.st.err, GATHER_DNS);
    assert_false(d.st.permanent);

    /* An invalid next hop never reaches DNS. */
    gather_destinations(r, "-x.example", NULL, NULL, &d);
    assert_int_equal(d.st.err, GATHER_DNS);
    assert_true(d.st.permanent);
    assert_int_equal(dns_fixture_lookups(r, "-x.example.", DNS_T_CNAME), 0);
}

static void test_dest_bounded(void **state)
{
    dns_resolver *r = *state;
    for (int i = 40; i > 0; i--) {
        char mx[64];
        snprintf(mx, sizeof mx, "%d mx%d.many.example.", i, i);
        add(r, "many.example.", DNS_T_MX, S, mx);
    }
    gather_dest d;
    gather_destinations(r, "many.example", NULL, NULL, &d);
    assert_int_equal(d.st.err, GATHER_OK);
    assert_int_equal(d.nhosts, GATHER_MAX_HOSTS);
    for (size_t i = 0; i < d.nhosts; i++)
        assert_int_equal(d.hosts[i].pref, (int)i + 1);
}

/* 15.3: authenticity of the original and expanded next hop. */
static void test_dest_authentic_no_cname(void **state)
{
    (void)state;
    static const struct {
        dns_sec cname, mx;
        bool orig, exp;
    } rows[] = {
        {S, S, true, true},
        {I, S, false, false},
        {S, I, false, false},
        {I, I, false, false},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        dns_resolver *r = dns_fixture_new();
        fx_fail(r, "example.org.", DNS_T_CNAME, DNS_NODATA, rows[i].cname, -1);
        add(r, "example.org.", DNS_T_MX, rows[i].mx, "10 mx.example.org.");
        gather_dest d;
        gather_destinations(r, "example.org", NULL, NULL, &d);
        assert_int_equal(d.st.err, GATHER_OK);
        if (d.orig_authentic != rows[i].orig || d.expanded_authentic != rows[i].exp)
            fail_msg("row %zu: orig %d exp %d", i, d.orig_authentic, d.expanded_authentic);
        dns_resolver_free(r);
    }
}

static void test_dest_authentic_cname(void **state)
{
    (void)state;
    /* example.org CNAME target.example (c0); target's CNAME lookup (c1); target MX (mx).
     * orig comes only from the first lookup, expanded from all of them. */
    for (int bits = 0; bits < 8; bits++) {
        dns_sec c0 = bits & 1 ? S : I, c1 = bits & 2 ? S : I, mx = bits & 4 ? S : I;
        dns_resolver *r = dns_fixture_new();
        add(r, "example.org.", DNS_T_CNAME, c0, "target.example.");
        fx_fail(r, "target.example.", DNS_T_CNAME, DNS_NODATA, c1, -1);
        add(r, "target.example.", DNS_T_MX, mx, "10 mx.target.example.");
        gather_dest d;
        gather_destinations(r, "example.org", NULL, NULL, &d);
        assert_int_equal(d.st.err, GATHER_OK);
        assert_string_equal(d.expanded_next_hop, "target.example");
        bool want_orig = c0 == S, want_exp = c0 == S && c1 == S && mx == S;
        if (d.orig_authentic != want_orig || d.expanded_authentic != want_exp)
            fail_msg("bits %d: orig %d exp %d", bits, d.orig_authentic, d.expanded_authentic);
        assert_int_equal(dns_fixture_lookups(r, "example.org.", DNS_T_MX), 0);
        dns_resolver_free(r);
    }
}

/* ------------------------------------------------------------------ */
/* Spec 16: addresses */

static void assert_ips(const gather_ips *g, const char *const *ips, size_t n)
{
    if (g->nips != n)
        fail_msg("%zu addresses, want %zu (%s)", g->nips, n, g->st.msg);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(g->ips[i], ips[i]);
}

static void test_ips_ip_host(void **state)
{
    dns_resolver *r = *state;
    gather_ips g;
    gather_ips_lookup(r, "192.0.2.5", 0, NULL, 0, &g);
    assert_int_equal(g.st.err, GATHER_OK);
    static const char *const want[] = {"192.0.2.5"};
    assert_ips(&g, want, 1);
    assert_false(g.authentic);
    assert_false(g.expanded_authentic);
    assert_false(g.dualstack);
    assert_string_equal(g.expanded_host, "");
    gather_ips_lookup(r, "[IPv6:2001:db8::5]", 0, NULL, 0, &g);
    static const char *const want6[] = {"2001:db8::5"};
    assert_ips(&g, want6, 1);
}

static void dual_host(dns_resolver *r, const char *name, dns_sec s4, dns_sec s6)
{
    add(r, name, DNS_T_A, s4, "192.0.2.1");
    add(r, name, DNS_T_A, s4, "192.0.2.2");
    add(r, name, DNS_T_AAAA, s6, "2001:db8::1");
    add(r, name, DNS_T_AAAA, s6, "2001:db8::2");
}

static void test_ips_families(void **state)
{
    dns_resolver *r = *state;
    gather_ips g;
    dual_host(r, "mx.example.", S, S);
    gather_ips_lookup(r, "mx.example", 0, NULL, 0, &g);
    assert_int_equal(g.st.err, GATHER_OK);
    /* RFC 8305 4: families interleaved, IPv6 first. */
    static const char *const both[] = {"2001:db8::1", "192.0.2.1", "2001:db8::2", "192.0.2.2"};
    assert_ips(&g, both, 4);
    assert_true(g.dualstack);
    assert_true(g.authentic);
    assert_true(g.expanded_authentic);
    assert_string_equal(g.expanded_host, "mx.example");

    gather_ips_lookup(r, "mx.example", 4, NULL, 0, &g);
    static const char *const v4[] = {"192.0.2.1", "192.0.2.2"};
    assert_ips(&g, v4, 2);
    assert_false(g.dualstack);
    gather_ips_lookup(r, "mx.example", 6, NULL, 0, &g);
    static const char *const v6[] = {"2001:db8::1", "2001:db8::2"};
    assert_ips(&g, v6, 2);
    assert_int_equal(dns_fixture_lookups(r, "mx.example.", DNS_T_A), 2);
    assert_int_equal(dns_fixture_lookups(r, "mx.example.", DNS_T_AAAA), 2);

    /* Single-family host: not dualstack. */
    add(r, "v4.example.", DNS_T_A, S, "192.0.2.9");
    gather_ips_lookup(r, "v4.example", 0, NULL, 0, &g);
    assert_int_equal(g.st.err, GATHER_OK);
    assert_false(g.dualstack);
    assert_true(g.authentic); /* NODATA for AAAA, secure */
    gather_ips_lookup(r, "v4.example", 6, NULL, 0, &g);
    assert_int_equal(g.st.err, GATHER_DNS); /* Q15: no address is an error */
    assert_true(g.st.permanent);
    assert_contains(g.st.msg, "looking up \"v4.example.\"");
}

static void test_ips_authentic(void **state)
{
    (void)state;
    /* The address lookups' status goes into both flags; AND of A and AAAA. */
    static const struct {
        dns_sec s4, s6;
        bool auth;
    } rows[] = {{S, S, true}, {S, I, false}, {I, S, false}, {I, I, false}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        dns_resolver *r = dns_fixture_new();
        fx_fail(r, "mx.example.", DNS_T_CNAME, DNS_NODATA, S, -1);
        dual_host(r, "mx.example.", rows[i].s4, rows[i].s6);
        gather_ips g;
        gather_ips_lookup(r, "mx.example", 0, NULL, 0, &g);
        assert_int_equal(g.st.err, GATHER_OK);
        if (g.authentic != rows[i].auth || g.expanded_authentic != rows[i].auth)
            fail_msg("row %zu: auth %d exp %d", i, g.authentic, g.expanded_authentic);
        dns_resolver_free(r);
    }
}

static void test_ips_cname_authentic(void **state)
{
    (void)state;
    /* mx.example CNAME c1 (s0) CNAME c2 (s1); c2's CNAME lookup (s2); c2's A (sa).
     * authentic = first CNAME lookup AND address lookup; expanded = AND of all. */
    for (int bits = 0; bits < 16; bits++) {
        dns_sec s0 = bits & 1 ? S : I, s1 = bits & 2 ? S : I, s2 = bits & 4 ? S : I,
                sa = bits & 8 ? S : I;
        dns_resolver *r = dns_fixture_new();
        add(r, "mx.example.", DNS_T_CNAME, s0, "c1.example.");
        add(r, "c1.example.", DNS_T_CNAME, s1, "C2.example.");
        fx_fail(r, "c2.example.", DNS_T_CNAME, DNS_NODATA, s2, -1);
        add(r, "c2.example.", DNS_T_A, sa, "192.0.2.1");
        fx_fail(r, "c2.example.", DNS_T_AAAA, DNS_NODATA, sa, -1);
        gather_ips g;
        gather_ips_lookup(r, "mx.example", 0, NULL, 0, &g);
        assert_int_equal(g.st.err, GATHER_OK);
        assert_string_equal(g.expanded_host, "c2.example");
        bool want_auth = s0 == S && sa == S;
        bool want_exp = s0 == S && s1 == S && s2 == S && sa == S;
        if (g.authentic != want_auth || g.expanded_authentic != want_exp)
            fail_msg("bits %d: auth %d exp %d", bits, g.authentic, g.expanded_authentic);
        assert_int_equal(dns_fixture_lookups(r, "mx.example.", DNS_T_A), 0);
        dns_resolver_free(r);
    }
}

static void test_ips_cname_limit(void **state)
{
    dns_resolver *r = *state;
    gather_ips g;
    cname_chain(r, "h", 11, DNS_T_A, "192.0.2.11");
    gather_ips_lookup(r, "h0.example", 4, NULL, 0, &g);
    assert_int_equal(g.st.err, GATHER_OK);
    assert_string_equal(g.expanded_host, "h11.example");
    static const char *const want[] = {"192.0.2.11"};
    assert_ips(&g, want, 1);

    cname_chain(r, "k", 12, DNS_T_A, "192.0.2.12");
    gather_ips_lookup(r, "k0.example", 4, NULL, 0, &g);
    assert_int_equal(g.st.err, GATHER_CNAME_LIMIT);
    assert_int_equal(g.nips, 0);
    assert_int_equal(dns_fixture_lookups(r, "k12.example.", DNS_T_A), 0);
    assert_int_equal(dns_fixture_lookups(r, "k12.example.", DNS_T_CNAME), 0);

    /* A CNAME to itself ends the chain. */
    add(r, "self.example.", DNS_T_CNAME, S, "self.example.");
    add(r, "self.example.", DNS_T_A, S, "192.0.2.3");
    gather_ips_lookup(r, "self.example", 4, NULL, 0, &g);
    assert_int_equal(g.st.err, GATHER_OK);
    assert_string_equal(g.expanded_host, "self.example");
}

static void test_ips_failures(void **state)
{
    dns_resolver *r = *state;
    gather_ips g;
    /* An error in one family, data in the other: keep the data, not authentic. */
    fx_fail(r, "half.example.", DNS_T_A, DNS_SERVFAIL, I, 23);
    add(r, "half.example.", DNS_T_AAAA, S, "2001:db8::3");
    gather_ips_lookup(r, "half.example", 0, NULL, 0, &g);
    assert_int_equal(g.st.err, GATHER_OK);
    static const char *const want[] = {"2001:db8::3"};
    assert_ips(&g, want, 1);
    assert_false(g.authentic);
    assert_false(g.expanded_authentic);

    /* Both failing: the error and its EDE. */
    fx_fail(r, "dead.example.", DNS_T_A, DNS_NODATA, S, -1);
    fx_fail(r, "dead.example.", DNS_T_AAAA, DNS_SERVFAIL, B, 7);
    gather_ips_lookup(r, "dead.example", 0, NULL, 0, &g);
    assert_int_equal(g.st.err, GATHER_DNS);
    assert_false(g.st.permanent);
    assert_int_equal(g.st.ede, 7);
    assert_contains(g.st.msg, "looking up \"dead.example.\": SERVFAIL");
    assert_contains(g.st.msg, "signature-expired");
    assert_int_equal(g.nips, 0);

    /* Nothing at all (NXDOMAIN): an error (Q15). */
    gather_ips_lookup(r, "nothing.example", 0, NULL, 0, &g);
    assert_int_equal(g.st.err, GATHER_DNS);
    assert_true(g.st.permanent);
    assert_int_equal(g.nips, 0);

    /* CNAME lookup failure is returned as is. */
    fx_fail(r, "cfail.example.", DNS_T_CNAME, DNS_SERVFAIL, I, 6);
    add(r, "cfail.example.", DNS_T_A, S, "192.0.2.1");
    gather_ips_lookup(r, "cfail.example", 0, NULL, 0, &g);
    assert_int_equal(g.st.err, GATHER_DNS);
    assert_int_equal(g.st.ede, 6);
    assert_int_equal(dns_fixture_lookups(r, "cfail.example.", DNS_T_A), 0);

    /* CNAME to a name that does not parse strictly (16.3). */
    add(r, "cu.example.", DNS_T_CNAME, S, "under_score.example.");
    add(r, "under_score.example.", DNS_T_A, S, "192.0.2.1");
    gather_ips_lookup(r, "cu.example", 0, NULL, 0, &g);
    assert_int_equal(g.st.err, GATHER_DNS);
    assert_contains(g.st.msg, "parsing cname-resolved domain");

    /* MX targets with underscores are looked up (22.2). */
    add(r, "mx_1.example.", DNS_T_A, S, "192.0.2.4");
    gather_ips_lookup(r, "mx_1.example", 0, NULL, 0, &g);
    assert_int_equal(g.st.err, GATHER_OK);
    assert_string_equal(g.expanded_host, "mx_1.example");

    /* Bogus address answer: error. */
    add(r, "bogus.example.", DNS_T_A, B, "192.0.2.66");
    gather_ips_lookup(r, "bogus.example", 4, NULL, 0, &g);
    assert_int_equal(g.st.err, GATHER_DNS);
    assert_int_equal(g.nips, 0);
}

/* 16.6: ordering given previous attempts. */
static void test_ips_order(void **state)
{
    dns_resolver *r = *state;
    add(r, "dual.example.", DNS_T_AAAA, S, "2001:db8::1");
    add(r, "dual.example.", DNS_T_A, S, "192.0.2.1");
    add(r, "dual.example.", DNS_T_AAAA, S, "2001:db8::2");
    add(r, "dual.example.", DNS_T_A, S, "192.0.2.2");
    add(r, "single.example.", DNS_T_A, S, "192.0.2.1");
    add(r, "single.example.", DNS_T_A, S, "192.0.2.2");
    add(r, "single.example.", DNS_T_A, S, "192.0.2.3");
    static const struct {
        const char *host;
        const char *prev[3];
        size_t nprev;
        const char *want[4];
        size_t nwant;
    } rows[] = {
        /* No history: resolver order (families interleaved). */
        {"dual.example", {0}, 0, {"2001:db8::1", "192.0.2.1", "2001:db8::2", "192.0.2.2"}, 4},
        /* Alternate the family: after IPv4, IPv6 first. */
        {"dual.example", {"192.0.2.2"}, 1,
         {"2001:db8::1", "2001:db8::2", "192.0.2.2", "192.0.2.1"}, 4},
        /* After IPv6, IPv4 first (address text compared as addresses). */
        {"dual.example", {"2001:0db8::2"}, 1,
         {"192.0.2.1", "192.0.2.2", "2001:db8::2", "2001:db8::1"}, 4},
        /* Two IPv4 attempts before: no preference for the last one. */
        {"dual.example", {"192.0.2.2", "192.0.2.2"}, 2,
         {"2001:db8::1", "2001:db8::2", "192.0.2.1", "192.0.2.2"}, 4},
        /* Last was IPv6 after an IPv4: IPv4 first, the IPv6 one retried first of its family. */
        {"dual.example", {"192.0.2.1", "2001:db8::2"}, 2,
         {"192.0.2.1", "192.0.2.2", "2001:db8::2", "2001:db8::1"}, 4},
        /* Single family: retry the same IP once (greylisting)... */
        {"single.example", {"192.0.2.2"}, 1, {"192.0.2.2", "192.0.2.1", "192.0.2.3"}, 3},
        /* ...but not twice. */
        {"single.example", {"192.0.2.2", "192.0.2.2"}, 2,
         {"192.0.2.1", "192.0.2.2", "192.0.2.3"}, 3},
        /* An IPv6 history on an IPv4-only host keeps the order. */
        {"single.example", {"2001:db8::9"}, 1, {"192.0.2.1", "192.0.2.2", "192.0.2.3"}, 3},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        gather_ips g;
        gather_ips_lookup(r, rows[i].host, 0, (char *const *)rows[i].prev, rows[i].nprev, &g);
        assert_int_equal(g.st.err, GATHER_OK);
        if (g.nips != rows[i].nwant)
            fail_msg("row %zu: %zu addresses", i, g.nips);
        for (size_t k = 0; k < g.nips; k++)
            if (strcmp(g.ips[k], rows[i].want[k]) != 0)
                fail_msg("row %zu: address %zu is %s, want %s", i, k, g.ips[k], rows[i].want[k]);
    }
}

/* ------------------------------------------------------------------ */
/* Spec 17: TLSA */

#define H32 "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"
#define H64 H32 H32

static const char *ee_sha256 = "3 1 1 " H32;
static const char *ta_sha512 = "2 0 2 " H64;

static void test_tlsa_at_host(void **state)
{
    dns_resolver *r = *state;
    add(r, "_25._tcp.mx.example.", DNS_T_TLSA, S, ee_sha256);
    gather_tlsa t;
    gather_tlsa_lookup(r, "mx.example", true, "mx.example", 25, &t);
    assert_int_equal(t.st.err, GATHER_OK);
    assert_true(t.dane_required);
    assert_int_equal(t.nrecs, 1);
    assert_int_equal(t.nall, 1);
    assert_int_equal(t.recs[0].usage, 3);
    assert_int_equal(t.recs[0].len, 32);
    assert_int_equal(t.recs[0].data[31], 0x20);
    assert_string_equal(t.base, "mx.example");
    gather_tlsa_free(&t);
    assert_null(t.recs);
    gather_tlsa_free(NULL);

    /* Port moves the name (issue: --port N). */
    add(r, "_2525._tcp.mx.example.", DNS_T_TLSA, S, ta_sha512);
    gather_tlsa_lookup(r, "mx.example", true, "", 2525, &t);
    assert_int_equal(t.st.err, GATHER_OK);
    assert_int_equal(t.nrecs, 1);
    assert_int_equal(t.recs[0].usage, 2);
    gather_tlsa_free(&t);
    assert_int_equal(dns_fixture_lookups(r, "_2525._tcp.mx.example.", DNS_T_TLSA), 1);

    /* IP hosts have no TLSA. */
    gather_tlsa_lookup(r, "192.0.2.1", true, "", 25, &t);
    assert_false(t.dane_required);
    assert_int_equal(t.st.err, GATHER_OK);
}

static void test_tlsa_expanded(void **state)
{
    dns_resolver *r = *state;
    gather_tlsa t;
    /* At the expanded host when its chain was authentic. */
    add(r, "_25._tcp.mx.example.", DNS_T_TLSA, S, ee_sha256);
    add(r, "_25._tcp.real.example.", DNS_T_TLSA, S, ta_sha512);
    gather_tlsa_lookup(r, "mx.example", true, "real.example", 25, &t);
    assert_int_equal(t.st.err, GATHER_OK);
    assert_true(t.dane_required);
    assert_string_equal(t.base, "real.example");
    assert_int_equal(t.nrecs, 1);
    assert_int_equal(t.recs[0].usage, 2);
    gather_tlsa_free(&t);
    assert_int_equal(dns_fixture_lookups(r, "_25._tcp.mx.example.", DNS_T_TLSA), 0);

    /* Not authentic expansion: the host only. */
    gather_tlsa_lookup(r, "mx.example", false, "real.example", 25, &t);
    assert_string_equal(t.base, "mx.example");
    assert_int_equal(t.nrecs, 1);
    assert_int_equal(t.recs[0].usage, 3);
    gather_tlsa_free(&t);
    assert_int_equal(dns_fixture_lookups(r, "_25._tcp.real.example.", DNS_T_TLSA), 1);

    /* No records at the expanded host: fall back to the host. */
    fx_fail(r, "_25._tcp.empty.example.", DNS_T_CNAME, DNS_NXDOMAIN, S, -1);
    fx_fail(r, "_25._tcp.empty.example.", DNS_T_TLSA, DNS_NXDOMAIN, S, -1);
    gather_tlsa_lookup(r, "mx.example", true, "empty.example", 25, &t);
    assert_int_equal(t.st.err, GATHER_OK);
    assert_string_equal(t.base, "mx.example");
    assert_int_equal(t.nrecs, 1);
    gather_tlsa_free(&t);
    assert_int_equal(dns_fixture_lookups(r, "_25._tcp.empty.example.", DNS_T_TLSA), 1);

    /* Insecure at the expanded host counts as none: fallback too. */
    add(r, "_25._tcp.insec.example.", DNS_T_TLSA, I, ta_sha512);
    gather_tlsa_lookup(r, "mx.example", true, "insec.example", 25, &t);
    assert_string_equal(t.base, "mx.example");
    assert_int_equal(t.nrecs, 1);
    gather_tlsa_free(&t);

    /* An error at the expanded host: no fallback, DANE required. */
    fx_fail(r, "_25._tcp.broken.example.", DNS_T_CNAME, DNS_NODATA, S, -1);
    fx_fail(r, "_25._tcp.broken.example.", DNS_T_TLSA, DNS_SERVFAIL, I, 6);
    gather_tlsa_lookup(r, "mx.example", true, "broken.example", 25, &t);
    assert_int_equal(t.st.err, GATHER_DNS);
    assert_true(t.dane_required);
    assert_string_equal(t.base, "broken.example");
    assert_int_equal(t.nrecs, 0);
    assert_int_equal(dns_fixture_lookups(r, "_25._tcp.mx.example.", DNS_T_TLSA), 3);
}

static void test_tlsa_cname(void **state)
{
    dns_resolver *r = *state;
    gather_tlsa t;
    /* Authentic CNAME: followed. */
    add(r, "_25._tcp.mx.example.", DNS_T_CNAME, S, "tlsa.dane.example.");
    add(r, "tlsa.dane.example.", DNS_T_TLSA, S, ee_sha256);
    gather_tlsa_lookup(r, "mx.example", true, "mx.example", 25, &t);
    assert_int_equal(t.st.err, GATHER_OK);
    assert_true(t.dane_required);
    assert_int_equal(t.nrecs, 1);
    assert_string_equal(t.base, "mx.example");
    gather_tlsa_free(&t);

    /* Insecure CNAME: no DANE, the target not even asked. */
    add(r, "_25._tcp.mx2.example.", DNS_T_CNAME, I, "tlsa2.dane.example.");
    add(r, "tlsa2.dane.example.", DNS_T_TLSA, S, ee_sha256);
    gather_tlsa_lookup(r, "mx2.example", true, "mx2.example", 25, &t);
    assert_int_equal(t.st.err, GATHER_OK);
    assert_false(t.dane_required);
    assert_int_equal(t.nrecs, 0);
    assert_int_equal(dns_fixture_lookups(r, "tlsa2.dane.example.", DNS_T_TLSA), 0);

    /* Insecure "no CNAME" answer: no DANE, no TLSA lookup. */
    gather_tlsa_lookup(r, "insecure.example", true, "insecure.example", 25, &t);
    assert_false(t.dane_required);
    assert_int_equal(t.st.err, GATHER_OK);
    assert_int_equal(dns_fixture_lookups(r, "_25._tcp.insecure.example.", DNS_T_TLSA), 0);

    /* CNAME lookup SERVFAIL: error, DANE required. */
    fx_fail(r, "_25._tcp.mx3.example.", DNS_T_CNAME, DNS_SERVFAIL, I, 9);
    gather_tlsa_lookup(r, "mx3.example", true, "mx3.example", 25, &t);
    assert_int_equal(t.st.err, GATHER_DNS);
    assert_true(t.dane_required);
    assert_int_equal(t.st.ede, 9);
    assert_contains(t.st.msg, "looking up cname for tlsa candidate base domain");

    /* 10 hops are fine, the 11th fails. */
    add(r, "_25._tcp.ten.example.", DNS_T_CNAME, S, "t1.example.");
    cname_chain(r, "t", 10, DNS_T_TLSA, ee_sha256); /* t1 -> ... -> t10: 10 hops in all */
    gather_tlsa_lookup(r, "ten.example", true, "ten.example", 25, &t);
    assert_int_equal(t.st.err, GATHER_OK);
    assert_int_equal(t.nrecs, 1);
    gather_tlsa_free(&t);

    add(r, "_25._tcp.eleven.example.", DNS_T_CNAME, S, "u1.example.");
    cname_chain(r, "u", 11, DNS_T_TLSA, ee_sha256); /* 11 hops */
    gather_tlsa_lookup(r, "eleven.example", true, "eleven.example", 25, &t);
    assert_int_equal(t.st.err, GATHER_CNAME_LIMIT);
    assert_true(t.dane_required);
    assert_int_equal(t.nrecs, 0);
    assert_int_equal(dns_fixture_lookups(r, "u11.example.", DNS_T_TLSA), 0);
    assert_int_equal(dns_fixture_lookups(r, "u10.example.", DNS_T_CNAME), 1);
}

static void test_tlsa_errors_vs_insecure(void **state)
{
    dns_resolver *r = *state;
    gather_tlsa t;
    /* SERVFAIL (bogus seen through a trust-ad resolver): DANE required, with the EDE. */
    fx_fail(r, "_25._tcp.sf.example.", DNS_T_CNAME, DNS_NODATA, S, -1);
    fx_fail(r, "_25._tcp.sf.example.", DNS_T_TLSA, DNS_SERVFAIL, I, 6);
    gather_tlsa_lookup(r, "sf.example", true, "sf.example", 25, &t);
    assert_int_equal(t.st.err, GATHER_DNS);
    assert_false(t.st.permanent);
    assert_true(t.dane_required);
    assert_int_equal(t.st.ede, 6);
    assert_int_equal(t.nrecs, 0);
    assert_contains(t.st.msg, "looking up tlsa records for tlsa candidate base domain");
    assert_contains(t.st.msg, "SERVFAIL");
    assert_contains(t.st.msg, "dnssec-bogus");

    /* Bogus answer (validate mode): also an error, not "insecure". */
    fx_fail(r, "_25._tcp.bg.example.", DNS_T_CNAME, DNS_NODATA, S, -1);
    add(r, "_25._tcp.bg.example.", DNS_T_TLSA, B, ee_sha256);
    gather_tlsa_lookup(r, "bg.example", true, "bg.example", 25, &t);
    assert_int_equal(t.st.err, GATHER_DNS);
    assert_true(t.dane_required);
    assert_int_equal(t.nrecs, 0);

    /* Insecure records: no DANE. */
    fx_fail(r, "_25._tcp.in.example.", DNS_T_CNAME, DNS_NODATA, S, -1);
    add(r, "_25._tcp.in.example.", DNS_T_TLSA, I, ee_sha256);
    gather_tlsa_lookup(r, "in.example", true, "in.example", 25, &t);
    assert_int_equal(t.st.err, GATHER_OK);
    assert_false(t.dane_required);
    assert_int_equal(t.nrecs, 0);
    assert_int_equal(t.nall, 0);

    /* Secure NXDOMAIN: no DANE. */
    fx_fail(r, "_25._tcp.nx.example.", DNS_T_CNAME, DNS_NXDOMAIN, S, -1);
    fx_fail(r, "_25._tcp.nx.example.", DNS_T_TLSA, DNS_NXDOMAIN, S, -1);
    gather_tlsa_lookup(r, "nx.example", true, "nx.example", 25, &t);
    assert_int_equal(t.st.err, GATHER_OK);
    assert_false(t.dane_required);
    assert_int_equal(dns_fixture_lookups(r, "_25._tcp.nx.example.", DNS_T_TLSA), 1);
}

static char *spki_record(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(k);
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(k, &der);
    assert_true(n > 0);
    char *rec = malloc(7 + 2 * (size_t)n + 1);
    assert_non_null(rec);
    strcpy(rec, "3 1 0 ");
    for (int i = 0; i < n; i++)
        sprintf(rec + 6 + 2 * i, "%02x", der[i]);
    OPENSSL_free(der);
    EVP_PKEY_free(k);
    return rec;
}

static void test_tlsa_usable(void **state)
{
    dns_resolver *r = *state;
    char *spki = spki_record();
    static const char *const unusable[] = {
        "0 1 1 " H32,            /* PKIX-TA */
        "1 1 1 " H32,            /* PKIX-EE */
        "3 1 1 " H32 "21",       /* SHA2-256 with 33 bytes */
        "3 1 2 " H32,            /* SHA2-512 with 32 bytes */
        "3 2 1 " H32,            /* selector 2 */
        "3 1 3 " H32,            /* matching type 3 */
        "3 1 0 " H32,            /* Full, not an SPKI */
        "2 0 0 " H64,            /* Full, not a certificate */
    };
    fx_fail(r, "_25._tcp.mx.example.", DNS_T_CNAME, DNS_NODATA, S, -1);
    for (size_t i = 0; i < sizeof unusable / sizeof unusable[0]; i++)
        add(r, "_25._tcp.mx.example.", DNS_T_TLSA, S, unusable[i]);
    gather_tlsa t;
    gather_tlsa_lookup(r, "mx.example", true, "mx.example", 25, &t);
    /* All unusable: DANE still required, no records (24.12). */
    assert_int_equal(t.st.err, GATHER_OK);
    assert_true(t.dane_required);
    assert_int_equal(t.nrecs, 0);
    assert_null(t.recs);
    assert_int_equal(t.nall, 8);
    gather_tlsa_free(&t);

    add(r, "_25._tcp.mx.example.", DNS_T_TLSA, S, ee_sha256);
    add(r, "_25._tcp.mx.example.", DNS_T_TLSA, S, ta_sha512);
    add(r, "_25._tcp.mx.example.", DNS_T_TLSA, S, spki);
    gather_tlsa_lookup(r, "mx.example", true, "mx.example", 25, &t);
    assert_true(t.dane_required);
    assert_int_equal(t.nall, 11);
    assert_int_equal(t.nrecs, 3);
    assert_int_equal(t.recs[0].mtype, 1);
    assert_int_equal(t.recs[1].mtype, 2);
    assert_int_equal(t.recs[1].len, 64);
    assert_int_equal(t.recs[2].mtype, 0);
    assert_int_equal(t.recs[2].selector, 1);
    gather_tlsa_free(&t);
    free(spki);
}

/* ------------------------------------------------------------------ */
/* Spec 18: allowed names */

static void test_tlsa_names(void **state)
{
    (void)state;
    static const struct {
        bool have_mx, exp_nh_auth, exp_auth;
        const char *orig_nh, *exp_nh, *orig_base, *exp_base;
        const char *want[4];
        size_t n;
    } rows[] = {
        /* 18.1 no MX */
        {false, true, true, "d.example", "d.example", "d.example", "d.example", {"d.example"}, 1},
        {false, true, true, "d.example", "d.example", "d.example", "x.example",
         {"x.example", "d.example"}, 2},
        {false, true, false, "d.example", "d.example", "d.example", "x.example", {"d.example"}, 1},
        /* 18.2 MX, expanded next hop authentic */
        {true, true, true, "d.example", "d.example", "mx.example", "mx.example",
         {"mx.example", "d.example"}, 2},
        {true, true, true, "d.example", "e.example", "mx.example", "real.example",
         {"real.example", "mx.example", "d.example", "e.example"}, 4},
        {true, true, false, "d.example", "e.example", "mx.example", "real.example",
         {"mx.example", "d.example", "e.example"}, 3},
        {true, true, false, "d.example", "d.example", "mx.example", "mx.example",
         {"d.example"}, 1},
        /* an MX host equal to the domain is listed once */
        {true, true, true, "d.example", "d.example", "d.example", "d.example", {"d.example"}, 1},
        /* 18.3 MX, expanded next hop not authentic */
        {true, false, true, "d.example", "e.example", "mx.example", "real.example",
         {"d.example"}, 1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char names[6][DOMAIN_MAX];
        size_t n = gather_tlsa_names(rows[i].have_mx, rows[i].exp_nh_auth, rows[i].exp_auth,
                                     rows[i].orig_nh, rows[i].exp_nh, rows[i].orig_base,
                                     rows[i].exp_base, names, 6);
        if (n != rows[i].n)
            fail_msg("row %zu: %zu names, want %zu", i, n, rows[i].n);
        for (size_t k = 0; k < n; k++)
            if (strcmp(names[k], rows[i].want[k]) != 0)
                fail_msg("row %zu: name %zu is %s, want %s", i, k, names[k], rows[i].want[k]);
    }
    /* Bounded by max. */
    char one[1][DOMAIN_MAX];
    assert_int_equal(gather_tlsa_names(true, true, true, "d.example", "e.example", "mx.example",
                                       "real.example", one, 1),
                     1);
    assert_string_equal(one[0], "real.example");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_fixture_answers),
        T(test_fixture_records),
        T(test_fixture_failures),
        T(test_dest_ip_next_hop),
        T(test_dest_mx_sorted),
        T(test_dest_mx_equal_shuffled),
        T(test_dest_null_mx),
        T(test_dest_implicit_mx),
        T(test_dest_cname_limit),
        T(test_dest_cname_loop),
        T(test_dest_lookup_failures),
        T(test_dest_invalid_names),
        T(test_dest_bounded),
        T(test_dest_authentic_no_cname),
        T(test_dest_authentic_cname),
        T(test_ips_ip_host),
        T(test_ips_families),
        T(test_ips_authentic),
        T(test_ips_cname_authentic),
        T(test_ips_cname_limit),
        T(test_ips_failures),
        T(test_ips_order),
        T(test_tlsa_at_host),
        T(test_tlsa_expanded),
        T(test_tlsa_cname),
        T(test_tlsa_errors_vs_insecure),
        T(test_tlsa_usable),
        T(test_tlsa_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
