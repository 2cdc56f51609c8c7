/* core/io/checkpoint_module.c — a whole model as a safetensors file: em_module_save writes
 * what safetensors.torch.save_file(model.state_dict(), path) writes (every parameter and
 * buffer under its state_dict name), em_module_load is model.load_state_dict(load_file(path)) with
 * strict=True: PyTorch's checks and messages, then every parameter written in place in one
 * transaction (txn.c), so parameters keep their identity (optimizers holding them stay valid)
 * and a failure anywhere changes none of them. */
#include "config.h"
#include "internal.h"
#include "nn/nn_impl.h"

#include <ember/io.h>
#include <ember/nn.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The module's state_dict: names and tensors of its parameters and buffers (malloc'd arrays;
 * *n may be 0). */
static em_status params_of(em_module *m, const char *what, const char ***names,
                           em_tensor ***tensors, int *n)
{
    (void)what;
    char **nm;
    em_status st = em__module_state(m, &nm, tensors, n);
    *names = (const char **)nm;
    return st;
}

static void free_names(const char **names, int n)
{
    for (int i = 0; names && i < n; i++)
        free((char *)names[i]);
    free(names);
}

EMBER_API em_status em_module_save(em_module *m, const char *path, const char *const *metadata_kv)
{
    if (!m)
        return em__error_global(EM_ERR_INVALID, "em_module_save: NULL module");
    const char **names;
    em_tensor **ts;
    int n;
    em_status st = params_of(m, "em_module_save", &names, &ts, &n);
    if (st != EM_OK)
        return st;
    st = em_save_safetensors(path, names, ts, n, metadata_kv);
    free_names(names, n);
    free(ts);
    return st;
}

/* A growing message (PyTorch's "Error(s) in loading state_dict for ..." list). */
typedef struct msgbuf {
    char *s;
    size_t len, cap;
    bool oom;
} msgbuf;

