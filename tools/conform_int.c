/* tools/conform_int.c — ember-conform cases for the integer dtypes of ABI 1.2 (i64, i32,
 * u8) on the kernels that take them: fill, copy (every cast to and from them), add, sub,
 * mul, neg, abs, sign, maximum, minimum, clamp, the exact integer scalars of add_scalar /
 * mul_scalar / rsub_scalar, floor_divide and remainder (Python's rounding; a zero divisor
 * is an error), comparisons (also with a fractional scalar), where, masked_fill, sum (to
 * i64), prod, max_dim / argmax; scalar promotion as PyTorch's; and values past 2^53, where
 * a kernel that went through double would round. Row names end in ".int". Arithmetic wraps
 * (two's complement, u8 modulo 256), as in PyTorch. */
#include "conform.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define INT_BITS (EM_DTYPE_BIT(EM_I64) | EM_DTYPE_BIT(EM_I32) | EM_DTYPE_BIT(EM_U8))

static const em_dtype int_dtypes[3] = {EM_I64, EM_I32, EM_U8};
static const em_dtype all6[6] = {EM_F32, EM_F64, EM_BOOL, EM_I64, EM_I32, EM_U8};

/* ------------------------------------------------------------------ fill */

static void run_fill(void)
{
    cf_row *r = cf_row_get_dt("full.int", "fill", INT_BITS);
    if (!r)
        return;
    static const struct {
        int nd;
        int64_t shape[2];
    } shapes[] = {{2, {2, 3}}, {0, {0}}, {2, {0, 3}}, {1, {300000}}};
    for (size_t k = 0; k < NELEMS(int_dtypes); k++) {
        em_dtype dt = int_dtypes[k];
        double values[] = {0, 1, 7, dt == EM_U8 ? 255 : -5, dt == EM_I64 ? 1099511627779.0 : 100};
        for (size_t s = 0; s < NELEMS(shapes); s++)
            for (size_t v = 0; v < NELEMS(values) + 2; v++) {
                cf_case_begin();
                int nd = shapes[s].nd;
                const int64_t *sh = shapes[s].shape;
                double want = v < NELEMS(values) ? values[v] : v == NELEMS(values) ? 0 : 1;
                em_tensor *t = v < NELEMS(values) ? em_full(cf.ctx, dt, nd, sh, values[v])
                             : v == NELEMS(values) ? em_zeros(cf.ctx, dt, nd, sh) : em_ones(cf.ctx, dt, nd, sh);
                const char *label = cf_fmt("%s %s %s value %.17g",
                                           v < NELEMS(values) ? "em_full" : v == NELEMS(values) ? "em_zeros" : "em_ones",
                                           em_dtype_name(dt), cf_shape_str(nd, sh), want);
                if (cf_check_shape(r, t, nd, sh, dt, label)) {
                    int64_t *got = cf_read_i64(r, t, label);
                    int64_t n = cf_numel(nd, sh), bad = -1;
                    for (int64_t i = 0; got && i < n && bad < 0; i++)
                        if (got[i] != (int64_t)want)
                            bad = i;
                    if (bad >= 0)
                        cf_fail(r, "%s: element %lld is %lld", label, (long long)bad, (long long)got[bad]);
                    else if (got)
                        cf_pass(r);
                }
                cf_case_end();
            }
    }
}

/* ------------------------------------------------------------------ casts */

static const struct {
    const char *what;
    int nd;
    int64_t shape[2];
    cf_layout lay;
} cast_layouts[] = {
    {"contiguous", 2, {3, 4}, CF_CONTIG},
    {"transposed", 2, {5, 7}, CF_TRANSPOSED},
    {"expanded (stride 0)", 2, {5, 7}, CF_EXPANDED},
    {"0-dim", 0, {0}, CF_CONTIG},
    {"0-size", 2, {0, 3}, CF_CONTIG},
    {"300x1000 transposed", 2, {300, 1000}, CF_TRANSPOSED},
};

/* Source values that convert without unspecified cases: floats truncate toward zero within
 * the target's range; integers wrap (PyTorch's casts between integer types). */
static cf_gen cast_gen(em_dtype src, em_dtype dst)
{
    if (src == EM_BOOL)
        return (cf_gen){0, 1, CF_BOOLS};
    if (em_dtype_is_floating(src))
        return dst == EM_U8 ? (cf_gen){0, 255, CF_UNIFORM} : (cf_gen){-100, 100, CF_UNIFORM};
    if (src == EM_U8)
        return (cf_gen){0, 255, CF_INTS};
    return (cf_gen){-300, 300, CF_INTS};
}

