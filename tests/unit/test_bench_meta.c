/* Unit tests of the bench's meta-protocol client (tools/bench/client_meta.c): encoders, and the
 * reply parser fed whole replies, every prefix of them, and garbage. */

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tools/bench/client_meta.h"

/* Parses s as the reply to (op, key, opaque); every proper prefix must be NEED_MORE (or, for
 * garbage, already BAD). Returns the whole input's result. */
static enum client_parse parse_all(const char *s, size_t n, enum client_op op, const char *key,
                                   uint32_t opaque, struct client_reply *r)
{
    enum client_parse whole = client_meta_parse(s, n, op, key, strlen(key), opaque, r);
    struct client_reply saved = *r;

    for (size_t i = 0; i < n; i++) {
        /* a copy of exactly i bytes, so reading past i trips ASan */
        char *p = malloc(i ? i : 1);
        struct client_reply pr;
        memcpy(p, s, i);
        enum client_parse st = client_meta_parse(p, i, op, key, strlen(key), opaque, &pr);
        free(p);
        if (whole == CLIENT_DONE) {
            assert_int_equal(st, CLIENT_NEED_MORE);
        } else if (st != CLIENT_NEED_MORE) {
            assert_int_equal(st, CLIENT_BAD);
        }
    }
    *r = saved;
    return whole;
}

#define PARSE(lit, op, key, opaque, r) parse_all(lit, sizeof(lit) - 1, op, key, opaque, r)

static void test_encoders(void **state)
{
    (void)state;
    char out[CLIENT_LINE_SPACE(250)];
    size_t n;

    n = client_meta_get(out, "key:42", 6, 7);
    assert_int_equal(n, strlen("mg key:42 v k O7\r\n"));
    assert_memory_equal(out, "mg key:42 v k O7\r\n", n);
    n = client_meta_store(out, CLIENT_SET, "k", 1, 0, 0, 100, 0);
    assert_int_equal(n, strlen("ms k 100 T0 F0 O0\r\n"));
    assert_memory_equal(out, "ms k 100 T0 F0 O0\r\n", n);
    n = client_meta_store(out, CLIENT_ADD, "inbox:7", 7, 3, 60, 0, 12);
    assert_memory_equal(out, "ms inbox:7 0 T60 F3 ME O12\r\n", n);
    n = client_meta_store(out, CLIENT_APPEND, "inbox:7", 7, 0, 0, 4294967295u, 4294967295u);
    assert_memory_equal(out, "ms inbox:7 4294967295 T0 F0 MA O4294967295\r\n", n);

    /* the longest line fits the space the header promises */
    char key[250];
    memset(key, 'k', sizeof(key));
    n = client_meta_store(out, CLIENT_APPEND, key, 250, UINT32_MAX, UINT32_MAX, SIZE_MAX,
                          UINT32_MAX);
    assert_true(n <= sizeof(out));
    assert_true(client_meta_get(out, key, 250, UINT32_MAX) <= sizeof(out));
}

static void test_get_hit_and_miss(void **state)
{
    (void)state;
    struct client_reply r;

    assert_int_equal(PARSE("VA 5 kkey:1 O7\r\nhello\r\n", CLIENT_GET, "key:1", 7, &r),
                     CLIENT_DONE);
    assert_int_equal(r.outcome, CLIENT_HIT);
    assert_int_equal(r.value_len, 5);
    assert_int_equal(r.consumed, 23);

    /* flags in any order, flags not asked for, an empty value, a value that looks like
     * replies */
    assert_int_equal(PARSE("VA 2 O4294967295 t-1 f0 kk c99\r\nhi\r\n", CLIENT_GET, "k",
                           4294967295u, &r), CLIENT_DONE);
    assert_int_equal(r.value_len, 2);
    assert_int_equal(PARSE("VA 0 kk O1\r\n\r\n", CLIENT_GET, "k", 1, &r), CLIENT_DONE);
    assert_int_equal(r.outcome, CLIENT_HIT);
    assert_int_equal(r.value_len, 0);
    assert_int_equal(PARSE("VA 9 kk O1\r\nEN O1\r\n\r\n\r\n", CLIENT_GET, "k", 1, &r),
                     CLIENT_DONE);
    assert_int_equal(r.value_len, 9);
    assert_int_equal(r.consumed, 23);

    /* a miss, with or without the key (memcached echoes it) */
    assert_int_equal(PARSE("EN kkey:1 O7\r\n", CLIENT_GET, "key:1", 7, &r), CLIENT_DONE);
    assert_int_equal(r.outcome, CLIENT_MISS);
    assert_int_equal(r.consumed, 14);
    assert_int_equal(PARSE("EN O7\r\n", CLIENT_GET, "key:1", 7, &r), CLIENT_DONE);
    assert_int_equal(r.outcome, CLIENT_MISS);
}

