/* The protocol-neutral request model shared by every parser and by the executor. */
#ifndef MCSTORE_PROTOCOL_REQUEST_H
#define MCSTORE_PROTOCOL_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* memcached's limit on key length, in bytes. */
#define PROTO_KEY_MAX 250

/* Relative exptimes are at most this many seconds (30 days); larger values are unix times. */
#define PROTO_REALTIME_MAXDELTA (60 * 60 * 24 * 30)

enum proto_cmd {
    PROTO_CMD_NONE = 0,
    PROTO_CMD_GET,
    PROTO_CMD_GETS,
    PROTO_CMD_GAT,
    PROTO_CMD_GATS,
    PROTO_CMD_SET,
    PROTO_CMD_ADD,
    PROTO_CMD_REPLACE,
    PROTO_CMD_APPEND,
    PROTO_CMD_PREPEND,
    PROTO_CMD_CAS,
    PROTO_CMD_INCR,
    PROTO_CMD_DECR,
    PROTO_CMD_DELETE,
    PROTO_CMD_TOUCH,
    PROTO_CMD_FLUSH_ALL,
    PROTO_CMD_VERSION,
    PROTO_CMD_VERBOSITY,
    PROTO_CMD_QUIT,
    PROTO_CMD_STATS,
    PROTO_CMD_RGET,
    PROTO_CMD_ITERATE,          /* iterate <cursor> <count> [v]: key = the cursor's key */
    PROTO_CMD_DB_CHECKPOINT,    /* MemcacheDB: checkpoint now */
    PROTO_CMD_DB_ARCHIVE,       /* MemcacheDB: archive/remove logs recovery no longer needs */
    PROTO_CMD_DEBUG_FAULT,      /* test builds: arm fault injection (arg = rest of line) */
    PROTO_CMD_META_GET,         /* mg (protocol/meta.h): the fields are in req->meta */
    PROTO_CMD_META_SET,         /* ms */
    PROTO_CMD_META_DELETE,      /* md */
    PROTO_CMD_META_ARITH,       /* ma */
    PROTO_CMD_META_NOOP,        /* mn */
    PROTO_CMD_META_DEBUG,       /* me */
    PROTO_CMD_REP_ISMASTER,     /* MemcacheDB: is this member the replication master */
    PROTO_CMD_REP_WHOISMASTER,  /* MemcacheDB: the master's address */
    PROTO_CMD_REP_SET_PRIORITY, /* MemcacheDB: election priority (arg = the number) */
    PROTO_CMD_NOOP,             /* binary: no operation, answered in order */
    PROTO_CMD_SASL_LIST,        /* binary: SASL mechanisms */
    PROTO_CMD_SASL_AUTH,        /* binary: SASL start (key = mechanism, data = response) */
    PROTO_CMD_SASL_STEP,        /* binary: SASL continuation (data = response) */
};

/* Room for a base64-decoded meta key: 250 encoded bytes decode to at most 187. */
#define PROTO_META_KEY_BUF 192

/*
 * One parsed request. Every pointer points into the caller's input buffer and is valid only
 * until that buffer is consumed; nothing here is allocated.
 */
struct proto_request {
    enum proto_cmd cmd;
    bool noreply;               /* the client asked for no reply on success */

    const char *key;            /* single-key commands; rget's start key */
    size_t nkey;

    /* get/gets/gat/gats: the rest of the line holding the keys, separated by spaces.
     * Walk it with proto_text_next_key(). */
    const char *keys;
    size_t nkeys;

    uint32_t flags;             /* storage commands: client flags, opaque 32 bits */
    int64_t exptime;            /* as sent: 0 never, <= 30 days relative, else unix time,
                                   negative = already expired. gat/touch too. */
    uint64_t cas;               /* cas: the unique value the client read */
    uint64_t delta;             /* incr/decr */
    const char *data;           /* storage commands: the value, without its "\r\n" */
    size_t ndata;

    int64_t delay;              /* flush_all: seconds before the flush takes effect (0 = now) */
    uint32_t verbosity;         /* verbosity level */

    const char *arg;            /* stats, debug_fault, rep_set_priority: the line after the
                                   command (may be empty) */
    size_t narg;

    const char *key2;           /* rget: end key */
    size_t nkey2;
    bool left_open;             /* rget: exclude the start key */
    bool right_open;            /* rget: exclude the end key */
    uint32_t max;               /* rget: most items to return; iterate: count (capped) */

