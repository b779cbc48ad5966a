/* mcstore-rebalance: the checkpoint (state file) and the counters it keeps. */
#ifndef MCSTORE_TOOLS_REBALANCE_STATE_H
#define MCSTORE_TOOLS_REBALANCE_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/text.h"

/*
 * The functions below keep no state of their own; a struct rb_state belongs to one thread.
 */

/* The outcomes the summary reports; a pass adds up those of its runs. */
struct rb_counters {
    uint64_t scanned;           /* items the sources' walks returned */
    uint64_t moving;            /* ... whose owner changes (the keys this rebalance moves) */
    uint64_t moved;             /* new copies written to their new owner */
    uint64_t already;           /* the new owner already held exactly this value */
    uint64_t updated;           /* catch-up: a changed source carried to the new owner */
    uint64_t unchanged;         /* catch-up: copied before and the source did not change */
    uint64_t newer;             /* skipped: the new owner holds a client's newer write */
    uint64_t deleted;           /* --delete-moved: removed from the old owner */
    uint64_t carried_deletes;   /* removed from the new owner because the source deleted it */
    uint64_t stray;             /* found on a node the old ring does not map it to: left */
    uint64_t errors;
};

/* Calls fn(arg, name, field) for every counter, in the summary's order. Names are the ones
 * the state file and the summary use ("scanned", "already there", ...). */
void rb_counters_each(struct rb_counters *c, void (*fn)(void *arg, const char *name,
                                                        uint64_t *field), void *arg);

/* Adds every counter of b to a. */
void rb_counters_add(struct rb_counters *a, const struct rb_counters *b);

#define RB_FINGERPRINT_LEN 16           /* hex digits */

/* Where each source stands in a pass. */
enum rb_phase {
    RB_SRC_WALK = 0,            /* walking its keys from cursor on */
    RB_SRC_SWEEP = 1,           /* walked; checking copied keys it no longer has */
    RB_SRC_DONE = 2,
};

struct rb_source_state {
    int phase;                              /* enum rb_phase */
    char cursor[PROTO_ITERATE_B64_MAX + 1]; /* the next iterate cursor ("0" = from the start) */
};

struct rb_state {
    char fingerprint[RB_FINGERPRINT_LEN + 1];
    uint64_t pass;              /* 1 for the first pass */
    bool pass_done;             /* every source of this pass is RB_SRC_DONE */
    uint64_t runs;              /* runs of the tool that worked on this pass */
    size_t nsources;
    struct rb_source_state *sources;
    struct rb_counters total;   /* this pass so far, over its runs */
};

/* The fingerprint of the two rings' descriptions (FNV-1a 64 in hex) into out[17]. */
void rb_fingerprint(const char *old_desc, const char *new_desc, char *out);

/* A fresh state for nsources sources: pass 1, nothing done. Returns 0 or -1 (no memory). */
int rb_state_init(struct rb_state *st, const char *fingerprint, size_t nsources);

/* Frees what rb_state_init or rb_state_load allocated. */
void rb_state_free(struct rb_state *st);

/* Moves to the next pass: pass + 1, every source back to RB_SRC_WALK from "0", counters and
 * runs zeroed. */
void rb_state_next_pass(struct rb_state *st);

/*
 * Reads path. Returns 1 when it does not exist (st untouched), 0 when loaded, -1 with a
 * message in err when it cannot be read or does not parse.
 */
int rb_state_load(const char *path, struct rb_state *st, char *err, size_t errlen);

/*
 * Writes st to path atomically: path.tmp is written, fsync'd (with sync) and renamed over
 * path, then the directory is fsync'd (with sync). A crash leaves either the old or the new
 * file. Returns 0 or -1 with a message in err.
 */
int rb_state_save(const char *path, const struct rb_state *st, bool sync, char *err,
                  size_t errlen);

#endif
