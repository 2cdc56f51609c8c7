/* tests/test_plugin_kit.c — the plugin kit (<ember/plugin_kit.h>), which the first-party
 * backends and the template share with vendors: dtype names, sizes and lists; config values
 * and the plain-integer parser at its edges; gemm's argument checks with their messages
 * (through the tests' minimal host, which keeps the last message); the strided walk's
 * offsets over broadcast and transposed views against offsets computed here. */
#include "harness.h"

#include <ember/plugin_kit.h>

#include "test_host.h"   /* g_host: errors land in g_msg */

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ dtypes, config */

static void test_dtypes(void **state)
{
    (void)state;
    static const struct { em_dtype dt; const char *name; size_t size; int fl; } want[] = {
        {EM_F32, "f32", 4, 1}, {EM_F64, "f64", 8, 1}, {EM_BOOL, "bool", 1, 0},
        {EM_I64, "i64", 8, 0}, {EM_I32, "i32", 4, 0},  {EM_U8, "u8", 1, 0}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_string_equal(emk_dtype_name(want[i].dt), want[i].name);
        assert_int_equal(emk_dtype_size(want[i].dt), want[i].size);
        assert_int_equal(emk_dtype_is_float(want[i].dt), want[i].fl);
    }
    assert_string_equal(emk_dtype_name(99), "(invalid dtype)");
    assert_int_equal(emk_dtype_size(-1), 0);
    char buf[64];
    assert_string_equal(emk_dtype_list(EM_DTYPE_BIT(EM_F32) | EM_DTYPE_BIT(EM_F64), buf, sizeof buf),
                        "f32, f64");
    assert_string_equal(emk_dtype_list(EM_DTYPE_BIT(EM_U8) | EM_DTYPE_BIT(EM_BOOL) |
                                       EM_DTYPE_BIT(30), buf, sizeof buf), "bool, u8");
    assert_string_equal(emk_dtype_list(0, buf, sizeof buf), "");
    char tiny[6];   /* room for "f32" only: never more than fits */
    assert_string_equal(emk_dtype_list(EM_DTYPE_BIT(EM_F32) | EM_DTYPE_BIT(EM_F64), tiny,
                                       sizeof tiny), "f32");
}

static void test_config_values(void **state)
{
    (void)state;
    const em_config_kv kv[] = {{"threads", "2"}, {"device", "1"}, {"threads", "4"}};
    assert_string_equal(emk_config_value(kv, 3, "threads"), "4");   /* the last one */
    assert_string_equal(emk_config_value(kv, 3, "device"), "1");
    assert_null(emk_config_value(kv, 3, "thread"));
    assert_null(emk_config_value(NULL, 0, "threads"));
    assert_null(emk_config_value(kv, 1, "device"));   /* only the first n */
}

static void test_parse_uint(void **state)
{
    (void)state;
    unsigned long long v = 77;
    assert_int_equal(emk_parse_uint("0", 10, &v), 1);
    assert_int_equal(v, 0);
    assert_int_equal(emk_parse_uint("1023", 1023, &v), 1);
    assert_int_equal(v, 1023);
    assert_int_equal(emk_parse_uint("007", 10, &v), 1);
    assert_int_equal(v, 7);
    v = 77;
    assert_int_equal(emk_parse_uint("1024", 1023, &v), -1);
    assert_int_equal(emk_parse_uint("99999999999999999999999999", 1023, &v), -1);
    assert_int_equal(emk_parse_uint("5", 4, &v), -1);
    assert_int_equal(v, 77);   /* untouched unless it parsed */
    const char *nan[] = {"", "-1", "+1", " 1", "1 ", "0x10", "1.5", "12k", "99999999999x"};
    for (size_t i = 0; i < sizeof nan / sizeof nan[0]; i++)
        assert_int_equal(emk_parse_uint(nan[i], 1023, &v), 0);
    assert_int_equal(emk_parse_uint(NULL, 1023, &v), 0);
    assert_int_equal(emk_parse_uint("18446744073709551615", ULLONG_MAX, &v), 1);
    assert_true(v == ULLONG_MAX);
    assert_int_equal(emk_parse_uint("18446744073709551616", ULLONG_MAX, &v), -1);
    assert_int_equal(emk_parse_uint("3", 0, &v), -1);
    assert_int_equal(emk_parse_uint("0", 0, &v), 1);
}

/* ------------------------------------------------------------------ gemm checks */

static em_gemm_args good_gemm(void)
{
    static float a[64], b[64], c[64];
    em_gemm_args g = {.struct_size = sizeof g, .dtype = EM_F32, .m = 3, .n = 4, .k = 5,
                      .batch = 1, .alpha = 1, .beta = 0, .a = a, .lda = 5, .b = b, .ldb = 4,
                      .c = c, .ldc = 4};
    return g;
}

/* The check's status, its message in g_msg ("" when EM_OK). */
static em_status check(const em_gemm_args *g, int *empty)
{
    g_msg[0] = 0;
    return emk_gemm_check(&g_host, NULL, "acme", EM_DTYPE_BIT(EM_F32) | EM_DTYPE_BIT(EM_F64), g,
                          empty);
}

