/* backends/cpu/cpu_conv_direct.c — direct forward convolution for conv2d with few input
 * taps (C*kh*kw small: the first layer of an image net, where im2col's K = C*kh*kw makes a
 * shallow, poor gemm). Stride 1, dilation 1, one group, any kernel size and padding. One task
 * is one image: it copies the image, zero-padded, into the worker's scratch once, then for
 * each block of 4 output channels and each output row, each output is bias + the sum over
 * c, i, j in that order, 16 outputs of 4 channels at a time in registers (AVX2+FMA on
 * instances that have it, a portable loop otherwise). Every output is computed by one task,
 * so results do not depend on the thread count. */
#include "cpu_ew.h"

#include <stdint.h>
#include <string.h>

/* The direct kernel takes convolutions with C*kh*kw at most this (and the lowering the
 * rest): measured crossover, see docs/benchmarks.md. */
#ifndef DIRECT_MAX_TAPS
#define DIRECT_MAX_TAPS 36
#endif

#define DOB 4    /* output channels per task */
#define DXB 16   /* outputs along a row per register block */

typedef struct direct_plan {
    int64_t N, C, H, W, OC, oh, ow, kh, kw, ph, pw;
    int64_t wp;        /* a padded input row: round_up(ow, DXB) + kw - 1 */
    int64_t hp;        /* padded rows per channel: H + 2 ph */
    int64_t nob;       /* output channel blocks */
    const void *x, *b;
    void *y;
    int relu;          /* y through ReLU (ABI 1.6) */
    void *wk;          /* weights as [ob][c][i][j][DOB], 0 past OC */
    void *rows;        /* per worker: the padded image, C x hp rows of wp */
    size_t rows_bytes; /* between workers' rows: whole cache lines (no false sharing) */
    int f64, avx2;
} direct_plan;

/* the image x (C, H, W) zero-padded into img[(c*hp + ph + iy) * wp + pw + ix] */
#define PAD_IMAGE(T)                                                                       \
    static void pad_image_##T(const direct_plan *p, const T *x, T *img)                   \
    {                                                                                      \
        memset(img, 0, sizeof(T) * (size_t)(p->C * p->hp * p->wp));                        \
        const int64_t n = p->W < p->wp - p->pw ? p->W : p->wp - p->pw;                     \
        for (int64_t c = 0; c < p->C; c++)                                                 \
            for (int64_t iy = 0; iy < p->H; iy++)                                          \
                memcpy(img + (c * p->hp + p->ph + iy) * p->wp + p->pw,                     \
                       x + (c * p->H + iy) * p->W, sizeof(T) * (size_t)n);               \
    }
PAD_IMAGE(float)
PAD_IMAGE(double)

/* Portable: one row of DOB channels' outputs, each bias + sum over (c, i, j) in order. */
#define ROW_GENERIC(T)                                                                     \
    static void row_generic_##T(const direct_plan *p, const T *rows, const T *wk,          \
                                const T *bias, int64_t nq, T *const *out)                 \
    {                                                                                      \
        const int64_t taps = p->C * p->kh * p->kw;                                         \
        for (int64_t x0 = 0; x0 < p->ow; x0 += DXB) {                                      \
            T acc[DOB][DXB];                                                               \
            for (int q = 0; q < DOB; q++)                                                  \
                for (int u = 0; u < DXB; u++)                                              \
                    acc[q][u] = q < nq && bias ? bias[q] : (T)0;                           \
            for (int64_t t = 0; t < taps; t++) {                                           \
                const int64_t j = t % p->kw, i = t / p->kw % p->kh, c = t / (p->kw * p->kh); \
                const T *r = rows + (c * p->hp + i) * p->wp + x0 + j;                      \
                const T *wt = wk + t * DOB;                                                \
                for (int q = 0; q < DOB; q++)                                              \
                    for (int u = 0; u < DXB; u++)                                          \
                        acc[q][u] += wt[q] * r[u];                                         \
            }                                                                              \
            const int64_t n = p->ow - x0 < DXB ? p->ow - x0 : DXB;                         \
            for (int q = 0; q < DOB && p->relu; q++)                                       \
                for (int u = 0; u < DXB; u++)                                              \
                    acc[q][u] = acc[q][u] < 0 ? (T)0 : acc[q][u];                          \
            for (int64_t q = 0; q < nq; q++)                                               \
                memcpy(out[q] + x0, acc[q], sizeof(T) * (size_t)n);                        \
        }                                                                                  \
    }
ROW_GENERIC(float)
ROW_GENERIC(double)

