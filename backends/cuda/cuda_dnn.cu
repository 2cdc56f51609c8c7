/* backends/cuda/cuda_dnn.cu — the whole-convolution kernels of ABI 1.4 (conv2d,
 * conv2d_grad_input, conv2d_grad_weight; definitions in ember/backend.h) on cuDNN's legacy
 * convolution API, built when configure found cudnn.h (HAVE_CUDNN; --without-cudnn leaves the
 * entries NULL and the core lowers convolutions to im2col / col2im and cuBLAS's gemm).
 *
 * cuDNN is not linked but loaded with dlopen at the first convolution (or when ember-info
 * reads a device's properties), as cuBLAS is (cuda_blas.cu): from the toolkit configure found,
 * then by the soname of the major the plugin was compiled against. Where it cannot be loaded,
 * or a device cannot create a handle, or cuDNN has no algorithm for a call (or a size is past
 * its int sizes), a kernel declines the call (EM_ERR_UNSUPPORTED, nothing written) and the core
 * lowers that convolution: cuDNN stays an optional dependency at run time too.
 *
 * Each device gets one cuDNN handle, created at its first convolution and bound to the
 * device's stream, so the calls queue behind the kernels and copies before them like every
 * other op. The algorithm is cuDNN's heuristic choice (cudnnGet*Algorithm_v7), the first
 * deterministic one that succeeds within the workspace limit; the workspace is one device
 * allocation kept and grown per device. f32 uses CUDNN_FMA_MATH (full fp32, no TF32, as the
 * gemm does). Every other cuDNN failure becomes an ember status with the API name and
 * cudnnGetErrorString's text. */
#include "cuda_backend.h"

#ifdef HAVE_CUDNN

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* the largest workspace an algorithm may ask for */
#define CU_DNN_WS_LIMIT ((size_t)1 << 30)

#define CU_DNN_STR_(x) #x
#define CU_DNN_STR(x) CU_DNN_STR_(x)
#define CU_DNN_SONAME "libcudnn.so." CU_DNN_STR(CUDNN_MAJOR)

#ifndef CU_CUDA_LIBDIR
#define CU_CUDA_LIBDIR ""
#endif

/* ------------------------------------------------------------------ loading */

/* The cuDNN functions the kernels call, as (field, symbol); only their prototypes come from
 * the header. */
#define CU_DNN_FNS(X)                                                                      \
    X(create, cudnnCreate) X(destroy, cudnnDestroy) X(set_stream, cudnnSetStream)          \
    X(error_string, cudnnGetErrorString) X(version, cudnnGetVersion)                       \
    X(create_tensor, cudnnCreateTensorDescriptor)                                          \
    X(destroy_tensor, cudnnDestroyTensorDescriptor)                                        \
    X(set_tensor4d, cudnnSetTensor4dDescriptor)                                            \
    X(create_filter, cudnnCreateFilterDescriptor)                                          \
    X(destroy_filter, cudnnDestroyFilterDescriptor)                                        \
    X(set_filter4d, cudnnSetFilter4dDescriptor)                                            \
    X(create_conv, cudnnCreateConvolutionDescriptor)                                       \
    X(destroy_conv, cudnnDestroyConvolutionDescriptor)                                     \
    X(set_conv2d, cudnnSetConvolution2dDescriptor)                                         \
    X(set_groups, cudnnSetConvolutionGroupCount)                                           \
    X(set_math, cudnnSetConvolutionMathType)                                               \
    X(output_dim, cudnnGetConvolution2dForwardOutputDim)                                   \
    X(fwd_algo, cudnnGetConvolutionForwardAlgorithm_v7)                                    \
    X(bwd_data_algo, cudnnGetConvolutionBackwardDataAlgorithm_v7)                          \
    X(bwd_filter_algo, cudnnGetConvolutionBackwardFilterAlgorithm_v7)                      \
    X(forward, cudnnConvolutionForward) X(backward_data, cudnnConvolutionBackwardData)     \
    X(backward_filter, cudnnConvolutionBackwardFilter)                                     \
    X(backward_bias, cudnnConvolutionBackwardBias) X(add_tensor, cudnnAddTensor)

