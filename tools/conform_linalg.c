/* tools/conform_linalg.c — reductions (sum, mean, over all or chosen dims, keepdim) and
 * matrix products (mm with every transpose, bmm with strided and broadcast batches,
 * matmul's 1-D / batched rules) of ember-conform. Errors are measured against the size of
 * the terms summed (max(1, sum |terms|)) and the tolerance grows with sqrt(k) for k terms:
 * a backend may sum in any order, in any precision at least the output's. */
#include "conform.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const em_dtype float_dtypes[2] = {EM_F32, EM_F64};

static double sum_tol(em_dtype dt, int64_t k)
{
    return cf_tol(dt) * fmax(1.0, sqrt((double)k));
}

/* ------------------------------------------------------------------ reductions */

typedef struct red_case {
    const char *what;
    int nd;
    int64_t shape[3];
    cf_layout lay;
    int ndims;             /* -1: em_sum / em_mean over everything */
    int dims[3];
    bool keep;
} red_case;

#define C CF_CONTIG
#define T CF_TRANSPOSED
#define E CF_EXPANDED
static const red_case red_cases[] = {
    {"3-D", 3, {2, 3, 4}, C, -1, {0}, false},
    {"1-D, odd length", 1, {257}, C, -1, {0}, false},
    {"0-dim", 0, {0}, C, -1, {0}, false},
    {"1 element", 1, {1}, C, -1, {0}, false},
    {"0-size (a sum of nothing is 0)", 2, {0, 3}, C, -1, {0}, false},
    {"70x130 transposed", 2, {70, 130}, T, -1, {0}, false},
    {"expanded (stride 0)", 2, {5, 7}, E, -1, {0}, false},
    {"300000 elements", 1, {300000}, C, -1, {0}, false},
    {"300x1000 transposed", 2, {300, 1000}, T, -1, {0}, false},
    {"dim 0", 3, {2, 3, 4}, C, 1, {0}, false},
    {"dims 1, -1, keepdim", 3, {2, 3, 4}, C, 2, {1, -1}, true},
    {"dims 0, 2", 3, {2, 3, 4}, C, 2, {0, 2}, false},
    {"transposed, dim 1", 3, {2, 3, 4}, T, 1, {1}, false},
    {"transposed, dim -1, keepdim", 3, {2, 3, 4}, T, 1, {-1}, true},
    {"all dims", 2, {3, 4}, C, 2, {0, 1}, false},
    {"size-1 dim", 3, {4, 1, 5}, C, 1, {1}, false},
    {"expanded, dim 0", 2, {5, 7}, E, 1, {0}, false},
    {"expanded, dim 1, keepdim", 2, {5, 7}, E, 1, {1}, true},
    {"70x130, dim 0", 2, {70, 130}, C, 1, {0}, false},
    {"70x130 transposed, dim 1, keepdim", 2, {70, 130}, T, 1, {1}, true},
    {"300x1000, dim 1", 2, {300, 1000}, C, 1, {1}, false},
    {"300x1000 transposed, dim 0", 2, {300, 1000}, T, 1, {0}, false},
    {"0-size input, dim 0 (zeros)", 2, {0, 3}, C, 1, {0}, false},
    {"0-size output, dim 1", 2, {0, 3}, C, 1, {1}, false},
};
#undef C
#undef T
#undef E

