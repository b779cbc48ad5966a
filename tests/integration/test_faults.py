"""Fault injection (SQLite style): the Nth Berkeley DB call fails with a chosen error. Every
failure reaches the client as SERVER_ERROR, the connection and the server survive, nothing
acknowledged is lost, and service resumes. Needs a build with --enable-test-hooks (script/test
builds both of its builds that way)."""

import struct

import pytest

import mctest

SESSION_KEYS = [b"fa", b"fb", b"fc"]


def expected_session(n, model):
    """The session's requests with the reply each must get if it is applied, computed from
    the model of what is stored; and how the model changes when it is."""
    k1, k2, k3 = SESSION_KEYS
    v = b"v%d" % n
    steps = []
    steps.append((mctest.storage_cmd(b"set", k1, n, 0, v), b"STORED\r\n",
                  lambda m: m.__setitem__(k1, (n, v))))
    if k1 in model:
        steps.append((mctest.storage_cmd(b"append", k1, 0, 0, b"+"), b"STORED\r\n",
                      lambda m: m.__setitem__(k1, (m[k1][0], m[k1][1] + b"+"))))
    steps.append((mctest.storage_cmd(b"set", k2, 0, 0, b"%d" % (n * 10)), b"STORED\r\n",
                  lambda m: m.__setitem__(k2, (0, b"%d" % (n * 10)))))
    steps.append((b"incr " + k2 + b" 5\r\n", None,
                  lambda m: m.__setitem__(k2, (0, b"%d" % (int(m[k2][1]) + 5)))))
    steps.append((mctest.storage_cmd(b"add", k3, 0, 0, b"x"), None,
                  lambda m: m.__setitem__(k3, (0, b"x"))))
    steps.append((b"delete " + k3 + b"\r\n", None, lambda m: m.pop(k3, None)))
    steps.append((b"touch " + k1 + b" 0\r\n", None, lambda m: None))
    return steps


def expected_reply(req, fixed, model):
    if fixed is not None:
        return fixed
    cmd, key = req.split(b" ")[0], req.split(b" ")[1].split(b"\r")[0]
    if cmd == b"incr":
        return b"%d\r\n" % (int(model[key][1]) + 5) if key in model else b"NOT_FOUND\r\n"
    if cmd == b"add":
        return b"NOT_STORED\r\n" if key in model else b"STORED\r\n"
    if cmd == b"delete":
        return b"DELETED\r\n" if key in model else b"NOT_FOUND\r\n"
    if cmd == b"touch":
        return b"TOUCHED\r\n" if key in model else b"NOT_FOUND\r\n"
    raise AssertionError(req)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = mctest.mcstore_server(tmp_path_factory.mktemp("faults"), "-t", "2")
    s.start()
    with mctest.Conn(s.port) as c:
        assert mctest.stats(c, b"settings")["test_hooks"] == "yes", \
            "this mcstore was built without --enable-test-hooks"
    yield s
    s.stop()


def arm(c, spec):
    assert c.cmd(b"debug_fault " + spec + b"\r\n") == b"OK\r\n"


def run_session(c, n, model):
    """Runs the session; each reply is the one the model predicts (then the model advances)
    or a SERVER_ERROR (then nothing changed: a failed command is rolled back whole)."""
    for req, fixed, apply in expected_session(n, model):
        want = expected_reply(req, fixed, model)
        r = c.cmd(req)
        if r.startswith(b"SERVER_ERROR "):
            continue
        assert r == want, (req, r, want)
        if want not in (b"NOT_FOUND\r\n", b"NOT_STORED\r\n"):
            apply(model)


def check_model(c, model):
    for key in SESSION_KEYS:
        got = mctest.get_values(c, b"get " + key + b"\r\n").get(key)
        want = model.get(key)
        assert (got[0], got[1]) == want if want is not None else got is None, (key, got, want)


@pytest.mark.parametrize("error", [b"deadlock", b"enospc", b"eio"])
def test_sweep_nth_call_failure(server, error):
    """Sweeps N over the session: one failing call at position N, for every N that hits it."""
    model = {}
    with mctest.Conn(server.port) as c:
        for key in SESSION_KEYS:
            c.cmd(b"delete " + key + b"\r\n")
        for n in range(1, 40):
            arm(c, b"%d %s" % (n, error))
            run_session(c, n, model)
            assert c.cmd(b"debug_fault off\r\n") == b"OK\r\n"
            check_model(c, model)
            assert c.cmd(b"version\r\n").startswith(b"VERSION")
        st = mctest.stats(c)
        assert int(st["store_errors"]) >= (0 if error == b"deadlock" else 1)
    assert server.alive()


