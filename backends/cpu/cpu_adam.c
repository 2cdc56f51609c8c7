/* backends/cpu/cpu_adam.c — the cpu backend's fused optimizer kernel of ABI 1.3, adam: one
 * pass over a parameter, its gradient and its Adam state, writing the new parameter and
 * state into fresh buffers (the definition, operation for operation, is in ember/backend.h).
 *
 * Each combination of the step's flags (maximize, weight decay none / Adam / AdamW, first
 * step, amsgrad) gets its own branch-free loop, so gcc vectorises every one; the loops are
 * compiled twice, for the baseline ISA and for AVX2 (chosen per instance), never with FMA
 * and with contraction off (-ffp-contract=off: Makefile.am, configure.ac), so every
 * operation rounds as the separate elementwise kernels do: the fused and composed steps give
 * the same bits. Large parameters are cut into chunks run on the instance's thread pool; each
 * element is computed alike whatever the chunking. */

#include "cpu_ew.h"

#include <math.h>
#include <string.h>

/* The scalars of a step, converted to the dtype as the elementwise kernels convert theirs
 * (computed in double first). */
typedef struct adam_sc {
    double b1, c1, b2, c2, wd, keep, s2, e, step;
} adam_sc;

/* NaN in either wins, the first (vmax) before the second: the maximum kernel's rule */
#define ADAM_MAX(a, b) ((a) > (b) || (a) != (a) ? (a) : (b))

/* One loop over [lo, hi) with the flags as constants: MX maximize, WD 0 none / 1 Adam /
 * 2 AdamW, FI first step, AM amsgrad. */
#define ADAM_BODY(T, SQRT)                                                                \
    {                                                                                     \
        const T b1 = (T)c->b1, c1 = (T)c->c1, b2 = (T)c->b2, c2 = (T)c->c2;              \
        const T wd = (T)c->wd, keep = (T)c->keep, s2 = (T)c->s2, e = (T)c->e;            \
        const T step = (T)c->step;                                                        \
        _Pragma("GCC ivdep") for (int64_t i = lo; i < hi; i++)                            \
        {                                                                                 \
            T p = P[i];                                                                   \
            T x = G[i];                                                                   \
            if (MX)                                                                       \
                x = -x;                                                                   \
            if (WD == 1)                                                                  \
                x = x + p * wd;                                                           \
            if (WD == 2)                                                                  \
                p = p * keep;                                                             \
            const T xc = x * c1, xx = (x * x) * c2;                                       \
            const T m = FI ? xc : M[i] * b1 + xc;                                         \
            const T v = FI ? xx : V[i] * b2 + xx;                                         \
            T d = v;                                                                      \
            if (AM) {                                                                     \
                d = FI ? v : ADAM_MAX(X[i], v);                                           \
                XO[i] = d;                                                                \
            }                                                                             \
            MO[i] = m;                                                                    \
            VO[i] = v;                                                                    \
            PO[i] = p - (m / (SQRT(d) / s2 + e)) * step;                                  \
        }                                                                                 \
    }

#define ADAM_FN(NAME, T, SQRT)                                                            \
    static inline __attribute__((always_inline)) void NAME##_body(                        \
        int64_t lo, int64_t hi, T *restrict PO, T *restrict MO, T *restrict VO,           \
        T *restrict XO, const T *P, const T *G, const T *M, const T *V, const T *X,       \
        const adam_sc *c, const int MX, const int WD, const int FI, const int AM)         \
    ADAM_BODY(T, SQRT)                                                                    \
    static void NAME(int key, int64_t lo, int64_t hi, void *const *o, const void *const *in, \
                     const adam_sc *c)                                                    \
    {                                                                                     \
        T *PO = o[0], *MO = o[1], *VO = o[2], *XO = o[3];                                 \
        const T *P = in[0], *G = in[1], *M = in[2], *V = in[3], *X = in[4];               \
        switch (key) {                                                                    \
            ADAM_ALL(NAME)                                                                \
        }                                                                                 \
    }

