/* mcstore-rebalance: pure parsers for the reply lines the tool reads from mcstore. */
#include "tools/rebalance/reply.h"

#include <string.h>

#include "protocol/meta.h"

/* Splits line[0..n) at single spaces into at most max tokens; returns how many (0 when a
 * token is empty, i.e. two spaces in a row or a leading/trailing space, or more than max). */
static size_t split(const char *line, size_t n, const char **tok, size_t *ntok, size_t max)
{
    size_t count = 0;
    size_t start = 0;

    for (size_t i = 0; i <= n; i++) {
        if (i == n || line[i] == ' ') {
            if (i == start || count == max) {
                return 0;
            }
            tok[count] = line + start;
            ntok[count] = i - start;
            count++;
            start = i + 1;
        }
    }
    return count;
}

static bool tok_is(const char *t, size_t n, const char *s)
{
    return n == strlen(s) && memcmp(t, s, n) == 0;
}

/* Strict unsigned decimal: digits only, no sign or spaces, no overflow past max. */
static bool parse_u64(const char *t, size_t n, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (n == 0 || n > 20) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (t[i] < '0' || t[i] > '9') {
            return false;
        }
        unsigned d = (unsigned)(t[i] - '0');
        if (v > (max - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool starts_with(const char *line, size_t n, const char *prefix)
{
    size_t p = strlen(prefix);
    return n >= p && memcmp(line, prefix, p) == 0;
}

static bool is_error_line(const char *line, size_t n)
{
    return tok_is(line, n, "ERROR") || starts_with(line, n, "SERVER_ERROR") ||
           starts_with(line, n, "CLIENT_ERROR");
}

static bool parse_item(const char **tok, const size_t *ntok, size_t count, struct rb_item *item)
{
    uint64_t v;

    if (count != 6 && count != 7) {
        return false;
    }
    if (ntok[1] > sizeof(item->token)) {
        return false;
    }
    item->b64 = count == 7;
    if (item->b64) {
        unsigned char raw[PROTO_ITERATE_B64_MAX];
        char again[PROTO_ITERATE_B64_MAX];
        if (!tok_is(tok[6], ntok[6], "b") || ntok[1] % 4 != 0) {
            return false;
        }
        size_t got = proto_base64_decode(tok[1], ntok[1], raw);
        /* the server's base64 is canonical: anything else is not an mcstore reply */
        if (got == 0 || got > PROTO_KEY_MAX ||
            proto_base64_encode(raw, got, again) != ntok[1] ||
            memcmp(again, tok[1], ntok[1]) != 0) {
            return false;
        }
        memcpy(item->key, raw, got);
        item->nkey = got;
    } else {
        if (ntok[1] > PROTO_KEY_MAX) {
            return false;
        }
        memcpy(item->key, tok[1], ntok[1]);
        item->nkey = ntok[1];
    }
    memcpy(item->token, tok[1], ntok[1]);
    item->ntoken = ntok[1];
    if (!parse_u64(tok[2], ntok[2], UINT32_MAX, &v)) {
        return false;
    }
    item->flags = (uint32_t)v;
    if (!parse_u64(tok[3], ntok[3], UINT32_MAX, &v)) {
        return false;
    }
    item->exptime = (uint32_t)v;
    if (!parse_u64(tok[4], ntok[4], RB_VALUE_MAX, &v)) {
        return false;
    }
    item->nbytes = (size_t)v;
    return parse_u64(tok[5], ntok[5], UINT64_MAX, &item->cas);
}

enum rb_iter_line rb_parse_iter_line(const char *line, size_t n, struct rb_item *item,
                                     char *cursor)
{
    const char *tok[8];
    size_t ntok[8];

    if (is_error_line(line, n)) {
        return RB_ITER_ERROR;
    }
    size_t count = split(line, n, tok, ntok, 8);
    if (count == 0) {
        return RB_ITER_BAD;
    }
    if (tok_is(tok[0], ntok[0], "ITEM")) {
        return parse_item(tok, ntok, count, item) ? RB_ITER_ITEM : RB_ITER_BAD;
    }
    if (tok_is(tok[0], ntok[0], "END") && count == 2 && ntok[1] <= PROTO_ITERATE_B64_MAX) {
        memcpy(cursor, tok[1], ntok[1]);
        cursor[ntok[1]] = '\0';
        return RB_ITER_END;
    }
    return RB_ITER_BAD;
}

enum rb_meta_kind rb_parse_meta_line(const char *line, size_t n, struct rb_meta_reply *out)
{
    static const struct {
        const char *code;
        enum rb_meta_kind kind;
    } codes[] = {
        {"HD", RB_META_HD}, {"NS", RB_META_NS}, {"EX", RB_META_EX},
        {"NF", RB_META_NF}, {"VA", RB_META_VA}, {"EN", RB_META_EN},
    };

    memset(out, 0, sizeof(*out));
    out->kind = RB_META_BAD;
    if (starts_with(line, n, "SERVER_ERROR ") || starts_with(line, n, "CLIENT_ERROR ")) {
        out->kind = line[0] == 'S' ? RB_META_SERVER_ERROR : RB_META_CLIENT_ERROR;
        out->msg = line + 13;
        out->nmsg = n - 13;
        return out->kind;
    }
    if (tok_is(line, n, "ERROR")) {
        out->kind = RB_META_ERROR;
        return out->kind;
    }
    size_t i = 0;
    size_t start = 0;
    bool first = true;
    bool vlen_next = false;
    for (; i <= n; i++) {
        if (i < n && line[i] != ' ') {
            continue;
        }
        const char *t = line + start;
        size_t nt = i - start;
        start = i + 1;
        if (nt == 0) {
            out->kind = RB_META_BAD;
            return out->kind;
        }
        if (first) {
            first = false;
            for (size_t k = 0; k < sizeof(codes) / sizeof(codes[0]); k++) {
                if (tok_is(t, nt, codes[k].code)) {
                    out->kind = codes[k].kind;
                }
            }
            if (out->kind == RB_META_BAD) {
                return out->kind;
            }
            vlen_next = out->kind == RB_META_VA;
            continue;
        }
        uint64_t v;
        if (vlen_next) {
            vlen_next = false;
            if (!parse_u64(t, nt, RB_VALUE_MAX, &v)) {
                out->kind = RB_META_BAD;
                return out->kind;
            }
            out->vlen = (size_t)v;
        } else if (t[0] == 'c' && parse_u64(t + 1, nt - 1, UINT64_MAX, &v)) {
            out->has_cas = true;
            out->cas = v;
        } else if (t[0] == 'f' && parse_u64(t + 1, nt - 1, UINT32_MAX, &v)) {
            out->has_flags = true;
            out->flags = (uint32_t)v;
        }
    }
    if (vlen_next || first) {
        out->kind = RB_META_BAD;   /* VA without its length */
    }
    return out->kind;
}

enum rb_refusal rb_parse_refusal(const char *msg, size_t n, char *host, size_t hostlen,
                                 uint16_t *port)
{
    static const char master_is[] = "not master; master is ";
    size_t p = sizeof(master_is) - 1;

    if (starts_with(msg, n, "not master; no master elected yet") ||
        starts_with(msg, n, "not master; master address not known yet") ||
        starts_with(msg, n, "replication group incomplete")) {
        return RB_REFUSAL_NO_MASTER;
    }
    if (!starts_with(msg, n, master_is)) {
        return RB_REFUSAL_NONE;
    }
    const char *a = msg + p;
    size_t na = n - p;
    /* host:port, [v6]:port */
    const char *colon = NULL;
    for (size_t i = na; i > 0; i--) {
        if (a[i - 1] == ':') {
            colon = a + i - 1;
            break;
        }
    }
    uint64_t v;
    if (colon == NULL || colon == a ||
        !parse_u64(colon + 1, (size_t)(a + na - colon - 1), UINT16_MAX, &v) || v == 0) {
        return RB_REFUSAL_NONE;
    }
    const char *h = a;
    size_t nh = (size_t)(colon - a);
    if (h[0] == '[') {
        if (nh < 3 || h[nh - 1] != ']') {
            return RB_REFUSAL_NONE;
        }
        h++;
        nh -= 2;
    }
    if (nh + 1 > hostlen || memchr(h, ' ', nh) != NULL) {
        return RB_REFUSAL_NONE;
    }
    memcpy(host, h, nh);
    host[nh] = '\0';
    *port = (uint16_t)v;
    return RB_REFUSAL_MASTER_IS;
}

bool rb_parse_stat_u64(const char *line, size_t n, const char *name, uint64_t *value)
{
    const char *tok[3];
    size_t ntok[3];

    if (split(line, n, tok, ntok, 3) != 3 || !tok_is(tok[0], ntok[0], "STAT") ||
        !tok_is(tok[1], ntok[1], name)) {
        return false;
    }
    return parse_u64(tok[2], ntok[2], UINT64_MAX, value);
}
