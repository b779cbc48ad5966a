/* The ketama continuum: libmemcached's update_continuum() and twemproxy's ketama_update(). */
#include "tools/ring/ring.h"
#include "tools/ring/ring_err.h"
#include "tools/ring/ring_md5.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LM_POINTS_PER_SERVER 100        /* libmemcached's MEMCACHED_POINTS_PER_SERVER */
#define KETAMA_POINTS_PER_SHARE 160     /* MEMCACHED_POINTS_PER_SERVER_KETAMA, twemproxy's */
#define TWEMPROXY_POINT_NAME_MAX 85     /* its snprintf into char[86] (KETAMA_MAX_HOSTLEN) */

struct ring_point {
    uint32_t value;
    uint32_t node;
};

struct ring {
    struct ring_config cfg;             /* hash resolved */
    struct ring_node *nodes;
    size_t nnodes;
    struct ring_point *points;          /* ascending by value, then node */
    size_t npoints;
};

static uint32_t weight_of(const struct ring_node *n)
{
    return n->weight ? n->weight : 1;
}

/* Whether libmemcached's plain ketama goes weighted: it does as soon as a weight is > 1. */
static bool lm_weighted(const struct ring_node *nodes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (weight_of(&nodes[i]) > 1) {
            return true;
        }
    }
    return false;
}

static bool uses_weighted_points(const struct ring_config *cfg, const struct ring_node *nodes,
                                 size_t n)
{
    return cfg->kind != RING_LIBMEMCACHED_KETAMA || lm_weighted(nodes, n);
}

/*
 * Both clients compute a node's share in single precision:
 *   floorf(pct * 160 / 4 * (float)live_servers + 0.0000000001) * 4
 * (the tiny constant is lost in float), so n equal weights do not always give 160 points.
 * Repeating the float arithmetic step by step keeps the same point counts.
 */
static uint32_t weighted_points(uint32_t weight, uint64_t total_weight, size_t nnodes)
{
    volatile float pct = (float)weight / (float)total_weight;
    volatile float x = pct * (float)KETAMA_POINTS_PER_SHARE;
    x = x / 4.0f;
    x = x * (float)nnodes;
    double y = (double)x + 0.0000000001;
    return (uint32_t)floorf((float)y) * 4u;
}

/* The text whose hashes give a node's points, without the "-k" suffix. */
static int point_base(enum ring_kind kind, const struct ring_node *n, char *buf, size_t len)
{
    int w;

    if (kind == RING_TWEMPROXY_KETAMA && n->name[0] != '\0') {
        w = snprintf(buf, len, "%s", n->name);
    } else if (n->port == RING_DEFAULT_PORT) {
        w = snprintf(buf, len, "%s", n->host);
    } else {
        w = snprintf(buf, len, "%s:%u", n->host, (unsigned)n->port);
    }
    return (w < 0 || (size_t)w >= len) ? -1 : w;
}

char *ring_node_label(const struct ring_node *node, char *buf, size_t len)
{
    if (len == 0) {
        return buf;
    }
    if (node->name[0] != '\0') {
        snprintf(buf, len, "%s", node->name);
    } else if (strchr(node->host, ':') != NULL) {
        snprintf(buf, len, "[%s]:%u", node->host, (unsigned)node->port);
    } else {
        snprintf(buf, len, "%s:%u", node->host, (unsigned)node->port);
    }
    return buf;
}

static bool hash_supported(enum ring_kind kind, enum ring_hash h)
{
    if (kind == RING_TWEMPROXY_KETAMA) {
        return true;
    }
    /* libmemcached's hashkit has no crc16 and no full crc32 */
    return h != RING_HASH_CRC16 && h != RING_HASH_CRC32A;
}

struct label {
    char text[RING_LABEL_MAX];
    size_t node;
};

static int label_cmp(const void *a, const void *b)
{
    const struct label *x = a, *y = b;
    int c = strcmp(x->text, y->text);

    return c != 0 ? c : (x->node < y->node ? -1 : x->node > y->node);
}

