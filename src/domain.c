/* Domain names (spec 22.2-22.3): IDNA2008 with the UTS#46 lookup mapping
 * (libidn2), then a strict LDH check of the A-label form. */
#include "domain.h"

#include <arpa/inet.h>
#include <idn2.h>
#include <string.h>
#include <strings.h>

#define DOMAIN_INPUT_MAX 1024 /* longer input cannot map to a valid name */
#define LABEL_MAX 63          /* RFC 1035 2.3.4 */
#define NAME_MAX_LEN 253      /* without the trailing dot */

bool domain_is_ip(const char *s)
{
    unsigned char buf[16];
    return s && (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1);
}

static bool is_ldh(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* One A-label or NR-LDH label (RFC 5890 2.3.1): letters, digits, hyphens,
 * no hyphen at either end, "--" at positions 3-4 only for "xn--". */
static bool label_ok(const char *l, size_t n)
{
    if (n == 0 || n > LABEL_MAX || l[0] == '-' || l[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_ldh(l[i]))
            return false;
    return !(n >= 4 && l[2] == '-' && l[3] == '-' && strncmp(l, "xn--", 4) != 0);
}

static bool ldh_name_ok(const char *s, bool *has_alabel)
{
    size_t len = strlen(s);
    *has_alabel = false;
    if (len == 0 || len > NAME_MAX_LEN)
        return false;
    for (const char *p = s;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (!label_ok(p, n))
            return false;
        if (strncmp(p, "xn--", 4) == 0)
            *has_alabel = true;
        if (!dot)
            return true;
        p = dot + 1;
    }
}

/* RFC 5891 5.4: an A-label must decode to a valid U-label that encodes back
 * to itself; libidn2 passes unvalidated "xn--" labels through otherwise. */
static bool alabels_roundtrip(const char *ascii)
{
    char *uni = NULL;
    uint8_t *back = NULL;
    bool ok = idn2_to_unicode_8z8z(ascii, &uni, 0) == IDN2_OK && uni &&
              idn2_lookup_u8((const uint8_t *)uni, &back, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL) ==
                  IDN2_OK &&
              back && strcmp((const char *)back, ascii) == 0;
    idn2_free(uni);
    idn2_free(back);
    return ok;
}

/* Strict parse; *has_alabel tells whether the name has a Unicode form. */
static int parse_strict(const char *in, char ascii[DOMAIN_MAX], bool *has_alabel)
{
    size_t n = strlen(in);
    if (n == 0 || n > DOMAIN_INPUT_MAX || in[n - 1] == '.' || domain_is_ip(in))
        return -1;
    uint8_t *out = NULL;
    /* UTS#46 mapping lowercases and maps compatibility characters (22.3). */
    if (idn2_lookup_u8((const uint8_t *)in, &out, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL) !=
            IDN2_OK ||
        !out) {
        idn2_free(out);
        return -1;
    }
    int rc = -1;
    const char *s = (const char *)out;
    if (ldh_name_ok(s, has_alabel) && !domain_is_ip(s) && (!*has_alabel || alabels_roundtrip(s))) {
        memcpy(ascii, s, strlen(s) + 1);
        rc = 0;
    }
    idn2_free(out);
    return rc;
}

int domain_parse(const char *in, char ascii[DOMAIN_MAX])
{
    bool has_alabel;
    return in ? parse_strict(in, ascii, &has_alabel) : -1;
}

/* Spec 22.2: MX targets with underscores, seen in the wild, are accepted
 * when the name is otherwise a valid ASCII (non-IDNA) name. */
int domain_parse_lenient(const char *in, char ascii[DOMAIN_MAX])
{
    if (!in)
        return -1;
    if (!strchr(in, '_'))
        return domain_parse(in, ascii);
    size_t n = strlen(in);
    if (n >= DOMAIN_MAX)
        return -1;
    char lower[DOMAIN_MAX], repl[DOMAIN_MAX], parsed[DOMAIN_MAX];
    for (size_t i = 0; i <= n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c >= 0x80)
            return -1; /* non-ASCII */
        lower[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : (char)c;
        repl[i] = lower[i] == '_' ? 'a' : lower[i];
    }
    bool has_alabel;
    if (parse_strict(repl, parsed, &has_alabel) != 0 || has_alabel || strcmp(parsed, repl) != 0)
        return -1;
    memcpy(ascii, lower, n + 1);
    return 0;
}

/* RFC 5321 4.1.3: "[192.0.2.1]" or "[IPv6:2001:db8::1]" (tag case-insensitive,
 * RFC 5234 2.3). */
int domain_address_literal(const char *in, char ip[64])
{
    size_t n = in ? strlen(in) : 0;
    if (n < 3 || in[0] != '[' || in[n - 1] != ']' || n - 2 >= 64)
        return -1;
    char buf[64];
    memcpy(buf, in + 1, n - 2);
    buf[n - 2] = '\0';
    unsigned char bin[16];
    if (strncasecmp(buf, "IPv6:", 5) == 0) {
        if (inet_pton(AF_INET6, buf + 5, bin) != 1)
            return -1;
        memcpy(ip, buf + 5, strlen(buf + 5) + 1);
        return 0;
    }
    if (inet_pton(AF_INET, buf, bin) != 1)
        return -1;
    memcpy(ip, buf, n - 1);
    return 0;
}
