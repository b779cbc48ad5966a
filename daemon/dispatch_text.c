/* The text protocol's commands: request in, store call, memcached's reply bytes out. */
#include "config.h"

#include "daemon/dispatch_text.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon/auth.h"
#include "daemon/auth_text.h"
#include "daemon/dispatch_meta.h"
#include "daemon/log.h"
#include "daemon/stats_prefix.h"
#include "daemon/stats_report.h"
#include "daemon/worker.h"
#include "protocol/text.h"
#include "replication/repl.h"
#include "storage/fault.h"

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

/* Replication: a slave answers a write with where the master is, before storage is asked. */
static bool refused(struct conn *c, const struct proto_request *req)
{
    char why[300];
    char line[320];
    if (repl_write_refusal(c->w->srv->repl, why, sizeof(why)) == NULL) {
        return false;
    }
    snprintf(line, sizeof(line), "SERVER_ERROR %s", why);
    reply(c, req, line);
    return true;
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
    if (touch && refused(c, req)) {
        return;
    }
    size_t start_len = evbuffer_get_length(c->out);
    size_t max_output = w->srv->settings.max_output;
    pos = 0;
    while (proto_text_next_key(req, &pos, &key, &nkey, &bad)) {
        struct store_item it;
        enum store_status s = store_get(w->srv->store, &w->buf, key, nkey, touch, exptime, &it);
        if (stats_prefix_enabled(w->srv->prefix)) {
            stats_prefix_record_get(w->srv->prefix, key, nkey, s == STORE_OK);
        }
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
    if (stats_prefix_enabled(w->srv->prefix)) {
        stats_prefix_record_set(w->srv->prefix, req->key, req->nkey);
    }
    enum store_status s = store_update(w->srv->store, &w->buf, mode, req->key, req->nkey,
                                       req->flags, exptime, mode == STORE_MODE_CAS ? req->cas : 0,
                                       req->data, req->ndata, NULL);
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
    const struct store_delta_args args = {.incr = incr, .delta = req->delta};
    struct store_delta_result r;
    enum store_status s = store_delta(w->srv->store, &w->buf, req->key, req->nkey, &args, &r);
    switch (s) {
    case STORE_OK:
        if (incr) {
            STAT_INC(&w->stats, incr_hits);
        } else {
            STAT_INC(&w->stats, decr_hits);
        }
        reply(c, req, r.digits);
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
    if (stats_prefix_enabled(w->srv->prefix)) {
        stats_prefix_record_delete(w->srv->prefix, req->key, req->nkey);
    }
    enum store_status s = store_delete(w->srv->store, &w->buf, req->key, req->nkey, 0);
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

static void text_stat(void *arg, const char *name, const char *value)
{
    evbuffer_add_printf(arg, "STAT %s %s\r\n", name, value);
}

/* stats detail on|off|dump: memcached's per-prefix counters (daemon/stats_prefix.h). */
static void do_stats_detail(struct conn *c, const struct proto_request *req, size_t pos)
{
    static const char usage[] = "CLIENT_ERROR usage: stats detail on|off|dump\r\n";
    struct stats_prefix *sp = c->w->srv->prefix;
    while (pos < req->narg && req->arg[pos] == ' ') {
        pos++;
    }
    size_t end = pos;
    while (end < req->narg && req->arg[end] != ' ') {
        end++;
    }
    const char *sub = req->arg + pos;
    size_t n = end - pos;
    if (n == 2 && memcmp(sub, "on", 2) == 0) {
        stats_prefix_enable(sp, true);
        evbuffer_add(c->out, "OK\r\n", 4);
    } else if (n == 3 && memcmp(sub, "off", 3) == 0) {
        stats_prefix_enable(sp, false);
        evbuffer_add(c->out, "OK\r\n", 4);
    } else if (n == 4 && memcmp(sub, "dump", 4) == 0) {
        size_t len = 0;
        char *dump = stats_prefix_dump(sp, &len);
        if (dump == NULL) {
            evbuffer_add(c->out, "SERVER_ERROR out of memory\r\n", 28);
            return;
        }
        evbuffer_add(c->out, dump, len);
        free(dump);
    } else {
        evbuffer_add(c->out, usage, sizeof(usage) - 1);
    }
}

static void do_stats(struct conn *c, const struct proto_request *req)
{
    size_t n = 0;
    while (n < req->narg && req->arg[n] != ' ') {
        n++;
    }
    if (n == 6 && memcmp(req->arg, "detail", 6) == 0) {
        do_stats_detail(c, req, n);
        return;
    }
    switch (stats_report(c->w->srv, req->arg, n, text_stat, c->out)) {
    case STATS_DONE:
        evbuffer_add(c->out, "END\r\n", 5);
        break;
    case STATS_RESET:
        evbuffer_add(c->out, "RESET\r\n", 7);
        break;
    case STATS_UNKNOWN:
        evbuffer_add(c->out, "ERROR\r\n", 7);
        break;
    }
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

/* iterate stops adding items once this many value bytes are in its reply (at least one item
 * is always sent), so a call costs a bounded amount of memory whatever the count. */
#define ITERATE_VALUE_BUDGET (4 * 1024 * 1024)

struct iterate_ctx {
    struct evbuffer *out;
    bool values;
    uint32_t count;             /* items wanted */
    uint32_t sent;
    size_t budget;              /* value bytes left */
    bool more;                  /* an item beyond the reply exists: the walk is not over */
    char last[PROTO_KEY_MAX];   /* the last key sent, for the next cursor */
    size_t nlast;
};

static bool iterate_item(void *arg, const char *key, size_t nkey, const struct store_item *it)
{
    struct iterate_ctx *ctx = arg;
    char line[PROTO_ITERATE_B64_MAX + 80];

    /* the walk asks for one item more than it sends: seeing it proves the walk goes on */
    if (ctx->sent == ctx->count || (ctx->values && ctx->budget == 0)) {
        ctx->more = true;
        return false;
    }
    size_t n = proto_text_item_line(line, key, nkey, it->flags, it->exptime, it->nvalue,
                                    it->cas);
    evbuffer_add(ctx->out, line, n);
    if (ctx->values) {
        evbuffer_add(ctx->out, it->value, it->nvalue);
        evbuffer_add(ctx->out, "\r\n", 2);
        ctx->budget = it->nvalue >= ctx->budget ? 0 : ctx->budget - it->nvalue;
    }
    memcpy(ctx->last, key, nkey);
    ctx->nlast = nkey;
    ctx->sent++;
    return true;
}

/* iterate <cursor> <count> [v]: one read-only walk per call, no lock kept between calls. */
static void do_iterate(struct conn *c, const struct proto_request *req)
{
    struct worker *w = c->w;
    size_t budget = w->srv->settings.max_output / 4;
    struct iterate_ctx ctx = {
        .out = evbuffer_new(),
        .values = req->iter.values,
        .count = req->max,
        .budget = budget < ITERATE_VALUE_BUDGET ? budget : ITERATE_VALUE_BUDGET,
    };

    STAT_INC(&w->stats, iterate_cmds);
    if (ctx.out == NULL) {
        evbuffer_add(c->out, "SERVER_ERROR out of memory\r\n", 28);
        return;
    }
    enum store_status s = store_range(w->srv->store, &w->buf, req->key, req->nkey, NULL, 0,
                                      req->nkey > 0, false, req->max + 1, iterate_item, &ctx);
    if (s == STORE_OK) {
        char line[PROTO_ITERATE_B64_MAX + 8];
        size_t n = 4;
        memcpy(line, "END ", 4);
        if (ctx.more) {
            n += proto_text_iterate_cursor(line + n, ctx.last, ctx.nlast);
        } else {
            line[n++] = '0';
        }
        line[n++] = '\r';
        line[n++] = '\n';
        evbuffer_add_buffer(c->out, ctx.out);
        evbuffer_add(c->out, line, n);
    } else {
        char line[160];
        snprintf(line, sizeof(line), "SERVER_ERROR %s\r\n", store_error_reason());
        evbuffer_add(c->out, line, strlen(line));
    }
    evbuffer_free(ctx.out);
}

/* MemcacheDB's replication commands and replies. */
static void do_rep(struct conn *c, const struct proto_request *req)
{
    struct repl *r = c->w->srv->repl;
    char addr[300];
    if (r == NULL) {
        reply(c, req, "REP_DISABLE");
        return;
    }
    if (req->cmd == PROTO_CMD_REP_ISMASTER) {
        reply(c, req, repl_is_master(r) ? "REP_TRUE"
                      : strcmp(repl_role_name(r), "unknown") == 0 ? "REP_UNKNOWN"
                                                                    : "REP_FALSE");
    } else if (req->cmd == PROTO_CMD_REP_WHOISMASTER) {
        reply(c, req, repl_master_addr(r, addr, sizeof(addr)) ? addr : "REP_UNKNOWN");
    } else {
        char num[16];
        char *end;
        size_t n = 0;
        while (n < req->narg && req->arg[n] != ' ' && n < sizeof(num) - 1) {
            num[n] = req->arg[n];
            n++;
        }
        num[n] = '\0';
        long prio = strtol(num, &end, 10);
        if (n == 0 || *end != '\0' || prio < 0 || prio > 1000000 || n != req->narg) {
            reply(c, req, "CLIENT_ERROR bad command line format");
        } else if (repl_set_priority(r, (int)prio) != 0) {
            reply(c, req, "SERVER_ERROR cannot set the replication priority");
        } else {
            snprintf(addr, sizeof(addr), "%ld", prio);
            reply(c, req, addr);
        }
    }
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
        if (!refused(c, req)) {
            do_update(c, req);
        }
        break;
    case PROTO_CMD_INCR:
    case PROTO_CMD_DECR:
        if (!refused(c, req)) {
            do_delta(c, req);
        }
        break;
    case PROTO_CMD_DELETE:
        if (!refused(c, req)) {
            do_delete(c, req);
        }
        break;
    case PROTO_CMD_TOUCH:
        if (!refused(c, req)) {
            do_touch(c, req);
        }
        break;
    case PROTO_CMD_FLUSH_ALL:
        if (!refused(c, req)) {
            do_flush_all(c, req);
        }
        break;
    case PROTO_CMD_REP_ISMASTER:
    case PROTO_CMD_REP_WHOISMASTER:
    case PROTO_CMD_REP_SET_PRIORITY:
        do_rep(c, req);
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
    case PROTO_CMD_ITERATE:
        do_iterate(c, req);
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
    case PROTO_CMD_META_GET:
    case PROTO_CMD_META_SET:
    case PROTO_CMD_META_DELETE:
    case PROTO_CMD_META_ARITH:
    case PROTO_CMD_META_NOOP:
    case PROTO_CMD_META_DEBUG:
        dispatch_meta(c, req);
        break;
    case PROTO_CMD_NOOP:       /* binary only: the text parser never makes these */
    case PROTO_CMD_SASL_LIST:
    case PROTO_CMD_SASL_AUTH:
    case PROTO_CMD_SASL_STEP:
    case PROTO_CMD_NONE:
        evbuffer_add(c->out, "ERROR\r\n", 7);
        break;
    }
}
