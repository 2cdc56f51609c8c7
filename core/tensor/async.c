/* core/tensor/async.c — pinned host memory and asynchronous copies, over the optional ABI 1.1 entries
 * of a backend. Without them every call here is synchronous and correct; with them the host
 * can queue a batch's upload and go on queueing work.
 *
 * With streams and events, copies go on one copy stream per context, ordered against the
 * device queue (where kernels run) with events:
 *   upload   the copy stream first waits for the device queue as it is now (kernels queued
 *            earlier may still use the storage); the storage then carries an event that the
 *            device queue waits for before the next kernel that touches it;
 *   download the copy stream waits for the device queue (the kernels that produce the data);
 *            the storage carries an event that a later kernel writing it, or the release of
 *            its buffer to the cache, waits for.
 * Waits are queued on the device (event_wait), the host does not block. Without streams the
 * copies go on the device queue itself, which orders them by construction.
 * em_synchronize waits for everything and drops the events. */
#include "config.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

struct em__pending {
    em_storage *s;
    void *event;                 /* recorded on the copy stream after the last copy of s */
    bool write;                  /* one of them wrote s */
    em__pending *prev, *next;    /* the context's list */
};

static void pending_unlink(em_context *ctx, em__pending *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        ctx->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->s->pending = NULL;
    ctx->ops->event_destroy(ctx->dev, p->event);
    free(p);
}

em_status em__storage_wait(em_context *ctx, em_storage *s, bool write)
{
    em__pending *p = s->pending;
    if (!p || (!write && !p->write))
        return EM_OK;   /* reads may run beside a download */
    em_status st = ctx->ops->event_wait(ctx->dev, NULL, p->event);
    if (st != EM_OK)
        return em__backend_failed(ctx, st, "event_wait");
    pending_unlink(ctx, p);
    return EM_OK;
}

void em__storage_release_pending(em_context *ctx, em_storage *s)
{
    /* the buffer goes back to the cache: whatever uses it next must wait for the copy */
    if (s->pending && em__storage_wait(ctx, s, true) != EM_OK) {
        ctx->ops->synchronize(ctx->dev);
        if (s->pending)
            pending_unlink(ctx, s->pending);
    }
}

/* Remember that s has a copy in flight on the copy stream, ending with `event`. */
static em_status pending_set(em_context *ctx, em_storage *s, void *event, bool write)
{
    em__pending *p = s->pending;
    if (p) {   /* the stream is in order: the newest event covers the older copies */
        ctx->ops->event_destroy(ctx->dev, p->event);
        p->event = event;
        p->write |= write;
        return EM_OK;
    }
    p = em__calloc(1, sizeof *p);
    if (!p) {
        ctx->ops->event_destroy(ctx->dev, event);
        return em__error(ctx, EM_ERR_OOM, "out of memory tracking an asynchronous copy");
    }
    p->s = s;
    p->event = event;
    p->write = write;
    p->next = ctx->pending;
    if (p->next)
        p->next->prev = p;
    ctx->pending = p;
    s->pending = p;
    return EM_OK;
}

/* A new event recorded on `stream` (NULL: the device queue). */
static em_status record(em_context *ctx, void *stream, void **event)
{
    em_status st = ctx->ops->event_create(ctx->dev, event);
    if (st != EM_OK)
        return em__backend_failed(ctx, st, "event_create");
    st = ctx->ops->event_record(ctx->dev, stream, *event);
    if (st != EM_OK) {
        ctx->ops->event_destroy(ctx->dev, *event);
        return em__backend_failed(ctx, st, "event_record");
    }
    return EM_OK;
}

/* The copy stream, made to wait for everything queued on the device so far. */
static em_status copy_stream_after_queue(em_context *ctx, void **stream)
{
    if (!ctx->copy_stream) {
        em_status st = ctx->ops->stream_create(ctx->dev, &ctx->copy_stream);
        if (st != EM_OK) {
            ctx->copy_stream = NULL;
            return em__backend_failed(ctx, st, "stream_create");
        }
    }
    void *ev;
    em_status st = record(ctx, NULL, &ev);
    if (st != EM_OK)
        return st;
    st = ctx->ops->event_wait(ctx->dev, ctx->copy_stream, ev);
    ctx->ops->event_destroy(ctx->dev, ev);
    if (st != EM_OK)
        return em__backend_failed(ctx, st, "event_wait");
    *stream = ctx->copy_stream;
    return EM_OK;
}

