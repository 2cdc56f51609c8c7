/* backends/opencl/opencl_kernels.c — the OpenCL backend's elementwise kernel entry points
 * and gemm, and the launch helpers every kernel file shares: argument checks, the choice
 * of kernel (op, dtype, 1-D fast path or N-d), kernel arguments and the launch on the
 * device's in-order queue. Nothing here waits for the device or touches tensor data on the
 * host: results stay on the device until the core copies them out.
 *
 * Elementwise launches use one work-item per element in work-groups of a fixed size
 * (PoCL compiles a kernel once per work-group size, so a size that varied with the shape
 * would mean a recompile per shape). Integer dtypes take their scalars exactly from ip[]
 * (ABI 1.2). gemm is one tiled kernel for every shape and transpose. Reductions are in
 * opencl_reduce.c, indexing in opencl_index.c. */
#include "opencl.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ launch helpers */

/* The work-group size of a kernel: the device's choice for elementwise work, capped by
 * what this kernel can run (queried once, on first use). */
em_status ocl_slot_ls(ocl_dev *d, ocl_kslot *s, size_t want, const char *kname)
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

em_status ocl_set_arg(ocl_dev *d, cl_kernel k, cl_uint i, size_t size, const void *v)
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

em_status ocl_enqueue(ocl_dev *d, cl_kernel k, cl_uint dims, const size_t *global,
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

static int valid_dtype(int32_t dt)
{
    return dt >= 0 && dt < OCL_NDT;
}

em_status ocl_no_fp64(ocl_dev *d, const char *kname)
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
    size_t es = emk_dtype_size(v->dtype);
    if (lo < 0 || (uint64_t)(hi + 1) * es > size)
        return OCL_ERR(d, EM_ERR_INVALID,
                       "%s: %s reaches elements %lld..%lld of a buffer of %zu bytes", kname,
                       what, (long long)lo, (long long)hi, size);
    return EM_OK;
}

em_status ocl_check_view(ocl_dev *d, const char *kname, const char *what,
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
        return ocl_no_fp64(d, kname);
    return check_bounds(d, kname, what, v);
}

em_status ocl_mismatch(ocl_dev *d, const char *kname, const char *what, int32_t got,
                       int32_t want)
{
    return OCL_ERR(d, EM_ERR_DTYPE, "%s: %s has dtype %s, expected %s", kname, what,
                   emk_dtype_name(got), emk_dtype_name(want));
}

em_status ocl_no_kernel(ocl_dev *d, const char *kname, int32_t dt)
{
    if (dt == EM_F64)
        return ocl_no_fp64(d, kname);
    return OCL_ERR(d, EM_ERR_UNSUPPORTED, "%s: dtype %s is not supported by the opencl backend",
                   kname, emk_dtype_name(dt));
}

int64_t ocl_sat_i64(double p)
{
    if (p != p)
        return 0;
    if (p >= 0x1p63)
        return INT64_MAX;
    if (p < -0x1p63)
        return INT64_MIN;
    return (int64_t)p;
}

/* an exact integer as dtype dt's kernel scalar, wrapped to its width */
static ocl_arg int_arg(int32_t dt, int64_t x)
{
    ocl_arg a;
    memset(&a, 0, sizeof a);
    if (dt == EM_I64) {
        a.size = sizeof(cl_long);
        a.v.l = x;
    } else if (dt == EM_I32) {
        uint32_t w = (uint32_t)(uint64_t)x;
        a.size = sizeof(cl_int);
        memcpy(&a.v.i, &w, sizeof w);
    } else {
        a.size = sizeof(cl_uchar);
        a.v.b = (cl_uchar)(uint64_t)x;
    }
    return a;
}

ocl_arg ocl_typed_arg(int32_t dt, double p)
{
    ocl_arg a;
    memset(&a, 0, sizeof a);
    if (dt == EM_F32) {
        a.size = sizeof(cl_float);
        a.v.f = (cl_float)p;
    } else if (dt == EM_F64) {
        a.size = sizeof(cl_double);
        a.v.d = p;
    } else if (ocl_is_int(dt)) {
        a = int_arg(dt, ocl_sat_i64(p));
    } else {
        a.size = sizeof(cl_uchar);
        a.v.b = p != 0;
    }
    return a;
}

