/* tools/conform_vocab.c — ember-conform cases for the math of ABI 1.2: the unary kernels
 * (log1p, expm1, sin, cos, erf, floor, ceil, round, sign), pow with a tensor exponent,
 * floor_divide and remainder on floats, prod (whole and along a dim), max / min (whole and
 * along a dim, values and indices, argmax / argmin) with ties and NaN, and softmax /
 * log_softmax with -inf entries, rows that are all -inf and large values. Also the shared
 * elementwise runner (cf_ew_all) over broadcast, transposed, expanded, 0-size, 0-dim and
 * large layouts, used by conform_int.c too. References are loops in double on the host. */
#include "conform.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const em_dtype float_dtypes[2] = {EM_F32, EM_F64};

/* ------------------------------------------------------------------ elementwise runner */

typedef struct ew_layout {
    const char *what;
    int min_arity;
    int nd[3];
    int64_t shape[3][3];
    cf_layout lay[3];
} ew_layout;

#define C CF_CONTIG
#define T CF_TRANSPOSED
#define E CF_EXPANDED
static const ew_layout ew_layouts[] = {
    {"contiguous", 1, {2, 2, 2}, {{3, 4}, {3, 4}, {3, 4}}, {C, C, C}},
    {"1-D, odd length", 1, {1, 1, 1}, {{257}, {257}, {257}}, {C, C, C}},
    {"row broadcast (stride 0)", 2, {2, 1, 2}, {{5, 7}, {7}, {5, 7}}, {C, C, C}},
    {"column broadcast (stride 0)", 2, {2, 2, 1}, {{5, 7}, {5, 1}, {7}}, {C, C, C}},
    {"0-dim broadcast", 2, {2, 0, 0}, {{5, 7}, {0}, {0}}, {C, C, C}},
    {"3-D broadcast", 2, {3, 2, 1}, {{2, 1, 4}, {3, 1}, {4}}, {C, C, C}},
    {"transposed input 0", 1, {2, 2, 2}, {{5, 7}, {5, 7}, {5, 7}}, {T, C, C}},
    {"transposed other inputs", 2, {2, 2, 2}, {{5, 7}, {5, 7}, {5, 7}}, {C, T, T}},
    {"expanded input 0 (stride 0 view)", 1, {2, 2, 2}, {{5, 7}, {5, 7}, {5, 7}}, {E, C, C}},
    {"0-size", 1, {2, 2, 1}, {{0, 3}, {0, 3}, {3}}, {C, C, C}},
    {"0-dim", 1, {0, 0, 0}, {{0}, {0}, {0}}, {C, C, C}},
    {"70x130 transposed, row broadcast", 1, {2, 1, 2}, {{70, 130}, {130}, {70, 130}}, {T, C, T}},
    {"300000 elements", 1, {1, 1, 1}, {{300000}, {300000}, {300000}}, {C, C, C}},
};
#undef C
#undef T
#undef E

static void ew_one(cf_row *r, const cf_ew_op *op, em_dtype dt, double tol, const ew_layout *c)
{
    cf_case_begin();
    em_tensor *in[3] = {0};
    double *x[3] = {0};
    char shapes[200] = "";
    size_t used = 0;
    int ond = 0;
    int64_t oshape[EM_MAX_DIMS];
    for (int i = 0; i < op->arity; i++) {
        em_dtype idt = (op->bool_in >> i & 1) ? EM_BOOL : dt;
        in[i] = cf_make(r, idt, c->nd[i], c->shape[i], c->lay[i], &op->gen[i], &x[i], NULL);
        if (!in[i])
            goto done;
        used += (size_t)snprintf(shapes + used, sizeof shapes - used, "%s%s", i ? ", " : "",
                                 cf_shape_str(c->nd[i], c->shape[i]));
        if (i == 0) {
            ond = c->nd[0];
            memcpy(oshape, c->shape[0], sizeof(int64_t) * (size_t)ond);
        } else if (!cf_broadcast(ond, oshape, c->nd[i], c->shape[i], &ond, oshape)) {
            goto done;
        }
    }
    const char *label = cf_fmt("%s %s %s (%s)", em_dtype_name(dt), op->name, shapes, c->what);
    em_dtype odt = op->out < 0 ? dt : (em_dtype)op->out;
    em_tensor *o = op->call(in, op->p);
    if (!cf_check_shape(r, o, ond, oshape, odt, label))
        goto done;
    double *got = cf_read(r, o, label);
    if (!got)
        goto done;
    int64_t n = cf_numel(ond, oshape);
    double *want = cf_tmp(sizeof(double) * (size_t)n);
    for (int64_t e = 0; e < n; e++) {
        double xs[3];
        for (int i = 0; i < op->arity; i++)
            xs[i] = x[i][cf_bcast_index(e, ond, oshape, c->nd[i], c->shape[i])];
        want[e] = cf_round(odt, op->ref(xs, op->p, odt));
    }
    cf_compare(r, label, cf_bucket(odt), got, want, NULL, n, cf_bucket(odt) < 0 ? 0 : tol);
done:
    cf_case_end();
}

