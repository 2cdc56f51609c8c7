/* tests/test_checkpoint.c — whole-model and optimizer checkpoints (em_module_save/load,
 * em_optim_save/load): model round trips that keep the parameters' identity, PyTorch's
 * strict-load messages (missing / unexpected keys, size mismatch), F64/F16/BF16 files
 * converted, optimizer state of Adam (amsgrad), AdamW, RMSprop (centered, momentum) and SGD
 * (momentum) restored so that training resumes bit for bit as if never interrupted, and
 * errors (other kind, other parameter count or shapes, bad metadata) that change nothing.
 * Built once per backend. */
#include "backend_harness.h"

#include <unistd.h>

void em__test_fail_kernel_after(long n);
void em__test_fail_alloc_after(long n);

static char g_dir[256];

static const char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

/* Linear(4, 5), ReLU, Linear(5, 3) drawn from seed. */
static em_module *mlp(uint64_t seed, int hidden)
{
    em_manual_seed(g_ctx, seed);
    em_module *m = em_sequential(g_ctx, (em_module *[]){em_linear(g_ctx, 4, hidden, true),
                                                        em_relu_module(g_ctx),
                                                        em_linear(g_ctx, hidden, 3, true)}, 3);
    assert_non_null(m);
    return m;
}

/* A copy of t's bytes (malloc'd), *n bytes. */
static void *bytes_of(em_tensor *t, size_t *n)
{
    *n = (size_t)em_tensor_numel(t) * em_dtype_size(em_tensor_dtype(t));
    void *b = malloc(*n ? *n : 1);
    assert_int_equal(em_tensor_to_host(t, b, *n), EM_OK);
    return b;
}

static bool same_bits(em_tensor *a, em_tensor *b)
{
    if (em_tensor_dtype(a) != em_tensor_dtype(b) || em_tensor_numel(a) != em_tensor_numel(b))
        return false;
    size_t na, nb;
    void *x = bytes_of(a, &na), *y = bytes_of(b, &nb);
    bool same = na == nb && !memcmp(x, y, na);
    free(x);
    free(y);
    return same;
}

static void assert_modules_equal(em_module *a, em_module *b)
{
    em_tensor *pa[8], *pb[8];
    int n = em_module_parameters(a, NULL, pa, 8);
    assert_int_equal(em_module_parameters(b, NULL, pb, 8), n);
    for (int i = 0; i < n; i++)
        assert_true(same_bits(pa[i], pb[i]));
}

/* Snapshot of a module's parameters (kept clones) to compare against later. */
typedef struct snap {
    int n;
    em_tensor *t[8];
} snap;

static void snap_take(snap *s, em_module *m)
{
    em_tensor *p[8];
    s->n = em_module_parameters(m, NULL, p, 8);
    for (int i = 0; i < s->n; i++)
        s->t[i] = em_tensor_keep(em_clone(p[i]));
}

static void snap_check_free(snap *s, em_module *m)
{
    em_tensor *p[8];
    assert_int_equal(em_module_parameters(m, NULL, p, 8), s->n);
    for (int i = 0; i < s->n; i++) {
        assert_true(same_bits(p[i], s->t[i]));
        em_tensor_free(s->t[i]);
    }
}

/* One training step: loss = mse(m(x), target), backward, step, zero_grad. The data depend
 * on step so that every step differs. */
static void train_step(em_module *m, em_optim *o, int step)
{
    em_scope_begin(g_ctx);
    float xv[8 * 4], tv[8 * 3];
    for (int i = 0; i < 32; i++)
        xv[i] = (float)sin(0.37 * i + 1.3 * step);
    for (int i = 0; i < 24; i++)
        tv[i] = (float)cos(0.21 * i - 0.7 * step);
    em_tensor *x = em_tensor_from_data(g_ctx, EM_F32, 2, (int64_t[]){8, 4}, xv);
    em_tensor *t = em_tensor_from_data(g_ctx, EM_F32, 2, (int64_t[]){8, 3}, tv);
    em_tensor *loss = em_mse_loss(em_module_forward(m, x), t, EM_REDUCTION_MEAN);
    assert_int_equal(em_backward(loss), EM_OK);
    assert_int_equal(em_optim_step(o), EM_OK);
    assert_int_equal(em_optim_zero_grad(o, false), EM_OK);
    em_scope_end(g_ctx);
    assert_ok_ctx();
}

