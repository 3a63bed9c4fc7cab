/* Standard base64 with padding (RFC 4648 4), as used by SMTP AUTH (RFC 4954
 * 4) and inside SCRAM messages. The decoder is strict: length a multiple of
 * 4, '=' only as the last one or two characters, alphabet only, no
 * whitespace. Like Go's base64.StdEncoding (which mox uses), non-zero unused
 * bits in the last group are accepted (RFC 4648 3.5 leaves this open). */
#include "sasl.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *b64_encode(const unsigned char *in, size_t len)
{
    if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
        return NULL;
    size_t olen = (len + 2) / 3 * 4;
    char *out = malloc(olen + 1);
    if (out == NULL)
        return NULL;
    char *o = out;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *o++ = alphabet[v >> 18 & 63];
        *o++ = alphabet[v >> 12 & 63];
        *o++ = alphabet[v >> 6 & 63];
        *o++ = alphabet[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        *o++ = alphabet[v >> 18 & 63];
        *o++ = alphabet[v >> 12 & 63];
        *o++ = i + 1 < len ? alphabet[v >> 6 & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

/* Value of one alphabet character, or -1. */
static int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Number of trailing '=' (0-2); any other '=' fails the alphabet check. */
static size_t b64_padding(const char *in, size_t inlen)
{
    size_t pad = 0;
    if (inlen > 0 && in[inlen - 1] == '=')
        pad++;
    if (inlen > 1 && in[inlen - 2] == '=')
        pad++;
    return pad;
}

int b64_decode(const char *in, size_t inlen, unsigned char **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    if (inlen % 4 != 0) {
        errno = EINVAL;
        return -1;
    }
    size_t data = inlen - b64_padding(in, inlen); /* characters carrying bits */
    unsigned char *buf = malloc(inlen / 4 * 3 + 1);
    if (buf == NULL) {
        errno = ENOMEM;
        return -1;
    }
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < data; i++) {
        int v = b64_val((unsigned char)in[i]);
        if (v < 0) {
            free(buf);
            errno = EINVAL;
            return -1;
        }
        acc = (acc << 6 | (uint32_t)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[n++] = (unsigned char)(acc >> bits);
        }
    }
    *out = buf;
    *outlen = n;
    return 0;
}