void cf_ew_all(cf_row *r, const cf_ew_op *op, em_dtype dt, double tol)
{
    for (size_t c = 0; c < NELEMS(ew_layouts); c++)
        if (ew_layouts[c].min_arity <= op->arity &&
            !(op->small && cf_numel(ew_layouts[c].nd[0], ew_layouts[c].shape[0]) > 10000))
            ew_one(r, op, dt, tol, &ew_layouts[c]);
}

/* ------------------------------------------------------------------ unary math, pow */

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
CALL(c_log1p, em_log1p(in[0]))
CALL(c_expm1, em_expm1(in[0]))
CALL(c_sin, em_sin(in[0]))
CALL(c_cos, em_cos(in[0]))
CALL(c_erf, em_erf(in[0]))
CALL(c_floor, em_floor(in[0]))
CALL(c_ceil, em_ceil(in[0]))
CALL(c_round, em_round(in[0]))
CALL(c_sign, em_sign(in[0]))
CALL(c_pow, em_pow_tensor(in[0], in[1]))
CALL(c_floor_divide, em_floor_divide(in[0], in[1]))
CALL(c_remainder, em_remainder(in[0], in[1]))
REF(r_log1p, log1p(x[0]))
REF(r_expm1, expm1(x[0]))
REF(r_sin, sin(x[0]))
REF(r_cos, cos(x[0]))
REF(r_erf, erf(x[0]))
REF(r_floor, floor(x[0]))
REF(r_ceil, ceil(x[0]))
REF(r_round, nearbyint(x[0]))
REF(r_sign, x[0] > 0 ? 1 : x[0] < 0 ? -1 : 0)   /* NaN: 0, as PyTorch */
REF(r_pow, pow(x[0], x[1]))

/* PyTorch's remainder and floor division of floats, in the dtype's own precision (so that
 * the quotient's rounding at a boundary is the one the kernel makes). */
static double r_remainder(const double *x, const double *p, em_dtype dt)
{
    (void)p;
    if (dt == EM_F32) {
        float a = (float)x[0], b = (float)x[1], m = fmodf(a, b);
        if (m != 0 && (b < 0) != (m < 0))
            m += b;
        return m;
    }
    if (em_dtype_is_integer(dt)) {
        int64_t a = (int64_t)x[0], b = (int64_t)x[1], m = a % b;
        if (m != 0 && (b < 0) != (m < 0))
            m += b;
        return (double)m;
    }
    double a = x[0], b = x[1], m = fmod(a, b);
    if (m != 0 && (b < 0) != (m < 0))
        m += b;
    return m;
}

#define FLOORDIV(T_, FMOD, FLOOR, COPYSIGN)                                                 \
    do {                                                                                     \
        T_ a = (T_)x[0], b = (T_)x[1];                                                       \
        if (b == 0)                                                                          \
            return a / b;                                                                    \
        T_ mod = FMOD(a, b), div = (a - mod) / b;                                            \
        if (mod != 0 && (b < 0) != (mod < 0))                                                \
            div -= 1;                                                                        \
        if (div == 0)                                                                        \
            return COPYSIGN((T_)0, a / b);                                                   \
        T_ fd = FLOOR(div);                                                                  \
        if (div - fd > (T_)0.5)                                                              \
            fd += 1;                                                                         \
        return fd;                                                                           \
    } while (0)

