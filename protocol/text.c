/* memcached ASCII protocol parser and reply encoders, matching memcached 1.6.18 byte for byte. */
#include "protocol/text.h"

#include <limits.h>
#include <string.h>

#include "protocol/meta.h"

/* memcached tokenizes at most this many tokens, the last one holding the unparsed rest. */
#define MAX_TOKENS 24

/* memcached's item header on 64-bit (struct _stritem) and its CAS field, for the -I check. */
#define ITEM_HEADER_BYTES 48
#define ITEM_CAS_BYTES 8

struct token {
    const char *value;  /* NULL for the terminal token when the whole line was tokenized */
    size_t length;
};

/* Splits on ' ' exactly like memcached's tokenize_command(); returns ntokens including the
 * terminal token. */
static size_t tokenize(const char *line, size_t len, struct token *tokens)
{
    size_t ntokens = 0;
    size_t s = 0;
    size_t e = 0;

    for (; e < len; e++) {
        if (line[e] == ' ') {
            if (s != e) {
                tokens[ntokens].value = line + s;
                tokens[ntokens].length = e - s;
                ntokens++;
                if (ntokens == MAX_TOKENS - 1) {
                    e++;
                    s = e;
                    break;
                }
            }
            s = e + 1;
        }
    }
    if (s != e) {
        tokens[ntokens].value = line + s;
        tokens[ntokens].length = e - s;
        ntokens++;
    }
    tokens[ntokens].value = e >= len ? NULL : line + e;
    tokens[ntokens].length = 0;
    return ntokens + 1;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static bool tok_eq(const struct token *t, const char *s)
{
    size_t n = strlen(s);
    return t->value != NULL && t->length == n && memcmp(t->value, s, n) == 0;
}

/*
 * strtoull(base 10) over a token: leading whitespace, optional sign, digits. Returns false
 * where memcached's safe_strto* would: no digits, overflow, or a non-space after the digits.
 * *negative reports a '-' sign; *magnitude is the unsigned value before negation.
 */
static bool parse_digits(const struct token *t, uint64_t *magnitude, bool *negative,
                         bool *overflow)
{
    const char *p = t->value;
    const char *end = t->value + t->length;
    uint64_t v = 0;
    bool any = false;

    *negative = false;
    *overflow = false;
    while (p < end && is_space(*p)) {
        p++;
    }
    if (p < end && (*p == '+' || *p == '-')) {
        *negative = (*p == '-');
        p++;
    }
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) {
            *overflow = true;
        }
        v = v * 10 + d;
        any = true;
    }
    if (!any) {
        return false;
    }
    if (p < end && !is_space(*p)) {
        return false;
    }
    *magnitude = v;
    return true;
}

static bool has_minus(const struct token *t)
{
    return memchr(t->value, '-', t->length) != NULL;
}

/* memcached's safe_strtoull. */
static bool safe_strtoull(const struct token *t, uint64_t *out)
{
    uint64_t mag;
    bool neg;
    bool overflow;

    if (t->value == NULL || !parse_digits(t, &mag, &neg, &overflow) || overflow) {
        return false;
    }
    uint64_t v = neg ? (uint64_t)0 - mag : mag;
    if ((int64_t)v < 0 && has_minus(t)) {
        return false;
    }
    *out = v;
    return true;
}

