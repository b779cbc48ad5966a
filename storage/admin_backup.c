/* Hot backup, restore and verification of a data home (mcstore-admin backup|restore|verify). */
#include "config.h"

#include <db.h>

#include "storage/admin.h"
#include "storage/bdb_env.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PATH_CAP ADMIN_PATH_MAX
#define ADMIN_CACHE_BYTES (64u * 1024 * 1024)
#define BACKUP_ATTEMPTS 3

/* ---- small helpers ---------------------------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s);
    size_t m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* A database file of ours: *.db, but not Berkeley DB's region files (__db.001...). */
static bool is_db_name(const char *name)
{
    return ends_with(name, ".db") && strncmp(name, "__db", 4) != 0 && name[0] != '.';
}

/* Copies path into out without trailing slashes. False when empty or too long. */
static bool clean_path(const char *path, char *out, size_t cap)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') {
        n--;
    }
    if (n == 0 || n >= cap) {
        return false;
    }
    memcpy(out, path, n);
    out[n] = '\0';
    return true;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct name_list {
    char **names;
    size_t n;
};

static void names_free(struct name_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->names[i]);
    }
    free(l->names);
    l->names = NULL;
    l->n = 0;
}

/* The regular files of dir accepted by keep(), sorted; *total gets their size. 0 or errno. */
static int list_files(const char *dir, bool (*keep)(const char *), struct name_list *out,
                      uint64_t *total)
{
    memset(out, 0, sizeof(*out));
    if (total != NULL) {
        *total = 0;
    }
    DIR *d = opendir(dir);
    if (d == NULL) {
        return errno;
    }
    size_t cap = 0;
    int ret = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!keep(e->d_name)) {
            continue;
        }
        char path[PATH_CAP];
        struct stat sb;
        admin_join_path(path, sizeof(path), dir, e->d_name);
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            continue;
        }
        if (out->n == cap) {
            cap = cap == 0 ? 16 : cap * 2;
            char **p = realloc(out->names, cap * sizeof(*p));
            if (p == NULL) {
                ret = ENOMEM;
                break;
            }
            out->names = p;
        }
        if ((out->names[out->n] = strdup(e->d_name)) == NULL) {
            ret = ENOMEM;
            break;
        }
        out->n++;
        if (total != NULL) {
            *total += (uint64_t)sb.st_size;
        }
    }
    closedir(d);
    if (ret != 0) {
        names_free(out);
        return ret;
    }
    if (out->n > 1) {
        qsort(out->names, out->n, sizeof(char *), cmp_names);
    }
    return 0;
}

static bool keep_db(const char *name)
{
    return is_db_name(name);
}

static bool keep_log(const char *name)
{
    return admin_is_log_name(name);
}

static bool keep_restorable(const char *name)
{
    return is_db_name(name) || admin_is_log_name(name);
}

