/* backends/opencl/opencl_kernels.c — the OpenCL backend's kernel entry points: argument
 * checks, the choice of kernel (op, dtype, 1-D fast path or N-d), kernel arguments and the
 * launch on the device's in-order queue. Nothing here waits for the device or touches
 * tensor data on the host: results stay on the device until the core copies them out.
 *
 * Elementwise launches use one work-item per element in work-groups of a fixed size
 * (PoCL compiles a kernel once per work-group size, so a size that varied with the shape
 * would mean a recompile per shape). sum plans a reduction on the host (which dims are
 * reduced, how to cut them into chunks) and runs one or two kernels; gemm is one tiled
 * kernel for every shape and transpose. */
#include "opencl.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ names and tables */

static const char *const op_names[OCL_OP_COUNT] = {
    [OCL_NEG] = "neg", [OCL_EXP] = "exp", [OCL_LOG] = "log", [OCL_SQRT] = "sqrt",
    [OCL_ABS] = "abs", [OCL_RELU] = "relu", [OCL_TANH] = "tanh", [OCL_SIGMOID] = "sigmoid",
    [OCL_ADD_SCALAR] = "add_scalar", [OCL_MUL_SCALAR] = "mul_scalar",
    [OCL_RSUB_SCALAR] = "rsub_scalar", [OCL_DIV_SCALAR] = "div_scalar",
    [OCL_RDIV_SCALAR] = "rdiv_scalar", [OCL_POW_SCALAR] = "pow_scalar", [OCL_CLAMP] = "clamp",
    [OCL_ADD] = "add", [OCL_SUB] = "sub", [OCL_MUL] = "mul", [OCL_DIV] = "div",
    [OCL_MAXIMUM] = "maximum", [OCL_MINIMUM] = "minimum",
    [OCL_RELU_BACKWARD] = "relu_backward", [OCL_CLAMP_BACKWARD] = "clamp_backward",
    [OCL_POW_BACKWARD] = "pow_backward", [OCL_TANH_BACKWARD] = "tanh_backward",
    [OCL_SIGMOID_BACKWARD] = "sigmoid_backward",
    [OCL_LT] = "lt", [OCL_LE] = "le", [OCL_GT] = "gt", [OCL_GE] = "ge", [OCL_EQ] = "eq",
    [OCL_NE] = "ne",
    [OCL_WHERE] = "where", [OCL_MASKED_FILL] = "masked_fill", [OCL_FILL] = "fill",
    [OCL_COPY] = "copy", [OCL_RNG_UNIFORM] = "rng_uniform", [OCL_RNG_NORMAL] = "rng_normal",
};

const char *ocl_op_name(int op)
{
    return op >= 0 && op < OCL_OP_COUNT ? op_names[op] : "?";
}

static const char *const variant_names[2] = {"1d", "nd"};
static const char *const sum_names[3] = {"grp", "item", "fin"};

/* The dtypes kernels.cl instantiates, declared to the core. Exactly what ABI 1.0 promised:
 * no kernel takes more, and f64 is removed by the core itself on devices without
 * cl_khr_fp64 (device_props' fp64), so these masks do not depend on the device. */
#define FL EM_DTYPES_FLOAT
#define FLB (EM_DTYPES_FLOAT | EM_DTYPE_BIT(EM_BOOL))
const em_kernel_dtypes ocl_kernel_dtypes = {
    .struct_size = sizeof(em_kernel_dtypes),
    .gemm = FL,
    .fill = FLB, .rng_uniform = FL, .rng_normal = FL, .copy = FLB,
    .neg = FL, .exp = FL, .log = FL, .sqrt = FL, .abs = FL, .relu = FL, .tanh = FL,
    .sigmoid = FL,
    .add_scalar = FL, .mul_scalar = FL, .rsub_scalar = FL, .div_scalar = FL,
    .rdiv_scalar = FL, .pow_scalar = FL, .clamp = FL,
    .add = FL, .sub = FL, .mul = FL, .div = FL, .maximum = FL, .minimum = FL,
    .lt = FLB, .le = FLB, .gt = FLB, .ge = FLB, .eq = FLB, .ne = FLB,
    .where = FLB, .masked_fill = FLB,
    .sum = FL,
    .relu_backward = FL, .clamp_backward = FL, .pow_backward = FL, .tanh_backward = FL,
    .sigmoid_backward = FL,
};
#undef FL
#undef FLB

/* Each op's mask in ocl_kernel_dtypes: device_open creates the kernels of the declared
 * dtypes and no others, so a declaration kernels.cl cannot honour fails at once (no such
 * kernel) instead of on the first call. */
static const size_t op_mask[OCL_OP_COUNT] = {
#define M(OP, field) [OP] = offsetof(em_kernel_dtypes, field)
    M(OCL_NEG, neg), M(OCL_EXP, exp), M(OCL_LOG, log), M(OCL_SQRT, sqrt), M(OCL_ABS, abs),
    M(OCL_RELU, relu), M(OCL_TANH, tanh), M(OCL_SIGMOID, sigmoid),
    M(OCL_ADD_SCALAR, add_scalar), M(OCL_MUL_SCALAR, mul_scalar),
    M(OCL_RSUB_SCALAR, rsub_scalar), M(OCL_DIV_SCALAR, div_scalar),
    M(OCL_RDIV_SCALAR, rdiv_scalar), M(OCL_POW_SCALAR, pow_scalar), M(OCL_CLAMP, clamp),
    M(OCL_ADD, add), M(OCL_SUB, sub), M(OCL_MUL, mul), M(OCL_DIV, div),
    M(OCL_MAXIMUM, maximum), M(OCL_MINIMUM, minimum),
    M(OCL_RELU_BACKWARD, relu_backward), M(OCL_CLAMP_BACKWARD, clamp_backward),
    M(OCL_POW_BACKWARD, pow_backward), M(OCL_TANH_BACKWARD, tanh_backward),
    M(OCL_SIGMOID_BACKWARD, sigmoid_backward),
    M(OCL_LT, lt), M(OCL_LE, le), M(OCL_GT, gt), M(OCL_GE, ge), M(OCL_EQ, eq), M(OCL_NE, ne),
    M(OCL_WHERE, where), M(OCL_MASKED_FILL, masked_fill), M(OCL_FILL, fill), M(OCL_COPY, copy),
    M(OCL_RNG_UNIFORM, rng_uniform), M(OCL_RNG_NORMAL, rng_normal),
#undef M
};

