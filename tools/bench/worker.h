/* A load-generating thread: its event_base, its connections, what it sends and counts. */
#ifndef MCSTORE_TOOLS_BENCH_WORKER_H
#define MCSTORE_TOOLS_BENCH_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "tools/bench/client_text.h"
#include "tools/bench/conn.h"
#include "tools/bench/fanout.h"
#include "tools/bench/gen.h"
#include "tools/bench/hist.h"
#include "tools/bench/net.h"
#include "tools/bench/options.h"
#include "tools/bench/zipf.h"
#include "tools/ring/ring.h"

struct event_base;

/* What every thread of one phase shares; read-only while the threads run, but for the
 * atomics and the done count. */
struct bench_run {
    const struct bench_opts *o;
    struct bench_addr addrs[BENCH_SERVERS_MAX];
    struct ring *ring;              /* NULL with one server */
    struct zipf zipf;
    struct fanout_plan plan;
    const char *value;              /* filler bytes, o->value_max long */

    /* the phase */
    enum gen_mode mode;
    unsigned depth;                 /* pipeline depth of each connection */
    bool timed;                     /* stop after o->duration seconds */

    pthread_barrier_t start;        /* workers connected: all start together (and main) */
    atomic_bool abort;              /* a worker could not set up: everyone leaves */
    atomic_int warnings;            /* connection warnings printed so far (capped) */
    pthread_mutex_t done_lock;
    pthread_cond_t done_cond;       /* on CLOCK_MONOTONIC */
    unsigned done;                  /* workers finished (under done_lock) */
};

/* Results of one thread; the report adds them up. */
struct bench_counts {
    uint64_t gets, sets;            /* replies to gets, to storage commands (set/add/append) */
    uint64_t hits, misses;
    uint64_t errors;                /* requests that failed, however */
    uint64_t by_outcome[CLIENT_OUTCOMES];   /* every reply by what it said */
    uint64_t unexpected;            /* well-formed replies that are errors for the request
                                       (NOT_STORED to a set, EXISTS, NOT_FOUND) */
    uint64_t lost;                  /* requests in flight on a connection that failed */
    uint64_t timeouts;              /* requests unanswered when the drain timeout ended */
    uint64_t bad_replies;           /* replies that did not parse (connection dropped) */
    uint64_t retries;               /* fan-out NOT_STORED answered by append <-> add */
    uint64_t reconnects;
};

struct bench_worker {
    struct bench_run *run;
    unsigned id;
    pthread_t thread;
    struct event_base *base;
    struct bench_conn *conns;       /* nservers * connections, grouped by server */
    unsigned nconns;
    unsigned *rr;                   /* per server: where the next search for room starts */
    struct bench_conn **dirty;      /* connections with output to flush */
    unsigned ndirty;

    struct bench_gen gen;
    struct bench_op held;           /* generated but no connection had room yet */
    bool held_valid;
    unsigned held_server;
    uint64_t outstanding;           /* requests in flight on all connections */
    bool stopping;                  /* the duration is over: start nothing new */
    bool in_pump;
    bool finished;                  /* the loop is over (or was never needed) */
    int error;                      /* set-up or fatal connection failure */

    uint64_t start_ns, end_ns;
    double rate;                    /* this thread's share of --rate, 0 = no limit */
    uint64_t sent;
    struct event *ev_stop, *ev_drain, *ev_rate;
    bool rate_armed;
    char idbuf[32];                 /* fan-out append value: "<action> " */

    struct bench_counts cnt;
    struct hist lat, lat_get, lat_set;      /* per request latency, ns */
    struct hist actions;                    /* fan-out action completion, ns */

    /* for the progress line: written by this thread, read by main (relaxed) */
    _Atomic uint64_t p_ops, p_sets, p_gets, p_errors, p_actions;
};

/* Thread body: connects, waits at run->start, runs the phase, signals done. arg: worker. */
void *bench_worker_main(void *arg);

/* Frees what a worker holds after its thread was joined. */
void bench_worker_free(struct bench_worker *w);

/* Monotonic time in ns. */
uint64_t bench_worker_now(void);

/* --- called by connections (conn.c) on the worker's own thread --- */
struct event_base *bench_worker_base(struct bench_worker *w);
const struct bench_addr *bench_worker_addr(struct bench_worker *w, unsigned server);
void bench_worker_mark_dirty(struct bench_worker *w, struct bench_conn *c);
void bench_worker_on_reply(struct bench_worker *w, const struct bench_pending *pe,
                           const struct client_reply *r, uint64_t now_ns);
void bench_worker_on_lost(struct bench_worker *w, const struct bench_pending *pe,
                          bool timeout);
void bench_worker_bad_reply(struct bench_worker *w);
void bench_worker_conn_down(struct bench_worker *w, struct bench_conn *c, const char *why,
                            unsigned lost);
void bench_worker_conn_up(struct bench_worker *w, struct bench_conn *c);
void bench_worker_give_up(struct bench_worker *w, struct bench_conn *c, const char *why);
bool bench_worker_stopping(const struct bench_worker *w);
/* Sends what the stream and the connections allow, flushes, and ends the loop when done. */
void bench_worker_pump(struct bench_worker *w);

#endif
