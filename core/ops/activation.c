/* core/ops/activation.c — activation functions: softmax and log_softmax (one kernel each,
 * along a dim), leaky_relu, gelu (erf and tanh forms), elu, silu and softplus. Where no
 * kernel exists the forward is a composition of elementwise kernels in PyTorch's order of
 * operations, run with nothing recorded; each op records ONE node named as PyTorch's
 * (SoftmaxBackward0, GeluBackward0, ...) whose backward is PyTorch's derivative:
 *   softmax      y * (g - sum(g * y, dim))         (saves the result y)
 *   log_softmax  g - exp(y) * sum(g, dim)          (saves the result y)
 *   leaky_relu   x > 0 ? g : g * slope
 *   gelu         g * (Phi(x) + x * phi(x)), or the derivative of the tanh form
 *   elu          x <= 0 ? g * alpha * exp(x) : g
 *   silu         g * s * (1 + x * (1 - s)), s = sigmoid(x)
 *   softplus     beta * x > threshold ? g : g * z / (z + 1), z = exp(beta * x)
 * Shapes: out and g have x's shape. */
#include "config.h"
#include "compose.h"

#include <math.h>
#include <string.h>

#define K EM_K

/* params: i[0] = dim (softmax), approximate (gelu); s[0], s[1] = slope, alpha, beta and
 * threshold */

static em_status shape_float(em_call *c)
{
    em__tensor *a = c->in[0];
    if (!em__is_float(a->dtype))
        return em__error(c->ctx, EM_ERR_DTYPE, "%s: expected a floating point tensor (f32 or f64), "
                         "got %s", c->op->name, em_dtype_name(a->dtype));
    c->out_ndim = a->ndim;
    memcpy(c->out_shape, a->shape, sizeof(int64_t) * (size_t)a->ndim);
    c->out_dtype = a->dtype;
    return EM_OK;
}

/* Write the op's result: kernel k over in[] into c->out. */
static em_status write_out(em_call *c, size_t k, em_tensor *const *in, int n, double p0)
{
    em__tensor *o[EM_MAX_ARITY];
    for (int i = 0; i < n; i++)
        if (!(o[i] = em__obj(in[i])))
            return em__failed(c->ctx) != EM_OK ? em__failed(c->ctx) : EM_ERR_INVALID;
    double p[4] = {p0, 0, 0, 0};
    return em__launch(c->ctx, k, c->out, o, n, p, NULL);
}

/* ================================================================= softmax, log_softmax */

static em_status fw_along(em_call *c)
{
    em__tensor *outs[1] = {c->out};
    return em__launch_dim(c->ctx, c->op->kernel, outs, 1, c->in[0], c->p.i[0], NULL);
}

static uint32_t dim_mask(const em_bw *b)
{
    return b->in_ndim[0] ? 1u << b->p->i[0] : 0;
}

static em_status bw_softmax(em_bw *b)
{
    em_tensor *g = b->grad_out, *y = b->saved[3];
    em_tensor *s = em__hreduce(K(sum), em_mul(g, y), dim_mask(b), true, 1.0);
    b->grad_in[0] = em_mul(y, em_sub(g, s));
    return EM_OK;
}

static em_status bw_log_softmax(em_bw *b)
{
    em_tensor *g = b->grad_out, *y = b->saved[3];
    em_tensor *s = em__hreduce(K(sum), g, dim_mask(b), true, 1.0);
    b->grad_in[0] = em_sub(g, em_mul(em_exp(y), s));
    return EM_OK;
}

static const em_op op_softmax = {.name = "softmax", .grad_fn = "SoftmaxBackward0", .arity = 1,
                                 .saves = EM_SAVE_OUT, .kernel = K(softmax), .shape = shape_float,
                                 .forward = fw_along, .backward = bw_softmax};
static const em_op op_log_softmax = {.name = "log_softmax", .grad_fn = "LogSoftmaxBackward0",
                                     .arity = 1, .saves = EM_SAVE_OUT, .kernel = K(log_softmax),
                                     .shape = shape_float, .forward = fw_along,
                                     .backward = bw_log_softmax};

static em_tensor *along(const em_op *op, em_tensor *h, int dim)
{
    em__tensor *a = em__obj(h);
    if (!a)
        return NULL;
    bool ok;
    int d = em__wrap_dim(a->ctx, dim, a->ndim, op->name, &ok);
    if (!ok)
        return NULL;
    em_op_params p;
    memset(&p, 0, sizeof p);
    p.i[0] = d;
    em__tensor *in[1] = {a};
    return em__give(em__apply(op, in, 1, &p));
}

