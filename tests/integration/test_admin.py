"""mcstore-admin: a hot backup taken under write load restores to a server holding every write
acknowledged before the backup began; dump | load round-trips 100,000 items byte for byte; load
and restore refuse a home a server runs on; Debian's db5.3_verify passes on a backup; malformed
dumps are refused with an error naming the record; the progress bar appears on a terminal only.
"""

import os
import pty
import random
import shutil
import subprocess
import threading
import time

import pytest

import mctest
from mctest import storage_cmd

ADMIN_BIN = os.path.join(os.path.dirname(os.path.abspath(mctest.MCSTORE_BIN)), "mcstore-admin")
DB_VERIFY = shutil.which("db5.3_verify") or "/usr/bin/db5.3_verify"

ADMIN_DEADLINE = 120.0      # seconds any single mcstore-admin run may take
WRITE_DEADLINE = 60.0       # seconds the writers of the hot-backup test may run in all
ROUNDTRIP_ITEMS = 100000

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BUSY = 0, 1, 2, 3


def admin(*args, input=None, stdout=subprocess.PIPE, stdin=None, check_rc=EXIT_OK):
    """Runs mcstore-admin with a deadline; returns the CompletedProcess. check_rc=None skips
    the exit code check."""
    assert os.path.exists(ADMIN_BIN), "mcstore-admin not built: %s" % ADMIN_BIN
    p = subprocess.run([ADMIN_BIN] + [str(a) for a in args], input=input, stdin=stdin,
                       stdout=stdout, stderr=subprocess.PIPE, timeout=ADMIN_DEADLINE)
    if check_rc is not None:
        assert p.returncode == check_rc, "mcstore-admin %s: rc=%d, expected %d\nstderr: %s" % (
            " ".join(map(str, args)), p.returncode, check_rc, p.stderr.decode("utf-8", "replace"))
    return p


def parse_dump(data):
    """The dump format of doc/operations.md -> list of (key, flags, exptime, value)."""
    head, sep, rest = data.partition(b"\n")
    assert head == b"mcstore-dump 1" and sep, data[:100]
    items = []
    pos = len(head) + 1
    while True:
        eol = data.index(b"\n", pos)
        parts = data[pos:eol].split(b" ")
        if parts[0] == b"end":
            assert int(parts[1]) == len(items)
            assert eol + 1 == len(data), "bytes after the end line"
            return items
        assert parts[0] == b"set" and len(parts) == 5, data[pos:eol]
        key = decode_key(parts[1])
        n = int(parts[4])
        value = data[eol + 1:eol + 1 + n]
        assert data[eol + 1 + n:eol + 2 + n] == b"\n"
        items.append((key, int(parts[2]), int(parts[3]), value))
        pos = eol + 2 + n


def decode_key(enc):
    out = bytearray()
    i = 0
    while i < len(enc):
        if enc[i] == 0x25:      # '%'
            out.append(int(enc[i + 1:i + 3], 16))
            i += 3
        else:
            assert 0x21 <= enc[i] <= 0x7e, enc
            out.append(enc[i])
            i += 1
    return bytes(out)


def set_many(port, items, chunk=2000):
    """Stores [(key, flags, exptime, value)] with pipelined noreply sets, then checks that the
    server answered nothing but the closing version reply (no error for any set)."""
    with mctest.Conn(port, timeout=30.0) as c:
        for i in range(0, len(items), chunk):
            c.send(b"".join(storage_cmd(b"set", k, f, e, v, noreply=True)
                            for k, f, e, v in items[i:i + chunk]))
        reply = c.cmd(b"version\r\n", timeout=60.0)
        assert reply.startswith(b"VERSION "), reply


def get_many(port, keys, batch=100):
    out = {}
    with mctest.Conn(port, timeout=30.0) as c:
        for i in range(0, len(keys), batch):
            out.update(mctest.get_values(c, b"gets " + b" ".join(keys[i:i + batch]) + b"\r\n"))
    return out


def random_items(rng, n, prefix, now):
    """n items with keys that exercise the key escaping (including '%' and bytes >= 0x80),
    binary values (CR, LF, NUL...), all flag bits and absolute exptimes."""
    specials = [b"%", b"%25", b"\xc3\xa9", b"\xff", b"~", b"{}", b":"]
    items = []
    for i in range(n):
        key = prefix + b"%07d" % i
        if i % 7 == 0:
            key += specials[i % len(specials)]
        size = rng.choice((0, 1, 2, 10, 50, 100, 200, 500)) if i % 1000 else 20000
        value = rng.randbytes(size)
        if i % 5 == 0:
            value += b"\r\n\x00\nEND\r\n"
        flags = rng.choice((0, 1, 0xFFFFFFFF, 0x80000000, rng.getrandbits(32)))
        exptime = 0 if i % 3 else now + 86400 * rng.randint(40, 400)   # absolute (> 30 days)
        items.append((key, flags, exptime, value))
    return items


