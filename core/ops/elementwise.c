/* core/ops/elementwise.c — elementwise arithmetic: each op is one descriptor {name, grad_fn,
 * arity, shape rule, forward, backward}, forward and backward side by side. Forwards lower
 * to one backend kernel (em__launch broadcasts and coalesces); backwards are written with
 * the public API, so they run on whatever backend the tensors live on.
 *
 * Dtypes (PyTorch's rules, checked against torch 1.13):
 *  - tensor-tensor ops need one dtype (no implicit promotion between tensors); add, sub, mul,
 *    maximum, minimum take floats and the integer dtypes, not bool; div of integers is a true
 *    division into f32;
 *  - with a scalar: an integer or bool tensor keeps its dtype with an integral scalar (bool
 *    becomes i64) and becomes f32 with any other (em__scalar_result); integer scalars reach
 *    the kernels exactly, wrapped to the dtype (u8 + 300 == u8 + 44), in ip[]; a true
 *    division (div_scalar, rdiv_scalar) always gives f32; integer ** negative integer is an
 *    error, integer ** non-negative integer stays an integer (exact, by squaring);
 *  - float-only functions (exp, log, sqrt, tanh, sigmoid) of an integer or bool tensor give
 *    f32, as torch.exp(int tensor) does; neg, abs of bool and relu of bool are errors as in
 *    PyTorch; relu of an integer tensor is clamp(min=0);
 *  - in-place forms keep self's dtype: a result of another dtype is PyTorch's error "result
 *    type f32 can't be cast to the desired output type i64".
 * Only floating results record autograd (dispatch.c); integers never require grad.
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

/* bool is not a number for arithmetic (PyTorch's messages for - and neg) */
static em_status not_bool(em_call *c, const em__tensor *t)
{
    if (t->dtype != EM_BOOL)
        return EM_OK;
    const char *n = c->op->name;
    if (!strcmp(n, "sub") || !strcmp(n, "rsub"))
        return em__error(c->ctx, EM_ERR_DTYPE, "%s: Subtraction, the `-` operator, with a bool "
                         "tensor is not supported (to invert a mask, use em_eq_scalar(mask, 0))", n);
    if (!strcmp(n, "neg"))
        return em__error(c->ctx, EM_ERR_DTYPE, "neg: Negation, the `-` operator, on a bool tensor "
                         "is not supported (to invert a mask, use em_eq_scalar(mask, 0))");
    if (!strcmp(n, "relu"))
        return em__error(c->ctx, EM_ERR_DTYPE, "relu: Boolean inputs not supported for relu");
    return em__error(c->ctx, EM_ERR_DTYPE, "%s: not implemented for bool tensors; convert with "
                     "em_to_dtype", n);
}

static void same_shape(em_call *c, em_dtype dt)
{
    em__tensor *a = c->in[0];
    c->out_ndim = a->ndim;
    memcpy(c->out_shape, a->shape, sizeof(int64_t) * (size_t)a->ndim);
    c->out_dtype = dt;
}

/* exp, log, ...: floats keep their dtype, integers and bool give f32 */
static em_status shape_unary_to_float(em_call *c)
{
    em_dtype dt = c->in[0]->dtype;
    same_shape(c, is_float(dt) ? dt : EM_F32);
    return EM_OK;
}

/* neg, abs, relu: any dtype but bool, kept */
static em_status shape_unary_numeric(em_call *c)
{
    if (not_bool(c, c->in[0]))
        return em__failed(c->ctx);
    same_shape(c, c->in[0]->dtype);
    return EM_OK;
}

/* add, sub, mul, maximum, minimum: one dtype, not bool */
static em_status shape_binary_numeric(em_call *c)
{
    if (em__same_dtype(c, c->in[0], c->in[1]) || not_bool(c, c->in[0]))
        return em__failed(c->ctx);
    c->out_dtype = c->in[0]->dtype;
    return em__shape_broadcast(c);
}

/* div: one dtype; a true division, so integers and bool give f32 */
static em_status shape_div(em_call *c)
{
    if (em__same_dtype(c, c->in[0], c->in[1]))
        return em__failed(c->ctx);
    c->out_dtype = is_float(c->in[0]->dtype) ? c->in[0]->dtype : EM_F32;
    return em__shape_broadcast(c);
}