static void run_casts(void)
{
    cf_row *r = cf_row_get_dt("to_dtype.int", "copy", INT_BITS);
    if (!r)
        return;
    for (size_t a = 0; a < NELEMS(all6); a++)
        for (size_t b = 0; b < NELEMS(all6); b++) {
            em_dtype src = all6[a], dst = all6[b];
            if (!em_dtype_is_integer(src) && !em_dtype_is_integer(dst))
                continue;
            if (!cf_dtype_enabled(src) || !cf_dtype_enabled(dst))
                continue;
            for (size_t c = 0; c < NELEMS(cast_layouts); c++) {
                /* the large layout for a few pairs only */
                if (cf_numel(cast_layouts[c].nd, cast_layouts[c].shape) > 10000 &&
                    !((src == EM_F32 && dst == EM_I64) || (src == EM_I64 && dst == EM_F64) ||
                      (src == EM_U8 && dst == EM_F32) || (src == EM_I64 && dst == EM_U8) ||
                      (src == EM_I32 && dst == EM_BOOL)))
                    continue;
                cf_case_begin();
                cf_gen g = cast_gen(src, dst);
                double *x;
                int nd = cast_layouts[c].nd;
                const int64_t *sh = cast_layouts[c].shape;
                em_tensor *t = cf_make(r, src, nd, sh, cast_layouts[c].lay, &g, &x, NULL);
                const char *label = cf_fmt("em_to_dtype %s -> %s, %s %s", em_dtype_name(src),
                                           em_dtype_name(dst), cf_shape_str(nd, sh), cast_layouts[c].what);
                em_tensor *o = t ? em_to_dtype(t, dst) : NULL;
                if (cf_check_shape(r, o, nd, sh, dst, label)) {
                    int64_t n = cf_numel(nd, sh);
                    double *got = cf_read(r, o, label), *want = cf_tmp(sizeof(double) * (size_t)(n ? n : 1));
                    for (int64_t i = 0; i < n; i++)
                        want[i] = dst == EM_BOOL ? (double)(x[i] != 0) : cf_round(dst, x[i]);
                    if (got)
                        cf_compare(r, label, cf_bucket(dst), got, want, NULL, n, 0);
                }
                cf_case_end();
            }
        }
}

/* ------------------------------------------------------------------ elementwise */

#define CALL(nm, expr)                                                                       \
    static em_tensor *nm(em_tensor *const *in, const double *p)                              \
    {                                                                                        \
        (void)p;                                                                             \
        return expr;                                                                         \
    }
#define REF(nm, expr)                                                                        \
    static double nm(const double *x, const double *p, em_dtype dt)                          \
    {                                                                                        \
        (void)p;                                                                             \
        (void)dt;                                                                            \
        return expr;                                                                         \
    }
