/* core/ops/elementwise.c — elementwise ops: each is one descriptor {name, grad_fn, arity,
 * shape rule, forward, backward}, forward and backward side by side. Forwards lower to
 * one backend kernel (em__launch broadcasts and coalesces); backwards are written with
 * the public API, so they run on whatever backend the tensors live on.
 *
 * Shape legend: a, b broadcast to out; g has out's shape; the engine sums each input's
 * gradient back to that input's shape. */
#include "config.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define K(field) EM_KERNEL_OFFSET(field)

static bool is_float(em_dtype dt)
{
    return dt == EM_F32 || dt == EM_F64;
}

/* ----------------------------------------------------------------- shape rules */

static em_status need_float(em_call *c, const em__tensor *t)
{
    if (!is_float(t->dtype))
        return em__error(c->ctx, EM_ERR_DTYPE, "%s: expected a floating point tensor (f32 or f64), "
                         "got %s", c->op->name, em_dtype_name(t->dtype));
    return EM_OK;
}

static em_status same_dtype(em_call *c, const em__tensor *a, const em__tensor *b)
{
    if (a->dtype != b->dtype)
        return em__error(c->ctx, EM_ERR_DTYPE, "%s: dtypes differ (%s and %s); convert one with "
                         "em_to_dtype", c->op->name, em_dtype_name(a->dtype), em_dtype_name(b->dtype));
    return EM_OK;
}

static em_status shape_unary_float(em_call *c)
{
    em__tensor *a = c->in[0];
    if (need_float(c, a))
        return c->ctx->status;
    c->out_ndim = a->ndim;
    memcpy(c->out_shape, a->shape, sizeof(int64_t) * (size_t)a->ndim);
    c->out_dtype = a->dtype;
    return EM_OK;
}

static em_status shape_broadcast(em_call *c)
{
    int n = c->in[0]->ndim;
    int64_t shape[EM_MAX_DIMS];
    memcpy(shape, c->in[0]->shape, sizeof(int64_t) * (size_t)n);
    for (int i = 1; i < c->n_in; i++) {
        int64_t tmp[EM_MAX_DIMS];
        int nt;
        if (em__broadcast_shapes(c->ctx, c->op->name, n, shape, c->in[i]->ndim, c->in[i]->shape,
                                 &nt, tmp) != EM_OK)
            return c->ctx->status;
        n = nt;
        memcpy(shape, tmp, sizeof(int64_t) * (size_t)n);
    }
    c->out_ndim = n;
    memcpy(c->out_shape, shape, sizeof(int64_t) * (size_t)n);
    return EM_OK;
}

static em_status shape_binary_float(em_call *c)
{
    if (need_float(c, c->in[0]) || same_dtype(c, c->in[0], c->in[1]))
        return c->ctx->status;
    c->out_dtype = c->in[0]->dtype;
    return shape_broadcast(c);
}

static em_status shape_compare(em_call *c)
{
    if (same_dtype(c, c->in[0], c->in[1]))
        return c->ctx->status;
    c->out_dtype = EM_BOOL;
    return shape_broadcast(c);
}

static em_status shape_where(em_call *c)
{
    if (c->in[0]->dtype != EM_BOOL)
        return em__error(c->ctx, EM_ERR_DTYPE, "where: condition must be a bool tensor, got %s",
                         em_dtype_name(c->in[0]->dtype));
    if (same_dtype(c, c->in[1], c->in[2]))
        return c->ctx->status;
    c->out_dtype = c->in[1]->dtype;
    return shape_broadcast(c);
}

static em_status shape_masked_fill(em_call *c)
{
    if (c->in[1]->dtype != EM_BOOL)
        return em__error(c->ctx, EM_ERR_DTYPE, "masked_fill: mask must be a bool tensor, got %s",
                         em_dtype_name(c->in[1]->dtype));
    c->out_dtype = c->in[0]->dtype;
    return shape_broadcast(c);
}

/* ----------------------------------------------------------------- forward */

/* One kernel over out and the inputs, scalars from params. */
static em_status fw_kernel(em_call *c)
{
    return em__launch(c->ctx, c->op->kernel, c->out, c->in, c->n_in, c->p.s, NULL);
}

/* ----------------------------------------------------------------- helpers for backward */

/* The fused backward kernel if the backend has it (result in the current scope), else NULL
 * with *missing set so the caller composes it from other ops. */
