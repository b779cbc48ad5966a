/* Unit tests of the --auth-file database (daemon/auth.c) and the text-auth parser. */

/*
 * The text-auth cases encode what memcached 1.6.18 -Y answered to the same bytes (python
 * sockets, one write per request); tests/integration/test_auth.py replays them against both
 * servers. Each request is also fed in every shorter prefix, which must ask for more bytes.
 */

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/auth.h"
#include "daemon/auth_text.h"

#define FAST_ITERATIONS 1000u           /* the floor: keeps the tests quick */

static char tmpdir[256];
static unsigned nfiles;

/* Writes content to a new file in the test directory; returns its path (static storage). */
static const char *write_file(const char *content)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/auth.%u", tmpdir, nfiles++);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(content, 1, strlen(content), f), strlen(content));
    assert_int_equal(fclose(f), 0);
    return path;
}

static char *make_line(const char *user, const char *pass, unsigned iterations)
{
    char *line = malloc(AUTH_LINE_MAX);
    assert_non_null(line);
    assert_int_equal(auth_make_line(user, pass, iterations, line, AUTH_LINE_MAX), 0);
    return line;
}

static bool check(struct auth_db *db, const char *user, const char *pass)
{
    /* copies without a terminator: auth_check must use the lengths */
    size_t nu = strlen(user);
    size_t np = strlen(pass);
    char *u = malloc(nu + 1);
    char *p = malloc(np + 1);
    assert_true(u != NULL && p != NULL);
    memcpy(u, user, nu);
    memcpy(p, pass, np);
    u[nu] = 'X';
    p[np] = 'X';
    bool ok = auth_check(db, u, nu, p, np);
    free(u);
    free(p);
    return ok;
}

