/* Unit tests of mcstore-rebalance's pure parts: reply parsing, ledger, state file, rate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tools/rebalance/ledger.h"
#include "tools/rebalance/rate.h"
#include "tools/rebalance/reply.h"
#include "tools/rebalance/state.h"

#define S(lit) (lit), (sizeof(lit) - 1)

/* ---- iterate lines -------------------------------------------------------------------------- */

static void test_iter_item_lines(void **state)
{
    struct rb_item it;
    char cursor[PROTO_ITERATE_B64_MAX + 1];

    (void)state;
    assert_int_equal(rb_parse_iter_line(S("ITEM key:1 5 1700000000 10 42"), &it, cursor),
                     RB_ITER_ITEM);
    assert_int_equal(it.nkey, 5);
    assert_memory_equal(it.key, "key:1", 5);
    assert_int_equal(it.ntoken, 5);
    assert_false(it.b64);
    assert_int_equal(it.flags, 5);
    assert_int_equal(it.exptime, 1700000000);
    assert_int_equal(it.nbytes, 10);
    assert_int_equal(it.cas, 42);

    /* " b": the key is base64 ("a b\0") and the token stays as sent */
    assert_int_equal(rb_parse_iter_line(S("ITEM YSBiAA== 0 0 0 18446744073709551615 b"), &it,
                                        cursor), RB_ITER_ITEM);
    assert_true(it.b64);
    assert_int_equal(it.nkey, 4);
    assert_memory_equal(it.key, "a b\0", 4);
    assert_int_equal(it.ntoken, 8);
    assert_memory_equal(it.token, "YSBiAA==", 8);
    assert_true(it.cas == UINT64_MAX);

    /* the most a field may hold */
    assert_int_equal(rb_parse_iter_line(S("ITEM k 0 0 1073741824 1"), &it, cursor),
                     RB_ITER_ITEM);
    assert_int_equal(rb_parse_iter_line(S("ITEM k 4294967295 4294967295 1048576 1"), &it,
                                        cursor), RB_ITER_ITEM);
    assert_true(it.flags == UINT32_MAX && it.exptime == UINT32_MAX);
}

static void test_iter_end_and_errors(void **state)
{
    struct rb_item it;
    char cursor[PROTO_ITERATE_B64_MAX + 1];

    (void)state;
    assert_int_equal(rb_parse_iter_line(S("END 0"), &it, cursor), RB_ITER_END);
    assert_string_equal(cursor, "0");
    assert_int_equal(rb_parse_iter_line(S("END a2V5"), &it, cursor), RB_ITER_END);
    assert_string_equal(cursor, "a2V5");
    assert_int_equal(rb_parse_iter_line(S("SERVER_ERROR out of memory"), &it, cursor),
                     RB_ITER_ERROR);
    assert_int_equal(rb_parse_iter_line(S("CLIENT_ERROR bad cursor"), &it, cursor),
                     RB_ITER_ERROR);
    assert_int_equal(rb_parse_iter_line(S("ERROR"), &it, cursor), RB_ITER_ERROR);

    static const char *const bad[] = {
        "", "END", "END 0 1", "ITEM", "ITEM k 1 2 3", "ITEM k 1 2 3 4 5 6",
        "ITEM k 1 2 3 4 x",                  /* a seventh token that is not "b" */
        "ITEM k 4294967296 0 0 1",           /* flags over 32 bits */
        "ITEM k 0 4294967296 0 1",
        "ITEM k 0 0 0 18446744073709551616", /* cas over 64 bits */
        "ITEM k 0 0 1073741825 1",           /* a value over the largest -I (1g) */
        "ITEM k -1 0 0 1", "ITEM k 0 0 +1 1", "ITEM k 0 0 1x 1",
        "ITEM  k 0 0 0 1",                   /* empty token */
        "ITEM k 0 0 0 1 ",
        "ITEM YQ 0 0 0 1 b",                 /* base64 without padding */
        "ITEM YR== 0 0 0 1 b",               /* not canonical */
        "ITEM Y*== 0 0 0 1 b",
        "VALUE k 0 1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (rb_parse_iter_line(bad[i], strlen(bad[i]), &it, cursor) != RB_ITER_BAD) {
            fail_msg("\"%s\" should not parse", bad[i]);
        }
    }
    /* a key of 251 bytes is not an mcstore key */
    char line[400];
    memset(line, 'k', sizeof(line));
    memcpy(line, "ITEM ", 5);
    memcpy(line + 5 + 251, " 0 0 0 1", 8);
    assert_int_equal(rb_parse_iter_line(line, 5 + 251 + 8, &it, cursor), RB_ITER_BAD);
    assert_int_equal(rb_parse_iter_line(line + 1, 4 + 251 + 8 - 1, &it, cursor), RB_ITER_BAD);
    memcpy(line + 5 + 250, " 0 0 0 1", 8);
    assert_int_equal(rb_parse_iter_line(line, 5 + 250 + 8, &it, cursor), RB_ITER_ITEM);
    assert_int_equal(it.nkey, 250);
}

