/* ember/index.h — indexing with index tensors, joining and scattering. Index tensors are
 * i64 (PyTorch's long); every index is checked (EM_ERR_INVALID naming the bad value, as
 * PyTorch's "index out of range"), negative indices are an error as in PyTorch's
 * index_select/gather. Views that select by integers (em_narrow, em_select, em_slice,
 * em_split, em_chunk, em_permute) are in <ember/tensor.h>. */
#ifndef EMBER_INDEX_H
#define EMBER_INDEX_H

#include <ember/tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The entries of dim listed by index (1-D i64): shape of t with dim's size replaced by
 * index's length. */
EMBER_API em_tensor *em_index_select(em_tensor *t, int dim, em_tensor *index);
/* out[q] = t[q with q[dim] = index[q]]: index has t's ndim, and no larger a size than t's
 * in the other dims; out has index's shape. */
EMBER_API em_tensor *em_gather(em_tensor *t, int dim, em_tensor *index);
/* A copy of t where, for every position q of index, src[q] is added at
 * q with q[dim] = index[q] (src at least index's size in every dim). The backward of gather. */
EMBER_API em_tensor *em_scatter_add(em_tensor *t, int dim, em_tensor *index, em_tensor *src);
EMBER_API em_status em_scatter_add_(em_tensor *self, int dim, em_tensor *index, em_tensor *src);
/* Concatenate n tensors (one dtype and context, equal shapes except along dim) along dim;
 * em_stack inserts a new dim instead. */
EMBER_API em_tensor *em_cat(em_tensor *const *ts, int n, int dim);
EMBER_API em_tensor *em_stack(em_tensor *const *ts, int n, int dim);

#ifdef __cplusplus
}
#endif
#endif