/* Bit per em_dtype. For comparisons the dtype is the inputs'; for copy both sides'; for
 * everything else the output's. */
static em_dtype_mask op_dtypes(int op)
{
    em_dtype_mask m;
    memcpy(&m, (const char *)&ocl_kernel_dtypes + op_mask[op], sizeof m);
    return m;
}

static void kernel_name(char *buf, size_t n, int op, int dt, int dt_in, int v)
{
    if (op == OCL_COPY)
        snprintf(buf, n, "em_copy_%s_%s_%s", ocl_dtype_name(dt), ocl_dtype_name(dt_in),
                 variant_names[v]);
    else
        snprintf(buf, n, "em_%s_%s_%s", op_names[op], ocl_dtype_name(dt), variant_names[v]);
}

static em_status create_one(ocl_dev *d, const char *name, ocl_kslot *slot)
{
    cl_int err;
    slot->k = clCreateKernel(d->prog, name, &err);
    if (!slot->k || err != CL_SUCCESS) {
        char e[48];
        slot->k = NULL;
        return OCL_ERR(d, EM_ERR_BACKEND, "clCreateKernel(%s): %s", name,
                       ocl_error_name(err, e, sizeof e));
    }
    slot->ls = 0;
    return EM_OK;
}

em_status ocl_create_kernels(ocl_dev *d)
{
    char name[96];
    em_status st;
    for (int op = 0; op < OCL_OP_COUNT; op++) {
        if (!op_mask[op])   /* an op added to ocl_op without its line in op_mask */
            return OCL_ERR(d, EM_ERR_INTERNAL, "opencl backend: no dtype mask for op %s",
                           op_names[op]);
        unsigned dts = op_dtypes(op);
        for (int dt = 0; dt < OCL_NDT; dt++) {
            if (!(dts >> dt & 1u) || (dt == EM_F64 && !d->fp64))
                continue;
            for (int di = 0; di < (op == OCL_COPY ? OCL_NDT : 1); di++) {
                if (op == OCL_COPY && (!(dts >> di & 1u) || (di == EM_F64 && !d->fp64)))
                    continue;
                for (int v = 0; v < 2; v++) {
                    kernel_name(name, sizeof name, op, dt, di, v);
                    if ((st = create_one(d, name, &d->ew[op][dt][di][v])) != EM_OK)
                        return st;
                }
            }
        }
    }
    for (int dt = 0; dt < 2; dt++) {
        if (dt == EM_F64 && !d->fp64)
            continue;
        for (int s = 0; s < 3; s++) {
            snprintf(name, sizeof name, "em_sum_%s_%s", sum_names[s], ocl_dtype_name(dt));
            if ((st = create_one(d, name, &d->sum[s][dt])) != EM_OK)
                return st;
        }
        snprintf(name, sizeof name, "em_gemm_%s", ocl_dtype_name(dt));
        if ((st = create_one(d, name, &d->gemm[dt])) != EM_OK)
            return st;
        snprintf(name, sizeof name, "em_gemmr_%s", ocl_dtype_name(dt));
        if ((st = create_one(d, name, &d->gemmr[dt])) != EM_OK)
            return st;
    }
    return EM_OK;
}

static void release_slot(ocl_kslot *s)
{
    if (s->k)
        clReleaseKernel(s->k);
    s->k = NULL;
}

void ocl_release_kernels(ocl_dev *d)
{
    for (int op = 0; op < OCL_OP_COUNT; op++)
        for (int dt = 0; dt < OCL_NDT; dt++)
            for (int di = 0; di < OCL_NDT; di++)
                for (int v = 0; v < 2; v++)
                    release_slot(&d->ew[op][dt][di][v]);
    for (int s = 0; s < 3; s++)
        for (int dt = 0; dt < 2; dt++)
            release_slot(&d->sum[s][dt]);
    for (int dt = 0; dt < 2; dt++) {
        release_slot(&d->gemm[dt]);
        release_slot(&d->gemmr[dt]);
    }
}

/* ------------------------------------------------------------------ launch helpers */

/* The work-group size of a kernel: the device's choice for elementwise work, capped by
 * what this kernel can run (queried once, on first use). */
static em_status slot_ls(ocl_dev *d, ocl_kslot *s, size_t want, const char *kname)
{
    if (s->ls)
        return EM_OK;
    size_t kwg = 0;
    cl_int err = clGetKernelWorkGroupInfo(s->k, d->device, CL_KERNEL_WORK_GROUP_SIZE,
                                          sizeof kwg, &kwg, NULL);
    if (err != CL_SUCCESS)
        return ocl_fail(d, kname, err);
    size_t ls = want;
    while (ls > 1 && ls > kwg)
        ls /= 2;
    s->ls = ls;
    return EM_OK;
}

static em_status set_arg(ocl_dev *d, cl_kernel k, cl_uint i, size_t size, const void *v)
{
    cl_int err = clSetKernelArg(k, i, size, v);
    if (err != CL_SUCCESS) {
        char e[48], kn[96] = "?";
        clGetKernelInfo(k, CL_KERNEL_FUNCTION_NAME, sizeof kn, kn, NULL);
        kn[sizeof kn - 1] = 0;
        return OCL_ERR(d, EM_ERR_BACKEND, "clSetKernelArg(%s, arg %u): %s", kn, (unsigned)i,
                       ocl_error_name(err, e, sizeof e));
    }
    return EM_OK;
}

