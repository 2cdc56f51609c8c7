/* ember/nn.h — models as modules: layers that own named parameters (torch.nn's idiom, kept
 * small for C).
 *
 *   em_module *net = em_sequential(ctx, (em_module *[]){
 *       em_linear(ctx, 784, 256, true), em_relu_module(ctx), em_dropout(ctx, 0.2),
 *       em_linear(ctx, 256, 10, true)}, 4);
 *   em_tensor *logits = em_module_forward(net, x);
 *
 * A module owns its parameters (f32 leaves that require grad) and, for a sequential, its
 * children; em_module_free frees them all. Constructors return NULL with the error recorded
 * in ctx; em_sequential given a NULL child frees the others and returns NULL, so the nested
 * expression above needs one check. em_module_forward behaves as an op: it returns a new
 * handle (in the open scope, if any), NULL on error, and NULL without an error for a NULL
 * input. Parameters are drawn from the context's generator (em_manual_seed), on the host
 * from its uniform numbers, so one seed gives bit-identical models on every backend. */
#ifndef EMBER_NN_H
#define EMBER_NN_H

#include <ember/tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct em_module em_module;

/* torch.nn.Linear(in_features, out_features, bias): y = x @ weight^T + bias, weight of shape
 * (out_features, in_features) and bias (out_features), as PyTorch stores them. Initialised as
 * reset_parameters(): weight U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform_ with a = sqrt(5)),
 * then bias U(-1/sqrt(in), 1/sqrt(in)); both 0 when in_features is 0. */
EMBER_API em_module *em_linear(em_context *ctx, int64_t in_features, int64_t out_features,
                               bool bias);
/* A parameterless module applying fn (em_relu, em_tanh, em_sigmoid, em_silu, ...); name is
 * what messages call it ("ReLU"; copied). */
EMBER_API em_module *em_function_module(em_context *ctx, const char *name,
                                        em_tensor *(*fn)(em_tensor *));
EMBER_API em_module *em_relu_module(em_context *ctx);   /* torch.nn.ReLU() */
/* torch.nn.Dropout(p), 0 <= p <= 1. In training mode each element is zeroed with
 * probability p (from the context's generator) and the others scaled by 1/(1-p) (p = 1: all
 * zero); in eval mode the input is returned unchanged (a new handle to it). */
EMBER_API em_module *em_dropout(em_context *ctx, double p);
/* ---- pooling and normalisation layers ---- */
/* torch.nn.BatchNorm1d / BatchNorm2d(num_features, eps, momentum, affine,
 * track_running_stats): em_batch_norm over (N, C) or (N, C, L) inputs (1d) or (N, C, H, W)
 * (2d). affine: parameters "weight" (ones) and "bias" (zeros). track_running_stats: buffers
 * "running_mean" (zeros), "running_var" (ones) and "num_batches_tracked" (an i64 0-dim 0),
 * saved and loaded by em_module_save / em_module_load under PyTorch's state_dict keys. In
 * training mode the batch statistics are used and the running ones updated (momentum NAN
 * means PyTorch's momentum=None: a cumulative average, 1 / num_batches_tracked); in eval mode
 * the running statistics are used (the batch's when not tracked). PyTorch's defaults: eps
 * 1e-5, momentum 0.1, affine and track_running_stats true. */
EMBER_API em_module *em_batch_norm1d(em_context *ctx, int64_t num_features, double eps,
                                     double momentum, bool affine, bool track_running_stats);
EMBER_API em_module *em_batch_norm2d(em_context *ctx, int64_t num_features, double eps,
                                     double momentum, bool affine, bool track_running_stats);
/* torch.nn.LayerNorm(normalized_shape, eps, elementwise_affine): em_layer_norm over the last
 * n_normalized dims; elementwise_affine: "weight" (ones) and "bias" (zeros) of
 * normalized_shape. */
