/* The request streams: timed run (ratio, key pattern), prefill, and fan-out actions. */
#include "tools/bench/gen.h"

#include <stdlib.h>
#include <string.h>

#include "protocol/text.h"

#define RETRIES_MAX 8           /* append/add alternations before a fan-out write gives up */

/* Stream numbers for rng_seed, so each mode and thread draws its own sequence. */
enum { STREAM_RUN = 1, STREAM_FANOUT = 2 };

static uint64_t share_start(uint64_t total, unsigned tid, unsigned n)
{
    return (uint64_t)(((unsigned __int128)total * tid) / n);
}

static size_t append_str(char *key, size_t at, const char *s)
{
    size_t n = strlen(s);
    memcpy(key + at, s, n);
    return at + n;
}

uint16_t gen_key_number(char *key, const char *prefix, uint64_t n)
{
    size_t at = append_str(key, 0, prefix);
    at += proto_u64_to_dec(key + at, n);
    key[at] = '\0';
    return (uint16_t)at;
}

/* "<prefix>inbox:<user>" or, with an action, "<prefix>inbox:<user>:<action>" */
static uint16_t inbox_key(char *key, const char *prefix, uint64_t user, bool with_action,
                          uint64_t action)
{
    size_t at = append_str(key, 0, prefix);
    at = append_str(key, at, "inbox:");
    at += proto_u64_to_dec(key + at, user);
    if (with_action) {
        key[at++] = ':';
        at += proto_u64_to_dec(key + at, action);
    }
    key[at] = '\0';
    return (uint16_t)at;
}

static uint32_t value_len(struct bench_gen *g)
{
    const struct bench_opts *o = g->o;
    if (o->value_min == o->value_max) {
        return o->value_min;
    }
    return o->value_min + (uint32_t)rng_below(&g->rng, (uint64_t)(o->value_max - o->value_min) + 1);
}

bool gen_init(struct bench_gen *g, enum gen_mode mode, const struct bench_opts *o,
              const struct zipf *zipf, const struct fanout_plan *plan, struct hist *action_hist,
              unsigned tid, unsigned nthreads)
{
    memset(g, 0, sizeof(*g));
    g->mode = mode;
    g->o = o;
    g->zipf = zipf;
    g->plan = plan;
    g->tid = tid;
    g->nthreads = nthreads;
    g->action_hist = action_hist;
    g->cur = GEN_NO_ACTION;
    g->free_slot = GEN_NO_ACTION;
    g->limit = UINT64_MAX;
    rng_seed(&g->rng, o->seed, (uint64_t)tid * 16 + (mode == GEN_RUN ? STREAM_RUN : STREAM_FANOUT));

    switch (mode) {
    case GEN_RUN:
        if (o->requests > 0) {
            g->limit = share_start(o->requests, tid + 1, nthreads)
                       - share_start(o->requests, tid, nthreads);
        }
        g->seq = share_start(o->keys, tid, nthreads);       /* sequential: own starting point */
        break;
    case GEN_PREFILL:
        g->seq = share_start(o->keys, tid, nthreads);
        g->seq_end = share_start(o->keys, tid + 1, nthreads);
        break;
    case GEN_FANOUT_PREFILL:
        g->seq = share_start(plan->users, tid, nthreads);
        g->seq_end = share_start(plan->users, tid + 1, nthreads);
        break;
    case GEN_FANOUT:
        if (o->requests > 0) {
            g->limit = share_start(o->requests, tid + 1, nthreads)
                       - share_start(o->requests, tid, nthreads);
        }
        break;
    case GEN_FANOUT_ONE:
        g->cur_user = fanout_top_user(plan);
        g->cur_count = fanout_followers(plan, g->cur_user);
        g->seq = share_start(g->cur_count, tid, nthreads);
        g->seq_end = share_start(g->cur_count, tid + 1, nthreads);
        g->cur_id = 0;
        g->slots = calloc(1, sizeof(*g->slots));
        if (g->slots == NULL) {
            return false;
        }
        g->nslots = 1;
        g->slots[0].remaining = (uint32_t)(g->seq_end - g->seq);
        break;
    }
    return true;
}