/* the fused backward kernels: float operands of one dtype */
static em_status shape_binary_float(em_call *c)
{
    if (em__same_dtype(c, c->in[0], c->in[1]))
        return em__failed(c->ctx);
    if (!is_float(c->in[0]->dtype))
        return em__error(c->ctx, EM_ERR_DTYPE, "%s: expected a floating point tensor (f32 or f64), "
                         "got %s", c->op->name, em_dtype_name(c->in[0]->dtype));
    c->out_dtype = c->in[0]->dtype;
    return em__shape_broadcast(c);
}

/* tensor op scalar p.s[0] (add, sub, rsub, mul) */
static em_status shape_scalar(em_call *c)
{
    em__tensor *a = c->in[0];
    if ((!strcmp(c->op->name, "sub") || !strcmp(c->op->name, "rsub")) && not_bool(c, a))
        return em__failed(c->ctx);
    same_shape(c, em__scalar_result(a->dtype, c->p.s[0]));
    return EM_OK;
}

/* a / s: a true division */
static em_status shape_div_scalar(em_call *c)
{
    em_dtype dt = c->in[0]->dtype;
    same_shape(c, is_float(dt) ? dt : EM_F32);
    return EM_OK;
}

/* a ** e: integer ** non-negative integer stays an integer */
static em_status shape_pow_scalar(em_call *c)
{
    em__tensor *a = c->in[0];
    double e = c->p.s[0];
    em_dtype dt = em__scalar_result(a->dtype, e);
    if (!is_float(dt) && e < 0)
        return em__error(c->ctx, EM_ERR_INVALID, "pow: Integers to negative integer powers are not "
                         "allowed (%s tensor ** %g)", em_dtype_name(a->dtype), e);
    int64_t iv;   /* the exponent is converted to the dtype as PyTorch does (u8 ** 1000 fails) */
    if (!is_float(dt) && em__scalar_checked(c->ctx, "pow", dt, e, &iv) != EM_OK)
        return em__failed(c->ctx);
    same_shape(c, dt);
    return EM_OK;
}

/* clamp(a, lo, hi): infinite bounds are absent; integer tensors stay integers unless a
 * bound has a fractional part */
static em_status shape_clamp(em_call *c)
{
    em__tensor *a = c->in[0];
    em_dtype dt = a->dtype;
    if (!is_float(dt)) {
        bool integral = true;
        for (int i = 0; i < 2; i++)
            integral = integral && (isinf(c->p.s[i]) || em__scalar_integral(c->p.s[i]));
        dt = !integral ? EM_F32 : dt == EM_BOOL ? EM_I64 : dt;
        /* integer bounds are converted to the dtype as PyTorch does: -1 is u8 255, 300 fails */
        for (int i = 0; i < 2 && !is_float(dt); i++) {
            int64_t iv;
            if (!isinf(c->p.s[i]) && em__scalar_checked(c->ctx, c->op->name, dt, c->p.s[i], &iv))
                return em__failed(c->ctx);
        }
    }
    same_shape(c, dt);
    return EM_OK;
}

/* ----------------------------------------------------------------- forward */

/* One kernel over out and the inputs (promoted), scalars from params; on an integer output
 * the first n_ip scalars also go exactly in ip[] (infinite ones as INT64_MIN / INT64_MAX:
 * absent clamp bounds). */
static em_status launch_promoted(em_call *c, size_t kernel, int n_ip)
{
    em__tensor *in[EM_MAX_ARITY], *tmp[EM_MAX_ARITY] = {0};
    em_status st = em__promoted_inputs(c, in, tmp);
    if (st == EM_OK) {
        int64_t ip[2] = {0, 0};
        em_dtype dt = c->out_dtype;
        bool integer = em_dtype_is_integer(dt);
        for (int i = 0; i < n_ip && integer; i++) {
            double s = c->p.s[i];
            ip[i] = isinf(s) ? (s < 0 ? INT64_MIN : INT64_MAX) : em__wrap_int(dt, (int64_t)s);
        }
        st = em__launch_ip(c->ctx, kernel, c->out, in, c->n_in, c->p.s, NULL, integer ? ip : NULL,
                           integer ? n_ip : 0);
    }
    em__release_tmp(tmp, c->n_in);
    return st;
}

