/* ember/autograd.h — reverse-mode automatic differentiation, PyTorch semantics.
 * Leaves created by the user may require grad; ops on tensors that require grad record a
 * node (grad_fn); em_backward walks the graph in reverse topological order and
 * accumulates into the leaves' .grad. Grad mode and no_grad are per context. */
#ifndef EMBER_AUTOGRAD_H
#define EMBER_AUTOGRAD_H

#include <ember/tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Only leaves of a floating dtype may be set to require grad. */
EMBER_API em_status em_tensor_set_requires_grad(em_tensor *t, bool requires_grad);
EMBER_API bool em_tensor_requires_grad(const em_tensor *t);
EMBER_API bool em_tensor_is_leaf(const em_tensor *t);
/* "AddBackward0", or NULL for leaves and tensors that need no grad. */
EMBER_API const char *em_tensor_grad_fn_name(const em_tensor *t);

/* The accumulated gradient (a new handle to it), or NULL without an error when there is
 * none yet (PyTorch's None). */
EMBER_API em_tensor *em_grad(em_tensor *t);
/* Zero .grad (x.grad.zero_()); no-op when there is none. When nothing but t holds the
 * .grad (no handle from em_grad() is alive: zero after the scope that read it ends), this
 * costs nothing now: the .grad is marked, the next backward adds its gradient to zero in one
 * pass instead of a fill and an add, and any read before that sees zeros. The values are
 * those of the fill and add, bit for bit. */
EMBER_API em_status em_tensor_zero_grad(em_tensor *t);
/* Drop .grad (x.grad = None). */
EMBER_API void em_tensor_clear_grad(em_tensor *t);
/* Ask a non-leaf to keep its .grad during backward (x.retain_grad()). */
EMBER_API em_status em_tensor_retain_grad(em_tensor *t);

/* A new tensor sharing storage, cut from the graph (requires_grad false). */
EMBER_API em_tensor *em_detach(em_tensor *t);

/* loss.backward(): t must have one element. */
EMBER_API em_status em_backward(em_tensor *t);
/* t.backward(gradient, retain_graph). gradient: t's shape and dtype, or NULL if t has
 * one element. Without retain_graph the graph's saved tensors are freed. */
EMBER_API em_status em_backward_ex(em_tensor *t, em_tensor *gradient, bool retain_graph);

/* with torch.no_grad(): nests; ops inside record nothing, and in-place updates of leaves
 * that require grad are allowed. */
EMBER_API void em_no_grad_begin(em_context *ctx);
EMBER_API void em_no_grad_end(em_context *ctx);
EMBER_API bool em_is_grad_enabled(const em_context *ctx);
/* torch.set_grad_enabled; returns the previous setting. */
EMBER_API bool em_set_grad_enabled(em_context *ctx, bool enabled);

/* ---- gradient checking (finite differences, like torch.autograd.gradcheck) ---- */
/* fn computes the output from inputs (any ops); it returns a tensor or NULL on error. */
typedef em_tensor *(*em_gradcheck_fn)(em_tensor *const *inputs, int n_inputs, void *user);

typedef struct em_gradcheck_result {
    bool passed;
    double max_abs_err;   /* largest |analytic - numeric| */
    double max_rel_err;   /* largest |analytic - numeric| / max(1, |numeric|) */
    int worst_input;      /* which input held the worst element, -1 if none */
    int64_t worst_index;  /* its flat index */
    char message[256];
} em_gradcheck_result;

/* Checks d(sum(out * r))/d(input) for a random r, against central differences with step
 * eps, for every input that requires grad. Inputs of dtype f32 are evaluated in f64 for the
 * numeric side. Passes when |a - n| <= atol + rtol * |n| for every element. */
EMBER_API em_status em_gradcheck(em_gradcheck_fn fn, em_tensor *const *inputs, int n_inputs,
                                 void *user, double eps, double atol, double rtol,
                                 em_gradcheck_result *result);

#ifdef __cplusplus
}
#endif
#endif