/* memcached's safe_strtoul: strtoul on a 64-bit long, then stored into 32 bits. */
static bool safe_strtoul(const struct token *t, uint32_t *out)
{
    uint64_t v;

    if (!safe_strtoull(t, &v)) {
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

/* memcached's safe_strtol: strtol on a 64-bit long, then stored into an int32_t. */
static bool safe_strtol(const struct token *t, int32_t *out)
{
    uint64_t mag;
    bool neg;
    bool overflow;

    if (t->value == NULL || !parse_digits(t, &mag, &neg, &overflow) || overflow) {
        return false;
    }
    if (!neg && mag > (uint64_t)INT64_MAX) {
        return false;
    }
    if (neg && mag > (uint64_t)INT64_MAX + 1) {
        return false;
    }
    int64_t v = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    *out = (int32_t)(uint32_t)(uint64_t)v;
    return true;
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

static bool key_ok(const struct token *t)
{
    return t->length <= PROTO_KEY_MAX && !key_has_control(t->value, t->length);
}

static bool starts_with(const char *buf, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(buf, prefix, n) == 0;
}

static void set_error(struct proto_result *res, const struct proto_request *req, const char *msg)
{
    res->status = PROTO_ERROR;
    res->error = req->noreply ? NULL : msg;
}

/* ERROR for a wrong token count: sent before noreply is looked at, as memcached does. */
static void set_plain_error(struct proto_result *res)
{
    res->status = PROTO_ERROR;
    res->error = "ERROR";
}

static void set_noreply_maybe(struct proto_request *req, const struct token *tokens,
                              size_t ntokens)
{
    req->noreply = tok_eq(&tokens[ntokens - 2], "noreply");
}

static const char BAD_FORMAT[] = "CLIENT_ERROR bad command line format";

static void parse_update(const char *buf, size_t len, size_t line_total,
                         const struct token *tokens, size_t ntokens, bool handle_cas,
                         const struct proto_limits *lim, struct proto_request *req,
                         struct proto_result *res)
{
    uint32_t flags;
    int32_t exptime;
    int32_t vlen;

    set_noreply_maybe(req, tokens, ntokens);
    if (!key_ok(&tokens[1])) {
        set_error(res, req, BAD_FORMAT);
        return;
    }
    req->key = tokens[1].value;
    req->nkey = tokens[1].length;
    if (!(safe_strtoul(&tokens[2], &flags) && safe_strtol(&tokens[3], &exptime) &&
          safe_strtol(&tokens[4], &vlen))) {
        set_error(res, req, BAD_FORMAT);
        return;
    }
    if (handle_cas && !safe_strtoull(&tokens[5], &req->cas)) {
        set_error(res, req, BAD_FORMAT);
        return;
    }
    if (vlen < 0 || vlen > INT_MAX - 2) {
        set_error(res, req, BAD_FORMAT);
        return;
    }
    req->flags = flags;
    req->exptime = exptime;

    size_t total = (size_t)ITEM_HEADER_BYTES + req->nkey + 1 + (flags != 0 ? 4 : 0) +
                   (size_t)vlen + 2 + ITEM_CAS_BYTES;
    if (total > lim->item_max) {
        set_error(res, req, "SERVER_ERROR object too large for cache");
        res->swallow = (size_t)vlen + 2;
        res->unlink_key = (req->cmd == PROTO_CMD_SET);
        return;
    }

    size_t need = line_total + (size_t)vlen + 2;
    if (len < need) {
        res->status = PROTO_NEED_MORE;
        res->need = need;
        res->consumed = 0;
        return;
    }
    res->consumed = need;
    if (buf[need - 2] != '\r' || buf[need - 1] != '\n') {
        set_error(res, req, "CLIENT_ERROR bad data chunk");
        return;
    }
    req->data = buf + line_total;
    req->ndata = (size_t)vlen;
    res->status = PROTO_REQUEST;
}

static void parse_get(const struct token *tokens, size_t ntokens, const char *line,
                      size_t line_len, struct proto_request *req, struct proto_result *res)
{
    size_t first = 1;

    if (req->cmd == PROTO_CMD_GAT || req->cmd == PROTO_CMD_GATS) {
        int32_t exptime;
        if (!safe_strtol(&tokens[1], &exptime)) {
            set_error(res, req, "CLIENT_ERROR invalid exptime argument");
            return;
        }
        req->exptime = exptime;
        first = 2;
    }
    (void)ntokens;
    if (tokens[first].value != NULL) {
        req->keys = tokens[first].value;
        req->nkeys = line_len - (size_t)(tokens[first].value - line);
    } else {
        req->keys = line + line_len;
        req->nkeys = 0;
    }
    res->status = PROTO_REQUEST;
}

static void parse_arithmetic(const struct token *tokens, size_t ntokens,
                             struct proto_request *req, struct proto_result *res)
{
    set_noreply_maybe(req, tokens, ntokens);
    if (!key_ok(&tokens[1])) {
        set_error(res, req, BAD_FORMAT);
        return;
    }
    req->key = tokens[1].value;
    req->nkey = tokens[1].length;
    if (!safe_strtoull(&tokens[2], &req->delta)) {
        set_error(res, req, "CLIENT_ERROR invalid numeric delta argument");
        return;
    }
    res->status = PROTO_REQUEST;
}

static void parse_delete(const struct token *tokens, size_t ntokens, struct proto_request *req,
                         struct proto_result *res)
{
    if (ntokens > 3) {
        bool hold_is_zero = tok_eq(&tokens[2], "0");
        set_noreply_maybe(req, tokens, ntokens);
        bool valid = (ntokens == 4 && (hold_is_zero || req->noreply)) ||
                     (ntokens == 5 && hold_is_zero && req->noreply);
        if (!valid) {
            set_error(res, req,
                      "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]");
            return;
        }
    }
    if (!key_ok(&tokens[1])) {
        set_error(res, req, BAD_FORMAT);
        return;
    }
    req->key = tokens[1].value;
    req->nkey = tokens[1].length;
    res->status = PROTO_REQUEST;
}

static void parse_touch(const struct token *tokens, size_t ntokens, struct proto_request *req,
                        struct proto_result *res)
{
    int32_t exptime;

    set_noreply_maybe(req, tokens, ntokens);
    if (!key_ok(&tokens[1])) {
        set_error(res, req, BAD_FORMAT);
        return;
    }
    req->key = tokens[1].value;
    req->nkey = tokens[1].length;
    if (!safe_strtol(&tokens[2], &exptime)) {
        set_error(res, req, "CLIENT_ERROR invalid exptime argument");
        return;
    }
    req->exptime = exptime;
    res->status = PROTO_REQUEST;
}

static void parse_flush_all(const struct token *tokens, size_t ntokens,
                            struct proto_request *req, struct proto_result *res)
{
    set_noreply_maybe(req, tokens, ntokens);
    if (ntokens != (req->noreply ? 3u : 2u)) {
        int32_t delay;
        if (!safe_strtol(&tokens[1], &delay)) {
            set_error(res, req, "CLIENT_ERROR invalid exptime argument");
            return;
        }
        req->delay = delay;
    }
    res->status = PROTO_REQUEST;
}

static void parse_verbosity(const struct token *tokens, size_t ntokens,
                            struct proto_request *req, struct proto_result *res)
{
    set_noreply_maybe(req, tokens, ntokens);
    if (!safe_strtoul(&tokens[1], &req->verbosity)) {
        set_error(res, req, BAD_FORMAT);
        return;
    }
    res->status = PROTO_REQUEST;
}

/* MemcacheDB's rget <start> <end> <left_open> <right_open> <max>. */
static void parse_rget(const struct token *tokens, size_t ntokens, struct proto_request *req,
                       struct proto_result *res)
{
    uint32_t lo;
    uint32_t ro;

    if (ntokens != 7) {
        set_plain_error(res);
        return;
    }
    if (!key_ok(&tokens[1]) || !key_ok(&tokens[2]) || !safe_strtoul(&tokens[3], &lo) ||
        !safe_strtoul(&tokens[4], &ro) || !safe_strtoul(&tokens[5], &req->max) || lo > 1 ||
        ro > 1) {
        set_error(res, req, BAD_FORMAT);
        return;
    }
    req->key = tokens[1].value;
    req->nkey = tokens[1].length;
    req->key2 = tokens[2].value;
    req->nkey2 = tokens[2].length;
    req->left_open = lo == 1;
    req->right_open = ro == 1;
    res->status = PROTO_REQUEST;
}

static bool b64_digit(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

/*
 * iterate's cursor: canonical base64 (RFC 4648, '=' padding, unused bits zero) of a key of
 * 1..PROTO_KEY_MAX bytes, decoded into out. memcached's lenient decoder would accept junk as a
 * cursor and restart the walk somewhere else: a client's typo must be an error instead.
 */
static bool decode_cursor(const struct token *t, char *out, size_t *nout)
{
    size_t n = t->length;
    unsigned char raw[PROTO_ITERATE_B64_MAX];
    char again[PROTO_ITERATE_B64_MAX];

    if (n == 0 || n % 4 != 0 || n > PROTO_ITERATE_B64_MAX) {
        return false;
    }
    size_t pad = t->value[n - 1] == '=' ? (t->value[n - 2] == '=' ? 2 : 1) : 0;
    for (size_t i = 0; i < n - pad; i++) {
        if (!b64_digit(t->value[i])) {
            return false;
        }
    }
    size_t got = proto_base64_decode(t->value, n, raw);
    if (got == 0 || got > PROTO_KEY_MAX || proto_base64_encode(raw, got, again) != n ||
        memcmp(again, t->value, n) != 0) {
        return false;
    }
    memcpy(out, raw, got);
    *nout = got;
    return true;
}

/* Our extension: iterate <cursor> <count> [v] (doc/protocol.md). */
static void parse_iterate(const struct token *tokens, size_t ntokens, struct proto_request *req,
                          struct proto_result *res)
{
    uint64_t count;

    if (ntokens != 4 && ntokens != 5) {
        set_plain_error(res);
        return;
    }
    size_t nkey = 0;
    if (!tok_eq(&tokens[1], "0") && !decode_cursor(&tokens[1], req->iter.key_buf, &nkey)) {
        set_error(res, req, "CLIENT_ERROR bad cursor");
        return;
    }
    if (!safe_strtoull(&tokens[2], &count) || count == 0) {
        set_error(res, req, "CLIENT_ERROR bad count");
        return;
    }
    if (ntokens == 5 && !tok_eq(&tokens[3], "v")) {
        set_error(res, req, BAD_FORMAT);
        return;
    }
    req->key = req->iter.key_buf;
    req->nkey = nkey;
    req->max = count > PROTO_ITERATE_MAX ? PROTO_ITERATE_MAX : (uint32_t)count;
    req->iter.values = ntokens == 5;
    res->status = PROTO_REQUEST;
}

static bool want_tokens_or(size_t ntokens, size_t a, size_t b, struct proto_result *res)
{
    if (ntokens != a && ntokens != b) {
        set_plain_error(res);
        return false;
    }
    return true;
}

static void dispatch(const char *buf, size_t len, const char *line, size_t line_len,
                     size_t line_total, const struct proto_limits *lim,
                     struct proto_request *req, struct proto_result *res)
{
    struct token tokens[MAX_TOKENS + 1];
    size_t ntokens = tokenize(line, line_len, tokens);
    const struct token *cmd = &tokens[0];

    res->consumed = line_total;
    if (ntokens < 2 || cmd->length < 2) {
        set_plain_error(res);
        return;
    }

    char first = cmd->value[0];
    if (first == 'm' && cmd->length == 2) {
        if (strchr("gsdnae", cmd->value[1]) != NULL) {
            proto_meta_parse(buf, len, line_len, line_total, lim, req, res);
        } else {
            set_plain_error(res);
        }
    } else if (first == 'g') {
        if (ntokens < 3) {
            set_plain_error(res);
        } else if (tok_eq(cmd, "get")) {
            req->cmd = PROTO_CMD_GET;
        } else if (tok_eq(cmd, "gets")) {
            req->cmd = PROTO_CMD_GETS;
        } else if (tok_eq(cmd, "gat")) {
            req->cmd = PROTO_CMD_GAT;
        } else if (tok_eq(cmd, "gats")) {
            req->cmd = PROTO_CMD_GATS;
        } else {
            set_plain_error(res);
        }
        if (req->cmd != PROTO_CMD_NONE) {
            parse_get(tokens, ntokens, line, line_len, req, res);
        }
    } else if (tok_eq(cmd, "set") || tok_eq(cmd, "add") || tok_eq(cmd, "append") ||
               tok_eq(cmd, "replace") || tok_eq(cmd, "prepend")) {
        req->cmd = cmd->value[0] == 's'   ? PROTO_CMD_SET
                   : cmd->value[0] == 'r' ? PROTO_CMD_REPLACE
                   : cmd->value[0] == 'p' ? PROTO_CMD_PREPEND
                   : cmd->length == 3     ? PROTO_CMD_ADD
                                          : PROTO_CMD_APPEND;
        if (want_tokens_or(ntokens, 6, 7, res)) {
            parse_update(buf, len, line_total, tokens, ntokens, false, lim, req, res);
        }
    } else if (tok_eq(cmd, "cas")) {
        req->cmd = PROTO_CMD_CAS;
        if (want_tokens_or(ntokens, 7, 8, res)) {
            parse_update(buf, len, line_total, tokens, ntokens, true, lim, req, res);
        }
    } else if (tok_eq(cmd, "incr") || tok_eq(cmd, "decr")) {
        req->cmd = cmd->value[0] == 'i' ? PROTO_CMD_INCR : PROTO_CMD_DECR;
        if (want_tokens_or(ntokens, 4, 5, res)) {
            parse_arithmetic(tokens, ntokens, req, res);
        }
    } else if (tok_eq(cmd, "delete")) {
        req->cmd = PROTO_CMD_DELETE;
        if (ntokens < 3 || ntokens > 5) {
            set_plain_error(res);
        } else {
            parse_delete(tokens, ntokens, req, res);
        }
    } else if (tok_eq(cmd, "touch")) {
        req->cmd = PROTO_CMD_TOUCH;
        if (want_tokens_or(ntokens, 4, 5, res)) {
            parse_touch(tokens, ntokens, req, res);
        }
    } else if (tok_eq(cmd, "stats")) {
        req->cmd = PROTO_CMD_STATS;
        if (ntokens > 2) {
            req->arg = tokens[1].value;
            req->narg = line_len - (size_t)(tokens[1].value - line);
        } else {
            req->arg = line + line_len;
            req->narg = 0;
        }
        res->status = PROTO_REQUEST;
    } else if (tok_eq(cmd, "bget")) {
        req->cmd = PROTO_CMD_GET;
        if (ntokens < 3) {
            set_plain_error(res);
        } else {
            parse_get(tokens, ntokens, line, line_len, req, res);
        }
    } else if (tok_eq(cmd, "flush_all")) {
        req->cmd = PROTO_CMD_FLUSH_ALL;
        if (ntokens < 2 || ntokens > 4) {
            set_plain_error(res);
        } else {
            parse_flush_all(tokens, ntokens, req, res);
        }
    } else if (tok_eq(cmd, "version")) {
        req->cmd = PROTO_CMD_VERSION;
        res->status = PROTO_REQUEST;
    } else if (tok_eq(cmd, "quit")) {
        req->cmd = PROTO_CMD_QUIT;
        res->status = PROTO_REQUEST;
    } else if (tok_eq(cmd, "verbosity")) {
        req->cmd = PROTO_CMD_VERBOSITY;
        if (want_tokens_or(ntokens, 3, 4, res)) {
            parse_verbosity(tokens, ntokens, req, res);
        }
    } else if (tok_eq(cmd, "rget")) {
        req->cmd = PROTO_CMD_RGET;
        parse_rget(tokens, ntokens, req, res);
    } else if (tok_eq(cmd, "iterate")) {
        req->cmd = PROTO_CMD_ITERATE;
        parse_iterate(tokens, ntokens, req, res);
    } else if (tok_eq(cmd, "db_checkpoint") || tok_eq(cmd, "db_archive")) {
        req->cmd = cmd->length == 13 ? PROTO_CMD_DB_CHECKPOINT : PROTO_CMD_DB_ARCHIVE;
        res->status = PROTO_REQUEST;
    } else if (tok_eq(cmd, "debug_fault")) {
        req->cmd = PROTO_CMD_DEBUG_FAULT;
        req->arg = ntokens > 2 ? tokens[1].value : line + line_len;
        req->narg = ntokens > 2 ? line_len - (size_t)(tokens[1].value - line) : 0;
        res->status = PROTO_REQUEST;
    } else if (tok_eq(cmd, "rep_ismaster") || tok_eq(cmd, "rep_whoismaster")) {
        req->cmd = cmd->length == 12 ? PROTO_CMD_REP_ISMASTER : PROTO_CMD_REP_WHOISMASTER;
        res->status = PROTO_REQUEST;
    } else if (tok_eq(cmd, "rep_set_priority")) {
        req->cmd = PROTO_CMD_REP_SET_PRIORITY;
        req->arg = ntokens > 2 ? tokens[1].value : line + line_len;
        req->narg = ntokens > 2 ? line_len - (size_t)(tokens[1].value - line) : 0;
        res->status = PROTO_REQUEST;
    } else if (tok_eq(cmd, "shutdown")) {
        res->status = PROTO_ERROR;
        res->error = "ERROR: shutdown not enabled";
    } else if (strchr("gsacidt", first) != NULL) {
        /* memcached dispatches on the first letter; these branches end in a plain ERROR */
        set_plain_error(res);
    } else {
        const struct token *last = &tokens[ntokens - 2];
        if (last->length >= 5 && memcmp(last->value, "HTTP/", 5) == 0) {
            res->status = PROTO_CLOSE;
        } else {
            set_plain_error(res);
        }
    }
}

void proto_text_parse(const char *buf, size_t len, const struct proto_limits *lim,
                      struct proto_request *req, struct proto_result *res)
{
    memset(req, 0, sizeof(*req));
    memset(res, 0, sizeof(*res));

    const char *nl = memchr(buf, '\n', len);
    if (nl == NULL) {
        res->status = PROTO_NEED_MORE;
        if (len > PROTO_TEXT_LINE_MAX) {
            /* Only a large multiget may have a line this long; anything else is junk. */
            size_t i = 0;
            while (i < len && buf[i] == ' ') {
                i++;
            }
            if (i > 100 || len > PROTO_TEXT_GET_LINE_MAX ||
                !(starts_with(buf + i, len - i, "get ") ||
                  starts_with(buf + i, len - i, "gets "))) {
                res->status = PROTO_CLOSE;
            }
        }
        return;
    }

    size_t line_total = (size_t)(nl - buf) + 1;
    size_t line_len = (size_t)(nl - buf);
    if (line_len > 1 && buf[line_len - 1] == '\r') {
        line_len--;
    }
    /* memcached treats the line as a C string: an embedded NUL ends it. */
    const char *nul = memchr(buf, '\0', line_len);
    if (nul != NULL) {
        line_len = (size_t)(nul - buf);
    }
    dispatch(buf, len, buf, line_len, line_total, lim, req, res);
}

bool proto_text_next_key(const struct proto_request *req, size_t *pos, const char **key,
                         size_t *nkey, bool *bad)
{
    size_t i = *pos;

    *bad = false;
    while (i < req->nkeys && req->keys[i] == ' ') {
        i++;
    }
    if (i >= req->nkeys) {
        *pos = i;
        return false;
    }
    size_t start = i;
    while (i < req->nkeys && req->keys[i] != ' ') {
        i++;
    }
    *pos = i;
    *key = req->keys + start;
    *nkey = i - start;
    if (*nkey > PROTO_KEY_MAX || key_has_control(*key, *nkey)) {
        *bad = true;
        return false;
    }
    return true;
}

size_t proto_u64_to_dec(char *out, uint64_t v)
{
    char tmp[21];
    size_t n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++) {
        out[i] = tmp[n - 1 - i];
    }
    return n;
}

size_t proto_text_value_line(char *out, const char *key, size_t nkey, uint32_t flags,
                             size_t nbytes, bool with_cas, uint64_t cas)
{
    char *p = out;

    memcpy(p, "VALUE ", 6);
    p += 6;
    memcpy(p, key, nkey);
    p += nkey;
    *p++ = ' ';
    p += proto_u64_to_dec(p, flags);
    *p++ = ' ';
    p += proto_u64_to_dec(p, nbytes);
    if (with_cas) {
        *p++ = ' ';
        p += proto_u64_to_dec(p, cas);
    }
    *p++ = '\r';
    *p++ = '\n';
    return (size_t)(p - out);
}

bool proto_text_key_needs_b64(const char *key, size_t nkey)
{
    for (size_t i = 0; i < nkey; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c <= 0x20 || c == 0x7f) {
            return true;
        }
    }
    return false;
}

size_t proto_text_item_line(char *out, const char *key, size_t nkey, uint32_t flags,
                            uint32_t exptime, size_t nbytes, uint64_t cas)
{
    char *p = out;
    bool b64 = proto_text_key_needs_b64(key, nkey);

    memcpy(p, "ITEM ", 5);
    p += 5;
    if (b64) {
        p += proto_base64_encode((const unsigned char *)key, nkey, p);
    } else {
        memcpy(p, key, nkey);
        p += nkey;
    }
    *p++ = ' ';
    p += proto_u64_to_dec(p, flags);
    *p++ = ' ';
    p += proto_u64_to_dec(p, exptime);
    *p++ = ' ';
    p += proto_u64_to_dec(p, nbytes);
    *p++ = ' ';
    p += proto_u64_to_dec(p, cas);
    if (b64) {
        memcpy(p, " b", 2);
        p += 2;
    }
    *p++ = '\r';
    *p++ = '\n';
    return (size_t)(p - out);
}

size_t proto_text_iterate_cursor(char *out, const char *key, size_t nkey)
{
    return proto_base64_encode((const unsigned char *)key, nkey, out);
}

bool proto_text_apply_delta(const char *value, size_t n, bool incr, uint64_t delta,
                            char *out, size_t *ndigits, size_t *padded_len, uint64_t *result)
{
    /* memcached parses the value as a C string: a NUL ends the number */
    const char *nul = memchr(value, '\0', n);
    struct token t = {value, nul != NULL ? (size_t)(nul - value) : n};
    uint64_t v;

    if (n == 0 || !safe_strtoull(&t, &v)) {
        return false;
    }
    if (incr) {
        v += delta;
    } else {
        v = delta > v ? 0 : v - delta;
    }
    *result = v;
    *ndigits = proto_u64_to_dec(out, v);
    *padded_len = *ndigits <= n ? n : *ndigits;
    return true;
}

bool proto_text_strtoull(const char *s, size_t n, uint64_t *out)
{
    struct token t = {s, n};
    return safe_strtoull(&t, out);
}

bool proto_text_strtoul(const char *s, size_t n, uint32_t *out)
{
    struct token t = {s, n};
    return safe_strtoul(&t, out);
}

bool proto_text_strtol(const char *s, size_t n, int32_t *out)
{
    struct token t = {s, n};
    return safe_strtol(&t, out);
}
