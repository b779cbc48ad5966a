"""Differential tests of the binary protocol: the same raw request streams go to mcstore and to
Debian's memcached 1.6.18 started side by side (same -I); their reply packets must be identical.

Each session runs on a fresh connection that starts with a FLUSH, and ends with a NOOP
sentinel (opaque SENTINEL) so the reader knows the replies are complete without sleeping;
sessions that close the connection are read until EOF, and the few whose sentinel memcached
swallows are read until a short deadline. Replies are compared packet by packet. Only the CAS
values are normalized: each distinct non-zero CAS becomes <cas1>, <cas2>, ... in order of
appearance, so which replies share a CAS (and which differ) is still compared.

Deliberate differences are tested in test_binary_hostile.py (lengths of 2 GiB and more,
where memcached's int arithmetic wraps).
"""

import struct
import time

import pytest

import mctest

ITEM_MAX = "1m"
SPLIT_GAP = 0.005       # pacing between the writes of a split session (not a wait)
SENTINEL = 0x5E771E     # opaque of the closing NOOP
READ_DEADLINE = 3.0     # a session normally completes in milliseconds
SWALLOWED_DEADLINE = 0.7    # sessions whose sentinel memcached swallows end on this deadline

# opcodes
GET, SET, ADD, REPLACE, DELETE, INCR, DECR, QUIT, FLUSH, GETQ, NOOP, VERSION = range(12)
GETK, GETKQ, APPEND, PREPEND, STAT = 0x0c, 0x0d, 0x0e, 0x0f, 0x10
SETQ, ADDQ, REPLACEQ, DELETEQ, INCRQ, DECRQ, QUITQ, FLUSHQ, APPENDQ, PREPENDQ = range(0x11, 0x1b)
VERBOSITY, TOUCH, GAT, GATQ = 0x1b, 0x1c, 0x1d, 0x1e
SASL_LIST, SASL_AUTH, SASL_STEP, GATK, GATKQ = 0x20, 0x21, 0x22, 0x23, 0x24


def pkt(op, key=b"", ext=b"", val=b"", opaque=0, cas=0, magic=0x80, datatype=0, vbucket=0,
        keylen=None, extlen=None, bodylen=None):
    """A request packet; the length fields may be overridden to lie."""
    kl = len(key) if keylen is None else keylen
    el = len(ext) if extlen is None else extlen
    bl = len(ext) + len(key) + len(val) if bodylen is None else bodylen
    return struct.pack(">BBHBBHIIQ", magic, op, kl, el, datatype, vbucket, bl, opaque,
                       cas) + ext + key + val


def store(op, key, val, flags=0, exp=0, cas=0, opaque=0):
    return pkt(op, key, struct.pack(">II", flags, exp), val, opaque=opaque, cas=cas)


def delta(op, key, by, initial=0, exp=0, cas=0, opaque=0):
    return pkt(op, key, struct.pack(">QQI", by, initial, exp), opaque=opaque, cas=cas)


def touch(op, key, exp, opaque=0, cas=0):
    return pkt(op, key, struct.pack(">I", exp), opaque=opaque, cas=cas)


def flush(delay=None, opaque=0, quiet=False):
    ext = b"" if delay is None else struct.pack(">I", delay)
    return pkt(FLUSHQ if quiet else FLUSH, ext=ext, opaque=opaque)


def parse_packets(buf):
    """Response packets in buf -> (list of (header fields..., body), leftover bytes)."""
    out = []
    pos = 0
    while len(buf) - pos >= 24:
        h = struct.unpack(">BBHBBHIIQ", buf[pos:pos + 24])
        n = h[6]
        if len(buf) - pos - 24 < n:
            break
        out.append(h + (buf[pos + 24:pos + 24 + n],))
        pos += 24 + n
    return out, buf[pos:]


def normalize(buf):
    """Packets with CAS values renumbered by first appearance, plus any trailing bytes."""
    packets, rest = parse_packets(buf)
    seen = {}
    out = []
    for p in packets:
        cas = p[8]
        if cas:
            cas = seen.setdefault(cas, "<cas%d>" % (len(seen) + 1))
        out.append(p[:8] + (cas,) + p[9:])
    return out, rest


class Await:
    """A session step: read replies up to the packet with this opaque before going on."""

    def __init__(self, opaque):
        self.opaque = opaque


