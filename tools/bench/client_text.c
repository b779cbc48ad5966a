/* memcached text protocol, client side: request encoders and a resumable reply parser. */
#include "tools/bench/client_text.h"

#include <stdbool.h>
#include <string.h>

#include "protocol/text.h"

static size_t put(char *out, const char *s, size_t n)
{
    memcpy(out, s, n);
    return n;
}

size_t client_text_get(char *out, const char *key, size_t nkey)
{
    size_t n = put(out, "get ", 4);
    n += put(out + n, key, nkey);
    n += put(out + n, "\r\n", 2);
    return n;
}

size_t client_text_store(char *out, enum client_op op, const char *key, size_t nkey,
                         uint32_t flags, uint32_t exptime, size_t nbytes)
{
    size_t n;

    switch (op) {
    case CLIENT_ADD:
        n = put(out, "add ", 4);
        break;
    case CLIENT_APPEND:
        n = put(out, "append ", 7);
        break;
    default:
        n = put(out, "set ", 4);
        break;
    }
    n += put(out + n, key, nkey);
    out[n++] = ' ';
    n += proto_u64_to_dec(out + n, flags);
    out[n++] = ' ';
    n += proto_u64_to_dec(out + n, exptime);
    out[n++] = ' ';
    n += proto_u64_to_dec(out + n, nbytes);
    n += put(out + n, "\r\n", 2);
    return n;
}

/* The line at buf: its length without "\r\n" in *linelen, or false when no whole line yet. */
static bool find_line(const char *buf, size_t len, size_t *linelen, bool *toolong, bool *bare_lf)
{
    size_t scan = len < CLIENT_LINE_MAX ? len : CLIENT_LINE_MAX;
    const char *nl = memchr(buf, '\n', scan);

    *toolong = false;
    *bare_lf = false;
    if (nl == NULL) {
        *toolong = len >= CLIENT_LINE_MAX;
        return false;
    }
    if (nl == buf || nl[-1] != '\r') {
        *bare_lf = true;
        return false;
    }
    *linelen = (size_t)(nl - buf) - 1;
    return true;
}

static bool line_is(const char *line, size_t n, const char *word)
{
    size_t w = strlen(word);
    return n == w && memcmp(line, word, w) == 0;
}

static bool line_starts(const char *line, size_t n, const char *prefix)
{
    size_t w = strlen(prefix);
    return n >= w && memcmp(line, prefix, w) == 0;
}

/* An unsigned decimal field at *p (up to end), moving *p past it; false if none or overflow. */
static bool dec_field(const char **p, const char *end, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    const char *s = *p;

    if (s >= end || *s < '0' || *s > '9') {
        return false;
    }
    while (s < end && *s >= '0' && *s <= '9') {
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (max - d) / 10) {
            return false;
        }
        v = v * 10 + d;
        s++;
    }
    *p = s;
    *out = v;
    return true;
}

static enum client_parse bad(struct client_reply *r, const char *why)
{
    r->why = why;
    return CLIENT_BAD;
}

static enum client_parse done(struct client_reply *r, enum client_outcome o, size_t consumed)
{
    r->outcome = o;
    r->consumed = consumed;
    return CLIENT_DONE;
}

/* Error lines any command may get. Returns true (and fills r) if the line is one. */
static bool error_line(const char *line, size_t n, size_t consumed, struct client_reply *r)
{
    if (line_is(line, n, "ERROR")) {
        done(r, CLIENT_ERROR_REPLY, consumed);
        return true;
    }
    if (line_starts(line, n, "CLIENT_ERROR")) {
        done(r, CLIENT_CLIENT_ERROR, consumed);
        return true;
    }
    if (line_starts(line, n, "SERVER_ERROR")) {
        done(r, CLIENT_SERVER_ERROR, consumed);
        return true;
    }
    return false;
}

