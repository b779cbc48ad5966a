"""Read-modify-write commands are atomic across connections and worker threads: concurrent
incr/append lose no update, and of several cas with the same unique exactly one wins."""

import threading

import pytest

import mctest
from mctest import storage_cmd

CLIENTS = 6
OPS = 150


def run_clients(port, fn, n=CLIENTS):
    """Runs fn(conn, i) on n connections at once; returns their results, re-raising errors."""
    results, errors = [None] * n, []
    start = threading.Barrier(n)

    def body(i):
        try:
            with mctest.Conn(port, timeout=20) as c:
                start.wait(10)
                results[i] = fn(c, i)
        except BaseException as e:      # reported below, in the test's thread
            errors.append(e)
    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a client hung"
    if errors:
        raise errors[0]
    return results


@pytest.fixture(scope="module")
def server(module_servers):
    return module_servers.mcstore("-t", "2")


def test_concurrent_incr_loses_nothing(server, bkey):
    with mctest.Conn(server.port) as c:
        assert c.cmd(storage_cmd(b"set", bkey, 0, 0, b"0")) == b"STORED\r\n"

    def incr(c, i):
        seen = []
        for _ in range(OPS):
            reply = c.cmd(b"incr %s 1\r\n" % bkey)
            seen.append(int(reply))
        return seen
    results = run_clients(server.port, incr)
    every = sorted(v for r in results for v in r)
    assert every == list(range(1, CLIENTS * OPS + 1)), "incr results repeat or skip"
    with mctest.Conn(server.port) as c:
        assert mctest.get_values(c, b"get %s\r\n" % bkey)[bkey][1] == b"%d" % (CLIENTS * OPS)


def test_concurrent_decr_stops_at_zero(server, bkey):
    with mctest.Conn(server.port) as c:
        assert c.cmd(storage_cmd(b"set", bkey, 0, 0, b"300")) == b"STORED\r\n"

    def decr(c, i):
        return [int(c.cmd(b"decr %s 1\r\n" % bkey)) for _ in range(100)]
    results = run_clients(server.port, decr)
    values = [v for r in results for v in r]
    assert sorted(v for v in values if v > 0) == list(range(1, 300))
    assert values.count(0) == CLIENTS * 100 - 299


def test_concurrent_append_loses_nothing(server, bkey):
    with mctest.Conn(server.port) as c:
        assert c.cmd(storage_cmd(b"set", bkey, 0, 0, b"")) == b"STORED\r\n"

    def append(c, i):
        for n in range(OPS // 3):
            piece = b"<%d.%d>" % (i, n)
            assert c.cmd(storage_cmd(b"append", bkey, 0, 0, piece)) == b"STORED\r\n"
    run_clients(server.port, append)
    with mctest.Conn(server.port) as c:
        value = mctest.get_values(c, b"get %s\r\n" % bkey)[bkey][1]
    pieces = value[1:-1].split(b"><")
    assert len(pieces) == CLIENTS * (OPS // 3) and len(set(pieces)) == len(pieces)
    for i in range(CLIENTS):        # each client's pieces in its own order
        mine = [int(p.split(b".")[1]) for p in pieces if p.startswith(b"%d." % i)]
        assert mine == list(range(OPS // 3))


def test_concurrent_cas_exactly_one_wins(server, bkey):
    for round_ in range(20):
        with mctest.Conn(server.port) as c:
            assert c.cmd(storage_cmd(b"set", bkey, 0, 0, b"start")) == b"STORED\r\n"
            cas = mctest.get_values(c, b"gets %s\r\n" % bkey)[bkey][2]

        def try_cas(c, i):
            return c.cmd(storage_cmd(b"cas", bkey, i, 0, b"client%d" % i, extra=b"%d" % cas))
        replies = run_clients(server.port, try_cas)
        assert sorted(replies) == [b"EXISTS\r\n"] * (CLIENTS - 1) + [b"STORED\r\n"], replies
        winner = replies.index(b"STORED\r\n")
        with mctest.Conn(server.port) as c:
            got = mctest.get_values(c, b"gets %s\r\n" % bkey)[bkey]
        assert got[:2] == (winner, b"client%d" % winner)
        assert got[2] != cas


def test_concurrent_add_exactly_one_wins(server, bkey):
    for round_ in range(20):
        k = bkey + b"_%d" % round_
        replies = run_clients(server.port, lambda c, i: c.cmd(
            storage_cmd(b"add", k, i, 0, b"v%d" % i)))
        assert sorted(replies) == [b"NOT_STORED\r\n"] * (CLIENTS - 1) + [b"STORED\r\n"], replies


def test_concurrent_cas_values_unique(server, bkey):
    def sets(c, i):
        out = []
        for n in range(40):
            k = b"%s_%d_%d" % (bkey, i, n)
            assert c.cmd(storage_cmd(b"set", k, 0, 0, b"v")) == b"STORED\r\n"
            out.append(mctest.get_values(c, b"gets %s\r\n" % k)[k][2])
        return out
    results = run_clients(server.port, sets)
    every = [v for r in results for v in r]
    assert len(set(every)) == len(every), "two writes got the same CAS unique"
    for r in results:
        assert r == sorted(r), "CAS values went backwards on one connection"
