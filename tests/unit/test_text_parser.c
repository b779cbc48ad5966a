/* Unit tests of the memcached text-protocol parser (protocol/text.c) against memcached 1.6.18. */

/*
 * Every expected reply below was taken from memcached 1.6.18 itself (memcached -U 0, default
 * -I 1m, requests sent with python sockets), except where a comment says "ours": those encode a
 * documented mcstore difference (keys with control characters) or a limit memcached lacks.
 *
 * Every request is fed whole and then split at every byte boundary: a prefix must give
 * PROTO_NEED_MORE, or exactly the full buffer's result once the prefix holds the whole request.
 * Inputs are copied to the end of a readable region followed by a PROT_NONE guard page, and the
 * region is read-only while the parser runs, so reading past 'len' or writing into the input
 * crashes the test instead of going unnoticed.
 *
 * Checks inside a test do not stop at the first failure: each failing case prints a "# FAIL"
 * TAP comment with the exact input bytes, and the test fails at its end.
 */

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "protocol/request.h"
#include "protocol/text.h"

/* ------------------------------------------------------------------------------------------ */
/* Replies memcached 1.6.18 sends, byte for byte (without "\r\n").                             */

#define E_ERROR     "ERROR"
#define E_FORMAT    "CLIENT_ERROR bad command line format"
#define E_CHUNK     "CLIENT_ERROR bad data chunk"
#define E_TOO_LARGE "SERVER_ERROR object too large for cache"
#define E_DELTA     "CLIENT_ERROR invalid numeric delta argument"
#define E_EXPTIME   "CLIENT_ERROR invalid exptime argument"
#define E_DELETE    "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"
#define E_SHUTDOWN  "ERROR: shutdown not enabled"
/* ours: iterate (doc/protocol.md) */
#define E_CURSOR    "CLIENT_ERROR bad cursor"
#define E_COUNT     "CLIENT_ERROR bad count"

static const char *const known_errors[] = {
    E_ERROR, E_FORMAT, E_CHUNK, E_TOO_LARGE, E_DELTA, E_EXPTIME, E_DELETE, E_SHUTDOWN,
    E_CURSOR, E_COUNT,
};

#define MIB ((size_t)1024 * 1024)
#define ITEM_MAX_DEFAULT MIB            /* memcached's -I default */
#define NOW INT64_C(1700000000)         /* 'now' for proto_exptime_to_abs() checks */
#define SPLIT_ALL_MAX 16384             /* inputs up to this size are split at every byte */

/* ------------------------------------------------------------------------------------------ */
/* Guarded input region.                                                                       */

static char *arena;             /* arena_len bytes, then one PROT_NONE guard page */
static size_t arena_len;
static size_t page_size;

/* Copies src to the very end of the guarded region and returns that copy. */
static const char *place(const void *src, size_t len)
{
    char *dst;
    char *lo;

    if (len > arena_len) {
        fail_msg("input of %zu bytes is larger than the test region", len);
    }
    dst = arena + arena_len - len;
    lo = arena + (size_t)(dst - arena) / page_size * page_size;
    if (lo == arena + arena_len) {
        return dst;             /* empty input: points at the guard page itself */
    }
    assert_int_equal(mprotect(lo, (size_t)(arena + arena_len - lo), PROT_READ | PROT_WRITE), 0);
    memcpy(dst, src, len);
    assert_int_equal(mprotect(lo, (size_t)(arena + arena_len - lo), PROT_READ), 0);
    return dst;
}

/* A crash inside the parser names the case on stderr, then cmocka's handler takes over. */
static char crash_where[320];
static struct sigaction prev_segv, prev_bus;

static void on_crash(int sig)
{
    static const char m[] = "# CRASH while running: ";
    ssize_t w;

    w = write(2, m, sizeof m - 1);
    w = write(2, crash_where, strnlen(crash_where, sizeof crash_where));
    w = write(2, "\n", 1);
    (void)w;
    /* Put the previous handler back; the faulting instruction runs again and reaches it. */
    sigaction(sig, sig == SIGSEGV ? &prev_segv : &prev_bus, NULL);
}

static void arm_crash_handler(void)
{
    struct sigaction cur, sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_crash;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, NULL, &cur) == 0 && cur.sa_handler != on_crash) {
        prev_segv = cur;
        sigaction(SIGSEGV, &sa, NULL);
    }
    if (sigaction(SIGBUS, NULL, &cur) == 0 && cur.sa_handler != on_crash) {
        prev_bus = cur;
        sigaction(SIGBUS, &sa, NULL);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Small helpers.                                                                              */

static char k250[PROTO_KEY_MAX + 1];        /* 250 x 'k' */
static char k251[PROTO_KEY_MAX + 2];        /* 251 x 'k' */

static char *pool[4096];
static size_t npool;

/* printf into a string that lives until the end of the test group. */
static const char *S(const char *fmt, ...)
{
    va_list ap;
    int n;
    char *s;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && npool < sizeof pool / sizeof pool[0]);
    s = malloc((size_t)n + 1);
    assert_non_null(s);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    pool[npool++] = s;
    return s;
}

/* n copies of 'unit' joined by 'sep' (a string that lives until the end of the group). */
static const char *rep(const char *unit, const char *sep, size_t n)
{
    size_t lu = strlen(unit), ls = strlen(sep), i;
    char *s = malloc(n * (lu + ls) + 1), *p = s;

    assert_true(s != NULL && npool < sizeof pool / sizeof pool[0]);
    for (i = 0; i < n; i++) {
        if (i > 0) {
            memcpy(p, sep, ls);
            p += ls;
        }
        memcpy(p, unit, lu);
        p += lu;
    }
    *p = '\0';
    pool[npool++] = s;
    return s;
}

/* C-escapes up to 160 bytes of s for messages; rotates through 4 static buffers. */
static const char *esc(const char *s, size_t n)
{
    static char bufs[4][720];
    static int which;
    char *out = bufs[which++ & 3], *p = out;
    size_t i, lim = n > 160 ? 120 : n;

    *p++ = '"';
    for (i = 0; i < lim; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r') {
            p += sprintf(p, "\\r");
        } else if (c == '\n') {
            p += sprintf(p, "\\n");
        } else if (c == '\t') {
            p += sprintf(p, "\\t");
        } else if (c == '"' || c == '\\') {
            p += sprintf(p, "\\%c", c);
        } else if (c < 0x20 || c >= 0x7f) {
            p += sprintf(p, "\\x%02x", c);
        } else {
            *p++ = (char)c;
        }
    }
    *p++ = '"';
    if (lim < n) {
        p += sprintf(p, "...(%zu bytes, ends ", n);
        for (i = n - 24; i < n; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c >= 0x20 && c < 0x7f && c != '\\') {
                *p++ = (char)c;
            } else {
                p += sprintf(p, "\\x%02x", c);
            }
        }
        *p++ = ')';
    }
    *p = '\0';
    return out;
}

static const char *status_name(enum proto_status s)
{
    switch (s) {
    case PROTO_NEED_MORE: return "NEED_MORE";
    case PROTO_REQUEST: return "REQUEST";
    case PROTO_ERROR: return "ERROR";
    case PROTO_CLOSE: return "CLOSE";
    }
    return "(invalid status)";
}

static const char *cmd_name(enum proto_cmd c)
{
    static const char *const names[] = {
        "NONE", "GET", "GETS", "GAT", "GATS", "SET", "ADD", "REPLACE", "APPEND", "PREPEND",
        "CAS", "INCR", "DECR", "DELETE", "TOUCH", "FLUSH_ALL", "VERSION", "VERBOSITY", "QUIT",
        "STATS", "RGET", "ITERATE", "DB_CHECKPOINT", "DB_ARCHIVE", "DEBUG_FAULT", "META_GET",
        "META_SET", "META_DELETE", "META_ARITH", "META_NOOP", "META_DEBUG", "REP_ISMASTER",
        "REP_WHOISMASTER", "REP_SET_PRIORITY",
    };
    if ((unsigned)c < sizeof names / sizeof names[0]) {
        return names[c];
    }
    return "(invalid cmd)";
}

static bool is_get_cmd(enum proto_cmd c)
{
    return c == PROTO_CMD_GET || c == PROTO_CMD_GETS || c == PROTO_CMD_GAT || c == PROTO_CMD_GATS;
}

static bool is_storage_cmd(enum proto_cmd c)
{
    return c == PROTO_CMD_SET || c == PROTO_CMD_ADD || c == PROTO_CMD_REPLACE ||
           c == PROTO_CMD_APPEND || c == PROTO_CMD_PREPEND || c == PROTO_CMD_CAS;
}

static bool has_key(enum proto_cmd c)
{
    return is_storage_cmd(c) || c == PROTO_CMD_INCR || c == PROTO_CMD_DECR ||
           c == PROTO_CMD_DELETE || c == PROTO_CMD_TOUCH || c == PROTO_CMD_RGET;
}

