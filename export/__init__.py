"""ONNX export: .keras → ONNX with each highway gate as one function node, verified.

``export_model`` is imported lazily so that ``import export.gates`` (ONNX only)
does not start TensorFlow.
"""

from __future__ import annotations

__all__ = ["export_model", "ExportError", "VerificationError"]

from export.errors import ExportError, VerificationError


def __getattr__(name: str) -> object:
    if name == "export_model":
        from export.exporter import export_model

        return export_model
    raise AttributeError(f"module 'export' has no attribute {name!r}")
