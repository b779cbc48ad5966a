/* TLS for client connections: the one place that knows OpenSSL (memcached's tls.c). */
#ifndef MCSTORE_DAEMON_TLS_H
#define MCSTORE_DAEMON_TLS_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "daemon/options.h"

struct conn;

/* The server side of TLS: certificate, key, client verification, and counters. Opaque. */
struct tls_server;

/* Counters for "stats" (memcached's names where it has them). */
struct tls_stats {
    uint64_t handshakes;          /* handshakes completed */
    uint64_t handshake_errors;    /* ssl_handshake_errors: failed or closed before finishing */
    uint64_t handshake_timeouts;  /* of those, closed by --tls-handshake-timeout */
    time_t cert_loaded;           /* when the certificate was last (re)loaded */
};

/*
 * Loads the certificate chain, key and CA of s (--tls-cert, --tls-key, --tls-ca) and sets
 * the verification mode (--tls-verify) and TLS 1.2 as the oldest protocol version.
 * Returns NULL after logging what is wrong with which file. Main thread, before workers start.
 */
struct tls_server *tls_server_new(const struct settings *s);

/* Frees t (NULL is fine). After the workers stopped: no connection may still use it. */
void tls_server_free(struct tls_server *t);

/*
 * Reads the certificate, key and CA files again (SIGHUP; memcached's refresh_certs). New
 * connections use them; open ones keep the session they have. On any error the old ones stay
 * in use. Returns 0, or -1 after logging why. Any thread.
 */
int tls_server_reload(struct tls_server *t);

/* A consistent enough snapshot of t's counters. Any thread. */
void tls_server_stats(struct tls_server *t, struct tls_stats *out);

/*
 * Makes a freshly accepted connection speak TLS: its reads drive a non-blocking handshake
 * and then decrypt, its writes encrypt. A handshake not finished within
 * --tls-handshake-timeout seconds closes the connection. Returns 0, or -1 (out of memory;
 * c is unchanged and the caller closes it). Worker thread of c only.
 */
int tls_conn_attach(struct tls_server *t, struct conn *c);

#endif
