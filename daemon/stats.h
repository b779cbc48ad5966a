/* Server counters: one block per worker thread, summed when a client asks. */
#ifndef MCSTORE_DAEMON_STATS_H
#define MCSTORE_DAEMON_STATS_H

#include <stdatomic.h>
#include <stdint.h>

/* Counters of one worker; only that worker adds (relaxed atomics), any thread may read. */
struct thread_stats {
    _Atomic uint64_t get_cmds;
    _Atomic uint64_t get_hits;
    _Atomic uint64_t get_misses;
    _Atomic uint64_t set_cmds;
    _Atomic uint64_t touch_cmds;
    _Atomic uint64_t touch_hits;
    _Atomic uint64_t touch_misses;
    _Atomic uint64_t delete_hits;
    _Atomic uint64_t delete_misses;
    _Atomic uint64_t incr_hits;
    _Atomic uint64_t incr_misses;
    _Atomic uint64_t decr_hits;
    _Atomic uint64_t decr_misses;
    _Atomic uint64_t cas_hits;
    _Atomic uint64_t cas_misses;
    _Atomic uint64_t cas_badval;
    _Atomic uint64_t flush_cmds;
    _Atomic uint64_t store_too_large;
    _Atomic uint64_t store_errors;
    _Atomic uint64_t bytes_read;
    _Atomic uint64_t bytes_written;
    _Atomic uint64_t conn_yields;
    _Atomic uint64_t rget_cmds;
    _Atomic uint64_t iterate_cmds;  /* iterate (doc/protocol.md): one per call */
    _Atomic uint64_t auth_cmds;     /* credentials checked (text auth or binary SASL) */
    _Atomic uint64_t auth_errors;   /* ... that were wrong */
    _Atomic uint64_t meta_cmds;     /* memcached's cmd_meta: it counts only "me" */
};

#define STAT_INC(ts, field) atomic_fetch_add_explicit(&(ts)->field, 1, memory_order_relaxed)
#define STAT_ADD(ts, field, n) atomic_fetch_add_explicit(&(ts)->field, (n), memory_order_relaxed)

/* Process-wide connection counters. */
struct conn_stats {
    _Atomic uint64_t curr_conns;
    _Atomic uint64_t total_conns;
    _Atomic uint64_t rejected_conns;
    _Atomic uint64_t slow_reader_closes;
};

/* Adds every counter of src into dst (plain reads of relaxed atomics). */
void stats_sum(struct thread_stats *dst, const struct thread_stats *src);

/* Zeroes a block ("stats reset"). */
void stats_reset(struct thread_stats *ts);

#endif
