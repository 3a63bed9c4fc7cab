/* The MTA-STS policy cache (RFC 8461 5.1; spec 21) in SQLite, at
 * DIR/mtasts.sqlite.
 *
 * Several smtpc processes may share the state directory: the database runs
 * in WAL mode with a busy timeout, and every read-modify-write is one
 * BEGIN IMMEDIATE transaction (the write lock is taken up front, so two
 * writers never deadlock on a lock upgrade and never see SQLITE_BUSY while
 * the other commits). No transaction is open during DNS lookups or HTTPS
 * fetches.
 *
 * There is no background refresh (spec 21.7): smtpc is a CLI and library
 * without a daemon. Policies are refreshed on use instead: every use checks
 * the TXT record id and fetches a changed policy (21.4), and an entry past
 * its max_age is fetched anew. */
#include "mtasts.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* RFC 8461 5.1 / spec 21.3: a failed fetch is not retried for 5 minutes. */
#define BACKOFF_SECONDS 300
#define BUSY_TIMEOUT_MS 15000
/* Spec 21.4: the first fetch may take a minute, a refresh 30 s. */
#define FIRST_TIMEOUT_MS 60000
#define REFRESH_TIMEOUT_MS 30000

struct mtasts_cache {
    sqlite3 *db;
    char err[160]; /* the last database error, kept past the rollback */
};

