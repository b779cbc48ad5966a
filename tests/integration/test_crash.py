"""Crash test: kill -9 at random moments under a concurrent write load, in the durability modes
that promise to survive it (`os` and `fsync`); after every restart each acknowledged write is
there with its last acknowledged value and flags, and nothing acknowledged as gone came back.

Writers (one connection each) run set/add/append/prepend/incr/delete/cas. So that the check
stays exact although they collide:

- every writer owns a few keys ("o<w>_<j>") and keeps an exact model of them: after a restart a
  key holds the model's value, or, for the one operation in flight when the server died (sent,
  no reply), the value that operation would have left;
- all writers hammer shared counters with incr: the value after a restart is the value at the
  last restart plus every acknowledged delta plus some subset of the in-flight ones, and no
  smaller than any value an incr reply reported;
- all writers set shared keys to values tagged with writer and sequence: the value after a
  restart is one that was written (acknowledged or in flight), and not one that some
  acknowledged set was sent after in real time (that set happened later and must have won);
- all writers append unique tokens to shared keys: after a restart every acknowledged token is
  there exactly once, nothing unknown is, and a token acknowledged before another was sent
  comes first.

The model is resynchronised to what the server has after each restart (the in-flight
operations make it one of several allowed states), and the next round builds on it, so a write
acknowledged in round 1 and never touched again is checked after every later kill.

CAS: within a restart, items have distinct CAS values; a write after a crash gets a CAS larger
than every CAS seen before it; after the last crash every item is rewritten and all the new CAS
values are distinct and larger than every CAS seen before.

MCSTORE_CRASH_SEED=N replays the same random choices (the timing still varies).
"""

import os
import random
import threading
import time

import pytest

import mctest
from mctest import storage_cmd

WRITERS = 5
OWNED_PER_WRITER = 7                 # 35 owned keys
COUNTERS = [b"ctr_%d" % j for j in range(5)]
SHARED_SETS = [b"shs_%d" % j for j in range(5)]
SHARED_APPENDS = [b"sha_%d" % j for j in range(5)]   # 50 keys in all
KILLS_PER_MODE = 20
KILL_DELAY = (0.05, 0.5)             # seconds into the load of a round
ROUND_JOIN = 10.0                    # writers must notice the kill within this
MAX_OPS_PER_ROUND = 20000            # per writer: the loops are bounded even if a kill misfires
APPEND_RESET = 16 * 1024             # shared append keys are reset (between rounds) past this
MODE_DEADLINE = 45.0                 # seconds for all rounds of one mode

SEED = int(os.environ.get("MCSTORE_CRASH_SEED", random.randrange(1 << 30)))


class Mismatch(Exception):
    """A complete reply that contradicts the model: a bug whether or not a kill is under way."""


