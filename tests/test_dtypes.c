/* tests/test_dtypes.c — integer dtypes (i64, i32, u8) through the core, against PyTorch 1.13
 * (values, result dtypes and error cases were computed with torch): creation and fill
 * values, arange, casts both ways, item, comparisons, where/masked_fill, copies across
 * dtypes, integer arithmetic (wrapping), PyTorch's tensor-scalar promotion, floor division
 * and remainder (ZeroDivisionError, none for an empty result), sum of bool/int, sum/mean
 * over no dims, and the rule that no integer or bool result requires grad.
 * Built once per backend; skips (TAP plan 1..0) where that backend has no device. */
#include "backend_harness.h"

#include <stdint.h>

/* ------------------------------------------------------------------ helpers */

/* A tensor of integer dtype dt (or bool) from exact int64 values. */
static em_tensor *ints(em_dtype dt, int nd, const int64_t *shape, const int64_t *v)
{
    int64_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= shape[i];
    void *buf = malloc((size_t)(n ? n : 1) * em_dtype_size(dt));
    for (int64_t i = 0; i < n; i++) {
        if (dt == EM_I64)
            ((int64_t *)buf)[i] = v[i];
        else if (dt == EM_I32)
            ((int32_t *)buf)[i] = (int32_t)v[i];
        else
            ((uint8_t *)buf)[i] = (uint8_t)v[i];
    }
    em_tensor *t = em_tensor_from_data(g_ctx, dt, nd, shape, buf);
    free(buf);
    return t;
}

#define I64(...) ints(EM_I64, 1, (const int64_t[]){EM__NARG(__VA_ARGS__)}, (const int64_t[]){__VA_ARGS__})
#define I32(...) ints(EM_I32, 1, (const int64_t[]){EM__NARG(__VA_ARGS__)}, (const int64_t[]){__VA_ARGS__})
#define U8(...) ints(EM_U8, 1, (const int64_t[]){EM__NARG(__VA_ARGS__)}, (const int64_t[]){__VA_ARGS__})
#define BOOLS(...) ints(EM_BOOL, 1, (const int64_t[]){EM__NARG(__VA_ARGS__)}, (const int64_t[]){__VA_ARGS__})
#define F32(...) from_doubles(EM_F32, 1, (const int64_t[]){EM__NARG(__VA_ARGS__)}, (const double[]){__VA_ARGS__})

/* t has dtype dt and exactly the integer values want (n of them) */
static void expect_ints(em_tensor *t, em_dtype dt, const int64_t *want, int64_t n)
{
    assert_non_null(t);
    if (em_tensor_dtype(t) != dt)
        fail_msg("dtype %s, want %s", em_dtype_name(em_tensor_dtype(t)), em_dtype_name(dt));
    assert_int_equal(em_tensor_numel(t), n);
    size_t es = em_dtype_size(dt);
    void *buf = malloc((size_t)(n ? n : 1) * es);
    assert_int_equal(em_tensor_to_host(t, buf, (size_t)n * es), EM_OK);
    for (int64_t i = 0; i < n; i++) {
        int64_t got = dt == EM_I64 ? ((int64_t *)buf)[i] : dt == EM_I32 ? ((int32_t *)buf)[i]
                                                                        : ((uint8_t *)buf)[i];
        if (got != want[i])
            fail_msg("element %lld: got %lld, want %lld", (long long)i, (long long)got, (long long)want[i]);
    }
    free(buf);
}
#define EXPECT_INTS(t, dt, ...)                                                                    \
    expect_ints((t), (dt), (const int64_t[]){__VA_ARGS__}, EM__NARG(__VA_ARGS__))

/* t has float dtype dt and the values want (NaN equal to NaN) */
static void expect_floats(em_tensor *t, em_dtype dt, const double *want, int64_t n)
{
    assert_non_null(t);
    if (em_tensor_dtype(t) != dt)
        fail_msg("dtype %s, want %s", em_dtype_name(em_tensor_dtype(t)), em_dtype_name(dt));
    assert_int_equal(em_tensor_numel(t), n);
    double *got = to_doubles(t);
    assert_close_arrays(got, want, n, tol_for(dt));
    free(got);
}
#define EXPECT_FLOATS(t, dt, ...)                                                                  \
    expect_floats((t), (dt), (const double[]){__VA_ARGS__}, EM__NARG(__VA_ARGS__))

/* the call failed with status st and a message containing text */
static void expect_error(const void *result, em_status st, const char *text)
{
    assert_null(result);
    if (em_context_status(g_ctx) != st)
        fail_msg("status %s (%s), want %s", em_status_name(em_context_status(g_ctx)),
                 em_context_error(g_ctx), em_status_name(st));
    if (text && !strstr(em_context_error(g_ctx), text))
        fail_msg("message \"%s\" lacks \"%s\"", em_context_error(g_ctx), text);
    em_context_clear_error(g_ctx);
}

static void expect_status(em_status got, em_status st, const char *text)
{
    if (got != st)
        fail_msg("status %s (%s), want %s", em_status_name(got), em_context_error(g_ctx),
                 em_status_name(st));
    if (text && !strstr(em_context_error(g_ctx), text))
        fail_msg("message \"%s\" lacks \"%s\"", em_context_error(g_ctx), text);
    em_context_clear_error(g_ctx);
}

/* ------------------------------------------------------------------ creation */