CALL(c_add, em_add(in[0], in[1]))
CALL(c_sub, em_sub(in[0], in[1]))
CALL(c_mul, em_mul(in[0], in[1]))
CALL(c_maximum, em_maximum(in[0], in[1]))
CALL(c_minimum, em_minimum(in[0], in[1]))
CALL(c_neg, em_neg(in[0]))
CALL(c_abs, em_abs(in[0]))
CALL(c_sign, em_sign(in[0]))
CALL(c_clamp, em_clamp(in[0], p[0], p[1]))
CALL(c_add_s, em_add_scalar(in[0], p[0]))
CALL(c_sub_s, em_sub_scalar(in[0], p[0]))
CALL(c_rsub_s, em_rsub_scalar(in[0], p[0]))
CALL(c_mul_s, em_mul_scalar(in[0], p[0]))
CALL(c_floordiv, em_floor_divide(in[0], in[1]))
CALL(c_rem, em_remainder(in[0], in[1]))
CALL(c_floordiv_s, em_floor_divide_scalar(in[0], p[0]))
CALL(c_rem_s, em_remainder_scalar(in[0], p[0]))
CALL(c_lt, em_lt(in[0], in[1]))
CALL(c_le, em_le(in[0], in[1]))
CALL(c_gt, em_gt(in[0], in[1]))
CALL(c_ge, em_ge(in[0], in[1]))
CALL(c_eq, em_eq(in[0], in[1]))
CALL(c_ne, em_ne(in[0], in[1]))
CALL(c_lt_s, em_lt_scalar(in[0], p[0]))
CALL(c_eq_s, em_eq_scalar(in[0], p[0]))
CALL(c_ge_s, em_ge_scalar(in[0], p[0]))
CALL(c_where, em_where(in[0], in[1], in[2]))
CALL(c_masked_fill, em_masked_fill(in[0], in[1], p[0]))
REF(r_add, x[0] + x[1])
REF(r_sub, x[0] - x[1])
REF(r_mul, x[0] * x[1])
REF(r_maximum, fmax(x[0], x[1]))
REF(r_minimum, fmin(x[0], x[1]))
REF(r_neg, -x[0])
REF(r_abs, fabs(x[0]))
REF(r_sign, x[0] > 0 ? 1 : x[0] < 0 ? -1 : 0)
REF(r_clamp, fmin(fmax(x[0], p[0]), p[1]))
REF(r_add_s, x[0] + p[0])
REF(r_sub_s, x[0] - p[0])
REF(r_rsub_s, p[0] - x[0])
REF(r_mul_s, x[0] * p[0])
REF(r_lt, x[0] < x[1])
REF(r_le, x[0] <= x[1])
REF(r_gt, x[0] > x[1])
REF(r_ge, x[0] >= x[1])
REF(r_eq, x[0] == x[1])
REF(r_ne, x[0] != x[1])
REF(r_lt_s, x[0] < p[0])
REF(r_eq_s, x[0] == p[0])
REF(r_ge_s, x[0] >= p[0])
REF(r_where, x[0] != 0 ? x[1] : x[2])
REF(r_masked_fill, x[1] != 0 ? p[0] : x[0])

/* Python's // and % of integers */
static double r_floordiv(const double *x, const double *p, em_dtype dt)
{
    (void)p;
    (void)dt;
    int64_t a = (int64_t)x[0], b = (int64_t)x[1], q = a / b;
    if (a % b != 0 && (a < 0) != (b < 0))
        q--;
    return (double)q;
}

static double r_rem(const double *x, const double *p, em_dtype dt)
{
    (void)p;
    (void)dt;
    int64_t a = (int64_t)x[0], b = (int64_t)x[1], m = a % b;
    if (m != 0 && (b < 0) != (m < 0))
        m += b;
    return (double)m;
}

static double r_floordiv_s(const double *x, const double *p, em_dtype dt)
{
    double y[2] = {x[0], p[0]};
    return r_floordiv(y, NULL, dt);
}

static double r_rem_s(const double *x, const double *p, em_dtype dt)
{
    double y[2] = {x[0], p[0]};
    return r_rem(y, NULL, dt);
}

typedef struct int_op {
    const char *row, *kernels;
    cf_ew_op op;
    /* value ranges for i64 / i32 / u8 inputs (wrapping where the range allows it) */
    double lo[3], hi[3];
    bool nonzero1;       /* input 1 has no zero (a divisor) */
} int_op;

