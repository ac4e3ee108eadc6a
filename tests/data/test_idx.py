"""The IDX reader: hand-built files, a round trip, and every kind of corruption it must name."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from auditml.data.idx import read_idx, write_idx
from auditml.errors import DataError


def _hand_built_labels() -> bytes:
    # Magic 0x00000801 (unsigned byte, 1 dimension), 3 items, then the values.
    return bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 0, 9])


def test_reads_hand_built_file(tmp_path: Path) -> None:
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(_hand_built_labels())
    labels = read_idx(path)
    assert labels.dtype == np.uint8
    assert labels.tolist() == [7, 0, 9]


def test_reads_gzip_by_content_not_name(tmp_path: Path) -> None:
    named = tmp_path / "labels-idx1-ubyte.gz"
    named.write_bytes(gzip.compress(_hand_built_labels()))
    unnamed = tmp_path / "labels-idx1-ubyte"
    unnamed.write_bytes(gzip.compress(_hand_built_labels()))
    assert read_idx(named).tolist() == [7, 0, 9]
    assert read_idx(unnamed).tolist() == [7, 0, 9]


def test_big_endian_multi_byte_values_become_native(tmp_path: Path) -> None:
    # Type 0x0C is a big-endian int32; 2x2 values.
    header = struct.pack(">HBBII", 0, 0x0C, 2, 2, 2)
    body = struct.pack(">4i", 1, -2, 70000, -70000)
    path = tmp_path / "ints-idx2-int"
    path.write_bytes(header + body)
    values = read_idx(path)
    assert values.dtype == np.dtype("int32")
    assert values.dtype.isnative
    assert values.tolist() == [[1, -2], [70000, -70000]]
    values[0, 0] = 5  # writable, unlike a raw frombuffer view


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
def test_write_then_read_round_trip(tmp_path: Path, suffix: str, dtype: str) -> None:
    array = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4)
    path = tmp_path / f"array-idx3{suffix}"
    write_idx(path, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")
    result = read_idx(path)
    assert result.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(result, array)


def test_writer_matches_hand_built_bytes(tmp_path: Path) -> None:
    path = tmp_path / "labels-idx1-ubyte"
    write_idx(path, np.array([7, 0, 9], dtype=np.uint8))
    assert path.read_bytes() == _hand_built_labels()


def test_writer_rejects_unsupported_dtype(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="uint16"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.uint16))


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "only 0 bytes"),
        (b"\x00\x00", "only 2 bytes"),
        (bytes([1, 2, 8, 1, 0, 0, 0, 3, 7, 0, 9]), "magic number 0x01020801"),
        (bytes([0, 0, 0x42, 1, 0, 0, 0, 3, 7, 0, 9]), "unknown type code 0x42"),
        (bytes([0, 0, 8, 0]), "zero dimensions"),
        (bytes([0, 0, 8, 3, 0, 0, 0, 3]), "16-byte header"),
        (bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 0]), "10 bytes but its header (3 of uint8) needs 11"),
        (bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 0, 9, 9]), "12 bytes"),
        # A corrupt header declaring 2^32 - 1 items must be caught by length, not allocated.
        (bytes([0, 0, 8, 1, 255, 255, 255, 255, 7]), "needs 4294967303"),
    ],
)
def test_corrupt_files_raise_one_line_naming_the_file(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "broken-idx1-ubyte"
    path.write_bytes(content)
    with pytest.raises(DataError) as raised:
        read_idx(path)
    message = str(raised.value)
    assert str(path) in message
    assert problem in message
    assert "\n" not in message


def test_truncated_gzip_raises_data_error(tmp_path: Path) -> None:
    path = tmp_path / "images-idx3-ubyte.gz"
    write_idx(path, np.zeros((10, 28, 28), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DataError, match=r"cannot read IDX file .*images-idx3-ubyte\.gz"):
        read_idx(path)


def test_gzip_of_truncated_idx_raises_data_error(tmp_path: Path) -> None:
    path = tmp_path / "labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(_hand_built_labels()[:-1]))
    with pytest.raises(DataError, match="10 bytes but its header"):
        read_idx(path)


def test_missing_file_raises_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read IDX file"):
        read_idx(tmp_path / "absent-idx1-ubyte")
