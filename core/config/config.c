/* core/config/config.c — device.ini: parsing (inih, behind a line reader of our own so that
 * every key knows its line and the inih features we do not want are refused loudly), the
 * em_config object, and locating the file. What the settings mean is checked in resolve.c.
 *
 * Syntax errors are found while loading; meaning (unknown sections and keys, bad values) is
 * checked by em__config_resolve, so a config built in code gets the same checks. */
#include "config.h"
#include "internal.h"
#include "core/install_paths.h"   /* EM_SYSCONFDIR, EM_BACKEND_DIR, EM_LIBDIR (generated) */

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SRC_IN_CODE "(in-code configuration)"
#define SRC_DEFAULTS "(built-in defaults)"
/* Bigger than any sane device.ini: stops us from slurping a wrong file named by mistake. */
#define MAX_FILE_BYTES (1u << 20)
/* inih copies section names into a 50-byte buffer and silently truncates longer ones. */
#define INIH_MAX_SECTION 49

const char *em__getenv(const char *name)
{
    /* secure_getenv: a set-uid program must not be steered to another plugin directory. */
    return secure_getenv(name);
}

bool em__valid_backend_name(const char *s)
{
    size_t n = 0;
    if (!s)
        return false;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return n >= 1 && n <= 63;
}

/* Log honouring a level that is not in a context yet (resolve runs before one exists). */
/* ------------------------------------------------------------------ the object */

static void entry_free(em__cfg_entry *e)
{
    free(e->section);
    free(e->key);
    free(e->value);
    free(e->file);
}

static em_config *config_new(const char *source)
{
    em_config *cfg = em__calloc(1, sizeof *cfg);
    if (!cfg)
        return NULL;
    cfg->source = em__strdup(source);
    if (!cfg->source) {
        free(cfg);
        return NULL;
    }
    return cfg;
}

EMBER_API em_config *em_config_create(void)
{
    em_config *cfg = config_new(SRC_IN_CODE);
    if (!cfg)
        em__error_global(EM_ERR_OOM, "out of memory creating a configuration");
    return cfg;
}

EMBER_API void em_config_free(em_config *cfg)
{
    if (!cfg)
        return;
    for (int i = 0; i < cfg->n; i++)
        entry_free(&cfg->entries[i]);
    free(cfg->entries);
    free(cfg->source);
    free(cfg);
}

em__cfg_entry *em__config_find(const em_config *cfg, const char *section, const char *key)
{
    for (int i = 0; i < cfg->n; i++)
        if (!strcmp(cfg->entries[i].section, section) && !strcmp(cfg->entries[i].key, key))
            return &cfg->entries[i];
    return NULL;
}

/* Append a copy; on failure nothing changes. */
static em_status add_entry(em_config *cfg, const char *section, const char *key,
                           const char *value, int line, const char *file)
{
    if (cfg->n == cfg->cap) {
        int cap = cfg->cap ? cfg->cap * 2 : 16;
        em__cfg_entry *e = em__realloc(cfg->entries, sizeof *e * (size_t)cap);
        if (!e)
            return EM_ERR_OOM;
        cfg->entries = e;
        cfg->cap = cap;
    }
    em__cfg_entry e = {0};
    e.section = em__strdup(section);
    e.key = e.section ? em__strdup(key) : NULL;
    e.value = e.key ? em__strdup(value) : NULL;
    e.file = (e.value && file) ? em__strdup(file) : NULL;
    e.line = line;
    if (!e.value || (file && !e.file)) {
        entry_free(&e);
        return EM_ERR_OOM;
    }
    cfg->entries[cfg->n++] = e;
    return EM_OK;
}

em_config *em__config_clone(const em_config *cfg)
{
    if (!cfg)
        return NULL;
    em_config *c = config_new(cfg->source ? cfg->source : SRC_IN_CODE);
    if (!c)
        return NULL;
    for (int i = 0; i < cfg->n; i++) {
        const em__cfg_entry *e = &cfg->entries[i];
        if (add_entry(c, e->section, e->key, e->value, e->line, e->file) != EM_OK) {
            em_config_free(c);
            return NULL;
        }
    }
    return c;
}

