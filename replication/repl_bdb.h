/* Replication as storage/ drives it: Berkeley DB environment setup, start, events, hooks. */
#ifndef MCSTORE_REPLICATION_REPL_BDB_H
#define MCSTORE_REPLICATION_REPL_BDB_H

/* Only storage/ includes this header: it brings in <db.h>. */

#include <db.h>
#include <stdbool.h>

#include "replication/repl.h"

/*
 * What replication asks of the store when roles change. They run on replication's own
 * monitor thread, never inside a Berkeley DB callback, and may call into Berkeley DB.
 */
struct repl_hooks {
    void *arg;
    /* This member was just made master: make the store ready for writes (databases created
     * and reopened, cas sequence past anything an earlier master handed out). Writes are
     * refused until it returns 0; on -1 it is called again shortly. */
    int (*become_master)(void *arg, uint32_t generation);
    /* Runs after become_master: background work that needs not delay the first write (the
     * item count, this member's client address written for the slaves to read). */
    void (*after_master)(void *arg);
    /* Looks up the client address a master published for its replication address "host:port"
     * (repl_addr). Returns true and fills out when found. */
    bool (*lookup_client_addr)(void *arg, const char *repl_addr, char *out, size_t n);
    /* Writes this member's client address under its replication address (on the master). */
    int (*publish_client_addr)(void *arg, const char *repl_addr, const char *client_addr);
};

/* Configures env before DB_ENV->open: local site and peers (DB_SITE), ack policy and timeout,
 * priority, elections, two-site strictness, timeouts, and the DB_INIT_REP flag the open needs
 * (*open_flags gets it). 0 or a Berkeley DB error (logged). */
int repl_bdb_configure(struct repl *r, DB_ENV *env, uint32_t *open_flags);

/* Starts the Replication Manager on the opened env and the monitor thread. 0 or an error. */
int repl_bdb_start(struct repl *r, DB_ENV *env, const struct repl_hooks *hooks);

/* Waits up to ms for this member to be master or a slave in sync with a master (startup
 * done). True when it is. Used once at store open so databases are opened after the first
 * synchronization. */
bool repl_bdb_wait_ready(struct repl *r, int ms);

/* True when Berkeley DB says this member is the master (possibly not yet taking writes). */
bool repl_bdb_is_master(const struct repl *r);

/* True when databases may be opened here: this member is the master, or a slave that has
 * synchronized with its master. A database open while Berkeley DB changes roles or syncs
 * waits on it (and it on the open) until a lock times out, holding up elections. */
bool repl_bdb_can_open(const struct repl *r);

/* Feeds one Berkeley DB event (from the environment's event callback). Records and wakes the
 * monitor thread only: it never calls back into Berkeley DB. Any thread. */
void repl_bdb_event(struct repl *r, uint32_t event, void *info);

/* Stops the monitor thread; call before the environment closes. */
void repl_bdb_stop(struct repl *r);

#endif
