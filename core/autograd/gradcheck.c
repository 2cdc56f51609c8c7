/* core/autograd/gradcheck.c — compare autograd's gradients with central finite differences, as
 * torch.autograd.gradcheck does. The analytic side runs on the inputs as given (any dtype,
 * views, backend); the numeric side on contiguous f64 copies, so f32 ops are checked
 * against a reference that is not limited by f32 rounding. */
#include "config.h"
#include "internal.h"

#include <ember/philox.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* L = sum(out * r) evaluated in f64 with no grad; NAN on error. */
static double eval_loss(em_context *ctx, em_gradcheck_fn fn, em_tensor *const *in, int n, void *user,
                        em_tensor *r64)
{
    em_scope_begin(ctx);
    em_tensor *out = fn(in, n, user);
    double v = NAN;
    if (out) {
        em_tensor *s = em_sum(em_mul(em_to_dtype(out, EM_F64), r64));
        if (s)
            em_item_get(s, &v);
    }
    em_scope_end(ctx);
    return v;
}

EMBER_API em_status em_gradcheck(em_gradcheck_fn fn, em_tensor *const *inputs, int n_inputs,
                                 void *user, double eps, double atol, double rtol,
                                 em_gradcheck_result *res)
{
    if (!res)
        return em__error_global(EM_ERR_INVALID, "em_gradcheck: result is NULL");
    if (!fn || !inputs || n_inputs <= 0 || n_inputs > 16)
        return em__error_global(EM_ERR_INVALID, "em_gradcheck: invalid arguments (fn %s, inputs "
                                "%s, n_inputs %d: 1 to 16)", fn ? "given" : "NULL",
                                inputs ? "given" : "NULL", n_inputs);
    memset(res, 0, sizeof *res);
    res->worst_input = -1;
    for (int i = 0; i < n_inputs; i++)
        if (!em__obj_quiet(inputs[i]))
            return em__error_global(EM_ERR_INVALID, "em_gradcheck: input %d is not a live tensor", i);
    em_context *ctx = em__obj_quiet(inputs[0])->ctx;
    em_status st = EM_OK;
    double *analytic = NULL, *host = NULL;
    em_tensor *copies[16] = {0};
    em_tensor *r = NULL, *r64 = NULL;

    em_scope_begin(ctx);
    /* 1. analytic: d sum(out * r) / d input, by backward */
    em_tensor *out_h = fn(inputs, n_inputs, user);
    em__tensor *out = em__obj(out_h);
    if (!out) {
        st = em__failed(ctx) ? em__failed(ctx) : EM_ERR_INVALID;
        em__snprintf(res->message, sizeof res->message, "function failed: %s", em_context_error(ctx));
        em_scope_end(ctx);
        return st;
    }
    int64_t n_out = em__numel(out->ndim, out->shape);
    double *rh = em__malloc(sizeof(double) * (size_t)(n_out ? n_out : 1));
    if (!rh) {
        em_scope_end(ctx);
        return em__error(ctx, EM_ERR_OOM, "em_gradcheck: out of memory");
    }
    for (int64_t j = 0; j < n_out; j++)   /* fixed weights in [0.5, 1.5): deterministic */
        rh[j] = 0.5 + em_philox_uniform01(em_philox4x32_10(0x6772616463686bULL, (uint64_t)j));
    r64 = em_tensor_keep(em_tensor_from_data(ctx, EM_F64, out->ndim, out->shape, rh));
    free(rh);
    r = em_tensor_keep(em_to_dtype(r64, out->dtype));
    for (int i = 0; i < n_inputs; i++)
        em_tensor_clear_grad(inputs[i]);
    em_tensor *loss = em_sum(em_mul(out_h, r));
    if (!loss || !out->requires_grad) {
        st = loss ? em__error(ctx, EM_ERR_AUTOGRAD, "em_gradcheck: output does not require grad")
                  : em__failed(ctx);
        em_scope_end(ctx);
        goto done;
    }
    st = em_backward(loss);
    em_scope_end(ctx);
    if (st != EM_OK)
        goto done;

    /* 2. numeric, per input that requires grad */
    em_scope_begin(ctx);
    for (int i = 0; i < n_inputs && st == EM_OK; i++) {
        copies[i] = em_tensor_keep(em_clone(em_to_dtype(em_detach(inputs[i]), EM_F64)));
        if (!copies[i])
            st = em__failed(ctx);
    }
    em_scope_end(ctx);
    if (st != EM_OK)
        goto done;
    res->passed = true;
    bool was = em_set_grad_enabled(ctx, false);
    for (int i = 0; i < n_inputs && st == EM_OK; i++) {
        em__tensor *x = em__obj(inputs[i]);
        if (!x || !x->requires_grad)
            continue;
        int64_t n = em__numel(x->ndim, x->shape);
        free(analytic);
        free(host);
        analytic = em__malloc(sizeof(double) * (size_t)(n ? n : 1));
        host = em__malloc(sizeof(double) * (size_t)(n ? n : 1));
        if (!analytic || !host) {
            st = em__error(ctx, EM_ERR_OOM, "em_gradcheck: out of memory");
            break;
        }
        if (x->grad && (st = em__grad_settle(x)) == EM_OK)
            st = em__to_host_as(x->grad, EM_F64, analytic);
        else
            memset(analytic, 0, sizeof(double) * (size_t)n);
        if (st == EM_OK)
            st = em__to_host_as(em__obj(copies[i]), EM_F64, host);
        for (int64_t j = 0; j < n && st == EM_OK; j++) {
            double orig = host[j];
            host[j] = orig + eps;
            st = em_tensor_from_host(copies[i], host, sizeof(double) * (size_t)n);
            double lp = eval_loss(ctx, fn, copies, n_inputs, user, r64);
            host[j] = orig - eps;
            if (st == EM_OK)
                st = em_tensor_from_host(copies[i], host, sizeof(double) * (size_t)n);
            double lm = eval_loss(ctx, fn, copies, n_inputs, user, r64);
            host[j] = orig;
            if (st == EM_OK)
                st = em_tensor_from_host(copies[i], host, sizeof(double) * (size_t)n);
            if (st != EM_OK)
                break;
            if (isnan(lp) || isnan(lm)) {
                if (em__failed(ctx) != EM_OK) {
                    st = em__failed(ctx);
                    break;
                }
            }
            double num = (lp - lm) / (2 * eps);
            double err = fabs(analytic[j] - num);
            double rel = err / fmax(1.0, fabs(num));
            if (err > res->max_abs_err || (isnan(err) && !isnan(res->max_abs_err))) {
                res->max_abs_err = err;
                res->worst_input = i;
                res->worst_index = j;
            }
            if (rel > res->max_rel_err)
                res->max_rel_err = rel;
            if (!(err <= atol + rtol * fabs(num))) {
                if (res->passed)
                    em__snprintf(res->message, sizeof res->message,
                                 "input %d element %lld: analytic %.10g, numeric %.10g", i,
                                 (long long)j, analytic[j], num);
                res->passed = false;
            }
        }
    }
    em_set_grad_enabled(ctx, was);
done:
    free(analytic);
    free(host);
    for (int i = 0; i < n_inputs; i++)
        em_tensor_free(copies[i]);
    em_tensor_free(r);
    em_tensor_free(r64);
    if (st != EM_OK) {
        res->passed = false;
        if (!res->message[0])
            em__snprintf(res->message, sizeof res->message, "%s", em_context_error(ctx));
    }
    return st;
}
