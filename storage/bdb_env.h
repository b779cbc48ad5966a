/* Internal to storage/: the store's Berkeley DB handles and helpers shared by its files. */
#ifndef MCSTORE_STORAGE_BDB_ENV_H
#define MCSTORE_STORAGE_BDB_ENV_H

#include <db.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "storage/record.h"
#include "storage/store.h"

/* How many times a transaction that lost a deadlock is retried before the client gets an
 * error. */
#define STORE_DEADLOCK_RETRIES 20

struct store {
    struct store_config cfg;
    DB_ENV *env;
    DB *items;          /* primary: key -> record (btree) */
    DB *expiry;         /* secondary: exptime -> key, only for items that expire */
    DB *meta;           /* the cas sequence and the flush markers */
    DB_SEQUENCE *cas_seq;

    /* flush_all markers, persisted in meta; read on every access */
    _Atomic uint64_t flush_cas;     /* items with a smaller cas are gone */
    _Atomic uint32_t flush_time;    /* items written before it are gone once it is reached */
    _Atomic bool flush_scan_pending;

    _Atomic uint64_t item_count;
    _Atomic uint64_t item_bytes;
    _Atomic uint64_t total_items;
    _Atomic uint64_t expired_swept;
    _Atomic uint64_t flushed_swept;
    _Atomic uint64_t checkpoints;
    _Atomic uint64_t deadlock_retries;
    _Atomic bool panicked;              /* DB_RUNRECOVERY seen: refuse writes until restart */
    _Atomic uint64_t trickle_pages;     /* pages written ahead of checkpoints by memp_trickle */
    _Atomic uint64_t logs_archived;
    _Atomic uint64_t batches;           /* multi-command transactions committed */
    _Atomic uint64_t batched_writes;
    _Atomic uint64_t batches_failed;    /* rolled back and run again command by command */
    _Atomic uint64_t syncs;             /* group commits: log flushes done for fsync mode */
    _Atomic uint64_t synced_writes;     /* writes those flushes covered */
    _Atomic uint64_t *fetched;          /* the meta protocol's fetched marks (store.h) */

    /* Replication: the databases are opened (again) while other threads run. A slave cannot
     * create them, so they may be missing until its master made them and they arrived; a
     * promotion reopens them; Berkeley DB can declare handles dead after a rollback or an
     * internal init (DB_REP_HANDLE_DEAD). Threads using the handles hold handles_lock for
     * reading (bdb_handles_enter); reopening holds it for writing. Unused without
     * replication. */
    pthread_rwlock_t handles_lock;
    _Atomic bool handles_ok;            /* the handles are open and alive */
    _Atomic uint64_t handle_reopens;

    pthread_mutex_t bg_lock;
    pthread_cond_t bg_cond;
    bool bg_stop;
    pthread_t sweeper;
    pthread_t checkpointer;
    bool threads_started;
};

/* Reads flush_all's markers from meta.db (all zero when none were written). 0 or an error. */
int bdb_read_flush_marks(DB *meta, struct flush_marks *m);

/* The expiry index's key order: little-endian u32 exptimes, numerically. */
int bdb_compare_exptime(DB *db, const DBT *a, const DBT *b);

/* Opens the environment and databases (with recovery). 0 or a Berkeley DB error. */
int bdb_env_open(struct store *st);

/* Closes whatever bdb_env_open opened. */
void bdb_env_close(struct store *st);

/* True when the record is invisible: expired or removed by flush_all. */
bool store_record_dead(struct store *st, const struct record_header *h, uint32_t now);

/* Records a Berkeley DB failure as the calling thread's error reason; a DB_RUNRECOVERY also
 * marks the store as needing recovery. */
void store_set_error(int ret);
void store_note_error(struct store *st, int ret);

/* Maintenance run by the checkpointer thread each second (maintenance.c). */
void store_maintenance_tick(struct store *st, time_t now, time_t *last_checkpoint);

/* Logs through the configured log function. */
void store_log(struct store *st, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Background threads (sweeper.c). */
int store_start_threads(struct store *st);
void store_stop_threads(struct store *st);

/* Persists the flush markers in meta within txn. */
int store_write_flush_meta(struct store *st, DB_TXN *txn);

/*
 * Replication (repl_store.c). bdb_handles_enter() makes the database handles usable by the
 * calling thread until bdb_handles_leave(): a no-op without replication; with it, a read
 * lock, reopening the handles first when they are missing or dead. Returns 0, or -1 with the
 * thread's error reason set (a slave whose databases have not arrived yet). Never call it
 * while already inside (the lock prefers writers: a nested read lock could deadlock).
 */
int bdb_handles_enter(struct store *st);
void bdb_handles_leave(struct store *st);

/* Marks the handles dead after DB_REP_HANDLE_DEAD: the next bdb_handles_enter reopens them.
 * Call outside bdb_handles_enter/leave. */
void bdb_handles_dead(struct store *st);

/* Opens (create: creating) the databases and the cas sequence, reads the flush markers and
 * counts the items. The caller holds handles_lock for writing or is alone. 0 or an error. */
int bdb_open_dbs(struct store *st, bool create);
void bdb_close_dbs(struct store *st);

/* Counts records and value bytes; afterwards every write keeps them current. */
int bdb_count_items(struct store *st);

/* Replication setup around DB_ENV->open (repl_store.c): before, after. 0 or an error. */
int store_repl_configure(struct store *st, uint32_t *open_flags);
int store_repl_start(struct store *st);

/* True when writes may run here: no replication, or this member is the master. Otherwise
 * sets the thread's error reason to the refusal ("not master; master is host:port"). */
bool store_writable(struct store *st);

/* After a commit that returned 0: true when replication's ack policy was met (or there is no
 * replication); false after setting the thread's error reason. */
bool store_commit_acked(struct store *st);

/* Sets the calling thread's error reason to text (copied). */
void store_set_error_text(const char *text);

#endif