#define OP(nm, ar, call, ref, out, bin) {nm, ar, {{0, 0, 0}}, {0}, call, ref, out, bin, false}
#define WRAP {-1e6, -2e9, 0}, {1e6, 2e9, 255}
#define SMALL {-50, -50, 0}, {50, 50, 60}
#define MULR {-1e6, -60000, 0}, {1e6, 60000, 255}
static const int_op int_ops[] = {
    {"add.int", "add", OP("add", 2, c_add, r_add, -1, 0), WRAP, false},
    {"sub.int", "sub", OP("sub", 2, c_sub, r_sub, -1, 0), WRAP, false},
    {"mul.int", "mul", OP("mul", 2, c_mul, r_mul, -1, 0), MULR, false},
    {"maximum.int", "maximum", OP("maximum", 2, c_maximum, r_maximum, -1, 0), SMALL, false},
    {"minimum.int", "minimum", OP("minimum", 2, c_minimum, r_minimum, -1, 0), SMALL, false},
    {"neg.int", "neg", OP("neg", 1, c_neg, r_neg, -1, 0), WRAP, false},
    {"abs.int", "abs", OP("abs", 1, c_abs, r_abs, -1, 0), SMALL, false},
    {"sign.int", "sign", OP("sign", 1, c_sign, r_sign, -1, 0), SMALL, false},
    {"clamp.int", "clamp", {"clamp(-7, 20)", 1, {{0, 0, 0}}, {-7, 20}, c_clamp, r_clamp, -1, 0, false}, SMALL, false},
    {"add_scalar.int", "add_scalar", {"add_scalar(5)", 1, {{0, 0, 0}}, {5}, c_add_s, r_add_s, -1, 0, false}, WRAP, false},
    {"add_scalar.int", "add_scalar", {"sub_scalar(300)", 1, {{0, 0, 0}}, {300}, c_sub_s, r_sub_s, -1, 0, false}, WRAP, false},
    {"rsub_scalar.int", "rsub_scalar", {"rsub_scalar(3)", 1, {{0, 0, 0}}, {3}, c_rsub_s, r_rsub_s, -1, 0, false}, WRAP, false},
    {"mul_scalar.int", "mul_scalar", {"mul_scalar(-3)", 1, {{0, 0, 0}}, {-3}, c_mul_s, r_mul_s, -1, 0, false}, MULR, false},
    {"floor_divide.int", "floor_divide", OP("floor_divide", 2, c_floordiv, r_floordiv, -1, 0), SMALL, true},
    {"remainder.int", "remainder", OP("remainder", 2, c_rem, r_rem, -1, 0), SMALL, true},
    {"floor_divide_scalar.int", "fill floor_divide",
     {"floor_divide_scalar(-4)", 1, {{0, 0, 0}}, {-4}, c_floordiv_s, r_floordiv_s, -1, 0, false}, SMALL, false},
    {"remainder_scalar.int", "fill remainder",
     {"remainder_scalar(3)", 1, {{0, 0, 0}}, {3}, c_rem_s, r_rem_s, -1, 0, false}, SMALL, false},
    {"lt.int", "lt", OP("lt", 2, c_lt, r_lt, EM_BOOL, 0), {-3, -3, 0}, {3, 3, 5}, false},
    {"le.int", "le", OP("le", 2, c_le, r_le, EM_BOOL, 0), {-3, -3, 0}, {3, 3, 5}, false},
    {"gt.int", "gt", OP("gt", 2, c_gt, r_gt, EM_BOOL, 0), {-3, -3, 0}, {3, 3, 5}, false},
    {"ge.int", "ge", OP("ge", 2, c_ge, r_ge, EM_BOOL, 0), {-3, -3, 0}, {3, 3, 5}, false},
    {"eq.int", "eq", OP("eq", 2, c_eq, r_eq, EM_BOOL, 0), {-3, -3, 0}, {3, 3, 5}, false},
    {"ne.int", "ne", OP("ne", 2, c_ne, r_ne, EM_BOOL, 0), {-3, -3, 0}, {3, 3, 5}, false},
    /* a fractional scalar compares as a float (PyTorch's promotion): 1 < 1.5, 2 >= 1.5 */
    {"lt_scalar.int", "fill lt", {"lt_scalar(1.5)", 1, {{0, 0, 0}}, {1.5}, c_lt_s, r_lt_s, EM_BOOL, 0, false},
     {-3, -3, 0}, {3, 3, 5}, false},
    {"lt_scalar.int", "fill lt", {"lt_scalar(2)", 1, {{0, 0, 0}}, {2}, c_lt_s, r_lt_s, EM_BOOL, 0, false},
     {-3, -3, 0}, {3, 3, 5}, false},
    {"eq_scalar.int", "fill eq", {"eq_scalar(2)", 1, {{0, 0, 0}}, {2}, c_eq_s, r_eq_s, EM_BOOL, 0, false},
     {-3, -3, 0}, {3, 3, 5}, false},
    {"eq_scalar.int", "fill eq", {"eq_scalar(2.5)", 1, {{0, 0, 0}}, {2.5}, c_eq_s, r_eq_s, EM_BOOL, 0, false},
     {-3, -3, 0}, {3, 3, 5}, false},
    {"ge_scalar.int", "fill ge", {"ge_scalar(1.5)", 1, {{0, 0, 0}}, {1.5}, c_ge_s, r_ge_s, EM_BOOL, 0, false},
     {-3, -3, 0}, {3, 3, 5}, false},
    {"where.int", "where", OP("where", 3, c_where, r_where, -1, 1), WRAP, false},
    {"masked_fill.int", "masked_fill", {"masked_fill(-2)", 2, {{0, 0, 0}}, {-2}, c_masked_fill, r_masked_fill, -1, 2, false},
     SMALL, false},
};
#undef OP
#undef WRAP
#undef SMALL
#undef MULR

