"""The Ray executor: on a local Ray with 2 CPUs, the local executors' results bit for bit.

One Ray is started for the whole module (starting one costs seconds). Tests that need no
running Ray (the configuration's errors, the missing-Ray message) run even without Ray installed.
"""

from __future__ import annotations

import io
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from rich.console import Console

from auditml.audit.many_runs import many_runs_audit
from auditml.audit.runner import run_audit
from auditml.config import parse_config
from auditml.errors import ConfigError, UnknownNameError
from auditml.training import train
from auditml.training.executors import EXECUTORS, SerialExecutor, make_executor
from auditml.training.ray_executor import RayExecutor, RayUnavailableError, _probe
from auditml.training.reference import ReferenceJob, _fingerprint
from time_limit import finishes_within


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[ModuleType]:
    ray = pytest.importorskip("ray")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_USAGE_STATS_ENABLED", "0")  # tests never reach the network
        ray.init(num_cpus=2, include_dashboard=False, logging_level="warning",
                 log_to_driver=False)
        # The jobs below live in this test module, which Ray's workers cannot import.
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
        try:
            yield ray
        finally:
            ray.shutdown()


class Sleep:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def run(self) -> float:
        time.sleep(self.seconds)
        return self.seconds


class Fail:
    def run(self) -> None:
        raise ValueError("job 0 failed")


def _jobs(tiny_config: Callable[..., dict[str, Any]]) -> list[ReferenceJob]:
    raw = parse_config(tiny_config(training={"epochs": 1})).resolved().model_dump(mode="json")
    # One job with DP-SGD (auditml's fast clipping, Poisson batches, noise from the seed).
    dp = {"epochs": 2, "dp": {"enabled": True, "noise_multiplier": 1.0, "delta": 1e-3}}
    raw_dp = parse_config(tiny_config(training=dp)).resolved().model_dump(mode="json")
    return [ReferenceJob(config, seed, np.arange(seed, seed + 50))
            for config, seed in [(raw, 1), (raw, 2), (raw_dp, 3)]]


@pytest.mark.slow
def test_reference_jobs_on_ray_equal_the_serial_executor_bit_for_bit(
    ray_cluster: ModuleType, tiny_config: Callable[..., dict[str, Any]]
) -> None:
    jobs = _jobs(tiny_config)
    # Ray gives a one-CPU task one thread (OMP_NUM_THREADS=1): serial training with one
    # thread runs the same kernels in the same order.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        serial: dict[int, dict[str, np.ndarray]] = {}
        SerialExecutor().run(jobs, serial.__setitem__)
    finally:
        torch.set_num_threads(threads)
    reported: list[int] = []
    on_ray: dict[int, dict[str, np.ndarray]] = {}

    def done(index: int, weights: dict[str, np.ndarray]) -> None:
        reported.append(index)
        on_ray[index] = weights

    EXECUTORS.get("ray")(2).run(jobs, done)
    assert sorted(reported) == [0, 1, 2]  # every job reported exactly once
    for index, weights in serial.items():
        assert weights.keys() == on_ray[index].keys() and weights
        for name in weights:
            np.testing.assert_array_equal(weights[name], on_ray[index][name])


def test_a_failing_job_is_reraised_as_itself_and_stops_the_rest(
    ray_cluster: ModuleType,
) -> None:
    done: list[int] = []
    started = time.monotonic()
    # With 2 CPUs the failing job runs beside one sleeper while three more wait in the queue.
    with pytest.raises(ValueError, match="job 0 failed") as raised:
        RayExecutor().run([Fail(), *[Sleep(60) for _ in range(4)]],
                          lambda index, result: done.append(index))
    assert type(raised.value) is ValueError  # not Ray's wrapper, whose text is a traceback
    assert done == [] and time.monotonic() - started < 30
    # The sleepers were cancelled, the running one killed: both CPUs take new work at once.
    assert ray_cluster.get(ray_cluster.remote(lambda: 7).remote(), timeout=20) == 7


