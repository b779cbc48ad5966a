"""mcstore-rebalance: moving the keys whose owner changes when a node joins or leaves a ring
(doc/operations.md, "Adding or removing a node: mcstore-rebalance").

Shown here: mcstore nodes behind nutcracker keep every key with its newest value through a
rebalance while a client keeps writing (through the old ring, then the new one); pylibmc's
ketama ring as the old/new ring; a run killed (SIGTERM, then kill -9) resumes from its
checkpoint and ends in the same state as an uninterrupted run; --delete-moved; the catch-up
pass's rules (a client's write on the new owner is never overwritten, a change on the old
owner is carried, a delete is carried, an interrupted write is recognized as the tool's own);
a node that is a replication group addressed through a slave.

mcstore-rebalance and mcstore-ring are found beside the server binary ($MCSTORE_BIN's
directory). Every wait polls with a deadline; servers and nutcracker are stopped by PID.
"""

import base64
import os
import pty
import re
import signal
import subprocess
import threading
import time

import pylibmc
import pytest
from pymemcache.client.base import Client as PymemcacheClient

import mctest
import test_replication

TOOL = os.path.join(os.path.dirname(os.path.abspath(mctest.MCSTORE_BIN)), "mcstore-rebalance")
RING = os.path.join(os.path.dirname(os.path.abspath(mctest.MCSTORE_BIN)), "mcstore-ring")
NUTCRACKER = os.environ.get("NUTCRACKER_BIN", "/usr/sbin/nutcracker")
RUN_TIMEOUT = 120           # seconds any one run of the tool may take
WRITER_RETRY = 30           # seconds the writer keeps retrying one write
MAX_CALLS = 100000          # bound on iterate calls of one dump


# ---- helpers ----------------------------------------------------------------------------------

def parse_summary(text):
    out = {}
    for line in text.splitlines():
        name, sep, value = line.partition(": ")
        if sep:
            out[name] = value
    return out


def tool(*args, state, rc=0, timeout=RUN_TIMEOUT):
    """Runs mcstore-rebalance to its end; returns (summary dict, stderr)."""
    assert os.path.exists(TOOL), "mcstore-rebalance not built: %s" % TOOL
    p = subprocess.run([TOOL, "--state", str(state)] + [str(a) for a in args],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout)
    assert p.returncode == rc, "mcstore-rebalance %s: rc=%d (want %d)\nstdout:\n%s\nstderr:\n%s" % (
        " ".join(map(str, args)), p.returncode, rc, p.stdout, p.stderr[-4000:])
    return parse_summary(p.stdout), p.stderr


def count(summary, name):
    return int(summary[name])


def nodes_arg(servers):
    return ",".join("127.0.0.1:%d" % s.port for s in servers)


def dump(port):
    """Every live item of a node: {key: (flags, exptime, value)} through iterate."""
    out = {}
    cursor = b"0"
    with mctest.Conn(port, timeout=30) as c:
        for _ in range(MAX_CALLS):
            c.send(b"iterate " + cursor + b" 1000 v\r\n")
            while True:
                head = c.read_until(b"\r\n")
                parts = head[:-2].split(b" ")
                if parts[0] == b"END":
                    cursor = parts[1]
                    break
                assert parts[0] == b"ITEM", head
                key = base64.b64decode(parts[1]) if len(parts) == 7 else parts[1]
                data = c.read_exact(int(parts[4]) + 2)
                out[key] = (int(parts[2]), int(parts[3]), data[:-2])
            if cursor == b"0":
                return out
    raise AssertionError("dump of port %d did not end" % port)


def state_counter(path, name):
    """A pass counter from the state file (0 while there is none yet)."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return 0
    m = re.search(r"^count %s (\d+)$" % name, text, re.M)
    return int(m.group(1)) if m else 0


def fnv1a64_digest(flags, value):
    """The ledger's digest: FNV-1a 64 of the flags (4 bytes little endian) and the value."""
    h = 0xcbf29ce484222325
    for b in flags.to_bytes(4, "little") + value:
        h ^= b
        h = (h * 0x100000001b3) & 0xffffffffffffffff
    return h


