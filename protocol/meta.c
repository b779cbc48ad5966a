/* memcached 1.6 meta command parser (mg ms md ma mn me), matching memcached 1.6.18's replies. */
#include "protocol/meta.h"

#include <limits.h>
#include <string.h>

#include "protocol/text.h"

/* memcached tokenizes a line into at most this many tokens, the last one holding the rest;
 * a meta line with more than PROTO_META_TOKENS_MAX is refused, so the rest never matters. */
#define MAX_TOKENS 24
#define KEY_TOKEN 1

/* memcached's item header on 64-bit (struct _stritem) and its CAS field, as in text.c. */
#define ITEM_HEADER_BYTES 48
#define ITEM_CAS_BYTES 8

struct token {
    const char *value;
    size_t length;
};

static const char E_FORMAT[] = "CLIENT_ERROR bad command line format";
static const char E_FLAG_DUP_OR_BAD[] = "CLIENT_ERROR invalid or duplicate flag";
static const char E_OPAQUE[] = "CLIENT_ERROR opaque token too long";

/* Splits on ' ' as memcached's tokenize_command does. Returns memcached's ntokens: the real
 * tokens (at most MAX_TOKENS - 1) plus its final empty token. */
static size_t tokenize(const char *line, size_t len, struct token *tokens)
{
    size_t n = 0;
    size_t s = 0;

    for (size_t e = 0; e < len && n < MAX_TOKENS - 1; e++) {
        if (line[e] == ' ') {
            if (s != e) {
                tokens[n].value = line + s;
                tokens[n].length = e - s;
                n++;
            }
            s = e + 1;
        }
    }
    if (n < MAX_TOKENS - 1 && s < len) {
        tokens[n].value = line + s;
        tokens[n].length = len - s;
        n++;
    }
    return n + 1;
}

static void set_error(struct proto_result *res, const char *msg)
{
    res->status = PROTO_ERROR;
    res->error = msg;
}

static bool key_has_control(const char *key, size_t nkey)
{
    for (size_t i = 0; i < nkey; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c < 0x20 || c == 0x7f) {
            return true;
        }
    }
    return false;
}

/*
 * The key token: at most 250 bytes as sent (memcached checks before decoding base64). Keys
 * with control characters are refused as in the text protocol (doc/protocol.md); a base64 key
 * is exempt: memcached's decoder skips such bytes, and the decoded key may hold any byte.
 */
static bool key_token_ok(const struct token *tokens, size_t ntokens)
{
    const struct token *key = &tokens[KEY_TOKEN];
    if (key->length > PROTO_KEY_MAX) {
        return false;
    }
    for (size_t i = KEY_TOKEN + 1; i < ntokens - 1; i++) {
        if (tokens[i].value[0] == 'b') {
            return true;
        }
    }
    return !key_has_control(key->value, key->length);
}

/*
 * memcached's _meta_flag_preparse: validates the flag tokens from 'start' on and records their
 * values. A repeated first letter (any byte >= 127 counts as repeated) or an unknown one stops
 * at once; a bad value notes its message and goes on, so a later one may replace it. Returns
 * NULL, or the error line (*errstr keeps the caller's default for an 'F' without a number).
 */
static const char *preparse(const struct token *tokens, size_t ntokens, size_t start,
                            struct proto_request *req, const char *errstr)
{
    bool has_error = false;
    int32_t ttl;

