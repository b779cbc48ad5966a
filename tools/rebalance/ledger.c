/* mcstore-rebalance: the ledger's hash table and its append-only record file. */
#include "tools/rebalance/ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "protocol/meta.h"
#include "protocol/request.h"
#include "protocol/text.h"

#define LEDGER_MAGIC "mcstore-rebalance-ledger 1"

struct ledger {
    int fd;
    struct ledger_entry **slots;
    size_t nslots;              /* a power of two */
    size_t count;
    char *out;                  /* records not written yet */
    size_t nout;
    size_t capout;
};

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

uint64_t ledger_digest(uint32_t flags, const char *value, size_t nvalue)
{
    unsigned char f[4] = {(unsigned char)flags, (unsigned char)(flags >> 8),
                          (unsigned char)(flags >> 16), (unsigned char)(flags >> 24)};
    uint64_t h = fnv1a(UINT64_C(0xcbf29ce484222325), f, sizeof(f));
    return fnv1a(h, value, nvalue);
}

static size_t slot_of(const struct ledger *l, const char *key, size_t nkey)
{
    return (size_t)fnv1a(UINT64_C(0xcbf29ce484222325), key, nkey) & (l->nslots - 1);
}

struct ledger_entry *ledger_find(struct ledger *l, const char *key, size_t nkey)
{
    for (struct ledger_entry *e = l->slots[slot_of(l, key, nkey)]; e != NULL; e = e->next) {
        if (e->nkey == nkey && memcmp(e->key, key, nkey) == 0) {
            return e;
        }
    }
    return NULL;
}

static int grow(struct ledger *l)
{
    size_t n = l->nslots * 2;
    struct ledger_entry **slots = calloc(n, sizeof(*slots));
    if (slots == NULL) {
        return -1;
    }
    for (size_t i = 0; i < l->nslots; i++) {
        struct ledger_entry *e = l->slots[i];
        while (e != NULL) {
            struct ledger_entry *next = e->next;
            size_t s = (size_t)fnv1a(UINT64_C(0xcbf29ce484222325), e->key, e->nkey) & (n - 1);
            e->next = slots[s];
            slots[s] = e;
            e = next;
        }
    }
    free(l->slots);
    l->slots = slots;
    l->nslots = n;
    return 0;
}

/* The entry of key, created (all zero) when missing; NULL when out of memory. */
static struct ledger_entry *get_or_add(struct ledger *l, const char *key, size_t nkey)
{
    struct ledger_entry *e = ledger_find(l, key, nkey);
    if (e != NULL) {
        return e;
    }
    if (l->count >= l->nslots && grow(l) != 0) {
        return NULL;
    }
    e = calloc(1, sizeof(*e) + nkey);
    if (e == NULL) {
        return NULL;
    }
    e->nkey = (uint16_t)nkey;
    memcpy(e->key, key, nkey);
    size_t s = slot_of(l, key, nkey);
    e->next = l->slots[s];
    l->slots[s] = e;
    l->count++;
    return e;
}

size_t ledger_count(const struct ledger *l)
{
    return l->count;
}

/* Appends "<letter> <base64 key>[ <a>[ <b>]]\n" to the output buffer. */
static int put_record(struct ledger *l, char letter, const char *key, size_t nkey, int nnum,
                      uint64_t a, uint64_t b, bool b_hex)
{
    size_t need = 2 + PROTO_ITERATE_B64_MAX + 2 * 22 + 2;
    if (l->nout + need > l->capout) {
        size_t cap = l->capout ? l->capout * 2 : 64 * 1024;
        while (cap < l->nout + need) {
            cap *= 2;
        }
        char *p = realloc(l->out, cap);
        if (p == NULL) {
            return -1;
        }
        l->out = p;
        l->capout = cap;
    }
    char *p = l->out + l->nout;
    *p++ = letter;
    *p++ = ' ';
    p += proto_base64_encode((const unsigned char *)key, nkey, p);
    if (nnum >= 1) {
        *p++ = ' ';
        p += proto_u64_to_dec(p, a);
    }
    if (nnum >= 2) {
        if (b_hex) {
            static const char hex[] = "0123456789abcdef";
            *p++ = ' ';
            for (int i = 60; i >= 0; i -= 4) {
                *p++ = hex[(b >> i) & 0xf];
            }
        } else {
            *p++ = ' ';
            p += proto_u64_to_dec(p, b);
        }
    }
    *p++ = '\n';
    l->nout = (size_t)(p - l->out);
    return 0;
}

static void clear_pending(struct ledger_entry *e)
{
    e->has_pending = false;
    free(e->older);
    e->older = NULL;
    e->nolder = 0;
}

static bool older_has(const struct ledger_entry *e, uint64_t digest, uint64_t *src_cas)
{
    for (uint32_t i = 0; i < e->nolder; i++) {
        if (e->older[i * 2 + 1] == digest) {
            if (src_cas != NULL) {
                *src_cas = e->older[i * 2];
            }
            return true;
        }
    }
    return false;
}

