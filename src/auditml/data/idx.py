"""The IDX format of MNIST-style datasets: a 4-byte magic, big-endian sizes, then raw values.

Layout (http://yann.lecun.com/exdb/mnist/): two zero bytes, one byte naming the value type, one
byte giving the number of dimensions, then one big-endian uint32 per dimension, then the values in
C order, big-endian. Files may be gzip-compressed; that is recognised by content, not by name.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from auditml.errors import DataError

# Type codes of the IDX specification; values are stored big-endian.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODE_OF_KIND: dict[tuple[str, int], int] = {
    (dtype.kind, dtype.itemsize): code for code, dtype in IDX_DTYPES.items()
}
_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (plain or gzip-compressed) into a native-endian array of its shape.

    Raises ``DataError`` naming the file if it cannot be read, is not IDX, or its length does not
    match the shape in its header (a truncated download, for instance).
    """
    path = Path(path)
    content = _read_content(path)
    return _parse(content, path)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write ``array`` as an uncompressed IDX file (gzip-compressed when ``path`` ends in .gz)."""
    array = np.asarray(array)
    code = _CODE_OF_KIND.get((array.dtype.kind, array.dtype.itemsize))
    if code is None or array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"IDX cannot store a {array.ndim}-d array of {array.dtype}")
    header = struct.pack(">HBB", 0, code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    body = np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()
    path = Path(path)
    if path.suffix == ".gz":
        # mtime=0 so that the same array always gives the same bytes (and the same MD5).
        path.write_bytes(gzip.compress(header + body, mtime=0))
    else:
        path.write_bytes(header + body)


def _read_content(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
        if raw[:2] == _GZIP_MAGIC:
            return gzip.decompress(raw)
        return raw
    # BadGzipFile is an OSError; a cut-off gzip stream raises EOFError; a damaged one zlib.error.
    except (OSError, EOFError, zlib.error) as err:
        detail = " ".join((str(err) or type(err).__name__).split())
        raise DataError(
            f"cannot read IDX file {path}: {detail}; the file is damaged or unreadable, "
            "replace it with a fresh copy"
        ) from err


def _parse(content: bytes, path: Path) -> np.ndarray:
    def corrupt(problem: str) -> DataError:
        return DataError(
            f"{path} is not a valid IDX file: {problem}; the file is truncated or corrupt, "
            "replace it with a fresh copy"
        )

    if len(content) < 4:
        raise corrupt(f"only {len(content)} bytes, shorter than the 4-byte magic number")
    zeros, code, ndim = struct.unpack(">HBB", content[:4])
    magic = int.from_bytes(content[:4], "big")
    if zeros != 0:
        raise corrupt(f"magic number 0x{magic:08x} does not start with two zero bytes")
    if code not in IDX_DTYPES:
        raise corrupt(f"magic number 0x{magic:08x} has unknown type code 0x{code:02x}")
    if ndim == 0:
        raise corrupt(f"magic number 0x{magic:08x} declares zero dimensions")
    header_bytes = 4 + 4 * ndim
    if len(content) < header_bytes:
        raise corrupt(f"only {len(content)} bytes, shorter than its {header_bytes}-byte header")
    shape = struct.unpack(f">{ndim}I", content[4:header_bytes])
    dtype = IDX_DTYPES[code]
    # Python ints, so a corrupt header with huge sizes cannot overflow the product.
    count = 1
    for size in shape:
        count *= size
    expected = header_bytes + count * dtype.itemsize
    if len(content) != expected:
        shape_text = "x".join(str(size) for size in shape)
        raise corrupt(
            f"{len(content)} bytes but its header ({shape_text} of {dtype.newbyteorder('=')}) "
            f"needs {expected}"
        )
    values = np.frombuffer(content, dtype=dtype, count=count, offset=header_bytes)
    # A native-endian copy: frombuffer's array is read-only and big-endian arithmetic is slow.
    return values.reshape(shape).astype(dtype.newbyteorder("="), copy=True)
