/* Unit tests of the bench's binary-protocol client (tools/bench/client_binary.c): encoders, and
 * the reply parser fed whole replies, every prefix of them, and garbage. */

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tools/bench/client_binary.h"

/* A reply under construction: header fields, then extras, key and value (or message). */
struct reply {
    unsigned char b[1024];
    size_t n;
};

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Builds a reply whose header says what the parts add up to. extras: NULL or nextras bytes. */
static void mk(struct reply *r, uint8_t opcode, uint16_t status, uint32_t opaque,
               const void *extras, uint8_t nextras, const char *key, const void *value,
               size_t nvalue)
{
    size_t nkey = key ? strlen(key) : 0;

    memset(r->b, 0, CLIENT_BIN_HEADER);
    r->b[0] = CLIENT_BIN_REPLY;
    r->b[1] = opcode;
    r->b[2] = (unsigned char)(nkey >> 8);
    r->b[3] = (unsigned char)nkey;
    r->b[4] = nextras;
    r->b[6] = (unsigned char)(status >> 8);
    r->b[7] = (unsigned char)status;
    put32(r->b + 8, (uint32_t)(nextras + nkey + nvalue));
    put32(r->b + 12, opaque);
    r->b[23] = 7;                       /* a cas: the parser does not care */
    r->n = CLIENT_BIN_HEADER;
    if (nextras) {
        memcpy(r->b + r->n, extras, nextras);
        r->n += nextras;
    }
    if (nkey) {
        memcpy(r->b + r->n, key, nkey);
        r->n += nkey;
    }
    if (nvalue) {
        memcpy(r->b + r->n, value, nvalue);
        r->n += nvalue;
    }
}

static const unsigned char FLAGS[4] = {0, 0, 0, 5};

/* Parses buf as the reply to (op, key, opaque); every proper prefix must be NEED_MORE (or, for
 * garbage, already BAD). Returns the whole input's result. */
static enum client_parse parse_all(const void *buf, size_t n, enum client_op op,
                                   const char *key, uint32_t opaque, struct client_reply *r)
{
    enum client_parse whole = client_binary_parse(buf, n, op, key, strlen(key), opaque, r);
    struct client_reply saved = *r;

    for (size_t i = 0; i < n; i++) {
        /* a copy of exactly i bytes, so reading past i trips ASan */
        char *p = malloc(i ? i : 1);
        struct client_reply pr;
        memcpy(p, buf, i);
        enum client_parse st = client_binary_parse(p, i, op, key, strlen(key), opaque, &pr);
        free(p);
        if (whole == CLIENT_DONE) {
            assert_int_equal(st, CLIENT_NEED_MORE);
            assert_true(pr.need > i);
        } else if (st != CLIENT_NEED_MORE) {
            assert_int_equal(st, CLIENT_BAD);
        }
    }
    *r = saved;
    return whole;
}