static void test_creation(void **state)
{
    (void)state;
    /* from data, exact: 2**62 + 1 is not a double */
    int64_t big[2] = {(INT64_C(1) << 62) + 1, INT64_MIN};
    em_tensor *b = em_tensor_from_data(g_ctx, EM_I64, EM_SHAPE(2), big);
    int64_t back[2];
    assert_int_equal(em_tensor_to_host(b, back, sizeof back), EM_OK);
    assert_memory_equal(back, big, sizeof big);
    const int32_t i32[3] = {-7, 0, INT32_MAX};
    EXPECT_INTS(em_tensor_from_data(g_ctx, EM_I32, EM_SHAPE(3), i32), EM_I32, -7, 0, INT32_MAX);
    const uint8_t u8[3] = {0, 128, 255};
    EXPECT_INTS(em_tensor_from_data(g_ctx, EM_U8, EM_SHAPE(3), u8), EM_U8, 0, 128, 255);
    /* fills: torch.zeros/ones/full(dtype=...) */
    const em_dtype dts[3] = {EM_I64, EM_I32, EM_U8};
    for (int k = 0; k < 3; k++) {
        EXPECT_INTS(em_zeros(g_ctx, dts[k], EM_SHAPE(2)), dts[k], 0, 0);
        EXPECT_INTS(em_ones(g_ctx, dts[k], EM_SHAPE(2)), dts[k], 1, 1);
        EXPECT_INTS(em_full(g_ctx, dts[k], EM_SHAPE(2), 2.7), dts[k], 2, 2);   /* truncates */
        EXPECT_INTS(em_scalar(g_ctx, dts[k], 100), dts[k], 100);
        assert_int_equal(em_tensor_ndim(em_scalar(g_ctx, dts[k], 100)), 0);
        EXPECT_INTS(em_zeros_like(em_full(g_ctx, dts[k], EM_SHAPE(3), 5)), dts[k], 0, 0, 0);
    }
    EXPECT_INTS(em_full(g_ctx, EM_I64, EM_SHAPE(1), -0x1p62), EM_I64, -(INT64_C(1) << 62));
    EXPECT_INTS(em_full(g_ctx, EM_U8, EM_SHAPE(1), -1), EM_U8, 255);        /* an int wraps */
    EXPECT_INTS(em_full(g_ctx, EM_I32, EM_SHAPE(1), -2147483648.0), EM_I32, INT32_MIN);
    EXPECT_INTS(em_full(g_ctx, EM_BOOL, EM_SHAPE(1), 2.5), EM_BOOL, 1);
    /* values out of range: "value cannot be converted to type uint8_t without overflow" */
    expect_error(em_full(g_ctx, EM_U8, EM_SHAPE(1), 300), EM_ERR_INVALID, "uint8_t without overflow");
    expect_error(em_full(g_ctx, EM_U8, EM_SHAPE(1), -256), EM_ERR_INVALID, "uint8_t");
    expect_error(em_full(g_ctx, EM_U8, EM_SHAPE(1), -2.7), EM_ERR_INVALID, "uint8_t");
    expect_error(em_full(g_ctx, EM_I32, EM_SHAPE(1), 2147483648.0), EM_ERR_INVALID, "type int without");
    expect_error(em_full(g_ctx, EM_I64, EM_SHAPE(1), NAN), EM_ERR_INVALID, "int64_t");
    expect_error(em_full(g_ctx, EM_I64, EM_SHAPE(1), 1e30), EM_ERR_INVALID, "int64_t");
    expect_error(em_full(g_ctx, EM_I64, EM_SHAPE(1), INFINITY), EM_ERR_INVALID, "int64_t");
    /* fill_ as PyTorch: u8.fill_(-1) is 255, fill_(2.5) is 2, fill_(300) fails unchanged */
    em_tensor *f = em_zeros(g_ctx, EM_U8, EM_SHAPE(2));
    assert_int_equal(em_fill_(f, -1), EM_OK);
    EXPECT_INTS(f, EM_U8, 255, 255);
    assert_int_equal(em_fill_(f, 2.5), EM_OK);
    EXPECT_INTS(f, EM_U8, 2, 2);
    expect_status(em_fill_(f, 300), EM_ERR_INVALID, "without overflow");
    EXPECT_INTS(f, EM_U8, 2, 2);
    assert_int_equal(em_zero_(f), EM_OK);
    EXPECT_INTS(f, EM_U8, 0, 0);
    /* empty integer tensors */
    em_tensor *e = em_zeros(g_ctx, EM_I64, EM_SHAPE(0, 3));
    assert_int_equal(em_tensor_numel(e), 0);
    EXPECT_INTS(em_sum(e), EM_I64, 0);
    assert_ok_ctx();
}

