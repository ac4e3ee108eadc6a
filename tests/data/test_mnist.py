"""MNIST and Fashion-MNIST loaders: generated IDX files, the real MNIST test split in shared/,
and Fashion-MNIST from Debian's dataset-fashion-mnist package when it is installed."""

from __future__ import annotations

import dataclasses
import re
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

from auditml.config import parse_config
from auditml.data import DATASETS
from auditml.data import mnist as mnist_module
from auditml.data.download import md5_of_file
from auditml.data.idx import read_idx, write_idx
from auditml.data.mnist import (
    FASHION_MNIST,
    FASHION_MNIST_FILES,
    IDX_FILES,
    MNIST,
    MNIST_FILES,
    load_fashion_mnist,
    load_mnist,
)
from auditml.errors import DataError

# tests/data/test_mnist.py -> the repository root is parents[2]; shared/ lies beside the repo.
SHARED_MNIST = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "mnist").resolve()
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def _write_split(
    directory: Path, n_train: int = 12, n_test: int = 5, *, gz: bool = True, seed: int = 0
) -> dict[str, np.ndarray]:
    """Write the four files with random content; return the arrays by file stem."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for stem, array in arrays.items():
        write_idx(directory / (f"{stem}.gz" if gz else stem), array)
    return arrays


def _expected(images: np.ndarray, mean: float, std: float) -> np.ndarray:
    return ((images.astype(np.float64) / 255.0 - mean) / std)[:, None].astype(np.float32)


def test_specs_are_registered() -> None:
    for name, spec in [("mnist", MNIST), ("fashion_mnist", FASHION_MNIST)]:
        assert DATASETS.get(name) is spec
        assert spec.name == name
        assert spec.pool_size == 60000
        assert spec.has_test_split
        assert spec.input_shape == (1, 28, 28)
        assert spec.num_classes == 10
        assert spec.default_arch == "cnn_28x28"


@pytest.mark.parametrize("gz", [True, False])
def test_loads_generated_files_with_exact_normalisation(tmp_path: Path, gz: bool) -> None:
    arrays = _write_split(tmp_path / "mnist", gz=gz)
    loaded = load_mnist(tmp_path, download=False)
    assert loaded.test is not None
    assert loaded.pool.x.shape == (12, 1, 28, 28)
    assert loaded.test.x.shape == (5, 1, 28, 28)
    assert loaded.pool.x.dtype == np.float32
    assert loaded.pool.y.dtype == np.int64
    np.testing.assert_allclose(
        loaded.pool.x, _expected(arrays["train-images-idx3-ubyte"], 0.1307, 0.3081), atol=1e-6
    )
    np.testing.assert_allclose(
        loaded.test.x, _expected(arrays["t10k-images-idx3-ubyte"], 0.1307, 0.3081), atol=1e-6
    )
    np.testing.assert_array_equal(loaded.pool.y, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(loaded.test.y, arrays["t10k-labels-idx1-ubyte"])


def test_fashion_uses_its_own_statistics_and_directory(tmp_path: Path) -> None:
    arrays = _write_split(tmp_path / "fashion_mnist")
    loaded = load_fashion_mnist(tmp_path, download=False)
    np.testing.assert_allclose(
        loaded.pool.x, _expected(arrays["train-images-idx3-ubyte"], 0.2860, 0.3530), atol=1e-6
    )


@pytest.mark.parametrize("where", ["mnist", "mnist/raw", "."])
def test_searches_each_directory(tmp_path: Path, where: str) -> None:
    _write_split(tmp_path / where, n_train=7)
    assert len(load_mnist(tmp_path, download=False).pool) == 7


def test_dataset_directory_wins_over_data_dir(tmp_path: Path) -> None:
    _write_split(tmp_path, n_train=3)
    _write_split(tmp_path / "mnist" / "raw", n_train=4)
    _write_split(tmp_path / "mnist", n_train=5)
    assert len(load_mnist(tmp_path, download=False).pool) == 5


def test_plain_file_preferred_over_gz(tmp_path: Path) -> None:
    _write_split(tmp_path / "mnist", n_train=6, gz=True)
    _write_split(tmp_path / "mnist", n_train=8, gz=False)
    assert len(load_mnist(tmp_path, download=False).pool) == 8


def test_files_are_not_combined_across_directories(tmp_path: Path) -> None:
    _write_split(tmp_path / "mnist")
    for stem in IDX_FILES[2:]:
        (tmp_path / "mnist" / f"{stem}.gz").rename(tmp_path / f"{stem}.gz")
    with pytest.raises(
        DataError, match=re.escape("put t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz")
    ):
        load_mnist(tmp_path, download=False)


def test_missing_files_error_names_files_directory_and_download_option(tmp_path: Path) -> None:
    with pytest.raises(DataError) as raised:
        load_mnist(tmp_path, download=False)
    message = str(raised.value)
    assert "\n" not in message
    for stem in IDX_FILES:
        assert f"{stem}.gz" in message
    assert f"in {tmp_path / 'mnist'} " in message
    assert "downloads are disabled by `data.download: false`" in message
    assert "`data.download: true`" in message
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/" in message


def test_missing_fashion_error_lists_the_system_directory_searched(tmp_path: Path) -> None:
    with_system_dir = dataclasses.replace(
        FASHION_MNIST_FILES, system_dirs=(tmp_path / "system" / "fashion-mnist",)
    )
    with pytest.raises(DataError) as raised:
        with_system_dir.load(tmp_path / "data", download=False)
    message = str(raised.value)
    assert f"in {tmp_path / 'data' / 'fashion_mnist'} " in message
    assert str(tmp_path / "system" / "fashion-mnist") in message


def test_system_directory_is_searched_last(tmp_path: Path) -> None:
    _write_split(tmp_path / "system", n_train=9)
    source = dataclasses.replace(FASHION_MNIST_FILES, system_dirs=(tmp_path / "system",))
    assert len(source.load(tmp_path / "data", download=False).pool) == 9
    _write_split(tmp_path / "data" / "fashion_mnist", n_train=4)
    assert len(source.load(tmp_path / "data", download=False).pool) == 4


def _local_mirror(tmp_path: Path) -> tuple[str, dict[str, str]]:
    """A file:// mirror holding generated .gz files, and their MD5s."""
    mirror = tmp_path / "mirror"
    _write_split(mirror, n_train=10, n_test=4)
    md5 = {f"{stem}.gz": md5_of_file(mirror / f"{stem}.gz") for stem in IDX_FILES}
    return mirror.as_uri() + "/", md5


