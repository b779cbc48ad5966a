"""Differential tests of the meta protocol (mg ms md ma mn me): the same raw byte sessions go
to mcstore and to Debian's memcached 1.6.18 started side by side; the replies must be the same
bytes once what legitimately differs is normalized:

  - CAS uniques (the c<N> flag of meta replies, me's cas=<N>, the unique of gets' VALUE lines):
    each distinct number becomes <casK> in order of first sight, so which replies share a
    unique is still compared; c0 (the "not stored" unique) stays as it is;
  - seconds (t<N>, l<N>, me's exp=<N> and la=<N>): a clock tick may fall between the two
    servers' replies, so the numbers may differ by 1.

Every session runs on a fresh connection after flush_all and ends with a `version` sentinel.
The documented differences (doc/protocol.md, "Meta protocol") are tested apart, at the end.
"""

import re
import time

import pytest

import mctest

ITEM_MAX = "1m"
SPLIT_GAP = 0.005
SENTINEL = b"version\r\n"
VERSION_LINE = b"VERSION 1.6.18\r\n"
READ_DEADLINE = 5.0

K250 = b"k" * 250
K251 = b"k" * 251
# a 250-byte base64 key: "ABC" * 62 (186 bytes), and two bytes the decoder skips
B64_250 = b"QUJD" * 62 + b"-_"
OPAQUE32 = b"O" + b"1" * 31
OPAQUE33 = b"O" + b"1" * 32
HUGE = b"x" * 2000000


class Case:
    def __init__(self, name, chunks, sentinel=True, versions=None):
        self.name = name
        self.chunks = chunks if isinstance(chunks, list) else [chunks]
        self.sentinel = sentinel
        if versions is None:
            sent = b"".join(c for c in self.chunks if isinstance(c, bytes))
            versions = len(re.findall(rb"(?:^|\n)version\r?\n", sent)) + (1 if sentinel else 0)
        self.versions = versions


class Sync:
    """A step: read the replies up to `term` before sending what follows."""

    def __init__(self, term=b"\r\n"):
        self.term = term


def ms(key, value, flags=b""):
    return b"ms %s %d%s\r\n%s\r\n" % (key, len(value), b" " + flags if flags else b"", value)


def with_cas(make, read_first=b"\r\n", which=-1):
    """A step built from the replies so far: make(cas) -> bytes, cas being the last (or
    `which`) c<N> flag seen, after first reading up to read_first."""
    def step(replies):
        found = re.findall(rb" c(\d+)", replies)
        return make(found[which])
    step.read_first = read_first
    return step


def pipeline(n):
    out = b""
    for i in range(n):
        out += ms(b"p%d" % i, b"v%d" % i, b"T0 F%d q" % i) + b"mg p%d v f q k\r\n" % i
        if i % 7 == 0:
            out += b"ma c N0 q\r\nmd p%d q\r\nmg p%d q\r\nmn\r\n" % (i, i)
    return out + b"mg c v\r\nmn\r\n"


