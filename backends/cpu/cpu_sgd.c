/* backends/cpu/cpu_sgd.c — the cpu backend's fused SGD kernel of ABI 1.7, sgd: one pass over
 * a parameter, its gradient and its momentum buffer, writing the new parameter (and buffer)
 * into fresh buffers. The definition, operation for operation, is in ember/backend.h; it is
 * what core/optim/sgd.c composes from elementwise kernels without it.
 *
 * As in cpu_adam.c: each combination of the step's flags gets its own branch-free loop, so
 * gcc vectorises every one; the loops are compiled for the baseline ISA and for AVX2 (chosen
 * per instance), with contraction off (EM_OPTIM_CFLAGS), so every operation rounds as the
 * separate elementwise kernels do and both ways give the same bits. Large parameters are cut
 * into chunks run on the instance's thread pool; each element is computed alike whatever
 * the chunking. */

#include "cpu_ew.h"

#include <string.h>

/* The step's scalars, in double; each loop converts them to its dtype. */
typedef struct sgd_sc {
    double r, m, c, wd;
} sgd_sc;

/* One loop over [lo, hi) with the flags as constants: MX maximize, WD weight decay, MO
 * momentum 0 none / 1 first step (no buffer yet) / 2 later, NE nesterov. */
#define SGD_BODY(T)                                                                       \
    {                                                                                     \
        const T r = (T)c->r, m = (T)c->m, cc = (T)c->c, wd = (T)c->wd;                    \
        _Pragma("GCC ivdep") for (int64_t i = lo; i < hi; i++)                            \
        {                                                                                 \
            const T p = P[i];                                                             \
            T x = G[i];                                                                   \
            if (MX)                                                                       \
                x = -x;                                                                   \
            if (WD)                                                                       \
                x = x + p * wd;                                                           \
            if (MO) {                                                                     \
                const T b = MO == 1 ? x : B[i] * m + x * cc;                              \
                BO[i] = b;                                                                \
                x = NE ? x + b * m : b;                                                   \
            }                                                                             \
            PO[i] = p - x * r;                                                            \
        }                                                                                 \
    }

#define SGD_FN(NAME, T)                                                                   \
    static inline __attribute__((always_inline)) void NAME##_body(                        \
        int64_t lo, int64_t hi, T *restrict PO, T *restrict BO, const T *P, const T *G,   \
        const T *B, const sgd_sc *c, const int MX, const int WD, const int MO,            \
        const int NE)                                                                     \
    SGD_BODY(T)                                                                           \
    static void NAME(int key, int64_t lo, int64_t hi, void *const *o,                     \
                     const void *const *in, const sgd_sc *c)                              \
    {                                                                                     \
        T *PO = o[0], *BO = o[1];                                                         \
        const T *P = in[0], *G = in[1], *B = in[2];                                       \
        switch (key) {                                                                    \
            SGD_ALL(NAME)                                                                 \
        }                                                                                 \
    }

#define SGD_KEY(MX, WD, MO, NE) ((MX) | (WD) << 1 | (MO) << 2 | (NE) << 4)
#define SGD_CASE(NAME, MX, WD, MO, NE)                                                    \
    case SGD_KEY(MX, WD, MO, NE):                                                         \
        NAME##_body(lo, hi, PO, BO, P, G, B, c, MX, WD, MO, NE);                          \
        break;
#define SGD_MO(NAME, MX, WD)                                                              \
    SGD_CASE(NAME, MX, WD, 0, 0)                                                          \
    SGD_CASE(NAME, MX, WD, 1, 0) SGD_CASE(NAME, MX, WD, 1, 1)                             \
    SGD_CASE(NAME, MX, WD, 2, 0) SGD_CASE(NAME, MX, WD, 2, 1)
#define SGD_WD(NAME, MX) SGD_MO(NAME, MX, 0) SGD_MO(NAME, MX, 1)
#define SGD_ALL(NAME) SGD_WD(NAME, 0) SGD_WD(NAME, 1)

typedef void (*sgd_fn)(int key, int64_t lo, int64_t hi, void *const *o, const void *const *in,
                       const sgd_sc *c);

SGD_FN(sgd_f32_gen, float)
SGD_FN(sgd_f64_gen, double)

