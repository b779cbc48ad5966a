/* Executes a parsed meta request (mg ms md ma mn me) and writes memcached 1.6.18's reply. */
#ifndef MCSTORE_DAEMON_DISPATCH_META_H
#define MCSTORE_DAEMON_DISPATCH_META_H

#include "daemon/conn.h"
#include "protocol/request.h"

/* Runs req (a PROTO_CMD_META_* request) for connection c, appending the reply to c->out.
 * May set c->close_now (a reply over --max-output). Worker thread only. */
void dispatch_meta(struct conn *c, const struct proto_request *req);

#endif