static em_status enqueue(ocl_dev *d, cl_kernel k, cl_uint dims, const size_t *global,
                         const size_t *local)
{
    cl_int err = clEnqueueNDRangeKernel(d->q, k, dims, NULL, global, local, 0, NULL, NULL);
    if (err != CL_SUCCESS) {
        char e[48], kn[96] = "?";
        clGetKernelInfo(k, CL_KERNEL_FUNCTION_NAME, sizeof kn, kn, NULL);
        kn[sizeof kn - 1] = 0;
        em_status st = err == CL_OUT_OF_RESOURCES || err == CL_OUT_OF_HOST_MEMORY ||
                               err == CL_MEM_OBJECT_ALLOCATION_FAILURE
                           ? EM_ERR_OOM
                           : EM_ERR_BACKEND;
        return OCL_ERR(d, st, "clEnqueueNDRangeKernel(%s): %s", kn,
                       ocl_error_name(err, e, sizeof e));
    }
    return EM_OK;
}

static size_t round_up(size_t n, size_t m)
{
    return (n + m - 1) / m * m;
}

static int valid_dtype(int32_t dt)
{
    return dt == EM_F32 || dt == EM_F64 || dt == EM_BOOL;
}

static em_status no_fp64(ocl_dev *d, const char *kname)
{
    return OCL_ERR(d, EM_ERR_UNSUPPORTED,
                   "%s: f64 needs the cl_khr_fp64 extension, which OpenCL device '%s' does not "
                   "have (use f32 tensors on this device, or another device or backend)",
                   kname, d->name);
}

/* The elements a view touches must lie inside its buffer: a bad view would otherwise
 * write past a device allocation (on PoCL, into host memory). */
static em_status check_bounds(ocl_dev *d, const char *kname, const char *what,
                              const em_kview *v)
{
    int64_t lo = v->offset, hi = v->offset;
    for (int k = 0; k < v->ndim; k++) {
        if (v->shape[k] == 0)
            return EM_OK;
        int64_t ext = (v->shape[k] - 1) * v->strides[k];
        if (ext < 0)
            lo += ext;
        else
            hi += ext;
    }
    size_t size = 0;
    cl_int err = clGetMemObjectInfo((cl_mem)v->buf, CL_MEM_SIZE, sizeof size, &size, NULL);
    if (err != CL_SUCCESS)
        return ocl_fail(d, "clGetMemObjectInfo(CL_MEM_SIZE)", err);
    size_t es = ocl_dtype_size(v->dtype);
    if (lo < 0 || (uint64_t)(hi + 1) * es > size)
        return OCL_ERR(d, EM_ERR_INVALID,
                       "%s: %s reaches elements %lld..%lld of a buffer of %zu bytes", kname,
                       what, (long long)lo, (long long)hi, size);
    return EM_OK;
}

static em_status check_view(ocl_dev *d, const char *kname, const char *what,
                            const em_kview *v)
{
    if (!v || !v->buf)
        return OCL_ERR(d, EM_ERR_INVALID, "%s: %s view is missing", kname, what);
    if (!valid_dtype(v->dtype))
        return OCL_ERR(d, EM_ERR_INVALID, "%s: %s has invalid dtype %d", kname, what,
                       (int)v->dtype);
    if (v->ndim < 1 || v->ndim > EM_MAX_DIMS)
        return OCL_ERR(d, EM_ERR_INVALID, "%s: %s has %d dims (1..%d supported)", kname, what,
                       (int)v->ndim, EM_MAX_DIMS);
    for (int k = 0; k < v->ndim; k++)
        if (v->shape[k] < 0)
            return OCL_ERR(d, EM_ERR_INVALID, "%s: %s has negative size %lld in dim %d", kname,
                           what, (long long)v->shape[k], k);
    if (v->dtype == EM_F64 && !d->fp64)
        return no_fp64(d, kname);
    return check_bounds(d, kname, what, v);
}

static em_status mismatch(ocl_dev *d, const char *kname, const char *what, int32_t got,
                          int32_t want)
{
    return OCL_ERR(d, EM_ERR_DTYPE, "%s: %s has dtype %s, expected %s", kname, what,
                   ocl_dtype_name(got), ocl_dtype_name(want));
}

/* One scalar kernel argument. */
typedef struct ocl_arg {
    size_t size;
    union {
        cl_float f;
        cl_double d;
        cl_uchar b;
        cl_ulong u;
    } v;
} ocl_arg;

/* p as the kernel's scalar type for dtype dt (bool: p != 0, as fill's contract says). */
static ocl_arg typed_arg(int32_t dt, double p)
{
    ocl_arg a;
    memset(&a, 0, sizeof a);
    if (dt == EM_F32) {
        a.size = sizeof(cl_float);
        a.v.f = (cl_float)p;
    } else if (dt == EM_F64) {
        a.size = sizeof(cl_double);
        a.v.d = p;
    } else {
        a.size = sizeof(cl_uchar);
        a.v.b = p != 0;
    }
    return a;
}

#define SAME_OUT 1u
#define SAME_IN0 2u
#define SAME_IN1 4u
#define SAME_IN2 8u

static const char *const view_names[4] = {"out", "in[0]", "in[1]", "in[2]"};

/* Check the views of an elementwise kernel and launch ew[op][key][key_in][variant]:
 * `nin` inputs, operands flagged in `same` must have dtype `key`, then the scalar
 * arguments. */
