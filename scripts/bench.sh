#!/usr/bin/env bash
# Side-by-side benchmark in one sitting: the peers (Annoy, hnswlib, FAISS, USearch,
# PyNNDescent via ../shared/bench) and `panns eval` (trees only, and with a graph) on
# the same HDF5 files, then the summary table of docs/benchmarks.md.
#   bash scripts/bench.sh [DATA.hdf5 ...]      (default: the three sets of issue #6)
# Env: QUERIES (500), POINT (6 s per timing point), TREES (trees-only grid, "16,32,64"), GTREES ("8"), GRAPH (24),
#      LIBS (peer list for run_peers.py), OUT (results/), VENV (/tmp/benchvenv).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED=${SHARED:-$ROOT/../shared}
OUT=${OUT:-$ROOT/results}
QUERIES=${QUERIES:-500}
POINT=${POINT:-6}   # seconds of single-thread timing per point (both sides)
VENV=${VENV:-/tmp/benchvenv}
mkdir -p "$OUT"
[ -x "$VENV/bin/python" ] || VENV="$VENV" bash "$SHARED/bench/setup.sh"
cargo build --release -q -p panns-cli
PANNS=${CARGO_TARGET_DIR:-$ROOT/target}/release/panns
if [ $# -eq 0 ]; then
  set -- "$SHARED/data/gauss-5000x200-euclidean.hdf5" \
         "$SHARED/data/sift-images-50k-128-euclidean.hdf5" \
         "$SHARED/data/minilm-docs-20k-384-angular.hdf5"
fi
for data in "$@"; do
  name=$(basename "$data" .hdf5)
  echo "=== $name: peers"
  peer_args=(--queries "$QUERIES" --point-seconds "$POINT" --out "$OUT/peers-$name.csv")
  [ -n "${LIBS:-}" ] && peer_args+=(--libs "$LIBS")
  "$VENV/bin/python" "$SHARED/bench/run_peers.py" "$data" "${peer_args[@]}"
  echo "=== $name: panns, trees only"
  "$PANNS" eval "$data" --queries "$QUERIES" --point-seconds "$POINT" --trees "${TREES:-16,32,64}" --threads 2 \
    --csv "$OUT/panns-$name.csv"
  echo "=== $name: panns, trees + graph"
  "$PANNS" eval "$data" --queries "$QUERIES" --point-seconds "$POINT" --trees "${GTREES:-8}" --graph "${GRAPH:-24}" \
    --threads 2 --csv "$OUT/panns-graph-$name.csv" \
    --plot "$OUT/$name.svg" --peers "$OUT/peers-$name.csv"
done
python3 scripts/bench-summary.py "$OUT"
