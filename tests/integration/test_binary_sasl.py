"""Binary SASL (PLAIN) against mcstore --auth-file, compared with memcached 1.6.18 -S.

memcached's side: Cyrus SASL with mech_list PLAIN and a sasldb made with db5.3_load (Debian's
memcached has no MEMCACHED_SASL_PWDB), found through SASL_CONF_PATH. mcstore's side: an
--auth-file line per user (PBKDF2-SHA256, made here with hashlib). Both know alice/secret.

script/bootstrap installs the Cyrus PLAIN plugin (libsasl2-modules) and db5.3_load; without
them the memcached side cannot run and the tests fail saying so (never skip: a skipped
differential would hide a regression).
"""

import base64
import hashlib
import os
import shutil
import struct
import subprocess
import time

import pylibmc
import pytest

import mctest

GET, SET, NOOP, VERSION, STAT = 0x00, 0x01, 0x0a, 0x0b, 0x10
SASL_LIST, SASL_AUTH, SASL_STEP = 0x20, 0x21, 0x22
SENTINEL = 0x5E771E
PLAIN_PLUGIN_DIRS = ["/usr/lib/x86_64-linux-gnu/sasl2", "/usr/lib/aarch64-linux-gnu/sasl2",
                     "/usr/lib/sasl2"]


def pkt(op, key=b"", ext=b"", val=b"", opaque=0, cas=0):
    return struct.pack(">BBHBBHIIQ", 0x80, op, len(key), len(ext), 0, 0,
                       len(ext) + len(key) + len(val), opaque, cas) + ext + key + val


def auth(user=b"alice", password=b"secret", authzid=b"", opaque=0, mech=b"PLAIN", op=SASL_AUTH):
    return pkt(op, mech, val=authzid + b"\0" + user + b"\0" + password, opaque=opaque)


def parse_packets(buf):
    out = []
    pos = 0
    while len(buf) - pos >= 24:
        h = struct.unpack(">BBHBBHIIQ", buf[pos:pos + 24])
        if len(buf) - pos - 24 < h[6]:
            break
        out.append(h[:8] + (buf[pos + 24:pos + 24 + h[6]],))   # the cas left out
        pos += 24 + h[6]
    return out, buf[pos:]


def auth_line(user, password, iterations=1000):
    salt = os.urandom(16)
    dk = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations, 32)
    return "%s:pbkdf2-sha256$%d$%s$%s" % (user, iterations, base64.b64encode(salt).decode(),
                                          base64.b64encode(dk).decode())


def mcstore_has_auth():
    out = subprocess.run([mctest.MCSTORE_BIN, "-h"], capture_output=True, timeout=10)
    return b"--auth-file" in out.stdout + out.stderr


def plain_plugin_present():
    return any(os.path.exists(os.path.join(d, "libplain.so.2")) for d in PLAIN_PLUGIN_DIRS)


@pytest.fixture(scope="module")
def authed_mcstore(module_servers, tmp_path_factory):
    assert mcstore_has_auth(), "this mcstore has no --auth-file"
    d = tmp_path_factory.mktemp("authfile")
    path = d / "users"
    path.write_text(auth_line("alice", "secret") + "\n" + auth_line("bob", "b0b") + "\n")
    os.chmod(path, 0o600)
    return module_servers.mcstore("-t", "2", "--auth-file", str(path))


@pytest.fixture(scope="module")
def sasl_memcached(module_servers, tmp_path_factory):
    assert plain_plugin_present() and shutil.which("db5.3_load") is not None, \
        "memcached -S needs the Cyrus PLAIN plugin (libsasl2-modules) and db5.3_load: " \
        "run script/bootstrap"
    d = tmp_path_factory.mktemp("sasl")
    db = d / "sasldb2"
    realm = subprocess.run(["hostname"], capture_output=True).stdout.strip()
    text = b""
    for user, pw in ((b"alice", b"secret"), (b"bob", b"b0b")):
        text += user + b"\\00" + realm + b"\\00userPassword\n" + pw + b"\n"
    subprocess.run(["db5.3_load", "-T", "-t", "hash", str(db)], input=text, check=True)
    (d / "memcached.conf").write_text("mech_list: plain\nsasldb_path: %s\n" % db)
    old = os.environ.get("SASL_CONF_PATH")
    os.environ["SASL_CONF_PATH"] = str(d)
    try:
        return module_servers.memcached("-S", "-t", "2")
    finally:
        if old is None:
            del os.environ["SASL_CONF_PATH"]
        else:
            os.environ["SASL_CONF_PATH"] = old


