/* tests/test_layers.c — layers (<ember/layer.h>): with none configured the context's ops table
 * is the backend's own (pointer identity, no copy, no wrapper); a pass-through layer replaces
 * exactly the entries it wraps, every other entry being the backend's function pointer; a
 * layer built against an older backend.h sees nothing past its table (adam bypasses it and
 * the bypass is reported); [device] layers, EMBER_LAYERS and the layers' sections are
 * validated with messages naming file, line and key; ember-info's API lists layers and the
 * stack; the profile layer's trace file is valid trace-event JSON (parsed with jansson) with
 * the forward, backward and optimizer phases, op and kernel events; the validate layer refuses
 * calls that break the core's preconditions before the backend sees them. */
#include "harness.h"

#include "internal.h"

#include <jansson.h>
#include <math.h>

static char *g_path;   /* "<test plugins>:<build .libs>" */

static em_config *cfg_with(const char *layers)
{
    em_config *cfg = em_config_create();
    assert_non_null(cfg);
    assert_int_equal(em_config_set(cfg, "device", "backend", "cpu"), EM_OK);
    assert_int_equal(em_config_set(cfg, "backends", "path", g_path), EM_OK);
    if (layers)
        assert_int_equal(em_config_set(cfg, "device", "layers", layers), EM_OK);
    return cfg;
}

static em_context *ctx_with(const char *layers)
{
    em_config *cfg = cfg_with(layers);
    em_context *ctx = NULL;
    em_status st = em_context_create_with(&ctx, cfg);
    em_config_free(cfg);
    if (st != EM_OK)
        fail_msg("context with layers '%s': %s", layers ? layers : "", em_last_error());
    return ctx;
}

/* a small training step: mm, clamp, sum, backward, sgd */
static void train_step(em_context *ctx, double *loss_out)
{
    em_manual_seed(ctx, 3);
    em_scope_begin(ctx);
    em_tensor *x = em_randn(ctx, EM_F32, EM_SHAPE(8, 5));
    em_tensor *w = em_randn(ctx, EM_F32, EM_SHAPE(5, 3));
    em_tensor_set_requires_grad(w, true);
    em_sgd *opt = em_sgd_create(&w, 1, &(em_sgd_options){.lr = 0.01});
    assert_non_null(opt);
    em_tensor *loss = em_sum(em_clamp(em_mm(x, w), 0.0, INFINITY));
    assert_non_null(loss);
    *loss_out = em_item(loss);
    assert_int_equal(em_backward(loss), EM_OK);
    assert_int_equal(em_sgd_step(opt), EM_OK);
    em_sgd_free(opt);
    em_scope_end(ctx);
    assert_int_equal(em_context_status(ctx), EM_OK);
}

static void test_no_layers_is_the_backend_table(void **state)
{
    (void)state;
    em_context *ctx = ctx_with(NULL);
    assert_int_equal(em_context_layer_count(ctx), 0);
    assert_null(em_context_layer_name(ctx, 0));
    assert_ptr_equal(ctx->ops, &ctx->plugin->ops);   /* no copy, no wrapper */
    assert_false(ctx->layer_events);
    assert_null(ctx->layers);
    em_context_free(ctx);
    /* "none" is no layers too */
    ctx = ctx_with("none");
    assert_ptr_equal(ctx->ops, &ctx->plugin->ops);
    em_context_free(ctx);
}

static void test_pass_through_replaces_only_what_it_wraps(void **state)
{
    (void)state;
    em_context *ctx = ctx_with("tpass");
    assert_int_equal(em_context_layer_count(ctx), 1);
    assert_string_equal(em_context_layer_name(ctx, 0), "tpass");
    const em_backend_ops *own = &ctx->plugin->ops;
    assert_ptr_not_equal(ctx->ops, own);
    int differ = 0;
    for (size_t off = sizeof(size_t); off + sizeof(void *) <= sizeof *own; off += sizeof(void *)) {
        void *a, *b;
        memcpy(&a, (const char *)ctx->ops + off, sizeof a);
        memcpy(&b, (const char *)own + off, sizeof b);
        if (a != b) {
            assert_int_equal(off, offsetof(em_backend_ops, gemm));
            differ++;
        }
    }
    assert_int_equal(differ, 1);
    char by[256];
    assert_string_equal(em_context_layer_bypass(ctx, 0, by, sizeof by), "");
    double with_layer, without;
    train_step(ctx, &with_layer);
    em_context_free(ctx);
    ctx = ctx_with(NULL);
    train_step(ctx, &without);
    em_context_free(ctx);
    assert_true(with_layer == without);
}

