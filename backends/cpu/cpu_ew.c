/* backends/cpu/cpu_ew.c — the strided walker every elementwise kernel of the cpu backend
 * runs on: an odometer over the outer dims that hands whole rows of the innermost dim to a
 * typed row function; big launches are cut into chunks of the logical index range and run
 * on the instance's thread pool. Every element is computed by the same code whatever the
 * chunking, so results do not depend on the thread count. Also view validation and the
 * kernels' shared error messages. */
#include "cpu_ew.h"

#include <string.h>

void cpu_ew_walk(const ew_plan *pl, int64_t start, int64_t count)
{
    const int nd = pl->ndim, last = nd - 1, nops = pl->nops;
    int64_t idx[EM_MAX_DIMS];
    char *p[4] = {NULL, NULL, NULL, NULL};
    int64_t inner[4] = {0, 0, 0, 0};
    int64_t rem = start;
    for (int d = last; d >= 0; d--) {
        idx[d] = rem % pl->shape[d];
        rem /= pl->shape[d];
    }
    for (int k = 0; k < nops; k++) {
        int64_t off = 0;
        for (int d = 0; d < nd; d++)
            off += idx[d] * pl->st[k][d];
        p[k] = pl->base[k] + off * pl->esz[k];
        inner[k] = pl->st[k][last];
    }
    int64_t lin = start;
    while (count > 0) {
        int64_t len = pl->shape[last] - idx[last];
        if (len > count)
            len = count;
        pl->fn(len, p, inner, pl->ka, lin);
        count -= len;
        lin += len;
        if (count == 0)
            break;
        /* the row was finished: back to its start, then step the outer odometer */
        for (int k = 0; k < nops; k++)
            p[k] -= idx[last] * inner[k] * pl->esz[k];
        idx[last] = 0;
        for (int d = last - 1; d >= 0; d--) {
            idx[d]++;
            for (int k = 0; k < nops; k++)
                p[k] += pl->st[k][d] * pl->esz[k];
            if (idx[d] < pl->shape[d])
                break;
            for (int k = 0; k < nops; k++)
                p[k] -= pl->shape[d] * pl->st[k][d] * pl->esz[k];
            idx[d] = 0;
        }
    }
}

static void ew_task(void *arg, int64_t t, int worker)
{
    (void)worker;
    const ew_plan *pl = arg;
    int64_t start = t * pl->chunk;
    int64_t n = pl->numel - start < pl->chunk ? pl->numel - start : pl->chunk;
    cpu_ew_walk(pl, start, n);
}

void cpu_ew_run(cpu_inst *inst, ew_plan *pl, int64_t par_min)
{
    int nt = 1;
    if (pl->numel >= par_min)
        nt = cpu_threads(inst);
    if (nt > 1 && pl->numel < PAR_CONTENDED && par_min >= PAR_CHEAP && cpu_contended(inst))
        nt = 1;
    if (nt <= 1) {
        cpu_ew_walk(pl, 0, pl->numel);
        return;
    }
    /* a few chunks per thread for balance; multiples of 1024 keep chunk edges off
     * shared cache lines for contiguous outputs of every dtype */
    int64_t chunk = pl->numel / ((int64_t)nt * 4);
    if (chunk < PAR_CHUNK_MIN)
        chunk = PAR_CHUNK_MIN;
    chunk = (chunk + 1023) & ~(int64_t)1023;
    pl->chunk = chunk;
    cpu_parallel(inst, (pl->numel + chunk - 1) / chunk, ew_task, pl);
}

int cpu_valid_dtype(int32_t dt)
{
    return dt >= 0 && dt < EM_DTYPE_COUNT_;
}

em_status cpu_check_view(cpu_inst *inst, const char *kname, const char *what,
                            const em_kview *v)
{
    if (!v || !v->buf)
        return CPU_ERR(inst, EM_ERR_INVALID, "%s: %s view is missing", kname, what);
    if (!cpu_valid_dtype(v->dtype))
        return CPU_ERR(inst, EM_ERR_INVALID, "%s: %s has invalid dtype %d", kname, what,
                       (int)v->dtype);
    if (v->ndim < 1 || v->ndim > EM_MAX_DIMS)
        return CPU_ERR(inst, EM_ERR_INVALID, "%s: %s has %d dims (1..%d supported)", kname,
                       what, (int)v->ndim, EM_MAX_DIMS);
    for (int d = 0; d < v->ndim; d++)
        if (v->shape[d] < 0)
            return CPU_ERR(inst, EM_ERR_INVALID, "%s: %s has negative size %lld in dim %d",
                           kname, what, (long long)v->shape[d], d);
    return EM_OK;
}

