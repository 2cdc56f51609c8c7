/* backends/cpu/cpu_gemm_tmpl.h — the gemm drivers, written once and included by cpu_gemm.c
 * per dtype with GT (element type), GS (name suffix), GEN_MR and GEN_NR (the portable
 * micro-kernel's tile) defined. Kept as a template header rather than one big macro so
 * compiler messages and debuggers point at real lines.
 *
 * Every C tile is computed the same way on every path: for each KC-deep slice of k in
 * order, an MR x NR micro-kernel accumulates the slice in registers (one multiply-add
 * chain per element, p ascending) and then writes C = alpha * acc + beta * C (beta = 1 after
 * the first slice). Tiles cut by the edges of C go through a small buffer. Only where the
 * micro-kernel reads its operands from differs between paths, so the result of a product
 * depends neither on the path taken nor on the thread count.
 *
 * Two paths:
 * - direct: no packing. The micro-kernel broadcasts op(A) straight from the caller's rows
 *   (row-major A) or columns (transposed A) and loads rows of B in place (row-major B,
 *   rows ldb apart); only panels cut by an edge of A or B are copied, zero-padded, into
 *   per-worker scratch (and B's panels when its rows are a multiple of 4 KiB apart). Threads split C into blocks of whole MR x NR tiles, one fork per
 *   product and no barrier. This is what small and skinny products (a training step's
 *   64 x 1000 x 100 layers and their gradients) want: packing them costs as much as
 *   multiplying, and forking twice per k slice costs more than the work.
 * - packed (Goto/BLIS): for each NC-wide column panel and KC-deep slice of k, op(B) is
 *   packed into NR-wide micro-panels (shared by all threads, packed in parallel), then each
 *   MC-high block of op(A) is packed into MR-high micro-panels (per worker) and the
 *   micro-kernel runs on contiguous, aligned panels. For big products and transposed B. */

#define GJOIN2(a, b) a##_##b
#define GJOIN(a, b) GJOIN2(a, b)
#define G(name) GJOIN(name, GS)

/* kc-deep micro-kernel: acc = sum_p op(A)[i, p] * B[p, j] over an MR x NR tile, then
 * C = alpha * acc + beta * C (C rows ldc apart). Where A is read from depends on the
 * variant (GEMM_A_*): packed (MR values per p), rows (a + i*lda + p) or columns
 * (a + p*lda + i). Row p of B is at b + p*ldb (NR values, any alignment). */
typedef void (*G(ukr_fn))(int64_t kc, const GT *a, int64_t lda, const GT *b, int64_t ldb,
                          GT *c, int64_t ldc, GT alpha, GT beta);

typedef struct G(gkern) {
    int mr, nr;
    int64_t mc, kc, nc;
    G(ukr_fn) ukr[3];             /* by GEMM_A_* */
    /* optional narrower kernels (NULL: none), by GEMM_A_*, with the same sums per element as
     * ukr[]: half, MR x NR/2 for a right-edge panel at most NR/2 wide; m4, 4 x NR for a
     * bottom edge of at most 4 rows (MR is 6 where they exist); m4half, 4 x NR/2 */
    G(ukr_fn) half[3], m4[3], m4half[3];
    /* optional packers of a full panel, NULL: the loops below. pack_a_rows: MR rows of a
     * row-major A (lda apart) for kc values; pack_b_cols: NR columns of a transposed B
     * (ldb apart) */
    void (*pack_a_rows)(const GT *A, int64_t lda, int64_t kc, GT *d);
    void (*pack_b_cols)(const GT *B, int64_t ldb, int64_t kc, GT *d);
    /* optional, NULL: none. A right edge at most 4 columns wide, np (1 or 2) packed MR = 6
     * row panels at a time (MR * kc apart), B rows ldb apart (4 readable values each): the
     * raw sums into t (np * 6 rows of 4), with the same sums per element as ukr[] */
    void (*edge4)(int64_t kc, int np, const GT *a, const GT *b, int64_t ldb, GT *t);
} G(gkern);

/* Portable micro-kernel: a small accumulator array gcc keeps in SSE/NEON registers. The
 * A addressing is a compile-time constant in each of the three wrappers. */
static inline __attribute__((always_inline)) void
G(ukr_generic_body)(int64_t kc, const GT *restrict a, int64_t rsa, int64_t csa,
                    const GT *restrict b, int64_t ldb, GT *restrict c, int64_t ldc, GT alpha,
                    GT beta)
{
    GT acc[GEN_MR][GEN_NR];
    for (int i = 0; i < GEN_MR; i++)
        for (int j = 0; j < GEN_NR; j++)
            acc[i][j] = 0;
    for (int64_t p = 0; p < kc; p++) {
        const GT *bp = b + p * ldb;
        for (int i = 0; i < GEN_MR; i++) {
            const GT ai = a[i * rsa + p * csa];
            for (int j = 0; j < GEN_NR; j++)
                acc[i][j] += ai * bp[j];
        }
    }
    if (beta == 0) {
        for (int i = 0; i < GEN_MR; i++)
            for (int j = 0; j < GEN_NR; j++)
                c[i * ldc + j] = alpha * acc[i][j];
    } else {
        for (int i = 0; i < GEN_MR; i++)
            for (int j = 0; j < GEN_NR; j++)
                c[i * ldc + j] = alpha * acc[i][j] + beta * c[i * ldc + j];
    }
}

