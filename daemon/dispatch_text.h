/* Executes a parsed text request against the store and writes memcached's reply. */
#ifndef MCSTORE_DAEMON_DISPATCH_TEXT_H
#define MCSTORE_DAEMON_DISPATCH_TEXT_H

#include "daemon/conn.h"
#include "protocol/request.h"

/* Runs req for connection c, appending the reply to c->out. May set c's state to closing
 * (quit) or c->close_now (a reply over --max-output). Worker thread only. */
void dispatch_text(struct conn *c, const struct proto_request *req);

#endif
