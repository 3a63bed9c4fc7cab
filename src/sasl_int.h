/* Internal interface between sasl.c and oauth.c, and a test hook. Not part
 * of the session core's contract (that is sasl.h). */
#ifndef SMTPC_SASL_INT_H
#define SMTPC_SASL_INT_H

#include "sasl.h"

#include <stdbool.h>
#include <stddef.h>

/* Formats an error message into err (may be NULL or errlen 0). */
void sasl_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Copies len bytes into a new buffer (at least 1 byte allocated, so an
 * empty message is a non-NULL *out with *outlen 0). Returns 0 or -1. */
int sasl_out_copy(const void *data, size_t len, unsigned char **out, size_t *outlen);

/* XOAUTH2 (bearer false) and OAUTHBEARER (bearer true, RFC 7628). */
int oauth_check(bool bearer, const char *user, const char *token, char *err, size_t errlen);
int oauth_step(bool bearer, int step, const char *user, const char *token,
               unsigned char **out, size_t *outlen, bool *final, char *err,
               size_t errlen);

/* Tests only: fixes the SCRAM client nonce (RFC 5802 5, RFC 7677 3 test
 * vectors) instead of a random one. Call before the first step. */
int sasl_scram_set_nonce(sasl_client *c, const char *nonce);

#endif
