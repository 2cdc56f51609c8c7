/* core/ops/linalg.c — matrix products, lowered to the backend's gemm (transposed views go
 * in as transpose flags, not copies).
 * Shape legend: mm  a [n,k] @ b [k,m] -> out [n,m];  da = g @ b^T [n,k], db = a^T @ g [k,m]
 *               bmm a [B,n,k] @ b [B,k,m] -> out [B,n,m], per batch the same. */
#include "config.h"
#include "internal.h"

#include <string.h>

static em_status shape_matmul(em_call *c, int nd)
{
    em__tensor *a = c->in[0], *b = c->in[1];
    if (a->ndim != nd || b->ndim != nd)
        return em__error(c->ctx, EM_ERR_SHAPE, "%s: expected %d-D tensors, got %d-D and %d-D",
                         c->op->name, nd, a->ndim, b->ndim);
    if (a->dtype != b->dtype)
        return em__error(c->ctx, EM_ERR_DTYPE, "%s: expected both operands to have the same dtype, "
                         "but got %s and %s", c->op->name, em_dtype_name(a->dtype),
                         em_dtype_name(b->dtype));
    if (a->dtype != EM_F32 && a->dtype != EM_F64)
        return em__error(c->ctx, EM_ERR_DTYPE, "%s: expected f32 or f64 operands, got %s",
                         c->op->name, em_dtype_name(a->dtype));
    if (nd == 3 && a->shape[0] != b->shape[0])
        return em__error(c->ctx, EM_ERR_SHAPE, "bmm: batch sizes differ (%lld and %lld)",
                         (long long)a->shape[0], (long long)b->shape[0]);
    if (a->shape[nd - 1] != b->shape[nd - 2]) {
        if (nd == 2)
            return em__error(c->ctx, EM_ERR_SHAPE, "mm: mat1 and mat2 shapes cannot be multiplied "
                             "(%lldx%lld and %lldx%lld)", (long long)a->shape[0],
                             (long long)a->shape[1], (long long)b->shape[0], (long long)b->shape[1]);
        return em__error(c->ctx, EM_ERR_SHAPE, "bmm: batch1 [%lld, %lld, %lld] and batch2 "
                         "[%lld, %lld, %lld] cannot be multiplied", (long long)a->shape[0],
                         (long long)a->shape[1], (long long)a->shape[2], (long long)b->shape[0],
                         (long long)b->shape[1], (long long)b->shape[2]);
    }
    c->out_ndim = nd;
    if (nd == 3)
        c->out_shape[0] = a->shape[0];
    c->out_shape[nd - 2] = a->shape[nd - 2];
    c->out_shape[nd - 1] = b->shape[nd - 1];
    c->out_dtype = a->dtype;
    return EM_OK;
}
static em_status shape_mm(em_call *c) { return shape_matmul(c, 2); }
static em_status shape_bmm(em_call *c) { return shape_matmul(c, 3); }

static em_status fw_gemm(em_call *c)
{
    return em__launch_gemm(c->ctx, c->out, c->in[0], c->in[1], 1.0, 0.0);
}

/* A column-major matrix: the transpose of a contiguous one (nn.Linear's weight.t()). */
static bool column_major(em_tensor *t)
{
    return em_tensor_size(t, 0) > 1 && em_tensor_size(t, 1) > 1 && em_tensor_stride(t, 0) == 1 &&
           em_tensor_stride(t, 1) == em_tensor_size(t, 0);
}

/* As PyTorch's mm_mat1/mat2_backward: a gradient takes its input's layout, so the gradient
 * of a weight used as weight.t() comes back through TBackward0 contiguous and becomes .grad
 * without a copy. */
static em_status bw_mm(em_bw *b)
{
    em_tensor *g = b->grad_out, *x = b->saved[0], *y = b->saved[1];
    if (b->needs[0])
        b->grad_in[0] = column_major(x) ? em_t(em_mm(y, em_t(g))) : em_mm(g, em_t(y));
    if (b->needs[1])
        b->grad_in[1] = column_major(y) ? em_t(em_mm(em_t(g), x)) : em_mm(em_t(x), g);
    return EM_OK;
}

static em_status bw_bmm(em_bw *b)
{
    em_tensor *g = b->grad_out, *x = b->saved[0], *y = b->saved[1];
    if (b->needs[0])
        b->grad_in[0] = em_bmm(g, em_transpose(y, 1, 2));
    if (b->needs[1])
        b->grad_in[1] = em_bmm(em_transpose(x, 1, 2), g);
    return EM_OK;
}

const em_op em__op_mm = {.name = "mm", .grad_fn = "MmBackward0", .arity = 2,
                         .saves = EM_SAVE_IN(0) | EM_SAVE_IN(1), .kernel = EM_KERNEL_OFFSET(gemm),
                         .shape = shape_mm, .forward = fw_gemm, .backward = bw_mm};
const em_op em__op_bmm = {.name = "bmm", .grad_fn = "BmmBackward0", .arity = 2,
                          .saves = EM_SAVE_IN(0) | EM_SAVE_IN(1), .kernel = EM_KERNEL_OFFSET(gemm),
                          .shape = shape_bmm, .forward = fw_gemm, .backward = bw_bmm};

