/* backends/cuda/cuda_backend.h — what the cuda backend's translation units share: the
 * instance and device structs, the error helpers (every CUDA / cuBLAS failure becomes an
 * ember status with the API name and CUDA's own error name and text), the current-device
 * guard, the cuBLAS function table, and the entry points the kernel files, cuda_async.cu,
 * cuda_blas.cu and (with cuDNN) cuda_dnn.cu define for the ops table in cuda_backend.cu. Private to the plugin: nothing
 * here is exported. */
#ifndef EMBER_BACKEND_CUDA_H
#define EMBER_BACKEND_CUDA_H

#include <ember/backend.h>
#include <ember/plugin_kit.h>
#include <cuda_runtime.h>
#include <cublas_v2.h>
/* HAVE_CUDNN: set on nvcc's command line when configure found cudnn.h (--without-cudnn) */
#ifdef HAVE_CUDNN
#include <cudnn.h>
#endif

/* Belt and braces next to -fvisibility=hidden: cross-file symbols must never leak. */
#define CU_HIDDEN __attribute__((visibility("hidden")))

/* The cuBLAS functions the plugin calls, as (field, exported symbol): cublas_v2.h maps the
 * plain names onto the _v2 symbols. Only their prototypes come from the header; the library
 * is loaded at run time (cuda_blas.cu), so each field has the prototype's exact type. */
#define CU_BLAS_FNS(X)                                                                    \
    X(create, cublasCreate_v2)                                                            \
    X(destroy, cublasDestroy_v2)                                                          \
    X(set_stream, cublasSetStream_v2)                                                     \
    X(set_math_mode, cublasSetMathMode)                                                   \
    X(get_property, cublasGetProperty)                                                    \
    X(sgemm, cublasSgemm_v2)                                                              \
    X(dgemm, cublasDgemm_v2)                                                              \
    X(sgemm_strided_batched, cublasSgemmStridedBatched)                                   \
    X(dgemm_strided_batched, cublasDgemmStridedBatched)

/* The 64-bit entry points (cuBLAS 12 and later), for a gemm with a size or leading
 * dimension past INT_MAX. Optional: NULL where the library loaded lacks them, and such a
 * gemm is then refused. */
#if CUBLAS_VER_MAJOR >= 12
#define CU_BLAS_HAVE_64 1
#define CU_BLAS_FNS_64(X)                                                                 \
    X(sgemm_64, cublasSgemm_v2_64)                                                        \
    X(dgemm_64, cublasDgemm_v2_64)                                                        \
    X(sgemm_strided_batched_64, cublasSgemmStridedBatched_64)                             \
    X(dgemm_strided_batched_64, cublasDgemmStridedBatched_64)
#else
#define CU_BLAS_FNS_64(X)
#endif

typedef struct cu_blas_fns {
#define CU_BLAS_FIELD(field, sym) decltype(&sym) field;
    CU_BLAS_FNS(CU_BLAS_FIELD)
    CU_BLAS_FNS_64(CU_BLAS_FIELD)
#undef CU_BLAS_FIELD
    const char *path;            /* the file the functions come from */
} cu_blas_fns;

/* Pinned staging for host -> device copies: a ring of CU_STAGE_SLOTS slots of
 * CU_STAGE_SLOT bytes. Copies up to one slot go through it asynchronously; a slot is
 * reused only after an event recorded behind its last copy has completed. */
#define CU_STAGE_SLOT (64 * 1024)
#define CU_STAGE_SLOTS 16
/* Pinned landing buffer for small device -> host copies (item(), printing). */
#define CU_D2H_PINNED (64 * 1024)

typedef struct cu_inst {
    const em_host *host;
    em_host_ctx *hc;
    int device;                  /* device= from [cuda]; -1: not given (use 0) */
    int n_open;                  /* devices currently open */
} cu_inst;

typedef struct cu_dev {
    cu_inst *inst;
    int index;
    int sm_count;
    int cc_major, cc_minor;
    int64_t max_blocks;          /* grid cap for grid-stride elementwise kernels */
    cudaStream_t stream;         /* every copy, kernel and gemm of the context */
    cu_blas_fns cb;              /* a copy: no shared table to read without the lock */
    cublasHandle_t blas;         /* bound to stream */
    /* h2d staging ring (NULL: pinned memory unavailable, copies go synchronously) */
    char *stage;
    cudaEvent_t stage_ev[CU_STAGE_SLOTS];
    int stage_pending[CU_STAGE_SLOTS];
    int stage_slot;
    size_t stage_used;
    char *d2h;                   /* pinned, CU_D2H_PINNED bytes, or NULL */
    /* split-sum scratch: [0, red_counter_bytes) counters, kept zero between launches;
     * the rest partial sums */
    char *red;
    size_t red_bytes;
    size_t red_counter_bytes;
    /* streams from stream_create, still alive: synchronize must wait for them too, and
     * cudaDeviceSynchronize would also wait for other contexts' work on the same GPU */
    cudaStream_t *streams;
    int n_streams, cap_streams;
    /* A sticky error (cu_error_sticky) seen on this device: the CUDA context is corrupt
     * for the rest of the process, so every later op is refused (cu_enter) with this. */
    cudaError_t sticky;
    char sticky_where[160];      /* "<what>: <api>" of the call that reported it */
#ifdef HAVE_CUDNN
    /* cuDNN (cuda_dnn.cu): the handle, bound to stream, made at the first convolution
     * (NULL before); the workspace its algorithms share, grown on demand */
    cudnnHandle_t dnn;
    bool dnn_broken;             /* cudnnCreate failed here: convolutions are lowered */
    void *dnn_ws;
    size_t dnn_ws_bytes;
#endif
} cu_dev;

