/* memcached's commands as Berkeley DB transactions on the item database. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "protocol/text.h"
#include "replication/repl_bdb.h"
#include "storage/bdb_env.h"
#include "storage/fault.h"

/* memcached's per-item overhead, so -I means the same thing here (see protocol/text.c). */
#define ITEM_OVERHEAD(nkey, flags) (48 + (nkey) + 1 + ((flags) != 0 ? 4 : 0) + 2 + 8)

/* Scratch buffers of one thread: rd for records read, wr for the record being written. */
struct scratch {
    struct store_buf *rd;
    char *wr;
    size_t wr_cap;
};

static _Thread_local char *tl_wr;
static _Thread_local size_t tl_wr_cap;
static _Thread_local uint64_t tl_unsynced;

/* The calling thread's open batch (store_batch_begin), with the counts it will apply. */
struct batch {
    DB_TXN *txn;
    bool failed;
    int64_t count_delta;
    int64_t bytes_delta;
    uint64_t stored;
    uint64_t writes;
};
static _Thread_local struct batch tl_batch;

void store_buf_free(struct store_buf *buf)
{
    free(buf->data);
    buf->data = NULL;
    buf->cap = 0;
    free(tl_wr);
    tl_wr = NULL;
    tl_wr_cap = 0;
}

static int buf_reserve(char **data, size_t *cap, size_t need)
{
    if (*cap >= need) {
        return 0;
    }
    size_t n = *cap < 4096 ? 4096 : *cap;
    while (n < need) {
        n *= 2;
    }
    char *p = realloc(*data, n);
    if (p == NULL) {
        return ENOMEM;
    }
    *data = p;
    *cap = n;
    return 0;
}

static uint32_t now_sec(void)
{
    return (uint32_t)time(NULL);
}

/* The fetched marks (store.h): one bit per hash of (key, cas), 1 MiB in all. */
#define FETCHED_BITS ((size_t)1 << 23)

static size_t fetched_bit(const char *key, size_t nkey, uint64_t cas)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);     /* FNV-1a over the key */
    for (size_t i = 0; i < nkey; i++) {
        h ^= (unsigned char)key[i];
        h *= UINT64_C(0x100000001b3);
    }
    /* splitmix64's finalizer, so that consecutive cas values land far apart */
    h ^= cas * UINT64_C(0x9e3779b97f4a7c15);
    h ^= h >> 30;
    h *= UINT64_C(0xbf58476d1ce4e5b9);
    h ^= h >> 27;
    h *= UINT64_C(0x94d049bb133111eb);
    h ^= h >> 31;
    return (size_t)(h & (FETCHED_BITS - 1));
}

static bool fetched_test(struct store *st, const char *key, size_t nkey, uint64_t cas)
{
    size_t b = fetched_bit(key, nkey, cas);
    uint64_t w = atomic_load_explicit(&st->fetched[b / 64], memory_order_relaxed);
    return (w & ((uint64_t)1 << (b % 64))) != 0;
}

static void fetched_mark(struct store *st, const char *key, size_t nkey, uint64_t cas)
{
    size_t b = fetched_bit(key, nkey, cas);
    uint64_t m = (uint64_t)1 << (b % 64);
    /* test first: marking an already marked item must not bounce the cache line around */
    if ((atomic_load_explicit(&st->fetched[b / 64], memory_order_relaxed) & m) == 0) {
        atomic_fetch_or_explicit(&st->fetched[b / 64], m, memory_order_relaxed);
    }
}

bool store_record_dead(struct store *st, const struct record_header *h, uint32_t now)
{
    struct flush_marks m = {atomic_load_explicit(&st->flush_cas, memory_order_relaxed),
                            atomic_load_explicit(&st->flush_time, memory_order_relaxed), false};
    return record_dead(h, now, &m);
}

static void init_key(DBT *k, const char *key, size_t nkey)
{
    memset(k, 0, sizeof(*k));
    k->data = (void *)key;
    k->size = (uint32_t)nkey;
}

/* Reads the whole record into rd; *len is its size. Returns 0, DB_NOTFOUND or an error. */
static int read_record(DB *db, DB_TXN *txn, struct store_buf *rd, const char *key, size_t nkey,
                       uint32_t flags, size_t *len)
{
    DBT k;
    DBT d;
    int ret;

    init_key(&k, key, nkey);
    memset(&d, 0, sizeof(d));
    for (;;) {
        d.data = rd->data;
        d.ulen = (uint32_t)rd->cap;
        d.flags = DB_DBT_USERMEM;
        ret = BDB_CALL(db->get(db, txn, &k, &d, flags));
        if (ret != DB_BUFFER_SMALL) {
            break;
        }
        if ((ret = buf_reserve(&rd->data, &rd->cap, d.size)) != 0) {
            return ret;
        }
    }
    *len = d.size;
    return ret;
}

static int next_cas(struct store *st, uint64_t *cas)
{
    db_seq_t v;
    int ret = BDB_CALL(st->cas_seq->get(st->cas_seq, NULL, 1, &v, 0));
    if (ret == 0) {
        *cas = (uint64_t)v;
    }
    return ret;
}

/* Writes header + value parts (a, then b) as key's record within txn. */
static int write_record_flags(struct store *st, DB_TXN *txn, const char *key, size_t nkey,
                              const struct record_header *h, const char *a, size_t na,
                              const char *b, size_t nb, uint32_t put_flags)
{
    size_t total = RECORD_HEADER + na + nb;
    int ret = buf_reserve(&tl_wr, &tl_wr_cap, total);
    if (ret != 0) {
        return ret;
    }
    record_encode_header((unsigned char *)tl_wr, h);
    if (na > 0) {
        memcpy(tl_wr + RECORD_HEADER, a, na);
    }
    if (nb > 0) {
        memcpy(tl_wr + RECORD_HEADER + na, b, nb);
    }
    DBT k;
    DBT d;
    init_key(&k, key, nkey);
    memset(&d, 0, sizeof(d));
    d.data = tl_wr;
    d.size = (uint32_t)total;
    return BDB_CALL(st->items->put(st->items, txn, &k, &d, put_flags));
}

