/* core/tensor/handle.c — tensor handles. A user never holds a pointer to a tensor object: an
 * em_tensor * is an id, slot index + generation, packed into a pointer-sized value and never
 * dereferenced (the same idea as Vulkan's non-dispatchable handles or a slot map). Every
 * public entry point turns it back into the object through the slot table; a handle whose
 * slot has moved on to a newer generation — freed, released by em_scope_end, or of a freed
 * context — is detected there and reported as EM_ERR_FREED, instead of acting on whatever
 * tensor now lives in the reused memory.
 *
 * Each handle is its own slot: the object behind it is reference counted, and several
 * handles may name one object (em_contiguous of a contiguous tensor, em_grad twice), so
 * freeing one handle never invalidates another.
 *
 * The slot table is process-wide, so a handle alone finds its slot without knowing its
 * context, and lookups take no lock. Contexts take slots in batches (under a mutex) and keep
 * them on a private free list, so a training loop allocating handles touches no shared
 * state. When a context is freed its batches go back to the process, every live generation
 * bumped. A slot remembers which context owns it and since which generation, so a stale
 * handle's error lands in the context that issued it when that context is still alive. */
#include "config.h"
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if UINTPTR_MAX > 0xffffffffu
#define H_INDEX_BITS 24u   /* 16.7 million live handles; 40 bits of generation */
#else
#define H_INDEX_BITS 16u   /* 32-bit targets: 65536 live handles; 16 bits of generation */
#endif
#define H_GEN_BITS (sizeof(uintptr_t) * 8u - H_INDEX_BITS)
#define H_INDEX_MASK (((uintptr_t)1 << H_INDEX_BITS) - 1u)
#define H_GEN_MASK (((uintptr_t)1 << H_GEN_BITS) - 1u)
#define H_CHUNK_BITS 10u
#define H_CHUNK ((uintptr_t)1 << H_CHUNK_BITS)
#define H_NCHUNKS ((size_t)1 << (H_INDEX_BITS - H_CHUNK_BITS))
#define H_BATCH 64u        /* slots a context takes at a time; divides H_CHUNK */

typedef struct h_slot {
    /* Odd while a handle of this generation is live, even while the slot is free. Written
     * only by the owning context's thread; read by any thread checking a handle. */
    _Atomic uintptr_t gen;
    em__tensor *obj;
    _Atomic(em_context *) owner;   /* the context the slot belongs to, NULL in the pool */
    _Atomic uintptr_t since;       /* first generation handed out under that owner */
    uint32_t next;                 /* owner's free list: index + 1, 0 ends it */
} h_slot;

static _Atomic(h_slot *) chunks[H_NCHUNKS];

/* Shared state, under `lock`: fresh indices are handed out from `next_fresh`; batches given
 * back by freed contexts wait on a stack whose capacity always covers every batch made, so
 * returning one cannot fail. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uintptr_t next_fresh;
static uint32_t *pool;
static size_t n_pool, cap_pool, n_made;

/* A fork while another thread holds the lock would leave the child's copy locked. */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void h_prepare(void) { pthread_mutex_lock(&lock); }
static void h_release(void) { pthread_mutex_unlock(&lock); }
static void h_atfork(void) { pthread_atfork(h_prepare, h_release, h_release); }

static inline h_slot *slot_at(uintptr_t idx)
{
    h_slot *c = atomic_load_explicit(&chunks[idx >> H_CHUNK_BITS], memory_order_acquire);
    return c ? &c[idx & (H_CHUNK - 1u)] : NULL;
}

static inline em_tensor *encode(uintptr_t idx, uintptr_t gen)
{
    return (em_tensor *)(((gen & H_GEN_MASK) << H_INDEX_BITS) | idx);
}

/* ------------------------------------------------------------------ batches */

