/* Checkpoints, log archival, write-ahead trickle and Berkeley DB's own statistics. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "replication/repl.h"
#include "storage/bdb_env.h"
#include "storage/fault.h"

/* Dirty pages memp_trickle keeps clean, in percent of the cache: a checkpoint then has little
 * left to write, so it does not stall writers. */
#define TRICKLE_PERCENT 20

bool store_needs_recovery(struct store *st)
{
    return atomic_load(&st->panicked);
}

/* Copies src to dst and syncs it: the fallback when the archive is on another filesystem. */
static int copy_file(const char *src, const char *dst)
{
    char buf[65536];
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        return -1;
    }
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (out < 0) {
        close(in);
        return -1;
    }
    ssize_t n;
    int rc = 0;
    while ((n = read(in, buf, sizeof(buf))) > 0) {
        if (write(out, buf, (size_t)n) != n) {
            rc = -1;
            break;
        }
    }
    if (n < 0 || fsync(out) != 0) {
        rc = -1;
    }
    close(in);
    if (close(out) != 0) {
        rc = -1;
    }
    return rc;
}

int store_archive_logs(struct store *st, unsigned *n)
{
    char **list = NULL;
    uint32_t env_flags = 0;
    *n = 0;
    /* mcstore-admin backup is copying logs: removing one now would break its copy */
    if (st->env->get_flags(st->env, &env_flags) == 0 && (env_flags & DB_HOTBACKUP_IN_PROGRESS)) {
        return 0;
    }
    int ret = BDB_CALL(st->env->log_archive(st->env, &list, DB_ARCH_ABS));
    if (ret != 0) {
        store_note_error(st, ret);
        store_log(st, 0, "log_archive: %s", db_strerror(ret));
        return -1;
    }
    if (list == NULL) {
        return 0;
    }
    int rc = 0;
    for (char **p = list; *p != NULL; p++) {
        if (st->cfg.log_archive_dir != NULL) {
            char path[4096];
            char *copy = strdup(*p);
            if (copy == NULL) {
                rc = -1;
                break;
            }
            snprintf(path, sizeof(path), "%s/%s", st->cfg.log_archive_dir, basename(copy));
            free(copy);
            if (rename(*p, path) != 0 && (errno != EXDEV || copy_file(*p, path) != 0 ||
                                          unlink(*p) != 0)) {
                store_log(st, 0, "cannot archive %s to %s: %s", *p, path, strerror(errno));
                rc = -1;
                continue;
            }
        } else if (unlink(*p) != 0) {
            store_log(st, 1, "cannot remove log %s: %s", *p, strerror(errno));
            continue;
        }
        (*n)++;
    }
    free(list);
    atomic_fetch_add(&st->logs_archived, *n);
    if (rc != 0) {
        store_set_error(EIO);
    }
    return rc;
}

int store_checkpoint(struct store *st)
{
    /* forced: otherwise an idle store keeps the logs since the last checkpoint began */
    int ret = BDB_CALL(st->env->txn_checkpoint(st->env, 0, 0, DB_FORCE));
    if (ret != 0) {
        store_note_error(st, ret);
        store_log(st, 0, "checkpoint: %s", db_strerror(ret));
        return -1;
    }
    atomic_fetch_add(&st->checkpoints, 1);
    unsigned n;
    return store_archive_logs(st, &n);
}

/* Log bytes written since the last checkpoint. */
static uint64_t log_since_checkpoint(struct store *st)
{
    DB_LOG_STAT *ls = NULL;
    uint64_t v = 0;
    if (st->env->log_stat(st->env, &ls, 0) == 0 && ls != NULL) {
        v = (uint64_t)ls->st_wc_mbytes * 1024 * 1024 + ls->st_wc_bytes;
        free(ls);
    }
    return v;
}

/* A slave learns of flush_all from its master's replicated markers: it reads them again each
 * tick (the master sets them when the command runs). */
static void refresh_flush_marks(struct store *st)
{
    struct flush_marks m;
    if (st->cfg.repl == NULL || repl_is_master(st->cfg.repl) || bdb_handles_enter(st) != 0) {
        return;
    }
    if (bdb_read_flush_marks(st->meta, &m) == 0) {
        atomic_store(&st->flush_cas, m.cas);
        atomic_store(&st->flush_time, m.time);
        atomic_store(&st->flush_scan_pending, m.scan_pending);
    }
    bdb_handles_leave(st);
}