/* the core passed ip[i] (a 1.1+ kargs with n_ip > i) */
static int has_ip(const em_kargs *ka, int i)
{
    return ka->struct_size >= offsetof(em_kargs, fp) && ka->ip && ka->n_ip > (uint32_t)i;
}

ocl_arg ocl_scalar_arg(int32_t dt, const em_kargs *ka, int i)
{
    if (ocl_is_int(dt) && has_ip(ka, i))
        return int_arg(dt, ka->ip[i]);
    return ocl_typed_arg(dt, ka->p[i]);
}

#define SAME_OUT 1u
#define SAME_IN0 2u
#define SAME_IN1 4u
#define SAME_IN2 8u

static const char *const view_names[4] = {"out", "in[0]", "in[1]", "in[2]"};

/* Check the views of an elementwise kernel and launch its kernel for (key, key_in):
 * `nin` inputs, operands flagged in `same` must have dtype `key`, then the scalar
 * arguments. */
static em_status ew_launch(ocl_dev *d, int op, const em_kargs *ka, int nin, int32_t key,
                           int32_t key_in, unsigned same, const ocl_arg *args, int nargs)
{
    const char *kname = ocl_op_name(op);
    const em_kview *v[4] = {ka->out, ka->in[0], ka->in[1], ka->in[2]};
    em_status st;
    for (int k = 0; k <= nin; k++)
        if ((st = ocl_check_view(d, kname, view_names[k], v[k])) != EM_OK)
            return st;
    for (int k = 0; k <= nin; k++)
        if ((same >> k & 1u) && v[k]->dtype != key)
            return ocl_mismatch(d, kname, view_names[k], v[k]->dtype, key);
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
    ocl_kslot *s = ocl_ew_slot(d, op, key, key_in, variant);
    if (!s || !s->k) {
        if (key == EM_F64 || key_in == EM_F64)
            return ocl_no_fp64(d, kname);
        return OCL_ERR(d, EM_ERR_UNSUPPORTED, "%s: dtype %s%s%s is not supported by the "
                       "opencl backend", kname, emk_dtype_name(key),
                       op == OCL_COPY ? " from " : "", op == OCL_COPY ? emk_dtype_name(key_in) : "");
    }
    char kn[96];
    ocl_ew_name(kn, sizeof kn, op, key, key_in, variant);
    if ((st = ocl_slot_ls(d, s, d->ls, kn)) != EM_OK)
        return st;
    cl_kernel k = s->k;
    cl_uint ai = 0;
    cl_long nl = n;
    if ((st = ocl_set_arg(d, k, ai++, sizeof nl, &nl)) != EM_OK)
        return st;
    if (variant == OCL_V1D) {
        for (int j = 0; j <= nin; j++) {
            cl_mem m = (cl_mem)v[j]->buf;
            cl_long off = v[j]->offset, stride = v[j]->strides[0];
            if ((st = ocl_set_arg(d, k, ai++, sizeof m, &m)) != EM_OK ||
                (st = ocl_set_arg(d, k, ai++, sizeof off, &off)) != EM_OK ||
                (st = ocl_set_arg(d, k, ai++, sizeof stride, &stride)) != EM_OK)
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
        if ((st = ocl_set_arg(d, k, ai++, sizeof g, &g)) != EM_OK)
            return st;
        for (int j = 0; j <= nin; j++) {
            cl_mem m = (cl_mem)v[j]->buf;
            if ((st = ocl_set_arg(d, k, ai++, sizeof m, &m)) != EM_OK)
                return st;
        }
    }
    for (int j = 0; j < nargs; j++)
        if ((st = ocl_set_arg(d, k, ai++, args[j].size, &args[j].v)) != EM_OK)
            return st;
    size_t local = s->ls, global = ocl_round_up((size_t)n, local);
    return ocl_enqueue(d, k, 1, &global, &local);
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
        return OCL_ERR(d, EM_ERR_UNSUPPORTED, "%s: dtype bool is not supported", ocl_op_name(op));
    ocl_arg p[2] = {ocl_scalar_arg(dt, ka, 0), ocl_scalar_arg(dt, ka, 1)};
    if (op == OCL_CLAMP && ocl_is_int(dt)) {
        /* the bounds stay 64-bit: one outside a narrower dtype's range must not wrap */
        for (int i = 0; i < 2; i++) {
            p[i].size = sizeof(cl_long);
            p[i].v.l = has_ip(ka, i) ? ka->ip[i] : ocl_sat_i64(ka->p[i]);
        }
    }
    return ew_launch(d, op, ka, 1, dt, 0, SAME_OUT | SAME_IN0, p, 2);
}

static em_status binary(void *dev, const em_kargs *ka, int op)
{
    ocl_dev *d = dev;
    int32_t dt = out_dtype(ka);
    if (dt == EM_BOOL)
        return OCL_ERR(d, EM_ERR_UNSUPPORTED, "%s: dtype bool is not supported", ocl_op_name(op));
    ocl_arg p[2] = {ocl_typed_arg(dt, ka->p[0]), ocl_typed_arg(dt, ka->p[1])};
    return ew_launch(d, op, ka, 2, dt, 0, SAME_OUT | SAME_IN0 | SAME_IN1, p, 2);
}

static em_status compare(void *dev, const em_kargs *ka, int op)
{
    ocl_dev *d = dev;
    if (ka->out && ka->out->dtype != EM_BOOL)
        return ocl_mismatch(d, ocl_op_name(op), "out", ka->out->dtype, EM_BOOL);
    int32_t dt = ka->in[0] && valid_dtype(ka->in[0]->dtype) ? ka->in[0]->dtype : EM_F32;
    ocl_arg p[2] = {ocl_typed_arg(dt, 0), ocl_typed_arg(dt, 0)};
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
UNARY_KERNEL(log1p, OCL_LOG1P)
UNARY_KERNEL(expm1, OCL_EXPM1)
UNARY_KERNEL(sin, OCL_SIN)
UNARY_KERNEL(cos, OCL_COS)
UNARY_KERNEL(erf, OCL_ERF)
UNARY_KERNEL(floor, OCL_FLOOR)
UNARY_KERNEL(ceil, OCL_CEIL)
UNARY_KERNEL(round, OCL_ROUND)
UNARY_KERNEL(sign, OCL_SIGN)
BINARY_KERNEL(pow, OCL_POW)
BINARY_KERNEL(floor_divide, OCL_FLOOR_DIVIDE)
BINARY_KERNEL(remainder, OCL_REMAINDER)
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
        return ocl_mismatch(d, "where", "in[0] (condition)", ka->in[0]->dtype, EM_BOOL);
    return ew_launch(d, OCL_WHERE, ka, 3, out_dtype(ka), 0, SAME_OUT | SAME_IN1 | SAME_IN2,
                     NULL, 0);
}

em_status ocl_k_masked_fill(void *dev, const em_kargs *ka)
{
    ocl_dev *d = dev;
    if (ka->in[1] && ka->in[1]->dtype != EM_BOOL)
        return ocl_mismatch(d, "masked_fill", "in[1] (mask)", ka->in[1]->dtype, EM_BOOL);
    int32_t dt = out_dtype(ka);
    ocl_arg p = ocl_scalar_arg(dt, ka, 0);
    return ew_launch(d, OCL_MASKED_FILL, ka, 2, dt, 0, SAME_OUT | SAME_IN0, &p, 1);
}

em_status ocl_k_fill(void *dev, const em_kargs *ka)
{
    int32_t dt = out_dtype(ka);
    ocl_arg p = ocl_scalar_arg(dt, ka, 0);
    return ew_launch(dev, OCL_FILL, ka, 0, dt, 0, SAME_OUT, &p, 1);
}

/* out = p (integers: ip exactly), for the kernels that fill an empty reduction */
em_status ocl_fill_value(ocl_dev *d, const em_kview *out, double p, int64_t ip)
{
    em_kargs fk;
    memset(&fk, 0, sizeof fk);
    fk.struct_size = sizeof fk;
    fk.out = out;
    fk.p[0] = p;
    fk.n_out = 1;
    fk.outs = &fk.out;
    fk.ins = fk.in;
    fk.n_ip = 1;
    fk.ip = &ip;
    return ocl_k_fill(d, &fk);
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
        return OCL_ERR(d, EM_ERR_UNSUPPORTED, "%s: dtype bool is not supported", ocl_op_name(op));
    ocl_arg p[4];
    memset(p, 0, sizeof p);
    p[0].size = p[1].size = sizeof(cl_ulong);
    p[0].v.u = ka->u[0];
    p[1].v.u = ka->u[1];
    p[2] = ocl_typed_arg(d->fp64 ? EM_F64 : EM_F32, a);
    p[3] = ocl_typed_arg(d->fp64 ? EM_F64 : EM_F32, b);
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

/* ------------------------------------------------------------------ gemm */

em_status ocl_gemm(void *dev, const em_gemm_args *g)
{
    ocl_dev *d = dev;
    int empty;
    em_status st = emk_gemm_check(d->host, d->hc, "opencl",
                                  EM_DTYPE_BIT(EM_F32) | EM_DTYPE_BIT(EM_F64), g, &empty);
    if (st != EM_OK || empty)
        return st;
    if (g->dtype == EM_F64 && !d->fp64)
        return ocl_no_fp64(d, "gemm");
    const int64_t aw = g->trans_a ? g->m : g->k, ah = g->trans_a ? g->k : g->m;
    const int64_t bw = g->trans_b ? g->k : g->n, bh = g->trans_b ? g->n : g->k;
    const int dt = g->dtype;
    /* every matrix inside its buffer (a bad view would write past a device allocation) */
    const int64_t es = (int64_t)emk_dtype_size(dt);
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
        s = &d->xk[OCL_XK_GEMMR][dt];
        if ((st = ocl_slot_ls(d, s, 16, "gemm")) != EM_OK)
            return st;
        local[0] = 1;
        local[1] = s->ls;
        local[2] = 1;
        global[0] = (size_t)ocl_ceil_div(g->n, nr);
        global[1] = ocl_round_up((size_t)ocl_ceil_div(g->m, mr), s->ls);
        global[2] = (size_t)g->batch;
    } else {
        s = &d->xk[OCL_XK_GEMM][dt];
        if ((st = ocl_slot_ls(d, s, rt * rt, "gemm")) != EM_OK)
            return st;
        if (s->ls != rt * rt)
            return OCL_ERR(d, EM_ERR_BACKEND, "gemm: kernel allows work-groups of %zu, it was "
                           "built for %zu", s->ls, rt * rt);
        local[0] = local[1] = rt;
        local[2] = 1;
        global[0] = (size_t)ocl_ceil_div(g->n, (int64_t)ts) * rt;
        global[1] = (size_t)ocl_ceil_div(g->m, (int64_t)ts) * rt;
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
    ocl_arg alpha = ocl_typed_arg(dt, g->alpha), beta = ocl_typed_arg(dt, g->beta);
    cl_uint i = 0;
    if ((st = ocl_set_arg(d, k, i++, sizeof m, &m)) != EM_OK ||
        (st = ocl_set_arg(d, k, i++, sizeof n, &n)) != EM_OK ||
        (st = ocl_set_arg(d, k, i++, sizeof kk, &kk)) != EM_OK ||
        (st = ocl_set_arg(d, k, i++, alpha.size, &alpha.v)) != EM_OK ||
        (st = ocl_set_arg(d, k, i++, beta.size, &beta.v)) != EM_OK ||
        (st = ocl_set_arg(d, k, i++, sizeof a, &a)) != EM_OK ||
        (st = ocl_set_arg(d, k, i++, sizeof ao, &ao)) != EM_OK ||
        (st = ocl_set_arg(d, k, i++, sizeof lda, &lda)) != EM_OK ||
        (st = ocl_set_arg(d, k, i++, sizeof abs_, &abs_)) != EM_OK ||
        (st = ocl_set_arg(d, k, i++, sizeof b, &b)) != EM_OK ||
        (st = ocl_set_arg(d, k, i++, sizeof bo, &bo)) != EM_OK ||
        (st = ocl_set_arg(d, k, i++, sizeof ldb, &ldb)) != EM_OK ||
        (st = ocl_set_arg(d, k, i++, sizeof bbs, &bbs)) != EM_OK ||
        (st = ocl_set_arg(d, k, i++, sizeof c, &c)) != EM_OK ||
        (st = ocl_set_arg(d, k, i++, sizeof co, &co)) != EM_OK ||
        (st = ocl_set_arg(d, k, i++, sizeof ldc, &ldc)) != EM_OK ||
        (st = ocl_set_arg(d, k, i++, sizeof cbs, &cbs)) != EM_OK ||
        (st = ocl_set_arg(d, k, i++, sizeof ta, &ta)) != EM_OK ||
        (st = ocl_set_arg(d, k, i++, sizeof tb, &tb)) != EM_OK)
        return st;
    return ocl_enqueue(d, k, 3, global, local);
}

