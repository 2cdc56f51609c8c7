/* tests/test_cuda_dim_host.c — the cuda backend's kernels of ABI 1.2 that are not
 * elementwise, checked on the host: their loops emulated thread by thread around the code
 * of backends/cuda/cuda_math.h (compiled as plain C), on random strided views, against the
 * cpu backend's kernels (tests/cuda_host_cpu.h loads them):
 *  - max_dim / min_dim: both launch shapes of cuda_dim.cu (a thread scanning a row, and a
 *    block of 256 threads combined by a tree) with many ties and NaNs: values and first
 *    indices identical; softmax and log_softmax the same way (within rounding), an all
 *    -inf row giving NaN;
 *  - gather, index_select and scatter_add: the kernels' loops over the indexing geometry;
 *  - prod and the i64 sum: the reduction partition with the kernel's accumulators.
 * Needs neither nvcc nor a GPU. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "cuda_math.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_host.h"
#include "cuda_host_cpu.h"

/* ------------------------------------------------------------------ max_dim / min_dim */

/* cuda_dim.cu's two launch shapes for one dtype: block == 0, a thread scans its row in
 * order; block == 1, EMCU_DIM_THREADS threads stride over it and a tree combines them. */
#define DEF_EMU_ARG(S, T)                                                                 \
    static void emu_arg_##S(const em_kview *in, const em_kview *ov, const em_kview *oi,   \
                            int is_max, int block)                                        \
    {                                                                                     \
        const T *x = (const T *)in->buf + in->offset;                                     \
        T *vo = (T *)ov->buf + ov->offset;                                                \
        int64_t *io = (int64_t *)oi->buf + oi->offset;                                    \
        const int64_t n = in->shape[1], inner = in->shape[2];                             \
        const int64_t rows = in->shape[0] * inner;                                        \
        T sv[EMCU_DIM_THREADS];                                                           \
        int64_t si[EMCU_DIM_THREADS];                                                     \
        for (int64_t r = 0; r < rows; r++) {                                              \
            const int64_t base = emcu_dim_off(in->strides, inner, r, 0);                  \
            const int nt = block ? EMCU_DIM_THREADS : 1;                                  \
            for (int tid = 0; tid < nt; tid++) {                                          \
                sv[tid] = (T)0;                                                           \
                si[tid] = -1;                                                             \
                for (int64_t j = tid; j < n; j += nt)                                     \
                    emcu_arg_take_##S(x[base + j * in->strides[1]], j, &sv[tid], &si[tid], \
                                      is_max);                                            \
            }                                                                             \
            for (int s = nt / 2; s > 0; s >>= 1)                                          \
                for (int tid = 0; tid < s; tid++)                                         \
                    emcu_arg_take_##S(sv[tid + s], si[tid + s], &sv[tid], &si[tid], is_max); \
            vo[emcu_dim_off(ov->strides, inner, r, 0)] = sv[0];                           \
            io[emcu_dim_off(oi->strides, inner, r, 0)] = si[0];                           \
        }                                                                                 \
    }
DEF_EMU_ARG(f32, float)
DEF_EMU_ARG(f64, double)
DEF_EMU_ARG(i64, int64_t)
DEF_EMU_ARG(i32, int32_t)
DEF_EMU_ARG(u8, uint8_t)

static void emu_arg(const em_kview *in, const em_kview *ov, const em_kview *oi, int is_max,
                    int block)
{
    switch (in->dtype) {
    case EM_F32: emu_arg_f32(in, ov, oi, is_max, block); break;
    case EM_F64: emu_arg_f64(in, ov, oi, is_max, block); break;
    case EM_I64: emu_arg_i64(in, ov, oi, is_max, block); break;
    case EM_I32: emu_arg_i32(in, ov, oi, is_max, block); break;
    default: emu_arg_u8(in, ov, oi, is_max, block); break;
    }
}

