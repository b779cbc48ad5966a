"""--durability: fsync mode acknowledges a write only after the log flush that covers it, and
shares one flush among the writes that arrive together (group commit)."""

import os
import re
import shutil
import signal
import threading

import pytest

import mctest

STRACE = shutil.which("strace")

SYNC_DONE = re.compile(rb"(?:f(?:data)?sync\(\d+\)|<\.\.\. f(?:data)?sync resumed>\)) += 0")
STORED_SENT = re.compile(rb"writev?\(\d+, .*STORED\\r\\n")
VERSION_SENT = re.compile(rb"writev?\(\d+, .*VERSION ")


def strace_server(tmp_path, durability):
    datadir = str(tmp_path / ("data-" + durability))
    os.makedirs(datadir, exist_ok=True)
    trace = str(tmp_path / ("trace-" + durability))

    def argv(port):
        return [STRACE, "-f", "-qq", "-s", "64", "-o", trace,
                "-e", "trace=fsync,fdatasync,write,writev",
                mctest.MCSTORE_BIN, "-p", str(port), "-l", mctest.HOST, "-H", datadir,
                "-t", "1", "--durability", durability]
    s = mctest.Server(argv, "mcstore-strace-" + durability, str(tmp_path))
    s.trace = trace
    return s


def stop_traced(server):
    """SIGTERM to mcstore itself (strace's child); strace exits with it."""
    pid = server.proc.pid
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        child = int(f.read().split()[0])
    server.exit_expected = True
    os.kill(child, signal.SIGTERM)
    server.proc.wait(timeout=mctest.STOP_DEADLINE)


def acks_after_sync(server, n):
    """Sends n sets one at a time; returns, for each STORED the server wrote, whether a
    completed fsync/fdatasync came between it and the previous reply. The syncs of start-up
    (recovery, checkpoint) are left out by starting after the reply to a 'version'."""
    with mctest.Conn(server.port) as c:
        assert c.cmd(b"version\r\n").startswith(b"VERSION ")
        for i in range(n):
            assert c.cmd(mctest.storage_cmd(b"set", b"k%d" % i, 0, 0, b"v")) == b"STORED\r\n"
    stop_traced(server)
    synced = False
    started = False
    result = []
    with open(server.trace, "rb") as f:
        for line in f:
            if not started:
                started = VERSION_SENT.search(line) is not None
                continue
            if SYNC_DONE.search(line):
                synced = True
            elif STORED_SENT.search(line):
                result.append(synced)
                synced = False
    assert len(result) == n, "saw %d STORED writes in the trace, expected %d" % (len(result), n)
    return result


def test_strace_is_installed():
    assert STRACE is not None, "strace is needed (script/bootstrap installs it)"


def test_fsync_mode_flushes_the_log_before_every_ack(tmp_path):
    s = strace_server(tmp_path, "fsync").start()
    try:
        assert all(acks_after_sync(s, 5))
    finally:
        s.stop()


def test_none_mode_acks_without_flushing(tmp_path):
    # The control: the same check must fail where no flush is promised.
    s = strace_server(tmp_path, "none").start()
    try:
        assert not any(acks_after_sync(s, 5))
    finally:
        s.stop()


@pytest.fixture
def fsync_server(tmp_path_factory):
    s = mctest.mcstore_server(tmp_path_factory.mktemp("fsync"), "--durability", "fsync", "-t", "2")
    s.start()
    yield s
    assert s.stop() == 0


def test_pipelined_writes_share_a_flush(fsync_server):
    n = 100
    with mctest.Conn(fsync_server.port) as c:
        c.send(b"".join(mctest.storage_cmd(b"set", b"p%d" % i, 0, 0, b"x" * 10)
                        for i in range(n)))
        for _ in range(n):
            assert c.read_until(b"\r\n") == b"STORED\r\n"
        st = mctest.stats(c, b"storage")
    assert st["durability"] == "fsync"
    assert int(st["group_commit_writes"]) == n
    assert float(st["writes_per_flush"]) >= 10, st


def test_concurrent_writers_all_acknowledged_and_counted(fsync_server):
    threads, per = 8, 50
    errors = []

    def writer(t):
        try:
            with mctest.Conn(fsync_server.port) as c:
                for i in range(per):
                    r = c.cmd(mctest.storage_cmd(b"set", b"w%d:%d" % (t, i), t, 0, b"v%d" % i))
                    if r != b"STORED\r\n":
                        errors.append(r)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    ts = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errors
    with mctest.Conn(fsync_server.port) as c:
        st = mctest.stats(c, b"storage")
        assert int(st["group_commit_writes"]) == threads * per
        assert 0 < int(st["group_commits"]) <= threads * per
        vals = mctest.get_values(c, b"get w3:7 w7:49\r\n")
    assert vals == {b"w3:7": (3, b"v7", None), b"w7:49": (7, b"v49", None)}


def test_durability_mode_is_reported_and_validated(tmp_path):
    s = mctest.mcstore_server(tmp_path, "--durability", "sometimes")
    rc = s.run_expect_exit()
    assert rc != 0
    assert "durability" in s.log_text()
