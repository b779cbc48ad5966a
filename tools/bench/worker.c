/* A load-generating thread: one event_base, its connections, the request pump, the counts. */
#include "tools/bench/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "protocol/text.h"

#define WARNINGS_MAX 10         /* connection warnings printed per phase, all threads */

/* single writer (this thread), relaxed readers (the progress line) */
#define PROG_ADD(x, n) atomic_store_explicit(&(x), \
        atomic_load_explicit(&(x), memory_order_relaxed) + (n), memory_order_relaxed)

uint64_t bench_worker_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct event_base *bench_worker_base(struct bench_worker *w)
{
    return w->base;
}

const struct bench_addr *bench_worker_addr(struct bench_worker *w, unsigned server)
{
    return &w->run->addrs[server];
}

bool bench_worker_stopping(const struct bench_worker *w)
{
    return w->stopping || w->finished;
}

void bench_worker_mark_dirty(struct bench_worker *w, struct bench_conn *c)
{
    w->dirty[w->ndirty++] = c;
}

static void warn_conn(struct bench_worker *w, const struct bench_conn *c, const char *msg)
{
    const struct ring_node *s = &w->run->o->servers[c->server];
    int k = atomic_fetch_add(&w->run->warnings, 1);

    if (k < WARNINGS_MAX) {
        fprintf(stderr, "mcstore-bench: %s:%u: %s\n", s->host, (unsigned)s->port, msg);
    } else if (k == WARNINGS_MAX) {
        fprintf(stderr, "mcstore-bench: (further connection warnings not shown)\n");
    }
}

static void finish(struct bench_worker *w)
{
    if (w->finished) {
        return;
    }
    w->finished = true;
    w->end_ns = bench_worker_now();
    event_base_loopbreak(w->base);
}

/* Every request still in flight ends unanswered (drain timeout, or giving up). */
static void abandon_pending(struct bench_worker *w)
{
    for (unsigned i = 0; i < w->nconns; i++) {
        struct bench_conn *c = &w->conns[i];
        while (c->q_len > 0) {
            struct bench_pending done = *bench_conn_pending(c, 0);
            c->q_head = (c->q_head + 1) % c->depth;
            c->q_len--;
            bench_worker_on_lost(w, &done, true);
        }
    }
}

void bench_worker_on_reply(struct bench_worker *w, const struct bench_pending *pe,
                           const struct client_reply *r, uint64_t now_ns)
{
    uint64_t lat = now_ns > pe->sent_ns ? now_ns - pe->sent_ns : 0;
    bool is_get = pe->op.op == CLIENT_GET;
    bool ok;

    w->outstanding--;
    hist_record(&w->lat, lat);
    w->cnt.by_outcome[r->outcome]++;
    if (is_get) {
        w->cnt.gets++;
        hist_record(&w->lat_get, lat);
        PROG_ADD(w->p_gets, 1);
        ok = r->outcome == CLIENT_HIT || r->outcome == CLIENT_MISS;
        if (r->outcome == CLIENT_HIT) {
            w->cnt.hits++;
        } else if (r->outcome == CLIENT_MISS) {
            w->cnt.misses++;
        }
    } else {
        w->cnt.sets++;
        hist_record(&w->lat_set, lat);
        PROG_ADD(w->p_sets, 1);
        ok = r->outcome == CLIENT_STORED;
    }
    PROG_ADD(w->p_ops, 1);
    if (!gen_complete(&w->gen, &pe->op, (int)r->outcome, now_ns)) {
        w->cnt.retries++;           /* sent again (append <-> add): not an error */
        return;
    }
    if (w->gen.actions_done != atomic_load_explicit(&w->p_actions, memory_order_relaxed)) {
        atomic_store_explicit(&w->p_actions, w->gen.actions_done, memory_order_relaxed);
    }
    if (!ok) {
        w->cnt.errors++;
        PROG_ADD(w->p_errors, 1);
        if (r->outcome == CLIENT_NOT_STORED || r->outcome == CLIENT_EXISTS
            || r->outcome == CLIENT_NOT_FOUND) {
            w->cnt.unexpected++;
        }
    }
}

void bench_worker_on_lost(struct bench_worker *w, const struct bench_pending *pe, bool timeout)
{
    w->outstanding--;
    w->cnt.errors++;
    if (timeout) {
        w->cnt.timeouts++;
    } else {
        w->cnt.lost++;
    }
    PROG_ADD(w->p_errors, 1);
    gen_complete(&w->gen, &pe->op, GEN_LOST, bench_worker_now());
    atomic_store_explicit(&w->p_actions, w->gen.actions_done, memory_order_relaxed);
}

void bench_worker_bad_reply(struct bench_worker *w)
{
    w->cnt.bad_replies++;
}

