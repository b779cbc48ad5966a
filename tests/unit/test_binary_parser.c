/* Unit tests of the memcached binary-protocol parser and encoders (protocol/binary.c). */

/*
 * The expected outcomes were taken from memcached 1.6.18 itself (Debian, -U 0, -I 1m; requests
 * sent with python sockets, and with -S and a Cyrus sasldb for the SASL cases): which status a
 * malformed request gets, whether the connection closes, how many bytes are consumed and how
 * many swallowed.
 *
 * Every request is parsed whole, then every prefix of it (at every byte boundary for inputs up
 * to SPLIT_ALL_MAX bytes, around the interesting offsets for longer ones): a prefix must give
 * PROTO_NEED_MORE with a 'need' beyond the prefix, or exactly the whole input's outcome once it
 * holds the bytes that outcome depends on. Bytes appended after a request never change its
 * outcome. Inputs sit at the very end of a read-only region followed by a PROT_NONE page, so
 * reading past 'len' or writing into the input crashes the test.
 *
 * Checks do not stop at the first failure: each failing case prints a "# FAIL" TAP comment
 * with the case's name, and the test fails at its end.
 */

#include <setjmp.h>
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

#include "protocol/binary.h"
#include "protocol/request.h"

#define MIB ((size_t)1024 * 1024)
#define SPLIT_ALL_MAX 20000         /* inputs up to this size are split at every byte */
#define FIT_MAX_1 (MIB - 60)        /* longest value of a 1-byte key, flags 0, under -I 1m */

static const struct proto_limits LIM = {.item_max = MIB};
static const struct proto_limits LIM_AUTH = {.item_max = MIB, .auth = true};
static const struct proto_limits LIM_AUTHED = {.item_max = MIB, .auth = true,
                                               .authenticated = true};

/* ------------------------------------------------------------------------------------------ */
/* Guarded input region.                                                                       */

static char *arena;
static size_t arena_len;
static size_t page_size;

static const char *place(const void *src, size_t len)
{
    char *dst = arena + arena_len - len;
    char *lo = arena + (size_t)(dst - arena) / page_size * page_size;

    if (len > arena_len) {
        fail_msg("input of %zu bytes is larger than the test region", len);
    }
    if (lo == arena + arena_len) {
        return dst;
    }
    assert_int_equal(mprotect(lo, (size_t)(arena + arena_len - lo), PROT_READ | PROT_WRITE), 0);
    memcpy(dst, src, len);
    assert_int_equal(mprotect(lo, (size_t)(arena + arena_len - lo), PROT_READ), 0);
    return dst;
}

/* ------------------------------------------------------------------------------------------ */
/* Building requests.                                                                          */

static unsigned char *scratch;      /* requests are built here (up to 4 MiB) */
#define SCRATCH_MAX (4 * MIB)

struct pk {
    uint8_t magic;                  /* used when raw_magic; otherwise 0x80 */
    bool raw_magic;
    uint8_t op;
    const void *key;
    size_t nkey;
    const void *ext;
    size_t next;
    const void *val;
    size_t nval;
    uint32_t opaque;
    uint64_t cas;
    /* lies: used instead of the real lengths when set */
    bool lie_keylen, lie_extlen, lie_bodylen;
    uint16_t keylen;
    uint8_t extlen;
    uint32_t bodylen;
};

static void be16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void be64(unsigned char *p, uint64_t v)
{
    be32(p, (uint32_t)(v >> 32));
    be32(p + 4, (uint32_t)v);
}

/* Writes the packet at out; returns its length. */
static size_t build(unsigned char *out, const struct pk *p)
{
    size_t total = PROTO_BIN_HEADER + p->next + p->nkey + p->nval;
    assert_true(total <= SCRATCH_MAX);
    out[0] = p->raw_magic ? p->magic : PROTO_BIN_MAGIC_REQUEST;
    out[1] = p->op;
    be16(out + 2, p->lie_keylen ? p->keylen : (uint16_t)p->nkey);
    out[4] = p->lie_extlen ? p->extlen : (uint8_t)p->next;
    out[5] = 0;
    be16(out + 6, 0);
    be32(out + 8, p->lie_bodylen ? p->bodylen : (uint32_t)(p->next + p->nkey + p->nval));
    be32(out + 12, p->opaque);
    be64(out + 16, p->cas);
    if (p->next > 0) {
        memcpy(out + PROTO_BIN_HEADER, p->ext, p->next);
    }
    if (p->nkey > 0) {
        memcpy(out + PROTO_BIN_HEADER + p->next, p->key, p->nkey);
    }
    if (p->nval > 0) {
        memcpy(out + PROTO_BIN_HEADER + p->next + p->nkey, p->val, p->nval);
    }
    return total;
}

static size_t mk(const struct pk *p)
{
    return build(scratch, p);
}

static unsigned char ext_set[8];
static unsigned char ext_delta[20];
static unsigned char ext_touch[4];

static const void *set_extras(uint32_t flags, uint32_t exptime)
{
    be32(ext_set, flags);
    be32(ext_set + 4, exptime);
    return ext_set;
}

static const void *delta_extras(uint64_t delta, uint64_t initial, uint32_t exptime)
{
    be64(ext_delta, delta);
    be64(ext_delta + 8, initial);
    be32(ext_delta + 16, exptime);
    return ext_delta;
}

static const void *touch_extras(uint32_t exptime)
{
    be32(ext_touch, exptime);
    return ext_touch;
}

/* ------------------------------------------------------------------------------------------ */
/* Non-stopping checks.                                                                        */

struct tctx {
    const char *cname;
    bool case_failed;
    int failures;
    int failed_cases;
    int cases;
};

static void begin_case(struct tctx *t, const char *name)
{
    t->cname = name;
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
        printf("# FAIL case %s\n", t->cname);
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
    const char *buf;
    size_t len;
    struct proto_request req;
    struct proto_result res;
};

static const char junk[] = "JUNK-FROM-AN-OLD-REQUEST";

static void poison(struct proto_request *q, struct proto_result *r)
{
    memset(q, 0xa5, sizeof *q);
    q->key = q->data = q->arg = q->keys = q->key2 = junk;
    memset(r, 0xa5, sizeof *r);
    r->error = junk;
}

static void parse(struct outcome *o, const void *in, size_t len, const struct proto_limits *lim)
{
    o->buf = place(in, len);
    o->len = len;
    poison(&o->req, &o->res);
    proto_binary_parse(o->buf, len, lim, &o->req, &o->res);
}

static ptrdiff_t off(const struct outcome *o, const char *p)
{
    return p == NULL ? -1 : p - o->buf;
}

/* true when a and b are the same outcome (pointers compared as offsets into their input). */
static bool same(const struct outcome *a, const struct outcome *b, const char **why)
{
    const struct proto_request *x = &a->req, *y = &b->req;
    const struct proto_result *r = &a->res, *s = &b->res;

#define DIFF(cond, what) \
    if (cond) { \
        *why = what; \
        return false; \
    }
    DIFF(r->status != s->status, "status");
    if (r->status == PROTO_CLOSE) {
        return true;
    }
    DIFF(r->consumed != s->consumed, "consumed");
    DIFF(r->swallow != s->swallow, "swallow");
    DIFF(r->close != s->close || r->swallow_uncounted != s->swallow_uncounted ||
             r->unlink_key != s->unlink_key,
         "close/swallow_uncounted/unlink_key");
    DIFF(r->npacket != s->npacket || memcmp(r->packet, s->packet, r->npacket) != 0, "packet");
    DIFF(x->cmd != y->cmd || x->noreply != y->noreply, "cmd/noreply");
    DIFF(x->bin.opcode != y->bin.opcode || x->bin.opaque != y->bin.opaque ||
             x->bin.with_key != y->bin.with_key || x->bin.value != y->bin.value ||
             x->bin.initial != y->bin.initial || x->bin.create_exptime != y->bin.create_exptime,
         "bin fields");
    DIFF(x->flags != y->flags || x->exptime != y->exptime || x->cas != y->cas ||
             x->delta != y->delta || x->delay != y->delay,
         "numeric fields");
    if (r->status == PROTO_REQUEST) {
        DIFF(x->nkey != y->nkey || off(a, x->key) != off(b, y->key), "key");
        DIFF(x->ndata != y->ndata || (x->ndata > 0 && off(a, x->data) != off(b, y->data)),
             "data");
        DIFF(x->narg != y->narg || (x->narg > 0 && off(a, x->arg) != off(b, y->arg)), "arg");
    }
#undef DIFF
    return true;
}

