/* backends/cpu/cpu_ew.h — the elementwise machinery the cpu backend's kernel files share:
 * the N-d strided walker (cpu_ew.c) that hands rows of the innermost dim to typed row
 * functions, view validation, error helpers, the parallel cost hints, the integer row
 * tables of cpu_int.c that the float kernels of cpu_kernels.c dispatch to, and generators
 * of plain (single-ISA) row functions for the files of later kernels. Private to the
 * plugin. */
#ifndef EMBER_BACKEND_CPU_EW_H
#define EMBER_BACKEND_CPU_EW_H

#include "cpu.h"

#include <stdint.h>

/* Work below these sizes runs inline: waking the pool costs more than it saves. While the
 * cores are oversubscribed (cpu_contended), memory-bound work below PAR_CONTENDED runs
 * inline too: a fork of a few microseconds of work would wait for a preempted worker. */
#ifndef PAR_CHEAP
#define PAR_CHEAP 32768           /* elements, simple arithmetic */
#endif
#define PAR_CONTENDED 1048576
#define PAR_COSTLY 16384          /* elements, libm calls, rng */
#define PAR_CHUNK_MIN 8192

/* A row function: n elements; p[k] points at the row's first element of operand k
 * (0 = out, 1.. = inputs), s[k] is its element stride; lin is the row-major logical index
 * of the row's first element within out (used by the rng). */
typedef void (*row_fn)(int64_t n, char *const *p, const int64_t *s, const em_kargs *ka,
                       int64_t lin);

typedef struct ew_plan {
    int nops, ndim;
    int64_t numel;
    int64_t shape[EM_MAX_DIMS];
    int64_t st[4][EM_MAX_DIMS];
    char *base[4];
    int64_t esz[4];
    row_fn fn;
    const em_kargs *ka;
    int64_t chunk;
} ew_plan;

/* Walk elements [start, start + count) of the plan's row-major index space. */
CPU_HIDDEN void cpu_ew_walk(const ew_plan *pl, int64_t start, int64_t count);
/* Walk everything, on the pool when numel >= par_min (a PAR_* hint). */
CPU_HIDDEN void cpu_ew_run(cpu_inst *inst, ew_plan *pl, int64_t par_min);
/* The fused optimizer kernels (cpu_adam.c, cpu_sgd.c): v holds contiguous row-major elements
 * of dt, as many as *n (*n < 0: any number, stored in *n); else an error naming kname and
 * what. And the chunk a pass over n elements is cut into for the pool (n itself where it runs
 * on the calling thread): a few chunks per thread, multiples of 1024. */
CPU_HIDDEN em_status cpu_optim_view(cpu_inst *inst, const char *kname, const em_kview *v,
                                    const char *what, int32_t dt, int64_t *n);
CPU_HIDDEN int64_t cpu_optim_chunk(cpu_inst *inst, int64_t n);
/* Whether dt is a dtype the cpu backend knows. */
CPU_HIDDEN int cpu_valid_dtype(int32_t dt);
CPU_HIDDEN em_status cpu_check_view(cpu_inst *inst, const char *kname, const char *what,
                                    const em_kview *v);
/* Validate out and nin inputs (same ndim and shape) and build the walker plan. */
CPU_HIDDEN em_status cpu_ew_setup(cpu_inst *inst, const char *kname, const em_kargs *ka,
                                  int nin, row_fn fn, ew_plan *pl);
CPU_HIDDEN em_status cpu_unsupported(cpu_inst *inst, const char *kname, int32_t dt);
CPU_HIDDEN em_status cpu_mismatch(cpu_inst *inst, const char *kname, const char *what,
                                  int32_t got, int32_t want);
/* Run a kernel whose row functions are indexed by one dtype (table[EM_DTYPE_COUNT_]).
 * `key` selects the table entry; `same` lists the operands (SAME_*) that must share that
 * dtype. */
CPU_HIDDEN em_status cpu_ew_launch(void *dev, const em_kargs *ka, const char *kname, int nin,
                                   const row_fn *table, int32_t key, unsigned same,
                                   int64_t par_min);

#define SAME_OUT 1u
#define SAME_IN0 2u
#define SAME_IN1 4u
#define SAME_IN2 8u

