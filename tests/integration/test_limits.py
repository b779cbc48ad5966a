"""Limits: -c connections, -I item size, the 2048-byte line limit, slow readers (output bound
and write timeout, with the server's RSS staying bounded), and one server per data home."""

import re
import socket
import time

import pytest

import mctest
from mctest import storage_cmd

MAXCONNS = 8
VALUE_100K = b"v" * (100 * 1024)


def conn_addrs(port):
    """The client addresses mcstore lists in `stats conns`."""
    with mctest.Conn(port) as c:
        s = mctest.stats(c, b"conns")
        me = "tcp:127.0.0.1:%d" % c.sock.getsockname()[1]
    addrs = {v for k, v in s.items() if k.endswith(":addr")}
    assert me in addrs, "stats conns does not list connections as memcached does: %r" % s
    return addrs


def test_max_connections(servers):
    s = servers.mcstore("-t", "2", "-c", MAXCONNS)
    conns = []
    try:
        for i in range(MAXCONNS):
            c = mctest.Conn(s.port)
            conns.append(c)
            assert c.cmd(b"version\r\n") == b"VERSION 1.6.18\r\n", "connection %d of %d" % (
                i + 1, MAXCONNS)
        extra = mctest.Conn(s.port)
        try:
            # told why, then closed (memcached 1.6's behaviour)
            assert extra.read_until(b"\r\n") == b"ERROR Too many open connections\r\n"
            assert extra.wait_closed(5), "the refused connection was left open"
        finally:
            extra.close()
        # the accepted ones still work
        for c in conns:
            assert c.cmd(b"version\r\n") == b"VERSION 1.6.18\r\n"
        # once one leaves, a new one gets in (the server sees the close asynchronously)
        conns.pop().close()

        def new_conn_works():
            c = mctest.Conn(s.port)
            c.send(b"version\r\n")
            reply = c.read_until(b"\r\n")
            if reply == b"VERSION 1.6.18\r\n":
                conns.append(c)
                return True
            c.close()
            return False
        mctest.wait_for(new_conn_works, 5, 0.05, "a free connection slot")
        c = conns[-1]
        assert mctest.stats(c, b"settings")["maxconns"] == str(MAXCONNS)
        st = mctest.stats(c)
        assert int(st["max_connections"]) == MAXCONNS
        assert int(st["rejected_connections"]) >= 1
        assert int(st["curr_connections"]) >= MAXCONNS
    finally:
        for c in conns:
            c.close()


@pytest.fixture(scope="module")
def small_items(module_servers):
    return module_servers.mcstore("-t", "2", "-I", "128k")


def test_item_max(small_items):
    with mctest.Conn(small_items.port) as c:
        assert c.cmd(storage_cmd(b"set", b"ok", 0, 0, VALUE_100K)) == b"STORED\r\n"
        too_big = b"t" * (200 * 1024)
        assert c.cmd(storage_cmd(b"set", b"big", 0, 0, too_big)) == \
            b"SERVER_ERROR object too large for cache\r\n"
        # the connection survives and the rejected data was not read as commands
        assert c.cmd(b"version\r\n") == b"VERSION 1.6.18\r\n"
        assert c.cmd(b"get big\r\n", b"END\r\n") == b"END\r\n"
        # a too-large set removes the old value (as memcached does)
        assert c.cmd(storage_cmd(b"set", b"ok", 0, 0, too_big)) == \
            b"SERVER_ERROR object too large for cache\r\n"
        assert c.cmd(b"get ok\r\n", b"END\r\n") == b"END\r\n"
        # append past the limit is refused too, and the item is unchanged
        assert c.cmd(storage_cmd(b"set", b"ap", 0, 0, VALUE_100K)) == b"STORED\r\n"
        reply = c.cmd(storage_cmd(b"append", b"ap", 0, 0, b"a" * (60 * 1024)))
        assert reply in (b"SERVER_ERROR out of memory storing object\r\n",
                         b"SERVER_ERROR object too large for cache\r\n", b"NOT_STORED\r\n"), reply
        assert mctest.get_values(c, b"get ap\r\n")[b"ap"][1] == VALUE_100K