static double r_floor_divide(const double *x, const double *p, em_dtype dt)
{
    (void)p;
    if (em_dtype_is_integer(dt)) {
        int64_t a = (int64_t)x[0], b = (int64_t)x[1], q = a / b;
        if ((a % b != 0) && ((a < 0) != (b < 0)))
            q--;
        return (double)q;
    }
    if (dt == EM_F32)
        FLOORDIV(float, fmodf, floorf, copysignf);
    FLOORDIV(double, fmod, floor, copysign);
}
#undef FLOORDIV

#define U(lo, hi) {lo, hi, CF_UNIFORM}
#define UN(lo, hi) {lo, hi, CF_UNIFORM | CF_NAN}
#define GN(lo, hi) {lo, hi, CF_GRID | CF_NAN}
static const struct {
    const char *row, *kernels;
    cf_ew_op op;
} math_ops[] = {
    {"log1p", "log1p", {"log1p", 1, {UN(-0.99, 3)}, {0}, c_log1p, r_log1p, -1, 0, false}},
    {"log1p", "log1p", {"log1p of tiny values", 1, {U(-1e-9, 1e-9)}, {0}, c_log1p, r_log1p, -1, 0, false}},
    {"expm1", "expm1", {"expm1", 1, {UN(-3, 3)}, {0}, c_expm1, r_expm1, -1, 0, false}},
    {"expm1", "expm1", {"expm1 of tiny values", 1, {U(-1e-9, 1e-9)}, {0}, c_expm1, r_expm1, -1, 0, false}},
    {"sin", "sin", {"sin", 1, {UN(-7, 7)}, {0}, c_sin, r_sin, -1, 0, false}},
    {"cos", "cos", {"cos", 1, {UN(-7, 7)}, {0}, c_cos, r_cos, -1, 0, false}},
    {"erf", "erf", {"erf", 1, {UN(-4, 4)}, {0}, c_erf, r_erf, -1, 0, false}},
    {"floor", "floor", {"floor", 1, {GN(-3, 3)}, {0}, c_floor, r_floor, -1, 0, false}},
    {"floor", "floor", {"floor", 1, {UN(-3, 3)}, {0}, c_floor, r_floor, -1, 0, false}},
    {"ceil", "ceil", {"ceil", 1, {GN(-3, 3)}, {0}, c_ceil, r_ceil, -1, 0, false}},
    {"ceil", "ceil", {"ceil", 1, {UN(-3, 3)}, {0}, c_ceil, r_ceil, -1, 0, false}},
    /* halves: to even */
    {"round", "round", {"round of halves", 1, {GN(-4, 4)}, {0}, c_round, r_round, -1, 0, false}},
    {"round", "round", {"round", 1, {UN(-4, 4)}, {0}, c_round, r_round, -1, 0, false}},
    {"sign", "sign", {"sign", 1, {GN(-2, 2)}, {0}, c_sign, r_sign, -1, 0, false}},
    {"pow_tensor", "pow", {"pow, positive base", 2, {U(0.1, 3), UN(-2, 2)}, {0}, c_pow, r_pow, -1, 0, false}},
    {"pow_tensor", "pow", {"pow, whole exponents", 2, {UN(-3, 3), {-3, 3, CF_INTS}}, {0}, c_pow, r_pow, -1, 0, false}},
    {"floor_divide", "floor_divide",
     {"floor_divide", 2, {UN(-9, 9), U(0.3, 3)}, {0}, c_floor_divide, r_floor_divide, -1, 0, false}},
    {"floor_divide", "floor_divide",
     {"floor_divide, negative divisors", 2, {U(-9, 9), U(-3, -0.3)}, {0}, c_floor_divide, r_floor_divide, -1, 0, false}},
    {"floor_divide", "floor_divide",
     {"floor_divide, whole values and zero divisors", 2, {{-6, 6, CF_INTS}, {-2, 2, CF_INTS}}, {0},
      c_floor_divide, r_floor_divide, -1, 0, false}},
    {"remainder", "remainder",
     {"remainder", 2, {UN(-9, 9), U(0.3, 3)}, {0}, c_remainder, r_remainder, -1, 0, false}},
    {"remainder", "remainder",
     {"remainder, negative divisors", 2, {U(-9, 9), U(-3, -0.3)}, {0}, c_remainder, r_remainder, -1, 0, false}},
    {"remainder", "remainder",
     {"remainder, whole values", 2, {{-6, 6, CF_INTS}, {-3, 3, CF_INTS}}, {0}, c_remainder, r_remainder, -1, 0, false}},
};
#undef U
#undef UN
#undef GN

