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

/* Belt and braces next to -fvisibility=hidden: cross-file symbols must never leak. */
#define OCL_HIDDEN __attribute__((visibility("hidden")))

/* ------------------------------------------------------------------ kernel table */

/* Every op implemented by the elementwise templates of kernels.cl. The names (ocl_op_name)
 * are the <op> part of the kernel names. */
typedef enum ocl_op {
    /* unary, f32/f64 */
    OCL_NEG, OCL_EXP, OCL_LOG, OCL_SQRT, OCL_ABS, OCL_RELU, OCL_TANH, OCL_SIGMOID,
    OCL_ADD_SCALAR, OCL_MUL_SCALAR, OCL_RSUB_SCALAR, OCL_DIV_SCALAR, OCL_RDIV_SCALAR,
    OCL_POW_SCALAR, OCL_CLAMP,
    /* binary, f32/f64 */
    OCL_ADD, OCL_SUB, OCL_MUL, OCL_DIV, OCL_MAXIMUM, OCL_MINIMUM,
    OCL_RELU_BACKWARD, OCL_CLAMP_BACKWARD, OCL_POW_BACKWARD, OCL_TANH_BACKWARD,
    OCL_SIGMOID_BACKWARD,
    /* comparisons, inputs f32/f64/bool, out bool */
    OCL_LT, OCL_LE, OCL_GT, OCL_GE, OCL_EQ, OCL_NE,
    /* the rest, keyed by out dtype (copy also by input dtype) */
    OCL_WHERE, OCL_MASKED_FILL, OCL_FILL, OCL_COPY, OCL_RNG_UNIFORM, OCL_RNG_NORMAL,
    OCL_OP_COUNT
} ocl_op;

enum { OCL_V1D = 0, OCL_VND = 1 };
enum { OCL_SUM_GRP = 0, OCL_SUM_ITEM = 1, OCL_SUM_FIN = 2 };

#define OCL_NDT 3   /* EM_F32, EM_F64, EM_BOOL */

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
    /* kernels: [op][out dtype][in dtype (copy only, else 0)][variant] */
    ocl_kslot ew[OCL_OP_COUNT][OCL_NDT][OCL_NDT][2];
    ocl_kslot sum[3][2];         /* [grp|item|fin][f32|f64] */
    ocl_kslot gemm[2];           /* [f32|f64]: tiled, local memory (GPUs) */
    ocl_kslot gemmr[2];          /* [f32|f64]: register-blocked, no barriers (CPU devices) */
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
OCL_HIDDEN const char *ocl_dtype_name(int32_t dt);
OCL_HIDDEN size_t ocl_dtype_size(int32_t dt);
/* The <op> part of kernel names, "neg" ... "rng_normal". */
OCL_HIDDEN const char *ocl_op_name(int op);
/* Create every kernel of d->prog into the tables (kernels with f64 only where d->fp64). */
OCL_HIDDEN em_status ocl_create_kernels(ocl_dev *d);
OCL_HIDDEN void ocl_release_kernels(ocl_dev *d);

/* Kernels (opencl_kernels.c); `dev` is the ocl_dev. */
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
#undef OCL_KERNEL

OCL_HIDDEN em_status ocl_gemm(void *dev, const em_gemm_args *g);

/* What each kernel implements (ops->dtypes); device_open creates exactly these kernels. */
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