#define CU_ERR(inst, st, ...) ((inst)->host->error((inst)->hc, (st), __VA_ARGS__))

CU_HIDDEN const char *cu_blas_status_name(cublasStatus_t s);

/* Load cuBLAS if no call has yet (cuda_blas.cu) and copy its function table to *fns; false,
 * with every file tried and dlerror()'s reason in why, if it cannot be loaded. Thread-safe;
 * a failure is retried by the next call. */
CU_HIDDEN bool cu_blas_load(cu_blas_fns *fns, char *why, size_t n);
CU_HIDDEN em_status cu_gemm(void *dev, const em_gemm_args *g);

/* Report a failed CUDA runtime call made for `what` (a kernel or op name) through
 * host->error: EM_ERR_OOM for cudaErrorMemoryAllocation, EM_ERR_BACKEND otherwise.
 * Clears the runtime's last-error slot so that a non-sticky failure is not blamed on a
 * later launch. */
CU_HIDDEN em_status cu_fail(cu_dev *d, cudaError_t e, const char *what, const char *api);
/* Whether e is one of the errors after which, in CUDA's words, "the process must be
 * terminated and relaunched": the context cannot run anything again (an illegal address,
 * a kernel fault or trap, a launch timeout). cu_fail records the first one in d->sticky
 * and reports it as EM_ERR_DEVICE. */
CU_HIDDEN bool cu_error_sticky(cudaError_t e);
/* The refusal of an op on a device whose context a sticky error broke (EM_ERR_DEVICE). */
CU_HIDDEN em_status cu_unusable(cu_dev *d);
CU_HIDDEN em_status cu_blas_fail(cu_dev *d, cublasStatus_t s, const char *what, const char *api);

/* The device's ops must run with it current on the calling thread. The device is made
 * current once at open; afterwards only a thread-local cache is compared, so an op costs no
 * runtime call but cudaGetLastError (a read of thread-local state) — unless the context moved to another thread, or another context of this
 * plugin on another GPU ran on this thread, when cudaSetDevice is called once. (An
 * application that itself calls cudaSetDevice on a thread it also uses for ember must
 * switch back before calling ember: the cache cannot see that.) */
CU_HIDDEN em_status cu_make_current(cu_dev *d);
CU_HIDDEN extern __thread int cu_tls_device;

static inline em_status cu_enter(cu_dev *d)
{
    if (d->sticky != cudaSuccess)
        return cu_unusable(d);
    /* Every op enters here before it launches: an error some other code left in this
     * thread's last-error slot (the application's own CUDA calls) would otherwise be read
     * by launched() and blamed on our launch. A sticky error comes back regardless. */
    (void)cudaGetLastError();
    return cu_tls_device == d->index ? EM_OK : cu_make_current(d);
}

/* Scratch for a split sum: at least counter_bytes of zeroed counters (kernels leave them
 * zero) and, separately, partial_bytes for partial sums. */
CU_HIDDEN em_status cu_red_scratch(cu_dev *d, size_t counter_bytes, size_t partial_bytes,
                                   unsigned **counters, double **partials);

/* 0 if this device can run the plugin's kernels, else the CUDA error (no kernel image for
 * its architecture, ...). */
CU_HIDDEN cudaError_t cu_kernels_probe(void);

/* Optional asynchrony of ABI 1.1 (cuda_async.cu); `dev` is the cu_dev, a stream or event is
 * the cudaStream_t / cudaEvent_t itself, and stream NULL is d->stream. */
CU_HIDDEN em_status cu_host_alloc(void *dev, size_t bytes, void **ptr);
CU_HIDDEN void cu_host_free(void *dev, void *ptr);
CU_HIDDEN em_status cu_copy_h2d_async(void *dev, void *stream, void *dst, size_t dst_offset,
                                      const void *src, size_t bytes);
CU_HIDDEN em_status cu_copy_d2h_async(void *dev, void *stream, void *dst, const void *src,
                                      size_t src_offset, size_t bytes);