static void test_arg_dim(void **state)
{
    (void)state;
    static const int32_t dts[5] = {EM_F32, EM_F64, EM_I64, EM_I32, EM_U8};
    int nan_rows = 0;
    for (int iter = 0; iter < 240; iter++) {
        const int32_t dt = dts[iter % 5];
        const int64_t shape[3] = {rnd_int(1, 3), iter % 3 == 0 ? rnd_int(257, 900) : rnd_int(1, 80),
                                  rnd_int(1, 4)};
        const int64_t oshape[3] = {shape[0], 1, shape[2]};
        em_kview in, ov, oi;
        int64_t icap, vcap, xcap;
        void *ib = make_view(&in, dt, 3, shape, &icap);
        void *vb = make_view(&ov, dt, 3, oshape, &vcap);
        void *xb = make_view(&oi, EM_I64, 3, oshape, &xcap);
        fill_ties(ib, dt, icap);
        for (int is_max = 0; is_max < 2; is_max++) {
            em_kview cv = twin(&ov, vcap), cx = twin(&oi, xcap);
            cpu_call(is_max ? OFF(max_dim) : OFF(min_dim), &cv, &cx, &in, NULL, NULL, 0, 0, NULL, 0);
            for (int block = 0; block < 2; block++) {
                emu_arg(&in, &ov, &oi, is_max, block);
                if (memcmp(vb, cv.buf, (size_t)vcap * dsize(dt)) != 0 ||
                    memcmp(xb, cx.buf, (size_t)xcap * 8) != 0)
                    fail_msg("%s, dtype %d, (%lld, %lld, %lld), %s: differs from the cpu kernel",
                             is_max ? "max_dim" : "min_dim", dt, (long long)shape[0],
                             (long long)shape[1], (long long)shape[2],
                             block ? "a block per row" : "a thread per row");
            }
            if (dt == EM_F32)
                for (int64_t r = 0; r < shape[0] * shape[2]; r++)
                    nan_rows += isnan(((float *)vb)[ov.offset + emcu_dim_off(ov.strides, shape[2], r, 0)]);
            free(cv.buf);
            free(cx.buf);
        }
        free(ib);
        free(vb);
        free(xb);
    }
    assert_true(nan_rows > 0);
    /* the launch shape: long rows a block each, unless many rows lie side by side */
    assert_int_equal(emcu_dim_mode(1, 10, 1), EMCU_DIM_THREAD);
    assert_int_equal(emcu_dim_mode(1000, 1000, 1), EMCU_DIM_BLOCK);
    assert_int_equal(emcu_dim_mode(100, 1000, 64), EMCU_DIM_THREAD);
    assert_int_equal(emcu_dim_mode(1, 1000, 64), EMCU_DIM_BLOCK);
}

/* ------------------------------------------------------------------ softmax */

static double nan_max(double m, double v) { return v > m || v != v ? v : m; }

#define DEF_EMU_SOFTMAX(S, T, EXP)                                                        \
    static void emu_softmax_##S(const em_kview *in, const em_kview *out, int logsm, int block) \
    {                                                                                     \
        const T *x = (const T *)in->buf + in->offset;                                     \
        T *o = (T *)out->buf + out->offset;                                               \
        const int64_t n = in->shape[1], inner = in->shape[2];                             \
        const int64_t rows = in->shape[0] * inner, s1 = in->strides[1];                   \
        const int nt = block ? EMCU_DIM_THREADS : 1;                                      \
        double sm[EMCU_DIM_THREADS];                                                      \
        for (int64_t r = 0; r < rows; r++) {                                              \
            const int64_t ib = emcu_dim_off(in->strides, inner, r, 0);                    \
            const int64_t ob = emcu_dim_off(out->strides, inner, r, 0);                   \
            for (int t = 0; t < nt; t++) {                                                \
                sm[t] = -INFINITY;                                                        \
                for (int64_t j = t; j < n; j += nt)                                       \
                    sm[t] = nan_max(sm[t], (double)x[ib + j * s1]);                       \
            }                                                                             \
            for (int s = nt / 2; s > 0; s >>= 1)                                          \
                for (int t = 0; t < s; t++)                                               \
                    sm[t] = nan_max(sm[t], sm[t + s]);                                    \
            const T mt = (T)sm[0];                                                        \
            for (int t = 0; t < nt; t++) {                                                \
                sm[t] = 0;                                                                \
                for (int64_t j = t; j < n; j += nt)                                       \
                    sm[t] += (double)EXP((T)(x[ib + j * s1] - mt));                       \
            }                                                                             \
            for (int s = nt / 2; s > 0; s >>= 1)                                          \
                for (int t = 0; t < s; t++)                                               \
                    sm[t] += sm[t + s];                                                   \
            const double sum = sm[0], ls = log(sum);                                      \
            for (int64_t j = 0; j < n; j++) {                                             \
                const T v = (T)(x[ib + j * s1] - mt);                                     \
                o[ob + j * out->strides[1]] =                                             \
                    logsm ? (T)((double)v - ls) : (T)((double)EXP(v) / sum);              \
            }                                                                             \
        }                                                                                 \
    }
