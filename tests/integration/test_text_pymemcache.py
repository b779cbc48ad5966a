"""Every text-protocol command through pymemcache (Debian python3-pymemcache) against mcstore.

pymemcache 3.5 has no gat/gats method: those go through its own fetch path
(Client._fetch_cmd, which parses VALUE lines) and through a raw socket.
"""

import time

import pytest
from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheClientError

import mctest

U64_MAX = 2 ** 64 - 1


class FlagsSerde:
    """Keeps the flags next to the value, so the test sees what the server stored."""

    def serialize(self, key, value):
        return value, 0

    def deserialize(self, key, value, flags):
        return value, flags


def client(port, **kw):
    kw.setdefault("default_noreply", False)
    return Client((mctest.HOST, port), connect_timeout=5, timeout=5, no_delay=True, **kw)


@pytest.fixture
def mc(mcstore):
    c = client(mcstore.port)
    yield c
    c.close()


@pytest.fixture
def fresh(servers):
    """A server of its own, for tests that flush everything."""
    s = servers.mcstore("-t", "2")
    c = client(s.port)
    yield s, c
    c.close()


def test_set_get(mc, key):
    assert mc.set(key, b"hello") is True
    assert mc.get(key) == b"hello"
    assert mc.get(key + "_missing") is None
    assert mc.get(key + "_missing", default=b"d") == b"d"


def test_set_overwrites_and_binary_value(mc, key):
    v = bytes(range(256)) * 40 + b"\r\nEND\r\n\0"
    assert mc.set(key, b"first")
    assert mc.set(key, v)
    assert mc.get(key) == v


def test_large_value(mc, key):
    v = bytes(range(256)) * 3900                     # 998,400 bytes, under -I 1m
    assert mc.set(key, v) is True
    assert mc.get(key) == v
    assert mc.append(key, b"!") is True
    assert mc.get(key) == v + b"!"


def test_get_many(mc, key):
    values = {"%s_%d" % (key, i): b"v%d" % i for i in range(20)}
    assert mc.set_many(values) == []
    got = mc.get_many(list(values) + [key + "_missing"])
    assert got == values
    assert mc.get_multi([key + "_missing"]) == {}


def test_gets(mc, key):
    mc.set(key, b"v1")
    v, cas1 = mc.gets(key)
    assert v == b"v1" and int(cas1) > 0
    v, cas1b = mc.gets(key)
    assert cas1b == cas1, "cas changes without a write"
    mc.set(key, b"v2")
    v, cas2 = mc.gets(key)
    assert v == b"v2" and int(cas2) != int(cas1)
    assert mc.gets(key + "_missing") == (None, None)
    many = mc.gets_many([key, key + "_missing"])
    assert many == {key: (b"v2", cas2)}


def test_gat_gats(mc, key):
    mc.set(key, b"g", flags=0)
    assert mc._fetch_cmd(b"gat 100", [key], False) == {key: b"g"}
    got = mc._fetch_cmd(b"gats 100", [key, key + "_missing"], True)
    assert list(got) == [key]
    assert got[key][0] == b"g" and int(got[key][1]) == int(mc.gets(key)[1])
    # gat changes the exptime: -1 expires the item after returning it
    assert mc._fetch_cmd(b"gat -1", [key], False) == {key: b"g"}
    assert mc.get(key) is None
    assert mc._fetch_cmd(b"gat 10", [key], False) == {}


def test_gat_gats_raw(mcstore, bkey):
    with mctest.Conn(mcstore.port) as c:
        assert c.cmd(mctest.storage_cmd(b"set", bkey, 7, 0, b"xyz")) == b"STORED\r\n"
        assert c.cmd(b"gat 100 %s\r\n" % bkey, b"END\r\n") == \
            b"VALUE %s 7 3\r\nxyz\r\nEND\r\n" % bkey
        got = mctest.get_values(c, b"gats 100 %s nokey_%s\r\n" % (bkey, bkey))
        assert got[bkey][:2] == (7, b"xyz") and got[bkey][2] > 0
        assert c.cmd(b"gat 0 nokey_%s\r\n" % bkey, b"\r\n") == b"END\r\n"


