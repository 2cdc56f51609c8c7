/* core/ops/view_select.c — views that select by integers: permute, narrow, slice, select,
 * split and chunk. Like the views of view.c they alias the input's storage (made by
 * em__tensor_view: offset and strides change, no kernel runs). Backward of permute is the inverse permutation; backward
 * of a selecting view is a zero tensor of the input's shape with g copied into the same
 * view of it (PyTorch's slice_backward / select_backward), which is right for any strides
 * of the input since only its shape is used.
 *
 * Params: permute: p.ndim dims in p.shape. Slicing views (SliceBackward0, SplitBackward0,
 * SplitWithSizesBackward0): p.i[0] = dim, p.shape[0] = start, p.shape[1] = length of the
 * result along dim, p.shape[2] = step (>= 1). select: p.i[0] = dim, p.shape[0] = index
 * (already wrapped to [0, size)). */
#include "config.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------- permute */

static em_status shape_permute(em_call *c)
{
    em__tensor *a = c->in[0];
    c->out_ndim = a->ndim;
    for (int i = 0; i < a->ndim; i++)
        c->out_shape[i] = a->shape[c->p.shape[i]];
    c->out_dtype = a->dtype;
    return EM_OK;
}

static em_status fw_permute(em_call *c)
{
    em__tensor *a = c->in[0];
    int64_t strides[EM_MAX_DIMS];
    for (int i = 0; i < a->ndim; i++)
        strides[i] = a->strides[c->p.shape[i]];
    c->out = em__tensor_view(a, c->out_ndim, c->out_shape, strides, a->offset);
    return c->out ? EM_OK : em__failed(c->ctx);
}

static em_status bw_permute(em_bw *b)
{
    int inv[EM_MAX_DIMS];
    int nd = b->in_ndim[0];
    for (int i = 0; i < nd; i++)
        inv[b->p->shape[i]] = i;
    b->grad_in[0] = em_permute(b->grad_out, nd, inv);
    return EM_OK;
}

const em_op em__op_permute = {.name = "permute", .grad_fn = "PermuteBackward0", .arity = 1,
                              .is_view = true, .shape = shape_permute, .forward = fw_permute,
                              .backward = bw_permute};

/* ----------------------------------------------------------------- slicing views */

static em_status shape_slice(em_call *c)
{
    em__tensor *a = c->in[0];
    c->out_ndim = a->ndim;
    memcpy(c->out_shape, a->shape, sizeof(int64_t) * (size_t)a->ndim);
    c->out_shape[c->p.i[0]] = c->p.shape[1];
    c->out_dtype = a->dtype;
    return EM_OK;
}

static em_status fw_slice(em_call *c)
{
    em__tensor *a = c->in[0];
    int d = c->p.i[0];
    int64_t strides[EM_MAX_DIMS];
    memcpy(strides, a->strides, sizeof(int64_t) * (size_t)a->ndim);
    /* stride * step fits whenever the slice has two elements or more (it is then less than
     * the dimension's extent); with one or none, a huge step may not, and is not needed */
    int64_t stepped;
    if (!__builtin_mul_overflow(strides[d], c->p.shape[2], &stepped))
        strides[d] = stepped;
    int64_t offset = a->offset + (c->p.shape[1] > 0 ? c->p.shape[0] * a->strides[d] : 0);
    c->out = em__tensor_view(a, c->out_ndim, c->out_shape, strides, offset);
    return c->out ? EM_OK : em__failed(c->ctx);
}

/* The gradient of a selecting view: zeros of the input's shape, g copied into the view
 * `sub` (a handle to the same view of the zeros) — grad mode is off during backward. */
static em_status scatter_into_zeros(em_bw *b, em_tensor *zeros, em_tensor *sub)
{
    if (!sub)
        return em__failed(b->ctx);
    em_status st = em_copy_(sub, b->grad_out);
    if (st != EM_OK)
        return st;
    b->grad_in[0] = zeros;
    return EM_OK;
}