static int write_record(struct store *st, DB_TXN *txn, const char *key, size_t nkey,
                        const struct record_header *h, const char *a, size_t na, const char *b,
                        size_t nb)
{
    return write_record_flags(st, txn, key, nkey, h, a, na, b, nb, 0);
}

/* Arguments and results of one command, carried through the retry loop. */
struct op {
    struct store_buf *rd;
    enum store_mode mode;
    const char *key;
    size_t nkey;
    uint32_t flags;
    uint32_t exptime;
    uint64_t cas_in;
    const char *data;
    size_t ndata;
    bool incr;
    uint64_t delta;
    const struct store_delta_args *dargs;
    struct store_delta_result *dres;
    bool touch;
    size_t item_max;
    uint8_t meta_bits;          /* RECORD_META_* of a record set/add/replace/cas writes */
    bool invalidate;            /* ms I: an older cas stores a stale item */
    const struct store_mget_args *margs;
    struct store_mget_result *mres;
    const struct store_mdelete_args *mdargs;

    enum store_status status;
    uint64_t cas_out;
    char *digits;
    size_t ndigits;
    uint64_t value;
    struct store_item *item;
    int64_t count_delta;
    int64_t bytes_delta;
    uint64_t stored;
    bool wrote;                 /* the transaction changed something: fsync mode must sync */
};

typedef int (*op_fn)(struct store *st, DB_TXN *txn, struct op *op);

static bool retryable(int ret)
{
    return ret == DB_LOCK_DEADLOCK || ret == DB_LOCK_NOTGRANTED;
}

static void apply_counts(struct store *st, const struct op *op)
{
    if (op->count_delta != 0) {
        atomic_fetch_add(&st->item_count, (uint64_t)op->count_delta);
    }
    if (op->bytes_delta != 0) {
        atomic_fetch_add(&st->item_bytes, (uint64_t)op->bytes_delta);
    }
    if (op->stored != 0) {
        atomic_fetch_add(&st->total_items, op->stored);
    }
}

/* Runs fn inside the open batch: any failure fails the whole batch (no retry here). */
static enum store_status run_in_batch(struct store *st, op_fn fn, struct op *op)
{
    if (tl_batch.failed) {
        return STORE_ERROR;
    }
    op->count_delta = 0;
    op->bytes_delta = 0;
    op->stored = 0;
    op->wrote = false;
    op->status = STORE_ERROR;
    int ret = fn(st, tl_batch.txn, op);
    if (ret != 0) {
        tl_batch.failed = true;
        store_set_error(ret);
        return STORE_ERROR;
    }
    tl_batch.count_delta += op->count_delta;
    tl_batch.bytes_delta += op->bytes_delta;
    tl_batch.stored += op->stored;
    tl_batch.writes += op->wrote ? 1 : 0;
    return op->status;
}

int store_batch_begin(struct store *st)
{
    DB_TXN *txn;
    if (atomic_load(&st->panicked) || tl_batch.txn != NULL || !store_writable(st)) {
        return -1;
    }
    /* held until store_batch_end: the batch's commands use the handles without entering */
    if (bdb_handles_enter(st) != 0) {
        return -1;
    }
    int ret = BDB_CALL(st->env->txn_begin(st->env, NULL, &txn, 0));
    if (ret != 0) {
        bdb_handles_leave(st);
        return -1;
    }
    memset(&tl_batch, 0, sizeof(tl_batch));
    tl_batch.txn = txn;
    return 0;
}

int store_batch_end(struct store *st)
{
    DB_TXN *txn = tl_batch.txn;
    tl_batch.txn = NULL;
    if (txn == NULL) {
        return -1;
    }
    if (tl_batch.failed) {
        txn->abort(txn);
        bdb_handles_leave(st);
        atomic_fetch_add(&st->batches_failed, 1);
        return -1;
    }
    int fault = store_fault_next();
    repl_clear_perm_failed();
    int ret = fault != 0 ? (txn->abort(txn), fault) : txn->commit(txn, 0);
    bdb_handles_leave(st);
    if (ret != 0) {
        /* a failed commit applied nothing: the commands run again one by one */
        atomic_fetch_add(&st->batches_failed, 1);
        return -1;
    }
    bool acked = store_commit_acked(st);
    struct op sum = {.count_delta = tl_batch.count_delta, .bytes_delta = tl_batch.bytes_delta,
                     .stored = tl_batch.stored};
    apply_counts(st, &sum);
    if (st->cfg.durability != STORE_DURABILITY_NONE) {
        tl_unsynced += tl_batch.writes;
    }
    atomic_fetch_add(&st->batches, 1);
    atomic_fetch_add(&st->batched_writes, tl_batch.writes);
    return acked ? 0 : STORE_BATCH_UNACKED;
}

/* Set when the calling thread's last Berkeley DB call found the handles dead (replication):
 * the caller reopens them outside bdb_handles_enter and tries again. */
static _Thread_local bool tl_handles_dead;

/* Replication: when a write lost its handles or the master role in flight, records why. */
static void note_repl_error(struct store *st, int ret)
{
    if (st->cfg.repl == NULL) {
        return;
    }
    if (ret == DB_REP_HANDLE_DEAD) {
        tl_handles_dead = true;
    } else if (ret == EACCES) {
        store_writable(st); /* demoted since the check: say where the master is */
    }
}