static double now_sec(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- the database ------------------------------------------------------------------------- */

static void test_make_load_check(void **state)
{
    (void)state;
    char *alice = make_line("alice", "secret", FAST_ITERATIONS);
    char *bob = make_line("bob", "pw with spaces", FAST_ITERATIONS);
    char *utf8 = make_line("h\xc3\xa9l\xc3\xa8ne", "p\xc3\xa4ss", FAST_ITERATIONS);

    /* the line's shape: user:scheme$iterations$salt(16 bytes)$hash(32 bytes) */
    assert_int_equal(strncmp(alice, "alice:pbkdf2-sha256$1000$", 25), 0);
    assert_int_equal(strlen(alice), 25 + 24 + 1 + 44);
    assert_null(strstr(alice, "secret"));
    /* a fresh salt every time: the same password never gives the same line */
    char *again = make_line("alice", "secret", FAST_ITERATIONS);
    assert_string_not_equal(alice, again);

    char content[2048];
    snprintf(content, sizeof(content),
             "# users of the test\n\n   \n%s\n  # indented comment\n%s\r\n%s   \t\n", alice, bob,
             utf8);
    char err[512] = "";
    struct auth_db *db = auth_load(write_file(content), err, sizeof(err));
    assert_non_null(db);
    assert_int_equal(auth_user_count(db), 3);

    assert_true(check(db, "alice", "secret"));
    assert_true(check(db, "bob", "pw with spaces"));
    assert_true(check(db, "h\xc3\xa9l\xc3\xa8ne", "p\xc3\xa4ss"));
    assert_false(check(db, "alice", "Secret"));
    assert_false(check(db, "alice", "secret "));
    assert_false(check(db, "alice", "secre"));
    assert_false(check(db, "alice", ""));
    assert_false(check(db, "alice", "pw with spaces"));
    assert_false(check(db, "bob", "secret"));
    assert_false(check(db, "carol", "secret"));
    assert_false(check(db, "alic", "secret"));
    assert_false(check(db, "alicee", "secret"));
    assert_false(check(db, "", "secret"));
    /* a password with a NUL inside is a different password */
    assert_false(auth_check(db, "alice", 5, "secret\0x", 8));
    assert_false(auth_check(NULL, "alice", 5, "secret", 6));

    /* a password over AUTH_PASS_MAX is never accepted, even when its prefix is right */
    char *longpass = malloc(AUTH_PASS_MAX + 2);
    assert_non_null(longpass);
    memset(longpass, 'p', AUTH_PASS_MAX + 1);
    longpass[AUTH_PASS_MAX + 1] = '\0';
    assert_int_equal(auth_make_line("x", longpass, FAST_ITERATIONS, content, sizeof(content)),
                     -1);
    longpass[AUTH_PASS_MAX] = '\0';
    char *maxline = make_line("max", longpass, FAST_ITERATIONS);
    struct auth_db *db2 = auth_load(write_file(maxline), err, sizeof(err));
    assert_non_null(db2);
    assert_true(check(db2, "max", longpass));
    longpass[AUTH_PASS_MAX] = 'p';
    assert_false(auth_check(db2, "max", 3, longpass, AUTH_PASS_MAX + 1));
    auth_free(db2);

    auth_free(db);
    free(longpass);
    free(maxline);
    free(alice);
    free(again);
    free(bob);
    free(utf8);
}

static void test_make_line_rejects(void **state)
{
    (void)state;
    char out[AUTH_LINE_MAX];
    char user255[256];
    char user256[257];
    memset(user255, 'u', 255);
    user255[255] = '\0';
    memset(user256, 'u', 256);
    user256[256] = '\0';

    assert_int_equal(auth_make_line(user255, "pw", FAST_ITERATIONS, out, sizeof(out)), 0);
    assert_int_equal(auth_make_line(user256, "pw", FAST_ITERATIONS, out, sizeof(out)), -1);
    const char *bad_users[] = {"", "a:b", ":", "a b", "a\tb", "a\nb", "a\x01", "a\x7f", "#a",
                               " a"};
    for (size_t i = 0; i < sizeof(bad_users) / sizeof(bad_users[0]); i++) {
        if (auth_make_line(bad_users[i], "pw", FAST_ITERATIONS, out, sizeof(out)) != -1) {
            printf("# FAIL user %zu accepted\n", i);
            fail();
        }
        assert_false(auth_user_valid(bad_users[i], strlen(bad_users[i])));
    }
    assert_true(auth_user_valid("a#b", 3));
    assert_true(auth_user_valid("user@example.com", 16));
    assert_int_equal(auth_make_line("a", "", FAST_ITERATIONS, out, sizeof(out)), -1);
    assert_int_equal(auth_make_line("a", NULL, FAST_ITERATIONS, out, sizeof(out)), -1);
    assert_int_equal(auth_make_line("a", "pw", AUTH_MIN_ITERATIONS - 1, out, sizeof(out)), -1);
    assert_int_equal(auth_make_line("a", "pw", AUTH_MAX_ITERATIONS + 1, out, sizeof(out)), -1);
    assert_int_equal(auth_make_line("a", "pw", FAST_ITERATIONS, out, 40), -1);
}

struct bad_file {
    const char *content;
    const char *reason;         /* a piece of the message */
    unsigned line;              /* the line the message names */
};

static void test_malformed_files(void **state)
{
    (void)state;
    char *good = make_line("alice", "secret", FAST_ITERATIONS);
    const char *hash = strchr(good, ':') + 1;
    /* pieces of the good line to build broken ones */
    const char *salt = strchr(strchr(hash, '$') + 1, '$') + 1;
    char salt64[64];
    snprintf(salt64, sizeof(salt64), "%.*s", (int)(strchr(salt, '$') - salt), salt);
    const char *hash64 = strchr(salt, '$') + 1;
    char buf[16][600];
    int k = 0;
#define L(...) (snprintf(buf[k], sizeof(buf[k]), __VA_ARGS__), buf[k++])
    const struct bad_file cases[] = {
        {"alice:secret\n", "plain-text", 2},
        {"alice\n", "expected user:", 2},
        {L(":%s\n", hash), "invalid user name", 2},
        {L("al ice:%s\n", hash), "invalid user name", 2},
        {L("al\tice:%s\n", hash), "invalid user name", 2},
        {L(" alice:%s\n", hash), "invalid user name", 2},
        {L("alice:%s\nalice:%s\n", hash, hash), "twice", 3},
        {L("alice:pbkdf2-sha256$999$%s$%s\n", salt64, hash64), "under 1000", 2},
        {L("alice:pbkdf2-sha256$10000001$%s$%s\n", salt64, hash64), "over 10000000", 2},
        {L("alice:pbkdf2-sha256$99999999999999999999$%s$%s\n", salt64, hash64), "over", 2},
        {L("alice:pbkdf2-sha256$-5$%s$%s\n", salt64, hash64), "expected pbkdf2", 2},
        {L("alice:pbkdf2-sha256$1000$%s\n", salt64), "expected pbkdf2", 2},
        {L("alice:pbkdf2-sha256$1000$QUJD$%s\n", hash64), "the salt", 2},
        {L("alice:pbkdf2-sha256$1000$%s$%.40s\n", salt64, hash64), "the hash is not", 2},
        {L("alice:pbkdf2-sha256$1000$%s$%s$x\n", salt64, hash64), "the hash is not", 2},
        {L("alice:pbkdf2-sha1$1000$%s$%s\n", salt64, hash64), "does not start", 2},
    };
#undef L
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[512] = "";
        char content[1400];
        /* a comment first: the message must name line 2 */
        snprintf(content, sizeof(content), "# x\n%s", cases[i].content);
        const char *path = write_file(content);
        struct auth_db *db = auth_load(path, err, sizeof(err));
        char where[600];
        snprintf(where, sizeof(where), "%s:%u: ", path, cases[i].line);
        if (db != NULL || strstr(err, cases[i].reason) == NULL || strstr(err, where) == NULL) {
            printf("# FAIL case %zu: %s -> %s\n", i, cases[i].content, db ? "loaded" : err);
            auth_free(db);
            fail();
        }
    }
    /* a NUL byte inside a line */
    char nul_line[600];
    size_t n = (size_t)snprintf(nul_line, sizeof(nul_line), "alice:%s\n", hash);
    nul_line[3] = '\0';
    char path[512];
    snprintf(path, sizeof(path), "%s/nul", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(nul_line, 1, n, f), n);
    fclose(f);
    char err[512] = "";
    assert_null(auth_load(path, err, sizeof(err)));
    assert_non_null(strstr(err, "NUL"));

    /* missing file, a directory */
    snprintf(path, sizeof(path), "%s/missing", tmpdir);
    assert_null(auth_load(path, err, sizeof(err)));
    assert_non_null(strstr(err, "No such file"));
    assert_null(auth_load(tmpdir, err, sizeof(err)));
    assert_non_null(strstr(err, tmpdir));

    /* an empty file is valid: nobody can log in */
    struct auth_db *db = auth_load(write_file(""), err, sizeof(err));
    assert_non_null(db);
    assert_int_equal(auth_user_count(db), 0);
    assert_false(check(db, "alice", "secret"));
    auth_free(db);
    free(good);
}

