/* Opening and closing the Berkeley DB environment and databases, with recovery at every start. */
#include "config.h"

#include "storage/bdb_env.h"

#include "replication/repl_bdb.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static _Thread_local const char *last_error = "unknown storage error";
static _Thread_local char error_text[256];

const char *store_error_reason(void)
{
    return last_error;
}

void store_set_error_text(const char *text)
{
    snprintf(error_text, sizeof(error_text), "%s", text);
    last_error = error_text;
}

void store_set_error(int ret)
{
    switch (ret) {
    case ENOSPC:
        last_error = "out of disk space";
        break;
    case EIO:
        last_error = "I/O error";
        break;
    case DB_LOCK_DEADLOCK:
    case DB_LOCK_NOTGRANTED:
        last_error = "lock conflict persisted, try again";
        break;
    case DB_RUNRECOVERY:
        last_error = "storage needs recovery, restart the server";
        break;
    case ENOMEM:
        last_error = "out of memory";
        break;
    case EACCES:
        /* Berkeley DB's answer to a write on a replication client */
        last_error = "not master";
        break;
    case DB_REP_HANDLE_DEAD:
    case DB_REP_LOCKOUT:
        last_error = "replica is synchronizing with its master, try again";
        break;
    default:
        last_error = "storage error";
        break;
    }
}

void store_note_error(struct store *st, int ret)
{
    store_set_error(ret);
    if (ret == DB_RUNRECOVERY && !atomic_exchange(&st->panicked, true)) {
        store_log(st, 0, "Berkeley DB needs recovery: refusing writes; restart mcstore, which "
                         "runs recovery at start");
    }
}

void store_log(struct store *st, int level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (st->cfg.log_fn != NULL) {
        st->cfg.log_fn(level, msg);
    } else {
        fprintf(stderr, "%s\n", msg);
    }
}

static struct store *errcall_store; /* Berkeley DB's errcall has no user pointer */

static void bdb_errcall(const DB_ENV *env, const char *prefix, const char *msg)
{
    (void)env;
    (void)prefix;
    /* a replication client reads the meta page of every file in the data home when it
     * synchronizes; the daemon's lock file is not a database, which is expected */
    if (strstr(msg, "mcstore.lock: unexpected file type") != NULL) {
        return;
    }
    if (errcall_store != NULL) {
        store_log(errcall_store, 0, "berkeley db: %s", msg);
    }
}

/* Berkeley DB's event callback may not call back into Berkeley DB: it only records (and
 * replication's part wakes its monitor thread). */
static void bdb_event(DB_ENV *env, uint32_t event, void *info)
{
    (void)env;
    if (event == DB_EVENT_PANIC && errcall_store != NULL) {
        atomic_store(&errcall_store->panicked, true);
    }
    if (errcall_store != NULL && errcall_store->cfg.repl != NULL) {
        repl_bdb_event(errcall_store->cfg.repl, event, info);
    }
}

static void bdb_msgcall(const DB_ENV *env, const char *msg)
{
    (void)env;
    if (errcall_store != NULL) {
        store_log(errcall_store, 2, "berkeley db: %s", msg);
    }
}

int bdb_compare_exptime(DB *db, const DBT *a, const DBT *b)
{
    (void)db;
    uint32_t x = a->size >= 4 ? record_le32(a->data) : 0;
    uint32_t y = b->size >= 4 ? record_le32(b->data) : 0;
    return x < y ? -1 : x > y ? 1 : 0;
}

/* Secondary key extractor: items that never expire are left out of the index. */
static int expiry_key(DB *sec, const DBT *pkey, const DBT *pdata, DBT *skey)
{
    (void)sec;
    (void)pkey;
    if (pdata->size < RECORD_HEADER) {
        return DB_DONOTINDEX;
    }
    const unsigned char *rec = pdata->data;
    if (record_le32(rec + RECORD_EXPTIME_OFFSET) == 0) {
        return DB_DONOTINDEX;
    }
    memset(skey, 0, sizeof(*skey));
    skey->data = (void *)(rec + RECORD_EXPTIME_OFFSET);
    skey->size = 4;
    return 0;
}

static int open_db(struct store *st, DB **out, const char *file, DBTYPE type, uint32_t db_flags,
                   int (*cmp)(DB *, const DBT *, const DBT *), uint32_t page_size,
                   uint32_t open_flags)
{
    DB *db;
    int ret = db_create(&db, st->env, 0);
    if (ret != 0) {
        return ret;
    }
    if (page_size != 0 && (ret = db->set_pagesize(db, page_size)) != 0) {
        goto fail;
    }
    if (db_flags != 0 && (ret = db->set_flags(db, db_flags)) != 0) {
        goto fail;
    }
    if (cmp != NULL && (ret = db->set_bt_compare(db, cmp)) != 0) {
        goto fail;
    }
    ret = db->open(db, NULL, file, NULL, type, open_flags | DB_THREAD | DB_AUTO_COMMIT, 0644);
    if (ret != 0) {
        goto fail;
    }
    *out = db;
    return 0;
fail:
    db->close(db, 0);
    return ret;
}

