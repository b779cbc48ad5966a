"""TLS: --tls-port beside the plain port, -Z (the -p port speaks TLS, as memcached's -Z),
client certificates (--tls-verify none|optional|required), the handshake timeout, hostile
handshakes that must cost one connection and never the worker, SIGHUP certificate reloads, and
the same replies as Debian's memcached -Z for a basic session.

Certificates are made for this run with the openssl CLI: a CA, a server certificate for
127.0.0.1 signed by it, a client certificate signed by it, and a client certificate from a
second CA the server does not trust.
"""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import warnings

import pytest
from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheError

import mctest
from mctest import storage_cmd

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
HANDSHAKE_TIMEOUT = 4       # --tls-handshake-timeout of the hostile-handshake tests
PROMPT = 1.5                # a good client's requests while others stall take less than this


def run_openssl(*args, cwd):
    subprocess.run([OPENSSL] + list(args), cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=60)


def make_ca(d, name):
    run_openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", name + ".key", "-out", name + ".pem", "-days", "2",
                "-subj", "/CN=mcstore test " + name, cwd=d)


def make_cert(d, name, ca, cn, ext):
    """A key and a certificate for cn signed by ca, with the extensions in ext."""
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write(ext)
    run_openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn,
                cwd=d)
    run_openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
                "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile",
                name + ".ext", cwd=d)


SERVER_EXT = "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
CLIENT_EXT = "extendedKeyUsage=clientAuth\n"


class Certs:
    def __init__(self, d):
        self.dir = d
        make_ca(d, "ca")
        make_ca(d, "rogue-ca")
        make_cert(d, "server", "ca", "127.0.0.1", SERVER_EXT)
        make_cert(d, "server2", "ca", "127.0.0.1", SERVER_EXT)   # for the reload test
        make_cert(d, "client", "ca", "mcstore-client", CLIENT_EXT)
        make_cert(d, "rogue", "rogue-ca", "mcstore-client", CLIENT_EXT)

    def path(self, name):
        return os.path.join(self.dir, name)

    def server_args(self, *extra):
        return ["--tls-cert", self.path("server.pem"), "--tls-key", self.path("server.key")] + \
            [str(e) for e in extra]

    def context(self, client=None, version=None):
        """A client context that verifies the server against our CA; client: "client" or
        "rogue" to present that certificate; version: pin one TLS version."""
        ctx = ssl.create_default_context(cafile=self.path("ca.pem"))
        if client is not None:
            ctx.load_cert_chain(self.path(client + ".pem"), self.path(client + ".key"))
        if version is not None:
            ctx.minimum_version = version
            ctx.maximum_version = version
        return ctx


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return Certs(str(tmp_path_factory.mktemp("tls-certs")))


@pytest.fixture(scope="module")
def tls_server(module_servers, certs):
    """One mcstore with a plain -p port and a TLS --tls-port, shared by the module."""
    tls_port = mctest.free_port()
    s = module_servers.mcstore("-t", "2", "--tls-port", tls_port, *certs.server_args())
    s.tls_port = tls_port
    return s


class TlsConn(mctest.Conn):
    """mctest.Conn over TLS: the same send/read helpers, on an SSL socket."""

    def __init__(self, port, ctx, timeout=5.0):
        super().__init__(port, timeout)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=mctest.HOST)


def tls_client(port, ctx, **kw):
    kw.setdefault("default_noreply", False)
    return Client((mctest.HOST, port), tls_context=ctx, connect_timeout=5, timeout=5,
                  no_delay=True, **kw)


def plain_stats(port, sub=b""):
    with mctest.Conn(port) as c:
        return mctest.stats(c, sub)


def fails_tls(port, ctx):
    """True when a TLS session with ctx cannot run a command (handshake refused, or in TLS 1.3
    the server's alert arriving at the first read)."""
    mc = tls_client(port, ctx)
    try:
        mc.version()
    except (ssl.SSLError, OSError, MemcacheError):
        return True
    finally:
        mc.close()
    return False


