/* core/alloc.c — every host allocation of the core goes through here, so a test build can
 * fail the Nth one (EMBER_FAIL_ALLOC=N, or em__test_fail_alloc_after from tests) and prove
 * that each failure returns a status and leaks nothing. Device buffer allocations consult the
 * same counter (context.c). Kernel calls and host<->device copies have a counter of their own
 * (EMBER_FAIL_KERNEL=N, em__test_fail_kernel_after): the Nth one fails as a faulting device
 * would, which is how the all-or-nothing rules are tested. */
#include "config.h"
#include "internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* -1: injection off. Otherwise the number of allocations (kernel calls) that still succeed. */
static _Atomic long fail_countdown = -1, kernel_countdown = -1;
static _Atomic int env_read = 0;

static void read_env(void)
{
    int expected = 0;
    /* a plain load first: this runs on every allocation and kernel call */
    if (atomic_load_explicit(&env_read, memory_order_acquire) ||
        !atomic_compare_exchange_strong(&env_read, &expected, 1))
        return;
    static const char *const names[2] = {"EMBER_FAIL_ALLOC", "EMBER_FAIL_KERNEL"};
    _Atomic long *const counters[2] = {&fail_countdown, &kernel_countdown};
    for (int i = 0; i < 2; i++) {
        const char *s = em__getenv(names[i]);
        if (s && *s) {
            char *end;
            long n = strtol(s, &end, 10);
            if (*end == 0 && n > 0)
                atomic_store(counters[i], n - 1);
        }
    }
}

/* Consume one count of c; true when this call is the one to fail. */
static bool countdown(_Atomic long *c)
{
    read_env();
    long v = atomic_load_explicit(c, memory_order_relaxed);
    while (v >= 0) {
        if (atomic_compare_exchange_weak(c, &v, v - 1))
            return v == 0;
    }
    return false;
}

/* Test hook (exported for the reliability tests only through the test build): fail the
 * nth allocation from now; n <= 0 turns injection off. */
EMBER_API void em__test_fail_alloc_after(long n);
EMBER_API void em__test_fail_alloc_after(long n)
{
    read_env();
    atomic_store(&fail_countdown, n > 0 ? n - 1 : -1);
}

/* The same for kernel calls and copies. */
EMBER_API void em__test_fail_kernel_after(long n);
EMBER_API void em__test_fail_kernel_after(long n)
{
    read_env();
    atomic_store(&kernel_countdown, n > 0 ? n - 1 : -1);
}

bool em__fail_injected(void)
{
    return countdown(&fail_countdown);
}

em_status em__kernel_fault(em_context *ctx, size_t kernel, const char *what)
{
    em_status fg = em__fork_guard(ctx);   /* every device call passes here */
    if (fg != EM_OK)
        return fg;
    if (!countdown(&kernel_countdown))
        return EM_OK;
    return em__error(ctx, EM_ERR_BACKEND, "%s on backend %s: injected device fault "
                     "(EMBER_FAIL_KERNEL)", what ? what : em__kernel_name(kernel),
                     ctx->backend_name);
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
