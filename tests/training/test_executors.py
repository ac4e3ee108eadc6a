"""Executors: results reported as each job finishes, failures stop the rest, no orphan workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from importlib import import_module
from pathlib import Path

import pytest

from auditml.errors import UnknownNameError
from auditml.training.executors import EXECUTORS, LocalPoolExecutor, SerialExecutor


class Square:
    def __init__(self, value: int) -> None:
        self.value = value

    def run(self) -> int:
        if self.value < 0:
            raise ValueError(f"negative {self.value}")
        return self.value * self.value


def test_serial_reports_every_job_in_order() -> None:
    done: list[tuple[int, int]] = []
    SerialExecutor().run([Square(v) for v in (3, 1, 2)], lambda i, r: done.append((i, r)))
    assert done == [(0, 9), (1, 1), (2, 4)]


def test_a_failing_job_stops_the_serial_run_after_reporting_the_finished_ones() -> None:
    done: list[int] = []
    with pytest.raises(ValueError, match="negative -1"):
        SerialExecutor().run([Square(2), Square(-1), Square(3)], lambda i, r: done.append(i))
    assert done == [0]


def test_registry_names_the_executors() -> None:
    assert EXECUTORS.get("local") is LocalPoolExecutor
    assert EXECUTORS.get("serial") is SerialExecutor
    with pytest.raises(UnknownNameError, match="available: local, ray, serial"):
        EXECUTORS.get("cluster")


# Jobs for spawned workers, which import them by module name (pytest's importlib mode leaves
# test modules unimportable there). SlowJob announces its worker's pid, then outlasts the test.
_JOBS = """
import os
import time


class SlowJob:
    def __init__(self, directory, seconds=300):
        self.directory, self.seconds = directory, seconds

    def run(self):
        open(os.path.join(self.directory, f"worker_{os.getpid()}"), "w").close()
        time.sleep(self.seconds)


class FailingJob:
    def run(self):
        raise ValueError("this job fails")
"""


def test_a_failing_job_in_the_pool_stops_the_running_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pooljobs.py").write_text(_JOBS)
    monkeypatch.syspath_prepend(str(tmp_path))  # spawn hands sys.path to the workers
    jobs = import_module("pooljobs")
    done: list[int] = []
    start = time.monotonic()
    with pytest.raises(ValueError, match="this job fails"):
        LocalPoolExecutor(2).run(
            [jobs.SlowJob(str(tmp_path), 60), jobs.FailingJob(), jobs.SlowJob(str(tmp_path), 60)],
            lambda i, r: done.append(i),
        )
    # Without stopping them, the pool would wait for both 60 s jobs before raising.
    assert time.monotonic() - start < 45
    assert done == []

_AUDIT = """
import sys
from pooljobs import SlowJob
from auditml.training.executors import LocalPoolExecutor

LocalPoolExecutor(2).run([SlowJob(sys.argv[1]) for _ in range(4)], lambda i, r: None)
"""


def _children(parent: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    """Running, not a zombie (an orphan's zombie lingers where PID 1 does not reap)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_pool_workers_and_resource_tracker_exit_when_the_audit_is_killed(
    tmp_path: Path,
) -> None:
    (tmp_path / "pooljobs.py").write_text(_JOBS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    audit = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_AUDIT), str(tmp_path)], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        # Two workers running jobs, plus the resource tracker: three children of the audit.
        while len(list(tmp_path.glob("worker_*"))) < 2 or len(_children(audit.pid)) < 3:
            assert audit.poll() is None, "the audit ended before its workers started"
            assert time.monotonic() < deadline, "the pool's workers never started"
            time.sleep(0.2)
        workers = {int(path.name.split("_")[1]) for path in tmp_path.glob("worker_*")}
        children = _children(audit.pid)
        assert workers < children and len(children) == 3
    finally:
        audit.send_signal(signal.SIGKILL)
        audit.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    survivors = [pid for pid in children if _alive(pid)]
    for pid in survivors:  # do not leave them behind for the rest of the suite
        os.kill(pid, signal.SIGKILL)
    assert survivors == [], f"still running 10 s after their parent was killed: {survivors}"