static void test_encoders(void **state)
{
    (void)state;
    unsigned char out[CLIENT_LINE_SPACE(250)];
    size_t n;

    n = client_binary_get((char *)out, "key:42", 6, 0x01020304);
    assert_int_equal(n, 24 + 6);
    static const unsigned char getk[24] = {0x80, 0x0c, 0, 6, 0, 0, 0, 0, 0, 0, 0, 6,
                                           1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(out, getk, 24);
    assert_memory_equal(out + 24, "key:42", 6);

    /* set: flags and exptime as extras, the body counts the value the caller adds */
    n = client_binary_store((char *)out, CLIENT_SET, "k", 1, 0xdeadbeef, 60, 100, 9);
    assert_int_equal(n, 24 + 8 + 1);
    assert_int_equal(out[0], 0x80);
    assert_int_equal(out[1], CLIENT_BIN_SET);
    assert_int_equal(out[3], 1);
    assert_int_equal(out[4], 8);
    assert_int_equal(get32(out + 8), 8 + 1 + 100);
    assert_int_equal(get32(out + 12), 9);
    assert_int_equal(get32(out + 24), 0xdeadbeef);
    assert_int_equal(get32(out + 28), 60);
    assert_int_equal(out[32], 'k');

    n = client_binary_store((char *)out, CLIENT_ADD, "inbox:7", 7, 0, 0, 0, 10);
    assert_int_equal(n, 24 + 8 + 7);
    assert_int_equal(out[1], CLIENT_BIN_ADD);
    assert_int_equal(get32(out + 8), 15);

    /* append: no extras at all (memcached refuses them) */
    n = client_binary_store((char *)out, CLIENT_APPEND, "inbox:7", 7, 3, 60, 5, 11);
    assert_int_equal(n, 24 + 7);
    assert_int_equal(out[1], CLIENT_BIN_APPEND);
    assert_int_equal(out[4], 0);
    assert_int_equal(get32(out + 8), 7 + 5);
    assert_memory_equal(out + 24, "inbox:7", 7);

    /* the longest key fits the space the header promises */
    char key[250];
    memset(key, 'k', sizeof(key));
    assert_true(client_binary_store((char *)out, CLIENT_SET, key, 250, 1, 1, 1, 1)
                <= sizeof(out));
    assert_true(client_binary_get((char *)out, key, 250, 1) <= sizeof(out));
}

static void test_get_hit_and_miss(void **state)
{
    (void)state;
    struct reply b;
    struct client_reply r;

    mk(&b, CLIENT_BIN_GETK, 0, 42, FLAGS, 4, "key:1", "hello", 5);
    assert_int_equal(parse_all(b.b, b.n, CLIENT_GET, "key:1", 42, &r), CLIENT_DONE);
    assert_int_equal(r.outcome, CLIENT_HIT);
    assert_int_equal(r.value_len, 5);
    assert_int_equal(r.consumed, 24 + 4 + 5 + 5);

    /* an empty value, and a value that looks like a reply header */
    mk(&b, CLIENT_BIN_GETK, 0, 43, FLAGS, 4, "k", NULL, 0);
    assert_int_equal(parse_all(b.b, b.n, CLIENT_GET, "k", 43, &r), CLIENT_DONE);
    assert_int_equal(r.outcome, CLIENT_HIT);
    assert_int_equal(r.value_len, 0);
    struct reply inner;
    mk(&inner, CLIENT_BIN_GETK, 0, 43, FLAGS, 4, "k", "x", 1);
    mk(&b, CLIENT_BIN_GETK, 0, 43, FLAGS, 4, "k", inner.b, inner.n);
    assert_int_equal(parse_all(b.b, b.n, CLIENT_GET, "k", 43, &r), CLIENT_DONE);
    assert_int_equal(r.value_len, inner.n);
    assert_int_equal(r.consumed, b.n);

    /* memcached's GETK miss names the key; a GET-style miss carries a message instead */
    mk(&b, CLIENT_BIN_GETK, CLIENT_BIN_KEY_ENOENT, 44, NULL, 0, "key:1", NULL, 0);
    assert_int_equal(parse_all(b.b, b.n, CLIENT_GET, "key:1", 44, &r), CLIENT_DONE);
    assert_int_equal(r.outcome, CLIENT_MISS);
    assert_int_equal(r.consumed, 24 + 5);
    mk(&b, CLIENT_BIN_GETK, CLIENT_BIN_KEY_ENOENT, 45, NULL, 0, NULL, "Not found", 9);
    assert_int_equal(parse_all(b.b, b.n, CLIENT_GET, "key:1", 45, &r), CLIENT_DONE);
    assert_int_equal(r.outcome, CLIENT_MISS);
    assert_int_equal(r.consumed, 24 + 9);
}

static void test_statuses(void **state)
{
    (void)state;
    struct {
        uint16_t status;
        enum client_outcome get, set, add, append;
    } cases[] = {
        {CLIENT_BIN_OK, CLIENT_HIT, CLIENT_STORED, CLIENT_STORED, CLIENT_STORED},
        {CLIENT_BIN_KEY_ENOENT, CLIENT_MISS, CLIENT_NOT_FOUND, CLIENT_NOT_FOUND,
         CLIENT_NOT_FOUND},
        /* an add of a present key: memcached says "exists", text says NOT_STORED */
        {CLIENT_BIN_KEY_EEXISTS, CLIENT_EXISTS, CLIENT_EXISTS, CLIENT_NOT_STORED, CLIENT_EXISTS},
        {CLIENT_BIN_E2BIG, CLIENT_SERVER_ERROR, CLIENT_SERVER_ERROR, CLIENT_SERVER_ERROR,
         CLIENT_SERVER_ERROR},
        {CLIENT_BIN_EINVAL, CLIENT_CLIENT_ERROR, CLIENT_CLIENT_ERROR, CLIENT_CLIENT_ERROR,
         CLIENT_CLIENT_ERROR},
        {CLIENT_BIN_NOT_STORED, CLIENT_NOT_STORED, CLIENT_NOT_STORED, CLIENT_NOT_STORED,
         CLIENT_NOT_STORED},
        {CLIENT_BIN_DELTA_BADVAL, CLIENT_CLIENT_ERROR, CLIENT_CLIENT_ERROR, CLIENT_CLIENT_ERROR,
         CLIENT_CLIENT_ERROR},
        {CLIENT_BIN_AUTH_ERROR, CLIENT_CLIENT_ERROR, CLIENT_CLIENT_ERROR, CLIENT_CLIENT_ERROR,
         CLIENT_CLIENT_ERROR},
        {CLIENT_BIN_UNKNOWN_COMMAND, CLIENT_ERROR_REPLY, CLIENT_ERROR_REPLY, CLIENT_ERROR_REPLY,
         CLIENT_ERROR_REPLY},
        {CLIENT_BIN_NOT_SUPPORTED, CLIENT_ERROR_REPLY, CLIENT_ERROR_REPLY, CLIENT_ERROR_REPLY,
         CLIENT_ERROR_REPLY},
        {CLIENT_BIN_ENOMEM, CLIENT_SERVER_ERROR, CLIENT_SERVER_ERROR, CLIENT_SERVER_ERROR,
         CLIENT_SERVER_ERROR},
        {0x84, CLIENT_SERVER_ERROR, CLIENT_SERVER_ERROR, CLIENT_SERVER_ERROR,
         CLIENT_SERVER_ERROR},
        {0x85, CLIENT_SERVER_ERROR, CLIENT_SERVER_ERROR, CLIENT_SERVER_ERROR,
         CLIENT_SERVER_ERROR},
        {0xbeef, CLIENT_SERVER_ERROR, CLIENT_SERVER_ERROR, CLIENT_SERVER_ERROR,
         CLIENT_SERVER_ERROR},
    };
    enum client_op ops[] = {CLIENT_GET, CLIENT_SET, CLIENT_ADD, CLIENT_APPEND};
    uint8_t opcodes[] = {CLIENT_BIN_GETK, CLIENT_BIN_SET, CLIENT_BIN_ADD, CLIENT_BIN_APPEND};

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum client_outcome want[] = {cases[i].get, cases[i].set, cases[i].add,
                                      cases[i].append};
        for (size_t j = 0; j < 4; j++) {
            struct reply b;
            struct client_reply r;
            uint32_t opaque = (uint32_t)(i * 4 + j);
            if (cases[i].status == CLIENT_BIN_OK && ops[j] == CLIENT_GET) {
                mk(&b, opcodes[j], 0, opaque, FLAGS, 4, "k", "v", 1);
            } else if (cases[i].status == CLIENT_BIN_OK) {
                mk(&b, opcodes[j], 0, opaque, NULL, 0, NULL, NULL, 0);
            } else {
                mk(&b, opcodes[j], cases[i].status, opaque, NULL, 0, NULL, "Some message", 12);
            }
            assert_int_equal(parse_all(b.b, b.n, ops[j], "k", opaque, &r), CLIENT_DONE);
            if (r.outcome != want[j]) {
                printf("# FAIL status 0x%x op %zu: %s\n", cases[i].status, j,
                       client_outcome_name(r.outcome));
            }
            assert_int_equal(r.outcome, want[j]);
            assert_int_equal(r.consumed, b.n);
        }
    }
}

