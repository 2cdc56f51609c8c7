/* ember/ops.h — differentiable tensor operations. Binary ops broadcast as NumPy; operands
 * must share a context and dtype (no implicit promotion: use em_to_dtype). Arithmetic is
 * defined for f32/f64; comparisons return bool tensors. All return a new tensor (NULL on
 * error, recorded in the context), except in-place ops (suffix _), which return a status.
 * Autograd: see ember/autograd.h; names of the recorded nodes follow PyTorch. */
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

/* ---- with a scalar ---- */
EMBER_API em_tensor *em_add_scalar(em_tensor *a, double s);   /* a + s */
EMBER_API em_tensor *em_sub_scalar(em_tensor *a, double s);   /* a - s */
EMBER_API em_tensor *em_rsub_scalar(em_tensor *a, double s);  /* s - a */
EMBER_API em_tensor *em_mul_scalar(em_tensor *a, double s);   /* a * s */
EMBER_API em_tensor *em_div_scalar(em_tensor *a, double s);   /* a / s */
EMBER_API em_tensor *em_rdiv_scalar(em_tensor *a, double s);  /* s / a */
EMBER_API em_tensor *em_pow(em_tensor *a, double exponent);   /* a ** exponent */

/* ---- elementwise unary ---- */
EMBER_API em_tensor *em_neg(em_tensor *a);
EMBER_API em_tensor *em_exp(em_tensor *a);
EMBER_API em_tensor *em_log(em_tensor *a);
EMBER_API em_tensor *em_sqrt(em_tensor *a);
EMBER_API em_tensor *em_abs(em_tensor *a);
EMBER_API em_tensor *em_relu(em_tensor *a);
EMBER_API em_tensor *em_tanh(em_tensor *a);
EMBER_API em_tensor *em_sigmoid(em_tensor *a);
/* clamp(min, max); em_clamp_min / em_clamp_max leave the other bound open. NaN stays NaN. */
EMBER_API em_tensor *em_clamp(em_tensor *a, double min, double max);
EMBER_API em_tensor *em_clamp_min(em_tensor *a, double min);
EMBER_API em_tensor *em_clamp_max(em_tensor *a, double max);

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
EMBER_API em_tensor *em_sum_dims(em_tensor *a, int ndims, const int *dims, bool keepdim);
EMBER_API em_tensor *em_mean_dims(em_tensor *a, int ndims, const int *dims, bool keepdim);

/* ---- in-place (return status; record autograd as PyTorch does) ---- */
EMBER_API em_status em_add_(em_tensor *self, em_tensor *other);
EMBER_API em_status em_sub_(em_tensor *self, em_tensor *other);
EMBER_API em_status em_mul_(em_tensor *self, em_tensor *other);
EMBER_API em_status em_add_scalar_(em_tensor *self, double s);
EMBER_API em_status em_mul_scalar_(em_tensor *self, double s);
EMBER_API em_status em_zero_(em_tensor *self);
EMBER_API em_status em_fill_(em_tensor *self, double value);
EMBER_API em_status em_copy_(em_tensor *self, em_tensor *src);   /* broadcasts src, casts dtype */
EMBER_API em_status em_masked_fill_(em_tensor *self, em_tensor *mask, double value);
EMBER_API em_status em_clamp_(em_tensor *self, double min, double max);

#ifdef __cplusplus
}
#endif
#endif
