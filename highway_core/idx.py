"""MNIST's IDX files (raw or gzip), read and checked against their own headers.

Both the trainer (the whole data set) and the server's client (images to send)
read them, so the checks live once: magic number, image size, length, labels.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from highway_core.facts import COLS, NUM_CLASSES, ROWS

IMAGE_MAGIC = 0x00000803  # unsigned byte, 3 dimensions
LABEL_MAGIC = 0x00000801  # unsigned byte, 1 dimension
_GZIP = b"\x1f\x8b"


class IdxError(Exception):
    """A missing, truncated or corrupt IDX file; the one-line message names the file."""


def _read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
        # By content, not by name: mirrors ship gzip files with and without ".gz".
        return gzip.decompress(data) if data[:2] == _GZIP else data
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise IdxError(f"{path}: cannot read ({type(e).__name__}: {e})") from None


def read_idx(path: str | os.PathLike[str], magic: int = IMAGE_MAGIC) -> np.ndarray:
    """One IDX file as ``uint8 [N, 28, 28]`` (images) or ``uint8 [N]`` (labels).

    ``magic`` is ``IMAGE_MAGIC`` or ``LABEL_MAGIC``. Raises :class:`IdxError`.
    """
    path = Path(path)
    data = _read_bytes(path)
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxError(f"{path}: truncated header ({len(data)} bytes)")
    (found,) = struct.unpack(">I", data[:4])
    if found != magic:
        raise IdxError(f"{path}: bad magic number 0x{found:08x}, expected 0x{magic:08x}")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    if ndim == 3 and dims[1:] != (ROWS, COLS):
        raise IdxError(f"{path}: images are {dims[1]}x{dims[2]}, expected {ROWS}x{COLS}")
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        kind = "truncated" if len(data) < expected else "has trailing bytes"
        raise IdxError(f"{path}: {kind}: {len(data)} bytes, header {dims} needs {expected}")
    array = np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)
    if ndim == 1 and array.size and array.max() >= NUM_CLASSES:
        raise IdxError(f"{path}: label {int(array.max())} outside 0..{NUM_CLASSES - 1}")
    return array.copy()  # writable, independent of the file buffer
