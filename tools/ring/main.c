/* mcstore-ring: which node owns a key, how keys spread, what moves between two node lists. */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/ring/ring.h"

#define DEFAULT_SPREAD_KEYS 100000
#define SPREAD_KEYS_MAX 100000000ull
#define PREFIX_MAX 200
#define HASH_SPACE 4294967296.0

/* Exit codes (also in mcstore-ring.1). */
enum {
    EXIT_OK = 0,
    EXIT_ERROR = 1,     /* bad command line, node list or YAML; unreadable input */
};

/* Where a ring comes from: a node list or a twemproxy pool. */
struct ring_source {
    const char *nodes;          /* --nodes / --to-nodes */
    const char *yaml;           /* --twemproxy / --to-twemproxy */
    const char *pool;           /* --pool / --to-pool */
};

struct opts {
    bool kind_set;
    enum ring_kind kind;
    bool hash_set;
    enum ring_hash hash;
    const char *hash_tag;
    struct ring_source from, to;
    uint64_t keys;
    const char *prefix;
    bool keys_only;
};

/* A built ring and the address text of each of its nodes. */
struct built {
    struct ring *ring;
    char (*addr)[RING_LABEL_MAX];
    size_t n;
};

static void usage(FILE *f)
{
    fprintf(f,
        "Usage: mcstore-ring [RING] COMMAND [ARGS]\n"
        "\n"
        "RING (which continuum, over which nodes):\n"
        "  --nodes H:P[:W][,...]   the nodes, in the client's order (IPv6 as [addr]:port)\n"
        "  --twemproxy FILE        the servers, hash and hash_tag of a nutcracker pool\n"
        "  --pool NAME             that pool (default: the first in FILE)\n"
        "  --ketama                libmemcached's ketama (pylibmc {\"ketama\": True}); the\n"
        "                          default with --nodes, as in mcstore-rebalance\n"
        "  --ketama-weighted       libmemcached's weighted ketama (pylibmc\n"
        "                          {\"ketama_weighted\": True}, mcstore-bench)\n"
        "  --twemproxy-ketama      nutcracker's distribution: ketama (implied by --twemproxy)\n"
        "  --hash NAME             the key hash: md5, one_at_a_time, fnv1_64, fnv1a_64,\n"
        "                          fnv1_32, fnv1a_32, crc16, crc32, crc32a, hsieh, murmur,\n"
        "                          jenkins (default: the client's)\n"
        "  --hash-tag XY           twemproxy's hash_tag, e.g. \"{}\"\n"
        "\n"
        "Commands:\n"
        "  owner KEY... | owner -  print \"KEY<TAB>host:port\" for each key (- : keys from\n"
        "                          standard input, one per line)\n"
        "  spread [--keys N] [--prefix P] | spread -\n"
        "                          per node: weight, points, share of the hash space, and\n"
        "                          how many of the keys P0..P(N-1) (default key:, %d) or\n"
        "                          of the keys on standard input it owns\n"
        "  diff (--to-nodes LIST | --to-twemproxy FILE [--to-pool NAME]) [--keys-only] [-]\n"
        "                          the fraction of the hash space that changes owner, per\n"
        "                          old -> new pair, the moved hash ranges, and with - the\n"
        "                          keys on standard input that move (--keys-only: just\n"
        "                          \"KEY<TAB>old<TAB>new\" lines)\n"
        "  points                  every point of the continuum: \"VALUE<TAB>host:port\"\n"
        "\n"
        "  -h, --help              this help\n"
        "  -V, --version           the version\n"
        "\n"
        "Exit status: 0 done, 1 bad command line, node list or file.\n"
        "See mcstore-ring(1) and doc/operations.md.\n",
        DEFAULT_SPREAD_KEYS);
}

