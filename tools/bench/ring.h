/* Ketama consistent hashing, compatible with libmemcached's weighted ketama (pylibmc's
 * {"ketama_weighted": True}): MD5 for keys and ring points, 160 points per server share. */
#ifndef MCSTORE_TOOLS_BENCH_RING_H
#define MCSTORE_TOOLS_BENCH_RING_H

#include <stddef.h>
#include <stdint.h>

#define RING_HOST_MAX 255
#define RING_POINTS_PER_SERVER 160      /* libmemcached's MEMCACHED_POINTS_PER_SERVER_KETAMA */
#define RING_DEFAULT_PORT 11211         /* its ring strings leave this port out */

/* One node as the client names it: the ring depends on the host text exactly as written
 * ("localhost" and "127.0.0.1" are different points), the port and the weight. */
struct ring_node {
    char host[RING_HOST_MAX + 1];
    uint16_t port;
    uint32_t weight;            /* 0 counts as 1, as libmemcached does */
};

struct ring;

/*
 * Builds the continuum of n (>= 1) nodes, in the given order (a key's owner is reported as
 * an index into nodes). Returns NULL when n is 0, when out of memory or when MD5 is
 * unavailable. The ring is read-only afterwards: lookups from many threads are safe.
 */
struct ring *ring_create(const struct ring_node *nodes, size_t n);

/* Frees a ring (NULL is fine). */
void ring_free(struct ring *r);

/* libmemcached's MD5 key hash: the first 4 bytes of MD5(key), little endian. */
uint32_t ring_hash(const char *key, size_t nkey);

/* Index of the node owning a hash value: the first ring point >= hash, wrapping to the
 * first point. */
size_t ring_lookup(const struct ring *r, uint32_t hash);

/* Index of the node owning a key: ring_lookup(r, ring_hash(key)). A one-node ring answers 0
 * without hashing. */
size_t ring_node_for_key(const struct ring *r, const char *key, size_t nkey);

/* Number of points on the continuum (160 per node for equal weights). */
size_t ring_point_count(const struct ring *r);

#endif
