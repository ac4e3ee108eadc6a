"""CIFAR-10: 60,000 colour 32x32 images in 10 classes, as the python-pickle batches.

The pool is the five training batches (50,000 images) and ``test`` the official test batch
(10,000). The batches are pickles, and unpickling an untrusted file can run arbitrary code, so they
are read by an unpickler that resolves no real global at all: the few names a CIFAR-10 batch uses
(numpy's array and dtype reconstruction, and ``_codecs.encode`` from Python 3 re-pickling) are
mapped to inert stand-ins that only record their arguments, and the array is then rebuilt here
from validated raw bytes. Any other name makes the load fail with ``DataError``.
"""

from __future__ import annotations

import os
import pickle
import tarfile
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import numpy as np

from auditml.data.base import ArrayDataset, DatasetSpec, LoadedDataset
from auditml.data.download import RemoteFile, fetch_missing
from auditml.errors import DataError

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MIRRORS = (URL,)
MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
BATCHES_DIR = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{index}" for index in range(1, 6))
TEST_BATCH = "test_batch"

_CHANNELS, _SIDE, _NUM_CLASSES = 3, 32, 10
_PIXELS = _CHANNELS * _SIDE * _SIDE
# Per-channel mean and std of the training images scaled to [0, 1].
_MEAN = np.array([0.4914, 0.4822, 0.4465], dtype=np.float32).reshape(1, 3, 1, 1)
_STD = np.array([0.2470, 0.2435, 0.2616], dtype=np.float32).reshape(1, 3, 1, 1)
_COPY_CHUNK_BYTES = 1 << 20


def load_cifar10(
    data_dir: Path, download: bool, *, mirrors: tuple[str, ...] = MIRRORS, md5: str = MD5
) -> LoadedDataset:
    """Find the batches (extracting, or unless ``download`` is false fetching, the archive).

    ``mirrors`` and ``md5`` say where the archive comes from and what it must hash to.
    """
    data_dir = Path(data_dir)
    directory = _find_batches(data_dir)
    if directory is None:
        directory = _extract_archive(data_dir, RemoteFile(ARCHIVE_NAME, mirrors, md5), download)
    train = [read_batch(directory / name) for name in TRAIN_BATCHES]
    pool = ArrayDataset(
        _normalise(np.concatenate([images for images, _ in train])),
        np.concatenate([labels for _, labels in train]),
    )
    test_images, test_labels = read_batch(directory / TEST_BATCH)
    return LoadedDataset(pool=pool, test=ArrayDataset(_normalise(test_images), test_labels))