/* What a request's outcome may look like; unset fields must be zero. */
struct want {
    enum proto_status status;
    size_t consumed;
    size_t swallow;
    /* PROTO_REQUEST */
    enum proto_cmd cmd;
    bool noreply, with_key, value;
    size_t key_at;              /* offset of the key in the input */
    size_t nkey;
    size_t data_at;
    size_t ndata;
    uint32_t flags;
    int64_t exptime;
    uint64_t cas;
    uint64_t delta, initial;
    uint32_t create_exptime;
    int64_t delay;
    /* PROTO_ERROR */
    uint16_t err;
    bool close, too_large, unlink;     /* too_large: the swallow counts in store_too_large */
};

static void check_packet(struct tctx *t, const struct outcome *o, uint16_t err)
{
    const unsigned char *p = o->res.packet;
    const char *msg = proto_binary_status_text(err);
    size_t n = strlen(msg);
    const unsigned char *in = (const unsigned char *)o->buf;

    CHECK(t, o->res.npacket == PROTO_BIN_HEADER + n, "npacket %zu, want %zu", o->res.npacket,
          PROTO_BIN_HEADER + n);
    if (o->res.npacket != PROTO_BIN_HEADER + n) {
        return;
    }
    CHECK(t, p[0] == 0x81 && p[1] == in[1], "magic/opcode %02x %02x", p[0], p[1]);
    CHECK(t, p[2] == 0 && p[3] == 0 && p[4] == 0 && p[5] == 0, "key/ext lengths not 0");
    CHECK(t, ((p[6] << 8) | p[7]) == err, "status 0x%x, want 0x%x", (p[6] << 8) | p[7], err);
    CHECK(t, p[8] == 0 && p[9] == 0 && p[10] == 0 && p[11] == n, "bodylen");
    CHECK(t, memcmp(p + 12, in + 12, 4) == 0, "opaque not echoed");
    CHECK(t, memcmp(p + 16, "\0\0\0\0\0\0\0\0", 8) == 0, "cas not 0");
    CHECK(t, memcmp(p + 24, msg, n) == 0, "message");
}

static void check_want(struct tctx *t, const struct outcome *o, const struct want *w)
{
    const struct proto_request *q = &o->req;
    const struct proto_result *r = &o->res;
    const unsigned char *in = (const unsigned char *)o->buf;

    CHECK(t, r->status == w->status, "status %d, want %d", r->status, w->status);
    if (r->status != w->status || w->status == PROTO_CLOSE) {
        return;
    }
    if (w->status == PROTO_NEED_MORE) {
        CHECK(t, r->need == w->consumed, "need %zu, want %zu", r->need, w->consumed);
        CHECK(t, r->consumed == 0, "NEED_MORE with consumed %zu", r->consumed);
        return;
    }
    CHECK(t, r->consumed == w->consumed, "consumed %zu, want %zu", r->consumed, w->consumed);
    CHECK(t, r->swallow == w->swallow, "swallow %zu, want %zu", r->swallow, w->swallow);
    CHECK(t, r->close == w->close, "close %d", r->close);
    CHECK(t, r->swallow_uncounted == (r->swallow > 0 && !w->too_large), "swallow_uncounted %d",
          r->swallow_uncounted);
    CHECK(t, r->unlink_key == w->unlink, "unlink_key %d", r->unlink_key);
    CHECK(t, q->bin.opcode == in[1], "bin.opcode %02x", q->bin.opcode);
    CHECK(t, q->bin.opaque == (((uint32_t)in[12] << 24) | ((uint32_t)in[13] << 16) |
                               ((uint32_t)in[14] << 8) | in[15]),
          "bin.opaque %08x", q->bin.opaque);
    if (w->status == PROTO_ERROR) {
        CHECK(t, r->error == NULL, "text error set");
        check_packet(t, o, w->err);
        if (w->unlink) {
            CHECK(t, off(o, q->key) == (ptrdiff_t)w->key_at && q->nkey == w->nkey,
                  "unlink key at %td/%zu", off(o, q->key), q->nkey);
        }
        return;
    }
    CHECK(t, r->npacket == 0 && r->error == NULL, "error set on a request");
    CHECK(t, q->cmd == w->cmd, "cmd %d, want %d", q->cmd, w->cmd);
    CHECK(t, q->noreply == w->noreply, "noreply %d", q->noreply);
    CHECK(t, q->bin.with_key == w->with_key && q->bin.value == w->value,
          "with_key %d value %d", q->bin.with_key, q->bin.value);
    if (w->nkey > 0 || q->nkey > 0) {
        CHECK(t, off(o, q->key) == (ptrdiff_t)w->key_at && q->nkey == w->nkey,
              "key at %td/%zu, want %zu/%zu", off(o, q->key), q->nkey, w->key_at, w->nkey);
    }
    CHECK(t, q->ndata == w->ndata, "ndata %zu, want %zu", q->ndata, w->ndata);
    if (w->ndata > 0) {
        CHECK(t, off(o, q->data) == (ptrdiff_t)w->data_at, "data at %td", off(o, q->data));
    }
    CHECK(t, q->flags == w->flags, "flags %u", q->flags);
    CHECK(t, q->exptime == w->exptime, "exptime %lld", (long long)q->exptime);
    CHECK(t, q->cas == w->cas, "cas %llu", (unsigned long long)q->cas);
    CHECK(t, q->delta == w->delta, "delta %llu", (unsigned long long)q->delta);
    CHECK(t, q->bin.initial == w->initial, "initial %llu", (unsigned long long)q->bin.initial);
    CHECK(t, q->bin.create_exptime == w->create_exptime, "create_exptime %u",
          q->bin.create_exptime);
    CHECK(t, q->delay == w->delay, "delay %lld", (long long)q->delay);
    if (q->cmd == PROTO_CMD_STATS) {
        CHECK(t, q->narg == w->nkey && (q->narg == 0 || off(o, q->arg) == (ptrdiff_t)w->key_at),
              "stats arg");
    }
}

/* Bytes of input the outcome depends on: the prefix from which it must be final. */
static size_t decided_at(const struct outcome *o)
{
    return o->res.status == PROTO_CLOSE ? PROTO_BIN_HEADER : o->res.consumed;
}