# ---- hot backup and restore -------------------------------------------------------------

class Writer(threading.Thread):
    """Writes w<id>:<seq> = value(seq) one at a time, recording how many were acknowledged."""

    def __init__(self, port, wid, stop):
        super().__init__(daemon=True)
        self.port, self.wid, self.stop = port, wid, stop
        self.acked = 0              # writes 0..acked-1 are acknowledged
        self.error = None

    def key(self, seq):
        return b"w%d:%07d" % (self.wid, seq)

    @staticmethod
    def value(seq):
        return (b"v%d-" % seq) * (1 + seq % 40) + bytes([seq % 256, 13, 10, 0])

    def run(self):
        deadline = time.monotonic() + WRITE_DEADLINE
        try:
            with mctest.Conn(self.port) as c:
                while not self.stop.is_set() and time.monotonic() < deadline:
                    seq = self.acked
                    reply = c.cmd(storage_cmd(b"set", self.key(seq), seq, 0, self.value(seq)))
                    assert reply == b"STORED\r\n", reply
                    self.acked = seq + 1
        except Exception as e:      # reported by the test
            self.error = e


def test_hot_backup_under_writes_restores_every_acknowledged_write(servers, tmp_path):
    src = servers.mcstore("-t", "4")
    now = int(time.time())
    rng = random.Random(5)
    base = random_items(rng, 20000, b"base:", now)
    base += [(b"big:%d" % i, i, 0, rng.randbytes(200000)) for i in range(20)]    # ~4 MB more
    set_many(src.port, base)

    stop = threading.Event()
    writers = [Writer(src.port, w, stop) for w in range(3)]
    for w in writers:
        w.start()
    mctest.wait_for(lambda: all(w.acked >= 200 for w in writers), 20.0,
                    what="writers to get going")
    # every write acknowledged by now must be in the backup
    acked_before = [w.acked for w in writers]
    backup = tmp_path / "backup"
    p = admin("backup", "-H", src.datadir, backup)
    acked_after = [w.acked for w in writers]
    stop.set()
    for w in writers:
        w.join(timeout=30.0)
        assert not w.is_alive()
        assert w.error is None, w.error
    assert sum(acked_after) > sum(acked_before), \
        "no write was acknowledged while the backup ran: it was not taken under load"
    assert p.stdout == b""
    assert (backup / "MCSTORE_BACKUP").read_bytes().startswith(b"mcstore-backup 1\n")

    # Debian's verifier on the backup. expiry.db orders its keys as numbers (its own btree
    # comparison), which db5.3_verify can only check with -o; mcstore-admin verify checks its
    # order with the right comparison.
    for db in ("items.db", "meta.db"):
        v = subprocess.run([DB_VERIFY, "-h", str(backup), db], capture_output=True,
                           timeout=ADMIN_DEADLINE)
        assert v.returncode == 0, (db, v.stdout, v.stderr)
    v = subprocess.run([DB_VERIFY, "-o", "-h", str(backup), "expiry.db"], capture_output=True,
                       timeout=ADMIN_DEADLINE)
    assert v.returncode == 0, v.stderr
    admin("verify", backup)

    # restore into a new home and serve it
    home = tmp_path / "restored"
    admin("restore", "-H", home, backup)
    dst = servers.mcstore("-t", "2", datadir=str(home))
    got = get_many(dst.port, [k for k, _, _, _ in base])
    assert {k: (f, v) for k, (f, v, _) in got.items()} == \
        {k: (f, v) for k, f, _, v in base}, "pre-loaded items differ after restore"
    for w, n_before, n_after in zip(writers, acked_before, acked_after):
        keys = [w.key(s) for s in range(n_after + 50)]
        got = get_many(dst.port, keys)
        missing = [s for s in range(n_before) if w.key(s) not in got]
        assert not missing, "writer %d: %d writes acknowledged before the backup are missing " \
            "(first %r)" % (w.wid, len(missing), missing[:5])
        for s in range(len(keys)):
            if w.key(s) in got:      # later writes may be there too, but never garbled
                assert got[w.key(s)][:2] == (s, Writer.value(s)), s
    # the restored server takes writes with CAS values above every restored one
    with mctest.Conn(dst.port) as c:
        assert c.cmd(storage_cmd(b"set", b"after-restore", 0, 0, b"x")) == b"STORED\r\n"
        new_cas = mctest.get_values(c, b"gets after-restore\r\n")[b"after-restore"][2]
    assert new_cas > max(v[2] for v in get_many(dst.port, [k for k, _, _, _ in base]).values())


