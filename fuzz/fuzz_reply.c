/* Reply reader (src/reply.c): the same byte stream read whole and split at
 * fuzzer-chosen points must give the same replies and the same error.
 * Input: byte 0 = number k (0-15) of chunk-size bytes that follow, then
 * the stream. Invariants: consumed never exceeds the input, a reply ends at
 * its LF, a completed reply's lines are bounded and share one code. */
#include "fuzz.h"

#include "reply.h"

#define MAX_REPLIES 4096

typedef struct outcome {
    rp_status final;        /* status that ended the run (NEED_MORE at the end) */
    size_t nreplies;
    uint32_t digest[MAX_REPLIES]; /* a hash of each reply */
} outcome;

static uint32_t hash_reply(const reply *r)
{
    uint32_t h = 2166136261u ^ (uint32_t)r->code;
    for (size_t i = 0; i < r->nlines; i++) {
        for (const char *p = r->lines[i]; *p; p++)
            h = (h ^ (uint8_t)*p) * 16777619u;
        h = (h ^ 0xff) * 16777619u;
    }
    return h;
}

static void check_reply(const reply *r)
{
    size_t total = 0;
    FZ_ASSERT(r->nlines >= 1 && r->nlines <= REPLY_MAX_LINES);
    FZ_ASSERT(r->code >= 0 && r->code <= 999);
    for (size_t i = 0; i < r->nlines; i++) {
        const char *l = r->lines[i];
        size_t len = strnlen(l, REPLY_MAX_LINE);
        FZ_ASSERT(len < REPLY_MAX_LINE);
        FZ_ASSERT(len >= 3);
        FZ_ASSERT(strchr(l, '\n') == NULL);
        int code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
        FZ_ASSERT(code == r->code);
        /* every line but the last continues, the last ends the reply */
        if (i + 1 < r->nlines)
            FZ_ASSERT(l[3] == '-');
        else
            FZ_ASSERT(l[3] == ' ' || l[3] == '\0');
        const char *t = reply_text(r, i);
        FZ_ASSERT(t[0] == '\0' || (t >= l + 4 && t <= l + len));
        total += len;
    }
    FZ_ASSERT(total <= REPLY_MAX_BYTES);
    FZ_ASSERT(reply_text(r, r->nlines)[0] == '\0');
}

/* Feeds s in pieces of the given sizes (cycled; none: all at once). */
static void run(const uint8_t *s, size_t len, const uint8_t *sizes, size_t nsizes, outcome *o)
{
    reply_parser p;
    reply_parser_init(&p);
    size_t off = 0, k = 0;
    memset(o, 0, sizeof *o);
    o->final = RP_NEED_MORE;
    /* an empty feed changes nothing */
    size_t c0 = 99;
    FZ_ASSERT(reply_parser_feed(&p, (const char *)s, 0, &c0) == RP_NEED_MORE && c0 == 0);
    while (off < len) {
        size_t piece = len - off;
        if (nsizes > 0) {
            size_t want = (size_t)sizes[k++ % nsizes] + 1;
            if (want < piece)
                piece = want;
        }
        size_t used = 0;
        rp_status st = reply_parser_feed(&p, (const char *)s + off, piece, &used);
        FZ_ASSERT(used <= piece);
        off += used;
        if (st == RP_NEED_MORE) {
            FZ_ASSERT(used == piece);
            continue;
        }
        if (st != RP_DONE) {
            FZ_ASSERT(p.errmsg[0] != '\0' && fz_bounded_str(p.errmsg, sizeof p.errmsg - 1));
            o->final = st;
            break;
        }
        FZ_ASSERT(used > 0 && s[off - 1] == '\n');
        reply r;
        reply_parser_take(&p, &r);
        check_reply(&r);
        if (o->nreplies < MAX_REPLIES)
            o->digest[o->nreplies] = hash_reply(&r);
        o->nreplies++;
        reply_free(&r);
    }
    reply_parser_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    size_t nsizes = fz_u8(&in) % 16;
    const uint8_t *sizes;
    nsizes = fz_take(&in, nsizes, &sizes);
    outcome *whole_p = malloc(sizeof *whole_p), *split_p = malloc(sizeof *split_p);
    FZ_ASSERT(whole_p && split_p);
#define whole (*whole_p)
#define split (*split_p)
    run(in.p, in.n, NULL, 0, &whole);
    run(in.p, in.n, sizes, nsizes, &split);
    FZ_ASSERT(whole.final == split.final);
    FZ_ASSERT(whole.nreplies == split.nreplies);
    size_t n = whole.nreplies < MAX_REPLIES ? whole.nreplies : MAX_REPLIES;
    FZ_ASSERT(memcmp(whole.digest, split.digest, n * sizeof whole.digest[0]) == 0);
#undef whole
#undef split
    free(whole_p);
    free(split_p);
    return 0;
}
