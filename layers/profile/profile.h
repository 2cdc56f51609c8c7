/* layers/profile/profile.h — the profile layer's instance: per-op and per-kernel statistics,
 * copy and memory counters, the autograd phase in progress, and the trace file being
 * written. Shared by profile.c (the wrappers and events) and profile_report.c (the table
 * and the trace-event JSON). */
#ifndef EMBER_LAYER_PROFILE_H
#define EMBER_LAYER_PROFILE_H

#include "../layer_common.h"

#include <stdint.h>
#include <stdio.h>

enum { ROW_OP, ROW_KERNEL, ROW_COPY };
enum { PHASE_FORWARD, PHASE_BACKWARD, PHASE_OPTIMIZER, N_PHASES };

typedef struct prof_row {
    char name[64];
    int kind;                  /* ROW_* */
    uint64_t calls;
    double total_us;           /* ops: inclusive of the ops they run inside */
    double self_us;            /* ops: without nested ops; kernels, copies: = total */
    double max_us;
    uint64_t bytes;            /* copies */
} prof_row;

#define PROF_MAX_ROWS 512
#define PROF_MAX_DEPTH 64

typedef struct prof_frame {
    int row;                   /* -1: the table was full */
    double t0_us;
    double child_us;
    char shapes[160];          /* for the trace */
} prof_frame;

typedef struct prof {
    const em_host *host;
    em_host_ctx *hc;
    const em_layer_next *next;
    void *dev;
    /* configuration */
    int sync;                  /* synchronize after each timed call */
    int table;                 /* 0 off, 1 stderr, 2 stdout, 3 table_path */
    char table_path[512];
    int sort;                  /* 0 total, 1 self, 2 calls, 3 mean, 4 max, 5 name */
    FILE *trace;               /* NULL: no trace */
    char trace_path[512];
    int trace_first;           /* no event written yet (no comma) */
    double t_origin;           /* CLOCK_MONOTONIC of creation, us */
    /* statistics */
    prof_row rows[PROF_MAX_ROWS];
    int n_rows;
    int kernel_row[128];       /* per ops-table slot: row + 1 of its kernel (0: none yet) */
    int hash_row[1024];        /* name hash -> row + 1 (0: empty), open addressing */
    int dropped;               /* distinct names past PROF_MAX_ROWS */
    prof_frame stack[PROF_MAX_DEPTH];
    int depth;
    double first_us, last_us;  /* first and last event */
    double sync_us;            /* time spent in the added synchronize calls */
    double outside_us;         /* kernels and copies run outside any op (an optimizer's
                                * fused step, uploads, initialisation) */
    uint64_t sync_calls;
    uint64_t allocs, alloc_bytes, frees, cache_hits, cache_misses, cache_hit_bytes;
    /* phases */
    int phase;
    double phase_t0;
    int phase_ops;             /* ops seen in the phase in progress */
    double phase_us[N_PHASES];
    uint64_t phase_count[N_PHASES];
} prof;

extern const char *const prof_phase_names[N_PHASES];

double prof_now_us(void);
/* The row for name/kind (created on first use), or -1 when the table is full. */
int prof_row_get(prof *p, const char *name, int kind);
/* The same for the kernel at ops-table slot `slot` (cached). */
int prof_kernel_row(prof *p, int slot, const char *name);
/* One timed event on the trace (no-op without a trace file). tid: 1 host, 2 device queue,
 * 3 phases. args: a JSON object's members (without braces), or NULL. */
void prof_trace_event(prof *p, const char *name, const char *cat, int tid, double t0_us,
                      double dur_us, const char *args);
void prof_trace_open(prof *p);
void prof_trace_close(prof *p);
/* The table, sorted (at destroy). */
void prof_print_table(prof *p);

#endif