static void test_need_reports_size(void **state)
{
    (void)state;
    struct reply b;
    struct client_reply r;

    assert_int_equal(client_binary_parse("\x81", 1, CLIENT_GET, "big", 3, 1, &r),
                     CLIENT_NEED_MORE);
    assert_int_equal(r.need, 24);
    mk(&b, CLIENT_BIN_GETK, 0, 1, FLAGS, 4, "big", "xyz", 3);
    put32(b.b + 8, 4 + 3 + 100000);     /* announces a 100000-byte value, 3 bytes arrived */
    assert_int_equal(client_binary_parse((char *)b.b, b.n, CLIENT_GET, "big", 3, 1, &r),
                     CLIENT_NEED_MORE);
    assert_int_equal(r.need, 24 + 4 + 3 + 100000);

    /* the largest value allowed is waited for, not refused */
    put32(b.b + 8, (uint32_t)(4 + 3 + CLIENT_VALUE_MAX));
    assert_int_equal(client_binary_parse((char *)b.b, b.n, CLIENT_GET, "big", 3, 1, &r),
                     CLIENT_NEED_MORE);
}

static void test_garbage_is_bad(void **state)
{
    (void)state;
    struct reply b;
    struct client_reply r;

#define EXPECT_BAD(op, key, opaque)                                                      \
    do {                                                                                 \
        assert_int_equal(parse_all(b.b, b.n, op, key, opaque, &r), CLIENT_BAD);          \
        assert_non_null(r.why);                                                          \
        /* refused from the header alone: no waiting for a body that may never come */  \
        assert_int_equal(client_binary_parse((char *)b.b, 24, op, key, strlen(key),     \
                                             opaque, &r), CLIENT_BAD);                   \
    } while (0)

    /* a request's magic, text, and a wrong opcode */
    mk(&b, CLIENT_BIN_GETK, 0, 1, FLAGS, 4, "k", "v", 1);
    b.b[0] = 0x80;
    EXPECT_BAD(CLIENT_GET, "k", 1);
    memcpy(b.b, "VALUE k 0 1\r\nv\r\nEND\r\n\0\0\0", 24);
    EXPECT_BAD(CLIENT_GET, "k", 1);
    mk(&b, CLIENT_BIN_GET, 0, 1, FLAGS, 4, NULL, "v", 1);      /* GET's reply to a GETK */
    EXPECT_BAD(CLIENT_GET, "k", 1);
    mk(&b, CLIENT_BIN_SET, 0, 1, NULL, 0, NULL, NULL, 0);      /* SET's reply to an ADD */
    EXPECT_BAD(CLIENT_ADD, "k", 1);
    mk(&b, CLIENT_BIN_GETK, 0, 1, FLAGS, 4, "k", "v", 1);      /* a get reply to a set */
    EXPECT_BAD(CLIENT_SET, "k", 1);

    /* the reply of another request: wrong opaque */
    mk(&b, CLIENT_BIN_GETK, 0, 2, FLAGS, 4, "k", "v", 1);
    EXPECT_BAD(CLIENT_GET, "k", 1);
    mk(&b, CLIENT_BIN_SET, 0, 0xffffffff, NULL, 0, NULL, NULL, 0);
    EXPECT_BAD(CLIENT_SET, "k", 0);

    /* a key not asked for: another length (header), the same length (body) */
    mk(&b, CLIENT_BIN_GETK, 0, 1, FLAGS, 4, "other", "v", 1);
    EXPECT_BAD(CLIENT_GET, "k", 1);
    mk(&b, CLIENT_BIN_GETK, CLIENT_BIN_KEY_ENOENT, 1, NULL, 0, "kk", NULL, 0);
    EXPECT_BAD(CLIENT_GET, "k", 1);
    mk(&b, CLIENT_BIN_GETK, 0, 1, FLAGS, 4, "key:2", "v", 1);
    assert_int_equal(parse_all(b.b, b.n, CLIENT_GET, "key:1", 1, &r), CLIENT_BAD);
    mk(&b, CLIENT_BIN_GETK, CLIENT_BIN_KEY_ENOENT, 1, NULL, 0, "key:2", NULL, 0);
    assert_int_equal(parse_all(b.b, b.n, CLIENT_GET, "key:1", 1, &r), CLIENT_BAD);

    /* a hit without its 4 bytes of flags */
    mk(&b, CLIENT_BIN_GETK, 0, 1, NULL, 0, "k", "vvvv", 4);
    EXPECT_BAD(CLIENT_GET, "k", 1);
    mk(&b, CLIENT_BIN_GETK, 0, 1, "12345678", 8, "k", "v", 1);
    EXPECT_BAD(CLIENT_GET, "k", 1);

    /* lengths that do not add up, or are too large to wait for */
    mk(&b, CLIENT_BIN_GETK, 0, 1, FLAGS, 4, "k", "v", 1);
    put32(b.b + 8, 4);                  /* key and extras longer than the body */
    EXPECT_BAD(CLIENT_GET, "k", 1);
    put32(b.b + 8, (uint32_t)(CLIENT_VALUE_MAX + CLIENT_BIN_BODY_SLACK + 1));
    EXPECT_BAD(CLIENT_GET, "k", 1);
    put32(b.b + 8, 0xffffffff);
    EXPECT_BAD(CLIENT_GET, "k", 1);

    /* a storage success with a body; errors with extras, a key, or a message too long */
    mk(&b, CLIENT_BIN_SET, 0, 1, NULL, 0, NULL, "x", 1);
    EXPECT_BAD(CLIENT_SET, "k", 1);
    mk(&b, CLIENT_BIN_SET, 0, 1, FLAGS, 4, NULL, NULL, 0);
    EXPECT_BAD(CLIENT_SET, "k", 1);
    mk(&b, CLIENT_BIN_SET, CLIENT_BIN_NOT_STORED, 1, FLAGS, 4, NULL, NULL, 0);
    EXPECT_BAD(CLIENT_SET, "k", 1);
    mk(&b, CLIENT_BIN_APPEND, CLIENT_BIN_NOT_STORED, 1, NULL, 0, "k", NULL, 0);
    EXPECT_BAD(CLIENT_APPEND, "k", 1);
    mk(&b, CLIENT_BIN_SET, CLIENT_BIN_E2BIG, 1, NULL, 0, NULL, NULL, 0);
    put32(b.b + 8, CLIENT_BIN_MESSAGE_MAX + 1);
    EXPECT_BAD(CLIENT_SET, "k", 1);
#undef EXPECT_BAD
}