DEF_EMU_SOFTMAX(f32, float, expf)
DEF_EMU_SOFTMAX(f64, double, exp)

static void test_softmax(void **state)
{
    (void)state;
    for (int iter = 0; iter < 120; iter++) {
        const int32_t dt = iter % 2 ? EM_F64 : EM_F32;
        const int64_t shape[3] = {rnd_int(1, 3), iter % 3 == 0 ? rnd_int(257, 700) : rnd_int(1, 70),
                                  rnd_int(1, 3)};
        em_kview in, out;
        int64_t icap, ocap;
        void *ib = make_view(&in, dt, 3, shape, &icap);
        void *ob = make_view(&out, dt, 3, shape, &ocap);
        const int special = iter % 4;   /* 1: some NaN, 2: an all -inf row, 3: an inf */
        for (int64_t i = 0; i < icap; i++) {
            double v = (double)(rnd_u32() % 2001) / 200.0 - 5.0;
            if (special == 1 && rnd_u32() % 50 == 0)
                v = NAN;
            if (special == 3 && rnd_u32() % 50 == 0)
                v = INFINITY;
            if (dt == EM_F32)
                ((float *)ib)[i] = (float)v;
            else
                ((double *)ib)[i] = v;
        }
        if (special == 2)   /* row 0 all -inf */
            for (int64_t j = 0; j < shape[1]; j++) {
                const int64_t k = in.offset + emcu_dim_off(in.strides, shape[2], 0, j);
                if (dt == EM_F32)
                    ((float *)ib)[k] = -INFINITY;
                else
                    ((double *)ib)[k] = -INFINITY;
            }
        for (int logsm = 0; logsm < 2; logsm++) {
            em_kview cw = twin(&out, ocap);
            cpu_call(logsm ? OFF(log_softmax) : OFF(softmax), &cw, NULL, &in, NULL, NULL, 0, 0,
                     NULL, 0);
            for (int block = 0; block < 2; block++) {
                if (dt == EM_F32)
                    emu_softmax_f32(&in, &out, logsm, block);
                else
                    emu_softmax_f64(&in, &out, logsm, block);
                const double eps = dt == EM_F32 ? 4 * (double)FLT_EPSILON : 16 * DBL_EPSILON;
                for (int64_t i = 0; i < ocap; i++) {
                    const double got = dt == EM_F32 ? ((float *)ob)[i] : ((double *)ob)[i];
                    const double want =
                        dt == EM_F32 ? ((float *)cw.buf)[i] : ((double *)cw.buf)[i];
                    /* log_softmax is x - max - log(sum): its rounding scales with those
                     * terms (|x - max| <= 10, log(sum) < 8 here), not with the result */
                    const double tol = eps * (fabs(want) + (logsm ? 16.0 : 0.0));
                    if (isnan(want) ? !isnan(got) : !(got == want || fabs(got - want) <= tol))
                        fail_msg("%s dtype %d (%lld, %lld, %lld) %s, element %lld: %.17g, cpu %.17g",
                                 logsm ? "log_softmax" : "softmax", dt, (long long)shape[0],
                                 (long long)shape[1], (long long)shape[2],
                                 block ? "block" : "thread", (long long)i, got, want);
                }
                if (special == 2) {   /* the all -inf row is NaN */
                    const int64_t k = out.offset + emcu_dim_off(out.strides, shape[2], 0, 0);
                    assert_true(isnan(dt == EM_F32 ? ((float *)ob)[k] : ((double *)ob)[k]));
                }
            }
            free(cw.buf);
        }
        free(ib);
        free(ob);
    }
}

