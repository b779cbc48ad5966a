/* Ketama consistent hashing as libmemcached and twemproxy (nutcracker) compute it. */
#ifndef MCSTORE_TOOLS_RING_RING_H
#define MCSTORE_TOOLS_RING_RING_H

/*
 * Three continuums, each reproducing one client's choice of node for every key:
 *
 *   RING_LIBMEMCACHED_KETAMA           pylibmc {"ketama": True}
 *       With every weight 1: 100 points per node, each the key hash (default one-at-a-time)
 *       of "host:port-k" (libmemcached leaves ":port" out on port 11211), k = 0..99.
 *       With any weight above 1 libmemcached silently switches to the weighted continuum
 *       below, but keeps hashing keys with the key hash: so do we.
 *   RING_LIBMEMCACHED_KETAMA_WEIGHTED  pylibmc {"ketama_weighted": True}
 *       160 points per weight share, 4 from each MD5 of "host:port-k"; keys hashed with MD5.
 *   RING_TWEMPROXY_KETAMA              nutcracker's distribution: ketama
 *       The weighted continuum over each server's name ("name" from the YAML when it gives
 *       one, else "host:port", or "host" on 11211); keys hashed with the pool's hash
 *       (default fnv1a_64), after cutting out the hash_tag part when the key has one.
 *
 * Hash functions treat key bytes as the C code they copy does on x86-64, where char is
 * signed: a few of them sign-extend bytes >= 0x80 (clients built for ARM differ there).
 * A ring is read-only once built: lookups from many threads are safe.
 */

#include <stddef.h>
#include <stdint.h>

#define RING_HOST_MAX 255
#define RING_NAME_MAX 255
#define RING_DEFAULT_PORT 11211         /* ring point names leave this port out */
#define RING_WEIGHT_MAX 1000000

enum ring_kind {
    RING_LIBMEMCACHED_KETAMA,           /* pylibmc {"ketama": True} */
    RING_LIBMEMCACHED_KETAMA_WEIGHTED,  /* pylibmc {"ketama_weighted": True} */
    RING_TWEMPROXY_KETAMA,              /* nutcracker distribution: ketama */
};

/* twemproxy's hash functions; libmemcached has all but crc16 and crc32a */
enum ring_hash {
    RING_HASH_DEFAULT,                  /* what the kind uses by default */
    RING_HASH_MD5,
    RING_HASH_ONE_AT_A_TIME,
    RING_HASH_FNV1_64,
    RING_HASH_FNV1A_64,
    RING_HASH_FNV1_32,
    RING_HASH_FNV1A_32,
    RING_HASH_CRC16,
    RING_HASH_CRC32,                    /* libmemcached's "crc": 15 bits of a CRC-32 */
    RING_HASH_CRC32A,                   /* the whole CRC-32 (twemproxy only) */
    RING_HASH_HSIEH,
    RING_HASH_MURMUR,
    RING_HASH_JENKINS,
};

/*
 * One node as the client names it: ring points depend on the text exactly as written
 * ("localhost" and "127.0.0.1" are different points); host names are never resolved.
 */
struct ring_node {
    char host[RING_HOST_MAX + 1];       /* IPv6 without brackets */
    uint16_t port;
    uint32_t weight;                    /* 0 counts as 1 */
    char name[RING_NAME_MAX + 1];       /* twemproxy server name, "" = none */
};

struct ring_config {
    enum ring_kind kind;
    enum ring_hash hash;
    char hash_tag[3];                   /* "" or 2 chars, twemproxy only */
};

struct ring;

/* One maximal hash range [start, end] (inclusive) and its owners in two rings. */
struct ring_range {
    uint32_t start;
    uint32_t end;
    size_t old_node;                    /* index into the old ring's nodes */
    size_t new_node;                    /* index into the new ring's nodes */
};

/* --- hash functions (tools/ring/hash.c) --- */

/*
 * Hashes key with one function as the clients compute it. RING_HASH_DEFAULT is
 * one-at-a-time here (libmemcached's default); MD5 gives the first 4 digest bytes, little
 * endian. Returns the 32-bit hash (0 when MD5 is unavailable). Thread-safe.
 */
uint32_t ring_hash_key(enum ring_hash h, const char *key, size_t nkey);

/*
 * Parses a hash name: twemproxy's names ("one_at_a_time", "md5", "crc16", "crc32",
 * "crc32a", "fnv1_64", "fnv1a_64", "fnv1_32", "fnv1a_32", "hsieh", "murmur", "jenkins"),
 * plus "default" and libmemcached's "crc" (= crc32). Returns 0 and sets *out, or -1.
 */
int ring_hash_parse(const char *name, enum ring_hash *out);

/* The twemproxy name of a hash ("default" for RING_HASH_DEFAULT). Never NULL. */
const char *ring_hash_name(enum ring_hash h);

