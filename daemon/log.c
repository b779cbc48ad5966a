/* The levelled logger behind log_error/log_warn/log_info/log_debug. */
#include "config.h"

#include "daemon/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_out;
static const char *log_path;
static atomic_int log_verbose;

int log_init(const char *path, int verbose)
{
    atomic_store(&log_verbose, verbose);
    log_path = path;
    if (path == NULL) {
        log_out = stderr;
        return 0;
    }
    log_out = fopen(path, "a");
    if (log_out == NULL) {
        log_out = stderr;
        return -1;
    }
    setvbuf(log_out, NULL, _IOLBF, 0);
    return 0;
}

void log_reopen(void)
{
    if (log_path == NULL) {
        return;
    }
    pthread_mutex_lock(&log_lock);
    FILE *f = fopen(log_path, "a");
    if (f != NULL) {
        setvbuf(f, NULL, _IOLBF, 0);
        if (log_out != NULL && log_out != stderr) {
            fclose(log_out);
        }
        log_out = f;
    }
    pthread_mutex_unlock(&log_lock);
}

void log_set_verbosity(int verbose)
{
    atomic_store(&log_verbose, verbose);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    if ((int)level > LOG_LEVEL_WARN + atomic_load(&log_verbose)) {
        return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
    pthread_mutex_lock(&log_lock);
    FILE *out = log_out != NULL ? log_out : stderr;
    fprintf(out, "%s mcstore[%s] %s\n", stamp, names[level], msg);
    fflush(out);
    pthread_mutex_unlock(&log_lock);
}
