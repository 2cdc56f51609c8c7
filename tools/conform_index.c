/* tools/conform_index.c — ember-conform cases for indexing and joining (ABI 1.2):
 * index_select, gather, scatter_add (and scatter_add_ into a non-contiguous self), cat and
 * stack, on every dtype their kernels take, with non-contiguous sources and indices
 * (transposed, expanded with stride 0, strided slices), repeated indices, empty index
 * lists and pieces, negative dims, and sizes past the threading thresholds; an index out of
 * range or negative must be an error that changes nothing. References are host loops. */
#include "conform.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const em_dtype data_dtypes[6] = {EM_F32, EM_F64, EM_BOOL, EM_I64, EM_I32, EM_U8};

static cf_gen gen_for(em_dtype dt)
{
    if (dt == EM_BOOL)
        return (cf_gen){0, 1, CF_BOOLS};
    if (em_dtype_is_integer(dt))
        return (cf_gen){dt == EM_U8 ? 0 : -50, 50, CF_INTS};
    return (cf_gen){-3, 3, CF_UNIFORM | CF_NAN};
}

static void unravel(int64_t lin, int nd, const int64_t *shape, int64_t *q)
{
    for (int d = nd - 1; d >= 0; d--) {
        q[d] = shape[d] ? lin % shape[d] : 0;
        lin = shape[d] ? lin / shape[d] : 0;
    }
}

static int64_t ravel(const int64_t *q, int nd, const int64_t *shape)
{
    int64_t lin = 0;
    for (int d = 0; d < nd; d++)
        lin = lin * shape[d] + q[d];
    return lin;
}

/* An i64 index tensor of the given values, contiguous or as a strided view (every other
 * element of a twice longer tensor: a non-contiguous index). */
static em_tensor *index_tensor(cf_row *r, int nd, const int64_t *shape, const double *v, bool strided)
{
    if (!strided || nd == 0)
        return cf_upload(r, EM_I64, nd, shape, v);
    int64_t n = cf_numel(nd, shape), wide[EM_MAX_DIMS];
    memcpy(wide, shape, sizeof(int64_t) * (size_t)nd);
    wide[nd - 1] *= 2;
    double *w = cf_tmp(sizeof(double) * (size_t)(2 * n + 1));
    for (int64_t i = 0; i < 2 * n; i++)
        w[i] = i % 2 ? -12345 : v[i / 2];   /* garbage between: must never be read */
    em_tensor *b = cf_upload(r, EM_I64, nd, wide, w);
    em_tensor *t = b ? em_slice(b, nd - 1, 0, EM_END, 2) : NULL;
    return cf_got(r, t, "a strided index view") ? t : NULL;
}

/* ------------------------------------------------------------------ index_select */

static const struct {
    const char *what;
    int nd;
    int64_t shape[3];
    cf_layout lay;
    int dim;
    int m;              /* index length */
    bool strided_index;
} is_cases[] = {
    {"rows", 2, {4, 5}, CF_CONTIG, 0, 6, false},
    {"columns, transposed source", 2, {4, 5}, CF_TRANSPOSED, 1, 3, false},
    {"middle dim, strided index", 3, {2, 5, 3}, CF_CONTIG, -2, 7, true},
    {"expanded source (stride 0)", 2, {5, 7}, CF_EXPANDED, 1, 4, false},
    {"empty index", 2, {4, 5}, CF_CONTIG, 0, 0, false},
    {"1-D", 1, {9}, CF_CONTIG, 0, 12, false},
    {"0-size other dim", 2, {0, 5}, CF_CONTIG, 1, 3, false},
    {"300x1000 transposed, dim 0", 2, {300, 1000}, CF_TRANSPOSED, 0, 500, false},
};

