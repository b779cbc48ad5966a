/* Administration of a data home: hot backup, restore, verify, and the portable dump format. */
#ifndef MCSTORE_STORAGE_ADMIN_H
#define MCSTORE_STORAGE_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * What mcstore-admin (tools/admin) calls. None of these needs <db.h>; the operations and the
 * dump format are described in doc/operations.md. Thread rules: one operation at a time per
 * struct admin_ctx; the functions are not meant to run concurrently in one process (they take
 * the data home's fcntl lock, which is per process).
 */

/* Outcome of an operation. On anything but ADMIN_OK, ctx->err says what went wrong. */
enum admin_status {
    ADMIN_OK = 0,
    ADMIN_ERR,          /* failed: I/O, Berkeley DB, a malformed dump, a bad directory */
    ADMIN_BUSY,         /* refused: a server (or another mcstore-admin) holds the home's lock */
};

/* Progress of a long operation; a *_total of 0 means unknown. */
struct admin_progress {
    uint64_t items;
    uint64_t items_total;
    uint64_t bytes;
    uint64_t bytes_total;
};

struct admin_ctx {
    const char *home;                   /* the data home (-H) */
    /* Called now and then during long operations (and once at the end); may be NULL. */
    void (*progress)(void *arg, const struct admin_progress *p);
    void *progress_arg;
    /* Informational messages (what is being done, warnings); may be NULL. */
    void (*info)(void *arg, const char *msg);
    void *info_arg;
    /* Set by a signal handler to ask a running operation to stop (it then fails cleanly). */
    volatile int *interrupted;
    char err[1024];                     /* why the last operation failed */
    void *op;                           /* storage's state during an operation; leave NULL */
};

/* What a dump or a load did. */
struct admin_counts {
    uint64_t items;                     /* records written (dump) or stored (load) */
    uint64_t expired;                   /* skipped because expired or flushed */
    uint64_t bytes;                     /* value bytes of those items */
};

/*
 * Takes a hot, consistent backup of ctx->home into dir while a server may be running on it.
 * The copy is built in "dir.tmp-PID", brought to a consistent state there by catastrophic
 * recovery, and renamed to dir at the end, so dir is either a complete backup or untouched.
 * dir must not exist, or be an empty directory; with replace, an earlier mcstore backup in
 * dir is replaced. With checkpoint, the home is checkpointed first (shorter recovery later).
 * If the server archives a log file the copy still needs, the copy starts over (3 attempts).
 * Returns ADMIN_OK, ADMIN_BUSY (an mcstore-admin restore/load holds the home) or ADMIN_ERR.
 */
enum admin_status admin_backup(struct admin_ctx *ctx, const char *dir, bool replace,
                               bool checkpoint);

/*
 * Replaces ctx->home's databases and logs with the backup in dir and runs catastrophic
 * recovery (DB_RECOVER_FATAL) on the result, so the next server start is a normal one. No
 * server may run on the home (ADMIN_BUSY otherwise). The home may be missing or empty; if it
 * holds anything, it must look like a data home (items.db, log files, region files or
 * mcstore.lock), unless force is set.
 */
enum admin_status admin_restore(struct admin_ctx *ctx, const char *dir, bool force);

/*
 * Writes every live item of ctx->home to out in the dump format ("mcstore-dump 1"), in key
 * order, streaming with a cursor. Works while a server runs (it joins the environment and reads
 * without a transaction, so the dump is consistent per item, not a point-in-time snapshot).
 * Expired and flushed items are skipped. Does not close out; flushes it.
 */
enum admin_status admin_dump(struct admin_ctx *ctx, FILE *out, struct admin_counts *counts);

/*
 * Reads a dump from in and stores its items in ctx->home (created if missing), in batched
 * transactions, with new CAS values from the home's cas sequence. Items already in the home
 * are kept unless the dump has the same key (then the dump's item replaces them, as a set
 * would). Items whose exptime has passed are skipped. No server may run on the home
 * (ADMIN_BUSY). in_size is the input's size in bytes for the progress report, or 0.
 * A malformed or truncated dump is an error naming the record and the byte offset of its
 * line; the batches committed before it stay.
 */
enum admin_status admin_load(struct admin_ctx *ctx, FILE *in, uint64_t in_size,
                             struct admin_counts *counts);

/*
 * Verifies the databases in dir (a backup, or a data home no server runs on) with
 * DB->verify, using mcstore's own orderings (the expiry index sorts its keys as numbers,
 * which db5.3_verify can only check with -o). Returns ADMIN_OK when every database is sound.
 */
enum admin_status admin_verify(struct admin_ctx *ctx, const char *dir);

/* The first line of a dump of this version. */
#define ADMIN_DUMP_MAGIC "mcstore-dump"
#define ADMIN_DUMP_VERSION 1

/* The name of the file a backup leaves in its directory to say what it is. */
#define ADMIN_BACKUP_MARKER "MCSTORE_BACKUP"

#ifdef DB_VERSION_MAJOR
/*
 * Internal to storage/admin_*.c: visible only to files that included <db.h> first, which
 * only storage/ may do.
 */
#include <pthread.h>

/* Longest path the admin code builds; directories given to it are at most ADMIN_DIR_MAX. */
#define ADMIN_PATH_MAX 4800
#define ADMIN_DIR_MAX 4200

/* How an operation uses the home. */
enum admin_access {
    ADMIN_READ,         /* join a running server's environment, or lock and recover it */
    ADMIN_EXCLUSIVE,    /* the lock must be free: take it and keep it (no env opened) */
};

struct admin_env {
    char home[ADMIN_DIR_MAX];
    int lock_fd;                /* open on home/mcstore.lock, or -1 */
    bool locked;                /* we hold the lock (taken at start or by the guard) */
    bool joined;                /* attached to a running server's environment */
    DB_ENV *env;                /* NULL for ADMIN_EXCLUSIVE */
    struct admin_ctx *ctx;
    const char *what;           /* the operation, written into the lock file */
    /* while joined: a thread takes the lock as soon as the server lets it go, so no new
     * server can start (and run recovery) while we are attached */
    pthread_t guard;
    bool guard_started;
    pthread_mutex_t guard_mu;
    pthread_cond_t guard_cv;
    bool guard_stop;
};

/* Records a formatted error in ctx->err (replacing an earlier one). */
void admin_errf(struct admin_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Sends a formatted message to ctx->info. */
void admin_infof(struct admin_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reports progress (rate-limited by the caller's callback, not here). */
void admin_report(struct admin_ctx *ctx, const struct admin_progress *p);

/* True when a signal asked the operation to stop; records the error. */
bool admin_interrupted(struct admin_ctx *ctx);

/*
 * Opens ctx->home for an operation. ADMIN_READ: the home must hold items.db; when no server
 * holds the lock, takes it and opens the environment with normal recovery (as a server start
 * would); when a server holds it, joins its environment (no DB_CREATE, no DB_RECOVER) and
 * starts the lock guard. A home locked by another mcstore-admin is ADMIN_BUSY.
 * ADMIN_EXCLUSIVE: creates the home if missing, takes the lock or returns ADMIN_BUSY; opens no
 * environment. what names the operation in the lock file ("PID mcstore-admin WHAT").
 */
enum admin_status admin_env_open(struct admin_ctx *ctx, struct admin_env *ae,
                                 enum admin_access access, const char *what);

/* Closes the environment (if any), stops the guard and releases the lock if held. */
void admin_env_close(struct admin_env *ae);

/* Creates an environment handle with mcstore's settings and errors routed into ctx. */
int admin_env_create(struct admin_ctx *ctx, DB_ENV **out);

/* Takes home/mcstore.lock (an fcntl write lock, as the server takes it) without waiting, for
 * the whole operation: ADMIN_OK with *fd set, ADMIN_BUSY (ctx->err names the holder) or
 * ADMIN_ERR. Does not create home. */
enum admin_status admin_lock_take(struct admin_ctx *ctx, const char *home, const char *what,
                                  int *fd);

/* Empties the lock file and closes it, releasing the lock. */
void admin_lock_release(int fd);

/* Copies the regular file from -> to (created, mode 0640, must not exist), fsynced, adding
 * its bytes to p->bytes and reporting progress. 0 or an errno (ctx->err set). */
int admin_copy_file(struct admin_ctx *ctx, const char *from, const char *to,
                    struct admin_progress *p);

/* out = dir + "/" + name. The sizes above make overflow impossible for names from readdir;
 * it aborts if that invariant breaks rather than act on a truncated path. */
void admin_join_path(char *out, size_t cap, const char *dir, const char *name);

/* fsyncs a directory. 0 or an errno. */
int admin_fsync_dir(const char *dir);

/* Removes dir and the regular files directly in it. 0 or an errno. */
int admin_remove_dir(const char *dir);

/* True for Berkeley DB log file names ("log." followed by ten digits). */
bool admin_is_log_name(const char *name);

#endif

#endif