/* Runs fn in a transaction, retrying lost deadlocks a bounded number of times. */
static enum store_status run_txn_entered(struct store *st, op_fn fn, struct op *op)
{
    for (int attempt = 0;; attempt++) {
        DB_TXN *txn;
        op->count_delta = 0;
        op->bytes_delta = 0;
        op->stored = 0;
        op->wrote = false;
        op->status = STORE_ERROR;
        int ret = BDB_CALL(st->env->txn_begin(st->env, NULL, &txn, 0));
        if (retryable(ret) && attempt < STORE_DEADLOCK_RETRIES) {
            continue;
        }
        if (ret != 0) {
            store_note_error(st, ret);
            store_log(st, 0, "txn_begin: %s", db_strerror(ret));
            return STORE_ERROR;
        }
        ret = fn(st, txn, op);
        if (ret == 0) {
            /* an injected commit failure must still end the transaction */
            int fault = store_fault_next();
            repl_clear_perm_failed();
            ret = fault != 0 ? (txn->abort(txn), fault) : txn->commit(txn, 0);
            if (ret == 0) {
                apply_counts(st, op);
                if (op->wrote && st->cfg.durability != STORE_DURABILITY_NONE) {
                    tl_unsynced++;
                }
                /* committed here, but a reply of success would promise more than happened */
                return store_commit_acked(st) ? op->status : STORE_ERROR;
            }
            store_note_error(st, ret);
            store_log(st, 0, "commit: %s", db_strerror(ret));
            return STORE_ERROR;
        }
        txn->abort(txn);
        if (retryable(ret) && attempt < STORE_DEADLOCK_RETRIES) {
            atomic_fetch_add(&st->deadlock_retries, 1);
            continue;
        }
        store_note_error(st, ret);
        note_repl_error(st, ret);
        if (!retryable(ret) && st->cfg.repl == NULL) {
            store_log(st, 0, "storage operation failed: %s", db_strerror(ret));
        }
        return STORE_ERROR;
    }
}

/* Runs fn in its own transaction, or in the calling thread's batch. Replication: only on the
 * master, and with handles that died in a rollback reopened. */
static enum store_status run_txn(struct store *st, op_fn fn, struct op *op)
{
    if (atomic_load(&st->panicked)) {
        store_set_error(DB_RUNRECOVERY);
        return STORE_ERROR;
    }
    if (!store_writable(st)) {
        return STORE_ERROR;
    }
    if (tl_batch.txn != NULL) {
        return run_in_batch(st, fn, op);
    }
    for (int attempt = 0;; attempt++) {
        if (bdb_handles_enter(st) != 0) {
            return STORE_ERROR;
        }
        tl_handles_dead = false;
        enum store_status s = run_txn_entered(st, fn, op);
        bdb_handles_leave(st);
        if (!tl_handles_dead || attempt >= 2) {
            return s;
        }
        bdb_handles_dead(st);
    }
}

/* Reads key for update (write-locked). *alive tells whether a live item is there. */
static int read_for_update(struct store *st, DB_TXN *txn, struct op *op, struct record_header *h,
                           size_t *len, bool *exists, bool *alive)
{
    int ret = read_record(st->items, txn, op->rd, op->key, op->nkey, DB_RMW, len);
    *exists = false;
    *alive = false;
    if (ret == DB_NOTFOUND) {
        return 0;
    }
    if (ret != 0) {
        return ret;
    }
    *exists = true;
    if (!record_decode_header((const unsigned char *)op->rd->data, *len, h)) {
        store_log(st, 1, "unreadable record for a key of %zu bytes; treating it as missing",
                  op->nkey);
        return 0;
    }
    *alive = !store_record_dead(st, h, now_sec());
    return 0;
}

/*
 * set tries an insert first: new keys (a fan-out's inboxes) cost one btree descent. Only an
 * existing key is read (its size only: ulen 0) to keep the byte count, then overwritten.
 */
static int op_set(struct store *st, DB_TXN *txn, struct op *op)
{
    struct record_header h = {op->flags, op->exptime, now_sec(), 0, op->meta_bits};
    int ret = next_cas(st, &h.cas);
    if (ret != 0) {
        return ret;
    }
    ret = write_record_flags(st, txn, op->key, op->nkey, &h, op->data, op->ndata, NULL, 0,
                             DB_NOOVERWRITE);
    int64_t old_bytes = 0;
    bool exists = (ret == DB_KEYEXIST);
    if (exists) {
        DBT k;
        DBT d;
        init_key(&k, op->key, op->nkey);
        memset(&d, 0, sizeof(d));
        d.flags = DB_DBT_USERMEM;
        ret = BDB_CALL(st->items->get(st->items, txn, &k, &d, DB_RMW));
        if (ret != 0 && ret != DB_BUFFER_SMALL) {
            return ret == DB_NOTFOUND ? DB_LOCK_DEADLOCK : ret; /* cannot happen: retry */
        }
        old_bytes = d.size > RECORD_HEADER ? (int64_t)(d.size - RECORD_HEADER) : 0;
        ret = write_record(st, txn, op->key, op->nkey, &h, op->data, op->ndata, NULL, 0);
    }
    if (ret != 0) {
        return ret;
    }
    op->wrote = true;
    op->count_delta = exists ? 0 : 1;
    op->bytes_delta = (int64_t)op->ndata - old_bytes;
    op->cas_out = h.cas;
    op->stored = 1;
    op->status = STORE_STORED;
    return 0;
}

