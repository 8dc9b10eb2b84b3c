"""The library versions a run records (metrics.json, verification.json, model metadata)."""

from __future__ import annotations

import importlib
import platform


def library_versions(*modules: str) -> dict[str, str]:
    """Python's version, then each named module's ``__version__``, in the order given.

    Imports the modules, so name only what the caller has loaded or is about to load
    (the training side passes TensorFlow; this module itself imports nothing heavy).
    """
    found = {"python": platform.python_version()}
    for name in modules:
        found[name] = str(importlib.import_module(name).__version__)
    return found