void gen_destroy(struct bench_gen *g)
{
    free(g->slots);
    free(g->retry);
    g->slots = NULL;
    g->retry = NULL;
}

static uint64_t run_key_index(struct bench_gen *g)
{
    const struct bench_opts *o = g->o;

    switch (o->pattern) {
    case BENCH_ZIPF:
        return zipf_next(g->zipf, &g->rng) - 1;         /* rank 1 is the hottest key, 0 */
    case BENCH_SEQUENTIAL: {
        uint64_t k = g->seq;
        g->seq = g->seq + 1 == o->keys ? 0 : g->seq + 1;
        return k;
    }
    default:
        return rng_below(&g->rng, o->keys);
    }
}

static void fill_run(struct bench_gen *g, struct bench_op *op)
{
    const struct bench_opts *o = g->o;
    bool set;

    if (o->ratio_get == 0) {
        set = true;
    } else if (o->ratio_set == 0) {
        set = false;
    } else {
        set = rng_below(&g->rng, (uint64_t)o->ratio_set + o->ratio_get) < o->ratio_set;
    }
    op->op = set ? CLIENT_SET : CLIENT_GET;
    op->vlen = set ? value_len(g) : 0;
    op->nkey = gen_key_number(op->key, o->key_prefix, run_key_index(g));
}

static uint32_t slot_alloc(struct bench_gen *g)
{
    if (g->free_slot == GEN_NO_ACTION) {
        uint32_t n = g->nslots ? g->nslots * 2 : 16;
        struct gen_action *s = realloc(g->slots, (size_t)n * sizeof(*s));
        if (s == NULL) {
            return GEN_NO_ACTION;
        }
        g->slots = s;
        for (uint32_t i = n; i > g->nslots; i--) {
            s[i - 1].next_free = g->free_slot;
            g->free_slot = i - 1;
        }
        g->nslots = n;
    }
    uint32_t slot = g->free_slot;
    g->free_slot = g->slots[slot].next_free;
    return slot;
}

/* A fan-out write of the current action to one follower. */
static void fill_fanout_write(struct bench_gen *g, struct bench_op *op, uint64_t follower)
{
    const struct bench_opts *o = g->o;

    op->action = g->cur;
    op->action_id = g->cur_id;
    if (o->fanout_op == BENCH_FANOUT_APPEND) {
        op->op = CLIENT_APPEND;
        op->value_is_id = true;
        op->nkey = inbox_key(op->key, o->key_prefix, follower, false, 0);
    } else {
        op->op = CLIENT_SET;
        op->vlen = value_len(g);
        op->nkey = inbox_key(op->key, o->key_prefix, follower, true, g->cur_id);
    }
}

static bool next_fanout(struct bench_gen *g, struct bench_op *op, uint64_t now_ns,
                        bool may_start)
{
    if (g->cur == GEN_NO_ACTION) {
        if (!may_start || g->started >= g->limit) {
            return false;
        }
        uint32_t slot = slot_alloc(g);
        if (slot == GEN_NO_ACTION) {
            return false;
        }
        g->cur = slot;
        g->cur_user = fanout_next_actor(g->plan, &g->rng);
        g->cur_count = fanout_followers(g->plan, g->cur_user);
        g->cur_next = 0;
        g->cur_id = g->action_seq++ * g->nthreads + g->tid;
        g->started++;
        g->slots[slot].start_ns = now_ns;
        g->slots[slot].remaining = g->cur_count;
        g->slots[slot].errors = 0;
    }
    fill_fanout_write(g, op, fanout_follower(g->plan, g->cur_user, g->cur_next++));
    if (g->cur_next == g->cur_count) {
        g->cur = GEN_NO_ACTION;         /* all handed out; the slot lives until all answered */
    }
    return true;
}