static void test_older_layer_never_sees_newer_kernels(void **state)
{
    (void)state;
    /* tpass12's table ends before adam (as built against ABI 1.2), and its adam slot is
     * never read: adam is the backend's own entry */
    em_context *ctx = ctx_with("tpass12");
    char by[512];
    assert_non_null(em_context_layer_bypass(ctx, 0, by, sizeof by));
    /* adam, and whatever later minors appended after it */
    assert_true(!strcmp(by, "adam") || !strncmp(by, "adam, ", 6));
    void *a, *b;
    memcpy(&a, (const char *)ctx->ops + offsetof(em_backend_ops, adam), sizeof a);
    memcpy(&b, (const char *)&ctx->plugin->ops + offsetof(em_backend_ops, adam), sizeof b);
    assert_ptr_equal(a, b);
    em_context_free(ctx);
    /* ember-info's view of the file */
    em_config *cfg = cfg_with(NULL);
    em_registry *reg;
    assert_int_equal(em_registry_scan(cfg, &reg), EM_OK);
    bool seen = false, seen_profile = false;
    for (int i = 0; i < em_registry_layer_count(reg); i++) {
        const em_layer_info *li = em_registry_layer(reg, i);
        if (!strcmp(li->name, "tpass12")) {
            seen = true;
            assert_int_equal(li->status, EM_OK);
            assert_true(!strcmp(li->bypass, "adam") || !strncmp(li->bypass, "adam, ", 6));
            assert_string_equal(li->config_keys[0], "report");
        }
        if (!strcmp(li->name, "profile")) {
            seen_profile = true;
            assert_string_equal(li->bypass, "");
            assert_non_null(strstr(li->wraps, "of the"));
        }
    }
    assert_true(seen && seen_profile);
    em_registry_free(reg);
    em_config_free(cfg);
}

static void test_stack_order_and_env(void **state)
{
    (void)state;
    em_context *ctx = ctx_with("profile, tpass");
    assert_int_equal(em_context_layer_count(ctx), 2);
    assert_string_equal(em_context_layer_name(ctx, 0), "profile");
    assert_string_equal(em_context_layer_name(ctx, 1), "tpass");
    void *a, *b;   /* the outermost gemm is a wrapper */
    memcpy(&a, (const char *)ctx->ops + offsetof(em_backend_ops, gemm), sizeof a);
    memcpy(&b, (const char *)&ctx->plugin->ops + offsetof(em_backend_ops, gemm), sizeof b);
    assert_ptr_not_equal(a, b);
    double loss, plain;
    train_step(ctx, &loss);
    em_context_free(ctx);
    ctx = ctx_with(NULL);
    train_step(ctx, &plain);
    em_context_free(ctx);
    assert_true(loss == plain);
    setenv("EMBER_LAYERS", "tpass", 1);
    ctx = ctx_with("profile");
    assert_int_equal(em_context_layer_count(ctx), 1);
    assert_string_equal(em_context_layer_name(ctx, 0), "tpass");
    em_context_free(ctx);
    setenv("EMBER_LAYERS", "none", 1);
    ctx = ctx_with("profile");
    assert_int_equal(em_context_layer_count(ctx), 0);
    em_context_free(ctx);
    setenv("EMBER_LAYERS", "tpass,tpass", 1);
    em_config *cfg = cfg_with(NULL);
    assert_int_equal(em_context_create_with(&ctx, cfg), EM_ERR_CONFIG);
    assert_non_null(strstr(em_last_error(), "EMBER_LAYERS='tpass,tpass': layer 'tpass' is listed "
                                            "twice"));
    unsetenv("EMBER_LAYERS");
    em_config_free(cfg);
}

static void test_config_errors(void **state)
{
    (void)state;
    em_context *ctx;
    /* an unknown layer: a configuration error naming where it was set */
    em_config *cfg = cfg_with("profle");
    assert_int_equal(em_context_create_with(&ctx, cfg), EM_ERR_CONFIG);
    assert_non_null(strstr(em_last_error(), "[device] layers: layer 'profle' not found: no "
                                            "ember-layer-profle.so"));
    em_config_free(cfg);
    /* a bad key of a layer's section, even when the layer is not used */
    cfg = cfg_with(NULL);
    assert_int_equal(em_config_set(cfg, "profile", "trase", "x.json"), EM_OK);
    assert_int_equal(em_context_create_with(&ctx, cfg), EM_ERR_CONFIG);
    assert_non_null(strstr(em_last_error(), "[profile] trase: unknown key (layer 'profile' "
                                            "accepts trace, table, sort, sync); did you mean "
                                            "'trace'?"));
    em_config_free(cfg);
    /* a bad value, found by the layer */
    cfg = cfg_with("profile");
    assert_int_equal(em_config_set(cfg, "profile", "sync", "maybe"), EM_OK);
    assert_int_equal(em_context_create_with(&ctx, cfg), EM_ERR_CONFIG);
    assert_non_null(strstr(em_last_error(), "[profile] sync: expected one of auto, on, off, got "
                                            "'maybe'"));
    em_config_free(cfg);
    cfg = cfg_with("Profile");
    assert_int_equal(em_context_create_with(&ctx, cfg), EM_ERR_CONFIG);
    assert_non_null(strstr(em_last_error(), "'Profile' is not a layer name"));
    em_config_free(cfg);
}

