/* ember/ops.h — differentiable tensor operations. Binary ops broadcast as NumPy; operands
 * must share a context and dtype (no implicit promotion between tensors: use em_to_dtype).
 * Arithmetic is defined for f32/f64, and where PyTorch allows it for the integer dtypes
 * (add, sub, mul, neg, abs, maximum, minimum, clamp, relu, floor_divide, remainder, sign,
 * and pow with a non-negative integral exponent); integer arithmetic wraps as in PyTorch.
 * Tensor-scalar ops promote as PyTorch: an integer (or bool) tensor with a scalar that has
 * a fractional part, or in a true division (div, div_scalar, rdiv_scalar), gives f32; with
 * a whole scalar it keeps its dtype (bool becomes i64), the scalar converted to the dtype
 * as PyTorch converts it (u8 + 300 is u8 + 44). A scalar is a double, so a whole value
 * counts as an integer: i64 * 2.0 stays i64 where PyTorch's float 2.0 would give f32.
 * Functions defined on floats (exp, log, sqrt, tanh, sigmoid, log1p, expm1, sin, cos, erf,
 * reciprocal) of an integer or bool tensor give f32, as torch.exp(int tensor) does; neg,
 * abs, relu, sub and rounding of bool tensors, pow_tensor of integers and integer **
 * negative integer are EM_ERR_DTYPE / EM_ERR_INVALID errors. An in-place op whose result
 * would have another dtype than self fails ("result type f32 can't be cast to the desired
 * output type i64"). Comparisons return bool tensors. All return a new tensor (NULL on
 * error, recorded in the context), except in-place ops (suffix _), which return a status.
 * Autograd: see ember/autograd.h; names of the recorded nodes follow PyTorch; results that
 * are not floating never require grad. */
#ifndef EMBER_OPS_H
#define EMBER_OPS_H

#include <ember/tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- elementwise binary (broadcasting) ---- */
EMBER_API em_tensor *em_add(em_tensor *a, em_tensor *b);
EMBER_API em_tensor *em_sub(em_tensor *a, em_tensor *b);
EMBER_API em_tensor *em_mul(em_tensor *a, em_tensor *b);
EMBER_API em_tensor *em_div(em_tensor *a, em_tensor *b);
EMBER_API em_tensor *em_maximum(em_tensor *a, em_tensor *b);
EMBER_API em_tensor *em_minimum(em_tensor *a, em_tensor *b);
/* a ** b elementwise (floats). */
EMBER_API em_tensor *em_pow_tensor(em_tensor *a, em_tensor *b);
/* Python's // and %: rounded toward -inf; the remainder has the sign of b. Integer
 * division by zero is an error (EM_ERR_INVALID "ZeroDivisionError"), as in PyTorch, unless
 * the result is empty (no element is divided).
 * floor_divide is not differentiable: as in PyTorch its result has grad_fn NotImplemented
 * and a backward through it fails. */
EMBER_API em_tensor *em_floor_divide(em_tensor *a, em_tensor *b);
EMBER_API em_tensor *em_remainder(em_tensor *a, em_tensor *b);

/* ---- with a scalar ---- */
EMBER_API em_tensor *em_add_scalar(em_tensor *a, double s);   /* a + s */
EMBER_API em_tensor *em_sub_scalar(em_tensor *a, double s);   /* a - s */
EMBER_API em_tensor *em_rsub_scalar(em_tensor *a, double s);  /* s - a */
EMBER_API em_tensor *em_mul_scalar(em_tensor *a, double s);   /* a * s */
EMBER_API em_tensor *em_div_scalar(em_tensor *a, double s);   /* a / s */
EMBER_API em_tensor *em_rdiv_scalar(em_tensor *a, double s);  /* s / a */
EMBER_API em_tensor *em_pow(em_tensor *a, double exponent);   /* a ** exponent */
EMBER_API em_tensor *em_floor_divide_scalar(em_tensor *a, double s); /* a // s */
EMBER_API em_tensor *em_remainder_scalar(em_tensor *a, double s);    /* a % s */

