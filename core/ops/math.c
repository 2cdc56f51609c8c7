/* core/ops/math.c — the math vocabulary beyond basic arithmetic: log1p, expm1, sin, cos, erf,
 * reciprocal, sign, floor/ceil/round, pow with a tensor exponent, clamp with tensor bounds,
 * floor division and remainder, and their in-place forms. Forward is one kernel each (clamp
 * with tensor bounds: maximum then minimum); backward follows PyTorch's derivatives.yaml
 * (what it saves included) and records PyTorch 1.13's grad_fn names.
 *
 * Dtypes, as PyTorch: log1p, expm1, sin, cos, erf and reciprocal of an integer or bool tensor
 * give f32; sign takes every dtype (bool: a copy); floor, ceil and round of an integer tensor
 * are a copy (bool is an error); floor_divide and remainder take floats and integers (the
 * scalar forms promote as em__scalar_result; an integer division by zero is
 * EM_ERR_INVALID "ZeroDivisionError", checked before any kernel runs, none when the result
 * is empty); pow_tensor and clamp with tensor bounds need operands of one dtype (pow_tensor:
 * floats only, an integer exponent tensor is EM_ERR_DTYPE). floor_divide is not differentiable: as in PyTorch its
 * result carries grad_fn NotImplemented and backward through it fails. */
#include "config.h"
#include "internal.h"

#include <math.h>
#include <string.h>

#define K(field) EM_KERNEL_OFFSET(field)

static bool is_float(em_dtype dt)
{
    return em_dtype_is_floating(dt);
}

/* ----------------------------------------------------------------- shape rules */

static void same_shape(em_call *c, em_dtype dt)
{
    em__tensor *a = c->in[0];
    c->out_ndim = a->ndim;
    memcpy(c->out_shape, a->shape, sizeof(int64_t) * (size_t)a->ndim);
    c->out_dtype = dt;
}

static em_status no_bool(em_call *c, const em__tensor *t)
{
    if (t->dtype == EM_BOOL)
        return em__error(c->ctx, EM_ERR_DTYPE, "%s: not implemented for bool tensors; convert "
                         "with em_to_dtype", c->op->name);
    return EM_OK;
}

/* log1p, ...: floats keep their dtype, integers and bool give f32 */
static em_status shape_to_float(em_call *c)
{
    em_dtype dt = c->in[0]->dtype;
    same_shape(c, is_float(dt) ? dt : EM_F32);
    return EM_OK;
}

static em_status shape_same(em_call *c)
{
    same_shape(c, c->in[0]->dtype);
    return EM_OK;
}

static em_status shape_rounding(em_call *c)
{
    if (no_bool(c, c->in[0]))
        return em__failed(c->ctx);
    same_shape(c, c->in[0]->dtype);
    return EM_OK;
}

/* tensor-tensor: one dtype, not bool; floats only when `floats` */
static em_status shape_binary(em_call *c, bool floats)
{
    for (int i = 1; i < c->n_in; i++)
        if (em__same_dtype(c, c->in[0], c->in[i]))
            return em__failed(c->ctx);
    if (no_bool(c, c->in[0]))
        return em__failed(c->ctx);
    if (floats && !is_float(c->in[0]->dtype))
        return em__error(c->ctx, EM_ERR_DTYPE, "%s: expected floating point tensors (f32 or f64), "
                         "got %s; convert with em_to_dtype", c->op->name,
                         em_dtype_name(c->in[0]->dtype));
    c->out_dtype = c->in[0]->dtype;
    return em__shape_broadcast(c);
}
static em_status shape_binary_any(em_call *c) { return shape_binary(c, false); }
static em_status shape_binary_float(em_call *c) { return shape_binary(c, true); }

/* tensor // s, tensor % s: PyTorch's promotion with a scalar */
static em_status shape_div_scalar(em_call *c)
{
    same_shape(c, em__scalar_result(c->in[0]->dtype, c->p.s[0]));
    return EM_OK;
}

/* ----------------------------------------------------------------- forwards */

/* The op's kernel over out and the inputs cast to out's dtype, scalars from params. */
static em_status fw_kernel(em_call *c)
{
    em__tensor *in[EM_MAX_ARITY], *tmp[EM_MAX_ARITY];
    em_status st = em__promoted_inputs(c, in, tmp);
    if (st == EM_OK)
        st = em__launch(c->ctx, c->op->kernel, c->out, in, c->n_in, c->p.s, NULL);
    em__release_tmp(tmp, c->n_in);
    return st;
}