void em__config_where(const em_config *cfg, const em__cfg_entry *e, char *buf, size_t n)
{
    if (e && e->line > 0)
        em__snprintf(buf, n, "%s:%d", e->file ? e->file : cfg->source, e->line);
    else
        em__snprintf(buf, n, "%s", SRC_IN_CODE);
}

int em__config_section(const em_config *cfg, const char *sec, em_config_kv *kv, int max,
                       const em__cfg_entry **where)
{
    int n = 0;
    if (!cfg)
        return 0;
    for (int i = 0; i < cfg->n; i++) {
        const em__cfg_entry *e = &cfg->entries[i];
        /* library= is the core's key (which file to load), not the plugin's */
        if (strcmp(e->section, sec) || !strcmp(e->key, "library"))
            continue;
        if (n < max) {
            kv[n].key = e->key;
            kv[n].value = e->value;
            if (where)
                where[n] = e;
        }
        n++;
    }
    return n;
}

/* Names set in code obey what the file syntax could express, so a config built in code
 * can always be written out as a device.ini. */
static bool printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

EMBER_API em_status em_config_set(em_config *cfg, const char *section, const char *key,
                                  const char *value)
{
    if (!cfg || !section || !key)
        return em__error_global(EM_ERR_INVALID, "em_config_set: cfg, section and key must not be NULL");
    if (!*section || strlen(section) > INIH_MAX_SECTION || !printable(section) ||
        strpbrk(section, "[]"))
        return em__error_global(EM_ERR_INVALID,
                                "em_config_set: invalid section name '%s' (1 to %d printable "
                                "characters, no brackets)", section, INIH_MAX_SECTION);
    if (!*key || !printable(key) || strpbrk(key, "=:;#[") || key[0] == ' ' ||
        key[strlen(key) - 1] == ' ')
        return em__error_global(EM_ERR_INVALID,
                                "em_config_set: invalid key name '%s' in [%s]", key, section);
    em__cfg_entry *e = em__config_find(cfg, section, key);
    if (!value) {   /* NULL value: unset, so code can undo a key read from a file */
        if (e) {
            entry_free(e);
            memmove(e, e + 1, sizeof *e * (size_t)(cfg->n - (e - cfg->entries) - 1));
            cfg->n--;
        }
        return EM_OK;
    }
    if (!printable(value))
        return em__error_global(EM_ERR_INVALID,
                                "em_config_set: [%s] %s: the value contains control characters",
                                section, key);
    if (e) {
        char *v = em__strdup(value);
        if (!v)
            return em__error_global(EM_ERR_OOM, "out of memory in em_config_set");
        free(e->value);
        free(e->file);
        e->value = v;
        e->file = NULL;
        e->line = 0;
        return EM_OK;
    }
    if (add_entry(cfg, section, key, value, 0, NULL) != EM_OK)
        return em__error_global(EM_ERR_OOM, "out of memory in em_config_set");
    return EM_OK;
}

EMBER_API const char *em_config_get(const em_config *cfg, const char *section, const char *key)
{
    if (!cfg || !section || !key)
        return NULL;
    const em__cfg_entry *e = em__config_find(cfg, section, key);
    return e ? e->value : NULL;
}

/* ------------------------------------------------------------------ parsing */

typedef struct parse_state {
    const char *buf;
    size_t len, pos;
    const char *name;       /* file name for messages */
    int lineno;             /* the line last handed to inih: the handler's line */
    bool have_prev_name;    /* mirrors inih: an indented line after a key continues it */
    char prev_key[64];
    em_config *tmp;         /* keys of this parse; merged into the target when it succeeds */
    em_status st;           /* first error; stops the parse */
} parse_state;