int bdb_read_flush_marks(DB *meta, struct flush_marks *m)
{
    DBT key;
    DBT data;
    unsigned char buf[16];

    memset(m, 0, sizeof(*m));
    memset(&key, 0, sizeof(key));
    memset(&data, 0, sizeof(data));
    key.data = "flush";
    key.size = 5;
    data.data = buf;
    data.ulen = sizeof(buf);
    data.flags = DB_DBT_USERMEM;
    int ret = meta->get(meta, NULL, &key, &data, 0);
    if (ret == DB_NOTFOUND) {
        return 0;
    }
    if (ret == 0) {
        flush_marks_decode(buf, data.size, m);
    }
    return ret;
}

static int load_meta(struct store *st)
{
    struct flush_marks m;
    int ret = bdb_read_flush_marks(st->meta, &m);
    if (ret == 0) {
        atomic_store(&st->flush_cas, m.cas);
        atomic_store(&st->flush_time, m.time);
        atomic_store(&st->flush_scan_pending, m.scan_pending);
    }
    return ret;
}

int store_write_flush_meta(struct store *st, DB_TXN *txn)
{
    DBT key;
    DBT data;
    unsigned char buf[FLUSH_MARKS_BYTES];
    struct flush_marks m = {atomic_load(&st->flush_cas), atomic_load(&st->flush_time),
                            atomic_load(&st->flush_scan_pending)};

    flush_marks_encode(buf, &m);
    memset(&key, 0, sizeof(key));
    memset(&data, 0, sizeof(data));
    key.data = "flush";
    key.size = 5;
    data.data = buf;
    data.size = sizeof(buf);
    return st->meta->put(st->meta, txn, &key, &data, 0);
}

int bdb_count_items(struct store *st)
{
    DBC *cur;
    DBT key;
    DBT data;
    uint64_t n = 0;
    uint64_t bytes = 0;
    int ret = st->items->cursor(st->items, NULL, &cur, 0);
    if (ret != 0) {
        return ret;
    }
    memset(&key, 0, sizeof(key));
    memset(&data, 0, sizeof(data));
    key.flags = DB_DBT_REALLOC;
    data.flags = DB_DBT_REALLOC;
    while ((ret = cur->get(cur, &key, &data, DB_NEXT)) == 0) {
        n++;
        if (data.size > RECORD_HEADER) {
            bytes += data.size - RECORD_HEADER;
        }
    }
    free(key.data);
    free(data.data);
    cur->close(cur);
    if (ret != DB_NOTFOUND) {
        return ret;
    }
    atomic_store(&st->item_count, n);
    atomic_store(&st->item_bytes, bytes);
    return 0;
}

