/* tests/test_reference.c — ember against PyTorch 1.13 on random op chains.
 *
 * tests/data/chains_reference.txt (made by tests/data/gen_chains.py, whose docstring gives
 * the format) holds a few hundred short programs drawn from ember's vocabulary, each run in
 * PyTorch: inputs (some stored non-contiguously), ops, and what PyTorch gave: the output's
 * dtype, shape, values, requires_grad and grad_fn name, and the gradients of the inputs for
 * out.backward(w) — or the op at which PyTorch raised. This test interprets every program
 * with ember's public API (the op table is tests/reference_ops.h) on the backend of the
 * build (cpu, opencl) and compares. Every mismatch prints the program, so it can be run
 * alone: EMBER_TEST_CHAINS=17,42 runs only those programs; EMBER_TEST_CHAINS_VERBOSE=1
 * prints each program's outcome.
 *
 * Tolerances: floats pass when |got - want| <= tol * (scale + |want|) elementwise, scale
 * the largest |want| of the compared tensor (at least 0.01), with tol 3e-5 for f32 and
 * 1e-10 for f64 (the generator only keeps programs whose f32 and f64 runs agree to 2e-6 on
 * that measure); f64 results of a program where an f32 tensor took part get f32's
 * tolerance. NaN must meet NaN and infinities must be equal; integers and booleans are
 * exact. */
#include "backend_harness.h"
#include "reference_ops.h"

#include <ctype.h>
#include <errno.h>

#define TOL_F32 3e-5
#define TOL_F64 1e-10
#define SCALE_FLOOR 1e-2
#define MAX_TOKENS 4096

/* What is compared, each reported by its own test. */
enum { K_ERRORS, K_VALUES, K_GRADS, K_GRADFN, K_COUNT };
static const char *const kind_name[K_COUNT] = {
    "which side errors (forward and backward)",
    "output dtype, shape, values and requires_grad",
    "gradients of the inputs",
    "grad_fn name of the output",
};

typedef struct report {
    char *text;
    size_t len, cap;
    int count;
} report;

static report g_report[K_COUNT];
static int g_programs, g_compared, g_backwards, g_errors_expected;
static char *g_file;       /* the data file, lines NUL-terminated */
static char **g_lines;
static int g_nlines;
static const char *g_path;

