/* core/io/safetensors_read.c — em_safetensors_open / _load: the header read and validated
 * (jansson with JSON_REJECT_DUPLICATES; integers only; every size and offset checked for
 * overflow; the data buffer exactly tiled by the tensors), data read with pread on load,
 * F16/BF16 widened to f32. A bad file is an error naming the file and the problem. */
#include "io/safetensors.h"

#include <ember/io.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* headers larger than this are refused (the reference implementation's limit is 100 MB) */
#define ST_MAX_HEADER (100u << 20)

typedef struct st_entry {
    char *name;
    const em__st_dtype *dt;
    int ndim;
    int64_t shape[EM_MAX_DIMS];
    uint64_t begin, end;
} st_entry;

struct em_safetensors {
    int fd;
    char *path;
    uint64_t data_start;   /* 8 + header length */
    int n;
    st_entry *e;           /* sorted by begin */
    int nmeta;
    char **meta;           /* key, value, key, value ... */
};

void em_safetensors_close(em_safetensors *st)
{
    if (!st)
        return;
    if (st->fd >= 0)
        close(st->fd);
    for (int i = 0; i < st->n; i++)
        free(st->e[i].name);
    for (int i = 0; i < 2 * st->nmeta; i++)
        free(st->meta[i]);
    free(st->e);
    free(st->meta);
    free(st->path);
    free(st);
}