static void G(ukr_generic_packed)(int64_t kc, const GT *a, int64_t lda, const GT *b,
                                  int64_t ldb, GT *c, int64_t ldc, GT alpha, GT beta)
{
    (void)lda;
    G(ukr_generic_body)(kc, a, 1, GEN_MR, b, ldb, c, ldc, alpha, beta);
}

static void G(ukr_generic_rows)(int64_t kc, const GT *a, int64_t lda, const GT *b,
                                int64_t ldb, GT *c, int64_t ldc, GT alpha, GT beta)
{
    G(ukr_generic_body)(kc, a, lda, 1, b, ldb, c, ldc, alpha, beta);
}

static void G(ukr_generic_cols)(int64_t kc, const GT *a, int64_t lda, const GT *b,
                                int64_t ldb, GT *c, int64_t ldc, GT alpha, GT beta)
{
    G(ukr_generic_body)(kc, a, 1, lda, b, ldb, c, ldc, alpha, beta);
}

/* op(A)[i0:i0+mc, p0:p0+kc] into MR-high panels: panel ir holds, for each p, MR values;
 * rows past mc are zero. The common full panels run with MR a compile-time constant. */
static inline __attribute__((always_inline)) void
G(pack_a_panel)(int mr, const GT *restrict A, int64_t lda, int ta, int64_t i, int64_t me,
                int64_t p0, int64_t kc, GT *restrict d)
{
    if (!ta) {
        const GT *rows[GEMM_MAX_MR];
        for (int64_t r = 0; r < mr; r++)
            rows[r] = A + (i + (r < me ? r : 0)) * lda + p0;
        if (me == mr) {
            for (int64_t p = 0; p < kc; p++)
                for (int r = 0; r < mr; r++)
                    d[p * mr + r] = rows[r][p];
        } else {
            for (int64_t p = 0; p < kc; p++)
                for (int r = 0; r < mr; r++)
                    d[p * mr + r] = r < me ? rows[r][p] : 0;
        }
    } else {
        const GT *src = A + p0 * lda + i;
        if (me == mr) {
            for (int64_t p = 0; p < kc; p++, src += lda)
                for (int r = 0; r < mr; r++)
                    d[p * mr + r] = src[r];
        } else {
            for (int64_t p = 0; p < kc; p++, src += lda)
                for (int r = 0; r < mr; r++)
                    d[p * mr + r] = r < me ? src[r] : 0;
        }
    }
}

/* no-tree-loop-distribute-patterns: gcc otherwise turns each row of a transposed A (MR
 * contiguous values) into a call to memmove, which cost the seed step 8-10 % of its time
 * packing x^T 24 bytes at a time */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-loop-distribute-patterns")))
#endif
static void G(pack_a)(const G(gkern) *kr, const GT *A, int64_t lda, int ta, int64_t i0,
                      int64_t mc, int64_t p0, int64_t kc, GT *dst)
{
    const int mr = kr->mr;
    for (int64_t ir = 0; ir < mc; ir += mr) {
        const int64_t me = mc - ir < mr ? mc - ir : mr;
        GT *d = dst + ir * kc;
        if (!ta && me == mr && kr->pack_a_rows)
            kr->pack_a_rows(A + (i0 + ir) * lda + p0, lda, kc, d);
        else if (mr == 6)
            G(pack_a_panel)(6, A, lda, ta, i0 + ir, me, p0, kc, d);
        else if (mr == 4)
            G(pack_a_panel)(4, A, lda, ta, i0 + ir, me, p0, kc, d);
        else
            G(pack_a_panel)(mr, A, lda, ta, i0 + ir, me, p0, kc, d);
    }
}

/* kc rows of W values, ldb apart, into d: with W a constant and loop distribution off (as
 * for pack_a), a few vector moves a row rather than a call to memmove per row */
static inline __attribute__((always_inline)) void
G(copy_rows)(GT *restrict d, const GT *restrict src, int64_t ldb, int64_t kc, const int w)
{
    for (int64_t p = 0; p < kc; p++)
        for (int j = 0; j < w; j++)
            d[p * w + j] = src[p * ldb + j];
}

/* op(B)[p0:p0+kc, j0+jr0 : j0+jr1] into NR-wide panels (jr0 a multiple of NR; panel jr
 * lives at dst + jr*kc whichever thread packs it); columns past nc are zero. */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-loop-distribute-patterns")))
