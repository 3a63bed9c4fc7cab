/* MTA-STS TXT record (mtasts_record_parse, RFC 8461 3.1). The input is one
 * TXT string (cut at a NUL). Invariants: the result is 0, 1 or -1; a valid
 * record has a 1-32 character alphanumeric id and no error; an invalid one
 * has an error message. */
#include "fuzz.h"

#include <ctype.h>

#include "mtasts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *txt = fz_strndup(data, size);
    mtasts_record r;
    char err[128];
    memset(err, 'x', sizeof err);
    int rc = mtasts_record_parse(txt, &r, err, sizeof err);
    FZ_ASSERT(rc == 0 || rc == 1 || rc == -1);
    FZ_ASSERT(fz_bounded_str(err, sizeof err - 1));
    FZ_ASSERT(fz_bounded_str(r.id, sizeof r.id - 1) && fz_bounded_str(r.raw, sizeof r.raw - 1));
    if (rc == 0) {
        size_t n = strlen(r.id);
        FZ_ASSERT(n >= 1 && n <= 32);
        for (size_t i = 0; i < n; i++)
            FZ_ASSERT(isalnum((unsigned char)r.id[i]));
        FZ_ASSERT(strncmp(txt, "v=STSv1", 7) == 0);
        FZ_ASSERT(strstr(txt, r.id) != NULL);
        FZ_ASSERT(strncmp(r.raw, txt, sizeof r.raw - 1) == 0);
        FZ_ASSERT(err[0] == '\0');
    } else if (rc == 1) {
        FZ_ASSERT(strncmp(txt, "v=STSv1", 7) != 0 || strlen(txt) >= 7);
    } else {
        FZ_ASSERT(err[0] != '\0');
    }
    free(txt);
    return 0;
}
