/* The --auth-file password database: parsing, PBKDF2 checks, a cache of verified passwords. */
#include "config.h"

#include "daemon/auth.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define HASH_LEN 32             /* SHA-256's size: PBKDF2's dkLen in our format */
#define SALT_MIN 8
#define SALT_MAX 64
#define SALT_NEW 16             /* what auth_make_line draws */
#define CACHE_KEY_LEN 32

struct auth_entry {
    char *user;
    size_t nuser;
    unsigned iterations;
    unsigned char salt[SALT_MAX];
    size_t nsalt;
    unsigned char hash[HASH_LEN];
    /* The last password that passed PBKDF2 for this user, as SHA-256(cache_key || salt ||
     * password): a later check of the same password costs one SHA-256. Guarded by db->lock. */
    bool cached;
    unsigned char cached_digest[HASH_LEN];
};

/* One loaded file. Immutable once built, except the cache fields; freed by its last user, so
 * a SIGHUP reload never pulls a table from under a check that is running. */
struct auth_table {
    int refs;                       /* guarded by db->lock; the db holds one */
    struct auth_entry *entries;
    size_t n;
    struct auth_entry dummy;        /* unknown users are checked against it (same cost) */
    unsigned char cache_key[CACHE_KEY_LEN]; /* random per table: cache digests are not plain
                                               SHA-256 of salt||password */
};

struct auth_db {
    pthread_mutex_t lock;           /* guards cur, every table's refs and cache fields */
    struct auth_table *cur;
};

static void set_err(char *err, size_t nerr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t nerr, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || nerr == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(err, nerr, fmt, ap);
    va_end(ap);
}

bool auth_user_valid(const char *user, size_t n)
{
    if (n == 0 || n > AUTH_USER_MAX || user[0] == '#') {
        return false; /* a line starting with '#' is a comment: such a name cannot be stored */
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)user[i];
        /* ':' ends the name in the file; spaces separate text-protocol tokens */
        if (ch <= ' ' || ch == 0x7f || ch == ':') {
            return false;
        }
    }
    return true;
}

void auth_printable(char *out, size_t nout, const char *user, size_t n)
{
    size_t o = 0;
    if (nout == 0) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)user[i];
        char tmp[5];
        size_t len;
        if (ch >= 0x20 && ch < 0x7f && ch != '\\' && ch != '\'') {
            tmp[0] = (char)ch;
            len = 1;
        } else {
            snprintf(tmp, sizeof(tmp), "\\x%02x", ch);
            len = 4;
        }
        if (o + len >= nout) {
            break;
        }
        memcpy(out + o, tmp, len);
        o += len;
    }
    out[o] = '\0';
}

/* ---- base64 (standard alphabet, '=' padding, nothing else accepted) ----------------------- */

static bool b64_char(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '+' || ch == '/';
}

/* Decodes s[0..n) into out (cap bytes at most). Returns the length or -1. */
static int b64_decode(const char *s, size_t n, unsigned char *out, size_t cap)
{
    unsigned char tmp[3 * ((SALT_MAX + 2) / 3) + 3];
    size_t pad = 0;

    if (n == 0 || n % 4 != 0 || n / 4 * 3 > sizeof(tmp)) {
        return -1;
    }
    if (s[n - 1] == '=') {
        pad = s[n - 2] == '=' ? 2 : 1;
    }
    for (size_t i = 0; i < n - pad; i++) {
        if (!b64_char(s[i])) {
            return -1;
        }
    }
    size_t len = n / 4 * 3 - pad;
    if (len > cap || EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)n) < 0) {
        return -1;
    }
    memcpy(out, tmp, len);
    OPENSSL_cleanse(tmp, sizeof(tmp));
    return (int)len;
}

/* ---- tables ------------------------------------------------------------------------------- */

static void table_free(struct auth_table *t)
{
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i < t->n; i++) {
        free(t->entries[i].user);
    }
    OPENSSL_cleanse(t->entries, t->n * sizeof(*t->entries));
    free(t->entries);
    OPENSSL_cleanse(t, sizeof(*t));
    free(t);
}

