"""CIFAR-10 loader: generated pickle batches (Python 2 style, as published, and Python 3 ones),
malicious pickles, and safe extraction of the archive."""

from __future__ import annotations

import io
import os
import pickle
import re
import struct
import tarfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from auditml.data import DATASETS
from auditml.data.cifar10 import (
    ARCHIVE_NAME,
    BATCHES_DIR,
    CIFAR10,
    TEST_BATCH,
    TRAIN_BATCHES,
    URL,
    extract_tar_safely,
    load_cifar10,
    read_batch,
)
from auditml.data.cifar10 import MD5 as CIFAR10_MD5
from auditml.data.download import md5_of_file
from auditml.errors import DataError

_PER_BATCH = 20
_MEAN = np.array([0.4914, 0.4822, 0.4465]).reshape(1, 3, 1, 1)
_STD = np.array([0.2470, 0.2435, 0.2616]).reshape(1, 3, 1, 1)


def _int(value: int) -> bytes:
    if 0 <= value < 256:
        return b"K" + bytes([value])
    if 0 <= value < 65536:
        return b"M" + struct.pack("<H", value)
    return b"J" + struct.pack("<i", value)


def _string(value: bytes) -> bytes:
    # Python 2 str: SHORT_BINSTRING or BINSTRING, read back as bytes with encoding="bytes".
    if len(value) < 256:
        return b"U" + bytes([len(value)]) + value
    return b"T" + struct.pack("<i", len(value)) + value


def _python2_batch(data: np.ndarray, labels: list[int]) -> bytes:
    """The opcodes Python 2's cPickle (protocol 2) writes for a batch, as in the published files."""
    rows, columns = data.shape
    array = (
        b"cnumpy.core.multiarray\n_reconstruct\n"
        + b"cnumpy\nndarray\n"
        + _int(0)
        + b"\x85"  # TUPLE1: shape (0,)
        + _string(b"b")
        + b"\x87R"  # TUPLE3, REDUCE
        + b"("  # MARK: the array state
        + _int(1)
        + _int(rows)
        + _int(columns)
        + b"\x86"  # TUPLE2: shape
        + b"cnumpy\ndtype\n"
        + _string(b"u1")
        + _int(0)
        + _int(1)
        + b"\x87R"
        + b"("
        + _int(3)
        + _string(b"|")
        + b"NNN"
        + _int(-1)
        + _int(-1)
        + _int(0)
        + b"tb"  # dtype state, BUILD
        + b"\x89"  # NEWFALSE: C order
        + _string(data.tobytes())
        + b"tb"  # array state, BUILD
    )
    label_list = b"](" + b"".join(_int(label) for label in labels) + b"e"
    names = b"](" + b"".join(_string(f"img_{i}.png".encode()) for i in range(rows)) + b"e"
    return (
        b"\x80\x02}("
        + _string(b"batch_label")
        + _string(b"training batch 1 of 5")
        + _string(b"labels")
        + label_list
        + _string(b"data")
        + array
        + _string(b"filenames")
        + names
        + b"u."
    )


def _make_batch(seed: int, rows: int = _PER_BATCH) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (rows, 3072), dtype=np.uint8)
    labels = [int(label) for label in rng.integers(0, 10, rows)]
    return data, labels


def _write_batches(directory: Path, protocol: int | None = None) -> dict[str, tuple]:
    """Write the six batches (Python 2 style unless ``protocol`` is given); return their content."""
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    for seed, name in enumerate((*TRAIN_BATCHES, TEST_BATCH)):
        data, labels = _make_batch(seed)
        if protocol is None:
            content = _python2_batch(data, labels)
        else:
            content = pickle.dumps({b"data": data, b"labels": labels}, protocol=protocol)
        (directory / name).write_bytes(content)
        written[name] = (data, labels)
    return written


def _expected(data: np.ndarray) -> np.ndarray:
    images = data.reshape(-1, 3, 32, 32).astype(np.float64) / 255.0
    return ((images - _MEAN) / _STD).astype(np.float32)


