/* mcstore's entry point: options, data home lock, store, workers, listener, signals. */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "daemon/auth.h"
#include "daemon/listener.h"
#include "daemon/lockfile.h"
#include "daemon/log.h"
#include "daemon/nodelay.h"
#include "daemon/options.h"
#include "daemon/server.h"
#include "daemon/stats_prefix.h"
#include "daemon/tls.h"
#include "daemon/worker.h"
#include "replication/repl.h"
#include "storage/store.h"

static void store_log_bridge(int level, const char *msg)
{
    log_msg(level <= 0 ? LOG_LEVEL_ERROR : level == 1 ? LOG_LEVEL_WARN : LOG_LEVEL_INFO, "%s",
            msg);
}

static void repl_log_bridge(int level, const char *msg)
{
    log_msg(level <= 0   ? LOG_LEVEL_ERROR
            : level == 1 ? LOG_LEVEL_WARN
            : level == 2 ? LOG_LEVEL_INFO
                         : LOG_LEVEL_DEBUG,
            "%s", msg);
}

/* Berkeley DB 5.3's Replication Manager opens its connections with Nagle's algorithm on. */
static void tune_repl_sockets(void)
{
    int n = nodelay_all_tcp();
    if (n > 0) {
        log_debug("replication: TCP_NODELAY set on %d connection(s)", n);
    }
}

/* Replication's state, with the address clients use for this member (slaves name it in their
 * write refusals): the listen address, or the replication host when that is a wildcard. */
static struct repl *start_repl(struct settings *s)
{
    struct repl_config *rc = &s->repl;
    const char *host = s->listen_addr;
    if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 || host[0] == '\0') {
        host = rc->listen.host;
    }
    snprintf(rc->client_addr, sizeof(rc->client_addr), "%s:%d", host, s->port);
    rc->log_fn = repl_log_bridge;
    rc->tune_sockets_fn = tune_repl_sockets;
    struct repl *r = repl_new(rc);
    if (r == NULL) {
        log_error("out of memory starting replication");
    }
    return r;
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    struct event_base *base = arg;
    (void)what;
    log_info("signal %d: stopping", (int)sig);
    event_base_loopbreak(base);
}

/* A password file others can read invites offline guessing: say so, but run. */
static void warn_if_world_accessible(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) == 0 && (sb.st_mode & S_IRWXO) != 0) {
        log_warn("--auth-file %s is accessible to every user (mode %04o): chmod 600 it", path,
                 (unsigned)(sb.st_mode & 07777));
    }
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    struct server *srv = arg;
    (void)sig;
    (void)what;
    log_reopen();
    log_info("SIGHUP: log file reopened");
    if (srv->tls != NULL) {
        tls_server_reload(srv->tls);
    }
    if (srv->auth != NULL) {
        char err[512];
        if (auth_reload(srv->auth, srv->settings.auth_file, err, sizeof(err)) != 0) {
            log_error("SIGHUP: keeping the users loaded before: cannot reload --auth-file: %s",
                      err);
        } else {
            warn_if_world_accessible(srv->settings.auth_file);
            log_warn("SIGHUP: reloaded %zu users from %s", auth_user_count(srv->auth),
                     srv->settings.auth_file);
        }
    }
}

static int drop_privileges(const char *user)
{
    struct passwd *pw = getpwnam(user);
    if (pw == NULL) {
        log_error("unknown user '%s' (-u)", user);
        return -1;
    }
    if (getuid() != 0) {
        return 0; /* not root: nothing to drop */
    }
    if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
        log_error("cannot switch to user '%s': %s", user, strerror(errno));
        return -1;
    }
    return 0;
}

static int write_pid_file(const char *path)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        log_error("cannot write pid file %s: %s", path, strerror(errno));
        return -1;
    }
    fprintf(f, "%ld\n", (long)getpid());
    fclose(f);
    return 0;
}

