/* A levelled logger: errors and warnings always print, info with -v, debug with -vv. */
#ifndef MCSTORE_DAEMON_LOG_H
#define MCSTORE_DAEMON_LOG_H

enum log_level {
    LOG_LEVEL_ERROR = 0,
    LOG_LEVEL_WARN = 1,
    LOG_LEVEL_INFO = 2,
    LOG_LEVEL_DEBUG = 3,
};

/* Starts logging to path (appending), or stderr when path is NULL. Returns 0 or -1. */
int log_init(const char *path, int verbose);

/* Reopens the log file (SIGHUP, for log rotation). Safe to call from the main thread only. */
void log_reopen(void);

/* -v count: 0 = warnings, 1 = info, 2+ = debug. Thread safe. */
void log_set_verbosity(int verbose);

/* Writes one line with a timestamp and level. Thread safe. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
