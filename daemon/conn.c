/* The connection state machine: read, parse, execute, write; with memcached's limits. */
#include "config.h"

#include "daemon/conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/util.h>

#include "daemon/dispatch_binary.h"
#include "daemon/dispatch_text.h"
#include "daemon/log.h"
#include "daemon/stats_prefix.h"
#include "daemon/worker.h"
#include "protocol/binary.h"
#include "protocol/text.h"

#define RBUF_INITIAL (16 * 1024)
#define RBUF_KEEP (64 * 1024)
/* Requests executed per wake-up before yielding, so one pipelining client cannot starve the
 * others on its worker (memcached's reqs_per_event). */
#define REQS_PER_EVENT 64
/* Commands one batch transaction may hold: bounds its locks and a rerun's cost. */
#define BATCH_MAX 32

/* Plain sockets; TLS (daemon/tls.c) installs its own conn_io. */
static ssize_t plain_read(struct conn *c, void *buf, size_t n)
{
    return read(c->fd, buf, n);
}

static int plain_write(struct conn *c, struct evbuffer *out)
{
    return evbuffer_write(out, c->fd);
}

static const struct conn_io plain_io = {plain_read, plain_write, NULL, "tcp"};

typedef void (*conn_parse_fn)(const char *buf, size_t len, const struct proto_limits *lim,
                              struct proto_request *req, struct proto_result *res);

/* Each protocol's parser and executor. */
struct conn_protocol {
    conn_parse_fn parse;
    conn_dispatch_fn dispatch;
};

static const struct conn_protocol protocols[] = {
    [CONN_PROTO_TEXT] = {proto_text_parse, dispatch_text},
    [CONN_PROTO_BINARY] = {proto_binary_parse, dispatch_binary},
};

static void conn_on_read(evutil_socket_t fd, short what, void *arg);
static void conn_on_write(evutil_socket_t fd, short what, void *arg);
static bool conn_process(struct conn *c, bool draining);

const char *conn_state_name(int state)
{
    switch (state) {
    case CONN_READ:
        return "conn_read";
    case CONN_PARSE:
        return "conn_parse_cmd";
    case CONN_SWALLOW:
        return "conn_swallow";
    case CONN_WRITE:
        return "conn_write";
    case CONN_CLOSING:
        return "conn_closing";
    default:
        return "unknown";
    }
}

static void conn_set_state(struct conn *c, enum conn_state s)
{
    atomic_store_explicit(&c->state, (int)s, memory_order_relaxed);
}

static enum conn_state conn_get_state(const struct conn *c)
{
    return (enum conn_state)atomic_load_explicit(&c->state, memory_order_relaxed);
}

/* Replies may pile up to this much before the connection stops reading requests. */
static size_t out_high_watermark(const struct conn *c)
{
    size_t half = c->w->srv->settings.max_output / 2;
    return half < 1024 * 1024 ? half : 1024 * 1024;
}

static void add_read_event(struct conn *c)
{
    int idle = c->w->srv->settings.idle_timeout;
    struct timeval tv = {idle, 0};
    event_add(c->rev, idle > 0 ? &tv : NULL);
}

struct conn *conn_new(struct worker *w, int fd, const char *peer)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return NULL;
    }
    int one = 1;
    evutil_make_socket_nonblocking(fd);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->fd = fd;
    c->w = w;
    c->rsize = RBUF_INITIAL;
    c->rbuf = malloc(c->rsize);
    c->out = evbuffer_new();
    c->rev = event_new(w->base, fd, EV_READ | EV_PERSIST, conn_on_read, c);
    c->wev = event_new(w->base, fd, EV_WRITE | EV_PERSIST, conn_on_write, c);
    if (c->rbuf == NULL || c->out == NULL || c->rev == NULL || c->wev == NULL) {
        log_error("out of memory creating a connection");
        free(c->rbuf);
        if (c->out != NULL) {
            evbuffer_free(c->out);
        }
        if (c->rev != NULL) {
            event_free(c->rev);
        }
        if (c->wev != NULL) {
            event_free(c->wev);
        }
        free(c);
        close(fd);
        atomic_fetch_sub(&w->srv->conns.curr_conns, 1);
        return NULL;
    }
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    c->proto = CONN_PROTO_NEGOTIATE;
    c->io = &plain_io;
    atomic_store(&c->last_cmd, (int64_t)time(NULL));
    conn_set_state(c, CONN_READ);
    worker_add_conn(w, c);
    add_read_event(c);
    return c;
}