static bool keep_any(const char *name)
{
    return strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

/* True when a and b are the same directory. */
static bool same_dir(const char *a, const char *b)
{
    struct stat sa;
    struct stat sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

static uint32_t log_number(const char *name)
{
    return (uint32_t)strtoul(name + 4, NULL, 10);
}

/* The log files Berkeley DB knows of in the environment, oldest first. 0 or a BDB error. */
static int env_logs(struct admin_ctx *ctx, DB_ENV *env, char ***list)
{
    int ret = env->log_archive(env, list, DB_ARCH_LOG);
    if (ret != 0) {
        admin_errf(ctx, "cannot list the log files: %s", db_strerror(ret));
    }
    return ret;
}

/* Opens dir's environment privately with catastrophic recovery, checkpoints and closes it:
 * the databases in dir are then consistent with the log. remove_logs drops the log files that
 * recovery no longer needs. */
static int recover_fatal(struct admin_ctx *ctx, const char *dir, bool remove_logs)
{
    DB_ENV *env;
    int ret = admin_env_create(ctx, &env);
    if (ret != 0) {
        return ret;
    }
    env->set_cachesize(env, 0, ADMIN_CACHE_BYTES, 1);
    env->set_lg_max(env, 16 * 1024 * 1024);
    ret = env->open(env, dir,
                    DB_CREATE | DB_INIT_TXN | DB_INIT_LOG | DB_INIT_LOCK | DB_INIT_MPOOL |
                        DB_RECOVER_FATAL | DB_PRIVATE,
                    0640);
    if (ret != 0) {
        admin_errf(ctx, "catastrophic recovery in %s failed: %s", dir, db_strerror(ret));
        env->close(env, 0);
        return ret;
    }
    if ((ret = env->txn_checkpoint(env, 0, 0, DB_FORCE)) != 0) {
        admin_errf(ctx, "checkpoint in %s failed: %s", dir, db_strerror(ret));
    } else if (remove_logs && (ret = env->log_archive(env, NULL, DB_ARCH_REMOVE)) != 0) {
        admin_errf(ctx, "cannot remove unneeded log files in %s: %s", dir, db_strerror(ret));
    }
    int t = env->close(env, 0);
    if (t != 0 && ret == 0) {
        ret = t;
        admin_errf(ctx, "closing the environment in %s: %s", dir, db_strerror(t));
    }
    return ret;
}

/* Recovery writes the zeros of a log file's unused tail for real; copying the logs once more
 * (admin_copy_file skips zero runs) gives the backup back its holes. */
static int resparsify_logs(struct admin_ctx *ctx, const char *dir)
{
    struct name_list logs;
    int ret = list_files(dir, keep_log, &logs, NULL);
    if (ret != 0) {
        admin_errf(ctx, "cannot read %s: %s", dir, strerror(ret));
        return ret;
    }
    for (size_t i = 0; i < logs.n && ret == 0; i++) {
        char path[PATH_CAP];
        char sparse[PATH_CAP];
        admin_join_path(path, sizeof(path), dir, logs.names[i]);
        admin_join_path(sparse, sizeof(sparse), dir, "sparse.tmp");
        unlink(sparse);
        if ((ret = admin_copy_file(ctx, path, sparse, NULL)) == 0 && rename(sparse, path) != 0) {
            ret = errno;
            admin_errf(ctx, "cannot rename %s: %s", sparse, strerror(ret));
        }
    }
    names_free(&logs);
    return ret;
}

/* ---- backup ----------------------------------------------------------------------------- */

/* What the backup callbacks write to: one database file at a time. */
struct backup_state {
    struct admin_progress prog;
    int fd;
    char path[PATH_CAP];
};

static int bk_open(DB_ENV *env, const char *dbname, const char *target, void **handle)
{
    struct admin_ctx *ctx = env->app_private;
    struct backup_state *bs = ctx->op;
    admin_join_path(bs->path, sizeof(bs->path), target, dbname);
    bs->fd = open(bs->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (bs->fd < 0) {
        int err = errno;
        admin_errf(ctx, "cannot create %s: %s", bs->path, strerror(err));
        return err;
    }
    *handle = bs;
    return 0;
}

static int bk_write(DB_ENV *env, u_int32_t off_gbytes, u_int32_t off_bytes, u_int32_t size,
                    u_int8_t *buf, void *handle)
{
    struct admin_ctx *ctx = env->app_private;
    struct backup_state *bs = handle;
    off_t off = (off_t)off_gbytes * 1073741824 + (off_t)off_bytes;
    size_t left = size;
    while (left > 0) {
        ssize_t w = pwrite(bs->fd, buf, left, off);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            int err = errno;
            admin_errf(ctx, "cannot write %s: %s", bs->path, strerror(err));
            return err;
        }
        buf += w;
        off += w;
        left -= (size_t)w;
    }
    bs->prog.bytes += size;
    admin_report(ctx, &bs->prog);
    if (admin_interrupted(ctx)) {
        return EINTR;
    }
    return 0;
}

static int bk_close(DB_ENV *env, const char *dbname, void *handle)
{
    (void)dbname;
    struct admin_ctx *ctx = env->app_private;
    struct backup_state *bs = handle;
    int ret = 0;
    if (bs->fd < 0) {
        return 0;
    }
    if (fsync(bs->fd) != 0) {
        ret = errno;
        admin_errf(ctx, "cannot sync %s: %s", bs->path, strerror(ret));
    }
    if (close(bs->fd) != 0 && ret == 0) {
        ret = errno;
        admin_errf(ctx, "cannot write %s: %s", bs->path, strerror(ret));
    }
    bs->fd = -1;
    return ret;
}

/* Checks the backup destination. *exists / *replace_old say what the final rename must do. */
static enum admin_status check_backup_dir(struct admin_ctx *ctx, const char *dir, bool replace,
                                          bool *exists, bool *replace_old)
{
    struct stat sb;
    *exists = false;
    *replace_old = false;
    if (stat(dir, &sb) != 0) {
        if (errno == ENOENT) {
            return ADMIN_OK;
        }
        admin_errf(ctx, "cannot use %s: %s", dir, strerror(errno));
        return ADMIN_ERR;
    }
    if (!S_ISDIR(sb.st_mode)) {
        admin_errf(ctx, "%s exists and is not a directory", dir);
        return ADMIN_ERR;
    }
    *exists = true;
    DIR *d = opendir(dir);
    if (d == NULL) {
        admin_errf(ctx, "cannot read %s: %s", dir, strerror(errno));
        return ADMIN_ERR;
    }
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        n += keep_any(e->d_name) ? 1 : 0;
    }
    closedir(d);
    if (n == 0) {
        return ADMIN_OK;
    }
    char marker[PATH_CAP];
    admin_join_path(marker, sizeof(marker), dir, ADMIN_BACKUP_MARKER);
    if (!replace) {
        admin_errf(ctx, "%s exists and is not empty; give a new directory, or --replace to "
                   "replace an earlier backup there", dir);
        return ADMIN_ERR;
    }
    if (stat(marker, &sb) != 0) {
        admin_errf(ctx, "%s is not an mcstore backup (no %s); refusing to replace it", dir,
                   ADMIN_BACKUP_MARKER);
        return ADMIN_ERR;
    }
    *replace_old = true;
    return ADMIN_OK;
}

static int write_marker(struct admin_ctx *ctx, const char *tmp, const char *home,
                        uint32_t first_log, uint32_t last_log)
{
    char path[PATH_CAP];
    char abs_home[PATH_MAX];
    char when[64];
    time_t now = time(NULL);
    struct tm tm;

    admin_join_path(path, sizeof(path), tmp, ADMIN_BACKUP_MARKER);
    if (realpath(home, abs_home) == NULL) {
        if (snprintf(abs_home, sizeof(abs_home), "%s", home) >= (int)sizeof(abs_home)) {
            abs_home[sizeof(abs_home) - 1] = '\0';
        }
    }
    gmtime_r(&now, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        admin_errf(ctx, "cannot create %s: %s", path, strerror(errno));
        return errno;
    }
    fprintf(f, "mcstore-backup 1\nhome %s\ncreated %s\nlogs %u-%u\n", abs_home, when,
            first_log, last_log);
    int ret = 0;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        ret = errno;
    }
    if (fclose(f) != 0 && ret == 0) {
        ret = errno;
    }
    if (ret != 0) {
        admin_errf(ctx, "cannot write %s: %s", path, strerror(ret));
    }
    return ret;
}

