/* tools/conform_norm.c — ember-conform cases for pooling and normalisation (ABI 1.4's
 * avg_pool2d kernels, and the compositions of batch_norm and layer_norm): em_avg_pool2d over
 * strides, padding, ceil_mode, count_include_pad and divisor_override, em_adaptive_avg_pool2d
 * (shrinking, overlapping and growing windows), em_batch_norm in training (with the running
 * statistics' update) and eval, em_layer_norm; contiguous and transposed inputs, compared with
 * reference loops in double on the host; em_gradcheck of each (rows "<op>.grad"); and
 * em_dropout_functional against the context's uniform draws for the same seed. */
#include "conform.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------ pooling */

typedef struct pool_case {
    int64_t shape[4];
    int64_t k[2], s[2], p[2];   /* s[0] == 0: stride = kernel */
    bool ceil, cip;
    int64_t divisor;
    bool adaptive;              /* k: the output size */
} pool_case;

static const pool_case pool_cases[] = {
    {{2, 3, 6, 5}, {2, 2}, {0, 0}, {0, 0}, false, true, 0, false},
    {{2, 3, 6, 5}, {3, 3}, {2, 2}, {1, 1}, false, true, 0, false},
    {{2, 3, 6, 5}, {3, 3}, {2, 2}, {1, 1}, false, false, 0, false},
    {{2, 2, 7, 6}, {3, 3}, {2, 2}, {1, 1}, true, false, 0, false},
    {{2, 2, 7, 6}, {2, 2}, {3, 3}, {0, 0}, true, true, 0, false},
    {{2, 3, 6, 5}, {2, 3}, {2, 1}, {1, 1}, false, true, 3, false},
    {{8, 16, 28, 28}, {2, 2}, {0, 0}, {0, 0}, false, true, 0, false},   /* threaded */
    {{2, 2, 7, 6}, {3, 4}, {0, 0}, {0, 0}, false, false, 0, true},
    {{2, 3, 6, 5}, {4, 4}, {0, 0}, {0, 0}, false, false, 0, true},
    {{2, 3, 5, 5}, {7, 8}, {0, 0}, {0, 0}, false, false, 0, true},
    {{8, 16, 14, 14}, {5, 5}, {0, 0}, {0, 0}, false, false, 0, true},
};

static int64_t pool_out(int64_t in, int64_t k, int64_t p, int64_t s, bool ceil)
{
    int64_t num = in + 2 * p - k + (ceil ? s - 1 : 0);
    int64_t o = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
    if (ceil && (o - 1) * s >= in + p)
        o--;
    return o;
}

static void window(const pool_case *c, int dim, int64_t I, int64_t O, int64_t o, int64_t *s,
                   int64_t *e, int64_t *pool)
{
    if (c->adaptive) {
        *s = (o * I) / O;
        *e = ((o + 1) * I + O - 1) / O;
        *pool = *e - *s;
        return;
    }
    int64_t st = c->s[0] ? c->s[dim] : c->k[dim];
    int64_t a = o * st - c->p[dim], b = a + c->k[dim] < I + c->p[dim] ? a + c->k[dim] : I + c->p[dim];
    *pool = b - a;
    *s = a > 0 ? a : 0;
    *e = b < I ? b : I;
}