def session(port, data, closes=False):
    """Sends data (+ a VERSION sentinel, which needs no authentication) and returns the
    reply packets (without CAS) and whether the connection closed."""
    with mctest.Conn(port) as c:
        c.send(data + pkt(VERSION, opaque=SENTINEL))
        deadline = time.monotonic() + 3.0
        while True:
            packets, _ = parse_packets(c.buf)
            if any(p[7] == SENTINEL for p in packets) or c.closed:
                break
            if not c.fill(deadline) and time.monotonic() >= deadline:
                break
        packets, rest = parse_packets(c.buf)
        if not closes and not c.closed:
            assert not c.wait_closed(0.05)
        return packets, rest, c.closed


SESSIONS = {
    "list_mechs": pkt(SASL_LIST, opaque=1),
    "version_unauthenticated": pkt(VERSION, opaque=1),
    "get_unauthenticated_closes": pkt(GET, b"a", opaque=1),
    "noop_unauthenticated_closes": pkt(NOOP, opaque=1),
    "unknown_unauthenticated_closes": pkt(0x60, b"a", opaque=1),
    "auth_ok": auth(opaque=1) + pkt(SET, b"a", b"\0" * 8, b"v", opaque=2)
    + pkt(GET, b"a", opaque=3) + pkt(NOOP, opaque=4),
    "auth_bad_password": auth(password=b"wrong", opaque=1) + pkt(VERSION, opaque=2)
    + pkt(NOOP, opaque=3),
    "auth_unknown_user": auth(user=b"mallory", opaque=1) + pkt(NOOP, opaque=3),
    "auth_bad_mech": auth(mech=b"CRAM-MD5", opaque=1) + pkt(NOOP, opaque=3),
    "auth_lowercase_mech": auth(mech=b"plain", opaque=1) + pkt(NOOP, opaque=3),
    "auth_mech_nul_terminated": auth(mech=b"PLAIN\0", opaque=1) + pkt(NOOP, opaque=3),
    "auth_mech_trailing_space": auth(mech=b"PLAIN ", opaque=1) + pkt(VERSION, opaque=3),
    "auth_mech_33_bytes": auth(mech=b"P" * 33, opaque=1) + pkt(VERSION, opaque=3),
    "auth_authzid_same": auth(authzid=b"alice", opaque=1) + pkt(NOOP, opaque=3),
    "auth_authzid_other": auth(authzid=b"bob", opaque=1) + pkt(NOOP, opaque=3),
    "auth_no_separator": pkt(SASL_AUTH, b"PLAIN", val=b"alicesecret", opaque=1),
    "auth_extra_nul": pkt(SASL_AUTH, b"PLAIN", val=b"\0alice\0secret\0", opaque=1),
    "auth_empty_password": auth(password=b"", opaque=1),
    "auth_empty_user": auth(user=b"", opaque=1),
    "continue_then_step": pkt(SASL_AUTH, b"PLAIN", opaque=1)
    + auth(op=SASL_STEP, opaque=2) + pkt(NOOP, opaque=3),
    "continue_bad_step_good_step": pkt(SASL_AUTH, b"PLAIN", opaque=1)
    + auth(op=SASL_STEP, password=b"x", opaque=2) + auth(op=SASL_STEP, mech=b"ANY", opaque=3)
    + pkt(NOOP, opaque=4),
    "step_without_start": auth(op=SASL_STEP, opaque=1) + pkt(NOOP, opaque=2),
    "step_after_success": auth(opaque=1) + auth(op=SASL_STEP, opaque=2) + pkt(NOOP, opaque=3),
    "list_drops_authentication": auth(opaque=1) + pkt(SASL_LIST, opaque=2)
    + pkt(NOOP, opaque=3),
    "reauth_failure_drops_it": auth(opaque=1) + auth(password=b"bad", opaque=2)
    + pkt(NOOP, opaque=3),
    "reauth_other_user": auth(opaque=1) + auth(user=b"bob", password=b"b0b", opaque=2)
    + pkt(NOOP, opaque=3),
    "malformed_while_unauthenticated": pkt(SASL_LIST, b"x", opaque=1),
    # Cyrus SASL refuses the next credentials once an exchange succeeded (and forgets it)
    "success_then_list_then_auth": auth(opaque=1) + pkt(SASL_LIST, opaque=2) + auth(opaque=3),
    "success_bad_password_success": auth(opaque=1) + auth(password=b"x", opaque=2)
    + auth(opaque=3) + auth(opaque=4) + auth(opaque=5),
    "success_bad_mech_resets": auth(opaque=1) + auth(mech=b"F", opaque=2)
    + auth(mech=b"G", opaque=3) + auth(opaque=4),
    "success_bad_mech_continue_step": auth(opaque=1) + auth(mech=b"F", opaque=2)
    + pkt(SASL_AUTH, b"PLAIN", opaque=3) + auth(op=SASL_STEP, opaque=4),
    "success_bad_mech_step": auth(opaque=1) + auth(mech=b"F", opaque=2)
    + auth(op=SASL_STEP, opaque=4),
    "success_bad_step_auth": auth(opaque=1) + auth(op=SASL_STEP, password=b"x", opaque=2)
    + auth(opaque=3),
    "success_long_mech_auth": auth(opaque=1) + auth(mech=b"P" * 33, opaque=2) + auth(opaque=3),
    "success_empty_mech_auth": auth(opaque=1) + auth(mech=b"\0", opaque=2) + auth(opaque=3),
    "success_continue_step": auth(opaque=1) + pkt(SASL_AUTH, b"PLAIN", opaque=2)
    + auth(op=SASL_STEP, opaque=3) + pkt(NOOP, opaque=4),
    "continue_continue_step": pkt(SASL_AUTH, b"PLAIN", opaque=1)
    + pkt(SASL_AUTH, b"PLAIN", opaque=2) + auth(op=SASL_STEP, opaque=3),
    "continue_failed_auth_step": pkt(SASL_AUTH, b"PLAIN", opaque=1)
    + auth(password=b"x", opaque=2) + auth(op=SASL_STEP, opaque=3),
    "continue_bad_mech_step": pkt(SASL_AUTH, b"PLAIN", opaque=1) + auth(mech=b"F", opaque=2)
    + auth(op=SASL_STEP, opaque=3),
    "continue_empty_step_step": pkt(SASL_AUTH, b"PLAIN", opaque=1)
    + pkt(SASL_STEP, b"PLAIN", opaque=2) + auth(op=SASL_STEP, opaque=3),
}


