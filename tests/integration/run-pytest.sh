#!/bin/sh
# Runs the pytest integration suite against the built server; make check calls this with
# MCSTORE_SRCDIR (source tree) and MCSTORE_BIN (the daemon) set. Exit code is pytest's.
# Extra arguments go to pytest (e.g. -k differential, -x).
srcdir=${MCSTORE_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
MCSTORE_BIN=${MCSTORE_BIN:-$srcdir/mcstore}
export MCSTORE_SRCDIR="$srcdir" MCSTORE_BIN
cd "$srcdir" || exit 1
# no .pyc files or cache dirs in the source tree (make distcheck builds from a read-only one)
export PYTHONDONTWRITEBYTECODE=1
exec /usr/bin/python3 -m pytest -v -p no:cacheprovider tests/integration "$@"