def test_single_deadlock_is_retried_invisibly(server):
    with mctest.Conn(server.port) as c:
        arm(c, b"1 deadlock 3")
        assert c.cmd(mctest.storage_cmd(b"set", b"dl", 0, 0, b"ok")) == b"STORED\r\n"


def test_persistent_deadlock_reaches_the_client(server):
    with mctest.Conn(server.port) as c:
        arm(c, b"1 deadlock 1000")
        r = c.cmd(mctest.storage_cmd(b"set", b"dl2", 0, 0, b"no"))
        assert r == b"SERVER_ERROR lock conflict persisted, try again\r\n"
        assert c.cmd(b"debug_fault off\r\n") == b"OK\r\n"
        assert c.cmd(mctest.storage_cmd(b"set", b"dl2", 0, 0, b"yes")) == b"STORED\r\n"


def test_disk_full_then_space_returns(server):
    with mctest.Conn(server.port) as c:
        assert c.cmd(mctest.storage_cmd(b"set", b"full", 1, 0, b"before")) == b"STORED\r\n"
        arm(c, b"1 enospc 100000")
        for i in range(5):
            r = c.cmd(mctest.storage_cmd(b"set", b"full", 2, 0, b"during%d" % i))
            assert r == b"SERVER_ERROR out of disk space\r\n"
        # space returns: no restart needed
        assert c.cmd(b"debug_fault off\r\n") == b"OK\r\n"
        assert mctest.get_values(c, b"get full\r\n")[b"full"][:2] == (1, b"before")
        assert c.cmd(mctest.storage_cmd(b"set", b"full", 3, 0, b"after")) == b"STORED\r\n"
        assert mctest.get_values(c, b"get full\r\n")[b"full"][:2] == (3, b"after")


def test_runrecovery_refuses_writes_until_restart(tmp_path):
    s = mctest.mcstore_server(tmp_path, "-t", "1").start()
    try:
        with mctest.Conn(s.port) as c:
            assert c.cmd(mctest.storage_cmd(b"set", b"keep", 7, 0, b"safe")) == b"STORED\r\n"
            arm(c, b"1 runrecovery")
            replies = [c.cmd(mctest.storage_cmd(b"set", b"k%d" % i, 0, 0, b"x")) for i in range(3)]
            need = b"SERVER_ERROR storage needs recovery, restart the server\r\n"
            assert need in replies
            # once flagged, every write is refused, also with the fault disarmed
            assert c.cmd(b"debug_fault off\r\n") == b"OK\r\n"
            assert c.cmd(mctest.storage_cmd(b"set", b"k9", 0, 0, b"x")) == need
            assert mctest.stats(c, b"bdb")["mcstore_needs_recovery"] == "1"
        assert s.stop() == 0
        assert "needs recovery" in s.log_text()
        s.start_again()
        with mctest.Conn(s.port) as c:
            assert mctest.get_values(c, b"get keep\r\n")[b"keep"][:2] == (7, b"safe")
            assert c.cmd(mctest.storage_cmd(b"set", b"k9", 0, 0, b"x")) == b"STORED\r\n"
    finally:
        s.stop()


def test_db_checkpoint_and_db_archive_commands(server):
    with mctest.Conn(server.port) as c:
        before = int(mctest.stats(c, b"bdb")["mcstore_checkpoints"])
        assert c.cmd(b"db_checkpoint\r\n") == b"OK\r\n"
        assert c.cmd(b"db_archive\r\n") == b"OK\r\n"
        st = mctest.stats(c, b"bdb")
        assert int(st["mcstore_checkpoints"]) == before + 1
        for name in ("log_bytes_written", "txn_commits", "lock_requests", "mpool_hits",
                     "txn_last_checkpoint_time"):
            assert name in st, name