static em_status fw_kernel(em_call *c) { return launch_promoted(c, c->op->kernel, 0); }
static em_status fw_scalar(em_call *c) { return launch_promoted(c, c->op->kernel, 1); }
static em_status fw_clamp(em_call *c) { return launch_promoted(c, c->op->kernel, 2); }

/* relu of an integer tensor is clamp(min=0) */
static em_status fw_relu(em_call *c)
{
    if (is_float(c->out_dtype))
        return launch_promoted(c, K(relu), 0);
    em_op_params keep = c->p;
    c->p.s[0] = 0;
    c->p.s[1] = INFINITY;
    em_status st = launch_promoted(c, K(clamp), 2);
    c->p = keep;
    return st;
}

/* a ** e; an integer result by squaring (exact, wrapping as integer multiplication does) */
static em_status fw_pow_scalar(em_call *c)
{
    if (is_float(c->out_dtype))
        return launch_promoted(c, K(pow_scalar), 0);
    em_context *ctx = c->ctx;
    uint64_t e = (uint64_t)c->p.s[0];
    em__tensor *base = em__cast(c->in[0], c->out_dtype);   /* first: out may be in[0] */
    if (!base)
        return em__failed(ctx);
    em_status st = em__launch_fill(c->out, 1, 1);
    for (; st == EM_OK && e; e >>= 1) {
        if (e & 1) {
            em__tensor *in[2] = {c->out, base};
            st = em__launch(ctx, K(mul), c->out, in, 2, NULL, NULL);
        }
        if (st == EM_OK && e > 1) {
            em__tensor *in[2] = {base, base};
            st = em__launch(ctx, K(mul), base, in, 2, NULL, NULL);
        }
    }
    em__tensor_unref(base);
    return st;
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

#define PASS(b) em__dup((b)->grad_out)

/* ----------------------------------------------------------------- binary arithmetic */

/* saves_for0/1: what is saved only when input 0 / 1 requires grad (em_op.saves_for) */
#define DEFINE_OP_SF(ident, opname, gradname, nargs, saves_, saves_for0, saves_for1, shape_fn,     \
                     kern, fw, bw)                                                                \
    const em_op em__op_##ident = {.name = opname, .grad_fn = gradname, .arity = nargs,            \
                                  .saves = saves_, .kernel = kern, .shape = shape_fn,             \
                                  .forward = fw, .backward = bw,                                  \
                                  .saves_for = {saves_for0, saves_for1}}
#define DEFINE_OP(ident, opname, gradname, nargs, saves_, shape_fn, kern, fw, bw)                  \
    DEFINE_OP_SF(ident, opname, gradname, nargs, saves_, 0, 0, shape_fn, kern, fw, bw)

/* add: out = a + b;  da = g, db = g */
static em_status bw_add(em_bw *b)
{
    b->grad_in[0] = b->needs[0] ? PASS(b) : NULL;
    b->grad_in[1] = b->needs[1] ? PASS(b) : NULL;
    return EM_OK;
}
DEFINE_OP(add, "add", "AddBackward0", 2, 0, shape_binary_numeric, K(add), fw_kernel, bw_add);

/* sub: out = a - b;  da = g, db = -g */
static em_status bw_sub(em_bw *b)
{
    b->grad_in[0] = b->needs[0] ? PASS(b) : NULL;
    b->grad_in[1] = b->needs[1] ? em_neg(b->grad_out) : NULL;
    return EM_OK;
}
DEFINE_OP(sub, "sub", "SubBackward0", 2, 0, shape_binary_numeric, K(sub), fw_kernel, bw_sub);

/* mul: out = a * b;  da = g * b, db = g * a. As PyTorch, b is saved only for a's gradient
 * and a only for b's (a * c with a constant c does not keep a). */
static em_status bw_mul(em_bw *b)
{
    b->grad_in[0] = b->needs[0] ? em_mul(b->grad_out, b->saved[1]) : NULL;
    b->grad_in[1] = b->needs[1] ? em_mul(b->grad_out, b->saved[0]) : NULL;
    return EM_OK;
}
DEFINE_OP_SF(mul, "mul", "MulBackward0", 2, 0, EM_SAVE_IN(1), EM_SAVE_IN(0), shape_binary_numeric,
             K(mul), fw_kernel, bw_mul);

