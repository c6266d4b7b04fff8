"""The hostile-file campaign through the Python package: every file named on the command
line is loaded (memory-mapped and read, with and without verification) and, when it
opens, searched every way; each answer must keep the invariants (at most min(k, len)
hits, labels < len, no NaN distance, sorted, a stored row with a non-finite value
never scores finite). A Python exception from panns is a refusal; anything else (a
crash, another exception type) is a failure. Prints one line of totals; exits 1 on a
violation."""
import math
import random
import sys

import numpy as np
import panns

REFUSED = (ValueError, OSError, MemoryError)
t = dict(inputs=0, refused=0, opened=0, searches=0, search_errors=0, violations=0)
rng = random.Random(7)


def damaged(ix, i):
    try:
        return not np.all(np.isfinite(ix.get_vector(i)))
    except REFUSED:
        return True


def check(ix, hits, k, path):
    n = len(ix)
    ok = len(hits) <= min(k, n)
    prev = -math.inf
    for label, d in hits:
        if not (0 <= label < n) or math.isnan(d) or d < prev:
            ok = False
            break
        if d != math.inf and damaged(ix, label):
            ok = False
            break
        prev = d
    if not ok:
        t["violations"] += 1
        if t["violations"] <= 3:
            print(f"violation: {path} (k {k}): {hits[:5]}", file=sys.stderr)


def search(ix, f, k, path):
    t["searches"] += 1
    try:
        hits = f()
    except REFUSED:
        t["search_errors"] += 1
        return
    check(ix, hits, k, path)


for path in sys.argv[1:]:
    for mmap in (True, False):
        for verify in (False, True):
            t["inputs"] += 1
            ix = panns.PannsIndex()
            try:
                ix.load(path, mmap=mmap, verify=verify)
            except REFUSED:
                t["refused"] += 1
                continue
            t["opened"] += 1
            dim = ix.dimension
            for _ in range(2):
                q = np.array([rng.uniform(-1, 1) for _ in range(dim)], dtype=np.float32)
                k = rng.choice([1, 5, 50, 400])
                budget = rng.choice([0, 1, 20, 1000])
                search(ix, lambda: ix.query(q, k, budget=budget), k, path)
                search(ix, lambda: ix.linear_search(q, k), k, path)
                search(ix, lambda: ix.query(q, k, budget=budget, filter=lambda i: i % 3 != 0), k, path)
                try:
                    row = ix.get_vector(rng.randrange(len(ix)))
                except REFUSED:
                    continue
                search(ix, lambda: ix.query(row, k, budget=budget), k, path)
            ix.close()

print("python: {inputs} inputs ({refused} opens refused, {opened} opened), {searches} searches "
      "({search_errors} refused), {violations} invariant violations".format(**t))
sys.exit(1 if t["violations"] else 0)
