/* core/ops/conv.h — what the convolution files share: the geometry of one convolution or
 * pooling window over 4-D (N, C, H, W) tensors, and its lowering to the im2col, col2im and
 * max_pool2d kernels of ABI 1.4 plus gemm (conv.c: forward, backward and the public calls;
 * conv_lower.c: the kernel launches), or the backend's whole-convolution kernels
 * (conv_native.c). */
#ifndef EMBER_CORE_OPS_CONV_H
#define EMBER_CORE_OPS_CONV_H

#include "compose.h"

/* A window over the last two dims: sizes, stride, padding (top, left), dilation and the output
 * size; in the kernels' ip[] order (backend.h, "ABI 1.4: convolution"). */
typedef struct em__win {
    int64_t kh, kw, sh, sw, ph, pw, dh, dw, oh, ow;
} em__win;

/* The convolution of x (N, C, H, W) with w (OC, C/groups, kh, kw), both of one float dtype,
 * plus bias (OC) or none: a new (N, OC, oh, ow) tensor, or NULL (error recorded). */
EM_INTERNAL em__tensor *em__conv_forward(em__tensor *x, em__tensor *w, em__tensor *bias,
                                         const em__win *win, int64_t groups);
/* Its gradients for a gradient g of the output: gx (x's shape) and gw (w's shape) when
 * asked for (non-NULL pointers), contiguous. EM_OK, or the error and nothing made. */
EM_INTERNAL em_status em__conv_backward(em__tensor *x, em__tensor *w, em__tensor *g,
                                        const em__win *win, int64_t groups, em__tensor **gx,
                                        em__tensor **gw);
/* The same through the backend's whole-convolution kernels (conv_native.c), when it declares
 * them natively for the dtype and the padding is symmetric: the forward sets *used false (and
 * does nothing, records nothing) otherwise, or when the kernel declined the call. With relu
 * and *relu true it asks the kernel for relu(y) (ABI 1.6) and leaves *relu true only where
 * the kernel did apply it (relu may be NULL: the plain convolution). The
 * backward makes, of the gradients asked for, those whose kernel applies and does not
 * decline: gx, and gw with gb (the bias's gradient, (OC)) when asked for; the others stay
 * NULL for the caller to lower. On an error nothing is made. */
EM_INTERNAL em__tensor *em__conv_native_forward(em__tensor *x, em__tensor *w, em__tensor *bias,
                                                const em__win *win, int64_t groups, bool *relu,
                                                bool *used);
EM_INTERNAL em_status em__conv_native_backward(em__tensor *x, em__tensor *w, em__tensor *g,
                                               const em__win *win, int64_t groups,
                                               em__tensor **gx, em__tensor **gw,
                                               em__tensor **gb);
/* PyTorch's name of a dtype as its messages print it: "Float" (lower: "float"), "Long", ... */
EM_INTERNAL const char *em__torch_type(em_dtype dt, bool lower);
/* An alias of contiguous t with another shape of the same element count (+1 ref). */
EM_INTERNAL em__tensor *em__conv_reshape(em__tensor *t, int ndim, const int64_t *shape);

#endif