#if defined(__x86_64__) && defined(__GNUC__) && !defined(EM_CPU_NO_SIMD)
#pragma GCC push_options
#pragma GCC target("avx2,tune=haswell")
SGD_FN(sgd_f32_avx2, float)
SGD_FN(sgd_f64_avx2, double)
#pragma GCC pop_options
#define SGD_PICK(inst, dt)                                                                \
    ((inst)->simd >= CPU_SIMD_AVX2 ? ((dt) == EM_F32 ? sgd_f32_avx2 : sgd_f64_avx2)       \
                                   : ((dt) == EM_F32 ? sgd_f32_gen : sgd_f64_gen))
#else
#define SGD_PICK(inst, dt) ((dt) == EM_F32 ? sgd_f32_gen : sgd_f64_gen)
#endif

typedef struct sgd_job {
    sgd_fn fn;
    int key;
    int64_t n, chunk;
    void *o[2];
    const void *in[3];
    sgd_sc c;
} sgd_job;

static void sgd_task(void *arg, int64_t t, int worker)
{
    (void)worker;
    const sgd_job *j = arg;
    int64_t lo = t * j->chunk, hi = lo + j->chunk < j->n ? lo + j->chunk : j->n;
    j->fn(j->key, lo, hi, j->o, j->in, &j->c);
}

em_status cpu_k_sgd(void *dev, const em_kargs *ka)
{
    cpu_inst *inst = dev;
    if (ka->struct_size < offsetof(em_kargs, fp) + sizeof ka->fp || ka->n_ip < 3 ||
        !ka->ip || !ka->outs || !ka->ins)
        return CPU_ERR(inst, EM_ERR_INVALID, "sgd: expected ip[3] (n_ip %u)",
                       (unsigned)ka->n_ip);
    const double lr = ka->p[0], momentum = ka->p[1], dampening = ka->p[2], wd = ka->p[3];
    const int nesterov = ka->ip[0] != 0, mx = ka->ip[1] != 0, first = ka->ip[2] != 0;
    const int mo = momentum == 0 ? 0 : first ? 1 : 2;
    const uint32_t n_out = mo ? 2u : 1u, n_in = mo == 2 ? 3u : 2u;
    if (ka->n_out != n_out || ka->n_in != n_in)
        return CPU_ERR(inst, EM_ERR_INVALID, "sgd: expected %u outputs and %u inputs (momentum "
                       "%g, first step %d), got %u and %u", (unsigned)n_out, (unsigned)n_in,
                       momentum, first, (unsigned)ka->n_out, (unsigned)ka->n_in);
    const int32_t dt = ka->outs[0] ? ka->outs[0]->dtype : EM_F32;
    if (dt != EM_F32 && dt != EM_F64)
        return cpu_unsupported(inst, "sgd", dt);
    static const char *const onames[2] = {"outs[0] (p')", "outs[1] (b')"};
    static const char *const inames[3] = {"ins[0] (p)", "ins[1] (g)", "ins[2] (b)"};
    int64_t n = -1;
    em_status st = EM_OK;
    sgd_job j;
    memset(&j, 0, sizeof j);
    size_t esz = emk_dtype_size(dt);
    for (uint32_t k = 0; k < n_out && st == EM_OK; k++)
        if ((st = cpu_optim_view(inst, "sgd", ka->outs[k], onames[k], dt, &n)) == EM_OK)
            j.o[k] = (char *)ka->outs[k]->buf + ka->outs[k]->offset * (int64_t)esz;
    for (uint32_t k = 0; k < n_in && st == EM_OK; k++)
        if ((st = cpu_optim_view(inst, "sgd", ka->ins[k], inames[k], dt, &n)) == EM_OK)
            j.in[k] = (const char *)ka->ins[k]->buf + ka->ins[k]->offset * (int64_t)esz;
    if (st != EM_OK)
        return st;
    j.c = (sgd_sc){.r = lr, .m = momentum, .c = 1.0 - dampening, .wd = wd};
    j.key = SGD_KEY(mx, wd != 0, mo, mo && nesterov);
    j.fn = SGD_PICK(inst, dt);
    j.n = n;
    if (n == 0)
        return EM_OK;
    j.chunk = cpu_optim_chunk(inst, n);
    cpu_parallel(inst, (n + j.chunk - 1) / j.chunk, sgd_task, &j);
    return EM_OK;
}