/* A verified password is cached (a keyed digest, not the password): checking it again costs
 * microseconds instead of a PBKDF2. A wrong password is never served from the cache. */
static void test_cache(void **state)
{
    (void)state;
    const unsigned slow = 400000; /* ~90 ms per PBKDF2 on a 2020s core */
    char *line = make_line("alice", "secret", slow);
    char err[512];
    struct auth_db *db = auth_load(write_file(line), err, sizeof(err));
    assert_non_null(db);

    double t0 = now_sec();
    assert_true(check(db, "alice", "secret"));
    double first = now_sec() - t0;
    double best = 1e9;
    for (int i = 0; i < 3; i++) {
        t0 = now_sec();
        assert_true(check(db, "alice", "secret"));
        double d = now_sec() - t0;
        best = d < best ? d : best;
    }
    if (!(best * 10 < first)) {
        printf("# FAIL cached check %.6fs is not much faster than the first %.6fs\n", best, first);
        fail();
    }
    /* a wrong password pays PBKDF2 again, and fails */
    t0 = now_sec();
    assert_false(check(db, "alice", "secreT"));
    double wrong = now_sec() - t0;
    assert_true(wrong > best * 10);
    /* an unknown user costs a PBKDF2 as well: timing does not reveal who exists */
    t0 = now_sec();
    assert_false(check(db, "mallory", "secret"));
    assert_true(now_sec() - t0 > best * 10);
    /* still right after the failures */
    assert_true(check(db, "alice", "secret"));

    /* a reload starts with an empty cache, and a changed password is checked against the new
     * hash, never against what the cache remembered */
    char *line2 = make_line("alice", "newpass", FAST_ITERATIONS);
    assert_int_equal(auth_reload(db, write_file(line2), err, sizeof(err)), 0);
    assert_false(check(db, "alice", "secret"));
    assert_true(check(db, "alice", "newpass"));
    assert_true(check(db, "alice", "newpass"));
    auth_free(db);
    free(line);
    free(line2);
}

