/* tests/test_data.c — <ember/data.h>: IDX files (gzip and plain) read back exactly, their
 * malformations reported as errors, Fashion-MNIST's test set where the dataset package is
 * installed, and mini-batches: in order, shuffled (each epoch a permutation, rows of all
 * tensors together, the same order as on the cpu backend for a seed), the last partial batch
 * kept or dropped. Built once per backend. */
#include "backend_harness.h"
#include <unistd.h>
#include <zlib.h>

#define FMNIST "/usr/share/datasets/fashion-mnist"

static char g_path[64];

/* Writes bytes to a fresh temporary file, gzip-compressed or not; its path in g_path. */
static const char *write_file(const unsigned char *bytes, size_t n, bool gz)
{
    snprintf(g_path, sizeof g_path, "/tmp/ember-idx-XXXXXX");
    int fd = mkstemp(g_path);
    assert_true(fd >= 0);
    if (gz) {
        gzFile f = gzdopen(fd, "wb");
        assert_non_null(f);
        assert_int_equal(gzwrite(f, bytes, (unsigned)n), (int)n);
        assert_int_equal(gzclose(f), Z_OK);
    } else {
        assert_int_equal(write(fd, bytes, n), (ssize_t)n);
        close(fd);
    }
    return g_path;
}

static const unsigned char idx3[] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2,
                                     0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255};

static void test_idx(void **state)
{
    (void)state;
    for (int gz = 0; gz < 2; gz++) {
        const char *p = write_file(idx3, sizeof idx3, gz);
        em_tensor *t = em_read_idx(g_ctx, p, EM_U8);
        assert_non_null(t);
        assert_int_equal(em_tensor_dtype(t), EM_U8);
        assert_int_equal(em_tensor_ndim(t), 3);
        assert_int_equal(em_tensor_size(t, 0), 3);
        assert_int_equal(em_tensor_size(t, 1), 2);
        assert_int_equal(em_tensor_size(t, 2), 2);
        unsigned char got[12];
        assert_int_equal(em_tensor_to_host(t, got, sizeof got), EM_OK);
        assert_memory_equal(got, idx3 + 16, 12);
        em_tensor *l = em_read_idx(g_ctx, p, EM_I64);
        assert_int_equal(em_tensor_dtype(l), EM_I64);
        int64_t gl[12];
        assert_int_equal(em_tensor_to_host(l, gl, sizeof gl), EM_OK);
        for (int i = 0; i < 12; i++)
            assert_int_equal(gl[i], idx3[16 + i]);
        unlink(p);
        assert_ok_ctx();
    }
}

static void expect_idx_error(const unsigned char *bytes, size_t n, em_status st, const char *msg)
{
    const char *p = write_file(bytes, n, true);
    assert_null(em_read_idx(g_ctx, p, EM_U8));
    assert_int_equal(em_context_status(g_ctx), st);
    assert_non_null(strstr(em_context_error(g_ctx), msg));
    assert_non_null(strstr(em_context_error(g_ctx), p));
    em_context_clear_error(g_ctx);
    unlink(p);
}

static void test_idx_errors(void **state)
{
    (void)state;
    assert_null(em_read_idx(g_ctx, "/nonexistent/train-images-idx3-ubyte.gz", EM_U8));
    assert_int_equal(em_context_status(g_ctx), EM_ERR_IO);
    assert_non_null(strstr(em_context_error(g_ctx), "/nonexistent/train-images-idx3-ubyte.gz"));
    em_context_clear_error(g_ctx);
    unsigned char b[sizeof idx3];
    memcpy(b, idx3, sizeof b);
    b[0] = 1;
    expect_idx_error(b, sizeof b, EM_ERR_IO, "bad magic number");
    memcpy(b, idx3, sizeof b);
    b[2] = 0x0D;   /* float elements */
    expect_idx_error(b, sizeof b, EM_ERR_UNSUPPORTED, "not unsigned byte");
    expect_idx_error(idx3, sizeof idx3 - 1, EM_ERR_IO, "data shorter");
    unsigned char longer[sizeof idx3 + 1];
    memcpy(longer, idx3, sizeof idx3);
    longer[sizeof idx3] = 7;
    expect_idx_error(longer, sizeof longer, EM_ERR_IO, "data longer");
    expect_idx_error(idx3, 10, EM_ERR_IO, "truncated header");
    expect_idx_error(idx3, 2, EM_ERR_IO, "truncated header");
    /* no data, but the sizes past the zero have a product no stride can hold */
    const unsigned char zero_big[] = {0, 0, 8, 3, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,
                                      0xff, 0xff, 0xff, 0xff};
    expect_idx_error(zero_big, sizeof zero_big, EM_ERR_IO,
                     "sizes [0, 4294967295, 4294967295] too large");
}

