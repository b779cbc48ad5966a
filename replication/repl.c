/* Replication on Berkeley DB's Replication Manager: setup, events, roles and write routing. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "replication/repl.h"
#include "replication/repl_bdb.h"

/* Message-processing threads Berkeley DB runs for replication traffic. */
#define REPL_MSG_THREADS 3
/* How often the monitor thread looks again while something is unresolved (no master known,
 * the master's client address not yet replicated, a promotion to retry), and when all is
 * settled. Events wake it at once either way. */
#define MONITOR_BUSY_MS 50
#define MONITOR_IDLE_MS 1000
/* How long a --repl-join member keeps asking the group to let it in before giving up. */
#define JOIN_ATTEMPTS 30

/* master_eid when no master is known, and when this member is the master. */
#define EID_NONE (-1000)
#define EID_SELF (-1001)

struct repl {
    struct repl_config cfg;
    DB_ENV *env;
    struct repl_hooks hooks;

    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock;       /* guards everything below that is not atomic */
    pthread_cond_t cond;
    bool stop;
    bool wake;

    /* Set by Berkeley DB's events (repl_bdb_event), read anywhere. */
    _Atomic bool bdb_master;    /* Berkeley DB made this member the master */
    _Atomic int master_eid;     /* the master's environment id, EID_SELF or EID_NONE */
    _Atomic bool startup_done;  /* a slave in sync with its master */
    _Atomic bool ready;         /* master and store prepared: writes are taken */
    /* Members in Berkeley DB's group membership, this one included (0 = not counted yet); the
     * monitor recounts it. DB_REPMGR_ACKS_ALL waits only for members that have joined, so
     * before every founding member joined once, "all" must not be promised. */
    _Atomic int known_members;
    _Atomic uint64_t elections_won;
    _Atomic uint64_t elections_failed;
    _Atomic uint64_t acks_failed;
    _Atomic uint64_t dupmasters;
    _Atomic uint64_t inits;
    _Atomic uint64_t join_failures;
    _Atomic uint64_t connects_broken;
    _Atomic uint64_t master_changes;
    _Atomic uint32_t last_event;    /* the last event + 1; 0 = none yet */
    _Atomic int64_t last_event_ms;  /* CLOCK_MONOTONIC */
    _Atomic int64_t master_lost_ms; /* when the master was lost, 0 = not lost */
    _Atomic int64_t last_failover_ms; /* master lost -> a new master known, last time */
    _Atomic bool new_connection;    /* a connection opened since the monitor last looked */

    /* The monitor thread's view, under lock. */
    int resolved_eid;           /* the eid master_repl and master_client belong to */
    char master_repl[REPL_HOST_MAX + 8];    /* the master's replication address */
    char master_client[REPL_HOST_MAX + 8];  /* the master's client address, "" unknown */
    char self_repl[REPL_HOST_MAX + 8];
    bool logged_unknown;

    /* LSN reports. A slave tells the master how far its log goes over a Replication Manager
     * channel (DB_ENV->repmgr_channel, Berkeley DB's own messaging) every MONITOR_IDLE_MS;
     * the master keeps the last report of each member for `stats repl`, because 5.3's
     * DB_REPMGR_SITE carries no LSN. reports is under lock; channel is the monitor's. */
    DB_CHANNEL *channel;
    struct lsn_report {
        char addr[REPL_HOST_MAX + 8];   /* the slave's replication address, "" = unused */
        uint32_t file;
        uint32_t offset;
        int64_t at_ms;
    } reports[REPL_PEERS_MAX + 1];
};

/* An LSN report on the wire: magic, the slave's LSN, then its replication address. */
#define LSN_REPORT_MAGIC 0x4d434c53u /* "MCLS" */

static _Thread_local bool tl_perm_failed;

static void on_channel_msg(DB_ENV *env, DB_CHANNEL *ch, DBT *msgs, u_int32_t n, u_int32_t flags);