/* torch.arange(..., dtype=torch.long / int32 / uint8) */
static void test_arange(void **state)
{
    (void)state;
    EXPECT_INTS(em_arange(g_ctx, EM_I64, 0, 5, 1), EM_I64, 0, 1, 2, 3, 4);
    EXPECT_INTS(em_arange(g_ctx, EM_I64, 0.5, 5, 1), EM_I64, 0, 1, 2, 3, 4);
    EXPECT_INTS(em_arange(g_ctx, EM_I64, 0, 5, 1.5), EM_I64, 0, 1, 2, 3, 4);   /* step 1 */
    EXPECT_INTS(em_arange(g_ctx, EM_I32, 0, 5, 1.5), EM_I32, 0, 1, 2, 3);      /* length 4 */
    EXPECT_INTS(em_arange(g_ctx, EM_I32, 0.5, 5, 1), EM_I32, 0, 1, 2, 3, 4);
    EXPECT_INTS(em_arange(g_ctx, EM_I64, -0.5, 3, 1), EM_I64, 0, 1, 2);
    EXPECT_INTS(em_arange(g_ctx, EM_I64, 5, 0, -2), EM_I64, 5, 3, 1);
    EXPECT_INTS(em_arange(g_ctx, EM_U8, 0, 300, 100), EM_U8, 0, 100, 200);
    assert_int_equal(em_tensor_numel(em_arange(g_ctx, EM_I64, 3, 3, 1)), 0);
    expect_error(em_arange(g_ctx, EM_I64, 0, 5, 0.5), EM_ERR_INVALID, "step must be nonzero");
    expect_error(em_arange(g_ctx, EM_I32, 0, 5, 0.5), EM_ERR_INVALID, "step must be nonzero");
    expect_error(em_arange(g_ctx, EM_I64, 5, 0, 1), EM_ERR_INVALID, "inconsistent with step sign");
    expect_error(em_arange(g_ctx, EM_BOOL, 0, 3, 1), EM_ERR_DTYPE, "em_arange");
    expect_error(em_arange(g_ctx, EM_I64, 0, INFINITY, 1), EM_ERR_INVALID, "finite");
}

/* ------------------------------------------------------------------ casts and item */

static void test_casts(void **state)
{
    (void)state;
    em_tensor *x = F32(1.5, -1.7, 0.0);
    EXPECT_INTS(em_to_dtype(x, EM_I64), EM_I64, 1, -1, 0);   /* truncation toward zero */
    EXPECT_INTS(em_to_dtype(x, EM_I32), EM_I32, 1, -1, 0);
    EXPECT_INTS(em_to_dtype(F32(1.5, 254.9), EM_U8), EM_U8, 1, 254);
    EXPECT_INTS(em_to_dtype(I64(300, -1), EM_U8), EM_U8, 44, 255);
    EXPECT_INTS(em_to_dtype(I32(259), EM_U8), EM_U8, 3);
    EXPECT_INTS(em_to_dtype(U8(255, 7), EM_I64), EM_I64, 255, 7);
    EXPECT_INTS(em_to_dtype(I64(-3, 0), EM_I32), EM_I32, -3, 0);
    EXPECT_INTS(em_to_dtype(F32(0.5, 0.0, NAN), EM_BOOL), EM_BOOL, 1, 0, 1);
    EXPECT_INTS(em_to_dtype(I64(2, 0), EM_BOOL), EM_BOOL, 1, 0);
    EXPECT_FLOATS(em_to_dtype(BOOLS(1, 0), EM_F32), EM_F32, 1, 0);
    EXPECT_FLOATS(em_to_dtype(I64(-5, 7), EM_F64), EM_F64, -5, 7);
    EXPECT_FLOATS(em_to_dtype(U8(200), EM_F32), EM_F32, 200);
    /* copy_ converts to self's dtype: torch.zeros(2, dtype=long).copy_(tensor([1.7, -2.9])) */
    em_tensor *z = em_zeros(g_ctx, EM_I64, EM_SHAPE(2));
    assert_int_equal(em_copy_(z, F32(1.7, -2.9)), EM_OK);
    EXPECT_INTS(z, EM_I64, 1, -2);
    em_tensor *zf = em_zeros(g_ctx, EM_F32, EM_SHAPE(2, 2));
    assert_int_equal(em_copy_(zf, I64(1, 2)), EM_OK);   /* broadcast too */
    EXPECT_FLOATS(zf, EM_F32, 1, 2, 1, 2);
    em_tensor *zu = em_zeros(g_ctx, EM_U8, EM_SHAPE(2));
    assert_int_equal(em_copy_(zu, I32(-1, 256)), EM_OK);
    EXPECT_INTS(zu, EM_U8, 255, 0);
    assert_ok_ctx();
}

static void test_item(void **state)
{
    (void)state;
    int64_t big = (INT64_C(1) << 62) + 1;
    em_tensor *b = em_tensor_from_data(g_ctx, EM_I64, EM_SCALAR_SHAPE, &big);
    assert_true(em_item_i64(b) == big);
    int64_t v = 0;
    assert_int_equal(em_item_get_i64(b, &v), EM_OK);
    assert_true(v == big);
    assert_true(em_item(b) == 0x1p62);   /* as a double: rounded */
    assert_true(em_item_i64(I32(-7)) == -7);
    assert_true(em_item_i64(U8(250)) == 250);
    assert_true(em_item_i64(BOOLS(1)) == 1);
    assert_true(em_item(U8(250)) == 250.0);
    assert_true(em_item_i64(F32(2.7)) == 2);   /* truncates, as em_to_dtype */
    assert_true(em_item_i64(F32(-2.7)) == -2);
    assert_ok_ctx();
    expect_status(em_item_get_i64(F32(NAN), &v), EM_ERR_INVALID, "cannot convert");
    expect_status(em_item_get_i64(F32(1e30), &v), EM_ERR_INVALID, "cannot convert");
    expect_status(em_item_get_i64(I64(1, 2), &v), EM_ERR_SHAPE, "2 elements");
    assert_true(em_item_i64(I64(1, 2)) == 0);
    em_context_clear_error(g_ctx);
    expect_status(em_item_get_i64(b, NULL), EM_ERR_INVALID, "NULL");
}

/* ------------------------------------------------------------------ comparisons, selection */