static void test_fashion_mnist(void **state)
{
    (void)state;
    if (access(FMNIST "/t10k-labels-idx1-ubyte.gz", R_OK) != 0) {
        printf("# the Debian package dataset-fashion-mnist is not installed: check skipped\n");
        return;
    }
    em_tensor *y = em_read_idx(g_ctx, FMNIST "/t10k-labels-idx1-ubyte.gz", EM_I64);
    em_tensor *x = em_read_idx(g_ctx, FMNIST "/t10k-images-idx3-ubyte.gz", EM_U8);
    assert_ok_ctx();
    assert_int_equal(em_tensor_ndim(y), 1);
    assert_int_equal(em_tensor_size(y, 0), 10000);
    assert_int_equal(em_tensor_ndim(x), 3);
    assert_int_equal(em_tensor_size(x, 0), 10000);
    assert_int_equal(em_tensor_size(x, 1), 28);
    assert_int_equal(em_tensor_size(x, 2), 28);
    int64_t *l = malloc(sizeof *l * 10000);
    assert_int_equal(em_tensor_to_host(y, l, sizeof *l * 10000), EM_OK);
    static const int64_t first[10] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
    assert_memory_equal(l, first, sizeof first);
    int count[10] = {0};
    for (int i = 0; i < 10000; i++)
        count[l[i]]++;
    for (int c = 0; c < 10; c++)
        assert_int_equal(count[c], 1000);
    free(l);
    /* the first image's pixel sum (Python's gzip module on the same file) */
    assert_int_equal(em_item_i64(em_sum(em_select(x, 0, 0))), 33456);
}

/* The y values (sample ids) of every batch of epoch e, concatenated; the batch sizes too. */
static int collect(em_batches *b, int64_t e, int64_t *ids, int64_t *sizes)
{
    assert_int_equal(em_batches_epoch(b, e), EM_OK);
    em_tensor *out[2];
    int k = 0, nb = 0;
    while (em_batches_next(b, out)) {
        int64_t n = em_tensor_size(out[1], 0);
        assert_int_equal(em_tensor_size(out[0], 0), n);
        double rows[40];
        assert_int_equal(em_tensor_to_host(em_to_dtype(out[0], EM_F64), rows,
                                           sizeof(double) * (size_t)(2 * n)), EM_OK);
        assert_int_equal(em_tensor_to_host(out[1], ids + k, sizeof *ids * (size_t)n), EM_OK);
        for (int64_t i = 0; i < n; i++) {   /* x's row i is (10 id, 10 id + 1) */
            assert_true(rows[2 * i] == 10.0 * (double)ids[k + i]);
            assert_true(rows[2 * i + 1] == 10.0 * (double)ids[k + i] + 1);
        }
        sizes[nb++] = n;
        k += (int)n;
        em_tensor_free(out[0]);
        em_tensor_free(out[1]);
    }
    assert_ok_ctx();
    return nb;
}

static em_batches *make(em_context *ctx, int64_t bs, bool shuffle, uint64_t seed, bool drop)
{
    double xv[20];
    for (int i = 0; i < 20; i++)
        xv[i] = 10 * (i / 2) + i % 2;
    em_tensor *x = em_tensor_from_data(ctx, EM_F64, EM_SHAPE(10, 2), xv);
    em_tensor *x32 = em_to_dtype(x, EM_F32);
    em_tensor *y = em_arange(ctx, EM_I64, 0, 10, 1);
    em_batches *b = em_batches_create((em_tensor *[]){x32, y}, 2, bs, shuffle, seed, drop);
    em_tensor_free(x);
    em_tensor_free(x32);   /* the iterator holds its own references */
    em_tensor_free(y);
    return b;
}