def test_a_cuda_job_asks_for_its_share_of_a_gpu(ray_cluster: ModuleType) -> None:
    cuda = ReferenceJob({"training": {"device": "cuda"}}, 0, np.arange(2))
    executor = RayExecutor(models_per_gpu=8)
    assert executor._resources(cuda, cluster_gpus=1) == {"num_cpus": 1, "num_gpus": 1 / 8}
    assert executor._resources(Sleep(0), cluster_gpus=1) == {"num_cpus": 1}
    # This cluster has no GPU: refused before any task is queued, instead of waiting forever.
    with finishes_within(30), pytest.raises(RayUnavailableError, match="has no GPUs"):
        executor.run([cuda], lambda index, result: None)


@pytest.mark.slow
def test_executor_ray_in_the_config_trains_reference_models_on_ray(
    ray_cluster: ModuleType, tiny_config: Callable[..., dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batches: list[int] = []
    real_run = RayExecutor.run

    def spy(self: RayExecutor, jobs: Any, on_done: Any) -> None:
        batches.append(len(jobs))
        real_run(self, jobs, on_done)

    monkeypatch.setattr(RayExecutor, "run", spy)
    raw = tiny_config(data={"train_size": 60, "batch_size": 20}, training={"epochs": 1},
                      audit={"reference_models": 2, "attacks": ["mia_lira"], "executor": "ray"})
    config = parse_config(raw)
    train(config, console=Console(file=io.StringIO()))
    report = run_audit(config.run_dir, console=Console(file=io.StringIO()))
    assert [outcome.attack for outcome in report.outcomes] == ["mia_lira"]
    assert batches and sum(batches) >= 1
    assert len(list((config.run_dir / "reference").rglob("model_*.safetensors"))) == 2


def test_the_many_runs_audit_runs_on_the_configured_executor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("ray")

    class Routed(Exception):
        pass

    def refuse(self: RayExecutor, jobs: Any, on_done: Any) -> None:
        raise Routed(len(jobs))

    monkeypatch.setattr(RayExecutor, "run", refuse)
    raw = {"experiment_name": "recipe", "output_dir": str(tmp_path),
           "data": {"dataset": "digits", "train_size": 60, "batch_size": 30},
           "model": {"arch": "mlp"},
           "training": {"epochs": 1, "device": "cpu",
                        "dp": {"enabled": True, "noise_multiplier": 2.0}},
           "audit": {"executor": "ray"}}
    with pytest.raises(Routed) as routed:
        many_runs_audit(parse_config(raw), 8)
    assert routed.value.args == (8,)


def test_a_missing_ray_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(RayUnavailableError, match=r"pip install 'auditml\[ray\]'") as raised:
        make_executor("ray", 2)
    assert "\n" not in str(raised.value)


def test_executor_settings_are_checked_where_they_are_resolved() -> None:
    with pytest.raises(UnknownNameError, match=r"audit.executor: .*'rey'.*did you mean 'ray'"):
        make_executor("rey", 1)
    with pytest.raises(ConfigError, match="takes no cluster address"):
        make_executor("local", 1, "auto")
    assert parse_config({"experiment_name": "x"}).audit.executor == "local"


def test_where_models_train_does_not_change_which_models_they_are(
    tiny_config: Callable[..., dict[str, Any]],
) -> None:
    local = parse_config(tiny_config())
    on_ray = parse_config(tiny_config(audit={"executor": "ray", "ray_address": "auto"}))
    examples = np.arange(10)
    assert _fingerprint(local, examples, "cpu") == _fingerprint(on_ray, examples, "cpu")


def test_an_address_where_nothing_listens_fails_in_seconds() -> None:
    with socket.socket() as unused:  # a port nothing listens on once this socket is closed
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(RayUnavailableError, match=f"nothing answers at 127.0.0.1:{port}"):
        _probe(f"ray://127.0.0.1:{port}")
    assert time.monotonic() - started < 10

