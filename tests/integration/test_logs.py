"""Log files do not accumulate: after 200,000 writes and two checkpoints, the Berkeley DB log
files left in the data home stay under a fixed bound, whatever the number of writes.

The bound: at most LOG_FILES_BOUND = 2 log files and LOG_BYTES_BOUND = 32 MiB (two of the
server's 16 MiB log files) on disk, counted as st_blocks * 512 so that a sparse or preallocated
file counts for what it really takes. Once the writes have stopped, a checkpoint leaves every
log file before the current one unneeded for recovery and the server removes them: one file is
expected, two leave a file of margin. The writes (200,000 new items of 100 bytes, pipelined
over 4 connections) make about 110 MB of log (7 files), so a server that kept its logs would
be far over the bound; the test checks that at least LOG_FILES_BOUND + 1 files were created,
else it would prove nothing.
"""

import os
import threading
import time

import mctest

WRITES = 200_000
CONNECTIONS = 4
BATCH = 2_500                 # sets per pipelined batch
KEYS = WRITES                 # every write adds an item: ~110 MB of log in all (7 files of 16 MiB)
VALUE_SIZE = 100
LOG_FILES_BOUND = 2
LOG_BYTES_BOUND = 32 * 1024 * 1024
WRITE_DEADLINE = 30.0         # seconds for all the writes
CHECKPOINT_DEADLINE = 10.0    # seconds for two more checkpoints (--checkpoint-sec 1)


def log_files(datadir):
    """{name: bytes on disk} of the Berkeley DB log files (log.NNNNNNNNNN) in datadir."""
    out = {}
    for name in os.listdir(datadir):
        if name.startswith("log."):
            try:
                out[name] = os.stat(os.path.join(datadir, name)).st_blocks * 512
            except FileNotFoundError:       # removed while we looked
                pass
    return out


def storage_stats(port):
    with mctest.Conn(port) as c:
        return mctest.stats(c, b"storage")


def writer(port, first_batch, step, n_batches, errors, deadline):
    value = b"v" * VALUE_SIZE
    try:
        with mctest.Conn(port, timeout=WRITE_DEADLINE) as c:
            for b in range(first_batch, n_batches, step):
                req = b"".join(
                    b"set lk%06d %d 0 %d\r\n%s\r\n" % ((i % KEYS), i & 0xFFFF, VALUE_SIZE, value)
                    for i in range(b * BATCH, (b + 1) * BATCH))
                c.send(req)
                reply = c.read_exact(8 * BATCH, max(0.1, deadline - time.monotonic()))
                if reply != b"STORED\r\n" * BATCH:
                    errors.append("batch %d: %r" % (b, reply[:200]))
                    return
    except (OSError, AssertionError) as e:
        errors.append(repr(e))


def test_log_files_stay_bounded_after_200k_writes_and_two_checkpoints(servers):
    t0 = time.monotonic()
    s = servers.mcstore("-t", "2", "--checkpoint-sec", "1")
    n_batches = WRITES // BATCH
    errors = []
    deadline = t0 + WRITE_DEADLINE
    threads = [threading.Thread(target=writer, daemon=True,
                                args=(s.port, i, CONNECTIONS, n_batches, errors, deadline))
               for i in range(CONNECTIONS)]
    peak = {}
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads) and time.monotonic() < deadline + 1:
        files = log_files(s.datadir)          # peak while writing, for the failure message
        if sum(files.values()) > sum(peak.values()):
            peak = files
        for t in threads:
            t.join(0.2)
    assert not any(t.is_alive() for t in threads), \
        "200,000 writes took more than %.0f s" % WRITE_DEADLINE
    assert not errors, errors
    t_writes = time.monotonic() - t0

    st = storage_stats(s.port)
    assert int(st["items"]) == KEYS, st
    ck0 = int(st["checkpoints"])
    mctest.wait_for(lambda: int(storage_stats(s.port)["checkpoints"]) >= ck0 + 2,
                    CHECKPOINT_DEADLINE, 0.05, "two checkpoints after the writes")

    files = log_files(s.datadir)
    st = storage_stats(s.port)
    total = sum(files.values())
    detail = ("log files now %r (%.1f MiB), largest while writing %d files %.1f MiB; "
              "stats storage: log_files=%s log_bytes=%s log_current_file=%s checkpoints=%s"
              % (sorted(files.items()), total / 2**20, len(peak), sum(peak.values()) / 2**20,
                 st["log_files"], st["log_bytes"], st["log_current_file"], st["checkpoints"]))
    # the writes made more log than the bound allows to keep, else this proves nothing
    assert int(st["log_current_file"]) > LOG_FILES_BOUND, \
        "too little log written to test the bound (write more): " + detail
    assert len(files) <= LOG_FILES_BOUND, "log files accumulate: " + detail
    assert total <= LOG_BYTES_BOUND, "log files accumulate: " + detail
    # and stats storage reports what is on disk
    assert int(st["log_files"]) == len(files), detail
    print("writes %.1f s, total %.1f s; %s" % (t_writes, time.monotonic() - t0, detail))