static em_tensor *fused(const em_op *op, em_tensor *g, em_tensor *x, double p0, double p1,
                        bool *missing)
{
    em__tensor *go = em__obj(g), *xo = em__obj(x);
    /* compose, never fall back: the kernel must be native for every dtype involved */
    *missing = !go || !xo || !em__kernel_native(go->ctx, op->kernel, go->dtype);
    if (*missing)
        return NULL;
    em_op_params p;
    memset(&p, 0, sizeof p);
    p.s[0] = p0;
    p.s[1] = p1;
    em__tensor *in[2] = {go, xo};
    return em__give(em__apply(op, in, 2, &p));
}

static em_tensor *zero_like_scalar(em_tensor *g)
{
    return em_scalar(em_tensor_context(g), em_tensor_dtype(g), 0.0);
}

#define PASS(b) em__dup((b)->grad_out)

/* ----------------------------------------------------------------- binary arithmetic */

#define DEFINE_OP(ident, opname, gradname, nargs, saves_, shape_fn, kern, bw)                     \
    const em_op em__op_##ident = {.name = opname, .grad_fn = gradname, .arity = nargs,            \
                                  .saves = saves_, .kernel = kern, .shape = shape_fn,             \
                                  .forward = fw_kernel, .backward = bw}

/* add: out = a + b;  da = g, db = g */
static em_status bw_add(em_bw *b)
{
    b->grad_in[0] = b->needs[0] ? PASS(b) : NULL;
    b->grad_in[1] = b->needs[1] ? PASS(b) : NULL;
    return EM_OK;
}
DEFINE_OP(add, "add", "AddBackward0", 2, 0, shape_binary_float, K(add), bw_add);

/* sub: out = a - b;  da = g, db = -g */
static em_status bw_sub(em_bw *b)
{
    b->grad_in[0] = b->needs[0] ? PASS(b) : NULL;
    b->grad_in[1] = b->needs[1] ? em_neg(b->grad_out) : NULL;
    return EM_OK;
}
DEFINE_OP(sub, "sub", "SubBackward0", 2, 0, shape_binary_float, K(sub), bw_sub);

/* mul: out = a * b;  da = g * b, db = g * a */
static em_status bw_mul(em_bw *b)
{
    b->grad_in[0] = b->needs[0] ? em_mul(b->grad_out, b->saved[1]) : NULL;
    b->grad_in[1] = b->needs[1] ? em_mul(b->grad_out, b->saved[0]) : NULL;
    return EM_OK;
}
DEFINE_OP(mul, "mul", "MulBackward0", 2, EM_SAVE_IN(0) | EM_SAVE_IN(1), shape_binary_float,
          K(mul), bw_mul);

/* div: out = a / b;  da = g / b, db = -g * a / (b * b) */
static em_status bw_div(em_bw *b)
{
    em_tensor *g = b->grad_out, *x = b->saved[0], *y = b->saved[1];
    b->grad_in[0] = b->needs[0] ? em_div(g, y) : NULL;
    b->grad_in[1] = b->needs[1] ? em_div(em_mul(em_neg(g), x), em_mul(y, y)) : NULL;
    return EM_OK;
}
DEFINE_OP(div, "div", "DivBackward0", 2, EM_SAVE_IN(0) | EM_SAVE_IN(1), shape_binary_float,
          K(div), bw_div);

/* maximum/minimum: the gradient goes to the selected operand, split evenly on ties. */
static em_status bw_maxmin(em_bw *b, bool is_max)
{
    em_tensor *g = b->grad_out, *x = b->saved[0], *y = b->saved[1];
    em_tensor *base = em_where(em_eq(x, y), em_mul_scalar(g, 0.5), g);
    if (b->needs[0])
        b->grad_in[0] = em_masked_fill(base, is_max ? em_lt(x, y) : em_gt(x, y), 0.0);
    if (b->needs[1])
        b->grad_in[1] = em_masked_fill(base, is_max ? em_gt(x, y) : em_lt(x, y), 0.0);
    return EM_OK;
}
static em_status bw_maximum(em_bw *b) { return bw_maxmin(b, true); }
static em_status bw_minimum(em_bw *b) { return bw_maxmin(b, false); }
DEFINE_OP(maximum, "maximum", "MaximumBackward0", 2, EM_SAVE_IN(0) | EM_SAVE_IN(1),
          shape_binary_float, K(maximum), bw_maximum);