static void test_reload(void **state)
{
    (void)state;
    char *alice = make_line("alice", "a-pw", FAST_ITERATIONS);
    char *bob = make_line("bob", "b-pw", FAST_ITERATIONS);
    char err[512] = "";
    struct auth_db *db = auth_load(write_file(alice), err, sizeof(err));
    assert_non_null(db);
    assert_true(check(db, "alice", "a-pw"));
    assert_false(check(db, "bob", "b-pw"));

    assert_int_equal(auth_reload(db, write_file(bob), err, sizeof(err)), 0);
    assert_false(check(db, "alice", "a-pw"));
    assert_true(check(db, "bob", "b-pw"));

    /* a broken file leaves the users as they were */
    assert_int_equal(auth_reload(db, write_file("bob:b-pw\n"), err, sizeof(err)), -1);
    assert_non_null(strstr(err, ":1: "));
    assert_true(check(db, "bob", "b-pw"));
    assert_int_equal(auth_user_count(db), 1);
    auth_free(db);
    free(alice);
    free(bob);
}

struct checker {
    struct auth_db *db;
    int rounds;
    int wrong;                  /* results that were not as expected */
};

static void *check_thread(void *arg)
{
    struct checker *c = arg;
    for (int i = 0; i < c->rounds; i++) {
        /* both files hold alice with the same password */
        if (!check(c->db, "alice", "pw") || check(c->db, "alice", "nope")) {
            c->wrong++;
        }
    }
    return NULL;
}

/* Checks from several threads while the users are reloaded under them (ASan/TSan food). */
static void test_threads_and_reload(void **state)
{
    (void)state;
    char *a1 = make_line("alice", "pw", FAST_ITERATIONS);
    char *a2 = make_line("alice", "pw", FAST_ITERATIONS);
    char f1[512];
    char f2[512];
    char err[512];
    snprintf(f1, sizeof(f1), "%s", write_file(a1));
    snprintf(f2, sizeof(f2), "%s", write_file(a2));
    struct auth_db *db = auth_load(f1, err, sizeof(err));
    assert_non_null(db);

    enum { NTHREADS = 4 };
    pthread_t th[NTHREADS];
    struct checker c[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        c[i] = (struct checker){db, 100, 0};
        assert_int_equal(pthread_create(&th[i], NULL, check_thread, &c[i]), 0);
    }
    for (int i = 0; i < 50; i++) {
        assert_int_equal(auth_reload(db, i % 2 ? f1 : f2, err, sizeof(err)), 0);
    }
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(c[i].wrong, 0);
    }
    auth_free(db);
    free(a1);
    free(a2);
}

static void test_printable(void **state)
{
    (void)state;
    char out[64];
    auth_printable(out, sizeof(out), "bob", 3);
    assert_string_equal(out, "bob");
    auth_printable(out, sizeof(out), "a\nb'\\\x01\xff", 7);
    assert_string_equal(out, "a\\x0ab\\x27\\x5c\\x01\\xff");
    auth_printable(out, 6, "abcdefgh", 8);
    assert_string_equal(out, "abcde");
    auth_printable(out, 6, "ab\n", 3);
    assert_string_equal(out, "ab");     /* an escape that does not fit is left out whole */
}

/* ---- memcached's text auth ---------------------------------------------------------------- */

