/* backends/opencl/opencl.h — what the OpenCL backend's files share: the instance (config
 * and the enumerated device list), the opened device (context, queue, the one program and
 * every kernel created from it, the streams and pinned blocks of the asynchrony entries),
 * the kernel-argument structs that mirror kernels.cl, the kernels' dtype declaration, and
 * the error helpers. Private to the plugin: nothing here is exported. */
#ifndef EMBER_BACKEND_OPENCL_H
#define EMBER_BACKEND_OPENCL_H

/* PoCL and ocl-icd ship 3.0 headers; we use the 1.2 API (clCreateCommandQueue) so that
 * every driver of the last decade works, and the define silences the headers' notice. */
#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>

#include <ember/backend.h>
#include <ember/plugin_kit.h>

/* Belt and braces next to -fvisibility=hidden: cross-file symbols must never leak. */
#define OCL_HIDDEN __attribute__((visibility("hidden")))

/* ------------------------------------------------------------------ kernel table */

/* Every op implemented by the elementwise templates of the .cl files. The names
 * (ocl_op_name) are the <op> part of the kernel names. */
typedef enum ocl_op {
    /* unary: float dtypes; neg, abs, the scalar ops and clamp also integer ones */
    OCL_NEG, OCL_EXP, OCL_LOG, OCL_SQRT, OCL_ABS, OCL_RELU, OCL_TANH, OCL_SIGMOID,
    OCL_ADD_SCALAR, OCL_MUL_SCALAR, OCL_RSUB_SCALAR, OCL_DIV_SCALAR, OCL_RDIV_SCALAR,
    OCL_POW_SCALAR, OCL_CLAMP,
    /* binary: float dtypes; add .. minimum also integer ones */
    OCL_ADD, OCL_SUB, OCL_MUL, OCL_DIV, OCL_MAXIMUM, OCL_MINIMUM,
    OCL_RELU_BACKWARD, OCL_CLAMP_BACKWARD, OCL_POW_BACKWARD, OCL_TANH_BACKWARD,
    OCL_SIGMOID_BACKWARD,
    /* comparisons, inputs of any dtype, out bool */
    OCL_LT, OCL_LE, OCL_GT, OCL_GE, OCL_EQ, OCL_NE,
    /* the rest, keyed by out dtype (copy also by input dtype) */
    OCL_WHERE, OCL_MASKED_FILL, OCL_FILL, OCL_COPY, OCL_RNG_UNIFORM, OCL_RNG_NORMAL,
    /* ABI 1.2: unary (sign also integer dtypes), binary (floor_divide and remainder also
     * integer dtypes) */
    OCL_LOG1P, OCL_EXPM1, OCL_SIN, OCL_COS, OCL_ERF, OCL_FLOOR, OCL_CEIL, OCL_ROUND, OCL_SIGN,
    OCL_POW, OCL_FLOOR_DIVIDE, OCL_REMAINDER,
    OCL_OP_COUNT
} ocl_op;

enum { OCL_V1D = 0, OCL_VND = 1 };

/* The kernels that are not elementwise templates, one per dtype each: "<name>_<dtype>". */
typedef enum ocl_xk {
    OCL_XK_SUM_GRP, OCL_XK_SUM_ITEM, OCL_XK_SUM_FIN,      /* in this order: see ocl_reduce */
    OCL_XK_PROD_GRP, OCL_XK_PROD_ITEM, OCL_XK_PROD_FIN,
    OCL_XK_MAX_ITEM, OCL_XK_MAX_GRP, OCL_XK_MIN_ITEM, OCL_XK_MIN_GRP,
    OCL_XK_SOFTMAX_ITEM, OCL_XK_SOFTMAX_GRP, OCL_XK_LOG_SOFTMAX_ITEM, OCL_XK_LOG_SOFTMAX_GRP,
    OCL_XK_INDEX_SELECT, OCL_XK_GATHER, OCL_XK_SCATTER_ADD,
    OCL_XK_SCATTER_ADD_ATOMIC,   /* only where the device has the atomics (else NULL) */
    OCL_XK_GEMM, OCL_XK_GEMMR,
    OCL_XK_ADAM,                 /* ABI 1.3 (opencl_optim.c) */
    OCL_XK_AVG_POOL, OCL_XK_AVG_POOL_BW,   /* ABI 1.4 (opencl_pool.c) */
    /* ---- ABI 1.4: convolution (opencl_conv.c) ---- */
    OCL_XK_IM2COL, OCL_XK_COL2IM, OCL_XK_MAX_POOL2D,
    /* ---- ABI 1.5: max_pool2d backward (opencl_conv.c) ---- */
    OCL_XK_MAX_POOL2D_GRAD,
    /* ---- ABI 1.7: SGD's step (opencl_optim.c) ---- */
    OCL_XK_SGD,
    OCL_XK_COUNT
} ocl_xk;

