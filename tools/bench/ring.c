/* The ketama continuum: libmemcached's update_continuum() and dispatch_host() for weighted
 * ketama, with MD5 from OpenSSL's EVP interface. */
#include "tools/bench/ring.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/evp.h>

struct ring_point {
    uint32_t value;
    uint32_t node;
};

struct ring {
    size_t nnodes;
    size_t npoints;
    struct ring_point *points;      /* sorted by value */
};

static EVP_MD *md5_md;
static pthread_once_t md5_once = PTHREAD_ONCE_INIT;

static void md5_fetch(void)
{
    md5_md = EVP_MD_fetch(NULL, "MD5", NULL);
}

static int md5(const void *data, size_t n, unsigned char out[16])
{
    unsigned int len = 0;

    pthread_once(&md5_once, md5_fetch);
    if (md5_md == NULL || !EVP_Digest(data, n, out, &len, md5_md, NULL) || len != 16) {
        return -1;
    }
    return 0;
}

/* four bytes of a digest, little endian, as libmemcached's ketama_server_hash() takes them */
static uint32_t le32(const unsigned char *d)
{
    return (uint32_t)d[3] << 24 | (uint32_t)d[2] << 16 | (uint32_t)d[1] << 8 | (uint32_t)d[0];
}

uint32_t ring_hash(const char *key, size_t nkey)
{
    unsigned char d[16];

    if (md5(key, nkey, d) != 0) {
        return 0;
    }
    return le32(d);
}

static int point_cmp(const void *a, const void *b)
{
    const struct ring_point *x = a, *y = b;

    if (x->value != y->value) {
        return x->value < y->value ? -1 : 1;
    }
    /* libmemcached's qsort leaves equal values in any order; keep ours stable by node */
    return x->node < y->node ? -1 : x->node > y->node;
}

/*
 * libmemcached computes a node's share in single precision:
 *   floorf(pct * 160 / 4 * (float)live_servers + 0.0000000001) * 4
 * (the tiny constant is lost in float), so n equal weights do not always give 160 points.
 * Repeating the float arithmetic step by step keeps the same point counts.
 */
static uint32_t points_for(uint32_t weight, uint64_t total_weight, size_t nnodes)
{
    volatile float pct = (float)weight / (float)total_weight;
    volatile float x = pct * (float)RING_POINTS_PER_SERVER;
    x = x / 4.0f;
    x = x * (float)nnodes;
    double y = (double)x + 0.0000000001;
    return (uint32_t)floorf((float)y) * 4u;
}

struct ring *ring_create(const struct ring_node *nodes, size_t n)
{
    struct ring *r = NULL;
    uint64_t total_weight = 0;
    size_t cap = 0;

    if (n == 0) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        total_weight += nodes[i].weight ? nodes[i].weight : 1;
    }
    for (size_t i = 0; i < n; i++) {
        cap += points_for(nodes[i].weight ? nodes[i].weight : 1, total_weight, n);
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        goto fail;
    }
    r->nnodes = n;
    r->points = calloc(cap ? cap : 1, sizeof(*r->points));
    if (r->points == NULL) {
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t pps = points_for(nodes[i].weight ? nodes[i].weight : 1, total_weight, n);
        /* each MD5 of "host:port-k" (or "host-k" on the default port) gives 4 points */
        for (uint32_t k = 0; k < pps / 4; k++) {
            char s[RING_HOST_MAX + 32];
            int len;
            unsigned char d[16];

            if (nodes[i].port == RING_DEFAULT_PORT) {
                len = snprintf(s, sizeof(s), "%s-%u", nodes[i].host, (unsigned)k);
            } else {
                len = snprintf(s, sizeof(s), "%s:%u-%u", nodes[i].host,
                               (unsigned)nodes[i].port, (unsigned)k);
            }
            if (len < 0 || (size_t)len >= sizeof(s) || md5(s, (size_t)len, d) != 0) {
                goto fail;
            }
            for (int a = 0; a < 4; a++) {
                r->points[r->npoints].value = le32(d + 4 * a);
                r->points[r->npoints].node = (uint32_t)i;
                r->npoints++;
            }
        }
    }
    qsort(r->points, r->npoints, sizeof(*r->points), point_cmp);
    return r;

fail:
    ring_free(r);
    return NULL;
}

void ring_free(struct ring *r)
{
    if (r != NULL) {
        free(r->points);
        free(r);
    }
}

size_t ring_lookup(const struct ring *r, uint32_t hash)
{
    size_t lo = 0, hi = r->npoints;

    if (r->npoints == 0) {
        return 0;
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->points[mid].value < hash) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo == r->npoints) {
        lo = 0;
    }
    return r->points[lo].node;
}

size_t ring_node_for_key(const struct ring *r, const char *key, size_t nkey)
{
    if (r->nnodes == 1) {
        return 0;
    }
    return ring_lookup(r, ring_hash(key, nkey));
}

size_t ring_point_count(const struct ring *r)
{
    return r->npoints;
}
