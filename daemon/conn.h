/* A client connection: an explicit state machine from bytes in to replies out. */
#ifndef MCSTORE_DAEMON_CONN_H
#define MCSTORE_DAEMON_CONN_H

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct worker;
struct conn;
struct proto_request;

/* Which protocol a connection speaks; memcached picks it from the first byte (0x80 = binary).
 * The meta commands are part of the text protocol. */
enum conn_proto {
    CONN_PROTO_NEGOTIATE,   /* no byte seen yet */
    CONN_PROTO_TEXT,
    CONN_PROTO_BINARY,
};

/*
 * How a connection moves bytes: plain sockets, or TLS (daemon/tls.c) swapped in behind these
 * pointers so nothing else knows which one it is.
 */
struct conn_io {
    /* As read(2): > 0 bytes read, 0 the peer closed, -1 with errno (EAGAIN: nothing now). */
    ssize_t (*read)(struct conn *c, void *buf, size_t n);
    /* Writes from the front of out, draining what went out. As evbuffer_write(): bytes
     * written, or -1 with errno (EAGAIN: the socket is full). */
    int (*write)(struct conn *c, struct evbuffer *out);
    /* Frees io_state (the socket itself is closed by conn_close). May be NULL. */
    void (*close)(struct conn *c);
    /* The transport for "stats conns": "tcp" or "tls". */
    const char *name;
};

/* Runs one parsed request, appending its reply to c->out. */
typedef void (*conn_dispatch_fn)(struct conn *c, const struct proto_request *req);

enum conn_state {
    CONN_READ,      /* waiting for more request bytes */
    CONN_PARSE,     /* input is buffered: parse and execute the next request */
    CONN_SWALLOW,   /* discarding the data block of a rejected storage command */
    CONN_WRITE,     /* replies are over the high watermark: wait until the client reads */
    CONN_CLOSING,   /* close once the pending replies are written (quit, shutdown) */
};

struct conn {
    int fd;
    struct worker *w;
    struct event *rev;
    struct event *wev;
    _Atomic int state;          /* enum conn_state; read by "stats conns" from other threads */

    char *rbuf;                 /* input: bytes [rstart, rend) are unparsed */
    size_t rsize;
    size_t rstart;
    size_t rend;
    size_t swallow;             /* bytes of a rejected data block still to discard */

    struct evbuffer *out;       /* replies not yet written */
    bool read_paused;           /* stopped reading: output over the high watermark */
    bool close_now;             /* a limit was hit: close without flushing */
    _Atomic int64_t last_cmd;   /* unix time of the last request */
    bool sync_queued;           /* replies wait for the worker's group commit (fsync mode) */
    bool read_wants_write;      /* the io's last read waits for the socket to be writable */

    /* Pipelined commands run as one transaction (a batch); their replies collect in out (swapped
     * with real_out) and are kept only if the batch commits. Otherwise the batch's input is
     * parsed again from batch_start, each command on its own, up to no_batch_until. */
    bool batching;
    struct evbuffer *real_out;
    struct evbuffer *batch_buf;
    size_t batch_start;
    size_t no_batch_until;
    unsigned batch_n;
    struct conn *sync_prev;
    struct conn *sync_next;
    char peer[64];

    enum conn_proto proto;
    const struct conn_io *io;
    void *io_state;             /* the io's own state (TLS session), or NULL */
    bool authenticated;         /* passed --auth-file's check (only read when srv->auth is set) */
    /* Text auth: memcached sends only the last reply of a wake-up's unauthenticated requests,
     * and flushes every reqs_per_event of them (dispatch_text_auth). */
    const char *auth_reply;
    int auth_reqs;
    size_t auth_window;

    struct conn *prev;
    struct conn *next;
};

/* Creates a connection for an accepted socket on worker w and starts reading.
 * Returns NULL (and closes fd) on failure. Worker thread only. */
struct conn *conn_new(struct worker *w, int fd, const char *peer);

/* Closes the socket and frees everything. Worker thread only. */
void conn_close(struct conn *c);

/* Shutdown: execute the complete requests already buffered, stop reading, and close once the
 * replies are written. Worker thread only. */
void conn_drain(struct conn *c);

/* Writes pending replies (after a group commit, for connections that waited on one). */
void conn_flush(struct conn *c);

/* For an io whose read cannot go on until the socket is writable (a TLS handshake meeting a
 * full socket): retries the read once it is. Worker thread only. */
void conn_read_wants_write(struct conn *c);

/* Name of a state for "stats conns". */
const char *conn_state_name(int state);

#endif
