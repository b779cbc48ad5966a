/* Zipf-distributed ranks by rejection-inversion sampling (Hörmann & Derflinger 1996). */
#ifndef MCSTORE_TOOLS_BENCH_ZIPF_H
#define MCSTORE_TOOLS_BENCH_ZIPF_H

#include <stdbool.h>
#include <stdint.h>

#include "tools/bench/rng.h"

/*
 * P(rank = k) is proportional to 1 / k^s for k in [1, n]. Set-up is O(1) and a draw takes
 * about one iteration on average, for any n and any s > 0 (s = 1 included), so a Zipf key
 * pattern over a billion keys costs nothing up front. The parameters are read-only after
 * zipf_init: one struct may be shared by threads, each drawing with its own rng.
 */
struct zipf {
    uint64_t n;
    double s;
    double h_integral_x1;
    double h_integral_n;
    double threshold;
};

/* Prepares a sampler of ranks 1..n with exponent s. Returns false if n == 0 or s <= 0. */
bool zipf_init(struct zipf *z, uint64_t n, double s);

/* One rank in [1, n]. Deterministic given the rng's state. */
uint64_t zipf_next(const struct zipf *z, struct rng *r);

#endif
