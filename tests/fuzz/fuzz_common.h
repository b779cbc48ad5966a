/* What the protocol fuzzers share: the property check, pointer bounds, the stream's limits and
 * the deterministic split points. Each target includes it once. */
#ifndef MCSTORE_TESTS_FUZZ_COMMON_H
#define MCSTORE_TESTS_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "protocol/request.h"

/* Requests per stream that also get the prefix checks; each costs a few copies of the input. */
#define SPLIT_REQUESTS 8
/* Pseudo-random split points per such request, besides the ones at the request's edges. */
#define HASH_SPLITS 4
/* A value far from any real item size: 48 bytes of header plus a short key leave ~40 bytes. */
#define TINY_ITEM_MAX 100
#define ITEM_MAX_DEFAULT ((size_t)1024 * 1024)

/* A broken property prints where and traps, so libFuzzer saves the input like any crash. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fail(__LINE__, #cond);                                                                 \
        }                                                                                          \
    } while (0)
#define fail(line, what) fuzz_fail(__FILE__, (line), (what))

struct outcome {
    struct proto_request req;
    struct proto_result res;
};

static inline _Noreturn void fuzz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: property violated: %s\n", file, line, what);
    __builtin_trap();
}

/* p[0..n) lies inside base[0..limit). Compared as integers: the fuzzer must not rely on the
 * very property it checks to keep the pointer comparison defined. */
static inline bool within(const char *p, size_t n, const char *base, size_t limit)
{
    uintptr_t a = (uintptr_t)p;
    uintptr_t b = (uintptr_t)base;

    return p != NULL && a >= b && a - b <= limit && n <= limit - (a - b);
}

/* An optional field: absent (NULL, no bytes) or inside the buffer. */
static inline bool field_within(const char *p, size_t n, const char *base, size_t limit)
{
    return p == NULL ? n == 0 : within(p, n, base, limit);
}

/* The same pointer field of two parses: both absent, or at the same offset of its buffer. */
static inline bool same_ptr(const char *a, const char *abuf, const char *b, const char *bbuf)
{
    if (a == NULL || b == NULL) {
        return a == b;
    }
    return a - abuf == b - bbuf;
}

/* FNV-1a over the first bytes, so split points follow the input and nothing else. */
static inline uint64_t input_hash(const char *buf, size_t len)
{
    uint64_t h = UINT64_C(14695981039346656037) ^ len;
    size_t n = len < 64 ? len : 64;

    for (size_t i = 0; i < n; i++) {
        h = (h ^ (unsigned char)buf[i]) * UINT64_C(1099511628211);
    }
    return h;
}

/* A 64-bit finalizer: the next pseudo-random split point from the last. */
static inline uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    return x;
}

#endif