def test_download_fetches_missing_files_into_dataset_directory(tmp_path: Path) -> None:
    mirror, md5 = _local_mirror(tmp_path)
    missing_mirror = (tmp_path / "nowhere").as_uri() + "/"
    source = dataclasses.replace(MNIST_FILES, mirrors=(missing_mirror, mirror), md5=md5)
    loaded = source.load(tmp_path / "data", download=True)
    assert len(loaded.pool) == 10
    # Besides the downloads, only their decoded cache (auditml.data.cache) is written there.
    files = [path.name for path in (tmp_path / "data" / "mnist").iterdir()]
    assert sorted(name for name in files if ".decoded-" not in name) == sorted(md5)


def test_download_only_fetches_what_is_missing(tmp_path: Path) -> None:
    mirror, md5 = _local_mirror(tmp_path)
    mirror_labels = read_idx(tmp_path / "mirror" / "t10k-labels-idx1-ubyte.gz")
    target = tmp_path / "data" / "mnist"
    local = _write_split(target, n_train=3, n_test=4, seed=1)
    (target / "t10k-labels-idx1-ubyte.gz").unlink()
    source = dataclasses.replace(MNIST_FILES, mirrors=(mirror,), md5=md5)
    loaded = source.load(tmp_path / "data", download=True)
    assert loaded.test is not None
    np.testing.assert_array_equal(loaded.pool.y, local["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(loaded.test.y, mirror_labels)


def test_download_with_bad_checksum_fails_with_instructions(tmp_path: Path) -> None:
    mirror, md5 = _local_mirror(tmp_path)
    wrong = dict.fromkeys(md5, "0" * 32)
    source = dataclasses.replace(MNIST_FILES, mirrors=(mirror,), md5=wrong)
    with pytest.raises(DataError) as raised:
        source.load(tmp_path / "data", download=True)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("mnist: could not download train-images-idx3-ubyte.gz (")
    assert "does not match" in message
    assert "check the network, or put train-images-idx3-ubyte.gz, " in message
    assert f"in {tmp_path / 'data' / 'mnist'} by hand" in message
    for stem in IDX_FILES:
        assert f"{stem}.gz" in message
    assert list((tmp_path / "data" / "mnist").iterdir()) == []


def test_config_default_downloads_missing_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The tutorial's config never mentions data.download: missing files must be fetched.
    mirror, md5 = _local_mirror(tmp_path)
    monkeypatch.setattr(
        mnist_module, "MNIST_FILES", dataclasses.replace(MNIST_FILES, mirrors=(mirror,), md5=md5)
    )
    config = parse_config(
        {"experiment_name": "x", "data": {"dataset": "mnist", "data_dir": str(tmp_path / "d")}}
    )
    loaded = DATASETS.get("mnist").load(config.data.data_dir, config.data.download)
    assert len(loaded.pool) == 10
    files = [path.name for path in (tmp_path / "d" / "mnist").iterdir()]
    assert sorted(name for name in files if ".decoded-" not in name) == sorted(md5)
    progress = capsys.readouterr().err.splitlines()
    assert [line.split()[1] for line in progress] == [f"{stem}.gz" for stem in IDX_FILES]


def test_config_download_false_forbids_fetching(tmp_path: Path) -> None:
    config = parse_config(
        {"experiment_name": "x",
         "data": {"dataset": "mnist", "data_dir": str(tmp_path), "download": False}}
    )
    # The real mirrors: the network guard would fail this test if a download were attempted.
    disabled = re.escape("downloads are disabled by `data.download: false`")
    with pytest.raises(DataError, match=disabled):
        DATASETS.get("mnist").load(config.data.data_dir, config.data.download)


def test_no_network_error_names_every_file_the_folder_and_what_to_do(tmp_path: Path) -> None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind(("127.0.0.1", 0))
    dead_mirror = f"http://127.0.0.1:{probe.getsockname()[1]}/"
    probe.close()  # nothing listens there now: every connection is refused
    source = dataclasses.replace(MNIST_FILES, mirrors=(dead_mirror,))
    with pytest.raises(DataError) as raised:
        source.load(tmp_path, download=True)
    message = str(raised.value)
    assert "\n" not in message
    assert "refused" in message
    for stem in IDX_FILES:
        assert f"{stem}.gz" in message
    assert message.endswith(f"in {tmp_path / 'mnist'} by hand")
    assert "check the network" in message
    assert list((tmp_path / "mnist").iterdir()) == []


def test_files_in_the_system_directory_are_not_downloaded_again(tmp_path: Path) -> None:
    _write_split(tmp_path / "system", n_train=6)
    # The real mirrors and download on: a download attempt would trip the network guard.
    source = dataclasses.replace(FASHION_MNIST_FILES, system_dirs=(tmp_path / "system",))
    assert len(source.load(tmp_path / "data", download=True).pool) == 6
    assert not (tmp_path / "data").exists()


def test_label_out_of_range_is_rejected(tmp_path: Path) -> None:
    _write_split(tmp_path / "mnist")
    write_idx(tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz", np.array([0, 1, 2, 3, 10], "u1"))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz has label 10"):
        load_mnist(tmp_path, download=False)


def test_image_and_label_counts_must_agree(tmp_path: Path) -> None:
    _write_split(tmp_path / "mnist")
    write_idx(tmp_path / "mnist" / "train-labels-idx1-ubyte.gz", np.zeros(11, np.uint8))
    with pytest.raises(DataError, match=r"has 12 images but .* has 11 labels"):
        load_mnist(tmp_path, download=False)


def test_images_of_the_wrong_shape_are_rejected(tmp_path: Path) -> None:
    _write_split(tmp_path / "mnist")
    write_idx(tmp_path / "mnist" / "train-images-idx3-ubyte.gz", np.zeros((12, 32, 32), np.uint8))
    with pytest.raises(DataError, match=r"shape \(12, 32, 32\), not uint8 28x28 images"):
        load_mnist(tmp_path, download=False)


def test_corrupt_file_is_named(tmp_path: Path) -> None:
    _write_split(tmp_path / "mnist", gz=False)
    images = tmp_path / "mnist" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-1])
    with pytest.raises(DataError, match=re.escape(f"{images} is not a valid IDX file")):
        load_mnist(tmp_path, download=False)


