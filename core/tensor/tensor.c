/* core/tensor/tensor.c — tensor objects, storage, creation, inspection and host transfers.
 * Tensor objects come from a per-context pool (no malloc per op in a steady loop); users
 * hold handles to them (handle.c), never their addresses. */
#include "config.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------- object pool */

static em__tensor *tensor_obj(em_context *ctx)
{
    em__tensor *t = ctx->tensor_free;
    if (t)
        ctx->tensor_free = t->live_next;
    else if (!(t = em__malloc(sizeof *t))) {
        em__error(ctx, EM_ERR_OOM, "out of memory allocating a tensor");
        return NULL;
    }
    memset(t, 0, sizeof *t);
    t->refcount = 1;
    t->ctx = ctx;
    t->live_next = ctx->tensor_live;
    if (ctx->tensor_live)
        ctx->tensor_live->live_prev = t;
    ctx->tensor_live = t;
    ctx->n_live_tensors++;
    return t;
}

static void tensor_obj_release(em__tensor *t)
{
    em_context *ctx = t->ctx;
    if (t->live_prev)
        t->live_prev->live_next = t->live_next;
    else
        ctx->tensor_live = t->live_next;
    if (t->live_next)
        t->live_next->live_prev = t->live_prev;
    t->live_prev = NULL;
    t->live_next = ctx->tensor_free;
    ctx->tensor_free = t;
    ctx->n_live_tensors--;
}

/* ----------------------------------------------------------------- storage */

static em_storage *storage_new(em_context *ctx, size_t bytes)
{
    em_storage *s = em__calloc(1, sizeof *s);
    if (!s) {
        em__error(ctx, EM_ERR_OOM, "out of memory allocating tensor storage");
        return NULL;
    }
    if (bytes > 0 && em__buffer_alloc(ctx, bytes, &s->buf) != EM_OK) {
        free(s);
        return NULL;
    }
    s->ctx = ctx;
    s->nbytes = bytes;
    s->refcount = 1;
    s->next = ctx->storages;
    if (ctx->storages)
        ctx->storages->prev = s;
    ctx->storages = s;
    return s;
}

static void storage_unref(em_storage *s)
{
    if (!s || --s->refcount > 0)
        return;
    em_context *ctx = s->ctx;
    if (s->pending)
        em__storage_release_pending(ctx, s);
    em__buffer_release(ctx, s->buf, s->nbytes);
    if (s->prev)
        s->prev->next = s->next;
    else
        ctx->storages = s->next;
    if (s->next)
        s->next->prev = s->prev;
    free(s);
}

void em__storage_bump(em_storage *s)
{
    s->version++;
}

/* ----------------------------------------------------------------- references */

em__tensor *em__tensor_ref(em__tensor *t)
{
    if (t)
        t->refcount++;
    return t;
}

void em__tensor_unref(em__tensor *t)
{
    if (!t || --t->refcount > 0)
        return;
    if (t->grad_fn && t->grad_fn->retained_out == t)
        t->grad_fn->retained_out = NULL;
    em__tensor_unref(t->grad);
    em__node_unref(t->grad_fn);
    em__tensor_unref(t->view_base);   /* a root: no deeper recursion */
    storage_unref(t->storage);
    tensor_obj_release(t);
}

/* ----------------------------------------------------------------- construction */

static em_status check_shape(em_context *ctx, const char *what, em_dtype dt, int ndim,
                             const int64_t *shape)
{
    if (em_dtype_size(dt) == 0)
        return em__error(ctx, EM_ERR_DTYPE, "%s: invalid dtype %d", what, (int)dt);
    if (ndim < 0 || ndim > EM_MAX_DIMS)
        return em__error(ctx, EM_ERR_SHAPE, "%s: %d dimensions requested; ember supports 0 to %d",
                         what, ndim, EM_MAX_DIMS);
    if (ndim > 0 && !shape)
        return em__error(ctx, EM_ERR_INVALID, "%s: shape is NULL for %d dimensions", what, ndim);
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0)
            return em__error(ctx, EM_ERR_SHAPE, "%s: size %lld of dimension %d is negative", what,
                             (long long)shape[i], i);
    return em__check_shape_size(ctx, what, ndim, shape);
}

