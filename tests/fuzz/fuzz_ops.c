/* tests/fuzz/fuzz_ops.c — libFuzzer target: the input is a program of random tensor ops
 * (random shapes, dtypes, views, in-place forms, autograd) run on the cpu backend. Every op
 * either returns a tensor or NULL with an error recorded in the context (a shape, dtype or
 * argument mismatch must come back as an error, never a crash); NaN/Inf flow through; and
 * after each input the device memory is back to where it was (nothing leaks). */
#include "config.h"
#include "../../core/internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static em_context *ctx;
static size_t baseline;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    em_config *cfg = em_config_create();
    em_config_set(cfg, "device", "backend", "cpu");
    em_config_set(cfg, "backends", "path", FUZZ_BACKEND_DIR);
    em_config_set(cfg, "cpu", "threads", "1");
    if (em_context_create_with(&ctx, cfg) != EM_OK) {
        fprintf(stderr, "fuzz_ops: %s\n", em_last_error());
        abort();
    }
    em_config_free(cfg);
    baseline = em_context_memory_in_use(ctx);
    return 0;
}

typedef struct reader {
    const uint8_t *p;
    size_t n;
} reader;

static unsigned next(reader *r)
{
    if (!r->n)
        return 0;
    r->n--;
    return *r->p++;
}

static double value(reader *r)
{
    unsigned b = next(r);
    switch (b % 16) {
    case 0: return NAN;
    case 1: return INFINITY;
    case 2: return -INFINITY;
    case 3: return 0.0;
    case 4: return -0.0;
    default: return ((double)b - 128.0) / 16.0;
    }
}

#define POOL 8

static em_tensor *make(reader *r)
{
    int nd = (int)(next(r) % 4);
    int64_t shape[4];
    for (int i = 0; i < nd; i++)
        shape[i] = next(r) % 5;
    em_dtype dt = (em_dtype)(next(r) % 3);
    int64_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= shape[i];
    double *v = malloc(sizeof(double) * (size_t)(n + 1));
    for (int64_t i = 0; i < n; i++)
        v[i] = value(r);
    em_tensor *t = em_tensor_from_data(ctx, EM_F64, nd, shape, v);
    free(v);
    t = em_to_dtype(t, dt);
    if (t && dt != EM_BOOL && next(r) % 2)
        em_tensor_set_requires_grad(t, true);
    return t;
}

/* Apply one op; returns its result (possibly NULL). */
static em_tensor *step(reader *r, em_tensor **pool, int np)
{
    em_tensor *a = pool[next(r) % np], *b = pool[next(r) % np], *c = pool[next(r) % np];
    int d0 = (int)(next(r) % 7) - 3, d1 = (int)(next(r) % 7) - 3;
    double s = value(r);
    int64_t shp[3] = {(int64_t)(next(r) % 6) - 1, (int64_t)(next(r) % 6) - 1, (int64_t)(next(r) % 5)};
    int nd = (int)(next(r) % 4);
    unsigned op = next(r) % 48;
    switch (op) {
    case 0: return make(r);
    case 1: return em_add(a, b);
    case 2: return em_sub(a, b);
    case 3: return em_mul(a, b);
    case 4: return em_div(a, b);
    case 5: return em_maximum(a, b);
    case 6: return em_minimum(a, b);
    case 7: return em_add_scalar(a, s);
    case 8: return em_rsub_scalar(a, s);
    case 9: return em_div_scalar(a, s);
    case 10: return em_rdiv_scalar(a, s);
    case 11: return em_pow(a, s);
    case 12: return em_exp(a);
    case 13: return em_log(a);
    case 14: return em_sqrt(em_abs(a));
    case 15: return em_relu(em_neg(a));
    case 16: return em_tanh(em_sigmoid(a));
    case 17: return em_clamp(a, s, value(r));
    case 18: return em_clamp_min(a, s);
    case 19: return em_lt(a, b);
    case 20: return em_eq_scalar(a, s);
    case 21: return em_where(a, b, c);
    case 22: return em_masked_fill(a, b, s);
    case 23: return em_mm(a, b);
    case 24: return em_bmm(a, b);
    case 25: return em_matmul(a, b);
    case 26: return em_sum(a);
    case 27: return em_mean(a);
    case 28: return em_sum_dims(a, 1, &d0, next(r) % 2);
    case 29: {
        int dims[2] = {d0, d1};
        return em_mean_dims(a, 2, dims, next(r) % 2);
    }
    case 30: return em_transpose(a, d0, d1);
    case 31: return em_t(a);
    case 32: return em_view(a, nd, shp);
    case 33: return em_reshape(a, nd, shp);
    case 34: return em_expand(a, nd, shp);
    case 35: return em_unsqueeze(a, d0);
    case 36: return em_squeeze(a, d0);
    case 37: return em_contiguous(a);
    case 38: return em_to_dtype(a, (em_dtype)(next(r) % 4));   /* 3 is invalid */
    case 39: em_add_(a, b); return NULL;
    case 40: em_mul_scalar_(a, s); return NULL;
    case 41: em_copy_(a, b); return NULL;
    case 42: em_masked_fill_(a, b, s); return NULL;
    case 43: em_zero_(a); return NULL;
    case 44: em_backward(a); return NULL;
    case 45: em_backward_ex(a, b, next(r) % 2); return NULL;
    case 46: {
        char *str = em_tensor_str(a);
        free(str);
        return NULL;
    }
    default: {
        double v;
        em_item_get(a, &v);
        em_no_grad_begin(ctx);
        em_sub_(a, em_mul_scalar(em_grad(a), 0.1));
        em_no_grad_end(ctx);
        return NULL;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reader r = {data, size};
    em_scope_begin(ctx);
    em_tensor *pool[POOL];
    int np = 0;
    while (np < 2) {
        em_tensor *t = make(&r);
        if (!t)
            abort();   /* creation from valid arguments cannot fail */
        pool[np++] = t;
    }
    for (int i = 0; i < 64 && r.n > 0; i++) {
        em_context_clear_error(ctx);
        em_tensor *t = step(&r, pool, np);
        if (t) {
            if (em_tensor_ndim(t) < 0 || em_tensor_ndim(t) > EM_MAX_DIMS)
                abort();
            if (np < POOL)
                pool[np++] = t;
            else
                pool[next(&r) % POOL] = t;
        }
    }
    em_context_clear_error(ctx);
    em_scope_end(ctx);
    /* every tensor of this input is gone: the device memory is back at its baseline */
    if (em_context_memory_in_use(ctx) != baseline) {
        fprintf(stderr, "fuzz_ops: %zu bytes still in use after the input (baseline %zu); live:\n",
                em_context_memory_in_use(ctx), baseline);
        for (em__tensor *t = ctx->tensor_live; t; t = t->live_next) {
            char sh[128];
            em__shape_str(t->ndim, t->shape, sh, sizeof sh);
            fprintf(stderr, "  %p %s %s refs %d grad_fn %s requires_grad %d grad %p view %d\n",
                    (void *)t, em_dtype_name(t->dtype), sh, t->refcount,
                    t->grad_fn ? t->grad_fn->op->grad_fn : "-", t->requires_grad, (void *)t->grad,
                    t->is_view);
        }
        for (em_node *nd = ctx->nodes; nd; nd = nd->live_next)
            fprintf(stderr, "  node %s refs %d released %d\n", nd->op->grad_fn, nd->refcount, nd->released);
        abort();
    }
    return 0;
}
