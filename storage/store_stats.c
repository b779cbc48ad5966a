/* "stats storage": item counts and Berkeley DB's own figures. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "storage/bdb_env.h"

static void emit_u64(store_stat_fn fn, void *arg, const char *name, uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    fn(arg, name, buf);
}

/* Log files in the data home and their total size. */
static void log_usage(struct store *st, uint64_t *files, uint64_t *bytes)
{
    char **list = NULL;
    *files = 0;
    *bytes = 0;
    if (st->env->log_archive(st->env, &list, DB_ARCH_LOG | DB_ARCH_ABS) != 0 || list == NULL) {
        return;
    }
    for (char **p = list; *p != NULL; p++) {
        struct stat sb;
        (*files)++;
        if (stat(*p, &sb) == 0) {
            *bytes += (uint64_t)sb.st_blocks * 512; /* on disk, not the sparse length */
        }
    }
    free(list);
}

void store_stats(struct store *st, store_stat_fn fn, void *arg)
{
    emit_u64(fn, arg, "items", atomic_load(&st->item_count));
    emit_u64(fn, arg, "item_bytes", atomic_load(&st->item_bytes));
    emit_u64(fn, arg, "total_items", atomic_load(&st->total_items));
    emit_u64(fn, arg, "expired_swept", atomic_load(&st->expired_swept));
    emit_u64(fn, arg, "flushed_swept", atomic_load(&st->flushed_swept));
    emit_u64(fn, arg, "deadlock_retries", atomic_load(&st->deadlock_retries));
    emit_u64(fn, arg, "checkpoints", atomic_load(&st->checkpoints));
    fn(arg, "durability", store_durability_name(st->cfg.durability));
    uint64_t syncs = atomic_load(&st->syncs);
    uint64_t synced = atomic_load(&st->synced_writes);
    char per[32];
    emit_u64(fn, arg, "batches", atomic_load(&st->batches));
    emit_u64(fn, arg, "batched_writes", atomic_load(&st->batched_writes));
    emit_u64(fn, arg, "batches_failed", atomic_load(&st->batches_failed));
    emit_u64(fn, arg, "group_commits", syncs);
    emit_u64(fn, arg, "group_commit_writes", synced);
    snprintf(per, sizeof(per), "%.2f", syncs > 0 ? (double)synced / (double)syncs : 0.0);
    fn(arg, "writes_per_flush", per);
    fn(arg, "engine", DB_VERSION_STRING);

    DB_BTREE_STAT *bs = NULL;
    if (bdb_handles_enter(st) == 0) {
        if (st->items->stat(st->items, NULL, &bs, DB_FAST_STAT) == 0 && bs != NULL) {
            emit_u64(fn, arg, "page_size", bs->bt_pagesize);
            emit_u64(fn, arg, "pages", bs->bt_pagecnt);
            free(bs);
        }
        bdb_handles_leave(st);
    }

    DB_MPOOL_STAT *ms = NULL;
    if (st->env->memp_stat(st->env, &ms, NULL, 0) == 0 && ms != NULL) {
        uint64_t hit = ms->st_cache_hit;
        uint64_t miss = ms->st_cache_miss;
        char rate[32];
        emit_u64(fn, arg, "cache_bytes",
                 (uint64_t)ms->st_gbytes * 1024 * 1024 * 1024 + ms->st_bytes);
        emit_u64(fn, arg, "cache_hit", hit);
        emit_u64(fn, arg, "cache_miss", miss);
        snprintf(rate, sizeof(rate), "%.4f", hit + miss > 0 ? (double)hit / (double)(hit + miss) : 1.0);
        fn(arg, "cache_hit_rate", rate);
        emit_u64(fn, arg, "cache_dirty_pages", ms->st_page_dirty);
        emit_u64(fn, arg, "cache_pages_written", ms->st_page_out);
        free(ms);
    }

    DB_LOG_STAT *ls = NULL;
    if (st->env->log_stat(st->env, &ls, 0) == 0 && ls != NULL) {
        emit_u64(fn, arg, "log_current_file", ls->st_cur_file);
        emit_u64(fn, arg, "log_writes", ls->st_wcount);
        emit_u64(fn, arg, "log_flushes", ls->st_scount);
        free(ls);
    }
    uint64_t files;
    uint64_t bytes;
    log_usage(st, &files, &bytes);
    emit_u64(fn, arg, "log_files", files);
    emit_u64(fn, arg, "log_bytes", bytes);

    DB_TXN_STAT *ts = NULL;
    if (st->env->txn_stat(st->env, &ts, 0) == 0 && ts != NULL) {
        emit_u64(fn, arg, "txn_commits", ts->st_ncommits);
        emit_u64(fn, arg, "txn_aborts", ts->st_naborts);
        free(ts);
    }
    DB_LOCK_STAT *lk = NULL;
    if (st->env->lock_stat(st->env, &lk, 0) == 0 && lk != NULL) {
        emit_u64(fn, arg, "lock_deadlocks", lk->st_ndeadlocks);
        emit_u64(fn, arg, "lock_waits", lk->st_lock_wait);
        free(lk);
    }
}
