/* core/error.c — status names, the per-context "first error wins" record, the thread-local
 * record for calls without a context, and the logger. */
#include "config.h"
#include "internal.h"

#include <stdio.h>
#include <string.h>

static _Thread_local char tls_error[1024];

EMBER_API const char *em_status_name(em_status st)
{
    static const char *const names[] = {
        "EM_OK",           "EM_ERR_INVALID", "EM_ERR_SHAPE",       "EM_ERR_DTYPE",
        "EM_ERR_DEVICE",   "EM_ERR_CONFIG",  "EM_ERR_PLUGIN",      "EM_ERR_NO_DEVICE",
        "EM_ERR_OOM",      "EM_ERR_UNSUPPORTED", "EM_ERR_AUTOGRAD", "EM_ERR_BACKEND",
        "EM_ERR_IO",       "EM_ERR_FREED",   "EM_ERR_INTERNAL",
    };
    if ((unsigned)st < sizeof names / sizeof names[0])
        return names[st];
    return "EM_ERR_UNKNOWN";
}

EMBER_API const char *em_dtype_name(em_dtype dt)
{
    switch (dt) {
    case EM_F32: return "f32";
    case EM_F64: return "f64";
    case EM_BOOL: return "bool";
    case EM_I64: return "i64";
    case EM_I32: return "i32";
    case EM_U8: return "u8";
    default: return "invalid-dtype";
    }
}

EMBER_API size_t em_dtype_size(em_dtype dt)
{
    switch (dt) {
    case EM_F32: return 4;
    case EM_F64: return 8;
    case EM_BOOL: return 1;
    case EM_I64: return 8;
    case EM_I32: return 4;
    case EM_U8: return 1;
    default: return 0;
    }
}

EMBER_API bool em_dtype_is_integer(em_dtype dt)
{
    return dt == EM_I64 || dt == EM_I32 || dt == EM_U8;
}

EMBER_API bool em_dtype_is_floating(em_dtype dt)
{
    return dt == EM_F32 || dt == EM_F64;
}

EMBER_API const char *em_version_string(void)
{
    return PACKAGE_VERSION;
}

void em__snprintf(char *buf, size_t n, const char *fmt, ...)
{
    if (!n)
        return;
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(buf, n, fmt, ap);
    va_end(ap);
    if (r < 0)
        buf[0] = 0;
}

em_status em__error(em_context *ctx, em_status st, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!ctx) {
        snprintf(tls_error, sizeof tls_error, "%s", msg);
        return st;
    }
    ctx->failed = st;
    if (ctx->status == EM_OK) {
        ctx->status = st;
        snprintf(ctx->errmsg, sizeof ctx->errmsg, "%s", msg);
    }
    /* also visible through em_last_error, so a caller holding only a NULL result sees it */
    snprintf(tls_error, sizeof tls_error, "%s", msg);
    if (ctx->res.log_level >= EM_LOG_DEBUG)
        fprintf(stderr, "ember: error: %s\n", msg);
    return st;
}

_Static_assert(sizeof(((em_context *)0)->errmsg) == sizeof(((em__errstate *)0)->errmsg) &&
                   sizeof tls_error == sizeof(((em__errstate *)0)->last),
               "em__errstate holds what em__error writes");

void em__error_save(const em_context *ctx, em__errstate *s)
{
    s->status = ctx->status;
    s->failed = ctx->failed;
    memcpy(s->errmsg, ctx->errmsg, sizeof s->errmsg);
    memcpy(s->last, tls_error, sizeof s->last);
}

void em__error_restore(em_context *ctx, const em__errstate *s)
{
    ctx->status = s->status;
    ctx->failed = s->failed;
    memcpy(ctx->errmsg, s->errmsg, sizeof ctx->errmsg);
    memcpy(tls_error, s->last, sizeof tls_error);
}

em_status em__error_global(em_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tls_error, sizeof tls_error, fmt, ap);
    va_end(ap);
    return st;
}

static void vlog(em_log_level max, em_log_level lvl, const char *fmt, va_list ap)
{
    static const char *const tag[] = {"error", "warning", "info", "debug"};
    if (lvl > max)
        return;
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    fprintf(stderr, "ember: %s: %s\n", tag[lvl <= EM_LOG_DEBUG ? lvl : EM_LOG_DEBUG], msg);
}

void em__log_at(em_log_level max, em_log_level lvl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(max, lvl, fmt, ap);
    va_end(ap);
}

void em__log(em_context *ctx, em_log_level lvl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(ctx ? ctx->res.log_level : EM_LOG_WARN, lvl, fmt, ap);
    va_end(ap);
}

EMBER_API const char *em_last_error(void)
{
    return tls_error;
}

EMBER_API em_status em_context_status(const em_context *ctx)
{
    return ctx ? ctx->status : EM_ERR_INVALID;
}

EMBER_API const char *em_context_error(const em_context *ctx)
{
    return ctx ? ctx->errmsg : "NULL context";
}

EMBER_API void em_context_clear_error(em_context *ctx)
{
    if (!ctx)
        return;
    ctx->status = EM_OK;
    ctx->failed = EM_OK;
    ctx->errmsg[0] = 0;
}
