/* Unit tests of the meta command parser (protocol/meta.c) against memcached 1.6.18. */

/*
 * Every expected error below was taken from memcached 1.6.18 itself (memcached -U 0, -I 1m,
 * requests sent with python sockets); "ours" marks mcstore's documented difference (keys with
 * control characters). Requests go through proto_text_parse, as the connection sends them.
 *
 * Each input is parsed whole and then split at every byte boundary: a prefix must give
 * PROTO_NEED_MORE until it holds the whole request, and then exactly the whole buffer's
 * result. Inputs sit at the very end of a read-only region followed by a PROT_NONE page, so a
 * read past 'len' or a write into the input crashes the test.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "protocol/meta.h"
#include "protocol/request.h"
#include "protocol/text.h"

#define E_ERROR "ERROR"
#define E_FORMAT "CLIENT_ERROR bad command line format"
#define E_DUP "CLIENT_ERROR duplicate flag"
#define E_FLAG "CLIENT_ERROR invalid flag"
#define E_TOKEN "CLIENT_ERROR bad token in command line format"
#define E_MLEN "CLIENT_ERROR incorrect length for M token"
#define E_DELTA "CLIENT_ERROR invalid numeric delta value"
#define E_INITIAL "CLIENT_ERROR invalid numeric initial value"
#define E_B64 "CLIENT_ERROR error decoding key"
#define E_OPAQUE "CLIENT_ERROR opaque token too long"
#define E_MG_LONG "CLIENT_ERROR options flags are too long"
#define E_LONG "CLIENT_ERROR options flags too long"
#define E_DUP_OR_BAD "CLIENT_ERROR invalid or duplicate flag"
#define E_MS_MODE "CLIENT_ERROR invalid mode for ms M token"
#define E_MA_MODE "CLIENT_ERROR invalid mode for ma M token"
#define E_CHUNK "CLIENT_ERROR bad data chunk"
#define E_TOO_LARGE "SERVER_ERROR object too large for cache"

#define MIB ((size_t)1024 * 1024)

/* ---- guarded input ------------------------------------------------------------------------ */

static char *arena;
static size_t arena_len;
static size_t page_size;

static const char *place(const void *src, size_t len)
{
    char *dst = arena + arena_len - len;
    char *lo = arena + (size_t)(dst - arena) / page_size * page_size;

    assert_true(len <= arena_len);
    if (lo == arena + arena_len) {
        return dst;
    }
    assert_int_equal(mprotect(lo, (size_t)(arena + arena_len - lo), PROT_READ | PROT_WRITE), 0);
    memcpy(dst, src, len);
    assert_int_equal(mprotect(lo, (size_t)(arena + arena_len - lo), PROT_READ), 0);
    return dst;
}

/* ---- cases ------------------------------------------------------------------------------- */

struct mcase {
    const char *name;
    const char *in;
    size_t len;                 /* 0: strlen(in) */
    enum proto_status st;
    const char *error;          /* PROTO_ERROR */
    size_t swallow;
    bool unlink;
    enum proto_cmd cmd;         /* PROTO_REQUEST */
    const char *key;            /* expected key bytes (NULL: not checked) */
    size_t nkey;                /* 0: strlen(key) */
    const char *late;           /* expected late_error */
    size_t item_max;            /* 0: 1 MiB */
};

#define IN(s) .in = (s), .len = sizeof(s) - 1
#define ERR(e) .st = PROTO_ERROR, .error = (e)
#define REQ(c) .st = PROTO_REQUEST, .cmd = (c)

static int failures;
static const char *case_name;

static void fail_at(int line, const char *fmt, ...)
{
    va_list ap;
    printf("# FAIL %s (line %d): ", case_name, line);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    failures++;
}

#define CHECK(cond, ...) do { if (!(cond)) { fail_at(__LINE__, __VA_ARGS__); } } while (0)

static void parse(const char *in, size_t len, size_t item_max, struct proto_request *req,
                  struct proto_result *res)
{
    const struct proto_limits lim = {.item_max = item_max != 0 ? item_max : MIB};
    /* leftovers of an earlier request must not leak into this one */
    memset(req, 0x5a, sizeof(*req));
    memset(res, 0x5a, sizeof(*res));
    proto_text_parse(in, len, &lim, req, res);
}

static bool within(const char *p, size_t n, const char *lo, size_t nlo)
{
    return n == 0 || (p >= lo && p + n <= lo + nlo);
}

/* Properties every result has, whatever the input. */
static void check_invariants(const char *in, size_t len, const struct proto_request *req,
                             const struct proto_result *res)
{
    CHECK(res->status == PROTO_NEED_MORE || res->status == PROTO_REQUEST ||
              res->status == PROTO_ERROR || res->status == PROTO_CLOSE,
          "status %d", (int)res->status);
    if (res->status == PROTO_NEED_MORE) {
        CHECK(res->need == 0 || res->need > len, "need %zu with %zu bytes", res->need, len);
        return;
    }
    if (res->status == PROTO_CLOSE) {
        return;
    }
    CHECK(res->consumed > 0 && res->consumed <= len, "consumed %zu of %zu", res->consumed, len);
    if (res->status == PROTO_ERROR) {
        CHECK(res->error != NULL && (strncmp(res->error, "CLIENT_ERROR", 12) == 0 ||
                                     strncmp(res->error, "SERVER_ERROR", 12) == 0 ||
                                     strncmp(res->error, E_ERROR, 5) == 0),
              "error %s", res->error ? res->error : "(null)");
        return;
    }
    if (req->cmd < PROTO_CMD_META_GET) {
        return;     /* a text command: test_text_parser's business */
    }
    if (req->cmd != PROTO_CMD_META_NOOP) {
        CHECK(req->nkey >= 1 && req->nkey <= PROTO_KEY_MAX, "nkey %zu", req->nkey);
        CHECK(within(req->key, req->nkey, in, len) ||
                  within(req->key, req->nkey, req->meta.key_buf, sizeof(req->meta.key_buf)),
              "key outside the input");
    }
    if (req->cmd != PROTO_CMD_META_NOOP && req->cmd != PROTO_CMD_META_DEBUG) {
        CHECK(within(req->meta.flags, req->meta.nflags, in, res->consumed),
              "flags outside the line");
    }
    if (req->cmd == PROTO_CMD_META_SET) {
        CHECK(within(req->data, req->ndata, in, res->consumed), "data outside the request");
        CHECK(req->data[req->ndata] == '\r' && req->data[req->ndata + 1] == '\n',
              "data not followed by CRLF");
    }
}