#endif
static void G(pack_b)(const G(gkern) *kr, const GT *B, int64_t ldb, int tb, int64_t p0,
                      int64_t kc, int64_t j0, int64_t nc, int64_t jr0, int64_t jr1, GT *dst)
{
    const int nr = kr->nr;
    for (int64_t jr = jr0; jr < jr1 && jr < nc; jr += nr) {
        const int64_t ne = nc - jr < nr ? nc - jr : nr;
        GT *d = dst + jr * kc;
        if (!tb && ne == nr && (nr == 8 || nr == 16 || nr == 32)) {
            const GT *src = B + p0 * ldb + j0 + jr;
            if (nr == 8)
                G(copy_rows)(d, src, ldb, kc, 8);
            else if (nr == 16)
                G(copy_rows)(d, src, ldb, kc, 16);
            else
                G(copy_rows)(d, src, ldb, kc, 32);
        } else if (!tb) {
            for (int64_t p = 0; p < kc; p++) {
                const GT *src = B + (p0 + p) * ldb + j0 + jr;
                GT *dp = d + p * nr;
                int64_t j = 0;
                for (; j < ne; j++)
                    dp[j] = src[j];
                for (; j < nr; j++)
                    dp[j] = 0;
            }
        } else if (ne == nr && kr->pack_b_cols) {
            kr->pack_b_cols(B + (j0 + jr) * ldb + p0, ldb, kc, d);
        } else {
            const GT *cols[GEMM_MAX_NR];
            for (int64_t j = 0; j < ne; j++)
                cols[j] = B + (j0 + jr + j) * ldb + p0;
            for (int64_t p = 0; p < kc; p++) {
                GT *dp = d + p * nr;
                int64_t j = 0;
                for (; j < ne; j++)
                    dp[j] = cols[j][p];
                for (; j < nr; j++)
                    dp[j] = 0;
            }
        }
    }
}

/* The me x ne corner of raw sums t (rows ldt apart) into C = alpha * t + beta * C: every
 * tile that goes through a buffer is written back here, so all of them round alike. */
static inline void G(tile_back)(const GT *t, int64_t ldt, int64_t me, int64_t ne, GT *c,
                                int64_t ldc, GT alpha, GT beta)
{
    for (int64_t i = 0; i < me; i++) {
        GT *ci = c + i * ldc;
        const GT *ti = t + i * ldt;
        if (beta == 0)
            for (int64_t j = 0; j < ne; j++)
                ci[j] = alpha * ti[j];
        else
            for (int64_t j = 0; j < ne; j++)
                ci[j] = alpha * ti[j] + beta * ci[j];
    }
}

/* One MR x NR tile (or the me x ne corner of one, through a buffer), op(A) read as `mode`
 * (GEMM_A_*). A corner at most NR/2 wide, or at most 4 rows high, runs on the narrower kernel
 * when the family has one: a right-edge panel of 4 columns (n = 100) or a bottom edge of 4
 * rows (m = 64) would otherwise cost a whole tile. */
static inline void G(tile)(const G(gkern) *kr, int mode, int64_t kc, const GT *a, int64_t lda,
                           const GT *b, int64_t ldb, GT *c, int64_t ldc, int64_t me,
                           int64_t ne, GT alpha, GT beta)
{
    const int nr = kr->nr;
    const int narrow = ne <= nr / 2 && kr->half[mode], low = me <= 4 && kr->m4[mode];
    G(ukr_fn) ukr = low ? (narrow ? kr->m4half[mode] : kr->m4[mode])
                        : (narrow ? kr->half[mode] : kr->ukr[mode]);
    const int64_t w = narrow ? nr / 2 : nr, h = low ? 4 : kr->mr;
    if (me == h && ne == w) {
        ukr(kc, a, lda, b, ldb, c, ldc, alpha, beta);
        return;
    }
    GT tile[GEMM_MAX_MR * GEMM_MAX_NR] __attribute__((aligned(64)));
    ukr(kc, a, lda, b, ldb, tile, nr, 1, 0);
    G(tile_back)(tile, nr, me, ne, c, ldc, alpha, beta);
}

/* Rows [0, np * MR) (np of 1 or 2 packed panels, MR * kc apart) of a right edge ne <= 4
 * columns wide, on the family's edge4 kernel; written back as tile() writes a buffered
 * tile, so the bits are those of tile(). */
static inline void G(tile_edge4)(const G(gkern) *kr, int np, int64_t kc, const GT *ap,
                                 const GT *b, int64_t ldb, GT *c, int64_t ldc, int64_t ne,
                                 GT alpha, GT beta)
{
    GT t[2 * GEMM_MAX_MR * 4];
    kr->edge4(kc, np, ap, b, ldb, t);
    G(tile_back)(t, 4, np * kr->mr, ne, c, ldc, alpha, beta);
}

/* C[0:mc, jr0:jr1] (C already offset to the block's corner) from packed A and B. */
static void G(macro)(const G(gkern) *kr, int64_t mc, int64_t kc, int64_t nc, int64_t jr0,
                     int64_t jr1, const GT *ap, const GT *bp, GT *C, int64_t ldc, GT alpha,
                     GT beta)
{
    const int mr = kr->mr, nr = kr->nr;
    for (int64_t jr = jr0; jr < jr1 && jr < nc; jr += nr) {
        const int64_t ne = nc - jr < nr ? nc - jr : nr;
        int64_t ir = 0;
        if (ne <= 4 && kr->edge4)
            while (ir + mr <= mc) {
                const int np = ir + 2 * mr <= mc ? 2 : 1;
                G(tile_edge4)(kr, np, kc, ap + ir * kc, bp + jr * kc, nr, C + ir * ldc + jr,
                              ldc, ne, alpha, beta);
                ir += np * mr;
            }
        for (; ir < mc; ir += mr) {
            const int64_t me = mc - ir < mr ? mc - ir : mr;
            G(tile)(kr, GEMM_A_PACKED, kc, ap + ir * kc, 0, bp + jr * kc, nr,
                    C + ir * ldc + jr, ldc, me, ne, alpha, beta);
        }
    }
}

