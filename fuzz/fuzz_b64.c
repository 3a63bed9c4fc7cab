/* Base64 (src/b64.c), which carries every SASL challenge and response.
 * Invariants: decoding what was encoded gives the bytes back; a string the
 * strict decoder accepts has the length of its padding and encodes back to
 * itself, up to the unused bits of the last group (accepted like Go's
 * StdEncoding, RFC 4648 3.5). */
#include "fuzz.h"

#include "sasl.h"

static int val(char c)
{
    const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = strchr(a, c);
    return p && c ? (int)(p - a) : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* bytes -> text -> bytes */
    char *enc = b64_encode(data, size);
    FZ_ASSERT(enc != NULL && strlen(enc) == (size + 2) / 3 * 4);
    unsigned char *dec = NULL;
    size_t declen = 0;
    FZ_ASSERT(b64_decode(enc, strlen(enc), &dec, &declen) == 0);
    FZ_ASSERT(declen == size && memcmp(dec, data, size) == 0);
    free(dec);
    free(enc);

    /* text -> bytes -> text */
    const char *in = (const char *)data;
    if (b64_decode(in, size, &dec, &declen) != 0) {
        FZ_ASSERT(dec == NULL && declen == 0);
        return 0;
    }
    size_t pad = size > 0 && in[size - 1] == '=' ? (size > 1 && in[size - 2] == '=' ? 2 : 1) : 0;
    FZ_ASSERT(size % 4 == 0 && declen == size / 4 * 3 - pad);
    enc = b64_encode(dec, declen);
    FZ_ASSERT(enc != NULL && strlen(enc) == size);
    size_t last = size - pad; /* characters carrying bits */
    if (last > 0) {
        FZ_ASSERT(memcmp(enc, in, last - 1) == 0 && memcmp(enc + last, in + last, pad) == 0);
        int kept = pad == 2 ? 0x30 : pad == 1 ? 0x3c : 0x3f; /* bits of the last character */
        FZ_ASSERT((val(enc[last - 1]) & kept) == (val(in[last - 1]) & kept));
    }
    free(enc);
    free(dec);
    return 0;
}
