/* tests/test_safetensors.c — safetensors checkpoints on the backend under test: round trips
 * of every dtype (0-dim and empty tensors included), non-contiguous tensors, metadata, F16 and
 * BF16 widened to f32, every kind of bad file (crafted bytes) as an error naming the file and
 * the problem, and atomic saves (a failed save leaves the previous file intact). */
#include "backend_harness.h"

#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* the core's allocation-failure hook: the nth allocation from now fails (0: off) */
void em__test_fail_alloc_after(long n);

static char g_dir[512];

static void path_in(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", g_dir, name);
}

/* Write a file: 8-byte LE length of header, header, then data. */
static void write_raw(const char *path, uint64_t hlen, const char *header, size_t header_bytes,
                      const void *data, size_t data_bytes)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    uint8_t l8[8];
    for (int b = 0; b < 8; b++)
        l8[b] = (uint8_t)(hlen >> (8 * b));
    assert_int_equal(fwrite(l8, 1, 8, f), 8);
    if (header_bytes)
        assert_int_equal(fwrite(header, 1, header_bytes, f), header_bytes);
    if (data_bytes)
        assert_int_equal(fwrite(data, 1, data_bytes, f), data_bytes);
    assert_int_equal(fclose(f), 0);
}

static void write_st(const char *path, const char *header, const void *data, size_t data_bytes)
{
    write_raw(path, strlen(header), header, strlen(header), data, data_bytes);
}

static void host_bytes(em_tensor *t, void *dst)
{
    size_t n = (size_t)em_tensor_numel(t) * em_dtype_size(em_tensor_dtype(t));
    assert_int_equal(em_tensor_to_host(t, dst, n), EM_OK);
}

static void test_roundtrip_dtypes(void **state)
{
    (void)state;
    char path[600];
    path_in(path, sizeof path, "all.safetensors");
    float f32[6] = {1.5f, -2.25f, 0.0f, 3.0e38f, -1e-30f, 7.0f};
    double f64[3] = {1.0 / 3.0, -1e300, 2.5e-310};
    uint8_t bl[4] = {1, 0, 0, 1};
    int64_t i64[3] = {INT64_MAX, INT64_MIN, -7};
    int32_t i32[4] = {INT32_MAX, INT32_MIN, 0, 42};
    uint8_t u8[5] = {0, 255, 128, 1, 77};
    double scalar = -0.125;
    em_tensor *ts[8] = {
        em_tensor_from_data(g_ctx, EM_F32, EM_SHAPE(2, 3), f32),
        em_tensor_from_data(g_ctx, EM_F64, EM_SHAPE(3), f64),
        em_tensor_from_data(g_ctx, EM_BOOL, EM_SHAPE(2, 1, 2), bl),
        em_tensor_from_data(g_ctx, EM_I64, EM_SHAPE(3), i64),
        em_tensor_from_data(g_ctx, EM_I32, EM_SHAPE(4, 1), i32),
        em_tensor_from_data(g_ctx, EM_U8, EM_SHAPE(5), u8),
        em_tensor_from_data(g_ctx, EM_F64, EM_SCALAR_SHAPE, &scalar),
        em_zeros(g_ctx, EM_I32, EM_SHAPE(2, 0, 3)),
    };
    const char *names[8] = {"layer.weight", "f64", "mask", "index", "i32", "bytes", "scalar",
                            "empty"};
    const char *meta[] = {"format", "pt", "epoch", "3", "note", "héllo ✓", NULL};
    assert_int_equal(em_save_safetensors(path, names, ts, 8, meta), EM_OK);

    em_safetensors *st = NULL;
    assert_int_equal(em_safetensors_open(g_ctx, path, &st), EM_OK);
    assert_int_equal(em_safetensors_count(st), 8);
    static const char *const want_dt[8] = {"F32", "F64", "BOOL", "I64", "I32", "U8", "F64", "I32"};
    for (int i = 0; i < 8; i++) {
        int k = em_safetensors_find(st, names[i]);
        assert_true(k >= 0);
        assert_string_equal(em_safetensors_name(st, k), names[i]);
        assert_string_equal(em_safetensors_dtype(st, k), want_dt[i]);
        assert_int_equal(em_safetensors_ndim(st, k), em_tensor_ndim(ts[i]));
        for (int d = 0; d < em_tensor_ndim(ts[i]); d++)
            assert_int_equal(em_safetensors_shape(st, k)[d], em_tensor_size(ts[i], d));
        em_tensor *t = em_safetensors_load(st, names[i], g_ctx);
        assert_non_null(t);
        assert_int_equal(em_tensor_dtype(t), em_tensor_dtype(ts[i]));
        assert_int_equal(em_tensor_ndim(t), em_tensor_ndim(ts[i]));
        for (int d = 0; d < em_tensor_ndim(t); d++)
            assert_int_equal(em_tensor_size(t, d), em_tensor_size(ts[i], d));
        uint8_t a[64], b[64];
        memset(a, 0xAA, sizeof a);
        memset(b, 0x55, sizeof b);
        host_bytes(t, a);
        host_bytes(ts[i], b);
        size_t n = (size_t)em_tensor_numel(t) * em_dtype_size(em_tensor_dtype(t));
        assert_memory_equal(a, b, n);
    }
    assert_int_equal(em_safetensors_find(st, "nope"), -1);
    assert_null(em_safetensors_name(st, 8));
    assert_null(em_safetensors_shape(st, -1));
    assert_int_equal(em_safetensors_metadata_count(st), 3);
    assert_string_equal(em_safetensors_metadata(st, "format"), "pt");
    assert_string_equal(em_safetensors_metadata(st, "epoch"), "3");
    assert_string_equal(em_safetensors_metadata(st, "note"), "héllo ✓");
    assert_null(em_safetensors_metadata(st, "missing"));
    assert_non_null(em_safetensors_metadata_key(st, 2));
    assert_null(em_safetensors_metadata_key(st, 3));
    assert_null(em_safetensors_load(st, "nope", g_ctx));
    assert_int_equal(em_context_status(g_ctx), EM_ERR_INVALID);
    assert_non_null(strstr(em_context_error(g_ctx), "nope"));
    em_safetensors_close(st);

    /* no tensors, no metadata: an empty header object */
    assert_int_equal(em_save_safetensors(path, NULL, NULL, 0, NULL), EM_OK);
    assert_int_equal(em_safetensors_open(NULL, path, &st), EM_OK);
    assert_int_equal(em_safetensors_count(st), 0);
    assert_int_equal(em_safetensors_metadata_count(st), 0);
    em_safetensors_close(st);
    unlink(path);
}

