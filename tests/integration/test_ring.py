"""Ring agreement: mcstore-ring names the node that libmemcached (pylibmc) and twemproxy
(Debian's nutcracker) really send each key to.

For 100,000 generated keys over 3, 4 and 10 nodes of distinct weights, every key is written
through the client or through nutcracker, each node is then read directly to see which keys
it holds, and `mcstore-ring owner -` must name that node for every key. The backends are
Debian memcached instances (read back with `lru_crawler metadump all`, which lists a node's
keys in one command); one topology puts three mcstore nodes behind nutcracker (read back with
get_multi). Then `diff`: the moved fraction of 3 -> 4 equal nodes, and exactly the keys whose
owner changes.

mcstore-ring is found beside the server binary ($MCSTORE_BIN's directory).
"""

import os
import signal
import socket
import subprocess
import threading
import time
import urllib.parse

import pylibmc
import pytest

import mctest

RING = os.path.join(os.path.dirname(os.path.abspath(mctest.MCSTORE_BIN)), "mcstore-ring")
NUTCRACKER = os.environ.get("NUTCRACKER_BIN", "/usr/sbin/nutcracker")
NKEYS = 100000
RUN_TIMEOUT = 60        # seconds any one mcstore-ring run or pipeline may take
FILL_DEADLINE = 30      # seconds for written keys to show up on the nodes

# node count -> distinct weights (the 10-node ring also has every weight from 1 to 10)
WEIGHTS = {3: (1, 2, 5), 4: (3, 1, 4, 2), 10: (3, 1, 4, 10, 5, 9, 2, 6, 8, 7)}
TWEMPROXY_HASHES = ("one_at_a_time", "md5", "crc16", "crc32", "crc32a", "fnv1_64", "fnv1a_64",
                    "fnv1_32", "fnv1a_32", "hsieh", "murmur", "jenkins")


def plain_keys(prefix="key:"):
    return ["%s%d" % (prefix, i) for i in range(NKEYS)]


def tagged_keys():
    # 1000 tags: keys of one tag must all land on one node
    return ["user:{%d}:item:%d" % (i % 1000, i) for i in range(NKEYS)]


def ring(*args, stdin=None, check=True):
    """Runs mcstore-ring; returns the CompletedProcess (text)."""
    assert os.path.exists(RING), "mcstore-ring not built: %s" % RING
    p = subprocess.run([RING] + [str(a) for a in args], input=stdin,
                       stdin=None if stdin is not None else subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=RUN_TIMEOUT)
    if check:
        assert p.returncode == 0, "mcstore-ring %s: rc=%d\nstderr:\n%s" % (
            " ".join(map(str, args)), p.returncode, p.stderr)
    return p


def ring_owners(args, keys):
    """key -> "host:port" as `mcstore-ring ARGS owner -` says."""
    out = ring(*args, "owner", "-", stdin="".join(k + "\n" for k in keys)).stdout
    owners = dict(line.split("\t") for line in out.splitlines())
    assert len(owners) == len(keys)
    return owners


def node_name(port):
    return "%s:%d" % (mctest.HOST, port)


def total_items(ports):
    n = 0
    for p in ports:
        with mctest.Conn(p) as c:
            n += int(mctest.stats(c)["curr_items"])
    return n


def wait_stored(ports, n):
    mctest.wait_for(lambda: total_items(ports) >= n, FILL_DEADLINE,
                    what="%d items on the nodes" % n)


def metadump(port):
    """The keys a memcached node holds (lru_crawler metadump, keys URI-encoded)."""
    keys = []
    with mctest.Conn(port, timeout=RUN_TIMEOUT) as c:
        c.send(b"lru_crawler metadump all\r\n")
        out = c.read_until(b"END\r\n")
    for line in out.splitlines():      # its lines end in a bare \n
        if line.startswith(b"key="):
            keys.append(urllib.parse.unquote(line.split(b" ", 1)[0][4:].decode()))
    return keys


def memcached_owners(ports, keys):
    """key -> "host:port" of the memcached node that holds it, for every key of keys."""
    owners = {}
    for p in ports:
        # a set: the crawler may meet an item twice while the LRU maintainer moves it
        for k in set(metadump(p)):
            assert k not in owners, "%s is on two nodes" % k
            owners[k] = node_name(p)
    # ... or miss a few that moved behind it (seen: 17 of 100,000): ask every node for those
    missing = [k for k in keys if k not in owners]
    for p in ports:
        for k in pylibmc.Client([node_name(p)]).get_multi(missing):
            assert k not in owners, "%s is on two nodes" % k
            owners[k] = node_name(p)
    assert len(owners) == len(keys), "%d keys are on no node" % (len(keys) - len(owners))
    return owners