CASES = [
    # ---- dispatch: two-letter commands, token counts ----
    Case("mn", b"mn\r\nmn x y z\r\n"),
    Case("short_lines", b"mg\r\nmg \r\nms\r\nmd\r\nma\r\nme\r\nme \r\n"),
    Case("unknown_m_commands", b"mx foo\r\nmz\r\nMG foo\r\nmgg foo\r\nm\r\nm g\r\n"),
    Case("bare_lf_and_spaces", b"mg foo v\nms foo 2 \nhi\r\nmg  foo  v  k \r\n mg foo s\r\n"),
    Case("nul_ends_line", b"ms foo 2\r\nhi\r\nmg foo\x00 v\r\nmg foo v\x00junk k\r\n"),

    # ---- mg ----
    Case("mg_miss", b"mg foo\r\nmg foo v\r\nmg foo k O123\r\nmg foo s t c f h l\r\n"),
    Case("mg_hit_no_flags", ms(b"foo", b"hi") + b"mg foo\r\n"),
    Case("mg_every_flag", ms(b"foo", b"hi", b"T0 F7") + b"mg foo s v f t c k O1 h l\r\n"
         b"mg foo k c t f s v\r\nmg foo u h\r\nmg foo h l\r\n"),
    Case("mg_value_forms", ms(b"e", b"") + ms(b"crlf", b"a\r\nb") + ms(b"nul", b"x\x00y")
         + b"mg e v s\r\nmg crlf v\r\nmg nul v s\r\n"),
    Case("mg_flag_letters_any_length", ms(b"foo", b"hi")
         + b"mg foo v123 kxyz qq s9 cc\r\nmg foo O\r\n"),
    Case("mg_ignored_flags", ms(b"foo", b"hi") + b"mg foo P L F5 C5 MX J5 D5 I u\r\n"),
    Case("mg_ttl", ms(b"foo", b"hi", b"T30") + b"mg foo t\r\nmg foo T60 t\r\nmg foo t\r\n"
         b"mg foo t T90\r\nmg foo t\r\nmg foo T0 t\r\n"),
    Case("mg_ttl_expires", ms(b"foo", b"hi") + b"mg foo T-1\r\nmg foo v\r\n"),
    Case("mg_flags_32bit", ms(b"foo", b"hi", b"F4294967295") + b"mg foo f\r\n"
         + ms(b"foo", b"hi", b"F4294967296") + b"mg foo f\r\n"),
    Case("mg_q_hides_only_en", ms(b"foo", b"hi") + b"mg foo q\r\nmg foo q v k\r\n"
         b"mg nokey q\r\nmg nokey q k O9 v\r\nmn\r\n"),
    Case("mg_errors", ms(b"foo", b"hi") +
         b"mg foo v v\r\nmg foo O1 O2\r\nmg foo z\r\nmg foo \xe9\r\nmg foo \x7f\r\n"
         b"mg foo S\r\nmg foo E\r\nmg foo x\r\nmg foo X\r\nmg foo Z\r\nmg foo W\r\n"
         b"mg foo 1\r\nmg foo +\r\nmg foo \x01\r\n"),
    Case("mg_bad_values", ms(b"foo", b"hi") +
         b"mg foo T\r\nmg foo Tabc\r\nmg foo T1.5\r\nmg foo N\r\nmg foo R\r\nmg foo D\r\n"
         b"mg foo Dx\r\nmg foo J\r\nmg foo Jx\r\nmg foo C\r\nmg foo Cx\r\nmg foo F\r\n"
         b"mg foo Fx\r\nmg foo F-1\r\nmg foo M\r\nmg foo MX\r\nmg foo Mxy\r\n"),
    Case("mg_error_precedence", ms(b"foo", b"hi") +
         b"mg foo Tabc Dx\r\nmg foo Dx Tabc\r\nmg foo Tabc z\r\nmg foo z Tabc\r\n"
         b"mg foo Fx Tabc\r\nmg foo Tabc Fx\r\nmg foo Tabc v v\r\nmg foo v v Tabc\r\n"),
    Case("mg_token_limit", ms(b"foo", b"hi") +
         b"mg foo " + b" ".join(b"%d" % i for i in range(1, 18)) + b"\r\n"
         b"mg foo " + b" ".join(b"%d" % i for i in range(1, 19)) + b"\r\n"
         b"mg foo " + b" ".join(b"O%d" % i for i in range(1, 40)) + b"\r\n"
         b"mg foo s v f t c k O1 h l u q N0 R0 T0 P L\r\n"),
    Case("mg_opaque_length", ms(b"foo", b"hi") + b"mg foo " + OPAQUE32 + b"\r\nmg foo "
         + OPAQUE33 + b"\r\nmg nokey " + OPAQUE33 + b"\r\nmg nokey k q " + OPAQUE33 + b"\r\n"),
    Case("mg_key_length", b"mg " + K250 + b" v\r\nmg " + K251 + b" v\r\n" + ms(K250, b"x")
         + b"mg " + K250 + b" k s\r\nmg " + K251 + b" k q\r\n"),
    Case("mg_key_high_bytes", ms(b"k\x80\xff\xc3\xa9", b"x") + b"mg k\x80\xff\xc3\xa9 k v\r\n"),

    # ---- base64 keys ----
    Case("b64_roundtrip", ms(b"Zm9v", b"hi", b"b k O1") + b"mg foo k v\r\nmg Zm9v b k v\r\n"
         b"get foo\r\nme foo\r\nme Zm9v b\r\nmd Zm9v b k\r\nmg foo\r\n"),
    Case("b64_request_key_on_plain_item", ms(b"foo", b"hi") + b"mg Zm9v b k v\r\n"
         b"md Zm9v b k q\r\nmg foo\r\n"),
    Case("b64_decoder_quirks",
         b"mg Zm8 b k\r\nmg Zm8= b k\r\nmg Z b k\r\nmg Zm9v= b k\r\nmg ==== b k\r\n"
         b"mg A=== b k\r\nmg Zm-v b k\r\nmg Zm9vYg b k\r\nmg Zm9vYg== b k\r\nmg AA== b k\r\n"
         b"mg ZZ== b k\r\nmg Z=9v b k\r\nmg Zm8=Zm9v b k\r\nmg _-_- b k\r\n"
         b"mg Zm9v+/== b k\r\nmg Zm9v\x01 b k\r\nmg Zm9v\t b k\r\nmg Zm9v Zm9v b k\r\n"),
    Case("b64_flag_forms", b"mg Zm9v k b b\r\nmg Zm9v bxyz k\r\nmg foo k O123 b\r\n"
         b"mg foo b q\r\n"),
    Case("b64_binary_bytes", ms(b"AAEC/w==", b"bin", b"b") + b"mg AAEC/w== b k v\r\n"
         b"me AAEC/w== b\r\nma AAEC/w== b k\r\nmd AAEC/w== b k\r\n"),
    Case("b64_key_lengths", ms(B64_250, b"x", b"b k") + b"mg " + B64_250 + b" b s k\r\n"
         b"mg " + B64_250 + b"A b\r\n"),
    Case("b64_control_bytes_decoded", ms(b"AQI=", b"x", b"b") + b"mg AQI= b k v\r\n"),
    Case("b64_vivify_and_create_echo_raw",
         b"mg Zm9v b N30 k\r\nmg foo k\r\nma YmFy b N0 k v\r\nmg bar k\r\n"),
    Case("b64_append_drops_binary_mark", ms(b"Zm9v", b"hi", b"b") + ms(b"Zm9v", b"x", b"b MA k")
         + b"mg foo k v\r\n"),
    Case("b64_errors_everywhere",
         b"ms foo 2 b\r\nhi\r\nmd foo b\r\nma foo b\r\nme foo b\r\nme Zm8 b\r\nme Zm9v x\r\n"
         b"me Zm9v b b\r\nmg foo\r\n"),

    # ---- ms ----
    Case("ms_basic", ms(b"foo", b"hi") + b"mg foo v\r\n" + ms(b"foo", b"")
         + b"mg foo v s\r\n" + ms(b"foo", b"hi", b"T0 F3 k O5 c") + b"mg foo f v\r\n"),
    Case("ms_modes", ms(b"foo", b"hi", b"ME c") + ms(b"foo", b"hi", b"ME c")
         + ms(b"nope", b"hi", b"MR c k") + ms(b"nope", b"hi", b"MA c")
         + ms(b"nope", b"hi", b"MP c") + ms(b"foo", b"++", b"MA c")
         + ms(b"foo", b"--", b"MP c") + b"mg foo v\r\n" + ms(b"foo", b"xx", b"MS c")
         + ms(b"foo", b"yy", b"MR") + b"mg foo v\r\n"),
    Case("ms_append_keeps_flags_ttl", ms(b"foo", b"hi", b"T100 F3") + ms(b"foo", b"x", b"MA F9 T0")
         + b"mg foo f t v\r\n"),
    Case("ms_bad_modes", b"ms foo 2 MX\r\nhi\r\nms foo 2 Mxy\r\nhi\r\nms foo 2 Me\r\nhi\r\n"
         b"ms foo 2 Ma\r\nhi\r\nms foo 2 M\r\nhi\r\nms foo 2 MI\r\nhi\r\nmg foo\r\n"),
    Case("ms_cas", ms(b"foo", b"hi", b"C1") + ms(b"foo", b"hi", b"C1 q")
         + ms(b"foo", b"hi", b"MR C1")
         + ms(b"foo", b"hi", b"ME C1") + ms(b"foo", b"hi", b"C999999 c")
         + ms(b"foo", b"hi", b"C999999 q") + ms(b"foo", b"hi", b"MA C999999")
         + ms(b"foo", b"hi", b"MP C999999") + ms(b"foo", b"hi", b"ME C999999")
         + ms(b"foo", b"hi", b"MR C999999") + ms(b"foo", b"hi", b"C0")
         + ms(b"foo", b"ho", b"C0 I") + ms(b"foo", b"xx", b"MA C0") + b"mg foo v\r\n"),
    Case("ms_cas_match", [ms(b"foo", b"hi", b"c"),
                          with_cas(lambda c: ms(b"foo", b"ho", b"C%s c" % c)),
                          with_cas(lambda c: ms(b"foo", b"hu", b"MR C%s c" % c)),
                          with_cas(lambda c: ms(b"foo", b"+", b"MA C%s c" % c)),
                          with_cas(lambda c: ms(b"foo", b"-", b"MP C%s" % c), which=-2),
                          b"mg foo v\r\n"]),
    Case("ms_q_hides_only_hd", ms(b"foo", b"hi", b"q") + ms(b"foo", b"hi", b"ME q")
         + ms(b"bar", b"hi", b"MR q") + ms(b"bar", b"hi", b"MA q c")
         + ms(b"foo", b"hi", b"C1 q") + ms(b"nope", b"hi", b"C1 q k") + b"mn\r\n"),
    Case("ms_length_errors_leave_data_line",
         b"ms foo\r\nhi\r\nms foo abc\r\nhi\r\nms foo -1\r\nhi\r\nms foo 2x\r\nhi\r\n"
         b"ms foo 2147483647\r\nhi\r\nms foo 2147483646\r\nms foo 1.5\r\nhi\r\n"
         b"ms " + K251 + b" 2\r\nhi\r\n"),
    Case("ms_length_forms", b"ms foo 02\r\nhi\r\nms foo +2\r\nhi\r\nms foo 4294967298\r\nhi\r\n"
         b"mg foo v\r\n"),
    Case("ms_flag_errors_swallow_data",
         b"ms foo 2 z\r\nhi\r\nms foo 2 v v\r\nhi\r\nms foo 2 Tx\r\nhi\r\nms foo 2 Fx\r\nhi\r\n"
         b"ms foo 2 F-1\r\nhi\r\nms foo 2 C-1\r\nhi\r\nms foo 2 C18446744073709551616\r\nhi\r\n"
         b"ms foo 2 S5\r\nhi\r\nms foo 2 " + OPAQUE33 + b"\r\nhi\r\nms foo 2 MX " + OPAQUE33
         + b"\r\nhi\r\nms foo 2 " + OPAQUE33 + b" z\r\nhi\r\nmg foo\r\n"),
    Case("ms_token_limit", b"ms foo 2 " + b" ".join(b"%d" % i for i in range(1, 17)) + b"\r\nhi\r\n"
         b"ms foo 2 " + b" ".join(b"%d" % i for i in range(1, 18)) + b"\r\nhi\r\n"),
    Case("ms_ignored_flags", ms(b"foo", b"hi", b"I")
         + ms(b"foo", b"hi", b"N5 R5 J5 D5 P L u h l t s f v")
         + b"mg foo v\r\n"),
    Case("ms_ttl", ms(b"foo", b"hi", b"T-1") + b"mg foo v\r\n" + ms(b"foo", b"hi", b"T2592000")
         + b"mg foo t\r\n" + ms(b"foo", b"hi", b"T1000000000") + b"mg foo v\r\n"),
    Case("ms_bad_data_chunk", b"ms foo 2\r\nhixx\r\nmg foo\r\nms foo 2 q\r\nhixx\r\n"
         b"ms foo 2\r\nh\r\n\r\nmg foo\r\n"),
    Case("ms_too_large_unlinks", ms(b"big", b"x") + b"ms big 2000000 ME q\r\n" + HUGE
         + b"\r\nmg big s\r\n" + ms(b"big", b"x") + b"ms big 2000000 MA\r\n" + HUGE
         + b"\r\nmg big s\r\n"),
    Case("ms_too_large_vs_flag_errors", ms(b"big", b"x") + b"ms big 2000000 q z\r\n" + HUGE
         + b"\r\nmg big s\r\nms big 2000000 " + OPAQUE33 + b"\r\n" + HUGE + b"\r\nmg big s\r\n"),
    Case("ms_exactly_item_max", b"ms big 1048500\r\n" + b"y" * 1048500 + b"\r\nmg big s\r\n"
         b"ms big 1048510 F1\r\n" + b"y" * 1048510 + b"\r\nmg big s\r\n"),
    Case("ms_append_past_item_max", b"ms big 1000000\r\n" + b"x" * 1000000 + b"\r\n"
         b"ms big 100000 MA c\r\n" + b"y" * 100000 + b"\r\nmg big s\r\n"),
    Case("ms_too_large_split", [b"ms big 2000000 T0\r\n", HUGE[:700000], HUGE[700000:],
                                b"\r\nmg big s\r\n"]),

    # ---- md ----
    Case("md_basic", ms(b"foo", b"hi") + b"md foo\r\nmd foo\r\nmd foo q\r\nmg foo\r\n"
         + ms(b"foo", b"hi") + b"md foo q\r\nmd foo k O9 q\r\nmd foo k O9\r\nmn\r\n"),
    Case("md_cas", ms(b"foo", b"hi") + b"md foo C1\r\nmd foo C1 q\r\nmd foo C0\r\n"
         b"md nokey C1\r\nmg foo\r\n"),
    Case("md_cas_match", [ms(b"foo", b"hi", b"c"),
                          with_cas(lambda c: b"md foo C%s k\r\nmg foo\r\n" % c)]),
    Case("md_errors", b"md foo z\r\nmd foo Tx\r\nmd foo v v\r\nmd foo " + OPAQUE33 + b"\r\n"
         b"md foo k O1 b\r\nmd " + K251 + b"\r\nmd foo " + b" ".join(b"%d" % i for i in range(18))
         + b"\r\nmd foo Mx\r\nmd foo Dx\r\n"),
    Case("md_ttl_without_i_deletes", ms(b"foo", b"hi", b"T100") + b"md foo T30\r\nmg foo t\r\n"),
    Case("md_opaque_checked_first", ms(b"foo", b"hi") + b"md foo " + OPAQUE33
         + b"\r\nmg foo v\r\n"),

    # ---- stale / win ----
    Case("stale_invalidate_then_win", ms(b"foo", b"hi") + b"mg foo c\r\nmd foo I T30\r\n"
         b"mg foo c t v\r\nmg foo c t v\r\nmg foo\r\nmd foo I\r\nmg foo\r\nmg foo q\r\n"),
    Case("stale_q_and_values", ms(b"foo", b"hi") + b"md foo I q\r\nmg foo s\r\n" + ms(b"foo", b"ho")
         + b"mg foo v\r\n"),
    Case("stale_invalidate_again_rearms", ms(b"foo", b"hi") + b"md foo I\r\nmg foo\r\n"
         b"md foo I\r\nmg foo\r\nmg foo\r\n"),
    Case("stale_write_with_old_cas", ms(b"foo", b"hi", b"T100") + b"mg foo c\r\nmd foo I T30\r\n"
         b"mg foo c t\r\n" + ms(b"foo", b"ho", b"I C1 c T50") + b"mg foo c t v\r\n"),
    Case("stale_write_with_current_cas_clears", [
        ms(b"foo", b"hi"), b"md foo I\r\nmg foo c\r\n",
        with_cas(lambda c: ms(b"foo", b"new", b"C%s I c" % c), read_first=b"W\r\n"),
        b"mg foo c v\r\n"]),
    Case("stale_cas_newer_than_item", [
        ms(b"foo", b"hi", b"c"), b"md foo I\r\n",
        with_cas(lambda c: ms(b"foo", b"x", b"I C%d" % (int(c) + 1000))), b"mg foo v\r\n"]),
    Case("stale_other_writers", ms(b"foo", b"hi") + b"md foo I\r\nms foo 1 MA\r\nx\r\nmg foo v\r\n"
         b"md foo I\r\nmg foo\r\nms foo 1 ME\r\ny\r\nmg foo\r\ntouch foo 100\r\nmg foo\r\n"
         + ms(b"foo", b"z") + b"mg foo\r\n"),
    Case("stale_ttl_set_by_mg", ms(b"foo", b"hi") + b"md foo I\r\nmg foo T30\r\nmg foo t\r\n"),
    Case("stale_incr_in_place_keeps_mark", ms(b"foo", b"10") + b"md foo I\r\nma foo\r\n"
         b"mg foo v\r\nmd foo I\r\nma foo D100\r\nmg foo v\r\n" + ms(b"n", b"1")
         + b"md n I\r\nma n q\r\nmg n v\r\n"),
    Case("stale_missing", b"md foo I\r\nmd foo I T30 q\r\nmg foo\r\n"),
    Case("vivify", b"mg foo N30 v c t\r\nmg foo N30 v c t\r\nmg foo v\r\nmg foo t N30\r\n"
         b"mg foo N30 q\r\nmg bar N30 q\r\nmg bar N30 q\r\nmg bar q\r\n"),
    Case("vivify_ttl_order", b"mg foo t N30 s\r\nmg foo s t\r\nmg a N30 T60 t\r\n"
         b"mg b T60 N30 t\r\nmg c t N30 T60 t\r\nmg d N0 t\r\n"),
    Case("vivify_hit_before", b"mg foo N0 h\r\nmg foo h\r\nmg bar N0 h u\r\nmg bar h\r\n"),
    Case("recache", ms(b"foo", b"hi", b"T10") + b"mg foo R30\r\nmg foo R30\r\nmg foo\r\n"
         + ms(b"foo", b"hi", b"T100") + b"mg foo R30\r\n" + ms(b"foo", b"hi")
         + b"mg foo R30\r\n" + ms(b"foo", b"hi", b"T10") + b"mg foo R0\r\nmg foo R-1\r\n"),
    Case("recache_ttl_order", ms(b"foo", b"hi", b"T10") + b"mg foo T100 R30\r\n"
         b"mg foo R30 T100\r\n" + ms(b"bar", b"hi", b"T10") + b"mg bar R30 T100\r\n"
         b"mg bar R30\r\n"),
    Case("late_opaque_error_effects", ms(b"foo", b"hi") + b"md foo I\r\nmg foo " + OPAQUE33
         + b"\r\nmg foo\r\nmg v1 N30 " + OPAQUE33 + b"\r\nmg v1 t\r\nmg v2 " + OPAQUE33
         + b" N30\r\nmg v2 t\r\n" + ms(b"r", b"hi", b"T10") + b"mg r R30 " + OPAQUE33
         + b"\r\nmg r\r\n" + ms(b"t", b"hi", b"T10") + b"mg t T100 " + OPAQUE33
         + b"\r\nmg t t\r\nmg t " + OPAQUE33 + b" T200\r\nmg t t\r\n"),

    # ---- ma ----
    Case("ma_basic", b"ma foo\r\nma foo q\r\nma foo N0\r\nma foo\r\nma foo v\r\nma foo q v\r\n"
         b"ma foo v t c\r\nmg foo v\r\n"),
    Case("ma_modes", b"ma foo N0 J10 v\r\nma foo MD D3 v\r\nma foo M- D30 v\r\n"
         b"ma foo MI D5 v\r\nma foo M+ v\r\nma foo Mi v\r\nma foo Mx v\r\nma foo Mxx v\r\n"
         b"ma foo MD N0 J5 v\r\nma foo MI D2 v q\r\nmg foo v\r\n"),
    Case("ma_errors", b"ma foo Dx\r\nma foo Jx\r\nma foo z\r\nma foo Tx\r\nma foo D\r\n"
         b"ma foo J\r\nma foo N\r\nma foo T\r\nma foo M\r\nma foo C\r\nma foo v v\r\n"
         b"ma foo D18446744073709551616\r\nma foo D-1\r\nma " + K251 + b"\r\n"
         b"ma foo " + b" ".join(b"%d" % i for i in range(18)) + b"\r\n"),
    Case("ma_opaque_late", b"ma foo " + OPAQUE33 + b"\r\nma foo N0 " + OPAQUE33
         + b"\r\nmg foo v\r\nma bar N100 " + OPAQUE33 + b"\r\nmg bar t v\r\nma baz " + OPAQUE33
         + b" N100\r\nmg baz t v\r\nma b2 N100 T50 " + OPAQUE33 + b"\r\nmg b2 t v\r\n"),
    Case("ma_opaque_late_ttl", ms(b"foo", b"10", b"T10") + b"ma foo T100 " + OPAQUE33
         + b" v\r\nmg foo t v\r\n" + ms(b"bar", b"10", b"T10") + b"ma bar t " + OPAQUE33
         + b" T100\r\nmg bar t v\r\n"),
    Case("ma_non_numeric", ms(b"foo", b"ab") + b"ma foo\r\nma foo q\r\nma foo C1\r\n"
         + ms(b"foo", b"") + b"ma foo\r\nma foo C1\r\n" + ms(b"foo", b"5a") + b"ma foo\r\n"
         + ms(b"foo", b"-5") + b"ma foo\r\n"),
    Case("ma_cas", ms(b"foo", b"10") + b"ma foo C1\r\nma foo C1 q\r\nma foo C0 v\r\n"
         b"ma nokey C1\r\nma nokey q\r\nma nokey q N0\r\nma nokey k O5\r\n"),
    Case("ma_cas_match", [ms(b"foo", b"10", b"c"),
                          with_cas(lambda c: b"ma foo C%s c v\r\nmg foo v\r\n" % c)]),
    # no read of the item may come before an ma with T in the same write: see
    # test_pipelined_ma_after_a_read_keeps_its_ttl
    Case("ma_ttl", ms(b"foo", b"10", b"T100") + b"ma foo t T30 t v\r\nma foo t\r\n"
         b"ma foo T30 t\r\nma foo t T50\r\nma foo t\r\n"),
    Case("ma_ttl_after_read_synced", [ms(b"foo", b"10", b"T100") + b"mg foo t\r\n", Sync(),
                                      Sync(), b"ma foo T50\r\nmg foo t v\r\n"]),
    Case("ma_vivify_ttl_order", b"ma foo N30 t v\r\nma bar t N30 v\r\nmg bar t\r\n"
         b"ma b2 N30 J7 T60 t v k O1\r\nma b3 T60 N30 t v\r\nmg b3 t\r\n"),
    Case("ma_wrap_and_floor", ms(b"foo", b"18446744073709551615") + b"ma foo v\r\n"
         + ms(b"foo", b"100") + b"ma foo MD D99 v\r\nmg foo v\r\nma foo MD D5 v\r\n"
         + ms(b"foo", b"99", b"F5 T100") + b"ma foo v\r\nmg foo v f t\r\n"),
    Case("ma_whitespace_values", ms(b"foo", b"  5") + b"ma foo v\r\n" + ms(b"foo", b"5  ")
         + b"ma foo v\r\nmg foo v\r\n" + ms(b"foo", b"007") + b"ma foo v\r\n"),

    # ---- me ----
    Case("me_basic", ms(b"foo", b"hi") + b"me foo\r\nme foo x y\r\nme nokey\r\nme nokey q\r\n"
         + ms(b"foo", b"hi", b"F1 T1000") + b"me foo\r\n" + ms(b"foo", b"", b"T0")
         + b"me foo\r\nme " + K251 + b"\r\n"),
    Case("me_fetched", ms(b"foo", b"hi") + b"me foo\r\nmg foo h\r\nme foo\r\n" + ms(b"foo", b"hi")
         + b"get foo\r\nme foo\r\n" + ms(b"foo", b"hi") + b"touch foo 100\r\nme foo\r\n"
         + ms(b"foo", b"hi") + b"gat 100 foo\r\nme foo\r\n" + ms(b"foo", b"hi")
         + b"mg foo u\r\nme foo\r\n" + ms(b"foo", b"10") + b"mg foo\r\nma foo\r\nme foo\r\n"
         + ms(b"foo", b"hi") + b"mg foo\r\nmd foo I\r\nme foo\r\n" + ms(b"foo", b"hi")
         + ms(b"foo", b"ho", b"ME") + b"me foo\r\n"),
    Case("me_slab_classes", b"".join(ms(b"k%d" % n, b"x" * n) + b"me k%d\r\n" % n
                                     for n in (0, 28, 29, 60, 100, 500, 1000, 5000, 20000,
                                               100000, 400000, 524000, 600000))),
    Case("me_expired_and_flushed", ms(b"foo", b"hi", b"T-1") + b"me foo\r\n" + ms(b"bar", b"hi")
         + b"flush_all\r\nme bar\r\nmg bar\r\nmd bar\r\nma bar\r\n"),

    # ---- pipelines, q mode, split input ----
    Case("q_pipeline_with_mn", b"mn\r\nmg a q\r\nmg b q\r\n" + ms(b"c", b"x", b"q")
         + b"mg c q v\r\nmd zz q\r\nmd c q\r\nma n q\r\nma n q N0 J9\r\nmn\r\n"),
    Case("pipeline_200", pipeline(200)),
    Case("mixed_text_and_meta", b"set a 5 0 2\r\nhi\r\nmg a f v c\r\ngets a\r\n"
         + ms(b"a", b"xyz", b"F9") + b"get a\r\nincr n 1\r\nma n N0 J41\r\nincr n 1\r\n"
         b"mg n v\r\ndelete a\r\nmg a\r\n"),
    Case("split_bytewise", [bytes([b]) for b in
                            ms(b"k", b"abc", b"T0 c") + b"mg k v k s\r\nmd k q\r\nmg k\r\nmn\r\n"]),
    Case("split_in_data", [b"ms k 5 ", b"F1\r\nhel", b"lo\r", b"\nmg k v f\r", b"\n"]),
    Case("split_bad_chunk", [b"ms k 1\r\nx", b"y", b"\r\nmg k\r\n"]),

    # ---- lines over 2048 bytes without a newline close the connection, as for text ----
    Case("long_line_closes", [b"mg " + b"k" * 3000], sentinel=False),
    Case("long_line_with_newline", [b"mg " + b"k" * 3000 + b" v\r\n", Sync(),
                                    b"ms " + b"k" * 3000 + b" 1\r\nx\r\n"]),
]


