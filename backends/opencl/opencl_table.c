/* backends/opencl/opencl_table.c — what the OpenCL backend's kernels are: the dtypes each
 * kernel entry declares to the core (ops->dtypes), the op and kernel names the .cl files
 * define, and the creation of every kernel of a device's program into its tables at
 * device_open (exactly the declared dtypes, f64 only where the device has it, and the
 * scatter_add atomics only where the device has the atomics they need). */
#include "opencl.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ declared dtypes */

/* The dtypes the .cl files instantiate, declared to the core. f64 is removed by the core
 * itself on devices without cl_khr_fp64 (device_props' fp64), so these masks do not depend
 * on the device. Integer dtypes are declared exactly where the core calls a kernel with
 * them (core/plugin/kernels.c, "uses"). */
#define FL EM_DTYPES_FLOAT
#define FN (EM_DTYPES_FLOAT | EM_DTYPES_INT)
#define FI (EM_DTYPES_FLOAT | EM_DTYPE_BIT(EM_I64))
#define ALL EM_DTYPES_ALL
const em_kernel_dtypes ocl_kernel_dtypes = {
    .struct_size = sizeof(em_kernel_dtypes),
    .gemm = FL,
    .fill = ALL, .rng_uniform = FL, .rng_normal = FL, .copy = ALL,
    .neg = FN, .exp = FL, .log = FL, .sqrt = FL, .abs = FN, .relu = FL, .tanh = FL,
    .sigmoid = FL,
    .add_scalar = FN, .mul_scalar = FN, .rsub_scalar = FN, .div_scalar = FL,
    .rdiv_scalar = FL, .pow_scalar = FL, .clamp = FN,
    .add = FN, .sub = FN, .mul = FN, .div = FL, .maximum = FN, .minimum = FN,
    .lt = ALL, .le = ALL, .gt = ALL, .ge = ALL, .eq = ALL, .ne = ALL,
    .where = ALL, .masked_fill = ALL,
    .sum = FI,
    .relu_backward = FL, .clamp_backward = FL, .pow_backward = FL, .tanh_backward = FL,
    .sigmoid_backward = FL,
    .log1p = FL, .expm1 = FL, .sin = FL, .cos = FL, .erf = FL, .floor = FL, .ceil = FL,
    .round = FL, .sign = FN,
    .pow = FL, .floor_divide = FN, .remainder = FN,
    .prod = FI,
    .max_dim = FN, .min_dim = FN, .softmax = FL, .log_softmax = FL,
    .index_select = ALL, .gather = ALL, .scatter_add = FN,
    .adam = FL,
    .avg_pool2d = FL, .avg_pool2d_grad = FL,
    /* ---- ABI 1.4: convolution ---- */
    .im2col = FL, .col2im = FL, .max_pool2d = FL,
    /* ---- ABI 1.5: max_pool2d backward ---- */
    .max_pool2d_grad = FL,
    /* ---- ABI 1.7: SGD's step ---- */
    .sgd = FL,
};
#undef FL
#undef FN
#undef FI
#undef ALL

/* ------------------------------------------------------------------ names */

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
    [OCL_LOG1P] = "log1p", [OCL_EXPM1] = "expm1", [OCL_SIN] = "sin", [OCL_COS] = "cos",
    [OCL_ERF] = "erf", [OCL_FLOOR] = "floor", [OCL_CEIL] = "ceil", [OCL_ROUND] = "round",
    [OCL_SIGN] = "sign", [OCL_POW] = "pow", [OCL_FLOOR_DIVIDE] = "floor_divide",
    [OCL_REMAINDER] = "remainder",
};

const char *ocl_op_name(int op)
{
    return op >= 0 && op < OCL_OP_COUNT ? op_names[op] : "?";
}

