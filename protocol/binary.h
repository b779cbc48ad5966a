/* memcached binary protocol: a resumable parser over a byte buffer and the packet encoders. */
#ifndef MCSTORE_PROTOCOL_BINARY_H
#define MCSTORE_PROTOCOL_BINARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/request.h"

/* Every packet starts with this many header bytes. */
#define PROTO_BIN_HEADER 24

#define PROTO_BIN_MAGIC_REQUEST 0x80
#define PROTO_BIN_MAGIC_RESPONSE 0x81

/* memcached reads a request's header, extras and key into a 16 KiB buffer that does not grow:
 * a request whose header + extras + key is longer closes the connection without a reply. */
#define PROTO_BIN_HEAD_MAX 16384

/* memcached refuses longer SASL mechanism names (Invalid arguments). */
#define PROTO_BIN_SASL_MECH_MAX 32

/* The opcodes memcached 1.6.18 implements; the Q forms are quiet: no reply on success. */
enum proto_bin_opcode {
    PROTO_BIN_GET = 0x00,
    PROTO_BIN_SET = 0x01,
    PROTO_BIN_ADD = 0x02,
    PROTO_BIN_REPLACE = 0x03,
    PROTO_BIN_DELETE = 0x04,
    PROTO_BIN_INCREMENT = 0x05,
    PROTO_BIN_DECREMENT = 0x06,
    PROTO_BIN_QUIT = 0x07,
    PROTO_BIN_FLUSH = 0x08,
    PROTO_BIN_GETQ = 0x09,
    PROTO_BIN_NOOP = 0x0a,
    PROTO_BIN_VERSION = 0x0b,
    PROTO_BIN_GETK = 0x0c,
    PROTO_BIN_GETKQ = 0x0d,
    PROTO_BIN_APPEND = 0x0e,
    PROTO_BIN_PREPEND = 0x0f,
    PROTO_BIN_STAT = 0x10,
    PROTO_BIN_SETQ = 0x11,
    PROTO_BIN_ADDQ = 0x12,
    PROTO_BIN_REPLACEQ = 0x13,
    PROTO_BIN_DELETEQ = 0x14,
    PROTO_BIN_INCREMENTQ = 0x15,
    PROTO_BIN_DECREMENTQ = 0x16,
    PROTO_BIN_QUITQ = 0x17,
    PROTO_BIN_FLUSHQ = 0x18,
    PROTO_BIN_APPENDQ = 0x19,
    PROTO_BIN_PREPENDQ = 0x1a,
    PROTO_BIN_VERBOSITY = 0x1b,     /* defined by the protocol, "Unknown command" in 1.6.18 */
    PROTO_BIN_TOUCH = 0x1c,
    PROTO_BIN_GAT = 0x1d,
    PROTO_BIN_GATQ = 0x1e,
    PROTO_BIN_SASL_LIST_MECHS = 0x20,
    PROTO_BIN_SASL_AUTH = 0x21,
    PROTO_BIN_SASL_STEP = 0x22,
    PROTO_BIN_GATK = 0x23,
    PROTO_BIN_GATKQ = 0x24,
};

/* Reply status codes. */
enum proto_bin_status {
    PROTO_BIN_SUCCESS = 0x00,
    PROTO_BIN_KEY_ENOENT = 0x01,
    PROTO_BIN_KEY_EEXISTS = 0x02,
    PROTO_BIN_E2BIG = 0x03,
    PROTO_BIN_EINVAL = 0x04,
    PROTO_BIN_NOT_STORED = 0x05,
    PROTO_BIN_DELTA_BADVAL = 0x06,
    PROTO_BIN_AUTH_ERROR = 0x20,
    PROTO_BIN_AUTH_CONTINUE = 0x21,
    PROTO_BIN_UNKNOWN_COMMAND = 0x81,
    PROTO_BIN_ENOMEM = 0x82,
    PROTO_BIN_EINTERNAL = 0x84,     /* ours: a storage failure, the reason in the body */
};

/*
 * Parses one binary request from buf[0..len). Never reads past len, never allocates.
 * Behaviour follows memcached 1.6.18, which is observable in three places:
 *  - It consumes a request's header, extras and key, and then only the value of the commands
 *    that have one (set/add/replace/append/prepend, SASL auth/step): bytes a get, touch or stat
 *    carries beyond its key are parsed as the next request, as memcached does.
 *  - A length that does not fit (keylen + extlen > bodylen) is "Unknown command", other
 *    malformed requests and keys over 250 bytes are "Invalid arguments"; both close the
 *    connection after the reply (res->close). An unknown opcode is "Unknown command" and its
 *    body is swallowed (res->swallow_uncounted). A value over lim->item_max is "Too large." and
 *    swallowed (res->swallow; res->unlink_key for set).
 *  - With lim->auth and not lim->authenticated, every opcode but SASL and version is refused
 *    with an auth error and the connection closes.
 * A first byte other than 0x80 (not a request) gives PROTO_CLOSE, as does a header + extras +
 * key over PROTO_BIN_HEAD_MAX. PROTO_NEED_MORE sets res->need to the bytes needed so far (the
 * header, then header + extras + key, then the whole request).
 *   buf, len  the unconsumed input
 *   lim       limits and the connection's authentication state
 *   req       filled in for PROTO_REQUEST (and key fields for unlink_key)
 *   res       the outcome; always filled in. Error packets are in res->packet/npacket.
 * Thread rules: pure function, no shared state.
 */
void proto_binary_parse(const char *buf, size_t len, const struct proto_limits *lim,
                        struct proto_request *req, struct proto_result *res);

/*
 * Writes a response header (PROTO_BIN_HEADER bytes) into out: magic 0x81, the request's
 * opcode and opaque, the status, and the lengths of what follows (bodylen = extlen + keylen +
 * value length). Returns PROTO_BIN_HEADER.
 */
size_t proto_binary_header(unsigned char *out, uint8_t opcode, uint16_t status, uint8_t extlen,
                           uint16_t keylen, uint32_t bodylen, uint32_t opaque, uint64_t cas);

/* memcached's message for an error status ("Not found", "Too large.", ...); "" for success
 * and statuses that carry no message. */
const char *proto_binary_status_text(uint16_t status);

/*
 * Writes a whole error reply (header + memcached's message for status) into out, which holds
 * at least PROTO_PACKET_MAX bytes, and returns its length.
 */
size_t proto_binary_error(unsigned char *out, uint8_t opcode, uint16_t status, uint32_t opaque);

#endif