typedef struct G(gjob) {
    cpu_inst *inst;
    const G(gkern) *kr;
    const GT *A, *B;
    GT *C;
    int64_t m, n, k, lda, ldb, ldc;
    int64_t sa, sb, sc;           /* batch strides */
    int ta, tb;
    GT alpha, beta;
    /* packed path: the (jc, pc) step being run in parallel */
    int64_t jc, nc, pc, kc;
    GT beta_eff;
    GT *bp;
    int64_t pack_panels;          /* NR panels per pack task */
    int64_t mc;                   /* rows per A block (a multiple of MR) */
    int64_t nslices, slice_w;
    /* direct path: C cut into tm x tn blocks of bm x bn (multiples of MR, NR), times ks k
     * slices; bpre: all of op(B) packed beforehand (transposed B), slice pc at
     * bpre + pc*npad */
    int direct, packa;
    int64_t bm, bn, tm, tn, npad, ks;
    const GT *bpre;
    GT *kbuf;                     /* k split: slice sums 1..ks-1, m x n each */
    int64_t *apacked;             /* packed path: per worker, the A block its pack holds */
} G(gjob);

/* ------------------------------------------------------------------ direct path */

/* op(B) whole, packed slice by slice: slice pc (kc deep) at dst + pc*npad, its panel jr at
 * + jr*kc. */
static void G(pack_b_all)(const G(gjob) *j, const GT *B, GT *dst)
{
    const G(gkern) *kr = j->kr;
    for (int64_t pc = 0; pc < j->k; pc += kr->kc) {
        const int64_t kc = j->k - pc < kr->kc ? j->k - pc : kr->kc;
        G(pack_b)(kr, B, j->ldb, j->tb, pc, kc, 0, j->n, 0, j->n, dst + pc * j->npad);
    }
}

/* Block [i0, i1) x [c0, c1) of C = alpha op(A) op(B) + beta C for the k range [p0, p1)
 * (whole KC slices from p0) of one batch, into C (rows ldc apart); beta applies to the
 * first slice, later slices add. op(A) is read in place, except for the panel cut by the
 * bottom edge, or, when j->packa, packed MC rows at a time (a transposed A read in place
 * costs a cache line per row of k for a few values, once per B panel). scr: per-worker
 * scratch of KC*NR (a B panel cut by the right edge) + MC*KC (packed A). */
static void G(direct_block)(const G(gjob) *j, const GT *A, const GT *B, const GT *bpre, GT *C,
                            int64_t ldc, int64_t i0, int64_t i1, int64_t c0, int64_t c1,
                            int64_t p0, int64_t p1, GT beta0, GT *scr)
{
    const G(gkern) *kr = j->kr;
    const int mr = kr->mr, nr = kr->nr;
    GT *bscr = scr, *ascr = scr + kr->kc * nr;
    const int amode = j->ta ? GEMM_A_COLS : GEMM_A_ROWS;
    const int pack_full = ((size_t)j->ldb * sizeof(GT)) % 4096 == 0;
    const int64_t chunk = j->packa ? kr->mc : i1 - i0;
    /* the bottom edge panel, if this block has it */
    const int64_t iedge = i1 == j->m && j->m % mr ? j->m - j->m % mr : -1;
    for (int64_t pc = p0; pc < p1; pc += kr->kc) {
        const int64_t kc = p1 - pc < kr->kc ? p1 - pc : kr->kc;
        const GT beta = pc == p0 ? beta0 : 1;
        for (int64_t ic = i0; ic < i1; ic += chunk) {
            const int64_t ie = i1 - ic < chunk ? i1 : ic + chunk;
            if (j->packa)
                G(pack_a)(kr, A, j->lda, j->ta, ic, ie - ic, pc, kc, ascr);
            else if (iedge >= ic && iedge < ie)
                G(pack_a)(kr, A, j->lda, j->ta, iedge, j->m - iedge, pc, kc, ascr);
            for (int64_t jr = c0; jr < c1; jr += nr) {
                const int64_t ne = j->n - jr < nr ? j->n - jr : nr;
                const GT *bp;
                int64_t ldbp;
                if (bpre) {
                    bp = bpre + pc * j->npad + jr * kc;
                    ldbp = nr;
                } else if (ne == nr && !(pack_full && ie - ic >= 4 * mr)) {
                    bp = B + pc * j->ldb + jr;
                    ldbp = j->ldb;
                } else {
                    /* an edge panel; or a full one whose rows are a multiple of 4 KiB
                     * apart, which all fall in one set of the L1 cache (the micro-kernel
                     * ran at half speed on them in place), when at least 4 row panels
                     * read the copy */
                    G(pack_b)(kr, B, j->ldb, 0, pc, kc, jr, ne, 0, ne, bscr);
                    bp = bscr;
                    ldbp = nr;
                }
                int64_t ir = ic;
                if (ne <= 4 && kr->edge4 && j->packa) {
                    /* the whole panels above the bottom edge's, two at a time, from the
                     * block's packed A (packing A for the edge alone would cost more than
                     * the edge does in place) */
                    const int64_t full_end = iedge >= ic && iedge < ie ? iedge : ie;
                    while (ir + mr <= full_end) {
                        const int np = ir + 2 * mr <= full_end ? 2 : 1;
                        G(tile_edge4)(kr, np, kc, ascr + (ir - ic) * kc, bp, ldbp,
                                      C + ir * ldc + jr, ldc, ne, j->alpha, beta);
                        ir += np * mr;
                    }
                }
                for (; ir < ie; ir += mr) {
                    GT *c = C + ir * ldc + jr;
                    const int64_t me = j->m - ir < mr ? j->m - ir : mr;
                    if (j->packa || ir == iedge) {
                        const GT *a = ascr + (j->packa ? (ir - ic) * kc : 0);
                        G(tile)(kr, GEMM_A_PACKED, kc, a, 0, bp, ldbp, c, ldc, me, ne, j->alpha,
                                beta);
                        continue;
                    }
                    const GT *a = j->ta ? A + pc * j->lda + ir : A + ir * j->lda + pc;
                    G(tile)(kr, amode, kc, a, j->lda, bp, ldbp, c, ldc, mr, ne, j->alpha,
                            beta);
                }
            }
        }
    }
}

