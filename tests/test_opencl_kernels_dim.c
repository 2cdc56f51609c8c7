/* tests/test_opencl_kernels_dim.c — the second half of test_opencl_kernels: sum on i64 and
 * prod (wrapping, empty, the chunked path), max_dim / min_dim (ties to the first index, the
 * first NaN wins, -0 and 0 tie), softmax and log_softmax (rows of -inf, NaN and +inf give
 * NaN, large values stay finite), index_select, gather and scatter_add (duplicate indices,
 * both of its kernels), each on strided views and for every dtype the plugin declares; and
 * calls the plugin must refuse without writing anything. References are computed here. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_opencl_kernels.h"

static const int32_t g_fn[5] = {EM_F32, EM_F64, EM_I64, EM_I32, EM_U8};

static int is_float(int32_t dt)
{
    return dt == EM_F32 || dt == EM_F64;
}

/* (outer, n, inner) with the middle dim innermost in memory: strides (n, 1, outer * n) */
static hv view3(int32_t dt, int64_t outer, int64_t n, int64_t inner)
{
    const int64_t sh[3] = {outer, n, inner}, st[3] = {n, 1, outer * n};
    return hv_make(dt, 3, sh, st, 0);
}

/* logical index of (o, j, i) in a (outer, n, inner) view */
static int64_t ix3(const hv *v, int64_t o, int64_t j, int64_t i)
{
    return (o * v->shape[1] + j) * v->shape[2] + i;
}

/* ------------------------------------------------------------------ sum, prod */

static void test_reduce_case(kdesc k, int32_t dt, int64_t rows, int64_t cols, int keep_rows,
                             int keep_cols, int pattern)
{
    const int64_t sh[2] = {rows, cols}, st[2] = {1, rows ? rows : 1};   /* transposed */
    hv in = hv_make(dt, 2, sh, st, 0);
    const int prod = !strcmp(k.name, "prod");
    for (int64_t i = 0; i < rows * cols; i++) {
        if (pattern)   /* exact products: few factors of 3 (floats), wrapping ones (i64) */
            hv_setd(&in, i, i % 10 == 0 ? (dt == EM_I64 ? 3 : 1.5)
                            : i % 7 == 0 ? (dt == EM_I64 ? 5 : 0.5)
                            : i % 11 == 0 ? 2 : i % 13 == 0 ? -1 : 1);
        else if (dt == EM_I64)
            hv_seti(&in, i, i % 4 == 0 ? INT64_MAX - i : i % 3 == 0 ? 3 : -(i * 7919));
        else
            hv_setd(&in, i, (double)((i * 37) % 11) / 4 - 1);
    }
    const int64_t osh[2] = {keep_rows ? rows : 1, keep_cols ? cols : 1};
    hv out = hv_contig(dt, 2, osh), want = hv_contig(dt, 2, osh);
    for (int64_t r = 0; r < osh[0]; r++)
        for (int64_t c = 0; c < osh[1]; c++) {
            uint64_t iacc = prod ? 1 : 0;
            double facc = prod ? 1 : 0;
            for (int64_t i = 0; i < rows; i++)
                for (int64_t j = 0; j < cols; j++) {
                    if ((keep_rows && i != r) || (keep_cols && j != c))
                        continue;
                    if (dt == EM_I64) {
                        uint64_t v = (uint64_t)hv_geti(&in, i * cols + j);
                        iacc = prod ? iacc * v : iacc + v;
                    } else {
                        double v = hv_getd(&in, i * cols + j);
                        facc = prod ? facc * v : facc + v;
                    }
                }
            if (dt == EM_I64)
                hv_seti(&want, r * osh[1] + c, (int64_t)iacc);
            else
                hv_setd(&want, r * osh[1] + c, facc);
        }
    const double p[4] = {1, 0, 0, 0};
    char what[64];
    snprintf(what, sizeof what, "(%lld, %lld) keeping %d %d", (long long)rows, (long long)cols,
             keep_rows, keep_cols);
    /* f32 accumulates in double where the device has doubles (then rounds once), else in
     * float */
    const double tol = dt == EM_F32 ? (runs(EM_F64) ? 1 : 16) : dt == EM_F64 ? 64 : 0;
    check(k, dt, &out, 1, &in, 1, p, NULL, 0, &want, tol, 0, what);
    hv_free(&in);
    hv_free(&out);
    hv_free(&want);
}