/* out = a unchanged (an integer floor, a bool sign): the copy kernel, nothing in place */
static em_status copy_through(em_call *c)
{
    em__tensor *a = c->in[0], *o = c->out;
    if (a->storage == o->storage && a->offset == o->offset && a->ndim == o->ndim &&
        !memcmp(a->strides, o->strides, sizeof(int64_t) * (size_t)a->ndim))
        return EM_OK;
    em__tensor *in[1] = {a};
    return em__launch(c->ctx, K(copy), o, in, 1, NULL, NULL);
}

static em_status fw_rounding(em_call *c)
{
    return is_float(c->out_dtype) ? fw_kernel(c) : copy_through(c);
}

static em_status fw_sign(em_call *c)
{
    return c->out_dtype == EM_BOOL ? copy_through(c) : fw_kernel(c);
}

static em_status zero_division(em_call *c)
{
    return em__error(c->ctx, EM_ERR_INVALID, "%s: ZeroDivisionError (integer division by zero)",
                     c->op->name);
}

/* no element is divided when the result is empty: then a zero divisor is no error (as PyTorch) */
static bool out_empty(const em_call *c)
{
    return em__numel(c->out_ndim, c->out_shape) == 0;
}

/* floor_divide, remainder: an integer divisor is checked for zeros first */
static em_status fw_divmod(em_call *c)
{
    if (em_dtype_is_integer(c->out_dtype) && !out_empty(c)) {
        bool zero;
        em_status st = em__any_zero(c->in[1], &zero);
        if (st != EM_OK)
            return st;
        if (zero)
            return zero_division(c);
    }
    return fw_kernel(c);
}

/* tensor // s, tensor % s: the binary kernel with s as a 0-dim tensor of out's dtype */
static em_status fw_divmod_scalar(em_call *c)
{
    double s = c->p.s[0];   /* integral when out is an integer dtype: wrapped to it, as PyTorch */
    if (em_dtype_is_integer(c->out_dtype) && !out_empty(c) &&
        em__wrap_int(c->out_dtype, (int64_t)s) == 0)
        return zero_division(c);
    em__tensor *in[EM_MAX_ARITY], *tmp[EM_MAX_ARITY];
    em_status st = em__promoted_inputs(c, in, tmp);
    em__tensor *st_s = st == EM_OK ? em__scalar_tensor(c->ctx, c->out_dtype, s) : NULL;
    if (st == EM_OK && !st_s)
        st = em__failed(c->ctx);
    if (st == EM_OK) {
        in[1] = st_s;
        st = em__launch(c->ctx, c->op->kernel, c->out, in, 2, NULL, NULL);
    }
    em__tensor_unref(st_s);
    em__release_tmp(tmp, c->n_in);
    return st;
}

/* clamp with tensor bounds: out = minimum(maximum(a, lo), hi) (NaN anywhere propagates) */
static em_status fw_clamp_tensor(em_call *c)
{
    em__tensor *a = c->in[0];
    const em_op *op = c->op;
    em_status st = EM_OK;
    bool has_lo = op->arity == 3 || c->p.i[0] == 0, has_hi = op->arity == 3 || c->p.i[0] == 1;
    em__tensor *lo = has_lo ? c->in[1] : NULL;
    em__tensor *hi = has_hi ? c->in[op->arity == 3 ? 2 : 1] : NULL;
    if (lo) {
        em__tensor *in[2] = {a, lo};
        st = em__launch(c->ctx, K(maximum), c->out, in, 2, NULL, NULL);
        a = c->out;
    }
    if (st == EM_OK && hi) {
        em__tensor *in[2] = {a, hi};
        st = em__launch(c->ctx, K(minimum), c->out, in, 2, NULL, NULL);
    }
    return st;
}

/* ----------------------------------------------------------------- backwards */

#define DEFINE_OP(ident, opname, gradname, nargs, saves_, shape_fn, kern, fw, bw)                  \
    static const em_op op_##ident = {.name = opname, .grad_fn = gradname, .arity = nargs,         \
                                     .saves = saves_, .kernel = kern, .shape = shape_fn,          \
                                     .forward = fw, .backward = bw}
#define X(b) ((b)->saved[0])
#define Y(b) ((b)->saved[EM_MAX_ARITY])

