/* mcstore-admin's access to a data home: the lock file, joining or recovering the environment. */
#include "config.h"

#include <db.h>

#include "storage/admin.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/record.h"

#define LOCK_NAME "mcstore.lock"
#define GUARD_POLL_MS 100
#define ADMIN_CACHE_BYTES (64u * 1024 * 1024)
#define COPY_CHUNK (1024 * 1024)
#define HOLE_GRANULE 65536

void admin_errf(struct admin_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err, sizeof(ctx->err), fmt, ap);
    va_end(ap);
}

void admin_infof(struct admin_ctx *ctx, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    if (ctx->info == NULL) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ctx->info(ctx->info_arg, msg);
}

void admin_report(struct admin_ctx *ctx, const struct admin_progress *p)
{
    if (ctx->progress != NULL) {
        ctx->progress(ctx->progress_arg, p);
    }
}

bool admin_interrupted(struct admin_ctx *ctx)
{
    if (ctx->interrupted != NULL && *ctx->interrupted) {
        admin_errf(ctx, "interrupted");
        return true;
    }
    return false;
}

void admin_join_path(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) {
        abort();
    }
}

bool admin_is_log_name(const char *name)
{
    if (strncmp(name, "log.", 4) != 0 || strlen(name) != 14) {
        return false;
    }
    for (int i = 4; i < 14; i++) {
        if (name[i] < '0' || name[i] > '9') {
            return false;
        }
    }
    return true;
}

/* Berkeley DB's error messages go to the operator as information; the failing call's return
 * code then makes the operation's own error. app_private is the admin_ctx. */
static void admin_errcall(const DB_ENV *env, const char *prefix, const char *msg)
{
    (void)prefix;
    struct admin_ctx *ctx = env->app_private;
    if (ctx != NULL) {
        admin_infof(ctx, "berkeley db: %s", msg);
    }
}

int admin_env_create(struct admin_ctx *ctx, DB_ENV **out)
{
    DB_ENV *env;
    int ret = db_env_create(&env, 0);
    if (ret != 0) {
        admin_errf(ctx, "cannot create a Berkeley DB environment handle: %s", db_strerror(ret));
        return ret;
    }
    env->app_private = ctx;
    env->set_errcall(env, admin_errcall);
    *out = env;
    return 0;
}

/* ---- the lock file ---------------------------------------------------------------------- */

/* One fcntl write lock over the whole file, exactly as daemon/lockfile.c takes it. POSIX locks
 * belong to the process and go away when ANY descriptor of the file is closed, so the file is
 * opened once per operation and nothing else in this process may open it (which is also why
 * the backup copies only *.db files, see admin_backup.c). */
static int lock_try_fd(int fd, long *holder)
{
    struct flock fl;
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_SETLK, &fl) == 0) {
        return 0;
    }
    int err = errno;
    if (err != EACCES && err != EAGAIN) {
        return err;
    }
    *holder = 0;
    struct flock who;
    memset(&who, 0, sizeof(who));
    who.l_type = F_WRLCK;
    who.l_whence = SEEK_SET;
    if (fcntl(fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK) {
        *holder = (long)who.l_pid;
    }
    return EAGAIN;
}

static void lock_write_owner(int fd, const char *what)
{
    char line[128];
    int n = snprintf(line, sizeof(line), "%ld mcstore-admin %s\n", (long)getpid(), what);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)n, 0) != n) {
        /* only informational: the lock itself is what keeps others out */
    }
}

/* Reads who wrote the lock file: sets *admin_op ("" when a server holds it). */
static void lock_read_owner(int fd, char *admin_op, size_t cap)
{
    char buf[128];
    admin_op[0] = '\0';
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0) {
        return;
    }
    buf[n] = '\0';
    const char *p = strstr(buf, " mcstore-admin ");
    if (p == NULL) {
        return;
    }
    p += strlen(" mcstore-admin ");
    size_t i = 0;
    while (p[i] != '\0' && p[i] != '\n' && i + 1 < cap) {
        admin_op[i] = p[i];
        i++;
    }
    admin_op[i] = '\0';
    if (i == 0) {
        snprintf(admin_op, cap, "?");
    }
}