static bool bytes_eq(const char *a, size_t na, const char *b, size_t nb)
{
    return na == nb && (na == 0 || memcmp(a, b, na) == 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Non-stopping checks.                                                                        */

struct tctx {
    const char *cname;          /* current case */
    const char *in;             /* its input */
    size_t len;
    bool case_failed;
    int failures;               /* failed checks */
    int failed_cases;
    int cases;
};

static void begin_case(struct tctx *t, const char *name, const char *in, size_t len)
{
    t->cname = name;
    t->in = in;
    t->len = len;
    t->case_failed = false;
    t->cases++;
}

static void fail_case(struct tctx *t, int line, const char *fmt, ...)
    CMOCKA_PRINTF_ATTRIBUTE(3, 4);

static void fail_case(struct tctx *t, int line, const char *fmt, ...)
{
    va_list ap;

    if (!t->case_failed) {
        t->case_failed = true;
        t->failed_cases++;
        printf("# FAIL case %s: input %s\n", t->cname, t->in ? esc(t->in, t->len) : "(none)");
    }
    t->failures++;
    printf("#     line %d: ", line);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

#define CHECK(t, cond, ...) \
    do { \
        if (!(cond)) { \
            fail_case((t), __LINE__, __VA_ARGS__); \
        } \
    } while (0)

static void finish(struct tctx *t)
{
    printf("# %d case(s) checked\n", t->cases);
    if (t->failures > 0) {
        fail_msg("%d of %d case(s) failed (%d check(s)); see the # FAIL lines above",
                 t->failed_cases, t->cases, t->failures);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Running the parser.                                                                         */

struct outcome {
    const char *buf;            /* the guarded copy that was parsed */
    size_t len;
    struct proto_request req;
    struct proto_result res;
};

static const char junk[] = "JUNK-FROM-AN-OLD-REQUEST";

/* Dirties the request and result first, so fields the parser forgets to set are noticed. */
static void poison(struct proto_request *q, struct proto_result *r)
{
    memset(q, 0, sizeof *q);
    q->cmd = PROTO_CMD_NONE;
    q->noreply = true;
    q->key = q->keys = q->data = q->arg = q->key2 = junk;
    q->nkey = q->nkeys = q->ndata = q->narg = q->nkey2 = 4;
    q->flags = 0xdeadbeefu;
    q->exptime = 777;
    q->cas = 0xdeadbeefcafeULL;
    q->delta = 4242;
    q->delay = 555;
    q->verbosity = 99;
    q->left_open = q->right_open = true;
    q->max = 31337;
    q->iter.values = true;
    memset(q->iter.key_buf, 'J', sizeof q->iter.key_buf);
    memset(r, 0, sizeof *r);
    r->status = (enum proto_status)42;
    r->consumed = 88888;
    r->swallow = 77777;
    r->need = 66666;
    r->error = junk;
    r->unlink_key = true;
}

static void parse_raw(struct outcome *o, const char *in, size_t len,
                      const struct proto_limits *lim, const char *what, size_t prefix)
{
    snprintf(crash_where, sizeof crash_where, "%s, prefix %zu of %s", what, prefix,
             esc(in, len));
    arm_crash_handler();
    o->buf = place(in, len);
    o->len = len;
    poison(&o->req, &o->res);
    proto_text_parse(o->buf, len, lim, &o->req, &o->res);
}

static bool in_input(const struct outcome *o, const char *p, size_t n)
{
    if (n == 0) {
        return true;
    }
    return p != NULL && p >= o->buf && n <= o->len && p <= o->buf + o->len - n;
}

static bool known_error(const char *e)
{
    size_t i;

    for (i = 0; i < sizeof known_errors / sizeof known_errors[0]; i++) {
        if (strcmp(e, known_errors[i]) == 0) {
            return true;
        }
    }
    return false;
}

/*
 * Walks a get-family request's keys into "a|b|c"; "!" is appended when proto_text_next_key()
 * reports a bad key. Counts keys into *count.
 */
static void walk_keys(struct tctx *t, const struct outcome *o, char *out, size_t outsz,
                      size_t *count)
{
    size_t pos = 0, used = 0, iter = 0, nk;
    const char *k;
    bool bad = false;

    *count = 0;
    out[0] = '\0';
    for (;;) {
        if (iter++ > o->req.nkeys + 1) {
            CHECK(t, false, "proto_text_next_key() does not end (nkeys %zu)", o->req.nkeys);
            break;
        }
        k = NULL;
        nk = 0;
        if (!proto_text_next_key(&o->req, &pos, &k, &nk, &bad)) {
            break;
        }
        CHECK(t, nk > 0 && k != NULL && k >= o->req.keys && nk <= o->req.nkeys &&
                 k <= o->req.keys + o->req.nkeys - nk,
              "key %zu (%zu bytes) is not inside req->keys", *count, nk);
        if (used + nk + 2 < outsz) {
            if (*count > 0) {
                out[used++] = '|';
            }
            memcpy(out + used, k, nk);
            used += nk;
            out[used] = '\0';
        }
        (*count)++;
    }
    if (bad && used + 3 < outsz) {
        if (*count > 0) {
            out[used++] = '|';
        }
        out[used++] = '!';
        out[used] = '\0';
    }
}

/* One line describing everything the caller acts on; equal lines = same outcome. */
static void describe(const struct outcome *o, char *out, size_t n)
{
    const struct proto_result *r = &o->res;
    const struct proto_request *q = &o->req;
    int w;

#define OFF(p) ((p) == NULL ? (long)-1 : (in_input(o, (p), 1) ? (long)((p) - o->buf) : -2L))
    switch (r->status) {
    case PROTO_NEED_MORE:
        snprintf(out, n, "NEED_MORE need=%zu", r->need);
        return;
    case PROTO_CLOSE:
        snprintf(out, n, "CLOSE");
        return;
    case PROTO_ERROR:
        snprintf(out, n, "ERROR consumed=%zu swallow=%zu error=%s unlink=%d key@%ld+%zu",
                 r->consumed, r->swallow, r->error ? r->error : "(null)", (int)r->unlink_key,
                 r->unlink_key ? OFF(q->key) : 0L, r->unlink_key ? q->nkey : 0);
        return;
    case PROTO_REQUEST:
        w = snprintf(out, n, "REQUEST consumed=%zu cmd=%s noreply=%d", r->consumed,
                     cmd_name(q->cmd), (int)q->noreply);
        if (w < 0 || (size_t)w >= n) {
            return;
        }
        out += w;
        n -= (size_t)w;
        if (is_get_cmd(q->cmd)) {
            snprintf(out, n, " keys@%ld+%zu exptime=%lld", OFF(q->keys), q->nkeys,
                     q->cmd == PROTO_CMD_GAT || q->cmd == PROTO_CMD_GATS
                         ? (long long)q->exptime : 0LL);
        } else if (is_storage_cmd(q->cmd)) {
            snprintf(out, n, " key@%ld+%zu flags=%u exptime=%lld data@%ld+%zu cas=%llu",
                     OFF(q->key), q->nkey, q->flags, (long long)q->exptime, OFF(q->data),
                     q->ndata, q->cmd == PROTO_CMD_CAS ? (unsigned long long)q->cas : 0ULL);
        } else if (q->cmd == PROTO_CMD_INCR || q->cmd == PROTO_CMD_DECR) {
            snprintf(out, n, " key@%ld+%zu delta=%llu", OFF(q->key), q->nkey,
                     (unsigned long long)q->delta);
        } else if (q->cmd == PROTO_CMD_DELETE) {
            snprintf(out, n, " key@%ld+%zu", OFF(q->key), q->nkey);
        } else if (q->cmd == PROTO_CMD_TOUCH) {
            snprintf(out, n, " key@%ld+%zu exptime=%lld", OFF(q->key), q->nkey,
                     (long long)q->exptime);
        } else if (q->cmd == PROTO_CMD_FLUSH_ALL) {
            snprintf(out, n, " delay=%lld", (long long)q->delay);
        } else if (q->cmd == PROTO_CMD_VERBOSITY) {
            snprintf(out, n, " verbosity=%u", q->verbosity);
        } else if (q->cmd == PROTO_CMD_STATS) {
            snprintf(out, n, " arg@%ld+%zu", q->narg ? OFF(q->arg) : 0L, q->narg);
        } else if (q->cmd == PROTO_CMD_RGET) {
            snprintf(out, n, " key@%ld+%zu key2@%ld+%zu open=%d%d max=%u", OFF(q->key),
                     q->nkey, OFF(q->key2), q->nkey2, (int)q->left_open, (int)q->right_open,
                     q->max);
        } else if (q->cmd == PROTO_CMD_ITERATE) {
            /* the cursor key is decoded into the request: compare its bytes */
            snprintf(out, n, " cursor=%s count=%u values=%d",
                     q->key == q->iter.key_buf ? esc(q->key, q->nkey) : "(not in key_buf)",
                     q->max, (int)q->iter.values);
        }
        return;
    }
    snprintf(out, n, "invalid status %d", (int)r->status);
#undef OFF
}

/* Properties every outcome must have, whatever the input. */
static void check_invariants(struct tctx *t, const struct outcome *o, const char *what)
{
    const struct proto_result *r = &o->res;
    const struct proto_request *q = &o->req;
    size_t i;

    switch (r->status) {
    case PROTO_NEED_MORE:
        CHECK(t, r->need == 0 || r->need > o->len,
              "%s: NEED_MORE with need %zu but %zu bytes are already there", what, r->need,
              o->len);
        return;
    case PROTO_CLOSE:
        /* memcached closes on a line without '\n' in 2048 bytes, or on an "HTTP/" line */
        CHECK(t, o->len > PROTO_TEXT_LINE_MAX || memchr(o->buf, '\n', o->len) != NULL,
              "%s: CLOSE on %zu bytes holding no complete line", what, o->len);
        return;
    case PROTO_ERROR:
        CHECK(t, r->consumed > 0 && r->consumed <= o->len,
              "%s: ERROR consumed %zu of %zu bytes", what, r->consumed, o->len);
        CHECK(t, r->error == NULL || known_error(r->error),
              "%s: unexpected error text %s", what,
              r->error ? esc(r->error, strlen(r->error)) : "");
        return;
    case PROTO_REQUEST:
        CHECK(t, r->consumed > 0 && r->consumed <= o->len,
              "%s: REQUEST consumed %zu of %zu bytes", what, r->consumed, o->len);
        if (r->consumed == 0 || r->consumed > o->len) {
            return;
        }
        CHECK(t, o->buf[r->consumed - 1] == '\n',
              "%s: REQUEST consumed %zu bytes, not ending at a '\\n'", what, r->consumed);
        CHECK(t, q->cmd != PROTO_CMD_NONE, "%s: REQUEST with cmd NONE", what);
        if (has_key(q->cmd)) {
            CHECK(t, in_input(o, q->key, q->nkey) && q->key + q->nkey <= o->buf + r->consumed,
                  "%s: key not inside the consumed input", what);
            CHECK(t, q->nkey >= 1 && q->nkey <= PROTO_KEY_MAX,
                  "%s: key of %zu bytes accepted", what, q->nkey);
            for (i = 0; in_input(o, q->key, q->nkey) && i < q->nkey; i++) {
                unsigned char c = (unsigned char)q->key[i];
                if (c <= ' ' || c == 0x7f) {
                    CHECK(t, false, "%s: key byte %zu is 0x%02x", what, i, c);
                    break;
                }
            }
        }
        if (is_get_cmd(q->cmd)) {
            CHECK(t, in_input(o, q->keys, q->nkeys) &&
                     (q->nkeys == 0 || q->keys + q->nkeys <= o->buf + r->consumed),
                  "%s: keys not inside the consumed input", what);
        }
        if (is_storage_cmd(q->cmd)) {
            CHECK(t, in_input(o, q->data, q->ndata) &&
                     (q->ndata == 0 ? true : q->data + q->ndata + 2 == o->buf + r->consumed),
                  "%s: data (%zu bytes) not just before the consumed end", what, q->ndata);
        }
        if (q->cmd == PROTO_CMD_STATS) {
            CHECK(t, in_input(o, q->arg, q->narg), "%s: stats arg not inside the input", what);
        }
        if (q->cmd == PROTO_CMD_ITERATE) {
            CHECK(t, q->key == q->iter.key_buf && q->nkey <= PROTO_KEY_MAX,
                  "%s: iterate cursor key not decoded into key_buf (%zu bytes)", what, q->nkey);
            CHECK(t, q->max >= 1 && q->max <= PROTO_ITERATE_MAX, "%s: iterate count %u", what,
                  q->max);
        }
        return;
    }
    CHECK(t, false, "%s: invalid status %d", what, (int)r->status);
}

/*
 * Feeds in[0..i) for every i < len (or a sample when len is large) and compares with the whole
 * buffer's outcome. need_line/need_total: NEED_MORE prefixes of at least need_line bytes must
 * report need == need_total (the data block's end); shorter ones need == 0.
 */
static void check_splits(struct tctx *t, const char *in, size_t len,
                         const struct proto_limits *lim, const struct outcome *full,
                         size_t need_line, size_t need_total)
{
    char want[512], got[512], what[64];
    struct outcome o;
    size_t i, step;
    bool complete = full->res.status == PROTO_REQUEST || full->res.status == PROTO_ERROR;

    describe(full, want, sizeof want);
    for (i = 0; i < len; i += step) {
        step = 1;
        if (len > SPLIT_ALL_MAX && i >= 4096 && i + 4096 < len &&
            !(need_line && i + 64 >= need_line && i < need_line + 64)) {
            step = 997;         /* huge input: every byte near the edges, a sample elsewhere */
        }
        parse_raw(&o, in, i, lim, t->cname, i);
        snprintf(what, sizeof what, "prefix %zu", i);
        check_invariants(t, &o, what);
        if (o.res.status == PROTO_NEED_MORE) {
            size_t want_need = (need_total && i >= need_line) ? need_total : 0;
            if (complete && i >= full->res.consumed) {
                CHECK(t, false, "prefix %zu holds the whole request (%zu bytes) but gave "
                      "NEED_MORE; whole buffer gave: %s", i, full->res.consumed, want);
                return;
            }
            if (o.res.need != want_need) {
                CHECK(t, false, "prefix %zu: NEED_MORE need=%zu, want need=%zu", i, o.res.need,
                      want_need);
                return;
            }
            continue;
        }
        describe(&o, got, sizeof got);
        if (full->res.status == PROTO_NEED_MORE || strcmp(got, want) != 0) {
            CHECK(t, false, "prefix %zu gave   %s\n#       but whole buffer gave %s", i, got,
                  want);
            return;
        }
        if (complete && i < full->res.consumed) {
            CHECK(t, false, "prefix %zu gave a result covering %zu bytes it did not have", i,
                  o.res.consumed);
            return;
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Table-driven parse cases.                                                                   */

struct want_req {
    enum proto_cmd cmd;
    bool noreply;
    const char *key;            /* single-key commands */
    const char *keys;           /* get family: "a|b|c", "" for none, trailing "!" = bad key */
    uint32_t flags;
    int64_t exptime;
    bool exp_abs;               /* check proto_exptime_to_abs(exptime, NOW) == abs instead */
    uint32_t abs;
    uint64_t cas;
    uint64_t delta;
    const char *data;
    size_t ndata;
    int64_t delay;
    uint32_t verbosity;
    const char *arg;            /* stats; NULL = empty */
    const char *key2;           /* rget */
    bool left_open, right_open;
    uint32_t max;               /* rget, iterate */
    const char *cursor;         /* iterate: the decoded cursor key ("" = from the start) */
    size_t ncursor;             /* its length when it holds a NUL (0 = strlen) */
    bool values;                /* iterate: v */
};

struct pcase {
    const char *name;
    const char *in;
    size_t len;
    enum proto_status st;
    bool upto_nl;               /* consumed = up to and including the first '\n' */
    size_t consumed;            /* else this, or 0 = the whole input */
    size_t swallow;
    const char *err;            /* PROTO_ERROR: the reply; NULL = suppressed by noreply */
    bool unlink;                /* PROTO_ERROR: unlink_key (req->key must be rq.key) */
    size_t need;                /* whole input NEED_MORE: its need */
    bool data_block;            /* a data block follows the line (need is known after it) */
    bool bad_get;               /* a bad get key: ERROR E_FORMAT or REQUEST whose walk ends "!" */
    size_t item_max;            /* 0 = 1 MiB */
    struct want_req rq;
};

#define IN(s) .in = (s), .len = sizeof(s) - 1
#define REQ(...) .st = PROTO_REQUEST, .rq = { __VA_ARGS__ }
#define ERR(e) .st = PROTO_ERROR, .err = (e)
#define DATA(s) .data = (s), .ndata = sizeof(s) - 1
#define LINE .upto_nl = true

static size_t first_line_len(const char *in, size_t len)
{
    const char *nl = memchr(in, '\n', len);
    return nl ? (size_t)(nl - in) + 1 : 0;
}

static void check_exptime(struct tctx *t, const struct want_req *w, int64_t got)
{
    if (w->exp_abs) {
        uint32_t a = proto_exptime_to_abs(got, NOW);
        CHECK(t, a == w->abs, "exptime %lld means absolute %u at now=%lld, want %u",
              (long long)got, a, (long long)NOW, w->abs);
    } else {
        CHECK(t, got == w->exptime, "exptime %lld, want %lld", (long long)got,
              (long long)w->exptime);
    }
}

static void check_key(struct tctx *t, const char *what, const char *k, size_t nk,
                      const char *want)
{
    CHECK(t, k != NULL && bytes_eq(k, nk, want, strlen(want)), "%s %s, want %s", what,
          k ? esc(k, nk) : "(null)", esc(want, strlen(want)));
}

static void check_request(struct tctx *t, const struct pcase *c, const struct outcome *o)
{
    const struct want_req *w = &c->rq;
    const struct proto_request *q = &o->req;
    char walked[4096];
    size_t nwalked;

    CHECK(t, q->cmd == w->cmd, "cmd %s, want %s", cmd_name(q->cmd), cmd_name(w->cmd));
    if (q->cmd != w->cmd) {
        return;
    }
    CHECK(t, q->noreply == w->noreply, "noreply %d, want %d", (int)q->noreply, (int)w->noreply);
    if (is_get_cmd(w->cmd)) {
        walk_keys(t, o, walked, sizeof walked, &nwalked);
        CHECK(t, strcmp(walked, w->keys ? w->keys : "") == 0, "keys walk %s, want %s",
              esc(walked, strlen(walked)), esc(w->keys, strlen(w->keys)));
        if (w->cmd == PROTO_CMD_GAT || w->cmd == PROTO_CMD_GATS) {
            check_exptime(t, w, q->exptime);
        }
    } else if (is_storage_cmd(w->cmd)) {
        check_key(t, "key", q->key, q->nkey, w->key);
        CHECK(t, q->flags == w->flags, "flags %u, want %u", q->flags, w->flags);
        check_exptime(t, w, q->exptime);
        CHECK(t, (q->ndata == 0 && w->ndata == 0) ||
                     (q->data != NULL && bytes_eq(q->data, q->ndata, w->data, w->ndata)),
              "data %s, want %s", q->data ? esc(q->data, q->ndata) : "(null)",
              esc(w->data, w->ndata));
        if (w->cmd == PROTO_CMD_CAS) {
            CHECK(t, q->cas == w->cas, "cas %llu, want %llu", (unsigned long long)q->cas,
                  (unsigned long long)w->cas);
        }
    } else if (w->cmd == PROTO_CMD_INCR || w->cmd == PROTO_CMD_DECR) {
        check_key(t, "key", q->key, q->nkey, w->key);
        CHECK(t, q->delta == w->delta, "delta %llu, want %llu", (unsigned long long)q->delta,
              (unsigned long long)w->delta);
    } else if (w->cmd == PROTO_CMD_DELETE) {
        check_key(t, "key", q->key, q->nkey, w->key);
    } else if (w->cmd == PROTO_CMD_TOUCH) {
        check_key(t, "key", q->key, q->nkey, w->key);
        check_exptime(t, w, q->exptime);
    } else if (w->cmd == PROTO_CMD_FLUSH_ALL) {
        CHECK(t, q->delay == w->delay, "delay %lld, want %lld", (long long)q->delay,
              (long long)w->delay);
    } else if (w->cmd == PROTO_CMD_VERBOSITY) {
        CHECK(t, q->verbosity == w->verbosity, "verbosity %u, want %u", q->verbosity,
              w->verbosity);
    } else if (w->cmd == PROTO_CMD_STATS) {
        const char *want = w->arg ? w->arg : "";
        CHECK(t, bytes_eq(q->narg ? q->arg : "", q->narg, want, strlen(want)),
              "stats arg %s, want %s", q->narg ? esc(q->arg, q->narg) : "\"\"",
              esc(want, strlen(want)));
    } else if (w->cmd == PROTO_CMD_RGET) {
        check_key(t, "start key", q->key, q->nkey, w->key);
        check_key(t, "end key", q->key2, q->nkey2, w->key2);
        CHECK(t, q->left_open == w->left_open && q->right_open == w->right_open,
              "openness %d %d, want %d %d", (int)q->left_open, (int)q->right_open,
              (int)w->left_open, (int)w->right_open);
        CHECK(t, q->max == w->max, "max %u, want %u", q->max, w->max);
    } else if (w->cmd == PROTO_CMD_ITERATE) {
        size_t nc = w->ncursor ? w->ncursor : strlen(w->cursor);
        CHECK(t, q->key == q->iter.key_buf && bytes_eq(q->key, q->nkey, w->cursor, nc),
              "cursor key %s, want %s", esc(q->key, q->nkey), esc(w->cursor, nc));
        CHECK(t, q->max == w->max, "count %u, want %u", q->max, w->max);
        CHECK(t, q->iter.values == w->values, "values %d, want %d", (int)q->iter.values,
              (int)w->values);
    }
}

static void check_case_result(struct tctx *t, const struct pcase *c, const struct outcome *o)
{
    const struct proto_result *r = &o->res;
    size_t want_consumed = c->upto_nl ? first_line_len(c->in, c->len)
                                      : (c->consumed ? c->consumed : c->len);
    char got[512];

    describe(o, got, sizeof got);
    if (c->bad_get && r->status == PROTO_ERROR) {
        /* The parser may also reject the bad get key itself: same reply as memcached. */
        CHECK(t, r->error != NULL && strcmp(r->error, E_FORMAT) == 0 &&
                 r->consumed == want_consumed && r->swallow == 0 && !r->unlink_key,
              "got %s; want ERROR consumed=%zu swallow=0 error=%s", got, want_consumed,
              E_FORMAT);
        return;
    }
    if (r->status != c->st) {
        CHECK(t, false, "got %s; want status %s%s%s", got, status_name(c->st),
              c->st == PROTO_ERROR ? " with error " : "",
              c->st == PROTO_ERROR ? (c->err ? c->err : "(null: suppressed by noreply)") : "");
        return;
    }
    switch (c->st) {
    case PROTO_NEED_MORE:
        CHECK(t, r->need == c->need, "NEED_MORE need=%zu, want %zu", r->need, c->need);
        break;
    case PROTO_CLOSE:
        break;
    case PROTO_ERROR:
        if (c->err == NULL) {
            CHECK(t, r->error == NULL, "error %s, want NULL (noreply suppresses it)",
                  r->error ? esc(r->error, strlen(r->error)) : "");
        } else {
            CHECK(t, r->error != NULL && strcmp(r->error, c->err) == 0, "error %s, want %s",
                  r->error ? esc(r->error, strlen(r->error)) : "NULL (suppressed)",
                  esc(c->err, strlen(c->err)));
        }
        CHECK(t, r->consumed == want_consumed, "consumed %zu, want %zu", r->consumed,
              want_consumed);
        CHECK(t, r->swallow == c->swallow, "swallow %zu, want %zu", r->swallow, c->swallow);
        CHECK(t, r->unlink_key == c->unlink, "unlink_key %d, want %d", (int)r->unlink_key,
              (int)c->unlink);
        if (c->unlink && r->unlink_key) {
            check_key(t, "unlink key", o->req.key, o->req.nkey, c->rq.key);
        }
        break;
    case PROTO_REQUEST:
        CHECK(t, r->consumed == want_consumed, "consumed %zu, want %zu", r->consumed,
              want_consumed);
        check_request(t, c, o);
        break;
    }
}

static void run_case(struct tctx *t, const struct pcase *c)
{
    struct proto_limits lim;
    struct outcome full;
    size_t line = first_line_len(c->in, c->len), total = 0;

    lim.item_max = c->item_max ? c->item_max : ITEM_MAX_DEFAULT;
    begin_case(t, c->name, c->in, c->len);
    parse_raw(&full, c->in, c->len, &lim, c->name, c->len);
    check_invariants(t, &full, "whole input");
    check_case_result(t, c, &full);

    if (c->st == PROTO_NEED_MORE && c->need) {
        total = c->need;
    } else if (c->data_block || (c->st == PROTO_REQUEST && is_storage_cmd(c->rq.cmd))) {
        total = c->consumed ? c->consumed : c->len;
    }
    check_splits(t, c->in, c->len, &lim, &full, total ? line : 0, total);
}

static void run_cases(struct tctx *t, const struct pcase *cs, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        run_case(t, &cs[i]);
    }
}

#define RUN_TABLE(t, table) run_cases((t), (table), sizeof(table) / sizeof((table)[0]))

/* Builds a case from a NUL-free runtime string. */
static struct pcase mk(const char *name, const char *in)
{
    struct pcase c;

    memset(&c, 0, sizeof c);
    c.name = name;
    c.in = in;
    c.len = strlen(in);
    return c;
}

/* ------------------------------------------------------------------------------------------ */
/* Unknown commands, empty lines and wrong token counts: "ERROR", never suppressed.            */

static const struct pcase error_cases[] = {
    { .name = "empty_line_crlf", IN("\r\n"), ERR(E_ERROR) },
    { .name = "empty_line_lf", IN("\n"), ERR(E_ERROR) },
    { .name = "spaces_only", IN("  \r\n"), ERR(E_ERROR) },
    { .name = "cr_only_line", IN("\r\r\n"), ERR(E_ERROR) },
    { .name = "one_char_command", IN("a\r\n"), ERR(E_ERROR) },
    { .name = "two_char_unknown", IN("ab\r\n"), ERR(E_ERROR) },
    { .name = "unknown_command", IN("foo bar\r\n"), ERR(E_ERROR) },
    { .name = "uppercase_get", IN("GET a\r\n"), ERR(E_ERROR) },
    { .name = "get_prefix_word", IN("getx a\r\n"), ERR(E_ERROR) },
    { .name = "sets_is_not_set", IN("sets k 0 0 1\r\n"), ERR(E_ERROR) },
    { .name = "tab_is_not_a_separator_get", IN("get\ta\r\n"), ERR(E_ERROR) },
    { .name = "tab_is_not_a_separator_set", IN("set\tk 0 0 1\r\nx\r\n"), ERR(E_ERROR), LINE },
    { .name = "get_without_key", IN("get\r\n"), ERR(E_ERROR) },
    { .name = "get_space_without_key", IN("get \r\n"), ERR(E_ERROR) },
    { .name = "gets_without_key", IN("gets\r\n"), ERR(E_ERROR) },
    { .name = "gat_without_exptime", IN("gat\r\n"), ERR(E_ERROR) },
    { .name = "gats_without_exptime", IN("gats\r\n"), ERR(E_ERROR) },
    { .name = "set_too_few_tokens", IN("set k 0 0\r\n"), ERR(E_ERROR) },
    { .name = "set_too_many_noreply_not_last", IN("set k 0 0 1 noreply x\r\nx\r\n"),
      ERR(E_ERROR), LINE },
    { .name = "set_too_many_noreply_last", IN("set k 0 0 1 x noreply\r\nx\r\n"), ERR(E_ERROR),
      LINE },
    { .name = "add_too_few_tokens", IN("add k 0 0\r\n"), ERR(E_ERROR) },
    { .name = "replace_key_only", IN("replace k\r\n"), ERR(E_ERROR) },
    { .name = "append_too_many_tokens", IN("append k 0 0 1 2 3\r\n"), ERR(E_ERROR) },
    { .name = "prepend_alone", IN("prepend\r\n"), ERR(E_ERROR) },
    { .name = "cas_without_unique", IN("cas k 0 0 1\r\nx\r\n"), ERR(E_ERROR), LINE },
    { .name = "cas_too_many_tokens", IN("cas k 0 0 1 1 noreply x\r\nx\r\n"), ERR(E_ERROR),
      LINE },
    { .name = "incr_without_delta", IN("incr k\r\n"), ERR(E_ERROR) },
    { .name = "incr_too_many_tokens", IN("incr k 5 noreply x\r\n"), ERR(E_ERROR) },
    { .name = "decr_without_delta", IN("decr k\r\n"), ERR(E_ERROR) },
    { .name = "delete_without_key", IN("delete\r\n"), ERR(E_ERROR) },
    { .name = "delete_too_many_tokens", IN("delete a b c d\r\n"), ERR(E_ERROR) },
    { .name = "delete_k_0_0_0", IN("delete k 0 0 0\r\n"), ERR(E_ERROR) },
    { .name = "touch_without_exptime", IN("touch k\r\n"), ERR(E_ERROR) },
    { .name = "touch_too_many_tokens", IN("touch k 10 a b\r\n"), ERR(E_ERROR) },
    { .name = "flush_all_too_many_tokens", IN("flush_all 1 2 3\r\n"), ERR(E_ERROR) },
    { .name = "verbosity_without_level", IN("verbosity\r\n"), ERR(E_ERROR) },
    { .name = "verbosity_too_many_tokens", IN("verbosity 1 2 3\r\n"), ERR(E_ERROR) },
    { .name = "version_with_cr_in_token", IN("version\r\r\n"), ERR(E_ERROR) },
    { .name = "quit_with_cr_in_token", IN("quit\r\r\n"), ERR(E_ERROR) },
    { .name = "stats_with_cr_in_token", IN("stats\r\r\n"), ERR(E_ERROR) },
};

static void test_unknown_commands_and_token_counts(void **state)
{
    struct tctx t = { 0 };

    (void)state;
    RUN_TABLE(&t, error_cases);
    finish(&t);
}

/* ------------------------------------------------------------------------------------------ */
/* Line endings, NUL bytes, spaces.                                                            */

static const struct pcase line_cases[] = {
    { .name = "version_crlf", IN("version\r\n"), REQ(.cmd = PROTO_CMD_VERSION) },
    { .name = "version_bare_lf", IN("version\n"), REQ(.cmd = PROTO_CMD_VERSION) },
    { .name = "only_cr_needs_more", IN("version\r"), .st = PROTO_NEED_MORE },
    { .name = "no_newline_needs_more", IN("version"), .st = PROTO_NEED_MORE },
    { .name = "empty_buffer_needs_more", IN(""), .st = PROTO_NEED_MORE },
    { .name = "get_bare_lf", IN("get a\n"), REQ(.cmd = PROTO_CMD_GET, .keys = "a") },
    /* ours: "a\r" holds a control character (memcached would look the key up) */
    { .name = "get_cr_cr_lf_key_ends_in_cr", IN("get a\r\r\n"), .bad_get = true,
      REQ(.cmd = PROTO_CMD_GET, .keys = "!") },
    { .name = "nul_ends_get_line", IN("get a\0b\r\n"), REQ(.cmd = PROTO_CMD_GET, .keys = "a") },
    { .name = "nul_before_crlf", IN("get a\0\r\n"), REQ(.cmd = PROTO_CMD_GET, .keys = "a") },
    { .name = "nul_first_byte", IN("\0get a\r\n"), ERR(E_ERROR) },
    { .name = "nul_inside_command_word", IN("se\0t k 0 0 1\r\nx\r\n"), ERR(E_ERROR), LINE },
    { .name = "nul_after_version", IN("version\0junk\r\n"), REQ(.cmd = PROTO_CMD_VERSION) },
    { .name = "nul_ends_set_line", IN("set k 0 0 1\0junk\r\nx\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", DATA("x")) },
    { .name = "nul_inside_data", IN("set k 0 0 3\r\na\0b\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", DATA("a\0b")) },
    { .name = "crlf_inside_data", IN("set k 0 0 4\r\na\r\nb\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", DATA("a\r\nb")) },
    { .name = "extra_spaces_everywhere", IN(" set  k  0  0  1 \r\nx\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", DATA("x")) },
    { .name = "leading_space_get", IN(" get a\r\n"), REQ(.cmd = PROTO_CMD_GET, .keys = "a") },
    { .name = "length_token_ending_in_cr", IN("set k 0 0 5\r\r\nhello\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", DATA("hello")) },
    { .name = "length_token_ending_in_tab", IN("set k 0 0 5\t\r\nhello\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", DATA("hello")) },
    { .name = "noreply_with_cr_is_not_noreply", IN("set k 0 0 1 noreply\r\r\nx\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", DATA("x")) },
    { .name = "delete_zero_with_cr", IN("delete k 0\r\r\n"), ERR(E_DELETE) },
    /* (a first byte 0x80 goes to the binary protocol before this parser sees it) */
    { .name = "binary_garbage_line", IN("\x01\x80\x00\x00\r\n"), ERR(E_ERROR) },
    { .name = "binary_garbage_line_2", IN("\x7f\xff\xfe\x80\x00\x01\r\n"), ERR(E_ERROR) },
    { .name = "high_bytes_line", IN("\xff\xfe\xfd garbage\r\n"), ERR(E_ERROR) },
};

static void test_line_endings_nul_and_spaces(void **state)
{
    struct tctx t = { 0 };

    (void)state;
    RUN_TABLE(&t, line_cases);
    finish(&t);
}

/* ------------------------------------------------------------------------------------------ */
/* get / gets / gat / gats / bget.                                                             */

static const struct pcase get_cases[] = {
    { .name = "get_one", IN("get a\r\n"), REQ(.cmd = PROTO_CMD_GET, .keys = "a") },
    { .name = "gets_one", IN("gets a\r\n"), REQ(.cmd = PROTO_CMD_GETS, .keys = "a") },
    { .name = "get_three", IN("get a b c\r\n"), REQ(.cmd = PROTO_CMD_GET, .keys = "a|b|c") },
    { .name = "get_extra_spaces", IN("get  a   b  \r\n"),
      REQ(.cmd = PROTO_CMD_GET, .keys = "a|b") },
    { .name = "get_noreply_is_a_key", IN("get a noreply\r\n"),
      REQ(.cmd = PROTO_CMD_GET, .keys = "a|noreply") },
    { .name = "bget_is_get", IN("bget a\r\n"), REQ(.cmd = PROTO_CMD_GET, .keys = "a") },
    { .name = "gat_two_keys", IN("gat 100 a b\r\n"),
      REQ(.cmd = PROTO_CMD_GAT, .exptime = 100, .keys = "a|b") },
    { .name = "gats_zero", IN("gats 0 a\r\n"), REQ(.cmd = PROTO_CMD_GATS, .keys = "a") },
    { .name = "gat_negative_exptime", IN("gat -1 a\r\n"),
      REQ(.cmd = PROTO_CMD_GAT, .exptime = -1, .keys = "a") },
    { .name = "gat_without_keys_is_a_request", IN("gat 100\r\n"),      /* memcached: END */
      REQ(.cmd = PROTO_CMD_GAT, .exptime = 100, .keys = "") },
    { .name = "gat_bad_exptime", IN("gat abc a\r\n"), ERR(E_EXPTIME) },
    { .name = "gat_bad_exptime_no_keys", IN("gat abc\r\n"), ERR(E_EXPTIME) },
    { .name = "gat_exptime_trailing_junk", IN("gat 1x a\r\n"), ERR(E_EXPTIME) },
    { .name = "gats_noreply_does_not_suppress", IN("gats abc a noreply\r\n"), ERR(E_EXPTIME) },
    { .name = "gat_exptime_2pow32_wraps_to_never", IN("gat 4294967296 a\r\n"),
      REQ(.cmd = PROTO_CMD_GAT, .exp_abs = true, .abs = 0, .keys = "a") },
    { .name = "gat_exptime_2pow31_wraps_to_expired", IN("gat 2147483648 a\r\n"),
      REQ(.cmd = PROTO_CMD_GAT, .exp_abs = true, .abs = 1, .keys = "a") },
    /* ours: keys with control characters are refused */
    { .name = "get_control_char_key", IN("get a\x01" "b\r\n"), .bad_get = true,
      REQ(.cmd = PROTO_CMD_GET, .keys = "!") },
    { .name = "get_tab_inside_key", IN("get a\tb\r\n"), .bad_get = true,
      REQ(.cmd = PROTO_CMD_GET, .keys = "!") },
    { .name = "get_del_char_key", IN("get a\x7f\r\n"), .bad_get = true,
      REQ(.cmd = PROTO_CMD_GET, .keys = "!") },
    { .name = "get_second_key_control_char", IN("get a b\x02\r\n"), .bad_get = true,
      REQ(.cmd = PROTO_CMD_GET, .keys = "a|!") },
    { .name = "get_utf8_key", IN("get k\xc3\xa9\r\n"),
      REQ(.cmd = PROTO_CMD_GET, .keys = "k\xc3\xa9") },
};

static void test_get_family(void **state)
{
    struct tctx t = { 0 };
    struct pcase c;
    char *keys100;
    size_t i;

    (void)state;
    RUN_TABLE(&t, get_cases);

    c = mk("get_key_250_bytes", S("get %s\r\n", k250));
    c.st = PROTO_REQUEST;
    c.rq.cmd = PROTO_CMD_GET;
    c.rq.keys = k250;
    run_case(&t, &c);

    c = mk("get_key_251_bytes", S("get %s\r\n", k251));
    c.st = PROTO_REQUEST;
    c.bad_get = true;
    c.rq.cmd = PROTO_CMD_GET;
    c.rq.keys = "!";
    run_case(&t, &c);

    c = mk("get_key_251_bytes_between_good_keys", S("get a %s b\r\n", k251));
    c.st = PROTO_REQUEST;
    c.bad_get = true;
    c.rq.cmd = PROTO_CMD_GET;
    c.rq.keys = "a|!";
    run_case(&t, &c);

    c = mk("get_key_251_bytes_after_24_tokens",
           S("get a %s %s\r\n", rep("b", " ", 40), k251));
    c.st = PROTO_REQUEST;
    c.bad_get = true;
    c.rq.cmd = PROTO_CMD_GET;
    c.rq.keys = S("a|%s|!", rep("b", "|", 40));
    run_case(&t, &c);

    c = mk("gat_key_251_bytes", S("gat 100 %s\r\n", k251));
    c.st = PROTO_REQUEST;
    c.bad_get = true;
    c.rq.cmd = PROTO_CMD_GAT;
    c.rq.exptime = 100;
    c.rq.keys = "!";
    run_case(&t, &c);

    c = mk("gat_bad_exptime_before_long_key", S("gat abc %s\r\n", k251));
    c.st = PROTO_ERROR;
    c.err = E_EXPTIME;
    run_case(&t, &c);

    /* More keys than memcached's 24 tokens: memcached re-tokenizes and serves them all. */
    keys100 = malloc(100 * 6);
    assert_non_null(keys100);
    keys100[0] = '\0';
    for (i = 0; i < 100; i++) {
        sprintf(keys100 + strlen(keys100), "%sk%zu", i ? " " : "", i);
    }
    c = mk("get_100_keys", S("get %s\r\n", keys100));
    c.st = PROTO_REQUEST;
    c.rq.cmd = PROTO_CMD_GET;
    for (i = 0; keys100[i]; i++) {
        if (keys100[i] == ' ') {
            keys100[i] = '|';
        }
    }
    c.rq.keys = S("%s", keys100);
    run_case(&t, &c);
    free(keys100);

    c = mk("gets_30_keys_same_key", S("gets %s\r\n", rep("a", " ", 30)));
    c.st = PROTO_REQUEST;
    c.rq.cmd = PROTO_CMD_GETS;
    c.rq.keys = rep("a", "|", 30);
    run_case(&t, &c);

    c = mk("gats_30_keys", S("gats 5 %s\r\n", rep("a", " ", 30)));
    c.st = PROTO_REQUEST;
    c.rq.cmd = PROTO_CMD_GATS;
    c.rq.exptime = 5;
    c.rq.keys = rep("a", "|", 30);
    run_case(&t, &c);

    /* A get line longer than 2048 bytes is fine once its '\n' is there. */
    c = mk("get_1500_keys_line_over_2048_bytes", S("get %s\r\n", rep("x", " ", 1500)));
    c.st = PROTO_REQUEST;
    c.rq.cmd = PROTO_CMD_GET;
    c.rq.keys = rep("x", "|", 1500);
    run_case(&t, &c);

    finish(&t);
}

/* ------------------------------------------------------------------------------------------ */
/* Storage commands: well-formed requests and memcached's number parsing.                      */

static const struct pcase storage_cases[] = {
    { .name = "set_basic", IN("set k 0 0 5\r\nhello\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", DATA("hello")) },
    { .name = "add_flags_exptime", IN("add k 1 2 3\r\nabc\r\n"),
      REQ(.cmd = PROTO_CMD_ADD, .key = "k", .flags = 1, .exptime = 2, DATA("abc")) },
    { .name = "replace_basic", IN("replace k 7 0 1\r\nx\r\n"),
      REQ(.cmd = PROTO_CMD_REPLACE, .key = "k", .flags = 7, DATA("x")) },
    { .name = "append_basic", IN("append k 0 0 2\r\nab\r\n"),
      REQ(.cmd = PROTO_CMD_APPEND, .key = "k", DATA("ab")) },
    { .name = "prepend_basic", IN("prepend k 0 0 2\r\nab\r\n"),
      REQ(.cmd = PROTO_CMD_PREPEND, .key = "k", DATA("ab")) },
    { .name = "cas_basic", IN("cas k 0 0 5 123\r\nhello\r\n"),
      REQ(.cmd = PROTO_CMD_CAS, .key = "k", .cas = 123, DATA("hello")) },
    { .name = "cas_unique_2pow64_minus_1", IN("cas k 0 0 1 18446744073709551615\r\nx\r\n"),
      REQ(.cmd = PROTO_CMD_CAS, .key = "k", .cas = UINT64_MAX, DATA("x")) },
    { .name = "cas_unique_zero", IN("cas k 0 0 1 0\r\nx\r\n"),
      REQ(.cmd = PROTO_CMD_CAS, .key = "k", .cas = 0, DATA("x")) },
    { .name = "set_noreply", IN("set k 0 0 5 noreply\r\nhello\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .noreply = true, .key = "k", DATA("hello")) },
    { .name = "cas_noreply", IN("cas k 0 0 5 1 noreply\r\nhello\r\n"),
      REQ(.cmd = PROTO_CMD_CAS, .noreply = true, .key = "k", .cas = 1, DATA("hello")) },
    { .name = "set_junk_in_noreply_slot_is_ignored", IN("set k 0 0 5 junk\r\nhello\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", DATA("hello")) },
    { .name = "set_uppercase_noreply_is_ignored", IN("set k 0 0 1 NOREPLY\r\nx\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", DATA("x")) },
    { .name = "set_empty_value", IN("set k 0 0 0\r\n\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", DATA("")) },
    { .name = "set_flags_2pow32_minus_1", IN("set k 4294967295 0 1\r\nx\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", .flags = 4294967295u, DATA("x")) },
    /* memcached parses flags with a 64-bit strtoul and keeps the low 32 bits */
    { .name = "set_flags_2pow32_truncates_to_0", IN("set k 4294967296 0 1\r\nx\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", .flags = 0, DATA("x")) },
    { .name = "set_flags_2pow64_minus_1_truncates", IN("set k 18446744073709551615 0 1\r\nx\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", .flags = 4294967295u, DATA("x")) },
    { .name = "set_flags_minus_zero", IN("set k -0 0 1\r\nx\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", .flags = 0, DATA("x")) },
    { .name = "set_flags_plus_sign", IN("set k +5 0 1\r\nx\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", .flags = 5, DATA("x")) },
    { .name = "set_flags_minus_2pow64_plus_1_is_1", IN("set k -18446744073709551615 0 1\r\nx\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", .flags = 1, DATA("x")) },
    { .name = "set_exptime_negative", IN("set k 0 -1 1\r\nx\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", .exptime = -1, DATA("x")) },
    { .name = "set_exptime_30_days", IN("set k 0 2592000 1\r\nx\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", .exptime = 2592000, DATA("x")) },
    { .name = "set_exptime_plus_sign", IN("set k 0 +5 1\r\nx\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", .exptime = 5, DATA("x")) },
    /* memcached keeps the low 32 bits of a 64-bit strtol, signed */
    { .name = "set_exptime_2pow31_wraps_to_expired", IN("set k 0 2147483648 1\r\nx\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", .exp_abs = true, .abs = 1, DATA("x")) },
    { .name = "set_exptime_2pow32_wraps_to_never", IN("set k 0 4294967296 1\r\nx\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", .exp_abs = true, .abs = 0, DATA("x")) },
    { .name = "set_exptime_below_int32_wraps_to_2038", IN("set k 0 -2147483649 1\r\nx\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", .exp_abs = true, .abs = 2147483647u, DATA("x")) },
    { .name = "set_length_leading_zero", IN("set k 0 0 05\r\nxxxxx\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", DATA("xxxxx")) },
    { .name = "set_length_plus_sign", IN("set k 0 0 +1\r\nx\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", DATA("x")) },
    { .name = "set_length_minus_zero", IN("set k 0 0 -0\r\n\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", DATA("")) },
    { .name = "set_length_2pow32_wraps_to_0", IN("set k 0 0 4294967296\r\n\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", DATA("")) },
    { .name = "set_length_2pow32_plus_1_wraps_to_1", IN("set k 0 0 4294967297\r\nx\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", DATA("x")) },
    { .name = "set_length_minus_2pow32_plus_1_wraps_to_1", IN("set k 0 0 -4294967295\r\nx\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", DATA("x")) },
    { .name = "set_length_2pow33_plus_1_wraps_to_1", IN("set k 0 0 8589934593\r\nx\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", DATA("x")) },
    { .name = "set_utf8_key", IN("set k\xc3\xa9 0 0 1\r\nx\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k\xc3\xa9", DATA("x")) },
    { .name = "set_exptime_long_max_wraps_to_expired",
      IN("set k 0 9223372036854775807 1\r\nx\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", .exp_abs = true, .abs = 1, DATA("x")) },
    { .name = "set_exptime_long_min_wraps_to_never",
      IN("set k 0 -9223372036854775808 1\r\nx\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", .exp_abs = true, .abs = 0, DATA("x")) },
    { .name = "set_flags_minus_2pow63_minus_1_is_max",
      IN("set k -9223372036854775809 0 1\r\nx\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", .flags = 4294967295u, DATA("x")) },
    /* strtol skips leading whitespace and memcached only looks at the byte after the digits */
    { .name = "set_length_then_tab_and_junk", IN("set k 0 0 1\tjunk\r\nx\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", DATA("x")) },
    { .name = "set_length_leading_tab", IN("set k 0 0 \t5\r\nhello\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", DATA("hello")) },
    { .name = "set_length_leading_vtab", IN("set k 0 0 \x0b" "5\r\nhello\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", DATA("hello")) },
    { .name = "set_length_trailing_formfeed", IN("set k 0 0 5\x0c\r\nhello\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", DATA("hello")) },
    { .name = "set_partial_data_needs_more", IN("set k 0 0 5\r\nhel"), .st = PROTO_NEED_MORE,
      .need = 20 },
    { .name = "set_data_without_lf_needs_more", IN("set k 0 0 5\r\nhello\r"),
      .st = PROTO_NEED_MORE, .need = 20 },
    { .name = "set_line_only_needs_more", IN("set k 0 0 5\r\n"), .st = PROTO_NEED_MORE,
      .need = 20 },
    { .name = "set_no_line_end_needs_more", IN("set k 0 0 5"), .st = PROTO_NEED_MORE },
};

static void test_storage_commands(void **state)
{
    struct tctx t = { 0 };
    struct pcase c;
    const char *big;
    char *in;
    size_t n = 5000;

    (void)state;
    RUN_TABLE(&t, storage_cases);

    c = mk("set_key_250_bytes", S("set %s 0 0 1\r\nx\r\n", k250));
    c.st = PROTO_REQUEST;
    c.rq.cmd = PROTO_CMD_SET;
    c.rq.key = k250;
    c.rq.data = "x";
    c.rq.ndata = 1;
    run_case(&t, &c);

    /* A data block is not a line: 5000 bytes without '\n' must not trip the 2048 limit. */
    in = malloc(64 + n);
    assert_non_null(in);
    sprintf(in, "set k 0 0 %zu\r\n", n);
    memset(in + strlen(in), 'v', n);
    strcpy(in + strlen("set k 0 0 5000\r\n") + n, "\r\n");
    big = S("%s", in);
    free(in);
    c = mk("set_5000_byte_value_without_newline", big);
    c.st = PROTO_REQUEST;
    c.rq.cmd = PROTO_CMD_SET;
    c.rq.key = "k";
    c.rq.data = big + strlen("set k 0 0 5000\r\n");
    c.rq.ndata = n;
    run_case(&t, &c);

    finish(&t);
}

/* ------------------------------------------------------------------------------------------ */
/* Storage command errors: bad lines, bad chunks, too large, noreply.                          */

static const struct pcase storage_error_cases[] = {
    { .name = "set_negative_length", IN("set k 0 0 -1\r\nx\r\n"), ERR(E_FORMAT), LINE },
    { .name = "set_negative_length_noreply", IN("set k 0 0 -1 noreply\r\n"), ERR(NULL) },
    { .name = "set_length_int_max_minus_1", IN("set k 0 0 2147483646\r\n"), ERR(E_FORMAT) },
    { .name = "set_length_int_max", IN("set k 0 0 2147483647\r\n"), ERR(E_FORMAT) },
    { .name = "set_length_2pow31_wraps_negative", IN("set k 0 0 2147483648\r\n"),
      ERR(E_FORMAT) },
    { .name = "set_length_int_min", IN("set k 0 0 -2147483648\r\n"), ERR(E_FORMAT) },
    { .name = "set_length_2pow32_minus_1_wraps_to_minus_1", IN("set k 0 0 4294967295\r\n"),
      ERR(E_FORMAT) },
    { .name = "set_length_out_of_range", IN("set k 0 0 99999999999999999999\r\nx\r\n"),
      ERR(E_FORMAT), LINE },
    { .name = "set_length_not_a_number", IN("set k 0 0 abc\r\nx\r\n"), ERR(E_FORMAT), LINE },
    { .name = "set_length_hex", IN("set k 0 0 0x5\r\nx\r\n"), ERR(E_FORMAT), LINE },
    { .name = "set_length_trailing_junk", IN("set k 0 0 5abc\r\nx\r\n"), ERR(E_FORMAT), LINE },
    { .name = "set_flags_not_a_number", IN("set k abc 0 1\r\nx\r\n"), ERR(E_FORMAT), LINE },
    { .name = "set_flags_minus_1", IN("set k -1 0 1\r\nx\r\n"), ERR(E_FORMAT), LINE },
    { .name = "set_flags_minus_2pow32", IN("set k -4294967296 0 1\r\nx\r\n"), ERR(E_FORMAT),
      LINE },
    { .name = "set_flags_2pow64", IN("set k 18446744073709551616 0 1\r\nx\r\n"),
      ERR(E_FORMAT), LINE },
    { .name = "set_exptime_not_a_number", IN("set k 0 abc 1\r\nx\r\n"), ERR(E_FORMAT), LINE },
    { .name = "set_exptime_out_of_range", IN("set k 0 99999999999999999999 1\r\nx\r\n"),
      ERR(E_FORMAT), LINE },
    { .name = "set_exptime_above_long_max", IN("set k 0 9223372036854775808 1\r\nx\r\n"),
      ERR(E_FORMAT), LINE },
    { .name = "set_exptime_below_long_min", IN("set k 0 -9223372036854775809 1\r\nx\r\n"),
      ERR(E_FORMAT), LINE },
    { .name = "set_flags_minus_2pow63", IN("set k -9223372036854775808 0 1\r\nx\r\n"),
      ERR(E_FORMAT), LINE },
    { .name = "set_length_minus_alone", IN("set k 0 0 -\r\nx\r\n"), ERR(E_FORMAT), LINE },
    { .name = "set_length_plus_alone", IN("set k 0 0 +\r\nx\r\n"), ERR(E_FORMAT), LINE },
    { .name = "set_length_plus_tab_digit", IN("set k 0 0 +\t5\r\nhello\r\n"), ERR(E_FORMAT),
      LINE },
    /* memcached's sign check is strchr(token, '-'): any '-' in a token holding >= 2^63 */
    { .name = "cas_unique_max_then_tab_minus", IN("cas k 0 0 1 18446744073709551615\t-\r\nx\r\n"),
      ERR(E_FORMAT), LINE },
    { .name = "set_flags_max_then_tab_minus", IN("set k 18446744073709551615\t- 0 1\r\nx\r\n"),
      ERR(E_FORMAT), LINE },
    { .name = "cas_unique_2pow64", IN("cas k 0 0 1 18446744073709551616\r\nx\r\n"),
      ERR(E_FORMAT), LINE },
    { .name = "cas_unique_minus_1", IN("cas k 0 0 1 -1\r\nx\r\n"), ERR(E_FORMAT), LINE },
    { .name = "cas_unique_not_a_number", IN("cas k 0 0 1 abc\r\nx\r\n"), ERR(E_FORMAT), LINE },
    { .name = "cas_unique_bad_noreply", IN("cas k 0 0 1 abc noreply\r\nx\r\n"), ERR(NULL),
      LINE },
    /* 7 tokens: "noreply" is both the noreply flag and the (invalid) cas unique */
    { .name = "cas_noreply_in_unique_slot", IN("cas k 0 0 5 noreply\r\nhello\r\n"), ERR(NULL),
      LINE },
    { .name = "set_noreply_in_length_slot", IN("set k 0 0 noreply\r\nhello\r\n"), ERR(NULL),
      LINE },
    /* bad data chunk: bytes + 2 are consumed whatever they are */
    { .name = "bad_chunk_xx", IN("set k 0 0 5\r\nhelloXX"), ERR(E_CHUNK), .data_block = true },
    { .name = "bad_chunk_lf_then_byte", IN("set k 0 0 5\r\nhello\nX"), ERR(E_CHUNK),
      .data_block = true },
    { .name = "bad_chunk_lf_cr", IN("set k 0 0 5\r\nhello\n\r"), ERR(E_CHUNK),
      .data_block = true },
    { .name = "bad_chunk_cr_cr", IN("set k 0 0 5\r\nhello\r\r"), ERR(E_CHUNK),
      .data_block = true },
    { .name = "bad_chunk_empty_value", IN("set k 0 0 0\r\nXX"), ERR(E_CHUNK),
      .data_block = true },
    { .name = "bad_chunk_cas", IN("cas k 0 0 1 1\r\nx\n\n"), ERR(E_CHUNK), .data_block = true },
    { .name = "bad_chunk_noreply", IN("set k 0 0 5 noreply\r\nhelloXX"), ERR(NULL),
      .data_block = true },
    { .name = "bad_chunk_not_yet_complete", IN("set k 0 0 5\r\nhelloX"), .st = PROTO_NEED_MORE,
      .need = 20 },
    /* too large (memcached -I 1m): the reply comes at once, the data is swallowed */
    { .name = "too_large_set", IN("set k 0 0 2000000\r\n"), ERR(E_TOO_LARGE),
      .swallow = 2000002, .unlink = true, .rq = { .key = "k" } },
    { .name = "too_large_set_noreply", IN("set k 0 0 2000000 noreply\r\n"), ERR(NULL),
      .swallow = 2000002, .unlink = true, .rq = { .key = "k" } },
    { .name = "too_large_set_int_max_minus_2", IN("set k 0 0 2147483645\r\n"),
      ERR(E_TOO_LARGE), .swallow = 2147483647, .unlink = true, .rq = { .key = "k" } },
    { .name = "too_large_set_data_already_there", IN("set k 0 0 1048577\r\nxx"),
      ERR(E_TOO_LARGE), LINE, .swallow = 1048579, .unlink = true, .rq = { .key = "k" } },
    { .name = "too_large_add_keeps_key", IN("add k 0 0 2000000\r\n"), ERR(E_TOO_LARGE),
      .swallow = 2000002 },
    { .name = "too_large_add_noreply", IN("add k 0 0 2000000 noreply\r\n"), ERR(NULL),
      .swallow = 2000002 },
    { .name = "too_large_replace", IN("replace k 0 0 2000000\r\n"), ERR(E_TOO_LARGE),
      .swallow = 2000002 },
    { .name = "too_large_append", IN("append k 0 0 2000000\r\n"), ERR(E_TOO_LARGE),
      .swallow = 2000002 },
    { .name = "too_large_prepend", IN("prepend k 0 0 2000000\r\n"), ERR(E_TOO_LARGE),
      .swallow = 2000002 },
    { .name = "too_large_cas", IN("cas k 0 0 2000000 1\r\n"), ERR(E_TOO_LARGE),
      .swallow = 2000002 },
    /* memcached's accounting: 48 (item) + key + 1 + value + 2 + 8 (cas) [+ 4 if flags != 0]
       must fit in -I; measured on memcached 1.6.18 -I 1m and -I 2m */
    { .name = "item_max_boundary_fits", IN("set k 0 0 1048516\r\n"), .st = PROTO_NEED_MORE,
      .need = 19 + 1048516 + 2 },
    { .name = "item_max_boundary_plus_1", IN("set k 0 0 1048517\r\n"), ERR(E_TOO_LARGE),
      .swallow = 1048519, .unlink = true, .rq = { .key = "k" } },
    { .name = "item_max_boundary_flags_fits", IN("set k 1 0 1048512\r\n"),
      .st = PROTO_NEED_MORE, .need = 19 + 1048512 + 2 },
    { .name = "item_max_boundary_flags_plus_1", IN("set k 1 0 1048513\r\n"), ERR(E_TOO_LARGE),
      .swallow = 1048515, .unlink = true, .rq = { .key = "k" } },
    { .name = "item_max_2m_boundary_fits", IN("set k 0 0 2097092\r\n"), .st = PROTO_NEED_MORE,
      .need = 19 + 2097092 + 2, .item_max = 2 * MIB },
    { .name = "item_max_2m_boundary_plus_1", IN("set k 0 0 2097093\r\n"), ERR(E_TOO_LARGE),
      .swallow = 2097095, .unlink = true, .rq = { .key = "k" }, .item_max = 2 * MIB },
    /* ours: keys with control characters are refused like over-long keys */
    { .name = "set_control_char_key", IN("set a\x01" "b 0 0 1\r\nx\r\n"), ERR(E_FORMAT),
      LINE },
    { .name = "set_del_char_key", IN("set a\x7f 0 0 1\r\nx\r\n"), ERR(E_FORMAT), LINE },
    { .name = "set_control_char_key_noreply", IN("set a\x01 0 0 1 noreply\r\nx\r\n"),
      ERR(NULL), LINE },
    { .name = "add_control_char_key", IN("add a\x1f 0 0 1\r\nx\r\n"), ERR(E_FORMAT), LINE },
    { .name = "cas_control_char_key", IN("cas a\x02 0 0 1 1\r\nx\r\n"), ERR(E_FORMAT), LINE },
};

static void test_storage_errors(void **state)
{
    struct tctx t = { 0 };
    struct pcase c;

    (void)state;
    RUN_TABLE(&t, storage_error_cases);

    c = mk("set_key_251_bytes", S("set %s 0 0 1\r\nx\r\n", k251));
    c.st = PROTO_ERROR;
    c.err = E_FORMAT;
    c.upto_nl = true;
    run_case(&t, &c);

    c = mk("set_key_251_bytes_noreply", S("set %s 0 0 1 noreply\r\nx\r\n", k251));
    c.st = PROTO_ERROR;
    c.upto_nl = true;
    run_case(&t, &c);

    c = mk("set_key_251_bytes_negative_length", S("set %s 0 0 -1\r\n", k251));
    c.st = PROTO_ERROR;
    c.err = E_FORMAT;
    run_case(&t, &c);

    c = mk("cas_key_251_bytes", S("cas %s 0 0 1 1\r\nx\r\n", k251));
    c.st = PROTO_ERROR;
    c.err = E_FORMAT;
    c.upto_nl = true;
    run_case(&t, &c);

    c = mk("item_max_boundary_key_250_fits", S("set %s 0 0 1048267\r\n", k250));
    c.st = PROTO_NEED_MORE;
    c.need = c.len + 1048267 + 2;
    run_case(&t, &c);

    c = mk("item_max_boundary_key_250_plus_1", S("set %s 0 0 1048268\r\n", k250));
    c.st = PROTO_ERROR;
    c.err = E_TOO_LARGE;
    c.swallow = 1048270;
    c.unlink = true;
    c.rq.key = k250;
    run_case(&t, &c);

    finish(&t);
}

/* ------------------------------------------------------------------------------------------ */
/* incr / decr.                                                                                */

static const struct pcase arith_cases[] = {
    { .name = "incr_basic", IN("incr k 5\r\n"),
      REQ(.cmd = PROTO_CMD_INCR, .key = "k", .delta = 5) },
    { .name = "decr_basic", IN("decr k 5\r\n"),
      REQ(.cmd = PROTO_CMD_DECR, .key = "k", .delta = 5) },
    { .name = "incr_delta_2pow64_minus_1", IN("incr k 18446744073709551615\r\n"),
      REQ(.cmd = PROTO_CMD_INCR, .key = "k", .delta = UINT64_MAX) },
    { .name = "incr_delta_zero", IN("incr k 0\r\n"),
      REQ(.cmd = PROTO_CMD_INCR, .key = "k", .delta = 0) },
    { .name = "incr_delta_minus_zero", IN("incr k -0\r\n"),
      REQ(.cmd = PROTO_CMD_INCR, .key = "k", .delta = 0) },
    { .name = "incr_delta_plus_sign", IN("incr k +1\r\n"),
      REQ(.cmd = PROTO_CMD_INCR, .key = "k", .delta = 1) },
    { .name = "incr_double_space", IN("incr k  1\r\n"),
      REQ(.cmd = PROTO_CMD_INCR, .key = "k", .delta = 1) },
    { .name = "incr_noreply", IN("incr k 5 noreply\r\n"),
      REQ(.cmd = PROTO_CMD_INCR, .noreply = true, .key = "k", .delta = 5) },
    { .name = "decr_noreply", IN("decr k 5 noreply\r\n"),
      REQ(.cmd = PROTO_CMD_DECR, .noreply = true, .key = "k", .delta = 5) },
    { .name = "incr_junk_in_noreply_slot", IN("incr k 1 junk\r\n"),
      REQ(.cmd = PROTO_CMD_INCR, .key = "k", .delta = 1) },
    { .name = "incr_delta_then_tab_junk", IN("incr k 1\tx\r\n"),
      REQ(.cmd = PROTO_CMD_INCR, .key = "k", .delta = 1) },
    { .name = "incr_delta_max_then_tab_minus", IN("incr k 18446744073709551615\t-\r\n"),
      ERR(E_DELTA) },
    { .name = "incr_small_delta_then_tab_minus", IN("incr k 5\t-\r\n"),
      REQ(.cmd = PROTO_CMD_INCR, .key = "k", .delta = 5) },
    { .name = "incr_delta_negative", IN("incr k -1\r\n"), ERR(E_DELTA) },
    { .name = "incr_delta_2pow64", IN("incr k 18446744073709551616\r\n"), ERR(E_DELTA) },
    { .name = "incr_delta_not_a_number", IN("incr k abc\r\n"), ERR(E_DELTA) },
    { .name = "incr_delta_trailing_junk", IN("incr k 1x\r\n"), ERR(E_DELTA) },
    { .name = "decr_delta_not_a_number", IN("decr k abc\r\n"), ERR(E_DELTA) },
    { .name = "incr_bad_delta_noreply", IN("incr k abc noreply\r\n"), ERR(NULL) },
    /* ours */
    { .name = "incr_control_char_key", IN("incr a\x01 1\r\n"), ERR(E_FORMAT) },
};

static void test_incr_decr(void **state)
{
    struct tctx t = { 0 };
    struct pcase c;

    (void)state;
    RUN_TABLE(&t, arith_cases);

    c = mk("incr_key_251_bytes", S("incr %s 1\r\n", k251));
    c.st = PROTO_ERROR;
    c.err = E_FORMAT;
    run_case(&t, &c);

    c = mk("incr_key_251_bytes_checked_before_delta", S("incr %s abc\r\n", k251));
    c.st = PROTO_ERROR;
    c.err = E_FORMAT;
    run_case(&t, &c);

    c = mk("decr_key_251_bytes_noreply", S("decr %s 1 noreply\r\n", k251));
    c.st = PROTO_ERROR;
    run_case(&t, &c);

    c = mk("incr_key_250_bytes", S("incr %s 1\r\n", k250));
    c.st = PROTO_REQUEST;
    c.rq.cmd = PROTO_CMD_INCR;
    c.rq.key = k250;
    c.rq.delta = 1;
    run_case(&t, &c);

    finish(&t);
}

/* ------------------------------------------------------------------------------------------ */
/* delete / touch.                                                                             */

static const struct pcase delete_touch_cases[] = {
    { .name = "delete_basic", IN("delete k\r\n"), REQ(.cmd = PROTO_CMD_DELETE, .key = "k") },
    { .name = "delete_hold_zero", IN("delete k 0\r\n"), REQ(.cmd = PROTO_CMD_DELETE, .key = "k") },
    { .name = "delete_noreply", IN("delete k noreply\r\n"),
      REQ(.cmd = PROTO_CMD_DELETE, .noreply = true, .key = "k") },
    { .name = "delete_hold_zero_noreply", IN("delete k 0 noreply\r\n"),
      REQ(.cmd = PROTO_CMD_DELETE, .noreply = true, .key = "k") },
    { .name = "delete_hold_one", IN("delete k 1\r\n"), ERR(E_DELETE) },
    { .name = "delete_hold_zero_zero", IN("delete k 0 0\r\n"), ERR(E_DELETE) },
    { .name = "delete_noreply_then_zero", IN("delete k noreply 0\r\n"), ERR(E_DELETE) },
    { .name = "delete_hold_double_zero", IN("delete k 00\r\n"), ERR(E_DELETE) },
    { .name = "delete_hold_word", IN("delete k x\r\n"), ERR(E_DELETE) },
    { .name = "delete_hold_one_noreply", IN("delete k 1 noreply\r\n"), ERR(NULL) },
    { .name = "delete_noreply_noreply", IN("delete k noreply noreply\r\n"), ERR(NULL) },
    /* ours */
    { .name = "delete_control_char_key", IN("delete a\x01\r\n"), ERR(E_FORMAT) },
    { .name = "touch_basic", IN("touch k 10\r\n"),
      REQ(.cmd = PROTO_CMD_TOUCH, .key = "k", .exptime = 10) },
    { .name = "touch_noreply", IN("touch k 10 noreply\r\n"),
      REQ(.cmd = PROTO_CMD_TOUCH, .noreply = true, .key = "k", .exptime = 10) },
    { .name = "touch_junk_in_noreply_slot", IN("touch k 10 junk\r\n"),
      REQ(.cmd = PROTO_CMD_TOUCH, .key = "k", .exptime = 10) },
    { .name = "touch_negative", IN("touch k -1\r\n"),
      REQ(.cmd = PROTO_CMD_TOUCH, .key = "k", .exptime = -1) },
    { .name = "touch_exptime_2pow32_wraps_to_never", IN("touch k 4294967296\r\n"),
      REQ(.cmd = PROTO_CMD_TOUCH, .key = "k", .exp_abs = true, .abs = 0) },
    { .name = "touch_exptime_2pow31_wraps_to_expired", IN("touch k 2147483648\r\n"),
      REQ(.cmd = PROTO_CMD_TOUCH, .key = "k", .exp_abs = true, .abs = 1) },
    { .name = "touch_exptime_then_tab_junk", IN("touch k 10\tx\r\n"),
      REQ(.cmd = PROTO_CMD_TOUCH, .key = "k", .exptime = 10) },
    { .name = "touch_bad_exptime", IN("touch k abc\r\n"), ERR(E_EXPTIME) },
    { .name = "touch_bad_exptime_noreply", IN("touch k abc noreply\r\n"), ERR(NULL) },
    { .name = "touch_control_char_key", IN("touch a\x01 10\r\n"), ERR(E_FORMAT) },   /* ours */
};

static void test_delete_and_touch(void **state)
{
    struct tctx t = { 0 };
    struct pcase c;

    (void)state;
    RUN_TABLE(&t, delete_touch_cases);

    c = mk("delete_key_251_bytes", S("delete %s\r\n", k251));
    c.st = PROTO_ERROR;
    c.err = E_FORMAT;
    run_case(&t, &c);

    c = mk("delete_key_251_bytes_noreply", S("delete %s noreply\r\n", k251));
    c.st = PROTO_ERROR;
    run_case(&t, &c);

    c = mk("delete_key_251_bytes_usage_checked_first", S("delete %s 1\r\n", k251));
    c.st = PROTO_ERROR;
    c.err = E_DELETE;
    run_case(&t, &c);

    c = mk("touch_key_251_bytes", S("touch %s 10\r\n", k251));
    c.st = PROTO_ERROR;
    c.err = E_FORMAT;
    run_case(&t, &c);

    c = mk("touch_key_251_bytes_checked_before_exptime", S("touch %s abc\r\n", k251));
    c.st = PROTO_ERROR;
    c.err = E_FORMAT;
    run_case(&t, &c);

    finish(&t);
}

/* ------------------------------------------------------------------------------------------ */
/* flush_all, version, verbosity, quit, stats, rget.                                           */

static const struct pcase misc_cases[] = {
    { .name = "flush_all_now", IN("flush_all\r\n"), REQ(.cmd = PROTO_CMD_FLUSH_ALL) },
    { .name = "flush_all_zero", IN("flush_all 0\r\n"), REQ(.cmd = PROTO_CMD_FLUSH_ALL) },
    { .name = "flush_all_delay", IN("flush_all 10\r\n"),
      REQ(.cmd = PROTO_CMD_FLUSH_ALL, .delay = 10) },
    { .name = "flush_all_noreply", IN("flush_all noreply\r\n"),
      REQ(.cmd = PROTO_CMD_FLUSH_ALL, .noreply = true) },
    { .name = "flush_all_delay_noreply", IN("flush_all 10 noreply\r\n"),
      REQ(.cmd = PROTO_CMD_FLUSH_ALL, .noreply = true, .delay = 10) },
    { .name = "flush_all_delay_junk", IN("flush_all 10 junk\r\n"),
      REQ(.cmd = PROTO_CMD_FLUSH_ALL, .delay = 10) },
    { .name = "flush_all_zero_zero", IN("flush_all 0 0\r\n"), REQ(.cmd = PROTO_CMD_FLUSH_ALL) },
    { .name = "flush_all_2pow32_wraps_to_now", IN("flush_all 4294967296\r\n"),
      REQ(.cmd = PROTO_CMD_FLUSH_ALL, .delay = 0) },
    { .name = "flush_all_bad_delay", IN("flush_all abc\r\n"), ERR(E_EXPTIME) },
    { .name = "flush_all_bad_delay_noreply", IN("flush_all abc noreply\r\n"), ERR(NULL) },
    { .name = "flush_all_noreply_not_last", IN("flush_all noreply junk\r\n"), ERR(E_EXPTIME) },
    { .name = "version", IN("version\r\n"), REQ(.cmd = PROTO_CMD_VERSION) },
    { .name = "version_with_junk", IN("version junk\r\n"), REQ(.cmd = PROTO_CMD_VERSION) },
    { .name = "quit", IN("quit\r\n"), REQ(.cmd = PROTO_CMD_QUIT) },
    { .name = "quit_with_junk", IN("quit junk\r\n"), REQ(.cmd = PROTO_CMD_QUIT) },
    { .name = "verbosity_1", IN("verbosity 1\r\n"),
      REQ(.cmd = PROTO_CMD_VERBOSITY, .verbosity = 1) },
    { .name = "verbosity_noreply", IN("verbosity 1 noreply\r\n"),
      REQ(.cmd = PROTO_CMD_VERBOSITY, .noreply = true, .verbosity = 1) },
    { .name = "verbosity_extra_token", IN("verbosity 1 2\r\n"),
      REQ(.cmd = PROTO_CMD_VERBOSITY, .verbosity = 1) },
    { .name = "verbosity_2pow32_truncates_to_0", IN("verbosity 4294967296\r\n"),
      REQ(.cmd = PROTO_CMD_VERBOSITY, .verbosity = 0) },
    { .name = "verbosity_only_noreply", IN("verbosity noreply\r\n"), ERR(NULL) },
    { .name = "verbosity_not_a_number", IN("verbosity abc\r\n"), ERR(E_FORMAT) },
    { .name = "verbosity_negative", IN("verbosity -1\r\n"), ERR(E_FORMAT) },
    { .name = "verbosity_bad_noreply", IN("verbosity abc noreply\r\n"), ERR(NULL) },
    { .name = "stats_plain", IN("stats\r\n"), REQ(.cmd = PROTO_CMD_STATS) },
    { .name = "stats_settings", IN("stats settings\r\n"),
      REQ(.cmd = PROTO_CMD_STATS, .arg = "settings") },
    { .name = "stats_two_words", IN("stats detail dump\r\n"),
      REQ(.cmd = PROTO_CMD_STATS, .arg = "detail dump") },
    /* memcached without -A */
    { .name = "shutdown_not_enabled", IN("shutdown\r\n"), ERR(E_SHUTDOWN) },
    { .name = "shutdown_graceful_not_enabled", IN("shutdown graceful\r\n"), ERR(E_SHUTDOWN) },
    /* MemcacheDB extras (no memcached reference) */
    { .name = "db_checkpoint", IN("db_checkpoint\r\n"), REQ(.cmd = PROTO_CMD_DB_CHECKPOINT) },
    { .name = "db_archive", IN("db_archive\r\n"), REQ(.cmd = PROTO_CMD_DB_ARCHIVE) },
    { .name = "rep_ismaster", IN("rep_ismaster\r\n"), REQ(.cmd = PROTO_CMD_REP_ISMASTER) },
    { .name = "rep_whoismaster", IN("rep_whoismaster\r\n"),
      REQ(.cmd = PROTO_CMD_REP_WHOISMASTER) },
    { .name = "rep_set_priority", IN("rep_set_priority 42\r\n"),
      REQ(.cmd = PROTO_CMD_REP_SET_PRIORITY, .arg = "42") },
    /* MemcacheDB: rget <start> <end> <left open 0|1> <right open 0|1> <max items> */
    { .name = "rget_basic", IN("rget a z 0 1 10\r\n"),
      REQ(.cmd = PROTO_CMD_RGET, .key = "a", .key2 = "z", .right_open = true, .max = 10) },
};

/* Ours: iterate <cursor> <count> [v]; the cursor is "0" or canonical base64 of a key. */
static const struct pcase iterate_cases[] = {
    { .name = "iterate_start", IN("iterate 0 10\r\n"),
      REQ(.cmd = PROTO_CMD_ITERATE, .cursor = "", .max = 10) },
    { .name = "iterate_start_values", IN("iterate 0 1 v\r\n"),
      REQ(.cmd = PROTO_CMD_ITERATE, .cursor = "", .max = 1, .values = true) },
    { .name = "iterate_cursor_one_byte", IN("iterate YQ== 7\r\n"),
      REQ(.cmd = PROTO_CMD_ITERATE, .cursor = "a", .max = 7) },
    { .name = "iterate_cursor_two_bytes", IN("iterate YWI= 7 v\r\n"),
      REQ(.cmd = PROTO_CMD_ITERATE, .cursor = "ab", .max = 7, .values = true) },
    { .name = "iterate_cursor_three_bytes", IN("iterate a2V5 10000\r\n"),
      REQ(.cmd = PROTO_CMD_ITERATE, .cursor = "key", .max = 10000) },
    { .name = "iterate_cursor_binary_key", IN("iterate YQBiIGMJ 3\r\n"),
      REQ(.cmd = PROTO_CMD_ITERATE, .cursor = "a\0b c\t", .ncursor = 6, .max = 3) },
    { .name = "iterate_count_capped", IN("iterate 0 10001\r\n"),
      REQ(.cmd = PROTO_CMD_ITERATE, .cursor = "", .max = 10000) },
    { .name = "iterate_count_huge_capped", IN("iterate 0 18446744073709551615\r\n"),
      REQ(.cmd = PROTO_CMD_ITERATE, .cursor = "", .max = 10000) },
    { .name = "iterate_lf_only_and_spaces", IN("iterate  0   5 \n"),
      REQ(.cmd = PROTO_CMD_ITERATE, .cursor = "", .max = 5) },
    { .name = "iterate_no_args", IN("iterate\r\n"), ERR(E_ERROR) },
    { .name = "iterate_no_count", IN("iterate 0\r\n"), ERR(E_ERROR) },
    { .name = "iterate_too_many", IN("iterate 0 1 v v\r\n"), ERR(E_ERROR) },
    { .name = "iterate_not_v", IN("iterate 0 1 x\r\n"), ERR(E_FORMAT) },
    { .name = "iterate_noreply_is_not_v", IN("iterate 0 1 noreply\r\n"), ERR(E_FORMAT) },
    { .name = "iterate_count_zero", IN("iterate 0 0\r\n"), ERR(E_COUNT) },
    { .name = "iterate_count_negative", IN("iterate 0 -5\r\n"), ERR(E_COUNT) },
    { .name = "iterate_count_junk", IN("iterate 0 5x\r\n"), ERR(E_COUNT) },
    { .name = "iterate_count_overflow", IN("iterate 0 18446744073709551616\r\n"),
      ERR(E_COUNT) },
    { .name = "iterate_cursor_before_count", IN("iterate x 0\r\n"), ERR(E_CURSOR) },
    { .name = "iterate_cursor_short", IN("iterate YQ 1\r\n"), ERR(E_CURSOR) },
    { .name = "iterate_cursor_double_zero", IN("iterate 00 1\r\n"), ERR(E_CURSOR) },
    { .name = "iterate_cursor_bad_char", IN("iterate YW*= 1\r\n"), ERR(E_CURSOR) },
    { .name = "iterate_cursor_inner_pad", IN("iterate Y=Q= 1\r\n"), ERR(E_CURSOR) },
    { .name = "iterate_cursor_all_pad", IN("iterate ==== 1\r\n"), ERR(E_CURSOR) },
    { .name = "iterate_cursor_pad_then_digit", IN("iterate YQ=a 1\r\n"), ERR(E_CURSOR) },
    { .name = "iterate_cursor_unused_bits", IN("iterate YR== 1\r\n"), ERR(E_CURSOR) },
    { .name = "iterate_cursor_unused_bits_2", IN("iterate YWJ= 1\r\n"), ERR(E_CURSOR) },
    { .name = "iterate_cursor_two_groups_padded_early", IN("iterate YQ==YQ== 1\r\n"),
      ERR(E_CURSOR) },
};

static void test_iterate(void **state)
{
    struct tctx t = { 0 };
    char b64[PROTO_ITERATE_B64_MAX + 1];
    char in[PROTO_ITERATE_B64_MAX + 64];
    struct pcase c;

    (void)state;
    RUN_TABLE(&t, iterate_cases);

    /* a 250-byte key is the longest cursor; 251 bytes is refused */
    size_t n = proto_text_iterate_cursor(b64, k250, PROTO_KEY_MAX);
    b64[n] = '\0';
    snprintf(in, sizeof in, "iterate %s 3 v\r\n", b64);
    c = mk("iterate_cursor_250_bytes", in);
    c.st = PROTO_REQUEST;
    c.rq.cmd = PROTO_CMD_ITERATE;
    c.rq.cursor = k250;
    c.rq.max = 3;
    c.rq.values = true;
    run_case(&t, &c);

    n = proto_text_iterate_cursor(b64, k251, PROTO_KEY_MAX + 1);
    b64[n] = '\0';
    snprintf(in, sizeof in, "iterate %s 3\r\n", b64);
    c = mk("iterate_cursor_251_bytes", in);
    c.st = PROTO_ERROR;
    c.err = E_CURSOR;
    run_case(&t, &c);
    finish(&t);
}

/* out[0..n) holds exactly the literal s */
#define OUT_IS(s) bytes_eq(out, n, (s), sizeof(s) - 1)

static void test_item_line_and_cursor(void **state)
{
    char out[PROTO_ITERATE_B64_MAX + 80];
    char key[PROTO_KEY_MAX];
    size_t n;

    (void)state;
    n = proto_text_item_line(out, "key", 3, 5, 1700000000, 10, 42);
    assert_true(OUT_IS("ITEM key 5 1700000000 10 42\r\n"));
    n = proto_text_item_line(out, "a b", 3, 0, 0, 0, 1);
    assert_true(OUT_IS("ITEM YSBi 0 0 0 1 b\r\n"));
    n = proto_text_item_line(out, "\x7f", 1, 4294967295u, 4294967295u, 1048576, UINT64_MAX);
    assert_true(OUT_IS("ITEM fw== 4294967295 4294967295 1048576 18446744073709551615 b\r\n"));
    /* high bytes are text-safe: the key goes out as it is */
    n = proto_text_item_line(out, "\xc3\xa9", 2, 0, 0, 0, 1);
    assert_true(OUT_IS("ITEM \xc3\xa9 0 0 0 1\r\n"));
    assert_true(proto_text_key_needs_b64("\x20", 1));
    assert_true(proto_text_key_needs_b64("ok\x01", 3));
    assert_true(proto_text_key_needs_b64("a\0", 2));
    assert_false(proto_text_key_needs_b64("\x21~\x80\xff", 4));
    /* the longest lines fit the documented buffer */
    n = proto_text_item_line(out, k250, PROTO_KEY_MAX, 0, 0, 0, 0);
    assert_int_equal(n, 5 + PROTO_KEY_MAX + 10);
    memcpy(key, k250, PROTO_KEY_MAX - 1);
    key[PROTO_KEY_MAX - 1] = ' ';
    n = proto_text_item_line(out, key, PROTO_KEY_MAX, 0, 0, 0, 0);
    assert_int_equal(n, 5 + PROTO_ITERATE_B64_MAX + 10 + 2);
    n = proto_text_iterate_cursor(out, "key", 3);
    assert_true(OUT_IS("a2V5"));
    n = proto_text_iterate_cursor(out, "0", 1);     /* never the "0" that starts a walk */
    assert_true(OUT_IS("MA=="));
}

static void test_flush_version_verbosity_stats(void **state)
{
    struct tctx t = { 0 };

    (void)state;
    RUN_TABLE(&t, misc_cases);
    finish(&t);
}

/* ------------------------------------------------------------------------------------------ */
/* HTTP requests: memcached closes when the last token starts with "HTTP/", but only for      */
/* commands whose first letter is not one of g s a c i d t (nor a 2-letter m command).        */

static const struct pcase http_cases[] = {
    { .name = "http_get_closes", IN("GET / HTTP/1.1\r\n"), .st = PROTO_CLOSE },
    { .name = "http_post_closes", IN("POST /x HTTP/1.1\r\n"), .st = PROTO_CLOSE },
    { .name = "http_version_alone_closes", IN("HTTP/1.1\r\n"), .st = PROTO_CLOSE },
    { .name = "http_slash_only_closes", IN("foo HTTP/\r\n"), .st = PROTO_CLOSE },
    { .name = "http_mxx_closes", IN("mxx HTTP/1.1\r\n"), .st = PROTO_CLOSE },
    { .name = "http_rx_closes", IN("rx HTTP/1.1\r\n"), .st = PROTO_CLOSE },
    { .name = "http_bx_closes", IN("bx HTTP/1.1\r\n"), .st = PROTO_CLOSE },
    { .name = "http_zz_closes", IN("zz HTTP/1.1\r\n"), .st = PROTO_CLOSE },
    { .name = "http_nul_after_version_closes", IN("GET / HTTP/1.1\0\r\n"), .st = PROTO_CLOSE },
    { .name = "http_without_slash_is_error", IN("foo HTTP\r\n"), ERR(E_ERROR) },
    { .name = "http_not_last_token_is_error", IN("xx HTTP/1.1 a\r\n"), ERR(E_ERROR) },
    { .name = "http_after_a_is_error", IN("ab HTTP/1.1\r\n"), ERR(E_ERROR) },
    { .name = "http_after_s_is_error", IN("sx HTTP/1.1\r\n"), ERR(E_ERROR) },
    { .name = "http_after_c_is_error", IN("cx HTTP/1.1\r\n"), ERR(E_ERROR) },
    { .name = "http_after_i_is_error", IN("ix HTTP/1.1\r\n"), ERR(E_ERROR) },
    { .name = "http_after_d_is_error", IN("dx HTTP/1.1\r\n"), ERR(E_ERROR) },
    { .name = "http_after_t_is_error", IN("tx HTTP/1.1\r\n"), ERR(E_ERROR) },
    { .name = "http_after_g_is_error", IN("gx HTTP/1.1\r\n"), ERR(E_ERROR) },
    { .name = "http_after_deletes_is_error", IN("deletes 1 HTTP/1.1\r\n"), ERR(E_ERROR) },
    { .name = "http_after_2_letter_m_is_error", IN("mx HTTP/1.1\r\n"), ERR(E_ERROR) },
    { .name = "http_after_set_is_error", IN("set HTTP/1.1\r\n"), ERR(E_ERROR) },
    { .name = "http_after_1_char_command_is_error", IN("x HTTP/1.1\r\n"), ERR(E_ERROR) },
    { .name = "http_get_is_a_get", IN("get / HTTP/1.1\r\n"),
      REQ(.cmd = PROTO_CMD_GET, .keys = "/|HTTP/1.1") },
    { .name = "http_in_set_noreply_slot", IN("set k 0 0 1 HTTP/1.1\r\nx\r\n"),
      REQ(.cmd = PROTO_CMD_SET, .key = "k", DATA("x")) },
    { .name = "http_as_delete_key", IN("delete HTTP/1.1\r\n"),
      REQ(.cmd = PROTO_CMD_DELETE, .key = "HTTP/1.1") },
    { .name = "http_as_flush_all_delay", IN("flush_all HTTP/1.1\r\n"), ERR(E_EXPTIME) },
};

static void test_http_requests(void **state)
{
    struct tctx t = { 0 };
    struct pcase c;

    (void)state;
    RUN_TABLE(&t, http_cases);

    /* beyond 24 tokens memcached looks at the 23rd token, not the last one */
    c = mk("http_after_30_tokens_is_error", S("foo %s HTTP/1.1\r\n", rep("t", " ", 30)));
    c.st = PROTO_ERROR;
    c.err = E_ERROR;
    run_case(&t, &c);
    c = mk("http_as_23rd_token_closes", S("foo %s HTTP/1.1\r\n", rep("t", " ", 21)));
    c.st = PROTO_CLOSE;
    run_case(&t, &c);
    c = mk("http_after_a_and_20_tokens_is_error", S("ab %s HTTP/1.1\r\n", rep("t", " ", 20)));
    c.st = PROTO_ERROR;
    c.err = E_ERROR;
    run_case(&t, &c);
    finish(&t);
}

/* ------------------------------------------------------------------------------------------ */
/* Hostile: many tokens.                                                                       */

static void test_hostile_many_tokens(void **state)
{
    struct tctx t = { 0 };
    struct pcase c;
    const char *many = rep("t", " ", 30);

    (void)state;
#define MANY_ERROR(nm, fmt) \
    do { \
        c = mk(nm, S(fmt, many)); \
        c.st = PROTO_ERROR; \
        c.err = E_ERROR; \
        c.upto_nl = true; \
        run_case(&t, &c); \
    } while (0)
    MANY_ERROR("set_30_extra_tokens", "set k 0 0 1 %s\r\nx\r\n");
    MANY_ERROR("cas_30_extra_tokens", "cas k 0 0 1 1 %s\r\nx\r\n");
    MANY_ERROR("incr_30_extra_tokens", "incr k 1 %s\r\n");
    MANY_ERROR("delete_30_extra_tokens", "delete k %s\r\n");
    MANY_ERROR("touch_30_extra_tokens", "touch k 1 %s\r\n");
    MANY_ERROR("flush_all_30_extra_tokens", "flush_all %s\r\n");
    MANY_ERROR("verbosity_30_extra_tokens", "verbosity 1 %s\r\n");
    MANY_ERROR("one_char_command_then_1000_tokens", "a %s\r\n");
#undef MANY_ERROR

    c = mk("set_exactly_23_tokens", S("set k 0 0 1 %s\r\nx\r\n", rep("t", " ", 18)));
    c.st = PROTO_ERROR;
    c.err = E_ERROR;
    c.upto_nl = true;
    run_case(&t, &c);

    c = mk("version_30_extra_tokens", S("version %s\r\n", many));
    c.st = PROTO_REQUEST;
    c.rq.cmd = PROTO_CMD_VERSION;
    run_case(&t, &c);

    c = mk("quit_30_extra_tokens", S("quit %s\r\n", many));
    c.st = PROTO_REQUEST;
    c.rq.cmd = PROTO_CMD_QUIT;
    run_case(&t, &c);

    c = mk("1000_single_spaces", S("%s\r\n", rep(" ", "", 1000)));
    c.st = PROTO_ERROR;
    c.err = E_ERROR;
    run_case(&t, &c);

    finish(&t);
}

/* ------------------------------------------------------------------------------------------ */
/* Hostile: long lines without '\n'.                                                           */

static const char *filled(char ch, size_t n, const char *prefix)
{
    size_t lp = strlen(prefix);
    char *s = malloc(lp + n + 1);

    assert_true(s != NULL && npool < sizeof pool / sizeof pool[0]);
    memcpy(s, prefix, lp);
    memset(s + lp, ch, n);
    s[lp + n] = '\0';
    pool[npool++] = s;
    return s;
}

static void run_line_limit(struct tctx *t, const char *name, const char *in, size_t len,
                           enum proto_status st)
{
    struct pcase c;

    memset(&c, 0, sizeof c);
    c.name = name;
    c.in = in;
    c.len = len;
    c.st = st;
    run_case(t, &c);
}

static void test_hostile_long_lines(void **state)
{
    struct tctx t = { 0 };
    struct pcase c;
    struct outcome o;
    struct proto_limits lim = {.item_max = ITEM_MAX_DEFAULT};
    char nuls[3000];
    const char *s;

    (void)state;
    /* memcached closes once more than 2048 bytes hold no '\n' */
    s = filled('x', 2044, "set ");
    run_line_limit(&t, "no_newline_2048_bytes_needs_more", s, 2048, PROTO_NEED_MORE);
    s = filled('x', 2045, "set ");
    run_line_limit(&t, "no_newline_2049_bytes_closes", s, 2049, PROTO_CLOSE);
    s = filled('x', 5000, "");
    run_line_limit(&t, "garbage_5000_bytes_closes", s, 5000, PROTO_CLOSE);
    s = filled('\x80', 3000, "");
    run_line_limit(&t, "binary_3000_bytes_closes", s, 3000, PROTO_CLOSE);
    memset(nuls, 0, sizeof nuls);
    run_line_limit(&t, "nul_3000_bytes_closes", nuls, sizeof nuls, PROTO_CLOSE);
    s = filled(' ', 3000, "");
    run_line_limit(&t, "spaces_3000_bytes_closes", s, 3000, PROTO_CLOSE);
    /* ...unless it is a get/gets, after at most 100 leading spaces */
    s = filled('x', 3000, "get ");
    run_line_limit(&t, "long_get_needs_more", s, strlen(s), PROTO_NEED_MORE);
    s = filled('x', 3000, "gets ");
    run_line_limit(&t, "long_gets_needs_more", s, strlen(s), PROTO_NEED_MORE);
    s = filled('x', 3000, "   get ");
    run_line_limit(&t, "long_get_3_leading_spaces_needs_more", s, strlen(s), PROTO_NEED_MORE);
    s = filled('x', 3000, S("%sget ", rep(" ", "", 100)));
    run_line_limit(&t, "long_get_100_leading_spaces_needs_more", s, strlen(s),
                   PROTO_NEED_MORE);
    s = filled('x', 3000, S("%sget ", rep(" ", "", 101)));
    run_line_limit(&t, "long_get_101_leading_spaces_closes", s, strlen(s), PROTO_CLOSE);
    s = filled('x', 3000, "gat 1 ");
    run_line_limit(&t, "long_gat_closes", s, strlen(s), PROTO_CLOSE);
    s = filled('x', 3000, "get");
    run_line_limit(&t, "long_getxxx_closes", s, strlen(s), PROTO_CLOSE);
    s = filled('x', 3000, "GET ");
    run_line_limit(&t, "long_uppercase_get_closes", s, strlen(s), PROTO_CLOSE);
    s = filled('x', 3000, "get\tx");
    run_line_limit(&t, "long_get_tab_closes", s, strlen(s), PROTO_CLOSE);

    /* A line of exactly 2048 bytes before its '\n' is still read (memcached: ERROR). */
    c = mk("line_2048_bytes_then_lf", S("%s\n", filled('x', 2044, "set ")));
    c.st = PROTO_ERROR;
    c.err = E_ERROR;
    run_case(&t, &c);
    c = mk("line_2047_bytes_then_crlf", S("%s\r\n", filled('x', 2043, "set ")));
    c.st = PROTO_ERROR;
    c.err = E_ERROR;
    run_case(&t, &c);
    c = mk("set_padded_with_2000_spaces", S("set k 0 0 1%s\r\nx\r\n", rep(" ", "", 2000)));
    c.st = PROTO_REQUEST;
    c.rq.cmd = PROTO_CMD_SET;
    c.rq.key = "k";
    c.rq.data = "x";
    c.rq.ndata = 1;
    run_case(&t, &c);

    /* A 3000-byte non-get line whose '\n' is already there: memcached answers ERROR when it
       arrives in one read and closes when it arrives in pieces; both are memcached. */
    s = S("%s\r\n", filled('x', 3000, "set "));
    begin_case(&t, "long_line_with_newline_error_or_close", s, strlen(s));
    parse_raw(&o, s, strlen(s), &lim, t.cname, strlen(s));
    check_invariants(&t, &o, "whole input");
    CHECK(&t, o.res.status == PROTO_CLOSE ||
              (o.res.status == PROTO_ERROR && o.res.error && strcmp(o.res.error, E_ERROR) == 0 &&
               o.res.consumed == strlen(s)),
          "status %s, want CLOSE or ERROR \"ERROR\"", status_name(o.res.status));

    finish(&t);
}

/* The get line limit is ours (memcached grows its buffer without bound). */
static void test_hostile_get_line_limit(void **state)
{
    struct tctx t = { 0 };
    struct proto_limits lim = {.item_max = ITEM_MAX_DEFAULT};
    struct outcome o;
    char *in;
    size_t n = PROTO_TEXT_GET_LINE_MAX + 1;

    (void)state;
    in = malloc(n);
    assert_non_null(in);
    memcpy(in, "get ", 4);
    memset(in + 4, 'x', n - 4);

    begin_case(&t, "get_line_max_minus_1_needs_more", in, n - 2);
    parse_raw(&o, in, n - 2, &lim, t.cname, n - 2);
    CHECK(&t, o.res.status == PROTO_NEED_MORE, "status %s, want NEED_MORE",
          status_name(o.res.status));

    begin_case(&t, "get_line_max_plus_1_closes", in, n);
    parse_raw(&o, in, n, &lim, t.cname, n);
    CHECK(&t, o.res.status == PROTO_CLOSE, "status %s, want CLOSE", status_name(o.res.status));

    free(in);
    finish(&t);
}

/* ------------------------------------------------------------------------------------------ */
/* Big inputs (sampled split points).                                                          */

static void test_big_inputs(void **state)
{
    struct tctx t = { 0 };
    struct pcase c;
    struct proto_limits lim = {.item_max = ITEM_MAX_DEFAULT};
    struct outcome o;
    char *in, *p, walked[64];
    size_t v = 1048516, i, nkeys = 150000, count;

    (void)state;
    /* the largest value that fits -I 1m with a 1-byte key and flags 0 */
    in = malloc(64 + v);
    assert_non_null(in);
    p = in + sprintf(in, "set k 0 0 %zu\r\n", v);
    for (i = 0; i < v; i++) {
        p[i] = (char)('a' + i % 26);
    }
    memcpy(p + v, "\r\n", 2);
    memset(&c, 0, sizeof c);
    c.name = "set_largest_value_that_fits";
    c.in = in;
    c.len = (size_t)(p - in) + v + 2;
    c.st = PROTO_REQUEST;
    c.rq.cmd = PROTO_CMD_SET;
    c.rq.key = "k";
    c.rq.data = p;
    c.rq.ndata = v;
    run_case(&t, &c);
    free(in);

    /* a ~1 MiB get line with 150000 keys */
    in = malloc(8 * nkeys + 16);
    assert_non_null(in);
    p = in + sprintf(in, "get");
    for (i = 0; i < nkeys; i++) {
        p += sprintf(p, " k%zu", i);
    }
    p += sprintf(p, "\r\n");
    begin_case(&t, "get_150000_keys", in, (size_t)(p - in));
    parse_raw(&o, in, (size_t)(p - in), &lim, t.cname, (size_t)(p - in));
    check_invariants(&t, &o, "whole input");
    CHECK(&t, o.res.status == PROTO_REQUEST && o.req.cmd == PROTO_CMD_GET,
          "status %s cmd %s, want REQUEST GET", status_name(o.res.status),
          cmd_name(o.req.cmd));
    if (o.res.status == PROTO_REQUEST) {
        walk_keys(&t, &o, walked, sizeof walked, &count);
        CHECK(&t, count == nkeys && strchr(walked, '!') == NULL, "walked %zu keys, want %zu",
              count, nkeys);
        check_splits(&t, in, (size_t)(p - in), &lim, &o, 0, 0);
    }
    free(in);
    finish(&t);
}

/* ------------------------------------------------------------------------------------------ */
/* Pipelining: one buffer, many requests, one reused request struct.                           */

struct step {
    enum proto_status st;
    enum proto_cmd cmd;         /* REQUEST */
    bool noreply;
    const char *err;            /* ERROR */
    const char *key;
};

static void test_pipelined_requests(void **state)
{
    static const char in[] =
        "get a b\r\n"
        "set k 1 0 3\r\nabc\r\n"
        "delete k noreply\r\n"
        "incr n 1\r\n"
        "set k 0 0 -1\r\n"
        "x\r\n"
        "cas k 0 0 1 99 noreply\r\nz\r\n"
        "append k 0 0 1\r\ny\r\n"
        "set big 0 0 2000000 noreply\r\n"
        "touch k 1\r\n"
        "version\r\n";
    static const struct step steps[] = {
        { PROTO_REQUEST, PROTO_CMD_GET, false, NULL, NULL },
        { PROTO_REQUEST, PROTO_CMD_SET, false, NULL, "k" },
        { PROTO_REQUEST, PROTO_CMD_DELETE, true, NULL, "k" },
        { PROTO_REQUEST, PROTO_CMD_INCR, false, NULL, "n" },
        { PROTO_ERROR, PROTO_CMD_NONE, false, E_FORMAT, NULL },
        { PROTO_ERROR, PROTO_CMD_NONE, false, E_ERROR, NULL },
        { PROTO_REQUEST, PROTO_CMD_CAS, true, NULL, "k" },
        { PROTO_REQUEST, PROTO_CMD_APPEND, false, NULL, "k" },
        { PROTO_ERROR, PROTO_CMD_NONE, false, NULL, "big" },
        { PROTO_REQUEST, PROTO_CMD_TOUCH, false, NULL, "k" },
        { PROTO_REQUEST, PROTO_CMD_VERSION, false, NULL, NULL },
    };
    struct tctx t = { 0 };
    struct proto_limits lim = {.item_max = ITEM_MAX_DEFAULT};
    struct proto_request req;
    struct proto_result res;
    const char *buf;
    size_t off = 0, len = sizeof in - 1, i;

    (void)state;
    begin_case(&t, "pipelined_requests", in, len);
    buf = place(in, len);
    poison(&req, &res);
    for (i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        snprintf(crash_where, sizeof crash_where, "pipelined step %zu", i);
        arm_crash_handler();
        proto_text_parse(buf + off, len - off, &lim, &req, &res);
        CHECK(&t, res.status == steps[i].st, "step %zu at offset %zu: status %s, want %s", i,
              off, status_name(res.status), status_name(steps[i].st));
        if (res.status != steps[i].st) {
            break;
        }
        if (res.status == PROTO_REQUEST) {
            CHECK(&t, req.cmd == steps[i].cmd && req.noreply == steps[i].noreply,
                  "step %zu: cmd %s noreply %d, want %s noreply %d (request struct reused)", i,
                  cmd_name(req.cmd), (int)req.noreply, cmd_name(steps[i].cmd),
                  (int)steps[i].noreply);
            if (steps[i].key) {
                check_key(&t, "key", req.key, req.nkey, steps[i].key);
            }
        } else {
            CHECK(&t, (res.error == NULL && steps[i].err == NULL) ||
                      (res.error && steps[i].err && strcmp(res.error, steps[i].err) == 0),
                  "step %zu: error %s, want %s", i, res.error ? res.error : "NULL",
                  steps[i].err ? steps[i].err : "NULL");
            if (steps[i].err == NULL) {
                CHECK(&t, res.swallow == 2000002 && res.unlink_key,
                      "step %zu: swallow %zu unlink %d, want 2000002 1", i, res.swallow,
                      (int)res.unlink_key);
            } else {
                CHECK(&t, res.swallow == 0 && !res.unlink_key,
                      "step %zu: swallow %zu unlink %d, want 0 0", i, res.swallow,
                      (int)res.unlink_key);
            }
        }
        CHECK(&t, res.consumed > 0 && res.consumed <= len - off, "step %zu: consumed %zu", i,
              res.consumed);
        if (res.consumed == 0 || res.consumed > len - off) {
            break;
        }
        off += res.consumed;
    }
    CHECK(&t, off == len, "stopped at offset %zu of %zu", off, len);
    finish(&t);
}

/* ------------------------------------------------------------------------------------------ */
/* proto_text_next_key on hand-made requests.                                                  */

static void walk_manual(struct tctx *t, const char *name, const char *keys, size_t nkeys,
                        const char *want)
{
    struct outcome o;
    char walked[4096];
    size_t count;

    begin_case(t, name, keys, nkeys);
    snprintf(crash_where, sizeof crash_where, "proto_text_next_key %s", name);
    arm_crash_handler();
    o.buf = place(keys, nkeys);
    o.len = nkeys;
    memset(&o.req, 0, sizeof o.req);
    o.req.cmd = PROTO_CMD_GET;
    o.req.keys = o.buf;
    o.req.nkeys = nkeys;
    walk_keys(t, &o, walked, sizeof walked, &count);
    CHECK(t, strcmp(walked, want) == 0, "walked %s, want %s", esc(walked, strlen(walked)),
          esc(want, strlen(want)));
}

static void test_next_key(void **state)
{
    struct tctx t = { 0 };
    const char *s;

    (void)state;
    walk_manual(&t, "three_keys", "a b c", 5, "a|b|c");
    walk_manual(&t, "spaces_around", "  a  b  ", 8, "a|b");
    walk_manual(&t, "empty", "", 0, "");
    walk_manual(&t, "spaces_only", "   ", 3, "");
    walk_manual(&t, "one_key_exact_buffer", "k", 1, "k");
    walk_manual(&t, "stops_at_nkeys", "a b", 1, "a");
    walk_manual(&t, "stops_inside_a_key", "abc def", 5, "abc|d");
    walk_manual(&t, "utf8_key", "k\xc3\xa9", 3, "k\xc3\xa9");
    walk_manual(&t, "tab_inside_key_is_bad", "a\tb", 3, "!");
    walk_manual(&t, "cr_inside_key_is_bad", "a\rb", 3, "!");
    walk_manual(&t, "control_char_second_key", "a b\x01", 4, "a|!");
    walk_manual(&t, "del_char_key", "\x7f", 1, "!");
    walk_manual(&t, "nul_inside_key_is_bad", "a\0b", 3, "!");
    walk_manual(&t, "key_250_bytes", k250, 250, k250);
    walk_manual(&t, "key_251_bytes_is_bad", k251, 251, "!");
    s = S("a %s b", k251);
    walk_manual(&t, "key_251_between_good_keys", s, strlen(s), "a|!");
    s = rep("k", " ", 1000);
    walk_manual(&t, "1000_keys", s, strlen(s), rep("k", "|", 1000));
    finish(&t);
}

/* ------------------------------------------------------------------------------------------ */
/* Encoders.                                                                                   */

static void test_value_line(void **state)
{
    struct {
        const char *name;
        const char *key;
        uint32_t flags;
        size_t nbytes;
        bool with_cas;
        uint64_t cas;
        const char *want;
    } cases[] = {
        { "plain", "foo", 5, 10, false, 0, "VALUE foo 5 10\r\n" },
        { "zeros", "foo", 0, 0, false, 0, "VALUE foo 0 0\r\n" },
        { "with_cas", "foo", 5, 10, true, 123, "VALUE foo 5 10 123\r\n" },
        { "cas_zero", "k", 0, 1, true, 0, "VALUE k 0 1 0\r\n" },
        { "all_max", "k", 4294967295u, 2147483647, true, UINT64_MAX,
          "VALUE k 4294967295 2147483647 18446744073709551615\r\n" },
    };
    struct tctx t = { 0 };
    char out[PROTO_KEY_MAX + 64 + 64];
    const char *want;
    size_t i, n, lim = PROTO_KEY_MAX + 64, j;

    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0] + 1; i++) {
        const char *key = i < sizeof cases / sizeof cases[0] ? cases[i].key : k250;
        memset(out, 0x5a, sizeof out);
        if (i < sizeof cases / sizeof cases[0]) {
            want = cases[i].want;
            begin_case(&t, cases[i].name, key, strlen(key));
            n = proto_text_value_line(out, key, strlen(key), cases[i].flags, cases[i].nbytes,
                                      cases[i].with_cas, cases[i].cas);
        } else {
            want = S("VALUE %s 4294967295 2147483647 18446744073709551615\r\n", k250);
            begin_case(&t, "key_250_all_max", key, strlen(key));
            n = proto_text_value_line(out, k250, 250, 4294967295u, 2147483647, true,
                                      UINT64_MAX);
        }
        CHECK(&t, bytes_eq(out, n, want, strlen(want)), "wrote %s, want %s", esc(out, n),
              esc(want, strlen(want)));
        for (j = lim; j < sizeof out; j++) {
            if (out[j] != 0x5a) {
                CHECK(&t, false, "wrote past the %zu-byte buffer (byte %zu)", lim, j);
                break;
            }
        }
    }
    finish(&t);
}

static void test_u64_to_dec(void **state)
{
    struct {
        uint64_t v;
        const char *want;
    } cases[] = {
        { 0, "0" },
        { 1, "1" },
        { 9, "9" },
        { 10, "10" },
        { 99, "99" },
        { 100, "100" },
        { 12345, "12345" },
        { 4294967295u, "4294967295" },
        { 4294967296u, "4294967296" },
        { UINT64_C(10000000000000000000), "10000000000000000000" },
        { UINT64_MAX, "18446744073709551615" },
    };
    struct tctx t = { 0 };
    char out[64];
    size_t i, n, j;

    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        begin_case(&t, cases[i].want, NULL, 0);
        memset(out, 0x5a, sizeof out);
        n = proto_u64_to_dec(out, cases[i].v);
        CHECK(&t, bytes_eq(out, n, cases[i].want, strlen(cases[i].want)), "wrote %s, want %s",
              esc(out, n), cases[i].want);
        for (j = 21; j < sizeof out; j++) {
            if (out[j] != 0x5a) {
                CHECK(&t, false, "wrote past 21 bytes (byte %zu)", j);
                break;
            }
        }
    }
    finish(&t);
}

/* ------------------------------------------------------------------------------------------ */
/* proto_text_apply_delta: every expected value is what memcached 1.6.18 answered and stored.  */

struct delta_case {
    const char *name;
    const char *value;
    size_t n;
    bool incr;
    uint64_t delta;
    bool ok;
    const char *digits;         /* the reply */
    size_t padded;              /* length of the value memcached stores */
    uint64_t result;
};

#define V(s) (s), sizeof(s) - 1

static const struct delta_case delta_cases[] = {
    { "decr_10_by_5_pads", V("10"), false, 5, true, "5", 2, 5 },
    { "incr_99_by_1_grows", V("99"), true, 1, true, "100", 3, 100 },
    { "incr_9_by_1_grows", V("9"), true, 1, true, "10", 2, 10 },
    { "decr_100_by_1_pads", V("100"), false, 1, true, "99", 3, 99 },
    { "incr_max_wraps_to_0", V("18446744073709551615"), true, 1, true, "0", 20, 0 },
    { "incr_max_by_max", V("18446744073709551615"), true, UINT64_MAX, true,
      "18446744073709551614", 20, UINT64_C(18446744073709551614) },
    { "decr_below_zero_stops_at_0", V("5"), false, 10, true, "0", 1, 0 },
    { "decr_0_by_1", V("0"), false, 1, true, "0", 1, 0 },
    { "decr_by_0", V("1"), false, 0, true, "1", 1, 1 },
    { "decr_2pow32_by_1", V("4294967296"), false, 1, true, "4294967295", 10, 4294967295u },
    { "leading_space", V(" 7"), true, 1, true, "8", 2, 8 },
    { "leading_tab", V("\t7"), true, 1, true, "8", 2, 8 },
    { "trailing_space", V("5 "), true, 1, true, "6", 2, 6 },
    { "trailing_lf", V("5\n"), true, 1, true, "6", 2, 6 },
    { "trailing_cr", V("1\r"), true, 1, true, "2", 2, 2 },
    { "space_then_more_digits", V("1 2"), true, 1, true, "2", 3, 2 },
    { "plus_sign", V("+5"), true, 1, true, "6", 2, 6 },
    { "minus_zero", V("-0"), true, 1, true, "1", 2, 1 },
    { "leading_zeros", V("007"), true, 1, true, "8", 3, 8 },
    { "30_chars_with_leading_zeros", V("000000000000000000000000000005"), true, 1, true, "6",
      30, 6 },
    { "nul_after_number", V("5\0abc"), true, 1, true, "6", 5, 6 },
    { "minus_2pow64_plus_1_is_1", V("-18446744073709551615"), true, 1, true, "2", 21, 2 },
    { "small_number_then_minus", V("5 - 1"), true, 1, true, "6", 5, 6 },
    { "not_a_number", V("abc"), true, 1, false, NULL, 0, 0 },
    { "max_then_minus", V("18446744073709551615 -"), true, 1, false, NULL, 0, 0 },
    { "empty", V(""), true, 1, false, NULL, 0, 0 },
    { "negative", V("-1"), true, 1, false, NULL, 0, 0 },
    { "trailing_letter", V("12a"), true, 1, false, NULL, 0, 0 },
    { "hex", V("0x10"), true, 1, false, NULL, 0, 0 },
    { "2pow64", V("18446744073709551616"), true, 1, false, NULL, 0, 0 },
    { "30_ones_out_of_range", V("111111111111111111111111111111"), true, 1, false, NULL, 0, 0 },
    { "trailing_control_char", V("5\x01"), true, 1, false, NULL, 0, 0 },
    /* memcached's strtoull runs past the item here (reads whatever follows); bounded, it is
       not a number */
    { "spaces_only", V("   "), true, 1, false, NULL, 0, 0 },
};

static void test_apply_delta(void **state)
{
    struct tctx t = { 0 };
    char out[64], *spaces;
    const char *value;
    size_t i, nd, padded, j;
    uint64_t result;
    bool ok;

    (void)state;
    for (i = 0; i < sizeof delta_cases / sizeof delta_cases[0]; i++) {
        const struct delta_case *d = &delta_cases[i];
        begin_case(&t, d->name, d->value, d->n);
        snprintf(crash_where, sizeof crash_where, "proto_text_apply_delta %s", d->name);
        arm_crash_handler();
        value = place(d->value, d->n);          /* ends right before the guard page */
        memset(out, 0x5a, sizeof out);
        nd = padded = 999;
        result = 4242;
        ok = proto_text_apply_delta(value, d->n, d->incr, d->delta, out, &nd, &padded, &result);
        CHECK(&t, ok == d->ok, "returned %d, want %d", (int)ok, (int)d->ok);
        if (ok && d->ok) {
            CHECK(&t, nd <= 20 && bytes_eq(out, nd, d->digits, strlen(d->digits)),
                  "digits %s, want %s", nd <= 21 ? esc(out, nd) : "(too long)", d->digits);
            CHECK(&t, padded == d->padded, "padded_len %zu, want %zu", padded, d->padded);
            CHECK(&t, result == d->result, "result %llu, want %llu",
                  (unsigned long long)result, (unsigned long long)d->result);
        }
        for (j = 21; j < sizeof out; j++) {
            if (out[j] != 0x5a) {
                CHECK(&t, false, "wrote past 21 bytes (byte %zu)", j);
                break;
            }
        }
    }

    /* 100 leading and 100 trailing spaces around a number: memcached accepts both */
    spaces = malloc(102);
    assert_non_null(spaces);
    memset(spaces, ' ', 101);
    spaces[100] = '5';
    for (j = 0; j < 2; j++) {
        const char *v = j == 0 ? spaces : S("5%s", rep(" ", "", 100));
        begin_case(&t, j == 0 ? "100_leading_spaces" : "100_trailing_spaces", v, 101);
        value = place(v, 101);
        ok = proto_text_apply_delta(value, 101, true, 1, out, &nd, &padded, &result);
        CHECK(&t, ok && nd == 1 && out[0] == '6' && padded == 101 && result == 6,
              "ok %d digits %s padded %zu result %llu, want 1 \"6\" 101 6", (int)ok,
              ok && nd <= 21 ? esc(out, nd) : "-", padded, (unsigned long long)result);
    }
    free(spaces);
    finish(&t);
}

/* ------------------------------------------------------------------------------------------ */
/* proto_exptime_to_abs.                                                                       */

static void test_exptime_to_abs(void **state)
{
    struct tctx t = { 0 };
    struct {
        const char *name;
        int64_t exptime;
        uint32_t want;
    } cases[] = {
        { "zero_never_expires", 0, 0 },
        { "minus_one_expired", -1, 1 },
        { "int32_min_expired", INT32_MIN, 1 },
        { "int64_min_expired", INT64_MIN, 1 },
        { "one_second", 1, (uint32_t)(NOW + 1) },
        { "thirty_days_is_relative", PROTO_REALTIME_MAXDELTA,
          (uint32_t)(NOW + PROTO_REALTIME_MAXDELTA) },
        { "future_unix_time", NOW + 100000, (uint32_t)(NOW + 100000) },
        { "int32_max_unix_time", INT32_MAX, (uint32_t)INT32_MAX },
    };
    uint32_t got;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        begin_case(&t, cases[i].name, NULL, 0);
        got = proto_exptime_to_abs(cases[i].exptime, NOW);
        CHECK(&t, got == cases[i].want, "proto_exptime_to_abs(%lld, %lld) = %u, want %u",
              (long long)cases[i].exptime, (long long)NOW, got, cases[i].want);
    }
    /* A unix time in the past: already expired, as 1 or as that time itself. */
    begin_case(&t, "thirty_days_plus_1_is_an_old_unix_time", NULL, 0);
    got = proto_exptime_to_abs(PROTO_REALTIME_MAXDELTA + 1, NOW);
    CHECK(&t, got == 1 || got == PROTO_REALTIME_MAXDELTA + 1,
          "proto_exptime_to_abs(2592001, now) = %u, want 1 or 2592001", got);
    begin_case(&t, "relative_uses_now", NULL, 0);
    got = proto_exptime_to_abs(100, 1000000000);
    CHECK(&t, got == 1000000100u, "proto_exptime_to_abs(100, 1e9) = %u, want 1000000100", got);
    finish(&t);
}

/* ------------------------------------------------------------------------------------------ */
/* Hostile: generated inputs, checked for invariants and split consistency.                    */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void fuzz_one(struct tctx *t, const char *in, size_t len, const char *name)
{
    struct proto_limits lim = {.item_max = ITEM_MAX_DEFAULT};
    struct outcome full;
    size_t line = first_line_len(in, len), total = 0;

    begin_case(t, name, in, len);
    parse_raw(&full, in, len, &lim, name, len);
    check_invariants(t, &full, "whole input");
    if (full.res.status == PROTO_REQUEST && is_storage_cmd(full.req.cmd)) {
        total = full.res.consumed;
    } else if (full.res.status == PROTO_NEED_MORE && full.res.need) {
        total = full.res.need;
    } else if (full.res.status == PROTO_ERROR && full.res.error &&
               strcmp(full.res.error, E_CHUNK) == 0) {
        total = full.res.consumed;
    }
    if (full.res.status == PROTO_ERROR && !full.res.error && full.res.consumed > line) {
        total = full.res.consumed;  /* a suppressed bad data chunk */
    }
    check_splits(t, in, len, &lim, &full, total ? line : 0, total);
}

static void test_hostile_generated_commands(void **state)
{
    static const char *const pieces[] = {
        "get", "gets", "gat", "gats", "set", "add", "replace", "append", "prepend", "cas",
        "incr", "decr", "delete", "touch", "flush_all", "version", "verbosity", "quit",
        "stats", "rget", "noreply", "0", "1", "5", "-1", "10", "4294967296",
        "18446744073709551616", "2147483648", "abc", "k", "key", " ", " ", " ", " ", "  ",
        "\r\n", "\r\n", "\n", "\r", "\t", "\x01", "\x7f", "\x80", "set k 0 0 3\r\nabc\r\n",
        "set k 0 0 3 noreply\r\nab\r\n", "get a b\r\n", "incr n 1\r\n", "delete k 0\r\n",
        "cas k 0 0 1 1\r\nx\r\n", "set k 0 0 2000000\r\n", "HTTP/1.1", "GET / HTTP/1.0\r\n",
        "shutdown", "iterate", "YQ==", "v", "iterate 0 1\r\n", "iterate YWI= 3 v\r\n",
    };
    struct tctx t = { 0 };
    char in[1200], name[64];
    size_t len, i, j, npieces, pl;
    int iter;

    (void)state;
    rng_state = 0x9e3779b97f4a7c15ULL;
    for (iter = 0; iter < 1500; iter++) {
        len = 0;
        npieces = 1 + rnd() % 24;
        for (i = 0; i < npieces; i++) {
            if (rnd() % 16 == 0) {
                in[len++] = (char)(rnd() & 0xff);
                continue;
            }
            if (rnd() % 24 == 0) {
                in[len++] = '\0';
                continue;
            }
            j = rnd() % (sizeof pieces / sizeof pieces[0]);
            pl = strlen(pieces[j]);
            if (len + pl + 260 >= sizeof in) {
                break;
            }
            memcpy(in + len, pieces[j], pl);
            len += pl;
            if (rnd() % 64 == 0) {
                size_t kl = PROTO_KEY_MAX + (size_t)(rnd() & 1);      /* 250 or 251 bytes */
                memcpy(in + len, k251, kl);
                len += kl;
            }
        }
        snprintf(name, sizeof name, "generated_command_%d", iter);
        fuzz_one(&t, in, len, name);
        if (t.failed_cases > 20) {
            break;              /* enough to see the pattern */
        }
    }
    finish(&t);
}

static void test_hostile_random_bytes(void **state)
{
    struct tctx t = { 0 };
    char in[512], name[64];
    size_t len, i;
    int iter;

    (void)state;
    rng_state = 0x2545f4914f6cdd1dULL;
    for (iter = 0; iter < 800; iter++) {
        len = rnd() % sizeof in;
        for (i = 0; i < len; i++) {
            uint64_t r = rnd();
            in[i] = (char)(r % 40 == 0 ? '\n' : r % 40 == 1 ? ' ' : (char)(r >> 8));
        }
        snprintf(name, sizeof name, "random_bytes_%d", iter);
        fuzz_one(&t, in, len, name);
        if (t.failed_cases > 20) {
            break;
        }
    }
    finish(&t);
}

/* ------------------------------------------------------------------------------------------ */

static int group_setup(void **state)
{
    void *m;

    (void)state;
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    arena_len = (PROTO_TEXT_GET_LINE_MAX + 512 * 1024 + page_size - 1) / page_size * page_size;
    m = mmap(NULL, arena_len + page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        return -1;
    }
    arena = m;
    if (mprotect(arena + arena_len, page_size, PROT_NONE) != 0) {
        return -1;
    }
    memset(k250, 'k', PROTO_KEY_MAX);
    k250[PROTO_KEY_MAX] = '\0';
    memset(k251, 'k', PROTO_KEY_MAX + 1);
    k251[PROTO_KEY_MAX + 1] = '\0';
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    while (npool > 0) {
        free(pool[--npool]);
    }
    munmap(arena, arena_len + page_size);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_commands_and_token_counts),
        cmocka_unit_test(test_line_endings_nul_and_spaces),
        cmocka_unit_test(test_get_family),
        cmocka_unit_test(test_storage_commands),
        cmocka_unit_test(test_storage_errors),
        cmocka_unit_test(test_incr_decr),
        cmocka_unit_test(test_delete_and_touch),
        cmocka_unit_test(test_flush_version_verbosity_stats),
        cmocka_unit_test(test_iterate),
        cmocka_unit_test(test_item_line_and_cursor),
        cmocka_unit_test(test_http_requests),
        cmocka_unit_test(test_pipelined_requests),
        cmocka_unit_test(test_hostile_many_tokens),
        cmocka_unit_test(test_hostile_long_lines),
        cmocka_unit_test(test_hostile_get_line_limit),
        cmocka_unit_test(test_big_inputs),
        cmocka_unit_test(test_hostile_generated_commands),
        cmocka_unit_test(test_hostile_random_bytes),
        cmocka_unit_test(test_next_key),
        cmocka_unit_test(test_value_line),
        cmocka_unit_test(test_u64_to_dec),
        cmocka_unit_test(test_apply_delta),
        cmocka_unit_test(test_exptime_to_abs),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
