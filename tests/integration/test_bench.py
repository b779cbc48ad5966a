"""mcstore-bench against real servers: the counts it reports are the server's counts, fan-out
and the max-user action do what they say, errors are counted, and its ketama ring picks the
server libmemcached (pylibmc, weighted ketama) picks. The protocol tests run each of the text,
binary and meta protocols against the server kinds in PROTOCOL_SERVERS.

mcstore-bench is found beside the server binary: $MCSTORE_BIN's directory (make check builds
both in the build tree).
"""

import json
import os
import subprocess

import pylibmc
import pytest

import mctest

BENCH = os.path.join(os.path.dirname(os.path.abspath(mctest.MCSTORE_BIN)), "mcstore-bench")
RUN_TIMEOUT = 120       # seconds any one mcstore-bench run may take, whatever happens


def bench(*args, check=True, stdin=None):
    """Runs mcstore-bench with args; returns the CompletedProcess (stdout, stderr as text)."""
    assert os.path.exists(BENCH), "mcstore-bench not built: %s" % BENCH
    p = subprocess.run([BENCH] + [str(a) for a in args], input=stdin,
                       stdin=None if stdin is not None else subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=RUN_TIMEOUT)
    if check:
        assert p.returncode == 0, "mcstore-bench %s: rc=%d\nstdout:\n%s\nstderr:\n%s" % (
            " ".join(map(str, args)), p.returncode, p.stdout, p.stderr)
    return p


def bench_json(server, *args):
    p = bench("--server", "%s:%d" % (mctest.HOST, server.port), "--json", "--quiet", *args)
    return json.loads(p.stdout)


def counters(server):
    with mctest.Conn(server.port) as c:
        st = mctest.stats(c)
    return int(st["cmd_set"]), int(st["cmd_get"])


@pytest.fixture
def server(servers):
    """A fresh mcstore per test, so its counters see nothing but the bench."""
    return servers.mcstore("-t", "2")


# The server kinds each --protocol is tested against: every protocol against both.
PROTOCOL_SERVERS = {
    "text": ("mcstore", "memcached"),
    "binary": ("mcstore", "memcached"),
    "meta": ("mcstore", "memcached"),
}
PROTOCOL_CASES = [pytest.param(proto, kind, id="%s-%s" % (proto, kind))
                  for proto, kinds in PROTOCOL_SERVERS.items() for kind in kinds]


@pytest.fixture
def proto_server(servers, request):
    """A fresh server of the kind the test is parametrized with ("kind"), two threads."""
    kind = request.node.callspec.params["kind"]
    return servers.mcstore("-t", "2") if kind == "mcstore" else servers.memcached("-t", "2")


def proto_bench(proto, server, *args):
    r = bench_json(server, "--protocol", proto, *args)
    assert r["config"]["protocol"] == proto, r["config"]
    return r


def filler(n):
    """The bytes mcstore-bench writes as an n-byte value: the alphabet, repeated."""
    return bytes(ord("a") + i % 26 for i in range(n))