static void repl_log(struct repl *r, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void repl_log(struct repl *r, int level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (r->cfg.log_fn != NULL) {
        r->cfg.log_fn(level, msg);
    } else {
        fprintf(stderr, "%s\n", msg);
    }
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct repl *repl_new(const struct repl_config *cfg)
{
    struct repl *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return NULL;
    }
    r->cfg = *cfg;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    atomic_store(&r->master_eid, EID_NONE);
    r->resolved_eid = EID_NONE;
    snprintf(r->self_repl, sizeof(r->self_repl), "%s:%u", cfg->listen.host,
             (unsigned)cfg->listen.port);
    return r;
}

void repl_free(struct repl *r)
{
    if (r == NULL) {
        return;
    }
    repl_bdb_stop(r);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    free(r);
}

bool repl_is_master(const struct repl *r)
{
    return r == NULL || atomic_load_explicit(&r->ready, memory_order_acquire);
}

bool repl_bdb_is_master(const struct repl *r)
{
    return r != NULL && atomic_load(&r->bdb_master);
}

bool repl_bdb_can_open(const struct repl *r)
{
    return r != NULL && (atomic_load(&r->bdb_master) || atomic_load(&r->startup_done));
}

const char *repl_role_name(const struct repl *r)
{
    if (r == NULL || atomic_load(&r->ready)) {
        return "master";
    }
    if (atomic_load(&r->bdb_master)) {
        return "master-starting";
    }
    int eid = atomic_load(&r->master_eid);
    return eid != EID_NONE ? "slave" : "unknown";
}

bool repl_master_addr(struct repl *r, char *buf, size_t n)
{
    if (r == NULL) {
        return false;
    }
    if (atomic_load(&r->bdb_master)) {
        snprintf(buf, n, "%s", r->cfg.client_addr);
        return true;
    }
    pthread_mutex_lock(&r->lock);
    bool known = r->master_client[0] != '\0' && r->resolved_eid == atomic_load(&r->master_eid);
    if (known) {
        snprintf(buf, n, "%s", r->master_client);
    }
    pthread_mutex_unlock(&r->lock);
    return known;
}

const char *repl_write_refusal(struct repl *r, char *buf, size_t n)
{
    char addr[REPL_HOST_MAX + 8];
    if (r == NULL) {
        return NULL;    /* not replicating */
    }
    if (repl_is_master(r)) {
        int want = r->cfg.nsites != 0 ? r->cfg.nsites : r->cfg.npeers + 1;
        int have = atomic_load(&r->known_members);
        if (r->cfg.ack != REPL_ACK_ALL || have >= want) {
            return NULL;
        }
        snprintf(buf, n, "replication group incomplete: %d of %d members have joined, "
                 "--repl-ack all cannot be met", have, want);
        return buf;
    }
    if (repl_master_addr(r, addr, sizeof(addr))) {
        snprintf(buf, n, "not master; master is %s", addr);
    } else if (atomic_load(&r->master_eid) != EID_NONE) {
        /* elected, but its client address has not replicated here yet */
        snprintf(buf, n, "not master; master address not known yet");
    } else {
        snprintf(buf, n, "not master; no master elected yet");
    }
    return buf;
}

bool repl_take_perm_failed(void)
{
    bool v = tl_perm_failed;
    tl_perm_failed = false;
    return v;
}

void repl_clear_perm_failed(void)
{
    tl_perm_failed = false;
}

int repl_set_priority(struct repl *r, int priority)
{
    if (r == NULL || r->env == NULL || priority < 0) {
        return -1;
    }
    int ret = r->env->rep_set_priority(r->env, (uint32_t)priority);
    if (ret != 0) {
        repl_log(r, 0, "rep_set_priority %d: %s", priority, db_strerror(ret));
        return -1;
    }
    repl_log(r, 2, "replication: election priority is now %d", priority);
    return 0;
}

static int ack_policy(enum repl_ack a)
{
    switch (a) {
    case REPL_ACK_NONE:
        return DB_REPMGR_ACKS_NONE;
    case REPL_ACK_ONE:
        return DB_REPMGR_ACKS_ONE;
    case REPL_ACK_QUORUM:
        return DB_REPMGR_ACKS_QUORUM;
    case REPL_ACK_ALL:
        return DB_REPMGR_ACKS_ALL;
    }
    return DB_REPMGR_ACKS_QUORUM;
}

/* Declares one site; flags are DB_SITE->set_config switches to turn on. */
static int add_site(struct repl *r, DB_ENV *env, const struct repl_addr *a, uint32_t on1,
                    uint32_t on2)
{
    DB_SITE *site;
    int ret = env->repmgr_site(env, a->host, a->port, &site, 0);
    if (ret != 0) {
        repl_log(r, 0, "replication site %s:%u: %s", a->host, (unsigned)a->port,
                 db_strerror(ret));
        return ret;
    }
    if (on1 != 0 && (ret = site->set_config(site, on1, 1)) == 0 && on2 != 0) {
        ret = site->set_config(site, on2, 1);
    }
    int cret = site->close(site);
    if (ret == 0) {
        ret = cret;
    }
    if (ret != 0) {
        repl_log(r, 0, "replication site %s:%u: %s", a->host, (unsigned)a->port,
                 db_strerror(ret));
    }
    return ret;
}

int repl_bdb_configure(struct repl *r, DB_ENV *env, uint32_t *open_flags)
{
    int ret;
    /*
     * A founding member lists every member of the group, itself included, as a "legacy"
     * site: whichever becomes master first writes them all into Berkeley DB's group
     * membership database, so members may start in any order and elections count the whole
     * group from the start. A member joining a running group later instead asks its peers
     * (bootstrap helpers) to add it.
     */
    uint32_t member_flag = r->cfg.join ? DB_BOOTSTRAP_HELPER : DB_LEGACY;
    if ((ret = add_site(r, env, &r->cfg.listen, DB_LOCAL_SITE,
                        r->cfg.join ? 0 : DB_LEGACY)) != 0) {
        return ret;
    }
    for (int i = 0; i < r->cfg.npeers; i++) {
        if ((ret = add_site(r, env, &r->cfg.peers[i], member_flag, 0)) != 0) {
            return ret;
        }
    }
    struct {
        const char *what;
        int ret;
    } steps[] = {
        {"repmgr_set_ack_policy", env->repmgr_set_ack_policy(env, ack_policy(r->cfg.ack))},
        {"rep_set_timeout(ack)", env->rep_set_timeout(env, DB_REP_ACK_TIMEOUT,
                                                      (uint32_t)r->cfg.ack_timeout_ms * 1000)},
        {"rep_set_priority", env->rep_set_priority(env, (uint32_t)r->cfg.priority)},
        {"rep_set_config(2SITE_STRICT)",
         env->rep_set_config(env, DB_REPMGR_CONF_2SITE_STRICT,
                             r->cfg.two_site == REPL_TWO_SITE_STRICT ? 1 : 0)},
        {"rep_set_config(ELECTIONS)",
         env->rep_set_config(env, DB_REPMGR_CONF_ELECTIONS,
                             r->cfg.mode == REPL_MODE_ELECTION ? 1 : 0)},
        /* A killed master's connections break at once; heartbeats find one that hangs
         * (stopped, or cut off) within the monitor timeout. */
        {"rep_set_timeout(heartbeat send)",
         env->rep_set_timeout(env, DB_REP_HEARTBEAT_SEND, 500 * 1000)},
        {"rep_set_timeout(heartbeat monitor)",
         env->rep_set_timeout(env, DB_REP_HEARTBEAT_MONITOR, 2000 * 1000)},
        /* the defaults (30 s, 10 s) keep a restarted member waiting long after it is back */
        {"rep_set_timeout(connection retry)",
         env->rep_set_timeout(env, DB_REP_CONNECTION_RETRY, 1000 * 1000)},
        {"rep_set_timeout(election retry)",
         env->rep_set_timeout(env, DB_REP_ELECTION_RETRY, 1000 * 1000)},
        /* a transaction's log records go out in one message with its commit: sent one by
         * one, the commit waits behind the slave's delayed TCP ack of the first (Nagle),
         * some 40 ms for every acknowledged write */
        {"rep_set_config(BULK)", env->rep_set_config(env, DB_REP_CONF_BULK, 1)},
        /* the default makes every master checkpoint (and so every clean shutdown) wait 30 s
         * for slaves to finish theirs; a slave's own checkpoint is not needed for its
         * recovery, which a master would redo by synchronizing it anyway */
        {"rep_set_timeout(checkpoint delay)",
         env->rep_set_timeout(env, DB_REP_CHECKPOINT_DELAY, 0)},
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        if (steps[i].ret != 0) {
            repl_log(r, 0, "replication setup, %s: %s", steps[i].what,
                     db_strerror(steps[i].ret));
            return steps[i].ret;
        }
    }
    env->app_private = r;
    if ((ret = env->repmgr_msg_dispatch(env, on_channel_msg, 0)) != 0) {
        repl_log(r, 0, "replication setup, repmgr_msg_dispatch: %s", db_strerror(ret));
        return ret;
    }
    *open_flags |= DB_INIT_REP;
    return 0;
}

void repl_bdb_event(struct repl *r, uint32_t event, void *info)
{
    bool wake = true;
    switch (event) {
    case DB_EVENT_REP_MASTER:
        atomic_store(&r->master_eid, EID_SELF);
        atomic_store(&r->bdb_master, true);
        break;
    case DB_EVENT_REP_CLIENT:
        atomic_store(&r->bdb_master, false);
        atomic_store(&r->ready, false);
        break;
    case DB_EVENT_REP_NEWMASTER:
        atomic_store(&r->master_eid, info != NULL ? *(int *)info : EID_NONE);
        atomic_fetch_add(&r->master_changes, 1);
        break;
    case DB_EVENT_REP_MASTER_FAILURE:
        atomic_store(&r->master_eid, EID_NONE);
        atomic_store(&r->startup_done, false);
        atomic_store(&r->master_lost_ms, mono_ms());
        break;
    case DB_EVENT_REP_STARTUPDONE:
        atomic_store(&r->startup_done, true);
        break;
    case DB_EVENT_REP_ELECTED:
        atomic_fetch_add(&r->elections_won, 1);
        break;
    case DB_EVENT_REP_ELECTION_FAILED:
        atomic_fetch_add(&r->elections_failed, 1);
        break;
    case DB_EVENT_REP_PERM_FAILED:
        /* raised inside the committing thread's txn->commit (the Replication Manager's send
         * function): the flag belongs to that commit */
        tl_perm_failed = true;
        atomic_fetch_add(&r->acks_failed, 1);
        wake = false;
        break;
    case DB_EVENT_REP_DUPMASTER:
        atomic_fetch_add(&r->dupmasters, 1);
        atomic_store(&r->ready, false);
        break;
    case DB_EVENT_REP_INIT_DONE:
        atomic_fetch_add(&r->inits, 1);
        break;
    case DB_EVENT_REP_JOIN_FAILURE:
        atomic_fetch_add(&r->join_failures, 1);
        break;
    case DB_EVENT_REP_CONNECT_BROKEN:
        atomic_fetch_add(&r->connects_broken, 1);
        wake = false;
        break;
    case DB_EVENT_REP_CONNECT_ESTD:
        atomic_store(&r->new_connection, true);
        break;
    default:
        wake = false;
        break;
    }
    atomic_store(&r->last_event, event + 1); /* 0 stays "none" (DB_EVENT_PANIC is 0) */
    atomic_store(&r->last_event_ms, mono_ms());
    if (wake) {
        pthread_mutex_lock(&r->lock);
        r->wake = true;
        pthread_cond_signal(&r->cond);
        pthread_mutex_unlock(&r->lock);
    }
}

/* Names an event stored as event + 1. */
static const char *event_name(uint32_t stored)
{
    if (stored == 0) {
        return "none";
    }
    switch (stored - 1) {
    case DB_EVENT_REP_CLIENT:
        return "client";
    case DB_EVENT_REP_CONNECT_BROKEN:
        return "connect_broken";
    case DB_EVENT_REP_CONNECT_ESTD:
        return "connect_established";
    case DB_EVENT_REP_CONNECT_TRY_FAILED:
        return "connect_try_failed";
    case DB_EVENT_REP_DUPMASTER:
        return "dupmaster";
    case DB_EVENT_REP_ELECTED:
        return "elected";
    case DB_EVENT_REP_ELECTION_FAILED:
        return "election_failed";
    case DB_EVENT_REP_INIT_DONE:
        return "init_done";
    case DB_EVENT_REP_JOIN_FAILURE:
        return "join_failure";
    case DB_EVENT_REP_LOCAL_SITE_REMOVED:
        return "local_site_removed";
    case DB_EVENT_REP_MASTER:
        return "master";
    case DB_EVENT_REP_MASTER_FAILURE:
        return "master_failure";
    case DB_EVENT_REP_NEWMASTER:
        return "newmaster";
    case DB_EVENT_REP_PERM_FAILED:
        return "perm_failed";
    case DB_EVENT_REP_SITE_ADDED:
        return "site_added";
    case DB_EVENT_REP_SITE_REMOVED:
        return "site_removed";
    case DB_EVENT_REP_STARTUPDONE:
        return "startupdone";
    case DB_EVENT_PANIC:
        return "panic";
    default:
        return "other";
    }
}

/* The replication address of site eid, "host:port", via Berkeley DB. */
static bool site_addr(struct repl *r, int eid, char *buf, size_t n)
{
    DB_SITE *site;
    const char *host;
    u_int port;
    if (r->env->repmgr_site_by_eid(r->env, eid, &site) != 0) {
        return false;
    }
    bool ok = site->get_address(site, &host, &port) == 0;
    if (ok) {
        snprintf(buf, n, "%s:%u", host, port);
    }
    site->close(site);
    return ok;
}

static uint32_t current_generation(struct repl *r)
{
    DB_REP_STAT *sp = NULL;
    uint32_t gen = 0;
    if (r->env->rep_stat(r->env, &sp, 0) == 0 && sp != NULL) {
        gen = sp->st_gen;
        free(sp);
    }
    return gen;
}

/* Berkeley DB's handler for channel messages (a Replication Manager message thread): keeps
 * a slave's LSN report. Only records: no call back into Berkeley DB. */
static void on_channel_msg(DB_ENV *env, DB_CHANNEL *ch, DBT *msgs, u_int32_t n, u_int32_t flags)
{
    struct repl *r = env->app_private;
    (void)ch;
    (void)flags;
    if (r == NULL || n < 1 || msgs[0].size < 12 || msgs[0].size > 12 + REPL_HOST_MAX + 7) {
        return;
    }
    uint32_t w[3];
    memcpy(w, msgs[0].data, sizeof(w));
    if (w[0] != LSN_REPORT_MAGIC) {
        return;
    }
    char addr[REPL_HOST_MAX + 8];
    memcpy(addr, (char *)msgs[0].data + 12, msgs[0].size - 12);
    addr[msgs[0].size - 12] = '\0';
    pthread_mutex_lock(&r->lock);
    struct lsn_report *slot = NULL;
    for (size_t i = 0; i < sizeof(r->reports) / sizeof(r->reports[0]); i++) {
        if (strcmp(r->reports[i].addr, addr) == 0) {
            slot = &r->reports[i];
            break;
        }
        if (slot == NULL && r->reports[i].addr[0] == '\0') {
            slot = &r->reports[i];
        }
    }
    if (slot != NULL) {
        snprintf(slot->addr, sizeof(slot->addr), "%s", addr);
        slot->file = w[1];
        slot->offset = w[2];
        slot->at_ms = mono_ms();
    }
    pthread_mutex_unlock(&r->lock);
}

/* On a slave: sends this member's log end to the master (best effort: a lost report only
 * makes the master's figure older). Monitor thread only. */
static void send_lsn_report(struct repl *r)
{
    DB_REP_STAT *sp = NULL;
    unsigned char buf[12 + REPL_HOST_MAX + 8];
    if (r->channel == NULL &&
        r->env->repmgr_channel(r->env, DB_EID_MASTER, &r->channel, 0) != 0) {
        r->channel = NULL;
        return;
    }
    if (r->env->rep_stat(r->env, &sp, 0) != 0 || sp == NULL) {
        return;
    }
    uint32_t w[3] = {LSN_REPORT_MAGIC, sp->st_next_lsn.file, sp->st_next_lsn.offset};
    free(sp);
    size_t len = strlen(r->self_repl);
    memcpy(buf, w, sizeof(w));
    memcpy(buf + 12, r->self_repl, len);
    DBT msg;
    memset(&msg, 0, sizeof(msg));
    msg.data = buf;
    msg.size = (uint32_t)(12 + len);
    r->channel->send_msg(r->channel, &msg, 1, 0);
}

/* One pass of the monitor: promotion, demotion, the master's addresses. Returns true while
 * something is unresolved, so the next pass comes soon. */
static bool monitor_step(struct repl *r, bool refresh)
{
    bool busy = false;
    if (atomic_load(&r->bdb_master)) {
        if (!atomic_load(&r->ready)) {
            uint32_t gen = current_generation(r);
            int64_t t0 = mono_ms();
            if (r->hooks.become_master(r->hooks.arg, gen) != 0) {
                return true; /* try again shortly */
            }
            /* Berkeley DB may have demoted us meanwhile; a later CLIENT event clears it */
            if (atomic_load(&r->bdb_master)) {
                atomic_store_explicit(&r->ready, true, memory_order_release);
                int64_t lost = atomic_exchange(&r->master_lost_ms, 0);
                if (lost != 0) {
                    atomic_store(&r->last_failover_ms, mono_ms() - lost);
                }
                repl_log(r, 1, "replication: this member (%s) is the master, generation %u; "
                               "taking writes (%" PRId64 " ms to prepare)",
                         r->self_repl, gen, mono_ms() - t0);
                r->hooks.after_master(r->hooks.arg);
                if (r->hooks.publish_client_addr(r->hooks.arg, r->self_repl,
                                                 r->cfg.client_addr) != 0) {
                    repl_log(r, 1, "replication: could not record this member's client "
                                   "address; slaves cannot name the master yet");
                }
            }
        }
        pthread_mutex_lock(&r->lock);
        r->resolved_eid = EID_SELF;
        snprintf(r->master_repl, sizeof(r->master_repl), "%s", r->self_repl);
        snprintf(r->master_client, sizeof(r->master_client), "%s", r->cfg.client_addr);
        pthread_mutex_unlock(&r->lock);
        return false;
    }
    atomic_store(&r->ready, false);
    int eid = atomic_load(&r->master_eid);
    if (eid == EID_NONE || eid == EID_SELF) {
        pthread_mutex_lock(&r->lock);
        bool had = r->resolved_eid != EID_NONE;
        r->resolved_eid = EID_NONE;
        r->master_client[0] = '\0';
        r->master_repl[0] = '\0';
        pthread_mutex_unlock(&r->lock);
        if (had) {
            repl_log(r, 1, "replication: no master known; writes are refused until one is "
                           "elected");
        }
        return true;
    }
    pthread_mutex_lock(&r->lock);
    bool known = r->resolved_eid == eid && r->master_client[0] != '\0';
    pthread_mutex_unlock(&r->lock);
    if (known && !refresh) {
        return false;
    }
    char repl_addr[REPL_HOST_MAX + 8];
    char client[REPL_HOST_MAX + 8] = "";
    if (!site_addr(r, eid, repl_addr, sizeof(repl_addr))) {
        return true;
    }
    /* the master writes its client address right after its promotion; until that write
     * reaches us, slaves can only say that there is a master */
    bool found = r->hooks.lookup_client_addr(r->hooks.arg, repl_addr, client, sizeof(client));
    pthread_mutex_lock(&r->lock);
    bool changed = r->resolved_eid != eid || strcmp(r->master_client, client) != 0;
    r->resolved_eid = eid;
    snprintf(r->master_repl, sizeof(r->master_repl), "%s", repl_addr);
    snprintf(r->master_client, sizeof(r->master_client), "%s", found ? client : "");
    pthread_mutex_unlock(&r->lock);
    if (found && changed) {
        int64_t lost = atomic_exchange(&r->master_lost_ms, 0);
        if (lost != 0) {
            atomic_store(&r->last_failover_ms, mono_ms() - lost);
        }
        repl_log(r, 1, "replication: the master is %s (replication %s); this member is a "
                       "slave", client, repl_addr);
    }
    busy = !found;
    return busy;
}

/* Monitor thread: how many members the group database holds (for --repl-ack all); with
 * Replication Manager, 5.3 derives nsites from that database. */
static void count_members(struct repl *r)
{
    uint32_t nsites = 0;
    if (r->env != NULL && r->env->rep_get_nsites(r->env, &nsites) == 0) {
        atomic_store(&r->known_members, (int)nsites);
    }
}

static void *monitor_main(void *arg)
{
    struct repl *r = arg;
    bool busy = true;
    int64_t last_refresh = 0;
    for (;;) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long ms = busy ? MONITOR_BUSY_MS : MONITOR_IDLE_MS;
        ts.tv_nsec += (ms % 1000) * 1000000L;
        ts.tv_sec += ms / 1000 + ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_mutex_lock(&r->lock);
        while (!r->stop && !r->wake) {
            if (pthread_cond_timedwait(&r->cond, &r->lock, &ts) == ETIMEDOUT) {
                break;
            }
        }
        bool stop = r->stop;
        r->wake = false;
        pthread_mutex_unlock(&r->lock);
        if (stop) {
            break;
        }
        /* a master that restarts with another client port republishes it: look again now
         * and then even when the address is known */
        int64_t now = mono_ms();
        bool refresh = now - last_refresh >= MONITOR_IDLE_MS;
        if (refresh) {
            last_refresh = now;
        }
        if ((atomic_exchange(&r->new_connection, false) || refresh) &&
            r->cfg.tune_sockets_fn != NULL) {
            r->cfg.tune_sockets_fn();
        }
        busy = monitor_step(r, refresh);
        count_members(r);
        if (refresh && !atomic_load(&r->bdb_master) && atomic_load(&r->master_eid) >= 0) {
            send_lsn_report(r);
        }
    }
    return NULL;
}