/* One more batch of slots for ctx, onto its free list. */
static em_status take_batch(em_context *ctx)
{
    pthread_once(&atfork_once, h_atfork);
    if (ctx->n_hbatches == ctx->cap_hbatches) {
        int cap = ctx->cap_hbatches ? ctx->cap_hbatches * 2 : 16;
        uint32_t *b = em__realloc(ctx->hbatches, sizeof *b * (size_t)cap);
        if (!b)
            return em__error(ctx, EM_ERR_OOM, "out of memory allocating tensor handles");
        ctx->hbatches = b;
        ctx->cap_hbatches = cap;
    }
    uintptr_t start;
    pthread_mutex_lock(&lock);
    if (n_pool > 0) {
        start = pool[--n_pool];
    } else {
        if (next_fresh + H_BATCH > H_INDEX_MASK + 1u) {
            pthread_mutex_unlock(&lock);
            return em__error(ctx, EM_ERR_OOM, "too many live tensor handles (at most %lu in a "
                             "process): free tensors, or end scopes, that are no longer used",
                             (unsigned long)(H_INDEX_MASK + 1u));
        }
        start = next_fresh;
        size_t ci = (size_t)(start >> H_CHUNK_BITS);
        if (!atomic_load_explicit(&chunks[ci], memory_order_relaxed)) {
            h_slot *c = em__calloc(H_CHUNK, sizeof *c);
            if (!c) {
                pthread_mutex_unlock(&lock);
                return em__error(ctx, EM_ERR_OOM, "out of memory allocating tensor handles");
            }
            atomic_store_explicit(&chunks[ci], c, memory_order_release);
        }
        if (n_made == cap_pool) {
            size_t cap = cap_pool ? cap_pool * 2 : 64;
            uint32_t *p = em__realloc(pool, sizeof *p * cap);
            if (!p) {
                pthread_mutex_unlock(&lock);
                return em__error(ctx, EM_ERR_OOM, "out of memory allocating tensor handles");
            }
            pool = p;
            cap_pool = cap;
        }
        next_fresh += H_BATCH;
        n_made++;
    }
    pthread_mutex_unlock(&lock);
    /* Link the batch's slots, lowest index first off the list. */
    for (uintptr_t i = H_BATCH; i-- > 0;) {
        h_slot *s = slot_at(start + i);
        if (!s)
            continue;   /* cannot happen: the chunk was made above */
        uintptr_t g = atomic_load_explicit(&s->gen, memory_order_relaxed);
        atomic_store_explicit(&s->since, g + 1u, memory_order_relaxed);
        atomic_store_explicit(&s->owner, ctx, memory_order_release);
        s->obj = NULL;
        s->next = ctx->hfree;
        ctx->hfree = (uint32_t)(start + i) + 1u;
    }
    ctx->hbatches[ctx->n_hbatches++] = (uint32_t)start;
    return EM_OK;
}

void em__handles_context_free(em_context *ctx)
{
    for (int b = 0; b < ctx->n_hbatches; b++) {
        uintptr_t start = ctx->hbatches[b];
        for (uintptr_t i = 0; i < H_BATCH; i++) {
            h_slot *s = slot_at(start + i);
            if (!s)
                continue;   /* cannot happen: a batch's chunk exists before the batch */
            uintptr_t g = atomic_load_explicit(&s->gen, memory_order_relaxed);
            if (g & 1u)
                atomic_store_explicit(&s->gen, g + 1u, memory_order_release);
            s->obj = NULL;
            atomic_store_explicit(&s->owner, NULL, memory_order_release);
        }
    }
    if (ctx->n_hbatches > 0) {
        pthread_mutex_lock(&lock);
        for (int b = 0; b < ctx->n_hbatches; b++)
            pool[n_pool++] = ctx->hbatches[b];
        pthread_mutex_unlock(&lock);
    }
    free(ctx->hbatches);
    ctx->hbatches = NULL;
    ctx->n_hbatches = ctx->cap_hbatches = 0;
    ctx->hfree = 0;
}

/* ------------------------------------------------------------------ handles */

