"""Replication on Berkeley DB's Replication Manager (doc/replication.md): groups of mcstore
members on 127.0.0.1, each with its own data dir, client port and replication port.

What is shown: writes on the master reach every slave within a bound; a slave refuses writes
with the master's client address; rep_* commands and `stats repl`; elections and failover under
load with no acknowledged write lost; ack policies that cannot be met give SERVER_ERROR, never
STORED; restart catch-up and internal init; the two two-site policies.

Every wait polls with a deadline; servers are stopped by PID (conftest's Factory).
"""

import os
import re
import signal
import threading
import time

import pytest

import mctest
from mctest import storage_cmd

REPLICATE_WITHIN = 10.0     # seconds for a write on the master to be readable on a slave
ELECT_WITHIN = 30.0         # seconds for a group to have a master taking writes


class Group:
    """A replication group of n mcstore members, started together (in election mode a lone
    member waits for the others, so they must not start one by one)."""

    def __init__(self, servers, n, modes=None, ack="quorum", ack_timeout=1000, extra=(),
                 per_member=None):
        self.servers = servers
        self.repl_ports = [mctest.free_port() for _ in range(n)]
        self.members = []
        for i in range(n):
            args = ["-t", "2", "-R", "127.0.0.1:%d" % self.repl_ports[i],
                    "--repl-ack", ack, "--repl-ack-timeout", str(ack_timeout)]
            for j in range(n):
                if j != i:
                    args += ["-O", "127.0.0.1:%d" % self.repl_ports[j]]
            if modes is not None:
                args += ["--repl-mode", modes[i]]
            args += list(extra)
            if per_member is not None:
                args += list(per_member[i])
            s = servers.mcstore(*args, start=False)
            s.name = "member%d" % i
            self.members.append(s)

    def start(self, which=None):
        """Starts the members (all, or the indexes in which) concurrently."""
        which = range(len(self.members)) if which is None else which
        errors = []

        def run(s):
            try:
                if s.proc is None:
                    s.start()
                else:
                    s.start_again()
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
        threads = [threading.Thread(target=run, args=(self.members[i],)) for i in which]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return self

    def alive(self):
        return [s for s in self.members if s.alive()]

    def master(self, candidates=None, timeout=ELECT_WITHIN):
        """The member that says it is master and takes writes, polled for."""
        candidates = candidates or self.alive()

        def find():
            found = [s for s in candidates if ismaster(s) == b"REP_TRUE"]
            return found[0] if len(found) == 1 else None
        return mctest.wait_for(find, timeout, 0.05, "a single master among %s"
                               % [s.name for s in candidates])


def one_cmd(server, data, term=b"\r\n", timeout=5.0):
    try:
        with mctest.Conn(server.port, timeout=timeout) as c:
            return c.cmd(data, term, timeout)
    except (OSError, AssertionError):
        return None


def ismaster(server):
    r = one_cmd(server, b"rep_ismaster\r\n")
    return r.strip() if r is not None else None


def wait_slave_of(server, master, timeout=ELECT_WITHIN):
    """Polls until server is a slave that names master as the master."""
    want = b"127.0.0.1:%d\r\n" % master.port
    mctest.wait_for(lambda: ismaster(server) == b"REP_FALSE" and
                    one_cmd(server, b"rep_whoismaster\r\n") == want, timeout, 0.05,
                    "%s a slave of %s" % (server.name, master.name))


def repl_stats(server):
    with mctest.Conn(server.port) as c:
        return mctest.stats(c, b"repl")


def get(server, key):
    """The value of key on server (None: a miss), or raises on an error reply."""
    with mctest.Conn(server.port) as c:
        return mctest.get_values(c, b"get " + key + b"\r\n").get(key, (0, None, None))[1]


def wait_value(server, key, value, timeout=REPLICATE_WITHIN):
    def check():
        try:
            return get(server, key) == value
        except (OSError, AssertionError):
            return False
    mctest.wait_for(check, timeout, 0.02, "%r=%r on %s" % (key, value, server.name))


