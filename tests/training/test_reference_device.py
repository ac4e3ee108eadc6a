"""Reference and shadow models train and score on the run's device, not pinned to the CPU.

No GPU is needed: the CUDA decisions (which device each kind of job trains on, how many pool
workers share a GPU, which GPU each worker takes, what the store's fingerprint records) are
checked with executors and trainers replaced by recorders.
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from auditml.config import AuditMLConfig, parse_config
from auditml.training import build_run_model, ray_executor
from auditml.training import executors as executors_module
from auditml.training.batched_jobs import BatchedReferenceJob, batch_models_setting
from auditml.training.executors import (
    MODELS_PER_GPU,
    Job,
    SerialExecutor,
    pool_plan,
    training_device,
)
from auditml.training.reference import ReferenceJob, ReferenceModels, ReferenceStore


class _Configured:
    """A job carrying a config with ``training.device`` (as reference jobs do)."""

    def __init__(self, device: str) -> None:
        self.config = {"training": {"device": device}}

    def run(self) -> None:
        return None


def _jobs(device: str, count: int = 16) -> list[_Configured]:
    return [_Configured(device) for _ in range(count)]


def test_cpu_jobs_use_every_worker_allowed() -> None:
    plan = pool_plan(8, _jobs("cpu"), cpus=16, cuda_devices=1)
    assert (plan.workers, plan.threads, plan.gpus) == (8, 2, 0)


@pytest.mark.parametrize("device", ["cuda", "auto"])
def test_cuda_jobs_share_each_gpu_between_a_few_workers(device: str) -> None:
    one = pool_plan(16, _jobs(device), cpus=16, cuda_devices=1)
    assert (one.workers, one.threads, one.gpus) == (MODELS_PER_GPU, 16 // MODELS_PER_GPU, 1)
    two = pool_plan(16, _jobs(device), cpus=16, cuda_devices=2)
    assert (two.workers, two.gpus) == (2 * MODELS_PER_GPU, 2)
    # Never more workers than jobs, nor than the caller allows.
    assert pool_plan(16, _jobs(device, 3), cpus=16, cuda_devices=2).workers == 3
    assert pool_plan(2, _jobs(device), cpus=2, cuda_devices=2).workers == 2


def test_jobs_naming_one_gpu_stay_on_it() -> None:
    plan = pool_plan(16, _jobs("cuda:1"), cpus=16, cuda_devices=2)
    assert (plan.workers, plan.gpus) == (MODELS_PER_GPU, 1)


def test_auto_without_a_gpu_is_a_cpu_pool() -> None:
    plan = pool_plan(8, _jobs("auto"), cpus=8, cuda_devices=0)
    assert (plan.workers, plan.threads, plan.gpus) == (8, 1, 0)


def test_pool_workers_take_the_gpus_in_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    chosen: list[int] = []
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    monkeypatch.setattr(executors_module, "_exit_with_parent", lambda parent: None)
    slots = multiprocessing.get_context("spawn").Value("i", 0)
    threads = torch.get_num_threads()
    try:
        for _ in range(5):
            executors_module._init_worker(threads, 0, 2, slots)
        executors_module._init_worker(threads, 0, 0, None)  # CPU jobs: no GPU chosen
    finally:
        torch.set_num_threads(threads)
    assert chosen == [0, 1, 0, 1, 0]


class _NoDeviceFor:
    def run(self, jobs: Sequence[Job[Any]], on_done: Callable[[int, Any], None]) -> None:
        SerialExecutor().run(jobs, on_done)


def test_training_device_asks_the_executor_then_this_machine() -> None:
    class Cluster(_NoDeviceFor):
        def device_for(self, requested: str) -> str:
            return "cuda"

    assert training_device(Cluster(), "auto") == "cuda"
    assert training_device(_NoDeviceFor(), "cpu") == "cpu"
    assert training_device(SerialExecutor(), "cpu") == "cpu"
    expected = "cuda" if torch.cuda.is_available() else (
        "mps" if torch.backends.mps.is_available() else "cpu")
    assert training_device(_NoDeviceFor(), "auto") == expected


class _FakeRay:
    def __init__(self, gpus: float) -> None:
        self.gpus = gpus

    def is_initialized(self) -> bool:
        return True

    def cluster_resources(self) -> dict[str, float]:
        return {"CPU": 4.0, **({"GPU": self.gpus} if self.gpus else {})}


@pytest.mark.parametrize(("gpus", "expected"), [(2.0, "cuda"), (0.0, "cpu")])
def test_ray_resolves_auto_by_the_cluster_s_gpus(
    monkeypatch: pytest.MonkeyPatch, gpus: float, expected: str
) -> None:
    monkeypatch.setattr(ray_executor, "import_ray", lambda: _FakeRay(gpus))
    executor = ray_executor.RayExecutor(2)
    assert executor.device_for("auto") == expected
    assert executor.device_for("cpu") == "cpu"
    # The device the store writes into the job is the one the task then asks resources for.
    asked = executor._resources(_Configured(executor.device_for("auto")), gpus)
    assert ("num_gpus" in asked) == (expected == "cuda")


def _config(tiny_config: Callable[..., dict[str, Any]], device: str) -> AuditMLConfig:
    return parse_config(tiny_config(training={"epochs": 1, "device": device}))


def test_both_kinds_of_reference_job_train_on_the_config_s_device(
    tiny_config: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one-by-one and the batched job must train on the same device: their models are
    the same only if both draw their noise from the same kind of generator."""
    import auditml.training.batched as batched
    import auditml.training.batched_jobs as batched_jobs
    import auditml.training.trainer as trainer

    seen: dict[str, torch.device] = {}

    class Fit:
        model = torch.nn.Linear(1, 1)

    def fake_fit(*args: Any, device: torch.device, **kwargs: Any) -> Fit:
        seen["alone"] = device
        return Fit()

    def fake_batched(*args: Any, device: torch.device, **kwargs: Any) -> list[Any]:
        seen["batched"] = device
        return []

    # A GPU this machine may not have: resolution is replaced, training is recorded.
    monkeypatch.setattr(batched_jobs, "resolve_device", lambda name: torch.device(name))
    monkeypatch.setattr(trainer, "fit_model", fake_fit)
    monkeypatch.setattr(batched, "train_batched", fake_batched)
    recipe = _config(tiny_config, "cuda").model_dump(mode="json")
    ReferenceJob(recipe, 1, np.arange(10)).run()
    BatchedReferenceJob(recipe, (1, 2), (np.arange(10), np.arange(10, 20)), (0, 1)).run()
    assert seen == {"alone": torch.device("cuda"), "batched": torch.device("cuda")}


