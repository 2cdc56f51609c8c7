/* tests/plugin_pair.h — for tests that call a backend plugin's kernels directly, as the core
 * does, and hold them against references: plugins (the one under test, and the cpu plugin)
 * loaded through their entry symbols with a device open, their dtype declarations, and one
 * kernel call on host views (kernel_views.h) run on a plugin with its outputs read back.
 * Include in one file per test program (test_host.h's host table), after <cmocka.h>. */
#ifndef EMBER_TEST_PLUGIN_PAIR_H
#define EMBER_TEST_PLUGIN_PAIR_H

#include <ember/backend.h>

#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_views.h"
#include "test_host.h"

typedef struct plugin {
    const char *name;
    em_backend be;
    const em_backend_ops *ops;
    void *dev;
    int fp64;
} plugin;

/* Load ember-backend-<name>.so from EMBER_TEST_BACKEND_DIR and open its default device.
 * Returns 0, or fills why. */
static inline int plugin_open(plugin *P, const char *name, char *why, size_t n)
{
    memset(P, 0, sizeof *P);
    P->name = name;
    const char *dir = getenv("EMBER_TEST_BACKEND_DIR");
    if (!dir || !*dir) {
        snprintf(why, n, "EMBER_TEST_BACKEND_DIR is not set: run with `make check`");
        return -1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/ember-backend-%s.so", dir, name);
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    void *sym = dl ? dlsym(dl, EM_BACKEND_ENTRY_NAME) : NULL;
    if (!sym) {
        snprintf(why, n, "cannot load %.1000s: %.150s", path, dlerror());
        return -1;
    }
    em_backend_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry);
    P->be.struct_size = sizeof P->be;
    if (entry(&g_host, NULL, NULL, 0, &P->be) != EM_OK) {
        snprintf(why, n, "%s entry failed: %s", name, g_msg);
        return -1;
    }
    P->ops = P->be.ops;
    int count = 0;
    em_device_props props;
    memset(&props, 0, sizeof props);
    props.struct_size = sizeof props;
    if (P->ops->device_count(P->be.ctx, &count) != EM_OK || count < 1 ||
        P->ops->device_props(P->be.ctx, 0, &props) != EM_OK ||
        P->ops->device_open(P->be.ctx, -1, &P->dev) != EM_OK) {
        snprintf(why, n, "%s: %s", name, g_msg);
        for (char *p = why; *p; p++)
            if (*p == '\n')
                *p = ' ';
        P->ops->shutdown(P->be.ctx);
        P->ops = NULL;
        return -1;
    }
    P->fp64 = props.fp64 != 0;
    return 0;
}

static inline void plugin_close(plugin *P)
{
    if (!P->ops)
        return;
    P->ops->device_close(P->dev);
    P->ops->shutdown(P->be.ctx);
    P->ops = NULL;
}

/* P declares dt for k explicitly (a mask of 0 stands for defaults we do not guess at) */
static inline int declares(const plugin *P, kdesc k, int32_t dt)
{
    em_kernel_fn fn;
    memcpy(&fn, (const char *)P->ops + k.op, sizeof fn);
    const em_kernel_dtypes *t = P->ops->dtypes;
    if (!fn || !t || t->struct_size < k.mask + sizeof(em_dtype_mask))
        return 0;
    em_dtype_mask m;
    memcpy(&m, (const char *)t + k.mask, sizeof m);
    return (m & EM_DTYPE_BIT(dt)) && (dt != EM_F64 || P->fp64);
}

/* ------------------------------------------------------------------ running kernels */

/* One call of kernel k on P: buffers for every view, inputs and outputs uploaded, the call,
 * outputs read back into their hv (after a failure too: it must not have written them).
 * Returns the kernel's status. */
static inline em_status run_on(plugin *P, kdesc k, hv *outs, int nout, hv *ins, int nin,
                        const double *p, const int64_t *ip, int nip)
{
    enum { MAXV = 4 };
    void *buf[2 * MAXV] = {0};
    em_kview kv[2 * MAXV];
    const em_kview *po[MAXV] = {0}, *pi[MAXV] = {0};
    hv *all[2 * MAXV];
    int nall = 0;
    for (int i = 0; i < nout; i++)
        all[nall++] = &outs[i];
    for (int i = 0; i < nin; i++)
        all[nall++] = &ins[i];
    for (int i = 0; i < nall; i++) {
        size_t bytes = all[i]->n * dtsize(all[i]->dt);
        if (P->ops->buffer_alloc(P->dev, bytes, &buf[i]) != EM_OK ||
            P->ops->copy_h2d(P->dev, buf[i], 0, all[i]->b, bytes) != EM_OK)
            fail_msg("%s: buffer of %zu bytes: %s", P->name, bytes, g_msg);
        memset(&kv[i], 0, sizeof kv[i]);
        kv[i].struct_size = sizeof kv[i];
        kv[i].buf = buf[i];
        kv[i].offset = all[i]->offset;
        kv[i].dtype = all[i]->dt;
        kv[i].ndim = all[i]->ndim;
        memcpy(kv[i].shape, all[i]->shape, sizeof kv[i].shape);
        memcpy(kv[i].strides, all[i]->strides, sizeof kv[i].strides);
        if (i < nout)
            po[i] = &kv[i];
        else
            pi[i - nout] = &kv[i];
    }
    em_kargs a;
    memset(&a, 0, sizeof a);
    a.struct_size = sizeof a;
    a.out = po[0];
    for (int i = 0; i < nin && i < 3; i++)
        a.in[i] = pi[i];
    for (int i = 0; p && i < 4; i++)
        a.p[i] = p[i];
    a.n_out = (uint32_t)nout;
    a.outs = po;
    a.n_in = (uint32_t)nin;
    a.ins = pi;
    a.n_ip = (uint32_t)nip;
    a.ip = nip ? ip : NULL;
    em_kernel_fn fn;
    memcpy(&fn, (const char *)P->ops + k.op, sizeof fn);
    assert_non_null(fn);
    g_msg[0] = 0;
    em_status st = fn(P->dev, &a);
    if (P->ops->synchronize(P->dev) != EM_OK)
        fail_msg("%s: synchronize after %s: %s", P->name, k.name, g_msg);
    for (int i = 0; i < nout; i++)
        if (P->ops->copy_d2h(P->dev, outs[i].b, buf[i], 0, outs[i].n * dtsize(outs[i].dt)) != EM_OK)
            fail_msg("%s: copy_d2h: %s", P->name, g_msg);
    for (int i = 0; i < nall; i++)
        P->ops->buffer_free(P->dev, buf[i]);
    return st;
}

#endif
