/* libFuzzer target for the meta command parser: no crash, and what the meta executor relies on. */

/*
 * The input is a client's byte stream, parsed as daemon/conn.c drives proto_text_parse (which
 * hands two-letter m commands to proto_meta_parse): parse, drop 'consumed', skip 'swallow',
 * stop at NEED_MORE or CLOSE; once with memcached's default -I and once with a tiny one. Each
 * meta result is checked against what daemon/dispatch_meta.c assumes: a key of 1..250 bytes
 * inside the consumed bytes or (base64) inside the request, flag tokens that walk cleanly
 * inside the line, an ms value that fits -I and ends in "\r\n", modes and errors memcached
 * knows. The first requests are parsed again from prefixes copied into allocations of exactly
 * their length (ASan catches a read past 'len'): a prefix may only ask for more, or decide what
 * the whole stream decides. A broken property prints its line and traps. The fuzz_text target
 * holds the same stream to the text protocol's rules; this one adds the meta ones.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/meta.h"
#include "protocol/request.h"
#include "protocol/text.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool is_meta(enum proto_cmd cmd)
{
    return cmd == PROTO_CMD_META_GET || cmd == PROTO_CMD_META_SET ||
           cmd == PROTO_CMD_META_DELETE || cmd == PROTO_CMD_META_ARITH ||
           cmd == PROTO_CMD_META_NOOP || cmd == PROTO_CMD_META_DEBUG;
}

/* The only error lines a meta command may get (memcached 1.6.18's). */
static bool known_meta_error(const char *e)
{
    static const char *const known[] = {
        "ERROR",
        "CLIENT_ERROR bad command line format",
        "CLIENT_ERROR duplicate flag",
        "CLIENT_ERROR invalid flag",
        "CLIENT_ERROR bad token in command line format",
        "CLIENT_ERROR incorrect length for M token",
        "CLIENT_ERROR invalid numeric delta value",
        "CLIENT_ERROR invalid numeric initial value",
        "CLIENT_ERROR error decoding key",
        "CLIENT_ERROR opaque token too long",
        "CLIENT_ERROR options flags are too long",
        "CLIENT_ERROR options flags too long",
        "CLIENT_ERROR invalid or duplicate flag",
        "CLIENT_ERROR invalid mode for ms M token",
        "CLIENT_ERROR invalid mode for ma M token",
        "CLIENT_ERROR bad data chunk",
        "SERVER_ERROR object too large for cache",
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (strcmp(e, known[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* A two-letter m command line the meta parser owns (what proto_text_parse routes to it). */
static bool meta_line(const char *buf, size_t len)
{
    size_t i = 0;

    while (i < len && buf[i] == ' ') {
        i++;
    }
    /* the line ends at "\r\n", "\n" or an embedded NUL (as in memcached) */
    return len - i >= 3 && buf[i] == 'm' && buf[i + 1] != '\0' &&
           strchr("gsdnae", buf[i + 1]) != NULL &&
           (buf[i + 2] == ' ' || buf[i + 2] == '\r' || buf[i + 2] == '\n' || buf[i + 2] == '\0');
}

/* Walks the flags as the executor does and checks the walk. */
static void walk_flags(const struct proto_request *req, const char *line, size_t line_len)
{
    size_t pos = 0;
    size_t prev = 0;
    size_t count = 0;
    uint64_t seen = 0;
    const char *tok;
    size_t ntok;
    bool long_opaque = false;

    CHECK(req->meta.nflags == 0 || within(req->meta.flags, req->meta.nflags, line, line_len));
    while (proto_meta_next_flag(req, &pos, &tok, &ntok)) {
        CHECK(pos > prev && pos <= req->meta.nflags);
        CHECK(ntok >= 1 && within(tok, ntok, req->meta.flags, req->meta.nflags));
        CHECK(memchr(tok, ' ', ntok) == NULL);
        uint64_t bit = proto_meta_bit(tok[0]);
        if (req->cmd != PROTO_CMD_META_DEBUG) {
            /* the parser refuses a token that is not a known letter, and any repeat */
            CHECK(bit != 0 && (seen & bit) == 0);
            CHECK(proto_meta_has(req, tok[0]));
        }
        seen |= bit;
        long_opaque |= tok[0] == 'O' && ntok > PROTO_META_OPAQUE_MAX;
        count++;
        prev = pos;
    }
    CHECK(pos == req->meta.nflags || req->meta.nflags == 0);
    if (req->cmd != PROTO_CMD_META_DEBUG) {
        CHECK(count <= PROTO_META_TOKENS_MAX - 3);
        CHECK(seen == req->meta.seen);
        /* only mg and ma answer a long opaque after running; ms and md refuse it first */
        CHECK(long_opaque == (req->meta.late_error != NULL));
        CHECK(!long_opaque || req->cmd == PROTO_CMD_META_GET ||
              req->cmd == PROTO_CMD_META_ARITH);
    }
}

static void check_key(const struct proto_request *req, const char *buf, size_t c)
{
    CHECK(req->nkey >= 1 && req->nkey <= PROTO_KEY_MAX);
    if (req->meta.key_binary) {
        CHECK(within(req->key, req->nkey, req->meta.key_buf, sizeof(req->meta.key_buf)));
        /* what 'k' sends back decodes to the same key */
        char enc[4 * ((PROTO_META_KEY_BUF + 2) / 3)];
        unsigned char back[PROTO_META_KEY_BUF];
        size_t ne = proto_base64_encode((const unsigned char *)req->key, req->nkey, enc);
        CHECK(ne <= sizeof(enc) && ne <= PROTO_KEY_MAX + 2);
        CHECK(proto_base64_decode(enc, ne, back) == req->nkey);
        CHECK(memcmp(back, req->key, req->nkey) == 0);
    } else {
        CHECK(within(req->key, req->nkey, buf, c));
        CHECK(memchr(req->key, ' ', req->nkey) == NULL);
        for (size_t i = 0; i < req->nkey; i++) {
            unsigned char ch = (unsigned char)req->key[i];
            CHECK(ch >= 0x20 && ch != 0x7f);
        }
    }
}

static void check_outcome(const char *buf, size_t len, const struct outcome *o,
                          const struct proto_limits *lim)
{
    const struct proto_request *req = &o->req;
    const struct proto_result *res = &o->res;

    CHECK(res->consumed <= len);
    if (res->status == PROTO_NEED_MORE) {
        CHECK(res->consumed == 0 && (res->need == 0 || res->need > len));
        return;
    }
    if (res->status == PROTO_CLOSE || !meta_line(buf, len)) {
        return;     /* text commands are fuzz_text's */
    }
    const char *nl = memchr(buf, '\n', len);
    CHECK(nl != NULL);
    size_t line_total = (size_t)(nl - buf) + 1;
    size_t line_len = line_total - 1;
    CHECK(res->consumed >= line_total);
    if (res->status == PROTO_ERROR) {
        CHECK(res->error != NULL && known_meta_error(res->error));
        CHECK(!req->noreply);   /* meta errors are never suppressed */
        if (res->swallow > 0 || res->unlink_key) {
            CHECK(res->consumed == line_total && res->swallow >= 2);
        }
        if (res->unlink_key) {
            CHECK(strcmp(res->error, "SERVER_ERROR object too large for cache") == 0);
            check_key(req, buf, res->consumed);
        }
        return;
    }
    CHECK(res->status == PROTO_REQUEST);
    CHECK(is_meta(req->cmd));
    CHECK(res->swallow == 0 && !res->unlink_key && !req->noreply);
    if (req->cmd == PROTO_CMD_META_NOOP) {
        CHECK(res->consumed == line_total);
        return;
    }
    check_key(req, buf, res->consumed);
    walk_flags(req, buf, line_len);
    if (req->cmd == PROTO_CMD_META_SET) {
        CHECK(req->data == buf + line_total);
        CHECK(req->ndata + 2 == res->consumed - line_total);
        CHECK(req->data[req->ndata] == '\r' && req->data[req->ndata + 1] == '\n');
        CHECK(proto_meta_item_size(req->nkey, req->meta.client_flags, req->ndata) <=
              lim->item_max);
        CHECK(req->meta.mode == 0 || strchr("EAPRS", req->meta.mode) != NULL);
    } else {
        CHECK(res->consumed == line_total && req->data == NULL);
    }
    if (req->cmd == PROTO_CMD_META_ARITH) {
        CHECK(req->meta.mode == 0 || strchr("I+D-", req->meta.mode) != NULL);
        CHECK(proto_meta_has(req, 'D') || req->meta.delta == 1);
    }
    unsigned cls = proto_meta_slab_class(proto_meta_item_size(req->nkey, 0, req->ndata));
    CHECK(cls >= 1 && cls <= 39);
}

static bool same_outcome(const struct outcome *a, const char *abuf, const struct outcome *b,
                         const char *bbuf)
{
    const struct proto_request *x = &a->req;
    const struct proto_request *y = &b->req;

    if (a->res.status != b->res.status || a->res.consumed != b->res.consumed ||
        a->res.swallow != b->res.swallow || a->res.need != b->res.need ||
        a->res.unlink_key != b->res.unlink_key ||
        (a->res.error == NULL) != (b->res.error == NULL) ||
        (a->res.error != NULL && strcmp(a->res.error, b->res.error) != 0)) {
        return false;
    }
    if (x->cmd != y->cmd || x->nkey != y->nkey || x->ndata != y->ndata ||
        x->meta.nflags != y->meta.nflags || x->meta.seen != y->meta.seen ||
        x->meta.mode != y->meta.mode || x->meta.ttl != y->meta.ttl ||
        x->meta.vivify_ttl != y->meta.vivify_ttl || x->meta.recache_ttl != y->meta.recache_ttl ||
        x->meta.client_flags != y->meta.client_flags || x->meta.cas != y->meta.cas ||
        x->meta.has_cas != y->meta.has_cas || x->meta.delta != y->meta.delta ||
        x->meta.initial != y->meta.initial || x->meta.key_binary != y->meta.key_binary ||
        (x->meta.late_error == NULL) != (y->meta.late_error == NULL)) {
        return false;
    }
    if (x->nkey > 0 && memcmp(x->key, y->key, x->nkey) != 0) {
        return false;
    }
    if (x->data != NULL && (y->data == NULL || x->data - abuf != y->data - bbuf)) {
        return false;
    }
    return x->meta.nflags == 0 || x->meta.flags - abuf == y->meta.flags - bbuf;
}

static void check_prefix(const char *buf, size_t k, const struct outcome *full,
                         const struct proto_limits *lim)
{
    char *copy = malloc(k > 0 ? k : 1);
    struct outcome p;

    CHECK(copy != NULL);
    if (k > 0) {
        memcpy(copy, buf, k);
    }
    proto_text_parse(copy, k, lim, &p.req, &p.res);
    check_outcome(copy, k, &p, lim);
    bool full_decided = full->res.status == PROTO_REQUEST || full->res.status == PROTO_ERROR;
    if (p.res.status == PROTO_REQUEST || p.res.status == PROTO_ERROR) {
        CHECK(same_outcome(&p, copy, full, buf));
    } else if (p.res.status == PROTO_NEED_MORE && full_decided) {
        CHECK(k < full->res.consumed);
        CHECK(p.res.need == 0 || p.res.need == full->res.consumed);
    }
    free(copy);
}

static void check_prefixes(const char *buf, size_t len, const struct outcome *full,
                           const struct proto_limits *lim)
{
    const char *nl = memchr(buf, '\n', len);
    uint64_t h = UINT64_C(14695981039346656037) ^ len;

    if (full->res.status == PROTO_REQUEST || full->res.status == PROTO_ERROR) {
        check_prefix(buf, full->res.consumed, full, lim);
        check_prefix(buf, full->res.consumed - 1, full, lim);
    }
    if (nl != NULL) {
        check_prefix(buf, (size_t)(nl - buf), full, lim);
        check_prefix(buf, (size_t)(nl - buf) + 1, full, lim);
    }
    for (size_t i = 0; i < len && i < 64; i++) {
        h = (h ^ (unsigned char)buf[i]) * UINT64_C(1099511628211);
    }
    for (int i = 0; i < HASH_SPLITS; i++) {
        h = mix(h + (uint64_t)i + 1);
        check_prefix(buf, (size_t)(h % ((uint64_t)len + 1)), full, lim);
    }
}

static void run_stream(const char *buf, size_t len, const struct proto_limits *lim)
{
    size_t off = 0;
    size_t swallow = 0;
    int nreq = 0;

    while (off < len) {
        if (swallow > 0) {
            size_t n = len - off < swallow ? len - off : swallow;
            off += n;
            swallow -= n;
            continue;
        }
        struct outcome full;
        proto_text_parse(buf + off, len - off, lim, &full.req, &full.res);
        check_outcome(buf + off, len - off, &full, lim);
        if (nreq < SPLIT_REQUESTS) {
            check_prefixes(buf + off, len - off, &full, lim);
        }
        nreq++;
        if (full.res.status != PROTO_REQUEST && full.res.status != PROTO_ERROR) {
            break;
        }
        off += full.res.consumed;
        swallow = full.res.swallow;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct proto_limits limits[] = {
        {.item_max = ITEM_MAX_DEFAULT},
        {.item_max = TINY_ITEM_MAX},
    };

    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        run_stream((const char *)data, size, &limits[i]);
    }
    return 0;
}