CU_HIDDEN em_status cu_stream_create(void *dev, void **stream);
CU_HIDDEN void cu_stream_destroy(void *dev, void *stream);
CU_HIDDEN em_status cu_event_create(void *dev, void **event);
CU_HIDDEN void cu_event_destroy(void *dev, void *event);
CU_HIDDEN em_status cu_event_record(void *dev, void *stream, void *event);
CU_HIDDEN em_status cu_event_wait(void *dev, void *stream, void *event);
CU_HIDDEN em_status cu_event_synchronize(void *dev, void *event);
/* Wait for every stream of d->streams, all of them even after a failure; returns the first
 * failure. */
CU_HIDDEN cudaError_t cu_streams_wait(cu_dev *d);
/* Device close: wait for and destroy the streams the core left, free the list. */
CU_HIDDEN void cu_streams_release(cu_dev *d);

/* Kernels; `dev` is the cu_dev. Those of ABI 1.0 are in cuda_kernels.cu (sum in
 * cuda_reduce.cu); of 1.2: prod in cuda_reduce.cu, the elementwise math in cuda_math.cu,
 * the dim reductions and softmax in cuda_dim.cu, indexing in cuda_gather.cu. */
#define CU_KERNEL(name) CU_HIDDEN em_status cu_k_##name(void *dev, const em_kargs *a)
CU_KERNEL(fill); CU_KERNEL(rng_uniform); CU_KERNEL(rng_normal); CU_KERNEL(copy);
CU_KERNEL(neg); CU_KERNEL(exp); CU_KERNEL(log); CU_KERNEL(sqrt); CU_KERNEL(abs);
CU_KERNEL(relu); CU_KERNEL(tanh); CU_KERNEL(sigmoid);
CU_KERNEL(add_scalar); CU_KERNEL(mul_scalar); CU_KERNEL(rsub_scalar); CU_KERNEL(div_scalar);
CU_KERNEL(rdiv_scalar); CU_KERNEL(pow_scalar); CU_KERNEL(clamp);
CU_KERNEL(add); CU_KERNEL(sub); CU_KERNEL(mul); CU_KERNEL(div);
CU_KERNEL(maximum); CU_KERNEL(minimum);
CU_KERNEL(lt); CU_KERNEL(le); CU_KERNEL(gt); CU_KERNEL(ge); CU_KERNEL(eq); CU_KERNEL(ne);
CU_KERNEL(where); CU_KERNEL(masked_fill);
CU_KERNEL(sum);
CU_KERNEL(relu_backward); CU_KERNEL(clamp_backward); CU_KERNEL(pow_backward);
CU_KERNEL(tanh_backward); CU_KERNEL(sigmoid_backward);
CU_KERNEL(log1p); CU_KERNEL(expm1); CU_KERNEL(sin); CU_KERNEL(cos); CU_KERNEL(erf);
CU_KERNEL(floor); CU_KERNEL(ceil); CU_KERNEL(round); CU_KERNEL(sign);
CU_KERNEL(pow); CU_KERNEL(floor_divide); CU_KERNEL(remainder);
CU_KERNEL(prod);
CU_KERNEL(max_dim); CU_KERNEL(min_dim); CU_KERNEL(softmax); CU_KERNEL(log_softmax);
CU_KERNEL(index_select); CU_KERNEL(gather); CU_KERNEL(scatter_add);
/* ABI 1.3 and 1.7 (cuda_optim.cu) */
CU_KERNEL(adam);
CU_KERNEL(sgd);
/* ABI 1.4 (cuda_pool.cu) */
CU_KERNEL(avg_pool2d); CU_KERNEL(avg_pool2d_grad);
/* ---- ABI 1.4: convolution (cuda_conv.cu) ---- */
CU_KERNEL(im2col); CU_KERNEL(col2im); CU_KERNEL(max_pool2d);
/* ---- ABI 1.5: max_pool2d backward (cuda_conv.cu) ---- */
CU_KERNEL(max_pool2d_grad);
#ifdef HAVE_CUDNN
/* ---- ABI 1.4: whole convolutions (optional; cuda_dnn.cu, on cuDNN loaded at run time;
 * a call it cannot run is declined and lowered by the core) ---- */
CU_KERNEL(conv2d); CU_KERNEL(conv2d_grad_input); CU_KERNEL(conv2d_grad_weight);
/* Device close: the cuDNN handle and workspace, if made. */
CU_HIDDEN void cu_dnn_release(cu_dev *d);
/* Load cuDNN if no call has tried yet (once per process); false, with every file tried and
 * dlerror()'s reason in *why, if it cannot be. *path: the file loaded. Thread-safe. */
CU_HIDDEN bool cu_dnn_load(const char **path, const char **why);
/* cudnnGetVersion() of the library loaded (e.g. 91400), 0 if none */
CU_HIDDEN size_t cu_dnn_version(void);
#endif
#undef CU_KERNEL

#endif