def test_item_max_huge_length_not_allocated(small_items):
    """A length far over -I is not allocated: the server swallows what arrives and stays
    small; the client may give up and close."""
    s = small_items
    rss0 = mctest.rss_kb(s.pid)
    with mctest.Conn(s.port) as c:
        c.send(b"set huge 0 0 2000000000\r\n")
        c.send(b"x" * 65536)
        # the rejected block is swallowed as it arrives; close without sending it all
    with mctest.Conn(s.port) as c:
        assert c.cmd(b"version\r\n") == b"VERSION 1.6.18\r\n"
    assert mctest.rss_kb(s.pid) - rss0 < 32 * 1024


def test_item_max_2m(servers):
    s = servers.mcstore("-t", "2", "-I", "2m")
    v = bytes(range(256)) * 6000       # 1.5 MB
    with mctest.Conn(s.port) as c:
        assert c.cmd(storage_cmd(b"set", b"v", 0, 0, v)) == b"STORED\r\n"
        assert mctest.get_values(c, b"get v\r\n")[b"v"][1] == v
        assert mctest.stats(c, b"settings")["item_size_max"] == str(2 * 1024 * 1024)


def test_line_over_2048_without_newline_closes(mcstore):
    with mctest.Conn(mcstore.port) as c:
        c.send(b"x" * 2100)
        assert c.wait_closed(5), "a 2100-byte line without newline must close the connection"
        assert c.buf == b""
    with mctest.Conn(mcstore.port) as c:
        c.send(b"set " + b"k" * 3000)
        assert c.wait_closed(5)
    # a long get line is allowed (memcached allows get/gets lines past 2048)
    with mctest.Conn(mcstore.port) as c:
        c.send(b"get " + b"nokey " * 500)
        c.send(b"\r\n")
        assert c.read_until(b"\r\n") == b"END\r\n"


def test_get_line_without_newline_is_bounded(small_items):
    """memcached lets a get line grow past 2048 bytes without limit; mcstore allows get lines
    up to 2 MB and closes the connection past that, so its memory stays bounded."""
    s = small_items
    rss0 = mctest.rss_kb(s.pid)
    with mctest.Conn(s.port) as c:
        try:
            for _ in range(64):                      # 64 x 64 KB = 4 MB, no newline
                c.send(b"get " + b"abcdefg " * 8192)
        except OSError:
            pass                                     # closed while we were still sending
        assert c.wait_closed(5), "a 4 MB get line without newline was kept open"
    assert mctest.rss_kb(s.pid) - rss0 < 32 * 1024
    with mctest.Conn(s.port) as c:
        assert c.cmd(b"version\r\n") == b"VERSION 1.6.18\r\n"


def test_memory_stable_under_churn(servers):
    """Writing and reading 50 MB twice: the second round must not grow the server by much
    more than the first settled at (a leak of value buffers would)."""
    s = servers.mcstore("-t", "2", "-m", "16")
    value = bytes(range(256)) * 1024                 # 256 KB

    def churn(round_):
        with mctest.Conn(s.port) as c:
            for i in range(200):
                k = b"churn%d" % (i % 50)
                assert c.cmd(storage_cmd(b"set", k, round_, 0, value)) == b"STORED\r\n"
                assert mctest.get_values(c, b"get %s\r\n" % k)[k] == (round_, value, None)
    churn(1)
    rss1 = mctest.rss_kb(s.pid)
    churn(2)
    churn(3)
    grown = mctest.rss_kb(s.pid) - rss1
    assert grown < 24 * 1024, "RSS grew by %d kB over 100 MB of steady-state churn" % grown