em__tensor *em__tensor_new(em_context *ctx, em_dtype dt, int ndim, const int64_t *shape)
{
    if (check_shape(ctx, "tensor", dt, ndim, shape) != EM_OK)
        return NULL;
    em__tensor *t = tensor_obj(ctx);
    if (!t)
        return NULL;
    t->dtype = dt;
    t->ndim = ndim;
    if (ndim)
        memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);
    em__contiguous_strides(ndim, t->shape, t->strides);
    size_t bytes = (size_t)em__numel(ndim, t->shape) * em_dtype_size(dt);
    t->storage = storage_new(ctx, bytes);
    if (!t->storage) {
        tensor_obj_release(t);
        return NULL;
    }
    return t;
}

em__tensor *em__tensor_alias(em__tensor *src, int ndim, const int64_t *shape,
                            const int64_t *strides, int64_t offset)
{
    em__tensor *t = tensor_obj(src->ctx);
    if (!t)
        return NULL;
    t->dtype = src->dtype;
    t->ndim = ndim;
    if (ndim) {
        memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);
        memcpy(t->strides, strides, sizeof(int64_t) * (size_t)ndim);
    }
    t->offset = offset;
    t->storage = src->storage;
    t->storage->refcount++;
    t->is_view = true;
    return t;
}

em__tensor *em__tensor_view(em__tensor *src, int ndim, const int64_t *shape,
                            const int64_t *strides, int64_t offset)
{
    em__tensor *t = em__tensor_alias(src, ndim, shape, strides, offset);
    if (!t || (src->dtype != EM_F32 && src->dtype != EM_F64))
        return t;   /* integer views take no part in autograd (PyTorch: not differentiable) */
    em__tensor *base = src->view_base ? src->view_base : src;
    t->view_base = em__tensor_ref(base);
    t->view_version = src->storage->version;
    if (!em__grad_mode(src->ctx)) {
        t->view_creation = EM__VIEW_NO_GRAD;
    } else if (src->view_base) {   /* a view of a view inherits how its source was made */
        t->view_creation = src->view_creation;
    }
    return t;
}

void em__tensor_view_multi_output(em__tensor *t, int nr)
{
    if (t && t->view_base && em__grad_mode(t->ctx)) {
        t->view_creation = EM__VIEW_MULTI_OUTPUT;
        t->view_output_nr = (uint8_t)(nr < 0 ? 0 : nr > 255 ? 255 : nr);
    }
}

void em__tensor_unview(em__tensor *t)
{
    t->is_view = false;
    em__tensor_unref(t->view_base);
    t->view_base = NULL;
}

static em_tensor *new_filled(em_context *ctx, const char *what, em_dtype dt, int ndim,
                             const int64_t *shape, double value)
{
    if (!ctx)
        return em__error_global(EM_ERR_INVALID, "%s: NULL context", what), NULL;
    if (check_shape(ctx, what, dt, ndim, shape) != EM_OK)
        return NULL;
    int64_t iv;
    if (em__scalar_checked(ctx, what, dt, value, &iv) != EM_OK)
        return NULL;
    em__tensor *t = em__tensor_new(ctx, dt, ndim, shape);
    if (!t)
        return NULL;
    if (em__launch_fill(t, value, iv) != EM_OK) {
        em__tensor_unref(t);
        return NULL;
    }
    return em__give(t);
}

EMBER_API em_tensor *em_empty(em_context *ctx, em_dtype dt, int ndim, const int64_t *shape)
{
    if (!ctx)
        return em__error_global(EM_ERR_INVALID, "em_empty: NULL context"), NULL;
    if (check_shape(ctx, "em_empty", dt, ndim, shape) != EM_OK)
        return NULL;
    return em__give(em__tensor_new(ctx, dt, ndim, shape));
}