enum { MORE = AUTH_TEXT_NEED_MORE, REPLY = AUTH_TEXT_REPLY, CHECK = AUTH_TEXT_CHECK,
       CLOSE = AUTH_TEXT_CLOSE };

struct text_case {
    const char *in;
    size_t len;                 /* 0: strlen(in) */
    int status;
    size_t consumed;            /* 0: all of it */
    const char *reply;          /* REPLY */
    const char *user;           /* CHECK */
    const char *pass;
};

#define UNAUTH AUTH_TEXT_E_UNAUTH
#define TERM AUTH_TEXT_E_TERM
#define TOKENS AUTH_TEXT_E_TOKENS

static const struct text_case text_cases[] = {
    /* anything but "set" is refused, quit and version included */
    {"get a\r\n", 0, REPLY, 0, UNAUTH, NULL, NULL},
    {"version\r\n", 0, REPLY, 0, UNAUTH, NULL, NULL},
    {"quit\r\n", 0, REPLY, 0, UNAUTH, NULL, NULL},
    {"\r\n", 0, REPLY, 0, UNAUTH, NULL, NULL},
    {"\n\n", 0, REPLY, 1, UNAUTH, NULL, NULL},
    {"SET a 0 0 12\r\nalice secret\r\n", 0, REPLY, 14, UNAUTH, NULL, NULL},
    {"add a 0 0 12\r\nalice secret\r\n", 0, REPLY, 14, UNAUTH, NULL, NULL},
    {"cas a 0 0 12 1\r\nalice secret\r\n", 0, REPLY, 16, UNAUTH, NULL, NULL},
    {"set a 0 12\r\nalice secret\r\n", 0, REPLY, 12, UNAUTH, NULL, NULL},
    {"set\ta 0 0 12\r\nalice secret\r\n", 0, REPLY, 14, UNAUTH, NULL, NULL},
    {"mg a v\r\n", 0, REPLY, 0, UNAUTH, NULL, NULL},
    /* the one accepted form, and its variations */
    {"set a 0 0 12\r\nalice secret\r\n", 0, CHECK, 0, NULL, "alice", "secret"},
    {"set a 0 0 12 noreply\r\nalice secret\r\n", 0, CHECK, 0, NULL, "alice", "secret"},
    {"set a 0 0 12\nalice secret\r\n", 0, CHECK, 0, NULL, "alice", "secret"},
    {"set  k  x  y  12 \r\nalice secret\r\n", 0, CHECK, 0, NULL, "alice", "secret"},
    {"set a 0 0 16\r\nalice secret xyz\r\n", 0, CHECK, 0, NULL, "alice", "secret"},
    {"set a 0 0 15\r\n  alice  secret\r\n", 0, CHECK, 0, NULL, "alice", "secret"},
    {"set a 0 0 13\r\nalice secret\r\r\n", 0, CHECK, 0, NULL, "alice", "secret\r"},
    {"set a 0 0 14\r\nalice secret\0z\r\n", 30, CHECK, 0, NULL, "alice", "secret"},
    {"set a 0 0 12\0junk\r\nalice secret\r\n", 33, CHECK, 0, NULL, "alice", "secret"},
    {"set a 0\0 0 12\r\nalice secret\r\n", 29, REPLY, 15, UNAUTH, NULL, NULL},
    /* the length is read as memcached's safe_strtoul reads it */
    {"set a 0 0 +12\r\nalice secret\r\n", 0, CHECK, 0, NULL, "alice", "secret"},
    {"set a 0 0 \t12\r\nalice secret\r\n", 0, CHECK, 0, NULL, "alice", "secret"},
    {"set a 0 0 12\t\r\nalice secret\r\n", 0, CHECK, 0, NULL, "alice", "secret"},
    {"set a 0 0 4294967308\r\nalice secret\r\n", 0, CHECK, 0, NULL, "alice", "secret"},
    {"set a 0 0 -18446744073709551615\r\nx\r\n", 0, REPLY, 0, TOKENS, NULL, NULL},
    {"set a 0 0 -0\r\n\r\n", 0, REPLY, 0, TOKENS, NULL, NULL},
    {"set a 0 0 -1\r\n", 0, REPLY, 0, UNAUTH, NULL, NULL},
    {"set a 0 0 5x\r\n", 0, REPLY, 0, UNAUTH, NULL, NULL},
    {"set a 0 0 \r\n", 0, REPLY, 0, UNAUTH, NULL, NULL},
    {"set a 0 0 99999999999999999999\r\n", 0, REPLY, 0, UNAUTH, NULL, NULL},
    /* a data block that is not "user pass\r\n" */
    {"set a 0 0 0\r\n\r\n", 0, REPLY, 0, TOKENS, NULL, NULL},
    {"set a 0 0 5\r\nalice\r\n", 0, REPLY, 0, TOKENS, NULL, NULL},
    {"set a 0 0 12\r\nalice\tsecret\r\n", 0, REPLY, 0, TOKENS, NULL, NULL},
    {"set a 0 0 12\r\nalice secretXYversion\r\n", 0, REPLY, 28, TERM, NULL, NULL},
    {"set a 0 0 12\r\nalice secret\nversion\r\n", 0, REPLY, 28, TERM, NULL, NULL},
    {"set a 0 0 3\r\nalice secret\r\n", 0, REPLY, 18, TERM, NULL, NULL},
    /* bytes + 2 wraps to 0 or 1 in 32 bits: memcached then reports a bad termination */
    {"set a 0 0 4294967294\r\nab", 0, REPLY, 22, TERM, NULL, NULL},
    {"set a 0 0 4294967295\r\nab", 0, REPLY, 23, TERM, NULL, NULL},
    /* waiting */
    {"\n", 0, MORE, 0, NULL, NULL, NULL},
    {"set a 0 0 12\r\nalice", 0, MORE, 0, NULL, NULL, NULL},
    {"set a 0 0 100000\r\n", 0, MORE, 0, NULL, NULL, NULL},
};