static int lock_open(struct admin_ctx *ctx, const char *home, int *fd)
{
    char path[ADMIN_PATH_MAX];
    admin_join_path(path, sizeof(path), home, LOCK_NAME);
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (*fd < 0) {
        int err = errno;
        admin_errf(ctx, "cannot open the lock file %s: %s", path, strerror(err));
        return err;
    }
    return 0;
}

static void busy_message(struct admin_ctx *ctx, const char *home, long pid, const char *admin_op)
{
    char who[64];
    if (pid > 0) {
        snprintf(who, sizeof(who), " (pid %ld)", pid);
    } else {
        who[0] = '\0';
    }
    if (admin_op[0] != '\0') {
        admin_errf(ctx, "%s is in use by mcstore-admin %s%s; try again when it has finished",
                   home, admin_op, who);
    } else {
        admin_errf(ctx, "a server%s is running on %s; stop it first", who, home);
    }
}

enum admin_status admin_lock_take(struct admin_ctx *ctx, const char *home, const char *what,
                                  int *fd_out)
{
    int fd;
    long pid = 0;
    if (lock_open(ctx, home, &fd) != 0) {
        return ADMIN_ERR;
    }
    int ret = lock_try_fd(fd, &pid);
    if (ret == EAGAIN) {
        char op[64];
        lock_read_owner(fd, op, sizeof(op));
        close(fd);
        busy_message(ctx, home, pid, op);
        return ADMIN_BUSY;
    }
    if (ret != 0) {
        admin_errf(ctx, "cannot lock %s/%s: %s", home, LOCK_NAME, strerror(ret));
        close(fd);
        return ADMIN_ERR;
    }
    lock_write_owner(fd, what);
    *fd_out = fd;
    return ADMIN_OK;
}

void admin_lock_release(int fd)
{
    if (fd >= 0) {
        if (ftruncate(fd, 0) != 0) {
            /* nothing to do: closing releases the lock anyway */
        }
        close(fd);
    }
}

/* ---- the lock guard --------------------------------------------------------------------- */

static void *guard_main(void *arg)
{
    struct admin_env *ae = arg;
    pthread_mutex_lock(&ae->guard_mu);
    while (!ae->guard_stop) {
        long pid = 0;
        if (lock_try_fd(ae->lock_fd, &pid) == 0) {
            ae->locked = true;
            lock_write_owner(ae->lock_fd, ae->what);
            pthread_mutex_unlock(&ae->guard_mu);
            admin_infof(ae->ctx, "the server on %s stopped during the operation; holding its "
                        "lock until done, so no server starts while we are attached", ae->home);
            return NULL;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += GUARD_POLL_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&ae->guard_cv, &ae->guard_mu, &ts);
    }
    pthread_mutex_unlock(&ae->guard_mu);
    return NULL;
}

/* ---- opening and closing ---------------------------------------------------------------- */

static const uint32_t ENV_SUBSYSTEMS =
    DB_INIT_TXN | DB_INIT_LOG | DB_INIT_LOCK | DB_INIT_MPOOL | DB_THREAD;

static enum admin_status open_locked_env(struct admin_ctx *ctx, struct admin_env *ae)
{
    DB_ENV *env;
    if (admin_env_create(ctx, &env) != 0) {
        return ADMIN_ERR;
    }
    ae->env = env;
    env->set_cachesize(env, 0, ADMIN_CACHE_BYTES, 1);
    env->set_lk_max_locks(env, 100000);
    env->set_lk_max_objects(env, 100000);
    env->set_lk_max_lockers(env, 10000);
    env->set_lk_detect(env, DB_LOCK_DEFAULT);
    env->set_lg_max(env, 16 * 1024 * 1024);
    /* no server: recover as a server start does (safe, we hold the lock) */
    int ret = env->open(env, ae->home, DB_CREATE | DB_RECOVER | ENV_SUBSYSTEMS, 0640);
    if (ret != 0) {
        admin_errf(ctx, "cannot open the environment in %s (with recovery): %s", ae->home,
                   db_strerror(ret));
        return ADMIN_ERR;
    }
    return ADMIN_OK;
}

