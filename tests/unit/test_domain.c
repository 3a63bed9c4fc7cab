/* Unit tests for domain names (spec 22.2-22.3): strict IDNA2008 parse,
 * lenient MX targets with underscores, IP detection, address literals. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "domain.h"

typedef struct {
    const char *in;
    const char *strict;  /* NULL: rejected */
    const char *lenient; /* NULL: rejected */
} name_case;

static char long_label[80], label63[80], long_name[300], name253[300];

static void build_long_names(void)
{
    memset(long_label, 'a', 64);
    memcpy(long_label + 64, ".com", 5);
    memset(label63, 'a', 63);
    memcpy(label63 + 63, ".com", 5);
    /* 4 labels of 63 + 3 dots = 255 > 253; 3 x 63 + "." + 61 = 253 */
    size_t n = 0;
    for (int i = 0; i < 4; i++) {
        memset(long_name + n, 'b', 63);
        n += 63;
        long_name[n++] = i < 3 ? '.' : '\0';
    }
    n = 0;
    for (int i = 0; i < 3; i++) {
        memset(name253 + n, 'c', 63);
        n += 63;
        name253[n++] = '.';
    }
    memset(name253 + n, 'd', 61);
    name253[n + 61] = '\0';
}

static void check_case(const name_case *c)
{
    char out[DOMAIN_MAX];
    memset(out, 'X', sizeof out);
    int rc = domain_parse(c->in, out);
    if (c->strict) {
        if (rc != 0)
            fail_msg("strict parse of \"%s\" failed", c->in);
        assert_string_equal(out, c->strict);
    } else if (rc == 0) {
        fail_msg("strict parse of \"%s\" accepted as \"%s\"", c->in, out);
    }
    memset(out, 'X', sizeof out);
    rc = domain_parse_lenient(c->in, out);
    if (c->lenient) {
        if (rc != 0)
            fail_msg("lenient parse of \"%s\" failed", c->in);
        assert_string_equal(out, c->lenient);
    } else if (rc == 0) {
        fail_msg("lenient parse of \"%s\" accepted as \"%s\"", c->in, out);
    }
}