typedef struct cache_entry {
    bool backoff;
    char record_id[33];
    mtasts_policy policy;
    char *policy_text;
} cache_entry;

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS mtasts_policy ("
    " domain TEXT PRIMARY KEY NOT NULL,"
    " inserted INTEGER NOT NULL,"
    " valid_end INTEGER NOT NULL,"
    " last_update INTEGER NOT NULL,"
    " last_use INTEGER NOT NULL,"
    " backoff INTEGER NOT NULL,"
    " record_id TEXT NOT NULL,"
    " mode TEXT NOT NULL,"
    " max_age INTEGER NOT NULL,"
    " mx TEXT NOT NULL,"         /* patterns, one per line */
    " policy_text TEXT NOT NULL" /* the body as served, "" for backoff entries */
    ")";

/* ------------------------------------------------------------------ */
/* Opening. */

/* mkdir -p with mode 0700 for what we create (the state may hold policy
 * history of the user's correspondents). */
static int mkdir_p(const char *dir)
{
    char path[4096];
    int w = snprintf(path, sizeof path, "%s", dir);
    if (w <= 0 || (size_t)w >= sizeof path)
        return -1;
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* Setup statements run outside the busy handler in one case: switching to
 * WAL while another process opens the file. Retry those a while. */
static int exec_retry(sqlite3 *db, const char *sql)
{
    int rc = SQLITE_BUSY;
    for (int i = 0; i < 150 && (rc == SQLITE_BUSY || rc == SQLITE_LOCKED); i++) {
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
        if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
            usleep(100 * 1000);
    }
    return rc;
}

mtasts_cache *mtasts_cache_open(const char *dir, char *err, size_t errlen)
{
    char path[4200];
    if (!dir || !*dir || mkdir_p(dir) != 0) {
        snprintf(err, errlen, "cannot create state directory %s: %s", dir ? dir : "",
                 strerror(errno));
        return NULL;
    }
    snprintf(path, sizeof path, "%s/mtasts.sqlite", dir);
    mtasts_cache *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    int rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
    if (rc == SQLITE_OK)
        rc = exec_retry(c->db, "PRAGMA journal_mode=WAL");
    if (rc == SQLITE_OK)
        rc = exec_retry(c->db, "PRAGMA synchronous=NORMAL");
    if (rc == SQLITE_OK)
        rc = exec_retry(c->db, schema);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path,
                 c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        mtasts_cache_close(c);
        return NULL;
    }
    return c;
}

void mtasts_cache_close(mtasts_cache *c)
{
    if (!c)
        return;
    sqlite3_close(c->db);
    free(c);
}

/* ------------------------------------------------------------------ */
/* Rows. */

static void entry_free(cache_entry *e)
{
    mtasts_policy_free(&e->policy);
    free(e->policy_text);
    memset(e, 0, sizeof *e);
}

static int mode_parse(const char *s, mtasts_mode *m)
{
    for (int i = MTASTS_MODE_NONE; i <= MTASTS_MODE_ENFORCE; i++) {
        if (strcmp(s, mtasts_mode_name((mtasts_mode)i)) == 0) {
            *m = (mtasts_mode)i;
            return 0;
        }
    }
    return -1;
}

/* "a\nb" -> mx patterns, at most MTASTS_MAX_MX of at most 255 chars. */
static int mx_split(const char *s, mtasts_policy *p)
{
    while (*s && p->nmx < MTASTS_MAX_MX) {
        size_t n = strcspn(s, "\n");
        if (n > 0 && n < 256) {
            p->mx[p->nmx] = strndup(s, n);
            if (!p->mx[p->nmx])
                return -1;
            p->nmx++;
        }
        s += n;
        if (*s == '\n')
            s++;
    }
    return 0;
}

static char *mx_join(const mtasts_policy *p)
{
    size_t len = 1;
    for (size_t i = 0; i < p->nmx; i++)
        len += strlen(p->mx[i]) + 1;
    char *s = malloc(len), *w = s;
    if (!s)
        return NULL;
    *w = '\0';
    for (size_t i = 0; i < p->nmx; i++)
        w += sprintf(w, "%s%s", i ? "\n" : "", p->mx[i]);
    return s;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

/* Fills e from a row of (backoff, record_id, mode, max_age, mx, policy_text).
 * Returns 1 for a usable row, 0 for a row we cannot read (treated as absent:
 * it will be replaced), -1 on nomem. */
static int entry_from_row(sqlite3_stmt *st, cache_entry *e)
{
    memset(e, 0, sizeof *e);
    e->backoff = sqlite3_column_int(st, 0) != 0;
    snprintf(e->record_id, sizeof e->record_id, "%s", col_text(st, 1));
    if (mode_parse(col_text(st, 2), &e->policy.mode) != 0)
        return 0;
    e->policy.max_age = sqlite3_column_int64(st, 3);
    e->policy_text = strdup(col_text(st, 5));
    if (!e->policy_text || mx_split(col_text(st, 4), &e->policy) != 0) {
        entry_free(e);
        return -1;
    }
    return 1;
}

static void db_error(mtasts_cache *c)
{
    snprintf(c->err, sizeof c->err, "%s", sqlite3_errmsg(c->db));
}

static int tx_begin(mtasts_cache *c)
{
    if (sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK)
        return 0;
    db_error(c);
    return -1;
}

/* Commits when rc >= 0, else rolls back. Returns rc, or -1. */
static int tx_end(mtasts_cache *c, int rc)
{
    if (rc >= 0 && sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
        return rc;
    if (rc >= 0)
        db_error(c);
    sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

static int bump_last_use(mtasts_cache *c, const char *domain, int64_t now)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db, "UPDATE mtasts_policy SET last_use = ? WHERE domain = ?",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_text(st, 2, domain, -1, SQLITE_STATIC);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : -1;
}

/* Spec 21.2: an entry counts while valid_end > now; a hit sets last_use.
 * Returns 1 with e filled, 0 when absent, -1 on a database error. */
static int cache_lookup(mtasts_cache *c, const char *domain, int64_t now, cache_entry *e)
{
    sqlite3_stmt *st = NULL;
    if (tx_begin(c) != 0)
        return -1;
    int rc = sqlite3_prepare_v2(c->db,
                                "SELECT backoff, record_id, mode, max_age, mx, policy_text"
                                " FROM mtasts_policy WHERE domain = ? AND valid_end > ?",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            rc = entry_from_row(st, e);
        else
            rc = rc == SQLITE_DONE ? 0 : -1;
    } else {
        rc = -1;
    }
    if (rc < 0)
        db_error(c);
    sqlite3_finalize(st);
    if (rc == 1 && bump_last_use(c, domain, now) != 0) {
        db_error(c);
        entry_free(e);
        rc = -1;
    }
    return tx_end(c, rc);
}

/* Spec 21.3: policy NULL stores a back-off entry (mode none, 5 minutes).
 * The inserted time of an existing row is kept. */
static int cache_upsert(mtasts_cache *c, const char *domain, const char *record_id,
                        const mtasts_policy *p, const char *text, int64_t now)
{
    static const char sql[] =
        "INSERT INTO mtasts_policy (domain, inserted, valid_end, last_update, last_use,"
        " backoff, record_id, mode, max_age, mx, policy_text)"
        " VALUES (?1, ?2, ?3, ?2, ?2, ?4, ?5, ?6, ?7, ?8, ?9)"
        " ON CONFLICT(domain) DO UPDATE SET valid_end = excluded.valid_end,"
        " last_update = excluded.last_update, last_use = excluded.last_use,"
        " backoff = excluded.backoff, record_id = excluded.record_id, mode = excluded.mode,"
        " max_age = excluded.max_age, mx = excluded.mx, policy_text = excluded.policy_text";
    int64_t max_age = p ? p->max_age : BACKOFF_SECONDS;
    char *mx = p ? mx_join(p) : strdup("");
    sqlite3_stmt *st = NULL;
    if (!mx || tx_begin(c) != 0) {
        free(mx);
        return -1;
    }
    int rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now);
        sqlite3_bind_int64(st, 3, now + max_age);
        sqlite3_bind_int(st, 4, p ? 0 : 1);
        sqlite3_bind_text(st, 5, record_id ? record_id : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, mtasts_mode_name(p ? p->mode : MTASTS_MODE_NONE), -1,
                          SQLITE_STATIC);
        sqlite3_bind_int64(st, 7, max_age);
        sqlite3_bind_text(st, 8, mx, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 9, p && text ? text : "", -1, SQLITE_STATIC);
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    } else {
        rc = -1;
    }
    if (rc < 0)
        db_error(c);
    sqlite3_finalize(st);
    free(mx);
    return tx_end(c, rc);
}

/* ------------------------------------------------------------------ */
/* The decision of spec 21.4. */

typedef struct get_ctx {
    mtasts_cache *c; /* NULL: probe, nothing stored */
    dns_resolver *r;
    const char *domain; /* = key: lookups, fetches and the TLSRPT policy domain */
    char key[256];      /* lowercase, no trailing dot: the cache key */
    const mtasts_fetch_opts *o;
    int64_t now;
    mtasts_outcome *out;
} get_ctx;

/* Spec 20.10: the TLSRPT reason of a lookup or fetch error. */
static void err_reason(const mtasts_result *res, char *buf, size_t len)
{
    if (res->ede >= 0 && dns_ede_is_auth(res->ede))
        snprintf(buf, len, "dns-extended-error-%d-%s", res->ede, dns_ede_name(res->ede));
    else
        snprintf(buf, len, "%s", mtasts_err_reason(res->err));
}

/* Spec 21.5: the failure detail of a failed policy fetch. */
static const char *fetch_failure(const mtasts_result *res, char *reason, size_t len)
{
    if (res->webpki_error) {
        const char *t = res->tls_type ? res->tls_type : "validation-failure";
        const char *rs = res->tls_reason ? res->tls_reason : "";
        snprintf(reason, len, "%s%s%s", t, rs[0] ? "+" : "", rs);
        return "sts-webpki-invalid";
    }
    if (res->err == MTASTS_ERR_POLICY_SYNTAX) {
        snprintf(reason, len, "%s", mtasts_err_reason(res->err));
        return "sts-policy-invalid";
    }
    err_reason(res, reason, len);
    return "sts-policy-fetch-error";
}

/* Adds the one failure detail of the result and remembers its reason. */
static void outcome_detail(mtasts_outcome *out, const char *type, const char *reason)
{
    (void)tlsrpt_add(out->result, 0, 0, NULL, type, reason);
    snprintf(out->error_reason, sizeof out->error_reason, "%s", reason);
}

static int outcome_policy(mtasts_outcome *out, const mtasts_policy *p, const char *id)
{
    mtasts_policy_free(&out->policy);
    if (mtasts_policy_copy(&out->policy, p) != 0)
        return -1;
    out->have_policy = true;
    snprintf(out->policy_id, sizeof out->policy_id, "%s", id ? id : "");
    return 0;
}

/* Spec 21.4: a changed record id means a new policy to fetch (30 s). */
static void refetch(get_ctx *g, mtasts_result *res)
{
    mtasts_fetch_opts o = g->o ? *g->o : (mtasts_fetch_opts){0};
    if (o.timeout_ms <= 0)
        o.timeout_ms = REFRESH_TIMEOUT_MS;
    mtasts_fetch_policy(g->r, g->domain, &o, res);
}

/* A failed store is noted but changes nothing else: the policy at hand is
 * still the right one to use (spec 21.4 only logs it). */
static void store(get_ctx *g, const char *id, const mtasts_policy *p, const char *text)
{
    if (g->c && cache_upsert(g->c, g->key, id, p, text, g->now) != 0)
        snprintf(g->out->internal_error, sizeof g->out->internal_error,
                 "MTA-STS cache store failed: %.100s", g->c->err);
}

/* First-fetch errors (spec 21.4, no cache entry). */
static void first_error(get_ctx *g, mtasts_result *res, mtasts_outcome *out)
{
    char reason[128];
    tlsrpt_set_policy(out->result, "sts", g->key);
    switch (res->err) {
    case MTASTS_ERR_NO_RECORD:
        tlsrpt_set_policy(out->result, "no-policy-found", g->key);
        out->fresh = true; /* the domain does not do MTA-STS; not cached */
        return;
    case MTASTS_ERR_MULTIPLE:
    case MTASTS_ERR_RECORD_SYNTAX:
        outcome_detail(out, fetch_failure(res, reason, sizeof reason), reason);
        out->fresh = true; /* treated as no MTA-STS; not cached */
        return;
    case MTASTS_ERR_NO_POLICY:
    case MTASTS_ERR_FETCH:
    case MTASTS_ERR_POLICY_SYNTAX:
        outcome_detail(out, fetch_failure(res, reason, sizeof reason), reason);
        store(g, res->have_record ? res->record.id : "", NULL, NULL); /* back off */
        out->fresh = true;
        return;
    default:
        /* ErrDNS and the like: transient, the caller defers. */
        err_reason(res, reason, sizeof reason);
        outcome_detail(out, "sts-policy-fetch-error", reason);
        out->failed = true;
        return;
    }
}

static int first_fetch(get_ctx *g, mtasts_outcome *out)
{
    mtasts_result res;
    mtasts_fetch_opts o = g->o ? *g->o : (mtasts_fetch_opts){0};
    if (o.timeout_ms <= 0)
        o.timeout_ms = FIRST_TIMEOUT_MS;
    mtasts_get(g->r, g->domain, &o, &res);
    int rc = 0;
    if (res.err != MTASTS_OK) {
        first_error(g, &res, out);
    } else {
        rc = outcome_policy(out, &res.policy, res.record.id);
        /* RFC 8460 4.3 via spec 21.4: a "none" policy is no policy to report on. */
        tlsrpt_set_policy(out->result,
                          res.policy.mode == MTASTS_MODE_NONE ? "no-policy-found" : "sts", g->key);
        store(g, res.record.id, &res.policy, res.policy_text);
        out->fresh = true;
    }
    mtasts_result_free(&res);
    return rc;
}

/* A cached policy whose freshness could not be checked or whose new version
 * could not be fetched stays in force (RFC 8461 5.1). */
static void fallback(mtasts_outcome *out, const char *type, const char *reason, bool suffix)
{
    char full[160];
    snprintf(full, sizeof full, "%s%s", reason, suffix ? "+fallback-to-cached-policy" : "");
    outcome_detail(out, type, full);
    out->fresh = false;
}

static int cached(get_ctx *g, cache_entry *e, mtasts_outcome *out)
{
    mtasts_result res;
    char reason[128];
    if (outcome_policy(out, &e->policy, e->record_id) != 0)
        return -1;
    tlsrpt_set_policy(out->result, "sts", g->key);
    mtasts_lookup_record(g->r, g->domain, &res);
    if (res.err != MTASTS_OK) {
        err_reason(&res, reason, sizeof reason);
        fallback(out, "sts-policy-fetch-error", reason, e->policy.mode != MTASTS_MODE_NONE);
        return 0;
    }
    if (strcmp(res.record.id, e->record_id) == 0 && e->policy_text[0]) {
        out->fresh = true;
        return 0;
    }
    refetch(g, &res);
    int rc = 0;
    if (res.err != MTASTS_OK) {
        const char *type = fetch_failure(&res, reason, sizeof reason);
        fallback(out, type, reason, true);
    } else {
        /* Q12: the new policy text is stored with the new policy. */
        store(g, res.record.id, &res.policy, res.policy_text);
        rc = outcome_policy(out, &res.policy, res.record.id);
        out->fresh = true;
    }
    mtasts_result_free(&res);
    return rc;
}

static int key_make(const char *domain, char key[256])
{
    size_t n = strlen(domain);
    if (n > 0 && domain[n - 1] == '.')
        n--;
    if (n == 0 || n > 253)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char ch = domain[i];
        key[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
    }
    key[n] = '\0';
    return 0;
}

/* A cache that cannot be read could hide a cached enforce policy, so the
 * caller defers (out->failed) rather than go on without MTA-STS. */
static void read_failed(get_ctx *g, mtasts_outcome *out)
{
    tlsrpt_set_policy(out->result, "sts", g->key);
    out->failed = true;
    snprintf(out->internal_error, sizeof out->internal_error,
             "MTA-STS cache read failed: %.100s", g->c->err);
}

int mtasts_cache_get(mtasts_cache *c, dns_resolver *r, const char *domain,
                     const mtasts_fetch_opts *o, int64_t now, mtasts_outcome *out)
{
    get_ctx g = {.c = c, .r = r, .o = o, .now = now, .out = out};
    cache_entry e;
    memset(out, 0, sizeof *out);
    out->result = smtpc_tlsrpt_new();
    if (!out->result)
        return -1;
    if (key_make(domain, g.key) != 0) {
        out->failed = true;
        snprintf(out->internal_error, sizeof out->internal_error, "invalid domain");
        return 0;
    }
    g.domain = g.key;
    int found = c ? cache_lookup(c, g.key, now, &e) : 0;
    int rc = 0;
    if (found < 0) {
        read_failed(&g, out);
    } else if (found == 0) {
        rc = first_fetch(&g, out);
    } else if (e.backoff) {
        tlsrpt_set_policy(out->result, "sts", g.key);
        outcome_detail(out, "sts-policy-fetch-error", "back-off-after-recent-fetch-error");
    } else {
        rc = cached(&g, &e, out);
    }
    if (found > 0)
        entry_free(&e);
    return rc;
}

void mtasts_outcome_free(mtasts_outcome *o)
{
    if (!o)
        return;
    mtasts_policy_free(&o->policy);
    smtpc_tlsrpt_free(o->result);
    memset(o, 0, sizeof *o);
}