/* ---- meta replies --------------------------------------------------------------------------- */

static void test_meta_lines(void **state)
{
    struct rb_meta_reply r;

    (void)state;
    assert_int_equal(rb_parse_meta_line(S("HD c123"), &r), RB_META_HD);
    assert_true(r.has_cas && r.cas == 123 && !r.has_flags);
    assert_int_equal(rb_parse_meta_line(S("HD"), &r), RB_META_HD);
    assert_false(r.has_cas);
    assert_int_equal(rb_parse_meta_line(S("NS c0"), &r), RB_META_NS);
    assert_int_equal(rb_parse_meta_line(S("EX c0"), &r), RB_META_EX);
    assert_int_equal(rb_parse_meta_line(S("NF"), &r), RB_META_NF);
    assert_int_equal(rb_parse_meta_line(S("EN"), &r), RB_META_EN);
    assert_int_equal(rb_parse_meta_line(S("VA 5 f3 c9"), &r), RB_META_VA);
    assert_true(r.vlen == 5 && r.has_flags && r.flags == 3 && r.has_cas && r.cas == 9);
    assert_int_equal(rb_parse_meta_line(S("VA 0 O123 c18446744073709551615"), &r),
                     RB_META_VA);
    assert_true(r.vlen == 0 && r.cas == UINT64_MAX);
    assert_int_equal(rb_parse_meta_line(S("SERVER_ERROR not master; master is a:1"), &r),
                     RB_META_SERVER_ERROR);
    assert_int_equal(r.nmsg, strlen("not master; master is a:1"));
    assert_memory_equal(r.msg, "not master; master is a:1", r.nmsg);
    assert_int_equal(rb_parse_meta_line(S("CLIENT_ERROR bad data chunk"), &r),
                     RB_META_CLIENT_ERROR);
    assert_int_equal(rb_parse_meta_line(S("ERROR"), &r), RB_META_ERROR);
    static const char *const bad[] = {"", "VA", "VA x", "XX", "HD  c1", " HD", "STORED", "hd"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (rb_parse_meta_line(bad[i], strlen(bad[i]), &r) != RB_META_BAD) {
            fail_msg("\"%s\" should not parse", bad[i]);
        }
    }
}

static void test_refusals(void **state)
{
    char host[64];
    uint16_t port = 0;

    (void)state;
    assert_int_equal(rb_parse_refusal(S("not master; master is 127.0.0.1:21201"), host,
                                      sizeof(host), &port), RB_REFUSAL_MASTER_IS);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 21201);
    assert_int_equal(rb_parse_refusal(S("not master; master is [::1]:7"), host, sizeof(host),
                                      &port), RB_REFUSAL_MASTER_IS);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 7);
    assert_int_equal(rb_parse_refusal(S("not master; master is db-2.example:11211"), host,
                                      sizeof(host), &port), RB_REFUSAL_MASTER_IS);
    assert_string_equal(host, "db-2.example");
    assert_int_equal(rb_parse_refusal(S("not master; no master elected yet"), host,
                                      sizeof(host), &port), RB_REFUSAL_NO_MASTER);
    assert_int_equal(rb_parse_refusal(S("not master; master address not known yet"), host,
                                      sizeof(host), &port), RB_REFUSAL_NO_MASTER);
    assert_int_equal(rb_parse_refusal(S("replication group incomplete: 1 of 3 members have "
                                        "joined, --repl-ack all cannot be met"),
                                      host, sizeof(host), &port), RB_REFUSAL_NO_MASTER);
    static const char *const none[] = {
        "out of memory", "not master; master is ", "not master; master is host",
        "not master; master is host:0", "not master; master is host:65536",
        "not master; master is :80", "not master; master is [::1:80",
        "not master; master is a b:80",
    };
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
        if (rb_parse_refusal(none[i], strlen(none[i]), host, sizeof(host), &port) !=
            RB_REFUSAL_NONE) {
            fail_msg("\"%s\" is not a usable refusal", none[i]);
        }
    }
    /* a host that does not fit */
    assert_int_equal(rb_parse_refusal(S("not master; master is abcdefgh:1"), host, 8, &port),
                     RB_REFUSAL_NONE);
}