void test_reductions(void **state)
{
    (void)state;
    const int32_t dts[3] = {EM_I64, EM_F32, EM_F64};
    for (int t = 0; t < 3; t++) {
        const int32_t dt = dts[t];
        if (!runs(dt))
            continue;
        for (int pr = 0; pr < 2; pr++) {
            const kdesc k = pr ? KD(prod) : KD(sum);
            if (!pr && dt != EM_I64)
                continue;   /* float sums are the 1.0 suites' */
            test_reduce_case(k, dt, 3, 4, 1, 0, 0);
            test_reduce_case(k, dt, 3, 4, 0, 1, 0);
            test_reduce_case(k, dt, 3, 4, 0, 0, 0);
            test_reduce_case(k, dt, 0, 4, 0, 1, 0);      /* empty: 0, or 1 */
            test_reduce_case(k, dt, 2, 300, 1, 0, 1);    /* a work-group per output */
            test_reduce_case(k, dt, 300, 2, 0, 1, 1);    /* a work-item per output */
            test_reduce_case(k, dt, 1, 5000, 0, 0, 1);   /* chunks and a final pass */
        }
    }
}

/* ------------------------------------------------------------------ max_dim, min_dim */

static void argdim_case(int32_t dt, int mx, int64_t outer, int64_t n, int64_t inner)
{
    const kdesc k = mx ? KD(max_dim) : KD(min_dim);
    hv in = view3(dt, outer, n, inner);
    const int64_t osh[3] = {outer, 1, inner}, xst[3] = {inner, inner, 1};
    hv outs[2] = {hv_contig(dt, 3, osh), hv_make(EM_I64, 3, osh, xst, 1)};
    hv want[2] = {hv_contig(dt, 3, osh), hv_contig(EM_I64, 3, osh)};
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < n; j++)
            for (int64_t i = 0; i < inner; i++)
                hv_setd(&in, ix3(&in, o, j, i),
                        (double)((o * 7 + j * 37 + i * 5) % (n > 50 ? 101 : 4)));
    if (is_float(dt) && n >= 3 && inner >= 2) {
        /* column (0, 1): -0 first and 0 later tie, everything else below; the last row:
         * the first of two NaNs wins */
        for (int64_t j = 0; j < n; j++)
            hv_setd(&in, ix3(&in, 0, j, 1 % inner), mx ? -5.0 - (double)j : 5.0 + (double)j);
        hv_setd(&in, ix3(&in, 0, 1, 1 % inner), -0.0);
        hv_setd(&in, ix3(&in, 0, n - 1, 1 % inner), 0.0);
        hv_setd(&in, ix3(&in, outer - 1, n / 2, 0), NAN);
        hv_setd(&in, ix3(&in, outer - 1, n - 1, 0), NAN);
        if (inner >= 3)
            hv_setd(&in, ix3(&in, 0, 0, inner - 1), mx ? -INFINITY : INFINITY);
    }
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double best = hv_getd(&in, ix3(&in, o, 0, i));
            int64_t bi = 0;
            for (int64_t j = 1; j < n; j++) {
                double v = hv_getd(&in, ix3(&in, o, j, i));
                if (isnan(best))
                    break;
                if (isnan(v) || (mx ? v > best : v < best)) {
                    best = v;
                    bi = j;
                }
            }
            hv_seti(&want[1], o * inner + i, bi);
            hv_setd(&want[0], o * inner + i, best);
        }
    char what[48];
    snprintf(what, sizeof what, "(%lld, %lld, %lld)", (long long)outer, (long long)n,
             (long long)inner);
    check(k, dt, outs, 2, &in, 1, NULL, NULL, 0, want, -1, 0, what);
    hv_free(&in);
    for (int i = 0; i < 2; i++) {
        hv_free(&outs[i]);
        hv_free(&want[i]);
    }
}