def flush(ports):
    for p in ports:
        with mctest.Conn(p) as c:
            assert c.cmd(b"flush_all\r\n") == b"OK\r\n"
    mctest.wait_for(lambda: total_items(ports) == 0, FILL_DEADLINE, what="empty nodes")


def assert_same(want, got, what, spread=True):
    """want, got: key -> node. Every key of want must have the same node in got."""
    bad = [k for k in want if got.get(k) != want[k]]
    assert not bad, "%s: %d of %d keys differ, e.g. %s" % (
        what, len(bad), len(want),
        ", ".join("%s: real %s, mcstore-ring %s" % (k, want[k], got.get(k)) for k in bad[:5]))
    # a ring that put every key on one node would agree with a broken setup: check the spread
    if spread:
        assert len(set(want.values())) > 1


def pipeline_sets(port, keys):
    """Writes every key through one connection, pipelined, and checks every reply."""
    payload = b"".join(b"set %s 0 0 1\r\nv\r\n" % k.encode() for k in keys)
    want = len(keys) * len(b"STORED\r\n")
    got = bytearray()
    with socket.create_connection((mctest.HOST, port), timeout=RUN_TIMEOUT) as s:
        sender = threading.Thread(target=s.sendall, args=(payload,), daemon=True)
        sender.start()
        deadline = time.monotonic() + RUN_TIMEOUT
        while len(got) < want:
            assert time.monotonic() < deadline, "replies did not come in time"
            chunk = s.recv(1 << 20)
            assert chunk, "the proxy closed the connection after %d bytes" % len(got)
            got += chunk
        sender.join(RUN_TIMEOUT)
    assert bytes(got) == b"STORED\r\n" * len(keys), "a set was not stored: %r" % (
        bytes(got).replace(b"STORED\r\n", b"")[:200],)


@pytest.fixture(scope="module")
def backends(module_servers):
    """Ten Debian memcached nodes, shared by the module (each test flushes them)."""
    nodes = [module_servers.memcached("-t", "1", "-m", "64") for _ in range(10)]
    yield [s.port for s in nodes]
    # after a metadump each takes about a second to exit: stop them all at once
    for s in nodes:
        if s.alive():
            s.exit_expected = True
            s.proc.send_signal(signal.SIGTERM)
    for s in nodes:
        s.stop()


# --- pylibmc (libmemcached 1.1.4) ---

PYLIBMC_CASES = [pytest.param(n, b, id="%d-%s" % (n, b))
                 for n in (3, 4, 10) for b in ("ketama", "ketama_weighted")]


@pytest.mark.parametrize("n,behavior", PYLIBMC_CASES)
def test_agrees_with_pylibmc(backends, n, behavior):
    ports = backends[:n]
    nodes = ["%s:%d" % (node_name(p), w) for p, w in zip(ports, WEIGHTS[n])]
    keys = plain_keys()
    flush(ports)
    # noreply lets libmemcached stream the sets; the item count says when all have landed
    client = pylibmc.Client(nodes, behaviors={behavior: True, "_noreply": True})
    client.set_multi({k: b"v" for k in keys})
    wait_stored(ports, len(keys))
    real = memcached_owners(ports, keys)
    kind = "--ketama" if behavior == "ketama" else "--ketama-weighted"
    assert_same(real, ring_owners([kind, "--nodes", ",".join(nodes)], keys),
                "pylibmc %s over %d nodes" % (behavior, n))


@pytest.mark.parametrize("hash_", ["md5", "crc", "fnv1_64", "fnv1a_64", "fnv1_32", "fnv1a_32",
                                   "murmur", "jenkins"])
@pytest.mark.parametrize("weighted", [False, True], ids=["weights-1", "weighted"])
def test_ketama_hashes_agree_with_libmemcached(hash_, weighted):
    """pylibmc {"ketama": True, "hash": H}: libmemcached's own choice (Client.hash, its
    dispatch without I/O) for every key. With weights 1 the points are hashed with H too;
    with weights, MD5 points and H for keys. (Debian's libhashkit has no hsieh.)"""
    nodes = ["10.1.0.%d:%d:%d" % (i + 1, 21201 + i, w if weighted else 1)
             for i, w in enumerate(WEIGHTS[10])]
    client = pylibmc.Client(nodes, behaviors={"ketama": True, "hash": hash_})
    keys = plain_keys()
    real = {k: nodes[client.hash(k)].rsplit(":", 1)[0] for k in keys}
    assert_same(real, ring_owners(["--ketama", "--hash", hash_, "--nodes", ",".join(nodes)],
                                  keys), "pylibmc ketama hash %s" % hash_,
                spread=hash_ != "crc")