#define ADAM_KEY(MX, WD, FI, AM) ((MX) | (WD) << 1 | (FI) << 3 | (AM) << 4)
#define ADAM_CASE(NAME, MX, WD, FI, AM)                                                   \
    case ADAM_KEY(MX, WD, FI, AM):                                                        \
        NAME##_body(lo, hi, PO, MO, VO, XO, P, G, M, V, X, c, MX, WD, FI, AM);             \
        break;
#define ADAM_AM(NAME, MX, WD, FI) ADAM_CASE(NAME, MX, WD, FI, 0) ADAM_CASE(NAME, MX, WD, FI, 1)
#define ADAM_FI(NAME, MX, WD) ADAM_AM(NAME, MX, WD, 0) ADAM_AM(NAME, MX, WD, 1)
#define ADAM_WD(NAME, MX) ADAM_FI(NAME, MX, 0) ADAM_FI(NAME, MX, 1) ADAM_FI(NAME, MX, 2)
#define ADAM_ALL(NAME) ADAM_WD(NAME, 0) ADAM_WD(NAME, 1)

typedef void (*adam_fn)(int key, int64_t lo, int64_t hi, void *const *o,
                        const void *const *in, const adam_sc *c);

ADAM_FN(adam_f32_gen, float, sqrtf)
ADAM_FN(adam_f64_gen, double, sqrt)

#if defined(__x86_64__) && defined(__GNUC__) && !defined(EM_CPU_NO_SIMD)
#pragma GCC push_options
#pragma GCC target("avx2,tune=haswell")
ADAM_FN(adam_f32_avx2, float, sqrtf)
ADAM_FN(adam_f64_avx2, double, sqrt)
#pragma GCC pop_options
#define ADAM_PICK(inst, dt)                                                               \
    ((inst)->simd >= CPU_SIMD_AVX2 ? ((dt) == EM_F32 ? adam_f32_avx2 : adam_f64_avx2)     \
                                   : ((dt) == EM_F32 ? adam_f32_gen : adam_f64_gen))
#else
#define ADAM_PICK(inst, dt) ((dt) == EM_F32 ? adam_f32_gen : adam_f64_gen)
#endif

typedef struct adam_job {
    adam_fn fn;
    int key;
    int64_t n, chunk;
    void *o[4];
    const void *in[5];
    adam_sc c;
} adam_job;

static void adam_task(void *arg, int64_t t, int worker)
{
    (void)worker;
    const adam_job *j = arg;
    int64_t lo = t * j->chunk, hi = lo + j->chunk < j->n ? lo + j->chunk : j->n;
    j->fn(j->key, lo, hi, j->o, j->in, &j->c);
}

em_status cpu_optim_view(cpu_inst *inst, const char *kname, const em_kview *v,
                         const char *what, int32_t dt, int64_t *n)
{
    em_status st = cpu_check_view(inst, kname, what, v);
    if (st != EM_OK)
        return st;
    if (v->dtype != dt)
        return cpu_mismatch(inst, kname, what, v->dtype, dt);
    int64_t count = 1, want = 1;
    for (int d = v->ndim - 1; d >= 0; d--) {
        if (v->shape[d] != 1 && v->strides[d] != want)
            return CPU_ERR(inst, EM_ERR_INVALID, "%s: %s is not contiguous (stride %lld in "
                           "dim %d)", kname, what, (long long)v->strides[d], d);
        want *= v->shape[d];
        count *= v->shape[d];
    }
    if (*n >= 0 && count != *n)
        return CPU_ERR(inst, EM_ERR_INVALID, "%s: %s has %lld elements, out has %lld", kname,
                       what, (long long)count, (long long)*n);
    *n = count;
    return EM_OK;
}