static int op_update(struct store *st, DB_TXN *txn, struct op *op)
{
    if (op->mode == STORE_MODE_SET) {
        return op_set(st, txn, op);
    }
    struct record_header old;
    size_t len;
    bool exists;
    bool alive;
    int ret = read_for_update(st, txn, op, &old, &len, &exists, &alive);
    if (ret != 0) {
        return ret;
    }
    size_t old_n = exists ? len - RECORD_HEADER : 0;
    const char *old_v = op->rd->data + RECORD_HEADER;
    bool stale_write = false;

    switch (op->mode) {
    case STORE_MODE_ADD:
        if (alive) {
            op->status = STORE_NOT_STORED;
            return 0;
        }
        break;
    case STORE_MODE_REPLACE:
    case STORE_MODE_APPEND:
    case STORE_MODE_PREPEND:
        if (!alive) {
            op->status = STORE_NOT_STORED;
            return 0;
        }
        if (op->cas_in != 0 && old.cas != op->cas_in) {
            op->status = STORE_EXISTS;
            return 0;
        }
        break;
    case STORE_MODE_CAS:
        if (!alive) {
            op->status = STORE_NOT_FOUND;
            return 0;
        }
        if (old.cas != op->cas_in) {
            /* ms I: a writer holding an older unique still stores, as a stale value */
            stale_write = op->invalidate && op->cas_in != 0 && op->cas_in < old.cas;
            if (!stale_write) {
                op->status = STORE_EXISTS;
                return 0;
            }
        }
        break;
    case STORE_MODE_SET:
        break;
    }

    struct record_header h = {op->flags, op->exptime, now_sec(), 0, op->meta_bits};
    if (stale_write) {
        /* memcached keeps the item's exptime and its win token for the stale value */
        h.exptime = old.exptime;
        h.meta |= RECORD_META_STALE | (old.meta & RECORD_META_WON);
    }
    const char *a = op->data;
    size_t na = op->ndata;
    const char *b = NULL;
    size_t nb = 0;
    if (op->mode == STORE_MODE_APPEND || op->mode == STORE_MODE_PREPEND) {
        /* memcached keeps the stored item's flags and exptime; its new item has no meta
         * state (not even a base64 key's) */
        h.flags = old.flags;
        h.exptime = old.exptime;
        h.meta = 0;
        if (ITEM_OVERHEAD(op->nkey, h.flags) + old_n + op->ndata > op->item_max) {
            op->status = STORE_TOO_LARGE;
            return 0;
        }
        if (op->mode == STORE_MODE_APPEND) {
            a = old_v;
            na = old_n;
            b = op->data;
            nb = op->ndata;
        } else {
            b = old_v;
            nb = old_n;
        }
    }
    if ((ret = next_cas(st, &h.cas)) != 0) {
        return ret;
    }
    if ((ret = write_record(st, txn, op->key, op->nkey, &h, a, na, b, nb)) != 0) {
        return ret;
    }
    op->wrote = true;
    op->count_delta = exists ? 0 : 1;
    op->bytes_delta = (int64_t)(na + nb) - (int64_t)old_n;
    op->cas_out = h.cas;
    op->stored = 1;
    op->status = STORE_STORED;
    return 0;
}

enum store_status store_update(struct store *st, struct store_buf *buf, enum store_mode mode,
                               const char *key, size_t nkey, uint32_t flags, uint32_t exptime,
                               uint64_t cas_in, const char *data, size_t ndata,
                               uint64_t *cas_out)
{
    struct op op = {.rd = buf, .mode = mode, .key = key, .nkey = nkey, .flags = flags,
                    .exptime = exptime, .cas_in = cas_in, .data = data, .ndata = ndata,
                    .item_max = st->cfg.item_max};
    enum store_status s = run_txn(st, op_update, &op);
    if (s == STORE_STORED && cas_out != NULL) {
        *cas_out = op.cas_out;
    }
    return s;
}

static void fill_item(struct store_item *item, const struct record_header *h, const char *rec,
                      size_t len)
{
    item->flags = h->flags;
    item->exptime = h->exptime;
    item->cas = h->cas;
    item->value = rec + RECORD_HEADER;
    item->nvalue = len - RECORD_HEADER;
}

/* gat: read and set the new exptime in one transaction; the cas does not change (memcached). */
static int op_get_touch(struct store *st, DB_TXN *txn, struct op *op)
{
    struct record_header h;
    size_t len;
    bool exists;
    bool alive;
    int ret = read_for_update(st, txn, op, &h, &len, &exists, &alive);
    if (ret != 0) {
        return ret;
    }
    if (!alive) {
        op->status = STORE_NOT_FOUND;
        return 0;
    }
    h.exptime = op->exptime;
    char *rec = op->rd->data;
    ret = write_record(st, txn, op->key, op->nkey, &h, rec + RECORD_HEADER, len - RECORD_HEADER,
                       NULL, 0);
    if (ret != 0) {
        return ret;
    }
    op->wrote = true;
    if (op->item != NULL) {
        fill_item(op->item, &h, rec, len);
    }
    fetched_mark(st, op->key, op->nkey, h.cas);    /* memcached's touch counts as a fetch */
    op->status = STORE_OK;
    return 0;
}

static enum store_status get_entered(struct store *st, struct store_buf *buf, const char *key,
                                     size_t nkey, struct store_item *item);

enum store_status store_get(struct store *st, struct store_buf *buf, const char *key,
                            size_t nkey, bool touch, uint32_t exptime, struct store_item *item)
{
    if (touch) {
        struct op op = {.rd = buf, .key = key, .nkey = nkey, .exptime = exptime, .item = item};
        return run_txn(st, op_get_touch, &op);
    }
    if (tl_batch.txn != NULL) {
        return get_entered(st, buf, key, nkey, item);
    }
    for (int attempt = 0;; attempt++) {
        if (bdb_handles_enter(st) != 0) {
            return STORE_ERROR;
        }
        tl_handles_dead = false;
        enum store_status s = get_entered(st, buf, key, nkey, item);
        bdb_handles_leave(st);
        if (!tl_handles_dead || attempt >= 2) {
            return s;
        }
        bdb_handles_dead(st);
    }
}

/* A plain read, inside bdb_handles_enter (or a batch). */
static enum store_status get_entered(struct store *st, struct store_buf *buf, const char *key,
                                     size_t nkey, struct store_item *item)
{
    for (int attempt = 0;; attempt++) {
        size_t len;
        /* inside a batch the read must use its transaction: a read of our own uncommitted
         * write by another locker would wait on this very thread forever */
        int ret = read_record(st->items, tl_batch.txn, buf, key, nkey, 0, &len);
        if (ret == DB_NOTFOUND) {
            return STORE_NOT_FOUND;
        }
        if (ret != 0 && tl_batch.txn != NULL) {
            tl_batch.failed = true;
            store_set_error(ret);
            return STORE_ERROR;
        }
        if (retryable(ret) && attempt < STORE_DEADLOCK_RETRIES) {
            continue;
        }
        if (ret != 0) {
            store_note_error(st, ret);
            note_repl_error(st, ret);
            if (st->cfg.repl == NULL || (ret != DB_REP_HANDLE_DEAD && ret != DB_REP_LOCKOUT)) {
                store_log(st, 0, "get: %s", db_strerror(ret));
            }
            return STORE_ERROR;
        }
        struct record_header h;
        if (!record_decode_header((const unsigned char *)buf->data, len, &h) ||
            store_record_dead(st, &h, now_sec())) {
            return STORE_NOT_FOUND;
        }
        fill_item(item, &h, buf->data, len);
        fetched_mark(st, key, nkey, h.cas);
        return STORE_OK;
    }
}