/*
 * The copy itself, with the environment open (joined or locked). Berkeley DB's documented hot
 * backup: copy the databases (DB_ENV->dbbackup reads them through the cache, so no page is
 * torn), then every log file from the oldest one that existed when the copy began. Recovery
 * of the copy then brings it to the state of the last log record copied, which includes every
 * write committed before the backup started.
 *
 * DB_ENV->backup() would do the same, but it also tries to open every other file of the home
 * as a database, mcstore.lock included, and closing that descriptor would silently drop our
 * fcntl lock (POSIX locks are per process). So the databases are copied one by one.
 */
static enum admin_status copy_home(struct admin_ctx *ctx, struct admin_env *ae, const char *tmp,
                                   bool checkpoint, uint32_t *first_log, uint32_t *last_log,
                                   bool *logs_removed)
{
    DB_ENV *env = ae->env;
    enum admin_status st = ADMIN_ERR;
    struct backup_state bs;
    struct name_list dbs = {NULL, 0};
    char **before = NULL;
    char **after = NULL;
    int autoremove = 0;
    bool autoremove_off = false;
    bool hotbackup_set = false;
    int ret;

    memset(&bs, 0, sizeof(bs));
    bs.fd = -1;
    if (checkpoint && (ret = env->txn_checkpoint(env, 0, 0, 0)) != 0) {
        admin_errf(ctx, "checkpoint of %s failed: %s", ae->home, db_strerror(ret));
        goto done;
    }
    /* Tell Berkeley DB a hot backup runs (shared counter), and keep the server's automatic
     * log removal from deleting a log file the copy still needs. Both are shared-region
     * settings; they are put back below. */
    if ((ret = env->set_flags(env, DB_HOTBACKUP_IN_PROGRESS, 1)) != 0) {
        admin_errf(ctx, "cannot mark the hot backup in progress: %s", db_strerror(ret));
        goto done;
    }
    hotbackup_set = true;
    if (env->log_get_config(env, DB_LOG_AUTO_REMOVE, &autoremove) == 0 && autoremove) {
        if ((ret = env->log_set_config(env, DB_LOG_AUTO_REMOVE, 0)) != 0) {
            admin_errf(ctx, "cannot pause log file removal: %s", db_strerror(ret));
            goto done;
        }
        autoremove_off = true;
    }
    if (env_logs(ctx, env, &before) != 0) {
        goto done;
    }
    if (before == NULL || before[0] == NULL) {
        admin_errf(ctx, "%s has no log files; is it a Berkeley DB environment?", ae->home);
        goto done;
    }
    *first_log = log_number(before[0]);

    uint64_t db_bytes = 0;
    if ((ret = list_files(ae->home, keep_db, &dbs, &db_bytes)) != 0) {
        admin_errf(ctx, "cannot read %s: %s", ae->home, strerror(ret));
        goto done;
    }
    struct name_list logs_now;
    uint64_t log_bytes = 0;
    if (list_files(ae->home, keep_log, &logs_now, &log_bytes) == 0) {
        names_free(&logs_now);
    }
    bs.prog.bytes_total = db_bytes + log_bytes;
    bs.prog.items_total = 0;

    ctx->op = &bs;
    if ((ret = env->set_backup_callbacks(env, bk_open, bk_write, bk_close)) != 0) {
        admin_errf(ctx, "cannot set the backup callbacks: %s", db_strerror(ret));
        goto done;
    }
    for (size_t i = 0; i < dbs.n; i++) {
        admin_infof(ctx, "copying %s", dbs.names[i]);
        ret = env->dbbackup(env, dbs.names[i], tmp, 0);
        if (bs.fd >= 0) {
            close(bs.fd);
            bs.fd = -1;
        }
        if (ret != 0) {
            if (!admin_interrupted(ctx) && ret != EINTR) {
                char prev[sizeof(ctx->err)];
                snprintf(prev, sizeof(prev), "%s", ctx->err);
                admin_errf(ctx, "cannot copy %s: %s%s%s", dbs.names[i], db_strerror(ret),
                           prev[0] != '\0' ? " / " : "", prev);
            }
            goto done;
        }
        bs.prog.items++;
    }

    /* Everything committed so far goes to the log files before they are listed and copied. */
    if ((ret = env->log_flush(env, NULL)) != 0) {
        admin_errf(ctx, "cannot flush the log: %s", db_strerror(ret));
        goto done;
    }
    if (env_logs(ctx, env, &after) != 0) {
        goto done;
    }
    if (after == NULL || after[0] == NULL || log_number(after[0]) > *first_log) {
        *logs_removed = true;
        admin_errf(ctx, "log file log.%010u was removed while the backup ran", *first_log);
        goto done;
    }
    uint32_t expect = log_number(after[0]);
    for (size_t i = 0; after[i] != NULL; i++, expect++) {
        if (log_number(after[i]) != expect) {
            admin_errf(ctx, "log file log.%010u is missing from %s; cannot make a consistent "
                       "backup", expect, ae->home);
            goto done;
        }
        char from[PATH_CAP];
        char to[PATH_CAP];
        admin_join_path(from, sizeof(from), ae->home, after[i]);
        admin_join_path(to, sizeof(to), tmp, after[i]);
        admin_infof(ctx, "copying %s", after[i]);
        if ((ret = admin_copy_file(ctx, from, to, &bs.prog)) != 0) {
            if (ret == ENOENT) {
                *logs_removed = true;
                admin_errf(ctx, "log file %s was removed while the backup ran", after[i]);
            }
            goto done;
        }
        *last_log = log_number(after[i]);
    }
    st = ADMIN_OK;
done:
    ctx->op = NULL;
    if (bs.fd >= 0) {
        close(bs.fd);
    }
    if (autoremove_off && (ret = env->log_set_config(env, DB_LOG_AUTO_REMOVE, 1)) != 0) {
        admin_infof(ctx, "warning: cannot turn automatic log removal back on (%s); it comes "
                    "back at the next server start", db_strerror(ret));
    }
    if (hotbackup_set) {
        env->set_flags(env, DB_HOTBACKUP_IN_PROGRESS, 0);
    }
    free(before);
    free(after);
    names_free(&dbs);
    admin_report(ctx, &bs.prog);
    return st;
}