/* div: out = a / b;  da = g / b, db = -g * a / (b * b); a is saved only for b's gradient */
static em_status bw_div(em_bw *b)
{
    em_tensor *g = b->grad_out, *x = b->saved[0], *y = b->saved[1];
    b->grad_in[0] = b->needs[0] ? em_div(g, y) : NULL;
    b->grad_in[1] = b->needs[1] ? em_div(em_mul(em_neg(g), x), em_mul(y, y)) : NULL;
    return EM_OK;
}
DEFINE_OP_SF(div, "div", "DivBackward0", 2, 0, EM_SAVE_IN(1), EM_SAVE_IN(0) | EM_SAVE_IN(1),
             shape_div, K(div), fw_kernel, bw_div);

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
          shape_binary_numeric, K(maximum), fw_kernel, bw_maximum);
DEFINE_OP(minimum, "minimum", "MinimumBackward0", 2, EM_SAVE_IN(0) | EM_SAVE_IN(1),
          shape_binary_numeric, K(minimum), fw_kernel, bw_minimum);

/* ----------------------------------------------------------------- with a scalar s = p.s[0] */

/* a + s, a - s (lowered to add_scalar with -s, which is exact) */
static em_status bw_pass(em_bw *b)
{
    b->grad_in[0] = PASS(b);
    return EM_OK;
}
DEFINE_OP(add_scalar, "add", "AddBackward0", 1, 0, shape_scalar, K(add_scalar), fw_scalar, bw_pass);
DEFINE_OP(sub_scalar, "sub", "SubBackward0", 1, 0, shape_scalar, K(add_scalar), fw_scalar, bw_pass);

/* s - a:  da = -g */
static em_status bw_rsub_scalar(em_bw *b)
{
    b->grad_in[0] = em_neg(b->grad_out);
    return EM_OK;
}
DEFINE_OP(rsub_scalar, "rsub", "RsubBackward1", 1, 0, shape_scalar, K(rsub_scalar), fw_scalar,
          bw_rsub_scalar);

/* a * s:  da = g * s */
static em_status bw_mul_scalar(em_bw *b)
{
    b->grad_in[0] = em_mul_scalar(b->grad_out, b->p->s[0]);
    return EM_OK;
}
DEFINE_OP(mul_scalar, "mul", "MulBackward0", 1, 0, shape_scalar, K(mul_scalar), fw_scalar,
          bw_mul_scalar);

/* a / s:  da = g / s */
static em_status bw_div_scalar(em_bw *b)
{
    b->grad_in[0] = em_div_scalar(b->grad_out, b->p->s[0]);
    return EM_OK;
}
DEFINE_OP(div_scalar, "div", "DivBackward0", 1, 0, shape_div_scalar, K(div_scalar), fw_kernel,
          bw_div_scalar);

/* a ** p:  da = g * p * a ** (p - 1), and 0 when p == 0 */
DEFINE_OP(pow_bw, "pow_backward", NULL, 2, 0, shape_binary_float, K(pow_backward), fw_kernel, NULL);
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
DEFINE_OP(pow_scalar, "pow", "PowBackward0", 1, EM_SAVE_IN(0), shape_pow_scalar, K(pow_scalar),
          fw_pow_scalar, bw_pow_scalar);

/* ----------------------------------------------------------------- unary */

/* -a:  da = -g */
static em_status bw_neg(em_bw *b)
{
    b->grad_in[0] = em_neg(b->grad_out);
    return EM_OK;
}
DEFINE_OP(neg, "neg", "NegBackward0", 1, 0, shape_unary_numeric, K(neg), fw_kernel, bw_neg);

/* y = exp(a):  da = g * y */
static em_status bw_exp(em_bw *b)
{
    b->grad_in[0] = em_mul(b->grad_out, b->saved[3]);
    return EM_OK;
}
DEFINE_OP(exp, "exp", "ExpBackward0", 1, EM_SAVE_OUT, shape_unary_to_float, K(exp), fw_kernel, bw_exp);