static void check_prefix(struct tctx *t, const struct outcome *full, const unsigned char *in,
                         size_t p, const struct proto_limits *lim)
{
    static struct outcome o;
    const char *why = "";

    parse(&o, in, p, lim);
    if (o.res.status == PROTO_NEED_MORE) {
        CHECK(t, o.res.need > p, "prefix %zu: need %zu does not ask for more", p, o.res.need);
        CHECK(t, o.res.consumed == 0, "prefix %zu: NEED_MORE with consumed %zu", p,
              o.res.consumed);
        if (full->res.status != PROTO_NEED_MORE) {
            CHECK(t, p < decided_at(full), "prefix %zu: NEED_MORE past the decisive %zu bytes",
                  p, decided_at(full));
            CHECK(t, o.res.need <= decided_at(full) || full->res.status == PROTO_CLOSE,
                  "prefix %zu: need %zu beyond the %zu bytes the request takes", p, o.res.need,
                  decided_at(full));
        }
        return;
    }
    CHECK(t, p >= decided_at(full), "prefix %zu: decided before the %zu bytes it needs", p,
          decided_at(full));
    CHECK(t, same(&o, full, &why), "prefix %zu: outcome differs from the whole input (%s)", p,
          why);
}

/* Parses in[0..len) whole, with trailing bytes, and split; checks against w. */
static void run_case(struct tctx *t, const char *name, const unsigned char *in, size_t len,
                     const struct proto_limits *lim, const struct want *w)
{
    static struct outcome full, more;
    static unsigned char *tmp;
    const char *why = "";

    begin_case(t, name);
    parse(&full, in, len, lim);
    check_want(t, &full, w);
    if (full.res.status == PROTO_REQUEST || full.res.status == PROTO_ERROR) {
        CHECK(t, full.res.consumed >= PROTO_BIN_HEADER && full.res.consumed <= len,
              "consumed %zu of %zu", full.res.consumed, len);
    }
    if (tmp == NULL) {
        tmp = malloc(SCRATCH_MAX + 64);
        assert_non_null(tmp);
    }
    if (full.res.status != PROTO_NEED_MORE && len + 37 <= SCRATCH_MAX) {
        memcpy(tmp, in, len);
        memset(tmp + len, 0x80, 37);        /* looks like the start of another request */
        parse(&more, tmp, len + 37, lim);
        CHECK(t, same(&more, &full, &why), "trailing bytes change the outcome (%s)", why);
    }
    memcpy(tmp, in, len);
    if (len <= SPLIT_ALL_MAX) {
        for (size_t p = 0; p < len; p++) {
            check_prefix(t, &full, tmp, p, lim);
        }
        return;
    }
    size_t points[] = {0, 1, 23, 24, 25, 31, 32, 33, 40, 100, 300, 1000, len / 2, len - 1000,
                       len - 2, len - 1};
    for (size_t i = 0; i < sizeof points / sizeof points[0]; i++) {
        if (points[i] < len) {
            check_prefix(t, &full, tmp, points[i], lim);
        }
    }
}

static void run_pk(struct tctx *t, const char *name, const struct pk *p,
                   const struct proto_limits *lim, const struct want *w)
{
    size_t n = mk(p);
    run_case(t, name, scratch, n, lim, w);
}

/* ------------------------------------------------------------------------------------------ */
/* Tests.                                                                                      */

#define REQ(...) (&(struct want){.status = PROTO_REQUEST, __VA_ARGS__})
#define ERR(...) (&(struct want){.status = PROTO_ERROR, __VA_ARGS__})
#define FATAL(code, at) ERR(.err = (code), .consumed = (at), .close = true)
#define CLOSE (&(struct want){.status = PROTO_CLOSE})