/* No two nodes with one label (sorted, so long lists stay cheap). */
static int check_unique(const struct ring_node *nodes, size_t n, char *err, size_t errlen)
{
    struct label *l = malloc(n * sizeof(*l));

    if (l == NULL) {
        ring_set_err(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        ring_node_label(&nodes[i], l[i].text, sizeof(l[i].text));
        l[i].node = i;
    }
    qsort(l, n, sizeof(*l), label_cmp);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(l[i - 1].text, l[i].text) == 0) {
            ring_set_err(err, errlen, "node %zu and node %zu are both %s", l[i - 1].node + 1,
                    l[i].node + 1, l[i].text);
            free(l);
            return -1;
        }
    }
    free(l);
    return 0;
}

int ring_validate(const struct ring_config *cfg, const struct ring_node *nodes, size_t n,
                  char *err, size_t errlen)
{
    uint64_t total_weight = 0;

    if (cfg->kind != RING_LIBMEMCACHED_KETAMA && cfg->kind != RING_LIBMEMCACHED_KETAMA_WEIGHTED
        && cfg->kind != RING_TWEMPROXY_KETAMA) {
        ring_set_err(err, errlen, "unknown ring kind %d", (int)cfg->kind);
        return -1;
    }
    if ((unsigned)cfg->hash > (unsigned)RING_HASH_JENKINS) {
        ring_set_err(err, errlen, "unknown hash %d", (int)cfg->hash);
        return -1;
    }
    if (!hash_supported(cfg->kind, cfg->hash)) {
        ring_set_err(err, errlen, "libmemcached has no %s hash (twemproxy only)",
                ring_hash_name(cfg->hash));
        return -1;
    }
    if (cfg->hash_tag[0] != '\0') {
        if (cfg->kind != RING_TWEMPROXY_KETAMA) {
            ring_set_err(err, errlen, "a hash tag is a twemproxy setting; libmemcached hashes the "
                    "whole key");
            return -1;
        }
        if (cfg->hash_tag[1] == '\0' || cfg->hash_tag[2] != '\0') {
            ring_set_err(err, errlen, "a hash tag has exactly two characters (like \"{}\")");
            return -1;
        }
    }
    if (n == 0) {
        ring_set_err(err, errlen, "no nodes");
        return -1;
    }
    if (n > UINT32_MAX / KETAMA_POINTS_PER_SHARE) {
        ring_set_err(err, errlen, "too many nodes (%zu)", n);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (nodes[i].host[0] == '\0' || memchr(nodes[i].host, '\0', sizeof(nodes[i].host))
            == NULL || memchr(nodes[i].name, '\0', sizeof(nodes[i].name)) == NULL) {
            ring_set_err(err, errlen, "node %zu: empty or unterminated host or name", i + 1);
            return -1;
        }
        if (weight_of(&nodes[i]) > RING_WEIGHT_MAX) {
            ring_set_err(err, errlen, "node %zu: weight %u is above %u", i + 1,
                    (unsigned)nodes[i].weight, (unsigned)RING_WEIGHT_MAX);
            return -1;
        }
        total_weight += weight_of(&nodes[i]);
    }
    for (size_t i = 0; i < n; i++) {
        char base[RING_LABEL_MAX];
        int len = point_base(cfg->kind, &nodes[i], base, sizeof(base));

        if (len < 0) {
            ring_set_err(err, errlen, "node %zu: name too long", i + 1);
            return -1;
        }
        if (cfg->kind == RING_TWEMPROXY_KETAMA) {
            /* past 85 bytes nutcracker hashes bytes beyond its buffer: no ring to agree on */
            uint32_t pts = weighted_points(weight_of(&nodes[i]), total_weight, n);
            char probe[32];
            int plen = snprintf(probe, sizeof(probe), "-%u", pts >= 4 ? pts / 4 - 1 : 0);
            if (len + plen > TWEMPROXY_POINT_NAME_MAX) {
                ring_set_err(err, errlen, "node %zu: twemproxy cannot hash the name \"%s\" (its "
                        "ring points take at most %d bytes)", i + 1, base,
                        TWEMPROXY_POINT_NAME_MAX);
                return -1;
            }
        }
    }
    return check_unique(nodes, n, err, errlen);
}

