/* memcached's text protocol, client side; its request and outcome types serve every client. */
#ifndef MCSTORE_TOOLS_BENCH_CLIENT_TEXT_H
#define MCSTORE_TOOLS_BENCH_CLIENT_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* The requests the load generator sends. */
enum client_op {
    CLIENT_GET,
    CLIENT_SET,
    CLIENT_ADD,
    CLIENT_APPEND,
};

/* How a request ended. */
enum client_outcome {
    CLIENT_HIT,             /* get: one VALUE for the key asked, then END */
    CLIENT_MISS,            /* get: END alone */
    CLIENT_STORED,
    CLIENT_NOT_STORED,
    CLIENT_EXISTS,
    CLIENT_NOT_FOUND,
    CLIENT_ERROR_REPLY,     /* "ERROR" */
    CLIENT_CLIENT_ERROR,    /* "CLIENT_ERROR ..." */
    CLIENT_SERVER_ERROR,    /* "SERVER_ERROR ..." */
    CLIENT_OUTCOMES
};

enum client_parse {
    CLIENT_NEED_MORE,       /* not a whole reply yet; call again with more bytes */
    CLIENT_DONE,            /* *reply is filled in; drop reply->consumed bytes */
    CLIENT_BAD,             /* not a reply to this request: the stream is out of step and the
                               connection must be dropped (reply->why says what was wrong) */
};

struct client_reply {
    enum client_outcome outcome;
    size_t consumed;        /* CLIENT_DONE: bytes this reply took */
    size_t need;            /* CLIENT_NEED_MORE: total bytes needed when known, else 0 */
    size_t value_len;       /* CLIENT_HIT: the value's length */
    const char *why;        /* CLIENT_BAD: a short description */
};

/* A reply line longer than this (without a value block) is treated as garbage. */
#define CLIENT_LINE_MAX 4096

/* Largest value a get reply may announce before it is treated as garbage. */
#define CLIENT_VALUE_MAX ((size_t)1 << 30)

/* Bytes the head of a request (a text or meta line, or a binary header with its extras and
 * key) needs at most, for a key of nkey bytes, whatever its numbers. */
#define CLIENT_LINE_SPACE(nkey) ((nkey) + 96)

/* Writes "get <key>\r\n" into out (CLIENT_LINE_SPACE(nkey) bytes); returns its length. */
size_t client_text_get(char *out, const char *key, size_t nkey);

/* Writes "<set|add|append> <key> <flags> <exptime> <nbytes>\r\n" into out
 * (CLIENT_LINE_SPACE(nkey) bytes) and returns its length; the caller adds the nbytes of data
 * and "\r\n". op must be a storage op. */
size_t client_text_store(char *out, enum client_op op, const char *key, size_t nkey,
                         uint32_t flags, uint32_t exptime, size_t nbytes);

/*
 * Parses the reply to one request from buf[0..len): op and key are those of the request the
 * reply answers (replies come in request order). A get reply must name exactly that key.
 * Never reads past len, never allocates. Pure.
 */
enum client_parse client_text_parse(const char *buf, size_t len, enum client_op op,
                                    const char *key, size_t nkey, struct client_reply *reply);

/* "hit", "miss", "stored", ...: a short name of an outcome, for reports. */
const char *client_outcome_name(enum client_outcome o);

#endif