static void test_stat_lines(void **state)
{
    uint64_t v = 0;

    (void)state;
    assert_true(rb_parse_stat_u64(S("STAT curr_items 1234"), "curr_items", &v));
    assert_int_equal(v, 1234);
    assert_false(rb_parse_stat_u64(S("STAT curr_items x"), "curr_items", &v));
    assert_false(rb_parse_stat_u64(S("STAT total_items 5"), "curr_items", &v));
    assert_false(rb_parse_stat_u64(S("STAT curr_items"), "curr_items", &v));
    assert_false(rb_parse_stat_u64(S("END"), "curr_items", &v));
}

/* ---- the ledger ----------------------------------------------------------------------------- */

static char dir[] = "/tmp/test_rebalance.XXXXXX";

static void path_in_dir(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

static char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = calloc(1, 1 << 20);
    *n = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    return buf;
}

static void append(const char *path, const char *text)
{
    FILE *f = fopen(path, "ab");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_ledger_digest(void **state)
{
    (void)state;
    /* FNV-1a 64 of the flags (little endian) then the value, computed independently */
    assert_true(ledger_digest(0, "abc", 3) == UINT64_C(0x2e13aa12d98fddfb));
    assert_true(ledger_digest(0x01020304, "", 0) == UINT64_C(0xb345225e3644edb5));
    assert_true(ledger_digest(7, "hello world", 11) == UINT64_C(0xab4ea9ac93227a92));
    assert_true(ledger_digest(1, "abc", 3) != ledger_digest(0, "abc", 3));
}

static void test_ledger_round_trip(void **state)
{
    char path[256];
    char err[512];

    (void)state;
    path_in_dir(path, sizeof(path), "rt.ledger");
    struct ledger *l = ledger_open(path, "00112233aabbccdd", true, err, sizeof(err));
    assert_non_null(l);
    /* "k1": copied; "bin\0 key": an intent then its confirmation; "k3": newer; "k4": an
     * intent only (a crash before the confirmation), then its source deleted */
    assert_int_equal(ledger_copied(l, S("k1"), 10, 20), 0);
    assert_int_equal(ledger_intent(l, S("bin\0 key"), 11, UINT64_C(0xfedcba9876543210)), 0);
    assert_int_equal(ledger_copied(l, S("bin\0 key"), 11, 21), 0);
    assert_int_equal(ledger_newer(l, S("k3"), 12), 0);
    assert_int_equal(ledger_intent(l, S("k4"), 13, 99), 0);
    assert_int_equal(ledger_src_deleted(l, S("k4")), 0);
    assert_int_equal(ledger_copied(l, S("k5"), 14, 24), 0);
    assert_int_equal(ledger_tgt_deleted(l, S("k5")), 0);
    assert_int_equal(ledger_count(l), 5);
    assert_int_equal(ledger_flush(l, true), 0);
    ledger_close(l);

    size_t n;
    char *text = read_all(path, &n);
    assert_string_equal(text, "mcstore-rebalance-ledger 1 00112233aabbccdd\n"
                              "C azE= 10 20\n"
                              "I YmluACBrZXk= 11 fedcba9876543210\n"
                              "C YmluACBrZXk= 11 21\n"
                              "N azM= 12\n"
                              "I azQ= 13 0000000000000063\n"
                              "D azQ=\n"
                              "C azU= 14 24\n"
                              "X azU=\n");
    free(text);

    l = ledger_open(path, "00112233aabbccdd", false, err, sizeof(err));
    assert_non_null(l);
    assert_int_equal(ledger_count(l), 5);
    struct ledger_entry *e = ledger_find(l, S("k1"));
    assert_non_null(e);
    assert_true(e->target == LEDGER_COPIED && e->src_cas == 10 && e->tgt_cas == 20 &&
                !e->has_pending && !e->src_deleted);
    e = ledger_find(l, S("bin\0 key"));
    assert_non_null(e);
    assert_true(e->target == LEDGER_COPIED && e->src_cas == 11 && e->tgt_cas == 21 &&
                !e->has_pending);
    e = ledger_find(l, S("k3"));
    assert_true(e != NULL && e->target == LEDGER_NEWER && e->src_cas == 12);
    e = ledger_find(l, S("k4"));
    assert_true(e != NULL && e->target == LEDGER_NONE && e->has_pending &&
                e->pend_src_cas == 13 && e->pend_digest == 99 && e->src_deleted);
    e = ledger_find(l, S("k5"));
    assert_true(e != NULL && e->target == LEDGER_NONE && !e->has_pending);
    assert_null(ledger_find(l, S("k6")));
    assert_null(ledger_find(l, S("k")));

    /* appends after a reload go to the end */
    assert_int_equal(ledger_copied(l, S("k6"), 1, 2), 0);
    ledger_close(l);
    l = ledger_open(path, "00112233aabbccdd", false, err, sizeof(err));
    assert_non_null(l);
    assert_int_equal(ledger_count(l), 6);
    ledger_close(l);
}

static void test_ledger_torn_tail_and_refusals(void **state)
{
    char path[256];
    char err[512];

    (void)state;
    path_in_dir(path, sizeof(path), "torn.ledger");
    struct ledger *l = ledger_open(path, "aaaaaaaaaaaaaaaa", true, err, sizeof(err));
    assert_non_null(l);
    assert_int_equal(ledger_copied(l, S("k1"), 1, 2), 0);
    ledger_close(l);
    append(path, "C azI= 3");               /* kill -9 in the middle of an append */
    l = ledger_open(path, "aaaaaaaaaaaaaaaa", false, err, sizeof(err));
    assert_non_null(l);
    assert_int_equal(ledger_count(l), 1);   /* the torn record never counted ... */
    assert_int_equal(ledger_copied(l, S("k3"), 5, 6), 0);
    ledger_close(l);
    size_t n;
    char *text = read_all(path, &n);        /* ... and is gone, not glued to the next one */
    assert_string_equal(text, "mcstore-rebalance-ledger 1 aaaaaaaaaaaaaaaa\n"
                              "C azE= 1 2\n"
                              "C azM= 5 6\n");
    free(text);

    /* another rebalance's ledger, a corrupt record, a missing file */
    assert_null(ledger_open(path, "bbbbbbbbbbbbbbbb", false, err, sizeof(err)));
    assert_non_null(strstr(err, "not the ledger of this rebalance"));
    static const char *const corrupt[] = {
        "Q azE= 1 2\n", "C azE= 1\n", "C azE= x 2\n", "I azE= 1 12\n", "N azE=\n",
        "C  azE= 1 2\n", "D\n", "C azE= 1 2 3\n", "I azE= 1 ABCDEF0123456789\n",
    };
    for (size_t i = 0; i < sizeof(corrupt) / sizeof(corrupt[0]); i++) {
        char p2[256];
        path_in_dir(p2, sizeof(p2), "corrupt.ledger");
        l = ledger_open(p2, "aaaaaaaaaaaaaaaa", true, err, sizeof(err));
        assert_non_null(l);
        ledger_close(l);
        append(p2, corrupt[i]);
        l = ledger_open(p2, "aaaaaaaaaaaaaaaa", false, err, sizeof(err));
        if (l != NULL) {
            fail_msg("record \"%s\" should be refused", corrupt[i]);
        }
        assert_non_null(strstr(err, ":2: not a ledger record"));
    }
    path_in_dir(path, sizeof(path), "missing.ledger");
    assert_null(ledger_open(path, "aaaaaaaaaaaaaaaa", false, err, sizeof(err)));
}

static bool count_entries(void *arg, struct ledger_entry *e)
{
    (void)e;
    (*(size_t *)arg)++;
    return true;
}

static void test_ledger_grows(void **state)
{
    char path[256];
    char err[512];
    char key[32];

    (void)state;
    path_in_dir(path, sizeof(path), "big.ledger");
    struct ledger *l = ledger_open(path, "cccccccccccccccc", true, err, sizeof(err));
    assert_non_null(l);
    for (int i = 0; i < 20000; i++) {
        int n = snprintf(key, sizeof(key), "key-%d", i);
        assert_int_equal(ledger_copied(l, key, (size_t)n, (uint64_t)i, (uint64_t)i + 1), 0);
    }
    assert_int_equal(ledger_flush(l, false), 0);
    ledger_close(l);
    l = ledger_open(path, "cccccccccccccccc", false, err, sizeof(err));
    assert_non_null(l);
    assert_int_equal(ledger_count(l), 20000);
    size_t seen = 0;
    ledger_each(l, count_entries, &seen);
    assert_int_equal(seen, 20000);
    for (int i = 0; i < 20000; i += 997) {
        int n = snprintf(key, sizeof(key), "key-%d", i);
        struct ledger_entry *e = ledger_find(l, key, (size_t)n);
        assert_non_null(e);
        assert_true(e->src_cas == (uint64_t)i && e->tgt_cas == (uint64_t)i + 1);
    }
    ledger_close(l);
}

/* ---- the state file ------------------------------------------------------------------------- */

static void test_state_round_trip(void **state)
{
    char path[256];
    char err[512];
    struct rb_state st;
    struct rb_state back;
    char fp[RB_FINGERPRINT_LEN + 1];

    (void)state;
    rb_fingerprint("old", "new", fp);
    assert_string_equal(fp, "5805f6eec599ac8f");
    char fp2[RB_FINGERPRINT_LEN + 1];
    rb_fingerprint("new", "old", fp2);
    assert_string_not_equal(fp, fp2);

    path_in_dir(path, sizeof(path), "s.state");
    assert_int_equal(rb_state_load(path, &back, err, sizeof(err)), 1);    /* none yet */
    assert_int_equal(rb_state_init(&st, fp, 3), 0);
    assert_int_equal(st.pass, 1);
    st.sources[0].phase = RB_SRC_DONE;
    st.sources[1].phase = RB_SRC_WALK;
    strcpy(st.sources[1].cursor, "a2V5Lzk5OQ==");
    st.sources[2].phase = RB_SRC_SWEEP;
    st.total.scanned = 12345;
    st.total.already = 7;
    st.total.newer = 3;
    st.total.errors = 1;
    st.runs = 2;
    assert_int_equal(rb_state_save(path, &st, true, err, sizeof(err)), 0);
    char tmp[300];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    assert_int_equal(access(tmp, F_OK), -1);      /* renamed over the state */

    assert_int_equal(rb_state_load(path, &back, err, sizeof(err)), 0);
    assert_string_equal(back.fingerprint, fp);
    assert_int_equal(back.pass, 1);
    assert_false(back.pass_done);
    assert_int_equal(back.runs, 2);
    assert_int_equal(back.nsources, 3);
    assert_int_equal(back.sources[0].phase, RB_SRC_DONE);
    assert_int_equal(back.sources[1].phase, RB_SRC_WALK);
    assert_string_equal(back.sources[1].cursor, "a2V5Lzk5OQ==");
    assert_int_equal(back.sources[2].phase, RB_SRC_SWEEP);
    assert_memory_equal(&back.total, &st.total, sizeof(st.total));

    rb_state_next_pass(&back);
    assert_int_equal(back.pass, 2);
    assert_int_equal(back.runs, 0);
    assert_int_equal(back.total.scanned, 0);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(back.sources[i].phase, RB_SRC_WALK);
        assert_string_equal(back.sources[i].cursor, "0");
    }
    rb_state_free(&back);
    rb_state_free(&st);
}