/* views are saved as their row-major values */
static void test_noncontiguous(void **state)
{
    (void)state;
    char path[600];
    path_in(path, sizeof path, "views.safetensors");
    float v[12];
    for (int i = 0; i < 12; i++)
        v[i] = (float)i;
    em_tensor *base = em_tensor_from_data(g_ctx, EM_F32, EM_SHAPE(3, 4), v);
    em_tensor *tr = em_transpose(base, 0, 1);                   /* 4x3 */
    em_tensor *sl = em_slice(base, 1, 1, EM_END, 2);            /* columns 1, 3 */
    em_tensor *ex = em_expand(em_slice(base, 0, 2, 3, 1), EM_SHAPE(2, 4));
    assert_false(em_tensor_is_contiguous(tr));
    em_tensor *ts[3] = {tr, sl, ex};
    const char *names[3] = {"t", "s", "e"};
    assert_int_equal(em_save_safetensors(path, names, ts, 3, NULL), EM_OK);
    em_safetensors *st = NULL;
    assert_int_equal(em_safetensors_open(g_ctx, path, &st), EM_OK);
    static const float want_t[12] = {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11};
    static const float want_s[6] = {1, 3, 5, 7, 9, 11};
    static const float want_e[8] = {8, 9, 10, 11, 8, 9, 10, 11};
    const float *want[3] = {want_t, want_s, want_e};
    for (int i = 0; i < 3; i++) {
        em_tensor *t = em_safetensors_load(st, names[i], g_ctx);
        assert_non_null(t);
        float got[12];
        host_bytes(t, got);
        assert_memory_equal(got, want[i], (size_t)em_tensor_numel(t) * 4);
        assert_int_equal(em_tensor_size(t, 0), em_tensor_size(ts[i], 0));
    }
    em_safetensors_close(st);
    unlink(path);
}

/* F16 and BF16 from a crafted file widen exactly to f32; dtypes ember has no type for open
 * but do not load */
