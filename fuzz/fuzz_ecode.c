/* RFC 3463 enhanced status codes (ecode_parse in src/reply.c).
 * Input: 2 bytes choose the reply code (0-999, sometimes out of range),
 * 1 byte the output buffer size, the rest is the text after the code. */
#include "fuzz.h"

#include <ctype.h>

#include "reply.h"

static int digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    unsigned lo = fz_u8(&in), hi = fz_u8(&in);
    int code = (int)((lo | hi << 8) % 1100) - 50; /* -50 .. 1049 */
    size_t outlen = fz_u8(&in) % 40;
    char *text = fz_strndup(in.p, in.n);
    char *out = malloc(outlen ? outlen : 1);
    FZ_ASSERT(out != NULL);
    size_t n = ecode_parse(code, text, out, outlen);
    size_t tlen = strlen(text);
    FZ_ASSERT(n <= tlen);
    if (outlen > 0 && n == 0)
        FZ_ASSERT(out[0] == '\0');
    if (n > 0) {
        size_t olen = strnlen(out, outlen);
        FZ_ASSERT(olen < outlen);
        /* class "." subject "." detail, class == code / 100, each 1-3 digits */
        FZ_ASSERT(code >= 0 && code <= 999);
        FZ_ASSERT(out[0] == '0' + code / 100 && out[1] == '.');
        FZ_ASSERT(memcmp(out, text, olen) == 0);
        FZ_ASSERT(n == olen || (n == olen + 1 && text[olen] == ' '));
        const char *dot = strchr(out + 2, '.');
        FZ_ASSERT(dot != NULL && strchr(dot + 1, '.') == NULL);
        size_t subj = (size_t)(dot - (out + 2)), det = strlen(dot + 1);
        FZ_ASSERT(subj >= 1 && subj <= 3 && det >= 1 && det <= 3);
        FZ_ASSERT(digits(out + 2, subj) && digits(dot + 1, det));
        FZ_ASSERT(!isdigit((unsigned char)text[olen]));
    }
    free(out);
    free(text);
    return 0;
}
