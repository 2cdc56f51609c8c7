/* backends/cpu/cpu_gemm_tmpl.h — the packed gemm driver, written once and included by
 * cpu_gemm.c per dtype with GT (element type) and GS (name suffix) defined. Kept as a
 * template header rather than one big macro so compiler messages and debuggers point at
 * real lines.
 *
 * Blocking (Goto/BLIS): for each NC-wide column panel and KC-deep slice of k, op(B) is
 * packed into NR-wide micro-panels (shared by all threads), then each MC-high block of
 * op(A) is packed into MR-high micro-panels (per worker) and the micro-kernel updates one
 * MR x NR tile of C per call. Edges are zero-padded in the packs and finished through a
 * small tile buffer, so every shape and transpose goes through the same code. */

#define GJOIN2(a, b) a##_##b
#define GJOIN(a, b) GJOIN2(a, b)
#define G(name) GJOIN(name, GS)

typedef void (*G(ukr_fn))(int64_t kc, const GT *a, const GT *b, GT *c, int64_t ldc, GT alpha,
                          GT beta);

typedef struct G(gkern) {
    int mr, nr;
    int64_t mc, kc, nc;
    G(ukr_fn) ukr;
} G(gkern);

/* Portable micro-kernel: a small accumulator array gcc keeps in SSE/NEON registers. */
static void G(ukr_generic)(int64_t kc, const GT *restrict a, const GT *restrict b,
                           GT *restrict c, int64_t ldc, GT alpha, GT beta)
{
    GT acc[GEN_MR][GEN_NR];
    for (int i = 0; i < GEN_MR; i++)
        for (int j = 0; j < GEN_NR; j++)
            acc[i][j] = 0;
    for (int64_t p = 0; p < kc; p++) {
        for (int i = 0; i < GEN_MR; i++) {
            const GT ai = a[i];
            for (int j = 0; j < GEN_NR; j++)
                acc[i][j] += ai * b[j];
        }
        a += GEN_MR;
        b += GEN_NR;
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

/* op(A)[i0:i0+mc, p0:p0+kc] into MR-high panels: panel ir holds, for each p, MR values. */
static void G(pack_a)(const G(gkern) *kr, const GT *A, int64_t lda, int ta, int64_t i0,
                      int64_t mc, int64_t p0, int64_t kc, GT *dst)
{
    const int mr = kr->mr;
    for (int64_t ir = 0; ir < mc; ir += mr) {
        const int64_t me = mc - ir < mr ? mc - ir : mr;
        GT *d = dst + ir * kc;
        if (!ta) {
            const GT *rows[GEMM_MAX_MR];
            for (int64_t i = 0; i < me; i++)
                rows[i] = A + (i0 + ir + i) * lda + p0;
            for (int64_t p = 0; p < kc; p++) {
                GT *dp = d + p * mr;
                int64_t i = 0;
                for (; i < me; i++)
                    dp[i] = rows[i][p];
                for (; i < mr; i++)
                    dp[i] = 0;
            }
        } else {
            for (int64_t p = 0; p < kc; p++) {
                const GT *src = A + (p0 + p) * lda + i0 + ir;
                GT *dp = d + p * mr;
                int64_t i = 0;
                for (; i < me; i++)
                    dp[i] = src[i];
                for (; i < mr; i++)
                    dp[i] = 0;
            }
        }
    }
}

/* op(B)[p0:p0+kc, j0+jr0 : j0+jr1] into NR-wide panels (jr0 a multiple of NR; panel jr
 * lives at dst + jr*kc whichever thread packs it). */
static void G(pack_b)(const G(gkern) *kr, const GT *B, int64_t ldb, int tb, int64_t p0,
                      int64_t kc, int64_t j0, int64_t nc, int64_t jr0, int64_t jr1, GT *dst)
{
    const int nr = kr->nr;
    for (int64_t jr = jr0; jr < jr1 && jr < nc; jr += nr) {
        const int64_t ne = nc - jr < nr ? nc - jr : nr;
        GT *d = dst + jr * kc;
        if (!tb) {
            for (int64_t p = 0; p < kc; p++) {
                const GT *src = B + (p0 + p) * ldb + j0 + jr;
                GT *dp = d + p * nr;
                int64_t j = 0;
                for (; j < ne; j++)
                    dp[j] = src[j];
                for (; j < nr; j++)
                    dp[j] = 0;
            }
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

/* C[0:mc, jr0:jr1] (C already offset to the block's corner) from packed A and B. */
static void G(macro)(const G(gkern) *kr, int64_t mc, int64_t kc, int64_t nc, int64_t jr0,
                     int64_t jr1, const GT *ap, const GT *bp, GT *C, int64_t ldc, GT alpha,
                     GT beta)
{
    const int mr = kr->mr, nr = kr->nr;
    for (int64_t jr = jr0; jr < jr1 && jr < nc; jr += nr) {
        const int64_t ne = nc - jr < nr ? nc - jr : nr;
        for (int64_t ir = 0; ir < mc; ir += mr) {
            const int64_t me = mc - ir < mr ? mc - ir : mr;
            GT *c = C + ir * ldc + jr;
            if (me == mr && ne == nr) {
                kr->ukr(kc, ap + ir * kc, bp + jr * kc, c, ldc, alpha, beta);
                continue;
            }
            GT tile[GEMM_MAX_MR * GEMM_MAX_NR] __attribute__((aligned(64)));
            kr->ukr(kc, ap + ir * kc, bp + jr * kc, tile, nr, 1, 0);
            for (int64_t i = 0; i < me; i++) {
                GT *ci = c + i * ldc;
                const GT *ti = tile + i * nr;
                if (beta == 0)
                    for (int64_t j = 0; j < ne; j++)
                        ci[j] = alpha * ti[j];
                else
                    for (int64_t j = 0; j < ne; j++)
                        ci[j] = alpha * ti[j] + beta * ci[j];
            }
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
    /* the (jc, pc) step being run in parallel */
    int64_t jc, nc, pc, kc;
    GT beta_eff;
    GT *bp;
    int64_t pack_panels;          /* NR panels per pack task */
    int64_t mc;                   /* rows per A block (a multiple of MR) */
    int64_t nslices, slice_w;
} G(gjob);

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

static void G(task_batch)(void *arg, int64_t b, int worker)
{
    const G(gjob) *j = arg;
    G(gemm_serial)(j, j->A + b * j->sa, j->B + b * j->sb, j->C + b * j->sc,
                   j->inst->work[worker].p, j->inst->pack_b[worker].p);
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
    G(pack_a)(kr, j->A, j->lda, j->ta, ic, mc, j->pc, j->kc, abuf);
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
    /* split m first (each task packs its own A block, so column slices repack A);
     * blocks no smaller than 4 micro-panels */
    j->mc = kr->mc;
    if ((j->m + j->mc - 1) / j->mc < want) {
        int64_t mc = (j->m + want - 1) / want;
        mc = (mc + kr->mr - 1) / kr->mr * kr->mr;
        if (mc < 4 * kr->mr)
            mc = 4 * kr->mr;
        if (mc < j->mc)
            j->mc = mc;
    }
    const int64_t mblocks = (j->m + j->mc - 1) / j->mc;
    j->bp = j->inst->pack_b[0].p;
    for (int64_t jc = 0; jc < j->n; jc += kr->nc) {
        const int64_t nc = j->n - jc < kr->nc ? j->n - jc : kr->nc;
        const int64_t npanels = (nc + kr->nr - 1) / kr->nr;
        /* slices only when m alone cannot feed the threads; no narrower than ~64 columns */
        int64_t nslices = (want + mblocks - 1) / mblocks;
        int64_t max_slices = (nc + 63) / 64;
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
            cpu_parallel(j->inst, mblocks * j->nslices, G(task_block), j);
        }
    }
}

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

static em_status G(gemm_run)(cpu_inst *inst, const G(gkern) *kr, const em_gemm_args *g)
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

    const double mnk = (double)g->m * (double)g->n * (double)g->k;
    int nt = mnk * (double)g->batch >= GEMM_PAR_WORK ? cpu_threads(inst) : 1;
    const int batch_par = nt > 1 && g->batch >= nt && mnk < GEMM_BATCH_PAR_MAX;
    const int64_t kc = g->k < kr->kc ? g->k : kr->kc;
    const int64_t mc = g->m < kr->mc ? g->m : kr->mc;
    const int64_t nc = g->n < kr->nc ? g->n : kr->nc;
    const size_t abytes = esz * (size_t)(((mc + kr->mr - 1) / kr->mr) * kr->mr) * (size_t)kc;
    const size_t bbytes = esz * (size_t)(((nc + kr->nr - 1) / kr->nr) * kr->nr) * (size_t)kc;
    /* per-worker A packs always; B packs per worker only when batches run in parallel */
    int na = nt, nb = batch_par ? nt : 1;
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
    for (int64_t b = 0; b < g->batch; b++) {
        G(gjob) jb = j;
        jb.A = j.A + b * j.sa;
        jb.B = j.B + b * j.sb;
        jb.C = j.C + b * j.sc;
        if (par)
            G(gemm_parallel)(&jb, nt);
        else
            G(gemm_serial)(&jb, jb.A, jb.B, jb.C, inst->work[0].p, inst->pack_b[0].p);
    }
    return EM_OK;
}

#undef G
#undef GJOIN
#undef GJOIN2
