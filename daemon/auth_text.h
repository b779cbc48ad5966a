/* memcached's text-protocol authentication exchange, parsed as memcached 1.6.18 does it. */
#ifndef MCSTORE_DAEMON_AUTH_TEXT_H
#define MCSTORE_DAEMON_AUTH_TEXT_H

#include <stddef.h>

/*
 * With authentication on, a text client's input is parsed by this, not by the command parser,
 * until it authenticates. memcached (-Y) accepts exactly one form:
 *
 *     set <any> <any> <any> <bytes>[ <anything>]\r\n<user> <password>[ <anything>]\r\n
 *
 * and answers STORED or "CLIENT_ERROR authentication failure"; every other line gets
 * "CLIENT_ERROR unauthenticated" (see doc/protocol.md for each case, verified byte for byte).
 */

#define AUTH_TEXT_LINE_MAX 2048         /* no '\n' in more than this: memcached closes */
#define AUTH_TEXT_DATA_MAX 16384        /* memcached's read buffer: a longer block never fits,
                                           and memcached closes once it overflows */
/* memcached's reqs_per_event (-R 20): after this many requests of one wake-up it flushes the
 * reply; the first wake-up after a read runs one more (its first request is not counted). */
#define AUTH_TEXT_REQS_PER_EVENT 20

#define AUTH_TEXT_E_UNAUTH "CLIENT_ERROR unauthenticated"
#define AUTH_TEXT_E_FAILURE "CLIENT_ERROR authentication failure"
#define AUTH_TEXT_E_TERM "CLIENT_ERROR bad command line termination"
#define AUTH_TEXT_E_TOKENS "CLIENT_ERROR bad authentication token format"
#define AUTH_TEXT_OK "STORED"

enum auth_text_status {
    AUTH_TEXT_NEED_MORE,    /* call again with more bytes (all of them) */
    AUTH_TEXT_REPLY,        /* drop 'consumed' bytes and answer 'reply' */
    AUTH_TEXT_CHECK,        /* credentials: drop 'consumed' bytes; answer AUTH_TEXT_OK when
                               user/pass are right, else AUTH_TEXT_E_FAILURE */
    AUTH_TEXT_CLOSE,        /* close the connection without a reply (memcached does) */
};

struct auth_text_result {
    enum auth_text_status status;
    size_t consumed;
    size_t need;            /* AUTH_TEXT_NEED_MORE: total bytes needed when known, else 0 */
    const char *reply;      /* AUTH_TEXT_REPLY: the line without "\r\n" */
    const char *user;       /* AUTH_TEXT_CHECK: point into buf */
    size_t nuser;
    const char *pass;
    size_t npass;
};

/*
 * Parses the next step of an unauthenticated text client from buf[0..len). Never reads past
 * len, never writes to buf, never allocates. Pure function, any thread.
 */
void auth_text_parse(const char *buf, size_t len, struct auth_text_result *res);

#endif
