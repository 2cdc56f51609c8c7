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

#ifdef __cplusplus
}
#endif
#endif
