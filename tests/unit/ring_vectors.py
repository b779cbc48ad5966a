#!/usr/bin/python3
"""Prints the hash vectors of tests/unit/test_ring.c as the real implementations compute them.

Run by hand (not by make check) with Debian's python3, nutcracker and libhashkit2 installed:
    /usr/bin/python3 tests/unit/ring_vectors.py

- libmemcached's functions come from libhashkit.so.2 itself, called through ctypes.
- twemproxy's come from /usr/sbin/nutcracker: with `distribution: modula` and N servers of
  weight 1 it sends a key to server hash % N (servers in name order), so writing each key
  through pools of N = 64, 63, 61, 59, 55, 53 fake backends and seeing which backend got it
  gives hash mod each N, and the Chinese remainder theorem gives the 32-bit hash.
- crc32a is zlib's CRC-32, which Python's zlib module computes.
- The twemproxy owner strings come from nutcracker with `distribution: ketama` over fake
  backends on fixed loopback addresses (127.0.0.2:11211 names the point "127.0.0.2"), for
  "key:0".."key:1999" (and "{gN}:key:I" for the hash_tag pool).
Everything listens on 127.0.0.1 only, on free ports; nutcracker is stopped by its PID.
"""

import ctypes
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib

HOST = "127.0.0.1"
NUTCRACKER = os.environ.get("NUTCRACKER_BIN", "/usr/sbin/nutcracker")
MODULI = [64, 63, 61, 59, 55, 53]      # pairwise coprime, product > 2^32
KEYS = [b"a", b"ab", b"abc", b"key:0", b"123456789", b"inbox:123:456",
        b"a-longer-key:with-several-blocks:01234567", "caf\u00e9:\u00fc\u00df".encode(),
        b"\xff\xfe\xfd", b"x\x80\x81\x82\x83\x84\x85"]
TWEMPROXY = ["one_at_a_time", "md5", "crc16", "crc32", "crc32a", "fnv1_64", "fnv1a_64",
             "fnv1_32", "fnv1a_32", "hsieh", "murmur", "jenkins"]
LIBHASHKIT = ["one_at_a_time", "md5", "crc32", "fnv1_64", "fnv1a_64", "fnv1_32", "fnv1a_32",
              "murmur", "jenkins"]     # Debian's build has no hsieh


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# the owner vectors: fixed addresses, as ring points depend on the server text
FIXED = [("127.0.0.2", 11211), ("127.0.0.1", 26102), ("127.0.0.3", 11211)]
NOWNER_KEYS = 2000


class Backends:
    """Fake memcached servers that record which address each set key reached."""

    def __init__(self, n, fixed=()):
        self.sel = selectors.DefaultSelector()
        self.ports = []
        self.got = {}
        self.lock = threading.Lock()
        self.stop = False
        for addr in [(HOST, 0)] * n + list(fixed):
            ls = socket.socket()
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            ls.bind(addr)
            ls.listen(16)
            ls.setblocking(False)
            where = ls.getsockname()
            if addr[1] == 0:
                self.ports.append(where[1])
                where = where[1]
            self.sel.register(ls, selectors.EVENT_READ, ("listen", where))
        # nutcracker orders servers by name; equal-length names sort like the port numbers
        assert all(10000 <= p <= 65535 for p in self.ports), self.ports
        self.ports.sort()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        bufs = {}
        while not self.stop:
            for k, _ in self.sel.select(timeout=0.1):
                kind, where = k.data
                if kind == "listen":
                    c, _ = k.fileobj.accept()
                    c.setblocking(False)
                    bufs[c] = b""
                    self.sel.register(c, selectors.EVENT_READ, ("conn", where))
                    continue
                c = k.fileobj
                try:
                    data = c.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    self.sel.unregister(c)
                    c.close()
                    continue
                bufs[c] += data
                while b"\r\n" in bufs[c]:
                    line, rest = bufs[c].split(b"\r\n", 1)
                    parts = line.split(b" ")
                    if parts[0] == b"set":
                        need = int(parts[4]) + 2
                        if len(rest) < need:
                            break
                        rest = rest[need:]
                        with self.lock:
                            self.got[parts[1]] = where
                        c.sendall(b"STORED\r\n")
                    else:
                        c.sendall(b"ERROR\r\n")
                    bufs[c] = rest

    def close(self):
        self.stop = True
        self.thread.join(5)


def send_sets(port, keys):
    with socket.create_connection((HOST, port), timeout=10) as s:
        for k in keys:
            s.sendall(b"set " + k + b" 0 0 1\r\nx\r\n")
            buf = b""
            while not buf.endswith(b"\r\n"):
                chunk = s.recv(100)
                assert chunk, "nutcracker closed the connection on %r" % k
                buf += chunk
            assert buf == b"STORED\r\n", (k, buf)


