"""The export's one error type: its message is the whole one-line story for the user."""

from __future__ import annotations


class ExportError(Exception):
    """A problem the user can fix (bad file, bad model, unwritable folder, failed check).

    The CLIs print ``str(error)`` on one line and exit non-zero; no traceback.
    """


class VerificationError(ExportError):
    """The exported model does not provably compute what the Keras model computes."""