/* Commands that may share a transaction: no scans, no flush, no connection-level effects. */
static bool batchable(enum proto_cmd cmd)
{
    switch (cmd) {
    case PROTO_CMD_GET:
    case PROTO_CMD_GETS:
    case PROTO_CMD_GAT:
    case PROTO_CMD_GATS:
    case PROTO_CMD_SET:
    case PROTO_CMD_ADD:
    case PROTO_CMD_REPLACE:
    case PROTO_CMD_APPEND:
    case PROTO_CMD_PREPEND:
    case PROTO_CMD_CAS:
    case PROTO_CMD_INCR:
    case PROTO_CMD_DECR:
    case PROTO_CMD_DELETE:
    case PROTO_CMD_TOUCH:
    case PROTO_CMD_META_GET:    /* the meta commands each touch one item */
    case PROTO_CMD_META_SET:
    case PROTO_CMD_META_DELETE:
    case PROTO_CMD_META_ARITH:
    case PROTO_CMD_META_NOOP:
    case PROTO_CMD_META_DEBUG:
        return true;
    default:
        return false;
    }
}

/* Reads alone gain nothing from a shared transaction (an mg mostly reads). */
static bool starts_batch(enum proto_cmd cmd)
{
    return batchable(cmd) && cmd != PROTO_CMD_GET && cmd != PROTO_CMD_GETS &&
           cmd != PROTO_CMD_META_GET && cmd != PROTO_CMD_META_NOOP &&
           cmd != PROTO_CMD_META_DEBUG;
}

static void conn_begin_batch(struct conn *c)
{
    if (c->batch_buf == NULL && (c->batch_buf = evbuffer_new()) == NULL) {
        return;
    }
    if (store_batch_begin(c->w->srv->store) != 0) {
        return;
    }
    c->batching = true;
    /* a rolled-back batch runs its commands again: they must not be counted twice */
    stats_reset(&c->w->batch_stats);
    stats_sum(&c->w->batch_stats, &c->w->stats);
    c->batch_start = c->rstart;
    c->batch_n = 0;
    c->real_out = c->out;
    c->out = c->batch_buf;
}

/*
 * Commits the open batch and releases its replies. Returns false when it rolled back: the
 * input is rewound to the batch's first command, to be run again one command at a time.
 */
static bool conn_end_batch(struct conn *c)
{
    if (!c->batching) {
        return true;
    }
    c->batching = false;
    struct evbuffer *replies = c->out;
    c->out = c->real_out;
    c->real_out = NULL;
    c->batch_buf = replies;
    int ended = store_batch_end(c->w->srv->store);
    if (ended == 0) {
        evbuffer_add_buffer(c->out, replies);
        return true;
    }
    if (ended == STORE_BATCH_UNACKED) {
        /* committed here but short of replication's acks: no reply may claim success, and
         * running the batch again would apply it twice; the client sees the connection end */
        log_warn("closing connection from %s: a pipelined batch missed the replication ack "
                 "policy", c->peer);
        evbuffer_drain(replies, evbuffer_get_length(replies));
        c->close_now = true;
        return true;
    }
    evbuffer_drain(replies, evbuffer_get_length(replies));
    stats_reset(&c->w->stats);
    stats_sum(&c->w->stats, &c->w->batch_stats);
    c->no_batch_until = c->rstart;
    c->rstart = c->batch_start;
    c->close_now = false;
    return false;
}

void conn_close(struct conn *c)
{
    struct worker *w = c->w;
    conn_end_batch(c);
    if (c->batch_buf != NULL) {
        evbuffer_free(c->batch_buf);
    }
    worker_unqueue_sync(w, c);
    worker_remove_conn(w, c);
    event_free(c->rev);
    event_free(c->wev);
    evbuffer_free(c->out);
    if (c->io->close != NULL) {
        c->io->close(c);
    }
    close(c->fd);
    free(c->rbuf);
    free(c);
    atomic_fetch_sub(&w->srv->conns.curr_conns, 1);
}

