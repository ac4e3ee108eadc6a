"""The reference-model engine: balanced keep matrix, reuse, resume, and parallel == serial."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from auditml.config import AuditMLConfig, parse_config
from auditml.errors import RunDirectoryError
from auditml.training import build_run_model
from auditml.training.executors import EXECUTORS, Job, SerialExecutor
from auditml.training.reference import (
    ReferenceJob,
    ReferenceModels,
    ReferenceStore,
    _model_seed,
    paired_keep,
    train_reference_models,
)


def test_paired_keep_puts_every_example_in_half_the_models() -> None:
    keep = paired_keep(6, 101, seed=3)
    assert keep.shape == (6, 101)
    np.testing.assert_array_equal(keep.sum(axis=0), np.full(101, 3))
    np.testing.assert_array_equal(keep[0], ~keep[1])
    assert set(keep.sum(axis=1)) == {50, 51}
    # Adding models never changes the existing ones.
    np.testing.assert_array_equal(paired_keep(4, 101, seed=3), keep[:4])
    assert not np.array_equal(paired_keep(2, 101, seed=4), keep[:2])


class _Crash:
    def run(self) -> Any:
        raise RuntimeError("simulated crash")


class Recording:
    """Trains one by one and records which reference models (by number) it trained; with
    ``crash_after``, the job after that many models raises, as a killed audit would stop."""

    def __init__(self, run_seed: int, crash_after: int | None = None) -> None:
        self.numbers = {_model_seed(run_seed, k): k for k in range(32)}
        self.crash_after = crash_after
        self.trained: list[int] = []

    def run(self, jobs: Sequence[Job[Any]], on_done: Callable[[int, Any], None]) -> None:
        def record(index: int, result: Any) -> None:
            assert isinstance(jobs[index], ReferenceJob)
            self.trained.append(self.numbers[jobs[index].seed])
            on_done(index, result)

        runnable = [_Crash() if i == self.crash_after else job for i, job in enumerate(jobs)]
        SerialExecutor().run(runnable, record)


def _ensure(store: ReferenceStore, config: AuditMLConfig, count: int,
            executor: Recording) -> ReferenceModels:
    return store.ensure(config, np.arange(40), count, lambda: build_run_model(config),
                        workers=1, console=None, description="reference models",
                        executor=executor)


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name


@pytest.mark.slow
def test_store_trains_once_and_reuses(
    tiny_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    config = parse_config(tiny_config(training={"epochs": 1}))
    store = ReferenceStore(tmp_path / "reference" / "audit")

    def ensure(count: int, recipe: AuditMLConfig = config) -> tuple[ReferenceModels, list[int]]:
        executor = Recording(recipe.seed)
        return _ensure(store, recipe, count, executor), executor.trained

    first, trained = ensure(2)
    assert trained == [0, 1] and len(first) == 2 and first.keep.shape == (2, 40)
    again, trained = ensure(2)
    assert trained == []
    for a, b in zip(first.models, again.models, strict=True):
        _assert_same_weights(a, b)
    more, trained = ensure(4)
    assert trained == [2, 3]
    np.testing.assert_array_equal(more.keep[:2], first.keep)
    np.testing.assert_array_equal(more.keep.sum(axis=0), np.full(40, 2))
    assert len(ensure(3)[0]) == 3 and ensure(3)[1] == []
    # A different recipe is a different set of models: all retrained, the old ones removed.
    other = parse_config(tiny_config(training={"epochs": 1, "learning_rate": 0.01}))
    assert ensure(2, other)[1] == [0, 1]
    assert sorted(p.name for p in store.directory.glob("model_*")) == [
        "model_000.safetensors", "model_001.safetensors"]
    assert ensure(2, config)[1] == [0, 1]


@pytest.mark.slow
def test_a_crashed_run_keeps_finished_models_and_the_rerun_trains_only_the_rest(
    tiny_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    config = parse_config(tiny_config(training={"epochs": 1}))
    store = ReferenceStore(tmp_path / "audit")
    crashing = Recording(config.seed, crash_after=1)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _ensure(store, config, 4, crashing)
    assert crashing.trained == [0]
    manifest = json.loads((store.directory / "manifest.json").read_text())
    assert manifest["done"] == [0]
    rerun = Recording(config.seed)
    resumed = _ensure(store, config, 4, rerun)
    assert rerun.trained == [1, 2, 3]
    # The resumed set is the set an uninterrupted run trains.
    fresh = Recording(config.seed)
    whole = _ensure(ReferenceStore(tmp_path / "fresh"), config, 4, fresh)
    assert fresh.trained == [0, 1, 2, 3]
    np.testing.assert_array_equal(resumed.keep, whole.keep)
    for a, b in zip(resumed.models, whole.models, strict=True):
        _assert_same_weights(a, b)


@pytest.fixture(scope="module")
def trained_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    raw = {"experiment_name": "tiny", "output_dir": str(tmp_path_factory.mktemp("results")),
           "data": {"dataset": "digits", "train_size": 100, "batch_size": 50},
           "training": {"epochs": 1, "learning_rate": 0.005, "device": "cpu"}}
    directory = tmp_path_factory.mktemp("store") / "audit"
    _ensure(ReferenceStore(directory), parse_config(raw), 2, Recording(0))
    return directory, raw


def _corrupt_manifest(directory: Path) -> None:
    (directory / "manifest.json").write_text("{not json")


def _manifest_not_an_object(directory: Path) -> None:
    (directory / "manifest.json").write_text("[1, 2]")


def _manifest_nested_too_deep(directory: Path) -> None:
    """JSON nested deeper than the parser's recursion: a RecursionError traceback before."""
    (directory / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)


