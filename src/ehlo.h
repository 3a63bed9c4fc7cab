/* EHLO reply interpretation (RFC 5321 4.1.1.1) and LIMITS (RFC 9422). Pure. */
#ifndef SMTPC_EHLO_H
#define SMTPC_EHLO_H

#include <stddef.h>
#include <stdint.h>

#include "reply.h"

#define EHLO_MAX_AUTH_MECHS 64
#define LIMITS_MAX_PAIRS 32

typedef struct ehlo_info {
    unsigned ext;            /* SMTPC_EXT_* bits */
    int64_t max_size;        /* SIZE parameter; 0 = no limit (also for bare "SIZE", Q14) */
    char **keywords;         /* every line after the first: keyword uppercased, params as sent */
    size_t nkeywords;
    char **auth;             /* AUTH mechanisms, uppercased, empty entries dropped */
    size_t nauth;
    char **limit_names;      /* LIMITS names uppercased */
    char **limit_values;     /* values as sent */
    size_t nlimits;
    int mailmax, rcptmax, rcptdomainmax; /* 0 = no limit */
} ehlo_info;

/* Interprets lines 1..n-1 of a 250 EHLO reply (line 0 is the server's name,
 * never a keyword; spec 4.6-4.7). Replaces *out: it is overwritten, not
 * freed, so ehlo_info_free() an earlier result first. Returns 0, or -1 when
 * out of memory (then *out is empty). */
int ehlo_parse(const reply *r, ehlo_info *out);
void ehlo_info_free(ehlo_info *e);

/* RFC 9422 LIMITS parameters: params is the text after the keyword
 * "LIMITS", including its leading space (spec 4.8, with Q17 fixed: values
 * of the three known limits must be 1-6 digits, no sign). Any syntax error or
 * duplicate name ignores the whole extension (returns 0 with no pairs).
 * Returns -1 only when out of memory. */
int limits_parse(const char *params, ehlo_info *out);

#endif