def client_hello():
    """The bytes of a real TLS ClientHello, made without a network."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_side=False)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


# ---- basic use: pymemcache over TLS, the plain port beside it ----

def test_pymemcache_over_tls(tls_server, certs, key):
    mc = tls_client(tls_server.tls_port, certs.context())
    try:
        assert mc.set(key, b"hello") is True
        assert mc.get(key) == b"hello"
        assert mc.add(key, b"again") is False
        assert mc.append(key, b" world") is True
        assert mc.get(key) == b"hello world"
        assert mc.delete(key) is True
        assert mc.get(key) is None
        assert mc.set(key + "_n", b"41") is True
        assert mc.incr(key + "_n", 1) == 42
        assert mc.decr(key + "_n", 2) == 40
        value, cas = mc.gets(key + "_n")
        assert value == b"40"
        assert mc.cas(key + "_n", b"7", cas) is True
        assert mc.cas(key + "_n", b"8", cas) is False
        assert mc.get(key + "_n") == b"7"
    finally:
        mc.close()


def test_many_keys_and_large_values(tls_server, certs, key):
    mc = tls_client(tls_server.tls_port, certs.context())
    try:
        items = {"%s_%d" % (key, i): (b"v%d-" % i) * (i + 1) for i in range(300)}
        assert mc.set_many(items) == []
        assert mc.get_many(list(items)) == items
        # values spanning many TLS records (16 KiB each) in both directions
        for size in (16 * 1024 + 1, 100 * 1024, 900 * 1024):
            v = os.urandom(size)
            assert mc.set(key + "_big", v) is True
            assert mc.get(key + "_big") == v, "value of %d bytes came back different" % size
    finally:
        mc.close()


def test_pipelined_over_tls(tls_server, certs, key):
    """Pipelined requests arrive in 16 KiB records that the server decrypts whole: a request
    split across what was read and what OpenSSL still holds must not stall. Then megabytes of
    replies through the output high watermark."""
    big = os.urandom(10 * 1024)
    with TlsConn(tls_server.tls_port, certs.context(), timeout=20) as c:
        n = 200
        batch = b"".join(storage_cmd(b"set", b"%s_%d" % (key.encode(), i), i, 0, big)
                         for i in range(n))
        c.send(batch)
        for i in range(n):
            assert c.read_until(b"\r\n") == b"STORED\r\n", "reply %d" % i
        # small requests: many per record
        c.send(b"".join(b"incr %s_ctr 1\r\n" % key.encode() for _ in range(2000)))
        assert c.read_until(b"\r\n") == b"NOT_FOUND\r\n"
        c.send(storage_cmd(b"set", key.encode() + b"_ctr", 0, 0, b"0"))
        for _ in range(1999):
            assert c.read_until(b"\r\n") == b"NOT_FOUND\r\n"
        assert c.read_until(b"\r\n") == b"STORED\r\n"
        c.send(b"".join(b"incr %s_ctr 1\r\n" % key.encode() for _ in range(3000)))
        for i in range(3000):
            assert c.read_until(b"\r\n") == b"%d\r\n" % (i + 1)
        # ~20 MB of replies to pipelined gets
        line = b"get " + b" ".join(b"%s_%d" % (key.encode(), i) for i in range(n)) + b"\r\n"
        rounds = 10
        c.send(line * rounds)
        for r in range(rounds):
            got = mctest.get_values(c, b"", timeout=20)
            assert len(got) == n, "round %d" % r
            assert all(v[1] == big for v in got.values())


def test_plain_port_beside_tls(tls_server, certs, key):
    mc = tls_client(tls_server.tls_port, certs.context())
    try:
        with mctest.Conn(tls_server.port) as plain:
            for i in range(20):
                assert mc.set("%s_%d" % (key, i), b"tls%d" % i)
                assert plain.cmd(storage_cmd(b"set", b"%s_p%d" % (key.encode(), i), 0, 0,
                                             b"plain%d" % i)) == b"STORED\r\n"
            # the same store behind both ports
            got = mctest.get_values(plain, b"get " + b" ".join(
                b"%s_%d" % (key.encode(), i) for i in range(20)) + b"\r\n")
            assert {k: v[1] for k, v in got.items()} == {
                b"%s_%d" % (key.encode(), i): b"tls%d" % i for i in range(20)}
            assert mc.get_many(["%s_p%d" % (key, i) for i in range(20)]) == {
                "%s_p%d" % (key, i): b"plain%d" % i for i in range(20)}
            # TLS on the plain port and plain text on the TLS port both fail
            assert fails_tls(tls_server.port, certs.context())
            with mctest.Conn(tls_server.tls_port) as wrong:
                wrong.send(b"version\r\n")
                assert wrong.wait_closed(5), "plain text on the TLS port was not closed"
                assert b"VERSION" not in wrong.buf
            assert plain.cmd(b"version\r\n") == b"VERSION 1.6.18\r\n"
        assert mc.version() == b"1.6.18"
    finally:
        mc.close()


def test_tls_versions(tls_server, certs):
    for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        with TlsConn(tls_server.tls_port, certs.context(version=v)) as c:
            assert c.sock.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                                        ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[v]
            assert c.cmd(b"version\r\n") == b"VERSION 1.6.18\r\n"
    # TLS 1.1: the server refuses it (the error is counted, so it was the server's refusal)
    before = int(plain_stats(tls_server.port)["ssl_handshake_errors"])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)     # that is the point
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, OSError)):
        TlsConn(tls_server.tls_port, ctx).close()
    mctest.wait_for(lambda: int(plain_stats(tls_server.port)["ssl_handshake_errors"]) > before,
                    5, what="ssl_handshake_errors to count the TLS 1.1 attempt")


def test_openssl_s_client(tls_server, certs, key):
    """An OpenSSL C client (as memtier_benchmark and libmemcached's TLS builds use)."""
    for version in ("-tls1_2", "-tls1_3"):
        script = (b"set %s 0 0 5\r\nhello\r\nget %s\r\nquit\r\n" % (key.encode(), key.encode()))
        p = subprocess.run([OPENSSL, "s_client", "-quiet", version, "-verify_return_error",
                            "-CAfile", certs.path("ca.pem"), "-connect",
                            "%s:%d" % (mctest.HOST, tls_server.tls_port)],
                           input=script, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=20)
        assert p.stdout == b"STORED\r\nVALUE %s 0 5\r\nhello\r\nEND\r\n" % key.encode(), (
            version, p.stdout, p.stderr)


def test_stats_over_tls(tls_server, certs):
    with TlsConn(tls_server.tls_port, certs.context()) as c:
        st = mctest.stats(c, b"settings")
        assert st["ssl_enabled"] == "yes"
        assert st["ssl_chain_cert"] == certs.path("server.pem")
        assert st["ssl_key"] == certs.path("server.key")
        assert st["ssl_verify_mode"] == "0"
        assert st["ssl_ca_cert"] == "NULL"
        assert st["ssl_min_version"] == "tlsv1.2"
        assert st["tls_port"] == str(tls_server.tls_port)
        general = mctest.stats(c)
        assert int(general["ssl_handshakes"]) >= 1
        assert int(general["time_since_server_cert_refresh"]) >= 0
        assert "ssl_handshake_errors" in general
        me = "tcp:127.0.0.1:%d" % c.sock.getsockname()[1]
        conns = mctest.stats(c, b"conns")
        fd = [k.split(":")[0] for k, v in conns.items() if k.endswith(":addr") and v == me]
        assert len(fd) == 1, conns
        assert conns[fd[0] + ":transport"] == "tls"
        assert conns[fd[0] + ":listen_addr"] == "tcp:127.0.0.1:%d" % tls_server.tls_port
        assert conns["listen_tls:addr"] == "tcp:127.0.0.1:%d" % tls_server.tls_port
    with mctest.Conn(tls_server.port) as plain:
        me = "tcp:127.0.0.1:%d" % plain.sock.getsockname()[1]
        conns = mctest.stats(plain, b"conns")
        fd = [k.split(":")[0] for k, v in conns.items() if k.endswith(":addr") and v == me]
        assert conns[fd[0] + ":transport"] == "tcp"


# ---- -Z: the main port speaks TLS ----

def test_dash_z(servers, certs, key):
    s = servers.mcstore("-t", "1", "-Z", *certs.server_args())
    mc = tls_client(s.port, certs.context())
    try:
        assert mc.set(key, b"z") is True
        assert mc.get(key) == b"z"
    finally:
        mc.close()
    with TlsConn(s.port, certs.context()) as c:
        st = mctest.stats(c, b"settings")
        assert (st["ssl_enabled"], st["tls_port"]) == ("yes", "0")
    with mctest.Conn(s.port) as plain:
        plain.send(b"get %s\r\n" % key.encode())
        assert plain.wait_closed(5), "plain text on a -Z port was not closed"
        assert b"VALUE" not in plain.buf


# ---- client certificates ----

def test_client_cert_required(servers, certs, key):
    s = servers.mcstore("-t", "1", "-Z", "--tls-ca", certs.path("ca.pem"),
                        "--tls-verify", "required", *certs.server_args())
    # no certificate, or one from a CA the server does not trust: refused, in 1.2 and 1.3
    for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        assert fails_tls(s.port, certs.context(version=v)), "no client certificate, %s" % v
        assert fails_tls(s.port, certs.context(client="rogue", version=v)), \
            "a certificate of an untrusted CA, %s" % v
    # with one of ours: works
    mc = tls_client(s.port, certs.context(client="client"))
    try:
        assert mc.set(key, b"certified") is True
        assert mc.get(key) == b"certified"
    finally:
        mc.close()
    with TlsConn(s.port, certs.context(client="client")) as c:
        st = mctest.stats(c, b"settings")
        assert st["ssl_verify_mode"] == "2"
        assert st["ssl_ca_cert"] == certs.path("ca.pem")
        assert int(mctest.stats(c)["ssl_handshake_errors"]) >= 4


def test_client_cert_optional(servers, certs, key):
    s = servers.mcstore("-t", "1", "-Z", "--tls-ca", certs.path("ca.pem"),
                        "--tls-verify", "optional", *certs.server_args())
    for client in (None, "client"):
        mc = tls_client(s.port, certs.context(client=client))
        try:
            assert mc.set(key, b"x") is True, "client certificate %s" % client
            assert mc.get(key) == b"x"
        finally:
            mc.close()
    # a certificate that is sent is checked
    assert fails_tls(s.port, certs.context(client="rogue"))


def test_client_cert_not_asked_for(tls_server, certs):
    """--tls-verify none (the default): a client certificate is neither asked for nor needed."""
    with TlsConn(tls_server.tls_port, certs.context(client="rogue")) as c:
        assert c.cmd(b"version\r\n") == b"VERSION 1.6.18\r\n"


# ---- hostile handshakes cost one connection, never the worker ----

def test_stalled_and_garbage_handshakes(servers, certs, key):
    tls_port = mctest.free_port()
    s = servers.mcstore("-t", "1", "--tls-port", tls_port, "--tls-handshake-timeout",
                        HANDSHAKE_TIMEOUT, *certs.server_args())
    # connected before the attack, handshake done, then idle for longer than the timeout
    early = TlsConn(tls_port, certs.context())
    assert early.cmd(b"version\r\n") == b"VERSION 1.6.18\r\n"
    before = plain_stats(s.port)
    hello = client_hello()

    def raw(data):
        c = mctest.Conn(tls_port)
        if data:
            c.send(data)
        return c

    # 20 that stall: silent, half a ClientHello, a whole ClientHello and then nothing
    stalled = [raw(b"") for _ in range(7)] + [raw(hello[:len(hello) // 2]) for _ in range(7)] + \
        [raw(hello) for _ in range(6)]
    opened = time.monotonic()
    # garbage: closed at once, not after the timeout
    garbage = [raw(b"get foo\r\n"),                                   # plain text
               raw(b"\x00" + os.urandom(600)),                          # not a TLS record
               raw(b"\x16\x03\x01\x00\x20\x01\x00\x00\x1c" + b"\xff" * 28),  # bad ClientHello
               raw(b"\x16\x03\x01\xff\xff" + os.urandom(100))]           # record too long
    try:
        for g in garbage:
            assert g.wait_closed(PROMPT * 2), "garbage on the TLS port was not closed at once"
        # the one worker still serves everyone else promptly
        for _ in range(3):
            t0 = time.monotonic()
            mc = tls_client(tls_port, certs.context())
            assert mc.set(key, b"ok") is True
            assert mc.get(key) == b"ok"
            mc.close()
            with mctest.Conn(s.port) as plain:
                assert plain.cmd(b"get %s\r\n" % key.encode()).startswith(b"VALUE")
            assert time.monotonic() - t0 < PROMPT, "a good client waited behind stalled ones"
        assert time.monotonic() - opened < HANDSHAKE_TIMEOUT, "test too slow to show anything"
        st = plain_stats(s.port)
        assert int(st["curr_connections"]) >= len(stalled) + 1, \
            "stalled connections closed before the handshake timeout"
        # the timeout closes every stalled one
        for c in stalled:
            assert c.wait_closed(HANDSHAKE_TIMEOUT + 5 - (time.monotonic() - opened)), \
                "a stalled handshake outlived --tls-handshake-timeout"
        elapsed = time.monotonic() - opened
        assert HANDSHAKE_TIMEOUT - 0.5 <= elapsed <= HANDSHAKE_TIMEOUT + 3, elapsed
        after = plain_stats(s.port)
        assert int(after["ssl_handshake_timeouts"]) - int(before["ssl_handshake_timeouts"]) \
            == len(stalled)
        assert int(after["ssl_handshake_errors"]) - int(before["ssl_handshake_errors"]) >= \
            len(stalled) + len(garbage)
        mctest.wait_for(lambda: int(plain_stats(s.port)["curr_connections"]) <= 2, 5,
                        what="the hostile connections to be gone")
        # a finished handshake is not subject to the handshake timeout
        assert early.cmd(b"version\r\n") == b"VERSION 1.6.18\r\n"
    finally:
        early.close()
        for c in stalled + garbage:
            c.close()


def test_handshake_timeout_applies_to_slow_client(servers, certs):
    """A client that sends a byte at a time, never finishing, is bounded too: the deadline is
    for the whole handshake, not renewed by activity."""
    s = servers.mcstore("-t", "1", "-Z", "--tls-handshake-timeout", 2, *certs.server_args())
    hello = client_hello()
    c = mctest.Conn(s.port)
    t0 = time.monotonic()
    try:
        for b in hello[:-1]:
            if c.closed or time.monotonic() - t0 > 6:
                break
            try:
                c.send(bytes([b]))
            except OSError:
                break
            c.fill(time.monotonic() + 0.05)
        assert c.wait_closed(max(0.1, 6 - (time.monotonic() - t0)))
        assert time.monotonic() - t0 < 4.5
    finally:
        c.close()


def test_max_connections_on_tls_port(servers, certs):
    """Over -c a TLS port closes without the plain-text error line memcached writes."""
    port = mctest.free_port()
    s = servers.mcstore("-t", "1", "-c", 2, "--tls-port", port, *certs.server_args())
    a = TlsConn(port, certs.context())
    b = TlsConn(port, certs.context())
    try:
        assert a.cmd(b"version\r\n") == b"VERSION 1.6.18\r\n"
        assert b.cmd(b"version\r\n") == b"VERSION 1.6.18\r\n"
        with mctest.Conn(port) as extra:
            assert extra.wait_closed(5)
            assert extra.buf == b""
        assert int(plain_stats_after_close(s, a)["rejected_connections"]) >= 1
    finally:
        b.close()


def plain_stats_after_close(s, c):
    """Frees a slot (closes c) and reads stats on the plain port once one is free."""
    c.close()

    def get():
        try:
            with mctest.Conn(s.port) as p:
                p.send(b"stats\r\n")
                text = p.read_until(b"END\r\n")
                return mctest.parse_stats(text)
        except AssertionError:
            return None
    return mctest.wait_for(get, 5, 0.05, "a free connection slot")


# ---- certificate reload ----

def test_sighup_reloads_certificates(servers, certs, tmp_path):
    cert = str(tmp_path / "cert.pem")
    keyf = str(tmp_path / "key.pem")
    shutil.copy(certs.path("server.pem"), cert)
    shutil.copy(certs.path("server.key"), keyf)
    s = servers.mcstore("-t", "1", "-Z", "--tls-cert", cert, "--tls-key", keyf)

    def served_cert():
        with TlsConn(s.port, certs.context()) as c:
            return c.sock.getpeercert(binary_form=True)

    def pem_der(path):
        with open(path) as f:
            return ssl.PEM_cert_to_DER_cert(f.read())

    old = TlsConn(s.port, certs.context())
    try:
        assert old.cmd(b"version\r\n") == b"VERSION 1.6.18\r\n"
        assert served_cert() == pem_der(certs.path("server.pem"))
        shutil.copy(certs.path("server2.pem"), cert)
        shutil.copy(certs.path("server2.key"), keyf)
        os.kill(s.pid, signal.SIGHUP)
        mctest.wait_for(lambda: served_cert() == pem_der(certs.path("server2.pem")), 5,
                        what="the new certificate to be served")
        assert int(mctest.stats(old)["time_since_server_cert_refresh"]) <= 2
        assert old.cmd(b"version\r\n") == b"VERSION 1.6.18\r\n", "an open session broke"
        # a broken file: the server logs it and keeps serving the last good certificate
        with open(cert, "w") as f:
            f.write("not a certificate\n")
        os.kill(s.pid, signal.SIGHUP)
        mctest.wait_for(lambda: "not reloaded" in s.log_text(), 5, what="the reload error")
        assert s.alive()
        assert served_cert() == pem_der(certs.path("server2.pem"))
    finally:
        old.close()


# ---- configuration errors ----

@pytest.mark.parametrize("args,with_cert,message", [
    (["--tls-port", "1"], False, "--tls-cert"),
    (["-Z"], False, "--tls-cert"),
    (["--tls-cert", "x.pem"], False, "without a TLS port"),
    (["-Z", "--tls-cert", "/nonexistent.pem"], False, "/nonexistent.pem"),
    (["-Z", "--tls-verify", "required"], True, "--tls-ca"),
    (["-Z", "--tls-verify", "sometimes"], True, "--tls-verify"),
    (["-Z", "--tls-port", "1"], True, "use one of them"),
    (["-Z", "--tls-handshake-timeout", "0"], True, "--tls-handshake-timeout"),
])
def test_bad_tls_options(servers, certs, args, with_cert, message):
    s = servers.mcstore(*(args + (certs.server_args() if with_cert else [])), start=False)
    assert s.run_expect_exit() != 0
    assert message in s.log_text(), s.log_text()


def test_key_not_matching_certificate(servers, certs):
    s = servers.mcstore("-Z", "--tls-cert", certs.path("server.pem"), "--tls-key",
                        certs.path("client.key"), start=False)
    assert s.run_expect_exit() != 0
    assert "client.key" in s.log_text() and "mismatch" in s.log_text(), s.log_text()


# ---- the same as memcached -Z ----

SESSION = [
    b"set a 5 0 3\r\nabc\r\n",
    b"get a\r\n",
    b"add a 0 0 1\r\nx\r\n",
    b"append a 0 0 2\r\nde\r\n",
    b"get a b\r\n",
    b"set n 0 0 2\r\n10\r\n",
    b"incr n 5\r\n",
    b"decr n 100\r\n",
    b"touch a 100\r\n",
    b"delete a\r\n",
    b"delete a\r\n",
    b"get a\r\n",
    b"bogus\r\n",
    b"version\r\n",
]


def tls_session(port, ctx):
    out = []
    with TlsConn(port, ctx) as c:
        for req in SESSION:
            c.send(req)
            if req.startswith(b"get"):
                out.append(c.read_until(b"END\r\n"))
            else:
                out.append(c.read_until(b"\r\n"))
    return out


def test_same_as_memcached_dash_z(servers, certs):
    m = servers.memcached("-Z", "-o", "ssl_chain_cert=%s,ssl_key=%s,ssl_ca_cert=%s" % (
        certs.path("server.pem"), certs.path("server.key"), certs.path("ca.pem")))
    s = servers.mcstore("-t", "2", "-Z", "--tls-ca", certs.path("ca.pem"), *certs.server_args())
    assert tls_session(s.port, certs.context()) == tls_session(m.port, certs.context())
    # the TLS stats memcached has, mcstore has under the same names
    names = {}
    for srv in (m, s):
        with TlsConn(srv.port, certs.context()) as c:
            names[srv] = ({k for k in mctest.stats(c, b"settings") if k.startswith("ssl_")},
                          {k for k in mctest.stats(c) if "ssl" in k or "cert" in k})
    must = {"ssl_enabled", "ssl_chain_cert", "ssl_key", "ssl_verify_mode", "ssl_ca_cert",
            "ssl_min_version"}
    assert must <= names[m][0] and must <= names[s][0], names
    assert names[m][1] <= names[s][1], names