int bdb_env_open(struct store *st)
{
    int ret;
    DB_ENV *env;

    if (mkdir(st->cfg.home, 0750) != 0 && errno != EEXIST) {
        store_log(st, 0, "cannot create data home %s: %s", st->cfg.home, strerror(errno));
        return errno;
    }
    if ((ret = db_env_create(&env, 0)) != 0) {
        return ret;
    }
    st->env = env;
    errcall_store = st;
    env->set_errcall(env, bdb_errcall);
    env->set_msgcall(env, bdb_msgcall);
    env->set_event_notify(env, bdb_event);
    size_t cache = st->cfg.cache_bytes;
    env->set_cachesize(env, (uint32_t)(cache / (1024u * 1024 * 1024)),
                       (uint32_t)(cache % (1024u * 1024 * 1024)), 1);
    env->set_lk_detect(env, DB_LOCK_DEFAULT);
    env->set_lk_max_locks(env, 100000);
    env->set_lk_max_objects(env, 100000);
    env->set_lk_max_lockers(env, 10000);
    /* the log buffer may be at most a quarter of a log file (Berkeley DB's rule); old logs go
     * as whole files, so small files let archival (and tests) drop them sooner */
    uint32_t lg_max = st->cfg.log_file_size != 0 ? st->cfg.log_file_size : 16 * 1024 * 1024;
    uint32_t lg_bsize = lg_max / 4 < 4 * 1024 * 1024 ? lg_max / 4 : 4 * 1024 * 1024;
    env->set_lg_bsize(env, lg_bsize);
    env->set_lg_max(env, lg_max);
    env->set_tx_max(env, 1000);
    /* Commits stay in the log buffer. Before the replies of a batch go out, store_sync()
     * writes the log to the OS (os: survives kill -9; the checkpoint thread also syncs it to
     * disk every second) or flushes it to disk (fsync). none: the buffer goes out when full. */
    env->set_flags(env, DB_TXN_NOSYNC, 1);
    /* without an archive directory, Berkeley DB deletes logs recovery no longer needs */
    env->log_set_config(env, DB_LOG_AUTO_REMOVE, st->cfg.log_archive_dir == NULL ? 1 : 0);

    uint32_t flags = DB_CREATE | DB_INIT_TXN | DB_INIT_LOG | DB_INIT_LOCK | DB_INIT_MPOOL |
                     DB_THREAD | (st->cfg.recover_catastrophic ? DB_RECOVER_FATAL : DB_RECOVER);
    if (st->cfg.repl != NULL && (ret = store_repl_configure(st, &flags)) != 0) {
        return ret;
    }
    struct timespec t0;
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ret = env->open(env, st->cfg.home, flags, 0640);
    if (ret != 0) {
        store_log(st, 0, "cannot open Berkeley DB environment %s: %s%s", st->cfg.home,
                  db_strerror(ret),
                  ret == DB_RUNRECOVERY ? " (try --recover-catastrophic, or restore a backup)"
                                        : "");
        return ret;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    store_log(st, 2, "%s recovery of %s done in %ld ms",
              st->cfg.recover_catastrophic ? "catastrophic" : "normal", st->cfg.home,
              (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000));
    if (st->cfg.repl != NULL) {
        return store_repl_start(st);
    }
    return bdb_open_dbs(st, true);
}

int bdb_open_dbs(struct store *st, bool create)
{
    int ret;
    /* a slave cannot create databases: its master makes them and they replicate */
    uint32_t oflags = create ? DB_CREATE : 0;
    /* 16 KiB item pages measured best for 100-byte items (bench/compare, doc/performance.md);
     * the size only applies when items.db is created */
    uint32_t page_size = st->cfg.page_size != 0 ? st->cfg.page_size : 16 * 1024;
    if ((ret = open_db(st, &st->items, "items.db", DB_BTREE, 0, NULL, page_size, oflags)) != 0 ||
        (ret = open_db(st, &st->expiry, "expiry.db", DB_BTREE, DB_DUPSORT, bdb_compare_exptime,
                       0, oflags)) != 0 ||
        (ret = open_db(st, &st->meta, "meta.db", DB_BTREE, 0, NULL, 0, oflags)) != 0) {
        if (create || ret != ENOENT) {
            store_log(st, 0, "cannot open databases in %s: %s", st->cfg.home, db_strerror(ret));
        }
        goto fail;
    }
    ret = st->items->associate(st->items, NULL, st->expiry, expiry_key, oflags);
    if (ret != 0) {
        store_log(st, 0, "cannot associate the expiry index: %s", db_strerror(ret));
        goto fail;
    }

    DBT seq_key;
    memset(&seq_key, 0, sizeof(seq_key));
    seq_key.data = "cas";
    seq_key.size = 3;
    if ((ret = db_sequence_create(&st->cas_seq, st->meta, 0)) != 0) {
        goto fail;
    }
    st->cas_seq->initial_value(st->cas_seq, 1);
    /* A cached range is skipped after a crash, never handed out twice. */
    st->cas_seq->set_cachesize(st->cas_seq, 1000);
    ret = st->cas_seq->open(st->cas_seq, NULL, &seq_key, oflags | DB_THREAD | DB_AUTO_COMMIT);
    if (ret != 0) {
        store_log(st, 0, "cannot open the cas sequence: %s", db_strerror(ret));
        goto fail;
    }
    if ((ret = load_meta(st)) != 0 || (ret = bdb_count_items(st)) != 0) {
        store_log(st, 0, "cannot read store metadata: %s", db_strerror(ret));
        goto fail;
    }
    return 0;
fail:
    bdb_close_dbs(st);
    return ret;
}

void bdb_close_dbs(struct store *st)
{
    if (st->cas_seq != NULL) {
        st->cas_seq->close(st->cas_seq, 0);
        st->cas_seq = NULL;
    }
    /* Secondary first: it refers to the primary. */
    if (st->expiry != NULL) {
        st->expiry->close(st->expiry, 0);
        st->expiry = NULL;
    }
    if (st->items != NULL) {
        st->items->close(st->items, 0);
        st->items = NULL;
    }
    if (st->meta != NULL) {
        st->meta->close(st->meta, 0);
        st->meta = NULL;
    }
}

void bdb_env_close(struct store *st)
{
    if (st->cfg.repl != NULL) {
        /* no promotion may reopen the handles while they close */
        repl_bdb_stop(st->cfg.repl);
    }
    bdb_close_dbs(st);
    if (st->env != NULL) {
        st->env->close(st->env, 0);
        st->env = NULL;
    }
    errcall_store = NULL;
}
