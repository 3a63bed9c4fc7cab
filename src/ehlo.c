/* EHLO reply interpretation (RFC 5321 4.1.1.1, spec 4.6-4.8) and the
 * RFC 9422 LIMITS parameters. Pure: no I/O, no global state. */
#include "ehlo.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "smtpc.h"

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Locale-independent ASCII uppercase. */
static char upper(char c)
{
    return (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static char *dup_upper(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        d[i] = upper(s[i]);
    d[n] = '\0';
    return d;
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d == NULL)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static void free_list(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

static void limits_clear(ehlo_info *e)
{
    free_list(e->limit_names, e->nlimits);
    free_list(e->limit_values, e->nlimits);
    e->limit_names = NULL;
    e->limit_values = NULL;
    e->nlimits = 0;
    e->mailmax = e->rcptmax = e->rcptdomainmax = 0;
    e->ext &= ~(unsigned)SMTPC_EXT_LIMITS;
}

void ehlo_info_free(ehlo_info *e)
{
    if (e == NULL)
        return;
    limits_clear(e);
    free_list(e->keywords, e->nkeywords);
    free_list(e->auth, e->nauth);
    memset(e, 0, sizeof *e);
}

/* ---- LIMITS (RFC 9422 3) ---------------------------------------------- */

typedef struct {
    const char *name, *value;
    size_t nlen, vlen;
} lim_pair;

/* limit-name = 1*(ALPHA / DIGIT / "-" / "_") */
static bool is_name_char(char c)
{
    return is_digit(c) || (upper(c) >= 'A' && upper(c) <= 'Z') || c == '-' || c == '_';
}

/* limit-value = 1*(%x21-3A / %x3C-7E): visible ASCII except ";" */
static bool is_value_char(char c)
{
    return c >= 0x21 && c <= 0x7e && c != ';';
}

static bool same_name(const lim_pair *a, const lim_pair *b)
{
    if (a->nlen != b->nlen)
        return false;
    for (size_t i = 0; i < a->nlen; i++)
        if (upper(a->name[i]) != upper(b->name[i]))
            return false;
    return true;
}

/* Scans one " name=value" item at s into pr; returns the bytes it spans,
 * 0 on a syntax error. */
static size_t scan_pair(const char *s, lim_pair *pr)
{
    if (s[0] != ' ')
        return 0;
    size_t i = 1;
    pr->name = s + i;
    while (is_name_char(s[i]))
        i++;
    pr->nlen = (size_t)(s + i - pr->name);
    if (pr->nlen == 0 || s[i] != '=')
        return 0;
    pr->value = s + ++i;
    while (is_value_char(s[i]))
        i++;
    pr->vlen = (size_t)(s + i - pr->value);
    /* A value ends at the next single space or at the end. */
    if (pr->vlen == 0 || (s[i] != ' ' && s[i] != '\0'))
        return 0;
    return i;
}

/* Returns the number of pairs, or -1 on a syntax error, a duplicate name or
 * more than LIMITS_MAX_PAIRS pairs: each ignores the whole extension. */
static int scan_pairs(const char *s, lim_pair *pairs)
{
    int n = 0;
    while (*s != '\0') {
        if (n == LIMITS_MAX_PAIRS)
            return -1;
        size_t len = scan_pair(s, &pairs[n]);
        if (len == 0)
            return -1;
        for (int j = 0; j < n; j++)
            if (same_name(&pairs[j], &pairs[n]))
                return -1;
        s += len;
        n++;
    }
    return n;
}

/* Q17 fixed: a known limit is 1-6 digits (no sign) and > 0; otherwise 0. */
static int limit_value(const lim_pair *pr)
{
    if (pr->vlen < 1 || pr->vlen > 6)
        return 0;
    int v = 0;
    for (size_t i = 0; i < pr->vlen; i++) {
        if (!is_digit(pr->value[i]))
            return 0;
        v = v * 10 + (pr->value[i] - '0');
    }
    return v;
}

static void set_known_limit(ehlo_info *e, const char *name, const lim_pair *pr)
{
    if (strcmp(name, "MAILMAX") == 0)
        e->mailmax = limit_value(pr);
    else if (strcmp(name, "RCPTMAX") == 0)
        e->rcptmax = limit_value(pr);
    else if (strcmp(name, "RCPTDOMAINMAX") == 0)
        e->rcptdomainmax = limit_value(pr);
}

static int store_pairs(ehlo_info *e, const lim_pair *pairs, size_t n)
{
    if (n == 0)
        return 0;
    e->limit_names = calloc(n, sizeof *e->limit_names);
    e->limit_values = calloc(n, sizeof *e->limit_values);
    if (e->limit_names == NULL || e->limit_values == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        e->limit_names[i] = dup_upper(pairs[i].name, pairs[i].nlen);
        e->limit_values[i] = dup_n(pairs[i].value, pairs[i].vlen);
        e->nlimits = i + 1; /* freed by limits_clear even when half done */
        if (e->limit_names[i] == NULL || e->limit_values[i] == NULL)
            return -1;
        set_known_limit(e, e->limit_names[i], &pairs[i]);
    }
    return 0;
}

int limits_parse(const char *params, ehlo_info *out)
{
    lim_pair pairs[LIMITS_MAX_PAIRS];
    limits_clear(out);
    int n = scan_pairs(params, pairs);
    if (n < 0)
        return 0;
    if (store_pairs(out, pairs, (size_t)n) != 0) {
        limits_clear(out); /* also frees arrays allocated with no pair yet */
        return -1;
    }
    out->ext |= SMTPC_EXT_LIMITS;
    return 0;
}

/* ---- EHLO keywords (RFC 5321 4.1.1.1, spec 4.7) ----------------------- */

/* Parses SIZE's parameter (RFC 1870: 1*20DIGIT); false when unparsable. */
static bool parse_size(const char *s, int64_t *out)
{
    int64_t v = 0;
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        if (!is_digit(*s) || v > (INT64_MAX - (*s - '0')) / 10)
            return false;
        v = v * 10 + (*s - '0');
    }
    *out = v;
    return true;
}

static size_t count_words(const char *s)
{
    size_t n = 0;
    for (size_t i = 0; s[i] != '\0'; i++)
        if (!is_space(s[i]) && (i == 0 || is_space(s[i - 1])))
            n++;
    return n;
}

/* RFC 4954 3: "AUTH" SP mechanism *(SP mechanism); replaces any earlier list. */
static int parse_auth(ehlo_info *e, const char *s)
{
    free_list(e->auth, e->nauth);
    e->auth = NULL;
    e->nauth = 0;
    size_t n = count_words(s);
    if (n > EHLO_MAX_AUTH_MECHS)
        n = EHLO_MAX_AUTH_MECHS;
    e->auth = calloc(n ? n : 1, sizeof *e->auth);
    if (e->auth == NULL)
        return -1;
    while (e->nauth < n) {
        while (is_space(*s))
            s++;
        size_t len = 0;
        while (s[len] != '\0' && !is_space(s[len]))
            len++;
        if ((e->auth[e->nauth] = dup_upper(s, len)) == NULL)
            return -1;
        e->nauth++;
        s += len;
    }
    e->ext |= SMTPC_EXT_AUTH;
    return 0;
}

static void parse_size_kw(ehlo_info *e, const char *params)
{
    e->ext |= SMTPC_EXT_SIZE;
    if (*params == '\0')
        e->max_size = 0; /* Q14 fixed: bare SIZE means no announced limit */
    else
        (void)parse_size(params, &e->max_size); /* unparsable: unchanged */
}

static const struct {
    const char *name;
    unsigned bit;
    bool params_ok;
} flag_keywords[] = {
    {"STARTTLS", SMTPC_EXT_STARTTLS, false},
    {"ENHANCEDSTATUSCODES", SMTPC_EXT_ENHANCEDSTATUSCODES, false},
    {"8BITMIME", SMTPC_EXT_8BITMIME, false},
    {"PIPELINING", SMTPC_EXT_PIPELINING, false},
    {"REQUIRETLS", SMTPC_EXT_REQUIRETLS, false},
    {"SMTPUTF8", SMTPC_EXT_SMTPUTF8, true}, /* RFC 6531: parameters ignored */
};

/* kw is the uppercased keyword; params the text after it (trimmed, "" when
 * none); one_space tells whether exactly one space separated them. */
static int apply_keyword(ehlo_info *e, const char *kw, const char *params, bool one_space)
{
    for (size_t i = 0; i < sizeof flag_keywords / sizeof flag_keywords[0]; i++) {
        if (strcmp(kw, flag_keywords[i].name) != 0)
            continue;
        if (*params == '\0' || flag_keywords[i].params_ok)
            e->ext |= flag_keywords[i].bit;
        return 0;
    }
    if (strcmp(kw, "SIZE") == 0)
        parse_size_kw(e, params);
    else if (strcmp(kw, "AUTH") == 0 && *params != '\0')
        return parse_auth(e, params);
    else if (strcmp(kw, "LIMITS") == 0 && *params == '\0')
        return limits_parse("", e);
    else if (strcmp(kw, "LIMITS") == 0 && one_space)
        return limits_parse(params - 1, e); /* includes the leading space */
    else if (strcmp(kw, "LIMITS") == 0)
        limits_clear(e); /* RFC 9422 3: exactly one SP; else ignore it all */
    return 0;
}

/* Builds "KEYWORD params" from a trimmed line and appends it to keywords. */
static char *add_keyword(ehlo_info *e, const char *s, size_t len, size_t kwlen, size_t pstart)
{
    size_t plen = len - pstart;
    char *entry = malloc(kwlen + 1 + plen + 1);
    char **kws = realloc(e->keywords, (e->nkeywords + 1) * sizeof *kws);
    if (kws != NULL)
        e->keywords = kws;
    if (entry == NULL || kws == NULL) {
        free(entry);
        return NULL;
    }
    for (size_t i = 0; i < kwlen; i++)
        entry[i] = upper(s[i]);
    entry[kwlen] = plen ? ' ' : '\0';
    memcpy(entry + kwlen + 1, s + pstart, plen);
    entry[kwlen + 1 + plen] = '\0';
    e->keywords[e->nkeywords++] = entry;
    return entry;
}

static int ehlo_line(ehlo_info *e, const char *text)
{
    while (is_space(*text))
        text++;
    size_t len = strlen(text);
    while (len > 0 && is_space(text[len - 1]))
        len--;
    if (len == 0)
        return 0;
    size_t kwlen = 0;
    while (kwlen < len && !is_space(text[kwlen]))
        kwlen++;
    size_t pstart = kwlen;
    while (pstart < len && is_space(text[pstart]))
        pstart++;
    char *entry = add_keyword(e, text, len, kwlen, pstart);
    if (entry == NULL)
        return -1;
    bool one_space = pstart == kwlen + 1 && text[kwlen] == ' ';
    char kw[32];
    if (kwlen >= sizeof kw)
        return 0; /* longer than any keyword we know */
    memcpy(kw, entry, kwlen);
    kw[kwlen] = '\0';
    const char *params = entry[kwlen] ? entry + kwlen + 1 : entry + kwlen;
    return apply_keyword(e, kw, params, one_space);
}

int ehlo_parse(const reply *r, ehlo_info *out)
{
    memset(out, 0, sizeof *out);
    /* Spec 4.6: line 0 is the server's name and greeting, never a keyword. */
    for (size_t i = 1; r != NULL && i < r->nlines; i++) {
        if (ehlo_line(out, reply_text(r, i)) != 0) {
            ehlo_info_free(out);
            return -1;
        }
    }
    return 0;
}