static void pool_run(cf_row *r, const pool_case *c, em_dtype dt, cf_layout lay)
{
    cf_case_begin();
    const cf_gen g = {-2, 2, CF_UNIFORM};
    double *xv = NULL;
    int64_t shape[4];
    memcpy(shape, c->shape, sizeof shape);
    em_tensor *x = cf_make(r, dt, 4, shape, lay, &g, &xv, NULL);
    const int64_t H = shape[2], W = shape[3];
    int64_t OH, OW;
    em_tensor *y;
    const char *label;
    if (c->adaptive) {
        OH = c->k[0], OW = c->k[1];
        y = x ? em_adaptive_avg_pool2d(x, c->k) : NULL;
        label = cf_fmt("%s %s -> %lldx%lld%s", em_dtype_name(dt), cf_shape_str(4, shape),
                       (long long)OH, (long long)OW, lay == CF_TRANSPOSED ? ", transposed" : "");
    } else {
        int64_t sh = c->s[0] ? c->s[0] : c->k[0], sw = c->s[0] ? c->s[1] : c->k[1];
        OH = pool_out(H, c->k[0], c->p[0], sh, c->ceil);
        OW = pool_out(W, c->k[1], c->p[1], sw, c->ceil);
        y = x ? em_avg_pool2d(x, c->k, c->s[0] ? c->s : NULL, c->p, c->ceil, c->cip, c->divisor)
              : NULL;
        label = cf_fmt("%s %s kernel %lldx%lld stride %lldx%lld padding %lldx%lld ceil %d "
                       "count_include_pad %d divisor %lld%s", em_dtype_name(dt),
                       cf_shape_str(4, shape), (long long)c->k[0], (long long)c->k[1],
                       (long long)sh, (long long)sw, (long long)c->p[0], (long long)c->p[1],
                       c->ceil, c->cip, (long long)c->divisor,
                       lay == CF_TRANSPOSED ? ", transposed" : "");
    }
    int64_t oshape[4] = {shape[0], shape[1], OH, OW};
    if (!cf_got(r, y, label) || !cf_check_shape(r, y, 4, oshape, dt, label))
        goto done;
    double *got = cf_read(r, y, label);
    if (!got)
        goto done;
    int64_t n = cf_numel(4, oshape), B = shape[0] * shape[1];
    double *want = cf_tmp((size_t)n * sizeof(double));
    for (int64_t b = 0; b < B; b++)
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t hs, he, hp, ws, we, wp;
                window(c, 0, H, OH, oh, &hs, &he, &hp);
                window(c, 1, W, OW, ow, &ws, &we, &wp);
                double acc = 0;
                for (int64_t h = hs; h < he; h++)
                    for (int64_t w = ws; w < we; w++)
                        acc += xv[(b * H + h) * W + w];
                double div = c->divisor ? (double)c->divisor
                             : c->cip || c->adaptive ? (double)(hp * wp)
                                                     : (double)((he - hs) * (we - ws));
                want[(b * OH + oh) * OW + ow] = acc / div;
            }
    cf_compare(r, label, cf_bucket(dt), got, want, NULL, n, cf_tol(dt) * 4);
done:
    cf_case_end();
}

/* ------------------------------------------------------------------ normalisation */