static em_status bw_slice(em_bw *b)
{
    em_tensor *z = em_zeros(b->ctx, b->in_dtype[0], b->in_ndim[0], b->in_shape[0]);
    if (!z)
        return em__failed(b->ctx);
    int64_t start = b->p->shape[0], len = b->p->shape[1], step = b->p->shape[2];
    int64_t end = len > 0 ? start + (len - 1) * step + 1 : start;
    return scatter_into_zeros(b, z, em_slice(z, b->p->i[0], start, end, step));
}

const em_op em__op_slice = {.name = "slice", .grad_fn = "SliceBackward0", .arity = 1,
                            .is_view = true, .shape = shape_slice, .forward = fw_slice,
                            .backward = bw_slice};
const em_op em__op_split = {.name = "split", .grad_fn = "SplitBackward0", .arity = 1,
                            .is_view = true, .shape = shape_slice, .forward = fw_slice,
                            .backward = bw_slice};
const em_op em__op_split_with_sizes = {.name = "split_with_sizes",
                                       .grad_fn = "SplitWithSizesBackward0", .arity = 1,
                                       .is_view = true, .shape = shape_slice,
                                       .forward = fw_slice, .backward = bw_slice};

/* ----------------------------------------------------------------- select */

static em_status shape_select(em_call *c)
{
    em__tensor *a = c->in[0];
    int d = c->p.i[0], n = 0;
    for (int i = 0; i < a->ndim; i++)
        if (i != d)
            c->out_shape[n++] = a->shape[i];
    c->out_ndim = n;
    c->out_dtype = a->dtype;
    return EM_OK;
}

static em_status fw_select(em_call *c)
{
    em__tensor *a = c->in[0];
    int d = c->p.i[0], n = 0;
    int64_t strides[EM_MAX_DIMS];
    for (int i = 0; i < a->ndim; i++)
        if (i != d)
            strides[n++] = a->strides[i];
    c->out = em__tensor_view(a, c->out_ndim, c->out_shape, strides,
                              a->offset + c->p.shape[0] * a->strides[d]);
    return c->out ? EM_OK : em__failed(c->ctx);
}

static em_status bw_select(em_bw *b)
{
    em_tensor *z = em_zeros(b->ctx, b->in_dtype[0], b->in_ndim[0], b->in_shape[0]);
    if (!z)
        return em__failed(b->ctx);
    return scatter_into_zeros(b, z, em_select(z, b->p->i[0], b->p->shape[0]));
}

const em_op em__op_select = {.name = "select", .grad_fn = "SelectBackward0", .arity = 1,
                             .is_view = true, .shape = shape_select, .forward = fw_select,
                             .backward = bw_select};

/* ================================================================= public API */

static em__tensor *apply_slice(const em_op *op, em__tensor *t, int dim, int64_t start,
                               int64_t len, int64_t step)
{
    em_op_params p;
    memset(&p, 0, sizeof p);
    p.i[0] = dim;
    p.shape[0] = start;
    p.shape[1] = len;
    p.shape[2] = step;
    em__tensor *in[1] = {t};
    return em__apply(op, in, 1, &p);
}

EMBER_API em_tensor *em_permute(em_tensor *h, int ndim, const int *dims)
{
    em__tensor *t = em__obj(h);
    if (!t)
        return NULL;
    if (ndim != t->ndim)
        return em__error(t->ctx, EM_ERR_SHAPE, "permute(): number of dimensions in the tensor "
                         "input does not match the length of the desired ordering of dimensions "
                         "i.e. input.dim() = %d is not equal to len(dims) = %d", t->ndim, ndim), NULL;
    if (ndim > 0 && !dims)
        return em__error(t->ctx, EM_ERR_INVALID, "permute(): NULL dims"), NULL;
    em_op_params p;
    memset(&p, 0, sizeof p);
    p.ndim = ndim;
    bool seen[EM_MAX_DIMS] = {false};
    for (int i = 0; i < ndim; i++) {
        bool ok;
        int d = em__wrap_dim(t->ctx, dims[i], ndim, "permute", &ok);
        if (!ok)
            return NULL;
        if (seen[d])
            return em__error(t->ctx, EM_ERR_INVALID, "permute(): duplicate dims are not allowed."),
                   NULL;
        seen[d] = true;
        p.shape[i] = d;
    }
    em__tensor *in[1] = {t};
    return em__give(em__apply(&em__op_permute, in, 1, &p));
}

