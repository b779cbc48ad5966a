"""Expiry: an expired item is a miss for every command; the background sweeper deletes
expired items (curr_items and the Berkeley DB figures of `stats storage` drop) without
touching items whose exptime was moved away from the past."""

import time

import pytest

import mctest
from mctest import storage_cmd

SWEEP_MS = 100


@pytest.fixture
def sweeping(servers):
    return servers.mcstore("-t", "2", "--sweep-interval-ms", SWEEP_MS)


def storage_items(conn):
    """The item count of `stats storage` (records in the Berkeley DB items database)."""
    s = mctest.stats(conn, b"storage")
    assert "items" in s, "stats storage has no 'items' figure: %r" % s
    return int(s["items"])


def curr_items(conn):
    return int(mctest.stats(conn)["curr_items"])


def test_expired_item_is_a_miss_for_every_command(mcstore, bkey):
    k = bkey
    with mctest.Conn(mcstore.port) as c:
        for suffix in (b"get", b"gets", b"gat", b"touch", b"incr", b"append", b"replace",
                       b"cas", b"delete", b"add"):
            assert c.cmd(storage_cmd(b"set", k + suffix, 5, 1, b"1")) == b"STORED\r\n"
        cas = mctest.get_values(c, b"gets %scas\r\n" % k)[k + b"cas"][2]
        assert c.cmd(b"get %sget\r\n" % k, b"END\r\n") == b"VALUE %sget 5 1\r\n1\r\nEND\r\n" % k
        # wait until it is expired (checked on a key no other assertion uses)
        mctest.wait_for(lambda: c.cmd(b"get %sget\r\n" % k, b"END\r\n") == b"END\r\n", 6, 0.05,
                        "a 1 s item to expire")
        assert c.cmd(b"gets %sgets\r\n" % k, b"END\r\n") == b"END\r\n"
        assert c.cmd(b"gat 100 %sgat\r\n" % k, b"END\r\n") == b"END\r\n"
        assert c.cmd(b"touch %stouch 100\r\n" % k) == b"NOT_FOUND\r\n"
        assert c.cmd(b"incr %sincr 1\r\n" % k) == b"NOT_FOUND\r\n"
        assert c.cmd(storage_cmd(b"append", k + b"append", 0, 0, b"x")) == b"NOT_STORED\r\n"
        assert c.cmd(storage_cmd(b"replace", k + b"replace", 0, 0, b"x")) == b"NOT_STORED\r\n"
        assert c.cmd(storage_cmd(b"cas", k + b"cas", 0, 0, b"x", extra=b"%d" % cas)) == \
            b"NOT_FOUND\r\n"
        assert c.cmd(b"delete %sdelete\r\n" % k) == b"NOT_FOUND\r\n"
        assert c.cmd(storage_cmd(b"add", k + b"add", 0, 0, b"new")) == b"STORED\r\n"
        assert c.cmd(b"get %sadd\r\n" % k, b"END\r\n") == b"VALUE %sadd 0 3\r\nnew\r\nEND\r\n" % k


def test_sweeper_deletes_expired_items(sweeping):
    s = sweeping
    with mctest.Conn(s.port) as c:
        assert curr_items(c) == 0 and storage_items(c) == 0
        # 300 items that expire in 1 s, 20 that never do (pipelined, then all replies read)
        reqs = [storage_cmd(b"set", b"exp_%d" % i, 0, 1, b"x" * 100) for i in range(300)]
        reqs += [storage_cmd(b"set", b"keep_%d" % i, 0, 0, b"k") for i in range(20)]
        c.send(b"".join(reqs))
        for _ in reqs:
            assert c.read_until(b"\r\n") == b"STORED\r\n"
        assert curr_items(c) == 320 and storage_items(c) == 320
        # nobody reads the expired keys: only the sweeper can remove them
        mctest.wait_for(lambda: storage_items(c) == 20, 10, 0.05,
                        "the sweeper to delete 300 expired items (stats storage items 320 -> 20)")
        assert curr_items(c) == 20
        assert int(mctest.stats(c, b"storage")["expired_swept"]) >= 300
        got = mctest.get_values(c, b"get " + b" ".join(b"keep_%d" % i for i in range(20)) +
                                b"\r\n")
        assert len(got) == 20


def test_sweeper_spares_items_whose_exptime_moved(sweeping):
    """Re-set without exptime, touched, or gat'ed away from expiry: the sweeper must not
    delete them through a stale exptime index entry."""
    s = sweeping
    with mctest.Conn(s.port) as c:
        for k in (b"reset", b"touched", b"gatted", b"bait", b"appended", b"incred"):
            assert c.cmd(storage_cmd(b"set", k, 0, 1, b"1")) == b"STORED\r\n"
        assert c.cmd(storage_cmd(b"set", b"reset", 0, 0, b"2")) == b"STORED\r\n"
        assert c.cmd(b"touch touched 0\r\n") == b"TOUCHED\r\n"
        assert c.cmd(b"gat 3600 gatted\r\n", b"END\r\n").startswith(b"VALUE gatted")
        # append and incr keep the item's exptime: these two expire like bait
        assert c.cmd(storage_cmd(b"append", b"appended", 0, 0, b"x")) == b"STORED\r\n"
        assert c.cmd(b"incr incred 1\r\n") == b"2\r\n"
        mctest.wait_for(lambda: storage_items(c) == 3, 10, 0.05,
                        "the sweeper to delete the 3 expired items")
        got = mctest.get_values(c, b"get reset touched gatted bait appended incred\r\n")
        assert sorted(got) == [b"gatted", b"reset", b"touched"]
        assert got[b"reset"][1] == b"2"


def test_items_expired_while_down_are_swept_after_restart(servers):
    s = servers.mcstore("-t", "2", "--sweep-interval-ms", SWEEP_MS)
    with mctest.Conn(s.port) as c:
        c.send(b"".join(storage_cmd(b"set", b"e%d" % i, 0, 1, b"v") for i in range(50)) +
               storage_cmd(b"set", b"stay", 0, 0, b"v"))
        for _ in range(51):
            assert c.read_until(b"\r\n") == b"STORED\r\n"
    t0 = time.time()
    assert s.stop() == 0
    mctest.wait_for(lambda: time.time() >= t0 + 2.1, 5, 0.05, "the items' exptime to pass")
    s.start_again()
    with mctest.Conn(s.port) as c:
        assert c.cmd(b"get e0 e49\r\n", b"END\r\n") == b"END\r\n"
        mctest.wait_for(lambda: storage_items(c) == 1, 10, 0.05,
                        "the sweeper to delete items that expired while the server was down")
