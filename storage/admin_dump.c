/* The portable dump format: mcstore-admin dump (a cursor over items.db) and load (batches). */
#include "config.h"

#include <db.h>

#include "storage/admin.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/bdb_env.h"
#include "storage/record.h"

/*
 * Format (doc/operations.md has the full description):
 *
 *   mcstore-dump 1\n
 *   set <key> <flags> <exptime> <bytes>\n<bytes of value>\n      (once per item, key order)
 *   end <number of items>\n
 *
 * <key> is the key with every byte outside 0x21..0x7e, and '%', written as %XX (two hex
 * digits); flags and exptime are unsigned 32-bit decimals (exptime absolute unix time, 0 =
 * never); the value is raw bytes, its length given by <bytes>.
 */

#define KEY_MAX 250                     /* the server's key limit */
#define VALUE_MAX (1024u * 1024 * 1024) /* the server's largest -I */
#define LINE_CAP 1024                   /* "set " + 3 * 250 + three numbers fits easily */
#define LOAD_BATCH_ITEMS 1000
#define LOAD_BATCH_BYTES (4u * 1024 * 1024)
#define DEADLOCK_RETRIES 100
#define PROGRESS_EVERY 1024
#define DUMP_BATCH_ITEMS 1000
#define DUMP_BATCH_BYTES (4u * 1024 * 1024)

/* ---- key encoding ----------------------------------------------------------------------- */

static const char HEX[] = "0123456789ABCDEF";

static bool key_byte_plain(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != '%';
}

/* Writes the encoded key to out (room for 3 * n + 1 bytes); returns its length. */
static size_t encode_key(const unsigned char *k, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (key_byte_plain(k[i])) {
            out[o++] = (char)k[i];
        } else {
            out[o++] = '%';
            out[o++] = HEX[k[i] >> 4];
            out[o++] = HEX[k[i] & 15];
        }
    }
    out[o] = '\0';
    return o;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

/* Decodes s[0..n) into out (room for n bytes). False on a bad escape or a raw byte that
 * must have been escaped. */
static bool decode_key(const char *s, size_t n, unsigned char *out, size_t *nout)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n) {
                return false;
            }
            int hi = hex_value(s[i + 1]);
            int lo = hex_value(s[i + 2]);
            if (hi < 0 || lo < 0) {
                return false;
            }
            out[o++] = (unsigned char)(hi << 4 | lo);
            i += 2;
        } else if (key_byte_plain(c)) {
            out[o++] = c;
        } else {
            return false;
        }
    }
    *nout = o;
    return true;
}

/* Strict unsigned decimal: digits only, no sign, no leading junk, at most max. */
static bool parse_uint(const char *s, size_t n, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 20) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* ---- dump ------------------------------------------------------------------------------- */

static int read_flush_marks(struct admin_ctx *ctx, DB_ENV *env, struct flush_marks *m)
{
    DB *meta;

    memset(m, 0, sizeof(*m));
    int ret = db_create(&meta, env, 0);
    if (ret != 0) {
        admin_errf(ctx, "cannot create a database handle: %s", db_strerror(ret));
        return ret;
    }
    ret = meta->open(meta, NULL, "meta.db", NULL, DB_BTREE, DB_RDONLY, 0);
    if (ret == ENOENT) {
        meta->close(meta, 0);
        return 0;
    }
    if (ret != 0) {
        admin_errf(ctx, "cannot open meta.db: %s", db_strerror(ret));
        meta->close(meta, 0);
        return ret;
    }
    ret = bdb_read_flush_marks(meta, m);
    meta->close(meta, 0);
    if (ret != 0 && ret != DB_NOTFOUND) {
        admin_errf(ctx, "cannot read the flush_all markers in meta.db: %s", db_strerror(ret));
        return ret;
    }
    return 0;
}

static int grow(void *pp, size_t *cap, size_t need)
{
    if (*cap >= need) {
        return 0;
    }
    size_t n = *cap < 256 ? 256 : *cap;
    while (n < need) {
        n *= 2;
    }
    void *p = realloc(*(void **)pp, n);
    if (p == NULL) {
        return ENOMEM;
    }
    *(void **)pp = p;
    *cap = n;
    return 0;
}