em_status em__copy_async(em_context *ctx, em_storage *s, size_t off, void *host, size_t bytes,
                         bool upload)
{
    em_status st;
    const char *what = upload ? "copy_h2d_async" : "copy_d2h_async";
    if (!(ctx->plugin->async & EM__ASYNC_STREAMS)) {
        /* on the device queue: ordered with every kernel by construction */
        st = upload ? ctx->ops->copy_h2d_async(ctx->dev, NULL, s->buf, off, host, bytes)
                    : ctx->ops->copy_d2h_async(ctx->dev, NULL, host, s->buf, off, bytes);
        return st == EM_OK ? EM_OK : em__backend_failed(ctx, st, what);
    }
    void *stream = NULL, *done = NULL;
    if ((st = copy_stream_after_queue(ctx, &stream)) != EM_OK)
        return st;
    st = upload ? ctx->ops->copy_h2d_async(ctx->dev, stream, s->buf, off, host, bytes)
                : ctx->ops->copy_d2h_async(ctx->dev, stream, host, s->buf, off, bytes);
    if (st != EM_OK)
        return em__backend_failed(ctx, st, what);
    if ((st = record(ctx, stream, &done)) != EM_OK) {
        /* the copy is queued but cannot be tracked: wait for it here */
        ctx->ops->synchronize(ctx->dev);
        return st;
    }
    st = pending_set(ctx, s, done, upload);
    if (st != EM_OK)
        ctx->ops->synchronize(ctx->dev);
    return st;
}

em_status em__async_synchronize(em_context *ctx)
{
    em_status st = ctx->ops->synchronize(ctx->dev);
    if (st != EM_OK)
        return em__backend_failed(ctx, st, "synchronize");
    while (ctx->pending)
        pending_unlink(ctx, ctx->pending);
    return EM_OK;
}

void em__async_free(em_context *ctx)
{
    if (ctx->pending || ctx->copy_stream)
        ctx->ops->synchronize(ctx->dev);
    while (ctx->pending)
        pending_unlink(ctx, ctx->pending);
    if (ctx->copy_stream)
        ctx->ops->stream_destroy(ctx->dev, ctx->copy_stream);
    ctx->copy_stream = NULL;
    for (int i = 0; i < ctx->n_pinned; i++) {
        if (ctx->plugin->async & EM__ASYNC_PINNED)
            ctx->ops->host_free(ctx->dev, ctx->pinned[i]);
        else
            free(ctx->pinned[i]);
    }
    free(ctx->pinned);
    ctx->pinned = NULL;
    ctx->n_pinned = ctx->cap_pinned = 0;
}

/* ------------------------------------------------------------------ public API */

EMBER_API void *em_pinned_alloc(em_context *ctx, size_t bytes)
{
    if (!ctx)
        return em__error_global(EM_ERR_INVALID, "em_pinned_alloc: NULL context"), NULL;
    if (bytes == 0)
        return em__error(ctx, EM_ERR_INVALID, "em_pinned_alloc: 0 bytes"), NULL;
    if (ctx->n_pinned == ctx->cap_pinned) {
        int cap = ctx->cap_pinned ? ctx->cap_pinned * 2 : 8;
        void **l = em__realloc(ctx->pinned, sizeof *l * (size_t)cap);
        if (!l)
            return em__error(ctx, EM_ERR_OOM, "em_pinned_alloc: out of memory"), NULL;
        ctx->pinned = l;
        ctx->cap_pinned = cap;
    }
    void *p = NULL;
    if (ctx->plugin->async & EM__ASYNC_PINNED) {
        em_status st = em__fail_injected() ? EM_ERR_OOM : ctx->ops->host_alloc(ctx->dev, bytes, &p);
        if (st != EM_OK || !p)
            return em__error(ctx, st == EM_OK ? EM_ERR_OOM : (unsigned)st > EM_ERR_INTERNAL
                             ? EM_ERR_BACKEND : st, "em_pinned_alloc: %zu bytes of "
                             "pinned memory on backend %s: %s", bytes, ctx->backend_name,
                             ctx->plugin->last_msg[0] ? ctx->plugin->last_msg
                                                      : em_status_name(st)), NULL;
    } else if (!(p = em__malloc(bytes))) {
        return em__error(ctx, EM_ERR_OOM, "em_pinned_alloc: out of memory (%zu bytes)", bytes), NULL;
    }
    ctx->pinned[ctx->n_pinned++] = p;
    return p;
}

EMBER_API void em_pinned_free(em_context *ctx, void *p)
{
    if (!ctx || !p)
        return;
    for (int i = ctx->n_pinned - 1; i >= 0; i--) {
        if (ctx->pinned[i] != p)
            continue;
        /* copies from or into it may still be in flight */
        if (ctx->pending || (ctx->plugin->async & EM__ASYNC_COPIES))
            em__async_synchronize(ctx);
        if (ctx->plugin->async & EM__ASYNC_PINNED)
            ctx->ops->host_free(ctx->dev, p);
        else
            free(p);
        ctx->pinned[i] = ctx->pinned[--ctx->n_pinned];
        return;
    }
    em__error(ctx, EM_ERR_INVALID, "em_pinned_free: %p was not allocated by em_pinned_alloc on "
              "this context (or was freed already)", p);
}