bool ledger_pending_match(const struct ledger_entry *e, uint64_t digest, uint64_t *src_cas)
{
    if (e->has_pending && e->pend_digest == digest) {
        if (src_cas != NULL) {
            *src_cas = e->pend_src_cas;
        }
        return true;
    }
    return older_has(e, digest, src_cas);
}

/* Applies a record to the table (loading, or recording a new fact). */
static int apply(struct ledger *l, char letter, const char *key, size_t nkey, uint64_t a,
                 uint64_t b)
{
    struct ledger_entry *e = get_or_add(l, key, nkey);
    if (e == NULL) {
        return -1;
    }
    switch (letter) {
    case 'I':
        if (e->has_pending && e->pend_digest != b && !older_has(e, e->pend_digest, NULL)) {
            /* an earlier announced value may be the one on the target: keep it */
            uint64_t *p = realloc(e->older, (e->nolder + 1) * 2 * sizeof(*p));
            if (p == NULL) {
                return -1;
            }
            e->older = p;
            e->older[e->nolder * 2] = e->pend_src_cas;
            e->older[e->nolder * 2 + 1] = e->pend_digest;
            e->nolder++;
        }
        e->has_pending = true;
        e->pend_src_cas = a;
        e->pend_digest = b;
        break;
    case 'C':
        e->target = LEDGER_COPIED;
        e->src_cas = a;
        e->tgt_cas = b;
        clear_pending(e);
        break;
    case 'N':
        e->target = LEDGER_NEWER;
        e->src_cas = a;
        clear_pending(e);
        break;
    case 'D':
        e->src_deleted = true;
        break;
    case 'X':
        e->target = LEDGER_NONE;
        clear_pending(e);
        break;
    default:
        return -1;
    }
    return 0;
}

static int record(struct ledger *l, char letter, const char *key, size_t nkey, int nnum,
                  uint64_t a, uint64_t b, bool b_hex)
{
    size_t keep = l->nout;
    if (put_record(l, letter, key, nkey, nnum, a, b, b_hex) != 0) {
        return -1;
    }
    if (apply(l, letter, key, nkey, a, b) != 0) {
        l->nout = keep;
        return -1;
    }
    return 0;
}

int ledger_intent(struct ledger *l, const char *key, size_t nkey, uint64_t src_cas,
                  uint64_t digest)
{
    return record(l, 'I', key, nkey, 2, src_cas, digest, true);
}

int ledger_copied(struct ledger *l, const char *key, size_t nkey, uint64_t src_cas,
                  uint64_t tgt_cas)
{
    return record(l, 'C', key, nkey, 2, src_cas, tgt_cas, false);
}

int ledger_newer(struct ledger *l, const char *key, size_t nkey, uint64_t src_cas)
{
    return record(l, 'N', key, nkey, 1, src_cas, 0, false);
}

int ledger_src_deleted(struct ledger *l, const char *key, size_t nkey)
{
    return record(l, 'D', key, nkey, 0, 0, 0, false);
}

int ledger_tgt_deleted(struct ledger *l, const char *key, size_t nkey)
{
    return record(l, 'X', key, nkey, 0, 0, 0, false);
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int ledger_flush(struct ledger *l, bool sync)
{
    if (l->nout > 0) {
        if (write_all(l->fd, l->out, l->nout) != 0) {
            return -1;
        }
        l->nout = 0;
    }
    if (sync && fdatasync(l->fd) != 0) {
        return -1;
    }
    return 0;
}

void ledger_each(struct ledger *l, bool (*fn)(void *arg, struct ledger_entry *e), void *arg)
{
    for (size_t i = 0; i < l->nslots; i++) {
        for (struct ledger_entry *e = l->slots[i]; e != NULL; e = e->next) {
            if (!fn(arg, e)) {
                return;
            }
        }
    }
}

/* Strict unsigned decimal or (hex) 16 hex digits, over t[0..n). */
static bool parse_num(const char *t, size_t n, bool hex, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || (hex && n != 16) || (!hex && n > 20)) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned d;
        if (t[i] >= '0' && t[i] <= '9') {
            d = (unsigned)(t[i] - '0');
        } else if (hex && t[i] >= 'a' && t[i] <= 'f') {
            d = (unsigned)(t[i] - 'a' + 10);
        } else {
            return false;
        }
        if (!hex && v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = hex ? (v << 4) | d : v * 10 + d;
    }
    *out = v;
    return true;
}

