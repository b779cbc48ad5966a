/* Summing and resetting the per-thread counter blocks. */
#include "config.h"

#include "daemon/stats.h"

#include <stddef.h>

#define STATS_FIELDS (sizeof(struct thread_stats) / sizeof(_Atomic uint64_t))

void stats_sum(struct thread_stats *dst, const struct thread_stats *src)
{
    _Atomic uint64_t *d = (_Atomic uint64_t *)dst;
    const _Atomic uint64_t *s = (const _Atomic uint64_t *)src;
    for (size_t i = 0; i < STATS_FIELDS; i++) {
        atomic_fetch_add_explicit(&d[i], atomic_load_explicit(&s[i], memory_order_relaxed),
                                  memory_order_relaxed);
    }
}

void stats_reset(struct thread_stats *ts)
{
    _Atomic uint64_t *d = (_Atomic uint64_t *)ts;
    for (size_t i = 0; i < STATS_FIELDS; i++) {
        atomic_store_explicit(&d[i], 0, memory_order_relaxed);
    }
}
