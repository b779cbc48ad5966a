/* mcstore-bench's command line: defaults, parsing and validation of every option. */
#include "tools/bench/options.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "protocol/request.h"

#define DEFAULT_SERVER "127.0.0.1:21201"

enum {
    OPT_PROTOCOL = 256,
    OPT_KEY_PATTERN,
    OPT_ZIPF_S,
    OPT_KEY_PREFIX,
    OPT_VALUE_SIZE,
    OPT_PREFILL,
    OPT_PREFILL_ONLY,
    OPT_DRAIN,
    OPT_FANOUT,
    OPT_FANOUT_OP,
    OPT_FANOUT_USERS,
    OPT_FANOUT_MAX,
    OPT_FANOUT_MEAN,
    OPT_FANOUT_MAX_USER,
    OPT_ROUTE,
};

static const struct option long_opts[] = {
    {"server", required_argument, NULL, 's'},
    {"threads", required_argument, NULL, 't'},
    {"connections", required_argument, NULL, 'c'},
    {"pipeline", required_argument, NULL, 'P'},
    {"protocol", required_argument, NULL, OPT_PROTOCOL},
    {"ratio", required_argument, NULL, 'r'},
    {"keys", required_argument, NULL, 'k'},
    {"key-pattern", required_argument, NULL, OPT_KEY_PATTERN},
    {"zipf-s", required_argument, NULL, OPT_ZIPF_S},
    {"key-prefix", required_argument, NULL, OPT_KEY_PREFIX},
    {"value-size", required_argument, NULL, OPT_VALUE_SIZE},
    {"duration", required_argument, NULL, 'd'},
    {"requests", required_argument, NULL, 'n'},
    {"rate", required_argument, NULL, 'R'},
    {"prefill", no_argument, NULL, OPT_PREFILL},
    {"prefill-only", no_argument, NULL, OPT_PREFILL_ONLY},
    {"seed", required_argument, NULL, 'S'},
    {"json", no_argument, NULL, 'j'},
    {"quiet", no_argument, NULL, 'q'},
    {"drain-timeout", required_argument, NULL, OPT_DRAIN},
    {"fanout", no_argument, NULL, OPT_FANOUT},
    {"fanout-op", required_argument, NULL, OPT_FANOUT_OP},
    {"fanout-users", required_argument, NULL, OPT_FANOUT_USERS},
    {"fanout-max-followers", required_argument, NULL, OPT_FANOUT_MAX},
    {"fanout-mean", required_argument, NULL, OPT_FANOUT_MEAN},
    {"fanout-max-user", no_argument, NULL, OPT_FANOUT_MAX_USER},
    {"route", no_argument, NULL, OPT_ROUTE},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

void bench_opts_usage(FILE *f)
{
    fputs(
"mcstore-bench " PACKAGE_VERSION ": a load generator for mcstore and memcached\n"
"usage: mcstore-bench [options]\n"
"\n"
"Servers and connections\n"
"-s, --server=HOST:PORT[:W]   a server; repeat for several, keys then go to servers by\n"
"                             libmemcached's weighted ketama ring (MD5, 160 points per\n"
"                             server; W = weight, default 1) (default: " DEFAULT_SERVER ")\n"
"-t, --threads=N              threads, one libevent loop each (default: 2)\n"
"-c, --connections=N          connections per thread to each server (default: 25)\n"
"-P, --pipeline=N             requests in flight per connection (default: 1)\n"
"    --protocol=P             text, binary or meta (mg/ms) (default: text)\n"
"\n"
"Load\n"
"-r, --ratio=SET:GET          sets to gets, e.g. 1:10, 1:0 write-only, 0:1 read-only\n"
"                             (default: 1:10)\n"
"-k, --keys=N                 key space size (default: 100000)\n"
"    --key-pattern=P          uniform, zipf or sequential (default: uniform)\n"
"    --zipf-s=S               Zipf exponent for --key-pattern zipf (default: 0.99)\n"
"    --key-prefix=S           prepended to every key (default: \"key:\"; fan-out: none)\n"
"    --value-size=N|MIN-MAX   value bytes, fixed or uniform in MIN..MAX (default: 100)\n"
"-d, --duration=SEC           run this long (default: 10)\n"
"-n, --requests=N             run this many requests in all instead (fan-out: actions)\n"
"-R, --rate=OPS               at most this many requests per second in all; 0 = no limit\n"
"                             (default: 0)\n"
"    --prefill                set every key once, pipelined, before the timed run\n"
"                             (fan-out append: create every inbox empty)\n"
"    --prefill-only           prefill, report it, and stop (no timed run)\n"
"-S, --seed=N                 seed of every random choice (default: 1)\n"
"    --drain-timeout=SEC      after the run, wait this long for replies still due; those\n"
"                             that do not come count as errors (default: 10)\n"
"\n"
"Fan-out (social inboxes)\n"
"    --fanout                 each action of a user writes one item to the inbox of every\n"
"                             follower; follower counts follow a power law by rank\n"
"    --fanout-op=OP           set: set inbox:<follower>:<action>; append: append\n"
"                             \"<action> \" to inbox:<follower>, add when missing\n"
"                             (default: set)\n"
"    --fanout-users=N         users in the graph (default: 100000)\n"
"    --fanout-max-followers=N followers of the most-followed user (default: 40000)\n"
"    --fanout-mean=X          mean followers per user (default: 100)\n"
"    --fanout-max-user        run one action of the most-followed user alone and report\n"
"                             its completion time\n"
"\n"
"Output\n"
"-j, --json                   one JSON object on stdout instead of the table\n"
"-q, --quiet                  no progress line each second on stderr\n"
"    --route                  print \"<key> <host:port>\" for each key read from stdin\n"
"                             (the ring's choice) and exit\n"
"-h, --help                   this text\n"
"-V, --version                print the version\n"
"\n"
"Latency runs from queueing a request to parsing its reply, in a closed loop (no\n"
"coordinated-omission correction). Exit status: 0 run completed (errors are reported),\n"
"1 a server unreachable, 2 bad usage.\n", f);
}

const char *bench_protocol_name(enum bench_protocol p)
{
    switch (p) {
    case BENCH_PROTO_BINARY:
        return "binary";
    case BENCH_PROTO_META:
        return "meta";
    default:
        return "text";
    }
}

const char *bench_pattern_name(enum bench_pattern p)
{
    switch (p) {
    case BENCH_ZIPF:
        return "zipf";
    case BENCH_SEQUENTIAL:
        return "sequential";
    default:
        return "uniform";
    }
}

const char *bench_fanout_op_name(enum bench_fanout_op op)
{
    return op == BENCH_FANOUT_APPEND ? "append" : "set";
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "mcstore-bench: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(mcstore-bench -h lists the options)\n");
    return -1;
}