/* Parses the part after "user:". Returns NULL or the reason it is malformed. */
static const char *parse_hash(const char *s, size_t n, struct auth_entry *e)
{
    static const char prefix[] = AUTH_SCHEME "$";
    size_t plen = sizeof(prefix) - 1;
    if (n < plen || memcmp(s, prefix, plen) != 0) {
        return "the hash does not start with \"" AUTH_SCHEME "$\" (plain-text passwords are not "
               "accepted; make lines with mcstore-admin passwd)";
    }
    s += plen;
    n -= plen;

    /* iterations: decimal digits only */
    size_t i = 0;
    uint64_t it = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        it = it * 10 + (uint64_t)(s[i] - '0');
        if (it > AUTH_MAX_ITERATIONS) {
            break;
        }
        i++;
    }
    if (i == 0 || i == n || s[i] != '$') {
        if (it > AUTH_MAX_ITERATIONS) {
            return "iteration count over 10000000";
        }
        return "expected " AUTH_SCHEME "$<iterations>$<salt base64>$<hash base64>";
    }
    if (it < AUTH_MIN_ITERATIONS) {
        return "iteration count under 1000";
    }
    e->iterations = (unsigned)it;
    s += i + 1;
    n -= i + 1;

    const char *dollar = memchr(s, '$', n);
    if (dollar == NULL) {
        return "expected " AUTH_SCHEME "$<iterations>$<salt base64>$<hash base64>";
    }
    int nsalt = b64_decode(s, (size_t)(dollar - s), e->salt, sizeof(e->salt));
    if (nsalt < SALT_MIN) {
        return "the salt is not base64 of 8 to 64 bytes";
    }
    e->nsalt = (size_t)nsalt;
    n -= (size_t)(dollar - s) + 1;
    s = dollar + 1;
    if (b64_decode(s, n, e->hash, sizeof(e->hash)) != HASH_LEN) {
        return "the hash is not base64 of 32 bytes";
    }
    return NULL;
}

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r';
}

/* Parses one line (without its '\n') into t. Returns NULL, or why it is malformed. */
static const char *parse_line(struct auth_table *t, size_t *cap, char *line, size_t len)
{
    while (len > 0 && is_blank(line[len - 1])) {
        len--;
    }
    size_t lead = 0;
    while (lead < len && is_blank(line[lead])) {
        lead++;
    }
    if (lead == len || line[lead] == '#') {
        return NULL;
    }
    if (memchr(line, '\0', len) != NULL) {
        return "NUL byte in the line";
    }
    const char *colon = memchr(line, ':', len);
    if (colon == NULL) {
        return "expected user:" AUTH_SCHEME "$<iterations>$<salt>$<hash>";
    }
    size_t nuser = (size_t)(colon - line);
    if (!auth_user_valid(line, nuser)) {
        return "invalid user name (1 to 255 bytes, no ':', spaces, control characters or "
               "leading '#')";
    }
    for (size_t i = 0; i < t->n; i++) {
        if (t->entries[i].nuser == nuser && memcmp(t->entries[i].user, line, nuser) == 0) {
            return "the user appears twice";
        }
    }
    if (t->n == *cap) {
        size_t ncap = *cap == 0 ? 8 : *cap * 2;
        struct auth_entry *p = realloc(t->entries, ncap * sizeof(*p));
        if (p == NULL) {
            return "out of memory";
        }
        t->entries = p;
        *cap = ncap;
    }
    struct auth_entry *e = &t->entries[t->n];
    memset(e, 0, sizeof(*e));
    const char *why = parse_hash(colon + 1, len - nuser - 1, e);
    if (why != NULL) {
        return why;
    }
    e->user = malloc(nuser + 1);
    if (e->user == NULL) {
        return "out of memory";
    }
    memcpy(e->user, line, nuser);
    e->user[nuser] = '\0';
    e->nuser = nuser;
    t->n++;
    return NULL;
}

