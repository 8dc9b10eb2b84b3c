"""Library errors shortened to what a one-line message can hold.

ONNX Runtime, protobuf, onnx's checker and Keras' downloader raise errors whose
text runs to many lines; every part of the project reports a failure in one line
(the CLI's message or a gRPC status), so they all cut the text here.
"""

from __future__ import annotations


def first_line(error: BaseException) -> str:
    """The first line of the error's message, or its type's name when the message is empty."""
    text = str(error).strip()
    return text.splitlines()[0].strip() if text else type(error).__name__


def one_line(error: BaseException) -> str:
    """The whole message joined onto one line (for messages that are short but wrapped)."""
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return text or type(error).__name__


def missing_extra(modules: tuple[str, ...], extra: str) -> str | None:
    """One line naming the first of ``modules`` that is not installed and the extra that brings
    it, or None when all are there. A server-only install (``pip install .``) still has the
    training and export commands; they answer with this instead of a traceback."""
    from importlib.util import find_spec

    for name in modules:
        try:
            found = find_spec(name) is not None
        except (ImportError, ValueError):  # e.g. a module blocked with sys.modules[name] = None
            found = False
        if not found:
            return (f"{name} is not installed; this command needs the '{extra}' extra "
                    f"(pip install '.[{extra}]')")
    return None