/* Records read in one go: u32 nkey, key, u32 nrecord, record. The cursor is closed (its
 * locks released) before they are written out, so a slow reader of the dump (a pipe into
 * gzip or ssh) never holds a page lock a server writer waits for. */
struct dump_batch {
    unsigned char *buf;
    size_t len;
    size_t cap;
    size_t n;
};

struct dump_state {
    DB *items;
    DBT k;
    DBT d;
    unsigned char *last;        /* the last key read: the next batch starts after it */
    size_t nlast;
    size_t last_cap;
    bool have_last;
    char *kbuf;                 /* the encoded key */
    size_t kbuf_cap;
};

/* Opens a cursor on the first key after the last one read (or on the first key). */
static int dump_position(struct dump_state *s, DBC **cur)
{
    int ret = s->items->cursor(s->items, NULL, cur, 0);
    if (ret != 0) {
        *cur = NULL;
        return ret;
    }
    if (!s->have_last) {
        return (*cur)->get(*cur, &s->k, &s->d, DB_FIRST);
    }
    void *p = realloc(s->k.data, s->nlast);
    if (p == NULL) {
        return ENOMEM;
    }
    s->k.data = p;
    memcpy(s->k.data, s->last, s->nlast);
    s->k.size = (uint32_t)s->nlast;
    ret = (*cur)->get(*cur, &s->k, &s->d, DB_SET_RANGE);
    if (ret == 0 && s->k.size == s->nlast && memcmp(s->k.data, s->last, s->nlast) == 0) {
        ret = (*cur)->get(*cur, &s->k, &s->d, DB_NEXT);
    }
    return ret;
}

/*
 * Reads up to a batch of records after the last key read. Returns 0 (more may follow),
 * DB_NOTFOUND (the batch holds the last records), a lock conflict (the batch holds what was
 * read before it; the caller retries) or another error.
 */
static int dump_fill(struct admin_ctx *ctx, struct dump_state *s, struct dump_batch *b)
{
    DBC *cur = NULL;
    b->len = 0;
    b->n = 0;
    int ret = dump_position(s, &cur);
    while (ret == 0) {
        size_t need = b->len + 8 + s->k.size + s->d.size;
        if (grow(&b->buf, &b->cap, need) != 0 || grow(&s->last, &s->last_cap, s->k.size) != 0) {
            admin_errf(ctx, "out of memory for a %u byte record", s->d.size);
            ret = ENOMEM;
            break;
        }
        unsigned char *p = b->buf + b->len;
        memcpy(p, &s->k.size, 4);
        memcpy(p + 4, s->k.data, s->k.size);
        memcpy(p + 4 + s->k.size, &s->d.size, 4);
        memcpy(p + 8 + s->k.size, s->d.data, s->d.size);
        b->len = need;
        b->n++;
        memcpy(s->last, s->k.data, s->k.size);
        s->nlast = s->k.size;
        s->have_last = true;
        if (b->n >= DUMP_BATCH_ITEMS || b->len >= DUMP_BATCH_BYTES) {
            break;
        }
        ret = cur->get(cur, &s->k, &s->d, DB_NEXT);
    }
    if (cur != NULL) {
        int t = cur->close(cur);
        if (t != 0 && (ret == 0 || ret == DB_NOTFOUND)) {
            ret = t;
        }
    }
    return ret;
}