static int point_cmp(const void *a, const void *b)
{
    const struct ring_point *x = a, *y = b;

    if (x->value != y->value) {
        return x->value < y->value ? -1 : 1;
    }
    /* libmemcached breaks ties by server index; twemproxy's qsort leaves them unordered */
    return x->node < y->node ? -1 : x->node > y->node;
}

/* Adds the points of node i: 4 per MD5 of "base-k" (weighted), or one hash each. */
static int add_points(struct ring *r, size_t i, uint32_t npoints, bool weighted)
{
    char base[RING_LABEL_MAX];
    int blen = point_base(r->cfg.kind, &r->nodes[i], base, sizeof(base));

    if (blen < 0) {
        return -1;
    }
    for (uint32_t k = 0; k < (weighted ? npoints / 4 : npoints); k++) {
        char s[RING_LABEL_MAX + 16];
        int len = snprintf(s, sizeof(s), "%s-%u", base, (unsigned)k);

        if (len < 0 || (size_t)len >= sizeof(s)) {
            return -1;
        }
        if (weighted) {
            unsigned char d[16];
            if (ring_md5(s, (size_t)len, d) != 0) {
                return -1;
            }
            for (int a = 0; a < 4; a++) {
                const unsigned char *p = d + 4 * a;
                r->points[r->npoints].value = (uint32_t)p[0] | (uint32_t)p[1] << 8
                                              | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
                r->points[r->npoints].node = (uint32_t)i;
                r->npoints++;
            }
        } else {
            r->points[r->npoints].value = ring_hash_key(r->cfg.hash, s, (size_t)len);
            r->points[r->npoints].node = (uint32_t)i;
            r->npoints++;
        }
    }
    return 0;
}

struct ring *ring_create(const struct ring_config *cfg, const struct ring_node *nodes,
                         size_t n)
{
    struct ring *r = NULL;
    uint64_t total_weight = 0;
    size_t cap = 0;
    bool weighted;

    if (cfg == NULL || nodes == NULL || ring_validate(cfg, nodes, n, NULL, 0) != 0) {
        return NULL;
    }
    weighted = uses_weighted_points(cfg, nodes, n);
    for (size_t i = 0; i < n; i++) {
        total_weight += weight_of(&nodes[i]);
    }
    for (size_t i = 0; i < n; i++) {
        cap += weighted ? weighted_points(weight_of(&nodes[i]), total_weight, n)
                        : LM_POINTS_PER_SERVER;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        goto fail;
    }
    r->cfg = *cfg;
    if (r->cfg.hash == RING_HASH_DEFAULT) {
        r->cfg.hash = ring_default_hash(cfg->kind);
    }
    r->nodes = malloc(n * sizeof(*r->nodes));
    r->points = calloc(cap ? cap : 1, sizeof(*r->points));
    if (r->nodes == NULL || r->points == NULL) {
        goto fail;
    }
    memcpy(r->nodes, nodes, n * sizeof(*nodes));
    r->nnodes = n;
    for (size_t i = 0; i < n; i++) {
        uint32_t pts = weighted ? weighted_points(weight_of(&nodes[i]), total_weight, n)
                                : LM_POINTS_PER_SERVER;
        if (add_points(r, i, pts, weighted) != 0) {
            goto fail;
        }
    }
    if (r->npoints == 0) {
        goto fail;
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
        free(r->nodes);
        free(r);
    }
}

/* index of the first point >= hash, or npoints */
static size_t lower_bound(const struct ring *r, uint32_t hash)
{
    size_t lo = 0, hi = r->npoints;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->points[mid].value < hash) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

size_t ring_lookup(const struct ring *r, uint32_t hash)
{
    size_t i = lower_bound(r, hash);

    return r->points[i == r->npoints ? 0 : i].node;
}