class Shared:
    """Histories of the shared keys since the last restart (appended to by all writers)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counter_base = {}      # key -> int value at the last resync
        self.counter_ops = {k: [] for k in COUNTERS}   # [writer, delta, reply or None]
        self.set_base = {}          # key -> (flags, value) at the last resync
        self.set_ops = {k: [] for k in SHARED_SETS}    # [(flags, value), send_t, ack_t]
        self.append_base = {}       # key -> value at the last resync
        self.append_ops = {k: {} for k in SHARED_APPENDS}  # token -> [send_t, ack_t]
        self.max_cas = 0            # the largest CAS any gets returned so far

    def saw_cas(self, cas):
        with self.lock:
            self.max_cas = max(self.max_cas, cas)

    def clear(self):
        for k in COUNTERS:
            self.counter_ops[k] = []
        for k in SHARED_SETS:
            self.set_ops[k] = []
        for k in SHARED_APPENDS:
            self.append_ops[k] = {}


def owned_keys(w):
    return [b"o%d_%d" % (w, j) for j in range(OWNED_PER_WRITER)]


def is_number(v):
    return 0 < len(v) <= 18 and v.isdigit()


class Writer:
    """One client: a model of its own keys, a connection per round, and at most one
    operation in flight (sent, reply not read) when the server dies."""

    def __init__(self, w, shared):
        self.w = w
        self.shared = shared
        self.rng = random.Random(SEED * 31 + w)
        self.model = {k: None for k in owned_keys(w)}     # key -> (flags, value) or None
        self.pending = None         # (key, state if it was applied) of an owned-key write
        self.in_flight = False      # a write was sent and its reply not read
        self.seq = 0
        self.acked = 0
        self.last_reply = {}        # counter -> the last value an incr reply gave this writer
        self.error = None

    # --- one round -------------------------------------------------------------------------

    def run_round(self, port, killing):
        self.pending = None
        self.in_flight = False
        try:
            c = mctest.Conn(port, timeout=5)
        except OSError as e:
            self.error = "connect: %r" % e
            return
        try:
            for _ in range(MAX_OPS_PER_ROUND):
                if killing.is_set():
                    break
                self.seq += 1
                self.one_op(c)
        except Mismatch as e:
            self.error = "writer %d: %s" % (self.w, e)
        except (OSError, AssertionError, ValueError, IndexError, KeyError) as e:
            # the connection broke or a reply was cut short: only the kill may do that
            if not killing.is_set():
                self.error = "writer %d before the kill: %r" % (self.w, e)
        finally:
            c.close()

    def one_op(self, c):
        r = self.rng.random()
        if r < 0.50:
            self.owned_op(c)
        elif r < 0.70:
            self.counter_op(c)
        elif r < 0.85:
            self.shared_set_op(c)
        else:
            self.shared_append_op(c)

    def send(self, c, req):
        self.in_flight = True
        c.send(req)

    def expect(self, reply, want, what):
        if reply != want:
            raise Mismatch("%s: got %r, expected %r" % (what, reply, want))
        self.acked += 1
        self.in_flight = False

    def text(self, maxlen=120):
        return (b"w%d.%d." % (self.w, self.seq)
                + bytes(self.rng.choice(b"abcdefghijklmnopqrstuvwxyz-=")
                        for _ in range(self.rng.randrange(maxlen))))

    # --- owned keys: exact model -------------------------------------------------------------

    def owned_op(self, c):
        key = self.rng.choice(list(self.model))
        cur = self.model[key]
        r = self.rng.random()
        if cur is None:
            if r < 0.40:
                op = "set"
            elif r < 0.70:
                op = "add"
            else:
                op = self.rng.choice(["append", "prepend", "incr", "delete"])
        elif is_number(cur[1]):
            op = self.rng.choice(["incr", "incr", "incr", "set", "add", "append", "delete", "cas"])
        else:
            op = self.rng.choice(["set", "set", "append", "prepend", "delete", "cas"])
            if len(cur[1]) > 2000 and op in ("append", "prepend"):
                op = "set"
        what = "%s %r (model %r)" % (op, key, None if cur is None else (cur[0], cur[1][:40]))

        if op in ("set", "add"):
            flags = self.rng.randrange(1 << 32)
            if self.rng.random() < 0.4:
                value = b"%d" % self.rng.randrange(10 ** 6)
            else:
                value = self.text()
            req = storage_cmd(op.encode(), key, flags, 0, value)
            if op == "add" and cur is not None:
                new, want = cur, b"NOT_STORED\r\n"
            else:
                new, want = (flags, value), b"STORED\r\n"
        elif op in ("append", "prepend"):
            tok = b"+%s%d+" % (b"apnd" if op == "append" else b"prep", self.seq)
            # flags in an append are ignored: the item keeps its own
            req = storage_cmd(op.encode(), key, self.rng.randrange(1 << 32), 0, tok)
            if cur is None:
                new, want = None, b"NOT_STORED\r\n"
            else:
                new = (cur[0], cur[1] + tok if op == "append" else tok + cur[1])
                want = b"STORED\r\n"
        elif op == "incr":
            d = self.rng.randrange(1, 1000)
            req = b"incr %s %d\r\n" % (key, d)
            if cur is None:
                new, want = None, b"NOT_FOUND\r\n"
            else:
                n = b"%d" % (int(cur[1]) + d)
                new, want = (cur[0], n), n + b"\r\n"
        elif op == "delete":
            req = b"delete %s\r\n" % key
            new, want = None, (b"NOT_FOUND\r\n" if cur is None else b"DELETED\r\n")
        else:   # cas: read it (the read must show the model), then write with its CAS
            got = mctest.get_values(c, b"gets %s\r\n" % key)
            if key not in got or got[key][:2] != cur:
                raise Mismatch("%s: gets returned %r" % (what, got))
            cas = got[key][2]
            self.shared.saw_cas(cas)
            flags, value = self.rng.randrange(1 << 32), self.text()
            req = storage_cmd(b"cas", key, flags, 0, value, extra=b"%d" % cas)
            new, want = (flags, value), b"STORED\r\n"

        self.pending = (key, new)
        self.send(c, req)
        reply = c.read_until(b"\r\n")
        self.expect(reply, want, what)
        self.model[key] = new
        self.pending = None

    # --- shared keys ---------------------------------------------------------------------------

    def counter_op(self, c):
        key = self.rng.choice(COUNTERS)
        d = self.rng.randrange(1, 10)
        entry = [self.w, d, None]
        with self.shared.lock:
            self.shared.counter_ops[key].append(entry)
        self.send(c, b"incr %s %d\r\n" % (key, d))
        reply = c.read_until(b"\r\n")
        if not reply[:-2].isdigit():
            raise Mismatch("incr %r: got %r" % (key, reply))
        v = int(reply)
        if v <= self.last_reply.get(key, -1):
            raise Mismatch("incr %r: %d after this writer saw %d" % (key, v, self.last_reply[key]))
        self.last_reply[key] = v
        entry[2] = v
        self.acked += 1
        self.in_flight = False

    def shared_set_op(self, c):
        key = self.rng.choice(SHARED_SETS)
        flags = ((self.w + 1) << 24) | (self.seq & 0xFFFFFF)
        value = b"s" + self.text(60)
        entry = [(flags, value), time.monotonic(), None]
        with self.shared.lock:
            self.shared.set_ops[key].append(entry)
        self.send(c, storage_cmd(b"set", key, flags, 0, value))
        reply = c.read_until(b"\r\n")
        self.expect(reply, b"STORED\r\n", "set %r" % key)
        entry[2] = time.monotonic()

    def shared_append_op(self, c):
        key = self.rng.choice(SHARED_APPENDS)
        token = b"%d.%d" % (self.w, self.seq)
        entry = [time.monotonic(), None]
        with self.shared.lock:
            self.shared.append_ops[key][token] = entry
        self.send(c, storage_cmd(b"append", key, 0, 0, b"|" + token))
        reply = c.read_until(b"\r\n")
        self.expect(reply, b"STORED\r\n", "append %r" % key)
        entry[1] = time.monotonic()


# --- checks after a restart ----------------------------------------------------------------------

def gets_all(port, keys, batch=25):
    out = {}
    with mctest.Conn(port, timeout=10) as c:
        for i in range(0, len(keys), batch):
            out.update(mctest.get_values(c, b"gets " + b" ".join(keys[i:i + batch]) + b"\r\n"))
    return out


def subset_sums(values):
    sums = {0}
    for v in values:
        sums |= {s + v for s in sums}
    return sums


def check_and_resync(writers, shared, got, where):
    """Checks what the server has (got: gets of every key) against the writers' models and the
    shared histories, then makes that state the base of the next round. Returns a list of
    problems (empty when everything acknowledged is there)."""
    problems = []

    def state(key):
        return got[key][:2] if key in got else None

    for w in writers:
        for key, want in w.model.items():
            allowed = [want]
            if w.pending is not None and w.pending[0] == key:
                allowed.append(w.pending[1])
            have = state(key)
            if have not in allowed:
                problems.append("%s: %r key %r has %r, acknowledged state %r" % (
                    where, "owned by writer %d" % w.w, key, short(have), short(want))
                    + (" (or in-flight %r)" % short(w.pending[1]) if len(allowed) > 1 else ""))
            w.model[key] = have
        w.pending = None

    for key in COUNTERS:
        have = state(key)
        ops = shared.counter_ops[key]
        base = shared.counter_base[key]
        acked = sum(d for _, d, r in ops if r is not None)
        inflight = [d for _, d, r in ops if r is None]
        top = max([r for _, _, r in ops if r is not None], default=base)
        if have is None or not is_number(have[1]):
            problems.append("%s: counter %r is %r (base %d, +%d acknowledged)"
                            % (where, key, have, base, acked))
            continue
        v = int(have[1])
        if v - base - acked not in subset_sums(inflight) or v < top:
            problems.append("%s: counter %r is %d: base %d + %d acknowledged + some of in-flight "
                            "%r expected, and >= %d (largest acknowledged reply)"
                            % (where, key, v, base, acked, inflight, top))
        shared.counter_base[key] = v

    for key in SHARED_SETS:
        have = state(key)
        ops = shared.set_ops[key]
        # (state, send_t, ack_t): the base was acknowledged before anything of this round
        writes = [(shared.set_base[key], float("-inf"), float("-inf"))] + [tuple(e) for e in ops]
        latest_send_acked = max((s for _, s, a in writes if a is not None), default=float("-inf"))
        candidates = [st for st, s, a in writes if a is None or a >= latest_send_acked]
        if have not in candidates:
            problems.append("%s: shared key %r is %r; allowed: %r" % (
                where, key, short(have), [short(c) for c in candidates][:8]))
        shared.set_base[key] = have

    for key in SHARED_APPENDS:
        have = state(key)
        base = shared.append_base[key]
        ops = shared.append_ops[key]
        if have is None or not have[1].startswith(base[1]) or have[0] != base[0]:
            problems.append("%s: append key %r is %r, base %r" % (where, key, short(have),
                                                                   short(base)))
            continue
        tail = have[1][len(base[1]):]
        tokens = tail.split(b"|")[1:] if tail else []
        if tail and not tail.startswith(b"|"):
            problems.append("%s: append key %r has a torn tail %r" % (where, key, tail[:40]))
        seen = set()
        max_send = float("-inf")
        for t in tokens:
            if t not in ops:
                problems.append("%s: append key %r holds token %r nobody sent" % (where, key, t))
                continue
            if t in seen:
                problems.append("%s: append key %r holds token %r twice" % (where, key, t))
            seen.add(t)
            send_t, ack_t = ops[t]
            if ack_t is not None and ack_t < max_send:
                problems.append("%s: append key %r: token %r (acknowledged before an earlier "
                                "token was sent) comes after it" % (where, key, t))
            max_send = max(max_send, send_t)
        missing = [t for t, (_, a) in ops.items() if a is not None and t not in seen]
        if missing:
            problems.append("%s: append key %r lost %d acknowledged tokens, e.g. %r"
                            % (where, key, len(missing), missing[:5]))
        shared.append_base[key] = have

    shared.clear()
    return problems


def short(st):
    if st is None:
        return None
    return (st[0], st[1][:48] + (b"..." if len(st[1]) > 48 else b""))


def all_keys(writers):
    return [k for w in writers for k in w.model] + COUNTERS + SHARED_SETS + SHARED_APPENDS


def init_shared(port, shared, reset_appends=False):
    """(Re)creates the shared keys' base values with the writers idle."""
    with mctest.Conn(port) as c:
        for key in COUNTERS:
            if key not in shared.counter_base:
                assert c.cmd(storage_cmd(b"set", key, 0, 0, b"0")) == b"STORED\r\n"
                shared.counter_base[key] = 0
        for key in SHARED_SETS:
            if key not in shared.set_base:
                assert c.cmd(storage_cmd(b"set", key, 0, 0, b"init")) == b"STORED\r\n"
                shared.set_base[key] = (0, b"init")
        for key in SHARED_APPENDS:
            base = shared.append_base.get(key)
            if base is None or (reset_appends and len(base[1]) > APPEND_RESET):
                assert c.cmd(storage_cmd(b"set", key, 7, 0, b"A")) == b"STORED\r\n"
                shared.append_base[key] = (7, b"A")