/* EM_F32, EM_F64, EM_BOOL, EM_I64, EM_I32, EM_U8: every em_dtype indexes the tables */
#define OCL_NDT 6

static inline int ocl_is_int(int32_t dt)
{
    return dt == EM_I64 || dt == EM_I32 || dt == EM_U8;
}

static inline int ocl_is_float(int32_t dt)
{
    return dt == EM_F32 || dt == EM_F64;
}

/* A kernel and the work-group size to launch it with (0 until first use). */
typedef struct ocl_kslot {
    cl_kernel k;
    size_t ls;
} ocl_kslot;

/* Mirrors em_geom of kernels.cl: 8-byte fields first, so the layout is the same on the
 * host and every OpenCL compiler. */
typedef struct ocl_geom {
    cl_long shape[EM_MAX_DIMS];
    cl_long st[4][EM_MAX_DIMS];
    cl_long off[4];
    cl_int ndim;
    cl_int pad;
} ocl_geom;

/* Mirrors em_rgeom of kernels.cl. */
typedef struct ocl_rgeom {
    cl_long ks[EM_MAX_DIMS], kist[EM_MAX_DIMS], kost[EM_MAX_DIMS];
    cl_long rs[EM_MAX_DIMS], rist[EM_MAX_DIMS];
    cl_long ioff, ooff;
    cl_long M, L, nch, chunk;
    cl_int nk, nr;
} ocl_rgeom;

/* Mirrors em_dgeom of kernels_reduce.cl: a (outer, n, inner) input, its (outer, n or 1,
 * inner) output and, for max_dim / min_dim, the i64 (outer, 1, inner) indices. */
typedef struct ocl_dgeom {
    cl_long outer, n, inner;
    cl_long ioff, is0, is1, is2;
    cl_long ooff, os0, os1, os2;
    cl_long xoff, xs0, xs2;
} ocl_dgeom;

/* ------------------------------------------------------------------ instance / device */

/* One entry of the device list: a device of a selected platform, filtered by type. */
typedef struct ocl_devref {
    cl_platform_id platform;
    cl_device_id device;
} ocl_devref;

typedef struct ocl_inst {
    const em_host *host;
    em_host_ctx *hc;
    /* config */
    int platform_index;          /* platform=N, or -1 */
    char platform_name[128];     /* platform=substring (case-insensitive), or "" */
    int default_device;          /* device=N, or -1 (then 0) */
    cl_device_type type;         /* type= */
    const char *type_text;
    int cache;                   /* cache=: 1 on, 0 off, -1 auto (on unless PoCL) */
    /* the device list, enumerated on first need */
    int enumerated;
    em_status enum_status;
    char enum_msg[480];
    int ndev;
    ocl_devref *devs;
    int n_open;
} ocl_inst;

typedef struct ocl_stream ocl_stream;
typedef struct ocl_pinned ocl_pinned;

typedef struct ocl_dev {
    ocl_inst *inst;
    const em_host *host;
    em_host_ctx *hc;
    cl_platform_id platform;
    cl_device_id device;
    cl_context ctx;
    cl_command_queue q;
    cl_program prog;
    char name[128];
    int fp64;
    int index;
    cl_uint compute_units;
    size_t max_wg;               /* device max work-group size */
    size_t ls;                   /* elementwise work-group size */
    size_t rls;                  /* reduction work-group size (EM_LS of the build) */
    int gemm_ts;                 /* EM_GEMM_TS of the build */
    cl_ulong max_alloc;
    int from_cache;              /* the program came from the disk cache */
    int int64_atomics;           /* cl_khr_int64_base_atomics: f64/i64 scatter_add atomics */
    /* kernels: [op][out dtype][variant]; copy [out dtype][in dtype][variant]; the others
     * [ocl_xk][dtype] (gemm: tiled in local memory for GPUs, gemmr register-blocked for
     * CPU devices) */
    ocl_kslot ew[OCL_OP_COUNT][OCL_NDT][2];
    ocl_kslot cp[OCL_NDT][OCL_NDT][2];
    ocl_kslot xk[OCL_XK_COUNT][OCL_NDT];
    int gemm_reg;                /* use gemmr: a CPU device, or EMBER_OPENCL_GEMM=reg */
    /* grow-only device scratch for the partial sums of chunked reductions; reusing it
     * is safe because the queue is in order */
    cl_mem scratch;
    size_t scratch_bytes;
    /* asynchrony (opencl_async.c) */
    ocl_stream *streams;         /* every live stream: synchronize waits for each */
    ocl_pinned *pinned;          /* live host_alloc blocks: host_free is given only the pointer */
    cl_command_queue mapq;       /* maps pinned blocks without waiting for the kernels on q */
} ocl_dev;