/* ---------------------------------------------------------------- models */

static void test_module_round_trip(void **state)
{
    (void)state;
    em_module *a = mlp(1, 5), *b = mlp(2, 5);
    const char *path = tmp_path("model.safetensors");
    assert_int_equal(em_module_save(a, path, (const char *[]){"epoch", "7", NULL}), EM_OK);
    /* the file is a state_dict: the parameters' names, shapes and F32 */
    em_safetensors *sf;
    assert_int_equal(em_safetensors_open(g_ctx, path, &sf), EM_OK);
    assert_int_equal(em_safetensors_count(sf), 4);
    assert_int_equal(em_safetensors_find(sf, "0.weight") >= 0, true);
    int j = em_safetensors_find(sf, "2.weight");
    assert_true(j >= 0);
    assert_string_equal(em_safetensors_dtype(sf, j), "F32");
    assert_int_equal(em_safetensors_ndim(sf, j), 2);
    assert_int_equal(em_safetensors_shape(sf, j)[0], 3);
    assert_int_equal(em_safetensors_shape(sf, j)[1], 5);
    assert_string_equal(em_safetensors_metadata(sf, "epoch"), "7");
    em_safetensors_close(sf);

    em_tensor *before[4], *after[4];
    assert_int_equal(em_module_parameters(b, NULL, before, 4), 4);
    em_optim *o = em_optim_sgd(before, 4, &(em_sgd_options){.lr = 0.1});
    assert_int_equal(em_module_load(b, path), EM_OK);
    assert_int_equal(em_module_parameters(b, NULL, after, 4), 4);
    for (int i = 0; i < 4; i++) {
        assert_ptr_equal(before[i], after[i]);   /* same tensors, values copied in */
        assert_true(em_tensor_requires_grad(after[i]) && em_tensor_is_leaf(after[i]));
    }
    assert_modules_equal(a, b);
    /* the optimizer holding b's parameters still trains them */
    train_step(b, o, 0);
    em_tensor *pa[4];
    em_module_parameters(a, NULL, pa, 4);
    assert_false(same_bits(pa[0], after[0]));
    em_optim_free(o);
    em_module_free(a);
    em_module_free(b);
}

static void test_module_size_mismatch(void **state)
{
    (void)state;
    em_module *a = mlp(1, 5), *b = mlp(2, 6);
    const char *path = tmp_path("model5.safetensors");
    assert_int_equal(em_module_save(a, path, NULL), EM_OK);
    snap s;
    snap_take(&s, b);
    assert_int_equal(em_module_load(b, path), EM_ERR_INVALID);
    char want[2048];
    snprintf(want, sizeof want, "em_module_load: '%s': Error(s) in loading state_dict for "
             "Sequential:\n\tsize mismatch for 0.weight: copying a param with shape "
             "torch.Size([5, 4]) from checkpoint, the shape in current model is "
             "torch.Size([6, 4]).\n\tsize mismatch for 0.bias: copying a param with shape "
             "torch.Size([5]) from checkpoint, the shape in current model is torch.Size([6])."
             "\n\tsize mismatch for 2.weight: copying a param with shape torch.Size([3, 5]) "
             "from checkpoint, the shape in current model is torch.Size([3, 6]).", path);
    assert_string_equal(em_context_error(g_ctx), want);
    em_context_clear_error(g_ctx);
    snap_check_free(&s, b);
    em_module_free(a);
    em_module_free(b);
}

