/* The text protocol's commands: request in, store call, memcached's reply bytes out. */
#include "config.h"

#include "daemon/dispatch_text.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon/auth.h"
#include "daemon/auth_text.h"
#include "daemon/log.h"
#include "daemon/worker.h"
#include "protocol/text.h"
#include "storage/fault.h"

/* The memcached version we answer byte for byte; clients gate features on it. */
#define MEMCACHED_COMPAT_VERSION "1.6.18"

/* Most items one rget returns (MemcacheDB capped it too). */
#define RGET_MAX_ITEMS 10000

static void reply(struct conn *c, const struct proto_request *req, const char *line)
{
    if (req->noreply) {
        return;
    }
    evbuffer_add(c->out, line, strlen(line));
    evbuffer_add(c->out, "\r\n", 2);
}

static void reply_store_error(struct conn *c, const struct proto_request *req)
{
    char line[160];
    snprintf(line, sizeof(line), "SERVER_ERROR %s", store_error_reason());
    STAT_INC(&c->w->stats, store_errors);
    reply(c, req, line);
}

static int64_t now_unix(void)
{
    return (int64_t)time(NULL);
}

/* A value line, the value and its terminator. */
static void add_value(struct conn *c, const char *key, size_t nkey, const struct store_item *it,
                      bool with_cas)
{
    char line[PROTO_KEY_MAX + 64];
    size_t n = proto_text_value_line(line, key, nkey, it->flags, it->nvalue, with_cas, it->cas);
    evbuffer_add(c->out, line, n);
    evbuffer_add(c->out, it->value, it->nvalue);
    evbuffer_add(c->out, "\r\n", 2);
}

static void do_get(struct conn *c, const struct proto_request *req)
{
    struct worker *w = c->w;
    bool touch = req->cmd == PROTO_CMD_GAT || req->cmd == PROTO_CMD_GATS;
    bool with_cas = req->cmd == PROTO_CMD_GETS || req->cmd == PROTO_CMD_GATS;
    uint32_t exptime = touch ? proto_exptime_to_abs(req->exptime, now_unix()) : 0;
    const char *key;
    size_t nkey;
    size_t pos = 0;
    bool bad = false;

    /* memcached answers a bad key with only an error, whatever came before it */
    while (proto_text_next_key(req, &pos, &key, &nkey, &bad)) {
    }
    if (bad) {
        evbuffer_add(c->out, "CLIENT_ERROR bad command line format\r\n", 38);
        return;
    }
    size_t start_len = evbuffer_get_length(c->out);
    size_t max_output = w->srv->settings.max_output;
    pos = 0;
    while (proto_text_next_key(req, &pos, &key, &nkey, &bad)) {
        struct store_item it;
        enum store_status s = store_get(w->srv->store, &w->buf, key, nkey, touch, exptime, &it);
        if (touch) {
            STAT_INC(&w->stats, touch_cmds);
        } else {
            STAT_INC(&w->stats, get_cmds);
        }
        if (s == STORE_OK) {
            if (touch) {
                STAT_INC(&w->stats, touch_hits);
            } else {
                STAT_INC(&w->stats, get_hits);
            }
            add_value(c, key, nkey, &it, with_cas);
            if (evbuffer_get_length(c->out) > max_output) {
                log_info("closing connection from %s: a reply passed --max-output (%zu bytes)",
                         c->peer, max_output);
                atomic_fetch_add(&w->srv->conns.slow_reader_closes, 1);
                c->close_now = true;
                return;
            }
        } else if (s == STORE_NOT_FOUND) {
            if (touch) {
                STAT_INC(&w->stats, touch_misses);
            } else {
                STAT_INC(&w->stats, get_misses);
            }
        } else {
            /* drop this command's partial reply: a client must not see a half answer */
            struct evbuffer *keep = evbuffer_new();
            if (keep != NULL) {
                evbuffer_remove_buffer(c->out, keep, start_len);
                evbuffer_free(c->out);
                c->out = keep;
            }
            char line[160];
            snprintf(line, sizeof(line), "SERVER_ERROR %s\r\n", store_error_reason());
            evbuffer_add(c->out, line, strlen(line));
            return;
        }
    }
    evbuffer_add(c->out, "END\r\n", 5);
}

