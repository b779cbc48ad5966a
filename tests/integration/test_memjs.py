"""memjs (npm, run with the machine's node) against mcstore: binary protocol with and without
SASL PLAIN. The same session against Debian's memcached is the reference for what each call
returns; with auth on, a wrong password must be refused.

script/bootstrap installs node and memjs (tests/js/package.json) into tests/js/node_modules.
"""

import json
import os
import shutil
import subprocess

import mctest

JS_DIR = os.path.join(mctest.SRCDIR, "tests", "js")
SESSION = os.path.join(JS_DIR, "memjs_session.js")
ADMIN_BIN = os.path.join(os.path.dirname(os.path.abspath(mctest.MCSTORE_BIN)), "mcstore-admin")
NODE_DEADLINE = 60.0


def _node():
    node = shutil.which("node") or shutil.which("nodejs")
    assert node is not None, "node is not installed: run script/bootstrap"
    assert os.path.isdir(os.path.join(JS_DIR, "node_modules", "memjs")), \
        "memjs is not installed in %s: run script/bootstrap" % JS_DIR
    return node


def run_session(port, user=None, password=None):
    argv = [_node(), SESSION, "%s:%d" % (mctest.HOST, port)]
    if user is not None:
        argv += [user, password]
    p = subprocess.run(argv, cwd=JS_DIR, capture_output=True, text=True, timeout=NODE_DEADLINE)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    assert lines, "memjs printed nothing: rc=%d stderr=%s" % (p.returncode, p.stderr[-2000:])
    return json.loads(lines[-1])


def make_auth_file(path, user, password):
    p = subprocess.run([ADMIN_BIN, "passwd", "--file", str(path), user], input=password + "\n",
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return path


EXPECTED = {
    "set": True, "get": "hello", "add_existing": False, "replace": True, "get2": "world",
    "incr_new": 10, "incr": 15, "decr": 12, "append": True, "get3": "world!", "delete": True,
    "get_deleted": None, "delete_missing": False, "flush": True, "get_flushed": None,
    "touch": True, "touch_missing": False,
}


def test_memjs_session_matches_memcached(servers):
    ref = servers.memcached()
    mine = servers.mcstore()
    a = run_session(ref.port)
    b = run_session(mine.port)
    assert a == {"ok": True, "result": EXPECTED}, "the reference itself changed: %r" % a
    assert b == a


def test_memjs_sasl_right_password(servers, tmp_path):
    auth = make_auth_file(tmp_path / "auth", "fanout", "s3cret pass")
    s = servers.mcstore("--auth-file", str(auth))
    assert run_session(s.port, "fanout", "s3cret pass") == {"ok": True, "result": EXPECTED}


def test_memjs_sasl_wrong_password_refused(servers, tmp_path):
    auth = make_auth_file(tmp_path / "auth", "fanout", "s3cret pass")
    s = servers.mcstore("--auth-file", str(auth))
    r = run_session(s.port, "fanout", "not the password")
    assert r["ok"] is False
    assert "authentication failed" in r["error"]
    r = run_session(s.port, "nobody", "s3cret pass")
    assert r["ok"] is False
    # a refused attempt is logged, without the password
    log = mctest.wait_for(lambda: s.log_text() if "fanout" in s.log_text() else None, 10,
                          what="the failed login in the log")
    assert "not the password" not in log


def test_memjs_without_credentials_refused_when_auth_on(servers, tmp_path):
    auth = make_auth_file(tmp_path / "auth", "fanout", "s3cret pass")
    s = servers.mcstore("--auth-file", str(auth))
    r = run_session(s.port)
    assert r["ok"] is False