static void test_module_keys(void **state)
{
    (void)state;
    em_module *a = mlp(1, 5), *b = mlp(2, 5);
    const char *names[4];
    em_tensor *p[4];
    assert_int_equal(em_module_parameters(a, names, p, 4), 4);
    const char *path = tmp_path("keys.safetensors");
    /* 2.bias missing, "extra" and "3.weight" unexpected */
    assert_int_equal(em_save_safetensors(path, (const char *[]){"0.weight", "0.bias",
                                                                "2.weight", "extra",
                                                                "3.weight"},
                                         (em_tensor *[]){p[0], p[1], p[2], p[3], p[0]}, 5, NULL),
                     EM_OK);
    snap s;
    snap_take(&s, b);
    assert_int_equal(em_module_load(b, path), EM_ERR_INVALID);
    char want[1024];
    snprintf(want, sizeof want, "em_module_load: '%s': Error(s) in loading state_dict for "
             "Sequential:\n\tMissing key(s) in state_dict: \"2.bias\". \n\tUnexpected key(s) in "
             "state_dict: \"extra\", \"3.weight\". ", path);
    assert_string_equal(em_context_error(g_ctx), want);
    em_context_clear_error(g_ctx);
    snap_check_free(&s, b);
    /* a file that is not there: EM_ERR_IO, nothing changes */
    snap_take(&s, b);
    assert_int_equal(em_module_load(b, tmp_path("absent.safetensors")), EM_ERR_IO);
    em_context_clear_error(g_ctx);
    snap_check_free(&s, b);
    /* an integer tensor under a parameter's name is refused */
    em_tensor *i64 = em_zeros(g_ctx, EM_I64, 1, (int64_t[]){5});
    assert_int_equal(em_save_safetensors(path, names, (em_tensor *[]){p[0], i64, p[2], p[3]}, 4,
                                         NULL), EM_OK);
    snap_take(&s, b);
    assert_int_equal(em_module_load(b, path), EM_ERR_INVALID);
    assert_non_null(strstr(em_context_error(g_ctx), "dtype mismatch for 0.bias: the checkpoint "
                                                     "holds I64"));
    em_context_clear_error(g_ctx);
    snap_check_free(&s, b);
    em_module_free(a);
    em_module_free(b);
}

/* A safetensors file written byte by byte: weight BF16 [2, 2], bias F16 [2]. */
static void write_half_file(const char *path)
{
    static const char hdr[] = "{\"weight\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":"
                              "[0,8]},\"bias\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":"
                              "[8,12]}}";
    /* BF16 1.5, -2, 0.5, 3; F16 0.25, -1 */
    static const uint16_t data[6] = {0x3FC0, 0xC000, 0x3F00, 0x4040, 0x3400, 0xBC00};
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    uint64_t n = sizeof hdr - 1;
    uint8_t len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)(n >> (8 * i));
    assert_int_equal(fwrite(len, 1, 8, f), 8);
    assert_int_equal(fwrite(hdr, 1, n, f), n);
    for (int i = 0; i < 6; i++) {
        uint8_t b[2] = {(uint8_t)(data[i] & 0xff), (uint8_t)(data[i] >> 8)};
        assert_int_equal(fwrite(b, 1, 2, f), 2);
    }
    assert_int_equal(fclose(f), 0);
}

static void test_module_converts(void **state)
{
    (void)state;
    /* F64: the values rounded to f32 */
    em_module *a = mlp(1, 5), *b = mlp(2, 5);
    const char *names[4];
    em_tensor *p[4], *d[4];
    assert_int_equal(em_module_parameters(a, names, p, 4), 4);
    double dv[20];
    for (int i = 0; i < 20; i++)
        dv[i] = 0.1 * i - 1.0 / 3.0;
    for (int i = 0; i < 4; i++) {
        int64_t n = em_tensor_numel(p[i]);
        d[i] = em_tensor_from_data(g_ctx, EM_F64, em_tensor_ndim(p[i]), em_tensor_shape(p[i]), dv);
        assert_true(n <= 20);
    }
    const char *path = tmp_path("f64.safetensors");
    assert_int_equal(em_save_safetensors(path, names, d, 4, NULL), EM_OK);
    assert_int_equal(em_module_load(b, path), EM_OK);
    em_tensor *q[4];
    em_module_parameters(b, NULL, q, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(em_tensor_dtype(q[i]), EM_F32);
        int64_t n = em_tensor_numel(q[i]);
        float got[20];
        assert_int_equal(em_tensor_to_host(q[i], got, sizeof(float) * (size_t)n), EM_OK);
        for (int64_t k = 0; k < n; k++)
            assert_true(got[k] == (float)dv[k]);
    }
    em_module_free(a);
    em_module_free(b);
    /* BF16 and F16 */
    em_module *lin = em_linear(g_ctx, 2, 2, true);
    path = tmp_path("half.safetensors");
    write_half_file(path);
    assert_int_equal(em_module_load(lin, path), EM_OK);
    em_module_parameters(lin, NULL, p, 2);
    float w[4], bias[2];
    assert_int_equal(em_tensor_to_host(p[0], w, sizeof w), EM_OK);
    assert_int_equal(em_tensor_to_host(p[1], bias, sizeof bias), EM_OK);
    assert_true(w[0] == 1.5f && w[1] == -2.0f && w[2] == 0.5f && w[3] == 3.0f);
    assert_true(bias[0] == 0.25f && bias[1] == -1.0f);
    em_module_free(lin);
}