static void run_index_select(cf_row *r, em_dtype dt)
{
    for (size_t c = 0; c < NELEMS(is_cases); c++) {
        cf_case_begin();
        int nd = is_cases[c].nd, d = is_cases[c].dim < 0 ? is_cases[c].dim + nd : is_cases[c].dim;
        const int64_t *sh = is_cases[c].shape;
        cf_gen g = gen_for(dt);
        double *x;
        em_tensor *t = cf_make(r, dt, nd, sh, is_cases[c].lay, &g, &x, NULL);
        int64_t m = is_cases[c].m, size = sh[d];
        double *iv = cf_tmp(sizeof(double) * (size_t)(m + 1));
        for (int64_t j = 0; j < m; j++)
            iv[j] = floor(cf_uniform(0, (double)size));   /* repeats likely */
        em_tensor *idx = t ? index_tensor(r, 1, &m, iv, is_cases[c].strided_index) : NULL;
        const char *label = cf_fmt("em_index_select %s %s dim %d, %lld indices (%s)", em_dtype_name(dt),
                                   cf_shape_str(nd, sh), is_cases[c].dim, (long long)m, is_cases[c].what);
        em_tensor *o = idx ? em_index_select(t, is_cases[c].dim, idx) : NULL;
        int64_t os[3];
        memcpy(os, sh, sizeof os);
        os[d] = m;
        if (cf_check_shape(r, o, nd, os, dt, label)) {
            int64_t n = cf_numel(nd, os), q[3];
            double *want = cf_tmp(sizeof(double) * (size_t)(n + 1)), *got = cf_read(r, o, label);
            for (int64_t e = 0; e < n; e++) {
                unravel(e, nd, os, q);
                q[d] = (int64_t)iv[q[d]];
                want[e] = x[ravel(q, nd, sh)];
            }
            if (got)
                cf_compare(r, label, cf_bucket(dt), got, want, NULL, n, 0);
        }
        cf_case_end();
    }
}

/* ------------------------------------------------------------------ gather, scatter_add */

static const struct {
    const char *what;
    int nd;
    int64_t shape[3], ishape[3];
    int dim;
    cf_layout lay, ilay;
    bool src_larger;    /* scatter_add: src larger than the index in every dim */
} gs_cases[] = {
    {"rows", 2, {4, 5}, {3, 5}, 0, CF_CONTIG, CF_CONTIG, false},
    {"columns, smaller index", 2, {4, 5}, {2, 7}, 1, CF_CONTIG, CF_CONTIG, true},
    {"transposed source", 2, {5, 6}, {4, 3}, 1, CF_TRANSPOSED, CF_CONTIG, false},
    {"transposed index", 2, {5, 6}, {5, 4}, 0, CF_CONTIG, CF_TRANSPOSED, true},
    {"3-D, dim -1", 3, {2, 3, 4}, {2, 2, 6}, -1, CF_CONTIG, CF_CONTIG, false},
    {"3-D, dim 1, both transposed", 3, {2, 4, 3}, {2, 3, 3}, 1, CF_TRANSPOSED, CF_TRANSPOSED, true},
    {"expanded source (stride 0)", 2, {5, 7}, {5, 3}, 1, CF_EXPANDED, CF_CONTIG, false},
    {"1-D", 1, {6}, {10}, 0, CF_CONTIG, CF_CONTIG, false},
    {"0-size index", 2, {4, 5}, {0, 5}, 0, CF_CONTIG, CF_CONTIG, false},
    {"300x1000, dim 1", 2, {300, 1000}, {300, 700}, 1, CF_CONTIG, CF_TRANSPOSED, false},
};