static void test_compare_select(void **state)
{
    (void)state;
    EXPECT_INTS(em_eq(I64(5, 6), I64(5, 7)), EM_BOOL, 1, 0);
    EXPECT_INTS(em_lt(I32(-1, 6), I32(0, 6)), EM_BOOL, 1, 0);
    EXPECT_INTS(em_ge(U8(200, 6), U8(100, 7)), EM_BOOL, 1, 0);
    /* with scalars, in PyTorch's promoted dtype */
    EXPECT_INTS(em_lt_scalar(I64(5, 6), 5.5), EM_BOOL, 1, 0);      /* compared in f32 */
    EXPECT_INTS(em_ge_scalar(I32(5, 6), 6), EM_BOOL, 0, 1);
    EXPECT_INTS(em_lt_scalar(U8(1, 2), 300), EM_BOOL, 1, 1);       /* 300 -> u8 44 */
    EXPECT_INTS(em_lt_scalar(U8(1, 2), -1), EM_BOOL, 1, 1);        /* -1 -> u8 255 */
    EXPECT_INTS(em_eq_scalar(BOOLS(1, 0), 2), EM_BOOL, 0, 0);      /* compared in i64 */
    EXPECT_INTS(em_eq_scalar(BOOLS(1, 0), 1), EM_BOOL, 1, 0);
    EXPECT_INTS(em_eq_scalar(BOOLS(1, 0), 0), EM_BOOL, 0, 1);      /* inverts a mask */
    EXPECT_INTS(em_gt_scalar(I64(INT64_MAX, -3), 0), EM_BOOL, 1, 0);
    expect_error(em_lt(I64(1), I32(1)), EM_ERR_DTYPE, "dtypes differ");
    /* where, masked_fill */
    EXPECT_INTS(em_where(BOOLS(1, 0), U8(1, 2), U8(3, 4)), EM_U8, 1, 4);
    EXPECT_INTS(em_where(BOOLS(1, 0), I64(INT64_MIN, 2), I64(3, INT64_MAX)), EM_I64, INT64_MIN, INT64_MAX);
    EXPECT_INTS(em_masked_fill(I64(1, 2), BOOLS(1, 0), 7), EM_I64, 7, 2);
    EXPECT_INTS(em_masked_fill(I64(1, 2), BOOLS(1, 0), 2.5), EM_I64, 2, 2);
    EXPECT_INTS(em_masked_fill(U8(1, 2), BOOLS(1, 0), -1), EM_U8, 255, 2);
    expect_error(em_masked_fill(U8(1), BOOLS(1), 300), EM_ERR_INVALID, "uint8_t without overflow");
    expect_error(em_masked_fill(I64(1), BOOLS(1), NAN), EM_ERR_INVALID, "int64_t without overflow");
    em_tensor *m = I32(1, 2, 3);
    assert_int_equal(em_masked_fill_(m, BOOLS(0, 1, 0), -9), EM_OK);
    EXPECT_INTS(m, EM_I32, 1, -9, 3);
    bool eq = false;
    assert_int_equal(em_equal(I64(1, 2), I64(1, 2), &eq), EM_OK);
    assert_true(eq);
    assert_ok_ctx();
}

/* ------------------------------------------------------------------ arithmetic */