def test_backup_and_restore_of_a_stopped_home_and_refusals(servers, tmp_path):
    s = servers.mcstore("-t", "1")
    items = [(b"k%03d" % i, i, 0, b"value %d" % i) for i in range(300)]
    set_many(s.port, items)
    # restore onto a home a server runs on: refused, nothing touched
    first = tmp_path / "first"
    admin("backup", "-H", s.datadir, first)
    p = admin("restore", "-H", s.datadir, first, check_rc=EXIT_BUSY)
    assert b"running" in p.stderr and b"stop it first" in p.stderr, p.stderr
    # a backup into a directory that is not empty is refused; --replace only replaces backups
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "precious").write_bytes(b"x")
    p = admin("backup", "-H", s.datadir, tmp_path / "other", check_rc=EXIT_FAILED)
    assert b"not empty" in p.stderr
    p = admin("backup", "-H", s.datadir, "--replace", tmp_path / "other", check_rc=EXIT_FAILED)
    assert b"not an mcstore backup" in p.stderr
    assert (tmp_path / "other" / "precious").read_bytes() == b"x"
    assert not [n for n in os.listdir(tmp_path) if ".tmp-" in n], "partial backup left behind"

    rc = s.stop()
    assert rc == 0
    # no server: backup takes the lock itself; --replace replaces the earlier backup
    with mctest.Conn(s.start_again().port) as c:
        assert c.cmd(storage_cmd(b"set", b"k000", 7, 0, b"changed")) == b"STORED\r\n"
    assert s.stop() == 0
    admin("backup", "-H", s.datadir, "--replace", first)
    home = tmp_path / "home2"
    admin("restore", "-H", home, first)
    s2 = servers.mcstore("-t", "1", datadir=str(home))
    got = get_many(s2.port, [k for k, _, _, _ in items])
    assert got[b"k000"][:2] == (7, b"changed")
    assert {k: v[:2] for k, v in got.items() if k != b"k000"} == \
        {k: (f, v) for k, f, _, v in items if k != b"k000"}


# ---- dump and load --------------------------------------------------------------------