/* Writes the live records of the batch. */
static enum admin_status dump_write(struct admin_ctx *ctx, struct dump_state *s,
                                    const struct dump_batch *b, const struct flush_marks *marks,
                                    uint32_t now, FILE *out, struct admin_counts *counts)
{
    size_t off = 0;
    for (size_t i = 0; i < b->n; i++) {
        uint32_t nkey;
        uint32_t nrec;
        const unsigned char *key = b->buf + off + 4;
        memcpy(&nkey, b->buf + off, 4);
        memcpy(&nrec, key + nkey, 4);
        const unsigned char *rec = key + nkey + 4;
        off += 8 + (size_t)nkey + nrec;

        struct record_header h;
        if (!record_decode_header(rec, nrec, &h)) {
            char shown[3 * 64 + 1];
            encode_key(key, nkey < 64 ? nkey : 64, shown);
            admin_errf(ctx, "the record of key '%s' has an unknown format (version %d, %u "
                       "bytes); this mcstore-admin knows version %d", shown,
                       nrec > 0 ? rec[0] : -1, nrec, RECORD_VERSION);
            return ADMIN_ERR;
        }
        if (record_dead(&h, now, marks)) {
            counts->expired++;
            continue;
        }
        size_t nvalue = nrec - RECORD_HEADER;
        if (grow(&s->kbuf, &s->kbuf_cap, 3 * (size_t)nkey + 1) != 0) {
            admin_errf(ctx, "out of memory");
            return ADMIN_ERR;
        }
        encode_key(key, nkey, s->kbuf);
        if (fprintf(out, "set %s %" PRIu32 " %" PRIu32 " %zu\n", s->kbuf, h.flags, h.exptime,
                    nvalue) < 0 ||
            fwrite(rec + RECORD_HEADER, 1, nvalue, out) != nvalue || putc('\n', out) == EOF) {
            admin_errf(ctx, "cannot write the dump: %s", strerror(errno));
            return ADMIN_ERR;
        }
        counts->items++;
        counts->bytes += nvalue;
    }
    return ADMIN_OK;
}

static enum admin_status dump_items(struct admin_ctx *ctx, DB_ENV *env, FILE *out,
                                    struct admin_counts *counts)
{
    struct dump_state s;
    struct dump_batch b;
    struct flush_marks marks;
    struct admin_progress prog;
    enum admin_status st = ADMIN_ERR;
    uint32_t now = (uint32_t)time(NULL);
    int conflicts = 0;
    int ret;

    memset(&s, 0, sizeof(s));
    memset(&b, 0, sizeof(b));
    memset(&prog, 0, sizeof(prog));
    if (read_flush_marks(ctx, env, &marks) != 0) {
        return ADMIN_ERR;
    }
    if ((ret = db_create(&s.items, env, 0)) != 0) {
        admin_errf(ctx, "cannot create a database handle: %s", db_strerror(ret));
        return ADMIN_ERR;
    }
    if ((ret = s.items->open(s.items, NULL, "items.db", NULL, DB_BTREE, DB_RDONLY, 0)) != 0) {
        admin_errf(ctx, "cannot open items.db: %s", db_strerror(ret));
        goto done;
    }
    DB_BTREE_STAT *bst = NULL;
    if (s.items->stat(s.items, NULL, &bst, DB_FAST_STAT) == 0 && bst != NULL) {
        prog.items_total = bst->bt_nkeys;
        free(bst);
    }
    s.k.flags = DB_DBT_REALLOC;
    s.d.flags = DB_DBT_REALLOC;

    if (fprintf(out, "%s %d\n", ADMIN_DUMP_MAGIC, ADMIN_DUMP_VERSION) < 0) {
        admin_errf(ctx, "cannot write the dump: %s", strerror(errno));
        goto done;
    }
    for (;;) {
        ret = dump_fill(ctx, &s, &b);
        if (ret == DB_LOCK_DEADLOCK || ret == DB_LOCK_NOTGRANTED) {
            /* a server writer won: write what was read, then go on after the last key */
            if (b.n == 0 && ++conflicts > DEADLOCK_RETRIES) {
                admin_errf(ctx, "items.db: %s, %d times in a row", db_strerror(ret),
                           conflicts);
                goto done;
            }
        } else if (ret != 0 && ret != DB_NOTFOUND) {
            if (ret != ENOMEM) {
                admin_errf(ctx, "cannot read items.db: %s", db_strerror(ret));
            }
            goto done;
        }
        if (b.n > 0) {
            conflicts = 0;
        }
        if (dump_write(ctx, &s, &b, &marks, now, out, counts) != ADMIN_OK) {
            goto done;
        }
        prog.items += b.n;
        prog.bytes = counts->bytes;
        admin_report(ctx, &prog);
        if (admin_interrupted(ctx)) {
            goto done;
        }
        if (ret == DB_NOTFOUND) {
            break;
        }
    }
    if (fprintf(out, "end %" PRIu64 "\n", counts->items) < 0 || fflush(out) != 0 ||
        ferror(out)) {
        admin_errf(ctx, "cannot write the dump: %s", strerror(errno));
        goto done;
    }
    if (prog.items_total < prog.items) {
        prog.items_total = prog.items;
    }
    admin_report(ctx, &prog);
    st = ADMIN_OK;
done:
    s.items->close(s.items, 0);
    free(s.k.data);
    free(s.d.data);
    free(s.last);
    free(s.kbuf);
    free(b.buf);
    return st;
}

