/* tools/conform.h — what the files of ember-conform share: the suite state (the context
 * under test, a cpu context for RNG agreement, the options, the backend's kernel table from
 * the registry), the per-op result rows, and the helpers every case uses to build inputs
 * in a given layout, read results back and compare them with reference loops run in double
 * on the host. Only the public API (ember.h, info.h) is used, as any program would. */
#ifndef EMBER_TOOLS_CONFORM_H
#define EMBER_TOOLS_CONFORM_H

#include <ember/ember.h>
#include <ember/info.h>

#include <stdbool.h>
#include <stdint.h>

/* Tolerances (printed in the table header). Elementwise results: |got - want| divided by
 * max(1, |want|); sums and products: divided by max(1, sum of |terms|) and the tolerance
 * scaled by sqrt(k) for k terms. Bool results are exact. */
#define CF_TOL_F32 1e-5
#define CF_TOL_F64 1e-12
/* em_gradcheck: |analytic - numeric| <= atol + rtol * |numeric| */
#define CF_GC_ATOL_F64 1e-6
#define CF_GC_RTOL_F64 1e-5
#define CF_GC_ATOL_F32 2e-3
#define CF_GC_RTOL_F32 2e-3

#define CF_MAX_ROWS 320

/* One line of the table: an op (a public API function, or its gradient ".grad"). */
typedef struct cf_row {
    char op[40];
    char kernels[64];      /* the ops-table entries it lowers to, space-separated */
    int checks, failures;
    /* per float dtype (0 f32, 1 f64): the check with the largest error / tolerance */
    double err[2], tol[2];
    bool seen[2];
    bool fallback;         /* a (non-optional) kernel it needs is NULL in the backend */
    char first_failure[768];
} cf_row;

typedef struct cf_suite {
    em_context *ctx;            /* the backend under test */
    em_context *cpu;            /* a cpu context (RNG agreement); NULL if none */
    const char *cpu_why;        /* why there is none */
    bool dtype_on[2];           /* f32, f64 enabled (--dtype) */
    const char *filter;         /* --filter SUBSTR, or NULL */
    bool verbose;
    const em_plugin_info *info; /* the plugin's registry entry (kernel table), or NULL */
    bool op_fallback_cpu;       /* [device] op_fallback = cpu */
    const em_config *cfg;       /* the configuration (the backend's section: direct calls) */
    cf_row rows[CF_MAX_ROWS];
    int n_rows;
} cf_suite;

extern cf_suite cf;

/* ---- rows and cases ---- */
/* Kernel k of the plugin is declared for only some of the enabled float dtypes. */
bool cf_kernel_partial(int k);
/* The row for `op` (created on first use), or NULL when --filter excludes it. */
cf_row *cf_row_get(const char *op, const char *kernels);
/* The same for a row that calls its kernels with the dtypes in `dtypes` (EM_DTYPE_BIT
 * bits, e.g. the integer ones): a kernel not declared for all of them marks the row as
 * running (in part) on the cpu fallback. */
cf_row *cf_row_get_dt(const char *op, const char *kernels, uint32_t dtypes);
/* Every case runs between these: a scope for its tensors, temporaries freed, errors
 * cleared. */
void cf_case_begin(void);
void cf_case_end(void);
void cf_fail(cf_row *r, const char *fmt, ...) EM_PRINTF(2, 3);
void cf_pass(cf_row *r);
/* A failure if t is NULL or the context holds an error (its message is recorded). */
bool cf_got(cf_row *r, em_tensor *t, const char *label);
bool cf_status(cf_row *r, em_status st, const char *label);

/* ---- host memory for the current case (freed by cf_case_end) ---- */
void *cf_tmp(size_t bytes);
void cf_tmp_shutdown(void);   /* at exit: the temporaries' own bookkeeping */
const char *cf_fmt(const char *fmt, ...) EM_PRINTF(1, 2);
const char *cf_shape_str(int nd, const int64_t *shape);
int64_t cf_numel(int nd, const int64_t *shape);

/* ---- values ---- */
int cf_bucket(em_dtype dt);                 /* 0 f32, 1 f64, -1 exact (bool, integers) */
double cf_tol(em_dtype dt);
/* As stored in dtype dt: f32 rounding; integers wrap as two's complement (u8 modulo 256),
 * which is exact for |v| < 2^53 (the callers keep float -> integer values in range). */
double cf_round(em_dtype dt, double v);
double cf_uniform(double lo, double hi);    /* deterministic */
bool cf_dtype_enabled(em_dtype dt);         /* bool and integer dtypes: always */

/* How input values are drawn. */
typedef enum cf_values {
    CF_UNIFORM = 0,     /* uniform in [lo, hi) */
    CF_GRID,            /* multiples of 0.5 in [lo, hi]: frequent ties */
    CF_BOOLS,           /* 0 or 1 */
    CF_INTS             /* whole numbers in [lo, hi] */
} cf_values;
#define CF_NAN 0x100    /* or-ed into cf_values: some elements are NaN */
#define CF_AWAY 0x200   /* keep away from 0, +-0.5, 0.1, 0.7 (gradcheck kinks); CF_INTS: no 0 */