def _done_not_numbers(directory: Path) -> None:
    manifest = json.loads((directory / "manifest.json").read_text())
    (directory / "manifest.json").write_text(json.dumps({**manifest, "done": ["0", 1]}))


def _keep_truncated(directory: Path) -> None:
    (directory / "keep.npy").write_bytes((directory / "keep.npy").read_bytes()[:90])


def _keep_edited(directory: Path) -> None:
    keep = np.load(directory / "keep.npy")
    keep[0, 0] = not keep[0, 0]
    np.save(directory / "keep.npy", keep)


def _weights_truncated(directory: Path) -> None:
    path = directory / "model_001.safetensors"
    path.write_bytes(path.read_bytes()[:100])


def _weights_missing(directory: Path) -> None:
    (directory / "model_000.safetensors").unlink()


@pytest.mark.slow
@pytest.mark.parametrize("damage, culprit", [
    (_corrupt_manifest, "manifest.json"), (_manifest_not_an_object, "manifest.json"),
    (_manifest_nested_too_deep, "manifest.json"),
    (_done_not_numbers, "manifest.json"), (_keep_truncated, "keep.npy"),
    (_keep_edited, "keep.npy"), (_weights_truncated, "model_001.safetensors"),
    (_weights_missing, "model_000.safetensors"),
])
def test_a_damaged_store_is_one_clear_line_naming_what_to_delete(
    trained_store: tuple[Path, dict[str, Any]], tmp_path: Path,
    damage: Callable[[Path], None], culprit: str,
) -> None:
    original, raw = trained_store
    directory = tmp_path / "audit"
    shutil.copytree(original, directory)
    config = parse_config(raw)
    executor = Recording(config.seed)
    assert len(_ensure(ReferenceStore(directory), config, 2, executor)) == 2  # intact copy
    damage(directory)
    with pytest.raises(RunDirectoryError) as error:
        _ensure(ReferenceStore(directory), config, 2, executor)
    message = str(error.value)
    assert "\n" not in message and culprit in message and f"delete {directory}" in message
    assert executor.trained == []