static void test_every_opcode(void **state)
{
    struct tctx t = {0};
    char big[1000];
    (void)state;
    memset(big, 'v', sizeof big);

    run_pk(&t, "noop", &(struct pk){.op = PROTO_BIN_NOOP, .opaque = 7}, &LIM,
           REQ(.cmd = PROTO_CMD_NOOP, .consumed = 24));
    run_pk(&t, "version", &(struct pk){.op = PROTO_BIN_VERSION}, &LIM,
           REQ(.cmd = PROTO_CMD_VERSION, .consumed = 24));
    run_pk(&t, "quit", &(struct pk){.op = PROTO_BIN_QUIT}, &LIM,
           REQ(.cmd = PROTO_CMD_QUIT, .consumed = 24));
    run_pk(&t, "quitq", &(struct pk){.op = PROTO_BIN_QUITQ}, &LIM,
           REQ(.cmd = PROTO_CMD_QUIT, .noreply = true, .consumed = 24));
    run_pk(&t, "flush", &(struct pk){.op = PROTO_BIN_FLUSH}, &LIM,
           REQ(.cmd = PROTO_CMD_FLUSH_ALL, .consumed = 24));
    run_pk(&t, "flushq_delay", &(struct pk){.op = PROTO_BIN_FLUSHQ, .ext = touch_extras(3600),
                                            .next = 4}, &LIM,
           REQ(.cmd = PROTO_CMD_FLUSH_ALL, .noreply = true, .delay = 3600, .consumed = 28));
    run_pk(&t, "flush_delay_max", &(struct pk){.op = PROTO_BIN_FLUSH,
                                               .ext = touch_extras(0xffffffff), .next = 4},
           &LIM, REQ(.cmd = PROTO_CMD_FLUSH_ALL, .delay = 0xffffffffLL, .consumed = 28));

    static const struct {
        uint8_t op;
        enum proto_cmd cmd;
        bool quiet;
    } stores[] = {
        {PROTO_BIN_SET, PROTO_CMD_SET, false},     {PROTO_BIN_SETQ, PROTO_CMD_SET, true},
        {PROTO_BIN_ADD, PROTO_CMD_ADD, false},     {PROTO_BIN_ADDQ, PROTO_CMD_ADD, true},
        {PROTO_BIN_REPLACE, PROTO_CMD_REPLACE, false},
        {PROTO_BIN_REPLACEQ, PROTO_CMD_REPLACE, true},
    };
    for (size_t i = 0; i < sizeof stores / sizeof stores[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "store_%02x", stores[i].op);
        run_pk(&t, name, &(struct pk){.op = stores[i].op, .ext = set_extras(0xdeadbeef, 77),
                                      .next = 8, .key = "key", .nkey = 3, .val = big,
                                      .nval = 1000, .opaque = 0x01020304},
               &LIM, REQ(.cmd = stores[i].cmd, .noreply = stores[i].quiet, .key_at = 32,
                         .nkey = 3, .data_at = 35, .ndata = 1000, .flags = 0xdeadbeef,
                         .exptime = 77, .consumed = 1035));
        snprintf(name, sizeof name, "store_%02x_with_cas", stores[i].op);
        /* memcached turns set/add/replace carrying a cas into a CAS */
        run_pk(&t, name, &(struct pk){.op = stores[i].op, .ext = set_extras(1, 0xffffffff),
                                      .next = 8, .key = "k", .nkey = 1, .val = "v", .nval = 1,
                                      .cas = 0x1122334455667788ULL},
               &LIM, REQ(.cmd = PROTO_CMD_CAS, .noreply = stores[i].quiet, .key_at = 32,
                         .nkey = 1, .data_at = 33, .ndata = 1, .flags = 1,
                         .exptime = 0xffffffffLL, .cas = 0x1122334455667788ULL,
                         .consumed = 34));
    }
    run_pk(&t, "set_empty_value", &(struct pk){.op = PROTO_BIN_SET, .ext = set_extras(0, 0),
                                               .next = 8, .key = "k", .nkey = 1},
           &LIM, REQ(.cmd = PROTO_CMD_SET, .key_at = 32, .nkey = 1, .consumed = 33));
    run_pk(&t, "append", &(struct pk){.op = PROTO_BIN_APPEND, .key = "k", .nkey = 1,
                                      .val = "abc", .nval = 3, .cas = 5},
           &LIM, REQ(.cmd = PROTO_CMD_APPEND, .key_at = 24, .nkey = 1, .data_at = 25,
                     .ndata = 3, .cas = 5, .consumed = 28));
    run_pk(&t, "prependq", &(struct pk){.op = PROTO_BIN_PREPENDQ, .key = "k", .nkey = 1,
                                        .val = "abc", .nval = 3},
           &LIM, REQ(.cmd = PROTO_CMD_PREPEND, .noreply = true, .key_at = 24, .nkey = 1,
                     .data_at = 25, .ndata = 3, .consumed = 28));
    run_pk(&t, "appendq_empty", &(struct pk){.op = PROTO_BIN_APPENDQ, .key = "k", .nkey = 1},
           &LIM, REQ(.cmd = PROTO_CMD_APPEND, .noreply = true, .key_at = 24, .nkey = 1,
                     .consumed = 25));

    static const struct {
        uint8_t op;
        bool quiet, with_key;
    } gets[] = {{PROTO_BIN_GET, false, false}, {PROTO_BIN_GETQ, true, false},
                {PROTO_BIN_GETK, false, true}, {PROTO_BIN_GETKQ, true, true}};
    for (size_t i = 0; i < 4; i++) {
        char name[64];
        snprintf(name, sizeof name, "get_%02x", gets[i].op);
        run_pk(&t, name, &(struct pk){.op = gets[i].op, .key = "hello", .nkey = 5},
               &LIM, REQ(.cmd = PROTO_CMD_GET, .noreply = gets[i].quiet,
                         .with_key = gets[i].with_key, .value = true, .key_at = 24, .nkey = 5,
                         .consumed = 29));
    }
    static const struct {
        uint8_t op;
        enum proto_cmd cmd;
        bool quiet, with_key, value;
    } gats[] = {
        {PROTO_BIN_TOUCH, PROTO_CMD_TOUCH, false, false, false},
        {PROTO_BIN_GAT, PROTO_CMD_GAT, false, false, true},
        {PROTO_BIN_GATQ, PROTO_CMD_GAT, true, false, true},
        {PROTO_BIN_GATK, PROTO_CMD_GAT, false, true, true},
        {PROTO_BIN_GATKQ, PROTO_CMD_GAT, true, true, true},
    };
    for (size_t i = 0; i < 5; i++) {
        char name[64];
        snprintf(name, sizeof name, "touch_%02x", gats[i].op);
        run_pk(&t, name, &(struct pk){.op = gats[i].op, .ext = touch_extras(0x80000000),
                                      .next = 4, .key = "kk", .nkey = 2, .cas = 9},
               &LIM, REQ(.cmd = gats[i].cmd, .noreply = gats[i].quiet,
                         .with_key = gats[i].with_key, .value = gats[i].value, .key_at = 28,
                         .nkey = 2, .exptime = 0x80000000LL, .cas = 9, .consumed = 30));
    }
    run_pk(&t, "delete", &(struct pk){.op = PROTO_BIN_DELETE, .key = "d", .nkey = 1, .cas = 3},
           &LIM, REQ(.cmd = PROTO_CMD_DELETE, .key_at = 24, .nkey = 1, .cas = 3,
                     .consumed = 25));
    run_pk(&t, "deleteq", &(struct pk){.op = PROTO_BIN_DELETEQ, .key = "d", .nkey = 1},
           &LIM, REQ(.cmd = PROTO_CMD_DELETE, .noreply = true, .key_at = 24, .nkey = 1,
                     .consumed = 25));
    static const struct {
        uint8_t op;
        enum proto_cmd cmd;
        bool quiet;
    } deltas[] = {{PROTO_BIN_INCREMENT, PROTO_CMD_INCR, false},
                  {PROTO_BIN_INCREMENTQ, PROTO_CMD_INCR, true},
                  {PROTO_BIN_DECREMENT, PROTO_CMD_DECR, false},
                  {PROTO_BIN_DECREMENTQ, PROTO_CMD_DECR, true}};
    for (size_t i = 0; i < 4; i++) {
        char name[64];
        snprintf(name, sizeof name, "delta_%02x", deltas[i].op);
        run_pk(&t, name, &(struct pk){.op = deltas[i].op, .key = "n", .nkey = 1, .next = 20,
                                      .ext = delta_extras(UINT64_MAX, 0x0102030405060708ULL,
                                                          0xffffffff),
                                      .cas = 1},
               &LIM, REQ(.cmd = deltas[i].cmd, .noreply = deltas[i].quiet, .key_at = 44,
                         .nkey = 1, .delta = UINT64_MAX, .initial = 0x0102030405060708ULL,
                         .create_exptime = 0xffffffff, .cas = 1, .consumed = 45));
    }
    run_pk(&t, "stat_all", &(struct pk){.op = PROTO_BIN_STAT}, &LIM,
           REQ(.cmd = PROTO_CMD_STATS, .consumed = 24));
    run_pk(&t, "stat_group", &(struct pk){.op = PROTO_BIN_STAT, .key = "settings", .nkey = 8},
           &LIM, REQ(.cmd = PROTO_CMD_STATS, .key_at = 24, .nkey = 8, .consumed = 32));
    run_pk(&t, "sasl_list", &(struct pk){.op = PROTO_BIN_SASL_LIST_MECHS}, &LIM_AUTH,
           REQ(.cmd = PROTO_CMD_SASL_LIST, .consumed = 24));
    run_pk(&t, "sasl_auth", &(struct pk){.op = PROTO_BIN_SASL_AUTH, .key = "PLAIN", .nkey = 5,
                                         .val = "\0u\0p", .nval = 4},
           &LIM_AUTH, REQ(.cmd = PROTO_CMD_SASL_AUTH, .key_at = 24, .nkey = 5, .data_at = 29,
                          .ndata = 4, .consumed = 33));
    run_pk(&t, "sasl_auth_empty", &(struct pk){.op = PROTO_BIN_SASL_AUTH, .key = "PLAIN",
                                               .nkey = 5},
           &LIM_AUTH, REQ(.cmd = PROTO_CMD_SASL_AUTH, .key_at = 24, .nkey = 5, .consumed = 29));
    run_pk(&t, "sasl_step", &(struct pk){.op = PROTO_BIN_SASL_STEP, .key = "X", .nkey = 1,
                                         .val = "\0u\0p", .nval = 4},
           &LIM_AUTHED, REQ(.cmd = PROTO_CMD_SASL_STEP, .key_at = 24, .nkey = 1, .data_at = 25,
                            .ndata = 4, .consumed = 29));
    finish(&t);
}

/* memcached leaves what a get, touch or stat carries past its key in the stream. */
static void test_extra_body_is_not_consumed(void **state)
{
    struct tctx t = {0};
    (void)state;

    run_pk(&t, "stat_with_value", &(struct pk){.op = PROTO_BIN_STAT, .key = "reset", .nkey = 5,
                                               .val = "xyz", .nval = 3},
           &LIM, REQ(.cmd = PROTO_CMD_STATS, .key_at = 24, .nkey = 5, .consumed = 29));
    run_pk(&t, "touch_with_value", &(struct pk){.op = PROTO_BIN_TOUCH, .ext = touch_extras(5),
                                                .next = 4, .key = "k", .nkey = 1, .val = "xyz",
                                                .nval = 3},
           &LIM, REQ(.cmd = PROTO_CMD_TOUCH, .key_at = 28, .nkey = 1, .exptime = 5,
                     .consumed = 29));
    run_pk(&t, "gatkq_with_value", &(struct pk){.op = PROTO_BIN_GATKQ, .ext = touch_extras(0),
                                                .next = 4, .key = "k", .nkey = 1, .val = "x",
                                                .nval = 1},
           &LIM, REQ(.cmd = PROTO_CMD_GAT, .noreply = true, .with_key = true, .value = true,
                     .key_at = 28, .nkey = 1, .consumed = 29));
    finish(&t);
}