class Nutcracker:
    """nutcracker (twemproxy) on a free 127.0.0.1 port with a YAML of ours, stopped by PID."""

    def __init__(self, tmpdir, name="nutcracker"):
        self.tmpdir = str(tmpdir)
        self.name = name
        self.proc = None
        self.port = None
        self.starts = 0

    def yaml(self, servers, port, hash_="fnv1a_64"):
        lines = ["pool:", "  listen: 127.0.0.1:%d" % port, "  hash: %s" % hash_,
                 "  distribution: ketama", "  timeout: 3000", "  auto_eject_hosts: false",
                 "  preconnect: false", "  servers:"]
        lines += ["   - 127.0.0.1:%d:1 mc%d" % (s.port, i + 1) for i, s in enumerate(servers)]
        return "\n".join(lines) + "\n"

    def write_yaml(self, servers, port, tag):
        path = os.path.join(self.tmpdir, "%s-%s.yml" % (self.name, tag))
        with open(path, "w") as f:
            f.write(self.yaml(servers, port))
        return path

    def start(self, conf, port):
        """Starts on port with conf; waits until it accepts connections."""
        assert os.path.exists(NUTCRACKER), "nutcracker not installed: %s" % NUTCRACKER
        self.starts += 1
        log = os.path.join(self.tmpdir, "%s.%d.log" % (self.name, self.starts))
        self.proc = subprocess.Popen(
            [NUTCRACKER, "-c", conf, "-s", str(mctest.free_port()), "-a", "127.0.0.1",
             "-o", log, "-p", os.path.join(self.tmpdir, "%s.pid" % self.name)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.port = port

        def up():
            assert self.proc.poll() is None, "nutcracker exited: %s" % open(log).read()
            return mctest.port_accepts(port)
        mctest.wait_for(up, mctest.START_DEADLINE, what="nutcracker on port %d" % port)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=mctest.STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=mctest.STOP_DEADLINE)


@pytest.fixture
def nutcrackers(tmp_path):
    started = []

    def make(name="nutcracker"):
        n = Nutcracker(tmp_path, name)
        started.append(n)
        return n
    yield make
    for n in started:
        n.stop()


def cluster(servers, n):
    return [servers.mcstore("-t", "2") for _ in range(n)]


def pymc(port):
    return PymemcacheClient(("127.0.0.1", port), connect_timeout=2, timeout=5,
                            default_noreply=False)


def load(port, items, chunk=500):
    """{key: value} through a pymemcache client (through nutcracker)."""
    c = pymc(port)
    keys = sorted(items)
    for i in range(0, len(keys), chunk):
        failed = c.set_many({k: items[k] for k in keys[i:i + chunk]})
        assert not failed, failed[:5]
    c.close()


def read_all(port, keys, chunk=200):
    c = pymc(port)
    got = {}
    keys = sorted(keys)
    for i in range(0, len(keys), chunk):
        got.update(c.get_many(keys[i:i + chunk]))
    c.close()
    return got


class Writer(threading.Thread):
    """Keeps writing through one address (nutcracker) and records the last acknowledged
    value of every key. A write that fails is retried on the same key with a new value until
    one is acknowledged, so the recorded value is always the key's newest."""

    def __init__(self, port, keys):
        super().__init__(daemon=True)
        self.port = port
        self.keys = keys
        self.expected = {}
        self.stop_ev = threading.Event()
        self.error = None
        self.writes = 0
        self.retries = 0

    def run(self):
        client = pymc(self.port)
        seq = 0
        try:
            while not self.stop_ev.is_set() and seq < 10 ** 6:
                if seq % 10 == 9:
                    key = b"new:%d" % seq           # keys created while the tool runs
                else:
                    # a hot set: keys are written again and again, before and after the switch
                    key = self.keys[(seq * 7919) % len(self.keys) % 3000]
                deadline = time.monotonic() + WRITER_RETRY
                attempt = 0
                while True:
                    value = b"w%d-%d" % (seq, attempt)
                    try:
                        if client.set(key, value):
                            self.expected[key] = value
                            break
                    except Exception:       # nutcracker restarting: retry with a new value
                        client.close()
                    attempt += 1
                    self.retries += 1
                    assert time.monotonic() < deadline, "write of %r never acknowledged" % key
                    time.sleep(0.01)
                seq += 1
                self.writes = seq
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e
        finally:
            client.close()

    def finish(self):
        self.stop_ev.set()
        self.join(60)
        assert not self.is_alive(), "the writer did not stop"
        assert self.error is None, self.error


# ---- 1. nutcracker in front: add a node while a client keeps writing -------------------------

def test_nutcracker_add_node_while_writing(servers, nutcrackers, tmp_path):
    nodes = cluster(servers, 4)
    nc = nutcrackers()
    port = mctest.free_port()
    old_yml = nc.write_yaml(nodes[:3], port, "old")
    new_yml = nc.write_yaml(nodes, port, "new")
    nc.start(old_yml, port)

    initial = {b"key:%d" % i: b"v0-%d" % i for i in range(20000)}
    load(port, initial)
    expected = dict(initial)
    writer = Writer(port, sorted(initial))
    writer.start()
    state = tmp_path / "rb.state"
    try:
        mctest.wait_for(lambda: writer.writes > 200 or writer.error, 30, what="writes")
        # pass 1 while clients still use the old ring (slowed so the writer overlaps it)
        s1, _ = tool("--from", "twemproxy:" + old_yml, "--to", "twemproxy:" + new_yml,
                     "--rate", "20000", state=state)
        assert s1["pass"] == "1 complete"
        assert count(s1, "scanned") >= len(initial) and count(s1, "errors") == 0
        moved_fraction = count(s1, "moving") / count(s1, "scanned")
        assert 0.18 <= moved_fraction <= 0.32, s1
        assert count(s1, "moved") + count(s1, "already there") == count(s1, "moving")
        # switch the clients: nutcracker restarts on the same port with the new ring
        nc.stop()
        nc.start(new_yml, port)
        before = writer.writes
        mctest.wait_for(lambda: writer.writes > before + 200 or writer.error, 30,
                        what="writes through the new ring")
        # the catch-up pass, while the writer now writes through the new ring
        s2, _ = tool("--from", "twemproxy:" + old_yml, "--to", "twemproxy:" + new_yml,
                     state=state)
        assert s2["pass"] == "2 complete" and count(s2, "errors") == 0, s2
        # writes through the old ring after the copy were carried; keys the writer wrote
        # again through the new ring kept that newer value
        assert count(s2, "updated") > 0 and count(s2, "skipped because newer") > 0, s2
    finally:
        writer.finish()
    expected.update(writer.expected)
    assert writer.writes > 400

    got = read_all(port, expected)
    wrong = {k: (got.get(k), v) for k, v in expected.items() if got.get(k) != v}
    assert not wrong, "%d keys without their newest value, e.g. %r" % (
        len(wrong), sorted(wrong.items())[:5])

    # clean up: the moved keys leave their old owners; then every key lives on exactly one
    # node and nutcracker still reads them all, so the tool's ring is nutcracker's, key by key
    s3, _ = tool("--from", "twemproxy:" + old_yml, "--to", "twemproxy:" + new_yml,
                 "--delete-moved", state=state)
    assert count(s3, "errors") == 0 and count(s3, "deleted") == count(s3, "moving"), s3
    dumps = [dump(n.port) for n in nodes]
    assert sum(len(d) for d in dumps) == len(expected)
    assert set().union(*[set(d) for d in dumps]) == set(expected)
    # each node holds exactly the keys mcstore-ring says the new ring gives it
    assert os.path.exists(RING), "mcstore-ring not built: %s" % RING
    keys = sorted(k.decode() for k in expected)
    p = subprocess.run([RING, "--twemproxy", new_yml, "owner", "-"], input="\n".join(keys) + "\n",
                       capture_output=True, text=True, timeout=RUN_TIMEOUT, check=True)
    owner = dict(line.split("\t") for line in p.stdout.splitlines())
    for n, d in zip(nodes, dumps):
        assert sorted(k.decode() for k in d) == [k for k in keys
                                                 if owner[k] == "127.0.0.1:%d" % n.port]
    got = read_all(port, expected)
    assert all(got.get(k) == v for k, v in expected.items())


# ---- 2. interrupted runs resume and end where an uninterrupted run ends -----------------------

def load_twin(port, n, far):
    c = pymc(port)
    for i in range(0, n, 500):
        batch = {b"k%05d" % j: b"value-%d" % j * (1 + j % 5) for j in range(i, min(n, i + 500))}
        assert not c.set_many({k: v for k, v in batch.items() if int(k[1:]) % 3 != 0})
        assert not c.set_many({k: v for k, v in batch.items() if int(k[1:]) % 3 == 0},
                              expire=far, flags=7)
    c.close()


def test_interrupted_runs_resume_to_the_same_final_state(servers, nutcrackers, tmp_path):
    n = 8000
    far = int(time.time()) + 30 * 86400 + 3600      # an absolute exptime, the same for both
    twins = []
    for name in ("a", "b"):
        nodes = cluster(servers, 4)
        nc = nutcrackers("nutcracker-" + name)
        port = mctest.free_port()
        old_yml = nc.write_yaml(nodes[:3], port, "old")
        new_yml = nc.write_yaml(nodes, port, "new")
        nc.start(old_yml, port)
        load_twin(port, n, far)
        twins.append((nodes, old_yml, new_yml))
    # the same node names make the same rings: each key moves the same way in both clusters
    (a_nodes, a_old, a_new), (b_nodes, b_old, b_new) = twins

    b_state = tmp_path / "b.state"
    sb, _ = tool("--from", "twemproxy:" + b_old, "--to", "twemproxy:" + b_new, state=b_state)
    assert sb["pass"] == "1 complete" and count(sb, "scanned") == n

    a_state = tmp_path / "a.state"
    args = [TOOL, "--state", str(a_state), "--from", "twemproxy:" + a_old, "--to",
            "twemproxy:" + a_new, "--rate", "3000"]
    # SIGTERM: the batch finishes, the checkpoint is written, exit 4
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        mctest.wait_for(lambda: state_counter(a_state, "scanned") >= n // 5, 60,
                        what="a fifth of the keys scanned")
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=RUN_TIMEOUT)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 4, (p.returncode, out, err)
    s = parse_summary(out)
    assert s["pass"] == "1 interrupted"
    first = count(s, "scanned")
    assert 0 < first < n and state_counter(a_state, "scanned") == first

    # kill -9 halfway through the resumed run
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        mctest.wait_for(lambda: state_counter(a_state, "scanned") >= n // 2, 60,
                        what="half of the keys scanned")
        p.kill()
        p.wait(timeout=mctest.STOP_DEADLINE)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    at_kill = state_counter(a_state, "scanned")
    assert n // 2 <= at_kill < n

    s, _ = tool("--from", "twemproxy:" + a_old, "--to", "twemproxy:" + a_new, state=a_state)
    assert s["pass"] == "1 complete (resumed)" and count(s, "errors") == 0, s
    # it went on from the checkpoint (at most one batch of 100 redone), not from zero
    assert count(s, "scanned") <= n - at_kill + 100
    assert count(s, "pass scanned") >= n
    assert count(s, "pass moving") == count(sb, "moving")

    for na, nb in zip(a_nodes, b_nodes):
        assert dump(na.port) == dump(nb.port)

    # the next run is a catch-up pass with nothing to do, in both
    for old, new, state in ((a_old, a_new, a_state), (b_old, b_new, b_state)):
        s, _ = tool("--from", "twemproxy:" + old, "--to", "twemproxy:" + new, state=state)
        assert s["pass"] == "2 complete"
        assert count(s, "moved") == 0 and count(s, "unchanged") == count(sb, "moving"), s