    for (size_t i = start; i < ntokens - 1; i++) {
        const struct token *t = &tokens[i];
        unsigned char o = (unsigned char)t->value[0];
        const char *num = t->value + 1;
        size_t nnum = t->length - 1;
        uint64_t bit = proto_meta_bit((char)o);

        /* every flag is a letter: any other byte below 127 is refused below on its first
         * use, so only letters need remembering */
        if (o >= 127 || (req->meta.seen & bit) != 0) {
            return "CLIENT_ERROR duplicate flag";
        }
        req->meta.seen |= bit;
        switch (o) {
        case 'b': {
            const struct token *key = &tokens[KEY_TOKEN];
            size_t n = proto_base64_decode(key->value, key->length,
                                           (unsigned char *)req->meta.key_buf);
            if (n == 0) {
                errstr = "CLIENT_ERROR error decoding key";
                has_error = true;
            }
            req->key = req->meta.key_buf;
            req->nkey = n;
            req->meta.key_binary = true;
            break;
        }
        case 'N':
        case 'T':
        case 'R':
            if (!proto_text_strtol(num, nnum, &ttl)) {
                errstr = "CLIENT_ERROR bad token in command line format";
                has_error = true;
            } else if (o == 'N') {
                req->meta.vivify_ttl = ttl;
            } else if (o == 'T') {
                req->meta.ttl = ttl;
            } else {
                req->meta.recache_ttl = ttl;
            }
            break;
        case 'F':
            /* memcached notes the failure without a message of its own */
            if (!proto_text_strtoul(num, nnum, &req->meta.client_flags)) {
                has_error = true;
            }
            break;
        case 'C':
            if (!proto_text_strtoull(num, nnum, &req->meta.cas)) {
                errstr = "CLIENT_ERROR bad token in command line format";
                has_error = true;
            } else {
                req->meta.has_cas = true;
            }
            break;
        case 'M':
            if (t->length != 2) {
                errstr = "CLIENT_ERROR incorrect length for M token";
                has_error = true;
            } else {
                req->meta.mode = t->value[1];
            }
            break;
        case 'J':
            if (!proto_text_strtoull(num, nnum, &req->meta.initial)) {
                errstr = "CLIENT_ERROR invalid numeric initial value";
                has_error = true;
            }
            break;
        case 'D':
            if (!proto_text_strtoull(num, nnum, &req->meta.delta)) {
                errstr = "CLIENT_ERROR invalid numeric delta value";
                has_error = true;
            }
            break;
        case 'O': case 'P': case 'L': case 'k': case 's': case 't': case 'c': case 'f':
        case 'v': case 'h': case 'l': case 'u': case 'q': case 'I':
            break;
        default:
            return "CLIENT_ERROR invalid flag";
        }
    }
    return has_error ? errstr : NULL;
}

/* The 'O' token when it is longer than memcached allows, else NULL. */
static const struct token *long_opaque(const struct token *tokens, size_t ntokens)
{
    for (size_t i = KEY_TOKEN + 1; i < ntokens - 1; i++) {
        if (tokens[i].value[0] == 'O' && tokens[i].length > PROTO_META_OPAQUE_MAX) {
            return &tokens[i];
        }
    }
    return NULL;
}

/* Points req at the key token (unless 'b' decoded it) and at the flag tokens from 'first'. */
static void set_key_and_flags(const char *line, size_t line_len, const struct token *tokens,
                              size_t ntokens, size_t first, struct proto_request *req)
{
    if (!req->meta.key_binary) {
        req->key = tokens[KEY_TOKEN].value;
        req->nkey = tokens[KEY_TOKEN].length;
    }
    if (first < ntokens - 1) {
        req->meta.flags = tokens[first].value;
        req->meta.nflags = line_len - (size_t)(tokens[first].value - line);
    } else {
        req->meta.flags = line + line_len;
        req->meta.nflags = 0;
    }
}

/* mg <key> <flags>* */
static void parse_mg(const char *line, size_t line_len, const struct token *tokens,
                     size_t ntokens, struct proto_request *req, struct proto_result *res)
{
    if (ntokens < 3) {
        set_error(res, "ERROR");
        return;
    }
    if (!key_token_ok(tokens, ntokens)) {
        set_error(res, E_FORMAT);
        return;
    }
    if (ntokens > PROTO_META_TOKENS_MAX) {
        set_error(res, "CLIENT_ERROR options flags are too long");
        return;
    }
    const char *err = preparse(tokens, ntokens, 2, req, E_FORMAT);
    if (err != NULL) {
        set_error(res, err);
        return;
    }
    if (long_opaque(tokens, ntokens) != NULL) {
        req->meta.late_error = E_OPAQUE;
    }
    set_key_and_flags(line, line_len, tokens, ntokens, 2, req);
    req->cmd = PROTO_CMD_META_GET;
    res->status = PROTO_REQUEST;
}

/* md <key> <flags>* and ma <key> <flags>*: the same checks, one message for any bad flag. */
static void parse_md_ma(const char *line, size_t line_len, const struct token *tokens,
                        size_t ntokens, bool arith, struct proto_request *req,
                        struct proto_result *res)
{
    if (ntokens < 3) {
        set_error(res, "ERROR");
        return;
    }
    if (!key_token_ok(tokens, ntokens)) {
        set_error(res, E_FORMAT);
        return;
    }
    if (ntokens > PROTO_META_TOKENS_MAX) {
        set_error(res, "CLIENT_ERROR options flags too long");
        return;
    }
    req->meta.delta = 1;
    if (preparse(tokens, ntokens, 2, req, E_FORMAT) != NULL) {
        set_error(res, E_FLAG_DUP_OR_BAD);
        return;
    }
    if (arith) {
        char m = req->meta.mode;
        if (m != 0 && m != 'I' && m != '+' && m != 'D' && m != '-') {
            set_error(res, "CLIENT_ERROR invalid mode for ma M token");
            return;
        }
        if (long_opaque(tokens, ntokens) != NULL) {
            req->meta.late_error = E_OPAQUE;   /* memcached finds it after the update */
        }
    } else if (long_opaque(tokens, ntokens) != NULL) {
        set_error(res, E_OPAQUE);               /* md checks before touching the item */
        return;
    }
    set_key_and_flags(line, line_len, tokens, ntokens, 2, req);
    req->cmd = arith ? PROTO_CMD_META_ARITH : PROTO_CMD_META_DELETE;
    res->status = PROTO_REQUEST;
}

