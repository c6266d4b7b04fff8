"""Filtered search through Python: panns `query(..., filter=mask)` against hnswlib's
`knn_query(..., filter=callable)` and an exact NumPy scan over the allowed items, at several
selectivities, one query per call on one thread, in one process and sitting.

For each data set and selectivity s, a random allow-mask keeps a fraction s of the items
(seeded; independent of the vectors). The truth is the exact 10 nearest allowed items (NumPy,
float64). Each method sweeps its effort knob upwards (panns: budget; hnswlib: ef) and stops at
the first setting whose recall@10 reaches the target (default 0.95). Then the chosen settings of
the three methods are timed in --rounds interleaved rounds (so load spikes hit all alike); the
row reports the setting, its recall and the median QPS of the rounds (QPS = queries / sum of
per-call wall times). The exact scan gets the
allowed rows gathered and their norms computed ahead of time (not timed: as if the filter were
fixed), then one matrix-vector product and an argpartition per query.

"panns prepared" is the same search with the mask prepared once ahead of the timing
(`index.prepare_filter(mask)`, as the NumPy scan's block is gathered ahead), passed as
`filter=`: the calls skip packing the mask and listing the allowed ids.

panns reports (from `query_with_stats(..., filter=mask)`) whether its planner took the exact
scan over the allowed items (2 * budget >= allowed, or with a graph allowed^2 <= 16 * budget *
n, or allowed <= 80 * budget for a two-hop walk: at most 1 in 6 allowed on 256-d or longer
vectors) or the filtered graph walk. hnswlib's
filter is the fastest Python callable we found (`list.__getitem__` of the mask as a list).

    OMP_NUM_THREADS=1 python benches/filter_bench.py DATA.hdf5 [DATA2.hdf5 ...] \\
        [--queries 200] [--target 0.95] [--csv out.csv] [--plot out.svg] [--cache DIR] \\
        [--dtype i8]

--plot writes an SVG (no plotting library needed): per data set, QPS (log scale) and recall@10
against selectivity (log scale), one line per method.

Indexes are cached in --cache (default /tmp/panns-filter-bench) keyed by file name and
parameters: panns 8 trees + graph degree 24; hnswlib M 16, ef_construction 200.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import h5py  # noqa: E402
import numpy as np  # noqa: E402

import panns  # noqa: E402

try:
    import hnswlib  # noqa: E402
except ImportError:  # pragma: no cover - optional peer
    hnswlib = None

SELECTIVITIES = [0.5, 0.1, 0.01, 0.001]
PANNS_BUDGETS = [
    10,
    16,
    24,
    32,
    48,
    64,
    96,
    128,
    192,
    256,
    384,
    512,
    768,
    1024,
    2048,
    4096,
    8192,
    16384,
]
HNSW_EFS = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 2048, 4096]


def load(path: str):
    with h5py.File(path, "r") as f:
        train = np.ascontiguousarray(f["train"][:], dtype=np.float32)
        test = np.ascontiguousarray(f["test"][:], dtype=np.float32)
        metric = f.attrs["distance"]
    metric = metric.decode() if isinstance(metric, bytes) else str(metric)
    return train, test, metric


def normalize(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def exact_allowed(train: np.ndarray, test: np.ndarray, allowed: np.ndarray, k: int) -> np.ndarray:
    """Ids of the exact k nearest allowed items of every query (float64; Euclidean on the
    given vectors: angular data is normalised by the caller)."""
    xa = train[allowed].astype(np.float64)
    norms = (xa * xa).sum(1)
    out = np.empty((len(test), min(k, len(xa))), dtype=np.int64)
    for i, q in enumerate(test.astype(np.float64)):
        d = norms - 2 * xa @ q
        kk = out.shape[1]
        part = np.argpartition(d, kk - 1)[:kk] if kk < len(d) else np.arange(len(d))
        out[i] = allowed[part[np.argsort(d[part], kind="stable")]]
    return out


def recall(found: list, truth: np.ndarray) -> float:
    hits = sum(len(set(f) & set(t.tolist())) for f, t in zip(found, truth))
    return hits / truth.size


def time_queries(fn, queries) -> tuple[list, float]:
    found, total = [], 0.0
    for q in queries:
        t = time.perf_counter()
        r = fn(q)
        total += time.perf_counter() - t
        found.append(r)
    return found, len(queries) / total


def build_panns(train, metric, cache, dtype="f32"):
    suffix = "" if dtype == "f32" else f"-{dtype}"
    path = os.path.join(cache, f"panns-{len(train)}x{train.shape[1]}-{metric}-t8-g24{suffix}.panns")
    m = "angular" if metric == "angular" else "euclidean"
    p = panns.PannsIndex(train.shape[1], m, dtype=dtype)
    if os.path.exists(path):
        p.load(path)
        return p
    p.load_matrix(train)
    t = time.perf_counter()
    p.build(8, graph_degree=24)
    print(f"  panns build {time.perf_counter() - t:.1f} s", file=sys.stderr)
    p.save(path)
    return p


def build_hnsw(train, metric, cache):
    space = "cosine" if metric == "angular" else "l2"
    path = os.path.join(cache, f"hnsw-{len(train)}x{train.shape[1]}-{metric}-M16-efc200.bin")
    h = hnswlib.Index(space=space, dim=train.shape[1])
    if os.path.exists(path):
        h.load_index(path, max_elements=len(train))
    else:
        h.init_index(max_elements=len(train), M=16, ef_construction=200, random_seed=1)
        t = time.perf_counter()
        h.add_items(train, np.arange(len(train)))
        print(f"  hnswlib build {time.perf_counter() - t:.1f} s", file=sys.stderr)
        h.save_index(path)
    h.set_num_threads(1)
    return h


def sweep(knobs, run, truth, target):
    """Runs `run(knob)` for growing knobs; returns the first row reaching the target recall
    (or the best one)."""
    best = None
    for knob in knobs:
        found, qps = run(knob)
        r = recall(found, truth)
        row = (knob, r, qps)
        if best is None or r > best[1]:
            best = row
        if r >= target:
            return row
    return best


COLOURS = {"panns": "#d62728", "panns prepared": "#ff7f0e", "hnswlib": "#1f77b4", "numpy exact scan": "#7f7f7f"}
PW, PH, M = 330, 220, 55  # plot panel size and margin


def svg_panel(out, name, mine, di, pi, label, col, logy):
    """One panel: column `col` of the rows `mine` (one data set) against selectivity."""
    sels = sorted({r[1] for r in mine})
    x0, x1 = math.log10(min(sels)), math.log10(max(sels))
    ox, oy = M + pi * (PW + M), 40 + di * (PH + M + 25)
    vals = [r[col] for r in mine]
    if logy:
        y0, y1 = math.floor(math.log10(min(vals))), math.ceil(math.log10(max(vals)))
        ticks = [10**e for e in range(y0, y1 + 1)]
    else:
        y0, y1 = min(0.9, math.floor(min(vals) * 20) / 20), 1.0
        ticks = [round(y0 + i * (y1 - y0) / 4, 3) for i in range(5)]

    def px(s):
        return ox + (math.log10(s) - x0) / (x1 - x0 or 1) * PW

    def py(v):
        fv = math.log10(v) if logy else v
        return oy + PH - (fv - y0) / (y1 - y0 or 1) * PH

    out.append(f'<text x="{ox}" y="{oy - 8}" font-weight="bold">{name}: {label}</text>')
    out.append(f'<rect x="{ox}" y="{oy}" width="{PW}" height="{PH}" fill="none" stroke="#333"/>')
    for tv in ticks:
        y = py(tv)
        out.append(f'<line x1="{ox}" x2="{ox + PW}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{ox - 4}" y="{y + 4:.1f}" text-anchor="end">{tv:g}</text>')
    for s in sels:
        out.append(f'<text x="{px(s):.1f}" y="{oy + PH + 14}" text-anchor="middle">{s:g}</text>')
    if not logy:
        y = py(0.95)
        out.append(
            f'<line x1="{ox}" x2="{ox + PW}" y1="{y:.1f}" y2="{y:.1f}" stroke="#999" '
            'stroke-dasharray="4,3"/>'
        )
    for li, (method, colour) in enumerate(COLOURS.items()):
        pts = sorted((r[1], r[col]) for r in mine if r[3] == method)
        if not pts:
            continue
        d = " ".join(f"{px(s):.1f},{py(v):.1f}" for s, v in pts)
        out.append(f'<polyline points="{d}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for s, v in pts:
            out.append(f'<circle cx="{px(s):.1f}" cy="{py(v):.1f}" r="3" fill="{colour}"/>')
        if di == 0 and pi == 0:
            y = oy + 16 + 14 * li
            out.append(f'<text x="{ox + 8}" y="{y}" fill="{colour}">{method}</text>')


def svg_plot(rows, path: str) -> None:
    """QPS and recall@10 against selectivity (log), one pair of panels per data set."""
    names = list(dict.fromkeys(r[0] for r in rows))
    width, height = 2 * (PW + M) + M, len(names) * (PH + M + 25) + 40
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    for di, name in enumerate(names):
        mine = [r for r in rows if r[0] == name]
        svg_panel(out, name, mine, di, 0, "QPS (log) vs selectivity", 6, True)
        svg_panel(out, name, mine, di, 1, "recall@10 vs selectivity", 5, False)
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def one_selectivity(a, name, train, test, p, h, s, rng):
    """The rows of the three methods at selectivity `s` (see the module's docstring)."""
    n = len(train)
    queries = list(test)
    mask = rng.random(n) < s
    if mask.sum() < a.k:
        mask[rng.choice(n, a.k, replace=False)] = True
    allowed = np.flatnonzero(mask)
    m = len(allowed)
    truth = exact_allowed(train, test, allowed, a.k)

    def run_panns(budget):
        def one(q):
            return [i for i, _ in p.query(q, a.k, budget, filter=mask)]

        return time_queries(one, queries)

    b, r_panns, _ = sweep(PANNS_BUDGETS, run_panns, truth, a.target)
    # The planner's choice, as the search reports it (the same for every query here:
    # it depends only on the budget and the allowed count).
    scans = p.query_with_stats(queries[0], a.k, b, filter=mask)[1]["exact_scan"]
    timers = {"panns": lambda: run_panns(b)[1]}
    settings = {"panns": (f"budget={b} ({'exact scan' if scans else 'walk'})", r_panns)}
    # The same filter prepared once (not timed, as the NumPy scan's gathered block is not):
    # each call then skips packing the mask and listing the allowed ids.
    prepared = p.prepare_filter(mask)

    def run_prepared(budget):
        def one(q):
            return [i for i, _ in p.query(q, a.k, budget, filter=prepared)]

        return time_queries(one, queries)

    found, _ = run_prepared(b)
    timers["panns prepared"] = lambda: run_prepared(b)[1]
    settings["panns prepared"] = settings["panns"][0], recall(found, truth)
    if h is not None:
        allow = mask.tolist().__getitem__

        def hnsw_one(q):
            try:
                return h.knn_query(q, k=a.k, filter=allow)[0][0].tolist()
            except RuntimeError:  # fewer than k allowed items reached at this ef
                return []

        def run_hnsw(ef):
            h.set_ef(ef)
            return time_queries(hnsw_one, queries)

        ef, r_hnsw, _ = sweep(HNSW_EFS, run_hnsw, truth, a.target)
        timers["hnswlib"] = lambda: run_hnsw(ef)[1]
        settings["hnswlib"] = (f"ef={ef}", r_hnsw)
    xa = np.ascontiguousarray(train[allowed])
    norms = (xa * xa).sum(1)
    kk = min(a.k, m)

    def scan(q):
        d = norms - 2 * (xa @ q)
        part = np.argpartition(d, kk - 1)[:kk] if kk < len(d) else np.arange(len(d))
        return allowed[part[np.argsort(d[part])]].tolist()

    found, _ = time_queries(scan, queries)
    timers["numpy exact scan"] = lambda: time_queries(scan, queries)[1]
    settings["numpy exact scan"] = ("-", recall(found, truth))
    qps = {k: [] for k in timers}
    for _ in range(a.rounds):
        for k, timer in timers.items():
            qps[k].append(timer())
    rows = [(name, s, m, k, *settings[k], float(np.median(qps[k]))) for k in timers]
    for row in rows:
        print(
            f"  {row[0]} s={row[1]:<6} allowed={row[2]:<6} {row[3]:<17} {row[4]:<22} "
            f"recall {row[5]:.3f}  {row[6]:9.1f} qps",
            file=sys.stderr,
            flush=True,
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="+")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--target", type=float, default=0.95)
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--csv")
    ap.add_argument("--plot")
    ap.add_argument("--cache", default="/tmp/panns-filter-bench")
    ap.add_argument("--dtype", default="f32", help="how panns stores its vectors: f32 or i8")
    ap.add_argument("--selectivities", default=",".join(map(str, SELECTIVITIES)))
    a = ap.parse_args()
    os.makedirs(a.cache, exist_ok=True)
    rows = []
    for path in a.data:
        name = os.path.basename(path).rsplit(".", 1)[0]
        train, test, metric = load(path)
        test = test[: a.queries]
        if metric == "angular":
            train, test = normalize(train), normalize(test)
        print(
            f"{name}: {len(train)} x {train.shape[1]} {metric}, {len(test)} queries, k = {a.k}",
            file=sys.stderr,
        )
        p = build_panns(train, metric, a.cache, a.dtype)
        h = build_hnsw(train, metric, a.cache) if hnswlib is not None else None
        rng = np.random.default_rng(12345)
        for s in (float(x) for x in a.selectivities.split(",")):
            rows += one_selectivity(a, name, train, test, p, h, s, rng)
    print("| data | selectivity | allowed | method | setting | recall@10 | QPS |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]:g} | {r[2]} | {r[3]} | {r[4]} | {r[5]:.3f} | {r[6]:.0f} |")
    if a.plot:
        svg_plot(rows, a.plot)
    if a.csv:
        with open(a.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["data", "selectivity", "allowed", "method", "setting", "recall", "qps"])
            w.writerows(rows)


if __name__ == "__main__":
    main()
