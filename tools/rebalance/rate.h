/* mcstore-rebalance: the --rate token bucket (keys per second). */
#ifndef MCSTORE_TOOLS_REBALANCE_RATE_H
#define MCSTORE_TOOLS_REBALANCE_RATE_H

#include <stdint.h>

/*
 * A token bucket over keys: tokens accrue at rate per second up to burst, and a batch of n
 * keys may start once n tokens are there. Times are seconds on a monotonic clock passed in
 * by the caller, so the bucket is pure and its tests need no clock. Not thread-safe.
 */
struct rb_rate {
    double rate;        /* tokens per second; 0 = unlimited */
    double burst;       /* most tokens kept (and the largest batch the bucket lets through) */
    double tokens;
    double last;        /* time of the last refill */
};

/* An unlimited bucket when rate is 0; else burst = max(1, rate / 10) and a full bucket. */
void rb_rate_init(struct rb_rate *r, double rate, double now);

/* The largest batch worth asking for: want, cut to the burst (at least 1). */
uint32_t rb_rate_batch(const struct rb_rate *r, uint32_t want);

/*
 * Takes n tokens if they are there at time now (returns 0), else returns how many seconds to
 * wait before they will be (nothing taken). n above the burst is treated as the burst.
 */
double rb_rate_take(struct rb_rate *r, uint32_t n, double now);

#endif