def wait_all_keys(server, expected, timeout=REPLICATE_WITHIN):
    """Polls until server holds every key of expected {key: value}; returns the misses."""
    keys = sorted(expected)
    missing = {}

    def check():
        missing.clear()
        try:
            with mctest.Conn(server.port) as c:
                for i in range(0, len(keys), 100):
                    chunk = keys[i:i + 100]
                    got = mctest.get_values(c, b"get " + b" ".join(chunk) + b"\r\n")
                    for k in chunk:
                        if got.get(k, (0, None, None))[1] != expected[k]:
                            missing[k] = got.get(k, (0, None, None))[1]
        except (OSError, AssertionError) as e:
            missing[b"<error>"] = str(e).encode()
        return not missing
    try:
        mctest.wait_for(check, timeout, 0.1, "all %d keys on %s" % (len(keys), server.name))
    except AssertionError:
        pass
    return dict(missing)


def set_reply(server, key, value, timeout=10.0):
    return one_cmd(server, storage_cmd(b"set", key, 0, 0, value), timeout=timeout)


REFUSAL = re.compile(rb"^SERVER_ERROR not master; master is 127\.0\.0\.1:(\d+)\r\n$")


def test_bad_replication_options_are_refused(servers):
    for args in (["--repl-ack", "most", "-R", "127.0.0.1:1"],
                 ["--repl-mode", "boss", "-R", "127.0.0.1:1"],
                 ["--repl-two-site", "maybe", "-R", "127.0.0.1:1"],
                 ["-O", "127.0.0.1:2"],
                 ["-R", "127.0.0.1:1", "-O", "127.0.0.1:1"],
                 ["-R", "127.0.0.1:1", "-O", "127.0.0.1:2", "--repl-nsites", "3"],
                 ["-R", "nohostport"]):
        s = servers.mcstore(*args, start=False)
        assert s.run_expect_exit() != 0, args


def test_commands_without_replication(servers):
    s = servers.mcstore("-t", "1")
    assert ismaster(s) == b"REP_DISABLE"
    assert repl_stats(s)["repl_enabled"] == "no"
    assert set_reply(s, b"k", b"v") == b"STORED\r\n"


