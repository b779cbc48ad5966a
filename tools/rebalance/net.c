/* mcstore-rebalance: a blocking TCP connection with deadlines (poll) and a read buffer. */
#include "tools/rebalance/net.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES (64 * 1024)

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for events or the deadline passes: 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            return 0;
        }
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, (int)(left > 1000 ? 1000 : left));
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r != 0) {
            return r > 0 ? 1 : -1;
        }
    }
}

void rb_conn_init(struct rb_conn *c, int timeout_ms)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->timeout_ms = timeout_ms;
}

static int fail(struct rb_conn *c, const char *what, int err)
{
    snprintf(c->err, sizeof(c->err), "%.255s:%u: %s%s%s", c->host, c->port, what,
             err != 0 ? ": " : "", err != 0 ? strerror(err) : "");
    rb_conn_close(c);
    return -1;
}

int rb_conn_open(struct rb_conn *c, const char *host, uint16_t port)
{
    rb_conn_close(c);
    snprintf(c->host, sizeof(c->host), "%s", host);
    c->port = port;

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    char service[8];
    snprintf(service, sizeof(service), "%u", port);
    int rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0) {
        snprintf(c->err, sizeof(c->err), "%s:%u: %s", host, port, gai_strerror(rc));
        return -1;
    }
    int last_err = 0;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        ai->ai_protocol);
        if (fd < 0) {
            last_err = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
            last_err = errno;
            close(fd);
            continue;
        }
        int ready = wait_fd(fd, POLLOUT, now_ms() + c->timeout_ms);
        int soerr = 0;
        socklen_t len = sizeof(soerr);
        if (ready <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr) {
            last_err = ready == 0 ? ETIMEDOUT : soerr != 0 ? soerr : errno;
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->fd = fd;
        break;
    }
    freeaddrinfo(res);
    if (c->fd < 0) {
        snprintf(c->err, sizeof(c->err), "%s:%u: connect: %s", host, port,
                 strerror(last_err != 0 ? last_err : ECONNREFUSED));
        return -1;
    }
    c->start = c->end = 0;
    return 0;
}

void rb_conn_close(struct rb_conn *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->start = c->end = 0;
}

void rb_conn_free(struct rb_conn *c)
{
    rb_conn_close(c);
    free(c->buf);
    c->buf = NULL;
    c->cap = 0;
}

int rb_conn_send(struct rb_conn *c, const void *data, size_t n)
{
    const char *p = data;
    int64_t deadline = now_ms() + c->timeout_ms;
    if (c->fd < 0) {
        return fail(c, "not connected", 0);
    }
    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            deadline = now_ms() + c->timeout_ms;    /* the deadline is on progress */
            continue;
        }
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            return fail(c, "send", errno);
        }
        int r = wait_fd(c->fd, POLLOUT, deadline);
        if (r <= 0) {
            return fail(c, r == 0 ? "send timed out" : "poll", r == 0 ? 0 : errno);
        }
    }
    return 0;
}

/* Reads more bytes into the buffer (at least one). Returns 0 or -1 (closed, c->err). */
static int fill(struct rb_conn *c, int64_t deadline)
{
    if (c->start > 0 && c->start == c->end) {
        c->start = c->end = 0;
    }
    if (c->end == c->cap) {
        if (c->start > 0) {
            memmove(c->buf, c->buf + c->start, c->end - c->start);
            c->end -= c->start;
            c->start = 0;
        } else {
            size_t cap = c->cap ? c->cap * 2 : 64 * 1024;
            char *b = realloc(c->buf, cap);
            if (b == NULL) {
                return fail(c, "out of memory", 0);
            }
            c->buf = b;
            c->cap = cap;
        }
    }
    for (;;) {
        ssize_t r = recv(c->fd, c->buf + c->end, c->cap - c->end, 0);
        if (r > 0) {
            c->end += (size_t)r;
            return 0;
        }
        if (r == 0) {
            return fail(c, "connection closed by the server", 0);
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            return fail(c, "recv", errno);
        }
        int w = wait_fd(c->fd, POLLIN, deadline);
        if (w <= 0) {
            return fail(c, w == 0 ? "no reply in time" : "poll", w == 0 ? 0 : errno);
        }
    }
}

int rb_conn_line(struct rb_conn *c, const char **line, size_t *n)
{
    int64_t deadline = now_ms() + c->timeout_ms;
    size_t scanned = 0;
    if (c->fd < 0) {
        return fail(c, "not connected", 0);
    }
    for (;;) {
        char *base = c->buf + c->start;
        size_t avail = c->end - c->start;
        char *nl = avail > scanned ? memchr(base + scanned, '\n', avail - scanned) : NULL;
        if (nl != NULL) {
            size_t len = (size_t)(nl - base);
            if (len == 0 || base[len - 1] != '\r') {
                return fail(c, "a reply line without \\r\\n", 0);
            }
            *line = base;
            *n = len - 1;
            c->start += len + 1;
            return 0;
        }
        scanned = avail;
        if (avail > LINE_MAX_BYTES) {
            return fail(c, "a reply line over 64 KiB", 0);
        }
        size_t before = c->start;
        if (fill(c, deadline) != 0) {
            return -1;
        }
        if (c->start != before) {
            scanned = 0;    /* the buffer moved */
        }
    }
}

int rb_conn_data(struct rb_conn *c, size_t n, const char **data)
{
    int64_t deadline = now_ms() + c->timeout_ms;
    if (c->fd < 0) {
        return fail(c, "not connected", 0);
    }
    if (n > SIZE_MAX - 2) {
        return fail(c, "a data block too large", 0);
    }
    while (c->end - c->start < n + 2) {
        /* make room for the whole block so fill() never has to */
        if (c->cap - c->start < n + 2) {
            size_t need = n + 2 + 64 * 1024;
            if (c->start > 0) {
                memmove(c->buf, c->buf + c->start, c->end - c->start);
                c->end -= c->start;
                c->start = 0;
            }
            if (c->cap < need) {
                char *b = realloc(c->buf, need);
                if (b == NULL) {
                    return fail(c, "out of memory", 0);
                }
                c->buf = b;
                c->cap = need;
            }
        }
        if (fill(c, deadline) != 0) {
            return -1;
        }
        deadline = now_ms() + c->timeout_ms;
    }
    char *base = c->buf + c->start;
    if (base[n] != '\r' || base[n + 1] != '\n') {
        return fail(c, "a data block without its \\r\\n", 0);
    }
    *data = base;
    c->start += n + 2;
    return 0;
}

int rb_out_add(struct rb_out *o, const void *data, size_t n)
{
    if (o->n + n > o->cap) {
        size_t cap = o->cap ? o->cap : 64 * 1024;
        while (cap < o->n + n) {
            cap *= 2;
        }
        char *p = realloc(o->p, cap);
        if (p == NULL) {
            return -1;
        }
        o->p = p;
        o->cap = cap;
    }
    memcpy(o->p + o->n, data, n);
    o->n += n;
    return 0;
}

int rb_out_printf(struct rb_out *o, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        return -1;
    }
    return rb_out_add(o, tmp, (size_t)n);
}

void rb_out_free(struct rb_out *o)
{
    free(o->p);
    o->p = NULL;
    o->n = o->cap = 0;
}