static void bn_run(cf_row *r, em_dtype dt, int nd, const int64_t *shape, bool training,
                   cf_layout lay)
{
    cf_case_begin();
    const cf_gen g = {-2, 2, CF_UNIFORM}, pg = {0.5, 1.5, CF_UNIFORM};
    int64_t C = shape[1];
    double *xv = NULL, *wv = NULL, *bv = NULL, *mv = NULL, *vv = NULL;
    em_tensor *x = cf_make(r, dt, nd, shape, lay, &g, &xv, NULL);
    em_tensor *w = cf_make(r, dt, 1, &C, CF_CONTIG, &pg, &wv, NULL);
    em_tensor *b = cf_make(r, dt, 1, &C, CF_CONTIG, &g, &bv, NULL);
    em_tensor *rm = cf_make(r, dt, 1, &C, CF_CONTIG, &g, &mv, NULL);
    em_tensor *rv = cf_make(r, dt, 1, &C, CF_CONTIG, &pg, &vv, NULL);
    const double eps = 1e-5, mom = 0.2;
    const char *label = cf_fmt("%s %s %s%s", em_dtype_name(dt), cf_shape_str(nd, shape),
                               training ? "training" : "eval",
                               lay == CF_TRANSPOSED ? ", transposed" : "");
    em_tensor *y = x && w && b && rm && rv ? em_batch_norm(x, rm, rv, w, b, training, mom, eps)
                                           : NULL;
    if (!cf_got(r, y, label) || !cf_check_shape(r, y, nd, shape, dt, label))
        goto done;
    int64_t n = cf_numel(nd, shape), inner = n / (shape[0] * C), cnt = n / C;
    double *want = cf_tmp((size_t)n * sizeof(double));
    double *new_m = cf_tmp((size_t)C * sizeof(double)), *new_v = cf_tmp((size_t)C * sizeof(double));
    for (int64_t c = 0; c < C; c++) {
        double mean = mv[c], var = vv[c];
        if (training) {
            double s = 0, q = 0;
            for (int64_t i = 0; i < shape[0]; i++)
                for (int64_t j = 0; j < inner; j++)
                    s += xv[(i * C + c) * inner + j];
            mean = s / (double)cnt;
            for (int64_t i = 0; i < shape[0]; i++)
                for (int64_t j = 0; j < inner; j++) {
                    double d = xv[(i * C + c) * inner + j] - mean;
                    q += d * d;
                }
            var = q / (double)cnt;
            new_m[c] = (1 - mom) * mv[c] + mom * mean;
            new_v[c] = (1 - mom) * vv[c] + mom * q / (double)(cnt - 1);
        } else {
            new_m[c] = mv[c];
            new_v[c] = vv[c];
        }
        for (int64_t i = 0; i < shape[0]; i++)
            for (int64_t j = 0; j < inner; j++) {
                int64_t k = (i * C + c) * inner + j;
                want[k] = (xv[k] - mean) / sqrt(var + eps) * wv[c] + bv[c];
            }
    }
    double *got = cf_read(r, y, label);
    if (got)
        cf_compare(r, label, cf_bucket(dt), got, want, NULL, n, cf_tol(dt) * 8);
    const char *lm = cf_fmt("%s, running_mean", label), *lv = cf_fmt("%s, running_var", label);
    if ((got = cf_read(r, rm, lm)))
        cf_compare(r, lm, cf_bucket(dt), got, new_m, NULL, C, cf_tol(dt) * 8);
    if ((got = cf_read(r, rv, lv)))
        cf_compare(r, lv, cf_bucket(dt), got, new_v, NULL, C, cf_tol(dt) * 8);
done:
    cf_case_end();
}

static void ln_run(cf_row *r, em_dtype dt, int nd, const int64_t *shape, int k, cf_layout lay)
{
    cf_case_begin();
    const cf_gen g = {-2, 2, CF_UNIFORM};
    double *xv = NULL, *wv = NULL, *bv = NULL;
    const int64_t *ns = shape + nd - k;
    em_tensor *x = cf_make(r, dt, nd, shape, lay, &g, &xv, NULL);
    em_tensor *w = cf_make(r, dt, k, ns, CF_CONTIG, &g, &wv, NULL);
    em_tensor *b = cf_make(r, dt, k, ns, CF_CONTIG, &g, &bv, NULL);
    const double eps = 1e-5;
    const char *label = cf_fmt("%s %s over %d dims%s", em_dtype_name(dt), cf_shape_str(nd, shape),
                               k, lay == CF_TRANSPOSED ? ", transposed" : "");
    em_tensor *y = x && w && b ? em_layer_norm(x, k, ns, w, b, eps) : NULL;
    if (!cf_got(r, y, label) || !cf_check_shape(r, y, nd, shape, dt, label))
        goto done;
    int64_t n = cf_numel(nd, shape), m = cf_numel(k, ns), rows = n / m;
    double *want = cf_tmp((size_t)n * sizeof(double));
    for (int64_t i = 0; i < rows; i++) {
        const double *row = xv + i * m;
        double s = 0, q = 0;
        for (int64_t j = 0; j < m; j++)
            s += row[j];
        double mean = s / (double)m;
        for (int64_t j = 0; j < m; j++)
            q += (row[j] - mean) * (row[j] - mean);
        double rstd = 1 / sqrt(q / (double)m + eps);
        for (int64_t j = 0; j < m; j++)
            want[i * m + j] = (row[j] - mean) * rstd * wv[j] + bv[j];
    }
    double *got = cf_read(r, y, label);
    if (got)
        cf_compare(r, label, cf_bucket(dt), got, want, NULL, n, cf_tol(dt) * 8);
done:
    cf_case_end();
}