/* ---------------------------------------------------------------- optimizers */

typedef struct kind {
    int which;   /* 0 SGD, 1 Adam, 2 AdamW, 3 RMSprop */
    em_adam_options adam;
    em_rmsprop_options rms;
    em_sgd_options sgd;
} kind;

static em_optim *make(const kind *k, em_module *m)
{
    em_tensor *p[8];
    int n = em_module_parameters(m, NULL, p, 8);
    switch (k->which) {
    case 0: return em_optim_sgd(p, n, &k->sgd);
    case 1: return em_optim_adam(p, n, &k->adam);
    case 2: return em_optim_adamw(p, n, &k->adam);
    default: return em_optim_rmsprop(p, n, &k->rms);
    }
}

/* A fresh optimizer of the same kind with other (default) options. */
static em_optim *make_other(const kind *k, em_module *m)
{
    kind d = {.which = k->which, .adam = em_adam_defaults(), .rms = em_rmsprop_defaults(),
              .sgd = {.lr = 0.5}};
    if (k->which == 2)
        d.adam = em_adamw_defaults();
    return make(&d, m);
}

static const char *const STATE_NAMES[] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq",
                                          "square_avg", "momentum_buffer", "grad_avg"};

static void assert_optims_equal(em_optim *a, em_optim *b, int n)
{
    assert_true(em_optim_get_lr(a) == em_optim_get_lr(b));
    for (int i = 0; i < n; i++) {
        assert_int_equal(em_optim_state_steps(a, i), em_optim_state_steps(b, i));
        for (int k = 0; k < 6; k++) {
            em_tensor *x = em_optim_state(a, i, STATE_NAMES[k]);
            em_tensor *y = em_optim_state(b, i, STATE_NAMES[k]);
            assert_int_equal(x != NULL, y != NULL);
            if (x)
                assert_true(same_bits(x, y));
        }
    }
}

/* Train k steps, save model and optimizer; go on m steps (A). A fresh model and optimizer
 * of other options load both and go on m steps (B): A and B equal bit for bit. */
static void resume_check(const kind *k, int *n_state_tensors)
{
    em_module *ma = mlp(11, 5);
    em_optim *oa = make(k, ma);
    assert_non_null(oa);
    for (int s = 0; s < 3; s++)
        train_step(ma, oa, s);
    const char *mp = tmp_path("resume_model.safetensors");
    const char *op = tmp_path("resume_optim.safetensors");
    assert_int_equal(em_module_save(ma, mp, (const char *[]){"epoch", "3", NULL}), EM_OK);
    assert_int_equal(em_optim_save(oa, op, (const char *[]){"epoch", "3", NULL}), EM_OK);
    em_safetensors *sf;
    assert_int_equal(em_safetensors_open(g_ctx, op, &sf), EM_OK);
    assert_string_equal(em_safetensors_metadata(sf, "epoch"), "3");
    *n_state_tensors = em_safetensors_count(sf);
    em_safetensors_close(sf);

    em_module *mb = mlp(99, 5);
    em_optim *ob = make_other(k, mb);
    assert_non_null(ob);
    assert_int_equal(em_module_load(mb, mp), EM_OK);
    assert_int_equal(em_optim_load(ob, op), EM_OK);
    assert_ok_ctx();
    assert_optims_equal(oa, ob, 4);
    for (int s = 3; s < 6; s++) {
        train_step(ma, oa, s);
        train_step(mb, ob, s);
    }
    assert_modules_equal(ma, mb);
    assert_optims_equal(oa, ob, 4);
    em_optim_free(oa);
    em_optim_free(ob);
    em_module_free(ma);
    em_module_free(mb);
}

static void test_resume_adam(void **state)
{
    (void)state;
    kind k = {.which = 1, .adam = em_adam_defaults()};
    k.adam.lr = 0.01;
    k.adam.beta1 = 0.8;
    k.adam.amsgrad = true;
    k.adam.weight_decay = 0.05;
    int n;
    resume_check(&k, &n);
    assert_int_equal(n, 12);   /* exp_avg, exp_avg_sq, max_exp_avg_sq for 4 parameters */
    k.adam.amsgrad = false;
    k.adam.maximize = true;
    resume_check(&k, &n);
    assert_int_equal(n, 8);
}