enum admin_status admin_dump(struct admin_ctx *ctx, FILE *out, struct admin_counts *counts)
{
    struct admin_env ae;

    ctx->err[0] = '\0';
    memset(counts, 0, sizeof(*counts));
    enum admin_status st = admin_env_open(ctx, &ae, ADMIN_READ, "dump");
    if (st == ADMIN_OK) {
        admin_infof(ctx, "%s %s", ae.joined ? "joined the running server's environment in"
                                            : "no server running; locked and recovered",
                    ae.home);
        st = dump_items(ctx, ae.env, out, counts);
    }
    admin_env_close(&ae);
    return st;
}

/* ---- load ------------------------------------------------------------------------------- */

struct reader {
    FILE *in;
    uint64_t line;      /* lines read so far */
    uint64_t bytes;     /* bytes read so far */
};

enum line_result { LINE_OK, LINE_EOF, LINE_LONG, LINE_TRUNCATED, LINE_IOERR };

/* Reads one line (without its '\n') into buf, at most cap - 1 bytes. */
static enum line_result read_line(struct reader *r, char *buf, size_t cap, size_t *len)
{
    size_t n = 0;
    int c;
    while ((c = getc(r->in)) != EOF) {
        r->bytes++;
        if (c == '\n') {
            buf[n] = '\0';
            *len = n;
            r->line++;
            return LINE_OK;
        }
        if (n + 1 >= cap) {
            return LINE_LONG;
        }
        buf[n++] = (char)c;
    }
    if (ferror(r->in)) {
        return LINE_IOERR;
    }
    return n == 0 ? LINE_EOF : LINE_TRUNCATED;
}

/* Items parsed but not yet stored: u32 nkey, key, u32 nrecord, record (header + value). */
struct batch {
    unsigned char *buf;
    size_t len;
    size_t cap;
    size_t n;
};