/* Reads what the socket has. False when the peer closed or the socket failed. */
static bool conn_fill(struct conn *c)
{
    if (c->rstart > 0) {
        memmove(c->rbuf, c->rbuf + c->rstart, c->rend - c->rstart);
        c->rend -= c->rstart;
        c->no_batch_until = c->no_batch_until > c->rstart ? c->no_batch_until - c->rstart : 0;
        c->rstart = 0;
    }
    if (c->rend == c->rsize) {
        /* the parser grows the buffer when a request needs more; then read again, as the io
         * may hold bytes the socket will not announce (TLS decrypts whole records) */
        if (conn_get_state(c) != CONN_CLOSING) {
            event_active(c->rev, EV_READ, 0);
        }
        return true;
    }
    ssize_t n = c->io->read(c, c->rbuf + c->rend, c->rsize - c->rend);
    if (n > 0) {
        c->rend += (size_t)n;
        STAT_ADD(&c->w->stats, bytes_read, (uint64_t)n);
        return true;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        return true;
    }
    return false;
}

/* Makes room for a request of 'need' bytes (0: unknown, double the buffer). */
static bool conn_grow(struct conn *c, size_t need)
{
    size_t have = c->rend - c->rstart;
    if (c->rstart > 0) {
        memmove(c->rbuf, c->rbuf + c->rstart, have);
        c->rend = have;
        c->no_batch_until = c->no_batch_until > c->rstart ? c->no_batch_until - c->rstart : 0;
        c->rstart = 0;
    }
    if (need == 0) {
        if (have < c->rsize) {
            return true;
        }
        need = c->rsize * 2;
    }
    if (need <= c->rsize) {
        return true;
    }
    /* the parser bounds every request: a line by PROTO_TEXT_GET_LINE_MAX, a value by -I */
    size_t limit = PROTO_TEXT_GET_LINE_MAX + RBUF_INITIAL;
    size_t item_limit = c->w->srv->settings.item_max + PROTO_TEXT_LINE_MAX + 2;
    if (item_limit > limit) {
        limit = item_limit;
    }
    if (need > limit) {
        need = limit;
    }
    if (need <= c->rsize) {
        return false;
    }
    char *p = realloc(c->rbuf, need);
    if (p == NULL) {
        log_error("out of memory growing a connection's input buffer to %zu bytes", need);
        return false;
    }
    c->rbuf = p;
    c->rsize = need;
    return true;
}

/* A large request is done: give the memory back so idle connections stay small. */
static void conn_maybe_shrink(struct conn *c)
{
    if (c->rsize > RBUF_KEEP && c->rend == c->rstart) {
        char *p = realloc(c->rbuf, RBUF_INITIAL);
        if (p != NULL) {
            c->rbuf = p;
            c->rsize = RBUF_INITIAL;
            c->rstart = c->rend = 0;
            c->no_batch_until = 0;
        }
    }
}

static void conn_pause_reading(struct conn *c)
{
    if (!c->read_paused) {
        c->read_paused = true;
        event_del(c->rev);
    }
    conn_set_state(c, CONN_WRITE);
}

/* Drops the replies after the first n bytes of output. */
static void conn_keep_output(struct conn *c, size_t n)
{
    struct evbuffer *keep = evbuffer_new();
    if (keep == NULL) {
        return;
    }
    evbuffer_remove_buffer(c->out, keep, n);
    evbuffer_free(c->out);
    c->out = keep;
}

/*
 * Parses and executes buffered requests. Returns false when the connection was closed (c is
 * freed). With draining (shutdown), runs every complete request regardless of the budget.
 */
