/* core/dist/ddp.c — data-parallel training (<ember/dist.h>): rank 0's parameters broadcast at
 * the start, gradients packed into buckets after backward (one collective per bucket, not
 * per tensor; the local sample count rides in the last bucket so a global mean needs no
 * extra collective), and the distributed sampler's constructor. */
#include "config.h"
#include "dist_impl.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct bucket {
    em_dtype dtype;
    int first, n;              /* parameters [first, first + n) */
    int64_t numel;             /* their elements (the count slot excluded) */
    em_tensor *flat;           /* 1-D, numel + 1 elements: the last holds the sample count */
} bucket;

struct em_ddp {
    em_dist *d;
    em_context *ctx;
    int n;
    em_tensor **params;        /* our handles */
    bucket *buckets;
    int n_buckets;
    uint64_t layout;           /* hash of dtypes and shapes, compared across ranks */
    em_ddp_stats stats;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h * 0xbf58476d1ce4e5b9ULL;
}

static void describe_layout(const int64_t *sig, char *buf, size_t len)
{
    static const char *const mode[] = {"create", "sync_sum", "sync_mean"};
    em__snprintf(buf, len, "em_ddp %s with %lld parameters (layout hash %016llx)",
                 sig[3] >= 0 && sig[3] <= 2 ? mode[sig[3]] : "?", (long long)sig[1],
                 (unsigned long long)sig[2]);
}

EMBER_API void em_ddp_free(em_ddp *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n; i++)
        em__handle_release(p->params[i]);
    for (int b = 0; b < p->n_buckets; b++)
        em__handle_release(p->buckets[b].flat);
    free(p->params);
    free(p->buckets);
    free(p);
}