EMBER_API em_tensor *em_softmax(em_tensor *a, int dim) { return along(&op_softmax, a, dim); }
EMBER_API em_tensor *em_log_softmax(em_tensor *a, int dim) { return along(&op_log_softmax, a, dim); }

/* ================================================================= composed activations */

/* A forward body: x is a handle to the input in a private scope with nothing recorded. */
typedef em_status (*compose_fn)(em_call *c, em_tensor *x);

static em_status fw_composed(em_call *c, compose_fn body)
{
    em_status st = em__fw_begin(c->ctx);
    if (st != EM_OK)
        return st;
    st = body(c, em__h(c->in[0]));
    em__fw_end(c->ctx);
    return st;
}

/* leaky_relu: x > 0 ? x : x * slope */
static em_status body_leaky_relu(em_call *c, em_tensor *x)
{
    em_tensor *in[3] = {em_gt_scalar(x, 0.0), x, em_mul_scalar(x, c->p.s[0])};
    return write_out(c, K(where), in, 3, 0);
}
static em_status fw_leaky_relu(em_call *c) { return fw_composed(c, body_leaky_relu); }

static em_status bw_leaky_relu(em_bw *b)
{
    em_tensor *g = b->grad_out;
    b->grad_in[0] = em_where(em_gt_scalar(b->saved[0], 0.0), g, em_mul_scalar(g, b->p->s[0]));
    return EM_OK;
}

/* gelu: x * 0.5 * (1 + erf(x / sqrt(2))), or
 *       0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3))) */
#define GELU_KAPPA 0.044715
#define GELU_BETA (M_SQRT2 * M_2_SQRTPI * 0.5)
#define GELU_ALPHA (M_2_SQRTPI * M_SQRT1_2 * 0.5)

static em_status body_gelu(em_call *c, em_tensor *x)
{
    em_status st;
    em_tensor *t;
    if (c->p.i[0] == EM_GELU_TANH) {
        em_tensor *x3 = em_mul(em_mul(x, x), x);
        t = em_mul_scalar(em_add(x, em_mul_scalar(x3, GELU_KAPPA)), GELU_BETA);
        st = em__hk1_(K(tanh), t, 0, 0);
    } else {
        t = em_mul_scalar(x, M_SQRT1_2);
        st = em__hk1_(K(erf), t, 0, 0);
    }
    if (st == EM_OK)
        st = em__hk1_(K(add_scalar), t, 1.0, 0);
    em_tensor *in[2] = {em_mul_scalar(x, 0.5), t};
    return st == EM_OK ? write_out(c, K(mul), in, 2, 0) : st;
}
static em_status fw_gelu(em_call *c) { return fw_composed(c, body_gelu); }

static em_status bw_gelu(em_bw *b)
{
    em_tensor *g = b->grad_out, *x = b->saved[0];
    em_tensor *d;
    if (b->p->i[0] == EM_GELU_TANH) {
        em_tensor *x2 = em_mul(x, x);
        em_tensor *inner = em_mul_scalar(em_add(x, em_mul_scalar(em_mul(x2, x), GELU_KAPPA)),
                                         GELU_BETA);
        em_tensor *th = em_tanh(inner);
        em_tensor *left_d = em_mul_scalar(em_add_scalar(th, 1.0), 0.5);
        em_tensor *tanh_d = em_rsub_scalar(em_mul(th, th), 1.0);
        em_tensor *inner_d = em_mul_scalar(em_add_scalar(em_mul_scalar(x2, 3.0 * GELU_KAPPA), 1.0),
                                           GELU_BETA);
        em_tensor *right_d = em_mul(em_mul(em_mul_scalar(x, 0.5), tanh_d), inner_d);
        d = em_add(left_d, right_d);
    } else {
        em_tensor *cdf = em__hk1(K(erf), em_mul_scalar(x, M_SQRT1_2));
        cdf = em_mul_scalar(em_add_scalar(cdf, 1.0), 0.5);
        em_tensor *pdf = em_mul_scalar(em_exp(em_mul_scalar(em_mul(x, x), -0.5)), GELU_ALPHA);
        d = em_add(cdf, em_mul(x, pdf));
    }
    b->grad_in[0] = em_mul(g, d);
    return EM_OK;
}

/* elu: x > 0 ? x : alpha * expm1(x) */
static em_status body_elu(em_call *c, em_tensor *x)
{
    em_tensor *neg = em__hk1(K(expm1), x);
    em_status st = em__hk1_(K(mul_scalar), neg, c->p.s[0], 0);
    em_tensor *in[3] = {em_gt_scalar(x, 0.0), x, neg};
    return st == EM_OK ? write_out(c, K(where), in, 3, 0) : st;
}
static em_status fw_elu(em_call *c) { return fw_composed(c, body_elu); }

