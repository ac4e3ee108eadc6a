"""Where independent training jobs run: one by one in this process, or in a local process pool.

An executor takes a list of jobs (picklable objects with ``run() -> result``) and calls
``on_done(index, result)`` in the calling process as each job finishes, in completion order, so
the caller can save every result at once: a killed run loses only the jobs still running.
If a job or ``on_done`` raises, the executor stops the remaining jobs and re-raises.

Executors are looked up by name in :data:`EXECUTORS`; each entry is a class taking ``workers``,
and a cluster's also ``address`` (:func:`make_executor` builds either from the config). A new
backend is one module with such a class plus one ``register`` line below.

Jobs that carry a config train on its ``training.device``. An executor whose jobs run elsewhere
(a cluster) says which device that is with ``device_for(requested)``; for the others it is the
device this machine resolves (:func:`training_device`). On a GPU, several of the small models
auditing trains share it: the local pool runs :data:`MODELS_PER_GPU` processes per GPU.
"""

from __future__ import annotations

import ctypes
import inspect
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from auditml.config_errors import cut
from auditml.errors import ConfigError, UnknownNameError
from auditml.registry import Registry
from auditml.training.ray_executor import RayExecutor, _device_of

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
# Processes sharing one GPU. A reference model of the tutorial's size keeps a GPU busy for a
# fraction of each step (kernel launches, the loader); a few processes fill the gaps, while each
# costs a CUDA context (~0.5 GB) and CPU threads. Ray packs models the same way (1/4 GPU each).
MODELS_PER_GPU = 4
_PARENT_POLL_SECONDS = 0.5


class Job(Protocol[R_co]):
    """One independent piece of work; must pickle to run in another process."""

    def run(self) -> R_co: ...


class Executor(Protocol):
    """Runs jobs and reports each result as soon as it is ready."""

    def run(self, jobs: Sequence[Job[R]], on_done: Callable[[int, R], None]) -> None: ...


class SerialExecutor:
    """Every job in this process, in order (the reference for what the others must return)."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = 1

    def device_for(self, requested: str) -> str:
        return local_device(requested)

    def run(self, jobs: Sequence[Job[R]], on_done: Callable[[int, R], None]) -> None:
        for index, job in enumerate(jobs):
            on_done(index, job.run())


class LocalPoolExecutor:
    """A spawn process pool of ``workers`` on this machine; in this process for one worker/job.

    Threads per worker split the cores, so the pool never oversubscribes the machine. Jobs on
    CUDA run at most :data:`MODELS_PER_GPU` workers per GPU they may use, each worker on its
    own GPU in turn when the jobs name none (see :func:`pool_plan`). Workers exit with this
    process, even when it is killed with SIGKILL (see :func:`_exit_with_parent`).
    """

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)

    def device_for(self, requested: str) -> str:
        return local_device(requested)

    def run(self, jobs: Sequence[Job[R]], on_done: Callable[[int, R], None]) -> None:
        plan = pool_plan(self.workers, jobs)
        if plan.workers == 1 or len(jobs) <= 1:
            SerialExecutor().run(jobs, on_done)
            return
        # spawn, not fork: forking a process that has started torch's thread pools can hang,
        # and CUDA cannot be used in a forked child at all.
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(
            max_workers=plan.workers,
            mp_context=context,
            initializer=_init_worker,
            initargs=(plan.threads, os.getpid(), plan.gpus,
                      context.Value("i", 0) if plan.gpus > 1 else None),
        )
        try:
            futures = {pool.submit(_run_job, job): index for index, job in enumerate(jobs)}
            for future in as_completed(futures):
                on_done(futures[future], future.result())
        except BaseException:
            _stop(pool)
            raise
        pool.shutdown(wait=True)


@dataclass(frozen=True)
class PoolPlan:
    """Worker processes, torch threads per worker, and GPUs the workers are spread over."""

    workers: int
    threads: int
    gpus: int


def pool_plan(
    workers: int,
    jobs: Sequence[object],
    *,
    cpus: int | None = None,
    cuda_devices: int | None = None,
) -> PoolPlan:
    """How many worker processes run ``jobs``, with how many threads each, and over how many
    GPUs the workers are spread (0: the jobs are not on CUDA; 1: all on one device).

    ``workers`` is the most the caller allows. CUDA jobs run :data:`MODELS_PER_GPU` per GPU
    they may use: every GPU for ``cuda`` or ``auto``, the one named by ``cuda:N``. ``cpus`` and
    ``cuda_devices`` default to this machine's.
    """
    cpus = cpus or os.cpu_count() or 1
    count = max(1, min(workers, len(jobs)))
    requested = {_device_of(job) for job in jobs}
    on_cuda = [d for d in requested if d.startswith("cuda") or d == "auto"]
    gpus = 0
    if on_cuda:
        if cuda_devices is None:
            cuda_devices = _cuda_device_count()
        if cuda_devices and (len(on_cuda) == len(requested)):
            # cuda:N pins its jobs to one GPU; cuda or auto may use them all.
            gpus = 1 if any(":" in d for d in on_cuda) else cuda_devices
            count = min(count, MODELS_PER_GPU * gpus)
    return PoolPlan(count, max(1, cpus // count), gpus)


def _cuda_device_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def default_workers() -> int:
    """Worker processes when the config names none: one per core, at most 8."""
    return max(1, min(os.cpu_count() or 1, 8))


def local_device(requested: str) -> str:
    """``training.device`` resolved on this machine (``auto`` -> ``cuda``, ``mps`` or ``cpu``)."""
    from auditml.training.device import resolve_device

    return str(resolve_device(requested))


def training_device(executor: Any, requested: str) -> str:
    """The device ``executor``'s jobs train on when the config asks for ``requested``: its
    ``device_for`` where it has one (a cluster decides for itself), else this machine's."""
    device_for = getattr(executor, "device_for", None)
    return str(device_for(requested)) if callable(device_for) else local_device(requested)


