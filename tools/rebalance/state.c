/* mcstore-rebalance: reading and atomically writing the state file. */
#include "tools/rebalance/state.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STATE_MAGIC "mcstore-rebalance-state 1"

void rb_counters_each(struct rb_counters *c, void (*fn)(void *arg, const char *name,
                                                        uint64_t *field), void *arg)
{
    fn(arg, "scanned", &c->scanned);
    fn(arg, "moving", &c->moving);
    fn(arg, "moved", &c->moved);
    fn(arg, "already there", &c->already);
    fn(arg, "updated", &c->updated);
    fn(arg, "unchanged", &c->unchanged);
    fn(arg, "skipped because newer", &c->newer);
    fn(arg, "deleted", &c->deleted);
    fn(arg, "carried deletes", &c->carried_deletes);
    fn(arg, "stray", &c->stray);
    fn(arg, "errors", &c->errors);
}

void rb_counters_add(struct rb_counters *a, const struct rb_counters *b)
{
    const uint64_t *pb = (const uint64_t *)b;
    uint64_t *pa = (uint64_t *)a;
    for (size_t i = 0; i < sizeof(*a) / sizeof(uint64_t); i++) {
        pa[i] += pb[i];
    }
}

void rb_fingerprint(const char *old_desc, const char *new_desc, char *out)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    const char *parts[3] = {old_desc, "\n->\n", new_desc};
    for (int p = 0; p < 3; p++) {
        for (const unsigned char *s = (const unsigned char *)parts[p]; *s != '\0'; s++) {
            h ^= *s;
            h *= UINT64_C(0x100000001b3);
        }
    }
    snprintf(out, RB_FINGERPRINT_LEN + 1, "%016" PRIx64, h);
}

int rb_state_init(struct rb_state *st, const char *fingerprint, size_t nsources)
{
    memset(st, 0, sizeof(*st));
    snprintf(st->fingerprint, sizeof(st->fingerprint), "%s", fingerprint);
    st->sources = calloc(nsources ? nsources : 1, sizeof(*st->sources));
    if (st->sources == NULL) {
        return -1;
    }
    st->nsources = nsources;
    st->pass = 1;
    for (size_t i = 0; i < nsources; i++) {
        strcpy(st->sources[i].cursor, "0");
    }
    return 0;
}

void rb_state_free(struct rb_state *st)
{
    free(st->sources);
    st->sources = NULL;
    st->nsources = 0;
}

void rb_state_next_pass(struct rb_state *st)
{
    st->pass++;
    st->pass_done = false;
    st->runs = 0;
    memset(&st->total, 0, sizeof(st->total));
    for (size_t i = 0; i < st->nsources; i++) {
        st->sources[i].phase = RB_SRC_WALK;
        strcpy(st->sources[i].cursor, "0");
    }
}

struct counter_out {
    FILE *f;
};

static void put_counter(void *arg, const char *name, uint64_t *field)
{
    struct counter_out *o = arg;
    char key[64];
    size_t i = 0;
    /* "already there" -> "already_there": one token per name */
    for (; name[i] != '\0' && i < sizeof(key) - 1; i++) {
        key[i] = name[i] == ' ' ? '_' : name[i];
    }
    key[i] = '\0';
    fprintf(o->f, "count %s %" PRIu64 "\n", key, *field);
}

struct counter_in {
    const char *name;           /* with '_' for ' ' */
    uint64_t value;
    bool found;
};

static void get_counter(void *arg, const char *name, uint64_t *field)
{
    struct counter_in *in = arg;
    size_t n = strlen(name);
    if (in->found || strlen(in->name) != n) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i] == ' ' ? '_' : name[i];
        if (c != in->name[i]) {
            return;
        }
    }
    *field = in->value;
    in->found = true;
}

static int write_file(FILE *f, const struct rb_state *st)
{
    struct counter_out o = {f};
    struct rb_counters total = st->total;
    fprintf(f, "%s\n", STATE_MAGIC);
    fprintf(f, "fingerprint %s\n", st->fingerprint);
    fprintf(f, "pass %" PRIu64 "\n", st->pass);
    fprintf(f, "pass_done %d\n", st->pass_done ? 1 : 0);
    fprintf(f, "runs %" PRIu64 "\n", st->runs);
    fprintf(f, "sources %zu\n", st->nsources);
    for (size_t i = 0; i < st->nsources; i++) {
        fprintf(f, "source %zu %d %s\n", i, st->sources[i].phase, st->sources[i].cursor);
    }
    rb_counters_each(&total, put_counter, &o);
    fprintf(f, "end\n");
    return ferror(f) ? -1 : 0;
}