enum admin_status admin_backup(struct admin_ctx *ctx, const char *dir_arg, bool replace,
                               bool checkpoint)
{
    char dir[ADMIN_DIR_MAX];
    char tmp[PATH_CAP];
    char old[PATH_CAP];
    bool exists;
    bool replace_old;
    struct admin_env ae;
    uint32_t first_log = 0;
    uint32_t last_log = 0;

    ctx->err[0] = '\0';
    if (!clean_path(dir_arg, dir, sizeof(dir))) {
        admin_errf(ctx, "bad backup directory '%s'", dir_arg);
        return ADMIN_ERR;
    }
    if (same_dir(dir, ctx->home)) {
        admin_errf(ctx, "the backup directory %s is the data home itself", dir);
        return ADMIN_ERR;
    }
    enum admin_status st = check_backup_dir(ctx, dir, replace, &exists, &replace_old);
    if (st != ADMIN_OK) {
        return st;
    }
    if (snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", dir, (long)getpid()) >= (int)sizeof(tmp) ||
        snprintf(old, sizeof(old), "%s.old-%ld", dir, (long)getpid()) >= (int)sizeof(old)) {
        admin_errf(ctx, "backup directory path too long");
        return ADMIN_ERR;
    }
    if (mkdir(tmp, 0750) != 0) {
        admin_errf(ctx, "cannot create %s: %s", tmp, strerror(errno));
        return ADMIN_ERR;
    }

    /* A server checkpoint may archive a log file the copy still needs (the server's own
     * archival does not wait for backups); that is detected, and the copy starts over. */
    for (int attempt = 1;; attempt++) {
        bool logs_removed = false;
        st = admin_env_open(ctx, &ae, ADMIN_READ, "backup");
        if (st == ADMIN_OK) {
            admin_infof(ctx, "%s %s", ae.joined ? "joined the running server's environment in"
                                                : "no server running; locked and recovered",
                        ae.home);
            st = copy_home(ctx, &ae, tmp, checkpoint, &first_log, &last_log, &logs_removed);
        }
        admin_env_close(&ae);
        if (st == ADMIN_OK || !logs_removed) {
            break;
        }
        if (attempt == BACKUP_ATTEMPTS) {
            char prev[sizeof(ctx->err)];
            snprintf(prev, sizeof(prev), "%s", ctx->err);
            admin_errf(ctx, "%s, in each of %d attempts: the server archives log files faster "
                       "than the backup copies them (raise --checkpoint-kb for the backup)",
                       prev, BACKUP_ATTEMPTS);
            break;
        }
        admin_infof(ctx, "warning: the server removed a log file the copy needed (%s); "
                    "starting the copy again (attempt %d of %d)", ctx->err, attempt + 1,
                    BACKUP_ATTEMPTS);
        if (admin_remove_dir(tmp) != 0 || mkdir(tmp, 0750) != 0) {
            admin_errf(ctx, "cannot empty %s: %s", tmp, strerror(errno));
            return ADMIN_ERR;
        }
    }
    if (st != ADMIN_OK) {
        goto fail;
    }

    admin_infof(ctx, "recovering the copy (catastrophic recovery in %s)", tmp);
    if (recover_fatal(ctx, tmp, true) != 0 || resparsify_logs(ctx, tmp) != 0 ||
        write_marker(ctx, tmp, ctx->home, first_log, last_log) != 0) {
        goto fail;
    }
    if (admin_fsync_dir(tmp) != 0) {
        admin_errf(ctx, "cannot sync %s: %s", tmp, strerror(errno));
        goto fail;
    }
    if (replace_old && rename(dir, old) != 0) {
        admin_errf(ctx, "cannot move the earlier backup %s aside: %s", dir, strerror(errno));
        goto fail;
    }
    if (rename(tmp, dir) != 0) {
        admin_errf(ctx, "cannot rename %s to %s: %s", tmp, dir, strerror(errno));
        if (replace_old && rename(old, dir) != 0) {
            admin_infof(ctx, "warning: the earlier backup is now in %s", old);
        }
        goto fail;
    }
    if (replace_old && admin_remove_dir(old) != 0) {
        admin_infof(ctx, "warning: cannot remove the earlier backup in %s", old);
    }
    char parent[PATH_CAP];
    memcpy(parent, dir, strlen(dir) + 1);
    char *slash = strrchr(parent, '/');
    if (slash == NULL) {
        snprintf(parent, sizeof(parent), ".");
    } else if (slash == parent) {
        parent[1] = '\0';
    } else {
        *slash = '\0';
    }
    admin_fsync_dir(parent);
    return ADMIN_OK;
fail:
    if (admin_remove_dir(tmp) != 0) {
        admin_infof(ctx, "warning: cannot remove the partial backup %s", tmp);
    }
    return st == ADMIN_OK ? ADMIN_ERR : st;
}