def test_failed_group_commit_never_acknowledges(tmp_path):
    """fsync mode: when the log flush that would cover a write fails, the client gets no STORED
    (the connection is closed); the server lives on and later writes succeed."""
    s = mctest.mcstore_server(tmp_path, "-t", "1", "--durability", "fsync").start()
    try:
        with mctest.Conn(s.port) as c:
            assert c.cmd(mctest.storage_cmd(b"set", b"g0", 0, 0, b"x")) == b"STORED\r\n"
            # walk the failure forward through a set's Berkeley DB calls until it lands on the
            # group commit's log flush, the last call before the reply
            closed_at = None
            for nth in range(1, 12):
                arm(c, b"%d eio" % nth)
                c.send(mctest.storage_cmd(b"set", b"g1:%d" % nth, 0, 0, b"y"))
                if c.wait_closed(0.5):
                    closed_at = nth
                    break
                assert c.read_until(b"\r\n").startswith(b"SERVER_ERROR "), nth
            assert closed_at is not None, "no injected failure reached the log flush"
            assert b"STORED" not in c.buf, c.buf
        assert s.alive()
        with mctest.Conn(s.port) as c:
            assert c.cmd(mctest.storage_cmd(b"set", b"g2", 0, 0, b"z")) == b"STORED\r\n"
            assert mctest.get_values(c, b"get g0 g2\r\n").keys() == {b"g0", b"g2"}
        assert "log flush failed" in s.log_text()
    finally:
        s.stop()


@pytest.mark.parametrize("error", [b"deadlock", b"eio"])
def test_failed_batch_is_rerun_command_by_command(server, error):
    """Pipelined writes share one transaction (a batch). A failure inside it rolls the whole
    batch back and runs each command again on its own: the client sees exactly the replies of
    one-by-one execution, and every acknowledged write is there."""
    with mctest.Conn(server.port) as c:
        before = int(mctest.stats(c, b"storage")["batches_failed"])
        for n in range(2, 8):
            arm(c, b"%d %s" % (n, error))
            reqs = [mctest.storage_cmd(b"set", b"bt%d" % i, i, 0, b"val%d.%d" % (i, n))
                    for i in range(12)]
            reqs.append(b"incr btn 1\r\n")
            reqs.append(b"get bt3 bt11\r\n")
            c.send(b"".join(reqs))
            for i in range(12):
                r = c.read_until(b"\r\n")
                assert r == b"STORED\r\n" or r.startswith(b"SERVER_ERROR "), (n, i, r)
            assert c.read_until(b"\r\n") == b"NOT_FOUND\r\n"
            got = mctest.parse_values(c.read_until(b"END\r\n"))
            assert c.cmd(b"debug_fault off\r\n") == b"OK\r\n"
            now = mctest.get_values(c, b"get " + b" ".join(b"bt%d" % i for i in range(12))
                                    + b"\r\n")
            for i in range(12):
                assert now[b"bt%d" % i][:2] == (i, b"val%d.%d" % (i, n)), (n, i, now)
            assert got[b"bt3"][:2] == (3, b"val3.%d" % n) and got[b"bt11"][:2] == (11, b"val11.%d" % n)
        assert int(mctest.stats(c, b"storage")["batches_failed"]) > before


def test_storage_failure_reaches_a_binary_client(server):
    """The binary protocol has no status for a storage failure: mcstore answers 0x84 (the
    protocol's internal error) with the reason as the body, for quiet requests too."""
    def bset(op, key, value, opaque):
        return struct.pack(">BBHBBHIIQ", 0x80, op, len(key), 8, 0, 0, 8 + len(key) + len(value),
                           opaque, 0) + struct.pack(">II", 0, 0) + key + value

    def reply(c):
        h = struct.unpack(">BBHBBHIIQ", c.read_exact(24))
        return h[1], h[5], h[7], c.read_exact(h[6])

    with mctest.Conn(server.port) as text, mctest.Conn(server.port) as b:
        arm(text, b"1 enospc 100000")
        b.send(bset(0x01, b"bfull", b"x", 1) + bset(0x11, b"bfull", b"y", 2))
        assert reply(b) == (0x01, 0x84, 1, b"out of disk space")
        assert reply(b) == (0x11, 0x84, 2, b"out of disk space")
        assert text.cmd(b"debug_fault off\r\n") == b"OK\r\n"
        b.send(bset(0x01, b"bfull", b"z", 3))
        assert reply(b)[:3] == (0x01, 0, 3)
