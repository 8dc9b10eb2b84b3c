"""Reading the committed docs: Markdown tables and whitespace-folded text."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "results"
PERF = ROOT / "docs" / "perf"


def text(name: str) -> str:
    return (ROOT / name).read_text()


def folded(name: str) -> str:
    """The document with every run of whitespace one space (prose wraps anywhere)."""
    return " ".join(text(name).split())


def load(path: Path):
    return json.loads(path.read_text())


def table(document: str, header: str) -> list[list[str]]:
    """The body rows of the Markdown table whose header line starts with ``header``,
    as stripped cells without bold markers."""
    lines = document.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip().replace("**", "") for c in line.strip().strip("|").split("|")])
    return rows