/* Request shapes memcached answers "Invalid arguments" to, closing the connection. */
static void test_malformed_shapes(void **state)
{
    struct tctx t = {0};
    static const unsigned char z[20];
    (void)state;

#define BAD(name, ...) \
    do { \
        struct pk p_ = {__VA_ARGS__}; \
        size_t at_ = PROTO_BIN_HEADER + p_.next + p_.nkey; \
        run_pk(&t, name, &p_, &LIM, FATAL(PROTO_BIN_EINVAL, at_)); \
    } while (0)
    BAD("get_with_extras", .op = PROTO_BIN_GET, .key = "k", .nkey = 1, .ext = z, .next = 4);
    BAD("get_with_value", .op = PROTO_BIN_GET, .key = "k", .nkey = 1, .val = "v", .nval = 1);
    BAD("get_without_key", .op = PROTO_BIN_GET);
    BAD("getkq_without_key", .op = PROTO_BIN_GETKQ);
    BAD("set_without_extras", .op = PROTO_BIN_SET, .key = "k", .nkey = 1, .val = "v",
        .nval = 1);
    BAD("set_extras_4", .op = PROTO_BIN_SETQ, .key = "k", .nkey = 1, .ext = z, .next = 4);
    BAD("set_extras_12", .op = PROTO_BIN_ADD, .key = "k", .nkey = 1, .ext = z, .next = 12);
    BAD("set_without_key", .op = PROTO_BIN_REPLACE, .ext = z, .next = 8, .val = "v",
        .nval = 1);
    BAD("append_with_extras", .op = PROTO_BIN_APPEND, .key = "k", .nkey = 1, .ext = z,
        .next = 8);
    BAD("prepend_without_key", .op = PROTO_BIN_PREPENDQ, .val = "v", .nval = 1);
    BAD("delete_with_extras", .op = PROTO_BIN_DELETE, .key = "k", .nkey = 1, .ext = z,
        .next = 4);
    BAD("delete_with_value", .op = PROTO_BIN_DELETEQ, .key = "k", .nkey = 1, .val = "v",
        .nval = 1);
    BAD("delete_without_key", .op = PROTO_BIN_DELETE);
    BAD("incr_extras_8", .op = PROTO_BIN_INCREMENT, .key = "k", .nkey = 1, .ext = z,
        .next = 8);
    BAD("incr_with_value", .op = PROTO_BIN_DECREMENTQ, .key = "k", .nkey = 1, .ext = z,
        .next = 20, .val = "v", .nval = 1);
    BAD("incr_without_key", .op = PROTO_BIN_INCREMENTQ, .ext = z, .next = 20);
    BAD("touch_without_extras", .op = PROTO_BIN_TOUCH, .key = "k", .nkey = 1);
    BAD("gat_extras_8", .op = PROTO_BIN_GAT, .key = "k", .nkey = 1, .ext = z, .next = 8);
    BAD("gatkq_without_key", .op = PROTO_BIN_GATKQ, .ext = z, .next = 4);
    BAD("noop_with_value", .op = PROTO_BIN_NOOP, .val = "xyz", .nval = 3);
    BAD("noop_with_key", .op = PROTO_BIN_NOOP, .key = "k", .nkey = 1);
    BAD("version_with_extras", .op = PROTO_BIN_VERSION, .ext = z, .next = 4);
    BAD("quit_with_key", .op = PROTO_BIN_QUIT, .key = "k", .nkey = 1);
    BAD("quitq_with_value", .op = PROTO_BIN_QUITQ, .val = "v", .nval = 1);
    BAD("flush_with_key", .op = PROTO_BIN_FLUSH, .key = "k", .nkey = 1, .ext = z, .next = 4);
    BAD("flush_extras_2", .op = PROTO_BIN_FLUSH, .ext = z, .next = 2);
    BAD("flush_extras_8", .op = PROTO_BIN_FLUSHQ, .ext = z, .next = 8);
    BAD("flush_with_value", .op = PROTO_BIN_FLUSH, .val = "v", .nval = 1);
    BAD("stat_with_extras", .op = PROTO_BIN_STAT, .ext = z, .next = 4);
    BAD("sasl_list_with_key", .op = PROTO_BIN_SASL_LIST_MECHS, .key = "k", .nkey = 1);
    BAD("sasl_auth_without_key", .op = PROTO_BIN_SASL_AUTH, .val = "v", .nval = 1);
    BAD("sasl_step_with_extras", .op = PROTO_BIN_SASL_STEP, .key = "PLAIN", .nkey = 5,
        .ext = z, .next = 4);
    /* shapes are checked before SASL is: the same answer with auth off */
    struct pk p = {.op = PROTO_BIN_SASL_AUTH, .val = "v", .nval = 1};
    run_pk(&t, "sasl_auth_without_key_auth_on", &p, &LIM_AUTH, FATAL(PROTO_BIN_EINVAL, 24));
#undef BAD
    finish(&t);
}

static void test_keys(void **state)
{
    struct tctx t = {0};
    static char k[65535];
    (void)state;
    memset(k, 'k', sizeof k);

    run_pk(&t, "key_250", &(struct pk){.op = PROTO_BIN_GETK, .key = k, .nkey = 250},
           &LIM, REQ(.cmd = PROTO_CMD_GET, .with_key = true, .value = true, .key_at = 24,
                     .nkey = 250, .consumed = 274));
    run_pk(&t, "key_251", &(struct pk){.op = PROTO_BIN_GET, .key = k, .nkey = 251},
           &LIM, FATAL(PROTO_BIN_EINVAL, 275));
    run_pk(&t, "key_251_set", &(struct pk){.op = PROTO_BIN_SET, .ext = set_extras(0, 0),
                                           .next = 8, .key = k, .nkey = 251, .val = "v",
                                           .nval = 1},
           &LIM, FATAL(PROTO_BIN_EINVAL, 283));
    run_pk(&t, "key_251_unknown_opcode", &(struct pk){.op = 0x60, .key = k, .nkey = 251},
           &LIM, FATAL(PROTO_BIN_EINVAL, 275));
    run_pk(&t, "key_251_stat", &(struct pk){.op = PROTO_BIN_STAT, .key = k, .nkey = 251},
           &LIM, FATAL(PROTO_BIN_EINVAL, 275));
    /* memcached's 16 KiB read buffer: a head that fits is read and refused, a longer closes */
    run_pk(&t, "head_16384", &(struct pk){.op = PROTO_BIN_GET, .key = k, .nkey = 16360},
           &LIM, FATAL(PROTO_BIN_EINVAL, 16384));
    run_pk(&t, "head_16385", &(struct pk){.op = PROTO_BIN_GET, .key = k, .nkey = 16361},
           &LIM, CLOSE);
    run_pk(&t, "head_16385_by_extras", &(struct pk){.op = PROTO_BIN_SET, .key = k,
                                                    .nkey = 16353, .ext = set_extras(0, 0),
                                                    .next = 8},
           &LIM, CLOSE);
    run_pk(&t, "key_65535", &(struct pk){.op = PROTO_BIN_GET, .key = k, .nkey = 65535},
           &LIM, CLOSE);
    /* any bytes are a key: NUL, spaces, control characters, high bytes */
    run_pk(&t, "key_any_bytes", &(struct pk){.op = PROTO_BIN_DELETE, .key = "\0 \r\n\x01\xff",
                                             .nkey = 6},
           &LIM, REQ(.cmd = PROTO_CMD_DELETE, .key_at = 24, .nkey = 6, .consumed = 30));
    finish(&t);
}

