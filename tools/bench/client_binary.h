/* The client side of memcached's binary protocol: requests out, replies parsed and checked. */
#ifndef MCSTORE_TOOLS_BENCH_CLIENT_BINARY_H
#define MCSTORE_TOOLS_BENCH_CLIENT_BINARY_H

#include <stddef.h>
#include <stdint.h>

#include "tools/bench/client_text.h"

/* Every binary request and reply starts with a header of this many bytes. */
#define CLIENT_BIN_HEADER 24

/* The magic byte of a request and of a reply. */
#define CLIENT_BIN_REQUEST 0x80
#define CLIENT_BIN_REPLY 0x81

/* The opcodes the load generator sends. A get goes as GETK: its reply names the key, which
 * the parser checks as the text protocol's VALUE line is checked. */
#define CLIENT_BIN_GET 0x00
#define CLIENT_BIN_SET 0x01
#define CLIENT_BIN_ADD 0x02
#define CLIENT_BIN_APPEND 0x0e
#define CLIENT_BIN_GETK 0x0c

/* Reply statuses (the second header field of a reply). */
#define CLIENT_BIN_OK 0x00
#define CLIENT_BIN_KEY_ENOENT 0x01
#define CLIENT_BIN_KEY_EEXISTS 0x02
#define CLIENT_BIN_E2BIG 0x03
#define CLIENT_BIN_EINVAL 0x04
#define CLIENT_BIN_NOT_STORED 0x05
#define CLIENT_BIN_DELTA_BADVAL 0x06
#define CLIENT_BIN_AUTH_ERROR 0x20
#define CLIENT_BIN_AUTH_CONTINUE 0x21
#define CLIENT_BIN_UNKNOWN_COMMAND 0x81
#define CLIENT_BIN_ENOMEM 0x82
#define CLIENT_BIN_NOT_SUPPORTED 0x83

/* A reply body may hold a value of up to CLIENT_VALUE_MAX bytes plus this much (extras, key):
 * a longer one is garbage, refused before anything waits for it. */
#define CLIENT_BIN_BODY_SLACK 4096

/* Bytes of an error reply's message (the body after the key) beyond which it is garbage. */
#define CLIENT_BIN_MESSAGE_MAX CLIENT_LINE_MAX

/* Writes a GETK request for key with the given opaque into out (CLIENT_LINE_SPACE(nkey)
 * bytes); returns its length. nkey is at most 250. */
size_t client_binary_get(char *out, const char *key, size_t nkey, uint32_t opaque);

/*
 * Writes the header, extras and key of a SET, ADD or APPEND request (op) into out
 * (CLIENT_LINE_SPACE(nkey) bytes) and returns their length; the caller adds the nbytes of the
 * value, and nothing after it. SET and ADD carry flags and exptime as extras; APPEND carries
 * none (memcached refuses an append with extras and closes the connection), so flags and
 * exptime are not sent for it. nkey + nbytes + 8 must fit in 32 bits.
 */
size_t client_binary_store(char *out, enum client_op op, const char *key, size_t nkey,
                           uint32_t flags, uint32_t exptime, size_t nbytes, uint32_t opaque);

/*
 * Parses the reply to one request from buf[0..len): op, key and opaque are those of the request
 * the reply answers (replies come in request order). The reply must carry the reply magic, the
 * request's opcode and its opaque; a get hit, and a get miss that names a key, must name
 * exactly this key. The header is checked as soon as it has arrived, so garbage is refused
 * without waiting for the body it announces.
 *
 * Statuses map to outcomes as their text-protocol replies would: 0 is HIT or STORED, key not
 * found is MISS or NOT_FOUND, exists is EXISTS (but NOT_STORED for an ADD, which is how
 * memcached's binary protocol says the text protocol's NOT_STORED to an add), not stored is
 * NOT_STORED, invalid arguments and authentication failures are CLIENT_ERROR, unknown command
 * and not supported are ERROR, and every other status (too large, out of memory, busy, ...)
 * is SERVER_ERROR.
 *
 * Returns CLIENT_NEED_MORE (reply->need: bytes needed in all, once the header is in),
 * CLIENT_DONE (reply->outcome, ->consumed, and ->value_len for a hit) or CLIENT_BAD
 * (reply->why). Never reads past len, never allocates. Pure.
 */
enum client_parse client_binary_parse(const char *buf, size_t len, enum client_op op,
                                      const char *key, size_t nkey, uint32_t opaque,
                                      struct client_reply *reply);

#endif
