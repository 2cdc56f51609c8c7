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
 *  - A kernel is only ever called with dtypes the plugin declared for it (em_kernel_dtypes;
 *    a plugin that declares nothing gets exactly the dtypes ABI 1.0 promised).
 *  - How later minors extend kernels without breaking older plugins:
 *      new ops           are new entries appended to em_backend_ops: NULL in an older
 *                        plugin's (zero-extended) table, so the op falls back or is composed;
 *      new dtypes        are appended em_dtype codes: never in an implicit declaration, so
 *                        an older plugin is never handed one;
 *      new parameters    of an existing kernel are appended to the end of its ip[]/fp[]
 *                        list (or to em_kargs) with a neutral value that means the old
 *                        behaviour. The core hands a non-neutral value only to a plugin
 *                        whose abi_minor is at least the minor that introduced it, and runs
 *                        the call through the fallback otherwise. A kernel ignores entries
 *                        past the count its own minor specifies.
 *
 * What changed in 1.1 (all appended; a 1.0 plugin loads and conforms unchanged):
 *  em_host.flags (EM_HOST_DESCRIBE), em_device_props.flags (EM_DEVICE_HOST_BUFFERS),
 *  em_kargs.{n_out, n_in, outs, ins, n_ip, ip, n_fp, fp}, em_backend_ops.dtypes and the
 *  optional asynchrony entries (pinned host memory, async copies, streams, events).
 * What changed in 1.2 (all appended; 1.0 and 1.1 plugins load and conform unchanged, the
 * new ops running through the cpu fallback for them):
 *  the integer dtypes EM_I64, EM_I32, EM_U8 (handed only to kernels whose mask declares
 *  them), exact integer scalars in ip[] for the scalar kernels on integer dtypes, and the
 *  kernels after event_synchronize (math, pow, floor division, dim reductions, softmax,
 *  indexing) with their masks appended to em_kernel_dtypes.
 * What changed in 1.3 (appended; 1.0 to 1.2 plugins load and conform unchanged): the
 *  optional kernel adam (one fused step of Adam / AdamW for one parameter) and its mask. A
 *  plugin without it gets the step composed from its elementwise kernels, as before.
 * What changed in 1.4 (appended; 1.0 to 1.3 plugins load and conform unchanged, the new ops
 *  running through the cpu fallback for them): the kernels of each block headed
 *  "ABI 1.4" below, with their masks.
 * What changed in 1.5 (appended; 1.0 to 1.4 plugins load and conform unchanged): the
 *  optional kernels of each block headed "ABI 1.5" below, with their masks.
 * What changed in 1.6 (appended; 1.0 to 1.5 plugins load and conform unchanged): conv2d's
 *  ip[11], the ReLU of the output (see conv2d below).
 * What changed in 1.7 (appended; 1.0 to 1.6 plugins load and conform unchanged): the
 *  optional kernel sgd (one fused step of SGD for one parameter) and its mask. A plugin
 *  without it gets the step composed from its elementwise kernels, as before.
 */
#ifndef EMBER_BACKEND_H
#define EMBER_BACKEND_H

#include <ember/common.h>
#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EM_ABI_MAJOR 1
#define EM_ABI_MINOR 7

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
    /* ---- ABI 1.1 ---- */
    /* EM_HOST_DESCRIBE: this entry call only asks for the plugin's static description
     * (see em_backend_entry_fn). Read it only if struct_size covers it. */
    uint32_t flags;
} em_host;

#define EM_HOST_DESCRIBE 1u

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
    uint32_t fp64;             /* 1 if f64 kernels are supported (0: the core never passes f64) */
    char extra[512];           /* free-form "key: value" lines for ember-info */
    /* ---- ABI 1.1 ---- */
    uint32_t flags;            /* EM_DEVICE_* bits */
} em_device_props;

/* The device's buffers are ordinary host memory: a buffer handle is a pointer to its first
 * byte, aligned to at least EM_HOST_BUFFER_ALIGN, readable and writable by the host at any
 * time when no call of the plugin is running (after synchronize, if the device is
 * asynchronous). Ops the plugin lacks then run the cpu backend's kernels directly on these
 * buffers, with no copies (the cpu backend's own buffers are such buffers too). */
