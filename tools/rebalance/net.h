/* mcstore-rebalance: one blocking TCP connection with deadlines and a read buffer. */
#ifndef MCSTORE_TOOLS_REBALANCE_NET_H
#define MCSTORE_TOOLS_REBALANCE_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Requests are written whole; replies are read a line or a data block at a time. Every wait
 * is bounded by timeout_ms; a signal (EINTR) does not cut a wait short, so a SIGINT lets the
 * current batch finish. Not thread-safe: one thread uses a connection.
 */
struct rb_conn {
    int fd;                     /* -1 when not connected */
    char host[256];
    uint16_t port;
    int timeout_ms;
    char *buf;                  /* bytes read and not consumed: buf[start..end) */
    size_t start;
    size_t end;
    size_t cap;
    char err[512];              /* why the last call failed */
};

/* A closed connection (fd -1) that will use timeout_ms. */
void rb_conn_init(struct rb_conn *c, int timeout_ms);

/* Connects to host:port (closing any earlier connection). Returns 0, or -1 with c->err. */
int rb_conn_open(struct rb_conn *c, const char *host, uint16_t port);

/* Closes the socket (if open) and drops buffered bytes; c can be opened again. */
void rb_conn_close(struct rb_conn *c);

/* Frees the buffer too. */
void rb_conn_free(struct rb_conn *c);

/* Sends data[0..n) whole. Returns 0, or -1 with c->err (the connection is then closed). */
int rb_conn_send(struct rb_conn *c, const void *data, size_t n);

/*
 * Reads one line: *line points at it (without "\r\n") and stays valid until the next read
 * call. Lines longer than 64 KiB are an error. Returns 0, or -1 with c->err (closed).
 */
int rb_conn_line(struct rb_conn *c, const char **line, size_t *n);

/* Reads a data block of n bytes and its "\r\n"; *data is valid until the next read call.
 * Returns 0, or -1 with c->err (closed). */
int rb_conn_data(struct rb_conn *c, size_t n, const char **data);

/* A growing output buffer for pipelined requests. */
struct rb_out {
    char *p;
    size_t n;
    size_t cap;
};

/* Appends bytes / a formatted string. Return 0, or -1 when out of memory. */
int rb_out_add(struct rb_out *o, const void *data, size_t n);
int rb_out_printf(struct rb_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rb_out_free(struct rb_out *o);

#endif
