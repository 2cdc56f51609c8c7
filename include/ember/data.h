/* ember/data.h — getting data in: an IDX file reader (the MNIST family's format, gzip or
 * plain) and shuffled mini-batches over in-memory tensors, in the same order on every
 * backend for a seed. */
#ifndef EMBER_DATA_H
#define EMBER_DATA_H

#include <ember/tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Reads an IDX file (gzip-compressed or not: "train-images-idx3-ubyte.gz") of unsigned
 * bytes into a tensor of its shape ((60000, 28, 28) for images, (60000) for labels), as
 * EM_U8 or converted to dt (EM_I64 for labels, EM_F32, ...). A missing file is EM_ERR_IO
 * naming the path; a bad magic number, an element type other than unsigned byte, or data
 * shorter or longer than the header's shape are EM_ERR_IO errors naming what is wrong. */
EMBER_API em_tensor *em_read_idx(em_context *ctx, const char *path, em_dtype dt);

/* Mini-batches over n tensors that share their first dimension (the samples), as a
 * DataLoader over a TensorDataset. */
typedef struct em_batches em_batches;

/* batch_size >= 1. shuffle: a new order each epoch, a permutation drawn on the host from
 * (seed, epoch) (not the context's generator), so every backend sees the same batches;
 * otherwise the samples in order. drop_last: a last batch smaller than batch_size is left
 * out. The iterator holds its own references to the tensors. NULL with the error recorded
 * (in the tensors' context) on bad arguments. */
EMBER_API em_batches *em_batches_create(em_tensor *const *tensors, int n, int64_t batch_size,
                                        bool shuffle, uint64_t seed, bool drop_last);
/* Batches per epoch. */
EMBER_API int64_t em_batches_count(const em_batches *b);
/* Starts epoch `epoch` (0, 1, ...): its order, from the first batch. */
EMBER_API em_status em_batches_epoch(em_batches *b, int64_t epoch);
/* The next batch of the current epoch: out[i] (new handles, in the open scope if any)
 * holds the rows of tensor i. Returns true with a batch, false at the end of the epoch
 * (out untouched) or on error (recorded). */
EMBER_API bool em_batches_next(em_batches *b, em_tensor **out);
EMBER_API void em_batches_free(em_batches *b);

#ifdef __cplusplus
}
#endif
#endif