static void check_wanted(const struct mcase *c, const char *in, size_t len,
                           const struct proto_request *req, const struct proto_result *res)
{
    CHECK(res->status == c->st, "status %d, want %d", (int)res->status, (int)c->st);
    if (res->status != c->st) {
        return;
    }
    if (c->st == PROTO_ERROR) {
        CHECK(res->error != NULL && strcmp(res->error, c->error) == 0, "error '%s', want '%s'",
              res->error ? res->error : "(null)", c->error);
        CHECK(res->swallow == c->swallow, "swallow %zu, want %zu", res->swallow, c->swallow);
        CHECK(res->unlink_key == c->unlink, "unlink %d", res->unlink_key);
        if (c->unlink || (c->key != NULL && c->swallow > 0)) {
            size_t nk = c->nkey != 0 ? c->nkey : strlen(c->key);
            CHECK(req->nkey == nk && memcmp(req->key, c->key, nk) == 0, "unlink key");
        }
        return;
    }
    if (c->st == PROTO_REQUEST) {
        CHECK(res->consumed == len, "consumed %zu of %zu", res->consumed, len);
        CHECK(req->cmd == c->cmd, "cmd %d, want %d", (int)req->cmd, (int)c->cmd);
        CHECK(res->swallow == 0, "swallow %zu", res->swallow);
        if (c->key != NULL) {
            size_t nk = c->nkey != 0 ? c->nkey : strlen(c->key);
            CHECK(req->nkey == nk && memcmp(req->key, c->key, nk) == 0, "key '%.*s'",
                  (int)req->nkey, req->key);
        }
        CHECK((c->late == NULL) == (req->meta.late_error == NULL) &&
                  (c->late == NULL || strcmp(c->late, req->meta.late_error) == 0),
              "late error");
        CHECK(req->noreply == false, "noreply must stay false for meta commands");
    }
    (void)in;
}

/* Parses c whole, then at every split point. */
static void run_case(const struct mcase *c)
{
    struct proto_request req;
    struct proto_result res;
    struct proto_request sreq;
    struct proto_result sres;
    size_t len = c->len != 0 ? c->len : strlen(c->in);
    const char *in = place(c->in, len);

    case_name = c->name;
    parse(in, len, c->item_max, &req, &res);
    check_invariants(in, len, &req, &res);
    check_wanted(c, in, len, &req, &res);
    size_t whole = res.status == PROTO_NEED_MORE ? len + 1 : res.consumed;
    for (size_t p = 0; p < len && len <= 65536; p++) {
        const char *pin = place(c->in, p);
        parse(pin, p, c->item_max, &sreq, &sres);
        check_invariants(pin, p, &sreq, &sres);
        if (p < whole) {
            CHECK(sres.status == PROTO_NEED_MORE || sres.status == PROTO_ERROR,
                  "prefix %zu: status %d before the request is complete", p, (int)sres.status);
            if (sres.status == PROTO_ERROR) {
                /* only a rejected ms line errs before its data block: the same error */
                CHECK(res.status == PROTO_ERROR && strcmp(sres.error, res.error) == 0 &&
                          sres.consumed == res.consumed,
                      "prefix %zu: early error %s", p, sres.error);
            }
        } else {
            CHECK(sres.status == res.status && sres.consumed == res.consumed,
                  "prefix %zu: status %d consumed %zu, whole %d %zu", p, (int)sres.status,
                  sres.consumed, (int)res.status, res.consumed);
        }
    }
}

static void run_cases(const struct mcase *cs, size_t n)
{
    failures = 0;
    for (size_t i = 0; i < n; i++) {
        run_case(&cs[i]);
    }
    printf("# %zu case(s) checked\n", n);
    assert_int_equal(failures, 0);
}

#define RUN(cases) run_cases(cases, sizeof(cases) / sizeof(cases[0]))

/* ---- mg -------------------------------------------------------------------------------- */

