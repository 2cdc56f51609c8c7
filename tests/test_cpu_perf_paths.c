/* tests/test_cpu_perf_paths.c — the cpu backend's fast paths give the results of its plain
 * ones, bit for bit, and of a reference loop within rounding:
 *  - gemm: the direct (unpacked) path, the packed (Goto) path and the automatic choice,
 *    with every transpose, leading dims wider than the rows, batches, alpha/beta, and the
 *    k-split of deep products over threads, on 1, 2 and 3 threads, for the AVX-512 and
 *    AVX2+FMA micro-kernels (each where the CPU has it) and the portable ones
 *    (EMBER_CPU_GEMM and [cpu] isa select them);
 *  - elementwise kernels and sums: the AVX2 copies of the row functions against the
 *    baseline ones, in place and out of place, strided, with tails; f32 sums and means
 *    exact where double accumulation is, and correctly rounded, on inputs that defeat f32
 *    partial sums;
 *  - the thread pool: results do not depend on the thread count or on whether its threads
 *    spin or sleep between jobs (EMBER_CPU_SPIN_US), over a training loop.
 * gemm runs through the plugin's ops table (dlopen, as test_cuda_host does) so that alpha,
 * beta and leading dims the core never passes are covered too. */
#include "backend_harness.h"

#include <dlfcn.h>

#include "test_host.h"

/* ------------------------------------------------------------------ plugin instances */

static void *g_dl;
static em_backend_entry_fn g_entry;

typedef struct inst {
    em_backend be;
    void *dev;
} inst;

/* A cpu instance with `threads` threads, gemm path `path` (NULL: automatic) and kernels
 * `simd` ([cpu] isa: NULL for the default, "avx512", "avx2", "generic"). */
static void inst_open(inst *in, int threads, const char *path, const char *simd)
{
    char tv[16];
    snprintf(tv, sizeof tv, "%d", threads);
    em_config_kv cfg[2] = {{"threads", tv}, {"isa", simd}};
    if (path)
        setenv("EMBER_CPU_GEMM", path, 1);
    memset(in, 0, sizeof *in);
    in->be.struct_size = sizeof in->be;
    em_status st = g_entry(&g_host, NULL, cfg, simd ? 2 : 1, &in->be);
    unsetenv("EMBER_CPU_GEMM");
    if (st != EM_OK)
        fail_msg("cpu entry: %s", g_msg);
    if (in->be.ops->device_open(in->be.ctx, 0, &in->dev) != EM_OK)
        fail_msg("cpu device_open: %s", g_msg);
}

static void inst_close(inst *in)
{
    in->be.ops->device_close(in->dev);
    in->be.ops->shutdown(in->be.ctx);
}

static int load_plugin(void **state)
{
    (void)state;
    return (g_entry = th_plugin_entry("cpu", &g_dl)) ? 0 : -1;
}

static int unload_plugin(void **state)
{
    (void)state;
    if (g_dl)
        dlclose(g_dl);
    return 0;
}