static em_status ew_launch(ocl_dev *d, int op, const em_kargs *ka, int nin, int32_t key,
                           int32_t key_in, unsigned same, const ocl_arg *args, int nargs)
{
    const char *kname = op_names[op];
    const em_kview *v[4] = {ka->out, ka->in[0], ka->in[1], ka->in[2]};
    em_status st;
    for (int k = 0; k <= nin; k++)
        if ((st = check_view(d, kname, view_names[k], v[k])) != EM_OK)
            return st;
    for (int k = 0; k <= nin; k++)
        if ((same >> k & 1u) && v[k]->dtype != key)
            return mismatch(d, kname, view_names[k], v[k]->dtype, key);
    const em_kview *o = v[0];
    int64_t n = 1;
    for (int k = 1; k <= nin; k++) {
        if (v[k]->ndim != o->ndim)
            return OCL_ERR(d, EM_ERR_INVALID, "%s: %s has %d dims but out has %d", kname,
                           view_names[k], (int)v[k]->ndim, (int)o->ndim);
        for (int j = 0; j < o->ndim; j++)
            if (v[k]->shape[j] != o->shape[j])
                return OCL_ERR(d, EM_ERR_INVALID,
                               "%s: %s has size %lld in dim %d but out has %lld", kname,
                               view_names[k], (long long)v[k]->shape[j], j,
                               (long long)o->shape[j]);
    }
    for (int j = 0; j < o->ndim; j++)
        n *= o->shape[j];
    if (n == 0)
        return EM_OK;
    int variant = o->ndim == 1 ? OCL_V1D : OCL_VND;
    ocl_kslot *s = &d->ew[op][key][key_in][variant];
    if (!s->k) {
        if (key == EM_F64 || key_in == EM_F64)
            return no_fp64(d, kname);
        return OCL_ERR(d, EM_ERR_UNSUPPORTED, "%s: dtype %s%s%s is not supported by the "
                       "opencl backend", kname, ocl_dtype_name(key),
                       op == OCL_COPY ? " from " : "", op == OCL_COPY ? ocl_dtype_name(key_in) : "");
    }
    char kn[96];
    kernel_name(kn, sizeof kn, op, key, key_in, variant);
    if ((st = slot_ls(d, s, d->ls, kn)) != EM_OK)
        return st;
    cl_kernel k = s->k;
    cl_uint ai = 0;
    cl_long nl = n;
    if ((st = set_arg(d, k, ai++, sizeof nl, &nl)) != EM_OK)
        return st;
    if (variant == OCL_V1D) {
        for (int j = 0; j <= nin; j++) {
            cl_mem m = (cl_mem)v[j]->buf;
            cl_long off = v[j]->offset, stride = v[j]->strides[0];
            if ((st = set_arg(d, k, ai++, sizeof m, &m)) != EM_OK ||
                (st = set_arg(d, k, ai++, sizeof off, &off)) != EM_OK ||
                (st = set_arg(d, k, ai++, sizeof stride, &stride)) != EM_OK)
                return st;
        }
    } else {
        ocl_geom g;
        memset(&g, 0, sizeof g);
        g.ndim = o->ndim;
        for (int j = 0; j < o->ndim; j++)
            g.shape[j] = o->shape[j];
        for (int q = 0; q <= nin; q++) {
            g.off[q] = v[q]->offset;
            for (int j = 0; j < o->ndim; j++)
                g.st[q][j] = v[q]->strides[j];
        }
        if ((st = set_arg(d, k, ai++, sizeof g, &g)) != EM_OK)
            return st;
        for (int j = 0; j <= nin; j++) {
            cl_mem m = (cl_mem)v[j]->buf;
            if ((st = set_arg(d, k, ai++, sizeof m, &m)) != EM_OK)
                return st;
        }
    }
    for (int j = 0; j < nargs; j++)
        if ((st = set_arg(d, k, ai++, args[j].size, &args[j].v)) != EM_OK)
            return st;
    size_t local = s->ls, global = round_up((size_t)n, local);
    return enqueue(d, k, 1, &global, &local);
}

static int32_t out_dtype(const em_kargs *ka)
{
    return ka->out && valid_dtype(ka->out->dtype) ? ka->out->dtype : EM_F32;
}

/* ------------------------------------------------------------------ elementwise kernels */

static em_status unary(void *dev, const em_kargs *ka, int op)
{
    ocl_dev *d = dev;
    int32_t dt = out_dtype(ka);
    if (dt == EM_BOOL)
        return OCL_ERR(d, EM_ERR_UNSUPPORTED, "%s: dtype bool is not supported", op_names[op]);
    ocl_arg p[2] = {typed_arg(dt, ka->p[0]), typed_arg(dt, ka->p[1])};
    return ew_launch(d, op, ka, 1, dt, 0, SAME_OUT | SAME_IN0, p, 2);
}

static em_status binary(void *dev, const em_kargs *ka, int op)
{
    ocl_dev *d = dev;
    int32_t dt = out_dtype(ka);
    if (dt == EM_BOOL)
        return OCL_ERR(d, EM_ERR_UNSUPPORTED, "%s: dtype bool is not supported", op_names[op]);
    ocl_arg p[2] = {typed_arg(dt, ka->p[0]), typed_arg(dt, ka->p[1])};
    return ew_launch(d, op, ka, 2, dt, 0, SAME_OUT | SAME_IN0 | SAME_IN1, p, 2);
}

static em_status compare(void *dev, const em_kargs *ka, int op)
{
    ocl_dev *d = dev;
    if (ka->out && ka->out->dtype != EM_BOOL)
        return mismatch(d, op_names[op], "out", ka->out->dtype, EM_BOOL);
    int32_t dt = ka->in[0] && valid_dtype(ka->in[0]->dtype) ? ka->in[0]->dtype : EM_F32;
    ocl_arg p[2] = {typed_arg(dt, 0), typed_arg(dt, 0)};
    return ew_launch(d, op, ka, 2, dt, 0, SAME_IN0 | SAME_IN1, p, 2);
}

#define UNARY_KERNEL(name, OP)                                                            \
    em_status ocl_k_##name(void *dev, const em_kargs *a) { return unary(dev, a, OP); }
