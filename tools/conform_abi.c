/* tools/conform_abi.c — the clauses of plugin ABI 1.1 that are not one op's result, each a
 * row of the table:
 *   abi.describe      the describe call gives the keys an instance accepts, creates nothing,
 *                     and keeps its contract (a 1.0 plugin, described by an instance, passes);
 *   abi.host_buffers  a device that declares host buffers really has them: the address the
 *                     core derives shows the tensor, and writes through it are the tensor's;
 *   abi.async         asynchronous copies are ordered with the device's kernels through
 *                     events: what an upload wrote is what the next kernel reads, a download
 *                     after a kernel gets the kernel's result, a second upload into a tensor
 *                     a kernel just used does not overtake it.
 * The op rows check per-kernel dtypes: every declared dtype runs on the plugin and must pass;
 * the rest run on cpu and are marked so. */
#include "conform.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool same_keys(const char *const *a, const char *const *b)
{
    int na = 0, nb = 0;
    while (a && a[na])
        na++;
    while (b && b[nb])
        nb++;
    if (na != nb)
        return false;
    for (int i = 0; i < na; i++) {
        bool found = false;
        for (int j = 0; j < nb && !found; j++)
            found = !strcmp(a[i], b[j]);
        if (!found)
            return false;
    }
    return true;
}

static const char *keys_text(const char *const *k)
{
    char buf[256] = "";
    size_t used = 0;
    for (int i = 0; k && k[i] && used < sizeof buf; i++)
        used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%s", i ? ", " : "", k[i]);
    return cf_fmt("%s", used ? buf : "(none)");
}

static void run_describe(void)
{
    const em_plugin_info *pi = cf.info;
    cf_row *r = cf_row_get("abi.describe", "");
    if (!r || !pi)
        return;
    cf_case_begin();
    if (pi->describe_problem[0])
        cf_fail(r, "describe call: %s", pi->describe_problem);
    else if (!pi->described_keys)
        cf_fail(r, "the plugin could not be described");
    else if (!same_keys(pi->described_keys, pi->config_keys))
        cf_fail(r, "the describe call accepts keys {%s}, an instance {%s}: device.ini is checked "
                "against the first", keys_text(pi->described_keys), keys_text(pi->config_keys));
    else
        cf_pass(r);
    cf_case_end();
}

static void run_host_buffers(void)
{
    const em_plugin_info *pi = cf.info;
    int d = em_context_device_index(cf.ctx);
    if (!pi || d < 0 || d >= pi->device_count || !(pi->devices[d].flags & EM_DEVICE_HOST_BUFFERS))
        return;
    cf_row *r = cf_row_get("abi.host_buffers", "");
    if (!r)
        return;
    for (int n = 1; n <= 300000; n *= 300) {
        cf_case_begin();
        double *v = cf_tmp(sizeof(double) * (size_t)n);
        for (int i = 0; i < n; i++)
            v[i] = cf_uniform(-4, 4);
        em_tensor *t = cf_upload(r, EM_F32, 1, (const int64_t[]){n}, v);
        float *p = t ? em_tensor_data_ptr(t) : NULL;
        if (!t || !p) {
            cf_fail(r, "em_tensor_data_ptr of %d elements: %s", n, em_context_error(cf.ctx));
        } else if ((uintptr_t)p % EM_HOST_BUFFER_ALIGN) {
            cf_fail(r, "buffer at %p is not aligned to %d bytes", (void *)p, EM_HOST_BUFFER_ALIGN);
        } else {
            bool ok = true;
            for (int i = 0; i < n && ok; i++)
                ok = p[i] == (float)v[i];
            if (!ok) {
                cf_fail(r, "%d elements: the memory at the buffer's address is not the tensor "
                        "(a buffer handle must be the data's address)", n);
            } else {
                for (int i = 0; i < n; i++)
                    p[i] = (float)i;
                double *got = cf_read(r, t, "after a write through the address");
                for (int i = 0; got && i < n && ok; i++)
                    ok = got[i] == (double)i;
                if (got && !ok)
                    cf_fail(r, "%d elements: a write through the buffer's address is not seen by "
                            "copy_d2h", n);
                else if (got)
                    cf_pass(r);
            }
        }
        cf_case_end();
    }
}

/* One ordering scenario; false (recorded) on the first wrong element. */
static bool async_case(cf_row *r, int n)
{
    size_t bytes = sizeof(float) * (size_t)n;
    float *in = em_pinned_alloc(cf.ctx, bytes), *out = em_pinned_alloc(cf.ctx, bytes);
    if (!in || !out) {
        cf_fail(r, "em_pinned_alloc(%zu): %s", bytes, em_context_error(cf.ctx));
        em_pinned_free(cf.ctx, in);
        em_pinned_free(cf.ctx, out);
        return false;
    }
    bool ok = true;
    const char *what = "";
    for (int i = 0; i < n; i++)
        in[i] = (float)(i % 1000);
    em_tensor *t = em_zeros(cf.ctx, EM_F32, EM_SHAPE(n));
    /* upload, then a kernel reading it, then a download of the kernel's result */
    ok = t && em_tensor_from_host_async(t, in, bytes) == EM_OK;
    em_tensor *u = ok ? em_add(t, t) : NULL;
    ok = u && em_tensor_to_host_async(u, out, bytes) == EM_OK && em_synchronize(cf.ctx) == EM_OK;
    for (int i = 0; i < n && ok; i++)
        if (out[i] != 2.0f * (float)(i % 1000)) {
            ok = false;
            what = cf_fmt("upload, add, download: element %d is %g, want %g", i, out[i],
                          2.0 * (i % 1000));
        }
    /* a second upload into the tensor the add just read, an in-place kernel, a download */
    if (ok) {
        for (int i = 0; i < n; i++)
            in[i] = 1.0f;
        ok = em_tensor_from_host_async(t, in, bytes) == EM_OK && em_mul_scalar_(t, 3.0) == EM_OK &&
             em_tensor_to_host_async(t, out, bytes) == EM_OK && em_synchronize(cf.ctx) == EM_OK;
        for (int i = 0; i < n && ok; i++)
            if (out[i] != 3.0f) {
                ok = false;
                what = cf_fmt("second upload, mul_, download: element %d is %g, want 3", i, out[i]);
            }
        /* the earlier result u must still be what it was */
        double *gu = ok ? cf_read(r, u, "the first result after the second upload") : NULL;
        for (int i = 0; gu && i < n && ok; i++)
            if (gu[i] != 2.0 * (i % 1000)) {
                ok = false;
                what = cf_fmt("the first result changed after the second upload (element %d)", i);
            }
    }
    if (!ok)
        cf_fail(r, "%d elements: %s%s", n, what[0] ? what : "a call failed: ",
                what[0] ? "" : em_context_error(cf.ctx));
    em_pinned_free(cf.ctx, in);
    em_pinned_free(cf.ctx, out);
    return ok;
}

static void run_async(void)
{
    const em_plugin_info *pi = cf.info;
    if (!pi || !(pi->features & (EM_PLUGIN_ASYNC_COPIES | EM_PLUGIN_PINNED_MEMORY)))
        return;
    cf_row *r = cf_row_get("abi.async", "");
    if (!r)
        return;
    for (int n = 7; n <= 1 << 20; n *= 64) {
        cf_case_begin();
        if (async_case(r, n))
            cf_pass(r);
        cf_case_end();
    }
}

void cf_run_abi(void)
{
    run_describe();
    run_host_buffers();
    run_async();
}