static void test_resume_adamw(void **state)
{
    (void)state;
    kind k = {.which = 2, .adam = em_adamw_defaults()};
    k.adam.lr = 0.02;
    k.adam.weight_decay = 0.1;
    k.adam.eps = 1e-6;
    int n;
    resume_check(&k, &n);
    assert_int_equal(n, 8);
}

static void test_resume_rmsprop(void **state)
{
    (void)state;
    kind k = {.which = 3, .rms = em_rmsprop_defaults()};
    k.rms.lr = 0.003;
    k.rms.centered = true;
    k.rms.momentum = 0.9;
    k.rms.alpha = 0.9;
    int n;
    resume_check(&k, &n);
    assert_int_equal(n, 12);
    k.rms.centered = false;
    k.rms.momentum = 0;
    k.rms.weight_decay = 0.01;
    resume_check(&k, &n);
    assert_int_equal(n, 4);
}

static void test_resume_sgd(void **state)
{
    (void)state;
    kind k = {.which = 0, .sgd = {.lr = 0.05, .momentum = 0.9, .nesterov = true,
                                  .weight_decay = 1e-3}};
    int n;
    resume_check(&k, &n);
    assert_int_equal(n, 4);
    k.sgd = (em_sgd_options){.lr = 0.05};
    resume_check(&k, &n);
    assert_int_equal(n, 0);
}

/* The whole observable state of an optimizer, kept to compare after a failed load. */
typedef struct osnap {
    double lr;
    int64_t steps[8];
    em_tensor *t[8][6];
} osnap;

static void osnap_take(osnap *s, em_optim *o, int n)
{
    s->lr = em_optim_get_lr(o);
    for (int i = 0; i < n; i++) {
        s->steps[i] = em_optim_state_steps(o, i);
        for (int k = 0; k < 6; k++) {
            em_tensor *x = em_optim_state(o, i, STATE_NAMES[k]);
            s->t[i][k] = x ? em_tensor_keep(em_clone(x)) : NULL;
        }
    }
}

static void osnap_check_free(osnap *s, em_optim *o, int n)
{
    assert_true(em_optim_get_lr(o) == s->lr);
    for (int i = 0; i < n; i++) {
        assert_int_equal(em_optim_state_steps(o, i), s->steps[i]);
        for (int k = 0; k < 6; k++) {
            em_tensor *x = em_optim_state(o, i, STATE_NAMES[k]);
            assert_int_equal(x != NULL, s->t[i][k] != NULL);
            if (x)
                assert_true(same_bits(x, s->t[i][k]));
            em_tensor_free(s->t[i][k]);
        }
    }
}

static void expect_load_error(em_optim *o, int n, const char *path, em_status st,
                              const char *part)
{
    osnap s;
    osnap_take(&s, o, n);
    assert_int_equal(em_optim_load(o, path), st);
    if (!strstr(em_context_error(g_ctx), part))
        fail_msg("error '%s' lacks '%s'", em_context_error(g_ctx), part);
    em_context_clear_error(g_ctx);
    osnap_check_free(&s, o, n);
}