#define BINARY_KERNEL(name, OP)                                                           \
    em_status ocl_k_##name(void *dev, const em_kargs *a) { return binary(dev, a, OP); }
#define COMPARE_KERNEL(name, OP)                                                          \
    em_status ocl_k_##name(void *dev, const em_kargs *a) { return compare(dev, a, OP); }

UNARY_KERNEL(neg, OCL_NEG)
UNARY_KERNEL(exp, OCL_EXP)
UNARY_KERNEL(log, OCL_LOG)
UNARY_KERNEL(sqrt, OCL_SQRT)
UNARY_KERNEL(abs, OCL_ABS)
UNARY_KERNEL(relu, OCL_RELU)
UNARY_KERNEL(tanh, OCL_TANH)
UNARY_KERNEL(sigmoid, OCL_SIGMOID)
UNARY_KERNEL(add_scalar, OCL_ADD_SCALAR)
UNARY_KERNEL(mul_scalar, OCL_MUL_SCALAR)
UNARY_KERNEL(rsub_scalar, OCL_RSUB_SCALAR)
UNARY_KERNEL(div_scalar, OCL_DIV_SCALAR)
UNARY_KERNEL(rdiv_scalar, OCL_RDIV_SCALAR)
UNARY_KERNEL(pow_scalar, OCL_POW_SCALAR)
UNARY_KERNEL(clamp, OCL_CLAMP)
BINARY_KERNEL(add, OCL_ADD)
BINARY_KERNEL(sub, OCL_SUB)
BINARY_KERNEL(mul, OCL_MUL)
BINARY_KERNEL(div, OCL_DIV)
BINARY_KERNEL(maximum, OCL_MAXIMUM)
BINARY_KERNEL(minimum, OCL_MINIMUM)
BINARY_KERNEL(relu_backward, OCL_RELU_BACKWARD)
BINARY_KERNEL(clamp_backward, OCL_CLAMP_BACKWARD)
BINARY_KERNEL(pow_backward, OCL_POW_BACKWARD)
BINARY_KERNEL(tanh_backward, OCL_TANH_BACKWARD)
BINARY_KERNEL(sigmoid_backward, OCL_SIGMOID_BACKWARD)
COMPARE_KERNEL(lt, OCL_LT)
COMPARE_KERNEL(le, OCL_LE)
COMPARE_KERNEL(gt, OCL_GT)
COMPARE_KERNEL(ge, OCL_GE)
COMPARE_KERNEL(eq, OCL_EQ)
COMPARE_KERNEL(ne, OCL_NE)

em_status ocl_k_where(void *dev, const em_kargs *ka)
{
    ocl_dev *d = dev;
    if (ka->in[0] && ka->in[0]->dtype != EM_BOOL)
        return mismatch(d, "where", "in[0] (condition)", ka->in[0]->dtype, EM_BOOL);
    return ew_launch(d, OCL_WHERE, ka, 3, out_dtype(ka), 0, SAME_OUT | SAME_IN1 | SAME_IN2,
                     NULL, 0);
}

em_status ocl_k_masked_fill(void *dev, const em_kargs *ka)
{
    ocl_dev *d = dev;
    if (ka->in[1] && ka->in[1]->dtype != EM_BOOL)
        return mismatch(d, "masked_fill", "in[1] (mask)", ka->in[1]->dtype, EM_BOOL);
    int32_t dt = out_dtype(ka);
    ocl_arg p = typed_arg(dt, ka->p[0]);
    return ew_launch(d, OCL_MASKED_FILL, ka, 2, dt, 0, SAME_OUT | SAME_IN0, &p, 1);
}

em_status ocl_k_fill(void *dev, const em_kargs *ka)
{
    int32_t dt = out_dtype(ka);
    ocl_arg p = typed_arg(dt, ka->p[0]);
    return ew_launch(dev, OCL_FILL, ka, 0, dt, 0, SAME_OUT, &p, 1);
}

em_status ocl_k_copy(void *dev, const em_kargs *ka)
{
    ocl_dev *d = dev;
    if (!ka->out || !ka->in[0])
        return OCL_ERR(d, EM_ERR_INVALID, "copy: a view is missing");
    int32_t to = ka->out->dtype, ti = ka->in[0]->dtype;
    if (!valid_dtype(to) || !valid_dtype(ti))
        return OCL_ERR(d, EM_ERR_UNSUPPORTED, "copy: invalid dtype %d -> %d", (int)ti, (int)to);
    return ew_launch(d, OCL_COPY, ka, 1, to, ti, SAME_OUT, NULL, 0);
}

/* rng: (seed, counter) then the affine map's (a, b) in double where the device has it
 * (the spec computes the map in double), else in float. */
static em_status rng(void *dev, const em_kargs *ka, int op, double a, double b)
{
    ocl_dev *d = dev;
    int32_t dt = out_dtype(ka);
    if (dt == EM_BOOL)
        return OCL_ERR(d, EM_ERR_UNSUPPORTED, "%s: dtype bool is not supported", op_names[op]);
    ocl_arg p[4];
    memset(p, 0, sizeof p);
    p[0].size = p[1].size = sizeof(cl_ulong);
    p[0].v.u = ka->u[0];
    p[1].v.u = ka->u[1];
    p[2] = typed_arg(d->fp64 ? EM_F64 : EM_F32, a);
    p[3] = typed_arg(d->fp64 ? EM_F64 : EM_F32, b);
    return ew_launch(d, op, ka, 0, dt, 0, SAME_OUT, p, 4);
}

em_status ocl_k_rng_uniform(void *dev, const em_kargs *ka)
{
    return rng(dev, ka, OCL_RNG_UNIFORM, ka->p[0], ka->p[1] - ka->p[0]);
}

