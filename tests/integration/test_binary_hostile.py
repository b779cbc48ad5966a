"""Hostile binary-protocol input against mcstore: huge announced lengths, truncated and lying
headers, long keys, unknown opcodes, random bytes. Each gets the protocol's error (or a close,
where memcached closes), the server survives, and no announced length makes it allocate: its
resident memory stays flat.

Where mcstore deliberately differs from memcached 1.6.18 it is said here:
- A value over -I is answered "Too large." at once and its body is then discarded as it
  arrives; memcached discards the whole body first and only then answers (for a 2 GiB body
  the client waits for 2 GiB to be sent).
- Lengths of 2 GiB and more: memcached computes the value length in an int, which wraps; a set
  then neither answers nor closes, and an unknown opcode's body is not discarded. mcstore
  answers and discards such a body like any other.
"""

import random
import socket
import struct
import time

import pytest

import mctest

GET, SET, NOOP, APPEND, SASL_AUTH = 0x00, 0x01, 0x0a, 0x0e, 0x21
E2BIG, EINVAL, UNKNOWN = 0x03, 0x04, 0x81
RSS_SLACK_KB = 16 * 1024    # growth allowed while hostile input streams in


def pkt(op, key=b"", ext=b"", val=b"", opaque=0, cas=0, keylen=None, extlen=None,
        bodylen=None, magic=0x80):
    kl = len(key) if keylen is None else keylen
    el = len(ext) if extlen is None else extlen
    bl = len(ext) + len(key) + len(val) if bodylen is None else bodylen
    return struct.pack(">BBHBBHIIQ", magic, op, kl, el, 0, 0, bl, opaque, cas) + ext + key + val


def read_packet(c, timeout=5.0):
    """(opcode, status, opaque, body) of the next reply packet."""
    h = c.read_exact(24, timeout)
    magic, op, keylen, extlen, _, status, bodylen, opaque, cas = struct.unpack(">BBHBBHIIQ", h)
    assert magic == 0x81, h
    return op, status, opaque, c.read_exact(bodylen, timeout)


def noop_works(port):
    with mctest.Conn(port) as c:
        c.send(pkt(NOOP, opaque=99))
        return read_packet(c)[:3] == (NOOP, 0, 99)


@pytest.fixture(scope="module")
def server(module_servers):
    return module_servers.mcstore("-t", "2", "-I", "1m")


def send_junk(c, n, chunk=1 << 20):
    block = b"\xa5" * chunk
    while n > 0:
        c.send(block[:min(n, chunk)])
        n -= min(n, chunk)


@pytest.mark.parametrize("bodylen", [2 ** 31, 2 ** 32 - 1, 64 * 1024 * 1024],
                         ids=["2GiB", "4GiB-1", "64MiB"])
def test_set_with_huge_body_is_refused_without_allocating(server, bodylen):
    rss_before = mctest.rss_kb(server.pid)
    with mctest.Conn(server.port) as c:
        c.send(pkt(SET, b"big", struct.pack(">II", 0, 0), opaque=7, bodylen=bodylen))
        op, status, opaque, body = read_packet(c)
        assert (op, status, opaque, body) == (SET, E2BIG, 7, b"Too large.")
        # the body is discarded as it arrives, never buffered
        send_junk(c, 32 * 1024 * 1024)
        assert mctest.rss_kb(server.pid) - rss_before < RSS_SLACK_KB
        c.send(pkt(NOOP, opaque=1))
        if bodylen == 64 * 1024 * 1024:
            # once the whole announced body has passed, the connection parses again
            send_junk(c, bodylen - 11 - 32 * 1024 * 1024 - 24)
            c.send(pkt(NOOP, opaque=2))
            assert read_packet(c)[:3] == (NOOP, 0, 2)
        else:
            assert c.read_available(0.2) == b""     # still swallowing: the NOOP was body
    assert server.alive()
    assert mctest.rss_kb(server.pid) - rss_before < RSS_SLACK_KB
    assert noop_works(server.port)


def test_unknown_opcode_with_2gib_body(server):
    rss_before = mctest.rss_kb(server.pid)
    with mctest.Conn(server.port) as c:
        c.send(pkt(0x60, opaque=5, bodylen=2 ** 31))
        assert read_packet(c) == (0x60, UNKNOWN, 5, b"Unknown command")
        send_junk(c, 8 * 1024 * 1024)
        assert c.read_available(0.2) == b""
    assert mctest.rss_kb(server.pid) - rss_before < RSS_SLACK_KB
    assert noop_works(server.port)


def test_sasl_with_2gib_body_when_auth_is_off(server):
    with mctest.Conn(server.port) as c:
        c.send(pkt(SASL_AUTH, b"PLAIN", opaque=5, bodylen=2 ** 31))
        assert read_packet(c) == (SASL_AUTH, UNKNOWN, 5, b"Unknown command")
        assert not c.wait_closed(0.2)


@pytest.mark.parametrize("op", [GET, SET, APPEND, 0x04, 0x05, 0x1c, 0x1d, 0x10, 0x60],
                         ids=["get", "set", "append", "delete", "incr", "touch", "gat", "stat",
                              "unknown"])