def test_add(mc, key):
    assert mc.add(key, b"a") is True
    assert mc.add(key, b"b") is False
    assert mc.get(key) == b"a"


def test_replace(mc, key):
    assert mc.replace(key, b"r") is False
    assert mc.get(key) is None
    mc.set(key, b"x")
    assert mc.replace(key, b"r") is True
    assert mc.get(key) == b"r"


def test_append_prepend(mc, key):
    assert mc.append(key, b"x") is False
    assert mc.prepend(key, b"x") is False
    assert mc.get(key) is None
    mc.set(key, b"b", flags=5)
    assert mc.append(key, b"c", flags=9) is True
    assert mc.prepend(key, b"a", flags=7) is True
    fc = client(mc.server[1], serde=FlagsSerde())
    try:
        assert fc.get(key) == (b"abc", 5), "append/prepend keep the item's flags"
    finally:
        fc.close()


def test_cas(mc, key):
    assert mc.cas(key, b"x", b"1") is None                 # NOT_FOUND
    mc.set(key, b"v1")
    _, cas = mc.gets(key)
    assert mc.cas(key, b"v2", cas) is True                 # STORED
    assert mc.get(key) == b"v2"
    assert mc.cas(key, b"v3", cas) is False                # EXISTS: cas is stale now
    assert mc.get(key) == b"v2"
    _, cas2 = mc.gets(key)
    assert int(cas2) > int(cas)
    assert mc.cas(key, b"v4", cas2) is True
    mc.delete(key)
    assert mc.cas(key, b"v5", cas2) is None


def test_incr_decr(mc, key):
    assert mc.incr(key, 1) is None
    assert mc.decr(key, 1) is None
    mc.set(key, b"10")
    assert mc.incr(key, 5) == 15
    assert mc.decr(key, 3) == 12
    assert mc.incr(key, 0) == 12
    assert mc.get(key) == b"12"
    assert mc.decr(key, 100) == 0, "decr stops at 0"
    assert mc.decr(key, 1) == 0
    assert mc.incr(key, 99) == 99
    assert mc.incr(key, 1) == 100
    assert mc.get(key) == b"100"


def test_incr_wraps_at_2_64(mc, key):
    mc.set(key, str(U64_MAX).encode())
    assert mc.incr(key, 1) == 0
    mc.set(key, str(U64_MAX - 1).encode())
    assert mc.incr(key, 1) == U64_MAX
    assert mc.incr(key, U64_MAX) == U64_MAX - 1
    assert int(mc.get(key)) == U64_MAX - 1


def test_decr_length_shrinks_like_memcached(mc, key):
    mc.set(key, b"100")
    assert mc.decr(key, 1) == 99
    # memcached rewrites in place, space-padded to the old length
    assert mc.get(key) == b"99 "


def test_incr_non_numeric(mc, key):
    mc.set(key, b"abc")
    with pytest.raises(MemcacheClientError, match="non-numeric"):
        mc.incr(key, 1)
    with pytest.raises(MemcacheClientError, match="non-numeric"):
        mc.decr(key, 1)
    assert mc.get(key) == b"abc"


def test_delete(mc, key):
    assert mc.delete(key) is False
    mc.set(key, b"x")
    assert mc.delete(key) is True
    assert mc.get(key) is None
    assert mc.delete(key) is False
    mc.set_many({key + "1": b"1", key + "2": b"2"})
    assert mc.delete_many([key + "1", key + "2", key + "3"]) is True
    assert mc.get_many([key + "1", key + "2"]) == {}


def test_touch(mc, key):
    assert mc.touch(key, 10) is False
    mc.set(key, b"x")
    assert mc.touch(key, 100) is True
    assert mc.get(key) == b"x"
    assert mc.touch(key, -1) is True
    assert mc.get(key) is None