void test_max_min_dim(void **state)
{
    (void)state;
    for (int t = 0; t < 5; t++) {
        if (!runs(g_fn[t]))
            continue;
        for (int mx = 0; mx < 2; mx++) {
            argdim_case(g_fn[t], mx, 2, 5, 3);     /* a work-item per row */
            argdim_case(g_fn[t], mx, 1, 300, 2);   /* a work-group per row */
            argdim_case(g_fn[t], mx, 3, 1, 2);     /* n = 1 */
        }
    }
}

/* ------------------------------------------------------------------ softmax */

static void softmax_case(int32_t dt, int lg, int64_t outer, int64_t n, int64_t inner)
{
    const kdesc k = lg ? KD(log_softmax) : KD(softmax);
    hv in = view3(dt, outer, n, inner);
    const int64_t sh[3] = {outer, n, inner};
    hv out = hv_contig(dt, 3, sh), want = hv_contig(dt, 3, sh);
    for (int64_t q = 0; q < outer * n * inner; q++)
        hv_setd(&in, q, sin((double)q * 1.7) * 20);
    if (outer >= 2 && inner >= 2 && n >= 3) {
        for (int64_t j = 0; j < n; j++) {
            hv_setd(&in, ix3(&in, 0, j, 0), 1000 - (double)j);   /* large, still finite */
            hv_setd(&in, ix3(&in, 0, j, 1), -INFINITY);          /* all -inf: NaN */
        }
        hv_setd(&in, ix3(&in, 1, 2, 0), NAN);                    /* NaN: a NaN row */
        hv_setd(&in, ix3(&in, 1, 1, 1), INFINITY);               /* +inf: NaN too */
    }
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            long double m = -INFINITY, s = 0;
            for (int64_t j = 0; j < n; j++) {
                long double v = hv_getd(&in, ix3(&in, o, j, i));
                m = isnan(v) || v > m || isnan(m) ? (isnan(m) ? m : v) : m;
            }
            for (int64_t j = 0; j < n; j++)
                s += expl(hv_getd(&in, ix3(&in, o, j, i)) - m);
            for (int64_t j = 0; j < n; j++) {
                long double v = hv_getd(&in, ix3(&in, o, j, i)) - m;
                hv_setd(&want, ix3(&want, o, j, i), (double)(lg ? v - logl(s) : expl(v) / s));
            }
        }
    char what[48];
    snprintf(what, sizeof what, "(%lld, %lld, %lld)", (long long)outer, (long long)n,
             (long long)inner);
    check(k, dt, &out, 1, &in, 1, NULL, NULL, 0, &want, dt == EM_F32 ? 2 : 16,
          dt == EM_F32 ? 1e-6 : 1e-13, what);
    hv_free(&in);
    hv_free(&out);
    hv_free(&want);
}

void test_softmax(void **state)
{
    (void)state;
    for (int f = 0; f < 2; f++) {
        const int32_t dt = f ? EM_F64 : EM_F32;
        if (!runs(dt))
            continue;
        for (int lg = 0; lg < 2; lg++) {
            softmax_case(dt, lg, 2, 5, 3);     /* a work-item per row */
            softmax_case(dt, lg, 1, 300, 2);   /* a work-group per row */
            softmax_case(dt, lg, 2, 1, 2);     /* n = 1 */
        }
    }
}

/* ------------------------------------------------------------------ indexing */

static void set_pattern(hv *v, int64_t q, int64_t k)
{
    if (v->dt == EM_BOOL)
        hv_seti(v, q, k % 3 == 1);
    else if (is_float(v->dt))
        hv_setd(v, q, k == 5 ? -0.0 : k == 7 ? NAN : (double)k * 1.25 - 3);
    else
        hv_seti(v, q, k * 3 + 1);
}

