"""Persistence: a clean restart keeps every item with its flags, exptime and CAS; after kill -9
under load every acknowledged write is there with its flags and exptime; CAS values are never
reused after a restart or a crash; flush_all survives both; SIGTERM/SIGINT stop cleanly."""

import signal
import threading
import time

import pytest

import mctest
from mctest import storage_cmd

WRITERS = 4
KEYS_PER_WRITER = 50
MIN_ACKED_BEFORE_KILL = 400
WRITE_PHASE_DEADLINE = 20.0


def gets_all(port, keys, batch=50):
    out = {}
    with mctest.Conn(port) as c:
        for i in range(0, len(keys), batch):
            out.update(mctest.get_values(c, b"gets " + b" ".join(keys[i:i + batch]) + b"\r\n"))
    return out


def new_cas(port, key):
    """Sets key and returns the CAS the server gave it."""
    with mctest.Conn(port) as c:
        assert c.cmd(storage_cmd(b"set", key, 0, 0, b"new")) == b"STORED\r\n"
        return mctest.get_values(c, b"gets %s\r\n" % key)[key][2]


def test_clean_restart_keeps_everything(servers):
    s = servers.mcstore("-t", "2")
    now = int(time.time())
    items = {}      # key -> (flags, value, exptime as sent)
    for i in range(120):
        key = b"item_%03d" % i
        flags = [0, 1, 0xFFFFFFFF, 0x80000000, 12345][i % 5]
        value = (b"%d|" % i) * (i * 7 % 300) + bytes([i % 256]) * (i % 3)
        exptime = [0, 3600, now + 7200][i % 3]
        items[key] = (flags, value, exptime)
    items[b"big_value"] = (7, bytes(range(256)) * 2000, 0)       # 512 KB
    items[b"empty_value"] = (9, b"", 0)
    with mctest.Conn(s.port) as c:
        for key, (flags, value, exptime) in items.items():
            assert c.cmd(storage_cmd(b"set", key, flags, exptime, value)) == b"STORED\r\n"
        # a few more kinds of write, then their results are what must survive
        assert c.cmd(b"delete item_000\r\n") == b"DELETED\r\n"
        del items[b"item_000"]
        assert c.cmd(storage_cmd(b"set", b"counter", 3, 0, b"41")) == b"STORED\r\n"
        assert c.cmd(b"incr counter 1\r\n") == b"42\r\n"
        items[b"counter"] = (3, b"42", 0)
        assert c.cmd(storage_cmd(b"append", b"item_001", 0, 0, b"+tail")) == b"STORED\r\n"
        items[b"item_001"] = (items[b"item_001"][0], items[b"item_001"][1] + b"+tail",
                              items[b"item_001"][2])
        # short-lived: must still expire on time after the restart (exptime kept, not reset)
        t_short = time.monotonic()
        assert c.cmd(storage_cmd(b"set", b"short", 0, 3, b"s")) == b"STORED\r\n"
        n_items = mctest.stats(c)["curr_items"]
    before = gets_all(s.port, list(items))
    assert {k: v[:2] for k, v in before.items()} == {k: (f, v) for k, (f, v, _) in items.items()}
    max_cas = max(v[2] for v in before.values())

    s.restart()

    after = gets_all(s.port, list(items))
    assert after == before, "items, flags or CAS changed across a clean restart"
    with mctest.Conn(s.port) as c:
        assert mctest.stats(c)["curr_items"] == n_items
        # a CAS read before the restart still works for an unchanged item...
        k = b"item_002"
        assert c.cmd(storage_cmd(b"cas", k, 0, 0, b"c", extra=b"%d" % before[k][2])) == \
            b"STORED\r\n"
        # ...and a stale one fails
        assert c.cmd(storage_cmd(b"cas", k, 0, 0, b"d", extra=b"%d" % before[k][2])) == \
            b"EXISTS\r\n"
        assert mctest.get_values(c, b"get short\r\n") in ({}, {b"short": (0, b"s", None)})
    # new writes never reuse a CAS value
    assert new_cas(s.port, b"fresh_after_restart") > max_cas
    # exptime survived: 'short' expires about 3 s after it was set, not 3 s after the restart
    mctest.wait_for(lambda: not gets_all(s.port, [b"short"]), 8, 0.05, "'short' to expire")
    assert time.monotonic() - t_short < 6.5, "exptime was reset by the restart"
    assert gets_all(s.port, [b"item_001", b"item_002"]).keys() == {b"item_001", b"item_002"}