def test_dump_load_roundtrip_100k_items_byte_for_byte(servers, tmp_path):
    src = servers.mcstore("-t", "4")
    now = int(time.time())
    items = random_items(random.Random(1), ROUNDTRIP_ITEMS, b"rt:", now)
    set_many(src.port, items)

    # dump while the server runs, to a file
    d1 = tmp_path / "first.dump"
    admin("dump", "-H", src.datadir, d1)
    data1 = d1.read_bytes()
    assert data1.startswith(b"mcstore-dump 1\n") and data1.endswith(b"end %d\n" % len(items))
    dumped = parse_dump(data1)
    assert dumped == sorted(items), "the dump does not hold exactly the items written"

    # dump | load into a new home (no server there), then a second dump of it
    home = tmp_path / "loaded"
    dump = subprocess.Popen([ADMIN_BIN, "dump", "-H", src.datadir], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        load = admin("load", "-H", home, stdin=dump.stdout)
    finally:
        dump.stdout.close()
        assert dump.wait(timeout=ADMIN_DEADLINE) == 0, dump.stderr.read()
        dump.stderr.close()
    assert b"loaded %d items" % len(items) in load.stderr, load.stderr
    second = admin("dump", "-H", home).stdout
    assert second == data1, "a second dump after load differs from the first"

    # the loaded home serves the items, with fresh CAS values from its sequence
    dst = servers.mcstore("-t", "2", datadir=str(home))
    sample = random.Random(2).sample(items, 2000)
    got = get_many(dst.port, [k for k, _, _, _ in sample])
    assert {k: v[:2] for k, v in got.items()} == {k: (f, v) for k, f, _, v in sample}
    cas = [v[2] for v in got.values()]
    assert len(set(cas)) == len(cas)


class Overwriter(threading.Thread):
    """Overwrites keys u:0..n-1 round and round with values that name their key and round."""

    def __init__(self, port, n, stop, start_at):
        super().__init__(daemon=True)
        self.port, self.n, self.stop, self.i = port, n, stop, start_at
        self.writes = 0
        self.error = None

    @staticmethod
    def value(i, rnd):
        return b"u:%d|%d|" % (i, rnd) + b"=" * (i % 300)

    def run(self):
        deadline = time.monotonic() + WRITE_DEADLINE
        try:
            with mctest.Conn(self.port) as c:
                while not self.stop.is_set() and time.monotonic() < deadline:
                    i = self.i % self.n
                    reply = c.cmd(storage_cmd(b"set", b"u:%d" % i, 1, 0,
                                              self.value(i, self.i // self.n)))
                    assert reply == b"STORED\r\n", reply
                    self.i += 1
                    self.writes += 1
        except Exception as e:
            self.error = e


def test_dump_while_writers_overwrite_is_consistent_per_item(servers, tmp_path):
    n = 20000
    s = servers.mcstore("-t", "4")
    set_many(s.port, [(b"u:%d" % i, 1, 0, Overwriter.value(i, 0)) for i in range(n)])
    stop = threading.Event()
    writers = [Overwriter(s.port, n, stop, k * n // 3) for k in range(3)]
    for w in writers:
        w.start()
    mctest.wait_for(lambda: all(w.writes >= 100 for w in writers), 20.0,
                    what="writers to get going")
    try:
        before = sum(w.writes for w in writers)
        data = admin("dump", "-H", s.datadir).stdout
        during = sum(w.writes for w in writers) - before
    finally:
        stop.set()
        for w in writers:
            w.join(timeout=30.0)
    for w in writers:
        assert w.error is None, w.error
    assert during > 0, "no write happened while the dump ran"
    items = parse_dump(data)
    assert [k for k, _, _, _ in items] == sorted(b"u:%d" % i for i in range(n))
    for key, flags, exptime, value in items:
        i = int(key[2:])
        head = value.split(b"|")
        assert flags == 1 and exptime == 0
        assert head[0] == key and value == Overwriter.value(i, int(head[1])), (key, value)


def test_load_gives_new_cas_values_and_replaces_same_keys(servers, tmp_path):
    s = servers.mcstore("-t", "1")
    set_many(s.port, [(b"old%d" % i, 0, 0, b"o") for i in range(50)] +
             [(b"same", 1, 0, b"before")])
    old_cas = max(v[2] for v in get_many(s.port, [b"old%d" % i for i in range(50)]).values())
    assert s.stop() == 0
    now = int(time.time())
    dump = (b"mcstore-dump 1\n"
            b"set new%25key 5 0 3\nabc\n"
            b"set same 2 " + b"%d" % (now + 86400 * 100) + b" 5\nafter\n"
            b"set gone 0 " + b"%d" % (now - 10) + b" 4\ngone\n"
            b"end 3\n")
    p = admin("load", "-H", s.datadir, input=dump)
    assert b"loaded 2 items" in p.stderr and b"skipped 1 already expired" in p.stderr, p.stderr
    s.start_again()
    got = get_many(s.port, [b"new%key", b"same", b"gone", b"old0"])
    assert got[b"new%key"][:2] == (5, b"abc")
    assert got[b"same"][:2] == (2, b"after")
    assert b"gone" not in got and b"old0" in got
    assert got[b"new%key"][2] > old_cas and got[b"same"][2] > old_cas
    with mctest.Conn(s.port) as c:
        assert c.cmd(storage_cmd(b"set", b"later", 0, 0, b"l")) == b"STORED\r\n"
        later = mctest.get_values(c, b"gets later\r\n")[b"later"][2]
    assert later > max(got[b"new%key"][2], got[b"same"][2])


def test_dump_leaves_out_expired_and_flushed_items(servers):
    s = servers.mcstore("-t", "1", "--sweep-interval-ms", "60000")
    set_many(s.port, [(b"flushed%d" % i, 0, 0, b"f") for i in range(20)])
    with mctest.Conn(s.port) as c:
        assert c.cmd(b"flush_all\r\n") == b"OK\r\n"
        assert c.cmd(storage_cmd(b"set", b"short", 0, 1, b"s")) == b"STORED\r\n"
        assert c.cmd(storage_cmd(b"set", b"live", 3, 0, b"here")) == b"STORED\r\n"
        mctest.wait_for(lambda: mctest.get_values(c, b"get short\r\n") == {}, 5.0,
                        interval=0.05, what="the short item to expire")
    items = parse_dump(admin("dump", "-H", s.datadir).stdout)
    assert items == [(b"live", 3, 0, b"here")]


def test_load_refused_while_a_server_runs(servers):
    s = servers.mcstore("-t", "1")
    with mctest.Conn(s.port) as c:
        assert c.cmd(storage_cmd(b"set", b"mine", 1, 0, b"untouched")) == b"STORED\r\n"
    p = admin("load", "-H", s.datadir, input=b"mcstore-dump 1\nset mine 2 0 3\nnew\nend 1\n",
              check_rc=EXIT_BUSY)
    err = p.stderr.decode()
    assert "a server (pid %d) is running on" % s.pid in err, err
    with mctest.Conn(s.port) as c:
        assert mctest.get_values(c, b"get mine\r\n") == {b"mine": (1, b"untouched", None)}


@pytest.mark.parametrize("dump,message", [
    (b"", b"the dump is empty"),
    (b"hello\n", b"not an mcstore dump"),
    (b"mcstore-dump 2\nend 0\n", b"unsupported dump version '2'"),
    (b"mcstore-dump 1\nset a 0 0 3\nabc\n", b"truncated"),
    (b"mcstore-dump 1\nset a 0 0 5\nabc\n", b"ends inside the value"),
    (b"mcstore-dump 1\nset a 0 0 2\nabc\nend 1\n", b"not followed by a newline"),
    (b"mcstore-dump 1\nset a%zz 0 0 1\nx\nend 1\n", b"bad key"),
    (b"mcstore-dump 1\nset a b 0 0 1\nx\nend 1\n", b"expected 'set"),
    (b"mcstore-dump 1\nset a -1 0 1\nx\nend 1\n", b"bad flags"),
    (b"mcstore-dump 1\nset a 0 4294967296 1\nx\nend 1\n", b"bad exptime"),
    (b"mcstore-dump 1\nset a 0 0 1\nx\nend 2\n", b"says 2 items but the dump has 1"),
    (b"mcstore-dump 1\nend 0\nset a 0 0 1\nx\n", b"data after the 'end' line"),
    (b"mcstore-dump 1\nset " + b"k" * 251 + b" 0 0 1\nx\nend 1\n", b"bad key"),
])
def test_load_refuses_malformed_dumps(tmp_path, dump, message):
    home = tmp_path / "home"
    p = admin("load", "-H", home, input=dump, check_rc=EXIT_FAILED)
    assert message in p.stderr, p.stderr
    if b"dump record" in p.stderr:
        assert b"(at byte " in p.stderr


def test_progress_bar_only_on_a_terminal(tmp_path):
    dump = b"mcstore-dump 1\n" + b"".join(b"set k%05d 0 0 3\nabc\n" % i
                                          for i in range(5000)) + b"end 5000\n"
    src = tmp_path / "in.dump"
    src.write_bytes(dump)
    p = admin("load", "-H", tmp_path / "a", src)
    assert b"\r" not in p.stderr and b"%" not in p.stderr, p.stderr

    master, slave = os.openpty()
    try:
        proc = subprocess.Popen([ADMIN_BIN, "load", "-H", str(tmp_path / "b"), str(src)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=slave)
        os.close(slave)
        slave = None
        out = mctest.read_terminal(master, ADMIN_DEADLINE)
        assert proc.wait(timeout=ADMIN_DEADLINE) == 0, out
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)
    assert b"\rload" in out and b"100%" in out and b"loaded 5000 items" in out, out


def test_usage_and_exit_codes(tmp_path):
    assert b"Usage:" in admin("-h").stdout
    assert admin(check_rc=EXIT_USAGE).stderr.startswith(b"Usage:")
    assert b"unknown command" in admin("frobnicate", check_rc=EXIT_USAGE).stderr
    assert b"-H HOME" in admin("dump", check_rc=EXIT_USAGE).stderr
    assert b"needs one DIR" in admin("backup", "-H", tmp_path, check_rc=EXIT_USAGE).stderr
    p = admin("dump", "-H", tmp_path / "nothing", check_rc=EXIT_FAILED)
    assert b"no data home at" in p.stderr
    (tmp_path / "empty").mkdir()
    p = admin("backup", "-H", tmp_path / "empty", tmp_path / "b", check_rc=EXIT_FAILED)
    assert b"not an mcstore data home (no items.db)" in p.stderr
    p = admin("restore", "-H", tmp_path / "h", tmp_path / "empty", check_rc=EXIT_FAILED)
    assert b"not an mcstore backup" in p.stderr