static void run_elementwise(void)
{
    for (size_t k = 0; k < NELEMS(int_ops); k++) {
        const int_op *io = &int_ops[k];
        cf_row *r = cf_row_get_dt(io->row, io->kernels, INT_BITS);
        if (!r)
            continue;
        for (int d = 0; d < 3; d++) {
            em_dtype dt = int_dtypes[d];
            cf_ew_op op = io->op;
            double lo = io->lo[d], hi = io->hi[d];
            /* the large layouts (threading) once per kernel: for i64 */
            op.small = dt != EM_I64;
            if (dt == EM_U8 && op.p[0] < 0 && op.call != c_clamp && op.call != c_masked_fill)
                op.p[0] = -op.p[0];   /* u8: a positive scalar (a negative one wraps too, but
                                         is not a u8 value for PyTorch) */
            if (dt == EM_U8 && op.call == c_clamp)
                op.p[0] = 7;
            for (int i = 0; i < op.arity; i++) {
                bool is_bool = op.bool_in >> i & 1;
                op.gen[i] = is_bool ? (cf_gen){0, 1, CF_BOOLS}
                                    : (cf_gen){lo, hi, CF_INTS | (i == 1 && io->nonzero1 ? CF_AWAY : 0)};
            }
            cf_ew_all(r, &op, dt, 0);
        }
    }
    /* bool + 1 and bool * 2 give i64 (the scalar is whole), as in PyTorch */
    cf_row *r = cf_row_get_dt("add_scalar.int", "add_scalar", INT_BITS);
    if (r) {
        cf_ew_op op = {"add_scalar(1) of bool", 1, {{0, 1, CF_BOOLS}}, {1}, c_add_s, r_add_s, EM_I64, 1, false};
        cf_ew_all(r, &op, EM_BOOL, 0);
    }
    /* an integer division by zero is an error (EM_ERR_INVALID), scalar or tensor */
    cf_row *rd = cf_row_get_dt("floor_divide.int", "floor_divide", INT_BITS);
    cf_row *rr = cf_row_get_dt("remainder.int", "remainder", INT_BITS);
    for (int d = 0; d < 3; d++) {
        for (int w = 0; w < 4; w++) {
            cf_row *row = w % 2 ? rr : rd;
            if (!row)
                continue;
            cf_case_begin();
            em_dtype dt = int_dtypes[d];
            em_tensor *a = em_full(cf.ctx, dt, EM_SHAPE(4), 7);
            em_tensor *b = em_tensor_from_data(cf.ctx, EM_I64, EM_SHAPE(4), (const int64_t[]){1, 2, 0, 3});
            b = b ? em_to_dtype(b, dt) : NULL;
            em_tensor *o = w == 0 ? em_floor_divide(a, b) : w == 1 ? em_remainder(a, b)
                         : w == 2 ? em_floor_divide_scalar(a, 0) : em_remainder_scalar(a, 0);
            if (!o && em_context_status(cf.ctx) == EM_ERR_INVALID)
                cf_pass(row);
            else
                cf_fail(row, "%s %s by zero: expected EM_ERR_INVALID, got %s", em_dtype_name(dt),
                        w % 2 ? "remainder" : "floor_divide", em_status_name(em_context_status(cf.ctx)));
            cf_case_end();
        }
    }
}

/* ------------------------------------------------------------------ past 2^53 */

