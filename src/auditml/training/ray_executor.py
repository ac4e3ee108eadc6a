"""Jobs as Ray tasks: reference, shadow and many-runs audit models trained across a cluster.

:class:`RayExecutor` satisfies :class:`~auditml.training.executors.Executor`: every job becomes
one Ray task, ``on_done`` runs here (in the calling process, which saves the results) as each
task finishes, and the first failure cancels the tasks still queued or running and is re-raised
as the job raised it. Ray is an optional extra (``pip install 'auditml[ray]'``) and is imported
only when a Ray executor is built, so auditml imports and runs without it.

A job that carries a config (reference, shadow and many-runs audit jobs do) asks for a share of
a GPU when its ``training.device`` is CUDA, or ``auto`` on a cluster that has GPUs:
``num_gpus = 1 / models_per_gpu``, so that many small models share one device. Every task asks
for one CPU. Ray gives each GPU task its own device (``CUDA_VISIBLE_DEVICES``), and a task that
asks for none sees no GPU. Jobs carry their own seeds, so the weights equal those of the local
executors bit for bit on the same hardware and thread count.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, Protocol, TypeVar

from auditml.errors import ConfigError
from auditml.training import ray_watchdog

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)

DEFAULT_MODELS_PER_GPU = 4
_PROBE_SECONDS = 5.0
_POLL_SECONDS = 1.0


class Job(Protocol[R_co]):
    """:class:`auditml.training.executors.Job`, restated: that module imports this one."""

    def run(self) -> R_co: ...


class RayUnavailableError(ConfigError):
    """Ray was asked for but is not installed, not reachable, or lacks the resources asked."""


class RayExecutor:
    """Each job as one Ray task on the cluster at ``address``.

    ``address`` is what ``ray.init`` takes (``auto``, ``host:6379``, ``ray://host:10001``);
    ``None`` reuses the Ray this process has already initialised, or starts a local one.
    ``workers`` is accepted like every executor's, but Ray's scheduler decides how many tasks
    run at once from the resources each asks for. ``models_per_gpu`` small models share a GPU.
    """

    def __init__(
        self,
        workers: int = 1,
        *,
        address: str | None = None,
        models_per_gpu: int = DEFAULT_MODELS_PER_GPU,
    ) -> None:
        if models_per_gpu < 1:
            raise ConfigError(f"`models_per_gpu` must be at least 1, got {models_per_gpu}.")
        self.workers = max(1, workers)
        self.address = address
        self.models_per_gpu = models_per_gpu
        import_ray()  # fail here, before any training, when Ray is missing

    def run(self, jobs: Sequence[Job[R]], on_done: Callable[[int, R], None]) -> None:
        if not jobs:
            return
        ray = import_ray()
        _connect(ray, self.address)
        cluster_gpus = float(ray.cluster_resources().get("GPU", 0))
        options = [self._resources(job, cluster_gpus) for job in jobs]
        task = ray.remote(_run_job)
        index_of = {task.options(**opts).remote(job): i
                    for i, (job, opts) in enumerate(zip(jobs, options, strict=True))}
        pending = list(index_of)
        try:
            while pending:
                # A bounded wait returns to Python now and then, so Ctrl-C and alarms get in.
                ready, pending = ray.wait(pending, num_returns=1, timeout=_POLL_SECONDS)
                for ref in ready:
                    on_done(index_of[ref], _result(ray, ref))
        except BaseException:
            for ref in pending:  # force: kill running tasks too, not only the queued ones
                ray.cancel(ref, force=True)
            raise

    def device_for(self, requested: str) -> str:
        """Where a job asking for ``training.device=requested`` trains on the cluster: ``auto``
        is a GPU when the cluster has one (:meth:`_resources` then gives the task one)."""
        if requested != "auto":
            return requested
        ray = import_ray()
        _connect(ray, self.address)
        return "cuda" if float(ray.cluster_resources().get("GPU", 0)) > 0 else "cpu"

    def _resources(self, job: object, cluster_gpus: float) -> dict[str, float]:
        device = _device_of(job)
        wants_gpu = device.startswith("cuda") or (device == "auto" and cluster_gpus > 0)
        if not wants_gpu:
            return {"num_cpus": 1}
        if device not in ("auto", "cuda", "cuda:0"):
            raise RayUnavailableError(
                f"training.device={device!r} names one GPU of this machine; on Ray use 'cuda' "
                "or 'auto' (Ray assigns each task its GPU)"
            )
        if cluster_gpus <= 0:  # the task would wait forever for a GPU
            raise RayUnavailableError(
                f"training.device={device!r}, but the Ray cluster has no GPUs; add GPU nodes "
                "or set training.device: cpu"
            )
        return {"num_cpus": 1, "num_gpus": 1 / self.models_per_gpu}


def import_ray() -> ModuleType:
    """The ``ray`` module, or one line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise RayUnavailableError(
            "audit.executor: ray needs Ray, which is not installed; run "
            "pip install 'auditml[ray]' (or set audit.executor: local)"
        ) from None
    return ray


def _connect(ray: ModuleType, address: str | None) -> None:
    """Join the cluster at ``address``, reuse this process's Ray, or start a local one.

    A local Ray started here runs without the dashboard (nothing here uses it: one process fewer
    to start and to leave behind) and ends with this process even when it is killed with SIGKILL
    (:mod:`auditml.training.ray_watchdog`). Only the processes ``ray.init`` started as this
    process's children are watched, so a cluster the user started is never touched.
    """
    if ray.is_initialized():
        return
    if address is not None:
        _probe(address)
    before = ray_watchdog.child_pids(os.getpid())
    try:
        ray.init(address=address, include_dashboard=False, logging_level="warning",
                 log_to_driver=False)
    except Exception as error:  # Ray's many connection errors end in one line
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        where = f"at {address!r}" if address is not None else "on this machine"
        raise RayUnavailableError(
            f"could not start or join Ray {where}: {reason}; start a cluster with "
            "`ray start --head` and set audit.ray_address (see docs/ray.md)"
        ) from None
    # The children that appeared during ray.init are the local Ray it started (GCS server,
    # raylet, monitors); none when it joined a running cluster, which is then not watched.
    ray_watchdog.start(os.getpid(), ray_watchdog.child_pids(os.getpid()) - before)


def _probe(address: str) -> None:
    """Fail in seconds when nothing listens at ``host:port``: ``ray.init`` retries for minutes."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():  # "auto", "local": Ray looks them up itself, quickly
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=_PROBE_SECONDS):
            pass
    except OSError as error:
        raise RayUnavailableError(
            f"audit.ray_address={address!r}: nothing answers at {host}:{port} "
            f"({error.strerror or error}); start the head node there with `ray start --head`, "
            "or fix the address"
        ) from None


def _device_of(job: object) -> str:
    """The ``training.device`` of a job's (JSON-form) config; ``cpu`` for jobs without one."""
    config = getattr(job, "config", None)
    training = config.get("training") if isinstance(config, dict) else None
    device = training.get("device") if isinstance(training, dict) else None
    return device if isinstance(device, str) else "cpu"


def _run_job(job: Job[R]) -> R:
    return job.run()


def _result(ray: ModuleType, ref: Any) -> Any:
    """The task's result; a job's own exception is re-raised as itself, not wrapped by Ray."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as error:
        cause = getattr(error, "cause", None)
        if isinstance(cause, BaseException):
            raise cause from error  # the chain keeps Ray's remote traceback for debugging
        raise