void bench_worker_conn_down(struct bench_worker *w, struct bench_conn *c, const char *why,
                            unsigned lost)
{
    char msg[256];

    if (!w->finished) {
        snprintf(msg, sizeof(msg), "%s (%u requests in flight lost)", why, lost);
        warn_conn(w, c, msg);
    }
}

void bench_worker_conn_up(struct bench_worker *w, struct bench_conn *c)
{
    (void)c;
    w->cnt.reconnects++;
}

void bench_worker_give_up(struct bench_worker *w, struct bench_conn *c, const char *why)
{
    char msg[256];

    snprintf(msg, sizeof(msg), "cannot reconnect: %s; this thread stops", why);
    warn_conn(w, c, msg);
    w->error = 1;
    abandon_pending(w);
    finish(w);
}

static unsigned route(const struct bench_worker *w, const struct bench_op *op)
{
    const struct ring *ring = w->run->ring;
    return ring ? (unsigned)ring_node_for_key(ring, op->key, op->nkey) : 0;
}

/* A connection to a server with room for one more request, or NULL. */
static struct bench_conn *pick(struct bench_worker *w, unsigned server)
{
    unsigned per = w->run->o->connections;
    struct bench_conn *base = &w->conns[(size_t)server * per];

    for (unsigned i = 0; i < per; i++) {
        unsigned idx = (w->rr[server] + i) % per;
        if (bench_conn_space(&base[idx]) > 0) {
            w->rr[server] = idx;    /* keep filling it: that is what a pipeline is */
            return &base[idx];
        }
    }
    return NULL;
}

static void send_op(struct bench_worker *w, struct bench_conn *c, const struct bench_op *op,
                    uint64_t now_ns)
{
    const char *value = w->run->value;
    size_t vlen = op->vlen;

    if (op->op != CLIENT_GET && op->value_is_id) {
        vlen = proto_u64_to_dec(w->idbuf, op->action_id);
        w->idbuf[vlen++] = ' ';
        value = w->idbuf;
    }
    if (bench_conn_send(c, op, value, vlen, now_ns)) {
        w->outstanding++;
        w->sent++;
    } else {
        w->cnt.errors++;            /* never sent: out of memory */
        PROG_ADD(w->p_errors, 1);
        gen_complete(&w->gen, op, GEN_LOST, now_ns);
    }
}

static struct timeval seconds_tv(double s)
{
    struct timeval tv = {(time_t)s, (suseconds_t)((s - (double)(time_t)s) * 1e6)};
    return tv;
}

/* Whether --rate lets one more request go now; if not, a timer wakes the pump later. */
static bool rate_allows(struct bench_worker *w, uint64_t now_ns)
{
    double elapsed = (double)(now_ns - w->start_ns) * 1e-9;
    uint64_t allowed = (uint64_t)(elapsed * w->rate) + 1;

    if (w->sent < allowed) {
        return true;
    }
    if (!w->rate_armed) {
        double wait = (double)w->sent / w->rate - elapsed;
        struct timeval tv = seconds_tv(wait > 0.0 ? wait : 0.0);
        w->rate_armed = true;
        evtimer_add(w->ev_rate, &tv);
    }
    return false;
}

static void check_finished(struct bench_worker *w)
{
    if (w->finished || w->held_valid || w->outstanding > 0) {
        return;
    }
    if (!w->stopping && !gen_exhausted(&w->gen)) {
        return;
    }
    if (gen_busy(&w->gen)) {
        return;
    }
    finish(w);
}

void bench_worker_pump(struct bench_worker *w)
{
    if (w->in_pump || w->finished) {
        return;
    }
    w->in_pump = true;
    uint64_t now = bench_worker_now();
    for (;;) {
        if (!w->held_valid) {
            if (w->rate > 0.0 && !w->stopping && !rate_allows(w, now)) {
                break;
            }
            if (!gen_next(&w->gen, &w->held, now, !w->stopping)) {
                break;
            }
            w->held_valid = true;
            w->held_server = route(w, &w->held);
        }
        struct bench_conn *c = pick(w, w->held_server);
        if (c == NULL) {
            break;
        }
        send_op(w, c, &w->held, now);
        w->held_valid = false;
    }
    for (unsigned i = 0; i < w->ndirty; i++) {
        bench_conn_flush(w->dirty[i]);
    }
    w->ndirty = 0;
    w->in_pump = false;
    check_finished(w);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    struct bench_worker *w = arg;
    (void)fd;
    (void)what;

    w->stopping = true;
    if (w->held_valid && w->held.action == GEN_NO_ACTION && w->held.tries == 0) {
        w->held_valid = false;      /* new work never sent (no room): not needed any more */
    }
    struct timeval tv = seconds_tv(w->run->o->drain_timeout);
    evtimer_add(w->ev_drain, &tv);
    bench_worker_pump(w);
}