/* ------------------------------------------------------------------ gemm */

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static double urand(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

typedef struct gcase {
    int64_t m, n, k;
} gcase;

/* the seed's five products, tile edges in every direction, deep k (split over threads),
 * skinny and wide shapes for both paths, sizes where the packed path is chosen, and a B
 * whose rows are a multiple of 4 KiB apart */
static const gcase g_cases[] = {
    {64, 100, 1000}, {1000, 100, 64}, {64, 10, 100}, {100, 10, 64}, {64, 100, 10},
    {1, 1, 1},       {7, 13, 5},      {1, 50, 1},    {50, 1, 3},    {33, 65, 17},
    {70, 130, 90},   {13, 37, 999},   {2, 3, 3000},  {5, 300, 700}, {300, 5, 700},
    {6, 16, 256},    {12, 32, 600},   {600, 40, 300}, {255, 257, 300}, {70, 300, 300},
    /* B rows 4 KiB apart (f32) and 8 KiB (f64): the direct path copies its panels */
    {30, 1024, 40},
};

typedef struct gsetup {
    int32_t dt;
    int ta, tb;
    int64_t m, n, k, batch;
    int64_t lda, ldb, ldc, sa, sb, sc;
    double alpha, beta;
    double *A, *B, *C0;          /* values, in storage order */
} gsetup;

static void *to_dtype(const double *v, size_t n, int32_t dt)
{
    if (dt == EM_F64) {
        double *p = malloc(n * sizeof *p + 1);
        memcpy(p, v, n * sizeof *p);
        return p;
    }
    float *p = malloc(n * sizeof *p + 1);
    for (size_t i = 0; i < n; i++)
        p[i] = (float)v[i];
    return p;
}

static double at(const void *p, int32_t dt, int64_t i)
{
    return dt == EM_F64 ? ((const double *)p)[i] : (double)((const float *)p)[i];
}

/* C of one run of the case on instance `in` (malloc'ed, in storage order). */
static void *gemm_on(inst *in, const gsetup *s)
{
    const size_t es = s->dt == EM_F64 ? 8 : 4;
    const int64_t arows = s->ta ? s->k : s->m, brows = s->tb ? s->n : s->k;
    const size_t na = (size_t)(s->sa * (s->batch - 1) + arows * s->lda);
    const size_t nb = (size_t)(s->sb * (s->batch - 1) + brows * s->ldb);
    const size_t nc = (size_t)(s->sc * (s->batch - 1) + s->m * s->ldc);
    void *a = to_dtype(s->A, na, s->dt), *b = to_dtype(s->B, nb, s->dt);
    void *c = to_dtype(s->C0, nc, s->dt);
    em_gemm_args g;
    memset(&g, 0, sizeof g);
    g.struct_size = sizeof g;
    g.dtype = s->dt;
    g.trans_a = s->ta;
    g.trans_b = s->tb;
    g.m = s->m;
    g.n = s->n;
    g.k = s->k;
    g.batch = s->batch;
    g.alpha = s->alpha;
    g.beta = s->beta;
    g.a = a;
    g.lda = s->lda;
    g.a_batch_stride = s->sa;
    g.b = b;
    g.ldb = s->ldb;
    g.b_batch_stride = s->sb;
    g.c = c;
    g.ldc = s->ldc;
    g.c_batch_stride = s->sc;
    em_status st = in->be.ops->gemm(in->dev, &g);
    if (st != EM_OK)
        fail_msg("gemm %lldx%lldx%lld: %s", (long long)s->m, (long long)s->n, (long long)s->k,
                 g_msg);
    free(a);
    free(b);
    (void)es;
    return c;
}

/* Every element of got against sum_p op(A) op(B) in double. */
static void gemm_check_ref(const gsetup *s, const void *got, const char *what)
{
    const double eps = s->dt == EM_F64 ? 1e-15 : 1e-6;
    for (int64_t bi = 0; bi < s->batch; bi++)
        for (int64_t i = 0; i < s->m; i++)
            for (int64_t j = 0; j < s->n; j++) {
                double acc = 0, mag = 0;
                for (int64_t p = 0; p < s->k; p++) {
                    double a = s->A[bi * s->sa + (s->ta ? p * s->lda + i : i * s->lda + p)];
                    double b = s->B[bi * s->sb + (s->tb ? j * s->ldb + p : p * s->ldb + j)];
                    if (s->dt == EM_F32) {
                        a = (double)(float)a;
                        b = (double)(float)b;
                    }
                    acc += a * b;
                    mag += fabs(a * b);
                }
                const int64_t ci = bi * s->sc + i * s->ldc + j;
                double c0 = s->dt == EM_F32 ? (double)(float)s->C0[ci] : s->C0[ci];
                double want = s->alpha * acc + (s->beta != 0 ? s->beta * c0 : 0);
                double tol = 4 * eps * ((double)s->k + 2) * (fabs(s->alpha) * mag + fabs(s->beta * c0)) + 1e-300;
                double v = at(got, s->dt, ci);
                if (!(fabs(v - want) <= tol))
                    fail_msg("%s: C[%lld][%lld][%lld] = %.17g, expected %.17g (tol %.3g)", what,
                             (long long)bi, (long long)i, (long long)j, v, want, tol);
            }
    /* the padding between rows (ldc > n) is never written */
    for (int64_t bi = 0; bi < s->batch; bi++)
        for (int64_t i = 0; i < s->m; i++)
            for (int64_t j = s->n; j < s->ldc && (i < s->m - 1 || bi < s->batch - 1); j++) {
                const int64_t ci = bi * s->sc + i * s->ldc + j;
                double c0 = s->dt == EM_F32 ? (double)(float)s->C0[ci] : s->C0[ci];
                if (at(got, s->dt, ci) != c0)
                    fail_msg("%s: padding C[%lld][%lld][%lld] was written", what, (long long)bi,
                             (long long)i, (long long)j);
            }
}

static void gsetup_make(gsetup *s, int32_t dt, const gcase *c, int ta, int tb, int64_t batch,
                        int pad, double alpha, double beta)
{
    memset(s, 0, sizeof *s);
    s->dt = dt;
    s->ta = ta;
    s->tb = tb;
    s->m = c->m;
    s->n = c->n;
    s->k = c->k;
    s->batch = batch;
    s->alpha = alpha;
    s->beta = beta;
    s->lda = (ta ? c->m : c->k) + pad;
    s->ldb = (tb ? c->k : c->n) + pad;
    s->ldc = c->n + pad;
    s->sa = (ta ? c->k : c->m) * s->lda + pad;
    s->sb = (tb ? c->n : c->k) * s->ldb + pad;
    s->sc = c->m * s->ldc + pad;
    size_t na = (size_t)(s->sa * batch), nb = (size_t)(s->sb * batch);
    size_t nc = (size_t)(s->sc * batch);
    s->A = malloc(na * sizeof(double));
    s->B = malloc(nb * sizeof(double));
    s->C0 = malloc(nc * sizeof(double));
    for (size_t i = 0; i < na; i++)
        s->A[i] = urand();
    for (size_t i = 0; i < nb; i++)
        s->B[i] = urand();
    for (size_t i = 0; i < nc; i++)
        s->C0[i] = urand();
}

static void gsetup_free(gsetup *s)
{
    free(s->A);
    free(s->B);
    free(s->C0);
}

/* Whether this CPU lacks what [cpu] isa = `isa` needs: then the plugin refuses it with a
 * message naming the missing flag, which is printed as the reason to skip. */
static int isa_missing(const char *isa)
{
    em_config_kv cfg[2] = {{"threads", "1"}, {"isa", isa}};
    em_backend be;
    memset(&be, 0, sizeof be);
    be.struct_size = sizeof be;
    g_msg[0] = '\0';
    em_status st = g_entry(&g_host, NULL, cfg, 2, &be);
    if (st == EM_OK) {
        be.ops->shutdown(be.ctx);
        return 0;
    }
    assert_int_equal(st, EM_ERR_CONFIG);
    assert_non_null(strstr(g_msg, "needs the CPU flag"));
    fprintf(stderr, "# skipping isa = %s: %s\n", isa, g_msg);
    return 1;
}

/* One family of kernels (simd): every (path, threads) instance gives the same bits as the
 * packed path on one thread, which matches the reference. With `same_as`, a family that
 * sums in the same order (the same FMAs over the same KC slices): its packed path gives
 * the same bits too wherever edge tiles round alike (alpha 1 or beta 0; elsewhere an edge
 * tile scales in two roundings where a full one fuses, and the reference bounds both). */
static void gemm_family2(const char *simd, const char *same_as)
{
    static const char *const paths[] = {"packed", "direct", NULL};
    static const int threads[] = {1, 2, 3};
    inst ref, others[9], cmp;
    inst_open(&ref, 1, "packed", simd);
    if (same_as)
        inst_open(&cmp, 1, "packed", same_as);
    int no = 0;
    for (int p = 0; p < 3; p++)
        for (int t = 0; t < 3; t++)
            if (p || t)
                inst_open(&others[no++], threads[t], paths[p], simd);
    static const struct {
        double alpha, beta;
        int pad;
        int64_t batch;
    } variants[] = {{1, 0, 0, 1}, {1, 1, 3, 1}, {0.5, -2, 1, 2}, {1, 0, 0, 3}};
    for (int d = 0; d < 2; d++) {
        const int32_t dt = d ? EM_F64 : EM_F32;
        for (size_t c = 0; c < sizeof g_cases / sizeof g_cases[0]; c++)
            for (int t = 0; t < 4; t++)
                for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
                    /* keep the big ones to the plain variant */
                    if (v && g_cases[c].m * g_cases[c].n * g_cases[c].k > 2000000)
                        continue;
                    gsetup s;
                    gsetup_make(&s, dt, &g_cases[c], t & 1, t >> 1, variants[v].batch,
                                variants[v].pad, variants[v].alpha, variants[v].beta);
                    char what[160];
                    snprintf(what, sizeof what,
                             "%s %s %lldx%lldx%lld ta=%d tb=%d alpha=%g beta=%g pad=%d batch=%lld",
                             simd ? simd : "auto", dt == EM_F64 ? "f64" : "f32",
                             (long long)s.m, (long long)s.n, (long long)s.k, s.ta, s.tb, s.alpha,
                             s.beta, variants[v].pad, (long long)s.batch);
                    void *want = gemm_on(&ref, &s);
                    gemm_check_ref(&s, want, what);
                    const size_t bytes = (size_t)(s.sc * (s.batch - 1) + s.m * s.ldc) *
                                         (dt == EM_F64 ? sizeof(double) : sizeof(float));
                    for (int o = 0; o < no; o++) {
                        void *got = gemm_on(&others[o], &s);
                        if (memcmp(got, want, bytes) != 0) {
                            for (size_t e = 0; e < bytes / (dt == EM_F64 ? 8 : 4); e++)
                                if (at(got, dt, (int64_t)e) != at(want, dt, (int64_t)e)) {
                                    fprintf(stderr, "# first difference at element %zu: %.17g vs %.17g\n",
                                            e, at(got, dt, (int64_t)e), at(want, dt, (int64_t)e));
                                    break;
                                }
                            fail_msg("%s: instance %d (path/threads) differs from the packed "
                                     "path on one thread",
                                     what, o);
                        }
                        free(got);
                    }
                    if (same_as && (s.alpha == 1 || s.beta == 0)) {
                        void *got = gemm_on(&cmp, &s);
                        if (memcmp(got, want, bytes) != 0)
                            fail_msg("%s: isa %s differs from it", what, same_as);
                        free(got);
                    }
                    free(want);
                    gsetup_free(&s);
                }
    }
    inst_close(&ref);
    if (same_as)
        inst_close(&cmp);
    for (int o = 0; o < no; o++)
        inst_close(&others[o]);
}