static enum admin_status join_env(struct admin_ctx *ctx, struct admin_env *ae, long pid)
{
    DB_ENV *env;
    if (admin_env_create(ctx, &env) != 0) {
        return ADMIN_ERR;
    }
    ae->env = env;
    /* The documented way for a utility to join a running application's environment: the same
     * subsystems, no DB_CREATE (fail rather than make a new one), no DB_RECOVER (recovery with
     * the server attached would corrupt it). */
    int ret = env->open(env, ae->home, ENV_SUBSYSTEMS, 0);
    if (ret != 0) {
        admin_errf(ctx, "cannot join the environment of the server (pid %ld) running on %s: %s",
                   pid, ae->home, db_strerror(ret));
        return ADMIN_ERR;
    }
    ae->joined = true;
    return ADMIN_OK;
}

enum admin_status admin_env_open(struct admin_ctx *ctx, struct admin_env *ae,
                                 enum admin_access access, const char *what)
{
    struct stat sb;

    memset(ae, 0, sizeof(*ae));
    ae->lock_fd = -1;
    ae->ctx = ctx;
    ae->what = what;
    size_t n = strlen(ctx->home);
    while (n > 1 && ctx->home[n - 1] == '/') {
        n--;
    }
    if (n == 0 || n >= sizeof(ae->home)) {
        admin_errf(ctx, "bad data home path '%s'", ctx->home);
        return ADMIN_ERR;
    }
    memcpy(ae->home, ctx->home, n);
    ae->home[n] = '\0';