static void test_gemm_check(void **state)
{
    (void)state;
    int empty = -1;
    em_gemm_args g = good_gemm();
    assert_int_equal(check(&g, &empty), EM_OK);
    assert_int_equal(empty, 0);
    assert_string_equal(g_msg, "");

    assert_int_equal(check(NULL, &empty), EM_ERR_INVALID);
    assert_string_equal(g_msg, "gemm: no arguments");

    g = good_gemm();
    g.dtype = EM_I64;
    assert_int_equal(check(&g, &empty), EM_ERR_UNSUPPORTED);
    assert_string_equal(g_msg, "gemm: dtype i64 is not supported by the acme backend (f32, f64 are)");
    g.dtype = 40;
    assert_int_equal(check(&g, &empty), EM_ERR_UNSUPPORTED);

    g = good_gemm();
    g.k = -1;
    assert_int_equal(check(&g, &empty), EM_ERR_INVALID);
    assert_string_equal(g_msg, "gemm: negative size (m 3, n 4, k -1, batch 1)");

    /* nothing to compute: OK and empty, whatever the rest says */
    g = good_gemm();
    g.n = 0;
    g.a = NULL;
    assert_int_equal(check(&g, &empty), EM_OK);
    assert_int_equal(empty, 1);

    g = good_gemm();
    g.lda = 4;
    assert_int_equal(check(&g, &empty), EM_ERR_INVALID);
    assert_string_equal(g_msg, "gemm: lda 4 is less than the row width 5");
    g = good_gemm();
    g.trans_b = 1;   /* B stored n x k: rows of k = 5 */
    assert_int_equal(check(&g, &empty), EM_ERR_INVALID);
    assert_string_equal(g_msg, "gemm: ldb 4 is less than the row width 5");
    g = good_gemm();
    g.ldc = 3;
    assert_int_equal(check(&g, &empty), EM_ERR_INVALID);
    assert_string_equal(g_msg, "gemm: ldc 3 is less than the row width 4");
    /* a single row may have any leading dimension; k = 0 reads neither A nor B */
    g = good_gemm();
    g.m = 1;     /* A is 1 x 5 and C 1 x 4: single rows */
    g.ldc = 1;
    g.lda = 1;
    assert_int_equal(check(&g, &empty), EM_OK);
    g.trans_a = 1;   /* now A is stored 5 x 1: rows of one element, still fine */
    assert_int_equal(check(&g, &empty), EM_OK);
    g.m = 2;         /* stored 5 x 2: lda 1 is too small */
    g.ldc = 4;
    assert_int_equal(check(&g, &empty), EM_ERR_INVALID);
    assert_string_equal(g_msg, "gemm: lda 1 is less than the row width 2");
    g = good_gemm();
    g.k = 0;
    g.beta = 2;
    g.lda = g.ldb = 0;
    g.a = g.b = NULL;
    assert_int_equal(check(&g, &empty), EM_OK);
    assert_int_equal(empty, 0);
    g = good_gemm();
    g.b = NULL;
    assert_int_equal(check(&g, &empty), EM_ERR_INVALID);
    assert_string_equal(g_msg, "gemm: a buffer is missing");
    g = good_gemm();
    g.k = 0;
    g.c = NULL;
    assert_int_equal(check(&g, &empty), EM_ERR_INVALID);
    assert_string_equal(g_msg, "gemm: a buffer is missing");
}

/* ------------------------------------------------------------------ the walk */

/* Offset of element lin (row-major over shape) in a view. */
static int64_t offset_of(int nd, const int64_t *shape, int64_t off, const int64_t *strides,
                         int64_t lin)
{
    for (int d = nd - 1; d >= 0; d--) {
        off += (lin % shape[d]) * strides[d];
        lin /= shape[d];
    }
    return off;
}

static void test_walk(void **state)
{
    (void)state;
    /* out (2, 3, 4) contiguous at offset 7; in[0] a row broadcast over dims 0, 1 at offset
     * 3; in[1] a transposed view (strides of a (4, 3, 2) tensor reversed) at offset 11 */
    em_kview out = {.struct_size = sizeof out, .dtype = EM_F32, .offset = 7, .ndim = 3,
                    .shape = {2, 3, 4}, .strides = {12, 4, 1}};
    em_kview in0 = {.struct_size = sizeof in0, .dtype = EM_F32, .offset = 3, .ndim = 3,
                    .shape = {2, 3, 4}, .strides = {0, 0, 1}};
    em_kview in1 = {.struct_size = sizeof in1, .dtype = EM_F32, .offset = 11, .ndim = 3,
                    .shape = {2, 3, 4}, .strides = {1, 2, 6}};
    em_kargs a;
    memset(&a, 0, sizeof a);
    a.struct_size = sizeof a;
    a.out = &out;
    a.in[0] = &in0;
    a.in[1] = &in1;
    emk_walk w;
    emk_walk_kargs(&w, &a, 2);
    assert_int_equal(w.nviews, 3);
    int64_t n = 0;
    do {
        assert_int_equal(w.off[0], offset_of(3, out.shape, out.offset, out.strides, n));
        assert_int_equal(w.off[1], offset_of(3, out.shape, in0.offset, in0.strides, n));
        assert_int_equal(w.off[2], offset_of(3, out.shape, in1.offset, in1.strides, n));
        n++;
    } while (emk_walk_next(&w));
    assert_int_equal(n, 24);
    /* a single element; and no more views than the walk holds */
    int64_t one = 1, st1 = 1;
    emk_walk_start(&w, 1, &one);
    for (int i = 0; i < EMK_WALK_VIEWS + 2; i++)
        emk_walk_view(&w, i, &st1);
    assert_int_equal(w.nviews, EMK_WALK_VIEWS);
    assert_int_equal(w.off[EMK_WALK_VIEWS - 1], EMK_WALK_VIEWS - 1);
    assert_int_equal(emk_walk_next(&w), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dtypes),
        cmocka_unit_test(test_config_values),
        cmocka_unit_test(test_parse_uint),
        cmocka_unit_test(test_gemm_check),
        cmocka_unit_test(test_walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