/* Values a double cannot hold: every kernel must compute on the integers themselves. */
static void run_exact_i64(void)
{
    cf_row *r = cf_row_get_dt("exact_i64.int", "add mul sum copy",
                              EM_DTYPE_BIT(EM_I64));
    if (!r)
        return;
    const int64_t big = ((int64_t)1 << 62) + 1;
    const int64_t av[6] = {big, -big - 2, INT64_MAX, INT64_MIN, 9007199254740993LL, 12345};
    const int64_t bv[6] = {1, ((int64_t)1 << 62), 1, -1, 9007199254740992LL, -3};
    cf_case_begin();
    em_tensor *a = em_tensor_from_data(cf.ctx, EM_I64, EM_SHAPE(6), av);
    em_tensor *b = em_tensor_from_data(cf.ctx, EM_I64, EM_SHAPE(6), bv);
    struct {
        const char *what;
        em_tensor *t;
    } res[] = {
        {"add", em_add(a, b)}, {"sub", em_sub(a, b)}, {"mul", em_mul(a, b)}, {"neg", em_neg(a)},
        {"abs", em_abs(a)}, {"add_scalar(3)", em_add_scalar(a, 3)}, {"mul_scalar(-2)", em_mul_scalar(a, -2)},
        {"lt", em_lt(a, b)}, {"eq", em_eq(b, em_add_scalar(b, 0))}, {"gt_scalar", em_gt_scalar(a, 9007199254740992.0)},
        {"sum", em_sum(a)}, {"to i32", em_to_dtype(a, EM_I32)}, {"to u8", em_to_dtype(a, EM_U8)},
        {"maximum", em_maximum(a, b)},
    };
    for (size_t k = 0; k < NELEMS(res); k++) {
        int64_t want[6];
        int n = 6;
        for (int i = 0; i < 6; i++) {
            uint64_t x = (uint64_t)av[i], y = (uint64_t)bv[i];
            switch (k) {
            case 0: want[i] = (int64_t)(x + y); break;
            case 1: want[i] = (int64_t)(x - y); break;
            case 2: want[i] = (int64_t)(x * y); break;
            case 3: want[i] = (int64_t)(0 - x); break;
            case 4: want[i] = av[i] < 0 ? (int64_t)(0 - x) : av[i]; break;
            case 5: want[i] = (int64_t)(x + 3); break;
            case 6: want[i] = (int64_t)(x * (uint64_t)-2); break;
            case 7: want[i] = av[i] < bv[i]; break;
            case 8: want[i] = 1; break;
            /* a whole scalar is an integer (PyTorch's t > 9007199254740992): 2^53 + 1 > 2^53,
             * which a comparison in double would miss */
            case 9: want[i] = av[i] > 9007199254740992LL; break;
            case 10: {
                uint64_t s = 0;
                for (int j = 0; j < 6; j++)
                    s += (uint64_t)av[j];
                want[0] = (int64_t)s;
                n = 1;
                break;
            }
            case 11: want[i] = (int32_t)(uint32_t)x; break;
            case 12: want[i] = (uint8_t)x; break;
            default: want[i] = av[i] > bv[i] ? av[i] : bv[i]; break;
            }
        }
        const char *label = cf_fmt("i64 %s of values past 2^53", res[k].what);
        int64_t *got = cf_read_i64(r, res[k].t, label);
        if (!got)
            continue;
        if (em_tensor_numel(res[k].t) != n) {
            cf_fail(r, "%s: %lld elements, want %d", label, (long long)em_tensor_numel(res[k].t), n);
            continue;
        }
        int bad = -1;
        for (int i = 0; i < n && bad < 0; i++)
            if (got[i] != want[i])
                bad = i;
        if (bad < 0)
            cf_pass(r);
        else
            cf_fail(r, "%s: element %d: got %lld, want %lld (inputs %lld, %lld)", label, bad,
                    (long long)got[bad], (long long)want[bad], (long long)av[bad], (long long)bv[bad]);
    }
    /* em_item_i64 reads it back exactly */
    int64_t item = em_item_i64(em_select(a, 0, 4));
    if (item == av[4] && em_context_status(cf.ctx) == EM_OK)
        cf_pass(r);
    else
        cf_fail(r, "em_item_i64 of 2^53 + 1: got %lld: %s", (long long)item, em_context_error(cf.ctx));
    cf_case_end();
}

/* ------------------------------------------------------------------ promotion */

