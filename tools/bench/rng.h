/* Seedable pseudo-random numbers for the load generator: xoshiro256** seeded by splitmix64. */
#ifndef MCSTORE_TOOLS_BENCH_RNG_H
#define MCSTORE_TOOLS_BENCH_RNG_H

#include <stdint.h>

/* One generator; not thread-safe: give each thread its own (rng_seed with a distinct stream). */
struct rng {
    uint64_t s[4];
};

/* splitmix64: one step of the seeding sequence; also a good 64-bit mixing function. */
static inline uint64_t rng_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/*
 * Seeds r from (seed, stream): the same pair always gives the same sequence, and different
 * streams (one per thread, say) give independent-looking sequences.
 */
static inline void rng_seed(struct rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t st = seed ^ rng_splitmix64(&stream);
    for (int i = 0; i < 4; i++) {
        r->s[i] = rng_splitmix64(&st);
    }
}

static inline uint64_t rng_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* The next 64 random bits. */
static inline uint64_t rng_next(struct rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rng_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rng_rotl(s[3], 45);
    return result;
}

/* A uniform integer in [0, n), n > 0, without modulo bias (Lemire's multiply-and-reject). */
static inline uint64_t rng_below(struct rng *r, uint64_t n)
{
    unsigned __int128 m = (unsigned __int128)rng_next(r) * n;
    uint64_t low = (uint64_t)m;

    if (low < n) {
        uint64_t threshold = (0 - n) % n;
        while (low < threshold) {
            m = (unsigned __int128)rng_next(r) * n;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

/* A uniform double in [0, 1) with 53 random bits. */
static inline double rng_double(struct rng *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

#endif
