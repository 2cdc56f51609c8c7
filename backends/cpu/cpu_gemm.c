/* backends/cpu/cpu_gemm.c — batched row-major gemm for f32 and f64: argument checks,
 * micro-kernel selection (AVX-512 or AVX2+FMA when the CPU has it, chosen at run time
 * or by [cpu] isa, else a portable one) and the packed, cache-blocked driver in cpu_gemm_tmpl.h. */
#include "cpu.h"

#include <string.h>

/* Thread only when the product is big enough to amortise waking the pool. */
#define GEMM_PAR_WORK 1.0e6
/* Batches smaller than this (m*n*k) run one per thread rather than each split up. */
#define GEMM_BATCH_PAR_MAX 1.6e7
/* The direct (unpacked) path: products with a dimension at most this small ... */
#define GEMM_DIRECT_MAX_M 256
#define GEMM_DIRECT_MAX_N 64
#define GEMM_DIRECT_MAX_K 64
/* ... and, for transposed B (packed whole first), at most this many elements of B */
#define GEMM_DIRECT_TB_MAX 65536.0
/* the direct path packs a transposed A when it is read for this many B panels or more */
#ifndef GEMM_DIRECT_PACKA_PANELS
#define GEMM_DIRECT_PACKA_PANELS 4
#endif

#define GEMM_MAX_MR 8
#define GEMM_MAX_NR 32

/* Where a micro-kernel reads op(A) from (the ukr[] index of a kernel family). */
enum { GEMM_A_PACKED = 0, GEMM_A_ROWS = 1, GEMM_A_COLS = 2 };

#if defined(__x86_64__) && defined(__GNUC__) && !defined(EM_CPU_NO_SIMD)
#define CPU_HAVE_AVX2 1
#include <immintrin.h>

#define AVX2_FN __attribute__((target("avx2,fma")))
#define INLINE_ALWAYS inline __attribute__((always_inline))

/* The address of op(A)[i, p] for the three A layouts; `mode` is a constant in every
 * instantiation, so each kernel keeps only its own addressing. Row pointers r0..r5 serve
 * GEMM_A_ROWS (rows lda apart); packed panels hold 6 values per p; columns are lda apart
 * per p. */
#define A_AT(i) (mode == GEMM_A_ROWS ? r##i + p : mode == GEMM_A_COLS ? a + p * lda + (i) \
                                                                       : a + p * 6 + (i))

/* 6x16 f32 tile: 12 ymm accumulators + 2 for B + 1 broadcast A = 15 of 16 registers,
 * enough independent FMAs to cover the FMA latency on both ports. */
#define S_ROW(i)                                                                          \
    do {                                                                                  \
        const __m256 ai = _mm256_broadcast_ss(A_AT(i));                                   \
        c##i##0 = _mm256_fmadd_ps(ai, b0, c##i##0);                                       \
        if (nv > 1)                                                                       \
            c##i##1 = _mm256_fmadd_ps(ai, b1, c##i##1);                                   \
    } while (0)