/* Values a unary kernel must get exactly right, whatever the layout: -0, NaN, +-inf. */
static void math_specials(cf_row *r, const char *name, cf_ew_call call, cf_ew_ref ref, em_dtype dt)
{
    static const double sp[] = {-0.0, 0.0, NAN, INFINITY, -INFINITY, 0.5, -0.5, 1.5, 2.5, -2.5, 1e-30};
    cf_case_begin();
    const int64_t n = (int64_t)NELEMS(sp);
    em_tensor *t = cf_upload(r, dt, 1, &n, sp);
    const char *label = cf_fmt("%s %s of -0, NaN, +-inf, halves", em_dtype_name(dt), name);
    em_tensor *in[1] = {t};
    em_tensor *o = t ? call(in, NULL) : NULL;
    if (cf_check_shape(r, o, 1, &n, dt, label)) {
        double *got = cf_read(r, o, label), want[NELEMS(sp)];
        for (int64_t i = 0; i < n; i++) {
            double x = cf_round(dt, sp[i]);
            want[i] = cf_round(dt, ref(&x, NULL, dt));
        }
        if (got)
            cf_compare(r, label, cf_bucket(dt), got, want, NULL, n, cf_tol(dt));
        /* sign(-0) is 0; the others keep -0 as PyTorch (not checked by cf_compare) */
        if (got && !strcmp(name, "sign") && signbit(got[0]))
            cf_fail(r, "%s: sign(-0.) is -0., want 0.", label);
    }
    cf_case_end();
}

void cf_run_math(void)
{
    for (size_t k = 0; k < NELEMS(math_ops); k++) {
        cf_row *r = cf_row_get(math_ops[k].row, math_ops[k].kernels);
        if (!r)
            continue;
        for (int d = 0; d < 2; d++) {
            em_dtype dt = float_dtypes[d];
            if (cf_dtype_enabled(dt))
                cf_ew_all(r, &math_ops[k].op, dt, cf_tol(dt));
        }
    }
    static const struct {
        const char *row;
        cf_ew_call call;
        cf_ew_ref ref;
    } sp[] = {{"log1p", c_log1p, r_log1p}, {"expm1", c_expm1, r_expm1}, {"sin", c_sin, r_sin},
              {"cos", c_cos, r_cos}, {"erf", c_erf, r_erf}, {"floor", c_floor, r_floor},
              {"ceil", c_ceil, r_ceil}, {"round", c_round, r_round}, {"sign", c_sign, r_sign}};
    for (size_t k = 0; k < NELEMS(sp); k++) {
        cf_row *r = cf_row_get(sp[k].row, sp[k].row);
        for (int d = 0; r && d < 2; d++)
            if (cf_dtype_enabled(float_dtypes[d]))
                math_specials(r, sp[k].row, sp[k].call, sp[k].ref, float_dtypes[d]);
    }
}

/* ------------------------------------------------------------------ along a dimension */

typedef struct dim_case {
    const char *what;
    int nd;
    int64_t shape[3];
    int dim;
    cf_layout lay;
} dim_case;

static const dim_case dim_cases[] = {
    {"rows", 2, {3, 4}, 1, CF_CONTIG},
    {"columns", 2, {3, 4}, 0, CF_CONTIG},
    {"middle dim", 3, {2, 3, 4}, 1, CF_CONTIG},
    {"middle dim, negative", 3, {2, 3, 4}, -2, CF_CONTIG},
    {"transposed, last dim", 2, {5, 7}, -1, CF_TRANSPOSED},
    {"transposed 3-D, dim 2", 3, {2, 3, 4}, 2, CF_TRANSPOSED},
    {"expanded (stride 0), dim 0", 2, {5, 7}, 0, CF_EXPANDED},
    {"expanded (stride 0), dim 1", 2, {5, 7}, 1, CF_EXPANDED},
    {"dim of size 1", 3, {4, 1, 3}, 1, CF_CONTIG},
    {"1-D", 1, {257}, 0, CF_CONTIG},
    {"0-dim", 0, {0}, 0, CF_CONTIG},
    {"0-size other dim", 2, {0, 5}, 1, CF_CONTIG},
    {"0-size", 1, {0}, 0, CF_CONTIG},
    {"300x1000 transposed, dim 1", 2, {300, 1000}, 1, CF_TRANSPOSED},
    {"300x1000, dim 0", 2, {300, 1000}, 0, CF_CONTIG},
};

