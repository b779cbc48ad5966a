/* libFuzzer target for the binary protocol parser: no crash, and the contract conn.c relies on. */

/*
 * The input is a client's byte stream. It is parsed the way daemon/conn.c drives the parser
 * (parse, drop 'consumed', skip 'swallow', stop at NEED_MORE or CLOSE) with four limits: -I at
 * memcached's default and tiny (so "Too large." also meets whole values), and SASL off, on and
 * authenticated. Every result is checked against what the connection relies on and against
 * the header it came from. The first requests of a stream are also parsed again from prefixes,
 * each copied into an allocation of exactly its length so that ASan catches any read past
 * 'len': a prefix may only ask for more bytes, or decide exactly what the whole stream decides.
 * A broken property prints its line and traps, so libFuzzer saves the input like any crash.
 * Everything is a pure function of the input.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/binary.h"
#include "protocol/request.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A stream can hold at most this many requests of 24 bytes; a bound against a parser that
 * would consume nothing and loop. */
#define MAX_REQUESTS 1000

/* The header fields, decoded independently of the parser. */
struct header {
    uint8_t magic;
    uint8_t opcode;
    size_t keylen;
    size_t extlen;
    size_t bodylen;
    uint32_t opaque;
};

static uint32_t be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static struct header decode(const char *buf)
{
    const unsigned char *h = (const unsigned char *)buf;
    struct header x = {
        .magic = h[0],
        .opcode = h[1],
        .keylen = ((size_t)h[2] << 8) | h[3],
        .extlen = h[4],
        .bodylen = be32(h + 8),
        .opaque = be32(h + 12),
    };
    return x;
}

/* Opcodes whose request carries a value that is consumed with it. */
static bool carries_value(enum proto_cmd cmd)
{
    switch (cmd) {
    case PROTO_CMD_SET:
    case PROTO_CMD_ADD:
    case PROTO_CMD_REPLACE:
    case PROTO_CMD_CAS:
    case PROTO_CMD_APPEND:
    case PROTO_CMD_PREPEND:
    case PROTO_CMD_SASL_AUTH:
    case PROTO_CMD_SASL_STEP:
        return true;
    default:
        return false;
    }
}

static void check_packet(const struct outcome *o, const struct header *h)
{
    const unsigned char *p = o->res.packet;
    size_t n = o->res.npacket;

    CHECK(n >= PROTO_BIN_HEADER && n <= PROTO_PACKET_MAX);
    CHECK(p[0] == PROTO_BIN_MAGIC_RESPONSE && p[1] == h->opcode);
    CHECK(p[2] == 0 && p[3] == 0 && p[4] == 0 && p[5] == 0);
    uint16_t status = (uint16_t)((p[6] << 8) | p[7]);
    CHECK(status != PROTO_BIN_SUCCESS);
    CHECK(be32(p + 8) == n - PROTO_BIN_HEADER);
    CHECK(be32(p + 12) == h->opaque);
    for (int i = 16; i < 24; i++) {
        CHECK(p[i] == 0);
    }
    const char *msg = proto_binary_status_text(status);
    CHECK(strlen(msg) == n - PROTO_BIN_HEADER && memcmp(p + 24, msg, strlen(msg)) == 0);
}

/* Properties of one result on buf[0..len), on its own. */
static void check_outcome(const char *buf, size_t len, const struct outcome *o,
                          const struct proto_limits *lim)
{
    const struct proto_request *req = &o->req;
    const struct proto_result *res = &o->res;

    CHECK(res->consumed <= len);
    switch (res->status) {
    case PROTO_NEED_MORE:
        CHECK(res->consumed == 0);
        CHECK(res->need > len);
        return;
    case PROTO_CLOSE: {
        CHECK(len >= PROTO_BIN_HEADER);
        struct header h = decode(buf);
        CHECK(h.magic != PROTO_BIN_MAGIC_REQUEST ||
              PROTO_BIN_HEADER + h.extlen + h.keylen > PROTO_BIN_HEAD_MAX);
        return;
    }
    case PROTO_REQUEST:
    case PROTO_ERROR:
        break;
    default:
        fail(__LINE__, "status out of range");
    }

    CHECK(len >= PROTO_BIN_HEADER);
    struct header h = decode(buf);
    size_t head = PROTO_BIN_HEADER + h.extlen + h.keylen;
    CHECK(h.magic == PROTO_BIN_MAGIC_REQUEST);
    CHECK(head <= PROTO_BIN_HEAD_MAX);
    CHECK(req->bin.opcode == h.opcode && req->bin.opaque == h.opaque);
    CHECK(res->need == 0);
    /* a decision takes the header, extras and key at least: never 0 bytes (no endless loop) */
    CHECK(res->consumed >= head);

    size_t c = res->consumed;
    CHECK(field_within(req->key, req->nkey, buf, c));
    CHECK(field_within(req->data, req->ndata, buf, c));
    CHECK(field_within(req->arg, req->narg, buf, c));
    CHECK(req->keys == NULL && req->key2 == NULL);

    if (res->status == PROTO_ERROR) {
        CHECK(res->error == NULL);
        check_packet(o, &h);
        CHECK(res->consumed == head);
        CHECK(!res->close || res->swallow == 0);
        CHECK(!res->unlink_key || (req->nkey >= 1 && req->nkey <= PROTO_KEY_MAX &&
                                   req->key == buf + PROTO_BIN_HEADER + h.extlen));
        /* a counted swallow is a value over -I: the rest of the body */
        CHECK(res->swallow == 0 || res->swallow_uncounted ||
              res->swallow + h.extlen + h.keylen == h.bodylen);
        /* a swallow never reaches past the announced body, bar memcached's unknown-opcode
         * rule that counts the extras and key twice */
        CHECK(res->swallow <= h.bodylen);
        return;
    }

    /* PROTO_REQUEST */
    CHECK(res->swallow == 0 && !res->unlink_key && !res->close && res->npacket == 0);
    CHECK(req->cmd != PROTO_CMD_NONE);
    CHECK(h.keylen + h.extlen <= h.bodylen);
    CHECK(h.keylen <= PROTO_KEY_MAX);
    CHECK(!lim->auth || lim->authenticated || h.opcode == PROTO_BIN_VERSION ||
          req->cmd == PROTO_CMD_SASL_LIST || req->cmd == PROTO_CMD_SASL_AUTH ||
          req->cmd == PROTO_CMD_SASL_STEP);
    CHECK(lim->auth || (req->cmd != PROTO_CMD_SASL_LIST && req->cmd != PROTO_CMD_SASL_AUTH &&
                        req->cmd != PROTO_CMD_SASL_STEP));
    CHECK(req->nkey == h.keylen);
    CHECK(req->nkey == 0 || req->key == buf + PROTO_BIN_HEADER + h.extlen);
    if (carries_value(req->cmd)) {
        CHECK(res->consumed == PROTO_BIN_HEADER + h.bodylen);
        CHECK(req->ndata == h.bodylen - h.extlen - h.keylen);
        CHECK(req->ndata == 0 || req->data == buf + head);
        CHECK(req->nkey >= 1);
    } else {
        /* bytes past the key stay in the stream, as in memcached */
        CHECK(res->consumed == head && req->ndata == 0);
    }
    if (req->cmd == PROTO_CMD_CAS) {
        CHECK(req->cas != 0);
    }
    if (req->cmd == PROTO_CMD_STATS) {
        CHECK(req->narg == req->nkey);
    }
}

