/* ember/tensor.h — creating tensors, reading them back, views, printing.
 *
 * Ownership: every function returning em_tensor* returns a new handle. With a scope open
 * (em_scope_begin) the scope owns it; otherwise the caller does and releases it with
 * em_tensor_free. em_tensor_keep() takes a handle out of its scope. Views share storage
 * with their base; storage lives as long as any tensor using it.
 *
 * Shapes are passed as (ndim, const int64_t *shape); EM_SHAPE(2, 3) expands to exactly
 * that, e.g. em_zeros(ctx, EM_F32, EM_SHAPE(64, 1000)). */
#ifndef EMBER_TENSOR_H
#define EMBER_TENSOR_H

#include <stdio.h>
#include <ember/common.h>
#include <ember/context.h>

#define EM__NARG_(_1, _2, _3, _4, _5, _6, _7, _8, N, ...) N
#define EM__NARG(...) EM__NARG_(__VA_ARGS__, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#ifdef __cplusplus
/* C++ has no compound literals: there EM_SHAPE(a, b, ...) -> ndim, a pointer to the sizes
 * (each converted to int64_t, so size_t and int variables both work) in a temporary that
 * lives until the end of the full expression, i.e. through the call it is an argument of.
 * Not to be stored: pass it straight to the function. */
namespace ember {
namespace detail {
struct shape {
    int64_t v[EM_MAX_DIMS];
    template <typename... T>
    explicit shape(T... sizes) : v{static_cast<int64_t>(sizes)...} {}
};
} /* namespace detail */
} /* namespace ember */
#define EM_SHAPE(...) EM__NARG(__VA_ARGS__), ember::detail::shape(__VA_ARGS__).v
#else
/* EM_SHAPE(a, b, ...) -> ndim, (const int64_t[]){a, b, ...}  (1 to 8 sizes) */
#define EM_SHAPE(...) EM__NARG(__VA_ARGS__), (const int64_t[]){__VA_ARGS__}
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct em_tensor em_tensor;
/* A 0-dimensional (scalar) shape. */
#define EM_SCALAR_SHAPE 0, NULL

/* ---- lifetime ---- */
EMBER_API void em_tensor_free(em_tensor *t);
EMBER_API em_tensor *em_tensor_keep(em_tensor *t);

/* ---- creation ---- */
/* data: ndim/shape elements, row-major, of dtype's C type: float (EM_F32), double (EM_F64),
 * uint8_t (EM_BOOL, EM_U8), int64_t (EM_I64), int32_t (EM_I32). */
EMBER_API em_tensor *em_tensor_from_data(em_context *ctx, em_dtype dt, int ndim,
                                         const int64_t *shape, const void *data);
EMBER_API em_tensor *em_empty(em_context *ctx, em_dtype dt, int ndim, const int64_t *shape);
EMBER_API em_tensor *em_zeros(em_context *ctx, em_dtype dt, int ndim, const int64_t *shape);
EMBER_API em_tensor *em_ones(em_context *ctx, em_dtype dt, int ndim, const int64_t *shape);
EMBER_API em_tensor *em_full(em_context *ctx, em_dtype dt, int ndim, const int64_t *shape,
                             double value);
EMBER_API em_tensor *em_scalar(em_context *ctx, em_dtype dt, double value); /* 0-dim */
/* [start, end) by step, as torch.arange (length ceil((end - start) / step)). */
EMBER_API em_tensor *em_arange(em_context *ctx, em_dtype dt, double start, double end,
                               double step);
/* U[0,1) and N(0,1) from the context's generator (see em_manual_seed, <ember/philox.h>). */
EMBER_API em_tensor *em_rand(em_context *ctx, em_dtype dt, int ndim, const int64_t *shape);
EMBER_API em_tensor *em_randn(em_context *ctx, em_dtype dt, int ndim, const int64_t *shape);
EMBER_API em_tensor *em_zeros_like(em_tensor *t);
EMBER_API em_tensor *em_ones_like(em_tensor *t);
EMBER_API em_tensor *em_full_like(em_tensor *t, double value);

/* ---- inspection (a NULL tensor gives 0 / -1 / NULL) ---- */
EMBER_API em_context *em_tensor_context(const em_tensor *t);
EMBER_API em_dtype em_tensor_dtype(const em_tensor *t);
EMBER_API int em_tensor_ndim(const em_tensor *t);
EMBER_API int64_t em_tensor_size(const em_tensor *t, int dim);     /* dim < 0 counts from the end */
EMBER_API int64_t em_tensor_stride(const em_tensor *t, int dim);
EMBER_API int64_t em_tensor_numel(const em_tensor *t);
EMBER_API const int64_t *em_tensor_shape(const em_tensor *t);      /* ndim entries */
EMBER_API bool em_tensor_is_contiguous(const em_tensor *t);

/* ---- reading and writing data ---- */
/* Copy the tensor, as a row-major contiguous array of its dtype, into dst (bytes must be
 * at least numel * dtype size). Synchronises. */
EMBER_API em_status em_tensor_to_host(em_tensor *t, void *dst, size_t bytes);
/* Overwrite a contiguous tensor from host memory. */
EMBER_API em_status em_tensor_from_host(em_tensor *t, const void *src, size_t bytes);
/* Value of a one-element tensor as double (NaN and a recorded error otherwise). */
EMBER_API double em_item(em_tensor *t);
EMBER_API em_status em_item_get(em_tensor *t, double *out);
/* Exact value of a one-element integer or bool tensor (a float one truncates toward zero,
 * as em_to_dtype does). 0 and a recorded error when t has not exactly one element. */