/* A whole unsigned decimal number in [min, max]. */
static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;

    if (s[0] < '0' || s[0] > '9') {
        return -1;
    }
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
    uint64_t v;
    if (parse_u64(s, min, max, &v) != 0) {
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

static int parse_double(const char *s, double min, double max, double *out)
{
    char *end;

    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

/* host:port[:weight], or [v6addr]:port[:weight] */
static int parse_server(const char *s, struct ring_node *n)
{
    const char *host = s, *hend, *rest;
    uint64_t port, weight = 1;

    if (s[0] == '[') {
        host = s + 1;
        hend = strchr(host, ']');
        if (hend == NULL || hend[1] != ':') {
            return -1;
        }
        rest = hend + 2;
    } else {
        hend = strchr(s, ':');
        if (hend == NULL) {
            return -1;
        }
        rest = hend + 1;
    }
    if (hend == host || (size_t)(hend - host) > RING_HOST_MAX) {
        return -1;
    }
    char buf[32];
    const char *colon = strchr(rest, ':');
    size_t plen = colon ? (size_t)(colon - rest) : strlen(rest);
    if (plen == 0 || plen >= sizeof(buf)) {
        return -1;
    }
    memcpy(buf, rest, plen);
    buf[plen] = '\0';
    if (parse_u64(buf, 1, 65535, &port) != 0) {
        return -1;
    }
    if (colon != NULL && parse_u64(colon + 1, 1, 1000000, &weight) != 0) {
        return -1;
    }
    memcpy(n->host, host, (size_t)(hend - host));
    n->host[hend - host] = '\0';
    n->port = (uint16_t)port;
    n->weight = (uint32_t)weight;
    return 0;
}

static int parse_ratio(const char *s, unsigned *set, unsigned *get)
{
    const char *colon = strchr(s, ':');
    char buf[32];

    if (colon == NULL || (size_t)(colon - s) >= sizeof(buf)) {
        return -1;
    }
    memcpy(buf, s, (size_t)(colon - s));
    buf[colon - s] = '\0';
    if (parse_uint(buf, 0, 1000000, set) != 0 || parse_uint(colon + 1, 0, 1000000, get) != 0
        || (*set == 0 && *get == 0)) {
        return -1;
    }
    return 0;
}

#define VALUE_SIZE_MAX (64u << 20)

static int parse_value_size(const char *s, uint32_t *min, uint32_t *max)
{
    const char *dash = strchr(s, '-');
    uint64_t a, b;
    char buf[32];

    if (dash == NULL) {
        if (parse_u64(s, 0, VALUE_SIZE_MAX, &a) != 0) {
            return -1;
        }
        *min = *max = (uint32_t)a;
        return 0;
    }
    if ((size_t)(dash - s) >= sizeof(buf)) {
        return -1;
    }
    memcpy(buf, s, (size_t)(dash - s));
    buf[dash - s] = '\0';
    if (parse_u64(buf, 0, VALUE_SIZE_MAX, &a) != 0
        || parse_u64(dash + 1, 0, VALUE_SIZE_MAX, &b) != 0 || a > b) {
        return -1;
    }
    *min = (uint32_t)a;
    *max = (uint32_t)b;
    return 0;
}

static void set_defaults(struct bench_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->threads = 2;
    o->connections = 25;
    o->pipeline = 1;
    o->protocol = BENCH_PROTO_TEXT;
    o->ratio_set = 1;
    o->ratio_get = 10;
    o->keys = 100000;
    o->pattern = BENCH_UNIFORM;
    o->zipf_s = 0.99;
    o->value_min = o->value_max = 100;
    o->duration = 10.0;
    o->seed = 1;
    o->drain_timeout = 10.0;
    o->fanout_op = BENCH_FANOUT_SET;
    o->fanout_users = 100000;
    o->fanout_max_followers = 40000;
    o->fanout_mean = 100.0;
}

static int parse(struct bench_opts *o, int argc, char **argv, bool *exit_ok)
{
    bool prefix_set = false;
    int ch;

    optind = 1;
    while ((ch = getopt_long(argc, argv, "s:t:c:P:r:k:d:n:R:S:jqhV", long_opts, NULL)) != -1) {
        switch (ch) {
        case 's':
            if (o->nservers == BENCH_SERVERS_MAX) {
                return usage_error("too many --server options (at most %d)", BENCH_SERVERS_MAX);
            }
            if (parse_server(optarg, &o->servers[o->nservers]) != 0) {
                return usage_error("--server %s: expected HOST:PORT or HOST:PORT:WEIGHT", optarg);
            }
            o->nservers++;
            break;
        case 't':
            if (parse_uint(optarg, 1, 1024, &o->threads) != 0) {
                return usage_error("--threads %s: expected 1..1024", optarg);
            }
            break;
        case 'c':
            if (parse_uint(optarg, 1, 10000, &o->connections) != 0) {
                return usage_error("--connections %s: expected 1..10000", optarg);
            }
            break;
        case 'P':
            if (parse_uint(optarg, 1, 65536, &o->pipeline) != 0) {
                return usage_error("--pipeline %s: expected 1..65536", optarg);
            }
            break;
        case OPT_PROTOCOL:
            if (strcmp(optarg, "text") == 0) {
                o->protocol = BENCH_PROTO_TEXT;
            } else if (strcmp(optarg, "binary") == 0) {
                o->protocol = BENCH_PROTO_BINARY;
            } else if (strcmp(optarg, "meta") == 0) {
                o->protocol = BENCH_PROTO_META;
            } else {
                return usage_error("--protocol %s: expected text, binary or meta", optarg);
            }
            break;
        case 'r':
            if (parse_ratio(optarg, &o->ratio_set, &o->ratio_get) != 0) {
                return usage_error("--ratio %s: expected SET:GET, e.g. 1:10 (not 0:0)", optarg);
            }
            break;
        case 'k':
            if (parse_u64(optarg, 1, UINT64_C(1) << 48, &o->keys) != 0) {
                return usage_error("--keys %s: expected 1..2^48", optarg);
            }
            break;
        case OPT_KEY_PATTERN:
            if (strcmp(optarg, "uniform") == 0) {
                o->pattern = BENCH_UNIFORM;
            } else if (strcmp(optarg, "zipf") == 0) {
                o->pattern = BENCH_ZIPF;
            } else if (strcmp(optarg, "sequential") == 0) {
                o->pattern = BENCH_SEQUENTIAL;
            } else {
                return usage_error("--key-pattern %s: expected uniform, zipf or sequential",
                                   optarg);
            }
            break;
        case OPT_ZIPF_S:
            if (parse_double(optarg, 0.001, 100.0, &o->zipf_s) != 0) {
                return usage_error("--zipf-s %s: expected a number in 0.001..100", optarg);
            }
            break;
        case OPT_KEY_PREFIX:
            if (strlen(optarg) > BENCH_PREFIX_MAX) {
                return usage_error("--key-prefix %s: at most %d bytes", optarg,
                                   BENCH_PREFIX_MAX);
            }
            for (const char *p = optarg; *p; p++) {
                if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
                    return usage_error("--key-prefix %s: no spaces or control characters",
                                       optarg);
                }
            }
            strcpy(o->key_prefix, optarg);
            prefix_set = true;
            break;
        case OPT_VALUE_SIZE:
            if (parse_value_size(optarg, &o->value_min, &o->value_max) != 0) {
                return usage_error("--value-size %s: expected N or MIN-MAX, up to 64 MiB",
                                   optarg);
            }
            break;
        case 'd':
            if (parse_double(optarg, 0.001, 1e7, &o->duration) != 0) {
                return usage_error("--duration %s: expected seconds > 0", optarg);
            }
            break;
        case 'n':
            if (parse_u64(optarg, 1, UINT64_MAX, &o->requests) != 0) {
                return usage_error("--requests %s: expected a count >= 1", optarg);
            }
            break;
        case 'R':
            if (parse_double(optarg, 0.0, 1e12, &o->rate) != 0) {
                return usage_error("--rate %s: expected requests per second (0 = no limit)",
                                   optarg);
            }
            break;
        case OPT_PREFILL:
            o->prefill = true;
            break;
        case OPT_PREFILL_ONLY:
            o->prefill = true;
            o->prefill_only = true;
            break;
        case 'S':
            if (parse_u64(optarg, 0, UINT64_MAX, &o->seed) != 0) {
                return usage_error("--seed %s: expected an unsigned number", optarg);
            }
            break;
        case 'j':
            o->json = true;
            break;
        case 'q':
            o->quiet = true;
            break;
        case OPT_DRAIN:
            if (parse_double(optarg, 0.0, 3600.0, &o->drain_timeout) != 0) {
                return usage_error("--drain-timeout %s: expected 0..3600 seconds", optarg);
            }
            break;
        case OPT_FANOUT:
            o->fanout = true;
            break;
        case OPT_FANOUT_OP:
            if (strcmp(optarg, "set") == 0) {
                o->fanout_op = BENCH_FANOUT_SET;
            } else if (strcmp(optarg, "append") == 0) {
                o->fanout_op = BENCH_FANOUT_APPEND;
            } else {
                return usage_error("--fanout-op %s: expected set or append", optarg);
            }
            break;
        case OPT_FANOUT_USERS:
            if (parse_u64(optarg, 2, UINT64_C(1) << 40, &o->fanout_users) != 0) {
                return usage_error("--fanout-users %s: expected 2..2^40", optarg);
            }
            break;
        case OPT_FANOUT_MAX:
            if (parse_uint(optarg, 1, 100000000, &o->fanout_max_followers) != 0) {
                return usage_error("--fanout-max-followers %s: expected 1..100000000", optarg);
            }
            break;
        case OPT_FANOUT_MEAN:
            if (parse_double(optarg, 1.0, 1e8, &o->fanout_mean) != 0) {
                return usage_error("--fanout-mean %s: expected a number >= 1", optarg);
            }
            break;
        case OPT_FANOUT_MAX_USER:
            o->fanout = true;
            o->fanout_max_user = true;
            break;
        case OPT_ROUTE:
            o->route = true;
            break;
        case 'h':
            bench_opts_usage(stdout);
            *exit_ok = true;
            return 0;
        case 'V':
            printf("mcstore-bench %s\n", PACKAGE_VERSION);
            *exit_ok = true;
            return 0;
        default:
            fprintf(stderr, "(mcstore-bench -h lists the options)\n");
            return -1;
        }
    }
    if (optind < argc) {
        return usage_error("unexpected argument: %s", argv[optind]);
    }
    if (o->nservers == 0) {
        parse_server(DEFAULT_SERVER, &o->servers[0]);
        o->nservers = 1;
    }
    if (!prefix_set) {
        strcpy(o->key_prefix, o->fanout ? "" : "key:");
    }
    if (o->fanout && (uint64_t)o->fanout_max_followers >= o->fanout_users) {
        return usage_error("--fanout-max-followers must be below --fanout-users");
    }
    if (o->fanout && o->fanout_mean > (double)o->fanout_max_followers) {
        return usage_error("--fanout-mean must not exceed --fanout-max-followers");
    }
    return 0;
}

enum bench_opts_result bench_opts_parse(struct bench_opts *o, int argc, char **argv)
{
    bool exit_ok = false;

    set_defaults(o);
    if (parse(o, argc, argv, &exit_ok) != 0) {
        return BENCH_OPTS_USAGE;
    }
    return exit_ok ? BENCH_OPTS_EXIT_OK : BENCH_OPTS_RUN;
}