/* ------------------------------------------------------------------ indexing */

/* random index values in [0, bound) into an i64 buffer */
static void fill_index(void *buf, int64_t cap, int64_t bound)
{
    for (int64_t i = 0; i < cap; i++)
        ((int64_t *)buf)[i] = (int64_t)(rnd_u32() % (uint32_t)bound);
}

static void fill_values(void *buf, int32_t dt, int64_t cap)
{
    for (int64_t i = 0; i < cap; i++) {
        const int64_t v = (int64_t)(rnd_u32() % 201) - 100;
        if (dt == EM_F32)
            ((float *)buf)[i] = (float)v;
        else if (dt == EM_F64)
            ((double *)buf)[i] = (double)v;
        else if (dt == EM_BOOL)
            ((uint8_t *)buf)[i] = (uint8_t)(v > 0);
        else
            seti(buf, dt, i, v * 1000003);   /* i32 and u8 wrap when summed */
    }
}

/* k_gather's loop: out[o0] = src[o2 + index[o1] * s], moving elements by size */
static void emu_gather(const emcu_geom *g, int64_t s, const em_kview *out, const em_kview *index,
                       const em_kview *src)
{
    const size_t es = dsize(out->dtype);
    const int64_t *ix = (const int64_t *)index->buf + index->offset;
    for (int64_t lin = 0; lin < g->numel; lin++) {
        int64_t off[3];
        emcu_geom_offsets(g, lin, off, 3);
        memcpy((char *)out->buf + (size_t)(out->offset + off[0]) * es,
               (const char *)src->buf + (size_t)(src->offset + off[2] + ix[off[1]] * s) * es, es);
    }
}

/* k_scatter_add's loop: out[o2 + index[o0] * s] += src[o1] in the dtype's arithmetic */
static void emu_scatter_add(const emcu_geom *g, int64_t s, const em_kview *out,
                            const em_kview *index, const em_kview *src)
{
    const int64_t *ix = (const int64_t *)index->buf + index->offset;
    for (int64_t lin = 0; lin < g->numel; lin++) {
        int64_t off[3];
        emcu_geom_offsets(g, lin, off, 3);
        const int64_t o = out->offset + off[2] + ix[off[0]] * s, i = src->offset + off[1];
        switch (out->dtype) {
        case EM_F32: ((float *)out->buf)[o] += ((const float *)src->buf)[i]; break;
        case EM_F64: ((double *)out->buf)[o] += ((const double *)src->buf)[i]; break;
        case EM_I64:
            ((int64_t *)out->buf)[o] =
                emcu_add_i64(((int64_t *)out->buf)[o], ((const int64_t *)src->buf)[i]);
            break;
        case EM_I32:
            ((int32_t *)out->buf)[o] =
                emcu_add_i32(((int32_t *)out->buf)[o], ((const int32_t *)src->buf)[i]);
            break;
        default:
            ((uint8_t *)out->buf)[o] =
                emcu_add_u8(((uint8_t *)out->buf)[o], ((const uint8_t *)src->buf)[i]);
            break;
        }
    }
}

static void check_same(const char *what, int iter, const em_kview *a, const em_kview *b,
                       int64_t cap)
{
    if (memcmp(a->buf, b->buf, (size_t)cap * dsize(a->dtype)) != 0)
        fail_msg("%s, case %d (dtype %d, %d dims): differs from the cpu kernel", what, iter,
                 a->dtype, a->ndim);
}