static em_tensor *zero_scalar(em_tensor *g)
{
    return em_scalar(em_tensor_context(g), em_tensor_dtype(g), 0.0);
}

/* log1p(x):  dx = g / (x + 1) */
static em_status bw_log1p(em_bw *b)
{
    b->grad_in[0] = em_div(b->grad_out, em_add_scalar(X(b), 1.0));
    return EM_OK;
}
DEFINE_OP(log1p, "log1p", "Log1PBackward0", 1, EM_SAVE_IN(0), shape_to_float, K(log1p), fw_kernel,
          bw_log1p);

/* y = expm1(x):  dx = g * (y + 1) */
static em_status bw_expm1(em_bw *b)
{
    b->grad_in[0] = em_mul(b->grad_out, em_add_scalar(Y(b), 1.0));
    return EM_OK;
}
DEFINE_OP(expm1, "expm1", "Expm1Backward0", 1, EM_SAVE_OUT, shape_to_float, K(expm1), fw_kernel,
          bw_expm1);

/* sin(x):  dx = g * cos(x) */
static em_status bw_sin(em_bw *b)
{
    b->grad_in[0] = em_mul(b->grad_out, em_cos(X(b)));
    return EM_OK;
}
DEFINE_OP(sin, "sin", "SinBackward0", 1, EM_SAVE_IN(0), shape_to_float, K(sin), fw_kernel, bw_sin);

/* cos(x):  dx = g * -sin(x) */
static em_status bw_cos(em_bw *b)
{
    b->grad_in[0] = em_mul(b->grad_out, em_neg(em_sin(X(b))));
    return EM_OK;
}
DEFINE_OP(cos, "cos", "CosBackward0", 1, EM_SAVE_IN(0), shape_to_float, K(cos), fw_kernel, bw_cos);

/* erf(x):  dx = 2 / sqrt(pi) * exp(-x^2) * g */
static em_status bw_erf(em_bw *b)
{
    em_tensor *d = em_mul_scalar(em_exp(em_neg(em_pow(X(b), 2.0))), M_2_SQRTPI);
    b->grad_in[0] = em_mul(d, b->grad_out);
    return EM_OK;
}
DEFINE_OP(erf, "erf", "ErfBackward0", 1, EM_SAVE_IN(0), shape_to_float, K(erf), fw_kernel, bw_erf);

/* y = 1 / x (the rdiv_scalar kernel with p0 = 1):  dx = -g * y * y; the result is saved, not
 * x, so x may be modified in place afterwards (as PyTorch) */
static em_status bw_reciprocal(em_bw *b)
{
    em_tensor *y = Y(b);
    b->grad_in[0] = em_mul(em_neg(b->grad_out), em_mul(y, y));
    return EM_OK;
}
DEFINE_OP(reciprocal, "reciprocal", "ReciprocalBackward0", 1, EM_SAVE_OUT, shape_to_float,
          K(rdiv_scalar), fw_kernel, bw_reciprocal);

/* sign, floor, ceil, round: piecewise constant, dx = 0 */
static em_status bw_zero(em_bw *b)
{
    b->grad_in[0] = em_zeros_like(b->grad_out);
    return EM_OK;
}
DEFINE_OP(sign, "sign", "SignBackward0", 1, 0, shape_same, K(sign), fw_sign, bw_zero);
DEFINE_OP(floor, "floor", "FloorBackward0", 1, 0, shape_rounding, K(floor), fw_rounding, bw_zero);
DEFINE_OP(ceil, "ceil", "CeilBackward0", 1, 0, shape_rounding, K(ceil), fw_rounding, bw_zero);
DEFINE_OP(round, "round", "RoundBackward0", 1, 0, shape_rounding, K(round), fw_rounding, bw_zero);

/* y = x ** e (PowBackward1):
 *   dx = e == 0 ? 0 : g * (e * x ** (e - 1))
 *   de = g * ((x == 0 && e >= 0) ? 0 : y * log(x))
 * x, e and y are saved whichever input requires grad (PyTorch 1.13 always saves the result,
 * so modifying y in place makes any backward through it fail). */