/* ------------------------------------------------------------------ integer helpers */

/* Whether a view is stored row-major without gaps (dims of size 1 may have any stride). */
static inline int cpu_view_contiguous(const em_kview *v)
{
    int64_t s = 1;
    for (int d = v->ndim - 1; d >= 0; d--) {
        if (v->shape[d] != 1 && v->strides[d] != s)
            return 0;
        s *= v->shape[d];
    }
    return 1;
}

/* Whether a view is 4-D with exactly these dims. */
static inline int cpu_view_is4(const em_kview *v, int64_t a, int64_t b, int64_t c, int64_t d)
{
    return v->ndim == 4 && v->shape[0] == a && v->shape[1] == b && v->shape[2] == c &&
           v->shape[3] == d;
}

static inline int cpu_is_int(int32_t dt)
{
    return dt == EM_I64 || dt == EM_I32 || dt == EM_U8;
}

/* Float to integer: truncation toward zero, saturated to the type's range, NaN to 0 (never
 * undefined behaviour). */
static inline int64_t cpu_f2i64(double x)
{
    if (x != x)
        return 0;
    if (x >= 9223372036854775808.0)
        return INT64_MAX;
    if (x <= -9223372036854775808.0)
        return INT64_MIN;
    return (int64_t)x;
}

static inline int32_t cpu_f2i32(double x)
{
    if (x != x)
        return 0;
    if (x >= 2147483648.0)
        return INT32_MAX;
    if (x <= -2147483649.0)
        return INT32_MIN;
    return (int32_t)x;
}

static inline uint8_t cpu_f2u8(double x)
{
    if (x != x || x <= -1.0)
        return 0;
    if (x >= 256.0)
        return 255;
    return (uint8_t)(int)x;
}

/* The integer scalar k of a kernel: ip[k] (exact) when the core passed it, else p[k]
 * converted (an absent clamp bound, +-inf, saturates to INT64_MIN / INT64_MAX). */
static inline int64_t cpu_scalar_i(const em_kargs *ka, unsigned k)
{
    if (ka->struct_size >= offsetof(em_kargs, fp) + sizeof ka->fp && ka->ip && ka->n_ip > k)
        return ka->ip[k];
    return k < 4 ? cpu_f2i64(ka->p[k]) : 0;
}

/* ------------------------------------------------------------------ row generators */

/* Plain row functions (one ISA) for the files of the integer and later kernels. PRE is a
 * list of declarations run once per row (it may use ka); EXPR reads x (unary) or a, b
 * (binary). Unit strides, broadcast (stride 0) and general strides get their own loops;
 * `out` is never a partial overlap of an input, at most the same memory (in-place), read
 * before written, so the contiguous loops carry no dependence (ivdep). */
#define CPU_ROW_UNARY(NAME, TO, TI, PRE, EXPR)                                            \
    static void NAME(int64_t n, char *const *pp, const int64_t *s, const em_kargs *ka,     \
                     int64_t lin)                                                          \
    {                                                                                      \
        TO *o = (TO *)pp[0];                                                               \
        const TI *a_ = (const TI *)pp[1];                                                  \
        const int64_t so = s[0], sa = s[1];                                                \
        (void)ka;                                                                          \
        (void)lin;                                                                         \
        PRE                                                                                \
        if (so == 1 && sa == 1) {                                                          \
            _Pragma("GCC ivdep") for (int64_t i = 0; i < n; i++)                           \
            {                                                                              \
                const TI x = a_[i];                                                        \
                o[i] = (EXPR);                                                             \
            }                                                                              \
        } else if (sa == 0) {                                                              \
            const TI x = a_[0];                                                            \
            const TO r_ = (EXPR);                                                          \
            for (int64_t i = 0; i < n; i++)                                                \
                o[i * so] = r_;                                                            \
        } else {                                                                           \
            for (int64_t i = 0; i < n; i++) {                                              \
                const TI x = a_[i * sa];                                                   \
                o[i * so] = (EXPR);                                                        \
            }                                                                              \
        }                                                                                  \
    }

