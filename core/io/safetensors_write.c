/* core/io/safetensors_write.c — em_save_safetensors: the header built with jansson, the
 * data in the order given, written atomically (temporary file in the target's directory,
 * fsync, rename over the target, fsync of the directory). Also the dtype table. */
#include "io/safetensors.h"

#include <ember/io.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const em__st_dtype st_dtypes[] = {
    {"F32", 4, EM_F32},   {"F64", 8, EM_F64},   {"BOOL", 1, EM_BOOL}, {"I64", 8, EM_I64},
    {"I32", 4, EM_I32},   {"U8", 1, EM_U8},     {"F16", 2, EM_F32},   {"BF16", 2, EM_F32},
    {"I8", 1, -1},        {"I16", 2, -1},       {"U16", 2, -1},       {"U32", 4, -1},
    {"U64", 8, -1},       {"F8_E4M3", 1, -1},   {"F8_E5M2", 1, -1},
};

const em__st_dtype *em__st_dtype_find(const char *name)
{
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (!strcmp(st_dtypes[i].name, name))
            return &st_dtypes[i];
    return NULL;
}

const char *em__st_dtype_of(em_dtype dt)
{
    switch (dt) {
    case EM_F32: return "F32";
    case EM_F64: return "F64";
    case EM_BOOL: return "BOOL";
    case EM_I64: return "I64";
    case EM_I32: return "I32";
    case EM_U8: return "U8";
    default: return NULL;
    }
}

/* write all of n bytes, retrying short writes and EINTR */
static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The header JSON, padded with spaces to a multiple of 8 bytes; *len set. NULL with the
 * error recorded and its status in *why otherwise. */
static char *build_header(em_context *ctx, const char *path, const char *const *names,
                          em__tensor *const *ts, int n, const char *const *kv, size_t *len,
                          em_status *why)
{
    *why = EM_ERR_OOM;
    json_t *root = json_object();
    if (!root) {
        em__error(ctx, EM_ERR_OOM, "em_save_safetensors: '%s': out of memory", path);
        return NULL;
    }
    if (kv) {
        json_t *meta = json_object();
        if (!meta || json_object_set_new(root, "__metadata__", meta))
            goto oom;
        for (size_t i = 0; kv[i]; i += 2) {
            if (!kv[i + 1]) {
                *why = em__error(ctx, EM_ERR_INVALID, "em_save_safetensors: '%s': metadata "
                                 "key '%s' has no value (the list is key, value, ..., NULL)",
                                 path, kv[i]);
                goto fail;
            }
            json_t *v = json_string(kv[i + 1]), *k = json_string(kv[i]);   /* UTF-8 checks */
            bool ok = v && k;
            json_decref(k);
            if (!ok) {
                json_decref(v);
                *why = em__error(ctx, EM_ERR_INVALID, "em_save_safetensors: '%s': metadata "
                                 "'%s' is not valid UTF-8", path, kv[i]);
                goto fail;
            }
            if (json_object_get(meta, kv[i])) {
                json_decref(v);
                *why = em__error(ctx, EM_ERR_INVALID, "em_save_safetensors: '%s': metadata "
                                 "key '%s' given twice", path, kv[i]);
                goto fail;
            }
            if (json_object_set_new(meta, kv[i], v))
                goto oom;
        }
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const em__tensor *t = ts[i];
        uint64_t bytes = (uint64_t)em__numel(t->ndim, t->shape) * em_dtype_size(t->dtype);
        json_t *e = json_object(), *shape = json_array(), *offs = json_array();
        if (!e || !shape || !offs) {
            json_decref(e);
            json_decref(shape);
            json_decref(offs);
            goto oom;
        }
        json_object_set_new(e, "dtype", json_string(em__st_dtype_of(t->dtype)));
        for (int d = 0; d < t->ndim; d++)
            json_array_append_new(shape, json_integer(t->shape[d]));
        json_object_set_new(e, "shape", shape);
        json_array_append_new(offs, json_integer((json_int_t)off));
        json_array_append_new(offs, json_integer((json_int_t)(off + bytes)));
        json_object_set_new(e, "data_offsets", offs);
        off += bytes;
        json_t *kc = json_string(names[i]);   /* NULL for a name that is not UTF-8 */
        json_decref(kc);
        if (!kc) {
            json_decref(e);
            *why = em__error(ctx, EM_ERR_INVALID, "em_save_safetensors: '%s': tensor name '%s' "
                             "is not valid UTF-8", path, names[i]);
            goto fail;
        }
        if (json_object_set_new(root, names[i], e))
            goto oom;
    }
    char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!text) {
        em__error(ctx, EM_ERR_OOM, "em_save_safetensors: '%s': out of memory", path);
        return NULL;
    }
    size_t l = strlen(text), padded = (l + 7) & ~(size_t)7;
    char *out = em__malloc(padded + 1);
    if (!out) {
        free(text);
        em__error(ctx, EM_ERR_OOM, "em_save_safetensors: '%s': out of memory for the header",
                  path);
        return NULL;
    }
    memcpy(out, text, l);
    memset(out + l, ' ', padded - l);
    out[padded] = 0;
    free(text);
    *len = padded;
    return out;