    /* iterate: the cursor's key is decoded into key_buf (key/nkey point there; nkey 0 starts
     * at the first key), so a copy of this struct must not outlive the original. */
    struct {
        bool values;            /* 'v': the reply carries the values */
        char key_buf[PROTO_KEY_MAX];
    } iter;

    /* Binary protocol only (protocol/binary.h). Quiet opcodes set noreply; set/add/replace
     * with a non-zero cas are PROTO_CMD_CAS, as memcached turns them into a CAS. */
    struct {
        uint8_t opcode;         /* as sent: every reply carries it back */
        uint32_t opaque;        /* echoed in every reply */
        bool with_key;          /* getk/getkq/gatk/gatkq: replies carry the key */
        bool value;             /* get/gat families: the reply carries the value (not touch) */
        uint64_t initial;       /* incr/decr: value stored on a miss */
        uint32_t create_exptime;/* incr/decr: 0xffffffff = a miss is not created */
    } bin;
    /* Meta commands (protocol/meta.h). key/nkey hold the key, decoded when it came in
     * base64 ('b'): then it points into key_buf, so a copy of this struct must not outlive
     * the original. data/ndata hold ms's value. */
    struct {
        const char *flags;      /* the flag tokens as sent, for the reply's walk over them */
        size_t nflags;
        uint64_t seen;          /* proto_meta_bit(letter) of every flag letter present */
        char mode;              /* M<mode>, 0 when absent */
        int64_t ttl;            /* T, as sent (exptime rules of the text protocol) */
        int64_t vivify_ttl;     /* N */
        int64_t recache_ttl;    /* R */
        uint32_t client_flags;  /* F */
        uint64_t cas;           /* C (has_cas: C was sent, C0 included) */
        bool has_cas;
        uint64_t delta;         /* D; 1 when absent */
        uint64_t initial;       /* J */
        bool key_binary;        /* b: the key was base64 */
        /* mg/ma: the reply is this error once the command has run (memcached checks the
         * opaque's length while it writes the reply); flags from the bad 'O' on are ignored */
        const char *late_error;
        char key_buf[PROTO_META_KEY_BUF];
    } meta;
};

/* Room for an error packet the binary parser builds (header + a short message). */
#define PROTO_PACKET_MAX 128

enum proto_status {
    PROTO_NEED_MORE,    /* not a whole request yet; read more and call again with all bytes */
    PROTO_REQUEST,      /* req is filled in; drop 'consumed' bytes after executing it, then
                           discard 'swallow' more bytes as they arrive (usually 0) */
    PROTO_ERROR,        /* reply 'error' (unless NULL: suppressed by noreply), drop 'consumed'
                           bytes, then discard 'swallow' more bytes as they arrive */
    PROTO_CLOSE,        /* the connection must be closed without a reply (memcached does) */
};

struct proto_limits {
    size_t item_max;        /* -I: largest item in bytes, memcached's accounting */
    bool auth;              /* binary: SASL is on (--auth-file) */
    bool authenticated;     /* binary: this connection has authenticated */
};

struct proto_result {
    enum proto_status status;
    size_t consumed;        /* input bytes this result covers (line, and data block if any) */
    size_t swallow;         /* PROTO_ERROR: further bytes to discard (a rejected data block) */
    size_t need;            /* PROTO_NEED_MORE: total bytes needed when known (data block), or 0 */
    const char *error;      /* PROTO_ERROR: the reply line without "\r\n"; NULL = no reply */
    bool unlink_key;        /* PROTO_ERROR on a too-large set: memcached also deletes the key
                               (req->key/nkey are set) so no stale value survives */
    bool close;             /* PROTO_ERROR: close once the reply is written (memcached's
                               close_after_write for a malformed binary request) */
    bool swallow_uncounted; /* PROTO_ERROR: the swallowed block was refused for another reason
                               than its size (a meta set's bad flag, a binary unknown opcode's
                               body, a SASL response): no store_too_large */
    /* PROTO_ERROR in the binary protocol: the whole error packet to send (npacket > 0) */
    size_t npacket;
    unsigned char packet[PROTO_PACKET_MAX];
};

/* Converts a client exptime to an absolute unix time the store keeps: 0 = never expires,
 * 1 = already expired (any time in the past is treated the same). Pure; 'now' is time(NULL). */
uint32_t proto_exptime_to_abs(int64_t exptime, int64_t now);

#endif
