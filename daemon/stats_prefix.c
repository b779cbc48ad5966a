/* Per-prefix get/hit/set/delete counters, kept and dumped the way memcached 1.6.18 does. */
#include "config.h"

#include "daemon/stats_prefix.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 256             /* memcached's PREFIX_HASH_SIZE: the dump walks them in order */
#define DELIMITER ':'

struct prefix {
    struct prefix *next;
    uint64_t gets;
    uint64_t hits;
    uint64_t sets;
    uint64_t deletes;
    size_t len;
    char name[];
};

struct stats_prefix {
    atomic_bool enabled;
    pthread_mutex_t lock;       /* guards everything below */
    struct prefix *buckets[BUCKETS];
    size_t count;
    size_t name_bytes;          /* sum of the names' lengths, to size the dump */
};

static uint32_t rotl32(uint32_t x, int r)
{
    return (x << r) | (x >> (32 - r));
}

/* MurmurHash3 x86_32 with seed 0, the hash memcached 1.6 uses by default: the bucket a prefix
 * lands in decides where the dump lists it. */
static uint32_t murmur3_32(const unsigned char *p, size_t len)
{
    const uint32_t c1 = 0xcc9e2d51u;
    const uint32_t c2 = 0x1b873593u;
    uint32_t h = 0;
    size_t i = 0;

    for (; i + 4 <= len; i += 4) {
        uint32_t k = (uint32_t)p[i] | ((uint32_t)p[i + 1] << 8) | ((uint32_t)p[i + 2] << 16) |
                     ((uint32_t)p[i + 3] << 24);
        k = rotl32(k * c1, 15) * c2;
        h = rotl32(h ^ k, 13) * 5 + 0xe6546b64u;
    }
    uint32_t k = 0;
    switch (len & 3) {
    case 3:
        k ^= (uint32_t)p[i + 2] << 16;
        /* fall through */
    case 2:
        k ^= (uint32_t)p[i + 1] << 8;
        /* fall through */
    case 1:
        k ^= p[i];
        h ^= rotl32(k * c1, 15) * c2;
        break;
    default:
        break;
    }
    h ^= (uint32_t)len;
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

struct stats_prefix *stats_prefix_new(void)
{
    struct stats_prefix *sp = calloc(1, sizeof(*sp));
    if (sp == NULL) {
        return NULL;
    }
    if (pthread_mutex_init(&sp->lock, NULL) != 0) {
        free(sp);
        return NULL;
    }
    atomic_init(&sp->enabled, false);
    return sp;
}

/* Caller holds the lock. */
static void do_clear(struct stats_prefix *sp)
{
    for (size_t i = 0; i < BUCKETS; i++) {
        struct prefix *p = sp->buckets[i];
        while (p != NULL) {
            struct prefix *next = p->next;
            free(p);
            p = next;
        }
        sp->buckets[i] = NULL;
    }
    sp->count = 0;
    sp->name_bytes = 0;
}

void stats_prefix_free(struct stats_prefix *sp)
{
    if (sp == NULL) {
        return;
    }
    do_clear(sp);
    pthread_mutex_destroy(&sp->lock);
    free(sp);
}

void stats_prefix_enable(struct stats_prefix *sp, bool on)
{
    if (sp != NULL) {
        atomic_store(&sp->enabled, on);
    }
}

bool stats_prefix_enabled(const struct stats_prefix *sp)
{
    return sp != NULL && atomic_load_explicit(&sp->enabled, memory_order_relaxed);
}

/* The prefix of key, created on first sight; NULL when the key has none or the table is
 * full. Caller holds the lock. */
static struct prefix *do_find(struct stats_prefix *sp, const char *key, size_t nkey)
{
    size_t len = 0;
    while (len < nkey && key[len] != '\0' && key[len] != DELIMITER) {
        len++;
    }
    /* as memcached: no delimiter, or a NUL before it (C strings end there), counts nothing */
    if (len == nkey || key[len] != DELIMITER) {
        return NULL;
    }
    size_t b = murmur3_32((const unsigned char *)key, len) % BUCKETS;
    for (struct prefix *p = sp->buckets[b]; p != NULL; p = p->next) {
        if (p->len == len && memcmp(p->name, key, len) == 0) {
            return p;
        }
    }
    if (sp->count >= STATS_PREFIX_MAX) {
        return NULL;
    }
    struct prefix *p = calloc(1, sizeof(*p) + len + 1);
    if (p == NULL) {
        return NULL;
    }
    memcpy(p->name, key, len);
    p->len = len;
    p->next = sp->buckets[b];   /* newest first, as memcached links them */
    sp->buckets[b] = p;
    sp->count++;
    sp->name_bytes += len;
    return p;
}

enum what { GET, HIT, SET, DEL };

static void record(struct stats_prefix *sp, const char *key, size_t nkey, enum what what)
{
    if (!stats_prefix_enabled(sp)) {
        return;
    }
    pthread_mutex_lock(&sp->lock);
    struct prefix *p = do_find(sp, key, nkey);
    if (p != NULL) {
        switch (what) {
        case HIT:
            p->hits++;
            p->gets++;          /* a hit is a get too */
            break;
        case GET:
            p->gets++;
            break;
        case SET:
            p->sets++;
            break;
        case DEL:
            p->deletes++;
            break;
        }
    }
    pthread_mutex_unlock(&sp->lock);
}

void stats_prefix_record_get(struct stats_prefix *sp, const char *key, size_t nkey, bool hit)
{
    record(sp, key, nkey, hit ? HIT : GET);
}

void stats_prefix_record_set(struct stats_prefix *sp, const char *key, size_t nkey)
{
    record(sp, key, nkey, SET);
}

void stats_prefix_record_delete(struct stats_prefix *sp, const char *key, size_t nkey)
{
    record(sp, key, nkey, DEL);
}

void stats_prefix_clear(struct stats_prefix *sp)
{
    if (sp == NULL) {
        return;
    }
    pthread_mutex_lock(&sp->lock);
    do_clear(sp);
    pthread_mutex_unlock(&sp->lock);
}

#define LINE_FMT "PREFIX %s get %" PRIu64 " hit %" PRIu64 " set %" PRIu64 " del %" PRIu64 "\r\n"
/* A line's fixed text plus four 20-digit numbers. */
#define LINE_OVERHEAD (sizeof("PREFIX  get  hit  set  del \r\n") + 4 * 20)

char *stats_prefix_dump(struct stats_prefix *sp, size_t *len)
{
    pthread_mutex_lock(&sp->lock);
    size_t cap = sp->count * LINE_OVERHEAD + sp->name_bytes + sizeof("END\r\n");
    char *out = malloc(cap);
    size_t n = 0;
    if (out != NULL) {
        for (size_t i = 0; i < BUCKETS; i++) {
            for (struct prefix *p = sp->buckets[i]; p != NULL; p = p->next) {
                n += (size_t)snprintf(out + n, cap - n, LINE_FMT, p->name, p->gets, p->hits,
                                      p->sets, p->deletes);
            }
        }
        n += (size_t)snprintf(out + n, cap - n, "END\r\n");
        *len = n;
    }
    pthread_mutex_unlock(&sp->lock);
    return out;
}