static bool same_outcome(const struct outcome *a, const char *abuf, const struct outcome *b,
                         const char *bbuf)
{
    const struct proto_request *x = &a->req;
    const struct proto_request *y = &b->req;
    const struct proto_result *r = &a->res;
    const struct proto_result *s = &b->res;

    if (r->status != s->status || r->consumed != s->consumed || r->swallow != s->swallow ||
        r->unlink_key != s->unlink_key || r->close != s->close ||
        r->swallow_uncounted != s->swallow_uncounted || r->npacket != s->npacket ||
        memcmp(r->packet, s->packet, r->npacket) != 0) {
        return false;
    }
    return x->cmd == y->cmd && x->noreply == y->noreply && x->nkey == y->nkey &&
           same_ptr(x->key, abuf, y->key, bbuf) && x->flags == y->flags &&
           x->exptime == y->exptime && x->cas == y->cas && x->delta == y->delta &&
           x->ndata == y->ndata && same_ptr(x->data, abuf, y->data, bbuf) &&
           x->delay == y->delay && x->narg == y->narg && same_ptr(x->arg, abuf, y->arg, bbuf) &&
           x->bin.opcode == y->bin.opcode && x->bin.opaque == y->bin.opaque &&
           x->bin.with_key == y->bin.with_key && x->bin.value == y->bin.value &&
           x->bin.initial == y->bin.initial && x->bin.create_exptime == y->bin.create_exptime;
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
    proto_binary_parse(copy, k, lim, &p.req, &p.res);
    check_outcome(copy, k, &p, lim);

    enum proto_status fs = full->res.status;
    bool full_decided = fs == PROTO_REQUEST || fs == PROTO_ERROR;
    switch (p.res.status) {
    case PROTO_REQUEST:
    case PROTO_ERROR:
        CHECK(same_outcome(&p, copy, full, buf));
        break;
    case PROTO_NEED_MORE:
        if (full_decided) {
            CHECK(k < full->res.consumed);
            CHECK(p.res.need <= full->res.consumed);
        } else if (fs == PROTO_NEED_MORE) {
            CHECK(p.res.need <= full->res.need);
        } else {
            /* the header alone decides a close */
            CHECK(k < PROTO_BIN_HEADER);
        }
        break;
    case PROTO_CLOSE:
        CHECK(fs == PROTO_CLOSE);
        break;
    }
    if (full_decided && k == full->res.consumed) {
        CHECK(p.res.status == fs);
    }
    free(copy);
}

static void check_prefixes(const char *buf, size_t len, const struct outcome *full,
                           const struct proto_limits *lim)
{
    if (full->res.status == PROTO_REQUEST || full->res.status == PROTO_ERROR) {
        check_prefix(buf, full->res.consumed, full, lim);
        check_prefix(buf, full->res.consumed - 1, full, lim);
    }
    if (len >= PROTO_BIN_HEADER) {
        check_prefix(buf, PROTO_BIN_HEADER - 1, full, lim);
        check_prefix(buf, PROTO_BIN_HEADER, full, lim);
    }
    uint64_t h = input_hash(buf, len);
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
        CHECK(nreq < MAX_REQUESTS);

        const char *p = buf + off;
        size_t n = len - off;
        struct outcome full;
        proto_binary_parse(p, n, lim, &full.req, &full.res);
        check_outcome(p, n, &full, lim);
        if (nreq < SPLIT_REQUESTS) {
            check_prefixes(p, n, &full, lim);
        }
        nreq++;
        if (full.res.status != PROTO_REQUEST && full.res.status != PROTO_ERROR) {
            break;
        }
        if (full.res.close) {
            break;      /* the connection closes after this reply */
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
        {.item_max = ITEM_MAX_DEFAULT, .auth = true},
        {.item_max = TINY_ITEM_MAX, .auth = true, .authenticated = true},
    };

    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        run_stream((const char *)data, size, &limits[i]);
    }
    return 0;
}