static void gemm_family(const char *simd)
{
    gemm_family2(simd, NULL);
}

static void test_gemm_paths_best(void **state)
{
    (void)state;
    gemm_family(NULL);
}

/* AVX2 forced, also where the CPU has AVX-512 */
static void test_gemm_paths_avx2(void **state)
{
    (void)state;
    if (isa_missing("avx2"))
        skip();
    gemm_family("avx2");
}

/* AVX-512 (6x32 f32 / 6x16 f64 tiles): as the AVX2 ones, bit for bit where tiles agree */
static void test_gemm_paths_avx512(void **state)
{
    (void)state;
    if (isa_missing("avx512"))
        skip();
    gemm_family2("avx512", "avx2");
}

/* [cpu] isa takes auto|avx512|avx2|generic and names what it got otherwise */
static void test_isa_key(void **state)
{
    (void)state;
    static const char *const bad[] = {"avx1024", "", "AVX2", "sse"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        em_config_kv cfg[1] = {{"isa", bad[i]}};
        em_backend be;
        memset(&be, 0, sizeof be);
        be.struct_size = sizeof be;
        assert_int_equal(g_entry(&g_host, NULL, cfg, 1, &be), EM_ERR_CONFIG);
        char want[96];
        snprintf(want, sizeof want, "isa: expected auto, avx512, avx2 or generic, got '%s'",
                 bad[i]);
        assert_string_equal(g_msg, want);
    }
    /* auto and generic work on any CPU */
    inst a;
    inst_open(&a, 1, NULL, "auto");
    inst_close(&a);
    inst_open(&a, 1, NULL, "generic");
    inst_close(&a);
}

