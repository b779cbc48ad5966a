/* The stats groups every protocol reports, as name/value pairs. */
#ifndef MCSTORE_DAEMON_STATS_REPORT_H
#define MCSTORE_DAEMON_STATS_REPORT_H

#include <stddef.h>

#include "daemon/server.h"

/* The memcached version we answer byte for byte; clients gate features on it. */
#define MEMCACHED_COMPAT_VERSION "1.6.18"

/* Receives one statistic (both strings NUL terminated). */
typedef void (*stats_emit_fn)(void *arg, const char *name, const char *value);

enum stats_outcome {
    STATS_DONE,     /* every stat of the group was emitted */
    STATS_RESET,    /* "reset": the counters were zeroed, nothing emitted */
    STATS_UNKNOWN,  /* no such group: the protocol's error */
};

/*
 * Emits the statistics of 'group' (ngroup bytes, not NUL terminated; empty = the general
 * stats) through fn, in memcached's order and names. Any thread; reads other workers'
 * counters with relaxed atomics and takes each worker's lock for "conns".
 */
enum stats_outcome stats_report(struct server *srv, const char *group, size_t ngroup,
                                stats_emit_fn fn, void *arg);

#endif