def _session(port, case, timeout):
    """Runs one session; returns (reply bytes, closed)."""
    with mctest.Conn(port) as c:
        c.send(b"flush_all\r\n")
        assert c.read_until(b"\r\n") == b"OK\r\n"
        replies = b""
        for i, chunk in enumerate(case.chunks):
            if isinstance(chunk, Sync):
                replies += c.read_until(chunk.term, timeout)
                continue
            if i:
                time.sleep(SPLIT_GAP)
            if callable(chunk):
                replies += c.read_until(chunk.read_first, timeout)
                chunk = chunk(replies)
            try:
                c.send(chunk)
            except OSError:
                break
        if case.sentinel and not c.closed:
            try:
                c.send(SENTINEL)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        while True:
            buf = replies + c.buf
            if case.sentinel and buf.endswith(VERSION_LINE) and \
                    buf.count(VERSION_LINE) >= case.versions:
                break
            if c.closed or time.monotonic() >= deadline:
                break
            c.fill(deadline)
        return replies + c.buf, c.closed


META_CODES = (b"HD", b"VA", b"EN", b"NF", b"NS", b"EX", b"MN")
SECONDS = re.compile(rb"^([tl])(\d+)$")
ME_FIELD = re.compile(rb"^(exp|la|cas)=(-?\d+)$")


