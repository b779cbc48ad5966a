/* The stats groups every protocol reports: general, settings, conns, storage, bdb, reset. */
#include "config.h"

#include "daemon/stats_report.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon/conn.h"
#include "daemon/stats_prefix.h"
#include "daemon/tls.h"
#include "daemon/worker.h"
#include "replication/repl.h"
#include "storage/fault.h"

struct emitter {
    stats_emit_fn fn;
    void *arg;
};

static void stat_line(const struct emitter *out, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void stat_line(const struct emitter *out, const char *name, const char *fmt, ...)
{
    char value[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(value, sizeof(value), fmt, ap);
    va_end(ap);
    out->fn(out->arg, name, value);
}

static void stats_general(struct server *srv, const struct emitter *o)
{
    struct thread_stats t;
    struct rusage ru;
    time_t now = time(NULL);

    memset(&t, 0, sizeof(t));
    for (int i = 0; i < srv->nworkers; i++) {
        stats_sum(&t, &srv->workers[i].stats);
    }
    getrusage(RUSAGE_SELF, &ru);
#define U64(x) (uint64_t)atomic_load(&(x))
    stat_line(o, "pid", "%ld", (long)getpid());
    stat_line(o, "uptime", "%ld", (long)(now - srv->started));
    stat_line(o, "time", "%ld", (long)now);
    stat_line(o, "version", "%s", MEMCACHED_COMPAT_VERSION);
    stat_line(o, "mcstore_version", "%s", PACKAGE_VERSION);
    stat_line(o, "libevent", "%s", event_get_version());
    stat_line(o, "pointer_size", "%d", (int)(8 * sizeof(void *)));
    stat_line(o, "rusage_user", "%ld.%06ld", (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec);
    stat_line(o, "rusage_system", "%ld.%06ld", (long)ru.ru_stime.tv_sec,
              (long)ru.ru_stime.tv_usec);
    stat_line(o, "max_connections", "%d", srv->settings.max_conns);
    stat_line(o, "curr_connections", "%" PRIu64, U64(srv->conns.curr_conns));
    stat_line(o, "total_connections", "%" PRIu64, U64(srv->conns.total_conns));
    stat_line(o, "rejected_connections", "%" PRIu64, U64(srv->conns.rejected_conns));
    stat_line(o, "connection_structures", "%" PRIu64, U64(srv->conns.curr_conns));
    stat_line(o, "slow_reader_closes", "%" PRIu64, U64(srv->conns.slow_reader_closes));
    stat_line(o, "cmd_get", "%" PRIu64, U64(t.get_cmds));
    stat_line(o, "cmd_set", "%" PRIu64, U64(t.set_cmds));
    stat_line(o, "cmd_flush", "%" PRIu64, U64(t.flush_cmds));
    stat_line(o, "cmd_touch", "%" PRIu64, U64(t.touch_cmds));
    stat_line(o, "cmd_meta", "%" PRIu64, U64(t.meta_cmds));
    stat_line(o, "cmd_rget", "%" PRIu64, U64(t.rget_cmds));
    stat_line(o, "cmd_iterate", "%" PRIu64, U64(t.iterate_cmds));
    stat_line(o, "get_hits", "%" PRIu64, U64(t.get_hits));
    stat_line(o, "get_misses", "%" PRIu64, U64(t.get_misses));
    stat_line(o, "get_expired", "%d", 0);
    stat_line(o, "get_flushed", "%d", 0);
    stat_line(o, "delete_misses", "%" PRIu64, U64(t.delete_misses));
    stat_line(o, "delete_hits", "%" PRIu64, U64(t.delete_hits));
    stat_line(o, "incr_misses", "%" PRIu64, U64(t.incr_misses));
    stat_line(o, "incr_hits", "%" PRIu64, U64(t.incr_hits));
    stat_line(o, "decr_misses", "%" PRIu64, U64(t.decr_misses));
    stat_line(o, "decr_hits", "%" PRIu64, U64(t.decr_hits));
    stat_line(o, "cas_misses", "%" PRIu64, U64(t.cas_misses));
    stat_line(o, "cas_hits", "%" PRIu64, U64(t.cas_hits));
    stat_line(o, "cas_badval", "%" PRIu64, U64(t.cas_badval));
    stat_line(o, "touch_hits", "%" PRIu64, U64(t.touch_hits));
    stat_line(o, "touch_misses", "%" PRIu64, U64(t.touch_misses));
    stat_line(o, "store_too_large", "%" PRIu64, U64(t.store_too_large));
    stat_line(o, "store_errors", "%" PRIu64, U64(t.store_errors));
    stat_line(o, "auth_cmds", "%" PRIu64, U64(t.auth_cmds));
    stat_line(o, "auth_errors", "%" PRIu64, U64(t.auth_errors));
    stat_line(o, "bytes_read", "%" PRIu64, U64(t.bytes_read));
    stat_line(o, "bytes_written", "%" PRIu64, U64(t.bytes_written));
    stat_line(o, "limit_maxbytes", "%zu", srv->settings.cache_mb * 1024 * 1024);
    stat_line(o, "threads", "%d", srv->nworkers);
    stat_line(o, "conn_yields", "%" PRIu64, U64(t.conn_yields));
    if (srv->tls != NULL) {
        struct tls_stats ts;
        tls_server_stats(srv->tls, &ts);
        stat_line(o, "ssl_handshake_errors", "%" PRIu64, ts.handshake_errors);
        stat_line(o, "time_since_server_cert_refresh", "%ld", (long)(now - ts.cert_loaded));
        stat_line(o, "ssl_handshakes", "%" PRIu64, ts.handshakes);
        stat_line(o, "ssl_handshake_timeouts", "%" PRIu64, ts.handshake_timeouts);
    }
    stat_line(o, "bytes", "%" PRIu64, store_item_bytes(srv->store));
    stat_line(o, "curr_items", "%" PRIu64, store_item_count(srv->store));
    stat_line(o, "total_items", "%" PRIu64, store_total_items(srv->store));
    stat_line(o, "evictions", "%d", 0);
#undef U64
}

static void stats_settings(struct server *srv, const struct emitter *o)
{
    const struct settings *s = &srv->settings;
    stat_line(o, "maxbytes", "%zu", s->cache_mb * 1024 * 1024);
    stat_line(o, "maxconns", "%d", s->max_conns);
    stat_line(o, "tcpport", "%d", s->port);
    stat_line(o, "udpport", "%d", 0);
    stat_line(o, "inter", "%s", s->listen_addr);
    stat_line(o, "verbosity", "%d", s->verbose);
    stat_line(o, "num_threads", "%d", s->threads);
    stat_line(o, "item_size_max", "%zu", s->item_max);
    stat_line(o, "idle_timeout", "%d", s->idle_timeout);
    stat_line(o, "evictions", "%s", "off");
    stat_line(o, "cas_enabled", "%s", "yes");
    stat_line(o, "flush_enabled", "%s", "yes");
    /* memcached's names; one --auth-file serves binary SASL PLAIN and text auth alike */
    stat_line(o, "auth_enabled_sasl", "%s", srv->auth != NULL ? "yes" : "no");
    stat_line(o, "auth_enabled_ascii", "%s", srv->auth != NULL ? "yes" : "no");
    stat_line(o, "data_home", "%s", s->home);
    stat_line(o, "cache_mb", "%zu", s->cache_mb);
    stat_line(o, "checkpoint_sec", "%d", s->checkpoint_sec);
    stat_line(o, "sweep_interval_ms", "%d", s->sweep_interval_ms);
    stat_line(o, "write_timeout", "%d", s->write_timeout);
    stat_line(o, "max_output", "%zu", s->max_output);
    stat_line(o, "durability", "%s", store_durability_name(s->durability));
    stat_line(o, "checkpoint_kb", "%zu", s->checkpoint_kb);
    stat_line(o, "page_size", "%zu", s->page_size);
    stat_line(o, "log_file_size", "%zu", s->log_file_size);
    stat_line(o, "log_archive", "%s", s->log_archive != NULL ? s->log_archive : "(remove)");
    stat_line(o, "test_hooks", "%s", store_fault_available() ? "yes" : "no");
    /* memcached's names and values (ssl_verify_mode 0 none, 1 request, 2 require) */
    stat_line(o, "ssl_enabled", "%s", srv->tls != NULL ? "yes" : "no");
    stat_line(o, "ssl_chain_cert", "%s", s->tls_cert != NULL ? s->tls_cert : "NULL");
    stat_line(o, "ssl_key", "%s", s->tls_key != NULL ? s->tls_key : "NULL");
    stat_line(o, "ssl_verify_mode", "%d", (int)s->tls_verify);
    stat_line(o, "ssl_ca_cert", "%s", s->tls_ca != NULL ? s->tls_ca : "NULL");
    stat_line(o, "ssl_min_version", "%s", "tlsv1.2");
    stat_line(o, "tls_port", "%d", s->tls_port);
    stat_line(o, "tls_handshake_timeout", "%d", s->tls_handshake_timeout);
}

static void stats_conns(struct server *srv, const struct emitter *o)
{
    int64_t now = (int64_t)time(NULL);
    char name[64];
    stat_line(o, "listen:addr", "tcp:%s", srv->listen_desc);
    stat_line(o, "listen:state", "%s", "conn_listening");
    if (srv->tls_listen_desc[0] != '\0') {
        stat_line(o, "listen_tls:addr", "tcp:%s", srv->tls_listen_desc);
        stat_line(o, "listen_tls:state", "%s", "conn_listening");
    }
    for (int i = 0; i < srv->nworkers; i++) {
        struct worker *w = &srv->workers[i];
        pthread_mutex_lock(&w->lock);
        for (struct conn *x = w->conns; x != NULL; x = x->next) {
            snprintf(name, sizeof(name), "%d:addr", x->fd);
            stat_line(o, name, "tcp:%s", x->peer);
            bool tls = strcmp(x->io->name, "tls") == 0;
            snprintf(name, sizeof(name), "%d:listen_addr", x->fd);
            stat_line(o, name, "tcp:%s",
                      tls && srv->tls_listen_desc[0] != '\0' ? srv->tls_listen_desc
                                                              : srv->listen_desc);
            snprintf(name, sizeof(name), "%d:transport", x->fd);
            stat_line(o, name, "%s", x->io->name);
            snprintf(name, sizeof(name), "%d:state", x->fd);
            stat_line(o, name, "%s", conn_state_name(atomic_load(&x->state)));
            snprintf(name, sizeof(name), "%d:secs_since_last_cmd", x->fd);
            stat_line(o, name, "%" PRId64, now - atomic_load(&x->last_cmd));
        }
        pthread_mutex_unlock(&w->lock);
    }
}

enum stats_outcome stats_report(struct server *srv, const char *group, size_t ngroup,
                                stats_emit_fn fn, void *arg)
{
    const struct emitter e = {fn, arg};
#define IS(s) (ngroup == strlen(s) && memcmp(group, (s), ngroup) == 0)
    if (ngroup == 0) {
        stats_general(srv, &e);
    } else if (IS("settings")) {
        stats_settings(srv, &e);
    } else if (IS("conns")) {
        stats_conns(srv, &e);
    } else if (IS("storage")) {
        store_stats(srv->store, fn, arg);
    } else if (IS("bdb")) {
        store_bdb_stats(srv->store, fn, arg);
    } else if (IS("repl") || IS("rep")) {
        repl_stats(srv->repl, fn, arg);
    } else if (IS("reset")) {
        for (int i = 0; i < srv->nworkers; i++) {
            stats_reset(&srv->workers[i].stats);
        }
        stats_prefix_clear(srv->prefix); /* memcached's reset drops "stats detail" too */
        return STATS_RESET;
    } else if (IS("items") || IS("slabs")) {
        /* no slab classes: storage is Berkeley DB, nothing to report per class */
    } else if (IS("sizes")) {
        fn(arg, "sizes_status", "disabled"); /* memcached's answer without -o track_sizes */
    } else {
        return STATS_UNKNOWN;
    }
#undef IS
    return STATS_DONE;
}
