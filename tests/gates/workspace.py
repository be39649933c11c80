"""limbo's packages as the tree declares them, so the gates cover a new one unedited.

The workspace members come from the root pyproject's ``[tool.uv.workspace]`` globs;
``bench`` is not a member (only ``./bench/run`` uses it) but is limbo's code all the same.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
NOT_A_MEMBER = ("bench",)


@dataclass(frozen=True)
class Member:
    name: str
    path: Path
    # console script -> its target, "module:function"
    scripts: dict[str, str]

    @property
    def relative(self) -> str:
        return self.path.relative_to(ROOT).as_posix()


def _load(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text())


def members() -> list[Member]:
    workspace = _load(ROOT / "pyproject.toml")["tool"]["uv"]["workspace"]
    found: list[Member] = []
    for pattern in workspace["members"]:
        for path in sorted(ROOT.glob(pattern)):
            if not (path / "pyproject.toml").is_file():
                continue
            project = _load(path / "pyproject.toml")["project"]
            found.append(Member(project["name"], path, dict(project.get("scripts", {}))))
    return found


def services() -> list[Member]:
    return [m for m in members() if m.path.parent == ROOT / "services"]


def typed_sources() -> list[str]:
    """What mypy checks, relative to the root: every member's ``src/`` and ``bench``."""
    return [f"{m.relative}/src" for m in members()] + list(NOT_A_MEMBER)
