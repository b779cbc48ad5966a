/* mcstore-bench: set-up, the prefill and timed phases, and the report. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/bench/options.h"
#include "tools/bench/report.h"
#include "tools/bench/worker.h"
#include "tools/ring/ring.h"

#define PREFILL_DEPTH_MIN 32        /* prefill pipelines at least this deep */

/* libmemcached's weighted ketama over the --server list, or NULL with a message. */
static struct ring *bench_ring(const struct bench_opts *o)
{
    const struct ring_config cfg = {RING_LIBMEMCACHED_KETAMA_WEIGHTED, RING_HASH_DEFAULT, ""};
    char err[256];
    struct ring *ring;

    if (ring_validate(&cfg, o->servers, o->nservers, err, sizeof(err)) != 0) {
        fprintf(stderr, "mcstore-bench: %s\n", err);
        return NULL;
    }
    ring = ring_create(&cfg, o->servers, o->nservers);
    if (ring == NULL) {
        fprintf(stderr, "mcstore-bench: cannot build the ketama ring (MD5 unavailable?)\n");
    }
    return ring;
}

/* --route: the server of each key read from stdin, one per line. */
static int route_keys(const struct bench_opts *o)
{
    struct ring *ring = bench_ring(o);
    char line[4096];

    if (ring == NULL) {
        return 1;
    }
    while (fgets(line, sizeof(line), stdin) != NULL) {
        size_t n = strcspn(line, "\r\n");
        line[n] = '\0';
        const struct ring_node *s = &o->servers[ring_node_for_key(ring, line, n)];
        printf("%s %s:%u\n", line, s->host, (unsigned)s->port);
    }
    ring_free(ring);
    return 0;
}

static void add_seconds(struct timespec *ts, double s)
{
    long ns = ts->tv_nsec + (long)((s - (double)(long)s) * 1e9);
    ts->tv_sec += (time_t)s + ns / 1000000000L;
    ts->tv_nsec = ns % 1000000000L;
}

/*
 * Runs one phase on o->threads threads and adds up their results into r. Returns 0, or 1
 * when a thread could not set up or had to give up.
 */
static int run_phase(struct bench_run *run, enum gen_mode mode, unsigned depth, bool timed,
                     struct bench_result *r)
{
    const struct bench_opts *o = run->o;
    unsigned n = o->threads;
    struct bench_worker *ws = calloc(n, sizeof(*ws));
    int rc = 0;

    if (ws == NULL) {
        fprintf(stderr, "mcstore-bench: out of memory\n");
        return 1;
    }
    run->mode = mode;
    run->depth = depth;
    run->timed = timed;
    run->done = 0;
    atomic_store(&run->abort, false);
    atomic_store(&run->warnings, 0);
    pthread_barrier_init(&run->start, NULL, n + 1);

    for (unsigned i = 0; i < n; i++) {
        ws[i].run = run;
        ws[i].id = i;
        int err = pthread_create(&ws[i].thread, NULL, bench_worker_main, &ws[i]);
        if (err != 0) {
            /* the barrier counts on every thread: nothing sane to fall back to */
            fprintf(stderr, "mcstore-bench: cannot start thread %u: %s\n", i, strerror(err));
            exit(1);
        }
    }
    pthread_barrier_wait(&run->start);

    /* a progress line each second until every thread is done */
    struct timespec tick;
    struct bench_progress last, now;
    clock_gettime(CLOCK_MONOTONIC, &tick);
    memset(&last, 0, sizeof(last));
    unsigned secs = 0;
    pthread_mutex_lock(&run->done_lock);
    while (run->done < n && !atomic_load(&run->abort)) {
        add_seconds(&tick, 1.0);
        int w = 0;
        while (run->done < n && w != ETIMEDOUT) {
            w = pthread_cond_timedwait(&run->done_cond, &run->done_lock, &tick);
        }
        if (w == ETIMEDOUT && !o->quiet) {
            secs++;
            bench_progress_read(ws, n, &now);
            bench_progress_print(stderr, run, (double)secs, &now, &last, 1.0);
            last = now;
        }
    }
    pthread_mutex_unlock(&run->done_lock);

