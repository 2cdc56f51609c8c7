/* ember/io.h — checkpoints in the safetensors format
 * (https://github.com/huggingface/safetensors):
 * an 8-byte little-endian u64 header length N, N bytes of UTF-8 JSON
 *   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
 *    "__metadata__": {"key": "value", ...}}
 * (padded with spaces), then the tensors' bytes, little-endian, row-major, packed without
 * holes; offsets count from the start of that buffer. Files written here load in PyTorch
 * (safetensors.torch.load_file, or any reader of the spec) and files written there load here.
 *
 * Data is written and read little-endian; ember builds on little-endian hosts only (a
 * big-endian port would byte-swap each element in core/io/). */
#ifndef EMBER_IO_H
#define EMBER_IO_H

#include <ember/common.h>
#include <ember/context.h>
#include <ember/tensor.h>
#include <ember/nn.h>
#include <ember/optim.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Save n tensors under names (distinct, not "__metadata__") to path. metadata_kv: NULL, or
 * a NULL-terminated list "key", "value", "key", "value", ..., NULL stored as __metadata__.
 * Any tensor layout (views, non-contiguous) is saved as its row-major values; dtypes map
 * to F32, F64, BOOL, I64, I32, U8. The write is atomic: a temporary file in the same
 * directory is written, fsync()ed and renamed over path, then the directory is fsync()ed,
 * so a failure or crash leaves any previous file at path intact. Errors are recorded in the
 * first tensor's context (when there is one) and in em_last_error(). */
EMBER_API em_status em_save_safetensors(const char *path, const char *const *names,
                                        em_tensor *const *tensors, int n,
                                        const char *const *metadata_kv);

/* An open safetensors file: the validated header; tensor data is read on em_safetensors_load. */
typedef struct em_safetensors em_safetensors;

/* Open and validate path. ctx (may be NULL) receives the error, which is also in
 * em_last_error(): EM_ERR_IO when the file cannot be read, EM_ERR_INVALID when it is not a
 * valid safetensors file (the message names the file and the problem). */
EMBER_API em_status em_safetensors_open(em_context *ctx, const char *path, em_safetensors **out);
EMBER_API void em_safetensors_close(em_safetensors *st);

/* Tensors in the file, in the order of their data in the buffer; i in [0, count). */
EMBER_API int em_safetensors_count(const em_safetensors *st);
EMBER_API const char *em_safetensors_name(const em_safetensors *st, int i);
/* Index of name, or -1. */
EMBER_API int em_safetensors_find(const em_safetensors *st, const char *name);
/* The file's dtype string ("F32", "BF16", "I8", ...), ndim and shape of tensor i. */
EMBER_API const char *em_safetensors_dtype(const em_safetensors *st, int i);
EMBER_API int em_safetensors_ndim(const em_safetensors *st, int i);
EMBER_API const int64_t *em_safetensors_shape(const em_safetensors *st, int i);

/* Read tensor `name` into a new tensor of ctx. F32, F64, BOOL, I64, I32 and U8 load as
 * themselves (a BOOL byte other than 0 loads as 1); F16 and BF16 are converted to f32
 * (exactly). Other dtypes of the spec (I8, I16, U16, U32, U64, F8_*) give NULL and
 * EM_ERR_DTYPE; an unknown name EM_ERR_INVALID. */
EMBER_API em_tensor *em_safetensors_load(em_safetensors *st, const char *name, em_context *ctx);

/* __metadata__: the value of key (NULL if absent), and the pairs by index. */
EMBER_API const char *em_safetensors_metadata(const em_safetensors *st, const char *key);
EMBER_API int em_safetensors_metadata_count(const em_safetensors *st);
EMBER_API const char *em_safetensors_metadata_key(const em_safetensors *st, int i);

/* ---- whole-model and optimizer checkpoints ----
 * A checkpoint's own metadata (an epoch counter, say) goes in through metadata_kv and comes
 * back with em_safetensors_open + em_safetensors_metadata on the same file. */

/* model.state_dict() as a safetensors file, what safetensors.torch.save_file(
 * model.state_dict(), path) writes: every parameter (F32) under its em_module_parameters name.
 * Atomic, and metadata_kv as em_save_safetensors. */
EMBER_API em_status em_module_save(em_module *m, const char *path, const char *const *metadata_kv);
/* model.load_state_dict(load_file(path)) with strict=True: the file holds exactly the
 * parameters' names with their shapes, else EM_ERR_INVALID with PyTorch's message ("Error(s)
 * in loading state_dict for Sequential: Missing key(s) in state_dict: "0.bias". Unexpected
 * key(s) ...  size mismatch for 0.weight: copying a param with shape torch.Size([3, 4]) from
 * checkpoint, the shape in current model is torch.Size([2, 4]).") F64, F16 and BF16 values are
 * converted to the parameter's dtype; other dtypes are refused. Values are copied into the
 * parameters in place (the tensors keep their identity, so an optimizer holding them stays
 * valid), all or nothing: on any error no parameter changes. */
EMBER_API em_status em_module_load(em_module *m, const char *path);
/* The optimizer's state_dict() (state and param_groups) as a safetensors file: tensors
 * "state.<i>.<name>" (exp_avg, exp_avg_sq, max_exp_avg_sq, square_avg, momentum_buffer,
 * grad_avg), and in __metadata__ the kind ("optimizer": "Adam"), step counts "state.<i>.step"
 * and the options "param_groups.0.lr", ... (docs/pytorch-interop.md has the table). Atomic;
 * metadata_kv as em_save_safetensors, except that the keys format, version, optimizer,
 * state.* and param_groups.* are reserved (EM_ERR_INVALID). */
EMBER_API em_status em_optim_save(em_optim *opt, const char *path, const char *const *metadata_kv);
/* optimizer.load_state_dict(): the file must hold the state of the same kind of optimizer
 * over as many parameters, with state tensors of the parameters' shapes (else
 * EM_ERR_INVALID / EM_ERR_SHAPE naming what differs). Restores the state tensors (in the
 * parameters' context, as their dtype), the step counts and the options (lr, betas, ... as
 * PyTorch restores param_groups); parameters without state in the file have none after. All
 * or nothing: on any error the optimizer is unchanged. */
EMBER_API em_status em_optim_load(em_optim *opt, const char *path);

#ifdef __cplusplus
}
#endif
#endif