static bool fail(parse_state *ps, em_status st, const char *fmt, ...) EM_PRINTF(3, 4);
static bool fail(parse_state *ps, em_status st, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    em__error_global(st, "%s:%d: %s", ps->name, ps->lineno, msg);
    ps->st = st;
    return false;
}

/* A short, printable excerpt of a bad line for a message. */
static void excerpt(const char *s, char *out, size_t n)
{
    size_t i = 0;
    for (; *s && i + 4 < n; s++)
        out[i++] = *s;
    if (*s && n > 4) {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[n ? (i < n ? i : n - 1) : 0] = 0;
}

/* Where inih would end a name or value: at one of `chars`, or at an inline comment
 * (';' at the start or after whitespace). Same rule as inih's find_chars_or_comment. */
static const char *find_chars_or_comment(const char *s, const char *chars)
{
    int was_space = 0;
    while (*s && (!chars || !strchr(chars, *s)) && !(was_space && *s == ';')) {
        was_space = (*s == ' ' || *s == '\t');
        s++;
    }
    return s;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\v' || c == '\f';
}

/* Check one raw line (NUL-terminated, no line end) the way inih will read it; report what
 * inih would misread or reject with an opaque line number. */
static bool check_line(parse_state *ps, const char *line)
{
    const char *start = line;
    if (ps->lineno == 1 && !strncmp(start, "\xEF\xBB\xBF", 3))
        start += 3;   /* UTF-8 byte order mark: inih skips it */
    const char *p = start;
    while (is_blank(*p))
        p++;
    if (!*p || *p == ';' || *p == '#')
        return true;   /* blank line or comment */
    if (ps->have_prev_name && p > start)
        return fail(ps, EM_ERR_CONFIG,
                    "continuation lines are not supported: this indented line would be "
                    "joined to the value of '%s' above (remove the indentation)", ps->prev_key);
    char ex[48];
    if (*p == '[') {
        const char *end = find_chars_or_comment(p + 1, "]");
        if (*end != ']') {
            excerpt(p, ex, sizeof ex);
            return fail(ps, EM_ERR_CONFIG, "unterminated section header '%s' (missing ']')", ex);
        }
        const char *after = end + 1;
        while (is_blank(*after))
            after++;
        if (*after && *after != ';' && *after != '#') {
            excerpt(after, ex, sizeof ex);
            return fail(ps, EM_ERR_CONFIG, "unexpected text '%s' after the section header", ex);
        }
        const char *a = p + 1, *b = end;
        while (a < b && is_blank(*a))
            a++;
        while (b > a && is_blank(b[-1]))
            b--;
        if (a == b)
            return fail(ps, EM_ERR_CONFIG, "empty section name '[]'");
        if (b - a > INIH_MAX_SECTION)
            return fail(ps, EM_ERR_CONFIG, "section name longer than %d characters",
                        INIH_MAX_SECTION);
        ps->have_prev_name = false;
        return true;
    }
    const char *end = find_chars_or_comment(p, "=:");
    if (*end != '=' && *end != ':') {
        excerpt(p, ex, sizeof ex);
        return fail(ps, EM_ERR_CONFIG, "expected 'key = value' or '[section]', got '%s'", ex);
    }
    const char *b = end;
    while (b > p && is_blank(b[-1]))
        b--;
    if (b == p)
        return fail(ps, EM_ERR_CONFIG, "missing key name before '%c'", *end);
    size_t kl = (size_t)(b - p);
    if (kl >= sizeof ps->prev_key)
        return fail(ps, EM_ERR_CONFIG, "key name longer than %zu characters",
                    sizeof ps->prev_key - 1);
    memcpy(ps->prev_key, p, kl);
    ps->prev_key[kl] = 0;
    ps->have_prev_name = true;
    return true;
}

/* inih's fgets-style reader: hands out one line at a time, so the handler that runs right
 * after knows its line number, and vets the raw bytes first. */
static char *reader(char *str, int num, void *stream)
{
    parse_state *ps = stream;
    if (ps->st != EM_OK || ps->pos >= ps->len)
        return NULL;
    const char *line = ps->buf + ps->pos;
    const char *nl = memchr(line, '\n', ps->len - ps->pos);
    size_t n = nl ? (size_t)(nl - line) : ps->len - ps->pos;
    ps->pos += n + (nl ? 1 : 0);
    ps->lineno++;
    if (n && line[n - 1] == '\r')
        n--;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)line[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            fail(ps, EM_ERR_CONFIG,
                 "binary data (byte 0x%02x at column %zu): device.ini must be a text file", c,
                 i + 1);
            return NULL;
        }
    }
    /* We give inih the line without its end, so num-1 characters fit. */
    if (num < 2 || n > (size_t)num - 1) {
        fail(ps, EM_ERR_CONFIG, "line %d is longer than %d characters (the most device.ini allows)",
             ps->lineno, num - 1);
        return NULL;
    }
    memcpy(str, line, n);
    str[n] = 0;
    if (!check_line(ps, str))
        return NULL;
    return str;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    parse_state *ps = user;
    if (ps->st != EM_OK)
        return 0;
    if (!*section) {
        fail(ps, EM_ERR_CONFIG,
             "key '%s' is outside any section (put it under [device], [backends] or a "
             "backend's section)", name);
        return 0;
    }
    const em__cfg_entry *dup = em__config_find(ps->tmp, section, name);
    if (dup) {
        fail(ps, EM_ERR_CONFIG, "[%s] %s: duplicate key (already set on line %d)", section,
             name, dup->line);
        return 0;
    }
    if (add_entry(ps->tmp, section, name, value, ps->lineno, ps->name) != EM_OK) {
        fail(ps, EM_ERR_OOM, "out of memory reading the configuration");
        return 0;
    }
    return 1;
}