void store_maintenance_tick(struct store *st, time_t now, time_t *last_checkpoint)
{
    if (atomic_load(&st->panicked)) {
        return;
    }
    refresh_flush_marks(st);
    int nwrote = 0;
    if (st->env->memp_trickle(st->env, TRICKLE_PERCENT, &nwrote) == 0 && nwrote > 0) {
        atomic_fetch_add(&st->trickle_pages, (uint64_t)nwrote);
    }
    bool by_time = st->cfg.checkpoint_sec > 0 && now - *last_checkpoint >= st->cfg.checkpoint_sec;
    bool by_size = st->cfg.checkpoint_kb > 0 &&
                   log_since_checkpoint(st) >= (uint64_t)st->cfg.checkpoint_kb * 1024;
    /* a slave checkpoints when it applies its master's checkpoint records */
    bool slave = st->cfg.repl != NULL && !repl_is_master(st->cfg.repl);
    if ((by_time || by_size) && !slave) {
        store_checkpoint(st);
        *last_checkpoint = now;
    }
}

static void emit(store_stat_fn fn, void *arg, const char *name, uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    fn(arg, name, buf);
}

void store_bdb_stats(struct store *st, store_stat_fn fn, void *arg)
{
    DB_LOG_STAT *ls = NULL;
    if (st->env->log_stat(st->env, &ls, 0) == 0 && ls != NULL) {
        emit(fn, arg, "log_buffer_bytes", ls->st_lg_bsize);
        emit(fn, arg, "log_file_max_bytes", ls->st_lg_size);
        emit(fn, arg, "log_bytes_written", (uint64_t)ls->st_w_mbytes * 1024 * 1024 + ls->st_w_bytes);
        emit(fn, arg, "log_bytes_since_checkpoint",
             (uint64_t)ls->st_wc_mbytes * 1024 * 1024 + ls->st_wc_bytes);
        emit(fn, arg, "log_writes", ls->st_wcount);
        emit(fn, arg, "log_syncs", ls->st_scount);
        emit(fn, arg, "log_max_commits_per_flush", ls->st_maxcommitperflush);
        emit(fn, arg, "log_current_file", ls->st_cur_file);
        emit(fn, arg, "log_current_offset", ls->st_cur_offset);
        free(ls);
    }
    DB_TXN_STAT *ts = NULL;
    if (st->env->txn_stat(st->env, &ts, 0) == 0 && ts != NULL) {
        emit(fn, arg, "txn_last_checkpoint_time", (uint64_t)ts->st_time_ckp);
        emit(fn, arg, "txn_begins", ts->st_nbegins);
        emit(fn, arg, "txn_commits", ts->st_ncommits);
        emit(fn, arg, "txn_aborts", ts->st_naborts);
        emit(fn, arg, "txn_active", ts->st_nactive);
        emit(fn, arg, "txn_max_active", ts->st_maxnactive);
        free(ts);
    }
    DB_LOCK_STAT *lk = NULL;
    if (st->env->lock_stat(st->env, &lk, 0) == 0 && lk != NULL) {
        emit(fn, arg, "lock_locks", lk->st_nlocks);
        emit(fn, arg, "lock_max_locks", lk->st_maxnlocks);
        emit(fn, arg, "lock_requests", lk->st_nrequests);
        emit(fn, arg, "lock_waits", lk->st_lock_wait);
        emit(fn, arg, "lock_deadlocks", lk->st_ndeadlocks);
        free(lk);
    }
    DB_MPOOL_STAT *ms = NULL;
    if (st->env->memp_stat(st->env, &ms, NULL, 0) == 0 && ms != NULL) {
        emit(fn, arg, "mpool_bytes", (uint64_t)ms->st_gbytes * 1024 * 1024 * 1024 + ms->st_bytes);
        emit(fn, arg, "mpool_pages", ms->st_pages);
        emit(fn, arg, "mpool_dirty_pages", ms->st_page_dirty);
        emit(fn, arg, "mpool_hits", ms->st_cache_hit);
        emit(fn, arg, "mpool_misses", ms->st_cache_miss);
        emit(fn, arg, "mpool_pages_read", ms->st_page_in);
        emit(fn, arg, "mpool_pages_written", ms->st_page_out);
        emit(fn, arg, "mpool_trickle_writes", ms->st_page_trickle);
        emit(fn, arg, "mpool_dirty_evictions", ms->st_rw_evict);
        free(ms);
    }
    emit(fn, arg, "mcstore_checkpoints", atomic_load(&st->checkpoints));
    emit(fn, arg, "mcstore_logs_archived", atomic_load(&st->logs_archived));
    emit(fn, arg, "mcstore_needs_recovery", atomic_load(&st->panicked) ? 1 : 0);
}
