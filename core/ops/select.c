/* core/ops/select.c — comparisons, selection (where, masked_fill), copies, casts and fills:
 * the elementwise ops that take or make bool tensors or change dtypes. Every dtype works
 * here; a comparison with a scalar compares in PyTorch's promoted dtype (an i64 tensor with
 * 2.5 in f32, a bool tensor with 2 in i64), and a fill value goes through PyTorch's checked
 * conversion for integer dtypes (em__scalar_checked). */
#include "config.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define K(field) EM_KERNEL_OFFSET(field)

static em_status shape_compare(em_call *c)
{
    if (em__same_dtype(c, c->in[0], c->in[1]))
        return em__failed(c->ctx);
    c->out_dtype = EM_BOOL;
    return em__shape_broadcast(c);
}

static em_status shape_where(em_call *c)
{
    if (c->in[0]->dtype != EM_BOOL)
        return em__error(c->ctx, EM_ERR_DTYPE, "where: condition must be a bool tensor, got %s",
                         em_dtype_name(c->in[0]->dtype));
    if (em__same_dtype(c, c->in[1], c->in[2]))
        return em__failed(c->ctx);
    c->out_dtype = c->in[1]->dtype;
    return em__shape_broadcast(c);
}

static em_status shape_masked_fill(em_call *c)
{
    if (c->in[1]->dtype != EM_BOOL)
        return em__error(c->ctx, EM_ERR_DTYPE, "masked_fill: mask must be a bool tensor, got %s",
                         em_dtype_name(c->in[1]->dtype));
    c->out_dtype = c->in[0]->dtype;
    return em__shape_broadcast(c);
}

static em_status shape_same(em_call *c)
{
    em__tensor *a = c->in[0];
    c->out_ndim = a->ndim;
    memcpy(c->out_shape, a->shape, sizeof(int64_t) * (size_t)a->ndim);
    c->out_dtype = a->dtype;
    return EM_OK;
}

/* One kernel over out and the inputs, scalars from params. */
static em_status fw_kernel(em_call *c)
{
    return em__launch(c->ctx, c->op->kernel, c->out, c->in, c->n_in, c->p.s, NULL);
}

#define DEFINE_OP(ident, opname, gradname, nargs, saves_, shape_fn, kern, bw)                     \
    const em_op em__op_##ident = {.name = opname, .grad_fn = gradname, .arity = nargs,            \
                                  .saves = saves_, .kernel = kern, .shape = shape_fn,             \
                                  .forward = fw_kernel, .backward = bw}

/* ----------------------------------------------------------------- comparisons (no grad) */

DEFINE_OP(lt, "lt", NULL, 2, 0, shape_compare, K(lt), NULL);
DEFINE_OP(le, "le", NULL, 2, 0, shape_compare, K(le), NULL);
DEFINE_OP(gt, "gt", NULL, 2, 0, shape_compare, K(gt), NULL);
DEFINE_OP(ge, "ge", NULL, 2, 0, shape_compare, K(ge), NULL);
DEFINE_OP(eq, "eq", NULL, 2, 0, shape_compare, K(eq), NULL);
DEFINE_OP(ne, "ne", NULL, 2, 0, shape_compare, K(ne), NULL);

/* ----------------------------------------------------------------- selection */

/* where(cond, a, b):  da = cond ? g : 0, db = cond ? 0 : g;  cond gets none */
static em_status bw_where(em_bw *b)
{
    em_tensor *g = b->grad_out, *cond = b->saved[0];
    if (b->needs[1])
        b->grad_in[1] = em_where(cond, g, em_scalar(em_tensor_context(g), em_tensor_dtype(g), 0.0));
    if (b->needs[2])
        b->grad_in[2] = em_masked_fill(g, cond, 0.0);
    return EM_OK;
}
DEFINE_OP(where, "where", "WhereBackward0", 3, EM_SAVE_IN(0), shape_where, K(where), bw_where);

/* Whether the mask holds at any position of each element of out, the un-expanded view of the
 * expanded self of shape (c->out_ndim, c->out_shape): the mask, broadcast to self's shape, as
 * f32 (0/1), summed over the expanded dims, != 0. */
