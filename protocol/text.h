/* memcached ASCII protocol: a resumable parser over a byte buffer and the reply encoders. */
#ifndef MCSTORE_PROTOCOL_TEXT_H
#define MCSTORE_PROTOCOL_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/request.h"

/* Without a '\n' in this many bytes a line is not a command (memcached closes the
 * connection), unless it is a get/gets, which may be longer (up to PROTO_TEXT_GET_LINE_MAX). */
#define PROTO_TEXT_LINE_MAX 2048
#define PROTO_TEXT_GET_LINE_MAX (2 * 1024 * 1024)

/*
 * Parses one request from buf[0..len). Never reads past len, never allocates. Replies and
 * connection handling follow memcached 1.6.18's observable behaviour byte for byte.
 *   buf, len  the unconsumed input
 *   lim       limits from the configuration
 *   req       filled in for PROTO_REQUEST (and key fields for unlink_key)
 *   res       the outcome; always filled in
 * Thread rules: pure function, no shared state.
 */
void proto_text_parse(const char *buf, size_t len, const struct proto_limits *lim,
                      struct proto_request *req, struct proto_result *res);

/*
 * Iterates over the keys of a get-family request: returns true and sets key/nkey to the next
 * key, or false at the end. *pos starts at 0. A key longer than PROTO_KEY_MAX or holding a
 * control character sets *bad and returns false; the command must then answer
 * "CLIENT_ERROR bad command line format".
 */
bool proto_text_next_key(const struct proto_request *req, size_t *pos, const char **key,
                         size_t *nkey, bool *bad);

/* Writes "VALUE <key> <flags> <bytes>[ <cas>]\r\n" into out (at least PROTO_KEY_MAX + 64
 * bytes) and returns its length. */
size_t proto_text_value_line(char *out, const char *key, size_t nkey, uint32_t flags,
                             size_t nbytes, bool with_cas, uint64_t cas);

/* iterate: most items one reply holds (a larger count is capped to it). */
#define PROTO_ITERATE_MAX 10000

/* Room for an iterate cursor or base64 key: base64 of PROTO_KEY_MAX bytes. */
#define PROTO_ITERATE_B64_MAX (4 * ((PROTO_KEY_MAX + 2) / 3))

/* True when the text protocol cannot carry key as it is (a byte <= 0x20 or 0x7f, which the
 * binary and meta protocols can store): iterate then sends it in base64 with " b". Pure. */
bool proto_text_key_needs_b64(const char *key, size_t nkey);

/*
 * Writes iterate's "ITEM <key> <flags> <exptime> <bytes> <cas>[ b]\r\n" into out (at least
 * PROTO_ITERATE_B64_MAX + 80 bytes) and returns its length. A key that
 * proto_text_key_needs_b64() is written in base64 with the trailing " b". exptime is absolute.
 * Pure.
 */
size_t proto_text_item_line(char *out, const char *key, size_t nkey, uint32_t flags,
                            uint32_t exptime, size_t nbytes, uint64_t cas);

/* Writes iterate's cursor for the last key returned (base64 of the key; never "0") into out
 * (at least PROTO_ITERATE_B64_MAX bytes) and returns its length. Pure. */
size_t proto_text_iterate_cursor(char *out, const char *key, size_t nkey);

/* Writes the decimal form of v into out (at least 21 bytes), returns its length. */
size_t proto_u64_to_dec(char *out, uint64_t v);

/*
 * memcached's incr/decr on a stored value: parses value[0..n) as an unsigned 64-bit decimal
 * (as strtoull after leading whitespace, trailing whitespace allowed), adds or subtracts delta
 * (incr wraps at 2^64, decr stops at 0) and writes the new value's digits to out (21 bytes).
 * memcached rewrites in place, space-padded to the old length, when the new number is not
 * longer; *padded_len is that length (>= the digits' length).
 * Returns false when the value is not a number (memcached's "non-numeric value").
 */
bool proto_text_apply_delta(const char *value, size_t n, bool incr, uint64_t delta,
                            char *out, size_t *ndigits, size_t *padded_len, uint64_t *result);

/* memcached's safe_strtoull / safe_strtoul / safe_strtol over the token s[0..n): the meta
 * commands read their flag values with the same rules. False where memcached's would be. */
bool proto_text_strtoull(const char *s, size_t n, uint64_t *out);
bool proto_text_strtoul(const char *s, size_t n, uint32_t *out);
bool proto_text_strtol(const char *s, size_t n, int32_t *out);

#endif
