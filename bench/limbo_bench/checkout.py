"""Another commit of limbo, ready to run: a detached git worktree and its own .venv.

``--baseline-ref HEAD~1`` benchmarks the previous commit beside this one; the worktree
lives under ``bench/.work/refs/<commit>`` and is reused by later runs (its .venv is
built from that commit's own uv.lock, with the shared uv cache, so a rebuild is quick).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .stack import BENCH_DIR, WORK

__all__ = ["Checkout", "checkout"]

ROOT = BENCH_DIR.parent
UV = ROOT / ".tools" / "bootstrap" / "bin" / "uv"


@dataclass(frozen=True)
class Checkout:
    ref: str
    commit: str
    bin_dir: Path  # limbo-api, limbo-mailgun-worker... of that commit

    @property
    def label(self) -> str:
        return f"{self.ref} ({self.commit[:7]})"


def _git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


def checkout(ref: str) -> Checkout:
    """Resolve ``ref`` here, then make (or reuse) its worktree and virtualenv."""
    commit = _git("rev-parse", "--verify", f"{ref}^{{commit}}")
    path = WORK / "refs" / commit[:12]
    bin_dir = path / ".venv" / "bin"
    if not (bin_dir / "limbo-api").exists():
        if not (path / ".git").exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            _git("worktree", "add", "--detach", "--force", str(path), commit)
        python = shutil.which("python3") or "python3"
        subprocess.run(
            [str(UV), "sync", "--frozen", "--all-packages", "--quiet", "--python", python],
            cwd=path,
            env={
                **{k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"},
                "UV_PYTHON_DOWNLOADS": "never",
            },
            check=True,
        )
    return Checkout(ref, commit, bin_dir)