/* log(a):  da = g / a */
static em_status bw_log(em_bw *b)
{
    b->grad_in[0] = em_div(b->grad_out, b->saved[0]);
    return EM_OK;
}
DEFINE_OP(log, "log", "LogBackward0", 1, EM_SAVE_IN(0), shape_unary_to_float, K(log), fw_kernel,
          bw_log);

/* y = sqrt(a):  da = g / (2 y) */
static em_status bw_sqrt(em_bw *b)
{
    b->grad_in[0] = em_div(b->grad_out, em_mul_scalar(b->saved[3], 2.0));
    return EM_OK;
}
DEFINE_OP(sqrt, "sqrt", "SqrtBackward0", 1, EM_SAVE_OUT, shape_unary_to_float, K(sqrt), fw_kernel,
          bw_sqrt);

/* |a|:  da = g * sgn(a), as PyTorch: sgn(0) = 0 (an infinite g there gives NaN), and in
 * PyTorch 1.13 sgn(NaN) = 0 too: computed as (a > 0) - (a < 0) */
static em_status bw_abs(em_bw *b)
{
    em_tensor *g = b->grad_out, *x = b->saved[0];
    em_dtype dt = em_tensor_dtype(g);
    em_tensor *sgn = em_sub(em_to_dtype(em_gt_scalar(x, 0.0), dt), em_to_dtype(em_lt_scalar(x, 0.0), dt));
    b->grad_in[0] = em_mul(g, sgn);
    return EM_OK;
}
DEFINE_OP(abs, "abs", "AbsBackward0", 1, EM_SAVE_IN(0), shape_unary_numeric, K(abs), fw_kernel,
          bw_abs);

/* y = relu(a):  da = y <= 0 ? 0 : g */
DEFINE_OP(relu_bw, "relu_backward", NULL, 2, 0, shape_binary_float, K(relu_backward), fw_kernel, NULL);
static em_status bw_relu(em_bw *b)
{
    bool missing;
    b->grad_in[0] = fused(&em__op_relu_bw, b->grad_out, b->saved[3], 0, 0, &missing);
    if (missing)
        b->grad_in[0] = em_masked_fill(b->grad_out, em_le_scalar(b->saved[3], 0.0), 0.0);
    return EM_OK;
}
DEFINE_OP(relu, "relu", "ReluBackward0", 1, EM_SAVE_OUT, shape_unary_numeric, K(relu), fw_relu,
          bw_relu);

/* y = tanh(a):  da = g * (1 - y^2) */
DEFINE_OP(tanh_bw, "tanh_backward", NULL, 2, 0, shape_binary_float, K(tanh_backward), fw_kernel, NULL);
static em_status bw_tanh(em_bw *b)
{
    bool missing;
    em_tensor *y = b->saved[3];
    b->grad_in[0] = fused(&em__op_tanh_bw, b->grad_out, y, 0, 0, &missing);
    if (missing)
        b->grad_in[0] = em_mul(b->grad_out, em_rsub_scalar(em_mul(y, y), 1.0));
    return EM_OK;
}
DEFINE_OP(tanh, "tanh", "TanhBackward0", 1, EM_SAVE_OUT, shape_unary_to_float, K(tanh), fw_kernel,
          bw_tanh);

/* y = sigmoid(a):  da = g * (1 - y) * y */
DEFINE_OP(sigmoid_bw, "sigmoid_backward", NULL, 2, 0, shape_binary_float, K(sigmoid_backward),
          fw_kernel, NULL);
static em_status bw_sigmoid(em_bw *b)
{
    bool missing;
    em_tensor *y = b->saved[3];
    b->grad_in[0] = fused(&em__op_sigmoid_bw, b->grad_out, y, 0, 0, &missing);
    if (missing)
        b->grad_in[0] = em_mul(b->grad_out, em_mul(em_rsub_scalar(y, 1.0), y));
    return EM_OK;
}
DEFINE_OP(sigmoid, "sigmoid", "SigmoidBackward0", 1, EM_SAVE_OUT, shape_unary_to_float, K(sigmoid),
          fw_kernel, bw_sigmoid);

