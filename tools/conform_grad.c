/* tools/conform_grad.c — gradient checks of ember-conform: em_gradcheck (central finite
 * differences against autograd) for every differentiable op, with broadcast operands and
 * non-contiguous (transposed) inputs, in f64 and f32. The backward passes run through the
 * backend's kernels (and the optional *_backward helpers when it has them), so a kernel
 * that is right forward but wrong on some layout the backward produces shows up here.
 * Row names are "<op>.grad". */
#include "conform.h"

#include <math.h>
#include <stdio.h>

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

typedef struct gc_case {
    const char *row, *kernels, *what;
    em_gradcheck_fn fn;
    int n_in;
    int nd[3];
    int64_t shape[3][4];
    double lo, hi;
    bool transposed;   /* input 0 is a transposed (non-contiguous) view */
} gc_case;

#define GC(nm, call)                                                                         \
    static em_tensor *gc_##nm(em_tensor *const *in, int n, void *u)                         \
    {                                                                                        \
        (void)u;                                                                             \
        em_tensor *a = in[0];                                                                \
        em_tensor *b = n > 1 ? in[1] : NULL;                                                 \
        em_tensor *c = n > 2 ? in[2] : NULL;                                                 \
        (void)b;                                                                             \
        (void)c;                                                                             \
        return call;                                                                         \
    }
GC(add, em_add(a, b))
GC(sub, em_sub(a, b))
GC(mul, em_mul(a, b))
GC(div, em_div(a, b))
GC(maximum, em_maximum(a, b))
GC(minimum, em_minimum(a, b))
GC(add_scalar, em_add_scalar(a, 1.5))
GC(sub_scalar, em_sub_scalar(a, 1.5))
GC(rsub_scalar, em_rsub_scalar(a, 1.5))
GC(mul_scalar, em_mul_scalar(a, -2.5))
GC(div_scalar, em_div_scalar(a, 3))
GC(rdiv_scalar, em_rdiv_scalar(a, 2))
GC(pow2, em_pow(a, 2))
GC(pow3, em_pow(a, 3))
GC(powfrac, em_pow(a, 1.5))
GC(powneg, em_pow(a, -2))
GC(neg, em_neg(a))
GC(exp, em_exp(a))
GC(log, em_log(a))
GC(sqrt, em_sqrt(a))
GC(abs, em_abs(a))
GC(relu, em_relu(a))
GC(tanh, em_tanh(a))
GC(sigmoid, em_sigmoid(a))
GC(clamp, em_clamp(a, -0.5, 0.7))
GC(clamp_min, em_clamp_min(a, 0.1))
GC(clamp_max, em_clamp_max(a, 0.1))
GC(mm, em_mm(a, b))
GC(bmm, em_bmm(a, b))
GC(matmul, em_matmul(a, b))
GC(sum, em_sum(a))
GC(sum_dims, em_sum_dims(a, 1, (int[]){1}, false))
GC(sum_keep, em_sum_dims(a, 2, (int[]){0, -1}, true))
GC(mean, em_mean(a))
GC(mean_dims, em_mean_dims(a, 1, (int[]){0}, true))
GC(transpose, em_mul(em_transpose(a, 0, 1), b))
GC(t, em_mul(em_t(a), b))
GC(reshape, em_mul(em_reshape(a, EM_SHAPE(2, 6)), b))
GC(view, em_mul(em_view(em_contiguous(a), EM_SHAPE(12)), b))
GC(expand, em_mul(em_expand(a, EM_SHAPE(3, 2, 4)), b))
GC(unsqueeze, em_mul(em_unsqueeze(a, 1), b))
GC(squeeze, em_mul(em_squeeze(a, 1), b))
GC(where, em_where(em_gt_scalar(c, 0), a, b))
GC(masked_fill, em_masked_fill(a, em_gt_scalar(b, 0), 2.0))
GC(clone, em_mul(em_clone(a), b))
GC(chain_seed, em_sum(em_pow(em_mm(em_relu(em_mm(a, b)), c), 2)))