EMBER_API em_tensor *em_zeros(em_context *ctx, em_dtype dt, int ndim, const int64_t *shape)
{
    return new_filled(ctx, "em_zeros", dt, ndim, shape, 0.0);
}

EMBER_API em_tensor *em_ones(em_context *ctx, em_dtype dt, int ndim, const int64_t *shape)
{
    return new_filled(ctx, "em_ones", dt, ndim, shape, 1.0);
}

EMBER_API em_tensor *em_full(em_context *ctx, em_dtype dt, int ndim, const int64_t *shape,
                             double value)
{
    return new_filled(ctx, "em_full", dt, ndim, shape, value);
}

EMBER_API em_tensor *em_scalar(em_context *ctx, em_dtype dt, double value)
{
    return new_filled(ctx, "em_scalar", dt, 0, NULL, value);
}

EMBER_API em_tensor *em_zeros_like(em_tensor *h)
{
    em__tensor *t = em__obj(h);
    return t ? new_filled(t->ctx, "em_zeros_like", t->dtype, t->ndim, t->shape, 0.0) : NULL;
}

EMBER_API em_tensor *em_ones_like(em_tensor *h)
{
    em__tensor *t = em__obj(h);
    return t ? new_filled(t->ctx, "em_ones_like", t->dtype, t->ndim, t->shape, 1.0) : NULL;
}

EMBER_API em_tensor *em_full_like(em_tensor *h, double value)
{
    em__tensor *t = em__obj(h);
    return t ? new_filled(t->ctx, "em_full_like", t->dtype, t->ndim, t->shape, value) : NULL;
}

static em_status upload(em__tensor *t, const void *src)
{
    size_t bytes = (size_t)em__numel(t->ndim, t->shape) * em_dtype_size(t->dtype);
    if (bytes == 0)
        return EM_OK;
    em_context *ctx = t->ctx;
    size_t off = (size_t)t->offset * em_dtype_size(t->dtype);
    em_status st = em__kernel_fault(ctx, 0, "copy_h2d");
    if (st == EM_OK)
        st = em__storage_ready(ctx, t, true);
    if (st != EM_OK)
        return st;
    st = ctx->ops->copy_h2d(ctx->dev, t->storage->buf, off, src, bytes);
    if (st != EM_OK)
        return em__backend_failed(ctx, st, "copy_h2d");
    em__storage_bump(t->storage);
    return EM_OK;
}

EMBER_API em_tensor *em_tensor_from_data(em_context *ctx, em_dtype dt, int ndim,
                                         const int64_t *shape, const void *data)
{
    if (!ctx)
        return em__error_global(EM_ERR_INVALID, "em_tensor_from_data: NULL context"), NULL;
    if (check_shape(ctx, "em_tensor_from_data", dt, ndim, shape) != EM_OK)
        return NULL;
    if (!data && em__numel(ndim, shape) > 0)
        return em__error(ctx, EM_ERR_INVALID, "em_tensor_from_data: data is NULL"), NULL;
    em__tensor *t = em__tensor_new(ctx, dt, ndim, shape);
    if (!t)
        return NULL;
    if (upload(t, data) != EM_OK) {
        em__tensor_unref(t);
        return NULL;
    }
    return em__give(t);
}

/* torch.arange for an integer dtype: start and step are truncated to integers first (a step
 * that truncates to 0 is an error); the length is computed from the truncated bounds for
 * i64 and from the given ones for i32 and u8, as PyTorch does. */