static void red_run(cf_row *r, const red_case *c, em_dtype dt, bool mean)
{
    unsigned mask = 0;
    if (c->ndims < 0)
        mask = (1u << c->nd) - 1;
    for (int i = 0; i < c->ndims; i++)
        mask |= 1u << (c->dims[i] < 0 ? c->dims[i] + c->nd : c->dims[i]);
    int64_t k = 1, kshape[EM_MAX_DIMS], oshape[EM_MAX_DIMS];
    int ond = 0;
    for (int d = 0; d < c->nd; d++) {
        bool red = mask >> d & 1;
        kshape[d] = red ? 1 : c->shape[d];
        if (red)
            k *= c->shape[d];
        if (!red || (c->keep && c->ndims >= 0))
            oshape[ond++] = kshape[d];
    }
    if (mean && k == 0)
        return;   /* the mean of nothing is NaN in PyTorch; not a backend matter, not checked */
    cf_case_begin();
    cf_gen g = {-1, 1, CF_UNIFORM};
    double *x;
    em_tensor *t = cf_make(r, dt, c->nd, c->shape, c->lay, &g, &x, NULL);
    if (!t)
        goto done;
    const char *fn = c->ndims < 0 ? (mean ? "em_mean" : "em_sum") : (mean ? "em_mean_dims" : "em_sum_dims");
    const char *label = cf_fmt("%s %s %s (%s)", fn, em_dtype_name(dt), cf_shape_str(c->nd, c->shape), c->what);
    em_tensor *o = c->ndims < 0 ? (mean ? em_mean(t) : em_sum(t))
                 : mean ? em_mean_dims(t, c->ndims, c->dims, c->keep)
                        : em_sum_dims(t, c->ndims, c->dims, c->keep);
    if (!cf_check_shape(r, o, ond, oshape, dt, label))
        goto done;
    double *got = cf_read(r, o, label);
    if (!got)
        goto done;
    int64_t n = cf_numel(c->nd, c->shape), nout = cf_numel(c->nd, kshape);
    double *want = cf_tmp(sizeof(double) * (size_t)nout), *norm = cf_tmp(sizeof(double) * (size_t)nout);
    for (int64_t i = 0; i < n; i++) {
        /* the output element of input element i: its coordinates with reduced ones at 0 */
        int64_t rem = i, o_idx = 0, ostride = 1;
        for (int d = c->nd - 1; d >= 0; d--) {
            int64_t coord = rem % c->shape[d];
            rem /= c->shape[d];
            if (!(mask >> d & 1))
                o_idx += coord * ostride;
            ostride *= kshape[d];
        }
        want[o_idx] += x[i];
        norm[o_idx] += fabs(x[i]);
    }
    for (int64_t i = 0; i < nout; i++) {
        if (mean) {
            want[i] /= (double)k;
            norm[i] /= (double)k;
        }
        want[i] = cf_round(dt, want[i]);
    }
    cf_compare(r, label, cf_bucket(dt), got, want, norm, nout, sum_tol(dt, k));
done:
    cf_case_end();
}

/* Long f32 sums stay accurate: the ABI asks for pairwise or wider accumulation. */
static void sum_accuracy(cf_row *r)
{
    if (!cf_dtype_enabled(EM_F32))
        return;
    cf_case_begin();
    em_tensor *ones = em_ones(cf.ctx, EM_F32, EM_SHAPE(1 << 24));
    double *got = cf_read(r, ones ? em_sum(ones) : NULL, "em_sum f32 of 2^24 ones");
    double want = (double)(1 << 24);
    if (got)
        cf_compare(r, "em_sum f32 of 2^24 ones (must be exact)", 0, got, &want, NULL, 1, 0);
    cf_case_end();
    cf_case_begin();
    em_tensor *tenth = em_full(cf.ctx, EM_F32, EM_SHAPE(1000000), 0.1);
    got = cf_read(r, tenth ? em_sum(tenth) : NULL, "em_sum f32 of 10^6 x 0.1");
    want = 1e6 * (double)0.1f;
    /* a plain f32 running sum is off by about 1 %; pairwise or f64 accumulation by < 1e-5 */
    if (got)
        cf_compare(r, "em_sum f32 of 10^6 x 0.1f (accumulation in pairs or in f64)", 0, got, &want,
                   NULL, 1, CF_TOL_F32);
    cf_case_end();
}

void cf_run_reduce(void)
{
    static const char *const rows[4] = {"sum", "mean", "sum_dims", "mean_dims"};
    for (int w = 0; w < 4; w++) {
        cf_row *r = cf_row_get(rows[w], "sum");
        if (!r)
            continue;
        bool mean = w & 1, dims = w >= 2;
        for (int d = 0; d < 2; d++) {
            if (!cf_dtype_enabled(float_dtypes[d]))
                continue;
            for (size_t c = 0; c < NELEMS(red_cases); c++)
                if ((red_cases[c].ndims >= 0) == dims)
                    red_run(r, &red_cases[c], float_dtypes[d], mean);
        }
        if (w == 0)
            sum_accuracy(r);
    }
}

/* ------------------------------------------------------------------ matrix products */

/* torch.matmul on the host: 1-D operands are promoted (and the dim removed again), batch
 * dims broadcast. Writes out's shape and values (and sum |a*b| per element). */
