/* Executes a parsed binary request against the store and writes memcached's reply packets. */
#ifndef MCSTORE_DAEMON_DISPATCH_BINARY_H
#define MCSTORE_DAEMON_DISPATCH_BINARY_H

#include "daemon/conn.h"
#include "protocol/request.h"

/* Runs req (from proto_binary_parse) for connection c, appending the reply packets to c->out
 * (none for a quiet request that succeeded). May set c's state to closing (quit). Changes
 * c->authenticated (SASL). Worker thread only. */
void dispatch_binary(struct conn *c, const struct proto_request *req);

#endif