em_status ocl_k_rng_normal(void *dev, const em_kargs *ka)
{
    return rng(dev, ka, OCL_RNG_NORMAL, ka->p[0], ka->p[1]);
}

/* ------------------------------------------------------------------ sum */

static em_status scratch_get(ocl_dev *d, size_t bytes, cl_mem *out)
{
    if (d->scratch && d->scratch_bytes >= bytes) {
        *out = d->scratch;
        return EM_OK;
    }
    /* releasing while earlier kernels still use it is fine: OpenCL keeps the object alive
     * until they complete */
    if (d->scratch)
        clReleaseMemObject(d->scratch);
    d->scratch = NULL;
    d->scratch_bytes = 0;
    size_t want = bytes < 65536 ? 65536 : bytes;
    cl_int err;
    cl_mem m = clCreateBuffer(d->ctx, CL_MEM_READ_WRITE, want, NULL, &err);
    if (!m || err != CL_SUCCESS) {
        char e[48];
        return OCL_ERR(d, EM_ERR_OOM, "sum: cannot allocate %zu bytes of partial sums "
                       "(clCreateBuffer: %s)", want, ocl_error_name(err, e, sizeof e));
    }
    d->scratch = m;
    d->scratch_bytes = want;
    *out = m;
    return EM_OK;
}

static int64_t ceil_div(int64_t a, int64_t b)
{
    return (a + b - 1) / b;
}

/* sum plans the reduction like the cpu backend: size-1 dims dropped, dims split into kept
 * (outputs) and reduced; the innermost input dim (smallest stride) decides the kernel.
 *  - it is reduced and the reduction is long: "grp", a work-group per output, reading
 *    contiguous runs together (reduce-all, reduce over the last dim);
 *  - otherwise "item", a work-item per output, neighbours reading neighbours (reduce over
 *    leading dims, or many short reductions).
 * Long reductions are cut into chunks so every compute unit has work; the chunks' partial
 * sums (in the accumulation type) go to scratch and a "fin" kernel adds them per output.
 * The cut depends only on the shapes and the device, never on timing: the same call gives
 * the same bits every time. */
em_status ocl_k_sum(void *dev, const em_kargs *ka)
{
    ocl_dev *d = dev;
    const em_kview *in = ka->in[0], *out = ka->out;
    em_status st;
    if ((st = check_view(d, "sum", "out", out)) != EM_OK ||
        (st = check_view(d, "sum", "in[0]", in)) != EM_OK)
        return st;
    if (out->dtype != EM_F32 && out->dtype != EM_F64)
        return OCL_ERR(d, EM_ERR_UNSUPPORTED, "sum: dtype %s is not supported",
                       ocl_dtype_name(out->dtype));
    if (in->dtype != out->dtype)
        return mismatch(d, "sum", "in[0]", in->dtype, out->dtype);
    if (in->ndim != out->ndim)
        return OCL_ERR(d, EM_ERR_INVALID, "sum: in[0] has %d dims but out has %d",
                       (int)in->ndim, (int)out->ndim);
    int64_t in_numel = 1, out_numel = 1;
    for (int k = 0; k < in->ndim; k++) {
        if (out->shape[k] != in->shape[k] && out->shape[k] != 1)
            return OCL_ERR(d, EM_ERR_INVALID, "sum: out has size %lld in dim %d, expected 1 or "
                           "%lld", (long long)out->shape[k], k, (long long)in->shape[k]);
        in_numel *= in->shape[k];
        out_numel *= out->shape[k];
    }
    if (out_numel == 0)
        return EM_OK;
    if (in_numel == 0) {   /* an empty sum is 0 */
        em_kargs fk;
        memset(&fk, 0, sizeof fk);
        fk.struct_size = sizeof fk;
        fk.out = out;
        return ocl_k_fill(dev, &fk);
    }
    const int dt = out->dtype;

    ocl_rgeom g;
    memset(&g, 0, sizeof g);
    g.ioff = in->offset;
    g.ooff = out->offset;
    /* the innermost dim: smallest non-zero input stride (a broadcast dim has no
     * locality, rank it last) */
    int inner = -1;
    uint64_t best = 0;
    for (int k = 0; k < in->ndim; k++) {
        if (in->shape[k] == 1)
            continue;
        int64_t s = in->strides[k];
        uint64_t a = s == 0 ? UINT64_MAX : (uint64_t)(s < 0 ? -s : s);
        if (inner < 0 || a <= best) {
            inner = k;
            best = a;
        }
    }
    /* kept and reduced dims in row-major order, the innermost one last in its class */
    g.M = g.L = 1;
    for (int pass = 0; pass < 2; pass++) {
        for (int k = 0; k < in->ndim; k++) {
            if (in->shape[k] == 1 || (pass == 0) == (k == inner))
                continue;
            if (out->shape[k] == 1) {
                g.rs[g.nr] = in->shape[k];
                g.rist[g.nr++] = in->strides[k];
                g.L *= in->shape[k];
            } else {
                g.ks[g.nk] = in->shape[k];
                g.kist[g.nk] = in->strides[k];
                g.kost[g.nk++] = out->strides[k];
                g.M *= in->shape[k];
            }
        }
    }
    if (g.nr == 0) {   /* nothing reduced: a scaled copy, a reduction of length 1 */
        g.rs[0] = 1;
        g.rist[0] = 0;
        g.nr = 1;
    }
    if (g.nk == 0) {
        g.ks[0] = 1;
        g.kist[0] = g.kost[0] = 0;
        g.nk = 1;
    }
    const int inner_reduced = inner >= 0 && out->shape[inner] == 1;
    const int64_t ls = (int64_t)d->rls;
    const int64_t want_groups = d->compute_units * 4 < 8 ? 8 : (int64_t)d->compute_units * 4;
    int mode;
    int64_t nch = 1;
    if (inner_reduced && g.L >= 64) {
        mode = OCL_SUM_GRP;
        if (g.M < want_groups)
            nch = ceil_div(want_groups, g.M);
        int64_t most = ceil_div(g.L, ls * 4);          /* at least 4 elements per item */
        if (nch > most)
            nch = most;
        int64_t least = ceil_div(g.L, ls * 256);       /* at most 256 per item */
        if (nch < least)
            nch = least;
    } else {
        mode = OCL_SUM_ITEM;
        if (g.M < want_groups * ls)
            nch = ceil_div(want_groups * ls, g.M);
        int64_t most = ceil_div(g.L, 32);              /* at least a block per item */
        if (nch > most)
            nch = most;
        int64_t least = ceil_div(g.L, 4096);           /* bounded sequential runs */
        if (nch < least)
            nch = least;
    }
    if (nch < 1)
        nch = 1;
    g.chunk = ceil_div(g.L, nch);
    g.nch = ceil_div(g.L, g.chunk);

    const int fp = dt == EM_F64 || d->fp64;            /* accumulation in double */
    ocl_arg scale = typed_arg(fp ? EM_F64 : EM_F32, ka->p[0]);
    size_t accsz = fp ? sizeof(cl_double) : sizeof(cl_float);
    cl_mem part = NULL;
    if (g.nch > 1 && (st = scratch_get(d, (size_t)g.M * (size_t)g.nch * accsz, &part)) != EM_OK)
        return st;
    cl_mem xin = (cl_mem)in->buf, xout = (cl_mem)out->buf;
    ocl_kslot *s = &d->sum[mode][dt];
    const char *kn = mode == OCL_SUM_GRP ? "sum (grp)" : "sum (item)";
    cl_kernel k = s->k;
    if ((st = slot_ls(d, s, mode == OCL_SUM_GRP ? d->rls : d->ls, kn)) != EM_OK)
        return st;
    if (mode == OCL_SUM_GRP && s->ls != d->rls)
        return OCL_ERR(d, EM_ERR_BACKEND, "sum: kernel allows work-groups of %zu, it was built "
                       "for %zu", s->ls, d->rls);
    if ((st = set_arg(d, k, 0, sizeof g, &g)) != EM_OK ||
        (st = set_arg(d, k, 1, sizeof xin, &xin)) != EM_OK ||
        (st = set_arg(d, k, 2, sizeof xout, &xout)) != EM_OK ||
        (st = set_arg(d, k, 3, sizeof part, &part)) != EM_OK ||
        (st = set_arg(d, k, 4, scale.size, &scale.v)) != EM_OK)
        return st;
    size_t local = s->ls, global;
    if (mode == OCL_SUM_GRP)
        global = (size_t)(g.M * g.nch) * local;
    else
        global = round_up((size_t)(g.M * g.nch), local);
    if ((st = enqueue(d, k, 1, &global, &local)) != EM_OK)
        return st;
    if (g.nch == 1)
        return EM_OK;
    s = &d->sum[OCL_SUM_FIN][dt];
    k = s->k;
    if ((st = slot_ls(d, s, d->rls, "sum (fin)")) != EM_OK)
        return st;
    if (s->ls != d->rls)
        return OCL_ERR(d, EM_ERR_BACKEND, "sum: kernel allows work-groups of %zu, it was built "
                       "for %zu", s->ls, d->rls);
    if ((st = set_arg(d, k, 0, sizeof g, &g)) != EM_OK ||
        (st = set_arg(d, k, 1, sizeof part, &part)) != EM_OK ||
        (st = set_arg(d, k, 2, sizeof xout, &xout)) != EM_OK ||
        (st = set_arg(d, k, 3, scale.size, &scale.v)) != EM_OK)
        return st;
    local = s->ls;
    global = (size_t)g.M * local;
    return enqueue(d, k, 1, &global, &local);
}

