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

/* Index tensors built inside the function (they do not take part in the check). */
static em_tensor *idx(em_tensor *like, int nd, const int64_t *shape, const int64_t *v)
{
    return em_tensor_from_data(em_tensor_context(like), EM_I64, nd, shape, v);
}

static em_tensor *dim_values(em_tensor *a, bool max)
{
    em_tensor *v = NULL;
    em_status st = max ? em_max_dim(a, 1, true, &v, NULL) : em_min_dim(a, -1, false, &v, NULL);
    return st == EM_OK ? v : NULL;
}

static em_tensor *piece(em_tensor *a, bool chunk)
{
    em_tensor *p[4];
    int n = chunk ? em_chunk(a, 2, 1, p, 4) : em_split(a, 2, 1, p, 4);
    return n >= 2 ? p[1] : NULL;
}

/* cross-entropy with class weights, an ignored target and label smoothing; nll likewise */
static em_tensor *class_loss(em_tensor *a, bool ce)
{
    em_class_loss_options o = em_class_loss_defaults();
    double w[4] = {0.5, 2, 1, 1.5};
    o.weight = em_to_dtype(em_tensor_from_data(em_tensor_context(a), EM_F64, EM_SHAPE(4), w),
                           em_tensor_dtype(a));
    o.ignore_index = 1;
    o.label_smoothing = ce ? 0.15 : 0;
    return ce ? em_cross_entropy_ex(a, idx(a, 1, (int64_t[]){3}, (int64_t[]){2, 1, 3}), &o)
              : em_nll_loss_ex(a, idx(a, 1, (int64_t[]){3}, (int64_t[]){2, 1, 0}), &o);
}

