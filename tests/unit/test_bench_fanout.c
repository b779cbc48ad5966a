/* Unit tests of the fan-out plan (tools/bench/fanout.c): deterministic, max 40,000, mean ~100. */

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tools/bench/fanout.h"
#include "tools/bench/rng.h"

#define USERS 100000
#define MAXF 40000

static struct fanout_plan plan_of(uint64_t seed)
{
    struct fanout_plan p;
    const char *err = NULL;
    assert_true(fanout_plan_init(&p, USERS, MAXF, 100.0, seed, &err));
    return p;
}

static void test_max_and_mean(void **state)
{
    (void)state;
    struct fanout_plan p = plan_of(1);
    uint64_t total = 0;
    uint32_t max = 0;
    uint64_t argmax = 0;

    for (uint64_t u = 0; u < USERS; u++) {
        uint32_t c = fanout_followers(&p, u);
        assert_true(c >= 1 && c <= MAXF);
        total += c;
        if (c > max) {
            max = c;
            argmax = u;
        }
    }
    /* exactly one user has the most followers: 40,000, and fanout_top_user finds it */
    assert_int_equal(max, MAXF);
    assert_int_equal(argmax, fanout_top_user(&p));
    assert_int_equal(fanout_followers(&p, fanout_top_user(&p)), MAXF);
    /* the mean is the one asked for, and the plan reports it exactly */
    double mean = (double)total / USERS;
    printf("# mean followers %.3f, exponent %.4f\n", mean, p.alpha);
    assert_true(mean > 95.0 && mean < 105.0);
    assert_true(fabs(mean - p.mean) < 1e-6);
}

static int cmp_desc(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static void test_power_law_by_rank(void **state)
{
    (void)state;
    struct fanout_plan p = plan_of(1);

    assert_int_equal(fanout_count_of_rank(&p, 1), MAXF);
    for (uint64_t r = 2; r <= USERS; r++) {
        assert_true(fanout_count_of_rank(&p, r) <= fanout_count_of_rank(&p, r - 1));
    }
    /* count(r) = max * r^-alpha: ten times the rank, 10^alpha times fewer followers */
    double ratio = (double)fanout_count_of_rank(&p, 100) / fanout_count_of_rank(&p, 1000);
    assert_true(fabs(ratio - pow(10.0, p.alpha)) < 0.02 * pow(10.0, p.alpha));
    /* each rank belongs to exactly one user (the rank permutation is a bijection): the
     * users' follower counts, sorted, are the counts of ranks 1..USERS */
    uint32_t *by_user = malloc(USERS * sizeof(*by_user));
    assert_non_null(by_user);
    for (uint64_t u = 0; u < USERS; u++) {
        by_user[u] = fanout_followers(&p, u);
    }
    qsort(by_user, USERS, sizeof(*by_user), cmp_desc);
    for (uint64_t r = 1; r <= USERS; r++) {
        assert_int_equal(by_user[r - 1], fanout_count_of_rank(&p, r));
    }
    free(by_user);
}

static void test_followers_distinct(void **state)
{
    (void)state;
    struct fanout_plan p = plan_of(7);
    uint8_t *seen = malloc(USERS);
    uint64_t users[] = {fanout_top_user(&p), 0, 1, 12345, USERS - 1};

    assert_non_null(seen);
    for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
        uint64_t u = users[i];
        uint32_t n = fanout_followers(&p, u);
        memset(seen, 0, USERS);
        for (uint32_t j = 0; j < n; j++) {
            uint64_t f = fanout_follower(&p, u, j);
            assert_true(f < USERS);
            assert_true(f != u);
            assert_int_equal(seen[f], 0);
            seen[f] = 1;
        }
    }
    free(seen);
}

static void test_deterministic_with_seed(void **state)
{
    (void)state;
    struct fanout_plan a = plan_of(42), b = plan_of(42), c = plan_of(43);
    struct rng ra, rb;

    assert_int_equal(fanout_top_user(&a), fanout_top_user(&b));
    assert_true(a.alpha == b.alpha);
    rng_seed(&ra, 42, 2);
    rng_seed(&rb, 42, 2);
    for (int i = 0; i < 1000; i++) {
        uint64_t u = fanout_next_actor(&a, &ra);
        assert_int_equal(u, fanout_next_actor(&b, &rb));
        uint32_t n = fanout_followers(&a, u);
        assert_int_equal(n, fanout_followers(&b, u));
        for (uint32_t j = 0; j < n && j < 50; j++) {
            assert_int_equal(fanout_follower(&a, u, j), fanout_follower(&b, u, j));
        }
    }
    /* another seed: another graph (same degree sequence, other users and followers) */
    int differ = 0;
    for (uint64_t u = 0; u < 1000; u++) {
        differ += fanout_followers(&a, u) != fanout_followers(&c, u)
                  || fanout_follower(&a, u, 0) != fanout_follower(&c, u, 0);
    }
    assert_true(differ > 900);
}

static void test_actions_mean_fanout(void **state)
{
    (void)state;
    struct fanout_plan p = plan_of(1);
    struct rng r;
    uint64_t writes = 0;
    const int actions = 200000;

    /* actors are uniform over users: an action writes ~ the mean follower count */
    rng_seed(&r, 1, 2);
    for (int i = 0; i < actions; i++) {
        writes += fanout_followers(&p, fanout_next_actor(&p, &r));
    }
    double mean = (double)writes / actions;
    printf("# mean writes per action %.2f\n", mean);
    assert_true(mean > 85.0 && mean < 115.0);
}

static void test_rejects_impossible_plans(void **state)
{
    (void)state;
    struct fanout_plan p;
    const char *err = NULL;

    assert_false(fanout_plan_init(&p, 1, 1, 1.0, 1, &err));
    assert_non_null(err);
    assert_false(fanout_plan_init(&p, 1000, 1000, 10.0, 1, &err));   /* max >= users */
    assert_false(fanout_plan_init(&p, 1000, 100, 200.0, 1, &err));   /* mean > max */
    assert_false(fanout_plan_init(&p, 1000, 100, 0.5, 1, &err));     /* mean < 1 */
    assert_true(fanout_plan_init(&p, 2, 1, 1.0, 1, &err));
    assert_int_equal(fanout_follower(&p, 0, 0), 1);
    assert_int_equal(fanout_follower(&p, 1, 0), 0);
}

static void test_other_sizes_meet_the_mean(void **state)
{
    (void)state;
    struct {
        uint64_t users;
        uint32_t max;
        double mean;
    } cases[] = {
        {1000000, 40000, 100.0}, {50000, 40000, 100.0}, {10000, 5000, 20.0}, {100, 50, 3.0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fanout_plan p;
        const char *err = NULL;
        assert_true(fanout_plan_init(&p, cases[i].users, cases[i].max, cases[i].mean, 3, &err));
        assert_int_equal(fanout_followers(&p, fanout_top_user(&p)), cases[i].max);
        assert_true(fabs(p.mean - cases[i].mean) < 0.05 * cases[i].mean);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_max_and_mean),
        cmocka_unit_test(test_power_law_by_rank),
        cmocka_unit_test(test_followers_distinct),
        cmocka_unit_test(test_deterministic_with_seed),
        cmocka_unit_test(test_actions_mean_fanout),
        cmocka_unit_test(test_rejects_impossible_plans),
        cmocka_unit_test(test_other_sizes_meet_the_mean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
