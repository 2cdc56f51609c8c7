/* tools/conform_ops.c — the forward op cases of ember-conform, against host references:
 * memory round trips, creation (fill kernel, arange), random numbers (philox.h computed on
 * the host, and agreement with a cpu context), copies and dtype casts, every elementwise
 * op (unary, with scalars, binary, comparisons, where, masked_fill) over a fixed set of
 * layouts (contiguous, broadcast rows / columns / 0-dim with stride 0, transposed and
 * expanded inputs, 0-size, 1-element, 0-dim, 8-D, sizes past the threading and tiling
 * thresholds), and the in-place forms, which are how a kernel meets a non-contiguous
 * output. */
#include "conform.h"

#include <ember/philox.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const em_dtype float_dtypes[2] = {EM_F32, EM_F64};
static const em_dtype all_dtypes[3] = {EM_F32, EM_F64, EM_BOOL};

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define SHAPE(...) {__VA_ARGS__}

/* ------------------------------------------------------------------ memory */

void cf_run_memory(void)
{
    cf_row *r = cf_row_get("memory", "copy_h2d copy_d2h");
    if (!r)
        return;
    static const struct {
        int nd;
        int64_t shape[2];
    } shapes[] = {{0, {0}}, {1, {0}}, {1, {1}}, {1, {257}}, {2, {3, 4}}, {1, {300000}}};
    for (size_t k = 0; k < NELEMS(all_dtypes); k++) {
        em_dtype dt = all_dtypes[k];
        if (!cf_dtype_enabled(dt))
            continue;
        for (size_t s = 0; s < NELEMS(shapes); s++) {
            cf_case_begin();
            cf_gen g = {-3, 3, dt == EM_BOOL ? CF_BOOLS : CF_UNIFORM};
            double *v;
            const char *label = cf_fmt("%s %s from_data / to_host", em_dtype_name(dt),
                                       cf_shape_str(shapes[s].nd, shapes[s].shape));
            em_tensor *t = cf_make(r, dt, shapes[s].nd, shapes[s].shape, CF_CONTIG, &g, &v, NULL);
            double *got = t ? cf_read(r, t, label) : NULL;
            if (got)
                cf_compare(r, label, cf_bucket(dt), got, v, NULL, em_tensor_numel(t), 0);
            /* to another context (a cpu one) and back: buffer copies both ways */
            if (t && cf.cpu) {
                em_tensor *c = em_to_context(t, cf.cpu);
                em_tensor *back = c ? em_to_context(c, cf.ctx) : NULL;
                got = back ? cf_read(r, back, label) : NULL;
                if (!c || !back)
                    cf_fail(r, "%s: em_to_context to cpu and back: %s", label,
                            em_context_status(cf.cpu) ? em_context_error(cf.cpu)
                                                      : em_context_error(cf.ctx));
                else if (got)
                    cf_compare(r, cf_fmt("%s via a cpu context", label), cf_bucket(dt), got, v,
                               NULL, em_tensor_numel(t), 0);
            }
            cf_case_end();
        }
    }
    cf_case_begin();
    cf_status(r, em_synchronize(cf.ctx), "em_synchronize");
    cf_case_end();
}

/* ------------------------------------------------------------------ creation */

typedef struct shape_case {
    int nd;
    int64_t shape[3];
} shape_case;

static const shape_case creation_shapes[] = {
    {2, {2, 3}}, {0, {0}}, {2, {0, 3}}, {1, {1}}, {2, {70, 130}}, {1, {300000}},
};