static bool conn_process(struct conn *c, bool draining)
{
    struct worker *w = c->w;
    struct proto_limits lim = {.item_max = w->srv->settings.item_max,
                               .auth = w->srv->auth != NULL};
    const struct conn_protocol *proto = NULL;
    int budget = REQS_PER_EVENT;
    uint64_t unsynced_before = store_unsynced_writes();

    c->out_keep = evbuffer_get_length(c->out);

    for (;;) {
        if (c->close_now) {
            if (!conn_end_batch(c)) {
                continue;
            }
            conn_close(c);
            return false;
        }
        if (conn_get_state(c) == CONN_CLOSING) {
            break;
        }
        if (c->swallow > 0) {
            size_t avail = c->rend - c->rstart;
            size_t n = avail < c->swallow ? avail : c->swallow;
            c->rstart += n;
            c->swallow -= n;
            if (c->swallow > 0) {
                conn_set_state(c, CONN_SWALLOW);
                c->rstart = c->rend = 0;
                c->no_batch_until = 0;
                break;
            }
        }
        if (!draining && evbuffer_get_length(c->out) >= out_high_watermark(c)) {
            conn_pause_reading(c);
            break;
        }
        if (c->rstart == c->rend) {
            conn_set_state(c, CONN_READ);
            break;
        }
        conn_set_state(c, CONN_PARSE);
        if (c->proto == CONN_PROTO_NEGOTIATE) {
            /* memcached's rule: a binary request starts with the magic byte 0x80 */
            c->proto = (unsigned char)c->rbuf[c->rstart] == 0x80 ? CONN_PROTO_BINARY
                                                                 : CONN_PROTO_TEXT;
        }
        proto = &protocols[c->proto];

        if (c->proto == CONN_PROTO_TEXT && w->srv->auth != NULL && !c->authenticated) {
            /* nothing but memcached's text authentication until the client passes it (binary
             * clients use SASL: the binary parser refuses everything else) */
            size_t need = 0;
            enum text_auth_step step = dispatch_text_auth(c, &need);
            if (step == TEXT_AUTH_CLOSE || (step == TEXT_AUTH_MORE && !conn_grow(c, need))) {
                conn_close(c);
                return false;
            }
            if (step == TEXT_AUTH_MORE) {
                conn_set_state(c, CONN_READ);
                goto out;
            }
            if (step == TEXT_AUTH_YIELD && !draining) {
                event_active(c->rev, EV_READ, 0);
                goto out;
            }
            continue;
        }

        struct proto_request req;
        struct proto_result res;
        lim.authenticated = c->authenticated; /* a pipelined SASL auth changes it */
        proto->parse(c->rbuf + c->rstart, c->rend - c->rstart, &lim, &req, &res);
        switch (res.status) {
        case PROTO_NEED_MORE:
            if (!conn_end_batch(c)) {
                continue; /* before conn_grow moves the bytes the rerun starts from */
            }
            if (!conn_grow(c, res.need)) {
                conn_close(c);
                return false;
            }
            conn_set_state(c, CONN_READ);
            goto out;
        case PROTO_REQUEST:
            if (!draining && budget-- <= 0) {
                STAT_INC(&w->stats, conn_yields);
                event_active(c->rev, EV_READ, 0);
                goto out;
            }
            if (c->batching && !batchable(req.cmd) && !conn_end_batch(c)) {
                continue;
            }
            if (!c->batching && starts_batch(req.cmd) && c->rstart >= c->no_batch_until &&
                c->rstart + res.consumed < c->rend) {
                conn_begin_batch(c); /* more input follows: pipelined commands */
            }
            atomic_store_explicit(&c->last_cmd, (int64_t)time(NULL), memory_order_relaxed);
            proto->dispatch(c, &req);
            c->rstart += res.consumed;
            c->swallow = res.swallow;
            if (c->batching && ++c->batch_n >= BATCH_MAX && !conn_end_batch(c)) {
                continue;
            }
            break;
        case PROTO_ERROR:
            /* a close must not land inside a batch that may still roll back and rerun */
            if ((res.unlink_key || res.swallow > 0 || res.close) && !conn_end_batch(c)) {
                continue;
            }
            if (res.swallow > 0 && !res.swallow_uncounted) {
                STAT_INC(&w->stats, store_too_large);
                if (stats_prefix_enabled(w->srv->prefix)) {
                    stats_prefix_record_set(w->srv->prefix, req.key, req.nkey);
                }
            }
            if (res.unlink_key) {
                /* memcached drops the old value when a set is too large to store */
                store_delete(w->srv->store, &w->buf, req.key, req.nkey, 0);
            }
            if (res.error != NULL) {
                evbuffer_add(c->out, res.error, strlen(res.error));
                evbuffer_add(c->out, "\r\n", 2);
            }
            if (res.npacket > 0) {
                evbuffer_add(c->out, res.packet, res.npacket);
            }
            c->rstart += res.consumed;
            c->swallow = res.swallow;
            if (res.close) {
                conn_set_state(c, CONN_CLOSING);
            }
            break;
        case PROTO_CLOSE:
            if (c->out_keep == 0) {
                conn_close(c);
                return false;
            }
            if (!conn_end_batch(c)) {
                continue;
            }
            conn_keep_output(c, c->out_keep);
            conn_set_state(c, CONN_CLOSING);
            break;
        }
    }
out:
    dispatch_text_auth_end(c);
    if (!conn_end_batch(c)) {
        /* rolled back: run those commands again, one by one, on the next turn */
        event_active(c->rev, EV_READ, 0);
    }
    if (c->close_now) {
        conn_close(c);
        return false;
    }
    conn_maybe_shrink(c);
    if (draining && conn_get_state(c) != CONN_CLOSING) {
        conn_set_state(c, CONN_CLOSING);
    }
    if (store_unsynced_writes() != unsynced_before) {
        /* fsync durability: no reply of this batch before the log flush that covers it */
        worker_queue_sync(w, c);
        return true;
    }
    conn_flush(c);
    return true;
}

