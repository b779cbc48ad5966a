/* Replication as the daemon sees it: configuration, the current role, and write routing. */
#ifndef MCSTORE_REPLICATION_REPL_H
#define MCSTORE_REPLICATION_REPL_H

/*
 * Berkeley DB's Replication Manager ships the log, holds elections and catches members up;
 * this module configures it (replication/repl.c, through replication/repl_bdb.h, which only
 * storage/ includes), records its events and answers the daemon's questions: is this member
 * the master, and if not, where is it. Nothing here includes <db.h>.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct repl;    /* opaque: one member's replication state */

/* How roles are decided (--repl-mode). */
enum repl_mode {
    REPL_MODE_ELECTION,     /* Berkeley DB elects the master (default) */
    REPL_MODE_MASTER,       /* this member is the master, no elections (MemcacheDB's -M) */
    REPL_MODE_SLAVE,        /* this member is a slave, no elections (MemcacheDB's -S) */
};

/* When the master's commit returns (--repl-ack), mapped by name to DB_REPMGR_ACKS_*. */
enum repl_ack {
    REPL_ACK_NONE,          /* at once: a failover can lose recent writes */
    REPL_ACK_ONE,           /* after one other member has the write */
    REPL_ACK_QUORUM,        /* after enough members that any electable majority has it */
    REPL_ACK_ALL,           /* after every other member has it */
};

/* What the survivor of a two-member group may do (--repl-two-site). */
enum repl_two_site {
    REPL_TWO_SITE_STRICT,   /* needs both members to elect: no split brain, no failover */
    REPL_TWO_SITE_AVAILABLE,/* the survivor elects itself: failover, at the risk of two masters
                               when the members only lost sight of each other */
};

#define REPL_HOST_MAX 255
#define REPL_PEERS_MAX 16

struct repl_addr {
    char host[REPL_HOST_MAX + 1];
    uint16_t port;
};

struct repl_config {
    bool enabled;               /* --repl-listen was given */
    struct repl_addr listen;    /* -R --repl-listen host:port: this member's replication port */
    struct repl_addr peers[REPL_PEERS_MAX]; /* -O --repl-peer host:port, repeatable */
    int npeers;
    int priority;               /* --repl-priority (100); 0 = never master */
    enum repl_ack ack;          /* --repl-ack (quorum) */
    int ack_timeout_ms;         /* --repl-ack-timeout (1000) */
    enum repl_mode mode;        /* --repl-mode, -M, -S (election) */
    int nsites;                 /* --repl-nsites: the founding group's size (0 = peers + 1) */
    enum repl_two_site two_site;/* --repl-two-site (strict) */
    bool join;                  /* --repl-join: a new member joining a running group */
    char client_addr[REPL_HOST_MAX + 8]; /* "host:port" clients use for this member */
    /* Receives messages: level 0 error, 1 warning, 2 info, 3 debug. */
    void (*log_fn)(int level, const char *msg);
    /* Called from the replication monitor thread soon after the Replication Manager opens a
     * connection, and once a second: the daemon sets TCP_NODELAY on sockets Berkeley DB 5.3
     * opened without it (with Nagle's algorithm a slave's small acks wait for the master's
     * delayed ACK, 40 ms, whenever two commits wait at once). NULL = none. */
    void (*tune_sockets_fn)(void);
};

/* Fills c with the defaults (replication off). */
void repl_config_defaults(struct repl_config *c);

/*
 * Applies one command-line option: name is the long option without dashes ("repl-listen",
 * "repl-peer", "repl-priority", "repl-ack", "repl-ack-timeout", "repl-mode", "repl-nsites",
 * "repl-two-site", "repl-join"), value its argument (NULL for repl-join). Returns NULL, or
 * a message saying what is wrong with the value.
 */
const char *repl_config_option(struct repl_config *c, const char *name, const char *value);

/* Checks the whole configuration once every option is in. NULL, or what is wrong. */
const char *repl_config_check(const struct repl_config *c);

/* Parses "host:port" (port 1..65535); false when malformed. */
bool repl_parse_addr(const char *text, struct repl_addr *out);

const char *repl_mode_name(enum repl_mode m);
const char *repl_ack_name(enum repl_ack a);
const char *repl_two_site_name(enum repl_two_site t);

/* Creates the replication state for cfg (copied). NULL when out of memory. Replication
 * starts when the store opens the environment (storage calls replication/repl_bdb.h). */
struct repl *repl_new(const struct repl_config *cfg);

/* Frees r; the store using it must be closed first. NULL is ignored. */
void repl_free(struct repl *r);

/* True when this member is the master and takes writes (true without replication: r NULL).
 * Any thread; a relaxed read of the role Berkeley DB's events set. */
bool repl_is_master(const struct repl *r);

/*
 * The reason a write must be refused here: NULL when this member takes writes (or r is NULL),
 * else buf filled with "not master; master is host:port" (the master's client address) or
 * "not master; no master elected yet" (or "...; master address not known yet"). Every protocol's dispatcher asks before a write and
 * answers the text after its own error prefix ("SERVER_ERROR "). Any thread.
 */
const char *repl_write_refusal(struct repl *r, char *buf, size_t n);

/* The master's client address "host:port" into buf, or false when no master is known. */
bool repl_master_addr(struct repl *r, char *buf, size_t n);

/* "master", "slave" or "unknown" (before the first election or startup is over). */
const char *repl_role_name(const struct repl *r);

/* Changes this member's election priority (MemcacheDB's rep_set_priority). 0 or -1. */
int repl_set_priority(struct repl *r, int priority);

/* True when the calling thread's last transaction commit on the master missed the ack policy
 * (Berkeley DB's DB_EVENT_REP_PERM_FAILED, which it raises in the committing thread); clears
 * the flag. Storage calls it right after each commit. */
bool repl_take_perm_failed(void);

/* Clears the calling thread's flag before a commit. */
void repl_clear_perm_failed(void);

/* Receives one statistic. */
typedef void (*repl_stat_fn)(void *arg, const char *name, const char *value);

/* "stats repl": role, master, members with their state, elections, acks failed, last event.
 * Any thread (calls into Berkeley DB for the member list). */
void repl_stats(struct repl *r, repl_stat_fn fn, void *arg);

#endif