/* The hash a kind uses for RING_HASH_DEFAULT (never RING_HASH_DEFAULT). */
enum ring_hash ring_default_hash(enum ring_kind kind);

/* "ketama", "ketama-weighted", "twemproxy-ketama". Never NULL. */
const char *ring_kind_name(enum ring_kind kind);

/* --- the continuum (tools/ring/ring.c) --- */

/*
 * Checks that cfg and nodes make a ring the client would build too: at least one node,
 * a hash the kind's client has, a hash tag only for twemproxy (exactly 2 chars), names
 * and hosts that fit, and no two nodes with the same label (ring_node_label). Returns 0,
 * or -1 with a message in err (may be NULL).
 */
int ring_validate(const struct ring_config *cfg, const struct ring_node *nodes, size_t n,
                  char *err, size_t errlen);

/*
 * Builds the continuum of n nodes in the given order (owners are reported as indexes into
 * nodes; the ring keeps its own copy). Returns NULL when ring_validate fails, when out of
 * memory or when MD5 is unavailable.
 */
struct ring *ring_create(const struct ring_config *cfg, const struct ring_node *nodes,
                         size_t n);

/* Frees a ring (NULL is fine). */
void ring_free(struct ring *r);

/* Index of the node owning a key: ring_lookup(r, ring_key_hash(r, key)), and 0 on a
 * one-node ring (both clients answer 0 there without hashing). */
size_t ring_node_for_key(const struct ring *r, const char *key, size_t nkey);

/* The point on the continuum of a key: the kind's key hash, after the hash tag cut. */
uint32_t ring_key_hash(const struct ring *r, const char *key, size_t nkey);

/* Index of the node owning a hash: the first point >= hash, wrapping to the first point. */
size_t ring_lookup(const struct ring *r, uint32_t hash);

/* Number of points on the continuum. */
size_t ring_point_count(const struct ring *r);

/* Point i (0 <= i < ring_point_count) in ascending order: its value and node index. */
void ring_point(const struct ring *r, size_t i, uint32_t *value, size_t *node);

/* Number of nodes, and node i (a pointer into the ring, valid until ring_free). */
size_t ring_node_count(const struct ring *r);
const struct ring_node *ring_node(const struct ring *r, size_t i);

/* The configuration the ring was built with, with the hash resolved (never DEFAULT). */
const struct ring_config *ring_config(const struct ring *r);

/*
 * Fills space[i] (an array of ring_node_count entries) with the number of hash values
 * node i owns; they add up to 2^32.
 */
void ring_node_space(const struct ring *r, uint64_t *space);

/*
 * Splits the hash space into the maximal ranges on which both rings keep one owner each,
 * in ascending order (the range through 2^32-1 and the one from 0 are reported apart).
 * Returns 0 with a malloc'd array in *ranges (caller frees) and its length in *n, or -1
 * when out of memory.
 */
int ring_diff(const struct ring *old_ring, const struct ring *new_ring,
              struct ring_range **ranges, size_t *n);

/*
 * The identity of a node across node lists: its twemproxy name when it has one, else
 * "host:port" ("[v6]:port"). Writes at most len bytes with the NUL; returns buf.
 */
char *ring_node_label(const struct ring_node *node, char *buf, size_t len);

/* Enough room for any ring_node_label. */
#define RING_LABEL_MAX (RING_HOST_MAX + RING_NAME_MAX + 16)

/* --- node lists (tools/ring/parse.c, tools/ring/twemproxy.c) --- */

/*
 * Parses "host:port[:weight]" (IPv4, a name, or "[IPv6]:port[:weight]"); weight defaults
 * to 1 and must be 1..RING_WEIGHT_MAX. Returns 0 with *out filled (name ""), or -1 with a
 * message in err.
 */
int ring_parse_node(const char *text, struct ring_node *out, char *err, size_t errlen);

/*
 * Parses a comma-separated list of nodes. Returns 0 with a malloc'd array in *nodes
 * (caller frees) and its length in *n (>= 1), or -1 with a message in err.
 */
int ring_parse_nodes(const char *text, struct ring_node **nodes, size_t *n, char *err,
                     size_t errlen);

/*
 * Reads a twemproxy (nutcracker) YAML configuration and takes pool `pool` (NULL = the
 * first in the file): its servers ("host:port:weight [name]", parsed from the end as
 * nutcracker does), hash (default fnv1a_64) and hash_tag. Only distribution: ketama (the
 * default) is accepted. Sets cfg->kind to RING_TWEMPROXY_KETAMA. Returns 0 with a malloc'd
 * array in *nodes (caller frees) and its length in *n, or -1 with a message in err.
 */
int ring_load_twemproxy(const char *path, const char *pool, struct ring_config *cfg,
                        struct ring_node **nodes, size_t *n, char *err, size_t errlen);

#endif