static em_status arange_int(em_context *ctx, em_dtype dt, double start, double end, double step,
                            int64_t *n, int64_t *first, int64_t *inc)
{
    if (!isfinite(start) || !isfinite(end) || !isfinite(step) || fabs(start) >= 0x1p63 ||
        fabs(end) >= 0x1p63 || fabs(step) >= 0x1p63)
        return em__error(ctx, EM_ERR_INVALID, "em_arange: bounds and step must be finite integers "
                         "for %s (start %g, end %g, step %g)", em_dtype_name(dt), start, end, step);
    int64_t xs = (int64_t)start, xe = (int64_t)end, xst = (int64_t)step;
    if (xst == 0)
        return em__error(ctx, EM_ERR_INVALID, "em_arange: step must be nonzero (step %g truncates "
                         "to 0 for %s)", step, em_dtype_name(dt));
    if (!((xst > 0 && xe >= xs) || (xst < 0 && xe <= xs)))
        return em__error(ctx, EM_ERR_INVALID, "em_arange: upper bound and larger bound inconsistent "
                         "with step sign (start %g, end %g, step %g)", start, end, step);
    int64_t span;   /* xe - xs, which may overflow int64 (bounds of opposite signs) */
    double dspan = __builtin_sub_overflow(xe, xs, &span) ? (double)xe - (double)xs : (double)span;
    double len = dt == EM_I64 ? ceil(dspan / (double)xst) : ceil((end - start) / step);
    if (len > 1e12)
        return em__error(ctx, EM_ERR_INVALID, "em_arange: %g elements is too many", len);
    *n = len > 0 ? (int64_t)len : 0;
    *first = xs;
    *inc = xst;
    return EM_OK;
}

static void host_set_i(em_dtype dt, void *p, int64_t i, int64_t v);

EMBER_API em_tensor *em_arange(em_context *ctx, em_dtype dt, double start, double end, double step)
{
    if (!ctx)
        return em__error_global(EM_ERR_INVALID, "em_arange: NULL context"), NULL;
    bool integer = em_dtype_is_integer(dt);
    if (!integer && dt != EM_F32 && dt != EM_F64)
        return em__error(ctx, EM_ERR_DTYPE, "em_arange: dtype must be f32, f64, i64, i32 or u8, "
                         "got %s", em_dtype_name(dt)), NULL;
    int64_t n, first = 0, inc = 0;
    if (integer) {
        if (arange_int(ctx, dt, start, end, step, &n, &first, &inc) != EM_OK)
            return NULL;
    } else {
        if (!(step != 0) || !isfinite(start) || !isfinite(end) || !isfinite(step))
            return em__error(ctx, EM_ERR_INVALID, "em_arange: step must be non-zero and bounds "
                             "finite (start %g, end %g, step %g)", start, end, step), NULL;
        if ((step > 0 && end < start) || (step < 0 && end > start))
            return em__error(ctx, EM_ERR_INVALID, "em_arange: upper bound and larger bound "
                             "inconsistent with step sign (start %g, end %g, step %g)", start, end,
                             step), NULL;
        double len = ceil((end - start) / step);
        if (len > 1e12)
            return em__error(ctx, EM_ERR_INVALID, "em_arange: %g elements is too many", len), NULL;
        n = (int64_t)len;
    }
    em__tensor *t = em__tensor_new(ctx, dt, 1, &n);
    if (!t)
        return NULL;
    void *host = em__malloc((size_t)(n ? n : 1) * em_dtype_size(dt));
    if (!host) {
        em__tensor_unref(t);
        return em__error(ctx, EM_ERR_OOM, "em_arange: out of memory"), NULL;
    }
    for (int64_t i = 0; i < n; i++) {
        double v = start + (double)i * step;
        if (integer)   /* in int64, wrapping as PyTorch's accumulate type then the cast do */
            host_set_i(dt, host, i, (int64_t)((uint64_t)first + (uint64_t)i * (uint64_t)inc));
        else if (dt == EM_F32)
            ((float *)host)[i] = (float)v;
        else
            ((double *)host)[i] = v;
    }
    em_status st = upload(t, host);
    free(host);
    if (st != EM_OK) {
        em__tensor_unref(t);
        return NULL;
    }
    return em__give(t);
}

