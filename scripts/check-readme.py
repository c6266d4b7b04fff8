#!/usr/bin/env python3
"""Checks that README code blocks marked `<!-- file: PATH -->` match that file.

The marked files are compiled and run by the test suites, so a README example that
drifts from its file fails here instead of silently rotting. A block passes when its
text appears verbatim in the file (so a README may show an excerpt).
"""
import pathlib, re, sys

root = pathlib.Path(__file__).resolve().parent.parent
text = (root / "README.md").read_text()
pat = re.compile(r"<!-- file: (\S+) -->\s*```[a-z+]*\n(.*?)```", re.S)
bad = 0
blocks = pat.findall(text)
for path, body in blocks:
    f = root / path
    if not f.exists():
        print(f"README: {path} does not exist"); bad += 1; continue
    if body.strip() not in f.read_text():
        print(f"README: the block marked {path} differs from the file"); bad += 1
print(f"readme: {len(blocks) - bad} passed, {bad} failed")
sys.exit(1 if bad else 0)