    if (access == ADMIN_EXCLUSIVE) {
        if (mkdir(ae->home, 0750) != 0 && errno != EEXIST) {
            admin_errf(ctx, "cannot create the data home %s: %s", ae->home, strerror(errno));
            return ADMIN_ERR;
        }
        if (stat(ae->home, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            admin_errf(ctx, "%s is not a directory", ae->home);
            return ADMIN_ERR;
        }
        enum admin_status s = admin_lock_take(ctx, ae->home, what, &ae->lock_fd);
        ae->locked = (s == ADMIN_OK);
        return s;
    }

    char items[ADMIN_PATH_MAX];
    admin_join_path(items, sizeof(items), ae->home, "items.db");
    if (stat(ae->home, &sb) != 0) {
        admin_errf(ctx, "no data home at %s: %s", ae->home, strerror(errno));
        return ADMIN_ERR;
    }
    if (!S_ISDIR(sb.st_mode)) {
        admin_errf(ctx, "%s is not a directory", ae->home);
        return ADMIN_ERR;
    }
    if (stat(items, &sb) != 0) {
        admin_errf(ctx, "%s is not an mcstore data home (no items.db)", ae->home);
        return ADMIN_ERR;
    }
    if (lock_open(ctx, ae->home, &ae->lock_fd) != 0) {
        return ADMIN_ERR;
    }
    long pid = 0;
    int ret = lock_try_fd(ae->lock_fd, &pid);
    if (ret == 0) {
        ae->locked = true;
        lock_write_owner(ae->lock_fd, what);
        return open_locked_env(ctx, ae);
    }
    if (ret != EAGAIN) {
        admin_errf(ctx, "cannot lock %s/%s: %s", ae->home, LOCK_NAME, strerror(ret));
        return ADMIN_ERR;
    }
    char op[64];
    lock_read_owner(ae->lock_fd, op, sizeof(op));
    if (op[0] != '\0') {
        /* another mcstore-admin: a restore or load replaces files under it, and a locked
         * backup/dump may still be recovering; never join those */
        busy_message(ctx, ae->home, pid, op);
        return ADMIN_BUSY;
    }
    enum admin_status s = join_env(ctx, ae, pid);
    if (s != ADMIN_OK) {
        return s;
    }
    pthread_mutex_init(&ae->guard_mu, NULL);
    pthread_cond_init(&ae->guard_cv, NULL);
    if (pthread_create(&ae->guard, NULL, guard_main, ae) == 0) {
        ae->guard_started = true;
    } else {
        admin_infof(ctx, "warning: cannot start the lock guard thread; do not restart the "
                    "server until this operation ends");
    }
    return ADMIN_OK;
}

void admin_env_close(struct admin_env *ae)
{
    if (ae->env != NULL) {
        int ret = ae->env->close(ae->env, 0);
        if (ret != 0) {
            admin_infof(ae->ctx, "warning: closing the environment: %s", db_strerror(ret));
        }
        ae->env = NULL;
    }
    if (ae->guard_started) {
        pthread_mutex_lock(&ae->guard_mu);
        ae->guard_stop = true;
        pthread_cond_signal(&ae->guard_cv);
        pthread_mutex_unlock(&ae->guard_mu);
        pthread_join(ae->guard, NULL);
        ae->guard_started = false;
        pthread_mutex_destroy(&ae->guard_mu);
        pthread_cond_destroy(&ae->guard_cv);
    }
    if (ae->lock_fd >= 0) {
        if (ae->locked) {
            admin_lock_release(ae->lock_fd);
        } else {
            close(ae->lock_fd);
        }
        ae->lock_fd = -1;
        ae->locked = false;
    }
}

/* ---- files ------------------------------------------------------------------------------ */

static int write_all(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno;
        }
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

static bool all_zero(const char *buf, size_t n)
{
    static const char zeros[4096];
    for (size_t off = 0; off < n; off += sizeof(zeros)) {
        size_t len = n - off < sizeof(zeros) ? n - off : sizeof(zeros);
        if (memcmp(buf + off, zeros, len) != 0) {
            return false;
        }
    }
    return true;
}

int admin_copy_file(struct admin_ctx *ctx, const char *from, const char *to,
                    struct admin_progress *p)
{
    int ret = 0;
    char *buf = NULL;
    int out = -1;
    uint64_t size = 0;
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        ret = errno;
        admin_errf(ctx, "cannot open %s: %s", from, strerror(ret));
        return ret;
    }
    out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (out < 0) {
        ret = errno;
        admin_errf(ctx, "cannot create %s: %s", to, strerror(ret));
        goto done;
    }
    if ((buf = malloc(COPY_CHUNK)) == NULL) {
        ret = ENOMEM;
        admin_errf(ctx, "out of memory");
        goto done;
    }
    for (;;) {
        ssize_t r = read(in, buf, COPY_CHUNK);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            ret = errno;
            admin_errf(ctx, "cannot read %s: %s", from, strerror(ret));
            goto done;
        }
        if (r == 0) {
            break;
        }
        /* log files are preallocated sparse files: keep their holes (64 KiB granules) */
        for (size_t off = 0; off < (size_t)r; off += HOLE_GRANULE) {
            size_t len = (size_t)r - off < HOLE_GRANULE ? (size_t)r - off : HOLE_GRANULE;
            if (all_zero(buf + off, len)) {
                if (lseek(out, (off_t)len, SEEK_CUR) < 0) {
                    ret = errno;
                    admin_errf(ctx, "cannot seek in %s: %s", to, strerror(ret));
                    goto done;
                }
            } else if ((ret = write_all(out, buf + off, len)) != 0) {
                admin_errf(ctx, "cannot write %s: %s", to, strerror(ret));
                goto done;
            }
        }
        size += (uint64_t)r;
        if (p != NULL) {
            p->bytes += (uint64_t)r;
            admin_report(ctx, p);
        }
        if (admin_interrupted(ctx)) {
            ret = EINTR;
            goto done;
        }
    }
    if (ftruncate(out, (off_t)size) != 0) {  /* a trailing hole still counts */
        ret = errno;
        admin_errf(ctx, "cannot write %s: %s", to, strerror(ret));
        goto done;
    }
    if (fsync(out) != 0) {
        ret = errno;
        admin_errf(ctx, "cannot sync %s: %s", to, strerror(ret));
    }
done:
    free(buf);
    if (out >= 0 && close(out) != 0 && ret == 0) {
        ret = errno;
        admin_errf(ctx, "cannot write %s: %s", to, strerror(ret));
    }
    close(in);
    return ret;
}

int admin_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return errno;
    }
    int ret = fsync(fd) == 0 ? 0 : errno;
    close(fd);
    return ret;
}

int admin_remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        return errno == ENOENT ? 0 : errno;
    }
    int ret = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        char path[ADMIN_PATH_MAX];
        admin_join_path(path, sizeof(path), dir, e->d_name);
        if (unlink(path) != 0 && ret == 0) {
            ret = errno;
        }
    }
    closedir(d);
    if (rmdir(dir) != 0 && ret == 0) {
        ret = errno;
    }
    return ret;
}
