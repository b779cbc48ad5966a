/* One client connection: output buffer, requests in flight (in order), reply parsing. */
#ifndef MCSTORE_TOOLS_BENCH_CONN_H
#define MCSTORE_TOOLS_BENCH_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tools/bench/gen.h"

struct bench_worker;
struct event;

/* A request sent and not yet answered. */
struct bench_pending {
    uint64_t sent_ns;
    uint32_t opaque;            /* binary and meta: the number its reply must echo */
    struct bench_op op;
};

struct bench_conn {
    struct bench_worker *w;
    unsigned server;            /* index of its server in the options */
    unsigned depth;             /* most requests in flight (the pipeline depth) */
    enum bench_protocol proto;  /* how requests are written and replies parsed */
    uint32_t seq;               /* opaque of the next request (binary, meta) */
    int fd;                     /* -1 while down */
    struct event *ev_read, *ev_write, *ev_retry;
    bool dirty;                 /* output waiting for bench_conn_flush */
    bool want_write;            /* ev_write armed: the socket was full */
    unsigned reconnects;        /* consecutive failed reconnects */

    char *in;                   /* replies received, not yet parsed */
    size_t in_len, in_cap;
    char *out;                  /* requests not yet written: out[out_off..out_len) */
    size_t out_off, out_len, out_cap;

    struct bench_pending *q;    /* ring of depth entries: requests in flight, oldest first */
    unsigned q_head, q_len;
};

/* Sets the connection up (buffers, events on the worker's base) and connects. Returns 0, or
 * -1 with the reason in err (the connection is then closed but may be freed with
 * bench_conn_free). */
int bench_conn_open(struct bench_conn *c, struct bench_worker *w, unsigned server,
                    unsigned depth, char *err, size_t errlen);

/* Requests this connection can take now: 0 when down or full. */
static inline unsigned bench_conn_space(const struct bench_conn *c)
{
    return c->fd >= 0 ? c->depth - c->q_len : 0;
}

/* Queues a request (its bytes are written at the next bench_conn_flush). value/vlen: the data
 * of a storage request. Requires bench_conn_space(c) > 0. Returns false (the connection
 * failed for want of memory, the request was not queued) or true. */
bool bench_conn_send(struct bench_conn *c, const struct bench_op *op, const char *value,
                     size_t vlen, uint64_t now_ns);

/* Writes what it can of the queued bytes; the rest waits for the socket to drain. */
void bench_conn_flush(struct bench_conn *c);

/* Hands every request in flight to the worker as lost (why: for the warning) and closes the
 * socket; when reconnect is true a reconnect is scheduled. */
void bench_conn_fail(struct bench_conn *c, const char *why, bool reconnect);

/* The i-th request in flight, oldest first (for timeouts at the end of a run). */
struct bench_pending *bench_conn_pending(struct bench_conn *c, unsigned i);

/* Closes and frees everything the connection holds. */
void bench_conn_free(struct bench_conn *c);

#endif
