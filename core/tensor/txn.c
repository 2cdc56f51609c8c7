/* core/tensor/txn.c — all-or-nothing writes to several tensors, for updates that must not stop
 * half-way (an optimizer step over many parameters). Writes are staged into shadow buffers
 * while anything can still fail; commit then swaps each shadow buffer into its storage, which
 * cannot fail, so every tensor changes or none does. It is a database's shadow paging,
 * applied to device buffers:
 *
 *   em__txn x;  em__txn_begin(&x, ctx);
 *   em__txn_write(&x, param, new_value);     (for each; may fail)
 *   ok ? em__txn_commit(&x) : em__txn_abort(&x);
 *
 * Values are computed from the old contents (nothing is visible before commit). Every view
 * of a written storage sees the new contents after commit, as with an in-place write, and
 * the storage's version is bumped once. */
#include "config.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

void em__txn_begin(em__txn *x, em_context *ctx)
{
    memset(x, 0, sizeof *x);
    x->ctx = ctx;
}

/* The shadow of s: a flat tensor over a fresh buffer of s's size. */
static em__txn_entry *entry_for(em__txn *x, em_storage *s)
{
    for (int i = 0; i < x->n; i++)
        if (x->e[i].storage == s)
            return &x->e[i];
    return NULL;
}

static em__txn_entry *entry_add(em__txn *x, em_storage *s, em__tensor *shadow)
{
    if (x->n == x->cap) {
        int cap = x->cap ? x->cap * 2 : 16;
        em__txn_entry *e = em__realloc(x->e, sizeof *e * (size_t)cap);
        if (!e) {
            em__error(x->ctx, EM_ERR_OOM, "out of memory staging an update");
            return NULL;
        }
        x->e = e;
        x->cap = cap;
    }
    x->e[x->n] = (em__txn_entry){.storage = s, .shadow = shadow};
    return &x->e[x->n++];
}

/* dst covers its whole storage, row-major from offset 0 */
static bool covers_storage(const em__tensor *t)
{
    return t->offset == 0 && em__is_contiguous(t) &&
           (size_t)em__numel(t->ndim, t->shape) * em_dtype_size(t->dtype) == t->storage->nbytes;
}

em_status em__txn_write(em__txn *x, em__tensor *dst, em__tensor *value)
{
    em_context *ctx = x->ctx;
    em_storage *s = dst->storage;
    if (s->nbytes == 0)
        return EM_OK;
    em_status wst = em__storage_ready(ctx, dst, true);   /* a copy into it still in flight */
    if (wst != EM_OK)
        return wst;
    em__txn_entry *e = entry_for(x, s);
    if (!e) {
        /* A fresh, unshared value laid out exactly like dst is its own shadow: its buffer is
         * swapped in as it is, with no copy (the optimizer's common case). */
        if (covers_storage(dst) && value->dtype == dst->dtype && covers_storage(value) &&
            value->storage->refcount == 1 && value->storage->nbytes == s->nbytes &&
            value->ndim == dst->ndim &&
            !memcmp(value->shape, dst->shape, sizeof(int64_t) * (size_t)dst->ndim))
            return entry_add(x, s, em__tensor_ref(value)) ? EM_OK : em__failed(ctx);
        int64_t n = (int64_t)(s->nbytes / em_dtype_size(dst->dtype));
        em__tensor *sh = em__tensor_new(ctx, dst->dtype, 1, &n);
        if (!sh)
            return em__failed(ctx);
        if (!covers_storage(dst)) {   /* the parts dst does not cover keep their contents */
            em__tensor *old = em__tensor_alias(dst, 1, &n, (const int64_t[]){1}, 0);
            em__tensor *in[1] = {old};
            em_status st = old ? em__launch(ctx, EM_KERNEL_OFFSET(copy), sh, in, 1, NULL, NULL)
                               : em__failed(ctx);
            em__tensor_unref(old);
            if (st != EM_OK) {
                em__tensor_unref(sh);
                return st;
            }
        }
        if (!(e = entry_add(x, s, sh))) {
            em__tensor_unref(sh);
            return em__failed(ctx);
        }
    }
    /* value into the shadow, at dst's place in it */
    em__tensor *sh = e->shadow;
    if (sh == value)
        return EM_OK;
    em__tensor *at = em__tensor_alias(sh, dst->ndim, dst->shape, dst->strides, dst->offset);
    if (!at)
        return em__failed(ctx);
    em__tensor *in[1] = {value};
    em_status st = em__launch(ctx, EM_KERNEL_OFFSET(copy), at, in, 1, NULL, NULL);
    em__tensor_unref(at);
    return st;
}

void em__txn_commit(em__txn *x)
{
    for (int i = 0; i < x->n; i++) {
        em_storage *s = x->e[i].storage, *t = x->e[i].shadow->storage;
        void *buf = s->buf;
        s->buf = t->buf;
        t->buf = buf;   /* the old buffer goes back to the cache with the shadow */
        em__storage_bump(s);
        em__tensor_unref(x->e[i].shadow);
    }
    free(x->e);
    memset(x, 0, sizeof *x);
}

void em__txn_abort(em__txn *x)
{
    for (int i = 0; i < x->n; i++)
        em__tensor_unref(x->e[i].shadow);
    free(x->e);
    memset(x, 0, sizeof *x);
}
