/* Results: adding up the threads, the progress line, the final table and the JSON object. */
#ifndef MCSTORE_TOOLS_BENCH_REPORT_H
#define MCSTORE_TOOLS_BENCH_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "tools/bench/worker.h"

/* One phase's results, all threads together. Large (histograms): allocate it. */
struct bench_result {
    bool ran;
    enum gen_mode mode;
    double seconds;                 /* first thread's start to last thread's end */
    struct bench_counts cnt;
    struct hist lat, lat_get, lat_set, actions;
    uint64_t actions_done, action_errors, action_writes;
    uint64_t one_ns;                /* max-user: first write out to last reply, all threads */
    uint64_t one_user;
    uint32_t one_followers;
};

/* Adds up the workers of a finished phase into r. */
void bench_result_collect(struct bench_result *r, const struct bench_run *run,
                          struct bench_worker *ws, unsigned n);

/* A result of a phase that did not run (--prefill-only): all zero. */
void bench_result_empty(struct bench_result *r, enum gen_mode mode);

/* Progress so far, for the line printed each second on stderr. */
struct bench_progress {
    uint64_t ops, sets, gets, errors, actions;
};

void bench_progress_read(struct bench_worker *ws, unsigned n, struct bench_progress *p);

/* Prints one progress line: t seconds since the start, and rates since the last line. */
void bench_progress_print(FILE *f, const struct bench_run *run, double t,
                          const struct bench_progress *now, const struct bench_progress *last,
                          double dt);

/* The final table (prefill may be NULL). */
void bench_report_table(FILE *f, const struct bench_run *run, const struct bench_result *prefill,
                        const struct bench_result *r);

/* The same as one JSON object on one line. */
void bench_report_json(FILE *f, const struct bench_run *run, const struct bench_result *prefill,
                       const struct bench_result *r);

#endif