# ---- 3. --delete-moved with pylibmc's ketama ring ---------------------------------------------

def pylibmc_client(nodes):
    return pylibmc.Client(["127.0.0.1:%d" % s.port for s in nodes], binary=False,
                          behaviors={"ketama": True})


def test_delete_moved_with_pylibmc_ketama(servers, tmp_path):
    nodes = cluster(servers, 4)
    data = {"p:%d" % i: ("v%d" % i).encode() for i in range(3000)}
    pylibmc_client(nodes[:3]).set_multi(data)
    before = [dump(n.port) for n in nodes]
    assert not before[3]

    # add a node, keeping the moved keys on their old owners
    s, _ = tool("--from", nodes_arg(nodes[:3]), "--to", nodes_arg(nodes), state=tmp_path / "a")
    assert count(s, "deleted") == 0
    new_client = pylibmc_client(nodes)
    assert new_client.get_multi(list(data)) == data
    mid = [dump(n.port) for n in nodes]
    for i in range(3):
        assert mid[i] == before[i]
    moved = set(mid[3])
    assert len(moved) == count(s, "moved") > 0

    # clean up: exactly the moved keys leave the old owners, nothing else changes
    s, _ = tool("--from", nodes_arg(nodes[:3]), "--to", nodes_arg(nodes), "--delete-moved",
                state=tmp_path / "a")
    assert count(s, "deleted") == len(moved) and count(s, "errors") == 0
    after = [dump(n.port) for n in nodes]
    for i in range(3):
        assert after[i] == {k: v for k, v in before[i].items() if k not in moved}
    assert after[3] == mid[3]
    assert new_client.get_multi(list(data)) == data

    # remove a node: its keys go to the others (ketama moves nothing else) and it ends empty
    rest = [nodes[0], nodes[2], nodes[3]]
    s, _ = tool("--from", nodes_arg(nodes), "--to", nodes_arg(rest), "--delete-moved",
                state=tmp_path / "b")
    assert count(s, "moving") == len(after[1]) == count(s, "deleted")
    assert dump(nodes[1].port) == {}
    assert pylibmc_client(rest).get_multi(list(data)) == data