def test_fixed_master_and_slaves(servers):
    g = Group(servers, 3, modes=["master", "slave", "slave"]).start()
    master, slaves = g.members[0], g.members[1:]
    assert g.master() is master
    for s in slaves:
        wait_slave_of(s, master)

    # writes on the master are readable on every slave within the bound
    t0 = time.monotonic()
    for i in range(50):
        assert set_reply(master, b"fk%d" % i, b"value%d" % i) == b"STORED\r\n"
    for s in slaves:
        assert wait_all_keys(s, {b"fk%d" % i: b"value%d" % i for i in range(50)}) == {}
    print("50 writes visible on both slaves after %.3f s" % (time.monotonic() - t0))
    with mctest.Conn(master.port) as c:
        assert c.cmd(b"delete fk0\r\n") == b"DELETED\r\n"
        assert c.cmd(b"incr fk_ctr 1\r\n") == b"NOT_FOUND\r\n"
        assert c.cmd(storage_cmd(b"set", b"fk_ctr", 0, 0, b"10")) == b"STORED\r\n"
        assert c.cmd(b"incr fk_ctr 5\r\n") == b"15\r\n"
    for s in slaves:
        wait_value(s, b"fk_ctr", b"15")
        wait_value(s, b"fk0", None)

    # a slave answers reads and refuses every kind of write with the master's client address
    writes = [storage_cmd(b"set", b"sk", 0, 0, b"x"), storage_cmd(b"add", b"sk", 0, 0, b"x"),
              storage_cmd(b"append", b"fk1", 0, 0, b"x"), b"delete fk1\r\n",
              b"incr fk_ctr 1\r\n", b"touch fk1 100\r\n", b"flush_all\r\n",
              b"gat 100 fk1\r\n",
              # the meta protocol's writes too (errors are not hidden by q)
              b"ms sk 1 T0\r\nx\r\n", b"ms sk 1 q\r\nx\r\n", b"md fk1\r\n", b"md fk1 q\r\n",
              b"ma fk_ctr\r\n", b"ma fk_ctr q N0 J1\r\n"]
    for s in slaves:
        with mctest.Conn(s.port) as c:
            for w in writes:
                r = c.cmd(w)
                m = REFUSAL.match(r)
                assert m and int(m.group(1)) == master.port, (w, r)
            # noreply writes are refused silently; the connection goes on
            c.send(b"set sk 0 0 1 noreply\r\nx\r\n")
            assert c.cmd(b"get fk1\r\n", b"END\r\n") == b"VALUE fk1 0 6\r\nvalue1\r\nEND\r\n"
            assert c.cmd(b"rep_whoismaster\r\n") == b"127.0.0.1:%d\r\n" % master.port
            assert c.cmd(b"mg fk1 v\r\n", b"\r\n", ) == b"VA 6\r\n"
            assert c.read_until(b"\r\n") == b"value1\r\n"
        assert get(s, b"sk") is None
        st = repl_stats(s)
        assert st["repl_role"] == "slave"
        assert st["repl_master"] == "127.0.0.1:%d" % master.port
        assert st["repl_mode"] == "slave"
        assert int(st["repl_members"]) == 3
    st = repl_stats(master)
    assert st["repl_role"] == "master"
    assert st["repl_master"] == "127.0.0.1:%d" % master.port
    assert st["repl_ack_policy"] == "quorum"
    members = {k: v for k, v in st.items() if k.startswith("repl_member:")}
    assert len(members) == 2 and all(v.startswith("connected") for v in members.values()), st
    # slaves report their log end; once idle, neither lags behind the master
    def caught_up():
        m = {k: v for k, v in repl_stats(master).items() if k.startswith("repl_member:")}
        return all(re.search(r" lsn=\d+/\d+ lag=0 ", v) for v in m.values()) and m
    print(mctest.wait_for(caught_up, REPLICATE_WITHIN, 0.1, "slaves reporting no lag"))
    assert one_cmd(master, b"rep_whoismaster\r\n") == b"127.0.0.1:%d\r\n" % master.port

    # rep_set_priority
    assert one_cmd(slaves[0], b"rep_set_priority 7\r\n") == b"7\r\n"
    assert repl_stats(slaves[0])["repl_priority"] == "7"
    assert one_cmd(slaves[0], b"rep_set_priority x\r\n").startswith(b"CLIENT_ERROR")

    # expired items are misses on slaves too, although only the master's sweeper deletes
    with mctest.Conn(master.port) as c:
        assert c.cmd(storage_cmd(b"set", b"fk_exp", 0, 1, b"soon")) == b"STORED\r\n"
    for s in slaves:
        wait_value(s, b"fk_exp", None, timeout=REPLICATE_WITHIN)