def test_flush_all(fresh):
    _, mc = fresh
    mc.set_many({"f1": b"1", "f2": b"2"})
    assert mc.flush_all() is True
    assert mc.get_many(["f1", "f2"]) == {}
    assert mc.set("f3", b"3") is True
    assert mc.get("f3") == b"3", "an item set right after flush_all survives"


def test_flush_all_delay(fresh):
    _, mc = fresh
    mc.set("old", b"1")
    t0 = time.monotonic()
    # memcached flushes at the tick of its 1 s clock where now >= then + delay - 1: for a
    # delay of 3 that is 1 to 2 s from now
    assert mc.flush_all(delay=3) is True
    assert mc.get("old") == b"1", "flush_all 3 must not flush at once"
    mctest.wait_for(lambda: mc.get("old") is None, 6, 0.05, "the delayed flush")
    assert time.monotonic() - t0 >= 0.9, "flush_all 3 flushed too early"
    # memcached's clock has 1 s steps: an item set in the second the flush happens goes too;
    # items set after it survive
    mctest.wait_for(lambda: mc.set("new", b"2") and mc.get("new") == b"2", 3, 0.05,
                    "items set after the delayed flush to survive")


def test_flush_all_noreply(fresh):
    _, mc = fresh
    mc.set("f1", b"1")
    assert mc.flush_all(noreply=True) is True
    assert mc.get("f1") is None


def test_version(mc):
    assert mc.version() == b"1.6.18"


def test_stats(mc, key):
    before = mc.stats()
    mc.set(key, b"x")
    mc.get(key)
    mc.get(key + "_missing")
    s = mc.stats()
    for name in (b"pid", b"uptime", b"time", b"curr_connections", b"total_connections",
                 b"cmd_get", b"cmd_set", b"get_hits", b"get_misses", b"curr_items",
                 b"total_items", b"threads"):
        assert name in s, name
    assert s[b"version"] == b"1.6.18"
    assert s[b"cmd_set"] >= before[b"cmd_set"] + 1
    assert s[b"cmd_get"] >= before[b"cmd_get"] + 2
    assert s[b"get_hits"] >= before[b"get_hits"] + 1
    assert s[b"get_misses"] >= before[b"get_misses"] + 1
    assert s[b"curr_items"] >= 1
    assert abs(s[b"time"] - time.time()) < 5
    assert s[b"mcstore_version"], "our own version is in stats"


def test_stats_settings(mcstore, mc):
    s = mc.stats("settings")
    assert int(s[b"tcpport"]) == mcstore.port
    assert int(s[b"maxconns"]) > 0
    assert int(s[b"item_size_max"]) == 1024 * 1024
    assert int(s[b"num_threads"]) == 2


def test_stats_conns(mc):
    mc.version()
    port = mc.sock.getsockname()[1]
    s = mc.stats("conns")
    addrs = [v for k, v in s.items() if k.endswith(b":addr")]
    assert b"tcp:127.0.0.1:%d" % port in addrs, s


def test_stats_storage(mc, key):
    mc.set(key, b"x")
    s = mc.stats("storage")
    assert s, "stats storage is empty"
    names = b" ".join(s)
    # the issue asks for pages, cache hit rate, log size and items
    for part in (b"page", b"hit", b"log", b"item"):
        assert part in names, "no %r figure in stats storage: %r" % (part, sorted(s))