void test_index_select_gather(void **state)
{
    (void)state;
    const int32_t all[6] = {EM_F32, EM_F64, EM_BOOL, EM_I64, EM_I32, EM_U8};
    for (int t = 0; t < 6; t++) {
        const int32_t dt = all[t];
        if (!runs(dt))
            continue;
        /* index_select: (2, 5, 3)[:, [4, 0, 4, 2], :] with a strided index */
        hv in = view3(dt, 2, 5, 3);
        for (int64_t q = 0; q < 30; q++)
            set_pattern(&in, q, q);
        const int64_t ish[1] = {4}, ist[1] = {2};
        hv idx = hv_make(EM_I64, 1, ish, ist, 1);
        const int64_t sel[4] = {4, 0, 4, 2};
        for (int j = 0; j < 4; j++)
            hv_seti(&idx, j, sel[j]);
        const int64_t osh[3] = {2, 4, 3};
        hv out = hv_contig(dt, 3, osh), want = hv_contig(dt, 3, osh);
        for (int64_t o = 0; o < 2; o++)
            for (int64_t j = 0; j < 4; j++)
                for (int64_t i = 0; i < 3; i++)
                    set_pattern(&want, ix3(&want, o, j, i), ix3(&in, o, sel[j], i));
        hv ins[2] = {in, idx};
        check(KD(index_select), dt, &out, 1, ins, 2, NULL, NULL, 0, &want, -1, 0, "(2, 5, 3)");
        hv_free(&in);
        hv_free(&idx);
        hv_free(&out);
        hv_free(&want);
        /* gather from (4, 5) along dim 1 (index (3, 2), transposed) and dim 0 (index
         * (2, 5) into a transposed output) */
        for (int dim = 0; dim < 2; dim++) {
            const int64_t ssh[2] = {4, 5}, xsh[2] = {dim ? 3 : 2, dim ? 2 : 5};
            const int64_t xst[2] = {1, xsh[0]};
            hv src = hv_contig(dt, 2, ssh), gx = hv_make(EM_I64, 2, xsh, xst, 0);
            hv gout = dim ? hv_contig(dt, 2, xsh) : hv_make(dt, 2, xsh, xst, 0);
            hv gwant = hv_contig(dt, 2, xsh);
            for (int64_t q = 0; q < 20; q++)
                set_pattern(&src, q, q);
            for (int64_t r = 0; r < xsh[0]; r++)
                for (int64_t c = 0; c < xsh[1]; c++) {
                    const int64_t v = (r * 3 + c * 2 + 1) % (dim ? 5 : 4);
                    hv_seti(&gx, r * xsh[1] + c, v);
                    set_pattern(&gwant, r * xsh[1] + c, dim ? r * 5 + v : v * 5 + c);
                }
            hv gins[2] = {src, gx};
            const int64_t ip[1] = {dim};
            check(KD(gather), dt, &gout, 1, gins, 2, NULL, ip, 1, &gwant, -1, 0,
                  dim ? "dim 1" : "dim 0");
            hv_free(&src);
            hv_free(&gx);
            hv_free(&gout);
            hv_free(&gwant);
        }
    }
}

/* out (o_rows, o_cols) += src at idx along dim; idx and src (rows, cols) */
static void scatter_case(int32_t dt, int dim, int64_t o_rows, int64_t o_cols, int64_t rows,
                         int64_t cols, int transposed_out)
{
    const int64_t osh[2] = {o_rows, o_cols}, ost[2] = {1, o_rows};
    const int64_t xsh[2] = {rows, cols};
    hv out = transposed_out ? hv_make(dt, 2, osh, ost, 0) : hv_contig(dt, 2, osh);
    hv idx = hv_contig(EM_I64, 2, xsh), src = hv_contig(dt, 2, xsh);
    hv want = hv_contig(dt, 2, osh);
    const int64_t lim = dim ? o_cols : o_rows;
    for (int64_t q = 0; q < o_rows * o_cols; q++) {
        int64_t init = dt == EM_U8    ? 250 - q % 3
                       : dt == EM_I32 ? INT32_MAX - q
                       : dt == EM_I64 ? INT64_MAX - q
                                      : q % 5;
        hv_seti(&out, q, init);
        hv_seti(&want, q, init);
    }
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            const int64_t q = r * cols + c, v = (r * 7 + c * 3) % lim;
            hv_seti(&idx, q, v);
            hv_seti(&src, q, (q % 5) + 1);
            const int64_t tq = dim ? r * o_cols + v : v * o_cols + c;
            if (is_float(dt))
                hv_setd(&want, tq, hv_getd(&want, tq) + hv_getd(&src, q));
            else   /* wraps: past INT_MAX, past 255 */
                hv_seti(&want, tq,
                        (int64_t)((uint64_t)hv_geti(&want, tq) + (uint64_t)hv_geti(&src, q)));
        }
    if (dt == EM_I32 || dt == EM_U8)   /* back to the dtype's width */
        for (int64_t q = 0; q < o_rows * o_cols; q++) {
            int64_t w = hv_geti(&want, q);
            hv_seti(&want, q, dt == EM_U8 ? (int64_t)(uint8_t)w : (int64_t)(int32_t)(uint32_t)w);
        }
    hv ins[2] = {idx, src};
    const int64_t ip[1] = {dim};
    char what[64];
    snprintf(what, sizeof what, "dim %d, index (%lld, %lld)", dim, (long long)rows,
             (long long)cols);
    check(KD(scatter_add), dt, &out, 1, ins, 2, NULL, ip, 1, &want, -1, 0, what);
    hv_free(&out);
    hv_free(&idx);
    hv_free(&src);
    hv_free(&want);
}