/* The members of a trace file: the phases and categories seen. */
static void test_profile_trace_is_valid_json_with_phases(void **state)
{
    (void)state;
    char *trace = th_join(th_tmpdir(), "run.json");
    em_config *cfg = cfg_with("profile");
    assert_int_equal(em_config_set(cfg, "profile", "trace", trace), EM_OK);
    assert_int_equal(em_config_set(cfg, "profile", "table", "off"), EM_OK);
    em_context *ctx;
    assert_int_equal(em_context_create_with(&ctx, cfg), EM_OK);
    em_config_free(cfg);
    double loss;
    train_step(ctx, &loss);
    train_step(ctx, &loss);
    em_context_free(ctx);
    json_error_t err;
    json_t *root = json_load_file(trace, 0, &err);
    if (!root)
        fail_msg("%s:%d: %s", trace, err.line, err.text);
    json_t *events = json_object_get(root, "traceEvents");
    assert_true(json_is_array(events));
    int phases[3] = {0}, ops = 0, kernels = 0, mm_with_shapes = 0, threads = 0;
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev) {
        const char *ph = json_string_value(json_object_get(ev, "ph"));
        const char *cat = json_string_value(json_object_get(ev, "cat"));
        const char *name = json_string_value(json_object_get(ev, "name"));
        assert_non_null(ph);
        assert_non_null(name);
        if (!strcmp(ph, "M")) {
            threads += !strcmp(name, "thread_name");
            continue;
        }
        assert_string_equal(ph, "X");
        assert_true(json_is_number(json_object_get(ev, "ts")));
        assert_true(json_real_value(json_object_get(ev, "dur")) >= 0);
        assert_non_null(cat);
        if (!strcmp(cat, "phase")) {
            assert_int_equal(json_integer_value(json_object_get(ev, "tid")), 3);
            phases[0] += !strcmp(name, "forward");
            phases[1] += !strcmp(name, "backward");
            phases[2] += !strcmp(name, "optimizer");
        } else if (!strcmp(cat, "op")) {
            ops++;
            json_t *args = json_object_get(ev, "args");
            const char *phase = json_string_value(json_object_get(args, "phase"));
            assert_non_null(phase);
            if (!strcmp(name, "mm")) {
                /* forward x @ w; backward x^T @ g (the gradient of w only: x needs none) */
                const char *shapes = json_string_value(json_object_get(args, "shapes"));
                if (!strcmp(phase, "forward"))
                    assert_string_equal(shapes, "[[8, 5], [5, 3]]");
                else
                    assert_string_equal(shapes, "[[5, 8], [8, 3]]");
                mm_with_shapes += !strcmp(phase, "forward") ? 1 : 100;
            }
        } else if (!strcmp(cat, "kernel")) {
            kernels++;
            assert_int_equal(json_integer_value(json_object_get(ev, "tid")), 2);
        }
    }
    assert_int_equal(phases[0], 2);
    assert_int_equal(phases[1], 2);
    assert_int_equal(phases[2], 2);
    assert_int_equal(mm_with_shapes, 202);
    assert_true(ops > 10 && kernels > 10);
    assert_int_equal(threads, 3);
    json_decref(root);
    free(trace);
}

/* Core events reach the layer with names and shapes: the profile table (stdout) counts the
 * ops, kernels, phases and cache hits of the step. */
static void test_profile_table(void **state)
{
    (void)state;
    char *out = th_join(th_tmpdir(), "table.txt");
    em_config *cfg = cfg_with("profile");
    assert_int_equal(em_config_set(cfg, "profile", "table", out), EM_OK);
    em_context *ctx;
    assert_int_equal(em_context_create_with(&ctx, cfg), EM_OK);
    em_config_free(cfg);
    double loss;
    train_step(ctx, &loss);
    em_context_free(ctx);
    FILE *r = fopen(out, "r");
    assert_non_null(r);
    char text[16384];
    size_t n = fread(text, 1, sizeof text - 1, r);
    fclose(r);
    text[n] = 0;
    assert_non_null(strstr(text, "ember profile: backend cpu"));
    assert_non_null(strstr(text, "\nmm "));
    assert_non_null(strstr(text, "\ngemm "));
    assert_non_null(strstr(text, "Phases: forward"));
    assert_non_null(strstr(text, "backward"));
    assert_non_null(strstr(text, "buffer cache hits"));
    /* sorted by total, largest first: the rows' "Total" column never increases */
    char *row = strstr(text, "\nName");
    assert_non_null(row);
    row = strstr(row + 1, "\n---");
    double prev = INFINITY;
    int rows = 0;
    for (char *line = strchr(row + 1, '\n') + 1; *line && strncmp(line, "---", 3);
         line = strchr(line, '\n') + 1) {
        char name[64], kind[16], unit[8];
        double calls, total;
        assert_int_equal(sscanf(line, "%63s %15s %lf %lf%7[a-z]", name, kind, &calls, &total, unit),
                         5);
        double us = total * (!strcmp(unit, "s") ? 1e6 : !strcmp(unit, "ms") ? 1e3 : 1);
        assert_true(us <= prev);
        prev = us;
        rows++;
    }
    assert_true(rows > 8);
    free(out);
}