static void test_state_refuses_damage(void **state)
{
    char path[256];
    char err[512];
    struct rb_state st;
    struct rb_state back;

    (void)state;
    path_in_dir(path, sizeof(path), "good.state");
    assert_int_equal(rb_state_init(&st, "0123456789abcdef", 2), 0);
    assert_int_equal(rb_state_save(path, &st, false, err, sizeof(err)), 0);
    rb_state_free(&st);
    size_t n;
    char *good = read_all(path, &n);

    /* every proper prefix (a file cut anywhere) is refused, and so are edits */
    char bad[256];
    path_in_dir(bad, sizeof(bad), "bad.state");
    for (size_t cut = 0; cut < n; cut++) {
        FILE *f = fopen(bad, "wb");
        fwrite(good, 1, cut, f);
        fclose(f);
        if (rb_state_load(bad, &back, err, sizeof(err)) != -1) {
            fail_msg("a state cut at byte %zu of %zu was accepted", cut, n);
        }
    }
    static const struct {
        const char *from;
        const char *to;
    } edits[] = {
        {"pass 1\n", "pass 0\n"}, {"pass_done 0\n", "pass_done 2\n"},
        {"source 1 0 0\n", "source 1 3 0\n"}, {"source 1 0 0\n", "source 1 0 a-b\n"},
        {"source 1 0 0\n", "source 2 0 0\n"}, {"count scanned 0\n", "count scanned x\n"},
        {"count scanned 0\n", "count bogus 0\n"}, {"sources 2\n", "sources 3\n"},
        {"fingerprint 0123456789abcdef\n", "fingerprint 01234\n"},
        {"mcstore-rebalance-state 1\n", "mcstore-rebalance-state 2\n"},
    };
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        char *at = strstr(good, edits[i].from);
        assert_non_null(at);
        FILE *f = fopen(bad, "wb");
        fwrite(good, 1, (size_t)(at - good), f);
        fputs(edits[i].to, f);
        fputs(at + strlen(edits[i].from), f);
        fclose(f);
        if (rb_state_load(bad, &back, err, sizeof(err)) != -1) {
            fail_msg("edit %zu (%s) was accepted", i, edits[i].to);
        }
    }
    free(good);
}

