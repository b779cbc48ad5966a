/* Background work of the store: the expiry/flush sweeper and the log-flush/checkpoint thread. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "replication/repl.h"
#include "storage/bdb_env.h"

/* Items deleted per sweeper transaction: small, so a sweep never holds many locks. */
#define SWEEP_BATCH 100

/* Sleeps up to ms milliseconds or until stop; returns true when the thread must stop. */
static bool bg_wait(struct store *st, long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&st->bg_lock);
    if (!st->bg_stop) {
        pthread_cond_timedwait(&st->bg_cond, &st->bg_lock, &ts);
    }
    bool stop = st->bg_stop;
    pthread_mutex_unlock(&st->bg_lock);
    return stop;
}

static bool bg_stopping(struct store *st)
{
    pthread_mutex_lock(&st->bg_lock);
    bool stop = st->bg_stop;
    pthread_mutex_unlock(&st->bg_lock);
    return stop;
}

/*
 * Deletes up to SWEEP_BATCH expired items, walking the expiry index from its oldest entry,
 * so the cost follows what expires, not the data set. Returns how many were deleted, or -1.
 */
static int sweep_expired_batch(struct store *st, uint32_t now)
{
    DB_TXN *txn;
    DBC *cur;
    DBT skey;
    DBT pkey;
    DBT pdata;
    int deleted = 0;
    uint64_t bytes = 0;
    int ret = st->env->txn_begin(st->env, NULL, &txn, 0);
    if (ret != 0) {
        return -1;
    }
    if ((ret = st->expiry->cursor(st->expiry, txn, &cur, 0)) != 0) {
        txn->abort(txn);
        return -1;
    }
    memset(&skey, 0, sizeof(skey));
    memset(&pkey, 0, sizeof(pkey));
    memset(&pdata, 0, sizeof(pdata));
    skey.flags = DB_DBT_REALLOC;
    pkey.flags = DB_DBT_REALLOC;
    pdata.flags = DB_DBT_REALLOC;
    ret = cur->pget(cur, &skey, &pkey, &pdata, DB_FIRST | DB_RMW);
    while (ret == 0 && deleted < SWEEP_BATCH) {
        if (skey.size < 4 || record_le32(skey.data) > now) {
            break;
        }
        if ((ret = cur->del(cur, 0)) != 0) {
            break;
        }
        deleted++;
        if (pdata.size > RECORD_HEADER) {
            bytes += pdata.size - RECORD_HEADER;
        }
        ret = cur->pget(cur, &skey, &pkey, &pdata, DB_NEXT | DB_RMW);
    }
    free(skey.data);
    free(pkey.data);
    free(pdata.data);
    cur->close(cur);
    if (ret != 0 && ret != DB_NOTFOUND) {
        txn->abort(txn);
        if (ret != DB_LOCK_DEADLOCK && ret != DB_LOCK_NOTGRANTED) {
            store_log(st, 0, "expiry sweep: %s", db_strerror(ret));
        }
        return -1;
    }
    if (txn->commit(txn, 0) != 0) {
        return -1;
    }
    atomic_fetch_sub(&st->item_count, (uint64_t)deleted);
    atomic_fetch_sub(&st->item_bytes, bytes);
    atomic_fetch_add(&st->expired_swept, (uint64_t)deleted);
    return deleted;
}

/* Where the flush scan stopped; only the sweeper thread touches it. */
struct flush_scan {
    char key[256];
    size_t nkey;
    bool started;
};

/*
 * Deletes records invalidated by flush_all, SWEEP_BATCH keys per transaction, resuming after
 * the last key seen. Returns 1 when the whole database has been scanned, 0 to continue, -1.
 */
