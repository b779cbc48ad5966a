/* Worker threads, each running its own event_base over the connections handed to it. */
#include "config.h"

#include "daemon/worker.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/conn.h"
#include "daemon/log.h"
#include "daemon/tls.h"

/* How long shutdown waits for clients to take their last replies. */
#define DRAIN_SECONDS 5

static void peer_name(int fd, char *out, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;

    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
            port = ntohs(sin->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
            port = ntohs(sin6->sin6_port);
        }
    }
    snprintf(out, len, "%s:%d", host, port);
}

void worker_add_conn(struct worker *w, struct conn *c)
{
    pthread_mutex_lock(&w->lock);
    c->prev = NULL;
    c->next = w->conns;
    if (w->conns != NULL) {
        w->conns->prev = c;
    }
    w->conns = c;
    w->nconns++;
    pthread_mutex_unlock(&w->lock);
}

void worker_remove_conn(struct worker *w, struct conn *c)
{
    pthread_mutex_lock(&w->lock);
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        w->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    w->nconns--;
    bool done = w->stopping && w->nconns == 0;
    pthread_mutex_unlock(&w->lock);
    if (done) {
        event_base_loopexit(w->base, NULL);
    }
}

void worker_queue_sync(struct worker *w, struct conn *c)
{
    if (c->sync_queued) {
        return;
    }
    c->sync_queued = true;
    c->sync_prev = NULL;
    c->sync_next = w->sync_head;
    if (w->sync_head != NULL) {
        w->sync_head->sync_prev = c;
    }
    w->sync_head = c;
    event_active(w->sync_ev, EV_TIMEOUT, 0);
}

void worker_unqueue_sync(struct worker *w, struct conn *c)
{
    if (!c->sync_queued) {
        return;
    }
    if (c->sync_prev != NULL) {
        c->sync_prev->sync_next = c->sync_next;
    } else {
        w->sync_head = c->sync_next;
    }
    if (c->sync_next != NULL) {
        c->sync_next->sync_prev = c->sync_prev;
    }
    c->sync_queued = false;
}

/* One log flush for every write of this turn, then the replies that waited for it. */
static void worker_on_sync(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)fd;
    (void)what;
    bool ok = store_sync(w->srv->store) == 0;
    while (w->sync_head != NULL) {
        struct conn *c = w->sync_head;
        worker_unqueue_sync(w, c);
        if (ok) {
            conn_flush(c);
        } else {
            /* the writes may not be on disk: never acknowledge them */
            log_error("closing connection from %s: log flush failed", c->peer);
            conn_close(c);
        }
    }
}

static void worker_on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)fd;
    (void)what;
    for (;;) {
        pthread_mutex_lock(&w->lock);
        struct conn *c = w->conns;
        pthread_mutex_unlock(&w->lock);
        if (c == NULL) {
            break;
        }
        log_info("shutdown: closing %s with replies still unread", c->peer);
        conn_close(c);
    }
    event_base_loopexit(w->base, NULL);
}

/* Begins a graceful stop of this worker: runs in its own thread. */
static void worker_begin_stop(struct worker *w)
{
    struct timeval tv = {DRAIN_SECONDS, 0};
    w->drain_timer = evtimer_new(w->base, worker_on_drain_timeout, w);
    if (w->drain_timer != NULL) {
        evtimer_add(w->drain_timer, &tv);
    }
    pthread_mutex_lock(&w->lock);
    bool empty = w->nconns == 0;
    pthread_mutex_unlock(&w->lock);
    if (empty) {
        event_base_loopexit(w->base, NULL);
        return;
    }
    /* conn_drain may close (and unlink) the connection; walk a snapshot of the fds */
    for (;;) {
        struct conn *next = NULL;
        pthread_mutex_lock(&w->lock);
        for (struct conn *c = w->conns; c != NULL; c = c->next) {
            if (atomic_load(&c->state) != CONN_CLOSING) {
                next = c;
                break;
            }
        }
        pthread_mutex_unlock(&w->lock);
        if (next == NULL) {
            break;
        }
        conn_drain(next);
    }
}