/* Task t of the direct path: block (t % tn) of C's columns, (t / tn % tm) of its rows,
 * k slice t / (tm * tn) when k is split (ks > 1). Slice 0 goes into C with beta; slice q > 0
 * into its own buffer, kbuf + (q - 1) * m * n, summed into C afterwards in slice order. */
static void G(task_direct)(void *arg, int64_t t, int worker)
{
    const G(gjob) *j = arg;
    const int64_t q = t / (j->tm * j->tn), r = t % (j->tm * j->tn);
    const int64_t i0 = r / j->tn * j->bm, c0 = r % j->tn * j->bn;
    const int64_t i1 = j->m - i0 < j->bm ? j->m : i0 + j->bm;
    const int64_t c1 = j->n - c0 < j->bn ? j->n : c0 + j->bn;
    GT *scr = j->inst->work[worker].p;
    if (j->ks == 1) {
        G(direct_block)(j, j->A, j->B, j->bpre, j->C, j->ldc, i0, i1, c0, c1, 0, j->k, j->beta,
                        scr);
        return;
    }
    const int64_t p0 = q * j->kr->kc, p1 = j->k - p0 < j->kr->kc ? j->k : p0 + j->kr->kc;
    if (q == 0)
        G(direct_block)(j, j->A, j->B, j->bpre, j->C, j->ldc, i0, i1, c0, c1, p0, p1, j->beta,
                        scr);
    else
        G(direct_block)(j, j->A, j->B, j->bpre, j->kbuf + (q - 1) * j->m * j->n, j->n, i0, i1,
                        c0, c1, p0, p1, 0, scr);
}

/* C += slice sums, rows [r*rows_per, ...), slices in order: the same additions, in the
 * same order, as a single thread accumulating slice after slice into C (alpha is 1). */
static void G(task_ksum)(void *arg, int64_t t, int worker)
{
    (void)worker;
    const G(gjob) *j = arg;
    const int64_t i0 = t * j->bm, i1 = j->m - i0 < j->bm ? j->m : i0 + j->bm;
    for (int64_t q = 1; q < j->ks; q++) {
        const GT *P = j->kbuf + (q - 1) * j->m * j->n;
        for (int64_t i = i0; i < i1; i++) {
            GT *restrict c = j->C + i * j->ldc;
            const GT *restrict p = P + i * j->n;
            for (int64_t jj = 0; jj < j->n; jj++)
                c[jj] = p[jj] + c[jj];
        }
    }
}

/* Whether to split k among threads (the number of KC slices) or not (0): only for alpha 1
 * (then summing the slices afterwards rounds exactly as accumulating them in C does), and
 * when it moves less data than splitting C: a block split re-reads B once per row block
 * and A once per column block, a k split reads each once but writes and re-reads one m x n
 * partial sum per slice. */
static int64_t G(direct_ksplit)(const G(gjob) *j, int nt)
{
    const G(gkern) *kr = j->kr;
    const int64_t ks = (j->k + kr->kc - 1) / kr->kc;
    if (j->alpha != 1 || ks < 2 || (double)(ks - 1) * (double)j->m * (double)j->n > 4194304.0)
        return 0;
    const int64_t mp = (j->m + kr->mr - 1) / kr->mr, np = (j->n + kr->nr - 1) / kr->nr;
    const int64_t want = 2 * (int64_t)nt;
    int64_t tm = mp < want ? mp : want, tn = 1;
    if (tm < want)
        tn = np < (want + tm - 1) / tm ? np : (want + tm - 1) / tm;
    const double a = (double)j->m * (double)j->k, b = (double)j->k * (double)j->n;
    const double c = (double)j->m * (double)j->n;
    const double blocks = (double)tm * b + (double)tn * a + c;
    const double slices = a + b + c * (double)(2 * ks - 1);
    return slices < blocks ? ks : 0;
}

/* The direct path on nt threads, in one fork: C in blocks of whole tiles, rows first (a
 * block then reads only its own rows of A and shares B), columns too when rows alone
 * cannot give every thread two blocks; or, when k is deep and C small (a layer's forward
 * product, 64 x 1000 x 100), by k slices, each thread reading only its rows of B. */
