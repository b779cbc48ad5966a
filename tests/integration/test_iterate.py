"""Our extension `iterate <cursor> <count> [v]`: an ordered, resumable walk over every live item
(doc/protocol.md), the server side of mcstore-rebalance. Each call is its own read; the cursor
is base64 of the last key returned and `END 0` ends the walk."""

import base64
import struct
import threading
import time

import pytest

import mctest
from mctest import storage_cmd

MAX_CALLS = 100000          # bound on the calls of one walk (the largest walk here is ~3000)


def iterate(c, cursor, count, values=False, timeout=None):
    """One call: ([item dicts], next cursor). Keys come back decoded from base64 when marked."""
    line = b"iterate %s %s%s\r\n" % (cursor, count if isinstance(count, bytes) else b"%d" % count,
                                     b" v" if values else b"")
    c.send(line)
    items = []
    while True:
        head = c.read_until(b"\r\n", timeout)
        parts = head[:-2].split(b" ")
        if parts[0] == b"END":
            assert len(parts) == 2, head
            return items, parts[1]
        assert parts[0] == b"ITEM" and len(parts) in (6, 7), head
        it = {"raw": parts[1], "flags": int(parts[2]), "exptime": int(parts[3]),
              "bytes": int(parts[4]), "cas": int(parts[5]), "b64": len(parts) == 7}
        if it["b64"]:
            assert parts[6] == b"b", head
            it["key"] = base64.b64decode(parts[1], validate=True)
        else:
            it["key"] = parts[1]
        if values:
            data = c.read_exact(it["bytes"] + 2, timeout)
            assert data.endswith(b"\r\n"), data[-10:]
            it["value"] = data[:-2]
        items.append(it)


def walk(c, count, values=False):
    """Every item, following cursors until END 0: (items, number of calls)."""
    out, cursor, calls = [], b"0", 0
    while True:
        items, cursor = iterate(c, cursor, count, values)
        calls += 1
        out.extend(items)
        if cursor == b"0":
            return out, calls
        assert items, "a call that returns nothing must end the walk"
        assert cursor == base64.b64encode(items[-1]["key"]), (cursor, items[-1]["key"])
        assert calls < MAX_CALLS, "walk does not end"


def with_prefix(items, prefix):
    return [it for it in items if it["key"].startswith(prefix)]


def set_many(c, pairs):
    """Pipelined noreply sets, then one round trip to know they are all done."""
    data = b"".join(storage_cmd(b"set", k, f, 0, v, noreply=True) for k, f, v in pairs)
    c.send(data + b"mn\r\n")
    assert c.read_until(b"MN\r\n", 30) == b"MN\r\n"


def bin_set(c, key, value, flags=0, exptime=0):
    """A binary-protocol set (keys may hold any byte there)."""
    ext = struct.pack(">II", flags, exptime)
    body = ext + key + value
    c.send(struct.pack(">BBHBBHIIQ", 0x80, 0x01, len(key), 8, 0, 0, len(body), 0, 0) + body)
    h = c.read_exact(24)
    status, bodylen = struct.unpack(">H", h[6:8])[0], struct.unpack(">I", h[8:12])[0]
    c.read_exact(bodylen)
    assert status == 0, "binary set of %r: status %#x" % (key, status)


@pytest.fixture
def own(servers):
    """A server of the test's own, so a walk sees exactly the test's keys."""
    s = servers.mcstore("-t", "2")
    c = mctest.Conn(s.port)
    yield s, c
    c.close()


def keyset(n):
    # byte order differs from insertion order and from numeric order; high bytes included
    keys = [b"k%d" % i for i in range(n)] + [b"K\xc3\xa9%03d" % i for i in range(0, n, 50)]
    return [(k, i % 7, b"v-%s-%d" % (k, i)) for i, k in enumerate(keys)]


@pytest.mark.parametrize("count", [1, 7, 10000])
def test_full_walk_is_the_key_set_in_byte_order(own, count):
    s, c = own
    pairs = keyset(800)
    set_many(c, pairs)
    want = sorted(pairs)
    got, calls = walk(c, count)
    assert [it["key"] for it in got] == [k for k, _, _ in want]
    assert [it["flags"] for it in got] == [f for _, f, _ in want]
    assert [it["bytes"] for it in got] == [len(v) for _, _, v in want]
    assert all(it["exptime"] == 0 and it["cas"] > 0 and not it["b64"] for it in got)
    # count items per call (the last call may hold fewer, and END 0 comes with the last item)
    assert calls == (len(want) + count - 1) // count
    # cas is the item's: gets agrees
    k = want[3][0]
    cas = mctest.get_values(c, b"gets " + k + b"\r\n")[k][2]
    assert next(it["cas"] for it in got if it["key"] == k) == cas