static void add(unsigned char *s, size_t *len, const struct reply *b)
{
    memcpy(s + *len, b->b, b->n);
    *len += b->n;
}

static void test_pipelined_replies_in_order(void **state)
{
    (void)state;
    unsigned char s[512];
    size_t len = 0;
    struct reply b;
    enum client_op ops[] = {CLIENT_SET, CLIENT_GET, CLIENT_GET, CLIENT_APPEND, CLIENT_ADD};
    enum client_outcome want[] = {CLIENT_STORED, CLIENT_HIT, CLIENT_MISS, CLIENT_NOT_STORED,
                                  CLIENT_STORED};

    mk(&b, CLIENT_BIN_SET, 0, 100, NULL, 0, NULL, NULL, 0);
    add(s, &len, &b);
    mk(&b, CLIENT_BIN_GETK, 0, 101, FLAGS, 4, "a", "1", 1);
    add(s, &len, &b);
    mk(&b, CLIENT_BIN_GETK, CLIENT_BIN_KEY_ENOENT, 102, NULL, 0, "b", NULL, 0);
    add(s, &len, &b);
    mk(&b, CLIENT_BIN_APPEND, CLIENT_BIN_NOT_STORED, 103, NULL, 0, NULL, "Not stored.", 11);
    add(s, &len, &b);
    mk(&b, CLIENT_BIN_ADD, 0, 104, NULL, 0, NULL, NULL, 0);
    add(s, &len, &b);

    size_t pos = 0;
    const char *keys[] = {"a", "a", "b", "c", "c"};
    for (uint32_t i = 0; i < 5; i++) {
        struct client_reply r;
        assert_int_equal(client_binary_parse((char *)s + pos, len - pos, ops[i], keys[i], 1,
                                             100 + i, &r), CLIENT_DONE);
        assert_int_equal(r.outcome, want[i]);
        pos += r.consumed;
    }
    assert_int_equal(pos, len);

    /* the same stream read as if one reply had been skipped: the opaque gives it away */
    struct client_reply r;
    assert_int_equal(client_binary_parse((char *)s, len, CLIENT_SET, "a", 1, 99, &r),
                     CLIENT_BAD);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encoders),
        cmocka_unit_test(test_get_hit_and_miss),
        cmocka_unit_test(test_statuses),
        cmocka_unit_test(test_need_reports_size),
        cmocka_unit_test(test_garbage_is_bad),
        cmocka_unit_test(test_pipelined_replies_in_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