static enum store_mode mode_of(enum proto_cmd cmd)
{
    switch (cmd) {
    case PROTO_CMD_ADD:
        return STORE_MODE_ADD;
    case PROTO_CMD_REPLACE:
        return STORE_MODE_REPLACE;
    case PROTO_CMD_APPEND:
        return STORE_MODE_APPEND;
    case PROTO_CMD_PREPEND:
        return STORE_MODE_PREPEND;
    case PROTO_CMD_CAS:
        return STORE_MODE_CAS;
    default:
        return STORE_MODE_SET;
    }
}

static void do_update(struct conn *c, const struct proto_request *req)
{
    struct worker *w = c->w;
    uint32_t exptime = proto_exptime_to_abs(req->exptime, now_unix());
    enum store_mode mode = mode_of(req->cmd);

    STAT_INC(&w->stats, set_cmds);
    enum store_status s = store_update(w->srv->store, &w->buf, mode, req->key, req->nkey,
                                       req->flags, exptime, req->cas, req->data, req->ndata, NULL);
    if (mode == STORE_MODE_CAS) {
        if (s == STORE_STORED) {
            STAT_INC(&w->stats, cas_hits);
        } else if (s == STORE_EXISTS) {
            STAT_INC(&w->stats, cas_badval);
        } else if (s == STORE_NOT_FOUND) {
            STAT_INC(&w->stats, cas_misses);
        }
    }
    switch (s) {
    case STORE_STORED:
        reply(c, req, "STORED");
        break;
    case STORE_NOT_STORED:
        reply(c, req, "NOT_STORED");
        break;
    case STORE_EXISTS:
        reply(c, req, "EXISTS");
        break;
    case STORE_NOT_FOUND:
        reply(c, req, "NOT_FOUND");
        break;
    case STORE_TOO_LARGE:
        STAT_INC(&w->stats, store_too_large);
        reply(c, req, "SERVER_ERROR out of memory storing object");
        break;
    default:
        reply_store_error(c, req);
        break;
    }
}

static void do_delta(struct conn *c, const struct proto_request *req)
{
    struct worker *w = c->w;
    bool incr = req->cmd == PROTO_CMD_INCR;
    char digits[24];
    size_t ndigits = 0;
    enum store_status s = store_delta(w->srv->store, &w->buf, req->key, req->nkey, incr,
                                      req->delta, digits, &ndigits, NULL);
    switch (s) {
    case STORE_OK:
        if (incr) {
            STAT_INC(&w->stats, incr_hits);
        } else {
            STAT_INC(&w->stats, decr_hits);
        }
        digits[ndigits] = '\0';
        reply(c, req, digits);
        break;
    case STORE_NOT_FOUND:
        if (incr) {
            STAT_INC(&w->stats, incr_misses);
        } else {
            STAT_INC(&w->stats, decr_misses);
        }
        reply(c, req, "NOT_FOUND");
        break;
    case STORE_NON_NUMERIC:
        reply(c, req, "CLIENT_ERROR cannot increment or decrement non-numeric value");
        break;
    default:
        reply_store_error(c, req);
        break;
    }
}

static void do_delete(struct conn *c, const struct proto_request *req)
{
    struct worker *w = c->w;
    enum store_status s = store_delete(w->srv->store, &w->buf, req->key, req->nkey);
    if (s == STORE_OK) {
        STAT_INC(&w->stats, delete_hits);
        reply(c, req, "DELETED");
    } else if (s == STORE_NOT_FOUND) {
        STAT_INC(&w->stats, delete_misses);
        reply(c, req, "NOT_FOUND");
    } else {
        reply_store_error(c, req);
    }
}