def test_noreply_variants(mc, key):
    nr = client(mc.server[1], default_noreply=True)
    try:
        assert nr.set(key, b"1") is True
        assert nr.add(key + "a", b"a") is True
        assert nr.add(key + "a", b"not stored") is True        # no reply to tell
        assert nr.replace(key + "a", b"A") is True
        assert nr.append(key, b"0") is True
        assert nr.prepend(key, b"2") is True
        assert nr.incr(key, 5, noreply=True) is None
        assert nr.decr(key, 1, noreply=True) is None
        assert nr.touch(key, 100) is True
        assert nr.delete(key + "a") is True
        nr.set(key + "c", b"c")
        assert nr.version() == b"1.6.18"    # a reply on nr: everything before it is done
        _, cas = mc.gets(key + "c")
        assert nr.cas(key + "c", b"C", cas, noreply=True) is True
        assert nr.set_many({key + "m1": b"m1", key + "m2": b"m2"}) == []
        # the replies never came; the next command with a reply proves nothing is pending
        assert nr.version() == b"1.6.18"
        assert mc.get(key) == b"214"       # "1" -> "10" -> "210" -> 215 -> 214
        assert mc.get(key + "a") is None
        assert mc.get(key + "c") == b"C"
        assert mc.get_many([key + "m1", key + "m2"]) == {key + "m1": b"m1", key + "m2": b"m2"}
    finally:
        nr.close()


def test_noreply_raw_sends_nothing(mcstore, bkey):
    """Nothing at all comes back for noreply commands, not even for errors."""
    with mctest.Conn(mcstore.port) as c:
        c.send(mctest.storage_cmd(b"set", bkey, 0, 0, b"5", noreply=True) +
               b"incr %s 1 noreply\r\ndecr %s 1 noreply\r\ntouch %s 0 noreply\r\n"
               b"incr %s_missing 1 noreply\r\ndelete %s_missing noreply\r\n"
               b"delete %s noreply\r\nversion\r\n" % ((bkey,) * 6))
        assert c.read_until(b"\r\n") == b"VERSION 1.6.18\r\n"
        assert c.cmd(b"get %s\r\n" % bkey, b"\r\n") == b"END\r\n"


@pytest.mark.parametrize("flags", [0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF])
def test_flags_round_trip_32bit(mcstore, key, flags):
    fc = client(mcstore.port, serde=FlagsSerde())
    try:
        assert fc.set(key, b"v", flags=flags)
        assert fc.get(key) == (b"v", flags)
    finally:
        fc.close()
    with mctest.Conn(mcstore.port) as c:
        assert c.cmd(b"get %s\r\n" % key.encode(), b"END\r\n") == \
            b"VALUE %s %d 1\r\nv\r\nEND\r\n" % (key.encode(), flags)


def test_exptime_relative_absolute_negative(mc, key):
    now = int(time.time())
    k = {n: "%s_%s" % (key, n) for n in
         ("rel1", "abs2", "neg", "abs_past", "rel_30d", "abs_31d", "never", "abs_tiny")}
    mc.set(k["rel1"], b"x", expire=1)
    mc.set(k["abs2"], b"x", expire=now + 2)
    mc.set(k["neg"], b"x", expire=-1)
    mc.set(k["abs_past"], b"x", expire=now - 100)
    mc.set(k["rel_30d"], b"x", expire=30 * 24 * 3600)        # relative, the largest
    mc.set(k["abs_31d"], b"x", expire=now + 31 * 24 * 3600)   # absolute, in the future
    mc.set(k["never"], b"x", expire=0)
    mc.set(k["abs_tiny"], b"x", expire=30 * 24 * 3600 + 1)    # absolute: 1970, long past
    got = mc.get_many(list(k.values()))
    assert set(got) == {k["rel1"], k["abs2"], k["rel_30d"], k["abs_31d"], k["never"]}
    mctest.wait_for(lambda: not mc.get_many([k["rel1"], k["abs2"]]), 6, 0.05,
                    "relative (1 s) and absolute (now+2) exptimes to pass")
    assert set(mc.get_many(list(k.values()))) == {k["rel_30d"], k["abs_31d"], k["never"]}


def test_exptime_via_touch_absolute(mc, key):
    mc.set(key, b"x")
    assert mc.touch(key, int(time.time()) - 10) is True
    assert mc.get(key) is None