static void ref_matmul(int na, const int64_t *sa, const double *A, int nb, const int64_t *sb,
                       const double *B, int *ond, int64_t *oshape, double **want, double **norm,
                       int64_t *kout)
{
    int64_t m = na == 1 ? 1 : sa[na - 2], k = sa[na - 1];
    int64_t n = nb == 1 ? 1 : sb[nb - 1];
    int nba = na > 2 ? na - 2 : 0, nbb = nb > 2 ? nb - 2 : 0, nbatch = 0;
    int64_t bshape[EM_MAX_DIMS];
    cf_broadcast(nba, sa, nbb, sb, &nbatch, bshape);
    int64_t batches = cf_numel(nbatch, bshape);
    *ond = 0;
    for (int d = 0; d < nbatch; d++)
        oshape[(*ond)++] = bshape[d];
    if (na > 1)
        oshape[(*ond)++] = m;
    if (nb > 1)
        oshape[(*ond)++] = n;
    double *w = cf_tmp(sizeof(double) * (size_t)(batches * m * n));
    double *z = cf_tmp(sizeof(double) * (size_t)(batches * m * n));
    for (int64_t bi = 0; bi < batches; bi++) {
        const double *a = A + cf_bcast_index(bi, nbatch, bshape, nba, sa) * m * k;
        const double *b = B + cf_bcast_index(bi, nbatch, bshape, nbb, sb) * k * n;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double s = 0, t = 0;
                for (int64_t p = 0; p < k; p++) {
                    s += a[i * k + p] * b[p * n + j];
                    t += fabs(a[i * k + p] * b[p * n + j]);
                }
                w[(bi * m + i) * n + j] = s;
                z[(bi * m + i) * n + j] = t;
            }
    }
    *want = w;
    *norm = z;
    *kout = k;
}

typedef enum { MM, BMM, MATMUL } mm_kind;

static void mm_run(cf_row *r, mm_kind kind, em_dtype dt, int na, const int64_t *sa, cf_layout la,
                   int nb, const int64_t *sb, cf_layout lb, const char *what)
{
    cf_case_begin();
    cf_gen g = {-1, 1, CF_UNIFORM};
    double *A, *B;
    em_tensor *a = cf_make(r, dt, na, sa, la, &g, &A, NULL);
    em_tensor *b = a ? cf_make(r, dt, nb, sb, lb, &g, &B, NULL) : NULL;
    if (!b)
        goto done;
    static const char *const fn[] = {"em_mm", "em_bmm", "em_matmul"};
    const char *label = cf_fmt("%s %s %s%s @ %s%s (%s)", fn[kind], em_dtype_name(dt), cf_shape_str(na, sa),
                               la == CF_TRANSPOSED ? "T" : la == CF_EXPANDED ? "E" : "",
                               cf_shape_str(nb, sb),
                               lb == CF_TRANSPOSED ? "T" : lb == CF_EXPANDED ? "E" : "", what);
    em_tensor *o = kind == MM ? em_mm(a, b) : kind == BMM ? em_bmm(a, b) : em_matmul(a, b);
    int ond;
    int64_t oshape[EM_MAX_DIMS], k;
    double *want, *norm;
    ref_matmul(na, sa, A, nb, sb, B, &ond, oshape, &want, &norm, &k);
    if (!cf_check_shape(r, o, ond, oshape, dt, label))
        goto done;
    double *got = cf_read(r, o, label);
    int64_t n = cf_numel(ond, oshape);
    for (int64_t i = 0; i < n; i++)
        want[i] = cf_round(dt, want[i]);
    if (got)
        cf_compare(r, label, cf_bucket(dt), got, want, norm, n, sum_tol(dt, k));
done:
    cf_case_end();
}