/* Each op's mask in ocl_kernel_dtypes: device_open creates the kernels of the declared
 * dtypes and no others, so a declaration the .cl files cannot honour fails at once (no such
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
    M(OCL_LOG1P, log1p), M(OCL_EXPM1, expm1), M(OCL_SIN, sin), M(OCL_COS, cos),
    M(OCL_ERF, erf), M(OCL_FLOOR, floor), M(OCL_CEIL, ceil), M(OCL_ROUND, round),
    M(OCL_SIGN, sign), M(OCL_POW, pow), M(OCL_FLOOR_DIVIDE, floor_divide),
    M(OCL_REMAINDER, remainder),
};

/* The kernels beyond the elementwise templates: name prefix and the mask of the entry they
 * implement. */
enum { XK_ATOMIC = 1 };
static const struct {
    const char *name;
    size_t mask;
    int flags;
} xk_table[OCL_XK_COUNT] = {
#define X(XK, name, field, flags) [XK] = {name, offsetof(em_kernel_dtypes, field), flags}
    X(OCL_XK_SUM_GRP, "em_sum_grp", sum, 0),
    X(OCL_XK_SUM_ITEM, "em_sum_item", sum, 0),
    X(OCL_XK_SUM_FIN, "em_sum_fin", sum, 0),
    X(OCL_XK_PROD_GRP, "em_prod_grp", prod, 0),
    X(OCL_XK_PROD_ITEM, "em_prod_item", prod, 0),
    X(OCL_XK_PROD_FIN, "em_prod_fin", prod, 0),
    X(OCL_XK_MAX_ITEM, "em_max_dim_item", max_dim, 0),
    X(OCL_XK_MAX_GRP, "em_max_dim_grp", max_dim, 0),
    X(OCL_XK_MIN_ITEM, "em_min_dim_item", min_dim, 0),
    X(OCL_XK_MIN_GRP, "em_min_dim_grp", min_dim, 0),
    X(OCL_XK_SOFTMAX_ITEM, "em_softmax_item", softmax, 0),
    X(OCL_XK_SOFTMAX_GRP, "em_softmax_grp", softmax, 0),
    X(OCL_XK_LOG_SOFTMAX_ITEM, "em_log_softmax_item", log_softmax, 0),
    X(OCL_XK_LOG_SOFTMAX_GRP, "em_log_softmax_grp", log_softmax, 0),
    X(OCL_XK_INDEX_SELECT, "em_index_select", index_select, 0),
    X(OCL_XK_GATHER, "em_gather", gather, 0),
    X(OCL_XK_SCATTER_ADD, "em_scatter_add", scatter_add, 0),
    X(OCL_XK_SCATTER_ADD_ATOMIC, "em_scatter_add_atomic", scatter_add, XK_ATOMIC),
    X(OCL_XK_GEMM, "em_gemm", gemm, 0),
    X(OCL_XK_GEMMR, "em_gemmr", gemm, 0),
    X(OCL_XK_ADAM, "em_adam", adam, 0),
    X(OCL_XK_AVG_POOL, "em_avg_pool2d", avg_pool2d, 0),
    X(OCL_XK_AVG_POOL_BW, "em_avg_pool2d_bw", avg_pool2d_grad, 0),
    /* ---- ABI 1.4: convolution ---- */
    X(OCL_XK_IM2COL, "em_im2col", im2col, 0),
    X(OCL_XK_COL2IM, "em_col2im", col2im, 0),
    X(OCL_XK_MAX_POOL2D, "em_max_pool2d", max_pool2d, 0),
    /* ---- ABI 1.5: max_pool2d backward ---- */
    X(OCL_XK_MAX_POOL2D_GRAD, "em_max_pool2d_grad", max_pool2d_grad, 0),
    /* ---- ABI 1.7: SGD's step ---- */
    X(OCL_XK_SGD, "em_sgd", sgd, 0),
#undef X
};

static const char *const variant_names[2] = {"1d", "nd"};

static em_dtype_mask mask_at(size_t off)
{
    em_dtype_mask m;
    memcpy(&m, (const char *)&ocl_kernel_dtypes + off, sizeof m);
    return m;
}

