/* libFuzzer target for the text protocol parser: no crash, and the contract conn.c relies on. */

/*
 * The input is a client's byte stream. It is parsed the way daemon/conn.c drives the parser
 * (parse, drop 'consumed', skip 'swallow', stop at NEED_MORE or CLOSE), once with memcached's
 * default -I and once with a tiny one, so that the "too large" path also sees whole data blocks.
 * Every result is checked against what the connection relies on. The first requests of a stream
 * are also parsed again from prefixes, each copied into an allocation of exactly its length so
 * that ASan catches any read past 'len': a prefix may only ask for more bytes, or decide exactly
 * what the whole stream decides, because the connection parses whatever has arrived so far.
 * A broken property prints its line and traps, so libFuzzer saves the input like any crash.
 * Everything is a pure function of the input: the same input always takes the same path.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/request.h"
#include "protocol/text.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The longest reply line the parser hands out; any longer one means a corrupt pointer. */
#define ERROR_LINE_MAX 200
/* A fixed "now" keeps proto_exptime_to_abs() deterministic. */
#define NOW INT64_C(1700000000)

static bool has_control(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) {
            return true;
        }
    }
    return false;
}

/* What every command that names a key promises its executor. */
static bool key_valid(const char *key, size_t nkey)
{
    return key != NULL && nkey >= 1 && nkey <= PROTO_KEY_MAX && memchr(key, ' ', nkey) == NULL &&
           !has_control(key, nkey);
}

static bool is_storage(enum proto_cmd cmd)
{
    return cmd == PROTO_CMD_SET || cmd == PROTO_CMD_ADD || cmd == PROTO_CMD_REPLACE ||
           cmd == PROTO_CMD_APPEND || cmd == PROTO_CMD_PREPEND || cmd == PROTO_CMD_CAS;
}

/* Counts the space-separated words of s[0..n): what proto_text_next_key must yield. */
static size_t count_words(const char *s, size_t n)
{
    size_t words = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] != ' ' && (i == 0 || s[i - 1] == ' ')) {
            words++;
        }
    }
    return words;
}

/* Walks the keys of a get-family request as the executor does, and encodes a VALUE line for
 * each with the largest numbers, which must fit the buffer size text.h documents. */
static void walk_keys(const struct proto_request *req)
{
    char line[PROTO_KEY_MAX + 64];
    size_t pos = 0;
    size_t prev = 0;
    size_t count = 0;
    const char *key = NULL;
    size_t nkey = 0;
    bool bad = false;

    while (proto_text_next_key(req, &pos, &key, &nkey, &bad)) {
        CHECK(!bad);
        CHECK(pos > prev && pos <= req->nkeys);
        CHECK(within(key, nkey, req->keys, req->nkeys));
        CHECK(key_valid(key, nkey));
        count++;
        CHECK(count <= req->nkeys);
        prev = pos;

        size_t n = proto_text_value_line(line, key, nkey, UINT32_MAX, SIZE_MAX, true, UINT64_MAX);
        CHECK(n <= sizeof(line));
        CHECK(n >= 8 && memcmp(line, "VALUE ", 6) == 0 && memcmp(line + 6, key, nkey) == 0);
        CHECK(line[n - 2] == '\r' && line[n - 1] == '\n');
    }
    CHECK(pos <= req->nkeys);
    if (!bad) {
        CHECK(pos == req->nkeys);
        CHECK(count == count_words(req->keys, req->nkeys));
    }
}

/* incr/decr on a stored value: the data block is as good a value as any. */
static void apply_delta(const struct proto_request *req)
{
    char out[21];
    size_t ndigits = 0;
    size_t padded = 0;
    uint64_t result = 0;
    bool incr = (req->flags & 1) != 0;
    uint64_t delta = req->cas ^ req->flags;

    if (!proto_text_apply_delta(req->data, req->ndata, incr, delta, out, &ndigits, &padded,
                                &result)) {
        return;
    }
    CHECK(ndigits >= 1 && ndigits <= 20);
    CHECK(padded == (ndigits > req->ndata ? ndigits : req->ndata));

    uint64_t back = 0;
    for (size_t i = 0; i < ndigits; i++) {
        CHECK(out[i] >= '0' && out[i] <= '9');
        CHECK(back <= (UINT64_MAX - (uint64_t)(out[i] - '0')) / 10);
        back = back * 10 + (uint64_t)(out[i] - '0');
    }
    CHECK(back == result);
    CHECK(ndigits == 1 || out[0] != '0');
}

static void check_exptime(int64_t exptime)
{
    uint32_t abs_time = proto_exptime_to_abs(exptime, NOW);

    CHECK((exptime == 0) == (abs_time == 0));
    CHECK(exptime >= 0 || abs_time == 1);
}