def test_walk_with_values_and_stats(own):
    s, c = own
    pairs = keyset(500)
    set_many(c, pairs)
    before = int(mctest.stats(c)["cmd_iterate"])
    got, calls = walk(c, 64, values=True)
    assert [(it["key"], it["flags"], it["value"]) for it in got] == sorted(pairs)
    st = mctest.stats(c)
    assert int(st["cmd_iterate"]) == before + calls
    assert int(st["curr_items"]) == len(got)
    assert int(st["bytes"]) == sum(len(it["value"]) for it in got)


def test_empty_store_ends_at_once(own):
    s, c = own
    assert iterate(c, b"0", 10) == ([], b"0")
    assert iterate(c, b"0", 10, values=True) == ([], b"0")


def test_binary_keys_come_back_in_base64(own):
    s, c = own      # c speaks the binary protocol from its first byte on
    odd = [b"with space", b"tab\tkey", b"ctl\x01\x02", b"del\x7f", b"nul\x00mid", b"\x20lead",
           b"nl\r\nkey"]
    for i, k in enumerate(odd):
        bin_set(c, k, b"val%d" % i, flags=i)
    c2 = mctest.Conn(s.port)
    set_many(c2, [(b"plain", 9, b"p"), (b"high\xff\x80", 8, b"h")])
    got, _ = walk(c2, 3, values=True)
    by_key = {it["key"]: it for it in got}
    assert sorted(by_key) == sorted(odd + [b"plain", b"high\xff\x80"])
    for i, k in enumerate(odd):
        it = by_key[k]
        assert it["b64"] and it["raw"] == base64.b64encode(k), it
        assert (it["flags"], it["value"]) == (i, b"val%d" % i)
    assert not by_key[b"plain"]["b64"] and not by_key[b"high\xff\x80"]["b64"]
    # the cursor of a binary key resumes right after it
    ordered = sorted(by_key)
    i = ordered.index(b"ctl\x01\x02")
    items, _ = iterate(c2, base64.b64encode(b"ctl\x01\x02"), 2)
    assert [it["key"] for it in items] == ordered[i + 1:i + 3]
    # and what iterate hands out is what a meta get with b reads back
    assert c2.cmd(b"mg " + base64.b64encode(b"tab\tkey") + b" b v\r\n") == b"VA 4\r\n"
    assert c2.read_until(b"\r\n") == b"val1\r\n"
    c2.close()


def test_expired_and_deleted_items_are_skipped(own):
    s, c = own
    set_many(c, [(b"a%d" % i, 0, b"x") for i in range(20)])
    for i in (3, 4, 5, 17):
        assert c.cmd(storage_cmd(b"set", b"a%d" % i, 0, -1, b"gone")) == b"STORED\r\n"
    assert c.cmd(b"delete a9\r\n") == b"DELETED\r\n"
    now = int(time.time())
    assert c.cmd(storage_cmd(b"set", b"a1", 5, 1000, b"ttl")) == b"STORED\r\n"
    got, _ = walk(c, 2)
    want = sorted(b"a%d" % i for i in range(20) if i not in (3, 4, 5, 9, 17))
    assert [it["key"] for it in got] == want
    ttl = next(it for it in got if it["key"] == b"a1")
    # exptime is absolute: set's relative 1000 s from about now
    assert now + 1000 <= ttl["exptime"] <= int(time.time()) + 1000
    # a cursor whose key was deleted since still resumes after it
    items, _ = iterate(c, base64.b64encode(b"a9"), 3)
    assert [it["key"] for it in items] == [k for k in want if k > b"a9"][:3]


def test_concurrent_writes_neither_lose_nor_repeat_stable_keys(own):
    s, c = own
    stable = [(b"s%05d" % i, 0, b"stable") for i in range(0, 3000, 2)]
    set_many(c, stable)
    stop = threading.Event()
    errors = []
    writes = [0]

    def writer():
        # churn between the stable keys: adds, overwrites and deletes all over the range
        w = mctest.Conn(s.port)
        try:
            i = 0
            while not stop.is_set() and i < 200000:
                k = b"s%05d" % (1 + 2 * ((i * 7919) % 1500))
                if i % 3 == 2:
                    w.send(b"delete " + k + b" noreply\r\n")
                else:
                    w.send(storage_cmd(b"set", k, 1, 0, b"churn%d" % i, noreply=True))
                # the stable keys get rewritten too: still live for the whole walk
                if i % 5 == 0:
                    sk = b"s%05d" % (2 * ((i * 31) % 1500))
                    w.send(storage_cmd(b"set", sk, 0, 0, b"stable", noreply=True))
                i += 1
                if i % 100 == 0:
                    assert w.cmd(b"mn\r\n") == b"MN\r\n"
            writes[0] = i
        except Exception as e:      # reported by the main thread
            errors.append(e)
        finally:
            w.close()

    t = threading.Thread(target=writer)
    t.start()
    try:
        mctest.wait_for(lambda: writes[0] or int(mctest.stats(c)["cmd_set"]) > 500, 30,
                        what="the writer to start")
        got, calls = walk(c, 7)
    finally:
        stop.set()
        t.join(60)
    assert not t.is_alive() and not errors, errors
    keys = [it["key"] for it in got]
    assert keys == sorted(set(keys)), "repeated or out of order"
    stable_seen = [k for k in keys if int(k[1:]) % 2 == 0]
    assert stable_seen == [k for k, _, _ in stable]
    assert calls > 1