#define EM_DEVICE_HOST_BUFFERS 1u
#define EM_HOST_BUFFER_ALIGN 64

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
 * em_backend_ops below. Unused entries are NULL / 0.
 *
 * ABI 1.1 appends lists, so that ops with several outputs (a maximum and its indices, batch
 * norm's output and saved statistics), more than three inputs, integer parameter lists
 * (conv2d's stride, padding, dilation per dimension and groups; pooling's kernel size and
 * ceil_mode) and exact 64-bit integer scalars (a fill of an integer tensor) fit one
 * signature. For every call of a 1.1 core: outs[0] == out, ins[i] == in[i] for i < 3,
 * n_out >= 1, and n_in, n_ip, n_fp are what the kernel's entry below specifies (0 for the
 * kernels of 1.0). Integer parameters are exact (never passed through a double). */
typedef struct em_kargs {
    size_t struct_size;
    const em_kview *out;
    const em_kview *in[3];
    double p[4];
    uint64_t u[2];
    /* ---- ABI 1.1 ---- */
    uint32_t n_out, n_in;             /* views in outs[] and ins[] */
    const em_kview *const *outs;
    const em_kview *const *ins;
    uint32_t n_ip, n_fp;              /* parameters in ip[] and fp[] */
    const int64_t *ip;                /* integer parameters (exact) */
    const double *fp;                 /* floating parameters beyond p[] */
} em_kargs;

/* Row-major batched GEMM: for each b < batch,
 *   C_b[m x n] = alpha * op(A_b) * op(B_b) + beta * C_b
 * op(A) is m x k: A is stored m x k (row stride lda) or, if trans_a, k x m (row stride
 * lda). Likewise B (k x n, or n x k if trans_b). Columns are contiguous (stride 1).
 * C rows have stride ldc. Offsets, leading dims and batch strides are in elements.
 * When beta == 0, C is write-only (its old contents, even NaN, are ignored).
 * Sizes (the one statement of this rule): m, n and batch are >= 1; k is >= 0, and k == 0
 * comes only with beta != 0, meaning C = beta * C (do not read A or B: lda and ldb are then
 * meaningless; the core turns a product with k == 0 and beta == 0 into a fill of 0). With
 * k >= 1, lda and ldb are >= 1 and >= the stored row length; ldc >= n; batch strides are
 * >= 0 (0: the operand is shared by every batch). */
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

/* Per-kernel dtype declaration (ABI 1.1), defined after the ops table. */
typedef struct em_kernel_dtypes em_kernel_dtypes;