static const struct mcase mg_cases[] = {
    {.name = "mg_key_only", IN("mg foo\r\n"), REQ(PROTO_CMD_META_GET), .key = "foo"},
    {.name = "mg_bare_lf", IN("mg foo v\n"), REQ(PROTO_CMD_META_GET), .key = "foo"},
    {.name = "mg_every_flag", IN("mg foo b s v f t c k O1 h l u q N0 R0 T0\r\n"), ERR(E_B64)},
    {.name = "mg_every_flag_plain", IN("mg foo s v f t c k O1 h l u q N30 R30 T30\r\n"),
     REQ(PROTO_CMD_META_GET), .key = "foo"},
    {.name = "mg_ignored_flags", IN("mg foo P L F5 C5 MX J5 D5 I\r\n"), REQ(PROTO_CMD_META_GET)},
    {.name = "mg_spaces", IN("mg  foo  v  \r\n"), REQ(PROTO_CMD_META_GET), .key = "foo"},
    {.name = "mg_no_key", IN("mg\r\n"), ERR(E_ERROR)},
    {.name = "mg_space_only", IN("mg \r\n"), ERR(E_ERROR)},
    {.name = "mg_dup", IN("mg foo v v\r\n"), ERR(E_DUP)},
    {.name = "mg_dup_opaque", IN("mg foo O1 O2\r\n"), ERR(E_DUP)},
    {.name = "mg_high_byte_flag", IN("mg foo \xe9\r\n"), ERR(E_DUP)},
    {.name = "mg_del_flag", IN("mg foo \x7f\r\n"), ERR(E_DUP)},
    {.name = "mg_unknown", IN("mg foo z\r\n"), ERR(E_FLAG)},
    {.name = "mg_digit_flag", IN("mg foo 1\r\n"), ERR(E_FLAG)},
    {.name = "mg_E_is_not_1_6_18", IN("mg foo E5\r\n"), ERR(E_FLAG)},
    {.name = "mg_S", IN("mg foo S\r\n"), ERR(E_FLAG)},
    {.name = "mg_T_empty", IN("mg foo T\r\n"), ERR(E_TOKEN)},
    {.name = "mg_T_junk", IN("mg foo Tabc\r\n"), ERR(E_TOKEN)},
    {.name = "mg_N_empty", IN("mg foo N\r\n"), ERR(E_TOKEN)},
    {.name = "mg_R_junk", IN("mg foo R1x\r\n"), ERR(E_TOKEN)},
    {.name = "mg_D", IN("mg foo Dx\r\n"), ERR(E_DELTA)},
    {.name = "mg_J", IN("mg foo J\r\n"), ERR(E_INITIAL)},
    {.name = "mg_C", IN("mg foo C-1\r\n"), ERR(E_TOKEN)},
    {.name = "mg_F_keeps_default", IN("mg foo Fx\r\n"), ERR(E_FORMAT)},
    {.name = "mg_M_short", IN("mg foo M\r\n"), ERR(E_MLEN)},
    {.name = "mg_M_long", IN("mg foo Mxy\r\n"), ERR(E_MLEN)},
    {.name = "mg_later_error_wins", IN("mg foo Tabc Dx\r\n"), ERR(E_DELTA)},
    {.name = "mg_unknown_stops", IN("mg foo z Tabc\r\n"), ERR(E_FLAG)},
    {.name = "mg_bad_value_then_unknown", IN("mg foo Tabc z\r\n"), ERR(E_FLAG)},
    {.name = "mg_F_after_T", IN("mg foo Tabc Fx\r\n"), ERR(E_TOKEN)},
    {.name = "mg_17_flags", IN("mg foo 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\r\n"),
     ERR(E_FLAG)},
    {.name = "mg_18_flags", IN("mg foo 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18\r\n"),
     ERR(E_MG_LONG)},
    {.name = "mg_opaque_32", IN("mg foo O1234567890123456789012345678901\r\n"),
     REQ(PROTO_CMD_META_GET)},
    {.name = "mg_opaque_33_late", IN("mg foo O12345678901234567890123456789012\r\n"),
     REQ(PROTO_CMD_META_GET), .late = E_OPAQUE},
    {.name = "mg_nul_ends_line", IN("mg foo\0 v\r\n"), REQ(PROTO_CMD_META_GET), .key = "foo"},
    {.name = "mg_ours_control_key", IN("mg a\x01" "b v\r\n"), ERR(E_FORMAT)},
    {.name = "mg_ours_tab_key", IN("mg a\tb\r\n"), ERR(E_FORMAT)},
};

static void test_mg(void **state)
{
    (void)state;
    RUN(mg_cases);
}

/* The flag walk the executor does: tokens in request order, values parsed. */
static void test_mg_fields(void **state)
{
    struct proto_request req;
    struct proto_result res;
    static const char line[] = "mg kk T-5 N30 R2592001 v O9 k q\r\n";
    const char *in = place(line, sizeof(line) - 1);
    const char *want[] = {"T-5", "N30", "R2592001", "v", "O9", "k", "q"};
    size_t pos = 0;
    const char *tok;
    size_t ntok;
    size_t i = 0;

    (void)state;
    parse(in, sizeof(line) - 1, 0, &req, &res);
    assert_int_equal(res.status, PROTO_REQUEST);
    assert_int_equal(req.meta.ttl, -5);
    assert_int_equal(req.meta.vivify_ttl, 30);
    assert_int_equal(req.meta.recache_ttl, 2592001);
    assert_true(proto_meta_has(&req, 'v') && proto_meta_has(&req, 'q') &&
                proto_meta_has(&req, 'k') && !proto_meta_has(&req, 'c'));
    assert_false(proto_meta_has(&req, 'b') || req.meta.key_binary);
    while (proto_meta_next_flag(&req, &pos, &tok, &ntok)) {
        assert_true(i < 7);
        assert_int_equal(ntok, strlen(want[i]));
        assert_memory_equal(tok, want[i], ntok);
        i++;
    }
    assert_int_equal(i, 7);
}

/* ---- base64 keys --------------------------------------------------------------------------- */

