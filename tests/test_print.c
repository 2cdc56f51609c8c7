/* tests/test_print.c — em_tensor_str against PyTorch's own printing, byte for byte, for the
 * cases in tests/data/print_reference.txt (made by tests/data/gen_print.py): integral and
 * fixed and scientific formats, NaN/inf, summaries, line wrapping, empty tensors, bool,
 * integer dtypes (i64, i32, u8: widths, negative numbers, int64 extremes, 0-dim, empty,
 * summaries), dtype and requires_grad suffixes. Also the device suffix off the cpu and
 * print options. */
#include "backend_harness.h"

/* An integer tensor from exact values (the reference file writes them as integers). */
static em_tensor *from_ints(em_dtype dt, int nd, const int64_t *shape, const long long *v, int64_t n)
{
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

static void test_print_reference(void **state)
{
    (void)state;
    char path[4096];
    const char *dir = getenv("EMBER_TEST_DATA_DIR");
    snprintf(path, sizeof path, "%s/print_reference.txt", dir ? dir : "tests/data");
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s", path);
    char dtn[8];
    int rg, nd, ncases = 0, failures = 0;
    while (fscanf(f, " case %7s %d %d", dtn, &rg, &nd) == 3) {
        int64_t shape[EM_MAX_DIMS], n = 1;
        for (int d = 0; d < nd; d++) {
            long long s;
            assert_int_equal(fscanf(f, "%lld", &s), 1);
            shape[d] = s;
            n *= s;
        }
        bool integer = !strcmp(dtn, "i64") || !strcmp(dtn, "i32") || !strcmp(dtn, "u8");
        double *v = malloc(sizeof(double) * (size_t)(n + 1));
        long long *iv = malloc(sizeof(long long) * (size_t)(n + 1));
        for (int64_t i = 0; i < n; i++) {
            if (integer)
                assert_int_equal(fscanf(f, "%lld", &iv[i]), 1);
            else
                assert_int_equal(fscanf(f, "%lf", &v[i]), 1);
        }
        int nlines;
        assert_int_equal(fscanf(f, " lines %d", &nlines), 1);
        fgetc(f);   /* the newline after the count */
        size_t cap = 1 << 16, len = 0;
        char *want = malloc(cap);
        want[0] = 0;
        for (int l = 0; l < nlines; l++) {
            char line[4096];
            if (!fgets(line, sizeof line, f))
                fail_msg("reference file truncated");
            if (l == nlines - 1)
                line[strcspn(line, "\n")] = 0;
            size_t ll = strlen(line);
            memcpy(want + len, line, ll + 1);
            len += ll;
        }
        em_dtype dt = !strcmp(dtn, "f32")   ? EM_F32
                      : !strcmp(dtn, "f64") ? EM_F64
                      : !strcmp(dtn, "i64") ? EM_I64
                      : !strcmp(dtn, "i32") ? EM_I32
                      : !strcmp(dtn, "u8")  ? EM_U8
                                            : EM_BOOL;
        em_tensor *t = integer ? from_ints(dt, nd, shape, iv, n) : from_doubles(dt, nd, shape, v);
        if (rg)
            em_tensor_set_requires_grad(t, true);
        char *got = em_tensor_str(t);
        assert_non_null(got);
        if (strcmp(got, want)) {
            print_message("# case %d: got\n%s\n# want\n%s\n", ncases, got, want);
            failures++;
        }
        free(got);
        free(want);
        free(v);
        free(iv);
        ncases++;
    }
    fclose(f);
    assert_true(ncases >= 59);
    assert_int_equal(failures, 0);
}

static void test_print_suffixes_and_options(void **state)
{
    (void)state;
    em_tensor *x = em_ones(g_ctx, EM_F32, EM_SHAPE(2));
    em_tensor_set_requires_grad(x, true);
    char *s = em_tensor_str(em_add_scalar(x, 1));
    bool cpu = !strcmp(em_context_backend(g_ctx), "cpu");
    char want[256];
    if (cpu)
        snprintf(want, sizeof want, "tensor([2., 2.], grad_fn=<AddBackward0>)");
    else
        snprintf(want, sizeof want, "tensor([2., 2.], device='%s:%d', grad_fn=<AddBackward0>)",
                 em_context_backend(g_ctx), em_context_device_index(g_ctx));
    assert_string_equal(s, want);
    free(s);
    em_set_printoptions(g_ctx, 2, -1, -1, -1);
    s = em_tensor_str(em_full(g_ctx, EM_F64, EM_SHAPE(1), 0.125));
    assert_non_null(strstr(s, "[0.12]"));
    free(s);
    em_set_printoptions(g_ctx, 4, -1, -1, -1);
    assert_null(em_tensor_str(NULL));
}

/* Print options at their bounds: every digit of a long precision (the exponent kept), any
 * edgeitems (no overflow of 2 * edgeitems), and a precision past the bound refused with the
 * setting kept. References from PyTorch 1.13's set_printoptions. */
static void test_print_option_bounds(void **state)
{
    (void)state;
    const double v[2] = {1e-10, 1.0};
    em_tensor *x = em_tensor_from_data(g_ctx, EM_F64, EM_SHAPE(2), v);
    em_set_printoptions(g_ctx, 60, -1, -1, -1);
    char *s = em_tensor_str(x);
    const char *want = "tensor([1.000000000000000036432197315497741579165547065599639608990401e-10,\n"
                       "        1.000000000000000000000000000000000000000000000000000000000000e+00],\n"
                       "       dtype=torch.float64)";
    if (strcmp(em_context_backend(g_ctx), "cpu") == 0)
        assert_string_equal(s, want);
    else   /* the device suffix changes the layout of the last line only */
        assert_non_null(strstr(s, "1.000000000000000000000000000000000000000000000000000000000000e+00]"));
    free(s);
    /* the largest precision: 1074 decimals, and the exponent still there */
    em_set_printoptions(g_ctx, 1074, -1, -1, -1);
    const double w[2] = {1.7976931348623157e308, 1.0};
    s = em_tensor_str(em_tensor_from_data(g_ctx, EM_F64, EM_SHAPE(2), w));
    assert_non_null(s);
    assert_non_null(strstr(s, "e+308"));
    assert_non_null(strstr(s, "e+00]"));
    assert_true(strlen(s) > 2 * 1074);
    free(s);
    assert_int_equal(em_context_status(g_ctx), EM_OK);
    em_set_printoptions(g_ctx, 1075, -1, -1, -1);
    assert_int_equal(em_context_status(g_ctx), EM_ERR_INVALID);
    assert_non_null(strstr(em_context_error(g_ctx), "precision 1075"));
    em_context_clear_error(g_ctx);
    em_set_printoptions(g_ctx, 2, -1, -1, -1);
    em_set_printoptions(g_ctx, 100000, -1, -1, -1);   /* refused: 2 is kept */
    em_context_clear_error(g_ctx);
    s = em_tensor_str(em_full(g_ctx, EM_F64, EM_SHAPE(1), 0.125));
    assert_non_null(strstr(s, "[0.12]"));
    free(s);
    /* edgeitems of 2^30 and INT_MAX with a threshold that asks for a summary: 2 * edgeitems
     * is more than any size, so nothing is cut (was: tensor([])) */
    em_set_printoptions(g_ctx, 4, 3, 1 << 30, -1);
    const float f[5] = {1, 2, 3, 4, 5};
    s = em_tensor_str(em_tensor_from_data(g_ctx, EM_F32, EM_SHAPE(5), f));
    assert_non_null(strstr(s, "tensor([1., 2., 3., 4., 5.]"));
    free(s);
    em_set_printoptions(g_ctx, 4, 3, 2147483647, -1);
    const int64_t iv[10] = {1, 2, 3, 4, 5, 1, 2, 3, 4, 5};
    s = em_tensor_str(em_tensor_from_data(g_ctx, EM_I64, EM_SHAPE(2, 5), iv));
    assert_non_null(strstr(s, "tensor([[1, 2, 3, 4, 5],\n        [1, 2, 3, 4, 5]]"));
    free(s);
    em_set_printoptions(g_ctx, 4, 1000, 3, 80);
    assert_int_equal(em_context_status(g_ctx), EM_OK);
}

int main(void)
{
    /* The reference text is PyTorch's for the backend this suite is built for (cpu: no
     * device suffix). EMBER_DEVICE would move every context to another backend, as
     * tools/gpu-check.sh once set it for the whole test suite: not this one's. */
    unsetenv("EMBER_DEVICE");
    int rc = test_backend_setup();
    if (rc >= 0)
        return rc;
    const struct CMUnitTest tests[] = {
        EM_TEST(test_print_reference),
        EM_TEST(test_print_suffixes_and_options),
        EM_TEST(test_print_option_bounds),
    };
    rc = _cmocka_run_group_tests("print", tests, sizeof tests / sizeof tests[0], NULL, NULL);
    em_context_free(g_ctx);
    return rc;
}