def test_spec_is_registered() -> None:
    assert DATASETS.get("cifar10") is CIFAR10
    assert CIFAR10.pool_size == 50000
    assert CIFAR10.has_test_split
    assert CIFAR10.input_shape == (3, 32, 32)
    assert CIFAR10.num_classes == 10
    assert CIFAR10.default_arch == "resnet_groupnorm"


def test_hand_written_python2_batch_is_a_real_pickle(tmp_path: Path) -> None:
    # Guards the test helper: a trusted full unpickle of it gives the array it was made from.
    data, labels = _make_batch(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        content = pickle.loads(_python2_batch(data, labels), encoding="bytes")
    np.testing.assert_array_equal(content[b"data"], data)
    assert content[b"labels"] == labels


def test_loads_batches_with_exact_normalisation(tmp_path: Path) -> None:
    written = _write_batches(tmp_path / "cifar10" / BATCHES_DIR)
    loaded = load_cifar10(tmp_path, download=False)
    assert loaded.test is not None
    assert loaded.pool.x.shape == (5 * _PER_BATCH, 3, 32, 32)
    assert loaded.test.x.shape == (_PER_BATCH, 3, 32, 32)
    assert loaded.pool.x.dtype == np.float32
    assert loaded.pool.y.dtype == np.int64
    train_data = np.concatenate([written[name][0] for name in TRAIN_BATCHES])
    train_labels = [label for name in TRAIN_BATCHES for label in written[name][1]]
    np.testing.assert_allclose(loaded.pool.x, _expected(train_data), atol=1e-5)
    np.testing.assert_array_equal(loaded.pool.y, train_labels)
    np.testing.assert_allclose(loaded.test.x, _expected(written[TEST_BATCH][0]), atol=1e-5)
    np.testing.assert_array_equal(loaded.test.y, written[TEST_BATCH][1])


def test_channel_order_is_rgb_planes(tmp_path: Path) -> None:
    # The published layout: 1024 red values, then 1024 green, then 1024 blue, each row-major.
    data = np.zeros((1, 3072), dtype=np.uint8)
    data[0, 1024 + 32 * 5 + 7] = 255  # green, row 5, column 7
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps({b"data": data, b"labels": [3]}, protocol=4))
    images, labels = read_batch(path)
    assert images.shape == (1, 3, 32, 32)
    assert images[0, 1, 5, 7] == 255
    assert int(images.sum()) == 255
    assert labels.tolist() == [3]


@pytest.mark.parametrize(
    "where", [f"cifar10/{BATCHES_DIR}", "cifar10", BATCHES_DIR, "."], ids=lambda w: w
)
def test_searches_each_directory(tmp_path: Path, where: str) -> None:
    _write_batches(tmp_path / where)
    assert len(load_cifar10(tmp_path, download=False).pool) == 5 * _PER_BATCH


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_reads_python3_pickles(tmp_path: Path, protocol: int) -> None:
    written = _write_batches(tmp_path / BATCHES_DIR, protocol=protocol)
    images, labels = read_batch(tmp_path / BATCHES_DIR / TEST_BATCH)
    np.testing.assert_array_equal(images.reshape(-1, 3072), written[TEST_BATCH][0])
    np.testing.assert_array_equal(labels, written[TEST_BATCH][1])


def test_reads_str_keys(tmp_path: Path) -> None:
    data, labels = _make_batch(0)
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps({"data": data, "labels": labels}))
    images, _ = read_batch(path)
    np.testing.assert_array_equal(images.reshape(-1, 3072), data)


class _RunsShellCommand:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple:
        return (os.system, (self.command,))


class _Evaluates:
    def __reduce__(self) -> tuple:
        return (eval, ("1 + 1",))