static void test_half_types(void **state)
{
    (void)state;
    char path[600];
    path_in(path, sizeof path, "half.safetensors");
    /* F16: 1, -2, 0.5, 65504, 2^-24 (smallest subnormal), -inf, -0 ; BF16: 1, -3.5, 2^100,
     * inf; I8: 1 2 */
    static const uint16_t f16[7] = {0x3C00, 0xC000, 0x3800, 0x7BFF, 0x0001, 0xFC00, 0x8000};
    static const uint16_t bf16[4] = {0x3F80, 0xC060, 0x7180, 0x7F80};
    uint8_t data[14 + 8 + 2];
    memcpy(data, f16, 14);
    memcpy(data + 14, bf16, 8);
    data[22] = 1;
    data[23] = 2;
    write_st(path,
             "{\"h\":{\"dtype\":\"F16\",\"shape\":[7],\"data_offsets\":[0,14]},"
             "\"b\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[14,22]},"
             "\"c\":{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[22,24]}}   ",
             data, sizeof data);
    em_safetensors *st = NULL;
    assert_int_equal(em_safetensors_open(g_ctx, path, &st), EM_OK);
    assert_string_equal(em_safetensors_name(st, 0), "h");   /* buffer order */
    assert_string_equal(em_safetensors_name(st, 2), "c");
    em_tensor *h = em_safetensors_load(st, "h", g_ctx);
    assert_non_null(h);
    assert_int_equal(em_tensor_dtype(h), EM_F32);
    float got[7];
    host_bytes(h, got);
    const float want_h[7] = {1.0f, -2.0f, 0.5f, 65504.0f, 5.9604644775390625e-08f, -INFINITY,
                             -0.0f};
    assert_memory_equal(got, want_h, sizeof want_h);
    em_tensor *b = em_safetensors_load(st, "b", g_ctx);
    assert_non_null(b);
    assert_int_equal(em_tensor_ndim(b), 2);
    host_bytes(b, got);
    const float want_b[4] = {1.0f, -3.5f, 1.2676506002282294e30f, INFINITY};
    assert_memory_equal(got, want_b, sizeof want_b);
    assert_null(em_safetensors_load(st, "c", g_ctx));
    assert_int_equal(em_context_status(g_ctx), EM_ERR_DTYPE);
    assert_non_null(strstr(em_context_error(g_ctx), "I8"));
    em_safetensors_close(st);
    unlink(path);
}

typedef struct bad_case {
    const char *what;
    const char *header;   /* NULL: raw bytes below */
    size_t data_bytes;
    const char *expect;   /* substring of the message */
} bad_case;

static void expect_bad(const char *path, const char *expect, em_status want)
{
    em_context_clear_error(g_ctx);
    em_safetensors *st = (em_safetensors *)(uintptr_t)1;
    em_status s = em_safetensors_open(g_ctx, path, &st);
    if (s != want || !strstr(em_context_error(g_ctx), expect) ||
        !strstr(em_context_error(g_ctx), path))
        fail_msg("%s: got %s '%s', want %s with '%s'", path, em_status_name(s),
                 em_context_error(g_ctx), em_status_name(want), expect);
    assert_null(st);
    assert_string_equal(em_last_error(), em_context_error(g_ctx));
}