static void test_optim_errors(void **state)
{
    (void)state;
    em_module *m = mlp(5, 5);
    em_adam_options ao = em_adam_defaults();
    em_optim *adam = em_optim_adam((em_tensor *[]){NULL}, 0, &ao);   /* no parameters */
    assert_null(adam);
    em_context_clear_error(g_ctx);
    kind ka = {.which = 1, .adam = ao};
    adam = make(&ka, m);
    train_step(m, adam, 0);
    const char *adam_path = tmp_path("adam.safetensors");
    assert_int_equal(em_optim_save(adam, adam_path, NULL), EM_OK);

    /* another kind */
    kind ks = {.which = 0, .sgd = {.lr = 0.1, .momentum = 0.5}};
    em_optim *sgd = make(&ks, m);
    train_step(m, sgd, 1);
    expect_load_error(sgd, 4, adam_path, EM_ERR_INVALID,
                      "holds the state of Adam optimizer, which cannot be loaded into SGD");
    /* another parameter count */
    em_tensor *p[4];
    em_module_parameters(m, NULL, p, 4);
    em_optim *two = em_optim_adam(p, 2, &ao);
    train_step(m, two, 2);
    expect_load_error(two, 2, adam_path, EM_ERR_INVALID,
                      "loaded state dict contains a parameter group that doesn't match the size "
                      "of optimizer's group (4 parameters in the file, 2 in the optimizer)");
    /* as many parameters, other shapes */
    em_module *m6 = mlp(5, 6);
    em_optim *a6 = make(&ka, m6);
    train_step(m6, a6, 3);
    expect_load_error(a6, 4, adam_path, EM_ERR_SHAPE,
                      "tensor 'state.0.exp_avg' has shape [5, 4], but parameter 0 of the "
                      "optimizer has shape [6, 4]");
    /* a model file is no optimizer file */
    const char *mp = tmp_path("m.safetensors");
    assert_int_equal(em_module_save(m, mp, NULL), EM_OK);
    expect_load_error(adam, 4, mp, EM_ERR_INVALID, "is not an optimizer state file");
    /* reserved metadata keys */
    assert_int_equal(em_optim_save(adam, tmp_path("r.safetensors"),
                                   (const char *[]){"param_groups.0.lr", "1", NULL}),
                     EM_ERR_INVALID);
    assert_non_null(strstr(em_context_error(g_ctx), "metadata key 'param_groups.0.lr' is "
                                                     "reserved"));
    em_context_clear_error(g_ctx);

    /* damaged files, written from the real one's tensors and metadata with one change */
    em_safetensors *sf;
    assert_int_equal(em_safetensors_open(g_ctx, adam_path, &sf), EM_OK);
    int nm = em_safetensors_metadata_count(sf), nt = em_safetensors_count(sf);
    const char *names[16];
    em_tensor *ts[16];
    for (int i = 0; i < nt; i++) {
        names[i] = em_safetensors_name(sf, i);
        ts[i] = em_safetensors_load(sf, names[i], g_ctx);
    }
    static const struct {
        const char *key, *value, *error;
        em_status st;
    } bad[] = {
        {"param_groups.0.lr", "fast", "metadata param_groups.0.lr = 'fast' is not a number",
         EM_ERR_INVALID},
        {"param_groups.0.lr", "-0.5", "param_groups.0.lr: Invalid learning rate: -0.5",
         EM_ERR_INVALID},
        {"param_groups.0.betas", "[0.9, 1]", "Invalid beta parameter at index 1: 1.0",
         EM_ERR_INVALID},
        {"param_groups.0.amsgrad", "yes", "is not a boolean", EM_ERR_INVALID},
        {"param_groups.0.amsgrad", "true", "parameter 0 has taken 1 steps but its state has no "
         "tensor state.0.max_exp_avg_sq", EM_ERR_INVALID},
        {"state.2.step", "0", "metadata state.2.step = '0' is not a step count", EM_ERR_INVALID},
        {"state.9.step", "1", "unexpected metadata key 'state.9.step'", EM_ERR_INVALID},
        {"version", "2", "optimizer state format version 2 is not supported", EM_ERR_INVALID},
        {"param_groups.0.eps", NULL, "metadata key 'param_groups.0.eps' is missing",
         EM_ERR_INVALID},
        {"state.1.step", NULL, "parameter 1 has state tensors but no step count",
         EM_ERR_INVALID},
    };
    const char *bp = tmp_path("bad.safetensors");
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        const char *kv[64];
        int nkv = 0;
        bool replaced = false;
        for (int i = 0; i < nm; i++) {
            const char *key = em_safetensors_metadata_key(sf, i);
            const char *v = em_safetensors_metadata(sf, key);
            if (!strcmp(key, bad[b].key)) {
                replaced = true;
                if (!bad[b].value)
                    continue;
                v = bad[b].value;
            }
            kv[nkv++] = key;
            kv[nkv++] = v;
        }
        if (!replaced) {
            kv[nkv++] = bad[b].key;
            kv[nkv++] = bad[b].value;
        }
        kv[nkv] = NULL;
        assert_int_equal(em_save_safetensors(bp, names, ts, nt, kv), EM_OK);
        expect_load_error(adam, 4, bp, bad[b].st, bad[b].error);
    }
    /* an unexpected tensor name, and a missing one */
    const char *kv[64];
    int nkv = 0;
    for (int i = 0; i < nm; i++) {
        const char *key = em_safetensors_metadata_key(sf, i);
        kv[nkv++] = key;
        kv[nkv++] = em_safetensors_metadata(sf, key);
    }
    kv[nkv] = NULL;
    const char *renamed[16];
    memcpy(renamed, names, sizeof renamed);
    renamed[0] = "state.0.square_avg";
    assert_int_equal(em_save_safetensors(bp, renamed, ts, nt, kv), EM_OK);
    expect_load_error(adam, 4, bp, EM_ERR_INVALID, "unexpected tensor 'state.0.square_avg'");
    int j = em_safetensors_find(sf, "state.3.exp_avg_sq");
    renamed[0] = names[0];
    renamed[j] = renamed[nt - 1];
    em_tensor *moved[16];
    memcpy(moved, ts, sizeof moved);
    moved[j] = ts[nt - 1];
    assert_int_equal(em_save_safetensors(bp, renamed, moved, nt - 1, kv), EM_OK);
    expect_load_error(adam, 4, bp, EM_ERR_INVALID, "its state has no tensor state.3.exp_avg_sq");
    em_safetensors_close(sf);

    /* after all that, the real file still loads */
    assert_int_equal(em_optim_load(adam, adam_path), EM_OK);
    em_optim_free(adam);
    em_optim_free(sgd);
    em_optim_free(two);
    em_optim_free(a6);
    em_module_free(m);
    em_module_free(m6);
}