#if defined(__x86_64__) && defined(__GNUC__) && !defined(EM_CPU_NO_SIMD)
#include <immintrin.h>
#define DIRECT_AVX2 1

/* The same sums with fused multiply-adds, 4 channels x 16 outputs in 8 ymm registers. */
__attribute__((target("avx2,fma"))) static void
row_avx2_float(const direct_plan *p, const float *rows, const float *wk, const float *bias,
               int64_t nq, float *const *out)
{
    const int64_t taps = p->C * p->kh * p->kw, kw = p->kw, wp = p->wp;
    for (int64_t x0 = 0; x0 < p->ow; x0 += DXB) {
        __m256 a00, a01, a10, a11, a20, a21, a30, a31;
        a00 = a01 = _mm256_set1_ps(bias && nq > 0 ? bias[0] : 0.0f);
        a10 = a11 = _mm256_set1_ps(bias && nq > 1 ? bias[1] : 0.0f);
        a20 = a21 = _mm256_set1_ps(bias && nq > 2 ? bias[2] : 0.0f);
        a30 = a31 = _mm256_set1_ps(bias && nq > 3 ? bias[3] : 0.0f);
        const float *wt = wk;
        for (int64_t ci = 0; ci < taps / kw; ci++) {
            const float *r = rows + (ci / p->kh * p->hp + ci % p->kh) * wp + x0;
            for (int64_t j = 0; j < kw; j++, wt += DOB) {
                const __m256 v0 = _mm256_loadu_ps(r + j), v1 = _mm256_loadu_ps(r + j + 8);
                __m256 w = _mm256_broadcast_ss(wt);
                a00 = _mm256_fmadd_ps(w, v0, a00);
                a01 = _mm256_fmadd_ps(w, v1, a01);
                w = _mm256_broadcast_ss(wt + 1);
                a10 = _mm256_fmadd_ps(w, v0, a10);
                a11 = _mm256_fmadd_ps(w, v1, a11);
                w = _mm256_broadcast_ss(wt + 2);
                a20 = _mm256_fmadd_ps(w, v0, a20);
                a21 = _mm256_fmadd_ps(w, v1, a21);
                w = _mm256_broadcast_ss(wt + 3);
                a30 = _mm256_fmadd_ps(w, v0, a30);
                a31 = _mm256_fmadd_ps(w, v1, a31);
            }
        }
        __m256 v[DOB][2] = {{a00, a01}, {a10, a11}, {a20, a21}, {a30, a31}};
        if (p->relu)   /* x < 0 ? 0 : x, as the relu kernel (NaN and -0 pass) */
            for (int q = 0; q < DOB; q++)
                for (int h = 0; h < 2; h++)
                    v[q][h] = _mm256_andnot_ps(
                        _mm256_cmp_ps(v[q][h], _mm256_setzero_ps(), _CMP_LT_OQ), v[q][h]);
        const int64_t n = p->ow - x0 < DXB ? p->ow - x0 : DXB;
        for (int64_t q = 0; q < nq; q++) {
            /* whole vectors straight out, the row's last few through a copy: a call of
             * memcpy per block cost as much as the sums on a first layer's short rows */
            float *o = out[q] + x0;
            int64_t u = 0;
            for (int h = 0; h < 2 && u + 8 <= n; h++, u += 8)
                _mm256_storeu_ps(o + u, v[q][h]);
            if (u < n) {
                float tail[8];
                _mm256_storeu_ps(tail, v[q][u / 8]);
                for (int64_t e = u; e < n; e++)
                    o[e] = tail[e - u];
            }
        }
    }
}
#endif

#define DIRECT_TASK(T)                                                                     \
    static void direct_task_##T(void *arg, int64_t task, int worker)                       \
    {                                                                                      \
        const direct_plan *p = arg;                                                        \
        const int64_t n = task, taps = p->C * p->kh * p->kw;                               \
        T *img = (T *)((char *)p->rows + (size_t)worker * p->rows_bytes);                  \
        pad_image_##T(p, (const T *)p->x + n * p->C * p->H * p->W, img);                   \
        for (int64_t ob = 0; ob < p->nob; ob++) {                                          \
            const int64_t o0 = ob * DOB, nq = p->OC - o0 < DOB ? p->OC - o0 : DOB;         \
            const T *wk = (const T *)p->wk + ob * taps * DOB;                              \
            const T *bias = p->b ? (const T *)p->b + o0 : NULL;                            \
            T *y = (T *)p->y + (n * p->OC + o0) * p->oh * p->ow;                           \
            for (int64_t oy = 0; oy < p->oh; oy++) {                                       \
                T *out[DOB];                                                               \
                for (int64_t q = 0; q < DOB; q++)                                          \
                    out[q] = q < nq ? y + (q * p->oh + oy) * p->ow : NULL;                 \
                DIRECT_ROW_##T(p, img + oy * p->wp, wk, bias, nq, out);                    \
            }                                                                              \
        }                                                                                  \
    }