static void test_bad_files(void **state)
{
    (void)state;
    static const bad_case cases[] = {
        {"overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "overlaps"},
        {"range", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4,
         "past the data buffer"},
        {"hole", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, "hole"},
        {"lead", "{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "hole"},
        {"tail", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 9,
         "belong to no tensor"},
        {"dtype", "{\"a\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
         "unknown dtype 'F33'"},
        {"count", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "needs 12 bytes"},
        {"ovfl", "{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],"
                 "\"data_offsets\":[0,8]}}", 8, "overflows"},
        {"ovfl2", "{\"a\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],"
                  "\"data_offsets\":[0,8]}}", 8, "shape [4611686018427387904] has too many elements"},
        /* a zero size hides the product of the others, which no stride could hold */
        {"ovfl0", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0,4294967296,4294967296],"
                  "\"data_offsets\":[0,0]}}", 0, "shape [0, 4294967296, 4294967296] has too many"},
        {"dup", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "duplicate"},
        {"utf8", "{\"a\xff\xfe\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
         "not valid JSON"},
        {"meta", "{\"__metadata__\":{\"epoch\":3},"
                 "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "not a string"},
        {"metaobj", "{\"__metadata__\":[\"x\"]}", 0, "not an object"},
        {"real", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.0]}}", 4,
         "data_offsets"},
        {"neg", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}", 0, "shape entry 0"},
        {"negoff", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[-4,0]}}", 0,
         "data_offsets"},
        {"backward", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4,
         "end before"},
        {"dims", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1,
         "dimensions"},
        {"field", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"x\":1}}", 1,
         "unknown field"},
        {"noshape", "{\"a\":{\"dtype\":\"U8\",\"data_offsets\":[0,1]}}", 1, "no shape"},
        {"array", "[1, 2, 3]", 0, "does not start with '{'"},
        {"json", "{\"a\": }", 0, "not valid JSON"},
        {"trailing", "{} x", 0, "not valid JSON"},
        {"nul", "{\"a\\u0000\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
         "not valid JSON"},
    };
    char path[600];
    uint8_t zeros[16] = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        path_in(path, sizeof path, cases[i].what);
        write_st(path, cases[i].header, zeros, cases[i].data_bytes);
        expect_bad(path, cases[i].expect, EM_ERR_INVALID);
        unlink(path);
    }
    /* truncated inside the length, and header lengths past the file (2^63 included) */
    path_in(path, sizeof path, "short");
    FILE *f = fopen(path, "wb");
    fwrite("\x10\0\0", 1, 3, f);
    fclose(f);
    expect_bad(path, "truncated", EM_ERR_INVALID);
    const char *h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    write_raw(path, strlen(h) + 10, h, strlen(h), NULL, 0);
    expect_bad(path, "runs past the end", EM_ERR_INVALID);
    write_raw(path, 1ULL << 63, h, strlen(h), zeros, 4);
    expect_bad(path, "9223372036854775808", EM_ERR_INVALID);
    write_raw(path, UINT64_MAX, h, strlen(h), zeros, 4);
    expect_bad(path, "runs past the end", EM_ERR_INVALID);
    /* the data cut short: the tensor's end lies past the buffer */
    write_st(path, h, zeros, 3);
    expect_bad(path, "past the data buffer", EM_ERR_INVALID);
    write_raw(path, 0, NULL, 0, NULL, 0);
    expect_bad(path, "too small", EM_ERR_INVALID);
    unlink(path);
    expect_bad(path, "cannot open", EM_ERR_IO);
    expect_bad(g_dir, "not a regular file", EM_ERR_IO);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static float first_value(const char *path)
{
    em_safetensors *st = NULL;
    assert_int_equal(em_safetensors_open(g_ctx, path, &st), EM_OK);
    em_tensor *t = em_safetensors_load(st, "w", g_ctx);
    assert_non_null(t);
    float v;
    assert_int_equal(em_tensor_to_host(em_narrow(em_flatten(t), 0, 0, 1), &v, 4), EM_OK);
    em_safetensors_close(st);
    return v;
}

/* a save that fails midway (file size limit: write() fails with EFBIG) or up front leaves
 * the previous file as it was and no temporary file behind */
static void test_atomic(void **state)
{
    (void)state;
    char path[600];
    path_in(path, sizeof path, "ckpt.safetensors");
    assert_int_equal(count_entries(g_dir), 0);
    em_tensor *small = em_full(g_ctx, EM_F32, EM_SHAPE(4), 1.0);
    const char *names[2] = {"w", "w"};
    assert_int_equal(em_save_safetensors(path, names, &small, 1, NULL), EM_OK);
    assert_true(first_value(path) == 1.0f);

    em_tensor *big = em_full(g_ctx, EM_F32, EM_SHAPE(64, 1024), 2.0);
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 100000;   /* the big tensor is 262144 bytes */
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    em_status s = em_save_safetensors(path, names, &big, 1, NULL);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    assert_int_equal(s, EM_ERR_IO);
    assert_non_null(strstr(em_last_error(), "unchanged"));
    assert_non_null(strstr(em_last_error(), path));
    assert_true(first_value(path) == 1.0f);
    assert_int_equal(count_entries(g_dir), 1);

    /* caught before writing: duplicate and reserved names, NULL tensors, odd metadata */
    em_tensor *two[2] = {big, small};
    em_context_clear_error(g_ctx);
    assert_int_equal(em_save_safetensors(path, names, two, 2, NULL), EM_ERR_INVALID);
    assert_non_null(strstr(em_context_error(g_ctx), "given twice"));
    const char *reserved[1] = {"__metadata__"};
    assert_int_equal(em_save_safetensors(path, reserved, &big, 1, NULL), EM_ERR_INVALID);
    em_tensor *none[1] = {NULL};
    assert_int_equal(em_save_safetensors(path, names, none, 1, NULL), EM_ERR_INVALID);
    const char *odd[] = {"k", NULL};
    assert_int_equal(em_save_safetensors(path, names, &big, 1, odd), EM_ERR_INVALID);
    const char *dupmeta[] = {"k", "1", "k", "2", NULL};
    assert_int_equal(em_save_safetensors(path, names, &big, 1, dupmeta), EM_ERR_INVALID);
    const char *badutf[] = {"k", "\xff", NULL};
    assert_int_equal(em_save_safetensors(path, names, &big, 1, badutf), EM_ERR_INVALID);
    const char *badname[1] = {"w\xc3"};
    assert_int_equal(em_save_safetensors(path, badname, &big, 1, NULL), EM_ERR_INVALID);
    assert_non_null(strstr(em_last_error(), "UTF-8"));
    assert_int_equal(em_save_safetensors(NULL, names, &big, 1, NULL), EM_ERR_INVALID);
    assert_true(first_value(path) == 1.0f);
    assert_int_equal(count_entries(g_dir), 1);

    /* a directory that does not exist */
    char nodir[700];
    snprintf(nodir, sizeof nodir, "%s/missing/x.safetensors", g_dir);
    assert_int_equal(em_save_safetensors(nodir, names, &big, 1, NULL), EM_ERR_IO);
    assert_non_null(strstr(em_last_error(), "temporary file"));

    /* and a successful save replaces it, with the permissions the umask gives new files */
    mode_t mask = umask(022);
    assert_int_equal(em_save_safetensors(path, names, &big, 1, NULL), EM_OK);
    umask(mask);
    assert_true(first_value(path) == 2.0f);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0644);
    assert_int_equal(count_entries(g_dir), 1);
    unlink(path);
}