/* ---- restore ---------------------------------------------------------------------------- */

/* What may be in a data home; restore removes the first three kinds, keeps the rest. */
static bool home_file(const char *name)
{
    return is_db_name(name) || admin_is_log_name(name) || strncmp(name, "__db.", 5) == 0 ||
           strcmp(name, "mcstore.lock") == 0 || strcmp(name, "DB_CONFIG") == 0;
}

static bool home_replaced(const char *name)
{
    return is_db_name(name) || admin_is_log_name(name) || strncmp(name, "__db.", 5) == 0;
}

static enum admin_status check_restore_home(struct admin_ctx *ctx, const char *home, bool force)
{
    DIR *d = opendir(home);
    if (d == NULL) {
        if (errno == ENOENT) {
            return ADMIN_OK;
        }
        admin_errf(ctx, "cannot read the data home %s: %s", home, strerror(errno));
        return ADMIN_ERR;
    }
    enum admin_status st = ADMIN_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!keep_any(e->d_name) || home_file(e->d_name)) {
            continue;
        }
        if (!force) {
            admin_errf(ctx, "%s holds '%s', which is not part of an mcstore data home; "
                       "refusing to restore over it (--force restores anyway, keeping such "
                       "files)", home, e->d_name);
            st = ADMIN_ERR;
            break;
        }
    }
    closedir(d);
    return st;
}