void cf_run_gemm(void)
{
    /* mm: every transpose combination (transposed views reach gemm as flags) */
    cf_row *r = cf_row_get("mm", "gemm");
    static const int64_t mm_shapes[][3] = {
        {1, 1, 1}, {7, 13, 5}, {64, 100, 10}, {33, 65, 17}, {1, 50, 1}, {3, 0, 4}, {0, 5, 3},
        {4, 5, 0}, {70, 130, 90},
    };
    for (int d = 0; r && d < 2; d++) {
        em_dtype dt = float_dtypes[d];
        if (!cf_dtype_enabled(dt))
            continue;
        for (size_t s = 0; s < NELEMS(mm_shapes); s++)
            for (int t = 0; t < 4; t++) {
                int64_t sa[2] = {mm_shapes[s][0], mm_shapes[s][1]};
                int64_t sb[2] = {mm_shapes[s][1], mm_shapes[s][2]};
                mm_run(r, MM, dt, 2, sa, t & 1 ? CF_TRANSPOSED : CF_CONTIG, 2, sb,
                       t & 2 ? CF_TRANSPOSED : CF_CONTIG,
                       mm_shapes[s][1] == 0 ? "k = 0: zeros" : t == 0 ? "row-major" : "transposed operands");
            }
        /* the seed's shapes */
        if (dt == EM_F32)
            mm_run(r, MM, dt, 2, (const int64_t[]){64, 1000}, CF_CONTIG, 2, (const int64_t[]){1000, 100},
                   CF_CONTIG, "the seed's first layer");
        else
            mm_run(r, MM, dt, 2, (const int64_t[]){100, 64}, CF_TRANSPOSED, 2, (const int64_t[]){64, 10},
                   CF_CONTIG, "the seed's weight gradient");
    }

    /* bmm: strided batches, broadcast batches (batch stride 0), empty batches */
    r = cf_row_get("bmm", "gemm");
    static const struct {
        const char *what;
        int64_t a[3], b[3];
        cf_layout la, lb;
    } bmm_cases[] = {
        {"contiguous", {3, 4, 5}, {3, 5, 2}, CF_CONTIG, CF_CONTIG},
        {"transposed a", {3, 4, 5}, {3, 5, 2}, CF_TRANSPOSED, CF_CONTIG},
        {"transposed b", {3, 4, 5}, {3, 5, 2}, CF_CONTIG, CF_TRANSPOSED},
        {"expanded b (batch stride 0)", {3, 4, 5}, {3, 5, 2}, CF_CONTIG, CF_EXPANDED},
        {"expanded a (batch stride 0), transposed b", {3, 4, 5}, {3, 5, 2}, CF_EXPANDED, CF_TRANSPOSED},
        {"0 batches", {0, 3, 4}, {0, 4, 2}, CF_CONTIG, CF_CONTIG},
        {"k = 0: zeros", {2, 3, 0}, {2, 0, 4}, CF_CONTIG, CF_CONTIG},
        {"1 element", {1, 1, 1}, {1, 1, 1}, CF_CONTIG, CF_CONTIG},
        {"4 x 70x130 @ 130x33", {4, 70, 130}, {4, 130, 33}, CF_CONTIG, CF_TRANSPOSED},
    };
    for (int d = 0; r && d < 2; d++) {
        if (!cf_dtype_enabled(float_dtypes[d]))
            continue;
        for (size_t c = 0; c < NELEMS(bmm_cases); c++)
            mm_run(r, BMM, float_dtypes[d], 3, bmm_cases[c].a, bmm_cases[c].la, 3, bmm_cases[c].b,
                   bmm_cases[c].lb, bmm_cases[c].what);
    }

    /* matmul: torch.matmul's rules, composed by the core from views, mm and bmm */
    r = cf_row_get("matmul", "gemm");
    static const struct {
        const char *what;
        int na, nb;
        int64_t a[4], b[4];
        cf_layout la;
    } mat_cases[] = {
        {"1-D @ 1-D: a dot product", 1, 1, {5}, {5}, CF_CONTIG},
        {"2-D @ 1-D", 2, 1, {12, 5}, {5}, CF_CONTIG},
        {"1-D @ 2-D", 1, 2, {5}, {5, 6}, CF_CONTIG},
        {"2-D @ 2-D", 2, 2, {4, 5}, {5, 6}, CF_TRANSPOSED},
        {"batch broadcast", 4, 4, {1, 3, 4, 5}, {3, 1, 5, 2}, CF_CONTIG},
        {"3-D @ 2-D", 3, 2, {3, 4, 5}, {5, 2}, CF_TRANSPOSED},
        {"2-D @ 3-D", 2, 3, {4, 5}, {3, 5, 2}, CF_CONTIG},
        {"4-D @ 1-D", 4, 1, {2, 3, 4, 5}, {5}, CF_CONTIG},
        {"1-D @ 3-D", 1, 3, {5}, {2, 5, 3}, CF_CONTIG},
    };
    for (int d = 0; r && d < 2; d++) {
        if (!cf_dtype_enabled(float_dtypes[d]))
            continue;
        for (size_t c = 0; c < NELEMS(mat_cases); c++)
            mm_run(r, MATMUL, float_dtypes[d], mat_cases[c].na, mat_cases[c].a, mat_cases[c].la,
                   mat_cases[c].nb, mat_cases[c].b, CF_CONTIG, mat_cases[c].what);
    }
}
