/* Zipf sampler: rejection-inversion over the continuous envelope h(x) = x^-s. */
#include "tools/bench/zipf.h"

#include <math.h>

/* log1p(x) / x, accurate near 0 */
static double helper1(double x)
{
    if (fabs(x) > 1e-8) {
        return log1p(x) / x;
    }
    return 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x));
}

/* expm1(x) / x, accurate near 0 */
static double helper2(double x)
{
    if (fabs(x) > 1e-8) {
        return expm1(x) / x;
    }
    return 1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x));
}

static double h(double s, double x)
{
    return exp(-s * log(x));
}

/* H(x) = integral of h: (x^(1-s) - 1) / (1 - s), or log(x) when s == 1 */
static double h_integral(double s, double x)
{
    double lx = log(x);
    return helper2((1.0 - s) * lx) * lx;
}

static double h_integral_inverse(double s, double x)
{
    double t = x * (1.0 - s);
    if (t < -1.0) {
        t = -1.0;       /* rounding could push it below the domain */
    }
    return exp(helper1(t) * x);
}

bool zipf_init(struct zipf *z, uint64_t n, double s)
{
    if (n == 0 || !(s > 0.0) || !isfinite(s)) {
        return false;
    }
    z->n = n;
    z->s = s;
    z->h_integral_x1 = h_integral(s, 1.5) - 1.0;
    z->h_integral_n = h_integral(s, (double)n + 0.5);
    z->threshold = 2.0 - h_integral_inverse(s, h_integral(s, 2.5) - h(s, 2.0));
    return true;
}

uint64_t zipf_next(const struct zipf *z, struct rng *r)
{
    for (;;) {
        double u = z->h_integral_n + rng_double(r) * (z->h_integral_x1 - z->h_integral_n);
        double x = h_integral_inverse(z->s, u);
        double kd = x + 0.5;
        uint64_t k;

        if (kd < 1.0) {
            k = 1;
        } else if (kd >= (double)z->n) {
            k = z->n;
        } else {
            k = (uint64_t)kd;
        }
        /* accept at once inside the squeeze, else compare against the exact mass of k */
        if ((double)k - x <= z->threshold
            || u >= h_integral(z->s, (double)k + 0.5) - h(z->s, (double)k)) {
            return k;
        }
    }
}