/* ------------------------------------------------------------------ gradients */

static em_tensor *gc_avg_pool(em_tensor *const *in, int n, void *u)
{
    (void)n;
    (void)u;
    return em_avg_pool2d(in[0], (const int64_t[]){3, 2}, (const int64_t[]){2, 1},
                         (const int64_t[]){1, 1}, true, false, 0);
}

static em_tensor *gc_adaptive(em_tensor *const *in, int n, void *u)
{
    (void)n;
    (void)u;
    return em_adaptive_avg_pool2d(in[0], (const int64_t[]){3, 4});
}

static em_tensor *gc_batch_norm(em_tensor *const *in, int n, void *u)
{
    (void)n;
    (void)u;
    return em_batch_norm(in[0], NULL, NULL, in[1], in[2], true, 0.1, 1e-5);
}

static em_tensor *gc_layer_norm(em_tensor *const *in, int n, void *u)
{
    (void)n;
    (void)u;
    return em_layer_norm(in[0], 2, (const int64_t[]){3, 4}, in[1], in[2], 1e-5);
}

typedef struct gc_case {
    const char *row, *kernels;
    em_gradcheck_fn fn;
    int n_in;
    int nd[3];
    int64_t shape[3][4];
} gc_case;

static const gc_case gc_cases[] = {
    {"avg_pool2d.grad", "avg_pool2d_grad", gc_avg_pool, 1, {4}, {{2, 2, 5, 6}}},
    {"adaptive_avg_pool2d.grad", "avg_pool2d_grad", gc_adaptive, 1, {4}, {{2, 2, 5, 6}}},
    {"batch_norm.grad", "sum mul sub", gc_batch_norm, 3, {4, 1, 1}, {{3, 2, 2, 3}, {2}, {2}}},
    {"layer_norm.grad", "sum mul sub", gc_layer_norm, 3, {3, 2, 2}, {{2, 3, 4}, {3, 4}, {3, 4}}},
};

static void gc_run(cf_row *r, const gc_case *c, em_dtype dt)
{
    cf_case_begin();
    em_tensor *in[3];
    for (int i = 0; i < c->n_in; i++) {
        cf_gen g = {0.5, 1.5, CF_UNIFORM};
        in[i] = cf_make(r, dt, c->nd[i], c->shape[i], i == 0 ? CF_TRANSPOSED : CF_CONTIG, &g,
                        NULL, NULL);
        in[i] = in[i] && i == 0 ? em_detach(in[i]) : in[i];
        if (!in[i] || !cf_status(r, em_tensor_set_requires_grad(in[i], true), "requires_grad"))
            goto done;
    }
    bool f64 = dt == EM_F64;
    double atol = f64 ? CF_GC_ATOL_F64 : CF_GC_ATOL_F32, rtol = f64 ? CF_GC_RTOL_F64 : CF_GC_RTOL_F32;
    em_gradcheck_result res;
    em_status st = em_gradcheck(c->fn, in, c->n_in, NULL, 1e-6, atol, rtol, &res);
    const char *label = cf_fmt("em_gradcheck %s %s, transposed", em_dtype_name(dt), c->row);
    if (st != EM_OK) {
        cf_fail(r, "%s: %s: %s", label, em_status_name(st),
                res.message[0] ? res.message : em_context_error(cf.ctx));
        goto done;
    }
    cf_note(r, cf_bucket(dt), res.max_rel_err, atol + rtol);
    if (res.passed)
        cf_pass(r);
    else
        cf_fail(r, "%s: %s (largest |analytic - numeric| %g, at input %d element %lld)", label,
                res.message, res.max_abs_err, res.worst_input, (long long)res.worst_index);
done:
    cf_case_end();
}

