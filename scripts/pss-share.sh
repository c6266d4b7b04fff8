#!/usr/bin/env bash
# Memory-sharing demo: several processes in different languages open the same index file
# (memory-mapped by libpanns), search it, and sleep; the script then reads each process's
# proportional set size (PSS: shared pages divided among the processes mapping them) and
# resident set size (RSS) from /proc, and prints them beside the index file's size.
#
#   scripts/pss-share.sh [N_ITEMS [DIM]]      (default 200000 x 128, about 100 MB of vectors)
#
# Processes: 2 x Python (the panns package), Go (bindings/go/cmd/hold), and the C holder of
# bindings/c when it provides one (bindings/c/hold.c, built with the installed libpanns), else a
# second Go process. Each runs approximate searches and a few exact scans (which read every
# vector), so the vectors' pages are resident in all of them.
#
# Environment: CARGO_TARGET_DIR, PANNS_PREFIX (libpanns install prefix, default
# $CARGO_TARGET_DIR/panns-prefix), PANNS_PYVENV (a venv with panns installed; default the one of
# bindings/python/test.sh, which is created/installed into when panns is missing),
# PANNS_PSS_DIR (work directory, default ${TMPDIR:-/tmp}/panns-pss).
# Not part of the test suite.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${1:-200000}
DIM=${2:-128}
WORK=${PANNS_PSS_DIR:-${TMPDIR:-/tmp}/panns-pss}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PREFIX=${PANNS_PREFIX:-$TARGET/panns-prefix}
VENV=${PANNS_PYVENV:-${TMPDIR:-/tmp}/panns-pyvenv}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd -P)   # /proc/PID/smaps names the mapped file by its physical path
INDEX=$WORK/index.panns

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
}
trap cleanup EXIT

echo "== libpanns (scripts/build-lib.sh $PREFIX)"
"$ROOT/scripts/build-lib.sh" "$PREFIX" >"$WORK/build-lib.log" 2>&1 || { cat "$WORK/build-lib.log" >&2; exit 1; }
PC=$(find "$PREFIX" -name panns.pc -print -quit)
export PKG_CONFIG_PATH="$(dirname "$PC")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
LIBDIR=$(pkg-config --variable=libdir panns)
export LD_LIBRARY_PATH="$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

