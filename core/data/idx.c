/* core/data/idx.c — em_read_idx: IDX files (the MNIST family's format: a big-endian header
 * of magic, element type and sizes, then the elements), gzip-compressed or plain, via zlib. */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <ember/data.h>

static em_tensor *fail(em_context *ctx, gzFile f, void *buf, em_status st, const char *path,
                       const char *what)
{
    em__error(ctx, st, "em_read_idx: %s: %s", path, what);
    if (f)
        gzclose(f);
    free(buf);
    return NULL;
}

EMBER_API em_tensor *em_read_idx(em_context *ctx, const char *path, em_dtype dt)
{
    if (!ctx)
        return NULL;
    if (!path) {
        em__error(ctx, EM_ERR_INVALID, "em_read_idx: path is NULL");
        return NULL;
    }
    if ((int)dt < EM_F32 || (int)dt > EM_U8) {
        em__error(ctx, EM_ERR_DTYPE, "em_read_idx: unknown dtype %d", (int)dt);
        return NULL;
    }
    gzFile f = gzopen(path, "rb");
    if (!f)
        return fail(ctx, NULL, NULL, EM_ERR_IO, path, errno ? strerror(errno) : "cannot open");
    unsigned char head[4];
    if (gzread(f, head, 4) != 4)
        return fail(ctx, f, NULL, EM_ERR_IO, path, "truncated header (not an IDX file)");
    if (head[0] != 0 || head[1] != 0 || head[3] < 1 || head[3] > 8)
        return fail(ctx, f, NULL, EM_ERR_IO, path, "bad magic number (not an IDX file)");
    if (head[2] != 0x08)
        return fail(ctx, f, NULL, EM_ERR_UNSUPPORTED, path,
                    "element type is not unsigned byte (0x08)");
    int nd = head[3];
    int64_t shape[8], n = 1;
    for (int i = 0; i < nd; i++) {
        unsigned char s[4];
        if (gzread(f, s, 4) != 4)
            return fail(ctx, f, NULL, EM_ERR_IO, path, "truncated header (sizes)");
        shape[i] = (int64_t)s[0] << 24 | (int64_t)s[1] << 16 | (int64_t)s[2] << 8 | s[3];
        if (shape[i] > 0 && n > ((int64_t)1 << 40) / shape[i])
            return fail(ctx, f, NULL, EM_ERR_IO, path, "sizes too large");
        n *= shape[i];
    }
    if (!em__numel_checked(nd, shape, NULL)) {   /* zero sizes hide the others' product */
        char why[260], sh[200];
        em__shape_str(nd, shape, sh, sizeof sh);
        em__snprintf(why, sizeof why, "sizes %s too large", sh);
        return fail(ctx, f, NULL, EM_ERR_IO, path, why);
    }
    unsigned char *buf = malloc((size_t)(n ? n : 1));
    if (!buf)
        return fail(ctx, f, NULL, EM_ERR_OOM, path, "out of memory");
    int64_t got = 0;
    while (got < n) {
        unsigned chunk = n - got > (1 << 30) ? 1u << 30 : (unsigned)(n - got);
        int r = gzread(f, buf + got, chunk);
        if (r <= 0)
            break;
        got += r;
    }
    char extra;
    if (got < n)
        return fail(ctx, f, buf, EM_ERR_IO, path, "data shorter than the header's shape");
    if (gzread(f, &extra, 1) != 0)
        return fail(ctx, f, buf, EM_ERR_IO, path, "data longer than the header's shape");
    gzclose(f);
    em_tensor *t = em_tensor_from_data(ctx, EM_U8, nd, shape, buf);
    free(buf);
    if (!t || dt == EM_U8)
        return t;
    em_tensor *c = em_to_dtype(t, dt);
    em_tensor_free(t);
    return c;
}