# --- nutcracker 0.5.0 ---

def pool_yaml(name, listen, servers, hash_=None, hash_tag=None):
    lines = ["%s:" % name, "  listen: %s" % node_name(listen), "  distribution: ketama",
             "  auto_eject_hosts: false", "  timeout: 10000"]
    if hash_ is not None:
        lines.append("  hash: %s" % hash_)
    if hash_tag is not None:
        lines.append('  hash_tag: "%s"' % hash_tag)
    lines.append("  servers:")
    lines += ["   - %s" % s for s in servers]
    return "\n".join(lines) + "\n"


class Nutcracker:
    """One nutcracker process with many pools, on free ports, stopped by its PID."""

    def __init__(self, tmpdir, pools):
        self.tmpdir = str(tmpdir)
        self.conf = os.path.join(self.tmpdir, "nutcracker.yml")
        self.pools = pools
        self.listen = {}
        self.server = None

    def _write_conf(self):
        """A fresh free port for each pool (distinct: nutcracker refuses two on one port)."""
        ports = set()
        while len(ports) < len(self.pools) + 1:
            ports.add(mctest.free_port())
        ports = sorted(ports)
        self.stats_port = ports.pop()
        self.listen = {}
        text = []
        for (name, servers, hash_, tag), port in zip(self.pools, ports):
            self.listen[name] = port
            text.append(pool_yaml(name, port, servers, hash_, tag))
        with open(self.conf, "w") as f:
            f.write("".join(text))

    def log_text(self):
        try:
            with open(os.path.join(self.tmpdir, "nutcracker.log")) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def start(self, tries=3):
        for attempt in range(tries):
            self._write_conf()
            self.server = mctest.Server(
                lambda port: [NUTCRACKER, "-c", self.conf, "-s", str(self.stats_port),
                              "-a", mctest.HOST,
                              "-o", os.path.join(self.tmpdir, "nutcracker.log"),
                              "-p", os.path.join(self.tmpdir, "nutcracker.pid")],
                "nutcracker", self.tmpdir)
            try:
                # Server waits for one port; every pool's listener is up by then, but check
                self.server.start(port=next(iter(self.listen.values())))
            except mctest.ServerExited:
                # another process may have taken one of the free ports meanwhile
                if attempt == tries - 1 or "in use" not in self.log_text():
                    raise AssertionError("nutcracker did not start:\n" + self.log_text())
                continue
            for port in self.listen.values():
                mctest.wait_for(lambda: mctest.port_accepts(port), mctest.START_DEADLINE,
                                what="nutcracker on %d" % port)
            return

    def stop(self):
        if self.server is not None:
            self.server.stop()


def twemproxy_pools(backends):
    """(pool name, servers, hash, hash_tag, keys kind) of every nutcracker case."""
    def servers(n, names=None):
        out = []
        for i, (p, w) in enumerate(zip(backends[:n], WEIGHTS[n])):
            out.append("%s:%d" % (node_name(p), w) + (" %s" % names[i] if names else ""))
        return out
    pools = [("ten_%s" % h, servers(10), h, None, "plain") for h in TWEMPROXY_HASHES]
    pools += [
        ("three_default", servers(3), None, None, "plain"),
        ("three_hsieh", servers(3), "hsieh", None, "plain"),
        ("four_md5", servers(4), "md5", None, "plain"),
        ("four_jenkins", servers(4), "jenkins", None, "plain"),
        ("four_named_crc32a", servers(4, ["cache-a", "cache-b", "cache-c", "cache-d"]),
         "crc32a", None, "plain"),
        ("ten_named_fnv1a_32", servers(10, ["n%02d" % i for i in range(10)]), "fnv1a_32",
         None, "plain"),
        ("ten_tag_murmur", servers(10), "murmur", "{}", "tagged"),
        ("three_tag_md5", servers(3), "md5", "{}", "tagged"),
    ]
    return pools


@pytest.fixture(scope="module")
def nutcracker(backends, tmp_path_factory):
    pools = twemproxy_pools(backends)
    nc = Nutcracker(tmp_path_factory.mktemp("nutcracker"),
                    [(name, servers, h, tag) for name, servers, h, tag, _ in pools])
    nc.start()
    nc.cases = {name: (servers, kind) for name, servers, _, _, kind in pools}
    yield nc
    nc.stop()