int repl_bdb_start(struct repl *r, DB_ENV *env, const struct repl_hooks *hooks)
{
    r->env = env;
    r->hooks = *hooks;
    uint32_t how = r->cfg.mode == REPL_MODE_MASTER  ? DB_REP_MASTER
                   : r->cfg.mode == REPL_MODE_SLAVE ? DB_REP_CLIENT
                                                    : DB_REP_ELECTION;
    if (r->cfg.join && how == DB_REP_ELECTION) {
        /* a new member starts as a client; elections begin once it is in the group */
        how = DB_REP_CLIENT;
    }
    int ret = 0;
    for (int attempt = 1; attempt <= JOIN_ATTEMPTS; attempt++) {
        ret = env->repmgr_start(env, REPL_MSG_THREADS, how);
        /* only a joining member finds nobody to ask (DB_REP_UNAVAIL): the group's master may
         * not be up yet, so it asks again */
        if (ret != DB_REP_UNAVAIL || !r->cfg.join) {
            break;
        }
        repl_log(r, 1, "replication: no member of the group could add this one yet "
                       "(attempt %d of %d); trying again", attempt, JOIN_ATTEMPTS);
        struct timespec ts = {1, 0};
        nanosleep(&ts, NULL);
    }
    if (ret != 0) {
        repl_log(r, 0, "cannot start replication on %s: %s", r->self_repl, db_strerror(ret));
        return ret;
    }
    if (pthread_create(&r->thread, NULL, monitor_main, r) != 0) {
        repl_log(r, 0, "cannot start the replication monitor thread");
        return ENOMEM;
    }
    r->thread_started = true;
    repl_log(r, 2, "replication started on %s: %s mode, %d peers, ack %s (%d ms), priority %d, "
                   "two-site %s%s",
             r->self_repl, repl_mode_name(r->cfg.mode), r->cfg.npeers,
             repl_ack_name(r->cfg.ack), r->cfg.ack_timeout_ms, r->cfg.priority,
             repl_two_site_name(r->cfg.two_site), r->cfg.join ? ", joining" : "");
    return 0;
}

