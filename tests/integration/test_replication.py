"""Replication on Berkeley DB's Replication Manager (doc/replication.md): groups of mcstore
members on 127.0.0.1, each with its own data dir, client port and replication port.

What is shown: writes on the master reach every slave within a bound; a slave refuses writes
with the master's client address; rep_* commands and `stats repl`; elections and failover under
load with no acknowledged write lost; ack policies that cannot be met give SERVER_ERROR, never
STORED; restart catch-up and internal init; the two two-site policies.

Every wait polls with a deadline; servers are stopped by PID (conftest's Factory).
"""

import re
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
              b"gat 100 fk1\r\n"]
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

