/* mcstore-rebalance: the ledger of copied keys (an append-only file and its hash table). */
#ifndef MCSTORE_TOOLS_REBALANCE_LEDGER_H
#define MCSTORE_TOOLS_REBALANCE_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * For every key the tool wrote to a new owner, the ledger remembers the source's cas at the
 * copy and the target's cas right after it, so a later pass can tell "a client wrote the
 * source since" (source cas changed: carry it with a compare-and-swap on the target's cas)
 * from "a client wrote the target" (the swap fails: leave it). It lives in memory as a hash
 * table and on disk as an append-only file of records, one per line, keys in base64:
 *
 *   mcstore-rebalance-ledger 1 <fingerprint>     first line
 *   I <key> <source cas> <digest>    about to write the value with this digest (hex)
 *   C <key> <source cas> <target cas>  the target holds our copy of that source version
 *   N <key> <source cas>             the target holds a client's newer write: never touch it
 *   D <key>                          the source copy was deleted (--delete-moved)
 *   X <key>                          the target copy was deleted (the source deleted the key)
 *
 * A later record of a key overrides what an earlier one said, except that "I" records add up:
 * every "I" without a later "C", "N" or "X" may be a write a run made and died before
 * confirming, so if the target then holds a value with any of their digests, it is our copy. A torn last line (kill -9 during the append) is cut
 * off when the file is opened. Memory grows with the number of keys written.
 *
 * Not thread-safe: one thread owns a ledger.
 */

enum ledger_target {
    LEDGER_NONE = 0,            /* nothing of ours is on the target */
    LEDGER_COPIED,              /* the target holds our copy: tgt_cas is its cas */
    LEDGER_NEWER,               /* the target holds a client's write */
};

struct ledger_entry {
    struct ledger_entry *next;  /* hash chain */
    uint64_t src_cas;           /* COPIED / NEWER: the source version it is about */
    uint64_t tgt_cas;           /* COPIED */
    uint64_t pend_src_cas;      /* has_pending: the write an "I" record announced */
    uint64_t pend_digest;
    uint64_t *older;            /* earlier unconfirmed intents: (source cas, digest) pairs */
    uint32_t nolder;            /* pairs in older */
    uint8_t target;             /* enum ledger_target */
    bool has_pending;
    bool src_deleted;           /* --delete-moved removed the source copy */
    bool seen;                  /* free for the caller (not stored): the run saw the key */
    uint16_t nkey;
    char key[];
};

struct ledger;

/* The digest an "I" record keeps: FNV-1a 64 of the flags (4 bytes, little endian) and value. */
uint64_t ledger_digest(uint32_t flags, const char *value, size_t nvalue);

/*
 * Opens path and locks it (flock, exclusive, released by ledger_close or the process's end);
 * with create it starts it empty (with the header), else loads every record. A file another
 * process holds, or whose header names another fingerprint, is refused. Returns the ledger,
 * or NULL with a message in err.
 */
struct ledger *ledger_open(const char *path, const char *fingerprint, bool create, char *err,
                           size_t errlen);

/* Writes out what is buffered, closes the file and frees everything (NULL is fine). */
void ledger_close(struct ledger *l);

/* The entry of key, or NULL. The pointer stays valid until ledger_close. */
struct ledger_entry *ledger_find(struct ledger *l, const char *key, size_t nkey);

/*
 * Whether an unconfirmed intent of e (the latest "I" record or an earlier one that no "C", "N"
 * or "X" has settled since) announced a value with this digest; *src_cas gets its source cas.
 * Every such intent counts: a run that died after writing one value may be followed by runs
 * that announced other values and never wrote them, so the target may hold any of them.
 */
bool ledger_pending_match(const struct ledger_entry *e, uint64_t digest, uint64_t *src_cas);

/* Number of keys in the table. */
size_t ledger_count(const struct ledger *l);

/*
 * Record a fact (the letters above) in memory and in the file's buffer. Each returns 0, or -1
 * when out of memory (nothing changed).
 */
int ledger_intent(struct ledger *l, const char *key, size_t nkey, uint64_t src_cas,
                  uint64_t digest);
int ledger_copied(struct ledger *l, const char *key, size_t nkey, uint64_t src_cas,
                  uint64_t tgt_cas);
int ledger_newer(struct ledger *l, const char *key, size_t nkey, uint64_t src_cas);
int ledger_src_deleted(struct ledger *l, const char *key, size_t nkey);
int ledger_tgt_deleted(struct ledger *l, const char *key, size_t nkey);

/*
 * Writes the buffered records to the file (one write; a process crash after it loses
 * nothing) and, with sync, fdatasync()s it. Returns 0 or -1 with errno set.
 */
int ledger_flush(struct ledger *l, bool sync);

/* Calls fn for every entry (in no particular order); fn returns false to stop. */
void ledger_each(struct ledger *l, bool (*fn)(void *arg, struct ledger_entry *e), void *arg);

#endif
