/* Scanning and streaming message files. */
#include "msgfile.h"

#include <errno.h>
#include <string.h>

#include "smtpc.h"

/* Scanner state, fed chunk by chunk (a CR may end one chunk, its LF start the next). */
struct scan {
    uint64_t off;
    int64_t size;
    bool prev_cr, line_empty, in_header, hdr8, body8, bare_cr;
    uint64_t bare_off;
    unsigned char last;
};

static void note_bare_cr(struct scan *sc, uint64_t off)
{
    if (!sc->bare_cr) {
        sc->bare_cr = true;
        sc->bare_off = off;
    }
}

/* End of a line: the header section ends at the first empty line (RFC 5322 2.1). */
static void scan_lf(struct scan *sc)
{
    sc->size += sc->prev_cr ? 1 : 2; /* a bare LF becomes CRLF */
    if (sc->in_header && sc->line_empty)
        sc->in_header = false;
    sc->line_empty = true;
    sc->prev_cr = false;
}

static void scan_byte(struct scan *sc, unsigned char c)
{
    if (sc->prev_cr && c != '\n')
        note_bare_cr(sc, sc->off - 1);
    if (c == '\n') {
        scan_lf(sc);
    } else {
        sc->size++;
        sc->prev_cr = c == '\r';
        if (c != '\r')
            sc->line_empty = false;
        if (c >= 0x80 && sc->in_header)
            sc->hdr8 = true;
        else if (c >= 0x80)
            sc->body8 = true;
    }
    sc->last = c;
    sc->off++;
}

static void scan_end(struct scan *sc, struct cli_msgfile *mf)
{
    if (sc->prev_cr)
        note_bare_cr(sc, sc->off - 1);
    if (sc->off > 0 && sc->last != '\n')
        sc->size += 2; /* the final CRLF the library appends */
    mf->size = sc->size;
    /* Non-ASCII header fields need SMTPUTF8 (RFC 6532); an 8-bit body needs
     * 8BITMIME (RFC 6152) and, auto-detected, fails like --require-8bitmime. */
    if (sc->hdr8)
        mf->flags |= SMTPC_MSG_SMTPUTF8 | SMTPC_MSG_8BIT;
    if (sc->body8)
        mf->flags |= SMTPC_MSG_8BIT | SMTPC_MSG_REQUIRE_8BITMIME;
    if (sc->bare_cr) {
        mf->invalid = true;
        snprintf(mf->why, sizeof mf->why, "bare CR (not followed by LF) at byte offset %llu",
                 (unsigned long long)sc->bare_off);
    }
}

static int read_error(const char *path, struct cli_err *err)
{
    const char *name = strcmp(path, "-") == 0 ? "standard input" : path;
    return cli_err_set(err, CLI_EX_CONFIG, "reading message %s: %s", name, strerror(errno));
}

/* Reads in to the end, scanning; copies to spool when not NULL. */
static int scan_stream(FILE *in, FILE *spool, struct scan *sc, const char *path,
                       struct cli_err *err)
{
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
        for (size_t i = 0; i < n; i++)
            scan_byte(sc, buf[i]);
        if (spool != NULL && fwrite(buf, 1, n, spool) != n)
            return cli_err_set(err, CLI_EX_CONFIG, "spooling standard input: %s",
                               strerror(errno));
    }
    if (ferror(in))
        return read_error(path, err);
    return 0;
}

static int open_input(struct cli_msgfile *mf, FILE **in, struct cli_err *err)
{
    if (strcmp(mf->path, "-") != 0) {
        *in = fopen(mf->path, "rb");
        return *in != NULL ? 0 : read_error(mf->path, err);
    }
    *in = stdin;
    mf->spool = tmpfile();
    if (mf->spool == NULL)
        return cli_err_set(err, CLI_EX_CONFIG, "temporary file for standard input: %s",
                           strerror(errno));
    return 0;
}

int cli_msgfile_scan(struct cli_msgfile *mf, const char *path, struct cli_err *err)
{
    struct scan sc = {.line_empty = true, .in_header = true};
    FILE *in = NULL;
    memset(mf, 0, sizeof *mf);
    mf->path = path;
    if (open_input(mf, &in, err) != 0)
        return -1;
    int rc = scan_stream(in, mf->spool, &sc, path, err);
    if (in != stdin)
        fclose(in);
    if (rc == 0 && mf->spool != NULL && fflush(mf->spool) != 0)
        rc = cli_err_set(err, CLI_EX_CONFIG, "spooling standard input: %s", strerror(errno));
    if (rc == 0)
        scan_end(&sc, mf);
    return rc;
}

FILE *cli_msgfile_open(struct cli_msgfile *mf)
{
    if (mf->spool == NULL)
        return fopen(mf->path, "rb");
    rewind(mf->spool);
    return mf->spool;
}

void cli_msgfile_close(struct cli_msgfile *mf, FILE *f)
{
    if (f != NULL && f != mf->spool)
        fclose(f);
}

void cli_msgfile_free(struct cli_msgfile *mf)
{
    if (mf->spool != NULL)
        fclose(mf->spool);
    mf->spool = NULL;
}

ssize_t cli_msgfile_read(void *userdata, char *buf, size_t len)
{
    FILE *f = userdata;
    size_t n = fread(buf, 1, len, f);
    if (n == 0 && ferror(f))
        return -1;
    return (ssize_t)n;
}
