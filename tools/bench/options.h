/* mcstore-bench's command line: every option, its default, and the checks on its value. */
#ifndef MCSTORE_TOOLS_BENCH_OPTIONS_H
#define MCSTORE_TOOLS_BENCH_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "tools/ring/ring.h"

#define BENCH_SERVERS_MAX 64
#define BENCH_PREFIX_MAX 200        /* leaves room for the numbers in a 250-byte key */

enum bench_protocol {
    BENCH_PROTO_TEXT,       /* get, set, add, append */
    BENCH_PROTO_BINARY,     /* GETK, SET, ADD, APPEND; opaque = a per-connection sequence */
    BENCH_PROTO_META,       /* mg (v k O), ms (modes E for add, A for append; O) */
};

enum bench_pattern {
    BENCH_UNIFORM,
    BENCH_ZIPF,
    BENCH_SEQUENTIAL,
};

enum bench_fanout_op {
    BENCH_FANOUT_SET,       /* set inbox:<follower>:<action> */
    BENCH_FANOUT_APPEND,    /* append "<action> " to inbox:<follower> (add when missing) */
};

struct bench_opts {
    struct ring_node servers[BENCH_SERVERS_MAX];
    size_t nservers;
    unsigned threads;
    unsigned connections;           /* per thread and per server */
    unsigned pipeline;              /* requests in flight per connection */
    enum bench_protocol protocol;
    unsigned ratio_set, ratio_get;
    uint64_t keys;
    enum bench_pattern pattern;
    double zipf_s;
    char key_prefix[BENCH_PREFIX_MAX + 1];
    uint32_t value_min, value_max;
    double duration;                /* seconds, when requests == 0 */
    uint64_t requests;              /* total requests (fan-out: actions); 0 = run for duration */
    double rate;                    /* requests/s over all threads; 0 = as fast as possible */
    bool prefill;
    bool prefill_only;              /* prefill, report it, and skip the timed run */
    uint64_t seed;
    bool json;
    bool quiet;                     /* no progress lines */
    double drain_timeout;           /* seconds to wait for replies after the run */
    bool fanout;
    enum bench_fanout_op fanout_op;
    uint64_t fanout_users;
    uint32_t fanout_max_followers;
    double fanout_mean;
    bool fanout_max_user;           /* one action of the most-followed user, alone */
    bool route;                     /* print the server of each key read from stdin, and exit */
};

enum bench_opts_result {
    BENCH_OPTS_RUN,                 /* parsed: run */
    BENCH_OPTS_EXIT_OK,             /* -h or -V was answered: exit 0 */
    BENCH_OPTS_USAGE,               /* bad command line, message printed: exit 2 */
};

/* Parses argv into o (defaults first). Messages go to stderr, -h/-V output to stdout. */
enum bench_opts_result bench_opts_parse(struct bench_opts *o, int argc, char **argv);

/* Writes the help text, every option with its default. */
void bench_opts_usage(FILE *f);

/* "text", "binary", "meta"; "uniform", "zipf", "sequential"; "set", "append". */
const char *bench_protocol_name(enum bench_protocol p);
const char *bench_pattern_name(enum bench_pattern p);
const char *bench_fanout_op_name(enum bench_fanout_op op);

#endif