/* The (outer, n, inner) split of shape around dim. */
static void split3(const dim_case *c, int64_t *outer, int64_t *n, int64_t *inner, int *dim)
{
    int d = c->nd ? (c->dim < 0 ? c->dim + c->nd : c->dim) : 0;
    *outer = *inner = 1;
    *n = c->nd ? c->shape[d] : 1;
    for (int i = 0; i < d; i++)
        *outer *= c->shape[i];
    for (int i = d + 1; i < c->nd; i++)
        *inner *= c->shape[i];
    *dim = d;
}

/* the shape reduced over dim (kept as 1 with keepdim) */
static int reduced_shape(const dim_case *c, bool keep, int64_t *out)
{
    int d = c->nd ? (c->dim < 0 ? c->dim + c->nd : c->dim) : 0, k = 0;
    for (int i = 0; i < c->nd; i++)
        if (i != d)
            out[k++] = c->shape[i];
        else if (keep)
            out[k++] = 1;
    return k;
}

/* which: 0 max_dim, 1 min_dim, 2 argmax, 3 argmin, 4 prod_dim */
static void run_reduce_dim(cf_row *r, int which, em_dtype dt, const dim_case *c, bool keep, const cf_gen *g)
{
    static const char *const names[] = {"em_max_dim", "em_min_dim", "em_argmax", "em_argmin", "em_prod_dim"};
    cf_case_begin();
    double *x;
    em_tensor *t = cf_make(r, dt, c->nd, c->shape, c->lay, g, &x, NULL);
    int64_t outer, n, inner, oshape[EM_MAX_DIMS];
    int d;
    split3(c, &outer, &n, &inner, &d);
    int ond = reduced_shape(c, keep, oshape);
    const char *label = cf_fmt("%s %s %s dim %d%s (%s)", names[which], em_dtype_name(dt),
                               cf_shape_str(c->nd, c->shape), c->dim, keep ? " keepdim" : "", c->what);
    if (!t)
        goto done;
    if (n == 0 && which < 4) {
        /* no maximum of an empty dim: an error, as PyTorch's */
        em_tensor *v = NULL, *ix = NULL;
        em_status st = which == 0 ? em_max_dim(t, c->dim, keep, &v, &ix)
                     : which == 1 ? em_min_dim(t, c->dim, keep, &v, &ix) : EM_OK;
        if (which >= 2)
            ix = which == 2 ? em_argmax(t, c->dim, keep) : em_argmin(t, c->dim, keep);
        if ((st != EM_OK || !ix) && em_context_status(cf.ctx) != EM_OK)
            cf_pass(r);
        else
            cf_fail(r, "%s: expected an error for an empty dim", label);
        goto done;
    }
    int64_t m = outer * inner;
    double *wv = cf_tmp(sizeof(double) * (size_t)(m ? m : 1));
    double *wi = cf_tmp(sizeof(double) * (size_t)(m ? m : 1));
    double *norm = cf_tmp(sizeof(double) * (size_t)(m ? m : 1));
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double best = 0, prod = 1, absprod = 1;
            int64_t bi = 0;
            for (int64_t j = 0; j < n; j++) {
                double v = x[(o * n + j) * inner + i];
                prod *= v;
                absprod *= fabs(v);
                bool better = which % 2 == 0 ? v > best : v < best;
                if (j == 0 || (!isnan(best) && (isnan(v) || better))) {
                    best = v;
                    bi = j;
                }
            }
            wv[o * inner + i] = which == 4 ? cf_round(dt, prod) : best;
            wi[o * inner + i] = (double)bi;
            norm[o * inner + i] = absprod;
        }
    em_tensor *vals = NULL, *idx = NULL;
    if (which < 2) {
        em_status st = which == 0 ? em_max_dim(t, c->dim, keep, &vals, &idx)
                                  : em_min_dim(t, c->dim, keep, &vals, &idx);
        if (!cf_status(r, st, label))
            goto done;
    } else if (which < 4) {
        idx = which == 2 ? em_argmax(t, c->dim, keep) : em_argmin(t, c->dim, keep);
    } else {
        vals = em_prod_dim(t, c->dim, keep);
    }
    if (vals && cf_check_shape(r, vals, ond, oshape, dt, cf_fmt("%s: values", label))) {
        double *got = cf_read(r, vals, label);
        if (got)
            cf_compare(r, cf_fmt("%s: values", label), cf_bucket(dt), got, wv, which == 4 ? norm : NULL,
                       m, which == 4 ? cf_tol(dt) * sqrt((double)n) : 0);
    }
    if ((which < 4) && cf_check_shape(r, idx, ond, oshape, EM_I64, cf_fmt("%s: indices", label))) {
        double *got = cf_read(r, idx, label);
        if (got)
            cf_compare(r, cf_fmt("%s: indices", label), -1, got, wi, NULL, m, 0);
    }
