/* The store interface: memcached's commands over a persistent, transactional store. */
#ifndef MCSTORE_STORAGE_STORE_H
#define MCSTORE_STORAGE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;   /* opaque: one Berkeley DB environment with its databases and threads */
struct repl;    /* replication/repl.h */

/* When an acknowledged write is safe (doc/storage.md). */
enum store_durability {
    STORE_DURABILITY_FSYNC,     /* on disk: commits share one log flush (group commit) */
    STORE_DURABILITY_OS,        /* in the OS: survives a process crash; flushed every second */
    STORE_DURABILITY_NONE,      /* in memory until the log buffer fills or a checkpoint runs */
};

struct store_config {
    const char *home;           /* the data home (a Berkeley DB environment directory) */
    size_t cache_bytes;         /* Berkeley DB cache size */
    size_t item_max;            /* largest value an append/prepend may grow to */
    int checkpoint_sec;         /* background checkpoint period */
    int sweep_interval_ms;      /* expiry sweeper period */
    enum store_durability durability;
    size_t checkpoint_kb;       /* also checkpoint after this much log (0 = only by time) */
    const char *log_archive_dir;/* move logs no longer needed here instead of deleting them */
    bool recover_catastrophic;  /* open with DB_RECOVER_FATAL instead of normal recovery */
    uint32_t page_size;         /* items.db page size when it is created (0 = 16 KiB) */
    uint32_t log_file_size;     /* Berkeley DB log file size (0 = 16 MiB); at least 256 KiB */
    /* Receives Berkeley DB's and the store's messages: level 0 error, 1 warning, 2 info. */
    void (*log_fn)(int level, const char *msg);
    /* Replication (doc/replication.md), or NULL. With it, writes run only while this member
     * is the master (others get STORE_ERROR with the refusal as the reason), a commit that
     * misses the ack policy is STORE_ERROR, and the expiry sweeper runs on the master only. */
    struct repl *repl;
};

/* Outcomes of a command; storage failures are STORE_ERROR with store_error_reason(). */
enum store_status {
    STORE_OK = 0,       /* get hit, deleted, touched, incremented, flushed */
    STORE_STORED,
    STORE_NOT_STORED,
    STORE_EXISTS,       /* cas mismatch */
    STORE_NOT_FOUND,
    STORE_NON_NUMERIC,  /* incr/decr on a value that is not a decimal number */
    STORE_TOO_LARGE,    /* append/prepend would exceed the item size limit */
    STORE_ERROR,
};

enum store_mode {
    STORE_MODE_SET,
    STORE_MODE_ADD,
    STORE_MODE_REPLACE,
    STORE_MODE_APPEND,
    STORE_MODE_PREPEND,
    STORE_MODE_CAS,
};

/* One item as read: value points into the caller's store_buf. */
struct store_item {
    uint32_t flags;
    uint32_t exptime;           /* absolute unix time, 0 = never */
    uint64_t cas;
    const char *value;
    size_t nvalue;
};

/* Per-thread scratch memory for reads; grows to the largest item read, freed by the owner. */
struct store_buf {
    char *data;
    size_t cap;
};

void store_buf_free(struct store_buf *buf);

/*
 * Opens (creating if needed) the environment at cfg->home, running normal recovery, and
 * starts the sweeper and checkpoint threads. Returns 0, or -1 after logging why.
 * The caller must hold the data home's lock file: recovery is unsafe with another process.
 */
int store_open(const struct store_config *cfg, struct store **out);

/* Stops the background threads, checkpoints and closes everything. Not thread safe: call once,
 * after every worker has stopped using st. */
void store_close(struct store *st);

/*
 * All command functions below are thread safe, one Berkeley DB transaction each (reads use
 * none), with deadlocks retried a bounded number of times. Keys are 1..250 bytes.
 */

/* Reads key. STORE_OK fills item (value in buf), or STORE_NOT_FOUND (missing, expired,
 * flushed). With touch, also sets the exptime to 'exptime' (absolute) in the same txn (gat). */
enum store_status store_get(struct store *st, struct store_buf *buf, const char *key,
                            size_t nkey, bool touch, uint32_t exptime, struct store_item *item);

/* set/add/replace/append/prepend/cas. cas_in is the client's unique for STORE_MODE_CAS; in
 * the replace/append/prepend modes a non-zero cas_in must match too or the result is
 * STORE_EXISTS (binary and meta commands carry one; memcached checks it). Text commands pass 0.
 * On STORE_STORED *cas_out (may be NULL) is the item's new unique. */
enum store_status store_update(struct store *st, struct store_buf *buf, enum store_mode mode,
                               const char *key, size_t nkey, uint32_t flags, uint32_t exptime,
                               uint64_t cas_in, const char *data, size_t ndata,
                               uint64_t *cas_out);

