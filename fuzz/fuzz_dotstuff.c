/* DATA encoding (src/dotstuff.c): the message is dot-stuffed in
 * fuzzer-chosen input and output pieces, then decoded again.
 *
 * Input: byte 0 = flags (bit 0: normalize bare LF), byte 1 = number k
 * (0-15) of piece-size bytes that follow, then the message.
 * Invariants: the chunked encoding equals the one-shot encoding; a valid
 * message (no bare CR; no bare LF and a final CRLF unless normalizing)
 * encodes without error and decodes to itself (normalized: bare LF made
 * CRLF, CRLF appended); an invalid one fails with the right error; no
 * output ever holds a bare CR or LF or ends the DATA ("\r\n.\r\n") before
 * the end. dotstuff_decode of the raw input never overruns. */
#include "fuzz.h"

#include <stdbool.h>

#include "dotstuff.h"

typedef struct enc {
    char *out;
    size_t len;
    ds_status st;
} enc;

/* The first error the message must give, and the normalized message. */
static ds_status reference(const uint8_t *m, size_t n, bool norm, char *exp, size_t *explen)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (m[i] == '\r') {
            if (i + 1 == n)
                return DS_ERR_BARE_CR; /* at finish */
            if (m[i + 1] != '\n')
                return DS_ERR_BARE_CR;
            exp[k++] = '\r';
            exp[k++] = '\n';
            i++;
        } else if (m[i] == '\n') {
            if (!norm)
                return DS_ERR_BARE_LF;
            exp[k++] = '\r';
            exp[k++] = '\n';
        } else {
            exp[k++] = (char)m[i];
        }
    }
    if (k > 0 && exp[k - 1] != '\n') {
        if (!norm)
            return DS_ERR_NO_FINAL_CRLF;
        exp[k++] = '\r';
        exp[k++] = '\n';
    }
    *explen = k;
    return DS_OK;
}

static void encode(const uint8_t *m, size_t n, bool norm, const uint8_t *sizes, size_t nsizes,
                   enc *e)
{
    dotstuff d;
    dotstuff_init(&d, norm);
    size_t cap = 2 * n + 8, off = 0, k = 0;
    e->out = malloc(cap);
    e->len = 0;
    e->st = DS_OK;
    FZ_ASSERT(e->out != NULL);
    while (off < n) {
        size_t inlen = n - off, outcap = cap - 5 - e->len;
        if (nsizes > 0) {
            inlen = (size_t)sizes[k++ % nsizes] % 64 + 1;
            outcap = (size_t)sizes[k++ % nsizes] % 64 + 2; /* never less than 2 */
            if (inlen > n - off)
                inlen = n - off;
            if (outcap > cap - 5 - e->len)
                outcap = cap - 5 - e->len;
        }
        size_t used = 0, produced = 0;
        ds_status st = dotstuff_encode(&d, (const char *)m + off, inlen, &used, e->out + e->len,
                                       outcap, &produced);
        FZ_ASSERT(used <= inlen && produced <= outcap && produced <= 2 * used);
        e->len += produced;
        off += used;
        FZ_ASSERT(d.out_bytes == e->len);
        if (st != DS_OK) {
            e->st = st;
            return;
        }
        FZ_ASSERT(used > 0); /* two bytes of room always take one byte */
    }
    size_t produced = 0;
    e->st = dotstuff_finish(&d, e->out + e->len, 5, &produced);
    e->len += produced;
    FZ_ASSERT(d.out_bytes == e->len);
    FZ_ASSERT(e->st == DS_OK || produced == 0);
}

/* No bare CR or LF anywhere, and no end of DATA before the very end (the
 * DATA command line ended in CRLF, hence the virtual CRLF in front). */
static void check_wire(const char *o, size_t len, bool finished)
{
    for (size_t i = 0; i < len; i++) {
        if (o[i] == '\r')
            FZ_ASSERT(i + 1 < len && o[i + 1] == '\n');
        if (o[i] == '\n')
            FZ_ASSERT(i > 0 && o[i - 1] == '\r');
    }
    size_t stop = finished ? len - 3 : len; /* the final ".\r\n" */
    for (size_t i = 0; i + 3 <= len && i < stop; i++)
        if ((i == 0 || o[i - 1] == '\n') && memcmp(o + i, ".\r\n", 3) == 0)
            FZ_ASSERT(0 && "end of DATA inside the message");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    bool norm = fz_u8(&in) & 1;
    const uint8_t *sizes;
    size_t nsizes = fz_take(&in, fz_u8(&in) % 16, &sizes);
    const uint8_t *m = in.p;
    size_t n = in.n;

    char *exp = malloc(2 * n + 3);
    size_t explen = 0;
    FZ_ASSERT(exp != NULL);
    ds_status want = reference(m, n, norm, exp, &explen);

    enc whole, split;
    encode(m, n, norm, NULL, 0, &whole);
    encode(m, n, norm, sizes, nsizes, &split);
    FZ_ASSERT(whole.st == want && split.st == want);
    FZ_ASSERT(whole.len == split.len && memcmp(whole.out, split.out, whole.len) == 0);
    check_wire(whole.out, whole.len, want == DS_OK);
    if (want == DS_OK) {
        char *dec = malloc(whole.len ? whole.len : 1);
        size_t declen = 0;
        FZ_ASSERT(dec != NULL);
        FZ_ASSERT(dotstuff_decode(whole.out, whole.len, dec, &declen) == 0);
        FZ_ASSERT(declen == explen && memcmp(dec, exp, explen) == 0);
        free(dec);
    }
    /* the decoder on arbitrary bytes */
    char *dec = malloc(n ? n : 1);
    size_t declen = 0;
    FZ_ASSERT(dec != NULL);
    if (dotstuff_decode((const char *)m, n, dec, &declen) == 0)
        FZ_ASSERT(declen + 3 <= n);
    free(dec);
    free(whole.out);
    free(split.out);
    free(exp);
    return 0;
}
