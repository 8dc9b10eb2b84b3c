"""One error base class carrying its gRPC status code.

Everything the server refuses on purpose raises a :class:`ServingError`
subclass; :mod:`server.servicers` turns it into ``context.abort`` in one place.
This module needs no grpc: the code is the status name, mapped there.
"""

from __future__ import annotations


class ServingError(Exception):
    """A request the server refuses; ``code`` is the gRPC status name."""

    code = "INTERNAL"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidArgument(ServingError):
    """Malformed input: wrong type, shape, size, values or names."""

    code = "INVALID_ARGUMENT"


class NotFound(ServingError):
    """Unknown model or version."""

    code = "NOT_FOUND"


class Overloaded(ServingError):
    """The batcher's queue is full; the client should back off and retry."""

    code = "RESOURCE_EXHAUSTED"


class Unavailable(ServingError):
    """The server is shutting down (or not ready yet)."""

    code = "UNAVAILABLE"


class StartupError(Exception):
    """The server cannot start (bad model, busy port); the message is one line."""


class ModelLoadError(StartupError):
    """A missing, corrupt or inconsistent model at start; the message is one line."""


class NotYet(ModelLoadError):
    """A model file that cannot be read yet (still being written, or not yet permitted).

    At start it is an error like any other; while polling it means "retry at the next poll".
    """