def test_flush_all_survives_restart(servers):
    """Flushed items stay gone after a restart (and after kill -9); later items stay."""
    s = servers.mcstore("-t", "2")
    with mctest.Conn(s.port) as c:
        for i in range(20):
            assert c.cmd(storage_cmd(b"set", b"old%d" % i, 0, 0, b"o")) == b"STORED\r\n"
        assert c.cmd(b"flush_all\r\n") == b"OK\r\n"
        assert c.cmd(storage_cmd(b"set", b"new", 0, 0, b"n")) == b"STORED\r\n"
    s.restart()
    with mctest.Conn(s.port) as c:
        assert mctest.get_values(c, b"get old0 old19 new\r\n") == {b"new": (0, b"n", None)}
        assert c.cmd(storage_cmd(b"set", b"old1", 0, 0, b"again")) == b"STORED\r\n"
        assert c.cmd(b"flush_all\r\n") == b"OK\r\n"
    s.kill()
    s.start_again()
    with mctest.Conn(s.port) as c:
        assert mctest.get_values(c, b"get old1 new\r\n") == {}


def test_delayed_flush_survives_restart(servers):
    s = servers.mcstore("-t", "2")
    with mctest.Conn(s.port) as c:
        assert c.cmd(storage_cmd(b"set", b"doomed", 0, 0, b"d")) == b"STORED\r\n"
        assert c.cmd(b"flush_all 3\r\n") == b"OK\r\n"
    s.restart()
    with mctest.Conn(s.port) as c:
        mctest.wait_for(lambda: mctest.get_values(c, b"get doomed\r\n") == {}, 8, 0.05,
                        "a flush_all 3 given before the restart to happen after it")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_cleanly_with_clients_connected(servers, sig):
    """Idle clients and a client in the middle of a request do not hold the shutdown up;
    the exit status is 0 and the data is there at the next start."""
    s = servers.mcstore("-t", "2")
    idle = [mctest.Conn(s.port) for _ in range(5)]
    busy = mctest.Conn(s.port)
    try:
        for c in idle:
            assert c.cmd(b"version\r\n") == b"VERSION 1.6.18\r\n"
        assert busy.cmd(storage_cmd(b"set", b"k", 0, 0, b"v")) == b"STORED\r\n"
        busy.send(b"set half 0 0 10\r\nabc")          # a request still arriving
        t0 = time.monotonic()
        s.proc.send_signal(sig)
        s.exit_expected = True
        rc = s.proc.wait(timeout=mctest.STOP_DEADLINE)
        took = time.monotonic() - t0
        for c in idle:
            assert c.wait_closed(1), "an idle client was not closed at shutdown"
    finally:
        for c in idle + [busy]:
            c.close()
    assert rc == 0, s.log_text()
    assert took < 8, "shutdown took %.1f s" % took
    s.start_again()
    with mctest.Conn(s.port) as c:
        assert mctest.get_values(c, b"get k half\r\n") == {b"k": (0, b"v", None)}


def test_restart_twice_cas_monotonic(servers):
    s = servers.mcstore("-t", "2")
    seen = []
    for round_ in range(3):
        for i in range(5):
            seen.append(new_cas(s.port, b"k%d" % i))
        s.restart()
    seen.append(new_cas(s.port, b"k0"))
    assert seen == sorted(seen) and len(set(seen)) == len(seen), seen