static em_tensor *random_tensor(em_context *ctx, const char *what, size_t kernel, em_dtype dt,
                                int ndim, const int64_t *shape, double a, double b)
{
    if (!ctx)
        return em__error_global(EM_ERR_INVALID, "%s: NULL context", what), NULL;
    if (check_shape(ctx, what, dt, ndim, shape) != EM_OK)
        return NULL;
    if (dt != EM_F32 && dt != EM_F64)
        return em__error(ctx, EM_ERR_DTYPE, "%s: dtype must be f32 or f64, got %s", what,
                         em_dtype_name(dt)), NULL;
    em__tensor *t = em__tensor_new(ctx, dt, ndim, shape);
    if (!t)
        return NULL;
    double p[4] = {a, b, 0, 0};
    uint64_t u[2] = {ctx->seed, ctx->counter};
    if (em__launch(ctx, kernel, t, NULL, 0, p, u) != EM_OK) {
        em__tensor_unref(t);
        return NULL;
    }
    ctx->counter += (uint64_t)em__numel(ndim, shape);
    return em__give(t);
}

EMBER_API em_tensor *em_rand(em_context *ctx, em_dtype dt, int ndim, const int64_t *shape)
{
    return random_tensor(ctx, "em_rand", EM_KERNEL_OFFSET(rng_uniform), dt, ndim, shape, 0.0, 1.0);
}

EMBER_API em_tensor *em_randn(em_context *ctx, em_dtype dt, int ndim, const int64_t *shape)
{
    return random_tensor(ctx, "em_randn", EM_KERNEL_OFFSET(rng_normal), dt, ndim, shape, 0.0, 1.0);
}

/* ----------------------------------------------------------------- inspection */

EMBER_API em_context *em_tensor_context(const em_tensor *h)
{
    em__tensor *t = em__obj_quiet(h);
    return t ? t->ctx : NULL;
}

EMBER_API em_dtype em_tensor_dtype(const em_tensor *h)
{
    em__tensor *t = em__obj_quiet(h);
    return t ? t->dtype : EM_DTYPE_COUNT_;
}

EMBER_API int em_tensor_ndim(const em_tensor *h)
{
    em__tensor *t = em__obj_quiet(h);
    return t ? t->ndim : -1;
}

EMBER_API int64_t em_tensor_size(const em_tensor *h, int dim)
{
    em__tensor *t = em__obj_quiet(h);
    if (!t)
        return -1;
    if (dim < 0)
        dim += t->ndim;
    return dim >= 0 && dim < t->ndim ? t->shape[dim] : -1;
}

EMBER_API int64_t em_tensor_stride(const em_tensor *h, int dim)
{
    em__tensor *t = em__obj_quiet(h);
    if (!t)
        return -1;
    if (dim < 0)
        dim += t->ndim;
    return dim >= 0 && dim < t->ndim ? t->strides[dim] : -1;
}

EMBER_API int64_t em_tensor_numel(const em_tensor *h)
{
    em__tensor *t = em__obj_quiet(h);
    return t ? em__numel(t->ndim, t->shape) : 0;
}

EMBER_API const int64_t *em_tensor_shape(const em_tensor *h)
{
    em__tensor *t = em__obj_quiet(h);
    return t ? t->shape : NULL;
}

EMBER_API bool em_tensor_is_contiguous(const em_tensor *h)
{
    em__tensor *t = em__obj_quiet(h);
    return t && em__is_contiguous(t);
}

/* ----------------------------------------------------------------- host transfers */

