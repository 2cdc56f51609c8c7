/* layers/profile/profile_report.c — what the profile layer shows: the Chrome trace-event JSON
 * file (written as events happen, one "X" complete event each, on three tracks: the host
 * thread's ops, the device queue's kernels and copies, the autograd phases) and the table
 * printed when the context is freed, sorted, with the totals, the synchronisation cost, the
 * copy and memory counters and the time per phase underneath. */
#include "profile.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ trace */

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void trace_meta(prof *p, int tid, const char *what, const char *name)
{
    fprintf(p->trace, "%s\n{\"ph\": \"M\", \"pid\": %ld, \"tid\": %d, \"name\": \"%s\", "
            "\"args\": {\"name\": ", p->trace_first ? "" : ",", (long)getpid(), tid, what);
    json_string(p->trace, name);
    fprintf(p->trace, "}}");
    p->trace_first = 0;
}

void prof_trace_open(prof *p)
{
    p->trace = fopen(p->trace_path, "w");
    if (!p->trace)
        return;
    p->trace_first = 1;
    fprintf(p->trace, "{\"displayTimeUnit\": \"ms\", \"otherData\": {\"backend\": ");
    json_string(p->trace, p->next->backend ? p->next->backend : "?");
    fprintf(p->trace, ", \"device\": ");
    json_string(p->trace, p->next->props ? p->next->props->name : "?");
    fprintf(p->trace, ", \"synchronised\": %s}, \"traceEvents\": [", p->sync ? "true" : "false");
    char proc[200];
    snprintf(proc, sizeof proc, "ember on %s", p->next->backend ? p->next->backend : "?");
    trace_meta(p, 1, "process_name", proc);
    trace_meta(p, 1, "thread_name", "host: ops");
    char q[200];
    snprintf(q, sizeof q, "%s device queue: kernels and copies%s",
             p->next->backend ? p->next->backend : "?", p->sync ? " (synchronised)" : " (enqueue times)");
    trace_meta(p, 2, "thread_name", q);
    trace_meta(p, 3, "thread_name", "autograd phase");
}

void prof_trace_event(prof *p, const char *name, const char *cat, int tid, double t0_us,
                      double dur_us, const char *args)
{
    if (!p->trace)
        return;
    fprintf(p->trace, "%s\n{\"ph\": \"X\", \"pid\": %ld, \"tid\": %d, \"ts\": %.3f, \"dur\": %.3f, "
            "\"cat\": \"%s\", \"name\": ", p->trace_first ? "" : ",", (long)getpid(), tid,
            t0_us - p->t_origin, dur_us > 0 ? dur_us : 0, cat);
    json_string(p->trace, name);
    if (args)
        fprintf(p->trace, ", \"args\": {%s}", args);
    fputc('}', p->trace);
    p->trace_first = 0;
}

void prof_trace_close(prof *p)
{
    if (!p->trace)
        return;
    fprintf(p->trace, "\n]}\n");
    if (fclose(p->trace) != 0)
        fprintf(stderr, "ember profile: writing %s failed: %s\n", p->trace_path, strerror(errno));
    p->trace = NULL;
}

/* ------------------------------------------------------------------ table */

static double key_of(const prof_row *r, int sort)
{
    switch (sort) {
    case 1: return r->self_us;
    case 2: return (double)r->calls;
    case 3: return r->calls ? r->total_us / (double)r->calls : 0;
    case 4: return r->max_us;
    default: return r->total_us;
    }
}

/* Whether x comes before y: by the key, largest first (name: alphabetical), then by name. */
static bool before(const prof_row *x, const prof_row *y, int sort)
{
    if (sort != 5) {
        double kx = key_of(x, sort), ky = key_of(y, sort);
        if (kx != ky)
            return kx > ky;
    }
    int c = strcmp(x->name, y->name);
    return c ? c < 0 : x->kind < y->kind;
}

static void sort_rows(prof_row *rows, int n, int sort)
{
    for (int i = 1; i < n; i++) {   /* a few dozen rows: insertion sort */
        prof_row r = rows[i];
        int j = i;
        while (j > 0 && before(&r, &rows[j - 1], sort)) {
            rows[j] = rows[j - 1];
            j--;
        }
        rows[j] = r;
    }
}

static void human_bytes(uint64_t b, char *buf, size_t n)
{
    if (b >= (1ull << 30))
        snprintf(buf, n, "%.2f GiB", (double)b / (double)(1ull << 30));
    else if (b >= (1ull << 20))
        snprintf(buf, n, "%.2f MiB", (double)b / (double)(1ull << 20));
    else if (b >= 1024)
        snprintf(buf, n, "%.2f KiB", (double)b / 1024.0);
    else
        snprintf(buf, n, "%llu B", (unsigned long long)b);
}

static void time_text(double us, char *buf, size_t n)
{
    if (us >= 1e6)
        snprintf(buf, n, "%.3fs", us / 1e6);
    else if (us >= 1e3)
        snprintf(buf, n, "%.3fms", us / 1e3);
    else
        snprintf(buf, n, "%.3fus", us);
}