bool gen_next(struct bench_gen *g, struct bench_op *op, uint64_t now_ns, bool may_start)
{
    if (g->nretry > 0) {
        *op = g->retry[--g->nretry];
        return true;
    }
    op->tries = 0;
    op->value_is_id = false;
    op->vlen = 0;
    op->action = GEN_NO_ACTION;
    op->action_id = 0;

    switch (g->mode) {
    case GEN_RUN:
        if (!may_start || g->started >= g->limit) {
            return false;
        }
        g->started++;
        fill_run(g, op);
        return true;
    case GEN_PREFILL:
        if (!may_start || g->seq >= g->seq_end) {
            return false;
        }
        op->op = CLIENT_SET;
        op->vlen = value_len(g);
        op->nkey = gen_key_number(op->key, g->o->key_prefix, g->seq++);
        return true;
    case GEN_FANOUT_PREFILL:
        if (!may_start || g->seq >= g->seq_end) {
            return false;
        }
        op->op = CLIENT_SET;
        op->nkey = inbox_key(op->key, g->o->key_prefix, g->seq++, false, 0);
        return true;
    case GEN_FANOUT:
        return next_fanout(g, op, now_ns, may_start);
    case GEN_FANOUT_ONE:
        /* one action that must finish: handed out whatever may_start says */
        if (g->seq >= g->seq_end) {
            return false;
        }
        if (g->started == 0) {
            g->started = 1;
            g->one_start_ns = now_ns;
            g->slots[0].start_ns = now_ns;
        }
        g->cur = 0;
        fill_fanout_write(g, op, fanout_follower(g->plan, g->cur_user, (uint32_t)g->seq++));
        g->cur = GEN_NO_ACTION;
        return true;
    }
    return false;
}

bool gen_exhausted(const struct bench_gen *g)
{
    switch (g->mode) {
    case GEN_RUN:
        return g->started >= g->limit;
    case GEN_FANOUT:
        return g->started >= g->limit && g->cur == GEN_NO_ACTION;
    default:
        return g->seq >= g->seq_end;
    }
}

static bool push_retry(struct bench_gen *g, const struct bench_op *op)
{
    if (g->nretry == g->retry_cap) {
        uint32_t n = g->retry_cap ? g->retry_cap * 2 : 64;
        struct bench_op *r = realloc(g->retry, (size_t)n * sizeof(*r));
        if (r == NULL) {
            return false;
        }
        g->retry = r;
        g->retry_cap = n;
    }
    g->retry[g->nretry++] = *op;
    return true;
}

bool gen_complete(struct bench_gen *g, const struct bench_op *op, int outcome, uint64_t now_ns)
{
    if (op->action == GEN_NO_ACTION) {
        return true;
    }
    /* append to a missing inbox: create it with add; add losing a race: append again */
    if (outcome == CLIENT_NOT_STORED && op->tries < RETRIES_MAX
        && (op->op == CLIENT_APPEND || op->op == CLIENT_ADD)) {
        struct bench_op again = *op;
        again.op = op->op == CLIENT_APPEND ? CLIENT_ADD : CLIENT_APPEND;
        again.tries++;
        if (push_retry(g, &again)) {
            return false;
        }
    }
    struct gen_action *a = &g->slots[op->action];
    g->action_writes++;
    if (outcome != CLIENT_STORED) {
        a->errors++;
    }
    if (--a->remaining == 0) {
        hist_record(g->action_hist, now_ns - a->start_ns);
        g->actions_done++;
        if (a->errors > 0) {
            g->action_errors++;
        }
        if (g->mode == GEN_FANOUT_ONE) {
            g->one_end_ns = now_ns;
        } else {
            a->next_free = g->free_slot;
            g->free_slot = op->action;
        }
    }
    return true;
}

bool gen_busy(const struct bench_gen *g)
{
    if (g->nretry > 0 || g->cur != GEN_NO_ACTION) {
        return true;
    }
    if (g->mode == GEN_FANOUT_ONE) {
        return g->slots[0].remaining > 0;
    }
    return false;       /* slots still waiting for replies have requests outstanding */
}
