/* The binary protocol's commands: request in, store call, memcached 1.6.18's reply packets out. */
#include "config.h"

#include "daemon/dispatch_binary.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "daemon/auth.h"
#include "daemon/log.h"
#include "daemon/stats_prefix.h"
#include "daemon/stats_report.h"
#include "daemon/worker.h"
#include "protocol/binary.h"
#include "replication/repl.h"

/* The one SASL mechanism we offer: RFC 4616, the password checked against --auth-file. */
#define SASL_MECHS "PLAIN"

static int64_t now_unix(void)
{
    return (int64_t)time(NULL);
}

static void add_header(struct conn *c, const struct proto_request *req, uint16_t status,
                       uint8_t extlen, uint16_t keylen, uint32_t bodylen, uint64_t cas)
{
    unsigned char h[PROTO_BIN_HEADER];
    proto_binary_header(h, req->bin.opcode, status, extlen, keylen, bodylen, req->bin.opaque,
                        cas);
    evbuffer_add(c->out, h, sizeof(h));
}

/* An error reply: memcached sends errors for quiet requests too. */
static void reply_error(struct conn *c, const struct proto_request *req, uint16_t status)
{
    unsigned char p[PROTO_PACKET_MAX];
    size_t n = proto_binary_error(p, req->bin.opcode, status, req->bin.opaque);
    evbuffer_add(c->out, p, n);
}

/* Success without a body; a quiet request gets nothing. */
static void reply_ok(struct conn *c, const struct proto_request *req, uint64_t cas)
{
    if (!req->noreply) {
        add_header(c, req, PROTO_BIN_SUCCESS, 0, 0, 0, cas);
    }
}

/* A success or status whose body is a short text ("1.6.18", "PLAIN", "Authenticated"). */
static void reply_text(struct conn *c, const struct proto_request *req, uint16_t status,
                       const char *text)
{
    size_t n = strlen(text);
    add_header(c, req, status, 0, 0, (uint32_t)n, 0);
    evbuffer_add(c->out, text, n);
}

/* A storage failure memcached has no status for: ours, with the reason as the body, so a
 * client sees why (as SERVER_ERROR <reason> says it in the text protocol). */
static void reply_store_error(struct conn *c, const struct proto_request *req)
{
    STAT_INC(&c->w->stats, store_errors);
    reply_text(c, req, PROTO_BIN_EINTERNAL, store_error_reason());
}

/* Replication: a slave answers a write with where the master is, before storage is asked,
 * in the status it answers storage failures with (errors are sent for quiet requests too). */