static void test_gemm_paths_generic(void **state)
{
    (void)state;
    gemm_family("generic");
}

/* ------------------------------------------------------------------ through the API */

static em_context *ctx_with(int threads, const char *simd, const char *spin_us)
{
    em_config *cfg = test_config("cpu");
    char tv[16];
    snprintf(tv, sizeof tv, "%d", threads);
    em_config_set(cfg, "cpu", "threads", tv);
    if (simd)
        em_config_set(cfg, "cpu", "isa", simd);
    if (spin_us)
        setenv("EMBER_CPU_SPIN_US", spin_us, 1);
    em_context *ctx = NULL;
    em_status st = em_context_create_with(&ctx, cfg);
    unsetenv("EMBER_CPU_SPIN_US");
    em_config_free(cfg);
    if (st != EM_OK)
        fail_msg("context: %s", em_last_error());
    em_manual_seed(ctx, 7);
    return ctx;
}

/* Bytes of every result of a list of elementwise ops and sums, appended to *out. */
static size_t run_elementwise(em_context *c, unsigned char **out)
{
    size_t len = 0, cap = 0;
    *out = NULL;
    static const int64_t sizes[] = {37, 1000003};
    for (int d = 0; d < 2; d++) {
        const em_dtype dt = d ? EM_F64 : EM_F32;
        for (int si = 0; si < 2; si++) {
            const int64_t n = sizes[si];
            em_scope_begin(c);
            const int64_t n7 = n - n % 7;
            em_tensor *x = em_randn(c, dt, EM_SHAPE(n));
            em_tensor *y = em_rand(c, dt, EM_SHAPE(n));
            em_tensor *m2 = em_reshape(em_randn(c, dt, EM_SHAPE(n7)), EM_SHAPE(7, n7 / 7));
            /* strided operands: transposed views */
            em_tensor *xs = em_t(em_reshape(em_randn(c, dt, EM_SHAPE(n7)), EM_SHAPE(7, n7 / 7)));
            em_tensor *ys = em_t(em_reshape(em_rand(c, dt, EM_SHAPE(n7)), EM_SHAPE(7, n7 / 7)));
            em_tensor *r[32];
            int nr = 0;
            r[nr++] = em_add(x, y);
            r[nr++] = em_sub(x, y);
            r[nr++] = em_mul(x, y);
            r[nr++] = em_div(x, y);
            r[nr++] = em_maximum(x, y);
            r[nr++] = em_minimum(xs, ys);
            r[nr++] = em_relu(x);
            r[nr++] = em_clamp(x, -0.5, 0.25);
            r[nr++] = em_pow(x, 2.0);
            r[nr++] = em_pow(y, 0.5);
            r[nr++] = em_exp(xs);
            r[nr++] = em_tanh(x);
            r[nr++] = em_sigmoid(x);
            r[nr++] = em_mul_scalar(x, 1e-6);
            r[nr++] = em_add_scalar(xs, 3.0);
            r[nr++] = em_where(em_lt(x, y), x, y);
            r[nr++] = em_sum(x);
            r[nr++] = em_sum(xs);
            r[nr++] = em_sum_dims(m2, 1, (const int[]){0}, false);
            r[nr++] = em_sum_dims(m2, 1, (const int[]){1}, true);
            r[nr++] = em_mean(y);
            em_tensor *z = em_clone(x);              /* in place */
            em_sub_(z, em_mul_scalar(y, 1e-3));
            em_masked_fill_(z, em_lt_scalar(y, 0.5), 0.0);
            r[nr++] = z;
            em_tensor *w = em_clone(x);              /* autograd's fused backward helpers */
            em_tensor_set_requires_grad(w, true);
            em_backward(em_sum(em_mul(em_sigmoid(em_tanh(em_pow(em_clamp(em_relu(w), -1, 2), 2.0))), y)));
            r[nr++] = em_grad(w);
            for (int i = 0; i < nr; i++) {
                size_t b = (size_t)em_tensor_numel(r[i]) * em_dtype_size(em_tensor_dtype(r[i]));
                if (len + b > cap) {
                    cap = (len + b) * 2;
                    *out = realloc(*out, cap);
                }
                if (em_tensor_to_host(em_contiguous(r[i]), *out + len, b) != EM_OK)
                    fail_msg("to_host: %s", em_context_error(c));
                len += b;
            }
            em_scope_end(c);
        }
    }
    if (em_context_status(c) != EM_OK)
        fail_msg("%s", em_context_error(c));
    return len;
}