/* An incr/decr: what to add or subtract and what the binary and meta protocols add to it. */
struct store_delta_args {
    bool incr;
    uint64_t delta;
    bool create;                /* a miss stores 'initial' (binary incr, meta ma N) */
    uint64_t initial;
    uint32_t create_exptime;    /* absolute exptime of a created item */
    uint64_t cas_in;            /* non-zero: the item's cas must match, else STORE_EXISTS */
    bool set_exptime;           /* a hit also gets 'exptime' (meta ma T) */
    uint32_t exptime;
};

struct store_delta_result {
    char digits[24];            /* the new value in decimal, NUL terminated */
    size_t ndigits;
    uint64_t value;
    uint64_t cas;               /* the item's new unique */
    bool created;               /* the item was created from 'initial' */
    uint32_t exptime;           /* the item's absolute exptime (0 = never) */
    uint32_t old_exptime;       /* its exptime before this command (0 when created) */
};

/* incr/decr with memcached's rules: STORE_OK (result filled in), STORE_NOT_FOUND,
 * STORE_EXISTS (cas mismatch), STORE_NON_NUMERIC (an empty value is that even when the cas
 * does not match, as in memcached), or an error. A result no longer than the old value keeps
 * the item's meta state (memcached rewrites it in place); a longer one starts without. */
enum store_status store_delta(struct store *st, struct store_buf *buf, const char *key,
                              size_t nkey, const struct store_delta_args *args,
                              struct store_delta_result *res);

/* STORE_OK when a live item was deleted, STORE_EXISTS when cas_in is non-zero and is not the
 * item's unique (nothing deleted), else STORE_NOT_FOUND. */
enum store_status store_delete(struct store *st, struct store_buf *buf, const char *key,
                               size_t nkey, uint64_t cas_in);

/* STORE_OK when a live item got the new exptime, else STORE_NOT_FOUND. */
enum store_status store_touch(struct store *st, struct store_buf *buf, const char *key,
                              size_t nkey, uint32_t exptime);

/* Invalidates every item now (at_abs == 0) or at unix time at_abs, as memcached's flush_all;
 * the sweeper then deletes the invalidated records in the background. */
enum store_status store_flush_all(struct store *st, uint32_t at_abs);

/* Called for each item of a range; return false to stop. */
typedef bool (*store_range_fn)(void *arg, const char *key, size_t nkey,
                               const struct store_item *item);

/*
 * Live items with start <= key <= end in byte order (bounds excluded when *_open), at most
 * max of them, passed to fn in order. end == NULL: no upper bound; nstart == 0: from the first
 * key. No lock is held once it returns; within the walk a deadlock is retried from after the
 * last item fn saw, so fn never sees a key twice. STORE_OK (also when fn stopped the walk) or
 * STORE_ERROR; buf is unused (the walk reads into its own memory). Thread safe.
 */
enum store_status store_range(struct store *st, struct store_buf *buf, const char *start,
                              size_t nstart, const char *end, size_t nend, bool left_open,
                              bool right_open, uint32_t max, store_range_fn fn, void *arg);

/* Receives one statistic. */
typedef void (*store_stat_fn)(void *arg, const char *name, const char *value);

/* Item counts and Berkeley DB figures (pages, cache hit rate, log size...). Thread safe. */
void store_stats(struct store *st, store_stat_fn fn, void *arg);

/* Number of records stored (live or not yet swept) and their value bytes. */
uint64_t store_item_count(struct store *st);
uint64_t store_item_bytes(struct store *st);
uint64_t store_total_items(struct store *st);

/*
 * Group commit (STORE_DURABILITY_FSYNC). Every write transaction the calling thread commits
 * adds to its count of writes not yet on disk; store_sync() flushes the log once, covering all
 * of them (and every other thread's earlier commits), and resets the count. A write's reply
 * may be sent only after a store_sync() that followed it returned 0.
 */
uint64_t store_unsynced_writes(void);
int store_sync(struct store *st);

/*
 * Batches: several commands of one connection in one transaction (pipelined writes). Between
 * store_batch_begin() and store_batch_end() the calling thread's command functions above join
 * one transaction, and their results are provisional: store_batch_end() returns 0 when it
 * committed them all, or -1 when none was applied (a deadlock, an error in any of them) and
 * each must be run again on its own, or STORE_BATCH_UNACKED when the batch committed on this
 * master but missed the replication ack policy: its replies must not be sent as successes
 * (and running it again would apply it twice). Only get/gets/gat/gats, the storage commands,
 * incr, decr, delete, touch and the store_meta_* functions may run inside a batch.
 */
#define STORE_BATCH_UNACKED 1
int store_batch_begin(struct store *st);
int store_batch_end(struct store *st);

/* "fsync", "os" or "none"; false from the parser when the name is unknown. */
const char *store_durability_name(enum store_durability d);
bool store_durability_parse(const char *name, enum store_durability *out);