static void test_batches(void **state)
{
    (void)state;
    int64_t ids[10], sizes[10];
    em_batches *b = make(g_ctx, 4, false, 0, false);
    assert_non_null(b);
    assert_int_equal(em_batches_count(b), 3);
    assert_int_equal(collect(b, 0, ids, sizes), 3);
    assert_int_equal(sizes[0], 4);
    assert_int_equal(sizes[2], 2);
    for (int i = 0; i < 10; i++)
        assert_int_equal(ids[i], i);
    em_batches_free(b);
    b = make(g_ctx, 4, false, 0, true);
    assert_int_equal(em_batches_count(b), 2);
    assert_int_equal(collect(b, 0, ids, sizes), 2);
    em_batches_free(b);
    /* shuffled: a permutation per epoch, fixed by (seed, epoch) */
    b = make(g_ctx, 3, true, 42, false);
    int64_t e0[10], e1[10], again[10], cpu0[10];
    assert_int_equal(collect(b, 0, e0, sizes), 4);
    assert_int_equal(sizes[3], 1);
    assert_int_equal(collect(b, 1, e1, sizes), 4);
    assert_int_equal(collect(b, 0, again, sizes), 4);
    assert_memory_equal(e0, again, sizeof e0);
    assert_true(memcmp(e0, e1, sizeof e0) != 0);
    bool seen[10] = {false}, in_order = true;
    for (int i = 0; i < 10; i++) {
        assert_false(seen[e0[i]]);
        seen[e0[i]] = true;
        in_order = in_order && e0[i] == i;
    }
    assert_false(in_order);
    em_batches_free(b);
    /* the same batches as on the cpu backend */
    char why[512];
    em_context *cpu = test_open("cpu", why, sizeof why);
    assert_non_null(cpu);
    em_context *keep = g_ctx;
    g_ctx = cpu;
    b = make(cpu, 3, true, 42, false);
    assert_int_equal(collect(b, 0, cpu0, sizes), 4);
    em_batches_free(b);
    g_ctx = keep;
    em_context_free(cpu);
    assert_memory_equal(e0, cpu0, sizeof e0);
    /* drop_last with a shuffle: 3 batches of 3, one sample left out */
    b = make(g_ctx, 3, true, 42, true);
    assert_int_equal(collect(b, 0, ids, sizes), 3);
    assert_memory_equal(ids, e0, sizeof(int64_t) * 9);
    em_batches_free(b);
}

static void test_batches_errors(void **state)
{
    (void)state;
    assert_null(make(g_ctx, 0, false, 0, false));
    assert_int_equal(em_context_status(g_ctx), EM_ERR_INVALID);
    assert_non_null(strstr(em_context_error(g_ctx), "batch_size=0"));
    em_context_clear_error(g_ctx);
    em_tensor *a = em_zeros(g_ctx, EM_F32, EM_SHAPE(5, 2));
    em_tensor *c = em_zeros(g_ctx, EM_F32, EM_SHAPE(4));
    assert_null(em_batches_create((em_tensor *[]){a, c}, 2, 2, false, 0, false));
    assert_int_equal(em_context_status(g_ctx), EM_ERR_SHAPE);
    assert_non_null(strstr(em_context_error(g_ctx), "Size mismatch"));
    em_context_clear_error(g_ctx);
    assert_null(em_batches_create((em_tensor *[]){a, NULL}, 2, 2, false, 0, false));
    assert_false(em_batches_next(NULL, NULL));
    assert_int_equal(em_batches_count(NULL), -1);
    em_batches_free(NULL);
    assert_ok_ctx();
}

int main(void)
{
    int rc = test_backend_setup();
    if (rc >= 0)
        return rc;
    const struct CMUnitTest tests[] = {
        EM_TEST(test_idx),     EM_TEST(test_idx_errors),     EM_TEST(test_fashion_mnist),
        EM_TEST(test_batches), EM_TEST(test_batches_errors),
    };
    char name[64];
    snprintf(name, sizeof name, "data helpers on %s", test_backend_name());
    rc = _cmocka_run_group_tests(name, tests, sizeof tests / sizeof tests[0], NULL, NULL);
    em_context_free(g_ctx);
    return rc;
}