static void put_u32(unsigned char *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

/* Stores the batch in one transaction, with fresh CAS values; retried on deadlock. */
static int commit_batch(struct admin_ctx *ctx, struct store *st, struct batch *b)
{
    int ret = 0;
    for (int attempt = 0; attempt <= DEADLOCK_RETRIES; attempt++) {
        db_seq_t first;
        DB_TXN *txn;
        /* one range of CAS values from the same sequence the server uses: never repeated */
        if ((ret = st->cas_seq->get(st->cas_seq, NULL, (int32_t)b->n, &first, 0)) != 0) {
            admin_errf(ctx, "cannot take CAS values from the cas sequence: %s",
                       db_strerror(ret));
            return ret;
        }
        if ((ret = st->env->txn_begin(st->env, NULL, &txn, 0)) != 0) {
            admin_errf(ctx, "cannot begin a transaction: %s", db_strerror(ret));
            return ret;
        }
        size_t off = 0;
        for (size_t i = 0; i < b->n && ret == 0; i++) {
            DBT k;
            DBT d;
            uint32_t nkey = get_u32(b->buf + off);
            unsigned char *key = b->buf + off + 4;
            uint32_t nrec = get_u32(key + nkey);
            unsigned char *rec = key + nkey + 4;
            off += 8 + (size_t)nkey + nrec;
            put_le64(rec + 16, (uint64_t)first + i);
            memset(&k, 0, sizeof(k));
            memset(&d, 0, sizeof(d));
            k.data = key;
            k.size = nkey;
            d.data = rec;
            d.size = nrec;
            ret = st->items->put(st->items, txn, &k, &d, 0);
        }
        if (ret == 0) {
            if ((ret = txn->commit(txn, 0)) != 0) {
                admin_errf(ctx, "cannot commit a batch: %s", db_strerror(ret));
                return ret;
            }
            b->len = 0;
            b->n = 0;
            return 0;
        }
        txn->abort(txn);
        if (ret != DB_LOCK_DEADLOCK && ret != DB_LOCK_NOTGRANTED) {
            admin_errf(ctx, "cannot store an item: %s", db_strerror(ret));
            return ret;
        }
    }
    admin_errf(ctx, "a batch lost %d deadlocks in a row: %s", DEADLOCK_RETRIES,
               db_strerror(ret));
    return ret;
}

static struct admin_ctx *load_ctx;  /* the store's log function has no argument of ours */

static void load_log(int level, const char *msg)
{
    (void)level;
    if (load_ctx != NULL) {
        admin_infof(load_ctx, "%s", msg);
    }
}

/* Checks the first line. */
static enum admin_status load_header(struct admin_ctx *ctx, struct reader *r)
{
    char line[LINE_CAP];
    size_t n;
    char want[64];
    snprintf(want, sizeof(want), "%s %d", ADMIN_DUMP_MAGIC, ADMIN_DUMP_VERSION);
    enum line_result lr = read_line(r, line, sizeof(line), &n);
    if (lr == LINE_IOERR) {
        admin_errf(ctx, "cannot read the dump: %s", strerror(errno));
        return ADMIN_ERR;
    }
    if (lr == LINE_EOF) {
        admin_errf(ctx, "the dump is empty");
        return ADMIN_ERR;
    }
    if (lr == LINE_OK && strcmp(line, want) == 0) {
        return ADMIN_OK;
    }
    size_t m = strlen(ADMIN_DUMP_MAGIC);
    if (lr == LINE_OK && n > m && strncmp(line, ADMIN_DUMP_MAGIC, m) == 0 && line[m] == ' ') {
        admin_errf(ctx, "unsupported dump version '%s' (this mcstore-admin reads version %d)",
                   line + m + 1, ADMIN_DUMP_VERSION);
    } else {
        admin_errf(ctx, "not an mcstore dump: the first line must be '%s'", want);
    }
    return ADMIN_ERR;
}

/* Errors name the record (counting from 1) and the byte offset where its line starts, which
 * stays exact even when values hold newlines (head -c / tail -c find it). */
#define LOAD_ERR(...) load_err(ctx, records + 1, line_at, __VA_ARGS__)

static void load_err(struct admin_ctx *ctx, uint64_t record, uint64_t offset, const char *fmt,
                     ...) __attribute__((format(printf, 4, 5)));

static void load_err(struct admin_ctx *ctx, uint64_t record, uint64_t offset, const char *fmt,
                     ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    admin_errf(ctx, "dump record %" PRIu64 " (at byte %" PRIu64 "): %s", record, offset, msg);
}

/* Splits line[0..n) at single spaces into at most max tokens; returns how many (max + 1 when
 * there are more). */
static int split(const char *line, size_t n, const char **tok, size_t *len, int max)
{
    int nt = 0;
    const char *p = line;
    const char *end = line + n;
    for (;;) {
        const char *sp = memchr(p, ' ', (size_t)(end - p));
        const char *stop = sp != NULL ? sp : end;
        if (nt == max) {
            return max + 1;
        }
        tok[nt] = p;
        len[nt] = (size_t)(stop - p);
        nt++;
        if (sp == NULL) {
            return nt;
        }
        p = sp + 1;
    }
}

/* Reads the dump's records into batches and stores them. */
static enum admin_status load_items(struct admin_ctx *ctx, struct store *st, struct reader *r,
                                    uint64_t in_size, struct admin_counts *counts)
{
    char line[LINE_CAP];
    struct batch b;
    struct admin_progress prog;
    enum admin_status result = ADMIN_ERR;
    uint64_t records = 0;
    uint32_t now = (uint32_t)time(NULL);
    size_t n;

    memset(&b, 0, sizeof(b));
    memset(&prog, 0, sizeof(prog));
    prog.bytes_total = in_size;
    for (;;) {
        uint64_t line_at = r->bytes;
        enum line_result lr = read_line(r, line, sizeof(line), &n);
        if (lr == LINE_IOERR) {
            LOAD_ERR("cannot read the dump: %s", strerror(errno));
            goto done;
        }
        if (lr == LINE_EOF || lr == LINE_TRUNCATED) {
            LOAD_ERR("the dump is truncated (it has no 'end' line)");
            goto done;
        }
        if (lr == LINE_LONG) {
            LOAD_ERR("line too long for a record line");
            goto done;
        }
        const char *tok[5];
        size_t len[5];
        int nt = split(line, n, tok, len, 5);
        if (nt == 2 && len[0] == 3 && memcmp(tok[0], "end", 3) == 0) {
            uint64_t declared;
            if (!parse_uint(tok[1], len[1], UINT64_MAX, &declared)) {
                LOAD_ERR("bad item count in the 'end' line");
                goto done;
            }
            if (declared != records) {
                LOAD_ERR("the 'end' line says %" PRIu64 " items but the dump has %" PRIu64
                         "; it is damaged", declared, records);
                goto done;
            }
            line_at = r->bytes;
            lr = read_line(r, line, sizeof(line), &n);
            if (lr != LINE_EOF) {
                LOAD_ERR("data after the 'end' line");
                goto done;
            }
            break;
        }
        uint64_t flags;
        uint64_t exptime;
        uint64_t nvalue;
        if (nt != 5 || len[0] != 3 || memcmp(tok[0], "set", 3) != 0) {
            LOAD_ERR("expected 'set <key> <flags> <exptime> <bytes>' or 'end <count>'");
            goto done;
        }
        if (!parse_uint(tok[2], len[2], UINT32_MAX, &flags)) {
            LOAD_ERR("bad flags '%.*s' (0 to 4294967295)", (int)len[2], tok[2]);
            goto done;
        }
        if (!parse_uint(tok[3], len[3], UINT32_MAX, &exptime)) {
            LOAD_ERR("bad exptime '%.*s' (absolute unix time, 0 = never)", (int)len[3], tok[3]);
            goto done;
        }
        if (!parse_uint(tok[4], len[4], VALUE_MAX, &nvalue)) {
            LOAD_ERR("bad value length '%.*s' (at most %u bytes)", (int)len[4], tok[4],
                     VALUE_MAX);
            goto done;
        }
        if (len[1] == 0 || len[1] > 3 * KEY_MAX) {
            LOAD_ERR("bad key length");
            goto done;
        }
        size_t need = b.len + 8 + len[1] + RECORD_HEADER + (size_t)nvalue;
        if (grow(&b.buf, &b.cap, need) != 0) {
            LOAD_ERR("out of memory for a %" PRIu64 " byte value", nvalue);
            goto done;
        }
        unsigned char *ent = b.buf + b.len;
        size_t nkey;
        if (!decode_key(tok[1], len[1], ent + 4, &nkey) || nkey == 0 || nkey > KEY_MAX) {
            LOAD_ERR("bad key '%.*s' (1 to %d bytes; bytes outside 0x21..0x7e and '%%' are "
                     "written %%XX)", (int)(len[1] < 80 ? len[1] : 80), tok[1], KEY_MAX);
            goto done;
        }
        unsigned char *rec = ent + 8 + nkey;
        if (fread(rec + RECORD_HEADER, 1, (size_t)nvalue, r->in) != nvalue) {
            LOAD_ERR("the dump ends inside the value%s", ferror(r->in) ? " (read error)" : "");
            goto done;
        }
        r->bytes += nvalue;
        if (getc(r->in) != '\n') {
            LOAD_ERR("the %" PRIu64 " byte value is not followed by a newline (wrong length?)",
                     nvalue);
            goto done;
        }
        r->bytes++;
        records++;
        if (exptime != 0 && exptime <= now) {
            counts->expired++;
        } else {
            struct record_header h = {(uint32_t)flags, (uint32_t)exptime, now, 0, 0};
            put_u32(ent, (uint32_t)nkey);
            put_u32(ent + 4 + nkey, RECORD_HEADER + (uint32_t)nvalue);
            record_encode_header(rec, &h);
            b.len += 8 + nkey + RECORD_HEADER + (size_t)nvalue;
            b.n++;
            counts->items++;
            counts->bytes += nvalue;
            if (b.n >= LOAD_BATCH_ITEMS || b.len >= LOAD_BATCH_BYTES) {
                if (commit_batch(ctx, st, &b) != 0) {
                    goto done;
                }
            }
        }
        if (records % PROGRESS_EVERY == 0) {
            prog.items = records;
            prog.bytes = r->bytes;
            admin_report(ctx, &prog);
            if (admin_interrupted(ctx)) {
                goto done;
            }
        }
    }
    if (b.n > 0 && commit_batch(ctx, st, &b) != 0) {
        goto done;
    }
    prog.items = records;
    prog.bytes = r->bytes;
    if (prog.bytes_total < prog.bytes) {
        prog.bytes_total = prog.bytes;
    }
    admin_report(ctx, &prog);
    result = ADMIN_OK;
done:
    if (result != ADMIN_OK) {
        /* what is in the uncommitted batch was not stored */
        counts->items -= b.n;
        char prev[sizeof(ctx->err)];
        snprintf(prev, sizeof(prev), "%s", ctx->err);
        admin_errf(ctx, "%s; %" PRIu64 " items were stored before this", prev, counts->items);
    }
    free(b.buf);
    return result;
}

enum admin_status admin_load(struct admin_ctx *ctx, FILE *in, uint64_t in_size,
                             struct admin_counts *counts)
{
    struct admin_env ae;
    struct reader r = {in, 0, 0};

    ctx->err[0] = '\0';
    memset(counts, 0, sizeof(*counts));
    /* a file that is not a dump must not touch the home at all */
    if (load_header(ctx, &r) != ADMIN_OK) {
        return ADMIN_ERR;
    }
    enum admin_status result = admin_env_open(ctx, &ae, ADMIN_EXCLUSIVE, "load");
    if (result != ADMIN_OK) {
        admin_env_close(&ae);
        return result;
    }
    result = ADMIN_ERR;
    struct store *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        admin_errf(ctx, "out of memory");
        goto done;
    }
    /* The server's own opening code: same databases, the expiry index associated with the
     * same callback (so it follows every put), the same cas sequence. We hold the lock, so
     * its normal recovery is safe. */
    st->cfg.home = ae.home;
    st->cfg.cache_bytes = 64u * 1024 * 1024;
    st->cfg.item_max = VALUE_MAX;
    st->cfg.checkpoint_sec = 60;
    st->cfg.sweep_interval_ms = 1000;
    st->cfg.durability = STORE_DURABILITY_OS;
    st->cfg.log_fn = load_log;
    load_ctx = ctx;
    int ret = bdb_env_open(st);
    if (ret != 0) {
        admin_errf(ctx, "cannot open the data home %s: %s", ae.home, db_strerror(ret));
        goto close;
    }
    result = load_items(ctx, st, &r, in_size, counts);
    /* what was committed goes to disk and into the databases before we let go */
    if ((ret = st->env->log_flush(st->env, NULL)) != 0 ||
        (ret = st->env->txn_checkpoint(st->env, 0, 0, DB_FORCE)) != 0) {
        if (result == ADMIN_OK) {
            admin_errf(ctx, "cannot flush the loaded items to disk: %s", db_strerror(ret));
            result = ADMIN_ERR;
        }
    }
close:
    bdb_env_close(st);
    load_ctx = NULL;
    free(st);
done:
    admin_env_close(&ae);
    return result;
}