/* ---------------------------------------------------------------------------------
 * The ops table. Append-only. Entries marked (optional) may be NULL: the core composes
 * them from other kernels on the same device. Any other NULL kernel means the op is not
 * supported by this backend.
 *
 * A kernel that returns an error must not have written any output: check first, write
 * last. The core relies on it so that a failed in-place op leaves its destination as it
 * was (an error found only later, by an asynchronous device, is a device fault: report it
 * from synchronize).
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

    /* Creation. out only.  fill: out = p[0] (any dtype; bool: p[0] != 0; an integer dtype
     * takes its value exactly from ip[0], n_ip = 1, with p[0] the same value rounded).
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

    /* ================================================================ ABI 1.1 */

    /* Which dtypes each kernel implements (static storage; see em_kernel_dtypes). NULL, or a
     * mask of 0: the dtypes ABI 1.0 promised for that kernel. */
    const em_kernel_dtypes *dtypes;

    /* ---- optional asynchrony ----
     * Without these entries everything is synchronous as in 1.0, and the core stays correct.
     * "The device queue" is where kernels, gemm and the synchronous copies run, in call
     * order. A stream is a second queue of the same device; stream NULL means the device
     * queue. synchronize(dev) waits for the device queue and every stream.
     *
     * Pinned host memory (both or neither): host memory the device copies from and to
     * fastest (page-locked). em_pinned_alloc hands it to users; NULL entries mean malloc. */
    em_status (*host_alloc)(void *dev, size_t bytes, void **ptr);
    void (*host_free)(void *dev, void *ptr);
    /* Copies that return before they complete (both or neither). Same arguments as the
     * synchronous ones plus the queue. The core keeps src (h2d) and dst (d2h) valid and
     * untouched until the copy is known complete: an event recorded after it has completed,
     * or synchronize returned. Byte ranges are inside the buffer. */
    em_status (*copy_h2d_async)(void *dev, void *stream, void *dst, size_t dst_offset,
                                const void *src, size_t bytes);
    em_status (*copy_d2h_async)(void *dev, void *stream, void *dst, const void *src,
                                size_t src_offset, size_t bytes);
    /* Streams and events (all six or none; they need the async copies). The core uses one
     * stream per context for its copies and orders it against the device queue with events:
     *   event_record(s, e):  e completes when all work queued on s before it has completed
     *                        (recording again re-arms e);
     *   event_wait(s, e):    work queued on s after this call waits for e (the host does not
     *                        wait);
     *   event_synchronize(e): the host waits for e.
     * event_destroy may be called before the event completed; stream_destroy is called only
     * when the stream is idle (after synchronize). */
    em_status (*stream_create)(void *dev, void **stream);
    void (*stream_destroy)(void *dev, void *stream);
    em_status (*event_create)(void *dev, void **event);
    void (*event_destroy)(void *dev, void *event);
    em_status (*event_record)(void *dev, void *stream, void *event);
    em_status (*event_wait)(void *dev, void *stream, void *event);
    em_status (*event_synchronize)(void *dev, void *event);

    /* ================================================================ ABI 1.2 */
    /* Integer dtypes (EM_I64, EM_I32, EM_U8) reach a kernel only where its mask declares
     * them. Integer arithmetic wraps (two's complement, u8 modulo 256) as in PyTorch.
     * On an integer dtype, add_scalar, mul_scalar, rsub_scalar and fill take their scalar
     * exactly from ip[0] (n_ip = 1) and clamp its bounds from ip[0], ip[1] (n_ip = 2; an
     * absent bound is INT64_MIN / INT64_MAX); p[] holds the same values as doubles.
     * copy from a float to an integer dtype truncates toward zero; NaN and values out of
     * range give an unspecified value, never undefined behaviour.
     *
     * Unless said otherwise the kernels below take float dtypes when undeclared; views
     * are as for the elementwise kernels of 1.0 (same shape, broadcast with stride 0,
     * coalesced). n_in, n_ip as stated; n_out = 1. */

    /* Unary, out = f(in[0]), one dtype: log1p, expm1, sin, cos, erf; floor, ceil, round
     * (halves to even, as nearbyint); sign: -1, 0 or 1 (of -0 and of NaN: +0, as PyTorch;
     * integer dtypes where declared). */
    em_kernel_fn log1p, expm1, sin, cos, erf, floor, ceil, round, sign;

    /* Binary, out = in[0] op in[1], one dtype, broadcast as add.
     * pow: pow(a, b).
     * floor_divide: a / b rounded toward -inf (Python's //, PyTorch's div rounding_mode
     *   "floor"); floats: q = (a - remainder(a, b)) / b, then floored, as PyTorch; integer
     *   dtypes where declared (the core never passes a zero integer divisor).
     * remainder: a - b * floor(a / b), the sign of b (Python's %); floats: fmod(a, b), plus
     *   b when that is nonzero and its sign differs from b's. */
    em_kernel_fn pow, floor_divide, remainder;

    /* prod: like sum (out's size-1 dims are the reduced ones, views coalesced), the
     * product; f32 accumulates in double. On integer dtypes (i64 only) it wraps. */
    em_kernel_fn prod;

    /* Along one dimension. The core gives these kernels 3-D views (outer, n, inner): in[0]
     * is (outer, n, inner) with any strides, n >= 1, and reduces or normalises over its
     * middle dimension.
     * max_dim / min_dim: outs[0] (in[0]'s dtype) and outs[1] (i64) are (outer, 1, inner):
     *   the largest (smallest) value and its index in [0, n); on ties the first index. A NaN
     *   counts as larger and smaller than every number: the first NaN wins (PyTorch).
     *   n_out = 2. Float dtypes when undeclared; integer dtypes where declared.
     * softmax / log_softmax: out is (outer, n, inner): exp(x - max) / sum exp(x - max), and
     *   x - max - log(sum exp(x - max)), over the middle dimension; a row that is all -inf
     *   gives NaN, as PyTorch. Float dtypes. */
    em_kernel_fn max_dim, min_dim, softmax, log_softmax;

    /* Indexing. Index views are i64 (their dtype is fixed, not part of the mask) and every
     * index is in range (the core checked it). Data views take float and bool dtypes when
     * undeclared (gather, index_select) or float (scatter_add).
     * index_select: in[0] is (outer, n, inner), in[1] a 1-D index of m elements, out is
     *   (outer, m, inner): out[o, j, i] = in[0][o, in[1][j], i].
     * gather: out, in[1] (index) and in[0] (source) have one ndim (>= 1), with ip[0] = dim
     *   (n_ip = 1); out has the index's shape; out[q] = in[0][q with q[dim] = in[1][q]].
     *   in[0] may be larger than the index in any dimension.
     * scatter_add: out accumulates: for every position q of in[0] (the index),
     *   out[q with q[dim] = in[0][q]] += in[1][q] (in[1], the source, has the index's
     *   shape); ip[0] = dim. out holds its old values on entry (read and written); in[1]
     *   never overlaps it. Several q may hit one element: sum them (in any order). */
    em_kernel_fn index_select, gather, scatter_add;

    /* ================================================================ ABI 1.3 */
    /* adam (optional): one step of torch.optim.Adam / AdamW (PyTorch 1.13's
     * _single_tensor_adam / _single_tensor_adamw) for one parameter, out of place. Every view
     * is contiguous (strides row-major), of one shape and one float dtype T; the outputs are
     * fresh buffers, never overlapping each other or an input (the core swaps them in only
     * when the whole optimizer step succeeded: write nothing else).
     *   ins:  [0] p (parameter), [1] g (gradient), [2] m (exp_avg), [3] v (exp_avg_sq),
     *         [4] vmax (max_exp_avg_sq, amsgrad only); m, v, vmax are absent (n_in = 2) on
     *         the first step, when the state does not exist yet.
     *   outs: [0] p', [1] m', [2] v', [3] vmax' (amsgrad only). n_out = 3 or 4.
     *   p[0] lr, p[1] beta1, p[2] beta2, p[3] eps; fp[0] weight_decay, fp[1] bc1 =
     *   1 - beta1^step, fp[2] bc2 = 1 - beta2^step (n_fp = 3); all doubles.
     *   ip[0] adamw, ip[1] amsgrad, ip[2] maximize, ip[3] first step: each 0 or 1 (n_ip = 4).
     * The scalars are computed in double and then converted to T, like the scalar of
     * mul_scalar: b1 = (T)beta1, c1 = (T)(1 - beta1), b2 = (T)beta2, c2 = (T)(1 - beta2),
     * wd = (T)weight_decay, keep = (T)(1 - lr * weight_decay) (a product then a difference,
     * not fused), s2 = (T)sqrt(bc2), e = (T)eps, step = (T)(lr / bc1). Per element, in T,
     * every operation rounded to T (no fused multiply-add contraction):
     *   x = maximize ? -g : g
     *   if weight_decay != 0:  adamw ? (p = p * keep) : (x = x + p * wd)
     *   m' = first ? x * c1       : m * b1 + x * c1
     *   v' = first ? (x * x) * c2 : v * b2 + (x * x) * c2
     *   amsgrad: vmax' = first ? v' : max(vmax, v'), where a NaN in either wins (vmax's
     *            first), as maximum; d = vmax'.   Otherwise d = v'.
     *   p' = p - (m' / (sqrt(d) / s2 + e)) * step
     * (a true division; sqrt correctly rounded). This is, operation for operation, the
     * composition of the elementwise kernels the core uses without the entry, so a cpu
     * backend gives bit-identical results both ways. Float dtypes when undeclared. */
    em_kernel_fn adam;

    /* ---- ABI 1.4: pooling and normalisation ---- */
    /* avg_pool2d: 2-D average pooling over the last two dims of 3-D views (B, H, W), B being
     * N * C merged. in[0] is the input (B, H, W), out the result (B, OH, OW), any strides,
     * one float dtype. ip[] (n_ip = 9): [0] kH, [1] kW, [2] sH, [3] sW, [4] pH, [5] pW,
     * [6] count_include_pad (0/1), [7] divisor_override (0: none), [8] adaptive (0/1).
     * Windows, per output row oh (columns alike):
     *   adaptive = 0: hs = oh * sH - pH, he = min(hs + kH, H + pH), pool = (he - hs) *
     *     (we - ws) (padding included); then hs = max(hs, 0), he = min(he, H).
     *   adaptive = 1 (ip[0..7] ignored): hs = floor(oh * H / OH), he = ceil((oh + 1) * H / OH),
     *     as PyTorch's adaptive pooling, and pool = (he - hs) * (we - ws).
     * out = sum of in[0] over [hs, he) x [ws, we) divided by divisor_override when nonzero,
     * else by pool when count_include_pad (adaptive counts as such), else by (he - hs) *
     * (we - ws). The core guarantees every window holds at least one input element.
     * avg_pool2d_grad: out is the input's gradient (B, H, W), written whole; in[0] the
     * output's gradient (B, OH, OW); same ip[]: out[h, w] = the sum over the windows that
     * contain (h, w) of in[0][oh, ow] / (that window's divisor). Accumulate f32 in at least
     * f32; float dtypes when undeclared. */
    em_kernel_fn avg_pool2d, avg_pool2d_grad;
    /* ---- ABI 1.4: convolution ----
     * The lowering of conv2d (and conv1d, as conv2d with height 1) and max_pool2d. Views are
     * 4-D or 3-D as stated, not coalesced; n_out = 1 unless stated. A window is described by
     * n_ip = 10 integers: ip[0], ip[1] the kernel size kh, kw; ip[2], ip[3] the stride sh, sw;
     * ip[4], ip[5] the padding on top and on the left ph, pw; ip[6], ip[7] the dilation dh,
     * dw; ip[8], ip[9] the output size oh, ow (the core computes it; padding on the bottom and
     * right is whatever oh, ow reach past the input). Every value is >= 1 except ph, pw >= 0.
     * Tap (i, j) of output position (y, x) reads input row y*sh - ph + i*dh and column
     * x*sw - pw + j*dw; a tap outside the input reads 0 (convolution) or is skipped (pooling).
     * im2col: ins[0] the input (N, C, H, W), any strides; out (N, C*kh*kw, oh*ow), contiguous:
     *   out[n, (c*kh + i)*kw + j, y*ow + x] = tap (i, j) of (y, x) in channel c of image n.
     * col2im: the adjoint: ins[0] (N, C*kh*kw, oh*ow) contiguous, out (N, C, H, W) contiguous;
     *   each out element is the sum of every ins[0] element im2col would have copied from
     *   it (0 where none). out is written, never read.
     * max_pool2d: ins[0] the input (N, C, H, W), any strides; outs[0] (N, C, oh, ow) of its
     *   dtype and outs[1] (N, C, oh, ow) i64, both contiguous (n_out = 2): the largest value
     *   among the window's taps inside the input, and its position r*W + c in its plane;
     *   on ties the first in row-major order; a NaN beats every number and a later NaN
     *   beats an earlier one (PyTorch's cpu kernel); a window of -inf gives its first tap.
     * Float dtypes when undeclared; the indices' dtype is fixed. */
    em_kernel_fn im2col, col2im, max_pool2d;
    /* ---- ABI 1.4: whole convolutions (optional) ----
     * conv2d and its two gradients in one call each, for a backend with a convolution library
     * (cuDNN). Without them (or for an undeclared dtype) the core lowers the convolution to
     * im2col / col2im and gemm as above; they are never run through the cpu fallback. Every
     * view is contiguous (strides row-major), 4-D NCHW but for the bias and its gradient
     * (1-D), and of one float dtype; outputs are fresh buffers, never overlapping an input,
     * written whole (never read). Every view has at least one element. ip[] (n_ip = 11): the
     * window of im2col (ip[0..9], with kh, kw the weight's last two dims and oh, ow the
     * output's) and ip[10] the groups g (>= 1; C and OC are multiples of it). The padding is
     * symmetric: the core calls these kernels only when
     * oh = (H + 2*ph - dh*(kh - 1) - 1) / sh + 1, and ow alike (the lowering serves the
     * one-sided padding of padding="same" with an even kernel extent).
     * conv2d: ins[0] x (N, C, H, W), ins[1] w (OC, C/g, kh, kw), ins[2] the bias, a 1-D
     *   view (OC), when there is one (n_in = 3; else n_in = 2); out y (N, OC, oh, ow):
     *   y[n, o, y, x] = bias[o] + sum over c < C/g, i < kh, j < kw of
     *   w[o, c, i, j] * (tap (i, j) of (y, x) in channel (o / (OC/g)) * (C/g) + c of image n).
     *   ABI 1.6: with n_ip = 12, ip[11] = 1 asks for relu(y) instead, each element
     *   v < 0 ? 0 : v (NaN and -0 pass unchanged: the relu kernel's values) — a Conv2d
     *   followed by ReLU, whose output the core then never reads as the plain convolution;
     *   ip[11] = 0 (or n_ip = 11, as the core calls a plugin older than 1.6) is the plain
     *   convolution. A kernel that does not apply it declines the call with ip[11] = 1 and the
     *   core asks again with ip[11] = 0, then runs relu's own kernel over the output.
     * conv2d_grad_input: ins[0] dy (N, OC, oh, ow), ins[1] w; out dx (N, C, H, W), the
     *   adjoint of conv2d (no bias) in x.
     * conv2d_grad_weight: ins[0] x, ins[1] dy; outs[0] dw (OC, C/g, kh, kw), the adjoint in
     *   w (summed over the batch); with n_out = 2, outs[1] db (OC), dy summed over n, y, x.
     * A kernel may decline a call it cannot run (its library has no algorithm for it, a size
     * past the library's limits, the library cannot be loaded): it returns
     * EM_ERR_UNSUPPORTED having written nothing, and the core forgets the message and lowers
     * what that kernel would have made instead (the forward, dx, or dw with db); each gradient
     * is served by its own kernel, so a backend may have any subset of the three.
     * Accumulate f32 in at least f32. Float dtypes when undeclared. */
    em_kernel_fn conv2d, conv2d_grad_input, conv2d_grad_weight;

    /* ---- ABI 1.5: max_pool2d backward ----
     * max_pool2d_grad (optional): the input's gradient of max_pool2d in one pass. ins[0] the
     *   output's gradient (N, C, oh, ow), any strides; ins[1] the i64 indices max_pool2d
     *   wrote for that window (N, C, oh, ow), contiguous; out (N, C, H, W) contiguous, of
     *   ins[0]'s dtype, written whole (never read); n_in = 2, n_out = 1, ip[] the window of
     *   max_pool2d (n_ip = 10). Each index is the position r*W + c of a tap of its window
     *   inside the input (the core passes only indices its max_pool2d made, unmodified).
     *   Per plane: out[p] = ((0 + ins[0][o1]) + ins[0][o2]) + ... over the outputs o1, o2, ...
     *   whose index is p, in row-major order of the outputs, each sum rounded to the dtype
     *   (0 where none; a single -0 gradient gives +0) — the order of PyTorch's cpu kernel and
     *   of the fill + scatter_add it replaces, so the result has their bits. Without it (or
     *   for an undeclared dtype) the core fills a zero gradient and scatter_adds into it on
     *   the same device; it is never run through the cpu fallback. Float dtypes when
     *   undeclared; the indices' dtype is fixed. */
    em_kernel_fn max_pool2d_grad;

    /* ---- ABI 1.7: SGD's step ----
     * sgd (optional): one step of torch.optim.SGD (PyTorch 1.13's _single_tensor_sgd) for
     * one parameter, out of place, like adam: every view contiguous, of one shape and one
     * float dtype T; the outputs are fresh buffers, never overlapping each other or an input.
     *   ins:  [0] p (parameter), [1] g (gradient), [2] b (momentum buffer: only when momentum
     *         != 0 and not the first step). n_in = 2 or 3.
     *   outs: [0] p', [1] b' (only when momentum != 0). n_out = 1 or 2.
     *   p[0] lr, p[1] momentum, p[2] dampening, p[3] weight_decay (doubles); ip[0]
     *   nesterov, ip[1] maximize, ip[2] first step (no buffer yet): each 0 or 1 (n_ip = 3).
     * The scalars are converted to T like the scalar of mul_scalar: r = (T)lr, m =
     * (T)momentum, c = (T)(1 - dampening) (the difference in double), wd = (T)weight_decay.
     * Per element, in T, each operation rounded to T (no fused multiply-add contraction):
     *   x = maximize ? -g : g
     *   if weight_decay != 0:  x = x + p * wd
     *   if momentum != 0:      b' = first ? x : b * m + x * c
     *                          x = nesterov ? x + b' * m : b'
     *   p' = p - x * r
     * This is, operation for operation, the composition of elementwise kernels the core uses
     * without the entry, so a cpu backend gives bit-identical results both ways. Float dtypes
     * when undeclared. */
    em_kernel_fn sgd;

    /* Kernels added by later minors are appended here; each entry says which views,
     * parameters (ip, fp) and dtypes it takes, and the dtypes assumed when undeclared. */
} em_backend_ops;