/* Properties of one result on buf[0..len), on its own. */
static void check_outcome(const char *buf, size_t len, const struct outcome *o)
{
    const struct proto_request *req = &o->req;
    const struct proto_result *res = &o->res;
    const char *nl = memchr(buf, '\n', len);

    CHECK(res->consumed <= len);
    switch (res->status) {
    case PROTO_NEED_MORE:
        CHECK(res->consumed == 0);
        CHECK(res->need == 0 || res->need > len);
        return;
    case PROTO_CLOSE:
        /* an over-long line without '\n', or an HTTP request line */
        CHECK(nl != NULL || len > PROTO_TEXT_LINE_MAX);
        return;
    case PROTO_REQUEST:
    case PROTO_ERROR:
        break;
    default:
        fail(__LINE__, "status out of range");
    }

    /* A decision needs a whole line; 0 consumed would make the connection loop forever. */
    CHECK(nl != NULL);
    size_t line_total = (size_t)(nl - buf) + 1;
    CHECK(res->consumed >= line_total);
    CHECK(res->need == 0);

    /* Everything the request points at lies in the bytes it consumed: the connection drops
     * exactly those after executing it. */
    size_t c = res->consumed;
    /* a meta command's base64 key, and iterate's cursor, are decoded into the request */
    CHECK(field_within(req->key, req->nkey, buf, c) ||
          (req->meta.key_binary && within(req->key, req->nkey, req->meta.key_buf,
                                          sizeof(req->meta.key_buf))) ||
          (res->status == PROTO_REQUEST && req->cmd == PROTO_CMD_ITERATE &&
           req->key == req->iter.key_buf && req->nkey <= sizeof(req->iter.key_buf)));
    CHECK(field_within(req->keys, req->nkeys, buf, c));
    CHECK(field_within(req->data, req->ndata, buf, c));
    CHECK(field_within(req->arg, req->narg, buf, c));
    CHECK(field_within(req->key2, req->nkey2, buf, c));

    if (res->status == PROTO_ERROR) {
        CHECK(res->error != NULL || req->noreply);
        if (res->error != NULL) {
            size_t n = 0;
            while (n <= ERROR_LINE_MAX && res->error[n] != '\0') {
                n++;
            }
            CHECK(n >= 1 && n <= ERROR_LINE_MAX);
            CHECK(memchr(res->error, '\r', n) == NULL && memchr(res->error, '\n', n) == NULL);
        }
        if (res->unlink_key) {
            /* a decoded base64 key may hold any byte */
            CHECK(key_valid(req->key, req->nkey) ||
                  (req->meta.key_binary && req->nkey >= 1 && req->nkey <= PROTO_KEY_MAX));
        }
        if (res->swallow > 0) {
            /* the rejected data block is swallowed, so only its line was consumed */
            CHECK(res->swallow >= 2 && res->consumed == line_total);
        }
        return;
    }

    /* Written per property rather than per command, so commands added later (meta's ms has a
     * data block too) are held to the same rules without an edit here. */
    CHECK(res->swallow == 0 && !res->unlink_key);
    CHECK(req->cmd != PROTO_CMD_NONE);
    if (req->data != NULL) {
        CHECK(req->data == buf + line_total);
        CHECK(req->ndata + 2 == res->consumed - line_total);
        CHECK(req->data[req->ndata] == '\r' && req->data[req->ndata + 1] == '\n');
    } else {
        CHECK(res->consumed == line_total);
    }
    if (is_storage(req->cmd)) {
        CHECK(req->data != NULL);
        CHECK(key_valid(req->key, req->nkey));
        check_exptime(req->exptime);
        apply_delta(req);
        return;
    }
    switch (req->cmd) {
    case PROTO_CMD_GET:
    case PROTO_CMD_GETS:
    case PROTO_CMD_GAT:
    case PROTO_CMD_GATS:
        CHECK(req->keys != NULL);
        walk_keys(req);
        check_exptime(req->exptime);
        break;
    case PROTO_CMD_INCR:
    case PROTO_CMD_DECR:
    case PROTO_CMD_DELETE:
        CHECK(key_valid(req->key, req->nkey));
        break;
    case PROTO_CMD_TOUCH:
        CHECK(key_valid(req->key, req->nkey));
        check_exptime(req->exptime);
        break;
    case PROTO_CMD_RGET:
        CHECK(key_valid(req->key, req->nkey) && key_valid(req->key2, req->nkey2));
        break;
    case PROTO_CMD_ITERATE:
        CHECK(req->key == req->iter.key_buf && req->nkey <= PROTO_KEY_MAX);
        CHECK(req->max >= 1 && req->max <= PROTO_ITERATE_MAX);
        break;
    case PROTO_CMD_STATS:
    case PROTO_CMD_DEBUG_FAULT:
    case PROTO_CMD_REP_SET_PRIORITY:
        CHECK(req->arg != NULL);
        break;
    default:
        break;
    }
}

