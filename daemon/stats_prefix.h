/* memcached's per-prefix statistics ("stats detail on|off|dump", binary "stat detail ..."). */
#ifndef MCSTORE_DAEMON_STATS_PREFIX_H
#define MCSTORE_DAEMON_STATS_PREFIX_H

#include <stdbool.h>
#include <stddef.h>

/*
 * While enabled, every get (hit or miss), storage command and delete is counted under its key's
 * prefix: the bytes before the first ':' (memcached's default -D). Keys without a ':', or with
 * a NUL before it, are not counted. The dump lists the prefixes in memcached's order (its
 * 256 MurmurHash3 buckets, the newest first in each), so it matches memcached byte for byte.
 * At most STATS_PREFIX_MAX prefixes are kept; later new ones are not counted (memcached has no
 * limit: a client could make it allocate without end).
 * Thread rules: every function is thread safe (one mutex; the enabled flag is atomic).
 */
#define STATS_PREFIX_MAX 65536

struct stats_prefix;

/* Creates the (disabled, empty) table; NULL when out of memory. */
struct stats_prefix *stats_prefix_new(void);

/* Frees it. NULL is allowed. */
void stats_prefix_free(struct stats_prefix *sp);

/* "detail on" / "detail off": turns counting on or off (the counts are kept). */
void stats_prefix_enable(struct stats_prefix *sp, bool on);

/* true when counting is on (cheap: callers test it before each record call). */
bool stats_prefix_enabled(const struct stats_prefix *sp);

/* Counts a get of key (hit or miss), a storage command, a delete. No-ops while disabled. */
void stats_prefix_record_get(struct stats_prefix *sp, const char *key, size_t nkey, bool hit);
void stats_prefix_record_set(struct stats_prefix *sp, const char *key, size_t nkey);
void stats_prefix_record_delete(struct stats_prefix *sp, const char *key, size_t nkey);

/* Drops every prefix ("stats reset"). */
void stats_prefix_clear(struct stats_prefix *sp);

/*
 * "PREFIX <p> get <n> hit <n> set <n> del <n>\r\n" per prefix, then "END\r\n", in a buffer
 * the caller frees; its length in *len. NULL when out of memory.
 */
char *stats_prefix_dump(struct stats_prefix *sp, size_t *len);

#endif