typedef struct cf_gen {
    double lo, hi;
    int kind;           /* cf_values | CF_NAN | CF_AWAY */
} cf_gen;

/* How an input tensor is laid out in memory. */
typedef enum cf_layout {
    CF_CONTIG = 0,
    CF_TRANSPOSED,      /* stored with the last two dims swapped, seen through em_transpose */
    CF_EXPANDED         /* stored with size 1 in dim 0, seen through em_expand (stride 0) */
} cf_layout;

/* A tensor of logical shape (nd, shape) and dtype dt in layout lay, with values from g.
 * *logical receives its values in row-major order (as stored: rounded to dt); *base, if
 * not NULL, the contiguous tensor that holds them (the view's storage). NULL on failure
 * (recorded in r). */
em_tensor *cf_make(cf_row *r, em_dtype dt, int nd, const int64_t *shape, cf_layout lay,
                   const cf_gen *g, double **logical, em_tensor **base);
/* A contiguous tensor from host values (converted to dt). */
em_tensor *cf_upload(cf_row *r, em_dtype dt, int nd, const int64_t *shape, const double *v);
/* The values of t, row-major, as doubles (NULL on failure, recorded in r). */
double *cf_read(cf_row *r, em_tensor *t, const char *label);
/* The values of an integer or bool tensor, exactly. */
int64_t *cf_read_i64(cf_row *r, em_tensor *t, const char *label);
/* The logical values of a view made by cf_make, read from its contiguous base. */
double *cf_read_base(cf_row *r, em_tensor *base, cf_layout lay, int nd, const int64_t *shape,
                     const char *label);
bool cf_check_shape(cf_row *r, em_tensor *t, int nd, const int64_t *shape, em_dtype dt,
                    const char *label);

/* Compare n results. norm NULL: error = |got - want| / max(1, |want|); otherwise divided
 * by max(1, norm[i]). NaN must meet NaN, infinities must be equal. bucket: 0 f32, 1 f64,
 * -1 for exact (bool) results. Returns true when every element is within tol. */
bool cf_compare(cf_row *r, const char *label, int bucket, const double *got, const double *want,
                const double *norm, int64_t n, double tol);
/* Record an error and its tolerance in the row's column for bucket (the worst ratio wins). */
void cf_note(cf_row *r, int bucket, double err, double tol);

/* Row-major index into an input of shape (nd, shape) broadcast to (ond, oshape). */
int64_t cf_bcast_index(int64_t lin, int ond, const int64_t *oshape, int nd, const int64_t *shape);
/* Broadcast two shapes (NumPy rules); false if they do not broadcast. */
bool cf_broadcast(int na, const int64_t *a, int nb, const int64_t *b, int *nout, int64_t *out);

/* ---- the suites ---- */
void cf_run_memory(void);
void cf_run_creation(void);
void cf_run_rng(void);
void cf_run_copy(void);
void cf_run_elementwise(void);
void cf_run_inplace(void);
void cf_run_reduce(void);
void cf_run_gemm(void);
void cf_run_grad(void);
void cf_run_abi(void);
void cf_run_int(void);        /* conform_int.c: integer dtypes */
void cf_run_math(void);       /* conform_vocab.c: unary math, pow, floor_divide, remainder */
void cf_run_dim(void);        /* conform_vocab.c: prod, max/min (dim), argmax, softmax */
void cf_run_index(void);      /* conform_index.c: index_select, gather, scatter_add, cat, stack */
void cf_run_optim(void);      /* conform_optim.c: Adam / AdamW steps (the adam kernel of 1.3) */
void cf_run_norm(void);       /* conform_norm.c: pooling (the kernels of 1.4), batch and layer norm */
void cf_run_direct(void);     /* conform_direct.c: copy offsets and gemm through the ops table */
void cf_run_conv(void);       /* conform_conv.c: conv2d, conv1d, max_pool2d (ABI 1.4) */

/* ---- elementwise cases shared by the vocabulary files (conform_vocab.c) ---- */
typedef em_tensor *(*cf_ew_call)(em_tensor *const *in, const double *p);
/* the reference of one element, computed for the result's dtype dt */
typedef double (*cf_ew_ref)(const double *x, const double *p, em_dtype dt);
typedef struct cf_ew_op {
    const char *name;    /* for labels */
    int arity;           /* 1 to 3 tensor inputs */
    cf_gen gen[3];
    double p[2];         /* scalar parameters */
    cf_ew_call call;
    cf_ew_ref ref;
    int out;             /* -1: the inputs' dtype; else the result's dtype (EM_BOOL, ...) */
    unsigned bool_in;    /* bit i: input i is bool whatever the dtype under test */
    bool small;          /* skip the layouts past the threading thresholds */
} cf_ew_op;
/* Runs op with data dtype dt over the shared layouts (broadcast, transposed, expanded,
 * 0-size, 0-dim, large); float results within tol x max(1, |want|), others exact. */
void cf_ew_all(cf_row *r, const cf_ew_op *op, em_dtype dt, double tol);

#endif
