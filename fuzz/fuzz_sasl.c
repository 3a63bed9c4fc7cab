/* SASL clients (src/sasl.c, src/oauth.c) fed server challenges. Built once
 * per mechanism with -DFUZZ_MECH="NAME".
 *
 * Input: byte 0 = flags (bit 0: the server offers -PLUS, bit 1: channel
 * binding tls-unique instead of tls-exporter, bit 2: no channel binding,
 * bit 3: credentials from the input), then, with bit 3, three chunks of
 * one length byte each (user, password, token); then challenges, each a
 * 2-byte little-endian length and its bytes (decoded, as after base64).
 * SCRAM uses the RFC 5802 / RFC 7677 client nonces, so the RFC examples
 * (in the seeds) run to a verified server signature.
 * Invariants: no crash or leak; a failed step leaves an error message and
 * every later step fails; hashed mechanisms never send the password. */
#include "fuzz.h"

#include <stdbool.h>

#include "sasl.h"
#include "sasl_int.h"

#ifndef FUZZ_MECH
#error "build with -DFUZZ_MECH=\"NAME\""
#endif

#define MAX_STEPS 16

static bool hashed(void)
{
    return strncmp(FUZZ_MECH, "SCRAM", 5) == 0 || strcmp(FUZZ_MECH, "CRAM-MD5") == 0;
}

static const char *rfc_nonce(void)
{
    /* RFC 5802 5 (SHA-1) and RFC 7677 3 (SHA-256) client nonces */
    return strstr(FUZZ_MECH, "SHA-256") ? "rOprNGfwEbeRWgbNEkqO" : "fyko+d2lbbFgONRv9qkxdawL";
}

static char *chunk(fz_in *in)
{
    const uint8_t *p;
    size_t n = fz_take(in, fz_u8(in), &p);
    return fz_strndup(p, n);
}

/* PBKDF2 with up to 10^7 iterations is allowed by design (spec 8.4) but
 * makes an input take seconds: such inputs are skipped, not run. */
static bool too_costly(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 2 < n; i++) {
        if (p[i] != 'i' || p[i + 1] != '=')
            continue;
        size_t d = 0;
        unsigned long v = 0;
        while (i + 2 + d < n && p[i + 2 + d] >= '0' && p[i + 2 + d] <= '9' && d < 12)
            v = v * 10 + (p[i + 2 + d++] - '0');
        if (v > 20000)
            return true;
    }
    return false;
}

/* A hashed mechanism never sends the password, unless the server put it
 * in a challenge (SCRAM echoes the server's nonce). */
static void check_out(const unsigned char *out, size_t outlen, const char *password,
                      const uint8_t *data, size_t size)
{
    FZ_ASSERT(outlen <= 65536);
    if (out == NULL || !hashed() || password == NULL || strlen(password) < 4)
        return;
    size_t n = strlen(password);
    if (memmem(data, size, password, n) == NULL)
        FZ_ASSERT(memmem(out, outlen, password, n) == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    uint8_t flags = fz_u8(&in);
    char *user = NULL, *pass = NULL, *token = NULL;
    if (flags & 8) {
        user = chunk(&in);
        pass = chunk(&in);
        token = chunk(&in);
    } else {
        user = strdup("user");
        pass = strdup("pencil");
        token = strdup("vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==");
    }
    if (too_costly(in.p, in.n))
        goto out;
    static const unsigned char cbdata[32] = {0x5a, 0xa5, 0x01, 0x02};
    const sasl_cb cb = {(flags & 2) ? "tls-unique" : "tls-exporter", cbdata,
                        (flags & 2) ? 12 : 32};
    const sasl_creds creds = {user, pass, token};
    char err[256] = "";
    sasl_client *c = sasl_client_new(FUZZ_MECH, &creds, (flags & 4) ? NULL : &cb, flags & 1, err,
                                     sizeof err);
    if (c == NULL) {
        FZ_ASSERT(err[0] != '\0');
        goto out;
    }
    if (strncmp(FUZZ_MECH, "SCRAM", 5) == 0)
        FZ_ASSERT(sasl_scram_set_nonce(c, rfc_nonce()) == 0);
    unsigned char *o = NULL;
    size_t olen = 0;
    bool final = false;
    int rc = sasl_client_step(c, NULL, 0, &o, &olen, &final, err, sizeof err);
    check_out(o, olen, (flags & 8) ? NULL : pass, data, size);
    sasl_free_buf(o, olen);
    for (int step = 0; rc == 0 && step < MAX_STEPS && in.n > 0; step++) {
        size_t want = fz_u8(&in);
        want |= (size_t)fz_u8(&in) << 8;
        const uint8_t *ch;
        size_t n = fz_take(&in, want, &ch);
        err[0] = '\0';
        rc = sasl_client_step(c, ch, n, &o, &olen, &final, err, sizeof err);
        if (rc != 0) {
            FZ_ASSERT(o == NULL && olen == 0 && !final);
            FZ_ASSERT(err[0] != '\0' && fz_bounded_str(err, sizeof err - 1));
        }
        check_out(o, olen, (flags & 8) ? NULL : pass, data, size);
        sasl_free_buf(o, olen);
    }
    if (rc != 0) {
        /* the exchange is over: every later step fails */
        o = (unsigned char *)"x";
        FZ_ASSERT(sasl_client_step(c, (const unsigned char *)"x", 1, &o, &olen, &final, err,
                                   sizeof err) == -1);
        FZ_ASSERT(o == NULL && olen == 0);
    }
    sasl_client_free(c);
out:
    free(user);
    free(pass);
    free(token);
    return 0;
}