static em_tensor *new_handle(em__tensor *t)
{
    em_context *ctx = t->ctx;
    if (!ctx->hfree && take_batch(ctx) != EM_OK)
        return NULL;
    uintptr_t idx = ctx->hfree - 1u;
    h_slot *s = slot_at(idx);
    ctx->hfree = s->next;
    uintptr_t g = atomic_load_explicit(&s->gen, memory_order_relaxed) + 1u;
    s->obj = t;
    atomic_store_explicit(&s->gen, g, memory_order_release);
    return encode(idx, g);
}

em_tensor *em__hold(em__tensor *t)
{
    if (!t)
        return NULL;
    em_tensor *h = new_handle(t);
    if (!h)
        em__tensor_unref(t);
    return h;
}

em_tensor *em__give(em__tensor *t)
{
    if (!t)
        return NULL;
    em_context *ctx = t->ctx;
    em_tensor *h = new_handle(t);
    if (!h) {
        em__tensor_unref(t);
        return NULL;
    }
    if (em__scope_add(ctx, h) != EM_OK) {
        em__handle_release(h);
        return NULL;
    }
    return h;
}

/* The slot of a live handle, or NULL. */
static inline h_slot *live_slot(const em_tensor *h)
{
    uintptr_t v = (uintptr_t)h;
    h_slot *s = slot_at(v & H_INDEX_MASK);
    if (!s)
        return NULL;
    uintptr_t g = v >> H_INDEX_BITS;
    uintptr_t cur = atomic_load_explicit(&s->gen, memory_order_acquire) & H_GEN_MASK;
    return (g & 1u) && cur == g ? s : NULL;
}

em__tensor *em__obj_quiet(const em_tensor *h)
{
    if (!h)
        return NULL;
    h_slot *s = live_slot(h);
    return s ? s->obj : NULL;
}

em__tensor *em__obj(const em_tensor *h)
{
    if (!h)
        return NULL;
    h_slot *s = live_slot(h);
    if (s)
        return s->obj;
    /* Stale (or not a handle at all). Report it where the user will look: in the context
     * that issued it, if the slot still belongs to that context. */
    uintptr_t v = (uintptr_t)h;
    h_slot *t = slot_at(v & H_INDEX_MASK);
    uintptr_t g = v >> H_INDEX_BITS;
    if (t) {
        em_context *owner = atomic_load_explicit(&t->owner, memory_order_acquire);
        uintptr_t since = atomic_load_explicit(&t->since, memory_order_relaxed) & H_GEN_MASK;
        uintptr_t cur = atomic_load_explicit(&t->gen, memory_order_relaxed) & H_GEN_MASK;
        if (owner && (g & 1u) && g >= since && g < cur) {
            em__error(owner, EM_ERR_FREED, "a tensor was used after em_tensor_free or "
                      "em_scope_end released it");
            return NULL;
        }
        if ((g & 1u) && g < cur) {
            em__error_global(EM_ERR_FREED, "a tensor was used after its context was freed "
                             "(em_context_free releases every tensor of the context)");
            return NULL;
        }
    }
    em__error_global(EM_ERR_FREED, "not a live ember tensor (freed, or not a tensor)");
    return NULL;
}

em_tensor *em__dup(em_tensor *h)
{
    em__tensor *t = em__obj(h);
    return t ? em__give(em__tensor_ref(t)) : NULL;
}

void em__handle_release(em_tensor *h)
{
    h_slot *s = h ? live_slot(h) : NULL;
    if (!s)
        return;
    em__tensor *t = s->obj;
    em_context *ctx = t->ctx;
    uintptr_t idx = (uintptr_t)h & H_INDEX_MASK;
    atomic_store_explicit(&s->gen, atomic_load_explicit(&s->gen, memory_order_relaxed) + 1u,
                          memory_order_release);
    s->obj = NULL;
    s->next = ctx->hfree;
    ctx->hfree = (uint32_t)idx + 1u;
    em__tensor_unref(t);
}