struct cu_dnn_fns {
#define CU_DNN_FIELD(field, sym) decltype(&sym) field;
    CU_DNN_FNS(CU_DNN_FIELD)
#undef CU_DNN_FIELD
};

/* Loaded once per process (a failure is not retried: every convolution would pay for the
 * search); never changed afterwards, so the kernels read it without the lock. */
static pthread_mutex_t dnn_lock = PTHREAD_MUTEX_INITIALIZER;
static bool dnn_tried, dnn_ok;
static cu_dnn_fns D;
static char dnn_file[4096], dnn_why[640];

static bool load_from(const char *file, size_t *used)
{
    dlerror();
    void *h = dlopen(file, RTLD_NOW | RTLD_LOCAL);
    const char *err = h ? nullptr : dlerror();
#define CU_DNN_RESOLVE(field, sym)                                                         \
    if (h && !(D.field = reinterpret_cast<decltype(D.field)>(dlsym(h, #sym)))) {           \
        err = dlerror();                                                                   \
        dlclose(h);                                                                        \
        h = nullptr;                                                                       \
    }
    CU_DNN_FNS(CU_DNN_RESOLVE)
#undef CU_DNN_RESOLVE
    if (!h) {
        if (*used + 1 < sizeof dnn_why)
            *used += (size_t)snprintf(dnn_why + *used, sizeof dnn_why - *used, "%s%s (%s)",
                                      *used ? "; " : "", file, err ? err : "no reason given");
        return false;
    }
    Dl_info info;
    const bool where = dladdr(reinterpret_cast<void *>(D.create), &info) && info.dli_fname;
    snprintf(dnn_file, sizeof dnn_file, "%s", where ? info.dli_fname : file);
    return true;
}

bool cu_dnn_load(const char **path, const char **why)
{
    pthread_mutex_lock(&dnn_lock);
    if (!dnn_tried) {
        char dir_file[4096];
        size_t used = 0;
        snprintf(dir_file, sizeof dir_file, "%s/%s", CU_CUDA_LIBDIR, CU_DNN_SONAME);
        dnn_ok = (CU_CUDA_LIBDIR[0] && load_from(dir_file, &used)) ||
                 load_from(CU_DNN_SONAME, &used);
        if (!dnn_ok)
            memset(&D, 0, sizeof D);
        dnn_tried = true;
    }
    const bool ok = dnn_ok;
    pthread_mutex_unlock(&dnn_lock);
    if (path)
        *path = ok ? dnn_file : nullptr;
    if (why)
        *why = ok ? "" : dnn_why;
    return ok;
}

static em_status dnn_fail(cu_dev *d, cudnnStatus_t s, const char *kname, const char *api)
{
    em_status st = s == CUDNN_STATUS_ALLOC_FAILED ? EM_ERR_OOM
                   : s == CUDNN_STATUS_NOT_SUPPORTED ? EM_ERR_UNSUPPORTED
                                                     : EM_ERR_BACKEND;
    (void)cudaGetLastError();
    return CU_ERR(d->inst, st, "cuda: %s: %s failed: %s (cuDNN status %d)", kname, api,
                  D.error_string(s), (int)s);
}

/* The device's handle, created and bound to its stream on first use. Without cuDNN, or when
 * this device cannot make a handle (remembered), the call is declined. */
static em_status dnn_handle(cu_dev *d, const char *kname)
{
    if (d->dnn)
        return EM_OK;
    const char *why = "";
    if (d->dnn_broken || !cu_dnn_load(nullptr, &why))
        return CU_ERR(d->inst, EM_ERR_UNSUPPORTED, "cuda: %s: cuDNN is not usable: %s", kname,
                      d->dnn_broken ? "no handle on this device" : why);
    cudnnHandle_t h = nullptr;
    cudnnStatus_t s = D.create(&h);
    if (s == CUDNN_STATUS_SUCCESS && (s = D.set_stream(h, d->stream)) != CUDNN_STATUS_SUCCESS)
        D.destroy(h);
    if (s != CUDNN_STATUS_SUCCESS) {
        if (s == CUDNN_STATUS_ALLOC_FAILED)
            return dnn_fail(d, s, kname, "cudnnCreate");
        d->dnn_broken = true;   /* its engine libraries missing, a version mismatch, ... */
        (void)cudaGetLastError();
        return CU_ERR(d->inst, EM_ERR_UNSUPPORTED, "cuda: %s: cudnnCreate failed: %s", kname,
                      D.error_string(s));
    }
    d->dnn = h;
    return EM_OK;
}

void cu_dnn_release(cu_dev *d)
{
    if (d->dnn)
        D.destroy(d->dnn);
    d->dnn = nullptr;
    if (d->dnn_ws)
        cudaFree(d->dnn_ws);
    d->dnn_ws = nullptr;
    d->dnn_ws_bytes = 0;
}

size_t cu_dnn_version(void)
{
    return cu_dnn_load(nullptr, nullptr) ? D.version() : 0;
}

/* A workspace of at least bytes, kept on the device for later calls. */
static em_status dnn_workspace(cu_dev *d, size_t bytes, const char *kname, void **ws)
{
    if (bytes > d->dnn_ws_bytes) {
        if (d->dnn_ws) {
            /* calls queued on the stream may still use the old one */
            cudaError_t e = cudaStreamSynchronize(d->stream);
            if (e != cudaSuccess)
                return cu_fail(d, e, kname, "cudaStreamSynchronize");
            cudaFree(d->dnn_ws);
            d->dnn_ws = nullptr;
            d->dnn_ws_bytes = 0;
        }
        cudaError_t e = cudaMalloc(&d->dnn_ws, bytes);
        if (e != cudaSuccess) {
            d->dnn_ws = nullptr;
            return cu_fail(d, e, kname, "cudaMalloc (cuDNN workspace)");
        }
        d->dnn_ws_bytes = bytes;
    }
    *ws = bytes ? d->dnn_ws : nullptr;
    return EM_OK;
}

/* ------------------------------------------------------------------ descriptors */

/* One call's descriptors: x, y (4-D tensors), w (filter), the bias (1, OC, 1, 1) and the
 * convolution; released together. */
struct dnn_call {
    cu_dev *d;
    const char *kname;
    cudnnDataType_t type;
    cudnnTensorDescriptor_t x, y, b;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
};

static void call_release(dnn_call *c)
{
    if (c->x)
        D.destroy_tensor(c->x);
    if (c->y)
        D.destroy_tensor(c->y);
    if (c->b)
        D.destroy_tensor(c->b);
    if (c->w)
        D.destroy_filter(c->w);
    if (c->conv)
        D.destroy_conv(c->conv);
}

static bool contiguous4(const em_kview *v)
{
    if (!v || v->ndim != 4)
        return false;
    int64_t s = 1;
    for (int k = 3; k >= 0; k--) {
        if (v->shape[k] < 1 || (v->shape[k] != 1 && v->strides[k] != s))
            return false;
        s *= v->shape[k];
    }
    return true;
}

static bool fits_int(const em_kview *v)
{
    int64_t n = 1;
    for (int k = 0; k < v->ndim; k++)
        n *= v->shape[k];
    return n <= INT_MAX;
}

#define DNN_TRY(call, api)                                                                 \
    do {                                                                                   \
        cudnnStatus_t s_ = (call);                                                         \
        if (s_ != CUDNN_STATUS_SUCCESS)                                                    \
            return dnn_fail(c->d, s_, c->kname, api);                                      \
    } while (0)

static em_status set_tensor(dnn_call *c, cudnnTensorDescriptor_t *t, const em_kview *v)
{
    DNN_TRY(D.create_tensor(t), "cudnnCreateTensorDescriptor");
    DNN_TRY(D.set_tensor4d(*t, CUDNN_TENSOR_NCHW, c->type, (int)v->shape[0],
                                       (int)v->shape[1], (int)v->shape[2], (int)v->shape[3]),
            "cudnnSetTensor4dDescriptor");
    return EM_OK;
}

/* Checks the views (x, w, y: 4-D NCHW contiguous, one float dtype; bias (OC) or NULL) and the
 * window, and makes the descriptors. */
static em_status call_setup(dnn_call *c, const em_kargs *a, const em_kview *x,
                            const em_kview *w, const em_kview *y, const em_kview *bias)
{
    cu_dev *d = c->d;
    if (a->n_ip < 11 || !a->ip)
        return CU_ERR(d->inst, EM_ERR_INVALID, "%s: expected ip[11]", c->kname);
    if (!contiguous4(x) || !contiguous4(w) || !contiguous4(y))
        return CU_ERR(d->inst, EM_ERR_INVALID, "%s: expected contiguous 4-d NCHW views", c->kname);
    const int32_t dt = x->dtype;
    if ((dt != EM_F32 && dt != EM_F64) || w->dtype != dt || y->dtype != dt ||
        (bias && (bias->dtype != dt || bias->ndim != 1 || bias->shape[0] != w->shape[0])))
        return CU_ERR(d->inst, EM_ERR_DTYPE, "%s: expected views of one float dtype", c->kname);
    const int64_t *ip = a->ip;
    for (int i = 0; i < 11; i++)
        if (ip[i] < ((i == 4 || i == 5) ? 0 : 1) || ip[i] > INT_MAX)
            return CU_ERR(d->inst, EM_ERR_INVALID, "%s: parameter %d is %lld", c->kname, i,
                          (long long)ip[i]);
    if (w->shape[2] != ip[0] || w->shape[3] != ip[1] || y->shape[2] != ip[8] ||
        y->shape[3] != ip[9] || y->shape[0] != x->shape[0] || y->shape[1] != w->shape[0] ||
        x->shape[1] != w->shape[1] * ip[10] || w->shape[0] % ip[10])
        return CU_ERR(d->inst, EM_ERR_INVALID, "%s: the views do not match the window", c->kname);
    if (!fits_int(x) || !fits_int(w) || !fits_int(y))
        return CU_ERR(d->inst, EM_ERR_UNSUPPORTED,
                      "%s: a view of 2^31 elements or more is past cuDNN's int sizes", c->kname);
    c->type = dt == EM_F32 ? CUDNN_DATA_FLOAT : CUDNN_DATA_DOUBLE;
    em_status st;
    if ((st = cu_enter(d)) != EM_OK || (st = dnn_handle(d, c->kname)) != EM_OK)
        return st;
    if ((st = set_tensor(c, &c->x, x)) != EM_OK || (st = set_tensor(c, &c->y, y)) != EM_OK)
        return st;
    if (bias) {
        DNN_TRY(D.create_tensor(&c->b), "cudnnCreateTensorDescriptor");
        DNN_TRY(D.set_tensor4d(c->b, CUDNN_TENSOR_NCHW, c->type, 1,
                                           (int)bias->shape[0], 1, 1),
                "cudnnSetTensor4dDescriptor");
    }
    DNN_TRY(D.create_filter(&c->w), "cudnnCreateFilterDescriptor");
    DNN_TRY(D.set_filter4d(c->w, c->type, CUDNN_TENSOR_NCHW, (int)w->shape[0],
                                       (int)w->shape[1], (int)w->shape[2], (int)w->shape[3]),
            "cudnnSetFilter4dDescriptor");
    DNN_TRY(D.create_conv(&c->conv), "cudnnCreateConvolutionDescriptor");
    DNN_TRY(D.set_conv2d(c->conv, (int)ip[4], (int)ip[5], (int)ip[2],
                                            (int)ip[3], (int)ip[6], (int)ip[7],
                                            CUDNN_CROSS_CORRELATION, c->type),
            "cudnnSetConvolution2dDescriptor");
    DNN_TRY(D.set_groups(c->conv, (int)ip[10]), "cudnnSetConvolutionGroupCount");
    DNN_TRY(D.set_math(c->conv, CUDNN_FMA_MATH), "cudnnSetConvolutionMathType");
    /* the contract's symmetric padding: cuDNN's output size is the core's */
    int n, oc, oh, ow;
    DNN_TRY(D.output_dim(c->conv, c->x, c->w, &n, &oc, &oh, &ow),
            "cudnnGetConvolution2dForwardOutputDim");
    if (oh != y->shape[2] || ow != y->shape[3])
        return CU_ERR(d->inst, EM_ERR_INVALID,
                      "%s: output %lldx%lld, but the window gives %dx%d (padding not symmetric)",
                      c->kname, (long long)y->shape[2], (long long)y->shape[3], oh, ow);
    return EM_OK;
}

static void *ptr(const em_kview *v)
{
    return (char *)v->buf + v->offset * (v->dtype == EM_F32 ? 4 : 8);
}

/* alpha / beta in the type cuDNN reads for the compute type */
struct dnn_scale {
    float f[2];
    double g[2];
    const void *one(cudnnDataType_t t) const
    {
        return t == CUDNN_DATA_FLOAT ? (const void *)&f[0] : (const void *)&g[0];
    }
    const void *zero(cudnnDataType_t t) const
    {
        return t == CUDNN_DATA_FLOAT ? (const void *)&f[1] : (const void *)&g[1];
    }
};
static const dnn_scale k_scale = {{1.0f, 0.0f}, {1.0, 0.0}};

/* The first of cuDNN's ranked choices that succeeds within the limit and is deterministic (the
 * same result run after run, as the plugin's own kernels give), else the first that succeeds. */
template <class P>
static bool pick(const P *perf, int n, decltype(perf->algo) *algo, size_t *ws)
{
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n; i++)
            if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= CU_DNN_WS_LIMIT &&
                (pass || perf[i].determinism == CUDNN_DETERMINISTIC)) {
                *algo = perf[i].algo;
                *ws = perf[i].memory;
                return true;
            }
    return false;
}

/* ------------------------------------------------------------------ kernels */

static em_status conv_forward(dnn_call *c, const em_kargs *a)
{
    cu_dev *d = c->d;
    const em_kview *x = a->n_in >= 2 && a->ins ? a->ins[0] : nullptr;
    const em_kview *w = a->n_in >= 2 && a->ins ? a->ins[1] : nullptr;
    const em_kview *b = a->n_in == 3 ? a->ins[2] : nullptr, *y = a->out;
    if (!x || !w || !y || a->n_out != 1 || a->n_in > 3 || (a->n_in == 3 && !b))
        return CU_ERR(d->inst, EM_ERR_INVALID, "conv2d: expected 1 output and 2 or 3 inputs");
    /* ABI 1.6's ReLU (ip[11] = 1) is not fused here: declined, the core asks again without */
    if (a->n_ip > 11 && a->ip && a->ip[11] != 0)
        return CU_ERR(d->inst, EM_ERR_UNSUPPORTED, "conv2d: ReLU not fused on cuda");
    em_status st = call_setup(c, a, x, w, y, b);
    if (st != EM_OK)
        return st;
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int found = 0;
    DNN_TRY(D.fwd_algo(d->dnn, c->x, c->w, c->conv, c->y,
                                                   CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &found, perf),
            "cudnnGetConvolutionForwardAlgorithm_v7");
    cudnnConvolutionFwdAlgo_t algo;
    size_t bytes = 0;
    void *ws = nullptr;
    if (!pick(perf, found, &algo, &bytes))
        return CU_ERR(d->inst, EM_ERR_UNSUPPORTED, "conv2d: cuDNN has no forward algorithm here");
    if ((st = dnn_workspace(d, bytes, "conv2d", &ws)) != EM_OK)
        return st;
    DNN_TRY(D.forward(d->dnn, k_scale.one(c->type), c->x, ptr(x), c->w, ptr(w),
                                    c->conv, algo, ws, bytes, k_scale.zero(c->type), c->y, ptr(y)),
            "cudnnConvolutionForward");
    if (b)
        DNN_TRY(D.add_tensor(d->dnn, k_scale.one(c->type), c->b, ptr(b), k_scale.one(c->type),
                               c->y, ptr(y)),
                "cudnnAddTensor");
    return EM_OK;
}

static em_status conv_grad_input(dnn_call *c, const em_kargs *a)
{
    cu_dev *d = c->d;
    const em_kview *dy = a->n_in == 2 && a->ins ? a->ins[0] : nullptr;
    const em_kview *w = a->n_in == 2 && a->ins ? a->ins[1] : nullptr, *dx = a->out;
    if (!dy || !w || !dx || a->n_out != 1)
        return CU_ERR(d->inst, EM_ERR_INVALID, "conv2d_grad_input: expected 1 output and 2 inputs");
    em_status st = call_setup(c, a, dx, w, dy, nullptr);
    if (st != EM_OK)
        return st;
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int found = 0;
    DNN_TRY(D.bwd_data_algo(d->dnn, c->w, c->y, c->conv, c->x,
                                                        CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                                                        &found, perf),
            "cudnnGetConvolutionBackwardDataAlgorithm_v7");
    cudnnConvolutionBwdDataAlgo_t algo;
    size_t bytes = 0;
    void *ws = nullptr;
    if (!pick(perf, found, &algo, &bytes))
        return CU_ERR(d->inst, EM_ERR_UNSUPPORTED,
                      "conv2d_grad_input: cuDNN has no backward-data algorithm here");
    if ((st = dnn_workspace(d, bytes, "conv2d_grad_input", &ws)) != EM_OK)
        return st;
    DNN_TRY(D.backward_data(d->dnn, k_scale.one(c->type), c->w, ptr(w), c->y,
                                         ptr(dy), c->conv, algo, ws, bytes,
                                         k_scale.zero(c->type), c->x, ptr(dx)),
            "cudnnConvolutionBackwardData");
    return EM_OK;
}

static em_status conv_grad_weight(dnn_call *c, const em_kargs *a)
{
    cu_dev *d = c->d;
    const em_kview *x = a->n_in == 2 && a->ins ? a->ins[0] : nullptr;
    const em_kview *dy = a->n_in == 2 && a->ins ? a->ins[1] : nullptr, *dw = a->out;
    const em_kview *db = a->n_out == 2 && a->outs ? a->outs[1] : nullptr;
    if (!x || !dy || !dw || a->n_out < 1 || a->n_out > 2 || (a->n_out == 2 && !db))
        return CU_ERR(d->inst, EM_ERR_INVALID,
                      "conv2d_grad_weight: expected 1 or 2 outputs and 2 inputs");
    em_status st = call_setup(c, a, x, dw, dy, db);
    if (st != EM_OK)
        return st;
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    int found = 0;
    DNN_TRY(D.bwd_filter_algo(d->dnn, c->x, c->y, c->conv, c->w,
                                                          CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
                                                          &found, perf),
            "cudnnGetConvolutionBackwardFilterAlgorithm_v7");
    cudnnConvolutionBwdFilterAlgo_t algo;
    size_t bytes = 0;
    void *ws = nullptr;
    if (!pick(perf, found, &algo, &bytes))
        return CU_ERR(d->inst, EM_ERR_UNSUPPORTED,
                      "conv2d_grad_weight: cuDNN has no backward-filter algorithm here");
    if ((st = dnn_workspace(d, bytes, "conv2d_grad_weight", &ws)) != EM_OK)
        return st;
    DNN_TRY(D.backward_filter(d->dnn, k_scale.one(c->type), c->x, ptr(x), c->y,
                                           ptr(dy), c->conv, algo, ws, bytes,
                                           k_scale.zero(c->type), c->w, ptr(dw)),
            "cudnnConvolutionBackwardFilter");
    if (db)
        DNN_TRY(D.backward_bias(d->dnn, k_scale.one(c->type), c->y, ptr(dy),
                                             k_scale.zero(c->type), c->b, ptr(db)),
                "cudnnConvolutionBackwardBias");
    return EM_OK;
}

#define DNN_KERNEL(name, fn)                                                               \
    em_status cu_k_##name(void *dev, const em_kargs *a)                                    \
    {                                                                                      \
        dnn_call c;                                                                        \
        memset(&c, 0, sizeof c);                                                           \
        c.d = (cu_dev *)dev;                                                               \
        c.kname = #name;                                                                   \
        em_status st = fn(&c, a);                                                          \
        call_release(&c);                                                                  \
        return st;                                                                         \
    }
DNN_KERNEL(conv2d, conv_forward)
DNN_KERNEL(conv2d_grad_input, conv_grad_input)
DNN_KERNEL(conv2d_grad_weight, conv_grad_weight)

#endif /* HAVE_CUDNN */
