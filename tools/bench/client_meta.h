/* The client side of memcached's meta protocol (mg, ms): requests out, replies parsed, checked. */
#ifndef MCSTORE_TOOLS_BENCH_CLIENT_META_H
#define MCSTORE_TOOLS_BENCH_CLIENT_META_H

#include <stddef.h>
#include <stdint.h>

#include "tools/bench/client_text.h"

/* Writes "mg <key> v k O<opaque>\r\n" into out (CLIENT_LINE_SPACE(nkey) bytes) and returns its
 * length: the value, and the key and opaque echoed back so the reply can be checked. */
size_t client_meta_get(char *out, const char *key, size_t nkey, uint32_t opaque);

/*
 * Writes "ms <key> <nbytes> T<exptime> F<flags>[ M<mode>] O<opaque>\r\n" into out
 * (CLIENT_LINE_SPACE(nkey) bytes) and returns its length; the caller adds the nbytes of data
 * and "\r\n". The mode is none (set) for CLIENT_SET, E for CLIENT_ADD and A for CLIENT_APPEND.
 */
size_t client_meta_store(char *out, enum client_op op, const char *key, size_t nkey,
                         uint32_t flags, uint32_t exptime, size_t nbytes, uint32_t opaque);

/*
 * Parses the reply to one request from buf[0..len): op, key and opaque are those of the request
 * the reply answers (replies come in request order).
 *
 * A get is answered "VA <size> <flags>*\r\n<data>\r\n" (HIT; the flags must include k<key>
 * naming exactly this key) or "EN <flags>*\r\n" (MISS); a storage request "HD" (STORED), "NS"
 * (NOT_STORED), "EX" (EXISTS) or "NF" (NOT_FOUND), with flags. Every one of these must carry
 * O<opaque> equal to the request's, and a k<key> flag, when present, must name this key.
 * "ERROR", "CLIENT_ERROR ..." and "SERVER_ERROR ..." (which carry no flags) answer anything.
 * Anything else is garbage.
 *
 * Returns CLIENT_NEED_MORE (reply->need: bytes needed in all when known, else 0), CLIENT_DONE
 * (reply->outcome, ->consumed, and ->value_len for a hit) or CLIENT_BAD (reply->why). Never
 * reads past len, never allocates. Pure.
 */
enum client_parse client_meta_parse(const char *buf, size_t len, enum client_op op,
                                    const char *key, size_t nkey, uint32_t opaque,
                                    struct client_reply *reply);

#endif