def test_one_server_named_two_ways_keeps_its_keys(servers, tmp_path):
    """A node named localhost:P in the old ring and 127.0.0.1:P in the new one is one server:
    the keys whose owner is "renamed" stay, and --delete-moved must not delete them."""
    nodes = cluster(servers, 2)
    old = "localhost:%d,127.0.0.1:%d" % (nodes[0].port, nodes[1].port)
    data = {"n:%d" % i: ("v%d" % i).encode() for i in range(600)}
    pylibmc.Client(old.split(","), binary=False, behaviors={"ketama": True}).set_multi(data)
    s, err = tool("--from", old, "--to", nodes_arg(nodes), "--delete-moved",
                  state=tmp_path / "s")
    assert count(s, "errors") == 0, err
    assert pylibmc_client(nodes).get_multi(list(data)) == data


# ---- 4. the catch-up pass's rules ------------------------------------------------------------

def maps_to(target, client, key):
    """Whether client (a ring) stores key on target (probed: written, looked for, deleted)."""
    with mctest.Conn(target.port) as c:
        client.set(key, b"probe")
        hit = mctest.get_values(c, b"get " + key.encode() + b"\r\n")
        client.delete(key)
        return bool(hit)


def owned_by(target, client, candidates, old=None):
    """The first candidate key that client stores on target (and old=(node, client) on
    node)."""
    for k in candidates:
        if maps_to(target, client, k) and (old is None or maps_to(old[0], old[1], k)):
            return k
    raise AssertionError("no candidate maps to port %d" % target.port)


