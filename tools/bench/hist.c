/* Log-bucketed histogram: exact below 256, then 128 linear buckets per power of two. */
#include "tools/bench/hist.h"

#include <string.h>

void hist_init(struct hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

size_t hist_index(uint64_t v)
{
    if (v < HIST_SUB_COUNT) {
        return (size_t)v;
    }
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);     /* >= HIST_SUB_BITS */
    unsigned shift = msb - (HIST_SUB_BITS - 1);              /* >= 1 */
    uint64_t m = v >> shift;                                 /* in [128, 256) */
    return HIST_SUB_COUNT + (size_t)(shift - 1) * HIST_HALF_COUNT + (size_t)(m - HIST_HALF_COUNT);
}

uint64_t hist_bucket_upper(size_t idx)
{
    if (idx < HIST_SUB_COUNT) {
        return (uint64_t)idx;
    }
    size_t rel = idx - HIST_SUB_COUNT;
    unsigned shift = (unsigned)(rel / HIST_HALF_COUNT) + 1;
    uint64_t m = HIST_HALF_COUNT + rel % HIST_HALF_COUNT;
    /* ((m + 1) << shift) - 1, computed so the last bucket gives UINT64_MAX, not 0 - 1 */
    return (m << shift) + ((UINT64_C(1) << shift) - 1);
}

void hist_record(struct hist *h, uint64_t v)
{
    h->buckets[hist_index(v)]++;
    h->count++;
    h->sum += (double)v;
    if (v < h->min) {
        h->min = v;
    }
    if (v > h->max) {
        h->max = v;
    }
}

void hist_merge(struct hist *dst, const struct hist *src)
{
    if (src->count == 0) {
        return;
    }
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        dst->buckets[i] += src->buckets[i];
    }
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min) {
        dst->min = src->min;
    }
    if (src->max > dst->max) {
        dst->max = src->max;
    }
}

uint64_t hist_percentile(const struct hist *h, double p)
{
    if (h->count == 0) {
        return 0;
    }
    if (p >= 100.0) {
        return h->max;
    }
    if (p < 0.0) {
        p = 0.0;
    }
    /* the rank of the value asked for, 1-based: ceil(p% of count), at least 1 */
    double r = p * (double)h->count / 100.0;
    uint64_t rank = (uint64_t)r;
    if (r - (double)rank > 1e-9 * r) {     /* a fraction left, beyond rounding noise */
        rank++;
    }
    if (rank < 1) {
        rank = 1;
    }
    if (rank > h->count) {
        rank = h->count;
    }
    uint64_t seen = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t v = hist_bucket_upper(i);
            if (v > h->max) {
                v = h->max;
            }
            if (v < h->min) {
                v = h->min;
            }
            return v;
        }
    }
    return h->max;
}

double hist_mean(const struct hist *h)
{
    return h->count ? h->sum / (double)h->count : 0.0;
}