static enum client_parse parse_get(size_t len, const char *line, size_t n, const char *key,
                                   size_t nkey, struct client_reply *r)
{
    const char *p, *end = line + n;
    uint64_t flags, bytes, cas;

    if (line_is(line, n, "END")) {
        return done(r, CLIENT_MISS, n + 2);
    }
    if (error_line(line, n, n + 2, r)) {
        return CLIENT_DONE;
    }
    if (!line_starts(line, n, "VALUE ")) {
        return bad(r, "expected VALUE or END after a get");
    }
    /* VALUE <key> <flags> <bytes>[ <cas>] */
    p = line + 6;
    if ((size_t)(end - p) < nkey + 1 || memcmp(p, key, nkey) != 0 || p[nkey] != ' ') {
        return bad(r, "VALUE for a key that was not asked for");
    }
    p += nkey + 1;
    if (!dec_field(&p, end, UINT32_MAX, &flags) || p >= end || *p++ != ' '
        || !dec_field(&p, end, CLIENT_VALUE_MAX, &bytes)) {
        return bad(r, "malformed VALUE line");
    }
    if (p < end) {
        if (*p++ != ' ' || !dec_field(&p, end, UINT64_MAX, &cas) || p != end) {
            return bad(r, "malformed VALUE line");
        }
    }
    size_t total = n + 2 + (size_t)bytes + 2 + 5;     /* line, data, "\r\n", "END\r\n" */
    if (len < total) {
        r->need = total;
        return CLIENT_NEED_MORE;
    }
    const char *tail = line + n + 2 + bytes;
    if (memcmp(tail, "\r\n", 2) != 0) {
        return bad(r, "value block not followed by \\r\\n");
    }
    if (memcmp(tail + 2, "END\r\n", 5) != 0) {
        return bad(r, "expected END after the value of a one-key get");
    }
    r->value_len = (size_t)bytes;
    return done(r, CLIENT_HIT, total);
}

enum client_parse client_text_parse(const char *buf, size_t len, enum client_op op,
                                    const char *key, size_t nkey, struct client_reply *r)
{
    size_t n;
    bool toolong, bare_lf;

    r->need = 0;
    r->why = NULL;
    r->value_len = 0;
    if (!find_line(buf, len, &n, &toolong, &bare_lf)) {
        if (bare_lf) {
            return bad(r, "reply line not ended by \\r\\n");
        }
        if (toolong) {
            return bad(r, "reply line too long");
        }
        return CLIENT_NEED_MORE;
    }
    if (op == CLIENT_GET) {
        return parse_get(len, buf, n, key, nkey, r);
    }
    if (line_is(buf, n, "STORED")) {
        return done(r, CLIENT_STORED, n + 2);
    }
    if (line_is(buf, n, "NOT_STORED")) {
        return done(r, CLIENT_NOT_STORED, n + 2);
    }
    if (line_is(buf, n, "EXISTS")) {
        return done(r, CLIENT_EXISTS, n + 2);
    }
    if (line_is(buf, n, "NOT_FOUND")) {
        return done(r, CLIENT_NOT_FOUND, n + 2);
    }
    if (error_line(buf, n, n + 2, r)) {
        return CLIENT_DONE;
    }
    return bad(r, "unexpected reply to a storage command");
}

const char *client_outcome_name(enum client_outcome o)
{
    static const char *const names[CLIENT_OUTCOMES] = {
        [CLIENT_HIT] = "hit",
        [CLIENT_MISS] = "miss",
        [CLIENT_STORED] = "stored",
        [CLIENT_NOT_STORED] = "not_stored",
        [CLIENT_EXISTS] = "exists",
        [CLIENT_NOT_FOUND] = "not_found",
        [CLIENT_ERROR_REPLY] = "error",
        [CLIENT_CLIENT_ERROR] = "client_error",
        [CLIENT_SERVER_ERROR] = "server_error",
    };
    return (unsigned)o < CLIENT_OUTCOMES ? names[o] : "?";
}