static int pread_all(int fd, void *p, size_t n, uint64_t off)
{
    char *c = p;
    while (n) {
        ssize_t r = pread(fd, c, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r == 0 ? 1 : -1;   /* 1: end of file */
        c += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static int by_begin(const void *a, const void *b)
{
    const st_entry *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* record an EM_ERR_INVALID; returns -1 */
static int bad(em_context *ctx, const char *fmt, ...) EM_PRINTF(2, 3);
static int bad(em_context *ctx, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    em__error(ctx, EM_ERR_INVALID, "%s", msg);
    return -1;
}
#define BAD(...) bad(ctx, __VA_ARGS__)

/* a non-negative JSON integer (reals, strings, negatives refused) */
static int get_uint(json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int parse_metadata(em_context *ctx, em_safetensors *st, json_t *meta)
{
    if (!json_is_object(meta))
        return BAD("safetensors '%s': __metadata__ is not an object of strings", st->path);
    size_t n = json_object_size(meta);
    st->meta = em__calloc(2 * n + 1, sizeof *st->meta);
    if (!st->meta)
        return em__error(ctx, EM_ERR_OOM, "safetensors '%s': out of memory", st->path), -2;
    const char *k;
    json_t *v;
    json_object_foreach(meta, k, v) {
        if (!json_is_string(v))
            return BAD("safetensors '%s': __metadata__ value of '%s' is not a string "
                       "(the spec allows only strings)", st->path, k);
        st->meta[2 * st->nmeta] = em__strdup(k);
        st->meta[2 * st->nmeta + 1] = em__strdup(json_string_value(v));
        st->nmeta++;
        if (!st->meta[2 * st->nmeta - 2] || !st->meta[2 * st->nmeta - 1])
            return em__error(ctx, EM_ERR_OOM, "safetensors '%s': out of memory", st->path), -2;
    }
    return 0;
}

static int parse_entry(em_context *ctx, em_safetensors *st, const char *name, json_t *v,
                       st_entry *e)
{
    const char *p = st->path;
    if (!json_is_object(v))
        return BAD("safetensors '%s': entry '%s' is not an object", p, name);
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x)
        if (strcmp(k, "dtype") && strcmp(k, "shape") && strcmp(k, "data_offsets"))
            return BAD("safetensors '%s': tensor '%s' has an unknown field '%s'", p, name, k);
    json_t *dt = json_object_get(v, "dtype"), *shape = json_object_get(v, "shape"),
           *offs = json_object_get(v, "data_offsets");
    if (!json_is_string(dt))
        return BAD("safetensors '%s': tensor '%s' has no dtype string", p, name);
    e->dt = em__st_dtype_find(json_string_value(dt));
    if (!e->dt)
        return BAD("safetensors '%s': tensor '%s' has an unknown dtype '%s'", p, name,
                   json_string_value(dt));
    if (!json_is_array(shape))
        return BAD("safetensors '%s': tensor '%s' has no shape array", p, name);
    if (json_array_size(shape) > EM_MAX_DIMS)
        return BAD("safetensors '%s': tensor '%s' has %zu dimensions (ember allows at most "
                   "%d)", p, name, json_array_size(shape), EM_MAX_DIMS);
    e->ndim = (int)json_array_size(shape);
    for (int d = 0; d < e->ndim; d++) {
        uint64_t s;
        if (get_uint(json_array_get(shape, (size_t)d), &s))
            return BAD("safetensors '%s': tensor '%s': shape entry %d is not a non-negative "
                       "integer", p, name, d);
        if (s > INT64_MAX)
            return BAD("safetensors '%s': tensor '%s': shape overflows 64 bits", p, name);
        e->shape[d] = (int64_t)s;
    }
    int64_t count;   /* the check every tensor's shape passes (zero sizes counted as ones) */
    if (!em__numel_checked(e->ndim, e->shape, &count)) {
        char sh[200];
        em__shape_str(e->ndim, e->shape, sh, sizeof sh);
        return BAD("safetensors '%s': tensor '%s': shape %s has too many elements (its count "
                   "overflows; at most %lld)", p, name, sh, (long long)EM__MAX_NUMEL);
    }
    uint64_t numel = (uint64_t)count;
    if (!json_is_array(offs) || json_array_size(offs) != 2 ||
        get_uint(json_array_get(offs, 0), &e->begin) ||
        get_uint(json_array_get(offs, 1), &e->end))
        return BAD("safetensors '%s': tensor '%s': data_offsets is not a pair of non-negative "
                   "integers", p, name);
    if (e->end < e->begin)
        return BAD("safetensors '%s': tensor '%s': data_offsets [%llu, %llu] end before they "
                   "begin", p, name, (unsigned long long)e->begin, (unsigned long long)e->end);
    if (numel > UINT64_MAX / e->dt->size)
        return BAD("safetensors '%s': tensor '%s': %s shape of %llu elements overflows 64 bits "
                   "in bytes", p, name, e->dt->name, (unsigned long long)numel);
    if (numel * e->dt->size != e->end - e->begin)
        return BAD("safetensors '%s': tensor '%s': %s shape of %llu elements needs %llu bytes "
                   "but data_offsets [%llu, %llu] hold %llu", p, name, e->dt->name,
                   (unsigned long long)numel, (unsigned long long)(numel * e->dt->size),
                   (unsigned long long)e->begin, (unsigned long long)e->end,
                   (unsigned long long)(e->end - e->begin));
    e->name = em__strdup(name);
    if (!e->name)
        return em__error(ctx, EM_ERR_OOM, "safetensors '%s': out of memory", p), -2;
    return 0;
}

/* Parse and validate the header text against a data buffer of dsize bytes: 0, -1 (an
 * invalid file) or -2 (out of memory), the error recorded. parse_metadata and parse_entry
 * answer the same way. */
static int parse_header(em_context *ctx, em_safetensors *st, const char *text, size_t len,
                        uint64_t dsize)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return BAD("safetensors '%s': header is not valid JSON: %s (header byte %d)", st->path,
                   jerr.text, jerr.position);
    int rc = -1;
    if (!json_is_object(root)) {
        BAD("safetensors '%s': header is not a JSON object", st->path);
        goto out;
    }
    size_t n = json_object_size(root);
    st->e = em__calloc(n + 1, sizeof *st->e);
    if (!st->e) {
        em__error(ctx, EM_ERR_OOM, "safetensors '%s': out of memory", st->path);
        rc = -2;
        goto out;
    }
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v) {
        if (!strcmp(k, "__metadata__")) {
            int r = parse_metadata(ctx, st, v);
            if (r) {
                rc = r;
                goto out;
            }
            continue;
        }
        int r = parse_entry(ctx, st, k, v, &st->e[st->n]);
        if (r) {
            rc = r;
            goto out;
        }
        st->n++;
    }
    qsort(st->e, (size_t)st->n, sizeof *st->e, by_begin);
    uint64_t at = 0;
    for (int i = 0; i < st->n; i++) {
        const st_entry *e = &st->e[i];
        if (e->begin != at) {
            if (e->begin < at)
                BAD("safetensors '%s': tensor '%s' (bytes %llu..%llu) overlaps tensor '%s'",
                    st->path, e->name, (unsigned long long)e->begin,
                    (unsigned long long)e->end, st->e[i - 1].name);
            else
                BAD("safetensors '%s': hole in the data buffer: bytes %llu..%llu belong to no "
                    "tensor", st->path, (unsigned long long)at, (unsigned long long)e->begin);
            goto out;
        }
        at = e->end;
        if (at > dsize) {
            BAD("safetensors '%s': tensor '%s': data_offsets end at %llu, past the data "
                "buffer's %llu bytes (file truncated?)", st->path, e->name,
                (unsigned long long)at, (unsigned long long)dsize);
            goto out;
        }
    }
    if (at != dsize) {
        BAD("safetensors '%s': %llu bytes after the last tensor's data belong to no tensor",
            st->path, (unsigned long long)(dsize - at));
        goto out;
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

em_status em_safetensors_open(em_context *ctx, const char *path, em_safetensors **out)
{
    if (!out)
        return em__error(ctx, EM_ERR_INVALID, "em_safetensors_open: out is NULL");
    *out = NULL;
    if (!path)
        return em__error(ctx, EM_ERR_INVALID, "em_safetensors_open: path is NULL");
    em_safetensors *st = em__calloc(1, sizeof *st);
    char *text = NULL;
    if (!st || !(st->path = em__strdup(path))) {
        free(st);
        return em__error(ctx, EM_ERR_OOM, "em_safetensors_open: '%s': out of memory", path);
    }
    em_status rc = EM_ERR_INVALID;
    st->fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (st->fd < 0 || fstat(st->fd, &sb)) {
        rc = em__error(ctx, EM_ERR_IO, "safetensors '%s': cannot open: %s", path,
                       strerror(errno));
        goto fail;
    }
    if (!S_ISREG(sb.st_mode)) {
        rc = em__error(ctx, EM_ERR_IO, "safetensors '%s': not a regular file", path);
        goto fail;
    }
    uint64_t fsize = (uint64_t)sb.st_size;
    uint8_t l8[8];
    if (fsize < 8 || pread_all(st->fd, l8, 8, 0)) {
        em__error(ctx, EM_ERR_INVALID, "safetensors '%s': truncated: %llu bytes, shorter than "
                  "the 8-byte header length", path, (unsigned long long)fsize);
        goto fail;
    }
    uint64_t hlen = 0;
    for (int b = 7; b >= 0; b--)
        hlen = hlen << 8 | l8[b];
    if (hlen > fsize - 8) {
        em__error(ctx, EM_ERR_INVALID, "safetensors '%s': header length %llu runs past the "
                  "end of the file (%llu bytes; truncated or not a safetensors file)", path,
                  (unsigned long long)hlen, (unsigned long long)fsize);
        goto fail;
    }
    if (hlen < 2 || hlen > ST_MAX_HEADER) {
        em__error(ctx, EM_ERR_INVALID, "safetensors '%s': header length %llu is %s", path,
                  (unsigned long long)hlen, hlen < 2 ? "too small" : "over the 100 MiB limit");
        goto fail;
    }
    text = em__malloc((size_t)hlen);
    if (!text) {
        rc = em__error(ctx, EM_ERR_OOM, "safetensors '%s': out of memory for the header", path);
        goto fail;
    }
    if (pread_all(st->fd, text, (size_t)hlen, 8)) {
        rc = em__error(ctx, EM_ERR_IO, "safetensors '%s': reading the header failed", path);
        goto fail;
    }
    if (text[0] != '{') {
        em__error(ctx, EM_ERR_INVALID, "safetensors '%s': header does not start with '{'", path);
        goto fail;
    }
    st->data_start = 8 + hlen;
    int pr = parse_header(ctx, st, text, (size_t)hlen, fsize - st->data_start);
    if (pr) {
        rc = pr == -2 ? EM_ERR_OOM : EM_ERR_INVALID;
        goto fail;
    }
    free(text);
    *out = st;
    return EM_OK;
fail:
    free(text);
    em_safetensors_close(st);
    return rc;
}

int em_safetensors_count(const em_safetensors *st) { return st ? st->n : 0; }

static const st_entry *entry(const em_safetensors *st, int i)
{
    return st && i >= 0 && i < st->n ? &st->e[i] : NULL;
}

const char *em_safetensors_name(const em_safetensors *st, int i)
{
    const st_entry *e = entry(st, i);
    return e ? e->name : NULL;
}

int em_safetensors_find(const em_safetensors *st, const char *name)
{
    if (st && name)
        for (int i = 0; i < st->n; i++)
            if (!strcmp(st->e[i].name, name))
                return i;
    return -1;
}

const char *em_safetensors_dtype(const em_safetensors *st, int i)
{
    const st_entry *e = entry(st, i);
    return e ? e->dt->name : NULL;
}

int em_safetensors_ndim(const em_safetensors *st, int i)
{
    const st_entry *e = entry(st, i);
    return e ? e->ndim : -1;
}

const int64_t *em_safetensors_shape(const em_safetensors *st, int i)
{
    const st_entry *e = entry(st, i);
    return e ? e->shape : NULL;
}

const char *em_safetensors_metadata(const em_safetensors *st, const char *key)
{
    if (st && key)
        for (int i = 0; i < st->nmeta; i++)
            if (!strcmp(st->meta[2 * i], key))
                return st->meta[2 * i + 1];
    return NULL;
}

int em_safetensors_metadata_count(const em_safetensors *st) { return st ? st->nmeta : 0; }

const char *em_safetensors_metadata_key(const em_safetensors *st, int i)
{
    return st && i >= 0 && i < st->nmeta ? st->meta[2 * i] : NULL;
}

/* IEEE half to float, exactly (subnormals, inf, nan included) */
static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023;
    float f;
    if (e == 0)
        f = ldexpf((float)m, -24);
    else if (e == 31)
        f = m ? NAN : INFINITY;
    else
        f = ldexpf((float)(m | 1024), (int)e - 25);
    uint32_t u;
    memcpy(&u, &f, 4);
    u |= sign;
    memcpy(&f, &u, 4);
    return f;
}

em_tensor *em_safetensors_load(em_safetensors *st, const char *name, em_context *ctx)
{
    if (!ctx) {
        em__error(NULL, EM_ERR_INVALID, "em_safetensors_load: ctx is NULL");
        return NULL;
    }
    if (!st || !name) {
        em__error(ctx, EM_ERR_INVALID, "em_safetensors_load: %s is NULL", !st ? "st" : "name");
        return NULL;
    }
    int i = em_safetensors_find(st, name);
    if (i < 0) {
        em__error(ctx, EM_ERR_INVALID, "em_safetensors_load: '%s' has no tensor '%s'",
                  st->path, name);
        return NULL;
    }
    const st_entry *e = &st->e[i];
    if (e->dt->ember < 0) {
        em__error(ctx, EM_ERR_DTYPE, "em_safetensors_load: '%s': tensor '%s' has dtype %s, "
                  "which ember cannot load (supported: F32, F64, F16, BF16, I64, I32, U8, BOOL)",
                  st->path, name, e->dt->name);
        return NULL;
    }
    uint64_t bytes = e->end - e->begin;
    uint64_t numel = e->dt->size ? bytes / e->dt->size : 0;
    bool widen = e->dt->size == 2;
    uint64_t outbytes = widen ? numel * 4 : bytes;
    if (outbytes > SIZE_MAX - 8) {
        em__error(ctx, EM_ERR_OOM, "em_safetensors_load: '%s': tensor '%s' is too large",
                  st->path, name);
        return NULL;
    }
    uint8_t *buf = em__malloc((size_t)outbytes + 8);
    if (!buf) {
        em__error(ctx, EM_ERR_OOM, "em_safetensors_load: '%s': out of memory for tensor '%s' "
                  "(%llu bytes)", st->path, name, (unsigned long long)outbytes);
        return NULL;
    }
    /* a 2-byte dtype is read into the upper half of the buffer and widened in place from the
     * front: element k (bytes 4k..4k+3) never reaches the unread raw bytes 2*numel+2k+2.. */
    uint8_t *raw = widen ? buf + bytes : buf;
    int r = bytes ? pread_all(st->fd, raw, (size_t)bytes, st->data_start + e->begin) : 0;
    if (r) {
        em__error(ctx, r > 0 ? EM_ERR_INVALID : EM_ERR_IO, "em_safetensors_load: '%s': "
                  "reading tensor '%s' failed: %s", st->path, name,
                  r > 0 ? "file truncated since it was opened" : strerror(errno));
        free(buf);
        return NULL;
    }
    if (widen) {
        float *f = (float *)(void *)buf;
        bool bf16 = !strcmp(e->dt->name, "BF16");
        for (uint64_t k = 0; k < numel; k++) {
            uint16_t h = (uint16_t)(raw[2 * k] | raw[2 * k + 1] << 8);
            if (bf16) {
                uint32_t u = (uint32_t)h << 16;
                memcpy(&f[k], &u, 4);
            } else {
                f[k] = half_to_float(h);
            }
        }
    } else if (e->dt->ember == EM_BOOL) {
        for (uint64_t k = 0; k < numel; k++)
            buf[k] = buf[k] != 0;
    }
    em_tensor *t = em_tensor_from_data(ctx, (em_dtype)e->dt->ember, e->ndim, e->shape, buf);
    free(buf);
    return t;
}
