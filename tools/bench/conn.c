/* A client connection on a libevent loop: writes requests, reads and parses replies in order. */
#include "tools/bench/conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "tools/bench/client_binary.h"
#include "tools/bench/client_meta.h"
#include "tools/bench/worker.h"

#define IN_INITIAL (64 * 1024)
#define OUT_INITIAL (64 * 1024)
#define CONNECT_TIMEOUT_MS 2000
#define RECONNECTS_MAX 3            /* consecutive failed reconnects before the run gives up */

static void on_read(evutil_socket_t fd, short what, void *arg);
static void on_write(evutil_socket_t fd, short what, void *arg);
static void on_retry(evutil_socket_t fd, short what, void *arg);

static int grow(char **buf, size_t *cap, size_t need)
{
    size_t n = *cap ? *cap : 4096;
    while (n < need) {
        n *= 2;
    }
    if (n == *cap) {
        return 0;
    }
    char *p = realloc(*buf, n);
    if (p == NULL) {
        return -1;
    }
    *buf = p;
    *cap = n;
    return 0;
}

/* Connects and arms the read event. */
static int conn_connect(struct bench_conn *c, char *err, size_t errlen)
{
    const struct bench_addr *a = bench_worker_addr(c->w, c->server);
    int fd = bench_net_connect(a, CONNECT_TIMEOUT_MS, err, errlen);

    if (fd < 0) {
        return -1;
    }
    c->fd = fd;
    c->ev_read = event_new(bench_worker_base(c->w), fd, EV_READ | EV_PERSIST, on_read, c);
    c->ev_write = event_new(bench_worker_base(c->w), fd, EV_WRITE, on_write, c);
    if (c->ev_read == NULL || c->ev_write == NULL || event_add(c->ev_read, NULL) != 0) {
        snprintf(err, errlen, "cannot set up libevent events");
        return -1;
    }
    return 0;
}

int bench_conn_open(struct bench_conn *c, struct bench_worker *w, unsigned server,
                    unsigned depth, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    c->w = w;
    c->server = server;
    c->depth = depth;
    c->proto = w->run->o->protocol;
    c->fd = -1;
    c->q = calloc(depth, sizeof(*c->q));
    c->ev_retry = evtimer_new(bench_worker_base(w), on_retry, c);
    if (c->q == NULL || c->ev_retry == NULL || grow(&c->in, &c->in_cap, IN_INITIAL) != 0
        || grow(&c->out, &c->out_cap, OUT_INITIAL) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return conn_connect(c, err, errlen);
}

struct bench_pending *bench_conn_pending(struct bench_conn *c, unsigned i)
{
    return &c->q[(c->q_head + i) % c->depth];
}

/*
 * Writes one request, value included, at p (CLIENT_LINE_SPACE(nkey) + vlen + 2 bytes); returns
 * its length. A switch rather than a table of pointers: three cases, and the compiler can
 * inline each.
 */
static size_t encode(enum bench_protocol proto, char *p, const struct bench_op *op,
                     uint32_t opaque, const char *value, size_t vlen)
{
    size_t n;

    switch (proto) {
    case BENCH_PROTO_BINARY:
        if (op->op == CLIENT_GET) {
            return client_binary_get(p, op->key, op->nkey, opaque);
        }
        n = client_binary_store(p, op->op, op->key, op->nkey, 0, 0, vlen, opaque);
        memcpy(p + n, value, vlen);
        return n + vlen;            /* the body's length says where it ends: no "\r\n" */
    case BENCH_PROTO_META:
        if (op->op == CLIENT_GET) {
            return client_meta_get(p, op->key, op->nkey, opaque);
        }
        n = client_meta_store(p, op->op, op->key, op->nkey, 0, 0, vlen, opaque);
        break;
    default:
        if (op->op == CLIENT_GET) {
            return client_text_get(p, op->key, op->nkey);
        }
        n = client_text_store(p, op->op, op->key, op->nkey, 0, 0, vlen);
        break;
    }
    memcpy(p + n, value, vlen);
    n += vlen;
    p[n++] = '\r';
    p[n++] = '\n';
    return n;
}

/* Parses the reply to the request pe with the connection's protocol. */
static enum client_parse parse(enum bench_protocol proto, const char *buf, size_t len,
                               const struct bench_pending *pe, struct client_reply *r)
{
    const struct bench_op *op = &pe->op;

    switch (proto) {
    case BENCH_PROTO_BINARY:
        return client_binary_parse(buf, len, op->op, op->key, op->nkey, pe->opaque, r);
    case BENCH_PROTO_META:
        return client_meta_parse(buf, len, op->op, op->key, op->nkey, pe->opaque, r);
    default:
        return client_text_parse(buf, len, op->op, op->key, op->nkey, r);
    }
}

bool bench_conn_send(struct bench_conn *c, const struct bench_op *op, const char *value,
                     size_t vlen, uint64_t now_ns)
{
    size_t need = CLIENT_LINE_SPACE(op->nkey) + vlen + 2;

    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
    } else if (c->out_len + need > c->out_cap && c->out_off > 0) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    if (c->out_len + need > c->out_cap && grow(&c->out, &c->out_cap, c->out_len + need) != 0) {
        bench_conn_fail(c, "out of memory", false);
        return false;
    }
    uint32_t opaque = c->seq++;
    char *p = c->out + c->out_len;
    p += encode(c->proto, p, op, opaque, value, vlen);
    c->out_len = (size_t)(p - c->out);

    struct bench_pending *pe = &c->q[(c->q_head + c->q_len) % c->depth];
    pe->sent_ns = now_ns;
    pe->opaque = opaque;
    pe->op = *op;
    c->q_len++;
    if (!c->dirty) {
        c->dirty = true;
        bench_worker_mark_dirty(c->w, c);
    }
    return true;
}