def test_reply_is_bounded_by_value_bytes(own):
    s, c = own
    big = b"x" * 1000000
    set_many(c, [(b"big%02d" % i, 0, big) for i in range(10)])
    items, cursor = iterate(c, b"0", 10000, values=True, timeout=30)
    assert 1 <= len(items) < 10 and cursor != b"0"
    got, _ = walk(c, 10000, values=True)
    assert [it["key"] for it in got] == [b"big%02d" % i for i in range(10)]
    assert all(it["value"] == big for it in got)
    # without values the bound does not apply
    items, cursor = iterate(c, b"0", 10000)
    assert len(items) == 10 and cursor == b"0"


BAD = [
    (b"iterate\r\n", b"ERROR\r\n"),
    (b"iterate 0\r\n", b"ERROR\r\n"),
    (b"iterate 0 1 v x\r\n", b"ERROR\r\n"),
    (b"iterate x 10\r\n", b"CLIENT_ERROR bad cursor\r\n"),
    (b"iterate 00 10\r\n", b"CLIENT_ERROR bad cursor\r\n"),
    (b"iterate YQ 10\r\n", b"CLIENT_ERROR bad cursor\r\n"),        # no padding
    (b"iterate YR== 10\r\n", b"CLIENT_ERROR bad cursor\r\n"),      # bits left over
    (b"iterate ==== 10\r\n", b"CLIENT_ERROR bad cursor\r\n"),
    (b"iterate Y=Q= 10\r\n", b"CLIENT_ERROR bad cursor\r\n"),
    (b"iterate YW*= 10\r\n", b"CLIENT_ERROR bad cursor\r\n"),
    (b"iterate " + base64.b64encode(b"k" * 251) + b" 10\r\n", b"CLIENT_ERROR bad cursor\r\n"),
    (b"iterate 0 0\r\n", b"CLIENT_ERROR bad count\r\n"),
    (b"iterate 0 abc\r\n", b"CLIENT_ERROR bad count\r\n"),
    (b"iterate 0 -1\r\n", b"CLIENT_ERROR bad count\r\n"),
    (b"iterate 0 18446744073709551616\r\n", b"CLIENT_ERROR bad count\r\n"),
    (b"iterate YQ== 0\r\n", b"CLIENT_ERROR bad count\r\n"),
    (b"iterate 0 10 vv\r\n", b"CLIENT_ERROR bad command line format\r\n"),
]


@pytest.mark.parametrize("line,reply", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_cursor_or_count_is_an_error_and_the_connection_survives(conn, line, reply):
    assert conn.cmd(line) == reply
    assert conn.cmd(b"version\r\n") == b"VERSION 1.6.18\r\n"


def test_large_count_is_capped(own):
    s, c = own
    set_many(c, [(b"c%05d" % i, 0, b"") for i in range(10050)])
    items, cursor = iterate(c, b"0", 2 ** 40)
    assert len(items) == 10000 and cursor == base64.b64encode(b"c%05d" % 9999)
    items, cursor = iterate(c, cursor, 10000)
    assert len(items) == 50 and cursor == b"0"


def test_needs_authentication(servers, tmp_path):
    import test_auth
    path = tmp_path / "auth"
    test_auth.passwd(path, "u", b"pw\n", "--iterations", test_auth.FAST)
    s = servers.mcstore("-t", "2", "--auth-file", str(path))
    with mctest.Conn(s.port) as c:
        assert c.cmd(b"iterate 0 10\r\n") == test_auth.UNAUTH
        assert c.cmd(test_auth.auth_cmd(b"u", b"pw")) == b"STORED\r\n"
        assert c.cmd(b"iterate 0 10\r\n") == b"END 0\r\n"


def test_deadlock_inside_a_walk_is_retried_without_repeating(servers):
    """A deadlock in the middle of one call's walk is retried from after the last item the
    reply already holds (fault injection: needs --enable-test-hooks)."""
    # no background Berkeley DB calls that could take the injected faults instead
    s = servers.mcstore("-t", "2", "--durability", "none", "--checkpoint-sec", "3600",
                        "--sweep-interval-ms", "3600000")
    with mctest.Conn(s.port) as c:
        assert mctest.stats(c, b"settings")["test_hooks"] == "yes", \
            "this mcstore was built without --enable-test-hooks"
        set_many(c, [(b"d%03d" % i, 0, b"v%d" % i) for i in range(200)])
        assert c.cmd(b"debug_fault 50 deadlock 3\r\n") == b"OK\r\n"
        items, cursor = iterate(c, b"0", 150, values=True)
        assert c.cmd(b"debug_fault off\r\n") == b"OK\r\n"
        assert [(it["key"], it["value"]) for it in items] == \
            [(b"d%03d" % i, b"v%d" % i) for i in range(150)]
        assert cursor == base64.b64encode(b"d149")
