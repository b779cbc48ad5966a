/* memcached text protocol, client side: request encoders and a resumable reply parser. */
#include "tools/bench/client_text.h"

#include <stdbool.h>
#include <string.h>

#include "protocol/text.h"
#include "tools/bench/client_line.h"

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
    enum client_outcome o;

    if (!client_line_error(line, n, &o)) {
        return false;
    }
    done(r, o, consumed);
    return true;
}

static enum client_parse parse_get(size_t len, const char *line, size_t n, const char *key,
                                   size_t nkey, struct client_reply *r)
{
    const char *p, *end = line + n;
    uint64_t flags, bytes, cas;

    if (client_line_is(line, n, "END")) {
        return done(r, CLIENT_MISS, n + 2);
    }
    if (error_line(line, n, n + 2, r)) {
        return CLIENT_DONE;
    }
    if (!client_line_starts(line, n, "VALUE ")) {
        return bad(r, "expected VALUE or END after a get");
    }
    /* VALUE <key> <flags> <bytes>[ <cas>] */
    p = line + 6;
    if ((size_t)(end - p) < nkey + 1 || memcmp(p, key, nkey) != 0 || p[nkey] != ' ') {
        return bad(r, "VALUE for a key that was not asked for");
    }
    p += nkey + 1;
    if (!client_dec_field(&p, end, UINT32_MAX, &flags) || p >= end || *p++ != ' '
        || !client_dec_field(&p, end, CLIENT_VALUE_MAX, &bytes)) {
        return bad(r, "malformed VALUE line");
    }
    if (p < end) {
        if (*p++ != ' ' || !client_dec_field(&p, end, UINT64_MAX, &cas) || p != end) {
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
    size_t n = 0;

    r->need = 0;
    r->why = NULL;
    r->value_len = 0;
    switch (client_line_find(buf, len, &n)) {
    case CLIENT_LINE_OK:
        break;
    case CLIENT_LINE_PARTIAL:
        return CLIENT_NEED_MORE;
    case CLIENT_LINE_TOO_LONG:
        return bad(r, "reply line too long");
    case CLIENT_LINE_BARE_LF:
        return bad(r, "reply line not ended by \\r\\n");
    }
    if (op == CLIENT_GET) {
        return parse_get(len, buf, n, key, nkey, r);
    }
    if (client_line_is(buf, n, "STORED")) {
        return done(r, CLIENT_STORED, n + 2);
    }
    if (client_line_is(buf, n, "NOT_STORED")) {
        return done(r, CLIENT_NOT_STORED, n + 2);
    }
    if (client_line_is(buf, n, "EXISTS")) {
        return done(r, CLIENT_EXISTS, n + 2);
    }
    if (client_line_is(buf, n, "NOT_FOUND")) {
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