/* which: 0 gather, 1 scatter_add, 2 scatter_add_ (into a transposed self) */
static void run_gather_scatter(cf_row *r, em_dtype dt, int which)
{
    static const char *const fn[] = {"em_gather", "em_scatter_add", "em_scatter_add_"};
    for (size_t c = 0; c < NELEMS(gs_cases); c++) {
        cf_case_begin();
        int nd = gs_cases[c].nd, dim = gs_cases[c].dim, d = dim < 0 ? dim + nd : dim;
        const int64_t *sh = gs_cases[c].shape, *ish = gs_cases[c].ishape;
        cf_gen g = gen_for(dt);
        if (which && !em_dtype_is_integer(dt))
            g.kind = CF_UNIFORM;   /* sums of NaN are NaN whatever the order: keep them finite */
        double *x, *iv, *sv = NULL;
        em_tensor *base = NULL;
        /* scatter_add_ writes into a transposed self (an expanded one would overlap) */
        cf_layout lay = which == 2 ? (nd >= 2 ? CF_TRANSPOSED : CF_CONTIG) : gs_cases[c].lay;
        em_tensor *t = cf_make(r, dt, nd, sh, lay, &g, &x, &base);
        int64_t ni = cf_numel(nd, ish);
        /* indices in [0, size of dim) of the source (few distinct ones: collisions) */
        cf_gen ig = {0, (double)(sh[d] - 1), CF_INTS};
        em_tensor *idx = t ? cf_make(r, EM_I64, nd, ish, gs_cases[c].ilay, &ig, &iv, NULL) : NULL;
        int64_t ssh[3];
        memcpy(ssh, ish, sizeof ssh);
        if (gs_cases[c].src_larger)
            for (int k = 0; k < nd; k++)
                ssh[k] += 1;
        em_tensor *src = NULL;
        if (idx && which)
            src = cf_make(r, dt, nd, ssh, gs_cases[c].lay == CF_TRANSPOSED ? CF_TRANSPOSED : CF_CONTIG, &g, &sv, NULL);
        const char *label = cf_fmt("%s %s %s dim %d, index %s (%s)", fn[which], em_dtype_name(dt),
                                   cf_shape_str(nd, sh), dim, cf_shape_str(nd, ish), gs_cases[c].what);
        if (!idx || (which && !src))
            goto done;
        /* for gather, the index may not be larger than the source in the other dims */
        bool fits = true;
        for (int k = 0; k < nd; k++)
            if (k != d && ish[k] > sh[k])
                fits = false;
        if (!fits)
            goto done;
        int64_t q[3];
        if (which == 0) {
            em_tensor *o = em_gather(t, dim, idx);
            if (!cf_check_shape(r, o, nd, ish, dt, label))
                goto done;
            double *want = cf_tmp(sizeof(double) * (size_t)(ni + 1)), *got = cf_read(r, o, label);
            for (int64_t e = 0; e < ni; e++) {
                unravel(e, nd, ish, q);
                q[d] = (int64_t)iv[e];
                want[e] = x[ravel(q, nd, sh)];
            }
            if (got)
                cf_compare(r, label, cf_bucket(dt), got, want, NULL, ni, 0);
            goto done;
        }
        int64_t n = cf_numel(nd, sh);
        double *want = cf_tmp(sizeof(double) * (size_t)(n + 1)), *norm = cf_tmp(sizeof(double) * (size_t)(n + 1));
        for (int64_t e = 0; e < n; e++) {
            want[e] = x[e];
            norm[e] = fabs(x[e]);
        }
        for (int64_t e = 0; e < ni; e++) {
            unravel(e, nd, ish, q);
            double s = sv[ravel(q, nd, ssh)];
            q[d] = (int64_t)iv[e];
            int64_t at = ravel(q, nd, sh);
            want[at] = cf_round(dt, want[at] + s);
            norm[at] += fabs(s);
        }
        double *got;
        if (which == 1) {
            em_tensor *o = em_scatter_add(t, dim, idx, src);
            if (!cf_check_shape(r, o, nd, sh, dt, label))
                goto done;
            got = cf_read(r, o, label);
        } else {
            if (!cf_status(r, em_scatter_add_(t, dim, idx, src), label))
                goto done;
            got = cf_read_base(r, base, lay, nd, sh, label);
        }
        if (got)
            cf_compare(r, label, cf_bucket(dt), got, want, norm, n, cf_tol(dt) * 4);
    done:
        cf_case_end();
    }
}