@pytest.mark.slow
def test_a_manifest_written_before_resumable_training_is_reused(
    trained_store: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    original, raw = trained_store
    directory = tmp_path / "audit"
    shutil.copytree(original, directory)
    manifest = json.loads((directory / "manifest.json").read_text())
    (directory / "manifest.json").write_text(
        json.dumps({"count": 2, "fingerprint": manifest["fingerprint"]}))
    executor = Recording(0)
    assert len(_ensure(ReferenceStore(directory), parse_config(raw), 2, executor)) == 2
    assert executor.trained == []


@pytest.mark.slow
def test_parallel_training_equals_serial(tiny_config: Callable[..., dict[str, Any]]) -> None:
    raw = parse_config(tiny_config(training={"epochs": 1})).resolved().model_dump(mode="json")
    # One job with DP-SGD (auditml's fast clipping, Poisson batches, noise from the seed).
    dp = {"epochs": 2, "dp": {"enabled": True, "noise_multiplier": 1.0, "delta": 1e-3}}
    raw_dp = parse_config(tiny_config(training=dp)).resolved().model_dump(mode="json")
    jobs = [ReferenceJob(config, seed, np.arange(seed, seed + 50))
            for config, seed in [(raw, 1), (raw, 2), (raw_dp, 3)]]
    # With as many workers as cores each worker gets one thread; serial training with one
    # thread runs the same kernels in the same order, so the weights agree bit for bit.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        serial = train_reference_models(jobs, workers=1, executor=EXECUTORS.get("serial")(1))
    finally:
        torch.set_num_threads(threads)
    workers = max(2, os.cpu_count() or 2)
    parallel = train_reference_models(jobs, workers=workers,
                                      executor=EXECUTORS.get("local")(workers))
    assert len(serial) == len(parallel) == 3
    for one, other in zip(serial, parallel, strict=True):
        assert one.keys() == other.keys() and one
        for name in one:
            np.testing.assert_array_equal(one[name], other[name])


def test_a_file_where_the_store_belongs_is_one_clear_line(
    tmp_path: Path, tiny_config: Callable[..., dict[str, Any]],
) -> None:
    """``reference/audit`` being a file was an OSError traceback."""
    directory = tmp_path / "audit"
    directory.write_text("x", encoding="utf-8")
    executor = Recording(0)
    with pytest.raises(RunDirectoryError, match=r"is a file where auditml keeps its reference"):
        _ensure(ReferenceStore(directory), parse_config(tiny_config()), 2, executor)
    assert executor.trained == [] and directory.read_text(encoding="utf-8") == "x"


class _Capturing:
    """Records each job's training indices and returns a fresh model's weights (no training)."""

    def __init__(self, config: AuditMLConfig) -> None:
        self.config = config
        self.indices: list[np.ndarray] = []

    def run(self, jobs: Sequence[Job[Any]], on_done: Callable[[int, Any], None]) -> None:
        for index, job in enumerate(jobs):
            assert isinstance(job, ReferenceJob)
            self.indices.append(np.asarray(job.train_indices))
            state = build_run_model(self.config).state_dict()
            on_done(index, {name: t.numpy() for name, t in state.items()})


def test_unaudited_training_examples_are_in_every_reference_model(
    tiny_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    config = parse_config(tiny_config(training={"epochs": 1}))
    store = ReferenceStore(tmp_path / "audit")
    examples, always = np.arange(40), np.arange(100, 160)

    def ensure(always_in: np.ndarray | None) -> tuple[ReferenceModels, _Capturing]:
        executor = _Capturing(config)
        models = store.ensure(config, examples, 2, lambda: build_run_model(config), workers=1,
                              console=None, description="reference models", executor=executor,
                              always_in=always_in)
        return models, executor

    plain, executor = ensure(None)
    assert [len(i) for i in executor.indices] == [20, 20]
    with_always, executor = ensure(always)
    # A set trained without them is not the one asked for: both models are trained again, each
    # on its half of the audited examples and on every unaudited one (as many as the target).
    assert len(executor.indices) == 2
    for k, indices in enumerate(executor.indices):
        np.testing.assert_array_equal(indices, np.r_[examples[with_always.keep[k]], always])
    manifest = json.loads((store.directory / "manifest.json").read_text())
    assert manifest["fingerprint"]["always_in"] == always.tolist()
    assert ensure(always)[1].indices == []
    np.testing.assert_array_equal(plain.keep, with_always.keep)


def test_stores_written_before_audit_size_keep_their_fingerprint(
    tiny_config: Callable[..., dict[str, Any]],
) -> None:
    from auditml.training.reference import _fingerprint

    examples = np.arange(10)
    every = _fingerprint(parse_config(tiny_config()), examples, "cpu")
    # A store written before the key existed has no data.audit_size: auditing every member
    # (the default) trains the same models, so the fingerprint leaves it out.
    assert "audit_size" not in every["recipe"]["data"]
    part = _fingerprint(parse_config(tiny_config(data={"train_size": 100, "audit_size": 50})),
                        examples, "cpu")
    assert part["recipe"]["data"]["audit_size"] == 50
