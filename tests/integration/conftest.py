"""Fixtures: real mcstore / memcached processes on free 127.0.0.1 ports, stopped by PID.

mcstore's binary is $MCSTORE_BIN (make check sets it; default ./mcstore in the source tree).
memcached is Debian's /usr/bin/memcached ($MEMCACHED_BIN), used for differential tests.

Self-check of the suite: MCSTORE_TEST_AGAINST=memcached makes the mcstore fixtures start
memcached instead (mcstore-only options are dropped), so the memcached-side of the tests can be
validated; tests of mcstore-only features (persistence, stats storage, rget, limits) then fail,
as they should.
"""

import os
import re
import zlib

import pytest

import mctest

AGAINST = os.environ.get("MCSTORE_TEST_AGAINST", "mcstore")

# mcstore options that memcached does not have (dropped, with their value, in self-check mode)
_MCSTORE_ONLY = {"-H", "-m", "--write-timeout", "--max-output", "--sweep-interval-ms",
                 "--checkpoint-sec", "--idle-timeout", "--durability"}


def _for_memcached(args):
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a in _MCSTORE_ONLY:
            skip = True
            continue
        out.append(a)
    return out


def pytest_sessionfinish(session, exitstatus):
    mctest.kill_leftovers()     # only after an interrupted run is anything left


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _failed(request):
    for when in ("setup", "call"):
        rep = getattr(request.node, "rep_" + when, None)
        if rep is not None and rep.failed:
            return True
    return False


class Factory:
    """Starts servers and stops every one of them (by PID) at teardown."""

    def __init__(self, tmp_path_factory, name):
        self.tmp_path_factory = tmp_path_factory
        self.name = name
        self.servers = []

    def mcstore(self, *args, datadir=None, start=True):
        tmpdir = self.tmp_path_factory.mktemp(self.name)
        if AGAINST == "memcached":
            s = mctest.memcached_server(tmpdir, *_for_memcached([str(a) for a in args]),
                                        name="mcstore-as-memcached")
            s.datadir = datadir or str(tmpdir)
        else:
            s = mctest.mcstore_server(tmpdir, *args, datadir=datadir)
        s.is_mcstore = True
        self.servers.append(s)
        if start:
            s.start()
        return s

    def memcached(self, *args, start=True):
        tmpdir = self.tmp_path_factory.mktemp(self.name + "-memcached")
        s = mctest.memcached_server(tmpdir, *args)
        s.is_mcstore = False
        self.servers.append(s)
        if start:
            s.start()
        return s

    def teardown(self, show_logs):
        problems = []
        for s in self.servers:
            if s.proc is None:
                continue
            if s.exit_expected and not s.alive():
                rc = s.proc.returncode
            else:
                was_alive = s.alive()
                rc = s.stop()
                if s.is_mcstore and not was_alive:
                    problems.append("%s (pid %d) died during the test: rc=%r"
                                    % (s.name, s.pid, s.proc.returncode))
                elif s.is_mcstore and rc != 0:
                    problems.append("%s (pid %d) did not exit 0 on SIGTERM: rc=%r"
                                    % (s.name, s.pid, rc))
            if show_logs or problems:
                print("---- %s log (%s) ----" % (s.name, s.log_path))
                print(s.log_text()[-8000:])
        if problems:
            raise AssertionError("; ".join(problems))


@pytest.fixture
def servers(request, tmp_path_factory):
    """Factory for servers that live as long as the test."""
    f = Factory(tmp_path_factory, _slug(request.node.name))
    yield f
    f.teardown(_failed(request))


@pytest.fixture(scope="module")
def module_servers(request, tmp_path_factory):
    """Factory for servers shared by a test module."""
    f = Factory(tmp_path_factory, _slug(request.module.__name__))
    yield f
    f.teardown(False)


@pytest.fixture(scope="module")
def mcstore(module_servers):
    """One mcstore shared by the module (tests use their own keys, see `key`)."""
    return module_servers.mcstore("-t", "2")


@pytest.fixture(scope="module")
def memcached(module_servers):
    """Debian's memcached shared by the module."""
    return module_servers.memcached("-t", "2")


@pytest.fixture
def conn(mcstore):
    """A raw connection to the module's mcstore."""
    c = mctest.Conn(mcstore.port)
    yield c
    c.close()


def _slug(name):
    return re.sub(r"[^A-Za-z0-9_]+", "_", name)[:60]


@pytest.fixture
def key(request):
    """A key prefix unique to the test, so tests sharing a server do not collide."""
    base = _slug(request.node.name)
    return "%s_%x" % (base[:150], zlib.crc32(request.node.nodeid.encode()) & 0xffffff)


@pytest.fixture
def bkey(key):
    return key.encode()
