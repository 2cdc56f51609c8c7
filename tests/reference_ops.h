/* tests/reference_ops.h — the op table of tests/test_reference.c: every op name that
 * tests/data/gen_chains.py writes, mapped to the ember call that does the same as the
 * PyTorch expression in tests/data/chains_vocab.py. An op reads its arguments from the
 * tokens of its O line (registers %N, numbers, [lists], dtype and reduction names) and
 * returns the tensor it defines, or NULL when ember refused (the context holds the error).
 * In-place ops return the tensor they modified. Included once, by test_reference.c. */
#ifndef EMBER_TESTS_REFERENCE_OPS_H
#define EMBER_TESTS_REFERENCE_OPS_H

#include <ember/ember.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define RF_MAX_REGS 128
#define RF_MAX_LIST 16

/* The interpreter's state while one program runs. */
typedef struct rf_run {
    em_tensor *regs[RF_MAX_REGS];
    int n_regs;
    char bad[256];      /* a malformed line (a bug of the data file or of this table) */
} rf_run;

static void rf_bad(rf_run *r, const char *what, const char *tok)
{
    if (!r->bad[0])
        snprintf(r->bad, sizeof r->bad, "%s: '%s'", what, tok ? tok : "(missing)");
}

static const char *rf_tok(rf_run *r, char **a, int n, int i)
{
    if (i >= n) {
        rf_bad(r, "missing argument", NULL);
        return "0";
    }
    return a[i];
}

static em_tensor *rf_reg(rf_run *r, const char *s)
{
    char *end;
    long k = s[0] == '%' ? strtol(s + 1, &end, 10) : -1;
    if (k < 0 || k >= r->n_regs || (*end && *end != ',' && *end != ']')) {
        rf_bad(r, "not a register", s);
        return NULL;
    }
    return r->regs[k];
}

static em_tensor *rf_t(rf_run *r, char **a, int n, int i)
{
    return rf_reg(r, rf_tok(r, a, n, i));
}

/* '-': no tensor (an open bound, no weight). */
static em_tensor *rf_opt(rf_run *r, char **a, int n, int i)
{
    const char *s = rf_tok(r, a, n, i);
    return strcmp(s, "-") ? rf_reg(r, s) : NULL;
}

static int64_t rf_i(rf_run *r, char **a, int n, int i)
{
    const char *s = rf_tok(r, a, n, i);
    if (!strcmp(s, "end"))
        return EM_END;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end)
        rf_bad(r, "not an integer", s);
    return v;
}

static double rf_f(rf_run *r, char **a, int n, int i)
{
    const char *s = rf_tok(r, a, n, i);
    char *end;
    double v = strtod(s, &end);
    if (*end)
        rf_bad(r, "not a number", s);
    return v;
}

/* "[a,b,...]" of integers; returns the count. */
static int rf_ints(rf_run *r, char **a, int n, int i, int64_t *out)
{
    const char *s = rf_tok(r, a, n, i);
    if (s[0] != '[') {
        rf_bad(r, "not a list", s);
        return 0;
    }
    int k = 0;
    for (const char *p = s + 1; *p && *p != ']' && k < RF_MAX_LIST;) {
        char *end;
        out[k++] = strtoll(p, &end, 10);
        if (end == p) {
            rf_bad(r, "bad list", s);
            return 0;
        }
        p = *end == ',' ? end + 1 : end;
    }
    return k;
}

static int rf_dims(rf_run *r, char **a, int n, int i, int *out)
{
    int64_t v[RF_MAX_LIST];
    int k = rf_ints(r, a, n, i, v);
    for (int j = 0; j < k; j++)
        out[j] = (int)v[j];
    return k;
}

/* "[%1,%2,...]" */
static int rf_list(rf_run *r, char **a, int n, int i, em_tensor **out)
{
    const char *s = rf_tok(r, a, n, i);
    if (s[0] != '[') {
        rf_bad(r, "not a list", s);
        return 0;
    }
    int k = 0;
    for (const char *p = s + 1; *p == '%' && k < RF_MAX_LIST;) {
        out[k++] = rf_reg(r, p);
        p = strpbrk(p, ",]");
        if (!p || *p == ']')
            break;
        p++;
    }
    return k;
}

static em_dtype rf_dtype_of(const char *s)
{
    for (int d = 0; d < EM_DTYPE_COUNT_; d++)
        if (!strcmp(s, em_dtype_name((em_dtype)d)))
            return (em_dtype)d;
    return EM_DTYPE_COUNT_;
}

static em_dtype rf_dt(rf_run *r, char **a, int n, int i)
{
    const char *s = rf_tok(r, a, n, i);
    em_dtype dt = rf_dtype_of(s);
    if (dt == EM_DTYPE_COUNT_) {
        rf_bad(r, "not a dtype", s);
        return EM_F32;
    }
    return dt;
}