EMBER_API em_tensor *em_narrow(em_tensor *h, int dim, int64_t start, int64_t length)
{
    em__tensor *t = em__obj(h);
    if (!t)
        return NULL;
    if (t->ndim == 0)
        return em__error(t->ctx, EM_ERR_SHAPE, "narrow() cannot be applied to a 0-dim tensor."),
               NULL;
    bool ok;
    int d = em__wrap_dim(t->ctx, dim, t->ndim, "narrow", &ok);
    if (!ok)
        return NULL;
    int64_t size = t->shape[d];
    if (start < -size || start > size)
        return em__error(t->ctx, EM_ERR_INVALID, "narrow(): start out of range (expected to be in "
                         "range of [%lld, %lld], but got %lld)", (long long)-size, (long long)size,
                         (long long)start), NULL;
    if (start < 0)
        start += size;
    if (length < 0 || length > size - start)
        return em__error(t->ctx, EM_ERR_INVALID, "narrow(): start (%lld) + length (%lld) exceeds "
                         "dimension size (%lld).", (long long)start, (long long)length,
                         (long long)size), NULL;
    /* PyTorch's narrow is a slice: its node is SliceBackward0 */
    return em__give(apply_slice(&em__op_slice, t, d, start, length, 1));
}

EMBER_API em_tensor *em_slice(em_tensor *h, int dim, int64_t start, int64_t end, int64_t step)
{
    em__tensor *t = em__obj(h);
    if (!t)
        return NULL;
    if (t->ndim == 0)
        return em__error(t->ctx, EM_ERR_SHAPE, "slice() cannot be applied to a 0-dim tensor."),
               NULL;
    bool ok;
    int d = em__wrap_dim(t->ctx, dim, t->ndim, "slice", &ok);
    if (!ok)
        return NULL;
    if (step <= 0)
        return em__error(t->ctx, EM_ERR_INVALID, "slice step must be positive (got %lld)",
                         (long long)step), NULL;
    /* Python's rules, as at::slice: wrap negatives once, then clamp to [0, size] */
    int64_t size = t->shape[d];
    if (start < 0)
        start += size;
    if (end < 0)
        end += size;
    if (start < 0)
        start = 0;
    else if (start > size)
        start = size;
    if (end < start)
        end = start;
    else if (end > size)
        end = size;
    int64_t len = end - start;
    len = len / step + (len % step != 0);
    return em__give(apply_slice(&em__op_slice, t, d, start, len, step));
}

EMBER_API em_tensor *em_select(em_tensor *h, int dim, int64_t index)
{
    em__tensor *t = em__obj(h);
    if (!t)
        return NULL;
    if (t->ndim == 0)
        return em__error(t->ctx, EM_ERR_SHAPE, "select() cannot be applied to a 0-dim tensor."),
               NULL;
    bool ok;
    int d = em__wrap_dim(t->ctx, dim, t->ndim, "select", &ok);
    if (!ok)
        return NULL;
    int64_t size = t->shape[d];
    if (index < -size || index >= size) {
        char s[160];
        em__shape_str(t->ndim, t->shape, s, sizeof s);
        return em__error(t->ctx, EM_ERR_INVALID, "select(): index %lld out of range for tensor of "
                         "size %s at dimension %d", (long long)index, s, d), NULL;
    }
    em_op_params p;
    memset(&p, 0, sizeof p);
    p.i[0] = d;
    p.shape[0] = index < 0 ? index + size : index;
    em__tensor *in[1] = {t};
    return em__give(em__apply(&em__op_select, in, 1, &p));
}