static const gc_case gc_cases[] = {
    {"add.grad", "add", "broadcast", gc_add, 2, {2, 1}, {{3, 4}, {4}}, -1, 1, false},
    {"add.grad", "add", "non-contiguous", gc_add, 2, {2, 2}, {{3, 4}, {3, 4}}, -1, 1, true},
    {"sub.grad", "sub", "two-sided broadcast", gc_sub, 2, {2, 2}, {{3, 1}, {1, 4}}, -1, 1, false},
    {"mul.grad", "mul", "non-contiguous", gc_mul, 2, {2, 2}, {{3, 4}, {3, 4}}, -1, 1, true},
    {"mul.grad", "mul", "column broadcast", gc_mul, 2, {2, 2}, {{3, 4}, {3, 1}}, -1, 1, false},
    {"div.grad", "div", "broadcast", gc_div, 2, {2, 1}, {{3, 4}, {4}}, 0.5, 2, false},
    {"div.grad", "div", "non-contiguous", gc_div, 2, {2, 2}, {{3, 4}, {3, 4}}, 0.5, 2, true},
    {"maximum.grad", "maximum", "same shape", gc_maximum, 2, {2, 2}, {{3, 4}, {3, 4}}, -1, 1, false},
    {"minimum.grad", "minimum", "broadcast", gc_minimum, 2, {2, 1}, {{3, 4}, {4}}, -1, 1, false},
    {"add_scalar.grad", "add_scalar", "", gc_add_scalar, 1, {2}, {{3, 4}}, -1, 1, false},
    {"sub_scalar.grad", "add_scalar", "", gc_sub_scalar, 1, {2}, {{3, 4}}, -1, 1, false},
    {"rsub_scalar.grad", "rsub_scalar", "non-contiguous", gc_rsub_scalar, 1, {2}, {{3, 4}}, -1, 1, true},
    {"mul_scalar.grad", "mul_scalar", "", gc_mul_scalar, 1, {2}, {{3, 4}}, -1, 1, false},
    {"div_scalar.grad", "div_scalar", "", gc_div_scalar, 1, {2}, {{3, 4}}, -1, 1, false},
    {"rdiv_scalar.grad", "rdiv_scalar", "", gc_rdiv_scalar, 1, {2}, {{3, 4}}, 0.5, 2, false},
    {"pow.grad", "pow_scalar pow_backward", "2, non-contiguous", gc_pow2, 1, {2}, {{3, 4}}, -1, 1, true},
    {"pow.grad", "pow_scalar pow_backward", "3", gc_pow3, 1, {2}, {{3, 4}}, -1, 1, false},
    {"pow.grad", "pow_scalar pow_backward", "1.5", gc_powfrac, 1, {2}, {{3, 4}}, 0.5, 2, false},
    {"pow.grad", "pow_scalar pow_backward", "-2", gc_powneg, 1, {2}, {{3, 4}}, 0.5, 2, false},
    {"neg.grad", "neg", "", gc_neg, 1, {2}, {{3, 4}}, -1, 1, false},
    {"exp.grad", "exp", "non-contiguous", gc_exp, 1, {2}, {{3, 4}}, -1, 1, true},
    {"log.grad", "log", "", gc_log, 1, {2}, {{3, 4}}, 0.5, 2, false},
    {"sqrt.grad", "sqrt", "", gc_sqrt, 1, {2}, {{3, 4}}, 0.5, 2, false},
    {"abs.grad", "abs", "", gc_abs, 1, {2}, {{3, 4}}, -1, 1, false},
    {"relu.grad", "relu relu_backward", "non-contiguous", gc_relu, 1, {2}, {{3, 4}}, -1, 1, true},
    {"tanh.grad", "tanh tanh_backward", "", gc_tanh, 1, {2}, {{3, 4}}, -1, 1, false},
    {"tanh.grad", "tanh tanh_backward", "non-contiguous", gc_tanh, 1, {2}, {{3, 4}}, -1, 1, true},
    {"sigmoid.grad", "sigmoid sigmoid_backward", "", gc_sigmoid, 1, {2}, {{3, 4}}, -2, 2, false},
    {"sigmoid.grad", "sigmoid sigmoid_backward", "non-contiguous", gc_sigmoid, 1, {2}, {{3, 4}}, -2, 2, true},
    {"clamp.grad", "clamp clamp_backward", "", gc_clamp, 1, {2}, {{3, 4}}, -1, 1, false},
    {"clamp.grad", "clamp clamp_backward", "non-contiguous", gc_clamp, 1, {2}, {{3, 4}}, -1, 1, true},
    {"clamp_min.grad", "clamp clamp_backward", "", gc_clamp_min, 1, {2}, {{3, 4}}, -1, 1, false},
    {"clamp_max.grad", "clamp clamp_backward", "", gc_clamp_max, 1, {2}, {{3, 4}}, -1, 1, false},
    {"mm.grad", "gemm", "", gc_mm, 2, {2, 2}, {{3, 5}, {5, 2}}, -1, 1, false},
    {"mm.grad", "gemm", "transposed a", gc_mm, 2, {2, 2}, {{3, 5}, {5, 2}}, -1, 1, true},
    {"bmm.grad", "gemm", "", gc_bmm, 2, {3, 3}, {{2, 3, 4}, {2, 4, 2}}, -1, 1, false},
    {"bmm.grad", "gemm", "transposed a", gc_bmm, 2, {3, 3}, {{2, 3, 4}, {2, 4, 2}}, -1, 1, true},
    {"matmul.grad", "gemm", "batch broadcast", gc_matmul, 2, {3, 2}, {{2, 3, 4}, {4, 2}}, -1, 1, false},
    {"matmul.grad", "gemm", "vector", gc_matmul, 2, {1, 2}, {{4}, {4, 3}}, -1, 1, false},
    {"sum.grad", "sum", "", gc_sum, 1, {3}, {{2, 3, 4}}, -1, 1, false},
    {"sum_dims.grad", "sum", "", gc_sum_dims, 1, {3}, {{2, 3, 4}}, -1, 1, false},
    {"sum_dims.grad", "sum", "keepdim, non-contiguous", gc_sum_keep, 1, {2}, {{4, 3}}, -1, 1, true},
    {"mean.grad", "sum", "non-contiguous", gc_mean, 1, {2}, {{3, 4}}, -1, 1, true},
    {"mean_dims.grad", "sum", "keepdim", gc_mean_dims, 1, {2}, {{3, 4}}, -1, 1, false},
    {"transpose.grad", "-", "", gc_transpose, 2, {2, 2}, {{3, 4}, {4, 3}}, -1, 1, false},
    {"t.grad", "-", "", gc_t, 2, {2, 2}, {{3, 4}, {4, 3}}, -1, 1, false},
    {"reshape.grad", "-", "a view", gc_reshape, 2, {2, 1}, {{3, 4}, {6}}, -1, 1, false},
    {"reshape.grad", "copy", "a copy", gc_reshape, 2, {2, 1}, {{4, 3}, {6}}, -1, 1, true},
    {"view.grad", "-", "", gc_view, 2, {2, 1}, {{3, 4}, {12}}, -1, 1, false},
    {"expand.grad", "-", "", gc_expand, 2, {2, 3}, {{2, 1}, {3, 2, 4}}, -1, 1, false},
    {"unsqueeze.grad", "-", "", gc_unsqueeze, 2, {2, 2}, {{3, 4}, {5, 4}}, -1, 1, false},
    {"squeeze.grad", "-", "", gc_squeeze, 2, {3, 2}, {{3, 1, 4}, {3, 4}}, -1, 1, false},
    {"where.grad", "where", "broadcast", gc_where, 3, {2, 1, 2}, {{3, 4}, {4}, {3, 4}}, -1, 1, false},
    {"where.grad", "where", "non-contiguous", gc_where, 3, {2, 2, 2}, {{3, 4}, {3, 4}, {3, 4}}, -1, 1, true},
    {"masked_fill.grad", "masked_fill", "broadcast mask", gc_masked_fill, 2, {2, 1}, {{3, 4}, {4}}, -1, 1, false},
    {"masked_fill.grad", "masked_fill", "non-contiguous", gc_masked_fill, 2, {2, 2}, {{3, 4}, {3, 4}}, -1, 1, true},
    {"clone.grad", "copy", "non-contiguous", gc_clone, 2, {2, 2}, {{3, 4}, {3, 4}}, -1, 1, true},
    {"seed_chain.grad", "gemm relu", "the seed's network", gc_chain_seed, 3, {2, 2, 2},
     {{4, 5}, {5, 3}, {3, 2}}, -1, 1, false},
};

