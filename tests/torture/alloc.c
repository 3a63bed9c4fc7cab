/* Allocation wrappers (see alloc.h): count, fail the N-th, track live blocks. */
#include "alloc.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void __real_free(void *p);

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
void __wrap_free(void *p);

/* Per-thread arming: only the client thread of the test is ever armed. */
static __thread bool armed;
static __thread bool persistent_fail;
static __thread unsigned long counter, fail_at;
static __thread bool injected;
static __thread void *injected_site;

/* Live blocks of the armed thread: open addressing with linear probing and
 * backward-shift deletion. Only the armed thread touches it. */
#define TRACK_BITS 16
#define TRACK_CAP (1u << TRACK_BITS)
struct block {
    void *p;
    unsigned long n;  /* allocation number */
    void *site;       /* return address of the caller of malloc & co */
};
static struct block table[TRACK_CAP];
static size_t live;

static size_t slot_of(const void *p)
{
    uint64_t h = (uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> (64 - TRACK_BITS));
}

static void track_add(void *p, void *site)
{
    if (!p || live + 1 >= TRACK_CAP / 2)
        return; /* a full table only weakens the leak check */
    size_t i = slot_of(p);
    while (table[i].p)
        i = (i + 1) & (TRACK_CAP - 1);
    table[i] = (struct block){p, counter, site};
    live++;
}

static void track_del(void *p)
{
    size_t i = slot_of(p);
    while (table[i].p && table[i].p != p)
        i = (i + 1) & (TRACK_CAP - 1);
    if (!table[i].p)
        return; /* not ours: allocated before arming or by another library */
    table[i].p = NULL;
    live--;
    /* Backward shift: move later entries of the cluster into the hole. */
    size_t hole = i;
    for (size_t j = (i + 1) & (TRACK_CAP - 1); table[j].p; j = (j + 1) & (TRACK_CAP - 1)) {
        size_t home = slot_of(table[j].p);
        bool movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
        if (movable) {
            table[hole] = table[j];
            table[j].p = NULL;
            hole = j;
        }
    }
}

/* Counts one allocation; true when it must fail. */
static bool fail_now(void *site)
{
    counter++;
    if (fail_at == 0 || counter < fail_at || (counter > fail_at && !persistent_fail))
        return false;
    if (!injected)
        injected_site = site;
    injected = true;
    errno = ENOMEM;
    return true;
}

void *__wrap_malloc(size_t n)
{
    if (!armed)
        return __real_malloc(n);
    void *site = __builtin_return_address(0);
    if (fail_now(site))
        return NULL;
    void *p = __real_malloc(n);
    track_add(p, site);
    return p;
}

void *__wrap_calloc(size_t n, size_t size)
{
    if (!armed)
        return __real_calloc(n, size);
    void *site = __builtin_return_address(0);
    if (fail_now(site))
        return NULL;
    void *p = __real_calloc(n, size);
    track_add(p, site);
    return p;
}

void *__wrap_realloc(void *p, size_t n)
{
    if (!armed)
        return __real_realloc(p, n);
    void *site = __builtin_return_address(0);
    if (fail_now(site))
        return NULL; /* like realloc: the old block stays valid */
    void *q = __real_realloc(p, n);
    if (q) {
        if (p)
            track_del(p);
        track_add(q, site);
    }
    return q;
}

char *__wrap_strdup(const char *s)
{
    if (!armed)
        return __real_strdup(s);
    void *site = __builtin_return_address(0);
    if (fail_now(site))
        return NULL;
    char *p = __real_strdup(s);
    track_add(p, site);
    return p;
}

char *__wrap_strndup(const char *s, size_t n)
{
    if (!armed)
        return __real_strndup(s, n);
    void *site = __builtin_return_address(0);
    if (fail_now(site))
        return NULL;
    char *p = __real_strndup(s, n);
    track_add(p, site);
    return p;
}

void __wrap_free(void *p)
{
    if (armed && p)
        track_del(p);
    __real_free(p);
}

void alloc_arm(unsigned long n, bool persistent)
{
    counter = 0;
    fail_at = n;
    persistent_fail = persistent;
    injected = false;
    injected_site = NULL;
    armed = true;
}

unsigned long alloc_disarm(void)
{
    armed = false;
    return counter;
}

bool alloc_injected(void) { return injected; }
unsigned long alloc_count(void) { return counter; }
size_t alloc_live(void) { return live; }

/* "function at file:line" via addr2line on our own executable (PIE offset). */
void alloc_print_site(FILE *f, void *addr)
{
    Dl_info info;
    if (!addr || !dladdr(addr, &info) || !info.dli_fname) {
        fprintf(f, "%p", addr);
        return;
    }
    /* The return address points after the call: step back into it. */
    uintptr_t off = (uintptr_t)addr - (uintptr_t)info.dli_fbase - 1;
    char cmd[1200], line[512];
    snprintf(cmd, sizeof cmd, "addr2line -f -i -p -C -e '%s' 0x%lx 2>/dev/null", info.dli_fname,
             (unsigned long)off);
    FILE *p = popen(cmd, "r");
    bool any = false;
    while (p && fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = '\0';
        fprintf(f, "%s%s", any ? " <- " : "", line);
        any = true;
    }
    if (p)
        pclose(p);
    if (!any)
        fprintf(f, "%s+0x%lx", info.dli_fname, (unsigned long)off);
}

void alloc_report_injected(FILE *f)
{
    alloc_print_site(f, injected_site);
}

void alloc_report_live(FILE *f, size_t max)
{
    bool was = armed;
    armed = false;
    size_t shown = 0;
    for (size_t i = 0; i < TRACK_CAP; i++) {
        if (!table[i].p)
            continue;
        if (shown++ < max) {
            fprintf(f, "    leaked allocation #%lu from ", table[i].n);
            alloc_print_site(f, table[i].site);
            fputc('\n', f);
        }
        table[i].p = NULL;
    }
    live = 0;
    armed = was;
}