static void test_elementwise_avx2_matches_generic(void **state)
{
    (void)state;
    em_context *a = ctx_with(2, NULL, NULL), *b = ctx_with(1, "generic", NULL);
    unsigned char *ra, *rb;
    size_t na = run_elementwise(a, &ra), nb = run_elementwise(b, &rb);
    assert_int_equal(na, nb);
    assert_memory_equal(ra, rb, na);
    free(ra);
    free(rb);
    em_context_free(a);
    em_context_free(b);
}

/* f32 sums and means keep double accumulation's accuracy on inputs that defeat f32
 * partial sums, give the same bits on 1, 2 and 3 threads and with the portable kernels,
 * contiguous and through a transposed (strided) view. */
static uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005u + 1442695040888963407u;
    return *s >> 11;
}

/* |got - want| in f32 ulps of want (a mean, sum times 1/n in double then rounded, is held
 * to 0.5 ulp; the sums to max_ulps) */
static double f32_ulps(float got, long double want)
{
    float w = (float)want;
    float up = nextafterf(fabsf(w), INFINITY);
    return (double)(fabsl((long double)got - want) / (long double)(up - fabsf(w)));
}

static void check_sum(const float *x, int64_t n, long double exact, double max_ulps,
                      const char *what)
{
    const int64_t rows = 1009;          /* n = rows * cols for the transposed view */
    float first = 0;
    for (int v = 0; v < 4; v++) {
        static const int th[] = {1, 2, 3, 2};
        em_context *c = ctx_with(th[v], v == 3 ? "generic" : NULL, NULL);
        em_scope_begin(c);
        em_tensor *t = em_tensor_from_data(c, EM_F32, EM_SHAPE(n), x);
        float s = (float)em_item(em_sum(t)), m = (float)em_item(em_mean(t));
        float st = s;
        if (n % rows == 0)
            st = (float)em_item(em_sum(em_t(em_reshape(t, EM_SHAPE(rows, n / rows)))));
        if (em_context_status(c) != EM_OK)
            fail_msg("%s: %s", what, em_context_error(c));
        em_scope_end(c);
        em_context_free(c);
        if (f32_ulps(s, exact) > max_ulps || f32_ulps(st, exact) > max_ulps ||
            f32_ulps(m, exact / n) > 0.5001)
            fail_msg("%s, %d threads%s: sum %.9g (transposed %.9g), mean %.9g; exact %.12Lg "
                     "(%.3g, %.3g, %.3g ulps)", what, th[v], v == 3 ? ", generic" : "", s, st,
                     m, exact, f32_ulps(s, exact), f32_ulps(st, exact), f32_ulps(m, exact / n));
        if (v == 0)
            first = s;
        else if (memcmp(&first, &s, sizeof s) != 0)
            fail_msg("%s: %.9g on 1 thread, %.9g on run %d", what, first, s, v);
    }
}