static void check_text(const char *in, size_t len, const struct text_case *want,
                       size_t consumed, const char *label)
{
    char *copy = malloc(len ? len : 1); /* exact size: ASan sees any read past len */
    assert_non_null(copy);
    memcpy(copy, in, len);
    struct auth_text_result r;
    auth_text_parse(copy, len, &r);
    bool ok = (int)r.status == want->status;
    if (ok && want->status == REPLY) {
        ok = r.consumed == consumed && strcmp(r.reply, want->reply) == 0;
    } else if (ok && want->status == CHECK) {
        ok = r.consumed == consumed && r.nuser == strlen(want->user) &&
             memcmp(r.user, want->user, r.nuser) == 0 && r.npass == strlen(want->pass) &&
             memcmp(r.pass, want->pass, r.npass) == 0;
    }
    if (!ok) {
        printf("# FAIL %s: input %zu bytes \"%.*s\": status %d consumed %zu reply %s\n", label,
               len, (int)len, in, (int)r.status, r.consumed, r.reply ? r.reply : "-");
    }
    free(copy);
    if (!ok) {
        fail();
    }
}

static void test_text_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(text_cases) / sizeof(text_cases[0]); i++) {
        const struct text_case *c = &text_cases[i];
        size_t len = c->len ? c->len : strlen(c->in);
        size_t consumed = c->consumed ? c->consumed : len;
        check_text(c->in, len, c, consumed, "whole");
        if (c->status == MORE) {
            continue;
        }
        /* every prefix of the request proper waits for more */
        struct text_case more = {NULL, 0, MORE, 0, NULL, NULL, NULL};
        for (size_t cut = 0; cut < consumed; cut++) {
            check_text(c->in, cut, &more, 0, "prefix");
        }
    }
}