/* ---------------------------------------------------------------------------------
 * Per-kernel dtypes (ABI 1.1). One mask per kernel entry of em_backend_ops, in the same
 * order; bit d is set when the kernel implements dtype d (EM_DTYPE_BIT). The mask covers the
 * kernel's data views: every view except those whose dtype the kernel's entry fixes (the
 * bool output of a comparison, the bool condition of where and mask of masked_fill). For
 * copy it covers both sides (a conversion is called only between two declared dtypes); for
 * gemm, em_gemm_args.dtype.
 *
 * A mask of 0 (or a field past struct_size, or ops->dtypes NULL) means the default: for the
 * kernels of 1.0 exactly what 1.0 promised (EM_DTYPES_ABI10_* below), for later kernels what
 * their entry says. Declaring more than that is how a plugin takes new dtypes; declaring
 * less makes the core run the other dtypes through the cpu fallback (announced) or fail
 * with EM_ERR_UNSUPPORTED under [device] op_fallback = error. A device reporting fp64 = 0 is
 * never passed f64, whatever its masks say.
 * --------------------------------------------------------------------------------- */
typedef uint32_t em_dtype_mask;
#define EM_DTYPE_BIT(dt) ((em_dtype_mask)1u << (unsigned)(dt))
#define EM_DTYPES_FLOAT (EM_DTYPE_BIT(EM_F32) | EM_DTYPE_BIT(EM_F64))
/* What ABI 1.0 promised: float kernels take f32/f64; fill, copy, comparisons, where and
 * masked_fill also bool. */