/* ---- elementwise unary ---- */
EMBER_API em_tensor *em_neg(em_tensor *a);
EMBER_API em_tensor *em_exp(em_tensor *a);
EMBER_API em_tensor *em_log(em_tensor *a);
EMBER_API em_tensor *em_sqrt(em_tensor *a);
EMBER_API em_tensor *em_abs(em_tensor *a);
EMBER_API em_tensor *em_relu(em_tensor *a);
EMBER_API em_tensor *em_tanh(em_tensor *a);
EMBER_API em_tensor *em_sigmoid(em_tensor *a);
EMBER_API em_tensor *em_log1p(em_tensor *a);
EMBER_API em_tensor *em_expm1(em_tensor *a);
EMBER_API em_tensor *em_sin(em_tensor *a);
EMBER_API em_tensor *em_cos(em_tensor *a);
EMBER_API em_tensor *em_erf(em_tensor *a);
EMBER_API em_tensor *em_reciprocal(em_tensor *a);             /* 1 / a */
EMBER_API em_tensor *em_sign(em_tensor *a);                   /* -1, 0, 1 (any numeric dtype) */
/* Rounding (floats; an integer tensor is returned as a copy). em_round: halves to even. */
EMBER_API em_tensor *em_floor(em_tensor *a);
EMBER_API em_tensor *em_ceil(em_tensor *a);
EMBER_API em_tensor *em_round(em_tensor *a);
/* torch.clamp(a, min, max). PyTorch's clamp(min=x) is em_clamp_min, clamp(max=x) is
 * em_clamp_max (an absent bound is open). NaN stays NaN. */
EMBER_API em_tensor *em_clamp(em_tensor *a, double min, double max);
EMBER_API em_tensor *em_clamp_min(em_tensor *a, double min);
EMBER_API em_tensor *em_clamp_max(em_tensor *a, double max);
/* clamp with tensor bounds (broadcast; NULL: that bound is open), as torch.clamp. */
EMBER_API em_tensor *em_clamp_tensor(em_tensor *a, em_tensor *min, em_tensor *max);

/* ---- activations (floats) ---- */
/* Along dim, numerically stable (the maximum is subtracted first). */
EMBER_API em_tensor *em_softmax(em_tensor *a, int dim);
EMBER_API em_tensor *em_log_softmax(em_tensor *a, int dim);
EMBER_API em_tensor *em_leaky_relu(em_tensor *a, double negative_slope);  /* PyTorch: 0.01 */
typedef enum em_gelu_approximate {
    EM_GELU_NONE = 0,  /* x * Phi(x), exact (erf) */
    EM_GELU_TANH = 1   /* the tanh approximation, as approximate='tanh' */
} em_gelu_approximate;
EMBER_API em_tensor *em_gelu(em_tensor *a, em_gelu_approximate approximate);
EMBER_API em_tensor *em_elu(em_tensor *a, double alpha);                  /* PyTorch: 1.0 */
EMBER_API em_tensor *em_silu(em_tensor *a);
/* log(1 + exp(beta * x)) / beta, linear where beta * x > threshold (PyTorch: 1, 20). */
EMBER_API em_tensor *em_softplus(em_tensor *a, double beta, double threshold);

/* ---- pooling and normalisation (floats) ---- */
/* torch.nn.functional.avg_pool2d over (C, H, W) or (N, C, H, W): kernel_size {kH, kW}; stride
 * NULL means kernel_size, padding NULL means {0, 0} (at most half the kernel); output size
 * floor((H + 2 pH - kH) / sH) + 1 (ceil with ceil_mode, a last window that would start in
 * the right padding dropped), as PyTorch. Each window's sum is divided by divisor_override
 * when it is nonzero (0: none), else by the window's size with padding (count_include_pad)
 * or without. PyTorch's defaults: ceil_mode false, count_include_pad true, no override. */
EMBER_API em_tensor *em_avg_pool2d(em_tensor *x, const int64_t kernel_size[2],
                                   const int64_t stride[2], const int64_t padding[2],
                                   bool ceil_mode, bool count_include_pad,
                                   int64_t divisor_override);
/* torch.nn.functional.adaptive_avg_pool2d: output {OH, OW}; output row i averages input rows
 * floor(i * H / OH) .. ceil((i + 1) * H / OH) - 1 (columns alike). */