static void test_int_arith(void **state)
{
    (void)state;
    EXPECT_INTS(em_add(I64(1, -2), I64(10, 20)), EM_I64, 11, 18);
    EXPECT_INTS(em_sub(I32(1, -2), I32(10, 20)), EM_I32, -9, -22);
    EXPECT_INTS(em_mul(U8(16, 3), U8(16, 5)), EM_U8, 0, 15);                 /* 256 wraps */
    EXPECT_INTS(em_add(I32(INT32_MAX), I32(1)), EM_I32, INT32_MIN);
    EXPECT_INTS(em_add(I64(INT64_MAX), I64(1)), EM_I64, INT64_MIN);
    EXPECT_INTS(em_neg(U8(1, 254)), EM_U8, 255, 2);
    EXPECT_INTS(em_neg(I64(3, INT64_MIN)), EM_I64, -3, INT64_MIN);
    EXPECT_INTS(em_abs(I64(1, -2)), EM_I64, 1, 2);
    EXPECT_INTS(em_abs(I32(INT32_MIN)), EM_I32, INT32_MIN);
    EXPECT_INTS(em_maximum(I64(1, 5), I64(3, 2)), EM_I64, 3, 5);
    EXPECT_INTS(em_minimum(U8(1, 255), U8(3, 2)), EM_U8, 1, 2);
    EXPECT_INTS(em_clamp(I64(1, 5, 9), 2, 6), EM_I64, 2, 5, 6);
    EXPECT_INTS(em_clamp(U8(1, 5, 9), -1, 6), EM_U8, 6, 6, 6);   /* -1 is u8 255, as PyTorch */
    EXPECT_INTS(em_clamp_min(I32(-4, 5), 0), EM_I32, 0, 5);
    EXPECT_INTS(em_clamp_max(I32(-4, 5), 0), EM_I32, -4, 0);
    EXPECT_INTS(em_clamp(BOOLS(1, 0), 0, 1), EM_I64, 1, 0);
    EXPECT_FLOATS(em_clamp(I64(1, 5, 9), 2.5, 6), EM_F32, 2.5, 5, 6);
    EXPECT_FLOATS(em_clamp_min(I64(1, 5, 9), 2.5), EM_F32, 2.5, 5, 9);
    EXPECT_INTS(em_clamp_min(U8(1, 100), -1), EM_U8, 255, 255);
    EXPECT_INTS(em_clamp_max(I64(1, 100), 0x1p62), EM_I64, 1, 100);
    EXPECT_INTS(em_clamp(BOOLS(1), 0, 300), EM_I64, 1);
    expect_error(em_clamp(U8(1, 100), 0, 300), EM_ERR_INVALID, "uint8_t without overflow");
    expect_error(em_clamp_max(U8(1, 100), -256), EM_ERR_INVALID, "uint8_t without overflow");
    expect_error(em_clamp_max(I32(1, 100), 0x1p40), EM_ERR_INVALID, "type int without overflow");
    EXPECT_INTS(em_relu(I64(1, -2)), EM_I64, 1, 0);
    EXPECT_INTS(em_relu(U8(1, 200)), EM_U8, 1, 200);
    EXPECT_INTS(em_sign(I64(1, -2, 0)), EM_I64, 1, -1, 0);
    EXPECT_INTS(em_sign(U8(1, 0)), EM_U8, 1, 0);
    EXPECT_INTS(em_sign(BOOLS(1, 0)), EM_BOOL, 1, 0);
    EXPECT_INTS(em_floor(I64(1, -2)), EM_I64, 1, -2);
    EXPECT_INTS(em_ceil(U8(1, 2)), EM_U8, 1, 2);
    EXPECT_INTS(em_round(I32(-7)), EM_I32, -7);
    em_tensor *r = I64(4, -4);
    assert_int_equal(em_floor_(r), EM_OK);
    assert_int_equal(em_round_(r), EM_OK);
    EXPECT_INTS(r, EM_I64, 4, -4);
    /* in place on integers */
    em_tensor *a = I64(3, -1);
    assert_int_equal(em_mul_scalar_(a, 2), EM_OK);
    assert_int_equal(em_add_(a, I64(1, 1)), EM_OK);
    assert_int_equal(em_neg_(a), EM_OK);
    assert_int_equal(em_pow_(a, 2), EM_OK);
    EXPECT_INTS(a, EM_I64, 49, 1);
    /* refused as in PyTorch */
    expect_error(em_neg(BOOLS(1)), EM_ERR_DTYPE, "Negation, the `-` operator, on a bool tensor");
    expect_error(em_sub(BOOLS(1), BOOLS(0)), EM_ERR_DTYPE, "Subtraction, the `-` operator");
    expect_error(em_sub_scalar(BOOLS(1), 1), EM_ERR_DTYPE, "Subtraction");
    expect_error(em_rsub_scalar(BOOLS(1), 1), EM_ERR_DTYPE, "Subtraction");
    expect_error(em_abs(BOOLS(1)), EM_ERR_DTYPE, "bool");
    expect_error(em_relu(BOOLS(1)), EM_ERR_DTYPE, "Boolean inputs not supported for relu");
    expect_error(em_floor(BOOLS(1)), EM_ERR_DTYPE, "bool");
    expect_error(em_add(BOOLS(1), BOOLS(1)), EM_ERR_DTYPE, "bool");
    /* tensor-tensor ops of different dtypes stay an error */
    expect_error(em_add(I64(1), F32(1)), EM_ERR_DTYPE, "dtypes differ (i64 and f32)");
    expect_error(em_mul(I64(1), I32(1)), EM_ERR_DTYPE, "em_to_dtype");
    expect_error(em_pow_tensor(I64(2), I64(3)), EM_ERR_DTYPE, "floating point");
}

