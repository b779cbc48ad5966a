#!/bin/sh
# Generates configure and Makefile.in; automake's TAP driver is copied from the automake package.
set -e
cd "$(dirname "$0")"
mkdir -p build-aux m4
autoreconf -fi
am_dir=$(automake --print-libdir)
cp -f "$am_dir/tap-driver.sh" build-aux/tap-driver.sh