static void do_touch(struct conn *c, const struct proto_request *req)
{
    struct worker *w = c->w;
    uint32_t exptime = proto_exptime_to_abs(req->exptime, now_unix());
    enum store_status s = store_touch(w->srv->store, &w->buf, req->key, req->nkey, exptime);
    STAT_INC(&w->stats, touch_cmds);
    if (s == STORE_OK) {
        STAT_INC(&w->stats, touch_hits);
        reply(c, req, "TOUCHED");
    } else if (s == STORE_NOT_FOUND) {
        STAT_INC(&w->stats, touch_misses);
        reply(c, req, "NOT_FOUND");
    } else {
        reply_store_error(c, req);
    }
}

static void do_flush_all(struct conn *c, const struct proto_request *req)
{
    struct worker *w = c->w;
    uint32_t at = 0;
    STAT_INC(&w->stats, flush_cmds);
    if (req->delay > 0) {
        at = proto_exptime_to_abs(req->delay, now_unix());
    }
    if (store_flush_all(w->srv->store, at) == STORE_OK) {
        reply(c, req, "OK");
    } else {
        reply_store_error(c, req);
    }
}

/* Appends "STAT name value\r\n". */
static void stat_line(struct evbuffer *out, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void stat_line(struct evbuffer *out, const char *name, const char *fmt, ...)
{
    char value[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(value, sizeof(value), fmt, ap);
    va_end(ap);
    evbuffer_add_printf(out, "STAT %s %s\r\n", name, value);
}

static void stats_general(struct conn *c)
{
    struct server *srv = c->w->srv;
    struct thread_stats t;
    struct rusage ru;
    time_t now = time(NULL);

    memset(&t, 0, sizeof(t));
    for (int i = 0; i < srv->nworkers; i++) {
        stats_sum(&t, &srv->workers[i].stats);
    }
    getrusage(RUSAGE_SELF, &ru);
#define U64(x) (uint64_t)atomic_load(&(x))
    struct evbuffer *o = c->out;
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
    stat_line(o, "cmd_rget", "%" PRIu64, U64(t.rget_cmds));
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
    stat_line(o, "bytes", "%" PRIu64, store_item_bytes(srv->store));
    stat_line(o, "curr_items", "%" PRIu64, store_item_count(srv->store));
    stat_line(o, "total_items", "%" PRIu64, store_total_items(srv->store));
    stat_line(o, "evictions", "%d", 0);
#undef U64
}

static void stats_settings(struct conn *c)
{
    const struct settings *s = &c->w->srv->settings;
    struct evbuffer *o = c->out;
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
    stat_line(o, "auth_enabled_sasl", "%s", c->w->srv->auth != NULL ? "yes" : "no");
    stat_line(o, "auth_enabled_ascii", "%s", c->w->srv->auth != NULL ? "yes" : "no");
    stat_line(o, "data_home", "%s", s->home);
    stat_line(o, "cache_mb", "%zu", s->cache_mb);
    stat_line(o, "checkpoint_sec", "%d", s->checkpoint_sec);
    stat_line(o, "sweep_interval_ms", "%d", s->sweep_interval_ms);
    stat_line(o, "write_timeout", "%d", s->write_timeout);
    stat_line(o, "max_output", "%zu", s->max_output);
    stat_line(o, "durability", "%s", store_durability_name(s->durability));
    stat_line(o, "checkpoint_kb", "%zu", s->checkpoint_kb);
    stat_line(o, "page_size", "%zu", s->page_size);
    stat_line(o, "log_archive", "%s", s->log_archive != NULL ? s->log_archive : "(remove)");
    stat_line(o, "test_hooks", "%s", store_fault_available() ? "yes" : "no");
}

static void stats_conns(struct conn *c)
{
    struct server *srv = c->w->srv;
    int64_t now = now_unix();
    evbuffer_add_printf(c->out, "STAT listen:addr tcp:%s\r\nSTAT listen:state conn_listening\r\n",
                        srv->listen_desc);
    for (int i = 0; i < srv->nworkers; i++) {
        struct worker *w = &srv->workers[i];
        pthread_mutex_lock(&w->lock);
        for (struct conn *x = w->conns; x != NULL; x = x->next) {
            evbuffer_add_printf(c->out,
                                "STAT %d:addr tcp:%s\r\nSTAT %d:listen_addr tcp:%s\r\n"
                                "STAT %d:state %s\r\nSTAT %d:secs_since_last_cmd %" PRId64 "\r\n",
                                x->fd, x->peer, x->fd, srv->listen_desc, x->fd,
                                conn_state_name(atomic_load(&x->state)), x->fd,
                                now - atomic_load(&x->last_cmd));
        }
        pthread_mutex_unlock(&w->lock);
    }
}

static void storage_stat(void *arg, const char *name, const char *value)
{
    stat_line(arg, name, "%s", value);
}

static void do_stats(struct conn *c, const struct proto_request *req)
{
    size_t n = 0;
    while (n < req->narg && req->arg[n] != ' ') {
        n++;
    }
#define SUB(s) (n == strlen(s) && memcmp(req->arg, (s), n) == 0)
    if (n == 0) {
        stats_general(c);
    } else if (SUB("settings")) {
        stats_settings(c);
    } else if (SUB("conns")) {
        stats_conns(c);
    } else if (SUB("storage")) {
        store_stats(c->w->srv->store, storage_stat, c->out);
    } else if (SUB("bdb")) {
        store_bdb_stats(c->w->srv->store, storage_stat, c->out);
    } else if (SUB("reset")) {
        for (int i = 0; i < c->w->srv->nworkers; i++) {
            stats_reset(&c->w->srv->workers[i].stats);
        }
        evbuffer_add(c->out, "RESET\r\n", 7);
        return;
    } else if (SUB("items") || SUB("slabs")) {
        /* no slab classes: storage is Berkeley DB, nothing to report per class */
    } else {
        evbuffer_add(c->out, "ERROR\r\n", 7);
        return;
    }
#undef SUB
    evbuffer_add(c->out, "END\r\n", 5);
}

struct rget_ctx {
    struct evbuffer *out;
};

static bool rget_item(void *arg, const char *key, size_t nkey, const struct store_item *it)
{
    struct rget_ctx *ctx = arg;
    char line[PROTO_KEY_MAX + 64];
    size_t n = proto_text_value_line(line, key, nkey, it->flags, it->nvalue, false, 0);
    evbuffer_add(ctx->out, line, n);
    evbuffer_add(ctx->out, it->value, it->nvalue);
    evbuffer_add(ctx->out, "\r\n", 2);
    return true;
}

static void do_rget(struct conn *c, const struct proto_request *req)
{
    struct worker *w = c->w;
    struct rget_ctx ctx = {evbuffer_new()};
    uint32_t max = req->max > RGET_MAX_ITEMS ? RGET_MAX_ITEMS : req->max;

    STAT_INC(&w->stats, rget_cmds);
    if (ctx.out == NULL) {
        evbuffer_add(c->out, "SERVER_ERROR out of memory\r\n", 28);
        return;
    }
    enum store_status s = store_range(w->srv->store, &w->buf, req->key, req->nkey, req->key2,
                                      req->nkey2, req->left_open, req->right_open, max,
                                      rget_item, &ctx);
    if (s == STORE_OK) {
        evbuffer_add_buffer(c->out, ctx.out);
        evbuffer_add(c->out, "END\r\n", 5);
    } else {
        char line[160];
        snprintf(line, sizeof(line), "SERVER_ERROR %s\r\n", store_error_reason());
        evbuffer_add(c->out, line, strlen(line));
    }
    evbuffer_free(ctx.out);
}

static void do_db_checkpoint(struct conn *c)
{
    if (store_checkpoint(c->w->srv->store) == 0) {
        evbuffer_add(c->out, "OK\r\n", 4);
    } else {
        evbuffer_add_printf(c->out, "SERVER_ERROR %s\r\n", store_error_reason());
    }
}

static void do_db_archive(struct conn *c)
{
    unsigned n;
    if (store_archive_logs(c->w->srv->store, &n) == 0) {
        evbuffer_add(c->out, "OK\r\n", 4);
    } else {
        evbuffer_add_printf(c->out, "SERVER_ERROR %s\r\n", store_error_reason());
    }
}

/* debug_fault <nth> <deadlock|enospc|eio|runrecovery> [count] | debug_fault off */
static void do_debug_fault(struct conn *c, const struct proto_request *req)
{
    char line[128];
    if (!store_fault_available()) {
        evbuffer_add(c->out, "ERROR\r\n", 7);
        return;
    }
    size_t n = req->narg < sizeof(line) - 1 ? req->narg : sizeof(line) - 1;
    memcpy(line, req->arg, n);
    line[n] = '\0';
    unsigned nth = 0;
    unsigned count = 1;
    char name[32];
    int got = sscanf(line, "%u %31s %u", &nth, name, &count);
    enum store_fault f;
    if (strcmp(line, "off") == 0) {
        store_fault_arm(0, STORE_FAULT_EIO, 0);
    } else if (got < 2 || nth == 0 || !store_fault_parse(name, strlen(name), &f)) {
        evbuffer_add_printf(c->out, "CLIENT_ERROR usage: debug_fault <nth> "
                                    "<deadlock|enospc|eio|runrecovery> [count] | off\r\n");
        return;
    } else {
        store_fault_arm(nth, f, count);
    }
    evbuffer_add(c->out, "OK\r\n", 4);
}

static void auth_reply_flush(struct conn *c)
{
    if (c->auth_reply != NULL) {
        evbuffer_add(c->out, c->auth_reply, strlen(c->auth_reply));
        evbuffer_add(c->out, "\r\n", 2);
        c->auth_reply = NULL;
    }
}

/* Where memcached's turn ends (its read buffer ran dry): its reply goes out, and its next turn
 * starts with a read. */
static void auth_turn_end(struct conn *c)
{
    auth_reply_flush(c);
    c->auth_reqs = 0;
    c->auth_window = 0;
}

/*
 * memcached's turns decide which replies survive, so they are reproduced: a turn is what one
 * read brought; every AUTH_TEXT_REQS_PER_EVENT requests (one more in a turn's first stretch)
 * memcached writes what it has and yields, then goes on with the bytes it had buffered only
 * (auth_window): bytes we read meanwhile belong to its next turn.
 */
enum text_auth_step dispatch_text_auth(struct conn *c, size_t *need)
{
    struct worker *w = c->w;
    struct auth_text_result r;
    size_t avail = c->rend - c->rstart;

    if (c->auth_window > 0 && c->auth_window < avail) {
        auth_text_parse(c->rbuf + c->rstart, c->auth_window, &r);
        if (r.status == AUTH_TEXT_NEED_MORE) {
            auth_turn_end(c); /* memcached waits for its next read, which brings the rest */
            auth_text_parse(c->rbuf + c->rstart, avail, &r);
        }
    } else {
        auth_text_parse(c->rbuf + c->rstart, avail, &r);
    }
    switch (r.status) {
    case AUTH_TEXT_NEED_MORE:
        c->auth_window = 0;
        *need = r.need;
        return TEXT_AUTH_MORE;
    case AUTH_TEXT_CLOSE:
        return TEXT_AUTH_CLOSE;
    case AUTH_TEXT_REPLY:
        /* memcached overwrites the reply it has not sent yet: only the last one goes out */
        c->auth_reply = r.reply;
        break;
    case AUTH_TEXT_CHECK: {
        char name[4 * 64 + 1];
        auth_printable(name, sizeof(name), r.user, r.nuser);
        STAT_INC(&w->stats, auth_cmds);
        if (auth_check(w->srv->auth, r.user, r.nuser, r.pass, r.npass)) {
            c->authenticated = true;
            c->auth_reply = NULL;
            /* before any reply of the commands that follow */
            evbuffer_add(c->out, AUTH_TEXT_OK "\r\n", strlen(AUTH_TEXT_OK "\r\n"));
            log_info("%s authenticated as '%s' (text protocol)", c->peer, name);
        } else {
            STAT_INC(&w->stats, auth_errors);
            log_warn("authentication failure from %s: user '%s' (text protocol)", c->peer, name);
            c->auth_reply = AUTH_TEXT_E_FAILURE;
        }
        break;
    }
    }
    c->rstart += r.consumed;
    atomic_store_explicit(&c->last_cmd, (int64_t)time(NULL), memory_order_relaxed);
    if (c->authenticated) {
        c->auth_window = 0;
        return TEXT_AUTH_NEXT;
    }
    c->auth_reqs++;
    if (c->auth_window > 0) {
        c->auth_window = r.consumed < c->auth_window ? c->auth_window - r.consumed : 0;
        if (c->auth_window == 0) {
            auth_turn_end(c);
            return TEXT_AUTH_NEXT;
        }
    }
    if (c->auth_reqs > AUTH_TEXT_REQS_PER_EVENT && c->rstart < c->rend) {
        auth_reply_flush(c);
        c->auth_reqs = 1; /* memcached counts every request of a resumed turn */
        c->auth_window = c->rend - c->rstart;
        return TEXT_AUTH_YIELD;
    }
    return TEXT_AUTH_NEXT;
}

void dispatch_text_auth_end(struct conn *c)
{
    auth_reply_flush(c);
    if (c->auth_window == 0) {
        c->auth_reqs = 0; /* a new turn starts with a read, whose first request is free */
    }
}

void dispatch_text(struct conn *c, const struct proto_request *req)
{
    switch (req->cmd) {
    case PROTO_CMD_GET:
    case PROTO_CMD_GETS:
    case PROTO_CMD_GAT:
    case PROTO_CMD_GATS:
        do_get(c, req);
        break;
    case PROTO_CMD_SET:
    case PROTO_CMD_ADD:
    case PROTO_CMD_REPLACE:
    case PROTO_CMD_APPEND:
    case PROTO_CMD_PREPEND:
    case PROTO_CMD_CAS:
        do_update(c, req);
        break;
    case PROTO_CMD_INCR:
    case PROTO_CMD_DECR:
        do_delta(c, req);
        break;
    case PROTO_CMD_DELETE:
        do_delete(c, req);
        break;
    case PROTO_CMD_TOUCH:
        do_touch(c, req);
        break;
    case PROTO_CMD_FLUSH_ALL:
        do_flush_all(c, req);
        break;
    case PROTO_CMD_VERSION:
        evbuffer_add(c->out, "VERSION " MEMCACHED_COMPAT_VERSION "\r\n",
                     strlen("VERSION " MEMCACHED_COMPAT_VERSION "\r\n"));
        break;
    case PROTO_CMD_VERBOSITY:
        log_set_verbosity((int)(req->verbosity > 2 ? 2 : req->verbosity));
        reply(c, req, "OK");
        break;
    case PROTO_CMD_QUIT:
        atomic_store(&c->state, CONN_CLOSING);
        break;
    case PROTO_CMD_STATS:
        do_stats(c, req);
        break;
    case PROTO_CMD_RGET:
        do_rget(c, req);
        break;
    case PROTO_CMD_DB_CHECKPOINT:
        do_db_checkpoint(c);
        break;
    case PROTO_CMD_DB_ARCHIVE:
        do_db_archive(c);
        break;
    case PROTO_CMD_DEBUG_FAULT:
        do_debug_fault(c, req);
        break;
    case PROTO_CMD_NONE:
        evbuffer_add(c->out, "ERROR\r\n", 7);
        break;
    }
}