@pytest.mark.parametrize("placement", ["top", "data", "labels"])
def test_malicious_pickle_is_rejected_without_running(tmp_path: Path, placement: str) -> None:
    marker = tmp_path / "pwned"
    payload = _RunsShellCommand(f"touch {marker}")
    data, labels = _make_batch(0)
    content: object = {
        "top": payload,
        "data": {b"data": payload, b"labels": labels},
        "labels": {b"data": data, b"labels": [payload]},
    }[placement]
    path = tmp_path / TEST_BATCH
    path.write_bytes(pickle.dumps(content, protocol=2))
    with pytest.raises(DataError) as raised:
        read_batch(path)
    message = str(raised.value)
    assert "\n" not in message
    assert str(path) in message
    assert f"refers to {os.system.__module__}.system" in message
    assert "refusing to load it" in message
    assert not marker.exists()


def test_builtin_eval_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps({b"data": _Evaluates(), b"labels": []}))
    with pytest.raises(DataError, match=r"refers to builtins\.eval"):
        read_batch(path)


def test_malicious_batch_fails_the_whole_load(tmp_path: Path) -> None:
    directory = tmp_path / "cifar10" / BATCHES_DIR
    _write_batches(directory)
    marker = tmp_path / "pwned"
    (directory / "data_batch_3").write_bytes(
        pickle.dumps(_RunsShellCommand(f"touch {marker}"), protocol=4)
    )
    with pytest.raises(DataError, match="data_batch_3 refers to"):
        load_cifar10(tmp_path, download=False)
    assert not marker.exists()


def test_tampering_with_stand_ins_does_not_leak_into_the_next_load(tmp_path: Path) -> None:
    # BUILD with a (None, {"__defaults__": ...}) state sets attributes on the object it is given;
    # here, on the _reconstruct stand-in. A later load must get untouched stand-ins.
    tamper = (
        b"\x80\x02cnumpy.core.multiarray\n_reconstruct\n"
        + b"N}X\x0c\x00\x00\x00__defaults__U\x01x\x85s\x86b"  # (None, {"__defaults__": ...})
        + b"0}."  # POP the stand-in, then an empty dict as the result
    )
    path = tmp_path / "tamper"
    path.write_bytes(tamper)
    # The tampering itself succeeds; only the (empty) result is rejected.
    with pytest.raises(DataError, match="'data' entry is a NoneType"):
        read_batch(path)
    written = _write_batches(tmp_path / BATCHES_DIR)
    _, labels = read_batch(tmp_path / BATCHES_DIR / TEST_BATCH)
    np.testing.assert_array_equal(labels, written[TEST_BATCH][1])


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ([1, 2, 3], "it holds a list, not a dict"),
        ({b"labels": []}, "'data' entry is a NoneType"),
        ({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, "dtype 'f4', not uint8"),
        ({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, "shape (2, 100)"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "2 images but 1 labels"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, "labels outside 0..9"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, "a"]}, "not a list of integ"),
    ],
)
def test_invalid_batches_are_named(tmp_path: Path, content: object, problem: str) -> None:
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps(content, protocol=2))
    with pytest.raises(DataError) as raised:
        read_batch(path)
    assert f"{path} is not a CIFAR-10 batch" in str(raised.value)
    assert problem in str(raised.value)


def test_fortran_ordered_array_is_read_in_the_right_order(tmp_path: Path) -> None:
    data, labels = _make_batch(0, rows=3)
    fortran = np.asfortranarray(data)
    assert not fortran.flags.c_contiguous
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps({b"data": fortran, b"labels": labels}, protocol=2))
    images, _ = read_batch(path)
    np.testing.assert_array_equal(images.reshape(3, 3072), data)


def test_truncated_batch_is_named(tmp_path: Path) -> None:
    path = tmp_path / "batch"
    path.write_bytes(_python2_batch(*_make_batch(0))[:-100])
    with pytest.raises(DataError, match=re.escape(f"cannot read CIFAR-10 batch {path}")):
        read_batch(path)


