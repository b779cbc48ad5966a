#!/bin/sh
# Runs libFuzzer targets for FUZZ_SECONDS each on a scratch copy of their seed corpus; TAP out.
#
# usage: run.sh FUZZDIR TARGET...
#   FUZZDIR  the source folder tests/fuzz: corpus/<name>/ holds the seeds of fuzz_<name>, and
#            fuzz_<name>.dict / fuzz_<name>.options (extra libFuzzer flags, one a line) are used
#            when present
#   TARGET   a built fuzzer, e.g. tests/fuzz/fuzz_text
# environment:
#   FUZZ_SECONDS    seconds per target (default 60)
#   FUZZ_ARTIFACTS  where a failing input and its log are kept (default ./fuzz-artifacts)
#
# One line per target: "ok N - fuzz_x: R runs in S s, cov C, ft F, corpus K" or "not ok N - ..."
# followed by the end of libFuzzer's report as "# " lines. Exits non-zero if any target crashed,
# leaked, timed out, ran out of memory or could not run. The seeds are copied so that the inputs
# libFuzzer adds never land in the source tree.
set -u

if [ $# -lt 2 ]; then
    echo "usage: $0 FUZZDIR TARGET..." >&2
    exit 2
fi
fuzzdir=$1
shift
seconds=${FUZZ_SECONDS:-60}
case $seconds in
'' | *[!0-9]*)
    echo "$0: FUZZ_SECONDS must be a number of seconds, not '$seconds'" >&2
    exit 2
    ;;
esac
artifacts=${FUZZ_ARTIFACTS:-$(pwd)/fuzz-artifacts}
# libFuzzer stops itself after max_total_time; this only catches a run that hangs outright
# (a per-input hang is libFuzzer's -timeout and ends as a failure of its own).
hard_limit=$((seconds + 300))

# libFuzzer, the sanitizers and fuzz targets' own checks each name a failure on one line.
failure_re='ERROR: (libFuzzer|[A-Za-z]*Sanitizer)|runtime error:|property violated|ALARM'
failure_re="$failure_re|out-of-memory"

# The value after "key: " on the last line of the log that has it.
last_stat() {
    sed -n "s|.* $2: \([^ ]*\).*|\1|p" "$1" | tail -n 1
}

echo "1..$#"
n=0
failed=0
for target in "$@"; do
    n=$((n + 1))
    name=$(basename "$target")
    short=${name#fuzz_}
    if [ ! -x "$target" ]; then
        echo "not ok $n - $name: not built (make fuzz)"
        failed=$((failed + 1))
        continue
    fi

    scratch=$(mktemp -d "${TMPDIR:-/tmp}/mcstore-$name.XXXXXX")
    mkdir "$scratch/corpus"
    if [ -d "$fuzzdir/corpus/$short" ]; then
        cp "$fuzzdir/corpus/$short"/* "$scratch/corpus/" 2>/dev/null
    fi
    seeds=$(ls "$scratch/corpus" | wc -l)

    # -max_len: 4096 fits two text lines of PROTO_TEXT_LINE_MAX; a target may raise it.
    # -timeout: seconds for one input; every target is meant to take microseconds.
    set -- -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=4096 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$scratch/"
    if [ -f "$fuzzdir/$name.dict" ]; then
        set -- "$@" -dict="$fuzzdir/$name.dict"
    fi
    if [ -f "$fuzzdir/$name.options" ]; then
        # later flags win in libFuzzer, so a target's options override the defaults above
        for opt in $(grep -v '^[[:space:]]*#' "$fuzzdir/$name.options"); do
            set -- "$@" "$opt"
        done
    fi

    log="$scratch/$name.log"
    rc=0
    timeout --kill-after=10 "$hard_limit" "$target" "$@" "$scratch/corpus" >"$log" 2>&1 || rc=$?

    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(last_stat "$log" cov)
    ft=$(last_stat "$log" ft)
    corp=$(last_stat "$log" corp)
    speed=$(last_stat "$log" exec/s)
    rss=$(last_stat "$log" rss)
    found=$(ls "$scratch" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' || true)
    if [ "$rc" -eq 0 ] && [ -z "$found" ] && [ -n "$runs" ]; then
        echo "ok $n - $name: ${runs} runs in ${seconds} s (${speed:-?}/s), cov ${cov:-?}," \
            "ft ${ft:-?}, corpus ${corp:-?} from $seeds seeds, rss ${rss:-?}"
    else
        failed=$((failed + 1))
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            why="hung: killed after $hard_limit s"
        else
            why=$(grep -m 1 -E "$failure_re" "$log" | sed 's/^==[0-9]*== *//; s/ on address .*//')
        fi
        mkdir -p "$artifacts"
        saved=""
        for f in $found; do
            cp "$scratch/$f" "$artifacts/$name-$f"
            saved="$saved $artifacts/$name-$f"
        done
        cp "$log" "$artifacts/$name.log"
        echo "not ok $n - $name: ${why:-exit status $rc} (exit $rc, ${runs:-?} runs)"
        echo "#   input:${saved:- none saved}"
        echo "#   log: $artifacts/$name.log"
        echo "#   reproduce: $target <input>"
        # the report itself (sanitizers print the stack after their ERROR line), else the end
        first=$(grep -n -m 1 -E "$failure_re" "$log" | cut -d: -f1)
        if [ -n "$first" ]; then
            sed -n "${first},$((first + 50))p" "$log"
        else
            tail -n 40 "$log"
        fi | sed 's/^/# /'
    fi
    rm -rf "$scratch"
done

if [ "$failed" -ne 0 ]; then
    echo "# fuzz: $failed of $n targets failed"
    exit 1
fi
exit 0