/* Tensor-scalar promotion, each rule checked against torch 1.13 */
static void test_promotion(void **state)
{
    (void)state;
    EXPECT_FLOATS(em_mul_scalar(I64(1, 2, 3), 0.5), EM_F32, 0.5, 1, 1.5);
    EXPECT_INTS(em_mul_scalar(I64(1, 2, 3), 2), EM_I64, 2, 4, 6);
    EXPECT_INTS(em_add_scalar(BOOLS(1, 0), 1), EM_I64, 2, 1);
    EXPECT_FLOATS(em_add_scalar(BOOLS(1, 0), 1.5), EM_F32, 2.5, 1.5);
    EXPECT_INTS(em_mul_scalar(BOOLS(1, 0), 2), EM_I64, 2, 0);
    EXPECT_FLOATS(em_div_scalar(I64(1, 2, 3), 2), EM_F32, 0.5, 1, 1.5);
    EXPECT_FLOATS(em_rdiv_scalar(I64(1, 2, 3), 2), EM_F32, 2, 1, 2.0f / 3.0f);
    EXPECT_FLOATS(em_div(I64(1, 3), I64(2, 4)), EM_F32, 0.5, 0.75);
    EXPECT_FLOATS(em_div(BOOLS(1, 0), BOOLS(1, 1)), EM_F32, 1, 0);
    EXPECT_INTS(em_pow(I64(1, 2, 3), 2), EM_I64, 1, 4, 9);
    EXPECT_INTS(em_pow(I64(0, 2, -3), 0), EM_I64, 1, 1, 1);
    EXPECT_INTS(em_pow(I64(2, -3), 5), EM_I64, 32, -243);
    EXPECT_INTS(em_pow(I64(3), 40), EM_I64, (int64_t)UINT64_C(12157665459056928801));   /* wraps */
    EXPECT_INTS(em_pow(U8(2, 3), 8), EM_U8, 0, 161);
    EXPECT_INTS(em_pow(U8(3), 255), EM_U8, 171);
    EXPECT_INTS(em_pow(I64(1, 2), 0x1p40), EM_I64, 1, 0);
    expect_error(em_pow(U8(3), 1000), EM_ERR_INVALID, "uint8_t without overflow");
    EXPECT_INTS(em_pow(BOOLS(1, 0), 2), EM_I64, 1, 0);
    EXPECT_FLOATS(em_pow(I64(1, 2, 4), 0.5), EM_F32, 1, sqrt(2.0), 2);
    EXPECT_FLOATS(em_pow(BOOLS(1), 0.5), EM_F32, 1);
    expect_error(em_pow(I64(1, 2), -1), EM_ERR_INVALID, "Integers to negative integer powers are not allowed");
    EXPECT_INTS(em_add_scalar(U8(1, 2), 300), EM_U8, 45, 46);
    EXPECT_INTS(em_sub_scalar(U8(1, 2), 3), EM_U8, 254, 255);
    EXPECT_INTS(em_add_scalar(I32(1, 2), 0x1p40), EM_I32, 1, 2);
    EXPECT_INTS(em_mul_scalar(U8(1, 2), -1), EM_U8, 255, 254);
    EXPECT_INTS(em_rsub_scalar(I64(1, 5), 2), EM_I64, 1, -3);
    EXPECT_FLOATS(em_mul_scalar(U8(1, 2), 0.5), EM_F32, 0.5, 1);
    EXPECT_FLOATS(em_mul_scalar(I32(1, 2), 0.5), EM_F32, 0.5, 1);
    EXPECT_FLOATS(em_sub_scalar(I64(1, 2), 0.5), EM_F32, 0.5, 1.5);
    EXPECT_FLOATS(em_rsub_scalar(I64(1, 2), 0.5), EM_F32, -0.5, -1.5);
    EXPECT_FLOATS(em_add_scalar(I64(1, 2), INFINITY), EM_F32, INFINITY, INFINITY);
    EXPECT_FLOATS(em_mul_scalar(I64(1, 2), NAN), EM_F32, NAN, NAN);
    EXPECT_FLOATS(em_mul_scalar(I64(1, 2), 1e20), EM_F32, 1e20, 2e20);
    /* a float tensor keeps its dtype */
    EXPECT_FLOATS(em_mul_scalar(from_doubles(EM_F64, EM_SHAPE(2), (double[]){1, 2}), 0.5), EM_F64, 0.5, 1);
    /* float functions of integers give f32 */
    EXPECT_FLOATS(em_exp(I64(1, 2)), EM_F32, exp(1.0), exp(2.0));
    EXPECT_FLOATS(em_exp(I32(1, 2)), EM_F32, exp(1.0), exp(2.0));
    EXPECT_FLOATS(em_exp(BOOLS(1)), EM_F32, exp(1.0));
    EXPECT_FLOATS(em_log(I64(1, 2)), EM_F32, 0, log(2.0));
    EXPECT_FLOATS(em_sqrt(U8(1, 4)), EM_F32, 1, 2);
    EXPECT_FLOATS(em_sqrt(BOOLS(1)), EM_F32, 1);
    EXPECT_FLOATS(em_tanh(I64(1, 2)), EM_F32, tanh(1.0), tanh(2.0));
    EXPECT_FLOATS(em_sigmoid(BOOLS(1)), EM_F32, 1 / (1 + exp(-1.0)));
    EXPECT_FLOATS(em_sin(I64(1, 2)), EM_F32, sin(1.0), sin(2.0));
    EXPECT_FLOATS(em_cos(I64(1)), EM_F32, cos(1.0));
    EXPECT_FLOATS(em_log1p(I64(1, 2)), EM_F32, log(2.0), log(3.0));
    EXPECT_FLOATS(em_expm1(I64(1, 2)), EM_F32, expm1(1.0), expm1(2.0));
    EXPECT_FLOATS(em_erf(I64(1, 2)), EM_F32, erf(1.0), erf(2.0));
    EXPECT_FLOATS(em_reciprocal(I64(1, 2)), EM_F32, 1, 0.5);
    /* in place, the result must fit self's dtype: "result type Float can't be cast to the
     * desired output type Long" */
    em_tensor *a = I64(3);
    expect_status(em_exp_(a), EM_ERR_DTYPE, "can't be cast to the desired output type i64");
    expect_status(em_add_scalar_(a, 0.5), EM_ERR_DTYPE, "can't be cast");
    expect_status(em_div_scalar_(a, 2), EM_ERR_DTYPE, "can't be cast");
    expect_status(em_div_(a, I64(2)), EM_ERR_DTYPE, "can't be cast");
    expect_status(em_clamp_(a, 0.5, 2), EM_ERR_DTYPE, "can't be cast");
    expect_status(em_pow_(a, 0.5), EM_ERR_DTYPE, "can't be cast");
    EXPECT_INTS(a, EM_I64, 3);   /* failed calls changed nothing */
    assert_int_equal(em_mul_scalar_(a, 2), EM_OK);
    EXPECT_INTS(a, EM_I64, 6);
}

/* ------------------------------------------------------------------ floor division, remainder */

