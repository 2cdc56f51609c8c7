/* ember/common.h — the vocabulary shared by the user API and the plugin ABI:
 * export macro, status codes, dtypes, dimension limit. Nothing here allocates. */
#ifndef EMBER_COMMON_H
#define EMBER_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* EMBER_API marks the public symbols of libember; everything else is hidden
 * (the library is built with -fvisibility=hidden). */
#if defined(EMBER_BUILDING) && defined(__GNUC__)
#define EMBER_API __attribute__((visibility("default")))
#else
#define EMBER_API
#endif

#if defined(__GNUC__)
#define EM_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define EM_PRINTF(fmt, args)
#endif

#define EMBER_VERSION_MAJOR 0
#define EMBER_VERSION_MINOR 1
#define EMBER_VERSION_PATCH 0

/* Most dimensions a tensor may have. */
#define EM_MAX_DIMS 8

/* Every call that can fail returns (or records in its context) one of these. Values are
 * stable: they cross the plugin ABI. New codes are only ever appended. */
typedef enum em_status {
    EM_OK = 0,
    EM_ERR_INVALID = 1,      /* invalid argument (NULL tensor, bad dim, bad option value) */
    EM_ERR_SHAPE = 2,        /* shapes do not broadcast / do not match the op's rule */
    EM_ERR_DTYPE = 3,        /* dtype not accepted by the op or operands disagree */
    EM_ERR_DEVICE = 4,       /* tensors of different contexts/devices mixed */
    EM_ERR_CONFIG = 5,       /* device.ini or in-code configuration is malformed */
    EM_ERR_PLUGIN = 6,       /* backend plugin missing or broken (see message for stage) */
    EM_ERR_NO_DEVICE = 7,    /* plugin loaded but has no usable device */
    EM_ERR_OOM = 8,          /* host or device allocation failed */
    EM_ERR_UNSUPPORTED = 9,  /* op/dtype not supported by the backend */
    EM_ERR_AUTOGRAD = 10,    /* autograd misuse (backward twice, in-place on leaf, ...) */
    EM_ERR_BACKEND = 11,     /* a backend/driver call failed */
    EM_ERR_IO = 12,          /* file could not be read/written */
    EM_ERR_FREED = 13,       /* a tensor handle was used after it was freed */
    EM_ERR_INTERNAL = 14     /* a bug in ember: please report */
} em_status;

typedef enum em_dtype {
    EM_F32 = 0,
    EM_F64 = 1,
    EM_BOOL = 2, /* one byte per element, 0 or 1: masks and comparison results */
    EM_I64 = 3,  /* int64_t: PyTorch's default integer (torch.long); labels and indices */
    EM_I32 = 4,  /* int32_t */
    EM_U8 = 5,   /* uint8_t: image bytes */
    EM_DTYPE_COUNT_ = 6
} em_dtype;

/* Log levels for the plugin host table and the [device] log setting. */
typedef enum em_log_level {
    EM_LOG_ERROR = 0,
    EM_LOG_WARN = 1,
    EM_LOG_INFO = 2,
    EM_LOG_DEBUG = 3
} em_log_level;

EMBER_API const char *em_status_name(em_status st);  /* "EM_ERR_SHAPE" */
EMBER_API const char *em_dtype_name(em_dtype dt);    /* "f32", "f64", "bool", "i64", "i32", "u8" */
/* true for EM_I64, EM_I32, EM_U8 (not EM_BOOL); for EM_F32, EM_F64 */
EMBER_API bool em_dtype_is_integer(em_dtype dt);
EMBER_API bool em_dtype_is_floating(em_dtype dt);
EMBER_API size_t em_dtype_size(em_dtype dt);         /* bytes per element, 0 if invalid */
EMBER_API const char *em_version_string(void);       /* "0.1.0" */

#ifdef __cplusplus
}
#endif
#endif