/* Parse into a scratch config, then merge: a failed load leaves cfg as it was. */
static em_status parse_buffer(em_config *cfg, const char *buf, size_t len, const char *name)
{
    parse_state ps = {.buf = buf, .len = len, .name = name};
    ps.tmp = config_new(name);
    if (!ps.tmp)
        return em__error_global(EM_ERR_OOM, "out of memory reading %s", name);
    int r = ini_parse_stream(reader, &ps, handler, &ps);
    em_status st = ps.st;
    if (st == EM_OK && r == -2)
        st = em__error_global(EM_ERR_OOM, "out of memory reading %s", name);
    else if (st == EM_OK && r != 0)   /* our line checks should have caught it first */
        st = em__error_global(EM_ERR_CONFIG, "%s:%d: syntax error", name, r);
    for (int i = 0; st == EM_OK && i < ps.tmp->n; i++) {
        const em__cfg_entry *e = &ps.tmp->entries[i];
        const em__cfg_entry *old = em__config_find(cfg, e->section, e->key);
        if (old) {
            char w[600];
            em__config_where(cfg, old, w, sizeof w);
            st = em__error_global(EM_ERR_CONFIG, "%s:%d: [%s] %s: duplicate key (already set at %s)",
                                  name, e->line, e->section, e->key, w);
        }
    }
    int n0 = cfg->n;
    for (int i = 0; st == EM_OK && i < ps.tmp->n; i++) {
        const em__cfg_entry *e = &ps.tmp->entries[i];
        if (add_entry(cfg, e->section, e->key, e->value, e->line, e->file) != EM_OK)
            st = em__error_global(EM_ERR_OOM, "out of memory reading %s", name);
    }
    if (st == EM_OK) {
        /* The first file loaded names the config; later ones are listed after it. */
        char *src;
        if (!strcmp(cfg->source, SRC_IN_CODE) || !strcmp(cfg->source, SRC_DEFAULTS)) {
            src = em__strdup(name);
        } else {
            size_t n = strlen(cfg->source) + strlen(name) + 4;
            src = em__malloc(n);
            if (src)
                snprintf(src, n, "%s + %s", cfg->source, name);
        }
        if (src) {
            free(cfg->source);
            cfg->source = src;
        } else {
            st = em__error_global(EM_ERR_OOM, "out of memory reading %s", name);
        }
    }
    if (st != EM_OK) {   /* roll back what this load appended */
        while (cfg->n > n0)
            entry_free(&cfg->entries[--cfg->n]);
    }
    em_config_free(ps.tmp);
    return st;
}

