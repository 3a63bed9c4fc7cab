/* Shared helpers of the libFuzzer targets (built and run by fuzz/run). Each
 * target defines LLVMFuzzerTestOneInput; a broken invariant aborts, which
 * libFuzzer reports as a crash with the input saved. */
#ifndef SMTPC_FUZZ_H
#define SMTPC_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_ASSERT(cond)                                                                   \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);  \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

/* A cursor over the fuzzer's input: reads past the end give zeros. */
typedef struct fz_in {
    const uint8_t *p;
    size_t n;
} fz_in;

static inline uint8_t fz_u8(fz_in *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

/* Up to want bytes (fewer at the end); returns how many. */
static inline size_t fz_take(fz_in *in, size_t want, const uint8_t **out)
{
    size_t n = want < in->n ? want : in->n;
    *out = in->p;
    in->p += n;
    in->n -= n;
    return n;
}

/* A NUL-terminated copy of len bytes (embedded NULs stay, so C string
 * parsers see a prefix). The caller frees. */
static inline char *fz_strndup(const uint8_t *p, size_t len)
{
    char *s = malloc(len + 1);
    if (s == NULL)
        abort();
    memcpy(s, p, len);
    s[len] = '\0';
    return s;
}

/* True when s (len bytes) holds a terminated string of at most max bytes. */
static inline int fz_bounded_str(const char *s, size_t max)
{
    return s != NULL && strnlen(s, max + 1) <= max;
}

#endif