static const struct mcase b64_cases[] = {
    {.name = "b64_foo", IN("mg Zm9v b k\r\n"), REQ(PROTO_CMD_META_GET), .key = "foo"},
    {.name = "b64_flag_with_tail", IN("mg Zm9v bxyz\r\n"), REQ(PROTO_CMD_META_GET), .key = "foo"},
    {.name = "b64_pad1", IN("mg Zm8= b\r\n"), REQ(PROTO_CMD_META_GET), .key = "fo"},
    {.name = "b64_pad2", IN("mg AA== b\r\n"), REQ(PROTO_CMD_META_GET), .key = "\0", .nkey = 1},
    {.name = "b64_no_pad", IN("mg Zm8 b\r\n"), ERR(E_B64)},
    {.name = "b64_one", IN("mg Z b\r\n"), ERR(E_B64)},
    {.name = "b64_five", IN("mg Zm9v= b\r\n"), ERR(E_B64)},
    {.name = "b64_all_pad", IN("mg ==== b\r\n"), ERR(E_B64)},
    {.name = "b64_pad3", IN("mg A=== b\r\n"), ERR(E_B64)},
    {.name = "b64_urlsafe_skipped", IN("mg Zm-v b\r\n"), ERR(E_B64)},
    {.name = "b64_all_skipped", IN("mg _-_- b\r\n"), ERR(E_B64)},
    {.name = "b64_six", IN("mg Zm9vYg b\r\n"), ERR(E_B64)},
    {.name = "b64_eight", IN("mg Zm9vYg== b\r\n"), REQ(PROTO_CMD_META_GET), .key = "foob"},
    {.name = "b64_loose_bits", IN("mg ZZ== b\r\n"), REQ(PROTO_CMD_META_GET), .key = "e"},
    {.name = "b64_inner_pad", IN("mg Z=9v b\r\n"), REQ(PROTO_CMD_META_GET), .key = "d\x0f"},
    {.name = "b64_stops_after_pad", IN("mg Zm8=Zm9v b\r\n"), REQ(PROTO_CMD_META_GET), .key = "fo"},
    {.name = "b64_skips_control", IN("mg Zm9v\x01 b\r\n"), REQ(PROTO_CMD_META_GET), .key = "foo"},
    {.name = "b64_plus_slash", IN("mg Zm9v+/== b\r\n"), REQ(PROTO_CMD_META_GET),
     .key = "foo\xfb"},
    {.name = "b64_dup", IN("mg Zm9v b b\r\n"), ERR(E_DUP)},
    {.name = "b64_decodes_control", IN("mg AQI= b\r\n"), REQ(PROTO_CMD_META_GET),
     .key = "\x01\x02"},
    {.name = "b64_ms", IN("ms Zm9v 2 b\r\nhi\r\n"), REQ(PROTO_CMD_META_SET), .key = "foo"},
    {.name = "b64_ms_bad_swallows", IN("ms foo 2 b\r\n"), ERR(E_B64), .swallow = 4},
    {.name = "b64_md_bad", IN("md foo b\r\n"), ERR(E_DUP_OR_BAD)},
    {.name = "b64_ma_bad", IN("ma foo b\r\n"), ERR(E_DUP_OR_BAD)},
    {.name = "b64_me", IN("me Zm9v b\r\n"), REQ(PROTO_CMD_META_DEBUG), .key = "foo"},
    {.name = "b64_me_bad", IN("me foo b\r\n"), ERR(E_FORMAT)},
    {.name = "b64_me_only_exact_b", IN("me Zm9v bx\r\n"), REQ(PROTO_CMD_META_DEBUG),
     .key = "Zm9v"},
    {.name = "b64_me_b_not_third", IN("me Zm9v x b\r\n"), REQ(PROTO_CMD_META_DEBUG),
     .key = "Zm9v"},
};

static void test_base64_keys(void **state)
{
    (void)state;
    RUN(b64_cases);
}