static void G(gemm_direct)(G(gjob) *j, int nt, GT *bbuf, GT *kbuf)
{
    const G(gkern) *kr = j->kr;
    const int64_t mp = (j->m + kr->mr - 1) / kr->mr, np = (j->n + kr->nr - 1) / kr->nr;
    j->bpre = NULL;
    if (j->tb) {
        G(pack_b_all)(j, j->B, bbuf);
        j->bpre = bbuf;
    }
    int64_t tm = 1, tn = 1;
    j->ks = 1;
    if (nt > 1) {
        const int64_t want = 2 * (int64_t)nt;
        tm = mp < want ? mp : want;
        if (tm < want)
            tn = np < (want + tm - 1) / tm ? np : (want + tm - 1) / tm;
        if (kbuf) {
            j->ks = (j->k + kr->kc - 1) / kr->kc;
            tn = 1;
            tm = j->ks >= want ? 1 : (want + j->ks - 1) / j->ks;
            if (tm > mp)
                tm = mp;
        }
    }
    const int64_t bmp = (mp + tm - 1) / tm, bnp = (np + tn - 1) / tn;
    j->bm = bmp * kr->mr;
    j->bn = bnp * kr->nr;
    j->tm = (mp + bmp - 1) / bmp;
    j->tn = (np + bnp - 1) / bnp;
    j->kbuf = kbuf;
    const int64_t ntasks = j->ks * j->tm * j->tn;
    if (ntasks == 1) {
        G(direct_block)(j, j->A, j->B, j->bpre, j->C, j->ldc, 0, j->m, 0, j->n, 0, j->k, j->beta,
                        j->inst->work[0].p);
        return;
    }
    cpu_parallel(j->inst, ntasks, G(task_direct), j);
    if (j->ks > 1) {
        /* rows in blocks of ~16K elements (at least one row), and at least one block per
         * thread: the seed's 64 x 100 would otherwise be summed by one thread alone */
        int64_t rows = 16384 / (j->n > 0 ? j->n : 1);
        const int64_t per = (j->m + nt - 1) / nt;
        if (rows > per)
            rows = per;
        j->bm = rows < 1 ? 1 : rows;
        const int64_t nb = (j->m + j->bm - 1) / j->bm;
        if ((j->ks - 1) * j->m * j->n >= 32768)
            cpu_parallel(j->inst, nb, G(task_ksum), j);
        else
            for (int64_t t = 0; t < nb; t++)
                G(task_ksum)(j, t, 0);
    }
}

/* ------------------------------------------------------------------ packed path */

/* One whole gemm on one thread with its own pack buffers. */
static void G(gemm_serial)(const G(gjob) *j, const GT *A, const GT *B, GT *C, GT *abuf,
                           GT *bbuf)
{
    const G(gkern) *kr = j->kr;
    for (int64_t jc = 0; jc < j->n; jc += kr->nc) {
        const int64_t nc = j->n - jc < kr->nc ? j->n - jc : kr->nc;
        for (int64_t pc = 0; pc < j->k; pc += kr->kc) {
            const int64_t kc = j->k - pc < kr->kc ? j->k - pc : kr->kc;
            const GT beta = pc == 0 ? j->beta : 1;
            G(pack_b)(kr, B, j->ldb, j->tb, pc, kc, jc, nc, 0, nc, bbuf);
            for (int64_t ic = 0; ic < j->m; ic += kr->mc) {
                const int64_t mc = j->m - ic < kr->mc ? j->m - ic : kr->mc;
                G(pack_a)(kr, A, j->lda, j->ta, ic, mc, pc, kc, abuf);
                G(macro)(kr, mc, kc, nc, 0, nc, abuf, bbuf, C + ic * j->ldc + jc, j->ldc,
                         j->alpha, beta);
            }
        }
    }
}

static void G(task_pack_b)(void *arg, int64_t t, int worker)
{
    (void)worker;
    const G(gjob) *j = arg;
    const int64_t w = j->pack_panels * j->kr->nr;
    G(pack_b)(j->kr, j->B, j->ldb, j->tb, j->pc, j->kc, j->jc, j->nc, t * w, (t + 1) * w,
              j->bp);
}

static void G(task_block)(void *arg, int64_t t, int worker)
{
    const G(gjob) *j = arg;
    const G(gkern) *kr = j->kr;
    const int64_t mb = t / j->nslices, sl = t % j->nslices;
    const int64_t ic = mb * j->mc;
    const int64_t mc = j->m - ic < j->mc ? j->m - ic : j->mc;
    GT *abuf = j->inst->work[worker].p;
    /* consecutive tasks are slices of one block: a worker that packed this block for its
     * previous task of the same step reuses the pack */
    if (j->apacked[worker] != mb) {
        G(pack_a)(kr, j->A, j->lda, j->ta, ic, mc, j->pc, j->kc, abuf);
        j->apacked[worker] = mb;
    }
    G(macro)(kr, mc, j->kc, j->nc, sl * j->slice_w, (sl + 1) * j->slice_w, abuf, j->bp,
             j->C + ic * j->ldc + j->jc, j->ldc, j->alpha, j->beta_eff);
}

/* One gemm spread over nt threads: B panels packed in parallel, then (A block x column
 * slice) tasks. Blocks stay multiples of MR and slices of NR, so every C tile is computed
 * by the same micro-kernel calls as in the serial path: the result does not depend on nt. */