/* em_dropout_functional: after one seed, the elements kept are those where the context's
 * uniform draw of the same shape is >= p, scaled by 1 / (1 - p) (rounded to the dtype) */
static void dropout_run(cf_row *r, em_dtype dt, double p)
{
    cf_case_begin();
    const int64_t shape[2] = {37, 41};
    const cf_gen g = {-2, 2, CF_UNIFORM};
    double *xv = NULL;
    em_tensor *x = cf_make(r, dt, 2, shape, CF_TRANSPOSED, &g, &xv, NULL);
    const char *label = cf_fmt("%s %s p = %g, transposed", em_dtype_name(dt), cf_shape_str(2, shape), p);
    em_manual_seed(cf.ctx, 5);
    em_tensor *u = em_rand(cf.ctx, dt, 2, shape);
    em_manual_seed(cf.ctx, 5);
    em_tensor *y = x ? em_dropout_functional(x, p, true) : NULL;
    double *uv = u ? cf_read(r, u, label) : NULL;
    if (!cf_got(r, y, label) || !uv)
        goto done;
    int64_t n = shape[0] * shape[1];
    double *want = cf_tmp((size_t)n * sizeof(double));
    double scale = cf_round(dt, p < 1 ? 1 / (1 - p) : 0);
    for (int64_t i = 0; i < n; i++)
        want[i] = p == 1 || uv[i] < p ? 0.0 : cf_round(dt, xv[i] * scale);
    double *got = cf_read(r, y, label);
    if (got)
        cf_compare(r, label, cf_bucket(dt), got, want, NULL, n, cf_tol(dt));
done:
    cf_case_end();
}

void cf_run_norm(void)
{
    static const em_dtype dts[2] = {EM_F32, EM_F64};
    cf_row *rp = cf_row_get("avg_pool2d", "avg_pool2d");
    cf_row *ra = cf_row_get("adaptive_avg_pool2d", "avg_pool2d");
    cf_row *rb = cf_row_get("batch_norm", "sum mul add sqrt");
    cf_row *rl = cf_row_get("layer_norm", "sum mul sub sqrt");
    static const int64_t bn_shapes[3][4] = {{4, 3}, {3, 4, 5}, {2, 3, 4, 5}};
    static const int64_t ln_shape[3] = {2, 3, 8};
    for (int d = 0; d < 2; d++) {
        em_dtype dt = dts[d];
        if (!cf_dtype_enabled(dt))
            continue;
        for (int lay = 0; lay < 2; lay++) {
            cf_layout l = lay ? CF_TRANSPOSED : CF_CONTIG;
            for (size_t k = 0; k < NELEMS(pool_cases); k++) {
                cf_row *r = pool_cases[k].adaptive ? ra : rp;
                if (r)
                    pool_run(r, &pool_cases[k], dt, l);
            }
            for (int s = 0; rb && s < 3; s++)
                for (int t = 0; t < 2; t++)
                    bn_run(rb, dt, s + 2, bn_shapes[s], t == 0, l);
            for (int k = 1; rl && k <= 2; k++)
                ln_run(rl, dt, 3, ln_shape, k, l);
        }
    }
    cf_row *rd = cf_row_get("dropout", "rng_uniform ge mul");
    for (int d = 0; rd && d < 2; d++)
        if (cf_dtype_enabled(dts[d]))
            for (int k = 0; k < 3; k++)
                dropout_run(rd, dts[d], (const double[]){0.25, 0.6, 1.0}[k]);
    static const em_dtype gdts[2] = {EM_F64, EM_F32};
    for (size_t k = 0; k < NELEMS(gc_cases); k++) {
        cf_row *r = cf_row_get(gc_cases[k].row, gc_cases[k].kernels);
        if (!r)
            continue;
        for (int d = 0; d < 2; d++)
            if (cf_dtype_enabled(gdts[d]))
                gc_run(r, &gc_cases[k], gdts[d]);
    }
}
