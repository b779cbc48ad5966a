/* What to send next: the request stream of one thread (timed run, prefill, fan-out). */
#ifndef MCSTORE_TOOLS_BENCH_GEN_H
#define MCSTORE_TOOLS_BENCH_GEN_H

#include <stdbool.h>
#include <stdint.h>

#include "protocol/request.h"
#include "tools/bench/client_text.h"
#include "tools/bench/fanout.h"
#include "tools/bench/hist.h"
#include "tools/bench/options.h"
#include "tools/bench/rng.h"
#include "tools/bench/zipf.h"

#define GEN_NO_ACTION UINT32_MAX

/* One request, with everything needed to send it again (a retry) and to check its reply. */
struct bench_op {
    enum client_op op;
    uint8_t tries;              /* fan-out append: append <-> add alternations so far */
    bool value_is_id;           /* the value is "<action> " (fan-out append), not filler */
    uint16_t nkey;
    uint32_t vlen;              /* storage: value bytes (filler) */
    uint32_t action;            /* fan-out: the action's slot, or GEN_NO_ACTION */
    uint64_t action_id;         /* fan-out: the action's number, for the key or value */
    char key[PROTO_KEY_MAX + 1];
};

enum gen_mode {
    GEN_RUN,                    /* the timed run: sets and gets by --ratio over the key space */
    GEN_PREFILL,                /* set each key of this thread's share of the key space once */
    GEN_FANOUT,                 /* actions of random users, one after another */
    GEN_FANOUT_ONE,             /* this thread's share of one action of the top user */
    GEN_FANOUT_PREFILL,         /* fan-out append: set each inbox of this thread's share empty */
};

/* A fan-out action in flight. */
struct gen_action {
    uint64_t start_ns;          /* when its first write was handed out */
    uint32_t remaining;         /* writes not yet answered (incl. not yet handed out) */
    uint32_t errors;            /* writes that ended in an error */
    uint32_t next_free;         /* free-list link while unused */
};

/* The outcome value gen_complete() takes for a request that got no reply at all. */
#define GEN_LOST (-1)

struct bench_gen {
    enum gen_mode mode;
    const struct bench_opts *o;
    const struct zipf *zipf;            /* GEN_RUN with --key-pattern zipf */
    const struct fanout_plan *plan;     /* fan-out modes */
    struct rng rng;
    unsigned tid, nthreads;

    uint64_t limit;             /* GEN_RUN: requests, GEN_FANOUT: actions this thread may
                                   start (UINT64_MAX: no limit) */
    uint64_t started;           /* requests / actions started */
    uint64_t seq, seq_end;      /* prefill and sequential cursors; fan-out-one follower range */

    /* fan-out */
    struct gen_action *slots;
    uint32_t nslots, free_slot;
    uint32_t cur;               /* slot of the action being handed out, or GEN_NO_ACTION */
    uint64_t cur_user, cur_id;
    uint32_t cur_next, cur_count;
    uint64_t action_seq;        /* actions started by this thread */
    struct bench_op *retry;     /* requests to send again (append <-> add), a stack */
    uint32_t nretry, retry_cap;

    /* fan-out results, read by the report */
    struct hist *action_hist;   /* completion time of each action, ns */
    uint64_t actions_done, action_errors, action_writes;
    uint64_t one_start_ns, one_end_ns;      /* GEN_FANOUT_ONE: first write out, last reply */
};

/*
 * Prepares the stream of thread tid (of nthreads) for a mode. zipf and plan may be NULL
 * when the mode does not use them; action_hist is where fan-out completions go.
 * Returns false when out of memory.
 */
bool gen_init(struct bench_gen *g, enum gen_mode mode, const struct bench_opts *o,
              const struct zipf *zipf, const struct fanout_plan *plan, struct hist *action_hist,
              unsigned tid, unsigned nthreads);

void gen_destroy(struct bench_gen *g);

/*
 * The next request into *op. may_start: whether new work (a new request of the timed run, a
 * new fan-out action) may begin; when false only the rest of actions under way and retries
 * are handed out. Returns false when there is nothing to send, now or ever (gen_exhausted
 * tells which).
 */
bool gen_next(struct bench_gen *g, struct bench_op *op, uint64_t now_ns, bool may_start);

/* Whether the stream has ended by itself (prefill done, --requests reached, the top user's
 * action handed out): true once gen_next can never again return a new request except
 * retries. */
bool gen_exhausted(const struct bench_gen *g);

/*
 * Tells the stream how a request it handed out ended: a client_outcome, or GEN_LOST when no
 * reply came (connection failure, timeout). Returns true when the request is finished, false
 * when it will be sent again (fan-out append: NOT_STORED on append retries as add, and the
 * other way round).
 */
bool gen_complete(struct bench_gen *g, const struct bench_op *op, int outcome, uint64_t now_ns);

/* Whether any fan-out action is still under way. */
bool gen_busy(const struct bench_gen *g);

/* Formats "<prefix><n>" into key (PROTO_KEY_MAX + 1 bytes), returning its length. */
uint16_t gen_key_number(char *key, const char *prefix, uint64_t n);

#endif