static void test_floor_divide_remainder(void **state)
{
    (void)state;
    EXPECT_INTS(em_floor_divide(I64(7, -7), I64(2, 2)), EM_I64, 3, -4);
    EXPECT_INTS(em_floor_divide_scalar(I64(7, -7), 2), EM_I64, 3, -4);
    EXPECT_FLOATS(em_floor_divide_scalar(I64(7, -7), 2.5), EM_F32, 2, -3);
    EXPECT_INTS(em_floor_divide(I32(7, -7), I32(2, 2)), EM_I32, 3, -4);
    EXPECT_INTS(em_floor_divide(U8(7, 249), U8(2, 2)), EM_U8, 3, 124);
    EXPECT_INTS(em_floor_divide_scalar(U8(5), -1), EM_U8, 0);        /* -1 is u8 255 */
    EXPECT_INTS(em_remainder(I64(7, -7), I64(2, 2)), EM_I64, 1, 1);
    EXPECT_INTS(em_remainder_scalar(I64(7, -7), 3), EM_I64, 1, 2);
    EXPECT_INTS(em_remainder_scalar(I64(7, -7), -3), EM_I64, -2, -1);
    EXPECT_FLOATS(em_remainder_scalar(I64(7, -7), 2.5), EM_F32, 2, 0.5);
    EXPECT_INTS(em_remainder(I32(7, -7), I32(-2, -2)), EM_I32, -1, -1);
    EXPECT_INTS(em_floor_divide_scalar(BOOLS(1), 2), EM_I64, 0);
    EXPECT_INTS(em_remainder_scalar(BOOLS(1), 2), EM_I64, 1);
    EXPECT_FLOATS(em_remainder_scalar(F32(7, -7), 0), EM_F32, NAN, NAN);
    EXPECT_FLOATS(em_floor_divide_scalar(F32(7, -7, 0), 0), EM_F32, INFINITY, -INFINITY, NAN);
    /* integer division by zero: ZeroDivisionError, checked before any kernel runs */
    expect_error(em_floor_divide_scalar(I64(7, -7), 0), EM_ERR_INVALID, "ZeroDivisionError");
    expect_error(em_floor_divide(I64(7, -7), I64(0, 1)), EM_ERR_INVALID, "ZeroDivisionError");
    expect_error(em_remainder_scalar(I32(7), 0), EM_ERR_INVALID, "ZeroDivisionError");
    /* the divisor is converted to the dtype first: 256 is u8 0, 2**32 is i32 0 */
    expect_error(em_floor_divide_scalar(U8(1), 256), EM_ERR_INVALID, "ZeroDivisionError");
    expect_error(em_remainder_scalar(U8(1), 256), EM_ERR_INVALID, "ZeroDivisionError");
    expect_error(em_floor_divide_scalar(I32(1), 0x1p32), EM_ERR_INVALID, "ZeroDivisionError");
    EXPECT_INTS(em_floor_divide_scalar(U8(1), 1000), EM_U8, 0);
    EXPECT_INTS(em_remainder_scalar(U8(1), 1000), EM_U8, 1);
    expect_error(em_remainder(U8(7, 1), U8(2, 0)), EM_ERR_INVALID, "ZeroDivisionError");
    expect_error(em_floor_divide(I64(7, -7), em_expand(I64(0), EM_SHAPE(2))), EM_ERR_INVALID,
                 "ZeroDivisionError");
    /* no element is divided when the result is empty: no error, as PyTorch */
    em_tensor *none = em_zeros(g_ctx, EM_I64, EM_SHAPE(2, 0, 3));
    em_tensor *empty[4] = {
        em_floor_divide_scalar(none, 0), em_remainder_scalar(none, 0),
        em_floor_divide(em_zeros(g_ctx, EM_I64, EM_SHAPE(0, 1)), em_zeros(g_ctx, EM_I64, EM_SHAPE(1, 3))),
        em_remainder(em_zeros(g_ctx, EM_U8, EM_SHAPE(0, 1)), em_zeros(g_ctx, EM_U8, EM_SHAPE(1, 3))),
    };
    for (int k = 0; k < 4; k++) {
        assert_non_null(empty[k]);
        assert_int_equal(em_tensor_dtype(empty[k]), k < 3 ? EM_I64 : EM_U8);
        assert_int_equal(em_tensor_ndim(empty[k]), k < 2 ? 3 : 2);
        assert_int_equal(em_tensor_shape(empty[k])[k < 2 ? 1 : 0], 0);
        assert_int_equal(em_tensor_shape(empty[k])[k < 2 ? 2 : 1], 3);
    }
    assert_int_equal(em_context_status(g_ctx), EM_OK);
    expect_error(em_floor_divide(BOOLS(1), BOOLS(1)), EM_ERR_DTYPE, "bool");
    expect_error(em_remainder(I64(1), I32(1)), EM_ERR_DTYPE, "dtypes differ");
    /* broadcasting */
    em_tensor *q = em_floor_divide(ints(EM_I64, 2, (const int64_t[]){2, 2}, (const int64_t[]){9, -9, 10, 11}),
                                   I64(4, -3));
    EXPECT_INTS(q, EM_I64, 2, 3, 2, -4);
}

/* ------------------------------------------------------------------ reductions */