/* Validate out and n inputs (same ndim and shape) and build the walker plan. */
em_status cpu_ew_setup(cpu_inst *inst, const char *kname, const em_kargs *ka, int nin,
                          row_fn fn, ew_plan *pl)
{
    static const char *const names[4] = {"out", "in[0]", "in[1]", "in[2]"};
    const em_kview *v[4] = {ka->out, ka->in[0], ka->in[1], ka->in[2]};
    em_status st;
    for (int k = 0; k <= nin; k++)
        if ((st = cpu_check_view(inst, kname, names[k], v[k])) != EM_OK)
            return st;
    const em_kview *o = v[0];
    for (int k = 1; k <= nin; k++) {
        if (v[k]->ndim != o->ndim)
            return CPU_ERR(inst, EM_ERR_INVALID, "%s: %s has %d dims but out has %d", kname,
                           names[k], (int)v[k]->ndim, (int)o->ndim);
        for (int d = 0; d < o->ndim; d++)
            if (v[k]->shape[d] != o->shape[d])
                return CPU_ERR(inst, EM_ERR_INVALID,
                               "%s: %s has size %lld in dim %d but out has %lld", kname,
                               names[k], (long long)v[k]->shape[d], d,
                               (long long)o->shape[d]);
    }
    memset(pl, 0, sizeof *pl);
    pl->nops = nin + 1;
    pl->ndim = o->ndim;
    pl->numel = 1;
    for (int d = 0; d < o->ndim; d++) {
        pl->shape[d] = o->shape[d];
        pl->numel *= o->shape[d];
    }
    for (int k = 0; k <= nin; k++) {
        pl->esz[k] = (int64_t)emk_dtype_size(v[k]->dtype);
        pl->base[k] = (char *)v[k]->buf + v[k]->offset * pl->esz[k];
        memcpy(pl->st[k], v[k]->strides, sizeof(int64_t) * (size_t)o->ndim);
    }
    pl->fn = fn;
    pl->ka = ka;
    return EM_OK;
}

em_status cpu_unsupported(cpu_inst *inst, const char *kname, int32_t dt)
{
    return CPU_ERR(inst, EM_ERR_UNSUPPORTED, "%s: dtype %s is not supported by the cpu backend",
                   kname, emk_dtype_name(dt));
}

em_status cpu_mismatch(cpu_inst *inst, const char *kname, const char *what, int32_t got,
                          int32_t want)
{
    return CPU_ERR(inst, EM_ERR_DTYPE, "%s: %s has dtype %s, expected %s", kname, what,
                   emk_dtype_name(got), emk_dtype_name(want));
}

/* Run a kernel whose row functions are indexed by one dtype (table[EM_DTYPE_COUNT_]).
 * `key` selects the table entry; `same` lists the operands that must share that dtype. */
em_status cpu_ew_launch(void *dev, const em_kargs *ka, const char *kname, int nin,
                           const row_fn *table, int32_t key, unsigned same, int64_t par_min)
{
    cpu_inst *inst = dev;
    const em_kview *v[4] = {ka->out, ka->in[0], ka->in[1], ka->in[2]};
    static const char *const names[4] = {"out", "in[0]", "in[1]", "in[2]"};
    for (int k = 0; k <= nin; k++)
        if (!v[k])
            return CPU_ERR(inst, EM_ERR_INVALID, "%s: %s view is missing", kname, names[k]);
    if (key < 0 || key >= EM_DTYPE_COUNT_ || !table[key])
        return cpu_unsupported(inst, kname, key);
    for (int k = 0; k <= nin; k++)
        if ((same >> k) & 1u && v[k]->dtype != key)
            return cpu_mismatch(inst, kname, names[k], v[k]->dtype, key);
    ew_plan pl;
    em_status st = cpu_ew_setup(inst, kname, ka, nin, table[key], &pl);
    if (st != EM_OK)
        return st;
    if (pl.numel > 0)
        cpu_ew_run(inst, &pl, par_min);
    return EM_OK;
}