/* The checks em_tensor_from_host / to_host make. */
static em__tensor *transfer_target(em_tensor *h, const void *mem, size_t bytes, bool upload,
                                   em_status *st)
{
    const char *fn = upload ? "em_tensor_from_host_async" : "em_tensor_to_host_async";
    *st = EM_OK;
    if (!h) {
        *st = em__error_global(EM_ERR_INVALID, "%s: NULL tensor", fn);
        return NULL;
    }
    em__tensor *t = em__obj(h);
    if (!t) {
        *st = EM_ERR_FREED;
        return NULL;
    }
    size_t need = (size_t)em__numel(t->ndim, t->shape) * em_dtype_size(t->dtype);
    if (upload && !em__is_contiguous(t))
        *st = em__error(t->ctx, EM_ERR_INVALID, "%s: tensor is not contiguous", fn);
    else if (!mem)
        *st = em__error(t->ctx, EM_ERR_INVALID, "%s: %s is NULL", fn, upload ? "src" : "dst");
    else if (upload ? bytes != need : bytes < need)
        *st = em__error(t->ctx, EM_ERR_INVALID, "%s: %s has %zu bytes, the tensor %zu", fn,
                        upload ? "source" : "destination", mem ? bytes : 0, need);
    else if (upload && t->requires_grad && !t->grad_fn && em__grad_mode(t->ctx))
        *st = em__error(t->ctx, EM_ERR_AUTOGRAD, "a leaf Variable that requires grad is being "
                        "used in an in-place operation.");
    return *st == EM_OK ? t : NULL;
}

EMBER_API em_status em_tensor_from_host_async(em_tensor *h, const void *src, size_t bytes)
{
    em_status st;
    em__tensor *t = transfer_target(h, src, bytes, true, &st);
    if (!t)
        return st;
    em_context *ctx = t->ctx;
    if (!(ctx->plugin->async & EM__ASYNC_COPIES))
        return em_tensor_from_host(h, src, bytes);
    if (bytes == 0)
        return EM_OK;
    if ((st = em__kernel_fault(ctx, 0, "copy_h2d_async")) != EM_OK)
        return st;
    size_t es = em_dtype_size(t->dtype);
    st = em__copy_async(ctx, t->storage, (size_t)t->offset * es, (void *)(uintptr_t)src, bytes,
                        true);
    if (st == EM_OK)
        em__storage_bump(t->storage);
    return st;
}

EMBER_API em_status em_tensor_to_host_async(em_tensor *h, void *dst, size_t bytes)
{
    em_status st;
    em__tensor *t = transfer_target(h, dst, bytes, false, &st);
    if (!t)
        return st;
    em_context *ctx = t->ctx;
    if (!(ctx->plugin->async & EM__ASYNC_COPIES))
        return em_tensor_to_host(h, dst, bytes);
    size_t es = em_dtype_size(t->dtype);
    size_t need = (size_t)em__numel(t->ndim, t->shape) * es;
    if (need == 0)
        return EM_OK;
    em__tensor *src = t;
    if (!em__is_contiguous(t)) {   /* gathered on the device queue first */
        src = em__tensor_new(ctx, t->dtype, t->ndim, t->shape);
        em__tensor *in[1] = {t};
        if (!src || em__launch(ctx, EM_KERNEL_OFFSET(copy), src, in, 1, NULL, NULL) != EM_OK) {
            em__tensor_unref(src);
            return em__failed(ctx);
        }
    }
    st = em__kernel_fault(ctx, 0, "copy_d2h_async");
    if (st == EM_OK)
        st = em__storage_wait(ctx, src->storage, false);
    if (st == EM_OK)
        st = em__copy_async(ctx, src->storage, (size_t)src->offset * es, dst, need, false);
    if (src != t)
        em__tensor_unref(src);   /* its buffer's next user waits for the copy */
    return st;
}

EMBER_API void *em_tensor_data_ptr(em_tensor *h)
{
    em__tensor *t = em__obj(h);
    if (!t)
        return NULL;
    em_context *ctx = t->ctx;
    if (!(ctx->props.flags & EM_DEVICE_HOST_BUFFERS))
        return em__error(ctx, EM_ERR_UNSUPPORTED, "em_tensor_data_ptr: backend %s keeps tensors "
                         "in device memory (its device does not declare host buffers); copy "
                         "them with em_tensor_to_host", ctx->backend_name), NULL;
    if (em__async_synchronize(ctx) != EM_OK)
        return NULL;
    if (!t->storage->buf)
        return NULL;   /* no elements */
    return (char *)t->storage->buf + (size_t)t->offset * em_dtype_size(t->dtype);
}
