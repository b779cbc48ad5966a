/* mcstore-rebalance: a pass over the old owners, copying moving keys to their new owners. */
#include "tools/rebalance/rebalance.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "protocol/meta.h"
#include "protocol/text.h"
#include "tools/rebalance/ledger.h"
#include "tools/rebalance/net.h"
#include "tools/rebalance/rate.h"
#include "tools/rebalance/reply.h"

/* Meta commands carry keys of at most this many bytes, base64 ones included. */
#define META_KEY_MAX 250
/* Masters followed in a row for one round of commands before giving up on them. */
#define MAX_FOLLOWS 8
/* Rounds of resolving one key (read the target, write again) before it counts as an error. */
#define MAX_RESOLVE_STEPS 6

struct node {
    char host[RING_HOST_MAX + 1];       /* as the ring names it */
    uint16_t port;
    char addr[RING_HOST_MAX + 16];      /* host:port, for messages */
    char group[RING_HOST_MAX + 16];     /* the replication group's master, or addr */
    struct rb_conn rd;                  /* iterate, on the address given */
    struct rb_conn wr;                  /* writes and reads that must see them: the master */
    char wr_host[RING_HOST_MAX + 1];    /* where wr goes: the address given or a master */
    uint16_t wr_port;
};

/* What a batch does with one item. */
enum action {
    ACT_NONE,                   /* nothing to write */
    ACT_ADD,                    /* ms ... ME: never overwrites */
    ACT_CAS,                    /* ms ... MS C<cas_in>: only over our own copy */
};

struct bitem {
    struct rb_item it;
    size_t voff;                /* the value in the batch arena */
    uint64_t digest;
    size_t target;              /* nodes index of the new owner */
    enum action action;
    uint64_t cas_in;
    bool moving;
    bool confirmed;             /* the new owner holds this version or a client's newer one */
    bool resolve;               /* the write was refused: read the target and decide */
    bool readd;                 /* the cas write found no item: add it */
    bool had_pending;           /* the ledger held an unconfirmed write of an earlier run */
};

/* One pipelined meta command and its reply. */
struct cmd {
    size_t off;                 /* its bytes in rb->out */
    size_t len;
    size_t ref;                 /* the batch item (or ledger entry) it is for */
    bool done;
    enum rb_meta_kind kind;
    bool has_cas;
    uint64_t cas;
    uint64_t digest;            /* VA: ledger_digest of the flags and value */
    char msg[200];              /* errors: the text */
};