static em__tensor *mask_any(em_call *c)
{
    em__tensor *mask = c->in[1], *out = c->out;
    int64_t strides[EM_MAX_DIMS];
    em__broadcast_strides(mask, c->out_ndim, c->out_shape, strides);
    em_op_params p;
    memset(&p, 0, sizeof p);
    p.i[0] = 1;   /* keepdim */
    for (int d = 0; d < c->out_ndim; d++)
        if (out->shape[d] != c->out_shape[d])
            p.dim_mask |= 1u << d;
    em__tensor *m = em__tensor_alias(mask, c->out_ndim, c->out_shape, strides, mask->offset);
    em__tensor *f = m ? em__cast(m, EM_F32) : NULL;
    em__tensor *in[1] = {f};
    em__tensor *n = f ? em__apply(&em__op_sum_dims, in, 1, &p) : NULL;
    em__tensor *any = n ? em__cast(n, EM_BOOL) : NULL;
    em__tensor_unref(n);
    em__tensor_unref(f);
    em__tensor_unref(m);
    return any;
}

/* masked_fill; in place on an expanded self (em_op.writes_expanded) out is self's un-expanded
 * view, and an element is filled when the mask holds at any of its positions (PyTorch writes
 * them one after another). */
static em_status fw_masked_fill(em_call *c)
{
    em__tensor *out = c->out;
    if (!memcmp(out->shape, c->out_shape, sizeof(int64_t) * (size_t)c->out_ndim))
        return fw_kernel(c);
    em__tensor *any = mask_any(c);
    if (!any)
        return em__failed(c->ctx);
    em__tensor *in[2] = {out, any};
    em_status st = em__launch(c->ctx, c->op->kernel, out, in, 2, c->p.s, NULL);
    em__tensor_unref(any);
    return st;
}

/* masked_fill(a, mask, v):  da = mask ? 0 : g */
static em_status bw_masked_fill(em_bw *b)
{
    b->grad_in[0] = em_masked_fill(b->grad_out, b->saved[1], 0.0);
    return EM_OK;
}
const em_op em__op_masked_fill = {.name = "masked_fill", .grad_fn = "MaskedFillBackward0",
                                  .arity = 2, .saves = EM_SAVE_IN(1), .kernel = K(masked_fill),
                                  .shape = shape_masked_fill, .forward = fw_masked_fill,
                                  .backward = bw_masked_fill, .writes_expanded = true};

/* ----------------------------------------------------------------- copies and fills */

static em_status bw_pass(em_bw *b)
{
    b->grad_in[0] = em__dup(b->grad_out);
    return EM_OK;
}

/* clone: out = a (contiguous);  da = g */
DEFINE_OP(clone, "clone", "CloneBackward0", 1, 0, shape_same, K(copy), bw_pass);

/* cast to dtype p.i[0]:  da = g cast back (recorded only between float dtypes: dispatch.c
 * records no integer or bool result) */
static em_status shape_cast(em_call *c)
{
    em_dtype to = (em_dtype)c->p.i[0];
    if (em_dtype_size(to) == 0)
        return em__error(c->ctx, EM_ERR_DTYPE, "to: invalid dtype %d", (int)to);
    shape_same(c);
    c->out_dtype = to;
    return EM_OK;
}
static em_status bw_cast(em_bw *b)
{
    b->grad_in[0] = em_to_dtype(b->grad_out, b->in_dtype[0]);
    return EM_OK;
}
const em_op em__op_cast = {.name = "to", .grad_fn = "ToCopyBackward0", .arity = 1,
                           .kernel = K(copy), .shape = shape_cast, .forward = fw_kernel,
                           .backward = bw_cast};

/* self.copy_(src): in = {self, src}; out = src broadcast and cast to self's dtype.
 * dself = 0, dsrc = g (cast back to src's dtype). The shape is the broadcast of both, which
 * em__apply_inplace requires to be self's: src must broadcast to self ([2, 3] into [2, 1] is
 * PyTorch's "output with shape [2, 1] doesn't match the broadcast shape [2, 3]"). */
static em_status shape_copy_(em_call *c)
{
    em__tensor *self = c->in[0], *src = c->in[1];
    if (em__broadcast_shapes(c->ctx, "copy_", self->ndim, self->shape, src->ndim, src->shape,
                             &c->out_ndim, c->out_shape) != EM_OK)
        return em__failed(c->ctx);
    c->out_dtype = self->dtype;
    return EM_OK;
}
static em_status fw_copy_(em_call *c)
{
    em__tensor *in[1] = {c->in[1]};
    return em__launch(c->ctx, K(copy), c->out, in, 1, NULL, NULL);
}
static em_status bw_copy_(em_bw *b)
{
    if (b->needs[0])
        b->grad_in[0] = em_zeros_like(b->grad_out);
    if (b->needs[1])
        b->grad_in[1] = em_to_dtype(b->grad_out, b->in_dtype[1]);
    return EM_OK;
}
const em_op em__op_copy_ = {.name = "copy", .grad_fn = "CopyBackwards", .arity = 2,
                            .kernel = K(copy), .shape = shape_copy_, .forward = fw_copy_,
                            .backward = bw_copy_};