static em_tensor *bce_ex(em_tensor *a, em_tensor *b)
{
    em_bce_options o = em_bce_defaults();
    double pw[4] = {0.5, 2, 1, 3};
    o.pos_weight = em_to_dtype(em_tensor_from_data(em_tensor_context(a), EM_F64, EM_SHAPE(4), pw),
                               em_tensor_dtype(a));
    o.reduction = EM_REDUCTION_SUM;
    return em_binary_cross_entropy_with_logits_ex(a, b, &o);
}

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
/* ABI 1.2 vocabulary */
GC(log1p, em_log1p(a))
GC(expm1, em_expm1(a))
GC(sin, em_sin(a))
GC(cos, em_cos(a))
GC(erf, em_erf(a))
GC(reciprocal, em_reciprocal(a))
GC(floor, em_add(em_floor(a), a))
GC(ceil, em_add(em_ceil(a), a))
GC(round, em_add(em_round(a), a))
GC(sign, em_add(em_sign(a), a))
GC(pow_tensor, em_pow_tensor(a, b))
GC(remainder, em_remainder(a, b))
GC(leaky_relu, em_leaky_relu(a, 0.1))
GC(gelu, em_gelu(a, EM_GELU_NONE))
GC(gelu_tanh, em_gelu(a, EM_GELU_TANH))
GC(elu, em_elu(a, 1.5))
GC(silu, em_silu(a))
GC(softplus, em_softplus(a, 2, 1))
GC(clamp_tensor, em_clamp_tensor(a, b, NULL))
GC(clamp_tensor2, em_clamp_tensor(a, b, c))
GC(softmax, em_softmax(a, 1))
GC(softmax0, em_softmax(a, 0))
GC(log_softmax, em_log_softmax(a, -1))
GC(logsumexp, em_logsumexp(a, 1, (int[]){1}, true))
GC(prod, em_prod(a))
GC(prod_dim, em_prod_dim(a, 1, false))
GC(max, em_max(a))
GC(min, em_min(a))
GC(max_dim, dim_values(a, true))
GC(min_dim, dim_values(a, false))
GC(var, em_var(a, true))
GC(std, em_std(a, false))
GC(var_dims, em_var_dims(a, 1, (int[]){0}, true, true))
GC(std_dims, em_std_dims(a, 2, (int[]){0, 2}, true, false))
GC(narrow, em_narrow(a, 1, -3, 2))
GC(select, em_select(a, 0, 1))
GC(slice, em_slice(a, 1, 0, EM_END, 2))
GC(permute, em_permute(a, 3, (int[]){2, 0, 1}))
GC(split, piece(a, false))
GC(chunk, piece(a, true))
GC(index_select, em_index_select(a, 0, idx(a, 1, (int64_t[]){4}, (int64_t[]){2, 0, 2, 1})))
GC(gather, em_gather(a, 1, idx(a, 2, (int64_t[]){3, 3}, (int64_t[]){0, 3, 3, 1, 1, 2, 0, 0, 0})))
GC(scatter_add, em_scatter_add(a, 1, idx(a, 2, (int64_t[]){3, 2}, (int64_t[]){3, 3, 0, 1, 2, 2}), b))
GC(cat, em_cat((em_tensor *[]){a, b, a}, 3, 1))
GC(stack, em_stack((em_tensor *[]){a, b}, 2, -1))
GC(mse_loss, em_mse_loss(a, b, EM_REDUCTION_MEAN))
GC(l1_loss, em_l1_loss(a, b, EM_REDUCTION_SUM))
GC(smooth_l1_loss, em_smooth_l1_loss(a, b, EM_REDUCTION_NONE, 0.5))
GC(cross_entropy, em_cross_entropy(a, idx(a, 1, (int64_t[]){3}, (int64_t[]){2, 0, 3})))
GC(cross_entropy_ex, class_loss(a, true))
GC(nll_loss, class_loss(a, false))
GC(bce, em_binary_cross_entropy_with_logits(a, b))
GC(bce_ex, bce_ex(a, b))

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
    /* ABI 1.2 vocabulary */
    {"log1p.grad", "log1p", "non-contiguous", gc_log1p, 1, {2}, {{3, 4}}, -0.5, 2, true},
    {"expm1.grad", "expm1", "", gc_expm1, 1, {2}, {{3, 4}}, -2, 2, false},
    {"sin.grad", "sin cos", "non-contiguous", gc_sin, 1, {2}, {{3, 4}}, -3, 3, true},
    {"cos.grad", "cos sin", "", gc_cos, 1, {2}, {{3, 4}}, -3, 3, false},
    {"erf.grad", "erf exp", "", gc_erf, 1, {2}, {{3, 4}}, -2, 2, false},
    {"reciprocal.grad", "rdiv_scalar", "", gc_reciprocal, 1, {2}, {{3, 4}}, 0.5, 2, false},
    {"floor.grad", "floor", "zero gradient", gc_floor, 1, {2}, {{3, 4}}, -2, 2, false},
    {"ceil.grad", "ceil", "zero gradient", gc_ceil, 1, {2}, {{3, 4}}, -2, 2, true},
    {"round.grad", "round", "zero gradient", gc_round, 1, {2}, {{3, 4}}, -2, 2, false},
    {"sign.grad", "sign", "zero gradient", gc_sign, 1, {2}, {{3, 4}}, -2, 2, false},
    {"pow_tensor.grad", "pow log", "broadcast exponent", gc_pow_tensor, 2, {2, 1}, {{3, 4}, {4}}, 0.5, 2, false},
    {"pow_tensor.grad", "pow log", "non-contiguous", gc_pow_tensor, 2, {2, 2}, {{3, 4}, {3, 4}}, 0.5, 2, true},
    {"remainder.grad", "remainder floor_divide", "", gc_remainder, 2, {2, 2}, {{3, 4}, {3, 4}}, 0.3, 2, false},
    {"leaky_relu.grad", "-", "", gc_leaky_relu, 1, {2}, {{3, 4}}, -1, 1, false},
    {"gelu.grad", "erf", "exact", gc_gelu, 1, {2}, {{3, 4}}, -2, 2, false},
    {"gelu.grad", "tanh", "tanh approximation, non-contiguous", gc_gelu_tanh, 1, {2}, {{3, 4}}, -2, 2, true},
    {"elu.grad", "exp", "", gc_elu, 1, {2}, {{3, 4}}, -1, 1, false},
    {"silu.grad", "sigmoid", "", gc_silu, 1, {2}, {{3, 4}}, -2, 2, false},
    {"softplus.grad", "exp log1p", "both sides of the threshold", gc_softplus, 1, {2}, {{3, 4}}, -1, 1, false},
    {"clamp_tensor.grad", "maximum minimum", "lower bound, broadcast", gc_clamp_tensor, 2, {2, 1}, {{3, 4}, {4}}, -1, 1, false},
    {"clamp_tensor.grad", "maximum minimum", "both bounds", gc_clamp_tensor2, 3, {2, 2, 2}, {{3, 4}, {3, 4}, {3, 4}}, -1, 1, true},
    {"softmax.grad", "softmax", "rows", gc_softmax, 1, {2}, {{3, 4}}, -2, 2, false},
    {"softmax.grad", "softmax", "columns, non-contiguous", gc_softmax0, 1, {2}, {{3, 4}}, -2, 2, true},
    {"log_softmax.grad", "log_softmax softmax", "", gc_log_softmax, 1, {3}, {{2, 3, 4}}, -2, 2, false},
    {"log_softmax.grad", "log_softmax softmax", "non-contiguous", gc_log_softmax, 1, {2}, {{3, 4}}, -2, 2, true},
    {"logsumexp.grad", "max_dim exp sum", "keepdim", gc_logsumexp, 1, {2}, {{3, 4}}, -2, 2, false},
    {"prod.grad", "prod", "", gc_prod, 1, {2}, {{3, 4}}, 0.5, 1.5, false},
    {"prod_dim.grad", "prod", "non-contiguous", gc_prod_dim, 1, {2}, {{3, 4}}, 0.5, 1.5, true},
    {"max.grad", "max_dim", "", gc_max, 1, {2}, {{3, 4}}, -2, 2, false},
    {"min.grad", "min_dim", "non-contiguous", gc_min, 1, {2}, {{3, 4}}, -2, 2, true},
    {"max_dim.grad", "max_dim scatter_add", "keepdim", gc_max_dim, 1, {3}, {{2, 3, 4}}, -2, 2, false},
    {"min_dim.grad", "min_dim scatter_add", "non-contiguous", gc_min_dim, 1, {2}, {{3, 4}}, -2, 2, true},
    {"var.grad", "sum", "unbiased", gc_var, 1, {2}, {{3, 4}}, -2, 2, false},
    {"std.grad", "sum sqrt", "biased, non-contiguous", gc_std, 1, {2}, {{3, 4}}, -2, 2, true},
    {"var_dims.grad", "sum", "keepdim", gc_var_dims, 1, {2}, {{3, 4}}, -2, 2, false},
    {"std_dims.grad", "sum sqrt", "two dims", gc_std_dims, 1, {3}, {{2, 3, 4}}, -2, 2, false},
    {"narrow.grad", "-", "negative start", gc_narrow, 1, {2}, {{3, 5}}, -1, 1, false},
    {"select.grad", "-", "non-contiguous", gc_select, 1, {2}, {{3, 4}}, -1, 1, true},
    {"slice.grad", "-", "step 2", gc_slice, 1, {2}, {{3, 5}}, -1, 1, false},
    {"permute.grad", "-", "", gc_permute, 1, {3}, {{2, 3, 4}}, -1, 1, false},
    {"split.grad", "-", "", gc_split, 1, {2}, {{3, 5}}, -1, 1, false},
    {"chunk.grad", "-", "non-contiguous", gc_chunk, 1, {2}, {{3, 5}}, -1, 1, true},
    {"index_select.grad", "index_select scatter_add", "repeated indices", gc_index_select, 1, {2}, {{3, 4}}, -1, 1, false},
    {"index_select.grad", "index_select scatter_add", "non-contiguous", gc_index_select, 1, {2}, {{3, 4}}, -1, 1, true},
    {"gather.grad", "gather scatter_add", "repeated indices", gc_gather, 1, {2}, {{3, 4}}, -1, 1, false},
    {"gather.grad", "gather scatter_add", "non-contiguous", gc_gather, 1, {2}, {{3, 4}}, -1, 1, true},
    {"scatter_add.grad", "scatter_add gather", "self and src", gc_scatter_add, 2, {2, 2}, {{3, 4}, {3, 2}}, -1, 1, false},
    {"scatter_add.grad", "scatter_add gather", "non-contiguous self", gc_scatter_add, 2, {2, 2}, {{3, 4}, {3, 2}}, -1, 1, true},
    {"cat.grad", "copy", "a piece twice", gc_cat, 2, {2, 2}, {{3, 2}, {3, 4}}, -1, 1, false},
    {"stack.grad", "copy", "non-contiguous", gc_stack, 2, {2, 2}, {{3, 4}, {3, 4}}, -1, 1, true},
    {"mse_loss.grad", "sub mul sum", "mean", gc_mse_loss, 2, {2, 2}, {{3, 4}, {3, 4}}, -1, 1, false},
    {"l1_loss.grad", "sub abs sum", "sum", gc_l1_loss, 2, {2, 2}, {{3, 4}, {3, 4}}, -1, 1, true},
    {"smooth_l1_loss.grad", "sub abs", "none, beta 0.5", gc_smooth_l1_loss, 2, {2, 2}, {{3, 4}, {3, 4}}, -1, 1, false},
    {"cross_entropy.grad", "log_softmax softmax", "", gc_cross_entropy, 1, {2}, {{3, 4}}, -2, 2, false},
    {"cross_entropy.grad", "log_softmax softmax", "weights, ignore_index, label smoothing", gc_cross_entropy_ex, 1,
     {2}, {{3, 4}}, -2, 2, true},
    {"nll_loss.grad", "gather", "weights, ignore_index", gc_nll_loss, 1, {2}, {{3, 4}}, -2, 2, false},
    {"bce_with_logits.grad", "sigmoid log1p exp", "", gc_bce, 2, {2, 2}, {{3, 4}, {3, 4}}, 0.05, 0.95, false},
    {"bce_with_logits.grad", "sigmoid log1p exp", "pos_weight, non-contiguous", gc_bce_ex, 2, {2, 2},
     {{3, 4}, {3, 4}}, 0.05, 0.95, true},
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