static void run_promotion(void)
{
    cf_row *r = cf_row_get_dt("scalar_promotion.int", "add_scalar mul_scalar", INT_BITS);
    if (!r)
        return;
    static const struct {
        const char *what;
        em_dtype in, out;
        int op;          /* 0 mul_scalar, 1 add_scalar, 2 div_scalar, 3 floor_divide_scalar */
        double s;
    } cases[] = {
        {"i64 * 0.5 is f32", EM_I64, EM_F32, 0, 0.5},  {"i64 * 2 stays i64", EM_I64, EM_I64, 0, 2},
        {"i32 + 1.5 is f32", EM_I32, EM_F32, 1, 1.5},  {"i32 + 3 stays i32", EM_I32, EM_I32, 1, 3},
        {"u8 + 300 wraps", EM_U8, EM_U8, 1, 300},      {"i64 / 2 is f32", EM_I64, EM_F32, 2, 2},
        {"bool * 2 is i64", EM_BOOL, EM_I64, 0, 2},   {"bool + 0.5 is f32", EM_BOOL, EM_F32, 1, 0.5},
        {"i64 // 2.5 is f32", EM_I64, EM_F32, 3, 2.5}, {"u8 // 2 stays u8", EM_U8, EM_U8, 3, 2},
    };
    for (size_t k = 0; k < NELEMS(cases); k++) {
        cf_case_begin();
        cf_gen g = cases[k].in == EM_BOOL ? (cf_gen){0, 1, CF_BOOLS}
                 : cases[k].in == EM_U8 ? (cf_gen){0, 255, CF_INTS} : (cf_gen){-9, 9, CF_INTS};
        double *x;
        em_tensor *t = cf_make(r, cases[k].in, 2, (const int64_t[]){3, 4}, CF_TRANSPOSED, &g, &x, NULL);
        double s = cases[k].s;
        em_tensor *o = !t ? NULL : cases[k].op == 0 ? em_mul_scalar(t, s) : cases[k].op == 1 ? em_add_scalar(t, s)
                     : cases[k].op == 2 ? em_div_scalar(t, s) : em_floor_divide_scalar(t, s);
        const char *label = cf_fmt("%s (%s [3, 4] transposed)", cases[k].what, em_dtype_name(cases[k].in));
        em_dtype odt = cases[k].out;
        if (cf_check_shape(r, o, 2, (const int64_t[]){3, 4}, odt, label)) {
            double *got = cf_read(r, o, label), want[12];
            for (int i = 0; i < 12; i++) {
                double v = cases[k].op == 0 ? x[i] * s : cases[k].op == 1 ? x[i] + s
                         : cases[k].op == 2 ? x[i] / s : floor(x[i] / s);
                want[i] = cf_round(odt, v);
            }
            if (got)
                cf_compare(r, label, cf_bucket(odt), got, want, NULL, 12, cf_tol(odt));
        }
        cf_case_end();
    }
    /* tensor-tensor ops of two dtypes stay an error */
    cf_case_begin();
    em_tensor *a = em_zeros(cf.ctx, EM_I64, EM_SHAPE(3)), *b = em_zeros(cf.ctx, EM_F32, EM_SHAPE(3));
    if (a && b && !em_add(a, b) && em_context_status(cf.ctx) == EM_ERR_DTYPE)
        cf_pass(r);
    else
        cf_fail(r, "em_add(i64, f32): expected EM_ERR_DTYPE, got %s", em_status_name(em_context_status(cf.ctx)));
    cf_case_end();
}

/* ------------------------------------------------------------------ reductions */

