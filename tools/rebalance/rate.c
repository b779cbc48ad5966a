/* mcstore-rebalance: the --rate token bucket. */
#include "tools/rebalance/rate.h"

void rb_rate_init(struct rb_rate *r, double rate, double now)
{
    r->rate = rate > 0 ? rate : 0;
    /* a tenth of a second's worth: batches stay small enough for an even pace */
    r->burst = r->rate / 10 > 1 ? r->rate / 10 : 1;
    r->tokens = r->burst;
    r->last = now;
}

uint32_t rb_rate_batch(const struct rb_rate *r, uint32_t want)
{
    if (r->rate == 0 || want <= r->burst) {
        return want > 0 ? want : 1;
    }
    return (uint32_t)r->burst;
}

double rb_rate_take(struct rb_rate *r, uint32_t n, double now)
{
    if (r->rate == 0) {
        return 0;
    }
    double need = (double)n > r->burst ? r->burst : (double)n;
    if (now > r->last) {
        r->tokens += (now - r->last) * r->rate;
        if (r->tokens > r->burst) {
            r->tokens = r->burst;
        }
        r->last = now;
    }
    if (r->tokens + 1e-9 >= need) {
        r->tokens -= need;
        return 0;
    }
    return (need - r->tokens) / r->rate;
}