done:
    cf_case_end();
}

/* which: 0 max, 1 min, 2 prod (whole tensor, 0-dim result) */
static void run_reduce_all(cf_row *r, int which, em_dtype dt, const dim_case *c, const cf_gen *g)
{
    static const char *const names[] = {"em_max", "em_min", "em_prod"};
    cf_case_begin();
    double *x;
    em_tensor *t = cf_make(r, dt, c->nd, c->shape, c->lay, g, &x, NULL);
    int64_t n = cf_numel(c->nd, c->shape);
    const char *label = cf_fmt("%s %s %s (%s)", names[which], em_dtype_name(dt),
                               cf_shape_str(c->nd, c->shape), c->what);
    em_tensor *o = !t ? NULL : which == 0 ? em_max(t) : which == 1 ? em_min(t) : em_prod(t);
    if (t && n == 0 && which < 2) {
        /* an empty tensor has no maximum: an error, as PyTorch */
        if (!o && em_context_status(cf.ctx) != EM_OK)
            cf_pass(r);
        else
            cf_fail(r, "%s: expected an error for an empty tensor", label);
        goto done;
    }
    double want = which == 2 ? 1 : n ? x[0] : 0, norm = 1;
    for (int64_t i = 0; i < n; i++) {
        if (which == 2) {
            want *= x[i];
            norm *= fabs(x[i]);
        } else if (!isnan(want) && (isnan(x[i]) || (which == 0 ? x[i] > want : x[i] < want))) {
            want = x[i];
        }
    }
    want = cf_round(dt, want);
    if (cf_check_shape(r, o, 0, NULL, dt, label)) {
        double *got = cf_read(r, o, label);
        if (got)
            cf_compare(r, label, cf_bucket(dt), got, &want, which == 2 ? &norm : NULL, 1,
                       which == 2 ? cf_tol(dt) * sqrt((double)n + 1) : 0);
    }
done:
    cf_case_end();
}