int64_t cpu_optim_chunk(cpu_inst *inst, int64_t n)
{
    int nt = n >= PAR_CHEAP ? cpu_threads(inst) : 1;
    if (nt > 1 && n < PAR_CONTENDED && cpu_contended(inst))
        nt = 1;
    if (nt <= 1)
        return n;
    int64_t chunk = n / ((int64_t)nt * 4);
    if (chunk < PAR_CHUNK_MIN)
        chunk = PAR_CHUNK_MIN;
    return (chunk + 1023) & ~(int64_t)1023;
}

em_status cpu_k_adam(void *dev, const em_kargs *ka)
{
    cpu_inst *inst = dev;
    if (ka->struct_size < offsetof(em_kargs, fp) + sizeof ka->fp || ka->n_ip < 4 ||
        ka->n_fp < 3 || !ka->ip || !ka->fp || !ka->outs || !ka->ins)
        return CPU_ERR(inst, EM_ERR_INVALID, "adam: expected ip[4] and fp[3] (n_ip %u, n_fp %u)",
                       (unsigned)ka->n_ip, (unsigned)ka->n_fp);
    const int adamw = ka->ip[0] != 0, ams = ka->ip[1] != 0, mx = ka->ip[2] != 0,
              first = ka->ip[3] != 0;
    const uint32_t n_out = ams ? 4u : 3u, n_in = first ? 2u : ams ? 5u : 4u;
    if (ka->n_out != n_out || ka->n_in != n_in)
        return CPU_ERR(inst, EM_ERR_INVALID, "adam: expected %u outputs and %u inputs, got %u "
                       "and %u", (unsigned)n_out, (unsigned)n_in, (unsigned)ka->n_out,
                       (unsigned)ka->n_in);
    const int32_t dt = ka->outs[0] ? ka->outs[0]->dtype : EM_F32;
    if (dt != EM_F32 && dt != EM_F64)
        return cpu_unsupported(inst, "adam", dt);
    static const char *const onames[4] = {"outs[0] (p')", "outs[1] (m')", "outs[2] (v')",
                                          "outs[3] (vmax')"};
    static const char *const inames[5] = {"ins[0] (p)", "ins[1] (g)", "ins[2] (m)",
                                          "ins[3] (v)", "ins[4] (vmax)"};
    int64_t n = -1;
    em_status st = EM_OK;
    adam_job j;
    memset(&j, 0, sizeof j);
    size_t esz = emk_dtype_size(dt);
    for (uint32_t k = 0; k < n_out && st == EM_OK; k++)
        if ((st = cpu_optim_view(inst, "adam", ka->outs[k], onames[k], dt, &n)) == EM_OK)
            j.o[k] = (char *)ka->outs[k]->buf + ka->outs[k]->offset * (int64_t)esz;
    for (uint32_t k = 0; k < n_in && st == EM_OK; k++)
        if ((st = cpu_optim_view(inst, "adam", ka->ins[k], inames[k], dt, &n)) == EM_OK)
            j.in[k] = (const char *)ka->ins[k]->buf + ka->ins[k]->offset * (int64_t)esz;
    if (st != EM_OK)
        return st;
    const double lr = ka->p[0], beta1 = ka->p[1], beta2 = ka->p[2], eps = ka->p[3];
    const double wd = ka->fp[0], bc1 = ka->fp[1], bc2 = ka->fp[2];
    j.c = (adam_sc){.b1 = beta1, .c1 = 1.0 - beta1, .b2 = beta2, .c2 = 1.0 - beta2, .wd = wd,
                    .keep = 1.0 - lr * wd, .s2 = sqrt(bc2), .e = eps, .step = lr / bc1};
    j.key = ADAM_KEY(mx, wd == 0 ? 0 : adamw ? 2 : 1, first, ams);
    j.fn = ADAM_PICK(inst, dt);
    j.n = n;
    if (n == 0)
        return EM_OK;
    j.chunk = cpu_optim_chunk(inst, n);
    cpu_parallel(inst, (n + j.chunk - 1) / j.chunk, adam_task, &j);
    return EM_OK;
}