/* ms <key> <datalen> <flags>*\r\n<data>\r\n */
static void parse_ms(const char *buf, size_t len, size_t line_len, size_t line_total,
                     const struct token *tokens, size_t ntokens, const struct proto_limits *lim,
                     struct proto_request *req, struct proto_result *res)
{
    int32_t vlen;

    /* up to the length, an error leaves the data line to be read as a command (memcached) */
    if (ntokens < 3) {
        set_error(res, "ERROR");
        return;
    }
    if (!key_token_ok(tokens, ntokens) || ntokens == 3) {
        set_error(res, E_FORMAT);
        return;
    }
    if (ntokens > PROTO_META_TOKENS_MAX) {
        set_error(res, "CLIENT_ERROR options flags too long");
        return;
    }
    if (!proto_text_strtol(tokens[2].value, tokens[2].length, &vlen) || vlen < 0 ||
        vlen > INT_MAX - 2) {
        set_error(res, E_FORMAT);
        return;
    }

    /* from here on the data block is discarded with the error */
    size_t block = (size_t)vlen + 2;
    const char *err = preparse(tokens, ntokens, 3, req, E_FORMAT);
    if (err == NULL) {
        char m = req->meta.mode;
        if (m != 0 && m != 'E' && m != 'A' && m != 'P' && m != 'R' && m != 'S') {
            err = "CLIENT_ERROR invalid mode for ms M token";
        } else if (long_opaque(tokens, ntokens) != NULL) {
            err = E_OPAQUE;
        }
    }
    set_key_and_flags(buf, line_len, tokens, ntokens, 3, req);
    if (err != NULL) {
        set_error(res, err);
        res->swallow = block;
        res->swallow_uncounted = true;
        return;
    }
    size_t total = (size_t)ITEM_HEADER_BYTES + req->nkey + 1 +
                   (req->meta.client_flags != 0 ? 4 : 0) + block + ITEM_CAS_BYTES;
    if (total > lim->item_max) {
        /* memcached also drops the old value, whatever the mode */
        set_error(res, "SERVER_ERROR object too large for cache");
        res->swallow = block;
        res->unlink_key = true;
        return;
    }
    size_t need = line_total + block;
    if (len < need) {
        res->status = PROTO_NEED_MORE;
        res->need = need;
        res->consumed = 0;
        return;
    }
    res->consumed = need;
    if (buf[need - 2] != '\r' || buf[need - 1] != '\n') {
        set_error(res, "CLIENT_ERROR bad data chunk");  /* shown even with 'q' */
        return;
    }
    req->data = buf + line_total;
    req->ndata = (size_t)vlen;
    req->cmd = PROTO_CMD_META_SET;
    res->status = PROTO_REQUEST;
}

/* me <key> [b]: only a 'b' right after the key counts, and nothing else is looked at. */
static void parse_me(const struct token *tokens, size_t ntokens, struct proto_request *req,
                     struct proto_result *res)
{
    const struct token *key = &tokens[KEY_TOKEN];
    if (ntokens < 3 || key->length > PROTO_KEY_MAX) {
        set_error(res, E_FORMAT);
        return;
    }
    if (ntokens >= 4 && tokens[2].length == 1 && tokens[2].value[0] == 'b') {
        size_t n = proto_base64_decode(key->value, key->length,
                                       (unsigned char *)req->meta.key_buf);
        if (n == 0) {
            set_error(res, E_FORMAT);
            return;
        }
        req->key = req->meta.key_buf;
        req->nkey = n;
        req->meta.key_binary = true;
    } else if (key_has_control(key->value, key->length)) {
        set_error(res, E_FORMAT);
        return;
    } else {
        req->key = key->value;
        req->nkey = key->length;
    }
    req->cmd = PROTO_CMD_META_DEBUG;
    res->status = PROTO_REQUEST;
}