static void test_storage_replies(void **state)
{
    (void)state;
    struct client_reply r;
    struct {
        const char *line;
        enum client_outcome o;
    } cases[] = {
        {"HD O3\r\n", CLIENT_STORED},
        {"HD kk O3 c12345\r\n", CLIENT_STORED},
        {"NS O3\r\n", CLIENT_NOT_STORED},
        {"EX O3\r\n", CLIENT_EXISTS},
        {"NF O3 kk\r\n", CLIENT_NOT_FOUND},
        {"ERROR\r\n", CLIENT_ERROR_REPLY},
        {"CLIENT_ERROR bad data chunk\r\n", CLIENT_CLIENT_ERROR},
        {"SERVER_ERROR object too large for cache\r\n", CLIENT_SERVER_ERROR},
        {"SERVER_ERROR not master; master is 10.0.0.1:21201\r\n", CLIENT_SERVER_ERROR},
    };
    enum client_op ops[] = {CLIENT_SET, CLIENT_ADD, CLIENT_APPEND};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (size_t j = 0; j < 3; j++) {
            assert_int_equal(parse_all(cases[i].line, strlen(cases[i].line), ops[j], "k", 3,
                                       &r), CLIENT_DONE);
            assert_int_equal(r.outcome, cases[i].o);
            assert_int_equal(r.consumed, strlen(cases[i].line));
        }
    }
}

static void test_get_errors_are_outcomes(void **state)
{
    (void)state;
    struct client_reply r;

    assert_int_equal(PARSE("SERVER_ERROR busy\r\n", CLIENT_GET, "k", 1, &r), CLIENT_DONE);
    assert_int_equal(r.outcome, CLIENT_SERVER_ERROR);
    assert_int_equal(PARSE("CLIENT_ERROR bad command line format\r\n", CLIENT_GET, "k", 1, &r),
                     CLIENT_DONE);
    assert_int_equal(r.outcome, CLIENT_CLIENT_ERROR);
    assert_int_equal(PARSE("ERROR\r\n", CLIENT_GET, "k", 1, &r), CLIENT_DONE);
    assert_int_equal(r.outcome, CLIENT_ERROR_REPLY);
}

static void test_need_reports_size(void **state)
{
    (void)state;
    struct client_reply r;
    const char *s = "VA 100000 kbig O1\r\nxyz";

    assert_int_equal(client_meta_parse(s, strlen(s), CLIENT_GET, "big", 3, 1, &r),
                     CLIENT_NEED_MORE);
    assert_int_equal(r.need, 19 + 100000 + 2);
}