static void test_sum_f32_accuracy(void **state)
{
    (void)state;
    const int64_t n = 1009 * 997;       /* many leaves and chunks, odd tails */
    float *x = malloc(sizeof(float) * (size_t)n);
    uint64_t seed = 42;
    /* pairs +a, -a (24-bit mantissas over 8 binades) shuffled with k values of 2^-10: every
     * partial sum is a multiple of 2^-23 below 2^28, exact in double, so the result must be
     * exactly k * 2^-10; f32 partial sums lose it entirely */
    const int64_t k = n / 8 + 1, m = (n - k) / 2;
    for (int64_t i = 0; i < m; i++) {
        float a = (float)ldexp((double)(lcg(&seed) & 0xffffff) / 0x1000000 + 1.0,
                               (int)(lcg(&seed) % 8));
        x[2 * i] = a;
        x[2 * i + 1] = -a;
    }
    for (int64_t i = 2 * m; i < n; i++)
        x[i] = 0x1p-10f;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(lcg(&seed) % (uint64_t)(i + 1));
        float t = x[i];
        x[i] = x[j];
        x[j] = t;
    }
    check_sum(x, n, (long double)(n - 2 * m) * 0x1p-10L, 0.0, "cancelling pairs");

    /* one large value, then many equal small ones, and a large one cancelling at the end:
     * the reference in long double (64-bit mantissa) is exact to far below an f32 ulp */
    long double ref = 0;
    for (int64_t i = 0; i < n; i++)
        x[i] = i == 0 ? 1e8f : i == n - 1 ? -0x1p26f : 0.1f;
    for (int64_t i = 0; i < n; i++)
        ref += x[i];
    check_sum(x, n, ref, 0.5001, "1e8, 0.1s, -2^26");

    /* magnitudes over 2^-30 .. 2^30, mixed signs */
    ref = 0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = (float)ldexp(1.0 + (double)(lcg(&seed) & 0xffff) / 0x10000,
                            (int)(lcg(&seed) % 61) - 30) * (lcg(&seed) & 1 ? 1.0f : -1.0f);
        ref += x[i];
    }
    check_sum(x, n, ref, 0.5001, "wide dynamic range");
    free(x);
}

