/* core/ops/compose.h — helpers for ops built from several kernels (stats.c, activation.c,
 * loss.c, loss_class.c). Such an op records ONE autograd node with PyTorch's name: its
 * forward runs a composition of kernels with nothing recorded, and its backward is written
 * for the whole op. Both are written with the public API on handles, plus the handle-level
 * kernel calls below for kernels that have no public op of their own here. Every helper is
 * "NULL in, NULL out": a failure is recorded in the context and the chain goes on with NULL. */
#ifndef EMBER_CORE_OPS_COMPOSE_H
#define EMBER_CORE_OPS_COMPOSE_H

#include "internal.h"

#define EM_K(field) EM_KERNEL_OFFSET(field)

/* ---- scopes ---- */
/* Inside an op's forward (em__apply): a private scope for handles, with grad recording off.
 * EM_OK, or an error (recorded) and nothing to end. */
EM_INTERNAL em_status em__fw_begin(em_context *ctx);
EM_INTERNAL void em__fw_end(em_context *ctx);
/* A handle in the innermost scope to t (a new reference; t NULL gives NULL). */
EM_INTERNAL em_tensor *em__h(em__tensor *t);
/* A public function composed of other public calls: its temporaries live in a local scope,
 * and its result (r) goes to the caller's scope. */
EM_INTERNAL void em__local_begin(em_context *ctx);
EM_INTERNAL em_tensor *em__local_end(em_context *ctx, em_tensor *r);

/* ---- kernels on handles (results in the innermost scope, nothing recorded) ---- */
/* Elementwise kernel k over in[0..n) broadcast together; the result has dtype out_dt
 * (< 0: in[0]'s) and scalars p0, p1. */
EM_INTERNAL em_tensor *em__hk(size_t k, int out_dt, em_tensor *const *in, int n, double p0,
                              double p1);
EM_INTERNAL em_tensor *em__hk1(size_t k, em_tensor *a);
EM_INTERNAL em_tensor *em__hk2(size_t k, em_tensor *a, em_tensor *b);
/* self = k(self, other) (other broadcast to self), or self = k(self) with scalars p0, p1:
 * in place, on an unshared temporary. */
EM_INTERNAL em_status em__hk_(size_t k, em_tensor *self, em_tensor *other);
EM_INTERNAL em_status em__hk1_(size_t k, em_tensor *self, double p0, double p1);
/* A 0-dim tensor holding v (exact for integer dtypes). */
EM_INTERNAL em_tensor *em__hscalar(em_context *ctx, em_dtype dt, double v);
EM_INTERNAL em_tensor *em__hfull(em_context *ctx, em_dtype dt, int nd, const int64_t *shape,
                                 double v);
/* sum or prod (kernel k) over the dims in mask, scaled by scale (sum); keepdim or not.
 * Floats, or i64. Over nothing: 0 (sum) or 1 (prod). */
EM_INTERNAL em_tensor *em__hreduce(size_t k, em_tensor *a, uint32_t mask, bool keepdim,
                                   double scale);
/* max_dim / min_dim (kernel k) along dim: values and i64 indices (either pointer may be
 * NULL). dim must be wrapped and not of size 0. */
EM_INTERNAL em_status em__hmaxmin(size_t k, em_tensor *a, int dim, bool keepdim,
                                  em_tensor **values, em_tensor **indices);
/* softmax / log_softmax (kernel k) along a wrapped dim */
EM_INTERNAL em_tensor *em__halong(size_t k, em_tensor *a, int dim);
/* out[q] = src[q with q[dim] = index[q]] (index in range, same ndim as src) */
EM_INTERNAL em_tensor *em__hgather(em_tensor *src, int dim, em_tensor *index);
/* out[q with q[dim] = index[q]] += src[q], in place on an unshared temporary */
EM_INTERNAL em_status em__hscatter_add_(em_tensor *out, int dim, em_tensor *index,
                                        em_tensor *src);

/* ---- the same on objects, for the public layer (each returns a new reference) ---- */
/* t = v (exact for integer dtypes) */
EM_INTERNAL em_status em__kfill(em__tensor *t, double v);
EM_INTERNAL em__tensor *em__kreduce(size_t k, em__tensor *a, uint32_t mask, bool keepdim,
                                    double scale);
EM_INTERNAL em_status em__kmaxmin(size_t k, em__tensor *a, int dim, bool keepdim,
                                  em__tensor **values, em__tensor **indices);
/* A view of t whose reduced dims (mask) have size 1, for kernels writing a reduction into
 * a result allocated without them. */
EM_INTERNAL em__tensor *em__keepdim_view(em__tensor *out, const em__tensor *a, uint32_t mask);

/* Record `op` as out's grad_fn for an output computed outside em__apply (several outputs),
 * when grad mode is on and an input requires grad. */
EM_INTERNAL em_status em__record_for(const em_op *op, em__tensor *const *in, int n_in,
                                     const em_op_params *p, em__tensor *out);

/* Dims list -> mask (ndims = 0: every dim); errors name op. false on error (recorded). */
EM_INTERNAL bool em__dims_mask(em_context *ctx, const char *op, int ndim, int ndims,
                               const int *dims, uint32_t *mask);
/* Elements in the reduced dims */
EM_INTERNAL int64_t em__mask_count(const em__tensor *a, uint32_t mask);
/* The shape of a reduced over mask (keepdim: size 1 there). */
EM_INTERNAL int em__reduced_shape(int ndim, const int64_t *shape, uint32_t mask, bool keepdim,
                                  int64_t *out);

/* A valid em_reduction, or false with "<op>: <r> is not a valid value for reduction". */
EM_INTERNAL bool em__reduction_ok(em_context *ctx, const char *op, int r);

static inline bool em__is_float(em_dtype dt)
{
    return dt == EM_F32 || dt == EM_F64;
}

#endif
