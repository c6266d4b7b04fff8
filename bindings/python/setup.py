"""Build step of the panns Python package: compiles ``libpanns.so`` with cargo and ships it.

Metadata lives in ``pyproject.toml``; this file only adds a ``build_py`` step that runs
``cargo build -p panns-ffi`` in the repository that contains this directory (two levels up, or
``$PANNS_SOURCE_DIR``) and copies ``libpanns.so`` into the ``panns`` package.

Environment:
    PANNS_CARGO_PROFILE  cargo profile (default ``release``; ``dev`` builds faster)
    CARGO_TARGET_DIR     honoured, like any cargo setting (the target directory is asked from
                         ``cargo metadata``)
    PANNS_SOURCE_DIR     the panns repository, when this directory was copied out of it
    CARGO                the cargo executable (default ``cargo`` on PATH)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import List

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent
LIBRARY = "libpanns.so"


def _repo_root() -> Path:
    """The Cargo workspace that holds ``panns-ffi``."""
    env = os.environ.get("PANNS_SOURCE_DIR")
    candidates: List[Path] = [Path(env).resolve()] if env else [HERE.parent.parent]
    for root in candidates:
        if (root / "panns-ffi" / "Cargo.toml").is_file():
            return root
    raise RuntimeError(
        f"panns: cannot find the panns repository (looked in {', '.join(map(str, candidates))}); "
        "install from a checkout (`pip install ./bindings/python`) or set PANNS_SOURCE_DIR"
    )


def _cargo() -> str:
    """The cargo executable."""
    cargo = os.environ.get("CARGO") or shutil.which("cargo")
    if not cargo:
        raise RuntimeError("panns: `cargo` was not found on PATH; it is needed to build libpanns")
    return cargo


def _env() -> dict:
    """The environment for cargo: a relative CARGO_TARGET_DIR is made absolute first, because
    cargo runs in the repository root rather than where pip was started."""
    env = dict(os.environ)
    target = env.get("CARGO_TARGET_DIR")
    if target and not os.path.isabs(target):
        env["CARGO_TARGET_DIR"] = os.path.abspath(target)
    return env


def _target_dir(cargo: str, root: Path) -> Path:
    """Cargo's target directory (honours CARGO_TARGET_DIR and cargo config)."""
    out = subprocess.run(
        [cargo, "metadata", "--format-version", "1", "--no-deps"],
        cwd=root,
        env=_env(),
        check=True,
        stdout=subprocess.PIPE,
    ).stdout
    return Path(json.loads(out)["target_directory"])


def build_libpanns() -> Path:
    """Runs ``cargo build -p panns-ffi`` and returns the path of the built ``libpanns.so``."""
    root = _repo_root()
    cargo = _cargo()
    profile = os.environ.get("PANNS_CARGO_PROFILE", "release")
    cmd = [cargo, "build", "-p", "panns-ffi", "--lib", "--profile", profile]
    print("panns: running", " ".join(cmd), "in", root, flush=True)
    subprocess.run(cmd, cwd=root, env=_env(), check=True)
    out_dir = {"dev": "debug", "test": "debug", "bench": "release"}.get(profile, profile)
    lib = _target_dir(cargo, root) / out_dir / LIBRARY
    if not lib.is_file():
        raise RuntimeError(f"panns: cargo succeeded but {lib} does not exist")
    return lib


class BuildPyWithCargo(build_py):
    """``build_py`` that also builds ``libpanns.so`` and puts it into the ``panns`` package."""

    def run(self) -> None:
        super().run()
        lib = build_libpanns()
        dests: List[Path] = [Path(self.build_lib) / "panns" / LIBRARY]
        if getattr(self, "editable_mode", False):
            dests.append(HERE / "panns" / LIBRARY)  # an editable install imports from here
        for dest in dests:
            dest.parent.mkdir(parents=True, exist_ok=True)
            self.copy_file(str(lib), str(dest))

    def get_outputs(self, include_bytecode: bool = True) -> List[str]:  # type: ignore[override]
        """Declares the copied library as an output of this command (for ``--record``)."""
        outputs = super().get_outputs(include_bytecode)
        lib = str(Path(self.build_lib) / "panns" / LIBRARY)
        return outputs if lib in outputs else outputs + [lib]


class BinaryDistribution(Distribution):
    """Marks the wheel as platform-specific: it contains a native library."""

    def has_ext_modules(self) -> bool:  # noqa: D401 - setuptools API
        return True


setup(cmdclass={"build_py": BuildPyWithCargo}, distclass=BinaryDistribution)