/* clamp(a, lo, hi), bounds in p.s[0..1] (+-inf when absent):  da = lo <= a <= hi ? g : 0 */
DEFINE_OP(clamp_bw, "clamp_backward", NULL, 2, 0, shape_binary_float, K(clamp_backward), fw_kernel,
          NULL);
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
DEFINE_OP(clamp, "clamp", "ClampBackward1", 1, EM_SAVE_IN(0), shape_clamp, K(clamp), fw_clamp,
          bw_clamp);
DEFINE_OP(clamp_min, "clamp_min", "ClampMinBackward0", 1, EM_SAVE_IN(0), shape_clamp, K(clamp),
          fw_clamp, bw_clamp);
DEFINE_OP(clamp_max, "clamp_max", "ClampMaxBackward0", 1, EM_SAVE_IN(0), shape_clamp, K(clamp),
          fw_clamp, bw_clamp);

/* ================================================================= public API */

static em_tensor *run(const em_op *op, em_tensor *a, em_tensor *b, double s0, double s1)
{
    em_tensor *in[2] = {a, b};
    em_op_params p;
    memset(&p, 0, sizeof p);
    p.s[0] = s0;
    p.s[1] = s1;
    return em__apply_h(op, in, op->arity, &p);
}

EMBER_API em_tensor *em_add(em_tensor *a, em_tensor *b) { return run(&em__op_add, a, b, 0, 0); }
EMBER_API em_tensor *em_sub(em_tensor *a, em_tensor *b) { return run(&em__op_sub, a, b, 0, 0); }
EMBER_API em_tensor *em_mul(em_tensor *a, em_tensor *b) { return run(&em__op_mul, a, b, 0, 0); }
EMBER_API em_tensor *em_div(em_tensor *a, em_tensor *b) { return run(&em__op_div, a, b, 0, 0); }
EMBER_API em_tensor *em_maximum(em_tensor *a, em_tensor *b) { return run(&em__op_maximum, a, b, 0, 0); }
EMBER_API em_tensor *em_minimum(em_tensor *a, em_tensor *b) { return run(&em__op_minimum, a, b, 0, 0); }

EMBER_API em_tensor *em_add_scalar(em_tensor *a, double s) { return run(&em__op_add_scalar, a, NULL, s, 0); }
EMBER_API em_tensor *em_sub_scalar(em_tensor *a, double s) { return run(&em__op_sub_scalar, a, NULL, -s, 0); }
EMBER_API em_tensor *em_rsub_scalar(em_tensor *a, double s) { return run(&em__op_rsub_scalar, a, NULL, s, 0); }
EMBER_API em_tensor *em_mul_scalar(em_tensor *a, double s) { return run(&em__op_mul_scalar, a, NULL, s, 0); }
EMBER_API em_tensor *em_div_scalar(em_tensor *a, double s) { return run(&em__op_div_scalar, a, NULL, s, 0); }
EMBER_API em_tensor *em_pow(em_tensor *a, double e) { return run(&em__op_pow_scalar, a, NULL, e, 0); }
/* s / a is reciprocal(a) * s, as PyTorch's __rtruediv__ computes it (grad_fn MulBackward0
 * over ReciprocalBackward0, which saves its result, not a) */
EMBER_API em_tensor *em_rdiv_scalar(em_tensor *a, double s) { return em_mul_scalar(em_reciprocal(a), s); }

EMBER_API em_tensor *em_neg(em_tensor *a) { return run(&em__op_neg, a, NULL, 0, 0); }
EMBER_API em_tensor *em_exp(em_tensor *a) { return run(&em__op_exp, a, NULL, 0, 0); }
EMBER_API em_tensor *em_log(em_tensor *a) { return run(&em__op_log, a, NULL, 0, 0); }
EMBER_API em_tensor *em_sqrt(em_tensor *a) { return run(&em__op_sqrt, a, NULL, 0, 0); }
EMBER_API em_tensor *em_abs(em_tensor *a) { return run(&em__op_abs, a, NULL, 0, 0); }
EMBER_API em_tensor *em_relu(em_tensor *a) { return run(&em__op_relu, a, NULL, 0, 0); }
EMBER_API em_tensor *em_tanh(em_tensor *a) { return run(&em__op_tanh, a, NULL, 0, 0); }
EMBER_API em_tensor *em_sigmoid(em_tensor *a) { return run(&em__op_sigmoid, a, NULL, 0, 0); }

