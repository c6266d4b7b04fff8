"""The original README quick start runs unchanged (with `range` for `xrange`)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "quickstart.py"


def test_quickstart_runs(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(EXAMPLE)], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "test.idx").is_file()
    result = ast.literal_eval(out.stdout.strip())
    assert isinstance(result, list) and len(result) == 10
    assert all(isinstance(i, int) and 0 <= i < 1000 for i, _ in result)
    dists = [d for _, d in result]
    assert dists == sorted(dists) and dists[0] > 0