class Writer(threading.Thread):
    """Sets keys w<i>_<n % KEYS_PER_WRITER> in a loop on its own connection, recording what
    it sent and which writes the server acknowledged; stops at the first error (the kill)."""

    def __init__(self, i, port, stop):
        super().__init__(daemon=True)
        self.i, self.port, self.stop_evt = i, port, stop
        self.sent = {}          # key -> [(flags, value), ...] in order
        self.acked = {}         # key -> index into sent[key] of the last acknowledged write
        self.cas_seen = []
        self.n_acked = 0
        self.error = None

    def run(self):
        try:
            c = mctest.Conn(self.port, timeout=10)
        except OSError as e:
            self.error = e
            return
        n = 0
        try:
            while not self.stop_evt.is_set() and n < 100000:
                key = b"w%d_%d" % (self.i, n % KEYS_PER_WRITER)
                flags = ((self.i << 28) | n) & 0xFFFFFFFF
                value = b"writer %d write %d " % (self.i, n) + b"v" * (n % 500)
                self.sent.setdefault(key, []).append((flags, value))
                c.send(storage_cmd(b"set", key, flags, 0, value))
                reply = c.read_until(b"\r\n")
                if reply != b"STORED\r\n":
                    self.error = reply
                    return
                self.acked[key] = len(self.sent[key]) - 1
                self.n_acked += 1
                if n % 10 == 0:
                    got = mctest.get_values(c, b"gets %s\r\n" % key)
                    self.cas_seen.append(got[key][2])
                n += 1
        except (OSError, AssertionError):
            pass            # the server was killed under us
        finally:
            c.close()


def test_kill9_under_load_keeps_acknowledged_writes(servers):
    s = servers.mcstore("-t", "2")
    # items whose exptime must survive the crash: 'short' ones expire 4 s after this
    t_short = time.monotonic()
    with mctest.Conn(s.port) as c:
        for i in range(10):
            assert c.cmd(storage_cmd(b"set", b"short%d" % i, i, 4, b"s")) == b"STORED\r\n"
            assert c.cmd(storage_cmd(b"set", b"long%d" % i, i, int(time.time()) + 3600,
                                     b"l")) == b"STORED\r\n"
    stop = threading.Event()
    writers = [Writer(i, s.port, stop) for i in range(WRITERS)]
    for w in writers:
        w.start()
    try:
        mctest.wait_for(lambda: sum(w.n_acked for w in writers) >= MIN_ACKED_BEFORE_KILL,
                        WRITE_PHASE_DEADLINE, 0.01, "%d acknowledged writes" %
                        MIN_ACKED_BEFORE_KILL)
        s.kill()                                    # kill -9 while they are writing
    finally:
        stop.set()
        for w in writers:
            w.join(10)
    assert not any(w.is_alive() for w in writers)
    assert not any(w.error for w in writers), [w.error for w in writers]

    s.start_again()                                 # recovery runs at start

    keys = [k for w in writers for k in w.sent]
    got = gets_all(s.port, keys)
    lost, wrong = [], []
    for w in writers:
        for key, idx in w.acked.items():
            if key not in got:
                lost.append(key)
                continue
            flags, value, _ = got[key]
            # the last acknowledged write, or a later one that was sent but not yet acked
            if (flags, value) not in w.sent[key][idx:]:
                wrong.append((key, (flags, value[:40]), w.sent[key][idx][1][:40]))
    assert not lost, "acknowledged writes lost after kill -9: %r" % lost[:10]
    assert not wrong, "wrong value/flags after kill -9 (key, got, last acked): %r" % wrong[:5]

    # CAS: no reuse after the crash
    cas_before = [c for w in writers for c in w.cas_seen] + [v[2] for v in got.values()]
    assert new_cas(s.port, b"after_kill") > max(cas_before)
    cas_now = [v[2] for v in got.values()]
    assert len(set(cas_now)) == len(cas_now), "two items share a CAS value"

    # exptime survived the crash: short* expire on time, long* stay
    shorts = [b"short%d" % i for i in range(10)]
    longs = [b"long%d" % i for i in range(10)]
    assert sorted(gets_all(s.port, longs)) == sorted(longs)
    mctest.wait_for(lambda: not gets_all(s.port, shorts), 10, 0.05, "short* to expire")
    assert time.monotonic() - t_short < 7.5, "exptime was lost or reset by the crash"
    got = gets_all(s.port, longs)
    assert sorted(got) == sorted(longs) and got[b"long3"][:2] == (3, b"l")

    # and the recovered environment shuts down cleanly
    assert s.stop() == 0, s.log_text()