def owner_pools():
    """name -> (YAML lines of the pool after listen, keys, the servers' ring labels)."""
    plain = ["%s:%d:%d" % (h, p, w) for (h, p), w in zip(FIXED, (1, 2, 5))]
    named = ["%s:%d:%d %s" % (h, p, w, n)
             for (h, p), w, n in zip(FIXED, (1, 3, 2), ("alpha", "beta", "gamma"))]
    keys = [b"key:%d" % i for i in range(NOWNER_KEYS)]
    tagged = [b"{g%d}:key:%d" % (i % 97, i) for i in range(NOWNER_KEYS)]
    return {
        "own_default": ("", plain, keys),
        "own_named_md5": ("  hash: md5\n", named, keys),
        "own_tag_murmur": ("  hash: murmur\n  hash_tag: \"{}\"\n", plain, tagged),
    }


def twemproxy_vectors(backends):
    pools, listen = [], {}
    for name, (extra, servers, _) in owner_pools().items():
        listen[name] = free_port()
        pools.append("%s:\n  listen: %s:%d\n%s  distribution: ketama\n  servers:\n%s"
                     % (name, HOST, listen[name], extra,
                        "".join("    - %s\n" % s for s in servers)))
    for h in TWEMPROXY:
        for n in MODULI:
            name = "%s_%d" % (h, n)
            listen[name] = free_port()
            servers = "".join("    - %s:%d:1\n" % (HOST, p) for p in backends.ports[:n])
            pools.append("%s:\n  listen: %s:%d\n  hash: %s\n  distribution: modula\n"
                         "  servers:\n%s" % (name, HOST, listen[name], h, servers))
    tmp = tempfile.mkdtemp(prefix="ring-vectors-")
    conf = os.path.join(tmp, "nutcracker.yml")
    with open(conf, "w") as f:
        f.write("".join(pools))
    proc = subprocess.Popen([NUTCRACKER, "-c", conf, "-s", str(free_port()), "-a", HOST,
                             "-o", os.path.join(tmp, "nutcracker.log"),
                             "-p", os.path.join(tmp, "nutcracker.pid")])
    try:
        deadline = time.monotonic() + 10
        for port in listen.values():
            while True:
                try:
                    socket.create_connection((HOST, port), timeout=1).close()
                    break
                except OSError:
                    assert proc.poll() is None, "nutcracker exited"
                    assert time.monotonic() < deadline, "nutcracker does not listen"
                    time.sleep(0.02)
        out = {}
        for h in TWEMPROXY:
            rems = {k: [] for k in KEYS}
            for n in MODULI:
                backends.got.clear()
                send_sets(listen["%s_%d" % (h, n)], KEYS)
                for k in KEYS:
                    rems[k].append(backends.ports.index(backends.got[k]))
            out[h] = [crt(rems[k]) for k in KEYS]
        for name, (_, servers, keys) in owner_pools().items():
            backends.got.clear()
            send_sets(listen[name], keys)
            order = [(h, p) for h, p in FIXED]
            out[name] = "".join(str(order.index(backends.got[k])) for k in keys)
        return out
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def crt(rems):
    x, m = 0, 1
    for r, n in zip(rems, MODULI):
        while x % n != r:
            x += m
        m *= n
    assert x < 2 ** 32, "no 32-bit hash fits the remainders %r" % (rems,)
    return x


def libhashkit_vectors():
    hk = ctypes.CDLL("libhashkit.so.2")
    out = {}
    for h in LIBHASHKIT:
        f = getattr(hk, "libhashkit_" + h)
        f.restype = ctypes.c_uint32
        f.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        out[h] = [f(k, len(k)) for k in KEYS]
    return out


def c_string(b):
    return '"' + "".join(chr(c) if 32 <= c < 127 and c not in b'"\\' else "\\x%02x" % c
                         for c in b) + '"'


def main():
    backends = Backends(max(MODULI), FIXED)
    try:
        tw = twemproxy_vectors(backends)
    finally:
        backends.close()
    lm = libhashkit_vectors()
    print("/* keys */")
    for k in KEYS:
        print("    %s, /* %d bytes */" % (c_string(k), len(k)))
    for h in TWEMPROXY:
        line = ", ".join("0x%08x" % v for v in tw[h])
        print("/* %s (nutcracker) */ {%s}" % (h, line))
        if h in lm and lm[h] != tw[h]:
            print("/* %s: libhashkit differs: {%s} */"
                  % (h, ", ".join("0x%08x" % v for v in lm[h])))
    print("/* crc32a (zlib) */ {%s}" % ", ".join("0x%08x" % zlib.crc32(k) for k in KEYS))
    for name, (extra, servers, _) in owner_pools().items():
        print("/* %s: %s %s */" % (name, extra.strip().replace("\n", ",").replace("  ", ""),
                                 ", ".join(servers)))
        s = tw[name]
        print("static const char %s[] =" % name)
        for i in range(0, len(s), 90):
            print('    "%s"%s' % (s[i:i + 90], ";" if i + 90 >= len(s) else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