static void test_idna_table(void **state)
{
    (void)state;
    static const name_case cases[] = {
        {"example.com", "example.com", "example.com"},
        {"Example.COM", "example.com", "example.com"},
        {"bücher.de", "xn--bcher-kva.de", "xn--bcher-kva.de"},
        {"BÜCHER.DE", "xn--bcher-kva.de", "xn--bcher-kva.de"},
        {"b\xc3\xbc" "cher.de", "xn--bcher-kva.de", "xn--bcher-kva.de"},
        {"bu\xcc\x88" "cher.de", "xn--bcher-kva.de", "xn--bcher-kva.de"}, /* NFC */
        {"faß.de", "xn--fa-hia.de", "xn--fa-hia.de"},          /* non-transitional */
        {"ｅｘａｍｐｌｅ.com", "example.com", "example.com"}, /* UTS#46 mapping */
        {"xn--bcher-kva.de", "xn--bcher-kva.de", "xn--bcher-kva.de"},
        {"XN--BCHER-KVA.de", "xn--bcher-kva.de", "xn--bcher-kva.de"},
        {"mx1.example-2.com", "mx1.example-2.com", "mx1.example-2.com"},
        {"a", "a", "a"},
        {"123.example", "123.example", "123.example"},
        {"a-.com", NULL, NULL}, /* trailing hyphen */
        {"-a.com", NULL, NULL}, /* leading hyphen */
        {"ab--c.com", NULL, NULL},
        {"xn--zz.de", NULL, NULL},  /* bad punycode */
        {"xn--a.com", NULL, NULL},
        {"xn--bcher-kva-.de", NULL, NULL},
        {"xn--bcher-2pa.de", NULL, NULL}, /* decodes to an uppercase U+00DC */
        {"xn--ab-8tb.de", NULL, NULL},    /* decodes to a non-NFC string */
        {"💩.la", NULL, NULL},
        {"example.com.", NULL, NULL}, /* trailing dot */
        {".", NULL, NULL},
        {"", NULL, NULL},
        {"a..b", NULL, NULL},
        {".a", NULL, NULL},
        {"a b.com", NULL, NULL},
        {"a/b.com", NULL, NULL},
        {"1.2.3.4", NULL, NULL},
        {"2001:db8::1", NULL, NULL},
        {"::1", NULL, NULL},
        {"[1.2.3.4]", NULL, NULL},
        /* 22.2: underscores only in lenient mode, otherwise strict rules */
        {"a_b.com", NULL, "a_b.com"},
        {"MX_1.Example.com", NULL, "mx_1.example.com"},
        {"_dmarc.example", NULL, "_dmarc.example"},
        {"_.example", NULL, "_.example"},
        {"a_-.com", NULL, NULL},       /* trailing hyphen remains */
        {"xn--_a.de", NULL, NULL},     /* would be IDNA */
        {"xn--bcher-kv_.de", NULL, NULL}, /* "a" for "_" makes a valid A-label */
        {"b_ücher.de", NULL, NULL},    /* non-ASCII with underscore */
        {"a_b.com.", NULL, NULL},
        {"a__b..com", NULL, NULL},
        {"a＿b.com", NULL, NULL},      /* fullwidth low line maps to "_" */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_case(&cases[i]);
}

static void test_lengths(void **state)
{
    (void)state;
    build_long_names();
    const name_case cases[] = {
        {long_label, NULL, NULL},
        {label63, label63, label63},
        {long_name, NULL, NULL},
        {name253, name253, name253},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_case(&cases[i]);
    assert_int_equal(domain_parse(NULL, long_name), -1);
    assert_int_equal(domain_parse_lenient(NULL, long_name), -1);
}

static void test_is_ip(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        bool ip;
    } cases[] = {
        {"192.0.2.1", true},  {"2001:db8::1", true},  {"::1", true},
        {"::ffff:1.2.3.4", true}, {"1.2.3", false},   {"1.2.3.4.5", false},
        {"256.1.1.1", false}, {"[1.2.3.4]", false},   {"example.com", false},
        {"", false},          {"2001:db8::1%eth0", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (domain_is_ip(cases[i].in) != cases[i].ip)
            fail_msg("domain_is_ip(\"%s\") != %d", cases[i].in, cases[i].ip);
    assert_false(domain_is_ip(NULL));
}

static void test_address_literals(void **state)
{
    (void)state;
    static const struct {
        const char *in, *ip; /* NULL: rejected */
    } cases[] = {
        {"[192.0.2.1]", "192.0.2.1"},
        {"[IPv6:2001:db8::1]", "2001:db8::1"},
        {"[ipv6:::1]", "::1"},
        {"[IPV6:::ffff:1.2.3.4]", "::ffff:1.2.3.4"},
        {"[2001:db8::1]", NULL}, /* RFC 5321 4.1.3: the tag is required */
        {"[IPv6:192.0.2.1]", NULL},
        {"192.0.2.1", NULL},
        {"[192.0.2]", NULL},
        {"[]", NULL},
        {"[", NULL},
        {"[192.0.2.1", NULL},
        {"192.0.2.1]", NULL},
        {"[example.com]", NULL},
        {"[IPv6:]", NULL},
        {"[ 192.0.2.1]", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char ip[64] = "unchanged";
        int rc = domain_address_literal(cases[i].in, ip);
        if (cases[i].ip) {
            if (rc != 0)
                fail_msg("literal \"%s\" rejected", cases[i].in);
            assert_string_equal(ip, cases[i].ip);
        } else if (rc == 0) {
            fail_msg("literal \"%s\" accepted as \"%s\"", cases[i].in, ip);
        }
    }
    char ip[64];
    char big[200];
    memset(big, '1', sizeof big);
    big[0] = '[';
    big[198] = ']';
    big[199] = '\0';
    assert_int_equal(domain_address_literal(big, ip), -1);
    assert_int_equal(domain_address_literal(NULL, ip), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idna_table),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_is_ip),
        cmocka_unit_test(test_address_literals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
