/* The key hash functions of libmemcached and twemproxy, bit for bit, and their names. */
#include "tools/ring/ring.h"
#include "tools/ring/ring_md5.h"

#include <pthread.h>
#include <string.h>

#include <openssl/evp.h>

/*
 * The clients read key bytes through a plain char, which is signed on x86-64: where they
 * widen a byte before mixing it in, bytes >= 0x80 arrive sign-extended. These two make
 * that explicit so the result does not depend on our own platform's char.
 */
static uint32_t sx32(unsigned char b)
{
    return b < 0x80 ? (uint32_t)b : (uint32_t)b | 0xffffff00u;
}

static uint64_t sx64(unsigned char b)
{
    return b < 0x80 ? (uint64_t)b : (uint64_t)b | UINT64_C(0xffffffffffffff00);
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t rotl32(uint32_t x, unsigned k)
{
    return x << k | x >> (32 - k);
}

/* --- MD5 (OpenSSL) --- */

static EVP_MD *md5_md;
static pthread_once_t md5_once = PTHREAD_ONCE_INIT;

static void md5_fetch(void)
{
    md5_md = EVP_MD_fetch(NULL, "MD5", NULL);
}

int ring_md5(const void *data, size_t n, unsigned char out[16])
{
    unsigned int len = 0;

    pthread_once(&md5_once, md5_fetch);
    if (md5_md == NULL || !EVP_Digest(data, n, out, &len, md5_md, NULL) || len != 16) {
        return -1;
    }
    return 0;
}

static uint32_t hash_md5(const unsigned char *k, size_t n)
{
    unsigned char d[16];

    if (ring_md5(k, n, d) != 0) {
        return 0;
    }
    return le32(d);
}

/* --- Bob Jenkins' one-at-a-time --- */

static uint32_t hash_one_at_a_time(const unsigned char *k, size_t n)
{
    uint32_t h = 0;

    for (size_t i = 0; i < n; i++) {
        h += sx32(k[i]);
        h += h << 10;
        h ^= h >> 6;
    }
    h += h << 3;
    h ^= h >> 11;
    h += h << 15;
    return h;
}

/* --- FNV: the 64-bit variants keep only the low 32 bits --- */

#define FNV64_BASIS UINT64_C(0xcbf29ce484222325)
#define FNV64_PRIME UINT64_C(0x100000001b3)
#define FNV32_BASIS 2166136261u
#define FNV32_PRIME 16777619u

static uint32_t hash_fnv1_64(const unsigned char *k, size_t n)
{
    uint64_t h = FNV64_BASIS;

    for (size_t i = 0; i < n; i++) {
        h *= FNV64_PRIME;
        h ^= sx64(k[i]);
    }
    return (uint32_t)h;
}

/* Not FNV-1a over 64 bits: both clients run it in 32 bits with the 64-bit constants cut
 * down to their low halves. */
static uint32_t hash_fnv1a_64(const unsigned char *k, size_t n)
{
    uint32_t h = (uint32_t)FNV64_BASIS;

    for (size_t i = 0; i < n; i++) {
        h ^= sx32(k[i]);
        h *= (uint32_t)FNV64_PRIME;
    }
    return h;
}

static uint32_t hash_fnv1_32(const unsigned char *k, size_t n)
{
    uint32_t h = FNV32_BASIS;

    for (size_t i = 0; i < n; i++) {
        h *= FNV32_PRIME;
        h ^= sx32(k[i]);
    }
    return h;
}

static uint32_t hash_fnv1a_32(const unsigned char *k, size_t n)
{
    uint32_t h = FNV32_BASIS;

    for (size_t i = 0; i < n; i++) {
        h ^= sx32(k[i]);
        h *= FNV32_PRIME;
    }
    return h;
}

/* --- CRCs, bit by bit (keys are short; no tables to get wrong) --- */

/* CRC-16/XMODEM's table entry for one byte: polynomial 0x1021, not reflected */
static uint32_t xmodem_entry(uint32_t i)
{
    uint32_t c = i << 8;

    for (int b = 0; b < 8; b++) {
        c = (c & 0x8000u) ? ((c << 1) ^ 0x1021u) & 0xffffu : (c << 1) & 0xffffu;
    }
    return c;
}

/*
 * Nutcracker 0.5.0's crc16: the XMODEM update in a 32-bit variable that is never cut back
 * to 16 bits, so keys longer than two bytes give values above 0xffff (later twemproxy
 * releases changed it). The vectors in tests/unit/test_ring.c come from nutcracker itself.
 */
static uint32_t hash_crc16(const unsigned char *k, size_t n)
{
    uint32_t crc = 0;

    for (size_t i = 0; i < n; i++) {
        crc = (crc << 8) ^ xmodem_entry(((crc >> 8) ^ k[i]) & 0xffu);
    }
    return crc;
}

/* The standard CRC-32 (zlib's): reflected polynomial 0x04c11db7 */
static uint32_t crc32_full(const unsigned char *k, size_t n)
{
    uint32_t crc = 0xffffffffu;

    for (size_t i = 0; i < n; i++) {
        crc ^= k[i];
        for (int b = 0; b < 8; b++) {
            crc = (crc >> 1) ^ ((crc & 1u) ? 0xedb88320u : 0u);
        }
    }
    return ~crc;
}

/* libmemcached's "crc", which twemproxy copied as crc32: bits 16..30 of the CRC-32 */
static uint32_t hash_crc32(const unsigned char *k, size_t n)
{
    return (crc32_full(k, n) >> 16) & 0x7fffu;
}

/* --- Paul Hsieh's SuperFastHash --- */

static uint32_t get16(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t hash_hsieh(const unsigned char *k, size_t n)
{
    uint32_t h = 0;
    size_t blocks = n / 4;

    if (n == 0) {
        return 0;
    }
    for (size_t i = 0; i < blocks; i++, k += 4) {
        h += get16(k);
        uint32_t tmp = (get16(k + 2) << 11) ^ h;
        h = (h << 16) ^ tmp;
        h += h >> 11;
    }
    switch (n & 3) {
    case 3:
        h += get16(k);
        h ^= h << 16;
        h ^= sx32(k[2]) << 18;      /* the one signed read of the original */
        h += h >> 11;
        break;
    case 2:
        h += get16(k);
        h ^= h << 11;
        h += h >> 17;
        break;
    case 1:
        h += k[0];
        h ^= h << 10;
        h += h >> 1;
        break;
    default:
        break;
    }
    h ^= h << 3;
    h += h >> 5;
    h ^= h << 4;
    h += h >> 17;
    h ^= h << 25;
    h += h >> 6;
    return h;
}

/* --- MurmurHash2, seeded from the length as both clients do --- */

static uint32_t hash_murmur(const unsigned char *k, size_t n)
{
    const uint32_t m = 0x5bd1e995u;
    uint32_t len = (uint32_t)n;
    uint32_t h = (0xdeadbeefu * len) ^ len;

    for (; n >= 4; n -= 4, k += 4) {
        uint32_t w = le32(k);
        w *= m;
        w ^= w >> 24;
        w *= m;
        h *= m;
        h ^= w;
    }
    switch (n) {
    case 3:
        h ^= (uint32_t)k[2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)k[1] << 8;
        /* fall through */
    case 1:
        h ^= k[0];
        h *= m;
        break;
    default:
        break;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h;
}

/* --- Bob Jenkins' lookup3 hashlittle(), initval 13, read byte by byte (little endian) --- */

static void jenkins_mix(uint32_t *a, uint32_t *b, uint32_t *c)
{
    *a -= *c; *a ^= rotl32(*c, 4);  *c += *b;
    *b -= *a; *b ^= rotl32(*a, 6);  *a += *c;
    *c -= *b; *c ^= rotl32(*b, 8);  *b += *a;
    *a -= *c; *a ^= rotl32(*c, 16); *c += *b;
    *b -= *a; *b ^= rotl32(*a, 19); *a += *c;
    *c -= *b; *c ^= rotl32(*b, 4);  *b += *a;
}

static void jenkins_final(uint32_t *a, uint32_t *b, uint32_t *c)
{
    *c ^= *b; *c -= rotl32(*b, 14);
    *a ^= *c; *a -= rotl32(*c, 11);
    *b ^= *a; *b -= rotl32(*a, 25);
    *c ^= *b; *c -= rotl32(*b, 16);
    *a ^= *c; *a -= rotl32(*c, 4);
    *b ^= *a; *b -= rotl32(*a, 14);
    *c ^= *b; *c -= rotl32(*b, 24);
}

/* the little-endian value of up to 4 bytes */
static uint32_t le_partial(const unsigned char *p, size_t n)
{
    uint32_t v = 0;

    for (size_t i = 0; i < n && i < 4; i++) {
        v |= (uint32_t)p[i] << (8 * i);
    }
    return v;
}

static uint32_t hash_jenkins(const unsigned char *k, size_t n)
{
    uint32_t a, b, c;

    a = b = c = 0xdeadbeefu + (uint32_t)n + 13u;
    for (; n > 12; n -= 12, k += 12) {
        a += le32(k);
        b += le32(k + 4);
        c += le32(k + 8);
        jenkins_mix(&a, &b, &c);
    }
    if (n == 0) {
        return c;
    }
    a += le_partial(k, n);
    if (n > 4) {
        b += le_partial(k + 4, n - 4);
    }
    if (n > 8) {
        c += le_partial(k + 8, n - 8);
    }
    jenkins_final(&a, &b, &c);
    return c;
}

uint32_t ring_hash_key(enum ring_hash h, const char *key, size_t nkey)
{
    const unsigned char *k = (const unsigned char *)key;

    switch (h) {
    case RING_HASH_MD5:
        return hash_md5(k, nkey);
    case RING_HASH_FNV1_64:
        return hash_fnv1_64(k, nkey);
    case RING_HASH_FNV1A_64:
        return hash_fnv1a_64(k, nkey);
    case RING_HASH_FNV1_32:
        return hash_fnv1_32(k, nkey);
    case RING_HASH_FNV1A_32:
        return hash_fnv1a_32(k, nkey);
    case RING_HASH_CRC16:
        return hash_crc16(k, nkey);
    case RING_HASH_CRC32:
        return hash_crc32(k, nkey);
    case RING_HASH_CRC32A:
        return crc32_full(k, nkey);
    case RING_HASH_HSIEH:
        return hash_hsieh(k, nkey);
    case RING_HASH_MURMUR:
        return hash_murmur(k, nkey);
    case RING_HASH_JENKINS:
        return hash_jenkins(k, nkey);
    case RING_HASH_DEFAULT:
    case RING_HASH_ONE_AT_A_TIME:
    default:
        return hash_one_at_a_time(k, nkey);
    }
}

static const struct {
    const char *name;
    enum ring_hash hash;
} hash_names[] = {
    {"default", RING_HASH_DEFAULT},
    {"one_at_a_time", RING_HASH_ONE_AT_A_TIME},
    {"md5", RING_HASH_MD5},
    {"crc16", RING_HASH_CRC16},
    {"crc32", RING_HASH_CRC32},
    {"crc32a", RING_HASH_CRC32A},
    {"fnv1_64", RING_HASH_FNV1_64},
    {"fnv1a_64", RING_HASH_FNV1A_64},
    {"fnv1_32", RING_HASH_FNV1_32},
    {"fnv1a_32", RING_HASH_FNV1A_32},
    {"hsieh", RING_HASH_HSIEH},
    {"murmur", RING_HASH_MURMUR},
    {"jenkins", RING_HASH_JENKINS},
    {"crc", RING_HASH_CRC32},           /* libmemcached's (and pylibmc's) name */
};

int ring_hash_parse(const char *name, enum ring_hash *out)
{
    for (size_t i = 0; i < sizeof(hash_names) / sizeof(hash_names[0]); i++) {
        if (strcmp(name, hash_names[i].name) == 0) {
            *out = hash_names[i].hash;
            return 0;
        }
    }
    return -1;
}

const char *ring_hash_name(enum ring_hash h)
{
    for (size_t i = 0; i < sizeof(hash_names) / sizeof(hash_names[0]); i++) {
        if (hash_names[i].hash == h) {
            return hash_names[i].name;
        }
    }
    return "?";
}

enum ring_hash ring_default_hash(enum ring_kind kind)
{
    switch (kind) {
    case RING_LIBMEMCACHED_KETAMA_WEIGHTED:
        return RING_HASH_MD5;
    case RING_TWEMPROXY_KETAMA:
        return RING_HASH_FNV1A_64;
    case RING_LIBMEMCACHED_KETAMA:
    default:
        return RING_HASH_ONE_AT_A_TIME;
    }
}

const char *ring_kind_name(enum ring_kind kind)
{
    switch (kind) {
    case RING_LIBMEMCACHED_KETAMA:
        return "ketama";
    case RING_LIBMEMCACHED_KETAMA_WEIGHTED:
        return "ketama-weighted";
    case RING_TWEMPROXY_KETAMA:
        return "twemproxy-ketama";
    default:
        return "?";
    }
}