static em_status bw_pow_tensor(em_bw *b)
{
    em_tensor *g = b->grad_out, *x = b->saved[0], *e = b->saved[1];
    if (b->needs[0]) {
        em_tensor *d = em_mul(g, em_mul(e, em_pow_tensor(x, em_sub_scalar(e, 1.0))));
        b->grad_in[0] = em_where(em_eq_scalar(e, 0.0), zero_scalar(g), d);
    }
    if (b->needs[1]) {
        em_tensor *v = em_mul(Y(b), em_log(x));
        em_tensor *w = em_where(em_eq_scalar(x, 0.0), em_masked_fill(v, em_ge_scalar(e, 0.0), 0.0), v);
        b->grad_in[1] = em_mul(g, w);
    }
    return EM_OK;
}
static const em_op op_pow_tensor = {.name = "pow", .grad_fn = "PowBackward1", .arity = 2,
                                    .saves = EM_SAVE_IN(0) | EM_SAVE_IN(1) | EM_SAVE_OUT,
                                    .kernel = K(pow),
                                    .shape = shape_binary_float, .forward = fw_kernel,
                                    .backward = bw_pow_tensor};

/* clamp(x, lo, hi) with tensor bounds (ClampBackward0; either bound may be absent: then the
 * op has arity 2 and p.i[0] says which bound in[1] is, 0 = lo, 1 = hi):
 *   dx  = (x >= lo && x <= hi) ? g : 0
 *   dlo = (x < lo && lo < hi) ? g : 0          (lo only: x < lo)
 *   dhi = (x > hi || hi < lo) ? g : 0          (hi only: x > hi)   */
static em_status bw_clamp_tensor(em_bw *b)
{
    em_tensor *g = b->grad_out, *x = b->saved[0], *z = zero_scalar(g);
    bool both = b->saved[2] != NULL, lo_only = !both && b->p->i[0] == 0;
    em_tensor *lo = both || lo_only ? b->saved[1] : NULL;
    em_tensor *hi = both ? b->saved[2] : lo_only ? NULL : b->saved[1];
    if (b->needs[0]) {
        em_tensor *d = g;
        if (hi)
            d = em_where(em_le(x, hi), d, z);
        if (lo)
            d = em_where(em_ge(x, lo), d, z);
        b->grad_in[0] = d;
    }
    int ilo = 1, ihi = both ? 2 : 1;
    if (lo && b->needs[ilo]) {
        em_tensor *d = em_where(em_lt(x, lo), g, z);
        b->grad_in[ilo] = both ? em_where(em_lt(lo, hi), d, z) : d;
    }
    if (hi && b->needs[ihi]) {
        em_tensor *d = em_where(em_gt(x, hi), g, z);
        b->grad_in[ihi] = both ? em_where(em_lt(hi, lo), g, d) : d;
    }
    return EM_OK;
}
static const em_op op_clamp_tensor = {.name = "clamp", .grad_fn = "ClampBackward0", .arity = 3,
                                      .saves = EM_SAVE_IN(0) | EM_SAVE_IN(1) | EM_SAVE_IN(2),
                                      .kernel = K(maximum), .shape = shape_binary_any,
                                      .forward = fw_clamp_tensor, .backward = bw_clamp_tensor};
static const em_op op_clamp_tensor1 = {.name = "clamp", .grad_fn = "ClampBackward0", .arity = 2,
                                       .saves = EM_SAVE_IN(0) | EM_SAVE_IN(1),
                                       .kernel = K(maximum), .shape = shape_binary_any,
                                       .forward = fw_clamp_tensor, .backward = bw_clamp_tensor};

/* floor division: not differentiable (PyTorch: grad_fn NotImplemented) */
static em_status bw_not_implemented(em_bw *b)
{
    return em__error(b->ctx, EM_ERR_AUTOGRAD, "derivative for aten::floor_divide is not implemented");
}
DEFINE_OP(floor_divide, "floor_divide", "NotImplemented", 2, 0, shape_binary_any, K(floor_divide),
          fw_divmod, bw_not_implemented);
DEFINE_OP(floor_divide_scalar, "floor_divide", "NotImplemented", 1, 0, shape_div_scalar,
          K(floor_divide), fw_divmod_scalar, bw_not_implemented);

/* remainder: dx = g;  dy = -g * floor_divide(x, y) (x and y saved only for y's gradient) */
static em_status bw_remainder(em_bw *b)
{
    if (b->needs[0])
        b->grad_in[0] = em__dup(b->grad_out);
    if (b->needs[1])
        b->grad_in[1] = em_mul(em_neg(b->grad_out), em_floor_divide(b->saved[0], b->saved[1]));
    return EM_OK;
}
static const em_op op_remainder = {.name = "remainder", .grad_fn = "RemainderBackward1", .arity = 2,
                                   .saves_for = {0, EM_SAVE_IN(0) | EM_SAVE_IN(1)},
                                   .kernel = K(remainder), .shape = shape_binary_any,
                                   .forward = fw_divmod, .backward = bw_remainder};
