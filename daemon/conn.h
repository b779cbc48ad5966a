/* A client connection: an explicit state machine from bytes in to replies out. */
#ifndef MCSTORE_DAEMON_CONN_H
#define MCSTORE_DAEMON_CONN_H

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct worker;

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

/* Name of a state for "stats conns". */
const char *conn_state_name(int state);

#endif