#ifdef DIRECT_AVX2
#define DIRECT_ROW_float(...) \
    (p->avx2 ? row_avx2_float(__VA_ARGS__) : row_generic_float(__VA_ARGS__))
#else
#define DIRECT_ROW_float(...) row_generic_float(__VA_ARGS__)
#endif
#define DIRECT_ROW_double(...) row_generic_double(__VA_ARGS__)
DIRECT_TASK(float)
DIRECT_TASK(double)

int cpu_conv_direct_applies(const cpu_inst *inst, const em_kview *x, const em_kview *w,
                            const int64_t *ip)
{
    (void)inst;
    return ip[2] == 1 && ip[3] == 1 && ip[6] == 1 && ip[7] == 1 && ip[10] == 1 &&
           w->shape[1] * w->shape[2] * w->shape[3] <= DIRECT_MAX_TAPS && x->shape[1] == w->shape[1];
}

em_status cpu_conv_direct(cpu_inst *inst, const em_kview *x, const em_kview *w,
                          const em_kview *b, const em_kview *y, const int64_t *ip, int relu)
{
    const int f64 = y->dtype == EM_F64;
    const size_t esz = f64 ? sizeof(double) : sizeof(float);
    direct_plan p = {.N = x->shape[0], .C = x->shape[1], .H = x->shape[2], .W = x->shape[3],
                     .OC = w->shape[0], .oh = ip[8], .ow = ip[9], .kh = ip[0], .kw = ip[1],
                     .ph = ip[4], .pw = ip[5], .f64 = f64, .relu = relu};
#ifdef DIRECT_AVX2
    p.avx2 = !f64 && inst->simd >= CPU_SIMD_AVX2;
#endif
    p.wp = (p.ow + DXB - 1) / DXB * DXB + p.kw - 1;
    p.nob = (p.OC + DOB - 1) / DOB;
    p.hp = p.H + 2 * p.ph;
    const int64_t taps = p.C * p.kh * p.kw;
    const size_t wkb = (esz * (size_t)(p.nob * taps * DOB) + 63) & ~(size_t)63;
    p.rows_bytes = (esz * (size_t)(p.C * p.hp * p.wp) + 63) & ~(size_t)63;
    const size_t rb = p.rows_bytes * (size_t)inst->nthreads;
    char *s = cpu_scratch_get(inst, &inst->wino, wkb + rb);
    if (!s)
        return CPU_ERR(inst, EM_ERR_OOM, "conv2d: cannot allocate %zu bytes of workspace",
                       wkb + rb);
    p.wk = s;
    p.rows = s + wkb;
    p.x = (const char *)x->buf + (size_t)x->offset * esz;
    p.b = b ? (const char *)b->buf + (size_t)b->offset * esz : NULL;
    p.y = (char *)y->buf + (size_t)y->offset * esz;
    /* the weights as [ob][c][i][j][q], zero for channels past OC */
    const char *wsrc = (const char *)w->buf + (size_t)w->offset * esz;
    for (int64_t ob = 0; ob < p.nob; ob++)
        for (int64_t t = 0; t < taps; t++)
            for (int64_t q = 0; q < DOB; q++) {
                const int64_t o = ob * DOB + q, d = (ob * taps + t) * DOB + q;
                if (f64)
                    ((double *)p.wk)[d] = o < p.OC ? ((const double *)wsrc)[o * taps + t] : 0.0;
                else
                    ((float *)p.wk)[d] = o < p.OC ? ((const float *)wsrc)[o * taps + t] : 0.0f;
            }
    const int64_t ntasks = p.N;
    const double work = (double)ntasks * (double)(p.nob * DOB) * (double)(p.oh * p.ow) *
                        (double)taps;
    cpu_task_fn fn = f64 ? direct_task_double : direct_task_float;
    if (work < PAR_CHEAP || ntasks < 2)
        for (int64_t t = 0; t < ntasks; t++)
            fn(&p, t, 0);
    else
        cpu_parallel(inst, ntasks, fn, &p);
    return EM_OK;
}