static void test_base64_codec(void **state)
{
    unsigned char raw[200];
    unsigned char back[200];
    char enc[300];
    static const struct {
        const char *in;
        const char *out;
    } enc_cases[] = {
        {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="},
        {"\xff\xfe\xfd", "//79"}, {"e", "ZQ=="},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(enc_cases) / sizeof(enc_cases[0]); i++) {
        size_t n = proto_base64_encode((const unsigned char *)enc_cases[i].in,
                                       strlen(enc_cases[i].in), enc);
        assert_int_equal(n, strlen(enc_cases[i].out));
        assert_memory_equal(enc, enc_cases[i].out, n);
    }
    /* every length up to the largest decoded key (248 digits of a 250-byte key) round-trips */
    for (size_t n = 1; n <= 186; n++) {
        for (size_t i = 0; i < n; i++) {
            raw[i] = (unsigned char)(i * 37 + n);
        }
        size_t ne = proto_base64_encode(raw, n, enc);
        assert_true(ne <= PROTO_KEY_MAX);
        assert_int_equal(proto_base64_decode(enc, ne, back), n);
        assert_memory_equal(back, raw, n);
    }
    assert_int_equal(proto_base64_decode("", 0, back), 0);
}

/* ---- ms ------------------------------------------------------------------------------------ */

static char big_ms[2100000];
static size_t big_ms_len;

static const struct mcase ms_cases[] = {
    {.name = "ms_basic", IN("ms foo 2\r\nhi\r\n"), REQ(PROTO_CMD_META_SET), .key = "foo"},
    {.name = "ms_empty", IN("ms foo 0\r\n\r\n"), REQ(PROTO_CMD_META_SET)},
    {.name = "ms_every_flag", IN("ms foo 2 b\r\nhi\r\n"), ERR(E_B64), .swallow = 4},
    {.name = "ms_flags", IN("ms foo 2 c k O1 q T30 F5 C7 I MS\r\nhi\r\n"), REQ(PROTO_CMD_META_SET)},
    {.name = "ms_modes_E", IN("ms foo 2 ME\r\nhi\r\n"), REQ(PROTO_CMD_META_SET)},
    {.name = "ms_modes_A", IN("ms foo 2 MA\r\nhi\r\n"), REQ(PROTO_CMD_META_SET)},
    {.name = "ms_modes_P", IN("ms foo 2 MP\r\nhi\r\n"), REQ(PROTO_CMD_META_SET)},
    {.name = "ms_modes_R", IN("ms foo 2 MR\r\nhi\r\n"), REQ(PROTO_CMD_META_SET)},
    {.name = "ms_ignored", IN("ms foo 2 N5 R5 J5 D5 P L u h l t s f v\r\nhi\r\n"),
     REQ(PROTO_CMD_META_SET)},
    {.name = "ms_crlf_in_value", IN("ms foo 4\r\na\r\nb\r\n"), REQ(PROTO_CMD_META_SET)},
    {.name = "ms_length_forms", IN("ms foo +02\r\nhi\r\n"), REQ(PROTO_CMD_META_SET)},
    {.name = "ms_length_wraps", IN("ms foo 4294967298\r\nhi\r\n"), REQ(PROTO_CMD_META_SET)},
    {.name = "ms_short", IN("ms\r\n"), ERR(E_ERROR)},
    {.name = "ms_no_length", IN("ms foo\r\n"), ERR(E_FORMAT)},
    {.name = "ms_bad_length", IN("ms foo abc\r\n"), ERR(E_FORMAT)},
    {.name = "ms_negative_length", IN("ms foo -1\r\n"), ERR(E_FORMAT)},
    {.name = "ms_length_int_max", IN("ms foo 2147483647\r\n"), ERR(E_FORMAT)},
    {.name = "ms_length_junk", IN("ms foo 2x\r\n"), ERR(E_FORMAT)},
    {.name = "ms_16_flags", IN("ms foo 2 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\r\n"),
     ERR(E_FLAG), .swallow = 4},
    {.name = "ms_17_flags", IN("ms foo 2 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\r\n"),
     ERR(E_LONG)},
    {.name = "ms_unknown", IN("ms foo 2 z\r\n"), ERR(E_FLAG), .swallow = 4},
    {.name = "ms_dup", IN("ms foo 2 v v\r\n"), ERR(E_DUP), .swallow = 4},
    {.name = "ms_bad_T", IN("ms foo 2 Tx\r\n"), ERR(E_TOKEN), .swallow = 4},
    {.name = "ms_bad_F", IN("ms foo 2 F-1\r\n"), ERR(E_FORMAT), .swallow = 4},
    {.name = "ms_bad_C", IN("ms foo 2 C18446744073709551616\r\n"), ERR(E_TOKEN), .swallow = 4},
    {.name = "ms_bad_mode", IN("ms foo 2 MX\r\n"), ERR(E_MS_MODE), .swallow = 4},
    {.name = "ms_lowercase_mode", IN("ms foo 2 Ms\r\n"), ERR(E_MS_MODE), .swallow = 4},
    {.name = "ms_M_length", IN("ms foo 2 Mxy\r\n"), ERR(E_MLEN), .swallow = 4},
    {.name = "ms_opaque", IN("ms foo 2 O123456789012345678901234567890123\r\n"), ERR(E_OPAQUE),
     .swallow = 4},
    {.name = "ms_mode_beats_opaque", IN("ms foo 2 MX O123456789012345678901234567890123\r\n"),
     ERR(E_MS_MODE), .swallow = 4},
    {.name = "ms_flag_error_beats_opaque", IN("ms foo 2 O123456789012345678901234567890123 z\r\n"),
     ERR(E_FLAG), .swallow = 4},
    {.name = "ms_bad_chunk", IN("ms foo 2\r\nhixx\r\n"), ERR(E_CHUNK)},
    {.name = "ms_bad_chunk_q", IN("ms foo 2 q\r\nhi\n\r"), ERR(E_CHUNK)},
    {.name = "ms_too_large", IN("ms big 2000000 ME q\r\n"), ERR(E_TOO_LARGE), .swallow = 2000002,
     .unlink = true, .key = "big"},
    {.name = "ms_too_large_b64_key", IN("ms Zm9v 2000000 b\r\n"), ERR(E_TOO_LARGE),
     .swallow = 2000002, .unlink = true, .key = "foo"},
    {.name = "ms_huge_length", IN("ms big 2147483645\r\n"), ERR(E_TOO_LARGE),
     .swallow = 2147483647, .unlink = true, .key = "big"},
    {.name = "ms_limit_exact", IN("ms k 1048512 F1\r\n"), .st = PROTO_NEED_MORE},
    {.name = "ms_limit_with_flags", IN("ms k 1048513 F1\r\n"), ERR(E_TOO_LARGE),
     .swallow = 1048515, .unlink = true, .key = "k"},
    {.name = "ms_small_item_max", IN("ms k 100\r\n"), ERR(E_TOO_LARGE), .swallow = 102,
     .unlink = true, .key = "k", .item_max = 128},
    {.name = "ms_ours_control_key", IN("ms a\x01" "b 1\r\nx\r\n"), ERR(E_FORMAT)},
    {.name = "ms_b64_control_ok", IN("ms A\x01QI= 1 b\r\nx\r\n"), REQ(PROTO_CMD_META_SET),
     .key = "\x01\x02"},
};

static void test_ms(void **state)
{
    (void)state;
    RUN(ms_cases);
}

/* A value just under -I, split at a few hundred points (every point would be too slow). */
static void test_ms_big_value(void **state)
{
    struct proto_request req;
    struct proto_result res;
    const size_t vlen = 1048500;

    (void)state;
    big_ms_len = (size_t)snprintf(big_ms, sizeof(big_ms), "ms big %zu F3 c\r\n", vlen);
    memset(big_ms + big_ms_len, 'y', vlen);
    big_ms_len += vlen;
    memcpy(big_ms + big_ms_len, "\r\n", 2);
    big_ms_len += 2;
    const char *in = place(big_ms, big_ms_len);
    parse(in, big_ms_len, 0, &req, &res);
    assert_int_equal(res.status, PROTO_REQUEST);
    assert_int_equal(req.ndata, vlen);
    assert_int_equal(req.meta.client_flags, 3);
    for (size_t p = 0; p < big_ms_len; p += 3571) {
        in = place(big_ms, p);
        parse(in, p, 0, &req, &res);
        assert_int_equal(res.status, PROTO_NEED_MORE);
        if (p >= 20) {
            assert_int_equal(res.need, big_ms_len);
        }
    }
}

/* ---- md ma me mn -------------------------------------------------------------------------- */

static const struct mcase other_cases[] = {
    {.name = "md_basic", IN("md foo\r\n"), REQ(PROTO_CMD_META_DELETE), .key = "foo"},
    {.name = "md_flags", IN("md foo q C5 I T30 k O1\r\n"), REQ(PROTO_CMD_META_DELETE)},
    {.name = "md_short", IN("md\r\n"), ERR(E_ERROR)},
    {.name = "md_unknown", IN("md foo z\r\n"), ERR(E_DUP_OR_BAD)},
    {.name = "md_dup", IN("md foo q q\r\n"), ERR(E_DUP_OR_BAD)},
    {.name = "md_bad_T", IN("md foo Tx\r\n"), ERR(E_DUP_OR_BAD)},
    {.name = "md_opaque_early", IN("md foo O123456789012345678901234567890123\r\n"),
     ERR(E_OPAQUE)},
    {.name = "md_too_many", IN("md foo 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18\r\n"),
     ERR(E_LONG)},
    {.name = "ma_basic", IN("ma foo\r\n"), REQ(PROTO_CMD_META_ARITH), .key = "foo"},
    {.name = "ma_flags", IN("ma foo N0 J5 D7 T30 MD q v t c k O1\r\n"),
     REQ(PROTO_CMD_META_ARITH)},
    {.name = "ma_modes", IN("ma foo M+\r\n"), REQ(PROTO_CMD_META_ARITH)},
    {.name = "ma_mode_minus", IN("ma foo M-\r\n"), REQ(PROTO_CMD_META_ARITH)},
    {.name = "ma_mode_I", IN("ma foo MI\r\n"), REQ(PROTO_CMD_META_ARITH)},
    {.name = "ma_mode_bad", IN("ma foo Mi\r\n"), ERR(E_MA_MODE)},
    {.name = "ma_M_length", IN("ma foo Mxx\r\n"), ERR(E_DUP_OR_BAD)},
    {.name = "ma_bad_D", IN("ma foo D-1\r\n"), ERR(E_DUP_OR_BAD)},
    {.name = "ma_bad_J", IN("ma foo J18446744073709551616\r\n"), ERR(E_DUP_OR_BAD)},
    {.name = "ma_opaque_late", IN("ma foo O123456789012345678901234567890123\r\n"),
     REQ(PROTO_CMD_META_ARITH), .late = E_OPAQUE},
    {.name = "ma_short", IN("ma\r\n"), ERR(E_ERROR)},
    {.name = "me_basic", IN("me foo\r\n"), REQ(PROTO_CMD_META_DEBUG), .key = "foo"},
    {.name = "me_extra", IN("me foo x y z\r\n"), REQ(PROTO_CMD_META_DEBUG), .key = "foo"},
    {.name = "me_short", IN("me\r\n"), ERR(E_FORMAT)},
    {.name = "me_ours_control", IN("me a\x01\r\n"), ERR(E_FORMAT)},
    {.name = "mn", IN("mn\r\n"), REQ(PROTO_CMD_META_NOOP)},
    {.name = "mn_args", IN("mn x y z\r\n"), REQ(PROTO_CMD_META_NOOP)},
    {.name = "mx", IN("mx foo\r\n"), ERR(E_ERROR)},
    {.name = "m_alone", IN("m\r\n"), ERR(E_ERROR)},
    {.name = "MG_upper", IN("MG foo\r\n"), ERR(E_ERROR)},
    {.name = "mgg", IN("mgg foo\r\n"), ERR(E_ERROR)},
};

static void test_md_ma_me_mn(void **state)
{
    (void)state;
    RUN(other_cases);
}

static void test_ma_values(void **state)
{
    struct proto_request req;
    struct proto_result res;
    static const char line[] = "ma n D18446744073709551615 J42 MD C9 N-1\r\n";
    const char *in = place(line, sizeof(line) - 1);

    (void)state;
    parse(in, sizeof(line) - 1, 0, &req, &res);
    assert_int_equal(res.status, PROTO_REQUEST);
    assert_true(req.meta.delta == UINT64_MAX);
    assert_int_equal(req.meta.initial, 42);
    assert_int_equal(req.meta.mode, 'D');
    assert_true(req.meta.has_cas && req.meta.cas == 9);
    assert_int_equal(req.meta.vivify_ttl, -1);

    static const char dflt[] = "ma n\r\n";
    in = place(dflt, sizeof(dflt) - 1);
    parse(in, sizeof(dflt) - 1, 0, &req, &res);
    assert_int_equal(res.status, PROTO_REQUEST);
    assert_int_equal(req.meta.delta, 1);
    assert_false(req.meta.has_cas);
}

/* ---- pipelines and hostile input --------------------------------------------------------- */

/* Walks a buffer of many requests the way the connection does. */
static void test_pipeline(void **state)
{
    static const char in_s[] = "mg a v\r\nms b 3 T0\r\nxyz\r\nmn\r\nmd c q\r\nma d N0\r\n"
                               "ms e 1 zz\r\nx\r\nme f\r\nmg g O1 k q\r\nget a\r\nmn\r\n";
    static const enum proto_status want_st[] = {
        PROTO_REQUEST, PROTO_REQUEST, PROTO_REQUEST, PROTO_REQUEST, PROTO_REQUEST,
        PROTO_ERROR, PROTO_REQUEST, PROTO_REQUEST, PROTO_REQUEST, PROTO_REQUEST,
    };
    struct proto_request req;
    struct proto_result res;
    size_t len = sizeof(in_s) - 1;
    const char *in = place(in_s, len);
    size_t off = 0;
    size_t n = 0;

    (void)state;
    while (off < len) {
        parse(in + off, len - off, 0, &req, &res);
        assert_true(n < sizeof(want_st) / sizeof(want_st[0]));
        assert_int_equal(res.status, want_st[n]);
        off += res.consumed + res.swallow;
        n++;
    }
    assert_int_equal(off, len);
    assert_int_equal(n, sizeof(want_st) / sizeof(want_st[0]));
}

static uint64_t rng_state;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void fuzz_one(const char *buf, size_t len)
{
    struct proto_request req;
    struct proto_result res;
    const char *in = place(buf, len);

    parse(in, len, 0, &req, &res);
    check_invariants(in, len, &req, &res);
    /* every prefix is parsed too: nothing may depend on bytes past len */
    for (size_t p = 0; p < len; p += 1 + rnd() % 7) {
        struct proto_request sreq;
        struct proto_result sres;
        const char *pin = place(buf, p);
        parse(pin, p, 0, &sreq, &sres);
        check_invariants(pin, p, &sreq, &sres);
    }
}

static void test_hostile_generated(void **state)
{
    static const char *const pieces[] = {
        "mg ", "ms ", "md ", "ma ", "mn", "me ", "k ", "key ", "Zm9v ", "AA== ", "==== ",
        "b ", "v ", "q ", "k ", "O1 ", "O123456789012345678901234567890123 ", "T30 ", "T-1 ",
        "N0 ", "R5 ", "c ", "f ", "s ", "t ", "h ", "l ", "u ", "I ", "MS ", "ME ", "MX ",
        "Mxy ", "D5 ", "J5 ", "C7 ", "F1 ", "Tx ", "z ", "2 ", "0 ", "-1 ", "2147483645 ",
        "99999999999999999999 ", "\r\n", "\r\n", "\n", " ", "  ", "\t", "\x01", "\xff",
        "hi\r\n", "ms k 2 q\r\nhi\r\n", "mg k v\r\n",
    };
    char in[1500];
    char name[64];

    (void)state;
    failures = 0;
    rng_state = 0x9e3779b97f4a7c15ULL;
    for (int iter = 0; iter < 2000; iter++) {
        size_t len = 0;
        size_t npieces = 1 + rnd() % 30;
        for (size_t i = 0; i < npieces; i++) {
            if (rnd() % 20 == 0) {
                in[len++] = (char)(rnd() & 0xff);
                continue;
            }
            const char *p = pieces[rnd() % (sizeof(pieces) / sizeof(pieces[0]))];
            size_t pl = strlen(p);
            if (len + pl + 260 >= sizeof(in)) {
                break;
            }
            memcpy(in + len, p, pl);
            len += pl;
            if (rnd() % 50 == 0) {
                size_t kl = 249 + rnd() % 3;
                memset(in + len, 'A', kl);
                len += kl;
            }
        }
        snprintf(name, sizeof(name), "generated_%d", iter);
        case_name = name;
        fuzz_one(in, len);
    }
    printf("# 2000 generated inputs\n");
    assert_int_equal(failures, 0);
}

static void test_hostile_lines(void **state)
{
    char line[3000];
    struct proto_request req;
    struct proto_result res;
    size_t n;

    (void)state;
    failures = 0;
    case_name = "hostile_lines";
    /* a meta line without a newline past 2048 bytes closes, as any text line does */
    n = (size_t)snprintf(line, sizeof(line), "mg ");
    memset(line + n, 'k', 2100);
    n += 2100;
    parse(place(line, n), n, 0, &req, &res);
    assert_int_equal(res.status, PROTO_CLOSE);
    /* a long line with a newline: the key is too long */
    line[n++] = '\n';
    parse(place(line, n), n, 0, &req, &res);
    assert_int_equal(res.status, PROTO_ERROR);
    assert_string_equal(res.error, E_FORMAT);
    /* 250-byte keys are fine, plain or in base64; 251 are not */
    for (size_t kl = 249; kl <= 252; kl++) {
        for (int b = 0; b < 2; b++) {
            n = (size_t)snprintf(line, sizeof(line), "mg ");
            memset(line + n, 'A', kl);
            n += kl;
            n += (size_t)snprintf(line + n, sizeof(line) - n, "%s\r\n", b ? " b" : "");
            parse(place(line, n), n, 0, &req, &res);
            if (kl > PROTO_KEY_MAX) {
                CHECK(res.status == PROTO_ERROR && strcmp(res.error, E_FORMAT) == 0, "%zu", kl);
            } else if (b && kl % 4 != 0) {
                CHECK(res.status == PROTO_ERROR && strcmp(res.error, E_B64) == 0, "%zu b", kl);
            } else {
                CHECK(res.status == PROTO_REQUEST && req.nkey == (b ? kl / 4 * 3 : kl),
                      "%zu %d: nkey %zu", kl, b, req.nkey);
            }
        }
    }
    /* the same for ms, whose data line is then left to be read as a command */
    n = (size_t)snprintf(line, sizeof(line), "ms ");
    memset(line + n, 'k', 251);
    n += 251;
    n += (size_t)snprintf(line + n, sizeof(line) - n, " 1\r\nx\r\n");
    parse(place(line, n), n, 0, &req, &res);
    assert_int_equal(res.status, PROTO_ERROR);
    assert_string_equal(res.error, E_FORMAT);
    assert_int_equal(res.swallow, 0);
    assert_int_equal(res.consumed, n - 3);
    /* many tokens: memcached's tokenizer stops at 24; either way too many flags */
    n = (size_t)snprintf(line, sizeof(line), "md k");
    for (int i = 0; i < 500; i++) {
        n += (size_t)snprintf(line + n, sizeof(line) - n, " v");
    }
    n += (size_t)snprintf(line + n, sizeof(line) - n, "\r\n");
    parse(place(line, n), n, 0, &req, &res);
    assert_int_equal(res.status, PROTO_ERROR);
    assert_string_equal(res.error, E_LONG);
    assert_int_equal(failures, 0);
}

static void test_hostile_random_bytes(void **state)
{
    char in[600];
    char name[64];
    static const char *const cmds[] = {"mg ", "ms ", "md ", "ma ", "me ", "mn "};

    (void)state;
    failures = 0;
    rng_state = 0x2545f4914f6cdd1dULL;
    for (int iter = 0; iter < 1500; iter++) {
        size_t len = 3 + rnd() % (sizeof(in) - 3);
        memcpy(in, cmds[rnd() % 6], 3);
        for (size_t i = 3; i < len; i++) {
            uint64_t r = rnd();
            in[i] = (char)(r % 30 == 0 ? '\n' : r % 30 < 8 ? ' ' : (char)(r >> 8));
        }
        snprintf(name, sizeof(name), "random_%d", iter);
        case_name = name;
        fuzz_one(in, len);
    }
    assert_int_equal(failures, 0);
}

/* ---- me's numbers -------------------------------------------------------------------------- */

static void test_item_size_and_slab_class(void **state)
{
    /* item sizes and classes memcached 1.6.18 reported with "me" for those values */
    static const struct {
        size_t nkey;
        uint32_t flags;
        size_t nvalue;
        size_t size;
        unsigned cls;
    } cases[] = {
        {3, 0, 2, 64, 1}, {3, 1, 2, 68, 1}, {3, 0, 1, 63, 1}, {2, 0, 0, 61, 1},
        {3, 0, 34, 96, 1}, {3, 0, 35, 97, 2}, {4, 0, 100, 163, 4}, {4, 0, 1000, 1063, 12},
        {5, 0, 20000, 20064, 25}, {7, 0, 524288, 524354, 39}, {7, 0, 1000000, 1000066, 39},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t size = proto_meta_item_size(cases[i].nkey, cases[i].flags, cases[i].nvalue);
        assert_int_equal(size, cases[i].size);
        assert_int_equal(proto_meta_slab_class(size), cases[i].cls);
    }
    /* the class boundaries memcached's default slab table has */
    assert_int_equal(proto_meta_slab_class(96), 1);
    assert_int_equal(proto_meta_slab_class(97), 2);
    assert_int_equal(proto_meta_slab_class(120), 2);
    assert_int_equal(proto_meta_slab_class(394840), 38);
    assert_int_equal(proto_meta_slab_class(394841), 39);
    assert_int_equal(proto_meta_slab_class(524288), 39);
}

static int group_setup(void **state)
{
    (void)state;
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    arena_len = (sizeof(big_ms) + page_size - 1) / page_size * page_size;
    void *m = mmap(NULL, arena_len + page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        return -1;
    }
    arena = m;
    return mprotect(arena + arena_len, page_size, PROT_NONE);
}

static int group_teardown(void **state)
{
    (void)state;
    munmap(arena, arena_len + page_size);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mg),
        cmocka_unit_test(test_mg_fields),
        cmocka_unit_test(test_base64_keys),
        cmocka_unit_test(test_base64_codec),
        cmocka_unit_test(test_ms),
        cmocka_unit_test(test_ms_big_value),
        cmocka_unit_test(test_md_ma_me_mn),
        cmocka_unit_test(test_ma_values),
        cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_hostile_generated),
        cmocka_unit_test(test_hostile_lines),
        cmocka_unit_test(test_hostile_random_bytes),
        cmocka_unit_test(test_item_size_and_slab_class),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
