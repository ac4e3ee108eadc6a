"""A local Ray that auditml started ends with auditml, even when auditml is killed by SIGKILL.

Before the watchdog (:mod:`auditml.training.ray_watchdog`), Ray 2.60's dashboard and runtime-env
agents outlived a SIGKILLed driver by about a minute (4 of 4 kills on a 2-core machine left both
running 30 s later; 2 of 2 were gone 62 s later); with it, 4 of 4 were gone within a second.
The process tree is read from ``/proc`` here, independently of the watchdog's own reading, so
the test also runs against code without it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)"),
]

DRIVER = """
import os, sys, time
from auditml.training.ray_executor import RayExecutor

class Job:
    def run(self):
        return os.getpid()

RayExecutor().run([Job()], lambda index, pid: None)
print("READY", flush=True)
time.sleep(600)
"""
START_SECONDS = 180  # Ray's start on a loaded 2-core runner
# Generous beside the watchdog's half second, and below the minute after which Ray's agents
# give up on the dead GCS (its reconnection timeout) and exit by themselves.
GONE_SECONDS = 30


def _stat(pid: int) -> tuple[int, str, str] | None:
    """(parent pid, start time, state) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    return int(fields[1]), fields[19], fields[0]


def _descendants(root: int) -> dict[int, str]:
    """pid -> start time of every process below ``root``."""
    table = {int(entry): _stat(int(entry)) for entry in os.listdir("/proc") if entry.isdigit()}
    found, frontier = {}, {root}
    while frontier:
        frontier = {pid for pid, stat in table.items()
                    if stat is not None and stat[0] in frontier and pid not in found}
        found.update({pid: table[pid][1] for pid in frontier})  # type: ignore[index]
    return found


def _alive(processes: dict[int, str]) -> dict[int, str]:
    """Those of ``processes`` still running (same start time: not a reused pid; no zombies)."""
    left = {}
    for pid, began in processes.items():
        stat = _stat(pid)
        if stat is not None and stat[1] == began and stat[2] != "Z":
            left[pid] = began
    return left


def _name(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def test_a_sigkilled_auditml_leaves_no_process_of_its_local_ray(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, text=True, env=env,
        cwd=tmp_path, start_new_session=True,  # a stray signal to the group spares pytest
    )
    lines: list[str] = []
    stdout = driver.stdout
    assert stdout is not None
    reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
    reader.start()
    processes: dict[int, str] = {}
    try:
        reader.join(START_SECONDS)
        assert lines and lines[0].startswith("READY"), f"Ray did not start: {lines}"
        processes = _descendants(driver.pid)
        names = " | ".join(_name(pid) for pid in processes)
        # The tree is Ray's: its GCS, raylet and agents are in it.
        assert "gcs_server" in names and "raylet" in names and "Agent" in names, names
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        deadline = time.monotonic() + GONE_SECONDS
        while _alive(processes) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = _alive(processes)
        assert not left, (
            f"{len(left)} of {len(processes)} processes of the killed run's Ray still run "
            f"{GONE_SECONDS} s later: {[_name(pid)[-60:] for pid in left]}"
        )
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        for pid in _alive(processes):  # leave nothing behind, whatever the outcome
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