/* Copy t's elements row-major into dst as t's own dtype. */
static em_status download(em__tensor *t, void *dst)
{
    em_context *ctx = t->ctx;
    size_t es = em_dtype_size(t->dtype);
    size_t bytes = (size_t)em__numel(t->ndim, t->shape) * es;
    if (bytes == 0)
        return EM_OK;
    em__tensor *src = t;
    if (!em__is_contiguous(t)) {
        src = em__tensor_new(ctx, t->dtype, t->ndim, t->shape);
        if (!src)
            return em__failed(ctx);
        em__tensor *in[1] = {t};
        em_status st = em__launch(ctx, EM_KERNEL_OFFSET(copy), src, in, 1, NULL, NULL);
        if (st != EM_OK) {
            em__tensor_unref(src);
            return st;
        }
    }
    em_status st = em__kernel_fault(ctx, 0, "copy_d2h");
    if (st == EM_OK)
        st = em__storage_ready(ctx, src, false);
    if (st == EM_OK)
        st = ctx->ops->copy_d2h(ctx->dev, dst, src->storage->buf, (size_t)src->offset * es, bytes);
    if (src != t)
        em__tensor_unref(src);
    if (st != EM_OK)
        return em__backend_failed(ctx, st, "copy_d2h");
    return EM_OK;
}

static bool host_is_int(em_dtype dt)
{
    return !em_dtype_is_floating(dt);
}

static int64_t host_get_i(em_dtype dt, const void *p, int64_t i)
{
    switch (dt) {
    case EM_I64: return ((const int64_t *)p)[i];
    case EM_I32: return ((const int32_t *)p)[i];
    default: return ((const uint8_t *)p)[i];   /* u8, bool */
    }
}

static double host_get_d(em_dtype dt, const void *p, int64_t i)
{
    switch (dt) {
    case EM_F32: return ((const float *)p)[i];
    case EM_F64: return ((const double *)p)[i];
    default: return (double)host_get_i(dt, p, i);
    }
}

static void host_set_i(em_dtype dt, void *p, int64_t i, int64_t v)
{
    switch (dt) {
    case EM_F32: ((float *)p)[i] = (float)v; break;
    case EM_F64: ((double *)p)[i] = (double)v; break;
    case EM_I64: ((int64_t *)p)[i] = v; break;
    case EM_I32: ((int32_t *)p)[i] = (int32_t)em__wrap_int(EM_I32, v); break;
    case EM_BOOL: ((uint8_t *)p)[i] = v != 0; break;
    default: ((uint8_t *)p)[i] = (uint8_t)em__wrap_int(EM_U8, v); break;
    }
}

/* A float converted as the copy kernel does: truncated toward zero (NaN and values out of
 * int64's range, whose result is unspecified, give 0 rather than undefined behaviour). */
static void host_set_d(em_dtype dt, void *p, int64_t i, double v)
{
    switch (dt) {
    case EM_F32: ((float *)p)[i] = (float)v; break;
    case EM_F64: ((double *)p)[i] = v; break;
    case EM_BOOL: ((uint8_t *)p)[i] = v != 0; break;
    default: host_set_i(dt, p, i, isfinite(v) && fabs(v) < 0x1p63 ? (int64_t)v : 0); break;
    }
}

em_status em__to_host_as(em__tensor *t, em_dtype dt, void *dst)
{
    if (dt == t->dtype)
        return download(t, dst);
    int64_t n = em__numel(t->ndim, t->shape);
    void *tmp = em__malloc((size_t)(n ? n : 1) * em_dtype_size(t->dtype));
    if (!tmp)
        return em__error(t->ctx, EM_ERR_OOM, "out of memory reading a tensor to the host");
    em_status st = download(t, tmp);
    if (st == EM_OK) {
        if (host_is_int(t->dtype))
            for (int64_t i = 0; i < n; i++)
                host_set_i(dt, dst, i, host_get_i(t->dtype, tmp, i));
        else
            for (int64_t i = 0; i < n; i++)
                host_set_d(dt, dst, i, host_get_d(t->dtype, tmp, i));
    }
    free(tmp);
    return st;
}