static void test_indexing(void **state)
{
    (void)state;
    static const int32_t all[6] = {EM_F32, EM_F64, EM_BOOL, EM_I64, EM_I32, EM_U8};
    static const int32_t num[5] = {EM_F32, EM_F64, EM_I64, EM_I32, EM_U8};
    for (int iter = 0; iter < 300; iter++) {
        const int nd = rnd_int(1, 4), dim = rnd_int(0, nd - 1);
        int64_t ishape[EM_MAX_DIMS], big[EM_MAX_DIMS];
        for (int d = 0; d < nd; d++) {
            ishape[d] = rnd_int(1, 4);
            big[d] = ishape[d] + rnd_int(0, 2);
        }
        big[dim] = rnd_int(1, 6);
        em_kview out, ix, src, w;
        int64_t ocap, xcap, scap;
        emcu_geom g;
        int64_t s = 0;
        /* gather: out and index of ishape, a larger source */
        const int32_t dt = all[iter % 6];
        void *ob = make_view(&out, dt, nd, ishape, &ocap);
        void *xb = make_view(&ix, EM_I64, nd, ishape, &xcap);
        void *sb = make_view(&src, dt, nd, big, &scap);
        fill_index(xb, xcap, big[dim]);
        fill_values(sb, dt, scap);
        const int64_t ip = dim;
        w = twin(&out, ocap);
        cpu_call(OFF(gather), &w, NULL, &src, &ix, NULL, 0, 0, &ip, 1);
        assert_true(emcu_gather_geom(&g, &out, &ix, &src, dim, &s) > 0);
        emu_gather(&g, s, &out, &ix, &src);
        check_same("gather", iter, &out, &w, ocap);
        free(w.buf);
        free(ob);
        free(sb);
        /* scatter_add: index and source of ishape, a larger out holding values */
        const int32_t nt = num[iter % 5];
        ob = make_view(&out, nt, nd, big, &ocap);
        sb = make_view(&src, nt, nd, ishape, &scap);
        fill_values(ob, nt, ocap);
        fill_values(sb, nt, scap);
        w = twin(&out, ocap);
        cpu_call(OFF(scatter_add), &w, NULL, &ix, &src, NULL, 0, 0, &ip, 1);
        assert_true(emcu_scatter_geom(&g, &out, &ix, &src, dim, &s) > 0);
        emu_scatter_add(&g, s, &out, &ix, &src);
        check_same("scatter_add", iter, &out, &w, ocap);
        free(w.buf);
        free(ob);
        free(sb);
        free(xb);
        /* index_select: (outer, n, inner) source, a 1-D index of m, (outer, m, inner) out */
        const int64_t m = rnd_int(1, 7);
        const int64_t s3[3] = {rnd_int(1, 3), rnd_int(1, 6), rnd_int(1, 4)};
        const int64_t o3[3] = {s3[0], m, s3[2]};
        sb = make_view(&src, dt, 3, s3, &scap);
        ob = make_view(&out, dt, 3, o3, &ocap);
        xb = make_view(&ix, EM_I64, 1, &m, &xcap);
        fill_values(sb, dt, scap);
        fill_index(xb, xcap, s3[1]);
        w = twin(&out, ocap);
        cpu_call(OFF(index_select), &w, NULL, &src, &ix, NULL, 0, 0, NULL, 0);
        assert_int_equal(emcu_index_select_geom(&g, &out, &ix, &src, &s), s3[0] * m * s3[2]);
        emu_gather(&g, s, &out, &ix, &src);
        check_same("index_select", iter, &out, &w, ocap);
        free(w.buf);
        free(ob);
        free(sb);
        free(xb);
    }
}

/* ------------------------------------------------------------------ prod, i64 sum */

/* cuda_reduce.cu's k_reduce, block by block and thread by thread: the chunks, the fixed
 * trees and the last block's combination of the partials, for the accumulator of the
 * output's dtype (double, or 64-bit unsigned). visits[o * L + r] counts how often output
 * o's element r was taken. */
typedef union {
    double f;
    uint64_t u;
} acc_t;