def _run_job(job: Job[R]) -> R:
    return job.run()


def _stop(pool: ProcessPoolExecutor) -> None:
    """Cancel the queued jobs and kill the running ones instead of waiting for them to finish."""
    # No public way to kill a pool's workers before Python 3.14 (kill_workers).
    workers = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in workers:
        if process.is_alive():
            process.kill()
    pool.shutdown(wait=True)


def _init_worker(threads: int, parent: int, gpus: int = 0, slots: Any = None) -> None:
    import torch

    torch.set_num_threads(threads)
    if gpus > 1 and slots is not None:
        # Worker i works on GPU i mod gpus: ``cuda`` then means that device in this process
        # (jobs naming ``cuda:N`` never get here, pool_plan gives them gpus=1).
        with slots.get_lock():
            slot = slots.value
            slots.value += 1
        torch.cuda.set_device(slot % gpus)
    _exit_with_parent(parent)


def _exit_with_parent(parent: int) -> None:
    """End this worker as soon as process ``parent`` is gone.

    A pool worker blocks forever on its task queue once its parent dies (it holds the queue's
    write end itself, so it never sees end-of-file), and it keeps the multiprocessing resource
    tracker alive through the inherited tracker pipe. On Linux the kernel delivers SIGKILL when
    the parent exits (PR_SET_PDEATHSIG); elsewhere, or if prctl is unavailable, a daemon thread
    notices the re-parenting within half a second.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the death signal was armed
        os._exit(1)
    watchdog = threading.Thread(
        target=_watch_parent, args=(parent,), name="auditml-parent-watchdog", daemon=True
    )
    watchdog.start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_PARENT_POLL_SECONDS)
    os._exit(1)


class JobProgress:
    """A progress bar over finished jobs on a terminal, one line per job otherwise."""

    def __init__(self, console: Console | None, description: str, total: int) -> None:
        self.console, self.description, self.total, self.done = console, description, total, 0
        self._bar: Progress | None = None
        if console is not None and console.is_terminal:
            self._bar = Progress(
                TextColumn(f"[bold]{description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), console=console,
            )

    def __enter__(self) -> Callable[[], None]:
        task = None
        if self._bar is not None:
            self._bar.__enter__()
            task = self._bar.add_task(self.description, total=self.total)

        def advance() -> None:
            self.done += 1
            if self._bar is not None and task is not None:
                self._bar.update(task, advance=1)
            elif self.console is not None:
                self.console.print(
                    f"{self.description}: {self.done}/{self.total} trained", highlight=False
                )

        return advance

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)


EXECUTORS: Registry[Callable[..., Executor]] = Registry("executor")
EXECUTORS.register("serial", SerialExecutor)
EXECUTORS.register("local", LocalPoolExecutor)
EXECUTORS.register("ray", RayExecutor)


def make_executor(name: str, workers: int, address: str | None = None) -> Executor:
    """The executor registered as ``name`` (``audit.executor``), with ``workers`` processes or
    at the cluster ``address`` (``audit.ray_address``) for executors that take one."""
    if name not in EXECUTORS:
        raise UnknownNameError(f"audit.executor: {EXECUTORS.unknown_message(cut(name))}")
    factory = EXECUTORS.get(name)
    if address is None:
        return factory(workers)
    if "address" not in inspect.signature(factory).parameters:
        raise ConfigError(
            f"audit.executor: {name} runs on this machine and takes no cluster address; "
            f"remove audit.ray_address={address!r}, or use an executor that takes one"
        )
    return factory(workers, address=address)