static em_tensor *clamp_checked(const em_op *op, em_tensor *a, double lo, double hi)
{
    em__tensor *t = em__obj(a);
    if (!t)
        return NULL;
    if (isnan(lo) || isnan(hi))
        return em__error(t->ctx, EM_ERR_INVALID, "%s: bounds must not be NaN (use "
                         "em_clamp_min/em_clamp_max for one-sided clamps)", op->name), NULL;
    return run(op, a, NULL, lo, hi);
}
EMBER_API em_tensor *em_clamp(em_tensor *a, double lo, double hi) { return clamp_checked(&em__op_clamp, a, lo, hi); }
EMBER_API em_tensor *em_clamp_min(em_tensor *a, double lo) { return clamp_checked(&em__op_clamp_min, a, lo, INFINITY); }
EMBER_API em_tensor *em_clamp_max(em_tensor *a, double hi) { return clamp_checked(&em__op_clamp_max, a, -INFINITY, hi); }

/* ----------------------------------------------------------------- in-place */

static em_status inplace(const em_op *op, em_tensor *self, em_tensor *other, double s0, double s1)
{
    em_tensor *in[2] = {self, other};
    em_op_params p;
    memset(&p, 0, sizeof p);
    p.s[0] = s0;
    p.s[1] = s1;
    return em__apply_inplace_h(op, self, in, op->arity, &p);
}

EMBER_API em_status em_add_(em_tensor *self, em_tensor *other) { return inplace(&em__op_add, self, other, 0, 0); }
EMBER_API em_status em_sub_(em_tensor *self, em_tensor *other) { return inplace(&em__op_sub, self, other, 0, 0); }
EMBER_API em_status em_mul_(em_tensor *self, em_tensor *other) { return inplace(&em__op_mul, self, other, 0, 0); }
EMBER_API em_status em_div_(em_tensor *self, em_tensor *other) { return inplace(&em__op_div, self, other, 0, 0); }
EMBER_API em_status em_add_scalar_(em_tensor *self, double s) { return inplace(&em__op_add_scalar, self, NULL, s, 0); }
EMBER_API em_status em_sub_scalar_(em_tensor *self, double s) { return inplace(&em__op_sub_scalar, self, NULL, -s, 0); }
EMBER_API em_status em_mul_scalar_(em_tensor *self, double s) { return inplace(&em__op_mul_scalar, self, NULL, s, 0); }
EMBER_API em_status em_div_scalar_(em_tensor *self, double s) { return inplace(&em__op_div_scalar, self, NULL, s, 0); }
EMBER_API em_status em_pow_(em_tensor *self, double e) { return inplace(&em__op_pow_scalar, self, NULL, e, 0); }
EMBER_API em_status em_neg_(em_tensor *self) { return inplace(&em__op_neg, self, NULL, 0, 0); }
EMBER_API em_status em_exp_(em_tensor *self) { return inplace(&em__op_exp, self, NULL, 0, 0); }
EMBER_API em_status em_log_(em_tensor *self) { return inplace(&em__op_log, self, NULL, 0, 0); }
EMBER_API em_status em_sqrt_(em_tensor *self) { return inplace(&em__op_sqrt, self, NULL, 0, 0); }
EMBER_API em_status em_abs_(em_tensor *self) { return inplace(&em__op_abs, self, NULL, 0, 0); }
EMBER_API em_status em_relu_(em_tensor *self) { return inplace(&em__op_relu, self, NULL, 0, 0); }
EMBER_API em_status em_tanh_(em_tensor *self) { return inplace(&em__op_tanh, self, NULL, 0, 0); }
EMBER_API em_status em_sigmoid_(em_tensor *self) { return inplace(&em__op_sigmoid, self, NULL, 0, 0); }
EMBER_API em_status em_clamp_(em_tensor *self, double lo, double hi)
{
    em__tensor *t = em__obj(self);
    if (t && (isnan(lo) || isnan(hi)))
        return em__error(t->ctx, EM_ERR_INVALID, "clamp_: bounds must not be NaN");
    return inplace(&em__op_clamp, self, NULL, lo, hi);
}
