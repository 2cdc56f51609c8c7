/* tests/safetensors_tool.c — the ember side of tests/test_safetensors_torch.sh.
 *   safetensors_tool write PATH   save a fixed set of tensors (every dtype, a 0-dim, an
 *                                 empty and a transposed one, metadata) to PATH and print them
 *   safetensors_tool dump PATH    load every tensor of PATH and print it
 * Both print, sorted by name, "name DTYPE [shape] values..." (f32 values with %.9g, f64 with
 * %.17g, integers exactly) and "meta key=value" lines: the format tests/safetensors_py.py
 * prints, so the outputs compare with diff. Runs on the cpu backend. */
#include <ember/ember.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct item {
    const char *name;
    const char *file_dtype;
    em_tensor *t;
} item;

static int by_name(const void *a, const void *b)
{
    return strcmp(((const item *)a)->name, ((const item *)b)->name);
}

static int print_tensor(const char *name, const char *file_dtype, em_tensor *t)
{
    int64_t n = em_tensor_numel(t);
    em_dtype dt = em_tensor_dtype(t);
    size_t bytes = (size_t)n * em_dtype_size(dt);
    unsigned char *buf = malloc(bytes ? bytes : 1);
    if (!buf || em_tensor_to_host(t, buf, bytes) != EM_OK) {
        free(buf);
        return -1;
    }
    printf("%s %s [", name, file_dtype);
    for (int d = 0; d < em_tensor_ndim(t); d++)
        printf("%s%" PRId64, d ? "," : "", em_tensor_size(t, d));
    printf("]");
    for (int64_t i = 0; i < n; i++) {
        switch (dt) {
        case EM_F32: printf(" %.9g", (double)((float *)buf)[i]); break;
        case EM_F64: printf(" %.17g", ((double *)buf)[i]); break;
        case EM_I64: printf(" %" PRId64, ((int64_t *)buf)[i]); break;
        case EM_I32: printf(" %" PRId32, ((int32_t *)buf)[i]); break;
        default: printf(" %u", (unsigned)buf[i]); break;
        }
    }
    printf("\n");
    free(buf);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int dump(em_context *ctx, const char *path)
{
    em_safetensors *st = NULL;
    if (em_safetensors_open(ctx, path, &st) != EM_OK)
        return fprintf(stderr, "%s\n", em_last_error()), 1;
    int n = em_safetensors_count(st), rc = 0;
    item *items = calloc((size_t)n + 1, sizeof *items);
    for (int i = 0; i < n; i++) {
        items[i].name = em_safetensors_name(st, i);
        items[i].file_dtype = em_safetensors_dtype(st, i);
        items[i].t = em_safetensors_load(st, items[i].name, ctx);
        if (!items[i].t) {
            fprintf(stderr, "%s\n", em_last_error());
            rc = 1;
        }
    }
    qsort(items, (size_t)n, sizeof *items, by_name);
    for (int i = 0; i < n && !rc; i++)
        if (print_tensor(items[i].name, items[i].file_dtype, items[i].t))
            rc = 1;
    int m = em_safetensors_metadata_count(st);
    const char **keys = calloc((size_t)m + 1, sizeof *keys);
    for (int i = 0; i < m; i++)
        keys[i] = em_safetensors_metadata_key(st, i);
    qsort(keys, (size_t)m, sizeof *keys, cmp_str);
    for (int i = 0; i < m; i++)
        printf("meta %s=%s\n", keys[i], em_safetensors_metadata(st, keys[i]));
    for (int i = 0; i < n; i++)
        em_tensor_free(items[i].t);
    free(keys);
    free(items);
    em_safetensors_close(st);
    return rc;
}

static int write_fixed(em_context *ctx, const char *path)
{
    em_manual_seed(ctx, 7);
    float f32[6] = {0.1f, -2.5f, 3.14159274f, 1e-8f, -0.0f, 65504.5f};
    double f64 = 2.0 / 3.0;
    int64_t i64[4] = {0, -1, (int64_t)1 << 40, INT64_MIN};
    int32_t i32[3] = {7, -7, INT32_MAX};
    uint8_t u8[3] = {0, 200, 255}, bl[2] = {1, 0};
    em_tensor *w = em_randn(ctx, EM_F32, EM_SHAPE(3, 4));
    item items[] = {
        {"fc.weight", "F32", w},
        {"fc.weight_t", "F32", em_transpose(w, 0, 1)},
        {"fc.bias", "F32", em_tensor_from_data(ctx, EM_F32, EM_SHAPE(6), f32)},
        {"scalar", "F64", em_tensor_from_data(ctx, EM_F64, EM_SCALAR_SHAPE, &f64)},
        {"steps", "I64", em_tensor_from_data(ctx, EM_I64, EM_SHAPE(2, 2), i64)},
        {"counts", "I32", em_tensor_from_data(ctx, EM_I32, EM_SHAPE(3), i32)},
        {"pixels", "U8", em_tensor_from_data(ctx, EM_U8, EM_SHAPE(3, 1), u8)},
        {"mask", "BOOL", em_tensor_from_data(ctx, EM_BOOL, EM_SHAPE(2), bl)},
        {"empty", "F32", em_zeros(ctx, EM_F32, EM_SHAPE(0, 5))},
    };
    enum { N = sizeof items / sizeof items[0] };
    const char *names[N];
    em_tensor *ts[N];
    for (int i = 0; i < N; i++) {
        names[i] = items[i].name;
        ts[i] = items[i].t;
    }
    const char *meta[] = {"format", "pt", "written_by", "ember", NULL};
    if (em_save_safetensors(path, names, ts, N, meta) != EM_OK)
        return fprintf(stderr, "%s\n", em_last_error()), 1;
    qsort(items, N, sizeof items[0], by_name);
    for (int i = 0; i < N; i++)
        if (print_tensor(items[i].name, items[i].file_dtype, items[i].t))
            return 1;
    printf("meta format=pt\nmeta written_by=ember\n");
    for (int i = 0; i < N; i++)
        em_tensor_free(items[i].t);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "write") && strcmp(argv[1], "dump"))) {
        fprintf(stderr, "usage: %s write|dump FILE.safetensors\n", argv[0]);
        return 2;
    }
    em_config *cfg = em_config_create();
    em_config_set(cfg, "device", "backend", "cpu");
    const char *dir = getenv("EMBER_TEST_BACKEND_DIR");
    if (dir && *dir)
        em_config_set(cfg, "backends", "path", dir);
    em_context *ctx = NULL;
    em_status s = em_context_create_with(&ctx, cfg);
    em_config_free(cfg);
    if (s != EM_OK)
        return fprintf(stderr, "%s\n", em_last_error()), 1;
    int rc = !strcmp(argv[1], "write") ? write_fixed(ctx, argv[2]) : dump(ctx, argv[2]);
    em_context_free(ctx);
    return rc;
}
