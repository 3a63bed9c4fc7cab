/* Domain names (spec 22.2-22.3): IDNA with libidn2, lenient MX targets. */
#ifndef SMTPC_DOMAIN_H
#define SMTPC_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>

#define DOMAIN_MAX 256

/* Strict parse: no trailing dot, not an IP address, IDNA2008 lookup profile
 * (UTS#46 non-transitional) to the lowercase A-label form. Returns 0 with
 * ascii filled, -1 on invalid names. */
int domain_parse(const char *in, char ascii[DOMAIN_MAX]);
/* Lenient parse for MX targets (22.2): underscores allowed in ASCII names. */
int domain_parse_lenient(const char *in, char ascii[DOMAIN_MAX]);
/* IPv4 or IPv6 address text (no brackets). */
bool domain_is_ip(const char *s);
/* "[192.0.2.1]" / "[IPv6:2001:db8::1]" address literal -> bare IP. Returns 0 or -1. */
int domain_address_literal(const char *in, char ip[64]);

#endif