static void check_filled(cf_row *r, em_tensor *t, em_dtype dt, const shape_case *sc, double value,
                         const char *label)
{
    if (!cf_check_shape(r, t, sc->nd, sc->shape, dt, label))
        return;
    double *got = cf_read(r, t, label);
    if (!got)
        return;
    int64_t n = cf_numel(sc->nd, sc->shape);
    double *want = cf_tmp(sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        want[i] = cf_round(dt, value);
    cf_compare(r, label, cf_bucket(dt), got, want, NULL, n, 0);
}

void cf_run_creation(void)
{
    cf_row *rz = cf_row_get("zeros", "fill"), *ro = cf_row_get("ones", "fill");
    cf_row *rf = cf_row_get("full", "fill"), *rs = cf_row_get("scalar", "fill");
    for (size_t k = 0; k < NELEMS(all_dtypes); k++) {
        em_dtype dt = all_dtypes[k];
        if (!cf_dtype_enabled(dt))
            continue;
        const char *dn = em_dtype_name(dt);
        for (size_t s = 0; s < NELEMS(creation_shapes); s++) {
            const shape_case *sc = &creation_shapes[s];
            const char *sh = cf_shape_str(sc->nd, sc->shape);
            cf_case_begin();
            if (rz) {
                check_filled(rz, em_zeros(cf.ctx, dt, sc->nd, sc->shape), dt, sc, 0,
                             cf_fmt("em_zeros %s %s", dn, sh));
                em_tensor *like = em_ones(cf.ctx, dt, sc->nd, sc->shape);
                if (like)
                    check_filled(rz, em_zeros_like(like), dt, sc, 0, cf_fmt("em_zeros_like %s %s", dn, sh));
            }
            if (ro) {
                check_filled(ro, em_ones(cf.ctx, dt, sc->nd, sc->shape), dt, sc, 1,
                             cf_fmt("em_ones %s %s", dn, sh));
                em_tensor *like = em_zeros(cf.ctx, dt, sc->nd, sc->shape);
                if (like)
                    check_filled(ro, em_ones_like(like), dt, sc, 1, cf_fmt("em_ones_like %s %s", dn, sh));
            }
            if (rf) {
                /* -2.5 (bool: true), NaN (bool: true, NaN != 0), an f32 overflow, 0 */
                const double values[] = {-2.5, NAN, 1e300, 0.0, 1e-30};
                for (size_t v = 0; v < NELEMS(values); v++)
                    check_filled(rf, em_full(cf.ctx, dt, sc->nd, sc->shape, values[v]), dt, sc,
                                 values[v], cf_fmt("em_full %s %s value %g", dn, sh, values[v]));
                em_tensor *like = em_zeros(cf.ctx, dt, sc->nd, sc->shape);
                if (like)
                    check_filled(rf, em_full_like(like, 7.75), dt, sc, 7.75,
                                 cf_fmt("em_full_like %s %s", dn, sh));
            }
            cf_case_end();
        }
        if (rs) {
            cf_case_begin();
            static const shape_case scalar = {0, {0}};
            check_filled(rs, em_scalar(cf.ctx, dt, 3.25), dt, &scalar, 3.25,
                         cf_fmt("em_scalar %s 3.25", dn));
            cf_case_end();
        }
    }

    /* arange: values computed on the host and uploaded (no kernel), start + i * step */
    cf_row *r = cf_row_get("arange", "-");
    if (!r)
        return;
    static const double ranges[][3] = {{0, 1, 0.1}, {5, 0, -2}, {-1, 1, 0.25}, {0, 300000, 1}, {2, 2, 1}};
    for (int k = 0; k < 2; k++) {
        em_dtype dt = float_dtypes[k];
        if (!cf_dtype_enabled(dt))
            continue;
        for (size_t i = 0; i < NELEMS(ranges); i++) {
            cf_case_begin();
            double a = ranges[i][0], b = ranges[i][1], st = ranges[i][2];
            int64_t n = (int64_t)ceil((b - a) / st);
            const char *label = cf_fmt("em_arange %s (%g, %g, %g)", em_dtype_name(dt), a, b, st);
            em_tensor *t = em_arange(cf.ctx, dt, a, b, st);
            if (cf_check_shape(r, t, 1, &n, dt, label)) {
                double *got = cf_read(r, t, label);
                double *want = cf_tmp(sizeof(double) * (size_t)n);
                for (int64_t j = 0; j < n; j++)
                    want[j] = cf_round(dt, a + (double)j * st);
                if (got)
                    cf_compare(r, label, cf_bucket(dt), got, want, NULL, n, cf_tol(dt));
            }
            cf_case_end();
        }
    }
}

/* ------------------------------------------------------------------ random numbers */

typedef struct rng_draw {
    int nd;
    int64_t shape[2];
} rng_draw;

/* Draws in sequence from one seed: the counter advances by numel after each, and 0-size
 * and 0-dim draws take part too. */
static const rng_draw rng_draws[] = {
    {1, {1000}}, {2, {70, 130}}, {0, {0}}, {2, {0, 5}}, {1, {300001}}, {1, {10}},
};

static double philox_value(bool normal, em_dtype dt, uint64_t seed, uint64_t ctr)
{
    em_philox4 r = em_philox4x32_10(seed, ctr);
    if (normal)
        return cf_round(dt, em_philox_normal(r));
    return dt == EM_F32 ? (double)em_philox_uniform01_f32(r) : em_philox_uniform01(r);
}

static em_tensor *draw(em_context *ctx, bool normal, em_dtype dt, const rng_draw *d)
{
    return normal ? em_randn(ctx, dt, d->nd, d->shape) : em_rand(ctx, dt, d->nd, d->shape);
}

/* The values of a tensor of another context (the cpu one). */
static double *read_cpu(cf_row *r, em_tensor *t, const char *label)
{
    if (!t) {
        cf_fail(r, "%s: on the cpu context: %s", label, em_context_error(cf.cpu));
        return NULL;
    }
    int64_t n = em_tensor_numel(t);
    em_dtype dt = em_tensor_dtype(t);
    size_t es = em_dtype_size(dt);
    void *buf = cf_tmp((size_t)n * es);
    double *out = cf_tmp(sizeof(double) * (size_t)n);
    if (em_tensor_to_host(t, buf, (size_t)n * es) != EM_OK) {
        cf_fail(r, "%s: reading the cpu result: %s", label, em_context_error(cf.cpu));
        return NULL;
    }
    for (int64_t i = 0; i < n; i++)
        out[i] = dt == EM_F32 ? ((float *)buf)[i] : ((double *)buf)[i];
    return out;
}

static void rng_sequence(cf_row *r, bool normal, em_dtype dt, uint64_t seed)
{
    const char *fn = normal ? "em_randn" : "em_rand";
    /* uniform numbers are specified bit for bit; normal ones to the last ulp of the
     * device's double log/cos/sqrt */
    double tol = normal ? cf_tol(dt) : 0;
    em_manual_seed(cf.ctx, seed);
    if (cf.cpu)
        em_manual_seed(cf.cpu, seed);
    uint64_t ctr = 0;
    for (size_t i = 0; i < NELEMS(rng_draws); i++) {
        cf_case_begin();
        const rng_draw *d = &rng_draws[i];
        int64_t n = cf_numel(d->nd, d->shape);
        const char *label = cf_fmt("%s %s %s, seed %#llx, counter %llu", fn, em_dtype_name(dt),
                                   cf_shape_str(d->nd, d->shape), (unsigned long long)seed,
                                   (unsigned long long)ctr);
        em_tensor *t = draw(cf.ctx, normal, dt, d);
        double *want = cf_tmp(sizeof(double) * (size_t)n);
        for (int64_t j = 0; j < n; j++)
            want[j] = philox_value(normal, dt, seed, ctr + (uint64_t)j);
        if (cf_check_shape(r, t, d->nd, d->shape, dt, label)) {
            double *got = cf_read(r, t, label);
            if (got && cf_compare(r, label, cf_bucket(dt), got, want, NULL, n, tol) && !normal) {
                for (int64_t j = 0; j < n; j++)
                    if (!(got[j] >= 0 && got[j] < 1)) {
                        cf_fail(r, "%s: element %lld is %.17g, outside [0, 1)", label, (long long)j, got[j]);
                        break;
                    }
            }
            if (got && cf.cpu) {
                /* the same draw on a cpu context gives the same numbers */
                double *c = read_cpu(r, draw(cf.cpu, normal, dt, d), label);
                if (c)
                    cf_compare(r, cf_fmt("%s, against a cpu context", label), cf_bucket(dt), got, c,
                               NULL, n, tol);
            }
        }
        ctr += (uint64_t)n;
        cf_case_end();
    }
}

void cf_run_rng(void)
{
    static const uint64_t seeds[] = {7, 0x9e3779b97f4a7c15ULL};
    for (int normal = 0; normal < 2; normal++) {
        cf_row *r = cf_row_get(normal ? "randn" : "rand", normal ? "rng_normal" : "rng_uniform");
        if (!r)
            continue;
        for (int k = 0; k < 2; k++) {
            em_dtype dt = float_dtypes[k];
            if (!cf_dtype_enabled(dt))
                continue;
            for (size_t s = 0; s < NELEMS(seeds); s++)
                rng_sequence(r, normal != 0, dt, seeds[s]);
            /* two draws of 10 are one draw of 20 */
            cf_case_begin();
            em_manual_seed(cf.ctx, 99);
            em_tensor *a = normal ? em_randn(cf.ctx, dt, EM_SHAPE(10)) : em_rand(cf.ctx, dt, EM_SHAPE(10));
            em_tensor *b = normal ? em_randn(cf.ctx, dt, EM_SHAPE(10)) : em_rand(cf.ctx, dt, EM_SHAPE(10));
            em_manual_seed(cf.ctx, 99);
            em_tensor *c = normal ? em_randn(cf.ctx, dt, EM_SHAPE(20)) : em_rand(cf.ctx, dt, EM_SHAPE(20));
            const char *label = cf_fmt("%s: two draws of 10 after em_manual_seed equal one of 20",
                                       em_dtype_name(dt));
            double *va = cf_read(r, a, label), *vb = cf_read(r, b, label), *vc = cf_read(r, c, label);
            if (va && vb && vc) {
                double *ab = cf_tmp(sizeof(double) * 20);
                memcpy(ab, va, sizeof(double) * 10);
                memcpy(ab + 10, vb, sizeof(double) * 10);
                cf_compare(r, label, cf_bucket(dt), ab, vc, NULL, 20, 0);
            }
            cf_case_end();
        }
        /* statistics of a large draw are sane (mean 0 / 0.5, variance 1 / 1/12) */
        if (cf_dtype_enabled(EM_F32)) {
            cf_case_begin();
            em_manual_seed(cf.ctx, 1);
            em_tensor *big = normal ? em_randn(cf.ctx, EM_F32, EM_SHAPE(100000))
                                    : em_rand(cf.ctx, EM_F32, EM_SHAPE(100000));
            double *v = cf_read(r, big, "statistics of 100000 draws");
            if (v) {
                double m = 0, var = 0;
                for (int i = 0; i < 100000; i++)
                    m += v[i];
                m /= 100000;
                for (int i = 0; i < 100000; i++)
                    var += (v[i] - m) * (v[i] - m);
                var /= 100000;
                double wm = normal ? 0 : 0.5, wv = normal ? 1 : 1.0 / 12;
                double tm = normal ? 0.02 : 0.01, tv = normal ? 0.02 : 0.005;
                if (fabs(m - wm) > tm || fabs(var - wv) > tv)
                    cf_fail(r, "f32 statistics of 100000 draws: mean %g (want %g), variance %g (want %g)",
                            m, wm, var, wv);
                else
                    cf_pass(r);
            }
            cf_case_end();
        }
    }
}

/* ------------------------------------------------------------------ copies and casts */

typedef struct layout_case {
    const char *what;
    int nd;
    int64_t shape[3];
    cf_layout lay;
} layout_case;

static const layout_case copy_layouts[] = {
    {"contiguous", 2, {3, 4}, CF_CONTIG},
    {"transposed", 2, {5, 7}, CF_TRANSPOSED},
    {"expanded (stride 0)", 2, {5, 7}, CF_EXPANDED},
    {"3-D transposed", 3, {2, 3, 4}, CF_TRANSPOSED},
    {"0-dim", 0, {0}, CF_CONTIG},
    {"1 element", 1, {1}, CF_CONTIG},
    {"0-size", 2, {0, 3}, CF_CONTIG},
    {"70x130 transposed", 2, {70, 130}, CF_TRANSPOSED},
    {"300x1000 transposed", 2, {300, 1000}, CF_TRANSPOSED},
};

/* src -> dst conversion as the ABI defines it: to bool, x != 0 (NaN is true). */
static double convert(em_dtype to, double v)
{
    return to == EM_BOOL ? (double)(v != 0) : cf_round(to, v);
}

/* Values with the awkward cases for casts: -0, NaN, tiny, large. */
static void sprinkle_specials(double *v, int64_t n, em_dtype src)
{
    static const double sp[] = {-0.0, NAN, 1e-30, -1e-310, 3e38, 0.0};
    if (src == EM_BOOL)
        return;
    for (int64_t i = 0; i < n; i += 5) {
        double s = sp[(i / 5) % NELEMS(sp)];
        if (src == EM_F32 && !isnan(s) && fabs(s) < 1e-38 && s != 0)
            s = 1e-38;   /* keep f32 inputs representable */
        v[i] = cf_round(src, s);
    }
}

static void run_cast(cf_row *r, em_dtype src, em_dtype dst, const layout_case *c)
{
    cf_case_begin();
    cf_gen g = {-3, 3, src == EM_BOOL ? CF_BOOLS : CF_UNIFORM};
    double *x;
    em_tensor *base;
    em_tensor *t = cf_make(r, src, c->nd, c->shape, c->lay, &g, &x, &base);
    int64_t n = cf_numel(c->nd, c->shape);
    const char *label = cf_fmt("em_to_dtype %s -> %s, %s %s", em_dtype_name(src), em_dtype_name(dst),
                               cf_shape_str(c->nd, c->shape), c->what);
    if (t && c->lay == CF_CONTIG && n > 0) {
        /* rebuild the input with the special values */
        sprinkle_specials(x, n, src);
        t = cf_upload(r, src, c->nd, c->shape, x);
    }
    if (t) {
        em_tensor *o = em_to_dtype(t, dst);
        if (cf_check_shape(r, o, c->nd, c->shape, dst, label)) {
            double *got = cf_read(r, o, label);
            double *want = cf_tmp(sizeof(double) * (size_t)n);
            for (int64_t i = 0; i < n; i++)
                want[i] = convert(dst, x[i]);
            if (got)
                cf_compare(r, label, dst == EM_BOOL ? -1 : cf_bucket(dst), got, want, NULL, n, 0);
        }
    }
    cf_case_end();
}

void cf_run_copy(void)
{
    cf_row *r = cf_row_get("to_dtype", "copy");
    for (size_t a = 0; r && a < NELEMS(all_dtypes); a++)
        for (size_t b = 0; b < NELEMS(all_dtypes); b++) {
            if (!cf_dtype_enabled(all_dtypes[a]) || !cf_dtype_enabled(all_dtypes[b]))
                continue;
            for (size_t c = 0; c < NELEMS(copy_layouts); c++)
                run_cast(r, all_dtypes[a], all_dtypes[b], &copy_layouts[c]);
        }

    /* clone and contiguous: same dtype, any layout in, contiguous out; reading a strided
     * tensor with em_tensor_to_host goes through the same kernel */
    cf_row *rc = cf_row_get("clone", "copy"), *rk = cf_row_get("contiguous", "copy");
    for (size_t k = 0; k < NELEMS(all_dtypes); k++) {
        em_dtype dt = all_dtypes[k];
        if (!cf_dtype_enabled(dt))
            continue;
        for (size_t c = 0; c < NELEMS(copy_layouts); c++) {
            const layout_case *lc = &copy_layouts[c];
            cf_case_begin();
            cf_gen g = {-3, 3, dt == EM_BOOL ? CF_BOOLS : CF_UNIFORM | CF_NAN};
            int64_t n = cf_numel(lc->nd, lc->shape);
            const char *sh = cf_shape_str(lc->nd, lc->shape);
            for (int which = 0; which < 3; which++) {
                cf_row *r2 = which == 0 ? rc : rk;
                if (!r2)
                    continue;
                double *x;
                em_tensor *t = cf_make(r2, dt, lc->nd, lc->shape, lc->lay, &g, &x, NULL);
                if (!t)
                    continue;
                const char *label = cf_fmt("%s %s %s %s",
                                           which == 0 ? "em_clone" : which == 1 ? "em_contiguous"
                                                                               : "em_tensor_to_host of",
                                           em_dtype_name(dt), sh, lc->what);
                em_tensor *o = which == 0 ? em_clone(t) : which == 1 ? em_contiguous(t) : t;
                if (!cf_check_shape(r2, o, lc->nd, lc->shape, dt, label))
                    continue;
                if (which < 2 && !em_tensor_is_contiguous(o)) {
                    cf_fail(r2, "%s: the result is not contiguous", label);
                    continue;
                }
                double *got = cf_read(r2, o, label);
                if (got)
                    cf_compare(r2, label, cf_bucket(dt), got, x, NULL, n, 0);
            }
            cf_case_end();
        }
    }

    /* copy_: broadcasts and casts src into self, also into a non-contiguous self */
    r = cf_row_get("copy_", "copy");
    static const struct {
        const char *what;
        int nd, ond;
        int64_t self[2], other[2];
        cf_layout lself, lother;
    } cases[] = {
        {"row broadcast", 2, 1, {5, 7}, {7}, CF_CONTIG, CF_CONTIG},
        {"transposed self (non-contiguous output)", 2, 2, {5, 7}, {5, 7}, CF_TRANSPOSED, CF_CONTIG},
        {"transposed self and src", 2, 2, {5, 7}, {5, 7}, CF_TRANSPOSED, CF_TRANSPOSED},
        {"transposed self, column broadcast", 2, 2, {5, 7}, {5, 1}, CF_TRANSPOSED, CF_CONTIG},
        {"0-dim src", 2, 0, {4, 3}, {0}, CF_TRANSPOSED, CF_CONTIG},
        {"0-dim self", 0, 0, {0}, {0}, CF_CONTIG, CF_CONTIG},
        {"0-size", 2, 1, {0, 3}, {3}, CF_CONTIG, CF_CONTIG},
        {"70x130 transposed self, row broadcast", 2, 1, {70, 130}, {130}, CF_TRANSPOSED, CF_CONTIG},
    };
    for (size_t a = 0; r && a < NELEMS(all_dtypes); a++)
        for (size_t b = 0; b < NELEMS(all_dtypes); b++) {
            em_dtype ds = all_dtypes[a], dsrc = all_dtypes[b];
            if (!cf_dtype_enabled(ds) || !cf_dtype_enabled(dsrc))
                continue;
            for (size_t c = 0; c < NELEMS(cases); c++) {
                cf_case_begin();
                cf_gen gs = {-9, 9, ds == EM_BOOL ? CF_BOOLS : CF_UNIFORM};
                cf_gen go = {-3, 3, dsrc == EM_BOOL ? CF_BOOLS : CF_UNIFORM | CF_NAN};
                double *xs, *xo;
                em_tensor *base;
                em_tensor *self = cf_make(r, ds, cases[c].nd, cases[c].self, cases[c].lself, &gs, &xs, &base);
                em_tensor *src = self ? cf_make(r, dsrc, cases[c].ond, cases[c].other, cases[c].lother,
                                                &go, &xo, NULL) : NULL;
                const char *label = cf_fmt("em_copy_ %s <- %s, %s <- %s, %s", em_dtype_name(ds),
                                           em_dtype_name(dsrc), cf_shape_str(cases[c].nd, cases[c].self),
                                           cf_shape_str(cases[c].ond, cases[c].other), cases[c].what);
                if (src && cf_status(r, em_copy_(self, src), label)) {
                    double *got = cf_read_base(r, base, cases[c].lself, cases[c].nd, cases[c].self, label);
                    int64_t n = cf_numel(cases[c].nd, cases[c].self);
                    double *want = cf_tmp(sizeof(double) * (size_t)n);
                    for (int64_t i = 0; i < n; i++)
                        want[i] = convert(ds, xo[cf_bcast_index(i, cases[c].nd, cases[c].self,
                                                                cases[c].ond, cases[c].other)]);
                    if (got)
                        cf_compare(r, label, cf_bucket(ds), got, want, NULL, n, 0);
                }
                cf_case_end();
            }
        }
}

/* ------------------------------------------------------------------ elementwise */

typedef em_tensor *(*ew_call)(em_tensor *const *in, const double *p);
typedef double (*ew_ref)(const double *x, const double *p);

typedef struct ew_spec {
    const char *row, *kernels;
    int arity;
    unsigned bool_in;      /* bit i: input i is a bool tensor (condition, mask) */
    bool out_bool;         /* comparisons */
    bool bool_data;        /* the data inputs are bool too: run once, for dtype bool */
    cf_gen gen[3];
    double p[2];
    ew_call call;
    ew_ref ref;
    bool exact_f64;        /* f64 results must be exact (div_scalar: a true division) */
} ew_spec;

#define CALL1(name, expr)                                                                    \
    static em_tensor *name(em_tensor *const *in, const double *p)                            \
    {                                                                                        \
        (void)p;                                                                             \
        return expr;                                                                         \
    }
CALL1(c_neg, em_neg(in[0]))
CALL1(c_exp, em_exp(in[0]))
CALL1(c_log, em_log(in[0]))
CALL1(c_sqrt, em_sqrt(in[0]))
CALL1(c_abs, em_abs(in[0]))
CALL1(c_relu, em_relu(in[0]))
CALL1(c_tanh, em_tanh(in[0]))
CALL1(c_sigmoid, em_sigmoid(in[0]))
CALL1(c_add_scalar, em_add_scalar(in[0], p[0]))
CALL1(c_sub_scalar, em_sub_scalar(in[0], p[0]))
CALL1(c_rsub_scalar, em_rsub_scalar(in[0], p[0]))
CALL1(c_mul_scalar, em_mul_scalar(in[0], p[0]))
CALL1(c_div_scalar, em_div_scalar(in[0], p[0]))
CALL1(c_rdiv_scalar, em_rdiv_scalar(in[0], p[0]))
CALL1(c_pow, em_pow(in[0], p[0]))
CALL1(c_clamp, em_clamp(in[0], p[0], p[1]))
CALL1(c_clamp_min, em_clamp_min(in[0], p[0]))
CALL1(c_clamp_max, em_clamp_max(in[0], p[1]))
CALL1(c_add, em_add(in[0], in[1]))
CALL1(c_sub, em_sub(in[0], in[1]))
CALL1(c_mul, em_mul(in[0], in[1]))
CALL1(c_div, em_div(in[0], in[1]))
CALL1(c_maximum, em_maximum(in[0], in[1]))
CALL1(c_minimum, em_minimum(in[0], in[1]))
CALL1(c_lt, em_lt(in[0], in[1]))
CALL1(c_le, em_le(in[0], in[1]))
CALL1(c_gt, em_gt(in[0], in[1]))
CALL1(c_ge, em_ge(in[0], in[1]))
CALL1(c_eq, em_eq(in[0], in[1]))
CALL1(c_ne, em_ne(in[0], in[1]))
CALL1(c_lt_s, em_lt_scalar(in[0], p[0]))
CALL1(c_le_s, em_le_scalar(in[0], p[0]))
CALL1(c_gt_s, em_gt_scalar(in[0], p[0]))
CALL1(c_ge_s, em_ge_scalar(in[0], p[0]))
CALL1(c_eq_s, em_eq_scalar(in[0], p[0]))
CALL1(c_ne_s, em_ne_scalar(in[0], p[0]))
CALL1(c_where, em_where(in[0], in[1], in[2]))
CALL1(c_masked_fill, em_masked_fill(in[0], in[1], p[0]))

#define REF(name, expr)                                                                      \
    static double name(const double *x, const double *p)                                     \
    {                                                                                        \
        (void)p;                                                                             \
        return expr;                                                                         \
    }
REF(r_neg, -x[0])
REF(r_exp, exp(x[0]))
REF(r_log, log(x[0]))
REF(r_sqrt, sqrt(x[0]))
REF(r_abs, fabs(x[0]))
REF(r_relu, isnan(x[0]) ? x[0] : x[0] > 0 ? x[0] : 0)
REF(r_tanh, tanh(x[0]))
REF(r_sigmoid, 1.0 / (1.0 + exp(-x[0])))
REF(r_add_scalar, x[0] + p[0])
REF(r_sub_scalar, x[0] - p[0])
REF(r_rsub_scalar, p[0] - x[0])
REF(r_mul_scalar, x[0] * p[0])
REF(r_div_scalar, x[0] / p[0])
REF(r_rdiv_scalar, p[0] / x[0])
REF(r_pow, pow(x[0], p[0]))
REF(r_clamp, isnan(x[0]) ? x[0] : fmin(fmax(x[0], p[0]), p[1]))
REF(r_clamp_min, isnan(x[0]) ? x[0] : fmax(x[0], p[0]))
REF(r_clamp_max, isnan(x[0]) ? x[0] : fmin(x[0], p[1]))
REF(r_add, x[0] + x[1])
REF(r_sub, x[0] - x[1])
REF(r_mul, x[0] * x[1])
REF(r_div, x[0] / x[1])
REF(r_maximum, isnan(x[0]) || isnan(x[1]) ? NAN : fmax(x[0], x[1]))
REF(r_minimum, isnan(x[0]) || isnan(x[1]) ? NAN : fmin(x[0], x[1]))
REF(r_lt, x[0] < x[1])
REF(r_le, x[0] <= x[1])
REF(r_gt, x[0] > x[1])
REF(r_ge, x[0] >= x[1])
REF(r_eq, x[0] == x[1])
REF(r_ne, x[0] != x[1])
REF(r_lt_s, x[0] < p[0])
REF(r_le_s, x[0] <= p[0])
REF(r_gt_s, x[0] > p[0])
REF(r_ge_s, x[0] >= p[0])
REF(r_eq_s, x[0] == p[0])
REF(r_ne_s, x[0] != p[0])
REF(r_where, x[0] != 0 ? x[1] : x[2])
REF(r_masked_fill, x[1] != 0 ? p[0] : x[0])

#define U(lo, hi) {lo, hi, CF_UNIFORM}
#define UN(lo, hi) {lo, hi, CF_UNIFORM | CF_NAN}
#define GN(lo, hi) {lo, hi, CF_GRID | CF_NAN}
#define B {0, 1, CF_BOOLS}

static const ew_spec ew_specs[] = {
    /* unary */
    {"neg", "neg", 1, 0, false, false, {UN(-3, 3)}, {0}, c_neg, r_neg, false},
    {"exp", "exp", 1, 0, false, false, {U(-5, 5)}, {0}, c_exp, r_exp, false},
    {"log", "log", 1, 0, false, false, {U(0.01, 10)}, {0}, c_log, r_log, false},
    {"sqrt", "sqrt", 1, 0, false, false, {U(0, 9)}, {0}, c_sqrt, r_sqrt, false},
    {"abs", "abs", 1, 0, false, false, {UN(-3, 3)}, {0}, c_abs, r_abs, false},
    {"relu", "relu", 1, 0, false, false, {UN(-3, 3)}, {0}, c_relu, r_relu, false},
    {"tanh", "tanh", 1, 0, false, false, {U(-4, 4)}, {0}, c_tanh, r_tanh, false},
    {"sigmoid", "sigmoid", 1, 0, false, false, {U(-30, 30)}, {0}, c_sigmoid, r_sigmoid, false},
    /* with scalars */
    {"add_scalar", "add_scalar", 1, 0, false, false, {UN(-3, 3)}, {1.5}, c_add_scalar, r_add_scalar, false},
    {"sub_scalar", "add_scalar", 1, 0, false, false, {UN(-3, 3)}, {1.5}, c_sub_scalar, r_sub_scalar, false},
    {"rsub_scalar", "rsub_scalar", 1, 0, false, false, {UN(-3, 3)}, {1.5}, c_rsub_scalar, r_rsub_scalar, false},
    {"mul_scalar", "mul_scalar", 1, 0, false, false, {UN(-3, 3)}, {-3}, c_mul_scalar, r_mul_scalar, false},
    {"div_scalar", "div_scalar", 1, 0, false, false, {UN(-3, 3)}, {3}, c_div_scalar, r_div_scalar, true},
    {"rdiv_scalar", "rdiv_scalar", 1, 0, false, false, {U(0.25, 4)}, {2}, c_rdiv_scalar, r_rdiv_scalar, false},
    {"pow", "pow_scalar", 1, 0, false, false, {U(-2, 2)}, {2}, c_pow, r_pow, false},
    {"pow", "pow_scalar", 1, 0, false, false, {U(-2, 2)}, {3}, c_pow, r_pow, false},
    {"pow", "pow_scalar", 1, 0, false, false, {U(-2, 2)}, {1}, c_pow, r_pow, false},
    {"pow", "pow_scalar", 1, 0, false, false, {U(-2, 2)}, {0}, c_pow, r_pow, false},
    {"pow", "pow_scalar", 1, 0, false, false, {U(0.25, 4)}, {0.5}, c_pow, r_pow, false},
    {"pow", "pow_scalar", 1, 0, false, false, {U(0.25, 4)}, {-1}, c_pow, r_pow, false},
    {"pow", "pow_scalar", 1, 0, false, false, {U(0.25, 4)}, {1.7}, c_pow, r_pow, false},
    {"pow", "pow_scalar", 1, 0, false, false, {U(0.25, 4)}, {-2}, c_pow, r_pow, false},
    {"clamp", "clamp", 1, 0, false, false, {UN(-3, 3)}, {0, 2}, c_clamp, r_clamp, false},
    {"clamp", "clamp", 1, 0, false, false, {UN(-3, 3)}, {-0.5, 0.7}, c_clamp, r_clamp, false},
    /* min > max: everything becomes max */
    {"clamp", "clamp", 1, 0, false, false, {UN(-3, 3)}, {3, 1}, c_clamp, r_clamp, false},
    {"clamp_min", "clamp", 1, 0, false, false, {UN(-3, 3)}, {1, INFINITY}, c_clamp_min, r_clamp_min, false},
    {"clamp_max", "clamp", 1, 0, false, false, {UN(-3, 3)}, {-INFINITY, 1}, c_clamp_max, r_clamp_max, false},
    /* binary */
    {"add", "add", 2, 0, false, false, {UN(-2, 2), UN(-2, 2)}, {0}, c_add, r_add, false},
    {"sub", "sub", 2, 0, false, false, {UN(-2, 2), UN(-2, 2)}, {0}, c_sub, r_sub, false},
    {"mul", "mul", 2, 0, false, false, {UN(-2, 2), UN(-2, 2)}, {0}, c_mul, r_mul, false},
    {"div", "div", 2, 0, false, false, {UN(-2, 2), U(0.5, 2.5)}, {0}, c_div, r_div, false},
    {"maximum", "maximum", 2, 0, false, false, {GN(-2, 2), GN(-2, 2)}, {0}, c_maximum, r_maximum, false},
    {"minimum", "minimum", 2, 0, false, false, {GN(-2, 2), GN(-2, 2)}, {0}, c_minimum, r_minimum, false},
    /* comparisons: ties and NaN; float and bool inputs */
    {"lt", "lt", 2, 0, true, false, {GN(-2, 2), GN(-2, 2)}, {0}, c_lt, r_lt, false},
    {"le", "le", 2, 0, true, false, {GN(-2, 2), GN(-2, 2)}, {0}, c_le, r_le, false},
    {"gt", "gt", 2, 0, true, false, {GN(-2, 2), GN(-2, 2)}, {0}, c_gt, r_gt, false},
    {"ge", "ge", 2, 0, true, false, {GN(-2, 2), GN(-2, 2)}, {0}, c_ge, r_ge, false},
    {"eq", "eq", 2, 0, true, false, {GN(-2, 2), GN(-2, 2)}, {0}, c_eq, r_eq, false},
    {"ne", "ne", 2, 0, true, false, {GN(-2, 2), GN(-2, 2)}, {0}, c_ne, r_ne, false},
    {"lt", "lt", 2, 0, true, true, {B, B}, {0}, c_lt, r_lt, false},
    {"le", "le", 2, 0, true, true, {B, B}, {0}, c_le, r_le, false},
    {"gt", "gt", 2, 0, true, true, {B, B}, {0}, c_gt, r_gt, false},
    {"ge", "ge", 2, 0, true, true, {B, B}, {0}, c_ge, r_ge, false},
    {"eq", "eq", 2, 0, true, true, {B, B}, {0}, c_eq, r_eq, false},
    {"ne", "ne", 2, 0, true, true, {B, B}, {0}, c_ne, r_ne, false},
    /* against a scalar: the scalar becomes a 0-dim tensor (fill), broadcast */
    {"lt_scalar", "fill lt", 1, 0, true, false, {GN(-2, 2)}, {0.5}, c_lt_s, r_lt_s, false},
    {"le_scalar", "fill le", 1, 0, true, false, {GN(-2, 2)}, {0.5}, c_le_s, r_le_s, false},
    {"gt_scalar", "fill gt", 1, 0, true, false, {GN(-2, 2)}, {0.5}, c_gt_s, r_gt_s, false},
    {"ge_scalar", "fill ge", 1, 0, true, false, {GN(-2, 2)}, {0.5}, c_ge_s, r_ge_s, false},
    {"eq_scalar", "fill eq", 1, 0, true, false, {GN(-2, 2)}, {0.5}, c_eq_s, r_eq_s, false},
    {"ne_scalar", "fill ne", 1, 0, true, false, {GN(-2, 2)}, {0.5}, c_ne_s, r_ne_s, false},
    /* selection */
    {"where", "where", 3, 1, false, false, {B, UN(-3, 3), UN(-3, 3)}, {0}, c_where, r_where, false},
    {"where", "where", 3, 1, false, true, {B, B, B}, {0}, c_where, r_where, false},
    {"masked_fill", "masked_fill", 2, 2, false, false, {UN(-3, 3), B}, {-7}, c_masked_fill, r_masked_fill, false},
    {"masked_fill", "masked_fill", 2, 2, false, true, {B, B}, {1}, c_masked_fill, r_masked_fill, false},
};

#undef U
#undef UN
#undef GN
#undef B

typedef struct ew_case {
    const char *what;
    int min_arity;         /* only for ops with at least this many inputs */
    int nd[3];
    int64_t shape[3][EM_MAX_DIMS];
    cf_layout lay[3];
} ew_case;

#define C CF_CONTIG
#define T CF_TRANSPOSED
#define E CF_EXPANDED
static const ew_case ew_cases[] = {
    {"contiguous", 1, {2, 2, 2}, {{3, 4}, {3, 4}, {3, 4}}, {C, C, C}},
    {"1-D, odd length", 1, {1, 1, 1}, {{257}, {257}, {257}}, {C, C, C}},
    {"row broadcast (stride 0)", 2, {2, 1, 2}, {{5, 7}, {7}, {5, 7}}, {C, C, C}},
    {"column broadcast (stride 0)", 2, {2, 2, 1}, {{5, 7}, {5, 1}, {7}}, {C, C, C}},
    {"0-dim broadcast", 2, {2, 0, 0}, {{5, 7}, {0}, {0}}, {C, C, C}},
    {"two-sided broadcast", 2, {2, 2, 2}, {{3, 1}, {1, 5}, {3, 5}}, {C, C, C}},
    {"3-D broadcast", 2, {3, 2, 1}, {{2, 1, 4}, {3, 1}, {4}}, {C, C, C}},
    {"4-D broadcast", 2, {4, 3, 2}, {{2, 3, 4, 5}, {3, 1, 5}, {4, 5}}, {C, C, C}},
    {"transposed input 0", 1, {2, 2, 2}, {{5, 7}, {5, 7}, {5, 7}}, {T, C, C}},
    {"transposed other inputs", 2, {2, 2, 2}, {{5, 7}, {5, 7}, {5, 7}}, {C, T, T}},
    {"expanded input 0 (stride 0 view)", 1, {2, 2, 2}, {{5, 7}, {5, 7}, {5, 7}}, {E, C, C}},
    {"expanded other inputs (stride 0 view)", 2, {2, 2, 2}, {{5, 7}, {5, 7}, {5, 7}}, {C, E, E}},
    {"transposed input 0, expanded others", 2, {2, 2, 2}, {{5, 7}, {5, 7}, {5, 7}}, {T, E, E}},
    {"0-size", 1, {2, 2, 1}, {{0, 3}, {0, 3}, {3}}, {C, C, C}},
    {"1 element", 1, {1, 1, 1}, {{1}, {1}, {1}}, {C, C, C}},
    {"0-dim", 1, {0, 0, 0}, {{0}, {0}, {0}}, {C, C, C}},
    {"8-D with size-1 dims", 1, {8, 7, 8},
     {{2, 1, 2, 1, 2, 1, 2, 1}, {2, 1, 2, 1, 2, 1, 2}, {2, 2, 2, 2, 2, 2, 2, 2}}, {C, C, C}},
    {"70x130 transposed, row broadcast", 1, {2, 1, 2}, {{70, 130}, {130}, {70, 130}}, {T, C, T}},
    {"300000 elements", 1, {1, 1, 1}, {{300000}, {300000}, {300000}}, {C, C, C}},
    {"300x1000 transposed", 1, {2, 2, 1}, {{300, 1000}, {300, 1000}, {1000}}, {T, C, C}},
};
#undef C
#undef T
#undef E

/* The scalar parameters of a spec, for labels: " (min 0, max 2)", " (1.5)", "". */
static const char *spec_note(const ew_spec *s)
{
    if (s->call == c_clamp)
        return cf_fmt(" (min %g, max %g)", s->p[0], s->p[1]);
    if (s->call == c_clamp_max)
        return cf_fmt(" (max %g)", s->p[1]);
    if (s->call == c_masked_fill)
        return cf_fmt(" (value %g)", s->p[0]);
    if (s->arity == 1 && (s->p[0] != 0 || s->call == c_pow))
        return cf_fmt(" (%g)", s->p[0]);
    return "";
}

static void ew_run(const ew_spec *s, cf_row *r, em_dtype dt, const ew_case *c)
{
    cf_case_begin();
    em_tensor *in[3] = {0};
    double *x[3] = {0};
    char shapes[200] = "";
    size_t used = 0;
    int ond = 0;
    int64_t oshape[EM_MAX_DIMS];
    for (int i = 0; i < s->arity; i++) {
        em_dtype idt = (s->bool_in >> i & 1) ? EM_BOOL : dt;
        in[i] = cf_make(r, idt, c->nd[i], c->shape[i], c->lay[i], &s->gen[i], &x[i], NULL);
        if (!in[i])
            goto done;
        used += (size_t)snprintf(shapes + used, sizeof shapes - used, "%s%s", i ? ", " : "",
                                 cf_shape_str(c->nd[i], c->shape[i]));
        if (i == 0) {
            ond = c->nd[0];
            memcpy(oshape, c->shape[0], sizeof(int64_t) * (size_t)ond);
        } else if (!cf_broadcast(ond, oshape, c->nd[i], c->shape[i], &ond, oshape)) {
            goto done;   /* not a case for this arity */
        }
    }
    const char *label = cf_fmt("%s %s%s %s (%s)", em_dtype_name(dt), s->row, spec_note(s), shapes, c->what);
    em_dtype odt = s->out_bool ? EM_BOOL : dt;
    em_tensor *o = s->call(in, s->p);
    if (!cf_check_shape(r, o, ond, oshape, odt, label))
        goto done;
    double *got = cf_read(r, o, label);
    if (!got)
        goto done;
    int64_t n = cf_numel(ond, oshape);
    double *want = cf_tmp(sizeof(double) * (size_t)n);
    for (int64_t e = 0; e < n; e++) {
        double xs[3];
        for (int i = 0; i < s->arity; i++)
            xs[i] = x[i][cf_bcast_index(e, ond, oshape, c->nd[i], c->shape[i])];
        want[e] = cf_round(odt, s->ref(xs, s->p));
    }
    double tol = odt == EM_BOOL || (s->exact_f64 && dt == EM_F64) ? 0 : cf_tol(dt);
    cf_compare(r, label, cf_bucket(dt), got, want, NULL, n, tol);
done:
    cf_case_end();
}

void cf_run_elementwise(void)
{
    for (size_t k = 0; k < NELEMS(ew_specs); k++) {
        const ew_spec *s = &ew_specs[k];
        cf_row *r = cf_row_get(s->row, s->kernels);
        if (!r)
            continue;
        for (int d = 0; d < 2; d++) {
            em_dtype dt = s->bool_data ? EM_BOOL : float_dtypes[d];
            if (s->bool_data ? d > 0 : !cf_dtype_enabled(dt))
                continue;
            for (size_t c = 0; c < NELEMS(ew_cases); c++)
                if (ew_cases[c].min_arity <= s->arity)
                    ew_run(s, r, dt, &ew_cases[c]);
        }
    }
    /* em_clamp with a NaN bound is refused (use clamp_min / clamp_max) */
    cf_row *r = cf_row_get("clamp", "clamp");
    if (r) {
        cf_case_begin();
        em_tensor *x = em_zeros(cf.ctx, EM_F32, EM_SHAPE(3));
        if (x && !em_clamp(x, NAN, 1) && em_context_status(cf.ctx) == EM_ERR_INVALID)
            cf_pass(r);
        else
            cf_fail(r, "em_clamp(x, NaN, 1): expected EM_ERR_INVALID, got %s",
                    em_status_name(em_context_status(cf.ctx)));
        cf_case_end();
    }
}

/* ------------------------------------------------------------------ in-place */

typedef struct ip_spec {
    const char *row, *kernels;
    int arity;             /* 1: self (and scalars); 2: self and another tensor */
    bool other_bool;
    cf_gen gself, gother;
    double p[2];
    em_status (*call)(em_tensor *self, em_tensor *other, const double *p);
    ew_ref ref;            /* x[0]: self before, x[1]: other */
} ip_spec;

static em_status i_add(em_tensor *s, em_tensor *o, const double *p) { (void)p; return em_add_(s, o); }
static em_status i_sub(em_tensor *s, em_tensor *o, const double *p) { (void)p; return em_sub_(s, o); }
static em_status i_mul(em_tensor *s, em_tensor *o, const double *p) { (void)p; return em_mul_(s, o); }
static em_status i_add_scalar(em_tensor *s, em_tensor *o, const double *p) { (void)o; return em_add_scalar_(s, p[0]); }
static em_status i_mul_scalar(em_tensor *s, em_tensor *o, const double *p) { (void)o; return em_mul_scalar_(s, p[0]); }
static em_status i_clamp(em_tensor *s, em_tensor *o, const double *p) { (void)o; return em_clamp_(s, p[0], p[1]); }
static em_status i_masked_fill(em_tensor *s, em_tensor *o, const double *p) { return em_masked_fill_(s, o, p[0]); }
static em_status i_fill(em_tensor *s, em_tensor *o, const double *p) { (void)o; return em_fill_(s, p[0]); }
static em_status i_zero(em_tensor *s, em_tensor *o, const double *p) { (void)o; (void)p; return em_zero_(s); }
REF(r_fill, p[0])
REF(r_zero, 0)

static const ip_spec ip_specs[] = {
    {"add_", "add", 2, false, {-2, 2, CF_UNIFORM | CF_NAN}, {-2, 2, CF_UNIFORM}, {0}, i_add, r_add},
    {"sub_", "sub", 2, false, {-2, 2, CF_UNIFORM | CF_NAN}, {-2, 2, CF_UNIFORM}, {0}, i_sub, r_sub},
    {"mul_", "mul", 2, false, {-2, 2, CF_UNIFORM | CF_NAN}, {-2, 2, CF_UNIFORM}, {0}, i_mul, r_mul},
    {"add_scalar_", "add_scalar", 1, false, {-2, 2, CF_UNIFORM}, {0, 0, 0}, {2.5}, i_add_scalar, r_add_scalar},
    {"mul_scalar_", "mul_scalar", 1, false, {-2, 2, CF_UNIFORM}, {0, 0, 0}, {-1.5}, i_mul_scalar, r_mul_scalar},
    {"clamp_", "clamp", 1, false, {-2, 2, CF_UNIFORM | CF_NAN}, {0, 0, 0}, {-0.5, 0.5}, i_clamp, r_clamp},
    {"masked_fill_", "masked_fill", 2, true, {-2, 2, CF_UNIFORM | CF_NAN}, {0, 1, CF_BOOLS}, {4}, i_masked_fill, r_masked_fill},
    {"fill_", "fill", 1, false, {-2, 2, CF_UNIFORM}, {0, 0, 0}, {-3.25}, i_fill, r_fill},
    {"zero_", "fill", 1, false, {-2, 2, CF_UNIFORM | CF_NAN}, {0, 0, 0}, {0}, i_zero, r_zero},
};

typedef struct ip_case {
    const char *what;
    int nd, ond;
    int64_t self[2], other[2];
    cf_layout lself, lother;
    int alias;            /* 1: other is self; 2: other is self transposed (overlap) */
} ip_case;

static const ip_case ip_cases[] = {
    {"contiguous self, row-broadcast other", 2, 1, {5, 7}, {7}, CF_CONTIG, CF_CONTIG, 0},
    {"transposed self (non-contiguous output)", 2, 2, {5, 7}, {5, 7}, CF_TRANSPOSED, CF_CONTIG, 0},
    {"transposed self and other", 2, 2, {5, 7}, {5, 7}, CF_TRANSPOSED, CF_TRANSPOSED, 0},
    {"transposed self, column-broadcast other", 2, 2, {5, 7}, {5, 1}, CF_TRANSPOSED, CF_CONTIG, 0},
    {"transposed self, 0-dim other", 2, 0, {5, 7}, {0}, CF_TRANSPOSED, CF_CONTIG, 0},
    {"0-dim self", 0, 0, {0}, {0}, CF_CONTIG, CF_CONTIG, 0},
    {"0-size self", 2, 1, {0, 3}, {3}, CF_CONTIG, CF_CONTIG, 0},
    {"70x130 transposed self, row-broadcast other", 2, 1, {70, 130}, {130}, CF_TRANSPOSED, CF_CONTIG, 0},
    {"300x1000 transposed self", 2, 2, {300, 1000}, {300, 1000}, CF_TRANSPOSED, CF_CONTIG, 0},
    {"other is self (exact alias)", 2, 2, {4, 6}, {4, 6}, CF_TRANSPOSED, CF_CONTIG, 1},
    {"other is self transposed (partial overlap)", 2, 2, {6, 6}, {6, 6}, CF_CONTIG, CF_CONTIG, 2},
};

static void ip_run(const ip_spec *s, cf_row *r, em_dtype dt, const ip_case *c)
{
    cf_case_begin();
    double *xs, *xo = NULL;
    em_tensor *base, *other = NULL;
    em_tensor *self = cf_make(r, dt, c->nd, c->self, c->lself, &s->gself, &xs, &base);
    if (!self)
        goto done;
    int64_t n = cf_numel(c->nd, c->self);
    if (s->arity == 2) {
        if (c->alias == 1) {
            other = self;
            xo = xs;
        } else if (c->alias == 2) {
            other = em_t(self);
            xo = cf_tmp(sizeof(double) * (size_t)n);
            for (int64_t i = 0; i < n; i++)
                xo[i] = xs[(i % c->self[1]) * c->self[1] + i / c->self[1]];
        } else {
            other = cf_make(r, s->other_bool ? EM_BOOL : dt, c->ond, c->other, c->lother, &s->gother,
                            &xo, NULL);
        }
        if (!cf_got(r, other, "making the other operand"))
            goto done;
    }
    const char *label = cf_fmt("%s %s %s%s%s (%s)", em_dtype_name(dt), s->row,
                               cf_shape_str(c->nd, c->self), s->arity == 2 ? ", " : "",
                               s->arity == 2 ? cf_shape_str(c->alias ? c->nd : c->ond,
                                                            c->alias ? c->self : c->other) : "",
                               c->what);
    if (!cf_status(r, s->call(self, other, s->p), label))
        goto done;
    double *got = cf_read_base(r, base, c->lself, c->nd, c->self, label);
    if (!got)
        goto done;
    double *want = cf_tmp(sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        double x[2] = {xs[i], 0};   /* self's values before the op */
        if (s->arity == 2)
            x[1] = c->alias ? xo[i] : xo[cf_bcast_index(i, c->nd, c->self, c->ond, c->other)];
        want[i] = cf_round(dt, s->ref(x, s->p));
    }
    cf_compare(r, label, cf_bucket(dt), got, want, NULL, n, cf_tol(dt));
done:
    cf_case_end();
}

void cf_run_inplace(void)
{
    for (size_t k = 0; k < NELEMS(ip_specs); k++) {
        const ip_spec *s = &ip_specs[k];
        cf_row *r = cf_row_get(s->row, s->kernels);
        if (!r)
            continue;
        for (int d = 0; d < 2; d++) {
            if (!cf_dtype_enabled(float_dtypes[d]))
                continue;
            for (size_t c = 0; c < NELEMS(ip_cases); c++) {
                /* aliasing cases need a second operand; broadcast others need one too */
                if (s->arity == 1 && (ip_cases[c].alias || ip_cases[c].lother == CF_TRANSPOSED))
                    continue;
                if (s->other_bool && ip_cases[c].alias)
                    continue;
                ip_run(s, r, float_dtypes[d], &ip_cases[c]);
            }
        }
    }
}
