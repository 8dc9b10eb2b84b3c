"""Drops from pyproject.toml's ``[project.scripts]`` every command whose package is absent.

    python prune_console_scripts.py pyproject.toml    # in the folder the install runs in

The Docker image installs the project from a folder holding only the server's
packages (no ``training/``, no ``export/``, no TensorFlow), so ``highway-train`` and
``highway-export`` would be installed there as commands that die with
ModuleNotFoundError. Run before ``pip install .``, this leaves the image exactly the
commands whose code it contains. A checkout keeps every command: all its packages
are there. Standard library only (the image's build stage has nothing else);
line-based, so the rest of the file stays byte for byte as it was.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

_ENTRY = re.compile(r'^\s*(?P<name>[A-Za-z0-9_.-]+)\s*=\s*"(?P<package>[A-Za-z0-9_]+)[.:]')


def prune(text: str, present: set[str]) -> tuple[str, list[str]]:
    """``text`` without the script entries whose top-level package is not in ``present``;
    also the names dropped."""
    out, dropped, in_scripts = [], [], False
    for line in text.splitlines(keepends=True):
        if line.startswith("["):
            in_scripts = line.strip() == "[project.scripts]"
        entry = _ENTRY.match(line) if in_scripts else None
        if entry and entry["package"] not in present:
            dropped.append(entry["name"])
            continue
        out.append(line)
    return "".join(out), dropped


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: prune_console_scripts.py PYPROJECT", file=sys.stderr)
        return 2
    path = Path(args[0])
    try:
        text = path.read_text()
        present = {p.name for p in path.parent.iterdir() if (p / "__init__.py").is_file()}
        pruned, dropped = prune(text, present)
        path.write_text(pruned)
    except OSError as e:
        print(f"prune_console_scripts.py: {path}: {e.strerror}", file=sys.stderr)
        return 1
    print(f"console scripts dropped (their package is not here): {', '.join(dropped) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