static int fail(const char *fmt, ...)
{
    va_list ap;

    fputs("mcstore-ring: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_ERROR;
}

static void addr_text(const struct ring_node *n, char *buf, size_t len)
{
    if (strchr(n->host, ':') != NULL) {
        snprintf(buf, len, "[%s]:%u", n->host, (unsigned)n->port);
    } else {
        snprintf(buf, len, "%s:%u", n->host, (unsigned)n->port);
    }
}

static void unbuild(struct built *b)
{
    ring_free(b->ring);
    free(b->addr);
}

static int addr_cmp(const void *x, const void *y, void *arg)
{
    const struct built *built = arg;
    size_t a = *(const size_t *)x, b = *(const size_t *)y;
    int c = strcmp(built->addr[a], built->addr[b]);

    return c != 0 ? c : (a < b ? -1 : a > b);
}

/* Refuses two nodes at one address (twemproxy allows it under two names). */
static int check_addresses(const struct built *b)
{
    size_t *order = malloc(b->n * sizeof(*order));
    int rc = 0;

    if (order == NULL) {
        return fail("out of memory");
    }
    for (size_t i = 0; i < b->n; i++) {
        order[i] = i;
    }
    qsort_r(order, b->n, sizeof(*order), addr_cmp, (void *)b);
    for (size_t i = 1; i < b->n && rc == 0; i++) {
        if (strcmp(b->addr[order[i - 1]], b->addr[order[i]]) == 0) {
            rc = fail("nodes %zu and %zu are both at %s", order[i - 1] + 1, order[i] + 1,
                      b->addr[order[i]]);
        }
    }
    free(order);
    return rc;
}

/* Builds the ring of src: a twemproxy file says all, a node list takes base's settings. */
static int build(const struct opts *o, const struct ring_source *src,
                 const struct ring_config *base, struct built *b)
{
    struct ring_config cfg = *base;
    struct ring_node *nodes = NULL;
    size_t n = 0;
    char err[512];

    memset(b, 0, sizeof(*b));
    if (src->yaml != NULL) {
        if (ring_load_twemproxy(src->yaml, src->pool, &cfg, &nodes, &n, err, sizeof(err)) != 0) {
            return fail("%s", err);
        }
        /* the file says what twemproxy does; flags may only agree with it (a --to-twemproxy
         * file may well differ: moving from client-side hashing to nutcracker) */
        if (src == &o->from && o->kind_set && o->kind != RING_TWEMPROXY_KETAMA) {
            free(nodes);
            return fail("--%s does not go with a twemproxy file", ring_kind_name(o->kind));
        }
    } else {
        if (ring_parse_nodes(src->nodes, &nodes, &n, err, sizeof(err)) != 0) {
            return fail("%s", err);
        }
    }
    if (ring_validate(&cfg, nodes, n, err, sizeof(err)) != 0) {
        free(nodes);
        return fail("%s", err);
    }
    b->addr = calloc(n, sizeof(*b->addr));
    b->ring = ring_create(&cfg, nodes, n);
    if (b->addr == NULL || b->ring == NULL) {
        free(nodes);
        free(b->addr);
        ring_free(b->ring);
        return fail("cannot build the ring (out of memory, or MD5 unavailable)");
    }
    b->n = n;
    for (size_t i = 0; i < n; i++) {
        addr_text(&nodes[i], b->addr[i], sizeof(b->addr[i]));
    }
    free(nodes);
    /* keys move between addresses: two nodes on one address would hide moves */
    if (check_addresses(b) != 0) {
        unbuild(b);
        return EXIT_ERROR;
    }
    return EXIT_OK;
}

/* One key per line of f (without its line end); calls fn for each. */
static int each_line(FILE *f, int (*fn)(void *, const char *, size_t), void *arg)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = EXIT_OK;

    while ((len = getline(&line, &cap, f)) != -1) {
        size_t n = (size_t)len;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
            n--;
        }
        line[n] = '\0';
        if ((rc = fn(arg, line, n)) != EXIT_OK) {
            break;
        }
    }
    if (rc == EXIT_OK && ferror(f)) {
        rc = fail("reading standard input failed");
    }
    free(line);
    return rc;
}

