/* Worker threads: one libevent base each; new connections arrive through a queue + wake-up. */
#ifndef MCSTORE_DAEMON_WORKER_H
#define MCSTORE_DAEMON_WORKER_H

#include <event2/event.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "daemon/server.h"
#include "daemon/stats.h"
#include "storage/store.h"

struct conn;

/* An accepted socket on its way to a worker, and whether it speaks TLS. */
struct worker_new_conn {
    int fd;
    bool tls;
};

struct worker {
    int id;
    struct server *srv;
    pthread_t thread;
    struct event_base *base;
    struct event *notify;       /* made active by other threads: new fds or stop */

    pthread_mutex_t lock;       /* guards queue, stopping and the conns list */
    struct worker_new_conn *queue;
    size_t qlen;
    size_t qcap;
    bool stopping;
    struct conn *conns;         /* this worker's connections (stats conns reads it) */
    size_t nconns;

    struct thread_stats stats;
    struct thread_stats batch_stats; /* stats before the open batch: a rollback restores them */
    struct store_buf buf;       /* scratch for reading records; only this thread uses it */
    struct event *drain_timer;  /* bounds how long shutdown waits for slow clients */
    struct event *sync_ev;      /* group commit: runs after this turn's ready connections */
    struct conn *sync_head;     /* connections whose replies wait for the group commit */
};

/* Creates srv->nworkers workers and starts their threads. Returns 0 or -1. */
int worker_start_all(struct server *srv);

/* Hands an accepted socket to the next worker (round robin); tls: it speaks TLS. Thread safe. */
void worker_dispatch_fd(struct server *srv, int fd, bool tls);

/* Asks every worker to finish the requests it has, flush replies, close its connections and
 * exit; joins the threads and frees them. Called once, from the main thread. */
void worker_stop_all(struct server *srv);

/* Group commit: holds c's replies until the worker's next log flush, which is scheduled to run
 * after the connections already ready in this event-loop turn. Worker thread only. */
void worker_queue_sync(struct worker *w, struct conn *c);
void worker_unqueue_sync(struct worker *w, struct conn *c);

/* Links/unlinks a connection in its worker's list (takes the worker lock). */
void worker_add_conn(struct worker *w, struct conn *c);
void worker_remove_conn(struct worker *w, struct conn *c);

#endif