/* every allocation of a save, an open and a load failing in turn: an error each time (never
 * a crash), the previous file intact and no temporary file left, until the run succeeds */
static void test_alloc_failures(void **state)
{
    (void)state;
    char path[600];
    path_in(path, sizeof path, "inject.safetensors");
    em_tensor *old = em_full(g_ctx, EM_F32, EM_SHAPE(4), 1.0);
    em_tensor *ts[2] = {em_full(g_ctx, EM_F32, EM_SHAPE(8, 3), 2.0),
                        em_transpose(em_ones(g_ctx, EM_I64, EM_SHAPE(3, 2)), 0, 1)};
    const char *names[2] = {"w", "idx"};
    const char *meta[] = {"epoch", "2", NULL};
    assert_int_equal(em_save_safetensors(path, names, &old, 1, NULL), EM_OK);
    int failures = 0;
    long k;
    for (k = 1; k < 200; k++) {
        em_context_clear_error(g_ctx);
        em__test_fail_alloc_after(k);
        em_status s = em_save_safetensors(path, names, ts, 2, meta);
        em__test_fail_alloc_after(0);
        if (s == EM_OK)
            break;
        failures++;
        assert_int_equal(s, EM_ERR_OOM);
        assert_true(first_value(path) == 1.0f);
        assert_int_equal(count_entries(g_dir), 1);
    }
    assert_true(failures > 0);
    assert_true(first_value(path) == 2.0f);
    failures = 0;
    for (k = 1; k < 200; k++) {
        em_context_clear_error(g_ctx);
        em_safetensors *st = NULL;
        em__test_fail_alloc_after(k);
        em_status s = em_safetensors_open(g_ctx, path, &st);
        em_tensor *t = s == EM_OK ? em_safetensors_load(st, "idx", g_ctx) : NULL;
        em__test_fail_alloc_after(0);
        if (s != EM_OK)
            assert_null(st);
        em_safetensors_close(st);
        if (t)
            break;
        failures++;
        assert_int_equal(em_context_status(g_ctx), EM_ERR_OOM);
    }
    assert_true(failures > 0 && k < 200);
    unlink(path);
}

int main(void)
{
    int rc = test_backend_setup();
    if (rc >= 0)
        return rc;
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/ember-st-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        printf("1..1\nnot ok 1 - cannot create a scratch directory %s\n", g_dir);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        EM_TEST(test_roundtrip_dtypes), EM_TEST(test_noncontiguous), EM_TEST(test_half_types),
        EM_TEST(test_bad_files),        EM_TEST(test_atomic),       EM_TEST(test_alloc_failures),
    };
    char name[64];
    snprintf(name, sizeof name, "safetensors on %s", test_backend_name());
    rc = _cmocka_run_group_tests(name, tests, sizeof tests / sizeof tests[0], NULL, NULL);
    rmdir(g_dir);
    em_context_free(g_ctx);
    return rc;
}
