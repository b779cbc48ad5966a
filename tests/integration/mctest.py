"""Helpers for the integration tests: start/stop servers by PID, raw socket sessions.

Every wait here polls for a condition with a deadline; nothing sleeps a fixed time to let
something happen. Only 127.0.0.1 is ever used.
"""

import errno
import os
import signal
import socket
import subprocess
import time

HOST = "127.0.0.1"
SRCDIR = os.environ.get(
    "MCSTORE_SRCDIR",
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
MCSTORE_BIN = os.environ.get("MCSTORE_BIN", os.path.join(SRCDIR, "mcstore"))
MEMCACHED_BIN = os.environ.get("MEMCACHED_BIN", "/usr/bin/memcached")

START_DEADLINE = 20.0      # seconds for a server to accept connections (BDB recovery included)
STOP_DEADLINE = 20.0       # seconds for a clean exit after SIGTERM (checkpoint included)


def read_terminal(master_fd, timeout):
    """What a child writes to the pseudo-terminal whose master end is master_fd, until it
    closes its end or timeout seconds pass (progress bars are drawn only on a terminal)."""
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = os.read(master_fd, 65536)
        except OSError:         # EIO: the child closed its end
            break
        if not chunk:
            break
        out += chunk
    return out


def wait_for(cond, timeout, interval=0.01, what="condition"):
    """Polls cond() until it returns a true value (returned) or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def free_port():
    """A port the kernel just gave out on 127.0.0.1 (bind-to-0 trick). The caller retries
    when another process grabs it before the server binds it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_accepts(port):
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def rss_kb(pid):
    """VmRSS of a process in kB, from /proc/PID/status."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


class ServerExited(Exception):
    pass


STARTED = []    # every Server process started by this run, for the end-of-session safety net


def kill_leftovers():
    """SIGKILLs (by PID) any server process of this run that is still running."""
    for s in STARTED:
        if s.proc is not None and s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait(timeout=STOP_DEADLINE)


class Server:
    """One server process (mcstore or memcached) on 127.0.0.1:port, stopped by its PID."""

    def __init__(self, argv_fn, name, logdir):
        self.argv_fn = argv_fn      # port -> argv
        self.name = name
        self.logdir = logdir
        self.proc = None
        self.port = None
        self.starts = 0
        self.log_path = None
        self.exit_expected = False     # set by stop()/kill(): an exit is not a crash

    @property
    def pid(self):
        return self.proc.pid

    def start(self, port=None, tries=5):
        """Starts the server on port (or on a free one, retrying while the port turns out to
        be taken) and waits until it accepts connections."""
        for attempt in range(tries if port is None else 1):
            p = port if port is not None else free_port()
            try:
                self._spawn(p)
                return self
            except ServerExited:
                if port is not None or attempt == tries - 1 or not self.port_was_taken():
                    raise
        raise AssertionError("unreachable")

    def port_was_taken(self):
        return "address already in use" in self.log_text().lower()

    def _spawn(self, port):
        self.starts += 1
        self.exit_expected = False
        self.log_path = os.path.join(self.logdir, "%s.%d.log" % (self.name, self.starts))
        log = open(self.log_path, "wb")
        argv = self.argv_fn(port)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, close_fds=True)
        log.close()
        STARTED.append(self)
        self.port = port
        deadline = time.monotonic() + START_DEADLINE
        while True:
            if self.proc.poll() is not None:
                raise ServerExited("%s exited with %s before accepting connections:\n%s"
                                   % (argv, self.proc.returncode, self.log_text()))
            if port_accepts(port):
                return
            if time.monotonic() >= deadline:
                self.kill()
                raise AssertionError("%s did not accept on port %d within %.0fs:\n%s"
                                     % (argv, port, START_DEADLINE, self.log_text()))
            time.sleep(0.01)

    def run_expect_exit(self, timeout=START_DEADLINE):
        """Starts the server on a free port expecting it to refuse to run: returns its exit
        code once it exits (within timeout). Fails if it accepts connections instead."""
        self.starts += 1
        self.exit_expected = True
        self.log_path = os.path.join(self.logdir, "%s.%d.log" % (self.name, self.starts))
        port = free_port()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.argv_fn(port), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, close_fds=True)
        STARTED.append(self)
        self.port = port
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if port_accepts(port):
                raise AssertionError("%s started although it should have refused:\n%s"
                                     % (self.name, self.log_text()))
            if time.monotonic() >= deadline:
                raise AssertionError("%s neither exited nor listened within %.0fs:\n%s"
                                     % (self.name, timeout, self.log_text()))
            time.sleep(0.01)
        return self.proc.returncode

    def log_text(self):
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=STOP_DEADLINE):
        """SIGTERM, wait with a deadline, then SIGKILL. Returns the exit code of the
        clean stop (None if it had to be killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.exit_expected = True
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=timeout)
            return None

    def kill(self):
        """kill -9 by PID and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.exit_expected = True
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=STOP_DEADLINE)

    def restart(self):
        """Clean stop, then start again on the same port and data dir."""
        rc = self.stop()
        assert rc == 0, "%s did not exit cleanly on SIGTERM (rc=%r):\n%s" % (
            self.name, rc, self.log_text())
        return self.start_again()

    def start_again(self):
        """Starts again (after stop or kill) on the same data dir, on the same port unless
        another process took it meanwhile."""
        try:
            return self.start(port=self.port)
        except ServerExited:
            if self.port_was_taken():
                return self.start()
            raise


def mcstore_server(tmpdir, *extra, name="mcstore", datadir=None):
    """A Server for mcstore with its own data dir under tmpdir (not started)."""
    datadir = datadir or os.path.join(str(tmpdir), "data")
    os.makedirs(datadir, exist_ok=True)
    assert os.path.exists(MCSTORE_BIN), "mcstore binary not built: %s" % MCSTORE_BIN

    def argv(port):
        return [MCSTORE_BIN, "-p", str(port), "-l", HOST, "-H", datadir] + [str(a) for a in extra]
    s = Server(argv, name, str(tmpdir))
    s.datadir = datadir
    return s


def memcached_server(tmpdir, *extra, name="memcached"):
    """A Server for Debian's memcached (UDP off). Not started."""
    def argv(port):
        a = [MEMCACHED_BIN, "-p", str(port), "-l", HOST, "-U", "0"]
        if os.geteuid() == 0:
            a += ["-u", "root"]
        return a + [str(x) for x in extra]
    return Server(argv, name, str(tmpdir))


class Conn:
    """A raw TCP connection: send bytes, read replies until a terminator or a deadline."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.closed = False     # the peer closed (EOF or reset)
        self.timeout = timeout

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def fill(self, deadline):
        """Reads what arrives before deadline; False at EOF/reset or when the deadline passed."""
        remaining = deadline - time.monotonic()
        if remaining <= 0 or self.closed:
            return False
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(1 << 20)
        except socket.timeout:
            return False
        except OSError as e:
            if e.errno in (errno.ECONNRESET, errno.EPIPE):
                self.closed = True
                return False
            raise
        if not chunk:
            self.closed = True
            return False
        self.buf += chunk
        return True

    def read_until(self, term, timeout=None):
        """Returns the bytes up to and including the first `term` (consumed from the buffer).
        Raises AssertionError with what arrived when it does not come in time."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            i = self.buf.find(term)
            if i >= 0:
                out, self.buf = self.buf[:i + len(term)], self.buf[i + len(term):]
                return out
            if not self.fill(deadline):
                if self.closed or time.monotonic() >= deadline:
                    raise AssertionError("expected %r; got %r (closed=%s)"
                                         % (term, self.buf, self.closed))

    def read_exact(self, n, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buf) < n:
            if not self.fill(deadline):
                if self.closed or time.monotonic() >= deadline:
                    raise AssertionError("expected %d bytes; got %r (closed=%s)"
                                         % (n, self.buf, self.closed))
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_available(self, timeout):
        """Everything that arrives within timeout (stops early at EOF)."""
        deadline = time.monotonic() + timeout
        while self.fill(deadline):
            pass
        out, self.buf = self.buf, b""
        return out

    def wait_closed(self, timeout=5.0):
        """True when the peer closes within timeout (data that arrives is kept in buf)."""
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            self.fill(deadline)
        return self.closed

    def cmd(self, data, term=b"\r\n", timeout=None):
        """Sends data and reads up to term."""
        self.send(data)
        return self.read_until(term, timeout)


def storage_cmd(cmd, key, flags, exptime, value, extra=b"", noreply=False):
    line = b"%s %s %d %d %d" % (cmd, key, flags, exptime, len(value))
    if extra:
        line += b" " + extra
    if noreply:
        line += b" noreply"
    return line + b"\r\n" + value + b"\r\n"


def parse_stats(text):
    """'STAT name value' lines up to END -> dict of str."""
    out = {}
    for line in text.split(b"\r\n"):
        if line.startswith(b"STAT "):
            parts = line.split(b" ", 2)
            out[parts[1].decode()] = parts[2].decode() if len(parts) > 2 else ""
    return out


def stats(conn, sub=b""):
    req = b"stats" + ((b" " + sub) if sub else b"") + b"\r\n"
    return parse_stats(conn.cmd(req, b"END\r\n"))


def parse_values(text):
    """VALUE blocks of a get/gets reply -> {key: (flags, value, cas or None)}."""
    out = {}
    pos = 0
    while True:
        if text.startswith(b"END\r\n", pos):
            return out
        eol = text.index(b"\r\n", pos)
        parts = text[pos:eol].split(b" ")
        assert parts[0] == b"VALUE", text
        n = int(parts[3])
        value = text[eol + 2:eol + 2 + n]
        assert text[eol + 2 + n:eol + 4 + n] == b"\r\n", text
        cas = int(parts[4]) if len(parts) > 4 else None
        out[parts[1]] = (int(parts[2]), value, cas)
        pos = eol + 4 + n


def get_values(conn, cmd_line, timeout=None):
    """Sends a get-family line and returns parse_values of its reply."""
    conn.send(cmd_line)
    text = b""
    deadline = time.monotonic() + (timeout or conn.timeout)
    while True:
        line = conn.read_until(b"\r\n", max(0.01, deadline - time.monotonic()))
        text += line
        if line == b"END\r\n":
            return parse_values(text)
        if not line.startswith(b"VALUE "):
            raise AssertionError("unexpected reply line %r after %r" % (line, text))
        n = int(line.split(b" ")[3])
        text += conn.read_exact(n + 2, max(0.01, deadline - time.monotonic()))

