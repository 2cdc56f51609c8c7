/* core/data/batches.c — em_batches: mini-batches over tensors sharing their first dimension,
 * in an order drawn on the host from (seed, epoch), so every backend sees the same batches. */
#include "internal.h"
#include "dist/dist_impl.h"   /* em__batches_shard */

#include <stdlib.h>
#include <ember/data.h>
#include <ember/index.h>

struct em_batches {
    em_context *ctx;
    int n;
    em_tensor **tensors;    /* our handles */
    int64_t samples, batch_size, next;
    bool shuffle, drop_last;
    uint64_t seed;
    int64_t *order;
    int rank, world;        /* a distributed sampler's slice of each batch (1 rank: all) */
};

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, bound) without modulo bias. */
static uint64_t below(uint64_t *s, uint64_t bound)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t r;
    do
        r = splitmix64(s);
    while (r >= limit);
    return r % bound;
}

EMBER_API em_status em_batches_epoch(em_batches *b, int64_t epoch)
{
    if (!b)
        return EM_ERR_INVALID;
    for (int64_t i = 0; i < b->samples; i++)
        b->order[i] = i;
    if (b->shuffle) {   /* Fisher-Yates from a stream keyed by (seed, epoch) */
        uint64_t s = b->seed ^ splitmix64(&(uint64_t){(uint64_t)epoch * 0x2545f4914f6cdd1dULL});
        for (int64_t i = b->samples - 1; i > 0; i--) {
            int64_t j = (int64_t)below(&s, (uint64_t)i + 1);
            int64_t t = b->order[i];
            b->order[i] = b->order[j];
            b->order[j] = t;
        }
    }
    b->next = 0;
    return EM_OK;
}

EMBER_API void em_batches_free(em_batches *b)
{
    if (!b)
        return;
    for (int i = 0; i < b->n; i++)
        em__handle_release(b->tensors[i]);
    free(b->tensors);
    free(b->order);
    free(b);
}

EMBER_API em_batches *em_batches_create(em_tensor *const *tensors, int n, int64_t batch_size,
                                        bool shuffle, uint64_t seed, bool drop_last)
{
    if (n < 1 || !tensors) {
        em__error_global(EM_ERR_INVALID, "em_batches_create: no tensors given");
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (!em__obj(tensors[i]))
            return NULL;   /* NULL in, NULL out; a stale handle is recorded */
    em_context *ctx = em_tensor_context(tensors[0]);
    if (batch_size < 1) {
        em__error(ctx, EM_ERR_INVALID,
                  "batch_size should be a positive integer value, but got batch_size=%lld",
                  (long long)batch_size);
        return NULL;
    }
    int64_t samples = -1;
    for (int i = 0; i < n; i++) {
        if (em_tensor_context(tensors[i]) != ctx) {
            em__error(ctx, EM_ERR_DEVICE, "em_batches_create: tensor %d is of another context", i);
            return NULL;
        }
        int64_t s = em_tensor_ndim(tensors[i]) >= 1 ? em_tensor_size(tensors[i], 0) : -1;
        if (s < 0 || (samples >= 0 && s != samples)) {
            em__error(ctx, EM_ERR_SHAPE,
                      "Size mismatch between tensors: tensor %d has %lld samples, tensor 0 %lld",
                      i, (long long)s, (long long)(i ? samples : s));
            return NULL;
        }
        samples = s;
    }
    em_batches *b = calloc(1, sizeof *b);
    if (b) {
        b->tensors = calloc((size_t)n, sizeof *b->tensors);
        b->order = malloc(sizeof *b->order * (size_t)(samples ? samples : 1));
    }
    if (!b || !b->tensors || !b->order) {
        if (b) {
            free(b->tensors);
            free(b->order);
        }
        free(b);
        em__error(ctx, EM_ERR_OOM, "out of memory creating a batch iterator");
        return NULL;
    }
    b->ctx = ctx;
    b->samples = samples;
    b->batch_size = batch_size;
    b->shuffle = shuffle;
    b->drop_last = drop_last;
    b->seed = seed;
    b->world = 1;
    for (int i = 0; i < n; i++) {
        b->tensors[i] = em__hold(em__tensor_ref(em__obj_quiet(tensors[i])));
        b->n = i + 1;
        if (!b->tensors[i]) {
            em_batches_free(b);
            return NULL;
        }
    }
    em_batches_epoch(b, 0);
    return b;
}

EMBER_API int64_t em_batches_count(const em_batches *b)
{
    if (!b)
        return -1;
    return b->drop_last ? b->samples / b->batch_size
                        : (b->samples + b->batch_size - 1) / b->batch_size;
}

EMBER_API bool em_batches_next(em_batches *b, em_tensor **out)
{
    if (!b)
        return false;
    if (!out) {
        em__error(b->ctx, EM_ERR_INVALID, "em_batches_next: out is NULL");
        return false;
    }
    int64_t len = b->samples - b->next;
    if (len > b->batch_size)
        len = b->batch_size;
    if (len <= 0 || (b->drop_last && len < b->batch_size))
        return false;
    /* a distributed sampler's rank r: the r-th of `world` contiguous slices of the global
     * batch, sizes differing by at most one (possibly empty, so every rank steps alike) */
    int64_t base = len / b->world, extra = len % b->world;
    int64_t start = b->rank * base + (b->rank < extra ? b->rank : extra);
    int64_t global_len = len;
    len = base + (b->rank < extra ? 1 : 0);
    em_tensor *idx = em_tensor_from_data(b->ctx, EM_I64, 1, (const int64_t[]){len},
                                         b->order + b->next + start);
    em_tensor *got[64];
    em_tensor **res = b->n <= 64 ? got : malloc(sizeof *res * (size_t)b->n);
    bool ok = idx && res;
    for (int i = 0; i < b->n; i++)
        if (res)
            res[i] = ok ? em_index_select(b->tensors[i], 0, idx) : NULL;
    for (int i = 0; res && i < b->n; i++)
        ok = ok && res[i];
    em_tensor_free(idx);
    if (!ok) {
        if (!res)
            em__error(b->ctx, EM_ERR_OOM, "out of memory cutting a batch");
        for (int i = 0; res && i < b->n; i++)
            em_tensor_free(res[i]);
        if (res != got)
            free(res);
        return false;
    }
    for (int i = 0; i < b->n; i++)
        out[i] = res[i];
    if (res != got)
        free(res);
    b->next += global_len;
    return true;
}

void em__batches_shard(em_batches *b, int rank, int world)
{
    b->rank = rank;
    b->world = world;
}