def normalize(reply):
    """Returns (text, seconds): the reply with CAS uniques renamed <casK> and every
    seconds-valued field replaced by <s>, and the list of those seconds in order."""
    cas_names = {}
    seconds = []
    out = []
    pos = 0

    def cas_name(v):
        return cas_names.setdefault(v, b"<cas%d>" % (len(cas_names) + 1))

    while pos < len(reply):
        eol = reply.find(b"\r\n", pos)
        if eol < 0:
            out.append(reply[pos:])
            break
        parts = reply[pos:eol].split(b" ")
        skip = 0
        if parts[0] == b"VALUE" and len(parts) in (4, 5) and parts[3].isdigit():
            if len(parts) == 5:
                parts[4] = cas_name(parts[4])
            skip = int(parts[3]) + 2
        elif parts[0] in META_CODES:
            if parts[0] == b"VA" and len(parts) > 1 and parts[1].isdigit():
                skip = int(parts[1]) + 2
            for i in range(1, len(parts)):
                p = parts[i]
                m = SECONDS.match(p)
                if m:
                    seconds.append(int(m.group(2)))
                    parts[i] = m.group(1) + b"<s>"
                elif p.startswith(b"c") and p[1:].isdigit() and p != b"c0":
                    parts[i] = b"c" + cas_name(p[1:])
        elif parts[0] == b"ME":
            for i in range(2, len(parts)):
                m = ME_FIELD.match(parts[i])
                if not m:
                    continue
                if m.group(1) == b"cas":
                    parts[i] = b"cas=" + cas_name(m.group(2))
                elif m.group(2) != b"-1":
                    seconds.append(int(m.group(2)))
                    parts[i] = m.group(1) + b"=<s>"
        out.append(b" ".join(parts) + b"\r\n" + reply[eol + 2:eol + 2 + skip])
        pos = eol + 2 + skip
    return b"".join(out), seconds