enum store_status store_touch(struct store *st, struct store_buf *buf, const char *key,
                              size_t nkey, uint32_t exptime)
{
    struct op op = {.rd = buf, .key = key, .nkey = nkey, .exptime = exptime, .item = NULL};
    return run_txn(st, op_get_touch, &op);
}

/* A miss in a creating incr (binary incr, meta ma N): the item starts as 'initial'. */
static int delta_create(struct store *st, DB_TXN *txn, struct op *op, size_t old_n, bool exists)
{
    const struct store_delta_args *a = op->dargs;
    struct store_delta_result *r = op->dres;
    struct record_header h = {0, a->create_exptime, now_sec(), 0, 0};
    r->value = a->initial;
    r->ndigits = proto_u64_to_dec(r->digits, a->initial);
    r->digits[r->ndigits] = '\0';
    int ret = next_cas(st, &h.cas);
    if (ret == 0) {
        ret = write_record(st, txn, op->key, op->nkey, &h, r->digits, r->ndigits, NULL, 0);
    }
    if (ret != 0) {
        return ret;
    }
    op->wrote = true;
    op->count_delta = exists ? 0 : 1;
    op->bytes_delta = (int64_t)r->ndigits - (int64_t)old_n;
    op->stored = 1;
    r->cas = h.cas;
    r->created = true;
    r->exptime = h.exptime;
    r->old_exptime = 0;
    op->status = STORE_OK;
    return 0;
}

static int op_delta(struct store *st, DB_TXN *txn, struct op *op)
{
    const struct store_delta_args *a = op->dargs;
    struct store_delta_result *r = op->dres;
    struct record_header h;
    size_t len;
    bool exists;
    bool alive;
    int ret = read_for_update(st, txn, op, &h, &len, &exists, &alive);
    if (ret != 0) {
        return ret;
    }
    size_t old_n = exists ? len - RECORD_HEADER : 0;
    if (!alive) {
        if (a->create) {
            return delta_create(st, txn, op, old_n, exists);
        }
        op->status = STORE_NOT_FOUND;
        return 0;
    }
    if (old_n == 0) {
        /* memcached refuses an empty value before it looks at the cas */
        op->status = STORE_NON_NUMERIC;
        return 0;
    }
    if (a->cas_in != 0 && a->cas_in != h.cas) {
        op->status = STORE_EXISTS;
        return 0;
    }
    size_t padded;
    if (!proto_text_apply_delta(op->rd->data + RECORD_HEADER, old_n, a->incr, a->delta,
                                r->digits, &r->ndigits, &padded, &r->value)) {
        op->status = STORE_NON_NUMERIC;
        return 0;
    }
    r->digits[r->ndigits] = '\0';
    /* memcached rewrites a shorter number in place, padded with spaces to the old length */
    char small[64];
    char *value = padded <= sizeof(small) ? small : malloc(padded);
    if (value == NULL) {
        return ENOMEM;
    }
    memcpy(value, r->digits, r->ndigits);
    memset(value + r->ndigits, ' ', padded - r->ndigits);
    size_t nvalue = padded;
    h.mtime = now_sec();
    r->old_exptime = h.exptime;
    if (r->ndigits > old_n) {
        h.meta = 0; /* memcached writes a longer number into a new item, without meta state */
    }
    if (a->set_exptime) {
        h.exptime = a->exptime;
    }
    ret = next_cas(st, &h.cas);
    if (ret == 0) {
        ret = write_record(st, txn, op->key, op->nkey, &h, value, nvalue, NULL, 0);
    }
    if (value != small) {
        free(value);
    }
    if (ret != 0) {
        return ret;
    }
    op->wrote = true;
    op->bytes_delta = (int64_t)nvalue - (int64_t)old_n;
    r->cas = h.cas;
    r->created = false;
    r->exptime = h.exptime;
    op->status = STORE_OK;
    return 0;
}

enum store_status store_delta(struct store *st, struct store_buf *buf, const char *key,
                              size_t nkey, const struct store_delta_args *args,
                              struct store_delta_result *res)
{
    struct op op = {.rd = buf, .key = key, .nkey = nkey, .dargs = args, .dres = res};
    return run_txn(st, op_delta, &op);
}

static int op_delete(struct store *st, DB_TXN *txn, struct op *op)
{
    struct record_header h;
    size_t len;
    bool exists;
    bool alive;
    int ret = read_for_update(st, txn, op, &h, &len, &exists, &alive);
    if (ret != 0) {
        return ret;
    }
    if (!exists) {
        op->status = STORE_NOT_FOUND;
        return 0;
    }
    if (alive && op->cas_in != 0 && op->cas_in != h.cas) {
        op->status = STORE_EXISTS;
        return 0;
    }
    DBT k;
    init_key(&k, op->key, op->nkey);
    if ((ret = BDB_CALL(st->items->del(st->items, txn, &k, 0))) != 0) {
        return ret;
    }
    op->wrote = true;
    op->count_delta = -1;
    op->bytes_delta = -(int64_t)(len - RECORD_HEADER);
    op->status = alive ? STORE_OK : STORE_NOT_FOUND;
    return 0;
}

enum store_status store_delete(struct store *st, struct store_buf *buf, const char *key,
                               size_t nkey, uint64_t cas_in)
{
    struct op op = {.rd = buf, .key = key, .nkey = nkey, .cas_in = cas_in};
    return run_txn(st, op_delete, &op);
}

/* ---- meta commands ---------------------------------------------------------------------- */

/*
 * An mg's steps over an item, as memcached applies its flags in request order: returns the
 * resulting exptime and whether this reader wins the token (*won).
 */
static uint32_t mget_walk(const struct store_mget_args *a, bool created, uint8_t meta,
                          uint32_t exptime, bool *won)
{
    bool w = false;
    bool token_out = (meta & RECORD_META_WON) != 0;

    for (size_t i = 0; i < a->nsteps; i++) {
        const struct store_mget_step *s = &a->steps[i];
        if (s->flag == 'T') {
            exptime = s->exptime;
        } else if (s->flag == 'N' && created) {
            exptime = s->exptime;
            w = true;
        } else if (s->flag == 'R' && !token_out && !created && exptime != 0 &&
                   exptime < s->exptime) {
            w = true;   /* it expires before the recache time: this reader refreshes it */
        }
    }
    if ((meta & RECORD_META_STALE) && !token_out) {
        w = true;       /* the first reader of a stale item refreshes it */
    }
    *won = w && !a->no_win;
    return exptime;
}

