/* The meta commands (mg ms md ma mn me): request in, store call, memcached 1.6.18's reply out. */
#include "config.h"

#include "daemon/dispatch_meta.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "daemon/log.h"
#include "daemon/worker.h"
#include "protocol/meta.h"
#include "protocol/text.h"
#include "replication/repl.h"

/* A reply line: status code, up to 17 flags of at most 22 bytes, a base64 key, Z X W. */
#define META_LINE_MAX 1024

struct line {
    char buf[META_LINE_MAX];
    size_t n;
};

static void put(struct line *l, const char *s, size_t n)
{
    /* the parser bounds every part; a reply that would not fit is cut, never overrun */
    if (n > sizeof(l->buf) - l->n) {
        n = sizeof(l->buf) - l->n;
    }
    memcpy(l->buf + l->n, s, n);
    l->n += n;
}

static void put_u64(struct line *l, uint64_t v)
{
    char d[24];
    put(l, d, proto_u64_to_dec(d, v));
}

/* " <letter><number>" */
static void put_flag_u64(struct line *l, char letter, uint64_t v)
{
    char f[2] = {' ', letter};
    put(l, f, 2);
    put_u64(l, v);
}

/* " k<key>", in base64 followed by " b" when the key is binary. */
static void put_key(struct line *l, const char *key, size_t nkey, bool binary)
{
    put(l, " k", 2);
    if (!binary) {
        put(l, key, nkey);
        return;
    }
    char enc[4 * ((PROTO_META_KEY_BUF + 2) / 3)];
    put(l, enc, proto_base64_encode((const unsigned char *)key, nkey, enc));
    put(l, " b", 2);
}

/* memcached's " t<seconds left>" (" t-1": never expires). A time already past wraps around
 * as memcached's unsigned subtraction does. */
static void put_ttl(struct line *l, uint32_t exptime, int64_t now)
{
    if (exptime == 0) {
        put(l, " t-1", 4);
    } else {
        put_flag_u64(l, 't', (uint32_t)((int64_t)exptime - now));
    }
}

static void send_line(struct conn *c, struct line *l)
{
    put(l, "\r\n", 2);
    evbuffer_add(c->out, l->buf, l->n);
}

static void send_str(struct conn *c, const char *s)
{
    evbuffer_add(c->out, s, strlen(s));
    evbuffer_add(c->out, "\r\n", 2);
}

static void send_store_error(struct conn *c)
{
    char line[160];
    snprintf(line, sizeof(line), "SERVER_ERROR %s", store_error_reason());
    STAT_INC(&c->w->stats, store_errors);
    send_str(c, line);
}

/* An over-long 'O' makes memcached stop its walk over the flags and answer an error: the
 * flags after it take no effect. */
static bool past_late_error(const struct proto_request *req, const char *tok, size_t ntok)
{
    return req->meta.late_error != NULL && tok[0] == 'O' && ntok > PROTO_META_OPAQUE_MAX;
}

/* The opaque and key echoes every status line carries (on misses too). */
static void put_echoes(struct line *l, const struct proto_request *req)
{
    size_t pos = 0;
    const char *tok;
    size_t ntok;

    while (proto_meta_next_flag(req, &pos, &tok, &ntok)) {
        if (tok[0] == 'O') {
            put(l, " ", 1);
            put(l, tok, ntok);
        } else if (tok[0] == 'k') {
            put_key(l, req->key, req->nkey, req->meta.key_binary);
        }
    }
}

/* Fails the connection when a reply passed --max-output, as the text protocol's get does. */
static void check_output(struct conn *c)
{
    size_t max_output = c->w->srv->settings.max_output;
    if (evbuffer_get_length(c->out) > max_output) {
        log_info("closing connection from %s: a reply passed --max-output (%zu bytes)", c->peer,
                 max_output);
        atomic_fetch_add(&c->w->srv->conns.slow_reader_closes, 1);
        c->close_now = true;
    }
}

