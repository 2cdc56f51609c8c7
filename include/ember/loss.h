/* ember/loss.h — loss functions with PyTorch's semantics (torch.nn.functional). Each
 * reduces as its `reduction` says: the mean over elements (PyTorch's default), the sum,
 * or none (the per-element losses). Class targets are i64 tensors. Options beyond the
 * common case go through the _ex forms, whose options start from em_*_defaults(). */
#ifndef EMBER_LOSS_H
#define EMBER_LOSS_H

#include <ember/tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum em_reduction {
    EM_REDUCTION_MEAN = 0,
    EM_REDUCTION_SUM = 1,
    EM_REDUCTION_NONE = 2
} em_reduction;

/* (input - target)^2, |input - target|, and Huber-like smooth L1 (quadratic below beta,
 * PyTorch's default beta is 1.0). input and target broadcast. */
EMBER_API em_tensor *em_mse_loss(em_tensor *input, em_tensor *target, em_reduction reduction);
EMBER_API em_tensor *em_l1_loss(em_tensor *input, em_tensor *target, em_reduction reduction);
EMBER_API em_tensor *em_smooth_l1_loss(em_tensor *input, em_tensor *target,
                                       em_reduction reduction, double beta);

/* Cross-entropy and negative log-likelihood over classes, as F.cross_entropy / F.nll_loss:
 * input (N, C), (C) or (N, C, d1, ...); target of class indices (i64), (N), () or
 * (N, d1, ...). */
typedef struct em_class_loss_options {
    em_tensor *weight;       /* per-class weights (C), or NULL */
    int64_t ignore_index;    /* targets equal to it contribute nothing (default -100) */
    em_reduction reduction;  /* default mean: weighted mean over non-ignored targets */
    double label_smoothing;  /* cross-entropy only, in [0, 1] (default 0) */
} em_class_loss_options;
EMBER_API em_class_loss_options em_class_loss_defaults(void);

/* The log-softmax of logits, then nll: computed in one stable pass (log-sum-exp). */
EMBER_API em_tensor *em_cross_entropy(em_tensor *logits, em_tensor *target);
EMBER_API em_tensor *em_cross_entropy_ex(em_tensor *logits, em_tensor *target,
                                         const em_class_loss_options *opt);
/* -input[n, target[n]] (input holds log-probabilities). */
EMBER_API em_tensor *em_nll_loss(em_tensor *log_probs, em_tensor *target);
EMBER_API em_tensor *em_nll_loss_ex(em_tensor *log_probs, em_tensor *target,
                                    const em_class_loss_options *opt);

/* Sigmoid and binary cross-entropy in one stable expression; target of input's shape in
 * [0, 1]. */
typedef struct em_bce_options {
    em_tensor *weight;       /* broadcast to input, or NULL */
    em_tensor *pos_weight;   /* weight of positive examples per class (last dim), or NULL */
    em_reduction reduction;
} em_bce_options;
EMBER_API em_bce_options em_bce_defaults(void);
EMBER_API em_tensor *em_binary_cross_entropy_with_logits(em_tensor *input, em_tensor *target);
EMBER_API em_tensor *em_binary_cross_entropy_with_logits_ex(em_tensor *input, em_tensor *target,
                                                            const em_bce_options *opt);

#ifdef __cplusplus
}
#endif
#endif