def slow_reader(port, n_gets, key):
    """A client with a tiny receive buffer that pipelines n_gets gets and never reads."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((mctest.HOST, port))
    sock.settimeout(10)
    local = "tcp:127.0.0.1:%d" % sock.getsockname()[1]
    req = b"get %s\r\n" % key
    try:
        sock.sendall(req * n_gets)
    except OSError:
        pass        # the server may already have dropped us
    return sock, local


def drain_until_closed(sock, timeout):
    """Reads and discards until EOF/reset. Returns (closed within timeout, bytes read)."""
    deadline = time.monotonic() + timeout
    total = 0
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(1 << 20)
        except socket.timeout:
            break
        except (ConnectionResetError, BrokenPipeError):
            return True, total
        if not chunk:
            return True, total
        total += len(chunk)
    return False, total


def watch_disconnect(s, local, deadline_s, rss0):
    """Polls until `local` is listed in stats conns (the server may accept it a moment after
    the client connected), then until it is gone; returns (seconds, peak RSS growth kB)."""
    mctest.wait_for(lambda: local in conn_addrs(s.port), 5, 0.01,
                    "the slow reader %s to be listed in stats conns" % local)
    t0 = time.monotonic()
    peak = 0

    def gone():
        nonlocal peak
        peak = max(peak, mctest.rss_kb(s.pid) - rss0)
        return local not in conn_addrs(s.port)
    mctest.wait_for(gone, deadline_s, 0.05, "the slow reader %s to be disconnected" % local)
    return time.monotonic() - t0, peak


@pytest.mark.parametrize("n_gets,max_output,write_timeout", [
    (5000, 1024 * 1024, 2),             # 500 MB of replies against a 1 MB bound
    (100, 256 * 1024 * 1024, 1),        # 10 MB, under the bound: only the timeout applies
], ids=["over_max_output", "under_max_output"])
def test_slow_reader_is_disconnected(servers, n_gets, max_output, write_timeout):
    """A client that pipelines gets of a 100 KB value and never reads: the server stops
    reading it or bounds its output, drops it once it has made no progress for
    --write-timeout seconds, and its memory does not grow with the backlog."""
    s = servers.mcstore("-t", "2", "--max-output", max_output, "--write-timeout", write_timeout)
    with mctest.Conn(s.port) as c:
        assert c.cmd(storage_cmd(b"set", b"v100k", 0, 0, VALUE_100K)) == b"STORED\r\n"
        mctest.get_values(c, b"get v100k\r\n")
    rss0 = mctest.rss_kb(s.pid)
    sock, local = slow_reader(s.port, n_gets, b"v100k")
    try:
        secs, peak = watch_disconnect(s, local, write_timeout + 8, rss0)
        closed, drained = drain_until_closed(sock, 10)
    finally:
        sock.close()
    assert closed, ("the slow reader left stats conns after %.1f s but its socket was not "
                    "closed: the client could read %d bytes in 10 s and no EOF" % (secs, drained))
    backlog = n_gets * len(VALUE_100K)
    assert drained < min(backlog // 2, 64 * 1024 * 1024), (
        "after the disconnect the client could still read %d of %d bytes" % (drained, backlog))
    assert peak < 64 * 1024, "server RSS grew by %d kB for one slow reader" % peak
    with mctest.Conn(s.port) as c:
        assert c.cmd(b"version\r\n") == b"VERSION 1.6.18\r\n"
        assert mctest.get_values(c, b"get v100k\r\n")[b"v100k"][1] == VALUE_100K


def test_reader_that_keeps_reading_is_not_disconnected(servers):
    """A client that reads slowly but steadily makes progress: it gets every reply."""
    s = servers.mcstore("-t", "2", "--max-output", 512 * 1024, "--write-timeout", 2)
    with mctest.Conn(s.port) as c:
        assert c.cmd(storage_cmd(b"set", b"v100k", 0, 0, VALUE_100K)) == b"STORED\r\n"
        n = 40          # 4 MB of replies, 8 x the output bound, read as it comes
        c.send(b"get v100k\r\n" * n)
        for _ in range(n):
            c.read_until(b"VALUE v100k 0 102400\r\n", 10)
            c.read_exact(len(VALUE_100K) + 2 + 5, 10)
        assert c.cmd(b"version\r\n") == b"VERSION 1.6.18\r\n"


def test_second_server_on_same_data_home_refuses(servers):
    first = servers.mcstore("-t", "2")
    second = servers.mcstore("-t", "2", datadir=first.datadir, start=False)
    rc = second.run_expect_exit(20)
    assert rc != 0
    log = second.log_text()
    assert re.search(r"in use", log, re.I), "message should say the data home is in use: %r" % (
        log,)
    # the first one is unharmed
    with mctest.Conn(first.port) as c:
        assert c.cmd(storage_cmd(b"set", b"k", 0, 0, b"v")) == b"STORED\r\n"
    # once the first one has stopped, the data home can be opened again
    assert first.stop() == 0
    second.start()
    with mctest.Conn(second.port) as c:
        assert mctest.get_values(c, b"get k\r\n") == {b"k": (0, b"v", None)}
