/* layers/validate/validate.h — the validate layer's instance and the pieces shared by
 * validate.c (the wrappers: mirror the operands on the cpu reference, run both, compare) and
 * validate_check.c (the preconditions of each call and the comparison with tolerances). */
#ifndef EMBER_LAYER_VALIDATE_H
#define EMBER_LAYER_VALIDATE_H

#include "../layer_common.h"

#include <stdbool.h>
#include <stdint.h>

enum { MODE_OFF, MODE_WARN, MODE_ERROR };

typedef struct vbuf {          /* a device buffer the layer saw allocated */
    void *buf;
    size_t bytes;
} vbuf;

#define VAL_MAX_DEPTH 32

typedef struct val {
    const em_host *host;
    em_host_ctx *hc;
    const em_layer_next *next;
    void *dev;
    const em_backend_ops *ref;  /* the cpu reference (NULL: comparisons off) */
    void *rdev;
    char ref_problem[256];
    /* configuration */
    int nan_mode, div_mode;
    double ulps;
    /* buffers: open addressing on the handle */
    vbuf *bufs;
    size_t cap, n_bufs;
    /* the ops in progress (core events), innermost last */
    char op[VAL_MAX_DEPTH][48];
    int depth;
    /* counters, for the summary */
    uint64_t calls, compared, diverged, nans, precondition_failures;
    bool first_reported;
    char first[1024];           /* the first divergence or NaN, as reported */
    unsigned char warned[128];  /* per kernel slot: a warning was logged */
} val;

/* A view's element range inside its buffer, in bytes: [lo, hi). false when negative. */
bool v_view_range(const em_kview *v, size_t *lo, size_t *hi);
/* The bytes of buffer buf as the layer saw it allocated (0: unknown). */
size_t v_buf_bytes(const val *p, const void *buf);
/* Whether the call honours the documented preconditions of kernel `name`; false with
 * msg naming the broken one. elementwise: out and inputs share ndim and shape. */
bool v_check_kargs(const val *p, const char *name, bool elementwise, const em_kargs *a,
                   char *msg, size_t n);
bool v_check_gemm(const val *p, const em_gemm_args *g, char *msg, size_t n);

/* Element i (offset in elements from base) of dtype dt as a double. */
double v_get(const void *base, int32_t dt, int64_t i);
/* Whether got is within the tolerance of want for dtype dt: ulps units in the last place,
 * or an absolute tol. */
bool v_close(double got, double want, int32_t dt, double ulps, double tol);
/* The "[i, j, k]" index of the element at walk position idx. */
void v_index_text(int ndim, const int64_t *idx, char *buf, size_t n);
void v_shape_text(int ndim, const int64_t *shape, char *buf, size_t n);

#endif
