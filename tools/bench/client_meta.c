/* memcached meta protocol, client side: mg/ms encoders and a resumable reply parser. */
#include "tools/bench/client_meta.h"

#include <stdbool.h>
#include <string.h>

#include "protocol/text.h"
#include "tools/bench/client_line.h"

static size_t put(char *out, const char *s, size_t n)
{
    memcpy(out, s, n);
    return n;
}

size_t client_meta_get(char *out, const char *key, size_t nkey, uint32_t opaque)
{
    size_t n = put(out, "mg ", 3);
    n += put(out + n, key, nkey);
    n += put(out + n, " v k O", 6);
    n += proto_u64_to_dec(out + n, opaque);
    n += put(out + n, "\r\n", 2);
    return n;
}

size_t client_meta_store(char *out, enum client_op op, const char *key, size_t nkey,
                         uint32_t flags, uint32_t exptime, size_t nbytes, uint32_t opaque)
{
    size_t n = put(out, "ms ", 3);
    n += put(out + n, key, nkey);
    out[n++] = ' ';
    n += proto_u64_to_dec(out + n, nbytes);
    n += put(out + n, " T", 2);
    n += proto_u64_to_dec(out + n, exptime);
    n += put(out + n, " F", 2);
    n += proto_u64_to_dec(out + n, flags);
    if (op == CLIENT_ADD) {
        n += put(out + n, " ME", 3);
    } else if (op == CLIENT_APPEND) {
        n += put(out + n, " MA", 3);
    }
    n += put(out + n, " O", 2);
    n += proto_u64_to_dec(out + n, opaque);
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

/* The two-letter reply codes, read as one number so a switch can take them. */
#define CODE(a, b) ((unsigned)(unsigned char)(a) << 8 | (unsigned char)(b))

/*
 * Checks the flags of a meta reply, the tokens in p[0..end) (each after one space): O must be
 * there and equal opaque, k must equal key when there, and no token may be empty. *has_key
 * tells whether a k flag was seen. Returns NULL, or why the flags are wrong.
 */
static const char *check_flags(const char *p, const char *end, const char *key, size_t nkey,
                               uint32_t opaque, bool *has_key)
{
    bool has_opaque = false;

    *has_key = false;
    while (p < end) {
        if (*p++ != ' ') {
            return "malformed flags";
        }
        const char *tok = p;
        const char *sp = memchr(p, ' ', (size_t)(end - p));
        const char *tend = sp != NULL ? sp : end;
        if (tend == tok) {
            return "empty flag";
        }
        if (*tok == 'O') {
            const char *q = tok + 1;
            uint64_t v;
            if (!client_dec_field(&q, tend, UINT32_MAX, &v) || q != tend || v != opaque) {
                return "reply opaque is not the request's (replies out of order)";
            }
            has_opaque = true;
        } else if (*tok == 'k') {
            if ((size_t)(tend - tok - 1) != nkey || memcmp(tok + 1, key, nkey) != 0) {
                return "reply for a key that was not asked for";
            }
            *has_key = true;
        }
        p = tend;
    }
    return has_opaque ? NULL : "reply without the request's opaque";
}

enum client_parse client_meta_parse(const char *buf, size_t len, enum client_op op,
                                    const char *key, size_t nkey, uint32_t opaque,
                                    struct client_reply *r)
{
    size_t n = 0;
    enum client_outcome o;

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
    if (client_line_error(buf, n, &o)) {
        return done(r, o, n + 2);
    }
    if (n < 2 || (n > 2 && buf[2] != ' ')) {
        return bad(r, "not a meta reply");
    }
    const char *p = buf + 2, *end = buf + n;
    unsigned code = CODE(buf[0], buf[1]);
    uint64_t size = 0;
    bool has_key;
    const char *why;

    if (code == CODE('V', 'A')) {
        /* VA <size> <flags>*: the size first, then flags like every other code */
        if (op != CLIENT_GET) {
            return bad(r, "a value in reply to a storage command");
        }
        p++;
        if (p >= end || !client_dec_field(&p, end, CLIENT_VALUE_MAX, &size)) {
            return bad(r, "malformed VA line");
        }
    }
    why = check_flags(p, end, key, nkey, opaque, &has_key);
    if (why != NULL) {
        return bad(r, why);
    }
    if (op == CLIENT_GET) {
        switch (code) {
        case CODE('V', 'A'): {
            if (!has_key) {
                return bad(r, "VA without the key it is for");
            }
            size_t total = n + 2 + (size_t)size + 2;
            if (len < total) {
                r->need = total;
                return CLIENT_NEED_MORE;
            }
            if (memcmp(buf + n + 2 + size, "\r\n", 2) != 0) {
                return bad(r, "value block not followed by \\r\\n");
            }
            r->value_len = (size_t)size;
            return done(r, CLIENT_HIT, total);
        }
        case CODE('E', 'N'):
            return done(r, CLIENT_MISS, n + 2);
        default:
            return bad(r, "expected VA or EN after mg");
        }
    }
    switch (code) {
    case CODE('H', 'D'):
        return done(r, CLIENT_STORED, n + 2);
    case CODE('N', 'S'):
        return done(r, CLIENT_NOT_STORED, n + 2);
    case CODE('E', 'X'):
        return done(r, CLIENT_EXISTS, n + 2);
    case CODE('N', 'F'):
        return done(r, CLIENT_NOT_FOUND, n + 2);
    default:
        return bad(r, "unexpected reply to ms");
    }
}
