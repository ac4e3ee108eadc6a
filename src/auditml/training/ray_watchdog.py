"""End the local Ray that auditml started when auditml dies, even by SIGKILL (issue 25).

What Ray 2.60 does by itself: on Linux the processes ``ray.init`` starts (GCS server, raylet,
monitors) are fate-shared with the driver through ``PR_SET_PDEATHSIG``, and the raylet's workers
exit with it; Ray's own reaper (which kills the process group when the driver dies) is started
only where the kernel cannot fate-share. The death signal reaches only those direct children. Its
two agents (``ray::DashboardAgent``, ``ray::RuntimeEnvAgent``) are the raylet's children:
they notice within seconds that the raylet is gone, but before exiting they report the death to
the GCS, which died with the driver, and wait on that call for a minute or more. Measured on
this repository's 2-core machine: after 4 of 4 SIGKILLs of a driver holding auditml's local Ray,
both agents were still running 30 s later.

So :func:`start` launches this file as a small separate process (stdlib only, nothing of
auditml or Ray imported). While the driver lives it notes, every :data:`POLL_SECONDS`, the
processes descending from the ones ``ray.init`` started (``roots``), with their start times;
once the driver is gone (this process is re-parented) it SIGKILLs those still alive, and exits.
It also exits when the roots have all ended while the driver lives (``ray.shutdown``). Only a Ray
that auditml started is watched: a cluster the user started (``ray start``, an address) is
never touched. Linux only (it reads ``/proc``); elsewhere :func:`start` does nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable

POLL_SECONDS = 0.5


def supported() -> bool:
    return sys.platform.startswith("linux") and os.path.isdir("/proc/self")


def child_pids(parent: int) -> set[int]:
    """The processes whose parent is ``parent`` (empty where ``/proc`` is unavailable)."""
    if not supported():
        return set()
    return {pid for pid, (ppid, _) in _process_table().items() if ppid == parent}


def start(driver: int, roots: Iterable[int]) -> subprocess.Popen[bytes] | None:
    """Watch ``roots`` (and what they start) on behalf of the process ``driver``; None where
    unsupported or when there is nothing to watch."""
    roots = sorted(roots)
    if not supported() or not roots:
        return None
    # -I: this file imports only the standard library; its own session: a Ctrl-C at the
    # terminal reaches auditml (which shuts Ray down itself), not the watchdog.
    return subprocess.Popen(
        [sys.executable, "-I", os.path.abspath(__file__), str(driver), *map(str, roots)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True,
    )


def watch(driver: int, roots: set[int]) -> None:
    """Until ``driver`` dies, track ``roots`` and their descendants; then kill those left."""
    me = os.getpid()
    table = _process_table()
    known = {pid: table[pid][1] for pid in roots if pid in table}
    while os.getppid() == driver:
        table = _process_table()
        # Forget the ended (and pids reused since: another start time), add the newly started.
        known = {pid: began for pid, began in known.items() if table.get(pid, (0, ""))[1] == began}
        if not known:
            return  # Ray was shut down while the driver lives
        for pid in _descendants(table, set(known)) - {me}:
            known.setdefault(pid, table[pid][1])
        time.sleep(POLL_SECONDS)
    table = _process_table()
    for pid, began in known.items():
        if table.get(pid, (0, ""))[1] == began:
            with contextlib.suppress(OSError):  # ended in the meantime
                os.kill(pid, signal.SIGKILL)


def _descendants(table: dict[int, tuple[int, str]], roots: set[int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, stack = set(roots), list(roots)
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time in clock ticks since boot) for every live process."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as stat:
                text = stat.read()
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
        fields = text[text.rfind(")") + 2:].split()
        if len(fields) > 19 and fields[0] != "Z":  # state, ppid, ..., starttime (field 22)
            table[int(entry)] = (int(fields[1]), fields[19])
    return table


if __name__ == "__main__":
    watch(int(sys.argv[1]), {int(pid) for pid in sys.argv[2:]})