static void run_reductions(void)
{
    /* the core sums integers and bools as i64 (a copy to i64 first) */
    cf_row *rs = cf_row_get_dt("sum.int", "copy sum", EM_DTYPE_BIT(EM_I64));
    cf_row *rp = cf_row_get_dt("prod.int", "copy prod", EM_DTYPE_BIT(EM_I64));
    cf_row *rm = cf_row_get_dt("max_dim.int", "max_dim min_dim", INT_BITS);
    static const em_dtype dts[4] = {EM_BOOL, EM_I64, EM_I32, EM_U8};
    static const struct {
        const char *what;
        int nd;
        int64_t shape[3];
        cf_layout lay;
        int dim;          /* -9: over everything */
    } cases[] = {
        {"all", 2, {3, 4}, CF_CONTIG, -9},           {"all, transposed", 2, {5, 7}, CF_TRANSPOSED, -9},
        {"dim 1", 2, {3, 4}, CF_CONTIG, 1},          {"dim 0, transposed", 2, {5, 7}, CF_TRANSPOSED, 0},
        {"dim -2 of 3-D", 3, {2, 3, 4}, CF_CONTIG, -2}, {"all, 0-size", 2, {0, 3}, CF_CONTIG, -9},
        {"all, 300000 elements", 1, {300000}, CF_CONTIG, -9},
        {"dim 0, expanded", 2, {5, 7}, CF_EXPANDED, 0},
    };
    for (size_t k = 0; k < NELEMS(dts); k++)
        for (size_t c = 0; c < NELEMS(cases); c++)
            for (int which = 0; which < 3; which++) {
                em_dtype dt = dts[k];
                cf_row *r = which == 0 ? rs : which == 1 ? rp : rm;
                if (!r || (which == 1 && dt != EM_I64) || (which == 2 && (dt == EM_BOOL || cases[c].dim == -9)))
                    continue;
                if (which == 1 && cf_numel(cases[c].nd, cases[c].shape) > 1000)
                    continue;
                cf_case_begin();
                cf_gen g = dt == EM_BOOL ? (cf_gen){0, 1, CF_BOOLS}
                         : which == 1 ? (cf_gen){-3, 3, CF_INTS}
                         : dt == EM_U8 ? (cf_gen){0, 255, CF_INTS} : (cf_gen){-1000, 1000, CF_INTS};
                double *x;
                int nd = cases[c].nd, dim = cases[c].dim;
                const int64_t *sh = cases[c].shape;
                em_tensor *t = cf_make(r, dt, nd, sh, cases[c].lay, &g, &x, NULL);
                int d = dim < 0 && dim != -9 ? dim + nd : dim;
                int64_t outer = 1, n = 1, inner = 1, oshape[3];
                int ond = 0;
                for (int i = 0; i < nd; i++) {
                    if (dim == -9 || i == d)
                        n *= sh[i];
                    else if (i < d)
                        outer *= sh[i];
                    else
                        inner *= sh[i];
                    if (dim != -9 && i != d)
                        oshape[ond++] = sh[i];
                }
                static const char *const fn[] = {"em_sum", "em_prod", "em_max_dim"};
                const char *label = cf_fmt("%s %s %s %s", fn[which], em_dtype_name(dt), cf_shape_str(nd, sh),
                                           cases[c].what);
                em_tensor *o = NULL, *ix = NULL;
                if (t && which == 0)
                    o = dim == -9 ? em_sum(t) : em_sum_dims(t, 1, &dim, false);
                else if (t && which == 1)
                    o = dim == -9 ? em_prod(t) : em_prod_dim(t, dim, false);
                else if (t && !cf_status(r, em_max_dim(t, dim, false, &o, &ix), label))
                    goto next;
                em_dtype odt = which == 2 ? dt : EM_I64;
                if (cf_check_shape(r, o, ond, oshape, odt, label)) {
                    int64_t m = outer * inner;
                    int64_t *want = cf_tmp(sizeof(int64_t) * (size_t)(m ? m : 1));
                    double *wi = cf_tmp(sizeof(double) * (size_t)(m ? m : 1));
                    for (int64_t oo = 0; oo < outer; oo++)
                        for (int64_t i = 0; i < inner; i++) {
                            /* exact, wrapping products */
                            uint64_t acc = which == 1 ? 1 : 0;
                            int64_t best = 0, bi = 0;
                            for (int64_t j = 0; j < n; j++) {
                                int64_t v = (int64_t)x[(oo * n + j) * inner + i];
                                acc = which == 1 ? acc * (uint64_t)v : acc + (uint64_t)v;
                                if (j == 0 || v > best) {
                                    best = v;
                                    bi = j;
                                }
                            }
                            want[oo * inner + i] = which == 2 ? best : (int64_t)acc;
                            wi[oo * inner + i] = (double)bi;
                        }
                    int64_t *got = cf_read_i64(r, o, label), bad = -1;
                    for (int64_t i = 0; got && i < m && bad < 0; i++)
                        if (got[i] != want[i])
                            bad = i;
                    if (bad >= 0)
                        cf_fail(r, "%s: element %lld of %lld: got %lld, want %lld", label, (long long)bad,
                                (long long)m, (long long)got[bad], (long long)want[bad]);
                    else if (got)
                        cf_pass(r);
                    if (which == 2 && cf_check_shape(r, ix, ond, oshape, EM_I64, cf_fmt("%s: indices", label))) {
                        double *gi = cf_read(r, ix, label);
                        if (gi)
                            cf_compare(r, cf_fmt("%s: indices", label), -1, gi, wi, NULL, m, 0);
                    }
                }
            next:
                cf_case_end();
            }
}

void cf_run_int(void)
{
    run_fill();
    run_casts();
    run_elementwise();
    run_exact_i64();
    run_promotion();
    run_reductions();
}