def test_catch_up_pass_rules(servers, tmp_path):
    nodes = cluster(servers, 3)
    old_c, new_c = pylibmc_client(nodes[:2]), pylibmc_client(nodes)
    data = {"c:%d" % i: ("v%d" % i).encode() for i in range(400)}
    old_c.set_multi(data)
    # F: a client already wrote the new owner (double-read window) before the first pass
    f = owned_by(nodes[2], new_c, ("f%d" % i for i in range(1000)))
    old_c.set(f, b"old-f")
    new_c.set(f, b"client-f")
    # S: owned by node 1, moving to node 2, with a stale copy on node 0 (walked first) that
    # clients never read: the owner's value must be the one that moves
    s_key = owned_by(nodes[2], new_c, ("s%d" % i for i in range(1000)), old=(nodes[1], old_c))
    old_c.set(s_key, b"current-s")
    with mctest.Conn(nodes[0].port) as direct:
        assert direct.cmd(mctest.storage_cmd(b"set", s_key.encode(), 0, 0, b"stale-s")) == \
            b"STORED\r\n"
    state = tmp_path / "s"
    frm, to = nodes_arg(nodes[:2]), nodes_arg(nodes)

    s, _ = tool("--from", frm, "--to", to, state=state)
    assert count(s, "skipped because newer") == 1 and count(s, "errors") == 0
    assert count(s, "stray") == 1
    assert new_c.get(s_key) == b"current-s"
    moved = sorted(k.decode() for k in dump(nodes[2].port) if k.decode() not in (f, s_key))
    a, b, c, d = moved[:4]
    old_c.set(a, b"source-changed-a")           # carried: the target still holds our copy
    new_c.set(b, b"client-b")                   # a client's write on the new owner: kept
    old_c.set(c, b"source-changed-c")           # both changed: the client's write wins
    new_c.set(c, b"client-c")
    old_c.delete(d)                             # deleted on the old owner: carried
    e = owned_by(nodes[2], new_c, ("e%d" % i for i in range(1000)))
    old_c.set(e, b"late-e")                     # created on the old owner after the pass

    s, err = tool("--from", frm, "--to", to, "-v", state=state)
    assert s["pass"] == "2 complete" and count(s, "errors") == 0, err
    assert count(s, "updated") == 1 and count(s, "moved") == 1, s
    assert count(s, "carried deletes") == 1
    assert count(s, "skipped because newer") == 2   # c, and f again (the ledger remembers it)
    got = new_c.get_multi([a, b, c, d, e, f])
    assert got == {a: b"source-changed-a", b: b"client-b", c: b"client-c", e: b"late-e",
                   f: b"client-f"}

    # a run that died between a write and its confirmation: its intent in the ledger lets the
    # next run recognize the value on the target as its own and replace it
    g = moved[4]
    new_c.set(g, b"interrupted-write")          # what the dead run had written
    with open(str(state) + ".ledger", "a") as led:
        led.write("I %s 1 %016x\n" % (base64.b64encode(g.encode()).decode(),
                                      fnv1a64_digest(0, b"interrupted-write")))
    old_c.set(g, b"newest-g")
    s, _ = tool("--from", frm, "--to", to, state=state)
    assert count(s, "updated") == 1 and count(s, "errors") == 0, s
    assert new_c.get(g) == b"newest-g"

    # the same, followed by a second run that announced another version and died (or gave up
    # on a target that was down) before writing it: the first run's value is still ours
    h = moved[5]
    new_c.set(h, b"first-write")                # what the first dead run had written
    with open(str(state) + ".ledger", "a") as led:
        for cas, value in ((1, b"first-write"), (2, b"announced-only")):
            led.write("I %s %d %016x\n" % (base64.b64encode(h.encode()).decode(), cas,
                                            fnv1a64_digest(0, value)))
    old_c.set(h, b"newest-h")
    s, _ = tool("--from", frm, "--to", to, state=state)
    assert count(s, "updated") == 1 and count(s, "errors") == 0, s
    assert count(s, "skipped because newer") == 2, s    # c and f, as before
    assert new_c.get(h) == b"newest-h"

    # a run died between writing a changed value and confirming it, then the old owner
    # deleted the key: the value on the new owner is ours, so the delete is carried
    j = moved[6]
    new_c.set(j, b"crashed-j")                  # what the dead run had written
    with open(str(state) + ".ledger", "a") as led:
        led.write("I %s 2 %016x\n" % (base64.b64encode(j.encode()).decode(),
                                      fnv1a64_digest(0, b"crashed-j")))
    old_c.delete(j)
    s, _ = tool("--from", frm, "--to", to, state=state)
    assert count(s, "carried deletes") == 1 and count(s, "errors") == 0, s
    assert new_c.get(j) is None