def batch_dirs(data_dir: Path) -> list[Path]:
    """Directories searched for the six batch files, in order (extracted archive or the folder)."""
    data_dir = Path(data_dir)
    return [
        data_dir / "cifar10" / BATCHES_DIR,
        data_dir / "cifar10",
        data_dir / BATCHES_DIR,
        data_dir,
    ]


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file: images as uint8 ``(N, 3, 32, 32)`` and labels as int64 ``(N,)``."""
    path = Path(path)
    try:
        with path.open("rb") as stream:
            # encoding="bytes": the official batches were pickled by Python 2, whose str is bytes.
            content = _BatchUnpickler(stream, encoding="bytes").load()
    except _ForbiddenGlobal as err:
        raise DataError(
            f"{path} refers to {err}, which a CIFAR-10 batch never does; refusing to load it "
            "(it may be malicious), replace it with a fresh copy"
        ) from err
    # A crafted or damaged stream can make pickle's machinery raise almost anything; nothing but
    # the inert stand-ins below can have run, so every failure just means "not a valid batch".
    except Exception as err:
        detail = " ".join((str(err) or type(err).__name__).split())
        raise DataError(
            f"cannot read CIFAR-10 batch {path}: {detail}; replace it with a fresh copy"
        ) from err
    return _validated_batch(content, path)


def extract_tar_safely(archive: Path, destination: Path) -> None:
    """Extract the regular files and directories of a tar archive below ``destination``.

    Members with absolute paths or ``..`` components, links and device files are refused (with
    ``DataError``) before anything outside ``destination`` could be written. Each file is written
    to a temporary name and renamed, so a file that is present is complete.
    """
    archive = Path(archive)
    destination = Path(destination)
    try:
        destination.mkdir(parents=True, exist_ok=True)
        root = destination.resolve()
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                target = _member_target(member, root, archive)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                source = tar.extractfile(member)
                if source is None:
                    raise DataError(f"{archive}: cannot read member {member.name!r}")
                target.parent.mkdir(parents=True, exist_ok=True)
                _write_atomically(source, target)
    # A truncated archive raises EOFError or zlib.error from inside the gzip stream.
    except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
        detail = " ".join((str(err) or type(err).__name__).split())
        raise DataError(
            f"cannot extract {archive} into {destination}: {detail}; "
            "delete the archive and fetch it again"
        ) from err


def _find_batches(data_dir: Path) -> Path | None:
    for directory in batch_dirs(data_dir):
        if all((directory / name).is_file() for name in (*TRAIN_BATCHES, TEST_BATCH)):
            return directory
    return None


def _extract_archive(data_dir: Path, remote: RemoteFile, download: bool) -> Path:
    """Extract a present archive, or download one first; return the extracted batches folder."""
    target = data_dir / "cifar10"
    archives = [target / ARCHIVE_NAME, data_dir / ARCHIVE_NAME]
    archive = next((candidate for candidate in archives if candidate.is_file()), None)
    if archive is None:
        fetch_missing(
            "cifar10",
            [remote],
            target,
            download=download,
            wanted=f"{ARCHIVE_NAME} (from {remote.urls[0]}) or its extracted {BATCHES_DIR}/ "
            "folder (data_batch_1 to data_batch_5, test_batch)",
            searched=batch_dirs(data_dir),
        )
        archive = target / ARCHIVE_NAME
    extract_tar_safely(archive, target)
    directory = target / BATCHES_DIR
    missing = [name for name in (*TRAIN_BATCHES, TEST_BATCH) if not (directory / name).is_file()]
    if missing:
        raise DataError(
            f"{archive} does not contain {BATCHES_DIR}/{', '.join(missing)}; "
            f"it is not the CIFAR-10 python archive, replace it with the one from {URL}"
        )
    return directory


def _member_target(member: tarfile.TarInfo, root: Path, archive: Path) -> Path:
    path = PurePosixPath(member.name)
    parts = path.parts
    if path.is_absolute() or ".." in parts or not (parts or member.isdir()):
        raise DataError(
            f"{archive} has member {member.name!r} that would land outside {root}; "
            "refusing to extract it, replace the archive with a fresh copy"
        )
    if not (member.isfile() or member.isdir()):
        raise DataError(
            f"{archive} has member {member.name!r} that is a link or special file; "
            "refusing to extract it, replace the archive with a fresh copy"
        )
    target = root.joinpath(*parts)
    # A symlink already inside the destination could still redirect the write elsewhere.
    if not target.resolve().is_relative_to(root):
        raise DataError(
            f"{archive} member {member.name!r} resolves to {target.resolve()}, outside {root}; "
            f"remove the link in {root} and retry"
        )
    return target


def _write_atomically(source: Any, target: Path) -> None:
    handle, temporary_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".part", dir=target.parent
    )
    temporary = Path(temporary_name)
    try:
        with os.fdopen(handle, "wb") as sink:
            for chunk in iter(lambda: source.read(_COPY_CHUNK_BYTES), b""):
                sink.write(chunk)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def _normalise(images: np.ndarray) -> np.ndarray:
    # In place, in float32: the pool as float64 would need 1.2 GB.
    x = images.astype(np.float32)
    x /= 255.0
    x -= _MEAN
    x /= _STD
    return x


def _validated_batch(content: object, path: Path) -> tuple[np.ndarray, np.ndarray]:
    def invalid(problem: str) -> DataError:
        return DataError(f"{path} is not a CIFAR-10 batch: {problem}; replace it with a fresh copy")

    if not isinstance(content, dict):
        raise invalid(f"it holds a {type(content).__name__}, not a dict")
    data = _get(content, "data")
    labels = _get(content, "labels")
    if not isinstance(data, _ArrayStandIn):
        raise invalid(f"its 'data' entry is a {type(data).__name__}, not an array")
    images = data.to_array(invalid)
    if images.ndim != 2 or images.shape[1] != _PIXELS:
        raise invalid(f"its 'data' has shape {images.shape}, not (N, {_PIXELS})")
    if not isinstance(labels, list) or not all(type(label) is int for label in labels):
        raise invalid("its 'labels' entry is not a list of integers")
    if len(labels) != len(images):
        raise invalid(f"{len(images)} images but {len(labels)} labels")
    label_array = np.asarray(labels, dtype=np.int64)
    if len(label_array) and not (label_array.min() >= 0 and label_array.max() < _NUM_CLASSES):
        raise invalid(f"labels outside 0..{_NUM_CLASSES - 1}")
    return images.reshape(-1, _CHANNELS, _SIDE, _SIDE), label_array


def _get(content: dict[Any, Any], key: str) -> object:
    # The official batches have bytes keys (Python 2 str); a re-pickled batch may have str keys.
    if key.encode() in content:
        return content[key.encode()]
    return content.get(key)


class _ForbiddenGlobal(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list; the message is ``module.name``."""