/* Forces a checkpoint now, then archives (or removes) the log files recovery no longer needs.
 * Returns 0 or -1 (reason in store_error_reason()). */
int store_checkpoint(struct store *st);

/* Archives (--log-archive) or removes the log files recovery no longer needs; *n is how many.
 * Returns 0 or -1. */
int store_archive_logs(struct store *st, unsigned *n);

/* Berkeley DB's own statistics: log, txn, lock and mpool subsystems ("stats bdb"). */
void store_bdb_stats(struct store *st, store_stat_fn fn, void *arg);

/* True once Berkeley DB reported that the environment needs recovery: writes are refused until
 * a restart, which runs it. */
bool store_needs_recovery(struct store *st);

/* Why the calling thread's last STORE_ERROR happened, for "SERVER_ERROR <reason>". */
const char *store_error_reason(void);

/*
 * Meta commands (memcached 1.6's mg ms md ma me; doc/protocol.md). Items keep a little state
 * for them in their record (STORE_META_*), and an in-memory "fetched" mark: whether the item
 * was read since it was last written (memcached's ITEM_FETCHED, "mg h" and "me fetch="). Every
 * read (store_get, store_touch, store_meta_get without no_bump) sets the mark; keeping it in
 * the record would turn every read into a write, so it lives in memory, keyed by a hash of
 * (key, cas): it is forgotten on restart, and may say "fetched" for an item never read when
 * another (key, cas) hashes to the same bit.
 */
#define STORE_META_STALE 0x01       /* invalidated (md I, ms I with an old cas): X */
#define STORE_META_WON 0x02         /* a reader was handed the win token W; others see Z */
#define STORE_META_KEY_BINARY 0x04  /* stored by ms with a base64 key: k echoes base64 */

/* One exptime-related flag of an mg, in request order: memcached applies them in order. */
struct store_mget_step {
    char flag;          /* 'T': exptime becomes 'exptime'; 'N': so does a vivified item's;
                           'R': the reader wins when the item expires before 'exptime' */
    uint32_t exptime;   /* absolute, 0 = never */
};

struct store_mget_args {
    const struct store_mget_step *steps;
    size_t nsteps;
    bool vivify;        /* N: a miss creates an empty item (flags 0) and its reader wins */
    bool no_win;        /* hand out no win token (the reply will be an error, or "me") */
    bool no_bump;       /* u, me: this read does not set the fetched mark */
};

struct store_mget_result {
    struct store_item item;
    uint32_t exptime_before;    /* exptime before the steps; 0 for a vivified item */
    uint32_t mtime;             /* unix time of the last write */
    uint8_t meta;               /* STORE_META_* as found, before this read's win */
    bool created;               /* vivified by this read */
    bool won;                   /* this read got the win token (W) */
    bool fetched;               /* the fetched mark before this read */
};

/*
 * mg: reads key (and applies the steps), handing out the win token as memcached does: to the
 * vivifying reader, to the first reader of a stale item, and on R to the first reader of an
 * item expiring soon. STORE_OK with result filled in (value in buf), or STORE_NOT_FOUND. A
 * read that changes nothing (no T, no win, no vivify) uses no transaction, like store_get.
 */
enum store_status store_meta_get(struct store *st, struct store_buf *buf, const char *key,
                                 size_t nkey, const struct store_mget_args *args,
                                 struct store_mget_result *res);

struct store_mset_args {
    enum store_mode mode;       /* STORE_MODE_CAS for ms with C in set or replace mode */
    uint32_t flags;
    uint32_t exptime;
    uint64_t cas_in;            /* CAS: must match (0 never does); APPEND/PREPEND: if not 0 */
    bool invalidate;            /* I in CAS mode: a cas older than the item's still stores,
                                   keeping the item's exptime, marked stale (win token kept) */
    bool key_binary;            /* the key came in base64 (not kept by append/prepend) */
    const char *data;
    size_t ndata;
};

/* ms: STORE_STORED (*cas_out = the new unique), STORE_NOT_STORED (also when append/prepend
 * would pass the item size limit), STORE_EXISTS, STORE_NOT_FOUND (CAS mode), or an error. */
enum store_status store_meta_set(struct store *st, struct store_buf *buf, const char *key,
                                 size_t nkey, const struct store_mset_args *args,
                                 uint64_t *cas_out);

struct store_mdelete_args {
    bool has_cas;               /* C: the item's unique must equal cas (C0 never does) */
    uint64_t cas;
    bool invalidate;            /* I: mark stale (new unique, win token cleared) instead */
    bool set_exptime;           /* with invalidate: T's exptime */
    uint32_t exptime;
};

/* md: STORE_OK (deleted or invalidated), STORE_NOT_FOUND, STORE_EXISTS, or an error. */
enum store_status store_meta_delete(struct store *st, struct store_buf *buf, const char *key,
                                    size_t nkey, const struct store_mdelete_args *args);

#endif