uint32_t ring_key_hash(const struct ring *r, const char *key, size_t nkey)
{
    if (r->cfg.kind == RING_TWEMPROXY_KETAMA) {
        const char *tag = r->cfg.hash_tag;
        if (tag[0] != '\0') {
            const char *s = memchr(key, tag[0], nkey);
            if (s != NULL) {
                const char *e = memchr(s + 1, tag[1], nkey - (size_t)(s + 1 - key));
                /* an empty tag ("{}") hashes the whole key, as nutcracker does */
                if (e != NULL && e - s > 1) {
                    key = s + 1;
                    nkey = (size_t)(e - key);
                }
            }
        }
        if (nkey == 0) {
            return 0;
        }
    }
    return ring_hash_key(r->cfg.hash, key, nkey);
}

size_t ring_node_for_key(const struct ring *r, const char *key, size_t nkey)
{
    if (r->nnodes == 1) {
        return 0;
    }
    return ring_lookup(r, ring_key_hash(r, key, nkey));
}

size_t ring_point_count(const struct ring *r)
{
    return r->npoints;
}

void ring_point(const struct ring *r, size_t i, uint32_t *value, size_t *node)
{
    *value = r->points[i].value;
    *node = r->points[i].node;
}

size_t ring_node_count(const struct ring *r)
{
    return r->nnodes;
}

const struct ring_node *ring_node(const struct ring *r, size_t i)
{
    return &r->nodes[i];
}

const struct ring_config *ring_config(const struct ring *r)
{
    return &r->cfg;
}

void ring_node_space(const struct ring *r, uint64_t *space)
{
    uint64_t prev = 0;          /* first hash value not yet counted */

    memset(space, 0, r->nnodes * sizeof(*space));
    for (size_t i = 0; i < r->npoints; i++) {
        uint64_t v = r->points[i].value;
        if (v + 1 > prev) {
            space[r->points[i].node] += v + 1 - prev;
            prev = v + 1;
        }
    }
    /* past the last point the ring wraps to the first */
    space[r->points[0].node] += (UINT64_C(1) << 32) - prev;
}

static int push_range(struct ring_range **a, size_t *n, size_t *cap, uint64_t start,
                      uint64_t end, size_t old_node, size_t new_node)
{
    if (*n > 0) {
        struct ring_range *last = &(*a)[*n - 1];
        if (last->old_node == old_node && last->new_node == new_node
            && (uint64_t)last->end + 1 == start) {
            last->end = (uint32_t)end;
            return 0;
        }
    }
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        struct ring_range *p = realloc(*a, ncap * sizeof(*p));
        if (p == NULL) {
            return -1;
        }
        *a = p;
        *cap = ncap;
    }
    (*a)[*n] = (struct ring_range){(uint32_t)start, (uint32_t)end, old_node, new_node};
    (*n)++;
    return 0;
}

int ring_diff(const struct ring *old_ring, const struct ring *new_ring,
              struct ring_range **ranges, size_t *n)
{
    const struct ring *a = old_ring, *b = new_ring;
    size_t ia = 0, ib = 0, cap = 0;
    uint64_t start = 0;

    *ranges = NULL;
    *n = 0;
    /* every point of either ring ends a range (start, value] with one owner in each */
    while (ia < a->npoints || ib < b->npoints) {
        uint64_t v;
        if (ib == b->npoints || (ia < a->npoints && a->points[ia].value <= b->points[ib].value)) {
            v = a->points[ia].value;
        } else {
            v = b->points[ib].value;
        }
        size_t oa = a->points[ia < a->npoints ? ia : 0].node;
        size_t ob = b->points[ib < b->npoints ? ib : 0].node;
        if (push_range(ranges, n, &cap, start, v, oa, ob) != 0) {
            goto fail;
        }
        while (ia < a->npoints && a->points[ia].value <= v) {
            ia++;
        }
        while (ib < b->npoints && b->points[ib].value <= v) {
            ib++;
        }
        start = v + 1;
    }
    if (start <= UINT32_MAX) {
        /* no merge across the top: push_range only joins adjacent ranges */
        if (push_range(ranges, n, &cap, start, UINT32_MAX, a->points[0].node,
                       b->points[0].node) != 0) {
            goto fail;
        }
    }
    return 0;

fail:
    free(*ranges);
    *ranges = NULL;
    *n = 0;
    return -1;
}