/* Writes pending replies; closes, pauses or resumes reading as the output dictates. */
void conn_flush(struct conn *c)
{
    bool progress = false;

    if (c->sync_queued) {
        return; /* these replies go out after the group commit covering their writes */
    }
    while (evbuffer_get_length(c->out) > 0) {
        int n = c->io->write(c, c->out);
        if (n > 0) {
            STAT_ADD(&c->w->stats, bytes_written, (uint64_t)n);
            progress = true;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            break;
        }
        conn_close(c);
        return;
    }
    if (evbuffer_get_length(c->out) > 0) {
        if (progress || !event_pending(c->wev, EV_WRITE, NULL)) {
            struct timeval tv = {c->w->srv->settings.write_timeout, 0};
            event_add(c->wev, &tv);
        }
        return;
    }
    if (!c->read_wants_write) {
        event_del(c->wev);
    }
    if (conn_get_state(c) == CONN_CLOSING) {
        conn_close(c);
        return;
    }
    if (c->read_paused) {
        c->read_paused = false;
        add_read_event(c);
        conn_set_state(c, CONN_PARSE);
        event_active(c->rev, EV_READ, 0);
    }
}

static void conn_on_read(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    (void)fd;

    if (what & EV_TIMEOUT) {
        log_info("closing idle connection from %s", c->peer);
        conn_close(c);
        return;
    }
    if (c->read_paused) {
        return; /* a yield queued before the pause */
    }
    if (!conn_fill(c)) {
        conn_close(c);
        return;
    }
    conn_process(c, false);
}

static void conn_on_write(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    (void)fd;

    if (what & EV_TIMEOUT) {
        log_info("closing connection from %s: %zu reply bytes unread for %d s", c->peer,
                 evbuffer_get_length(c->out), c->w->srv->settings.write_timeout);
        atomic_fetch_add(&c->w->srv->conns.slow_reader_closes, 1);
        conn_close(c);
        return;
    }
    if (c->read_wants_write) {
        c->read_wants_write = false;
        event_active(c->rev, EV_READ, 0);
    }
    conn_flush(c);
}

void conn_read_wants_write(struct conn *c)
{
    c->read_wants_write = true;
    if (!event_pending(c->wev, EV_WRITE, NULL)) {
        struct timeval tv = {c->w->srv->settings.write_timeout, 0};
        event_add(c->wev, &tv);
    }
}

void conn_drain(struct conn *c)
{
    event_del(c->rev);
    conn_process(c, true);
}
