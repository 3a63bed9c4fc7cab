/* Scanning and streaming message files. */
#include "msgfile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtpc.h"

static bool is_wsp(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* ---- the TLS-Required header field (RFC 8689 5) ---- */

/* A field ends: note "TLS-Required: No". RFC 8689 5 gives both the name and
 * "No" as ABNF quoted strings, which are case-insensitive (RFC 5234 2.3). */
static void hf_end(struct cli_msgscan *sc)
{
    struct cli_hdrfield *h = &sc->hf;
    if (h->st == HF_VALUE && !h->overflow && h->vlen == 2 && strncasecmp(h->value, "no", 2) == 0)
        sc->tls_required_no = true;
    h->st = HF_NONE;
}

static void hf_start(struct cli_hdrfield *h)
{
    h->st = HF_NAME;
    h->nlen = h->vlen = 0;
    h->overflow = h->name_ws = h->vtrail = false;
}

static void hf_name(struct cli_hdrfield *h, unsigned char c)
{
    static const char want[] = "TLS-Required";
    if (c == ':') {
        bool ours = h->nlen == sizeof want - 1 && strncasecmp(h->name, want, h->nlen) == 0;
        h->st = ours ? HF_VALUE : HF_NONE;
        return;
    }
    if (is_wsp(c)) { /* RFC 5322 4.5: obsolete WSP before the colon */
        h->name_ws = true;
        return;
    }
    if (h->name_ws || h->nlen == sizeof h->name)
        h->st = HF_NONE; /* some other field, or none at all */
    else
        h->name[h->nlen++] = (char)c;
}

/* Keeps the one word of the value, bounded; anything more is not "No".
 * Folding whitespace around it is ignored (CRLF of a fold included). */
static void hf_value(struct cli_hdrfield *h, unsigned char c)
{
    if (c == '\r')
        return;
    if (is_wsp(c)) {
        h->vtrail = h->vlen > 0;
        return;
    }
    if (h->vtrail || h->vlen == sizeof h->value)
        h->overflow = true;
    else
        h->value[h->vlen++] = (char)c;
}

/* One byte of the header section other than LF. */
static void hf_byte(struct cli_msgscan *sc, unsigned char c)
{
    struct cli_hdrfield *h = &sc->hf;
    if (h->bol) {
        h->bol = false;
        /* A line starting with WSP continues the field (RFC 5322 2.2.3);
         * anything else starts a new one. */
        if (!is_wsp(c)) {
            hf_end(sc);
            hf_start(h);
        }
    }
    if (h->st == HF_NAME)
        hf_name(h, c);
    else if (h->st == HF_VALUE)
        hf_value(h, c);
}

/* ---- the scanner ---- */

void cli_msgscan_init(struct cli_msgscan *sc)
{
    *sc = (struct cli_msgscan){.line_empty = true, .in_header = true};
    sc->hf.st = HF_NONE;
    sc->hf.bol = true;
}

static void note_bare_cr(struct cli_msgscan *sc, uint64_t off)
{
    if (!sc->bare_cr) {
        sc->bare_cr = true;
        sc->bare_off = off;
    }
}

/* End of a line: the header section ends at the first empty line (RFC 5322 2.1). */
static void scan_lf(struct cli_msgscan *sc)
{
    sc->size += sc->prev_cr ? 1 : 2; /* a bare LF becomes CRLF */
    if (sc->in_header && sc->line_empty) {
        hf_end(sc);
        sc->in_header = false;
    }
    sc->hf.bol = true;
    sc->line_empty = true;
    sc->prev_cr = false;
}

static void scan_byte(struct cli_msgscan *sc, unsigned char c)
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
        if (sc->in_header)
            hf_byte(sc, c);
        if (c >= 0x80 && sc->in_header)
            sc->hdr8 = true;
        else if (c >= 0x80)
            sc->body8 = true;
    }
    sc->last = c;
    sc->off++;
}

void cli_msgscan_feed(struct cli_msgscan *sc, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        scan_byte(sc, p[i]);
}

void cli_msgscan_end(struct cli_msgscan *sc, struct cli_msgfile *mf)
{
    if (sc->prev_cr)
        note_bare_cr(sc, sc->off - 1);
    if (sc->in_header)
        hf_end(sc); /* a message that is all header */
    if (sc->off > 0 && sc->last != '\n')
        sc->size += 2; /* the final CRLF the library appends */
    mf->size = sc->size;
    mf->tls_required_no = sc->tls_required_no;
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
static int scan_stream(FILE *in, FILE *spool, struct cli_msgscan *sc, const char *path,
                       struct cli_err *err)
{
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
        cli_msgscan_feed(sc, buf, n);
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
    struct cli_msgscan sc;
    FILE *in = NULL;
    cli_msgscan_init(&sc);
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
        cli_msgscan_end(&sc, mf);
    return rc;
}

int cli_msgfiles_scan(const char *const *paths, size_t n, struct cli_msgfile **out,
                      size_t *nout, struct cli_err *err)
{
    *nout = 0;
    *out = calloc(n > 0 ? n : 1, sizeof **out);
    if (*out == NULL)
        return cli_err_set(err, CLI_EX_CONFIG, "out of memory");
    *nout = n > 0 ? n : 1;
    for (size_t i = 0; i < *nout; i++)
        if (cli_msgfile_scan(&(*out)[i], n > 0 ? paths[i] : "-", err) != 0)
            return -1;
    return 0;
}

void cli_msgfiles_free(struct cli_msgfile *mf, size_t n)
{
    for (size_t i = 0; mf != NULL && i < n; i++)
        cli_msgfile_free(&mf[i]);
    free(mf);
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

int cli_msgfile_rewind(void *userdata)
{
    FILE *f = userdata;
    clearerr(f);
    return fseek(f, 0, SEEK_SET) == 0 ? 0 : -1;
}

ssize_t cli_msgfile_read(void *userdata, char *buf, size_t len)
{
    FILE *f = userdata;
    size_t n = fread(buf, 1, len, f);
    if (n == 0 && ferror(f))
        return -1;
    return (ssize_t)n;
}
