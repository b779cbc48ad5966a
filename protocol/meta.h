/* memcached 1.6 meta commands (mg ms md ma mn me): a resumable parser and reply helpers. */
#ifndef MCSTORE_PROTOCOL_META_H
#define MCSTORE_PROTOCOL_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/request.h"

/* memcached's limits: a flag 'O' (opaque) token of at most this many bytes, and at most this
 * many tokens on a line counting the command, the key and a final empty token. */
#define PROTO_META_OPAQUE_MAX 32
#define PROTO_META_TOKENS_MAX 20

/*
 * Parses the meta command on the first line of buf. The text parser calls it once it found a
 * complete line whose first token is "m" + one of "gsdnae"; the contract is proto_text_parse's.
 *   buf, len    the unconsumed input
 *   line_len    length of the command line (no "\r\n", cut at an embedded NUL)
 *   line_total  bytes of the line including its "\n"
 *   lim         limits from the configuration (ms: -I)
 *   req, res    as proto_text_parse: res->consumed covers the line (and ms's data block);
 *               a rejected ms data block is left to res->swallow. req->noreply stays false:
 *               which replies 'q' hides depends on the outcome, so the executor decides.
 * Replies follow memcached 1.6.18 byte for byte. Pure: never reads past len, never allocates.
 */
void proto_meta_parse(const char *buf, size_t len, size_t line_len, size_t line_total,
                      const struct proto_limits *lim, struct proto_request *req,
                      struct proto_result *res);

/* The bit of a flag letter in req->meta.seen ('a'..'z', 'A'..'Z'; 0 for anything else). */
static inline uint64_t proto_meta_bit(char c)
{
    if (c >= 'a' && c <= 'z') {
        return (uint64_t)1 << (c - 'a');
    }
    if (c >= 'A' && c <= 'Z') {
        return (uint64_t)1 << (26 + (c - 'A'));
    }
    return 0;
}

/* True when flag letter c was in the request. */
static inline bool proto_meta_has(const struct proto_request *req, char c)
{
    return (req->meta.seen & proto_meta_bit(c)) != 0;
}

/*
 * Walks the flag tokens of a parsed meta request in the order they were sent (replies echo
 * flags in that order): returns true and sets tok/ntok to the next one, false at the end.
 * *pos starts at 0.
 */
bool proto_meta_next_flag(const struct proto_request *req, size_t *pos, const char **tok,
                          size_t *ntok);

/* Base64 (RFC 4648, with '=' padding) of in[0..n) into out, which holds at least
 * 4 * ((n + 2) / 3) bytes; returns the encoded length. */
size_t proto_base64_encode(const unsigned char *in, size_t n, char *out);

/*
 * memcached's base64 decoder, whose quirks are part of the protocol: bytes outside the
 * alphabet are skipped, '=' counts as a zero digit, the digits must come in groups of four,
 * and decoding stops after the first group holding padding. Writes at most n * 3 / 4 bytes
 * to out and returns how many, or 0 when memcached rejects the input.
 */
size_t proto_base64_decode(const char *in, size_t n, unsigned char *out);

/* The size memcached accounts for an item (its header, key, flags, value and CAS), shown by
 * "me" as size=. */
size_t proto_meta_item_size(size_t nkey, uint32_t flags, size_t nvalue);

/* The slab class memcached 1.6.18 would put an item of that size in with its default
 * settings (-n 48, -f 1.25, 1 MiB pages), shown by "me" as cls=. */
unsigned proto_meta_slab_class(size_t item_size);

#endif
