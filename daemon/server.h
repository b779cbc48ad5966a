/* The process-wide state every daemon part shares, passed explicitly (no globals). */
#ifndef MCSTORE_DAEMON_SERVER_H
#define MCSTORE_DAEMON_SERVER_H

#include <stdbool.h>
#include <time.h>

#include "daemon/options.h"
#include "daemon/stats.h"
#include "storage/store.h"

struct auth_db;
struct worker;
struct repl;
struct stats_prefix;
struct tls_server;

struct server {
    struct settings settings;
    struct store *store;
    struct repl *repl;          /* replication, or NULL (replication/repl.h) */
    struct worker *workers;
    int nworkers;
    struct conn_stats conns;
    struct stats_prefix *prefix;/* "stats detail": per key-prefix counters */
    time_t started;
    char listen_desc[300];      /* "127.0.0.1:21201" for stats conns */
    char tls_listen_desc[300];  /* the --tls-port listener's, or "" */
    struct tls_server *tls;     /* certificates and counters when TLS is on, else NULL */
    struct auth_db *auth;       /* --auth-file's users; NULL = authentication off */
};

#endif