static em_status bw_elu(em_bw *b)
{
    em_tensor *g = b->grad_out, *x = b->saved[0];
    em_tensor *neg = em_mul(em_mul_scalar(g, b->p->s[0]), em_exp(x));
    b->grad_in[0] = em_where(em_le_scalar(x, 0.0), neg, g);
    return EM_OK;
}

/* silu: x / (1 + exp(-x)) */
static em_status body_silu(em_call *c, em_tensor *x)
{
    em_tensor *den = em_exp(em_neg(x));
    em_status st = em__hk1_(K(add_scalar), den, 1.0, 0);
    em_tensor *in[2] = {x, den};
    return st == EM_OK ? write_out(c, K(div), in, 2, 0) : st;
}
static em_status fw_silu(em_call *c) { return fw_composed(c, body_silu); }

static em_status bw_silu(em_bw *b)
{
    em_tensor *g = b->grad_out, *x = b->saved[0];
    em_tensor *s = em_rdiv_scalar(em_add_scalar(em_exp(em_neg(x)), 1.0), 1.0);
    em_tensor *d = em_add_scalar(em_mul(x, em_rsub_scalar(s, 1.0)), 1.0);
    b->grad_in[0] = em_mul(em_mul(g, s), d);
    return EM_OK;
}

/* softplus: beta * x > threshold ? x : log1p(exp(beta * x)) / beta */
static em_status body_softplus(em_call *c, em_tensor *x)
{
    double beta = c->p.s[0], threshold = c->p.s[1];
    em_tensor *bx = em_mul_scalar(x, beta);
    em_tensor *soft = em_exp(bx);
    em_status st = em__hk1_(K(log1p), soft, 0, 0);
    if (st == EM_OK)
        st = em__hk1_(K(div_scalar), soft, beta, 0);
    em_tensor *in[3] = {em_gt_scalar(bx, threshold), x, soft};
    return st == EM_OK ? write_out(c, K(where), in, 3, 0) : st;
}
static em_status fw_softplus(em_call *c) { return fw_composed(c, body_softplus); }

static em_status bw_softplus(em_bw *b)
{
    em_tensor *g = b->grad_out, *x = b->saved[0];
    double beta = b->p->s[0], threshold = b->p->s[1];
    em_tensor *bx = em_mul_scalar(x, beta);
    em_tensor *z = em_exp(bx);
    em_tensor *d = em_div(em_mul(g, z), em_add_scalar(z, 1.0));
    b->grad_in[0] = em_where(em_gt_scalar(bx, threshold), g, d);
    return EM_OK;
}

#define ACT(ident, opname, gradname, kern)                                                         \
    static const em_op op_##ident = {.name = opname, .grad_fn = gradname, .arity = 1,             \
                                     .saves = EM_SAVE_IN(0), .kernel = K(kern),                   \
                                     .shape = shape_float, .forward = fw_##ident,                 \
                                     .backward = bw_##ident}
ACT(leaky_relu, "leaky_relu", "LeakyReluBackward0", where);
ACT(gelu, "gelu", "GeluBackward0", erf);
ACT(elu, "elu", "EluBackward0", expm1);
ACT(silu, "silu", "SiluBackward0", exp);
ACT(softplus, "softplus", "SoftplusBackward0", log1p);

static em_tensor *act(const em_op *op, em_tensor *a, double s0, double s1, int i0)
{
    em_op_params p;
    memset(&p, 0, sizeof p);
    p.s[0] = s0;
    p.s[1] = s1;
    p.i[0] = i0;
    em_tensor *in[1] = {a};
    return em__apply_h(op, in, 1, &p);
}

EMBER_API em_tensor *em_leaky_relu(em_tensor *a, double negative_slope)
{
    return act(&op_leaky_relu, a, negative_slope, 0, 0);
}

EMBER_API em_tensor *em_gelu(em_tensor *a, em_gelu_approximate approximate)
{
    if (approximate != EM_GELU_NONE && approximate != EM_GELU_TANH) {
        em__tensor *t = em__obj(a);
        if (t)
            em__error(t->ctx, EM_ERR_INVALID, "gelu: approximate must be EM_GELU_NONE or "
                      "EM_GELU_TANH, got %d", (int)approximate);
        return NULL;
    }
    return act(&op_gelu, a, 0, 0, approximate);
}

EMBER_API em_tensor *em_elu(em_tensor *a, double alpha) { return act(&op_elu, a, alpha, 0, 0); }
EMBER_API em_tensor *em_silu(em_tensor *a) { return act(&op_silu, a, 0, 0, 0); }

EMBER_API em_tensor *em_softplus(em_tensor *a, double beta, double threshold)
{
    return act(&op_softplus, a, beta, threshold, 0);
}
