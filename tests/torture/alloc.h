/* Allocation-failure injection for the torture test.
 *
 * The test executable is linked with -Wl,--wrap=malloc,... so every call to
 * malloc, calloc, realloc, strdup, strndup and free made from the library's
 * objects (and from the test's own objects) lands in the __wrap_* functions
 * of alloc.c. OpenSSL, libgsasl and libc allocate inside their own shared
 * libraries; those calls are not wrapped, so only smtpc's allocations are
 * counted and failed.
 *
 * Counting is per thread and only while armed: the in-process server thread
 * never counts. While armed, every live allocation is tracked, so a leak is
 * found at the end of each iteration (not only by LeakSanitizer at exit). */
#ifndef TORTURE_ALLOC_H
#define TORTURE_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Arms the calling thread: allocation number fail_at (1-based) fails, and
 * with persistent every later one too. fail_at 0 fails nothing. */
void alloc_arm(unsigned long fail_at, bool persistent);
/* Disarms; returns the number of allocations counted since alloc_arm. */
unsigned long alloc_disarm(void);
/* Whether a failure has been injected since alloc_arm. */
bool alloc_injected(void);
/* Allocations counted so far (armed thread). */
unsigned long alloc_count(void);
/* Live tracked allocations (library memory not yet freed). */
size_t alloc_live(void);
/* Prints each live allocation (its number and call site) to f, then forgets them. */
void alloc_report_live(FILE *f, size_t max);
/* Prints the call site of the injected failure. */
void alloc_report_injected(FILE *f);
/* Prints a code address as "function (file:line)" when addr2line can tell. */
void alloc_print_site(FILE *f, void *addr);

#endif