/* n pieces along dim d of t: piece i starts at i * size and has min(size, rest) elements
 * (all of length 0 when size is 0). Handles are written to out only when every piece
 * exists. */
static int make_pieces(const char *name, em__tensor *t, const em_op *op, int d, int64_t size,
                       int64_t n, em_tensor **out, int max)
{
    if (!out)
        return em__error(t->ctx, EM_ERR_INVALID, "%s: out is NULL", name), -1;
    if (n > max)
        return em__error(t->ctx, EM_ERR_INVALID, "%s: %lld pieces do not fit in the %d handles "
                         "given", name, (long long)n, max), -1;
    em_tensor **h = calloc((size_t)n, sizeof *h);
    if (!h)
        return em__error(t->ctx, EM_ERR_OOM, "%s: out of memory", name), -1;
    int64_t dim_size = t->shape[d];
    int64_t i;
    for (i = 0; i < n; i++) {
        int64_t start = i * size < dim_size ? i * size : dim_size;
        int64_t len = dim_size - start < size ? dim_size - start : size;
        em__tensor *piece = apply_slice(op, t, d, start, len, 1);
        em__tensor_view_multi_output(piece, (int)i);   /* not to be written in place */
        if (!(h[i] = em__give(piece)))
            break;
    }
    if (i < n) {
        while (i-- > 0)
            em_tensor_free(h[i]);
        free(h);
        return -1;
    }
    memcpy(out, h, sizeof *h * (size_t)n);
    free(h);
    return (int)n;
}

EMBER_API int em_split(em_tensor *h, int64_t split_size, int dim, em_tensor **out, int max)
{
    em__tensor *t = em__obj(h);
    if (!t)
        return -1;
    if (t->ndim == 0)
        return em__error(t->ctx, EM_ERR_SHAPE, "split expects at least a 1-dimensional tensor"), -1;
    bool ok;
    int d = em__wrap_dim(t->ctx, dim, t->ndim, "split", &ok);
    if (!ok)
        return -1;
    if (split_size < 0)
        return em__error(t->ctx, EM_ERR_INVALID, "split expects split_size be non-negative, but "
                         "got split_size=%lld", (long long)split_size), -1;
    int64_t dim_size = t->shape[d];
    if (split_size == 0 && dim_size != 0)
        return em__error(t->ctx, EM_ERR_INVALID, "split_size can only be 0 if dimension size is "
                         "0, but got dimension size of %lld", (long long)dim_size), -1;
    int64_t n = 1;
    if (split_size > 0)
        n = dim_size / split_size + (dim_size % split_size != 0);
    if (n < 1)
        n = 1;
    return make_pieces("split", t, &em__op_split, d, split_size, n, out, max);
}

EMBER_API int em_chunk(em_tensor *h, int chunks, int dim, em_tensor **out, int max)
{
    em__tensor *t = em__obj(h);
    if (!t)
        return -1;
    if (t->ndim == 0)
        return em__error(t->ctx, EM_ERR_SHAPE, "chunk expects at least a 1-dimensional tensor"), -1;
    if (chunks <= 0)
        return em__error(t->ctx, EM_ERR_INVALID, "chunk expects `chunks` to be greater than 0, "
                         "got: %d", chunks), -1;
    bool ok;
    int d = em__wrap_dim(t->ctx, dim, t->ndim, "chunk", &ok);
    if (!ok)
        return -1;
    int64_t dim_size = t->shape[d];
    int64_t size = dim_size / chunks + (dim_size % chunks != 0);
    /* torch.chunk: pieces of ceil(size / chunks), so there may be fewer than `chunks`;
     * an empty dim gives `chunks` empty pieces (split_with_sizes) */
    if (dim_size == 0)
        return make_pieces("chunk", t, &em__op_split_with_sizes, d, 0, chunks, out, max);
    int64_t n = dim_size / size + (dim_size % size != 0);
    return make_pieces("chunk", t, &em__op_split, d, size, n, out, max);
}