/* ---- the rate bucket ------------------------------------------------------------------------ */

static void test_rate_unlimited(void **state)
{
    struct rb_rate r;

    (void)state;
    rb_rate_init(&r, 0, 0);
    assert_int_equal(rb_rate_batch(&r, 500), 500);
    assert_true(rb_rate_take(&r, 1000000, 0) == 0);
    assert_true(rb_rate_take(&r, 1000000, 0) == 0);
}

static void test_rate_bucket(void **state)
{
    struct rb_rate r;

    (void)state;
    rb_rate_init(&r, 100, 1000.0);          /* 100 keys/s: batches of at most 10 */
    assert_int_equal(rb_rate_batch(&r, 500), 10);
    assert_int_equal(rb_rate_batch(&r, 4), 4);
    assert_true(rb_rate_take(&r, 10, 1000.0) == 0);         /* a full bucket to start */
    double w = rb_rate_take(&r, 10, 1000.0);
    assert_true(w > 0.0999 && w < 0.1001);
    w = rb_rate_take(&r, 10, 1000.05);
    assert_true(w > 0.0499 && w < 0.0501);
    assert_true(rb_rate_take(&r, 10, 1000.1) == 0);
    /* an idle minute refills only the burst */
    assert_true(rb_rate_take(&r, 10, 1060.0) == 0);
    assert_true(rb_rate_take(&r, 1, 1060.0) > 0);

    /* over 10 simulated seconds the keys taken stay at rate x time + burst */
    rb_rate_init(&r, 1000, 0);
    uint64_t taken = 0;
    double now = 0;
    for (int i = 0; i < 100000 && now <= 10.0; i++) {
        uint32_t n = rb_rate_batch(&r, 64);
        double wait = rb_rate_take(&r, n, now);
        if (wait == 0) {
            taken += n;
        } else {
            now += wait;
        }
    }
    assert_true(taken >= 9900 && taken <= 10000 + 100 + 64);

    /* a slow rate still lets single keys through */
    rb_rate_init(&r, 0.5, 0);
    assert_int_equal(rb_rate_batch(&r, 100), 1);
    assert_true(rb_rate_take(&r, 1, 0) == 0);
    w = rb_rate_take(&r, 1, 0);
    assert_true(w > 1.999 && w < 2.001);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    static const char *const files[] = {
        "rt.ledger", "torn.ledger", "corrupt.ledger", "big.ledger", "s.state", "good.state",
        "bad.state",
    };
    char path[256];
    (void)state;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        path_in_dir(path, sizeof(path), files[i]);
        unlink(path);
    }
    return rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iter_item_lines),
        cmocka_unit_test(test_iter_end_and_errors),
        cmocka_unit_test(test_meta_lines),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_stat_lines),
        cmocka_unit_test(test_ledger_digest),
        cmocka_unit_test(test_ledger_round_trip),
        cmocka_unit_test(test_ledger_torn_tail_and_refusals),
        cmocka_unit_test(test_ledger_grows),
        cmocka_unit_test(test_state_round_trip),
        cmocka_unit_test(test_state_refuses_damage),
        cmocka_unit_test(test_rate_unlimited),
        cmocka_unit_test(test_rate_bucket),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
