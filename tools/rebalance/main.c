/* mcstore-rebalance: command line, signals and the summary around one rebalance pass. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/rebalance/rebalance.h"
#include "tools/ring/ring.h"

/* Exit codes (the man page lists them). */
#define EXIT_OK 0
#define EXIT_ERRORS 1
#define EXIT_USAGE 2
#define EXIT_INTERRUPTED 4

#define DEFAULT_STATE "./mcstore-rebalance.state"
#define DEFAULT_BATCH 100
#define MAX_BATCH 10000

enum {
    OPT_RING = 256,
    OPT_HASH,
    OPT_DELETE_MOVED,
    OPT_TIMEOUT,
    OPT_MASTER_WAIT,
    OPT_RETRY_FOR,
};

static const struct option long_opts[] = {
    {"from", required_argument, NULL, 'f'},
    {"to", required_argument, NULL, 't'},
    {"ring", required_argument, NULL, OPT_RING},
    {"hash", required_argument, NULL, OPT_HASH},
    {"state", required_argument, NULL, 's'},
    {"rate", required_argument, NULL, 'r'},
    {"batch", required_argument, NULL, 'b'},
    {"delete-moved", no_argument, NULL, OPT_DELETE_MOVED},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"master-wait", required_argument, NULL, OPT_MASTER_WAIT},
    {"retry-for", required_argument, NULL, OPT_RETRY_FOR},
    {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static void usage(FILE *f)
{
    fputs(
"mcstore-rebalance " PACKAGE_VERSION ": moves the keys whose owner changes between two rings\n"
"usage: mcstore-rebalance --from OLD --to NEW [options]\n"
"\n"
"OLD, NEW: a node list \"host:port[:weight],...\" or twemproxy:FILE[:POOL] (a nutcracker\n"
"YAML configuration: its servers, hash and hash_tag; POOL defaults to the first pool).\n"
"\n"
"    --ring=KIND        the ring of node lists: ketama (pylibmc {\"ketama\": True}, the\n"
"                       default), ketama-weighted (pylibmc {\"ketama_weighted\": True}) or\n"
"                       twemproxy (nutcracker's ketama)\n"
"    --hash=NAME        the key hash of node lists (default: the ring's own): md5,\n"
"                       one_at_a_time, fnv1_64, fnv1a_64, fnv1_32, fnv1a_32, crc16, crc32,\n"
"                       crc32a, hsieh, murmur, jenkins\n"
"-s, --state=FILE      the checkpoint (default: " DEFAULT_STATE "); the ledger of\n"
"                       copied keys is FILE.ledger\n"
"-r, --rate=KEYS       keys scanned per second at most (default: unlimited)\n"
"-b, --batch=N         keys per iterate call and per pipelined round (default: 100)\n"
"    --delete-moved    delete moved keys from their old owner once the new one holds them\n"
"    --timeout=SEC     a server that does not answer within SEC fails (default: 30)\n"
"    --master-wait=SEC how long to wait for a replication group to elect (default: 30)\n"
"    --retry-for=SEC   how long to retry a failing node before stopping (default: 60)\n"
"-q, --quiet           no progress bar and no summary\n"
"-v, --verbose         a line per batch and per notable key on stderr\n"
"-h, --help / -V, --version\n"
"\n"
"Each run is one pass: it resumes an interrupted pass from the checkpoint, or starts a\n"
"catch-up pass when the last one finished. Exit status: 0 done, 1 errors, 2 usage,\n"
"4 interrupted (SIGINT/SIGTERM; the checkpoint is written). See mcstore-rebalance(1).\n",
        f);
}

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static bool parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < lo || v > hi) {
        return false;
    }
    *out = v;
    return true;
}

/* Appends to a malloc'd description. */
static int desc_add(char **d, size_t *n, size_t *cap, const char *s)
{
    size_t len = strlen(s);
    if (*n + len + 1 > *cap) {
        size_t c = *cap ? *cap * 2 : 256;
        while (c < *n + len + 1) {
            c *= 2;
        }
        char *p = realloc(*d, c);
        if (p == NULL) {
            return -1;
        }
        *d = p;
        *cap = c;
    }
    memcpy(*d + *n, s, len + 1);
    *n += len;
    return 0;
}

