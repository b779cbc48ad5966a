/* Unit tests of the bench's text-protocol client (tools/bench/client_text.c): encoders, and
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

#include "tools/bench/client_text.h"

/* Parses s as the reply to (op, key); every proper prefix must be NEED_MORE (or, for
 * garbage, already BAD). Returns the whole input's result. */
static enum client_parse parse_all(const char *s, size_t n, enum client_op op, const char *key,
                                   struct client_reply *r)
{
    enum client_parse whole = client_text_parse(s, n, op, key, strlen(key), r);
    struct client_reply saved = *r;

    for (size_t i = 0; i < n; i++) {
        /* a copy of exactly i bytes, so reading past i trips ASan */
        char *p = malloc(i ? i : 1);
        struct client_reply pr;
        memcpy(p, s, i);
        enum client_parse st = client_text_parse(p, i, op, key, strlen(key), &pr);
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

#define PARSE(lit, op, key, r) parse_all(lit, sizeof(lit) - 1, op, key, r)

static void test_storage_replies(void **state)
{
    (void)state;
    struct client_reply r;
    struct {
        const char *line;
        enum client_outcome o;
    } cases[] = {
        {"STORED\r\n", CLIENT_STORED},
        {"NOT_STORED\r\n", CLIENT_NOT_STORED},
        {"EXISTS\r\n", CLIENT_EXISTS},
        {"NOT_FOUND\r\n", CLIENT_NOT_FOUND},
        {"ERROR\r\n", CLIENT_ERROR_REPLY},
        {"CLIENT_ERROR bad data chunk\r\n", CLIENT_CLIENT_ERROR},
        {"SERVER_ERROR out of memory storing object\r\n", CLIENT_SERVER_ERROR},
        {"SERVER_ERROR not master; master is 10.0.0.1:21201\r\n", CLIENT_SERVER_ERROR},
    };
    enum client_op ops[] = {CLIENT_SET, CLIENT_ADD, CLIENT_APPEND};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (size_t j = 0; j < 3; j++) {
            assert_int_equal(parse_all(cases[i].line, strlen(cases[i].line), ops[j], "k", &r),
                             CLIENT_DONE);
            assert_int_equal(r.outcome, cases[i].o);
            assert_int_equal(r.consumed, strlen(cases[i].line));
        }
    }
}

static void test_get_hit_and_miss(void **state)
{
    (void)state;
    struct client_reply r;

    assert_int_equal(PARSE("END\r\n", CLIENT_GET, "key:1", &r), CLIENT_DONE);
    assert_int_equal(r.outcome, CLIENT_MISS);
    assert_int_equal(r.consumed, 5);

    assert_int_equal(PARSE("VALUE key:1 0 5\r\nhello\r\nEND\r\n", CLIENT_GET, "key:1", &r),
                     CLIENT_DONE);
    assert_int_equal(r.outcome, CLIENT_HIT);
    assert_int_equal(r.value_len, 5);
    assert_int_equal(r.consumed, 29);

    /* with a cas field, the largest flags, an empty value, and a value that looks like
     * replies */
    assert_int_equal(PARSE("VALUE k 4294967295 0 77\r\n\r\nEND\r\n", CLIENT_GET, "k", &r),
                     CLIENT_DONE);
    assert_int_equal(r.outcome, CLIENT_HIT);
    assert_int_equal(r.value_len, 0);
    assert_int_equal(PARSE("VALUE k 0 7\r\nEND\r\n\r\n\r\nEND\r\n", CLIENT_GET, "k", &r),
                     CLIENT_DONE);
    assert_int_equal(r.outcome, CLIENT_HIT);
    assert_int_equal(r.value_len, 7);
    assert_int_equal(r.consumed, 27);
}

static void test_get_need_reports_size(void **state)
{
    (void)state;
    struct client_reply r;
    const char *s = "VALUE big 0 100000\r\nxyz";

    assert_int_equal(client_text_parse(s, strlen(s), CLIENT_GET, "big", 3, &r), CLIENT_NEED_MORE);
    assert_int_equal(r.need, 20 + 100000 + 2 + 5);
}

static void test_get_errors_are_outcomes(void **state)
{
    (void)state;
    struct client_reply r;

    assert_int_equal(PARSE("SERVER_ERROR busy\r\n", CLIENT_GET, "k", &r), CLIENT_DONE);
    assert_int_equal(r.outcome, CLIENT_SERVER_ERROR);
    assert_int_equal(PARSE("CLIENT_ERROR bad command line format\r\n", CLIENT_GET, "k", &r),
                     CLIENT_DONE);
    assert_int_equal(r.outcome, CLIENT_CLIENT_ERROR);
    assert_int_equal(PARSE("ERROR\r\n", CLIENT_GET, "k", &r), CLIENT_DONE);
    assert_int_equal(r.outcome, CLIENT_ERROR_REPLY);
}

static void test_garbage_is_bad(void **state)
{
    (void)state;
    struct client_reply r;
    const char *get_bad[] = {
        "VALUE other 0 1\r\nx\r\nEND\r\n",                 /* a key not asked for */
        "VALUE k 0 1\r\nx\r\nVALUE k 0 1\r\nx\r\nEND\r\n",  /* two values for one key */
        "VALUE k 0 1\r\nxy\r\nEND\r\n",                    /* longer than announced */
        "VALUE k x 1\r\nx\r\nEND\r\n",                     /* flags not a number */
        "VALUE k 0 -1\r\nx\r\nEND\r\n",
        "VALUE k 0 1 \r\nx\r\nEND\r\n",
        "VALUE k 0 99999999999999999999\r\n",              /* overflow */
        "STORED\r\n",                                      /* a storage reply to a get */
        "END\n",                                           /* bare LF */
        "hello\r\n",
    };
    for (size_t i = 0; i < sizeof(get_bad) / sizeof(get_bad[0]); i++) {
        enum client_parse st = parse_all(get_bad[i], strlen(get_bad[i]), CLIENT_GET, "k", &r);
        if (st != CLIENT_BAD) {
            printf("# FAIL %s accepted\n", get_bad[i]);
        }
        assert_int_equal(st, CLIENT_BAD);
        assert_non_null(r.why);
    }
    const char *set_bad[] = {"END\r\n", "VALUE k 0 1\r\nx\r\nEND\r\n", "STORED \r\n",
                             "DELETED\r\n", "stored\r\n"};
    for (size_t i = 0; i < sizeof(set_bad) / sizeof(set_bad[0]); i++) {
        assert_int_equal(parse_all(set_bad[i], strlen(set_bad[i]), CLIENT_SET, "k", &r),
                         CLIENT_BAD);
    }
    /* a line that never ends */
    char *longline = malloc(CLIENT_LINE_MAX + 10);
    memset(longline, 'A', CLIENT_LINE_MAX + 10);
    assert_int_equal(client_text_parse(longline, CLIENT_LINE_MAX + 10, CLIENT_SET, "k", 1, &r),
                     CLIENT_BAD);
    assert_int_equal(client_text_parse(longline, CLIENT_LINE_MAX - 1, CLIENT_SET, "k", 1, &r),
                     CLIENT_NEED_MORE);
    free(longline);
}

static void test_pipelined_replies_in_order(void **state)
{
    (void)state;
    const char *s = "STORED\r\nVALUE a 0 1\r\n1\r\nEND\r\nEND\r\nNOT_STORED\r\n";
    enum client_op ops[] = {CLIENT_SET, CLIENT_GET, CLIENT_GET, CLIENT_APPEND};
    const char *keys[] = {"a", "a", "b", "c"};
    enum client_outcome want[] = {CLIENT_STORED, CLIENT_HIT, CLIENT_MISS, CLIENT_NOT_STORED};
    size_t pos = 0, len = strlen(s);

    for (int i = 0; i < 4; i++) {
        struct client_reply r;
        assert_int_equal(client_text_parse(s + pos, len - pos, ops[i], keys[i], 1, &r),
                         CLIENT_DONE);
        assert_int_equal(r.outcome, want[i]);
        pos += r.consumed;
    }
    assert_int_equal(pos, len);
}

static void test_encoders(void **state)
{
    (void)state;
    char out[CLIENT_LINE_SPACE(250)];
    size_t n;

    n = client_text_get(out, "key:42", 6);
    assert_int_equal(n, 12);
    assert_memory_equal(out, "get key:42\r\n", n);
    n = client_text_store(out, CLIENT_SET, "k", 1, 0, 0, 100);
    assert_memory_equal(out, "set k 0 0 100\r\n", n);
    n = client_text_store(out, CLIENT_ADD, "inbox:7", 7, 3, 60, 0);
    assert_memory_equal(out, "add inbox:7 3 60 0\r\n", n);
    n = client_text_store(out, CLIENT_APPEND, "inbox:7", 7, 0, 0, 4294967295u);
    assert_memory_equal(out, "append inbox:7 0 0 4294967295\r\n", n);

    /* the longest line fits the space the header promises */
    char key[251];
    memset(key, 'k', 250);
    key[250] = '\0';
    n = client_text_store(out, CLIENT_APPEND, key, 250, UINT32_MAX, UINT32_MAX, SIZE_MAX);
    assert_true(n <= sizeof(out));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_storage_replies),
        cmocka_unit_test(test_get_hit_and_miss),
        cmocka_unit_test(test_get_need_reports_size),
        cmocka_unit_test(test_get_errors_are_outcomes),
        cmocka_unit_test(test_garbage_is_bad),
        cmocka_unit_test(test_pipelined_replies_in_order),
        cmocka_unit_test(test_encoders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