#define S_STORE(i)                                                                        \
    do {                                                                                  \
        float *ci = c + (i) * ldc;                                                        \
        if (beta == 0.0f) {                                                               \
            _mm256_storeu_ps(ci, _mm256_mul_ps(va, c##i##0));                             \
            if (nv > 1)                                                                   \
                _mm256_storeu_ps(ci + 8, _mm256_mul_ps(va, c##i##1));                     \
        } else {                                                                          \
            _mm256_storeu_ps(ci, _mm256_fmadd_ps(va, c##i##0,                             \
                                                 _mm256_mul_ps(vb, _mm256_loadu_ps(ci)))); \
            if (nv > 1)                                                                   \
                _mm256_storeu_ps(ci + 8,                                                  \
                                 _mm256_fmadd_ps(va, c##i##1,                             \
                                                 _mm256_mul_ps(vb, _mm256_loadu_ps(ci + 8)))); \
        }                                                                                 \
    } while (0)

#define C_PREFETCH(T, nr)                                                                 \
    for (int i_ = 0; i_ < nm; i_++) {                                                     \
        _mm_prefetch((const char *)(c + i_ * ldc), _MM_HINT_T0);                          \
        _mm_prefetch((const char *)(c + i_ * ldc + (nr) - 1), _MM_HINT_T0);               \
    }

AVX2_FN static INLINE_ALWAYS void avx2_f32_body(const int mode, const int nv, const int nm,
                                                int64_t kc, const float *a, int64_t lda,
                                                const float *b,
                                                int64_t ldb, float *c, int64_t ldc, float alpha,
                                                float beta)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    const float *r0 = a, *r1 = a + lda, *r2 = a + 2 * lda, *r3 = a + 3 * lda;
    const float *r4 = a + 4 * lda, *r5 = a + 5 * lda;
    (void)r0, (void)r1, (void)r2, (void)r3, (void)r4, (void)r5;
    C_PREFETCH(float, 8 * nv);
#pragma GCC unroll 4
    for (int64_t p = 0; p < kc; p++) {
        const __m256 b0 = _mm256_loadu_ps(b), b1 = nv > 1 ? _mm256_loadu_ps(b + 8) : b0;
        S_ROW(0);
        S_ROW(1);
        S_ROW(2);
        S_ROW(3);
        if (nm > 4) {
            S_ROW(4);
            S_ROW(5);
        }
        b += ldb;
    }
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    S_STORE(0);
    S_STORE(1);
    S_STORE(2);
    S_STORE(3);
    if (nm > 4) {
        S_STORE(4);
        S_STORE(5);
    }
}

#define D_ROW(i)                                                                          \
    do {                                                                                  \
        const __m256d ai = _mm256_broadcast_sd(A_AT(i));                                  \
        c##i##0 = _mm256_fmadd_pd(ai, b0, c##i##0);                                       \
        if (nv > 1)                                                                       \
            c##i##1 = _mm256_fmadd_pd(ai, b1, c##i##1);                                   \
    } while (0)

#define D_STORE(i)                                                                        \
    do {                                                                                  \
        double *ci = c + (i) * ldc;                                                       \
        if (beta == 0.0) {                                                                \
            _mm256_storeu_pd(ci, _mm256_mul_pd(va, c##i##0));                             \
            if (nv > 1)                                                                   \
                _mm256_storeu_pd(ci + 4, _mm256_mul_pd(va, c##i##1));                     \
        } else {                                                                          \
            _mm256_storeu_pd(ci, _mm256_fmadd_pd(va, c##i##0,                             \
                                                 _mm256_mul_pd(vb, _mm256_loadu_pd(ci)))); \
            if (nv > 1)                                                                   \
                _mm256_storeu_pd(ci + 4,                                                  \
                                 _mm256_fmadd_pd(va, c##i##1,                             \
                                                 _mm256_mul_pd(vb, _mm256_loadu_pd(ci + 4)))); \
        }                                                                                 \
    } while (0)

/* 6x8 f64 tile, same register budget as the f32 one. */
AVX2_FN static INLINE_ALWAYS void avx2_f64_body(const int mode, const int nv, const int nm,
                                                int64_t kc, const double *a, int64_t lda,
                                                const double *b,
                                                int64_t ldb, double *c, int64_t ldc,
                                                double alpha, double beta)
{
    __m256d c00 = _mm256_setzero_pd(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256d c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    const double *r0 = a, *r1 = a + lda, *r2 = a + 2 * lda, *r3 = a + 3 * lda;
    const double *r4 = a + 4 * lda, *r5 = a + 5 * lda;
    (void)r0, (void)r1, (void)r2, (void)r3, (void)r4, (void)r5;
    C_PREFETCH(double, 4 * nv);
#pragma GCC unroll 4
    for (int64_t p = 0; p < kc; p++) {
        const __m256d b0 = _mm256_loadu_pd(b), b1 = nv > 1 ? _mm256_loadu_pd(b + 4) : b0;
        D_ROW(0);
        D_ROW(1);
        D_ROW(2);
        D_ROW(3);
        if (nm > 4) {
            D_ROW(4);
            D_ROW(5);
        }
        b += ldb;
    }
    const __m256d va = _mm256_set1_pd(alpha), vb = _mm256_set1_pd(beta);
    D_STORE(0);
    D_STORE(1);
    D_STORE(2);
    D_STORE(3);
    if (nm > 4) {
        D_STORE(4);
        D_STORE(5);
    }
}

/* The kernels of one family: nv vectors of B per p (2: the full NR-wide tile; 1: half of
 * it, for a right-edge panel at most NR/2 wide), nm rows (6: the full MR; 4: for a bottom
 * edge of at most 4 rows). The narrow ones have fewer independent FMA chains, but do a
 * fraction of the full tile's work where the rest would be padding; each element is summed
 * by the same fused multiply-adds in the same order, so they give the full tile's bits. */
#define AVX2_UKR(T, S, MODE, NAME, NV, NM)                                                \
    AVX2_FN static void NAME(int64_t kc, const T *a, int64_t lda, const T *b, int64_t ldb, \
                             T *c, int64_t ldc, T alpha, T beta)                          \
    {                                                                                     \
        avx2_##S##_body(MODE, NV, NM, kc, a, lda, b, ldb, c, ldc, alpha, beta);           \
    }
#define AVX2_UKR4(T, S, MODE, NAME)                                                       \
    AVX2_UKR(T, S, MODE, NAME, 2, 6) AVX2_UKR(T, S, MODE, NAME##_half, 1, 6)             \
    AVX2_UKR(T, S, MODE, NAME##_m4, 2, 4) AVX2_UKR(T, S, MODE, NAME##_m4half, 1, 4)
AVX2_UKR4(float, f32, GEMM_A_PACKED, ukr_avx2_f32_packed)
AVX2_UKR4(float, f32, GEMM_A_ROWS, ukr_avx2_f32_rows)
AVX2_UKR4(float, f32, GEMM_A_COLS, ukr_avx2_f32_cols)
AVX2_UKR4(double, f64, GEMM_A_PACKED, ukr_avx2_f64_packed)
AVX2_UKR4(double, f64, GEMM_A_ROWS, ukr_avx2_f64_rows)
AVX2_UKR4(double, f64, GEMM_A_COLS, ukr_avx2_f64_cols)

/* A right edge at most 4 columns wide (n = 100 leaves 4), with the rows in the vector
 * lanes: for each p, one load of a packed 6-row A panel (lanes 6 and 7 masked off), one
 * broadcast of B[p][j] per column, one FMA per column. The 6 x 16 tile needs 6 broadcasts
 * of A per p for 12 FMAs; a 6 x 8 (or 12 x 8) kernel on the edge needs as many broadcasts
 * for half the FMAs, and measured as slow as a full tile, for 4 useful columns of 16. Here
 * two panels (12 rows) take 2 loads, 4 broadcasts and 8 FMAs per p. Each element is the
 * same chain of fma(a[i][p], b[p][j], acc) over p ascending from zero as in the tiles
 * (a product's operands commute exactly), so the bits are theirs. t receives the raw sums,
 * np * 6 rows of 4; the caller writes them back as it does a buffered tile. */
AVX2_FN static void edge4_f32_avx2(int64_t kc, int np, const float *a, const float *b,
                                   int64_t ldb, float *t)
{
    const __m256i m6 = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);
    const float *a1 = a + 6 * kc;
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c02 = c00, c03 = c00;
    __m256 c10 = c00, c11 = c00, c12 = c00, c13 = c00;
    if (np == 2) {
#pragma GCC unroll 2
        for (int64_t p = 0; p < kc; p++) {
            const __m256 x0 = _mm256_maskload_ps(a + p * 6, m6);
            const __m256 x1 = _mm256_maskload_ps(a1 + p * 6, m6);
            const float *bp = b + p * ldb;
            __m256 bj = _mm256_broadcast_ss(bp);
            c00 = _mm256_fmadd_ps(x0, bj, c00);
            c10 = _mm256_fmadd_ps(x1, bj, c10);
            bj = _mm256_broadcast_ss(bp + 1);
            c01 = _mm256_fmadd_ps(x0, bj, c01);
            c11 = _mm256_fmadd_ps(x1, bj, c11);
            bj = _mm256_broadcast_ss(bp + 2);
            c02 = _mm256_fmadd_ps(x0, bj, c02);
            c12 = _mm256_fmadd_ps(x1, bj, c12);
            bj = _mm256_broadcast_ss(bp + 3);
            c03 = _mm256_fmadd_ps(x0, bj, c03);
            c13 = _mm256_fmadd_ps(x1, bj, c13);
        }
    } else {
        for (int64_t p = 0; p < kc; p++) {
            const __m256 x0 = _mm256_maskload_ps(a + p * 6, m6);
            const float *bp = b + p * ldb;
            c00 = _mm256_fmadd_ps(x0, _mm256_broadcast_ss(bp), c00);
            c01 = _mm256_fmadd_ps(x0, _mm256_broadcast_ss(bp + 1), c01);
            c02 = _mm256_fmadd_ps(x0, _mm256_broadcast_ss(bp + 2), c02);
            c03 = _mm256_fmadd_ps(x0, _mm256_broadcast_ss(bp + 3), c03);
        }
    }
    float s[8][8];
    _mm256_storeu_ps(s[0], c00);
    _mm256_storeu_ps(s[1], c01);
    _mm256_storeu_ps(s[2], c02);
    _mm256_storeu_ps(s[3], c03);
    _mm256_storeu_ps(s[4], c10);
    _mm256_storeu_ps(s[5], c11);
    _mm256_storeu_ps(s[6], c12);
    _mm256_storeu_ps(s[7], c13);
    for (int q = 0; q < np; q++)
        for (int r = 0; r < 6; r++)
            for (int j = 0; j < 4; j++)
                t[(q * 6 + r) * 4 + j] = s[q * 4 + j][r];
}

/* Packing that transposes (a row-major A into MR-interleaved panels, a transposed B into
 * NR-wide ones), 8 x 8 blocks at a time in registers rather than one element per load: the
 * scalar loops cost a fifth of a forward nn.Linear (x @ weight^T packs both ways). They
 * only move values, so results are unchanged. */
#define TRANSPOSE8(r0, r1, r2, r3, r4, r5, r6, r7)                                       \
    do {                                                                                  \
        __m256 t0_ = _mm256_unpacklo_ps(r0, r1), t1_ = _mm256_unpackhi_ps(r0, r1);        \
        __m256 t2_ = _mm256_unpacklo_ps(r2, r3), t3_ = _mm256_unpackhi_ps(r2, r3);        \
        __m256 t4_ = _mm256_unpacklo_ps(r4, r5), t5_ = _mm256_unpackhi_ps(r4, r5);        \
        __m256 t6_ = _mm256_unpacklo_ps(r6, r7), t7_ = _mm256_unpackhi_ps(r6, r7);        \
        __m256 s0_ = _mm256_shuffle_ps(t0_, t2_, 0x44), s1_ = _mm256_shuffle_ps(t0_, t2_, 0xee); \
        __m256 s2_ = _mm256_shuffle_ps(t1_, t3_, 0x44), s3_ = _mm256_shuffle_ps(t1_, t3_, 0xee); \
        __m256 s4_ = _mm256_shuffle_ps(t4_, t6_, 0x44), s5_ = _mm256_shuffle_ps(t4_, t6_, 0xee); \
        __m256 s6_ = _mm256_shuffle_ps(t5_, t7_, 0x44), s7_ = _mm256_shuffle_ps(t5_, t7_, 0xee); \
        r0 = _mm256_permute2f128_ps(s0_, s4_, 0x20);                                      \
        r1 = _mm256_permute2f128_ps(s1_, s5_, 0x20);                                      \
        r2 = _mm256_permute2f128_ps(s2_, s6_, 0x20);                                      \
        r3 = _mm256_permute2f128_ps(s3_, s7_, 0x20);                                      \
        r4 = _mm256_permute2f128_ps(s0_, s4_, 0x31);                                      \
        r5 = _mm256_permute2f128_ps(s1_, s5_, 0x31);                                      \
        r6 = _mm256_permute2f128_ps(s2_, s6_, 0x31);                                      \
        r7 = _mm256_permute2f128_ps(s3_, s7_, 0x31);                                      \
    } while (0)

/* A full 6-row panel of a row-major A (rows lda apart) as d[p * 6 + r]. */
AVX2_FN static void pack_a6_rows_f32_avx2(const float *A, int64_t lda, int64_t kc, float *d)
{
    const float *a0 = A, *a1 = A + lda, *a2 = A + 2 * lda, *a3 = A + 3 * lda,
                *a4 = A + 4 * lda, *a5 = A + 5 * lda;
    int64_t p = 0;
    for (; p + 8 <= kc; p += 8) {
        __m256 r0 = _mm256_loadu_ps(a0 + p), r1 = _mm256_loadu_ps(a1 + p);
        __m256 r2 = _mm256_loadu_ps(a2 + p), r3 = _mm256_loadu_ps(a3 + p);
        __m256 r4 = _mm256_loadu_ps(a4 + p), r5 = _mm256_loadu_ps(a5 + p);
        __m256 r6 = _mm256_setzero_ps(), r7 = _mm256_setzero_ps();
        TRANSPOSE8(r0, r1, r2, r3, r4, r5, r6, r7);
        float *o = d + p * 6;
#define A6_STORE(q, r)                                                                    \
    _mm_storeu_ps(o + 6 * (q), _mm256_castps256_ps128(r));                                \
    _mm_storel_pi((__m64 *)(o + 6 * (q) + 4), _mm256_extractf128_ps(r, 1))
        A6_STORE(0, r0); A6_STORE(1, r1); A6_STORE(2, r2); A6_STORE(3, r3);
        A6_STORE(4, r4); A6_STORE(5, r5); A6_STORE(6, r6); A6_STORE(7, r7);
#undef A6_STORE
    }
    for (; p < kc; p++) {
        d[p * 6 + 0] = a0[p]; d[p * 6 + 1] = a1[p]; d[p * 6 + 2] = a2[p];
        d[p * 6 + 3] = a3[p]; d[p * 6 + 4] = a4[p]; d[p * 6 + 5] = a5[p];
    }
}

/* A full 16-column panel of a transposed B (column j at B + j * ldb, contiguous in p) as
 * d[p * 16 + j]. */
AVX2_FN static void pack_b16_cols_f32_avx2(const float *B, int64_t ldb, int64_t kc, float *d)
{
    int64_t p = 0;
    for (; p + 8 <= kc; p += 8)
        for (int h = 0; h < 16; h += 8) {
            const float *b = B + h * ldb + p;
            __m256 r0 = _mm256_loadu_ps(b), r1 = _mm256_loadu_ps(b + ldb);
            __m256 r2 = _mm256_loadu_ps(b + 2 * ldb), r3 = _mm256_loadu_ps(b + 3 * ldb);
            __m256 r4 = _mm256_loadu_ps(b + 4 * ldb), r5 = _mm256_loadu_ps(b + 5 * ldb);
            __m256 r6 = _mm256_loadu_ps(b + 6 * ldb), r7 = _mm256_loadu_ps(b + 7 * ldb);
            TRANSPOSE8(r0, r1, r2, r3, r4, r5, r6, r7);
            float *o = d + p * 16 + h;
            _mm256_storeu_ps(o, r0);
            _mm256_storeu_ps(o + 16, r1);
            _mm256_storeu_ps(o + 32, r2);
            _mm256_storeu_ps(o + 48, r3);
            _mm256_storeu_ps(o + 64, r4);
            _mm256_storeu_ps(o + 80, r5);
            _mm256_storeu_ps(o + 96, r6);
            _mm256_storeu_ps(o + 112, r7);
        }
    for (; p < kc; p++)
        for (int j = 0; j < 16; j++)
            d[p * 16 + j] = B[j * ldb + p];
}

/* ---- AVX-512: the same 6-row tiles, twice as wide (6x32 f32, 6x16 f64) in zmm registers:
 * 12 accumulators + 2 for B + 1 broadcast A of the 32. Each C element is summed over p in
 * the same order with the same fused multiply-adds and the same KC as the AVX2 kernels, so
 * full tiles give the same bits; the 6-row A panels and their packer are shared. */
#define AVX512_FN __attribute__((target("avx512f,avx2,fma")))

#define Z_ROW(i, VT, BC, FMA)                                                             \
    do {                                                                                  \
        const VT ai = BC(*A_AT(i));                                                       \
        c##i##0 = FMA(ai, b0, c##i##0);                                                   \
        if (nv > 1)                                                                       \
            c##i##1 = FMA(ai, b1, c##i##1);                                               \
    } while (0)

#define ZS_STORE(i)                                                                       \
    do {                                                                                  \
        float *ci = c + (i) * ldc;                                                        \
        if (beta == 0.0f) {                                                               \
            _mm512_storeu_ps(ci, _mm512_mul_ps(va, c##i##0));                             \
            if (nv > 1)                                                                   \
                _mm512_storeu_ps(ci + 16, _mm512_mul_ps(va, c##i##1));                    \
        } else {                                                                          \
            _mm512_storeu_ps(ci, _mm512_fmadd_ps(va, c##i##0,                             \
                                                 _mm512_mul_ps(vb, _mm512_loadu_ps(ci)))); \
            if (nv > 1)                                                                   \
                _mm512_storeu_ps(ci + 16,                                                 \
                                 _mm512_fmadd_ps(va, c##i##1,                             \
                                                 _mm512_mul_ps(vb, _mm512_loadu_ps(ci + 16)))); \
        }                                                                                 \
    } while (0)

AVX512_FN static INLINE_ALWAYS void avx512_f32_body(const int mode, const int nv, const int nm,
                                                    int64_t kc, const float *a, int64_t lda,
                                                    const float *b,
                                                    int64_t ldb, float *c, int64_t ldc,
                                                    float alpha, float beta)
{
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m512 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    const float *r0 = a, *r1 = a + lda, *r2 = a + 2 * lda, *r3 = a + 3 * lda;
    const float *r4 = a + 4 * lda, *r5 = a + 5 * lda;
    (void)r0, (void)r1, (void)r2, (void)r3, (void)r4, (void)r5;
    C_PREFETCH(float, 16 * nv);
#pragma GCC unroll 4
    for (int64_t p = 0; p < kc; p++) {
        const __m512 b0 = _mm512_loadu_ps(b), b1 = nv > 1 ? _mm512_loadu_ps(b + 16) : b0;
        Z_ROW(0, __m512, _mm512_set1_ps, _mm512_fmadd_ps);
        Z_ROW(1, __m512, _mm512_set1_ps, _mm512_fmadd_ps);
        Z_ROW(2, __m512, _mm512_set1_ps, _mm512_fmadd_ps);
        Z_ROW(3, __m512, _mm512_set1_ps, _mm512_fmadd_ps);
        if (nm > 4) {
            Z_ROW(4, __m512, _mm512_set1_ps, _mm512_fmadd_ps);
            Z_ROW(5, __m512, _mm512_set1_ps, _mm512_fmadd_ps);
        }
        b += ldb;
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    ZS_STORE(0);
    ZS_STORE(1);
    ZS_STORE(2);
    ZS_STORE(3);
    if (nm > 4) {
        ZS_STORE(4);
        ZS_STORE(5);
    }
}

#define ZD_STORE(i)                                                                       \
    do {                                                                                  \
        double *ci = c + (i) * ldc;                                                       \
        if (beta == 0.0) {                                                                \
            _mm512_storeu_pd(ci, _mm512_mul_pd(va, c##i##0));                             \
            if (nv > 1)                                                                   \
                _mm512_storeu_pd(ci + 8, _mm512_mul_pd(va, c##i##1));                     \
        } else {                                                                          \
            _mm512_storeu_pd(ci, _mm512_fmadd_pd(va, c##i##0,                             \
                                                 _mm512_mul_pd(vb, _mm512_loadu_pd(ci)))); \
            if (nv > 1)                                                                   \
                _mm512_storeu_pd(ci + 8,                                                  \
                                 _mm512_fmadd_pd(va, c##i##1,                             \
                                                 _mm512_mul_pd(vb, _mm512_loadu_pd(ci + 8)))); \
        }                                                                                 \
    } while (0)

AVX512_FN static INLINE_ALWAYS void avx512_f64_body(const int mode, const int nv, const int nm,
                                                    int64_t kc, const double *a, int64_t lda,
                                                    const double *b, int64_t ldb, double *c,
                                                    int64_t ldc, double alpha, double beta)
{
    __m512d c00 = _mm512_setzero_pd(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m512d c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    const double *r0 = a, *r1 = a + lda, *r2 = a + 2 * lda, *r3 = a + 3 * lda;
    const double *r4 = a + 4 * lda, *r5 = a + 5 * lda;
    (void)r0, (void)r1, (void)r2, (void)r3, (void)r4, (void)r5;
    C_PREFETCH(double, 8 * nv);
#pragma GCC unroll 4
    for (int64_t p = 0; p < kc; p++) {
        const __m512d b0 = _mm512_loadu_pd(b), b1 = nv > 1 ? _mm512_loadu_pd(b + 8) : b0;
        Z_ROW(0, __m512d, _mm512_set1_pd, _mm512_fmadd_pd);
        Z_ROW(1, __m512d, _mm512_set1_pd, _mm512_fmadd_pd);
        Z_ROW(2, __m512d, _mm512_set1_pd, _mm512_fmadd_pd);
        Z_ROW(3, __m512d, _mm512_set1_pd, _mm512_fmadd_pd);
        if (nm > 4) {
            Z_ROW(4, __m512d, _mm512_set1_pd, _mm512_fmadd_pd);
            Z_ROW(5, __m512d, _mm512_set1_pd, _mm512_fmadd_pd);
        }
        b += ldb;
    }
    const __m512d va = _mm512_set1_pd(alpha), vb = _mm512_set1_pd(beta);
    ZD_STORE(0);
    ZD_STORE(1);
    ZD_STORE(2);
    ZD_STORE(3);
    if (nm > 4) {
        ZD_STORE(4);
        ZD_STORE(5);
    }
}

#define AVX512_UKR(T, S, MODE, NAME, NV, NM)                                              \
    AVX512_FN static void NAME(int64_t kc, const T *a, int64_t lda, const T *b,           \
                               int64_t ldb, T *c, int64_t ldc, T alpha, T beta)           \
    {                                                                                     \
        avx512_##S##_body(MODE, NV, NM, kc, a, lda, b, ldb, c, ldc, alpha, beta);         \
    }
#define AVX512_UKR4(T, S, MODE, NAME)                                                     \
    AVX512_UKR(T, S, MODE, NAME, 2, 6) AVX512_UKR(T, S, MODE, NAME##_half, 1, 6)         \
    AVX512_UKR(T, S, MODE, NAME##_m4, 2, 4) AVX512_UKR(T, S, MODE, NAME##_m4half, 1, 4)
AVX512_UKR4(float, f32, GEMM_A_PACKED, ukr_avx512_f32_packed)
AVX512_UKR4(float, f32, GEMM_A_ROWS, ukr_avx512_f32_rows)
AVX512_UKR4(float, f32, GEMM_A_COLS, ukr_avx512_f32_cols)
AVX512_UKR4(double, f64, GEMM_A_PACKED, ukr_avx512_f64_packed)
AVX512_UKR4(double, f64, GEMM_A_ROWS, ukr_avx512_f64_rows)
AVX512_UKR4(double, f64, GEMM_A_COLS, ukr_avx512_f64_cols)

/* A full 32-column panel of a transposed B as d[p * 32 + j]: the AVX2 8 x 8 transposes
 * (the packer is not on the hot path; moving values gives the same bits any way). */
AVX2_FN static void pack_b32_cols_f32_avx2(const float *B, int64_t ldb, int64_t kc, float *d)
{
    int64_t p = 0;
    for (; p + 8 <= kc; p += 8)
        for (int h = 0; h < 32; h += 8) {
            const float *b = B + h * ldb + p;
            __m256 r0 = _mm256_loadu_ps(b), r1 = _mm256_loadu_ps(b + ldb);
            __m256 r2 = _mm256_loadu_ps(b + 2 * ldb), r3 = _mm256_loadu_ps(b + 3 * ldb);
            __m256 r4 = _mm256_loadu_ps(b + 4 * ldb), r5 = _mm256_loadu_ps(b + 5 * ldb);
            __m256 r6 = _mm256_loadu_ps(b + 6 * ldb), r7 = _mm256_loadu_ps(b + 7 * ldb);
            TRANSPOSE8(r0, r1, r2, r3, r4, r5, r6, r7);
            float *o = d + p * 32 + h;
            _mm256_storeu_ps(o, r0);
            _mm256_storeu_ps(o + 32, r1);
            _mm256_storeu_ps(o + 64, r2);
            _mm256_storeu_ps(o + 96, r3);
            _mm256_storeu_ps(o + 128, r4);
            _mm256_storeu_ps(o + 160, r5);
            _mm256_storeu_ps(o + 192, r6);
            _mm256_storeu_ps(o + 224, r7);
        }
    for (; p < kc; p++)
        for (int j = 0; j < 32; j++)
            d[p * 32 + j] = B[j * ldb + p];
}
#undef TRANSPOSE8
#endif

/* Which path a product takes: decided by its shape alone (never the thread count), see
 * cpu_gemm_tmpl.h. */
static int cpu_gemm_direct(const cpu_inst *inst, int64_t m, int64_t n, int64_t k, int ta,
                           int tb, size_t esz)
{
    (void)ta;
    (void)esz;
    if (inst->gemm_path == CPU_GEMM_DIRECT)
        return 1;
    if (inst->gemm_path == CPU_GEMM_PACKED)
        return 0;
    /* transposed B is packed whole first: only when it is small */
    if (tb && (double)k * (double)n > GEMM_DIRECT_TB_MAX)
        return 0;
    /* packing pays only when each packed panel is reused enough */
    return m <= GEMM_DIRECT_MAX_M || n <= GEMM_DIRECT_MAX_N || k <= GEMM_DIRECT_MAX_K;
}

/* ---- f32 */
#define GT float
#define GS f32
#define GEN_MR 4
#define GEN_NR 8
#include "cpu_gemm_tmpl.h"
#undef GT
#undef GS
#undef GEN_MR
#undef GEN_NR

/* ---- f64 */
#define GT double
#define GS f64
#define GEN_MR 4
#define GEN_NR 4
#include "cpu_gemm_tmpl.h"
#undef GT
#undef GS
#undef GEN_MR
#undef GEN_NR

/* Block sizes: KC x NR of B plus MR x KC of A stay in L1, MC x KC of A in L2, KC x NC of
 * B in L3. MC is a multiple of MR and NC of NR. MC and NC here are defaults, replaced at
 * run time from the cache sizes (blocking()); KC stays fixed so that results do not depend
 * on the machine's caches. */
static const gkern_f32 kern_f32_generic = {
    4, 8, 128, 256, 2048, {ukr_generic_packed_f32, ukr_generic_rows_f32, ukr_generic_cols_f32},
    {NULL, NULL, NULL}, {NULL, NULL, NULL}, {NULL, NULL, NULL}, NULL, NULL, NULL};
static const gkern_f64 kern_f64_generic = {
    4, 4, 96, 256, 2048, {ukr_generic_packed_f64, ukr_generic_rows_f64, ukr_generic_cols_f64},
    {NULL, NULL, NULL}, {NULL, NULL, NULL}, {NULL, NULL, NULL}, NULL, NULL, NULL};
#ifdef CPU_HAVE_AVX2
static const gkern_f32 kern_f32_avx2 = {
    6, 16, 120, 256, 3072, {ukr_avx2_f32_packed, ukr_avx2_f32_rows, ukr_avx2_f32_cols},
    {ukr_avx2_f32_packed_half, ukr_avx2_f32_rows_half, ukr_avx2_f32_cols_half},
    {ukr_avx2_f32_packed_m4, ukr_avx2_f32_rows_m4, ukr_avx2_f32_cols_m4},
    {ukr_avx2_f32_packed_m4half, ukr_avx2_f32_rows_m4half, ukr_avx2_f32_cols_m4half},
    pack_a6_rows_f32_avx2, pack_b16_cols_f32_avx2, edge4_f32_avx2};
static const gkern_f64 kern_f64_avx2 = {
    6, 8, 96, 256, 2048, {ukr_avx2_f64_packed, ukr_avx2_f64_rows, ukr_avx2_f64_cols},
    {ukr_avx2_f64_packed_half, ukr_avx2_f64_rows_half, ukr_avx2_f64_cols_half},
    {ukr_avx2_f64_packed_m4, ukr_avx2_f64_rows_m4, ukr_avx2_f64_cols_m4},
    {ukr_avx2_f64_packed_m4half, ukr_avx2_f64_rows_m4half, ukr_avx2_f64_cols_m4half},
    NULL, NULL, NULL};
static const gkern_f32 kern_f32_avx512 = {
    6, 32, 120, 256, 3072, {ukr_avx512_f32_packed, ukr_avx512_f32_rows, ukr_avx512_f32_cols},
    {ukr_avx512_f32_packed_half, ukr_avx512_f32_rows_half, ukr_avx512_f32_cols_half},
    {ukr_avx512_f32_packed_m4, ukr_avx512_f32_rows_m4, ukr_avx512_f32_cols_m4},
    {ukr_avx512_f32_packed_m4half, ukr_avx512_f32_rows_m4half, ukr_avx512_f32_cols_m4half},
    pack_a6_rows_f32_avx2, pack_b32_cols_f32_avx2, edge4_f32_avx2};
static const gkern_f64 kern_f64_avx512 = {
    6, 16, 96, 256, 2048, {ukr_avx512_f64_packed, ukr_avx512_f64_rows, ukr_avx512_f64_cols},
    {ukr_avx512_f64_packed_half, ukr_avx512_f64_rows_half, ukr_avx512_f64_cols_half},
    {ukr_avx512_f64_packed_m4, ukr_avx512_f64_rows_m4, ukr_avx512_f64_cols_m4},
    {ukr_avx512_f64_packed_m4half, ukr_avx512_f64_rows_m4half, ukr_avx512_f64_cols_m4half},
    NULL, NULL, NULL};
#endif

/* MC from the L2 (half of it for the A block), NC from the L3 (a quarter for the B block,
 * the rest for C, A and the other cores), within sane bounds. */
static void blocking(const cpu_inst *inst, int mr, int nr, int64_t kc, size_t esz, int64_t *mc,
                     int64_t *nc)
{
    if (inst->l2_bytes > 0) {
        int64_t v = (int64_t)(inst->l2_bytes / 2 / (size_t)kc / esz) / mr * mr;
        if (v < 4 * mr)
            v = 4 * mr;
        if (v > 1020)
            v = 1020 / mr * mr;
        *mc = v;
    }
    if (inst->l3_bytes > 0) {
        int64_t v = (int64_t)(inst->l3_bytes / 4 / (size_t)kc / esz) / nr * nr;
        if (v < 16 * nr)
            v = 16 * nr;
        if (v > 4096)
            v = 4096 / nr * nr;
        *nc = v;
    }
}

static em_status gemm_any(cpu_inst *inst, const em_gemm_args *g, int worker, int reserve)
{
    int empty;
    em_status st = emk_gemm_check(inst->host, inst->hc, "cpu",
                                  EM_DTYPE_BIT(EM_F32) | EM_DTYPE_BIT(EM_F64), g, &empty);
    if (st != EM_OK || empty)
        return st;

    if (g->dtype == EM_F32) {
        gkern_f32 kr = kern_f32_generic;
#ifdef CPU_HAVE_AVX2
        if (inst->simd == CPU_SIMD_AVX512)
            kr = kern_f32_avx512;
        else if (inst->simd == CPU_SIMD_AVX2)
            kr = kern_f32_avx2;
#endif
        blocking(inst, kr.mr, kr.nr, kr.kc, sizeof(float), &kr.mc, &kr.nc);
        return gemm_run_f32(inst, &kr, g, worker, reserve);
    }
    gkern_f64 kr = kern_f64_generic;
#ifdef CPU_HAVE_AVX2
    if (inst->simd == CPU_SIMD_AVX512)
        kr = kern_f64_avx512;
    else if (inst->simd == CPU_SIMD_AVX2)
        kr = kern_f64_avx2;
#endif
    blocking(inst, kr.mr, kr.nr, kr.kc, sizeof(double), &kr.mc, &kr.nc);
    return gemm_run_f64(inst, &kr, g, worker, reserve);
}

em_status cpu_gemm(void *dev, const em_gemm_args *g)
{
    return gemm_any(dev, g, -1, 0);
}

em_status cpu_gemm_worker(cpu_inst *inst, const em_gemm_args *g, int worker, int reserve)
{
    return gemm_any(inst, g, worker, reserve);
}