/* One record line (without '\n'). Returns 0, or -1 when it does not parse or memory ran out. */
static int load_line(struct ledger *l, const char *line, size_t n)
{
    const char *tok[4];
    size_t ntok[4];
    size_t count = 0;
    size_t start = 0;

    for (size_t i = 0; i <= n; i++) {
        if (i == n || line[i] == ' ') {
            if (i == start || count == 4) {
                return -1;
            }
            tok[count] = line + start;
            ntok[count] = i - start;
            count++;
            start = i + 1;
        }
    }
    if (count < 2 || ntok[0] != 1) {
        return -1;
    }
    char letter = tok[0][0];
    size_t want = letter == 'I' || letter == 'C' ? 4 : letter == 'N' ? 3 : 2;
    if ((letter != 'I' && letter != 'C' && letter != 'N' && letter != 'D' && letter != 'X') ||
        count != want || ntok[1] % 4 != 0 || ntok[1] > PROTO_ITERATE_B64_MAX) {
        return -1;
    }
    unsigned char key[PROTO_ITERATE_B64_MAX];
    size_t nkey = proto_base64_decode(tok[1], ntok[1], key);
    if (nkey == 0 || nkey > PROTO_KEY_MAX) {
        return -1;
    }
    uint64_t a = 0;
    uint64_t b = 0;
    if (count >= 3 && !parse_num(tok[2], ntok[2], false, &a)) {
        return -1;
    }
    if (count == 4 && !parse_num(tok[3], ntok[3], letter == 'I', &b)) {
        return -1;
    }
    return apply(l, letter, (const char *)key, nkey, a, b);
}

/* Reads the whole file: header check, records, and the torn tail cut off. */
static int load(struct ledger *l, const char *path, const char *fingerprint, char *err,
                size_t errlen)
{
    struct stat st;
    if (fstat(l->fd, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    size_t size = (size_t)st.st_size;
    char *data = malloc(size + 1);
    if (data == NULL) {
        snprintf(err, errlen, "%s: out of memory reading it", path);
        return -1;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = pread(l->fd, data + got, size - got, (off_t)got);
        if (r <= 0) {
            if (r < 0 && errno == EINTR) {
                continue;
            }
            snprintf(err, errlen, "%s: %s", path, r < 0 ? strerror(errno) : "short read");
            free(data);
            return -1;
        }
        got += (size_t)r;
    }
    char header[128];
    int nh = snprintf(header, sizeof(header), "%s %s\n", LEDGER_MAGIC, fingerprint);
    if (size < (size_t)nh || memcmp(data, header, (size_t)nh) != 0) {
        snprintf(err, errlen, "%s is not the ledger of this rebalance (its header differs from "
                 "\"%s %s\")", path, LEDGER_MAGIC, fingerprint);
        free(data);
        return -1;
    }
    size_t pos = (size_t)nh;
    size_t lineno = 1;
    while (pos < size) {
        char *nl = memchr(data + pos, '\n', size - pos);
        if (nl == NULL) {
            /* a record torn by a crash during its append: it never counted */
            if (ftruncate(l->fd, (off_t)pos) != 0) {
                snprintf(err, errlen, "%s: cannot cut its torn last line: %s", path,
                         strerror(errno));
                free(data);
                return -1;
            }
            break;
        }
        lineno++;
        if (load_line(l, data + pos, (size_t)(nl - (data + pos))) != 0) {
            snprintf(err, errlen, "%s:%zu: not a ledger record (or out of memory)", path,
                     lineno);
            free(data);
            return -1;
        }
        pos = (size_t)(nl - data) + 1;
    }
    free(data);
    if (lseek(l->fd, 0, SEEK_END) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

struct ledger *ledger_open(const char *path, const char *fingerprint, bool create, char *err,
                           size_t errlen)
{
    struct ledger *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->nslots = 1024;
    l->slots = calloc(l->nslots, sizeof(*l->slots));
    l->fd = -1;
    if (l->slots == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    l->fd = open(path, O_RDWR | (create ? O_CREAT : 0) | O_CLOEXEC, 0600);
    if (l->fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    /* two runs on one ledger would each trust records the other is about to change */
    if (flock(l->fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen, "%s: %s", path, errno == EWOULDBLOCK
                 ? "another mcstore-rebalance is using it" : strerror(errno));
        goto fail;
    }
    if (create) {
        if (ftruncate(l->fd, 0) != 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            goto fail;
        }
        char header[128];
        int nh = snprintf(header, sizeof(header), "%s %s\n", LEDGER_MAGIC, fingerprint);
        if (write_all(l->fd, header, (size_t)nh) != 0 || fdatasync(l->fd) != 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            goto fail;
        }
        return l;
    }
    if (load(l, path, fingerprint, err, errlen) != 0) {
        goto fail;
    }
    return l;
fail:
    ledger_close(l);
    return NULL;
}

void ledger_close(struct ledger *l)
{
    if (l == NULL) {
        return;
    }
    if (l->fd >= 0) {
        ledger_flush(l, false);
        close(l->fd);
    }
    for (size_t i = 0; l->slots != NULL && i < l->nslots; i++) {
        struct ledger_entry *e = l->slots[i];
        while (e != NULL) {
            struct ledger_entry *next = e->next;
            free(e->older);
            free(e);
            e = next;
        }
    }
    free(l->slots);
    free(l->out);
    free(l);
}