EMBER_API em_status em_tensor_to_host(em_tensor *h, void *dst, size_t bytes)
{
    if (!h)
        return em__error_global(EM_ERR_INVALID, "em_tensor_to_host: NULL tensor");
    em__tensor *t = em__obj(h);
    if (!t)
        return EM_ERR_FREED;
    size_t need = (size_t)em__numel(t->ndim, t->shape) * em_dtype_size(t->dtype);
    if (!dst)
        return em__error(t->ctx, EM_ERR_INVALID, "em_tensor_to_host: dst is NULL");
    if (bytes < need)
        return em__error(t->ctx, EM_ERR_INVALID, "em_tensor_to_host: destination of %zu bytes is "
                         "too small for %zu bytes", bytes, need);
    return download(t, dst);
}

EMBER_API em_status em_tensor_from_host(em_tensor *h, const void *src, size_t bytes)
{
    if (!h)
        return em__error_global(EM_ERR_INVALID, "em_tensor_from_host: NULL tensor");
    em__tensor *t = em__obj(h);
    if (!t)
        return EM_ERR_FREED;
    size_t need = (size_t)em__numel(t->ndim, t->shape) * em_dtype_size(t->dtype);
    if (!em__is_contiguous(t))
        return em__error(t->ctx, EM_ERR_INVALID, "em_tensor_from_host: tensor is not contiguous");
    if (!src || bytes != need)
        return em__error(t->ctx, EM_ERR_INVALID, "em_tensor_from_host: source has %zu bytes, "
                         "tensor needs %zu", src ? bytes : 0, need);
    if (t->requires_grad && !t->grad_fn && em__grad_mode(t->ctx))
        return em__error(t->ctx, EM_ERR_AUTOGRAD, "a leaf Variable that requires grad is being "
                         "used in an in-place operation.");
    return upload(t, src);
}

/* The object of a one-element tensor for em_item*: EM_OK, or the error (recorded). */
static em_status item_tensor(em_tensor *h, const void *out, const char *what, em__tensor **tp)
{
    if (!h)
        return em__error_global(EM_ERR_INVALID, "%s: NULL tensor", what);
    em__tensor *t = em__obj(h);
    if (!t)
        return EM_ERR_FREED;
    if (!out)
        return em__error(t->ctx, EM_ERR_INVALID, "%s: out is NULL", what);
    int64_t n = em__numel(t->ndim, t->shape);
    if (n != 1) {
        char s[160];
        em__shape_str(t->ndim, t->shape, s, sizeof s);
        return em__error(t->ctx, EM_ERR_SHAPE, "%s: a Tensor with %lld elements (shape %s) "
                         "cannot be converted to Scalar", what, (long long)n, s);
    }
    *tp = t;
    return EM_OK;
}

EMBER_API em_status em_item_get(em_tensor *h, double *out)
{
    em__tensor *t;
    em_status st = item_tensor(h, out, "em_item", &t);
    return st == EM_OK ? em__to_host_as(t, EM_F64, out) : st;
}

EMBER_API em_status em_item_get_i64(em_tensor *h, int64_t *out)
{
    em__tensor *t;
    em_status st = item_tensor(h, out, "em_item_i64", &t);
    if (st != EM_OK)
        return st;
    if (host_is_int(t->dtype))
        return em__to_host_as(t, EM_I64, out);
    double v;
    st = em__to_host_as(t, EM_F64, &v);
    if (st != EM_OK)
        return st;
    if (!isfinite(v) || fabs(v) >= 0x1p63)
        return em__error(t->ctx, EM_ERR_INVALID, "em_item_i64: cannot convert float %g to an "
                         "integer", v);
    *out = (int64_t)v;
    return EM_OK;
}

EMBER_API int64_t em_item_i64(em_tensor *t)
{
    int64_t v = 0;
    if (em_item_get_i64(t, &v) != EM_OK)
        return 0;
    return v;
}

EMBER_API double em_item(em_tensor *t)
{
    double v = NAN;
    if (em_item_get(t, &v) != EM_OK)
        return NAN;
    return v;
}