    for (unsigned i = 0; i < n; i++) {
        pthread_join(ws[i].thread, NULL);
        if (ws[i].error) {
            rc = 1;
        }
    }
    pthread_barrier_destroy(&run->start);
    if (atomic_load(&run->abort)) {
        rc = 1;
    } else {
        bench_result_collect(r, run, ws, n);
    }
    for (unsigned i = 0; i < n; i++) {
        bench_worker_free(&ws[i]);
    }
    free(ws);
    return rc;
}

/* Filler bytes for values: printable, so a value read back with nc is legible. */
static char *make_value(size_t n)
{
    char *v = malloc(n ? n : 1);
    if (v != NULL) {
        for (size_t i = 0; i < n; i++) {
            v[i] = (char)('a' + i % 26);
        }
    }
    return v;
}

static int setup(struct bench_run *run, const struct bench_opts *o)
{
    char err[160];
    const char *why;

    run->o = o;
    for (size_t i = 0; i < o->nservers; i++) {
        if (bench_net_resolve(o->servers[i].host, o->servers[i].port, &run->addrs[i], err,
                              sizeof(err)) != 0) {
            fprintf(stderr, "mcstore-bench: %s: %s\n", o->servers[i].host, err);
            return -1;
        }
    }
    if (o->nservers > 1) {
        run->ring = bench_ring(o);
        if (run->ring == NULL) {
            return -1;
        }
    }
    if (o->pattern == BENCH_ZIPF && !zipf_init(&run->zipf, o->keys, o->zipf_s)) {
        fprintf(stderr, "mcstore-bench: bad Zipf parameters\n");
        return -1;
    }
    if (o->fanout && !fanout_plan_init(&run->plan, o->fanout_users, o->fanout_max_followers,
                                       o->fanout_mean, o->seed, &why)) {
        fprintf(stderr, "mcstore-bench: %s\n", why);
        return -1;
    }
    run->value = make_value(o->value_max);
    if (run->value == NULL) {
        fprintf(stderr, "mcstore-bench: out of memory\n");
        return -1;
    }
    pthread_mutex_init(&run->done_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);    /* the progress ticks are monotonic */
    pthread_cond_init(&run->done_cond, &ca);
    pthread_condattr_destroy(&ca);
    return 0;
}

int main(int argc, char **argv)
{
    static struct bench_opts o;
    static struct bench_run run;
    struct bench_result *prefill = NULL, *result = NULL;
    int rc = 0;

    switch (bench_opts_parse(&o, argc, argv)) {
    case BENCH_OPTS_EXIT_OK:
        return 0;
    case BENCH_OPTS_USAGE:
        return 2;
    case BENCH_OPTS_RUN:
        break;
    }
    if (o.route) {
        return route_keys(&o);
    }
    signal(SIGPIPE, SIG_IGN);
    if (setup(&run, &o) != 0) {
        return 1;
    }
    prefill = calloc(1, sizeof(*prefill));
    result = calloc(1, sizeof(*result));
    if (prefill == NULL || result == NULL) {
        fprintf(stderr, "mcstore-bench: out of memory\n");
        rc = 1;
        goto done;
    }

    unsigned prefill_depth = o.pipeline > PREFILL_DEPTH_MIN ? o.pipeline : PREFILL_DEPTH_MIN;
    if (o.prefill && o.fanout && o.fanout_op == BENCH_FANOUT_SET) {
        fprintf(stderr, "mcstore-bench: --prefill: nothing to prefill with --fanout-op set "
                "(every write is to a new key)\n");
    } else if (o.prefill) {
        enum gen_mode m = o.fanout ? GEN_FANOUT_PREFILL : GEN_PREFILL;
        rc = run_phase(&run, m, prefill_depth, false, prefill);
        if (rc != 0) {
            fprintf(stderr, "mcstore-bench: prefill failed\n");
            goto done;
        }
    }

    enum gen_mode mode = o.fanout_max_user ? GEN_FANOUT_ONE : o.fanout ? GEN_FANOUT : GEN_RUN;
    if (o.prefill_only) {
        bench_result_empty(result, mode);
    } else {
        rc = run_phase(&run, mode, o.pipeline, mode != GEN_FANOUT_ONE, result);
    }
    if (!result->ran) {
        goto done;
    }
    if (o.json) {
        bench_report_json(stdout, &run, prefill, result);
    } else {
        bench_report_table(stdout, &run, prefill, result);
    }
    fflush(stdout);

done:
    free(prefill);
    free(result);
    free((char *)run.value);
    ring_free(run.ring);
    return rc;
}