EMBER_API em_module *em_layer_norm_module(em_context *ctx, int n_normalized,
                                          const int64_t *normalized_shape, double eps,
                                          bool elementwise_affine);
/* torch.nn.AvgPool2d and AdaptiveAvgPool2d: em_avg_pool2d / em_adaptive_avg_pool2d with these
 * arguments (stride and padding may be NULL, as there). */
EMBER_API em_module *em_avg_pool2d_module(em_context *ctx, const int64_t kernel_size[2],
                                          const int64_t stride[2], const int64_t padding[2],
                                          bool ceil_mode, bool count_include_pad,
                                          int64_t divisor_override);
EMBER_API em_module *em_adaptive_avg_pool2d_module(em_context *ctx,
                                                   const int64_t output_size[2]);
/* named_buffers(): the buffers (running statistics) in PyTorch's order and names, as
 * em_module_parameters gives parameters ("0.running_mean", ...). The tensors are the module's
 * own handles; returns the count (-1 for a NULL module). */
EMBER_API int em_module_buffers(em_module *m, const char **names, em_tensor **tensors, int max);

/* torch.nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
 * bias) over NCHW input (em_conv2d): weight (out, in/groups, kh, kw) and bias (out), drawn as
 * PyTorch's reset_parameters() (kaiming_uniform_ with a = sqrt(5), then the bias from
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in/groups * kh * kw). kernel is 2 ints; stride,
 * padding, dilation 2 ints or NULL (1, 0, 1). */
EMBER_API em_module *em_conv2d_module(em_context *ctx, int64_t in_channels, int64_t out_channels,
                                      const int *kernel, const int *stride, const int *padding,
                                      const int *dilation, int groups, bool bias);
/* torch.nn.MaxPool2d(kernel_size, stride, padding, dilation, ceil_mode) (em_max_pool2d); stride
 * NULL: the kernel size. No parameters. */
EMBER_API em_module *em_max_pool2d_module(em_context *ctx, const int *kernel, const int *stride,
                                          const int *padding, const int *dilation, bool ceil_mode);
/* torch.nn.Flatten(): (N, ...) reshaped to (N, -1). */
EMBER_API em_module *em_flatten_module(em_context *ctx);
/* torch.nn.Sequential: takes ownership of the n modules (also on failure), children named
 * "0", "1", ...; a module can have one owner only. A Conv2d followed by a ReLU runs as one
 * call (the backend's convolution kernel may apply the ReLU as it writes), with the values
 * and the graph of the two apart. */
EMBER_API em_module *em_sequential(em_context *ctx, em_module *const *modules, int n);

/* Runs the module on x. */
EMBER_API em_tensor *em_module_forward(em_module *m, em_tensor *x);

/* Parameters in named_parameters() order with PyTorch's names ("weight", "bias"; in a
 * sequential "0.weight", "0.bias", "2.weight", ...). Writes up to max names and tensors
 * (either array may be NULL) and returns how many parameters there are (-1 for a NULL
 * module). The tensors are the module's own handles, and the names its strings: valid until
 * em_module_free, not to be freed. Update a parameter in place under em_no_grad_begin, e.g.
 * with em_copy_, as with torch.no_grad(). */
EMBER_API int em_module_parameters(em_module *m, const char **names, em_tensor **tensors,
                                   int max);
/* The number of parameters (em_module_parameters(m, NULL, NULL, 0)). */
EMBER_API int em_module_parameter_count(em_module *m);
/* train(mode) / eval(): sets m and all its children (modules start in training mode). */
EMBER_API void em_module_train(em_module *m, bool mode);
EMBER_API bool em_module_is_training(const em_module *m);
/* "Linear", "ReLU", "Dropout", "Sequential", or the function module's name. */
EMBER_API const char *em_module_name(const em_module *m);
/* Frees m, its parameters and its children. NULL is a no-op. */
EMBER_API void em_module_free(em_module *m);

#ifdef __cplusplus
}
#endif
#endif