static void test_text_limits(void **state)
{
    (void)state;
    enum { BIG = 40000 };
    char *buf = malloc(BIG);
    assert_non_null(buf);
    struct auth_text_result r;

    /* no '\n' in 2048 bytes waits; in 2049 it closes (memcached's rule) */
    memset(buf, 'x', BIG);
    auth_text_parse(buf, AUTH_TEXT_LINE_MAX, &r);
    assert_int_equal(r.status, AUTH_TEXT_NEED_MORE);
    auth_text_parse(buf, AUTH_TEXT_LINE_MAX + 1, &r);
    assert_int_equal(r.status, AUTH_TEXT_CLOSE);
    /* a longer line that has its '\n' is refused, not closed */
    buf[5000] = '\n';
    auth_text_parse(buf, 5001, &r);
    assert_int_equal(r.status, AUTH_TEXT_REPLY);
    assert_int_equal(r.consumed, 5001);

    /* a data block of up to 16384 bytes (with its \r\n) is read; a longer one never fits
     * memcached's read buffer: it closes once more than that has arrived */
    int n = snprintf(buf, BIG, "set a 0 0 %d\r\n", AUTH_TEXT_DATA_MAX - 2);
    memset(buf + n, 'y', AUTH_TEXT_DATA_MAX);
    memcpy(buf + n, "a b", 3);
    memcpy(buf + n + AUTH_TEXT_DATA_MAX - 2, "\r\n", 2);
    auth_text_parse(buf, (size_t)n + AUTH_TEXT_DATA_MAX - 1, &r);
    assert_int_equal(r.status, AUTH_TEXT_NEED_MORE);
    assert_int_equal(r.need, (size_t)n + AUTH_TEXT_DATA_MAX);
    auth_text_parse(buf, (size_t)n + AUTH_TEXT_DATA_MAX, &r);
    assert_int_equal(r.status, AUTH_TEXT_CHECK);
    assert_int_equal(r.npass, AUTH_TEXT_DATA_MAX - 4);

    n = snprintf(buf, BIG, "set a 0 0 %d\r\n", AUTH_TEXT_DATA_MAX - 1);
    memset(buf + n, 'y', BIG - (size_t)n);
    auth_text_parse(buf, (size_t)n + AUTH_TEXT_DATA_MAX, &r);
    assert_int_equal(r.status, AUTH_TEXT_NEED_MORE);
    auth_text_parse(buf, (size_t)n + AUTH_TEXT_DATA_MAX + 1, &r);
    assert_int_equal(r.status, AUTH_TEXT_CLOSE);
    /* lengths memcached turns negative (int) behave the same: never complete */
    n = snprintf(buf, BIG, "set a 0 0 3000000000\r\n");
    auth_text_parse(buf, (size_t)n + 10, &r);
    assert_int_equal(r.status, AUTH_TEXT_NEED_MORE);
    auth_text_parse(buf, (size_t)n + AUTH_TEXT_DATA_MAX + 1, &r);
    assert_int_equal(r.status, AUTH_TEXT_CLOSE);
    free(buf);
}

/* Random bytes: never a crash, never a read past len (ASan), consumed within len. */
static void test_text_random(void **state)
{
    (void)state;
    uint64_t x = 88172645463325252ull;
    static const char alphabet[] = "set 0123456789\r\n -+\t\0abx";
    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(round % 64);
        char *buf = malloc(len ? len : 1);
        assert_non_null(buf);
        for (size_t i = 0; i < len; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[i] = alphabet[x % (sizeof(alphabet) - 1)];
        }
        struct auth_text_result r;
        auth_text_parse(buf, len, &r);
        if (r.status == AUTH_TEXT_REPLY || r.status == AUTH_TEXT_CHECK) {
            assert_true(r.consumed > 0 && r.consumed <= len);
        }
        if (r.status == AUTH_TEXT_CHECK) {
            assert_true(r.user >= buf && r.user + r.nuser <= buf + len);
            assert_true(r.pass >= buf && r.pass + r.npass <= buf + len);
        }
        free(buf);
    }
}

static int group_setup(void **state)
{
    (void)state;
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(tmpdir, sizeof(tmpdir), "%s/test_auth.XXXXXX", base);
    return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_make_load_check),
        cmocka_unit_test(test_make_line_rejects),
        cmocka_unit_test(test_malformed_files),
        cmocka_unit_test(test_cache),
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_threads_and_reload),
        cmocka_unit_test(test_printable),
        cmocka_unit_test(test_text_cases),
        cmocka_unit_test(test_text_limits),
        cmocka_unit_test(test_text_random),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