# ---- 5. a replication group addressed through a slave ----------------------------------------

def test_group_addressed_through_a_slave(servers, tmp_path):
    a, b = cluster(servers, 2)
    g = test_replication.Group(servers, 2, modes=["master", "slave"], ack="one").start()
    master, slave = g.members
    test_replication.wait_slave_of(slave, master)
    data = {"g:%d" % i: ("v%d" % i).encode() for i in range(1500)}
    pylibmc_client([a, b]).set_multi(data)

    # the new node is named by its slave: the writes follow "master is" to the master
    to = "%s,127.0.0.1:%d" % (nodes_arg([a, b]), slave.port)
    s, err = tool("--from", nodes_arg([a, b]), "--to", to, "-v", state=tmp_path / "add")
    assert count(s, "errors") == 0 and count(s, "moved") > 0, err
    assert "writes follow the master" in err and "master is 127.0.0.1:%d" % master.port in err
    on_master = dump(master.port)
    assert len(on_master) == count(s, "moved")
    mctest.wait_for(lambda: dump(slave.port) == on_master, test_replication.REPLICATE_WITHIN,
                    what="the slave to hold the moved keys")
    ring = pylibmc.Client(["127.0.0.1:%d" % a.port, "127.0.0.1:%d" % b.port,
                           "127.0.0.1:%d" % slave.port], behaviors={"ketama": True})
    assert ring.get_multi(list(data)) == data       # reads from the slave see them all
    s, err = tool("--from", nodes_arg([a, b]), "--to", to, "--delete-moved",
                  state=tmp_path / "add")
    assert count(s, "deleted") == len(on_master), err

    # the clients now name the group by its master: another ring (the points hash the names),
    # but the same node. Keys staying in the group are not "moved" onto themselves (and so
    # not deleted); the group is a source named by its slave: iterate reads the slave and
    # the deletes of keys leaving it follow to the master
    relabeled = "%s,127.0.0.1:%d" % (nodes_arg([a, b]), master.port)
    s, err = tool("--from", to, "--to", relabeled, "--delete-moved", state=tmp_path / "relabel")
    assert count(s, "errors") == 0 and count(s, "deleted") == count(s, "moving"), err
    ring = pylibmc.Client(["127.0.0.1:%d" % a.port, "127.0.0.1:%d" % b.port,
                           "127.0.0.1:%d" % master.port], behaviors={"ketama": True})
    assert ring.get_multi(list(data)) == data
    dumps = [dump(a.port), dump(b.port), dump(master.port)]
    assert sum(len(d) for d in dumps) == len(data)      # every key on exactly one node
    assert set(dumps[2]) & set(on_master)               # keys that stayed in the group

    # and back to two plain nodes: the group ends empty
    s, err = tool("--from", relabeled, "--to", nodes_arg([a, b]), "--delete-moved",
                  state=tmp_path / "remove")
    assert count(s, "errors") == 0 and count(s, "deleted") == len(dumps[2]), err
    assert dump(master.port) == {}
    mctest.wait_for(lambda: dump(slave.port) == {}, test_replication.REPLICATE_WITHIN,
                    what="the slave to be empty too")
    assert pylibmc_client([a, b]).get_multi(list(data)) == data