class _Untrained:
    """An executor that 'trains' on ``device`` by returning fresh weights, recording its jobs."""

    def __init__(self, config: AuditMLConfig, device: str) -> None:
        self.config, self.device = config, device
        self.jobs: list[Any] = []

    def device_for(self, requested: str) -> str:
        return self.device

    def run(self, jobs: Sequence[Job[Any]], on_done: Callable[[int, Any], None]) -> None:
        self.jobs.extend(jobs)
        for index, job in enumerate(jobs):
            torch.manual_seed(job.seed)  # type: ignore[attr-defined]
            model = build_run_model(self.config)
            on_done(index, {n: t.numpy() for n, t in model.state_dict().items()})


def _ensure(directory: Path, config: AuditMLConfig, executor: _Untrained,
            device: torch.device | None = None,
            build: Callable[[], torch.nn.Module] | None = None) -> ReferenceModels:
    return ReferenceStore(directory).ensure(
        config, np.arange(40), 2, build or (lambda: build_run_model(config)), workers=1,
        console=None, description="reference models", executor=executor, device=device,
    )


def test_the_store_trains_where_the_executor_says_and_records_the_kind_of_device(
    tiny_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    config = _config(tiny_config, "auto")
    on_gpu = _Untrained(config, "cuda")
    _ensure(tmp_path, config, on_gpu, torch.device("cpu"))
    assert [job.config["training"]["device"] for job in on_gpu.jobs] == ["cuda", "cuda"]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["fingerprint"]["device"] == "cuda"
    assert "device" not in manifest["fingerprint"]["recipe"]["training"]
    # Another setting that trains on a GPU too gives the same models: nothing retrains.
    again = _Untrained(config, "cuda:0")
    _ensure(tmp_path, _config(tiny_config, "cuda:0"), again, torch.device("cpu"))
    assert again.jobs == []
    # On the CPU the models differ (other generators, other rounding): they are retrained.
    on_cpu = _Untrained(config, "cpu")
    _ensure(tmp_path, _config(tiny_config, "cpu"), on_cpu, torch.device("cpu"))
    assert len(on_cpu.jobs) == 2


def test_a_store_from_before_device_placement_is_reused_on_the_cpu_only(
    tiny_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    config = _config(tiny_config, "auto")
    _ensure(tmp_path, config, _Untrained(config, "cpu"))
    # Rewrite the manifest as stores were written when every model trained on the CPU: the
    # recipe kept the device setting and no device was recorded.
    path = tmp_path / "manifest.json"
    manifest = json.loads(path.read_text())
    fingerprint = manifest["fingerprint"]
    del fingerprint["device"]
    fingerprint["recipe"]["training"]["device"] = "auto"
    path.write_text(json.dumps(manifest))
    reused = _Untrained(config, "cpu")
    _ensure(tmp_path, config, reused)
    assert reused.jobs == []
    on_gpu = _Untrained(config, "cuda")
    _ensure(tmp_path, config, on_gpu, torch.device("cpu"))
    assert len(on_gpu.jobs) == 2


def test_reference_models_are_scored_on_the_given_device(
    tiny_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    config = _config(tiny_config, "cpu")
    moved: list[torch.device] = []

    def build() -> torch.nn.Module:
        model = build_run_model(config)

        def to(device: torch.device) -> torch.nn.Module:
            moved.append(device)
            return model

        model.to = to  # type: ignore[method-assign]
        return model

    # A device this machine may not have: only the placement is recorded.
    reference = _ensure(tmp_path, config, _Untrained(config, "cpu"), torch.device("cuda"), build)
    assert reference.device == torch.device("cuda")
    assert moved == [torch.device("cuda")] * 2


def test_batch_size_default_follows_the_training_device() -> None:
    from auditml.config import AuditConfig

    assert batch_models_setting(AuditConfig(), "cpu") == 8
    assert batch_models_setting(AuditConfig(), "cuda:1") == 64


def test_a_store_from_before_the_newer_recipe_parts_is_reused(
    tiny_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    raw = tiny_config(training={"device": "cpu", "dp": {"enabled": True,
                                                        "noise_multiplier": 1.0}})
    config = parse_config(raw)
    _ensure(tmp_path, config, _Untrained(config, "cpu"))
    path = tmp_path / "manifest.json"
    manifest = json.loads(path.read_text())
    for part in ("lr_schedule", "augmentation_multiplicity"):  # added after this store
        del manifest["fingerprint"]["recipe"]["training"]["dp"]["recipe"][part]
    path.write_text(json.dumps(manifest))
    reused = _Untrained(config, "cpu")
    _ensure(tmp_path, config, reused)
    assert reused.jobs == []
    # A store that did schedule the rate is another set of models.
    manifest["fingerprint"]["recipe"]["training"]["dp"]["recipe"]["lr_schedule"] = "cosine"
    path.write_text(json.dumps(manifest))
    retrained = _Untrained(config, "cpu")
    _ensure(tmp_path, config, retrained)
    assert len(retrained.jobs) == 2