/* ---- mg ----------------------------------------------------------------------------------- */

static void do_mg(struct conn *c, const struct proto_request *req)
{
    struct worker *w = c->w;
    int64_t now = (int64_t)time(NULL);
    struct store_mget_step steps[3];
    struct store_mget_args a = {.steps = steps, .vivify = proto_meta_has(req, 'N'),
                                .no_win = req->meta.late_error != NULL,
                                .no_bump = proto_meta_has(req, 'u')};
    size_t pos = 0;
    const char *tok;
    size_t ntok;

    /* T, N and R act in request order, and not at all after an over-long opaque */
    while (proto_meta_next_flag(req, &pos, &tok, &ntok) && !past_late_error(req, tok, ntok)) {
        int64_t ttl;
        if (tok[0] == 'T') {
            ttl = req->meta.ttl;
        } else if (tok[0] == 'N') {
            ttl = req->meta.vivify_ttl;
        } else if (tok[0] == 'R') {
            ttl = req->meta.recache_ttl;
        } else {
            continue;
        }
        /* the parser refuses repeated letters: at most one step each */
        steps[a.nsteps].flag = tok[0];
        steps[a.nsteps].exptime = proto_exptime_to_abs(ttl, now);
        a.nsteps++;
    }
    bool touch = proto_meta_has(req, 'T');
    struct store_mget_result r;
    enum store_status s = store_meta_get(w->srv->store, &w->buf, req->key, req->nkey, &a, &r);
    if (s == STORE_ERROR) {
        send_store_error(c);
        return;
    }
    if (s == STORE_NOT_FOUND) {
        STAT_INC(&w->stats, get_cmds);
        STAT_INC(&w->stats, get_misses);
        if (req->meta.late_error != NULL) {
            send_str(c, req->meta.late_error);
        } else if (!proto_meta_has(req, 'q')) {
            struct line l = {.n = 0};
            put(&l, "EN", 2);
            put_echoes(&l, req);
            send_line(c, &l);
        }
        return;
    }
    if (touch) {
        STAT_INC(&w->stats, touch_cmds);
        STAT_INC(&w->stats, touch_hits);
    } else {
        STAT_INC(&w->stats, get_cmds);
        STAT_INC(&w->stats, get_hits);
    }
    if (req->meta.late_error != NULL) {
        send_str(c, req->meta.late_error);
        return;
    }

    /* a hit is answered even with q: only EN is quiet */
    struct line l = {.n = 0};
    bool value = proto_meta_has(req, 'v');
    if (value) {
        put(&l, "VA ", 3);
        put_u64(&l, r.item.nvalue);
    } else {
        put(&l, "HD", 2);
    }
    uint32_t exptime = r.exptime_before;
    pos = 0;
    while (proto_meta_next_flag(req, &pos, &tok, &ntok)) {
        switch (tok[0]) {
        case 'T':
            exptime = proto_exptime_to_abs(req->meta.ttl, now);
            break;
        case 'N':
            if (r.created) {
                exptime = proto_exptime_to_abs(req->meta.vivify_ttl, now);
            }
            break;
        case 's':
            put_flag_u64(&l, 's', r.item.nvalue);
            break;
        case 't':
            put_ttl(&l, exptime, now);
            break;
        case 'c':
            put_flag_u64(&l, 'c', r.item.cas);
            break;
        case 'f':
            put_flag_u64(&l, 'f', r.item.flags);
            break;
        case 'l':
            put_flag_u64(&l, 'l', now > (int64_t)r.mtime ? (uint64_t)(now - r.mtime) : 0);
            break;
        case 'h':
            put(&l, r.fetched ? " h1" : " h0", 3);
            break;
        case 'O':
            put(&l, " ", 1);
            put(&l, tok, ntok);
            break;
        case 'k':
            /* the item knows whether it was stored with a base64 key, not the request */
            put_key(&l, req->key, req->nkey, (r.meta & STORE_META_KEY_BINARY) != 0);
            break;
        default:
            break;
        }
    }
    if (r.meta & STORE_META_WON) {
        put(&l, " Z", 2);
    }
    if (r.meta & STORE_META_STALE) {
        put(&l, " X", 2);
    }
    if (r.won) {
        put(&l, " W", 2);
    }
    send_line(c, &l);
    if (value) {
        evbuffer_add(c->out, r.item.value, r.item.nvalue);
        evbuffer_add(c->out, "\r\n", 2);
        check_output(c);
    }
}

