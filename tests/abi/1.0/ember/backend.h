/* ember/backend.h — the plugin ABI. A backend is a shared object named
 * ember-backend-<name>.so that exports one symbol, EM_BACKEND_ENTRY_NAME, of type
 * em_backend_entry_fn. Everything a backend needs from the core comes through the
 * em_host table handed to that entry; a backend never links against or includes core
 * internals. See docs/writing-a-backend.md for the full contract.
 *
 * ABI rules (the promise):
 *  - EM_ABI_MAJOR changes only when an existing field changes meaning or position; the
 *    core refuses a plugin whose major differs from its own.
 *  - EM_ABI_MINOR grows when fields are appended. Every struct starts with struct_size;
 *    a reader treats fields beyond the writer's struct_size as absent (NULL / 0).
 *  - Kernel entries of em_backend_ops that are NULL mean "not supported" (the core then
 *    reports an error or, per device.ini op_fallback, runs the op on the cpu backend).
 */
#ifndef EMBER_BACKEND_H
#define EMBER_BACKEND_H

#include <ember/common.h>
#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EM_ABI_MAJOR 1
#define EM_ABI_MINOR 0

#define EM_BACKEND_ENTRY_NAME "ember_backend_entry"

/* Plugins export their entry with this macro so it survives -fvisibility=hidden. */
#if defined(__GNUC__)
#define EM_BACKEND_EXPORT __attribute__((visibility("default")))
#else
#define EM_BACKEND_EXPORT
#endif

/* Opaque token identifying the core-side owner of a backend instance. Plugins pass it
 * back to the host services so messages land in the right context. */
typedef struct em_host_ctx em_host_ctx;

/* ---------------------------------------------------------------------------------
 * Host services: given to the plugin by the core. All function pointers are non-NULL.
 * --------------------------------------------------------------------------------- */
typedef struct em_host {
    size_t struct_size;
    uint32_t abi_major, abi_minor;      /* the core's ABI version */
    /* Record an error message for the call in progress; the core prefixes it with the
     * op and backend names. Returns st, so a plugin can `return host->error(...)`. */
    em_status (*error)(em_host_ctx *hc, em_status st, const char *fmt, ...) EM_PRINTF(3, 4);
    /* Log through the core's logger (respects the [device] log level). */
    void (*log)(em_host_ctx *hc, em_log_level level, const char *fmt, ...) EM_PRINTF(3, 4);
    /* Host memory for the plugin's own bookkeeping. Routed through the core so tests can
     * inject allocation failures; behaves like malloc/free. */
    void *(*alloc)(em_host_ctx *hc, size_t bytes);
    void (*free)(em_host_ctx *hc, void *p);
} em_host;

/* One key of the backend's device.ini section, handed to the entry. Strings are owned by
 * the core and valid only during the entry call. */
typedef struct em_config_kv {
    const char *key;
    const char *value;
} em_config_kv;

/* Device properties, filled by device_props. Strings are NUL-terminated. */
typedef struct em_device_props {
    size_t struct_size;
    char name[128];
    char vendor[64];
    char driver[64];           /* driver / runtime version text */
    uint64_t total_memory;     /* bytes, 0 if unknown */
    uint32_t compute_units;    /* cores, SMs, CUs; 0 if unknown */
    uint32_t fp64;             /* 1 if f64 kernels are supported */
    char extra[512];           /* free-form "key: value" lines for ember-info */
} em_device_props;

/* A strided view of a backend buffer. Offsets and strides are in elements of dtype.
 * Guarantees before a kernel is called (see docs/writing-a-backend.md):
 *  - elementwise kernels: out and every input have the same ndim and shape (inputs are
 *    broadcast with stride 0); dims are coalesced, 1 <= ndim <= EM_MAX_DIMS; numel >= 1;
 *  - out never has a zero stride and never partially overlaps an input; it may be the
 *    very same view as an input (in-place ops).
 */
typedef struct em_kview {
    size_t struct_size;
    void *buf;                 /* a handle returned by buffer_alloc */
    int64_t offset;
    int32_t dtype;             /* em_dtype */
    int32_t ndim;
    int64_t shape[EM_MAX_DIMS];
    int64_t strides[EM_MAX_DIMS];
} em_kview;

