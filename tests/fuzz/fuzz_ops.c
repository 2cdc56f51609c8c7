/* tests/fuzz/fuzz_ops.c — libFuzzer target: the input is a program of random tensor ops
 * (random shapes, every dtype, views, indexing, reductions, losses, in-place forms also on
 * views, autograd) run on the cpu backend. Every op
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
    em_dtype dt = (em_dtype)(next(r) % EM_DTYPE_COUNT_);
    int64_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= shape[i];
    double *v = malloc(sizeof(double) * (size_t)(n + 1));
    for (int64_t i = 0; i < n; i++)
        v[i] = value(r);
    em_tensor *t = em_tensor_from_data(ctx, EM_F64, nd, shape, v);
    free(v);
    t = em_to_dtype(t, dt);
    if (t && em_dtype_is_floating(dt) && next(r) % 2)
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
    unsigned op = next(r) % 96;
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
    case 38: return em_to_dtype(a, (em_dtype)(next(r) % (EM_DTYPE_COUNT_ + 1)));  /* last: invalid */
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
    case 48: return em_floor_divide(a, b);
    case 49: return em_remainder(a, b);
    case 50: return em_floor_divide_scalar(a, s);
    case 51: return em_remainder_scalar(a, s);
    case 52: return em_pow_tensor(a, b);
    case 53: return em_log1p(em_expm1(a));
    case 54: return em_sign(em_sin(em_cos(a)));
    case 55: return em_round(em_floor(em_ceil(a)));
    case 56: return em_reciprocal(em_erf(a));
    case 57: return em_clamp_tensor(a, next(r) % 2 ? b : NULL, next(r) % 2 ? c : NULL);
    case 58: return em_softmax(a, d0);
    case 59: return em_log_softmax(a, d0);
    case 60: return em_gelu(a, next(r) % 2 ? EM_GELU_TANH : EM_GELU_NONE);
    case 61: return em_softplus(em_elu(em_silu(em_leaky_relu(a, s)), 1.0), 1.0, 20.0);
    case 62: return em_max(a);
    case 63: return em_min(a);
    case 64: {
        em_tensor *v = NULL, *ix = NULL;
        if (next(r) % 2)
            em_max_dim(a, d0, next(r) % 2, &v, &ix);
        else
            em_min_dim(a, d0, next(r) % 2, &v, &ix);
        return next(r) % 2 ? v : ix;
    }
    case 65: return em_argmax(a, d0, next(r) % 2);
    case 66: return em_prod_dim(a, d0, next(r) % 2);
    case 67: return em_prod(a);
    case 68: return em_var_dims(a, 1, &d0, next(r) % 2, next(r) % 2);
    case 69: return em_std(a, next(r) % 2);
    case 70: return em_logsumexp(a, 1, &d0, next(r) % 2);
    case 71: return em_any_dim(em_any(a), d0, next(r) % 2);
    case 72: {
        int perm[3] = {d0, d1, (int)(next(r) % 7) - 3};
        return em_permute(a, nd, perm);
    }
    case 73: return em_narrow(a, d0, shp[0], shp[2]);
    case 74: return em_select(a, d0, shp[0]);
    case 75: return em_slice(a, d0, shp[0] - 2, next(r) % 2 ? EM_END : shp[1], shp[2]);
    case 76: return em_index_select(a, d0, em_to_dtype(b, EM_I64));
    case 77: return em_gather(a, d0, em_to_dtype(b, EM_I64));
    case 78: return em_scatter_add(a, d0, em_to_dtype(b, EM_I64), c);
    case 79: em_scatter_add_(a, d0, em_to_dtype(b, EM_I64), c); return NULL;
    case 80:
    case 81: {
        /* results feed the pool: bound them, or chains of cats grow exponentially */
        em_tensor *ts[3] = {a, b, c};
        if (em_tensor_numel(a) + em_tensor_numel(b) + em_tensor_numel(c) > 4096)
            return NULL;
        int n = 1 + (int)(next(r) % 3);
        return op == 80 ? em_cat(ts, n, d0) : em_stack(ts, n, d0);
    }
    case 82: {
        em_tensor *out[4] = {NULL};
        int k = next(r) % 2 ? em_split(a, shp[2], d0, out, 4) : em_chunk(a, (int)shp[2], d0, out, 4);
        return k > 0 ? out[next(r) % (unsigned)(k < 4 ? k : 4)] : NULL;
    }
    case 83: {
        em_class_loss_options o = em_class_loss_defaults();
        o.ignore_index = shp[0];
        o.label_smoothing = next(r) % 2 ? 0.0 : 0.25;
        o.reduction = (em_reduction)(next(r) % 3);
        o.weight = next(r) % 2 ? c : NULL;
        return em_cross_entropy_ex(a, em_to_dtype(b, EM_I64), &o);
    }
    case 84: return em_nll_loss(a, em_to_dtype(b, EM_I64));
    case 85: return em_mse_loss(a, b, (em_reduction)(next(r) % 3));
    case 86: return em_smooth_l1_loss(a, b, (em_reduction)(next(r) % 3), fabs(s));
    case 87: return em_binary_cross_entropy_with_logits(a, b);
    case 88: {   /* an in-place op on a view, under autograd */
        em_tensor *v = em_select(a, d0, shp[0]);
        if (next(r) % 2)
            em_mul_scalar_(v, s);
        else
            em_add_(v, b);
        return v;
    }
    case 89: em_fill_(em_narrow(a, d0, shp[0], shp[2]), s); return NULL;
    case 90: em_div_(a, b); return NULL;
    case 91: em_exp_(a); return NULL;
    case 92: em_neg_(em_slice(a, d0, 0, EM_END, 2)); return NULL;
    case 93: {
        int64_t v;
        em_item_get_i64(a, &v);
        return NULL;
    }
    case 94: return em_l1_loss(a, b, (em_reduction)(next(r) % 3));
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