/* Out-of-range and negative indices are errors, and a failed scatter_add_ changes nothing. */
static void run_index_errors(cf_row *ris, cf_row *rg, cf_row *rs)
{
    static const double bad[2] = {5, -1};
    for (int k = 0; k < 2; k++) {
        cf_case_begin();
        em_tensor *t = em_zeros(cf.ctx, EM_F32, EM_SHAPE(3, 5));
        const double iv[3] = {0, bad[k], 1};
        int64_t three = 3;
        em_tensor *i1 = cf_upload(ris ? ris : rg ? rg : rs, EM_I64, 1, &three, iv);
        em_tensor *i2 = i1 ? em_reshape(i1, EM_SHAPE(1, 3)) : NULL;
        em_tensor *src = em_ones(cf.ctx, EM_F32, EM_SHAPE(1, 3));
        struct {
            cf_row *r;
            const char *what;
        } checks[3] = {{ris, "em_index_select"}, {rg, "em_gather"}, {rs, "em_scatter_add_"}};
        for (int w = 0; w < 3; w++) {
            if (!checks[w].r || !i2)
                continue;
            em_context_clear_error(cf.ctx);
            em_status st = EM_OK;
            em_tensor *o = NULL;
            if (w == 0)
                o = em_index_select(t, 0, i1);
            else if (w == 1)
                o = em_gather(t, 1, i2);
            else
                st = em_scatter_add_(t, 1, i2, src);
            bool refused = (w < 2 ? !o : st != EM_OK) && em_context_status(cf.ctx) == EM_ERR_INVALID;
            em_context_clear_error(cf.ctx);
            double *after = cf_read(checks[w].r, t, "reading self back");
            bool unchanged = after != NULL;
            for (int i = 0; after && i < 15; i++)
                unchanged = unchanged && after[i] == 0;
            if (refused && unchanged)
                cf_pass(checks[w].r);
            else
                cf_fail(checks[w].r, "%s with index %g: expected EM_ERR_INVALID and nothing changed (%s)",
                        checks[w].what, bad[k], refused ? "self was changed" : "no such error");
        }
        cf_case_end();
    }
}

/* ------------------------------------------------------------------ cat, stack */

static const struct {
    const char *what;
    int n, nd, dim;
    int64_t shapes[3][3];
    cf_layout lay[3];
} join_cases[] = {
    {"dim 0", 3, 2, 0, {{2, 3}, {1, 3}, {4, 3}}, {CF_CONTIG, CF_CONTIG, CF_CONTIG}},
    {"dim 1, transposed pieces", 2, 2, 1, {{3, 2}, {3, 5}}, {CF_TRANSPOSED, CF_CONTIG}},
    {"dim -1 of 3-D, expanded piece", 3, 3, -1, {{2, 3, 1}, {2, 3, 4}, {2, 3, 2}}, {CF_CONTIG, CF_EXPANDED, CF_TRANSPOSED}},
    {"with an empty piece", 3, 2, 0, {{2, 3}, {0, 3}, {1, 3}}, {CF_CONTIG, CF_CONTIG, CF_TRANSPOSED}},
    {"one piece", 1, 2, 1, {{3, 4}}, {CF_TRANSPOSED}},
    {"1-D", 2, 1, 0, {{5}, {7}}, {CF_CONTIG, CF_CONTIG}},
    {"large transposed pieces", 2, 2, 0, {{300, 500}, {200, 500}}, {CF_TRANSPOSED, CF_CONTIG}},
};