static em_reduction rf_red(rf_run *r, char **a, int n, int i)
{
    const char *s = rf_tok(r, a, n, i);
    if (!strcmp(s, "mean"))
        return EM_REDUCTION_MEAN;
    if (!strcmp(s, "sum"))
        return EM_REDUCTION_SUM;
    if (strcmp(s, "none"))
        rf_bad(r, "not a reduction", s);
    return EM_REDUCTION_NONE;
}

/* ---- ops that need more than one expression ---- */

#define RF_ARGS rf_run *r, char **a, int n
#define T(i) rf_t(r, a, n, i)
#define OPT(i) rf_opt(r, a, n, i)
#define I(i) rf_i(r, a, n, i)
#define B(i) (rf_i(r, a, n, i) != 0)
#define D(i) ((int)rf_i(r, a, n, i))
#define FL(i) rf_f(r, a, n, i)
#define DT(i) rf_dt(r, a, n, i)
#define RED(i) rf_red(r, a, n, i)
/* an in-place op defines the tensor it modified */
#define IP(call) ((call) == EM_OK ? T(0) : NULL)

static em_tensor *rf_shape_op(RF_ARGS, int which)
{
    int64_t s[RF_MAX_LIST];
    int k = rf_ints(r, a, n, 1, s);
    if (which == 0)
        return em_view(T(0), k, s);
    return which == 1 ? em_reshape(T(0), k, s) : em_expand(T(0), k, s);
}

static em_tensor *rf_permute(RF_ARGS)
{
    int d[RF_MAX_LIST];
    int k = rf_dims(r, a, n, 1, d);
    return em_permute(T(0), k, d);
}

static em_tensor *rf_pieces(RF_ARGS, bool chunk)
{
    em_tensor *out[64];
    int k = chunk ? em_chunk(T(0), D(1), D(2), out, 64) : em_split(T(0), I(1), D(2), out, 64);
    int64_t piece = I(3);
    return k > piece ? out[piece] : NULL;
}

static em_tensor *rf_join(RF_ARGS, bool stack)
{
    em_tensor *ts[RF_MAX_LIST];
    int k = rf_list(r, a, n, 0, ts);
    return stack ? em_stack(ts, k, D(1)) : em_cat(ts, k, D(1));
}

/* which: 0 sum, 1 mean, 2 var, 3 std, 4 logsumexp */
static em_tensor *rf_dims_op(RF_ARGS, int which)
{
    int d[RF_MAX_LIST];
    int k = rf_dims(r, a, n, 1, d);
    switch (which) {
    case 0: return em_sum_dims(T(0), k, d, B(2));
    case 1: return em_mean_dims(T(0), k, d, B(2));
    case 2: return em_var_dims(T(0), k, d, B(2), B(3));
    case 3: return em_std_dims(T(0), k, d, B(2), B(3));
    default: return em_logsumexp(T(0), k, d, B(2));
    }
}

/* which: 0 max values, 1 max indices, 2 min values, 3 min indices */
static em_tensor *rf_max_dim(RF_ARGS, int which)
{
    em_tensor *v = NULL, *ix = NULL;
    em_status st = which < 2 ? em_max_dim(T(0), D(1), B(2), which == 0 ? &v : NULL, which == 1 ? &ix : NULL)
                             : em_min_dim(T(0), D(1), B(2), which == 2 ? &v : NULL, which == 3 ? &ix : NULL);
    if (st != EM_OK)
        return NULL;
    return which % 2 ? ix : v;
}

static em_tensor *rf_class_loss(RF_ARGS, bool ce)
{
    em_class_loss_options o = em_class_loss_defaults();
    o.weight = OPT(2);
    o.ignore_index = I(3);
    o.reduction = RED(4);
    if (ce) {
        o.label_smoothing = FL(5);
        return em_cross_entropy_ex(T(0), T(1), &o);
    }
    return em_nll_loss_ex(T(0), T(1), &o);
}

static em_tensor *rf_bce(RF_ARGS)
{
    em_bce_options o = em_bce_defaults();
    o.weight = OPT(2);
    o.pos_weight = OPT(3);
    o.reduction = RED(4);
    return em_binary_cross_entropy_with_logits_ex(T(0), T(1), &o);
}