/* keylen + extlen > bodylen: memcached says "Unknown command" and closes. */
static void test_lengths_that_disagree(void **state)
{
    struct tctx t = {0};
    static const unsigned char z[20];
    (void)state;

    run_pk(&t, "keylen_over_bodylen", &(struct pk){.op = PROTO_BIN_GET, .key = "kkk",
                                                   .nkey = 3, .lie_bodylen = true,
                                                   .bodylen = 2},
           &LIM, FATAL(PROTO_BIN_UNKNOWN_COMMAND, 27));
    run_pk(&t, "key_plus_extras_over_bodylen",
           &(struct pk){.op = PROTO_BIN_SET, .key = "kkk", .nkey = 3, .ext = z, .next = 8,
                        .lie_bodylen = true, .bodylen = 10},
           &LIM, FATAL(PROTO_BIN_UNKNOWN_COMMAND, 35));
    run_pk(&t, "extras_over_bodylen", &(struct pk){.op = PROTO_BIN_FLUSH, .ext = z, .next = 4,
                                                   .lie_bodylen = true, .bodylen = 0},
           &LIM, FATAL(PROTO_BIN_UNKNOWN_COMMAND, 28));
    run_pk(&t, "unknown_opcode_lengths_disagree",
           &(struct pk){.op = 0x99, .key = "k", .nkey = 1, .lie_bodylen = true, .bodylen = 0},
           &LIM, FATAL(PROTO_BIN_UNKNOWN_COMMAND, 25));
    /* checked before authentication */
    run_pk(&t, "disagree_unauthenticated",
           &(struct pk){.op = PROTO_BIN_GET, .key = "k", .nkey = 1, .lie_bodylen = true,
                        .bodylen = 0},
           &LIM_AUTH, FATAL(PROTO_BIN_UNKNOWN_COMMAND, 25));
    /* a body longer than the header says is the next request's business */
    run_pk(&t, "bodylen_short_for_set_value",
           &(struct pk){.op = PROTO_BIN_SET, .key = "k", .nkey = 1, .ext = set_extras(0, 0),
                        .next = 8, .val = "value", .nval = 5, .lie_bodylen = true,
                        .bodylen = 11},
           &LIM, REQ(.cmd = PROTO_CMD_SET, .key_at = 32, .nkey = 1, .data_at = 33, .ndata = 2,
                     .consumed = 35));
    finish(&t);
}

static void test_unknown_opcodes(void **state)
{
    struct tctx t = {0};
    (void)state;

    for (unsigned op = 0; op < 256; op++) {
        bool known = op <= 0x1a || (op >= 0x1c && op <= 0x1e) || (op >= 0x20 && op <= 0x24);
        char name[64];
        if (known) {
            continue;
        }
        snprintf(name, sizeof name, "unknown_%02x", op);
        /* swallowed: bodylen bytes after the key, so extras and key count twice */
        run_pk(&t, name, &(struct pk){.op = (uint8_t)op, .opaque = op}, &LIM,
               ERR(.err = PROTO_BIN_UNKNOWN_COMMAND, .consumed = 24));
        snprintf(name, sizeof name, "unknown_%02x_with_body", op);
        run_pk(&t, name, &(struct pk){.op = (uint8_t)op, .key = "abc", .nkey = 3,
                                      .ext = "EXTR", .next = 4, .val = "xy", .nval = 2},
               &LIM, ERR(.err = PROTO_BIN_UNKNOWN_COMMAND, .consumed = 31, .swallow = 9));
    }
    run_pk(&t, "verbosity_is_unknown", &(struct pk){.op = PROTO_BIN_VERBOSITY,
                                                    .ext = touch_extras(1), .next = 4},
           &LIM, ERR(.err = PROTO_BIN_UNKNOWN_COMMAND, .consumed = 28, .swallow = 4));
    run_pk(&t, "unknown_2gib_body", &(struct pk){.op = 0x60, .lie_bodylen = true,
                                                 .bodylen = 0x80000000u},
           &LIM, ERR(.err = PROTO_BIN_UNKNOWN_COMMAND, .consumed = 24, .swallow = 0x80000000u));
    finish(&t);
}

static void test_too_large(void **state)
{
    struct tctx t = {0};
    unsigned char *v = malloc(MIB + 16);
    (void)state;
    assert_non_null(v);
    memset(v, 'x', MIB + 16);

    run_pk(&t, "set_fits_exactly", &(struct pk){.op = PROTO_BIN_SET, .ext = set_extras(0, 0),
                                                .next = 8, .key = "b", .nkey = 1, .val = v,
                                                .nval = FIT_MAX_1},
           &LIM, REQ(.cmd = PROTO_CMD_SET, .key_at = 32, .nkey = 1, .data_at = 33,
                     .ndata = FIT_MAX_1, .consumed = 33 + FIT_MAX_1));
    run_pk(&t, "set_one_over", &(struct pk){.op = PROTO_BIN_SET, .ext = set_extras(0, 0),
                                            .next = 8, .key = "b", .nkey = 1, .val = v,
                                            .nval = FIT_MAX_1 + 1},
           &LIM, ERR(.err = PROTO_BIN_E2BIG, .consumed = 33, .swallow = FIT_MAX_1 + 1,
                     .too_large = true, .unlink = true, .key_at = 32, .nkey = 1));
    /* flags take 4 more bytes of the item, as in memcached */
    run_pk(&t, "set_flags_one_over", &(struct pk){.op = PROTO_BIN_SETQ, .ext = set_extras(1, 0),
                                                  .next = 8, .key = "b", .nkey = 1, .val = v,
                                                  .nval = FIT_MAX_1 - 3},
           &LIM, ERR(.err = PROTO_BIN_E2BIG, .consumed = 33, .swallow = FIT_MAX_1 - 3,
                     .too_large = true, .unlink = true, .key_at = 32, .nkey = 1));
    run_pk(&t, "add_over_no_unlink", &(struct pk){.op = PROTO_BIN_ADD, .ext = set_extras(0, 0),
                                                  .next = 8, .key = "b", .nkey = 1, .val = v,
                                                  .nval = MIB},
           &LIM, ERR(.err = PROTO_BIN_E2BIG, .consumed = 33, .swallow = MIB,
                     .too_large = true));
    run_pk(&t, "cas_set_over_unlinks", &(struct pk){.op = PROTO_BIN_SET, .ext = set_extras(0, 0),
                                                    .next = 8, .key = "b", .nkey = 1, .val = v,
                                                    .nval = MIB, .cas = 7},
           &LIM, ERR(.err = PROTO_BIN_E2BIG, .consumed = 33, .swallow = MIB, .too_large = true,
                     .unlink = true, .key_at = 32, .nkey = 1));
    run_pk(&t, "append_over", &(struct pk){.op = PROTO_BIN_APPENDQ, .key = "b", .nkey = 1,
                                           .val = v, .nval = FIT_MAX_1 + 1},
           &LIM, ERR(.err = PROTO_BIN_E2BIG, .consumed = 25, .swallow = FIT_MAX_1 + 1,
                     .too_large = true));
    /* only the header, extras and key are needed to refuse it: nothing waits for the body */
    static const struct {
        const char *name;
        uint32_t bodylen;
    } huge[] = {{"set_2gib", 0x80000000u}, {"set_4gib", 0xffffffffu}, {"set_2mib", 2 * MIB}};
    for (size_t i = 0; i < 3; i++) {
        struct pk p = {.op = PROTO_BIN_SET, .ext = set_extras(0, 0), .next = 8, .key = "big",
                       .nkey = 3, .lie_bodylen = true, .bodylen = huge[i].bodylen};
        run_pk(&t, huge[i].name, &p, &LIM,
               ERR(.err = PROTO_BIN_E2BIG, .consumed = 35, .swallow = huge[i].bodylen - 11,
                   .too_large = true, .unlink = true, .key_at = 32, .nkey = 3));
    }
    struct pk p = {.op = PROTO_BIN_PREPEND, .key = "big", .nkey = 3, .lie_bodylen = true,
                   .bodylen = 0xffffffffu};
    run_pk(&t, "prepend_4gib", &p, &LIM,
           ERR(.err = PROTO_BIN_E2BIG, .consumed = 27, .swallow = 0xffffffffu - 3,
               .too_large = true));
    /* a larger -I lets it through: NEED_MORE for the whole value */
    const struct proto_limits lim2 = {.item_max = 2 * MIB};
    p = (struct pk){.op = PROTO_BIN_SET, .ext = set_extras(0, 0), .next = 8, .key = "b",
                    .nkey = 1, .lie_bodylen = true, .bodylen = MIB + 9};
    run_pk(&t, "set_needs_whole_value", &p, &lim2,
           &(struct want){.status = PROTO_NEED_MORE, .consumed = 24 + MIB + 9});
    free(v);
    finish(&t);
}