class Writers:
    """Threads setting unique keys on whichever member is master, recording every write
    acknowledged with STORED. A refusal, an error or a broken connection is not an ack (the
    write may or may not have happened); the writer then looks for the master again."""

    def __init__(self, group, n=3, max_ops=200000):
        self.group = group
        self.acked = {}
        self.acked_after = {}       # writer -> acks since mark()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.max_ops = max_ops
        self.threads = [threading.Thread(target=self.run, args=(w,)) for w in range(n)]
        self.errors = []

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def mark(self):
        with self.lock:
            self.acked_after = {}

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in self.threads), "writers did not stop"
        assert not self.errors, self.errors

    def find_master(self):
        for s in self.group.members:
            if s.alive() and ismaster(s) == b"REP_TRUE":
                return s
        return None

    def run(self, w):
        seq = 0
        conn = None
        try:
            while not self.stop.is_set() and seq < self.max_ops:
                if conn is None:
                    m = self.find_master()
                    if m is None:
                        self.stop.wait(0.02)
                        continue
                    try:
                        conn = mctest.Conn(m.port, timeout=5.0)
                    except OSError:
                        continue
                seq += 1
                key = b"w%d_%d" % (w, seq)
                value = b"v%d_%d" % (w, seq)
                try:
                    r = conn.cmd(storage_cmd(b"set", key, 0, 0, value), timeout=5.0)
                except (OSError, AssertionError):
                    r = None
                if r == b"STORED\r\n":
                    with self.lock:
                        self.acked[key] = value
                        self.acked_after[w] = self.acked_after.get(w, 0) + 1
                    continue
                if r is not None and not r.startswith(b"SERVER_ERROR"):
                    self.errors.append((key, r))
                    return
                conn.close()
                conn = None
        finally:
            if conn is not None:
                conn.close()


FAILOVER_ROUNDS = 3
FAILOVER_WITHIN = 20.0      # seconds from kill -9 of the master to a new master taking writes


def test_failover_under_load_loses_no_acknowledged_write(servers):
    g = Group(servers, 3, ack="quorum").start()
    master = g.master()
    for s in g.members:
        if s is not master:
            wait_slave_of(s, master)
    writers = Writers(g).start()
    times = []
    deadline = time.monotonic() + 150
    try:
        for rnd in range(FAILOVER_ROUNDS):
            assert time.monotonic() < deadline, "failover rounds took too long"
            mctest.wait_for(lambda: len(writers.acked_after) == len(writers.threads) and
                            min(writers.acked_after.values()) >= 50, 20, 0.02,
                            "every writer acknowledged on %s" % master.name)
            before = dict(writers.acked)
            t0 = time.monotonic()
            master.kill()
            writers.mark()
            survivors = [s for s in g.members if s is not master]
            new = g.master(candidates=survivors, timeout=FAILOVER_WITHIN)
            elected = time.monotonic() - t0
            # writers move: every one of them gets acknowledgements from the new master
            mctest.wait_for(lambda: len(writers.acked_after) == len(writers.threads), 20, 0.02,
                            "writers acknowledged by the new master %s" % new.name)
            moved = time.monotonic() - t0
            times.append((elected, moved))
            print("round %d: %s killed, %s master after %.2f s, writers moved after %.2f s"
                  % (rnd, master.name, new.name, elected, moved))
            missing = wait_all_keys(new, before)
            assert missing == {}, "round %d: %d acknowledged writes missing on the new master" \
                % (rnd, len(missing))
            # the old master rejoins as a slave of the new one
            master.start_again()
            wait_slave_of(master, new)
            assert repl_stats(master)["repl_role"] == "slave"
            master = new
        writers.finish()
    finally:
        writers.stop.set()
    acked = dict(writers.acked)
    print("%d acknowledged writes; failover times (elected, writers moved): %s"
          % (len(acked), ["%.2f/%.2f" % t for t in times]))
    for s in g.members:
        missing = wait_all_keys(s, acked)
        assert missing == {}, "%s lacks %d acknowledged writes, e.g. %r" % (
            s.name, len(missing), sorted(missing)[:5])
    st = repl_stats(master)
    assert int(st["repl_elections_won"]) >= 1
    assert st["repl_last_event"] != "none"