DEFINE_OP(minimum, "minimum", "MinimumBackward0", 2, EM_SAVE_IN(0) | EM_SAVE_IN(1),
          shape_binary_float, K(minimum), bw_minimum);

/* ----------------------------------------------------------------- with a scalar s = p.s[0] */

/* a + s, a - s (lowered to add_scalar with -s, which is exact) */
static em_status bw_pass(em_bw *b)
{
    b->grad_in[0] = PASS(b);
    return EM_OK;
}
DEFINE_OP(add_scalar, "add", "AddBackward0", 1, 0, shape_unary_float, K(add_scalar), bw_pass);
DEFINE_OP(sub_scalar, "sub", "SubBackward0", 1, 0, shape_unary_float, K(add_scalar), bw_pass);

/* s - a:  da = -g */
static em_status bw_rsub_scalar(em_bw *b)
{
    b->grad_in[0] = em_neg(b->grad_out);
    return EM_OK;
}
DEFINE_OP(rsub_scalar, "rsub", "RsubBackward1", 1, 0, shape_unary_float, K(rsub_scalar),
          bw_rsub_scalar);

/* a * s:  da = g * s */
static em_status bw_mul_scalar(em_bw *b)
{
    b->grad_in[0] = em_mul_scalar(b->grad_out, b->p->s[0]);
    return EM_OK;
}
DEFINE_OP(mul_scalar, "mul", "MulBackward0", 1, 0, shape_unary_float, K(mul_scalar), bw_mul_scalar);

/* a / s:  da = g / s */
static em_status bw_div_scalar(em_bw *b)
{
    b->grad_in[0] = em_div_scalar(b->grad_out, b->p->s[0]);
    return EM_OK;
}
DEFINE_OP(div_scalar, "div", "DivBackward0", 1, 0, shape_unary_float, K(div_scalar), bw_div_scalar);

/* s / a:  da = -s * g / (a * a)   (PyTorch computes it as s * reciprocal(a): MulBackward0) */
static em_status bw_rdiv_scalar(em_bw *b)
{
    em_tensor *x = b->saved[0];
    b->grad_in[0] = em_mul_scalar(em_div(b->grad_out, em_mul(x, x)), -b->p->s[0]);
    return EM_OK;
}
DEFINE_OP(rdiv_scalar, "rdiv", "MulBackward0", 1, EM_SAVE_IN(0), shape_unary_float,
          K(rdiv_scalar), bw_rdiv_scalar);

/* a ** p:  da = g * p * a ** (p - 1), and 0 when p == 0 */
DEFINE_OP(pow_bw, "pow_backward", NULL, 2, 0, shape_binary_float, K(pow_backward), NULL);
static em_status bw_pow_scalar(em_bw *b)
{
    double e = b->p->s[0];
    em_tensor *g = b->grad_out, *x = b->saved[0];
    if (e == 0.0) {
        b->grad_in[0] = em_zeros_like(g);
        return EM_OK;
    }
    bool missing;
    b->grad_in[0] = fused(&em__op_pow_bw, g, x, e, 0, &missing);
    if (missing)
        b->grad_in[0] = em_mul(g, em_mul_scalar(em_pow(x, e - 1.0), e));
    return EM_OK;
}
DEFINE_OP(pow_scalar, "pow", "PowBackward0", 1, EM_SAVE_IN(0), shape_unary_float, K(pow_scalar),
          bw_pow_scalar);

/* ----------------------------------------------------------------- unary */

/* -a:  da = -g */
static em_status bw_neg(em_bw *b)
{
    b->grad_in[0] = em_neg(b->grad_out);
    return EM_OK;
}
DEFINE_OP(neg, "neg", "NegBackward0", 1, 0, shape_unary_float, K(neg), bw_neg);

/* y = exp(a):  da = g * y */
static em_status bw_exp(em_bw *b)
{
    b->grad_in[0] = em_mul(b->grad_out, b->saved[3]);
    return EM_OK;
}
DEFINE_OP(exp, "exp", "ExpBackward0", 1, EM_SAVE_OUT, shape_unary_float, K(exp), bw_exp);

/* log(a):  da = g / a */
static em_status bw_log(em_bw *b)
{
    b->grad_in[0] = em_div(b->grad_out, b->saved[0]);
    return EM_OK;
}
DEFINE_OP(log, "log", "LogBackward0", 1, EM_SAVE_IN(0), shape_unary_float, K(log), bw_log);

