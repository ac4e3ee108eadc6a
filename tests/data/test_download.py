"""The download helper, against file:// URLs only: no test touches the network."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from auditml.data.download import download_file, md5_of_file
from auditml.errors import DataError

_CONTENT = bytes(range(256)) * 5000  # over 1 MiB, so the copy takes more than one chunk
_MD5 = hashlib.md5(_CONTENT).hexdigest()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "mirror" / "file.gz"
    path.parent.mkdir()
    path.write_bytes(_CONTENT)
    return path


def test_md5_of_file(source: Path) -> None:
    assert md5_of_file(source) == _MD5


def test_correct_md5_puts_file_in_place(tmp_path: Path, source: Path) -> None:
    destination = tmp_path / "data" / "nested" / "file.gz"
    result = download_file([source.as_uri()], destination, _MD5)
    assert result == destination
    assert destination.read_bytes() == _CONTENT
    assert [path.name for path in destination.parent.iterdir()] == ["file.gz"]


def test_upper_case_md5_accepted(tmp_path: Path, source: Path) -> None:
    destination = tmp_path / "data" / "file.gz"
    download_file([source.as_uri()], destination, _MD5.upper())
    assert destination.is_file()


def test_wrong_md5_raises_and_leaves_nothing(tmp_path: Path, source: Path) -> None:
    destination = tmp_path / "data" / "file.gz"
    with pytest.raises(DataError) as raised:
        download_file([source.as_uri()], destination, "0" * 32)
    message = str(raised.value)
    assert "\n" not in message
    assert "file.gz" in message
    assert str(destination.parent) in message
    assert f"MD5 {_MD5} does not match" in message
    assert list(destination.parent.iterdir()) == []


def test_wrong_md5_keeps_an_existing_file_untouched(tmp_path: Path, source: Path) -> None:
    destination = tmp_path / "data" / "file.gz"
    destination.parent.mkdir()
    destination.write_bytes(b"previous")
    with pytest.raises(DataError):
        download_file([source.as_uri()], destination, "0" * 32)
    assert destination.read_bytes() == b"previous"
    assert [path.name for path in destination.parent.iterdir()] == ["file.gz"]


def test_falls_back_to_later_mirrors(tmp_path: Path, source: Path) -> None:
    corrupt = tmp_path / "corrupt-mirror" / "file.gz"
    corrupt.parent.mkdir()
    corrupt.write_bytes(b"not the file")
    missing = tmp_path / "missing-mirror" / "file.gz"
    destination = tmp_path / "data" / "file.gz"
    download_file([missing.as_uri(), corrupt.as_uri(), source.as_uri()], destination, _MD5)
    assert destination.read_bytes() == _CONTENT


def test_all_mirrors_failing_lists_each_reason(tmp_path: Path) -> None:
    missing = tmp_path / "missing-mirror" / "file.gz"
    destination = tmp_path / "data" / "file.gz"
    with pytest.raises(DataError) as raised:
        download_file([missing.as_uri(), "ftp://example.invalid/file.gz"], destination, _MD5)
    message = str(raised.value)
    assert "\n" not in message
    assert missing.as_uri() in message
    assert "unsupported URL scheme 'ftp'" in message
    assert list(destination.parent.iterdir()) == []


def test_no_urls_is_a_programming_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one URL"):
        download_file([], tmp_path / "file.gz", _MD5)