static struct auth_table *table_load(const char *path, char *err, size_t nerr)
{
    struct auth_table *t = calloc(1, sizeof(*t));
    FILE *f = NULL;
    char *line = NULL;
    size_t linecap = 0;
    size_t cap = 0;
    unsigned lineno = 0;
    ssize_t n;

    if (t == NULL) {
        set_err(err, nerr, "%s: out of memory", path);
        return NULL;
    }
    f = fopen(path, "r");
    if (f == NULL) {
        set_err(err, nerr, "%s: %s", path, strerror(errno));
        goto fail;
    }
    while ((n = getline(&line, &linecap, f)) >= 0) {
        lineno++;
        size_t len = (size_t)n;
        if (len > 0 && line[len - 1] == '\n') {
            len--;
        }
        const char *why = parse_line(t, &cap, line, len);
        if (why != NULL) {
            set_err(err, nerr, "%s:%u: %s", path, lineno, why);
            goto fail;
        }
    }
    if (ferror(f)) {
        set_err(err, nerr, "%s: %s", path, strerror(errno != 0 ? errno : EIO));
        goto fail;
    }
    /* unknown users get a check as costly as a real one against a hash nobody matches */
    t->dummy.iterations = t->n > 0 ? t->entries[0].iterations : AUTH_DEFAULT_ITERATIONS;
    t->dummy.nsalt = SALT_NEW;
    if (RAND_bytes(t->dummy.salt, SALT_NEW) != 1 ||
        RAND_bytes(t->dummy.hash, HASH_LEN) != 1 ||
        RAND_bytes(t->cache_key, CACHE_KEY_LEN) != 1) {
        set_err(err, nerr, "%s: OpenSSL's random generator failed", path);
        goto fail;
    }
    t->refs = 1;
    if (line != NULL) {
        OPENSSL_cleanse(line, linecap);
    }
    free(line);
    fclose(f);
    return t;

fail:
    if (line != NULL) {
        OPENSSL_cleanse(line, linecap);
    }
    free(line);
    if (f != NULL) {
        fclose(f);
    }
    table_free(t);
    return NULL;
}

struct auth_db *auth_load(const char *path, char *err, size_t nerr)
{
    struct auth_table *t = table_load(path, err, nerr);
    if (t == NULL) {
        return NULL;
    }
    struct auth_db *db = calloc(1, sizeof(*db));
    if (db == NULL || pthread_mutex_init(&db->lock, NULL) != 0) {
        set_err(err, nerr, "%s: out of memory", path);
        free(db);
        table_free(t);
        return NULL;
    }
    db->cur = t;
    return db;
}

int auth_reload(struct auth_db *db, const char *path, char *err, size_t nerr)
{
    struct auth_table *t = table_load(path, err, nerr);
    if (t == NULL) {
        return -1;
    }
    pthread_mutex_lock(&db->lock);
    struct auth_table *old = db->cur;
    db->cur = t;
    bool last = --old->refs == 0;
    pthread_mutex_unlock(&db->lock);
    if (last) {
        table_free(old);
    }
    return 0;
}

void auth_free(struct auth_db *db)
{
    if (db == NULL) {
        return;
    }
    table_free(db->cur);
    pthread_mutex_destroy(&db->lock);
    free(db);
}

size_t auth_user_count(struct auth_db *db)
{
    pthread_mutex_lock(&db->lock);
    size_t n = db->cur->n;
    pthread_mutex_unlock(&db->lock);
    return n;
}

/* ---- checks ------------------------------------------------------------------------------- */

static struct auth_table *table_get(struct auth_db *db)
{
    pthread_mutex_lock(&db->lock);
    struct auth_table *t = db->cur;
    t->refs++;
    pthread_mutex_unlock(&db->lock);
    return t;
}

static void table_put(struct auth_db *db, struct auth_table *t)
{
    pthread_mutex_lock(&db->lock);
    bool last = --t->refs == 0;
    pthread_mutex_unlock(&db->lock);
    if (last) {
        table_free(t);
    }
}