static void gc_run(cf_row *r, const gc_case *c, em_dtype dt)
{
    cf_case_begin();
    em_tensor *in[3];
    for (int i = 0; i < c->n_in; i++) {
        cf_gen g = {c->lo, c->hi, CF_UNIFORM | CF_AWAY};
        cf_layout lay = i == 0 && c->transposed ? CF_TRANSPOSED : CF_CONTIG;
        em_tensor *t = cf_make(r, dt, c->nd[i], c->shape[i], lay, &g, NULL, NULL);
        /* a leaf of its own: a view of a tensor that needs no grad, cut from it */
        in[i] = t && lay != CF_CONTIG ? em_detach(t) : t;
        if (!in[i] || !cf_status(r, em_tensor_set_requires_grad(in[i], true), "requires_grad"))
            goto done;
    }
    bool f64 = dt == EM_F64;
    double atol = f64 ? CF_GC_ATOL_F64 : CF_GC_ATOL_F32, rtol = f64 ? CF_GC_RTOL_F64 : CF_GC_RTOL_F32;
    /* f32 inputs: the numeric side is evaluated in f64 by em_gradcheck */
    em_gradcheck_result res;
    em_status st = em_gradcheck(c->fn, in, c->n_in, NULL, 1e-6, atol, rtol, &res);
    const char *label = cf_fmt("em_gradcheck %s %s%s%s", em_dtype_name(dt), c->row,
                               c->what[0] ? ", " : "", c->what);
    if (st != EM_OK) {
        cf_fail(r, "%s: %s: %s", label, em_status_name(st),
                res.message[0] ? res.message : em_context_error(cf.ctx));
        goto done;
    }
    /* passing means |a - n| <= atol + rtol |n|, hence max_rel_err <= atol + rtol */
    cf_note(r, cf_bucket(dt), res.max_rel_err, atol + rtol);
    if (res.passed)
        cf_pass(r);
    else
        cf_fail(r, "%s: %s (largest |analytic - numeric| %g, at input %d element %lld)", label,
                res.message, res.max_abs_err, res.worst_input, (long long)res.worst_index);
done:
    cf_case_end();
}

void cf_run_grad(void)
{
    static const em_dtype dts[2] = {EM_F64, EM_F32};
    for (size_t k = 0; k < NELEMS(gc_cases); k++) {
        cf_row *r = cf_row_get(gc_cases[k].row, gc_cases[k].kernels);
        if (!r)
            continue;
        for (int d = 0; d < 2; d++)
            if (cf_dtype_enabled(dts[d]))
                gc_run(r, &gc_cases[k], dts[d]);
    }
}
