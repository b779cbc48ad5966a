/* Accepting connections on the main thread, memcached style: reject over -c with an error. */
#include "config.h"

#include "daemon/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/listener.h>
#include <event2/util.h>

#include "daemon/log.h"
#include "daemon/worker.h"

struct listener {
    struct server *srv;
    struct evconnlistener *ev;
    bool tls;
};

static void on_accept(struct evconnlistener *ev, evutil_socket_t fd, struct sockaddr *addr,
                      int len, void *arg)
{
    struct listener *l = arg;
    struct server *srv = l->srv;
    (void)ev;
    (void)addr;
    (void)len;

    uint64_t curr = atomic_fetch_add(&srv->conns.curr_conns, 1);
    if (curr >= (uint64_t)srv->settings.max_conns) {
        static const char msg[] = "ERROR Too many open connections\r\n";
        if (!l->tls) { /* plain text would be garbage to a TLS client: it just sees a close */
            ssize_t w = write(fd, msg, sizeof(msg) - 1);
            (void)w;
        }
        close(fd);
        atomic_fetch_sub(&srv->conns.curr_conns, 1);
        atomic_fetch_add(&srv->conns.rejected_conns, 1);
        log_info("rejected a connection: %d connections open (-c)", srv->settings.max_conns);
        return;
    }
    atomic_fetch_add(&srv->conns.total_conns, 1);
    worker_dispatch_fd(srv, fd, l->tls);
}

static void on_accept_error(struct evconnlistener *ev, void *arg)
{
    (void)ev;
    (void)arg;
    int err = EVUTIL_SOCKET_ERROR();
    log_warn("accept failed: %s", evutil_socket_error_to_string(err));
}

struct listener *listener_start(struct server *srv, struct event_base *base, int port, bool tls,
                                char *desc, size_t ndesc)
{
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    char addr[256];

    if (strchr(srv->settings.listen_addr, ':') != NULL) {
        snprintf(addr, sizeof(addr), "[%s]:%d", srv->settings.listen_addr, port);
    } else {
        snprintf(addr, sizeof(addr), "%s:%d", srv->settings.listen_addr, port);
    }
    memset(&ss, 0, sizeof(ss));
    if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sslen) != 0) {
        log_error("cannot parse listen address %s", addr);
        return NULL;
    }
    struct listener *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        return NULL;
    }
    l->srv = srv;
    l->tls = tls;
    l->ev = evconnlistener_new_bind(base, on_accept, l,
                                    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                        LEV_OPT_CLOSE_ON_EXEC,
                                    1024, (struct sockaddr *)&ss, sslen);
    if (l->ev == NULL) {
        log_error("cannot listen on %s: %s", addr, strerror(errno));
        free(l);
        return NULL;
    }
    evconnlistener_set_error_cb(l->ev, on_accept_error);
    snprintf(desc, ndesc, "%s", addr);
    return l;
}

void listener_stop(struct listener *l)
{
    if (l != NULL) {
        evconnlistener_free(l->ev);
        free(l);
    }
}
