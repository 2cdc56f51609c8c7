/* tests/fuzz/fuzz_safetensors.c — libFuzzer target: the input is a safetensors file. It is
 * opened (header parse and validation), every tensor loaded and read back, the metadata
 * looked up; a valid file is saved again and must reopen with the same names and bytes.
 * Any input gives EM_OK or an error with a message; never a crash, a hang or a leak.
 * Links the core statically (make fuzz) and loads the cpu plugin of this build. */
#include "config.h"
#include "../../core/internal.h"

#include <ember/io.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static em_context *ctx;
static size_t baseline;
static char in_path[64], out_path[64];
static void remove_scratch(void);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    em_config *cfg = em_config_create();
    em_config_set(cfg, "device", "backend", "cpu");
    em_config_set(cfg, "backends", "path", FUZZ_BACKEND_DIR);
    em_config_set(cfg, "cpu", "threads", "1");
    if (em_context_create_with(&ctx, cfg) != EM_OK) {
        fprintf(stderr, "fuzz_safetensors: %s\n", em_last_error());
        abort();
    }
    em_config_free(cfg);
    baseline = em_context_memory_in_use(ctx);
    const char *tmp = getenv("TMPDIR");
    snprintf(in_path, sizeof in_path, "%s/fuzz-st-%ld.in", tmp && strlen(tmp) < 30 ? tmp : "/tmp",
             (long)getpid());
    snprintf(out_path, sizeof out_path, "%s/fuzz-st-%ld.out",
             tmp && strlen(tmp) < 30 ? tmp : "/tmp", (long)getpid());
    atexit(remove_scratch);
    return 0;
}

#define MAXT 64

static void remove_scratch(void)
{
    unlink(in_path);
    unlink(out_path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = fopen(in_path, "wb");
    if (!f)
        abort();
    if (size && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);
    em_context_clear_error(ctx);
    em_safetensors *st = NULL;
    em_status s = em_safetensors_open(ctx, in_path, &st);
    if (s != EM_OK) {
        if (st || !em_last_error()[0] || !strstr(em_last_error(), in_path))
            abort();   /* an error without a message naming the file */
        return 0;
    }
    int n = em_safetensors_count(st);
    const char *names[MAXT];
    em_tensor *ts[MAXT];
    int k = 0;
    for (int i = 0; i < n; i++) {
        const char *name = em_safetensors_name(st, i);
        if (em_safetensors_find(st, name) != i || !em_safetensors_dtype(st, i) ||
            em_safetensors_ndim(st, i) < 0)
            abort();
        em_tensor *t = em_safetensors_load(st, name, ctx);
        if (!t) {
            if (em_context_status(ctx) == EM_OK)
                abort();
            em_context_clear_error(ctx);
            continue;
        }
        if (em_tensor_ndim(t) != em_safetensors_ndim(st, i))
            abort();
        if (k < MAXT) {
            names[k] = name;
            ts[k++] = t;
        } else {
            em_tensor_free(t);
        }
    }
    for (int i = 0; i < em_safetensors_metadata_count(st); i++)
        if (!em_safetensors_metadata(st, em_safetensors_metadata_key(st, i)))
            abort();
    /* save what loaded and read it back: same count, names and bytes */
    if (em_save_safetensors(out_path, names, ts, k, NULL) != EM_OK)
        abort();
    em_safetensors *back = NULL;
    if (em_safetensors_open(ctx, out_path, &back) != EM_OK || em_safetensors_count(back) != k)
        abort();
    for (int i = 0; i < k; i++) {
        em_tensor *t = em_safetensors_load(back, names[i], ctx);
        size_t bytes = (size_t)em_tensor_numel(ts[i]) * em_dtype_size(em_tensor_dtype(ts[i]));
        uint8_t *a = malloc(bytes + 1), *b = malloc(bytes + 1);
        if (!t || !a || !b || em_tensor_to_host(t, a, bytes) != EM_OK ||
            em_tensor_to_host(ts[i], b, bytes) != EM_OK || memcmp(a, b, bytes))
            abort();
        free(a);
        free(b);
        em_tensor_free(t);
    }
    em_safetensors_close(back);
    for (int i = 0; i < k; i++)
        em_tensor_free(ts[i]);
    em_safetensors_close(st);
    unlink(out_path);
    if (em_context_memory_in_use(ctx) != baseline)
        abort();   /* device memory leaked */
    return 0;
}
