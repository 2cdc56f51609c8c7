/* core/alloc.c — every host allocation of the core goes through here, so a test build can
 * fail the Nth one (EMBER_FAIL_ALLOC=N, or em__fail_after from tests) and prove that each
 * failure returns a status and leaks nothing. Device buffer allocations consult the same
 * counter (dispatch.c). */
#include "config.h"
#include "internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* -1: injection off. Otherwise the number of allocations that still succeed. */
static _Atomic long fail_countdown = -1;
static _Atomic int env_read = 0;

static void read_env(void)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&env_read, &expected, 1))
        return;
    const char *s = em__getenv("EMBER_FAIL_ALLOC");
    if (s && *s) {
        char *end;
        long n = strtol(s, &end, 10);
        if (*end == 0 && n > 0)
            atomic_store(&fail_countdown, n - 1);
    }
}

/* Test hook (exported for the reliability tests only through the test build): fail the
 * nth allocation from now; n <= 0 turns injection off. */
EMBER_API void em__test_fail_alloc_after(long n);
EMBER_API void em__test_fail_alloc_after(long n)
{
    atomic_store(&env_read, 1);
    atomic_store(&fail_countdown, n > 0 ? n - 1 : -1);
}

bool em__fail_injected(void)
{
    read_env();
    long c = atomic_load(&fail_countdown);
    if (c < 0)
        return false;
    while (c >= 0) {
        if (atomic_compare_exchange_weak(&fail_countdown, &c, c - 1))
            return c == 0;
    }
    return false;
}

void *em__malloc(size_t n)
{
    if (em__fail_injected())
        return NULL;
    return malloc(n ? n : 1);
}

void *em__calloc(size_t n, size_t sz)
{
    if (em__fail_injected())
        return NULL;
    return calloc(n ? n : 1, sz ? sz : 1);
}

void *em__realloc(void *p, size_t n)
{
    if (em__fail_injected())
        return NULL;
    return realloc(p, n ? n : 1);
}

char *em__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = em__malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}