#define OCL_ERR(d, st, ...) ((d)->host->error((d)->hc, (st), __VA_ARGS__))

/* "CL_INVALID_VALUE" for -30, "CL_<unknown error -1234>" style for others (static or
 * the caller's buffer). */
OCL_HIDDEN const char *ocl_error_name(cl_int err, char *buf, size_t n);
/* Report a failed OpenCL call: "<api>: <CL_ERROR_NAME>" (EM_ERR_BACKEND). */
OCL_HIDDEN em_status ocl_fail(ocl_dev *d, const char *api, cl_int err);
/* The <op> part of kernel names, "neg" ... "rng_normal". */
OCL_HIDDEN const char *ocl_op_name(int op);
/* Create every kernel of d->prog into the tables (kernels with f64 only where d->fp64). */
OCL_HIDDEN em_status ocl_create_kernels(ocl_dev *d);
OCL_HIDDEN void ocl_release_kernels(ocl_dev *d);

/* The kernel slot of an elementwise op (copy: out dtype dt, input dtype dt_in). */
OCL_HIDDEN ocl_kslot *ocl_ew_slot(ocl_dev *d, int op, int32_t dt, int32_t dt_in, int v);
/* Kernel names as the .cl files spell them. */
OCL_HIDDEN void ocl_ew_name(char *buf, size_t n, int op, int32_t dt, int32_t dt_in, int v);
OCL_HIDDEN void ocl_xk_name(char *buf, size_t n, int xk, int32_t dt);

/* Launch helpers shared by the kernel files (opencl_kernels.c). */

/* One scalar kernel argument. */
typedef struct ocl_arg {
    size_t size;
    union {
        cl_float f;
        cl_double d;
        cl_uchar b;
        cl_int i;
        cl_long l;
        cl_ulong u;
    } v;
} ocl_arg;

/* p as the kernel's scalar type for dtype dt (bool: p != 0; integers: p saturated and
 * truncated toward zero, then wrapped to the dtype's width). */
OCL_HIDDEN ocl_arg ocl_typed_arg(int32_t dt, double p);
/* The scalar i of a kernel as dtype dt: integer dtypes take ip[i] exactly when the core
 * passed it, else p[i] as ocl_typed_arg. */
OCL_HIDDEN ocl_arg ocl_scalar_arg(int32_t dt, const em_kargs *ka, int i);
/* double -> int64: NaN 0, out of range saturated */
OCL_HIDDEN int64_t ocl_sat_i64(double p);
OCL_HIDDEN em_status ocl_slot_ls(ocl_dev *d, ocl_kslot *s, size_t want, const char *kname);
OCL_HIDDEN em_status ocl_set_arg(ocl_dev *d, cl_kernel k, cl_uint i, size_t size,
                                 const void *v);
OCL_HIDDEN em_status ocl_enqueue(ocl_dev *d, cl_kernel k, cl_uint dims, const size_t *global,
                                 const size_t *local);
/* A view's dtype, rank, sizes and reach inside its buffer (f64 only where d->fp64). */
OCL_HIDDEN em_status ocl_check_view(ocl_dev *d, const char *kname, const char *what,
                                    const em_kview *v);
OCL_HIDDEN em_status ocl_mismatch(ocl_dev *d, const char *kname, const char *what,
                                  int32_t got, int32_t want);
OCL_HIDDEN em_status ocl_no_fp64(ocl_dev *d, const char *kname);
/* A kernel missing for a dtype: the fp64 message or "not supported". */
OCL_HIDDEN em_status ocl_no_kernel(ocl_dev *d, const char *kname, int32_t dt);
OCL_HIDDEN em_status ocl_fill_value(ocl_dev *d, const em_kview *out, double p, int64_t ip);

static inline size_t ocl_round_up(size_t n, size_t m)
{
    return (n + m - 1) / m * m;
}

static inline int64_t ocl_ceil_div(int64_t a, int64_t b)
{
    return (a + b - 1) / b;
}