/* y = sqrt(a):  da = g / (2 y) */
static em_status bw_sqrt(em_bw *b)
{
    b->grad_in[0] = em_div(b->grad_out, em_mul_scalar(b->saved[3], 2.0));
    return EM_OK;
}
DEFINE_OP(sqrt, "sqrt", "SqrtBackward0", 1, EM_SAVE_OUT, shape_unary_float, K(sqrt), bw_sqrt);

/* |a|:  da = g * sign(a), sign(0) = sign(NaN) = 0 */
static em_status bw_abs(em_bw *b)
{
    em_tensor *g = b->grad_out, *x = b->saved[0];
    em_tensor *pos = em_masked_fill(g, em_le_scalar(x, 0.0), 0.0);
    em_tensor *neg = em_masked_fill(g, em_ge_scalar(x, 0.0), 0.0);
    b->grad_in[0] = em_sub(pos, neg);
    return EM_OK;
}
DEFINE_OP(abs, "abs", "AbsBackward0", 1, EM_SAVE_IN(0), shape_unary_float, K(abs), bw_abs);

/* y = relu(a):  da = y <= 0 ? 0 : g */
DEFINE_OP(relu_bw, "relu_backward", NULL, 2, 0, shape_binary_float, K(relu_backward), NULL);
static em_status bw_relu(em_bw *b)
{
    bool missing;
    b->grad_in[0] = fused(&em__op_relu_bw, b->grad_out, b->saved[3], 0, 0, &missing);
    if (missing)
        b->grad_in[0] = em_masked_fill(b->grad_out, em_le_scalar(b->saved[3], 0.0), 0.0);
    return EM_OK;
}
DEFINE_OP(relu, "relu", "ReluBackward0", 1, EM_SAVE_OUT, shape_unary_float, K(relu), bw_relu);

/* y = tanh(a):  da = g * (1 - y^2) */
DEFINE_OP(tanh_bw, "tanh_backward", NULL, 2, 0, shape_binary_float, K(tanh_backward), NULL);
static em_status bw_tanh(em_bw *b)
{
    bool missing;
    em_tensor *y = b->saved[3];
    b->grad_in[0] = fused(&em__op_tanh_bw, b->grad_out, y, 0, 0, &missing);
    if (missing)
        b->grad_in[0] = em_mul(b->grad_out, em_rsub_scalar(em_mul(y, y), 1.0));
    return EM_OK;
}
DEFINE_OP(tanh, "tanh", "TanhBackward0", 1, EM_SAVE_OUT, shape_unary_float, K(tanh), bw_tanh);

/* y = sigmoid(a):  da = g * (1 - y) * y */
DEFINE_OP(sigmoid_bw, "sigmoid_backward", NULL, 2, 0, shape_binary_float, K(sigmoid_backward), NULL);
static em_status bw_sigmoid(em_bw *b)
{
    bool missing;
    em_tensor *y = b->saved[3];
    b->grad_in[0] = fused(&em__op_sigmoid_bw, b->grad_out, y, 0, 0, &missing);
    if (missing)
        b->grad_in[0] = em_mul(b->grad_out, em_mul(em_rsub_scalar(y, 1.0), y));
    return EM_OK;
}
DEFINE_OP(sigmoid, "sigmoid", "SigmoidBackward0", 1, EM_SAVE_OUT, shape_unary_float, K(sigmoid),
          bw_sigmoid);

/* clamp(a, lo, hi), bounds in p.s[0..1] (+-inf when absent):  da = lo <= a <= hi ? g : 0 */
DEFINE_OP(clamp_bw, "clamp_backward", NULL, 2, 0, shape_binary_float, K(clamp_backward), NULL);
static em_status bw_clamp(em_bw *b)
{
    bool missing;
    em_tensor *g = b->grad_out, *x = b->saved[0];
    double lo = b->p->s[0], hi = b->p->s[1];
    b->grad_in[0] = fused(&em__op_clamp_bw, g, x, lo, hi, &missing);
    if (missing)
        b->grad_in[0] = em_masked_fill(em_masked_fill(g, em_lt_scalar(x, lo), 0.0),
                                       em_gt_scalar(x, hi), 0.0);
    return EM_OK;
}
DEFINE_OP(clamp, "clamp", "ClampBackward1", 1, EM_SAVE_IN(0), shape_unary_float, K(clamp), bw_clamp);
DEFINE_OP(clamp_min, "clamp_min", "ClampMinBackward0", 1, EM_SAVE_IN(0), shape_unary_float,
          K(clamp), bw_clamp);