static bool mget_has_ttl(const struct store_mget_args *a)
{
    for (size_t i = 0; i < a->nsteps; i++) {
        if (a->steps[i].flag == 'T') {
            return true;
        }
    }
    return false;
}

static void mget_fill(struct store_mget_result *r, const struct record_header *h,
                      const char *value, size_t nvalue)
{
    r->item.flags = h->flags;
    r->item.exptime = h->exptime;
    r->item.cas = h->cas;
    r->item.value = value;
    r->item.nvalue = nvalue;
    r->mtime = h->mtime;
}

/* The writing mg: vivify, T, or a win token to record. */
static int op_meta_get(struct store *st, DB_TXN *txn, struct op *op)
{
    const struct store_mget_args *a = op->margs;
    struct store_mget_result *r = op->mres;
    struct record_header h;
    size_t len;
    bool exists;
    bool alive;
    int ret = read_for_update(st, txn, op, &h, &len, &exists, &alive);
    if (ret != 0) {
        return ret;
    }
    size_t old_n = exists ? len - RECORD_HEADER : 0;
    bool created = false;
    if (!alive) {
        if (!a->vivify) {
            op->status = STORE_NOT_FOUND;
            return 0;
        }
        /* memcached links an empty item with flags 0 that never expires until N's TTL is
         * applied below; it is not marked as having a base64 key */
        h = (struct record_header){0, 0, now_sec(), 0, 0};
        if ((ret = next_cas(st, &h.cas)) != 0) {
            return ret;
        }
        created = true;
    }
    bool won;
    uint8_t meta_found = h.meta;
    uint32_t before = h.exptime;
    uint32_t exptime = mget_walk(a, created, h.meta, h.exptime, &won);
    const char *value = created ? "" : op->rd->data + RECORD_HEADER;
    size_t nvalue = created ? 0 : old_n;
    if (created || won || exptime != h.exptime) {
        h.exptime = exptime;
        if (won) {
            h.meta |= RECORD_META_WON;
        }
        ret = write_record(st, txn, op->key, op->nkey, &h, value, nvalue, NULL, 0);
        if (ret != 0) {
            return ret;
        }
        op->wrote = true;
        if (created) {
            op->count_delta = exists ? 0 : 1;
            op->bytes_delta = -(int64_t)old_n;
            op->stored = 1;
        }
    }
    mget_fill(r, &h, value, nvalue);
    r->exptime_before = created ? 0 : before;
    r->meta = meta_found;
    r->created = created;
    r->won = won;
    op->status = STORE_OK;
    return 0;
}

enum store_status store_meta_get(struct store *st, struct store_buf *buf, const char *key,
                                 size_t nkey, const struct store_mget_args *args,
                                 struct store_mget_result *res)
{
    memset(res, 0, sizeof(*res));
    /* a read that changes nothing needs no transaction (a T always writes, as gat does) */
    for (int attempt = 0; !mget_has_ttl(args); attempt++) {
        size_t len;
        int ret = read_record(st->items, tl_batch.txn, buf, key, nkey, 0, &len);
        if (ret != 0 && ret != DB_NOTFOUND) {
            if (tl_batch.txn != NULL) {
                tl_batch.failed = true;
                store_set_error(ret);
                return STORE_ERROR;
            }
            if (retryable(ret) && attempt < STORE_DEADLOCK_RETRIES) {
                continue;
            }
            store_note_error(st, ret);
            store_log(st, 0, "get: %s", db_strerror(ret));
            return STORE_ERROR;
        }
        struct record_header h;
        if (ret == DB_NOTFOUND ||
            !record_decode_header((const unsigned char *)buf->data, len, &h) ||
            store_record_dead(st, &h, now_sec())) {
            if (!args->vivify) {
                return STORE_NOT_FOUND;
            }
            break;
        }
        bool won;
        mget_walk(args, false, h.meta, h.exptime, &won);
        if (won) {
            break;      /* the token must be recorded: do it again under a write lock */
        }
        mget_fill(res, &h, buf->data + RECORD_HEADER, len - RECORD_HEADER);
        res->exptime_before = h.exptime;
        res->meta = h.meta;
        res->fetched = fetched_test(st, key, nkey, h.cas);
        if (!args->no_bump) {
            fetched_mark(st, key, nkey, h.cas);
        }
        return STORE_OK;
    }
    struct op op = {.rd = buf, .key = key, .nkey = nkey, .margs = args, .mres = res};
    enum store_status s = run_txn(st, op_meta_get, &op);
    if (s == STORE_OK) {
        res->fetched = !res->created && fetched_test(st, key, nkey, res->item.cas);
        if (!args->no_bump) {
            fetched_mark(st, key, nkey, res->item.cas);
        }
    }
    return s;
}

enum store_status store_meta_set(struct store *st, struct store_buf *buf, const char *key,
                                 size_t nkey, const struct store_mset_args *args,
                                 uint64_t *cas_out)
{
    struct op op = {.rd = buf, .mode = args->mode, .key = key, .nkey = nkey,
                    .flags = args->flags, .exptime = args->exptime, .cas_in = args->cas_in,
                    .data = args->data, .ndata = args->ndata, .item_max = st->cfg.item_max,
                    .meta_bits = args->key_binary ? RECORD_META_KEY_BINARY : 0,
                    .invalidate = args->invalidate};
    enum store_status s = run_txn(st, op_update, &op);
    if (s == STORE_TOO_LARGE) {
        s = STORE_NOT_STORED;   /* memcached's append fails to allocate the bigger item */
    }
    if (s == STORE_STORED && cas_out != NULL) {
        *cas_out = op.cas_out;
    }
    return s;
}

