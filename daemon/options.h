/* Command-line settings of the daemon: memcached's letters, MemcacheDB's for storage. */
#ifndef MCSTORE_DAEMON_OPTIONS_H
#define MCSTORE_DAEMON_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "replication/repl.h"
#include "storage/store.h"

/* --tls-verify: whether TLS clients must present a certificate signed by --tls-ca. */
enum options_tls_verify {
    OPT_TLS_VERIFY_NONE,        /* not asked for (memcached's ssl_verify_mode 0) */
    OPT_TLS_VERIFY_OPTIONAL,    /* asked for, checked if sent (1, "Request") */
    OPT_TLS_VERIFY_REQUIRED,    /* a handshake without a valid one fails (2, "Require") */
};

struct settings {
    int port;                   /* -p --port (21201, MemcacheDB's) */
    const char *listen_addr;    /* -l --listen (127.0.0.1) */
    int max_conns;              /* -c --conn-limit (1024) */
    int threads;                /* -t --threads (number of cores) */
    bool daemonize;             /* -d --daemon */
    const char *user;           /* -u --user: drop privileges to this user */
    const char *pid_file;       /* -P --pidfile */
    int verbose;                /* -v --verbose, repeatable */
    size_t item_max;            /* -I --max-item-size (1m); suffixes k and m */
    const char *home;           /* -H --home: the Berkeley DB environment (data home) */
    size_t cache_mb;            /* -m --cache-mb: Berkeley DB cache in MB (64) */
    int idle_timeout;           /* --idle-timeout SEC: close idle connections (0 = never) */
    int write_timeout;          /* --write-timeout SEC: close a connection whose pending output
                                   makes no progress for this long (30) */
    size_t max_output;          /* --max-output BYTES: pending output bound per connection */
    int checkpoint_sec;         /* --checkpoint-sec (60) */
    int sweep_interval_ms;      /* --sweep-interval-ms: expiry sweeper period (1000) */
    const char *log_file;       /* --log-file: log here instead of stderr (SIGHUP reopens) */
    enum store_durability durability; /* --durability fsync|os|none (os); -N = none */
    size_t checkpoint_kb;       /* --checkpoint-kb: also checkpoint after this much log */
    const char *log_archive;    /* --log-archive DIR: keep old logs there instead of deleting */
    bool recover_catastrophic;  /* --recover-catastrophic: DB_RECOVER_FATAL at start */
    size_t page_size;           /* --page-size: items.db page size for a new data home */
    size_t log_file_size;       /* --log-file-size: Berkeley DB log file size (16m) */
    struct repl_config repl;    /* -R -O -M -S and --repl-*: replication (doc/replication.md) */
    bool tls_main;              /* -Z --enable-tls: the -p port speaks TLS (memcached's -Z) */
    int tls_port;               /* --tls-port: a TLS port beside the plain one (0 = none) */
    const char *tls_cert;       /* --tls-cert: certificate chain, PEM */
    const char *tls_key;        /* --tls-key: private key, PEM (default: in --tls-cert) */
    const char *tls_ca;         /* --tls-ca: CAs that client certificates must come from */
    enum options_tls_verify tls_verify; /* --tls-verify none|optional|required (none) */
    int tls_handshake_timeout;  /* --tls-handshake-timeout SEC: close unfinished handshakes */
    const char *auth_file;      /* --auth-file: users' PBKDF2 hashes; clients must log in */
};

/* Fills s with the defaults. */
void options_defaults(struct settings *s);

/*
 * Parses argv into s. Returns 0 to run, 1 when the program should exit successfully
 * (after -h or -V), -1 after printing an error to stderr.
 */
int options_parse(struct settings *s, int argc, char **argv);

/* Prints the usage with every option and its default. */
void options_usage(const struct settings *defaults);

/* "none", "optional" or "required". */
const char *options_tls_verify_name(enum options_tls_verify v);

/* Parses "1048576", "1024k" or "1m" into bytes; false when malformed. */
bool options_parse_size(const char *text, size_t *out);

#endif
