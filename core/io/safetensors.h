/* core/io/safetensors.h — what the safetensors reader and writer share: the spec's dtype
 * table (name, element size, ember dtype if any). */
#ifndef EMBER_CORE_IO_SAFETENSORS_H
#define EMBER_CORE_IO_SAFETENSORS_H

#include "internal.h"

/* The file's data is little-endian and is copied to and from tensors as it is: a big-endian
 * port must byte-swap each element in safetensors_read.c and safetensors_write.c. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#error "core/io/ reads and writes safetensors data as little-endian: add byte swapping"
#endif

typedef struct em__st_dtype {
    const char *name;   /* as in the header: "F32" */
    size_t size;        /* bytes per element */
    int ember;          /* the em_dtype it loads as (F16/BF16: EM_F32), -1 if none */
} em__st_dtype;

/* The entry for a header dtype string, NULL if the spec has no such dtype. */
EM_INTERNAL const em__st_dtype *em__st_dtype_find(const char *name);
/* The header name of an ember dtype ("F32"), NULL if invalid. */
EM_INTERNAL const char *em__st_dtype_of(em_dtype dt);

#endif
