"""Authentication: mcstore-admin passwd writes the --auth-file (0600, salted PBKDF2, no
plaintext, atomic, other lines kept); the server refuses a malformed file, warns about a
world-readable one and reloads it on SIGHUP; an unauthenticated text client gets nothing but
auth errors; a wrong password is refused and logged without the password; the right one gives
normal service. The text-auth exchange is compared byte for byte with Debian's memcached
1.6.18 -Y (its file holds plain user:pass lines, ours the hashes of the same passwords).
"""

import base64
import hashlib
import os
import pty
import re
import select
import signal
import stat
import subprocess
import time

import pytest

import mctest

ADMIN_BIN = os.path.join(os.path.dirname(os.path.abspath(mctest.MCSTORE_BIN)), "mcstore-admin")
ADMIN_DEADLINE = 60.0
LOG_DEADLINE = 10.0
FAST = "1000"           # PBKDF2 iterations for most test users: the floor, to keep tests quick
UNAUTH = b"CLIENT_ERROR unauthenticated\r\n"
FAILURE = b"CLIENT_ERROR authentication failure\r\n"
LINE_RE = re.compile(rb"^([^:\s]+):pbkdf2-sha256\$(\d+)\$([A-Za-z0-9+/]{22}==)\$"
                     rb"([A-Za-z0-9+/]{43}=)$")


def passwd(path, user, password, *extra, rc=0):
    """mcstore-admin passwd --file path [extra] user, password on stdin (one line)."""
    assert os.path.exists(ADMIN_BIN), "mcstore-admin not built: %s" % ADMIN_BIN
    p = subprocess.run([ADMIN_BIN, "passwd", "--file", str(path)] + list(extra) + [user],
                       input=password, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=ADMIN_DEADLINE)
    assert p.returncode == rc, "passwd %s: rc=%d, expected %d: %s" % (
        user, p.returncode, rc, p.stderr.decode("utf-8", "replace"))
    return p


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def auth_cmd(user, password, noreply=False):
    data = user + b" " + password
    return b"set auth 0 0 %d%s\r\n%s\r\n" % (len(data), b" noreply" if noreply else b"", data)


@pytest.fixture
def auth_file(tmp_path):
    """alice/secret and bob/pw2 (bob with the default iteration count)."""
    path = tmp_path / "mcstore.auth"
    passwd(path, "alice", b"secret\n", "--iterations", FAST)
    passwd(path, "bob", b"pw2\n")
    return path


def auth_server(servers, path, *extra):
    return servers.mcstore("-t", "2", "--auth-file", str(path), *extra)


def wait_log(server, pattern, what):
    return mctest.wait_for(lambda: re.search(pattern, server.log_text()), LOG_DEADLINE,
                           what=what)


# ---- mcstore-admin passwd ---------------------------------------------------------------------

def test_passwd_creates_and_updates_file_0600_without_plaintext(tmp_path):
    path = tmp_path / "auth"
    p = passwd(path, "alice", b"Tr0ub4dor&3\n")
    assert b"Tr0ub4dor" not in p.stdout + p.stderr
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    content = read_bytes(path)
    assert b"Tr0ub4dor" not in content
    lines = content.split(b"\n")
    assert lines[-1] == b"" and len(lines) == 2, content
    m = LINE_RE.match(lines[0])
    assert m and m.group(1) == b"alice" and m.group(2) == b"100000", lines[0]

    # comments, blank lines and other users are kept, in their order
    with open(path, "ab") as f:
        f.write(b"# the ops team\n\n")
    passwd(path, "bob", b"pw2\n", "--iterations", FAST)
    before = read_bytes(path).split(b"\n")
    assert before[:3] == [lines[0], b"# the ops team", b""], before
    assert LINE_RE.match(before[3]).group(1) == b"bob"
    assert LINE_RE.match(before[3]).group(2) == FAST.encode()

    # replacing alice touches her line only; a new salt makes a new line for the same password
    os.chmod(path, 0o644)
    p = passwd(path, "alice", b"Tr0ub4dor&3\n")
    assert b"updated" in p.stderr
    after = read_bytes(path).split(b"\n")
    assert len(after) == len(before) and after[1:] == before[1:]
    assert after[0] != before[0] and LINE_RE.match(after[0]).group(1) == b"alice"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["auth"], "temporary files left behind"

    # a CRLF password line is the password without its \r (recompute the hash to see it; a
    # short plaintext could turn up inside base64 by chance, so the check is on the hash)
    passwd(path, "carol", b"carol-crlf-password\r\n", "--iterations", FAST)
    content = read_bytes(path)
    assert b"carol-crlf-password" not in content
    carol = [ln for ln in content.split(b"\n") if ln.startswith(b"carol:")][0]
    iters, salt, digest = carol.split(b"$")[1:4]
    want = hashlib.pbkdf2_hmac("sha256", b"carol-crlf-password", base64.b64decode(salt),
                               int(iters), len(base64.b64decode(digest)))
    assert base64.b64decode(digest) == want