static void print_header(const struct built *b, const char *what)
{
    const struct ring_config *c = ring_config(b->ring);

    printf("%sring: %s, hash %s", what, ring_kind_name(c->kind), ring_hash_name(c->hash));
    if (c->hash_tag[0] != '\0') {
        printf(", hash_tag %s", c->hash_tag);
    }
    printf(", %zu nodes, %zu points\n", b->n, ring_point_count(b->ring));
}

/* --- owner --- */

static int owner_one(void *arg, const char *key, size_t n)
{
    const struct built *b = arg;

    printf("%s\t%s\n", key, b->addr[ring_node_for_key(b->ring, key, n)]);
    return EXIT_OK;
}

static int cmd_owner(const struct built *b, int argc, char **argv)
{
    if (argc == 0) {
        return fail("owner: give keys, or - to read them from standard input");
    }
    if (argc == 1 && strcmp(argv[0], "-") == 0) {
        return each_line(stdin, owner_one, (void *)b);
    }
    for (int i = 0; i < argc; i++) {
        owner_one((void *)b, argv[i], strlen(argv[i]));
    }
    return EXIT_OK;
}

/* --- spread --- */

struct counts {
    const struct built *b;
    uint64_t *count;
    uint64_t total;
};

static int count_one(void *arg, const char *key, size_t n)
{
    struct counts *c = arg;

    c->count[ring_node_for_key(c->b->ring, key, n)]++;
    c->total++;
    return EXIT_OK;
}

static int cmd_spread(const struct opts *o, const struct built *b, int argc, char **argv)
{
    struct counts c = {b, calloc(b->n, sizeof(uint64_t)), 0};
    uint64_t *space = calloc(b->n, sizeof(uint64_t));
    size_t *points = calloc(b->n, sizeof(size_t));
    int rc = EXIT_OK;
    int width = 4;

    if (c.count == NULL || space == NULL || points == NULL) {
        rc = fail("out of memory");
        goto done;
    }
    if (argc == 1 && strcmp(argv[0], "-") == 0) {
        if ((rc = each_line(stdin, count_one, &c)) != EXIT_OK) {
            goto done;
        }
    } else if (argc == 0) {
        char key[PREFIX_MAX + 32];
        for (uint64_t i = 0; i < o->keys; i++) {
            int len = snprintf(key, sizeof(key), "%s%" PRIu64, o->prefix, i);
            count_one(&c, key, (size_t)len);
        }
    } else {
        rc = fail("spread: unexpected argument %s", argv[0]);
        goto done;
    }
    ring_node_space(b->ring, space);
    for (size_t i = 0; i < ring_point_count(b->ring); i++) {
        uint32_t v;
        size_t node;
        ring_point(b->ring, i, &v, &node);
        points[node]++;
    }
    for (size_t i = 0; i < b->n; i++) {
        int w = (int)strlen(b->addr[i]);
        width = w > width ? w : width;
    }
    print_header(b, "");
    printf("%-*s %8s %7s %10s %10s %9s\n", width, "node", "weight", "points", "space",
           "keys", "key share");
    for (size_t i = 0; i < b->n; i++) {
        const struct ring_node *n = ring_node(b->ring, i);
        printf("%-*s %8u %7zu %9.4f%% %10" PRIu64 " %8.4f%%\n", width, b->addr[i],
               (unsigned)(n->weight ? n->weight : 1), points[i],
               100.0 * (double)space[i] / HASH_SPACE, c.count[i],
               c.total ? 100.0 * (double)c.count[i] / (double)c.total : 0.0);
    }
    printf("%-*s %8s %7zu %9.4f%% %10" PRIu64 " %8.4f%%\n", width, "total", "",
           ring_point_count(b->ring), 100.0, c.total, c.total ? 100.0 : 0.0);

done:
    free(c.count);
    free(space);
    free(points);
    return rc;
}

/* --- diff --- */