EMBER_API int64_t em_item_i64(em_tensor *t);
EMBER_API em_status em_item_get_i64(em_tensor *t, int64_t *out);

/* Like em_tensor_from_host / em_tensor_to_host, but may return before the copy is done, so
 * the host can go on queueing work (PyTorch's non_blocking copies): src must stay valid and
 * unchanged, and dst is complete, only once em_synchronize(ctx) has returned. Ops queued
 * after the call see the copy's result. On backends without asynchronous copies these are
 * the synchronous calls. Memory from em_pinned_alloc makes such copies fastest. */
EMBER_API em_status em_tensor_from_host_async(em_tensor *t, const void *src, size_t bytes);
EMBER_API em_status em_tensor_to_host_async(em_tensor *t, void *dst, size_t bytes);
/* The address of element 0, for a tensor whose device keeps its buffers in host memory (the
 * cpu backend, and plugins declaring EM_DEVICE_HOST_BUFFERS), after queued work finished.
 * Valid while the tensor's storage lives; writes through it are not seen by autograd's
 * in-place checks. NULL with EM_ERR_UNSUPPORTED on other devices. */
EMBER_API void *em_tensor_data_ptr(em_tensor *t);

/* ---- views and copies ---- */
EMBER_API em_tensor *em_transpose(em_tensor *t, int dim0, int dim1);
EMBER_API em_tensor *em_t(em_tensor *t);    /* 2-D transpose; 0-D and 1-D unchanged */
/* A view with a new shape; one size may be -1. Fails if the strides do not allow it. */
EMBER_API em_tensor *em_view(em_tensor *t, int ndim, const int64_t *shape);
/* Like em_view, but copies when a view is impossible. */
EMBER_API em_tensor *em_reshape(em_tensor *t, int ndim, const int64_t *shape);
/* Broadcast to a larger shape without copying (size -1 keeps a dim). */
EMBER_API em_tensor *em_expand(em_tensor *t, int ndim, const int64_t *shape);
EMBER_API em_tensor *em_unsqueeze(em_tensor *t, int dim);
EMBER_API em_tensor *em_squeeze(em_tensor *t, int dim);
EMBER_API em_tensor *em_flatten(em_tensor *t);
/* Dims reordered: result dim i is t's dim dims[i] (ndim must be t's; negative dims count
 * from the end), as torch.permute. */
EMBER_API em_tensor *em_permute(em_tensor *t, int ndim, const int *dims);
/* Elements [start, start + length) of dim (start < 0 counts from the end). A view. */
EMBER_API em_tensor *em_narrow(em_tensor *t, int dim, int64_t start, int64_t length);
/* The slice at index along dim, which is removed (t[:, index] for dim 1). A view. */
EMBER_API em_tensor *em_select(em_tensor *t, int dim, int64_t index);
/* t[start:end:step] along dim, as Python: negative start/end count from the end and both
 * are clamped to the dim's range; step >= 1. EM_END as end means "to the end". A view. */
#define EM_END INT64_MAX
EMBER_API em_tensor *em_slice(em_tensor *t, int dim, int64_t start, int64_t end, int64_t step);
/* Views of consecutive pieces along dim: of split_size elements each (the last may be
 * smaller), or `chunks` pieces as torch.chunk. Writes up to max handles into out and
 * returns how many pieces there are (-1 on error; a count above max is an error). */
EMBER_API int em_split(em_tensor *t, int64_t split_size, int dim, em_tensor **out, int max);
EMBER_API int em_chunk(em_tensor *t, int chunks, int dim, em_tensor **out, int max);
/* t itself (new handle) if already contiguous, else a contiguous copy. */
EMBER_API em_tensor *em_contiguous(em_tensor *t);
EMBER_API em_tensor *em_clone(em_tensor *t);
/* A copy converted to dt (float -> integer truncates toward zero, -> bool is != 0). The
 * result requires grad only if both dtypes are floating. */
EMBER_API em_tensor *em_to_dtype(em_tensor *t, em_dtype dt);
/* Copy to another context (another device or backend). */
EMBER_API em_tensor *em_to_context(em_tensor *t, em_context *dst);

/* ---- printing, in PyTorch's format ---- */
/* "tensor([[1., 2.],\n        [3., 4.]], requires_grad=True)"; malloc'd, caller free()s. */
EMBER_API char *em_tensor_str(em_tensor *t);
EMBER_API em_status em_tensor_print(em_tensor *t, FILE *f);    /* str + newline */
EMBER_API em_status em_print(em_tensor *t);                    /* to stdout */
/* print options as torch.set_printoptions: precision (4), threshold (1000), edgeitems
 * (3), linewidth (80); a negative value leaves the setting unchanged. Per context.
 * precision is at most 1074 (a double has no more decimals): a larger one is refused with
 * EM_ERR_INVALID recorded in ctx, the setting kept. Any edgeitems is accepted. */
EMBER_API void em_set_printoptions(em_context *ctx, int precision, int threshold,
                                   int edgeitems, int linewidth);

#ifdef __cplusplus
}
#endif
#endif