class Case:
    def __init__(self, name, chunks, sentinel=True, swallowed=False, fresh=False):
        self.name = name
        self.chunks = chunks if isinstance(chunks, list) else [chunks]
        self.sentinel = sentinel        # send the closing NOOP
        self.swallowed = swallowed      # memcached eats the sentinel: read to a deadline
        self.fresh = fresh              # needs servers of its own


def with_cas_of(opaque, make):
    """A step that builds its request from the CAS of the reply with `opaque`."""
    def step(replies):
        packets, _ = parse_packets(replies)
        cas = [p[8] for p in packets if p[7] == opaque][-1]
        return make(cas)
    return step


K250 = b"k" * 250
K251 = b"k" * 251
BIG = b"x" * (1024 * 1024)      # over -I 1m once the item header is added
FIT_MAX = 1048576 - 60          # the longest value of a 1-byte key with flags 0 under -I 1m

CASES = [
    # ---- every opcode, well formed ----
    Case("noop_version", pkt(NOOP, opaque=1) + pkt(VERSION, opaque=2)),
    Case("set_get", store(SET, b"a", b"hello", flags=7, opaque=1) + pkt(GET, b"a", opaque=2)),
    Case("get_family_hit", store(SET, b"a", b"v", flags=0xdeadbeef) + pkt(GET, b"a", opaque=1)
         + pkt(GETK, b"a", opaque=2) + pkt(GETQ, b"a", opaque=3) + pkt(GETKQ, b"a", opaque=4)),
    Case("get_family_miss", pkt(GET, b"no", opaque=1) + pkt(GETK, b"no", opaque=2)
         + pkt(GETQ, b"no", opaque=3) + pkt(GETKQ, b"no", opaque=4)),
    Case("getq_multi_pipeline",
         store(SETQ, b"k1", b"1") + store(SETQ, b"k3", b"3") +
         b"".join(pkt(GETKQ, b"k%d" % i, opaque=i) for i in range(5)) + pkt(NOOP, opaque=9)),
    Case("add", store(ADD, b"a", b"1", opaque=1) + store(ADD, b"a", b"2", opaque=2)
         + store(ADDQ, b"a", b"3", opaque=3) + store(ADDQ, b"b", b"4", opaque=4)
         + pkt(GET, b"a") + pkt(GET, b"b")),
    Case("replace", store(REPLACE, b"a", b"1", opaque=1) + store(REPLACEQ, b"a", b"1", opaque=2)
         + store(SET, b"a", b"0") + store(REPLACE, b"a", b"2", flags=3, opaque=3)
         + store(REPLACEQ, b"a", b"3", opaque=4) + pkt(GET, b"a")),
    Case("append_prepend",
         pkt(APPEND, b"a", val=b"x", opaque=1) + pkt(PREPENDQ, b"a", val=b"x", opaque=2)
         + store(SET, b"a", b"m", flags=5, exp=100) + pkt(APPEND, b"a", val=b"r", opaque=3)
         + pkt(PREPEND, b"a", val=b"l", opaque=4) + pkt(APPENDQ, b"a", val=b"R", opaque=5)
         + pkt(PREPENDQ, b"a", val=b"L", opaque=6) + pkt(GETK, b"a", opaque=7)),
    Case("append_empty_value", store(SET, b"a", b"m") + pkt(APPEND, b"a", opaque=1)
         + pkt(GET, b"a")),
    Case("set_empty_value", store(SET, b"a", b"") + pkt(GET, b"a") + pkt(GETK, b"a")),
    Case("delete", store(SET, b"a", b"1") + pkt(DELETE, b"a", opaque=1)
         + pkt(DELETE, b"a", opaque=2) + pkt(DELETEQ, b"a", opaque=3)
         + store(SET, b"a", b"1") + pkt(DELETEQ, b"a", opaque=4) + pkt(GET, b"a")),
    # memcached rewrites a number in place (space padded) only while no queued reply holds the
    # item: a GET of the key must be answered before the next incr (Await) for a stable reply
    Case("incr_decr_existing",
         [store(SET, b"n", b"10") + delta(INCR, b"n", 5, opaque=1)
          + delta(DECR, b"n", 3, opaque=2) + delta(DECR, b"n", 100, opaque=3)
          + pkt(GET, b"n", opaque=4), Await(4), delta(INCRQ, b"n", 7, opaque=5)
          + delta(DECRQ, b"n", 1, opaque=6) + pkt(GET, b"n")]),
    Case("incr_creates_with_initial",
         delta(INCR, b"n", 1, initial=10, opaque=1) + delta(INCR, b"n", 1, initial=10, opaque=2)
         + delta(DECR, b"d", 5, initial=7, exp=100, opaque=3) + pkt(GETK, b"n")
         + pkt(GETK, b"d") + delta(INCRQ, b"q", 1, initial=3, opaque=4) + pkt(GET, b"q")),
    Case("incr_miss_no_create",
         delta(INCR, b"m", 1, initial=10, exp=0xffffffff, opaque=1)
         + delta(DECRQ, b"m", 1, initial=10, exp=0xffffffff, opaque=2) + pkt(GET, b"m")),
    Case("incr_create_expired_exptime",
         delta(INCR, b"e", 1, initial=4, exp=1000000000, opaque=1) + pkt(GET, b"e", opaque=2)),
    Case("incr_non_numeric",
         store(SET, b"s", b"abc") + delta(INCR, b"s", 1, opaque=1)
         + delta(INCRQ, b"s", 1, opaque=2) + store(SET, b"e", b"") + delta(DECR, b"e", 1)),
    Case("incr_wraps_and_pads",
         [store(SET, b"n", b"18446744073709551615") + delta(INCR, b"n", 1) + pkt(GET, b"n")
          + store(SET, b"w", b" 5 ") + delta(INCR, b"w", 1) + pkt(GET, b"w", opaque=1),
          Await(1), delta(INCR, b"w", 2 ** 64 - 1) + pkt(GET, b"w")]),
    Case("incr_keeps_flags", store(SET, b"n", b"99", flags=9) + delta(INCR, b"n", 1)
         + pkt(GET, b"n")),
    Case("touch_gat", store(SET, b"t", b"v", flags=3) + touch(TOUCH, b"t", 100, opaque=1)
         + touch(GAT, b"t", 100, opaque=2) + touch(GATK, b"t", 100, opaque=3)
         + touch(GATQ, b"t", 100, opaque=4) + touch(GATKQ, b"t", 100, opaque=5)
         + pkt(GET, b"t")),
    Case("touch_gat_miss", touch(TOUCH, b"no", 1, opaque=1) + touch(GAT, b"no", 1, opaque=2)
         + touch(GATK, b"no", 1, opaque=3) + touch(GATQ, b"no", 1, opaque=4)
         + touch(GATKQ, b"no", 1, opaque=5)),
    Case("touch_expires_now", store(SET, b"t", b"v") + touch(GAT, b"t", 1000000000, opaque=1)
         + pkt(GET, b"t", opaque=2)),
    Case("touch_ignores_cas", store(SET, b"t", b"v") + touch(TOUCH, b"t", 0, cas=12345)
         + pkt(GET, b"t")),
    Case("exptime_forms", store(SET, b"e1", b"v", exp=0xffffffff)
         + store(SET, b"e2", b"v", exp=0x80000000) + store(SET, b"e3", b"v", exp=1000)
         + store(SET, b"e4", b"v", exp=1000000000) + store(SET, b"e5", b"v", exp=2592000)
         + pkt(GET, b"e1") + pkt(GET, b"e2") + pkt(GET, b"e3") + pkt(GET, b"e4")
         + pkt(GET, b"e5")),
    Case("flush_now_and_quiet", store(SET, b"a", b"1") + flush(opaque=1) + pkt(GET, b"a")
         + store(SET, b"a", b"1") + flush(quiet=True, opaque=2) + pkt(GET, b"a")),
    Case("flush_delay", store(SET, b"a", b"1") + flush(delay=2, opaque=1) + pkt(GET, b"a"),
         fresh=True),
    Case("flush_far_future", store(SET, b"a", b"1") + flush(delay=0xfffffff0, opaque=1)
         + pkt(GET, b"a"), fresh=True),
    Case("noop_flushes_quiet", store(SETQ, b"a", b"1", opaque=1) + pkt(DELETEQ, b"a", opaque=2)
         + pkt(GETQ, b"a", opaque=3) + pkt(NOOP, opaque=4)),
    Case("quit", store(SET, b"a", b"1") + pkt(QUIT, opaque=7) + pkt(GET, b"a"),
         sentinel=False),
    Case("quitq", store(SET, b"a", b"1") + pkt(QUITQ, opaque=7) + pkt(GET, b"a"),
         sentinel=False),
    Case("opaque_echo_every_reply",
         pkt(NOOP, opaque=0xffffffff) + pkt(VERSION, opaque=0x80000001)
         + pkt(GET, b"nokey", opaque=0x01020304) + store(ADD, b"a", b"1", opaque=0xa5a5a5a5)
         + store(ADD, b"a", b"1", opaque=0x5a5a5a5a)),
    Case("datatype_vbucket_ignored", pkt(SET, b"a", struct.pack(">II", 0, 0), b"v", datatype=1,
                                         vbucket=5, opaque=1)
         + pkt(GET, b"a", datatype=3, vbucket=7, opaque=2)),
    Case("key_250", store(SET, K250, b"v") + pkt(GETK, K250)),
    Case("key_high_bytes_and_controls", store(SET, b"k\x00\x01 \r\n\xff", b"v")
         + pkt(GETK, b"k\x00\x01 \r\n\xff")),
    Case("value_binary_safe", store(SET, b"a", bytes(range(256)) * 4) + pkt(GET, b"a")),
    Case("value_at_item_max", store(SET, b"b", b"x" * FIT_MAX) + pkt(GET, b"b")),
    Case("value_at_item_max_with_flags", store(SET, b"b", b"x" * (FIT_MAX - 3), flags=1)
         + store(SET, b"c", b"x" * (FIT_MAX - 4), flags=1) + pkt(GET, b"b") + pkt(GET, b"c")),
    Case("verbosity_unknown", pkt(VERBOSITY, ext=struct.pack(">I", 1), opaque=3) + b"JUNK"),

    # ---- CAS ----
    Case("cas_set_mismatch_miss",
         store(SET, b"a", b"1") + store(SET, b"a", b"2", cas=999999, opaque=1)
         + store(SET, b"zz", b"2", cas=999999, opaque=2) + store(SETQ, b"a", b"2", cas=999999)
         + pkt(GET, b"a")),
    Case("cas_add_replace_become_cas",
         store(SET, b"a", b"1") + store(ADD, b"a", b"4", cas=999999, opaque=1)
         + store(ADD, b"zz", b"4", cas=999999, opaque=2)
         + store(REPLACE, b"a", b"5", cas=999999, opaque=3)
         + store(REPLACE, b"zz", b"5", cas=999999, opaque=4)),
    Case("cas_success_chain",
         [store(SET, b"c", b"1", opaque=1), Await(1),
          with_cas_of(1, lambda cas: store(SET, b"c", b"2", cas=cas, opaque=2)), Await(2),
          with_cas_of(2, lambda cas: store(ADD, b"c", b"3", cas=cas, opaque=3)), Await(3),
          with_cas_of(3, lambda cas: store(REPLACE, b"c", b"4", cas=cas, opaque=4)), Await(4),
          with_cas_of(4, lambda cas: pkt(APPEND, b"c", val=b"5", cas=cas, opaque=5)), Await(5),
          with_cas_of(5, lambda cas: pkt(PREPEND, b"c", val=b"6", cas=cas, opaque=6)), Await(6),
          with_cas_of(6, lambda cas: delta(INCR, b"c", 1, cas=cas, opaque=7)), Await(7),
          with_cas_of(7, lambda cas: pkt(DELETE, b"c", cas=cas, opaque=8)),
          pkt(GET, b"c")]),
    Case("cas_append_prepend_delete_mismatch",
         store(SET, b"a", b"m") + pkt(APPEND, b"a", val=b"x", cas=999999, opaque=1)
         + pkt(PREPEND, b"a", val=b"x", cas=999999, opaque=2)
         + pkt(DELETE, b"a", cas=999999, opaque=3) + delta(INCR, b"n", 1, cas=999999, opaque=4)
         + store(SET, b"n", b"1") + delta(INCR, b"n", 1, cas=999999, opaque=5)
         + pkt(GET, b"a")),
    Case("cas_unchanged_by_reads_and_touch",
         store(SET, b"c", b"10") + pkt(GET, b"c") + touch(TOUCH, b"c", 100)
         + touch(GAT, b"c", 0) + pkt(GETK, b"c") + delta(INCR, b"c", 1) + pkt(GET, b"c")),

    # ---- stat ----
    Case("stat_reset", pkt(STAT, b"reset", opaque=1) + pkt(STAT, b"resetxyz", opaque=2)),
    Case("stat_unknown_groups", pkt(STAT, b"foo", opaque=1) + pkt(STAT, b"itemsx", opaque=2)
         + pkt(STAT, b"conns", opaque=3) + pkt(STAT, b"res", opaque=4)
         + pkt(STAT, b"detail", opaque=5) + pkt(STAT, b"detail foo", opaque=6)),
    Case("stat_detail_on_off", pkt(STAT, b"detail on", opaque=1)
         + pkt(STAT, b"detail off", opaque=2) + pkt(STAT, b"detail onx", opaque=3)),
    Case("stat_detail_dump",
         pkt(STAT, b"reset") + pkt(STAT, b"detail on", opaque=1)
         + store(SET, b"s:1", b"v") + store(SETQ, b"s:2", b"v") + store(SET, b"t:1", BIG)
         + store(ADD, b"u:1", BIG) + pkt(APPEND, b"a:1", val=b"x")
         + pkt(PREPEND, b"p:1", val=BIG) + pkt(DELETE, b"d:1") + pkt(DELETEQ, b"s:2")
         + pkt(GET, b"g:1") + pkt(GET, b"s:1") + pkt(GETK, b"s:1") + touch(TOUCH, b"h:1", 0)
         + touch(GATKQ, b"h:2", 0) + delta(INCR, b"i:1", 1) + store(SET, b"c:1", b"v", cas=5)
         + store(SET, b"nodelim", b"v") + store(SET, b"n\0x:1", b"v") + store(SET, b":e", b"v")
         + store(SET, b"a:b:c", b"v") + b"".join(store(SETQ, b"p%d:x" % i, b"v")
                                                  for i in range(40))
         + pkt(STAT, b"detail dump", opaque=2) + pkt(STAT, b"detail off", opaque=3)
         + pkt(GET, b"s:1") + pkt(STAT, b"detail dumpx", opaque=4)
         + pkt(STAT, b"reset", opaque=5) + pkt(STAT, b"detail dump", opaque=6)),
    Case("stat_extra_body_is_next_request",
         pkt(STAT, b"reset", val=pkt(NOOP, opaque=55), opaque=1)),

    # ---- malformed: Invalid arguments and close ----
    Case("get_with_extras", pkt(GET, b"kkk", ext=b"\0" * 4)),
    Case("get_with_value", pkt(GET, b"kkk", val=b"vv")),
    Case("get_without_key", pkt(GET)),
    Case("getq_without_key", pkt(GETQ)),
    Case("set_without_extras", pkt(SET, b"a", val=b"v")),
    Case("set_short_extras", pkt(SET, b"a", ext=b"\0" * 4, val=b"v")),
    Case("set_without_key", pkt(SET, ext=b"\0" * 8, val=b"v")),
    Case("append_with_extras", store(SET, b"a", b"m") + pkt(APPEND, b"a", ext=b"\0" * 8,
                                                            val=b"c")),
    Case("append_without_key", pkt(APPEND, val=b"c")),
    Case("delete_with_extras", pkt(DELETE, b"d", ext=b"\0" * 4)),
    Case("delete_with_value", pkt(DELETE, b"d", val=b"x")),
    Case("incr_short_extras", pkt(INCR, b"n", ext=b"\0" * 8)),
    Case("incr_with_value", pkt(INCR, b"n", ext=b"\0" * 20, val=b"x")),
    Case("incr_without_key", pkt(INCR, ext=b"\0" * 20)),
    Case("touch_without_extras", pkt(TOUCH, b"a")),
    Case("gat_without_key", pkt(GAT, ext=b"\0" * 4)),
    Case("gatk_long_extras", pkt(GATK, b"a", ext=b"\0" * 8)),
    Case("noop_with_body", pkt(NOOP, val=b"xyz")),
    Case("version_with_extras", pkt(VERSION, ext=b"abcd")),
    Case("quit_with_key", pkt(QUIT, b"k")),
    Case("flush_with_key", pkt(FLUSH, b"k", ext=b"\0" * 4)),
    Case("flush_short_extras", pkt(FLUSH, ext=b"\0\0")),
    Case("flush_with_value", pkt(FLUSH, val=b"x")),
    Case("stat_with_extras", pkt(STAT, ext=b"\0" * 4)),
    Case("sasl_list_with_body", pkt(SASL_LIST, b"x")),
    Case("sasl_auth_without_key", pkt(SASL_AUTH, val=b"\0u\0p")),
    Case("sasl_auth_with_extras", pkt(SASL_AUTH, b"PLAIN", ext=b"\0" * 4, val=b"\0u\0p")),
    Case("key_251", pkt(GET, K251, opaque=4)),
    Case("key_251_set", store(SET, K251, b"v", opaque=4)),
    Case("key_251_unknown_opcode", pkt(0x60, K251, opaque=4)),
    Case("key_16360_head_fits", pkt(GET, b"k" * 16360, opaque=4)),
    Case("error_after_replies", store(SET, b"a", b"1", opaque=1) + pkt(GET, b"a", opaque=2)
         + pkt(GET, opaque=3) + pkt(GET, b"a", opaque=4)),

    # ---- lengths that disagree: Unknown command and close ----
    Case("keylen_over_bodylen", pkt(GET, b"kkk", bodylen=2)),
    Case("keylen_plus_extlen_over_bodylen", pkt(SET, b"kkk", ext=b"\0" * 8, bodylen=10)),
    Case("extlen_over_bodylen", pkt(FLUSH, ext=b"\0" * 4, bodylen=0)),

    # ---- no reply, the connection closes ----
    Case("head_over_16k_closes", pkt(GET, b"k" * 16361), sentinel=False),
    Case("head_64k_closes", pkt(GET, b"k" * 65535), sentinel=False),
    Case("bad_magic_after_request", pkt(NOOP, opaque=1) + pkt(NOOP, magic=0x81, opaque=2)
         + pkt(NOOP, opaque=3), sentinel=False),
    Case("bad_magic_zero", pkt(NOOP, opaque=1) + b"\0" * 24, sentinel=False),

    # ---- unknown opcodes: the body is swallowed after the key (memcached counts extras and
    # key twice) ----
    Case("unknown_opcode", pkt(0x60, opaque=1) + pkt(0xff, opaque=2)),
    Case("unknown_opcode_with_body", pkt(0x60, b"abc", val=b"xy", opaque=2) + b"JUN"),
    Case("unknown_opcode_eats_next", pkt(0x50, b"abc", val=b"xy", opaque=2), swallowed=True),
    Case("unknown_opcodes_all", b"".join(pkt(op, opaque=op) for op in
                                         (0x1f, 0x25, 0x30, 0x3d, 0x83, 0x89, 0x94, 0xfe))),
    Case("sasl_off_list_auth_step", pkt(SASL_LIST, opaque=1)
         + pkt(SASL_AUTH, b"PLAIN", val=b"\0u\0p", opaque=2)
         + pkt(SASL_STEP, b"PLAIN", val=b"\0u\0p", opaque=3)),
    Case("sasl_off_long_mech", pkt(SASL_AUTH, b"P" * 40, val=b"\0u\0p", opaque=2)),

    # ---- value over -I: Too large., the body swallowed, a set drops the old value ----
    Case("set_too_large", store(SET, b"b", b"1") + store(SET, b"b", BIG, opaque=2)
         + pkt(GET, b"b", opaque=3)),
    Case("setq_too_large", store(SET, b"b", b"1") + store(SETQ, b"b", BIG, opaque=2)
         + pkt(GET, b"b", opaque=3)),
    Case("add_replace_append_too_large",
         store(SET, b"b", b"1") + store(ADD, b"c", BIG, opaque=1)
         + store(REPLACE, b"b", BIG, opaque=2) + pkt(APPEND, b"b", val=BIG, opaque=3)
         + pkt(PREPENDQ, b"b", val=BIG, opaque=4) + pkt(GET, b"b")),
    Case("too_large_by_one_with_flags",
         store(SET, b"b", b"x" * (FIT_MAX - 3), flags=1, opaque=1) + pkt(GET, b"b", opaque=2)),
    Case("append_grows_over_item_max",
         store(SET, b"g", b"x" * (FIT_MAX - 10)) + pkt(APPEND, b"g", val=b"y" * 20, opaque=1)
         + pkt(PREPEND, b"g", val=b"y" * 10, opaque=2) + pkt(GETK, b"g", opaque=3)),
    Case("too_large_split", [store(SET, b"b", BIG)[:300000], store(SET, b"b", BIG)[300000:],
                             pkt(GET, b"b")]),

    # ---- pipelining and split writes ----
    Case("pipeline_200", b"".join(store(SETQ, b"p%d" % i, b"v%d" % i, flags=i)
                                  for i in range(200))
         + b"".join(pkt(GETK, b"p%d" % i, opaque=i) for i in range(200))
         + b"".join(delta(INCR, b"n%d" % i, 1, initial=i) for i in range(20))
         + b"".join(pkt(DELETEQ, b"p%d" % i) for i in range(0, 200, 2))
         + b"".join(pkt(GETKQ, b"p%d" % i, opaque=i) for i in range(10))),
    Case("split_bytewise",
         [bytes([b]) for b in store(SET, b"k", b"abc", flags=1) + pkt(GETK, b"k")
          + delta(INCR, b"n", 2, initial=5) + pkt(GET, b"nokey")]),
    Case("split_in_header_key_value",
         [store(SET, b"key", b"value")[:10], store(SET, b"key", b"value")[10:33],
          store(SET, b"key", b"value")[33:], pkt(GET, b"key")[:30], pkt(GET, b"key")[30:]]),
    Case("truncated_header_then_rest", [pkt(NOOP, opaque=5)[:10], pkt(NOOP, opaque=5)[10:]]),
    Case("mixed_quiet_and_loud", store(SETQ, b"a", b"1") + store(ADDQ, b"a", b"2", opaque=1)
         + pkt(GETQ, b"a", opaque=2) + pkt(DELETEQ, b"zz", opaque=3) + delta(INCRQ, b"a", 1)
         + pkt(GETKQ, b"a", opaque=4) + pkt(APPENDQ, b"zz", val=b"x", opaque=5)
         + flush(quiet=True) + pkt(GETKQ, b"a", opaque=6)),
]