static void G(gemm_parallel)(G(gjob) *j, int nt)
{
    const G(gkern) *kr = j->kr;
    const int64_t want = (int64_t)nt * 4;   /* enough tasks to balance */
    /* split m first (each task packs its own A block, so column slices repack A): at
     * least `want` blocks, else a multiple of nt of them, of equal height (whole
     * micro-panels) no taller than the cache's MC and no smaller than 4 micro-panels */
    int64_t mb = (j->m + kr->mc - 1) / kr->mc;
    mb = mb < want ? want : (mb + nt - 1) / nt * nt;
    int64_t mc = (j->m + mb - 1) / mb;
    mc = (mc + kr->mr - 1) / kr->mr * kr->mr;
    if (mc < 4 * kr->mr)
        mc = 4 * kr->mr;
    j->mc = mc < kr->mc ? mc : kr->mc;
    const int64_t mblocks = (j->m + j->mc - 1) / j->mc;
    j->bp = j->inst->pack_b[0].p;
    for (int64_t jc = 0; jc < j->n; jc += kr->nc) {
        const int64_t nc = j->n - jc < kr->nc ? j->n - jc : kr->nc;
        const int64_t npanels = (nc + kr->nr - 1) / kr->nr;
        /* column slices too, for tasks small enough that the threads finish a step
         * together (a block of a big product is milliseconds of work); no narrower than
         * ~256 columns, or ~64 when m alone cannot feed the threads */
        const int64_t ntasks_want = mblocks >= want ? 4 * want : want;
        int64_t nslices = (ntasks_want + mblocks - 1) / mblocks;
        int64_t max_slices = mblocks >= want ? (nc + 255) / 256 : (nc + 63) / 64;
        if (nslices > max_slices)
            nslices = max_slices;
        if (nslices < 1)
            nslices = 1;
        const int64_t slice_panels = (npanels + nslices - 1) / nslices;
        j->slice_w = slice_panels * kr->nr;
        j->nslices = (npanels + slice_panels - 1) / slice_panels;
        j->pack_panels = (npanels + nt * 2 - 1) / (nt * 2);
        j->jc = jc;
        j->nc = nc;
        for (int64_t pc = 0; pc < j->k; pc += kr->kc) {
            j->pc = pc;
            j->kc = j->k - pc < kr->kc ? j->k - pc : kr->kc;
            j->beta_eff = pc == 0 ? j->beta : 1;
            cpu_parallel(j->inst, (npanels + j->pack_panels - 1) / j->pack_panels,
                         G(task_pack_b), j);
            for (int w = 0; w < nt; w++)
                j->apacked[w] = -1;
            cpu_parallel(j->inst, mblocks * j->nslices, G(task_block), j);
        }
    }
}

/* ------------------------------------------------------------------ driver */

/* C = beta * C, for k == 0 or alpha == 0 (A and B are not read, as in BLAS). */
static void G(scale_c)(const em_gemm_args *g, GT *C)
{
    const GT beta = (GT)g->beta;
    for (int64_t b = 0; b < g->batch; b++) {
        GT *cb = C + b * g->c_batch_stride;
        for (int64_t i = 0; i < g->m; i++) {
            GT *ci = cb + i * g->ldc;
            if (beta == 0)
                for (int64_t jj = 0; jj < g->n; jj++)
                    ci[jj] = 0;
            else
                for (int64_t jj = 0; jj < g->n; jj++)
                    ci[jj] *= beta;
        }
    }
}

/* One batch entry on the calling worker alone (batches spread over the pool). */
static void G(task_batch)(void *arg, int64_t b, int worker)
{
    const G(gjob) *j0 = arg;
    G(gjob) j = *j0;
    j.A = j0->A + b * j0->sa;
    j.B = j0->B + b * j0->sb;
    j.C = j0->C + b * j0->sc;
    GT *bbuf = j0->inst->pack_b[worker].p;
    if (j.direct) {
        const GT *bpre = NULL;
        if (j.tb) {
            G(pack_b_all)(&j, j.B, bbuf);
            bpre = bbuf;
        }
        G(direct_block)(&j, j.A, j.B, bpre, j.C, j.ldc, 0, j.m, 0, j.n, 0, j.k, j.beta,
                        j0->inst->work[worker].p);
    } else {
        G(gemm_serial)(&j, j.A, j.B, j.C, j0->inst->work[worker].p, bbuf);
    }
}

/* The product on the pool (worker < 0), or (worker >= 0) on the calling thread alone with
 * that worker's scratch, for a caller that is itself one task of a parallel job: then
 * `reserve` only sizes the worker's scratch (call it before the fork, for every size the
 * tasks will use), and without it a call finding its scratch too small fails with
 * EM_ERR_INTERNAL rather than allocate inside the job. Same results either way. */