DEFINE_OP(clamp_max, "clamp_max", "ClampMaxBackward0", 1, EM_SAVE_IN(0), shape_unary_float,
          K(clamp), bw_clamp);

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
        b->grad_in[1] = em_where(cond, g, zero_like_scalar(g));
    if (b->needs[2])
        b->grad_in[2] = em_masked_fill(g, cond, 0.0);
    return EM_OK;
}
DEFINE_OP(where, "where", "WhereBackward0", 3, EM_SAVE_IN(0), shape_where, K(where), bw_where);

/* masked_fill(a, mask, v):  da = mask ? 0 : g */
static em_status bw_masked_fill(em_bw *b)
{
    b->grad_in[0] = em_masked_fill(b->grad_out, b->saved[1], 0.0);
    return EM_OK;
}
DEFINE_OP(masked_fill, "masked_fill", "MaskedFillBackward0", 2, EM_SAVE_IN(1), shape_masked_fill,
          K(masked_fill), bw_masked_fill);

/* ----------------------------------------------------------------- copies and fills */

static em_status shape_same(em_call *c)
{
    em__tensor *a = c->in[0];
    c->out_ndim = a->ndim;
    memcpy(c->out_shape, a->shape, sizeof(int64_t) * (size_t)a->ndim);
    c->out_dtype = a->dtype;
    return EM_OK;
}

/* clone: out = a (contiguous);  da = g */
DEFINE_OP(clone, "clone", "CloneBackward0", 1, 0, shape_same, K(copy), bw_pass);