EMBER_API em_ddp *em_ddp_create(em_dist *d, em_tensor *const *params, int n,
                                const em_ddp_options *opt)
{
    if (!d || !params || n < 1) {
        em__error_global(EM_ERR_INVALID, "em_ddp_create: %s", !d ? "the process group is NULL"
                         : "no parameters given");
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (!em__obj(params[i]))
            return NULL;
    em_context *ctx = em_tensor_context(params[0]);
    size_t cap = 25u << 20;
    if (opt && (!opt->struct_size ||   /* 0: the struct of this header */
                opt->struct_size >= offsetof(em_ddp_options, bucket_bytes) + sizeof(size_t)) &&
        opt->bucket_bytes)
        cap = opt->bucket_bytes;
    em_ddp *p = em__calloc(1, sizeof *p);
    if (p)
        p->params = em__calloc((size_t)n, sizeof *p->params);
    if (p)
        p->buckets = em__calloc((size_t)n, sizeof *p->buckets);
    if (!p || !p->params || !p->buckets) {
        if (p) {
            free(p->params);
            free(p->buckets);
        }
        free(p);
        em__error(ctx, EM_ERR_OOM, "em_ddp_create: out of memory");
        return NULL;
    }
    p->d = d;
    p->ctx = ctx;
    p->stats.struct_size = sizeof p->stats;
    uint64_t h = 0;
    for (int i = 0; i < n; i++) {
        em__tensor *t = em__obj(params[i]);
        if (t->ctx != ctx) {
            em__error(ctx, EM_ERR_DEVICE, "em_ddp_create: parameter %d is of another context", i);
            em_ddp_free(p);
            return NULL;
        }
        if (!em_dtype_is_floating(t->dtype)) {
            em__error(ctx, EM_ERR_DTYPE, "em_ddp_create: parameter %d is %s; gradients need a "
                      "floating-point dtype", i, em_dtype_name(t->dtype));
            em_ddp_free(p);
            return NULL;
        }
        p->params[i] = em__hold(em__tensor_ref(t));
        p->n = i + 1;
        if (!p->params[i]) {
            em_ddp_free(p);
            return NULL;
        }
        h = mix(h, (uint64_t)t->dtype);
        h = mix(h, (uint64_t)t->ndim);
        for (int k = 0; k < t->ndim; k++)
            h = mix(h, (uint64_t)t->shape[k]);
        /* buckets: consecutive parameters of one dtype, up to cap bytes each */
        int64_t numel = em__numel(t->ndim, t->shape);
        bucket *b = p->n_buckets ? &p->buckets[p->n_buckets - 1] : NULL;
        if (!b || b->dtype != t->dtype ||
            (size_t)(b->numel + numel) * em_dtype_size(t->dtype) > cap) {
            b = &p->buckets[p->n_buckets++];
            b->dtype = t->dtype;
            b->first = i;
        }
        b->n++;
        b->numel += numel;
    }
    p->layout = h;
    for (int b = 0; b < p->n_buckets; b++) {
        em__tensor *f = em__tensor_new(ctx, p->buckets[b].dtype, 1,
                                       (int64_t[]){p->buckets[b].numel + 1});
        p->buckets[b].flat = f ? em__hold(f) : NULL;
        if (!p->buckets[b].flat) {
            em_ddp_free(p);
            return NULL;
        }
        p->stats.bucket_bytes += (uint64_t)(p->buckets[b].numel + 1) *
                                 em_dtype_size(p->buckets[b].dtype);
    }
    p->stats.buckets = p->n_buckets;
    int64_t sig[4] = {EM__C_DDP, n, (int64_t)p->layout, 0};
    pthread_mutex_lock(&d->lock);
    em_status st = em__dist_check(d, ctx, "em_ddp_create", "the parameters", sig, 4, describe_layout);
    /* every rank starts from rank 0's parameters */
    for (int i = 0; i < n && st == EM_OK; i++) {
        char what[64];
        em__snprintf(what, sizeof what, "parameter %d", i);
        st = em__dist_inplace(d, "em_ddp_create", EM__C_BROADCAST, em__obj(p->params[i]), 0, 0,
                              what);
    }
    pthread_mutex_unlock(&d->lock);
    if (st != EM_OK) {
        em_ddp_free(p);
        return NULL;
    }
    return p;
}

/* Packs every gradient (zeros where none) and the count into the buckets, reduces each with
 * one collective, and unpacks them scaled. mean: divide by the global count. */
static em_status sync(em_ddp *p, bool mean, int64_t count, int64_t *global_count)
{
    static const char name[] = "em_ddp_sync";
    em_context *ctx = p->ctx;
    double t0 = now();
    if (mean && count < 0)
        return em__error(ctx, EM_ERR_INVALID, "em_ddp_sync_mean: count %lld is negative",
                         (long long)count);
    /* the count rides in an f32 slot: exact below 2^24 */
    if (mean && (double)count * p->d->world >= 16777216.0)
        return em__error(ctx, EM_ERR_INVALID, "em_ddp_sync_mean: count %lld times %d ranks is "
                         "beyond the exact range of the bucket's count slot (2^24)",
                         (long long)count, p->d->world);
    for (int i = 0; i < p->n; i++)
        if (!em__obj(p->params[i]))
            return em_context_status(ctx) ? em_context_status(ctx) : EM_ERR_FREED;
    int64_t sig[4] = {EM__C_DDP, p->n, (int64_t)p->layout, mean ? 2 : 1};
    em_status st = EM_OK;
    double total = 0;
    em_scope_begin(ctx);
    em_no_grad_begin(ctx);
    pthread_mutex_lock(&p->d->lock);
    st = em__dist_check(p->d, ctx, name, "the gradient buckets", sig, 4, describe_layout);
    for (int b = 0; b < p->n_buckets && st == EM_OK; b++) {
        bucket *bk = &p->buckets[b];
        int64_t off = 0;
        for (int i = bk->first; i < bk->first + bk->n && st == EM_OK; i++) {
            em_tensor *w = p->params[i];
            int64_t k = em_tensor_numel(w);
            em_tensor *dst = em_view(em_narrow(bk->flat, 0, off, k), em_tensor_ndim(w),
                                     em_tensor_shape(w));
            em_tensor *g = em_grad(w);
            st = g ? em_copy_(dst, g) : em_fill_(dst, 0.0);
            off += k;
        }
        if (st == EM_OK)
            st = em_fill_(em_narrow(bk->flat, 0, bk->numel, 1),
                          b == p->n_buckets - 1 ? (double)count : 0.0);
        if (st == EM_OK) {
            char what[160];
            em__snprintf(what, sizeof what, "gradient bucket %d of %d (%s, %lld bytes)", b,
                         p->n_buckets, em_dtype_name(bk->dtype),
                         (long long)((bk->numel + 1) * (int64_t)em_dtype_size(bk->dtype)));
            st = em__dist_inplace(p->d, name, EM__C_ALL_REDUCE, em__obj(bk->flat), EM_COMM_SUM,
                                  0, what);
        }
    }
    pthread_mutex_unlock(&p->d->lock);
    if (st == EM_OK && mean) {
        em_tensor *last = p->buckets[p->n_buckets - 1].flat;
        st = em_item_get(em_narrow(last, 0, p->buckets[p->n_buckets - 1].numel, 1), &total);
        if (st == EM_OK && total < 0.5)
            st = em__error(ctx, EM_ERR_INVALID, "em_ddp_sync_mean: no rank had a sample (the "
                           "global count is 0)");
    }
    /* unpack, all or nothing: existing grads are staged in a transaction, missing ones are
     * made as fresh tensors; nothing is visible until every value exists */
    em__tensor **fresh = st == EM_OK ? em__calloc((size_t)p->n, sizeof *fresh) : NULL;
    if (st == EM_OK && !fresh)
        st = em__error(ctx, EM_ERR_OOM, "%s: out of memory", name);
    em__txn x;
    em__txn_begin(&x, ctx);
    for (int b = 0; b < p->n_buckets && st == EM_OK; b++) {
        bucket *bk = &p->buckets[b];
        if (mean)
            st = em_div_scalar_(bk->flat, total);   /* the bucket is ours: no one sees it */
        int64_t off = 0;
        for (int i = bk->first; i < bk->first + bk->n && st == EM_OK; i++) {
            em_tensor *w = p->params[i];
            int64_t k = em_tensor_numel(w);
            em_tensor *src = em_view(em_narrow(bk->flat, 0, off, k), em_tensor_ndim(w),
                                     em_tensor_shape(w));
            em__tensor *wt = em__obj(w), *s = src ? em__obj(src) : NULL;
            em__tensor *v = s ? em__cast(s, wt->dtype) : NULL;   /* a fresh copy */
            if (!v)
                st = em__failed(ctx) ? em__failed(ctx) : EM_ERR_OOM;
            else if (wt->grad) {
                st = em__txn_write(&x, wt->grad, v);   /* its buffer becomes the shadow */
                em__tensor_unref(v);
            } else
                fresh[i] = v;
            off += k;
        }
    }
    if (st == EM_OK) {
        em__txn_commit(&x);
        for (int i = 0; i < p->n; i++)
            if (fresh[i])
                em__obj(p->params[i])->grad = fresh[i];
    } else {
        em__txn_abort(&x);
        for (int i = 0; fresh && i < p->n; i++)
            if (fresh[i])
                em__tensor_unref(fresh[i]);
    }
    free(fresh);
    em_no_grad_end(ctx);
    em_scope_end(ctx);
    if (st == EM_OK && global_count)
        *global_count = (int64_t)(total + 0.5);
    p->stats.syncs++;
    p->stats.seconds += now() - t0;
    return st;
}

EMBER_API em_status em_ddp_sync_mean(em_ddp *p, int64_t count, int64_t *global_count)
{
    if (!p)
        return em__error_global(EM_ERR_INVALID, "em_ddp_sync_mean: the helper is NULL");
    return sync(p, true, count, global_count);
}

EMBER_API em_status em_ddp_sync_sum(em_ddp *p)
{
    if (!p)
        return em__error_global(EM_ERR_INVALID, "em_ddp_sync_sum: the helper is NULL");
    return sync(p, false, 0, NULL);
}

EMBER_API em_status em_ddp_get_stats(const em_ddp *p, em_ddp_stats *out)
{
    if (!p || !out)
        return em__error_global(EM_ERR_INVALID, "em_ddp_get_stats: %s is NULL",
                                p ? "out" : "the helper");
    size_t n = out->struct_size && out->struct_size < sizeof *out ? out->struct_size : sizeof *out;
    em_ddp_stats s = p->stats;
    s.struct_size = n;
    memcpy(out, &s, n);
    return EM_OK;
}

EMBER_API em_batches *em_dist_batches_create(em_dist *d, em_tensor *const *tensors, int n,
                                             int64_t global_batch, bool shuffle, uint64_t seed,
                                             bool drop_last)
{
    if (!d) {
        em__error_global(EM_ERR_INVALID, "em_dist_batches_create: the process group is NULL");
        return NULL;
    }
    em_batches *b = em_batches_create(tensors, n, global_batch, shuffle, seed, drop_last);
    if (b)
        em__batches_shard(b, d->rank, d->world);
    return b;
}
