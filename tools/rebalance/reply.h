/* mcstore-rebalance: parsing the server's reply lines (iterate, meta, stats, replication). */
#ifndef MCSTORE_TOOLS_REBALANCE_REPLY_H
#define MCSTORE_TOOLS_REBALANCE_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/request.h"
#include "protocol/text.h"

/* The largest value a server can hold (its -I is at most 1g, as memcached's): a reply that
 * announces more is refused before anything is allocated for it. */
#define RB_VALUE_MAX ((size_t)1024 * 1024 * 1024)

/*
 * Every function here is pure: it reads line[0..n) (one reply line without its "\r\n") and
 * fills its output; nothing is allocated and no state is kept. Thread-safe.
 */

/* What one line of an iterate reply is. */
enum rb_iter_line {
    RB_ITER_ITEM,       /* ITEM ...: its data block follows when the call asked for values */
    RB_ITER_END,        /* END <next-cursor> */
    RB_ITER_ERROR,      /* SERVER_ERROR / CLIENT_ERROR / ERROR: the whole reply */
    RB_ITER_BAD,        /* anything else: the connection is out of step */
};

/* One ITEM line, key decoded. */
struct rb_item {
    char key[PROTO_KEY_MAX];            /* the raw key bytes */
    size_t nkey;
    char token[PROTO_ITERATE_B64_MAX];  /* the key as the text protocol carries it */
    size_t ntoken;
    bool b64;                           /* token is base64 (" b"): meta commands need 'b' */
    uint32_t flags;
    uint32_t exptime;                   /* absolute, 0 = never */
    uint64_t cas;
    size_t nbytes;                      /* the value's length */
};

/*
 * Classifies one iterate reply line. RB_ITER_ITEM fills *item; RB_ITER_END copies the next
 * cursor (NUL-terminated, "0" when the walk is over) into cursor, which holds at least
 * PROTO_ITERATE_B64_MAX + 1 bytes. An ITEM or END line that does not parse is RB_ITER_BAD.
 */
enum rb_iter_line rb_parse_iter_line(const char *line, size_t n, struct rb_item *item,
                                     char *cursor);

/* A meta command's reply line. */
enum rb_meta_kind {
    RB_META_HD,         /* stored / deleted */
    RB_META_NS,         /* not stored (add of an existing key) */
    RB_META_EX,         /* cas mismatch */
    RB_META_NF,         /* not found */
    RB_META_VA,         /* mg hit with a value: vlen bytes + "\r\n" follow */
    RB_META_EN,         /* mg miss */
    RB_META_SERVER_ERROR,
    RB_META_CLIENT_ERROR,
    RB_META_ERROR,
    RB_META_BAD,        /* anything else */
};

struct rb_meta_reply {
    enum rb_meta_kind kind;
    size_t vlen;                /* VA */
    bool has_cas;               /* a c<cas> flag came back */
    uint64_t cas;
    bool has_flags;             /* an f<flags> flag came back */
    uint32_t flags;
    const char *msg;            /* SERVER_ERROR / CLIENT_ERROR: the text after the code */
    size_t nmsg;
};

/* Parses a meta reply line (flags c and f are read, others ignored). Returns out->kind. */
enum rb_meta_kind rb_parse_meta_line(const char *line, size_t n, struct rb_meta_reply *out);

/* What a SERVER_ERROR says about replication. */
enum rb_refusal {
    RB_REFUSAL_NONE,            /* some other error */
    RB_REFUSAL_MASTER_IS,       /* "not master; master is host:port": host and port set */
    RB_REFUSAL_NO_MASTER,       /* "not master; no master elected yet" / "...address not
                                   known yet" / "replication group incomplete": wait, retry */
};

/*
 * Reads a SERVER_ERROR text (msg[0..n), after "SERVER_ERROR "). For RB_REFUSAL_MASTER_IS
 * copies the host (NUL-terminated, brackets of an IPv6 address removed) into host[hostlen]
 * and sets *port; an address that does not parse or fit makes it RB_REFUSAL_NONE.
 */
enum rb_refusal rb_parse_refusal(const char *msg, size_t n, char *host, size_t hostlen,
                                 uint16_t *port);

/*
 * A "STAT <name> <value>" line: true and *value when it is the statistic name with an
 * unsigned decimal value.
 */
bool rb_parse_stat_u64(const char *line, size_t n, const char *name, uint64_t *value);

#endif