/* The seed's training loop (f32 autograd and the f64 manual update) on 1, 2 and 3 threads,
 * with spinning and with sleeping pool threads: the same losses and weights, bit for bit. */
static void train(em_context *c, double *losses, int steps, float *w1_out, double *v1_out)
{
    em_tensor *x = em_randn(c, EM_F32, EM_SHAPE(64, 1000));
    em_tensor *y = em_randn(c, EM_F32, EM_SHAPE(64, 10));
    em_tensor *w1 = em_mul_scalar(em_randn(c, EM_F32, EM_SHAPE(1000, 100)), 0.05);
    em_tensor *w2 = em_mul_scalar(em_randn(c, EM_F32, EM_SHAPE(100, 10)), 0.05);
    em_tensor_set_requires_grad(w1, true);
    em_tensor_set_requires_grad(w2, true);
    em_tensor *xd = em_to_dtype(x, EM_F64), *yd = em_to_dtype(y, EM_F64);
    em_tensor *v1 = em_to_dtype(w1, EM_F64), *v2 = em_to_dtype(w2, EM_F64);
    em_tensor *zero = em_scalar(c, EM_F64, 0.0);
    for (int t = 0; t < steps; t++) {
        em_scope_begin(c);
        em_tensor *loss = em_sum(em_pow(em_sub(em_mm(em_clamp(em_mm(x, w1), 0, INFINITY), w2), y), 2));
        losses[2 * t] = em_item(loss);
        em_backward(loss);
        em_no_grad_begin(c);
        em_sub_(w1, em_mul_scalar(em_grad(w1), 1e-5));
        em_sub_(w2, em_mul_scalar(em_grad(w2), 1e-5));
        em_tensor_zero_grad(w1);
        em_tensor_zero_grad(w2);
        em_no_grad_end(c);
        /* the numpy cell in f64 */
        em_tensor *h = em_mm(xd, v1), *hr = em_maximum(h, zero), *yp = em_mm(hr, v2);
        em_tensor *diff = em_sub(yp, yd);
        losses[2 * t + 1] = em_item(em_sum(em_pow(diff, 2.0)));
        em_tensor *gy = em_mul_scalar(diff, 2.0);
        em_tensor *gw2 = em_mm(em_t(hr), gy);
        em_tensor *gh = em_clone(em_mm(gy, em_t(v2)));
        em_masked_fill_(gh, em_lt_scalar(h, 0.0), 0.0);
        em_tensor *gw1 = em_mm(em_t(xd), gh);
        em_sub_(v1, em_mul_scalar(gw1, 1e-5));
        em_sub_(v2, em_mul_scalar(gw2, 1e-5));
        em_scope_end(c);
    }
    em_tensor_to_host(w1, w1_out, sizeof(float) * 1000 * 100);
    em_tensor_to_host(v1, v1_out, sizeof(double) * 1000 * 100);
    if (em_context_status(c) != EM_OK)
        fail_msg("%s", em_context_error(c));
}

