/* core/nn/nn_impl.h — the em_module object shared by the nn files (private to core/nn/):
 * a kind, its own parameters with their local names, and a sequential's children. */
#ifndef EMBER_CORE_NN_IMPL_H
#define EMBER_CORE_NN_IMPL_H

#include "internal.h"
#include <ember/nn.h>

typedef enum em__module_kind {
    EM__MOD_LINEAR, EM__MOD_FUNCTION, EM__MOD_DROPOUT, EM__MOD_SEQUENTIAL,
    EM__MOD_CONV2D, EM__MOD_MAXPOOL2D
} em__module_kind;

#define EM__MODULE_PARAMS 2

struct em_module {
    em__module_kind kind;
    em_context *ctx;
    char *name;                          /* "Linear", ... */
    bool training;
    bool owned;                          /* a child of a sequential */
    int n_params;
    const char *param_names[EM__MODULE_PARAMS];
    em_tensor *params[EM__MODULE_PARAMS];   /* our handles (kept out of every scope) */
    int64_t in_features, out_features;   /* linear */
    double p;                            /* dropout */
    em_tensor *(*fn)(em_tensor *);       /* function module */
    int kernel[2], stride[2], padding[2], dilation[2], groups;   /* conv2d, max_pool2d */
    bool ceil_mode;                      /* max_pool2d */
    int n_children;                      /* sequential */
    em_module **children;
    char **full_names;                   /* names given out by em_module_parameters */
    int n_full_names;
};

/* A zeroed module of kind named name (NULL with EM_ERR_OOM recorded). */
EM_INTERNAL em_module *em__module_new(em_context *ctx, em__module_kind kind, const char *name);
/* Forward of the leaf kinds (layers.c). */
EM_INTERNAL em_tensor *em__linear_forward(em_module *m, em_tensor *x);
EM_INTERNAL em_tensor *em__dropout_forward(em_module *m, em_tensor *x);
/* Conv2d and MaxPool2d (layers_conv.c). */
EM_INTERNAL em_tensor *em__conv2d_forward(em_module *m, em_tensor *x);
EM_INTERNAL em_tensor *em__max_pool2d_forward(em_module *m, em_tensor *x);
/* A kept f32 leaf requiring grad of shape (ndim, shape) from U(-bound, bound), drawn from the
 * context's generator (layers.c); NULL with the error recorded. */
EM_INTERNAL em_tensor *em__uniform_param(em_context *ctx, int ndim, const int64_t *shape,
                                         double bound);
/* A double as Python writes it, for PyTorch's messages (core/optim/optim.c). */
EM_INTERNAL void em__pyfloat(char *buf, size_t n, double v);

#endif