def _read_session(c, case, replies, deadline):
    while True:
        buf = replies + c.buf
        if case.sentinel and not case.swallowed:
            packets, _ = parse_packets(buf)
            if any(p[1] == NOOP and p[7] == SENTINEL for p in packets):
                return buf
        if c.closed or time.monotonic() >= deadline:
            return buf
        c.fill(deadline)


def _await(c, opaque, timeout):
    deadline = time.monotonic() + timeout
    while True:
        packets, _ = parse_packets(c.buf)
        if any(p[7] == opaque for p in packets):
            return
        if not c.fill(deadline):
            if c.closed or time.monotonic() >= deadline:
                raise AssertionError("no reply with opaque %d; got %r" % (opaque, c.buf))


def _session(port, case):
    """Runs one session; returns (reply bytes, closed)."""
    with mctest.Conn(port) as c:
        c.send(pkt(FLUSH, opaque=0xF1))
        c.read_exact(24)
        for i, chunk in enumerate(case.chunks):
            if isinstance(chunk, Await):
                _await(c, chunk.opaque, READ_DEADLINE)
                continue
            if i:
                time.sleep(SPLIT_GAP)
            if callable(chunk):
                chunk = chunk(c.buf)
            try:
                c.send(chunk)
            except OSError:
                break       # the peer closed while we were still sending: the outcome says so
        if case.sentinel and not c.closed:
            try:
                c.send(pkt(NOOP, opaque=SENTINEL))
            except OSError:
                pass
        timeout = SWALLOWED_DEADLINE if case.swallowed or not case.sentinel else READ_DEADLINE
        return _read_session(c, case, b"", time.monotonic() + timeout), c.closed