static void test_garbage_is_bad(void **state)
{
    (void)state;
    struct client_reply r;
    const char *get_bad[] = {
        "VA 1 kk O2\r\nx\r\n",          /* another request's opaque */
        "VA 1 kk\r\nx\r\n",             /* no opaque */
        "VA 1 O1\r\nx\r\n",             /* a hit that does not say its key */
        "VA 1 kother O1\r\nx\r\n",      /* a key not asked for */
        "VA 1 kkk O1\r\nx\r\n",
        "VA 1 k O1\r\nx\r\n",
        "EN kother O1\r\n",
        "EN\r\n",
        "EN O\r\n",
        "EN O1x\r\n",
        "EN O-1\r\n",
        "EN O4294967297\r\n",           /* 2^32 + 1: not the 32-bit opaque 1 */
        "VA 1 kk O1\r\nxy\r\n",         /* longer than announced */
        "VA 2 kk O1\r\nx\r\n\r\n",      /* shorter */
        "VA x kk O1\r\nx\r\n",
        "VA -1 kk O1\r\nx\r\n",
        "VA kk O1\r\n",
        "VA\r\n",
        "VA 99999999999999999999 kk O1\r\n",
        "VA  1 kk O1\r\nx\r\n",         /* empty token */
        "EN  O1\r\n",
        "EN O1 \r\n",
        "ENX O1\r\n",
        "en O1\r\n",
        "HD O1\r\n",                    /* a storage reply to a get */
        "NS O1\r\n",
        "MN\r\n",
        "VALUE k 0 1\r\nx\r\nEND\r\n",  /* the text protocol */
        "END\r\n",
        "E\r\n",
        "EN O1\n",                      /* bare LF */
        "hello\r\n",
    };
    for (size_t i = 0; i < sizeof(get_bad) / sizeof(get_bad[0]); i++) {
        enum client_parse st = parse_all(get_bad[i], strlen(get_bad[i]), CLIENT_GET, "k", 1,
                                         &r);
        if (st != CLIENT_BAD) {
            printf("# FAIL %s accepted\n", get_bad[i]);
        }
        assert_int_equal(st, CLIENT_BAD);
        assert_non_null(r.why);
    }
    const char *set_bad[] = {
        "HD O2\r\n", "HD\r\n", "HD kk\r\n", "HD kx O1\r\n", "EN O1\r\n",
        "VA 1 kk O1\r\nx\r\n", "STORED\r\n", "HD  O1\r\n", "HDO1\r\n", "hd O1\r\n",
        "NX O1\r\n",
    };
    for (size_t i = 0; i < sizeof(set_bad) / sizeof(set_bad[0]); i++) {
        enum client_parse st = parse_all(set_bad[i], strlen(set_bad[i]), CLIENT_SET, "k", 1,
                                         &r);
        if (st != CLIENT_BAD) {
            printf("# FAIL %s accepted\n", set_bad[i]);
        }
        assert_int_equal(st, CLIENT_BAD);
    }
    /* a line that never ends */
    char *longline = malloc(CLIENT_LINE_MAX + 10);
    memset(longline, 'A', CLIENT_LINE_MAX + 10);
    assert_int_equal(client_meta_parse(longline, CLIENT_LINE_MAX + 10, CLIENT_SET, "k", 1, 1,
                                       &r), CLIENT_BAD);
    assert_int_equal(client_meta_parse(longline, CLIENT_LINE_MAX - 1, CLIENT_SET, "k", 1, 1,
                                       &r), CLIENT_NEED_MORE);
    free(longline);
}

static void test_pipelined_replies_in_order(void **state)
{
    (void)state;
    const char *s = "HD O10\r\nVA 1 ka O11\r\n1\r\nEN kb O12\r\nNS O13\r\nHD O14\r\n";
    enum client_op ops[] = {CLIENT_SET, CLIENT_GET, CLIENT_GET, CLIENT_APPEND, CLIENT_ADD};
    const char *keys[] = {"a", "a", "b", "c", "c"};
    enum client_outcome want[] = {CLIENT_STORED, CLIENT_HIT, CLIENT_MISS, CLIENT_NOT_STORED,
                                  CLIENT_STORED};
    size_t pos = 0, len = strlen(s);

    for (uint32_t i = 0; i < 5; i++) {
        struct client_reply r;
        assert_int_equal(client_meta_parse(s + pos, len - pos, ops[i], keys[i], 1, 10 + i, &r),
                         CLIENT_DONE);
        assert_int_equal(r.outcome, want[i]);
        pos += r.consumed;
    }
    assert_int_equal(pos, len);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encoders),
        cmocka_unit_test(test_get_hit_and_miss),
        cmocka_unit_test(test_storage_replies),
        cmocka_unit_test(test_get_errors_are_outcomes),
        cmocka_unit_test(test_need_reports_size),
        cmocka_unit_test(test_garbage_is_bad),
        cmocka_unit_test(test_pipelined_replies_in_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