def test_255_byte_key_is_invalid_and_closes(server, op):
    ext = {SET: b"\0" * 8, 0x05: b"\0" * 20, 0x1c: b"\0" * 4, 0x1d: b"\0" * 4}.get(op, b"")
    with mctest.Conn(server.port) as c:
        c.send(pkt(op, b"k" * 255, ext, opaque=3) + pkt(NOOP))
        assert read_packet(c) == (op, EINVAL, 3, b"Invalid arguments")
        assert c.wait_closed()
        assert c.buf == b""


@pytest.mark.parametrize("keylen", [16361, 65535])
def test_header_announcing_a_huge_key_closes(server, keylen):
    """memcached reads header + extras + key into a 16 KiB buffer: a longer one closes."""
    rss_before = mctest.rss_kb(server.pid)
    with mctest.Conn(server.port) as c:
        c.send(pkt(GET, keylen=keylen, bodylen=keylen))
        assert c.wait_closed()
        assert c.buf == b""
    assert mctest.rss_kb(server.pid) - rss_before < RSS_SLACK_KB


@pytest.mark.parametrize("keylen,extlen,bodylen", [(3, 0, 2), (3, 8, 10), (0, 20, 19),
                                                   (250, 255, 504), (251, 0, 0)])
def test_lengths_that_disagree_are_unknown_and_close(server, keylen, extlen, bodylen):
    with mctest.Conn(server.port) as c:
        c.send(pkt(SET, b"k" * keylen, b"\0" * extlen, opaque=9, bodylen=bodylen))
        assert read_packet(c) == (SET, UNKNOWN, 9, b"Unknown command")
        assert c.wait_closed()


def test_truncated_header_waits_then_completes(server):
    with mctest.Conn(server.port) as c:
        whole = pkt(NOOP, opaque=4)
        for i in range(len(whole) - 1):
            c.send(whole[i:i + 1])
        assert c.read_available(0.2) == b""
        assert not c.closed
        c.send(whole[-1:])
        assert read_packet(c) == (NOOP, 0, 4, b"")


def test_truncated_header_then_eof(server):
    s = socket.create_connection((mctest.HOST, server.port))
    s.sendall(pkt(NOOP)[:13])
    s.close()
    assert noop_works(server.port)


@pytest.mark.parametrize("first", [b"\x81", b"\x00", b"\xff"])
def test_bad_magic_after_binary_start_closes(server, first):
    with mctest.Conn(server.port) as c:
        c.send(pkt(NOOP, opaque=1))
        assert read_packet(c)[:3] == (NOOP, 0, 1)
        c.send(first + pkt(NOOP)[1:])
        assert c.wait_closed()
        assert c.buf == b""


def test_many_connections_with_partial_requests_stay_small(server):
    """Each connection holds at most a header + extras + key that is being read."""
    rss_before = mctest.rss_kb(server.pid)
    conns = []
    try:
        for i in range(200):
            c = mctest.Conn(server.port)
            c.send(pkt(GET, b"k" * 250)[:200])          # a part of a 274-byte request
            conns.append(c)
        assert noop_works(server.port)
        assert mctest.rss_kb(server.pid) - rss_before < RSS_SLACK_KB
    finally:
        for c in conns:
            c.close()


def test_random_binary_garbage(server):
    """Random requests with the binary magic: the server answers or closes, never dies."""
    rng = random.Random(1234)
    rss_before = mctest.rss_kb(server.pid)
    for i in range(300):
        op = rng.choice([rng.randrange(256), rng.randrange(0x25)])
        keylen = rng.choice([0, 1, 10, 250, 251, rng.randrange(300)])
        extlen = rng.choice([0, 4, 8, 20, rng.randrange(256)])
        vlen = rng.choice([0, 1, 100, rng.randrange(2000)])
        bodylen = rng.choice([keylen + extlen + vlen, rng.randrange(1 << 32),
                              max(0, keylen + extlen - 1), rng.randrange(5000)])
        data = pkt(op, bytes(rng.randrange(256) for _ in range(keylen)),
                   bytes(rng.randrange(256) for _ in range(extlen)),
                   bytes(rng.randrange(256) for _ in range(vlen)), bodylen=bodylen)
        if rng.random() < 0.3:
            data += bytes(rng.randrange(256) for _ in range(rng.randrange(100)))
        with mctest.Conn(server.port, timeout=2.0) as c:
            try:
                c.send(data)
            except OSError:
                pass
            c.read_available(0.01)
    assert server.alive()
    assert noop_works(server.port)
    assert mctest.rss_kb(server.pid) - rss_before < RSS_SLACK_KB


def test_memcached_defers_too_large_until_the_body_is_read(servers):
    """The documented difference, shown on memcached: nothing comes back for a 2 GiB set
    until the body has been sent (mcstore answers at once, see above)."""
    d = servers.memcached("-I", "1m")
    with mctest.Conn(d.port) as c:
        c.send(pkt(SET, b"big", b"\0" * 8, bodylen=2 ** 31 - 1))
        assert c.read_available(0.3) == b""
        assert not c.closed