/* validate's precondition checks, called directly through the context's (validate's) table
 * with arguments the core would never pass: each call is refused before the backend sees it,
 * with a message naming the broken rule. */
static em_status bad_call(em_context *ctx, em_kview *out, em_kview *in)
{
    const em_kview *outs[1] = {out}, *ins[1] = {in};
    em_kargs a = {.struct_size = sizeof a, .out = out, .in = {in}, .n_out = 1, .n_in = 1,
                  .outs = outs, .ins = ins};
    ctx->plugin->last_msg[0] = 0;
    return ctx->ops->neg(ctx->dev, &a);
}

static void test_validate_preconditions(void **state)
{
    (void)state;
    em_context *ctx = ctx_with("validate");
    void *buf = NULL;
    assert_int_equal(ctx->ops->buffer_alloc(ctx->dev, 16, &buf), EM_OK);   /* 4 floats */
    const float four[4] = {1, 2, 3, 4};
    assert_int_equal(ctx->ops->copy_h2d(ctx->dev, buf, 0, four, sizeof four), EM_OK);
    em_kview out = {.struct_size = sizeof out, .buf = buf, .dtype = EM_F32, .ndim = 1,
                    .shape = {4}, .strides = {1}};
    em_kview in = out;
    assert_int_equal(bad_call(ctx, &out, &in), EM_OK);   /* in place, inside the buffer */
    in.shape[0] = out.shape[0] = 8;
    assert_int_equal(bad_call(ctx, &out, &in), EM_ERR_INTERNAL);
    assert_non_null(strstr(ctx->plugin->last_msg, "validate: kernel neg (op (none)) called against "
                                                  "its preconditions: out (shape [8], offset 0, "
                                                  "f32) ends at byte 32 of a buffer of 16 bytes"));
    in.shape[0] = out.shape[0] = 3;
    out.offset = 1;
    assert_int_equal(bad_call(ctx, &out, &in), EM_ERR_INTERNAL);
    assert_non_null(strstr(ctx->plugin->last_msg, "out partially overlaps in[0]"));
    out.offset = 0;
    in.shape[0] = 2;
    assert_int_equal(bad_call(ctx, &out, &in), EM_ERR_INTERNAL);
    assert_non_null(strstr(ctx->plugin->last_msg, "in[0] has shape [2] but out has [3]"));
    in.shape[0] = 3;
    out.shape[0] = 0;
    assert_int_equal(bad_call(ctx, &out, &in), EM_ERR_INTERNAL);
    assert_non_null(strstr(ctx->plugin->last_msg, "every size must be at least 1"));
    out.shape[0] = 2;
    out.strides[0] = 0;
    in.shape[0] = 2;
    assert_int_equal(bad_call(ctx, &out, &in), EM_ERR_INTERNAL);
    assert_non_null(strstr(ctx->plugin->last_msg, "out has a zero stride in dim 0 of size 2"));
    ctx->plugin->last_msg[0] = 0;
    ctx->ops->buffer_free(ctx->dev, buf);
    em_context_free(ctx);
}

int main(void)
{
    const char *plugins = th_env("EMBER_TEST_PLUGIN_DIR");
    const char *libs = th_env("EMBER_TEST_BACKEND_DIR");
    size_t n = strlen(plugins) + strlen(libs) + 2;
    g_path = malloc(n);
    snprintf(g_path, n, "%s:%s", plugins, libs);
    unsetenv("EMBER_LAYERS");
    unsetenv("EMBER_DEVICE");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_layers_is_the_backend_table),
        cmocka_unit_test(test_pass_through_replaces_only_what_it_wraps),
        cmocka_unit_test(test_older_layer_never_sees_newer_kernels),
        cmocka_unit_test(test_stack_order_and_env),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_profile_trace_is_valid_json_with_phases),
        cmocka_unit_test(test_profile_table),
        cmocka_unit_test(test_validate_preconditions),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(g_path);
    return rc;
}