/* SHA-256(cache_key || salt || pass): what the cache remembers instead of the password. */
static bool cache_digest(const struct auth_table *t, const struct auth_entry *e,
                         const char *pass, size_t npass, unsigned char out[HASH_LEN])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int len = 0;
    bool ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(ctx, t->cache_key, sizeof(t->cache_key)) == 1 &&
              EVP_DigestUpdate(ctx, e->salt, e->nsalt) == 1 &&
              EVP_DigestUpdate(ctx, pass, npass) == 1 && EVP_DigestFinal_ex(ctx, out, &len) == 1 &&
              len == HASH_LEN;
    EVP_MD_CTX_free(ctx);
    return ok;
}

bool auth_check(struct auth_db *db, const char *user, size_t nuser, const char *pass,
                size_t npass)
{
    if (db == NULL) {
        return false;
    }
    struct auth_table *t = table_get(db);
    struct auth_entry *e = NULL;
    for (size_t i = 0; i < t->n; i++) {
        if (t->entries[i].nuser == nuser && memcmp(t->entries[i].user, user, nuser) == 0) {
            e = &t->entries[i];
            break;
        }
    }
    bool known = e != NULL && npass <= AUTH_PASS_MAX;
    if (!known) {
        e = &t->dummy;
    }
    if (npass > AUTH_PASS_MAX) {
        npass = AUTH_PASS_MAX; /* still pay the full price: a long password is no shortcut */
    }

    bool ok = false;
    unsigned char digest[HASH_LEN];
    bool have_digest = cache_digest(t, e, pass, npass, digest);
    if (have_digest) {
        pthread_mutex_lock(&db->lock);
        bool hit = e->cached && CRYPTO_memcmp(e->cached_digest, digest, HASH_LEN) == 0;
        pthread_mutex_unlock(&db->lock);
        ok = hit && known;
    }
    if (!ok) {
        unsigned char derived[HASH_LEN];
        if (PKCS5_PBKDF2_HMAC(pass, (int)npass, e->salt, (int)e->nsalt, (int)e->iterations,
                              EVP_sha256(), HASH_LEN, derived) == 1 &&
            CRYPTO_memcmp(derived, e->hash, HASH_LEN) == 0 && known) {
            ok = true;
            if (have_digest) {
                pthread_mutex_lock(&db->lock);
                memcpy(e->cached_digest, digest, HASH_LEN);
                e->cached = true;
                pthread_mutex_unlock(&db->lock);
            }
        }
        OPENSSL_cleanse(derived, sizeof(derived));
    }
    OPENSSL_cleanse(digest, sizeof(digest));
    table_put(db, t);
    return ok;
}

int auth_make_line(const char *user, const char *pass, unsigned iterations, char *out,
                   size_t nout)
{
    unsigned char salt[SALT_NEW];
    unsigned char hash[HASH_LEN];
    char salt64[4 * ((SALT_NEW + 2) / 3) + 1];
    char hash64[4 * ((HASH_LEN + 2) / 3) + 1];
    size_t npass = pass != NULL ? strlen(pass) : 0;
    int rc = -1;

    if (user == NULL || !auth_user_valid(user, strlen(user)) || npass == 0 ||
        npass > AUTH_PASS_MAX || iterations < AUTH_MIN_ITERATIONS ||
        iterations > AUTH_MAX_ITERATIONS || out == NULL) {
        return -1;
    }
    if (RAND_bytes(salt, sizeof(salt)) != 1 ||
        PKCS5_PBKDF2_HMAC(pass, (int)npass, salt, sizeof(salt), (int)iterations, EVP_sha256(),
                          HASH_LEN, hash) != 1) {
        goto done;
    }
    EVP_EncodeBlock((unsigned char *)salt64, salt, sizeof(salt));
    EVP_EncodeBlock((unsigned char *)hash64, hash, sizeof(hash));
    int n = snprintf(out, nout, "%s:" AUTH_SCHEME "$%u$%s$%s", user, iterations, salt64, hash64);
    if (n > 0 && (size_t)n < nout) {
        rc = 0;
    }
done:
    OPENSSL_cleanse(hash, sizeof(hash));
    return rc;
}