echo "== Python package (venv $VENV)"
if [ ! -x "$VENV/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import panns' 2>/dev/null; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$ROOT/bindings/python"
fi
PY=$VENV/bin/python

echo "== Go holder"
(cd "$ROOT/bindings/go" && GOTOOLCHAIN=${GOTOOLCHAIN:-local} go build -o "$WORK/hold-go" ./cmd/hold)

C_HOLDER=""
if [ -f "$ROOT/bindings/c/hold.c" ]; then
    echo "== C holder (bindings/c/hold.c)"
    # shellcheck disable=SC2046
    cc -O2 -o "$WORK/hold-c" "$ROOT/bindings/c/hold.c" $(pkg-config --cflags --libs panns)
    C_HOLDER=$WORK/hold-c
fi

echo "== index: $N x $DIM Gaussian vectors, angular, 16 trees -> $INDEX"
(cd "$WORK" && "$PY" - "$N" "$DIM" "$INDEX" <<'PYEOF'
import sys, time
import numpy as np
from panns import PannsIndex
n, dim, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
data = np.random.default_rng(1).standard_normal((n, dim), dtype=np.float32)
p = PannsIndex(dimension=dim, metric="angular")
p.load_matrix(data)
p.parallelize(True)
t = time.time()
p.build(16)
p.save(path)
print(f"   built in {time.time() - t:.1f} s")
PYEOF
)

cat > "$WORK/hold.py" <<'PYEOF'
"""Opens an index with the panns package, searches it, prints 'ready', sleeps."""
import os, sys, time
import numpy as np
from panns import PannsIndex
p = PannsIndex()
p.load(sys.argv[1])
rng = np.random.default_rng(os.getpid())
queries = rng.standard_normal((100, p.dimension), dtype=np.float32)
for q in queries:
    p.query(q, 10)
for q in queries[:2]:
    p.linear_search(q, 10)  # reads every vector
print(f"ready pid={os.getpid()} items={len(p)}", flush=True)
time.sleep(float(sys.argv[2]))
PYEOF

# start LANG CMD...: runs a holder in the background, its output in $WORK/LANG-NUMBER.out.
LANGS=()
OUTS=()
start() {
    local lang=$1
    shift
    local out=$WORK/$lang-${#PIDS[@]}.out
    "$@" >"$out" 2>&1 &
    PIDS+=($!)
    LANGS+=("$lang")
    OUTS+=("$out")
}
start python "$PY" "$WORK/hold.py" "$INDEX" 300
start python "$PY" "$WORK/hold.py" "$INDEX" 300
start go "$WORK/hold-go" -index "$INDEX" -sleep 300s
if [ -n "$C_HOLDER" ]; then
    start c "$C_HOLDER" "$INDEX" 300
else
    start go "$WORK/hold-go" -index "$INDEX" -sleep 300s
fi

echo "== waiting for ${#PIDS[@]} processes to open and search the index"
for i in "${!PIDS[@]}"; do
    for _ in $(seq 1 600); do
        grep -q '^ready' "${OUTS[$i]}" 2>/dev/null && break
        if ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
            echo "process ${LANGS[$i]} (${PIDS[$i]}) exited:" >&2
            cat "${OUTS[$i]}" >&2
            exit 1
        fi
        sleep 0.5
    done
    grep -q '^ready' "${OUTS[$i]}" || { echo "timeout waiting for ${LANGS[$i]}" >&2; exit 1; }
done

# kb FIELD FILE: the value in kB of a "Field:  N kB" line of an smaps_rollup file.
kb() { awk -v f="$1:" '$1 == f { print $2; exit }' "$2"; }
# index_kb PID: "RSS PSS" (kB) of the mappings of the index file in /proc/PID/smaps.
index_kb() {
    awk -v path="$INDEX" '
        /^[0-9a-f]+-[0-9a-f]+ / { cur = ($6 == path) ; next }
        cur && $1 == "Rss:" { rss += $2 }
        cur && $1 == "Pss:" { pss += $2 }
        END { printf "%d %d\n", rss, pss }' "/proc/$1/smaps"
}

FILE_KB=$(( $(stat -c %s "$INDEX") / 1024 ))
printf '\n%-8s %8s %12s %12s %14s %14s\n' lang pid "RSS kB" "PSS kB" "index RSS kB" "index PSS kB"
sum_rss=0 sum_pss=0 sum_irss=0 sum_ipss=0
for i in "${!PIDS[@]}"; do
    pid=${PIDS[$i]}
    rss=$(kb Rss "/proc/$pid/smaps_rollup")
    pss=$(kb Pss "/proc/$pid/smaps_rollup")
    read -r irss ipss < <(index_kb "$pid")
    printf '%-8s %8d %12d %12d %14d %14d\n' "${LANGS[$i]}" "$pid" "$rss" "$pss" "$irss" "$ipss"
    sum_rss=$((sum_rss + rss)) sum_pss=$((sum_pss + pss))
    sum_irss=$((sum_irss + irss)) sum_ipss=$((sum_ipss + ipss))
done
printf '%-8s %8s %12d %12d %14d %14d\n' total "" "$sum_rss" "$sum_pss" "$sum_irss" "$sum_ipss"
echo
echo "index file: $FILE_KB kB; index pages resident summed over processes (RSS): $sum_irss kB;"
echo "summed PSS of the index mapping: $sum_ipss kB = $(awk -v a="$sum_ipss" -v b="$FILE_KB" 'BEGIN { printf "%.2f", a / b }') x the file size"
echo "(${#PIDS[@]} processes: without sharing the index would cost about ${#PIDS[@]} x its resident pages)"