#define EM_DTYPES_ABI10_FLOAT EM_DTYPES_FLOAT
#define EM_DTYPES_ABI10_ANY (EM_DTYPES_FLOAT | EM_DTYPE_BIT(EM_BOOL))
/* The integer dtypes of 1.2, and every dtype. */
#define EM_DTYPES_INT (EM_DTYPE_BIT(EM_I64) | EM_DTYPE_BIT(EM_I32) | EM_DTYPE_BIT(EM_U8))
#define EM_DTYPES_ALL (EM_DTYPES_ABI10_ANY | EM_DTYPES_INT)

struct em_kernel_dtypes {
    size_t struct_size;
    em_dtype_mask gemm;
    em_dtype_mask fill, rng_uniform, rng_normal, copy;
    em_dtype_mask neg, exp, log, sqrt, abs, relu, tanh, sigmoid;
    em_dtype_mask add_scalar, mul_scalar, rsub_scalar, div_scalar, rdiv_scalar, pow_scalar, clamp;
    em_dtype_mask add, sub, mul, div, maximum, minimum;
    em_dtype_mask lt, le, gt, ge, eq, ne;
    em_dtype_mask where, masked_fill;
    em_dtype_mask sum;
    em_dtype_mask relu_backward, clamp_backward, pow_backward, tanh_backward, sigmoid_backward;
    /* ---- ABI 1.2 ---- */
    em_dtype_mask log1p, expm1, sin, cos, erf, floor, ceil, round, sign;
    em_dtype_mask pow, floor_divide, remainder;
    em_dtype_mask prod;
    em_dtype_mask max_dim, min_dim, softmax, log_softmax;
    em_dtype_mask index_select, gather, scatter_add;
    /* ---- ABI 1.3 ---- */
    em_dtype_mask adam;
    /* ---- ABI 1.4: pooling and normalisation ---- */
    em_dtype_mask avg_pool2d, avg_pool2d_grad;
    /* ---- ABI 1.4: convolution ---- */
    em_dtype_mask im2col, col2im, max_pool2d;
    /* ---- ABI 1.4: whole convolutions (optional) ---- */
    em_dtype_mask conv2d, conv2d_grad_input, conv2d_grad_weight;
    /* ---- ABI 1.5: max_pool2d backward ---- */
    em_dtype_mask max_pool2d_grad;
    /* ---- ABI 1.7 ---- */
    em_dtype_mask sgd;
    /* masks of kernels added by later minors follow, in the order of em_backend_ops */
};

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
 * not created and nothing needs to be freed. Name strings must be static.
 *
 * Describe calls (ABI 1.1): when host->flags has EM_HOST_DESCRIBE (check host->struct_size
 * first), the core only wants the static description, e.g. to validate a device.ini section
 * of a backend it is not going to use: fill abi_major/minor, name, version, description,
 * config_keys (and ops if you like: a static table), leave ctx NULL, create nothing, touch
 * no driver, and return EM_OK. config is NULL and n_config 0. It must be cheap and
 * thread-safe. A plugin built for 1.0 does not know the flag and initialises as usual; the
 * core then shuts that instance down at once. */
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