/* Kernels (opencl_kernels.c, opencl_reduce.c, opencl_index.c); `dev` is the ocl_dev. */
#define OCL_KERNEL(name) OCL_HIDDEN em_status ocl_k_##name(void *dev, const em_kargs *a)
OCL_KERNEL(fill); OCL_KERNEL(rng_uniform); OCL_KERNEL(rng_normal); OCL_KERNEL(copy);
OCL_KERNEL(neg); OCL_KERNEL(exp); OCL_KERNEL(log); OCL_KERNEL(sqrt); OCL_KERNEL(abs);
OCL_KERNEL(relu); OCL_KERNEL(tanh); OCL_KERNEL(sigmoid);
OCL_KERNEL(add_scalar); OCL_KERNEL(mul_scalar); OCL_KERNEL(rsub_scalar); OCL_KERNEL(div_scalar);
OCL_KERNEL(rdiv_scalar); OCL_KERNEL(pow_scalar); OCL_KERNEL(clamp);
OCL_KERNEL(add); OCL_KERNEL(sub); OCL_KERNEL(mul); OCL_KERNEL(div);
OCL_KERNEL(maximum); OCL_KERNEL(minimum);
OCL_KERNEL(lt); OCL_KERNEL(le); OCL_KERNEL(gt); OCL_KERNEL(ge); OCL_KERNEL(eq); OCL_KERNEL(ne);
OCL_KERNEL(where); OCL_KERNEL(masked_fill);
OCL_KERNEL(sum);
OCL_KERNEL(relu_backward); OCL_KERNEL(clamp_backward); OCL_KERNEL(pow_backward);
OCL_KERNEL(tanh_backward); OCL_KERNEL(sigmoid_backward);
OCL_KERNEL(log1p); OCL_KERNEL(expm1); OCL_KERNEL(sin); OCL_KERNEL(cos); OCL_KERNEL(erf);
OCL_KERNEL(floor); OCL_KERNEL(ceil); OCL_KERNEL(round); OCL_KERNEL(sign);
OCL_KERNEL(pow); OCL_KERNEL(floor_divide); OCL_KERNEL(remainder);
OCL_KERNEL(prod); OCL_KERNEL(max_dim); OCL_KERNEL(min_dim);
OCL_KERNEL(softmax); OCL_KERNEL(log_softmax);
OCL_KERNEL(index_select); OCL_KERNEL(gather); OCL_KERNEL(scatter_add);
OCL_KERNEL(adam);
OCL_KERNEL(avg_pool2d); OCL_KERNEL(avg_pool2d_grad);
/* ---- ABI 1.4: convolution ---- */
OCL_KERNEL(im2col); OCL_KERNEL(col2im); OCL_KERNEL(max_pool2d);
/* ---- ABI 1.5: max_pool2d backward ---- */
OCL_KERNEL(max_pool2d_grad);
/* ---- ABI 1.7: SGD's step ---- */
OCL_KERNEL(sgd);
#undef OCL_KERNEL

OCL_HIDDEN em_status ocl_gemm(void *dev, const em_gemm_args *g);

/* What each kernel implements (ops->dtypes); device_open creates exactly these kernels
 * (opencl_table.c). */
OCL_HIDDEN extern const em_kernel_dtypes ocl_kernel_dtypes;

/* Asynchrony and synchronize (opencl_async.c). */
OCL_HIDDEN em_status ocl_synchronize(void *dev);
OCL_HIDDEN em_status ocl_host_alloc(void *dev, size_t bytes, void **ptr);
OCL_HIDDEN void ocl_host_free(void *dev, void *ptr);
OCL_HIDDEN em_status ocl_copy_h2d_async(void *dev, void *stream, void *dst, size_t dst_offset,
                                        const void *src, size_t bytes);
OCL_HIDDEN em_status ocl_copy_d2h_async(void *dev, void *stream, void *dst, const void *src,
                                        size_t src_offset, size_t bytes);
OCL_HIDDEN em_status ocl_stream_create(void *dev, void **stream);
OCL_HIDDEN void ocl_stream_destroy(void *dev, void *stream);
OCL_HIDDEN em_status ocl_event_create(void *dev, void **event);
OCL_HIDDEN void ocl_event_destroy(void *dev, void *event);
OCL_HIDDEN em_status ocl_event_record(void *dev, void *stream, void *event);
OCL_HIDDEN em_status ocl_event_wait(void *dev, void *stream, void *event);
OCL_HIDDEN em_status ocl_event_synchronize(void *dev, void *event);
/* Device teardown: waits for and releases what the core left (streams, pinned blocks). */
OCL_HIDDEN void ocl_async_release(ocl_dev *d);

#endif