/* What identifies a ring for the fingerprint: kind, resolved hash, tag, nodes in order. */
static char *describe(const struct ring *r)
{
    const struct ring_config *c = ring_config(r);
    char *d = NULL;
    size_t n = 0;
    size_t cap = 0;
    char buf[RING_LABEL_MAX + RING_HOST_MAX + 64];

    snprintf(buf, sizeof(buf), "%s %s tag=%s", ring_kind_name(c->kind), ring_hash_name(c->hash),
             c->hash_tag);
    if (desc_add(&d, &n, &cap, buf) != 0) {
        free(d);
        return NULL;
    }
    for (size_t i = 0; i < ring_node_count(r); i++) {
        const struct ring_node *rn = ring_node(r, i);
        char label[RING_LABEL_MAX];
        snprintf(buf, sizeof(buf), " %s=%s:%u:%" PRIu32, ring_node_label(rn, label, sizeof(label)),
                 rn->host, rn->port, rn->weight ? rn->weight : 1);
        if (desc_add(&d, &n, &cap, buf) != 0) {
            free(d);
            return NULL;
        }
    }
    return d;
}

/* OLD or NEW into a ring. Returns 0, or -1 after saying why. */
static int load_ring(const char *what, const char *spec, enum ring_kind kind,
                     enum ring_hash hash, struct rb_ring *out)
{
    struct ring_config cfg = {.kind = kind, .hash = hash};
    struct ring_node *nodes = NULL;
    size_t n = 0;
    char err[512];

    if (strncmp(spec, "twemproxy:", 10) == 0) {
        const char *rest = spec + 10;
        char file[4096];
        const char *pool = NULL;
        snprintf(file, sizeof(file), "%s", rest);
        if (access(file, R_OK) != 0) {
            /* FILE:POOL */
            char *colon = strrchr(file, ':');
            if (colon != NULL) {
                *colon = '\0';
                pool = rest + (colon - file) + 1;
            }
        }
        if (ring_load_twemproxy(file, pool, &cfg, &nodes, &n, err, sizeof(err)) != 0) {
            fprintf(stderr, "mcstore-rebalance: %s %s: %s\n", what, spec, err);
            return -1;
        }
    } else if (ring_parse_nodes(spec, &nodes, &n, err, sizeof(err)) != 0) {
        fprintf(stderr, "mcstore-rebalance: %s %s: %s\n", what, spec, err);
        return -1;
    }
    if (ring_validate(&cfg, nodes, n, err, sizeof(err)) != 0) {
        fprintf(stderr, "mcstore-rebalance: %s %s: %s\n", what, spec, err);
        free(nodes);
        return -1;
    }
    out->ring = ring_create(&cfg, nodes, n);
    free(nodes);
    if (out->ring == NULL || (out->desc = describe(out->ring)) == NULL) {
        fprintf(stderr, "mcstore-rebalance: %s: cannot build the ring (out of memory?)\n", what);
        return -1;
    }
    return 0;
}

struct summary {
    FILE *f;
};

static void put_line(void *arg, const char *name, uint64_t *v)
{
    struct summary *s = arg;
    fprintf(s->f, "%s: %" PRIu64 "\n", name, *v);
}

