/* A log-bucketed latency histogram (HdrHistogram's layout): bounded memory, < 0.8% error. */
#ifndef MCSTORE_TOOLS_BENCH_HIST_H
#define MCSTORE_TOOLS_BENCH_HIST_H

#include <stddef.h>
#include <stdint.h>

/*
 * Values below 2^HIST_SUB_BITS are counted exactly; above, each power of two is split into
 * 2^(HIST_SUB_BITS-1) equal buckets, so a bucket is at most 1/128 of the values it holds wide.
 * Any uint64_t value can be recorded; the table is fixed (HIST_BUCKETS counters, ~58 KiB).
 */
#define HIST_SUB_BITS 8
#define HIST_SUB_COUNT (1u << HIST_SUB_BITS)            /* 256 exact values */
#define HIST_HALF_COUNT (HIST_SUB_COUNT / 2)            /* 128 buckets per power of two */
#define HIST_BUCKETS (HIST_SUB_COUNT + (64 - HIST_SUB_BITS) * HIST_HALF_COUNT)

struct hist {
    uint64_t count;             /* values recorded */
    uint64_t min;               /* exact smallest (UINT64_MAX when empty) */
    uint64_t max;               /* exact largest (0 when empty) */
    double sum;                 /* for the mean */
    uint64_t buckets[HIST_BUCKETS];
};

/* Empties h. */
void hist_init(struct hist *h);

/* Counts one value. Not thread-safe: one histogram per thread, merged at the end. */
void hist_record(struct hist *h, uint64_t v);

/* Adds every count of src to dst. */
void hist_merge(struct hist *dst, const struct hist *src);

/*
 * The value at percentile p (0..100]: the smallest recorded value v such that at least
 * p% of the values are <= v, reported as the upper end of v's bucket (as HdrHistogram's
 * highest equivalent value) but never above the exact max. 0 for an empty histogram.
 */
uint64_t hist_percentile(const struct hist *h, double p);

/* Mean of the recorded values, 0 when empty. */
double hist_mean(const struct hist *h);

/* Bucket index of v and the largest value that bucket holds (exposed for the tests). */
size_t hist_index(uint64_t v);
uint64_t hist_bucket_upper(size_t idx);

#endif
