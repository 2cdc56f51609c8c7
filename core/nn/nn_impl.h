/* core/nn/nn_impl.h — the em_module object shared by the nn files (private to core/nn/):
 * a kind, its own parameters with their local names, and a sequential's children. */
#ifndef EMBER_CORE_NN_IMPL_H
#define EMBER_CORE_NN_IMPL_H

#include "internal.h"
#include <ember/nn.h>

typedef enum em__module_kind {
    EM__MOD_LINEAR, EM__MOD_FUNCTION, EM__MOD_DROPOUT, EM__MOD_SEQUENTIAL,
    /* pooling and normalisation (norm_layers.c) */
    EM__MOD_BATCH_NORM, EM__MOD_LAYER_NORM, EM__MOD_AVG_POOL, EM__MOD_ADAPTIVE_AVG_POOL,
    /* convolution and max pooling (layers_conv.c) */
    EM__MOD_CONV2D, EM__MOD_MAXPOOL2D
} em__module_kind;

#define EM__MODULE_BUFFERS 3

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
    int n_children;                      /* sequential */
    em_module **children;
    char **full_names;                   /* names given out by em_module_parameters */
    int n_full_names;
    /* pooling and normalisation (norm_layers.c) */
    int n_buffers;
    const char *buffer_names[EM__MODULE_BUFFERS];
    em_tensor *buffers[EM__MODULE_BUFFERS];   /* our handles, as params */
    char **buffer_full_names;            /* names given out by em_module_buffers */
    int n_buffer_full_names;
    int norm_dims;                       /* batch norm: accepted input ndims (bits); layer
                                          * norm: normalized dims */
    int64_t ishape[EM_MAX_DIMS];         /* layer norm: normalized_shape; pools: kernel,
                                          * stride, padding, output size */
    double eps, momentum;
    bool ceil_mode, count_include_pad, has_stride, has_padding;   /* ceil_mode: every pool */
    int64_t divisor_override;
};

/* A zeroed module of kind named name (NULL with EM_ERR_OOM recorded). */
EM_INTERNAL em_module *em__module_new(em_context *ctx, em__module_kind kind, const char *name);
/* Forward of the leaf kinds (layers.c). */
EM_INTERNAL em_tensor *em__linear_forward(em_module *m, em_tensor *x);
EM_INTERNAL em_tensor *em__dropout_forward(em_module *m, em_tensor *x);
/* Forward of the pooling and normalisation kinds (norm_layers.c). */
EM_INTERNAL em_tensor *em__norm_layer_forward(em_module *m, em_tensor *x);
/* The state_dict's keys and tensors: each module's parameters, then its buffers, then its
 * children's (malloc'd arrays of *n entries; each name malloc'd). */
EM_INTERNAL em_status em__module_state(em_module *m, char ***names, em_tensor ***tensors, int *n);
/* Conv2d (followed by ReLU when relu: one module pair of a Sequential, the ReLU applied by
 * the backend's convolution kernel where it can) and MaxPool2d (layers_conv.c). */
EM_INTERNAL em_tensor *em__conv2d_forward(em_module *m, em_tensor *x, bool relu);
EM_INTERNAL em_tensor *em__max_pool2d_forward(em_module *m, em_tensor *x);
/* A kept f32 leaf requiring grad of shape (ndim, shape) from U(-bound, bound), drawn from the
 * context's generator (layers.c); NULL with the error recorded. */
EM_INTERNAL em_tensor *em__uniform_param(em_context *ctx, int ndim, const int64_t *shape,
                                         double bound);
/* A double as Python writes it, for PyTorch's messages (core/optim/optim.c). */
EM_INTERNAL void em__pyfloat(char *buf, size_t n, double v);

#endif