/* self.fill_(v) / zero_(): in = {self}; dself = 0. For an integer self, p.s[0] holds the
 * value already converted (em__scalar_checked), which a double represents exactly. An
 * expanded self is allowed, as PyTorch: its base is filled (em_op.writes_expanded). */
static em_status fw_fill(em_call *c)
{
    double v = c->p.s[0];
    return em__launch_fill(c->out, v, em_dtype_is_integer(c->out->dtype) ? (int64_t)v : 0);
}
static em_status bw_zero(em_bw *b)
{
    b->grad_in[0] = em_zeros_like(b->grad_out);
    return EM_OK;
}
const em_op em__op_fill_ = {.name = "fill", .grad_fn = "FillBackward2", .arity = 1,
                            .kernel = K(fill), .shape = shape_same, .forward = fw_fill,
                            .backward = bw_zero, .writes_expanded = true};
const em_op em__op_zero_ = {.name = "zero", .grad_fn = "ZeroBackward0", .arity = 1,
                            .kernel = K(fill), .shape = shape_same, .forward = fw_fill,
                            .backward = bw_zero, .writes_expanded = true};

/* ================================================================= public API */

static em_tensor *run(const em_op *op, em_tensor *a, em_tensor *b, em_tensor *c3, double s0)
{
    em_tensor *in[3] = {a, b, c3};
    em_op_params p;
    memset(&p, 0, sizeof p);
    p.s[0] = s0;
    return em__apply_h(op, in, op->arity, &p);
}

EMBER_API em_tensor *em_lt(em_tensor *a, em_tensor *b) { return run(&em__op_lt, a, b, NULL, 0); }
EMBER_API em_tensor *em_le(em_tensor *a, em_tensor *b) { return run(&em__op_le, a, b, NULL, 0); }
EMBER_API em_tensor *em_gt(em_tensor *a, em_tensor *b) { return run(&em__op_gt, a, b, NULL, 0); }
EMBER_API em_tensor *em_ge(em_tensor *a, em_tensor *b) { return run(&em__op_ge, a, b, NULL, 0); }
EMBER_API em_tensor *em_eq(em_tensor *a, em_tensor *b) { return run(&em__op_eq, a, b, NULL, 0); }
EMBER_API em_tensor *em_ne(em_tensor *a, em_tensor *b) { return run(&em__op_ne, a, b, NULL, 0); }

/* Compare with a scalar: in PyTorch's promoted dtype (em__scalar_result), the scalar a 0-dim
 * tensor of it (integers wrapped to the dtype, as PyTorch converts them: u8 < 300 compares
 * with 44), broadcast. */
static em_tensor *compare_scalar(const em_op *op, em_tensor *h, double s)
{
    em__tensor *a = em__obj(h);
    if (!a)
        return NULL;
    em_dtype dt = em__scalar_result(a->dtype, s);
    em__tensor *x = dt == a->dtype ? em__tensor_ref(a) : em__cast(a, dt);
    if (!x)
        return NULL;
    em__tensor *st = em__scalar_tensor(a->ctx, dt, s);
    em__tensor *r = NULL;
    if (st) {
        em__tensor *in[2] = {x, st};
        r = em__apply(op, in, 2, NULL);
    }
    em__tensor_unref(st);
    em__tensor_unref(x);
    return em__give(r);
}
EMBER_API em_tensor *em_lt_scalar(em_tensor *a, double s) { return compare_scalar(&em__op_lt, a, s); }
EMBER_API em_tensor *em_le_scalar(em_tensor *a, double s) { return compare_scalar(&em__op_le, a, s); }
EMBER_API em_tensor *em_gt_scalar(em_tensor *a, double s) { return compare_scalar(&em__op_gt, a, s); }
EMBER_API em_tensor *em_ge_scalar(em_tensor *a, double s) { return compare_scalar(&em__op_ge, a, s); }
EMBER_API em_tensor *em_eq_scalar(em_tensor *a, double s) { return compare_scalar(&em__op_eq, a, s); }
EMBER_API em_tensor *em_ne_scalar(em_tensor *a, double s) { return compare_scalar(&em__op_ne, a, s); }