/* softmax / log_softmax over dim, in double */
static void run_softmax(cf_row *r, bool log_, em_dtype dt, const dim_case *c, const cf_gen *g, int special)
{
    cf_case_begin();
    double *x;
    em_tensor *t = cf_make(r, dt, c->nd, c->shape, c->lay, g, &x, NULL);
    int64_t outer, n, inner;
    int d;
    split3(c, &outer, &n, &inner, &d);
    int64_t total = cf_numel(c->nd, c->shape);
    static const char *const sp_names[] = {"", ", some -inf", ", a row all -inf", ", values near 1000",
                                           ", a +inf"};
    if (t && special && total > 0 && c->lay == CF_CONTIG) {
        /* special 1: -inf entries; 2: the first row all -inf; 3: large values; 4: +inf */
        for (int64_t i = 0; i < total; i++) {
            if (special == 1 && i % 3 == 1)
                x[i] = -INFINITY;
            if (special == 2 && i % inner == 0 && i / (n * inner) == 0)
                x[i] = -INFINITY;   /* the row (outer 0, inner 0) */
            if (special == 3)
                x[i] = cf_round(dt, x[i] + 1000);
            if (special == 4 && i == total / 2)
                x[i] = INFINITY;
        }
        t = cf_upload(r, dt, c->nd, c->shape, x);
    }
    const char *label = cf_fmt("%s %s %s dim %d (%s%s)", log_ ? "em_log_softmax" : "em_softmax",
                               em_dtype_name(dt), cf_shape_str(c->nd, c->shape), c->dim, c->what,
                               sp_names[special]);
    em_tensor *o = !t ? NULL : log_ ? em_log_softmax(t, c->dim) : em_softmax(t, c->dim);
    if (!cf_check_shape(r, o, c->nd, c->shape, dt, label))
        goto done;
    double *got = cf_read(r, o, label);
    double *want = cf_tmp(sizeof(double) * (size_t)(total ? total : 1));
    for (int64_t oo = 0; oo < outer; oo++)
        for (int64_t i = 0; i < inner; i++) {
            double m = -INFINITY, s = 0;
            for (int64_t j = 0; j < n; j++)
                m = fmax(m, x[(oo * n + j) * inner + i]);
            for (int64_t j = 0; j < n; j++)
                s += exp(x[(oo * n + j) * inner + i] - m);
            for (int64_t j = 0; j < n; j++) {
                double v = x[(oo * n + j) * inner + i];
                double y = isinf(m) ? NAN : log_ ? v - m - log(s) : exp(v - m) / s;
                want[(oo * n + j) * inner + i] = cf_round(dt, y);
            }
        }
    if (got)
        cf_compare(r, label, cf_bucket(dt), got, want, NULL, total, cf_tol(dt) * 4);
done:
    cf_case_end();
}

void cf_run_dim(void)
{
    static const cf_gen ties = {-2, 2, CF_GRID}, nans = {-2, 2, CF_GRID | CF_NAN};
    static const cf_gen unit = {0.5, 1.5, CF_UNIFORM}, wide = {-3, 3, CF_UNIFORM};
    cf_row *rmax = cf_row_get("max_dim", "max_dim"), *rmin = cf_row_get("min_dim", "min_dim");
    cf_row *ramax = cf_row_get("argmax", "max_dim"), *ramin = cf_row_get("argmin", "min_dim");
    cf_row *rpd = cf_row_get("prod_dim", "prod"), *rp = cf_row_get("prod", "prod");
    cf_row *rM = cf_row_get("max", "max_dim"), *rm = cf_row_get("min", "min_dim");
    cf_row *rs = cf_row_get("softmax", "softmax"), *rl = cf_row_get("log_softmax", "log_softmax");
    cf_row *rows[] = {rmax, rmin, ramax, ramin, rpd};
    for (int k = 0; k < 2; k++) {
        em_dtype dt = float_dtypes[k];
        if (!cf_dtype_enabled(dt))
            continue;
        for (size_t c = 0; c < NELEMS(dim_cases); c++) {
            const dim_case *dc = &dim_cases[c];
            /* the large cases once: without keepdim, with ties */
            bool large = cf_numel(dc->nd, dc->shape) > 10000;
            for (int which = 0; which < 5; which++) {
                if (!rows[which])
                    continue;
                for (int keep = 0; keep < (large ? 1 : 2); keep++) {
                    if (which == 4) {
                        run_reduce_dim(rows[which], which, dt, dc, keep, &unit);
                    } else {
                        run_reduce_dim(rows[which], which, dt, dc, keep, &ties);
                        if (!large)
                            run_reduce_dim(rows[which], which, dt, dc, keep, &nans);
                    }
                }
            }
            if (rM)
                run_reduce_all(rM, 0, dt, dc, &nans);
            if (rm)
                run_reduce_all(rm, 1, dt, dc, &ties);
            if (rp && cf_numel(dc->nd, dc->shape) < 100000)
                run_reduce_all(rp, 2, dt, dc, &unit);
            for (int special = 0; special < 5; special++) {
                if (special && (dc->lay != CF_CONTIG || large))
                    continue;
                if (rs)
                    run_softmax(rs, false, dt, dc, &wide, special);
                if (rl)
                    run_softmax(rl, true, dt, dc, &wide, special);
            }
        }
    }
}
