"""MemcacheDB's range get: `rget <start> <end> <left_open> <right_open> <max>` returns the
items whose keys are in the range, in byte order, as VALUE lines, then END."""

import pytest

import mctest
from mctest import storage_cmd


def rget(c, *args):
    line = b"rget " + b" ".join(a if isinstance(a, bytes) else b"%d" % a for a in args)
    return mctest.get_values(c, line + b"\r\n")


def ordered_keys(c, *args):
    c.send(b"rget " + b" ".join(a if isinstance(a, bytes) else b"%d" % a for a in args) +
           b"\r\n")
    keys = []
    while True:
        line = c.read_until(b"\r\n")
        if line == b"END\r\n":
            return keys
        parts = line.split(b" ")
        assert parts[0] == b"VALUE", line
        keys.append(parts[1])
        c.read_exact(int(parts[3]) + 2)


@pytest.fixture
def loaded(mcstore, bkey):
    p = bkey + b"_"
    suffixes = [b"a", b"b", b"c", b"d", b"e", b"B", b"a1", b"\x80x"]
    c = mctest.Conn(mcstore.port)
    for i, s in enumerate(suffixes):
        assert c.cmd(storage_cmd(b"set", p + s, i, 0, b"value-" + s)) == b"STORED\r\n"
    yield c, p
    c.close()


def test_rget_closed_range(loaded):
    c, p = loaded
    assert ordered_keys(c, p + b"b", p + b"d", 0, 0, 100) == [p + b"b", p + b"c", p + b"d"]
    got = rget(c, p + b"b", p + b"d", 0, 0, 100)
    assert got[p + b"c"] == (2, b"value-c", None)


def test_rget_open_ends(loaded):
    c, p = loaded
    assert ordered_keys(c, p + b"b", p + b"d", 1, 0, 100) == [p + b"c", p + b"d"]
    assert ordered_keys(c, p + b"b", p + b"d", 0, 1, 100) == [p + b"b", p + b"c"]
    assert ordered_keys(c, p + b"b", p + b"d", 1, 1, 100) == [p + b"c"]


def test_rget_byte_order_and_max(loaded):
    c, p = loaded
    # byte order: 'B' (0x42) < 'a' < 'a1' < 'b' ... < '\x80x'
    assert ordered_keys(c, p + b"A", p + b"\xff", 0, 0, 100) == [
        p + s for s in (b"B", b"a", b"a1", b"b", b"c", b"d", b"e", b"\x80x")]
    assert ordered_keys(c, p + b"A", p + b"\xff", 0, 0, 3) == [p + b"B", p + b"a", p + b"a1"]


def test_rget_empty_range(loaded):
    c, p = loaded
    assert c.cmd(b"rget %sx %sy 0 0 10\r\n" % (p, p), b"\r\n") == b"END\r\n"
    assert c.cmd(b"rget %sd %sb 0 0 10\r\n" % (p, p), b"\r\n") == b"END\r\n"


def test_rget_skips_expired_and_deleted(loaded):
    c, p = loaded
    assert c.cmd(storage_cmd(b"set", p + b"c", 0, -1, b"gone")) == b"STORED\r\n"
    assert c.cmd(b"delete %sd\r\n" % p) == b"DELETED\r\n"
    assert ordered_keys(c, p + b"b", p + b"e", 0, 0, 100) == [p + b"b", p + b"e"]


def test_rget_bad_arguments(loaded):
    c, p = loaded
    for bad in (b"rget\r\n", b"rget a\r\n", b"rget a b 0 0\r\n", b"rget a b x 0 10\r\n",
                b"rget a b 0 0 abc\r\n", b"rget " + b"k" * 251 + b" b 0 0 1\r\n"):
        reply = c.cmd(bad)
        assert reply in (b"ERROR\r\n", b"CLIENT_ERROR bad command line format\r\n"), (bad, reply)
    assert c.cmd(b"version\r\n") == b"VERSION 1.6.18\r\n"