def test_passwd_refusals_leave_the_file_alone(tmp_path):
    path = tmp_path / "auth"
    passwd(path, "alice", b"secret\n", "--iterations", FAST)
    orig = read_bytes(path)
    for user in ["a:b", "a b", "", "#a", "a\tb", "u" * 256]:
        passwd(path, user, b"pw\n", rc=2)
    passwd(path, "dave", b"\n", rc=1)                  # empty password
    passwd(path, "dave", b"", rc=1)                    # no password at all
    passwd(path, "dave", b"p" * 1025 + b"\n", rc=1)    # over 1024 bytes
    passwd(path, "dave", b"pw\n", "--iterations", "999", rc=2)
    passwd(path, "dave", b"pw\n", "--iterations", "x", rc=2)
    passwd(tmp_path / "nodir" / "auth", "dave", b"pw\n", rc=1)
    assert read_bytes(path) == orig
    assert sorted(os.listdir(tmp_path)) == ["auth"]
    # --file belongs to passwd only
    p = subprocess.run([ADMIN_BIN, "verify", "--file", str(path), str(tmp_path)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=ADMIN_DEADLINE)
    assert p.returncode == 2
    # a password with a space is stored, with a warning: text auth cannot send it
    p = passwd(path, "erin", b"two words\n", "--iterations", FAST)
    assert b"space" in p.stderr


def test_passwd_asks_twice_without_echo_on_a_terminal(tmp_path):
    path = tmp_path / "auth"
    master, slave = pty.openpty()
    proc = subprocess.Popen([ADMIN_BIN, "passwd", "--file", str(path), "--iterations", FAST,
                             "alice"], stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    seen = b""

    def expect(text):
        nonlocal seen
        deadline = time.monotonic() + ADMIN_DEADLINE
        while text not in seen:
            left = deadline - time.monotonic()
            assert left > 0, "expected %r on the terminal, got %r" % (text, seen)
            if select.select([master], [], [], left)[0]:
                try:
                    seen += os.read(master, 4096)
                except OSError:
                    break
        assert text in seen, seen

    try:
        expect(b"Password for alice: ")
        os.write(master, b"n0-echo-pw\n")
        expect(b"Again: ")
        os.write(master, b"n0-echo-pw\n")
        expect(b"added user alice")
        assert proc.wait(timeout=ADMIN_DEADLINE) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert b"n0-echo-pw" not in seen, "the password was echoed: %r" % seen
    assert LINE_RE.match(read_bytes(path).rstrip(b"\n"))


# ---- the server and its file -------------------------------------------------------------------

def test_server_refuses_a_malformed_or_missing_auth_file(servers, tmp_path):
    bad = tmp_path / "plain.auth"
    bad.write_bytes(b"# plain text, as memcached's -Y file\nalice:secret\n")
    os.chmod(bad, 0o600)
    s = servers.mcstore("-t", "2", "--auth-file", str(bad), start=False)
    assert s.run_expect_exit() != 0
    assert "%s:2: " % bad in s.log_text() and "plain-text" in s.log_text(), s.log_text()

    missing = servers.mcstore("-t", "2", "--auth-file", str(tmp_path / "missing"), start=False)
    assert missing.run_expect_exit() != 0
    assert "No such file or directory" in missing.log_text(), missing.log_text()


def test_world_readable_auth_file_starts_with_a_warning(servers, auth_file):
    os.chmod(auth_file, 0o644)
    s = auth_server(servers, auth_file)
    wait_log(s, r"accessible to every user \(mode 0644\): chmod 600", "the mode warning")
    with mctest.Conn(s.port) as c:
        assert c.cmd(auth_cmd(b"alice", b"secret")) == b"STORED\r\n"


def test_unauthenticated_client_gets_only_auth_errors(servers, auth_file):
    s = auth_server(servers, auth_file)
    with mctest.Conn(s.port) as c:
        assert c.cmd(auth_cmd(b"alice", b"secret")) == b"STORED\r\n"
        assert c.cmd(b"set k 0 0 4\r\norig\r\nset n 0 0 1\r\n5\r\n") == b"STORED\r\n"
        assert c.read_until(b"\r\n") == b"STORED\r\n"

    commands = [
        b"get k\r\n", b"gets k n\r\n", b"gat 0 k\r\n", b"gats 0 k\r\n",
        b"add k2 0 0 1\r\n", b"replace k 0 0 1\r\n", b"append k 0 0 1\r\n",
        b"prepend k 0 0 1\r\n", b"cas k 0 0 1 1\r\n", b"incr n 1\r\n", b"decr n 1\r\n",
        b"delete k\r\n", b"delete k noreply\r\n", b"touch k 10\r\n", b"flush_all\r\n",
        b"flush_all noreply\r\n", b"version\r\n", b"verbosity 1\r\n", b"stats\r\n",
        b"stats settings\r\n", b"stats conns\r\n", b"stats storage\r\n", b"stats reset\r\n",
        b"rget a z 0 0 10\r\n", b"db_checkpoint\r\n", b"db_archive\r\n", b"quit\r\n",
        b"shutdown\r\n", b"mg k v\r\n", b"ms k 1\r\n", b"md k\r\n", b"mn\r\n",
        b"set k 0 0\r\n", b"bogus\r\n", b"\r\n",
    ]
    with mctest.Conn(s.port) as c:
        for cmd in commands:
            # one request per read: memcached answers each (see the differential test)
            assert c.cmd(cmd) == UNAUTH, cmd
        # a storage command with a data block is an authentication attempt, never a write
        assert c.cmd(b"set k 0 0 5\r\nhello\r\n") == \
            b"CLIENT_ERROR bad authentication token format\r\n"
        assert c.cmd(b"set k 0 0 11\r\nhello world\r\n") == FAILURE
        assert not c.closed
        assert c.read_available(0.1) == b"", "more than one reply per request"

    with mctest.Conn(s.port) as c:
        assert c.cmd(auth_cmd(b"bob", b"pw2")) == b"STORED\r\n"
        assert mctest.get_values(c, b"get k n\r\n") == {b"k": (0, b"orig", None),
                                                        b"n": (0, b"5", None)}
        st = mctest.stats(c)
        assert st["cmd_flush"] == "0" and st["cmd_get"] == "2", st  # the two keys above


def test_wrong_password_is_refused_and_logged_without_it(servers, auth_file):
    s = auth_server(servers, auth_file)
    secret_guess = b"Guess-0f-The-Day"
    with mctest.Conn(s.port) as c:
        assert c.cmd(auth_cmd(b"alice", secret_guess)) == FAILURE
        assert c.cmd(b"get k\r\n") == UNAUTH
        assert c.cmd(auth_cmd(b"mallory", b"secret")) == FAILURE
        assert c.cmd(auth_cmd(b"bob", b"secret")) == FAILURE
        me = "127.0.0.1:%d" % c.sock.getsockname()[1]
        wait_log(s, r"authentication failure from %s: user 'alice'" % re.escape(me),
                 "the failure log line")
        wait_log(s, r"authentication failure from %s: user 'mallory'" % re.escape(me),
                 "the unknown user's log line")
        # the right password still works on the same connection
        assert c.cmd(auth_cmd(b"alice", b"secret")) == b"STORED\r\n"
        st = mctest.stats(c)
        assert (st["auth_cmds"], st["auth_errors"]) == ("4", "3"), st
    log = s.log_text()
    assert secret_guess.decode() not in log and "secret" not in log.replace(
        "--auth-file", ""), log
    # a user name cannot forge log lines
    with mctest.Conn(s.port) as c:
        assert c.cmd(auth_cmd(b"x\rfake", b"pw")) == FAILURE
    wait_log(s, r"user 'x\\x0dfake'", "the escaped user name")


def test_right_password_gives_normal_service(servers, auth_file):
    s = auth_server(servers, auth_file)
    with mctest.Conn(s.port) as c:
        # noreply does not silence the auth reply (memcached ignores it here)
        assert c.cmd(auth_cmd(b"bob", b"pw2", noreply=True)) == b"STORED\r\n"
        assert c.cmd(b"set k 0 0 2\r\nhi\r\n") == b"STORED\r\n"
        assert mctest.get_values(c, b"get k\r\n") == {b"k": (0, b"hi", None)}
        assert c.cmd(b"incr n 1\r\n") == b"NOT_FOUND\r\n"
        assert c.cmd(b"version\r\n") == b"VERSION 1.6.18\r\n"
    # a pipelined login: the reply comes before those of the commands after it
    with mctest.Conn(s.port) as c:
        c.send(auth_cmd(b"alice", b"secret") + b"set p 0 0 1\r\nx\r\nget p k\r\nquit\r\n")
        assert c.read_until(b"END\r\n") == (b"STORED\r\nSTORED\r\nVALUE p 0 1\r\nx\r\n"
                                             b"VALUE k 0 2\r\nhi\r\nEND\r\n")
        assert c.wait_closed(5)
    # reconnecting clients: many logins in a row stay fast (the cache spares PBKDF2)
    t0 = time.monotonic()
    for _ in range(20):
        with mctest.Conn(s.port) as c:
            assert c.cmd(auth_cmd(b"bob", b"pw2")) == b"STORED\r\n"
    assert time.monotonic() - t0 < 15


def test_stats_settings_show_auth(servers, auth_file):
    s = auth_server(servers, auth_file)
    with mctest.Conn(s.port) as c:
        c.cmd(auth_cmd(b"alice", b"secret"))
        st = mctest.stats(c, b"settings")
        assert (st["auth_enabled_sasl"], st["auth_enabled_ascii"]) == ("yes", "yes"), st
    plain = servers.mcstore("-t", "1")
    with mctest.Conn(plain.port) as c:
        st = mctest.stats(c, b"settings")
        assert (st["auth_enabled_sasl"], st["auth_enabled_ascii"]) == ("no", "no"), st
        assert c.cmd(b"get k\r\n") == b"END\r\n"


def test_sighup_reloads_the_auth_file_and_keeps_it_when_broken(servers, auth_file):
    s = auth_server(servers, auth_file)
    passwd(auth_file, "carol", b"pw3\n", "--iterations", FAST)

    def login(user, password):
        with mctest.Conn(s.port) as c:
            return c.cmd(auth_cmd(user, password))

    assert login(b"carol", b"pw3") == FAILURE
    s.proc.send_signal(signal.SIGHUP)
    wait_log(s, r"SIGHUP: reloaded 3 users", "the reload")
    assert login(b"carol", b"pw3") == b"STORED\r\n"

    good = read_bytes(auth_file)
    auth_file.write_bytes(good + b"dave:plaintext\n")
    s.proc.send_signal(signal.SIGHUP)
    wait_log(s, r"keeping the users loaded before: .*:4: ", "the refused reload")
    assert login(b"alice", b"secret") == b"STORED\r\n"
    assert login(b"carol", b"pw3") == b"STORED\r\n"

    # a user taken out of the file is refused after the next reload
    auth_file.write_bytes(b"\n".join(l for l in good.split(b"\n") if not l.startswith(b"alice:")))
    s.proc.send_signal(signal.SIGHUP)
    wait_log(s, r"SIGHUP: reloaded 2 users", "the second reload")
    assert login(b"alice", b"secret") == FAILURE
    assert login(b"bob", b"pw2") == b"STORED\r\n"


# ---- differential: memcached -Y --------------------------------------------------------------

SETTLE_DEADLINE = 10.0  # for the server to read what was sent
# a login (a plain set once logged in), then a reply no session produces
SENTINEL = (b"set a 0 0 12\r\nalice secret\r\nset sentinel 0 0 8\r\nSENTINEL\r\n"
            b"get sentinel\r\n")
SENTINEL_END = b"STORED\r\nSTORED\r\nVALUE sentinel 0 8\r\nSENTINEL\r\nEND\r\n"
READ_DEADLINE = 5.0
QUIET = 0.3         # sessions left waiting for input: how long to collect replies

GOOD = b"set a 0 0 12\r\nalice secret\r\n"
BIG = 16384         # memcached's read buffer

# (name, writes, end): end is "sentinel" (a login + version ends the session), "close" (the
# server closes), or "wait" (the server waits for input; replies are collected for QUIET s)
SESSIONS = [
    ("get", [b"get a\r\n"], "sentinel"),
    ("version", [b"version\r\n"], "sentinel"),
    ("quit_stays_open", [b"quit\r\n", b"version\r\n"], "sentinel"),
    ("empty_line", [b"\r\n"], "sentinel"),
    ("lone_lf_waits_for_a_second_byte", [b"\n"], "sentinel"),
    ("two_lf", [b"\n", b"\n"], "sentinel"),
    ("good_then_get", [GOOD + b"get a\r\nversion\r\n"], "sentinel"),
    ("good_noreply", [b"set a 0 0 12 noreply\r\nalice secret\r\n"], "sentinel"),
    ("good_second_user", [b"set x 1 2 7\r\nbob pw2\r\n"], "sentinel"),
    ("wrong_pass_pipelined", [b"set a 0 0 11\r\nalice wrong\r\nversion\r\nget a\r\n"],
     "sentinel"),
    ("wrong_pass_then_version", [b"set a 0 0 11\r\nalice wrong\r\n", b"version\r\n"],
     "sentinel"),
    ("wrong_then_good_pipelined", [b"set a 0 0 11\r\nalice wrong\r\n" + GOOD + b"version\r\n"],
     "sentinel"),
    ("unknown_user", [b"set a 0 0 12\r\nmallo secret\r\n"], "sentinel"),
    ("size_too_short", [b"set a 0 0 3\r\nalice secret\r\n"], "sentinel"),
    ("size_too_short_split", [b"set a 0 0 3\r\nalice", b" secret\r\n"], "sentinel"),
    ("zero_size", [b"set a 0 0 0\r\n\r\n"], "sentinel"),
    ("one_token", [b"set a 0 0 5\r\nalice\r\n"], "sentinel"),
    ("three_tokens", [b"set a 0 0 16\r\nalice secret xyz\r\n"], "sentinel"),
    ("extra_spaces", [b"set a 0 0 15\r\n  alice  secret\r\n"], "sentinel"),
    ("bad_termination", [b"set a 0 0 12\r\nalice secretXY", b"version\r\n"], "sentinel"),
    ("bad_termination_pipelined", [b"set a 0 0 12\r\nalice secretXYversion\r\n"], "sentinel"),
    ("lf_only_line", [b"set a 0 0 12\nalice secret\r\nversion\r\n"], "sentinel"),
    ("lf_only_data", [b"set a 0 0 12\r\nalice secret\n", b"version\r\n"], "sentinel"),
    ("upper_case_set", [b"SET a 0 0 12\r\nalice secret\r\n"], "sentinel"),
    ("four_tokens", [b"set a 0 12\r\nalice secret\r\n"], "sentinel"),
    ("size_negative", [b"set a 0 0 -1\r\n"], "sentinel"),
    ("size_minus_zero", [b"set a 0 0 -0\r\n", b"\r\n"], "sentinel"),
    ("size_junk", [b"set a 0 0 5x\r\n"], "sentinel"),
    ("size_plus", [b"set a 0 0 +12\r\nalice secret\r\n"], "sentinel"),
    ("size_modulo_2_32", [b"set a 0 0 4294967308\r\nalice secret\r\n"], "sentinel"),
    ("size_minus_2_64_plus_1", [b"set a 0 0 -18446744073709551615\r\nx\r\n"], "sentinel"),
    ("size_leading_tab", [b"set a 0 0 \t12\r\nalice secret\r\n"], "sentinel"),
    ("size_trailing_tab", [b"set a 0 0 12\t\r\nalice secret\r\n"], "sentinel"),
    ("size_trailing_space", [b"set a 0 0 12 \r\nalice secret\r\n"], "sentinel"),
    ("size_overflow", [b"set a 0 0 99999999999999999999\r\n"], "sentinel"),
    ("size_wraps_to_1", [b"set a 0 0 4294967295\r\nab", b"version\r\n"], "sentinel"),
    ("size_wraps_to_0", [b"set a 0 0 4294967294\r\nab", b"version\r\n"], "sentinel"),
    ("cas", [b"cas a 0 0 12 1\r\nalice secret\r\n"], "sentinel"),
    ("add", [b"add a 0 0 12\r\nalice secret\r\n"], "sentinel"),
    ("tab_after_set", [b"set\ta 0 0 12\r\nalice secret\r\n"], "sentinel"),
    ("tab_between_user_and_pass", [b"set a 0 0 12\r\nalice\tsecret\r\n"], "sentinel"),
    ("cr_in_password", [b"set a 0 0 13\r\nalice secret\r\r\n"], "sentinel"),
    ("nul_in_data", [b"set a 0 0 14\r\nalice secret\x00z\r\n"], "sentinel"),
    ("nul_in_line", [b"set a 0 0 12\x00junk\r\nalice secret\r\n"], "sentinel"),
    ("nul_before_size", [b"set a 0\x00 0 12\r\nalice secret\r\n"], "sentinel"),
    ("split_everywhere", [b"set a 0 0 12\r", b"\nalice ", b"secret\r", b"\nversion\r\n"],
     "sentinel"),
    ("line_2048_without_lf", [b"x" * 2048, b"\r\n"], "sentinel"),
    ("line_5000_with_lf", [b"x" * 5000 + b"\r\n"], "sentinel"),
    ("data_block_10000", [b"set a 0 0 10000\r\n" + b"y" * 10000 + b"\r\n"], "sentinel"),
    ("data_block_16384", [b"set a 0 0 16382\r\na b" + b"y" * 16379 + b"\r\n"], "sentinel"),
    ("21_gets_one_reply", [b"get a\r\n" * 21], "sentinel"),
    ("22_gets_two_replies", [b"get a\r\n" * 22], "sentinel"),
    ("41_gets", [b"get a\r\n" * 41], "sentinel"),
    ("42_gets", [b"get a\r\n" * 42], "sentinel"),
    ("62_gets", [b"get a\r\n" * 62], "sentinel"),
    ("20_gets_then_login", [b"get a\r\n" * 20 + GOOD + b"get a\r\n"], "sentinel"),
    ("21_gets_then_login", [b"get a\r\n" * 21 + GOOD + b"get a\r\n"], "sentinel"),
    ("get_then_lf", [b"get a\r\n\n"], "sentinel"),
    ("set_line_then_more", [b"get a\r\nset a 0 0 12\r\n", b"alice secret\r\n"], "sentinel"),
    ("line_2049_without_lf_closes", [b"x" * 2049], "close"),
    ("get_then_3000_without_lf_closes", [b"get a\r\n" + b"x" * 3000], "close"),
    ("data_block_16385_closes", [b"set a 0 0 16383\r\na b" + b"y" * 16380 + b"\r\n"], "close"),
    ("data_block_16385_split_closes",
     [b"set a 0 0 16383\r\n", b"a b" + b"y" * 16380, b"\r\n"], "close"),
    ("data_block_100000_closes", [b"set a 0 0 100000\r\n", b"y" * 20000], "close"),
    ("data_block_20000_waits", [b"set a 0 0 20000\r\n", b"y" * 16000], "wait"),
]


def server_unread(sock):
    """Bytes of this connection the server has not read yet: the receive queue of its end of
    the connection in /proc/net/tcp (0 once it is gone)."""
    me = sock.getsockname()[1]
    server = sock.getpeername()[1]
    want = ("0100007F:%04X" % server, "0100007F:%04X" % me)
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            if (parts[1], parts[2]) == want:
                return int(parts[4].split(":")[1], 16)
    return 0


def run_session(port, writes, end):
    """Replays writes on a new connection, each one read by the server before the next is
    sent (memcached's replies depend on what one read brings); returns (replies, closed)."""
    c = mctest.Conn(port, timeout=READ_DEADLINE)
    try:
        for i, w in enumerate(writes + ([SENTINEL] if end == "sentinel" else [])):
            if i > 0:
                mctest.wait_for(lambda: server_unread(c.sock) == 0, SETTLE_DEADLINE,
                                interval=0.002, what="the server to read the previous write")
            try:
                c.send(w)
            except OSError:
                c.closed = True     # memcached resets while we still send: closed as well
                break
        deadline = time.monotonic() + READ_DEADLINE
        if end == "sentinel":
            while not c.buf.endswith(SENTINEL_END) and c.fill(deadline):
                pass
        elif end == "close":
            c.wait_closed(READ_DEADLINE)
        else:
            while c.fill(time.monotonic() + QUIET):
                pass
        return c.buf, c.closed
    finally:
        c.close()


@pytest.fixture(scope="module")
def auth_pair(module_servers, tmp_path_factory):
    """memcached -Y with plain user:pass lines, mcstore with the hashes of the same users."""
    d = tmp_path_factory.mktemp("auth-pair")
    plain = d / "memcached.auth"
    plain.write_bytes(b"alice:secret\nbob:pw2\n")
    hashed = d / "mcstore.auth"
    passwd(hashed, "alice", b"secret\n", "--iterations", FAST)
    passwd(hashed, "bob", b"pw2\n", "--iterations", FAST)
    mc = module_servers.memcached("-t", "2", "-Y", str(plain))
    ours = module_servers.mcstore("-t", "2", "--auth-file", str(hashed))
    return mc, ours


@pytest.mark.parametrize("name,writes,end", SESSIONS, ids=[s[0] for s in SESSIONS])
def test_text_auth_matches_memcached(auth_pair, name, writes, end):
    mc, ours = auth_pair
    want = run_session(mc.port, writes, end)
    got = run_session(ours.port, writes, end)
    if end == "sentinel":
        assert want[0].endswith(SENTINEL_END), "memcached's session did not finish: %r" % (
            want,)
    assert got == want, "%s:\nmemcached %r\nmcstore   %r" % (name, want, got)


def test_text_auth_counters_match_memcached(auth_pair):
    """auth_cmds counts credential checks, auth_errors the wrong ones, as memcached does."""
    results = []
    for srv in auth_pair:
        with mctest.Conn(srv.port) as c:
            assert c.cmd(b"set a 0 0 11\r\nalice wrong\r\n") == FAILURE
            assert c.cmd(b"set a 0 0 5\r\nalice\r\n") == \
                b"CLIENT_ERROR bad authentication token format\r\n"
            assert c.cmd(GOOD) == b"STORED\r\n"
            before = mctest.stats(c)
        with mctest.Conn(srv.port) as c:
            c.cmd(b"set a 0 0 9\r\nbob wrong\r\n")
            c.cmd(b"set a 0 0 7\r\nbob pw2\r\n")
            after = mctest.stats(c)
        results.append((int(after["auth_cmds"]) - int(before["auth_cmds"]),
                        int(after["auth_errors"]) - int(before["auth_errors"])))
    assert results[0] == results[1] == (2, 1), results
