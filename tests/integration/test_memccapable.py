"""libmemcached's conformance checker (memccapable, Debian libmemcached-tools) against mcstore:
the text protocol (-a), the binary protocol (-b), and both in one run (no flag), as against
memcached itself."""

import shutil
import subprocess

import pytest

import mctest

MEMCCAPABLE = shutil.which("memccapable")


@pytest.mark.parametrize("mode,flags", [("ascii", ["-a"]), ("binary", ["-b"]), ("both", [])])
def test_memccapable_passes_every_test(tmp_path, mode, flags):
    assert MEMCCAPABLE is not None, "memccapable is needed (script/bootstrap installs it)"
    s = mctest.mcstore_server(tmp_path).start()
    try:
        r = subprocess.run([MEMCCAPABLE, "-h", mctest.HOST, "-p", str(s.port)] + flags,
                           capture_output=True, timeout=120)
        out = r.stdout.decode("utf-8", "replace") + r.stderr.decode("utf-8", "replace")
        assert r.returncode == 0, out
        assert "All tests passed" in out, out
        assert "[fail]" not in out, out
        if mode != "ascii":
            # the binary tests really ran: one line per opcode family
            for name in ("binary noop", "binary getkq", "binary incrq", "binary prependq",
                         "binary stat"):
                assert name in out, out
    finally:
        assert s.stop() == 0
