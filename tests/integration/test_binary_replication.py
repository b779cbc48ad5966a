"""The binary protocol on a replication group: a slave answers reads and refuses every write,
quiet ones included, with status 0x84 and the master's client address as the body (the text
protocol's "SERVER_ERROR not master; master is host:port"); writes on the master replicate."""

import re
import struct

import mctest
from test_replication import Group, wait_slave_of, wait_value

GET, SET, ADD, REPLACE, DELETE, INCR, DECR, FLUSH, NOOP = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, \
    0x06, 0x08, 0x0a
SETQ, DELETEQ, INCRQ, FLUSHQ, APPEND, PREPENDQ = 0x11, 0x14, 0x15, 0x18, 0x0e, 0x1a
TOUCH, GAT, GATKQ = 0x1c, 0x1d, 0x24
EINTERNAL = 0x84
REFUSAL = re.compile(rb"^not master; master is 127\.0\.0\.1:(\d+)$")


def pkt(op, key=b"", ext=b"", val=b"", opaque=0):
    return struct.pack(">BBHBBHIIQ", 0x80, op, len(key), len(ext), 0, 0,
                       len(ext) + len(key) + len(val), opaque, 0) + ext + key + val


def read_packet(c):
    h = struct.unpack(">BBHBBHIIQ", c.read_exact(24))
    body = c.read_exact(h[6])
    return h[1], h[5], h[7], body[h[3] + h[2]:]


def test_slave_refuses_binary_writes(servers):
    g = Group(servers, 3, modes=["master", "slave", "slave"]).start()
    master, slaves = g.members[0], g.members[1:]
    assert g.master() is master
    with mctest.Conn(master.port) as c:
        c.send(pkt(SET, b"bk", struct.pack(">II", 3, 0), b"v1", opaque=1))
        assert read_packet(c)[:3] == (SET, 0, 1)
    for s in slaves:
        wait_slave_of(s, master)
        wait_value(s, b"bk", b"v1")

    set_ext = struct.pack(">II", 0, 0)
    writes = [pkt(SET, b"sk", set_ext, b"x"), pkt(SETQ, b"sk", set_ext, b"x"),
              pkt(ADD, b"sk", set_ext, b"x"), pkt(REPLACE, b"bk", set_ext, b"x"),
              pkt(APPEND, b"bk", val=b"x"), pkt(PREPENDQ, b"bk", val=b"x"),
              pkt(DELETE, b"bk"), pkt(DELETEQ, b"bk"),
              pkt(INCR, b"n", struct.pack(">QQI", 1, 0, 0)),
              pkt(INCRQ, b"n", struct.pack(">QQI", 1, 0, 0)),
              pkt(DECR, b"n", struct.pack(">QQI", 1, 0, 0xffffffff)),
              pkt(TOUCH, b"bk", struct.pack(">I", 100)), pkt(GAT, b"bk", struct.pack(">I", 100)),
              pkt(GATKQ, b"bk", struct.pack(">I", 100)), pkt(FLUSH), pkt(FLUSHQ)]
    for s in slaves:
        with mctest.Conn(s.port) as c:
            for i, w in enumerate(writes):
                c.send(w[:12] + struct.pack(">I", 100 + i) + w[16:])
                op, status, opaque, body = read_packet(c)
                m = REFUSAL.match(body)
                assert (op, status, opaque) == (w[1], EINTERNAL, 100 + i) and m, (w[:2], body)
                assert int(m.group(1)) == master.port
            # reads are served
            c.send(pkt(GET, b"bk", opaque=7) + pkt(NOOP, opaque=8))
            assert read_packet(c) == (GET, 0, 7, b"v1")
            assert read_packet(c)[:3] == (NOOP, 0, 8)
        wait_value(s, b"bk", b"v1")