void bench_conn_flush(struct bench_conn *c)
{
    c->dirty = false;
    if (c->fd < 0 || c->want_write) {
        return;
    }
    while (c->out_off < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->want_write = true;
            event_add(c->ev_write, NULL);
            return;
        }
        bench_conn_fail(c, n < 0 ? strerror(errno) : "write returned 0", true);
        return;
    }
    c->out_off = c->out_len = 0;
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    struct bench_conn *c = arg;
    (void)fd;
    (void)what;
    c->want_write = false;
    bench_conn_flush(c);
}

/* Parses every whole reply in the input buffer. Returns -1 if the connection was failed. */
static int parse_replies(struct bench_conn *c, uint64_t now_ns)
{
    size_t pos = 0;

    while (pos < c->in_len) {
        if (c->q_len == 0) {
            bench_worker_bad_reply(c->w);
            bench_conn_fail(c, "reply with no request outstanding", true);
            return -1;
        }
        struct bench_pending *pe = &c->q[c->q_head];
        struct client_reply r;
        enum client_parse st = parse(c->proto, c->in + pos, c->in_len - pos, pe, &r);
        if (st == CLIENT_NEED_MORE) {
            if (r.need > c->in_cap && grow(&c->in, &c->in_cap, r.need) != 0) {
                bench_conn_fail(c, "out of memory", false);
                return -1;
            }
            break;
        }
        if (st == CLIENT_BAD) {
            char why[160];
            snprintf(why, sizeof(why), "bad reply to %s %.40s: %s",
                     pe->op.op == CLIENT_GET ? "get" : "a storage command", pe->op.key, r.why);
            bench_worker_bad_reply(c->w);
            bench_conn_fail(c, why, true);
            return -1;
        }
        pos += r.consumed;
        c->q_head = (c->q_head + 1) % c->depth;
        c->q_len--;
        struct bench_pending done = *pe;
        bench_worker_on_reply(c->w, &done, &r, now_ns);
    }
    if (pos > 0) {
        memmove(c->in, c->in + pos, c->in_len - pos);
        c->in_len -= pos;
    }
    return 0;
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    struct bench_conn *c = arg;
    (void)what;

    for (;;) {
        if (c->in_len == c->in_cap && grow(&c->in, &c->in_cap, c->in_cap * 2) != 0) {
            bench_conn_fail(c, "out of memory", false);
            break;
        }
        size_t room = c->in_cap - c->in_len;
        ssize_t n = read(fd, c->in + c->in_len, room);
        if (n > 0) {
            c->in_len += (size_t)n;
            if (parse_replies(c, bench_worker_now()) != 0) {
                break;
            }
            if ((size_t)n < room) {
                break;          /* the socket is likely empty: let the loop tell us */
            }
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        }
        bench_conn_fail(c, n == 0 ? "connection closed by the server" : strerror(errno), true);
        break;
    }
    bench_worker_pump(c->w);
}

void bench_conn_fail(struct bench_conn *c, const char *why, bool reconnect)
{
    unsigned lost = c->q_len;

    if (c->fd >= 0) {
        event_free(c->ev_read);
        event_free(c->ev_write);
        c->ev_read = c->ev_write = NULL;
        close(c->fd);
        c->fd = -1;
    }
    c->want_write = false;
    c->in_len = 0;
    c->out_off = c->out_len = 0;
    while (c->q_len > 0) {
        struct bench_pending done = c->q[c->q_head];
        c->q_head = (c->q_head + 1) % c->depth;
        c->q_len--;
        bench_worker_on_lost(c->w, &done, false);
    }
    c->q_head = 0;
    bench_worker_conn_down(c->w, c, why, lost);
    if (reconnect && !bench_worker_stopping(c->w)) {
        struct timeval tv = {0, 100000};
        tv.tv_sec = c->reconnects;          /* 0.1 s, then 1.1 s, 2.1 s */
        evtimer_add(c->ev_retry, &tv);
    }
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct bench_conn *c = arg;
    char err[128];
    (void)fd;
    (void)what;

    if (conn_connect(c, err, sizeof(err)) == 0) {
        c->reconnects = 0;
        bench_worker_conn_up(c->w, c);
        bench_worker_pump(c->w);
        return;
    }
    if (c->fd >= 0) {
        bench_conn_fail(c, err, false);
    }
    if (++c->reconnects >= RECONNECTS_MAX) {
        bench_worker_give_up(c->w, c, err);
        return;
    }
    struct timeval tv = {c->reconnects, 100000};
    evtimer_add(c->ev_retry, &tv);
}

void bench_conn_free(struct bench_conn *c)
{
    if (c->ev_read != NULL) {
        event_free(c->ev_read);
    }
    if (c->ev_write != NULL) {
        event_free(c->ev_write);
    }
    if (c->ev_retry != NULL) {
        event_free(c->ev_retry);
    }
    if (c->fd >= 0) {
        close(c->fd);
    }
    free(c->in);
    free(c->out);
    free(c->q);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}
