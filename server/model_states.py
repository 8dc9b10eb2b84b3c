"""Each model name's state in the registry, and the repository index built from it.

The index is what Triton's ``RepositoryIndex`` (and KServe's model list) answers:
one row per version, READY, LOADING or UNAVAILABLE with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from server.repository import Fingerprint, ModelVersion

READY, UNAVAILABLE, LOADING = "READY", "UNAVAILABLE", "LOADING"
UNLOADED = "unloaded"


@dataclass
class Model:
    """One model name: the versions serving now and what became of the others."""

    serving: dict[int, ModelVersion] = field(default_factory=dict)
    prints: dict[int, Fingerprint] = field(default_factory=dict)
    """The files each serving version was loaded from."""
    failed: dict[int, tuple[str, Fingerprint | None]] = field(default_factory=dict)
    """Versions not serving: why, and the files that failed (retried once they change)."""
    loading: set[int] = field(default_factory=set)
    reason: str = ""
    """Why no version serves, when none does."""


def index(models: dict[str, Model], on_disk: list[str],
          ready_only: bool = False) -> list[tuple[str, str, str, str]]:
    """(name, version, state, reason) for every model on disk or in ``models``."""
    rows = []
    for name in sorted(set(on_disk) | set(models)):
        entry = models.get(name)
        if entry is None:
            rows.append((name, "", "", ""))  # in the repository, never loaded
            continue
        versions = sorted(set(entry.serving) | set(entry.failed) | entry.loading)
        if not versions:
            rows.append((name, "", UNAVAILABLE, entry.reason))
        for v in versions:
            if v in entry.serving:
                rows.append((name, str(v), READY, ""))
            elif v in entry.loading:
                rows.append((name, str(v), LOADING, ""))
            else:
                rows.append((name, str(v), UNAVAILABLE, entry.failed[v][0]))
    return [r for r in rows if r[2] == READY] if ready_only else rows
