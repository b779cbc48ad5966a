/* mcstore-rebalance: one pass that moves the keys whose owner changes from old to new ring. */
#ifndef MCSTORE_TOOLS_REBALANCE_REBALANCE_H
#define MCSTORE_TOOLS_REBALANCE_REBALANCE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tools/rebalance/state.h"
#include "tools/ring/ring.h"

/* One side of the rebalance: a ring and a text describing it (for the fingerprint). */
struct rb_ring {
    struct ring *ring;
    char *desc;                 /* "kind hash tag node,node,..." (malloc'd) */
};

struct rb_config {
    struct rb_ring old_ring;
    struct rb_ring new_ring;
    const char *state_path;     /* the checkpoint; the ledger is state_path + ".ledger" */
    double rate;                /* keys scanned per second, 0 = unlimited */
    uint32_t batch;             /* items per iterate call and per pipelined round */
    bool delete_moved;
    bool verbose;               /* one stderr line per batch and per notable key */
    bool progress;              /* a progress bar on stderr (a terminal) */
    int timeout_ms;             /* per network wait */
    double master_wait;         /* seconds to wait for a replication group to elect */
    double retry_for;           /* seconds a failing batch is retried before giving up */
    volatile sig_atomic_t *stop;/* set by SIGINT/SIGTERM: finish the batch and stop */
};

/* How a run ended. */
enum rb_end {
    RB_END_PASS_DONE,           /* the pass finished */
    RB_END_INTERRUPTED,         /* *stop was set: the checkpoint is written */
    RB_END_FAILED,              /* a node stayed unreachable or a file could not be written */
    RB_END_REFUSED,             /* the state belongs to other rings, or is unreadable */
};

struct rb_result {
    enum rb_end end;
    uint64_t pass;
    bool resumed;               /* this run continued an unfinished pass */
    struct rb_counters run;     /* this run's counts */
    struct rb_counters pass_total;
    double elapsed;             /* seconds */
    char why[512];              /* RB_END_FAILED / RB_END_REFUSED: the reason */
};

/*
 * Runs one pass (or the rest of an unfinished one) as doc/operations.md describes, reading
 * and writing the checkpoint and the ledger. Messages go to stderr. Single-threaded.
 */
void rb_run(const struct rb_config *cfg, struct rb_result *res);

#endif