static acc_t acc_op(acc_t a, acc_t b, int mul, int is_int)
{
    acc_t r;
    if (is_int)
        r.u = mul ? a.u * b.u : a.u + b.u;
    else
        r.f = mul ? a.f * b.f : a.f + b.f;
    return r;
}

static void emu_reduce(const emcu_red_plan *p, const em_kview *in, int mul, int is_int,
                       acc_t *vals, int64_t *offs, unsigned char *visits)
{
    acc_t id, sm[EMCU_RED_THREADS];
    id.u = 0;
    if (is_int)
        id.u = mul ? 1 : 0;
    else
        id.f = mul ? 1.0 : 0.0;
    acc_t *partial = calloc((size_t)(p->M * p->nch), sizeof(acc_t));
    assert_non_null(partial);
    for (int64_t blk = 0; blk < p->nblocks; blk++) {
        int64_t tile, ch;
        emcu_red_block(p, blk, &tile, &ch);
        for (int tid = 0; tid < EMCU_RED_THREADS; tid++) {
            const int tx = tid % p->bx, ty = tid / p->bx;
            const int64_t o = emcu_red_output(p, tile, tx);
            acc_t acc = id;
            if (o < p->M) {
                int64_t ioff, ooff, r, end, step;
                emcu_red_kept(p, o, &ioff, &ooff);
                offs[o] = ooff;
                emcu_red_range(p, ch, ty, &r, &end, &step);
                for (; r < end; r += step) {
                    const int64_t k = in->offset + ioff + emcu_red_roff(p, r);
                    acc_t x;
                    if (in->dtype == EM_BOOL)
                        x.u = ((const uint8_t *)in->buf)[k] != 0;
                    else if (is_int)
                        x.u = (uint64_t)geti(in->buf, in->dtype, k);
                    else
                        x.f = in->dtype == EM_F32 ? ((const float *)in->buf)[k]
                                                  : ((const double *)in->buf)[k];
                    acc = acc_op(acc, x, mul, is_int);
                    visits[o * p->L + r]++;
                }
            }
            sm[tid] = acc;
        }
        for (int s = p->by / 2; s > 0; s >>= 1)
            for (int tid = 0; tid < EMCU_RED_THREADS; tid++)
                if (tid / p->bx < s)
                    sm[tid] = acc_op(sm[tid], sm[tid + s * p->bx], mul, is_int);
        for (int tx = 0; tx < p->bx; tx++) {
            const int64_t o = emcu_red_output(p, tile, tx);
            if (o < p->M && p->nch == 1)
                vals[o] = sm[tx];
            else if (o < p->M)
                partial[o * p->nch + ch] = sm[tx];
        }
        if (p->nch > 1 && ch == p->nch - 1) {   /* the tile's last block combines */
            for (int tid = 0; tid < EMCU_RED_THREADS; tid++) {
                const int64_t o = emcu_red_output(p, tile, tid % p->bx);
                acc_t t = id;
                if (o < p->M)
                    for (int64_t j = tid / p->bx; j < p->nch; j += p->by)
                        t = acc_op(t, partial[o * p->nch + j], mul, is_int);
                sm[tid] = t;
            }
            for (int s = p->by / 2; s > 0; s >>= 1)
                for (int tid = 0; tid < EMCU_RED_THREADS; tid++)
                    if (tid / p->bx < s)
                        sm[tid] = acc_op(sm[tid], sm[tid + s * p->bx], mul, is_int);
            for (int tx = 0; tx < p->bx; tx++)
                if (emcu_red_output(p, tile, tx) < p->M)
                    vals[emcu_red_output(p, tile, tx)] = sm[tx];
        }
    }
    free(partial);
}