EMBER_API em_tensor *em_adaptive_avg_pool2d(em_tensor *x, const int64_t output_size[2]);
/* torch.nn.functional.batch_norm over (N, C), (N, C, L) or (N, C, H, W, ...): per channel
 * (dim 1), (x - mean) / sqrt(var + eps) * weight + bias. training: the batch's mean and
 * biased variance over every dim but dim 1 (more than one value per channel needed), and
 * running_mean / running_var (both or neither; C elements) are updated in place,
 * running = (1 - momentum) * running + momentum * batch statistic, with the unbiased
 * variance; eval: the running statistics are used (then required). weight and bias (C
 * elements) may be NULL. PyTorch's defaults: momentum 0.1, eps 1e-5. grad_fn
 * NativeBatchNormBackward0. */
EMBER_API em_tensor *em_batch_norm(em_tensor *x, em_tensor *running_mean, em_tensor *running_var,
                                   em_tensor *weight, em_tensor *bias, bool training,
                                   double momentum, double eps);
/* torch.nn.functional.layer_norm: normalised over the last n_normalized dims, which must be
 * normalized_shape; weight and bias (NULL: none) have normalized_shape. grad_fn
 * NativeLayerNormBackward0. */
EMBER_API em_tensor *em_layer_norm(em_tensor *x, int n_normalized,
                                   const int64_t *normalized_shape, em_tensor *weight,
                                   em_tensor *bias, double eps);
/* torch.nn.functional.dropout(x, p, training): in training each element is zeroed with
 * probability p (the context's generator: the same elements on every backend for one seed)
 * and the others scaled by 1 / (1 - p) (p = 1: zeros); the input itself (a new handle to
 * it) when p = 0, in eval, or when x is empty. em_dropout is the module (<ember/nn.h>). */
EMBER_API em_tensor *em_dropout_functional(em_tensor *x, double p, bool training);

/* ---- comparisons (bool result, broadcasting) ---- */
EMBER_API em_tensor *em_lt(em_tensor *a, em_tensor *b);
EMBER_API em_tensor *em_le(em_tensor *a, em_tensor *b);
EMBER_API em_tensor *em_gt(em_tensor *a, em_tensor *b);
EMBER_API em_tensor *em_ge(em_tensor *a, em_tensor *b);
EMBER_API em_tensor *em_eq(em_tensor *a, em_tensor *b);
EMBER_API em_tensor *em_ne(em_tensor *a, em_tensor *b);
EMBER_API em_tensor *em_lt_scalar(em_tensor *a, double s);
EMBER_API em_tensor *em_le_scalar(em_tensor *a, double s);
EMBER_API em_tensor *em_gt_scalar(em_tensor *a, double s);
EMBER_API em_tensor *em_ge_scalar(em_tensor *a, double s);
EMBER_API em_tensor *em_eq_scalar(em_tensor *a, double s);
EMBER_API em_tensor *em_ne_scalar(em_tensor *a, double s);
/* true if every element of a bool tensor is true (or a and b are equal, for em_equal). */
EMBER_API em_status em_all(em_tensor *mask, bool *out);
EMBER_API em_status em_equal(em_tensor *a, em_tensor *b, bool *out);

/* ---- selection ---- */
EMBER_API em_tensor *em_where(em_tensor *cond, em_tensor *a, em_tensor *b);
EMBER_API em_tensor *em_masked_fill(em_tensor *a, em_tensor *mask, double value);

/* ---- linear algebra ---- */
EMBER_API em_tensor *em_mm(em_tensor *a, em_tensor *b);      /* (n,k) @ (k,m) */
EMBER_API em_tensor *em_bmm(em_tensor *a, em_tensor *b);     /* (b,n,k) @ (b,k,m) */
/* torch.matmul rules: 1-D dot/matvec, 2-D mm, >2-D batched with broadcast batch dims. */
EMBER_API em_tensor *em_matmul(em_tensor *a, em_tensor *b);

/* ---- reductions ---- */
EMBER_API em_tensor *em_sum(em_tensor *a);                   /* all elements -> 0-dim */
EMBER_API em_tensor *em_mean(em_tensor *a);
/* Over the listed dims (negative dims count from the end); ndims = 0 reduces over every
 * dim, as x.sum(dim=[]) does. A bool or integer tensor sums to i64 (mean needs floats). */
EMBER_API em_tensor *em_sum_dims(em_tensor *a, int ndims, const int *dims, bool keepdim);
EMBER_API em_tensor *em_mean_dims(em_tensor *a, int ndims, const int *dims, bool keepdim);
/* Largest / smallest element (0-dim; NaN if any element is NaN). Empty tensors are an error. */
EMBER_API em_tensor *em_max(em_tensor *a);
EMBER_API em_tensor *em_min(em_tensor *a);
/* Along dim: the values and their i64 indices (the first on ties), as torch.max(a, dim).
 * Either output pointer may be NULL. */
