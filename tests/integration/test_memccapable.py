"""libmemcached's conformance checker (memccapable, Debian libmemcached-tools) against mcstore's
text protocol. The binary half joins when the binary protocol lands."""

import shutil
import subprocess

import mctest

MEMCCAPABLE = shutil.which("memccapable")


def test_memccapable_ascii_passes_every_test(tmp_path):
    assert MEMCCAPABLE is not None, "memccapable is needed (script/bootstrap installs it)"
    s = mctest.mcstore_server(tmp_path).start()
    try:
        r = subprocess.run([MEMCCAPABLE, "-h", mctest.HOST, "-p", str(s.port), "-a"],
                           capture_output=True, timeout=120)
        out = r.stdout.decode("utf-8", "replace") + r.stderr.decode("utf-8", "replace")
        assert r.returncode == 0, out
        assert "All tests passed" in out, out
        assert "[fail]" not in out, out
    finally:
        assert s.stop() == 0
