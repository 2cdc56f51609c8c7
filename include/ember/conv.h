/* ember/conv.h — convolution and max pooling over NCHW tensors, as PyTorch's
 * torch.nn.functional.conv2d, conv1d and max_pool2d (reference: docs/api.md). Integer
 * parameter lists are C arrays of 2 (conv2d, max_pool2d) or 1 (conv1d) entries, one per
 * spatial dim (height, width); NULL means PyTorch's default (stride 1 — for pooling, the
 * kernel size —, padding 0, dilation 1). The modules Conv2d, MaxPool2d and Flatten are in
 * <ember/nn.h>. */
#ifndef EMBER_CONV_H
#define EMBER_CONV_H

#include <ember/tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

/* x (N, C, H, W) or unbatched (C, H, W); w (OC, C/groups, kh, kw); bias (OC) or NULL:
 * (N, OC, oh, ow) with oh = (H + 2*padding[0] - dilation[0]*(kh-1) - 1) / stride[0] + 1.
 * Float dtypes, all one. Records ConvolutionBackward0 (gradients of x, w and bias). */
EMBER_API em_tensor *em_conv2d(em_tensor *x, em_tensor *w, em_tensor *bias, const int *stride,
                               const int *padding, const int *dilation, int groups);
/* The same with padding given by name: "same" (the output has the input's size; stride 1
 * only, as PyTorch) or "valid" (no padding). NULL padding is "valid". */
EMBER_API em_tensor *em_conv2d_mode(em_tensor *x, em_tensor *w, em_tensor *bias, const int *stride,
                                    const char *padding, const int *dilation, int groups);
/* x (N, C, L) or (C, L); w (OC, C/groups, k): the same over one spatial dim. */
EMBER_API em_tensor *em_conv1d(em_tensor *x, em_tensor *w, em_tensor *bias, const int *stride,
                               const int *padding, const int *dilation, int groups);
EMBER_API em_tensor *em_conv1d_mode(em_tensor *x, em_tensor *w, em_tensor *bias, const int *stride,
                                    const char *padding, const int *dilation, int groups);

/* x (N, C, H, W) or (C, H, W), float: the maximum of each window of kernel[0] x kernel[1]
 * taps (stride NULL: the kernel size), padding at most half the kernel, ceil_mode as
 * PyTorch (a last window that starts in the padding is dropped). Records
 * MaxPool2DWithIndicesBackward0: the gradient goes to each window's maximum (the first on
 * ties; NaN is a maximum). */
EMBER_API em_tensor *em_max_pool2d(em_tensor *x, const int *kernel, const int *stride,
                                   const int *padding, const int *dilation, bool ceil_mode);
/* The same, with the i64 indices of the maxima (row * W + column in their plane), as
 * return_indices=True; either output pointer may be NULL. */
EMBER_API em_status em_max_pool2d_with_indices(em_tensor *x, const int *kernel, const int *stride,
                                               const int *padding, const int *dilation,
                                               bool ceil_mode, em_tensor **out,
                                               em_tensor **indices);

#ifdef __cplusplus
}
#endif
#endif