DEFINE_OP(remainder_scalar, "remainder", "RemainderBackward0", 1, 0, shape_div_scalar, K(remainder),
          fw_divmod_scalar, bw_remainder);

/* ================================================================= public API */

static em_tensor *run(const em_op *op, em_tensor *a, em_tensor *b, double s)
{
    em_tensor *in[2] = {a, b};
    em_op_params p;
    memset(&p, 0, sizeof p);
    p.s[0] = s;
    return em__apply_h(op, in, op->arity, &p);
}

EMBER_API em_tensor *em_log1p(em_tensor *a) { return run(&op_log1p, a, NULL, 0); }
EMBER_API em_tensor *em_expm1(em_tensor *a) { return run(&op_expm1, a, NULL, 0); }
EMBER_API em_tensor *em_sin(em_tensor *a) { return run(&op_sin, a, NULL, 0); }
EMBER_API em_tensor *em_cos(em_tensor *a) { return run(&op_cos, a, NULL, 0); }
EMBER_API em_tensor *em_erf(em_tensor *a) { return run(&op_erf, a, NULL, 0); }
EMBER_API em_tensor *em_reciprocal(em_tensor *a) { return run(&op_reciprocal, a, NULL, 1.0); }
EMBER_API em_tensor *em_sign(em_tensor *a) { return run(&op_sign, a, NULL, 0); }
EMBER_API em_tensor *em_floor(em_tensor *a) { return run(&op_floor, a, NULL, 0); }
EMBER_API em_tensor *em_ceil(em_tensor *a) { return run(&op_ceil, a, NULL, 0); }
EMBER_API em_tensor *em_round(em_tensor *a) { return run(&op_round, a, NULL, 0); }
EMBER_API em_tensor *em_pow_tensor(em_tensor *a, em_tensor *b) { return run(&op_pow_tensor, a, b, 0); }
EMBER_API em_tensor *em_floor_divide(em_tensor *a, em_tensor *b) { return run(&op_floor_divide, a, b, 0); }
EMBER_API em_tensor *em_remainder(em_tensor *a, em_tensor *b) { return run(&op_remainder, a, b, 0); }
EMBER_API em_tensor *em_floor_divide_scalar(em_tensor *a, double s)
{
    return run(&op_floor_divide_scalar, a, NULL, s);
}
EMBER_API em_tensor *em_remainder_scalar(em_tensor *a, double s)
{
    return run(&op_remainder_scalar, a, NULL, s);
}

EMBER_API em_tensor *em_clamp_tensor(em_tensor *a, em_tensor *min, em_tensor *max)
{
    em__tensor *t = em__obj(a);
    if (!t)
        return NULL;
    if (!min && !max)
        return em__error(t->ctx, EM_ERR_INVALID, "clamp: At least one of 'min' or 'max' must not "
                         "be None (NULL)"), NULL;
    em_op_params p;
    memset(&p, 0, sizeof p);
    if (min && max) {
        em_tensor *in[3] = {a, min, max};
        return em__apply_h(&op_clamp_tensor, in, 3, &p);
    }
    p.i[0] = min ? 0 : 1;
    em_tensor *in[2] = {a, min ? min : max};
    return em__apply_h(&op_clamp_tensor1, in, 2, &p);
}

/* ----------------------------------------------------------------- in-place */

static em_status inplace(const em_op *op, em_tensor *self, double s)
{
    em_tensor *in[1] = {self};
    em_op_params p;
    memset(&p, 0, sizeof p);
    p.s[0] = s;
    return em__apply_inplace_h(op, self, in, 1, &p);
}

EMBER_API em_status em_reciprocal_(em_tensor *self) { return inplace(&op_reciprocal, self, 1.0); }
EMBER_API em_status em_floor_(em_tensor *self) { return inplace(&op_floor, self, 0); }
EMBER_API em_status em_ceil_(em_tensor *self) { return inplace(&op_ceil, self, 0); }
EMBER_API em_status em_round_(em_tensor *self) { return inplace(&op_round, self, 0); }