/* A parameter that never got a grad has no state in the file and none after loading; a
 * loaded file replaces state the optimizer had. */
static void test_optim_partial_state(void **state)
{
    (void)state;
    em_module *m = mlp(3, 5);
    em_tensor *p[4];
    em_module_parameters(m, NULL, p, 4);
    em_optim *o = em_optim_adam(p, 4, &(em_adam_options){.lr = 0.1, .beta1 = 0.9,
                                                         .beta2 = 0.99, .eps = 1e-8});
    /* only p[1] gets a grad */
    em_scope_begin(g_ctx);
    assert_int_equal(em_backward(em_sum(em_mul(p[1], p[1]))), EM_OK);
    em_scope_end(g_ctx);
    assert_int_equal(em_optim_step(o), EM_OK);
    const char *path = tmp_path("partial.safetensors");
    assert_int_equal(em_optim_save(o, path, NULL), EM_OK);
    em_safetensors *sf;
    assert_int_equal(em_safetensors_open(g_ctx, path, &sf), EM_OK);
    assert_int_equal(em_safetensors_count(sf), 2);
    assert_string_equal(em_safetensors_metadata(sf, "state.1.step"), "1");
    assert_null(em_safetensors_metadata(sf, "state.0.step"));
    assert_string_equal(em_safetensors_metadata(sf, "optimizer"), "Adam");
    assert_string_equal(em_safetensors_metadata(sf, "param_groups.0.params"), "[0, 1, 2, 3]");
    assert_string_equal(em_safetensors_metadata(sf, "param_groups.0.lr"), "0.10000000000000001");
    assert_string_equal(em_safetensors_metadata(sf, "param_groups.0.betas"),
                        "[0.90000000000000002, 0.98999999999999999]");
    assert_string_equal(em_safetensors_metadata(sf, "param_groups.0.amsgrad"), "false");
    em_safetensors_close(sf);

    em_module *m2 = mlp(4, 5);
    em_tensor *q[4];
    em_module_parameters(m2, NULL, q, 4);
    em_optim *o2 = em_optim_adam(q, 4, &(em_adam_options){.lr = 0.2, .beta1 = 0.5,
                                                          .beta2 = 0.5});
    train_step(m2, o2, 0);   /* every parameter has state, to be replaced */
    train_step(m2, o2, 1);
    assert_int_equal(em_optim_load(o2, path), EM_OK);
    assert_optims_equal(o, o2, 4);
    assert_null(em_optim_state(o2, 0, "exp_avg"));
    assert_int_equal(em_optim_state_steps(o2, 0), 0);
    assert_int_equal(em_optim_state_steps(o2, 1), 1);
    em_optim_free(o);
    em_optim_free(o2);
    em_module_free(m);
    em_module_free(m2);
}

/* A load that fails at any allocation or kernel call (a device fault) changes nothing; the
 * retried load succeeds. */