# ---- command line ----------------------------------------------------------------------------

def test_state_of_other_rings_is_refused(servers, tmp_path):
    a, b = cluster(servers, 2)
    state = tmp_path / "s"
    tool("--from", nodes_arg([a]), "--to", nodes_arg([a, b]), state=state)
    _, err = tool("--from", nodes_arg([b]), "--to", nodes_arg([a, b]), state=state, rc=2)
    assert "belongs to a rebalance between other rings" in err
    # the same rings resume; --ring changes the ring and is refused too
    tool("--from", nodes_arg([a]), "--to", nodes_arg([a, b]), state=state)
    tool("--from", nodes_arg([a]), "--to", nodes_arg([a, b]), "--ring", "ketama-weighted",
         state=state, rc=2)


@pytest.mark.parametrize("args", [
    [], ["--from", "127.0.0.1:1"], ["--from", "x", "--to", "127.0.0.1:1"],
    ["--from", "127.0.0.1:1", "--to", "127.0.0.1:2", "--batch", "0"],
    ["--from", "127.0.0.1:1", "--to", "127.0.0.1:2", "--rate", "-1"],
    ["--from", "127.0.0.1:1", "--to", "127.0.0.1:2", "--ring", "modula"],
    ["--from", "127.0.0.1:1", "--to", "127.0.0.1:2", "--hash", "sha1"],
    ["--from", "twemproxy:/nonexistent.yml", "--to", "127.0.0.1:2"],
])
def test_usage_errors_exit_2(args, tmp_path):
    tool(*args, state=tmp_path / "s", rc=2)
    assert not os.path.exists(tmp_path / "s")