void test_scatter_add(void **state)
{
    (void)state;
    for (int t = 0; t < 5; t++) {
        const int32_t dt = g_fn[t];
        if (!runs(dt))
            continue;
        scatter_case(dt, 0, 4, 5, 3, 5, 1);    /* lines along dim 0, out transposed */
        scatter_case(dt, 1, 3, 6, 3, 4, 0);    /* lines along dim 1 */
        scatter_case(dt, 1, 1, 10, 1, 100, 0); /* one long line: atomics where there are */
        scatter_case(dt, 0, 10, 1, 100, 1, 1);
    }
}

/* ------------------------------------------------------------------ refusals */

void test_refusals(void **state)
{
    (void)state;
    const int64_t sh[2] = {3, 4}, sh1[1] = {12}, sh3[3] = {1, 12, 1}, sh31[3] = {1, 1, 1};
    hv f = hv_contig(EM_F32, 2, sh), x = hv_contig(EM_I64, 2, sh), x32 = hv_contig(EM_I32, 2, sh);
    hv out = hv_contig(EM_F32, 2, sh), b = hv_contig(EM_BOOL, 2, sh);
    for (int64_t q = 0; q < 12; q++) {
        hv_seti(&x, q, q % 3);
        hv_seti(&x32, q, q % 3);
        hv_setd(&f, q, (double)q);
    }
    int64_t ip[1] = {2};
    hv gi[2] = {f, x};
    refused(KD(gather), &out, 1, gi, 2, ip, 1, "dim 2 of 2 dims");
    refused(KD(gather), &out, 1, gi, 2, ip, 0, "no ip[0]");
    ip[0] = 1;
    gi[1] = x32;
    refused(KD(gather), &out, 1, gi, 2, ip, 1, "an i32 index");
    hv small = hv_contig(EM_F32, 1, sh1);
    hv si[2] = {x, small};
    refused(KD(scatter_add), &out, 1, si, 2, ip, 1, "a source of another shape");
    hv in3 = hv_contig(EM_F32, 3, sh3), o3 = hv_contig(EM_F32, 3, sh31);
    refused(KD(max_dim), &o3, 1, &in3, 1, NULL, 0, "no outs[1]");
    refused(KD(softmax), &o3, 1, &in3, 1, NULL, 0, "an output of another shape");
    hv isel[2] = {in3, x};
    hv o3b = hv_contig(EM_F32, 3, sh3);
    refused(KD(index_select), &o3b, 1, isel, 2, NULL, 0, "a 2-d index");
    refused(KD(prod), &b, 1, &b, 1, NULL, 0, "bool");
    refused(KD(sign), &b, 1, &b, 1, NULL, 0, "bool");
    hv mixed[2] = {x, x32};
    hv xo = hv_contig(EM_I64, 2, sh);
    refused(KD(floor_divide), &xo, 1, mixed, 2, NULL, 0, "i64 // i32");
    hv all[] = {f, x, x32, out, b, small, in3, o3, o3b, xo};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        hv_free(&all[i]);
}
