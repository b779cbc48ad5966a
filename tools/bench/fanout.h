/* The fan-out plan: who follows whom, in a social graph whose follower counts follow Zipf. */
#ifndef MCSTORE_TOOLS_BENCH_FANOUT_H
#define MCSTORE_TOOLS_BENCH_FANOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "tools/bench/rng.h"

/*
 * Users 0..users-1. Each user has a popularity rank r in 1..users (a seeded permutation);
 * the user of rank r has max(1, round(max_followers * r^-alpha)) followers, alpha chosen so
 * the mean over all users is mean_target: rank 1 has exactly max_followers. A user's
 * followers are distinct other users, spread over the id space by a second seeded
 * permutation. Everything is a pure function of (users, max_followers, mean_target, seed):
 * no table is stored, and one plan may be shared read-only by threads.
 */
struct fanout_plan {
    uint64_t users;
    uint32_t max_followers;
    double mean_target;
    uint64_t seed;
    double alpha;               /* the power law's exponent that meets mean_target */
    double mean;                /* the plan's exact mean follower count */
    /* rank permutation: rank0 = (rank_mul * user + rank_add) mod users, and its inverse */
    uint64_t rank_mul, rank_add, rank_mul_inv;
    /* follower spreading permutation, same form */
    uint64_t fol_mul, fol_add, fol_mul_inv;
};

/*
 * Builds the plan. Returns false (with *err set to a message) when the numbers cannot work:
 * users < 2, max_followers < 1 or >= users (followers are distinct other users), or
 * mean_target outside [1, max_followers].
 */
bool fanout_plan_init(struct fanout_plan *p, uint64_t users, uint32_t max_followers,
                      double mean_target, uint64_t seed, const char **err);

/* Follower count of the user with popularity rank 'rank' (1-based). */
uint32_t fanout_count_of_rank(const struct fanout_plan *p, uint64_t rank);

/* Follower count of a user. */
uint32_t fanout_followers(const struct fanout_plan *p, uint64_t user);

/* The i-th follower (0 <= i < fanout_followers(user)) of a user: a user id != user; the
 * followers of one user are distinct. */
uint64_t fanout_follower(const struct fanout_plan *p, uint64_t user, uint32_t i);

/* The user with the most followers (rank 1: exactly max_followers). */
uint64_t fanout_top_user(const struct fanout_plan *p);

/* The next acting user: uniform over all users, from the caller's rng (seeded per thread). */
uint64_t fanout_next_actor(const struct fanout_plan *p, struct rng *r);

#endif