NUTCRACKER_CASES = [name for name, _, _, _, _ in twemproxy_pools(list(range(20000, 20010)))]


@pytest.mark.parametrize("pool", NUTCRACKER_CASES)
def test_agrees_with_nutcracker(backends, nutcracker, pool):
    servers, kind = nutcracker.cases[pool]
    ports = backends[:len(servers)]
    keys = tagged_keys() if kind == "tagged" else plain_keys()
    flush(ports)
    pipeline_sets(nutcracker.listen[pool], keys)
    real = memcached_owners(ports, keys)
    # the same text as nutcracker read: the pool of its own YAML file. crc32 (libmemcached's
    # 15-bit crc) hashes every key below 32768, before nearly every point: one node owns all.
    assert_same(real, ring_owners(["--twemproxy", nutcracker.conf, "--pool", pool], keys),
                "nutcracker pool %s" % pool, spread=not pool.endswith("_crc32"))
    if kind == "tagged":
        # one node per tag: the tag, not the key, chose the node
        by_tag = {}
        for k, node in real.items():
            by_tag.setdefault(k.split("}")[0], set()).add(node)
        assert all(len(nodes) == 1 for nodes in by_tag.values())


def test_nutcracker_node_list_flags_match_yaml(backends, nutcracker):
    """--twemproxy-ketama --hash H --nodes LIST is the same ring as the YAML pool."""
    servers, _ = nutcracker.cases["ten_named_fnv1a_32"]
    keys = plain_keys("flags:")[:20000]
    from_yaml = ring_owners(["--twemproxy", nutcracker.conf, "--pool", "ten_named_fnv1a_32"],
                            keys)
    from_flags = ring_owners(["--twemproxy-ketama", "--hash", "fnv1a_32",
                              "--nodes", ",".join(servers)], keys)
    assert_same(from_yaml, from_flags, "flags vs YAML")


def test_agrees_with_nutcracker_over_mcstore(servers, tmp_path):
    """Three mcstore nodes behind nutcracker (md5, weights 1, 2, 5)."""
    nodes = [servers.mcstore("-t", "2", "-N") for _ in range(3)]
    ports = [s.port for s in nodes]
    names = ["%s:%d" % (node_name(p), w) for p, w in zip(ports, WEIGHTS[3])]
    nc = Nutcracker(tmp_path, [("mcstore", names, "md5", None)])
    nc.start()
    try:
        keys = plain_keys("mc:")
        pipeline_sets(nc.listen["mcstore"], keys)
    finally:
        nc.stop()
    real = {}
    for p in ports:
        for k in pylibmc.Client([node_name(p)]).get_multi(keys):
            assert k not in real, "%s is on two nodes" % k
            real[k] = node_name(p)
    assert len(real) == len(keys)
    assert_same(real, ring_owners(["--twemproxy", nc.conf], keys),
                "nutcracker over mcstore")


# --- diff ---