/* Read a whole file; `origin` (may be NULL) says who named it, for messages. */
static em_status load_file(em_config *cfg, const char *path, const char *origin)
{
    char why[160] = "";
    if (origin)
        em__snprintf(why, sizeof why, " (%s)", origin);
    /* O_NONBLOCK: opening a FIFO with no writer would otherwise block forever; what the
     * file is gets checked before anything is read from it */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return em__error_global(EM_ERR_IO, "cannot open device.ini '%s'%s: %s", path, why,
                                strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return em__error_global(EM_ERR_IO, "cannot read device.ini '%s'%s: %s", path, why,
                                strerror(e));
    }
    if (S_ISDIR(sb.st_mode)) {
        close(fd);
        return em__error_global(EM_ERR_IO, "cannot read device.ini '%s'%s: it is a directory",
                                path, why);
    }
    /* Regular files only, and /dev/null (EMBER_CONFIG=/dev/null: no file, the built-in
     * defaults). A FIFO, socket or device could block or never end. */
    struct stat nullsb;
    bool devnull = S_ISCHR(sb.st_mode) && stat("/dev/null", &nullsb) == 0 && S_ISCHR(nullsb.st_mode) &&
                   nullsb.st_rdev == sb.st_rdev;
    if (!S_ISREG(sb.st_mode) && !devnull) {
        close(fd);
        const char *what = S_ISFIFO(sb.st_mode)  ? "a FIFO (named pipe)"
                           : S_ISSOCK(sb.st_mode) ? "a socket"
                           : S_ISCHR(sb.st_mode)  ? "a character device"
                           : S_ISBLK(sb.st_mode)  ? "a block device"
                                                  : "not a regular file";
        return em__error_global(EM_ERR_CONFIG, "device.ini '%s'%s is %s: device.ini must be a "
                                "regular file", path, why, what);
    }
    int fl = fcntl(fd, F_GETFL);
    FILE *f = fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0 ? NULL : fdopen(fd, "rb");
    if (!f) {
        int e = errno;
        close(fd);
        return em__error_global(EM_ERR_IO, "cannot open device.ini '%s'%s: %s", path, why,
                                strerror(e));
    }
    /* The size limit is enforced on reading. */
    size_t cap = S_ISREG(sb.st_mode) && (unsigned long long)sb.st_size <= MAX_FILE_BYTES
                     ? (size_t)sb.st_size + 1 : 4096;
    size_t len = 0;
    char *buf = em__malloc(cap);
    int rerr = 0;
    while (buf) {
        len += fread(buf + len, 1, cap - len, f);
        if ((rerr = ferror(f)) || len < cap)
            break;
        if (cap > MAX_FILE_BYTES)
            break;
        char *nb = em__realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    fclose(f);
    if (!buf)
        return em__error_global(EM_ERR_OOM, "out of memory reading '%s'", path);
    if (rerr) {
        free(buf);
        return em__error_global(EM_ERR_IO, "cannot read device.ini '%s'%s: read error", path, why);
    }
    if (len > MAX_FILE_BYTES) {
        free(buf);
        return em__error_global(EM_ERR_CONFIG, "device.ini '%s'%s is larger than %u bytes: too "
                                "large to be a configuration file", path, why, MAX_FILE_BYTES);
    }
    buf[len] = 0;
    em_status st = parse_buffer(cfg, buf, len, path);
    free(buf);
    return st;
}

EMBER_API em_status em_config_load_file(em_config *cfg, const char *path)
{
    if (!cfg || !path)
        return em__error_global(EM_ERR_INVALID, "em_config_load_file: cfg and path must not be NULL");
    return load_file(cfg, path, NULL);
}

EMBER_API em_status em_config_load_string(em_config *cfg, const char *text, const char *name)
{
    if (!cfg || !text)
        return em__error_global(EM_ERR_INVALID, "em_config_load_string: cfg and text must not be NULL");
    return parse_buffer(cfg, text, strlen(text), name && *name ? name : "(string)");
}

/* ------------------------------------------------------------------ locating */

typedef struct located {
    char *path;            /* NULL: built-in defaults */
    const char *origin;    /* "EMBER_CONFIG", "./device.ini", ... */
    bool explicit_;        /* named by the user: missing is an error, not a skip */
} located;

static void report_add(char **rep, size_t *len, size_t *cap, bool *oom, const char *fmt, ...)
    EM_PRINTF(5, 6);
static void report_add(char **rep, size_t *len, size_t *cap, bool *oom, const char *fmt, ...)
{
    if (*oom || !rep)
        return;
    char line[PATH_MAX + 256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line)
        n = (int)sizeof line - 1;
    if (*len + (size_t)n + 1 > *cap) {
        size_t c = (*cap ? *cap * 2 : 512) + (size_t)n;
        char *r = em__realloc(*rep, c);   /* handed to the user, who frees it with free() */
        if (!r) {
            *oom = true;
            return;
        }
        *rep = r;
        *cap = c;
    }
    memcpy(*rep + *len, line, (size_t)n + 1);
    *len += (size_t)n;
}

static const char ORIGIN_CWD[] = "found in the current directory";

/* A ./device.ini is picked up from wherever the program happens to run, and its library=
 * runs code in the process: like git's safe.directory, refuse one that someone else could
 * have written (the file or the directory writable by others, or owned by another user
 * than the effective one or root). EMBER_UNSAFE_OK=1 accepts it. */
static em_status check_cwd_file(const char *path)
{
    struct stat sb;
    char why[PATH_MAX + 200];
    if (stat(path, &sb) == 0 && em__path_unsafe(path, &sb, why, sizeof why))
        return em__error_global(EM_ERR_CONFIG, "refusing ./device.ini: %s", why);
    if (stat(".", &sb) == 0 && em__path_unsafe("the current directory", &sb, why, sizeof why))
        return em__error_global(EM_ERR_CONFIG, "refusing ./device.ini: %s", why);
    return EM_OK;
}

/* Follows the documented precedence. Fills `report` (malloc'ed) when asked. */
static em_status locate(located *out, char **report)
{
    memset(out, 0, sizeof *out);
    char *rep = NULL;
    size_t len = 0, cap = 0;
    bool oom = false;
    char **r = report ? &rep : NULL;
    const char *const fmt = "  %-34s %s%s\n";
    char cand[PATH_MAX + 64];
    struct stat sb;
    bool chosen = false;

    report_add(r, &len, &cap, &oom, "device.ini candidates, in order (first found wins):\n");
    const char *env = em__getenv("EMBER_CONFIG");
    if (env && *env) {
        bool exists = stat(env, &sb) == 0;
        out->path = em__strdup(env);
        out->origin = "named by EMBER_CONFIG";
        out->explicit_ = true;
        chosen = true;
        report_add(r, &len, &cap, &oom, fmt, "$EMBER_CONFIG", env,
                   exists ? "  found  <- used" : "  MISSING (an error: EMBER_CONFIG names it)");
    } else {
        report_add(r, &len, &cap, &oom, fmt, "$EMBER_CONFIG", "(unset)", "");
    }

    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd))
        em__snprintf(cand, sizeof cand, "%s/device.ini", strcmp(cwd, "/") ? cwd : "");
    else
        em__snprintf(cand, sizeof cand, "./device.ini");
    bool exists = stat("device.ini", &sb) == 0;
    report_add(r, &len, &cap, &oom, fmt, "./device.ini (current directory)", cand,
               chosen ? (exists ? "  found  (not used)" : "  not found")
                      : (exists ? "  found  <- used" : "  not found"));
    if (!chosen && exists) {
        out->path = em__strdup(cand);
        out->origin = ORIGIN_CWD;
        chosen = true;
    }

    const char *xdg = em__getenv("XDG_CONFIG_HOME");
    const char *home = em__getenv("HOME");
    const char *label;
    cand[0] = 0;
    if (xdg && xdg[0] == '/') {
        em__snprintf(cand, sizeof cand, "%s/ember/device.ini", xdg);
        label = "$XDG_CONFIG_HOME/ember/device.ini";
    } else if (home && home[0] == '/') {
        em__snprintf(cand, sizeof cand, "%s/.config/ember/device.ini", strcmp(home, "/") ? home : "");
        label = (xdg && *xdg) ? "~/.config/ember/device.ini (XDG_CONFIG_HOME not absolute)"
                              : "~/.config/ember/device.ini";
    } else {
        label = "$XDG_CONFIG_HOME, ~/.config";
    }
    if (cand[0]) {
        exists = stat(cand, &sb) == 0;
        report_add(r, &len, &cap, &oom, fmt, label, cand,
                   chosen ? (exists ? "  found  (not used)" : "  not found")
                          : (exists ? "  found  <- used" : "  not found"));
        if (!chosen && exists) {
            out->path = em__strdup(cand);
            out->origin = "found in the user's configuration directory";
            chosen = true;
        }
    } else {
        report_add(r, &len, &cap, &oom, fmt, label, "(neither is set to an absolute path)", "");
    }

    em__snprintf(cand, sizeof cand, "%s/ember/device.ini", EM_SYSCONFDIR);
    exists = stat(cand, &sb) == 0;
    report_add(r, &len, &cap, &oom, fmt, "system (sysconfdir)", cand,
               chosen ? (exists ? "  found  (not used)" : "  not found")
                      : (exists ? "  found  <- used" : "  not found"));
    if (!chosen && exists) {
        out->path = em__strdup(cand);
        out->origin = "the system-wide file";
        chosen = true;
    }
    report_add(r, &len, &cap, &oom, fmt, "built-in defaults", "backend cpu, its default device",
               chosen ? "" : "  <- used");

    if ((chosen && !out->path) || oom) {
        free(out->path);
        free(rep);
        out->path = NULL;
        return em__error_global(EM_ERR_OOM, "out of memory locating device.ini");
    }
    if (!chosen)
        out->origin = "no device.ini found";
    if (report)
        *report = rep;
    return EM_OK;
}