struct moves {
    const struct built *a, *b;
    bool keys_only;
    uint64_t read, moved;
};

static int move_one(void *arg, const char *key, size_t n)
{
    struct moves *m = arg;
    const char *from = m->a->addr[ring_node_for_key(m->a->ring, key, n)];
    const char *to = m->b->addr[ring_node_for_key(m->b->ring, key, n)];

    m->read++;
    if (strcmp(from, to) != 0) {
        m->moved++;
        printf("%s%s\t%s\t%s\n", m->keys_only ? "" : "  ", key, from, to);
    }
    return EXIT_OK;
}

struct pair {
    size_t from, to;            /* indexes into the old and new rings */
    uint64_t space;
};

static int pair_cmp(const void *x, const void *y)
{
    const struct pair *a = x, *b = y;

    if (a->space != b->space) {
        return a->space > b->space ? -1 : 1;
    }
    if (a->from != b->from) {
        return a->from < b->from ? -1 : 1;
    }
    return a->to < b->to ? -1 : a->to > b->to;
}

static int cmd_diff(const struct opts *o, const struct built *a, int argc, char **argv)
{
    struct built b;
    struct ring_range *ranges = NULL;
    struct pair *pairs = NULL;
    size_t nranges = 0, npairs = 0;
    uint64_t moved = 0;
    bool with_keys = false;
    int rc;

    if (o->to.nodes == NULL && o->to.yaml == NULL) {
        return fail("diff: give the new nodes with --to-nodes or --to-twemproxy");
    }
    if (argc == 1 && strcmp(argv[0], "-") == 0) {
        with_keys = true;
    } else if (argc > 0) {
        return fail("diff: unexpected argument %s", argv[0]);
    }
    if (o->keys_only && !with_keys) {
        return fail("diff: --keys-only needs the keys on standard input (-)");
    }
    /* a new node list keeps the old ring's kind, hash and hash tag */
    if ((rc = build(o, &o->to, ring_config(a->ring), &b)) != EXIT_OK) {
        return rc;
    }
    if (o->keys_only) {
        struct moves m = {a, &b, true, 0, 0};
        rc = each_line(stdin, move_one, &m);
        goto done;
    }
    if (ring_diff(a->ring, b.ring, &ranges, &nranges) != 0
        || (pairs = calloc(a->n * b.n, sizeof(*pairs))) == NULL) {
        rc = fail("out of memory");
        goto done;
    }
    for (size_t i = 0; i < nranges; i++) {
        const struct ring_range *r = &ranges[i];
        if (strcmp(a->addr[r->old_node], b.addr[r->new_node]) != 0) {
            uint64_t len = (uint64_t)r->end - r->start + 1;
            moved += len;
            pairs[r->old_node * b.n + r->new_node].space += len;
        }
    }
    for (size_t i = 0; i < a->n * b.n; i++) {
        if (pairs[i].space > 0) {
            pairs[npairs++] = (struct pair){i / b.n, i % b.n, pairs[i].space};
        }
    }
    qsort(pairs, npairs, sizeof(*pairs), pair_cmp);
    print_header(a, "old ");
    print_header(&b, "new ");
    printf("moved: %.6f of the hash space (%" PRIu64 " of 4294967296 hash values)\n",
           (double)moved / HASH_SPACE, moved);
    printf("pairs: %zu\n", npairs);
    for (size_t i = 0; i < npairs; i++) {
        printf("  %s -> %s\t%.6f\n", a->addr[pairs[i].from], b.addr[pairs[i].to],
               (double)pairs[i].space / HASH_SPACE);
    }
    size_t nmoved = 0;
    for (size_t i = 0; i < nranges; i++) {
        nmoved += strcmp(a->addr[ranges[i].old_node], b.addr[ranges[i].new_node]) != 0;
    }
    printf("ranges: %zu\n", nmoved);
    for (size_t i = 0; i < nranges; i++) {
        const struct ring_range *r = &ranges[i];
        if (strcmp(a->addr[r->old_node], b.addr[r->new_node]) != 0) {
            printf("  %010" PRIu32 "..%010" PRIu32 "\t%s -> %s\n", r->start, r->end,
                   a->addr[r->old_node], b.addr[r->new_node]);
        }
    }
    if (with_keys) {
        struct moves m = {a, &b, false, 0, 0};
        printf("keys:\n");
        fflush(stdout);
        rc = each_line(stdin, move_one, &m);
        printf("keys read: %" PRIu64 ", moved: %" PRIu64 " (%.4f%%)\n", m.read, m.moved,
               m.read ? 100.0 * (double)m.moved / (double)m.read : 0.0);
    }

done:
    free(ranges);
    free(pairs);
    unbuild(&b);
    return rc;
}