static void test_prod_int_sum(void **state)
{
    (void)state;
    /* (op, input dtype, output dtype) */
    static const int32_t cases[][3] = {
        {1, EM_F32, EM_F32}, {1, EM_F64, EM_F64}, {1, EM_I64, EM_I64}, {0, EM_I64, EM_I64},
        {0, EM_I32, EM_I64}, {0, EM_U8, EM_I64}, {0, EM_BOOL, EM_I64},
    };
    int split = 0;
    for (int iter = 0; iter < 210; iter++) {
        const int mul = cases[iter % 7][0];
        const int32_t idt = cases[iter % 7][1], odt = cases[iter % 7][2];
        const int is_int = odt == EM_I64;
        const int nd = rnd_int(1, 3);
        int64_t shape[EM_MAX_DIMS], oshape[EM_MAX_DIMS];
        const unsigned mask = rnd_u32() & ((1u << nd) - 1u);
        for (int d = 0; d < nd; d++) {
            shape[d] = iter % 6 == 0 && nd == 1 ? rnd_int(3000, 9000) : rnd_int(1, 40);
            oshape[d] = (mask >> d) & 1u ? 1 : shape[d];
        }
        em_kview in, out;
        int64_t icap, ocap;
        void *ib = make_view(&in, idt, nd, shape, &icap);
        void *ob = make_view(&out, odt, nd, oshape, &ocap);
        for (int64_t i = 0; i < icap; i++) {
            const uint32_t r = rnd_u32();
            if (idt == EM_F32)
                ((float *)ib)[i] = 0.75f + (float)(r % 512) / 1024.0f;
            else if (idt == EM_F64)
                ((double *)ib)[i] = 0.75 + (double)(r % 512) / 1024.0;
            else if (idt == EM_BOOL)
                ((uint8_t *)ib)[i] = (uint8_t)(r & 1u);
            else
                seti(ib, idt, i, mul ? (int64_t)(r % 7) - 3 : (int64_t)((uint64_t)r * 2654435761ULL));
        }
        emcu_red_plan p;
        memset(&p, 0, sizeof p);
        int bad = -1;
        assert_int_equal(emcu_red_plan_build(nd, in.shape, in.strides, out.shape, out.strides, &p,
                                             &bad),
                         EMCU_RED_OK);
        split += p.nch > 1;
        acc_t *vals = calloc((size_t)p.M, sizeof(acc_t));
        int64_t *offs = calloc((size_t)p.M, sizeof(int64_t));
        unsigned char *visits = calloc((size_t)(p.M * p.L), 1);
        assert_true(vals && offs && visits);
        emu_reduce(&p, &in, mul, is_int, vals, offs, visits);
        for (int64_t i = 0; i < p.M * p.L; i++)
            assert_int_equal(visits[i], 1);
        cpu_call(mul ? OFF(prod) : OFF(sum), &out, NULL, &in, NULL, NULL, 1.0, 0, NULL, 0);
        for (int64_t o = 0; o < p.M; o++) {
            const int64_t k = out.offset + offs[o];
            if (is_int) {
                if (((int64_t *)ob)[k] != (int64_t)vals[o].u)
                    fail_msg("%s case %d output %lld: emulated %lld, cpu %lld", mul ? "prod" : "sum",
                             iter, (long long)o, (long long)vals[o].u,
                             (long long)((int64_t *)ob)[k]);
            } else {
                const double want = odt == EM_F32 ? ((float *)ob)[k] : ((double *)ob)[k];
                const double got = odt == EM_F32 ? (double)(float)vals[o].f : vals[o].f;
                const double tol = (odt == EM_F32 ? 2.5e-7 : 1e-14) * fabs(want) *
                                   (1.0 + (double)p.L / 256.0);
                if (!(fabs(got - want) <= tol))
                    fail_msg("prod case %d output %lld: emulated %.17g, cpu %.17g", iter,
                             (long long)o, got, want);
            }
        }
        free(vals);
        free(offs);
        free(visits);
        free(ib);
        free(ob);
    }
    assert_true(split > 0);
}

/* ------------------------------------------------------------------ main */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arg_dim),
        cmocka_unit_test(test_softmax),
        cmocka_unit_test(test_indexing),
        cmocka_unit_test(test_prod_int_sum),
    };
    return cmocka_run_group_tests_name("cuda dim, indexing and reduction logic of ABI 1.2 on the host",
                                       tests, load_cpu, unload_cpu);
}