void proto_meta_parse(const char *buf, size_t len, size_t line_len, size_t line_total,
                      const struct proto_limits *lim, struct proto_request *req,
                      struct proto_result *res)
{
    struct token tokens[MAX_TOKENS];
    size_t ntokens = tokenize(buf, line_len, tokens);

    res->consumed = line_total;
    if (ntokens < 2 || tokens[0].length != 2) {
        set_error(res, "ERROR");    /* the text parser only sends two-letter commands */
        return;
    }
    switch (tokens[0].value[1]) {
    case 'g':
        parse_mg(buf, line_len, tokens, ntokens, req, res);
        break;
    case 's':
        parse_ms(buf, len, line_len, line_total, tokens, ntokens, lim, req, res);
        break;
    case 'd':
        parse_md_ma(buf, line_len, tokens, ntokens, false, req, res);
        break;
    case 'a':
        parse_md_ma(buf, line_len, tokens, ntokens, true, req, res);
        break;
    case 'n':
        req->cmd = PROTO_CMD_META_NOOP;
        res->status = PROTO_REQUEST;
        break;
    case 'e':
        parse_me(tokens, ntokens, req, res);
        break;
    default:
        set_error(res, "ERROR");
        break;
    }
}

bool proto_meta_next_flag(const struct proto_request *req, size_t *pos, const char **tok,
                          size_t *ntok)
{
    size_t i = *pos;
    const char *f = req->meta.flags;

    while (i < req->meta.nflags && f[i] == ' ') {
        i++;
    }
    if (i >= req->meta.nflags) {
        *pos = i;
        return false;
    }
    size_t start = i;
    while (i < req->meta.nflags && f[i] != ' ') {
        i++;
    }
    *pos = i;
    *tok = f + start;
    *ntok = i - start;
    return true;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t proto_base64_encode(const unsigned char *in, size_t n, char *out)
{
    char *p = out;
    size_t i = 0;

    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *p++ = B64[v >> 18];
        *p++ = B64[(v >> 12) & 63];
        *p++ = B64[(v >> 6) & 63];
        *p++ = B64[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        *p++ = B64[v >> 18];
        *p++ = B64[(v >> 12) & 63];
        *p++ = i + 1 < n ? B64[(v >> 6) & 63] : '=';
        *p++ = '=';
    }
    return (size_t)(p - out);
}

/* A base64 digit's value, 64 for '=' (a zero digit that marks padding), or -1. */
static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return 26 + (c - 'a');
    }
    if (c >= '0' && c <= '9') {
        return 52 + (c - '0');
    }
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return c == '=' ? 64 : -1;
}

size_t proto_base64_decode(const char *in, size_t n, unsigned char *out)
{
    size_t digits = 0;

    for (size_t i = 0; i < n; i++) {
        if (b64_value((unsigned char)in[i]) >= 0) {
            digits++;
        }
    }
    if (digits == 0 || digits % 4 != 0) {
        return 0;
    }
    unsigned char *p = out;
    unsigned block[4];
    size_t count = 0;
    unsigned pad = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)in[i]);
        if (v < 0) {
            continue;
        }
        if (v == 64) {
            pad++;
            v = 0;
        }
        block[count++] = (unsigned)v;
        if (count < 4) {
            continue;
        }
        *p++ = (unsigned char)(block[0] << 2 | block[1] >> 4);
        *p++ = (unsigned char)(block[1] << 4 | block[2] >> 2);
        *p++ = (unsigned char)(block[2] << 6 | block[3]);
        count = 0;
        if (pad > 0) {
            if (pad > 2) {
                return 0;
            }
            p -= pad;
            break;
        }
    }
    return (size_t)(p - out);
}

size_t proto_meta_item_size(size_t nkey, uint32_t flags, size_t nvalue)
{
    return ITEM_HEADER_BYTES + nkey + 1 + (flags != 0 ? 4 : 0) + nvalue + 2 + ITEM_CAS_BYTES;
}

unsigned proto_meta_slab_class(size_t item_size)
{
    /* slabs_init() with the defaults: chunks grow by 1.25 from 96 bytes, 8-byte aligned, up
     * to half a page; the last class holds the (chunked) larger items */
    const size_t chunk_max = 512 * 1024;
    size_t size = ITEM_HEADER_BYTES + 48;
    unsigned cls = 1;

    for (;; cls++) {
        if ((double)size >= (double)chunk_max / 1.25) {
            return cls;
        }
        if (size % 8 != 0) {
            size += 8 - size % 8;
        }
        if (item_size <= size) {
            return cls;
        }
        size = (size_t)((double)size * 1.25);
    }
}
