/* Fan-out plan: follower counts by rank (a power law), followers by seeded permutations. */
#include "tools/bench/fanout.h"

#include <math.h>

static uint64_t gcd_u64(uint64_t a, uint64_t b)
{
    while (b != 0) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Inverse of a modulo n (gcd(a, n) == 1), by the extended Euclidean algorithm. */
static uint64_t mod_inverse(uint64_t a, uint64_t n)
{
    __int128 t = 0, newt = 1;
    __int128 r = (__int128)n, newr = (__int128)(a % n);

    while (newr != 0) {
        __int128 q = r / newr;
        __int128 tmp = t - q * newt;
        t = newt;
        newt = tmp;
        tmp = r - q * newr;
        r = newr;
        newr = tmp;
    }
    if (t < 0) {
        t += (__int128)n;
    }
    return (uint64_t)t;
}

static uint64_t mulmod(uint64_t a, uint64_t b, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)a * b) % n);
}

/* A seeded affine bijection x -> (mul * x + add) mod n, with its inverse multiplier. */
static void make_perm(uint64_t n, uint64_t *state, uint64_t *mul, uint64_t *add, uint64_t *inv)
{
    uint64_t m;
    if (n == 1) {
        *mul = 1;
        *add = 0;
        *inv = 1;
        return;
    }
    do {
        m = rng_splitmix64(state) % n;
    } while (m == 0 || gcd_u64(m, n) != 1);
    *mul = m;
    *add = rng_splitmix64(state) % n;
    *inv = mod_inverse(m, n);
}

/* Ranks summed exactly up to here; beyond, the tail sum of r^-alpha is an integral. */
#define EXACT_TERMS 20000

/* Mean of max * r^-alpha over r = 1..n (before rounding), for the exponent search. */
static double smooth_mean(uint64_t n, double max, double alpha)
{
    double sum = 0.0;
    uint64_t exact = n < EXACT_TERMS ? n : EXACT_TERMS;

    for (uint64_t r = 1; r <= exact; r++) {
        sum += pow((double)r, -alpha);
    }
    if (n > exact) {
        /* sum_{r=a..b} r^-alpha ~ integral from a-1/2 to b+1/2 (midpoint rule) */
        double a = (double)exact + 0.5, b = (double)n + 0.5;
        if (fabs(alpha - 1.0) < 1e-12) {
            sum += log(b / a);
        } else {
            sum += (pow(b, 1.0 - alpha) - pow(a, 1.0 - alpha)) / (1.0 - alpha);
        }
    }
    return max * sum / (double)n;
}

static uint32_t count_for(uint32_t max, double alpha, uint64_t rank)
{
    double c = floor((double)max * pow((double)rank, -alpha) + 0.5);
    return c < 1.0 ? 1u : (uint32_t)c;
}

bool fanout_plan_init(struct fanout_plan *p, uint64_t users, uint32_t max_followers,
                      double mean_target, uint64_t seed, const char **err)
{
    if (users < 2) {
        *err = "the fan-out needs at least 2 users";
        return false;
    }
    if (max_followers < 1 || max_followers >= users) {
        *err = "the most followers must be at least 1 and less than the number of users";
        return false;
    }
    if (!(mean_target >= 1.0) || mean_target > (double)max_followers) {
        *err = "the mean follower count must be between 1 and the most followers";
        return false;
    }
    p->users = users;
    p->max_followers = max_followers;
    p->mean_target = mean_target;
    p->seed = seed;

    /* smooth_mean falls as alpha grows: bisect for the target */
    double lo = 0.0, hi = 30.0;
    for (int i = 0; i < 80; i++) {
        double mid = 0.5 * (lo + hi);
        if (smooth_mean(users, (double)max_followers, mid) > mean_target) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    p->alpha = 0.5 * (lo + hi);

    uint64_t st = seed ^ UINT64_C(0x66616e6f75747e31);     /* "fanout~1" */
    make_perm(users, &st, &p->rank_mul, &p->rank_add, &p->rank_mul_inv);
    make_perm(users, &st, &p->fol_mul, &p->fol_add, &p->fol_mul_inv);

    /* the exact mean, rounding included: counts fall with rank, so stop summing once they
     * reach the floor of 1 and count the rest as 1 each */
    double total = 0.0;
    uint64_t r;
    for (r = 1; r <= users; r++) {
        uint32_t c = count_for(max_followers, p->alpha, r);
        if (c == 1) {
            break;
        }
        total += c;
    }
    total += (double)(users - r + 1);
    p->mean = total / (double)users;
    return true;
}

uint32_t fanout_count_of_rank(const struct fanout_plan *p, uint64_t rank)
{
    return count_for(p->max_followers, p->alpha, rank);
}

static uint64_t rank_of(const struct fanout_plan *p, uint64_t user)
{
    return (mulmod(p->rank_mul, user, p->users) + p->rank_add) % p->users + 1;
}

uint32_t fanout_followers(const struct fanout_plan *p, uint64_t user)
{
    return fanout_count_of_rank(p, rank_of(p, user));
}

uint64_t fanout_follower(const struct fanout_plan *p, uint64_t user, uint32_t i)
{
    uint64_t n = p->users;
    /* position of the user in the spreading permutation's image space */
    uint64_t pos = mulmod(p->fol_mul_inv, (user + n - p->fol_add) % n, n);
    /* followers are the next positions after a seeded offset, skipping the user itself */
    uint64_t off = (rng_splitmix64(&(uint64_t){p->seed ^ user}) % (n - 1));
    uint64_t q = (pos + 1 + (off + i) % (n - 1)) % n;
    return (mulmod(p->fol_mul, q, n) + p->fol_add) % n;
}

uint64_t fanout_top_user(const struct fanout_plan *p)
{
    /* rank0 0 = rank_mul * user + rank_add  =>  user = inv * (0 - rank_add) */
    uint64_t n = p->users;
    return mulmod(p->rank_mul_inv, (n - p->rank_add) % n, n);
}

uint64_t fanout_next_actor(const struct fanout_plan *p, struct rng *r)
{
    return rng_below(r, p->users);
}