static void msg_add(msgbuf *b, const char *fmt, ...) EM_PRINTF(2, 3);
static void msg_add(msgbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (k < 0) {
        b->oom = true;
        return;
    }
    if (b->len + (size_t)k + 1 > b->cap) {
        size_t cap = (b->len + (size_t)k + 1) * 2;
        char *s = em__realloc(b->s, cap);
        if (!s) {
            b->oom = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)k;
}

/* "torch.Size([3, 4])" */
static void msg_size(msgbuf *b, int ndim, const int64_t *shape)
{
    msg_add(b, "torch.Size([");
    for (int d = 0; d < ndim; d++)
        msg_add(b, "%s%lld", d ? ", " : "", (long long)shape[d]);
    msg_add(b, "])");
}

static bool same_shape(int na, const int64_t *a, int nb, const int64_t *b)
{
    return na == nb && (na == 0 || !memcmp(a, b, sizeof *a * (size_t)na));
}

/* PyTorch's strict checks: missing keys, unexpected keys, size mismatches (and, beyond
 * PyTorch, dtypes that cannot become a float parameter). EM_OK or the error recorded. */
static em_status check_keys(em_module *m, em_safetensors *sf, const char *path,
                            const char **names, em_tensor **ts, int n)
{
    em_context *ctx = m->ctx;
    msgbuf b = {0};
    int bad = 0;
    msg_add(&b, "em_module_load: '%s': Error(s) in loading state_dict for %s:", path, m->name);
    int k = 0;
    for (int i = 0; i < n; i++)
        if (em_safetensors_find(sf, names[i]) < 0)
            msg_add(&b, "%s\"%s\"", k++ ? ", " : "\n\tMissing key(s) in state_dict: ", names[i]);
    if (k)
        msg_add(&b, ". ");
    bad += k;
    k = 0;
    int nf = em_safetensors_count(sf);
    for (int j = 0; j < nf; j++) {
        const char *fname = em_safetensors_name(sf, j);
        int i = 0;
        while (i < n && strcmp(names[i], fname))
            i++;
        if (i == n)
            msg_add(&b, "%s\"%s\"", k++ ? ", " : "\n\tUnexpected key(s) in state_dict: ", fname);
    }
    if (k)
        msg_add(&b, ". ");
    bad += k;
    for (int i = 0; i < n; i++) {
        int j = em_safetensors_find(sf, names[i]);
        if (j < 0)
            continue;
        const char *dt = em_safetensors_dtype(sf, j);
        if (!em_dtype_is_floating(em_tensor_dtype(ts[i]))) {
            /* an integer buffer (num_batches_tracked) loads from an integer tensor */
            if (strcmp(dt, "I64") && strcmp(dt, "I32") && strcmp(dt, "U8")) {
                msg_add(&b, "\n\tdtype mismatch for %s: the checkpoint holds %s, an integer "
                        "buffer loads from I64, I32 or U8.", names[i], dt);
                bad++;
                continue;
            }
        } else if (strcmp(dt, "F32") && strcmp(dt, "F64") && strcmp(dt, "F16") &&
                   strcmp(dt, "BF16")) {
            msg_add(&b, "\n\tdtype mismatch for %s: the checkpoint holds %s, a floating-point "
                    "parameter loads from F32, F64, F16 or BF16.", names[i], dt);
            bad++;
            continue;
        }
        if (same_shape(em_safetensors_ndim(sf, j), em_safetensors_shape(sf, j),
                       em_tensor_ndim(ts[i]), em_tensor_shape(ts[i])))
            continue;
        msg_add(&b, "\n\tsize mismatch for %s: copying a param with shape ", names[i]);
        msg_size(&b, em_safetensors_ndim(sf, j), em_safetensors_shape(sf, j));
        msg_add(&b, " from checkpoint, the shape in current model is ");
        msg_size(&b, em_tensor_ndim(ts[i]), em_tensor_shape(ts[i]));
        msg_add(&b, ".");
        bad++;
    }
    em_status st = EM_OK;
    if (b.oom)
        st = em__error(ctx, EM_ERR_OOM, "em_module_load: '%s': out of memory", path);
    else if (bad)
        st = em__error(ctx, EM_ERR_INVALID, "%s", b.s);
    free(b.s);
    return st;
}

EMBER_API em_status em_module_load(em_module *m, const char *path)
{
    if (!m)
        return em__error_global(EM_ERR_INVALID, "em_module_load: NULL module");
    em_context *ctx = m->ctx;
    if (!path || !*path)
        return em__error(ctx, EM_ERR_INVALID, "em_module_load: no path given");
    const char **names;
    em_tensor **ts;
    int n;
    em_status st = params_of(m, "em_module_load", &names, &ts, &n);
    if (st != EM_OK)
        return st;
    em_safetensors *sf = NULL;
    st = em_safetensors_open(ctx, path, &sf);
    if (st == EM_OK)
        st = check_keys(m, sf, path, names, ts, n);
    if (st != EM_OK) {
        em_safetensors_close(sf);
        free_names(names, n);
        free(ts);
        return st;
    }
    /* every value read and converted first; then one transaction writes them all */
    em_no_grad_begin(ctx);
    em_scope_begin(ctx);
    em__txn x;
    em__txn_begin(&x, ctx);
    for (int i = 0; i < n && st == EM_OK; i++) {
        em__tensor *p = em__obj(ts[i]);
        em_tensor *v = p ? em_safetensors_load(sf, names[i], ctx) : NULL;
        if (v && em_tensor_dtype(v) != p->dtype)
            v = em_to_dtype(v, p->dtype);
        em__tensor *vo = v ? em__obj(v) : NULL;
        st = vo ? em__txn_write(&x, p, vo) : em__failed(ctx) ? em__failed(ctx) : EM_ERR_INTERNAL;
    }
    if (st == EM_OK)
        em__txn_commit(&x);
    else
        em__txn_abort(&x);
    em_scope_end(ctx);
    em_no_grad_end(ctx);
    em_safetensors_close(sf);
    free_names(names, n);
    free(ts);
    return st;
}
