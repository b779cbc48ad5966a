"""The binary protocol through pylibmc (libmemcached, Debian python3-pylibmc) with binary=True:
every command libmemcached sends in binary (getkq + noop for get_multi, setq for set_multi,
incr/decr with their extras, cas in the header, touch). Run with MCSTORE_TEST_AGAINST=memcached
the same tests pass against memcached 1.6.18.

SASL through pylibmc (username/password) needs the password file of the auth work
(--auth-file); see test_binary_sasl.py.
"""

import struct
import time

import pylibmc
import pytest

import mctest

U64_MAX = 2 ** 64 - 1
BEHAVIORS = {"cas": True, "tcp_nodelay": True}


def client(port, **behaviors):
    b = dict(BEHAVIORS)
    b.update(behaviors)
    return pylibmc.Client(["%s:%d" % (mctest.HOST, port)], binary=True, behaviors=b)


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


def raw_gets(port, key):
    """(flags, value, cas) as the server stores it, read over the text protocol."""
    with mctest.Conn(port) as c:
        return mctest.get_values(c, b"gets %s\r\n" % key.encode()).get(key.encode())


def test_set_get(mc, key):
    assert mc.set(key, b"hello") is True
    assert mc.get(key) == b"hello"
    assert mc.get(key + "_missing") is None


def test_value_types_keep_their_flags(mc, mcstore, key):
    values = {key + "_b": b"bytes", key + "_s": "text \u00e9", key + "_i": 12345,
              key + "_l": [1, "two", {"3": 4}], key + "_t": True, key + "_e": b""}
    for k, v in values.items():
        assert mc.set(k, v)
    assert mc.get_multi(list(values)) == values
    assert raw_gets(mcstore.port, key + "_i")[:2] == (4, b"12345")


def test_binary_safe_keys_and_values(mc, key):
    v = bytes(range(256)) * 3900                     # 998,400 bytes, under -I 1m
    assert mc.set(key, v) is True
    assert mc.get(key) == v
    assert mc.set(key + "_nul", b"a\0b\r\nc") is True
    assert mc.get(key + "_nul") == b"a\0b\r\nc"


def test_too_large_value(mc, key):
    mc.set(key, b"old")
    with pytest.raises(pylibmc.TooBig):
        mc.set(key, b"x" * (1024 * 1024))
    # memcached drops the old value when a set is too large; so does mcstore
    assert mc.get(key) is None
    assert mc.set(key, b"small") is True


def test_get_multi_set_multi_delete_multi(mc, key):
    values = {"%s_%d" % (key, i): b"v%d" % i for i in range(100)}
    assert mc.set_multi(values, time=0) == []
    assert mc.get_multi(list(values) + [key + "_missing"]) == values
    assert mc.get_multi([key + "_missing"]) == {}
    assert mc.delete_multi(list(values)[:50]) is True
    got = mc.get_multi(list(values))
    assert got == dict(list(values.items())[50:])


def test_get_multi_key_prefix(mc, key):
    mc.set_multi({"a": b"1", "b": b"2"}, key_prefix=key + "_")
    assert mc.get_multi(["a", "b", "c"], key_prefix=key + "_") == {"a": b"1", "b": b"2"}


def test_add_replace(mc, key):
    assert mc.add(key, b"a") is True
    assert mc.add(key, b"b") is False
    assert mc.get(key) == b"a"
    with pytest.raises(pylibmc.NotFound):             # binary names it: Not found
        mc.replace(key + "_r", b"r")
    assert mc.replace(key, b"r") is True
    assert mc.get(key) == b"r"


def test_append_prepend(mc, key):
    assert mc.append(key, b"x") is False
    assert mc.prepend(key, b"x") is False
    mc.set(key, b"b")
    assert mc.append(key, b"c") is True
    assert mc.prepend(key, b"a") is True
    assert mc.get(key) == b"abc"


def test_gets_and_cas(mc, key):
    with pytest.raises(pylibmc.NotFound):
        mc.cas(key, b"x", 1)
    mc.set(key, b"v1")
    v, cas = mc.gets(key)
    assert v == b"v1" and cas > 0
    assert mc.gets(key)[1] == cas                      # reads keep the cas
    assert mc.cas(key, b"v2", cas) is True
    assert mc.cas(key, b"v3", cas) is False            # Data exists for key.
    assert mc.get(key) == b"v2"
    _, cas2 = mc.gets(key)
    assert cas2 != cas
    mc.delete(key)
    with pytest.raises(pylibmc.NotFound):
        mc.cas(key, b"v4", cas2)
    assert mc.gets(key + "_missing") == (None, None)