/* Arguments of every non-gemm kernel. The meaning of in[] and p[] is given per kernel in
 * em_backend_ops below. Unused entries are NULL / 0. */
typedef struct em_kargs {
    size_t struct_size;
    const em_kview *out;
    const em_kview *in[3];
    double p[4];
    uint64_t u[2];
} em_kargs;

/* Row-major batched GEMM: for each b < batch,
 *   C_b[m x n] = alpha * op(A_b) * op(B_b) + beta * C_b
 * op(A) is m x k: A is stored m x k (row stride lda) or, if trans_a, k x m (row stride
 * lda). Likewise B (k x n, or n x k if trans_b). Columns are contiguous (stride 1).
 * C rows have stride ldc. Offsets, leading dims and batch strides are in elements.
 * When beta == 0, C is write-only (its old contents, even NaN, are ignored). */
typedef struct em_gemm_args {
    size_t struct_size;
    int32_t dtype;
    int32_t trans_a, trans_b;
    int64_t m, n, k, batch;
    double alpha, beta;
    void *a; int64_t a_offset, lda, a_batch_stride;
    void *b; int64_t b_offset, ldb, b_batch_stride;
    void *c; int64_t c_offset, ldc, c_batch_stride;
} em_gemm_args;

typedef em_status (*em_kernel_fn)(void *dev, const em_kargs *args);

/* ---------------------------------------------------------------------------------
 * The ops table. Append-only. Entries marked (optional) may be NULL: the core composes
 * them from other kernels on the same device. Any other NULL kernel means the op is not
 * supported by this backend.
 *
 * Threading: one backend instance (one entry call) serves one ember context and is
 * called from one thread at a time. Distinct instances may be used concurrently, so a
 * plugin keeps no unsynchronised mutable global state.
 * --------------------------------------------------------------------------------- */