enum admin_status admin_restore(struct admin_ctx *ctx, const char *dir_arg, bool force)
{
    char dir[ADMIN_DIR_MAX];
    struct stat sb;
    struct admin_env ae;
    struct name_list files = {NULL, 0};
    struct name_list old = {NULL, 0};
    struct admin_progress prog;
    enum admin_status st = ADMIN_ERR;
    int ret;

    ctx->err[0] = '\0';
    memset(&prog, 0, sizeof(prog));
    if (!clean_path(dir_arg, dir, sizeof(dir))) {
        admin_errf(ctx, "bad backup directory '%s'", dir_arg);
        return ADMIN_ERR;
    }
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        admin_errf(ctx, "no backup at %s: %s", dir,
                   stat(dir, &sb) != 0 ? strerror(errno) : "not a directory");
        return ADMIN_ERR;
    }
    char items[PATH_CAP];
    admin_join_path(items, sizeof(items), dir, "items.db");
    if (stat(items, &sb) != 0) {
        admin_errf(ctx, "%s is not an mcstore backup (no items.db)", dir);
        return ADMIN_ERR;
    }
    if (same_dir(dir, ctx->home)) {
        admin_errf(ctx, "the backup directory %s is the data home itself", dir);
        return ADMIN_ERR;
    }
    if ((ret = list_files(dir, keep_restorable, &files, &prog.bytes_total)) != 0) {
        admin_errf(ctx, "cannot read %s: %s", dir, strerror(ret));
        return ADMIN_ERR;
    }
    bool have_log = false;
    for (size_t i = 0; i < files.n; i++) {
        have_log = have_log || admin_is_log_name(files.names[i]);
    }
    if (!have_log) {
        admin_errf(ctx, "%s has no log files (log.NNNNNNNNNN), so it cannot be recovered; a "
                   "backup from mcstore-admin backup or db5.3_hotbackup has them", dir);
        goto done_nolock;
    }
    if ((st = check_restore_home(ctx, ctx->home, force)) != ADMIN_OK) {
        goto done_nolock;
    }
    st = admin_env_open(ctx, &ae, ADMIN_EXCLUSIVE, "restore");
    if (st != ADMIN_OK) {
        admin_env_close(&ae);
        goto done_nolock;
    }
    st = ADMIN_ERR;

    /* From here on the home is being replaced: a failure leaves it incomplete. */
    if ((ret = list_files(ae.home, home_replaced, &old, NULL)) != 0) {
        admin_errf(ctx, "cannot read %s: %s", ae.home, strerror(ret));
        goto done;
    }
    for (size_t i = 0; i < old.n; i++) {
        char path[PATH_CAP];
        admin_join_path(path, sizeof(path), ae.home, old.names[i]);
        if (unlink(path) != 0) {
            admin_errf(ctx, "cannot remove %s: %s", path, strerror(errno));
            goto done;
        }
    }
    prog.items_total = files.n;
    for (size_t i = 0; i < files.n; i++) {
        char from[PATH_CAP];
        char to[PATH_CAP];
        admin_join_path(from, sizeof(from), dir, files.names[i]);
        admin_join_path(to, sizeof(to), ae.home, files.names[i]);
        admin_infof(ctx, "copying %s", files.names[i]);
        if (admin_copy_file(ctx, from, to, &prog) != 0) {
            goto done;
        }
        prog.items++;
    }
    if ((ret = admin_fsync_dir(ae.home)) != 0) {
        admin_errf(ctx, "cannot sync %s: %s", ae.home, strerror(ret));
        goto done;
    }
    admin_infof(ctx, "running catastrophic recovery in %s", ae.home);
    if (recover_fatal(ctx, ae.home, false) != 0) {
        goto done;
    }
    st = ADMIN_OK;