static void test_load_faults(void **state)
{
    (void)state;
    void (*hooks[2])(long) = {em__test_fail_alloc_after, em__test_fail_kernel_after};
    em_module *a = mlp(21, 5);
    kind k = {.which = 1, .adam = em_adam_defaults()};
    k.adam.amsgrad = true;
    em_optim *oa = make(&k, a);
    train_step(a, oa, 0);
    train_step(a, oa, 1);
    const char *mp = tmp_path("fault_model.safetensors");
    const char *op = tmp_path("fault_optim.safetensors");
    assert_int_equal(em_module_save(a, mp, NULL), EM_OK);
    assert_int_equal(em_optim_save(oa, op, NULL), EM_OK);
    for (int h = 0; h < 2; h++) {
        em_module *b = mlp(22, 5);
        em_optim *ob = make_other(&k, b);
        train_step(b, ob, 5);
        int failures = 0;
        for (long n = 1;; n++) {
            snap s;
            snap_take(&s, b);
            hooks[h](n);
            em_status st = em_module_load(b, mp);
            hooks[h](0);
            if (st == EM_OK) {
                for (int i = 0; i < s.n; i++)
                    em_tensor_free(s.t[i]);
                break;
            }
            failures++;
            em_context_clear_error(g_ctx);
            snap_check_free(&s, b);
            assert_true(n < 10000);
        }
        assert_true(failures > 0);
        assert_modules_equal(a, b);
        failures = 0;
        for (long n = 1;; n++) {
            osnap s;
            osnap_take(&s, ob, 4);
            hooks[h](n);
            em_status st = em_optim_load(ob, op);
            hooks[h](0);
            if (st == EM_OK) {
                for (int i = 0; i < 4; i++)
                    for (int j = 0; j < 6; j++)
                        em_tensor_free(s.t[i][j]);
                break;
            }
            failures++;
            em_context_clear_error(g_ctx);
            osnap_check_free(&s, ob, 4);
            assert_true(n < 10000);
        }
        assert_true(failures > 0);
        assert_optims_equal(oa, ob, 4);
        em_optim_free(ob);
        em_module_free(b);
    }
    em_optim_free(oa);
    em_module_free(a);
}

static void test_null_args(void **state)
{
    (void)state;
    assert_int_equal(em_module_save(NULL, "x", NULL), EM_ERR_INVALID);
    assert_int_equal(em_module_load(NULL, "x"), EM_ERR_INVALID);
    assert_int_equal(em_optim_save(NULL, "x", NULL), EM_ERR_INVALID);
    assert_int_equal(em_optim_load(NULL, "x"), EM_ERR_INVALID);
    em_module *m = mlp(1, 5);
    assert_int_equal(em_module_load(m, NULL), EM_ERR_INVALID);
    assert_int_equal(em_module_save(m, "", NULL), EM_ERR_INVALID);
    em_context_clear_error(g_ctx);
    em_module_free(m);
}

static int make_dir(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/ember-ckpt-XXXXXX", t && *t ? t : "/tmp");
    return mkdtemp(g_dir) ? 0 : -1;
}

static void remove_dir(void)
{
    static const char *const files[] = {
        "model.safetensors", "model5.safetensors", "keys.safetensors", "f64.safetensors",
        "half.safetensors", "resume_model.safetensors", "resume_optim.safetensors",
        "adam.safetensors", "m.safetensors", "bad.safetensors", "partial.safetensors",
        "fault_model.safetensors", "fault_optim.safetensors",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        unlink(tmp_path(files[i]));
    rmdir(g_dir);
}

int main(void)
{
    int rc = test_backend_setup();
    if (rc >= 0)
        return rc;
    if (make_dir()) {
        printf("1..1\nnot ok 1 - cannot create a temporary directory\n");
        em_context_free(g_ctx);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        EM_TEST(test_module_round_trip), EM_TEST(test_module_size_mismatch),
        EM_TEST(test_module_keys),       EM_TEST(test_module_converts),
        EM_TEST(test_resume_adam),       EM_TEST(test_resume_adamw),
        EM_TEST(test_resume_rmsprop),    EM_TEST(test_resume_sgd),
        EM_TEST(test_optim_errors),      EM_TEST(test_optim_partial_state),
        EM_TEST(test_load_faults),       EM_TEST(test_null_args),
    };
    char name[64];
    snprintf(name, sizeof name, "checkpoints on %s", test_backend_name());
    rc = _cmocka_run_group_tests(name, tests, sizeof tests / sizeof tests[0], NULL, NULL);
    remove_dir();
    em_context_free(g_ctx);
    return rc;
}
