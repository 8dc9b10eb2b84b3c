"""The export's one error type: its message is the whole one-line story for the user."""

from __future__ import annotations


class ExportError(Exception):
    """A problem the user can fix (bad file, bad model, unwritable folder, failed check).

    The CLIs print ``str(error)`` on one line and exit non-zero; no traceback.
    """


class VerificationError(ExportError):
    """The exported model does not provably compute what the Keras model computes."""


def one_line(error: BaseException) -> str:
    """The error's message on one line (library messages can span several)."""
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return text or type(error).__name__


def first_line(error: BaseException) -> str:
    """The first line of the error's message (library messages can run to pages)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