@pytest.mark.parametrize("name", sorted(SESSIONS))
def test_sasl_same_as_memcached(name, authed_mcstore, sasl_memcached):
    expected = session(sasl_memcached.port, SESSIONS[name])
    actual = session(authed_mcstore.port, SESSIONS[name])
    assert expected[0] or expected[2], "memcached gave nothing"
    assert actual == expected, "\nmemcached: %r\nmcstore:   %r" % (expected, actual)


def test_auth_counters(authed_mcstore, sasl_memcached):
    for srv in (sasl_memcached, authed_mcstore):
        check_auth_counters(srv)


def check_auth_counters(srv):
    def stats(c):
        c.send(pkt(STAT, opaque=7))
        out = {}
        while True:
            h = struct.unpack(">BBHBBHIIQ", c.read_exact(24))
            body = c.read_exact(h[6])
            if h[2] == 0:
                return out
            out[body[:h[2]].decode()] = body[h[2]:].decode()
    with mctest.Conn(srv.port) as c:
        c.send(auth(opaque=1))
        c.read_exact(24 + len(b"Authenticated"))
        before = stats(c)
        c.send(auth(password=b"bad", opaque=2) + pkt(SASL_AUTH, b"PLAIN", opaque=3)
               + auth(op=SASL_STEP, opaque=4))
        packets = []
        while len(packets) < 3:
            h = struct.unpack(">BBHBBHIIQ", c.read_exact(24))
            packets.append((h[5], c.read_exact(h[6])))
        assert packets == [(0x20, b"Auth failure."), (0x21, b""), (0, b"Authenticated")]
        after = stats(c)
    # memcached counts finished exchanges: the "continue" is not one
    assert int(after["auth_cmds"]) - int(before["auth_cmds"]) == 2
    assert int(after["auth_errors"]) - int(before["auth_errors"]) == 1


def test_pylibmc_with_username_and_password(authed_mcstore, key):
    assert pylibmc.support_sasl
    addr = ["%s:%d" % (mctest.HOST, authed_mcstore.port)]
    mc = pylibmc.Client(addr, binary=True, username="alice", password="secret")
    try:
        assert mc.set(key, b"v") is True
        assert mc.get(key) == b"v"
        assert mc.set(key + "_n", b"1") is True
        assert mc.incr(key + "_n", 1) == 2
    finally:
        mc.disconnect_all()
    bad = pylibmc.Client(addr, binary=True, username="alice", password="wrong")
    try:
        with pytest.raises(pylibmc.Error):
            bad.get(key)
    finally:
        bad.disconnect_all()
    anonymous = pylibmc.Client(addr, binary=True)
    try:
        with pytest.raises(pylibmc.Error):
            anonymous.set(key, b"x")
        assert anonymous.get(key) is None     # libmemcached reads the auth error as a miss
    finally:
        anonymous.disconnect_all()