static int sweep_flushed_batch(struct store *st, struct flush_scan *scan, uint32_t now)
{
    DB_TXN *txn;
    DBC *cur;
    DBT k;
    DBT d;
    int seen = 0;
    int deleted = 0;
    uint64_t bytes = 0;
    int ret = st->env->txn_begin(st->env, NULL, &txn, 0);
    if (ret != 0) {
        return -1;
    }
    if ((ret = st->items->cursor(st->items, txn, &cur, 0)) != 0) {
        txn->abort(txn);
        return -1;
    }
    memset(&k, 0, sizeof(k));
    memset(&d, 0, sizeof(d));
    k.flags = DB_DBT_REALLOC;
    d.flags = DB_DBT_REALLOC;
    if (scan->started) {
        k.data = malloc(scan->nkey > 0 ? scan->nkey : 1);
        if (k.data == NULL) {
            cur->close(cur);
            txn->abort(txn);
            return -1;
        }
        memcpy(k.data, scan->key, scan->nkey);
        k.size = (uint32_t)scan->nkey;
        ret = cur->get(cur, &k, &d, DB_SET_RANGE | DB_RMW);
        if (ret == 0 && k.size == scan->nkey && memcmp(k.data, scan->key, scan->nkey) == 0) {
            ret = cur->get(cur, &k, &d, DB_NEXT | DB_RMW);
        }
    } else {
        ret = cur->get(cur, &k, &d, DB_FIRST | DB_RMW);
    }
    while (ret == 0 && seen < SWEEP_BATCH) {
        struct record_header h;
        seen++;
        if (k.size <= sizeof(scan->key)) {
            memcpy(scan->key, k.data, k.size);
            scan->nkey = k.size;
        }
        if (record_decode_header(d.data, d.size, &h) && store_record_dead(st, &h, now)) {
            /* a primary cursor delete also removes the item's expiry index entry */
            if ((ret = cur->del(cur, 0)) != 0) {
                break;
            }
            deleted++;
            bytes += d.size > RECORD_HEADER ? d.size - RECORD_HEADER : 0;
        }
        ret = cur->get(cur, &k, &d, DB_NEXT | DB_RMW);
    }
    free(k.data);
    free(d.data);
    cur->close(cur);
    if (ret != 0 && ret != DB_NOTFOUND) {
        txn->abort(txn);
        return -1;
    }
    if (txn->commit(txn, 0) != 0) {
        return -1;
    }
    scan->started = true;
    atomic_fetch_sub(&st->item_count, (uint64_t)deleted);
    atomic_fetch_sub(&st->item_bytes, bytes);
    atomic_fetch_add(&st->flushed_swept, (uint64_t)deleted);
    return ret == DB_NOTFOUND ? 1 : 0;
}

static void finish_flush_scan(struct store *st)
{
    DB_TXN *txn;
    atomic_store(&st->flush_scan_pending, false);
    if (st->env->txn_begin(st->env, NULL, &txn, 0) != 0) {
        return;
    }
    if (store_write_flush_meta(st, txn) != 0) {
        txn->abort(txn);
        return;
    }
    txn->commit(txn, 0);
}

static void *sweeper_main(void *arg)
{
    struct store *st = arg;
    struct flush_scan scan = {.nkey = 0, .started = false};

    while (!bg_stopping(st)) {
        uint32_t now = (uint32_t)time(NULL);
        int n;
        /* a slave never writes: its master's sweeper deletes, and the deletes replicate (its
         * readers treat expired and flushed items as misses meanwhile) */
        if (!repl_is_master(st->cfg.repl) || bdb_handles_enter(st) != 0) {
            if (bg_wait(st, st->cfg.sweep_interval_ms)) {
                break;
            }
            continue;
        }
        do {
            n = sweep_expired_batch(st, now);
        } while (n == SWEEP_BATCH && !bg_stopping(st));

        uint32_t ft = atomic_load(&st->flush_time);
        if (atomic_load(&st->flush_scan_pending) && (ft == 0 || now + 1 >= ft)) {
            int r;
            do {
                r = sweep_flushed_batch(st, &scan, now);
            } while (r == 0 && !bg_stopping(st));
            if (r == 1) {
                scan.started = false;
                finish_flush_scan(st);
                bdb_handles_leave(st);
                continue;
            }
        }
        bdb_handles_leave(st);
        if (bg_wait(st, st->cfg.sweep_interval_ms)) {
            break;
        }
    }
    return NULL;
}

/* Flushes the log to disk every second and checkpoints every checkpoint_sec. */
static void *checkpointer_main(void *arg)
{
    struct store *st = arg;
    time_t last_checkpoint = time(NULL);

    while (!bg_wait(st, 1000)) {
        if (st->cfg.durability == STORE_DURABILITY_OS) {
            int ret = st->env->log_flush(st->env, NULL);
            if (ret != 0) {
                store_log(st, 0, "log flush: %s", db_strerror(ret));
            }
        }
        store_maintenance_tick(st, time(NULL), &last_checkpoint);
    }
    return NULL;
}

int store_start_threads(struct store *st)
{
    if (pthread_create(&st->sweeper, NULL, sweeper_main, st) != 0) {
        return -1;
    }
    if (pthread_create(&st->checkpointer, NULL, checkpointer_main, st) != 0) {
        pthread_mutex_lock(&st->bg_lock);
        st->bg_stop = true;
        pthread_cond_broadcast(&st->bg_cond);
        pthread_mutex_unlock(&st->bg_lock);
        pthread_join(st->sweeper, NULL);
        return -1;
    }
    st->threads_started = true;
    return 0;
}

void store_stop_threads(struct store *st)
{
    if (!st->threads_started) {
        return;
    }
    pthread_mutex_lock(&st->bg_lock);
    st->bg_stop = true;
    pthread_cond_broadcast(&st->bg_cond);
    pthread_mutex_unlock(&st->bg_lock);
    pthread_join(st->sweeper, NULL);
    pthread_join(st->checkpointer, NULL);
    st->threads_started = false;
}