def same_reply(actual, expected):
    """True when the replies are the same after normalize(), seconds within 1 of each other."""
    a_text, a_sec = normalize(actual)
    e_text, e_sec = normalize(expected)
    return a_text == e_text and len(a_sec) == len(e_sec) and \
        all(abs(x - y) <= 1 for x, y in zip(a_sec, e_sec))


def _show(b, limit=1200):
    r = repr(b)
    return r if len(r) <= limit else r[:limit // 2] + " ... " + r[-limit // 2:]


@pytest.fixture(scope="module")
def pair(module_servers):
    m = module_servers.mcstore("-I", ITEM_MAX, "-t", "2")
    d = module_servers.memcached("-I", ITEM_MAX, "-t", "2")
    return m, d


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_same_reply_as_memcached(case, pair):
    m, d = pair
    expected, exp_closed = _session(d.port, case, READ_DEADLINE)
    actual, act_closed = _session(m.port, case, READ_DEADLINE)
    assert expected or exp_closed, "memcached gave nothing for %s" % case.name
    assert same_reply(actual, expected) and act_closed == exp_closed, (
        "\nrequest:   %s\nmemcached: %s closed=%s\nmcstore:   %s closed=%s" % (
            _show(b"".join(c for c in case.chunks if isinstance(c, bytes))),
            _show(normalize(expected)[0]), exp_closed, _show(normalize(actual)[0]),
            act_closed))
    assert m.alive(), "mcstore died during the session"


def test_normalize_keeps_what_matters():
    """The comparison must still fail on a real difference (a guard against a normalizer
    that hides everything)."""
    a = b"HD c5 t30 Z\r\nVA 2 c5\r\nhi\r\nME k exp=-30 la=0 cas=5 fetch=no cls=1 size=64\r\n"
    assert same_reply(a, a.replace(b"c5", b"c77").replace(b"cas=5", b"cas=77"))
    assert same_reply(a, a.replace(b"t30", b"t29").replace(b"exp=-30", b"exp=-31"))
    assert not same_reply(a, a.replace(b"t30", b"t28"))
    assert not same_reply(a, a.replace(b"Z", b"W"))
    assert not same_reply(a, a.replace(b"VA 2 c5", b"VA 2 c6"))    # a different unique
    assert not same_reply(a, a.replace(b"hi", b"ho"))
    assert not same_reply(a, a.replace(b"fetch=no", b"fetch=yes"))
    assert not same_reply(b"HD c0\r\n", b"HD c1\r\n")


# ---- documented differences (doc/protocol.md, "Meta protocol") ----

CONTROL_KEYS = [b"a\x01b", b"a\tb", b"a\x7fb"]


@pytest.mark.parametrize("k", CONTROL_KEYS, ids=[repr(k)[2:-1] for k in CONTROL_KEYS])
def test_control_char_keys_rejected_by_mcstore(k, pair):
    m, d = pair
    with mctest.Conn(m.port) as c:
        for req in (b"mg " + k + b" v", b"md " + k, b"ma " + k, b"me " + k):
            assert c.cmd(req + b"\r\n") == b"CLIENT_ERROR bad command line format\r\n", req
        # as a key over 250 bytes: the data line is then read as a command
        assert c.cmd(b"ms " + k + b" 1\r\nx\r\n" + SENTINEL, VERSION_LINE) == \
            b"CLIENT_ERROR bad command line format\r\nERROR\r\n" + VERSION_LINE
    # memcached stores such a key; in base64 both servers accept any byte
    with mctest.Conn(d.port) as c:
        assert c.cmd(b"ms " + k + b" 1\r\nx\r\n") == b"HD\r\n"
        assert c.cmd(b"md " + k + b"\r\n") == b"HD\r\n"


def test_pipelined_ma_after_a_read_keeps_its_ttl(pair):
    """memcached 1.6.18 drops an ma's T when a read of the same item came before it in the
    same batch of input: the read's pending reply still holds the item, so ma writes a copy
    and sets the TTL on the old one. Sent one at a time, both servers apply it. mcstore
    always applies it."""
    m, d = pair
    lost = {m: b"VA 2 t50\r\n11\r\n", d: b"VA 2 t100\r\n11\r\n"}
    for srv in (m, d):
        with mctest.Conn(srv.port) as c:
            assert c.cmd(ms(b"pma", b"10", b"T100")) == b"HD\r\n"
            c.send(b"mg pma\r\nma pma T50\r\nmg pma t v\r\n")
            assert c.read_until(b"11\r\n") == b"HD\r\nHD\r\n" + lost[srv], srv.name
            assert c.cmd(ms(b"pma", b"10", b"T100")) == b"HD\r\n"
            assert c.cmd(b"mg pma\r\n") == b"HD\r\n"
            assert c.cmd(b"ma pma T50\r\n") == b"HD\r\n"
            assert c.cmd(b"mg pma t v\r\n", b"11\r\n") == b"VA 2 t50\r\n11\r\n"


def test_meta_state_survives_restart(servers):
    """Stale, win token and base64-key marks live in the record: a restart keeps them. The
    fetched mark (h, me fetch=) lives in memory and is forgotten."""
    s = servers.mcstore("-t", "1")
    with mctest.Conn(s.port) as c:
        assert c.cmd(ms(b"Zm9v", b"hi", b"b")) == b"HD\r\n"
        assert c.cmd(b"md foo I\r\n") == b"HD\r\n"
        assert c.cmd(ms(b"won", b"x")) == b"HD\r\n"
        assert c.cmd(b"md won I\r\nmg won\r\n", b"W\r\n") == b"HD\r\nHD X W\r\n"
        assert c.cmd(b"mg won h\r\n") == b"HD h1 Z X\r\n"
    s.restart()
    with mctest.Conn(s.port) as c:
        assert c.cmd(b"mg foo k v\r\n", b"hi\r\n") == b"VA 2 kZm9v b X W\r\nhi\r\n"
        assert c.cmd(b"mg foo k\r\n") == b"HD kZm9v b Z X\r\n"
        assert c.cmd(b"mg won h\r\n") == b"HD h0 Z X\r\n"


def test_ttl_in_the_past_wraps(pair):
    """mg T-1 t prints the TTL as memcached's unsigned subtraction does: a huge number. The
    exact number depends on each server's clock origin, so only its size is compared."""
    for srv in pair:
        with mctest.Conn(srv.port) as c:
            assert c.cmd(ms(b"past", b"x")) == b"HD\r\n"
            reply = c.cmd(b"mg past T-1 t\r\n")
            m = re.fullmatch(rb"HD t(\d+)\r\n", reply)
            assert m and int(m.group(1)) > 2 ** 31, (srv.name, reply)
            assert c.cmd(b"mg past\r\n") == b"EN\r\n"


# ---- hostile input (mcstore only) ----

def test_huge_ms_length_is_swallowed_not_allocated(pair):
    m, _ = pair
    rss0 = mctest.rss_kb(m.pid)
    with mctest.Conn(m.port) as c:
        c.send(b"ms huge 2147483645 T0\r\n")
        assert c.read_until(b"\r\n") == b"SERVER_ERROR object too large for cache\r\n"
        c.send(b"x" * 65536)
    with mctest.Conn(m.port) as c:
        c.send(b"ms huge2 2147483645 z\r\n" + b"x" * 65536)
        assert c.read_until(b"\r\n") == b"CLIENT_ERROR invalid flag\r\n"
    with mctest.Conn(m.port) as c:
        assert c.cmd(b"mn\r\n") == b"MN\r\n"
    assert mctest.rss_kb(m.pid) - rss0 < 32 * 1024


def test_hostile_lines_keep_the_server_up(pair):
    m, _ = pair
    junk = [b"mg " + b"\xff" * 250 + b" b k v", b"ms k 1 " + b"b" * 3 + b" O" * 5,
            b"ma k " + b"N" * 10, b"md k " + b"I " * 30, b"me " + b"=" * 250 + b" b",
            b"mg k " + b"O" + b"x" * 1500, b"ms k -2147483648", b"ms k 99999999999999999999",
            b"mg k t" + b"\x00" * 10, b"ma k D18446744073709551615 J18446744073709551615 N0 v"]
    with mctest.Conn(m.port) as c:
        for j in junk:
            c.send(j + b"\r\n")
            c.send(b"x\r\n")        # the data line of an accepted ms, a command otherwise
        assert c.cmd(b"mn\r\n", b"MN\r\n").endswith(b"MN\r\n")
    assert m.alive()


# ---- statistics: meta commands count where memcached counts them ----

COUNTED = ["cmd_get", "get_hits", "get_misses", "cmd_touch", "touch_hits", "touch_misses",
           "cmd_set", "cas_hits", "cas_misses", "cas_badval", "delete_hits", "delete_misses",
           "incr_hits", "incr_misses", "decr_hits", "decr_misses", "cmd_meta"]


def test_stats_counted_as_memcached(pair):
    session = (ms(b"sa", b"10") + b"mg sa\r\nmg sa v T30\r\nmg nokey\r\nmg nokey T30\r\n"
               b"mg viv N30\r\nms sa 1 C1\r\nx\r\nms nokey 1 C1\r\nx\r\nms sa 1 ME\r\nx\r\n"
               b"ma sa\r\nma sa MD\r\nma nokey\r\nma nokey MD\r\nma cr N0\r\nmd sa C1\r\n"
               b"md sa I\r\nmd sa\r\nmd sa\r\nme viv\r\nme nokey\r\nme\r\nmn\r\nmg sa z\r\n"
               + SENTINEL)
    deltas = {}
    for srv in pair:
        with mctest.Conn(srv.port) as c:
            before = mctest.stats(c)
            c.send(session)
            c.read_until(VERSION_LINE)
            after = mctest.stats(c)
        deltas[srv.name] = {k: int(after[k]) - int(before[k]) for k in COUNTED}
    assert deltas["mcstore"] == deltas["memcached"], deltas
    assert sum(deltas["memcached"].values()) > 20, deltas     # the session did count


def test_meta_batch_rolled_back_and_rerun(pair):
    """Pipelined meta writes share a batch transaction; when it fails (an injected deadlock on
    the Nth Berkeley DB call), it is rolled back and each command runs again alone: the replies
    are those of one execution (no double increment, one win token)."""
    m, _ = pair
    with mctest.Conn(m.port) as c:
        assert mctest.stats(c, b"settings").get("test_hooks") == "yes", \
            "fault injection needs a build configured with --enable-test-hooks (script/test's)"
        before = int(mctest.stats(c, b"storage")["batches_failed"])
        for n in range(1, 12):
            k = b"mb%d" % n
            assert c.cmd(ms(k + b"s", b"old")) == b"HD\r\n"
            assert c.cmd(b"debug_fault %d deadlock\r\n" % n) == b"OK\r\n"
            c.send(ms(k, b"10", b"T0") + b"ma " + k + b"\r\nma " + k + b" v\r\nmd " + k
                   + b"s I\r\nmg " + k + b"s v\r\nma " + k + b"c N0 J7 v q\r\nmd " + k
                   + b"x q\r\nmn\r\n")
            assert c.read_until(b"MN\r\n") == (
                b"HD\r\nHD\r\nVA 2\r\n12\r\nHD\r\nVA 3 X W\r\nold\r\nVA 1\r\n7\r\nNF\r\nMN\r\n"
            ), n
            assert c.cmd(b"debug_fault off\r\n") == b"OK\r\n"
            assert c.cmd(b"mg " + k + b"s\r\n") == b"HD Z X\r\n"
        assert int(mctest.stats(c, b"storage")["batches_failed"]) > before
