"""Every text-protocol command through pylibmc (libmemcached, Debian python3-pylibmc) against
mcstore. pylibmc has no gat/gats/version methods: gat/gats are covered through pymemcache and
raw sockets (test_text_pymemcache.py), the version through get_stats and a raw socket here.
"""

import time

import pylibmc
import pytest

import mctest

U64_MAX = 2 ** 64 - 1
BEHAVIORS = {"cas": True, "tcp_nodelay": True}


def client(port, **behaviors):
    b = dict(BEHAVIORS)
    b.update(behaviors)
    return pylibmc.Client(["%s:%d" % (mctest.HOST, port)], binary=False, behaviors=b)


@pytest.fixture
def mc(mcstore):
    c = client(mcstore.port)
    yield c
    c.disconnect_all()


@pytest.fixture
def fresh(servers):
    s = servers.mcstore("-t", "2")
    c = client(s.port)
    yield s, c
    c.disconnect_all()


def raw_get(port, key):
    """{key: (flags, value, cas)} as the server stores it."""
    with mctest.Conn(port) as c:
        return mctest.get_values(c, b"gets %s\r\n" % key.encode())


def test_set_get(mc, key):
    assert mc.set(key, b"hello") is True
    assert mc.get(key) == b"hello"
    assert mc.get(key + "_missing") is None


def test_value_types_and_their_flags(mc, mcstore, key):
    """pylibmc keeps the Python type in the flags; they must come back as stored."""
    values = {key + "_b": b"bytes", key + "_s": "text \u00e9", key + "_i": 12345,
              key + "_l": [1, "two", {"3": 4}], key + "_t": True}
    for k, v in values.items():
        assert mc.set(k, v)
    assert mc.get_multi(list(values)) == values
    assert raw_get(mcstore.port, key + "_i")[(key + "_i").encode()][:2] == (4, b"12345")
    assert raw_get(mcstore.port, key + "_b")[(key + "_b").encode()][:2] == (0, b"bytes")


def test_large_value(mc, key):
    v = bytes(range(256)) * 3900                     # 998,400 bytes, under -I 1m
    assert mc.set(key, v) is True
    assert mc.get(key) == v
    assert mc.get_multi([key, key + "_missing"]) == {key: v}


def test_get_multi_set_multi(mc, key):
    values = {"%s_%d" % (key, i): b"v%d" % i for i in range(30)}
    assert mc.set_multi(values) == []
    assert mc.get_multi(list(values) + [key + "_missing"]) == values
    assert mc.get_multi([key + "_missing"]) == {}


def test_gets(mc, key):
    mc.set(key, b"v1")
    v, cas1 = mc.gets(key)
    assert v == b"v1" and cas1 > 0
    assert mc.gets(key)[1] == cas1
    mc.set(key, b"v2")
    v, cas2 = mc.gets(key)
    assert v == b"v2" and cas2 != cas1
    assert mc.gets(key + "_missing") == (None, None)


def test_add(mc, key):
    assert mc.add(key, b"a") is True
    assert mc.add(key, b"b") is False
    assert mc.get(key) == b"a"


def test_replace(mc, key):
    assert mc.replace(key, b"r") is False
    mc.set(key, b"x")
    assert mc.replace(key, b"r") is True
    assert mc.get(key) == b"r"


def test_append_prepend(mc, key):
    assert mc.append(key, b"x") is False
    assert mc.prepend(key, b"x") is False
    mc.set(key, b"b")
    assert mc.append(key, b"c") is True
    assert mc.prepend(key, b"a") is True
    assert mc.get(key) == b"abc"


def test_cas(mc, key):
    with pytest.raises(pylibmc.NotFound):
        mc.cas(key, b"x", 1)
    mc.set(key, b"v1")
    _, cas = mc.gets(key)
    assert mc.cas(key, b"v2", cas) is True
    assert mc.cas(key, b"v3", cas) is False            # EXISTS
    assert mc.get(key) == b"v2"
    _, cas2 = mc.gets(key)
    assert cas2 > cas
    mc.delete(key)
    with pytest.raises(pylibmc.NotFound):
        mc.cas(key, b"v4", cas2)


def test_incr_decr(mc, key):
    with pytest.raises(pylibmc.NotFound):
        mc.incr(key)
    with pytest.raises(pylibmc.NotFound):
        mc.decr(key)
    mc.set(key, 10)
    assert mc.incr(key) == 11
    assert mc.incr(key, 9) == 20
    assert mc.decr(key, 5) == 15
    assert mc.decr(key, 100) == 0, "decr stops at 0"
    assert mc.get(key) == 0
    mc.set(key, b"7")
    assert mc.incr_multi([key], delta=3) is None
    assert mc.get(key) == b"10"


def test_incr_wraps_at_2_64(mc, key):
    mc.set(key, str(U64_MAX).encode())
    assert mc.incr(key, 1) == 0
    mc.set(key, str(U64_MAX - 1).encode())
    assert mc.incr(key, 1) == U64_MAX
    assert mc.get(key) == str(U64_MAX).encode()