class _DtypeStandIn:
    """What a pickled ``numpy.dtype(descr, align, copy)`` claims; only ``descr`` matters here."""

    def __init__(self, descr: object) -> None:
        self.descr = descr.decode("latin1") if isinstance(descr, bytes) else descr
        self.state: object = None

    def __setstate__(self, state: object) -> None:
        self.state = state


class _ArrayStandIn:
    """What a pickled array claims to be; ``to_array`` checks it and builds the array."""

    def __init__(self) -> None:
        self.shape: object = None
        self.dtype: object = None
        self.fortran_order: object = False
        self.raw: object = None

    def __setstate__(self, state: object) -> None:
        # numpy's ndarray state: (version, shape, dtype, is_fortran, raw bytes).
        if not (isinstance(state, tuple) and len(state) == 5):
            raise pickle.UnpicklingError("array state is not a 5-tuple")
        _, self.shape, self.dtype, self.fortran_order, self.raw = state

    def to_array(self, invalid: Callable[[str], DataError]) -> np.ndarray:
        descr = self.dtype.descr if isinstance(self.dtype, _DtypeStandIn) else None
        if descr not in ("u1", "|u1", "uint8"):
            raise invalid(f"its array has dtype {descr!r}, not uint8")
        if not (
            isinstance(self.shape, tuple)
            and all(type(size) is int and size >= 0 for size in self.shape)
        ):
            raise invalid(f"its array has an invalid shape {self.shape!r}")
        if not isinstance(self.fortran_order, bool):
            raise invalid(f"its array has an invalid order flag {self.fortran_order!r}")
        if not isinstance(self.raw, (bytes, bytearray)):
            raise invalid(f"its array data is a {type(self.raw).__name__}, not bytes")
        count = 1
        for size in self.shape:
            count *= size
        if len(self.raw) != count:
            raise invalid(f"its array has {len(self.raw)} bytes but shape {self.shape}")
        flat = np.frombuffer(bytes(self.raw), dtype=np.uint8)
        if self.fortran_order:
            return np.ascontiguousarray(flat.reshape(self.shape[::-1]).T)
        return flat.reshape(self.shape).copy()


def _stand_ins() -> dict[tuple[str, str], Any]:
    """The only globals a batch may name, mapped to inert stand-ins made afresh for each load.

    Afresh because pickle's BUILD opcode can set attributes on objects it holds: a crafted file
    may then tamper with its own stand-ins, but never with those of a later load.
    """
    # A bare object() has no attributes to set and no settable __class__.
    ndarray = object()

    def reconstruct(cls: object, shape: object, typecode: object) -> _ArrayStandIn:
        if cls is not ndarray:
            raise pickle.UnpicklingError("_reconstruct called with something other than ndarray")
        return _ArrayStandIn()

    def frombuffer(buffer: object, dtype: object, shape: object, order: object) -> _ArrayStandIn:
        # numpy's protocol-5 form (Python 3.14 pickles with protocol 5 by default).
        array = _ArrayStandIn()
        array.__setstate__((1, shape, dtype, order != "C", buffer))
        return array

    def dtype(descr: object, align: object = False, copy: object = True) -> _DtypeStandIn:
        return _DtypeStandIn(descr)

    def codecs_encode(text: object, encoding: object) -> bytes:
        # Python 3 writes bytes as _codecs.encode(str, "latin1") under protocol 2.
        if not (isinstance(text, str) and encoding in ("latin1", "latin-1")):
            raise pickle.UnpicklingError("_codecs.encode used for anything but latin1 bytes")
        return text.encode("latin1")

    # numpy 2 renamed numpy.core to numpy._core; batches pickled under either may exist.
    return {
        ("numpy.core.multiarray", "_reconstruct"): reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): reconstruct,
        ("numpy.core.numeric", "_frombuffer"): frombuffer,
        ("numpy._core.numeric", "_frombuffer"): frombuffer,
        ("numpy", "ndarray"): ndarray,
        ("numpy", "dtype"): dtype,
        ("_codecs", "encode"): codecs_encode,
    }


class _BatchUnpickler(pickle.Unpickler):
    """An unpickler that resolves no real global: only the stand-ins of ``_stand_ins``."""

    def __init__(self, stream: BinaryIO, *, encoding: str) -> None:
        super().__init__(stream, encoding=encoding)
        self._globals = _stand_ins()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._globals[(module, name)]
        except KeyError:
            raise _ForbiddenGlobal(f"{module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not allowed in a CIFAR-10 batch")


CIFAR10 = DatasetSpec(
    name="cifar10",
    pool_size=50000,
    has_test_split=True,
    input_shape=(3, 32, 32),
    num_classes=10,
    default_arch="resnet_groupnorm",
    load=load_cifar10,
)