def test_write_count_equals_server_cmd_set(server):
    sets0, gets0 = counters(server)
    r = bench_json(server, "--duration", 2, "--threads", 2, "--connections", 4,
                   "--pipeline", 4, "--ratio", "1:3", "--keys", 5000)
    sets1, gets1 = counters(server)
    assert r["errors"] == 0, r
    assert r["sets"] > 1000 and r["gets"] > 1000, r
    assert r["sets"] == sets1 - sets0
    assert r["gets"] == gets1 - gets0
    assert r["ops"] == r["sets"] + r["gets"]
    assert r["hits"] + r["misses"] == r["gets"]
    assert 1.5 < r["seconds"] < 10, r
    lat = r["latency_us"]["all"]
    assert lat["count"] == r["ops"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99_9"] <= lat["max"]


def test_prefill_then_reads_all_hit(server):
    sets0, gets0 = counters(server)
    r = bench_json(server, "--prefill", "--keys", 3000, "--ratio", "0:1", "--duration", 1,
                   "--threads", 2, "--connections", 2, "--pipeline", 8, "--value-size", "10-300")
    sets1, gets1 = counters(server)
    assert r["prefill"]["sets"] == 3000 and r["prefill"]["errors"] == 0, r
    assert r["sets"] == 0
    assert sets1 - sets0 == 3000
    assert gets1 - gets0 == r["gets"] > 0
    assert r["misses"] == 0 and r["hits"] == r["gets"], r
    # the values it wrote are there, with sizes in the range asked for
    with mctest.Conn(server.port) as c:
        got = mctest.get_values(c, b"get key:0 key:1499 key:2999\r\n")
    assert len(got) == 3
    assert all(10 <= len(v[1]) <= 300 for v in got.values())


def test_requests_count_is_exact(server):
    sets0, _ = counters(server)
    r = bench_json(server, "--requests", 12345, "--ratio", "1:0", "--threads", 3,
                   "--connections", 3, "--pipeline", 16, "--key-pattern", "zipf")
    sets1, _ = counters(server)
    assert r["sets"] == 12345 == sets1 - sets0
    assert r["errors"] == 0


def test_fanout_set_writes_every_follower(server):
    sets0, _ = counters(server)
    r = bench_json(server, "--fanout", "--duration", 2, "--threads", 2, "--connections", 2,
                   "--pipeline", 16, "--value-size", 20)
    sets1, _ = counters(server)
    f = r["fanout"]
    assert r["errors"] == 0 and f["action_errors"] == 0, r
    assert f["actions"] > 10, r
    # every action that started ran to the end: inbox writes are whole fan-outs
    assert f["writes"] == f["inbox_writes"] == r["sets"] == sets1 - sets0
    assert f["completion_ms"]["count"] == f["actions"]
    assert 0 < f["completion_ms"]["p50"] <= f["completion_ms"]["p99"]
    assert 50 < r["config"]["fanout_plan_mean"] < 150


def test_fanout_append_creates_then_appends(server):
    sets0, _ = counters(server)
    r = bench_json(server, "--fanout", "--fanout-op", "append", "--duration", 2,
                   "--threads", 2, "--connections", 2, "--pipeline", 8,
                   "--fanout-users", 5000, "--fanout-max-followers", 2000, "--fanout-mean", 50)
    sets1, _ = counters(server)
    f = r["fanout"]
    assert r["errors"] == 0 and f["action_errors"] == 0, r
    # append to a missing inbox gets NOT_STORED, then add: both are storage commands the
    # server counts, and each NOT_STORED is a retry, not an error
    assert r["sets"] == sets1 - sets0 == f["inbox_writes"] + r["retries"]
    assert r["retries"] > 0
    assert r["error_detail"]["not_stored"] == r["retries"]
    # an inbox is a list of action ids, each followed by a space
    with mctest.Conn(server.port) as c:
        found = {}
        for u in range(0, 5000, 50):
            found.update(mctest.get_values(c, b"get inbox:%d\r\n" % u))
    assert found, "no inbox was written"
    for key, (flags, value, cas) in found.items():
        ids = value.split(b" ")
        assert ids[-1] == b"" and all(i.isdigit() for i in ids[:-1]), (key, value)


def test_max_user_action_alone(server):
    sets0, _ = counters(server)
    r = bench_json(server, "--fanout-max-user", "--threads", 2, "--connections", 4,
                   "--pipeline", 16, "--value-size", 16)
    sets1, _ = counters(server)
    m = r["max_user"]
    assert m["followers"] == 40000 and m["writes"] == 40000, r
    assert m["errors"] == 0 and r["errors"] == 0
    assert sets1 - sets0 == 40000
    assert m["completion_ms"] > 0


def test_errors_are_counted_not_assumed(server):
    # values over the server's -I (1 MiB) get SERVER_ERROR: each one is an error
    r = bench_json(server, "--duration", 1, "--threads", 1, "--connections", 2,
                   "--ratio", "1:1", "--value-size", 2000000, "--keys", 100)
    assert r["sets"] > 0
    assert r["error_detail"]["server_error"] == r["sets"]
    assert r["errors"] == r["sets"]
    assert r["misses"] == r["gets"]


def test_unknown_protocol_is_refused():
    p = bench("--protocol", "ascii", check=False)
    assert p.returncode == 2
    assert "expected text, binary or meta" in p.stderr
    assert p.stdout == ""


@pytest.mark.parametrize("proto,kind", PROTOCOL_CASES)
def test_protocol_write_count_equals_server_cmd_set(proto, kind, proto_server):
    server = proto_server
    sets0, gets0 = counters(server)
    r = proto_bench(proto, server, "--duration", 1, "--threads", 2, "--connections", 4,
                    "--pipeline", 4, "--ratio", "1:3", "--keys", 2000)
    sets1, gets1 = counters(server)
    assert r["errors"] == 0 and r["error_detail"]["bad_replies"] == 0, r
    assert r["sets"] > 500 and r["gets"] > 500, r
    assert r["sets"] == sets1 - sets0
    assert r["gets"] == gets1 - gets0
    assert r["hits"] + r["misses"] == r["gets"]
    assert r["hits"] > 0, r


@pytest.mark.parametrize("proto,kind", PROTOCOL_CASES)
def test_protocol_prefill_writes_the_values_then_reads_hit(proto, kind, proto_server):
    server = proto_server
    sets0, _ = counters(server)
    r = proto_bench(proto, server, "--prefill", "--keys", 2000, "--ratio", "0:1",
                    "--requests", 4000, "--threads", 2, "--connections", 2, "--pipeline", 8,
                    "--value-size", "0-300")
    sets1, _ = counters(server)
    assert r["prefill"]["sets"] == 2000 and r["prefill"]["errors"] == 0, r
    assert sets1 - sets0 == 2000
    assert r["gets"] == 4000 and r["hits"] == 4000 and r["errors"] == 0, r
    # what the protocol wrote is the filler, whole, with flags 0: read it back as text
    keys = [b"key:%d" % i for i in range(0, 2000, 7)]
    got = {}
    with mctest.Conn(server.port) as c:
        for i in range(0, len(keys), 50):
            got.update(mctest.get_values(c, b"get " + b" ".join(keys[i:i + 50]) + b"\r\n"))
    assert len(got) == len(keys)
    for key, (flags, value, _) in got.items():
        assert flags == 0 and len(value) <= 300 and value == filler(len(value)), (key, value)


@pytest.mark.parametrize("proto,kind", PROTOCOL_CASES)
def test_protocol_fanout_set(proto, kind, proto_server):
    server = proto_server
    sets0, _ = counters(server)
    r = proto_bench(proto, server, "--fanout", "--requests", 30, "--threads", 2,
                    "--connections", 2, "--pipeline", 16, "--value-size", 20)
    sets1, _ = counters(server)
    f = r["fanout"]
    assert r["errors"] == 0 and f["action_errors"] == 0, r
    assert f["actions"] == 30, r
    assert f["writes"] == f["inbox_writes"] == r["sets"] == sets1 - sets0 > 0


@pytest.mark.parametrize("proto,kind", PROTOCOL_CASES)
def test_protocol_fanout_append_creates_then_appends(proto, kind, proto_server):
    server = proto_server
    sets0, _ = counters(server)
    r = proto_bench(proto, server, "--fanout", "--fanout-op", "append", "--duration", 1,
                    "--threads", 2, "--connections", 2, "--pipeline", 8,
                    "--fanout-users", 3000, "--fanout-max-followers", 1000, "--fanout-mean", 30)
    sets1, _ = counters(server)
    f = r["fanout"]
    assert r["errors"] == 0 and f["action_errors"] == 0, r
    # NOT_STORED (binary: "not stored" to append, "exists" to add) is a retry, not an error
    assert r["sets"] == sets1 - sets0 == f["inbox_writes"] + r["retries"]
    assert r["retries"] > 0
    assert r["error_detail"]["not_stored"] == r["retries"]
    with mctest.Conn(server.port) as c:
        found = {}
        for u in range(0, 3000, 30):
            found.update(mctest.get_values(c, b"get inbox:%d\r\n" % u))
    assert found, "no inbox was written"
    for key, (flags, value, cas) in found.items():
        ids = value.split(b" ")
        assert ids[-1] == b"" and all(i.isdigit() for i in ids[:-1]), (key, value)


@pytest.mark.parametrize("proto,kind", PROTOCOL_CASES)
def test_protocol_errors_are_counted(proto, kind, proto_server):
    # values over the server's 1 MiB item limit are refused (binary: "too large"): each one is
    # a server error, the connection stays in step, and the gets that follow miss
    r = proto_bench(proto, proto_server, "--requests", 60, "--threads", 1, "--connections", 2,
                    "--ratio", "1:1", "--value-size", 2000000, "--keys", 50)
    assert r["sets"] > 0 and r["gets"] > 0
    assert r["error_detail"]["server_error"] == r["sets"], r
    assert r["error_detail"]["bad_replies"] == 0 and r["error_detail"]["lost"] == 0, r
    assert r["errors"] == r["sets"]
    assert r["misses"] == r["gets"]


def test_unreachable_server_fails_fast():
    port = mctest.free_port()
    p = bench("--server", "%s:%d" % (mctest.HOST, port), "--duration", 1, check=False)
    assert p.returncode == 1
    assert "Connection refused" in p.stderr


def test_ring_agrees_with_pylibmc_weighted_ketama(servers):
    """Writes keys through pylibmc with weighted ketama (MD5, 160 points per server) to three
    servers, reads back which server holds each key, and checks mcstore-bench's ring picks the
    same server for every one."""
    nodes = [servers.mcstore("-t", "1") for _ in range(3)]
    specs = ["%s:%d" % (mctest.HOST, s.port) for s in nodes]
    keys = ["ring:%d" % i for i in range(3000)]
    mc = pylibmc.Client(specs, binary=False, behaviors={"ketama_weighted": True})
    for k in keys:
        mc.set(k, b"x")
    mc.disconnect_all()

    holder = {}
    for spec, s in zip(specs, nodes):
        with mctest.Conn(s.port) as c:
            for i in range(0, len(keys), 100):
                line = b"get " + b" ".join(k.encode() for k in keys[i:i + 100]) + b"\r\n"
                for k in mctest.get_values(c, line):
                    assert k.decode() not in holder, "%s on two servers" % k
                    holder[k.decode()] = spec
    assert len(holder) == len(keys), "keys missing: %d" % (len(keys) - len(holder))
    # pylibmc spread them: every server holds a fair share
    for spec in specs:
        assert sum(1 for v in holder.values() if v == spec) > len(keys) // 5

    args = ["--route"]
    for spec in specs:
        args += ["--server", spec]
    out = bench(*args, stdin="\n".join(keys) + "\n").stdout.splitlines()
    ours = dict(line.split(" ") for line in out)
    wrong = [k for k in keys if ours[k] != holder[k]]
    assert not wrong, "%d of %d keys differ, e.g. %s: ring %s, pylibmc %s" % (
        len(wrong), len(keys), wrong[0], ours[wrong[0]], holder[wrong[0]])


def test_several_servers_share_the_load(servers):
    nodes = [servers.mcstore("-t", "1") for _ in range(2)]
    before = [counters(s)[0] for s in nodes]
    args = []
    for s in nodes:
        args += ["--server", "%s:%d" % (mctest.HOST, s.port)]
    p = bench(*args, "--json", "--quiet", "--requests", 4000, "--ratio", "1:0", "--threads", 2,
              "--connections", 2, "--pipeline", 4)
    r = json.loads(p.stdout)
    after = [counters(s)[0] for s in nodes]
    deltas = [a - b for a, b in zip(after, before)]
    assert r["sets"] == sum(deltas) == 4000
    assert min(deltas) > 1000, deltas