/* ------------------------------------------------------------------ gemm */

em_status ocl_gemm(void *dev, const em_gemm_args *g)
{
    ocl_dev *d = dev;
    if (!g)
        return OCL_ERR(d, EM_ERR_INVALID, "gemm: no arguments");
    if (g->dtype != EM_F32 && g->dtype != EM_F64)
        return OCL_ERR(d, EM_ERR_UNSUPPORTED,
                       "gemm: dtype %s is not supported by the opencl backend (f32, f64 are)",
                       ocl_dtype_name(g->dtype));
    if (g->dtype == EM_F64 && !d->fp64)
        return no_fp64(d, "gemm");
    if (g->m < 0 || g->n < 0 || g->k < 0 || g->batch < 0)
        return OCL_ERR(d, EM_ERR_INVALID, "gemm: negative size (m %lld, n %lld, k %lld, batch %lld)",
                       (long long)g->m, (long long)g->n, (long long)g->k, (long long)g->batch);
    if (g->m == 0 || g->n == 0 || g->batch == 0)
        return EM_OK;
    const int64_t aw = g->trans_a ? g->m : g->k, ah = g->trans_a ? g->k : g->m;
    const int64_t bw = g->trans_b ? g->k : g->n, bh = g->trans_b ? g->n : g->k;
    if (g->k > 0 && ah > 1 && g->lda < aw)
        return OCL_ERR(d, EM_ERR_INVALID, "gemm: lda %lld is less than the row width %lld",
                       (long long)g->lda, (long long)aw);
    if (g->k > 0 && bh > 1 && g->ldb < bw)
        return OCL_ERR(d, EM_ERR_INVALID, "gemm: ldb %lld is less than the row width %lld",
                       (long long)g->ldb, (long long)bw);
    if (g->m > 1 && g->ldc < g->n)
        return OCL_ERR(d, EM_ERR_INVALID, "gemm: ldc %lld is less than the row width %lld",
                       (long long)g->ldc, (long long)g->n);
    if (!g->c || (g->k > 0 && (!g->a || !g->b)))
        return OCL_ERR(d, EM_ERR_INVALID, "gemm: a buffer is missing");
    const int dt = g->dtype;
    em_status st;
    /* every matrix inside its buffer (a bad view would write past a device allocation) */
    const int64_t es = (int64_t)ocl_dtype_size(dt);
    const struct {
        const char *name;
        void *buf;
        int64_t off, rows, cols, ld, bs;
    } mats[3] = {{"A", g->a, g->a_offset, ah, aw, g->lda, g->a_batch_stride},
                 {"B", g->b, g->b_offset, bh, bw, g->ldb, g->b_batch_stride},
                 {"C", g->c, g->c_offset, g->m, g->n, g->ldc, g->c_batch_stride}};
    for (int i = g->k > 0 ? 0 : 2; i < 3; i++) {
        int64_t lo = mats[i].off, hi = mats[i].off + (mats[i].rows - 1) * mats[i].ld + mats[i].cols - 1;
        int64_t ext = (g->batch - 1) * mats[i].bs;
        if (ext < 0)
            lo += ext;
        else
            hi += ext;
        size_t size = 0;
        cl_int err = clGetMemObjectInfo((cl_mem)mats[i].buf, CL_MEM_SIZE, sizeof size, &size, NULL);
        if (err != CL_SUCCESS)
            return ocl_fail(d, "clGetMemObjectInfo(CL_MEM_SIZE)", err);
        if (lo < 0 || (uint64_t)(hi + 1) * (uint64_t)es > size)
            return OCL_ERR(d, EM_ERR_INVALID, "gemm: %s reaches elements %lld..%lld of a buffer "
                           "of %zu bytes", mats[i].name, (long long)lo, (long long)hi, size);
    }
    ocl_kslot *s;
    const size_t ts = (size_t)d->gemm_ts, rt = ts / 4;
    size_t local[3], global[3];
    if (d->gemm_reg) {
        /* a work-item per MR x NR block (6 x 16 f32, 6 x 8 f64), work-groups of LY blocks
         * down a column panel */
        const int64_t nr = dt == EM_F32 ? 16 : 8, mr = 6;
        s = &d->gemmr[dt];
        if ((st = slot_ls(d, s, 16, "gemm")) != EM_OK)
            return st;
        local[0] = 1;
        local[1] = s->ls;
        local[2] = 1;
        global[0] = (size_t)ceil_div(g->n, nr);
        global[1] = round_up((size_t)ceil_div(g->m, mr), s->ls);
        global[2] = (size_t)g->batch;
    } else {
        s = &d->gemm[dt];
        if ((st = slot_ls(d, s, rt * rt, "gemm")) != EM_OK)
            return st;
        if (s->ls != rt * rt)
            return OCL_ERR(d, EM_ERR_BACKEND, "gemm: kernel allows work-groups of %zu, it was "
                           "built for %zu", s->ls, rt * rt);
        local[0] = local[1] = rt;
        local[2] = 1;
        global[0] = (size_t)ceil_div(g->n, (int64_t)ts) * rt;
        global[1] = (size_t)ceil_div(g->m, (int64_t)ts) * rt;
        global[2] = (size_t)g->batch;
    }
    cl_kernel k = s->k;
    /* k == 0: the kernel never reads A or B, but they must be valid arguments */
    cl_mem a = (cl_mem)(g->k > 0 ? g->a : g->c), b = (cl_mem)(g->k > 0 ? g->b : g->c);
    cl_mem c = (cl_mem)g->c;
    cl_long m = g->m, n = g->n, kk = g->k;
    cl_long ao = g->a_offset, lda = g->lda, abs_ = g->a_batch_stride;
    cl_long bo = g->b_offset, ldb = g->ldb, bbs = g->b_batch_stride;
    cl_long co = g->c_offset, ldc = g->ldc, cbs = g->c_batch_stride;
    cl_int ta = g->trans_a != 0, tb = g->trans_b != 0;
    ocl_arg alpha = typed_arg(dt, g->alpha), beta = typed_arg(dt, g->beta);
    cl_uint i = 0;
    if ((st = set_arg(d, k, i++, sizeof m, &m)) != EM_OK ||
        (st = set_arg(d, k, i++, sizeof n, &n)) != EM_OK ||
        (st = set_arg(d, k, i++, sizeof kk, &kk)) != EM_OK ||
        (st = set_arg(d, k, i++, alpha.size, &alpha.v)) != EM_OK ||
        (st = set_arg(d, k, i++, beta.size, &beta.v)) != EM_OK ||
        (st = set_arg(d, k, i++, sizeof a, &a)) != EM_OK ||
        (st = set_arg(d, k, i++, sizeof ao, &ao)) != EM_OK ||
        (st = set_arg(d, k, i++, sizeof lda, &lda)) != EM_OK ||
        (st = set_arg(d, k, i++, sizeof abs_, &abs_)) != EM_OK ||
        (st = set_arg(d, k, i++, sizeof b, &b)) != EM_OK ||
        (st = set_arg(d, k, i++, sizeof bo, &bo)) != EM_OK ||
        (st = set_arg(d, k, i++, sizeof ldb, &ldb)) != EM_OK ||
        (st = set_arg(d, k, i++, sizeof bbs, &bbs)) != EM_OK ||
        (st = set_arg(d, k, i++, sizeof c, &c)) != EM_OK ||
        (st = set_arg(d, k, i++, sizeof co, &co)) != EM_OK ||
        (st = set_arg(d, k, i++, sizeof ldc, &ldc)) != EM_OK ||
        (st = set_arg(d, k, i++, sizeof cbs, &cbs)) != EM_OK ||
        (st = set_arg(d, k, i++, sizeof ta, &ta)) != EM_OK ||
        (st = set_arg(d, k, i++, sizeof tb, &tb)) != EM_OK)
        return st;
    return enqueue(d, k, 3, global, local);
}
