/* Unit tests of the latency histogram (tools/bench/hist.c): percentiles on known data. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "tools/bench/hist.h"
#include "tools/bench/rng.h"

static struct hist *new_hist(void)
{
    struct hist *h = malloc(sizeof(*h));
    assert_non_null(h);
    hist_init(h);
    return h;
}

/* |got - want| <= 1% of want */
static void assert_within_1pct(uint64_t got, uint64_t want)
{
    double err = (double)got - (double)want;
    if (err < 0) {
        err = -err;
    }
    if (err > 0.01 * (double)want) {
        printf("# FAIL got %llu, want %llu (+-1%%)\n", (unsigned long long)got,
               (unsigned long long)want);
        fail();
    }
}

static void test_empty(void **state)
{
    (void)state;
    struct hist *h = new_hist();
    assert_int_equal(hist_percentile(h, 50), 0);
    assert_int_equal(hist_percentile(h, 100), 0);
    assert_true(hist_mean(h) == 0.0);
    free(h);
}

static void test_small_values_are_exact(void **state)
{
    (void)state;
    struct hist *h = new_hist();

    for (uint64_t v = 1; v <= 100; v++) {
        hist_record(h, v);
    }
    assert_int_equal(h->count, 100);
    assert_int_equal(h->min, 1);
    assert_int_equal(h->max, 100);
    assert_int_equal(hist_percentile(h, 0), 1);
    assert_int_equal(hist_percentile(h, 1), 1);
    assert_int_equal(hist_percentile(h, 50), 50);
    assert_int_equal(hist_percentile(h, 90), 90);
    assert_int_equal(hist_percentile(h, 99), 99);
    assert_int_equal(hist_percentile(h, 99.9), 100);
    assert_int_equal(hist_percentile(h, 100), 100);
    assert_true(hist_mean(h) == 50.5);
    free(h);
}

static void test_uniform_million(void **state)
{
    (void)state;
    struct hist *h = new_hist();

    /* 1..1,000,000 ns once each: the p-th percentile is p% of a million */
    for (uint64_t v = 1; v <= 1000000; v++) {
        hist_record(h, v);
    }
    assert_within_1pct(hist_percentile(h, 50), 500000);
    assert_within_1pct(hist_percentile(h, 90), 900000);
    assert_within_1pct(hist_percentile(h, 99), 990000);
    assert_within_1pct(hist_percentile(h, 99.9), 999000);
    assert_int_equal(hist_percentile(h, 100), 1000000);
    assert_int_equal(h->max, 1000000);
    /* never below the true value: percentiles report a bucket's upper end */
    assert_true(hist_percentile(h, 50) >= 500000);
    free(h);
}

static void test_skewed_latencies(void **state)
{
    (void)state;
    struct hist *h = new_hist();

    /* 990 requests at 100 us, 9 at 5 ms, 1 at 250 ms */
    for (int i = 0; i < 990; i++) {
        hist_record(h, 100000);
    }
    for (int i = 0; i < 9; i++) {
        hist_record(h, 5000000);
    }
    hist_record(h, 250000000);
    assert_within_1pct(hist_percentile(h, 50), 100000);
    assert_within_1pct(hist_percentile(h, 99), 100000);
    assert_within_1pct(hist_percentile(h, 99.9), 5000000);
    assert_int_equal(hist_percentile(h, 100), 250000000);
    free(h);
}

static void test_bucket_error_bound(void **state)
{
    (void)state;
    struct rng r;
    rng_seed(&r, 42, 0);

    /* any value: its bucket's upper end is within 1/128 of it, and buckets are ordered */
    for (int i = 0; i < 200000; i++) {
        uint64_t v = rng_next(&r) >> (rng_next(&r) % 64);
        size_t idx = hist_index(v);
        assert_true(idx < HIST_BUCKETS);
        uint64_t up = hist_bucket_upper(idx);
        assert_true(up >= v);
        assert_true((double)(up - v) <= (double)v / 128.0 + 1.0);
        if (idx > 0) {
            assert_true(hist_bucket_upper(idx - 1) < v);
        }
    }
    assert_int_equal(hist_index(UINT64_MAX), HIST_BUCKETS - 1);
    assert_true(hist_bucket_upper(HIST_BUCKETS - 1) == UINT64_MAX);
    assert_int_equal(hist_index(255), 255);
    assert_int_equal(hist_index(256), 256);
}

static void test_single_value_percentiles(void **state)
{
    (void)state;
    uint64_t values[] = {0, 1, 255, 256, 257, 1000, 123456, 99999999, UINT64_C(1) << 40,
                         UINT64_MAX};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        struct hist *h = new_hist();
        hist_record(h, values[i]);
        /* clamped to the exact min and max: one value reads back exactly */
        assert_true(hist_percentile(h, 50) == values[i]);
        assert_true(hist_percentile(h, 99.9) == values[i]);
        free(h);
    }
}

static void test_merge_equals_recording_all(void **state)
{
    (void)state;
    struct hist *a = new_hist(), *b = new_hist(), *all = new_hist();
    struct rng r;
    rng_seed(&r, 7, 1);

    for (int i = 0; i < 100000; i++) {
        uint64_t v = 1000 + rng_below(&r, 10000000);
        hist_record(i % 3 ? a : b, v);
        hist_record(all, v);
    }
    hist_merge(a, b);
    assert_int_equal(a->count, all->count);
    assert_int_equal(a->min, all->min);
    assert_int_equal(a->max, all->max);
    double ps[] = {1, 50, 90, 99, 99.9, 99.99, 100};
    for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
        assert_int_equal(hist_percentile(a, ps[i]), hist_percentile(all, ps[i]));
    }
    free(a);
    free(b);
    free(all);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_small_values_are_exact),
        cmocka_unit_test(test_uniform_million),
        cmocka_unit_test(test_skewed_latencies),
        cmocka_unit_test(test_bucket_error_bound),
        cmocka_unit_test(test_single_value_percentiles),
        cmocka_unit_test(test_merge_equals_recording_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