/* The same key: at the same offsets of their own buffers, or the same decoded bytes. */
static bool same_key(const struct proto_request *x, const char *abuf,
                     const struct proto_request *y, const char *bbuf)
{
    /* iterate decodes its cursor into the request: compare the bytes */
    if (x->meta.key_binary || y->meta.key_binary || x->cmd == PROTO_CMD_ITERATE) {
        return x->meta.key_binary == y->meta.key_binary && x->nkey == y->nkey &&
               (x->nkey == 0 || memcmp(x->key, y->key, x->nkey) == 0);
    }
    return x->nkey == y->nkey && same_ptr(x->key, abuf, y->key, bbuf);
}

static bool same_outcome(const struct outcome *a, const char *abuf, const struct outcome *b,
                         const char *bbuf)
{
    const struct proto_request *x = &a->req;
    const struct proto_request *y = &b->req;

    if (a->res.status != b->res.status || a->res.consumed != b->res.consumed ||
        a->res.swallow != b->res.swallow || a->res.need != b->res.need ||
        a->res.unlink_key != b->res.unlink_key) {
        return false;
    }
    if ((a->res.error == NULL) != (b->res.error == NULL) ||
        (a->res.error != NULL && strcmp(a->res.error, b->res.error) != 0)) {
        return false;
    }
    return x->cmd == y->cmd && x->noreply == y->noreply && same_key(x, abuf, y, bbuf) &&
           x->nkeys == y->nkeys &&
           same_ptr(x->keys, abuf, y->keys, bbuf) && x->flags == y->flags &&
           x->exptime == y->exptime && x->cas == y->cas && x->delta == y->delta &&
           x->ndata == y->ndata && same_ptr(x->data, abuf, y->data, bbuf) &&
           x->delay == y->delay && x->verbosity == y->verbosity && x->narg == y->narg &&
           same_ptr(x->arg, abuf, y->arg, bbuf) && x->nkey2 == y->nkey2 &&
           same_ptr(x->key2, abuf, y->key2, bbuf) && x->left_open == y->left_open &&
           x->right_open == y->right_open && x->max == y->max &&
           x->iter.values == y->iter.values;
}

/* Parses buf[0..k) from a copy of exactly k bytes and checks it against the whole stream's
 * result 'full' (on buf[0..len)). */
static void check_prefix(const char *buf, size_t k, const struct outcome *full,
                         const struct proto_limits *lim)
{
    /* malloc(0) may return NULL; one spare byte is never handed to the parser */
    char *copy = malloc(k > 0 ? k : 1);
    struct outcome p;

    CHECK(copy != NULL);
    if (k > 0) {
        memcpy(copy, buf, k);
    }
    proto_text_parse(copy, k, lim, &p.req, &p.res);
    check_outcome(copy, k, &p);

    enum proto_status fs = full->res.status;
    bool full_decided = fs == PROTO_REQUEST || fs == PROTO_ERROR;
    switch (p.res.status) {
    case PROTO_REQUEST:
    case PROTO_ERROR:
        /* resumability: more bytes never change a decision already made */
        CHECK(same_outcome(&p, copy, full, buf));
        break;
    case PROTO_NEED_MORE:
        if (full_decided) {
            CHECK(k < full->res.consumed);
            /* a known size is exactly what the decision will consume */
            CHECK(p.res.need == 0 || p.res.need == full->res.consumed);
        } else if (fs == PROTO_NEED_MORE) {
            CHECK(p.res.need == 0 || p.res.need == full->res.need);
        }
        break;
    case PROTO_CLOSE:
        /* only a line that is already too long, or what the whole stream closes on too */
        CHECK((memchr(copy, '\n', k) == NULL && k > PROTO_TEXT_LINE_MAX) ||
              (fs == PROTO_CLOSE && p.res.consumed == full->res.consumed));
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
    const char *nl = memchr(buf, '\n', len);
    size_t c = full->res.consumed;

    if (full->res.status == PROTO_REQUEST || full->res.status == PROTO_ERROR) {
        check_prefix(buf, c, full, lim);
        check_prefix(buf, c - 1, full, lim);
    }
    if (nl != NULL) {
        size_t line_end = (size_t)(nl - buf);
        check_prefix(buf, line_end, full, lim);
        check_prefix(buf, line_end + 1, full, lim);
    }
    uint64_t h = input_hash(buf, len);
    for (int i = 0; i < HASH_SPLITS; i++) {
        h = mix(h + (uint64_t)i + 1);
        check_prefix(buf, (size_t)(h % ((uint64_t)len + 1)), full, lim);
    }
}

/* Feeds the stream the way daemon/conn.c does once all of it has arrived. */
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

        const char *p = buf + off;
        size_t n = len - off;
        struct outcome full;
        proto_text_parse(p, n, lim, &full.req, &full.res);
        check_outcome(p, n, &full);
        if (nreq < SPLIT_REQUESTS) {
            check_prefixes(p, n, &full, lim);
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