/* ---- ms ----------------------------------------------------------------------------------- */

static void do_ms(struct conn *c, const struct proto_request *req)
{
    struct worker *w = c->w;
    struct store_mset_args a = {.mode = STORE_MODE_SET, .flags = req->meta.client_flags,
                                .exptime = proto_exptime_to_abs(req->meta.ttl, time(NULL)),
                                .cas_in = req->meta.cas, .key_binary = req->meta.key_binary,
                                .data = req->data, .ndata = req->ndata};
    switch (req->meta.mode) {
    case 'E':
        a.mode = STORE_MODE_ADD;
        break;
    case 'A':
        a.mode = STORE_MODE_APPEND;
        break;
    case 'P':
        a.mode = STORE_MODE_PREPEND;
        break;
    case 'R':
        a.mode = STORE_MODE_REPLACE;
        break;
    default:
        break;
    }
    /* a cas makes set and replace a compare-and-swap (add ignores it, append/prepend check a
     * non-zero one); only then may I store over a newer item */
    if (req->meta.has_cas && (a.mode == STORE_MODE_SET || a.mode == STORE_MODE_REPLACE)) {
        a.mode = STORE_MODE_CAS;
        a.invalidate = proto_meta_has(req, 'I');
    } else if (a.mode != STORE_MODE_APPEND && a.mode != STORE_MODE_PREPEND) {
        a.cas_in = 0;
    }

    uint64_t cas = 0;
    STAT_INC(&w->stats, set_cmds);
    enum store_status s = store_meta_set(w->srv->store, &w->buf, req->key, req->nkey, &a, &cas);
    if (a.mode == STORE_MODE_CAS) {
        if (s == STORE_STORED) {
            STAT_INC(&w->stats, cas_hits);
        } else if (s == STORE_EXISTS) {
            STAT_INC(&w->stats, cas_badval);
        } else if (s == STORE_NOT_FOUND) {
            STAT_INC(&w->stats, cas_misses);
        }
    }
    struct line l = {.n = 0};
    switch (s) {
    case STORE_STORED:
        if (proto_meta_has(req, 'q')) {
            return;
        }
        put(&l, "HD", 2);
        break;
    case STORE_EXISTS:
        put(&l, "EX", 2);
        break;
    case STORE_NOT_FOUND:
        put(&l, "NF", 2);
        break;
    case STORE_NOT_STORED:
        put(&l, "NS", 2);
        break;
    default:
        send_store_error(c);
        return;
    }
    size_t pos = 0;
    const char *tok;
    size_t ntok;
    while (proto_meta_next_flag(req, &pos, &tok, &ntok)) {
        if (tok[0] == 'O') {
            put(&l, " ", 1);
            put(&l, tok, ntok);
        } else if (tok[0] == 'k') {
            put_key(&l, req->key, req->nkey, req->meta.key_binary);
        } else if (tok[0] == 'c') {
            put_flag_u64(&l, 'c', cas);     /* 0 unless stored, as memcached */
        }
    }
    send_line(c, &l);
}

/* ---- md ----------------------------------------------------------------------------------- */