/* --- points --- */

static int cmd_points(const struct built *b, int argc)
{
    if (argc > 0) {
        return fail("points: takes no arguments");
    }
    for (size_t i = 0; i < ring_point_count(b->ring); i++) {
        uint32_t v;
        size_t node;
        ring_point(b->ring, i, &v, &node);
        printf("%010" PRIu32 "\t%s\n", v, b->addr[node]);
    }
    return EXIT_OK;
}

static int parse_args(struct opts *o, int argc, char **argv, bool *done)
{
    enum { O_NODES = 256, O_TWEMPROXY, O_POOL, O_KETAMA, O_KETAMA_W, O_TW_KETAMA, O_HASH,
           O_HASH_TAG, O_TO_NODES, O_TO_TWEMPROXY, O_TO_POOL, O_KEYS, O_PREFIX, O_KEYS_ONLY };
    static const struct option longopts[] = {
        {"nodes", required_argument, NULL, O_NODES},
        {"twemproxy", required_argument, NULL, O_TWEMPROXY},
        {"pool", required_argument, NULL, O_POOL},
        {"ketama", no_argument, NULL, O_KETAMA},
        {"ketama-weighted", no_argument, NULL, O_KETAMA_W},
        {"twemproxy-ketama", no_argument, NULL, O_TW_KETAMA},
        {"hash", required_argument, NULL, O_HASH},
        {"hash-tag", required_argument, NULL, O_HASH_TAG},
        {"to-nodes", required_argument, NULL, O_TO_NODES},
        {"to-twemproxy", required_argument, NULL, O_TO_TWEMPROXY},
        {"to-pool", required_argument, NULL, O_TO_POOL},
        {"keys", required_argument, NULL, O_KEYS},
        {"prefix", required_argument, NULL, O_PREFIX},
        {"keys-only", no_argument, NULL, O_KEYS_ONLY},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    while ((ch = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
        switch (ch) {
        case O_NODES:
            o->from.nodes = optarg;
            break;
        case O_TWEMPROXY:
            o->from.yaml = optarg;
            break;
        case O_POOL:
            o->from.pool = optarg;
            break;
        case O_KETAMA:
        case O_KETAMA_W:
        case O_TW_KETAMA: {
            enum ring_kind k = ch == O_KETAMA     ? RING_LIBMEMCACHED_KETAMA
                               : ch == O_KETAMA_W ? RING_LIBMEMCACHED_KETAMA_WEIGHTED
                                                  : RING_TWEMPROXY_KETAMA;
            if (o->kind_set && o->kind != k) {
                return fail("--%s and --%s: choose one kind of ring", ring_kind_name(o->kind),
                            ring_kind_name(k));
            }
            o->kind_set = true;
            o->kind = k;
            break;
        }
        case O_HASH:
            if (ring_hash_parse(optarg, &o->hash) != 0) {
                return fail("--hash %s: unknown hash (see --help)", optarg);
            }
            o->hash_set = true;
            break;
        case O_HASH_TAG:
            if (strlen(optarg) != 2) {
                return fail("--hash-tag %s: two characters, like \"{}\"", optarg);
            }
            o->hash_tag = optarg;
            break;
        case O_TO_NODES:
            o->to.nodes = optarg;
            break;
        case O_TO_TWEMPROXY:
            o->to.yaml = optarg;
            break;
        case O_TO_POOL:
            o->to.pool = optarg;
            break;
        case O_KEYS: {
            char *end;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (end == optarg || *end != '\0' || optarg[0] == '-' || v > SPREAD_KEYS_MAX) {
                return fail("--keys %s: a number 0..%llu", optarg, SPREAD_KEYS_MAX);
            }
            o->keys = v;
            break;
        }
        case O_PREFIX:
            if (strlen(optarg) > PREFIX_MAX) {
                return fail("--prefix: at most %d bytes", PREFIX_MAX);
            }
            o->prefix = optarg;
            break;
        case O_KEYS_ONLY:
            o->keys_only = true;
            break;
        case 'h':
            usage(stdout);
            *done = true;
            return EXIT_OK;
        case 'V':
            printf("mcstore-ring %s\n", PACKAGE_VERSION);
            *done = true;
            return EXIT_OK;
        default:
            fprintf(stderr, "Try 'mcstore-ring --help'.\n");
            return EXIT_ERROR;
        }
    }
    if ((o->from.nodes == NULL) == (o->from.yaml == NULL)) {
        return fail("give the nodes with --nodes LIST or --twemproxy FILE (one of them)");
    }
    if (o->to.nodes != NULL && o->to.yaml != NULL) {
        return fail("--to-nodes and --to-twemproxy: give one of them");
    }
    if ((o->from.pool != NULL && o->from.yaml == NULL) || (o->to.pool != NULL && !o->to.yaml)) {
        return fail("--pool / --to-pool go with --twemproxy / --to-twemproxy");
    }
    if (o->from.yaml != NULL && (o->hash_set || o->hash_tag != NULL)) {
        return fail("--hash and --hash-tag come from the twemproxy file; leave them out");
    }
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    struct opts o = {.keys = DEFAULT_SPREAD_KEYS, .prefix = "key:"};
    struct built a;
    bool done = false;
    int rc;

    if ((rc = parse_args(&o, argc, argv, &done)) != EXIT_OK || done) {
        return rc;
    }
    if (optind >= argc) {
        return fail("no command: owner, spread, diff or points (see --help)");
    }
    const char *cmd = argv[optind];
    int nargs = argc - optind - 1;
    char **args = argv + optind + 1;
    if (strcmp(cmd, "owner") != 0 && strcmp(cmd, "spread") != 0 && strcmp(cmd, "diff") != 0
        && strcmp(cmd, "points") != 0) {
        return fail("unknown command %s: owner, spread, diff or points", cmd);
    }
    if (strcmp(cmd, "diff") != 0 && (o.to.nodes || o.to.yaml || o.keys_only)) {
        return fail("--to-nodes, --to-twemproxy and --keys-only go with diff");
    }
    /* the same default as mcstore-rebalance: the ring pylibmc's {"ketama": True} builds */
    struct ring_config base = {RING_LIBMEMCACHED_KETAMA, RING_HASH_DEFAULT, ""};
    if (o.kind_set) {
        base.kind = o.kind;
    }
    if (o.hash_set) {
        base.hash = o.hash;
    }
    if (o.hash_tag != NULL) {
        memcpy(base.hash_tag, o.hash_tag, 2);
    }
    if ((rc = build(&o, &o.from, &base, &a)) != EXIT_OK) {
        return rc;
    }
    if (strcmp(cmd, "owner") == 0) {
        rc = cmd_owner(&a, nargs, args);
    } else if (strcmp(cmd, "spread") == 0) {
        rc = cmd_spread(&o, &a, nargs, args);
    } else if (strcmp(cmd, "diff") == 0) {
        rc = cmd_diff(&o, &a, nargs, args);
    } else {
        rc = cmd_points(&a, nargs);
    }
    unbuild(&a);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        return fail("writing standard output failed");
    }
    return rc;
}
