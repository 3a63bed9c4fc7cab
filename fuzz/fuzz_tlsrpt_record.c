/* TLSRPT TXT record (tlsrpt_record_parse, RFC 8460 3; spec 23.10). The
 * input is one TXT string (cut at a NUL). Invariants: 0, 1 or -1; a valid
 * record has 1..TLSRPT_MAX_RUA URIs with a scheme, taken from the text; an invalid one is left empty with an error message. */
#include "fuzz.h"

#include <ctype.h>

#include "mtasts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *txt = fz_strndup(data, size);
    tlsrpt_record r;
    char err[128];
    int rc = tlsrpt_record_parse(txt, &r, err, sizeof err);
    FZ_ASSERT(rc == 0 || rc == 1 || rc == -1);
    FZ_ASSERT(fz_bounded_str(err, sizeof err - 1));
    FZ_ASSERT(r.nrua <= TLSRPT_MAX_RUA);
    if (rc == 0) {
        FZ_ASSERT(err[0] == '\0');
        FZ_ASSERT(r.nrua >= 1);
        FZ_ASSERT(strncmp(txt, "v=TLSRPTv1", 10) == 0);
        for (size_t i = 0; i < r.nrua; i++) {
            FZ_ASSERT(r.rua[i] != NULL && r.rua[i][0] != '\0');
            const char *u = r.rua[i];
            size_t scheme = strspn(u, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                      "0123456789+-.");
            FZ_ASSERT(isalpha((unsigned char)u[0]) && scheme > 0 && u[scheme] == ':');
            for (const char *q = u; *q; q++)
                FZ_ASSERT((unsigned char)*q > 0x20 && *q != 0x7f && *q != ',' && *q != '!' &&
                          *q != ';');
            FZ_ASSERT(strstr(txt, u) != NULL);
        }
    } else {
        FZ_ASSERT(r.nrua == 0);
        if (rc == -1)
            FZ_ASSERT(err[0] != '\0');
    }
    tlsrpt_record_free(&r);
    free(txt);
    return 0;
}