def test_unreachable_node_fails_with_1(servers, tmp_path):
    a = cluster(servers, 1)[0]
    dead = mctest.free_port()
    s, err = tool("--from", nodes_arg([a]), "--to", "%s,127.0.0.1:%d" % (nodes_arg([a]), dead),
                  state=tmp_path / "s", rc=1)
    assert "connect" in err and s["pass"] == "1 failed"


def test_group_without_a_master_is_an_error_not_a_node_of_its_own(servers, tmp_path):
    """A member whose group has no master cannot say which group it is in; taken for a node
    of its own, a group named by another member in the other ring would look like two nodes
    and its keys would "move" within it. The tool waits (--master-wait), then fails."""
    a = cluster(servers, 1)[0]
    # a lone election-mode member whose peers never start: REP_UNKNOWN for as long as it runs
    lone = servers.mcstore("-t", "2", "-R", "127.0.0.1:%d" % mctest.free_port(),
                           "-O", "127.0.0.1:%d" % mctest.free_port(),
                           "-O", "127.0.0.1:%d" % mctest.free_port())
    with mctest.Conn(lone.port) as c:
        assert c.cmd(b"rep_whoismaster\r\n") == b"REP_UNKNOWN\r\n"
    t0 = time.monotonic()
    s, err = tool("--from", nodes_arg([a]), "--to", nodes_arg([a, lone]), "--master-wait", "1",
                  state=tmp_path / "s", rc=1)
    assert "no master after" in err, err
    assert time.monotonic() - t0 >= 1.0
    assert s["pass"] == "1 failed", s


def test_second_run_on_one_state_is_refused(servers, tmp_path):
    a, b = cluster(servers, 2)
    pylibmc_client([a]).set_multi({"x:%d" % i: b"v" for i in range(2000)})
    state = tmp_path / "s"
    slow = subprocess.Popen([TOOL, "--state", str(state), "--from", nodes_arg([a]), "--to",
                             nodes_arg([a, b]), "--rate", "500"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        mctest.wait_for(lambda: state_counter(state, "scanned") > 0, 30, what="the first run")
        _, err = tool("--from", nodes_arg([a]), "--to", nodes_arg([a, b]), state=state, rc=2)
        assert "another mcstore-rebalance is using it" in err
        slow.send_signal(signal.SIGINT)
        out, _ = slow.communicate(timeout=RUN_TIMEOUT)
    finally:
        if slow.poll() is None:
            slow.kill()
            slow.wait()
    assert slow.returncode == 4 and parse_summary(out)["pass"] == "1 interrupted"
    s, _ = tool("--from", nodes_arg([a]), "--to", nodes_arg([a, b]), state=state)
    assert s["pass"] == "1 complete (resumed)"


def test_progress_bar_only_on_a_terminal(servers, tmp_path):
    a, b = cluster(servers, 2)
    pylibmc_client([a]).set_multi({"t:%d" % i: b"v" for i in range(1500)})
    frm, to = nodes_arg([a]), nodes_arg([a, b])
    _, err = tool("--from", frm, "--to", to, state=tmp_path / "plain")
    assert "pass 1 [" not in err            # stderr is a pipe here: no bar
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen([TOOL, "--state", str(tmp_path / "tty"), "--from", frm, "--to", to,
                              "--rate", "3000"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        slave = None
        shown = mctest.read_terminal(master, RUN_TIMEOUT)
        out = p.communicate(timeout=RUN_TIMEOUT)[0].decode()
    finally:
        os.close(master)
        if slave is not None:
            os.close(slave)
    assert p.returncode == 0 and parse_summary(out)["pass"] == "1 complete"
    bars = re.findall(rb"\rpass 1 \[[#.]{30}\] +(\d+)% (\d+)/1500 keys, moved \d+, \d+ keys/s, "
                      rb"ETA \d+:\d\d", shown)
    assert len(bars) >= 2, shown[-500:]     # it moved while the run went on ...
    assert bars[-1] == (b"100", b"1500")    # ... and ends full