static void test_training_independent_of_threads_and_spin(void **state)
{
    (void)state;
    enum { STEPS = 6 };
    static const struct {
        int threads;
        const char *spin;
    } runs[] = {{1, NULL}, {2, NULL}, {3, NULL}, {2, "0"}, {2, "2000"}};
    double ref_l[2 * STEPS], l[2 * STEPS];
    float *ref_w = malloc(sizeof(float) * 100000), *w = malloc(sizeof(float) * 100000);
    double *ref_v = malloc(sizeof(double) * 100000), *v = malloc(sizeof(double) * 100000);
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        em_context *c = ctx_with(runs[r].threads, NULL, runs[r].spin);
        train(c, r ? l : ref_l, STEPS, r ? w : ref_w, r ? v : ref_v);
        em_context_free(c);
        if (!r)
            continue;
        assert_memory_equal(ref_l, l, sizeof l);
        assert_memory_equal(ref_w, w, sizeof(float) * 100000);
        assert_memory_equal(ref_v, v, sizeof(double) * 100000);
    }
    /* it trained */
    assert_true(ref_l[2 * (STEPS - 1)] < ref_l[0]);
    free(ref_w);
    free(w);
    free(ref_v);
    free(v);
}

int main(void)
{
    int rc = test_backend_setup();
    if (rc >= 0)
        return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_paths_best),
        cmocka_unit_test(test_gemm_paths_generic),
        cmocka_unit_test(test_gemm_paths_avx2),
        cmocka_unit_test(test_gemm_paths_avx512),
        cmocka_unit_test(test_isa_key),
        cmocka_unit_test(test_elementwise_avx2_matches_generic),
        cmocka_unit_test(test_sum_f32_accuracy),
        cmocka_unit_test(test_training_independent_of_threads_and_spin),
    };
    rc = _cmocka_run_group_tests("cpu_perf_paths", tests, sizeof tests / sizeof tests[0],
                                 load_plugin, unload_plugin);
    em_context_free(g_ctx);
    return rc;
}