typedef struct em_backend_ops {
    size_t struct_size;

    /* Instance teardown; every device opened has been closed before. */
    void (*shutdown)(void *bctx);

    /* Devices. device_count fails with EM_ERR_NO_DEVICE and a reason (through
     * host->error) when the driver or hardware is absent. */
    em_status (*device_count)(void *bctx, int *count);
    em_status (*device_props)(void *bctx, int index, em_device_props *props);
    /* index -1: the plugin's default (its own device= key, else 0). */
    em_status (*device_open)(void *bctx, int index, void **dev);
    void (*device_close)(void *dev);

    /* Memory. bytes > 0. Offsets are in bytes. copy_h2d must have read src when it
     * returns (the core reuses or frees it right after; the device side may still be in
     * flight on the backend's queue). copy_d2h returns with the data in dst. copy_d2d
     * (optional) is not called by the core of ABI 1.0; NULL is fine. */
    em_status (*buffer_alloc)(void *dev, size_t bytes, void **buf);
    void (*buffer_free)(void *dev, void *buf);
    em_status (*copy_h2d)(void *dev, void *dst, size_t dst_offset, const void *src, size_t bytes);
    em_status (*copy_d2h)(void *dev, void *dst, const void *src, size_t src_offset, size_t bytes);
    em_status (*copy_d2d)(void *dev, void *dst, size_t dst_offset, const void *src,
                          size_t src_offset, size_t bytes);
    em_status (*synchronize)(void *dev);

    /* GEMM, f32 and f64. */
    em_status (*gemm)(void *dev, const em_gemm_args *args);

    /* Creation. out only.  fill: out = p[0] (any dtype; bool: p[0] != 0).
     * rng_*: element i (row-major logical index of out) uses Philox4x32-10 with key =
     * u[0] (seed) and counter = u[1] + i, mapped as in <ember/philox.h>.
     * rng_uniform: p[0] + (p[1]-p[0]) * U[0,1).   rng_normal: p[0] + p[1] * N(0,1). */
    em_kernel_fn fill;
    em_kernel_fn rng_uniform;
    em_kernel_fn rng_normal;

    /* copy: out = in[0], converting dtype (bool -> 0/1, float -> bool: != 0). */
    em_kernel_fn copy;

    /* Unary, out = f(in[0]); float dtypes. */
    em_kernel_fn neg, exp, log, sqrt, abs, relu, tanh, sigmoid;

    /* Unary with scalars. add_scalar: x + p0. mul_scalar: x * p0. rsub_scalar: p0 - x.
     * div_scalar: x / p0 (a true division, not x * (1/p0)). rdiv_scalar: p0 / x.
     * pow_scalar: pow(x, p0). clamp: min(max(x, p0), p1), where a bound may be
     * -inf/+inf (absent) and NaN in x propagates. */
    em_kernel_fn add_scalar, mul_scalar, rsub_scalar, div_scalar, rdiv_scalar, pow_scalar, clamp;

    /* Binary, out = in[0] op in[1]; float dtypes, all three views the same dtype.
     * maximum/minimum propagate NaN (as PyTorch). */
    em_kernel_fn add, sub, mul, div, maximum, minimum;

    /* Comparisons: out (bool) = in[0] op in[1]; inputs share a float or bool dtype. */
    em_kernel_fn lt, le, gt, ge, eq, ne;

    /* where: out = in[0] (bool) ? in[1] : in[2].
     * masked_fill: out = in[1] (bool) ? p[0] : in[0]. */
    em_kernel_fn where, masked_fill;

    /* sum: out has in[0]'s ndim with size 1 in each reduced dim (and equal sizes in the
     * others); out = p[0] * sum of in[0] over the reduced dims. Accumulate in at least
     * the output precision; f32 sums should use pairwise or f64 accumulation. */
    em_kernel_fn sum;

    /* Backward helpers (optional). in[0] = incoming gradient g. Masks select, they do
     * not multiply (an infinite g stays out of masked-off elements):
     * relu_backward:    y <= 0 ? 0 : g                    in[1] = y = relu(x) (NaN passes g)
     * clamp_backward:   (p0 <= x && x <= p1) ? g : 0      in[1] = x (NaN gives 0)
     * pow_backward:     g * (p0 * pow(x, p0 - 1))         in[1] = x
     * tanh_backward:    g * (1 - y*y)                     in[1] = y = tanh(x)
     * sigmoid_backward: g * ((1 - y) * y)                 in[1] = y = sigmoid(x) */
    em_kernel_fn relu_backward, clamp_backward, pow_backward, tanh_backward, sigmoid_backward;
} em_backend_ops;

/* What the entry fills in. The core zeroes it and sets struct_size before the call. */
typedef struct em_backend {
    size_t struct_size;
    uint32_t abi_major, abi_minor;   /* the ABI the plugin was built against */
    const char *name;                /* must equal <name> in ember-backend-<name>.so */
    const char *version;             /* the plugin's own version string */
    const char *description;         /* one line for ember-info */
    const char *const *config_keys;  /* NULL-terminated keys accepted in [<name>]; may be NULL */
    const em_backend_ops *ops;       /* static storage, lives as long as the plugin is loaded */
    void *ctx;                       /* the instance, passed to instance-level ops */
} em_backend;

/* The one exported symbol. Called once per ember context (and by ember-info). It checks
 * host->abi_major, reads its config (unknown or bad values -> EM_ERR_CONFIG through
 * host->error naming the key), and fills *out. Returning an error means the instance was
 * not created and nothing needs to be freed. Name strings must be static. */
typedef em_status (*em_backend_entry_fn)(const em_host *host, em_host_ctx *hc,
                                         const em_config_kv *config, size_t n_config,
                                         em_backend *out);

/* The entry's prototype, so that plugins defining it compile cleanly with
 * -Wmissing-prototypes. Define it with EM_BACKEND_ENTRY { ... }. */
EM_BACKEND_EXPORT em_status ember_backend_entry(const em_host *host, em_host_ctx *hc,
                                                const em_config_kv *config, size_t n_config,
                                                em_backend *out);

#define EM_BACKEND_ENTRY                                                                   \
    EM_BACKEND_EXPORT em_status ember_backend_entry(const em_host *host, em_host_ctx *hc, \
                                                    const em_config_kv *config,             \
                                                    size_t n_config, em_backend *out)

#ifdef __cplusplus
}
#endif
#endif