oom:
    em__error(ctx, EM_ERR_OOM, "em_save_safetensors: '%s': out of memory", path);
fail:
    json_decref(root);
    return NULL;
}

/* fsync the directory holding path, so the rename is durable */
static int sync_dir(const char *path)
{
    char *dir = strdup(path);
    if (!dir)
        return -1;
    char *slash = strrchr(dir, '/');
    const char *d = ".";
    if (slash == dir)
        d = "/";
    else if (slash) {
        *slash = 0;
        d = dir;
    }
    int fd = open(d, O_RDONLY | O_DIRECTORY);
    int rc = -1;
    if (fd >= 0) {
        rc = fsync(fd);
        /* some file systems cannot fsync a directory: not an error of the save */
        if (rc && (errno == EINVAL || errno == ENOTSUP))
            rc = 0;
        close(fd);
    }
    free(dir);
    return rc;
}

em_status em_save_safetensors(const char *path, const char *const *names,
                              em_tensor *const *tensors, int n, const char *const *metadata_kv)
{
    em_context *ctx = NULL;
    if (n > 0 && tensors && tensors[0]) {
        em__tensor *t0 = em__obj_quiet(tensors[0]);
        if (t0)
            ctx = t0->ctx;
    }
    if (!path || !*path || n < 0 || (n > 0 && (!names || !tensors)))
        return em__error(ctx, EM_ERR_INVALID, "em_save_safetensors: %s",
                         !path || !*path ? "no path given" : n < 0 ? "negative tensor count"
                                                                  : "names or tensors is NULL");
    em__tensor **ts = em__calloc((size_t)n + 1, sizeof *ts);
    if (!ts)
        return em__error(ctx, EM_ERR_OOM, "em_save_safetensors: '%s': out of memory", path);
    em_status st = EM_OK;
    for (int i = 0; i < n && st == EM_OK; i++) {
        if (!names[i] || !strcmp(names[i], "__metadata__")) {
            st = em__error(ctx, EM_ERR_INVALID, "em_save_safetensors: '%s': tensor %d has %s",
                           path, i, !names[i] ? "no name" : "the reserved name __metadata__");
            break;
        }
        for (int j = 0; j < i; j++)
            if (!strcmp(names[i], names[j])) {
                st = em__error(ctx, EM_ERR_INVALID, "em_save_safetensors: '%s': tensor name "
                               "'%s' given twice (tensors %d and %d)", path, names[i], j, i);
                break;
            }
        if (st != EM_OK)
            break;
        ts[i] = tensors[i] ? em__obj(tensors[i]) : NULL;
        if (!ts[i]) {
            st = em__error(ctx, EM_ERR_INVALID, "em_save_safetensors: '%s': tensor '%s' is "
                           "NULL or freed", path, names[i]);
            break;
        }
        if (!em__st_dtype_of(ts[i]->dtype))
            st = em__error(ctx, EM_ERR_DTYPE, "em_save_safetensors: '%s': tensor '%s' has "
                           "an invalid dtype", path, names[i]);
    }
    if (st != EM_OK) {
        free(ts);
        return st;
    }
    size_t hlen = 0;
    em_status why = EM_OK;
    char *header = build_header(ctx, path, names, ts, n, metadata_kv, &hlen, &why);
    if (!header) {
        free(ts);
        return why;
    }
    size_t plen = strlen(path);
    char *tmp = em__malloc(plen + 32);
    if (!tmp) {
        free(header);
        free(ts);
        return em__error(ctx, EM_ERR_OOM, "em_save_safetensors: '%s': out of memory", path);
    }
    /* open(O_EXCL, 0666) rather than mkstemp: the file gets the permissions the umask
     * gives new files, as a plain fopen() would */
    static atomic_uint counter;
    int fd = -1;
    for (int tries = 0; tries < 100 && fd < 0; tries++) {
        unsigned c = atomic_fetch_add(&counter, 1) ^ ((unsigned)getpid() << 12);
        snprintf(tmp, plen + 32, "%s.tmp.%08x", path, c);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        st = em__error(ctx, EM_ERR_IO, "em_save_safetensors: cannot create a temporary file "
                       "'%s' beside '%s': %s", tmp, path, strerror(errno));
        free(tmp);
        free(header);
        free(ts);
        return st;
    }
    void *buf = NULL;
    uint8_t len8[8];
    for (int b = 0; b < 8; b++)
        len8[b] = (uint8_t)((uint64_t)hlen >> (8 * b));
    const char *what = "write";
    int err = 0;
    if (write_all(fd, len8, 8) || write_all(fd, header, hlen))
        err = errno;
    for (int i = 0; i < n && !err && st == EM_OK; i++) {
        size_t bytes = (size_t)em__numel(ts[i]->ndim, ts[i]->shape) * em_dtype_size(ts[i]->dtype);
        if (!bytes)
            continue;
        void *nb = em__realloc(buf, bytes);
        if (!nb) {
            st = em__error(ctx, EM_ERR_OOM, "em_save_safetensors: '%s': out of memory for "
                           "tensor '%s' (%zu bytes)", path, names[i], bytes);
            break;
        }
        buf = nb;
        /* little-endian host: the in-memory layout is the file's */
        em_status rs = em_tensor_to_host(tensors[i], buf, bytes);
        if (rs != EM_OK) {
            st = em__error(ctx, rs, "em_save_safetensors: '%s': reading tensor '%s' failed: "
                           "%s", path, names[i], em_last_error());
            break;
        }
        if (write_all(fd, buf, bytes))
            err = errno;
    }
    if (!err && st == EM_OK && fsync(fd)) {
        err = errno;
        what = "fsync";
    }
    if (close(fd) && !err && st == EM_OK) {
        err = errno;
        what = "close";
    }
    if (!err && st == EM_OK && rename(tmp, path)) {
        err = errno;
        what = "rename";
    }
    if (err && st == EM_OK)
        st = em__error(ctx, EM_ERR_IO, "em_save_safetensors: %s of '%s' failed: %s "
                       "(the previous '%s', if any, is unchanged)", what, tmp, strerror(err),
                       path);
    if (st != EM_OK)
        unlink(tmp);
    else if (sync_dir(path))
        st = em__error(ctx, EM_ERR_IO, "em_save_safetensors: '%s' was written, but the fsync "
                       "of its directory failed: %s", path, strerror(errno));
    free(buf);
    free(tmp);
    free(header);
    free(ts);
    return st;
}
