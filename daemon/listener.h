/* The listening socket: accepts, enforces -c, and hands sockets to workers. */
#ifndef MCSTORE_DAEMON_LISTENER_H
#define MCSTORE_DAEMON_LISTENER_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>

#include "daemon/server.h"

struct listener;

/* Binds settings.listen_addr:port on base; its connections speak TLS when tls is set. Writes
 * "addr:port" to desc (for stats conns). Returns NULL after logging why. */
struct listener *listener_start(struct server *srv, struct event_base *base, int port, bool tls,
                                char *desc, size_t ndesc);

/* Stops accepting and closes the socket. */
void listener_stop(struct listener *l);

#endif