static int fsync_dir_of(const char *path)
{
    char copy[4096];
    snprintf(copy, sizeof(copy), "%s", path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int rb_state_save(const char *path, const struct rb_state *st, bool sync, char *err,
                  size_t errlen)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        snprintf(err, errlen, "%s: path too long", path);
        return -1;
    }
    FILE *f = fopen(tmp, "we");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    int rc = write_file(f, st);
    if (rc == 0 && fflush(f) != 0) {
        rc = -1;
    }
    if (rc == 0 && sync && fsync(fileno(f)) != 0) {
        rc = -1;
    }
    int saved = errno;
    if (fclose(f) != 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(saved));
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "rename %s to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (sync && fsync_dir_of(path) != 0) {
        snprintf(err, errlen, "fsync of the directory of %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (*s < '0' || *s > '9') {
        return false;
    }
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0') {
        return false;
    }
    *out = (uint64_t)v;
    return true;
}

static bool cursor_ok(const char *c)
{
    size_t n = strlen(c);
    if (n == 0 || n > PROTO_ITERATE_B64_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = c[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '+' || ch == '/' || ch == '=')) {
            return false;
        }
    }
    return true;
}

/* One "name value..." line into st; false when it does not parse. */
static bool load_line(struct rb_state *st, char *line, size_t *next_source)
{
    char *save = NULL;
    char *name = strtok_r(line, " ", &save);
    char *a = strtok_r(NULL, " ", &save);
    char *b = strtok_r(NULL, " ", &save);
    char *c = strtok_r(NULL, " ", &save);
    char *extra = strtok_r(NULL, " ", &save);
    uint64_t v;

    if (name == NULL || extra != NULL) {
        return false;
    }
    if (strcmp(name, "fingerprint") == 0 && a != NULL && b == NULL &&
        strlen(a) == RB_FINGERPRINT_LEN) {
        memcpy(st->fingerprint, a, RB_FINGERPRINT_LEN + 1);
    } else if (strcmp(name, "pass") == 0 && a != NULL && b == NULL && parse_u64(a, &v) &&
               v >= 1) {
        st->pass = v;
    } else if (strcmp(name, "pass_done") == 0 && a != NULL && b == NULL && parse_u64(a, &v) &&
               v <= 1) {
        st->pass_done = v == 1;
    } else if (strcmp(name, "runs") == 0 && a != NULL && b == NULL && parse_u64(a, &v)) {
        st->runs = v;
    } else if (strcmp(name, "sources") == 0 && a != NULL && b == NULL && parse_u64(a, &v) &&
               v >= 1 && v <= 100000 && st->sources == NULL) {
        st->sources = calloc((size_t)v, sizeof(*st->sources));
        if (st->sources == NULL) {
            return false;
        }
        st->nsources = (size_t)v;
    } else if (strcmp(name, "source") == 0 && c != NULL && st->sources != NULL &&
               parse_u64(a, &v) && v == *next_source && v < st->nsources) {
        uint64_t phase;
        if (!parse_u64(b, &phase) || phase > RB_SRC_DONE || !cursor_ok(c)) {
            return false;
        }
        st->sources[v].phase = (int)phase;
        strcpy(st->sources[v].cursor, c);
        (*next_source)++;
    } else if (strcmp(name, "count") == 0 && b != NULL && c == NULL && parse_u64(b, &v)) {
        struct counter_in in = {a, v, false};
        rb_counters_each(&st->total, get_counter, &in);
        return in.found;
    } else {
        return false;
    }
    return true;
}

int rb_state_load(const char *path, struct rb_state *st, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        if (errno == ENOENT) {
            return 1;
        }
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct rb_state s;
    memset(&s, 0, sizeof(s));
    char line[1024];
    size_t lineno = 0;
    size_t next_source = 0;
    bool ended = false;
    bool ok = true;
    while (ok && fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        size_t n = strlen(line);
        if (n == 0 || line[n - 1] != '\n' || ended) {
            ok = false;
            break;
        }
        line[n - 1] = '\0';
        if (lineno == 1) {
            ok = strcmp(line, STATE_MAGIC) == 0;
        } else if (strcmp(line, "end") == 0) {
            ended = true;
        } else {
            ok = load_line(&s, line, &next_source);
        }
    }
    fclose(f);
    if (!ok || !ended || s.sources == NULL || next_source != s.nsources ||
        s.fingerprint[0] == '\0' || s.pass == 0) {
        snprintf(err, errlen, "%s: not a complete mcstore-rebalance state file (line %zu)", path,
                 lineno);
        free(s.sources);
        return -1;
    }
    *st = s;
    return 0;
}