static void do_md(struct conn *c, const struct proto_request *req)
{
    struct worker *w = c->w;
    struct store_mdelete_args a = {.has_cas = req->meta.has_cas, .cas = req->meta.cas,
                                   .invalidate = proto_meta_has(req, 'I'),
                                   .set_exptime = proto_meta_has(req, 'T'),
                                   .exptime = proto_exptime_to_abs(req->meta.ttl, time(NULL))};
    enum store_status s = store_meta_delete(w->srv->store, &w->buf, req->key, req->nkey, &a);
    struct line l = {.n = 0};
    switch (s) {
    case STORE_OK:
        if (!a.invalidate) {
            STAT_INC(&w->stats, delete_hits);
        }
        if (proto_meta_has(req, 'q')) {
            return;
        }
        put(&l, "HD", 2);
        break;
    case STORE_EXISTS:
        STAT_INC(&w->stats, delete_misses);
        put(&l, "EX", 2);
        break;
    case STORE_NOT_FOUND:
        STAT_INC(&w->stats, delete_misses);
        put(&l, "NF", 2);
        break;
    default:
        send_store_error(c);
        return;
    }
    put_echoes(&l, req);
    send_line(c, &l);
}

/* ---- ma ----------------------------------------------------------------------------------- */

static void do_ma(struct conn *c, const struct proto_request *req)
{
    struct worker *w = c->w;
    int64_t now = (int64_t)time(NULL);
    bool incr = req->meta.mode != 'D' && req->meta.mode != '-';
    struct store_delta_args a = {.incr = incr, .delta = req->meta.delta,
                                 .create = proto_meta_has(req, 'N'),
                                 .initial = req->meta.initial, .cas_in = req->meta.cas};
    size_t pos = 0;
    const char *tok;
    size_t ntok;

    /* a created item starts without exptime; N then T set it in request order, and neither
     * acts after an over-long opaque */
    while (proto_meta_next_flag(req, &pos, &tok, &ntok) && !past_late_error(req, tok, ntok)) {
        if (tok[0] == 'T') {
            a.set_exptime = true;
            a.exptime = proto_exptime_to_abs(req->meta.ttl, now);
            a.create_exptime = a.exptime;
        } else if (tok[0] == 'N') {
            a.create_exptime = proto_exptime_to_abs(req->meta.vivify_ttl, now);
        }
    }
    struct store_delta_result r;
    enum store_status s = store_delta(w->srv->store, &w->buf, req->key, req->nkey, &a, &r);
    struct line l = {.n = 0};
    switch (s) {
    case STORE_OK:
        if (!r.created) {
            if (incr) {
                STAT_INC(&w->stats, incr_hits);
            } else {
                STAT_INC(&w->stats, decr_hits);
            }
        }
        break;
    case STORE_NOT_FOUND:
        if (incr) {
            STAT_INC(&w->stats, incr_misses);
        } else {
            STAT_INC(&w->stats, decr_misses);
        }
        put(&l, "NF", 2);
        break;
    case STORE_EXISTS:
        put(&l, "EX", 2);
        break;
    case STORE_NON_NUMERIC:
        send_str(c, "CLIENT_ERROR cannot increment or decrement non-numeric value");
        return;
    default:
        send_store_error(c);
        return;
    }
    if (req->meta.late_error != NULL) {
        send_str(c, req->meta.late_error);
        return;
    }
    if (s != STORE_OK) {
        put_echoes(&l, req);    /* q does not hide NF or EX */
        send_line(c, &l);
        return;
    }
    if (!r.created && proto_meta_has(req, 'q')) {
        return;     /* memcached's q hides a hit's reply, value included, not a creation */
    }
    bool value = proto_meta_has(req, 'v');
    if (value) {
        put(&l, "VA ", 3);
        put_u64(&l, r.ndigits);
    } else {
        put(&l, "HD", 2);
    }
    uint32_t exptime = r.old_exptime;
    pos = 0;
    while (proto_meta_next_flag(req, &pos, &tok, &ntok)) {
        switch (tok[0]) {
        case 'c':
            put_flag_u64(&l, 'c', r.cas);
            break;
        case 't':
            put_ttl(&l, exptime, now);
            break;
        case 'T':
            exptime = a.exptime;
            break;
        case 'N':
            if (r.created) {
                exptime = proto_exptime_to_abs(req->meta.vivify_ttl, now);
            }
            break;
        case 'O':
            put(&l, " ", 1);
            put(&l, tok, ntok);
            break;
        case 'k':
            put_key(&l, req->key, req->nkey, req->meta.key_binary);
            break;
        default:
            break;
        }
    }
    if (value) {
        put(&l, "\r\n", 2);
        put(&l, r.digits, r.ndigits);
    }
    send_line(c, &l);
}