void prof_print_table(prof *p)
{
    FILE *f = p->table == 2 ? stdout : stderr;
    if (p->table == 3 && !(f = fopen(p->table_path, "w"))) {
        fprintf(stderr, "ember profile: cannot write the table to %s: %s\n", p->table_path,
                strerror(errno));
        return;
    }
    static const char *const kind_names[] = {"op", "kernel", "copy"};
    fflush(stdout);   /* the program's own output first */
    fprintf(f, "ember profile: backend %s, device %s\n", p->next->backend ? p->next->backend : "?",
            p->next->props ? p->next->props->name : "?");
    if (p->n_rows == 0) {
        fprintf(f, "(no op, kernel or copy ran)\n");
        if (f != stdout && f != stderr)
            fclose(f);
        return;
    }
    prof_row *rows = malloc(sizeof *rows * (size_t)(p->n_rows ? p->n_rows : 1));
    if (!rows) {
        fprintf(stderr, "ember profile: out of memory printing the table\n");
        if (f != stdout && f != stderr)
            fclose(f);
        return;
    }
    memcpy(rows, p->rows, sizeof *rows * (size_t)p->n_rows);
    sort_rows(rows, p->n_rows, p->sort);
    /* op self times add up to the time spent inside ops; kernels and copies run inside ops */
    double op_self = 0, kernel_total = 0, copy_total = 0;
    for (int i = 0; i < p->n_rows; i++) {
        if (rows[i].kind == ROW_OP)
            op_self += rows[i].self_us;
        else if (rows[i].kind == ROW_KERNEL)
            kernel_total += rows[i].total_us;
        else
            copy_total += rows[i].total_us;
    }
    double span = p->last_us > p->first_us ? p->last_us - p->first_us : 0;
    static const char dash[] = "-----------------------------------------------------------------"
                               "-----------------------------------------------------------------";
    int width = 124;
    fprintf(f, "%.*s\n", width, dash);
    fprintf(f, "%-28s %-6s %10s %12s %8s %12s %8s %12s %12s %12s\n", "Name", "Kind", "# Calls",
            "Total", "Total %", "Self", "Self %", "Mean", "Max", "Bytes");
    fprintf(f, "%.*s\n", width, dash);
    for (int i = 0; i < p->n_rows; i++) {
        const prof_row *r = &rows[i];
        char tot[32], self[32], mean[32], mx[32], by[32] = "";
        time_text(r->total_us, tot, sizeof tot);
        time_text(r->self_us, self, sizeof self);
        time_text(r->calls ? r->total_us / (double)r->calls : 0, mean, sizeof mean);
        time_text(r->max_us, mx, sizeof mx);
        if (r->kind == ROW_COPY)
            human_bytes(r->bytes, by, sizeof by);
        double base = r->kind == ROW_OP ? op_self : r->kind == ROW_KERNEL ? kernel_total
                                                                          : copy_total;
        fprintf(f, "%-28.28s %-6s %10llu %12s %7.2f%% %12s %7.2f%% %12s %12s %12s\n", r->name,
                kind_names[r->kind], (unsigned long long)r->calls, tot,
                base > 0 ? 100.0 * r->total_us / base : 0.0, self,
                base > 0 ? 100.0 * r->self_us / base : 0.0, mean, mx, by);
    }
    fprintf(f, "%.*s\n", width, dash);
    char a[32], b[32], c[32], d[32];
    time_text(op_self, a, sizeof a);
    time_text(kernel_total, b, sizeof b);
    time_text(copy_total, c, sizeof c);
    time_text(span, d, sizeof d);
    char e[32], g[32];
    time_text(op_self + p->outside_us, e, sizeof e);
    time_text(p->outside_us, g, sizeof g);
    fprintf(f, "Self time total: %s (ops %s, kernels and copies outside any op %s); kernels %s; "
            "copies %s; first to last event %s (backend %s; %% columns: ops of the ops' self "
            "total, kernels and copies of theirs)\n", e, a, g, b, c, d,
            p->next->backend ? p->next->backend : "?");
    if (p->sync) {
        time_text(p->sync_us, a, sizeof a);
        fprintf(f, "Device-synchronised: synchronize after each of %llu kernels and copies "
                "(%s waiting, included in their times); the device queue did not overlap host "
                "work, so the run is slower than without the layer ([profile] sync = off: "
                "enqueue times only)\n", (unsigned long long)p->sync_calls, a);
    } else {
        fprintf(f, "Not synchronised: kernel and copy times are those of the calls (%s)\n",
                p->next->props && (p->next->props->flags & EM_DEVICE_HOST_BUFFERS)
                    ? "the backend runs them before returning"
                    : "enqueue times: [profile] sync = on for device times");
    }
    char ab[32], hb[32];
    human_bytes(p->alloc_bytes, ab, sizeof ab);
    human_bytes(p->cache_hit_bytes, hb, sizeof hb);
    fprintf(f, "Memory: buffer_alloc %llu (%s), buffer_free %llu; buffer cache hits %llu (%s), "
            "misses %llu\n", (unsigned long long)p->allocs, ab, (unsigned long long)p->frees,
            (unsigned long long)p->cache_hits, hb, (unsigned long long)p->cache_misses);
    time_text(p->phase_us[PHASE_FORWARD], a, sizeof a);
    time_text(p->phase_us[PHASE_BACKWARD], b, sizeof b);
    time_text(p->phase_us[PHASE_OPTIMIZER], c, sizeof c);
    fprintf(f, "Phases: forward %s (%llu spans), backward %s (%llu), optimizer %s (%llu)\n", a,
            (unsigned long long)p->phase_count[PHASE_FORWARD], b,
            (unsigned long long)p->phase_count[PHASE_BACKWARD], c,
            (unsigned long long)p->phase_count[PHASE_OPTIMIZER]);
    if (p->dropped)
        fprintf(f, "(%d calls of names past the first %d were not counted)\n", p->dropped,
                PROF_MAX_ROWS);
    if (p->trace_path[0])
        fprintf(f, "Trace: %s\n", p->trace_path);
    free(rows);
    if (f != stdout && f != stderr && fclose(f) != 0)
        fprintf(stderr, "ember profile: writing %s failed\n", p->table_path);
}