static bool refused(struct conn *c, const struct proto_request *req)
{
    char why[300];
    if (repl_write_refusal(c->w->srv->repl, why, sizeof(why)) == NULL) {
        return false;
    }
    reply_text(c, req, PROTO_BIN_EINTERNAL, why);
    return true;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* get/getk/getq/getkq, gat/gatk/gatq/gatkq and touch. */
static void do_get(struct conn *c, const struct proto_request *req)
{
    struct worker *w = c->w;
    bool touch = req->cmd == PROTO_CMD_GAT || req->cmd == PROTO_CMD_TOUCH;
    uint32_t exptime = touch ? proto_exptime_to_abs(req->exptime, now_unix()) : 0;
    struct store_item it;

    if (touch && refused(c, req)) {
        return;
    }
    /* touch reads the item too: memcached's reply carries its flags and cas */
    enum store_status s = store_get(w->srv->store, &w->buf, req->key, req->nkey, touch,
                                    exptime, &it);
    if (stats_prefix_enabled(w->srv->prefix)) {
        stats_prefix_record_get(w->srv->prefix, req->key, req->nkey, s == STORE_OK);
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
        size_t nkey = req->bin.with_key ? req->nkey : 0;
        size_t nvalue = req->bin.value ? it.nvalue : 0;
        unsigned char flags[4];
        put_be32(flags, it.flags);
        /* a quiet get still answers a hit: only misses are quiet */
        add_header(c, req, PROTO_BIN_SUCCESS, sizeof(flags), (uint16_t)nkey,
                   (uint32_t)(sizeof(flags) + nkey + nvalue), it.cas);
        evbuffer_add(c->out, flags, sizeof(flags));
        evbuffer_add(c->out, req->key, nkey);
        evbuffer_add(c->out, it.value, nvalue);
        return;
    }
    if (s != STORE_NOT_FOUND) {
        reply_store_error(c, req);
        return;
    }
    if (touch) {
        STAT_INC(&w->stats, touch_misses);
    } else {
        STAT_INC(&w->stats, get_misses);
    }
    if (req->noreply) {
        return;
    }
    if (req->bin.with_key) {
        /* getk/gatk: the key instead of a message, so a client can tell which one missed */
        add_header(c, req, PROTO_BIN_KEY_ENOENT, 0, (uint16_t)req->nkey, (uint32_t)req->nkey, 0);
        evbuffer_add(c->out, req->key, req->nkey);
    } else {
        reply_error(c, req, PROTO_BIN_KEY_ENOENT);
    }
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

/* set/add/replace (a CAS when they carry a cas), append/prepend, and their quiet forms. */
static void do_update(struct conn *c, const struct proto_request *req)
{
    struct worker *w = c->w;
    enum store_mode mode = mode_of(req->cmd);
    uint32_t exptime = proto_exptime_to_abs(req->exptime, now_unix());
    uint64_t cas_out = 0;

    STAT_INC(&w->stats, set_cmds);
    if (stats_prefix_enabled(w->srv->prefix)) {
        stats_prefix_record_set(w->srv->prefix, req->key, req->nkey);
    }
    /* append/prepend check a non-zero cas too; set/add/replace with one are CAS by now */
    enum store_status s = store_update(w->srv->store, &w->buf, mode, req->key, req->nkey,
                                       req->flags, exptime, req->cas, req->data, req->ndata,
                                       &cas_out);
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
        reply_ok(c, req, cas_out);
        break;
    case STORE_NOT_STORED:
        /* memcached names the reason: add found the key, replace did not */
        if (mode == STORE_MODE_ADD) {
            reply_error(c, req, PROTO_BIN_KEY_EEXISTS);
        } else if (mode == STORE_MODE_REPLACE) {
            reply_error(c, req, PROTO_BIN_KEY_ENOENT);
        } else {
            reply_error(c, req, PROTO_BIN_NOT_STORED);
        }
        break;
    case STORE_EXISTS:
        reply_error(c, req, PROTO_BIN_KEY_EEXISTS);
        break;
    case STORE_NOT_FOUND:
        reply_error(c, req, PROTO_BIN_KEY_ENOENT);
        break;
    case STORE_TOO_LARGE:
        /* an append/prepend that would outgrow -I: memcached says "Not stored." */
        STAT_INC(&w->stats, store_too_large);
        reply_error(c, req, PROTO_BIN_NOT_STORED);
        break;
    default:
        reply_store_error(c, req);
        break;
    }
}

/* incr/decr with the binary extras: a miss stores 'initial' unless the exptime is all ones. */
static void do_delta(struct conn *c, const struct proto_request *req)
{
    struct worker *w = c->w;
    bool incr = req->cmd == PROTO_CMD_INCR;
    bool create = req->bin.create_exptime != UINT32_MAX;
    const struct store_delta_args args = {
        .incr = incr,
        .delta = req->delta,
        .create = create,
        .initial = req->bin.initial,
        .create_exptime = create ? proto_exptime_to_abs(req->bin.create_exptime, now_unix()) : 0,
        .cas_in = req->cas,
    };
    struct store_delta_result r;
    enum store_status s = store_delta(w->srv->store, &w->buf, req->key, req->nkey, &args, &r);
    switch (s) {
    case STORE_OK: {
        /* memcached counts a created item as neither a hit nor a miss */
        if (!r.created) {
            if (incr) {
                STAT_INC(&w->stats, incr_hits);
            } else {
                STAT_INC(&w->stats, decr_hits);
            }
        }
        if (req->noreply) {
            break;
        }
        unsigned char value[8];
        put_be32(value, (uint32_t)(r.value >> 32));
        put_be32(value + 4, (uint32_t)r.value);
        add_header(c, req, PROTO_BIN_SUCCESS, 0, 0, sizeof(value), r.cas);
        evbuffer_add(c->out, value, sizeof(value));
        break;
    }
    case STORE_NOT_FOUND:
        if (incr) {
            STAT_INC(&w->stats, incr_misses);
        } else {
            STAT_INC(&w->stats, decr_misses);
        }
        reply_error(c, req, PROTO_BIN_KEY_ENOENT);
        break;
    case STORE_EXISTS:
        reply_error(c, req, PROTO_BIN_KEY_EEXISTS);
        break;
    case STORE_NON_NUMERIC:
        reply_error(c, req, PROTO_BIN_DELTA_BADVAL);
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
    enum store_status s = store_delete(w->srv->store, &w->buf, req->key, req->nkey, req->cas);
    switch (s) {
    case STORE_OK:
        STAT_INC(&w->stats, delete_hits);
        reply_ok(c, req, 0);
        break;
    case STORE_NOT_FOUND:
        STAT_INC(&w->stats, delete_misses);
        reply_error(c, req, PROTO_BIN_KEY_ENOENT);
        break;
    case STORE_EXISTS:
        reply_error(c, req, PROTO_BIN_KEY_EEXISTS);
        break;
    default:
        reply_store_error(c, req);
        break;
    }
}

static void do_flush(struct conn *c, const struct proto_request *req)
{
    struct worker *w = c->w;
    uint32_t at = 0;
    STAT_INC(&w->stats, flush_cmds);
    if (req->delay > 0) {
        at = proto_exptime_to_abs(req->delay, now_unix());
    }
    if (store_flush_all(w->srv->store, at) == STORE_OK) {
        reply_ok(c, req, 0);
    } else {
        reply_store_error(c, req);
    }
}

struct stat_ctx {
    struct conn *c;
    const struct proto_request *req;
};

/* One statistic: its name as the key, its value as the body. */
static void bin_stat(void *arg, const char *name, const char *value)
{
    struct stat_ctx *ctx = arg;
    size_t nname = strlen(name);
    size_t nvalue = strlen(value);
    add_header(ctx->c, ctx->req, PROTO_BIN_SUCCESS, 0, (uint16_t)nname,
               (uint32_t)(nname + nvalue), 0);
    evbuffer_add(ctx->c->out, name, nname);
    evbuffer_add(ctx->c->out, value, nvalue);
}

static bool arg_starts(const struct proto_request *req, const char *prefix)
{
    size_t n = strlen(prefix);
    return req->narg >= n && memcmp(req->arg, prefix, n) == 0;
}

/* "detail on", "detail off", "detail dump" (memcached compares prefixes: "detail onx" is on).
 * Returns false for anything else. */
static bool stats_detail(struct conn *c, const struct proto_request *req)
{
    struct stats_prefix *sp = c->w->srv->prefix;
    const struct proto_request sub = {.arg = req->arg + 6, .narg = req->narg - 6};

    if (arg_starts(&sub, " dump")) {
        size_t n = 0;
        char *dump = stats_prefix_dump(sp, &n);
        if (dump == NULL) {
            reply_error(c, req, PROTO_BIN_ENOMEM);
            return true;
        }
        add_header(c, req, PROTO_BIN_SUCCESS, 0, 8, (uint32_t)(8 + n), 0);
        evbuffer_add(c->out, "detailed", 8);
        evbuffer_add(c->out, dump, n);
        free(dump);
    } else if (arg_starts(&sub, " on")) {
        stats_prefix_enable(sp, true);
    } else if (arg_starts(&sub, " off")) {
        stats_prefix_enable(sp, false);
    } else {
        return false;
    }
    add_header(c, req, PROTO_BIN_SUCCESS, 0, 0, 0, 0);
    return true;
}

/*
 * stat [group]: one packet per statistic, then an empty one. memcached matches "reset",
 * "settings" and "detail" as prefixes ("resetfoo" resets) and other groups exactly; it has no
 * "conns" in the binary protocol. Unknown groups are "Not found".
 */
static void do_stats(struct conn *c, const struct proto_request *req)
{
    struct stat_ctx ctx = {c, req};
    enum stats_outcome o;

    if (arg_starts(req, "detail")) {
        if (!stats_detail(c, req)) {
            reply_error(c, req, PROTO_BIN_KEY_ENOENT);
        }
        return;
    }
    if (arg_starts(req, "reset")) {
        o = stats_report(c->w->srv, "reset", 5, bin_stat, &ctx);
    } else if (arg_starts(req, "settings")) {
        o = stats_report(c->w->srv, "settings", 8, bin_stat, &ctx);
    } else if (req->narg == 5 && memcmp(req->arg, "conns", 5) == 0) {
        o = STATS_UNKNOWN;
    } else {
        o = stats_report(c->w->srv, req->arg, req->narg, bin_stat, &ctx);
    }
    if (o == STATS_UNKNOWN) {
        reply_error(c, req, PROTO_BIN_KEY_ENOENT);
        return;
    }
    add_header(c, req, PROTO_BIN_SUCCESS, 0, 0, 0, 0);
}

/*
 * Checks an RFC 4616 PLAIN response, [authzid] NUL authcid NUL passwd with exactly two NULs,
 * and logs the outcome as the text protocol's login does. As Cyrus SASL (which memcached
 * uses) an authzid other than the user is refused: we have no proxy authorization.
 */
static bool sasl_plain_ok(struct conn *c, const char *msg, size_t n)
{
    const char *end = msg + n;
    const char *nul1 = memchr(msg, '\0', n);
    const char *user = nul1 != NULL ? nul1 + 1 : end;
    const char *nul2 = nul1 != NULL ? memchr(user, '\0', (size_t)(end - user)) : NULL;
    const char *pass = nul2 != NULL ? nul2 + 1 : end;
    size_t nuser = (size_t)((nul2 != NULL ? nul2 : end) - user);
    size_t npass = (size_t)(end - pass);
    size_t nauthz = nul1 != NULL ? (size_t)(nul1 - msg) : 0;
    char name[4 * 64 + 1];

    auth_printable(name, sizeof(name), user, nuser);
    bool ok = nul2 != NULL && nuser > 0 && npass > 0 && memchr(pass, '\0', npass) == NULL &&
              (nauthz == 0 || (nauthz == nuser && memcmp(msg, user, nuser) == 0)) &&
              auth_check(c->w->srv->auth, user, nuser, pass, npass);
    if (ok) {
        log_info("%s authenticated as '%s' (binary SASL PLAIN)", c->peer, name);
    } else {
        log_warn("authentication failure from %s: user '%s' (binary SASL PLAIN)", c->peer, name);
    }
    return ok;
}

/* The outcome of a finished SASL exchange, counted as memcached counts it. */
static void sasl_result(struct conn *c, const struct proto_request *req, bool ok)
{
    STAT_INC(&c->w->stats, auth_cmds);
    if (ok) {
        c->authenticated = true;
        reply_text(c, req, PROTO_BIN_SUCCESS, "Authenticated");
    } else {
        STAT_INC(&c->w->stats, auth_errors);
        reply_error(c, req, PROTO_BIN_AUTH_ERROR);
    }
}

/* Checks PLAIN credentials the way memcached's Cyrus SASL connection does: once one exchange
 * succeeded, the next credentials fail (and reset that), whoever they are for. */
static void sasl_check(struct conn *c, const struct proto_request *req)
{
    bool ok = false;
    if (c->sasl_done) {
        c->sasl_done = false;
        log_warn("authentication failure from %s: SASL credentials after a completed exchange "
                 "(binary SASL PLAIN)", c->peer);
    } else {
        ok = sasl_plain_ok(c, req->data, req->ndata);
        c->sasl_done = ok;
    }
    sasl_result(c, req, ok);
}

/*
 * SASL as memcached 1.6.18 with Cyrus SASL and mech_list PLAIN behaves (observed, see
 * test_binary_sasl.py): every SASL command first drops the connection's authentication. AUTH
 * with an unknown mechanism fails and forgets any earlier exchange; AUTH PLAIN with an empty
 * response answers "continue" (0x21) and opens an exchange that STEPs carry the credentials
 * to, a failed STEP leaving it open; AUTH PLAIN with credentials checks them at once. The
 * parser refuses SASL when auth is off.
 */
static void do_sasl(struct conn *c, const struct proto_request *req)
{
    c->authenticated = false;
    if (req->cmd == PROTO_CMD_SASL_LIST) {
        reply_text(c, req, PROTO_BIN_SUCCESS, SASL_MECHS);
        return;
    }
    if (req->cmd == PROTO_CMD_SASL_AUTH) {
        /* memcached hands the mechanism to SASL as a C string: it ends at a NUL */
        const char *nul = memchr(req->key, '\0', req->nkey);
        size_t nmech = nul != NULL ? (size_t)(nul - req->key) : req->nkey;
        c->sasl_started = false;
        if (nmech != strlen(SASL_MECHS) || strncasecmp(req->key, SASL_MECHS, nmech) != 0) {
            char mech[4 * PROTO_BIN_SASL_MECH_MAX + 1];
            auth_printable(mech, sizeof(mech), req->key, nmech);
            log_warn("authentication failure from %s: SASL mechanism '%s' (binary)", c->peer,
                     mech);
            c->sasl_done = false;
            sasl_result(c, req, false);
            return;
        }
        if (req->ndata == 0) {
            c->sasl_started = true;
            add_header(c, req, PROTO_BIN_AUTH_CONTINUE, 0, 0, 0, 0);
            return;
        }
        sasl_check(c, req);
        c->sasl_started = c->authenticated;
        return;
    }
    if (!c->sasl_started || c->sasl_done) {
        log_warn("authentication failure from %s: SASL step without an open exchange (binary)",
                 c->peer);
        sasl_result(c, req, false);
        return;
    }
    sasl_check(c, req);
}

void dispatch_binary(struct conn *c, const struct proto_request *req)
{
    switch (req->cmd) {
    case PROTO_CMD_GET:
    case PROTO_CMD_GAT:
    case PROTO_CMD_TOUCH:
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
    case PROTO_CMD_FLUSH_ALL:
        if (!refused(c, req)) {
            do_flush(c, req);
        }
        break;
    case PROTO_CMD_NOOP:
        add_header(c, req, PROTO_BIN_SUCCESS, 0, 0, 0, 0);
        /* memcached writes its replies out at a NOOP: they survive a close that follows */
        c->out_keep = evbuffer_get_length(c->out);
        break;
    case PROTO_CMD_VERSION:
        reply_text(c, req, PROTO_BIN_SUCCESS, MEMCACHED_COMPAT_VERSION);
        break;
    case PROTO_CMD_QUIT:
        reply_ok(c, req, 0);
        atomic_store(&c->state, CONN_CLOSING);
        break;
    case PROTO_CMD_STATS:
        do_stats(c, req);
        break;
    case PROTO_CMD_SASL_LIST:
    case PROTO_CMD_SASL_AUTH:
    case PROTO_CMD_SASL_STEP:
        do_sasl(c, req);
        break;
    default:
        /* the parser maps every opcode it accepts onto the commands above */
        reply_error(c, req, PROTO_BIN_UNKNOWN_COMMAND);
        break;
    }
}