static void test_hostile_headers(void **state)
{
    struct tctx t = {0};
    unsigned char h[PROTO_BIN_HEADER];
    (void)state;

    size_t n = mk(&(struct pk){.op = PROTO_BIN_NOOP});
    memcpy(h, scratch, n);
    for (size_t p = 0; p < PROTO_BIN_HEADER; p++) {
        char name[32];
        snprintf(name, sizeof name, "truncated_%zu", p);
        run_case(&t, name, h, p, &LIM, &(struct want){.status = PROTO_NEED_MORE, .consumed = 24});
    }
    static const uint8_t magics[] = {0x81, 0x00, 0x7f, 0xff, 'g', 0x18};
    for (size_t i = 0; i < sizeof magics; i++) {
        char name[32];
        snprintf(name, sizeof name, "bad_magic_%02x", magics[i]);
        run_pk(&t, name, &(struct pk){.op = PROTO_BIN_NOOP, .magic = magics[i],
                                      .raw_magic = true},
               &LIM, CLOSE);
    }
    /* a header announcing key and extras waits for them, not for the whole body */
    run_pk(&t, "header_waits_for_key",
           &(struct pk){.op = PROTO_BIN_GET, .lie_keylen = true, .keylen = 100,
                        .lie_bodylen = true, .bodylen = 100},
           &LIM, &(struct want){.status = PROTO_NEED_MORE, .consumed = 124});
    run_pk(&t, "header_waits_for_extras",
           &(struct pk){.op = PROTO_BIN_INCREMENT, .lie_extlen = true, .extlen = 20,
                        .lie_bodylen = true, .bodylen = 21},
           &LIM, &(struct want){.status = PROTO_NEED_MORE, .consumed = 44});
    finish(&t);
}

static void test_auth(void **state)
{
    struct tctx t = {0};
    static char v[MIB];
    (void)state;

    static const uint8_t refused[] = {
        PROTO_BIN_GET, PROTO_BIN_GETQ, PROTO_BIN_SET, PROTO_BIN_NOOP, PROTO_BIN_QUIT,
        PROTO_BIN_QUITQ, PROTO_BIN_STAT, PROTO_BIN_FLUSH, PROTO_BIN_TOUCH, 0x60, 0xff,
        PROTO_BIN_VERBOSITY,
    };
    for (size_t i = 0; i < sizeof refused; i++) {
        char name[48];
        snprintf(name, sizeof name, "unauthenticated_%02x", refused[i]);
        run_pk(&t, name, &(struct pk){.op = refused[i], .opaque = 42}, &LIM_AUTH,
               FATAL(PROTO_BIN_AUTH_ERROR, 24));
    }
    /* refused before the key length or the shape is looked at */
    run_pk(&t, "unauthenticated_key_251", &(struct pk){.op = PROTO_BIN_GET, .key = v,
                                                       .nkey = 251},
           &LIM_AUTH, FATAL(PROTO_BIN_AUTH_ERROR, 275));
    run_pk(&t, "unauthenticated_noop_with_body", &(struct pk){.op = PROTO_BIN_NOOP, .val = "x",
                                                              .nval = 1},
           &LIM_AUTH, FATAL(PROTO_BIN_AUTH_ERROR, 24));
    /* version and SASL pass; the shape rules still apply to them */
    run_pk(&t, "unauthenticated_version", &(struct pk){.op = PROTO_BIN_VERSION}, &LIM_AUTH,
           REQ(.cmd = PROTO_CMD_VERSION, .consumed = 24));
    run_pk(&t, "unauthenticated_version_with_body", &(struct pk){.op = PROTO_BIN_VERSION,
                                                                 .val = "x", .nval = 1},
           &LIM_AUTH, FATAL(PROTO_BIN_EINVAL, 24));
    run_pk(&t, "authenticated_get", &(struct pk){.op = PROTO_BIN_GET, .key = "k", .nkey = 1},
           &LIM_AUTHED, REQ(.cmd = PROTO_CMD_GET, .value = true, .key_at = 24, .nkey = 1,
                            .consumed = 25));
    /* SASL with auth off: "Unknown command", the response swallowed */
    run_pk(&t, "sasl_list_auth_off", &(struct pk){.op = PROTO_BIN_SASL_LIST_MECHS}, &LIM,
           ERR(.err = PROTO_BIN_UNKNOWN_COMMAND, .consumed = 24));
    run_pk(&t, "sasl_auth_auth_off", &(struct pk){.op = PROTO_BIN_SASL_AUTH, .key = "PLAIN",
                                                  .nkey = 5, .val = "\0u\0p", .nval = 4},
           &LIM, ERR(.err = PROTO_BIN_UNKNOWN_COMMAND, .consumed = 29, .swallow = 4));
    run_pk(&t, "sasl_step_auth_off_2gib",
           &(struct pk){.op = PROTO_BIN_SASL_STEP, .key = "PLAIN", .nkey = 5,
                        .lie_bodylen = true, .bodylen = 0x80000000u},
           &LIM, ERR(.err = PROTO_BIN_UNKNOWN_COMMAND, .consumed = 29,
                     .swallow = 0x80000000u - 5));
    /* SASL with auth on: a long mechanism name and a huge response are refused, no close */
    run_pk(&t, "sasl_mech_32", &(struct pk){.op = PROTO_BIN_SASL_AUTH, .key = v, .nkey = 32,
                                            .val = "x", .nval = 1},
           &LIM_AUTH, REQ(.cmd = PROTO_CMD_SASL_AUTH, .key_at = 24, .nkey = 32, .data_at = 56,
                          .ndata = 1, .consumed = 57));
    run_pk(&t, "sasl_mech_33", &(struct pk){.op = PROTO_BIN_SASL_AUTH, .key = v, .nkey = 33,
                                            .val = "xy", .nval = 2},
           &LIM_AUTH, ERR(.err = PROTO_BIN_EINVAL, .consumed = 57, .swallow = 2));
    run_pk(&t, "sasl_response_too_large",
           &(struct pk){.op = PROTO_BIN_SASL_STEP, .key = "PLAIN", .nkey = 5,
                        .lie_bodylen = true, .bodylen = 0xffffffffu},
           &LIM_AUTH, ERR(.err = PROTO_BIN_ENOMEM, .consumed = 29, .swallow = 0xfffffffau));
    finish(&t);
}