static void rep_add(report *rp, const char *fmt, ...) EM_PRINTF(2, 3);
static void rep_add(report *rp, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (rp->len + (size_t)n + 1 > rp->cap) {
        size_t cap = (rp->cap ? rp->cap * 2 : 4096) + (size_t)n;
        char *t = realloc(rp->text, cap);
        if (!t)
            return;
        rp->text = t;
        rp->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(rp->text + rp->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    rp->len += (size_t)n;
}

/* ------------------------------------------------------------------ the data file */

static void load_file(void)
{
    static char path[4096];
    const char *dir = getenv("EMBER_TEST_DATA_DIR");
    snprintf(path, sizeof path, "%s/chains_reference.txt", dir && *dir ? dir : "tests/data");
    g_path = path;
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    g_file = malloc((size_t)size + 1);
    assert_non_null(g_file);
    assert_int_equal(fread(g_file, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    g_file[size] = 0;
    int cap = 1024;
    g_lines = malloc(sizeof *g_lines * (size_t)cap);
    for (char *p = g_file; *p;) {
        if (g_nlines == cap) {
            cap *= 2;
            g_lines = realloc(g_lines, sizeof *g_lines * (size_t)cap);
            assert_non_null(g_lines);
        }
        g_lines[g_nlines++] = p;
        char *nl = strchr(p, '\n');
        if (!nl)
            break;
        *nl = 0;
        p = nl + 1;
    }
}

/* Splits a copy of line into tokens (scratch holds the copy). */
static int tokenize(const char *line, char *scratch, size_t cap, char **tok)
{
    snprintf(scratch, cap, "%s", line);
    int n = 0;
    for (char *p = scratch; *p && n < MAX_TOKENS;) {
        while (*p && isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        tok[n++] = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        if (*p)
            *p++ = 0;
    }
    return n;
}

/* "<ndim> <shape...> :" starting at tok[i]; returns the index of the first value. */
static int parse_shape(char **tok, int n, int i, int *nd, int64_t *shape)
{
    *nd = i < n ? atoi(tok[i]) : -1;
    assert_true(*nd >= 0 && *nd <= EM_MAX_DIMS && i + 1 + *nd < n);
    for (int d = 0; d < *nd; d++)
        shape[d] = strtoll(tok[i + 1 + d], NULL, 10);
    assert_string_equal(tok[i + 1 + *nd], ":");
    return i + 2 + *nd;
}

static int64_t numel_of(int nd, const int64_t *shape)
{
    int64_t k = 1;
    for (int d = 0; d < nd; d++)
        k *= shape[d];
    return k;
}

/* Element i of buf (dtype dt) from its text. */
static void put_value(em_dtype dt, void *buf, int64_t i, const char *s)
{
    switch (dt) {
    case EM_F32: ((float *)buf)[i] = strtof(s, NULL); break;
    case EM_F64: ((double *)buf)[i] = strtod(s, NULL); break;
    case EM_I64: ((int64_t *)buf)[i] = strtoll(s, NULL, 10); break;
    case EM_I32: ((int32_t *)buf)[i] = (int32_t)strtol(s, NULL, 10); break;
    default: ((uint8_t *)buf)[i] = (uint8_t)strtol(s, NULL, 10); break;
    }
}

static double get_double(em_dtype dt, const void *buf, int64_t i)
{
    switch (dt) {
    case EM_F32: return ((const float *)buf)[i];
    case EM_F64: return ((const double *)buf)[i];
    case EM_I64: return (double)((const int64_t *)buf)[i];
    case EM_I32: return ((const int32_t *)buf)[i];
    default: return ((const uint8_t *)buf)[i];
    }
}

static int64_t get_int(em_dtype dt, const void *buf, int64_t i)
{
    switch (dt) {
    case EM_I64: return ((const int64_t *)buf)[i];
    case EM_I32: return ((const int32_t *)buf)[i];
    case EM_U8: case EM_BOOL: return ((const uint8_t *)buf)[i];
    default: return (int64_t)get_double(dt, buf, i);
    }
}

/* ------------------------------------------------------------------ inputs */

/* An I line: the tensor in its layout, a leaf of its own, requiring grad as told. NULL
 * when ember refused (the context says why). */
static em_tensor *make_input(char **tok, int n)
{
    em_dtype dt = rf_dtype_of(tok[1]);
    assert_true(dt != EM_DTYPE_COUNT_);
    char layout = tok[2][0];
    bool rg = atoi(tok[3]) != 0;
    int nd;
    int64_t shape[EM_MAX_DIMS];
    int v0 = parse_shape(tok, n, 4, &nd, shape);
    int64_t cnt = numel_of(nd, shape);
    assert_int_equal(n - v0, cnt);
    size_t es = em_dtype_size(dt);
    char *logical = calloc((size_t)(cnt ? cnt : 1), es);
    for (int64_t i = 0; i < cnt; i++)
        put_value(dt, logical, i, tok[v0 + i]);
    em_tensor *t = NULL;
    if (layout == 't' && nd >= 2) {
        /* stored with the last two dims swapped */
        int64_t ss[EM_MAX_DIMS];
        memcpy(ss, shape, sizeof ss);
        int64_t A = shape[nd - 2], Bn = shape[nd - 1];
        ss[nd - 2] = Bn;
        ss[nd - 1] = A;
        char *stored = calloc((size_t)(cnt ? cnt : 1), es);
        for (int64_t i = 0; i < cnt; i++) {
            int64_t plane = A * Bn, pre = i / plane, a = (i / Bn) % A, b = i % Bn;
            memcpy(stored + (size_t)(pre * plane + b * A + a) * es, logical + (size_t)i * es, es);
        }
        em_tensor *base = em_tensor_from_data(g_ctx, dt, nd, ss, stored);
        free(stored);
        t = em_transpose(base, nd - 2, nd - 1);
    } else if (layout == 's' && nd >= 1) {
        /* every other element of a last dim twice as long, sentinels between */
        int64_t ss[EM_MAX_DIMS];
        memcpy(ss, shape, sizeof ss);
        ss[nd - 1] *= 2;
        int64_t wide = 2 * cnt;
        char *stored = calloc((size_t)(wide ? wide : 1), es);
        for (int64_t i = 0; i < wide; i++)
            put_value(dt, stored, i, dt == EM_BOOL ? "1" : "99");
        for (int64_t i = 0; i < cnt; i++)
            memcpy(stored + (size_t)(2 * i) * es, logical + (size_t)i * es, es);
        em_tensor *base = em_tensor_from_data(g_ctx, dt, nd, ss, stored);
        free(stored);
        t = em_slice(base, nd - 1, 0, EM_END, 2);
    } else {
        t = em_tensor_from_data(g_ctx, dt, nd, shape, logical);
    }
    free(logical);
    if (t && rg && layout != 'c')
        t = em_detach(t);
    if (t && rg && em_tensor_set_requires_grad(t, true) != EM_OK)
        return NULL;
    return em_context_status(g_ctx) == EM_OK ? t : NULL;
}

/* ------------------------------------------------------------------ comparing */

/* t against the text values tok[0..cnt) of dtype `dtn` and shape (nd, shape); false with
 * the reason in why. */
static bool compare(em_tensor *t, const char *dtn, int nd, const int64_t *shape, char **vals,
                    int64_t cnt, bool f32_tol, char *why, size_t wn)
{
    em_dtype want_dt = rf_dtype_of(dtn);
    em_dtype dt = em_tensor_dtype(t);
    bool shape_ok = em_tensor_ndim(t) == nd;
    for (int d = 0; shape_ok && d < nd; d++)
        shape_ok = em_tensor_size(t, d) == shape[d];
    if (dt != want_dt || !shape_ok) {
        char gs[128] = "", ws[128] = "";
        for (int d = 0; d < em_tensor_ndim(t); d++)
            snprintf(gs + strlen(gs), sizeof gs - strlen(gs), "%s%lld", d ? ", " : "",
                     (long long)em_tensor_size(t, d));
        for (int d = 0; d < nd; d++)
            snprintf(ws + strlen(ws), sizeof ws - strlen(ws), "%s%lld", d ? ", " : "",
                     (long long)shape[d]);
        snprintf(why, wn, "got %s [%s], want %s [%s]", em_dtype_name(dt), gs, dtn, ws);
        return false;
    }
    size_t es = em_dtype_size(dt);
    char *buf = calloc((size_t)(cnt ? cnt : 1), es);
    em_status st = em_tensor_to_host(t, buf, (size_t)cnt * es);
    if (st != EM_OK) {
        snprintf(why, wn, "em_tensor_to_host: %s: %s", em_status_name(st), em_context_error(g_ctx));
        free(buf);
        return false;
    }
    bool ok = true;
    if (em_dtype_is_floating(dt)) {
        double tol = dt == EM_F32 || f32_tol ? TOL_F32 : TOL_F64, scale = 0;
        for (int64_t i = 0; i < cnt; i++) {
            double w = strtod(vals[i], NULL);
            if (isfinite(w))
                scale = fmax(scale, fabs(w));
        }
        /* a floor: the rounding residue of an exact 0 (a - a computed in another order) */
        scale = fmax(scale, SCALE_FLOOR);
        for (int64_t i = 0; ok && i < cnt; i++) {
            double w = strtod(vals[i], NULL), g = get_double(dt, buf, i);
            if (isnan(w) ? !isnan(g) : isinf(w) ? g != w : !(fabs(g - w) <= tol * (scale + fabs(w)))) {
                snprintf(why, wn, "element %lld of %lld: got %.17g, want %s (tolerance %g x (%g + |want|))",
                         (long long)i, (long long)cnt, g, vals[i], tol, scale);
                ok = false;
            }
        }
    } else {
        for (int64_t i = 0; ok && i < cnt; i++) {
            long long w = strtoll(vals[i], NULL, 10), g = get_int(dt, buf, i);
            if (g != w) {
                snprintf(why, wn, "element %lld of %lld: got %lld, want %lld", (long long)i,
                         (long long)cnt, g, w);
                ok = false;
            }
        }
    }
    free(buf);
    return ok;
}

/* ------------------------------------------------------------------ running a program */

typedef struct prog {
    int first, last;       /* lines [first, last] of the file: P .. Z */
    int id;
} prog;

/* A mismatch: the reason and the program, in the report of its kind. */
static void mismatch(int kind, const prog *p, const char *fmt, ...) EM_PRINTF(3, 4);
static void mismatch(int kind, const prog *p, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *c = msg; *c; c++)
        if (*c == '\n')
            *c = ' ';
    report *rp = &g_report[kind];
    rp->count++;
    rep_add(rp, "# program %d (%s line %d): %s\n", p->id, g_path, p->first + 1, msg);
    /* a fixed program says what it pins down on the comment line above it */
    if (p->first > 0 && !strncmp(g_lines[p->first - 1], "# ", 2))
        rep_add(rp, "#   (%s)\n", g_lines[p->first - 1] + 2);
    for (int l = p->first + 1; l < p->last; l++) {
        const char *s = g_lines[l];
        int len = (int)strlen(s);
        rep_add(rp, "#   %.*s%s\n", len > 200 ? 200 : len, s, len > 200 ? " ..." : "");
    }
}

static const char *ctx_error(void)
{
    return em_context_status(g_ctx) != EM_OK ? em_context_error(g_ctx) : "no error recorded";
}

static void run_program(const prog *p, char *scratch, size_t cap, char **tok)
{
    rf_run r;
    memset(&r, 0, sizeof r);
    em_tensor *inputs[RF_MAX_REGS];
    int n_in = 0, op_k = 0, error_at = -1;
    for (int l = p->first; l <= p->last; l++)
        if (g_lines[l][0] == 'E')
            error_at = atoi(g_lines[l] + 2);
    if (error_at >= 0)
        g_errors_expected++;
    em_context_clear_error(g_ctx);
    em_scope_begin(g_ctx);
    em_tensor *out = NULL, *w = NULL;
    bool want_rg = false, check_grads = false;
    bool f32 = false;   /* an f32 tensor took part: f64 results have f32's accuracy too */
    for (int l = p->first + 1; l < p->last; l++) {
        const char *line = g_lines[l];
        int n = tokenize(line, scratch, cap, tok);
        if (!n)
            continue;
        char tag = tok[0][0];
        if (tag == 'I') {
            em_tensor *t = make_input(tok, n);
            if (!t) {
                mismatch(K_ERRORS, p, "ember could not build input %d (%s): %s", n_in, line, ctx_error());
                goto done;
            }
            assert_true(r.n_regs < RF_MAX_REGS);
            f32 = f32 || em_tensor_dtype(t) == EM_F32;
            inputs[n_in++] = t;
            r.regs[r.n_regs++] = t;
        } else if (tag == 'O') {
            const rf_op *op = rf_find(tok[1]);
            if (!op)
                fail_msg("%s line %d: unknown op '%s'", g_path, l + 1, tok[1]);
            em_tensor *t = op->fn(&r, tok + 2, n - 2);
            if (r.bad[0])
                fail_msg("%s line %d: %s", g_path, l + 1, r.bad);
            bool failed = !t || em_context_status(g_ctx) != EM_OK;
            if (op_k == error_at) {
                if (!failed)
                    mismatch(K_ERRORS, p, "op %d (%s): PyTorch raises, ember returned a result", op_k, tok[1]);
                goto done;
            }
            if (failed) {
                mismatch(K_ERRORS, p, "op %d (%s): ember failed where PyTorch did not: %s", op_k, tok[1],
                         ctx_error());
                goto done;
            }
            assert_true(r.n_regs < RF_MAX_REGS);
            f32 = f32 || em_tensor_dtype(t) == EM_F32;
            r.regs[r.n_regs++] = t;
            op_k++;
        } else if (tag == 'R') {
            out = r.regs[r.n_regs - 1];
            want_rg = atoi(tok[2]) != 0;
            const char *gf = tok[3];
            int nd;
            int64_t shape[EM_MAX_DIMS];
            int v0 = parse_shape(tok, n, 4, &nd, shape);
            char why[512];
            g_compared++;
            assert_int_equal(n - v0, numel_of(nd, shape));
            if (!compare(out, tok[1], nd, shape, tok + v0, n - v0, f32, why, sizeof why)) {
                mismatch(K_VALUES, p, "output: %s", why);
                goto done;
            }
            if (em_tensor_requires_grad(out) != want_rg) {
                mismatch(K_VALUES, p, "output: requires_grad is %d, PyTorch's %d",
                         em_tensor_requires_grad(out), want_rg);
                goto done;
            }
            const char *name = em_tensor_grad_fn_name(out);
            if (strcmp(gf, "?") && strcmp(name ? name : "-", gf))
                mismatch(K_GRADFN, p, "output: grad_fn %s, PyTorch's %s", name ? name : "(none)", gf);
        } else if (tag == 'W') {
            /* the backward seed, of the output's dtype and shape */
            em_dtype dt = em_tensor_dtype(out);
            int64_t cnt = em_tensor_numel(out);
            assert_int_equal(n - 1, cnt);
            void *buf = calloc((size_t)(cnt ? cnt : 1), em_dtype_size(dt));
            for (int64_t i = 0; i < cnt; i++)
                put_value(dt, buf, i, tok[1 + i]);
            w = em_tensor_from_data(g_ctx, dt, em_tensor_ndim(out), em_tensor_shape(out), buf);
            free(buf);
            assert_non_null(w);
            bool refuse = l + 1 < p->last && g_lines[l + 1][0] == 'X';
            em_status st = em_backward_ex(out, w, false);
            g_backwards++;
            if (refuse && st == EM_OK) {
                mismatch(K_ERRORS, p, "backward: PyTorch refuses it, ember's succeeded");
                goto done;
            }
            if (!refuse && st != EM_OK) {
                mismatch(K_ERRORS, p, "backward: ember failed: %s: %s", em_status_name(st), ctx_error());
                goto done;
            }
            check_grads = !refuse;
        } else if (tag == 'G' && check_grads) {
            int k = atoi(tok[1]);
            assert_true(k >= 0 && k < n_in);
            em_tensor *g = em_grad(inputs[k]);
            if (!strcmp(tok[2], "none")) {
                if (g)
                    mismatch(K_GRADS, p, "input %d: ember has a .grad, PyTorch's is None", k);
                continue;
            }
            if (!g) {
                mismatch(K_GRADS, p, "input %d: ember's .grad is None: %s", k, ctx_error());
                continue;
            }
            em_tensor *x = inputs[k];
            char why[512];
            assert_int_equal(n - 3, em_tensor_numel(x));
            if (!compare(g, em_dtype_name(em_tensor_dtype(x)), em_tensor_ndim(x), em_tensor_shape(x),
                         tok + 3, n - 3, f32, why, sizeof why))
                mismatch(K_GRADS, p, "grad of input %d: %s", k, why);
        }
    }
    (void)want_rg;
done:
    if (getenv("EMBER_TEST_CHAINS_VERBOSE"))
        printf("# program %d ran (%d ops)\n", p->id, op_k);
    em_scope_end(g_ctx);
    em_context_clear_error(g_ctx);
}

static bool selected(int id)
{
    const char *sel = getenv("EMBER_TEST_CHAINS");
    if (!sel || !*sel)
        return true;
    for (const char *s = sel; *s;) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s)
            break;
        if (v == id)
            return true;
        s = *end == ',' ? end + 1 : end;
    }
    return false;
}

static int run_all(void **state)
{
    (void)state;
    load_file();
    size_t cap = 1 << 20;
    char *scratch = malloc(cap);
    char **tok = malloc(sizeof *tok * MAX_TOKENS);
    for (int l = 0; l < g_nlines; l++) {
        if (g_lines[l][0] != 'P')
            continue;
        prog p = {l, l, atoi(g_lines[l] + 2)};
        while (p.last < g_nlines && g_lines[p.last][0] != 'Z')
            p.last++;
        if (p.last == g_nlines)
            fail_msg("%s line %d: program %d has no Z line", g_path, l + 1, p.id);
        if (selected(p.id)) {
            g_programs++;
            run_program(&p, scratch, cap, tok);
        }
        l = p.last;
    }
    free(scratch);
    free(tok);
    printf("# %d programs from %s: %d PyTorch errors expected, %d outputs and %d backward passes compared\n",
           g_programs, g_path, g_errors_expected, g_compared, g_backwards);
    return 0;
}

static int free_all(void **state)
{
    (void)state;
    for (int k = 0; k < K_COUNT; k++)
        free(g_report[k].text);
    free(g_lines);
    free(g_file);
    return 0;
}

static void check_kind(int kind)
{
    report *rp = &g_report[kind];
    if (!rp->count)
        return;
    fputs(rp->text, stdout);
    fflush(stdout);
    fail_msg("%d programs disagree with PyTorch on %s (listed above)", rp->count, kind_name[kind]);
}

static void test_errors(void **state) { (void)state; check_kind(K_ERRORS); }
static void test_values(void **state) { (void)state; check_kind(K_VALUES); }
static void test_grads(void **state) { (void)state; check_kind(K_GRADS); }
static void test_grad_fn(void **state) { (void)state; check_kind(K_GRADFN); }

int main(void)
{
    int rc = test_backend_setup();
    if (rc >= 0)
        return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors), cmocka_unit_test(test_values),
        cmocka_unit_test(test_grads), cmocka_unit_test(test_grad_fn),
    };
    char name[64];
    snprintf(name, sizeof name, "op chains against PyTorch on %s", test_backend_name());
    rc = _cmocka_run_group_tests(name, tests, sizeof tests / sizeof tests[0], run_all, free_all);
    em_context_free(g_ctx);
    return rc;
}
