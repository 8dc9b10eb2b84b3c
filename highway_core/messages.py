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