EMBER_API em_status em_max_dim(em_tensor *a, int dim, bool keepdim, em_tensor **values,
                               em_tensor **indices);
EMBER_API em_status em_min_dim(em_tensor *a, int dim, bool keepdim, em_tensor **values,
                               em_tensor **indices);
EMBER_API em_tensor *em_argmax(em_tensor *a, int dim, bool keepdim);   /* i64 result */
EMBER_API em_tensor *em_argmin(em_tensor *a, int dim, bool keepdim);
EMBER_API em_tensor *em_prod(em_tensor *a);                            /* -> 0-dim */
EMBER_API em_tensor *em_prod_dim(em_tensor *a, int dim, bool keepdim);
/* Variance / standard deviation over dims (ndims = 0: all), with Bessel's correction when
 * unbiased (N - 1 in the denominator), as torch.var(a, dims, unbiased, keepdim). */
EMBER_API em_tensor *em_var(em_tensor *a, bool unbiased);
EMBER_API em_tensor *em_std(em_tensor *a, bool unbiased);
EMBER_API em_tensor *em_var_dims(em_tensor *a, int ndims, const int *dims, bool unbiased,
                                 bool keepdim);
EMBER_API em_tensor *em_std_dims(em_tensor *a, int ndims, const int *dims, bool unbiased,
                                 bool keepdim);
/* log(sum(exp(a))) over dims, computed stably. */
EMBER_API em_tensor *em_logsumexp(em_tensor *a, int ndims, const int *dims, bool keepdim);
/* Whether any element is nonzero (a 0-dim bool tensor; over one dim with em_any_dim). */
EMBER_API em_tensor *em_any(em_tensor *a);
EMBER_API em_tensor *em_any_dim(em_tensor *a, int dim, bool keepdim);

/* ---- in-place (return status; record autograd as PyTorch does) ----
 * The result must have self's shape (other operands broadcast to it) and dtype. Every call
 * bumps self's version, also when self is empty. An expanded self (several elements at one
 * memory location) is refused (EM_ERR_INVALID), but by em_fill_, em_zero_ and
 * em_masked_fill_, which write its base, as PyTorch 1.13 (masked_fill_: an element where the
 * mask holds at any of its positions). */
EMBER_API em_status em_add_(em_tensor *self, em_tensor *other);
EMBER_API em_status em_sub_(em_tensor *self, em_tensor *other);
EMBER_API em_status em_mul_(em_tensor *self, em_tensor *other);
EMBER_API em_status em_add_scalar_(em_tensor *self, double s);
EMBER_API em_status em_mul_scalar_(em_tensor *self, double s);
EMBER_API em_status em_zero_(em_tensor *self);
EMBER_API em_status em_fill_(em_tensor *self, double value);
EMBER_API em_status em_copy_(em_tensor *self, em_tensor *src);   /* src broadcast to self, cast */
EMBER_API em_status em_masked_fill_(em_tensor *self, em_tensor *mask, double value);
EMBER_API em_status em_clamp_(em_tensor *self, double min, double max);
EMBER_API em_status em_div_(em_tensor *self, em_tensor *other);
EMBER_API em_status em_sub_scalar_(em_tensor *self, double s);
EMBER_API em_status em_div_scalar_(em_tensor *self, double s);
EMBER_API em_status em_pow_(em_tensor *self, double exponent);
EMBER_API em_status em_neg_(em_tensor *self);
EMBER_API em_status em_exp_(em_tensor *self);
EMBER_API em_status em_log_(em_tensor *self);
EMBER_API em_status em_sqrt_(em_tensor *self);
EMBER_API em_status em_abs_(em_tensor *self);
EMBER_API em_status em_relu_(em_tensor *self);
EMBER_API em_status em_tanh_(em_tensor *self);
EMBER_API em_status em_sigmoid_(em_tensor *self);
EMBER_API em_status em_reciprocal_(em_tensor *self);
EMBER_API em_status em_floor_(em_tensor *self);
EMBER_API em_status em_ceil_(em_tensor *self);
EMBER_API em_status em_round_(em_tensor *self);

#ifdef __cplusplus
}
#endif
#endif