static void run_join(cf_row *r, em_dtype dt, bool stack)
{
    for (size_t c = 0; c < NELEMS(join_cases); c++) {
        int n = join_cases[c].n, nd = join_cases[c].nd, dim = join_cases[c].dim;
        /* stack: every piece has the first one's shape; the new dim is dim of nd + 1 */
        cf_case_begin();
        em_tensor *ts[3];
        double *xs[3];
        int64_t shapes[3][3];
        cf_gen g = gen_for(dt);
        for (int k = 0; k < n; k++) {
            memcpy(shapes[k], stack ? join_cases[c].shapes[0] : join_cases[c].shapes[k], sizeof shapes[k]);
            ts[k] = cf_make(r, dt, nd, shapes[k], join_cases[c].lay[k], &g, &xs[k], NULL);
            if (!ts[k])
                goto done;
        }
        int d = dim < 0 ? dim + nd + (stack ? 1 : 0) : dim;
        int ond = nd + (stack ? 1 : 0);
        int64_t os[4];
        for (int k = 0, j = 0; k < ond; k++) {
            if (stack && k == d)
                os[k] = n;
            else
                os[k] = shapes[0][j++];
        }
        if (!stack)
            for (int k = 1; k < n; k++)
                os[d] += shapes[k][d];
        const char *label = cf_fmt("%s %s %d pieces dim %d, first %s (%s)", stack ? "em_stack" : "em_cat",
                                   em_dtype_name(dt), n, dim, cf_shape_str(nd, shapes[0]), join_cases[c].what);
        em_tensor *o = stack ? em_stack(ts, n, dim) : em_cat(ts, n, dim);
        if (!cf_check_shape(r, o, ond, os, dt, label))
            goto done;
        int64_t total = cf_numel(ond, os), q[4];
        double *want = cf_tmp(sizeof(double) * (size_t)(total + 1)), *got = cf_read(r, o, label);
        for (int64_t e = 0; e < total; e++) {
            unravel(e, ond, os, q);
            int k = 0;
            if (stack) {
                k = (int)q[d];
                for (int j = d; j < ond - 1; j++)
                    q[j] = q[j + 1];
            } else {
                while (q[d] >= shapes[k][d]) {
                    q[d] -= shapes[k][d];
                    k++;
                }
            }
            want[e] = xs[k][ravel(q, nd, shapes[k])];
        }
        if (got)
            cf_compare(r, label, cf_bucket(dt), got, want, NULL, total, 0);
    done:
        cf_case_end();
    }
    /* pieces that do not fit are an error */
    cf_case_begin();
    em_tensor *a = em_zeros(cf.ctx, EM_F32, EM_SHAPE(2, 3)), *b = em_zeros(cf.ctx, EM_F32, EM_SHAPE(2, 4));
    em_tensor *ab[2] = {a, b};
    em_tensor *o = stack ? em_stack(ab, 2, 0) : em_cat(ab, 2, 0);
    if (!o && em_context_status(cf.ctx) != EM_OK)
        cf_pass(r);
    else
        cf_fail(r, "%s of [2, 3] and [2, 4] along dim 0: expected an error", stack ? "em_stack" : "em_cat");
    cf_case_end();
}

void cf_run_index(void)
{
    uint32_t ints = EM_DTYPE_BIT(EM_I64) | EM_DTYPE_BIT(EM_I32) | EM_DTYPE_BIT(EM_U8);
    uint32_t used = ints | (cf.dtype_on[0] ? EM_DTYPE_BIT(EM_F32) : 0) | (cf.dtype_on[1] ? EM_DTYPE_BIT(EM_F64) : 0);
    cf_row *ris = cf_row_get_dt("index_select", "index_select", used | EM_DTYPE_BIT(EM_BOOL));
    cf_row *rg = cf_row_get_dt("gather", "gather", used | EM_DTYPE_BIT(EM_BOOL));
    cf_row *rs = cf_row_get_dt("scatter_add", "scatter_add", used);
    cf_row *rs_ = cf_row_get_dt("scatter_add_", "scatter_add", used);
    cf_row *rc = cf_row_get_dt("cat", "copy", used | EM_DTYPE_BIT(EM_BOOL));
    cf_row *rst = cf_row_get_dt("stack", "copy", used | EM_DTYPE_BIT(EM_BOOL));
    for (size_t k = 0; k < NELEMS(data_dtypes); k++) {
        em_dtype dt = data_dtypes[k];
        if (!cf_dtype_enabled(dt))
            continue;
        if (ris)
            run_index_select(ris, dt);
        if (rg)
            run_gather_scatter(rg, dt, 0);
        if (dt != EM_BOOL) {
            if (rs)
                run_gather_scatter(rs, dt, 1);
            if (rs_)
                run_gather_scatter(rs_, dt, 2);
        }
        if (rc)
            run_join(rc, dt, false);
        if (rst)
            run_join(rst, dt, true);
    }
    run_index_errors(ris, rg, rs_);
}