def test_missing_files_error_names_archive_folder_and_download_option(tmp_path: Path) -> None:
    with pytest.raises(DataError) as raised:
        load_cifar10(tmp_path, download=False)
    message = str(raised.value)
    assert "\n" not in message
    assert ARCHIVE_NAME in message
    assert f"{BATCHES_DIR}/" in message
    assert "data_batch_1 to data_batch_5, test_batch" in message
    assert f"in {tmp_path / 'cifar10'} " in message
    assert URL in message
    assert "downloads are disabled by `data.download: false`" in message
    assert "`data.download: true`" in message


def _tar_gz(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)


def _archive_of_batches(tmp_path: Path, archive: Path) -> dict[str, tuple]:
    source = tmp_path / "source"
    written = _write_batches(source / BATCHES_DIR)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source / BATCHES_DIR, arcname=BATCHES_DIR)
    return written


@pytest.mark.parametrize("archive_dir", ["cifar10", "."])
def test_present_archive_is_extracted_and_loaded(tmp_path: Path, archive_dir: str) -> None:
    data_dir = tmp_path / "data"
    (data_dir / archive_dir).mkdir(parents=True, exist_ok=True)
    written = _archive_of_batches(tmp_path, data_dir / archive_dir / ARCHIVE_NAME)
    loaded = load_cifar10(data_dir, download=False)
    assert loaded.test is not None
    np.testing.assert_array_equal(loaded.test.y, written[TEST_BATCH][1])
    assert (data_dir / "cifar10" / BATCHES_DIR / TEST_BATCH).is_file()
    # No temporary files are left beside the extracted ones.
    assert not list((data_dir / "cifar10").rglob("*.part"))