struct rb {
    const struct rb_config *cfg;
    struct node *nodes;
    size_t nnodes;
    size_t *old_node;           /* old ring index -> nodes index */
    size_t *new_node;           /* new ring index -> nodes index */
    struct ledger *ledger;
    char ledger_path[4096];
    struct rb_state st;
    struct rb_counters run;
    struct rb_rate rate;
    double started;
    double last_sync;
    double last_progress;
    bool progress_shown;
    uint64_t total_items;       /* the sources' curr_items at the start: for the ETA */
    char *arena;                /* the batch's values */
    size_t narena;
    size_t caparena;
    struct bitem *items;
    size_t citems;
    struct rb_out out;
    struct cmd *cmds;
    size_t ccmds;
    char err[512];              /* why the last step failed */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool stopping(const struct rb *rb)
{
    return rb->cfg->stop != NULL && *rb->cfg->stop;
}

/* Sleeps secs; with interruptible, returns early once a stop was asked for. */
static void sleep_s(const struct rb *rb, double secs, bool interruptible)
{
    double end = now_s() + secs;
    for (;;) {
        double left = end - now_s();
        if (left <= 0 || (interruptible && stopping(rb))) {
            return;
        }
        if (left > 0.1) {
            left = 0.1;
        }
        struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

static void end_progress_line(struct rb *rb)
{
    if (rb->progress_shown) {
        fputc('\n', stderr);
        rb->progress_shown = false;
    }
}

static void say(struct rb *rb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(struct rb *rb, const char *fmt, ...)
{
    va_list ap;
    end_progress_line(rb);
    fputs("mcstore-rebalance: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

#define VERBOSE(rb, ...) \
    do { \
        if ((rb)->cfg->verbose) { \
            say((rb), __VA_ARGS__); \
        } \
    } while (0)

/* A printable form of a key for messages: the text protocol's token. */
static const char *key_text(const struct rb_item *it)
{
    static char buf[PROTO_ITERATE_B64_MAX + 8];
    snprintf(buf, sizeof(buf), "%.*s%s", (int)it->ntoken, it->token, it->b64 ? " (base64)" : "");
    return buf;
}

static void progress(struct rb *rb, bool force)
{
    if (!rb->cfg->progress) {
        return;
    }
    double now = now_s();
    if (!force && now - rb->last_progress < 0.2) {
        return;
    }
    rb->last_progress = now;
    double elapsed = now - rb->started;
    double rate = elapsed > 0 ? (double)rb->run.scanned / elapsed : 0;
    uint64_t done = rb->st.total.scanned;
    uint64_t total = rb->total_items > done ? rb->total_items : done;
    int pct = total > 0 ? (int)(100.0 * (double)done / (double)total) : 100;
    char bar[31];
    int fill = pct * 30 / 100;
    for (int i = 0; i < 30; i++) {
        bar[i] = i < fill ? '#' : '.';
    }
    bar[30] = '\0';
    char eta[32] = "--:--";
    if (rate > 0 && total >= done) {
        long secs = (long)((double)(total - done) / rate);
        snprintf(eta, sizeof(eta), "%ld:%02ld", secs / 60, secs % 60);
    }
    fprintf(stderr, "\rpass %" PRIu64 " [%s] %3d%% %" PRIu64 "/%" PRIu64 " keys, moved %" PRIu64
            ", %.0f keys/s, ETA %s   ", rb->st.pass, bar, pct, done, total,
            rb->st.total.moved + rb->st.total.updated, rate, eta);
    fflush(stderr);
    rb->progress_shown = true;
}

/* ---- nodes and connections ---------------------------------------------------------------- */

static void format_addr(char *out, size_t n, const char *host, uint16_t port)
{
    if (strchr(host, ':') != NULL) {
        snprintf(out, n, "[%s]:%u", host, port);
    } else {
        snprintf(out, n, "%s:%u", host, port);
    }
}

static size_t node_index(struct rb *rb, const struct ring_node *rn)
{
    for (size_t i = 0; i < rb->nnodes; i++) {
        if (rb->nodes[i].port == rn->port && strcmp(rb->nodes[i].host, rn->host) == 0) {
            return i;
        }
    }
    struct node *n = &rb->nodes[rb->nnodes];
    memset(n, 0, sizeof(*n));
    snprintf(n->host, sizeof(n->host), "%s", rn->host);
    n->port = rn->port;
    format_addr(n->addr, sizeof(n->addr), n->host, n->port);
    snprintf(n->group, sizeof(n->group), "%s", n->addr);
    rb_conn_init(&n->rd, rb->cfg->timeout_ms);
    rb_conn_init(&n->wr, rb->cfg->timeout_ms);
    snprintf(n->wr_host, sizeof(n->wr_host), "%s", n->host);
    n->wr_port = n->port;
    return rb->nnodes++;
}

static int build_nodes(struct rb *rb)
{
    const struct ring *o = rb->cfg->old_ring.ring;
    const struct ring *w = rb->cfg->new_ring.ring;
    size_t no = ring_node_count(o);
    size_t nw = ring_node_count(w);
    rb->nodes = calloc(no + nw, sizeof(*rb->nodes));
    rb->old_node = calloc(no, sizeof(size_t));
    rb->new_node = calloc(nw, sizeof(size_t));
    if (rb->nodes == NULL || rb->old_node == NULL || rb->new_node == NULL) {
        snprintf(rb->err, sizeof(rb->err), "out of memory");
        return -1;
    }
    for (size_t i = 0; i < no; i++) {
        rb->old_node[i] = node_index(rb, ring_node(o, i));
    }
    for (size_t i = 0; i < nw; i++) {
        rb->new_node[i] = node_index(rb, ring_node(w, i));
    }
    return 0;
}

/* Closes every connection and points writes back at the addresses given: after a failure,
 * the master followed may be the member that failed. */
static void reset_conns(struct rb *rb)
{
    for (size_t i = 0; i < rb->nnodes; i++) {
        struct node *n = &rb->nodes[i];
        rb_conn_close(&n->rd);
        rb_conn_close(&n->wr);
        snprintf(n->wr_host, sizeof(n->wr_host), "%s", n->host);
        n->wr_port = n->port;
    }
}

static int conn_fail(struct rb *rb, const struct rb_conn *c)
{
    snprintf(rb->err, sizeof(rb->err), "%s", c->err);
    return -1;
}

static int ensure_rd(struct rb *rb, struct node *n)
{
    if (n->rd.fd < 0 && rb_conn_open(&n->rd, n->host, n->port) != 0) {
        return conn_fail(rb, &n->rd);
    }
    return 0;
}

static int ensure_wr(struct rb *rb, struct node *n)
{
    if (n->wr.fd < 0 && rb_conn_open(&n->wr, n->wr_host, n->wr_port) != 0) {
        return conn_fail(rb, &n->wr);
    }
    return 0;
}

/* The node's replication group (its master's address), so that one group named by two
 * members in the two lists is known to be one node. Also checks the node answers. */
static int learn_group(struct rb *rb, struct node *n)
{
    const char *line;
    size_t len;
    double wait_start = now_s();
    double backoff = 0.05;
    for (;;) {
        if (ensure_rd(rb, n) != 0 || rb_conn_send(&n->rd, "rep_whoismaster\r\n", 17) != 0 ||
            rb_conn_line(&n->rd, &line, &len) != 0) {
            return conn_fail(rb, &n->rd);
        }
        /* REP_DISABLE (not replicated), REP_UNKNOWN (no master yet), ERROR (not mcstore) */
        if (len > 0 && len < sizeof(n->group) && memchr(line, ':', len) != NULL &&
            memchr(line, ' ', len) == NULL) {
            snprintf(n->group, sizeof(n->group), "%.*s", (int)len, line);
            return 0;
        }
        if (len != 11 || memcmp(line, "REP_UNKNOWN", 11) != 0) {
            break;
        }
        /* a member of a group without a master cannot say which group it is in: taken for
         * a node of its own, the group named by another member in the other ring would look
         * like two nodes, its keys would "move" within it and --delete-moved would delete the
         * only copy. So wait for the election, as writes do. */
        if (now_s() - wait_start >= rb->cfg->master_wait || stopping(rb)) {
            snprintf(rb->err, sizeof(rb->err), "%s: its replication group has no master after "
                     "%.0f s (rep_whoismaster: REP_UNKNOWN); run again once one is elected",
                     n->addr, rb->cfg->master_wait);
            return -1;
        }
        VERBOSE(rb, "%s: its replication group has no master yet; waiting", n->addr);
        sleep_s(rb, backoff, true);
        backoff = backoff * 2 > 1.0 ? 1.0 : backoff * 2;
    }
    /* the address connected to, not the name given: one server named "localhost:P" in one
     * ring and "127.0.0.1:P" in the other must be one node, or its keys "move" onto
     * themselves and --delete-moved deletes the only copy */
    struct sockaddr_storage sa;
    socklen_t salen = sizeof(sa);
    char host[128];             /* a numeric address (with a v6 scope) */
    char serv[16];
    if (getpeername(n->rd.fd, (struct sockaddr *)&sa, &salen) == 0 &&
        getnameinfo((struct sockaddr *)&sa, salen, host, sizeof(host), serv, sizeof(serv),
                    NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
        snprintf(n->group, sizeof(n->group), "%s%s%s:%s", sa.ss_family == AF_INET6 ? "[" : "",
                 host, sa.ss_family == AF_INET6 ? "]" : "", serv);
    }
    return 0;
}

/* curr_items of a node (for the progress bar's ETA). */
static int curr_items(struct rb *rb, struct node *n, uint64_t *items)
{
    const char *line;
    size_t len;
    *items = 0;
    if (ensure_rd(rb, n) != 0 || rb_conn_send(&n->rd, "stats\r\n", 7) != 0) {
        return conn_fail(rb, &n->rd);
    }
    for (int i = 0; i < 1000; i++) {
        if (rb_conn_line(&n->rd, &line, &len) != 0) {
            return conn_fail(rb, &n->rd);
        }
        if (len == 3 && memcmp(line, "END", 3) == 0) {
            return 0;
        }
        rb_parse_stat_u64(line, len, "curr_items", items);
    }
    snprintf(rb->err, sizeof(rb->err), "%s: stats did not end", n->addr);
    return -1;
}

/* ---- pipelined meta commands with master following ---------------------------------------- */

static struct cmd *new_cmd(struct rb *rb, size_t *ncmds, size_t ref)
{
    if (*ncmds == rb->ccmds) {
        size_t c = rb->ccmds ? rb->ccmds * 2 : 256;
        struct cmd *p = realloc(rb->cmds, c * sizeof(*p));
        if (p == NULL) {
            return NULL;
        }
        rb->cmds = p;
        rb->ccmds = c;
    }
    struct cmd *c = &rb->cmds[(*ncmds)++];
    memset(c, 0, sizeof(*c));
    c->ref = ref;
    c->off = rb->out.n;
    return c;
}

/* Ends the command new_cmd started: its bytes are what was added to rb->out since. */
static void end_cmd(struct rb *rb, struct cmd *c)
{
    c->len = rb->out.n - c->off;
}

/* The key as a meta command takes it; false when it does not fit (a long binary key). */
static bool meta_key(const char *token, size_t ntoken, bool b64, const char **k, size_t *nk,
                     const char **bflag)
{
    *k = token;
    *nk = ntoken;
    *bflag = b64 ? " b" : "";
    return ntoken <= META_KEY_MAX;
}

/*
 * Sends cmds[0..n) to node n's write connection, pipelined, and reads their replies. A
 * replication refusal is not a reply: "master is host:port" moves the connection to that
 * master and the refused commands are sent again; "no master elected yet" waits (with
 * backoff, up to cfg->master_wait) and sends them again. Returns 0 when every command has its
 * reply (a refusal that outlasted the wait is left as its SERVER_ERROR), or -1 with rb->err
 * when the connection failed or went out of step.
 */
static int pipeline(struct rb *rb, struct node *nd, struct cmd *cmds, size_t n)
{
    struct rb_out send = {0};
    double wait_start = -1;
    double backoff = 0.05;
    int follows = 0;
    int rc = -1;

    for (;;) {
        bool pending = false;
        send.n = 0;
        for (size_t i = 0; i < n; i++) {
            if (!cmds[i].done) {
                pending = true;
                if (rb_out_add(&send, rb->out.p + cmds[i].off, cmds[i].len) != 0) {
                    snprintf(rb->err, sizeof(rb->err), "out of memory");
                    goto out;
                }
            }
        }
        if (!pending) {
            rc = 0;
            goto out;
        }
        if (ensure_wr(rb, nd) != 0 || rb_conn_send(&nd->wr, send.p, send.n) != 0) {
            conn_fail(rb, &nd->wr);
            goto out;
        }
        bool follow = false;
        bool wait = false;
        char fhost[RING_HOST_MAX + 1] = "";
        uint16_t fport = 0;
        char refusal[200] = "";
        for (size_t i = 0; i < n; i++) {
            struct cmd *c = &cmds[i];
            const char *line;
            size_t len;
            struct rb_meta_reply r;
            if (c->done) {
                continue;
            }
            if (rb_conn_line(&nd->wr, &line, &len) != 0) {
                conn_fail(rb, &nd->wr);
                goto out;
            }
            rb_parse_meta_line(line, len, &r);
            if (r.kind == RB_META_BAD) {
                snprintf(rb->err, sizeof(rb->err), "%s: unexpected reply \"%.*s\"", nd->addr,
                         (int)(len > 100 ? 100 : len), line);
                rb_conn_close(&nd->wr);
                goto out;
            }
            if (r.kind == RB_META_SERVER_ERROR) {
                char host[RING_HOST_MAX + 1];
                uint16_t port;
                enum rb_refusal why = rb_parse_refusal(r.msg, r.nmsg, host, sizeof(host), &port);
                if (why != RB_REFUSAL_NONE) {
                    snprintf(refusal, sizeof(refusal), "%.*s", (int)r.nmsg, r.msg);
                    if (why == RB_REFUSAL_MASTER_IS && !follow) {
                        follow = true;
                        snprintf(fhost, sizeof(fhost), "%s", host);
                        fport = port;
                    } else if (why == RB_REFUSAL_NO_MASTER) {
                        wait = true;
                    }
                    continue;
                }
            }
            c->kind = r.kind;
            c->has_cas = r.has_cas;
            c->cas = r.cas;
            if (r.kind == RB_META_SERVER_ERROR || r.kind == RB_META_CLIENT_ERROR) {
                snprintf(c->msg, sizeof(c->msg), "%.*s", (int)r.nmsg, r.msg);
            } else if (r.kind == RB_META_ERROR) {
                snprintf(c->msg, sizeof(c->msg), "ERROR");
            }
            if (r.kind == RB_META_VA) {
                uint32_t flags = r.flags;
                const char *data;
                if (rb_conn_data(&nd->wr, r.vlen, &data) != 0) {
                    conn_fail(rb, &nd->wr);
                    goto out;
                }
                c->digest = ledger_digest(flags, data, r.vlen);
            }
            c->done = true;
        }
        if (follow) {
            if (++follows > MAX_FOLLOWS) {
                snprintf(rb->err, sizeof(rb->err), "%s: masters keep pointing elsewhere (last: "
                         "%s)", nd->addr, refusal);
                rb_conn_close(&nd->wr);
                goto out;
            }
            VERBOSE(rb, "%s: writes follow the master: %s", nd->addr, refusal);
            snprintf(nd->wr_host, sizeof(nd->wr_host), "%s", fhost);
            nd->wr_port = fport;
            rb_conn_close(&nd->wr);
            continue;
        }
        if (wait) {
            double now = now_s();
            if (wait_start < 0) {
                wait_start = now;
                VERBOSE(rb, "%s: %s; waiting up to %.0f s", nd->addr, refusal,
                        rb->cfg->master_wait);
            }
            if (now - wait_start >= rb->cfg->master_wait) {
                for (size_t i = 0; i < n; i++) {
                    if (!cmds[i].done) {
                        cmds[i].done = true;
                        cmds[i].kind = RB_META_SERVER_ERROR;
                        snprintf(cmds[i].msg, sizeof(cmds[i].msg), "%s", refusal);
                    }
                }
                rc = 0;
                goto out;
            }
            sleep_s(rb, backoff, false);
            backoff = backoff * 2 > 1.0 ? 1.0 : backoff * 2;
        }
    }
out:
    rb_out_free(&send);
    return rc;
}

/* Appends "ms <key> <len>[ b] F<flags>[ T<exptime>] M<mode>[ C<cas>] c\r\n<data>\r\n". */
static int add_ms(struct rb *rb, const struct bitem *b, bool cas_mode, uint64_t cas)
{
    const char *k;
    size_t nk;
    const char *bflag;
    meta_key(b->it.token, b->it.ntoken, b->it.b64, &k, &nk, &bflag);
    int rc = rb_out_printf(&rb->out, "ms %.*s %zu%s F%" PRIu32, (int)nk, k, b->it.nbytes, bflag,
                           b->it.flags);
    if (rc == 0 && b->it.exptime != 0) {
        rc = rb_out_printf(&rb->out, " T%" PRIu32, b->it.exptime);
    }
    if (rc == 0) {
        rc = cas_mode ? rb_out_printf(&rb->out, " MS C%" PRIu64 " c\r\n", cas)
                      : rb_out_add(&rb->out, " ME c\r\n", 7);
    }
    if (rc == 0) {
        rc = rb_out_add(&rb->out, rb->arena + b->voff, b->it.nbytes);
    }
    if (rc == 0) {
        rc = rb_out_add(&rb->out, "\r\n", 2);
    }
    return rc;
}

/* ---- one batch ---------------------------------------------------------------------------- */

static int arena_add(struct rb *rb, const char *data, size_t n, size_t *off)
{
    if (rb->narena + n > rb->caparena) {
        size_t cap = rb->caparena ? rb->caparena : 1024 * 1024;
        while (cap < rb->narena + n) {
            cap *= 2;
        }
        char *p = realloc(rb->arena, cap);
        if (p == NULL) {
            return -1;
        }
        rb->arena = p;
        rb->caparena = cap;
    }
    memcpy(rb->arena + rb->narena, data, n);
    *off = rb->narena;
    rb->narena += n;
    return 0;
}

/* One iterate call on the source: items into rb->items, the next cursor into next. Returns
 * the number of items, or -1 with rb->err. */
static long fetch(struct rb *rb, struct node *src, const char *cursor, uint32_t count,
                  char *next)
{
    const char *line;
    size_t len;
    size_t n = 0;

    rb->narena = 0;
    if (ensure_rd(rb, src) != 0) {
        return -1;
    }
    char req[PROTO_ITERATE_B64_MAX + 40];
    int nreq = snprintf(req, sizeof(req), "iterate %s %" PRIu32 " v\r\n", cursor, count);
    if (rb_conn_send(&src->rd, req, (size_t)nreq) != 0) {
        return conn_fail(rb, &src->rd);
    }
    for (;;) {
        if (rb_conn_line(&src->rd, &line, &len) != 0) {
            return conn_fail(rb, &src->rd);
        }
        if (n == rb->citems) {
            size_t c = rb->citems ? rb->citems * 2 : 256;
            struct bitem *p = realloc(rb->items, c * sizeof(*p));
            if (p == NULL) {
                snprintf(rb->err, sizeof(rb->err), "out of memory");
                return -1;
            }
            rb->items = p;
            rb->citems = c;
        }
        struct bitem *b = &rb->items[n];
        memset(b, 0, sizeof(*b));
        switch (rb_parse_iter_line(line, len, &b->it, next)) {
        case RB_ITER_END:
            return (long)n;
        case RB_ITER_ITEM: {
            const char *data;
            if (rb_conn_data(&src->rd, b->it.nbytes, &data) != 0) {
                return conn_fail(rb, &src->rd);
            }
            if (arena_add(rb, data, b->it.nbytes, &b->voff) != 0) {
                snprintf(rb->err, sizeof(rb->err), "out of memory");
                return -1;
            }
            b->digest = ledger_digest(b->it.flags, data, b->it.nbytes);
            n++;
            break;
        }
        case RB_ITER_ERROR:
            snprintf(rb->err, sizeof(rb->err), "%s: iterate answered \"%.*s\"", src->addr,
                     (int)(len > 200 ? 200 : len), line);
            if (len >= 5 && memcmp(line, "ERROR", 5) == 0) {
                snprintf(rb->err, sizeof(rb->err), "%s does not know iterate: is it mcstore?",
                         src->addr);
            }
            return -1;
        case RB_ITER_BAD:
            snprintf(rb->err, sizeof(rb->err), "%s: unexpected iterate reply \"%.*s\"",
                     src->addr, (int)(len > 100 ? 100 : len), line);
            rb_conn_close(&src->rd);
            return -1;
        }
    }
}

/* Decides what to do with each item: rb->items[0..n). */
static void classify(struct rb *rb, size_t src, struct node *snode, size_t n,
                     struct rb_counters *bc)
{
    const struct ring *o = rb->cfg->old_ring.ring;
    const struct ring *w = rb->cfg->new_ring.ring;

    for (size_t i = 0; i < n; i++) {
        struct bitem *b = &rb->items[i];
        bc->scanned++;
        if (ring_node_for_key(o, b->it.key, b->it.nkey) != src) {
            /* a copy the old ring does not route to this node: clients never read it, and it
             * may be older than the owner's, so it must not win a race to the new owner */
            bc->stray++;
            continue;
        }
        b->target = rb->new_node[ring_node_for_key(w, b->it.key, b->it.nkey)];
        if (strcmp(rb->nodes[b->target].group, snode->group) == 0) {
            continue;
        }
        b->moving = true;
        bc->moving++;
        const char *k;
        size_t nk;
        const char *bflag;
        if (!meta_key(b->it.token, b->it.ntoken, b->it.b64, &k, &nk, &bflag)) {
            say(rb, "%s: key %s is too long for a meta command in base64: not moved",
                snode->addr, key_text(&b->it));
            bc->errors++;
            b->moving = false;
            continue;
        }
        struct ledger_entry *e = ledger_find(rb->ledger, b->it.key, b->it.nkey);
        b->had_pending = e != NULL && e->has_pending;
        if (e == NULL || e->target == LEDGER_NONE) {
            b->action = ACT_ADD;
        } else if (e->target == LEDGER_NEWER) {
            bc->newer++;
            b->confirmed = true;
        } else if (e->src_cas == b->it.cas) {
            bc->unchanged++;
            b->confirmed = true;
        } else {
            b->action = ACT_CAS;
            b->cas_in = e->tgt_cas;
        }
    }
}

static int ledger_fail(struct rb *rb)
{
    snprintf(rb->err, sizeof(rb->err), "%.300s: %s", rb->ledger_path,
             errno != 0 ? strerror(errno) : "out of memory");
    return -2;
}

/*
 * A write of b was refused (or found no item): read the target, and write again when what it
 * holds is ours, until b is settled. Counts the outcome in bc. Returns 0, or -1 (I/O: retry
 * the batch) / -2 (fatal) with rb->err.
 */
static int resolve(struct rb *rb, struct bitem *b, struct rb_counters *bc)
{
    struct node *t = &rb->nodes[b->target];
    const char *k;
    size_t nk;
    const char *bflag;
    bool want_add = b->readd;       /* else: read first */
    bool cas_mode = false;
    uint64_t cas = 0;
    bool catch_up = b->action == ACT_CAS;

    meta_key(b->it.token, b->it.ntoken, b->it.b64, &k, &nk, &bflag);
    for (int step = 0; step < MAX_RESOLVE_STEPS; step++) {
        size_t ncmds = 0;
        rb->out.n = 0;
        struct cmd *c = new_cmd(rb, &ncmds, 0);
        int rc;
        if (c == NULL) {
            snprintf(rb->err, sizeof(rb->err), "out of memory");
            return -2;
        }
        if (want_add || cas_mode) {
            rc = add_ms(rb, b, cas_mode, cas);
        } else {
            rc = rb_out_printf(&rb->out, "mg %.*s%s v f c\r\n", (int)nk, k, bflag);
        }
        if (rc != 0) {
            snprintf(rb->err, sizeof(rb->err), "out of memory");
            return -2;
        }
        end_cmd(rb, c);
        if (pipeline(rb, t, c, 1) != 0) {
            return -1;
        }
        c = &rb->cmds[0];
        if (want_add || cas_mode) {
            if (c->kind == RB_META_HD && c->has_cas) {
                if (ledger_copied(rb->ledger, b->it.key, b->it.nkey, b->it.cas, c->cas) != 0) {
                    return ledger_fail(rb);
                }
                if (catch_up || cas_mode) {
                    bc->updated++;
                } else {
                    bc->moved++;
                }
                b->confirmed = true;
                return 0;
            }
            if (c->kind == RB_META_NF && cas_mode) {
                want_add = true;
                cas_mode = false;
                continue;
            }
            if (c->kind == RB_META_NS || c->kind == RB_META_EX) {
                want_add = false;
                cas_mode = false;
                continue;
            }
            break;
        }
        /* the read */
        if (c->kind == RB_META_EN) {
            want_add = true;        /* gone meanwhile (expired, deleted): add it */
            continue;
        }
        if (c->kind != RB_META_VA || !c->has_cas) {
            break;
        }
        if (c->digest == b->digest) {
            /* it holds exactly this value: a resumed batch redoing its own write */
            if (ledger_copied(rb->ledger, b->it.key, b->it.nkey, b->it.cas, c->cas) != 0) {
                return ledger_fail(rb);
            }
            bc->already++;
            b->confirmed = true;
            return 0;
        }
        struct ledger_entry *e = ledger_find(rb->ledger, b->it.key, b->it.nkey);
        uint64_t pend_src_cas;
        if (b->had_pending && e != NULL && ledger_pending_match(e, c->digest, &pend_src_cas)) {
            /* our write of an earlier version whose confirmation a crash lost (any unconfirmed
             * intent: later runs may have announced other versions and died before writing
             * them): replace it */
            if (ledger_copied(rb->ledger, b->it.key, b->it.nkey, pend_src_cas, c->cas) != 0) {
                return ledger_fail(rb);
            }
            b->had_pending = false;
            cas_mode = true;
            cas = c->cas;
            continue;
        }
        if (ledger_newer(rb->ledger, b->it.key, b->it.nkey, b->it.cas) != 0) {
            return ledger_fail(rb);
        }
        VERBOSE(rb, "%s: key %s: a newer value is there already, left alone", t->addr,
                key_text(&b->it));
        bc->newer++;
        b->confirmed = true;
        return 0;
    }
    say(rb, "%s: key %s: could not settle it (last reply: %s)", t->addr, key_text(&b->it),
        rb->cmds[0].msg[0] != '\0' ? rb->cmds[0].msg : "unexpected");
    bc->errors++;
    return 0;
}

/* Writes the batch's copies to their new owners. */
static int write_copies(struct rb *rb, size_t n, struct rb_counters *bc)
{
    for (size_t t = 0; t < rb->nnodes; t++) {
        size_t ncmds = 0;
        rb->out.n = 0;
        for (size_t i = 0; i < n; i++) {
            struct bitem *b = &rb->items[i];
            if (b->action == ACT_NONE || b->target != t) {
                continue;
            }
            struct cmd *c = new_cmd(rb, &ncmds, i);
            if (c == NULL || add_ms(rb, b, b->action == ACT_CAS, b->cas_in) != 0) {
                snprintf(rb->err, sizeof(rb->err), "out of memory");
                return -2;
            }
            end_cmd(rb, c);
        }
        if (ncmds == 0) {
            continue;
        }
        if (pipeline(rb, &rb->nodes[t], rb->cmds, ncmds) != 0) {
            return -1;
        }
        for (size_t j = 0; j < ncmds; j++) {
            struct cmd *c = &rb->cmds[j];
            struct bitem *b = &rb->items[c->ref];
            if (c->kind == RB_META_HD && c->has_cas) {
                if (ledger_copied(rb->ledger, b->it.key, b->it.nkey, b->it.cas, c->cas) != 0) {
                    return ledger_fail(rb);
                }
                if (b->action == ACT_CAS) {
                    bc->updated++;
                } else {
                    bc->moved++;
                }
                b->confirmed = true;
            } else if ((c->kind == RB_META_NS && b->action == ACT_ADD) ||
                       (c->kind == RB_META_EX && b->action == ACT_CAS)) {
                b->resolve = true;
            } else if (c->kind == RB_META_NF && b->action == ACT_CAS) {
                b->readd = true;
            } else {
                say(rb, "%s: writing key %s: %s", rb->nodes[t].addr, key_text(&b->it),
                    c->msg[0] != '\0' ? c->msg : "unexpected reply");
                bc->errors++;
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct bitem *b = &rb->items[i];
        if (b->resolve || b->readd) {
            int rc = resolve(rb, b, bc);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}

/* --delete-moved: removes from the source the keys whose new owner is settled, unless the
 * source changed since it was read (C<cas>: a later pass carries that change). */
static int delete_sources(struct rb *rb, struct node *snode, size_t n, struct rb_counters *bc)
{
    size_t ncmds = 0;
    rb->out.n = 0;
    for (size_t i = 0; i < n; i++) {
        struct bitem *b = &rb->items[i];
        if (!b->moving || !b->confirmed) {
            continue;
        }
        struct ledger_entry *e = ledger_find(rb->ledger, b->it.key, b->it.nkey);
        if (e != NULL && e->src_deleted) {
            continue;
        }
        const char *k;
        size_t nk;
        const char *bflag;
        meta_key(b->it.token, b->it.ntoken, b->it.b64, &k, &nk, &bflag);
        struct cmd *c = new_cmd(rb, &ncmds, i);
        if (c == NULL || rb_out_printf(&rb->out, "md %.*s%s C%" PRIu64 "\r\n", (int)nk, k, bflag,
                                       b->it.cas) != 0) {
            snprintf(rb->err, sizeof(rb->err), "out of memory");
            return -2;
        }
        end_cmd(rb, c);
    }
    if (ncmds == 0) {
        return 0;
    }
    if (pipeline(rb, snode, rb->cmds, ncmds) != 0) {
        return -1;
    }
    for (size_t j = 0; j < ncmds; j++) {
        struct cmd *c = &rb->cmds[j];
        struct bitem *b = &rb->items[c->ref];
        if (c->kind == RB_META_HD || c->kind == RB_META_NF) {
            if (ledger_src_deleted(rb->ledger, b->it.key, b->it.nkey) != 0) {
                return ledger_fail(rb);
            }
            if (c->kind == RB_META_HD) {
                bc->deleted++;
            }
        } else if (c->kind == RB_META_EX) {
            VERBOSE(rb, "%s: key %s changed since it was copied: not deleted", snode->addr,
                    key_text(&b->it));
        } else {
            say(rb, "%s: deleting key %s: %s", snode->addr, key_text(&b->it),
                c->msg[0] != '\0' ? c->msg : "unexpected reply");
            bc->errors++;
        }
    }
    return 0;
}

/*
 * One batch of source src: iterate from its cursor, copy what moves, confirm, delete (with
 * --delete-moved), and advance the cursor. Counts into bc. Returns 0, -1 (a node failed: the
 * batch may be run again as a whole) or -2 (fatal), with rb->err.
 */
static int run_batch(struct rb *rb, size_t src, uint32_t count, struct rb_counters *bc)
{
    struct rb_source_state *ss = &rb->st.sources[src];
    struct node *snode = &rb->nodes[rb->old_node[src]];
    char next[PROTO_ITERATE_B64_MAX + 1];

    long n = fetch(rb, snode, ss->cursor, count, next);
    if (n < 0) {
        return -1;
    }
    classify(rb, src, snode, (size_t)n, bc);
    /* intents first: if this run dies after a write and before its confirmation, the next
     * run recognizes the value on the target as its own */
    for (long i = 0; i < n; i++) {
        struct bitem *b = &rb->items[i];
        if (b->action != ACT_NONE &&
            ledger_intent(rb->ledger, b->it.key, b->it.nkey, b->it.cas, b->digest) != 0) {
            return ledger_fail(rb);
        }
    }
    if (ledger_flush(rb->ledger, false) != 0) {
        return ledger_fail(rb);
    }
    int rc = write_copies(rb, (size_t)n, bc);
    if (rc == 0 && rb->cfg->delete_moved) {
        rc = delete_sources(rb, snode, (size_t)n, bc);
    }
    if (ledger_flush(rb->ledger, false) != 0) {
        return ledger_fail(rb);
    }
    if (rc != 0) {
        return rc;
    }
    for (long i = 0; i < n; i++) {
        struct bitem *b = &rb->items[i];
        if (b->moving) {
            struct ledger_entry *e = ledger_find(rb->ledger, b->it.key, b->it.nkey);
            if (e != NULL) {
                e->seen = true;
            }
        }
    }
    if (rb->cfg->verbose) {
        VERBOSE(rb, "%s: %ld items, %" PRIu64 " moving, next cursor %s", snode->addr, n,
                bc->moving, next);
    }
    snprintf(ss->cursor, sizeof(ss->cursor), "%s", next);
    if (strcmp(next, "0") == 0) {
        ss->phase = RB_SRC_SWEEP;
    }
    return 0;
}

/* ---- the sweep: keys copied earlier that the source no longer has ------------------------- */

struct sweep_ctx {
    struct rb *rb;
    size_t src;
    struct ledger_entry **list;
    size_t n;
    size_t cap;
    bool oom;
};

static bool collect(void *arg, struct ledger_entry *e)
{
    struct sweep_ctx *s = arg;
    if (e->target != LEDGER_COPIED || e->seen || e->src_deleted ||
        ring_node_for_key(s->rb->cfg->old_ring.ring, e->key, e->nkey) != s->src) {
        return true;
    }
    if (s->n == s->cap) {
        size_t c = s->cap ? s->cap * 2 : 1024;
        struct ledger_entry **p = realloc(s->list, c * sizeof(*p));
        if (p == NULL) {
            s->oom = true;
            return false;
        }
        s->list = p;
        s->cap = c;
    }
    s->list[s->n++] = e;
    return true;
}

/* The text protocol's token for a raw key (base64 when needed) into tok; false when a meta
 * command cannot carry it. */
static bool token_of(const struct ledger_entry *e, char *tok, size_t *ntok, bool *b64)
{
    *b64 = proto_text_key_needs_b64(e->key, e->nkey);
    if (*b64) {
        *ntok = proto_base64_encode((const unsigned char *)e->key, e->nkey, tok);
    } else {
        memcpy(tok, e->key, e->nkey);
        *ntok = e->nkey;
    }
    return *ntok <= META_KEY_MAX;
}

/*
 * The target refused to delete a copy the source no longer has (its cas changed). When the
 * ledger holds an unconfirmed write of ours, the change may be that write (a run died before
 * confirming it): read the target, and delete what it holds if it is ours. Else the target
 * holds a client's write, which stays. Returns 0, -1 (I/O) or -2 (fatal) with rb->err.
 */
static int sweep_recheck(struct rb *rb, size_t t, struct ledger_entry *e,
                         struct rb_counters *bc)
{
    char tok[PROTO_ITERATE_B64_MAX];
    size_t ntok;
    bool b64;
    uint64_t src_cas;

    token_of(e, tok, &ntok, &b64);
    for (int step = 0; step < MAX_RESOLVE_STEPS; step++) {
        size_t ncmds = 0;
        rb->out.n = 0;
        struct cmd *c = new_cmd(rb, &ncmds, 0);
        if (c == NULL || rb_out_printf(&rb->out, "mg %.*s%s v f c\r\n", (int)ntok, tok,
                                       b64 ? " b" : "") != 0) {
            snprintf(rb->err, sizeof(rb->err), "out of memory");
            return -2;
        }
        end_cmd(rb, c);
        if (pipeline(rb, &rb->nodes[t], rb->cmds, 1) != 0) {
            return -1;
        }
        c = &rb->cmds[0];
        if (c->kind == RB_META_EN) {
            return ledger_tgt_deleted(rb->ledger, e->key, e->nkey) != 0 ? ledger_fail(rb) : 0;
        }
        if (c->kind != RB_META_VA || !c->has_cas || !ledger_pending_match(e, c->digest,
                                                                          &src_cas)) {
            break;
        }
        uint64_t cas = c->cas;
        ncmds = 0;
        rb->out.n = 0;
        c = new_cmd(rb, &ncmds, 0);
        if (c == NULL || rb_out_printf(&rb->out, "md %.*s%s C%" PRIu64 "\r\n", (int)ntok, tok,
                                       b64 ? " b" : "", cas) != 0) {
            snprintf(rb->err, sizeof(rb->err), "out of memory");
            return -2;
        }
        end_cmd(rb, c);
        if (pipeline(rb, &rb->nodes[t], rb->cmds, 1) != 0) {
            return -1;
        }
        c = &rb->cmds[0];
        if (c->kind == RB_META_HD || c->kind == RB_META_NF) {
            if (c->kind == RB_META_HD) {
                bc->carried_deletes++;
            }
            return ledger_tgt_deleted(rb->ledger, e->key, e->nkey) != 0 ? ledger_fail(rb) : 0;
        }
        if (c->kind != RB_META_EX) {
            break;
        }
        /* written again meanwhile: read it again */
    }
    return ledger_newer(rb->ledger, e->key, e->nkey, e->src_cas) != 0 ? ledger_fail(rb) : 0;
}

/* One chunk of the sweep: list[0..n). */
static int sweep_chunk(struct rb *rb, struct node *snode, struct ledger_entry **list, size_t n,
                       struct rb_counters *bc)
{
    char tok[PROTO_ITERATE_B64_MAX];
    size_t ntok;
    bool b64;
    size_t ncmds = 0;
    bool *gone = calloc(n ? n : 1, sizeof(bool));
    size_t *recheck = calloc(n ? n : 1, sizeof(size_t));  /* target + 1: see sweep_recheck */

    if (gone == NULL || recheck == NULL) {
        free(gone);
        free(recheck);
        snprintf(rb->err, sizeof(rb->err), "out of memory");
        return -2;
    }
    rb->out.n = 0;
    for (size_t i = 0; i < n; i++) {
        if (!token_of(list[i], tok, &ntok, &b64)) {
            continue;
        }
        struct cmd *c = new_cmd(rb, &ncmds, i);
        if (c == NULL || rb_out_printf(&rb->out, "mg %.*s%s c\r\n", (int)ntok, tok,
                                       b64 ? " b" : "") != 0) {
            free(gone);
            free(recheck);
            snprintf(rb->err, sizeof(rb->err), "out of memory");
            return -2;
        }
        end_cmd(rb, c);
    }
    /* the source's master: a slave may not have applied a delete yet */
    if (ncmds > 0 && pipeline(rb, snode, rb->cmds, ncmds) != 0) {
        free(gone);
        free(recheck);
        return -1;
    }
    for (size_t j = 0; j < ncmds; j++) {
        if (rb->cmds[j].kind == RB_META_EN) {
            gone[rb->cmds[j].ref] = true;
        } else if (rb->cmds[j].kind == RB_META_HD) {
            list[rb->cmds[j].ref]->seen = true;
        }
    }
    const struct ring *w = rb->cfg->new_ring.ring;
    for (size_t t = 0; t < rb->nnodes; t++) {
        ncmds = 0;
        rb->out.n = 0;
        for (size_t i = 0; i < n; i++) {
            struct ledger_entry *e = list[i];
            if (!gone[i] || rb->new_node[ring_node_for_key(w, e->key, e->nkey)] != t) {
                continue;
            }
            token_of(e, tok, &ntok, &b64);
            struct cmd *c = new_cmd(rb, &ncmds, i);
            if (c == NULL || rb_out_printf(&rb->out, "md %.*s%s C%" PRIu64 "\r\n", (int)ntok,
                                           tok, b64 ? " b" : "", e->tgt_cas) != 0) {
                free(gone);
                free(recheck);
                snprintf(rb->err, sizeof(rb->err), "out of memory");
                return -2;
            }
            end_cmd(rb, c);
        }
        if (ncmds == 0) {
            continue;
        }
        if (pipeline(rb, &rb->nodes[t], rb->cmds, ncmds) != 0) {
            free(gone);
            free(recheck);
            return -1;
        }
        for (size_t j = 0; j < ncmds; j++) {
            struct cmd *c = &rb->cmds[j];
            struct ledger_entry *e = list[c->ref];
            int lr = 0;
            if (c->kind == RB_META_HD || c->kind == RB_META_NF) {
                lr = ledger_tgt_deleted(rb->ledger, e->key, e->nkey);
                if (c->kind == RB_META_HD) {
                    bc->carried_deletes++;
                }
            } else if (c->kind == RB_META_EX && e->has_pending) {
                recheck[c->ref] = t + 1;
            } else if (c->kind == RB_META_EX) {
                lr = ledger_newer(rb->ledger, e->key, e->nkey, e->src_cas);
            } else {
                say(rb, "%s: deleting a key the source deleted: %s", rb->nodes[t].addr,
                    c->msg[0] != '\0' ? c->msg : "unexpected reply");
                bc->errors++;
            }
            if (lr != 0) {
                free(gone);
                free(recheck);
                return ledger_fail(rb);
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        int rc = recheck[i] != 0 ? sweep_recheck(rb, recheck[i] - 1, list[i], bc) : 0;
        if (rc != 0) {
            free(gone);
            free(recheck);
            return rc;
        }
    }
    free(gone);
    free(recheck);
    if (ledger_flush(rb->ledger, false) != 0) {
        return ledger_fail(rb);
    }
    return 0;
}

/* ---- the pass ----------------------------------------------------------------------------- */

static int save_state(struct rb *rb, bool force_sync)
{
    double now = now_s();
    bool sync = force_sync || now - rb->last_sync >= 1.0;
    char err[512];
    if (ledger_flush(rb->ledger, sync) != 0) {
        snprintf(rb->err, sizeof(rb->err), "%.300s: %s", rb->ledger_path, strerror(errno));
        return -1;
    }
    if (rb_state_save(rb->cfg->state_path, &rb->st, sync, err, sizeof(err)) != 0) {
        snprintf(rb->err, sizeof(rb->err), "%s", err);
        return -1;
    }
    if (sync) {
        rb->last_sync = now;
    }
    return 0;
}

/* Runs step until it succeeds, retrying a failing node for cfg->retry_for seconds.
 * Returns 0, -1 (gave up, rb->err), -2 (fatal, rb->err) or -3 (stopped while retrying). */
static int retrying(struct rb *rb, int (*step)(struct rb *, void *), void *arg)
{
    double first = -1;
    double backoff = 0.1;
    for (;;) {
        int rc = step(rb, arg);
        if (rc == 0 || rc == -2) {
            return rc;
        }
        double now = now_s();
        if (first < 0) {
            first = now;
        }
        say(rb, "%s%s", rb->err, now - first < rb->cfg->retry_for ? "; retrying" : "");
        reset_conns(rb);
        if (now - first >= rb->cfg->retry_for) {
            return -1;
        }
        if (stopping(rb)) {
            return -3;
        }
        sleep_s(rb, backoff, true);
        backoff = backoff * 2 > 2.0 ? 2.0 : backoff * 2;
    }
}

struct batch_arg {
    size_t src;
    uint32_t count;
    struct rb_counters bc;
};

static int batch_step(struct rb *rb, void *arg)
{
    struct batch_arg *a = arg;
    memset(&a->bc, 0, sizeof(a->bc));    /* a retried batch counts once */
    return run_batch(rb, a->src, a->count, &a->bc);
}

struct chunk_arg {
    struct node *snode;
    struct ledger_entry **list;
    size_t n;
    struct rb_counters bc;
};

static int chunk_step(struct rb *rb, void *arg)
{
    struct chunk_arg *a = arg;
    memset(&a->bc, 0, sizeof(a->bc));
    return sweep_chunk(rb, a->snode, a->list, a->n, &a->bc);
}

static void count_batch(struct rb *rb, const struct rb_counters *bc)
{
    rb_counters_add(&rb->run, bc);
    rb_counters_add(&rb->st.total, bc);
}

/* Walks source src to its end (or until stopped). Returns 0, or the retrying() codes. */
static int walk(struct rb *rb, size_t src)
{
    struct rb_source_state *ss = &rb->st.sources[src];
    while (ss->phase == RB_SRC_WALK) {
        if (stopping(rb)) {
            return -3;
        }
        struct batch_arg a = {.src = src, .count = rb_rate_batch(&rb->rate, rb->cfg->batch)};
        for (;;) {
            double wait = rb_rate_take(&rb->rate, a.count, now_s());
            if (wait <= 0) {
                break;
            }
            sleep_s(rb, wait, true);
            if (stopping(rb)) {
                return -3;
            }
        }
        int rc = retrying(rb, batch_step, &a);
        if (rc != 0) {
            return rc;
        }
        count_batch(rb, &a.bc);
        if (save_state(rb, false) != 0) {
            return -2;
        }
        progress(rb, false);
    }
    return 0;
}

/* Carries the deletes of source src (keys copied earlier that it no longer has). */
static int sweep(struct rb *rb, size_t src)
{
    struct sweep_ctx s = {.rb = rb, .src = src};
    ledger_each(rb->ledger, collect, &s);
    if (s.oom) {
        free(s.list);
        snprintf(rb->err, sizeof(rb->err), "out of memory");
        return -2;
    }
    struct node *snode = &rb->nodes[rb->old_node[src]];
    if (s.n > 0) {
        VERBOSE(rb, "%s: checking %zu copied keys it did not show this run", snode->addr, s.n);
    }
    for (size_t i = 0; i < s.n; i += rb->cfg->batch) {
        if (stopping(rb)) {
            free(s.list);
            return -3;
        }
        struct chunk_arg a = {.snode = snode, .list = s.list + i,
                              .n = s.n - i < rb->cfg->batch ? s.n - i : rb->cfg->batch};
        int rc = retrying(rb, chunk_step, &a);
        if (rc != 0) {
            free(s.list);
            return rc;
        }
        count_batch(rb, &a.bc);
    }
    free(s.list);
    rb->st.sources[src].phase = RB_SRC_DONE;
    return save_state(rb, false) != 0 ? -2 : 0;
}

static void cleanup(struct rb *rb)
{
    for (size_t i = 0; i < rb->nnodes; i++) {
        rb_conn_free(&rb->nodes[i].rd);
        rb_conn_free(&rb->nodes[i].wr);
    }
    free(rb->nodes);
    free(rb->old_node);
    free(rb->new_node);
    ledger_close(rb->ledger);
    rb_state_free(&rb->st);
    free(rb->arena);
    free(rb->items);
    free(rb->cmds);
    rb_out_free(&rb->out);
}

/* Loads or creates the state and the ledger. Returns 0, or -1 (refused) with rb->err. */
static int open_state(struct rb *rb, struct rb_result *res)
{
    const struct rb_config *cfg = rb->cfg;
    char fp[RB_FINGERPRINT_LEN + 1];
    char err[512];
    size_t nsrc = ring_node_count(cfg->old_ring.ring);

    rb_fingerprint(cfg->old_ring.desc, cfg->new_ring.desc, fp);
    if (snprintf(rb->ledger_path, sizeof(rb->ledger_path), "%s.ledger", cfg->state_path) >=
        (int)sizeof(rb->ledger_path)) {
        snprintf(rb->err, sizeof(rb->err), "%.300s: path too long", cfg->state_path);
        return -1;
    }
    int rc = rb_state_load(cfg->state_path, &rb->st, err, sizeof(err));
    if (rc < 0) {
        snprintf(rb->err, sizeof(rb->err), "%s", err);
        return -1;
    }
    if (rc == 1) {
        if (rb_state_init(&rb->st, fp, nsrc) != 0) {
            snprintf(rb->err, sizeof(rb->err), "out of memory");
            return -1;
        }
        rb->ledger = ledger_open(rb->ledger_path, fp, true, err, sizeof(err));
    } else {
        if (strcmp(rb->st.fingerprint, fp) != 0 || rb->st.nsources != nsrc) {
            snprintf(rb->err, sizeof(rb->err), "%.300s belongs to a rebalance between other "
                     "rings (fingerprint %s, these rings give %s): give another --state, or "
                     "remove it and its .ledger to start over", cfg->state_path,
                     rb->st.fingerprint, fp);
            return -1;
        }
        rb->ledger = ledger_open(rb->ledger_path, fp, false, err, sizeof(err));
        if (rb->st.pass_done) {
            rb_state_next_pass(&rb->st);
        } else {
            res->resumed = true;
        }
    }
    if (rb->ledger == NULL) {
        snprintf(rb->err, sizeof(rb->err), "%s", err);
        return -1;
    }
    rb->st.runs++;
    return 0;
}

void rb_run(const struct rb_config *cfg, struct rb_result *res)
{
    struct rb rb_storage;
    struct rb *rb = &rb_storage;

    memset(rb, 0, sizeof(*rb));
    memset(res, 0, sizeof(*res));
    rb->cfg = cfg;
    rb->started = now_s();
    rb->last_sync = rb->started;
    res->end = RB_END_FAILED;

    if (open_state(rb, res) != 0) {
        res->end = RB_END_REFUSED;
        goto done;
    }
    res->pass = rb->st.pass;
    if (save_state(rb, true) != 0 || build_nodes(rb) != 0) {
        goto done;
    }
    for (size_t i = 0; i < rb->nnodes; i++) {
        if (learn_group(rb, &rb->nodes[i]) != 0) {
            goto done;
        }
    }
    for (size_t i = 0; i < rb->st.nsources; i++) {
        uint64_t items;
        if (curr_items(rb, &rb->nodes[rb->old_node[i]], &items) != 0) {
            goto done;
        }
        rb->total_items += items;
    }
    VERBOSE(rb, "pass %" PRIu64 "%s: %zu sources, %zu nodes, about %" PRIu64 " keys, state %s",
            rb->st.pass, res->resumed ? " (resumed)" : "", rb->st.nsources, rb->nnodes,
            rb->total_items, cfg->state_path);
    rb_rate_init(&rb->rate, cfg->rate, now_s());

    int rc = 0;
    for (size_t src = 0; src < rb->st.nsources && rc == 0; src++) {
        if (rb->st.sources[src].phase == RB_SRC_WALK) {
            rc = walk(rb, src);
        }
        if (rc == 0 && rb->st.sources[src].phase == RB_SRC_SWEEP) {
            rc = sweep(rb, src);
        }
    }
    if (rc == -3) {
        res->end = RB_END_INTERRUPTED;
        save_state(rb, true);
        goto done;
    }
    if (rc != 0) {
        save_state(rb, true);
        goto done;
    }
    rb->st.pass_done = true;
    if (save_state(rb, true) != 0) {
        goto done;
    }
    res->end = RB_END_PASS_DONE;
done:
    progress(rb, true);
    end_progress_line(rb);
    if (res->end == RB_END_FAILED || res->end == RB_END_REFUSED) {
        snprintf(res->why, sizeof(res->why), "%s", rb->err);
    }
    res->pass = rb->st.pass;
    res->run = rb->run;
    res->pass_total = rb->st.total;
    res->elapsed = now_s() - rb->started;
    cleanup(rb);
}
