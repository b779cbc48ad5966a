/* The store's side of replication: handles that reopen, promotion, write routing, acks. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "replication/repl_bdb.h"
#include "storage/bdb_env.h"

/* How long store_open waits for a first synchronization (or mastership) before it opens the
 * databases it has, so a restarted slave serves reads that are current, not stale. */
#define STARTUP_SYNC_MS 3000
/* Attempts to open the databases when another thread (Berkeley DB's, right after an election)
 * holds a conflicting lock. */
#define OPEN_RETRIES 20
/* CAS values of replication generation g start at g << CAS_GEN_SHIFT (see cas_floor). */
#define CAS_GEN_SHIFT 40

static const char not_ready[] = "this replica has no data from its master yet, try again";

static bool retry_open(int ret)
{
    return ret == DB_LOCK_DEADLOCK || ret == DB_LOCK_NOTGRANTED || ret == DB_REP_HANDLE_DEAD ||
           ret == DB_REP_LOCKOUT;
}

/* Opens the databases; the caller holds handles_lock for writing. */
static int reopen_locked(struct store *st, bool create)
{
    int ret = 0;
    bdb_close_dbs(st);
    for (int attempt = 0; attempt < OPEN_RETRIES; attempt++) {
        ret = bdb_open_dbs(st, create);
        if (!retry_open(ret)) {
            break;
        }
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    atomic_store(&st->handles_ok, ret == 0);
    if (ret == 0) {
        atomic_fetch_add(&st->handle_reopens, 1);
    }
    return ret;
}

int bdb_handles_enter(struct store *st)
{
    if (st->cfg.repl == NULL) {
        return 0;
    }
    for (int attempt = 0; attempt < 3; attempt++) {
        pthread_rwlock_rdlock(&st->handles_lock);
        if (atomic_load(&st->handles_ok)) {
            return 0;
        }
        pthread_rwlock_unlock(&st->handles_lock);
        if (!repl_bdb_can_open(st->cfg.repl)) {
            break;
        }
        pthread_rwlock_wrlock(&st->handles_lock);
        if (!atomic_load(&st->handles_ok)) {
            /* the master creates; a slave waits for the master's databases to arrive */
            int ret = reopen_locked(st, repl_bdb_is_master(st->cfg.repl));
            if (ret != 0) {
                pthread_rwlock_unlock(&st->handles_lock);
                store_set_error_text(not_ready);
                return -1;
            }
        }
        pthread_rwlock_unlock(&st->handles_lock);
    }
    store_set_error_text(not_ready);
    return -1;
}

void bdb_handles_leave(struct store *st)
{
    if (st->cfg.repl != NULL) {
        pthread_rwlock_unlock(&st->handles_lock);
    }
}

void bdb_handles_dead(struct store *st)
{
    if (st->cfg.repl != NULL && atomic_exchange(&st->handles_ok, false)) {
        store_log(st, 2, "replication: database handles died (rollback or internal init); "
                         "reopening them");
    }
}

bool store_writable(struct store *st)
{
    char buf[REPL_HOST_MAX + 64];
    const char *why = repl_write_refusal(st->cfg.repl, buf, sizeof(buf));
    if (why == NULL) {
        return true;
    }
    store_set_error_text(why);
    return false;
}

bool store_commit_acked(struct store *st)
{
    if (st->cfg.repl == NULL || !repl_take_perm_failed()) {
        return true;
    }
    char buf[200];
    snprintf(buf, sizeof(buf), "replication ack policy not met; the write is on the master "
                               "but may not survive a failover");
    store_set_error_text(buf);
    return false;
}

/*
 * Moves the cas sequence to at least generation << CAS_GEN_SHIFT. The sequence is replicated,
 * so a new master continues after every range an earlier master reserved and replicated; but
 * an old master may have handed out values from a range whose reservation never left it (its
 * unacknowledged tail, rolled back when it rejoins) and a client may have read them there.
 * Each election raises the generation, so starting every master's values at its generation's
 * floor keeps them apart. A sequence cannot be set, so it is removed and created again at the
 * floor, in one transaction; the caller then reopens the cached handle.
 */
static int cas_floor(struct store *st, uint32_t generation)
{
    db_seq_t floor = (db_seq_t)((uint64_t)generation << CAS_GEN_SHIFT);
    DB_SEQUENCE *seq = NULL;
    DB_TXN *txn = NULL;
    DBT key;
    db_seq_t v = 0;
    if (generation == 0) {
        return 0;
    }
    memset(&key, 0, sizeof(key));
    key.data = "cas";
    key.size = 3;
    int ret = st->env->txn_begin(st->env, NULL, &txn, 0);
    if (ret != 0) {
        return ret;
    }
    /* uncached: a cached sequence takes no transaction */
    if ((ret = db_sequence_create(&seq, st->meta, 0)) != 0 ||
        (ret = seq->open(seq, txn, &key, 0)) != 0 || (ret = seq->get(seq, txn, 1, &v, 0)) != 0) {
        goto done;
    }
    if (v >= floor) {
        goto done;
    }
    /* DB_SEQUENCE->remove is the record's delete plus a close, but 5.3 skips the close (and
     * leaks the handle) when it fails before the delete, e.g. on a replication lockout while
     * this member takes over; so: close, then delete the record in this transaction. */
    ret = seq->close(seq, 0);
    seq = NULL;
    if (ret != 0 || (ret = st->meta->del(st->meta, txn, &key, 0)) != 0 ||
        (ret = db_sequence_create(&seq, st->meta, 0)) != 0) {
        goto done;
    }
    seq->initial_value(seq, floor);
    ret = seq->open(seq, txn, &key, DB_CREATE | DB_EXCL);
done:
    if (seq != NULL) {
        seq->close(seq, 0);
    }
    if (ret == 0) {
        ret = txn->commit(txn, 0);
        repl_clear_perm_failed(); /* the next client write waits for its own acks */
        if (ret == 0 && v < floor) {
            store_log(st, 2, "replication: cas values continue at %llu (generation %u)",
                      (unsigned long long)floor, generation);
        }
    } else {
        txn->abort(txn);
    }
    return ret;
}

/* Opens the cached cas sequence handle again (on the master), dropping any range it cached
 * in an earlier mastership. */
static int reopen_cas_seq(struct store *st)
{
    DBT key;
    if (st->cas_seq != NULL) {
        st->cas_seq->close(st->cas_seq, 0);
        st->cas_seq = NULL;
    }
    memset(&key, 0, sizeof(key));
    key.data = "cas";
    key.size = 3;
    int ret = db_sequence_create(&st->cas_seq, st->meta, 0);
    if (ret != 0) {
        return ret;
    }
    st->cas_seq->initial_value(st->cas_seq, 1);
    st->cas_seq->set_cachesize(st->cas_seq, 1000);
    return st->cas_seq->open(st->cas_seq, NULL, &key, DB_CREATE | DB_THREAD | DB_AUTO_COMMIT);
}

/* Replication's hook: this member became the master. */
static int hook_become_master(void *arg, uint32_t generation)
{
    struct store *st = arg;
    int ret = 0;
    pthread_rwlock_wrlock(&st->handles_lock);
    /* Open handles stay (reopening them would make the slaves replay the opens, and wait on
     * their own handles): only missing or dead ones are opened, creating what a new group
     * lacks. The sequence handle is replaced so no range cached in an earlier mastership is
     * handed out again. */
    if (!atomic_load(&st->handles_ok)) {
        ret = reopen_locked(st, true);
    }
    if (ret == 0 && (ret = cas_floor(st, generation)) == 0 && (ret = reopen_cas_seq(st)) != 0) {
        atomic_store(&st->handles_ok, false);
    }
    if (ret != 0) {
        atomic_store(&st->handles_ok, false);
        store_log(st, 0, "replication: cannot prepare the store for writes as the new master: "
                         "%s; trying again", db_strerror(ret));
    }
    pthread_rwlock_unlock(&st->handles_lock);
    return ret == 0 ? 0 : -1;
}

/* Replication's hook, after the first writes are allowed: counts what the store holds (the
 * writes of earlier masters reached it as log records, which the counters never saw). */
static void hook_after_master(void *arg)
{
    struct store *st = arg;
    if (bdb_handles_enter(st) != 0) {
        return;
    }
    int ret = bdb_count_items(st);
    bdb_handles_leave(st);
    if (ret != 0) {
        store_log(st, 1, "replication: cannot count the items: %s", db_strerror(ret));
    }
}

#define MEMBER_PREFIX "member:"

static void member_key(DBT *key, char *buf, size_t n, const char *repl_addr)
{
    int len = snprintf(buf, n, MEMBER_PREFIX "%s", repl_addr);
    memset(key, 0, sizeof(*key));
    key->data = buf;
    key->size = (uint32_t)(len < (int)n ? len : (int)n - 1);
}

static bool hook_lookup_client_addr(void *arg, const char *repl_addr, char *out, size_t n)
{
    struct store *st = arg;
    char kbuf[REPL_HOST_MAX + 32];
    char vbuf[REPL_HOST_MAX + 8];
    DBT key;
    DBT data;
    if (bdb_handles_enter(st) != 0) {
        return false;
    }
    member_key(&key, kbuf, sizeof(kbuf), repl_addr);
    memset(&data, 0, sizeof(data));
    data.data = vbuf;
    data.ulen = sizeof(vbuf) - 1;
    data.flags = DB_DBT_USERMEM;
    int ret = st->meta->get(st->meta, NULL, &key, &data, 0);
    bdb_handles_leave(st);
    if (ret == DB_REP_HANDLE_DEAD) {
        bdb_handles_dead(st);
    }
    if (ret != 0) {
        return false;
    }
    vbuf[data.size] = '\0';
    snprintf(out, n, "%s", vbuf);
    return true;
}

/* The master records its client address in meta.db under its replication address, so every
 * slave, which knows the master only by the latter, can name it in its write refusals. */
static int hook_publish_client_addr(void *arg, const char *repl_addr, const char *client_addr)
{
    struct store *st = arg;
    char kbuf[REPL_HOST_MAX + 32];
    DBT key;
    DBT data;
    DB_TXN *txn;
    if (bdb_handles_enter(st) != 0) {
        return -1;
    }
    member_key(&key, kbuf, sizeof(kbuf), repl_addr);
    memset(&data, 0, sizeof(data));
    data.data = (void *)client_addr;
    data.size = (uint32_t)strlen(client_addr);
    int ret = 0;
    for (int attempt = 0; attempt <= STORE_DEADLOCK_RETRIES; attempt++) {
        if ((ret = st->env->txn_begin(st->env, NULL, &txn, 0)) != 0) {
            break;
        }
        if ((ret = st->meta->put(st->meta, txn, &key, &data, 0)) == 0) {
            ret = txn->commit(txn, 0);
            repl_clear_perm_failed(); /* not a client's write: nobody waits for its ack */
            break;
        }
        txn->abort(txn);
        if (ret != DB_LOCK_DEADLOCK && ret != DB_LOCK_NOTGRANTED) {
            break;
        }
    }
    bdb_handles_leave(st);
    return ret == 0 ? 0 : -1;
}

int store_repl_configure(struct store *st, uint32_t *open_flags)
{
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    /* a promotion must not wait behind an endless stream of overlapping readers */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&st->handles_lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    return repl_bdb_configure(st->cfg.repl, st->env, open_flags);
}

int store_repl_start(struct store *st)
{
    static const struct repl_hooks hooks_template = {
        .become_master = hook_become_master,
        .after_master = hook_after_master,
        .lookup_client_addr = hook_lookup_client_addr,
        .publish_client_addr = hook_publish_client_addr,
    };
    struct repl_hooks hooks = hooks_template;
    hooks.arg = st;
    int ret = repl_bdb_start(st->cfg.repl, st->env, &hooks);
    if (ret != 0) {
        return ret;
    }
    if (!repl_bdb_wait_ready(st->cfg.repl, STARTUP_SYNC_MS)) {
        store_log(st, 1, "replication: no master yet after %d ms; serving the local data until "
                         "one is elected", STARTUP_SYNC_MS);
    }
    /* a master's databases come from the promotion hook (which may hold the lock now); a
     * synchronized slave opens what it has; a member with no master yet waits for one */
    if (!repl_bdb_is_master(st->cfg.repl) && repl_bdb_can_open(st->cfg.repl) &&
        pthread_rwlock_trywrlock(&st->handles_lock) == 0) {
        if (!atomic_load(&st->handles_ok) && reopen_locked(st, false) == ENOENT) {
            store_log(st, 1, "replication: no databases here yet; they arrive from the master");
        }
        pthread_rwlock_unlock(&st->handles_lock);
    }
    return 0;
}
