/* TLSA presentation text "USAGE SELECTOR MTYPE HEX" (tlsa_parse_text in
 * src/tls.c), cut at a NUL. Invariants: on success the data holds exactly
 * the hex digits of the text, 1..65535 bytes; tlsa_usable agrees with
 * RFC 7672 3.1.3 (DANE-TA(2)/DANE-EE(3), selector 0/1, mtype 0/1/2). */
#include "fuzz.h"

#include <ctype.h>

#include <stdbool.h>

#include "tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fz_strndup(data, size);
    tlsa_rec r;
    memset(&r, 0, sizeof r);
    if (tlsa_parse_text(text, &r) == 0) {
        FZ_ASSERT(r.data != NULL && r.len >= 1 && r.len <= 65535);
        size_t hex = 0;
        for (const char *p = text; *p; p++)
            hex += isxdigit((unsigned char)*p) != 0;
        FZ_ASSERT(hex >= 2 * r.len); /* the three numbers may be digits too */
        bool usable = tlsa_usable(&r);
        if (usable) {
            FZ_ASSERT((r.usage == 2 || r.usage == 3) && r.selector <= 1 && r.mtype <= 2);
            FZ_ASSERT(r.mtype != 1 || r.len == 32);
            FZ_ASSERT(r.mtype != 2 || r.len == 64);
        }
        free(r.data);
    }
    free(text);
    return 0;
}