@pytest.fixture(scope="module")
def pair(module_servers):
    m = module_servers.mcstore("-I", ITEM_MAX, "-t", "2")
    d = module_servers.memcached("-I", ITEM_MAX, "-t", "2")
    return m, d


def _show(packets, limit=1500):
    r = repr(packets)
    return r if len(r) <= limit else r[:limit // 2] + " ... " + r[-limit // 2:]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_same_reply_as_memcached(case, pair, servers):
    if case.fresh:
        m = servers.mcstore("-I", ITEM_MAX, "-t", "2")
        d = servers.memcached("-I", ITEM_MAX, "-t", "2")
    else:
        m, d = pair
    expected, exp_closed = _session(d.port, case)
    actual, act_closed = _session(m.port, case)
    assert expected or exp_closed, "memcached gave nothing for %s" % case.name
    assert (normalize(actual), act_closed) == (normalize(expected), exp_closed), (
        "\nmemcached: %s closed=%s\nmcstore:   %s closed=%s" % (
            _show(normalize(expected)), exp_closed, _show(normalize(actual)), act_closed))
    assert m.alive(), "mcstore died during the session"


def test_normalize_keeps_cas_structure():
    """The comparison must be able to fail: two replies that share a CAS differ from two that
    do not, and a changed status or body is seen."""
    def reply(cas, status=0, body=b""):
        return struct.pack(">BBHBBHIIQ", 0x81, 0, 0, 0, 0, status, len(body), 0, cas) + body
    assert normalize(reply(5) + reply(5)) != normalize(reply(5) + reply(6))
    assert normalize(reply(5) + reply(6)) == normalize(reply(7) + reply(9))
    assert normalize(reply(5, 1)) != normalize(reply(5, 2))
    assert normalize(reply(5, 0, b"a")) != normalize(reply(5, 0, b"b"))
    assert normalize(reply(0)) != normalize(reply(1))


# ---- stats: values differ, names and framing are compared ----

CORE_STATS = ["pid", "uptime", "time", "version", "curr_connections", "total_connections",
              "cmd_get", "cmd_set", "cmd_flush", "cmd_touch", "get_hits", "get_misses",
              "delete_hits", "delete_misses", "incr_hits", "incr_misses", "decr_hits",
              "decr_misses", "cas_hits", "cas_misses", "cas_badval", "touch_hits",
              "touch_misses", "auth_cmds", "auth_errors", "bytes_read", "bytes_written",
              "curr_items", "total_items", "threads"]
CORE_SETTINGS = ["maxconns", "tcpport", "item_size_max", "num_threads", "cas_enabled"]


def stat_packets(port, group=b"", opaque=0x77):
    with mctest.Conn(port) as c:
        c.send(pkt(STAT, group, opaque=opaque))
        out = []
        while True:
            h = c.read_exact(24)
            f = struct.unpack(">BBHBBHIIQ", h)
            body = c.read_exact(f[6])
            out.append((f, body))
            if f[5] != 0 or f[2] == 0:
                return out


@pytest.mark.parametrize("group,names", [(b"", CORE_STATS), (b"settings", CORE_SETTINGS),
                                         (b"settingsxyz", CORE_SETTINGS)],
                         ids=["general", "settings", "settings_prefix"])
def test_stat_group_names_and_framing(group, names, pair):
    m, d = pair
    for srv in (d, m):
        packets = stat_packets(srv.port, group)
        last = packets[-1]
        assert last[0][2] == 0 and last[0][6] == 0 and last[0][5] == 0, (srv.name, last)
        got = {}
        for f, body in packets[:-1]:
            magic, op, keylen, extlen, _, status, bodylen, opaque, cas = f
            assert (magic, op, extlen, status, opaque, cas) == (0x81, STAT, 0, 0, 0x77, 0), f
            got[body[:keylen].decode()] = body[keylen:].decode()
        missing = [n for n in names if n not in got]
        assert not missing, "%s lacks %s" % (srv.name, missing)
    assert {k: v for k, v in ((b[:f[2]], b[f[2]:]) for f, b in stat_packets(m.port)[:-1])}[
        b"version"] == b"1.6.18"


def test_stat_counters_follow_binary_commands(servers):
    m = servers.mcstore("-t", "1")

    def stats():
        return {b[:f[2]].decode(): b[f[2]:].decode() for f, b in stat_packets(m.port)[:-1]}
    before = stats()
    with mctest.Conn(m.port) as c:
        c.send(store(SET, b"a", b"1") + pkt(GET, b"a") + pkt(GETQ, b"zz") + touch(GAT, b"a", 0)
               + touch(TOUCH, b"zz", 0) + pkt(DELETE, b"a") + pkt(DELETE, b"a")
               + delta(INCR, b"n", 1, exp=0xffffffff) + delta(INCR, b"n", 1)
               + delta(INCR, b"n", 1) + delta(DECR, b"n", 1) + store(SET, b"a", b"1", cas=1)
               + flush() + pkt(NOOP, opaque=SENTINEL))
        _await(c, SENTINEL, READ_DEADLINE)
    after = stats()
    diff = {k: int(after[k]) - int(before[k]) for k in
            ("cmd_get", "get_hits", "get_misses", "cmd_touch", "touch_hits", "touch_misses",
             "cmd_set", "delete_hits", "delete_misses", "incr_hits", "incr_misses",
             "decr_hits", "cas_misses", "cmd_flush")}
    assert diff == {"cmd_get": 2, "get_hits": 1, "get_misses": 1, "cmd_touch": 2,
                    "touch_hits": 1, "touch_misses": 1, "cmd_set": 2, "delete_hits": 1,
                    "delete_misses": 1, "incr_hits": 1, "incr_misses": 1, "decr_hits": 1,
                    "cas_misses": 1, "cmd_flush": 1}, diff