static void worker_on_notify(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)fd;
    (void)what;

    for (;;) {
        pthread_mutex_lock(&w->lock);
        bool stopping = w->stopping;
        int cfd = -1;
        bool tls = false;
        if (w->qlen > 0) {
            cfd = w->queue[0].fd;
            tls = w->queue[0].tls;
            memmove(w->queue, w->queue + 1, (w->qlen - 1) * sizeof(w->queue[0]));
            w->qlen--;
        }
        pthread_mutex_unlock(&w->lock);
        if (cfd < 0) {
            if (stopping && w->drain_timer == NULL) {
                worker_begin_stop(w);
            }
            return;
        }
        if (stopping) {
            close(cfd);
            atomic_fetch_sub(&w->srv->conns.curr_conns, 1);
            continue;
        }
        char peer[64];
        peer_name(cfd, peer, sizeof(peer));
        struct conn *c = conn_new(w, cfd, peer);
        if (c != NULL && tls && tls_conn_attach(w->srv->tls, c) != 0) {
            conn_close(c);
        }
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
    store_buf_free(&w->buf);
    return NULL;
}

int worker_start_all(struct server *srv)
{
    srv->workers = calloc((size_t)srv->settings.threads, sizeof(struct worker));
    if (srv->workers == NULL) {
        return -1;
    }
    for (int i = 0; i < srv->settings.threads; i++) {
        struct worker *w = &srv->workers[i];
        w->id = i;
        w->srv = srv;
        pthread_mutex_init(&w->lock, NULL);
        w->base = event_base_new();
        if (w->base == NULL) {
            log_error("cannot create an event base for worker %d", i);
            return -1;
        }
        w->notify = event_new(w->base, -1, EV_PERSIST, worker_on_notify, w);
        if (w->notify == NULL || event_add(w->notify, NULL) != 0) {
            return -1;
        }
        w->sync_ev = event_new(w->base, -1, 0, worker_on_sync, w);
        if (w->sync_ev == NULL) {
            return -1;
        }
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            log_error("cannot start worker thread %d", i);
            return -1;
        }
        srv->nworkers = i + 1;
    }
    return 0;
}

void worker_dispatch_fd(struct server *srv, int fd, bool tls)
{
    static _Atomic unsigned next;
    struct worker *w = &srv->workers[atomic_fetch_add(&next, 1) % (unsigned)srv->nworkers];

    pthread_mutex_lock(&w->lock);
    if (w->qlen == w->qcap) {
        size_t cap = w->qcap == 0 ? 64 : w->qcap * 2;
        struct worker_new_conn *q = realloc(w->queue, cap * sizeof(*q));
        if (q == NULL) {
            pthread_mutex_unlock(&w->lock);
            log_error("out of memory queueing a connection");
            close(fd);
            atomic_fetch_sub(&srv->conns.curr_conns, 1);
            return;
        }
        w->queue = q;
        w->qcap = cap;
    }
    w->queue[w->qlen++] = (struct worker_new_conn){fd, tls};
    pthread_mutex_unlock(&w->lock);
    event_active(w->notify, EV_READ, 0);
}

void worker_stop_all(struct server *srv)
{
    for (int i = 0; i < srv->nworkers; i++) {
        struct worker *w = &srv->workers[i];
        pthread_mutex_lock(&w->lock);
        w->stopping = true;
        pthread_mutex_unlock(&w->lock);
        event_active(w->notify, EV_READ, 0);
    }
    for (int i = 0; i < srv->nworkers; i++) {
        struct worker *w = &srv->workers[i];
        pthread_join(w->thread, NULL);
        if (w->drain_timer != NULL) {
            event_free(w->drain_timer);
        }
        event_free(w->notify);
        event_free(w->sync_ev);
        event_base_free(w->base);
        free(w->queue);
        pthread_mutex_destroy(&w->lock);
    }
    free(srv->workers);
    srv->workers = NULL;
    srv->nworkers = 0;
}