needs_shared_mnist = pytest.mark.skipif(
    not (SHARED_MNIST / "MD5SUMS").is_file(), reason=f"no MNIST test split at {SHARED_MNIST}"
)


@needs_shared_mnist
def test_real_mnist_test_split_reads_and_matches_checksums() -> None:
    images = read_idx(SHARED_MNIST / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(SHARED_MNIST / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28)
    assert images.dtype == np.uint8
    assert labels.shape == (10000,)
    assert labels.min() == 0
    assert labels.max() == 9
    assert set(np.bincount(labels)) <= set(range(850, 1150))  # roughly balanced classes
    published = {}
    for line in (SHARED_MNIST / "MD5SUMS").read_text().splitlines():
        checksum, name = line.split()
        published[name] = checksum
    for name, checksum in published.items():
        assert md5_of_file(SHARED_MNIST / name) == checksum
        # The checksums the downloader trusts are the published ones.
        assert MNIST_FILES.md5[name] == checksum


@needs_shared_mnist
def test_real_mnist_test_split_normalises_to_zero_mean_unit_std(tmp_path: Path) -> None:
    # The 60k train split is not available offline, so pair small generated train files with the
    # real test files.
    target = tmp_path / "mnist"
    arrays = _write_split(target)
    for stem in IDX_FILES[2:]:
        (target / f"{stem}.gz").unlink()
        shutil.copy(SHARED_MNIST / f"{stem}.gz", target / f"{stem}.gz")
    loaded = load_mnist(tmp_path, download=False)
    assert loaded.test is not None
    assert loaded.test.x.shape == (10000, 1, 28, 28)
    np.testing.assert_array_equal(loaded.pool.y, arrays["train-labels-idx1-ubyte"])
    # The test split's own statistics are close to, not equal to, the train split's constants.
    assert abs(float(loaded.test.x.mean())) < 0.02
    assert abs(float(loaded.test.x.std()) - 1.0) < 0.02


@pytest.mark.skipif(
    not DEBIAN_FASHION_MNIST.is_dir(),
    reason="Debian package dataset-fashion-mnist is not installed",
)
def test_fashion_mnist_from_debian_package(tmp_path: Path) -> None:
    # tmp_path holds nothing, so the loader must fall through to the package's directory.
    loaded = load_fashion_mnist(tmp_path, download=False)
    assert loaded.test is not None
    assert loaded.pool.x.shape == (60000, 1, 28, 28)
    assert loaded.test.x.shape == (10000, 1, 28, 28)
    assert loaded.pool.x.dtype == np.float32
    assert loaded.pool.y.dtype == np.int64
    # Fashion-MNIST is exactly balanced: 6,000 train and 1,000 test images per class.
    assert np.bincount(loaded.pool.y).tolist() == [6000] * 10
    assert np.bincount(loaded.test.y).tolist() == [1000] * 10
    # The published mean and std are the train split's, so it normalises to about 0 and 1.
    assert abs(float(loaded.pool.x.mean())) < 0.005
    assert abs(float(loaded.pool.x.std()) - 1.0) < 0.005