/* cast to dtype p.i[0]:  da = g cast back */
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
 * dself = 0, dsrc = g (cast back to src's dtype) */
static em_status shape_copy_(em_call *c)
{
    em__tensor *self = c->in[0], *src = c->in[1];
    int64_t tmp[EM_MAX_DIMS];
    int nt;
    if (em__broadcast_shapes(c->ctx, "copy_", self->ndim, self->shape, src->ndim, src->shape,
                             &nt, tmp) != EM_OK)
        return c->ctx->status;
    c->out_ndim = self->ndim;
    memcpy(c->out_shape, self->shape, sizeof(int64_t) * (size_t)self->ndim);
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

/* self.fill_(v) / zero_(): in = {self}; dself = 0 */
static em_status fw_fill(em_call *c)
{
    return em__launch(c->ctx, K(fill), c->out, NULL, 0, c->p.s, NULL);
}
static em_status bw_zero(em_bw *b)
{
    b->grad_in[0] = em_zeros_like(b->grad_out);
    return EM_OK;
}
const em_op em__op_fill_ = {.name = "fill", .grad_fn = "FillBackward2", .arity = 1,
                            .kernel = K(fill), .shape = shape_same, .forward = fw_fill,
                            .backward = bw_zero};
const em_op em__op_zero_ = {.name = "zero", .grad_fn = "ZeroBackward0", .arity = 1,
                            .kernel = K(fill), .shape = shape_same, .forward = fw_fill,
                            .backward = bw_zero};

/* ================================================================= public API */

static em_tensor *run(const em_op *op, em_tensor *a, em_tensor *b, em_tensor *c3, double s0,
                      double s1)
{
    em_tensor *in[3] = {a, b, c3};
    em_op_params p;
    memset(&p, 0, sizeof p);
    p.s[0] = s0;
    p.s[1] = s1;
    return em__apply_h(op, in, op->arity, &p);
}

EMBER_API em_tensor *em_add(em_tensor *a, em_tensor *b) { return run(&em__op_add, a, b, NULL, 0, 0); }
EMBER_API em_tensor *em_sub(em_tensor *a, em_tensor *b) { return run(&em__op_sub, a, b, NULL, 0, 0); }
EMBER_API em_tensor *em_mul(em_tensor *a, em_tensor *b) { return run(&em__op_mul, a, b, NULL, 0, 0); }
EMBER_API em_tensor *em_div(em_tensor *a, em_tensor *b) { return run(&em__op_div, a, b, NULL, 0, 0); }
EMBER_API em_tensor *em_maximum(em_tensor *a, em_tensor *b) { return run(&em__op_maximum, a, b, NULL, 0, 0); }
EMBER_API em_tensor *em_minimum(em_tensor *a, em_tensor *b) { return run(&em__op_minimum, a, b, NULL, 0, 0); }

EMBER_API em_tensor *em_add_scalar(em_tensor *a, double s) { return run(&em__op_add_scalar, a, NULL, NULL, s, 0); }
EMBER_API em_tensor *em_sub_scalar(em_tensor *a, double s) { return run(&em__op_sub_scalar, a, NULL, NULL, -s, 0); }
EMBER_API em_tensor *em_rsub_scalar(em_tensor *a, double s) { return run(&em__op_rsub_scalar, a, NULL, NULL, s, 0); }
EMBER_API em_tensor *em_mul_scalar(em_tensor *a, double s) { return run(&em__op_mul_scalar, a, NULL, NULL, s, 0); }
EMBER_API em_tensor *em_div_scalar(em_tensor *a, double s) { return run(&em__op_div_scalar, a, NULL, NULL, s, 0); }
EMBER_API em_tensor *em_rdiv_scalar(em_tensor *a, double s) { return run(&em__op_rdiv_scalar, a, NULL, NULL, s, 0); }
EMBER_API em_tensor *em_pow(em_tensor *a, double e) { return run(&em__op_pow_scalar, a, NULL, NULL, e, 0); }

EMBER_API em_tensor *em_neg(em_tensor *a) { return run(&em__op_neg, a, NULL, NULL, 0, 0); }
EMBER_API em_tensor *em_exp(em_tensor *a) { return run(&em__op_exp, a, NULL, NULL, 0, 0); }
EMBER_API em_tensor *em_log(em_tensor *a) { return run(&em__op_log, a, NULL, NULL, 0, 0); }
EMBER_API em_tensor *em_sqrt(em_tensor *a) { return run(&em__op_sqrt, a, NULL, NULL, 0, 0); }
EMBER_API em_tensor *em_abs(em_tensor *a) { return run(&em__op_abs, a, NULL, NULL, 0, 0); }
EMBER_API em_tensor *em_relu(em_tensor *a) { return run(&em__op_relu, a, NULL, NULL, 0, 0); }
EMBER_API em_tensor *em_tanh(em_tensor *a) { return run(&em__op_tanh, a, NULL, NULL, 0, 0); }
EMBER_API em_tensor *em_sigmoid(em_tensor *a) { return run(&em__op_sigmoid, a, NULL, NULL, 0, 0); }

static em_tensor *clamp_checked(const em_op *op, em_tensor *a, double lo, double hi)
{
    em__tensor *t = em__obj(a);
    if (!t)
        return NULL;
    if (isnan(lo) || isnan(hi))
        return em__error(t->ctx, EM_ERR_INVALID, "%s: bounds must not be NaN (use "
                         "em_clamp_min/em_clamp_max for one-sided clamps)", op->name), NULL;
    return run(op, a, NULL, NULL, lo, hi);
}
EMBER_API em_tensor *em_clamp(em_tensor *a, double lo, double hi) { return clamp_checked(&em__op_clamp, a, lo, hi); }
EMBER_API em_tensor *em_clamp_min(em_tensor *a, double lo) { return clamp_checked(&em__op_clamp_min, a, lo, INFINITY); }
EMBER_API em_tensor *em_clamp_max(em_tensor *a, double hi) { return clamp_checked(&em__op_clamp_max, a, -INFINITY, hi); }

EMBER_API em_tensor *em_lt(em_tensor *a, em_tensor *b) { return run(&em__op_lt, a, b, NULL, 0, 0); }
EMBER_API em_tensor *em_le(em_tensor *a, em_tensor *b) { return run(&em__op_le, a, b, NULL, 0, 0); }
EMBER_API em_tensor *em_gt(em_tensor *a, em_tensor *b) { return run(&em__op_gt, a, b, NULL, 0, 0); }
EMBER_API em_tensor *em_ge(em_tensor *a, em_tensor *b) { return run(&em__op_ge, a, b, NULL, 0, 0); }
EMBER_API em_tensor *em_eq(em_tensor *a, em_tensor *b) { return run(&em__op_eq, a, b, NULL, 0, 0); }
EMBER_API em_tensor *em_ne(em_tensor *a, em_tensor *b) { return run(&em__op_ne, a, b, NULL, 0, 0); }

/* Compare with a scalar: the scalar becomes a 0-dim tensor of a's dtype, broadcast. */
static em_tensor *compare_scalar(const em_op *op, em_tensor *h, double s)
{
    em__tensor *a = em__obj(h);
    if (!a)
        return NULL;
    em__tensor *st = em__tensor_new(a->ctx, a->dtype, 0, NULL);
    if (!st)
        return NULL;
    double p[4] = {s, 0, 0, 0};
    em__tensor *r = NULL;
    if (em__launch(a->ctx, K(fill), st, NULL, 0, p, NULL) == EM_OK) {
        em__tensor *in[2] = {a, st};
        r = em__apply(op, in, 2, NULL);
    }
    em__tensor_unref(st);
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
    return run(&em__op_where, cond, a, b, 0, 0);
}

EMBER_API em_tensor *em_masked_fill(em_tensor *a, em_tensor *mask, double value)
{
    return run(&em__op_masked_fill, a, mask, NULL, value, 0);
}

static em_status all_true(em__tensor *mask, bool *out)
{
    if (mask->dtype != EM_BOOL)
        return em__error(mask->ctx, EM_ERR_DTYPE, "em_all: expected a bool tensor, got %s",
                         em_dtype_name(mask->dtype));
    int64_t n = em__numel(mask->ndim, mask->shape);
    uint8_t *h = em__malloc((size_t)n);
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
    if (!mask_h || !out)
        return em__error_global(EM_ERR_INVALID, "em_all: NULL argument");
    em__tensor *mask = em__obj(mask_h);
    return mask ? all_true(mask, out) : EM_ERR_FREED;
}

EMBER_API em_status em_equal(em_tensor *ah, em_tensor *bh, bool *out)
{
    if (!ah || !bh || !out)
        return em__error_global(EM_ERR_INVALID, "em_equal: NULL argument");
    em__tensor *a = em__obj(ah), *b = em__obj(bh);
    if (!a || !b)
        return EM_ERR_FREED;
    *out = false;
    if (a->ndim != b->ndim || memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->ndim))
        return EM_OK;
    em__tensor *in[2] = {a, b};
    em__tensor *m = em__apply(&em__op_eq, in, 2, NULL);
    if (!m)
        return a->ctx->status;
    em_status st = all_true(m, out);
    em__tensor_unref(m);
    return st;
}

/* ----------------------------------------------------------------- in-place */

static em_status inplace(const em_op *op, em_tensor *self, em_tensor *other, double s0, double s1)
{
    em_tensor *in[3] = {self, other, NULL};
    em_op_params p;
    memset(&p, 0, sizeof p);
    p.s[0] = s0;
    p.s[1] = s1;
    return em__apply_inplace_h(op, self, in, op->arity, &p);
}

EMBER_API em_status em_add_(em_tensor *self, em_tensor *other) { return inplace(&em__op_add, self, other, 0, 0); }
EMBER_API em_status em_sub_(em_tensor *self, em_tensor *other) { return inplace(&em__op_sub, self, other, 0, 0); }
EMBER_API em_status em_mul_(em_tensor *self, em_tensor *other) { return inplace(&em__op_mul, self, other, 0, 0); }
EMBER_API em_status em_add_scalar_(em_tensor *self, double s) { return inplace(&em__op_add_scalar, self, NULL, s, 0); }
EMBER_API em_status em_mul_scalar_(em_tensor *self, double s) { return inplace(&em__op_mul_scalar, self, NULL, s, 0); }
EMBER_API em_status em_zero_(em_tensor *self) { return inplace(&em__op_zero_, self, NULL, 0, 0); }
EMBER_API em_status em_fill_(em_tensor *self, double v) { return inplace(&em__op_fill_, self, NULL, v, 0); }
EMBER_API em_status em_copy_(em_tensor *self, em_tensor *src) { return inplace(&em__op_copy_, self, src, 0, 0); }
EMBER_API em_status em_masked_fill_(em_tensor *self, em_tensor *mask, double v)
{
    return inplace(&em__op_masked_fill, self, mask, v, 0);
}
EMBER_API em_status em_clamp_(em_tensor *self, double lo, double hi)
{
    em__tensor *t = em__obj(self);
    if (t && (isnan(lo) || isnan(hi)))
        return em__error(t->ctx, EM_ERR_INVALID, "clamp_: bounds must not be NaN");
    return inplace(&em__op_clamp, self, NULL, lo, hi);
}