def test_incr_non_numeric(mc, key):
    mc.set(key, b"not a number")
    with pytest.raises(pylibmc.ClientError):
        mc.incr(key)
    with pytest.raises(pylibmc.ClientError):
        mc.decr(key)
    assert mc.get(key) == b"not a number"


def test_delete(mc, key):
    assert mc.delete(key) is False
    mc.set(key, b"x")
    assert mc.delete(key) is True
    assert mc.get(key) is None
    mc.set_multi({key + "1": b"1", key + "2": b"2"})
    assert mc.delete_multi([key + "1", key + "2"]) is True
    assert mc.get_multi([key + "1", key + "2"]) == {}


def test_touch(mc, key):
    assert mc.touch(key, 10) is False
    mc.set(key, b"x")
    assert mc.touch(key, 100) is True
    assert mc.get(key) == b"x"
    assert mc.touch(key, -1) is True
    assert mc.get(key) is None


def test_flush_all(fresh):
    _, mc = fresh
    mc.set_multi({"f1": b"1", "f2": b"2"})
    assert mc.flush_all() is True
    assert mc.get_multi(["f1", "f2"]) == {}
    mc.set("f3", b"3")
    assert mc.get("f3") == b"3"


def test_flush_all_delay(fresh):
    _, mc = fresh
    mc.set("old", b"1")
    assert mc.flush_all(time=2) is True
    assert mc.get("old") == b"1"
    mctest.wait_for(lambda: mc.get("old") is None, 6, 0.05, "the delayed flush")


def test_version(mcstore, mc):
    assert mc.get_stats()[0][1]["version"] == b"1.6.18"
    with mctest.Conn(mcstore.port) as c:
        assert c.cmd(b"version\r\n") == b"VERSION 1.6.18\r\n"


def test_stats(mcstore, mc, key):
    (server, s), = mc.get_stats()
    assert server.startswith(b"%s:%d" % (mctest.HOST.encode(), mcstore.port))
    mc.set(key, b"x")
    mc.get(key)
    (_, s2), = mc.get_stats()
    assert int(s2["pid"]) == mcstore.pid
    assert int(s2["cmd_set"]) > int(s["cmd_set"])
    assert int(s2["get_hits"]) > int(s["get_hits"])
    assert int(s2["curr_connections"]) >= 1
    assert int(s2["curr_items"]) >= 1
    assert int(s2["total_items"]) >= 1
    assert abs(int(s2["time"]) - time.time()) < 5


# libmemcached parses only the general stats names, so for the sub-commands pylibmc shows
# that the reply is well formed (STAT lines then END: no error); their content is checked
# through pymemcache and raw sockets.
@pytest.mark.parametrize("sub", ["settings", "conns", "storage"])
def test_stats_subcommands_accepted(mc, sub):
    (server, s), = mc.get_stats(sub)
    assert server and isinstance(s, dict)


def test_noreply_behavior(mcstore, mc, key):
    nr = client(mcstore.port, _noreply=True)
    try:
        nr.set(key, b"1")
        nr.add(key + "a", b"a")
        nr.replace(key + "a", b"A")
        nr.append(key, b"0")
        nr.prepend(key, b"2")
        nr.set(key + "d", b"d")
        nr.delete(key + "d")
        nr.set_multi({key + "m1": b"m1", key + "m2": b"m2"})
        nr.touch(key, 100)
        # a reply on the same connection: the server has done everything sent before it
        assert nr.get(key) == b"210"
    finally:
        nr.disconnect_all()
    assert mc.get(key) == b"210"
    assert mc.get(key + "a") == b"A"
    assert mc.get(key + "d") is None
    assert mc.get_multi([key + "m1", key + "m2"]) == {key + "m1": b"m1", key + "m2": b"m2"}


def test_flags_full_32bit_via_raw(mcstore, key):
    """pylibmc reserves the flags for its types; the server must keep all 32 bits."""
    k = key.encode()
    with mctest.Conn(mcstore.port) as c:
        assert c.cmd(mctest.storage_cmd(b"set", k, 0xFFFFFFFF, 0, b"v")) == b"STORED\r\n"
    assert raw_get(mcstore.port, key)[k][:2] == (0xFFFFFFFF, b"v")


def test_exptime(mc, key):
    now = int(time.time())
    k = {n: "%s_%s" % (key, n) for n in ("rel1", "abs2", "neg", "abs_past", "never")}
    mc.set(k["rel1"], b"x", time=1)
    mc.set(k["abs2"], b"x", time=now + 2)
    mc.set(k["neg"], b"x", time=-1)
    mc.set(k["abs_past"], b"x", time=now - 100)
    mc.set(k["never"], b"x")
    assert set(mc.get_multi(list(k.values()))) == {k["rel1"], k["abs2"], k["never"]}
    mctest.wait_for(lambda: not mc.get_multi([k["rel1"], k["abs2"]]), 6, 0.05,
                    "relative and absolute exptimes to pass")
    assert set(mc.get_multi(list(k.values()))) == {k["never"]}
