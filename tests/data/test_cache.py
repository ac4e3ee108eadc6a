"""Decoded-dataset cache: reused while valid; corrupt, wrong or stale files are rebuilt; a
read-only source folder falls back to the user cache directory."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from auditml.data import cache as cache_module
from auditml.data import digits as digits_module
from auditml.data.cache import cached_arrays, user_cache_dir
from auditml.data.digits import load_digits
from auditml.data.idx import write_idx
from auditml.data.mnist import IDX_FILES, MNIST_FILES

EXPECTED = {"x": np.arange(12, dtype=np.float32).reshape(3, 4), "y": np.array([0, 1, 2])}


class Decoder:
    """Counts how often the sources are decoded."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> dict[str, np.ndarray]:
        self.calls += 1
        return {name: array.copy() for name, array in EXPECTED.items()}


def _accept(arrays: dict[str, np.ndarray]) -> bool:
    return all(
        name in arrays and arrays[name].dtype == array.dtype
        and arrays[name].shape == array.shape
        for name, array in EXPECTED.items()
    )


@pytest.fixture
def user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "user-cache"
    monkeypatch.setenv("AUDITML_CACHE_DIR", str(directory))
    return directory


@pytest.fixture
def source(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    path = folder / "source.bin"
    path.write_bytes(b"pretend this is a compressed dataset")
    return path


def _load(source: Path, decoder: Decoder) -> dict[str, np.ndarray]:
    return cached_arrays([source], "toy", decoder, _accept)


def _assert_expected(arrays: dict[str, np.ndarray]) -> None:
    assert sorted(arrays) == sorted(EXPECTED)
    for name, array in EXPECTED.items():
        np.testing.assert_array_equal(arrays[name], array)
        assert arrays[name].dtype == array.dtype


def _cached_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("toy.decoded-*.npy"))


def test_arrays_are_decoded_once_then_read_from_next_to_the_source(
    source: Path, user_dir: Path
) -> None:
    decoder = Decoder()
    _assert_expected(_load(source, decoder))
    _assert_expected(_load(source, decoder))
    assert decoder.calls == 1
    assert [path.name.split(".")[-2] for path in _cached_files(source.parent)] == ["x", "y"]
    assert not user_dir.exists()


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_corrupt_cache_file_is_rebuilt(source: Path, user_dir: Path, damage: str) -> None:
    decoder = Decoder()
    _load(source, decoder)
    x_file = _cached_files(source.parent)[0]
    content = x_file.read_bytes()
    x_file.write_bytes({"truncated": content[:-8], "garbage": b"\x93NUMPY not really",
                        "empty": b""}[damage])
    _assert_expected(_load(source, decoder))
    assert decoder.calls == 2
    assert x_file.read_bytes() == content  # rewritten whole
    _load(source, decoder)
    assert decoder.calls == 2


def test_a_readable_cache_of_the_wrong_shape_or_dtype_is_rebuilt(
    source: Path, user_dir: Path
) -> None:
    decoder = Decoder()
    _load(source, decoder)
    x_file, y_file = _cached_files(source.parent)
    np.save(x_file, np.zeros((3, 5), np.float32))
    _assert_expected(_load(source, decoder))
    np.save(y_file, np.array([0.0, 1.0, 2.0]))  # right shape, wrong dtype
    _assert_expected(_load(source, decoder))
    x_file.unlink()  # one array missing
    _assert_expected(_load(source, decoder))
    assert decoder.calls == 4


def test_a_changed_source_is_decoded_again_and_the_stale_files_go(
    source: Path, user_dir: Path
) -> None:
    decoder = Decoder()
    _load(source, decoder)
    stale = _cached_files(source.parent)
    status = source.stat()
    os.utime(source, ns=(status.st_atime_ns, status.st_mtime_ns + 10**9))  # touched
    _load(source, decoder)
    assert decoder.calls == 2
    fresh = _cached_files(source.parent)
    assert len(fresh) == 2 and not set(fresh) & set(stale)
    source.write_bytes(b"a different file of another size")
    _load(source, decoder)
    assert decoder.calls == 3


def test_a_read_only_source_folder_falls_back_to_the_user_cache(
    source: Path, user_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = source.parent
    folder.chmod(0o555)
    # As root the mode alone does not stop writing; refuse access as it does for other users.
    real_access = os.access
    monkeypatch.setattr(cache_module.os, "access", lambda path, mode: (
        False if Path(path) == folder and mode & os.W_OK else real_access(path, mode)))
    try:
        decoder = Decoder()
        _assert_expected(_load(source, decoder))
        _assert_expected(_load(source, decoder))
    finally:
        folder.chmod(0o755)
    assert decoder.calls == 1
    assert _cached_files(folder) == []
    assert len(_cached_files(user_dir)) == 2


def test_nothing_writable_still_returns_the_decoded_arrays(
    source: Path, user_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache_module, "_writable", lambda directory: False)
    decoder = Decoder()
    _assert_expected(_load(source, decoder))
    _assert_expected(_load(source, decoder))
    assert decoder.calls == 2


def test_the_user_cache_directory_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AUDITML_CACHE_DIR", str(tmp_path / "explicit"))
    assert user_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("AUDITML_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache_dir() == tmp_path / "xdg" / "auditml"


def test_digits_come_from_the_user_cache_once_decoded(
    user_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decode = digits_module._decode
    decoded = decode()
    calls: list[int] = []

    def counting() -> dict[str, np.ndarray]:
        calls.append(1)
        return decode()

    monkeypatch.setattr(digits_module, "_decode", counting)
    first = load_digits(Path("unused"), False)
    second = load_digits(Path("unused"), False)
    assert len(calls) == 1
    for loaded in (first, second):
        np.testing.assert_array_equal(loaded.pool.x, decoded["x"])
        np.testing.assert_array_equal(loaded.pool.y, decoded["y"])
        assert loaded.pool.x.dtype == np.float32 and loaded.pool.y.dtype == np.int64
    # Never written into scikit-learn's installation.
    assert len(list(user_dir.glob("digits.decoded-*.npy"))) == 2


def _write_mnist(folder: Path) -> Callable[[], None]:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)

    def write() -> None:
        for stem in IDX_FILES:
            count = 6 if stem.startswith("train") else 4
            array = (rng.integers(0, 256, (count, 28, 28)) if "images" in stem
                     else rng.integers(0, 10, count)).astype(np.uint8)
            write_idx(folder / stem, array)

    write()
    return write


def test_mnist_files_are_read_through_a_cache_next_to_them(
    tmp_path: Path, user_dir: Path
) -> None:
    folder = tmp_path / "data" / "mnist"
    rewrite = _write_mnist(folder)
    first = MNIST_FILES.load(tmp_path / "data", download=False)
    assert len(list(folder.glob("mnist-*.decoded-*.npy"))) == 4  # images and labels, 2 splits
    for damaged in folder.glob("mnist-train.decoded-*.images.npy"):
        damaged.write_bytes(damaged.read_bytes()[:100])
    again = MNIST_FILES.load(tmp_path / "data", download=False)
    np.testing.assert_array_equal(again.pool.x, first.pool.x)
    np.testing.assert_array_equal(again.pool.y, first.pool.y)
    rewrite()  # new contents (and sizes or times): the cache must not serve the old ones
    os.utime(folder / IDX_FILES[0], ns=(0, 10**18))
    fresh = MNIST_FILES.load(tmp_path / "data", download=False)
    assert not np.array_equal(fresh.pool.x, first.pool.x)