/* ---- me ----------------------------------------------------------------------------------- */

static void do_me(struct conn *c, const struct proto_request *req)
{
    struct worker *w = c->w;
    int64_t now = (int64_t)time(NULL);
    struct store_mget_args a = {.no_win = true, .no_bump = true};
    struct store_mget_result r;
    STAT_INC(&w->stats, meta_cmds);
    enum store_status s = store_meta_get(w->srv->store, &w->buf, req->key, req->nkey, &a, &r);
    if (s == STORE_NOT_FOUND) {
        send_str(c, "EN");
        return;
    }
    if (s != STORE_OK) {
        send_store_error(c);
        return;
    }
    struct line l = {.n = 0};
    put(&l, "ME ", 3);
    if (r.meta & STORE_META_KEY_BINARY) {
        char enc[4 * ((PROTO_META_KEY_BUF + 2) / 3)];
        put(&l, enc, proto_base64_encode((const unsigned char *)req->key, req->nkey, enc));
    } else {
        put(&l, req->key, req->nkey);
    }
    /* memcached prints exp as now - exptime: negative while the item lives */
    char tail[200];
    size_t size = proto_meta_item_size(req->nkey, r.item.flags, r.item.nvalue);
    int n = snprintf(tail, sizeof(tail),
                     " exp=%" PRId64 " la=%" PRIu64 " cas=%" PRIu64 " fetch=%s cls=%u size=%zu",
                     r.item.exptime == 0 ? (int64_t)-1 : now - (int64_t)r.item.exptime,
                     now > (int64_t)r.mtime ? (uint64_t)(now - r.mtime) : 0, r.item.cas,
                     r.fetched ? "yes" : "no", proto_meta_slab_class(size), size);
    put(&l, tail, (size_t)n);
    send_line(c, &l);
}

/* Replication: a slave answers ms/md/ma with where the master is, before storage is asked
 * (never hidden by q: it is an error). */
static bool refused(struct conn *c)
{
    char why[300];
    if (repl_write_refusal(c->w->srv->repl, why, sizeof(why)) == NULL) {
        return false;
    }
    evbuffer_add_printf(c->out, "SERVER_ERROR %s\r\n", why);
    return true;
}

void dispatch_meta(struct conn *c, const struct proto_request *req)
{
    if ((req->cmd == PROTO_CMD_META_SET || req->cmd == PROTO_CMD_META_DELETE ||
         req->cmd == PROTO_CMD_META_ARITH) && refused(c)) {
        return;
    }
    switch (req->cmd) {
    case PROTO_CMD_META_GET:
        do_mg(c, req);
        break;
    case PROTO_CMD_META_SET:
        do_ms(c, req);
        break;
    case PROTO_CMD_META_DELETE:
        do_md(c, req);
        break;
    case PROTO_CMD_META_ARITH:
        do_ma(c, req);
        break;
    case PROTO_CMD_META_NOOP:
        evbuffer_add(c->out, "MN\r\n", 4);
        break;
    case PROTO_CMD_META_DEBUG:
        do_me(c, req);
        break;
    default:
        evbuffer_add(c->out, "ERROR\r\n", 7);
        break;
    }
}