def diff_lines(out, section):
    """The indented lines after "section: N" in diff's output."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(section + ":"))
    body = []
    for line in lines[start + 1:]:
        if not line.startswith("  "):
            break
        body.append(line[2:])
    return body


@pytest.mark.parametrize("kind", ["--ketama", "--ketama-weighted", "--twemproxy-ketama"])
def test_diff_three_to_four(kind):
    old = ",".join("10.0.0.%d:21201" % i for i in (1, 2, 3))
    new = old + ",10.0.0.4:21201"
    keys = plain_keys()
    out = ring(kind, "--nodes", old, "diff", "--to-nodes", new).stdout
    moved = float(next(line for line in out.splitlines()
                       if line.startswith("moved:")).split()[1])
    assert abs(moved - 0.25) < 0.06, out[:2000]
    # only the new node gains, and the pairs and ranges add up to the moved fraction
    pairs = diff_lines(out, "pairs")
    assert len(pairs) == 3
    assert all(p.split("\t")[0].endswith("-> 10.0.0.4:21201") for p in pairs)
    assert abs(sum(float(p.split("\t")[1]) for p in pairs) - moved) < 1e-5
    ranges = diff_lines(out, "ranges")
    size = 0
    for r in ranges:
        span, owners = r.split("\t")
        start, end = (int(x) for x in span.split(".."))
        size += end - start + 1
        assert owners.endswith("-> 10.0.0.4:21201")
    assert abs(size / 2.0 ** 32 - moved) < 1e-6

    # the moved keys are exactly those whose owner differs between the two rings
    before = ring_owners([kind, "--nodes", old], keys)
    after = ring_owners([kind, "--nodes", new], keys)
    want = {k: (before[k], after[k]) for k in keys if before[k] != after[k]}
    stdin = "".join(k + "\n" for k in keys)
    lines = ring(kind, "--nodes", old, "diff", "--to-nodes", new, "--keys-only", "-",
                 stdin=stdin).stdout.splitlines()
    got = {k: (a, b) for k, a, b in (line.split("\t") for line in lines)}
    assert got == want
    assert abs(len(got) / len(keys) - moved) < 0.02
    # the full report lists the same keys, and counts them
    out = ring(kind, "--nodes", old, "diff", "--to-nodes", new, "-", stdin=stdin).stdout
    assert {line.split("\t")[0] for line in diff_lines(out, "keys")} == set(want)
    assert "keys read: %d, moved: %d" % (len(keys), len(want)) in out


def test_diff_twemproxy_files(tmp_path):
    """--twemproxy to --to-twemproxy: a server that keeps its name but changes address."""
    old = tmp_path / "old.yml"
    new = tmp_path / "new.yml"
    old.write_text(pool_yaml("p", 22121, ["10.0.0.1:21201:1 a", "10.0.0.2:21201:1 b",
                                          "10.0.0.3:21201:1 c"], "md5"))
    new.write_text(pool_yaml("p", 22121, ["10.0.0.1:21201:1 a", "10.0.0.9:21201:1 b",
                                          "10.0.0.3:21201:1 c"], "md5"))
    out = ring("--twemproxy", old, "diff", "--to-twemproxy", new).stdout
    # the ring is the same (names), but everything b owned now lives at another address
    pairs = diff_lines(out, "pairs")
    assert [p.split("\t")[0] for p in pairs] == ["10.0.0.2:21201 -> 10.0.0.9:21201"]
    spread = ring("--twemproxy", old, "spread", "--keys", "0").stdout
    share_b = next(float(line.split()[3].rstrip("%")) for line in spread.splitlines()
                   if line.startswith("10.0.0.2:21201"))
    moved = float(next(line for line in out.splitlines()
                       if line.startswith("moved:")).split()[1])
    assert abs(moved * 100 - share_b) < 1e-3


# --- spread and the command line ---

def test_spread_counts_keys():
    nodes = "10.0.0.1:21201:1,10.0.0.2:21201:3"
    out = ring("--nodes", nodes, "spread", "--keys", "40000", "--prefix", "s:").stdout
    rows = {line.split()[0]: line.split() for line in out.splitlines()
            if line.startswith("10.0.0.")}
    owners = ring_owners(["--nodes", nodes], ["s:%d" % i for i in range(40000)])
    for node, row in rows.items():
        assert int(row[4]) == sum(1 for o in owners.values() if o == node)
    # weight 3 of 4: near three quarters of the space and of the keys
    assert 65 < float(rows["10.0.0.2:21201"][3].rstrip("%")) < 85
    stdin_out = ring("--nodes", nodes, "spread", "-",
                     stdin="".join("s:%d\n" % i for i in range(40000))).stdout
    assert stdin_out == out


@pytest.mark.parametrize("args,says", [
    (["owner", "k"], "--nodes"),
    (["--nodes", "h:1", "owner"], "keys"),
    (["--nodes", "h", "owner", "k"], "host:port"),
    (["--nodes", "h:1:0", "owner", "k"], "weight"),
    (["--nodes", "h:1,h:1", "owner", "k"], "both"),
    (["--nodes", "h:1", "--hash", "sha1", "owner", "k"], "unknown hash"),
    (["--nodes", "h:1", "--ketama", "--hash", "crc16", "owner", "k"], "crc16"),
    (["--nodes", "h:1", "--hash-tag", "{}", "owner", "k"], "twemproxy"),
    (["--nodes", "h:1", "frobnicate"], "unknown command"),
    (["--nodes", "h:1", "diff"], "--to-nodes"),
    (["--nodes", "h:1", "--ketama", "--twemproxy-ketama", "owner", "k"], "choose one"),
    (["--twemproxy", "/nonexistent.yml", "owner", "k"], "No such file"),
])
def test_command_line_errors(args, says):
    p = ring(*args, check=False)
    assert p.returncode == 1
    assert says in p.stderr
    assert p.stdout == ""


def test_rejects_modula_pool(tmp_path):
    conf = tmp_path / "modula.yml"
    conf.write_text(pool_yaml("p", 22121, ["10.0.0.1:21201:1"]).replace("ketama", "modula"))
    p = ring("--twemproxy", conf, "owner", "k", check=False)
    assert p.returncode == 1
    assert "ketama" in p.stderr
