/* memcached binary protocol, client side: request encoders and a resumable reply parser. */
#include "tools/bench/client_binary.h"

#include <stdbool.h>
#include <string.h>

/* The wire is big-endian whatever the host is: bytes are placed one by one. */
static void put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint16_t get16(const unsigned char *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Header, then extras, then key; returns the bytes written. */
static size_t put_request(char *out, uint8_t opcode, const char *key, size_t nkey,
                          const unsigned char *extras, uint8_t nextras, size_t nvalue,
                          uint32_t opaque)
{
    unsigned char *h = (unsigned char *)out;

    memset(h, 0, CLIENT_BIN_HEADER);    /* data type, vbucket and cas stay 0 */
    h[0] = CLIENT_BIN_REQUEST;
    h[1] = opcode;
    put16(h + 2, (uint16_t)nkey);
    h[4] = nextras;
    put32(h + 8, (uint32_t)(nextras + nkey + nvalue));
    put32(h + 12, opaque);
    if (nextras > 0) {
        memcpy(h + CLIENT_BIN_HEADER, extras, nextras);
    }
    memcpy(h + CLIENT_BIN_HEADER + nextras, key, nkey);
    return CLIENT_BIN_HEADER + nextras + nkey;
}

size_t client_binary_get(char *out, const char *key, size_t nkey, uint32_t opaque)
{
    return put_request(out, CLIENT_BIN_GETK, key, nkey, NULL, 0, 0, opaque);
}

static uint8_t opcode_of(enum client_op op)
{
    switch (op) {
    case CLIENT_GET:
        return CLIENT_BIN_GETK;
    case CLIENT_ADD:
        return CLIENT_BIN_ADD;
    case CLIENT_APPEND:
        return CLIENT_BIN_APPEND;
    default:
        return CLIENT_BIN_SET;
    }
}

size_t client_binary_store(char *out, enum client_op op, const char *key, size_t nkey,
                           uint32_t flags, uint32_t exptime, size_t nbytes, uint32_t opaque)
{
    unsigned char extras[8];

    if (op == CLIENT_APPEND) {
        return put_request(out, CLIENT_BIN_APPEND, key, nkey, NULL, 0, nbytes, opaque);
    }
    put32(extras, flags);
    put32(extras + 4, exptime);
    return put_request(out, opcode_of(op), key, nkey, extras, sizeof(extras), nbytes, opaque);
}

static enum client_parse bad(struct client_reply *r, const char *why)
{
    r->why = why;
    return CLIENT_BAD;
}

/* The outcome of a reply whose status is not 0, as the text protocol would have said it. */
static enum client_outcome status_outcome(enum client_op op, uint16_t status)
{
    switch (status) {
    case CLIENT_BIN_KEY_ENOENT:
        return op == CLIENT_GET ? CLIENT_MISS : CLIENT_NOT_FOUND;
    case CLIENT_BIN_KEY_EEXISTS:
        /* memcached answers an add of a present key "exists"; text says NOT_STORED, and the
         * fan-out's append <-> add alternation keys on that */
        return op == CLIENT_ADD ? CLIENT_NOT_STORED : CLIENT_EXISTS;
    case CLIENT_BIN_NOT_STORED:
        return CLIENT_NOT_STORED;
    case CLIENT_BIN_EINVAL:
    case CLIENT_BIN_DELTA_BADVAL:
    case CLIENT_BIN_AUTH_ERROR:
    case CLIENT_BIN_AUTH_CONTINUE:
        return CLIENT_CLIENT_ERROR;
    case CLIENT_BIN_UNKNOWN_COMMAND:
    case CLIENT_BIN_NOT_SUPPORTED:
        return CLIENT_ERROR_REPLY;
    default:
        /* too large (text: SERVER_ERROR object too large), out of memory, busy, ... */
        return CLIENT_SERVER_ERROR;
    }
}

enum client_parse client_binary_parse(const char *buf, size_t len, enum client_op op,
                                      const char *key, size_t nkey, uint32_t opaque,
                                      struct client_reply *r)
{
    const unsigned char *h = (const unsigned char *)buf;

    r->need = 0;
    r->why = NULL;
    r->value_len = 0;
    if (len < CLIENT_BIN_HEADER) {
        r->need = CLIENT_BIN_HEADER;
        return CLIENT_NEED_MORE;
    }
    uint16_t keylen = get16(h + 2);
    uint8_t extlen = h[4];
    uint16_t status = get16(h + 6);
    uint32_t bodylen = get32(h + 8);

    if (h[0] != CLIENT_BIN_REPLY) {
        return bad(r, "not a binary reply (magic is not 0x81)");
    }
    if (h[1] != opcode_of(op)) {
        return bad(r, "reply opcode is not the request's");
    }
    if (get32(h + 12) != opaque) {
        return bad(r, "reply opaque is not the request's (replies out of order)");
    }
    if ((uint64_t)bodylen > (uint64_t)CLIENT_VALUE_MAX + CLIENT_BIN_BODY_SLACK) {
        return bad(r, "reply body too long");
    }
    if ((uint32_t)keylen + extlen > bodylen) {
        return bad(r, "reply key and extras longer than its body");
    }
    size_t rest = (size_t)bodylen - keylen - extlen;      /* value, or an error's message */
    bool hit = op == CLIENT_GET && status == CLIENT_BIN_OK;

    if (hit) {
        if (extlen != 4) {
            return bad(r, "get hit without 4 bytes of flags");
        }
        if (keylen != nkey) {
            return bad(r, "get hit for a key that was not asked for");
        }
    } else if (status == CLIENT_BIN_OK) {
        if (bodylen != 0) {
            return bad(r, "storage success with a body");
        }
    } else {
        /* an error: a message, and for a GETK miss the key */
        if (extlen != 0) {
            return bad(r, "error reply with extras");
        }
        if (keylen != 0 && (op != CLIENT_GET || keylen != nkey)) {
            return bad(r, "error reply for a key that was not asked for");
        }
        if (rest > CLIENT_BIN_MESSAGE_MAX) {
            return bad(r, "error message too long");
        }
    }
    size_t total = CLIENT_BIN_HEADER + (size_t)bodylen;
    if (len < total) {
        r->need = total;
        return CLIENT_NEED_MORE;
    }
    if (keylen != 0 && memcmp(buf + CLIENT_BIN_HEADER + extlen, key, nkey) != 0) {
        return bad(r, "reply for a key that was not asked for");
    }
    r->consumed = total;
    if (hit) {
        r->outcome = CLIENT_HIT;
        r->value_len = rest;
    } else if (status == CLIENT_BIN_OK) {
        r->outcome = CLIENT_STORED;
    } else {
        r->outcome = status_outcome(op, status);
    }
    return CLIENT_DONE;
}