def test_incr_decr(mc, key):
    with pytest.raises(pylibmc.NotFound):
        mc.incr(key)
    with pytest.raises(pylibmc.NotFound):
        mc.decr(key)
    mc.set(key, b"10")
    assert mc.incr(key) == 11
    assert mc.incr(key, 9) == 20
    assert mc.decr(key, 5) == 15
    assert mc.decr(key, 100) == 0                      # stops at 0
    assert mc.get(key) in (b"0", b"0 ")                # rewritten in place, space padded
    mc.set(key, str(U64_MAX).encode())
    assert mc.incr(key) == 0                           # wraps at 2^64
    mc.set(key + "_s", b"abc")
    with pytest.raises(pylibmc.Error):
        mc.incr(key + "_s")


def test_incr_multi(mc, key):
    keys = ["%s_%d" % (key, i) for i in range(5)]
    mc.set_multi({k: b"1" for k in keys})
    mc.incr_multi(keys, delta=4)
    assert mc.get_multi(keys) == {k: b"5" for k in keys}


def test_delete(mc, key):
    mc.set(key, b"x")
    assert mc.delete(key) is True
    assert mc.delete(key) is False
    assert mc.get(key) is None


def test_touch(mc, key):
    assert mc.touch(key + "_missing", 10) is False
    mc.set(key, b"v", time=1000)
    assert mc.touch(key, 1) is True
    mctest.wait_for(lambda: mc.get(key) is None, 5, 0.05, "the touched item to expire")
    mc.set(key, b"v", time=1)
    assert mc.touch(key, 0) is True                    # 0: never expires
    time.sleep(1.5)                                    # past the original 1 s exptime
    assert mc.get(key) == b"v"


def test_set_with_exptime(mc, key):
    mc.set(key, b"v", time=1)
    mc.set(key + "_keep", b"v", time=100)
    mctest.wait_for(lambda: mc.get(key) is None, 5, 0.05, "the item to expire")
    assert mc.get(key + "_keep") == b"v"


def test_flush_all(fresh):
    _, c = fresh
    c.set_multi({"a": b"1", "b": b"2"})
    assert c.flush_all() is True
    assert c.get_multi(["a", "b"]) == {}
    assert c.set("a", b"3") is True
    assert c.get("a") == b"3"


def test_flush_all_delay(fresh):
    _, c = fresh
    c.set("a", b"1")
    assert c.flush_all(time=2) is True
    assert c.get("a") == b"1"
    mctest.wait_for(lambda: c.get("a") is None, 6, 0.05, "the delayed flush")


def test_stats_over_binary(mcstore, mc, key):
    before = mc.get_stats()[0][1]
    mc.get(key + "_missing")
    after = mc.get_stats()[0][1]
    assert after["version"] == b"1.6.18"
    assert int(after["get_misses"]) == int(before["get_misses"]) + 1
    # libmemcached folds any group into its fixed stats struct: only the call is checked
    assert mc.get_stats("settings")
    with pytest.raises(pylibmc.Error):
        mc.get_stats("nonsense")


def test_noreply_behavior(mcstore, key):
    """noreply turns storage commands into their quiet opcodes."""
    c = client(mcstore.port, _noreply=True)
    try:
        for i in range(20):
            c.set("%s_%d" % (key, i), b"v")
        c.delete("%s_0" % key)
    finally:
        c.disconnect_all()
    c = client(mcstore.port)
    try:
        mctest.wait_for(lambda: c.get("%s_19" % key) == b"v", 5, 0.01, "quiet sets")
        assert c.get("%s_0" % key) is None
    finally:
        c.disconnect_all()


def test_no_block_pipelining(mcstore, key):
    """no_block: libmemcached writes requests without waiting for each reply."""
    c = client(mcstore.port, no_block=True)
    try:
        for i in range(50):
            c.set("%s_%d" % (key, i), b"%d" % i)
        got = c.get_multi(["%s_%d" % (key, i) for i in range(50)])
        assert got == {"%s_%d" % (key, i): b"%d" % i for i in range(50)}
    finally:
        c.disconnect_all()


def test_flags_full_32bit(mcstore, key):
    """A raw binary set with flags 0xffffffff comes back with the same flags."""
    with mctest.Conn(mcstore.port) as c:
        k = key.encode()
        c.send(struct.pack(">BBHBBHIIQ", 0x80, 0x01, len(k), 8, 0, 0, 8 + len(k) + 1, 0, 0)
               + struct.pack(">II", 0xffffffff, 0) + k + b"v")
        assert c.read_exact(24)[6:8] == b"\0\0"
    assert raw_gets(mcstore.port, key)[:2] == (0xffffffff, b"v")
