/* core/tensor/print.c — tensors as PyTorch prints them (torch/_tensor_str.py, 1.13): one formatter
 * chosen from the displayed values (floats: integral -> "1.", else fixed with `precision`
 * decimals, scientific when the range demands it; integers and bool: as written, padded to
 * the widest), `...` summaries beyond `threshold` elements, lines wrapped at `linewidth`,
 * then the suffixes (device, dtype — omitted for f32, i64 and bool unless the tensor is
 * empty, where only f32 goes without — grad_fn or requires_grad). Byte-for-byte equality
 * with PyTorch is tested. */
#include "config.h"
#include "internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sbuf {
    char *s;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t len)
{
    if (b->oom)
        return;
    if (b->n + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->n + len + 1)
            cap *= 2;
        char *p = em__realloc(b->s, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, len);
    b->n += len;
    b->s[b->n] = 0;
}

static void sb_puts(sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

static void sb_spaces(sbuf *b, int n)
{
    for (int i = 0; i < n; i++)
        sb_put(b, " ", 1);
}

/* ----------------------------------------------------------------- formatter */

/* The longest value text: "%.*f" of the largest double (309 digits) or "%.*e" (exponent
 * of 3 digits), with sign, point and the most decimals em_set_printoptions accepts. */
#define VALUE_BUF (EM__PRINT_MAX_PRECISION + 320)

typedef struct fmt {
    bool floating, boolean, int_mode, sci_mode;
    int max_width, precision;
} fmt;

/* One value as text without padding (integers come exactly from iv). */
static int format_raw(const fmt *f, double v, int64_t iv, char *out, size_t n)
{
    if (f->boolean)
        return snprintf(out, n, "%s", iv != 0 ? "True" : "False");
    if (!f->floating)
        return snprintf(out, n, "%lld", (long long)iv);
    if (isnan(v))
        return snprintf(out, n, "nan");
    if (isinf(v))
        return snprintf(out, n, "%s", v > 0 ? "inf" : "-inf");
    if (f->sci_mode)
        return snprintf(out, n, "%.*e", f->precision, v);
    if (f->int_mode)
        return snprintf(out, n, "%.0f.", v);
    return snprintf(out, n, "%.*f", f->precision, v);
}

typedef struct printer {
    const double *data;       /* row-major values of a float tensor, or NULL */
    const int64_t *idata;     /* those of an integer or bool tensor (bool as 0/1), or NULL */
    int ndim;
    const int64_t *shape;
    int64_t strides[EM_MAX_DIMS];
    bool summarize;
    int edge, linewidth;
    fmt f;
    /* formatter statistics */
    bool any;
    double amin, amax;
} printer;

static void stat_value(printer *p, double v, int64_t iv)
{
    if (!p->f.floating) {
        char buf[32];
        int w = format_raw(&p->f, v, iv, buf, sizeof buf);
        if (w > p->f.max_width)
            p->f.max_width = w;
        return;
    }
    if (!isfinite(v) || v == 0)
        return;
    double a = fabs(v);
    if (!p->any) {
        p->amin = p->amax = a;
        p->any = true;
    } else {
        if (a < p->amin)
            p->amin = a;
        if (a > p->amax)
            p->amax = a;
    }
    if (v != ceil(v))
        p->f.int_mode = false;
}

static double dval(const printer *p, int64_t i)
{
    return p->data ? p->data[i] : (double)p->idata[i];
}

static int64_t ival(const printer *p, int64_t i)
{
    return p->idata ? p->idata[i] : 0;
}

/* Visit the displayed elements (what get_summarized_data keeps). */
static void visit(printer *p, int dim, int64_t base, void (*fn)(printer *, double, int64_t))
{
    if (p->ndim == 0) {
        fn(p, dval(p, 0), ival(p, 0));
        return;
    }
    int64_t n = p->shape[dim];
    bool cut = p->summarize && n > 2 * (int64_t)p->edge;
    for (int64_t i = 0; i < n; i++) {
        if (cut && i == p->edge)
            i = n - p->edge;
        int64_t off = base + i * p->strides[dim];
        if (dim == p->ndim - 1)
            fn(p, dval(p, off), ival(p, off));
        else
            visit(p, dim + 1, off, fn);
    }
}

static void width_value(printer *p, double v, int64_t iv)
{
    if (!p->f.floating || !isfinite(v) || v == 0)
        return;
    char buf[VALUE_BUF];
    int w = format_raw(&p->f, v, iv, buf, sizeof buf);
    if (p->f.int_mode && !p->f.sci_mode)
        w = (int)strlen(buf);   /* "%.0f." already includes the dot PyTorch adds */
    if (w > p->f.max_width)
        p->f.max_width = w;
}

static void build_formatter(printer *p)
{
    p->f.int_mode = true;
    p->f.sci_mode = false;
    p->f.max_width = 1;
    visit(p, 0, 0, stat_value);
    if (!p->f.floating || !p->any)
        return;
    double ratio = p->amax / p->amin;
    if (p->f.int_mode)
        p->f.sci_mode = ratio > 1000.0 || p->amax > 1e8;
    else
        p->f.sci_mode = ratio > 1000.0 || p->amax > 1e8 || p->amin < 1e-4;
    visit(p, 0, 0, width_value);
}

static void put_value(printer *p, sbuf *b, int64_t i)
{
    char buf[VALUE_BUF];
    int w = format_raw(&p->f, dval(p, i), ival(p, i), buf, sizeof buf);
    sb_spaces(b, p->f.max_width - w);
    sb_puts(b, buf);
}

/* ----------------------------------------------------------------- layout */

static void put_vector(printer *p, sbuf *b, int64_t base, int indent)
{
    int64_t n = p->shape[p->ndim - 1], st = p->strides[p->ndim - 1];
    int element_length = p->f.max_width + 2;
    int per_line = (p->linewidth - indent) / element_length;
    if (per_line < 1)
        per_line = 1;
    bool cut = p->summarize && n > 2 * (int64_t)p->edge;
    sb_puts(b, "[");
    int on_line = 0;
    int64_t count = cut ? 2 * (int64_t)p->edge + 1 : n;
    for (int64_t k = 0; k < count; k++) {
        if (k > 0) {
            if (on_line == per_line) {
                sb_puts(b, ",\n");
                sb_spaces(b, indent + 1);
                on_line = 0;
            } else {
                sb_puts(b, ", ");
            }
        }
        if (cut && k == p->edge) {
            sb_puts(b, " ...");
        } else {
            int64_t i = cut && k > p->edge ? n - (count - k) : k;
            put_value(p, b, base + i * st);
        }
        on_line++;
    }
    sb_puts(b, "]");
}

static void put_tensor(printer *p, sbuf *b, int dim, int64_t base, int indent)
{
    if (dim == p->ndim - 1) {
        put_vector(p, b, base, indent);
        return;
    }
    int64_t n = p->shape[dim];
    bool cut = p->summarize && n > 2 * (int64_t)p->edge;
    int sub_dims = p->ndim - dim;   /* dimensions of the slices being joined, plus one */
    sb_puts(b, "[");
    bool first = true;
    for (int64_t i = 0; i < n; i++) {
        if (!first) {
            sb_puts(b, ",");
            for (int k = 0; k < sub_dims - 1; k++)
                sb_puts(b, "\n");
            sb_spaces(b, indent + 1);
        }
        first = false;
        if (cut && i == p->edge) {
            sb_puts(b, "...");
            i = n - p->edge - 1;
            continue;
        }
        put_tensor(p, b, dim + 1, base + i * p->strides[dim], indent + 1);
    }
    sb_puts(b, "]");
}

static void add_suffixes(sbuf *b, int indent, int linewidth, const char *const *suffixes, int n)
{
    const char *nl = strrchr(b->s ? b->s : "", '\n');
    int last_line_len = (int)(b->n - (nl ? (size_t)(nl - b->s) : (size_t)-1) + 1);
    if (!nl)
        last_line_len = (int)b->n + 2;   /* len(s) - (-1) + 1, as PyTorch computes it */
    for (int i = 0; i < n; i++) {
        int len = (int)strlen(suffixes[i]);
        if (last_line_len + len + 2 > linewidth) {
            sb_puts(b, ",\n");
            sb_spaces(b, indent);
            last_line_len = indent + len;
        } else {
            sb_puts(b, ", ");
            last_line_len += len + 2;
        }
        sb_puts(b, suffixes[i]);
    }
    sb_puts(b, ")");
}

/* torch.<name> of a dtype */
static const char *torch_dtype(em_dtype dt)
{
    switch (dt) {
    case EM_F32: return "float32";
    case EM_F64: return "float64";
    case EM_BOOL: return "bool";
    case EM_I64: return "int64";
    case EM_I32: return "int32";
    default: return "uint8";
    }
}

EMBER_API char *em_tensor_str(em_tensor *h)
{
    if (!h) {
        em__error_global(EM_ERR_INVALID, "em_tensor_str: NULL tensor");
        return NULL;
    }
    em__tensor *t = em__obj(h);
    if (!t)
        return NULL;
    em_context *ctx = t->ctx;
    int64_t numel = em__numel(t->ndim, t->shape);
    bool floating = em_dtype_is_floating(t->dtype);
    void *data = NULL;   /* doubles for a float tensor, else int64_t */
    if (numel > 0) {
        data = em__malloc(8 * (size_t)numel);
        if (!data) {
            em__error(ctx, EM_ERR_OOM, "em_tensor_str: out of memory");
            return NULL;
        }
        if (em__to_host_as(t, floating ? EM_F64 : EM_I64, data) != EM_OK) {
            free(data);
            return NULL;
        }
    }
    const int indent = 7;   /* strlen("tensor(") */
    sbuf b = {0};
    sb_puts(&b, "tensor(");
    char sfx[4][160];
    const char *suffixes[4];
    int ns = 0;
    if (strcmp(ctx->backend_name, "cpu") != 0) {
        em__snprintf(sfx[ns], sizeof sfx[ns], "device='%s:%d'", ctx->backend_name, ctx->device_index);
        suffixes[ns] = sfx[ns];
        ns++;
    }
    if (numel == 0) {
        sb_puts(&b, "[]");
        if (t->ndim != 1) {
            size_t u = (size_t)snprintf(sfx[ns], sizeof sfx[ns], "size=(");
            for (int i = 0; i < t->ndim && u < sizeof sfx[ns]; i++)
                u += (size_t)snprintf(sfx[ns] + u, sizeof sfx[ns] - u, "%s%lld", i ? ", " : "",
                                      (long long)t->shape[i]);
            if (u < sizeof sfx[ns])
                snprintf(sfx[ns] + u, sizeof sfx[ns] - u, "%s)", t->ndim == 1 ? "," : "");
            suffixes[ns] = sfx[ns];
            ns++;
        }
        if (t->dtype != EM_F32) {   /* nothing shows the dtype: say it */
            em__snprintf(sfx[ns], sizeof sfx[ns], "dtype=torch.%s", torch_dtype(t->dtype));
            suffixes[ns] = sfx[ns];
            ns++;
        }
    } else {
        if (t->dtype != EM_F32 && t->dtype != EM_I64 && t->dtype != EM_BOOL) {
            em__snprintf(sfx[ns], sizeof sfx[ns], "dtype=torch.%s", torch_dtype(t->dtype));
            suffixes[ns] = sfx[ns];
            ns++;
        }
        printer p;
        memset(&p, 0, sizeof p);
        p.data = floating ? data : NULL;
        p.idata = floating ? NULL : data;
        p.ndim = t->ndim;
        p.shape = t->shape;
        em__contiguous_strides(t->ndim, t->shape, p.strides);
        p.summarize = numel > ctx->print_threshold;
        p.edge = ctx->print_edgeitems;
        p.linewidth = ctx->print_linewidth;
        p.f.floating = floating;
        p.f.boolean = t->dtype == EM_BOOL;
        p.f.precision = ctx->print_precision;
        build_formatter(&p);
        if (t->ndim == 0)
            put_value(&p, &b, 0);
        else
            put_tensor(&p, &b, 0, 0, indent);
    }
    if (em__grad_fn_name(t)) {
        em__snprintf(sfx[ns], sizeof sfx[ns], "grad_fn=<%s>", em__grad_fn_name(t));
        suffixes[ns] = sfx[ns];
        ns++;
    } else if (em__requires_grad(t)) {
        suffixes[ns++] = "requires_grad=True";
    }
    add_suffixes(&b, indent, ctx->print_linewidth, suffixes, ns);
    free(data);
    if (b.oom) {
        free(b.s);
        em__error(ctx, EM_ERR_OOM, "em_tensor_str: out of memory");
        return NULL;
    }
    return b.s;
}

EMBER_API em_status em_tensor_print(em_tensor *t, FILE *f)
{
    char *s = em_tensor_str(t);
    if (!s)
        return em__obj_quiet(t) ? em__failed(em__obj_quiet(t)->ctx) : t ? EM_ERR_FREED : EM_ERR_INVALID;
    fputs(s, f ? f : stdout);
    fputc('\n', f ? f : stdout);
    free(s);
    return EM_OK;
}

EMBER_API em_status em_print(em_tensor *t)
{
    return em_tensor_print(t, stdout);
}
