/* memcached binary protocol parser and packet encoders, matching memcached 1.6.18's replies. */
#include "protocol/binary.h"

#include <string.h>

/* memcached's item header on 64-bit (struct _stritem) and its CAS field, for the -I check. */
#define ITEM_HEADER_BYTES 48
#define ITEM_CAS_BYTES 8

/* Extras lengths memcached requires. */
#define EXT_SET 8           /* flags, exptime */
#define EXT_DELTA 20        /* delta, initial, exptime */
#define EXT_TOUCH 4         /* exptime */
#define EXT_FLUSH 4         /* optional delay */

static uint16_t rd16(const unsigned char *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t rd32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static uint64_t rd64(const unsigned char *p)
{
    return ((uint64_t)rd32(p) << 32) | rd32(p + 4);
}

static void wr16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void wr32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

size_t proto_binary_header(unsigned char *out, uint8_t opcode, uint16_t status, uint8_t extlen,
                           uint16_t keylen, uint32_t bodylen, uint32_t opaque, uint64_t cas)
{
    out[0] = PROTO_BIN_MAGIC_RESPONSE;
    out[1] = opcode;
    wr16(out + 2, keylen);
    out[4] = extlen;
    out[5] = 0;                 /* data type: raw bytes */
    wr16(out + 6, status);
    wr32(out + 8, bodylen);
    /* the opaque goes back exactly as its four bytes came */
    wr32(out + 12, opaque);
    wr32(out + 16, (uint32_t)(cas >> 32));
    wr32(out + 20, (uint32_t)cas);
    return PROTO_BIN_HEADER;
}

const char *proto_binary_status_text(uint16_t status)
{
    switch (status) {
    case PROTO_BIN_KEY_ENOENT:
        return "Not found";
    case PROTO_BIN_KEY_EEXISTS:
        return "Data exists for key.";
    case PROTO_BIN_E2BIG:
        return "Too large.";
    case PROTO_BIN_EINVAL:
        return "Invalid arguments";
    case PROTO_BIN_NOT_STORED:
        return "Not stored.";
    case PROTO_BIN_DELTA_BADVAL:
        return "Non-numeric server-side value for incr or decr";
    case PROTO_BIN_AUTH_ERROR:
        return "Auth failure.";
    case PROTO_BIN_UNKNOWN_COMMAND:
        return "Unknown command";
    case PROTO_BIN_ENOMEM:
        return "Out of memory";
    default:
        return "";
    }
}

size_t proto_binary_error(unsigned char *out, uint8_t opcode, uint16_t status, uint32_t opaque)
{
    const char *msg = proto_binary_status_text(status);
    size_t n = strlen(msg);
    proto_binary_header(out, opcode, status, 0, 0, (uint32_t)n, opaque, 0);
    memcpy(out + PROTO_BIN_HEADER, msg, n);
    return PROTO_BIN_HEADER + n;
}

/* An error reply; 'swallow' more bytes are discarded after 'consumed'. */
static void set_error(const struct proto_request *req, struct proto_result *res,
                      uint16_t status, size_t consumed, size_t swallow)
{
    res->status = PROTO_ERROR;
    res->consumed = consumed;
    res->swallow = swallow;
    /* only a value over -I counts in store_too_large */
    res->swallow_uncounted = swallow > 0 && status != PROTO_BIN_E2BIG;
    res->npacket = proto_binary_error(res->packet, req->bin.opcode, status, req->bin.opaque);
}

/* memcached's reply to a malformed request: the error, then the connection closes. */
static void set_fatal(const struct proto_request *req, struct proto_result *res,
                      uint16_t status, size_t consumed)
{
    set_error(req, res, status, consumed, 0);
    res->close = true;
}

/* memcached's item_size_ok(): would an item of this key, flags and value fit in -I? */
static bool item_fits(const struct proto_limits *lim, size_t nkey, uint32_t flags, size_t vlen)
{
    size_t total = (size_t)ITEM_HEADER_BYTES + nkey + 1 + (flags != 0 ? 4 : 0) + vlen + 2 +
                   ITEM_CAS_BYTES;
    return total <= lim->item_max;
}

/* The value of a request that carries one: the whole packet must be buffered. */
static void take_value(const char *buf, size_t len, size_t head, size_t vlen,
                       struct proto_request *req, struct proto_result *res)
{
    size_t total = head + vlen;
    if (len < total) {
        res->status = PROTO_NEED_MORE;
        res->need = total;
        res->consumed = 0;
        return;
    }
    req->data = buf + head;
    req->ndata = vlen;
    res->consumed = total;
    res->status = PROTO_REQUEST;
}

/* The quiet opcodes and the command they are a quiet form of. */
static uint8_t loud_opcode(uint8_t op)
{
    switch (op) {
    case PROTO_BIN_GETQ:
        return PROTO_BIN_GET;
    case PROTO_BIN_GETKQ:
        return PROTO_BIN_GETK;
    case PROTO_BIN_SETQ:
        return PROTO_BIN_SET;
    case PROTO_BIN_ADDQ:
        return PROTO_BIN_ADD;
    case PROTO_BIN_REPLACEQ:
        return PROTO_BIN_REPLACE;
    case PROTO_BIN_DELETEQ:
        return PROTO_BIN_DELETE;
    case PROTO_BIN_INCREMENTQ:
        return PROTO_BIN_INCREMENT;
    case PROTO_BIN_DECREMENTQ:
        return PROTO_BIN_DECREMENT;
    case PROTO_BIN_QUITQ:
        return PROTO_BIN_QUIT;
    case PROTO_BIN_FLUSHQ:
        return PROTO_BIN_FLUSH;
    case PROTO_BIN_APPENDQ:
        return PROTO_BIN_APPEND;
    case PROTO_BIN_PREPENDQ:
        return PROTO_BIN_PREPEND;
    case PROTO_BIN_GATQ:
        return PROTO_BIN_GAT;
    case PROTO_BIN_GATKQ:
        return PROTO_BIN_GATK;
    default:
        return op;
    }
}

/* What an unauthenticated connection may send when SASL is on. */
static bool allowed_unauthenticated(uint8_t op)
{
    return op == PROTO_BIN_SASL_LIST_MECHS || op == PROTO_BIN_SASL_AUTH ||
           op == PROTO_BIN_SASL_STEP || op == PROTO_BIN_VERSION;
}

void proto_binary_parse(const char *buf, size_t len, const struct proto_limits *lim,
                        struct proto_request *req, struct proto_result *res)
{
    const unsigned char *h = (const unsigned char *)buf;

    memset(req, 0, sizeof(*req));
    memset(res, 0, sizeof(*res));

    if (len < PROTO_BIN_HEADER) {
        res->status = PROTO_NEED_MORE;
        res->need = PROTO_BIN_HEADER;
        return;
    }
    if (h[0] != PROTO_BIN_MAGIC_REQUEST) {
        res->status = PROTO_CLOSE;
        return;
    }
    uint8_t op = h[1];
    size_t keylen = rd16(h + 2);
    size_t extlen = h[4];
    size_t bodylen = rd32(h + 8);
    size_t head = PROTO_BIN_HEADER + extlen + keylen;

    if (head > PROTO_BIN_HEAD_MAX) {
        res->status = PROTO_CLOSE;
        return;
    }
    if (len < head) {
        res->status = PROTO_NEED_MORE;
        res->need = head;
        return;
    }

    req->bin.opcode = op;
    /* kept in wire order: rd32 then wr32 gives the same four bytes back */
    req->bin.opaque = rd32(h + 12);
    req->cas = rd64(h + 16);

    if (keylen + extlen > bodylen) {
        set_fatal(req, res, PROTO_BIN_UNKNOWN_COMMAND, head);
        return;
    }
    if (lim->auth && !lim->authenticated && !allowed_unauthenticated(op)) {
        set_fatal(req, res, PROTO_BIN_AUTH_ERROR, head);
        return;
    }
    if (keylen > PROTO_KEY_MAX) {
        set_fatal(req, res, PROTO_BIN_EINVAL, head);
        return;
    }

    const unsigned char *ext = h + PROTO_BIN_HEADER;
    uint8_t loud = loud_opcode(op);
    req->noreply = (loud != op);
    req->key = buf + PROTO_BIN_HEADER + extlen;
    req->nkey = keylen;
    res->consumed = head;
    res->status = PROTO_REQUEST;

    bool ok = false;
    switch (loud) {
    case PROTO_BIN_VERSION:
    case PROTO_BIN_NOOP:
    case PROTO_BIN_QUIT:
        ok = extlen == 0 && keylen == 0 && bodylen == 0;
        req->cmd = loud == PROTO_BIN_VERSION ? PROTO_CMD_VERSION
                 : loud == PROTO_BIN_NOOP    ? PROTO_CMD_NOOP
                                             : PROTO_CMD_QUIT;
        break;
    case PROTO_BIN_FLUSH:
        ok = keylen == 0 && bodylen == extlen && (extlen == 0 || extlen == EXT_FLUSH);
        req->cmd = PROTO_CMD_FLUSH_ALL;
        if (ok && extlen == EXT_FLUSH) {
            req->delay = rd32(ext);
        }
        break;
    case PROTO_BIN_SET:
    case PROTO_BIN_ADD:
    case PROTO_BIN_REPLACE: {
        ok = extlen == EXT_SET && keylen != 0 && bodylen >= keylen + EXT_SET;
        if (!ok) {
            break;
        }
        size_t vlen = bodylen - keylen - extlen;
        req->flags = rd32(ext);
        req->exptime = rd32(ext + 4);
        if (!item_fits(lim, keylen, req->flags, vlen)) {
            set_error(req, res, PROTO_BIN_E2BIG, head, vlen);
            /* memcached drops the old value of a set it cannot store (setq too) */
            res->unlink_key = (loud == PROTO_BIN_SET);
            return;
        }
        /* memcached turns any of the three into a CAS when the request carries a cas */
        req->cmd = req->cas != 0          ? PROTO_CMD_CAS
                 : loud == PROTO_BIN_SET ? PROTO_CMD_SET
                 : loud == PROTO_BIN_ADD ? PROTO_CMD_ADD
                                         : PROTO_CMD_REPLACE;
        take_value(buf, len, head, vlen, req, res);
        return;
    }
    case PROTO_BIN_APPEND:
    case PROTO_BIN_PREPEND: {
        ok = keylen != 0 && extlen == 0;
        if (!ok) {
            break;
        }
        size_t vlen = bodylen - keylen;
        if (!item_fits(lim, keylen, 0, vlen)) {
            set_error(req, res, PROTO_BIN_E2BIG, head, vlen);
            return;
        }
        req->cmd = loud == PROTO_BIN_APPEND ? PROTO_CMD_APPEND : PROTO_CMD_PREPEND;
        take_value(buf, len, head, vlen, req, res);
        return;
    }
    case PROTO_BIN_GET:
    case PROTO_BIN_GETK:
        ok = extlen == 0 && bodylen == keylen && keylen != 0;
        req->cmd = PROTO_CMD_GET;
        req->bin.value = true;
        req->bin.with_key = (loud == PROTO_BIN_GETK);
        break;
    case PROTO_BIN_TOUCH:
    case PROTO_BIN_GAT:
    case PROTO_BIN_GATK:
        /* bytes past the key are not consumed: memcached reads them as the next request */
        ok = extlen == EXT_TOUCH && keylen != 0;
        req->cmd = loud == PROTO_BIN_TOUCH ? PROTO_CMD_TOUCH : PROTO_CMD_GAT;
        req->bin.value = (loud != PROTO_BIN_TOUCH);
        req->bin.with_key = (loud == PROTO_BIN_GATK);
        if (ok) {
            req->exptime = rd32(ext);
        }
        break;
    case PROTO_BIN_DELETE:
        ok = keylen != 0 && extlen == 0 && bodylen == keylen;
        req->cmd = PROTO_CMD_DELETE;
        break;
    case PROTO_BIN_INCREMENT:
    case PROTO_BIN_DECREMENT:
        ok = keylen != 0 && extlen == EXT_DELTA && bodylen == keylen + extlen;
        req->cmd = loud == PROTO_BIN_INCREMENT ? PROTO_CMD_INCR : PROTO_CMD_DECR;
        if (ok) {
            req->delta = rd64(ext);
            req->bin.initial = rd64(ext + 8);
            req->bin.create_exptime = rd32(ext + 16);
        }
        break;
    case PROTO_BIN_STAT:
        ok = extlen == 0;
        req->cmd = PROTO_CMD_STATS;
        req->arg = req->key;
        req->narg = keylen;
        break;
    case PROTO_BIN_SASL_LIST_MECHS:
        ok = extlen == 0 && keylen == 0 && bodylen == 0;
        if (ok && !lim->auth) {
            set_error(req, res, PROTO_BIN_UNKNOWN_COMMAND, head, 0);
            return;
        }
        req->cmd = PROTO_CMD_SASL_LIST;
        break;
    case PROTO_BIN_SASL_AUTH:
    case PROTO_BIN_SASL_STEP: {
        ok = extlen == 0 && keylen != 0;
        if (!ok) {
            break;
        }
        size_t vlen = bodylen - keylen;
        if (!lim->auth) {
            set_error(req, res, PROTO_BIN_UNKNOWN_COMMAND, head, vlen);
            return;
        }
        if (keylen > PROTO_BIN_SASL_MECH_MAX) {
            set_error(req, res, PROTO_BIN_EINVAL, head, vlen);
            return;
        }
        if (!item_fits(lim, keylen, 0, vlen)) {
            /* memcached holds the response in an item and says so when it cannot */
            set_error(req, res, PROTO_BIN_ENOMEM, head, vlen);
            return;
        }
        req->cmd = loud == PROTO_BIN_SASL_AUTH ? PROTO_CMD_SASL_AUTH : PROTO_CMD_SASL_STEP;
        take_value(buf, len, head, vlen, req, res);
        return;
    }
    default:
        /* memcached swallows bodylen bytes after the key: extras and key count twice */
        set_error(req, res, PROTO_BIN_UNKNOWN_COMMAND, head, bodylen);
        return;
    }
    if (!ok) {
        set_fatal(req, res, PROTO_BIN_EINVAL, head);
    }
}