EMBER_API char *em_config_locate(char **report)
{
    located loc;
    if (report)
        *report = NULL;
    if (locate(&loc, report) != EM_OK)
        return NULL;
    return loc.path;
}

em_status em__config_load_for_context(const char *path, em_config **out)
{
    *out = NULL;
    located loc = {0};
    if (path) {
        loc.path = em__strdup(path);
        loc.origin = "given in code";
        loc.explicit_ = true;
        if (!loc.path)
            return em__error_global(EM_ERR_OOM, "out of memory locating device.ini");
    } else {
        em_status st = locate(&loc, NULL);
        if (st != EM_OK)
            return st;
    }
    em_config *cfg = config_new(loc.path ? SRC_IN_CODE : SRC_DEFAULTS);
    if (!cfg) {
        free(loc.path);
        return em__error_global(EM_ERR_OOM, "out of memory creating a configuration");
    }
    em_status st = EM_OK;
    if (loc.path && !loc.explicit_ && loc.origin == ORIGIN_CWD)
        st = check_cwd_file(loc.path);
    if (loc.path && st == EM_OK)
        st = load_file(cfg, loc.path, loc.origin);
    free(loc.path);
    if (st != EM_OK) {
        em_config_free(cfg);
        return st;
    }
    *out = cfg;
    return EM_OK;
}