int main(int argc, char **argv)
{
    struct server srv;
    int rc = EXIT_FAILURE;
    int lock_fd = -1;
    struct event_base *base = NULL;
    struct listener *listener = NULL;
    struct listener *tls_listener = NULL;
    struct event *ev_term = NULL;
    struct event *ev_int = NULL;
    struct event *ev_hup = NULL;

    memset(&srv, 0, sizeof(srv));
    options_defaults(&srv.settings);
    int parsed = options_parse(&srv.settings, argc, argv);
    if (parsed != 0) {
        return parsed > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
    }
    const struct settings *s = &srv.settings;
    if (log_init(s->log_file, s->verbose) != 0) {
        fprintf(stderr, "mcstore: cannot open log file %s: %s\n", s->log_file, strerror(errno));
        return EXIT_FAILURE;
    }
    if (s->auth_file != NULL) {
        /* before -d and -u: errors reach the terminal, and a root-only file can be read */
        char err[512];
        srv.auth = auth_load(s->auth_file, err, sizeof(err));
        if (srv.auth == NULL) {
            log_error("cannot use --auth-file: %s", err);
            return EXIT_FAILURE;
        }
        warn_if_world_accessible(s->auth_file);
        log_info("authentication on: %zu users from %s", auth_user_count(srv.auth),
                 s->auth_file);
    }
    signal(SIGPIPE, SIG_IGN);
    if (s->daemonize && daemon(1, s->log_file != NULL ? 0 : 1) != 0) {
        log_error("cannot daemonize: %s", strerror(errno));
        auth_free(srv.auth);
        return EXIT_FAILURE;
    }
    if (s->user != NULL && drop_privileges(s->user) != 0) {
        auth_free(srv.auth);
        return EXIT_FAILURE;
    }
    /* the lock must be taken by the process that stays (fcntl locks do not survive fork) */
    lock_fd = lockfile_acquire(s->home);
    if (lock_fd < 0) {
        auth_free(srv.auth);
        return EXIT_FAILURE;
    }
    if (s->pid_file != NULL && write_pid_file(s->pid_file) != 0) {
        goto done;
    }
    if (evthread_use_pthreads() != 0) {
        log_error("libevent has no pthreads support");
        goto done;
    }
    /* before the store: a bad certificate should not wait for recovery to be reported */
    if ((s->tls_main || s->tls_port != 0) && (srv.tls = tls_server_new(s)) == NULL) {
        goto done;
    }

    if (s->repl.enabled && (srv.repl = start_repl(&srv.settings)) == NULL) {
        goto done;
    }
    struct store_config cfg = {
        .home = s->home,
        .cache_bytes = s->cache_mb * 1024 * 1024,
        .item_max = s->item_max,
        .checkpoint_sec = s->checkpoint_sec,
        .sweep_interval_ms = s->sweep_interval_ms,
        .log_fn = store_log_bridge,
        .durability = s->durability,
        .checkpoint_kb = s->checkpoint_kb,
        .log_archive_dir = s->log_archive,
        .recover_catastrophic = s->recover_catastrophic,
        .page_size = (uint32_t)s->page_size,
        .log_file_size = (uint32_t)s->log_file_size,
        .repl = srv.repl,
    };
    log_info("opening data home %s (recovery runs if needed)", s->home);
    if (store_open(&cfg, &srv.store) != 0) {
        log_error("cannot open the store in %s", s->home);
        goto done;
    }
    srv.started = time(NULL);
    if ((srv.prefix = stats_prefix_new()) == NULL || worker_start_all(&srv) != 0) {
        goto done;
    }
    base = event_base_new();
    if (base == NULL) {
        goto done;
    }
    listener = listener_start(&srv, base, s->port, s->tls_main, srv.listen_desc,
                              sizeof(srv.listen_desc));
    if (listener == NULL) {
        goto done;
    }
    if (s->tls_port != 0) {
        tls_listener = listener_start(&srv, base, s->tls_port, true, srv.tls_listen_desc,
                                      sizeof(srv.tls_listen_desc));
        if (tls_listener == NULL) {
            goto done;
        }
    }
    ev_term = evsignal_new(base, SIGTERM, on_stop_signal, base);
    ev_int = evsignal_new(base, SIGINT, on_stop_signal, base);
    ev_hup = evsignal_new(base, SIGHUP, on_hup, &srv);
    if (ev_term == NULL || ev_int == NULL || ev_hup == NULL || evsignal_add(ev_term, NULL) != 0 ||
        evsignal_add(ev_int, NULL) != 0 || evsignal_add(ev_hup, NULL) != 0) {
        log_error("cannot install signal handlers");
        goto done;
    }
    log_warn("mcstore %s listening on %s%s%s%s, data home %s, %d threads, durability %s",
             PACKAGE_VERSION, srv.listen_desc, s->tls_main ? " (TLS)" : "",
             s->tls_port != 0 ? " and TLS on " : "", srv.tls_listen_desc, s->home, s->threads,
             store_durability_name(s->durability));
    event_base_dispatch(base);
    rc = EXIT_SUCCESS;

done:
    /* stop accepting, let workers finish what they have, then close the store cleanly */
    listener_stop(listener);
    listener_stop(tls_listener);
    if (srv.workers != NULL) {
        worker_stop_all(&srv);
    }
    tls_server_free(srv.tls);
    if (srv.store != NULL) {
        store_close(srv.store);
        log_warn("data home %s closed cleanly", s->home);
    }
    stats_prefix_free(srv.prefix);
    repl_free(srv.repl);
    if (ev_term != NULL) {
        event_free(ev_term);
    }
    if (ev_int != NULL) {
        event_free(ev_int);
    }
    if (ev_hup != NULL) {
        event_free(ev_hup);
    }
    if (base != NULL) {
        event_base_free(base);
    }
    if (s->pid_file != NULL) {
        unlink(s->pid_file);
    }
    if (lock_fd >= 0) {
        close(lock_fd);
    }
    auth_free(srv.auth);
    return rc;
}