/* Several requests in one buffer: each parse consumes exactly one. */
static void test_pipelined(void **state)
{
    struct outcome o;
    unsigned char *buf = malloc(4096);
    size_t n = 0;
    (void)state;
    assert_non_null(buf);

    n += build(buf + n, &(struct pk){.op = PROTO_BIN_SETQ, .ext = set_extras(1, 2), .next = 8,
                                     .key = "a", .nkey = 1, .val = "vv", .nval = 2});
    n += build(buf + n, &(struct pk){.op = PROTO_BIN_GETKQ, .key = "a", .nkey = 1});
    n += build(buf + n, &(struct pk){.op = PROTO_BIN_STAT, .key = "reset", .nkey = 5,
                                     .val = "", .nval = 0});
    n += build(buf + n, &(struct pk){.op = 0x77, .opaque = 1});
    n += build(buf + n, &(struct pk){.op = PROTO_BIN_NOOP, .opaque = 2});
    static const enum proto_status st[] = {PROTO_REQUEST, PROTO_REQUEST, PROTO_REQUEST,
                                           PROTO_ERROR, PROTO_REQUEST};
    static const enum proto_cmd cmd[] = {PROTO_CMD_SET, PROTO_CMD_GET, PROTO_CMD_STATS,
                                         PROTO_CMD_NONE, PROTO_CMD_NOOP};
    static const size_t used[] = {35, 25, 29, 24, 24};
    size_t pos = 0;
    for (size_t i = 0; i < 5; i++) {
        parse(&o, buf + pos, n - pos, &LIM);
        assert_int_equal(o.res.status, st[i]);
        assert_int_equal(o.res.consumed, used[i]);
        if (st[i] == PROTO_REQUEST) {
            assert_int_equal(o.req.cmd, cmd[i]);
        }
        pos += o.res.consumed;
    }
    assert_int_equal(pos, n);
    free(buf);
}

static void test_encoders(void **state)
{
    unsigned char out[PROTO_PACKET_MAX];
    (void)state;

    assert_int_equal(proto_binary_header(out, 0x0c, 0x0102, 4, 0x0304, 0x05060708, 0xa1b2c3d4,
                                         0x1122334455667788ULL), 24);
    static const unsigned char want[24] = {0x81, 0x0c, 0x03, 0x04, 4,    0,    0x01, 0x02,
                                           0x05, 0x06, 0x07, 0x08, 0xa1, 0xb2, 0xc3, 0xd4,
                                           0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};
    assert_memory_equal(out, want, 24);

    static const struct {
        uint16_t status;
        const char *text;
    } texts[] = {
        {PROTO_BIN_KEY_ENOENT, "Not found"},
        {PROTO_BIN_KEY_EEXISTS, "Data exists for key."},
        {PROTO_BIN_E2BIG, "Too large."},
        {PROTO_BIN_EINVAL, "Invalid arguments"},
        {PROTO_BIN_NOT_STORED, "Not stored."},
        {PROTO_BIN_DELTA_BADVAL, "Non-numeric server-side value for incr or decr"},
        {PROTO_BIN_AUTH_ERROR, "Auth failure."},
        {PROTO_BIN_UNKNOWN_COMMAND, "Unknown command"},
        {PROTO_BIN_ENOMEM, "Out of memory"},
        {PROTO_BIN_SUCCESS, ""},
        {PROTO_BIN_AUTH_CONTINUE, ""},
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        size_t n = strlen(texts[i].text);
        assert_string_equal(proto_binary_status_text(texts[i].status), texts[i].text);
        assert_int_equal(proto_binary_error(out, 0x15, texts[i].status, 0xfeedf00d), 24 + n);
        assert_true(n + 24 <= PROTO_PACKET_MAX);
        assert_int_equal(out[0], 0x81);
        assert_int_equal(out[1], 0x15);
        assert_int_equal((out[6] << 8) | out[7], texts[i].status);
        assert_int_equal(out[11], n);
        assert_memory_equal(out + 12, "\xfe\xed\xf0\x0d", 4);
        assert_memory_equal(out + 24, texts[i].text, n);
    }
}

/* Random headers and bodies: never a crash, a read past len, or an outcome that lies. */
static void test_hostile_random(void **state)
{
    struct tctx t = {0};
    struct outcome o;
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    unsigned char *buf = malloc(70000);
    (void)state;
    assert_non_null(buf);

    begin_case(&t, "random");
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t len = (size_t)(x % 400);
        for (size_t j = 0; j < len; j++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[j] = (unsigned char)x;
        }
        if (len > 0 && (x & 3) != 0) {
            buf[0] = 0x80;
        }
        if (len >= 12 && (x & 12) != 0) {
            /* small lengths, so that the key and body are often in the buffer */
            buf[2] = 0;
            buf[3] &= 0x3f;
            buf[4] &= 0x1f;
            buf[8] = buf[9] = buf[10] = 0;
        }
        const struct proto_limits *lim = (x & 0x30) == 0 ? &LIM_AUTH : &LIM;
        parse(&o, buf, len, lim);
        switch (o.res.status) {
        case PROTO_NEED_MORE:
            CHECK(&t, o.res.need > len, "need %zu with %zu bytes", o.res.need, len);
            break;
        case PROTO_REQUEST:
        case PROTO_ERROR:
            CHECK(&t, o.res.consumed >= 24 && o.res.consumed <= len, "consumed %zu of %zu",
                  o.res.consumed, len);
            if (o.res.status == PROTO_ERROR) {
                CHECK(&t, o.res.npacket >= 24 && o.res.npacket <= PROTO_PACKET_MAX &&
                              o.res.packet[0] == 0x81 && o.res.packet[1] == buf[1] &&
                              memcmp(o.res.packet + 12, buf + 12, 4) == 0,
                      "bad error packet");
            } else {
                CHECK(&t, o.req.nkey <= PROTO_KEY_MAX, "key of %zu bytes", o.req.nkey);
                CHECK(&t, o.req.nkey == 0 || (o.req.key >= o.buf &&
                                              o.req.key + o.req.nkey <= o.buf + len),
                      "key outside the input");
                CHECK(&t, o.req.ndata == 0 || (o.req.data >= o.buf &&
                                               o.req.data + o.req.ndata <= o.buf + len),
                      "data outside the input");
            }
            break;
        case PROTO_CLOSE:
            CHECK(&t, len >= 24, "closed on %zu bytes", len);
            break;
        default:
            CHECK(&t, false, "status %d", o.res.status);
        }
        if (t.failures > 20) {
            break;
        }
    }
    free(buf);
    finish(&t);
}

static int group_setup(void **state)
{
    (void)state;
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    arena_len = (SCRATCH_MAX + 128 + page_size - 1) / page_size * page_size;
    void *m = mmap(NULL, arena_len + page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        return -1;
    }
    arena = m;
    if (mprotect(arena + arena_len, page_size, PROT_NONE) != 0) {
        return -1;
    }
    scratch = malloc(SCRATCH_MAX);
    return scratch == NULL ? -1 : 0;
}

static int group_teardown(void **state)
{
    (void)state;
    free(scratch);
    munmap(arena, arena_len + page_size);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_opcode),
        cmocka_unit_test(test_extra_body_is_not_consumed),
        cmocka_unit_test(test_malformed_shapes),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_lengths_that_disagree),
        cmocka_unit_test(test_unknown_opcodes),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_hostile_headers),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_encoders),
        cmocka_unit_test(test_hostile_random),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