bool repl_bdb_wait_ready(struct repl *r, int ms)
{
    int64_t deadline = mono_ms() + ms;
    for (;;) {
        if (atomic_load(&r->bdb_master) || atomic_load(&r->startup_done)) {
            return true;
        }
        if (mono_ms() >= deadline) {
            return false;
        }
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

void repl_bdb_stop(struct repl *r)
{
    if (r == NULL || !r->thread_started) {
        return;
    }
    pthread_mutex_lock(&r->lock);
    r->stop = true;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    r->thread_started = false;
    if (r->channel != NULL) {
        r->channel->close(r->channel, 0);
        r->channel = NULL;
    }
    atomic_store(&r->ready, false);
}

static void stat_u64(repl_stat_fn fn, void *arg, const char *name, uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    fn(arg, name, buf);
}

void repl_stats(struct repl *r, repl_stat_fn fn, void *arg)
{
    char buf[512];
    if (r == NULL) {
        fn(arg, "repl_enabled", "no");
        return;
    }
    fn(arg, "repl_enabled", "yes");
    fn(arg, "repl_role", repl_role_name(r));
    fn(arg, "repl_mode", repl_mode_name(r->cfg.mode));
    fn(arg, "repl_self", r->self_repl);
    fn(arg, "repl_self_client", r->cfg.client_addr);
    pthread_mutex_lock(&r->lock);
    fn(arg, "repl_master", r->master_client[0] != '\0' ? r->master_client : "unknown");
    fn(arg, "repl_master_repl", r->master_repl[0] != '\0' ? r->master_repl : "unknown");
    pthread_mutex_unlock(&r->lock);
    fn(arg, "repl_ack_policy", repl_ack_name(r->cfg.ack));
    stat_u64(fn, arg, "repl_ack_timeout_ms", (uint64_t)r->cfg.ack_timeout_ms);
    fn(arg, "repl_two_site", repl_two_site_name(r->cfg.two_site));
    uint32_t prio = 0;
    if (r->env != NULL && r->env->rep_get_priority(r->env, &prio) == 0) {
        stat_u64(fn, arg, "repl_priority", prio);
    }
    uint32_t nsites = 0;
    if (r->env != NULL && r->env->rep_get_nsites(r->env, &nsites) == 0) {
        stat_u64(fn, arg, "repl_nsites", nsites);
    }
    DB_REP_STAT *sp = NULL;
    if (r->env != NULL && r->env->rep_stat(r->env, &sp, 0) == 0 && sp != NULL) {
        stat_u64(fn, arg, "repl_generation", sp->st_gen);
        snprintf(buf, sizeof(buf), "%u/%u", sp->st_next_lsn.file, sp->st_next_lsn.offset);
        fn(arg, "repl_next_lsn", buf);
        stat_u64(fn, arg, "repl_elections", sp->st_elections);
        stat_u64(fn, arg, "repl_election_ms",
                 (uint64_t)sp->st_election_sec * 1000 + sp->st_election_usec / 1000);
        stat_u64(fn, arg, "repl_log_records_received", sp->st_log_records);
        stat_u64(fn, arg, "repl_startup_complete", sp->st_startup_complete);
        free(sp);
    }
    stat_u64(fn, arg, "repl_elections_won", atomic_load(&r->elections_won));
    stat_u64(fn, arg, "repl_elections_failed", atomic_load(&r->elections_failed));
    stat_u64(fn, arg, "repl_master_changes", atomic_load(&r->master_changes));
    stat_u64(fn, arg, "repl_last_failover_ms", (uint64_t)atomic_load(&r->last_failover_ms));
    stat_u64(fn, arg, "repl_acks_failed", atomic_load(&r->acks_failed));
    stat_u64(fn, arg, "repl_dupmasters", atomic_load(&r->dupmasters));
    stat_u64(fn, arg, "repl_internal_inits", atomic_load(&r->inits));
    stat_u64(fn, arg, "repl_join_failures", atomic_load(&r->join_failures));
    stat_u64(fn, arg, "repl_connections_broken", atomic_load(&r->connects_broken));
    stat_u64(fn, arg, "repl_members_joined", (uint64_t)atomic_load(&r->known_members));
    fn(arg, "repl_last_event", event_name(atomic_load(&r->last_event)));
    int64_t at = atomic_load(&r->last_event_ms);
    stat_u64(fn, arg, "repl_last_event_age_ms", at != 0 ? (uint64_t)(mono_ms() - at) : 0);

    /* the master's log end, against which its slaves' reports are measured */
    DB_LSN mine = {0, 0};
    uint32_t lg_max = 0;
    bool is_master = atomic_load(&r->bdb_master);
    DB_LOG_STAT *ls = NULL;
    if (is_master && r->env != NULL && r->env->log_stat(r->env, &ls, 0) == 0 && ls != NULL) {
        mine.file = ls->st_cur_file;
        mine.offset = ls->st_cur_offset;
        lg_max = ls->st_lg_size;
        free(ls);
    }
    DB_REPMGR_SITE *list = NULL;
    u_int count = 0;
    if (r->env != NULL && r->env->repmgr_site_list(r->env, &count, &list) == 0) {
        int master = atomic_load(&r->master_eid);
        stat_u64(fn, arg, "repl_members", (uint64_t)count + 1);
        for (u_int i = 0; i < count; i++) {
            char name[REPL_HOST_MAX + 32];
            char addr[REPL_HOST_MAX + 8];
            char lag[96] = "";
            snprintf(name, sizeof(name), "repl_member:%s:%u", list[i].host, list[i].port);
            snprintf(addr, sizeof(addr), "%s:%u", list[i].host, list[i].port);
            pthread_mutex_lock(&r->lock);
            for (size_t j = 0; is_master && j < sizeof(r->reports) / sizeof(r->reports[0]); j++) {
                const struct lsn_report *rep = &r->reports[j];
                if (strcmp(rep->addr, addr) != 0) {
                    continue;
                }
                /* bytes of log the member lacks; across files, counted as full files */
                int64_t d = ((int64_t)mine.file - rep->file) * lg_max +
                            ((int64_t)mine.offset - rep->offset);
                snprintf(lag, sizeof(lag), " lsn=%u/%u lag=%lld report_age_ms=%lld", rep->file,
                         rep->offset, (long long)(d > 0 ? d : 0),
                         (long long)(mono_ms() - rep->at_ms));
            }
            pthread_mutex_unlock(&r->lock);
            if (is_master && lag[0] == '\0') {
                snprintf(lag, sizeof(lag), " lag=unknown");
            }
            snprintf(buf, sizeof(buf), "%s %s%s",
                     list[i].status == DB_REPMGR_CONNECTED ? "connected" : "disconnected",
                     list[i].eid == master ? "master" : "slave", lag);
            fn(arg, name, buf);
        }
        free(list);
    }
}