static void on_drain(evutil_socket_t fd, short what, void *arg)
{
    struct bench_worker *w = arg;
    (void)fd;
    (void)what;

    if (w->outstanding > 0) {
        char msg[128];
        snprintf(msg, sizeof(msg), "%llu requests still unanswered after the drain timeout",
                 (unsigned long long)w->outstanding);
        warn_conn(w, &w->conns[0], msg);
    }
    abandon_pending(w);
    w->held_valid = false;          /* generated, never sent: not a request */
    finish(w);
}

static void on_rate(evutil_socket_t fd, short what, void *arg)
{
    struct bench_worker *w = arg;
    (void)fd;
    (void)what;

    w->rate_armed = false;
    bench_worker_pump(w);
}

static int setup(struct bench_worker *w)
{
    struct bench_run *run = w->run;
    const struct bench_opts *o = run->o;
    char err[160];

    hist_init(&w->lat);
    hist_init(&w->lat_get);
    hist_init(&w->lat_set);
    hist_init(&w->actions);

    struct event_config *cfg = event_config_new();
    if (cfg == NULL) {
        return -1;
    }
    event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);     /* used by this thread alone */
    w->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (w->base == NULL) {
        fprintf(stderr, "mcstore-bench: cannot create an event_base\n");
        return -1;
    }
    w->ev_stop = evtimer_new(w->base, on_stop, w);
    w->ev_drain = evtimer_new(w->base, on_drain, w);
    w->ev_rate = evtimer_new(w->base, on_rate, w);
    w->nconns = (unsigned)o->nservers * o->connections;
    w->conns = calloc(w->nconns, sizeof(*w->conns));
    w->rr = calloc(o->nservers, sizeof(*w->rr));
    w->dirty = calloc(w->nconns, sizeof(*w->dirty));
    if (w->ev_stop == NULL || w->ev_drain == NULL || w->ev_rate == NULL || w->conns == NULL
        || w->rr == NULL || w->dirty == NULL) {
        fprintf(stderr, "mcstore-bench: out of memory\n");
        return -1;
    }
    for (unsigned i = 0; i < w->nconns; i++) {
        w->conns[i].fd = -1;
    }
    for (unsigned i = 0; i < w->nconns; i++) {
        unsigned server = i / o->connections;
        if (bench_conn_open(&w->conns[i], w, server, run->depth, err, sizeof(err)) != 0) {
            if (!atomic_exchange(&run->abort, true)) {      /* the first failure speaks */
                fprintf(stderr, "mcstore-bench: cannot connect to %s:%u: %s\n",
                        o->servers[server].host, (unsigned)o->servers[server].port, err);
            }
            return -1;
        }
    }
    if (!gen_init(&w->gen, run->mode, o, &run->zipf, &run->plan, &w->actions, w->id,
                  o->threads)) {
        fprintf(stderr, "mcstore-bench: out of memory\n");
        return -1;
    }
    if (o->rate > 0.0 && (run->mode == GEN_RUN || run->mode == GEN_FANOUT)) {
        w->rate = o->rate / o->threads;
    }
    return 0;
}

void *bench_worker_main(void *arg)
{
    struct bench_worker *w = arg;
    struct bench_run *run = w->run;

    if (setup(w) != 0) {
        w->error = 1;
        atomic_store(&run->abort, true);
    }
    pthread_barrier_wait(&run->start);
    if (!atomic_load(&run->abort)) {
        w->start_ns = bench_worker_now();
        if (run->timed && run->o->requests == 0) {
            struct timeval tv = seconds_tv(run->o->duration);
            evtimer_add(w->ev_stop, &tv);
        }
        bench_worker_pump(w);
        if (!w->finished) {
            event_base_dispatch(w->base);
        }
        if (!w->finished) {
            finish(w);
        }
    }
    pthread_mutex_lock(&run->done_lock);
    run->done++;
    pthread_cond_broadcast(&run->done_cond);
    pthread_mutex_unlock(&run->done_lock);
    return NULL;
}

void bench_worker_free(struct bench_worker *w)
{
    if (w->conns != NULL) {
        for (unsigned i = 0; i < w->nconns; i++) {
            bench_conn_free(&w->conns[i]);
        }
    }
    free(w->conns);
    free(w->rr);
    free(w->dirty);
    if (w->ev_stop != NULL) {
        event_free(w->ev_stop);
    }
    if (w->ev_drain != NULL) {
        event_free(w->ev_drain);
    }
    if (w->ev_rate != NULL) {
        event_free(w->ev_rate);
    }
    if (w->base != NULL) {
        event_base_free(w->base);
    }
    gen_destroy(&w->gen);
}
