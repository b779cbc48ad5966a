/* Executes a parsed text request against the store and writes memcached's reply. */
#ifndef MCSTORE_DAEMON_DISPATCH_TEXT_H
#define MCSTORE_DAEMON_DISPATCH_TEXT_H

#include <stddef.h>

#include "daemon/conn.h"
#include "protocol/request.h"

/* Runs req for connection c, appending the reply to c->out. May set c's state to closing
 * (quit) or c->close_now (a reply over --max-output). Worker thread only. */
void dispatch_text(struct conn *c, const struct proto_request *req);

enum text_auth_step {
    TEXT_AUTH_MORE,     /* wait for input: grow the buffer to *need bytes (0 = unknown) */
    TEXT_AUTH_NEXT,     /* a request was consumed: go on */
    TEXT_AUTH_YIELD,    /* memcached would write its reply and yield here */
    TEXT_AUTH_CLOSE,    /* close without a reply */
};

/*
 * With --auth-file, runs c's next unauthenticated text request as memcached's text auth does
 * (daemon/auth_text.h): a "set" carrying "user pass" authenticates (STORED), anything else is
 * refused. Counts auth_cmds/auth_errors and logs failures (never the password). The reply is
 * held in c->auth_reply, as memcached overwrites it until the turn ends: call
 * dispatch_text_auth_end() when the turn ends. Worker thread only; PBKDF2 may take a while.
 */
enum text_auth_step dispatch_text_auth(struct conn *c, size_t *need);

/* End of a wake-up's processing: writes the held text-auth reply. */
void dispatch_text_auth_end(struct conn *c);

#endif
