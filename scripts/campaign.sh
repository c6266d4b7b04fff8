#!/usr/bin/env bash
# The hostile-input campaign through every entry point (issue #11): mutated index files
# (bit flips, boundary header words, truncation, NaN/inf rows, swapped blocks; half with
# a recomputed checksum) through the CLI (`panns info --verify`, `panns query`), the C
# API, the Go binding and the Python package; then kill -9 during `panns build -o` onto an
# existing index. Every process must exit normally (no signal, no "panicked"), every
# answer must keep the invariants (see scripts/campaign/*), and a killed save must leave
# either the old or the new file, each verifying.
#
#   scripts/campaign.sh [MUTANTS_PER_BASE=250] [KILLS=30]
#
# Not part of scripts/test.sh (minutes); the in-memory campaign is (panns-io/tests/campaign.rs).
# Needs the Python venv of bindings/python/test.sh (PANNS_PYVENV) and Go.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PER=${1:-250}
KILLS=${2:-30}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/panns-campaign.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
VENV=${PANNS_PYVENV:-${TMPDIR:-/tmp}/panns-pyvenv}
fail=0

# Two builds: with `--example` given, cargo builds only that target, not the CLI binary.
die() { echo "campaign: $*" >&2; echo "campaign: FAILED"; exit 1; }
cargo build -q --release -p panns-cli --bin panns || die "cannot build the panns CLI"
cargo build -q --release -p panns-io --example campaign || die "cannot build the campaign example"
PANNS=$CARGO_TARGET_DIR/release/panns
[ -x "$PANNS" ] || die "no CLI binary at $PANNS"
"$CARGO_TARGET_DIR/release/examples/campaign" "$PER" --write "$WORK/files" || die "cannot write the mutated files"
FILES=("$WORK"/files/*.panns)

# crashed STATUS STDERR_FILE: a signal, or a panic message, is a crash.
crashed() { [ "$1" -ge 128 ] || grep -qiE "panicked|a bug in panns" "$2"; }

# 1. The CLI, one process per file and command.
cli_runs=0 cli_refused=0 cli_crashes=0
for f in "${FILES[@]}"; do
    for cmd in "info --verify" "info" "query -k 5 --budget 20 --vector 0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0,1.1,1.2"; do
        cli_runs=$((cli_runs + 1))
        # shellcheck disable=SC2086
        "$PANNS" $cmd "$f" > "$WORK/out" 2> "$WORK/err"
        st=$?
        if crashed "$st" "$WORK/err"; then
            cli_crashes=$((cli_crashes + 1))
            [ "$cli_crashes" -le 3 ] && { echo "CLI crash ($st): panns $cmd $f"; head -3 "$WORK/err"; }
        elif [ "$st" -ne 0 ]; then
            cli_refused=$((cli_refused + 1))
            [ -s "$WORK/err" ] || { cli_crashes=$((cli_crashes + 1)); echo "CLI: exit $st without a message: $f"; }
        elif [[ $cmd == query* ]] && grep -qi nan "$WORK/out"; then
            cli_crashes=$((cli_crashes + 1)); echo "CLI: NaN distance: $f"
        fi
    done
done
echo "cli: ${#FILES[@]} files, $cli_runs runs ($cli_refused refused with a message), $cli_crashes crashes or bad answers"
[ "$cli_crashes" -eq 0 ] || fail=1
# The unmutated base files are among them: a CLI that refuses everything is broken.
[ "$cli_refused" -lt "$cli_runs" ] || { echo "CLI: every run was refused"; fail=1; }

# 2. The C API.
bash scripts/build-lib.sh "$WORK/prefix" > /dev/null || die "cannot build libpanns"
cc -O2 -std=c11 -I"$WORK/prefix/include" scripts/campaign/campaign.c -o "$WORK/c-campaign" \
    -L"$WORK/prefix/lib" -lpanns -lm -Wl,-rpath,"$WORK/prefix/lib" || die "cannot compile campaign.c"
"$WORK/c-campaign" "${FILES[@]}" 2> "$WORK/err"; st=$?
crashed "$st" "$WORK/err" && { echo "C: crashed ($st)"; head -3 "$WORK/err"; }
[ "$st" -eq 0 ] || fail=1

# 3. Go.
(cd bindings/go && PKG_CONFIG_PATH="$WORK/prefix/lib/pkgconfig" CGO_LDFLAGS="-Wl,-rpath,$WORK/prefix/lib" \
    go build -o "$WORK/go-campaign" ./cmd/campaign) || die "cannot build the Go campaign"
"$WORK/go-campaign" "${FILES[@]}" 2> "$WORK/err"; st=$?
crashed "$st" "$WORK/err" && { echo "Go: crashed ($st)"; head -3 "$WORK/err"; }
[ "$st" -eq 0 ] || fail=1

# 4. Python.
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import panns._panns" 2> /dev/null; then
    (cd "$WORK" && "$VENV/bin/python" "$ROOT/scripts/campaign/campaign.py" "${FILES[@]}") 2> "$WORK/err"; st=$?
    crashed "$st" "$WORK/err" && { echo "Python: crashed ($st)"; head -3 "$WORK/err"; }
    [ "$st" -eq 0 ] || fail=1
else
    echo "python: skipped (no venv with panns at $VENV: run bindings/python/test.sh first)"
fi

# 5. kill -9 during a save over an existing index: the target is the old or the new file
# (both verify), and the next save removes the temp files of killed writers.
python3 - "$WORK/data.csv" <<'PY'
import random, sys
r = random.Random(3)
with open(sys.argv[1], "w") as f:
    for _ in range(20000):
        f.write(",".join(f"{r.gauss(0, 1):.5f}" for _ in range(32)) + "\n")
PY
target=$WORK/kill.panns
t0=$(date +%s%N)
"$PANNS" build --trees 4 --threads 1 -o "$target" "$WORK/data.csv" > /dev/null 2> "$WORK/err" || { cat "$WORK/err"; die "the first build for the kill -9 runs failed"; }
ms=$(( ($(date +%s%N) - t0) / 1000000 ))   # one build's time: kills land anywhere in it
kills=0 kill_bad=0
for i in $(seq 1 "$KILLS"); do
    "$PANNS" build --trees 4 --seed "$i" --threads 1 -o "$target" "$WORK/data.csv" > /dev/null 2>&1 &
    pid=$!
    sleep "$(awk -v ms="$ms" -v r="$RANDOM" 'BEGIN { printf "%.3f", ms * (r / 32768) * 1.1 / 1000 }')"
    kill -9 "$pid" 2> /dev/null && kills=$((kills + 1))
    wait "$pid" 2> /dev/null
    "$PANNS" info --verify "$target" > /dev/null 2>&1 || { kill_bad=$((kill_bad + 1)); echo "kill $i: $target does not verify"; }
done
"$PANNS" build --trees 4 --threads 1 -o "$target" "$WORK/data.csv" > /dev/null 2>&1 || kill_bad=$((kill_bad + 1))
left=$(find "$WORK" -maxdepth 1 -name '.kill.panns.tmp-*' | wc -l)
echo "kill -9: $KILLS saves started, $kills killed mid-run, $kill_bad targets that did not verify, $left temp files left after the next save"
[ "$kill_bad" -eq 0 ] && [ "$left" -eq 0 ] || fail=1

# 6. A full disk (a 1 MiB tmpfs; needs mount rights, else skipped): saving a bigger index
# over a small one fails with a message naming the path, the old file still verifies,
# and no temp file is left behind.
mkdir -p "$WORK/full"
if mount -t tmpfs -o size=1m tmpfs "$WORK/full" 2> /dev/null; then
    head -n 200 "$WORK/data.csv" > "$WORK/small.csv"
    "$PANNS" build --trees 2 -o "$WORK/full/ix.panns" "$WORK/small.csv" > /dev/null 2>&1
    before=$(sha256sum < "$WORK/full/ix.panns")
    "$PANNS" build --trees 4 -o "$WORK/full/ix.panns" "$WORK/data.csv" > /dev/null 2> "$WORK/err"; st=$?
    after=$(sha256sum < "$WORK/full/ix.panns")
    tmp_left=$(find "$WORK/full" -name '.*tmp-*' | wc -l)
    full_ok=1
    { [ "$st" -ne 0 ] && [ "$st" -lt 128 ] && grep -q "ix.panns" "$WORK/err"; } || full_ok=0
    [ "$before" = "$after" ] || full_ok=0
    "$PANNS" info --verify "$WORK/full/ix.panns" > /dev/null 2>&1 || full_ok=0
    [ "$tmp_left" -eq 0 ] || full_ok=0
    echo "full disk: exit $st, message: $(head -c 160 "$WORK/err" | tr '\n' ' '); old file intact: $([ "$before" = "$after" ] && echo yes || echo NO); temp files left: $tmp_left"
    umount "$WORK/full"
    [ "$full_ok" -eq 1 ] || fail=1
else
    echo "full disk: skipped (cannot mount a tmpfs here)"
fi

[ "$fail" -eq 0 ] && echo "campaign: clean" || echo "campaign: FAILED"
exit "$fail"