static void test_sum_mean(void **state)
{
    (void)state;
    EXPECT_INTS(em_sum(BOOLS(1, 1, 0)), EM_I64, 2);
    EXPECT_INTS(em_sum(U8(200, 100)), EM_I64, 300);
    EXPECT_INTS(em_sum(I32(INT32_MAX, INT32_MAX)), EM_I64, 2 * (int64_t)INT32_MAX);
    EXPECT_INTS(em_sum(I64((INT64_C(1) << 62) + 1, 1)), EM_I64, (INT64_C(1) << 62) + 2);
    em_tensor *m = ints(EM_U8, 2, (const int64_t[]){2, 2}, (const int64_t[]){1, 2, 3, 4});
    em_tensor *s = em_sum_dims(m, 1, (const int[]){1}, true);
    EXPECT_INTS(s, EM_I64, 3, 7);
    assert_int_equal(em_tensor_ndim(s), 2);
    assert_int_equal(em_tensor_size(s, 1), 1);
    EXPECT_INTS(em_sum_dims(BOOLS(1, 0, 1), 1, (const int[]){0}, false), EM_I64, 2);
    /* no dims: every dim, as x.sum(dim=[]) */
    EXPECT_INTS(em_sum_dims(I64(1, 2, 3), 0, NULL, false), EM_I64, 6);
    em_tensor *x = from_doubles(EM_F32, EM_SHAPE(2, 2), (double[]){1, 2, 3, 4});
    em_tensor_set_requires_grad(x, true);
    em_tensor *all = em_sum_dims(x, 0, NULL, false);
    EXPECT_FLOATS(all, EM_F32, 10);
    assert_int_equal(em_tensor_ndim(all), 0);
    assert_string_equal(em_tensor_grad_fn_name(all), "SumBackward1");
    em_tensor *kept = em_sum_dims(x, 0, NULL, true);
    assert_int_equal(em_tensor_ndim(kept), 2);
    assert_int_equal(em_tensor_size(kept, 0), 1);
    em_tensor *mean = em_mean_dims(x, 0, NULL, false);
    EXPECT_FLOATS(mean, EM_F32, 2.5);
    assert_string_equal(em_tensor_grad_fn_name(mean), "MeanBackward1");
    assert_int_equal(em_backward(mean), EM_OK);
    EXPECT_FLOATS(em_grad(x), EM_F32, 0.25, 0.25, 0.25, 0.25);
    EXPECT_FLOATS(em_sum_dims(em_scalar(g_ctx, EM_F32, 5), 0, NULL, false), EM_F32, 5);
    /* the mean of integers is an error, as in PyTorch */
    expect_error(em_mean(I64(1, 2)), EM_ERR_DTYPE, "mean(): could not infer output dtype");
    expect_error(em_mean_dims(BOOLS(1), 0, NULL, false), EM_ERR_DTYPE, "Got: bool");
}

/* ------------------------------------------------------------------ autograd and dtypes */

static void test_no_grad_for_non_float(void **state)
{
    (void)state;
    em_tensor *x = F32(1.5, -0.5, 2.0);
    em_tensor_set_requires_grad(x, true);
    /* the defect: to(bool) of a tensor requiring grad was a bool tensor with a grad_fn */
    em_tensor *mask = em_to_dtype(x, EM_BOOL);
    assert_false(em_tensor_requires_grad(mask));
    assert_null(em_tensor_grad_fn_name(mask));
    char *str = em_tensor_str(mask);
    assert_non_null(strstr(str, "tensor([True, True, True]"));   /* (a device suffix off the cpu) */
    assert_null(strstr(str, "grad"));
    free(str);
    em_tensor *l = em_to_dtype(x, EM_I64);
    assert_false(em_tensor_requires_grad(l));
    assert_string_equal(em_tensor_grad_fn_name(em_to_dtype(x, EM_F64)), "ToCopyBackward0");
    assert_false(em_tensor_requires_grad(em_gt_scalar(x, 0)));
    /* ... and used as a mask, backward works (PyTorch: x.grad = [2, 2, 2]) */
    em_tensor *y = em_add(em_masked_fill(x, mask, 0.0), em_mul_scalar(x, 2));
    assert_int_equal(em_backward(em_sum(y)), EM_OK);
    EXPECT_FLOATS(em_grad(x), EM_F32, 2, 2, 2);
    /* copy_ of a tensor requiring grad into an integer tensor records nothing */
    em_tensor *z = em_zeros(g_ctx, EM_I64, EM_SHAPE(3));
    assert_int_equal(em_copy_(z, x), EM_OK);
    assert_false(em_tensor_requires_grad(z));
    EXPECT_INTS(z, EM_I64, 1, 0, 2);
    /* integers cannot require grad */
    expect_status(em_tensor_set_requires_grad(I64(1), true), EM_ERR_AUTOGRAD, "floating point");
    /* floor_divide is not differentiable: grad_fn NotImplemented, backward fails, .grad kept */
    em_tensor *q = em_floor_divide_scalar(x, 2);
    assert_string_equal(em_tensor_grad_fn_name(q), "NotImplemented");
    expect_status(em_backward(em_sum(q)), EM_ERR_AUTOGRAD,
                  "derivative for aten::floor_divide is not implemented");
    EXPECT_FLOATS(em_grad(x), EM_F32, 2, 2, 2);
    assert_string_equal(em_tensor_grad_fn_name(em_floor_divide(x, x)), "NotImplemented");
    assert_ok_ctx();
}

int main(void)
{
    int rc = test_backend_setup();
    if (rc >= 0)
        return rc;
    const struct CMUnitTest tests[] = {
        EM_TEST(test_creation),        EM_TEST(test_arange),
        EM_TEST(test_casts),           EM_TEST(test_item),
        EM_TEST(test_compare_select),  EM_TEST(test_int_arith),
        EM_TEST(test_promotion),       EM_TEST(test_floor_divide_remainder),
        EM_TEST(test_sum_mean),        EM_TEST(test_no_grad_for_non_float),
    };
    char name[64];
    snprintf(name, sizeof name, "dtypes on %s", test_backend_name());
    rc = _cmocka_run_group_tests(name, tests, sizeof tests / sizeof tests[0], NULL, NULL);
    em_context_free(g_ctx);
    return rc;
}