EMBER_API em_tensor *em_where(em_tensor *cond, em_tensor *a, em_tensor *b)
{
    return run(&em__op_where, cond, a, b, 0);
}

/* The fill value as the kernels take it for t's dtype: converted and checked for integer
 * dtypes (PyTorch's "value cannot be converted to type uint8_t without overflow"). */
static em_status fill_value(em_tensor *h, const char *what, double v, double *out)
{
    *out = v;
    em__tensor *t = em__obj_quiet(h);
    if (!t || !em_dtype_is_integer(t->dtype))
        return EM_OK;
    int64_t iv;
    em_status st = em__scalar_checked(t->ctx, what, t->dtype, v, &iv);
    *out = (double)iv;
    return st;
}

EMBER_API em_tensor *em_masked_fill(em_tensor *a, em_tensor *mask, double value)
{
    double v;
    if (fill_value(a, "masked_fill", value, &v) != EM_OK)
        return NULL;
    return run(&em__op_masked_fill, a, mask, NULL, v);
}

static em_status all_true(em__tensor *mask, bool *out)
{
    if (mask->dtype != EM_BOOL)
        return em__error(mask->ctx, EM_ERR_DTYPE, "em_all: expected a bool tensor, got %s",
                         em_dtype_name(mask->dtype));
    int64_t n = em__numel(mask->ndim, mask->shape);
    uint8_t *h = em__malloc((size_t)(n ? n : 1));
    if (!h)
        return em__error(mask->ctx, EM_ERR_OOM, "em_all: out of memory");
    em_status st = em__to_host_as(mask, EM_BOOL, h);
    if (st == EM_OK) {
        *out = true;
        for (int64_t i = 0; i < n; i++)
            if (!h[i]) {
                *out = false;
                break;
            }
    }
    free(h);
    return st;
}

EMBER_API em_status em_all(em_tensor *mask_h, bool *out)
{
    if (!mask_h)
        return em__error_global(EM_ERR_INVALID, "em_all: NULL tensor");
    em__tensor *mask = em__obj(mask_h);
    if (!mask)
        return EM_ERR_FREED;
    if (!out)
        return em__error(mask->ctx, EM_ERR_INVALID, "em_all: out is NULL");
    return all_true(mask, out);
}

EMBER_API em_status em_equal(em_tensor *ah, em_tensor *bh, bool *out)
{
    if (!ah || !bh)
        return em__error_global(EM_ERR_INVALID, "em_equal: NULL tensor");
    em__tensor *a = em__obj(ah), *b = em__obj(bh);
    if (!a || !b)
        return EM_ERR_FREED;
    if (!out)
        return em__error(a->ctx, EM_ERR_INVALID, "em_equal: out is NULL");
    *out = false;
    if (a->ndim != b->ndim || memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->ndim))
        return EM_OK;
    em__tensor *in[2] = {a, b};
    em__tensor *m = em__apply(&em__op_eq, in, 2, NULL);
    if (!m)
        return em__failed(a->ctx);
    em_status st = all_true(m, out);
    em__tensor_unref(m);
    return st;
}

/* ----------------------------------------------------------------- in-place */

static em_status inplace(const em_op *op, em_tensor *self, em_tensor *other, double s0)
{
    em_tensor *in[2] = {self, other};
    em_op_params p;
    memset(&p, 0, sizeof p);
    p.s[0] = s0;
    return em__apply_inplace_h(op, self, in, op->arity, &p);
}

EMBER_API em_status em_zero_(em_tensor *self) { return inplace(&em__op_zero_, self, NULL, 0); }
EMBER_API em_status em_copy_(em_tensor *self, em_tensor *src) { return inplace(&em__op_copy_, self, src, 0); }

EMBER_API em_status em_fill_(em_tensor *self, double value)
{
    double v;
    em_status st = fill_value(self, "fill_", value, &v);
    return st != EM_OK ? st : inplace(&em__op_fill_, self, NULL, v);
}

EMBER_API em_status em_masked_fill_(em_tensor *self, em_tensor *mask, double value)
{
    double v;
    em_status st = fill_value(self, "masked_fill_", value, &v);
    return st != EM_OK ? st : inplace(&em__op_masked_fill, self, mask, v);
}
