/* ember/optim.h — optimisers over a list of parameters (leaves that require grad). */
#ifndef EMBER_OPTIM_H
#define EMBER_OPTIM_H

#include <ember/tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct em_sgd em_sgd;

/* torch.optim.SGD's options; zero-initialise and set lr at least. */
typedef struct em_sgd_options {
    double lr;
    double momentum;
    double dampening;
    double weight_decay;
    bool nesterov;       /* requires momentum > 0 and dampening == 0 */
    bool maximize;
} em_sgd_options;

/* The optimiser holds its own references to params (they stay valid until em_sgd_free). */
EMBER_API em_sgd *em_sgd_create(em_tensor *const *params, int n_params, const em_sgd_options *opt);
EMBER_API void em_sgd_free(em_sgd *opt);
/* One update with PyTorch's rule; params without .grad are skipped. */
EMBER_API em_status em_sgd_step(em_sgd *opt);
/* set_to_none false: grads zeroed in place (PyTorch 1.13's default); true: dropped. */
EMBER_API em_status em_sgd_zero_grad(em_sgd *opt, bool set_to_none);

/* ---- one interface over every optimiser ----
 * An em_optim holds its own references to the parameters (as em_sgd). Its state (moment
 * estimates, momentum buffers) lives in tensors of the parameters' context, created on a
 * parameter's first step; parameters without .grad are skipped and get no state. A step that
 * fails (a device fault, out of memory) leaves parameters and state exactly as before. */
typedef struct em_optim em_optim;

/* torch.optim.Adam / AdamW's options; em_adam_defaults() gives PyTorch's defaults
 * (lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0, amsgrad and maximize false);
 * em_adamw_defaults() the same with weight_decay 1e-2 (AdamW's). */
typedef struct em_adam_options {
    double lr;
    double beta1, beta2;
    double eps;
    double weight_decay;   /* Adam: L2 added to the gradient; AdamW: decoupled, p *= 1 - lr*wd */
    bool amsgrad;
    bool maximize;
} em_adam_options;

/* torch.optim.RMSprop's options; em_rmsprop_defaults(): lr 1e-2, alpha 0.99, eps 1e-8, the
 * rest 0 / false. */
typedef struct em_rmsprop_options {
    double lr;
    double alpha;
    double eps;
    double weight_decay;
    double momentum;
    bool centered;
    bool maximize;
} em_rmsprop_options;

EMBER_API em_adam_options em_adam_defaults(void);
EMBER_API em_adam_options em_adamw_defaults(void);
EMBER_API em_rmsprop_options em_rmsprop_defaults(void);

/* Constructors: NULL with the error recorded (PyTorch's wording: "Invalid learning rate: -1.0")
 * on bad options, no parameters, a non-leaf parameter or parameters of different contexts. */
EMBER_API em_optim *em_optim_sgd(em_tensor *const *params, int n_params, const em_sgd_options *opt);
EMBER_API em_optim *em_optim_adam(em_tensor *const *params, int n_params, const em_adam_options *opt);
EMBER_API em_optim *em_optim_adamw(em_tensor *const *params, int n_params, const em_adam_options *opt);
EMBER_API em_optim *em_optim_rmsprop(em_tensor *const *params, int n_params,
                                     const em_rmsprop_options *opt);
EMBER_API void em_optim_free(em_optim *opt);
/* One update (all-or-nothing). */
EMBER_API em_status em_optim_step(em_optim *opt);
/* set_to_none false: grads zeroed in place (all or none); true: dropped. */
EMBER_API em_status em_optim_zero_grad(em_optim *opt, bool set_to_none);
EMBER_API double em_optim_get_lr(const em_optim *opt);
/* lr >= 0 (else EM_ERR_INVALID); takes effect at the next step. */
EMBER_API em_status em_optim_set_lr(em_optim *opt, double lr);
/* A parameter's state: the tensor called `name` ("exp_avg", "exp_avg_sq", "max_exp_avg_sq",
 * "square_avg", "grad_avg", "momentum_buffer": PyTorch's state_dict names) as a new handle in
 * the current scope (a copy-free alias: do not write to it), or NULL when the parameter has
 * none (yet). em_optim_state_steps: its step count (0 before its first step; SGD keeps none). */
EMBER_API em_tensor *em_optim_state(em_optim *opt, int param, const char *name);
EMBER_API int64_t em_optim_state_steps(const em_optim *opt, int param);

/* ---- learning-rate schedulers (torch.optim.lr_scheduler) ----
 * A scheduler reads the optimiser's lr when created (base_lr) and sets it on every
 * em_sched_step (one epoch / iteration, after em_optim_step), as PyTorch's closed forms:
 *   StepLR:            base_lr * gamma^(epoch / step_size)
 *   CosineAnnealingLR: eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2
 *   LinearLR:          base_lr * (start + (end - start) * min(epoch, total_iters) / total_iters)
 * The linear warm-up sets lr to base_lr * start_factor at creation, as PyTorch does. The
 * optimiser must outlive its scheduler. */
typedef struct em_sched em_sched;
EMBER_API em_sched *em_lr_step(em_optim *opt, int step_size, double gamma);
EMBER_API em_sched *em_lr_cosine(em_optim *opt, int T_max, double eta_min);
EMBER_API em_sched *em_lr_linear_warmup(em_optim *opt, double start_factor, double end_factor,
                                        int total_iters);
EMBER_API em_status em_sched_step(em_sched *s);
EMBER_API void em_sched_free(em_sched *s);

/* torch.nn.utils.clip_grad_norm_: the total norm of the grads of params (those with .grad),
 * 2-norm or max-norm (norm_type INFINITY), into *total_norm_out (may be NULL); when
 * max_norm / (total + 1e-6) < 1 every grad is scaled by it (all or none). */
EMBER_API em_status em_clip_grad_norm_(em_tensor *const *params, int n_params, double max_norm,
                                       double norm_type, double *total_norm_out);

#ifdef __cplusplus
}
#endif
#endif