static int op_meta_delete(struct store *st, DB_TXN *txn, struct op *op)
{
    const struct store_mdelete_args *a = op->mdargs;
    struct record_header h;
    size_t len;
    bool exists;
    bool alive;
    int ret = read_for_update(st, txn, op, &h, &len, &exists, &alive);
    if (ret != 0) {
        return ret;
    }
    if (!alive) {
        op->status = STORE_NOT_FOUND;   /* a dead record is the sweeper's to remove */
        return 0;
    }
    if (a->has_cas && h.cas != a->cas) {
        op->status = STORE_EXISTS;
        return 0;
    }
    if (a->invalidate) {
        /* the value stays, stale, with a new unique; the next reader gets the token */
        op->value = h.cas;
        if ((ret = next_cas(st, &h.cas)) != 0) {
            return ret;
        }
        if (a->set_exptime) {
            h.exptime = a->exptime;
        }
        h.meta = (uint8_t)((h.meta | RECORD_META_STALE) & ~RECORD_META_WON);
        ret = write_record(st, txn, op->key, op->nkey, &h, op->rd->data + RECORD_HEADER,
                           len - RECORD_HEADER, NULL, 0);
        if (ret != 0) {
            return ret;
        }
        op->cas_out = h.cas;
    } else {
        DBT k;
        init_key(&k, op->key, op->nkey);
        if ((ret = BDB_CALL(st->items->del(st->items, txn, &k, 0))) != 0) {
            return ret;
        }
        op->count_delta = -1;
        op->bytes_delta = -(int64_t)(len - RECORD_HEADER);
    }
    op->wrote = true;
    op->status = STORE_OK;
    return 0;
}

enum store_status store_meta_delete(struct store *st, struct store_buf *buf, const char *key,
                                    size_t nkey, const struct store_mdelete_args *args)
{
    struct op op = {.rd = buf, .key = key, .nkey = nkey, .mdargs = args};
    enum store_status s = run_txn(st, op_meta_delete, &op);
    if (s == STORE_OK && args->invalidate && fetched_test(st, key, nkey, op.value)) {
        fetched_mark(st, key, nkey, op.cas_out);    /* memcached's item keeps its mark */
    }
    return s;
}

static pthread_mutex_t flush_lock = PTHREAD_MUTEX_INITIALIZER;

static int op_flush(struct store *st, DB_TXN *txn, struct op *op)
{
    int ret = store_write_flush_meta(st, txn);
    op->wrote = true;
    op->status = ret == 0 ? STORE_OK : STORE_ERROR;
    return ret;
}

enum store_status store_flush_all(struct store *st, uint32_t at_abs)
{
    if (!store_writable(st)) {
        return STORE_ERROR;
    }
    pthread_mutex_lock(&flush_lock);
    uint64_t old_cas = atomic_load(&st->flush_cas);
    uint32_t old_time = atomic_load(&st->flush_time);
    if (at_abs == 0) {
        uint64_t cas;
        int ret = bdb_handles_enter(st) != 0 ? EAGAIN : next_cas(st, &cas);
        if (ret != EAGAIN) {
            bdb_handles_leave(st);
        }
        if (ret != 0) {
            pthread_mutex_unlock(&flush_lock);
            if (ret != EAGAIN) {
                store_set_error(ret);
            }
            return STORE_ERROR;
        }
        /* every item written so far has a smaller cas; an immediate flush also cancels a
         * pending delayed one, as in memcached */
        atomic_store(&st->flush_cas, cas);
        atomic_store(&st->flush_time, 0);
    } else {
        atomic_store(&st->flush_time, at_abs);
    }
    atomic_store(&st->flush_scan_pending, true);
    struct op op = {0};
    enum store_status s = run_txn(st, op_flush, &op);
    if (s != STORE_OK) {
        atomic_store(&st->flush_cas, old_cas);
        atomic_store(&st->flush_time, old_time);
    }
    pthread_mutex_unlock(&flush_lock);
    pthread_mutex_lock(&st->bg_lock);
    pthread_cond_broadcast(&st->bg_cond);
    pthread_mutex_unlock(&st->bg_lock);
    return s;
}

static int key_cmp(const char *a, size_t na, const char *b, size_t nb)
{
    int c = memcmp(a, b, na < nb ? na : nb);
    if (c != 0) {
        return c;
    }
    return na < nb ? -1 : na > nb ? 1 : 0;
}

/*
 * One walk of store_range from (start, left_open) on. Returns 0 or the Berkeley DB error that
 * stopped it; *sent counts the items passed to fn, and after each one resume/nresume hold its
 * key so a retry can go on after it.
 */
static int range_walk(struct store *st, const char *start, size_t nstart, const char *end,
                      size_t nend, bool left_open, bool right_open, uint32_t max,
                      store_range_fn fn, void *arg, uint32_t *sent, char *resume,
                      size_t *nresume, bool *stopped)
{
    DBC *cur;
    DBT k;
    DBT d;
    char kbuf[PROTO_KEY_MAX + 1];
    uint32_t now = now_sec();
    int ret = st->items->cursor(st->items, NULL, &cur, 0);

    if (ret != 0) {
        return ret;
    }
    memset(&k, 0, sizeof(k));
    memset(&d, 0, sizeof(d));
    memcpy(kbuf, start, nstart);
    k.data = kbuf;
    k.size = (uint32_t)nstart;
    k.ulen = sizeof(kbuf);
    k.flags = DB_DBT_USERMEM;
    d.flags = DB_DBT_REALLOC;
    ret = BDB_CALL(cur->get(cur, &k, &d, nstart == 0 ? DB_FIRST : DB_SET_RANGE));
    while (ret == 0 && *sent < max) {
        if (end != NULL) {
            int c_end = key_cmp(k.data, k.size, end, nend);
            if (c_end > 0 || (right_open && c_end == 0)) {
                break;
            }
        }
        bool skip = left_open && key_cmp(k.data, k.size, start, nstart) == 0;
        struct record_header h;
        if (!skip && record_decode_header(d.data, d.size, &h) && !store_record_dead(st, &h, now)) {
            struct store_item item;
            fill_item(&item, &h, d.data, d.size);
            (*sent)++;
            memcpy(resume, k.data, k.size);
            *nresume = k.size;
            if (!fn(arg, k.data, k.size, &item)) {
                *stopped = true;
                break;
            }
        }
        ret = BDB_CALL(cur->get(cur, &k, &d, DB_NEXT));
    }
    free(d.data);
    int cret = cur->close(cur);
    if (ret == 0 || ret == DB_NOTFOUND) {
        ret = cret;
    }
    return ret == DB_NOTFOUND ? 0 : ret;
}