#define CPU_ROW_BINARY(NAME, TO, TI, PRE, EXPR)                                           \
    static void NAME(int64_t n, char *const *pp, const int64_t *s, const em_kargs *ka,     \
                     int64_t lin)                                                          \
    {                                                                                      \
        TO *o = (TO *)pp[0];                                                               \
        const TI *A_ = (const TI *)pp[1], *B_ = (const TI *)pp[2];                         \
        const int64_t so = s[0], sa = s[1], sb = s[2];                                     \
        (void)ka;                                                                          \
        (void)lin;                                                                         \
        PRE                                                                                \
        if (so == 1 && sa == 1 && sb == 1) {                                               \
            _Pragma("GCC ivdep") for (int64_t i = 0; i < n; i++)                           \
            {                                                                              \
                const TI a = A_[i], b = B_[i];                                             \
                o[i] = (EXPR);                                                             \
            }                                                                              \
        } else if (so == 1 && sa == 1 && sb == 0) {                                        \
            const TI b = B_[0];                                                            \
            _Pragma("GCC ivdep") for (int64_t i = 0; i < n; i++)                           \
            {                                                                              \
                const TI a = A_[i];                                                        \
                o[i] = (EXPR);                                                             \
            }                                                                              \
        } else if (so == 1 && sa == 0 && sb == 1) {                                        \
            const TI a = A_[0];                                                            \
            _Pragma("GCC ivdep") for (int64_t i = 0; i < n; i++)                           \
            {                                                                              \
                const TI b = B_[i];                                                        \
                o[i] = (EXPR);                                                             \
            }                                                                              \
        } else {                                                                           \
            for (int64_t i = 0; i < n; i++) {                                              \
                const TI a = A_[i * sa], b = B_[i * sb];                                   \
                o[i * so] = (EXPR);                                                        \
            }                                                                              \
        }                                                                                  \
    }

/* A row table with the three integer dtypes (NAME##_i64, _i32, _u8). */
#define CPU_INT_TABLE(TABLE, NAME)                                                        \
    const row_fn TABLE[EM_DTYPE_COUNT_] = {                                                \
        [EM_I64] = NAME##_i64, [EM_I32] = NAME##_i32, [EM_U8] = NAME##_u8}

/* ------------------------------------------------------------------ integer row tables */

/* cpu_int.c: the integer (and, for the dtype-generic kernels, every non-float-or-bool)
 * rows of the kernels of ABI 1.0, indexed like the float tables. */
#define CPU_INT_ROWS(op) CPU_HIDDEN extern const row_fn cpu_int_##op##_rows[EM_DTYPE_COUNT_]
CPU_INT_ROWS(fill); CPU_INT_ROWS(neg); CPU_INT_ROWS(abs);
CPU_INT_ROWS(add_scalar); CPU_INT_ROWS(mul_scalar); CPU_INT_ROWS(rsub_scalar);
CPU_INT_ROWS(clamp);
CPU_INT_ROWS(add); CPU_INT_ROWS(sub); CPU_INT_ROWS(mul);
CPU_INT_ROWS(maximum); CPU_INT_ROWS(minimum);
CPU_INT_ROWS(lt); CPU_INT_ROWS(le); CPU_INT_ROWS(gt); CPU_INT_ROWS(ge); CPU_INT_ROWS(eq);
CPU_INT_ROWS(ne);
CPU_INT_ROWS(where); CPU_INT_ROWS(masked_fill);
#undef CPU_INT_ROWS
/* copy rows [out dtype][in dtype] for every pair with an integer side */
CPU_HIDDEN extern const row_fn cpu_int_copy_rows[EM_DTYPE_COUNT_][EM_DTYPE_COUNT_];

/* The table for dt: ints when it has dt, else the float one. */
static inline const row_fn *cpu_pick_rows(const row_fn *flt, const row_fn *ints, int32_t dt)
{
    return ints && dt >= 0 && dt < EM_DTYPE_COUNT_ && ints[dt] ? ints : flt;
}

/* sum with an i64 output (cpu_reduce.c), called by cpu_k_sum */
CPU_HIDDEN em_status cpu_sum_i64(cpu_inst *inst, const em_kargs *ka);

#endif