def _mirror_of(tmp_path: Path, archive_maker: Callable[[Path], object]) -> tuple[str, str]:
    """A file:// mirror holding an archive made by ``archive_maker``, and the archive's MD5."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archive_maker(mirror / ARCHIVE_NAME)
    return mirror.as_uri() + "/" + ARCHIVE_NAME, md5_of_file(mirror / ARCHIVE_NAME)


def test_download_checks_the_archive_then_extracts_and_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    written: dict[str, tuple] = {}

    def archive(path: Path) -> None:
        written.update(_archive_of_batches(tmp_path, path))

    url, md5 = _mirror_of(tmp_path, archive)
    dead = (tmp_path / "nowhere" / ARCHIVE_NAME).as_uri()
    data_dir = tmp_path / "data"
    loaded = load_cifar10(data_dir, download=True, mirrors=(dead, url), md5=md5)
    assert loaded.test is not None
    np.testing.assert_array_equal(loaded.test.y, written[TEST_BATCH][1])
    assert md5_of_file(data_dir / "cifar10" / ARCHIVE_NAME) == md5
    size_kb = (tmp_path / "mirror" / ARCHIVE_NAME).stat().st_size / 1e3
    assert capsys.readouterr().err.splitlines() == [
        f"downloading {ARCHIVE_NAME} ({size_kb:.1f} kB) from {url}"
    ]


def test_download_with_a_wrong_checksum_keeps_nothing(tmp_path: Path) -> None:
    url, _ = _mirror_of(tmp_path, lambda path: _archive_of_batches(tmp_path, path))
    data_dir = tmp_path / "data"
    with pytest.raises(DataError) as raised:
        load_cifar10(data_dir, download=True, mirrors=(url,), md5="0" * 32)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"cifar10: could not download {ARCHIVE_NAME} ({url}: MD5 ")
    assert message.endswith(
        f"check the network, or put {ARCHIVE_NAME} (from {url}) or its extracted {BATCHES_DIR}/ "
        f"folder (data_batch_1 to data_batch_5, test_batch) in {data_dir / 'cifar10'} by hand"
    )
    assert list((data_dir / "cifar10").iterdir()) == []


def test_downloaded_batches_still_go_through_the_restricted_unpickler(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    def malicious_archive(path: Path) -> None:
        source = tmp_path / "source" / BATCHES_DIR
        _write_batches(source)
        (source / TEST_BATCH).write_bytes(pickle.dumps(_RunsShellCommand(f"touch {marker}")))
        with tarfile.open(path, "w:gz") as tar:
            tar.add(source, arcname=BATCHES_DIR)

    # The checksum only proves the archive is the one asked for, not that it is safe to unpickle.
    url, md5 = _mirror_of(tmp_path, malicious_archive)
    with pytest.raises(DataError, match=f"{TEST_BATCH} refers to"):
        load_cifar10(tmp_path / "data", download=True, mirrors=(url,), md5=md5)
    assert not marker.exists()


def test_published_archive_checksum_is_the_one_checked() -> None:
    # torchvision and the dataset's page publish this MD5 for the python archive.
    assert CIFAR10_MD5 == "c58f30108f718f92721af3b95e74349a"
    assert load_cifar10.__kwdefaults__ == {"mirrors": (URL,), "md5": CIFAR10_MD5}


def test_archive_without_batches_is_named(tmp_path: Path) -> None:
    archive = tmp_path / "cifar10" / ARCHIVE_NAME
    archive.parent.mkdir()
    _tar_gz(archive, [(tarfile.TarInfo("readme.txt"), b"hello")])
    with pytest.raises(
        DataError, match=re.escape(f"{archive} does not contain {BATCHES_DIR}/data_batch_1")
    ):
        load_cifar10(tmp_path, download=False)


def test_truncated_archive_is_named(tmp_path: Path) -> None:
    archive = tmp_path / "cifar10" / ARCHIVE_NAME
    archive.parent.mkdir()
    _archive_of_batches(tmp_path, archive)
    archive.write_bytes(archive.read_bytes()[:-5000])
    with pytest.raises(DataError, match=re.escape(f"cannot extract {archive}")):
        load_cifar10(tmp_path, download=False)


def _symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info


def _hardlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE
    info.linkname = target
    return info


@pytest.mark.parametrize(
    ("member", "data", "problem"),
    [
        (tarfile.TarInfo("../escaped.txt"), b"x", "would land outside"),
        (tarfile.TarInfo("inner/../../escaped.txt"), b"x", "would land outside"),
        (tarfile.TarInfo("/tmp/absolute-escape.txt"), b"x", "would land outside"),
        (_symlink("link", "/etc/passwd"), None, "link or special file"),
        (_hardlink("hard", "/etc/passwd"), None, "link or special file"),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "symlink", "hardlink"],
)
def test_unsafe_archive_members_are_refused(
    tmp_path: Path, member: tarfile.TarInfo, data: bytes | None, problem: str
) -> None:
    archive = tmp_path / "archive.tar.gz"
    _tar_gz(archive, [(member, data)])
    destination = tmp_path / "out" / "nested"
    with pytest.raises(DataError) as raised:
        extract_tar_safely(archive, destination)
    assert problem in str(raised.value)
    assert str(archive) in str(raised.value)
    assert not (tmp_path / "out" / "escaped.txt").exists()
    assert not (tmp_path / "escaped.txt").exists()
    assert not Path("/tmp/absolute-escape.txt").exists()
    assert list(destination.iterdir()) == []


def test_existing_symlink_in_destination_cannot_redirect_writes(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    destination = tmp_path / "out"
    destination.mkdir()
    (destination / "folder").symlink_to(outside)
    archive = tmp_path / "archive.tar.gz"
    _tar_gz(archive, [(tarfile.TarInfo("folder/file.txt"), b"x")])
    with pytest.raises(DataError, match="outside"):
        extract_tar_safely(archive, destination)
    assert list(outside.iterdir()) == []


def test_dot_directory_member_is_accepted(tmp_path: Path) -> None:
    # Archives made with `tar -C dir .` start with a "." directory member.
    dot = tarfile.TarInfo(".")
    dot.type = tarfile.DIRTYPE
    archive = tmp_path / "archive.tar.gz"
    _tar_gz(archive, [(dot, None), (tarfile.TarInfo("./a/b.txt"), b"hello")])
    extract_tar_safely(archive, tmp_path / "out")
    assert (tmp_path / "out" / "a" / "b.txt").read_bytes() == b"hello"