enum store_status store_range(struct store *st, struct store_buf *buf, const char *start,
                              size_t nstart, const char *end, size_t nend, bool left_open,
                              bool right_open, uint32_t max, store_range_fn fn, void *arg)
{
    char resume[PROTO_KEY_MAX + 1];
    size_t nresume = 0;
    uint32_t sent = 0;
    bool stopped = false;
    int ret;

    (void)buf;
    if (bdb_handles_enter(st) != 0) {
        return STORE_ERROR;
    }
    for (int attempt = 0;; attempt++) {
        /* a retry goes on after the last item fn saw, so fn never sees one twice */
        ret = sent == 0 ? range_walk(st, start, nstart, end, nend, left_open, right_open, max,
                                     fn, arg, &sent, resume, &nresume, &stopped)
                        : range_walk(st, resume, nresume, end, nend, true, right_open, max,
                                     fn, arg, &sent, resume, &nresume, &stopped);
        if (!retryable(ret) || stopped || attempt >= STORE_DEADLOCK_RETRIES) {
            break;
        }
    }
    bdb_handles_leave(st);
    if (ret == DB_REP_HANDLE_DEAD) {
        bdb_handles_dead(st);
    }
    if (ret != 0) {
        store_set_error(ret);
        return STORE_ERROR;
    }
    return STORE_OK;
}

uint64_t store_item_count(struct store *st)
{
    return atomic_load(&st->item_count);
}

uint64_t store_item_bytes(struct store *st)
{
    return atomic_load(&st->item_bytes);
}

uint64_t store_total_items(struct store *st)
{
    return atomic_load(&st->total_items);
}

int store_open(const struct store_config *cfg, struct store **out)
{
    struct store *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return -1;
    }
    st->cfg = *cfg;
    st->fetched = calloc(FETCHED_BITS / 64, sizeof(*st->fetched));
    if (st->fetched == NULL) {
        free(st);
        return -1;
    }
    pthread_mutex_init(&st->bg_lock, NULL);
    pthread_cond_init(&st->bg_cond, NULL);
    if (bdb_env_open(st) != 0) {
        bdb_env_close(st);
        free(st->fetched);
        free(st);
        return -1;
    }
    if (store_start_threads(st) != 0) {
        bdb_env_close(st);
        free(st->fetched);
        free(st);
        return -1;
    }
    *out = st;
    return 0;
}

uint64_t store_unsynced_writes(void)
{
    return tl_unsynced;
}

/*
 * os durability: Berkeley DB can flush its log buffer only with an fsync, so the buffer is
 * pushed to the OS by committing one tiny transaction with DB_TXN_WRITE_NOSYNC, which writes
 * the log up to its commit record: every earlier commit of the batch rides along. Each thread
 * writes its own marker key so the markers never contend.
 */
static int log_write_to_os(struct store *st)
{
    static _Atomic unsigned next_id;
    static _Thread_local unsigned id;
    static _Thread_local bool have_id;
    char kbuf[32];
    unsigned char v = 1;
    DB_TXN *txn;

    if (!have_id) {
        id = atomic_fetch_add(&next_id, 1);
        have_id = true;
    }
    int n = snprintf(kbuf, sizeof(kbuf), "logmark:%u", id);
    DBT k;
    DBT d;
    init_key(&k, kbuf, (size_t)n);
    memset(&d, 0, sizeof(d));
    d.data = &v;
    d.size = 1;
    int ret = 0;
    if (bdb_handles_enter(st) != 0) {
        return EAGAIN;
    }
    for (int attempt = 0; attempt <= STORE_DEADLOCK_RETRIES; attempt++) {
        ret = st->env->txn_begin(st->env, NULL, &txn, 0);
        if (ret != 0) {
            break;
        }
        ret = st->meta->put(st->meta, txn, &k, &d, 0);
        if (ret == 0) {
            ret = txn->commit(txn, DB_TXN_WRITE_NOSYNC);
            /* the writes it covers had their own acks; this marker carries no data */
            repl_clear_perm_failed();
            break;
        }
        txn->abort(txn);
        if (!retryable(ret)) {
            break;
        }
    }
    bdb_handles_leave(st);
    return ret;
}

int store_sync(struct store *st)
{
    if (tl_unsynced == 0) {
        return 0;
    }
    int ret = st->cfg.durability == STORE_DURABILITY_FSYNC
                  ? BDB_CALL(st->env->log_flush(st->env, NULL))
                  : log_write_to_os(st);
    if (ret != 0) {
        store_note_error(st, ret);
        store_log(st, 0, "log flush: %s", db_strerror(ret));
        return -1;
    }
    atomic_fetch_add(&st->syncs, 1);
    atomic_fetch_add(&st->synced_writes, tl_unsynced);
    tl_unsynced = 0;
    return 0;
}

const char *store_durability_name(enum store_durability d)
{
    switch (d) {
    case STORE_DURABILITY_FSYNC:
        return "fsync";
    case STORE_DURABILITY_OS:
        return "os";
    case STORE_DURABILITY_NONE:
        return "none";
    }
    return "unknown";
}

bool store_durability_parse(const char *name, enum store_durability *out)
{
    static const enum store_durability all[] = {STORE_DURABILITY_FSYNC, STORE_DURABILITY_OS,
                                                STORE_DURABILITY_NONE};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (strcmp(name, store_durability_name(all[i])) == 0) {
            *out = all[i];
            return true;
        }
    }
    return false;
}

void store_close(struct store *st)
{
    store_stop_threads(st);
    if (!atomic_load(&st->panicked)) {
        store_checkpoint(st);
    }
    bdb_env_close(st);
    pthread_mutex_destroy(&st->bg_lock);
    pthread_cond_destroy(&st->bg_cond);
    free(st->fetched);
    free(st);
}