static em_status G(gemm_run)(cpu_inst *inst, const G(gkern) *kr, const em_gemm_args *g,
                             int worker, int reserve)
{
    const size_t esz = sizeof(GT);
    GT *C = (GT *)g->c + g->c_offset;
    if (g->k == 0 || g->alpha == 0) {
        G(scale_c)(g, C);
        return EM_OK;
    }
    G(gjob) j;
    memset(&j, 0, sizeof j);
    j.inst = inst;
    j.kr = kr;
    j.A = (const GT *)g->a + g->a_offset;
    j.B = (const GT *)g->b + g->b_offset;
    j.C = C;
    j.m = g->m;
    j.n = g->n;
    j.k = g->k;
    j.lda = g->lda;
    j.ldb = g->ldb;
    j.ldc = g->ldc;
    j.sa = g->a_batch_stride;
    j.sb = g->b_batch_stride;
    j.sc = g->c_batch_stride;
    j.ta = g->trans_a != 0;
    j.tb = g->trans_b != 0;
    j.alpha = (GT)g->alpha;
    j.beta = (GT)g->beta;
    j.apacked = inst->apacked;

    const double mnk = (double)g->m * (double)g->n * (double)g->k;
    const int direct = cpu_gemm_direct(inst, g->m, g->n, g->k, j.ta, j.tb, esz);
    int nt = worker < 0 && mnk * (double)g->batch >= GEMM_PAR_WORK ? cpu_threads(inst) : 1;
    const int batch_par = nt > 1 && g->batch >= nt && mnk < GEMM_BATCH_PAR_MAX;
    const int64_t kc = g->k < kr->kc ? g->k : kr->kc;
    const int64_t mc = g->m < kr->mc ? g->m : kr->mc;
    const int64_t nc = g->n < kr->nc ? g->n : kr->nc;
    const int64_t npad = (g->n + kr->nr - 1) / kr->nr * kr->nr;
    size_t abytes, bbytes;
    if (direct) {
        /* per worker: an edge panel of B and MC rows of A; B packed whole when
         * transposed */
        abytes = esz * (size_t)(kr->kc * kr->nr + kr->mc * kr->kc);
        bbytes = j.tb ? esz * (size_t)npad * (size_t)g->k : 0;
        j.npad = npad;
        j.direct = 1;
        /* transposed A is packed when read for enough B panels to repay it */
        j.packa = j.ta && (g->n + kr->nr - 1) / kr->nr >= GEMM_DIRECT_PACKA_PANELS;
    } else {
        abytes = esz * (size_t)(((mc + kr->mr - 1) / kr->mr) * kr->mr) * (size_t)kc;
        bbytes = esz * (size_t)(((nc + kr->nr - 1) / kr->nr) * kr->nr) * (size_t)kc;
    }
    if (worker >= 0) {
        cpu_scratch *wa = &inst->work[worker], *wb = &inst->pack_b[worker];
        if (reserve) {
            if (!cpu_scratch_get(inst, wa, abytes) || (bbytes && !cpu_scratch_get(inst, wb, bbytes)))
                return CPU_ERR(inst, EM_ERR_OOM, "gemm: cannot allocate %zu bytes of packing "
                               "space", abytes + bbytes);
            return EM_OK;
        }
        if (wa->cap < abytes || !wa->p || (bbytes && (wb->cap < bbytes || !wb->p)))
            return CPU_ERR(inst, EM_ERR_INTERNAL, "gemm: worker %d's packing space was not "
                           "reserved", worker);
        for (int64_t b = 0; b < g->batch; b++)
            G(task_batch)(&j, b, worker);
        return EM_OK;
    }
    /* per-worker A scratch always; B packs per worker only when batches run in parallel */
    int na = nt, nb = bbytes ? (batch_par ? nt : 1) : 0;
    for (int w = 0; w < na; w++)
        if (!cpu_scratch_get(inst, &inst->work[w], abytes))
            return CPU_ERR(inst, EM_ERR_OOM, "gemm: cannot allocate %zu bytes of packing space",
                           abytes);
    for (int w = 0; w < nb; w++)
        if (!cpu_scratch_get(inst, &inst->pack_b[w], bbytes))
            return CPU_ERR(inst, EM_ERR_OOM, "gemm: cannot allocate %zu bytes of packing space",
                           bbytes);
    if (batch_par) {
        cpu_parallel(inst, g->batch, G(task_batch), &j);
        return EM_OK;
    }
    const int par = nt > 1 && mnk >= GEMM_PAR_WORK;
    GT *kbuf = NULL;
    if (direct && par) {
        const int64_t ks = G(direct_ksplit)(&j, nt);
        if (ks > 1) {
            size_t kb = esz * (size_t)(ks - 1) * (size_t)g->m * (size_t)g->n;
            if (!(kbuf = cpu_scratch_get(inst, &inst->ksum, kb)))
                return CPU_ERR(inst, EM_ERR_OOM, "gemm: cannot allocate %zu bytes of partial sums",
                               kb);
        }
    }
    for (int64_t b = 0; b < g->batch; b++) {
        G(gjob) jb = j;
        jb.A = j.A + b * j.sa;
        jb.B = j.B + b * j.sb;
        jb.C = j.C + b * j.sc;
        if (direct)
            G(gemm_direct)(&jb, par ? nt : 1, inst->pack_b[0].p, kbuf);
        else if (par)
            G(gemm_parallel)(&jb, nt);
        else
            G(gemm_serial)(&jb, jb.A, jb.B, jb.C, inst->work[0].p, inst->pack_b[0].p);
    }
    return EM_OK;
}

#undef G
#undef GJOIN
#undef GJOIN2