static void print_summary(const struct rb_result *res)
{
    static const char *const ends[] = {"complete", "interrupted", "failed", "refused"};
    struct summary s = {stdout};
    struct rb_counters run = res->run;
    printf("pass: %" PRIu64 " %s%s\n", res->pass, ends[res->end],
           res->resumed ? " (resumed)" : "");
    rb_counters_each(&run, put_line, &s);
    printf("elapsed: %.3f s\n", res->elapsed);
    printf("keys/s: %.0f\n", res->elapsed > 0 ? (double)res->run.scanned / res->elapsed : 0.0);
    printf("pass scanned: %" PRIu64 "\n", res->pass_total.scanned);
    printf("pass moving: %" PRIu64 "\n", res->pass_total.moving);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    const char *from = NULL;
    const char *to = NULL;
    const char *state = DEFAULT_STATE;
    enum ring_kind kind = RING_LIBMEMCACHED_KETAMA;
    enum ring_hash hash = RING_HASH_DEFAULT;
    double rate = 0;
    double batch = DEFAULT_BATCH;
    double timeout = 30;
    double master_wait = 30;
    double retry_for = 60;
    bool delete_moved = false;
    bool quiet = false;
    bool verbose = false;
    int opt;

    while ((opt = getopt_long(argc, argv, "f:t:s:r:b:qvhV", long_opts, NULL)) != -1) {
        switch (opt) {
        case 'f':
            from = optarg;
            break;
        case 't':
            to = optarg;
            break;
        case 's':
            state = optarg;
            break;
        case 'r':
            if (!parse_double(optarg, 0, 1e9, &rate)) {
                fprintf(stderr, "mcstore-rebalance: --rate: not a number of keys per second: "
                        "%s\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'b':
            if (!parse_double(optarg, 1, MAX_BATCH, &batch) || batch != floor(batch)) {
                fprintf(stderr, "mcstore-rebalance: --batch: 1 to %d keys, not %s\n", MAX_BATCH,
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_RING:
            if (strcmp(optarg, "ketama") == 0) {
                kind = RING_LIBMEMCACHED_KETAMA;
            } else if (strcmp(optarg, "ketama-weighted") == 0) {
                kind = RING_LIBMEMCACHED_KETAMA_WEIGHTED;
            } else if (strcmp(optarg, "twemproxy") == 0) {
                kind = RING_TWEMPROXY_KETAMA;
            } else {
                fprintf(stderr, "mcstore-rebalance: --ring: ketama, ketama-weighted or "
                        "twemproxy, not %s\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_HASH:
            if (ring_hash_parse(optarg, &hash) != 0) {
                fprintf(stderr, "mcstore-rebalance: --hash: unknown hash %s\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_DELETE_MOVED:
            delete_moved = true;
            break;
        case OPT_TIMEOUT:
        case OPT_MASTER_WAIT:
        case OPT_RETRY_FOR: {
            double v;
            if (!parse_double(optarg, opt == OPT_TIMEOUT ? 0.1 : 0, 86400, &v)) {
                fprintf(stderr, "mcstore-rebalance: --%s: not a number of seconds: %s\n",
                        opt == OPT_TIMEOUT ? "timeout"
                        : opt == OPT_MASTER_WAIT ? "master-wait" : "retry-for", optarg);
                return EXIT_USAGE;
            }
            *(opt == OPT_TIMEOUT ? &timeout : opt == OPT_MASTER_WAIT ? &master_wait
                                                                     : &retry_for) = v;
            break;
        }
        case 'q':
            quiet = true;
            break;
        case 'v':
            verbose = true;
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        case 'V':
            printf("mcstore-rebalance %s\n", PACKAGE_VERSION);
            return EXIT_OK;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind != argc || from == NULL || to == NULL) {
        fprintf(stderr, "mcstore-rebalance: %s\n", optind != argc ? "unexpected arguments"
                                                                  : "--from and --to are needed");
        usage(stderr);
        return EXIT_USAGE;
    }

    struct rb_config cfg = {
        .state_path = state,
        .rate = rate,
        .batch = (uint32_t)batch,
        .delete_moved = delete_moved,
        .verbose = verbose,
        .progress = !quiet && isatty(STDERR_FILENO),
        .timeout_ms = (int)(timeout * 1000),
        .master_wait = master_wait,
        .retry_for = retry_for,
        .stop = &stop_flag,
    };
    if (load_ring("--from", from, kind, hash, &cfg.old_ring) != 0 ||
        load_ring("--to", to, kind, hash, &cfg.new_ring) != 0) {
        ring_free(cfg.old_ring.ring);
        free(cfg.old_ring.desc);
        ring_free(cfg.new_ring.ring);
        free(cfg.new_ring.desc);
        return EXIT_USAGE;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct rb_result res;
    rb_run(&cfg, &res);
    ring_free(cfg.old_ring.ring);
    free(cfg.old_ring.desc);
    ring_free(cfg.new_ring.ring);
    free(cfg.new_ring.desc);

    if (res.end == RB_END_REFUSED) {
        fprintf(stderr, "mcstore-rebalance: %s\n", res.why);
        return EXIT_USAGE;
    }
    if (res.end == RB_END_FAILED) {
        fprintf(stderr, "mcstore-rebalance: stopped: %s (the checkpoint is written: run again "
                "to resume)\n", res.why);
    }
    if (!quiet) {
        print_summary(&res);
    }
    switch (res.end) {
    case RB_END_INTERRUPTED:
        return EXIT_INTERRUPTED;
    case RB_END_FAILED:
        return EXIT_ERRORS;
    default:
        return res.run.errors > 0 ? EXIT_ERRORS : EXIT_OK;
    }
}