EMBER_API em_tensor *em_mm(em_tensor *a, em_tensor *b)
{
    em_tensor *in[2] = {a, b};
    return em__apply_h(&em__op_mm, in, 2, NULL);
}

EMBER_API em_tensor *em_bmm(em_tensor *a, em_tensor *b)
{
    em_tensor *in[2] = {a, b};
    return em__apply_h(&em__op_bmm, in, 2, NULL);
}

/* torch.matmul: composed from views, mm and bmm, so autograd comes for free. Temporaries
 * live in a local scope; the result is handed to the caller's. */
static em_tensor *matmul_impl(em_tensor *ah, em_tensor *bh)
{
    em__tensor *a = em__obj(ah), *b = em__obj(bh);
    em_context *ctx = a->ctx;
    int na = a->ndim, nb = b->ndim;
    if (na == 0 || nb == 0)
        return em__error(ctx, EM_ERR_SHAPE, "matmul: both arguments need at least 1 dimension, "
                         "got %d-D and %d-D", na, nb), NULL;
    if (na == 2 && nb == 2)
        return em_mm(ah, bh);
    if (na == 1 && nb == 1) {
        if (a->shape[0] != b->shape[0])
            return em__error(ctx, EM_ERR_SHAPE, "matmul: 1D tensors expected same size, got %lld "
                             "and %lld", (long long)a->shape[0], (long long)b->shape[0]), NULL;
        return em_reshape(em_mm(em_unsqueeze(ah, 0), em_unsqueeze(bh, 1)), 0, NULL);
    }
    if (na == 2 && nb == 1)
        return em_squeeze(em_mm(ah, em_unsqueeze(bh, 1)), 1);
    if (na == 1 && nb == 2)
        return em_squeeze(em_mm(em_unsqueeze(ah, 0), bh), 0);
    /* batched: broadcast the batch dims, fold them into one, bmm, unfold */
    em_tensor *Ah = na == 1 ? em_unsqueeze(ah, 0) : ah;
    em_tensor *Bh = nb == 1 ? em_unsqueeze(bh, 1) : bh;
    em__tensor *A = em__obj(Ah), *B = em__obj(Bh);
    if (!A || !B)
        return NULL;
    int nA = A->ndim, nB = B->ndim;
    int nbatch;
    int64_t batch[EM_MAX_DIMS];
    if (em__broadcast_shapes(ctx, "matmul", nA - 2, A->shape, nB - 2, B->shape, &nbatch, batch) != EM_OK)
        return NULL;
    int64_t n = A->shape[nA - 2], k = A->shape[nA - 1], k2 = B->shape[nB - 2], m = B->shape[nB - 1];
    if (k != k2)
        return em__error(ctx, EM_ERR_SHAPE, "matmul: inner dimensions differ (%lld and %lld)",
                         (long long)k, (long long)k2), NULL;
    if (nbatch + 2 > EM_MAX_DIMS)
        return em__error(ctx, EM_ERR_SHAPE, "matmul: too many dimensions"), NULL;
    int64_t bt = em__numel(nbatch, batch);
    int64_t ea[EM_MAX_DIMS], eb[EM_MAX_DIMS], out[EM_MAX_DIMS];
    memcpy(ea, batch, sizeof(int64_t) * (size_t)nbatch);
    memcpy(eb, batch, sizeof(int64_t) * (size_t)nbatch);
    memcpy(out, batch, sizeof(int64_t) * (size_t)nbatch);
    ea[nbatch] = n; ea[nbatch + 1] = k;
    eb[nbatch] = k; eb[nbatch + 1] = m;
    out[nbatch] = n; out[nbatch + 1] = m;
    em_tensor *A3 = em_reshape(em_expand(Ah, nbatch + 2, ea), EM_SHAPE(bt, n, k));
    em_tensor *B3 = em_reshape(em_expand(Bh, nbatch + 2, eb), EM_SHAPE(bt, k, m));
    em_tensor *r = em_reshape(em_bmm(A3, B3), nbatch + 2, out);
    if (r && na == 1)
        r = em_squeeze(r, nbatch);
    if (r && nb == 1)
        r = em_squeeze(r, em_tensor_ndim(r) - 1);
    return r;
}

EMBER_API em_tensor *em_matmul(em_tensor *ah, em_tensor *bh)
{
    em__tensor *a = em__obj(ah), *b = em__obj(bh);
    if (!a || !b)
        return NULL;
    if (a->ctx != b->ctx)
        return em__error(a->ctx, EM_ERR_DEVICE, "matmul: tensors are on different contexts"), NULL;
    em_context *ctx = a->ctx;
    em_scope_begin(ctx);
    em_tensor *r = em_tensor_keep(matmul_impl(ah, bh));
    em_scope_end(ctx);
    /* the result's handle, out of the local scope, goes to the caller's */
    if (r && em__scope_add(ctx, r) != EM_OK) {
        em__handle_release(r);
        return NULL;
    }
    return r;
}