done:
    if (st != ADMIN_OK) {
        char prev[sizeof(ctx->err)];
        snprintf(prev, sizeof(prev), "%s", ctx->err);
        admin_errf(ctx, "%s; the data home %s is incomplete, run the restore again", prev,
                   ae.home);
    }
    admin_report(ctx, &prog);
    admin_env_close(&ae);
done_nolock:
    names_free(&files);
    names_free(&old);
    return st;
}

/* ---- verify ----------------------------------------------------------------------------- */

static struct admin_ctx *verify_ctx;   /* DB->verify's errcall has no argument of ours */

static void verify_errcall(const DB_ENV *env, const char *prefix, const char *msg)
{
    (void)env;
    (void)prefix;
    if (verify_ctx != NULL) {
        admin_infof(verify_ctx, "berkeley db: %s", msg);
    }
}

enum admin_status admin_verify(struct admin_ctx *ctx, const char *dir_arg)
{
    char dir[ADMIN_DIR_MAX];
    struct stat sb;
    struct name_list dbs = {NULL, 0};
    int lock_fd = -1;
    enum admin_status st = ADMIN_ERR;
    int ret;

    ctx->err[0] = '\0';
    if (!clean_path(dir_arg, dir, sizeof(dir))) {
        admin_errf(ctx, "bad directory '%s'", dir_arg);
        return ADMIN_ERR;
    }
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        admin_errf(ctx, "%s is not a directory", dir);
        return ADMIN_ERR;
    }
    char lock[PATH_CAP];
    admin_join_path(lock, sizeof(lock), dir, "mcstore.lock");
    if (stat(lock, &sb) == 0) {
        /* a data home: no server may change the files while they are checked */
        if ((st = admin_lock_take(ctx, dir, "verify", &lock_fd)) != ADMIN_OK) {
            if (st == ADMIN_BUSY) {
                admin_errf(ctx, "a server is running on %s; verify a backup of it, or stop "
                           "the server first", dir);
            }
            return st;
        }
        st = ADMIN_ERR;
    }
    if ((ret = list_files(dir, keep_db, &dbs, NULL)) != 0) {
        admin_errf(ctx, "cannot read %s: %s", dir, strerror(ret));
        goto done;
    }
    if (dbs.n == 0) {
        admin_errf(ctx, "no databases (*.db) in %s", dir);
        goto done;
    }
    verify_ctx = ctx;
    size_t bad = 0;
    char first_bad[256] = "";
    for (size_t i = 0; i < dbs.n; i++) {
        DB *db;
        char path[PATH_CAP];
        admin_join_path(path, sizeof(path), dir, dbs.names[i]);
        if ((ret = db_create(&db, NULL, 0)) != 0) {
            admin_errf(ctx, "cannot create a database handle: %s", db_strerror(ret));
            goto done;
        }
        db->set_errcall(db, verify_errcall);
        if (strcmp(dbs.names[i], "expiry.db") == 0) {
            db->set_bt_compare(db, bdb_compare_exptime);
        }
        ret = db->verify(db, path, NULL, NULL, 0);  /* destroys the handle */
        if (ret == 0) {
            admin_infof(ctx, "%s: ok", dbs.names[i]);
        } else {
            admin_infof(ctx, "%s: FAILED: %s", dbs.names[i], db_strerror(ret));
            if (bad++ == 0) {
                snprintf(first_bad, sizeof(first_bad), "%s", dbs.names[i]);
            }
        }
    }
    if (bad != 0) {
        admin_errf(ctx, "%zu of %zu databases in %s failed verification (first: %s)", bad,
                   dbs.n, dir, first_bad);
        goto done;
    }
    st = ADMIN_OK;
done:
    verify_ctx = NULL;
    names_free(&dbs);
    if (lock_fd >= 0) {
        admin_lock_release(lock_fd);
    }
    return st;
}