void ocl_ew_name(char *buf, size_t n, int op, int32_t dt, int32_t dt_in, int v)
{
    if (op == OCL_COPY)
        snprintf(buf, n, "em_copy_%s_%s_%s", emk_dtype_name(dt), emk_dtype_name(dt_in),
                 variant_names[v]);
    else
        snprintf(buf, n, "em_%s_%s_%s", ocl_op_name(op), emk_dtype_name(dt), variant_names[v]);
}

void ocl_xk_name(char *buf, size_t n, int xk, int32_t dt)
{
    snprintf(buf, n, "%s_%s", xk >= 0 && xk < OCL_XK_COUNT ? xk_table[xk].name : "?",
             emk_dtype_name(dt));
}

ocl_kslot *ocl_ew_slot(ocl_dev *d, int op, int32_t dt, int32_t dt_in, int v)
{
    if (op < 0 || op >= OCL_OP_COUNT || dt < 0 || dt >= OCL_NDT || dt_in < 0 ||
        dt_in >= OCL_NDT || v < 0 || v > 1)
        return NULL;
    return op == OCL_COPY ? &d->cp[dt][dt_in][v] : &d->ew[op][dt][v];
}

/* ------------------------------------------------------------------ creation */

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

static int have_dtype(const ocl_dev *d, em_dtype_mask m, int dt)
{
    return (m >> dt & 1u) && (dt != EM_F64 || d->fp64);
}

/* The scatter_add atomics: 32-bit ones are core OpenCL (f32 through compare-and-swap on its
 * bits, i32 an atomic add); f64 and i64 need cl_khr_int64_base_atomics; u8 has none. */
static int have_atomic(const ocl_dev *d, int dt)
{
    return dt == EM_F32 || dt == EM_I32 || ((dt == EM_F64 || dt == EM_I64) && d->int64_atomics);
}

em_status ocl_create_kernels(ocl_dev *d)
{
    char name[96];
    em_status st;
    for (int op = 0; op < OCL_OP_COUNT; op++) {
        if (!op_mask[op])   /* an op added to ocl_op without its line in op_mask */
            return OCL_ERR(d, EM_ERR_INTERNAL, "opencl backend: no dtype mask for op %s",
                           ocl_op_name(op));
        em_dtype_mask m = mask_at(op_mask[op]);
        for (int dt = 0; dt < OCL_NDT; dt++) {
            if (!have_dtype(d, m, dt))
                continue;
            for (int di = 0; di < (op == OCL_COPY ? OCL_NDT : 1); di++) {
                if (op == OCL_COPY && !have_dtype(d, m, di))
                    continue;
                for (int v = 0; v < 2; v++) {
                    ocl_ew_name(name, sizeof name, op, dt, di, v);
                    if ((st = create_one(d, name, ocl_ew_slot(d, op, dt, di, v))) != EM_OK)
                        return st;
                }
            }
        }
    }
    for (int x = 0; x < OCL_XK_COUNT; x++) {
        if (!xk_table[x].name)
            return OCL_ERR(d, EM_ERR_INTERNAL, "opencl backend: kernel %d has no name", x);
        em_dtype_mask m = mask_at(xk_table[x].mask);
        for (int dt = 0; dt < OCL_NDT; dt++) {
            if (!have_dtype(d, m, dt) || ((xk_table[x].flags & XK_ATOMIC) && !have_atomic(d, dt)))
                continue;
            ocl_xk_name(name, sizeof name, x, dt);
            if ((st = create_one(d, name, &d->xk[x][dt])) != EM_OK)
                return st;
        }
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
            for (int v = 0; v < 2; v++)
                release_slot(&d->ew[op][dt][v]);
    for (int dt = 0; dt < OCL_NDT; dt++)
        for (int di = 0; di < OCL_NDT; di++)
            for (int v = 0; v < 2; v++)
                release_slot(&d->cp[dt][di][v]);
    for (int x = 0; x < OCL_XK_COUNT; x++)
        for (int dt = 0; dt < OCL_NDT; dt++)
            release_slot(&d->xk[x][dt]);
}