def test_ack_all_refused_until_every_member_joined(servers):
    """A master with --repl-ack all whose peers never came: every write is an error, never a
    false STORED (founding members are in the group database from the start, and until
    mcstore has counted them all it refuses by itself)."""
    p1, p2, p3 = mctest.free_port(), mctest.free_port(), mctest.free_port()
    m = servers.mcstore("-R", "127.0.0.1:%d" % p1, "-O", "127.0.0.1:%d" % p2,
                        "-O", "127.0.0.1:%d" % p3, "--repl-mode", "master", "--repl-ack", "all")
    mctest.wait_for(lambda: repl_stats(m).get("repl_role") == "master", 20, 0.05, "master role")
    for i in range(5):
        r = set_reply(m, b"lonely%d" % i, b"x")
        assert r.startswith(b"SERVER_ERROR replication "), r
    with mctest.Conn(m.port) as c:
        assert c.cmd(b"ms lonely 1\r\nx\r\n").startswith(b"SERVER_ERROR replication ")
    assert repl_stats(m)["repl_members_joined"] == "3"


def test_ack_all_with_a_slave_down_is_an_error_not_stored(servers):
    g = Group(servers, 3, modes=["master", "slave", "slave"], ack="all", ack_timeout=400)
    g.start()
    master, s1, s2 = g.members
    assert g.master() is master
    wait_slave_of(s1, master)
    wait_slave_of(s2, master)
    # "all" counts the members Berkeley DB's membership database holds: right after a group
    # forms that can still be fewer than three
    mctest.wait_for(lambda: repl_stats(master).get("repl_nsites") == "3", 20, 0.05,
                    "all three members in the master's group membership")
    mctest.wait_for(lambda: repl_stats(master).get("repl_members_joined") == "3", 20, 0.05,
                    "mcstore to count all three members (it refuses 'all' writes before)")
    assert set_reply(master, b"a1", b"both") == b"STORED\r\n"
    assert set_reply(master, b"a_ctr", b"1") == b"STORED\r\n"
    wait_value(s2, b"a1", b"both")

    # a slave that hangs (stopped, connection open): the master waits out the ack timeout
    os.kill(s2.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        r = set_reply(master, b"a2", b"one-hung")
        elapsed = time.monotonic() - t0
    finally:
        os.kill(s2.pid, signal.SIGCONT)
    assert r.startswith(b"SERVER_ERROR ") and b"ack" in r, r
    # (os durability commits twice per write turn: up to two timeouts)
    assert 0.35 <= elapsed < 5, "answered after %.3f s; the ack timeout is 0.4 s" % elapsed
    print("hung slave: SERVER_ERROR after %.3f s: %r" % (elapsed, r))

    # a slave that is down: Berkeley DB knows at once that "all" cannot be met
    assert s2.stop() == 0
    t0 = time.monotonic()
    r = set_reply(master, b"a2", b"one-down")
    elapsed = time.monotonic() - t0
    assert r.startswith(b"SERVER_ERROR ") and b"ack" in r, r
    assert elapsed < 5, elapsed
    with mctest.Conn(master.port) as c:
        # every write kind: the ack policy decides, never a false success
        assert c.cmd(b"incr a_ctr 1\r\n").startswith(b"SERVER_ERROR")
        assert c.cmd(b"delete a1\r\n").startswith(b"SERVER_ERROR")
        # a pipelined batch that misses the acks gets no success either
        c.send(storage_cmd(b"set", b"a3", 0, 0, b"x") + storage_cmd(b"set", b"a4", 0, 0, b"y"))
        out = c.read_available(5.0)
        assert b"STORED" not in out, out
    st = repl_stats(master)
    assert int(st["repl_acks_failed"]) >= 1
    print("SERVER_ERROR after %.3f s; %s" % (elapsed, r))

    # the slave back: it catches up and acknowledgements flow again
    s2.start_again()
    wait_slave_of(s2, master)
    mctest.wait_for(lambda: set_reply(master, b"a5", b"all-back") == b"STORED\r\n", 20, 0.1,
                    "writes acknowledged by every member again")
    wait_value(s2, b"a5", b"all-back")


def small_logs(group):
    """Small log files in every member's data home (DB_CONFIG), so a test can archive past a
    stopped member's position without writing 16 MiB logs."""
    for s in group.members:
        with open(os.path.join(s.datadir, "DB_CONFIG"), "w") as f:
            f.write("set_lg_bsize 65536\nset_lg_max 262144\n")


def bulk_write(server, prefix, n, size):
    """n values of size bytes under prefix0..; returns {key: value}."""
    out = {}
    with mctest.Conn(server.port, timeout=20) as c:
        for i in range(n):
            k = b"%s%d" % (prefix, i)
            v = (b"%s-%d-" % (prefix, i)) * (size // (len(prefix) + 8) + 1)
            v = v[:size]
            assert c.cmd(storage_cmd(b"set", k, 0, 0, v), timeout=20) == b"STORED\r\n", k
            out[k] = v
    return out


def test_restart_catch_up(servers):
    g = Group(servers, 3, modes=["master", "slave", "slave"], ack="quorum")
    small_logs(g)
    g.start()
    master, s1, s2 = g.members
    assert g.master() is master
    wait_slave_of(s1, master)
    wait_slave_of(s2, master)
    data = bulk_write(master, b"c0_", 50, 100)
    assert wait_all_keys(s2, data) == {}

    # killed and restarted: it catches up on what it missed from the master's log
    s2.kill()
    data.update(bulk_write(master, b"c1_", 50, 100))
    s2.start_again()
    wait_slave_of(s2, master)
    assert wait_all_keys(s2, data) == {}
    assert repl_stats(s2)["repl_internal_inits"] == "0"

    # stopped cleanly while the master goes on: the same on the next start
    assert s2.stop() == 0
    data.update(bulk_write(master, b"c2_", 40, 4000))
    s2.start_again()
    wait_slave_of(s2, master)
    assert wait_all_keys(s2, data, timeout=30) == {}
    # and it goes on replicating after its databases were replaced under it
    assert set_reply(master, b"after_init", b"yes") == b"STORED\r\n"
    wait_value(s2, b"after_init", b"yes")


STRICT_OBSERVE = 4.0        # seconds a strict survivor is watched for (elections retry each 1 s)


@pytest.mark.parametrize("two_site", ["strict", "available"])
def test_two_member_group(servers, two_site):
    # a lone survivor has no member to acknowledge: "available" pairs that want writes to go
    # on after a failure must also accept --repl-ack none (doc/replication.md)
    ack = "one" if two_site == "strict" else "none"
    g = Group(servers, 2, ack=ack, extra=["--repl-two-site", two_site]).start()
    master = g.master()
    survivor = [s for s in g.members if s is not master][0]
    wait_slave_of(survivor, master)
    assert set_reply(master, b"pair", b"1") == b"STORED\r\n"
    wait_value(survivor, b"pair", b"1")
    assert repl_stats(survivor)["repl_two_site"] == two_site
    master.kill()
    t0 = time.monotonic()
    if two_site == "strict":
        # the survivor cannot tell a dead master from a cut link: it never elects itself
        while time.monotonic() - t0 < STRICT_OBSERVE:
            assert ismaster(survivor) != b"REP_TRUE"
            time.sleep(0.1)
        r = set_reply(survivor, b"pair", b"2")
        assert r.startswith(b"SERVER_ERROR not master"), r
        assert get(survivor, b"pair") == b"1"   # reads still served
        # the old master back: the pair elects again and takes writes
        master.start_again()
        m = g.master()
        mctest.wait_for(lambda: set_reply(m, b"pair", b"3") == b"STORED\r\n", 20, 0.1,
                        "writes after the pair is whole again")
    else:
        # the survivor takes over (at the risk of two masters if only the link was cut)
        assert g.master(candidates=[survivor], timeout=FAILOVER_WITHIN) is survivor
        print("two-site available: survivor master after %.2f s" % (time.monotonic() - t0))
        assert get(survivor, b"pair") == b"1"
        assert set_reply(survivor, b"pair", b"2") == b"STORED\r\n"
        master.start_again()
        wait_slave_of(master, survivor)
        wait_value(master, b"pair", b"2")


ARCHIVE_HOLD = 30.0         # seconds Berkeley DB 5.3 keeps logs after a member disconnects


def log_files(server):
    return sorted(f for f in os.listdir(server.datadir) if f.startswith("log."))


def test_archived_logs_catch_up_by_internal_init(servers):
    """A slave stopped while the master fills several log files and archives them comes back
    to a master that no longer has the log it needs: Berkeley DB's internal init copies it
    the databases, then the log (doc/replication.md)."""
    # 256 KiB log files: old logs go as whole files, so a few MB make several to drop
    g = Group(servers, 3, modes=["master", "slave", "slave"], ack="quorum",
              extra=["--log-file-size", "256k"])
    g.start()
    master, s1, s2 = g.members
    assert g.master() is master
    wait_slave_of(s1, master)
    wait_slave_of(s2, master)
    data = bulk_write(master, b"i0_", 50, 100)
    assert wait_all_keys(s2, data) == {}
    first = log_files(master)[0]

    assert s2.stop() == 0
    stopped = time.monotonic()
    # ~1.2 MB of values: several 256 KiB log files, then checkpoints past them all
    data.update(bulk_write(master, b"i1_", 300, 4000))

    # Berkeley DB 5.3 refuses to archive for 30 s after a member's connection closes (or an
    # internal init), to give it time to come back; then the files go
    def archived():
        with mctest.Conn(master.port) as c:
            assert c.cmd(b"db_checkpoint\r\n") == b"OK\r\n"
        return first not in log_files(master)
    mctest.wait_for(archived, ARCHIVE_HOLD + 30, 1.0,
                    "the master archives %s (has %s)" % (first, log_files(master)))
    print("master archived its old logs %.1f s after the slave stopped; left: %s"
          % (time.monotonic() - stopped, log_files(master)))

    s2.start_again()
    wait_slave_of(s2, master)
    assert wait_all_keys(s2, data, timeout=60) == {}
    # the restarted process recorded an internal init (Berkeley DB's DB_EVENT_REP_INIT_DONE);
    # a restart the master's log covers records none (test_restart_catch_up)
    st = repl_stats(s2)
    assert int(st["repl_internal_inits"]) >= 1, st
    print("slave after restart: repl_internal_inits=%s" % st["repl_internal_inits"])
    # and it goes on replicating after its databases were replaced under it
    assert set_reply(master, b"after_init", b"yes") == b"STORED\r\n"
    wait_value(s2, b"after_init", b"yes")


def test_new_member_joins_a_running_group(servers):
    """--repl-join: a member the founders never listed asks a running group to let it in,
    catches up from the master, refuses writes with the master's address, and counts in the
    group afterwards (its acknowledgements, its vote)."""
    g = Group(servers, 3, ack="quorum").start()
    master = g.master()
    for s in g.members:
        if s is not master:
            wait_slave_of(s, master)
    data = bulk_write(master, b"j0_", 200, 200)

    rport = mctest.free_port()
    # it knows one founding member only, a slave: the group tells it the rest
    helper = [s for s in g.members if s is not master][0]
    helper_repl = g.repl_ports[g.members.index(helper)]
    new = servers.mcstore("-t", "2", "-R", "127.0.0.1:%d" % rport, "-O",
                          "127.0.0.1:%d" % helper_repl, "--repl-ack", "quorum", "--repl-join")
    new.name = "joiner"
    wait_slave_of(new, master)
    assert wait_all_keys(new, data) == {}
    r = set_reply(new, b"j_refused", b"x")
    assert r == b"SERVER_ERROR not master; master is 127.0.0.1:%d\r\n" % master.port, r
    mctest.wait_for(lambda: repl_stats(master).get("repl_nsites") == "4", 20, 0.05,
                    "four members in the master's group membership")
    mctest.wait_for(lambda: repl_stats(master).get("repl_member:127.0.0.1:%d" % rport, "")
                    .startswith("connected slave"), 20, 0.05, "the joiner listed as a slave")
    # writes after the join reach it too
    assert set_reply(master, b"j_after", b"joined") == b"STORED\r\n"
    wait_value(new, b"j_after", b"joined")

    # it is a full member: with the master gone, the four-member group's survivors elect
    master.kill()
    survivors = [s for s in g.members if s is not master] + [new]
    m2 = g.master(candidates=survivors, timeout=FAILOVER_WITHIN)
    mctest.wait_for(lambda: set_reply(m2, b"j_failover", b"ok") == b"STORED\r\n", 20, 0.1,
                    "writes on the new master %s" % m2.name)
    data.update({b"j_after": b"joined", b"j_failover": b"ok"})
    for s in survivors:
        assert wait_all_keys(s, data) == {}, s.name


def gets_cas(conn, keys):
    """{key: cas} for the keys, by gets."""
    got = mctest.get_values(conn, b"gets " + b" ".join(keys) + b"\r\n")
    return {k: v[2] for k, v in got.items()}


def test_cas_uniques_never_repeat_across_a_failover(servers):
    """A client holding a cas unique from the old master must not see it match a different
    value written on the new master: each new master starts its uniques past every unique a
    master of an earlier generation can have handed out (storage/repl_store.c, cas floor)."""
    g = Group(servers, 3, ack="quorum").start()
    master = g.master()
    for s in g.members:
        if s is not master:
            wait_slave_of(s, master)
    held = {}                   # key -> cas a client read from an earlier master
    seen = set()
    for rnd in range(2):
        keys = [b"u%d_%d" % (rnd, i) for i in range(200)]
        with mctest.Conn(master.port) as c:
            for k in keys:
                assert c.cmd(storage_cmd(b"set", k, 0, 0, b"old")) == b"STORED\r\n"
            # cas uniques handed out by this master, without the writes that follow
            # (they stay in its sequence cache, never replicated)
            cas = gets_cas(c, keys)
        assert len(cas) == len(keys)
        assert not seen & set(cas.values()), "a unique repeated within the group"
        seen |= set(cas.values())
        held.update(cas)
        slave = [s for s in g.members if s is not master][0]
        assert wait_all_keys(slave, {k: b"old" for k in keys}) == {}

        master.kill()
        survivors = [s for s in g.members if s is not master]
        new = g.master(candidates=survivors, timeout=FAILOVER_WITHIN)
        # quorum needs the other survivor's acks: until it follows the new master a write may
        # wait out the ack timeout (or longer while its connection is set up), so each probe
        # is its own connection, and a probe that times out is just not yet a success
        mctest.wait_for(lambda: set_reply(new, b"probe", b"x") == b"STORED\r\n",
                        FAILOVER_WITHIN, 0.1, "writes on %s" % new.name)
        with mctest.Conn(new.port) as c:
            # every key the clients hold a unique for is rewritten on the new master
            for k in held:
                assert c.cmd(storage_cmd(b"set", k, 0, 0, b"new%d" % rnd)) == b"STORED\r\n"
            fresh = gets_cas(c, list(held))
            clash = {k for k in held if fresh[k] == held[k]}
            assert not clash, "new master reused old uniques for %d keys" % len(clash)
            assert not seen & set(fresh.values()), "the new master repeated a unique"
            seen |= set(fresh.values())
            # the old uniques no longer match anything: cas with them is refused
            for k in list(held)[:50]:
                r = c.cmd(storage_cmd(b"cas", k, 0, 0, b"stale-writer", extra=b"%d" % held[k]))
                assert r == b"EXISTS\r\n", (k, r)
            held = fresh
        master.start_again()
        wait_slave_of(master, new)
        master = new