def check_cas(got, shared, where, must_exceed=None):
    """Distinct CAS values among the items; with must_exceed, every one larger than it."""
    cas = [v[2] for v in got.values()]
    problems = []
    if len(set(cas)) != len(cas):
        dup = sorted(c for c in set(cas) if cas.count(c) > 1)
        problems.append("%s: items share CAS values %r" % (where, dup[:5]))
    if must_exceed is not None and cas and min(cas) <= must_exceed:
        problems.append("%s: CAS %d reused/not above %d, the largest seen before"
                        % (where, min(cas), must_exceed))
    for c in cas:
        shared.saw_cas(c)
    return problems


def probe_cas(port, shared, where):
    """A write after a restart gets a CAS above every CAS seen before."""
    before = shared.max_cas
    with mctest.Conn(port) as c:
        assert c.cmd(storage_cmd(b"set", b"probe", 0, 0, b"p")) == b"STORED\r\n"
        cas = mctest.get_values(c, b"gets probe\r\n")[b"probe"][2]
    shared.saw_cas(cas)
    if cas <= before:
        return ["%s: a new write got CAS %d, not above %d seen before the kill"
                % (where, cas, before)]
    return []


@pytest.mark.parametrize("durability", ["os", "fsync"])
def test_kill9_at_random_moments_keeps_every_acknowledged_write(servers, durability):
    t_start = time.monotonic()
    rng = random.Random(SEED)
    s = servers.mcstore("-t", "2", "--durability", durability, "--checkpoint-sec", "1")
    shared = Shared()
    writers = [Writer(w, shared) for w in range(WRITERS)]
    init_shared(s.port, shared)
    keys = all_keys(writers)
    seed_note = " [MCSTORE_CRASH_SEED=%d]" % SEED
    stats = []      # per round: (acked in the round, ops in flight at the kill)

    for rnd in range(KILLS_PER_MODE):
        assert time.monotonic() - t_start < MODE_DEADLINE, \
            "only %d rounds within %.0f s" % (rnd, MODE_DEADLINE)
        where = "%s round %d" % (durability, rnd)
        acked_before = sum(w.acked for w in writers)
        killing = threading.Event()
        threads = [threading.Thread(target=w.run_round, args=(s.port, killing), daemon=True)
                   for w in writers]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(*KILL_DELAY))        # the only sleep: the random kill moment
        killing.set()
        s.kill()
        for t in threads:
            t.join(ROUND_JOIN)
        assert not any(t.is_alive() for t in threads), where + ": a writer hung after the kill"
        errors = [w.error for w in writers if w.error]
        assert not errors, where + ": " + "; ".join(errors) + seed_note
        inflight = sum(1 for w in writers if w.in_flight)
        stats.append((sum(w.acked for w in writers) - acked_before, inflight))

        s.start_again()                             # recovery runs at start
        got = gets_all(s.port, keys)
        problems = check_and_resync(writers, shared, got, where)
        problems += check_cas(got, shared, where)
        problems += probe_cas(s.port, shared, where)
        assert not problems, "\n".join(problems[:20]) + seed_note
        init_shared(s.port, shared, reset_appends=True)

    total = sum(a for a, _ in stats)
    assert total >= 20 * KILLS_PER_MODE, "too little load to mean anything: %r" % stats
    assert sum(1 for a, _ in stats if a > 0) >= KILLS_PER_MODE // 2, \
        "most kills hit an idle server: %r" % stats

    # After the last crash: every item rewritten once gets a fresh CAS, all distinct and
    # larger than every CAS seen before.
    seen = shared.max_cas
    got = gets_all(s.port, keys)
    with mctest.Conn(s.port) as c:
        for key, (flags, value, _) in got.items():
            assert c.cmd(storage_cmd(b"set", key, flags, 0, value)) == b"STORED\r\n"
    after = gets_all(s.port, keys)
    assert {k: v[:2] for k, v in after.items()} == {k: v[:2] for k, v in got.items()}
    problems = check_cas(after, shared, "after the last crash", must_exceed=seen)
    assert not problems, "\n".join(problems) + seed_note

    # and the recovered store survives a clean restart unchanged, CAS included
    s.restart()
    assert gets_all(s.port, keys) == after
    print("%s: %d kills, %d acknowledged writes, per round (acked, in flight at kill): %r, "
          "%.1f s%s" % (durability, KILLS_PER_MODE, total, stats,
                        time.monotonic() - t_start, seed_note))