/* ---- the table: name, then the expression (X-macro: one list, functions and rows) ---- */
#define RF_OPS(X)                                                                            \
    X(neg, em_neg(T(0))) X(exp, em_exp(T(0))) X(log, em_log(T(0))) X(sqrt, em_sqrt(T(0)))    \
    X(abs, em_abs(T(0))) X(relu, em_relu(T(0))) X(tanh, em_tanh(T(0)))                       \
    X(sigmoid, em_sigmoid(T(0))) X(log1p, em_log1p(T(0))) X(expm1, em_expm1(T(0)))           \
    X(sin, em_sin(T(0))) X(cos, em_cos(T(0))) X(erf, em_erf(T(0)))                           \
    X(reciprocal, em_reciprocal(T(0))) X(sign, em_sign(T(0))) X(floor, em_floor(T(0)))       \
    X(ceil, em_ceil(T(0))) X(round, em_round(T(0))) X(silu, em_silu(T(0)))                   \
    X(leaky_relu, em_leaky_relu(T(0), FL(1)))                                                \
    X(gelu, em_gelu(T(0), B(1) ? EM_GELU_TANH : EM_GELU_NONE))                               \
    X(elu, em_elu(T(0), FL(1))) X(softplus, em_softplus(T(0), FL(1), FL(2)))                 \
    X(pow, em_pow(T(0), FL(1))) X(clamp, em_clamp(T(0), FL(1), FL(2)))                       \
    X(clamp_min, em_clamp_min(T(0), FL(1))) X(clamp_max, em_clamp_max(T(0), FL(1)))          \
    X(add_scalar, em_add_scalar(T(0), FL(1))) X(sub_scalar, em_sub_scalar(T(0), FL(1)))      \
    X(rsub_scalar, em_rsub_scalar(T(0), FL(1))) X(mul_scalar, em_mul_scalar(T(0), FL(1)))    \
    X(div_scalar, em_div_scalar(T(0), FL(1))) X(rdiv_scalar, em_rdiv_scalar(T(0), FL(1)))    \
    X(floor_divide_scalar, em_floor_divide_scalar(T(0), FL(1)))                              \
    X(remainder_scalar, em_remainder_scalar(T(0), FL(1)))                                    \
    X(lt_scalar, em_lt_scalar(T(0), FL(1))) X(le_scalar, em_le_scalar(T(0), FL(1)))          \
    X(gt_scalar, em_gt_scalar(T(0), FL(1))) X(ge_scalar, em_ge_scalar(T(0), FL(1)))          \
    X(eq_scalar, em_eq_scalar(T(0), FL(1))) X(ne_scalar, em_ne_scalar(T(0), FL(1)))          \
    X(add, em_add(T(0), T(1))) X(sub, em_sub(T(0), T(1))) X(mul, em_mul(T(0), T(1)))         \
    X(div, em_div(T(0), T(1))) X(maximum, em_maximum(T(0), T(1)))                            \
    X(minimum, em_minimum(T(0), T(1))) X(pow_tensor, em_pow_tensor(T(0), T(1)))              \
    X(floor_divide, em_floor_divide(T(0), T(1))) X(remainder, em_remainder(T(0), T(1)))      \
    X(lt, em_lt(T(0), T(1))) X(le, em_le(T(0), T(1))) X(gt, em_gt(T(0), T(1)))               \
    X(ge, em_ge(T(0), T(1))) X(eq, em_eq(T(0), T(1))) X(ne, em_ne(T(0), T(1)))               \
    X(where, em_where(T(0), T(1), T(2))) X(masked_fill, em_masked_fill(T(0), T(1), FL(2)))   \
    X(clamp_tensor, em_clamp_tensor(T(0), OPT(1), OPT(2)))                                   \
    X(matmul, em_matmul(T(0), T(1))) X(mm, em_mm(T(0), T(1)))                                \
    X(to_dtype, em_to_dtype(T(0), DT(1))) X(contiguous, em_contiguous(T(0)))                 \
    X(clone, em_clone(T(0))) X(detach, em_detach(T(0)))                                      \
    X(transpose, em_transpose(T(0), D(1), D(2))) X(t, em_t(T(0)))                            \
    X(permute, rf_permute(r, a, n)) X(narrow, em_narrow(T(0), D(1), I(2), I(3)))             \
    X(select, em_select(T(0), D(1), I(2)))                                                   \
    X(slice, em_slice(T(0), D(1), I(2), I(3), I(4)))                                         \
    X(view, rf_shape_op(r, a, n, 0)) X(reshape, rf_shape_op(r, a, n, 1))                     \
    X(expand, rf_shape_op(r, a, n, 2)) X(unsqueeze, em_unsqueeze(T(0), D(1)))                \
    X(squeeze, em_squeeze(T(0), D(1))) X(flatten, em_flatten(T(0)))                          \
    X(split, rf_pieces(r, a, n, false)) X(chunk, rf_pieces(r, a, n, true))                   \
    X(index_select, em_index_select(T(0), D(1), T(2)))                                       \
    X(gather, em_gather(T(0), D(1), T(2)))                                                   \
    X(scatter_add, em_scatter_add(T(0), D(1), T(2), T(3)))                                   \
    X(cat, rf_join(r, a, n, false)) X(stack, rf_join(r, a, n, true))                         \
    X(sum, em_sum(T(0))) X(mean, em_mean(T(0))) X(sum_dims, rf_dims_op(r, a, n, 0))          \
    X(mean_dims, rf_dims_op(r, a, n, 1)) X(max, em_max(T(0))) X(min, em_min(T(0)))           \
    X(max_dim_values, rf_max_dim(r, a, n, 0)) X(max_dim_indices, rf_max_dim(r, a, n, 1))     \
    X(min_dim_values, rf_max_dim(r, a, n, 2)) X(min_dim_indices, rf_max_dim(r, a, n, 3))     \
    X(argmax, em_argmax(T(0), D(1), B(2))) X(argmin, em_argmin(T(0), D(1), B(2)))            \
    X(prod, em_prod(T(0))) X(prod_dim, em_prod_dim(T(0), D(1), B(2)))                        \
    X(var, em_var(T(0), B(1))) X(std, em_std(T(0), B(1)))                                    \
    X(var_dims, rf_dims_op(r, a, n, 2)) X(std_dims, rf_dims_op(r, a, n, 3))                  \
    X(logsumexp, rf_dims_op(r, a, n, 4)) X(any, em_any(T(0)))                                \
    X(any_dim, em_any_dim(T(0), D(1), B(2)))                                                 \
    X(softmax, em_softmax(T(0), D(1))) X(log_softmax, em_log_softmax(T(0), D(1)))            \
    X(mse_loss, em_mse_loss(T(0), T(1), RED(2))) X(l1_loss, em_l1_loss(T(0), T(1), RED(2)))  \
    X(smooth_l1_loss, em_smooth_l1_loss(T(0), T(1), RED(2), FL(3)))                          \
    X(cross_entropy, rf_class_loss(r, a, n, true)) X(nll_loss, rf_class_loss(r, a, n, false)) \
    X(bce_with_logits, rf_bce(r, a, n))                                                      \
    X(add_, IP(em_add_(T(0), T(1)))) X(sub_, IP(em_sub_(T(0), T(1))))                        \
    X(mul_, IP(em_mul_(T(0), T(1)))) X(div_, IP(em_div_(T(0), T(1))))                        \
    X(add_scalar_, IP(em_add_scalar_(T(0), FL(1))))                                          \
    X(sub_scalar_, IP(em_sub_scalar_(T(0), FL(1))))                                          \
    X(mul_scalar_, IP(em_mul_scalar_(T(0), FL(1))))                                          \
    X(div_scalar_, IP(em_div_scalar_(T(0), FL(1))))                                          \
    X(clamp_, IP(em_clamp_(T(0), FL(1), FL(2)))) X(pow_, IP(em_pow_(T(0), FL(1))))           \
    X(neg_, IP(em_neg_(T(0)))) X(exp_, IP(em_exp_(T(0)))) X(log_, IP(em_log_(T(0))))         \
    X(sqrt_, IP(em_sqrt_(T(0)))) X(abs_, IP(em_abs_(T(0)))) X(relu_, IP(em_relu_(T(0))))     \
    X(tanh_, IP(em_tanh_(T(0)))) X(sigmoid_, IP(em_sigmoid_(T(0))))                          \
    X(reciprocal_, IP(em_reciprocal_(T(0)))) X(floor_, IP(em_floor_(T(0))))                  \
    X(ceil_, IP(em_ceil_(T(0)))) X(round_, IP(em_round_(T(0)))) X(zero_, IP(em_zero_(T(0)))) \
    X(fill_, IP(em_fill_(T(0), FL(1))))                                                      \
    X(masked_fill_, IP(em_masked_fill_(T(0), T(1), FL(2))))                                  \
    X(copy_, IP(em_copy_(T(0), T(1))))                                                       \
    X(scatter_add_, IP(em_scatter_add_(T(0), D(1), T(2), T(3))))

#define RF_DEFINE(nm, expr)                                                                  \
    static em_tensor *rf_op_##nm(RF_ARGS)                                                    \
    {                                                                                        \
        (void)r;                                                                             \
        (void)a;                                                                             \
        (void)n;                                                                             \
        return expr;                                                                         \
    }
RF_OPS(RF_DEFINE)
#undef RF_DEFINE

typedef struct rf_op {
    const char *name;
    em_tensor *(*fn)(RF_ARGS);
} rf_op;

#define RF_ROW(nm, expr) {#nm, rf_op_##nm},
static const rf_op rf_ops[] = {RF_OPS(RF_ROW)};
#undef RF_ROW

static const rf_op *rf_find(const char *name)
{
    for (size_t i = 0; i < sizeof rf_ops / sizeof rf_ops[0]; i++)
        if (!strcmp(rf_ops[i].name, name))
            return &rf_ops[i];
    return NULL;
}

#undef T
#undef OPT
#undef I
#undef B
#undef D
#undef FL
#undef DT
#undef RED
#undef IP
#undef RF_ARGS

#endif
